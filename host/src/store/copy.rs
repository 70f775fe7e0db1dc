//! Copying a whole store into another, for `tessera store copy` (moving up
//! from SQLite to PostgreSQL): every table, in an order that satisfies the
//! foreign keys, read from the source in one transaction and written to the
//! target in one transaction, so the target ends up with all of it or none.
//!
//! The copy moves rows, not meaning: hashes stay hashes, sealed signing keys
//! stay sealed (the target must be used with the same key-encryption key),
//! and expiry times are kept. [`TABLES`] names every column of the schema; the
//! copy refuses a table with a column it does not know, so a migration that
//! adds one cannot be silently left behind.

/// A column's type, as the portable schema has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// TEXT.
    Text,
    /// BIGINT.
    Int,
    /// BOOLEAN.
    Flag,
}

/// One value of a row; `None` is SQL NULL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Cell {
    Text(Option<String>),
    Int(Option<i64>),
    Flag(Option<bool>),
}

/// Every table with its columns, parents before children.
pub(super) const TABLES: &[(&str, &[(&str, Kind)])] = {
    use Kind::{Flag, Int, Text};
    &[
        (
            "users",
            &[
                ("id", Text),
                ("email", Text),
                ("email_verified", Flag),
                ("name", Text),
                ("password_hash", Text),
                ("app_metadata", Text),
                ("user_metadata", Text),
                ("created_at", Int),
            ],
        ),
        (
            "sessions",
            &[
                ("id_hash", Text),
                ("user_id", Text),
                ("auth_time", Int),
                ("expires_at", Int),
            ],
        ),
        (
            "pending_requests",
            &[
                ("id_hash", Text),
                ("data", Text),
                ("expires_at", Int),
                ("source", Text),
            ],
        ),
        (
            "authorization_codes",
            &[
                ("code_hash", Text),
                ("client_id", Text),
                ("redirect_uri", Text),
                ("code_challenge", Text),
                ("user_id", Text),
                ("scopes", Text),
                ("audience", Text),
                ("nonce", Text),
                ("auth_time", Int),
                ("access_claims", Text),
                ("id_claims", Text),
                ("issued_at", Int),
                ("expires_at", Int),
                ("consumed_at", Int),
                ("revoked", Flag),
            ],
        ),
        (
            "refresh_families",
            &[
                ("family_id", Text),
                ("client_id", Text),
                ("user_id", Text),
                ("code_hash", Text),
                ("revoked", Flag),
                ("created_at", Int),
            ],
        ),
        (
            "refresh_tokens",
            &[
                ("token_hash", Text),
                ("family_id", Text),
                ("client_id", Text),
                ("user_id", Text),
                ("scopes", Text),
                ("audience", Text),
                ("auth_time", Int),
                ("access_claims", Text),
                ("id_claims", Text),
                ("code_hash", Text),
                ("issued_at", Int),
                ("expires_at", Int),
                ("used_at", Int),
            ],
        ),
        (
            "consents",
            &[
                ("user_id", Text),
                ("client_id", Text),
                ("audience", Text),
                ("scopes", Text),
                ("granted_at", Int),
            ],
        ),
        (
            "revoked_access_tokens",
            &[
                ("jti", Text),
                ("client_id", Text),
                ("revoked_at", Int),
                ("expires_at", Int),
            ],
        ),
        (
            "login_failures",
            &[
                ("subject", Text),
                ("failures", Int),
                ("blocked_until", Int),
                ("expires_at", Int),
            ],
        ),
        (
            "client_assertions",
            &[("client_id", Text), ("jti", Text), ("expires_at", Int)],
        ),
        (
            "issuer_secrets",
            &[("name", Text), ("value", Text), ("created_at", Int)],
        ),
        (
            "signing_keys",
            &[
                ("seq", Int),
                ("kid", Text),
                ("algorithm", Text),
                ("public_jwk", Text),
                ("sealed_key", Text),
                ("kek_id", Text),
                ("created_at", Int),
                ("activates_at", Int),
                ("retire_at", Int),
            ],
        ),
    ]
};

/// The rows of every table of [`TABLES`], in its order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Dump {
    pub tables: Vec<Vec<Vec<Cell>>>,
}

/// How many rows each table holds (or a copy wrote), in [`TABLES`] order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowCounts(pub Vec<(&'static str, u64)>);

impl RowCounts {
    /// No rows at all.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&(_, n)| n == 0)
    }

    /// How many rows `table` holds.
    pub fn of(&self, table: &str) -> u64 {
        self.0
            .iter()
            .find(|(t, _)| *t == table)
            .map_or(0, |&(_, n)| n)
    }
}

impl std::fmt::Display for RowCounts {
    /// `3 users, 1 sessions, …`, the tables with rows only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .filter(|&&(_, n)| n > 0)
            .map(|(t, n)| format!("{n} {}", t.replace('_', " ")))
            .collect();
        if parts.is_empty() {
            f.write_str("nothing")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

impl Dump {
    /// Its row counts.
    pub(super) fn counts(&self) -> RowCounts {
        RowCounts(
            TABLES
                .iter()
                .zip(&self.tables)
                .map(|(&(table, _), rows)| (table, rows.len() as u64))
                .collect(),
        )
    }
}
