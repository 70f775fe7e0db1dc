//! Signing keys as material: a private key parsed by ring with its public JWK
//! and RFC 7638 `kid`, the [`Lifecycle`] dates that decide which key signs
//! and which are published, and the [`KeySet`] a request signs and verifies
//! with. Where keys are kept (a folder, or the store sealed with a KEK) is
//! [`super::keyring`]'s job.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest::{SHA256, digest};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use serde_json::{Value, json};
use zeroize::Zeroizing;

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
    /// The store failed.
    #[error("the store: {0}")]
    Store(#[from] crate::store::StoreError),
    /// A key in the store does not open with the configured KEK.
    #[error("signing key {kid} in the store: {source}")]
    Sealed {
        /// The key.
        kid: String,
        /// Why it does not open.
        source: super::kek::OpenError,
    },
    /// A key in the store opens but is not what its row says.
    #[error("signing key {kid} in the store: {reason}")]
    Corrupt {
        /// The key.
        kid: String,
        /// What is wrong.
        reason: String,
    },
    /// `tessera keys retire` named no known key.
    #[error("no signing key {0}; `tessera keys list` shows them")]
    NoSuchKey(String),
    /// A key cannot be retired now.
    #[error("{0}")]
    Refused(String),
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
    pub(crate) fn from_pkcs8(
        algorithm: Algorithm,
        created: u64,
        der: &[u8],
    ) -> Result<SigningKey, String> {
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

    /// A new random key, made at `created`, kept only in memory. For tests,
    /// benchmarks and tools; keys that sign for real come from a
    /// [`super::KeyRing`].
    pub fn generate(algorithm: Algorithm, created: u64) -> Result<SigningKey, KeyError> {
        let der = generate(algorithm)?;
        SigningKey::from_pkcs8(algorithm, created, &der).map_err(|reason| KeyError::Corrupt {
            kid: "(new)".to_owned(),
            reason,
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

/// Where a key is in its life at some moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published, not signing yet: resource servers are fetching it during
    /// the pre-publication delay.
    Next,
    /// Signs new tokens.
    Active,
    /// Published so tokens it signed still verify; signs nothing new.
    Retiring,
    /// No longer published.
    Retired,
}

impl KeyState {
    /// `next`, `active`, `retiring` or `retired`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retiring => "retiring",
            KeyState::Retired => "retired",
        }
    }
}

/// A key's dates (Unix seconds): they alone decide its [`KeyState`], so every
/// replica that reads the same keys at the same moment agrees on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifecycle {
    /// When it was made.
    pub created: u64,
    /// From when it may sign.
    pub activates_at: u64,
    /// From when it is no longer published (`tessera keys retire`).
    pub retire_at: Option<u64>,
}

impl Lifecycle {
    /// Whether it is no longer published at `now`.
    pub fn retired(&self, now: u64) -> bool {
        self.retire_at.is_some_and(|at| at <= now)
    }
}

/// Which key signs at `now`: the newest key of `algorithm` whose activation
/// has come; else (an algorithm change still in its delay) the newest key of
/// any algorithm whose activation has come; else (a store's very first keys)
/// the key of `algorithm` that activates first. Retired keys never sign.
pub fn choose_active(
    keys: &[(Algorithm, Lifecycle)],
    algorithm: Algorithm,
    now: u64,
) -> Option<usize> {
    let live = || {
        keys.iter()
            .enumerate()
            .filter(|(_, (_, life))| !life.retired(now))
    };
    let newest_activated = |same_algorithm: bool| {
        live()
            .filter(|(_, (alg, life))| {
                life.activates_at <= now && (!same_algorithm || *alg == algorithm)
            })
            .max_by_key(|(_, (_, life))| (life.activates_at, life.created))
            .map(|(i, _)| i)
    };
    newest_activated(true)
        .or_else(|| newest_activated(false))
        .or_else(|| {
            live()
                .filter(|(_, (alg, _))| *alg == algorithm)
                .min_by_key(|(_, (_, life))| (life.activates_at, life.created))
                .map(|(i, _)| i)
        })
}

/// Which key signs for `algorithm`, another algorithm than the primary one
/// (ID tokens a client asked to have in RS256, say): the newest key of
/// `algorithm` whose activation has come; else, while the primary key
/// (`primary`) signs before its own activation (a key folder's first keys),
/// a key of `algorithm` made together with it; else none, and the primary
/// key signs for it until its own key activates (a key made for an
/// algorithm newly in use waits out the pre-publication delay like any
/// other).
pub fn choose_for(
    keys: &[(Algorithm, Lifecycle)],
    algorithm: Algorithm,
    primary: usize,
    now: u64,
) -> Option<usize> {
    let main = keys[primary].1;
    let of_algorithm = || {
        keys.iter()
            .enumerate()
            .filter(|(_, (alg, life))| *alg == algorithm && !life.retired(now))
    };
    let activated = of_algorithm()
        .filter(|(_, (_, life))| life.activates_at <= now)
        .max_by_key(|(_, (_, life))| (life.activates_at, life.created));
    let made_with_the_first = || {
        of_algorithm()
            .filter(|(_, (_, life))| main.activates_at > now && life.created <= main.created)
            .min_by_key(|(_, (_, life))| (life.activates_at, life.created))
    };
    activated.or_else(made_with_the_first).map(|(i, _)| i)
}

/// The key that signs for each of `algorithms` (the primary one first) at
/// `now`, as indexes into `keys`; `None` when the primary has none.
fn signers(
    keys: &[(Algorithm, Lifecycle)],
    algorithms: &[Algorithm],
    now: u64,
) -> Option<Vec<(Algorithm, usize)>> {
    let (&primary, others) = algorithms.split_first()?;
    let main = choose_active(keys, primary, now)?;
    let mut out = vec![(primary, main)];
    for &alg in others {
        out.push((alg, choose_for(keys, alg, main, now).unwrap_or(main)));
    }
    Some(out)
}

/// The state of each of `keys` at `now`, when keys sign for `algorithms`
/// (the primary one first).
pub fn states(
    keys: &[(Algorithm, Lifecycle)],
    algorithms: &[Algorithm],
    now: u64,
) -> Vec<KeyState> {
    let signing: Vec<usize> = signers(keys, algorithms, now)
        .unwrap_or_default()
        .into_iter()
        .map(|(_, i)| i)
        .collect();
    keys.iter()
        .enumerate()
        .map(|(i, (_, life))| {
            if life.retired(now) {
                KeyState::Retired
            } else if signing.contains(&i) {
                KeyState::Active
            } else if life.activates_at > now {
                KeyState::Next
            } else {
                KeyState::Retiring
            }
        })
        .collect()
}

/// The keys in use at one moment: the one that signs access tokens (the
/// primary), the one that signs for each other algorithm in use, and every
/// published key with the JWKS that lists them.
#[derive(Debug)]
pub struct KeySet {
    keys: Vec<Arc<SigningKey>>,
    /// The dates of each of `keys`.
    lives: Vec<Lifecycle>,
    active: usize,
    by_algorithm: Vec<(Algorithm, usize)>,
    jwks: Vec<u8>,
}

impl KeySet {
    /// The set at `now` from every known key and its dates, signing for
    /// `algorithms` (the primary one first); `None` when no key may sign.
    pub fn assemble(
        all: &[(Arc<SigningKey>, Lifecycle)],
        algorithms: &[Algorithm],
        now: u64,
    ) -> Option<KeySet> {
        let dates: Vec<(Algorithm, Lifecycle)> =
            all.iter().map(|(k, life)| (k.algorithm, *life)).collect();
        let signers = signers(&dates, algorithms, now)?;
        let mut published: Vec<&(Arc<SigningKey>, Lifecycle)> =
            all.iter().filter(|(_, life)| !life.retired(now)).collect();
        published.sort_by_key(|(k, life)| (life.activates_at, life.created, k.kid.clone()));
        let keys: Vec<Arc<SigningKey>> = published.iter().map(|(k, _)| k.clone()).collect();
        let lives = published.iter().map(|(_, life)| *life).collect();
        let jwks = json!({ "keys": keys.iter().map(|k| &k.public_jwk).collect::<Vec<_>>() });
        let position = |i: usize| keys.iter().position(|k| k.kid == all[i].0.kid);
        let by_algorithm = signers
            .iter()
            .map(|&(alg, i)| Some((alg, position(i)?)))
            .collect::<Option<Vec<_>>>()?;
        Some(KeySet {
            active: by_algorithm[0].1,
            by_algorithm,
            jwks: jwks.to_string().into_bytes(),
            keys,
            lives,
        })
    }

    /// A set of one key, active from the start. For tests and tools.
    pub fn single(key: SigningKey) -> KeySet {
        let created = key.created;
        let life = Lifecycle {
            created,
            activates_at: created,
            retire_at: None,
        };
        let algorithm = key.algorithm;
        KeySet::assemble(&[(Arc::new(key), life)], &[algorithm], created)
            .expect("a lone key is active")
    }

    /// The key new access tokens are signed with.
    pub fn active(&self) -> &SigningKey {
        &self.keys[self.active]
    }

    /// The key that signs for `algorithm` now: its own active key, or the
    /// primary one while `algorithm` has none (see [`choose_for`]).
    pub fn active_for(&self, algorithm: Algorithm) -> &SigningKey {
        let i = self
            .by_algorithm
            .iter()
            .find(|(alg, _)| *alg == algorithm)
            .map_or(self.active, |&(_, i)| i);
        &self.keys[i]
    }

    /// The algorithms a client may have its ID tokens signed with: those a
    /// key is kept for.
    pub fn algorithms(&self) -> impl Iterator<Item = Algorithm> + '_ {
        self.by_algorithm.iter().map(|&(alg, _)| alg)
    }

    /// Every published key, in activation order.
    pub fn keys(&self) -> &[Arc<SigningKey>] {
        &self.keys
    }

    /// For each algorithm that signs, since when its key has signed at `now`:
    /// its activation, or its creation for a first key signing before its
    /// activation has come.
    pub fn signing_since(&self, now: u64) -> Vec<(Algorithm, u64)> {
        self.by_algorithm
            .iter()
            .map(|&(alg, i)| {
                let life = self.lives[i];
                let since = if life.activates_at <= now {
                    life.activates_at
                } else {
                    life.created
                };
                (alg, since)
            })
            .collect()
    }

    /// For each algorithm that signs, when the next published key of it
    /// that does not sign yet will activate (none when no key waits).
    pub fn next_activations(&self, now: u64) -> Vec<(Algorithm, u64)> {
        self.by_algorithm
            .iter()
            .filter_map(|&(alg, signing)| {
                let next = self
                    .keys
                    .iter()
                    .zip(&self.lives)
                    .enumerate()
                    .filter(|&(i, (k, life))| {
                        i != signing && k.algorithm == alg && life.activates_at > now
                    })
                    .map(|(_, (_, life))| life.activates_at)
                    .min()?;
                Some((alg, next))
            })
            .collect()
    }

    /// The JWKS document (RFC 7517), rendered once.
    pub fn jwks_json(&self) -> &[u8] {
        &self.jwks
    }

    /// Whether `other` publishes the same keys and signs with the same ones.
    pub fn same_as(&self, other: &KeySet) -> bool {
        let signing = |set: &KeySet| -> Vec<(Algorithm, String)> {
            set.by_algorithm
                .iter()
                .map(|&(alg, i)| (alg, set.keys[i].kid.clone()))
                .collect()
        };
        self.jwks == other.jwks && signing(self) == signing(other)
    }
}

/// Generates a new private key of `algorithm` as PKCS#8 DER.
pub fn generate(algorithm: Algorithm) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let rng = SystemRandom::new();
    let fail = || KeyError::Generate(algorithm.as_str());
    let der = match algorithm {
        Algorithm::ES256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map(|d| d.as_ref().to_vec())
            .map_err(|_| fail())?,
        Algorithm::EdDSA => Ed25519KeyPair::generate_pkcs8(&rng)
            .map(|d| d.as_ref().to_vec())
            .map_err(|_| fail())?,
        Algorithm::RS256 => {
            // ring cannot generate RSA keys; the RustCrypto `rsa` crate does.
            use rsa::pkcs8::EncodePrivateKey;
            let key =
                rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).map_err(|_| fail())?;
            key.to_pkcs8_der()
                .map(|d| d.as_bytes().to_vec())
                .map_err(|_| fail())?
        }
    };
    Ok(Zeroizing::new(der))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn life(created: u64, activates_at: u64, retire_at: Option<u64>) -> Lifecycle {
        Lifecycle {
            created,
            activates_at,
            retire_at,
        }
    }

    fn key(algorithm: Algorithm, created: u64) -> Arc<SigningKey> {
        let der = generate(algorithm).expect("generate");
        Arc::new(SigningKey::from_pkcs8(algorithm, created, &der).expect("parse"))
    }

    use Algorithm::{ES256, EdDSA};
    use KeyState::{Active, Next, Retired, Retiring};

    #[test]
    fn a_rotated_key_is_next_until_its_activation_then_active() {
        let keys = [(ES256, life(0, 0, None)), (ES256, life(100, 160, None))];
        assert_eq!(states(&keys, &[ES256], 100), [Active, Next]);
        assert_eq!(states(&keys, &[ES256], 159), [Active, Next]);
        assert_eq!(states(&keys, &[ES256], 160), [Retiring, Active]);
    }

    #[test]
    fn the_first_key_signs_at_once_even_inside_its_delay() {
        // A key folder's keys activate `delay` after they were made; the only
        // key there is must sign anyway.
        let keys = [(ES256, life(100, 700, None))];
        assert_eq!(states(&keys, &[ES256], 100), [Active]);
        let keys = [(ES256, life(100, 700, None)), (ES256, life(200, 800, None))];
        assert_eq!(states(&keys, &[ES256], 300), [Active, Next]);
        assert_eq!(states(&keys, &[ES256], 800), [Retiring, Active]);
    }

    #[test]
    fn retired_keys_are_neither_published_nor_used() {
        let keys = [(ES256, life(0, 0, Some(500))), (ES256, life(10, 20, None))];
        assert_eq!(states(&keys, &[ES256], 499), [Retiring, Active]);
        assert_eq!(states(&keys, &[ES256], 500), [Retired, Active]);
        let only_retired = [(ES256, life(0, 0, Some(5)))];
        assert_eq!(choose_active(&only_retired, ES256, 10), None);
    }

    #[test]
    fn an_algorithm_change_keeps_the_old_key_signing_until_the_new_one_activates() {
        let keys = [(ES256, life(0, 0, None)), (EdDSA, life(100, 400, None))];
        assert_eq!(states(&keys, &[EdDSA], 200), [Active, Next]);
        assert_eq!(states(&keys, &[EdDSA], 400), [Retiring, Active]);
    }

    #[test]
    fn a_second_algorithm_signs_with_its_own_key_once_it_activates() {
        // First start in a key folder: nothing has activated, both sign.
        let first = [(ES256, life(100, 700, None)), (EdDSA, life(100, 700, None))];
        assert_eq!(choose_for(&first, EdDSA, 0, 100), Some(1));
        assert_eq!(states(&first, &[ES256, EdDSA], 100), [Active, Active]);
        // An algorithm newly in use: the primary signs for it until then.
        let gained = [(ES256, life(0, 0, None)), (EdDSA, life(100, 700, None))];
        assert_eq!(choose_for(&gained, EdDSA, 0, 100), None);
        let later_in_a_folder = [(ES256, life(0, 600, None)), (EdDSA, life(100, 700, None))];
        assert_eq!(
            choose_for(&later_in_a_folder, EdDSA, 0, 100),
            None,
            "made after the first key: it waits"
        );
        assert_eq!(states(&gained, &[ES256, EdDSA], 100), [Active, Next]);
        assert_eq!(states(&gained, &[ES256, EdDSA], 700), [Active, Active]);
        assert_eq!(
            states(&gained, &[ES256], 700),
            [Active, Retiring],
            "a key of an algorithm no longer in use signs nothing"
        );
    }

    #[test]
    fn the_set_publishes_every_live_key_and_signs_with_the_active_one() {
        let (old, new, gone) = (key(ES256, 1), key(ES256, 2), key(EdDSA, 0));
        let all = [
            (old.clone(), life(1, 1, None)),
            (new.clone(), life(2, 50, None)),
            (gone.clone(), life(0, 0, Some(10))),
        ];
        let set = KeySet::assemble(&all, &[ES256], 20).expect("set");
        assert_eq!(set.active().kid, old.kid);
        let jwks: Value = serde_json::from_slice(set.jwks_json()).expect("json");
        let kids: Vec<&str> = jwks["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| k["kid"].as_str().expect("kid"))
            .collect();
        assert_eq!(kids, [old.kid.as_str(), new.kid.as_str()]);
        for k in jwks["keys"].as_array().expect("keys") {
            for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
                assert!(k.get(private).is_none(), "{private} in {k}");
            }
        }
        let later = KeySet::assemble(&all, &[ES256], 50).expect("set");
        assert_eq!(later.active().kid, new.kid);
        assert!(!later.same_as(&set));
        assert!(later.same_as(&KeySet::assemble(&all, &[ES256], 60).expect("set")));
    }
}
