//! What `/metrics` shows: request and plugin-call latency histograms, store
//! query times, the plugin instance pool, reloads, signing keys and the
//! build, kept with the `prometheus-client` crate and written in the
//! Prometheus text format or OpenMetrics ([`exposition`]).
//!
//! Every label value comes from a closed set (an endpoint of the router, a
//! grant type, an OAuth error code, a stage, a reason) or from the
//! configuration (a plugin's name and hash), never from a request, so a
//! client cannot make the number of series grow.
//!
//! Recording is a hash lookup under a read lock and an update under the
//! histogram's own lock, a few hundred nanoseconds (the `metrics` criterion
//! benchmark measures it); rendering happens only when scraped.

pub mod exposition;

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use crate::oauth::ErrorCode;
use crate::token::KeySet;

pub use exposition::Format;

/// Histogram buckets for everything timed here: 25 µs doubling to 3.3 s, so
/// a warm plugin call (≈10 µs) falls in the first bucket, a token (≈50 µs)
/// in the second or third, a password check (≈25 ms) and a slow store
/// query in the middle, and a plugin's deadline near the top.
pub fn buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.000_025, 2.0, 18)
}

fn histogram() -> Histogram {
    Histogram::new(buckets())
}

/// A family of histograms with [`buckets`].
pub type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// A new family of histograms with [`buckets`].
pub fn histograms<L: Clone + std::hash::Hash + Eq>() -> Histograms<L> {
    Family::new_with_constructor(histogram)
}

/// Labels of an HTTP request's duration.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route (`/oauth/token`), or `other` for a path no route matched.
    pub endpoint: &'static str,
    /// The token request's `grant_type`, or `none` on other endpoints.
    pub grant: &'static str,
    /// `ok`, the OAuth error code of the answer, or `client_error` /
    /// `server_error` for an error that has no OAuth code.
    pub outcome: &'static str,
}

/// Labels of one plugin call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLabels {
    /// The plugin's `name`.
    pub plugin: String,
    /// The first 12 hex digits of its component's SHA-256, so a reload to
    /// new code starts new series.
    pub sha256: String,
    /// `credentials-exchange` or `authorize`.
    pub stage: &'static str,
    /// `applied`, `denied`, `failed` or `skipped`.
    pub outcome: &'static str,
}

/// Labels of one store query.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StoreLabels {
    /// The store operation (`consume_code`, `use_refresh`, …).
    pub operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrantLabels {
    grant: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    error: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginNameLabels {
    plugin: String,
}

/// Labels of a shadow run.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ShadowLabels {
    plugin: String,
    /// `same`, `changed`, `flipped`, or `dropped` (not run: too many
    /// already running).
    result: &'static str,
}

/// Labels of a reload.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    result: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyLabels {
    alg: &'static str,
    kid: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlgorithmLabels {
    alg: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    wasmtime: &'static str,
}

fn reload_labels(refused: Option<ReloadRefusal>) -> ReloadLabels {
    match refused {
        None => ReloadLabels {
            result: "ok",
            reason: "",
        },
        Some(r) => ReloadLabels {
            result: "refused",
            reason: r.as_str(),
        },
    }
}

/// Why a reload was refused: the `reason` label of
/// `tessera_reloads_total{result="refused"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadRefusal {
    /// The configuration file does not read or validate.
    Config,
    /// A plugin does not load (read, compile, link, limits).
    Plugin,
    /// The change needs a restart (`[signing]` places, `[runtime] fuel`).
    NeedsRestart,
    /// The reload itself could not run.
    Internal,
}

impl ReloadRefusal {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ReloadRefusal::Config => "config",
            ReloadRefusal::Plugin => "plugin",
            ReloadRefusal::NeedsRestart => "needs_restart",
            ReloadRefusal::Internal => "internal",
        }
    }
}

/// What the plugin runtime records as it runs plugins: kept by
/// [`crate::plugin::Runtime`] (one per process, like the engine),
/// registered by [`Metrics::new`].
#[derive(Debug, Clone)]
pub struct PluginMetrics {
    calls: Histograms<PluginLabels>,
    failures: Family<PluginNameLabels, Counter>,
    /// How long calls that found no instance slot free waited for one.
    pub slot_waits: Histogram,
    /// Calls that found none free within their deadline.
    pub slot_wait_timeouts: Counter,
}

impl Default for PluginMetrics {
    fn default() -> PluginMetrics {
        PluginMetrics {
            calls: histograms(),
            failures: Family::default(),
            slot_waits: histogram(),
            slot_wait_timeouts: Counter::default(),
        }
    }
}

impl PluginMetrics {
    /// A plugin call ended.
    pub fn call(&self, labels: &PluginLabels, took: Duration) {
        self.calls.get_or_create(labels).observe(took.as_secs_f64());
        if matches!(labels.outcome, "failed" | "skipped") {
            self.failures
                .get_or_create(&PluginNameLabels {
                    plugin: labels.plugin.clone(),
                })
                .inc();
        }
    }
}

/// The plugin instance pool as `/metrics` shows it, read when scraped.
#[derive(Debug, Clone, Copy)]
pub struct PoolReading {
    /// Instance slots in all.
    pub slots: usize,
    /// Slots holding an instance now (calls running, idle warm instances).
    pub in_use: usize,
}

/// Everything `/metrics` shows; recorded from anywhere, rendered on scrape.
pub struct Metrics {
    registry: Registry,
    requests: Histograms<RequestLabels>,
    tokens_issued: Family<GrantLabels, Counter>,
    token_errors: Family<ErrorLabels, Counter>,
    instance_slots: Gauge,
    instances_in_use: Gauge,
    reloads: Family<ReloadLabels, Counter>,
    shadow_runs: Family<ShadowLabels, Counter>,
    shadow_calls: Histograms<PluginNameLabels>,
    key_age: Family<KeyLabels, Gauge>,
    key_next: Family<AlgorithmLabels, Gauge>,
    keys_published: Gauge,
    /// One scrape at a time updates the gauges read at scrape time.
    scrape: Mutex<()>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// The metrics of one issuer. `store_queries` is the store's own family
    /// ([`crate::store::Store::query_timings`]) and `plugins` the plugin
    /// runtime's ([`crate::plugin::Runtime::metrics`]), registered here.
    pub fn new(store_queries: Histograms<StoreLabels>, plugins: PluginMetrics) -> Metrics {
        let mut registry = Registry::default();
        let m = Metrics {
            registry: Registry::default(),
            requests: histograms(),
            tokens_issued: Family::default(),
            token_errors: Family::default(),
            instance_slots: Gauge::default(),
            instances_in_use: Gauge::default(),
            reloads: Family::default(),
            shadow_runs: Family::default(),
            shadow_calls: histograms(),
            key_age: Family::default(),
            key_next: Family::default(),
            keys_published: Gauge::default(),
            scrape: Mutex::new(()),
        };
        registry.register_with_unit(
            "tessera_http_request_duration",
            "HTTP requests by endpoint, grant type and outcome, from the request's headers read to its answer written",
            Unit::Seconds,
            m.requests.clone(),
        );
        registry.register(
            "tessera_tokens_issued",
            "Token responses, by grant type",
            m.tokens_issued.clone(),
        );
        registry.register(
            "tessera_token_errors",
            "Token requests refused, by OAuth error code",
            m.token_errors.clone(),
        );
        registry.register_with_unit(
            "tessera_plugin_call_duration",
            "Plugin calls by plugin, component hash, stage and outcome: waiting for an instance slot, instantiation and the call",
            Unit::Seconds,
            plugins.calls,
        );
        registry.register(
            "tessera_plugin_failures",
            "Plugin calls that trapped, timed out or returned refused output (failed or skipped)",
            plugins.failures,
        );
        registry.register_with_unit(
            "tessera_plugin_instance_wait",
            "Time plugin calls waited for a free instance slot, for the calls that found none free",
            Unit::Seconds,
            plugins.slot_waits,
        );
        registry.register(
            "tessera_plugin_instance_wait_timeouts",
            "Plugin calls that found no instance slot free within their deadline",
            plugins.slot_wait_timeouts,
        );
        registry.register(
            "tessera_plugin_shadow_runs",
            "Shadow runs of a plugin's candidate build beside the live one, by how the candidate's result compared: same, changed (claims or scopes, or another refusal), flipped (a token issued by one and not the other), dropped (not run: too many running)",
            m.shadow_runs.clone(),
        );
        registry.register_with_unit(
            "tessera_plugin_shadow_call_duration",
            "Calls of plugins' candidate builds in shadow runs (instantiation and the call)",
            Unit::Seconds,
            m.shadow_calls.clone(),
        );
        registry.register(
            "tessera_plugin_instance_slots",
            "Plugin instance slots in all (calls running at once, idle warm instances included)",
            m.instance_slots.clone(),
        );
        registry.register(
            "tessera_plugin_instances_in_use",
            "Plugin instance slots holding an instance: calls running and idle warm instances",
            m.instances_in_use.clone(),
        );
        registry.register_with_unit(
            "tessera_store_query_duration",
            "Store operations by name, each a query or a transaction",
            Unit::Seconds,
            store_queries,
        );
        registry.register(
            "tessera_reloads",
            "Reloads of the configuration and plugins: ok, or refused with a reason (config, plugin, needs_restart, internal)",
            m.reloads.clone(),
        );
        registry.register_with_unit(
            "tessera_signing_key_age",
            "Time since each signing key in use began to sign, by algorithm and kid",
            Unit::Seconds,
            m.key_age.clone(),
        );
        registry.register_with_unit(
            "tessera_signing_key_next_activation",
            "Time until the next published key of an algorithm begins to sign (absent when none waits)",
            Unit::Seconds,
            m.key_next.clone(),
        );
        registry.register(
            "tessera_signing_keys_published",
            "Keys in the JWKS",
            m.keys_published.clone(),
        );
        registry.register(
            "tessera_build",
            "This build of Tessera",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                wasmtime: WASMTIME_VERSION,
            }),
        );
        // Every grant, error and reload series exists from the start, so a
        // rate over it has a value before the first one.
        for grant in crate::oauth::GRANT_TYPES_SUPPORTED {
            let _ = m.tokens_issued.get_or_create(&GrantLabels { grant });
        }
        for code in ErrorCode::ALL {
            let _ = m.token_errors.get_or_create(&ErrorLabels {
                error: code.as_str(),
            });
        }
        for refused in [
            None,
            Some(ReloadRefusal::Config),
            Some(ReloadRefusal::Plugin),
            Some(ReloadRefusal::NeedsRestart),
            Some(ReloadRefusal::Internal),
        ] {
            let _ = m.reloads.get_or_create(&reload_labels(refused));
        }
        Metrics { registry, ..m }
    }

    /// An HTTP request was answered.
    pub fn request(&self, labels: &RequestLabels, took: Duration) {
        self.requests
            .get_or_create(labels)
            .observe(took.as_secs_f64());
    }

    /// A token response was sent for `grant`.
    pub fn token_issued(&self, grant: &'static str) {
        self.tokens_issued
            .get_or_create(&GrantLabels { grant })
            .inc();
    }

    /// A token request failed with `code`.
    pub fn token_error(&self, code: ErrorCode) {
        self.token_errors
            .get_or_create(&ErrorLabels {
                error: code.as_str(),
            })
            .inc();
    }

    /// A shadow run of `plugin`'s candidate ended as `result` (`same`,
    /// `changed`, `flipped`), its call having taken `took`.
    pub fn shadow_run(&self, plugin: &str, result: &'static str, took: Duration) {
        let plugin = plugin.to_owned();
        self.shadow_calls
            .get_or_create(&PluginNameLabels {
                plugin: plugin.clone(),
            })
            .observe(took.as_secs_f64());
        self.shadow_runs
            .get_or_create(&ShadowLabels { plugin, result })
            .inc();
    }

    /// A shadow run of `plugin` was not started: too many were running.
    pub fn shadow_dropped(&self, plugin: &str) {
        self.shadow_runs
            .get_or_create(&ShadowLabels {
                plugin: plugin.to_owned(),
                result: "dropped",
            })
            .inc();
    }

    /// A reload ended: `None` when it swapped a new snapshot in.
    pub fn reload(&self, refused: Option<ReloadRefusal>) {
        self.reloads.get_or_create(&reload_labels(refused)).inc();
    }

    /// The exposition in `format`, with the gauges that are read when
    /// scraped brought up to date first: the signing keys at `now` and the
    /// instance pool.
    pub fn render(&self, format: Format, keys: &KeySet, now: u64, pool: PoolReading) -> String {
        let _one_scrape = self.scrape.lock().unwrap_or_else(|e| e.into_inner());
        self.key_age.clear();
        for (algorithm, since) in keys.signing_since(now) {
            let key = keys.active_for(algorithm);
            self.key_age
                .get_or_create(&KeyLabels {
                    alg: algorithm.as_str(),
                    kid: key.kid.clone(),
                })
                .set(now.saturating_sub(since) as i64);
        }
        self.key_next.clear();
        for (algorithm, at) in keys.next_activations(now) {
            self.key_next
                .get_or_create(&AlgorithmLabels {
                    alg: algorithm.as_str(),
                })
                .set(at.saturating_sub(now) as i64);
        }
        self.keys_published.set(keys.keys().len() as i64);
        self.instance_slots.set(pool.slots as i64);
        self.instances_in_use.set(pool.in_use as i64);
        exposition::render(&self.registry, format)
    }
}

/// The wasmtime release this build runs plugins with.
const WASMTIME_VERSION: &str = "48.0.8";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Algorithm;
    use crate::token::keys::SigningKey;

    fn key_set() -> KeySet {
        let key = SigningKey::generate(Algorithm::ES256, 1_000).expect("key");
        KeySet::single(key)
    }

    fn scrape(m: &Metrics, format: Format) -> String {
        m.render(
            format,
            &key_set(),
            1_600,
            PoolReading {
                slots: 256,
                in_use: 3,
            },
        )
    }

    #[test]
    fn recorded_values_appear_with_their_labels() {
        let plugins = PluginMetrics::default();
        let m = Metrics::new(histograms(), plugins.clone());
        m.request(
            &RequestLabels {
                endpoint: "/oauth/token",
                grant: "client_credentials",
                outcome: "ok",
            },
            Duration::from_micros(60),
        );
        m.token_issued("client_credentials");
        m.token_error(ErrorCode::InvalidClient);
        plugins.call(
            &PluginLabels {
                plugin: "claims".into(),
                sha256: "0123456789ab".into(),
                stage: "credentials-exchange",
                outcome: "skipped",
            },
            Duration::from_micros(20),
        );
        m.reload(Some(ReloadRefusal::Plugin));
        let text = scrape(&m, Format::Prometheus);
        for line in [
            "tessera_http_request_duration_seconds_count{endpoint=\"/oauth/token\",grant=\"client_credentials\",outcome=\"ok\"} 1",
            "tessera_http_request_duration_seconds_bucket{endpoint=\"/oauth/token\",grant=\"client_credentials\",outcome=\"ok\",le=\"0.0001\"} 1",
            "tessera_tokens_issued_total{grant=\"client_credentials\"} 1",
            "tessera_token_errors_total{error=\"invalid_client\"} 1",
            "tessera_token_errors_total{error=\"invalid_grant\"} 0",
            "tessera_plugin_failures_total{plugin=\"claims\"} 1",
            "tessera_reloads_total{result=\"refused\",reason=\"plugin\"} 1",
            "tessera_signing_key_age_seconds{alg=\"ES256\",",
            "tessera_signing_keys_published 1",
            "tessera_plugin_instance_slots 256",
            "tessera_plugin_instances_in_use 3",
            "# TYPE tessera_tokens_issued_total counter",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        assert!(
            text.contains("} 600\n"),
            "the key has signed for 600 s: {text}"
        );
    }
}
