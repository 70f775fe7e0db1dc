//! Running a stage: the plugins that apply, in configuration order, each in
//! its own `Store` (a fresh one, or an idle instance the plugin keeps for
//! reuse, see [`super::warm`]) with a deadline, a memory cap and bounded
//! output, each seeing the token as the plugins before it left it.
//!
//! A plugin's changes are checked as a whole before any is applied, so a
//! refused change (a reserved claim, a scope it may not add) leaves the token
//! exactly as it was. What a failure does to the request is the plugin's
//! `on_error`: `fail` ends it with `server_error`, `skip` ignores the plugin.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use wasmtime::{Store, Trap, UpdateDeadline};

use super::bindings::types as wit;
use super::convert;
use super::engine::{self, LogLine, PluginState, Runtime};
use super::registry::LoadedPlugin;
use super::warm::{Bound, Idle};
use crate::config::{Api, ClaimsConfig, Client, OnError, Stage, json_len};
use crate::oauth::OAuthError;
use crate::store::User;
use crate::token::is_reserved_claim;

/// At most this many custom claims on one token.
pub const MAX_CLAIMS: usize = 64;
/// At most this many bytes of custom claims (as JSON) on one token.
pub const MAX_CLAIMS_BYTES: usize = 16 * 1024;
/// Longest custom claim name.
pub const MAX_CLAIM_NAME: usize = 256;
/// Extra time past `timeout_ms` before the async backstop drops a call that is
/// blocked in a host function (where epochs are not checked).
const BACKSTOP_GRACE: Duration = Duration::from_millis(50);

/// The HTTP request, as plugins see it.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    /// Peer IP.
    pub ip: String,
    /// `User-Agent`.
    pub user_agent: Option<String>,
    /// `Host`.
    pub hostname: String,
    /// Method.
    pub method: String,
    /// Parameters without secrets.
    pub params: Vec<(String, String)>,
}

/// The protocol state, as plugins see it.
#[derive(Debug, Clone, Default)]
pub struct TransactionInfo {
    /// Also the access token's `jti`.
    pub id: String,
    /// `grant_type`.
    pub grant_type: &'static str,
    /// Scopes asked for.
    pub requested_scopes: Vec<String>,
    /// Scopes granted before plugins.
    pub granted_scopes: Vec<String>,
    /// Redirect URI of a user flow.
    pub redirect_uri: Option<String>,
    /// `audience`/`resource` as asked.
    pub requested_audience: Option<String>,
}

/// The token as the plugins shape it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenShape {
    /// Custom access-token claims.
    pub claims: Map<String, Value>,
    /// Access-token scopes.
    pub scopes: Vec<String>,
    /// Custom ID-token claims.
    pub id_claims: Map<String, Value>,
}

/// What happened when one plugin ran.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PluginRun {
    /// Plugin name.
    pub plugin: String,
    /// Component hash.
    pub sha256: String,
    /// The stage (`credentials-exchange`, `authorize`).
    pub stage: &'static str,
    /// Wall time of instantiate + call, in microseconds.
    pub micros: u64,
    /// Outcome.
    pub outcome: RunOutcome,
    /// What it changed (claim names set or removed, scopes removed or added).
    pub changed: Vec<String>,
    /// What it logged.
    pub logs: Vec<LogLine>,
}

impl PluginRun {
    /// Its labels on `tessera_plugin_call_duration_seconds`.
    pub fn metric_labels(&self) -> crate::metrics::PluginLabels {
        crate::metrics::PluginLabels {
            plugin: self.plugin.clone(),
            sha256: self.sha256.chars().take(12).collect(),
            stage: self.stage,
            outcome: match self.outcome {
                RunOutcome::Applied => "applied",
                RunOutcome::Denied(_) => "denied",
                RunOutcome::Failed(_) => "failed",
                RunOutcome::Skipped(_) => "skipped",
            },
        }
    }
}

/// How one plugin run ended.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "reason")]
pub enum RunOutcome {
    /// Its changes were applied.
    Applied,
    /// It denied the request.
    Denied(String),
    /// It failed and the request failed with it.
    Failed(String),
    /// It failed and was skipped (`on_error = "skip"`).
    Skipped(String),
}

/// Why a stage stopped the request.
#[derive(Debug, Clone)]
pub enum PipelineError {
    /// A plugin denied the request.
    Denied {
        /// Which plugin.
        plugin: String,
        /// The OAuth error it chose.
        error: OAuthError,
    },
    /// A plugin with `on_error = "fail"` failed.
    Failed {
        /// Which plugin.
        plugin: String,
        /// Why.
        reason: String,
    },
}

impl PipelineError {
    /// The OAuth error the client sees.
    pub fn to_oauth(&self) -> OAuthError {
        match self {
            PipelineError::Denied { error, .. } => error.clone(),
            PipelineError::Failed { plugin, reason } => {
                OAuthError::server_error(format!("plugin {plugin:?} failed: {reason}"))
            }
        }
    }
}

/// Input of the credentials-exchange stage.
pub struct CredentialsExchange<'a> {
    /// The authenticated client.
    pub client: &'a Client,
    /// The API.
    pub api: &'a Api,
    /// The request.
    pub request: &'a RequestInfo,
    /// The transaction.
    pub transaction: &'a TransactionInfo,
}

/// Input of the authorize stage.
pub struct Authorize<'a> {
    /// The application.
    pub client: &'a Client,
    /// The API, if any.
    pub api: Option<&'a Api>,
    /// The signed-in user.
    pub user: &'a User,
    /// The request.
    pub request: &'a RequestInfo,
    /// The transaction.
    pub transaction: &'a TransactionInfo,
}

/// One stage's event, converted once; only the token state changes between
/// plugins.
enum Event {
    CredentialsExchange(wit::CredentialsExchangeEvent),
    Authorize(wit::AuthorizeEvent),
}

impl Event {
    fn set_state(&mut self, shape: &TokenShape) {
        match self {
            Event::CredentialsExchange(e) => e.access_token = convert::token_state(shape),
            Event::Authorize(e) => {
                e.access_token = convert::token_state(shape);
                e.id_token = convert::id_token_state(shape);
            }
        }
    }

    fn stage(&self) -> Stage {
        match self {
            Event::CredentialsExchange(_) => Stage::CredentialsExchange,
            Event::Authorize(_) => Stage::Authorize,
        }
    }
}

#[derive(Debug)]
struct DeadlineExceeded;

impl std::fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("deadline exceeded")
    }
}

impl std::error::Error for DeadlineExceeded {}

/// Runs the credentials-exchange stage. The shape starts as the issuer's
/// decision (scopes) and ends as the plugins left it; the trace gets one entry
/// per plugin that ran.
pub async fn credentials_exchange(
    runtime: &Runtime,
    plugins: &[Arc<LoadedPlugin>],
    claims_config: ClaimsConfig,
    input: CredentialsExchange<'_>,
    shape: &mut TokenShape,
    trace: &mut Vec<PluginRun>,
) -> Result<(), PipelineError> {
    let audience = Some(input.api.identifier.as_str());
    if !plugins
        .iter()
        .any(|p| p.runs_for(Stage::CredentialsExchange, audience))
    {
        return Ok(());
    }
    let event = Event::CredentialsExchange(wit::CredentialsExchangeEvent {
        client: convert::client(input.client),
        api: convert::api(input.api),
        request: convert::request(input.request),
        transaction: convert::transaction(input.transaction),
        access_token: convert::token_state(shape),
    });
    run(
        runtime,
        plugins,
        claims_config,
        event,
        audience,
        &[],
        shape,
        trace,
    )
    .await
}

/// Runs the authorize stage. Plugins may add scopes within `scope_ceiling`
/// (the API's scopes the policy allows) and set ID-token claims.
pub async fn authorize(
    runtime: &Runtime,
    plugins: &[Arc<LoadedPlugin>],
    claims_config: ClaimsConfig,
    input: Authorize<'_>,
    scope_ceiling: &[String],
    shape: &mut TokenShape,
    trace: &mut Vec<PluginRun>,
) -> Result<(), PipelineError> {
    let audience = input.api.map(|a| a.identifier.as_str());
    if !plugins
        .iter()
        .any(|p| p.runs_for(Stage::Authorize, audience))
    {
        return Ok(());
    }
    let event = Event::Authorize(wit::AuthorizeEvent {
        client: convert::client(input.client),
        api: input.api.map(convert::api),
        user: convert::user(input.user),
        request: convert::request(input.request),
        transaction: convert::transaction(input.transaction),
        access_token: convert::token_state(shape),
        id_token: convert::id_token_state(shape),
    });
    run(
        runtime,
        plugins,
        claims_config,
        event,
        audience,
        scope_ceiling,
        shape,
        trace,
    )
    .await
}

#[allow(
    clippy::too_many_arguments,
    reason = "one private loop behind the two stage entry points"
)]
async fn run(
    runtime: &Runtime,
    plugins: &[Arc<LoadedPlugin>],
    claims_config: ClaimsConfig,
    mut event: Event,
    audience: Option<&str>,
    scope_ceiling: &[String],
    shape: &mut TokenShape,
    trace: &mut Vec<PluginRun>,
) -> Result<(), PipelineError> {
    let stage = event.stage();
    for plugin in plugins.iter().filter(|p| p.runs_for(stage, audience)) {
        event.set_state(shape);
        let started = Instant::now();
        let (result, logs) = call(runtime, plugin, &event).await;
        let outcome = match result {
            Ok(Ok(changes)) => apply(stage, changes, shape, scope_ceiling, claims_config),
            Ok(Err(denial)) => Err(Decision::Deny(convert::denial(denial))),
            Err(reason) => Err(Decision::Fail(reason)),
        };
        let took = started.elapsed();
        let mut run = PluginRun {
            plugin: plugin.config.name.clone(),
            sha256: plugin.sha256.clone(),
            stage: stage.as_str(),
            micros: took.as_micros() as u64,
            outcome: RunOutcome::Applied,
            changed: Vec::new(),
            logs,
        };
        let stop = match outcome {
            Ok(changed) => {
                run.changed = changed;
                None
            }
            Err(Decision::Deny(error)) => {
                run.outcome = RunOutcome::Denied(error.to_string());
                Some(PipelineError::Denied {
                    plugin: plugin.config.name.clone(),
                    error,
                })
            }
            Err(Decision::Fail(reason)) => {
                tracing::warn!(
                    plugin = %plugin.config.name,
                    sha256 = %plugin.sha256,
                    stage = stage.as_str(),
                    %reason,
                    on_error = ?plugin.config.on_error,
                    logs = %serde_json::to_string(&run.logs).unwrap_or_default(),
                    "plugin failed"
                );
                match plugin.config.on_error {
                    OnError::Fail => {
                        run.outcome = RunOutcome::Failed(reason.clone());
                        Some(PipelineError::Failed {
                            plugin: plugin.config.name.clone(),
                            reason,
                        })
                    }
                    OnError::Skip => {
                        run.outcome = RunOutcome::Skipped(reason);
                        None
                    }
                }
            }
        };
        runtime.metrics().call(&run.metric_labels(), took);
        trace.push(run);
        if let Some(error) = stop {
            return Err(error);
        }
    }
    Ok(())
}

type CallResult = Result<Result<wit::Changes, wit::Denial>, String>;

/// One call with the deadline armed, on an idle instance when the plugin keeps
/// them and one is free, otherwise on a fresh instance in a fresh store.
/// Returns the result and what the plugin logged (also when it trapped).
async fn call(
    runtime: &Runtime,
    plugin: &LoadedPlugin,
    event: &Event,
) -> (CallResult, Vec<LogLine>) {
    let stage = event.stage();
    let timeout = plugin.config.timeout;
    let started = Instant::now();
    let (mut store, reused, calls) = match plugin.pool.take(stage) {
        Some(mut idle) => {
            runtime.refuel(&mut idle.store, &plugin.config);
            (idle.store, Some(idle.instance), idle.calls)
        }
        None => match runtime.slot(timeout).await {
            Ok(slot) => (runtime.store(&plugin.config, Some(slot)), None, 0),
            Err(busy) => {
                let reason = format!(
                    "no plugin instance slot came free within {} ms (all {} busy)",
                    busy.waited.as_millis(),
                    engine::MAX_CONCURRENT_INSTANCES
                );
                return (Err(reason), Vec::new());
            }
        },
    };
    // A wait for a slot comes out of the plugin's time: the whole call is
    // bounded by `timeout_ms`.
    let left = timeout.saturating_sub(started.elapsed());
    arm_deadline(&mut store, left);
    let invoke = async {
        let instance = match reused {
            Some(instance) => instance,
            None => instantiate(plugin, stage, &mut store).await?,
        };
        let result = match (&instance, event) {
            (Bound::CredentialsExchange(i), Event::CredentialsExchange(e)) => {
                i.call_on_credentials_exchange(&mut store, e).await
            }
            (Bound::Authorize(i), Event::Authorize(e)) => i.call_on_authorize(&mut store, e).await,
            _ => Err(wasmtime::Error::msg("an instance of the other stage")),
        }?;
        wasmtime::Result::Ok((result, instance))
    };
    let (result, instance) = match tokio::time::timeout(left + BACKSTOP_GRACE, invoke).await {
        Ok(Ok((result, instance))) => (Ok(result), Some(instance)),
        Ok(Err(e)) => (Err(describe_failure(&e, timeout)), None),
        Err(_) => (
            Err(format!("timed out after {} ms", timeout.as_millis())),
            None,
        ),
    };
    let logs = take_logs(&mut store);
    // Only an instance that returned normally and kept quiet on standard
    // error is reused; anything else may be in a broken state.
    if let Some(instance) = instance
        && !store.data().wrote_stderr()
    {
        plugin.pool.give_back(
            stage,
            Idle {
                store,
                instance,
                calls: calls + 1,
            },
        );
    }
    (result, logs)
}

async fn instantiate(
    plugin: &LoadedPlugin,
    stage: Stage,
    store: &mut Store<PluginState>,
) -> wasmtime::Result<Bound> {
    let missing = || wasmtime::Error::msg(format!("does not export the {} stage", stage.as_str()));
    Ok(match stage {
        Stage::CredentialsExchange => {
            let pre = plugin.credentials_exchange.as_ref().ok_or_else(missing)?;
            Bound::CredentialsExchange(pre.instantiate_async(store).await?)
        }
        Stage::Authorize => {
            let pre = plugin.authorize.as_ref().ok_or_else(missing)?;
            Bound::Authorize(pre.instantiate_async(store).await?)
        }
    })
}

enum Decision {
    Deny(OAuthError),
    Fail(String),
}

/// Interrupts the call at `timeout`, yielding to the executor on every epoch
/// tick before that so a busy plugin never starves other requests.
fn arm_deadline(store: &mut Store<PluginState>, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= deadline {
            Err(wasmtime::Error::new(DeadlineExceeded))
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
}

fn take_logs(store: &mut Store<PluginState>) -> Vec<LogLine> {
    let stderr = store.data().stderr();
    let state = store.data_mut();
    let mut logs = std::mem::take(&mut state.logs);
    let dropped = std::mem::take(&mut state.dropped_logs);
    if dropped > 0 {
        logs.push(LogLine {
            level: "warn",
            message: format!("{dropped} more log lines dropped"),
        });
    }
    if !stderr.is_empty() {
        logs.push(LogLine {
            level: "error",
            message: format!("stderr: {stderr}"),
        });
    }
    logs
}

fn describe_failure(e: &wasmtime::Error, timeout: Duration) -> String {
    if e.downcast_ref::<DeadlineExceeded>().is_some() {
        return format!("timed out after {} ms", timeout.as_millis());
    }
    if let Some(trap) = e.downcast_ref::<Trap>() {
        return match trap {
            Trap::StackOverflow => "trapped: stack overflow".to_owned(),
            Trap::OutOfFuel => "ran out of fuel (its fuel budget per call)".to_owned(),
            Trap::UnreachableCodeReached => {
                "trapped: unreachable (a panic or abort in the plugin)".to_owned()
            }
            other => format!("trapped: {other}"),
        };
    }
    // A failure inside the guest reads "error while executing at wasm
    // backtrace:" and then frames; the reason is the innermost cause.
    let text = format!("{e:#}");
    let first = text.lines().next().unwrap_or("failed");
    if first.starts_with("too much data is being copied between the host and the guest") {
        return format!(
            "passed the host more than {} bytes at once (its result, or one host call); \
             refused while it was read, before being copied",
            engine::MAX_TRANSFER_BYTES
        );
    }
    if first.starts_with("error while executing") {
        let cause = e.root_cause().to_string();
        if let Some(line) = cause.lines().next().filter(|l| !l.is_empty()) {
            return line.to_owned();
        }
    }
    first.to_owned()
}

/// Checks a plugin's changes against the stage's rules and, if all pass,
/// applies them. Returns a summary of what changed.
fn apply(
    stage: Stage,
    changes: wit::Changes,
    shape: &mut TokenShape,
    scope_ceiling: &[String],
    claims_config: ClaimsConfig,
) -> Result<Vec<String>, Decision> {
    let fail = |m: String| Decision::Fail(m);
    let mut next = shape.clone();
    let mut summary = Vec::new();

    if stage == Stage::CredentialsExchange && !changes.id_token_claims.is_empty() {
        return Err(fail(
            "set id-token claims, but there is no ID token in credentials-exchange".into(),
        ));
    }
    for (target, list) in [
        (&mut next.claims, changes.access_token_claims),
        (&mut next.id_claims, changes.id_token_claims),
    ] {
        for (name, value) in list {
            check_claim_name(&name, claims_config).map_err(fail)?;
            match convert::value_from_wit(value)
                .map_err(|e| fail(format!("claim {name:?}: {e}")))?
            {
                Some(v) => {
                    summary.push(format!("set {name}"));
                    target.insert(name, v);
                }
                None => {
                    summary.push(format!("removed {name}"));
                    target.remove(&name);
                }
            }
        }
    }
    for scope in changes.add_scopes {
        if stage == Stage::CredentialsExchange {
            return Err(fail(format!(
                "added scope {scope:?}; scopes can only be removed in credentials-exchange"
            )));
        }
        if !scope_ceiling.contains(&scope) {
            return Err(fail(format!(
                "added scope {scope:?}, which is outside what the API and policy allow"
            )));
        }
        if !next.scopes.contains(&scope) {
            summary.push(format!("added scope {scope}"));
            next.scopes.push(scope);
        }
    }
    for scope in changes.remove_scopes {
        if let Some(i) = next.scopes.iter().position(|s| *s == scope) {
            summary.push(format!("removed scope {scope}"));
            next.scopes.remove(i);
        }
    }
    for claims in [&next.claims, &next.id_claims] {
        if claims.len() > MAX_CLAIMS {
            return Err(fail(format!(
                "the token would carry {} custom claims; the limit is {MAX_CLAIMS}",
                claims.len()
            )));
        }
        let bytes = json_len(claims);
        if bytes > MAX_CLAIMS_BYTES {
            return Err(fail(format!(
                "custom claims would take {bytes} bytes; the limit is {MAX_CLAIMS_BYTES}"
            )));
        }
    }
    *shape = next;
    Ok(summary)
}

fn check_claim_name(name: &str, claims_config: ClaimsConfig) -> Result<(), String> {
    if is_reserved_claim(name) {
        return Err(format!(
            "tried to set claim {name:?}, which is reserved for the issuer"
        ));
    }
    if name.is_empty() || name.len() > MAX_CLAIM_NAME || name.chars().any(char::is_control) {
        return Err(format!(
            "claim name {:?} is empty, longer than {MAX_CLAIM_NAME} bytes, or has control characters",
            name.chars().take(40).collect::<String>()
        ));
    }
    if claims_config.require_namespace
        && !(name.starts_with("https://")
            || name.starts_with("http://")
            || name.starts_with("urn:"))
    {
        return Err(format!(
            "claim {name:?} is not namespaced; [claims] require_namespace asks for a URL or URN"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes() -> wit::Changes {
        wit::Changes {
            access_token_claims: vec![],
            id_token_claims: vec![],
            add_scopes: vec![],
            remove_scopes: vec![],
        }
    }

    const OPEN: ClaimsConfig = ClaimsConfig {
        require_namespace: false,
    };

    #[test]
    fn reserved_claims_fail_and_change_nothing() {
        let mut shape = TokenShape {
            scopes: vec!["a".into()],
            ..Default::default()
        };
        let before = shape.clone();
        let mut c = changes();
        c.access_token_claims = vec![
            ("ok".into(), wit::Value::Text("x".into())),
            ("sub".into(), wit::Value::Text("evil".into())),
        ];
        c.remove_scopes = vec!["a".into()];
        let Err(Decision::Fail(reason)) =
            apply(Stage::CredentialsExchange, c, &mut shape, &[], OPEN)
        else {
            panic!("reserved claim accepted");
        };
        assert!(reason.contains("\"sub\""), "{reason}");
        assert_eq!(shape, before);
    }

    #[test]
    fn credentials_exchange_can_only_remove_scopes() {
        let mut shape = TokenShape {
            scopes: vec!["a".into(), "b".into()],
            ..Default::default()
        };
        let mut c = changes();
        c.remove_scopes = vec!["a".into(), "zzz".into()];
        c.access_token_claims = vec![
            ("n".into(), wit::Value::Integer(1)),
            ("gone".into(), wit::Value::Null),
        ];
        apply(Stage::CredentialsExchange, c, &mut shape, &[], OPEN)
            .ok()
            .expect("applied");
        assert_eq!(shape.scopes, ["b"]);
        assert_eq!(shape.claims["n"], 1);

        let mut c = changes();
        c.add_scopes = vec!["a".into()];
        assert!(apply(Stage::CredentialsExchange, c, &mut shape, &[], OPEN).is_err());
    }

    #[test]
    fn authorize_adds_only_within_the_ceiling() {
        let mut shape = TokenShape::default();
        let ceiling = vec!["read".to_owned()];
        let mut c = changes();
        c.add_scopes = vec!["read".into()];
        apply(Stage::Authorize, c, &mut shape, &ceiling, OPEN)
            .ok()
            .expect("applied");
        assert_eq!(shape.scopes, ["read"]);
        let mut c = changes();
        c.add_scopes = vec!["admin".into()];
        assert!(apply(Stage::Authorize, c, &mut shape, &ceiling, OPEN).is_err());
    }

    #[test]
    fn limits_and_namespaces() {
        let mut shape = TokenShape::default();
        let mut c = changes();
        c.access_token_claims = (0..=MAX_CLAIMS)
            .map(|i| (format!("c{i}"), wit::Value::Boolean(true)))
            .collect();
        assert!(apply(Stage::CredentialsExchange, c, &mut shape, &[], OPEN).is_err());

        let mut c = changes();
        c.access_token_claims =
            vec![("big".into(), wit::Value::Text("x".repeat(MAX_CLAIMS_BYTES)))];
        assert!(apply(Stage::CredentialsExchange, c, &mut shape, &[], OPEN).is_err());

        let strict = ClaimsConfig {
            require_namespace: true,
        };
        let mut c = changes();
        c.access_token_claims = vec![("plain".into(), wit::Value::Boolean(true))];
        assert!(apply(Stage::CredentialsExchange, c, &mut shape, &[], strict).is_err());
        let mut c = changes();
        c.access_token_claims = vec![("https://x.example/plain".into(), wit::Value::Boolean(true))];
        assert!(apply(Stage::CredentialsExchange, c, &mut shape, &[], strict).is_ok());
    }
}

/// The output checks of [`apply`] over plain data, for fuzzing and property
/// tests: the same rules, reached without a component.
#[doc(hidden)]
pub mod output {
    use super::{ClaimsConfig, Decision, Stage, TokenShape, wit};

    /// A claim value as the WIT `value` variant carries it.
    #[derive(Debug, Clone)]
    pub enum ClaimValue {
        /// `null`: removes the claim.
        Null,
        /// `boolean`.
        Boolean(bool),
        /// `integer`.
        Integer(i64),
        /// `number`.
        Number(f64),
        /// `text`.
        Text(String),
        /// `text-list`.
        TextList(Vec<String>),
        /// `json`: JSON text.
        Json(String),
    }

    /// A plugin's `changes` record.
    #[derive(Debug, Clone, Default)]
    pub struct Output {
        /// `access-token-claims`.
        pub access_token_claims: Vec<(String, ClaimValue)>,
        /// `id-token-claims`.
        pub id_token_claims: Vec<(String, ClaimValue)>,
        /// `add-scopes`.
        pub add_scopes: Vec<String>,
        /// `remove-scopes`.
        pub remove_scopes: Vec<String>,
    }

    fn to_wit(v: ClaimValue) -> wit::Value {
        match v {
            ClaimValue::Null => wit::Value::Null,
            ClaimValue::Boolean(b) => wit::Value::Boolean(b),
            ClaimValue::Integer(i) => wit::Value::Integer(i),
            ClaimValue::Number(n) => wit::Value::Number(n),
            ClaimValue::Text(s) => wit::Value::Text(s),
            ClaimValue::TextList(l) => wit::Value::TextList(l),
            ClaimValue::Json(j) => wit::Value::Json(j),
        }
    }

    /// Applies `output` to `shape` as the pipeline would at `stage`; on
    /// refusal, `shape` is unchanged and the reason is returned.
    pub fn apply(
        stage: Stage,
        output: Output,
        shape: &mut TokenShape,
        scope_ceiling: &[String],
        require_namespace: bool,
    ) -> Result<Vec<String>, String> {
        let claims = |list: Vec<(String, ClaimValue)>| {
            list.into_iter()
                .map(|(k, v)| (k, to_wit(v)))
                .collect::<Vec<_>>()
        };
        let changes = wit::Changes {
            access_token_claims: claims(output.access_token_claims),
            id_token_claims: claims(output.id_token_claims),
            add_scopes: output.add_scopes,
            remove_scopes: output.remove_scopes,
        };
        super::apply(
            stage,
            changes,
            shape,
            scope_ceiling,
            ClaimsConfig { require_namespace },
        )
        .map_err(|d| match d {
            Decision::Fail(reason) => reason,
            Decision::Deny(e) => e.to_string(),
        })
    }
}
