//! The SQLite backend: one connection pool on one database file (WAL, a busy
//! timeout, foreign keys). The statements are [`SqlStore`]'s; what is SQLite's
//! own is here: the connection options, the file's creation with owner-only
//! permissions, and `BEGIN IMMEDIATE` (take the write lock up front, so a
//! transaction never has to upgrade a read lock and fail with `SQLITE_BUSY`).

use std::path::Path;
use std::str::FromStr as _;

use sqlx::Sqlite;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

use super::sql::{Dialect, SqlStore};
use super::{PoolSettings, StoreError};

/// Connections in a file database's pool when not configured: readers run in
/// parallel under WAL, writers take turns.
pub(super) const DEFAULT_MAX_CONNECTIONS: u32 = 8;

impl Dialect for Sqlite {
    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";

    fn rows_affected(done: &sqlx::sqlite::SqliteQueryResult) -> u64 {
        done.rows_affected()
    }
}

/// Opens (creating when missing) and migrates the database file at `path`. A
/// statement waits up to the statement timeout for another connection's
/// write lock.
pub(super) async fn open(
    path: &Path,
    settings: &PoolSettings,
) -> Result<(SqlStore<Sqlite>, i64), StoreError> {
    create_file(path)?;
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(settings.statement_timeout)
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(settings.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS))
        .acquire_timeout(settings.connect_timeout)
        .connect_with(options)
        .await?;
    let version = SqlStore::migrate(&pool).await?;
    Ok((SqlStore { pool }, version))
}

/// A private in-memory database: one connection that never closes.
pub(super) async fn open_memory() -> Result<(SqlStore<Sqlite>, i64), StoreError> {
    let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_with(options)
        .await?;
    let version = SqlStore::migrate(&pool).await?;
    Ok((SqlStore { pool }, version))
}

/// Whether an SQLite error means "busy, try again": SQLITE_BUSY (5) and
/// SQLITE_LOCKED (6), with their extended codes.
pub(super) fn is_busy(e: &sqlx::sqlite::SqliteError) -> bool {
    use sqlx::error::DatabaseError as _;
    e.code()
        .and_then(|c| c.parse::<i32>().ok())
        .is_some_and(|c| matches!(c & 0xff, 5 | 6))
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
