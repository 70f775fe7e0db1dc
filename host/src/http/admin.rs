//! `GET /admin/plugins` and `POST /admin/reload`, for a bearer access token of
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
use crate::config::{SCOPE_PLUGINS_READ, SCOPE_RELOAD};

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

/// Whether the request carries a valid admin token with `scope`.
fn authorized(issuer: &Issuer, headers: &HeaderMap, scope: &str) -> Result<(), Refusal> {
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
    if let Err(refusal) = authorized(&issuer, &headers, SCOPE_PLUGINS_READ) {
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
    if let Err(refusal) = authorized(&issuer, &headers, SCOPE_RELOAD) {
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
