//! `GET /admin/plugins`, `POST /admin/reload`, `GET /admin/traces` and
//! `GET /admin/traces/{id}`, for a bearer access token of
//! this issuer whose audience is [`ADMIN_AUDIENCE`] and whose scope holds the
//! endpoint's admin scope ([`crate::config::ADMIN_SCOPES`]). To use them,
//! declare that audience as an API with those scopes and grant them to an
//! operator's machine client.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::response::no_store_json;
use crate::Issuer;
use crate::reload::{Trigger, unix_seconds};
use crate::token::verify;

pub use crate::config::ADMIN_AUDIENCE;
use crate::config::{SCOPE_PLUGINS_READ, SCOPE_RELOAD, SCOPE_TRACES_READ};

/// Why an admin request is refused: the status and RFC 6750 §3.1 error code.
type Refusal = (StatusCode, &'static str);

/// The refusal with its `WWW-Authenticate` challenge; `insufficient_scope`
/// names the scope the endpoint needs (RFC 6750 §3).
fn refuse((status, error): Refusal, scope: &str) -> Response {
    let mut r = status.into_response();
    let scope = match error {
        "insufficient_scope" => format!(", scope=\"{scope}\""),
        _ => String::new(),
    };
    if let Ok(v) = HeaderValue::from_str(&format!(
        "Bearer realm=\"tessera-admin\", error=\"{error}\"{scope}"
    )) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

/// Whether the request carries a valid admin token with `scope`; either
/// way, an `admin_call` audit event for `endpoint`.
fn authorized(
    issuer: &Issuer,
    headers: &HeaderMap,
    scope: &str,
    endpoint: &str,
) -> Result<(), Refusal> {
    let mut client = None;
    let verdict = check_admin_token(issuer, headers, scope, &mut client);
    crate::audit::admin_call(
        endpoint,
        client.as_deref(),
        verdict.is_ok(),
        verdict.as_ref().err().map(|(_, error)| *error),
    );
    verdict
}

/// The checks of [`authorized`]; `client` receives the token's client once
/// the token verified.
fn check_admin_token(
    issuer: &Issuer,
    headers: &HeaderMap,
    scope: &str,
    client_out: &mut Option<String>,
) -> Result<(), Refusal> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .ok_or((StatusCode::UNAUTHORIZED, "invalid_request"))?;
    let snapshot = issuer.snapshot();
    let claims = verify::access_token(
        &issuer.keys(),
        &snapshot.config.server.issuer,
        token,
        issuer.clock.now(),
    )
    .map_err(|_| (StatusCode::UNAUTHORIZED, "invalid_token"))?;
    if claims.get("aud").and_then(Value::as_str) != Some(ADMIN_AUDIENCE) {
        return Err((StatusCode::FORBIDDEN, "insufficient_scope"));
    }
    // Admin tokens are machine tokens (client credentials: `sub` is the
    // client's), never a user's, whatever grants the configuration has.
    let client = claims
        .get("client_id")
        .and_then(Value::as_str)
        .unwrap_or("");
    *client_out = Some(client.to_owned());
    if claims.get("sub").and_then(Value::as_str) != Some(&format!("{client}@clients")) {
        return Err((StatusCode::FORBIDDEN, "insufficient_scope"));
    }
    let granted = claims.get("scope").and_then(Value::as_str).unwrap_or("");
    if !granted.split(' ').any(|s| s == scope) {
        return Err((StatusCode::FORBIDDEN, "insufficient_scope"));
    }
    Ok(())
}

/// `GET /admin/plugins`: the loaded plugins and the last reload.
pub async fn plugins(State(issuer): State<Arc<Issuer>>, headers: HeaderMap) -> Response {
    if let Err(refusal) = authorized(&issuer, &headers, SCOPE_PLUGINS_READ, "GET /admin/plugins") {
        return refuse(refusal, SCOPE_PLUGINS_READ);
    }
    let snapshot = issuer.snapshot();
    let last = issuer.last_reload();
    let last_error = last.as_ref().and_then(|s| s.error.clone());
    let plugins: Vec<Value> = snapshot
        .plugins
        .iter()
        .map(|p| {
            let mine = last_error
                .as_ref()
                .filter(|e| e.contains(&format!("{}.", p.config.key)));
            json!({
                "name": p.config.name,
                "path": p.config.path,
                "sha256": p.sha256,
                "signed_by": p.signed_by,
                "shadow": p.shadow.as_ref().map(|c| json!({
                    "path": c.plugin.config.path,
                    "sha256": c.plugin.sha256,
                    "sample": c.sample(),
                    "signed_by": c.plugin.signed_by,
                })),
                "stages": p.stages.names(),
                "exports": p.exports.names(),
                "size": p.size,
                "loaded_at": unix_seconds(p.loaded_at),
                "load_ms": p.load_time.as_secs_f64() * 1000.0,
                "compiled_from_cache": p.from_cache,
                "language": p.metadata.language(),
                "warm": p.warm(),
                "idle_instances": p.idle_instances(),
                "last_error": mine,
            })
        })
        .collect();
    let body = json!({
        "generation": snapshot.generation,
        "loaded_at": unix_seconds(snapshot.built_at),
        "config": snapshot.config.path,
        "last_reload": last,
        "plugins": plugins,
    });
    no_store_json(StatusCode::OK, body.to_string().into_bytes())
}

/// `POST /admin/reload`: reload now; 200 with the new generation, or 422 with
/// why nothing changed.
pub async fn reload(State(issuer): State<Arc<Issuer>>, headers: HeaderMap) -> Response {
    if let Err(refusal) = authorized(&issuer, &headers, SCOPE_RELOAD, "POST /admin/reload") {
        return refuse(refusal, SCOPE_RELOAD);
    }
    match issuer.reload(Trigger::Admin).await {
        Ok(generation) => no_store_json(
            StatusCode::OK,
            json!({ "generation": generation }).to_string().into_bytes(),
        ),
        Err(error) => no_store_json(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({
                "error": "reload_failed",
                "error_description": error,
                "generation": issuer.snapshot().generation,
            })
            .to_string()
            .into_bytes(),
        ),
    }
}

/// The query of `GET /admin/traces`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceQuery {
    /// Only this client's.
    client: Option<String>,
    /// Only for this API (audience).
    api: Option<String>,
    /// At most this many (default [`DEFAULT_TRACES`]).
    limit: Option<usize>,
    /// Keep the answer open and add each new trace as it is recorded.
    #[serde(default)]
    follow: bool,
}

/// How many traces `GET /admin/traces` answers without a `limit`.
pub const DEFAULT_TRACES: usize = 50;

/// `GET /admin/traces?client=…&api=…&limit=…[&follow=true]`: the latest
/// decision traces, newest first, as `{"traces": […]}`; with `follow`, as
/// NDJSON (one trace per line, oldest first) that goes on with each new
/// trace until the caller hangs up.
pub async fn traces(
    State(issuer): State<Arc<Issuer>>,
    headers: HeaderMap,
    query: Result<axum::extract::Query<TraceQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Err(refusal) = authorized(&issuer, &headers, SCOPE_TRACES_READ, "GET /admin/traces") {
        return refuse(refusal, SCOPE_TRACES_READ);
    }
    let query = match query {
        Ok(q) => q.0,
        Err(e) => {
            return no_store_json(
                StatusCode::BAD_REQUEST,
                json!({"error": "invalid_request", "error_description": e.body_text()})
                    .to_string()
                    .into_bytes(),
            );
        }
    };
    let limit = query.limit.unwrap_or(DEFAULT_TRACES);
    let (client, api) = (query.client.as_deref(), query.api.as_deref());
    if !query.follow {
        let traces: Vec<Value> = issuer
            .traces
            .recent(client, api, limit)
            .iter()
            .map(|t| issuer.traces.json(t))
            .collect();
        return no_store_json(
            StatusCode::OK,
            json!({ "traces": traces }).to_string().into_bytes(),
        );
    }
    // Subscribed before the ring is read, so no trace falls between the
    // two; one in both is sent once, from the backlog.
    let live = issuer.traces.follow();
    let mut backlog = issuer.traces.recent_numbered(client, api, limit);
    let seen = backlog.first().map_or(0, |(n, _)| *n);
    backlog.reverse();
    let (client, api) = (query.client, query.api);
    let lines = issuer.clone();
    let backlog = futures_util::stream::iter(
        backlog
            .into_iter()
            .map(move |(_, t)| ndjson(lines.traces.json(&t))),
    );
    let lines = issuer.clone();
    let live = futures_util::stream::unfold(live, move |mut live| {
        let (client, api, lines) = (client.clone(), api.clone(), lines.clone());
        async move {
            loop {
                match live.recv().await {
                    Ok((n, t)) if n > seen && t.matches(client.as_deref(), api.as_deref()) => {
                        return Some((ndjson(lines.traces.json(&t)), live));
                    }
                    Ok(_) => {}
                    // A follower too slow for the traffic misses traces; it
                    // is told, on a line of its own, how many.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        let line = json!({ "missed": n }).to_string() + "\n";
                        return Some((Ok(bytes::Bytes::from(line)), live));
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    });
    let body = axum::body::Body::from_stream(futures_util::StreamExt::chain(backlog, live));
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn ndjson(trace: Value) -> Result<bytes::Bytes, std::convert::Infallible> {
    let mut line = serde_json::to_vec(&trace).unwrap_or_default();
    line.push(b'\n');
    Ok(bytes::Bytes::from(line))
}

/// `GET /admin/traces/{id}`: the trace of a token (its `jti`) or of a
/// request (its `X-Request-Id`), or 404.
pub async fn trace(
    State(issuer): State<Arc<Issuer>>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    if let Err(refusal) = authorized(
        &issuer,
        &headers,
        SCOPE_TRACES_READ,
        "GET /admin/traces/{id}",
    ) {
        return refuse(refusal, SCOPE_TRACES_READ);
    }
    match issuer.traces.get(&id) {
        Some(trace) => no_store_json(
            StatusCode::OK,
            serde_json::to_vec(&issuer.traces.json(&trace)).unwrap_or_default(),
        ),
        None => no_store_json(
            StatusCode::NOT_FOUND,
            json!({
                "error": "not_found",
                "error_description": format!(
                    "no trace {} on this replica (it keeps the latest [trace] keep of them)",
                    crate::oauth::params::echo(&id)
                ),
            })
            .to_string()
            .into_bytes(),
        ),
    }
}
