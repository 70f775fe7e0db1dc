//! RP-initiated logout in process (see [`crate::http::testing`]).

use axum::body::Body;
use axum::http::{Request, StatusCode, header};

use crate::grants::user_tokens::ID_TOKEN_LIFETIME;
use crate::http::authorize::SESSION_COOKIE;
use crate::http::testing::{Answer, Flow, PASSWORD, SIGNED_OUT, urlencode};
use crate::store::NewUser;

/// Signs the user in: the browser's cookies and the ID token the SPA got.
async fn signed_in(flow: &Flow) -> (Vec<String>, String) {
    let page = flow.authorize("&scope=openid", &[]).await;
    let browser = page.cookies();
    let done = flow.login(&page, &browser, PASSWORD).await;
    let code = done.query("code").expect("a code");
    let tokens = flow.redeem(&code).await;
    let json: serde_json::Value = serde_json::from_str(&tokens.body).expect("json");
    let id_token = json["id_token"].as_str().expect("an ID token").to_owned();
    let cookies = browser.into_iter().chain(done.cookies()).collect();
    (cookies, id_token)
}

async fn get_logout(flow: &Flow, query: &str, cookies: &[String]) -> Answer {
    let mut req = Request::get(format!("/oidc/logout?{query}"));
    if !cookies.is_empty() {
        req = req.header(header::COOKIE, cookies.join("; "));
    }
    flow.send(req.body(Body::empty()).expect("request")).await
}

async fn post_logout(flow: &Flow, form: &str, cookies: &[String]) -> Answer {
    let req = Request::post("/oidc/logout")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, cookies.join("; "));
    flow.send(req.body(Body::from(form.to_owned())).expect("request"))
        .await
}

/// Whether these cookies still sign the user in at once.
async fn still_signed_in(flow: &Flow, cookies: &[String]) -> bool {
    let again = flow.authorize("&scope=openid", cookies).await;
    again.status == StatusCode::SEE_OTHER && again.query("code").is_some()
}

fn session_cleared(answer: &Answer) -> bool {
    answer
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|c| c.starts_with(&format!("{SESSION_COOKIE}=;")) && c.contains("Max-Age=0"))
}

#[tokio::test]
async fn a_hint_for_the_signed_in_user_ends_the_session_and_returns_with_state() {
    let flow = Flow::new().await;
    let (cookies, id_token) = signed_in(&flow).await;
    assert!(still_signed_in(&flow, &cookies).await);

    let query = format!(
        "id_token_hint={id_token}&post_logout_redirect_uri={}&state=af0ifjsldkj",
        urlencode(SIGNED_OUT)
    );
    let out = get_logout(&flow, &query, &cookies).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER, "{}", out.body);
    assert_eq!(
        out.headers[header::LOCATION],
        format!("{SIGNED_OUT}?state=af0ifjsldkj")
    );
    assert!(session_cleared(&out), "{:?}", out.headers);
    // The store forgot the session: a browser that kept the cookie is not
    // signed in either.
    assert!(!still_signed_in(&flow, &cookies).await);
}

#[tokio::test]
async fn an_expired_hint_still_names_the_sign_in_and_post_works_like_get() {
    let flow = Flow::new().await;
    let (cookies, id_token) = signed_in(&flow).await;
    flow.advance(ID_TOKEN_LIFETIME + 60);
    let out = post_logout(&flow, &format!("id_token_hint={id_token}"), &cookies).await;
    assert_eq!(out.status, StatusCode::OK, "{}", out.body);
    assert!(out.body.contains("You are signed out"), "{}", out.body);
    assert!(!still_signed_in(&flow, &cookies).await);
}

#[tokio::test]
async fn requests_that_do_not_check_out_end_nothing() {
    let flow = Flow::new().await;
    let (cookies, id_token) = signed_in(&flow).await;
    let mut forged: Vec<String> = id_token.split('.').map(str::to_owned).collect();
    forged[2] = forged[2].chars().rev().collect();
    let cases = [
        (
            format!(
                "id_token_hint={id_token}&post_logout_redirect_uri={}",
                urlencode("https://evil.example/x")
            ),
            "is not registered for Web &lt;Shop&gt;",
        ),
        (
            format!(
                "id_token_hint={id_token}&post_logout_redirect_uri={}",
                urlencode(&format!("{SIGNED_OUT}/"))
            ),
            "is not registered",
        ),
        (
            format!("id_token_hint={id_token}&client_id=acme"),
            "not the audience of the id_token_hint",
        ),
        ("client_id=nobody".to_owned(), "not known to this issuer"),
        (
            format!("id_token_hint={}", forged.join(".")),
            "not an ID token this issuer signed",
        ),
        (
            format!("post_logout_redirect_uri={}", urlencode(SIGNED_OUT)),
            "needs a client_id or an id_token_hint",
        ),
        (
            format!("id_token_hint={id_token}&state={}", "s".repeat(1025)),
            "state is longer than 1024 bytes",
        ),
        (
            format!("id_token_hint={id_token}&id_token_hint={id_token}"),
            "id_token_hint",
        ),
    ];
    for (query, message) in cases {
        let out = get_logout(&flow, &query, &cookies).await;
        assert_eq!(out.status, StatusCode::BAD_REQUEST, "{query}: {}", out.body);
        assert!(out.body.contains(message), "{query}: {}", out.body);
        assert!(!out.headers.contains_key(header::LOCATION), "{query}");
        assert!(!session_cleared(&out), "{query}");
    }
    assert!(still_signed_in(&flow, &cookies).await);
}

#[tokio::test]
async fn without_a_hint_the_user_confirms_with_a_value_only_the_issuer_makes() {
    let flow = Flow::new().await;
    let (cookies, _) = signed_in(&flow).await;
    let query = format!(
        "client_id=web-spa&post_logout_redirect_uri={}&state=s9",
        urlencode(SIGNED_OUT)
    );
    let asked = get_logout(&flow, &query, &cookies).await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.body);
    assert!(asked.body.contains("Sign out?"), "{}", asked.body);
    assert!(asked.body.contains("Web &lt;Shop&gt;"), "{}", asked.body);
    assert!(!session_cleared(&asked));
    assert!(
        still_signed_in(&flow, &cookies).await,
        "asking ends nothing"
    );

    let confirm = asked.field("confirm");
    let with = |value: &str| {
        format!(
            "client_id=web-spa&post_logout_redirect_uri={}&state=s9&confirm={}",
            urlencode(SIGNED_OUT),
            urlencode(value)
        )
    };
    // A made-up confirmation, or the real one in a link, is asked about again.
    let made_up = post_logout(&flow, &with("AAAA"), &cookies).await;
    assert!(made_up.body.contains("Sign out?"), "{}", made_up.body);
    let linked = get_logout(&flow, &with(&confirm), &cookies).await;
    assert!(linked.body.contains("Sign out?"), "{}", linked.body);
    assert!(still_signed_in(&flow, &cookies).await);

    let out = post_logout(&flow, &with(&confirm), &cookies).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER, "{}", out.body);
    assert_eq!(
        out.headers[header::LOCATION],
        format!("{SIGNED_OUT}?state=s9")
    );
    assert!(session_cleared(&out));
    assert!(!still_signed_in(&flow, &cookies).await);
}

#[tokio::test]
async fn a_hint_ends_the_session_it_comes_with_and_no_session_needs_nothing() {
    let flow = Flow::new().await;
    let (first, id_token) = signed_in(&flow).await;
    // Another browser of the same user has a session of its own: the hint
    // ends the one whose cookie comes with the request.
    let (other, _) = signed_in(&flow).await;
    let out = get_logout(&flow, &format!("id_token_hint={id_token}"), &other).await;
    assert_eq!(out.status, StatusCode::OK);
    assert!(out.body.contains("You are signed out"), "{}", out.body);
    assert!(!still_signed_in(&flow, &other).await);
    assert!(still_signed_in(&flow, &first).await);

    // No session at all: nothing to end, straight back to the application.
    let query = format!(
        "client_id=web-spa&post_logout_redirect_uri={}",
        urlencode(SIGNED_OUT)
    );
    let none = get_logout(&flow, &query, &[]).await;
    assert_eq!(none.status, StatusCode::SEE_OTHER, "{}", none.body);
    assert_eq!(none.headers[header::LOCATION], SIGNED_OUT);
    let bare = get_logout(&flow, "", &[]).await;
    assert!(bare.body.contains("You are signed out"), "{}", bare.body);
}

#[tokio::test]
async fn a_hint_for_another_user_is_asked_about() {
    let flow = Flow::new().await;
    let (_, ada_token) = signed_in(&flow).await;
    flow.issuer
        .store
        .add_user(
            NewUser {
                email: "bob@example.com".into(),
                email_verified: true,
                name: None,
                password: PASSWORD.into(),
                app_metadata: Default::default(),
                user_metadata: Default::default(),
            },
            1_000,
        )
        .await
        .expect("a second user");
    let page = flow.authorize("&scope=openid", &[]).await;
    let browser = page.cookies();
    let form = format!(
        "tx={}&csrf={}&email=bob%40example.com&password={}",
        urlencode(&page.field("tx")),
        urlencode(&page.field("csrf")),
        urlencode(PASSWORD)
    );
    let req = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, browser.join("; "));
    let done = flow
        .send(req.body(Body::from(form)).expect("request"))
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let bob: Vec<String> = browser.into_iter().chain(done.cookies()).collect();

    let asked = get_logout(&flow, &format!("id_token_hint={ada_token}"), &bob).await;
    assert!(asked.body.contains("Sign out?"), "{}", asked.body);
    assert!(!session_cleared(&asked));
    assert!(still_signed_in(&flow, &bob).await);
}

#[tokio::test]
async fn discovery_names_the_end_session_endpoint() {
    let flow = Flow::new().await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let doc = flow
            .send(Request::get(path).body(Body::empty()).expect("request"))
            .await;
        let json: serde_json::Value = serde_json::from_str(&doc.body).expect("json");
        assert_eq!(
            json["end_session_endpoint"],
            format!("{}/oidc/logout", crate::http::testing::ISSUER)
        );
    }
}
