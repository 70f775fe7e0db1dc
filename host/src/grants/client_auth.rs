//! Client authentication with what it needs beyond the configuration: a
//! `private_key_jwt` assertion is spent in the store, once, so one that was
//! captured cannot be used again by anyone (RFC 7523 §3 item 7). The store
//! is shared, so a replay is refused by every replica.

use crate::config::Config;
use crate::oauth::client_auth::Authenticated;
use crate::oauth::{self, ClientCredentials, ErrorCode, OAuthError};
use crate::store::Store;
use crate::token::Clock;

/// Authenticates the client of a request to the endpoint at `path`
/// (`/oauth/token`, `/oauth/introspect`, …).
pub async fn authenticate(
    config: &Config,
    store: &Store,
    clock: &dyn Clock,
    creds: &ClientCredentials,
    path: &str,
) -> Result<Authenticated, OAuthError> {
    let server = &config.server;
    let token_endpoint = server.url("/oauth/token");
    let endpoint = server.url(path);
    let audiences = [server.issuer.as_str(), &token_endpoint, &endpoint];
    let failed = |e: &OAuthError| {
        if e.code == ErrorCode::InvalidClient {
            let claimed = Some(creds.id.as_str()).filter(|id| !id.is_empty());
            crate::audit::client_auth_failed(claimed, path, &e.safe_description());
        }
    };
    let verified =
        oauth::authenticate(config, creds, &audiences, clock.now()).inspect_err(failed)?;
    if let Some(spent) = verified.assertion {
        let first_use = store
            .spend_client_assertion(&spent.client_id, &spent.jti, spent.remember_until)
            .await
            .map_err(super::store_error)?;
        if !first_use {
            let e = OAuthError::new(
                ErrorCode::InvalidClient,
                "the client assertion was used before; sign a new one, with a new jti, \
                 for every request (RFC 7523 §3)",
            );
            failed(&e);
            return Err(e);
        }
    }
    Ok(verified.client)
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    // invalid_client is 400 unless the client sent Basic credentials (RFC
    // 6749 §5.2: 401 with a challenge then).
    use serde_json::{Value, json};

    use crate::config::Algorithm;
    use crate::http::testing::{Answer, Flow, ISSUER, signer_key, urlencode};
    use crate::oauth::client_assertion::JWT_BEARER;
    use crate::token::jwk::testing::ClientKeyPair;

    const ORDERS: &str = "audience=https://orders.example.com";

    /// An assertion for `signer`, by `key`, for `aud`, valid a minute.
    fn assertion(flow: &Flow, key: &ClientKeyPair, aud: &str, jti: &str) -> String {
        let now = crate::token::Clock::now(flow.clock.as_ref());
        key.sign(&json!({
            "iss": "signer", "sub": "signer", "aud": aud,
            "iat": now, "exp": now + 60, "jti": jti,
        }))
    }

    async fn post(flow: &Flow, path: &str, jwt: &str, form: &str) -> Answer {
        let body = format!(
            "client_assertion_type={}&client_assertion={}&{form}",
            urlencode(JWT_BEARER),
            urlencode(jwt)
        );
        flow.post_form(path, None, &body).await
    }

    fn error(a: &Answer) -> (String, String) {
        let v: Value = serde_json::from_str(&a.body).expect("json");
        (
            v["error"].as_str().unwrap_or_default().to_owned(),
            v["error_description"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    }

    #[tokio::test]
    async fn a_signed_assertion_gets_a_token_once() {
        let flow = Flow::new().await;
        let jwt = assertion(&flow, signer_key(), &format!("{ISSUER}/oauth/token"), "j-1");
        let form = format!("grant_type=client_credentials&{ORDERS}");
        let r = post(&flow, "/oauth/token", &jwt, &form).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let token: Value = serde_json::from_str(&r.body).expect("json");
        let at = token["access_token"].as_str().expect("token");
        let claims = crate::token::verify::access_token(
            &flow.issuer.keys(),
            ISSUER,
            at,
            crate::token::Clock::now(flow.clock.as_ref()),
        )
        .expect("our token");
        assert_eq!(claims["client_id"], "signer");

        let replay = post(&flow, "/oauth/token", &jwt, &form).await;
        assert_eq!(replay.status, StatusCode::BAD_REQUEST);
        let (code, why) = error(&replay);
        assert_eq!(code, "invalid_client");
        assert!(why.contains("used before"), "{why}");
    }

    #[tokio::test]
    async fn the_audience_is_the_issuer_the_token_endpoint_or_the_endpoint_called() {
        let flow = Flow::new().await;
        let form = format!("grant_type=client_credentials&{ORDERS}");
        let to_issuer = assertion(&flow, signer_key(), ISSUER, "j-iss");
        let r = post(&flow, "/oauth/token", &to_issuer, &form).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let at: Value = serde_json::from_str(&r.body).expect("json");
        let token = format!("token={}", at["access_token"].as_str().expect("token"));

        let introspect = format!("{ISSUER}/oauth/introspect");
        let r = post(
            &flow,
            "/oauth/introspect",
            &assertion(&flow, signer_key(), &introspect, "j-in"),
            &token,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(
            serde_json::from_str::<Value>(&r.body).expect("json")["active"],
            true
        );

        let r = post(
            &flow,
            "/oauth/token",
            &assertion(&flow, signer_key(), &introspect, "j-x"),
            &form,
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(error(&r).1.contains("aud"), "{}", r.body);

        let revoke = format!("{ISSUER}/oauth/revoke");
        let r = post(
            &flow,
            "/oauth/revoke",
            &assertion(&flow, signer_key(), &revoke, "j-rv"),
            &token,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }

    #[tokio::test]
    async fn an_expired_or_foreign_assertion_is_refused() {
        let flow = Flow::new().await;
        let form = format!("grant_type=client_credentials&{ORDERS}");
        let endpoint = format!("{ISSUER}/oauth/token");
        let jwt = assertion(&flow, signer_key(), &endpoint, "j-late");
        flow.advance(60 + crate::oauth::client_assertion::CLOCK_SKEW_SECS);
        let r = post(&flow, "/oauth/token", &jwt, &form).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(error(&r).1.contains("expired"), "{}", r.body);

        let stranger = ClientKeyPair::new(Algorithm::ES256, "signer-1");
        let r = post(
            &flow,
            "/oauth/token",
            &assertion(&flow, &stranger, &endpoint, "j-s"),
            &form,
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            error(&r),
            (
                "invalid_client".into(),
                "client authentication failed".into()
            )
        );

        let r = post(
            &flow,
            "/oauth/token",
            &assertion(&flow, signer_key(), &endpoint, "j-ok"),
            &format!("{form}&client_id=acme"),
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "client_id names another client"
        );
    }

    #[tokio::test]
    async fn a_client_with_keys_cannot_authenticate_by_name_or_secret() {
        let flow = Flow::new().await;
        let form = format!("grant_type=client_credentials&{ORDERS}");
        let r = flow
            .post_form("/oauth/token", None, &format!("{form}&client_id=signer"))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        let r = flow
            .post_form("/oauth/token", Some(("signer", "")), &form)
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
        let r = flow
            .post_form("/oauth/token", Some(("signer", "guess")), &form)
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
        let r = flow
            .post_form("/oauth/introspect", None, "token=x&client_id=signer")
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        assert_eq!(error(&r).0, "invalid_client");
    }
}
