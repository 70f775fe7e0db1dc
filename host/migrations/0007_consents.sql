-- Consent a user gave a third-party application (a client with
-- first_party = false): one row per user, client and audience, holding every
-- scope the user allowed it for that audience. A request whose scopes are
-- all here skips the consent page; `tessera users consents --withdraw`
-- deletes the rows (and revokes the client's refresh tokens for the user).

CREATE TABLE consents (
    user_id    TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT   NOT NULL,
    audience   TEXT   NOT NULL,                   -- '' when only OpenID Connect scopes were asked for
    scopes     TEXT   NOT NULL,                   -- JSON array of strings, sorted
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id, audience)
);
