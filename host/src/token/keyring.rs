//! Where the signing keys are kept, and how they change while Tessera runs.
//!
//! Two homes, chosen by `[signing]`:
//!
//! - **the key folder** (`key_dir`, the default with SQLite): one file per
//!   key, see [`super::key_dir`];
//! - **the store** (when `kek_env` or `kek_file` is set; required with
//!   PostgreSQL): one row per key, the private key sealed with the
//!   key-encryption key ([`super::kek`]), so every replica signs with and
//!   publishes the same keys.
//!
//! Either way a key's dates decide everything ([`Lifecycle`]): `tessera keys
//! rotate` adds a key that activates `pre_publication_delay_secs` later, so it
//! sits in the JWKS as `next` before anything is signed with it; every
//! running Tessera reads its keys again every [`POLL_INTERVAL`], so the new
//! key is published within seconds and signs once its time comes, on every
//! replica, with no restart. `tessera keys retire` sets when a superseded key
//! stops being published: not before the longest-lived token it may have
//! signed has expired.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::kek::Kek;
use super::key_dir::{self, DirKey};
use super::keys::{KeyError, KeySet, KeyState, Lifecycle, SigningKey, generate, states};
use crate::config::{Algorithm, SigningConfig};
use crate::store::{Store, StoredKey};

/// How often a running Tessera reads its keys again.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Added to a retiring key's last possible token expiry, for clocks that
/// disagree a little and for the poll that may lag behind an activation.
pub const RETIRE_MARGIN_SECS: u64 = 60;

/// The signing keys' home, and the keys already parsed (by file or `kid`),
/// so reading them again every few seconds costs no decryption or parsing.
pub struct KeyRing {
    home: Home,
    parsed: Mutex<HashMap<String, Arc<SigningKey>>>,
}

enum Home {
    Dir(PathBuf),
    Store { store: Store, kek: Arc<Kek> },
}

/// One key as `tessera keys list` shows it.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    /// Its `kid`.
    pub kid: String,
    /// Its algorithm.
    pub algorithm: Algorithm,
    /// Its state at the moment asked.
    pub state: KeyState,
    /// Its dates.
    pub life: Lifecycle,
}

type Entries = Vec<(Arc<SigningKey>, Lifecycle)>;

impl KeyRing {
    /// The home `signing` names: the store when it has a KEK, else the key
    /// folder.
    pub fn new(signing: &SigningConfig, store: &Store) -> KeyRing {
        match &signing.kek {
            Some(kek) => KeyRing::in_store(store.clone(), kek.clone()),
            None => KeyRing::in_dir(signing.key_dir.clone()),
        }
    }

    /// Keys in a key folder.
    pub fn in_dir(dir: PathBuf) -> KeyRing {
        KeyRing::at(Home::Dir(dir))
    }

    /// Keys in the store, sealed with `kek`.
    pub fn in_store(store: Store, kek: Arc<Kek>) -> KeyRing {
        KeyRing::at(Home::Store { store, kek })
    }

    fn at(home: Home) -> KeyRing {
        KeyRing {
            home,
            parsed: Mutex::new(HashMap::new()),
        }
    }

    /// Where the keys are, for messages.
    pub fn describe(&self) -> String {
        match &self.home {
            Home::Dir(dir) => format!("the key folder {}", dir.display()),
            Home::Store { store, kek } => format!(
                "the {} store, sealed with key-encryption key {}",
                store.backend_name(),
                kek.id()
            ),
        }
    }

    /// The keys in use at `now`. For each configured algorithm without a
    /// live key (a first start, a changed algorithm, a client that asks for
    /// a new ID token algorithm) one is made first: at once usable when there
    /// is no key at all, else after the pre-publication delay like a
    /// rotation.
    pub async fn load(&self, signing: &SigningConfig, now: u64) -> Result<KeySet, KeyError> {
        let mut entries = self.entries(signing).await?;
        let algorithms = signing.key_algorithms();
        let first = entries.is_empty();
        let missing: Vec<Algorithm> = algorithms
            .iter()
            .copied()
            .filter(|&alg| {
                !entries
                    .iter()
                    .any(|(k, life)| k.algorithm == alg && !life.retired(now))
            })
            .collect();
        if !missing.is_empty() {
            let created = self.next_created(now)?;
            self.add(signing, &missing, created, first).await?;
            entries = self.entries(signing).await?;
        }
        KeySet::assemble(&entries, &algorithms, now).ok_or_else(|| {
            KeyError::Refused(format!(
                "no signing key in {} may sign; run `tessera keys rotate`",
                self.describe()
            ))
        })
    }

    /// Adds a key for each configured algorithm (the access tokens' first),
    /// published at once and signing after the pre-publication delay.
    pub async fn rotate(
        &self,
        signing: &SigningConfig,
        now: u64,
    ) -> Result<Vec<KeyInfo>, KeyError> {
        let created = self.next_created(now)?;
        let kids = self
            .add(signing, &signing.key_algorithms(), created, false)
            .await?;
        let all = self.list(signing, now).await?;
        kids.into_iter()
            .map(|kid| {
                all.iter()
                    .find(|k| k.kid == kid)
                    .cloned()
                    .ok_or(KeyError::NoSuchKey(kid))
            })
            .collect()
    }

    /// Every key with its state at `now`, in the order they were made.
    pub async fn list(&self, signing: &SigningConfig, now: u64) -> Result<Vec<KeyInfo>, KeyError> {
        let entries = self.entries(signing).await?;
        let dates: Vec<(Algorithm, Lifecycle)> = entries
            .iter()
            .map(|(k, life)| (k.algorithm, *life))
            .collect();
        Ok(entries
            .iter()
            .zip(states(&dates, &signing.key_algorithms(), now))
            .map(|((key, life), state)| KeyInfo {
                kid: key.kid.clone(),
                algorithm: key.algorithm,
                state,
                life: *life,
            })
            .collect())
    }

    /// Stops publishing `kid` once every token it may have signed has
    /// expired: `longest_token_secs` (plus a margin) after the key that
    /// replaced it activated, or at once for a key that never signed. The
    /// active key is refused: rotate first.
    pub async fn retire(
        &self,
        signing: &SigningConfig,
        kid: &str,
        now: u64,
        longest_token_secs: u64,
    ) -> Result<KeyInfo, KeyError> {
        let keys = self.list(signing, now).await?;
        let key = keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| KeyError::NoSuchKey(kid.to_owned()))?;
        let at = match key.state {
            KeyState::Active => {
                return Err(KeyError::Refused(format!(
                    "{kid} is the active {} key and signs new tokens; run `tessera keys rotate`, \
                     and retire {kid} once the new key is active",
                    key.algorithm.as_str()
                )));
            }
            KeyState::Retired => return Ok(key.clone()),
            // It never signed anything.
            KeyState::Next => now,
            KeyState::Retiring => {
                // Superseded by the next key of its algorithm, or of any when
                // its algorithm is no longer in use.
                let same = keys.iter().any(|k| {
                    k.algorithm == key.algorithm && k.life.activates_at > key.life.activates_at
                });
                let superseded_at = keys
                    .iter()
                    .filter(|k| !same || k.algorithm == key.algorithm)
                    .map(|k| k.life.activates_at)
                    .filter(|&at| at > key.life.activates_at && at <= now)
                    .min()
                    .unwrap_or(now);
                now.max(superseded_at + longest_token_secs + RETIRE_MARGIN_SECS)
            }
        };
        match &self.home {
            Home::Dir(dir) => {
                let file = self.dir_key_of(dir, signing, kid)?;
                key_dir::retire(&file, at)?;
            }
            Home::Store { store, .. } => {
                store.retire_signing_key(kid, at).await?;
            }
        }
        self.list(signing, now)
            .await?
            .into_iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| KeyError::NoSuchKey(kid.to_owned()))
    }

    /// Seals the keys of a key folder into the store, keeping their dates, so
    /// tokens they signed still verify after moving to the store. Keys the
    /// store has already are skipped. The `kid`s imported.
    pub async fn import_dir(&self, dir: &Path) -> Result<Vec<String>, KeyError> {
        let Home::Store { store, kek } = &self.home else {
            return Err(KeyError::Refused(
                "keys are imported into the store: set [signing] kek_env or kek_file".to_owned(),
            ));
        };
        let have: Vec<String> = store
            .signing_keys()
            .await?
            .into_iter()
            .map(|k| k.kid)
            .collect();
        let mut imported = Vec::new();
        // Activation dates as if there were no delay: these keys are
        // published already.
        for file in key_dir::list(dir, 0)? {
            let key = key_dir::read(&file)?;
            if have.contains(&key.kid) {
                continue;
            }
            let der = zeroize::Zeroizing::new(std::fs::read(&file.path).map_err(|source| {
                KeyError::Io {
                    path: file.path.clone(),
                    source,
                }
            })?);
            let first = have.is_empty() && imported.is_empty();
            store
                .add_signing_key(&seal(kek, &key, &der, file.life)?, first)
                .await?;
            imported.push(key.kid);
        }
        Ok(imported)
    }

    /// When keys made at `now` are created: in a key folder, after the
    /// newest key there, so a second rotation within a second still sorts
    /// after the first (keys made together share the moment).
    fn next_created(&self, now: u64) -> Result<u64, KeyError> {
        Ok(match &self.home {
            Home::Dir(dir) => {
                let newest = key_dir::list(dir, 0)?.iter().map(|k| k.life.created).max();
                newest.map_or(now, |n| now.max(n + 1))
            }
            Home::Store { .. } => now,
        })
    }

    /// Adds a key for each of `algorithms`, created at `created`; their
    /// `kid`s. A store's `first` keys sign at once and are added together,
    /// only where no replica starting at the same moment added its own.
    async fn add(
        &self,
        signing: &SigningConfig,
        algorithms: &[Algorithm],
        created: u64,
        first: bool,
    ) -> Result<Vec<String>, KeyError> {
        let (store, kek) = match &self.home {
            Home::Dir(dir) => {
                return algorithms
                    .iter()
                    .map(|&alg| Ok(key_dir::create(dir, alg, created)?.kid))
                    .collect();
            }
            Home::Store { store, kek } => (store, kek),
        };
        let delay = if first {
            0
        } else {
            signing.pre_publication_delay.as_secs()
        };
        let life = Lifecycle {
            created,
            activates_at: created + delay,
            retire_at: None,
        };
        let mut rows = Vec::new();
        for &algorithm in algorithms {
            let der = generate(algorithm)?;
            let key = SigningKey::from_pkcs8(algorithm, created, &der).map_err(|reason| {
                KeyError::Corrupt {
                    kid: "(new)".to_owned(),
                    reason,
                }
            })?;
            rows.push(seal(kek, &key, &der, life)?);
        }
        if first {
            store.add_first_signing_keys(&rows).await?;
        } else {
            for row in &rows {
                store.add_signing_key(row, false).await?;
            }
        }
        Ok(rows.into_iter().map(|r| r.kid).collect())
    }

    /// Every key with its dates, parsed (from the cache when seen before).
    async fn entries(&self, signing: &SigningConfig) -> Result<Entries, KeyError> {
        let delay = signing.pre_publication_delay.as_secs();
        match &self.home {
            Home::Dir(dir) => key_dir::list(dir, delay)?
                .into_iter()
                .map(|file| Ok((self.parsed(&file.id, || key_dir::read(&file))?, file.life)))
                .collect(),
            Home::Store { store, kek } => store
                .signing_keys()
                .await?
                .into_iter()
                .map(|row| {
                    let life = Lifecycle {
                        created: row.created_at,
                        activates_at: row.activates_at,
                        retire_at: row.retire_at,
                    };
                    Ok((self.parsed(&row.kid, || open(kek, &row))?, life))
                })
                .collect(),
        }
    }

    fn parsed(
        &self,
        id: &str,
        parse: impl FnOnce() -> Result<SigningKey, KeyError>,
    ) -> Result<Arc<SigningKey>, KeyError> {
        if let Some(key) = self
            .parsed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
        {
            return Ok(key.clone());
        }
        let key = Arc::new(parse()?);
        self.parsed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_owned(), key.clone());
        Ok(key)
    }

    fn dir_key_of(
        &self,
        dir: &Path,
        signing: &SigningConfig,
        kid: &str,
    ) -> Result<DirKey, KeyError> {
        for file in key_dir::list(dir, signing.pre_publication_delay.as_secs())? {
            if self.parsed(&file.id, || key_dir::read(&file))?.kid == kid {
                return Ok(file);
            }
        }
        Err(KeyError::NoSuchKey(kid.to_owned()))
    }
}

/// `tessera keys list`'s table.
pub fn table(keys: &[KeyInfo]) -> String {
    let date = |at: Option<u64>| at.map_or_else(|| "-".to_owned(), crate::tabular::utc);
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            vec![
                k.kid.clone(),
                k.algorithm.as_str().to_owned(),
                k.state.as_str().to_owned(),
                date(Some(k.life.created)),
                date(Some(k.life.activates_at)),
                date(k.life.retire_at),
            ]
        })
        .collect();
    crate::tabular::table(
        &[
            "KID",
            "ALG",
            "STATE",
            "CREATED (UTC)",
            "SIGNS FROM (UTC)",
            "UNPUBLISHED FROM (UTC)",
        ],
        &rows,
    )
}

/// What the sealed key is bound to: moving it to another row breaks it.
fn context(kid: &str, algorithm: &str) -> String {
    format!("tessera signing key {kid} {algorithm}")
}

fn seal(kek: &Kek, key: &SigningKey, der: &[u8], life: Lifecycle) -> Result<StoredKey, KeyError> {
    let algorithm = key.algorithm.as_str();
    let sealed_key = kek
        .seal(der, &context(&key.kid, algorithm))
        .map_err(|_| KeyError::Generate(algorithm))?;
    Ok(StoredKey {
        kid: key.kid.clone(),
        algorithm: algorithm.to_owned(),
        public_jwk: key.public_jwk.to_string(),
        sealed_key,
        kek_id: kek.id().to_owned(),
        created_at: life.created,
        activates_at: life.activates_at,
        retire_at: life.retire_at,
    })
}

fn open(kek: &Kek, row: &StoredKey) -> Result<SigningKey, KeyError> {
    let corrupt = |reason: String| KeyError::Corrupt {
        kid: row.kid.clone(),
        reason,
    };
    let algorithm = Algorithm::from_name(&row.algorithm)
        .ok_or_else(|| corrupt(format!("unknown algorithm {:?}", row.algorithm)))?;
    let der = kek
        .open(
            &row.sealed_key,
            &row.kek_id,
            &context(&row.kid, &row.algorithm),
        )
        .map_err(|source| KeyError::Sealed {
            kid: row.kid.clone(),
            source,
        })?;
    let key = SigningKey::from_pkcs8(algorithm, row.created_at, &der).map_err(corrupt)?;
    if key.kid != row.kid {
        return Err(corrupt(format!("its private key's kid is {}", key.kid)));
    }
    Ok(key)
}

#[cfg(test)]
mod tests;
