//! CORS (the Fetch standard's CORS protocol) for the endpoints a browser
//! application calls from its own origin: the token endpoint, revocation
//! (RFC 7009 §2.1 invites it) and `/userinfo`, for the origins clients list
//! in `allowed_origins`; the discovery documents and the JWKS, which are
//! public, for any origin.
//!
//! Never with credentials: no `Access-Control-Allow-Credentials`, so no page
//! can have the browser send Tessera's cookies along and read the answer.
//! Every call these endpoints take carries its own proof instead (a code and
//! its verifier, a refresh token, a bearer token). `/authorize` and the login
//! and consent forms are navigations, not fetches, and get no CORS headers.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::Issuer;

/// Who may read an endpoint's answers from a page of another origin.
#[derive(Clone)]
pub struct Cors {
    issuer: Arc<Issuer>,
    public: bool,
    methods: &'static str,
}

impl Cors {
    /// A public document (discovery, the JWKS): any origin.
    pub fn public(issuer: Arc<Issuer>) -> Cors {
        Cors {
            issuer,
            public: true,
            methods: "GET",
        }
    }

    /// An endpoint for clients taking `methods` (`"POST"`, `"GET, POST"`):
    /// the origins in `allowed_origins`.
    pub fn clients(issuer: Arc<Issuer>, methods: &'static str) -> Cors {
        Cors {
            issuer,
            public: false,
            methods,
        }
    }
}

/// Set on a response by its handler: the client it answered, whose
/// `allowed_origins` then decide alone. Without it (the request named no
/// known client, or failed before it did) any client's origin may read it,
/// so a page can read the error it caused.
#[derive(Clone)]
pub struct AnsweredClient(pub String);

/// How long a browser may reuse a preflight's answer (seconds).
const PREFLIGHT_MAX_AGE: &str = "600";
/// The request headers a browser application sends.
const ALLOWED_HEADERS: &str = "authorization, content-type";
/// The answer headers a page may read besides the simple ones.
const EXPOSED_HEADERS: &str = "www-authenticate, retry-after";

/// The middleware: answers preflights itself, and marks the other answers
/// readable for an allowed `Origin`.
pub async fn layer(State(cors): State<Cors>, req: Request, next: Next) -> Response {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Some(origin) = origin else {
        let mut r = next.run(req).await;
        vary(&cors, &mut r);
        return r;
    };
    if req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        return preflight(&cors, &origin, req.headers());
    }
    let mut r = next.run(req).await;
    let allowed = cors.public || {
        let snapshot = cors.issuer.snapshot();
        let config = &snapshot.config;
        match r.extensions().get::<AnsweredClient>() {
            Some(AnsweredClient(id)) => config
                .clients
                .get(id)
                .is_some_and(|c| c.allowed_origins.contains(&origin)),
            None => config.is_web_origin(&origin),
        }
    };
    if allowed {
        allow(&cors, &origin, r.headers_mut());
        r.headers_mut().insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED_HEADERS),
        );
    }
    vary(&cors, &mut r);
    r
}

/// A preflight (`OPTIONS` with `Access-Control-Request-Method`): 204 with
/// the methods and headers allowed, or 403 without CORS headers for an
/// origin no client lists or a method the endpoint does not take.
fn preflight(cors: &Cors, origin: &str, headers: &HeaderMap) -> Response {
    let method = headers
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let origin_ok = cors.public || cors.issuer.snapshot().config.is_web_origin(origin);
    let method_ok = cors.methods.split(", ").any(|m| m == method);
    let mut r = if origin_ok && method_ok {
        let mut r = StatusCode::NO_CONTENT.into_response();
        let h = r.headers_mut();
        allow(cors, origin, h);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(cors.methods),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOWED_HEADERS),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(PREFLIGHT_MAX_AGE),
        );
        r
    } else if !origin_ok {
        (
            StatusCode::FORBIDDEN,
            "this origin is not in any client's allowed_origins\n",
        )
            .into_response()
    } else {
        (
            StatusCode::FORBIDDEN,
            format!("this endpoint takes {} only\n", cors.methods),
        )
            .into_response()
    };
    vary(cors, &mut r);
    r
}

fn allow(cors: &Cors, origin: &str, h: &mut HeaderMap) {
    let value = if cors.public {
        Some(HeaderValue::from_static("*"))
    } else {
        HeaderValue::from_str(origin).ok()
    };
    if let Some(v) = value {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
}

/// Answers that depend on `Origin` say so, for caches in between.
fn vary(cors: &Cors, r: &mut Response) {
    if !cors.public {
        r.headers_mut()
            .append(header::VARY, HeaderValue::from_static("origin"));
    }
}

#[cfg(test)]
mod tests;
