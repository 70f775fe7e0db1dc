-- Signing keys kept in the store (when `[signing] kek_env` or `kek_file` is
-- set; always with PostgreSQL), so every replica signs with and publishes the
-- same keys. The private key is sealed with the key-encryption key, which is
-- never stored; `kek_id` is only its fingerprint.

CREATE TABLE signing_keys (
    seq          BIGINT NOT NULL PRIMARY KEY,     -- 1 for the first key, then one more per key added:
                                                  -- replicas creating a first key together collide here
    kid          TEXT   NOT NULL UNIQUE,          -- RFC 7638 thumbprint of the public key
    algorithm    TEXT   NOT NULL,                 -- ES256, RS256 or EdDSA
    public_jwk   TEXT   NOT NULL,                 -- JSON, as published
    sealed_key   TEXT   NOT NULL,                 -- base64url(nonce || AES-256-GCM(PKCS#8 DER)), bound to kid and algorithm
    kek_id       TEXT   NOT NULL,                 -- fingerprint of the KEK that sealed it
    created_at   BIGINT NOT NULL,
    activates_at BIGINT NOT NULL,                 -- signs from then on (after the pre-publication delay)
    retire_at    BIGINT                           -- no longer published from then on
);
