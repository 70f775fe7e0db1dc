//! The key-encryption key (KEK): 32 random bytes, given base64-encoded by
//! `[signing] kek_env` or `kek_file`, that seals signing keys before they are
//! written to the store and opens them when they are read back.
//!
//! Sealing is AES-256-GCM (ring) with a fresh random 96-bit nonce per key and
//! the key's `kid` and algorithm as associated data, so a sealed key moved to
//! another row does not open. The KEK itself is never stored: only its
//! [`Kek::id`], a short SHA-256 fingerprint, so that a store sealed with
//! another KEK is named as such instead of failing as "corrupt".

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

/// The length of a KEK, in bytes.
pub const KEK_LEN: usize = 32;

/// A key-encryption key. Its `Debug` shows only the fingerprint.
pub struct Kek {
    key: LessSafeKey,
    id: String,
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kek")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A sealed key could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// It was sealed with a different KEK.
    #[error("it was sealed with key-encryption key {sealed_with}, not the configured {configured}")]
    OtherKek {
        /// The fingerprint stored with the key.
        sealed_with: String,
        /// The configured KEK's fingerprint.
        configured: String,
    },
    /// It does not decrypt: altered, truncated, or moved from another key.
    #[error("it does not decrypt with the configured key-encryption key (altered or damaged)")]
    Damaged,
}

impl Kek {
    /// Reads a KEK from its base64 text (standard or URL-safe alphabet,
    /// padding and surrounding whitespace optional). The message says what is
    /// wrong without repeating the text.
    pub fn from_base64(text: &str) -> Result<Kek, String> {
        let text = text.trim();
        let bytes = Zeroizing::new(
            URL_SAFE_NO_PAD
                .decode(text.trim_end_matches('='))
                .or_else(|_| STANDARD.decode(text))
                .map_err(|_| {
                    "is not base64; make a key-encryption key with `tessera keys new-kek`"
                        .to_owned()
                })?,
        );
        if bytes.len() != KEK_LEN {
            return Err(format!(
                "decodes to {} bytes, not {KEK_LEN}; make a key-encryption key with `tessera keys new-kek`",
                bytes.len()
            ));
        }
        Kek::from_bytes(&bytes)
    }

    fn from_bytes(bytes: &[u8]) -> Result<Kek, String> {
        let fingerprint = digest(&SHA256, bytes);
        let id = URL_SAFE_NO_PAD.encode(&fingerprint.as_ref()[..9]);
        let key = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| "is not a valid AES-256 key".to_owned())?;
        Ok(Kek {
            key: LessSafeKey::new(key),
            id,
        })
    }

    /// A new random KEK as base64 text, for `tessera keys new-kek`.
    pub fn generate() -> Result<Zeroizing<String>, ring::error::Unspecified> {
        let mut bytes = Zeroizing::new([0u8; KEK_LEN]);
        SystemRandom::new().fill(bytes.as_mut())?;
        Ok(Zeroizing::new(STANDARD.encode(bytes.as_ref())))
    }

    /// The KEK's fingerprint: 12 base64url characters of its SHA-256, safe to
    /// show and to store.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Seals `plaintext`, binding it to `context` (which must be given again
    /// to open it). Returns base64url of nonce ‖ ciphertext ‖ tag.
    pub fn seal(
        &self,
        plaintext: &[u8],
        context: &str,
    ) -> Result<String, ring::error::Unspecified> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce)?;
        let mut buffer = Zeroizing::new(plaintext.to_vec());
        self.key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(context.as_bytes()),
            &mut *buffer,
        )?;
        let mut out = Vec::with_capacity(NONCE_LEN + buffer.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buffer);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    /// Opens what [`Kek::seal`] made with the same `context`; `sealed_with` is
    /// the fingerprint stored beside it.
    pub fn open(
        &self,
        sealed: &str,
        sealed_with: &str,
        context: &str,
    ) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        if sealed_with != self.id {
            return Err(OpenError::OtherKek {
                sealed_with: sealed_with.to_owned(),
                configured: self.id.clone(),
            });
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(sealed)
            .map_err(|_| OpenError::Damaged)?;
        if bytes.len() < NONCE_LEN {
            return Err(OpenError::Damaged);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| OpenError::Damaged)?;
        let mut buffer = Zeroizing::new(ciphertext.to_vec());
        let plaintext_len = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buffer)
            .map_err(|_| OpenError::Damaged)?
            .len();
        buffer.truncate(plaintext_len);
        Ok(buffer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek() -> Kek {
        Kek::from_base64(&Kek::generate().expect("rng")).expect("kek")
    }

    #[test]
    fn sealed_text_opens_only_with_its_kek_and_context() {
        let kek = kek();
        let sealed = kek.seal(b"private key", "kid-1 ES256").expect("seal");
        assert!(!sealed.contains("private"));
        let opened = kek.open(&sealed, kek.id(), "kid-1 ES256").expect("open");
        assert_eq!(&opened[..], b"private key");
        assert!(matches!(
            kek.open(&sealed, kek.id(), "kid-2 ES256"),
            Err(OpenError::Damaged)
        ));
        let other = self::kek();
        assert!(matches!(
            other.open(&sealed, kek.id(), "kid-1 ES256"),
            Err(OpenError::OtherKek { .. })
        ));
        let mut altered = sealed.into_bytes();
        let last = altered.len() - 2;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).expect("ascii");
        assert!(matches!(
            kek.open(&altered, kek.id(), "kid-1 ES256"),
            Err(OpenError::Damaged)
        ));
    }

    #[test]
    fn two_seals_of_one_key_differ() {
        let kek = kek();
        assert_ne!(
            kek.seal(b"k", "c").expect("seal"),
            kek.seal(b"k", "c").expect("seal")
        );
    }

    #[test]
    fn bad_kek_text_is_explained_without_echoing_it() {
        let e = Kek::from_base64("not base64 at all!").unwrap_err();
        assert!(e.contains("not base64"), "{e}");
        assert!(!e.contains("at all"), "{e}");
        let e = Kek::from_base64(&STANDARD.encode([1u8; 16])).unwrap_err();
        assert!(e.contains("16 bytes, not 32"), "{e}");
        let k = Kek::from_base64(&format!(" {}\n", STANDARD.encode([7u8; 32]))).expect("padded");
        let url = Kek::from_base64(&URL_SAFE_NO_PAD.encode([7u8; 32])).expect("url-safe");
        assert_eq!(k.id(), url.id());
        assert!(!format!("{k:?}").contains("key:"));
    }
}
