//! Tokens: claims, minting and signing, signing keys and the JWKS, and the
//! clock that every expiry decision reads.
//!
//! Access tokens follow RFC 9068 (`typ: at+jwt`). Keys are generated and used
//! with `ring`; nothing here knows about HTTP or plugins.

pub mod jwk;
pub mod jwt;
pub mod kek;
mod key_dir;
pub mod keyring;
pub mod keys;
pub mod verify;

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{Map, Value};

pub use keyring::KeyRing;
pub use keys::KeySet;

/// Claims that only the issuer sets. A plugin that tries to set one fails with
/// the claim's name.
pub const RESERVED_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "azp",
    "client_id",
    "scope",
    "cnf",
    "auth_time",
    "acr",
    "amr",
    "nonce",
    "at_hash",
    "c_hash",
    "sid",
];

/// Whether a claim name is reserved for the issuer.
pub fn is_reserved_claim(name: &str) -> bool {
    RESERVED_CLAIMS.contains(&name)
}

/// Where "now" comes from. Code that needs the time takes a clock, so tests
/// control expiry without sleeping.
pub trait Clock: Send + Sync + 'static {
    /// Seconds since the Unix epoch.
    fn now(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}

/// A fresh token identifier: 128 random bits, base64url (22 characters).
pub fn new_jti() -> Result<String, ring::error::Unspecified> {
    let mut bytes = [0u8; 16];
    SystemRandom::new().fill(&mut bytes)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The `sub` of a client-credentials token. Users' subjects never contain `@`,
/// so this can never equal a user's `sub` (RFC 9700 §4.15).
pub fn client_subject(client_id: &str) -> String {
    format!("{client_id}@clients")
}

/// What goes into an access token.
#[derive(Debug, Clone)]
pub struct AccessToken<'a> {
    /// `iss`.
    pub issuer: &'a str,
    /// `sub`.
    pub subject: &'a str,
    /// `aud`: the API identifier.
    pub audience: &'a str,
    /// `client_id`.
    pub client_id: &'a str,
    /// `scope`, space-joined (omitted when empty).
    pub scopes: &'a [String],
    /// `iat`.
    pub issued_at: u64,
    /// Lifetime in seconds (`exp = iat + lifetime`).
    pub lifetime_secs: u64,
    /// `jti`.
    pub jti: &'a str,
    /// Custom claims from plugins (never reserved names).
    pub custom: &'a Map<String, Value>,
}

impl AccessToken<'_> {
    /// The JWT claims set. Custom claims come first so that a reserved claim can
    /// never be shadowed, even if one slipped past validation.
    pub fn claims(&self) -> Map<String, Value> {
        let mut c = self.custom.clone();
        c.insert("iss".into(), self.issuer.into());
        c.insert("sub".into(), self.subject.into());
        c.insert("aud".into(), self.audience.into());
        c.insert("client_id".into(), self.client_id.into());
        c.insert("iat".into(), self.issued_at.into());
        c.insert("exp".into(), (self.issued_at + self.lifetime_secs).into());
        c.insert("jti".into(), self.jti.into());
        if !self.scopes.is_empty() {
            c.insert("scope".into(), self.scopes.join(" ").into());
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_claims_cannot_be_shadowed() {
        let mut custom = Map::new();
        custom.insert("sub".into(), "evil".into());
        custom.insert("https://x/name".into(), "ok".into());
        let t = AccessToken {
            issuer: "https://issuer",
            subject: "c@clients",
            audience: "https://api",
            client_id: "c",
            scopes: &["a".into(), "b".into()],
            issued_at: 100,
            lifetime_secs: 60,
            jti: "j",
            custom: &custom,
        };
        let c = t.claims();
        assert_eq!(c["sub"], "c@clients");
        assert_eq!(c["exp"], 160);
        assert_eq!(c["scope"], "a b");
        assert_eq!(c["https://x/name"], "ok");
    }

    #[test]
    fn jti_is_unique_and_client_subject_has_at() {
        let a = new_jti().expect("rng");
        assert_eq!(a.len(), 22);
        assert_ne!(a, new_jti().expect("rng"));
        assert!(client_subject("x").contains('@'));
    }

    #[test]
    fn a_million_jtis_are_all_different() {
        // docs/reliability.md, case 23: jti unique over 10^6 tokens.
        let mut seen = std::collections::HashSet::with_capacity(1_000_000);
        for _ in 0..1_000_000 {
            assert!(seen.insert(new_jti().expect("rng")), "a jti repeated");
        }
    }
}
