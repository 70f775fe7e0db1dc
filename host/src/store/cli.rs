//! The work behind `tessera users add/list/remove/consents`, so `main.rs` only parses
//! arguments: turning flags into a [`NewUser`], reading a new password from
//! standard input or a no-echo prompt (never from the command line), naming
//! the offending flag in errors, and rendering the user and consent tables.

use std::io::IsTerminal as _;

use serde_json::Value;

use super::{Consent, Metadata, NewUser, Store, StoreError, User, Withdrawn, password};
use crate::tabular::utc;

/// Why a `tessera users` command failed, phrased for the person who typed it.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    /// A flag's value is wrong.
    #[error("{flag}: {problem}")]
    Flag {
        /// The flag, e.g. `--app-metadata`.
        flag: &'static str,
        /// What is wrong and, where it helps, what to do.
        problem: String,
    },
    /// The password could not be read or was refused.
    #[error("password: {0}")]
    Password(String),
    /// `tessera users remove` or `consents` named nobody.
    #[error("no user with id or email {0:?}")]
    NoSuchUser(String),
    /// `tessera users consents --withdraw` named a client the user never
    /// allowed anything.
    #[error(
        "{user} has given {client:?} no consent; `tessera users consents {user}` lists what they gave"
    )]
    NoConsent {
        /// The user as typed.
        user: String,
        /// The client id.
        client: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for UsersError {
    /// Refused inputs name the flag they came from.
    fn from(e: StoreError) -> UsersError {
        match e {
            StoreError::Invalid { field, problem } => match flag_of(field) {
                Some("password") => UsersError::Password(problem),
                Some(flag) => UsersError::Flag { flag, problem },
                None => UsersError::Store(StoreError::Invalid { field, problem }),
            },
            StoreError::Conflict(problem) => UsersError::Flag {
                flag: "--email",
                problem,
            },
            other => UsersError::Store(other),
        }
    }
}

fn flag_of(field: &str) -> Option<&'static str> {
    Some(match field {
        "email" => "--email",
        "name" => "--name",
        "app_metadata" => "--app-metadata",
        "user_metadata" => "--user-metadata",
        "password" => "password",
        _ => return None,
    })
}

/// The flags of `tessera users add`, as typed.
#[derive(Debug, Clone, Default)]
pub struct AddFlags {
    /// `--email`.
    pub email: String,
    /// `--name`.
    pub name: Option<String>,
    /// `--email-verified`.
    pub email_verified: bool,
    /// `--app-metadata`, JSON text.
    pub app_metadata: Option<String>,
    /// `--user-metadata`, JSON text.
    pub user_metadata: Option<String>,
}

impl AddFlags {
    /// Parses the metadata flags and checks the email, so that mistakes show
    /// before the password is asked for.
    pub fn into_new_user(self) -> Result<NewUser, UsersError> {
        super::normalize_email(&self.email)?;
        Ok(NewUser {
            email: self.email,
            email_verified: self.email_verified,
            name: self.name,
            password: String::new(),
            app_metadata: metadata_flag("--app-metadata", self.app_metadata.as_deref())?,
            user_metadata: metadata_flag("--user-metadata", self.user_metadata.as_deref())?,
        })
    }
}

/// Parses a metadata flag's JSON; it must be an object. Absent is empty.
pub fn metadata_flag(flag: &'static str, text: Option<&str>) -> Result<Metadata, UsersError> {
    let Some(text) = text else {
        return Ok(Metadata::new());
    };
    let bad = |problem: String| UsersError::Flag { flag, problem };
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(bad(format!(
            "not a JSON object: got {}; write e.g. '{{\"roles\": [\"admin\"]}}'",
            kind(&other)
        ))),
        Err(e) => Err(bad(format!("not a JSON object: {e}"))),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Reads the new user's password: the first line of standard input when it
/// is not a terminal (for scripts: `printf '%s\n' "$PW" | tessera users add …`),
/// otherwise a prompt on the terminal, twice, without echo.
pub fn read_new_password() -> Result<String, UsersError> {
    let password = if std::io::stdin().is_terminal() {
        let first = prompt("Password for the new user: ")?;
        password::check_new(&first)?;
        let second = prompt("Repeat the password: ")?;
        if first != second {
            return Err(UsersError::Password("the two entries differ".into()));
        }
        first
    } else {
        first_line(std::io::stdin().lock())?
    };
    password::check_new(&password)?;
    Ok(password)
}

fn prompt(text: &str) -> Result<String, UsersError> {
    rpassword::prompt_password(text)
        .map_err(|e| UsersError::Password(format!("reading from the terminal: {e}")))
}

/// The first line of `input`, without its line ending.
fn first_line(mut input: impl std::io::BufRead) -> Result<String, UsersError> {
    let mut line = String::new();
    let read = input
        .read_line(&mut line)
        .map_err(|e| UsersError::Password(format!("reading standard input: {e}")))?;
    if read == 0 {
        return Err(UsersError::Password(
            "standard input is empty; pipe the password as its first line, or run the command \
             in a terminal to be prompted"
                .into(),
        ));
    }
    let trimmed = line.strip_suffix('\n').unwrap_or(&line);
    let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
    Ok(trimmed.to_owned())
}

/// Adds the user; refused inputs name their flag.
pub async fn add(
    store: &Store,
    mut new: NewUser,
    password: String,
    now: u64,
) -> Result<User, UsersError> {
    new.password = password;
    Ok(store.add_user(new, now).await?)
}

/// Removes a user by id or email; naming nobody is an error.
pub async fn remove(store: &Store, id_or_email: &str) -> Result<(), UsersError> {
    if store.remove_user(id_or_email).await? {
        Ok(())
    } else {
        Err(UsersError::NoSuchUser(id_or_email.to_owned()))
    }
}

/// The user with this id (u_…) or email address; naming nobody is an error.
async fn find(store: &Store, id_or_email: &str) -> Result<User, UsersError> {
    let user = if id_or_email.contains('@') {
        store.user_by_email(id_or_email).await?
    } else {
        store.user_by_id(id_or_email.trim()).await?
    };
    user.ok_or_else(|| UsersError::NoSuchUser(id_or_email.to_owned()))
}

/// The consents a user gave third-party applications.
pub async fn consents(store: &Store, id_or_email: &str) -> Result<Vec<Consent>, UsersError> {
    let user = find(store, id_or_email).await?;
    Ok(store.consents(&user.id).await?)
}

/// Withdraws every consent the user gave `client`, and revokes the
/// client's refresh tokens for them.
pub async fn withdraw(
    store: &Store,
    id_or_email: &str,
    client: &str,
) -> Result<Withdrawn, UsersError> {
    let user = find(store, id_or_email).await?;
    let withdrawn = store.withdraw_consent(&user.id, client).await?;
    if withdrawn.consents == 0 {
        return Err(UsersError::NoConsent {
            user: id_or_email.to_owned(),
            client: client.to_owned(),
        });
    }
    Ok(withdrawn)
}

/// The `tessera users consents` table: client, audience, scopes, granted (UTC).
pub fn consent_table(consents: &[Consent]) -> String {
    let header = ["CLIENT", "AUDIENCE", "SCOPES", "GRANTED (UTC)"];
    let rows: Vec<Vec<String>> = consents
        .iter()
        .map(|c| {
            [
                c.client_id.clone(),
                c.audience.clone().unwrap_or_else(|| "-".to_owned()),
                c.scopes.join(" "),
                utc(c.granted_at),
            ]
            .into()
        })
        .collect();
    crate::tabular::table(&header, &rows)
}

/// The `tessera users list` table: id, email, verified, name, created (UTC).
pub fn table(users: &[User]) -> String {
    let header = ["ID", "EMAIL", "VERIFIED", "NAME", "CREATED (UTC)"];
    let rows: Vec<Vec<String>> = users
        .iter()
        .map(|u| {
            [
                u.id.clone(),
                u.email.clone(),
                if u.email_verified { "yes" } else { "no" }.to_owned(),
                u.name.clone().unwrap_or_else(|| "-".to_owned()),
                utc(u.created_at),
            ]
            .into()
        })
        .collect();
    crate::tabular::table(&header, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag_problem(e: UsersError) -> (&'static str, String) {
        match e {
            UsersError::Flag { flag, problem } => (flag, problem),
            other => panic!("expected a flag error, got {other:?}"),
        }
    }

    #[test]
    fn metadata_flags_must_be_json_objects() {
        assert_eq!(
            metadata_flag("--app-metadata", None).unwrap(),
            Metadata::new()
        );
        let map = metadata_flag("--app-metadata", Some(r#"{"roles": ["admin"], "n": 1}"#)).unwrap();
        assert_eq!(map["roles"], serde_json::json!(["admin"]));

        let (flag, problem) =
            flag_problem(metadata_flag("--app-metadata", Some("[1, 2]")).unwrap_err());
        assert_eq!(flag, "--app-metadata");
        assert!(
            problem.starts_with("not a JSON object: got an array"),
            "{problem}"
        );
        let err = metadata_flag("--user-metadata", Some("{roles: admin}")).unwrap_err();
        let shown = err.to_string();
        assert!(
            shown.starts_with("--user-metadata: not a JSON object: "),
            "{shown}"
        );
    }

    #[test]
    fn the_password_is_the_first_line_without_its_ending() {
        let read = |s: &str| first_line(std::io::Cursor::new(s.as_bytes().to_vec()));
        assert_eq!(
            read("hunter2hunter2\nsecond line\n").unwrap(),
            "hunter2hunter2"
        );
        assert_eq!(read("crlf-password\r\n").unwrap(), "crlf-password");
        assert_eq!(read("no newline at all").unwrap(), "no newline at all");
        assert_eq!(read(" spaces kept \n").unwrap(), " spaces kept ");
        assert!(matches!(read(""), Err(UsersError::Password(m)) if m.contains("empty")));
    }

    #[tokio::test]
    async fn store_refusals_name_the_flag() {
        let store = Store::open_memory().await.unwrap();
        let flags = AddFlags {
            email: "not-an-address".into(),
            ..AddFlags::default()
        };
        let (flag, _) = flag_problem(flags.into_new_user().unwrap_err());
        assert_eq!(flag, "--email");

        let new = AddFlags {
            email: "Dev@Example.com".into(),
            name: Some("Dev".into()),
            email_verified: true,
            app_metadata: Some(r#"{"roles":["ops"]}"#.into()),
            user_metadata: None,
        }
        .into_new_user()
        .unwrap();
        let short = add(&store, new.clone(), "short".into(), 5)
            .await
            .unwrap_err();
        assert!(matches!(short, UsersError::Password(_)), "{short}");
        assert!(
            short
                .to_string()
                .starts_with("password: must be at least 8")
        );

        let user = add(&store, new.clone(), "long enough".into(), 5)
            .await
            .unwrap();
        assert_eq!(user.email, "dev@example.com");
        assert_eq!(user.app_metadata["roles"], serde_json::json!(["ops"]));
        let (flag, problem) =
            flag_problem(add(&store, new, "long enough".into(), 6).await.unwrap_err());
        assert_eq!(flag, "--email");
        assert!(problem.contains("already exists"), "{problem}");

        remove(&store, "DEV@example.com").await.unwrap();
        let err = remove(&store, &user.id).await.unwrap_err();
        assert!(matches!(err, UsersError::NoSuchUser(_)), "{err}");
    }

    #[test]
    fn the_table_lines_up() {
        let user = |id: &str, email: &str, verified, name: Option<&str>, at| User {
            id: id.into(),
            email: email.into(),
            email_verified: verified,
            name: name.map(Into::into),
            password_hash: String::new(),
            app_metadata: Metadata::new(),
            user_metadata: Metadata::new(),
            created_at: at,
        };
        let text = table(&[
            user(
                "u_aaaaaaaaaaaaaaaaaaaaaa",
                "a@example.com",
                true,
                Some("Ada L."),
                0,
            ),
            user(
                "u_bbbbbbbbbbbbbbbbbbbbbb",
                "bo@x.io",
                false,
                None,
                1_700_000_000,
            ),
        ]);
        assert_eq!(
            text,
            "ID                        EMAIL          VERIFIED  NAME    CREATED (UTC)\n\
             u_aaaaaaaaaaaaaaaaaaaaaa  a@example.com  yes       Ada L.  1970-01-01 00:00:00\n\
             u_bbbbbbbbbbbbbbbbbbbbbb  bo@x.io        no        -       2023-11-14 22:13:20\n"
        );
    }
}
