//! CORS on the router, in process (see [`crate::http::testing`]).

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::Value;

use crate::http::testing::{APP_ORIGIN, Answer, Flow, PARTNER_ORIGIN, PASSWORD, urlencode};

const ELSEWHERE: &str = "https://evil.example.net";

async fn preflight(flow: &Flow, path: &str, origin: &str, method: &str) -> Answer {
    let req = Request::options(path)
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, method)
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "authorization")
        .body(Body::empty())
        .expect("request");
    flow.send(req).await
}

async fn post_from(flow: &Flow, path: &str, origin: &str, form: &str) -> Answer {
    let req = Request::post(path)
        .header(header::ORIGIN, origin)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_owned()))
        .expect("request");
    flow.send(req).await
}

fn allowed_origin(a: &Answer) -> Option<&str> {
    a.headers
        .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .map(|v| v.to_str().expect("ascii"))
}

fn never_with_credentials(a: &Answer) {
    assert!(
        !a.headers
            .contains_key(header::ACCESS_CONTROL_ALLOW_CREDENTIALS),
        "{:?}",
        a.headers
    );
}

#[tokio::test]
async fn preflights_are_answered_for_listed_origins_and_methods_only() {
    let flow = Flow::new().await;
    for (path, method) in [
        ("/oauth/token", "POST"),
        ("/oauth/revoke", "POST"),
        ("/userinfo", "GET"),
        ("/userinfo", "POST"),
    ] {
        for origin in [APP_ORIGIN, PARTNER_ORIGIN] {
            let ok = preflight(&flow, path, origin, method).await;
            assert_eq!(ok.status, StatusCode::NO_CONTENT, "{path} {origin}");
            assert_eq!(allowed_origin(&ok), Some(origin));
            assert!(
                ok.headers[header::ACCESS_CONTROL_ALLOW_METHODS]
                    .to_str()
                    .unwrap()
                    .contains(method)
            );
            assert_eq!(
                ok.headers[header::ACCESS_CONTROL_ALLOW_HEADERS],
                "authorization, content-type"
            );
            assert_eq!(ok.headers[header::VARY], "origin");
            never_with_credentials(&ok);
        }
        let stranger = preflight(&flow, path, ELSEWHERE, method).await;
        assert_eq!(stranger.status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(allowed_origin(&stranger), None);
        assert!(
            stranger.body.contains("allowed_origins"),
            "{}",
            stranger.body
        );
        // An origin is compared exactly: another port or scheme is another origin.
        let near = preflight(&flow, path, "https://app.example.com:8443", method).await;
        assert_eq!(near.status, StatusCode::FORBIDDEN);
    }
    let put = preflight(&flow, "/oauth/token", APP_ORIGIN, "PUT").await;
    assert_eq!(put.status, StatusCode::FORBIDDEN);
    assert_eq!(allowed_origin(&put), None);
    // Not a CORS endpoint: no preflight answer.
    let introspect = preflight(&flow, "/oauth/introspect", APP_ORIGIN, "POST").await;
    assert_eq!(allowed_origin(&introspect), None);
    assert_ne!(introspect.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_token_answer_is_readable_by_its_own_clients_origin_only() {
    let flow = Flow::new().await;
    let form =
        "grant_type=authorization_code&client_id=web-spa&code=nope&redirect_uri=x&code_verifier=y";
    let own = post_from(&flow, "/oauth/token", APP_ORIGIN, form).await;
    assert_eq!(own.status, StatusCode::BAD_REQUEST, "{}", own.body);
    assert_eq!(
        allowed_origin(&own),
        Some(APP_ORIGIN),
        "the page reads its error"
    );
    assert_eq!(
        own.headers[header::ACCESS_CONTROL_EXPOSE_HEADERS],
        "www-authenticate, retry-after"
    );
    never_with_credentials(&own);
    let partners = post_from(&flow, "/oauth/token", PARTNER_ORIGIN, form).await;
    assert_eq!(partners.status, StatusCode::BAD_REQUEST);
    assert_eq!(allowed_origin(&partners), None, "another client's origin");
    assert_eq!(partners.headers[header::VARY], "origin");
    let stranger = post_from(&flow, "/oauth/token", ELSEWHERE, form).await;
    assert_eq!(allowed_origin(&stranger), None);
    let plain = flow
        .send(
            Request::post("/oauth/token")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(form))
                .expect("request"),
        )
        .await;
    assert_eq!(allowed_origin(&plain), None, "no Origin, no CORS headers");
}

#[tokio::test]
async fn userinfo_is_readable_by_the_tokens_clients_origin() {
    let flow = Flow::new().await;
    let page = flow.authorize("&scope=openid%20profile", &[]).await;
    let browser = page.cookies();
    let done = flow.login(&page, &browser, PASSWORD).await;
    let tokens = flow.redeem(&done.query("code").expect("code")).await;
    let json: Value = serde_json::from_str(&tokens.body).expect("json");
    let access = json["access_token"].as_str().expect("token").to_owned();
    let get = |origin: &'static str, token: String| {
        let flow = &flow;
        async move {
            let req = Request::get("/userinfo")
                .header(header::ORIGIN, origin)
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .expect("request");
            flow.send(req).await
        }
    };
    let own = get(APP_ORIGIN, access.clone()).await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.body);
    assert_eq!(allowed_origin(&own), Some(APP_ORIGIN));
    never_with_credentials(&own);
    let partners = get(PARTNER_ORIGIN, access.clone()).await;
    assert_eq!(partners.status, StatusCode::OK);
    assert_eq!(allowed_origin(&partners), None, "the token is web-spa's");
    let bad = get(PARTNER_ORIGIN, "not-a-token".into()).await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        allowed_origin(&bad),
        Some(PARTNER_ORIGIN),
        "its error is readable"
    );

    // Revocation: the authenticated client's origins.
    let form = format!("token={}&client_id=web-spa", urlencode(&access));
    let revoked = post_from(&flow, "/oauth/revoke", APP_ORIGIN, &form).await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert_eq!(allowed_origin(&revoked), Some(APP_ORIGIN));
    let elsewhere = post_from(&flow, "/oauth/revoke", PARTNER_ORIGIN, &form).await;
    assert_eq!(allowed_origin(&elsewhere), None);
}

#[tokio::test]
async fn discovery_and_the_jwks_are_readable_from_any_origin_and_authorize_from_none() {
    let flow = Flow::new().await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        "/.well-known/jwks.json",
    ] {
        let req = Request::get(path)
            .header(header::ORIGIN, ELSEWHERE)
            .body(Body::empty())
            .expect("request");
        let doc = flow.send(req).await;
        assert_eq!(doc.status, StatusCode::OK, "{path}");
        assert_eq!(allowed_origin(&doc), Some("*"), "{path}");
        never_with_credentials(&doc);
        let pre = preflight(&flow, path, ELSEWHERE, "GET").await;
        assert_eq!(pre.status, StatusCode::NO_CONTENT, "{path}");
        assert_eq!(allowed_origin(&pre), Some("*"));
    }
    let req = Request::get("/authorize?client_id=web-spa")
        .header(header::ORIGIN, APP_ORIGIN)
        .body(Body::empty())
        .expect("request");
    let page = flow.send(req).await;
    assert_eq!(allowed_origin(&page), None, "a navigation, never a fetch");
}
