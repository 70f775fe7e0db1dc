//! PKCE (RFC 7636), `S256` only: `plain` gives no protection against a stolen
//! code, so it is refused (RFC 9700 §2.1.1).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest::{SHA256, digest};
use subtle::ConstantTimeEq;

use super::error::OAuthError;

/// `code_challenge_methods_supported`.
pub const METHODS_SUPPORTED: &[&str] = &["S256"];

/// Checks `code_challenge` and `code_challenge_method` of an authorization
/// request; returns the challenge.
pub fn check_challenge(
    challenge: Option<&str>,
    method: Option<&str>,
) -> Result<String, OAuthError> {
    let Some(challenge) = challenge else {
        return Err(OAuthError::invalid_request(
            "code_challenge is required: every client uses PKCE with S256",
        ));
    };
    match method {
        Some("S256") => {}
        None => {
            return Err(OAuthError::invalid_request(
                "code_challenge_method is required and must be S256",
            ));
        }
        Some(_) => {
            return Err(OAuthError::invalid_request(
                "code_challenge_method must be S256 (plain is not accepted)",
            ));
        }
    }
    // base64url(SHA-256) is exactly 43 characters.
    if challenge.len() != 43 || !challenge.bytes().all(is_base64url) {
        return Err(OAuthError::invalid_request(
            "code_challenge must be the base64url SHA-256 of the verifier (43 characters)",
        ));
    }
    Ok(challenge.to_owned())
}

/// Checks a `code_verifier`'s form (RFC 7636 §4.1: 43–128 unreserved characters).
pub fn check_verifier(verifier: Option<&str>) -> Result<&str, OAuthError> {
    let v =
        verifier.ok_or_else(|| OAuthError::invalid_request("code_verifier is required (PKCE)"))?;
    if !(43..=128).contains(&v.len())
        || !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
    {
        return Err(OAuthError::invalid_request(
            "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636 §4.1)",
        ));
    }
    Ok(v)
}

/// Whether `verifier` matches `challenge` under S256, in constant time.
pub fn verify(verifier: &str, challenge: &str) -> bool {
    let computed = URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()));
    computed.as_bytes().ct_eq(challenge.as_bytes()).into()
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7636_appendix_b_vector() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(verify(verifier, challenge));
        assert!(!verify(&verifier.replace('d', "e"), challenge));
        assert_eq!(
            check_challenge(Some(challenge), Some("S256")).expect("ok"),
            challenge
        );
        assert_eq!(check_verifier(Some(verifier)).expect("ok"), verifier);
    }

    #[test]
    fn plain_missing_and_malformed_are_refused() {
        let c = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(check_challenge(None, Some("S256")).is_err());
        assert!(check_challenge(Some(c), None).is_err());
        assert!(check_challenge(Some(c), Some("plain")).is_err());
        assert!(check_challenge(Some("short"), Some("S256")).is_err());
        assert!(check_verifier(None).is_err());
        assert!(check_verifier(Some(&"a".repeat(42))).is_err());
        assert!(check_verifier(Some(&"a".repeat(129))).is_err());
        assert!(check_verifier(Some(&format!("{}+", "a".repeat(43)))).is_err());
    }
}
