-- Tessera's store, first version. Kept portable on purpose: TEXT, BIGINT and
-- BOOLEAN columns, JSON stored as TEXT, times as Unix seconds, no SQLite-only
-- syntax, so the PostgreSQL migration can be the same file.
--
-- Codes, refresh tokens, sessions and pending requests are keyed by hashes of
-- the secrets the clients hold; the secrets themselves are never stored.

CREATE TABLE users (
    id             TEXT    NOT NULL PRIMARY KEY,  -- "u_" + 22 base64url chars; never contains '@'
    email          TEXT    NOT NULL UNIQUE,       -- trimmed and lowercased
    email_verified BOOLEAN NOT NULL,
    name           TEXT,
    password_hash  TEXT    NOT NULL,              -- argon2id PHC string
    app_metadata   TEXT    NOT NULL,              -- JSON object
    user_metadata  TEXT    NOT NULL,              -- JSON object
    created_at     BIGINT  NOT NULL
);
CREATE INDEX users_created ON users (created_at, id);

-- Login sessions (the cookie holds the id, the table its hash).
CREATE TABLE sessions (
    id_hash    TEXT   NOT NULL PRIMARY KEY,
    user_id    TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_time  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- Authorization requests waiting for the user to log in, so that any replica
-- can finish them.
CREATE TABLE pending_requests (
    id_hash    TEXT   NOT NULL PRIMARY KEY,
    data       TEXT   NOT NULL,                   -- JSON
    expires_at BIGINT NOT NULL
);
CREATE INDEX pending_requests_expires ON pending_requests (expires_at);

CREATE TABLE authorization_codes (
    code_hash      TEXT    NOT NULL PRIMARY KEY,
    client_id      TEXT    NOT NULL,
    redirect_uri   TEXT    NOT NULL,
    code_challenge TEXT    NOT NULL,
    user_id        TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scopes         TEXT    NOT NULL,              -- JSON array of strings
    audience       TEXT,
    nonce          TEXT,
    auth_time      BIGINT  NOT NULL,
    access_claims  TEXT    NOT NULL,              -- JSON object
    id_claims      TEXT    NOT NULL,              -- JSON object
    issued_at      BIGINT  NOT NULL,
    expires_at     BIGINT  NOT NULL,
    consumed_at    BIGINT,                        -- set once, by the first redemption
    revoked        BOOLEAN NOT NULL DEFAULT FALSE -- replayed: no refresh family may be born from it
);
CREATE INDEX authorization_codes_user ON authorization_codes (user_id);
CREATE INDEX authorization_codes_expires ON authorization_codes (expires_at);

-- A refresh-token family is one grant: the token issued with a code and every
-- token rotated from it. Revocation is recorded here, once per family, so a
-- token added to a family after it was revoked is revoked too.
CREATE TABLE refresh_families (
    family_id  TEXT    NOT NULL PRIMARY KEY,
    client_id  TEXT    NOT NULL,
    user_id    TEXT    NOT NULL,                  -- no foreign key: families outlive removed users, revoked
    code_hash  TEXT,                              -- the code the family was born from
    revoked    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT  NOT NULL
);
CREATE INDEX refresh_families_code ON refresh_families (code_hash);
CREATE INDEX refresh_families_user ON refresh_families (user_id);

CREATE TABLE refresh_tokens (
    token_hash    TEXT   NOT NULL PRIMARY KEY,
    family_id     TEXT   NOT NULL REFERENCES refresh_families (family_id) ON DELETE CASCADE,
    client_id     TEXT   NOT NULL,
    user_id       TEXT   NOT NULL,
    scopes        TEXT   NOT NULL,                -- JSON array of strings
    audience      TEXT,
    auth_time     BIGINT NOT NULL,
    access_claims TEXT   NOT NULL,                -- JSON object
    id_claims     TEXT   NOT NULL,                -- JSON object
    code_hash     TEXT,
    issued_at     BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    used_at       BIGINT                          -- set once, by the first use (rotation)
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);
