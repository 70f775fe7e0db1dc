//! What an operator sees of each request: a `request` span that every log
//! line written while it is served belongs to (its id, method, path and a
//! `traceparent`'s trace id), the id returned in `X-Request-Id`, one access
//! log line when it is answered (target `tessera::access`), and its duration
//! in `tessera_http_request_duration_seconds`.
//!
//! Handlers say what only they know by putting a [`Served`] on the response
//! (the client, the grant type); an OAuth error's code is put there by
//! [`super::response::error_response`].

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument as _;

use super::request_id::{self, X_REQUEST_ID};
use crate::Issuer;
use crate::metrics::RequestLabels;
use crate::oauth::ErrorCode;

/// Set on a response by its handler: what the log and the metrics say of
/// the request besides its route and status.
#[derive(Debug, Clone, Default)]
pub struct Served {
    /// The client that authenticated, or that the request is for.
    pub client: Option<String>,
    /// The token request's `grant_type`.
    pub grant: Option<&'static str>,
}

/// The request's id, as [`layer`] put it on the request's headers (made
/// anew only for a request that did not go through it).
pub fn request_id(headers: &axum::http::HeaderMap) -> String {
    headers
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| request_id::of(headers), str::to_owned)
}

/// The routes, as the `endpoint` label names them; a path none matched is
/// `other`, so the label's values stay a closed set.
const ENDPOINTS: &[&str] = &[
    "/oauth/token",
    "/oauth/introspect",
    "/oauth/revoke",
    "/authorize",
    "/login",
    "/consent",
    "/oidc/logout",
    "/userinfo",
    "/.well-known/jwks.json",
    "/.well-known/openid-configuration",
    "/.well-known/oauth-authorization-server",
    "/admin/plugins",
    "/admin/reload",
    "/admin/traces",
    "/admin/traces/{id}",
    "/healthz",
    "/readyz",
    "/metrics",
];

/// Endpoints polled by machines; answered and measured, not logged.
const QUIET: &[&str] = &["/healthz", "/readyz", "/metrics"];

/// The middleware.
pub async fn layer(State(issuer): State<Arc<Issuer>>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id::of(req.headers());
    let endpoint = req
        .extensions()
        .get::<MatchedPath>()
        .and_then(|m| ENDPOINTS.iter().find(|e| **e == m.as_str()).copied())
        .unwrap_or("other");
    let span = request_span(
        &id,
        req.method().as_str(),
        req.uri().path(),
        request_id::trace_id_of(req.headers()),
    );
    let header = HeaderValue::from_str(&id).ok();
    // Handlers see the id the answer will carry.
    if let Some(v) = &header {
        req.headers_mut().insert(X_REQUEST_ID.clone(), v.clone());
    }
    let mut response = next.run(req).instrument(span.clone()).await;
    if let Some(v) = header {
        response.headers_mut().insert(X_REQUEST_ID.clone(), v);
    }

    let took = started.elapsed();
    let served = response.extensions().get::<Served>();
    let grant = served.and_then(|s| s.grant);
    let status = response.status();
    let outcome = match response.extensions().get::<ErrorCode>() {
        Some(code) => code.as_str(),
        None if status.is_server_error() => "server_error",
        None if status.is_client_error() => "client_error",
        None => "ok",
    };
    issuer.metrics.request(
        &RequestLabels {
            endpoint,
            grant: grant.unwrap_or("none"),
            outcome,
        },
        took,
    );
    if !QUIET.contains(&endpoint) {
        let _entered = span.enter();
        access_line(
            status.as_u16(),
            took,
            served.and_then(|s| s.client.as_deref()),
            grant,
            outcome,
        );
    }
    response
}

/// The span a request is served in: every line logged inside it names the
/// request.
pub fn request_span(id: &str, method: &str, path: &str, trace_id: Option<&str>) -> tracing::Span {
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %method,
        path = %path,
        trace_id = tracing::field::Empty,
    );
    if let Some(t) = trace_id {
        span.record("trace_id", t);
    }
    span
}

/// The access line that ends a request (target `tessera::access`), written
/// inside its span.
pub fn access_line(
    status: u16,
    took: std::time::Duration,
    client: Option<&str>,
    grant: Option<&str>,
    outcome: &str,
) {
    tracing::info!(
        target: "tessera::access",
        status,
        duration_us = took.as_micros() as u64,
        client_id = client,
        grant,
        outcome,
        "request served"
    );
}
