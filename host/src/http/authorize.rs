//! `GET /authorize`, `POST /login` and `POST /consent`: the HTTP of the
//! sign-in flow. The
//! flow itself is [`crate::grants::sign_in`]; this module reads cookies and
//! forms, and turns its results into pages, cookies and redirects.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::observe::Served;
use super::pages::{self, ConsentForm, LoginForm};
use crate::config::Config;
use crate::grants::sign_in::{
    self, Completed, Completion, ConsentAnswer, LoginAttempt, LoginFailure, Refusal,
    SESSION_LIFETIME,
};
use crate::grants::throttle::Throttled;
use crate::oauth::authorize::{AuthorizeError, AuthorizeRequest, MAX_QUERY_BYTES};
use crate::oauth::{ErrorCode, OAuthError, Params};
use crate::trace::{Decision, Outcome, Trace};
use crate::{Issuer, Snapshot};

/// The session cookie.
pub const SESSION_COOKIE: &str = "tessera_session";
/// The browser-binding cookie.
pub const BROWSER_COOKIE: &str = "tessera_browser";
/// Largest login form body.
const MAX_LOGIN_BODY: usize = 8 * 1024;

/// `GET /authorize`.
pub async fn authorize(
    State(issuer): State<Arc<Issuer>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let query = uri.query().unwrap_or("");
    if query.len() > MAX_QUERY_BYTES {
        return pages::error(
            &format!("The request is longer than {MAX_QUERY_BYTES} bytes."),
            StatusCode::BAD_REQUEST,
        );
    }
    let params = match Params::parse(query.as_bytes()) {
        Ok(p) => p,
        Err(e) => return pages::error(&e.safe_description(), StatusCode::BAD_REQUEST),
    };
    let snapshot = issuer.snapshot();
    let config = &snapshot.config;
    let (client, req) = match AuthorizeRequest::parse(config, &params) {
        Ok(ok) => ok,
        Err(AuthorizeError::Page(message)) => {
            return pages::error(&message, StatusCode::BAD_REQUEST);
        }
        Err(AuthorizeError::Redirect {
            redirect_uri,
            state,
            error,
        }) => {
            return redirect_error(config, &redirect_uri, state.as_deref(), &error);
        }
    };
    let fail = |e: &OAuthError| redirect_error(config, &req.redirect_uri, req.state.as_deref(), e);
    let address = super::client_ip(&config.server, peer, &headers);
    let info = super::request_info(address, &headers, "GET", params.without_secrets());
    let user = if req.prompt_login {
        None
    } else {
        let session = cookie(&headers, config, SESSION_COOKIE);
        match sign_in::signed_in_user(&issuer, session.as_deref()).await {
            Ok(u) => u,
            Err(e) => return fail(&e),
        }
    };
    let browser = cookie(&headers, config, BROWSER_COOKIE);
    match user {
        Some((user, auth_time)) => {
            let completion = Completion {
                client: &client,
                request: &req,
                user: &user,
                auth_time,
                info,
                consented: false,
            };
            finish(&issuer, &snapshot, completion, browser, address, &headers).await
        }
        None if req.prompt_none => fail(&OAuthError::new(
            ErrorCode::LoginRequired,
            "the user is not signed in",
        )),
        None => match sign_in::start(&issuer, req, info.params, browser, address).await {
            Ok(challenge) => {
                let mut r = pages::login(
                    &LoginForm {
                        client_name: &client.name,
                        tx: &challenge.tx,
                        csrf: &challenge.csrf,
                        email: "",
                        error: None,
                    },
                    StatusCode::OK,
                );
                if challenge.new_browser {
                    set_cookie(&mut r, config, BROWSER_COOKIE, &challenge.browser, None);
                }
                r
            }
            Err(refusal) => refusal_page(refusal),
        },
    }
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
    let snapshot = issuer.snapshot();
    let browser = cookie(&headers, &snapshot.config, BROWSER_COOKIE);
    let address = super::client_ip(&snapshot.config.server, peer, &headers);
    let attempt = LoginAttempt {
        tx: form.get("tx").unwrap_or_default(),
        csrf: form.get("csrf"),
        browser: browser.as_deref(),
        email: form.get("email").unwrap_or_default(),
        password: form.get("password").unwrap_or_default(),
        address,
    };
    let (tx, email) = (attempt.tx, attempt.email);
    let signed_in = match sign_in::login(&issuer, attempt).await {
        Ok(s) => s,
        Err(LoginFailure::Refused(refusal)) => return refusal_page(refusal),
        Err(LoginFailure::WrongPassword { client, csrf }) => {
            return pages::login(
                &LoginForm {
                    client_name: &client.name,
                    tx,
                    csrf: &csrf,
                    email,
                    error: Some("Wrong email or password."),
                },
                StatusCode::UNAUTHORIZED,
            );
        }
        Err(LoginFailure::Throttled { client, csrf, wait }) => {
            let message = throttled_message(wait);
            let mut r = pages::login(
                &LoginForm {
                    client_name: &client.name,
                    tx,
                    csrf: &csrf,
                    email,
                    error: Some(&message),
                },
                StatusCode::TOO_MANY_REQUESTS,
            );
            if let Ok(v) = HeaderValue::from_str(&wait.retry_after.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return r;
        }
    };
    let config = &snapshot.config;
    let info = super::request_info(address, &headers, "POST", signed_in.params);
    let completion = Completion {
        client: &signed_in.client,
        request: &signed_in.request,
        user: &signed_in.user,
        auth_time: signed_in.auth_time,
        info,
        consented: false,
    };
    let mut r = finish(&issuer, &snapshot, completion, browser, address, &headers).await;
    set_cookie(
        &mut r,
        config,
        SESSION_COOKIE,
        &signed_in.session,
        Some(SESSION_LIFETIME),
    );
    r
}

/// `POST /consent`: the user's answer on the consent page.
pub async fn consent(
    State(issuer): State<Arc<Issuer>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Ok(body) = axum::body::to_bytes(body, MAX_LOGIN_BODY).await else {
        return pages::error(
            "The consent form was too large.",
            StatusCode::PAYLOAD_TOO_LARGE,
        );
    };
    let Ok(form) = Params::parse(&body) else {
        return pages::error("The consent form was malformed.", StatusCode::BAD_REQUEST);
    };
    let allow = match form.get("decision") {
        Some("allow") => true,
        Some("deny") => false,
        _ => {
            return pages::error(
                "The consent form did not say whether you allow the application.",
                StatusCode::BAD_REQUEST,
            );
        }
    };
    let snapshot = issuer.snapshot();
    let config = &snapshot.config;
    let browser = cookie(&headers, config, BROWSER_COOKIE);
    let session = cookie(&headers, config, SESSION_COOKIE);
    let answer = ConsentAnswer {
        tx: form.get("tx").unwrap_or_default(),
        csrf: form.get("csrf"),
        browser: browser.as_deref(),
        session: session.as_deref(),
        allow,
    };
    let consented = match sign_in::answer_consent(&issuer, answer).await {
        Ok(c) => c,
        Err(refusal) => return refusal_page(refusal),
    };
    let req = &consented.request;
    if !consented.allowed {
        let denied = OAuthError::new(
            ErrorCode::AccessDenied,
            "the user did not allow the application access",
        );
        return redirect_error(config, &req.redirect_uri, req.state.as_deref(), &denied);
    }
    let address = super::client_ip(&config.server, peer, &headers);
    let info = super::request_info(address, &headers, "POST", consented.params.clone());
    let completion = Completion {
        client: &consented.client,
        request: req,
        user: &consented.user,
        auth_time: consented.auth_time,
        info,
        consented: true,
    };
    finish(&issuer, &snapshot, completion, browser, address, &headers).await
}

/// Completes a request for a signed-in user and answers the browser: the
/// redirect with the code, the consent page, or the error redirect.
async fn finish(
    issuer: &Arc<Issuer>,
    snapshot: &Snapshot,
    c: Completion<'_>,
    browser: Option<String>,
    address: IpAddr,
    headers: &HeaderMap,
) -> Response {
    let (client, req, user, auth_time) = (c.client, c.request, c.user, c.auth_time);
    let params = c.info.params.clone();
    let started = std::time::Instant::now();
    let mut decision = Decision::default();
    let done = sign_in::complete(issuer, snapshot, c, &mut decision).await;
    let config = &snapshot.config;
    let served = Served {
        client: Some(client.id.clone()),
        grant: None,
    };
    let trace = |id: Option<String>, outcome: Outcome, mut decision: Decision| {
        let shadows = std::mem::take(&mut decision.stage.shadows);
        let trace = issuer.traces.enabled().then(|| {
            let request_id = super::observe::request_id(headers);
            Trace {
                id: id.unwrap_or_else(|| request_id.clone()),
                at: issuer.clock.now(),
                request_id,
                kind: "sign_in",
                grant: None,
                client: Some(client.id.clone()),
                subject: Some(user.id.clone()),
                sign_in: None,
                decision,
                outcome,
                micros: started.elapsed().as_micros() as u64,
                shadows: Vec::new(),
            }
        });
        issuer.record(trace, shadows);
    };
    let lines = match done {
        Ok(Completed::Code {
            location,
            transaction,
        }) => {
            trace(Some(transaction), Outcome::Issued, decision);
            let mut r = redirect(&location);
            r.extensions_mut().insert(served);
            return r;
        }
        Ok(Completed::NeedsConsent(lines)) => lines,
        Err(e) => {
            let outcome = Outcome::Refused {
                error: e.code.as_str(),
                description: e.safe_description(),
            };
            trace(None, outcome, decision);
            let mut r = redirect_error(config, &req.redirect_uri, req.state.as_deref(), &e);
            r.extensions_mut().insert(e.code);
            r.extensions_mut().insert(served);
            return r;
        }
    };
    let parked = sign_in::ask_consent(
        issuer,
        req.clone(),
        params,
        browser,
        address,
        user,
        auth_time,
    )
    .await;
    let challenge = match parked {
        Ok(challenge) => challenge,
        Err(refusal) => return refusal_page(refusal),
    };
    let mut r = pages::consent(&ConsentForm {
        client_name: &client.name,
        tx: &challenge.tx,
        csrf: &challenge.csrf,
        lines: &lines,
    });
    if challenge.new_browser {
        set_cookie(&mut r, config, BROWSER_COOKIE, &challenge.browser, None);
    }
    r
}

/// What the login form says to a throttled attempt. The same for every
/// email, known or not.
fn throttled_message(wait: Throttled) -> String {
    if wait.locked {
        let minutes = wait.retry_after.div_ceil(60);
        format!(
            "Too many failed sign-ins. Signing in is locked for {minutes} minute{}; try again later.",
            if minutes == 1 { "" } else { "s" }
        )
    } else {
        let seconds = wait.retry_after;
        format!(
            "Too many failed sign-ins. Wait {seconds} second{} before trying again.",
            if seconds == 1 { "" } else { "s" }
        )
    }
}

/// The page for a sign-in that cannot go on.
fn refusal_page(refusal: Refusal) -> Response {
    let (message, status) = match refusal {
        Refusal::Expired => (
            "This sign-in expired. Return to the application and start again.",
            StatusCode::BAD_REQUEST,
        ),
        Refusal::OtherBrowser => (
            "This sign-in form does not belong to this browser.",
            StatusCode::FORBIDDEN,
        ),
        Refusal::UnknownClient => (
            "The application is no longer known to this issuer.",
            StatusCode::BAD_REQUEST,
        ),
        Refusal::AlreadyUsed => ("This sign-in was already used.", StatusCode::BAD_REQUEST),
        Refusal::Unavailable => (
            "The sign-in service is unavailable; try again shortly.",
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        Refusal::NoRandom => (
            "The server could not start a sign-in.",
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
        Refusal::Busy => (
            "Too many sign-ins are being checked right now; try again in a moment.",
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        Refusal::TooManyFromAddress => (
            "Too many sign-ins were started from your network and not finished; \
             finish one, or try again in a few minutes.",
            StatusCode::TOO_MANY_REQUESTS,
        ),
        Refusal::Full => (
            "The sign-in service is at capacity; try again in a few minutes.",
            StatusCode::SERVICE_UNAVAILABLE,
        ),
    };
    let mut r = pages::error(message, status);
    let retry_after = match refusal {
        Refusal::Busy => Some("1"),
        Refusal::TooManyFromAddress | Refusal::Full => Some("60"),
        _ => None,
    };
    if let Some(seconds) = retry_after {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static(seconds));
    }
    r
}

/// A `303 See Other` to `location`.
pub(super) fn redirect(location: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// An error sent back to the client's (verified) redirect URI.
fn redirect_error(
    config: &Config,
    redirect_uri: &str,
    state: Option<&str>,
    error: &OAuthError,
) -> Response {
    redirect(&sign_in::error_location(config, redirect_uri, state, error))
}

/// A cookie's name on the wire: with the `__Host-` prefix when the issuer
/// is https, so that only this host, over TLS, can set it (RFC 6265bis §4.1.3.2).
fn cookie_name(config: &Config, name: &str) -> String {
    if config.server.is_https() {
        format!("__Host-{name}")
    } else {
        name.to_owned()
    }
}

/// The value of the cookie `name` (see [`cookie_name`]) the browser sent.
pub(super) fn cookie(headers: &HeaderMap, config: &Config, name: &str) -> Option<String> {
    let name = cookie_name(config, name);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// Sets the cookie `name` (see [`cookie_name`]); `max_age` 0 removes it.
pub(super) fn set_cookie(
    r: &mut Response,
    config: &Config,
    name: &str,
    value: &str,
    max_age: Option<u64>,
) {
    let mut c = cookie::Cookie::build((cookie_name(config, name), value))
        .path("/")
        .http_only(true)
        .secure(config.server.is_https())
        .same_site(cookie::SameSite::Lax);
    if let Some(age) = max_age {
        c = c.max_age(cookie::time::Duration::seconds(age as i64));
    }
    if let Ok(v) = HeaderValue::from_str(&c.build().to_string()) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

#[cfg(test)]
mod tests;
