//! The SQLite backend: one connection pool on one database file (WAL, busy
//! timeout, foreign keys), migrated at open from the SQL files embedded from
//! `host/migrations/sqlite/` and tracked in sqlx's `_sqlx_migrations` table.
//!
//! The statements are the portable ones the PostgreSQL backend will reuse;
//! the only SQLite-specific pieces are the connection options and
//! `BEGIN IMMEDIATE` (take the write lock up front, so a transaction never
//! has to upgrade a read lock and fail with `SQLITE_BUSY`). Single use of codes
//! and refresh tokens rests on one `UPDATE … WHERE … IS NULL RETURNING`
//! statement each, atomic in any SQL database.

use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use serde_json::Value;
use sqlx::Row as _;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
};

use super::{
    CodeRecord, CodeUse, Metadata, Purged, RefreshRecord, RefreshUse, Session, StoreError, User,
};

/// How long a statement waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections in a file database's pool: readers run in parallel under WAL,
/// writers take turns.
const MAX_CONNECTIONS: u32 = 8;

/// The schema, oldest first. Never edit a released file (sqlx checks
/// checksums); add the next one.
const MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    "initial",
    include_str!("../../migrations/sqlite/0001_initial.sql"),
)];

/// [`MIGRATIONS`] as a sqlx migration source, so the SQL is compiled into the
/// binary without sqlx's macros.
#[derive(Debug)]
struct Embedded;

impl MigrationSource<'static> for Embedded {
    fn resolve(
        self,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 'static>>
    {
        Box::pin(async {
            Ok(MIGRATIONS
                .iter()
                .map(|&(version, description, sql)| {
                    Migration::new(
                        version,
                        description.into(),
                        MigrationType::Simple,
                        sql.into(),
                        false,
                    )
                })
                .collect())
        })
    }
}

macro_rules! user_columns {
    () => {
        "id, email, email_verified, name, password_hash, app_metadata, user_metadata, created_at"
    };
}

macro_rules! code_columns {
    () => {
        "code_hash, client_id, redirect_uri, code_challenge, user_id, scopes, audience, nonce, \
         auth_time, access_claims, id_claims, issued_at, expires_at"
    };
}

macro_rules! refresh_columns {
    () => {
        "token_hash, family_id, client_id, user_id, scopes, audience, auth_time, access_claims, \
         id_claims, code_hash, issued_at, expires_at"
    };
}

/// The SQLite store.
#[derive(Clone)]
pub(super) struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating when missing) and migrates the database file at `path`.
    pub(super) async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        create_file(path)?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await?;
        SqliteStore::migrated(pool).await
    }

    /// A private in-memory database: one connection that never closes.
    pub(super) async fn open_memory() -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        SqliteStore::migrated(pool).await
    }

    async fn migrated(pool: SqlitePool) -> Result<SqliteStore, StoreError> {
        Migrator::new(Embedded).await?.run(&pool).await?;
        Ok(SqliteStore { pool })
    }

    pub(super) async fn close(&self) {
        self.pool.close().await;
    }

    // ---- users ---------------------------------------------------------

    pub(super) async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        sqlx::query(concat!(
            "INSERT INTO users (",
            user_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&user.id)
        .bind(&user.email)
        .bind(user.email_verified)
        .bind(&user.name)
        .bind(&user.password_hash)
        .bind(json(&user.app_metadata))
        .bind(json(&user.user_metadata))
        .bind(db_time(user.created_at))
        .execute(&self.pool)
        .await
        .map_err(|e| {
            conflict(
                e,
                format!("a user with email {} already exists", user.email),
            )
        })?;
        Ok(())
    }

    pub(super) async fn user_by_id(&self, id: &str) -> Result<Option<User>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .map(|row| user_from_row(&row))
        .transpose()
    }

    pub(super) async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE email = $1"
        ))
        .bind(email)
        .fetch_optional(&self.pool)
        .await?
        .map(|row| user_from_row(&row))
        .transpose()
    }

    pub(super) async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(user_from_row)
        .collect()
    }

    pub(super) async fn remove_user(&self, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM authorization_codes WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE refresh_families SET revoked = TRUE WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let removed = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(removed > 0)
    }

    // ---- sessions ------------------------------------------------------

    pub(super) async fn create_session(
        &self,
        id_hash: &str,
        user_id: &str,
        auth_time: u64,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, auth_time, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id_hash)
        .bind(user_id)
        .bind(db_time(auth_time))
        .bind(db_time(expires_at))
        .execute(&self.pool)
        .await
        .map_err(|e| conflict(e, "a session with this id already exists".into()))?;
        Ok(())
    }

    pub(super) async fn session(
        &self,
        id_hash: &str,
        now: u64,
    ) -> Result<Option<Session>, StoreError> {
        let row = sqlx::query(
            "SELECT user_id, auth_time, expires_at FROM sessions \
             WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash)
        .bind(db_time(now))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(Session {
                user_id: row.try_get("user_id")?,
                auth_time: time(row.try_get("auth_time")?),
                expires_at: time(row.try_get("expires_at")?),
            })
        })
        .transpose()
    }

    pub(super) async fn delete_session(&self, id_hash: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    // ---- pending authorization requests ---------------------------------

    pub(super) async fn put_pending(
        &self,
        id_hash: &str,
        data: &str,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO pending_requests (id_hash, data, expires_at) VALUES ($1, $2, $3)")
            .bind(id_hash)
            .bind(data)
            .bind(db_time(expires_at))
            .execute(&self.pool)
            .await
            .map_err(|e| conflict(e, "a pending request with this id already exists".into()))?;
        Ok(())
    }

    pub(super) async fn take_pending(
        &self,
        id_hash: &str,
        now: u64,
    ) -> Result<Option<Value>, StoreError> {
        let row = sqlx::query(
            "DELETE FROM pending_requests WHERE id_hash = $1 RETURNING data, expires_at",
        )
        .bind(id_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        if time(row.try_get("expires_at")?) <= now {
            return Ok(None);
        }
        parse_value(row.try_get("data")?).map(Some)
    }

    pub(super) async fn get_pending(
        &self,
        id_hash: &str,
        now: u64,
    ) -> Result<Option<Value>, StoreError> {
        let data: Option<String> = sqlx::query_scalar(
            "SELECT data FROM pending_requests WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash)
        .bind(db_time(now))
        .fetch_optional(&self.pool)
        .await?;
        data.map(parse_value).transpose()
    }

    // ---- authorization codes --------------------------------------------

    pub(super) async fn put_code(&self, code: &CodeRecord) -> Result<(), StoreError> {
        sqlx::query(concat!(
            "INSERT INTO authorization_codes (",
            code_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .bind(&code.code_hash)
        .bind(&code.client_id)
        .bind(&code.redirect_uri)
        .bind(&code.code_challenge)
        .bind(&code.user_id)
        .bind(json(&code.scopes))
        .bind(&code.audience)
        .bind(&code.nonce)
        .bind(db_time(code.auth_time))
        .bind(json(&code.access_claims))
        .bind(json(&code.id_claims))
        .bind(db_time(code.issued_at))
        .bind(db_time(code.expires_at))
        .execute(&self.pool)
        .await
        .map_err(|e| conflict(e, "a code with this hash already exists".into()))?;
        Ok(())
    }

    pub(super) async fn consume_code(
        &self,
        code_hash: &str,
        now: u64,
    ) -> Result<CodeUse, StoreError> {
        // The single-use guarantee: only one statement can see consumed_at NULL.
        let first = sqlx::query(concat!(
            "UPDATE authorization_codes SET consumed_at = $2 \
             WHERE code_hash = $1 AND consumed_at IS NULL RETURNING ",
            code_columns!()
        ))
        .bind(code_hash)
        .bind(db_time(now))
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = first {
            let code = code_from_row(&row)?;
            return Ok(if code.expires_at <= now {
                CodeUse::Expired
            } else {
                CodeUse::Fresh(code)
            });
        }
        let again = sqlx::query(concat!(
            "SELECT ",
            code_columns!(),
            " FROM authorization_codes WHERE code_hash = $1"
        ))
        .bind(code_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match again {
            Some(row) => CodeUse::Replayed(code_from_row(&row)?),
            None => CodeUse::Unknown,
        })
    }

    // ---- refresh tokens --------------------------------------------------

    pub(super) async fn put_refresh(&self, token: &RefreshRecord) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "INSERT INTO refresh_families (family_id, client_id, user_id, code_hash, revoked, created_at) \
             VALUES ($1, $2, $3, $4, FALSE, $5) ON CONFLICT (family_id) DO NOTHING",
        )
        .bind(&token.family_id)
        .bind(&token.client_id)
        .bind(&token.user_id)
        .bind(&token.code_hash)
        .bind(db_time(token.issued_at))
        .execute(&mut *tx)
        .await?;
        let family = sqlx::query(
            "SELECT client_id, user_id, code_hash, revoked FROM refresh_families WHERE family_id = $1",
        )
        .bind(&token.family_id)
        .fetch_one(&mut *tx)
        .await?;
        let client_id: String = family.try_get("client_id")?;
        let user_id: String = family.try_get("user_id")?;
        if client_id != token.client_id || user_id != token.user_id {
            return Err(StoreError::invalid(
                "family_id",
                "the family belongs to another client or user",
            ));
        }
        if family.try_get::<bool, _>("revoked")? {
            return Err(StoreError::Revoked);
        }
        // A family born from a code that was replayed meanwhile is stillborn.
        let family_code: Option<String> = family.try_get("code_hash")?;
        if let Some(code_hash) = &family_code {
            let code_revoked: Option<bool> =
                sqlx::query_scalar("SELECT revoked FROM authorization_codes WHERE code_hash = $1")
                    .bind(code_hash)
                    .fetch_optional(&mut *tx)
                    .await?;
            if code_revoked == Some(true) {
                return Err(StoreError::Revoked);
            }
        }
        sqlx::query(concat!(
            "INSERT INTO refresh_tokens (",
            refresh_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(&token.token_hash)
        .bind(&token.family_id)
        .bind(&token.client_id)
        .bind(&token.user_id)
        .bind(json(&token.scopes))
        .bind(&token.audience)
        .bind(db_time(token.auth_time))
        .bind(json(&token.access_claims))
        .bind(json(&token.id_claims))
        .bind(&token.code_hash)
        .bind(db_time(token.issued_at))
        .bind(db_time(token.expires_at))
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict(e, "a refresh token with this hash already exists".into()))?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn refresh_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<RefreshRecord>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            refresh_columns!(),
            " FROM refresh_tokens WHERE token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| refresh_from_row(&r)).transpose()
    }

    pub(super) async fn use_refresh(
        &self,
        token_hash: &str,
        now: u64,
    ) -> Result<RefreshUse, StoreError> {
        // The single-use guarantee, as for codes; a revoked family's tokens
        // are never marked used, so they keep answering Revoked.
        let first = sqlx::query(concat!(
            "UPDATE refresh_tokens SET used_at = $2 \
             WHERE token_hash = $1 AND used_at IS NULL AND NOT EXISTS (\
                 SELECT 1 FROM refresh_families f \
                 WHERE f.family_id = refresh_tokens.family_id AND f.revoked) \
             RETURNING ",
            refresh_columns!()
        ))
        .bind(token_hash)
        .bind(db_time(now))
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = first {
            let token = refresh_from_row(&row)?;
            return Ok(if token.expires_at <= now {
                RefreshUse::Expired
            } else {
                RefreshUse::Fresh(token)
            });
        }
        let again = sqlx::query(concat!(
            "SELECT ",
            refresh_columns!(),
            ", used_at, (SELECT f.revoked FROM refresh_families f \
                         WHERE f.family_id = refresh_tokens.family_id) AS family_revoked \
             FROM refresh_tokens WHERE token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = again else {
            return Ok(RefreshUse::Unknown);
        };
        if row.try_get::<Option<bool>, _>("family_revoked")? != Some(false) {
            return Ok(RefreshUse::Revoked);
        }
        if row.try_get::<Option<i64>, _>("used_at")?.is_none() {
            // Not used and not revoked, yet the update did not take it: the
            // family was revoked and its state changed between the two
            // statements. Refuse.
            return Ok(RefreshUse::Revoked);
        }
        let token = refresh_from_row(&row)?;
        self.revoke_family(&token.family_id).await?;
        Ok(RefreshUse::Reused(token))
    }

    pub(super) async fn revoke_family(&self, family_id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE refresh_families SET revoked = TRUE WHERE family_id = $1")
            .bind(family_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub(super) async fn revoke_from_code(&self, code_hash: &str) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("UPDATE authorization_codes SET revoked = TRUE WHERE code_hash = $1")
            .bind(code_hash)
            .execute(&mut *tx)
            .await?;
        let families = sqlx::query(
            "UPDATE refresh_families SET revoked = TRUE WHERE code_hash = $1 AND NOT revoked",
        )
        .bind(code_hash)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(families)
    }

    pub(super) async fn revoke_refresh(
        &self,
        token_hash: &str,
        client_id: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE refresh_families SET revoked = TRUE WHERE family_id = (\
                 SELECT family_id FROM refresh_tokens WHERE token_hash = $1 AND client_id = $2)",
        )
        .bind(token_hash)
        .bind(client_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    // ---- housekeeping ------------------------------------------------------

    pub(super) async fn purge_expired(&self, now: u64) -> Result<Purged, StoreError> {
        let now = db_time(now);
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut purged = Purged::default();
        for (table, count) in [
            ("authorization_codes", &mut purged.codes),
            ("pending_requests", &mut purged.pending),
            ("sessions", &mut purged.sessions),
            ("refresh_tokens", &mut purged.refresh_tokens),
        ] {
            *count = sqlx::query(&format!("DELETE FROM {table} WHERE expires_at <= $1"))
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        sqlx::query(
            "DELETE FROM refresh_families WHERE NOT EXISTS (\
                 SELECT 1 FROM refresh_tokens t WHERE t.family_id = refresh_families.family_id)",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(purged)
    }
}

/// Creates the database's folder and, when missing, the file itself, readable
/// by its owner only (SQLite gives its -wal and -shm files the same mode).
fn create_file(path: &Path) -> Result<(), StoreError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| StoreError::Io { path, source }
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(io(path))?;
    Ok(())
}

/// A unique violation becomes [`StoreError::Conflict`] with `message`; a
/// foreign-key violation means the user does not exist.
fn conflict(e: sqlx::Error, message: String) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        if db.is_unique_violation() {
            return StoreError::Conflict(message);
        }
        if db.is_foreign_key_violation() {
            return StoreError::invalid("user_id", "no such user");
        }
    }
    StoreError::Database(e)
}

/// Unix seconds as the database's signed 64-bit integer (saturating: the
/// year 292 billion is far enough).
fn db_time(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

fn time(t: i64) -> u64 {
    u64::try_from(t).unwrap_or(0)
}

fn json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    // Maps with string keys and vectors of strings always serialize.
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

fn parse_value(text: String) -> Result<Value, StoreError> {
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("stored JSON: {e}")))
}

fn object(text: String, column: &str) -> Result<Metadata, StoreError> {
    serde_json::from_str(&text)
        .map_err(|e| StoreError::Corrupt(format!("{column} is not a JSON object: {e}")))
}

fn strings(text: String, column: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(&text)
        .map_err(|e| StoreError::Corrupt(format!("{column} is not a list of strings: {e}")))
}

fn user_from_row(row: &SqliteRow) -> Result<User, StoreError> {
    Ok(User {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        email_verified: row.try_get("email_verified")?,
        name: row.try_get("name")?,
        password_hash: row.try_get("password_hash")?,
        app_metadata: object(row.try_get("app_metadata")?, "app_metadata")?,
        user_metadata: object(row.try_get("user_metadata")?, "user_metadata")?,
        created_at: time(row.try_get("created_at")?),
    })
}

fn code_from_row(row: &SqliteRow) -> Result<CodeRecord, StoreError> {
    Ok(CodeRecord {
        code_hash: row.try_get("code_hash")?,
        client_id: row.try_get("client_id")?,
        redirect_uri: row.try_get("redirect_uri")?,
        code_challenge: row.try_get("code_challenge")?,
        user_id: row.try_get("user_id")?,
        scopes: strings(row.try_get("scopes")?, "scopes")?,
        audience: row.try_get("audience")?,
        nonce: row.try_get("nonce")?,
        auth_time: time(row.try_get("auth_time")?),
        access_claims: object(row.try_get("access_claims")?, "access_claims")?,
        id_claims: object(row.try_get("id_claims")?, "id_claims")?,
        issued_at: time(row.try_get("issued_at")?),
        expires_at: time(row.try_get("expires_at")?),
    })
}

fn refresh_from_row(row: &SqliteRow) -> Result<RefreshRecord, StoreError> {
    Ok(RefreshRecord {
        token_hash: row.try_get("token_hash")?,
        family_id: row.try_get("family_id")?,
        client_id: row.try_get("client_id")?,
        user_id: row.try_get("user_id")?,
        scopes: strings(row.try_get("scopes")?, "scopes")?,
        audience: row.try_get("audience")?,
        auth_time: time(row.try_get("auth_time")?),
        access_claims: object(row.try_get("access_claims")?, "access_claims")?,
        id_claims: object(row.try_get("id_claims")?, "id_claims")?,
        code_hash: row.try_get("code_hash")?,
        issued_at: time(row.try_get("issued_at")?),
        expires_at: time(row.try_get("expires_at")?),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use crate::store::{NewUser, Store, secret_hash};

    use super::*;

    async fn store_with_user() -> (Store, String) {
        let store = Store::open_memory().await.unwrap();
        let user = add_user(&store, "kim@example.com").await;
        (store, user)
    }

    async fn add_user(store: &Store, email: &str) -> String {
        store
            .add_user(
                NewUser {
                    email: email.into(),
                    password: "correct horse battery".into(),
                    ..NewUser::default()
                },
                1,
            )
            .await
            .unwrap()
            .id
    }

    fn claims(value: Value) -> Metadata {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn code(code_hash: &str, user_id: &str, expires_at: u64) -> CodeRecord {
        CodeRecord {
            code_hash: code_hash.into(),
            client_id: "spa".into(),
            redirect_uri: "https://app.example.com/cb".into(),
            code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
            user_id: user_id.into(),
            scopes: vec!["openid".into(), "read:orders".into()],
            audience: Some("https://orders.example.com".into()),
            nonce: Some("n-0S6_WzA2Mj".into()),
            auth_time: 1_000,
            access_claims: claims(json!({"https://claims.example.com/roles": ["admin"]})),
            id_claims: claims(json!({"nickname": "kim"})),
            issued_at: 1_000,
            expires_at,
        }
    }

    fn refresh(token_hash: &str, family_id: &str, user_id: &str, expires_at: u64) -> RefreshRecord {
        RefreshRecord {
            token_hash: token_hash.into(),
            family_id: family_id.into(),
            client_id: "spa".into(),
            user_id: user_id.into(),
            scopes: vec!["openid".into(), "offline_access".into()],
            audience: Some("https://orders.example.com".into()),
            auth_time: 1_000,
            access_claims: claims(json!({"tier": "gold"})),
            id_claims: Metadata::new(),
            code_hash: None,
            issued_at: 1_000,
            expires_at,
        }
    }

    fn pool(store: &Store) -> &SqlitePool {
        match &store.backend {
            crate::store::Backend::Sqlite(db) => &db.pool,
        }
    }

    #[tokio::test]
    async fn opening_creates_a_private_wal_database_and_reopens_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/data/tessera.db");
        let url = format!("sqlite://{}", path.display());
        let store = Store::open(&url).await.unwrap();
        let user = add_user(&store, "ann@example.com").await;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        }
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(pool(&store))
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(pool(&store))
            .await
            .unwrap();
        assert_eq!(fk, 1);
        drop(store);

        // Migrations are recorded once; the data is still there.
        let store = Store::open(&url).await.unwrap();
        assert!(store.user_by_id(&user).await.unwrap().is_some());
        let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(pool(&store))
            .await
            .unwrap();
        assert_eq!(applied, MIGRATIONS.len() as i64);
    }

    #[tokio::test]
    async fn a_code_is_used_once_then_replayed() {
        let (store, user) = store_with_user().await;
        let record = code("h-code-1", &user, 1_600);
        store.put_code(&record).await.unwrap();
        assert_eq!(
            store.consume_code("h-code-1", 1_010).await.unwrap(),
            CodeUse::Fresh(record.clone())
        );
        assert_eq!(
            store.consume_code("h-code-1", 1_040).await.unwrap(),
            CodeUse::Replayed(record.clone())
        );
        assert_eq!(
            store.consume_code("h-other", 1_010).await.unwrap(),
            CodeUse::Unknown
        );
        let err = store.put_code(&record).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err}");
        let err = store
            .put_code(&code("h-code-2", "u_nobody", 1_600))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Invalid {
                    field: "user_id",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[tokio::test]
    async fn an_expired_code_is_refused_and_consumed_anyway() {
        let (store, user) = store_with_user().await;
        store.put_code(&code("h-late", &user, 1_600)).await.unwrap();
        store.put_code(&code("h-edge", &user, 1_600)).await.unwrap();
        assert_eq!(
            store.consume_code("h-late", 1_600).await.unwrap(),
            CodeUse::Expired
        );
        // Consumed by the expired attempt: a clock that goes back finds it used.
        assert!(matches!(
            store.consume_code("h-late", 1_100).await.unwrap(),
            CodeUse::Replayed(_)
        ));
        assert!(matches!(
            store.consume_code("h-edge", 1_599).await.unwrap(),
            CodeUse::Fresh(_)
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn fifty_parallel_redemptions_of_one_code_give_one_fresh() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::open(&url).await.unwrap();
        let user = add_user(&store, "par@example.com").await;
        store.put_code(&code("h-race", &user, 1_600)).await.unwrap();
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(50));
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let store = store.clone();
                let barrier = barrier.clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.consume_code("h-race", 1_010).await
                })
            })
            .collect();
        let mut counts = HashMap::new();
        for task in tasks {
            let outcome = match task.await.unwrap().unwrap() {
                CodeUse::Fresh(_) => "fresh",
                CodeUse::Replayed(_) => "replayed",
                CodeUse::Expired => "expired",
                CodeUse::Unknown => "unknown",
            };
            *counts.entry(outcome).or_insert(0) += 1;
        }
        assert_eq!(counts, HashMap::from([("fresh", 1), ("replayed", 49)]));
    }

    #[tokio::test]
    async fn refresh_rotation_and_reuse_revokes_the_family() {
        let (store, user) = store_with_user().await;
        let rt1 = refresh("h-rt1", "fam-1", &user, 9_000);
        store.put_refresh(&rt1).await.unwrap();
        assert_eq!(
            store.use_refresh("h-rt1", 2_000).await.unwrap(),
            RefreshUse::Fresh(rt1.clone())
        );
        let rt2 = refresh("h-rt2", "fam-1", &user, 9_000);
        store.put_refresh(&rt2).await.unwrap();
        assert!(matches!(
            store.use_refresh("h-rt2", 2_100).await.unwrap(),
            RefreshUse::Fresh(_)
        ));
        store
            .put_refresh(&refresh("h-rt3", "fam-1", &user, 9_000))
            .await
            .unwrap();

        // An attacker replays RT1: reuse detected, the whole family dies.
        assert_eq!(
            store.use_refresh("h-rt1", 2_200).await.unwrap(),
            RefreshUse::Reused(rt1)
        );
        assert_eq!(
            store.use_refresh("h-rt3", 2_300).await.unwrap(),
            RefreshUse::Revoked
        );
        assert_eq!(
            store.use_refresh("h-rt2", 2_300).await.unwrap(),
            RefreshUse::Revoked
        );
        assert_eq!(
            store.use_refresh("h-rt1", 2_300).await.unwrap(),
            RefreshUse::Revoked
        );
        // Nothing can be added to it any more (a rotation racing the reuse).
        let err = store
            .put_refresh(&refresh("h-rt4", "fam-1", &user, 9_000))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Revoked), "{err}");
        assert_eq!(
            store.use_refresh("h-rt4", 2_300).await.unwrap(),
            RefreshUse::Unknown
        );

        // Other families are untouched.
        store
            .put_refresh(&refresh("h-other", "fam-2", &user, 9_000))
            .await
            .unwrap();
        assert!(matches!(
            store.use_refresh("h-other", 2_400).await.unwrap(),
            RefreshUse::Fresh(_)
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn parallel_uses_of_a_refresh_token_give_one_fresh_and_revoke_the_family() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::open(&url).await.unwrap();
        let user = add_user(&store, "par@example.com").await;
        store
            .put_refresh(&refresh("h-rt", "fam", &user, 9_000))
            .await
            .unwrap();
        let tasks: Vec<_> = (0..5)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.use_refresh("h-rt", 2_000).await })
            })
            .collect();
        let mut fresh = 0;
        for task in tasks {
            match task.await.unwrap().unwrap() {
                RefreshUse::Fresh(_) => fresh += 1,
                RefreshUse::Reused(_) | RefreshUse::Revoked => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(fresh, 1);
        let err = store
            .put_refresh(&refresh("h-rt2", "fam", &user, 9_000))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Revoked), "{err}");
    }

    #[tokio::test]
    async fn refresh_expiry_unknown_and_family_ownership() {
        let (store, user) = store_with_user().await;
        store
            .put_refresh(&refresh("h-old", "fam-old", &user, 5_000))
            .await
            .unwrap();
        assert_eq!(
            store.use_refresh("h-old", 5_000).await.unwrap(),
            RefreshUse::Expired
        );
        assert_eq!(
            store.use_refresh("h-none", 1_000).await.unwrap(),
            RefreshUse::Unknown
        );

        let mut other_client = refresh("h-x", "fam-old", &user, 9_000);
        other_client.client_id = "web".into();
        let err = store.put_refresh(&other_client).await.unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Invalid {
                    field: "family_id",
                    ..
                }
            ),
            "{err}"
        );
        let err = store
            .put_refresh(&refresh("h-old", "fam-new", &user, 9_000))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    }

    #[tokio::test]
    async fn a_replayed_code_revokes_its_families_present_and_future() {
        let (store, user) = store_with_user().await;
        store.put_code(&code("h-code", &user, 1_600)).await.unwrap();
        assert!(matches!(
            store.consume_code("h-code", 1_010).await.unwrap(),
            CodeUse::Fresh(_)
        ));
        let mut rt = refresh("h-rt", "fam-code", &user, 9_000);
        rt.code_hash = Some("h-code".into());
        store.put_refresh(&rt).await.unwrap();

        assert!(matches!(
            store.consume_code("h-code", 1_020).await.unwrap(),
            CodeUse::Replayed(_)
        ));
        assert_eq!(store.revoke_from_code("h-code").await.unwrap(), 1);
        assert_eq!(
            store.use_refresh("h-rt", 1_030).await.unwrap(),
            RefreshUse::Revoked
        );

        // The first redemption may still be minting: its family is stillborn.
        let mut late = refresh("h-late", "fam-late", &user, 9_000);
        late.code_hash = Some("h-code".into());
        let err = store.put_refresh(&late).await.unwrap_err();
        assert!(matches!(err, StoreError::Revoked), "{err}");
        assert_eq!(store.revoke_from_code("h-code").await.unwrap(), 0);
    }

    #[tokio::test]
    async fn revocation_by_family_and_by_token_for_its_client_only() {
        let (store, user) = store_with_user().await;
        store
            .put_refresh(&refresh("h-a", "fam-a", &user, 9_000))
            .await
            .unwrap();
        store
            .put_refresh(&refresh("h-b", "fam-b", &user, 9_000))
            .await
            .unwrap();

        assert!(!store.revoke_refresh("h-a", "someone-else").await.unwrap());
        assert!(!store.revoke_refresh("h-unknown", "spa").await.unwrap());
        assert!(store.revoke_refresh("h-a", "spa").await.unwrap());
        assert_eq!(
            store.use_refresh("h-a", 2_000).await.unwrap(),
            RefreshUse::Revoked
        );

        assert!(store.revoke_family("fam-b").await.unwrap());
        assert!(!store.revoke_family("fam-none").await.unwrap());
        assert_eq!(
            store.use_refresh("h-b", 2_000).await.unwrap(),
            RefreshUse::Revoked
        );
    }

    #[tokio::test]
    async fn sessions_expire_and_end() {
        let (store, user) = store_with_user().await;
        store
            .create_session("h-sid", &user, 1_000, 2_000)
            .await
            .unwrap();
        let session = Session {
            user_id: user.clone(),
            auth_time: 1_000,
            expires_at: 2_000,
        };
        assert_eq!(store.session("h-sid", 1_999).await.unwrap(), Some(session));
        assert_eq!(store.session("h-sid", 2_000).await.unwrap(), None);
        assert_eq!(store.session("h-nope", 1_500).await.unwrap(), None);
        assert!(matches!(
            store
                .create_session("h-sid", &user, 1_000, 2_000)
                .await
                .unwrap_err(),
            StoreError::Conflict(_)
        ));
        assert!(store.delete_session("h-sid").await.unwrap());
        assert!(!store.delete_session("h-sid").await.unwrap());
        assert_eq!(store.session("h-sid", 1_500).await.unwrap(), None);
        assert!(matches!(
            store
                .create_session("h-x", "u_nobody", 1, 2)
                .await
                .unwrap_err(),
            StoreError::Invalid {
                field: "user_id",
                ..
            }
        ));
    }

    #[tokio::test]
    async fn a_pending_request_is_taken_once() {
        let store = Store::open_memory().await.unwrap();
        let data = json!({"client_id": "spa", "scope": ["openid"], "state": "xyz"});
        store.put_pending("h-p", &data, 2_000).await.unwrap();
        assert_eq!(
            store.get_pending("h-p", 1_000).await.unwrap(),
            Some(data.clone())
        );
        assert_eq!(
            store.get_pending("h-p", 1_000).await.unwrap(),
            Some(data.clone())
        );
        assert_eq!(
            store.take_pending("h-p", 1_000).await.unwrap(),
            Some(data.clone())
        );
        assert_eq!(store.take_pending("h-p", 1_000).await.unwrap(), None);
        assert_eq!(store.get_pending("h-p", 1_000).await.unwrap(), None);

        store.put_pending("h-old", &data, 2_000).await.unwrap();
        assert_eq!(store.get_pending("h-old", 2_000).await.unwrap(), None);
        assert_eq!(store.take_pending("h-old", 2_000).await.unwrap(), None);
        assert_eq!(
            store.take_pending("h-old", 1_000).await.unwrap(),
            None,
            "an expired take still removed it"
        );

        store.put_pending("h-dup", &data, 2_000).await.unwrap();
        assert!(matches!(
            store.put_pending("h-dup", &data, 2_000).await.unwrap_err(),
            StoreError::Conflict(_)
        ));
        let huge = json!({"x": "y".repeat(crate::store::PENDING_MAX_BYTES)});
        assert!(matches!(
            store.put_pending("h-huge", &huge, 2_000).await.unwrap_err(),
            StoreError::Invalid { field: "data", .. }
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn parallel_takes_of_a_pending_request_give_it_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::open(&url).await.unwrap();
        store
            .put_pending("h-p", &json!({"n": 1}), 2_000)
            .await
            .unwrap();
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.take_pending("h-p", 1_000).await })
            })
            .collect();
        let mut got = 0;
        for task in tasks {
            got += usize::from(task.await.unwrap().unwrap().is_some());
        }
        assert_eq!(got, 1);
    }

    #[tokio::test]
    async fn removing_a_user_ends_sessions_codes_and_refresh_tokens() {
        let (store, user) = store_with_user().await;
        let other = add_user(&store, "other@example.com").await;
        store
            .create_session("h-s1", &user, 1_000, 9_000)
            .await
            .unwrap();
        store
            .create_session("h-s2", &other, 1_000, 9_000)
            .await
            .unwrap();
        store.put_code(&code("h-c1", &user, 9_000)).await.unwrap();
        store
            .put_refresh(&refresh("h-r1", "fam-1", &user, 9_000))
            .await
            .unwrap();
        store
            .put_refresh(&refresh("h-r2", "fam-2", &other, 9_000))
            .await
            .unwrap();

        assert!(store.remove_user(&user).await.unwrap());
        assert_eq!(store.session("h-s1", 2_000).await.unwrap(), None);
        assert_eq!(
            store.consume_code("h-c1", 2_000).await.unwrap(),
            CodeUse::Unknown
        );
        assert_eq!(
            store.use_refresh("h-r1", 2_000).await.unwrap(),
            RefreshUse::Revoked
        );
        // The other user keeps everything.
        assert!(store.session("h-s2", 2_000).await.unwrap().is_some());
        assert!(matches!(
            store.use_refresh("h-r2", 2_000).await.unwrap(),
            RefreshUse::Fresh(_)
        ));
    }

    #[tokio::test]
    async fn purge_deletes_what_expired_and_keeps_the_rest() {
        let (store, user) = store_with_user().await;
        store
            .put_code(&code("h-c-old", &user, 1_500))
            .await
            .unwrap();
        store
            .put_code(&code("h-c-new", &user, 3_000))
            .await
            .unwrap();
        store
            .put_pending("h-p-old", &json!({}), 1_500)
            .await
            .unwrap();
        store
            .put_pending("h-p-new", &json!({}), 3_000)
            .await
            .unwrap();
        store
            .create_session("h-s-old", &user, 1_000, 1_500)
            .await
            .unwrap();
        store
            .create_session("h-s-new", &user, 1_000, 3_000)
            .await
            .unwrap();
        store
            .put_refresh(&refresh("h-r-old", "fam-old", &user, 1_500))
            .await
            .unwrap();
        store
            .put_refresh(&refresh("h-r-new", "fam-new", &user, 3_000))
            .await
            .unwrap();

        let purged = store.purge_expired(2_000).await.unwrap();
        assert_eq!(
            purged,
            Purged {
                codes: 1,
                pending: 1,
                sessions: 1,
                refresh_tokens: 1
            }
        );
        let families: Vec<String> =
            sqlx::query_scalar("SELECT family_id FROM refresh_families ORDER BY family_id")
                .fetch_all(pool(&store))
                .await
                .unwrap();
        assert_eq!(families, ["fam-new"]);
        assert_eq!(
            store.consume_code("h-c-old", 1_000).await.unwrap(),
            CodeUse::Unknown
        );
        assert!(matches!(
            store.consume_code("h-c-new", 1_000).await.unwrap(),
            CodeUse::Fresh(_)
        ));
        assert!(store.get_pending("h-p-new", 1_000).await.unwrap().is_some());
        assert!(store.session("h-s-new", 1_000).await.unwrap().is_some());
        assert!(matches!(
            store.use_refresh("h-r-new", 1_000).await.unwrap(),
            RefreshUse::Fresh(_)
        ));
        assert_eq!(store.purge_expired(2_000).await.unwrap(), Purged::default());
    }

    #[tokio::test]
    async fn the_database_files_hold_no_plaintext_secret() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::open(&url).await.unwrap();
        let password = "Plaintext-Passw0rd-7f3a";
        let user = store
            .add_user(
                NewUser {
                    email: "secret@example.com".into(),
                    password: password.into(),
                    ..NewUser::default()
                },
                1,
            )
            .await
            .unwrap()
            .id;
        // What clients hold, and what the store is given: their hashes.
        let code_secret = "code-PLAINTEXT-8d1c0a";
        let refresh_secret = "refresh-PLAINTEXT-44b2e9";
        let session_secret = "session-PLAINTEXT-91aa07";
        let pending_secret = "pending-PLAINTEXT-5e6f3c";
        store
            .put_code(&code(&secret_hash(code_secret), &user, 9_000))
            .await
            .unwrap();
        let mut rt = refresh(&secret_hash(refresh_secret), "fam", &user, 9_000);
        rt.code_hash = Some(secret_hash(code_secret));
        store.put_refresh(&rt).await.unwrap();
        store
            .create_session(&secret_hash(session_secret), &user, 1_000, 9_000)
            .await
            .unwrap();
        store
            .put_pending(&secret_hash(pending_secret), &json!({"state": "s"}), 9_000)
            .await
            .unwrap();
        drop(store);

        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
        }
        let contains = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
        for secret in [
            password,
            code_secret,
            refresh_secret,
            session_secret,
            pending_secret,
        ] {
            assert!(!contains(secret), "{secret} is stored in plaintext");
            assert!(contains(&secret_hash(secret)) || secret == password);
        }
        assert!(contains("secret@example.com"), "the scan reads the data");
        assert!(
            contains("$argon2id$"),
            "the password is stored as an argon2id hash"
        );
    }
}
