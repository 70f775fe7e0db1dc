//! `GET /userinfo` (OpenID Connect Core §5.3): the signed-in user's claims,
//! chosen by the access token's scopes, for a bearer token of this issuer
//! that was granted `openid` and whose audience is this endpoint (a user
//! flow without an API). §5.3 leaves to the provider which tokens the
//! endpoint takes; an access token for an API is for that API, so a
//! resource server cannot turn the tokens it is shown into the users'
//! profiles. A revoked token (RFC 7009) is refused.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::response::no_store_json;
use crate::Issuer;
use crate::token::verify;

/// `GET` and `POST /userinfo`.
pub async fn userinfo(State(issuer): State<Arc<Issuer>>, headers: HeaderMap) -> Response {
    let Some(token) = bearer(&headers) else {
        return challenge(StatusCode::UNAUTHORIZED, None);
    };
    let snapshot = issuer.snapshot();
    let claims = match verify::access_token(
        &issuer.keys(),
        &snapshot.config.server.issuer,
        token,
        issuer.clock.now(),
    ) {
        Ok(c) => c,
        Err(_) => {
            return challenge(
                StatusCode::UNAUTHORIZED,
                Some(("invalid_token", "the access token is invalid or expired")),
            );
        }
    };
    let audience = snapshot.config.server.url("/userinfo");
    if claims.get("aud").and_then(Value::as_str) != Some(audience.as_str()) {
        return challenge(
            StatusCode::UNAUTHORIZED,
            Some((
                "invalid_token",
                "the access token is for an API, not for /userinfo; ask for a token without audience",
            )),
        );
    }
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match issuer.store.access_token_revoked(jti).await {
        Ok(false) => {}
        Ok(true) => {
            return challenge(
                StatusCode::UNAUTHORIZED,
                Some(("invalid_token", "the access token was revoked")),
            );
        }
        Err(e) => return store_unavailable(e),
    }
    let scopes: Vec<&str> = claims
        .get("scope")
        .and_then(Value::as_str)
        .unwrap_or("")
        .split(' ')
        .collect();
    if !scopes.contains(&"openid") {
        return challenge(
            StatusCode::FORBIDDEN,
            Some((
                "insufficient_scope",
                "the access token was not granted openid",
            )),
        );
    }
    let Some(sub) = claims.get("sub").and_then(Value::as_str) else {
        return challenge(
            StatusCode::UNAUTHORIZED,
            Some(("invalid_token", "the access token has no subject")),
        );
    };
    let user = match issuer.store.user_by_id(sub).await {
        Ok(Some(u)) => u,
        Ok(None) => {
            return challenge(
                StatusCode::UNAUTHORIZED,
                Some(("invalid_token", "the user no longer exists")),
            );
        }
        Err(e) => return store_unavailable(e),
    };
    let mut out = Map::new();
    out.insert("sub".into(), user.id.clone().into());
    if scopes.contains(&"profile")
        && let Some(name) = &user.name
    {
        out.insert("name".into(), name.clone().into());
    }
    if scopes.contains(&"email") {
        out.insert("email".into(), user.email.clone().into());
        out.insert("email_verified".into(), user.email_verified.into());
    }
    let mut r = no_store_json(StatusCode::OK, Value::Object(out).to_string().into_bytes());
    if let Some(client) = claims.get("client_id").and_then(Value::as_str) {
        r.extensions_mut()
            .insert(super::cors::AnsweredClient(client.to_owned()));
    }
    r
}

fn store_unavailable(e: crate::store::StoreError) -> Response {
    tracing::error!(error = %e, "reading the store for /userinfo failed");
    let mut r = StatusCode::SERVICE_UNAVAILABLE.into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next()?.to_str().ok()?;
    if values.next().is_some() {
        return None;
    }
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// RFC 6750 §3 error response.
fn challenge(status: StatusCode, error: Option<(&str, &str)>) -> Response {
    let value = match error {
        None => "Bearer realm=\"tessera\"".to_owned(),
        Some((code, description)) => format!(
            "Bearer realm=\"tessera\", error=\"{code}\", error_description=\"{description}\""
        ),
    };
    let mut r = status.into_response();
    if let Ok(v) = HeaderValue::from_str(&value) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
