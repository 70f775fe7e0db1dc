//! Decision traces: for every token response and every sign-in that ran the
//! authorize stage, what Tessera decided and why — the access policy (the
//! API's rule, the grant's ceiling, the scopes asked for and granted), each
//! plugin that ran (name, SHA-256, stage, time, outcome, what it changed
//! and logged), and what the token ended up with (scopes, custom claims) or
//! the error the client got.
//!
//! Traces live in a bounded ring in memory (`[trace] keep`), newest first,
//! read with `GET /admin/traces` and followed live by `tessera trace
//! --follow`. They hold no secret: no token, code, password or client
//! secret, only the token's `jti`. Each replica keeps its own.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::broadcast;

use crate::plugin::pipeline::{ShadowRun, StageTrace};

pub mod cli;

/// What the access policy decided, and what the plugins made of it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Decision {
    /// The API (audience), once it was known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api: Option<String>,
    /// The API's access rule that applied (`client_access =
    /// require_client_grant`, `user_access = allow_all`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<&'static str>,
    /// The scopes the policy allows at most (the grant's, within the API's).
    pub ceiling: Vec<String>,
    /// The scopes asked for (`None`: none named, so all of the ceiling).
    pub requested: Option<Vec<String>>,
    /// The scopes granted before the plugins ran.
    pub granted: Vec<String>,
    /// Each plugin that ran, in order (`plugins`), and the stage's facts
    /// they were given (`event`).
    #[serde(flatten)]
    pub stage: StageTrace,
    /// The token's scopes after the plugins.
    pub scopes: Vec<String>,
    /// The token's custom claims after the plugins.
    pub claims: Map<String, Value>,
    /// The ID token's custom claims after the plugins.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub id_claims: Map<String, Value>,
}

/// How the request ended.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "result")]
pub enum Outcome {
    /// Tokens were issued (a token response), or a code (a sign-in).
    Issued,
    /// The client got an error.
    Refused {
        /// The OAuth error code.
        error: &'static str,
        /// Its `error_description`.
        description: String,
    },
}

/// One decision, explained.
#[derive(Debug, Clone, Serialize)]
pub struct Trace {
    /// The access token's `jti` when one was issued; else, for a sign-in,
    /// the transaction id plugins saw, or the request id.
    pub id: String,
    /// When it ended (Unix seconds).
    pub at: u64,
    /// The request's `X-Request-Id`.
    pub request_id: String,
    /// `token` (a token response) or `sign_in` (a sign-in's authorize stage,
    /// ending in a code).
    pub kind: &'static str,
    /// The grant type (`client_credentials`, `authorization_code`,
    /// `refresh_token`); none when the request did not name a known one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant: Option<&'static str>,
    /// The client, once it authenticated (a token request) or was known (a
    /// sign-in).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The token's subject: the user's id, or the client's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// For a code's redemption: the id of the sign-in trace that ran the
    /// authorize stage for it (on whichever replica served the sign-in).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign_in: Option<String>,
    /// The policy and the plugins.
    pub decision: Decision,
    /// The answer.
    pub outcome: Outcome,
    /// The request's time in Tessera, in microseconds.
    pub micros: u64,
    /// Shadow runs of plugins' candidate builds on this request's event,
    /// added as each ends (after the answer).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shadows: Vec<ShadowRun>,
}

impl Trace {
    /// Whether it matches the filters of `GET /admin/traces`.
    pub fn matches(&self, client: Option<&str>, api: Option<&str>) -> bool {
        client.is_none_or(|c| self.client.as_deref() == Some(c))
            && api.is_none_or(|a| self.decision.api.as_deref() == Some(a))
    }
}

/// The traces kept: the newest `capacity`, and a channel that tells
/// followers of each new one until [`Traces::stop_following`].
pub struct Traces {
    inner: Mutex<Inner>,
    capacity: usize,
    /// `[trace] redact`: the event fields readers see as `<redacted>`.
    redact: Vec<String>,
}

struct Inner {
    /// Each with its place in the order of recording.
    ring: VecDeque<(u64, Arc<Trace>)>,
    recorded: u64,
    /// `None` once the server is shutting down: followers' streams end.
    live: Option<broadcast::Sender<(u64, Arc<Trace>)>>,
}

/// What a follower gets: each trace with its place in the order of
/// recording, so one that was also in the backlog it read can be skipped.
pub type Followed = broadcast::Receiver<(u64, Arc<Trace>)>;

/// Traces a slow follower may fall behind by before it misses some.
const FOLLOW_BUFFER: usize = 1024;

impl Traces {
    /// A ring of `capacity` traces (0 keeps none and tells no one).
    pub fn new(capacity: usize) -> Traces {
        Traces {
            inner: Mutex::new(Inner {
                ring: VecDeque::with_capacity(capacity.min(4096)),
                recorded: 0,
                live: Some(broadcast::channel(FOLLOW_BUFFER).0),
            }),
            capacity,
            redact: Vec::new(),
        }
    }

    /// The same ring, whose readers see the event fields named in `paths`
    /// (`user.email`, `client.metadata.tier`, …) as `<redacted>`.
    pub fn redacting(mut self, paths: Vec<String>) -> Traces {
        self.redact = paths;
        self
    }

    /// `trace` as its readers get it (`GET /admin/traces`): JSON, with the
    /// recorded event's fields named by `[trace] redact` hidden. An email
    /// address keeps its domain (`<redacted>@example.com`), which plugins
    /// often decide on.
    pub fn json(&self, trace: &Trace) -> Value {
        let mut value = serde_json::to_value(trace).unwrap_or(Value::Null);
        if let Some(event) = value.pointer_mut("/decision/event") {
            for path in &self.redact {
                redact(event, path);
            }
        }
        value
    }

    /// Whether traces are kept at all.
    pub fn enabled(&self) -> bool {
        self.capacity > 0
    }

    /// Keeps `trace`, dropping the oldest past capacity, and tells followers.
    pub fn record(&self, trace: Trace) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.lock();
        inner.recorded += 1;
        let entry = (inner.recorded, Arc::new(trace));
        if inner.ring.len() == self.capacity {
            inner.ring.pop_back();
        }
        inner.ring.push_front(entry.clone());
        if let Some(live) = &inner.live {
            // No follower is the usual case, and not an error.
            let _ = live.send(entry);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Up to `limit` traces matching the filters, newest first.
    pub fn recent(&self, client: Option<&str>, api: Option<&str>, limit: usize) -> Vec<Arc<Trace>> {
        self.recent_numbered(client, api, limit)
            .into_iter()
            .map(|(_, t)| t)
            .collect()
    }

    /// [`Traces::recent`], each with its place in the order of recording.
    pub fn recent_numbered(
        &self,
        client: Option<&str>,
        api: Option<&str>,
        limit: usize,
    ) -> Vec<(u64, Arc<Trace>)> {
        self.lock()
            .ring
            .iter()
            .filter(|(_, t)| t.matches(client, api))
            .take(limit)
            .cloned()
            .collect()
    }

    /// Adds `shadow` to the trace `id`, if it is still kept. Followers got
    /// the trace without it; readers of the ring see it from now on.
    pub fn add_shadow(&self, id: &str, shadow: ShadowRun) {
        let mut inner = self.lock();
        if let Some((_, trace)) = inner.ring.iter_mut().find(|(_, t)| t.id == id) {
            Arc::make_mut(trace).shadows.push(shadow);
        }
    }

    /// The newest trace whose id or request id is `id`.
    pub fn get(&self, id: &str) -> Option<Arc<Trace>> {
        self.lock()
            .ring
            .iter()
            .find(|(_, t)| t.id == id || t.request_id == id)
            .map(|(_, t)| t.clone())
    }

    /// Every trace recorded from now on, until [`Traces::stop_following`]
    /// (a receiver that is closed at once after it).
    pub fn follow(&self) -> Followed {
        match &self.lock().live {
            Some(live) => live.subscribe(),
            None => broadcast::channel(1).1,
        }
    }

    /// Ends every follower's stream (at shutdown, so that open `follow`
    /// answers do not hold the server for its grace period).
    pub fn stop_following(&self) {
        self.lock().live = None;
    }
}

/// What a redacted text reads.
pub const REDACTED: &str = "<redacted>";

/// Hides the field `path` (`user.email`, `request.params.login_hint`) of a
/// recorded event, if the event has it.
fn redact(event: &mut Value, path: &str) {
    let Some((head, rest)) = path.split_once('.') else {
        return;
    };
    let Some(part) = event.get_mut(head).filter(|p| !p.is_null()) else {
        return;
    };
    // Request parameters are recorded as [name, value] pairs.
    if let (Some(key), Some(pairs)) = (
        rest.strip_prefix("params."),
        part.get_mut("params").and_then(Value::as_array_mut),
    ) {
        for pair in pairs {
            if pair.get(0).and_then(Value::as_str) == Some(key)
                && let Some(value) = pair.get_mut(1)
            {
                *value = Value::from(REDACTED);
            }
        }
        return;
    }
    let target = match rest.split_once('.') {
        Some((map, key)) => part.get_mut(map).and_then(|m| m.get_mut(key)),
        None => part.get_mut(rest),
    };
    if let Some(value) = target.filter(|v| !v.is_null()) {
        *value = match (path, value.as_str().and_then(|v| v.rsplit_once('@'))) {
            ("user.email", Some((_, domain))) => Value::from(format!("{REDACTED}@{domain}")),
            _ => Value::from(REDACTED),
        };
    }
}

impl std::fmt::Debug for Traces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Traces")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(id: &str, client: &str, api: &str) -> Trace {
        Trace {
            id: id.into(),
            at: 0,
            request_id: format!("req-{id}"),
            kind: "token",
            grant: Some("client_credentials"),
            client: Some(client.into()),
            subject: None,
            sign_in: None,
            decision: Decision {
                api: Some(api.into()),
                ..Decision::default()
            },
            outcome: Outcome::Issued,
            micros: 1,
            shadows: Vec::new(),
        }
    }

    #[test]
    fn readers_see_the_redacted_fields_of_the_event_hidden() {
        let mut event = serde_json::json!({
            "client": {"id": "acme", "name": "ACME", "metadata": {"tier": "gold", "crm": "x"}},
            "api": null,
            "user": {"id": "u1", "email": "ada@example.com", "name": "Ada", "app_metadata": {}},
            "request": {"ip": "10.0.0.1", "user_agent": null, "params": [["login_hint", "ada"], ["scope", "openid"]]},
        });
        for path in [
            "user.email",
            "user.name",
            "request.ip",
            "request.user_agent",
            "request.params.login_hint",
            "client.metadata.crm",
            "api.metadata.x",
        ] {
            redact(&mut event, path);
        }
        assert_eq!(event["user"]["email"], "<redacted>@example.com");
        assert_eq!(event["user"]["name"], REDACTED);
        assert_eq!(event["user"]["id"], "u1");
        assert_eq!(event["request"]["ip"], REDACTED);
        assert_eq!(
            event["request"]["user_agent"],
            Value::Null,
            "absent stays absent"
        );
        assert_eq!(
            event["request"]["params"],
            serde_json::json!([["login_hint", REDACTED], ["scope", "openid"]])
        );
        assert_eq!(
            event["client"]["metadata"],
            serde_json::json!({"tier": "gold", "crm": REDACTED})
        );
        assert_eq!(event["api"], Value::Null);
    }

    #[test]
    fn the_ring_keeps_the_newest_and_filters() {
        let traces = Traces::new(3);
        for (i, client) in ["a", "b", "a", "a"].iter().enumerate() {
            traces.record(trace(&i.to_string(), client, "https://api"));
        }
        let ids = |v: Vec<Arc<Trace>>| v.iter().map(|t| t.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(traces.recent(None, None, 10)), ["3", "2", "1"]);
        assert_eq!(ids(traces.recent(Some("a"), None, 10)), ["3", "2"]);
        assert_eq!(ids(traces.recent(Some("a"), None, 1)), ["3"]);
        assert!(traces.recent(None, Some("https://other"), 10).is_empty());
        assert_eq!(traces.get("req-2").map(|t| t.id.clone()), Some("2".into()));
        assert!(traces.get("0").is_none(), "the oldest is gone");
    }

    #[test]
    fn followers_see_each_new_trace_and_an_empty_ring_keeps_nothing() {
        let traces = Traces::new(2);
        let mut rx = traces.follow();
        traces.record(trace("x", "a", "https://api"));
        assert_eq!(
            rx.try_recv().map(|(n, t)| (n, t.id.clone())).ok(),
            Some((1, "x".into()))
        );
        let off = Traces::new(0);
        let mut rx = off.follow();
        off.record(trace("y", "a", "https://api"));
        assert!(off.recent(None, None, 10).is_empty());
        assert!(rx.try_recv().is_err());
        let mut rx = traces.follow();
        traces.stop_following();
        assert_eq!(
            rx.try_recv().err(),
            Some(broadcast::error::TryRecvError::Closed)
        );
        assert_eq!(
            traces.follow().try_recv().err(),
            Some(broadcast::error::TryRecvError::Closed)
        );
    }
}
