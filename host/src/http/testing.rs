//! An issuer in process for tests: the router driven with `oneshot`, a clock
//! the test moves, an SQLite store in a folder of its own, one user, a SPA
//! and a machine client.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::http::Request;
use base64::Engine as _;
use tower::ServiceExt as _;

use std::sync::Arc;

use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, StatusCode, header};

use crate::Issuer;
use crate::config::Config;
use crate::store::{NewUser, Store};
use crate::token::Clock;
use crate::token::jwk::testing::ClientKeyPair;

pub const ISSUER: &str = "http://127.0.0.1:8080";
pub const CALLBACK: &str = "https://app.example.com/callback";
/// Where the SPA asks to return after signing out.
pub const SIGNED_OUT: &str = "https://app.example.com/signed-out";
/// The web-spa client's `allowed_origins`.
pub const APP_ORIGIN: &str = "https://app.example.com";
/// The partner client's `allowed_origins`.
pub const PARTNER_ORIGIN: &str = "https://partner.example.com";
pub const VERIFIER: &str = "a-code-verifier-of-forty-three-characters-or-more";
pub const EMAIL: &str = "ada@example.com";
pub const PASSWORD: &str = "correct horse battery";
/// The machine client `acme`'s secret.
pub const ACME_SECRET: &str = "acme-secret-of-a-good-length-0123456789";

/// The key pair of the machine client `signer`, which authenticates with
/// `private_key_jwt`; its public key is in the configuration as `jwks`.
pub fn signer_key() -> &'static ClientKeyPair {
    static KEY: std::sync::OnceLock<ClientKeyPair> = std::sync::OnceLock::new();
    KEY.get_or_init(|| ClientKeyPair::new(crate::config::Algorithm::ES256, "signer-1"))
}

/// `value`, a JSON object of strings, as a TOML inline table.
fn toml_inline(value: &serde_json::Value) -> String {
    let members: Vec<String> = value
        .as_object()
        .expect("an object")
        .iter()
        .map(|(k, v)| format!("{k} = {v}"))
        .collect();
    format!("{{ {} }}", members.join(", "))
}

/// A clock that moves when the test says.
pub struct TestClock(AtomicU64);

impl Clock for TestClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

pub struct Flow {
    pub issuer: Arc<Issuer>,
    pub clock: Arc<TestClock>,
    _dir: tempfile::TempDir,
}

/// What a response said, read once.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn location(&self) -> url::Url {
        let l = self.headers[header::LOCATION].to_str().expect("ascii");
        url::Url::parse(l).expect("an absolute Location")
    }

    pub fn query(&self, name: &str) -> Option<String> {
        self.location()
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// `name=value` for each cookie set.
    pub fn cookies(&self) -> Vec<String> {
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
    pub fn field(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&marker).expect("the field") + marker.len();
        let len = self.body[start..].find('"').expect("closing quote");
        self.body[start..start + len].to_owned()
    }
}

impl Flow {
    pub async fn new() -> Flow {
        Flow::with_issuer(ISSUER).await
    }

    /// The same issuer under another URL (an `https://` one, say).
    pub async fn with_issuer(issuer_url: &str) -> Flow {
        Flow::with_server(issuer_url, "").await
    }

    /// The same issuer with more `[server]` settings (`trusted_proxies`).
    pub async fn with_server(issuer_url: &str, server: &str) -> Flow {
        let dir = tempfile::tempdir().expect("temp dir");
        let acme = crate::secret::SecretHash::of(ACME_SECRET);
        let signer_jwk = toml_inline(&signer_key().jwk());
        let text = format!(
            r#"
[server]
issuer = "{issuer_url}"
{server}

[[apis]]
identifier = "https://orders.example.com"
scopes = ["read:orders", "write:orders"]
user_access = "allow_all"
scope_descriptions = {{ "read:orders" = "See your <orders>" }}

[[apis]]
identifier = "https://machines.example.com"
scopes = ["run"]
user_access = "deny_all"

[[clients]]
id = "acme"
app_type = "machine"
secret_hash = "{acme}"

[[grants]]
client = "acme"
api = "https://orders.example.com"
scopes = ["read:orders"]

[[clients]]
id = "signer"
app_type = "machine"
jwks = {{ keys = [{signer_jwk}] }}

[[grants]]
client = "signer"
api = "https://orders.example.com"
scopes = ["read:orders"]

[[clients]]
id = "web-spa"
name = "Web <Shop>"
app_type = "spa"
redirect_uris = ["{CALLBACK}"]
post_logout_redirect_uris = ["{SIGNED_OUT}"]
allowed_origins = ["{APP_ORIGIN}"]

[[clients]]
id = "partner"
name = "Partner App"
app_type = "spa"
first_party = false
redirect_uris = ["{CALLBACK}"]
allowed_origins = ["{PARTNER_ORIGIN}"]
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

    pub fn advance(&self, secs: u64) {
        self.clock.0.fetch_add(secs, Ordering::SeqCst);
    }

    pub async fn send(&self, req: Request<Body>) -> Answer {
        self.send_from(req, "127.0.0.1").await
    }

    /// Sends `req` as if from the IP address `peer`.
    pub async fn send_from(&self, req: Request<Body>, peer: &str) -> Answer {
        let mut req = req;
        let peer = SocketAddr::new(peer.parse().expect("an IP address"), 40000);
        req.extensions_mut().insert(ConnectInfo(peer));
        let r = super::router(self.issuer.clone())
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

    pub async fn authorize(&self, extra: &str, cookies: &[String]) -> Answer {
        self.authorize_from(extra, cookies, "127.0.0.1").await
    }

    /// [`Flow::authorize`] from the IP address `peer`.
    pub async fn authorize_from(&self, extra: &str, cookies: &[String], peer: &str) -> Answer {
        self.authorize_for("web-spa", extra, cookies, peer).await
    }

    /// [`Flow::authorize`] for the client `client` from the IP address `peer`.
    pub async fn authorize_for(
        &self,
        client: &str,
        extra: &str,
        cookies: &[String],
        peer: &str,
    ) -> Answer {
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
            ring::digest::digest(&ring::digest::SHA256, VERIFIER.as_bytes()),
        );
        let uri = format!(
            "/authorize?response_type=code&client_id={client}&redirect_uri={}&state=s1\
             &code_challenge={challenge}&code_challenge_method=S256{extra}",
            urlencode(CALLBACK)
        );
        let mut req = Request::get(uri);
        if !cookies.is_empty() {
            req = req.header(header::COOKIE, cookies.join("; "));
        }
        self.send_from(req.body(Body::empty()).expect("request"), peer)
            .await
    }

    pub async fn login(&self, page: &Answer, cookies: &[String], password: &str) -> Answer {
        self.login_as(page, cookies, EMAIL, password, Origin::default())
            .await
    }

    /// Posts the login form of `page` for `email`, from `origin`.
    pub async fn login_as(
        &self,
        page: &Answer,
        cookies: &[String],
        email: &str,
        password: &str,
        origin: Origin<'_>,
    ) -> Answer {
        let form = format!(
            "tx={}&csrf={}&email={}&password={}",
            urlencode(&page.field("tx")),
            urlencode(&page.field("csrf")),
            urlencode(email),
            urlencode(password)
        );
        let mut req = Request::post("/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if !cookies.is_empty() {
            req = req.header(header::COOKIE, cookies.join("; "));
        }
        if let Some(hops) = origin.forwarded_for {
            req = req.header("x-forwarded-for", hops);
        }
        self.send_from(req.body(Body::from(form)).expect("request"), origin.peer)
            .await
    }

    /// POSTs `form` to `path`, with HTTP Basic credentials when given.
    pub async fn post_form(&self, path: &str, basic: Option<(&str, &str)>, form: &str) -> Answer {
        let mut req =
            Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some((id, secret)) = basic {
            let pair = base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                urlencode(id),
                urlencode(secret)
            ));
            req = req.header(header::AUTHORIZATION, format!("Basic {pair}"));
        }
        self.send(req.body(Body::from(form.to_owned())).expect("request"))
            .await
    }

    /// Posts the consent form of `page` with `decision` (allow or deny).
    pub async fn consent(&self, page: &Answer, cookies: &[String], decision: &str) -> Answer {
        let form = format!(
            "tx={}&csrf={}&decision={decision}",
            urlencode(&page.field("tx")),
            urlencode(&page.field("csrf")),
        );
        let mut req = Request::post("/consent")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if !cookies.is_empty() {
            req = req.header(header::COOKIE, cookies.join("; "));
        }
        self.send(req.body(Body::from(form)).expect("request"))
            .await
    }

    pub async fn redeem(&self, code: &str) -> Answer {
        self.redeem_for("web-spa", code).await
    }

    /// Redeems `code` as the public client `client`.
    pub async fn redeem_for(&self, client: &str, code: &str) -> Answer {
        let form = format!(
            "grant_type=authorization_code&client_id={client}&code={}&redirect_uri={}&code_verifier={VERIFIER}",
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

/// Where a request comes from: the peer's IP address, and the
/// `X-Forwarded-For` it sends.
#[derive(Clone, Copy)]
pub struct Origin<'a> {
    pub peer: &'a str,
    pub forwarded_for: Option<&'a str>,
}

impl Default for Origin<'_> {
    fn default() -> Self {
        Origin {
            peer: "127.0.0.1",
            forwarded_for: None,
        }
    }
}

impl<'a> Origin<'a> {
    /// From `peer`, no header.
    pub fn peer(peer: &'a str) -> Self {
        Origin {
            peer,
            forwarded_for: None,
        }
    }
}

pub fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
