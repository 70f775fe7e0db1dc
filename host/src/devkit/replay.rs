//! `tessera plugin replay NEW.wasm --traces FILE`: runs the events recorded
//! in decision traces (`tessera trace --json`, or a `GET /admin/traces`
//! answer saved to a file) against a new build of a plugin, and says per
//! event what would change against what the running version did: the
//! decision, the claims, the scopes. A decision that flips (a token issued
//! where none was, or the reverse) makes the command exit 1, so a plugin's
//! CI can refuse the build.
//!
//! Each trace recorded the stage's facts (client, API, user, request,
//! transaction) and, for each plugin, the token it was given and the one it
//! left; the replay gives the new build the same facts and the same token.
//! The fields `[trace] redact` hides reach it as `<redacted>`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use super::run::{EventFile, Input};
use crate::config::{ClaimsConfig, PluginConfig, Stage};
use crate::plugin::compare::{Difference, Verdict, compare, result};
use crate::plugin::{Runtime, TokenShape};

/// What to replay, against what.
#[derive(Debug)]
pub struct ReplayOptions {
    /// The new build.
    pub file: PathBuf,
    /// The recorded traces.
    pub traces: PathBuf,
    /// The plugin whose recorded runs to compare with; needed when the
    /// traces record runs of several.
    pub plugin: Option<String>,
    /// The configuration whose `[[plugins]]` entry gives the plugin its
    /// `config`, `secrets`, deadline and memory cap.
    pub config: Option<crate::config::Config>,
    /// Compiled components are cached here.
    pub cache_dir: PathBuf,
    /// The deadline of each call, without `config`.
    pub timeout: Duration,
    /// The memory cap of each call, without `config`.
    pub memory_bytes: usize,
}

/// One recorded event, run again.
#[derive(Debug, serde::Serialize)]
pub struct Replayed {
    /// The trace's id (the token's `jti`, or the sign-in's).
    pub id: String,
    /// The stage.
    pub stage: String,
    /// The client.
    pub client: Option<String>,
    /// The API.
    pub api: Option<String>,
    /// What the recorded run decided: `allow`, `deny` or `fail`.
    pub recorded: &'static str,
    /// What the new build decides.
    pub replayed: &'static str,
    /// How the new build's result differs from the recorded one.
    pub differences: Vec<Difference>,
}

impl Replayed {
    /// Whether the new build issues a token where the recorded run did not,
    /// or the reverse.
    pub fn flipped(&self) -> bool {
        result(&self.differences) == "flipped"
    }
}

/// What a replay found.
#[derive(Debug, serde::Serialize)]
pub struct Replay {
    /// The plugin whose runs were compared.
    pub plugin: String,
    /// Each event replayed, in the file's order.
    pub events: Vec<Replayed>,
    /// Traces that ran the plugin but recorded no event (recorded by a
    /// Tessera before replay existed).
    pub without_event: usize,
}

impl Replay {
    /// Events whose decision flipped.
    pub fn flips(&self) -> usize {
        self.events.iter().filter(|e| e.flipped()).count()
    }

    /// The human-readable form: a line per event, the differences under
    /// it, and a summary.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for e in &self.events {
            let whom = match (&e.client, &e.api) {
                (Some(c), Some(a)) => format!("client {c}, api {a}"),
                (Some(c), None) => format!("client {c}"),
                _ => String::new(),
            };
            let verdict = match result(&e.differences) {
                "flipped" => format!("FLIPPED {} → {}", e.recorded, e.replayed),
                "changed" => format!("{} change(s)", e.differences.len()),
                same => same.to_owned(),
            };
            out.push_str(&format!("{}  {}  {whom}: {verdict}\n", e.id, e.stage));
            for d in &e.differences {
                out.push_str(&format!("    {d}\n"));
            }
        }
        let changed = self
            .events
            .iter()
            .filter(|e| !e.differences.is_empty())
            .count();
        out.push_str(&format!(
            "{} event(s) of plugin {:?}: {} the same, {changed} changed, {} decision(s) flipped",
            self.events.len(),
            self.plugin,
            self.events.len() - changed,
            self.flips()
        ));
        if self.without_event > 0 {
            out.push_str(&format!(
                "; {} trace(s) recorded no event and were left out",
                self.without_event
            ));
        }
        out.push('\n');
        out
    }
}

/// Replays the traces of `options`.
pub fn replay(options: &ReplayOptions) -> anyhow::Result<Replay> {
    let shown = options.traces.display();
    let text = std::fs::read_to_string(&options.traces)
        .map_err(|e| anyhow::anyhow!("{shown}: cannot read the traces: {e}"))?;
    let traces = parse_traces(&text).map_err(|why| anyhow::anyhow!("{shown}: {why}"))?;
    let name = plugin_name(&traces, options.plugin.as_deref())
        .map_err(|why| anyhow::anyhow!("{shown}: {why}"))?;
    let config = plugin_config(options, &name)?;
    let runtime = Runtime::new().map_err(|e| anyhow::anyhow!("{e:#}"))?;
    let settings = super::runtime_settings(&options.cache_dir);
    let plugin = Arc::new(crate::plugin::registry::load(
        &runtime,
        &config,
        &settings,
        &[],
    )?);
    let tokio = tokio::runtime::Builder::new_current_thread()
        // The network too: a plugin may send HTTP requests (egress).
        .enable_all()
        .build()?;

    let mut replay = Replay {
        plugin: name.clone(),
        events: Vec::new(),
        without_event: 0,
    };
    for trace in &traces {
        let runs = trace
            .pointer("/decision/plugins")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|r| r.get("plugin").and_then(Value::as_str) == Some(&name));
        for run in runs {
            let Some(facts) = trace.pointer("/decision/event").filter(|e| e.is_object()) else {
                replay.without_event += 1;
                continue;
            };
            let id = text_at(trace, "/id").unwrap_or_default();
            let stage = match text_at(run, "/stage").as_deref() {
                Some("authorize") => Stage::Authorize,
                Some("credentials-exchange") => Stage::CredentialsExchange,
                other => anyhow::bail!("{shown}: trace {id}: a run of an unknown stage {other:?}"),
            };
            if !plugin.exports.contains(stage) {
                anyhow::bail!(
                    "{}: does not export the {} stage that trace {id} ran {name:?} at",
                    options.file.display(),
                    stage.as_str()
                );
            }
            let event = event_file(facts, run.get("token_before"))
                .map_err(|why| anyhow::anyhow!("{shown}: trace {id}: {why}"))?;
            let input = Input::new(stage, &event)?;
            let claims = options.config.as_ref().map_or(
                ClaimsConfig {
                    require_namespace: false,
                },
                |c| c.claims,
            );
            let (result, shape, _) = tokio.block_on(input.run_with(&runtime, &plugin, claims));
            let replayed = Verdict::of_stage(result, shape);
            let recorded = recorded_verdict(run);
            replay.events.push(Replayed {
                id,
                stage: stage.as_str().to_owned(),
                client: text_at(trace, "/client"),
                api: text_at(trace, "/decision/api"),
                recorded: recorded.word(),
                replayed: replayed.word(),
                differences: compare(&recorded, &replayed),
            });
        }
    }
    Ok(replay)
}

fn text_at(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The traces in `text`: a `GET /admin/traces` answer (`{"traces": […]}`),
/// a JSON array, or one trace per line as `tessera trace --json` and
/// `?follow=true` print them (their `{"missed": N}` lines are skipped).
fn parse_traces(text: &str) -> Result<Vec<Value>, String> {
    if let Ok(whole) = serde_json::from_str::<Value>(text) {
        return match whole {
            Value::Array(traces) => Ok(traces),
            Value::Object(mut o) if o.contains_key("traces") => match o.remove("traces") {
                Some(Value::Array(traces)) => Ok(traces),
                _ => Err("\"traces\" is not a list".into()),
            },
            Value::Object(o) if o.contains_key("decision") => Ok(vec![Value::Object(o)]),
            _ => Err("is JSON, but neither traces nor a list of them".into()),
        };
    }
    let mut traces = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line).map_err(|e| {
            format!(
                "line {}: not JSON ({e}); expected one trace per line",
                n + 1
            )
        })?;
        if v.get("missed").is_none() {
            traces.push(v);
        }
    }
    Ok(traces)
}

/// The plugin to compare: the one asked for, or the only one the traces
/// ran.
fn plugin_name(traces: &[Value], asked: Option<&str>) -> Result<String, String> {
    let mut names: Vec<&str> = traces
        .iter()
        .filter_map(|t| t.pointer("/decision/plugins").and_then(Value::as_array))
        .flatten()
        .filter_map(|r| r.get("plugin").and_then(Value::as_str))
        .collect();
    names.sort_unstable();
    names.dedup();
    match (asked, names.as_slice()) {
        (Some(name), _) if names.contains(&name) => Ok(name.to_owned()),
        (Some(name), []) => Err(format!("no trace ran a plugin, so none ran {name:?}")),
        (Some(name), ran) => Err(format!(
            "no trace ran a plugin named {name:?} (they ran: {})",
            ran.join(", ")
        )),
        (None, [one]) => Ok((*one).to_owned()),
        (None, []) => Err(
            "no trace ran a plugin; record some with plugins configured, then `tessera trace --json`"
                .into(),
        ),
        (None, several) => Err(format!(
            "the traces ran several plugins ({}); pass --plugin NAME",
            several.join(", ")
        )),
    }
}

/// The configuration the new build runs with: the `[[plugins]]` entry named
/// `name` in `--config` (its `config`, `secrets`, deadline, memory cap), or
/// the defaults of `tessera plugin test`.
fn plugin_config(options: &ReplayOptions, name: &str) -> anyhow::Result<PluginConfig> {
    let file = std::path::absolute(&options.file).unwrap_or_else(|_| options.file.clone());
    let Some(config) = &options.config else {
        return Ok(PluginConfig {
            timeout: options.timeout,
            memory_bytes: options.memory_bytes,
            ..PluginConfig::standalone(name.to_owned(), file)
        });
    };
    let entry = config.plugin(name).map_err(anyhow::Error::msg)?;
    Ok(PluginConfig {
        key: String::new(),
        written_path: file.clone(),
        path: file,
        // The new build runs offline here; signing it comes at deployment.
        signers: Vec::new(),
        warm_instances: Some(0),
        ..entry.clone()
    })
}

/// The recorded run's verdict, from its `outcome` and `token_after`.
fn recorded_verdict(run: &Value) -> Verdict {
    let reason = text_at(run, "/outcome/reason").unwrap_or_default();
    match text_at(run, "/outcome/kind").as_deref() {
        Some("applied") => Verdict::Allowed(shape(run.get("token_after"))),
        Some("denied") => Verdict::Denied(reason),
        _ => Verdict::Failed(reason),
    }
}

/// A token as a trace writes it (`{"access_token": {"claims", "scopes"},
/// "id_token": {"claims"}}`).
fn shape(v: Option<&Value>) -> TokenShape {
    let map = |p: &str| {
        v.and_then(|v| v.pointer(p))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    TokenShape {
        claims: map("/access_token/claims"),
        scopes: v
            .and_then(|v| v.pointer("/access_token/scopes"))
            .and_then(|s| serde_json::from_value(s.clone()).ok())
            .unwrap_or_default(),
        id_claims: map("/id_token/claims"),
    }
}

/// The event file `tessera plugin test` reads, from a trace's recorded
/// facts and the token a run was given.
fn event_file(facts: &Value, token: Option<&Value>) -> Result<EventFile, String> {
    let mut event = Map::new();
    for part in ["client", "api", "user", "request", "transaction"] {
        let Some(value) = facts.get(part) else {
            continue;
        };
        // A user flow's user may lack an email; the event file's user is
        // filled with defaults instead of nulls.
        let mut value = value.clone();
        if let Value::Object(o) = &mut value {
            o.retain(|_, v| !v.is_null());
        }
        if part == "user" && value.is_null() {
            continue;
        }
        event.insert(part.to_owned(), value);
    }
    // Recorded as [name, value] pairs; the event file has an object.
    if let Some(params) = event
        .get_mut("request")
        .and_then(|r| r.get_mut("params"))
        .filter(|p| p.is_array())
    {
        let pairs: Vec<(String, String)> =
            serde_json::from_value(params.take()).map_err(|e| format!("request.params: {e}"))?;
        *params = Value::Object(
            pairs
                .into_iter()
                .map(|(k, v)| (k, Value::from(v)))
                .collect(),
        );
    }
    if let Some(token) = token {
        for part in ["access_token", "id_token"] {
            if let Some(t) = token.get(part) {
                event.insert(part.to_owned(), t.clone());
            }
        }
    }
    serde_json::from_value(Value::Object(event)).map_err(|e| format!("the recorded event: {e}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn traces_are_read_from_an_answer_a_list_or_lines() {
        let t = json!({"id": "a", "decision": {"plugins": []}});
        for text in [
            json!({ "traces": [t.clone()] }).to_string(),
            json!([t.clone()]).to_string(),
            format!("{t}\n{{\"missed\": 3}}\n{t}\n"),
        ] {
            let read = parse_traces(&text).expect("traces");
            assert!(
                !read.is_empty() && read.iter().all(|r| r["id"] == "a"),
                "{text}"
            );
        }
        assert!(
            parse_traces("{\"a\":1}\nnot json")
                .unwrap_err()
                .contains("line 2")
        );
    }

    #[test]
    fn the_plugin_is_the_only_one_or_named() {
        let run = |n: &str| json!({"decision": {"plugins": [{"plugin": n}]}});
        let one = [run("a"), run("a")];
        assert_eq!(plugin_name(&one, None).as_deref(), Ok("a"));
        let two = [run("a"), run("b")];
        assert!(plugin_name(&two, None).unwrap_err().contains("a, b"));
        assert_eq!(plugin_name(&two, Some("b")).as_deref(), Ok("b"));
        assert!(
            plugin_name(&two, Some("c"))
                .unwrap_err()
                .contains("they ran: a, b")
        );
    }

    #[test]
    fn a_recorded_event_becomes_an_event_file() {
        let facts = json!({
            "client": {"id": "acme", "name": "ACME", "app_type": "machine", "metadata": {"tier": "gold"}},
            "api": {"identifier": "https://orders", "name": "Orders", "scopes": ["read"], "metadata": {}},
            "user": null,
            "request": {"ip": "<redacted>", "user_agent": null, "hostname": "h", "method": "POST",
                        "params": [["grant_type", "client_credentials"]]},
            "transaction": {"id": "j", "grant_type": "client_credentials", "requested_scopes": [],
                            "granted_scopes": ["read"], "redirect_uri": null, "requested_audience": null}
        });
        let token = json!({"access_token": {"claims": {"x": 1}, "scopes": ["read"]}, "id_token": {"claims": {}}});
        let event = event_file(&facts, Some(&token)).expect("event");
        assert_eq!(event.client.metadata["tier"], "gold");
        assert_eq!(event.request.params["grant_type"], "client_credentials");
        assert_eq!(event.request.ip, "<redacted>");
        assert_eq!(event.access_token.claims["x"], 1);
    }
}
