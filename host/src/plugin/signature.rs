//! Signed plugins: a publisher signs a component file with an Ed25519 key
//! (`tessera plugin sign`), and a `[[plugins]]` entry that lists `signers`
//! loads that file only when the signature beside it (`FILE.wasm.sig`) is
//! valid and made by one of them. A start, `tessera check` and every reload
//! check it, so an unsigned or altered file never replaces the version that
//! serves.
//!
//! What is signed is the file's SHA-256 behind a fixed label
//! ([`SIGNED_LABEL`]), so a key used here cannot be tricked into signing
//! anything that means something elsewhere, and a signature names the hash it
//! covers: a mismatch says which file it was made for.
//!
//! Keys are PKCS#8 PEM files (`tessera plugin keygen`, or `openssl genpkey
//! -algorithm ed25519`); public keys are written `ed25519:` and the key's 32
//! bytes in unpadded base64url, short enough for a configuration file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};

/// What a signature covers, before the file's SHA-256.
pub const SIGNED_LABEL: &[u8] = b"tessera plugin signature v1\n";

/// The first line of a signature file.
const HEADER: &str = "tessera plugin signature v1";

/// How a public key is written: `ed25519:` and 43 base64url characters.
const KEY_PREFIX: &str = "ed25519:";

/// Where the signature of `component` is kept: beside it, `.sig` appended.
pub fn signature_path(component: &Path) -> PathBuf {
    let mut name = component.as_os_str().to_owned();
    name.push(".sig");
    PathBuf::from(name)
}

/// The SHA-256 of a component file, as signatures cover it.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
    out
}

/// The signature beside `component` (`FILE.sig`): `None` when there is
/// none; `Err` says what is wrong with the file, to follow its name.
pub fn read_beside(component: &Path) -> Result<Option<Signature>, String> {
    match std::fs::read_to_string(signature_path(component)) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot be read: {e}")),
        Ok(text) => Signature::parse(&text).map(Some),
    }
}

/// An Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 32]);

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl serde::Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl FromStr for PublicKey {
    type Err = String;

    fn from_str(text: &str) -> Result<PublicKey, String> {
        let bytes = text
            .strip_prefix(KEY_PREFIX)
            .and_then(|b64| URL_SAFE_NO_PAD.decode(b64).ok())
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok());
        bytes.map(PublicKey).ok_or_else(|| {
            format!(
                "{text:?} is not an Ed25519 public key: write {KEY_PREFIX} and the 43 characters \
                 `tessera plugin keygen` printed"
            )
        })
    }
}

/// A publisher's private key.
pub struct SigningKey(Ed25519KeyPair);

impl SigningKey {
    /// A new random key, and the PEM text to keep it in.
    pub fn generate() -> Result<(SigningKey, String), String> {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| "the system's random number generator failed".to_owned())?;
        let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
            .map_err(|e| format!("the new key does not read back: {e}"))?;
        let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", pkcs8.as_ref().to_vec()));
        Ok((SigningKey(key), pem))
    }

    /// Reads a PKCS#8 PEM file (`-----BEGIN PRIVATE KEY-----`) holding an
    /// Ed25519 key.
    pub fn read(path: &Path) -> Result<SigningKey, String> {
        let shown = path.display();
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
        let block = pem::parse(&text).map_err(|e| {
            format!("{shown} is not a PEM file ({e}); make a key with `tessera plugin keygen`")
        })?;
        if block.tag() != "PRIVATE KEY" {
            return Err(format!(
                "{shown} holds a {:?} block; a signing key is a PKCS#8 \"PRIVATE KEY\" (`tessera plugin keygen`)",
                block.tag()
            ));
        }
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(block.contents())
            .map(SigningKey)
            .map_err(|_| format!("{shown} does not hold an Ed25519 private key"))
    }

    /// Its public key.
    pub fn public_key(&self) -> PublicKey {
        let mut bytes = [0; 32];
        bytes.copy_from_slice(self.0.public_key().as_ref());
        PublicKey(bytes)
    }

    /// Signs the component whose SHA-256 is `sha256`.
    pub fn sign(&self, sha256: [u8; 32]) -> Signature {
        let mut signature = [0; 64];
        signature.copy_from_slice(self.0.sign(&signed_message(&sha256)).as_ref());
        Signature {
            signer: self.public_key(),
            sha256,
            signature,
        }
    }
}

fn signed_message(sha256: &[u8; 32]) -> Vec<u8> {
    [SIGNED_LABEL, sha256.as_slice()].concat()
}

/// A detached signature of one component file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Who signed.
    pub signer: PublicKey,
    /// The SHA-256 of the file signed.
    pub sha256: [u8; 32],
    signature: [u8; 64],
}

impl Signature {
    /// The signature file's text: a header line, then `signer`, `sha256`
    /// and `signature` lines.
    pub fn to_text(&self) -> String {
        format!(
            "{HEADER}\nsigner: {}\nsha256: {}\nsignature: {}\n",
            self.signer,
            hex::encode(self.sha256),
            URL_SAFE_NO_PAD.encode(self.signature)
        )
    }

    /// Reads a signature file's text; `Err` says what is wrong with it.
    pub fn parse(text: &str) -> Result<Signature, String> {
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        if lines.next() != Some(HEADER) {
            return Err(format!("does not start with {HEADER:?}"));
        }
        let (mut signer, mut sha256, mut signature) = (None, None, None);
        for line in lines {
            let (name, value) = line
                .split_once(':')
                .map(|(n, v)| (n.trim(), v.trim()))
                .ok_or_else(|| format!("line {line:?} is not `name: value`"))?;
            let slot = match name {
                "signer" => &mut signer,
                "sha256" => &mut sha256,
                "signature" => &mut signature,
                other => return Err(format!("has an unknown line {other:?}")),
            };
            if slot.replace(value).is_some() {
                return Err(format!("has two {name:?} lines"));
            }
        }
        let missing = |name: &str| format!("has no {name:?} line");
        let signer = signer.ok_or_else(|| missing("signer"))?.parse()?;
        let sha256 = hex::decode(sha256.ok_or_else(|| missing("sha256"))?)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or("has a sha256 line that is not 64 hex digits")?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature.ok_or_else(|| missing("signature"))?)
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
            .ok_or("has a signature line that is not an Ed25519 signature in base64url")?;
        Ok(Signature {
            signer,
            sha256,
            signature,
        })
    }

    /// Whether this signature is valid for the component whose SHA-256 is
    /// `sha256`, made by one of `signers`.
    pub fn check(&self, sha256: &[u8; 32], signers: &[PublicKey]) -> Result<(), Refusal> {
        if &self.sha256 != sha256 {
            return Err(Refusal::OtherFile {
                signed: hex::encode(self.sha256),
            });
        }
        if !signers.contains(&self.signer) {
            return Err(Refusal::UnknownSigner(self.signer));
        }
        UnparsedPublicKey::new(&ED25519, self.signer.0)
            .verify(&signed_message(sha256), &self.signature)
            .map_err(|_| Refusal::Invalid)
    }
}

/// Why a signature does not let a file load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// It was made for another file (this SHA-256).
    OtherFile {
        /// The SHA-256 it signs, hex.
        signed: String,
    },
    /// Its signer is not among the plugin's `signers`.
    UnknownSigner(PublicKey),
    /// It does not verify: the signature file was altered.
    Invalid,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::OtherFile { signed } => write!(
                f,
                "signs another file (sha256 {}…): sign this one, or put back the file it signs",
                &signed[..12]
            ),
            Refusal::UnknownSigner(key) => write!(f, "is signed by {key}, which is not in signers"),
            Refusal::Invalid => f.write_str(
                "does not verify: the signature file was altered or is not this signer's",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(bytes: &[u8]) -> [u8; 32] {
        sha256(bytes)
    }

    #[test]
    fn a_signature_verifies_for_its_file_and_signer_only() {
        let (key, _) = SigningKey::generate().expect("key");
        let (other, _) = SigningKey::generate().expect("key");
        let file = sha(b"component bytes");
        let signature = Signature::parse(&key.sign(file).to_text()).expect("round trip");
        assert_eq!(signature.signer, key.public_key());
        assert_eq!(
            signature.check(&file, &[other.public_key(), key.public_key()]),
            Ok(())
        );
        assert_eq!(
            signature.check(&file, &[other.public_key()]),
            Err(Refusal::UnknownSigner(key.public_key()))
        );
        assert!(matches!(
            signature.check(&sha(b"other bytes"), &[key.public_key()]),
            Err(Refusal::OtherFile { .. })
        ));
    }

    #[test]
    fn a_signature_claiming_another_signer_does_not_verify() {
        let (key, _) = SigningKey::generate().expect("key");
        let (other, _) = SigningKey::generate().expect("key");
        let file = sha(b"component bytes");
        let forged = key.sign(file).to_text().replace(
            &key.public_key().to_string(),
            &other.public_key().to_string(),
        );
        let forged = Signature::parse(&forged).expect("well-formed");
        assert_eq!(
            forged.check(&file, &[other.public_key()]),
            Err(Refusal::Invalid)
        );
    }

    #[test]
    fn keys_round_trip_through_pem_and_text() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (key, pem) = SigningKey::generate().expect("key");
        let path = dir.path().join("publisher.key");
        std::fs::write(&path, pem).expect("write");
        let read = SigningKey::read(&path).expect("read back");
        assert_eq!(read.public_key(), key.public_key());
        let text = key.public_key().to_string();
        assert!(
            text.starts_with("ed25519:") && text.len() == 8 + 43,
            "{text}"
        );
        assert_eq!(text.parse::<PublicKey>(), Ok(key.public_key()));
    }

    /// `openssl genpkey -algorithm ed25519` writes PKCS#8 v1 (no public key
    /// inside); such keys work too. This one is a test key, nothing else.
    #[test]
    fn an_openssl_key_signs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("openssl.pem");
        std::fs::write(
            &path,
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIL4v3gKVDLcwTY/MxYlAvm0YTyLAyS6turQd2pmH4JoV\n-----END PRIVATE KEY-----\n",
        )
        .expect("write");
        let key = SigningKey::read(&path).expect("PKCS#8 v1 Ed25519");
        let file = sha(b"x");
        assert_eq!(key.sign(file).check(&file, &[key.public_key()]), Ok(()));
    }

    #[test]
    fn bad_text_is_named() {
        assert!(
            "ed25519:short"
                .parse::<PublicKey>()
                .unwrap_err()
                .contains("is not an Ed25519 public key")
        );
        assert!("rsa:AAAA".parse::<PublicKey>().is_err());
        assert!(
            Signature::parse("hello")
                .unwrap_err()
                .contains("does not start with")
        );
        let (key, _) = SigningKey::generate().expect("key");
        let text = key.sign(sha(b"x")).to_text();
        assert!(
            Signature::parse(&format!("{text}signer: x\n"))
                .unwrap_err()
                .contains("two \"signer\" lines")
        );
        assert!(
            Signature::parse(&text.replace("sha256: ", "sha256: zz"))
                .unwrap_err()
                .contains("64 hex digits")
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k.pem");
        std::fs::write(&path, "not a key").expect("write");
        assert!(
            SigningKey::read(&path)
                .err()
                .is_some_and(|e| e.contains("is not a PEM file"))
        );
    }
}
