//! `GET /authorize` and `POST /login`: the user-facing half of the
//! authorization code flow.
//!
//! A validated request either finds a signed-in session (cookie) and completes
//! at once, or is parked server-side as a pending transaction (so any replica
//! can finish it) while the login form is shown. The form carries the
//! transaction id and a CSRF token; a browser-bound cookie ties the
//! transaction to the browser that started it, so a login form cannot be
//! replayed into someone else's browser (login CSRF).
//!
//! Completing means: the API's `user_access` policy and the scope ceiling,
//! then the authorize-stage plugins, then a single-use code stored as a hash.
//! A plugin failure or denial persists nothing.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::pages::{self, LoginForm};
use crate::config::{Api, Client, Subject, UserAccess};
use crate::grants::user_tokens::opaque_token;
use crate::oauth::authorize::{AuthorizeError, AuthorizeRequest, redirect_with};
use crate::oauth::{ErrorCode, OAuthError, Params};
use crate::plugin::TokenShape;
use crate::plugin::pipeline::{self, Authorize, RequestInfo, TransactionInfo};
use crate::store::{CodeRecord, User, secret_hash as token_hash};
use crate::{Issuer, Snapshot};

/// How long an authorization code lives.
pub const CODE_LIFETIME: u64 = 300;
/// How long the login form stays valid.
pub const PENDING_LIFETIME: u64 = 600;
/// How long a sign-in lasts.
pub const SESSION_LIFETIME: u64 = 8 * 3600;
/// The session cookie.
pub const SESSION_COOKIE: &str = "tessera_session";
/// The browser-binding cookie.
pub const BROWSER_COOKIE: &str = "tessera_browser";
/// Largest login form body.
const MAX_LOGIN_BODY: usize = 8 * 1024;

/// A parked authorization request.
#[derive(Serialize, Deserialize)]
struct Pending {
    request: AuthorizeRequest,
    csrf: String,
    browser: String,
    params: Vec<(String, String)>,
}

/// `GET /authorize`.
pub async fn authorize(
    State(issuer): State<Arc<Issuer>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let params = match Params::parse(uri.query().unwrap_or("").as_bytes()) {
        Ok(p) => p,
        Err(e) => return pages::error(&e.safe_description(), StatusCode::BAD_REQUEST),
    };
    let snapshot = issuer.snapshot();
    let (client, req) = match AuthorizeRequest::parse(&snapshot.config, &params) {
        Ok(ok) => ok,
        Err(AuthorizeError::Page(message)) => {
            return pages::error(&message, StatusCode::BAD_REQUEST);
        }
        Err(AuthorizeError::Redirect {
            redirect_uri,
            state,
            error,
        }) => {
            return redirect_error(&snapshot, &redirect_uri, state.as_deref(), &error);
        }
    };
    let info = super::request_info(peer, &headers, "GET", params.without_secrets());
    let now = issuer.clock.now();
    let user = if req.prompt_login {
        None
    } else {
        match signed_in_user(&issuer, &headers, now).await {
            Ok(u) => u,
            Err(e) => {
                return redirect_error(&snapshot, &req.redirect_uri, req.state.as_deref(), &e);
            }
        }
    };
    match user {
        Some((user, auth_time)) => {
            complete(&issuer, &snapshot, &client, &req, &user, auth_time, info)
                .await
                .unwrap_or_else(|e| {
                    redirect_error(&snapshot, &req.redirect_uri, req.state.as_deref(), &e)
                })
        }
        None if req.prompt_none => redirect_error(
            &snapshot,
            &req.redirect_uri,
            req.state.as_deref(),
            &OAuthError::new(ErrorCode::LoginRequired, "the user is not signed in"),
        ),
        None => start_login(&issuer, &headers, &client, req, info.params, now).await,
    }
}

async fn start_login(
    issuer: &Issuer,
    headers: &HeaderMap,
    client: &Client,
    request: AuthorizeRequest,
    params: Vec<(String, String)>,
    now: u64,
) -> Response {
    let fresh = || opaque_token().map_err(|_| ());
    let (Ok(tx), Ok(csrf)) = (fresh(), fresh()) else {
        return pages::error(
            "The server could not start a sign-in.",
            StatusCode::INTERNAL_SERVER_ERROR,
        );
    };
    let existing = cookie(headers, BROWSER_COOKIE);
    let browser = match existing.clone() {
        Some(b) => b,
        None => match fresh() {
            Ok(b) => b,
            Err(()) => {
                return pages::error(
                    "The server could not start a sign-in.",
                    StatusCode::INTERNAL_SERVER_ERROR,
                );
            }
        },
    };
    let pending = Pending {
        request,
        csrf: csrf.clone(),
        browser: browser.clone(),
        params,
    };
    let Ok(json) = serde_json::to_value(&pending) else {
        return pages::error(
            "The server could not start a sign-in.",
            StatusCode::INTERNAL_SERVER_ERROR,
        );
    };
    if let Err(e) = issuer
        .store
        .put_pending(&token_hash(&tx), &json, now + PENDING_LIFETIME)
        .await
    {
        tracing::error!(error = %e, "storing a pending authorization failed");
        return pages::error(
            "The sign-in service is unavailable; try again shortly.",
            StatusCode::SERVICE_UNAVAILABLE,
        );
    }
    let mut r = pages::login(
        &LoginForm {
            client_name: &client.name,
            tx: &tx,
            csrf: &csrf,
            email: "",
            error: None,
        },
        StatusCode::OK,
    );
    if existing.is_none() {
        set_cookie(&mut r, issuer, BROWSER_COOKIE, &browser, None);
    }
    r
}

/// `POST /login`.
pub async fn login(
    State(issuer): State<Arc<Issuer>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Ok(body) = axum::body::to_bytes(body, MAX_LOGIN_BODY).await else {
        return pages::error(
            "The sign-in form was too large.",
            StatusCode::PAYLOAD_TOO_LARGE,
        );
    };
    let Ok(form) = Params::parse(&body) else {
        return pages::error("The sign-in form was malformed.", StatusCode::BAD_REQUEST);
    };
    let now = issuer.clock.now();
    let tx = form.get("tx").unwrap_or_default();
    let tx_hash = token_hash(tx);
    let pending: Option<Pending> = match issuer.store.get_pending(&tx_hash, now).await {
        Ok(p) => p.and_then(|v| serde_json::from_value(v).ok()),
        Err(e) => {
            tracing::error!(error = %e, "reading a pending authorization failed");
            return pages::error(
                "The sign-in service is unavailable; try again shortly.",
                StatusCode::SERVICE_UNAVAILABLE,
            );
        }
    };
    let Some(pending) = pending else {
        return pages::error(
            "This sign-in expired. Return to the application and start again.",
            StatusCode::BAD_REQUEST,
        );
    };
    let csrf_ok = form.get("csrf").is_some_and(|c| c == pending.csrf);
    let browser_ok = cookie(&headers, BROWSER_COOKIE).is_some_and(|b| b == pending.browser);
    if !csrf_ok || !browser_ok {
        return pages::error(
            "This sign-in form does not belong to this browser.",
            StatusCode::FORBIDDEN,
        );
    }
    let snapshot = issuer.snapshot();
    let Some(client) = snapshot
        .config
        .clients
        .get(&pending.request.client_id)
        .cloned()
    else {
        return pages::error(
            "The application is no longer known to this issuer.",
            StatusCode::BAD_REQUEST,
        );
    };
    let email = form.get("email").unwrap_or_default();
    let password = form.get("password").unwrap_or_default();
    let user = match issuer.store.verify_password(email, password).await {
        Ok(Some(u)) => u,
        Ok(None) => {
            return pages::login(
                &LoginForm {
                    client_name: &client.name,
                    tx,
                    csrf: &pending.csrf,
                    email,
                    error: Some("Wrong email or password."),
                },
                StatusCode::UNAUTHORIZED,
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "checking a password failed");
            return pages::error(
                "The sign-in service is unavailable; try again shortly.",
                StatusCode::SERVICE_UNAVAILABLE,
            );
        }
    };
    // One-shot: a second submission of the same form finds nothing.
    match issuer.store.take_pending(&tx_hash, now).await {
        Ok(Some(_)) => {}
        Ok(None) => return pages::error("This sign-in was already used.", StatusCode::BAD_REQUEST),
        Err(e) => {
            tracing::error!(error = %e, "consuming a pending authorization failed");
            return pages::error(
                "The sign-in service is unavailable; try again shortly.",
                StatusCode::SERVICE_UNAVAILABLE,
            );
        }
    }
    let session = match opaque_token() {
        Ok(s) => s,
        Err(e) => {
            return redirect_error(
                &snapshot,
                &pending.request.redirect_uri,
                pending.request.state.as_deref(),
                &e,
            );
        }
    };
    if let Err(e) = issuer
        .store
        .create_session(&token_hash(&session), &user.id, now, now + SESSION_LIFETIME)
        .await
    {
        tracing::error!(error = %e, "creating a session failed");
        return pages::error(
            "The sign-in service is unavailable; try again shortly.",
            StatusCode::SERVICE_UNAVAILABLE,
        );
    }
    let req = pending.request;
    let info = super::request_info(peer, &headers, "POST", pending.params);
    let mut r = complete(&issuer, &snapshot, &client, &req, &user, now, info)
        .await
        .unwrap_or_else(|e| redirect_error(&snapshot, &req.redirect_uri, req.state.as_deref(), &e));
    set_cookie(
        &mut r,
        &issuer,
        SESSION_COOKIE,
        &session,
        Some(SESSION_LIFETIME),
    );
    r
}

/// Policy, plugins, code. Returns the redirect carrying the code.
async fn complete(
    issuer: &Issuer,
    snapshot: &Snapshot,
    client: &Arc<Client>,
    req: &AuthorizeRequest,
    user: &User,
    auth_time: u64,
    info: RequestInfo,
) -> Result<Response, OAuthError> {
    let config = &snapshot.config;
    let api: Option<&Arc<Api>> = match &req.audience {
        Some(aud) => Some(config.api(aud).ok_or_else(|| {
            OAuthError::invalid_target(format!("no API has the identifier {aud:?}"))
        })?),
        None if req.api_scopes.is_empty() => None,
        None => {
            return Err(OAuthError::invalid_request(
                "audience (or resource) is required when asking for API scopes",
            ));
        }
    };
    let ceiling: Vec<String> = match api {
        None => Vec::new(),
        Some(api) => match api.user_access {
            UserAccess::DenyAll => {
                return Err(OAuthError::access_denied(format!(
                    "API {:?} does not accept user tokens",
                    api.identifier
                )));
            }
            UserAccess::AllowAll => api.scopes.clone(),
            UserAccess::RequireClientGrant => config
                .grant(&client.id, &api.identifier, Subject::User)
                .ok_or_else(|| {
                    OAuthError::access_denied(format!(
                        "application {:?} may not get tokens for API {:?}",
                        client.id, api.identifier
                    ))
                })?
                .scopes
                .clone(),
        },
    };
    if let Some(extra) = req.api_scopes.iter().find(|s| !ceiling.contains(s)) {
        return Err(OAuthError::invalid_scope(format!(
            "scope {extra:?} is not available to this application"
        )));
    }

    let now = issuer.clock.now();
    let code = opaque_token()?;
    let transaction = TransactionInfo {
        id: code_hash_prefix(&code),
        grant_type: "authorization_code",
        requested_scopes: req.scopes(),
        granted_scopes: req.api_scopes.clone(),
        redirect_uri: Some(req.redirect_uri.clone()),
        requested_audience: req.audience.clone(),
    };
    let mut shape = TokenShape {
        scopes: req.api_scopes.clone(),
        ..TokenShape::default()
    };
    let mut trace = Vec::new();
    let outcome = pipeline::authorize(
        &issuer.runtime,
        &snapshot.plugins,
        config.claims,
        Authorize {
            client,
            api: api.map(|a| &**a),
            user,
            request: &info,
            transaction: &transaction,
        },
        &ceiling,
        &mut shape,
        &mut trace,
    )
    .await;
    super::token::count_plugin_failures(issuer, &trace);
    outcome.map_err(|e| e.to_oauth())?;

    let mut scopes = req.oidc_scopes.clone();
    scopes.extend(shape.scopes);
    issuer
        .store
        .put_code(&CodeRecord {
            code_hash: token_hash(&code),
            client_id: client.id.clone(),
            redirect_uri: req.redirect_uri.clone(),
            code_challenge: req.code_challenge.clone(),
            user_id: user.id.clone(),
            scopes,
            audience: api.map(|a| a.identifier.clone()),
            nonce: req.nonce.clone(),
            auth_time,
            access_claims: shape.claims,
            id_claims: shape.id_claims,
            issued_at: now,
            expires_at: now + CODE_LIFETIME,
        })
        .await
        .map_err(crate::grants::store_error)?;
    tracing::debug!(client = %client.id, user = %user.id, plugins = %serde_json::to_string(&trace).unwrap_or_default(), "authorization code issued");
    let mut pairs = vec![("code", code.as_str())];
    if let Some(s) = &req.state {
        pairs.push(("state", s));
    }
    pairs.push(("iss", &config.server.issuer));
    Ok(redirect(&redirect_with(&req.redirect_uri, &pairs)))
}

/// A short, non-secret id for the transaction (the code itself is secret).
fn code_hash_prefix(code: &str) -> String {
    token_hash(code).chars().take(22).collect()
}

/// The signed-in user of this browser, if any.
async fn signed_in_user(
    issuer: &Issuer,
    headers: &HeaderMap,
    now: u64,
) -> Result<Option<(User, u64)>, OAuthError> {
    let Some(sid) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let store = &issuer.store;
    let Some(session) = store
        .session(&token_hash(&sid), now)
        .await
        .map_err(crate::grants::store_error)?
    else {
        return Ok(None);
    };
    let user = store
        .user_by_id(&session.user_id)
        .await
        .map_err(crate::grants::store_error)?;
    Ok(user.map(|u| (u, session.auth_time)))
}

/// A `303 See Other` to `location`.
fn redirect(location: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// An error sent back to the client's (verified) redirect URI, with `iss`.
fn redirect_error(
    snapshot: &Snapshot,
    redirect_uri: &str,
    state: Option<&str>,
    error: &OAuthError,
) -> Response {
    let description = error.safe_description();
    let mut pairs = vec![
        ("error", error.code.as_str()),
        ("error_description", description.as_str()),
    ];
    if let Some(s) = state {
        pairs.push(("state", s));
    }
    pairs.push(("iss", &snapshot.config.server.issuer));
    redirect(&redirect_with(redirect_uri, &pairs))
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

fn set_cookie(r: &mut Response, issuer: &Issuer, name: &str, value: &str, max_age: Option<u64>) {
    let secure = issuer
        .snapshot()
        .config
        .server
        .issuer
        .starts_with("https://");
    let mut c = cookie::Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(cookie::SameSite::Lax);
    if let Some(age) = max_age {
        c = c.max_age(cookie::time::Duration::seconds(age as i64));
    }
    if let Ok(v) = HeaderValue::from_str(&c.build().to_string()) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}
