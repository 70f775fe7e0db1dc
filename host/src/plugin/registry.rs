//! Loading plugins: read the file, check it is a component, compile it (or load
//! the compiled artifact from the cache), link it against what Tessera offers,
//! and find which stages it exports. Everything here runs off the request path.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use wasmtime::component::{Component, InstancePre};

use super::abi::{self, Version};
use super::cache::{Cache, Role};
use super::engine::{MAX_CONCURRENT_INSTANCES, PluginState, Runtime};
use super::metadata::Metadata;
use super::signature::{self, PublicKey, read_beside, signature_path};
use super::warm::{Pool, Warm};
use crate::config::{Config, PluginConfig, RuntimeConfig, ShadowConfig, Stage};

/// Largest component file accepted (JavaScript and Python components run to
/// tens of MiB).
pub const MAX_COMPONENT_BYTES: u64 = 64 << 20;

/// A set of stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Stages {
    /// `credentials-exchange`.
    pub credentials_exchange: bool,
    /// `authorize`.
    pub authorize: bool,
}

impl Stages {
    /// Whether `stage` is in the set.
    pub fn contains(self, stage: Stage) -> bool {
        match stage {
            Stage::CredentialsExchange => self.credentials_exchange,
            Stage::Authorize => self.authorize,
        }
    }

    /// The stage names.
    pub fn names(self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.authorize {
            v.push(Stage::Authorize.as_str());
        }
        if self.credentials_exchange {
            v.push(Stage::CredentialsExchange.as_str());
        }
        v
    }
}

/// A compiled, linked plugin, ready to instantiate per call.
pub struct LoadedPlugin {
    /// Its configuration.
    pub config: PluginConfig,
    /// SHA-256 of the component file, hex.
    pub sha256: String,
    /// Who signed it, when its `signers` ask for a signature.
    pub signed_by: Option<PublicKey>,
    /// The candidate build run beside it on a share of its calls
    /// (`shadow_path`).
    pub shadow: Option<Candidate>,
    /// Size of the component file.
    pub size: u64,
    /// Stages the component exports.
    pub exports: Stages,
    /// Stages it runs at (configured, or every exported one).
    pub stages: Stages,
    /// When it was loaded.
    pub loaded_at: SystemTime,
    /// Whether the compiled artifact came from the cache.
    pub from_cache: bool,
    /// How long loading took.
    pub load_time: std::time::Duration,
    /// What the component's custom sections say (language, toolchain).
    pub metadata: Metadata,
    /// Idle instances kept for reuse, and calls per instance.
    pub(crate) pool: Pool,
    /// Its host-side cache (`tessera:cache`): the plugin name's, kept across
    /// reloads; a candidate's is its own.
    pub(crate) cache: Arc<Cache>,
    /// The compiled component, reused by a reload when the file is unchanged.
    component: Component,
    /// The WIT version it was built against.
    pub abi: Version,
    credentials_exchange: Option<abi::Pre>,
    authorize: Option<abi::Pre>,
}

impl fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("name", &self.config.name)
            .field("sha256", &self.sha256)
            .field("stages", &self.stages)
            .finish_non_exhaustive()
    }
}

impl LoadedPlugin {
    /// This build and its candidate (`shadow_path`), if it has one.
    pub fn builds(&self) -> impl Iterator<Item = &LoadedPlugin> {
        std::iter::once(self).chain(self.shadow.as_ref().map(|c| &*c.plugin))
    }

    /// How this plugin reuses instances.
    pub fn warm(&self) -> Warm {
        self.pool.warm()
    }

    /// Idle instances kept right now.
    pub fn idle_instances(&self) -> usize {
        self.pool.idle()
    }

    /// The component linked for `stage`, if it exports it.
    pub(crate) fn pre(&self, stage: Stage) -> Option<&abi::Pre> {
        match stage {
            Stage::CredentialsExchange => self.credentials_exchange.as_ref(),
            Stage::Authorize => self.authorize.as_ref(),
        }
    }

    /// Whether this plugin runs at `stage` for the API `audience`.
    pub fn runs_for(&self, stage: Stage, audience: Option<&str>) -> bool {
        self.stages.contains(stage)
            && (self.config.apis.is_empty()
                || audience.is_some_and(|a| self.config.apis.iter().any(|x| x == a)))
    }
}

/// Shadow runs at once per plugin; past it, a sampled call's shadow run is
/// dropped (and counted) rather than queued.
pub const MAX_SHADOW_RUNS: usize = 4;

/// A plugin's candidate build (`shadow_path`), loaded with the plugin's own
/// settings, and which of the plugin's calls it also runs for.
pub struct Candidate {
    /// The candidate, loaded.
    pub plugin: Arc<LoadedPlugin>,
    /// The share of calls it runs for.
    sample: f64,
    /// Calls of the live plugin so far.
    calls: AtomicU64,
    /// Its shadow runs running now.
    pub running: Arc<tokio::sync::Semaphore>,
}

impl Candidate {
    fn new(plugin: LoadedPlugin, sample: f64) -> Candidate {
        Candidate {
            plugin: Arc::new(plugin),
            sample,
            calls: AtomicU64::new(0),
            running: Arc::new(tokio::sync::Semaphore::new(MAX_SHADOW_RUNS)),
        }
    }

    /// Whether this call of the live plugin is one the candidate runs for:
    /// evenly spaced, `sample` of them (every tenth at 0.1), so the share
    /// holds over any stretch of calls and costs no random numbers.
    pub fn picks(&self) -> bool {
        picked(self.calls.fetch_add(1, Ordering::Relaxed), self.sample)
    }

    /// The share of calls it runs for.
    pub fn sample(&self) -> f64 {
        self.sample
    }
}

/// Whether call `n` (from 0) is one of an evenly spaced `sample` of calls.
fn picked(n: u64, sample: f64) -> bool {
    let n = n as f64;
    ((n + 1.0) * sample).floor() > (n * sample).floor()
}

/// Why a plugin could not be loaded.
#[derive(Debug, Clone)]
pub struct LoadError {
    /// The plugin's name.
    pub plugin: String,
    /// Where it is in its configuration file (`plugins[partner-claims]`);
    /// empty for a plugin loaded on its own.
    pub key: String,
    /// The configuration key the problem is about (`path`, `stages`, …).
    pub field: &'static str,
    /// Its file.
    pub path: PathBuf,
    /// What is wrong and what to do.
    pub reason: String,
}

impl fmt::Display for LoadError {
    /// `plugins[partner-claims].path: cannot read plugins/partner-claims.wasm: …`,
    /// a problem of the configuration file like the ones validation finds; or
    /// the reason alone (which names the file) for a plugin loaded on its own.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}.{}: {}", self.key, self.field, self.reason)
        }
    }
}

impl std::error::Error for LoadError {}

/// Loads every plugin of `config`; all problems are reported together. A
/// plugin whose file hashes the same as one in `previous` reuses its compiled
/// component instead of compiling (or deserializing) it again.
pub fn load_all(
    runtime: &Runtime,
    config: &Config,
    previous: &[Arc<LoadedPlugin>],
) -> Result<Vec<Arc<LoadedPlugin>>, Vec<LoadError>> {
    let mut loaded = Vec::new();
    let mut errors = Vec::new();
    for p in &config.plugins {
        match load(runtime, p, &config.runtime, previous) {
            Ok(l) => loaded.push(Arc::new(l)),
            Err(e) => errors.push(e),
        }
    }
    // Idle instances hold pooling-allocator slots; keep half for calls.
    let warm_total: u32 = loaded
        .iter()
        .flat_map(|p| p.builds())
        .map(|p| p.warm().instances)
        .sum();
    if warm_total > MAX_CONCURRENT_INSTANCES / 2 {
        errors.push(LoadError {
            plugin: "*".into(),
            key: "plugins[*]".into(),
            field: "warm_instances",
            path: PathBuf::new(),
            reason: format!(
                "the plugins keep {warm_total} warm instances in all; the limit is {}: lower warm_instances",
                MAX_CONCURRENT_INSTANCES / 2
            ),
        });
    }
    if errors.is_empty() {
        Ok(loaded)
    } else {
        Err(errors)
    }
}

/// Loads one plugin.
pub fn load(
    runtime: &Runtime,
    plugin: &PluginConfig,
    settings: &RuntimeConfig,
    previous: &[Arc<LoadedPlugin>],
) -> Result<LoadedPlugin, LoadError> {
    let (cache_dir, compile_timeout) = (&settings.cache_dir, settings.compile_timeout);
    let started = Instant::now();
    let shown = plugin.written_path.display();
    let fail_at = |field: &'static str, reason: String| LoadError {
        plugin: plugin.name.clone(),
        key: plugin.key.clone(),
        field,
        path: plugin.path.clone(),
        reason,
    };
    let fail = |reason: String| fail_at("path", reason);
    let unreadable = |e: std::io::Error| {
        fail(match e.kind() {
            std::io::ErrorKind::NotFound => {
                format!("cannot read {shown}: no such file; build it with `tessera plugin build`")
            }
            _ => format!("cannot read {shown}: {e}"),
        })
    };
    let meta = std::fs::metadata(&plugin.path).map_err(unreadable)?;
    if meta.len() > MAX_COMPONENT_BYTES {
        return Err(fail(format!(
            "{shown} is {} MiB; the limit is {} MiB",
            meta.len() >> 20,
            MAX_COMPONENT_BYTES >> 20
        )));
    }
    let bytes = std::fs::read(&plugin.path).map_err(unreadable)?;
    check_header(&bytes).map_err(|r| fail(format!("{shown} {r}")))?;
    let hash = signature::sha256(&bytes);
    let sha256 = hex::encode(hash);
    let signed_by = check_signature(plugin, &hash).map_err(|r| fail_at("signers", r))?;
    let metadata = Metadata::read(&bytes);
    let warm = Warm {
        instances: plugin
            .warm_instances
            .unwrap_or_else(|| Warm::default_instances(metadata.language())),
        max_calls: plugin.warm_max_calls,
    };

    let reused = previous
        .iter()
        .flat_map(|p| p.builds())
        .find(|p| p.sha256 == sha256)
        .map(|p| p.component.clone());
    let (component, from_cache) = match reused {
        Some(c) => (c, true),
        None => runtime
            .compile_cached(&bytes, &sha256, cache_dir, compile_timeout)
            .map_err(|e| fail(format!("{shown} does not compile: {}", first_line(&e))))?,
    };
    let version = abi::version_of(&component, runtime.linker());
    let pre: InstancePre<PluginState> =
        runtime.linker().instantiate_pre(&component).map_err(|e| {
            fail(format!(
                "{shown} needs an import Tessera does not provide ({}); plugins may import only \
                 the host interface of their tessera:plugin version ({}) and WASI 0.2",
                first_line(&e),
                abi::supported()
            ))
        })?;
    let linked = abi::link(&component, &pre, version).map_err(|r| fail(format!("{shown} {r}")))?;
    let exports = Stages {
        credentials_exchange: linked.credentials_exchange.is_some(),
        authorize: linked.authorize.is_some(),
    };
    if exports == Stages::default() {
        return Err(fail(format!(
            "{shown} exports neither on-credentials-exchange nor on-authorize; build it for a world of {}",
            version.package()
        )));
    }
    let stages = match &plugin.stages {
        None => exports,
        Some(list) => {
            let mut s = Stages::default();
            for &stage in list {
                if !exports.contains(stage) {
                    return Err(fail_at(
                        "stages",
                        format!(
                            "lists {:?}, but {shown} does not export it (it exports: {})",
                            stage.as_str(),
                            exports.names().join(", ")
                        ),
                    ));
                }
                match stage {
                    Stage::CredentialsExchange => s.credentials_exchange = true,
                    Stage::Authorize => s.authorize = true,
                }
            }
            s
        }
    };
    let shadow = match &plugin.shadow {
        None => None,
        Some(shadow) => Some(load_candidate(
            runtime, plugin, shadow, settings, previous, stages,
        )?),
    };
    Ok(LoadedPlugin {
        config: plugin.clone(),
        sha256,
        signed_by,
        shadow,
        size: meta.len(),
        exports,
        stages,
        loaded_at: SystemTime::now(),
        from_cache,
        load_time: started.elapsed(),
        metadata,
        pool: Pool::new(warm),
        cache: runtime.cache(&plugin.name, Role::Live),
        component,
        abi: linked.version,
        credentials_exchange: linked.credentials_exchange,
        authorize: linked.authorize,
    })
}

/// The candidate build of `plugin`, loaded like the plugin itself (with its
/// settings and `signers`), which must export every stage the plugin runs
/// at. Its problems are reported under `shadow_path`.
fn load_candidate(
    runtime: &Runtime,
    plugin: &PluginConfig,
    shadow: &ShadowConfig,
    settings: &RuntimeConfig,
    previous: &[Arc<LoadedPlugin>],
    stages: Stages,
) -> Result<Candidate, LoadError> {
    let config = PluginConfig {
        path: shadow.path.clone(),
        written_path: shadow.written_path.clone(),
        stages: Some(
            [Stage::CredentialsExchange, Stage::Authorize]
                .into_iter()
                .filter(|s| stages.contains(*s))
                .collect(),
        ),
        shadow: None,
        ..plugin.clone()
    };
    let mut loaded = load(runtime, &config, settings, previous).map_err(|e| LoadError {
        field: "shadow_path",
        reason: match e.field {
            "stages" => format!(
                "the candidate {} does not export every stage the plugin runs at: {}",
                shadow.written_path.display(),
                e.reason
            ),
            _ => e.reason,
        },
        ..e
    })?;
    // What the candidate caches must not change what the live plugin reads.
    loaded.cache = runtime.cache(&config.name, Role::Shadow);
    Ok(Candidate::new(loaded, shadow.sample))
}

/// When `plugin` lists `signers`: the one whose signature beside the file
/// (`FILE.wasm.sig`) is valid for the file whose SHA-256 is `sha256`.
fn check_signature(plugin: &PluginConfig, sha256: &[u8; 32]) -> Result<Option<PublicKey>, String> {
    if plugin.signers.is_empty() {
        return Ok(None);
    }
    let shown = plugin.written_path.display();
    let written = signature_path(&plugin.written_path);
    let sig_shown = written.display();
    let signature = read_beside(&plugin.path)
        .map_err(|why| format!("{sig_shown} {why}"))?
        .ok_or_else(|| {
            format!(
                "{shown} is not signed: there is no {sig_shown}; sign it with \
                 `tessera plugin sign {shown} --key KEY`"
            )
        })?;
    signature
        .check(sha256, &plugin.signers)
        .map_err(|refusal| format!("{sig_shown} {refusal}"))?;
    Ok(Some(signature.signer))
}

/// Checks the WebAssembly preamble: magic, then the component layer.
pub(crate) fn check_header(bytes: &[u8]) -> Result<(), &'static str> {
    if bytes.len() < 8 || &bytes[0..4] != b"\0asm" {
        return Err("is not a WebAssembly file");
    }
    match &bytes[4..8] {
        [0x0d, 0x00, 0x01, 0x00] => Ok(()),
        [0x01, 0x00, 0x00, 0x00] => Err(
            "is a core WebAssembly module, not a component; build it for wasm32-wasip2 (or wrap it with `wasm-tools component new`)",
        ),
        _ => Err("has an unsupported WebAssembly version or layer"),
    }
}

fn first_line(e: &wasmtime::Error) -> String {
    let text = format!("{e:#}");
    text.lines().next().unwrap_or("").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_picks_its_share_of_calls_evenly() {
        let picks = |sample: f64, calls: u64| -> Vec<u64> {
            (0..calls).filter(|&n| picked(n, sample)).collect()
        };
        assert_eq!(picks(0.1, 100).len(), 10);
        assert_eq!(picks(0.1, 30), [9, 19, 29]);
        assert_eq!(picks(0.25, 8), [3, 7]);
        assert_eq!(picks(1.0, 5), [0, 1, 2, 3, 4]);
        assert_eq!(picks(0.001, 2000).len(), 2);
    }

    #[test]
    fn header_check_names_the_problem() {
        assert!(
            check_header(b"hello")
                .unwrap_err()
                .contains("not a WebAssembly")
        );
        assert!(
            check_header(b"\0asm\x01\0\0\0")
                .unwrap_err()
                .contains("core WebAssembly module")
        );
        assert!(check_header(b"\0asm\x0d\0\x01\0").is_ok());
    }
}
