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
use std::time::Instant;

use super::compare::{self, Difference, Verdict, compare};
use super::engine::{LogLine, Runtime};
use super::event::{Changes, Event, Facts, RequestInfo, TokenShape, TransactionInfo};
use super::lease::{self, Lease};
use super::registry::LoadedPlugin;
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
    /// The token as it was given to the plugin.
    pub token_before: TokenShape,
    /// The token as the plugin left it, when its changes were applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_after: Option<TokenShape>,
}

/// What a trace keeps of a stage: each plugin that ran, and what the stage
/// gave them besides the token, so a recorded request can be run again
/// against another version of a plugin (`tessera plugin replay`).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StageTrace {
    /// Each plugin that ran, in order.
    #[serde(rename = "plugins")]
    pub runs: Vec<PluginRun>,
    /// The stage's facts (client, API, user, request, transaction), once a
    /// plugin ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<Arc<Facts>>,
    /// Shadow runs this request was picked for, to start once it is
    /// answered ([`run_shadow`]).
    #[serde(skip)]
    pub shadows: Vec<ShadowJob>,
}

/// A sampled call of a plugin that has a candidate build (`shadow_path`):
/// the candidate is to run on the same event and token, off the request's
/// path, and its result is compared with the live run's.
#[derive(Clone)]
pub struct ShadowJob {
    /// The live plugin's name.
    pub plugin: String,
    /// The candidate.
    pub candidate: Arc<LoadedPlugin>,
    /// Its shadow runs running now (at most [`MAX_SHADOW_RUNS`]).
    ///
    /// [`MAX_SHADOW_RUNS`]: super::registry::MAX_SHADOW_RUNS
    pub running: Arc<tokio::sync::Semaphore>,
    stage: Stage,
    facts: Arc<Facts>,
    token: TokenShape,
    scope_ceiling: Vec<String>,
    claims_config: ClaimsConfig,
    live: Verdict,
    live_micros: u64,
}

impl std::fmt::Debug for ShadowJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShadowJob")
            .field("plugin", &self.plugin)
            .field("stage", &self.stage)
            .finish_non_exhaustive()
    }
}

/// A shadow run, as the trace of the request it shadowed records it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ShadowRun {
    /// The live plugin's name.
    pub plugin: String,
    /// The candidate's component hash.
    pub sha256: String,
    /// The stage.
    pub stage: &'static str,
    /// The live run's decision: `allow`, `deny` or `fail`.
    pub live: &'static str,
    /// The candidate's.
    pub candidate: &'static str,
    /// `same`, `changed` or `flipped`.
    pub result: &'static str,
    /// How the candidate's result differs from the live one.
    pub differences: Vec<Difference>,
    /// The live call's time, in microseconds.
    pub live_micros: u64,
    /// The candidate's.
    pub micros: u64,
    /// What the candidate logged.
    pub logs: Vec<LogLine>,
}

/// Runs the candidate of `job` and compares its result with the live run's.
pub async fn run_shadow(runtime: &Runtime, job: ShadowJob) -> ShadowRun {
    let started = Instant::now();
    let event = Event {
        stage: job.stage,
        facts: job.facts.clone(),
        token: job.token.clone(),
    };
    let (result, logs) = call(runtime, &job.candidate, event).await;
    let mut shape = job.token;
    let candidate = match settle(
        job.stage,
        result,
        &mut shape,
        &job.scope_ceiling,
        job.claims_config,
    ) {
        Ok(_) => Verdict::Allowed(shape),
        Err(Decision::Deny(error)) => Verdict::Denied(error.to_string()),
        Err(Decision::Fail(reason)) => Verdict::Failed(reason),
    };
    let micros = started.elapsed().as_micros() as u64;
    let differences = compare(&job.live, &candidate);
    ShadowRun {
        result: compare::result(&differences),
        plugin: job.plugin,
        sha256: job.candidate.sha256.clone(),
        stage: job.stage.as_str(),
        live: job.live.word(),
        candidate: candidate.word(),
        differences,
        live_micros: job.live_micros,
        micros,
        logs,
    }
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

/// Runs the credentials-exchange stage. The shape starts as the issuer's
/// decision (scopes) and ends as the plugins left it; the trace gets one entry
/// per plugin that ran.
pub async fn credentials_exchange(
    runtime: &Runtime,
    plugins: &[Arc<LoadedPlugin>],
    claims_config: ClaimsConfig,
    input: CredentialsExchange<'_>,
    shape: &mut TokenShape,
    trace: &mut StageTrace,
) -> Result<(), PipelineError> {
    let audience = Some(input.api.identifier.as_str());
    if !plugins
        .iter()
        .any(|p| p.runs_for(Stage::CredentialsExchange, audience))
    {
        return Ok(());
    }
    let facts = Facts::new(
        input.client,
        Some(input.api),
        None,
        input.request,
        input.transaction,
    );
    run(
        runtime,
        plugins,
        claims_config,
        Stage::CredentialsExchange,
        facts,
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
    trace: &mut StageTrace,
) -> Result<(), PipelineError> {
    let audience = input.api.map(|a| a.identifier.as_str());
    if !plugins
        .iter()
        .any(|p| p.runs_for(Stage::Authorize, audience))
    {
        return Ok(());
    }
    let facts = Facts::new(
        input.client,
        input.api,
        Some(input.user),
        input.request,
        input.transaction,
    );
    run(
        runtime,
        plugins,
        claims_config,
        Stage::Authorize,
        facts,
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
    stage: Stage,
    facts: Facts,
    audience: Option<&str>,
    scope_ceiling: &[String],
    shape: &mut TokenShape,
    trace: &mut StageTrace,
) -> Result<(), PipelineError> {
    let facts = Arc::new(facts);
    trace.event = Some(facts.clone());
    for plugin in plugins.iter().filter(|p| p.runs_for(stage, audience)) {
        let token_before = shape.clone();
        let event = Event {
            stage,
            facts: facts.clone(),
            token: token_before.clone(),
        };
        let started = Instant::now();
        let (result, logs) = call(runtime, plugin, event).await;
        let outcome = settle(stage, result, shape, scope_ceiling, claims_config);
        let took = started.elapsed();
        let mut run = PluginRun {
            plugin: plugin.config.name.clone(),
            sha256: plugin.sha256.clone(),
            stage: stage.as_str(),
            micros: took.as_micros() as u64,
            outcome: RunOutcome::Applied,
            changed: Vec::new(),
            logs,
            token_before,
            token_after: None,
        };
        let stop = match outcome {
            Ok(changed) => {
                run.changed = changed;
                run.token_after = Some(shape.clone());
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
        if let Some(candidate) = plugin.shadow.as_ref().filter(|c| c.picks()) {
            trace.shadows.push(ShadowJob {
                plugin: plugin.config.name.clone(),
                candidate: candidate.plugin.clone(),
                running: candidate.running.clone(),
                stage,
                facts: facts.clone(),
                token: run.token_before.clone(),
                scope_ceiling: scope_ceiling.to_vec(),
                claims_config,
                live: Verdict::recorded(&run.outcome, run.token_after.as_ref()),
                live_micros: run.micros,
            });
        }
        trace.runs.push(run);
        if let Some(error) = stop {
            return Err(error);
        }
    }
    Ok(())
}

/// One call on a leased instance; the result, and what the plugin logged
/// (also when it trapped). When the call left the plugin with fewer
/// instances than it keeps warm (one retired or was dropped), a replacement
/// starts in the background.
async fn call(
    runtime: &Runtime,
    plugin: &Arc<LoadedPlugin>,
    event: Event,
) -> (Result<super::event::Answer, String>, Vec<LogLine>) {
    let stage = event.stage;
    let mut lease = match Lease::acquire(runtime, plugin, stage).await {
        Ok(lease) => lease,
        Err(reason) => return (Err(reason), Vec::new()),
    };
    let result = lease.call(event).await;
    let logs = lease.finish();
    if plugin.pool.short(stage) {
        let (runtime, plugin) = (runtime.clone(), plugin.clone());
        tokio::spawn(async move { lease::top_up(&runtime, &plugin, stage).await });
    }
    (result, logs)
}

enum Decision {
    Deny(OAuthError),
    Fail(String),
}

/// What a call's result does to `shape`: its changes applied (and a summary
/// of them), or the denial or failure it ends in.
fn settle(
    stage: Stage,
    result: Result<super::event::Answer, String>,
    shape: &mut TokenShape,
    scope_ceiling: &[String],
    claims_config: ClaimsConfig,
) -> Result<Vec<String>, Decision> {
    match result {
        Ok(Ok(changes)) => apply(stage, changes, shape, scope_ceiling, claims_config),
        Ok(Err(denial)) => Err(Decision::Deny(denial.into_oauth())),
        Err(reason) => Err(Decision::Fail(reason)),
    }
}

/// Checks a plugin's changes against the stage's rules and, if all pass,
/// applies them. Returns a summary of what changed.
fn apply(
    stage: Stage,
    changes: Changes,
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
            match value
                .into_json()
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
    use crate::plugin::event::ClaimValue as V;

    fn changes() -> Changes {
        Changes::default()
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
            ("ok".into(), V::Text("x".into())),
            ("sub".into(), V::Text("evil".into())),
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
        c.access_token_claims = vec![("n".into(), V::Integer(1)), ("gone".into(), V::Null)];
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
            .map(|i| (format!("c{i}"), V::Boolean(true)))
            .collect();
        assert!(apply(Stage::CredentialsExchange, c, &mut shape, &[], OPEN).is_err());

        let mut c = changes();
        c.access_token_claims = vec![("big".into(), V::Text("x".repeat(MAX_CLAIMS_BYTES)))];
        assert!(apply(Stage::CredentialsExchange, c, &mut shape, &[], OPEN).is_err());

        let strict = ClaimsConfig {
            require_namespace: true,
        };
        let mut c = changes();
        c.access_token_claims = vec![("plain".into(), V::Boolean(true))];
        assert!(apply(Stage::CredentialsExchange, c, &mut shape, &[], strict).is_err());
        let mut c = changes();
        c.access_token_claims = vec![("https://x.example/plain".into(), V::Boolean(true))];
        assert!(apply(Stage::CredentialsExchange, c, &mut shape, &[], strict).is_ok());
    }
}

/// The output checks of [`apply`] over plain data, for fuzzing and property
/// tests: the same rules, reached without a component.
#[doc(hidden)]
pub mod output {
    use super::{ClaimsConfig, Decision, Stage, TokenShape};
    pub use crate::plugin::event::{Changes as Output, ClaimValue};

    /// Applies `output` to `shape` as the pipeline would at `stage`; on
    /// refusal, `shape` is unchanged and the reason is returned.
    pub fn apply(
        stage: Stage,
        output: Output,
        shape: &mut TokenShape,
        scope_ceiling: &[String],
        require_namespace: bool,
    ) -> Result<Vec<String>, String> {
        super::apply(
            stage,
            output,
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
