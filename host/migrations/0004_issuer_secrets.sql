-- Secrets every replica must share that are not signing keys, each a random
-- value made by whichever replica needs it first. One so far:
-- "browser-binding", the HMAC key that makes a tessera_browser cookie a value
-- only the issuer can have made. Whoever reads this table can forge such a
-- cookie, which alone signs no one in (the form's CSRF token and the
-- password are still needed).

CREATE TABLE issuer_secrets (
    name       TEXT   NOT NULL PRIMARY KEY,
    value      TEXT   NOT NULL,                   -- base64url
    created_at BIGINT NOT NULL
);
