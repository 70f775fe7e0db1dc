-- Client assertions already used (private_key_jwt, RFC 7523 §3 item 7): a
-- `jti` is accepted once per client while its assertion could still pass
-- the expiry check, so a captured assertion cannot be replayed. A row is
-- kept until then and purged.

CREATE TABLE client_assertions (
    client_id  TEXT   NOT NULL,
    jti        TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,                   -- the assertion's exp, plus the allowed clock skew
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX client_assertions_expires ON client_assertions (expires_at);
