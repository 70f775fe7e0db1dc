-- Login throttling, shared by every replica: failed sign-ins counted per
-- account (a hash of the typed email, known or not, so the table says nothing
-- about who has an account) and per source address. A row is forgotten at
-- expires_at, some minutes after its last failure.

CREATE TABLE login_failures (
    subject       TEXT   NOT NULL PRIMARY KEY,    -- "account:HASH" or "address:IP"
    failures      BIGINT NOT NULL,
    blocked_until BIGINT NOT NULL,                -- no sign-in for this subject before then
    expires_at    BIGINT NOT NULL
);
CREATE INDEX login_failures_expires ON login_failures (expires_at);

-- Where a pending sign-in came from, so one address cannot fill the store.
ALTER TABLE pending_requests ADD COLUMN source TEXT NOT NULL DEFAULT '';
CREATE INDEX pending_requests_source ON pending_requests (source, expires_at);
