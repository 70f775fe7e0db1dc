//! Client secrets: generation, their `sha256:` hashes, and constant-time checks.
//!
//! Tessera generates client secrets itself (256 random bits), so a single fast
//! hash is the right tool: there is nothing for a slow password hash to protect
//! against that 256 bits of entropy do not already. Verification compares in
//! constant time, and an unknown client is checked against a dummy hash so it
//! takes the same path and time as a wrong secret.

use std::fmt;

use base64::Engine as _;
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

/// The SHA-256 hash of a client secret.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    /// Hashes a secret.
    pub fn of(secret: &str) -> Self {
        let d = digest(&SHA256, secret.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        SecretHash(out)
    }

    /// Parses `sha256:` followed by 64 hex digits.
    pub fn parse(text: &str) -> Result<Self, String> {
        let hex_part = text
            .strip_prefix("sha256:")
            .ok_or_else(|| format!("{text:?} does not start with \"sha256:\""))?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut out)
            .map_err(|_| "expected \"sha256:\" followed by 64 hex digits".to_owned())?;
        Ok(SecretHash(out))
    }

    /// Checks a presented secret in constant time.
    pub fn verify(&self, presented: &str) -> bool {
        SecretHash::of(presented).0.ct_eq(&self.0).into()
    }

    /// A hash no secret matches in practice, for unknown clients.
    pub fn dummy() -> &'static SecretHash {
        static DUMMY: SecretHash = SecretHash([0x5a; 32]);
        &DUMMY
    }
}

impl fmt::Display for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretHash({self})")
    }
}

/// A fresh client secret: 256 random bits, base64url without padding (43 chars).
pub fn generate() -> Result<String, ring::error::Unspecified> {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secret_verifies_against_its_hash() {
        let s = generate().expect("rng");
        assert_eq!(s.len(), 43);
        let h = SecretHash::parse(&SecretHash::of(&s).to_string()).expect("round trip");
        assert!(h.verify(&s));
        assert!(!h.verify(&format!("{s}x")));
        assert_ne!(generate().expect("rng"), s);
    }

    #[test]
    fn parse_rejects_malformed_hashes() {
        assert!(SecretHash::parse("md5:00").is_err());
        assert!(SecretHash::parse("sha256:xyz").is_err());
        assert!(SecretHash::parse(&format!("sha256:{}", "0".repeat(63))).is_err());
    }

    #[test]
    fn known_vector() {
        assert_eq!(
            SecretHash::of("abc").to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
