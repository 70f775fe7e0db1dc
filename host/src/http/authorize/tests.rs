//! The sign-in flow in process: the router driven with `oneshot`, a clock the
//! test moves, an SQLite store in a folder of its own.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::http::Request;
use base64::Engine as _;
use tower::ServiceExt as _;

use super::*;
use crate::config::Config;
use crate::grants::sign_in::{CODE_LIFETIME, PENDING_LIFETIME};
use crate::store::{NewUser, Store};
use crate::token::Clock;

const ISSUER: &str = "http://127.0.0.1:8080";
const CALLBACK: &str = "https://app.example.com/callback";
const VERIFIER: &str = "a-code-verifier-of-forty-three-characters-or-more";
const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "correct horse battery";

/// A clock that moves when the test says.
struct TestClock(AtomicU64);

impl Clock for TestClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

struct Flow {
    issuer: Arc<Issuer>,
    clock: Arc<TestClock>,
    _dir: tempfile::TempDir,
}

/// What a response said, read once.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn location(&self) -> url::Url {
        let l = self.headers[header::LOCATION].to_str().expect("ascii");
        url::Url::parse(l).expect("an absolute Location")
    }

    fn query(&self, name: &str) -> Option<String> {
        self.location()
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// `name=value` for each cookie set.
    fn cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| {
                let v = v.to_str().expect("ascii");
                v.split(';').next().unwrap_or_default().to_owned()
            })
            .collect()
    }

    /// The value of the hidden form field `name`.
    fn field(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&marker).expect("the field") + marker.len();
        let len = self.body[start..].find('"').expect("closing quote");
        self.body[start..start + len].to_owned()
    }
}

impl Flow {
    async fn new() -> Flow {
        let dir = tempfile::tempdir().expect("temp dir");
        let text = format!(
            r#"
[server]
issuer = "{ISSUER}"

[[apis]]
identifier = "https://orders.example.com"
scopes = ["read:orders", "write:orders"]
user_access = "allow_all"

[[apis]]
identifier = "https://machines.example.com"
scopes = ["run"]
user_access = "deny_all"

[[clients]]
id = "web-spa"
name = "Web <Shop>"
app_type = "spa"
redirect_uris = ["{CALLBACK}"]
"#
        );
        let path = dir.path().join("tessera.toml");
        let config = Config::parse(&path, &text, &|_| None).expect("a valid config");
        let store = Store::open(&config.store.url).await.expect("store");
        store
            .add_user(
                NewUser {
                    email: EMAIL.into(),
                    email_verified: true,
                    name: Some("Ada".into()),
                    password: PASSWORD.into(),
                    app_metadata: Default::default(),
                    user_metadata: Default::default(),
                },
                1_000,
            )
            .await
            .expect("a user");
        let clock = Arc::new(TestClock(AtomicU64::new(1_000_000)));
        let runtime = crate::plugin::Runtime::new().expect("runtime");
        let issuer = Issuer::new(runtime, config, clock.clone(), store)
            .await
            .expect("issuer");
        Flow {
            issuer: Arc::new(issuer),
            clock,
            _dir: dir,
        }
    }

    fn advance(&self, secs: u64) {
        self.clock.0.fetch_add(secs, Ordering::SeqCst);
    }

    async fn send(&self, req: Request<Body>) -> Answer {
        let mut req = req;
        let peer: SocketAddr = "127.0.0.1:40000".parse().expect("addr");
        req.extensions_mut().insert(ConnectInfo(peer));
        let r = super::super::router(self.issuer.clone())
            .oneshot(req)
            .await
            .expect("infallible");
        let status = r.status();
        let headers = r.headers().clone();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 20)
            .await
            .expect("body");
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn authorize(&self, extra: &str, cookies: &[String]) -> Answer {
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
            ring::digest::digest(&ring::digest::SHA256, VERIFIER.as_bytes()),
        );
        let uri = format!(
            "/authorize?response_type=code&client_id=web-spa&redirect_uri={}&state=s1\
             &code_challenge={challenge}&code_challenge_method=S256{extra}",
            urlencode(CALLBACK)
        );
        let mut req = Request::get(uri);
        if !cookies.is_empty() {
            req = req.header(header::COOKIE, cookies.join("; "));
        }
        self.send(req.body(Body::empty()).expect("request")).await
    }

    async fn login(&self, page: &Answer, cookies: &[String], password: &str) -> Answer {
        let form = format!(
            "tx={}&csrf={}&email={}&password={}",
            urlencode(&page.field("tx")),
            urlencode(&page.field("csrf")),
            urlencode(EMAIL),
            urlencode(password)
        );
        let mut req = Request::post("/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if !cookies.is_empty() {
            req = req.header(header::COOKIE, cookies.join("; "));
        }
        self.send(req.body(Body::from(form)).expect("request"))
            .await
    }

    async fn redeem(&self, code: &str) -> Answer {
        let form = format!(
            "grant_type=authorization_code&client_id=web-spa&code={}&redirect_uri={}&code_verifier={VERIFIER}",
            urlencode(code),
            urlencode(CALLBACK)
        );
        let req = Request::post("/oauth/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form))
            .expect("request");
        self.send(req).await
    }
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn a_sign_in_ends_in_a_code_the_token_endpoint_takes() {
    let flow = Flow::new().await;
    let page = flow
        .authorize(
            "&scope=openid%20read:orders&audience=https://orders.example.com",
            &[],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Web &lt;Shop&gt;"), "{}", page.body);
    let browser = page.cookies();
    assert_eq!(browser.len(), 1, "one browser binding: {browser:?}");
    assert!(browser[0].starts_with(BROWSER_COOKIE));

    let done = flow.login(&page, &browser, PASSWORD).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.query("state").as_deref(), Some("s1"));
    assert_eq!(done.query("iss").as_deref(), Some(ISSUER));
    assert!(done.cookies().iter().any(|c| c.starts_with(SESSION_COOKIE)));
    let code = done.query("code").expect("a code");

    let tokens = flow.redeem(&code).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.body);
    let json: serde_json::Value = serde_json::from_str(&tokens.body).expect("json");
    assert_eq!(json["scope"], "openid read:orders");
    assert!(json["id_token"].is_string());
}

#[tokio::test]
async fn a_session_signs_in_at_once_until_it_ends() {
    let flow = Flow::new().await;
    let page = flow.authorize("&scope=openid", &[]).await;
    let browser = page.cookies();
    let done = flow.login(&page, &browser, PASSWORD).await;
    let cookies: Vec<String> = browser.into_iter().chain(done.cookies()).collect();

    let again = flow.authorize("&scope=openid", &cookies).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
    assert!(again.query("code").is_some());

    // prompt=login asks again despite the session.
    let asked = flow.authorize("&scope=openid&prompt=login", &cookies).await;
    assert_eq!(asked.status, StatusCode::OK);
    assert!(asked.body.contains("name=\"password\""));

    flow.advance(sign_in::SESSION_LIFETIME + 1);
    let later = flow.authorize("&scope=openid", &cookies).await;
    assert_eq!(later.status, StatusCode::OK, "the session has ended");
    let silent = flow.authorize("&scope=openid&prompt=none", &cookies).await;
    assert_eq!(silent.status, StatusCode::SEE_OTHER);
    assert_eq!(silent.query("error").as_deref(), Some("login_required"));
    assert_eq!(silent.query("state").as_deref(), Some("s1"));
}

#[tokio::test]
async fn a_form_works_once_in_its_own_browser_and_not_after_it_expires() {
    let flow = Flow::new().await;
    let page = flow.authorize("&scope=openid", &[]).await;
    let browser = page.cookies();

    let elsewhere = flow
        .login(&page, &[format!("{BROWSER_COOKIE}=someone-else")], PASSWORD)
        .await;
    assert_eq!(elsewhere.status, StatusCode::FORBIDDEN);
    let bare = flow.login(&page, &[], PASSWORD).await;
    assert_eq!(bare.status, StatusCode::FORBIDDEN);

    let wrong = flow.login(&page, &browser, "not the password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("Wrong email or password."));
    assert_eq!(
        wrong.field("tx"),
        page.field("tx"),
        "the same sign-in goes on"
    );

    let done = flow.login(&page, &browser, PASSWORD).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let replay = flow.login(&page, &browser, PASSWORD).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert!(replay.body.contains("expired"), "{}", replay.body);

    let late = flow.authorize("&scope=openid", &browser).await;
    assert!(late.cookies().is_empty(), "the browser keeps its binding");
    flow.advance(PENDING_LIFETIME + 1);
    let expired = flow.login(&late, &browser, PASSWORD).await;
    assert_eq!(expired.status, StatusCode::BAD_REQUEST);
    assert!(expired.body.contains("expired"), "{}", expired.body);
}

#[tokio::test]
async fn the_policy_decides_before_a_code_exists() {
    let flow = Flow::new().await;
    let page = flow.authorize("&scope=openid", &[]).await;
    let browser = page.cookies();
    let done = flow.login(&page, &browser, PASSWORD).await;
    let cookies: Vec<String> = browser.into_iter().chain(done.cookies()).collect();

    let denied = flow
        .authorize("&scope=run&audience=https://machines.example.com", &cookies)
        .await;
    assert_eq!(denied.query("error").as_deref(), Some("access_denied"));
    let beyond = flow
        .authorize(
            "&scope=delete:orders&audience=https://orders.example.com",
            &cookies,
        )
        .await;
    assert_eq!(beyond.query("error").as_deref(), Some("invalid_scope"));
    let unnamed = flow.authorize("&scope=read:orders", &cookies).await;
    assert_eq!(unnamed.query("error").as_deref(), Some("invalid_request"));
    let unknown = flow
        .authorize(
            "&scope=openid&audience=https://nowhere.example.com",
            &cookies,
        )
        .await;
    assert_eq!(unknown.query("error").as_deref(), Some("invalid_target"));
    for refused in [&denied, &beyond, &unnamed, &unknown] {
        assert_eq!(refused.query("iss").as_deref(), Some(ISSUER));
        assert!(refused.query("code").is_none());
    }

    // A code is good for its lifetime and no longer.
    let ok = flow.authorize("&scope=openid", &cookies).await;
    let code = ok.query("code").expect("a code");
    flow.advance(CODE_LIFETIME + 1);
    let late = flow.redeem(&code).await;
    assert_eq!(late.status, StatusCode::BAD_REQUEST);
    assert!(late.body.contains("invalid_grant"), "{}", late.body);
}
