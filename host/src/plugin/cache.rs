//! The host-side cache each plugin may use (`tessera:cache/store@0.1.0`):
//! bounded, with a time to live per entry, kept per plugin name across
//! reloads. A shadow candidate has a cache of its own.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lru::LruCache;

/// Entries one plugin's cache holds; past it, the least recently used entry
/// leaves.
pub const MAX_ENTRIES: usize = 1024;
/// Bytes of a key.
pub const MAX_KEY_BYTES: usize = 512;
/// Bytes of a value.
pub const MAX_VALUE_BYTES: usize = 4096;
/// The time to live of an entry set without one.
pub const DEFAULT_TTL: Duration = Duration::from_secs(15 * 60);
/// The longest time to live.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// A cached value and when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The value.
    pub value: String,
    /// When it expires, in milliseconds since the Unix epoch.
    pub expires_at: u64,
}

struct Stored {
    value: String,
    expires: Instant,
    expires_at: u64,
}

/// One plugin's cache. Bounded: at most [`MAX_ENTRIES`] entries of at most
/// [`MAX_KEY_BYTES`] + [`MAX_VALUE_BYTES`], so at most about 4.5 MiB.
pub struct Cache {
    entries: Mutex<LruCache<String, Stored>>,
}

impl Default for Cache {
    fn default() -> Cache {
        Cache::with_capacity(MAX_ENTRIES)
    }
}

impl Cache {
    fn with_capacity(entries: usize) -> Cache {
        Cache {
            entries: Mutex::new(LruCache::new(
                NonZeroUsize::new(entries).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<String, Stored>> {
        // A panic while holding the lock leaves a consistent map behind.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The entry under `key`, unless it is absent or expired (an expired one
    /// is removed).
    pub fn get(&self, key: &str) -> Option<Entry> {
        let mut entries = self.lock();
        let stored = entries.get(key)?;
        if stored.expires <= Instant::now() {
            entries.pop(key);
            return None;
        }
        Some(Entry {
            value: stored.value.clone(),
            expires_at: stored.expires_at,
        })
    }

    /// Stores `value` under `key` for `ttl` (default [`DEFAULT_TTL`], at most
    /// [`MAX_TTL`]); returns when it expires, in milliseconds since the Unix
    /// epoch, or why nothing was stored.
    pub fn set(&self, key: String, value: String, ttl: Option<Duration>) -> Result<u64, String> {
        if key.len() > MAX_KEY_BYTES {
            return Err(format!(
                "the key has {} bytes; at most {MAX_KEY_BYTES}",
                key.len()
            ));
        }
        if value.len() > MAX_VALUE_BYTES {
            return Err(format!(
                "the value has {} bytes; at most {MAX_VALUE_BYTES}",
                value.len()
            ));
        }
        let ttl = ttl.unwrap_or(DEFAULT_TTL);
        if ttl.is_zero() {
            return Err("the time to live is zero".into());
        }
        let ttl = ttl.min(MAX_TTL);
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let expires_at = u64::try_from((since_epoch + ttl).as_millis()).unwrap_or(u64::MAX);
        self.lock().put(
            key,
            Stored {
                value,
                expires: Instant::now() + ttl,
                expires_at,
            },
        );
        Ok(expires_at)
    }

    /// Removes the entry under `key`; whether there was a live one.
    pub fn delete(&self, key: &str) -> bool {
        self.lock()
            .pop(key)
            .is_some_and(|stored| stored.expires > Instant::now())
    }

    /// Entries held now, expired ones included until they are read or pushed
    /// out.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Whose cache a run uses: the live plugin's, or its shadow candidate's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The plugin that serves.
    Live,
    /// Its candidate (`shadow_path`), which must not change what the live
    /// plugin reads.
    Shadow,
}

/// Every plugin's cache, by name and role, for the life of the process: a
/// reload keeps a plugin's entries.
#[derive(Default)]
pub struct Caches {
    by_plugin: Mutex<HashMap<(String, Role), Arc<Cache>>>,
}

impl Caches {
    /// The cache of the plugin `name` in `role`, made empty the first time.
    pub fn of(&self, name: &str, role: Role) -> Arc<Cache> {
        let mut by_plugin = self
            .by_plugin
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        by_plugin
            .entry((name.to_owned(), role))
            .or_default()
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_read_back_until_it_expires() {
        let cache = Cache::default();
        let expires_at = cache
            .set("k".into(), "v".into(), Some(Duration::from_millis(30)))
            .unwrap();
        let entry = cache.get("k").unwrap();
        assert_eq!(entry.value, "v");
        assert_eq!(entry.expires_at, expires_at);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(cache.get("k"), None);
        assert!(cache.is_empty(), "an expired entry leaves when it is read");
    }

    #[test]
    fn oversized_keys_and_values_and_a_zero_ttl_are_refused_and_store_nothing() {
        let cache = Cache::default();
        let long_key = "k".repeat(MAX_KEY_BYTES + 1);
        assert!(
            cache
                .set(long_key, "v".into(), None)
                .unwrap_err()
                .contains("at most 512")
        );
        let long_value = "v".repeat(MAX_VALUE_BYTES + 1);
        assert!(
            cache
                .set("k".into(), long_value, None)
                .unwrap_err()
                .contains("at most 4096")
        );
        assert!(
            cache
                .set("k".into(), "v".into(), Some(Duration::ZERO))
                .is_err()
        );
        assert!(cache.is_empty());
    }

    #[test]
    fn a_long_ttl_is_cut_to_a_day() {
        let cache = Cache::default();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let expires_at = cache
            .set(
                "k".into(),
                "v".into(),
                Some(Duration::from_secs(7 * 86_400)),
            )
            .unwrap();
        let day = MAX_TTL.as_millis() as u64;
        assert!((now + day..now + day + 5_000).contains(&expires_at));
    }

    #[test]
    fn a_full_cache_drops_its_least_recently_used_entry() {
        let cache = Cache::with_capacity(2);
        cache.set("a".into(), "1".into(), None).unwrap();
        cache.set("b".into(), "2".into(), None).unwrap();
        assert!(cache.get("a").is_some(), "reading a makes b the oldest");
        cache.set("c".into(), "3".into(), None).unwrap();
        assert_eq!(cache.len(), 2);
        assert!(cache.get("b").is_none());
        assert!(cache.get("a").is_some() && cache.get("c").is_some());
        assert!(cache.delete("a"));
        assert!(!cache.delete("a"));
    }

    #[test]
    fn a_plugin_keeps_its_cache_and_its_shadow_has_another() {
        let caches = Caches::default();
        caches
            .of("p", Role::Live)
            .set("k".into(), "live".into(), None)
            .unwrap();
        assert_eq!(caches.of("p", Role::Live).get("k").unwrap().value, "live");
        assert!(caches.of("p", Role::Shadow).get("k").is_none());
        assert!(caches.of("q", Role::Live).get("k").is_none());
    }
}
