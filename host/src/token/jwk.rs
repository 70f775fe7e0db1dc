//! The public keys a client signs its assertions with (`private_key_jwt`,
//! RFC 7523): a JWK Set (RFC 7517 §5) read from the configuration, and the
//! check of a compact JWS against it.
//!
//! Only what ring verifies is accepted: RSA of 2048 bits or more (RS256,
//! PS256), P-256 (ES256) and Ed25519 (EdDSA). A key is for the algorithm its
//! `alg` names, or, without one, for those its type allows; the JWS header's
//! `alg` must be one of them, so a header cannot choose how a key is used.
//! A set holding a private member (`d`, `p`, …) is refused: the issuer must
//! never hold a client's private key, and a file that has one was copied
//! from the wrong place.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::{Map, Value};

/// Algorithms a client may sign its assertions with, as discovery lists them.
pub const ASSERTION_ALGORITHMS: &[&str] = &["ES256", "EdDSA", "PS256", "RS256"];

/// Most keys one client may publish.
pub const MAX_KEYS: usize = 20;

/// Longest compact JWS looked at, in bytes.
pub const MAX_JWS_BYTES: usize = 8 * 1024;

/// Members that only a private key has (RFC 7518 §6.2.2, §6.3.2, §6.4.1;
/// RFC 8037 §2).
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alg {
    RS256,
    PS256,
    ES256,
    EdDSA,
}

impl Alg {
    fn parse(name: &str) -> Option<Alg> {
        match name {
            "RS256" => Some(Alg::RS256),
            "PS256" => Some(Alg::PS256),
            "ES256" => Some(Alg::ES256),
            "EdDSA" => Some(Alg::EdDSA),
            _ => None,
        }
    }
}

#[derive(Clone)]
enum PublicKey {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// The uncompressed SEC1 point.
    P256(Vec<u8>),
    Ed25519(Vec<u8>),
}

impl PublicKey {
    fn algorithms(&self) -> &'static [Alg] {
        match self {
            PublicKey::Rsa { .. } => &[Alg::RS256, Alg::PS256],
            PublicKey::P256(_) => &[Alg::ES256],
            PublicKey::Ed25519(_) => &[Alg::EdDSA],
        }
    }

    fn verify(&self, alg: Alg, message: &[u8], sig: &[u8]) -> bool {
        match (self, alg) {
            (PublicKey::Rsa { n, e }, Alg::RS256 | Alg::PS256) => {
                let params = if alg == Alg::RS256 {
                    &signature::RSA_PKCS1_2048_8192_SHA256
                } else {
                    &signature::RSA_PSS_2048_8192_SHA256
                };
                RsaPublicKeyComponents { n, e }
                    .verify(params, message, sig)
                    .is_ok()
            }
            (PublicKey::P256(point), Alg::ES256) => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, sig)
                    .is_ok()
            }
            (PublicKey::Ed25519(x), Alg::EdDSA) => UnparsedPublicKey::new(&signature::ED25519, x)
                .verify(message, sig)
                .is_ok(),
            _ => false,
        }
    }
}

/// One published key.
#[derive(Clone)]
struct ClientKey {
    kid: Option<String>,
    algorithms: Vec<Alg>,
    key: PublicKey,
}

/// A client's public keys.
#[derive(Clone)]
pub struct ClientKeys {
    keys: Vec<ClientKey>,
}

impl fmt::Debug for ClientKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kids: Vec<_> = self
            .keys
            .iter()
            .map(|k| k.kid.as_deref().unwrap_or("(no kid)"))
            .collect();
        f.debug_struct("ClientKeys").field("kids", &kids).finish()
    }
}

/// Why a JWS was not accepted (the caller keeps it vague on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// Not a compact JWS with JSON header and payload.
    Malformed,
    /// `alg` missing, `none`, not supported, or not what any key is for; or
    /// a `crit` header this issuer does not understand.
    Algorithm,
    /// No key verifies it.
    Signature,
}

impl ClientKeys {
    /// Reads a JWK Set (`{"keys": [...]}`). The error names the member at
    /// fault, relative to the set: `keys[1].crv: ...`.
    pub fn parse(set: &Value) -> Result<ClientKeys, String> {
        let list = set
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("is not a JWK Set: it needs a `keys` array (RFC 7517 §5)")?;
        if list.is_empty() {
            return Err("keys: is empty; publish at least one public key".into());
        }
        if list.len() > MAX_KEYS {
            return Err(format!(
                "keys: holds {} keys; the limit is {MAX_KEYS}",
                list.len()
            ));
        }
        let mut keys = Vec::with_capacity(list.len());
        for (i, jwk) in list.iter().enumerate() {
            let key = parse_key(jwk).map_err(|why| format!("keys[{i}]{why}"))?;
            if key.kid.is_some() && keys.iter().any(|k: &ClientKey| k.kid == key.kid) {
                return Err(format!(
                    "keys[{i}].kid: {:?} is used by an earlier key; kids must be unique",
                    key.kid.as_deref().unwrap_or_default()
                ));
            }
            keys.push(key);
        }
        Ok(ClientKeys { keys })
    }

    /// The algorithms these keys may sign with, in discovery's order.
    pub fn algorithms(&self) -> Vec<&'static str> {
        ASSERTION_ALGORITHMS
            .iter()
            .copied()
            .filter(|name| {
                let alg = Alg::parse(name);
                self.keys
                    .iter()
                    .any(|k| alg.is_some_and(|a| k.algorithms.contains(&a)))
            })
            .collect()
    }

    /// Verifies the compact JWS `jws` with one of these keys (the one its
    /// header's `kid` names, if it names one) and returns its payload.
    pub fn verify(&self, jws: &str) -> Result<Map<String, Value>, Rejected> {
        if jws.len() > MAX_JWS_BYTES {
            return Err(Rejected::Malformed);
        }
        let mut parts = jws.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Rejected::Malformed);
        };
        let header = decode_json(h).ok_or(Rejected::Malformed)?;
        if header.contains_key("crit") {
            return Err(Rejected::Algorithm);
        }
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .and_then(Alg::parse)
            .ok_or(Rejected::Algorithm)?;
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(kid)) => Some(kid.as_str()),
            Some(_) => return Err(Rejected::Malformed),
        };
        let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| Rejected::Malformed)?;
        let payload = decode_json(p).ok_or(Rejected::Malformed)?;
        let candidates: Vec<&ClientKey> = self
            .keys
            .iter()
            .filter(|k| k.algorithms.contains(&alg))
            .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
            .collect();
        if candidates.is_empty() {
            // A kid no key has is a signature we cannot check; a key that is
            // there but not for this alg is the header choosing the alg.
            let kid_unknown = kid.is_some() && !self.keys.iter().any(|k| k.kid.as_deref() == kid);
            return Err(if kid_unknown {
                Rejected::Signature
            } else {
                Rejected::Algorithm
            });
        }
        let signed = &jws.as_bytes()[..h.len() + 1 + p.len()];
        if candidates.iter().any(|k| k.key.verify(alg, signed, &sig)) {
            Ok(payload)
        } else {
            Err(Rejected::Signature)
        }
    }
}

/// The unverified payload of a compact JWS: only to learn who claims to
/// have signed it, before the signature is checked.
pub fn unverified_payload(jws: &str) -> Option<Map<String, Value>> {
    if jws.len() > MAX_JWS_BYTES {
        return None;
    }
    decode_json(jws.split('.').nth(1)?)
}

fn decode_json(part: &str) -> Option<Map<String, Value>> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
}

/// One JWK; the error starts with the member at fault (`.crv: …`) or `: …`.
fn parse_key(jwk: &Value) -> Result<ClientKey, String> {
    let Some(jwk) = jwk.as_object() else {
        return Err(": is not a JSON object".into());
    };
    if let Some(member) = PRIVATE_MEMBERS.iter().find(|m| jwk.contains_key(**m)) {
        return Err(format!(
            ".{member}: is private key material; publish only the public key \
             (and treat this private key as exposed)"
        ));
    }
    let text = |name: &str| -> Result<Option<&str>, String> {
        match jwk.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(format!(".{name}: must be a string")),
        }
    };
    let bytes = |name: &str| -> Result<Vec<u8>, String> {
        let value = text(name)?.ok_or_else(|| format!(".{name}: is required"))?;
        URL_SAFE_NO_PAD
            .decode(value)
            .map_err(|_| format!(".{name}: is not base64url without padding"))
    };
    if let Some(usage) = text("use")?.filter(|u| *u != "sig") {
        return Err(format!(
            ".use: is {usage:?}; a key for client assertions is for \"sig\""
        ));
    }
    if let Some(ops) = jwk.get("key_ops") {
        let verifies = ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|op| op == "verify"));
        if !verifies {
            return Err(".key_ops: must include \"verify\"".into());
        }
    }
    let key = match text("kty")? {
        Some("RSA") => {
            let n = bytes("n")?;
            let e = bytes("e")?;
            let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
            if bits < 2048 {
                return Err(format!(
                    ".n: the modulus has about {bits} bits; RSA keys need at least 2048"
                ));
            }
            if e.is_empty() || e.len() > 4 {
                return Err(".e: is not a usable RSA public exponent".into());
            }
            PublicKey::Rsa { n, e }
        }
        Some("EC") => {
            if text("crv")? != Some("P-256") {
                return Err(".crv: only P-256 is supported for EC keys (ES256)".into());
            }
            let (x, y) = (bytes("x")?, bytes("y")?);
            if x.len() != 32 || y.len() != 32 {
                return Err(".x: x and y of a P-256 key are 32 bytes each".into());
            }
            let mut point = Vec::with_capacity(65);
            point.push(4);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            PublicKey::P256(point)
        }
        Some("OKP") => {
            if text("crv")? != Some("Ed25519") {
                return Err(".crv: only Ed25519 is supported for OKP keys (EdDSA)".into());
            }
            let x = bytes("x")?;
            if x.len() != 32 {
                return Err(".x: an Ed25519 public key is 32 bytes".into());
            }
            PublicKey::Ed25519(x)
        }
        Some(other) => {
            return Err(format!(
                ".kty: {other:?} is not supported; use RSA, EC (P-256) or OKP (Ed25519)"
            ));
        }
        None => return Err(".kty: is required".into()),
    };
    let algorithms = match text("alg")? {
        None => key.algorithms().to_vec(),
        Some(name) => match Alg::parse(name) {
            Some(alg) if key.algorithms().contains(&alg) => vec![alg],
            Some(_) => {
                return Err(format!(
                    ".alg: {name} is not an algorithm for this key type"
                ));
            }
            None => {
                return Err(format!(
                    ".alg: {name:?} is not supported; use one of {}",
                    ASSERTION_ALGORITHMS.join(", ")
                ));
            }
        },
    };
    Ok(ClientKey {
        kid: text("kid")?.map(str::to_owned),
        algorithms,
        key,
    })
}

#[cfg(test)]
pub(crate) mod testing {
    //! Client key pairs for tests: a private key that signs assertions and
    //! the JWK Set that publishes its public half.

    use serde_json::{Value, json};

    use crate::config::Algorithm;
    use crate::token::keys::SigningKey;

    /// A client's key pair.
    pub struct ClientKeyPair {
        key: SigningKey,
        kid: String,
    }

    impl ClientKeyPair {
        /// A new pair whose public JWK carries `kid`.
        pub fn new(algorithm: Algorithm, kid: &str) -> ClientKeyPair {
            ClientKeyPair {
                key: SigningKey::generate(algorithm, 0).expect("key"),
                kid: kid.to_owned(),
            }
        }

        /// The public JWK.
        pub fn jwk(&self) -> Value {
            let mut jwk = self.key.public_jwk.clone();
            jwk["kid"] = self.kid.clone().into();
            jwk
        }

        /// `{"keys": [jwk]}`.
        pub fn jwks(&self) -> Value {
            json!({ "keys": [self.jwk()] })
        }

        /// A compact JWS of `claims` with header `alg` and `kid`.
        pub fn sign(&self, claims: &Value) -> String {
            self.sign_with_header(
                &json!({
                    "alg": self.key.algorithm.as_str(),
                    "kid": self.kid,
                    "typ": "JWT",
                }),
                claims,
            )
        }

        /// A compact JWS of `claims` under `header`, signed with this key.
        pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
            use base64::Engine as _;
            let b64 =
                |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
            let input = format!("{}.{}", b64(header), b64(claims));
            let sig = self.key.sign(input.as_bytes()).expect("sign");
            format!(
                "{input}.{}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig)
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::ClientKeyPair;
    use super::*;
    use crate::config::Algorithm;
    use serde_json::json;

    #[test]
    fn each_key_type_verifies_its_own_signatures_only() {
        let pairs = [
            ClientKeyPair::new(Algorithm::ES256, "ec"),
            ClientKeyPair::new(Algorithm::RS256, "rsa"),
            ClientKeyPair::new(Algorithm::EdDSA, "ed"),
        ];
        // Without `alg`, a key is for what its type allows.
        let published: Vec<Value> = pairs
            .iter()
            .map(|pair| {
                let mut jwk = pair.jwk();
                jwk.as_object_mut().expect("object").remove("alg");
                jwk
            })
            .collect();
        let keys = ClientKeys::parse(&json!({ "keys": published })).expect("valid set");
        assert_eq!(keys.algorithms(), ["ES256", "EdDSA", "PS256", "RS256"]);
        for pair in &pairs {
            let jws = pair.sign(&json!({"sub": "acme"}));
            assert_eq!(keys.verify(&jws).expect("verifies")["sub"], "acme");
            // The second-to-last character's six bits are all signature
            // bits (the last one's may be padding), so changing it always
            // changes the signature.
            let mut tampered = jws.clone();
            let at = jws.len() - 2;
            let other = if &jws[at..=at] == "A" { "B" } else { "A" };
            tampered.replace_range(at..=at, other);
            assert_eq!(keys.verify(&tampered), Err(Rejected::Signature));
        }
        let stranger = ClientKeyPair::new(Algorithm::ES256, "ec");
        assert_eq!(
            keys.verify(&stranger.sign(&json!({}))),
            Err(Rejected::Signature),
            "a key with a known kid but other bytes"
        );
    }

    #[test]
    fn the_header_cannot_choose_the_algorithm() {
        let pair = ClientKeyPair::new(Algorithm::ES256, "ec");
        let keys = ClientKeys::parse(&pair.jwks()).expect("valid");
        let claims = json!({"sub": "acme"});
        for header in [
            json!({"alg": "none", "kid": "ec"}),
            json!({"alg": "HS256", "kid": "ec"}),
            json!({"alg": "RS256"}),
            json!({"kid": "ec"}),
            json!({"alg": "ES256", "kid": "ec", "crit": ["exp"]}),
        ] {
            let jws = pair.sign_with_header(&header, &claims);
            assert_eq!(keys.verify(&jws), Err(Rejected::Algorithm), "{header}");
        }
        let unnamed = pair.sign_with_header(&json!({"alg": "ES256"}), &claims);
        assert!(
            keys.verify(&unnamed).is_ok(),
            "no kid: every key of the alg is tried"
        );
        let other_kid = pair.sign_with_header(&json!({"alg": "ES256", "kid": "x"}), &claims);
        assert_eq!(keys.verify(&other_kid), Err(Rejected::Signature));
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            "!!.!!.!!",
            &"A".repeat(MAX_JWS_BYTES + 1),
        ] {
            assert_eq!(keys.verify(bad), Err(Rejected::Malformed), "{bad}");
        }
    }

    #[test]
    fn a_key_with_alg_is_for_that_alg_only() {
        let pair = ClientKeyPair::new(Algorithm::RS256, "rsa");
        let mut jwk = pair.jwk();
        jwk["alg"] = "PS256".into();
        let keys = ClientKeys::parse(&json!({"keys": [jwk]})).expect("valid");
        assert_eq!(keys.algorithms(), ["PS256"]);
        assert_eq!(
            keys.verify(&pair.sign(&json!({}))),
            Err(Rejected::Algorithm),
            "an RS256 signature from a key published for PS256"
        );
    }

    #[test]
    fn bad_sets_name_the_member_at_fault() {
        let ec = ClientKeyPair::new(Algorithm::ES256, "ec").jwk();
        let with = |name: &str, value: Value| {
            let mut jwk = ec.clone();
            jwk[name] = value;
            ClientKeys::parse(&json!({"keys": [jwk]})).unwrap_err()
        };
        assert!(with("d", "AAAA".into()).starts_with("keys[0].d: is private key material"));
        assert!(with("crv", "P-384".into()).starts_with("keys[0].crv:"));
        assert!(with("x", "AAAA".into()).starts_with("keys[0].x:"));
        assert!(with("x", "***".into()).contains("base64url"));
        assert!(with("use", "enc".into()).starts_with("keys[0].use:"));
        assert!(with("key_ops", json!(["sign"])).starts_with("keys[0].key_ops:"));
        assert!(with("alg", "RS256".into()).starts_with("keys[0].alg:"));
        assert!(with("alg", "ES512".into()).contains("not supported"));
        assert!(with("kty", "oct".into()).starts_with("keys[0].kty:"));
        assert!(
            ClientKeys::parse(&json!({"keys": [ec, ec]}))
                .unwrap_err()
                .starts_with("keys[1].kid:")
        );
        assert!(ClientKeys::parse(&json!({"keys": []})).is_err());
        assert!(
            ClientKeys::parse(&json!([ec]))
                .unwrap_err()
                .contains("JWK Set")
        );
        let short = json!({"keys": [{"kty": "RSA", "n": URL_SAFE_NO_PAD.encode([0xff; 128]), "e": "AQAB"}]});
        assert!(ClientKeys::parse(&short).unwrap_err().contains("2048"));
    }
}
