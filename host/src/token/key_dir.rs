//! The key folder (`[signing] key_dir`, default `data/keys`): the embedded
//! default's home for signing keys, one PKCS#8 DER file each, private to the
//! user Tessera runs as (folder 0700, files 0600).
//!
//! A file is named `key-<created>-<ALG>.pk8` (`created` in Unix seconds). A
//! key activates `pre_publication_delay_secs` after it was created, so a key
//! that `tessera keys rotate` adds is published at once and signs only later;
//! the folder's first key signs at once (see [`super::keys::choose_active`]).
//! `tessera keys retire` renames a file to `key-<created>-<ALG>-retire-<at>.pk8`:
//! it is published until `at`, then ignored; delete it whenever you like after.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::keys::{KeyError, Lifecycle, SigningKey, generate};
use crate::config::Algorithm;

/// A key file, by its name: what it is and its dates.
#[derive(Debug, Clone)]
pub(crate) struct DirKey {
    /// The file.
    pub path: PathBuf,
    /// `<created>-<ALG>`: stays the same when the file is renamed on retire.
    pub id: String,
    /// Its algorithm.
    pub algorithm: Algorithm,
    /// Its dates.
    pub life: Lifecycle,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The key files in `dir` (none when the folder does not exist yet).
pub(crate) fn list(dir: &Path, delay_secs: u64) -> Result<Vec<DirKey>, KeyError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(dir)(e)),
    };
    let mut keys = Vec::new();
    for entry in entries {
        let path = entry.map_err(io_err(dir))?.path();
        if let Some(key) = parse_name(&path, delay_secs) {
            keys.push(key);
        }
    }
    keys.sort_by_key(|k| (k.life.created, k.id.clone()));
    Ok(keys)
}

/// Reads and parses a key file.
pub(crate) fn read(key: &DirKey) -> Result<SigningKey, KeyError> {
    warn_if_readable_by_others(&key.path);
    let der = zeroize::Zeroizing::new(std::fs::read(&key.path).map_err(io_err(&key.path))?);
    SigningKey::from_pkcs8(key.algorithm, key.life.created, &der).map_err(|reason| {
        KeyError::Invalid {
            path: key.path.clone(),
            algorithm: key.algorithm.as_str(),
            reason,
        }
    })
}

fn parse_name(path: &Path, delay_secs: u64) -> Option<DirKey> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_prefix("key-")?.strip_suffix(".pk8")?;
    let (id, retire_at) = match stem.split_once("-retire-") {
        Some((id, at)) => (id, Some(at.parse().ok()?)),
        None => (stem, None),
    };
    let (created, alg) = id.split_once('-')?;
    let created: u64 = created.parse().ok()?;
    Some(DirKey {
        path: path.to_owned(),
        id: id.to_owned(),
        algorithm: Algorithm::from_name(alg)?,
        life: Lifecycle {
            created,
            activates_at: created.saturating_add(delay_secs),
            retire_at,
        },
    })
}

/// Writes a new key of `algorithm` made at `created` (creating the folder).
pub(crate) fn create(
    dir: &Path,
    algorithm: Algorithm,
    created: u64,
) -> Result<SigningKey, KeyError> {
    let der = generate(algorithm)?;
    create_private_dir(dir)?;
    let path = dir.join(format!("key-{created}-{}.pk8", algorithm.as_str()));
    write_private(&path, &der)?;
    SigningKey::from_pkcs8(algorithm, created, &der).map_err(|reason| KeyError::Invalid {
        path,
        algorithm: algorithm.as_str(),
        reason,
    })
}

/// Marks a key file to stop being published at `at`.
pub(crate) fn retire(key: &DirKey, at: u64) -> Result<(), KeyError> {
    let to = key
        .path
        .with_file_name(format!("key-{}-retire-{at}.pk8", key.id));
    std::fs::rename(&key.path, &to).map_err(io_err(&key.path))
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
    fn key_files_are_private_and_named_by_date_and_algorithm() {
        let parent = tempfile::tempdir().expect("tempdir");
        let dir = parent.path().join("keys");
        let key = create(&dir, Algorithm::ES256, 1000).expect("create");
        let listed = list(&dir, 60).expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, "1000-ES256");
        assert_eq!(listed[0].life.activates_at, 1060);
        assert_eq!(read(&listed[0]).expect("read").kid, key.kid);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode(&listed[0].path), 0o600);
            assert_eq!(mode(&dir), 0o700);
        }
    }

    #[test]
    fn a_retired_file_keeps_its_identity_and_gains_a_date() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = create(dir.path(), Algorithm::EdDSA, 5).expect("create");
        let listed = list(dir.path(), 0).expect("list");
        retire(&listed[0], 900).expect("retire");
        let listed = list(dir.path(), 0).expect("list");
        assert_eq!(listed[0].id, "5-EdDSA");
        assert_eq!(listed[0].life.retire_at, Some(900));
        assert_eq!(read(&listed[0]).expect("read").kid, key.kid);
    }

    #[test]
    fn a_corrupt_key_file_is_named_and_other_files_are_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("key-1-ES256.pk8"), b"junk").expect("write");
        std::fs::write(dir.path().join("README"), b"notes").expect("write");
        std::fs::write(dir.path().join("key-x-ES256.pk8"), b"junk").expect("write");
        let listed = list(dir.path(), 0).expect("list");
        assert_eq!(listed.len(), 1);
        let e = read(&listed[0]).unwrap_err();
        assert!(e.to_string().contains("key-1-ES256.pk8"), "{e}");
    }
}
