//! Password hashing for local users: argon2id with the crate's default
//! parameters (19 MiB, 2 passes, 1 lane), a 16-byte salt from the system
//! random number generator, stored as a PHC string (`$argon2id$v=19$…`).
//!
//! Hashing and verifying cost tens of milliseconds of CPU on purpose, so the
//! async wrappers run them on tokio's blocking pool. Nothing else lives here:
//! which user a password belongs to is the store's business.

use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use ring::rand::{SecureRandom, SystemRandom};

use super::StoreError;

/// The shortest password [`hash`] accepts, in characters.
pub const MIN_LEN: usize = 8;

/// The longest password [`hash`] accepts, in bytes (a bound against abuse,
/// far beyond any passphrase).
pub const MAX_LEN: usize = 1024;

/// An argon2id hash, with the default parameters, of a password nobody knows.
/// Verifying against it costs what verifying a real user's password costs, so
/// a login for an unknown email takes as long as one with a wrong password.
/// A test checks that its parameters are still the crate's defaults.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$buDQXj0UnH+5JANOBXvumg$mWscoY5ufMsSwR2cUKCmOIvdAvANfauLj4dFuz4v95Y";

/// Checks that `password` is acceptable for a new account.
pub fn check_new(password: &str) -> Result<(), StoreError> {
    if password.chars().count() < MIN_LEN {
        return Err(StoreError::invalid(
            "password",
            format!("must be at least {MIN_LEN} characters"),
        ));
    }
    if password.len() > MAX_LEN {
        return Err(StoreError::invalid(
            "password",
            format!("must be at most {MAX_LEN} bytes"),
        ));
    }
    Ok(())
}

/// Hashes `password` with argon2id and a fresh random salt. Blocking and
/// deliberately slow: see [`hash_blocking`] for async callers.
pub fn hash(password: &str) -> Result<String, StoreError> {
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| StoreError::Internal("the system random number generator failed".into()))?;
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| StoreError::Internal(format!("encoding a password salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Internal(format!("hashing a password: {e}")))
}

/// Whether `password` matches the PHC string `hash`. A hash that does not
/// parse matches nothing. The parameters are read from the hash, so hashes
/// made with older parameters keep working.
pub fn verify(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Verifies `password` against the dummy hash and throws the answer away: the
/// cost of a verification without a user to verify.
pub fn verify_dummy(password: &str) {
    std::hint::black_box(verify(DUMMY_HASH, password));
}

/// [`hash`] on tokio's blocking pool.
pub async fn hash_blocking(password: String) -> Result<String, StoreError> {
    tokio::task::spawn_blocking(move || hash(&password))
        .await
        .map_err(|e| StoreError::Internal(format!("password hashing task: {e}")))?
}

/// [`verify`] on tokio's blocking pool; `None` as the hash verifies against
/// the dummy hash, so the time taken does not tell whether a user exists.
pub async fn verify_blocking(hash: Option<String>, password: String) -> Result<bool, StoreError> {
    tokio::task::spawn_blocking(move || match hash {
        Some(hash) => verify(&hash, &password),
        None => {
            verify_dummy(&password);
            false
        }
    })
    .await
    .map_err(|e| StoreError::Internal(format!("password verification task: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::{Algorithm, Params, Version};

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let a = hash("correct horse battery").unwrap();
        let b = hash("correct horse battery").unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "every hash has its own salt");
        assert!(verify(&a, "correct horse battery"));
        assert!(!verify(&a, "correct horse batterY"));
        assert!(!verify(&a, ""));
    }

    #[test]
    fn garbage_hashes_match_nothing() {
        assert!(!verify("", "anything"));
        assert!(!verify("plaintext-password", "plaintext-password"));
        assert!(!verify("$argon2id$v=19$m=19456,t=2,p=1$bm9wZQ$", "x"));
    }

    #[test]
    fn dummy_hash_costs_what_a_real_hash_costs() {
        let parsed = PasswordHash::new(DUMMY_HASH).unwrap();
        assert_eq!(parsed.algorithm, Algorithm::Argon2id.ident());
        assert_eq!(parsed.version, Some(Version::V0x13.into()));
        let params = Params::try_from(&parsed).unwrap();
        let defaults = Params::default();
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (defaults.m_cost(), defaults.t_cost(), defaults.p_cost()),
            "regenerate DUMMY_HASH with the current default parameters"
        );
        assert_eq!(
            parsed.hash.map(|h| h.len()),
            Some(Params::DEFAULT_OUTPUT_LEN)
        );
        // Whatever the dummy hash's preimage, it verifies no real password.
        assert!(!verify(DUMMY_HASH, "password"));
        assert!(!verify(DUMMY_HASH, ""));
    }

    #[test]
    fn new_passwords_have_a_minimum_and_maximum_length() {
        assert!(check_new("1234567").is_err());
        assert!(check_new("12345678").is_ok());
        // Eight characters, more than eight bytes.
        assert!(check_new("ééééééé").is_err());
        assert!(check_new("éééééééé").is_ok());
        assert!(check_new(&"x".repeat(MAX_LEN)).is_ok());
        assert!(check_new(&"x".repeat(MAX_LEN + 1)).is_err());
    }

    #[tokio::test]
    async fn blocking_wrappers_agree() {
        let h = hash_blocking("s3cret-passphrase".into()).await.unwrap();
        assert!(
            verify_blocking(Some(h.clone()), "s3cret-passphrase".into())
                .await
                .unwrap()
        );
        assert!(!verify_blocking(Some(h), "wrong".into()).await.unwrap());
        assert!(
            !verify_blocking(None, "s3cret-passphrase".into())
                .await
                .unwrap()
        );
    }
}
