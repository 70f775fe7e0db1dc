//! `private_key_jwt` (RFC 7523 §2.2 and §3, OpenID Connect Core §9): the
//! client proves who it is with a JWT it signed with a key whose public half
//! is in its configuration.
//!
//! The checks, in order: the signature, by one of the client's keys and an
//! algorithm that key is for; `iss` and `sub` are the client id; `aud` names
//! this issuer, its token endpoint or the endpoint called; `exp` is in the
//! future but no further than [`MAX_LIFETIME_SECS`]; `nbf` and `iat`, if
//! present, are not in the future; `jti` is present. Clocks may disagree by
//! [`CLOCK_SKEW_SECS`]. Whether the `jti` was used before is the store's
//! question; [`Spent`] says what to ask it.
//!
//! Until the signature verifies, every failure reads the same, so a caller
//! without the key learns nothing; after it, the description says what is
//! wrong, for the developer who holds the key.

use serde_json::{Map, Value};

use super::error::{ErrorCode, OAuthError};
use crate::config::Client;
use crate::token::jwk::ClientKeys;

/// `client_assertion_type` of a JWT assertion (RFC 7523 §2.2).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How far the client's clock may be from ours, in seconds.
pub const CLOCK_SKEW_SECS: u64 = 60;

/// The longest an assertion may be valid for (its `exp` from now): an hour,
/// which is what client libraries default to (Authlib does). It bounds how
/// long a used `jti` must be remembered.
pub const MAX_LIFETIME_SECS: u64 = 3600;

/// Longest `jti` accepted, in bytes.
pub const MAX_JTI_BYTES: usize = 256;

/// An assertion that passed every check but the replay check: the store
/// must accept `jti` of `client_id` once, remembered until `remember_until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spent {
    /// The client.
    pub client_id: String,
    /// The assertion's `jti`.
    pub jti: String,
    /// Until when a second use must be refused: past this, `exp` refuses it.
    pub remember_until: u64,
}

/// Checks `assertion` for `client`, whose keys are `keys`. `audiences` are
/// the values `aud` may hold (the issuer, the token endpoint, the endpoint
/// called).
pub fn check(
    client: &Client,
    keys: &ClientKeys,
    assertion: &str,
    audiences: &[&str],
    now: u64,
) -> Result<Spent, OAuthError> {
    let claims = keys
        .verify(assertion)
        .map_err(|_| OAuthError::invalid_client(false))?;
    let refuse = |why: &str| {
        OAuthError::new(
            ErrorCode::InvalidClient,
            format!("the client assertion {why} (RFC 7523 §3)"),
        )
    };
    for name in ["iss", "sub"] {
        if text(&claims, name) != Some(client.id.as_str()) {
            return Err(refuse(&format!("must have {name} = the client id")));
        }
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(aud)) => audiences.contains(&aud.as_str()),
        Some(Value::Array(auds)) => auds
            .iter()
            .any(|a| a.as_str().is_some_and(|a| audiences.contains(&a))),
        _ => false,
    };
    if !aud_ok {
        return Err(refuse(&format!(
            "must have aud = the issuer or the endpoint's URL: {}",
            audiences.join(" or ")
        )));
    }
    let exp = number(&claims, "exp").ok_or_else(|| refuse("must have exp"))?;
    if exp.saturating_add(CLOCK_SKEW_SECS) <= now {
        return Err(refuse("has expired"));
    }
    if exp > now + MAX_LIFETIME_SECS + CLOCK_SKEW_SECS {
        return Err(refuse(&format!(
            "is valid for too long; keep exp within {MAX_LIFETIME_SECS} seconds"
        )));
    }
    for name in ["nbf", "iat"] {
        match claims.get(name) {
            None => {}
            Some(v) => match v.as_u64() {
                Some(t) if t <= now + CLOCK_SKEW_SECS => {}
                Some(_) => return Err(refuse(&format!("has {name} in the future"))),
                None => return Err(refuse(&format!("has a {name} that is not a time"))),
            },
        }
    }
    let jti = text(&claims, "jti")
        .filter(|j| !j.is_empty() && j.len() <= MAX_JTI_BYTES)
        .ok_or_else(|| refuse(&format!("must have a jti of 1 to {MAX_JTI_BYTES} bytes")))?;
    Ok(Spent {
        client_id: client.id.clone(),
        jti: jti.to_owned(),
        remember_until: exp + CLOCK_SKEW_SECS,
    })
}

fn text<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    claims.get(name).and_then(Value::as_str)
}

fn number(claims: &Map<String, Value>, name: &str) -> Option<u64> {
    claims.get(name).and_then(Value::as_u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Algorithm, AppType};
    use crate::token::jwk::testing::ClientKeyPair;
    use serde_json::json;
    use std::sync::Arc;

    const NOW: u64 = 1_000_000;
    const AUD: &[&str] = &["https://issuer.test", "https://issuer.test/oauth/token"];

    fn client(pair: &ClientKeyPair) -> Client {
        let keys = ClientKeys::parse(&pair.jwks()).expect("keys");
        Client {
            id: "acme".into(),
            name: "acme".into(),
            app_type: AppType::Machine,
            secret: None,
            keys: Some(Arc::new(keys)),
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            metadata: Map::new(),
            client_grant_apis: Vec::new(),
            refresh_reuse_leeway: std::time::Duration::ZERO,
            id_token_algorithm: Algorithm::RS256,
            auth_method: None,
            first_party: true,
            allowed_origins: Vec::new(),
            trace: false,
        }
    }

    fn claims() -> Value {
        json!({
            "iss": "acme", "sub": "acme", "aud": "https://issuer.test/oauth/token",
            "exp": NOW + 60, "iat": NOW, "jti": "j-1",
        })
    }

    fn run(pair: &ClientKeyPair, claims: &Value) -> Result<Spent, OAuthError> {
        let c = client(pair);
        check(&c, c.keys.as_ref().unwrap(), &pair.sign(claims), AUD, NOW)
    }

    #[test]
    fn a_good_assertion_is_spent_until_it_expires() {
        let pair = ClientKeyPair::new(Algorithm::ES256, "k1");
        assert_eq!(
            run(&pair, &claims()).expect("valid"),
            Spent {
                client_id: "acme".into(),
                jti: "j-1".into(),
                remember_until: NOW + 60 + CLOCK_SKEW_SECS,
            }
        );
        let mut to_issuer = claims();
        to_issuer["aud"] = json!(["https://elsewhere", "https://issuer.test"]);
        assert!(run(&pair, &to_issuer).is_ok(), "aud as an array");
        let mut skewed = claims();
        skewed["exp"] = (NOW - 30).into();
        skewed["iat"] = (NOW + 30).into();
        assert!(run(&pair, &skewed).is_ok(), "within the clock skew");
    }

    #[test]
    fn each_claim_is_checked() {
        let pair = ClientKeyPair::new(Algorithm::EdDSA, "k1");
        let cases: &[(&str, Value, &str)] = &[
            ("iss", json!("other"), "iss"),
            ("sub", json!("other"), "sub"),
            ("aud", json!("https://other"), "aud"),
            ("aud", json!(["https://other"]), "aud"),
            ("exp", json!(NOW - CLOCK_SKEW_SECS), "expired"),
            ("exp", json!("soon"), "exp"),
            ("exp", json!(NOW + 2 * 3600), "too long"),
            ("nbf", json!(NOW + 600), "nbf"),
            ("iat", json!(NOW + 600), "iat"),
            ("iat", json!("now"), "iat"),
            ("jti", json!(""), "jti"),
            ("jti", json!("x".repeat(MAX_JTI_BYTES + 1)), "jti"),
        ];
        for (name, value, says) in cases {
            let mut c = claims();
            c[*name] = value.clone();
            let e = run(&pair, &c).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidClient, "{name}");
            assert!(e.description.contains(says), "{name}: {}", e.description);
        }
        for name in ["iss", "sub", "aud", "exp", "jti"] {
            let mut c = claims();
            c.as_object_mut().unwrap().remove(name);
            assert!(run(&pair, &c).is_err(), "without {name}");
        }
    }

    #[test]
    fn a_bad_signature_says_nothing_more() {
        let pair = ClientKeyPair::new(Algorithm::ES256, "k1");
        let other = ClientKeyPair::new(Algorithm::ES256, "k1");
        let c = client(&pair);
        let mut bad = claims();
        bad["aud"] = "https://other".into();
        let e = check(&c, c.keys.as_ref().unwrap(), &other.sign(&bad), AUD, NOW).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidClient);
        assert_eq!(e.description, "client authentication failed");
    }
}
