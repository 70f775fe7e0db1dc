//! `POST /oauth/token` (RFC 6749 §3.2).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::observe::Served;
use super::response::{error_response, no_store_json};
use crate::Issuer;
use crate::grants;
use crate::grants::user_tokens::TokenSet;
use crate::oauth::{GrantRequest, OAuthError, Params, TokenRequest};
use crate::trace::{Decision, Outcome, Trace};

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
            issuer.metrics.token_error(e.code);
            return error_response(&e, status);
        }
    };
    let started = std::time::Instant::now();
    let mut decision = Decision::default();
    let mut served = Served::default();
    let mut sign_in = None;
    let result = handle(
        &issuer,
        peer,
        &method,
        &headers,
        &params,
        &mut decision,
        &mut served,
        &mut sign_in,
    )
    .await;
    let shadows = std::mem::take(&mut decision.stage.shadows);
    let trace = issuer.traces.enabled().then(|| {
        let request_id = super::observe::request_id(&headers);
        trace_of(
            &issuer, request_id, &served, sign_in, decision, &result, started,
        )
    });
    if let Ok(issued) = &result {
        crate::audit::token_issued(
            served.client.as_deref().unwrap_or_default(),
            served.grant.unwrap_or_default(),
            &issued.audience,
            &issued.scope,
            &issued.subject,
            &issued.jti,
        );
    }
    let mut r = answer(&issuer, result, served.grant);
    if let Some(trace) = &trace {
        let traced_client = served
            .client
            .as_deref()
            .and_then(|id| issuer.snapshot().config.clients.get(id).map(|c| c.trace))
            .unwrap_or(false);
        if traced_client && let Ok(v) = HeaderValue::from_str(&trace.id) {
            r.headers_mut().insert(TESSERA_TRACE, v);
        }
    }
    issuer.record(trace, shadows);
    if let Some(id) = params.get("client_id") {
        r.extensions_mut()
            .insert(super::cors::AnsweredClient(id.to_owned()));
    }
    r.extensions_mut().insert(served);
    r
}

/// The decision trace of a token response: the policy and plugins as
/// `decision` recorded them, and the tokens or the error.
fn trace_of(
    issuer: &Issuer,
    request_id: String,
    served: &Served,
    sign_in: Option<String>,
    mut decision: Decision,
    result: &Result<TokenSet, OAuthError>,
    started: std::time::Instant,
) -> Trace {
    let (id, subject, outcome) = match result {
        Ok(issued) => {
            // What every grant issued; the claims of a code or refresh
            // token's grant were decided at its sign-in.
            decision.api = Some(issued.audience.clone());
            decision.scopes = issued
                .scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            (
                issued.jti.clone(),
                Some(issued.subject.clone()),
                Outcome::Issued,
            )
        }
        Err(e) => {
            let outcome = Outcome::Refused {
                error: e.code.as_str(),
                description: e.safe_description(),
            };
            (request_id.clone(), None, outcome)
        }
    };
    Trace {
        id,
        at: issuer.clock.now(),
        request_id,
        kind: "token",
        grant: served.grant,
        client: served.client.clone(),
        subject,
        sign_in,
        decision,
        outcome,
        micros: started.elapsed().as_micros() as u64,
        shadows: Vec::new(),
    }
}

/// The header that gives a client with `trace = true` the id of its token
/// response's decision trace (`GET /admin/traces/{id}`).
pub const TESSERA_TRACE: HeaderName = HeaderName::from_static("tessera-trace");

fn answer(
    issuer: &Issuer,
    result: Result<TokenSet, OAuthError>,
    grant: Option<&'static str>,
) -> Response {
    match result {
        Ok(issued) => {
            issuer.metrics.token_issued(grant.unwrap_or("none"));
            tracing::debug!(jti = %issued.jti, aud = %issued.audience, "issued access token");
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
            issuer.metrics.token_error(e.code);
            tracing::debug!(error = %e.code.as_str(), description = %e.safe_description(), "token request refused");
            e.into_response()
        }
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "the request's parts in, what the trace and the log need out"
)]
async fn handle(
    issuer: &Issuer,
    peer: SocketAddr,
    method: &Method,
    headers: &HeaderMap,
    params: &Params,
    decision: &mut Decision,
    served: &mut Served,
    sign_in: &mut Option<String>,
) -> Result<TokenSet, OAuthError> {
    let request = TokenRequest::parse(params, &authorization(headers))?;
    served.grant = Some(request.grant.grant_type());

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
    served.client = Some(auth.client().id.clone());
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
                decision,
            )
            .await
        }
        GrantRequest::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        } => {
            // The id of the sign-in's trace, for this one's (a hash of the
            // code, which the grant hashes again: only while traces are kept).
            if issuer.traces.enabled() {
                let code_hash = crate::store::secret_hash(&code);
                *sign_in = Some(grants::sign_in::transaction_id(&code_hash));
            }
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
