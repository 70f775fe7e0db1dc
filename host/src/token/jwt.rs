//! Compact JWS encoding and signing.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use super::keys::{SignError, SigningKey};

/// Encodes and signs a JWT with `key` (a [`super::keys::KeySet`]'s active
/// key, or the one it keeps for an ID token's algorithm).
pub fn sign(key: &SigningKey, typ: &str, claims: &Map<String, Value>) -> Result<String, SignError> {
    let header = json!({ "alg": key.algorithm.as_str(), "typ": typ, "kid": key.kid });
    let header = serde_json::to_vec(&header).map_err(|_| SignError)?;
    let payload = serde_json::to_vec(claims).map_err(|_| SignError)?;
    let mut out = String::with_capacity(64 + payload.len() * 4 / 3 + 360);
    URL_SAFE_NO_PAD.encode_string(&header, &mut out);
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(&payload, &mut out);
    let signature = key.sign(out.as_bytes())?;
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut out);
    Ok(out)
}
