//! The store's statements, written once for every SQL backend: [`SqlStore`]
//! is generic over the sqlx database, and each backend module (`sqlite`,
//! `postgres`) only opens its pool and says, through [`Dialect`], how a
//! write transaction starts and which errors mean "the database is busy or
//! gone".
//!
//! The SQL is the portable subset both databases agree on: `$1`
//! placeholders, TEXT/BIGINT/BOOLEAN columns, JSON as TEXT, times as Unix
//! seconds, `RETURNING` and `ON CONFLICT`. The schema is one set of migration
//! files (`host/migrations/`) for both, tracked in sqlx's `_sqlx_migrations`
//! table.
//!
//! Concurrency rests on statements that are atomic in any SQL database:
//! single use of codes and refresh tokens is one `UPDATE … WHERE … IS NULL
//! RETURNING` each, so only one caller can see the row unused. Where a
//! transaction reads a row and then writes depending on it (a refresh token
//! joining its family), it first locks the row by updating it to itself
//! (`SET revoked = revoked … RETURNING`): PostgreSQL then makes a concurrent
//! revocation wait for the commit, or the read see the revocation, and
//! SQLite serializes writers anyway (`BEGIN IMMEDIATE`). Rows are always
//! locked code first, then family, so two transactions never wait on each
//! other in a circle.

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migrate, MigrateError, Migration, MigrationSource, MigrationType, Migrator};
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};

use super::copy::{Cell, Dump, Kind, RowCounts, TABLES};
use super::{
    CodeRecord, CodeUse, Consent, Metadata, Purged, RefreshRecord, RefreshStatus, RefreshUse,
    Session, StoreError, StoredKey, User, Withdrawn,
};

/// The schema, oldest first, shared by every backend. Never edit a released
/// file (sqlx checks checksums); add the next one.
pub(super) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../../migrations/0001_initial.sql"),
    ),
    (
        2,
        "signing keys",
        include_str!("../../migrations/0002_signing_keys.sql"),
    ),
    (
        3,
        "revoked access tokens",
        include_str!("../../migrations/0003_revoked_access_tokens.sql"),
    ),
    (
        4,
        "issuer secrets",
        include_str!("../../migrations/0004_issuer_secrets.sql"),
    ),
    (
        5,
        "login throttle",
        include_str!("../../migrations/0005_login_throttle.sql"),
    ),
    (
        6,
        "client assertions",
        include_str!("../../migrations/0006_client_assertions.sql"),
    ),
    (
        7,
        "consents",
        include_str!("../../migrations/0007_consents.sql"),
    ),
];

/// The newest schema version this build knows.
pub(super) fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |&(version, _, _)| version)
}

/// [`MIGRATIONS`] as a sqlx migration source, so the SQL is compiled into the
/// binary without sqlx's macros.
#[derive(Debug)]
struct Embedded;

impl MigrationSource<'static> for Embedded {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 'static>> {
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

/// What differs between the SQL backends.
pub(super) trait Dialect: Database {
    /// Starts a transaction that will write.
    const BEGIN_WRITE: &'static str;
    /// Rows a statement changed.
    fn rows_affected(done: &Self::QueryResult) -> u64;
}

/// Reading a column by name, for the rows of every backend.
pub(super) trait Columns {
    fn text(&self, column: &str) -> Result<String, sqlx::Error>;
    fn text_or_null(&self, column: &str) -> Result<Option<String>, sqlx::Error>;
    fn int(&self, column: &str) -> Result<i64, sqlx::Error>;
    fn int_or_null(&self, column: &str) -> Result<Option<i64>, sqlx::Error>;
    fn flag(&self, column: &str) -> Result<bool, sqlx::Error>;
    fn flag_or_null(&self, column: &str) -> Result<Option<bool>, sqlx::Error>;
}

impl<R> Columns for R
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
{
    fn text(&self, column: &str) -> Result<String, sqlx::Error> {
        self.try_get(column)
    }
    fn text_or_null(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
        self.try_get(column)
    }
    fn int(&self, column: &str) -> Result<i64, sqlx::Error> {
        self.try_get(column)
    }
    fn int_or_null(&self, column: &str) -> Result<Option<i64>, sqlx::Error> {
        self.try_get(column)
    }
    fn flag(&self, column: &str) -> Result<bool, sqlx::Error> {
        self.try_get(column)
    }
    fn flag_or_null(&self, column: &str) -> Result<Option<bool>, sqlx::Error> {
        self.try_get(column)
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

macro_rules! key_columns {
    () => {
        "kid, algorithm, public_jwk, sealed_key, kek_id, created_at, activates_at, retire_at"
    };
}

macro_rules! refresh_columns {
    () => {
        "token_hash, family_id, client_id, user_id, scopes, audience, auth_time, access_claims, \
         id_claims, code_hash, issued_at, expires_at"
    };
}

/// The single-use guarantee for refresh tokens, as for codes: of concurrent
/// uses one finds the token unused. A revoked family's tokens are never
/// marked used, so they keep answering Revoked. Within the client's reuse
/// leeway (`$3` = now − leeway) a token used before may be used again (its
/// first use time stays), so a client whose response was lost can retry.
const USE_REFRESH: &str = concat!(
    "UPDATE refresh_tokens SET used_at = COALESCE(used_at, $2) \
     WHERE token_hash = $1 AND (used_at IS NULL OR used_at > $3) AND NOT EXISTS (\
         SELECT 1 FROM refresh_families f \
         WHERE f.family_id = refresh_tokens.family_id AND f.revoked) \
     RETURNING ",
    refresh_columns!()
);

/// The store on one SQL database: a connection pool and the statements.
pub(super) struct SqlStore<DB: Database> {
    pub(super) pool: Pool<DB>,
}

impl<DB: Database> Clone for SqlStore<DB> {
    fn clone(&self) -> Self {
        SqlStore {
            pool: self.pool.clone(),
        }
    }
}

impl<DB> SqlStore<DB>
where
    DB: Dialect,
    DB::Connection: Migrate,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> Option<bool>: Encode<'q, DB> + Type<DB>,
    DB::Row: Columns,
{
    /// Brings the schema up to date. On PostgreSQL the migrator holds an
    /// advisory lock for the whole run, so replicas starting together migrate
    /// one after the other; when a run fails half-way its connection is
    /// closed rather than returned to the pool, which releases the lock. A
    /// database migrated by a newer Tessera is refused before anything is
    /// changed. The schema version the database is at afterwards.
    pub(super) async fn migrate(pool: &Pool<DB>) -> Result<i64, StoreError> {
        let migrator = Migrator::new(Embedded).await?;
        let mut conn = pool.acquire().await?;
        // `run_direct` is `run` on one connection we hold (sqlx's own way
        // around `Acquire` in generic code).
        let applied = match migrator.run_direct(&mut *conn).await {
            Ok(()) => conn.list_applied_migrations().await,
            Err(e) => {
                let _ = sqlx::Connection::close(conn.detach()).await;
                Err(e)
            }
        };
        match applied {
            Ok(applied) => Ok(applied.iter().map(|m| m.version).max().unwrap_or(0)),
            Err(MigrateError::VersionMissing(version)) => Err(StoreError::NewerSchema {
                found: version,
                known: latest_version(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn close(&self) {
        self.pool.close().await;
    }

    pub(super) async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
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
        let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM authorization_codes WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM consents WHERE user_id = $1")
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
            .await?;
        tx.commit().await?;
        Ok(DB::rows_affected(&removed) > 0)
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
                user_id: row.text("user_id")?,
                auth_time: time(row.int("auth_time")?),
                expires_at: time(row.int("expires_at")?),
            })
        })
        .transpose()
    }

    pub(super) async fn delete_session(&self, id_hash: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(DB::rows_affected(&done) > 0)
    }

    // ---- consent -------------------------------------------------------------

    pub(super) async fn consented_scopes(
        &self,
        user_id: &str,
        client_id: &str,
        audience: &str,
    ) -> Result<Vec<String>, StoreError> {
        let row = sqlx::query(
            "SELECT scopes FROM consents WHERE user_id = $1 AND client_id = $2 AND audience = $3",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(audience)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => strings(row.text("scopes")?, "consents.scopes"),
            None => Ok(Vec::new()),
        }
    }

    pub(super) async fn put_consent(
        &self,
        user_id: &str,
        client_id: &str,
        audience: &str,
        scopes: &[String],
        now: u64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO consents (user_id, client_id, audience, scopes, granted_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, client_id, audience) \
             DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(audience)
        .bind(json(scopes))
        .bind(db_time(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn consents(&self, user_id: &str) -> Result<Vec<Consent>, StoreError> {
        sqlx::query(
            "SELECT client_id, audience, scopes, granted_at FROM consents \
             WHERE user_id = $1 ORDER BY client_id, audience",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            let audience = row.text("audience")?;
            Ok(Consent {
                client_id: row.text("client_id")?,
                audience: (!audience.is_empty()).then_some(audience),
                scopes: strings(row.text("scopes")?, "consents.scopes")?,
                granted_at: time(row.int("granted_at")?),
            })
        })
        .collect()
    }

    pub(super) async fn withdraw_consent(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> Result<Withdrawn, StoreError> {
        let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
        let consents = sqlx::query("DELETE FROM consents WHERE user_id = $1 AND client_id = $2")
            .bind(user_id)
            .bind(client_id)
            .execute(&mut *tx)
            .await?;
        let families = sqlx::query(
            "UPDATE refresh_families SET revoked = TRUE \
             WHERE user_id = $1 AND client_id = $2 AND NOT revoked",
        )
        .bind(user_id)
        .bind(client_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Withdrawn {
            consents: DB::rows_affected(&consents),
            refresh_families: DB::rows_affected(&families),
        })
    }

    // ---- pending authorization requests ---------------------------------

    pub(super) async fn put_pending(
        &self,
        id_hash: &str,
        data: &str,
        source: &str,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO pending_requests (id_hash, data, expires_at, source) VALUES ($1, $2, $3, $4)",
        )
            .bind(id_hash)
            .bind(data)
            .bind(db_time(expires_at))
            .bind(source)
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
        if time(row.int("expires_at")?) <= now {
            return Ok(None);
        }
        parse_value(row.text("data")?).map(Some)
    }

    pub(super) async fn get_pending(
        &self,
        id_hash: &str,
        now: u64,
    ) -> Result<Option<Value>, StoreError> {
        let row =
            sqlx::query("SELECT data FROM pending_requests WHERE id_hash = $1 AND expires_at > $2")
                .bind(id_hash)
                .bind(db_time(now))
                .fetch_optional(&self.pool)
                .await?;
        row.map(|row| parse_value(row.text("data")?)).transpose()
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
        let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
        Self::insert_refresh(&mut *tx, token).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores a refresh token, and its family on first use, inside the
    /// caller's write transaction: refused when the family is revoked or
    /// born from a replayed code.
    async fn insert_refresh(
        tx: &mut DB::Connection,
        token: &RefreshRecord,
    ) -> Result<(), StoreError> {
        // A family born from a code that was replayed meanwhile is stillborn.
        // The code's row is locked first (see the module's documentation), so
        // a replay's revocation either happened before and is seen here, or
        // waits for this commit and then finds the family.
        if let Some(code_hash) = &token.code_hash {
            let code = sqlx::query(
                "UPDATE authorization_codes SET revoked = revoked WHERE code_hash = $1 \
                 RETURNING revoked",
            )
            .bind(code_hash)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(code) = code
                && code.flag("revoked")?
            {
                return Err(StoreError::Revoked);
            }
        }
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
            "UPDATE refresh_families SET revoked = revoked WHERE family_id = $1 \
             RETURNING client_id, user_id, code_hash, revoked",
        )
        .bind(&token.family_id)
        .fetch_one(&mut *tx)
        .await?;
        if family.text("client_id")? != token.client_id || family.text("user_id")? != token.user_id
        {
            return Err(StoreError::invalid(
                "family_id",
                "the family belongs to another client or user",
            ));
        }
        if family.text_or_null("code_hash")? != token.code_hash {
            return Err(StoreError::invalid(
                "code_hash",
                "differs from the code the family was born from",
            ));
        }
        if family.flag("revoked")? {
            return Err(StoreError::Revoked);
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
        leeway: u64,
    ) -> Result<RefreshUse, StoreError> {
        let first = sqlx::query(USE_REFRESH)
            .bind(token_hash)
            .bind(db_time(now))
            .bind(db_time(now.saturating_sub(leeway)))
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
        self.refused_use(token_hash).await
    }

    /// A rotation in one transaction: the token is used as by
    /// [`SqlStore::use_refresh`] and, when fresh, its successor
    /// (`successor_hash`, issued at `now`, expiring at `successor_expires_at`)
    /// joins the family in the same commit. A crash leaves the old token
    /// unused or the family rotated, never a spent token without a successor.
    pub(super) async fn rotate_refresh(
        &self,
        token_hash: &str,
        now: u64,
        leeway: u64,
        successor_hash: &str,
        successor_expires_at: u64,
    ) -> Result<RefreshUse, StoreError> {
        let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
        let first = sqlx::query(USE_REFRESH)
            .bind(token_hash)
            .bind(db_time(now))
            .bind(db_time(now.saturating_sub(leeway)))
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = first {
            let token = refresh_from_row(&row)?;
            if token.expires_at <= now {
                tx.commit().await?;
                return Ok(RefreshUse::Expired);
            }
            let successor = RefreshRecord {
                token_hash: successor_hash.to_owned(),
                issued_at: now,
                expires_at: successor_expires_at,
                ..token.clone()
            };
            Self::insert_refresh(&mut *tx, &successor).await?;
            tx.commit().await?;
            return Ok(RefreshUse::Fresh(token));
        }
        tx.rollback().await?;
        self.refused_use(token_hash).await
    }

    /// Why a token the single-use statement did not take was refused; a
    /// second use outside the leeway revokes the family.
    async fn refused_use(&self, token_hash: &str) -> Result<RefreshUse, StoreError> {
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
        if row.flag_or_null("family_revoked")? != Some(false) {
            return Ok(RefreshUse::Revoked);
        }
        if row.int_or_null("used_at")?.is_none() {
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
        Ok(DB::rows_affected(&done) > 0)
    }

    pub(super) async fn revoke_from_code(&self, code_hash: &str) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
        sqlx::query("UPDATE authorization_codes SET revoked = TRUE WHERE code_hash = $1")
            .bind(code_hash)
            .execute(&mut *tx)
            .await?;
        let families = sqlx::query(
            "UPDATE refresh_families SET revoked = TRUE WHERE code_hash = $1 AND NOT revoked",
        )
        .bind(code_hash)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(DB::rows_affected(&families))
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
        Ok(DB::rows_affected(&done) > 0)
    }

    pub(super) async fn refresh_status(
        &self,
        token_hash: &str,
        now: u64,
    ) -> Result<Option<RefreshStatus>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            refresh_columns!(),
            ", used_at, (SELECT f.revoked FROM refresh_families f \
                 WHERE f.family_id = refresh_tokens.family_id) AS family_revoked \
             FROM refresh_tokens WHERE token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let record = refresh_from_row(&row)?;
        let active = row.int_or_null("used_at")?.is_none()
            && !row.flag_or_null("family_revoked")?.unwrap_or(true)
            && record.expires_at > now;
        Ok(Some(RefreshStatus { record, active }))
    }

    // ---- revoked access tokens ---------------------------------------------

    pub(super) async fn revoke_access_token(
        &self,
        jti: &str,
        client_id: &str,
        now: u64,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO revoked_access_tokens (jti, client_id, revoked_at, expires_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(client_id)
        .bind(db_time(now))
        .bind(db_time(expires_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn access_token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 AS one FROM revoked_access_tokens WHERE jti = $1")
            .bind(jti)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    pub(super) async fn spend_client_assertion(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: u64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO client_assertions (client_id, jti, expires_at) \
             VALUES ($1, $2, $3) ON CONFLICT (client_id, jti) DO NOTHING",
        )
        .bind(client_id)
        .bind(jti)
        .bind(db_time(expires_at))
        .execute(&self.pool)
        .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    pub(super) async fn pending_counts(
        &self,
        source: &str,
        now: u64,
        cap: u64,
    ) -> Result<(u64, u64), StoreError> {
        // Each count stops at `cap`: the answer needed is "below the limit
        // or not", and a full table must not make every sign-in slow.
        let row = sqlx::query(
            "SELECT \
               (SELECT COUNT(*) FROM (SELECT 1 FROM pending_requests \
                 WHERE expires_at > $1 AND source = $3 LIMIT $2) AS mine) AS from_source, \
               (SELECT COUNT(*) FROM (SELECT 1 FROM pending_requests \
                 WHERE expires_at > $1 LIMIT $2) AS every) AS total",
        )
        .bind(db_time(now))
        .bind(db_time(cap))
        .bind(source)
        .fetch_one(&self.pool)
        .await?;
        Ok((time(row.int("from_source")?), time(row.int("total")?)))
    }

    // ---- login throttling --------------------------------------------------

    pub(super) async fn login_blocked_until(
        &self,
        subjects: &[&str],
        now: u64,
    ) -> Result<u64, StoreError> {
        let mut until = 0;
        for subject in subjects {
            let row = sqlx::query(
                "SELECT blocked_until FROM login_failures WHERE subject = $1 AND expires_at > $2",
            )
            .bind(*subject)
            .bind(db_time(now))
            .fetch_optional(&self.pool)
            .await?;
            if let Some(row) = row {
                until = until.max(time(row.int("blocked_until")?));
            }
        }
        Ok(until)
    }

    pub(super) async fn record_login_failure(
        &self,
        subject: &str,
        now: u64,
        forget_at: u64,
    ) -> Result<u64, StoreError> {
        // A row past its expiry counts from one again.
        let row = sqlx::query(
            "INSERT INTO login_failures (subject, failures, blocked_until, expires_at) \
             VALUES ($1, 1, 0, $3) \
             ON CONFLICT (subject) DO UPDATE SET \
               failures = CASE WHEN login_failures.expires_at > $2 \
                          THEN login_failures.failures + 1 ELSE 1 END, \
               blocked_until = CASE WHEN login_failures.expires_at > $2 \
                               THEN login_failures.blocked_until ELSE 0 END, \
               expires_at = $3 \
             RETURNING failures",
        )
        .bind(subject)
        .bind(db_time(now))
        .bind(db_time(forget_at))
        .fetch_one(&self.pool)
        .await?;
        Ok(time(row.int("failures")?))
    }

    pub(super) async fn block_login(
        &self,
        subject: &str,
        until: u64,
        forget_at: u64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE login_failures SET blocked_until = $2, expires_at = $3 WHERE subject = $1",
        )
        .bind(subject)
        .bind(db_time(until))
        .bind(db_time(forget_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn clear_login_failures(&self, subject: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_failures WHERE subject = $1")
            .bind(subject)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ---- issuer secrets ----------------------------------------------------

    pub(super) async fn issuer_secret(
        &self,
        name: &str,
        fresh: &str,
        now: u64,
    ) -> Result<String, StoreError> {
        // The first replica to ask stores its fresh value; everyone reads
        // back the one that won.
        sqlx::query(
            "INSERT INTO issuer_secrets (name, value, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(fresh)
        .bind(db_time(now))
        .execute(&self.pool)
        .await?;
        let row = sqlx::query("SELECT value FROM issuer_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.text("value")?)
    }

    // ---- signing keys ------------------------------------------------------

    pub(super) async fn signing_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            key_columns!(),
            " FROM signing_keys ORDER BY seq"
        ))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(key_from_row)
        .collect()
    }

    pub(super) async fn add_signing_key(
        &self,
        key: &StoredKey,
        only_if_first: bool,
    ) -> Result<bool, StoreError> {
        // The next `seq` is computed in the statement; two replicas adding a
        // key at the same moment collide on it, and the loser tries again
        // (or, adding a first key, gives way: the winner's key is the one).
        let statement = if only_if_first {
            concat!(
                "INSERT INTO signing_keys (seq, ",
                key_columns!(),
                ") VALUES (1, $1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (seq) DO NOTHING"
            )
        } else {
            concat!(
                "INSERT INTO signing_keys (seq, ",
                key_columns!(),
                ") SELECT COALESCE(MAX(seq), 0) + 1, $1, $2, $3, $4, $5, $6, $7, $8 FROM signing_keys"
            )
        };
        for _ in 0..5 {
            let done = sqlx::query(statement)
                .bind(&key.kid)
                .bind(&key.algorithm)
                .bind(&key.public_jwk)
                .bind(&key.sealed_key)
                .bind(&key.kek_id)
                .bind(db_time(key.created_at))
                .bind(db_time(key.activates_at))
                .bind(key.retire_at.map(db_time))
                .execute(&self.pool)
                .await;
            match done {
                Ok(done) => return Ok(DB::rows_affected(&done) > 0),
                Err(sqlx::Error::Database(e))
                    if e.is_unique_violation()
                        && !only_if_first
                        && !e.message().contains("kid") =>
                {
                    continue;
                }
                Err(e) => return Err(conflict(e, format!("signing key {} exists", key.kid))),
            }
        }
        Err(StoreError::Conflict(
            "other keys were being added at the same time; try again".to_owned(),
        ))
    }

    pub(super) async fn add_first_signing_keys(
        &self,
        keys: &[StoredKey],
    ) -> Result<bool, StoreError> {
        // One transaction: a replica that sees the first key sees them all.
        // Another replica adding its first keys at the same moment waits on
        // seq 1 and then finds it taken.
        let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
        for (i, key) in keys.iter().enumerate() {
            let done = sqlx::query(concat!(
                "INSERT INTO signing_keys (seq, ",
                key_columns!(),
                ") VALUES ($9, $1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (seq) DO NOTHING"
            ))
            .bind(&key.kid)
            .bind(&key.algorithm)
            .bind(&key.public_jwk)
            .bind(&key.sealed_key)
            .bind(&key.kek_id)
            .bind(db_time(key.created_at))
            .bind(db_time(key.activates_at))
            .bind(key.retire_at.map(db_time))
            .bind(i as i64 + 1)
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict(e, format!("signing key {} exists", key.kid)))?;
            if DB::rows_affected(&done) == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    pub(super) async fn retire_signing_key(&self, kid: &str, at: u64) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE signing_keys SET retire_at = $2 WHERE kid = $1")
            .bind(kid)
            .bind(db_time(at))
            .execute(&self.pool)
            .await?;
        Ok(DB::rows_affected(&done) > 0)
    }

    // ---- copying a whole store ---------------------------------------------

    /// Every row of every table, read in one transaction.
    pub(super) async fn dump(&self) -> Result<Dump, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut tables = Vec::new();
        for &(table, columns) in TABLES {
            let rows = sqlx::query(&format!("SELECT * FROM {table}"))
                .fetch_all(&mut *tx)
                .await?;
            if let Some(first) = rows.first() {
                let known: Vec<&str> = columns.iter().map(|&(name, _)| name).collect();
                if let Some(unknown) = first
                    .columns()
                    .iter()
                    .map(sqlx::Column::name)
                    .find(|name| !known.contains(name))
                {
                    return Err(StoreError::Corrupt(format!(
                        "table {table} has a column {unknown} that this tessera cannot copy"
                    )));
                }
            }
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                let mut cells = Vec::with_capacity(columns.len());
                for &(name, kind) in columns {
                    cells.push(match kind {
                        Kind::Text => Cell::Text(row.text_or_null(name)?),
                        Kind::Int => Cell::Int(row.int_or_null(name)?),
                        Kind::Flag => Cell::Flag(row.flag_or_null(name)?),
                    });
                }
                out.push(cells);
            }
            tables.push(out);
        }
        tx.commit().await?;
        Ok(Dump { tables })
    }

    /// How many rows each table holds.
    pub(super) async fn row_counts(&self) -> Result<RowCounts, StoreError> {
        let mut counts = Vec::new();
        for &(table, _) in TABLES {
            let row = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
                .fetch_one(&self.pool)
                .await?;
            counts.push((table, time(row.int("n")?)));
        }
        Ok(RowCounts(counts))
    }

    /// Writes `dump` in one transaction: into empty tables, or, with
    /// `replace`, after deleting every row. A store that is not empty is
    /// refused with [`StoreError::Conflict`] and left as it was.
    pub(super) async fn load(&self, dump: &Dump, replace: bool) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
        if replace {
            for &(table, _) in TABLES.iter().rev() {
                sqlx::query(&format!("DELETE FROM {table}"))
                    .execute(&mut *tx)
                    .await?;
            }
        } else {
            let mut held = Vec::new();
            for &(table, _) in TABLES {
                let row = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
                    .fetch_one(&mut *tx)
                    .await?;
                held.push((table, time(row.int("n")?)));
            }
            let held = RowCounts(held);
            if !held.is_empty() {
                return Err(StoreError::Conflict(format!(
                    "the target store is not empty (it holds {held}); --replace empties it first"
                )));
            }
        }
        for (&(table, columns), rows) in TABLES.iter().zip(&dump.tables) {
            let names: Vec<&str> = columns.iter().map(|&(name, _)| name).collect();
            let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
            let statement = format!(
                "INSERT INTO {table} ({}) VALUES ({})",
                names.join(", "),
                placeholders.join(", ")
            );
            for row in rows {
                let mut query = sqlx::query(&statement);
                for cell in row {
                    query = match cell {
                        Cell::Text(v) => query.bind(v.clone()),
                        Cell::Int(v) => query.bind(*v),
                        Cell::Flag(v) => query.bind(*v),
                    };
                }
                query.execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    // ---- housekeeping ------------------------------------------------------

    pub(super) async fn purge_expired(&self, now: u64) -> Result<Purged, StoreError> {
        let now = db_time(now);
        let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
        let mut purged = Purged::default();
        for (table, count) in [
            ("authorization_codes", &mut purged.codes),
            ("pending_requests", &mut purged.pending),
            ("sessions", &mut purged.sessions),
            ("refresh_tokens", &mut purged.refresh_tokens),
            ("revoked_access_tokens", &mut purged.revoked_access_tokens),
            ("login_failures", &mut purged.login_failures),
            ("client_assertions", &mut purged.client_assertions),
        ] {
            let done = sqlx::query(&format!("DELETE FROM {table} WHERE expires_at <= $1"))
                .bind(now)
                .execute(&mut *tx)
                .await?;
            *count = DB::rows_affected(&done);
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
pub(super) fn db_time(t: u64) -> i64 {
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

fn user_from_row(row: &impl Columns) -> Result<User, StoreError> {
    Ok(User {
        id: row.text("id")?,
        email: row.text("email")?,
        email_verified: row.flag("email_verified")?,
        name: row.text_or_null("name")?,
        password_hash: row.text("password_hash")?,
        app_metadata: object(row.text("app_metadata")?, "app_metadata")?,
        user_metadata: object(row.text("user_metadata")?, "user_metadata")?,
        created_at: time(row.int("created_at")?),
    })
}

fn code_from_row(row: &impl Columns) -> Result<CodeRecord, StoreError> {
    Ok(CodeRecord {
        code_hash: row.text("code_hash")?,
        client_id: row.text("client_id")?,
        redirect_uri: row.text("redirect_uri")?,
        code_challenge: row.text("code_challenge")?,
        user_id: row.text("user_id")?,
        scopes: strings(row.text("scopes")?, "scopes")?,
        audience: row.text_or_null("audience")?,
        nonce: row.text_or_null("nonce")?,
        auth_time: time(row.int("auth_time")?),
        access_claims: object(row.text("access_claims")?, "access_claims")?,
        id_claims: object(row.text("id_claims")?, "id_claims")?,
        issued_at: time(row.int("issued_at")?),
        expires_at: time(row.int("expires_at")?),
    })
}

fn refresh_from_row(row: &impl Columns) -> Result<RefreshRecord, StoreError> {
    Ok(RefreshRecord {
        token_hash: row.text("token_hash")?,
        family_id: row.text("family_id")?,
        client_id: row.text("client_id")?,
        user_id: row.text("user_id")?,
        scopes: strings(row.text("scopes")?, "scopes")?,
        audience: row.text_or_null("audience")?,
        auth_time: time(row.int("auth_time")?),
        access_claims: object(row.text("access_claims")?, "access_claims")?,
        id_claims: object(row.text("id_claims")?, "id_claims")?,
        code_hash: row.text_or_null("code_hash")?,
        issued_at: time(row.int("issued_at")?),
        expires_at: time(row.int("expires_at")?),
    })
}

fn key_from_row(row: &impl Columns) -> Result<StoredKey, StoreError> {
    Ok(StoredKey {
        kid: row.text("kid")?,
        algorithm: row.text("algorithm")?,
        public_jwk: row.text("public_jwk")?,
        sealed_key: row.text("sealed_key")?,
        kek_id: row.text("kek_id")?,
        created_at: time(row.int("created_at")?),
        activates_at: time(row.int("activates_at")?),
        retire_at: row.int_or_null("retire_at")?.map(time),
    })
}

#[cfg(test)]
mod tests;
