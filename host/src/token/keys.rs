//! Signing keys: generated on first start into `key_dir` (private files 0600,
//! PKCS#8 DER), reused after, and published as a JWKS with public parts only.
//!
//! A key file is named `key-<created unix seconds>-<ALG>.pk8`. The active key is
//! the newest one of the configured algorithm; every key in the folder is
//! published, so tokens signed by an older key stay verifiable after a
//! rotation until the operator deletes its file.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest::{SHA256, digest};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use serde_json::{Value, json};

use crate::config::Algorithm;

/// Signing failed (the key or the system RNG failed; never the input).
#[derive(Debug, Clone, Copy)]
pub struct SignError;

impl fmt::Display for SignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("signing failed")
    }
}

impl std::error::Error for SignError {}

/// A problem with the key folder or a key file.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// A key file does not hold a key of its algorithm.
    #[error("{path}: not a valid {algorithm} PKCS#8 key ({reason})")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Its algorithm, from its name.
        algorithm: &'static str,
        /// Why ring refused it.
        reason: String,
    },
    /// Generating a key failed.
    #[error("generating a {0} key failed")]
    Generate(&'static str),
}

enum Pair {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// One signing key.
pub struct SigningKey {
    /// The RFC 7638 thumbprint of the public key.
    pub kid: String,
    /// Its algorithm.
    pub algorithm: Algorithm,
    /// When it was created (Unix seconds).
    pub created: u64,
    /// The public JWK.
    pub public_jwk: Value,
    public: Vec<u8>,
    pair: Pair,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    fn from_pkcs8(algorithm: Algorithm, created: u64, der: &[u8]) -> Result<SigningKey, String> {
        let rng = SystemRandom::new();
        let (pair, public_jwk) = match algorithm {
            Algorithm::ES256 => {
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
                    .map_err(|e| e.to_string())?;
                let point = pair.public_key().as_ref();
                if point.len() != 65 || point[0] != 4 {
                    return Err("unexpected public key encoding".into());
                }
                let jwk = json!({
                    "crv": "P-256",
                    "kty": "EC",
                    "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                    "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
                });
                (Pair::Ec(pair), jwk)
            }
            Algorithm::RS256 => {
                let pair = RsaKeyPair::from_pkcs8(der).map_err(|e| e.to_string())?;
                let parts: ring::rsa::PublicKeyComponents<Vec<u8>> = pair.public().into();
                let jwk = json!({
                    "e": URL_SAFE_NO_PAD.encode(&parts.e),
                    "kty": "RSA",
                    "n": URL_SAFE_NO_PAD.encode(&parts.n),
                });
                (Pair::Rsa(pair), jwk)
            }
            Algorithm::EdDSA => {
                let pair = Ed25519KeyPair::from_pkcs8(der).map_err(|e| e.to_string())?;
                let jwk = json!({
                    "crv": "Ed25519",
                    "kty": "OKP",
                    "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
                });
                (Pair::Ed(pair), jwk)
            }
        };
        // RFC 7638: SHA-256 over the required members in lexicographic order;
        // serde_json's map is ordered by key, so `to_string` is canonical.
        let kid = URL_SAFE_NO_PAD.encode(digest(&SHA256, public_jwk.to_string().as_bytes()));
        let mut public_jwk = public_jwk;
        if let Value::Object(m) = &mut public_jwk {
            m.insert("kid".into(), kid.clone().into());
            m.insert("alg".into(), algorithm.as_str().into());
            m.insert("use".into(), "sig".into());
        }
        let public = match &pair {
            Pair::Ec(p) => p.public_key().as_ref().to_vec(),
            Pair::Rsa(p) => p.public().as_ref().to_vec(),
            Pair::Ed(p) => p.public_key().as_ref().to_vec(),
        };
        Ok(SigningKey {
            kid,
            algorithm,
            created,
            public_jwk,
            public,
            pair,
        })
    }

    /// The public key as ring verifies it (SEC1 point, PKCS#1 RSAPublicKey, or
    /// the raw Ed25519 key).
    pub fn public_key(&self) -> &[u8] {
        &self.public
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        match &self.pair {
            Pair::Ec(p) => p
                .sign(&SystemRandom::new(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| SignError),
            Pair::Rsa(p) => {
                let mut sig = vec![0u8; p.public().modulus_len()];
                p.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut sig)
                    .map_err(|_| SignError)?;
                Ok(sig)
            }
            Pair::Ed(p) => Ok(p.sign(message).as_ref().to_vec()),
        }
    }
}

/// The keys of one key folder.
#[derive(Debug)]
pub struct KeySet {
    keys: Vec<SigningKey>,
    active: usize,
    jwks: Vec<u8>,
}

impl KeySet {
    /// Loads every key in `dir`, creating the folder and a key of `algorithm`
    /// when there is none.
    pub fn load_or_create(dir: &Path, algorithm: Algorithm, now: u64) -> Result<KeySet, KeyError> {
        let mut keys = load_dir(dir)?;
        if !keys.iter().any(|k| k.algorithm == algorithm) {
            keys.push(create(dir, algorithm, now)?);
        }
        Ok(KeySet::from_keys(keys, algorithm))
    }

    /// Adds a new key of `algorithm` to `dir`; it becomes the active key the
    /// next time the folder is loaded. Returns its `kid`.
    pub fn rotate(dir: &Path, algorithm: Algorithm, now: u64) -> Result<String, KeyError> {
        // A second rotation within the same second must still sort after the first.
        let newest = load_dir(dir)?.iter().map(|k| k.created).max().unwrap_or(0);
        Ok(create(dir, algorithm, now.max(newest + 1))?.kid)
    }

    fn from_keys(mut keys: Vec<SigningKey>, algorithm: Algorithm) -> KeySet {
        keys.sort_by_key(|k| k.created);
        let active = keys
            .iter()
            .rposition(|k| k.algorithm == algorithm)
            .unwrap_or(0);
        let jwks = json!({ "keys": keys.iter().map(|k| &k.public_jwk).collect::<Vec<_>>() });
        KeySet {
            jwks: jwks.to_string().into_bytes(),
            keys,
            active,
        }
    }

    /// The key new tokens are signed with.
    pub fn active(&self) -> &SigningKey {
        &self.keys[self.active]
    }

    /// Every key, oldest first.
    pub fn keys(&self) -> &[SigningKey] {
        &self.keys
    }

    /// The JWKS document (RFC 7517), rendered once.
    pub fn jwks_json(&self) -> &[u8] {
        &self.jwks
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_owned(),
        source,
    }
}

fn load_dir(dir: &Path) -> Result<Vec<SigningKey>, KeyError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(dir)(e)),
    };
    let mut keys = Vec::new();
    for entry in entries {
        let path = entry.map_err(io_err(dir))?.path();
        let Some((created, algorithm)) = parse_name(&path) else {
            continue;
        };
        warn_if_readable_by_others(&path);
        let der = std::fs::read(&path).map_err(io_err(&path))?;
        let key = SigningKey::from_pkcs8(algorithm, created, &der).map_err(|reason| {
            KeyError::Invalid {
                path: path.clone(),
                algorithm: algorithm.as_str(),
                reason,
            }
        })?;
        keys.push(key);
    }
    Ok(keys)
}

fn parse_name(path: &Path) -> Option<(u64, Algorithm)> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_prefix("key-")?.strip_suffix(".pk8")?;
    let (created, alg) = stem.split_once('-')?;
    Some((created.parse().ok()?, Algorithm::from_name(alg)?))
}

fn create(dir: &Path, algorithm: Algorithm, now: u64) -> Result<SigningKey, KeyError> {
    let der = generate(algorithm)?;
    create_private_dir(dir)?;
    let path = dir.join(format!("key-{now}-{}.pk8", algorithm.as_str()));
    write_private(&path, &der)?;
    SigningKey::from_pkcs8(algorithm, now, &der).map_err(|reason| KeyError::Invalid {
        path,
        algorithm: algorithm.as_str(),
        reason,
    })
}

fn generate(algorithm: Algorithm) -> Result<Vec<u8>, KeyError> {
    let rng = SystemRandom::new();
    let fail = || KeyError::Generate(algorithm.as_str());
    match algorithm {
        Algorithm::ES256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map(|d| d.as_ref().to_vec())
            .map_err(|_| fail()),
        Algorithm::EdDSA => Ed25519KeyPair::generate_pkcs8(&rng)
            .map(|d| d.as_ref().to_vec())
            .map_err(|_| fail()),
        Algorithm::RS256 => {
            // ring cannot generate RSA keys; the RustCrypto `rsa` crate does.
            use rsa::pkcs8::EncodePrivateKey;
            let key =
                rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).map_err(|_| fail())?;
            key.to_pkcs8_der()
                .map(|d| d.as_bytes().to_vec())
                .map_err(|_| fail())
        }
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err(dir))
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> Result<(), KeyError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io_err(path))?;
    file.write_all(bytes).map_err(io_err(path))?;
    file.sync_all().map_err(io_err(path))
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                file = %path.display(),
                "signing key is readable by other users; run chmod 600 on it"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_created_once_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = KeySet::load_or_create(dir.path(), Algorithm::ES256, 1000).expect("create");
        let b = KeySet::load_or_create(dir.path(), Algorithm::ES256, 2000).expect("load");
        assert_eq!(a.active().kid, b.active().kid);
        assert_eq!(b.keys().len(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let file = std::fs::read_dir(dir.path())
                .expect("dir")
                .next()
                .expect("one")
                .expect("entry");
            assert_eq!(
                file.metadata().expect("meta").permissions().mode() & 0o777,
                0o600
            );
        }
    }

    #[test]
    fn jwks_has_public_parts_only_and_unique_kids() {
        let dir = tempfile::tempdir().expect("tempdir");
        KeySet::load_or_create(dir.path(), Algorithm::EdDSA, 1).expect("ed");
        KeySet::rotate(dir.path(), Algorithm::ES256, 2).expect("rotate");
        let set = KeySet::load_or_create(dir.path(), Algorithm::ES256, 3).expect("load");
        assert_eq!(set.active().algorithm, Algorithm::ES256);
        let jwks: Value = serde_json::from_slice(set.jwks_json()).expect("json");
        let keys = jwks["keys"].as_array().expect("keys");
        assert_eq!(keys.len(), 2);
        for k in keys {
            for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
                assert!(k.get(private).is_none(), "{private} in {k}");
            }
        }
        assert_ne!(keys[0]["kid"], keys[1]["kid"]);
    }

    #[test]
    fn rotation_makes_a_newer_active_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = KeySet::load_or_create(dir.path(), Algorithm::ES256, 50).expect("create");
        let kid = KeySet::rotate(dir.path(), Algorithm::ES256, 50).expect("rotate");
        let set = KeySet::load_or_create(dir.path(), Algorithm::ES256, 60).expect("load");
        assert_eq!(set.active().kid, kid);
        assert_ne!(kid, first.active().kid);
    }

    #[test]
    fn a_corrupt_key_file_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("key-1-ES256.pk8"), b"junk").expect("write");
        let e = KeySet::load_or_create(dir.path(), Algorithm::ES256, 2).unwrap_err();
        assert!(e.to_string().contains("key-1-ES256.pk8"), "{e}");
    }
}
