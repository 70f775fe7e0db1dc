//! `tessera plugin promote NAME`: makes a plugin's candidate build (its
//! `shadow_path`) the live one by editing the configuration file: the
//! entry's `path` becomes the candidate's, and `shadow_path` and
//! `shadow_sample` go. The candidate is loaded first, as a reload would load
//! it (signature included), so a promotion that would be refused changes
//! nothing; the new file is checked as a whole and written through a rename,
//! so the servers watching it reload once, to the promoted build.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use toml_edit::{DocumentMut, Item};

use crate::config::{Config, PluginConfig};
use crate::plugin::Runtime;

/// What [`promote`] did.
#[derive(Debug)]
pub struct Promoted {
    /// The entry's `path` before.
    pub was: String,
    /// Its `path` now, as written in the file (the candidate's).
    pub now: String,
    /// The promoted component's SHA-256, hex.
    pub sha256: String,
}

/// Promotes the candidate of the `[[plugins]]` entry `name` in the
/// configuration at `config_path`.
pub fn promote(config_path: &Path, name: &str) -> anyhow::Result<Promoted> {
    let shown = config_path.display();
    let config = Config::load(config_path)?;
    let entry = config.plugin(name).map_err(anyhow::Error::msg)?;
    let shadow = entry.shadow.as_ref().ok_or_else(|| {
        anyhow::anyhow!(
            "{shown}: plugins[{name}] has no shadow_path, so there is no candidate to promote"
        )
    })?;
    let candidate = PluginConfig {
        path: shadow.path.clone(),
        written_path: shadow.written_path.clone(),
        shadow: None,
        ..entry.clone()
    };
    let runtime = Runtime::with_fuel(config.runtime.fuel).map_err(|e| anyhow::anyhow!("{e:#}"))?;
    let loaded = crate::plugin::registry::load(&runtime, &candidate, &config.runtime, &[])
        .map_err(|e| {
            anyhow::anyhow!(
                "{shown}: plugins[{name}].shadow_path: the candidate would not load, so nothing changed: {}",
                e.reason
            )
        })?;

    let text = std::fs::read_to_string(config_path).with_context(|| format!("reading {shown}"))?;
    let mut doc: DocumentMut = text.parse().with_context(|| format!("{shown}: not TOML"))?;
    let table = doc
        .get_mut("plugins")
        .and_then(Item::as_array_of_tables_mut)
        .and_then(|plugins| {
            plugins
                .iter_mut()
                .find(|t| t.get("name").and_then(Item::as_str) == Some(name))
        })
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{shown}: plugins[{name}] is not a [[plugins]] table of the file; edit it by hand"
            )
        })?;
    let was = table
        .get("path")
        .and_then(Item::as_str)
        .unwrap_or_default()
        .to_owned();
    let now = shadow.written_path.display().to_string();
    table.insert("path", toml_edit::value(now.clone()));
    table.remove("shadow_path");
    table.remove("shadow_sample");

    let edited = doc.to_string();
    let partial = partial_path(config_path);
    std::fs::write(&partial, &edited).with_context(|| format!("writing {}", partial.display()))?;
    let checked = Config::load(&partial).map(|_| ()).map_err(|e| {
        anyhow::anyhow!(
            "{shown}: the promoted configuration would not load, so nothing changed: {e}"
        )
    });
    if let Err(e) = checked {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    if let Ok(meta) = std::fs::metadata(config_path) {
        let _ = std::fs::set_permissions(&partial, meta.permissions());
    }
    std::fs::rename(&partial, config_path).with_context(|| format!("replacing {shown}"))?;
    Ok(Promoted {
        was,
        now,
        sha256: loaded.sha256.clone(),
    })
}

/// The temporary file beside the configuration the edit is written to:
/// relative paths in it resolve as in the real one.
fn partial_path(config_path: &Path) -> PathBuf {
    let mut name = config_path.as_os_str().to_owned();
    name.push(".promote");
    PathBuf::from(name)
}
