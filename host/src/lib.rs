//! Tessera: an OAuth 2.0 / OpenID Connect token issuer whose token pipeline is
//! programmed with sandboxed WebAssembly components.
//!
//! How the modules fit:
//!
//! - [`config`] reads `tessera.toml` into a validated [`config::Config`].
//! - [`plugin`] compiles and runs the WebAssembly plugins (wasmtime).
//! - [`token`] mints and signs JWTs and owns the signing keys.
//! - [`oauth`] parses requests and authenticates clients, with no HTTP types;
//!   [`grants`] turns an authenticated request into tokens.
//! - [`store`] keeps users, sessions, codes and refresh tokens (SQLite;
//!   codes, tokens and sessions only as hashes).
//! - [`reload`] rebuilds the snapshot when files change, on SIGHUP or on
//!   `POST /admin/reload`, and swaps it in atomically.
//! - [`http`] is the edge: routing, bodies, headers, error responses, and the
//!   server-rendered login page.
//!
//! Everything a request needs that can change at run time (configuration,
//! keys, loaded plugins) lives in one immutable [`Snapshot`] behind an atomic
//! pointer: a request takes the snapshot once and uses it to the end, and a
//! reload builds a whole new snapshot off the request path and swaps it in.

pub mod config;
pub mod devkit;
pub mod grants;
pub mod http;
pub mod metrics;
pub mod oauth;
pub mod plugin;
pub mod reload;
pub mod secret;
pub mod store;
pub mod token;

use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;

use config::Config;
use plugin::{LoadedPlugin, Runtime};
use token::{Clock, KeySet};

/// Everything a request reads that can change at run time, immutable once built.
#[derive(Debug)]
pub struct Snapshot {
    /// Increases by one with every swap.
    pub generation: u64,
    /// The configuration.
    pub config: Arc<Config>,
    /// Signing keys and the JWKS.
    pub keys: Arc<KeySet>,
    /// Loaded plugins, in configuration order.
    pub plugins: Vec<Arc<LoadedPlugin>>,
    /// The discovery document, rendered once.
    pub discovery: Vec<u8>,
    /// When it was built.
    pub built_at: SystemTime,
}

/// Why a snapshot could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The signing keys could not be loaded or created.
    #[error("signing keys: {0}")]
    Keys(#[from] token::keys::KeyError),
    /// One or more plugins of the configuration file could not be loaded:
    /// shown like the file's other problems, each naming its key
    /// (`tessera.toml: 1 problem\n  - plugins[x].path: cannot read …`).
    #[error("{}", config::ConfigError {
        file: file.clone(),
        problems: errors.iter().map(ToString::to_string).collect(),
    })]
    Plugins {
        /// The configuration file.
        file: std::path::PathBuf,
        /// One per plugin that failed.
        errors: Vec<plugin::LoadError>,
    },
    /// The configuration changed something that only a restart applies.
    #[error("{0}")]
    NeedsRestart(String),
}

impl Snapshot {
    /// Loads keys and plugins for `config`. Blocking (file I/O, compilation):
    /// call it off the request path.
    pub fn build(
        runtime: &Runtime,
        config: Arc<Config>,
        clock: &dyn Clock,
        generation: u64,
        previous: &[Arc<LoadedPlugin>],
    ) -> Result<Snapshot, SnapshotError> {
        if config.runtime.fuel != runtime.fuel() {
            return Err(SnapshotError::NeedsRestart(format!(
                "[runtime] fuel = {} takes effect at the next start (the engine was started with fuel = {})",
                config.runtime.fuel,
                runtime.fuel()
            )));
        }
        for warning in &config.warnings {
            tracing::warn!(config = %config.path.display(), "{warning}");
        }
        let keys = KeySet::load_or_create(
            &config.signing.key_dir,
            config.signing.algorithm,
            clock.now(),
        )?;
        let plugins = plugin::registry::load_all(runtime, &config, previous).map_err(|errors| {
            SnapshotError::Plugins {
                file: config.path.clone(),
                errors,
            }
        })?;
        let discovery = http::well_known::discovery_document(&config, &keys);
        Ok(Snapshot {
            generation,
            config,
            keys: Arc::new(keys),
            plugins,
            discovery,
            built_at: SystemTime::now(),
        })
    }
}

/// The running issuer: the current snapshot and what outlives snapshots.
pub struct Issuer {
    snapshot: ArcSwap<Snapshot>,
    /// Reload state: one reload at a time, and how the last one ended.
    reloads: reload::State,
    /// The plugin runtime (one engine for the process).
    pub runtime: Runtime,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Counters for `/metrics`.
    pub metrics: metrics::Metrics,
    /// Users, sessions, codes and refresh tokens.
    pub store: store::Store,
}

impl Issuer {
    /// Builds the first snapshot and the issuer around it.
    pub fn new(
        runtime: Runtime,
        config: Config,
        clock: Arc<dyn Clock>,
        store: store::Store,
    ) -> Result<Issuer, SnapshotError> {
        let snapshot = Snapshot::build(&runtime, Arc::new(config), clock.as_ref(), 1, &[])?;
        Ok(Issuer {
            snapshot: ArcSwap::from_pointee(snapshot),
            reloads: reload::State::default(),
            runtime,
            clock,
            metrics: metrics::Metrics::default(),
            store,
        })
    }

    /// The current snapshot; hold it for the whole request.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }
}
