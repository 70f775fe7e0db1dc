//! The PostgreSQL backend: a connection pool on one database, shared by every
//! replica. The statements are [`SqlStore`]'s; what is PostgreSQL's own is
//! here: the connection options (a statement timeout set on every session, an
//! application name that shows in `pg_stat_activity`) and which server errors
//! mean "unavailable, retry" rather than "wrong".
//!
//! Transactions run at PostgreSQL's default READ COMMITTED level; the
//! statements are written so that this is enough (see `sql`'s module
//! documentation).

use std::str::FromStr as _;

use sqlx::Postgres;
use sqlx::postgres::{PgConnectOptions, PgDatabaseError, PgPoolOptions};

use super::sql::{Dialect, SqlStore};
use super::{PoolSettings, StoreError};

/// Connections per replica when not configured. PostgreSQL's own default
/// limit is 100 connections for the whole server, so three replicas at 10
/// leave plenty for everyone else.
pub(super) const DEFAULT_MAX_CONNECTIONS: u32 = 10;

impl Dialect for Postgres {
    const BEGIN_WRITE: &'static str = "BEGIN";

    fn rows_affected(done: &sqlx::postgres::PgQueryResult) -> u64 {
        done.rows_affected()
    }
}

/// Connects to `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?…]`) and
/// migrates the schema. Connecting is lazy beyond the first connection: the
/// pool opens more as requests need them, and reconnects by itself after the
/// database comes back.
pub(super) async fn open(
    url: &str,
    settings: &PoolSettings,
) -> Result<(SqlStore<Postgres>, i64), StoreError> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::invalid("store.url", postgres_url_problem(&e)))?
        .application_name("tessera")
        .options([(
            "statement_timeout",
            format!("{}ms", settings.statement_timeout.as_millis()),
        )]);
    let pool = PgPoolOptions::new()
        .max_connections(settings.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS))
        .acquire_timeout(settings.connect_timeout)
        .connect_with(options)
        .await?;
    let version = SqlStore::migrate(&pool).await?;
    Ok((SqlStore { pool }, version))
}

/// What is wrong with a PostgreSQL URL, without repeating the URL (it may
/// hold a password).
fn postgres_url_problem(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Configuration(why) => format!("not a usable postgres:// URL: {why}"),
        other => format!("not a usable postgres:// URL: {other}"),
    }
}

/// Whether a PostgreSQL error means the database is unavailable or busy for
/// now: connection problems (SQLSTATE class 08), a canceled statement (the
/// statement timeout, 57014), the server shutting down or starting (57P01–03),
/// too many connections or other resource limits (class 53), and a deadlock
/// or serialization failure (class 40), which a retry resolves.
pub(super) fn is_unavailable(e: &PgDatabaseError) -> bool {
    let code = e.code();
    ["08", "53", "57", "40"]
        .iter()
        .any(|class| code.starts_with(class))
}
