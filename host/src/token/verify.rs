//! Verifying Tessera's own tokens: access tokens (for `/userinfo`, the admin
//! API and introspection) and ID tokens given back as logout hints. A
//! compact JWS, a `kid` from our key set, the algorithm that key is for (never
//! the header's word alone), `typ`, `iss` and `exp`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, UnparsedPublicKey};
use serde_json::{Map, Value};

use super::keys::KeySet;
use crate::config::Algorithm;

/// Why a token was not accepted (kept vague on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Not a well-formed JWS of ours.
    Malformed,
    /// The signature does not verify.
    Signature,
    /// Wrong `typ` or `iss`.
    Claims,
    /// Past `exp`.
    Expired,
}

/// Verifies an access token issued by `issuer` and returns its claims.
pub fn access_token(
    keys: &KeySet,
    issuer: &str,
    token: &str,
    now: u64,
) -> Result<Map<String, Value>, Invalid> {
    let claims = signed_claims(keys, issuer, "at+jwt", token)?;
    match claims.get("exp").and_then(Value::as_u64) {
        Some(exp) if exp > now => Ok(claims),
        Some(_) => Err(Invalid::Expired),
        None => Err(Invalid::Claims),
    }
}

/// Verifies an ID token this issuer made, expired or not, and returns its
/// claims: the `id_token_hint` of RP-initiated logout, which names a past
/// sign-in, so its age does not matter (RP-Initiated Logout 1.0 §2).
pub fn id_token_hint(
    keys: &KeySet,
    issuer: &str,
    token: &str,
) -> Result<Map<String, Value>, Invalid> {
    let claims = signed_claims(keys, issuer, "JWT", token)?;
    let named = |name| claims.get(name).and_then(Value::as_str).is_some();
    if named("sub") && named("aud") {
        Ok(claims)
    } else {
        Err(Invalid::Claims)
    }
}

/// The claims of a compact JWS signed by one of `keys`, with header `typ`
/// and claim `iss` as given; no time checks.
fn signed_claims(
    keys: &KeySet,
    issuer: &str,
    typ: &str,
    token: &str,
) -> Result<Map<String, Value>, Invalid> {
    if token.len() > 16 * 1024 {
        return Err(Invalid::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Invalid::Malformed);
    };
    let header: Map<String, Value> = decode_json(h)?;
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or(Invalid::Malformed)?;
    let key = keys
        .keys()
        .iter()
        .find(|k| k.kid == kid)
        .ok_or(Invalid::Signature)?;
    if header.get("alg").and_then(Value::as_str) != Some(key.algorithm.as_str()) {
        return Err(Invalid::Signature);
    }
    let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| Invalid::Malformed)?;
    let alg: &dyn signature::VerificationAlgorithm = match key.algorithm {
        Algorithm::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
        Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::EdDSA => &signature::ED25519,
    };
    let signed = &token[..h.len() + 1 + p.len()];
    UnparsedPublicKey::new(alg, key.public_key())
        .verify(signed.as_bytes(), &sig)
        .map_err(|_| Invalid::Signature)?;
    if header.get("typ").and_then(Value::as_str) != Some(typ) {
        return Err(Invalid::Claims);
    }
    let claims: Map<String, Value> = decode_json(p)?;
    if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err(Invalid::Claims);
    }
    Ok(claims)
}

fn decode_json(part: &str) -> Result<Map<String, Value>, Invalid> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| Invalid::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| Invalid::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::jwt;
    use serde_json::json;

    fn keys(alg: Algorithm) -> KeySet {
        KeySet::single(crate::token::keys::SigningKey::generate(alg, 1).expect("key"))
    }

    fn claims(exp: u64) -> Map<String, Value> {
        let Value::Object(m) =
            json!({"iss": "https://i", "sub": "u_1", "exp": exp, "scope": "openid"})
        else {
            unreachable!()
        };
        m
    }

    #[test]
    fn own_tokens_verify_for_every_algorithm() {
        for alg in [Algorithm::ES256, Algorithm::EdDSA] {
            let set = keys(alg);
            let t = jwt::sign(set.active(), "at+jwt", &claims(100)).expect("sign");
            assert_eq!(
                access_token(&set, "https://i", &t, 50).expect("valid")["sub"],
                "u_1"
            );
            assert_eq!(
                access_token(&set, "https://i", &t, 100),
                Err(Invalid::Expired)
            );
            assert_eq!(
                access_token(&set, "https://other", &t, 50),
                Err(Invalid::Claims)
            );
        }
    }

    #[test]
    fn tampering_and_wrong_types_are_refused() {
        let set = keys(Algorithm::ES256);
        let t = jwt::sign(set.active(), "at+jwt", &claims(100)).expect("sign");
        let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(br#"{"iss":"https://i","sub":"admin","exp":100}"#);
        assert_eq!(
            access_token(&set, "https://i", &parts.join("."), 50),
            Err(Invalid::Signature)
        );
        let id = jwt::sign(set.active(), "JWT", &claims(100)).expect("sign");
        assert_eq!(
            access_token(&set, "https://i", &id, 50),
            Err(Invalid::Claims)
        );
        assert_eq!(
            access_token(&set, "https://i", "a.b", 50),
            Err(Invalid::Malformed)
        );
    }

    #[test]
    fn id_token_hints_verify_even_when_expired_but_not_access_tokens() {
        let set = keys(Algorithm::ES256);
        let mut c = claims(1);
        c.insert("aud".into(), "web".into());
        let id = jwt::sign(set.active(), "JWT", &c).expect("sign");
        assert_eq!(
            id_token_hint(&set, "https://i", &id).expect("valid")["aud"],
            "web"
        );
        assert_eq!(
            id_token_hint(&set, "https://other", &id),
            Err(Invalid::Claims)
        );
        let at = jwt::sign(set.active(), "at+jwt", &c).expect("sign");
        assert_eq!(id_token_hint(&set, "https://i", &at), Err(Invalid::Claims));
        let other = keys(Algorithm::ES256);
        assert_eq!(
            id_token_hint(&other, "https://i", &id),
            Err(Invalid::Signature)
        );
    }
}
