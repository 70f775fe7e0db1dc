//! Tessera: an OAuth 2.0 / OpenID Connect token issuer whose token pipeline is
//! programmed with sandboxed WebAssembly components.
//!
//! How the modules fit:
//!
//! - [`config`] reads `tessera.toml` into a validated [`config::Config`].
//! - [`plugin`] compiles and runs the WebAssembly plugins (wasmtime).
//! - [`token`] mints and signs JWTs and owns the signing keys: in a key
//!   folder, or sealed in the store so that replicas share them.
//! - [`oauth`] parses requests and authenticates clients, with no HTTP types;
//!   [`grants`] turns an authenticated request into tokens.
//! - [`store`] keeps users, sessions, codes and refresh tokens (SQLite;
//!   codes, tokens and sessions only as hashes).
//! - [`reload`] rebuilds the snapshot when files change, on SIGHUP or on
//!   `POST /admin/reload`, and swaps it in atomically.
//! - [`metrics`] keeps what `/metrics` shows; [`trace`] keeps the latest
//!   decision traces for `/admin/traces`; [`logging`] is the log's
//!   subscriber.
//! - [`http`] is the edge: routing, bodies, headers, error responses, and the
//!   server-rendered login page.
//!
//! Everything a request needs that can change at run time lives behind atomic
//! pointers, each read once per request and used to the end: the
//! configuration and loaded plugins in one immutable [`Snapshot`] that a
//! reload builds off the request path and swaps in, and the signing keys in a
//! [`KeySet`] that [`Issuer::refresh_keys`] replaces when a key is added,
//! activates or retires (every [`token::keyring::POLL_INTERVAL`]).

pub mod audit;
pub mod config;
pub mod devkit;
pub mod grants;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod oauth;
pub mod plugin;
pub mod reload;
pub mod secret;
pub mod store;
pub mod tabular;
pub mod token;
pub mod trace;

use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;

use config::Config;
use plugin::{LoadedPlugin, Runtime};
use token::{Clock, KeyRing, KeySet};

/// Everything a request reads that can change at run time, immutable once built.
#[derive(Debug)]
pub struct Snapshot {
    /// Increases by one with every swap.
    pub generation: u64,
    /// The configuration.
    pub config: Arc<Config>,
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
    #[error("signing keys in {place}: {source}")]
    Keys {
        /// Where they are ([`KeyRing::describe`]).
        place: String,
        /// What failed.
        source: token::keys::KeyError,
    },
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
    /// Loads the plugins of `config`. Blocking (file I/O, compilation): call
    /// it off the request path.
    pub fn build(
        runtime: &Runtime,
        config: Arc<Config>,
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
        let plugins = plugin::registry::load_all(runtime, &config, previous).map_err(|errors| {
            SnapshotError::Plugins {
                file: config.path.clone(),
                errors,
            }
        })?;
        let discovery = http::well_known::discovery_document(&config);
        Ok(Snapshot {
            generation,
            config,
            plugins,
            discovery,
            built_at: SystemTime::now(),
        })
    }

    /// Starts the instances its plugins keep warm, so that a JavaScript or
    /// Python plugin's first requests after a start or a reload do not each
    /// start an interpreter: call it before the snapshot serves.
    pub async fn start_warm_instances(&self, runtime: &Runtime) {
        for build in self.plugins.iter().flat_map(|p| p.builds()) {
            plugin::start_warm_instances(runtime, build).await;
        }
    }
}

/// The running issuer: the current snapshot and what outlives snapshots.
pub struct Issuer {
    snapshot: ArcSwap<Snapshot>,
    /// The signing keys in use.
    keys: ArcSwap<KeySet>,
    /// Where they are kept.
    keyring: KeyRing,
    /// Reload state: one reload at a time, and how the last one ended.
    reloads: reload::State,
    /// The plugin runtime (one engine for the process).
    pub runtime: Runtime,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// What `/metrics` shows.
    pub metrics: metrics::Metrics,
    /// The latest decision traces (`[trace] keep`, read at start).
    pub traces: trace::Traces,
    /// Users, sessions, codes and refresh tokens.
    pub store: store::Store,
    /// Password checks (argon2) running at once: one per core, so a burst of
    /// logins queues instead of taking every core and a gigabyte of memory.
    pub password_checks: tokio::sync::Semaphore,
    /// The key of browser bindings (read from the store once).
    browser_key: tokio::sync::OnceCell<ring::hmac::Key>,
}

impl Issuer {
    /// Loads the signing keys (making the first one on a first start), builds
    /// the first snapshot, and the issuer around them.
    pub async fn new(
        runtime: Runtime,
        config: Config,
        clock: Arc<dyn Clock>,
        store: store::Store,
    ) -> Result<Issuer, SnapshotError> {
        let keyring = KeyRing::new(&config.signing, &store);
        let keys = keyring
            .load(&config.signing, clock.now())
            .await
            .map_err(|source| SnapshotError::Keys {
                place: keyring.describe(),
                source,
            })?;
        let traces = trace::Traces::new(config.trace_keep).redacting(config.trace_redact.clone());
        let metrics = metrics::Metrics::new(store.query_timings(), runtime.metrics().clone());
        let snapshot = Snapshot::build(&runtime, Arc::new(config), 1, &[])?;
        snapshot.start_warm_instances(&runtime).await;
        Ok(Issuer {
            snapshot: ArcSwap::from_pointee(snapshot),
            keys: ArcSwap::from_pointee(keys),
            keyring,
            reloads: reload::State::default(),
            runtime,
            clock,
            metrics,
            traces,
            store,
            password_checks: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            ),
            browser_key: tokio::sync::OnceCell::new(),
        })
    }

    /// Ends an answered request's record: keeps its `trace` (`None` when
    /// traces are not kept), then starts the shadow runs the request was
    /// picked for. Each runs its candidate on the request's event, counts how
    /// it compared on `/metrics`, and adds itself to the trace. A plugin with
    /// [`plugin::registry::MAX_SHADOW_RUNS`] running already drops the run
    /// (and counts it) instead of queueing it.
    pub fn record(
        self: &Arc<Self>,
        trace: Option<trace::Trace>,
        jobs: Vec<plugin::pipeline::ShadowJob>,
    ) {
        let trace_id = trace.as_ref().map(|t| t.id.clone());
        if let Some(trace) = trace {
            self.traces.record(trace);
        }
        for job in jobs {
            let Ok(permit) = job.running.clone().try_acquire_owned() else {
                self.metrics.shadow_dropped(&job.plugin);
                continue;
            };
            let (issuer, trace_id) = (self.clone(), trace_id.clone());
            tokio::spawn(async move {
                let run = plugin::pipeline::run_shadow(&issuer.runtime, job).await;
                drop(permit);
                issuer.metrics.shadow_run(
                    &run.plugin,
                    run.result,
                    std::time::Duration::from_micros(run.micros),
                );
                if let Some(id) = trace_id {
                    issuer.traces.add_shadow(&id, run);
                }
            });
        }
    }

    /// The HMAC key that browser bindings are made with, shared by every
    /// replica through the store ([`grants::sign_in`]).
    pub async fn browser_key(&self) -> Result<&ring::hmac::Key, store::StoreError> {
        self.browser_key
            .get_or_try_init(|| async {
                let secret = self
                    .store
                    .issuer_secret("browser-binding", self.clock.now())
                    .await?;
                Ok(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret))
            })
            .await
    }

    /// The current snapshot; hold it for the whole request.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// The signing keys in use; hold them for the whole request.
    pub fn keys(&self) -> Arc<KeySet> {
        self.keys.load_full()
    }

    /// Where the signing keys are kept.
    pub fn keyring(&self) -> &KeyRing {
        &self.keyring
    }

    /// Reads the signing keys again and swaps them in when the set changed
    /// (a key added, activated or retired). Whether it changed.
    pub async fn refresh_keys(&self) -> Result<bool, token::keys::KeyError> {
        let signing = self.snapshot().config.signing.clone();
        let fresh = self.keyring.load(&signing, self.clock.now()).await?;
        if fresh.same_as(&self.keys()) {
            return Ok(false);
        }
        audit::signing_keys_changed(
            &fresh.active().kid,
            fresh.active().algorithm.as_str(),
            fresh.keys().len(),
        );
        self.keys.store(Arc::new(fresh));
        Ok(true)
    }
}

/// Calls [`Issuer::refresh_keys`] every [`token::keyring::POLL_INTERVAL`]
/// for as long as the issuer lives. A failure (the database away) keeps the
/// current keys signing and is logged once, with the recovery.
pub async fn watch_keys(issuer: Arc<Issuer>) {
    let mut failing = false;
    loop {
        tokio::time::sleep(token::keyring::POLL_INTERVAL).await;
        match issuer.refresh_keys().await {
            Ok(_) if failing => {
                failing = false;
                tracing::info!("signing keys readable again");
            }
            Ok(_) => {}
            Err(error) if !failing => {
                failing = true;
                tracing::warn!(%error, "reading the signing keys failed; the current keys keep signing");
            }
            Err(_) => {}
        }
    }
}
