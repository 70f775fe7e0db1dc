//! `tessera plugin keygen` and `tessera plugin sign`: a publisher's Ed25519
//! key, and the detached signature (`FILE.wasm.sig`) that a `[[plugins]]`
//! entry listing `signers` needs to load a file. The format and the checks
//! are in [`crate::plugin::signature`].

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::plugin::signature::{PublicKey, SigningKey, signature_path};

/// Writes a new signing key to `out` (PKCS#8 PEM, readable by its owner
/// only; an existing file is never overwritten) and returns its public key.
pub fn keygen(out: &Path) -> anyhow::Result<PublicKey> {
    let (key, pem) = SigningKey::generate().map_err(anyhow::Error::msg)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(out).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => anyhow::anyhow!(
            "{} already exists; a signing key is never overwritten (choose another --out)",
            out.display()
        ),
        _ => anyhow::anyhow!("cannot create {}: {e}", out.display()),
    })?;
    file.write_all(pem.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(key.public_key())
}

/// What [`sign`] wrote.
#[derive(Debug)]
pub struct Signed {
    /// The signature file.
    pub signature: PathBuf,
    /// Who signed.
    pub signer: PublicKey,
    /// The SHA-256 of the file signed, hex.
    pub sha256: String,
}

/// Signs `file` with the key in `key_file`, writing `FILE.sig` beside it
/// (through a temporary file and a rename, so a server watching it never
/// reads half a signature).
pub fn sign(file: &Path, key_file: &Path) -> anyhow::Result<Signed> {
    let key = SigningKey::read(key_file).map_err(|why| anyhow::anyhow!("--key: {why}"))?;
    let bytes = std::fs::read(file)
        .map_err(|e| anyhow::anyhow!("{}: cannot read the file: {e}", file.display()))?;
    crate::plugin::registry::check_header(&bytes)
        .map_err(|why| anyhow::anyhow!("{}: {why}", file.display()))?;
    let sha256 = crate::plugin::signature::sha256(&bytes);
    let signature = key.sign(sha256);
    let path = signature_path(file);
    let partial = path.with_extension("sig.partial");
    std::fs::write(&partial, signature.to_text())
        .and_then(|()| std::fs::rename(&partial, &path))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(Signed {
        signature: path,
        signer: signature.signer,
        sha256: hex::encode(sha256),
    })
}
