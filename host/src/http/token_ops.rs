//! `POST /oauth/introspect` (RFC 7662) and `POST /oauth/revoke` (RFC 7009):
//! a client asks about, or gives up, a token. Both read the form and
//! authenticate the client as the token endpoint does; the decisions are in
//! [`crate::grants::introspection`] and [`crate::grants::revocation`].

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::response::{error_response, no_store_json};
use super::token::{authorization, read_form};
use crate::Issuer;
use crate::grants::{client_auth, introspection, revocation};
use crate::oauth::client_auth::Authenticated;
use crate::oauth::{OAuthError, TokenQuery};

/// The form, its token and the client that authenticated to `uri`.
async fn read(
    issuer: &Issuer,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<(TokenQuery, Authenticated), Response> {
    let params = read_form(body, uri, headers)
        .await
        .map_err(|(e, status)| error_response(&e, status))?;
    let query =
        TokenQuery::parse(&params, &authorization(headers)).map_err(IntoResponse::into_response)?;
    let auth = client_auth::authenticate(
        &issuer.snapshot().config,
        &issuer.store,
        issuer.clock.as_ref(),
        &query.client,
        uri.path(),
    )
    .await
    .map_err(IntoResponse::into_response)?;
    Ok((query, auth))
}

/// `POST /oauth/introspect`.
pub async fn introspect(
    State(issuer): State<Arc<Issuer>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (query, auth) = match read(&issuer, &uri, &headers, body).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    let answer = introspection::introspect(
        &issuer.snapshot(),
        &issuer.keys(),
        &issuer.store,
        issuer.clock.as_ref(),
        auth,
        &query.token,
    )
    .await;
    match answer {
        Ok(body) => no_store_json(StatusCode::OK, body.to_string().into_bytes()),
        Err(e) => e.into_response(),
    }
}

/// `POST /oauth/revoke`.
pub async fn revoke(
    State(issuer): State<Arc<Issuer>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (query, auth) = match read(&issuer, &uri, &headers, body).await {
        Ok(ok) => ok,
        Err(r) => return r,
    };
    let answered = super::cors::AnsweredClient(auth.client().id.clone());
    let done: Result<(), OAuthError> = revocation::revoke(
        &issuer.snapshot(),
        &issuer.keys(),
        &issuer.store,
        issuer.clock.as_ref(),
        auth,
        &query.token,
    )
    .await;
    let mut r = match done {
        // §2.2: the body is ignored by the client; an empty one says so.
        Ok(()) => (
            StatusCode::OK,
            [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        )
            .into_response(),
        Err(e) => e.into_response(),
    };
    r.extensions_mut().insert(answered);
    r
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use serde_json::{Value, json};

    use crate::http::testing::{ACME_SECRET, Flow, urlencode};

    const ACME: Option<(&str, &str)> = Some(("acme", ACME_SECRET));

    async fn token(flow: &Flow) -> (String, u64) {
        let r = flow
            .post_form(
                "/oauth/token",
                ACME,
                "grant_type=client_credentials&audience=https://orders.example.com",
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let v: Value = serde_json::from_str(&r.body).expect("json");
        (
            v["access_token"].as_str().expect("token").to_owned(),
            v["expires_in"].as_u64().expect("expires_in"),
        )
    }

    async fn introspect(flow: &Flow, token: &str) -> Value {
        let r = flow
            .post_form(
                "/oauth/introspect",
                ACME,
                &format!("token={}", urlencode(token)),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        serde_json::from_str(&r.body).expect("json")
    }

    #[tokio::test]
    async fn an_access_token_is_active_until_its_exp_and_no_longer() {
        let flow = Flow::new().await;
        let (at, lifetime) = token(&flow).await;
        assert_eq!(introspect(&flow, &at).await["active"], true);
        flow.advance(lifetime - 1);
        assert_eq!(introspect(&flow, &at).await["active"], true);
        flow.advance(1);
        assert_eq!(introspect(&flow, &at).await, json!({"active": false}));
        // Revoking an expired token is a success with nothing to do.
        let r = flow
            .post_form("/oauth/revoke", ACME, &format!("token={}", urlencode(&at)))
            .await;
        assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, ""));
    }

    #[tokio::test]
    async fn a_revoked_token_leaves_the_list_when_it_would_have_expired() {
        let flow = Flow::new().await;
        let (at, lifetime) = token(&flow).await;
        let r = flow
            .post_form("/oauth/revoke", ACME, &format!("token={}", urlencode(&at)))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(introspect(&flow, &at).await, json!({"active": false}));
        let store = &flow.issuer.store;
        let now = flow.issuer.clock.now();
        assert_eq!(
            store
                .purge_expired(now)
                .await
                .expect("purge")
                .revoked_access_tokens,
            0
        );
        flow.advance(lifetime);
        let now = flow.issuer.clock.now();
        assert_eq!(
            store
                .purge_expired(now)
                .await
                .expect("purge")
                .revoked_access_tokens,
            1
        );
    }
}
