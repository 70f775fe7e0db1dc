//! `POST /oauth/token` (RFC 6749 §3.2).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::response::{error_response, no_store_json};
use crate::Issuer;
use crate::grants;
use crate::grants::user_tokens::TokenSet;
use crate::oauth::{GrantRequest, OAuthError, Params, TokenRequest};
use crate::plugin::{PluginRun, RunOutcome};

/// Largest token request body accepted.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The token endpoint.
pub async fn token(
    State(issuer): State<Arc<Issuer>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let params = match read_form(body, &uri, &headers).await {
        Ok(p) => p,
        Err((e, status)) => {
            issuer.metrics.error(e.code);
            return error_response(&e, status);
        }
    };
    let mut trace = Vec::new();
    let result = handle(&issuer, peer, &method, &headers, &params, &mut trace).await;
    count_plugin_failures(&issuer, &trace);
    let mut r = answer(&issuer, result, &trace);
    if let Some(id) = params.get("client_id") {
        r.extensions_mut()
            .insert(super::cors::AnsweredClient(id.to_owned()));
    }
    r
}

fn answer(issuer: &Issuer, result: Result<TokenSet, OAuthError>, trace: &[PluginRun]) -> Response {
    match result {
        Ok(issued) => {
            issuer.metrics.token_issued();
            tracing::debug!(
                jti = %issued.jti,
                aud = %issued.audience,
                plugins = %trace_summary(trace),
                "issued access token"
            );
            let mut body = json!({
                "access_token": issued.access_token,
                "token_type": "Bearer",
                "expires_in": issued.expires_in,
                "scope": issued.scope,
            });
            if let Some(id) = issued.id_token {
                body["id_token"] = id.into();
            }
            if let Some(rt) = issued.refresh_token {
                body["refresh_token"] = rt.into();
            }
            no_store_json(StatusCode::OK, body.to_string().into_bytes())
        }
        Err(e) => {
            issuer.metrics.error(e.code);
            tracing::debug!(error = %e.code.as_str(), description = %e.safe_description(), plugins = %trace_summary(trace), "token request refused");
            e.into_response()
        }
    }
}

async fn handle(
    issuer: &Issuer,
    peer: SocketAddr,
    method: &Method,
    headers: &HeaderMap,
    params: &Params,
    trace: &mut Vec<PluginRun>,
) -> Result<TokenSet, OAuthError> {
    let request = TokenRequest::parse(params, &authorization(headers))?;

    let snapshot = issuer.snapshot();
    let keys = issuer.keys();
    let clock = issuer.clock.as_ref();
    let auth = grants::client_auth::authenticate(
        &snapshot.config,
        &issuer.store,
        clock,
        &request.client,
        "/oauth/token",
    )
    .await?;
    match request.grant {
        GrantRequest::ClientCredentials { scope, audience } => {
            grants::client_credentials::exchange(
                &snapshot,
                &keys,
                &issuer.runtime,
                clock,
                auth,
                grants::client_credentials::Request {
                    scope,
                    audience,
                    // Only this grant runs plugins, so only it pays for their view of the request.
                    request: super::request_info(
                        super::client_ip(&snapshot.config.server, peer, headers),
                        headers,
                        method.as_str(),
                        params.without_secrets(),
                    ),
                },
                trace,
            )
            .await
        }
        GrantRequest::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        } => {
            grants::authorization_code::exchange(
                &snapshot,
                &keys,
                &issuer.store,
                clock,
                auth,
                grants::authorization_code::Request {
                    code,
                    redirect_uri,
                    code_verifier,
                },
            )
            .await
        }
        GrantRequest::RefreshToken {
            refresh_token,
            scope,
        } => {
            grants::refresh_token::exchange(
                &snapshot,
                &keys,
                &issuer.store,
                clock,
                auth,
                grants::refresh_token::Request {
                    refresh_token,
                    scope,
                },
            )
            .await
        }
    }
}

/// Reads the form a client POSTs to the token, introspection or revocation
/// endpoint (RFC 6749 §3.2): at most [`MAX_BODY_BYTES`] (413 past it),
/// `application/x-www-form-urlencoded`, nothing in the URL's query, each
/// parameter once.
pub(super) async fn read_form(
    body: Body,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Params, (OAuthError, StatusCode)> {
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        let e =
            OAuthError::invalid_request(format!("the request body is over {MAX_BODY_BYTES} bytes"));
        return Err((e, StatusCode::PAYLOAD_TOO_LARGE));
    };
    let bad = |e: OAuthError| {
        let status = super::response::status(&e);
        (e, status)
    };
    if uri.query().is_some_and(|q| !q.is_empty()) {
        return Err(bad(OAuthError::invalid_request(
            "request parameters belong in the body, not the URL",
        )));
    }
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form {
        return Err(bad(OAuthError::invalid_request(
            "Content-Type must be application/x-www-form-urlencoded",
        )));
    }
    Params::parse(&body).map_err(bad)
}

/// The `Authorization` header values, for client authentication.
pub(super) fn authorization(headers: &HeaderMap) -> Vec<&[u8]> {
    headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .map(|v| v.as_bytes())
        .collect()
}

/// Counts the plugins of `trace` that failed (whether the request failed or
/// skipped them).
pub(crate) fn count_plugin_failures(issuer: &Issuer, trace: &[PluginRun]) {
    for run in trace {
        if matches!(run.outcome, RunOutcome::Failed(_) | RunOutcome::Skipped(_)) {
            issuer.metrics.plugin_failure(&run.plugin);
        }
    }
}

fn trace_summary(trace: &[PluginRun]) -> String {
    serde_json::to_string(trace).unwrap_or_default()
}
