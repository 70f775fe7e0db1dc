//! The store: what Tessera keeps between requests and shares between
//! replicas for user flows — local users with argon2id password hashes, login
//! sessions, pending authorization requests (the login page's transaction),
//! authorization codes and refresh-token families.
//!
//! [`Store`] is the whole API: cheap to clone, async, and it never reads the
//! clock — methods where expiry matters take `now` (Unix seconds) from the
//! caller's [`Clock`](crate::token::Clock). Behind it sits one backend per
//! database — SQLite (`sqlite://PATH`, the embedded default) and PostgreSQL
//! (`postgres://…`, shared by replicas) — and both run the same statements
//! (`sql`), so they behave the same.
//!
//! Secrets never reach the database: codes, refresh tokens, session ids and
//! pending-request ids arrive already hashed (see [`secret_hash`]), and
//! passwords are hashed by [`password`] before they are stored.
//!
//! Signing keys (files, [`crate::token::keys`]) and configuration (clients,
//! APIs, grants) do not live here. The `tessera users` commands' helpers are in
//! [`cli`].
//!
//! Invariant: user ids are `u_` followed by 22 base64url characters and never
//! contain `@`, so a user's `sub` can never equal a client-credentials subject
//! (`<client>@clients`), and [`Store::remove_user`] can tell an id from an
//! email.

/// Runs `$body` with `$db` bound to the backend, whichever it is: the
/// statements are the same generic code for both.
/// Runs one operation on whichever backend the store has; a call of one
/// `SqlStore` method is timed into `tessera_store_query_duration_seconds`
/// under the method's name.
macro_rules! on_backend {
    ($self:ident, $db:ident => $recv:ident . $method:ident ( $($arg:expr),* $(,)? ) . await) => {{
        let started = std::time::Instant::now();
        let result = match &$self.backend {
            Backend::Sqlite($db) => $recv.$method($($arg),*).await,
            Backend::Postgres($db) => $recv.$method($($arg),*).await,
        };
        $self
            .queries
            .get_or_create(&crate::metrics::StoreLabels {
                operation: stringify!($method),
            })
            .observe(started.elapsed().as_secs_f64());
        result
    }};
    ($self:ident, $db:ident => $body:expr) => {
        match &$self.backend {
            Backend::Sqlite($db) => $body,
            Backend::Postgres($db) => $body,
        }
    };
}

pub mod cli;
mod copy;
pub mod password;
mod postgres;
mod sql;
mod sqlite;
#[doc(hidden)]
pub mod testing;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::metrics::{Histograms, StoreLabels};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::Value;

pub use copy::RowCounts;

/// A JSON object: user metadata and claim maps.
pub type Metadata = serde_json::Map<String, Value>;

/// The largest `app_metadata` or `user_metadata` object, serialized as JSON.
pub const METADATA_MAX_BYTES: usize = 16 * 1024;

/// The largest pending authorization request, serialized as JSON.
pub const PENDING_MAX_BYTES: usize = 64 * 1024;

/// The longest user name, in characters.
pub const NAME_MAX_CHARS: usize = 256;

/// The longest hash key (code hash, session id hash, …) the store accepts.
const KEY_MAX_BYTES: usize = 256;

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An input was refused; `field` names it (`email`, `password`,
    /// `app_metadata`, …).
    #[error("{field}: {problem}")]
    Invalid {
        /// The input that was refused.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// A unique value is taken (a user's email, a code hash, …).
    #[error("{0}")]
    Conflict(String),
    /// The grant a refresh token was being added to has been revoked (its
    /// family, or the code it was born from); issue nothing.
    #[error("the grant has been revoked")]
    Revoked,
    /// The database file or its folder could not be created.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The database failed or could not be reached.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database was migrated by a newer Tessera: this one would not
    /// know what its tables mean.
    #[error(
        "the database's schema has migration {found}, newer than this tessera knows \
         (up to {known}); run the newer tessera that migrated it"
    )]
    NewerSchema {
        /// The first version in the database this build does not know.
        found: i64,
        /// The newest version this build knows.
        known: i64,
    },
    /// A stored value could not be read back (bad JSON in a column).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// Something that should not fail did (random numbers, a blocking task).
    #[error("{0}")]
    Internal(String),
}

impl StoreError {
    fn invalid(field: &'static str, problem: impl Into<String>) -> StoreError {
        StoreError::Invalid {
            field,
            problem: problem.into(),
        }
    }

    /// Whether the database is unavailable or busy rather than the request
    /// wrong: worth a 503 with `Retry-After`.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Database(e) => match e {
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => true,
                sqlx::Error::Database(db) => {
                    if let Some(e) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                        postgres::is_unavailable(e)
                    } else if let Some(e) = db.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
                        sqlite::is_busy(e)
                    } else {
                        false
                    }
                }
                _ => false,
            },
            StoreError::Io { .. } => true,
            _ => false,
        }
    }
}

/// A local user.
#[derive(Clone, PartialEq)]
pub struct User {
    /// `u_` + 22 base64url characters; the `sub` of the user's tokens.
    pub id: String,
    /// Trimmed and lowercased; unique.
    pub email: String,
    /// Whether the email address is known to be the user's.
    pub email_verified: bool,
    /// Display name.
    pub name: Option<String>,
    /// argon2id PHC string. Never printed by `Debug`.
    pub password_hash: String,
    /// About the user, set by the system (roles, plan, …).
    pub app_metadata: Metadata,
    /// Set by the user (preferences, …).
    pub user_metadata: Metadata,
    /// Unix seconds.
    pub created_at: u64,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("email_verified", &self.email_verified)
            .field("name", &self.name)
            .field("password_hash", &"<redacted>")
            .field("app_metadata", &self.app_metadata)
            .field("user_metadata", &self.user_metadata)
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// A user to add with [`Store::add_user`].
#[derive(Clone, Default)]
pub struct NewUser {
    /// Trimmed and lowercased before it is checked and stored.
    pub email: String,
    /// Whether the email address is known to be the user's.
    pub email_verified: bool,
    /// Display name; blank means none.
    pub name: Option<String>,
    /// The plaintext password: at least [`password::MIN_LEN`] characters.
    /// Never printed by `Debug`, never stored.
    pub password: String,
    /// About the user, set by the system; at most [`METADATA_MAX_BYTES`].
    pub app_metadata: Metadata,
    /// Set by the user; at most [`METADATA_MAX_BYTES`].
    pub user_metadata: Metadata,
}

impl fmt::Debug for NewUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("email", &self.email)
            .field("email_verified", &self.email_verified)
            .field("name", &self.name)
            .field("password", &"<redacted>")
            .field("app_metadata", &self.app_metadata)
            .field("user_metadata", &self.user_metadata)
            .finish()
    }
}

/// A login session, found by the hash of its cookie value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Who logged in.
    pub user_id: String,
    /// When they entered their password (Unix seconds; OIDC `auth_time`).
    pub auth_time: u64,
    /// Unix seconds; the session is gone from this second on.
    pub expires_at: u64,
}

/// What a user allowed a third-party application for one audience.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    /// The application.
    pub client_id: String,
    /// The API, or `None` for OpenID Connect scopes alone.
    pub audience: Option<String>,
    /// Every scope allowed, sorted.
    pub scopes: Vec<String>,
    /// When it was last given (Unix seconds).
    pub granted_at: u64,
}

/// What [`Store::withdraw_consent`] ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Withdrawn {
    /// Consents deleted (one per audience).
    pub consents: u64,
    /// Refresh-token families of the client and user revoked.
    pub refresh_families: u64,
}

/// An authorization code, stored by its hash.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeRecord {
    /// The hash of the code the client holds (see [`secret_hash`]).
    pub code_hash: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The exact redirect URI of the authorization request.
    pub redirect_uri: String,
    /// The PKCE S256 challenge.
    pub code_challenge: String,
    /// The user who authorized it.
    pub user_id: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// The API (access-token `aud`), if one was requested.
    pub audience: Option<String>,
    /// The OIDC `nonce` of the request.
    pub nonce: Option<String>,
    /// When the user authenticated (Unix seconds).
    pub auth_time: u64,
    /// Claims the authorize-stage plugins set for the access token.
    pub access_claims: Metadata,
    /// Claims the authorize-stage plugins set for the ID token.
    pub id_claims: Metadata,
    /// Unix seconds.
    pub issued_at: u64,
    /// Unix seconds; the code is expired from this second on.
    pub expires_at: u64,
}

/// What redeeming a code found.
#[derive(Debug, Clone, PartialEq)]
pub enum CodeUse {
    /// First redemption, in time: issue tokens.
    Fresh(CodeRecord),
    /// Redeemed before: refuse, and revoke what the first redemption issued
    /// ([`Store::revoke_from_code`]).
    Replayed(CodeRecord),
    /// First redemption, too late; the code is now consumed all the same.
    Expired,
    /// No such code (never issued, or purged).
    Unknown,
}

/// A refresh token, stored by its hash.
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshRecord {
    /// The hash of the token the client holds (see [`secret_hash`]).
    pub token_hash: String,
    /// The grant: the first token's family id, kept by every rotation.
    pub family_id: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The user.
    pub user_id: String,
    /// Granted scopes (a refresh never widens them).
    pub scopes: Vec<String>,
    /// The API (access-token `aud`).
    pub audience: Option<String>,
    /// When the user authenticated (Unix seconds).
    pub auth_time: u64,
    /// Access-token claims from the authorize stage, carried over.
    pub access_claims: Metadata,
    /// ID-token claims from the authorize stage, carried over.
    pub id_claims: Metadata,
    /// The code the family was born from.
    pub code_hash: Option<String>,
    /// Unix seconds.
    pub issued_at: u64,
    /// Unix seconds; the token is expired from this second on.
    pub expires_at: u64,
}

/// A refresh token as introspection sees it (RFC 7662).
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshStatus {
    /// The token.
    pub record: RefreshRecord,
    /// Unused, unexpired, and its family not revoked: a refresh would
    /// rotate it. (A token just rotated is inactive even within the
    /// client's reuse leeway, which is a retry allowance, not a second life.)
    pub active: bool,
}

/// What using a refresh token found.
#[derive(Debug, Clone, PartialEq)]
pub enum RefreshUse {
    /// First use, in time, family not revoked: rotate.
    Fresh(RefreshRecord),
    /// Used before: the whole family has now been revoked (RFC 9700 §4.14.2).
    Reused(RefreshRecord),
    /// The family was revoked (reuse, code replay, RFC 7009, user removed).
    Revoked,
    /// Too late; the token is now used all the same.
    Expired,
    /// No such token (never issued, or purged).
    Unknown,
}

/// A signing key as the store keeps it: the private key only sealed with the
/// key-encryption key (see `token::kek`).
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// The RFC 7638 thumbprint.
    pub kid: String,
    /// `ES256`, `RS256` or `EdDSA`.
    pub algorithm: String,
    /// The public JWK as published (JSON).
    pub public_jwk: String,
    /// The sealed PKCS#8 private key.
    pub sealed_key: String,
    /// The fingerprint of the KEK that sealed it.
    pub kek_id: String,
    /// When it was made (Unix seconds).
    pub created_at: u64,
    /// From when it signs.
    pub activates_at: u64,
    /// From when it is no longer published.
    pub retire_at: Option<u64>,
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("kek_id", &self.kek_id)
            .field("created_at", &self.created_at)
            .field("activates_at", &self.activates_at)
            .field("retire_at", &self.retire_at)
            .finish_non_exhaustive()
    }
}

/// How many expired rows [`Store::purge_expired`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Authorization codes.
    pub codes: u64,
    /// Pending authorization requests.
    pub pending: u64,
    /// Login sessions.
    pub sessions: u64,
    /// Refresh tokens.
    pub refresh_tokens: u64,
    /// Entries of the access-token revocation list.
    pub revoked_access_tokens: u64,
    /// Forgotten counts of failed sign-ins.
    pub login_failures: u64,
    /// Used client assertions past their expiry.
    pub client_assertions: u64,
}

/// The hash under which a secret the client holds (code, refresh token,
/// session cookie, pending-request id) is stored: SHA-256, base64url without
/// padding. The secrets are high-entropy random strings, so a fast hash is
/// enough; what matters is that a copy of the database holds nothing usable.
pub fn secret_hash(secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        secret.as_bytes(),
    ))
}

/// How the store uses its database (`[store]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// Connections in the pool; `None` takes the backend's default (8 for
    /// SQLite, 10 for PostgreSQL).
    pub max_connections: Option<u32>,
    /// How long a request waits for a connection (opening one included)
    /// before it fails as unavailable.
    pub connect_timeout: Duration,
    /// The longest a statement may run (PostgreSQL's `statement_timeout`;
    /// with SQLite, how long a writer waits for the write lock).
    pub statement_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            max_connections: None,
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(5),
        }
    }
}

/// A store URL fit for a message or a log line: a PostgreSQL URL's password
/// becomes `***`; anything after the scheme that does not parse as a URL is
/// left out entirely.
pub fn redacted_url(url: &str) -> String {
    if url.starts_with("sqlite:") {
        return url.to_owned();
    }
    let scheme = url.split_once("://").map_or("", |(s, _)| s);
    let Some(rest) = url.split_once("://").map(|(_, rest)| rest) else {
        return "(not a URL)".to_owned();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// The store. Clone it freely: clones share one connection pool.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    schema_version: i64,
    /// How long each operation took, for `/metrics`.
    queries: Histograms<StoreLabels>,
}

#[derive(Clone)]
enum Backend {
    Sqlite(sql::SqlStore<sqlx::Sqlite>),
    Postgres(sql::SqlStore<sqlx::Postgres>),
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend_name())
            .field("schema_version", &self.schema_version)
            .finish()
    }
}

impl Store {
    /// Opens the store at `url` with the default [`PoolSettings`].
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Store::open_with(url, &PoolSettings::default()).await
    }

    /// Opens the store at `url` (the validated `[store] url`) and brings its
    /// schema up to date (`host/migrations/`, embedded in the binary).
    ///
    /// `sqlite://PATH`: creates the folders and the file (mode 0600 on Unix)
    /// when missing, turns on WAL, a busy timeout and foreign keys.
    /// `postgres://…` (or `postgresql://…`): connects, with the statement
    /// timeout set on every connection, and migrates under an advisory lock
    /// so that replicas starting together take turns. A database whose schema
    /// is newer than this build is [`StoreError::NewerSchema`].
    pub async fn open_with(url: &str, settings: &PoolSettings) -> Result<Store, StoreError> {
        let (backend, schema_version) = if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(StoreError::invalid(
                    "store.url",
                    "sqlite:// needs a file path, e.g. sqlite://data/tessera.db",
                ));
            }
            let (db, version) = sqlite::open(std::path::Path::new(path), settings).await?;
            (Backend::Sqlite(db), version)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let (db, version) = postgres::open(url, settings).await?;
            (Backend::Postgres(db), version)
        } else {
            // Name only the scheme: the rest of a URL may hold a password.
            let scheme = url.split_once("://").map_or("(none)", |(s, _)| s);
            return Err(StoreError::invalid(
                "store.url",
                format!("unknown scheme {scheme:?}; use sqlite://PATH or postgres://…"),
            ));
        };
        Ok(Store {
            backend,
            schema_version,
            queries: crate::metrics::histograms(),
        })
    }

    /// The backend's name: `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        match &self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// The schema version the database is at (the newest migration applied).
    pub fn schema_version(&self) -> i64 {
        self.schema_version
    }

    /// The durations of this store's operations (shared by its clones), for
    /// [`crate::metrics::Metrics::new`].
    pub fn query_timings(&self) -> Histograms<StoreLabels> {
        self.queries.clone()
    }

    /// The newest schema version this build knows.
    pub fn latest_schema_version() -> i64 {
        sql::latest_version()
    }

    /// A fresh, empty, migrated store in memory, gone when the last clone is
    /// dropped. For tests.
    pub async fn open_memory() -> Result<Store, StoreError> {
        let (db, schema_version) = sqlite::open_memory().await?;
        Ok(Store {
            backend: Backend::Sqlite(db),
            schema_version,
            queries: crate::metrics::histograms(),
        })
    }

    /// Waits for in-flight work and closes the connections (SQLite then
    /// folds its write-ahead log back into the database file). Clones fail
    /// afterwards. Dropping the store without closing is safe too.
    pub async fn close(&self) {
        on_backend!(self, db => db.close().await)
    }

    /// Whether the database answers (a `SELECT 1` on a pooled connection):
    /// what `/readyz` reports.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_backend!(self, db => db.ping().await)
    }

    // ---- users ---------------------------------------------------------

    /// Adds a user: normalizes and checks the email, name, password and
    /// metadata, hashes the password with argon2id off the async threads, and
    /// stores the user with a fresh id. A taken email is
    /// [`StoreError::Conflict`]; a refused input is [`StoreError::Invalid`].
    pub async fn add_user(&self, new: NewUser, now: u64) -> Result<User, StoreError> {
        let email = normalize_email(&new.email)?;
        let name = match new.name.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(name) => {
                if name.chars().count() > NAME_MAX_CHARS {
                    return Err(StoreError::invalid(
                        "name",
                        format!("longer than {NAME_MAX_CHARS} characters"),
                    ));
                }
                if name.chars().any(char::is_control) {
                    return Err(StoreError::invalid("name", "contains control characters"));
                }
                Some(name.to_owned())
            }
        };
        password::check_new(&new.password)?;
        check_metadata("app_metadata", &new.app_metadata)?;
        check_metadata("user_metadata", &new.user_metadata)?;
        let id = new_user_id()?;
        let password_hash = password::hash_blocking(new.password).await?;
        let user = User {
            id,
            email,
            email_verified: new.email_verified,
            name,
            password_hash,
            app_metadata: new.app_metadata,
            user_metadata: new.user_metadata,
            created_at: now,
        };
        on_backend!(self, db => db.insert_user(&user).await)?;
        Ok(user)
    }

    /// The user with this id.
    pub async fn user_by_id(&self, id: &str) -> Result<Option<User>, StoreError> {
        on_backend!(self, db => db.user_by_id(id).await)
    }

    /// The user with this email (compared trimmed and lowercased).
    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        match normalize_email(email) {
            Ok(email) => on_backend!(self, db => db.user_by_email(&email).await),
            Err(_) => Ok(None),
        }
    }

    /// Every user, oldest first (by `created_at`, then id).
    pub async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        on_backend!(self, db => db.list_users().await)
    }

    /// Removes the user with this id, or this email when it contains `@`
    /// (ids never do), together with their sessions and unredeemed codes, and
    /// revokes their refresh-token families. Whether there was such a user.
    pub async fn remove_user(&self, id_or_email: &str) -> Result<bool, StoreError> {
        let id = if id_or_email.contains('@') {
            match self.user_by_email(id_or_email).await? {
                Some(user) => user.id,
                None => return Ok(false),
            }
        } else {
            id_or_email.trim().to_owned()
        };
        on_backend!(self, db => db.remove_user(&id).await)
    }

    /// The user with this email and password, or `None` — for an unknown email
    /// and for a wrong password alike, after the same argon2 work, so neither
    /// the answer nor its timing tells whether the email is registered.
    pub async fn verify_password(
        &self,
        email: &str,
        password: &str,
    ) -> Result<Option<User>, StoreError> {
        let user = self.user_by_email(email).await?;
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        let ok = password::verify_blocking(hash, password.to_owned()).await?;
        Ok(user.filter(|_| ok))
    }

    // ---- sessions ------------------------------------------------------

    /// Records a login session under the hash of its cookie value.
    pub async fn create_session(
        &self,
        id_hash: &str,
        user_id: &str,
        auth_time: u64,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        check_key("id_hash", id_hash)?;
        on_backend!(self, db => db.create_session(id_hash, user_id, auth_time, expires_at).await)
    }

    /// The session with this id hash, unless it has expired at `now`.
    pub async fn session(&self, id_hash: &str, now: u64) -> Result<Option<Session>, StoreError> {
        on_backend!(self, db => db.session(id_hash, now).await)
    }

    /// Ends a session (logout). Whether it existed.
    pub async fn delete_session(&self, id_hash: &str) -> Result<bool, StoreError> {
        on_backend!(self, db => db.delete_session(id_hash).await)
    }

    // ---- consent -------------------------------------------------------------

    /// The scopes `user_id` allowed `client_id` for `audience` (`None`: the
    /// OpenID Connect scopes alone); empty when never asked.
    pub async fn consented_scopes(
        &self,
        user_id: &str,
        client_id: &str,
        audience: Option<&str>,
    ) -> Result<Vec<String>, StoreError> {
        let audience = audience.unwrap_or_default();
        on_backend!(self, db => db.consented_scopes(user_id, client_id, audience).await)
    }

    /// Records that `user_id` allowed `client_id` `scopes` for `audience`,
    /// on top of what they allowed it before.
    pub async fn grant_consent(
        &self,
        user_id: &str,
        client_id: &str,
        audience: Option<&str>,
        scopes: &[String],
        now: u64,
    ) -> Result<(), StoreError> {
        let mut all = self.consented_scopes(user_id, client_id, audience).await?;
        all.extend(scopes.iter().cloned());
        all.sort();
        all.dedup();
        let audience = audience.unwrap_or_default();
        on_backend!(self, db => db.put_consent(user_id, client_id, audience, &all, now).await)
    }

    /// Every consent `user_id` gave, by client and audience.
    pub async fn consents(&self, user_id: &str) -> Result<Vec<Consent>, StoreError> {
        on_backend!(self, db => db.consents(user_id).await)
    }

    /// Forgets every consent `user_id` gave `client_id` and revokes the
    /// client's refresh tokens for the user, so that it must ask again.
    pub async fn withdraw_consent(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> Result<Withdrawn, StoreError> {
        on_backend!(self, db => db.withdraw_consent(user_id, client_id).await)
    }

    // ---- issuer secrets ----------------------------------------------------

    /// The secret called `name` that every replica shares: made (32 random
    /// bytes) by the first one to ask, the same bytes for everyone after.
    pub async fn issuer_secret(&self, name: &str, now: u64) -> Result<Vec<u8>, StoreError> {
        let mut fresh = [0u8; 32];
        SystemRandom::new().fill(&mut fresh).map_err(|_| {
            StoreError::Internal("the system random number generator failed".into())
        })?;
        let fresh = URL_SAFE_NO_PAD.encode(fresh);
        let value = on_backend!(self, db => db.issuer_secret(name, &fresh, now).await)?;
        URL_SAFE_NO_PAD
            .decode(value.as_bytes())
            .map_err(|e| StoreError::invalid("issuer_secrets.value", e.to_string()))
    }

    // ---- pending authorization requests ---------------------------------

    /// Saves an authorization request while the user logs in, with the
    /// address it came from (`source`, for [`Store::pending_counts`]). At
    /// most [`PENDING_MAX_BYTES`] as JSON; an id hash in use is a conflict.
    pub async fn put_pending(
        &self,
        id_hash: &str,
        data: &Value,
        source: &str,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        check_key("id_hash", id_hash)?;
        let json =
            serde_json::to_string(data).map_err(|e| StoreError::invalid("data", e.to_string()))?;
        if json.len() > PENDING_MAX_BYTES {
            return Err(StoreError::invalid(
                "data",
                format!(
                    "{} bytes of JSON; the limit is {PENDING_MAX_BYTES}",
                    json.len()
                ),
            ));
        }
        on_backend!(self, db => db.put_pending(id_hash, &json, source, expires_at).await)
    }

    /// How many live pending requests came from `source`, and how many there
    /// are in all; each count stops at `cap`.
    pub async fn pending_counts(
        &self,
        source: &str,
        now: u64,
        cap: u64,
    ) -> Result<(u64, u64), StoreError> {
        on_backend!(self, db => db.pending_counts(source, now, cap).await)
    }

    /// Removes and returns a pending request: only one caller ever gets it.
    /// `None` when unknown, already taken, or expired at `now`.
    pub async fn take_pending(&self, id_hash: &str, now: u64) -> Result<Option<Value>, StoreError> {
        on_backend!(self, db => db.take_pending(id_hash, now).await)
    }

    /// Returns a pending request without removing it (to render the login
    /// page again). `None` when unknown or expired at `now`.
    pub async fn get_pending(&self, id_hash: &str, now: u64) -> Result<Option<Value>, StoreError> {
        on_backend!(self, db => db.get_pending(id_hash, now).await)
    }

    // ---- authorization codes --------------------------------------------

    /// Stores a code by its hash. The user must exist; a taken hash is a
    /// conflict.
    pub async fn put_code(&self, code: &CodeRecord) -> Result<(), StoreError> {
        check_key("code_hash", &code.code_hash)?;
        on_backend!(self, db => db.put_code(code).await)
    }

    /// Redeems a code in one atomic statement: of any number of concurrent
    /// redemptions exactly one finds it unconsumed. Expiry is checked after
    /// consuming, so an expired code is never usable afterwards either.
    pub async fn consume_code(&self, code_hash: &str, now: u64) -> Result<CodeUse, StoreError> {
        on_backend!(self, db => db.consume_code(code_hash, now).await)
    }

    // ---- refresh tokens --------------------------------------------------

    /// Stores a refresh token by its hash, creating its family on first use of
    /// `family_id`. Refused with [`StoreError::Revoked`] when the family is
    /// revoked or it would be born from a replayed code, so a grant revoked
    /// while tokens were being minted gets no new refresh token; with
    /// [`StoreError::Invalid`] when the family belongs to another client or
    /// user.
    pub async fn put_refresh(&self, token: &RefreshRecord) -> Result<(), StoreError> {
        check_key("token_hash", &token.token_hash)?;
        check_key("family_id", &token.family_id)?;
        on_backend!(self, db => db.put_refresh(token).await)
    }

    /// Uses a refresh token atomically: of concurrent uses exactly one is
    /// [`RefreshUse::Fresh`]. Using a token a second time revokes its whole
    /// family and answers [`RefreshUse::Reused`] (RFC 9700 §4.14.2); any use
    /// once the family is revoked answers [`RefreshUse::Revoked`].
    pub async fn use_refresh(&self, token_hash: &str, now: u64) -> Result<RefreshUse, StoreError> {
        self.use_refresh_with_leeway(token_hash, now, 0).await
    }

    /// [`Store::use_refresh`] with a reuse leeway: a token first used less
    /// than `leeway` seconds before `now` is [`RefreshUse::Fresh`] again
    /// (while its family stands), so a client whose response was lost can
    /// retry; later uses are reuse as before. Zero is no leeway.
    pub async fn use_refresh_with_leeway(
        &self,
        token_hash: &str,
        now: u64,
        leeway: u64,
    ) -> Result<RefreshUse, StoreError> {
        on_backend!(self, db => db.use_refresh(token_hash, now, leeway).await)
    }

    /// Rotates a refresh token in one transaction: uses it as
    /// [`Store::use_refresh_with_leeway`] does and, when it is
    /// [`RefreshUse::Fresh`], stores its successor (`successor_hash`, the
    /// same grant, issued at `now`, expiring at `successor_expires_at`) in
    /// the same commit. A crash or a lost connection leaves the family either
    /// rotated or as it was, never with a spent token and no successor.
    /// [`StoreError::Revoked`] when the family was revoked meanwhile (the old
    /// token then stays unused).
    pub async fn rotate_refresh(
        &self,
        token_hash: &str,
        now: u64,
        leeway: u64,
        successor_hash: &str,
        successor_expires_at: u64,
    ) -> Result<RefreshUse, StoreError> {
        check_key("token_hash", successor_hash)?;
        on_backend!(self, db => db.rotate_refresh(token_hash, now, leeway, successor_hash, successor_expires_at).await)
    }

    /// Reads a refresh token without using it, so a request can be checked
    /// (its scope, say) before the token is spent.
    pub async fn refresh_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<RefreshRecord>, StoreError> {
        on_backend!(self, db => db.refresh_token(token_hash).await)
    }

    /// Revokes a refresh-token family. Whether it existed.
    pub async fn revoke_family(&self, family_id: &str) -> Result<bool, StoreError> {
        on_backend!(self, db => db.revoke_family(family_id).await)
    }

    /// Revokes every family born from this code, and marks the code so no
    /// family can be born from it later (a replayed code's first redemption
    /// may still be minting). How many families were newly revoked.
    pub async fn revoke_from_code(&self, code_hash: &str) -> Result<u64, StoreError> {
        on_backend!(self, db => db.revoke_from_code(code_hash).await)
    }

    /// RFC 7009: revokes the grant (family) of a refresh token, if the token
    /// was issued to `client_id`. Whether such a token was found.
    pub async fn revoke_refresh(
        &self,
        token_hash: &str,
        client_id: &str,
    ) -> Result<bool, StoreError> {
        on_backend!(self, db => db.revoke_refresh(token_hash, client_id).await)
    }

    /// A refresh token and whether it is active, without using it.
    pub async fn refresh_status(
        &self,
        token_hash: &str,
        now: u64,
    ) -> Result<Option<RefreshStatus>, StoreError> {
        on_backend!(self, db => db.refresh_status(token_hash, now).await)
    }

    // ---- revoked access tokens ---------------------------------------------

    /// Puts an access token on the revocation list until `expires_at` (its
    /// `exp`). Revoking a token twice is not an error.
    pub async fn revoke_access_token(
        &self,
        jti: &str,
        client_id: &str,
        now: u64,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        check_key("jti", jti)?;
        on_backend!(self, db => db.revoke_access_token(jti, client_id, now, expires_at).await)
    }

    /// Whether the access token `jti` is on the revocation list.
    pub async fn access_token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        on_backend!(self, db => db.access_token_revoked(jti).await)
    }

    // ---- client assertions ---------------------------------------------------

    /// Marks the client assertion `jti` of `client_id` as used, remembered
    /// until `expires_at`. True the first time; false when it was used
    /// before (a replay). Atomic: of two concurrent uses one wins.
    pub async fn spend_client_assertion(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: u64,
    ) -> Result<bool, StoreError> {
        check_key("jti", jti)?;
        on_backend!(self, db => db.spend_client_assertion(client_id, jti, expires_at).await)
    }

    // ---- login throttling --------------------------------------------------

    /// The latest `blocked_until` of `subjects` still remembered at `now`
    /// (0 when none is blocked).
    pub async fn login_blocked_until(
        &self,
        subjects: &[&str],
        now: u64,
    ) -> Result<u64, StoreError> {
        on_backend!(self, db => db.login_blocked_until(subjects, now).await)
    }

    /// Counts one more failed sign-in for `subject`, remembered until
    /// `forget_at` (a count already forgotten at `now` starts again at one);
    /// returns the count. Atomic: concurrent failures each count.
    pub async fn record_login_failure(
        &self,
        subject: &str,
        now: u64,
        forget_at: u64,
    ) -> Result<u64, StoreError> {
        check_key("subject", subject)?;
        on_backend!(self, db => db.record_login_failure(subject, now, forget_at).await)
    }

    /// Refuses sign-ins for `subject` until `until`; the count is remembered
    /// until `forget_at`.
    pub async fn block_login(
        &self,
        subject: &str,
        until: u64,
        forget_at: u64,
    ) -> Result<(), StoreError> {
        on_backend!(self, db => db.block_login(subject, until, forget_at).await)
    }

    /// Forgets the failed sign-ins of `subject` (after a successful one).
    pub async fn clear_login_failures(&self, subject: &str) -> Result<(), StoreError> {
        on_backend!(self, db => db.clear_login_failures(subject).await)
    }

    // ---- signing keys ------------------------------------------------------

    /// Every signing key, in the order they were added.
    pub async fn signing_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        on_backend!(self, db => db.signing_keys().await)
    }

    /// Adds a signing key. With `only_if_first`, only when the store has no
    /// key yet, and whether it was added: of replicas starting together on
    /// an empty store exactly one adds its first key, and the others use it.
    pub async fn add_signing_key(
        &self,
        key: &StoredKey,
        only_if_first: bool,
    ) -> Result<bool, StoreError> {
        on_backend!(self, db => db.add_signing_key(key, only_if_first).await)
    }

    /// Adds a store's first signing keys, one per algorithm, all or none:
    /// only when the store has no key yet, and whether they were added. Of
    /// replicas starting together on an empty store exactly one adds its
    /// keys, and the others use them.
    pub async fn add_first_signing_keys(&self, keys: &[StoredKey]) -> Result<bool, StoreError> {
        on_backend!(self, db => db.add_first_signing_keys(keys).await)
    }

    /// Sets when a key stops being published. Whether the key exists.
    pub async fn retire_signing_key(&self, kid: &str, at: u64) -> Result<bool, StoreError> {
        on_backend!(self, db => db.retire_signing_key(kid, at).await)
    }

    // ---- copying ---------------------------------------------------------------

    /// How many rows each table holds.
    pub async fn row_counts(&self) -> Result<RowCounts, StoreError> {
        on_backend!(self, db => db.row_counts().await)
    }

    /// Copies every row of this store into `target`, read in one transaction
    /// and written in one: into an empty target, or with `replace` over
    /// whatever it held. A target that is not empty is refused with
    /// [`StoreError::Conflict`] and left as it was. Whatever was copied.
    pub async fn copy_to(&self, target: &Store, replace: bool) -> Result<RowCounts, StoreError> {
        let dump = on_backend!(self, db => db.dump().await)?;
        on_backend!(target, db => db.load(&dump, replace).await)?;
        Ok(dump.counts())
    }

    // ---- housekeeping ------------------------------------------------------

    /// Deletes codes, pending requests, sessions and refresh tokens expired at
    /// `now`, and refresh families left without tokens. Call it periodically.
    pub async fn purge_expired(&self, now: u64) -> Result<Purged, StoreError> {
        on_backend!(self, db => db.purge_expired(now).await)
    }
}

/// Trims and lowercases an email address and checks its shape: 3 to 254
/// characters, exactly one `@` with something on each side, no whitespace or
/// control characters.
pub fn normalize_email(email: &str) -> Result<String, StoreError> {
    let email = email.trim().to_lowercase();
    let len = email.chars().count();
    if !(3..=254).contains(&len) {
        return Err(StoreError::invalid(
            "email",
            format!("{len} characters; an address has 3 to 254"),
        ));
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(StoreError::invalid(
            "email",
            "contains spaces or control characters",
        ));
    }
    match email.split_once('@') {
        Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@') =>
        {
            Ok(email)
        }
        _ => Err(StoreError::invalid(
            "email",
            format!("{email:?} is not an address of the form name@domain"),
        )),
    }
}

fn check_metadata(field: &'static str, metadata: &Metadata) -> Result<(), StoreError> {
    let len = serde_json::to_string(metadata)
        .map_err(|e| StoreError::invalid(field, e.to_string()))?
        .len();
    if len > METADATA_MAX_BYTES {
        return Err(StoreError::invalid(
            field,
            format!("{len} bytes of JSON; the limit is {METADATA_MAX_BYTES}"),
        ));
    }
    Ok(())
}

fn check_key(field: &'static str, key: &str) -> Result<(), StoreError> {
    if key.is_empty() || key.len() > KEY_MAX_BYTES {
        return Err(StoreError::invalid(
            field,
            format!("must be 1 to {KEY_MAX_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// `u_` + base64url of 16 random bytes: 24 characters, never an `@`.
fn new_user_id() -> Result<String, StoreError> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| StoreError::Internal("the system random number generator failed".into()))?;
    Ok(format!("u_{}", URL_SAFE_NO_PAD.encode(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn new_user(email: &str) -> NewUser {
        NewUser {
            email: email.to_owned(),
            password: "correct horse battery".to_owned(),
            ..NewUser::default()
        }
    }

    fn object(value: Value) -> Metadata {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    #[tokio::test]
    async fn add_user_normalizes_hashes_and_reads_back() {
        let store = Store::open_memory().await.unwrap();
        let user = store
            .add_user(
                NewUser {
                    email: "  Ada@Example.COM ".into(),
                    email_verified: true,
                    name: Some("  Ada Lovelace ".into()),
                    password: "correct horse battery".into(),
                    app_metadata: object(json!({"roles": ["admin"], "plan": {"tier": 2}})),
                    user_metadata: object(json!({"theme": "dark"})),
                },
                1_700_000_000,
            )
            .await
            .unwrap();
        assert_eq!(user.email, "ada@example.com");
        assert_eq!(user.name.as_deref(), Some("Ada Lovelace"));
        assert!(user.email_verified);
        assert_eq!(user.created_at, 1_700_000_000);
        assert!(
            user.id.starts_with("u_") && user.id.len() == 24,
            "{}",
            user.id
        );
        assert!(!user.id.contains('@'));
        assert!(user.password_hash.starts_with("$argon2id$"));
        assert!(!user.password_hash.contains("correct horse"));

        assert_eq!(
            store.user_by_id(&user.id).await.unwrap().as_ref(),
            Some(&user)
        );
        assert_eq!(
            store
                .user_by_email("ADA@example.com")
                .await
                .unwrap()
                .as_ref(),
            Some(&user)
        );
        assert_eq!(store.user_by_id("u_nobody").await.unwrap(), None);
        assert_eq!(store.user_by_email("not an email").await.unwrap(), None);
    }

    #[tokio::test]
    async fn duplicate_email_is_a_conflict_whatever_its_case() {
        let store = Store::open_memory().await.unwrap();
        store
            .add_user(new_user("bob@example.com"), 1)
            .await
            .unwrap();
        let err = store
            .add_user(new_user(" BOB@example.com"), 2)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Conflict(m) if m.contains("bob@example.com")),
            "{err}"
        );
        assert_eq!(store.list_users().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn invalid_inputs_name_their_field() {
        let store = Store::open_memory().await.unwrap();
        let field_of = |e: StoreError| match e {
            StoreError::Invalid { field, .. } => field,
            other => panic!("expected Invalid, got {other:?}"),
        };
        for email in [
            "",
            "a@",
            "@b",
            "ab",
            "no-at-sign",
            "two@@example.com",
            "a@b@c",
            "with space@example.com",
            "tab\t@example.com",
            "nul\u{0}@example.com",
        ] {
            let err = store.add_user(new_user(email), 1).await.unwrap_err();
            assert_eq!(field_of(err), "email", "{email:?}");
        }
        let long = format!("{}@example.com", "a".repeat(243));
        assert_eq!(long.len(), 255);
        assert_eq!(
            field_of(store.add_user(new_user(&long), 1).await.unwrap_err()),
            "email"
        );
        assert!(
            store.add_user(new_user(&long[1..]), 1).await.is_ok(),
            "254 is fine"
        );
        assert!(
            store.add_user(new_user("a@b"), 1).await.is_ok(),
            "3 is fine"
        );

        let mut short = new_user("short@example.com");
        short.password = "1234567".into();
        assert_eq!(
            field_of(store.add_user(short, 1).await.unwrap_err()),
            "password"
        );

        let mut big = new_user("big@example.com");
        big.app_metadata = object(json!({"blob": "x".repeat(METADATA_MAX_BYTES)}));
        assert_eq!(
            field_of(store.add_user(big, 1).await.unwrap_err()),
            "app_metadata"
        );
        let mut big = new_user("big@example.com");
        big.user_metadata = object(json!({"blob": "x".repeat(METADATA_MAX_BYTES)}));
        assert_eq!(
            field_of(store.add_user(big, 1).await.unwrap_err()),
            "user_metadata"
        );

        let mut named = new_user("named@example.com");
        named.name = Some("bad\nname".into());
        assert_eq!(
            field_of(store.add_user(named, 1).await.unwrap_err()),
            "name"
        );

        let emails: Vec<_> = store
            .list_users()
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.email)
            .collect();
        assert_eq!(emails.len(), 2, "only the two valid users: {emails:?}");
    }

    #[tokio::test]
    async fn list_is_ordered_by_creation_and_remove_takes_id_or_email() {
        let store = Store::open_memory().await.unwrap();
        let c = store.add_user(new_user("c@example.com"), 30).await.unwrap();
        let a = store.add_user(new_user("a@example.com"), 10).await.unwrap();
        let b = store.add_user(new_user("b@example.com"), 20).await.unwrap();
        let ids = |users: Vec<User>| users.into_iter().map(|u| u.id).collect::<Vec<_>>();
        assert_eq!(
            ids(store.list_users().await.unwrap()),
            [a.id.clone(), b.id.clone(), c.id.clone()]
        );

        assert!(store.remove_user(&b.id).await.unwrap());
        assert!(!store.remove_user(&b.id).await.unwrap(), "already gone");
        assert!(store.remove_user(" C@Example.com ").await.unwrap());
        assert!(!store.remove_user("nobody@example.com").await.unwrap());
        assert_eq!(ids(store.list_users().await.unwrap()), [a.id]);
        assert_eq!(store.user_by_email("c@example.com").await.unwrap(), None);
    }

    #[tokio::test]
    async fn verify_password_answers_none_for_wrong_and_unknown_alike() {
        let store = Store::open_memory().await.unwrap();
        let user = store
            .add_user(new_user("eve@example.com"), 1)
            .await
            .unwrap();
        let right = store
            .verify_password("EVE@example.com", "correct horse battery")
            .await
            .unwrap();
        assert_eq!(right.map(|u| u.id), Some(user.id));
        assert_eq!(
            store
                .verify_password("eve@example.com", "correct horse batterx")
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store
                .verify_password("nobody@example.com", "correct horse battery")
                .await
                .unwrap(),
            None
        );
        assert_eq!(store.verify_password("", "").await.unwrap(), None);
    }

    #[tokio::test]
    async fn unknown_email_costs_an_argon2_verification_too() {
        // Not a benchmark: shows the unknown-email path does the argon2 work
        // (skipping it would make it ~1000× faster), with a wide margin.
        let store = Store::open_memory().await.unwrap();
        store
            .add_user(new_user("tim@example.com"), 1)
            .await
            .unwrap();
        let mut wrong = Vec::new();
        let mut unknown = Vec::new();
        for _ in 0..5 {
            let t = std::time::Instant::now();
            store
                .verify_password("tim@example.com", "wrong password")
                .await
                .unwrap();
            wrong.push(t.elapsed());
            let t = std::time::Instant::now();
            store
                .verify_password("nobody@example.com", "wrong password")
                .await
                .unwrap();
            unknown.push(t.elapsed());
        }
        wrong.sort();
        unknown.sort();
        let (wrong, unknown) = (wrong[2], unknown[2]);
        assert!(
            unknown * 2 > wrong && wrong * 2 > unknown,
            "median unknown {unknown:?} vs wrong password {wrong:?}"
        );
    }

    #[test]
    fn debug_never_shows_passwords_or_hashes() {
        let user = User {
            id: "u_x".into(),
            email: "a@b.c".into(),
            email_verified: false,
            name: None,
            password_hash: "$argon2id$SECRET-HASH".into(),
            app_metadata: Metadata::new(),
            user_metadata: Metadata::new(),
            created_at: 0,
        };
        let shown = format!("{user:?}");
        assert!(
            !shown.contains("SECRET-HASH") && shown.contains("<redacted>"),
            "{shown}"
        );
        let new = NewUser {
            password: "PLAINTEXT-PW".into(),
            ..NewUser::default()
        };
        let shown = format!("{new:?}");
        assert!(
            !shown.contains("PLAINTEXT-PW") && shown.contains("<redacted>"),
            "{shown}"
        );
    }

    #[test]
    fn user_ids_are_random_and_never_contain_an_at_sign() {
        let ids: std::collections::HashSet<String> =
            (0..1000).map(|_| new_user_id().unwrap()).collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            assert_eq!(id.len(), 24);
            assert!(id.starts_with("u_"));
            assert!(
                id[2..]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
        }
    }

    #[test]
    fn redacted_urls_keep_everything_but_the_password() {
        assert_eq!(
            redacted_url("postgres://tessera:hunter2@db:5432/tessera?sslmode=require"),
            "postgres://tessera:***@db:5432/tessera?sslmode=require"
        );
        assert_eq!(
            redacted_url("postgres://tessera@db/tessera"),
            "postgres://tessera@db/tessera"
        );
        assert_eq!(
            redacted_url("postgresql://u:p@ss@db/x"),
            "postgresql://u:***@db/x"
        );
        assert_eq!(
            redacted_url("sqlite:///var/lib/t.db"),
            "sqlite:///var/lib/t.db"
        );
        assert_eq!(redacted_url("hunter2"), "(not a URL)");
    }

    #[test]
    fn secret_hash_is_sha256_base64url() {
        let h = secret_hash("abc");
        assert_eq!(h, "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
        assert_ne!(secret_hash("abd"), h);
    }

    #[tokio::test]
    async fn open_refuses_what_it_cannot_serve() {
        // Nothing listens on port 1: the database is unavailable, and the
        // message does not repeat the password.
        let quick = PoolSettings {
            connect_timeout: Duration::from_millis(300),
            ..PoolSettings::default()
        };
        let err = Store::open_with("postgres://tessera:hunter2@127.0.0.1:1/tessera", &quick)
            .await
            .unwrap_err();
        assert!(err.is_unavailable(), "{err:?}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = Store::open("postgres://tessera@127.0.0.1:1/tessera?sslmode=sideways")
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Invalid { field: "store.url", problem } if problem.contains("postgres://")),
            "{err:?}"
        );
        let err = Store::open("mysql://root:hunter2@db/x").await.unwrap_err();
        assert!(matches!(
            err,
            StoreError::Invalid {
                field: "store.url",
                ..
            }
        ));
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = Store::open("sqlite://").await.unwrap_err();
        assert!(matches!(
            err,
            StoreError::Invalid {
                field: "store.url",
                ..
            }
        ));
    }
}
