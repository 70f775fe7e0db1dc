//! The plugin author's tools behind `tessera plugin`: `inspect` a component,
//! `test` one stage of it offline in the real runtime, scaffold a plugin with
//! `new`, `build` a plugin folder into a component, and `watch` it to
//! rebuild on every save; `replay` recorded traces against a new build and
//! `promote` a candidate run in the shadow;
//! `keygen` and `sign` for plugins whose configuration asks for a
//! publisher's signature.

pub mod build;
pub mod inspect;
pub mod promote;
pub mod replay;
pub mod run;
pub mod scaffold;
pub mod sign;
pub mod watch;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::RuntimeConfig;

/// Runtime settings of the plugin commands: compiled components cached in
/// `cache_dir`, a generous compile deadline, no fuel counting.
pub fn runtime_settings(cache_dir: &Path) -> RuntimeConfig {
    RuntimeConfig {
        cache_dir: cache_dir.to_owned(),
        compile_timeout: Duration::from_secs(120),
        fuel: false,
    }
}

/// Where the plugin commands cache compiled components:
/// `$XDG_CACHE_HOME/tessera/compiled`, else `~/.cache/tessera/compiled`, else
/// a folder under the system's temporary directory.
pub fn default_cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|home| PathBuf::from(home).join(".cache"))
        })
        .unwrap_or_else(std::env::temp_dir);
    base.join("tessera").join("compiled")
}
