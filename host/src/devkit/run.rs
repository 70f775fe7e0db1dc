//! `tessera plugin test`: one stage of one component, offline, in the real
//! runtime (the same engine, limits, pipeline rules and trace as `serve`).
//!
//! The event file is JSON shaped like what plugins see, and every field is
//! optional: a missing client, API, user, request or transaction gets the
//! defaults below, so `{}` is a valid event.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::{
    Api, AppType, ClaimsConfig, Client, ClientAccess, PluginConfig, PluginSecret, Stage, UserAccess,
};
use crate::plugin::egress::{Origin, Policy as EgressPolicy};
use crate::plugin::event::{RequestInfo, TransactionInfo};
use crate::plugin::pipeline;
use crate::plugin::{LoadedPlugin, PipelineError, PluginRun, Runtime, TokenShape};
use crate::store::User;

/// What to run.
#[derive(Debug, Clone)]
pub struct TestOptions {
    /// The component.
    pub file: PathBuf,
    /// The stage to run.
    pub stage: Stage,
    /// The event, as JSON (`{}` for all defaults).
    pub event: EventFile,
    /// Compiled components are cached here.
    pub cache_dir: PathBuf,
    /// Wall-clock budget per call.
    pub timeout: Duration,
    /// Memory cap per call.
    pub memory_bytes: usize,
    /// Extra calls to time, on fresh instances and on one warm instance.
    pub repeat: u32,
}

/// The event file. Every field may be omitted.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventFile {
    /// The application.
    pub client: ClientIn,
    /// The API; `null` for an authorize event without one.
    pub api: Option<ApiIn>,
    /// The signed-in user (authorize).
    pub user: UserIn,
    /// The HTTP request.
    pub request: RequestIn,
    /// The protocol state.
    pub transaction: TransactionIn,
    /// The access token before the plugin.
    pub access_token: TokenIn,
    /// The ID token before the plugin (authorize).
    pub id_token: TokenIn,
    /// The plugin's `config` values (strings as they are, anything else as
    /// JSON text, as in `tessera.toml`).
    pub config: Map<String, Value>,
    /// The plugin's secrets.
    pub secrets: BTreeMap<String, String>,
    /// The origins the plugin may send HTTP requests to, as `egress` in
    /// `tessera.toml` (none by default).
    pub egress: Vec<String>,
}

impl Default for EventFile {
    fn default() -> EventFile {
        EventFile {
            client: ClientIn::default(),
            api: Some(ApiIn::default()),
            user: UserIn::default(),
            request: RequestIn::default(),
            transaction: TransactionIn::default(),
            access_token: TokenIn::default(),
            id_token: TokenIn::default(),
            config: Map::new(),
            secrets: BTreeMap::new(),
            egress: Vec::new(),
        }
    }
}

/// `client` of the event file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientIn {
    /// Default `test-client`.
    pub id: String,
    /// Default `Test client`.
    pub name: String,
    /// Default `machine` for credentials-exchange, `regular_web` for authorize.
    pub app_type: Option<AppType>,
    /// Default empty.
    pub metadata: Map<String, Value>,
}

impl Default for ClientIn {
    fn default() -> ClientIn {
        ClientIn {
            id: "test-client".into(),
            name: "Test client".into(),
            app_type: None,
            metadata: Map::new(),
        }
    }
}

/// `api` of the event file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiIn {
    /// Default `https://api.example.com`.
    pub identifier: String,
    /// Default `Example API`.
    pub name: String,
    /// Default `read:example write:example`.
    pub scopes: Vec<String>,
    /// Default empty.
    pub metadata: Map<String, Value>,
}

impl Default for ApiIn {
    fn default() -> ApiIn {
        ApiIn {
            identifier: "https://api.example.com".into(),
            name: "Example API".into(),
            scopes: vec!["read:example".into(), "write:example".into()],
            metadata: Map::new(),
        }
    }
}

/// `user` of the event file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UserIn {
    /// Default `u_TestUser0000000000000`.
    pub id: String,
    /// Default `user@example.com`.
    pub email: String,
    /// Default true.
    pub email_verified: bool,
    /// Default `Test User`.
    pub name: Option<String>,
    /// Default empty.
    pub app_metadata: Map<String, Value>,
    /// Default empty.
    pub user_metadata: Map<String, Value>,
}

impl Default for UserIn {
    fn default() -> UserIn {
        UserIn {
            id: "u_TestUser0000000000000".into(),
            email: "user@example.com".into(),
            email_verified: true,
            name: Some("Test User".into()),
            app_metadata: Map::new(),
            user_metadata: Map::new(),
        }
    }
}

/// `request` of the event file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RequestIn {
    /// Default `127.0.0.1`.
    pub ip: String,
    /// Default `tessera plugin test`.
    pub user_agent: Option<String>,
    /// Default `localhost`.
    pub hostname: String,
    /// Default `POST` (credentials-exchange) or `GET` (authorize).
    pub method: Option<String>,
    /// Default empty.
    pub params: BTreeMap<String, String>,
}

impl Default for RequestIn {
    fn default() -> RequestIn {
        RequestIn {
            ip: "127.0.0.1".into(),
            user_agent: Some("tessera plugin test".into()),
            hostname: "localhost".into(),
            method: None,
            params: BTreeMap::new(),
        }
    }
}

/// `transaction` of the event file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransactionIn {
    /// Default `test-transaction`.
    pub id: Option<String>,
    /// Default by stage: `client_credentials` or `authorization_code`.
    pub grant_type: Option<String>,
    /// Default: the granted scopes.
    pub requested_scopes: Option<Vec<String>>,
    /// Default: the access token's scopes, else every scope of the API.
    pub granted_scopes: Option<Vec<String>>,
    /// Default none (`https://app.example.com/callback` for authorize).
    pub redirect_uri: Option<String>,
    /// Default none.
    pub requested_audience: Option<String>,
}

/// `access_token` / `id_token` of the event file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenIn {
    /// Custom claims set before this plugin.
    pub claims: Map<String, Value>,
    /// Scopes before this plugin (access token only).
    pub scopes: Option<Vec<String>>,
}

/// The printed result.
#[derive(Debug, serde::Serialize)]
pub struct TestReport {
    /// The component.
    pub plugin: PluginSummary,
    /// The stage that ran.
    pub stage: &'static str,
    /// `allow`, `deny` or `fail`.
    pub decision: &'static str,
    /// The OAuth error a client would get (`deny`, `fail`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    /// The access token's custom claims and scope after the stage.
    pub access_token: Value,
    /// The ID token's custom claims (authorize).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<Value>,
    /// Scopes the stage added and removed.
    pub scopes: Value,
    /// What the plugin changed, as the trace records it.
    pub changed: Vec<String>,
    /// What it logged.
    pub logs: Vec<crate::plugin::engine::LogLine>,
    /// How long things took.
    pub timing: Timing,
}

/// The component, as loaded.
#[derive(Debug, serde::Serialize)]
pub struct PluginSummary {
    /// The file.
    pub file: PathBuf,
    /// SHA-256, hex.
    pub sha256: String,
    /// Bytes.
    pub size: u64,
    /// Stages it exports.
    pub stages: Vec<&'static str>,
    /// Language, from the `tessera-plugin` section.
    pub language: Option<String>,
}

/// Timings, in milliseconds and microseconds.
#[derive(Debug, Default, serde::Serialize)]
pub struct Timing {
    /// Loading: compiling, or reading the compiled cache.
    pub load_ms: f64,
    /// Whether the compiled component came from the cache.
    pub from_cache: bool,
    /// The call reported above: a fresh instance, instantiated and called.
    pub call_us: u64,
    /// With `--repeat`: median of fresh instance + call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fresh_instance_us: Option<u64>,
    /// With `--repeat`: median of a call on a warm (reused) instance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warm_call_us: Option<u64>,
    /// With `--repeat`: repeated calls that failed (a plugin that fails only
    /// sometimes, or only on a reused instance, shows here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat_failures: Option<u32>,
}

/// Why the run could not happen (the plugin's own failure is a report).
#[derive(Debug, thiserror::Error)]
pub enum TestError {
    /// The component did not load.
    #[error(transparent)]
    Load(#[from] crate::plugin::LoadError),
    /// The event does not fit the stage.
    #[error("{0}")]
    Event(String),
    /// The runtime could not start.
    #[error("the plugin runtime could not start: {0}")]
    Runtime(String),
}

/// Runs the stage and reports what happened.
pub fn run(options: &TestOptions) -> Result<TestReport, TestError> {
    let mut harness = Harness::new(options)?;
    let before = harness.input.shape.clone();
    let started = Instant::now();
    let (result, shape, trace) = harness
        .tokio
        .block_on(harness.input.run(&harness.runtime, &harness.fresh));
    let call_us = started.elapsed().as_micros() as u64;

    let mut timing = Timing {
        load_ms: (harness.load_ms * 100.0).round() / 100.0,
        from_cache: harness.fresh.from_cache,
        call_us,
        ..Timing::default()
    };
    if options.repeat > 0 {
        let mut failures = 0;
        let mut count = |ok: bool| failures += u32::from(!ok);
        timing.fresh_instance_us = Some(median(options.repeat, || count(harness.call_fresh())));
        harness.keep_warm()?;
        count(harness.call_warm());
        timing.warm_call_us = Some(median(options.repeat, || count(harness.call_warm())));
        timing.repeat_failures = Some(failures);
    }
    Ok(report(
        options,
        &harness.fresh,
        &harness.input,
        &before,
        result,
        shape,
        trace,
        timing,
    ))
}

/// One component loaded for repeated calls of one stage, on a fresh instance
/// per call or on a warm one: what `plugin test --repeat` times, and what the
/// criterion benchmarks (`host/benches`) call.
pub struct Harness {
    runtime: Runtime,
    tokio: tokio::runtime::Runtime,
    input: Input,
    settings: crate::config::RuntimeConfig,
    config: PluginConfig,
    fresh: Arc<LoadedPlugin>,
    warm: Option<Arc<LoadedPlugin>>,
    load_ms: f64,
}

impl Harness {
    /// Loads the component of `options` (`repeat` is ignored) and prepares
    /// its event.
    pub fn new(options: &TestOptions) -> Result<Harness, TestError> {
        let runtime = Runtime::new().map_err(|e| TestError::Runtime(format!("{e:#}")))?;
        let settings = super::runtime_settings(&options.cache_dir);
        let config = plugin_config(options)?;
        let started = Instant::now();
        let fresh = Arc::new(crate::plugin::registry::load(
            &runtime,
            &config,
            &settings,
            &[],
        )?);
        let load_ms = started.elapsed().as_secs_f64() * 1000.0;
        if !fresh.exports.contains(options.stage) {
            return Err(TestError::Event(format!(
                "{} does not export the {} stage (it exports: {})",
                options.file.display(),
                options.stage.as_str(),
                fresh.exports.names().join(", ")
            )));
        }
        let input = Input::new(options.stage, &options.event)?;
        let tokio = tokio::runtime::Builder::new_current_thread()
            // The network too: a plugin may send HTTP requests (egress).
            .enable_all()
            .build()
            .map_err(|e| TestError::Runtime(e.to_string()))?;
        Ok(Harness {
            runtime,
            tokio,
            input,
            settings,
            config,
            fresh,
            warm: None,
            load_ms,
        })
    }

    /// One call on a fresh instance; whether the plugin did not fail.
    pub fn call_fresh(&self) -> bool {
        self.call(&self.fresh)
    }

    /// Loads the component again keeping one warm instance, for
    /// [`Harness::call_warm`].
    pub fn keep_warm(&mut self) -> Result<(), TestError> {
        let mut config = self.config.clone();
        config.warm_instances = Some(1);
        config.warm_max_calls = u32::MAX;
        self.warm = Some(Arc::new(crate::plugin::registry::load(
            &self.runtime,
            &config,
            &self.settings,
            std::slice::from_ref(&self.fresh),
        )?));
        Ok(())
    }

    /// One call on the warm instance (fresh until [`Harness::keep_warm`]);
    /// whether the plugin did not fail.
    pub fn call_warm(&self) -> bool {
        self.call(self.warm.as_ref().unwrap_or(&self.fresh))
    }

    fn call(&self, plugin: &Arc<LoadedPlugin>) -> bool {
        !matches!(
            self.tokio.block_on(self.input.run(&self.runtime, plugin)).0,
            Err(PipelineError::Failed { .. })
        )
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "assembles the report from the pieces run() holds"
)]
fn report(
    options: &TestOptions,
    plugin: &LoadedPlugin,
    input: &Input,
    before: &TokenShape,
    result: Result<(), PipelineError>,
    shape: TokenShape,
    trace: Vec<PluginRun>,
    timing: Timing,
) -> TestReport {
    let (decision, error) = match &result {
        Ok(()) => ("allow", None),
        Err(e) => {
            let oauth = e.to_oauth();
            let kind = match e {
                PipelineError::Denied { .. } => "deny",
                PipelineError::Failed { .. } => "fail",
            };
            (
                kind,
                Some(serde_json::json!({
                    "error": oauth.code.as_str(),
                    "error_description": oauth.description,
                })),
            )
        }
    };
    let added: Vec<&String> = shape
        .scopes
        .iter()
        .filter(|s| !before.scopes.contains(s))
        .collect();
    let removed: Vec<&String> = before
        .scopes
        .iter()
        .filter(|s| !shape.scopes.contains(s))
        .collect();
    let run = trace.into_iter().next();
    TestReport {
        plugin: PluginSummary {
            file: options.file.clone(),
            sha256: plugin.sha256.clone(),
            size: plugin.size,
            stages: plugin.exports.names(),
            language: plugin.metadata.language().map(str::to_owned),
        },
        stage: options.stage.as_str(),
        decision,
        error,
        access_token: serde_json::json!({
            "claims": shape.claims,
            "scope": shape.scopes.join(" "),
        }),
        id_token: (input.stage == Stage::Authorize)
            .then(|| serde_json::json!({ "claims": shape.id_claims })),
        scopes: serde_json::json!({ "added": added, "removed": removed }),
        changed: run.as_ref().map(|r| r.changed.clone()).unwrap_or_default(),
        logs: run.map(|r| r.logs).unwrap_or_default(),
        timing,
    }
}

fn median(n: u32, mut f: impl FnMut()) -> u64 {
    let mut samples: Vec<u64> = (0..n)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed().as_micros() as u64
        })
        .collect();
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn plugin_config(options: &TestOptions) -> Result<PluginConfig, TestError> {
    let name = options
        .file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("plugin")
        .to_owned();
    let config: HashMap<String, String> = options
        .event
        .config
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => (k.clone(), s.clone()),
            other => (k.clone(), other.to_string()),
        })
        .collect();
    let secrets = options
        .event
        .secrets
        .iter()
        .map(|(k, v)| (k.clone(), PluginSecret::new(v.clone())))
        .collect();
    let origins = options
        .event
        .egress
        .iter()
        .enumerate()
        .map(|(i, text)| {
            text.parse::<Origin>()
                .map_err(|why| TestError::Event(format!("egress[{i}]: {why}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PluginConfig {
        timeout: options.timeout,
        memory_bytes: options.memory_bytes,
        config: Arc::new(config),
        secrets: Arc::new(secrets),
        egress: Arc::new(EgressPolicy {
            origins,
            ..EgressPolicy::default()
        }),
        ..PluginConfig::standalone(name, absolute(&options.file))
    })
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// The event turned into what the pipeline takes.
pub(super) struct Input {
    stage: Stage,
    client: Client,
    api: Option<Api>,
    user: User,
    request: RequestInfo,
    transaction: TransactionInfo,
    shape: TokenShape,
}

impl Input {
    pub(super) fn new(stage: Stage, event: &EventFile) -> Result<Input, TestError> {
        let api = match (&event.api, stage) {
            (Some(api), _) => Some(Api {
                identifier: api.identifier.clone(),
                name: api.name.clone(),
                scopes: api.scopes.clone(),
                token_lifetime: Duration::from_secs(3600),
                user_access: UserAccess::AllowAll,
                client_access: ClientAccess::RequireClientGrant,
                resource_servers: Vec::new(),
                scope_descriptions: Default::default(),
                metadata: api.metadata.clone(),
            }),
            (None, Stage::Authorize) => None,
            (None, Stage::CredentialsExchange) => {
                return Err(TestError::Event(
                    "\"api\": a credentials-exchange event always has an API; leave the key out for the default one".into(),
                ));
            }
        };
        let default_app_type = match stage {
            Stage::CredentialsExchange => AppType::Machine,
            Stage::Authorize => AppType::RegularWeb,
        };
        let client = Client {
            id: event.client.id.clone(),
            name: event.client.name.clone(),
            app_type: event.client.app_type.unwrap_or(default_app_type),
            secret: None,
            keys: None,
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            metadata: event.client.metadata.clone(),
            client_grant_apis: Vec::new(),
            refresh_reuse_leeway: Duration::ZERO,
            id_token_algorithm: crate::config::Algorithm::RS256,
            auth_method: None,
            first_party: true,
            allowed_origins: Vec::new(),
            trace: false,
        };
        let u = &event.user;
        let user = User {
            id: u.id.clone(),
            email: u.email.clone(),
            email_verified: u.email_verified,
            name: u.name.clone(),
            password_hash: String::new(),
            app_metadata: u.app_metadata.clone(),
            user_metadata: u.user_metadata.clone(),
            created_at: 0,
        };
        let t = &event.transaction;
        let grant_type = match (t.grant_type.as_deref(), stage) {
            (None, Stage::CredentialsExchange) | (Some("client_credentials"), _) => {
                "client_credentials"
            }
            (None, Stage::Authorize) | (Some("authorization_code"), _) => "authorization_code",
            (Some("refresh_token"), _) => "refresh_token",
            (Some(other), _) => {
                return Err(TestError::Event(format!(
                    "\"transaction.grant_type\": {other:?} is not one Tessera issues; use client_credentials, authorization_code or refresh_token"
                )));
            }
        };
        let api_scopes = api.as_ref().map(|a| a.scopes.clone()).unwrap_or_default();
        let granted = t
            .granted_scopes
            .clone()
            .or_else(|| event.access_token.scopes.clone())
            .unwrap_or(api_scopes);
        let scopes = event
            .access_token
            .scopes
            .clone()
            .unwrap_or_else(|| granted.clone());
        let method = event.request.method.clone().unwrap_or_else(|| {
            match stage {
                Stage::CredentialsExchange => "POST",
                Stage::Authorize => "GET",
            }
            .to_owned()
        });
        Ok(Input {
            stage,
            request: RequestInfo {
                ip: event.request.ip.clone(),
                user_agent: event.request.user_agent.clone(),
                hostname: event.request.hostname.clone(),
                method,
                params: event
                    .request
                    .params
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            },
            transaction: TransactionInfo {
                id: t.id.clone().unwrap_or_else(|| "test-transaction".into()),
                grant_type,
                requested_scopes: t
                    .requested_scopes
                    .clone()
                    .unwrap_or_else(|| granted.clone()),
                granted_scopes: granted,
                redirect_uri: t.redirect_uri.clone().or_else(|| {
                    (stage == Stage::Authorize).then(|| "https://app.example.com/callback".into())
                }),
                requested_audience: t.requested_audience.clone(),
            },
            shape: TokenShape {
                claims: event.access_token.claims.clone(),
                scopes,
                id_claims: event.id_token.claims.clone(),
            },
            client,
            api,
            user,
        })
    }

    /// Runs the stage with `plugin` alone; returns the result, the token shape
    /// after it, and the trace.
    pub(super) async fn run(
        &self,
        runtime: &Runtime,
        plugin: &Arc<LoadedPlugin>,
    ) -> (Result<(), PipelineError>, TokenShape, Vec<PluginRun>) {
        let open = ClaimsConfig {
            require_namespace: false,
        };
        self.run_with(runtime, plugin, open).await
    }

    /// [`Input::run`] with the rules of `[claims]` (`plugin replay
    /// --config` uses its configuration's).
    pub(super) async fn run_with(
        &self,
        runtime: &Runtime,
        plugin: &Arc<LoadedPlugin>,
        claims: ClaimsConfig,
    ) -> (Result<(), PipelineError>, TokenShape, Vec<PluginRun>) {
        let mut shape = self.shape.clone();
        let mut trace = pipeline::StageTrace::default();
        let plugins = std::slice::from_ref(plugin);
        let result = match self.stage {
            Stage::CredentialsExchange => {
                let Some(api) = &self.api else {
                    let reason = "a credentials-exchange event needs an API".to_owned();
                    let plugin = plugin.config.name.clone();
                    return (
                        Err(PipelineError::Failed { plugin, reason }),
                        shape,
                        Vec::new(),
                    );
                };
                pipeline::credentials_exchange(
                    runtime,
                    plugins,
                    claims,
                    pipeline::CredentialsExchange {
                        client: &self.client,
                        api,
                        request: &self.request,
                        transaction: &self.transaction,
                    },
                    &mut shape,
                    &mut trace,
                )
                .await
            }
            Stage::Authorize => {
                let ceiling = self
                    .api
                    .as_ref()
                    .map(|a| a.scopes.clone())
                    .unwrap_or_default();
                pipeline::authorize(
                    runtime,
                    plugins,
                    claims,
                    pipeline::Authorize {
                        client: &self.client,
                        api: self.api.as_ref(),
                        user: &self.user,
                        request: &self.request,
                        transaction: &self.transaction,
                    },
                    &ceiling,
                    &mut shape,
                    &mut trace,
                )
                .await
            }
        };
        (result, shape, trace.runs)
    }
}
