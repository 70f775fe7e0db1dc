-- Access tokens revoked before they expire (RFC 7009). An access token is a
-- JWT that a resource server may verify offline, so this list binds only
-- those who ask the issuer: introspection and /userinfo. A row is kept until
-- the token would have expired anyway, then purged.

CREATE TABLE revoked_access_tokens (
    jti        TEXT   NOT NULL PRIMARY KEY,
    client_id  TEXT   NOT NULL,                   -- the client it was issued to (who revoked it)
    revoked_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL                    -- the token's exp
);
CREATE INDEX revoked_access_tokens_expires ON revoked_access_tokens (expires_at);
