//! Discovery (OIDC Discovery 1.0, RFC 8414), the JWKS (RFC 7517) and metrics.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::Issuer;
use crate::config::Config;
use crate::metrics::Format;
use crate::oauth::GRANT_TYPES_SUPPORTED;
use crate::token::jwk::ASSERTION_ALGORITHMS;

/// The discovery document: only what this issuer implements.
pub fn discovery_document(config: &Config) -> Vec<u8> {
    let mut scopes: Vec<&str> = crate::oauth::authorize::OIDC_SCOPES.to_vec();
    for api in &config.apis {
        for s in &api.scopes {
            if !scopes.contains(&s.as_str()) {
                scopes.push(s);
            }
        }
    }
    let server = &config.server;
    json!({
        "issuer": server.issuer,
        "authorization_endpoint": server.url("/authorize"),
        "token_endpoint": server.url("/oauth/token"),
        "userinfo_endpoint": server.url("/userinfo"),
        "jwks_uri": server.url("/.well-known/jwks.json"),
        "grant_types_supported": GRANT_TYPES_SUPPORTED,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": crate::oauth::pkce::METHODS_SUPPORTED,
        "authorization_response_iss_parameter_supported": true,
        "id_token_signing_alg_values_supported": config.signing.key_algorithms().iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "name", "email", "email_verified"],
        "prompt_values_supported": ["none", "login", "consent"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "introspection_endpoint": server.url("/oauth/introspect"),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "introspection_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "revocation_endpoint": server.url("/oauth/revoke"),
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "revocation_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "end_session_endpoint": server.url("/oidc/logout"),
        "scopes_supported": scopes,
        "subject_types_supported": ["public"],
        "access_token_signing_alg_values_supported": [config.signing.algorithm.as_str()],
    })
    .to_string()
    .into_bytes()
}

fn json_response(body: Vec<u8>, cache: HeaderValue) -> Response {
    let mut r = body.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut().insert(header::CACHE_CONTROL, cache);
    r
}

/// `GET /.well-known/openid-configuration` and `/.well-known/oauth-authorization-server`.
pub async fn discovery(State(issuer): State<Arc<Issuer>>) -> Response {
    json_response(
        issuer.snapshot().discovery.clone(),
        HeaderValue::from_static("public, max-age=300"),
    )
}

/// `GET /.well-known/jwks.json`. Cached for at most half the
/// pre-publication delay (and 300 s), so a resource server that honours
/// `Cache-Control` has fetched a new key well before anything is signed with
/// it.
pub async fn jwks(State(issuer): State<Arc<Issuer>>) -> Response {
    let delay = issuer
        .snapshot()
        .config
        .signing
        .pre_publication_delay
        .as_secs();
    let cache = match (delay / 2).min(300) {
        0 => HeaderValue::from_static("no-cache"),
        age => HeaderValue::from_str(&format!("public, max-age={age}"))
            .unwrap_or(HeaderValue::from_static("no-cache")),
    };
    json_response(issuer.keys().jwks_json().to_vec(), cache)
}

/// `GET /metrics`: the Prometheus text format, or OpenMetrics when the
/// `Accept` header prefers it.
pub async fn metrics(State(issuer): State<Arc<Issuer>>, headers: HeaderMap) -> Response {
    let format = Format::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let body = issuer.metrics.render(
        format,
        &issuer.keys(),
        issuer.clock.now(),
        issuer.runtime.pool_reading(),
    );
    let mut r = body.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    r
}
