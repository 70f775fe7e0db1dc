//! The authorization code flow end to end with an HTTP client and a cookie
//! jar: sign-in on the real login page, code exchange with PKCE, ID tokens,
//! refresh rotation, userinfo, and cases 1–14 of docs/reliability.md.

use std::io::Write;
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde_json::Value;
use sha2::Digest;

use crate::support::*;

pub const PASSWORD: &str = "correct horse battery staple";
const SPA_REDIRECT: &str = "https://app.example.com/callback";
const PORTAL_REDIRECT: &str = "https://portal.example.com/cb";
pub const PORTAL_SECRET: &str = "portal-secret-0123456789abcdefghijklmnopqrs";

/// The base configuration plus user-flow clients and grants.
pub fn user_config() -> String {
    format!(
        "{}\n[[clients]]\nid = \"portal\"\nname = \"Customer portal\"\napp_type = \"regular_web\"\nsecret_hash = \"{}\"\nredirect_uris = [\"{PORTAL_REDIRECT}\"]\n\
         \n[[clients]]\nid = \"cli-app\"\napp_type = \"native\"\nredirect_uris = [\"http://127.0.0.1/callback\"]\n\
         \n[[grants]]\nclient = \"web-spa\"\napi = \"{ORDERS}\"\nscopes = [\"read:orders\"]\nsubject = \"user\"\n\
         \n[[grants]]\nclient = \"portal\"\napi = \"{ORDERS}\"\nscopes = [\"read:orders\", \"write:orders\"]\nsubject = \"user\"\n",
        base_config("ES256"),
        hash(PORTAL_SECRET)
    )
}

/// Adds a user through the command line, the password on stdin.
pub fn add_user(t: &Tessera, email: &str, app_metadata: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["users", "add", "--config"])
        .arg(t.dir.path().join("tessera.toml"))
        .args([
            "--email",
            email,
            "--name",
            "Ada Lovelace",
            "--email-verified",
            "--app-metadata",
            app_metadata,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tessera users add");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .expect("password");
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find(|w| w.starts_with("u_"))
        .expect("user id")
        .to_owned()
}

/// A PKCE pair.
pub fn pkce() -> (String, String) {
    let verifier = format!("verifier-{}-{}", std::process::id(), "x".repeat(40));
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// A browser: a cookie jar, no automatic redirects.
pub fn browser() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

pub fn authorize_url(
    t: &impl Endpoint,
    client: &str,
    redirect: &str,
    challenge: &str,
    extra: &str,
) -> String {
    let mut u = url::Url::parse(&t.url("/authorize")).expect("url");
    u.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client)
        .append_pair("redirect_uri", redirect)
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", "st4te");
    format!("{u}{extra}")
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    html[start..].split('"').next().expect("value").to_owned()
}

/// Query parameters of a redirect.
pub fn location_params(r: &reqwest::blocking::Response) -> Vec<(String, String)> {
    assert_eq!(r.status(), 303, "expected a redirect");
    let loc = r.headers()["location"].to_str().expect("location");
    url::Url::parse(loc)
        .expect("location url")
        .query_pairs()
        .into_owned()
        .collect()
}

pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Posts the login form of `html` (a login page) with these credentials.
fn post_login(
    b: &reqwest::blocking::Client,
    t: &impl Endpoint,
    html: &str,
    email: &str,
    password: &str,
) -> reqwest::blocking::Response {
    b.post(t.url("/login"))
        .form(&[
            ("tx", hidden(html, "tx")),
            ("csrf", hidden(html, "csrf")),
            ("email", email.into()),
            ("password", password.into()),
        ])
        .send()
        .expect("login")
}

/// Signs in on the login page; returns the redirect back to the client.
pub fn sign_in(
    b: &reqwest::blocking::Client,
    t: &impl Endpoint,
    url: &str,
    email: &str,
    password: &str,
) -> reqwest::blocking::Response {
    let page = b.get(url).send().expect("authorize");
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .expect("csp")
            .contains("frame-ancestors 'none'")
    );
    let html = page.text().expect("html");
    assert!(html.contains("<label for=\"email\">") && html.contains("<label for=\"password\">"));
    post_login(b, t, &html, email, password)
}

fn exchange(t: &Tessera, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> Reply {
    let mut f = vec![("grant_type", "authorization_code")];
    f.extend_from_slice(form);
    t.token(basic, &f)
}

/// The whole flow for the SPA, for the Orders API: the token reply.
pub fn spa_tokens(t: &Tessera, scope: &str) -> Reply {
    flow_tokens(
        t,
        "web-spa",
        SPA_REDIRECT,
        None,
        &format!("{scope}&audience={ORDERS}"),
    )
}

/// The whole flow for the SPA without an API: a token for `/userinfo`.
pub fn spa_tokens_for_userinfo(t: &Tessera, scope: &str) -> Reply {
    flow_tokens(t, "web-spa", SPA_REDIRECT, None, scope)
}

/// The whole flow for the portal (confidential), for the Orders API.
pub fn portal_tokens(t: &Tessera, scope: &str) -> Reply {
    flow_tokens(
        t,
        "portal",
        PORTAL_REDIRECT,
        Some(("portal", PORTAL_SECRET)),
        &format!("{scope}&audience={ORDERS}"),
    )
}

/// Ada signs in for `client` in a new browser, and the code is exchanged
/// (with `basic`, for a confidential client). `scope` is space-separated
/// and may carry further `&` parameters.
fn flow_tokens(
    t: &Tessera,
    client: &str,
    redirect: &str,
    basic: Option<(&str, &str)>,
    scope: &str,
) -> Reply {
    let b = browser();
    let (verifier, challenge) = pkce();
    let url = authorize_url(
        t,
        client,
        redirect,
        &challenge,
        &format!("&scope={}&nonce=n0nce", scope.replace(' ', "%20")),
    );
    let back = sign_in(&b, t, &url, "ada@example.com", PASSWORD);
    let params = location_params(&back);
    let code = param(&params, "code").expect("code").to_owned();
    let mut form = vec![
        ("code", code.as_str()),
        ("redirect_uri", redirect),
        ("code_verifier", &verifier),
    ];
    if basic.is_none() {
        form.push(("client_id", client));
    }
    exchange(t, &form, basic)
}

fn verify_id_token(t: &Tessera, token: &str, client: &str) -> Value {
    let jwks: jsonwebtoken::jwk::JwkSet = t.get("/.well-known/jwks.json").json().expect("jwks");
    let header = jsonwebtoken::decode_header(token).expect("header");
    assert_ne!(header.typ.as_deref(), Some("at+jwt"));
    let key =
        jsonwebtoken::DecodingKey::from_jwk(jwks.find(&header.kid.expect("kid")).expect("kid"))
            .expect("key");
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_audience(&[client]);
    v.set_issuer(&[ISSUER]);
    jsonwebtoken::decode::<Value>(token, &key, &v)
        .expect("ID token verifies")
        .claims
}

#[test]
fn a_user_signs_in_and_the_spa_gets_verified_tokens() {
    let t = Tessera::start(&user_config());
    let id = add_user(&t, "ada@example.com", "{\"roles\":[\"reader\"]}");
    let b = browser();
    let (verifier, challenge) = pkce();
    let url = authorize_url(
        &t,
        "web-spa",
        SPA_REDIRECT,
        &challenge,
        &format!(
            "&scope=openid%20profile%20email%20offline_access%20read:orders&nonce=n0nce&audience={ORDERS}"
        ),
    );
    let back = sign_in(&b, &t, &url, "ada@example.com", PASSWORD);
    let params = location_params(&back);
    assert_eq!(param(&params, "state"), Some("st4te"));
    assert_eq!(param(&params, "iss"), Some(ISSUER), "RFC 9207 iss");
    let code = param(&params, "code").expect("code");

    let reply = exchange(
        &t,
        &[
            ("client_id", "web-spa"),
            ("code", code),
            ("redirect_uri", SPA_REDIRECT),
            ("code_verifier", &verifier),
        ],
        None,
    );
    let at = t.verify(reply.access_token(), ORDERS);
    assert_eq!(at["sub"], id);
    assert_eq!(at["client_id"], "web-spa");
    assert_eq!(
        at["scope"],
        "openid profile email offline_access read:orders"
    );
    assert!(
        !at["sub"].as_str().expect("sub").contains('@'),
        "user subjects never look like client subjects"
    );
    let idt = verify_id_token(
        &t,
        reply.body["id_token"].as_str().expect("id_token"),
        "web-spa",
    );
    assert_eq!(idt["sub"], id);
    assert_eq!(idt["nonce"], "n0nce");
    assert_eq!(idt["email"], "ada@example.com");
    assert_eq!(idt["email_verified"], true);
    assert_eq!(idt["name"], "Ada Lovelace");
    assert!(idt["auth_time"].as_u64().is_some());
    assert!(reply.body["refresh_token"].is_string());

    // An access token for an API is for that API: /userinfo refuses it,
    // openid or not (its audience is not the issuer's /userinfo).
    let refused = reqwest::blocking::Client::new()
        .get(t.url("/userinfo"))
        .bearer_auth(reply.access_token())
        .send()
        .expect("userinfo");
    assert_eq!(refused.status(), 401);
    let challenge_header = refused.headers()["www-authenticate"]
        .to_str()
        .expect("ascii");
    assert!(
        challenge_header.contains("invalid_token"),
        "{challenge_header}"
    );

    // A second authorize in the same browser skips the login page, and a
    // token without an API is the one /userinfo takes.
    let (verifier2, challenge2) = pkce();
    let again = b
        .get(authorize_url(
            &t,
            "web-spa",
            SPA_REDIRECT,
            &challenge2,
            "&scope=openid%20email",
        ))
        .send()
        .expect("authorize");
    let code2 = param(&location_params(&again), "code")
        .expect("code")
        .to_owned();
    let reply2 = exchange(
        &t,
        &[
            ("client_id", "web-spa"),
            ("code", &code2),
            ("redirect_uri", SPA_REDIRECT),
            ("code_verifier", &verifier2),
        ],
        None,
    );
    let at2 = t.verify(reply2.access_token(), &format!("{ISSUER}/userinfo"));
    assert_eq!(at2["scope"], "openid email");
    let info: Value = reqwest::blocking::Client::new()
        .get(t.url("/userinfo"))
        .bearer_auth(reply2.access_token())
        .send()
        .expect("userinfo")
        .json()
        .expect("json");
    assert_eq!(info["sub"], id);
    assert_eq!(info["email"], "ada@example.com");
    assert!(info.get("name").is_none(), "profile was not granted");
}

#[test]
fn wrong_password_and_unknown_user_read_the_same() {
    let t = Tessera::start(&user_config());
    add_user(&t, "ada@example.com", "{}");
    let (_, challenge) = pkce();
    let url = authorize_url(&t, "web-spa", SPA_REDIRECT, &challenge, "");
    let wrong = sign_in(&browser(), &t, &url, "ada@example.com", "nope-nope-nope");
    assert_eq!(wrong.status(), 401);
    let wrong = wrong.text().expect("html");
    let unknown = sign_in(&browser(), &t, &url, "nobody@example.com", "nope-nope-nope")
        .text()
        .expect("html");
    assert!(wrong.contains("Wrong email or password."), "{wrong}");
    assert!(unknown.contains("Wrong email or password."), "{unknown}");
}

#[test]
fn untrusted_redirect_uris_get_an_error_page_not_a_redirect() {
    let t = Tessera::start(&user_config());
    let (_, challenge) = pkce();
    for bad in [
        "https://app.example.com/callback/",
        "https://evil.example.com/callback",
        "https://app.example.com/callback?x=1",
    ] {
        let r = browser()
            .get(authorize_url(&t, "web-spa", bad, &challenge, ""))
            .send()
            .expect("authorize");
        assert_eq!(r.status(), 400, "{bad}");
        assert!(r.headers().get("location").is_none(), "{bad}");
        assert!(r.text().expect("html").contains("not registered"), "{bad}");
    }
}

#[test]
fn authorize_errors_redirect_with_iss_and_state() {
    let t = Tessera::start(&user_config());
    let (_, challenge) = pkce();
    let cases = [
        (
            authorize_url(&t, "web-spa", SPA_REDIRECT, &challenge, "")
                .replace("response_type=code", "response_type=token"),
            "unsupported_response_type",
        ),
        (
            authorize_url(&t, "web-spa", SPA_REDIRECT, &challenge, "")
                .replace("code_challenge_method=S256", "code_challenge_method=plain"),
            "invalid_request",
        ),
        (
            authorize_url(&t, "web-spa", SPA_REDIRECT, &challenge, "")
                .replace(&format!("code_challenge={challenge}&"), ""),
            "invalid_request",
        ),
        (
            authorize_url(
                &t,
                "web-spa",
                SPA_REDIRECT,
                &challenge,
                "&resource=https://unknown.example.com&scope=read:orders",
            ),
            "invalid_target",
        ),
    ];
    let b = browser();
    add_user(&t, "ada@example.com", "{}");
    for (url, error) in cases {
        let r = b.get(&url).send().expect("authorize");
        if r.status() == 200 {
            // invalid_target is decided after sign-in.
            let html = r.text().expect("html");
            let back = post_login(&b, &t, &html, "ada@example.com", PASSWORD);
            let p = location_params(&back);
            assert_eq!(param(&p, "error"), Some(error), "{url}");
            assert_eq!(param(&p, "iss"), Some(ISSUER));
            continue;
        }
        let p = location_params(&r);
        assert_eq!(param(&p, "error"), Some(error), "{url}");
        assert_eq!(param(&p, "state"), Some("st4te"));
        assert_eq!(param(&p, "iss"), Some(ISSUER), "RFC 9207 iss on errors too");
    }
}

#[test]
fn the_apis_user_policy_decides_which_applications_get_tokens() {
    let config = user_config().replace("[[grants]]\nclient = \"web-spa\"\napi = \"https://orders.example.com\"\nscopes = [\"read:orders\"]\nsubject = \"user\"\n", "");
    let t = Tessera::start(&config);
    add_user(&t, "ada@example.com", "{}");
    let (_, challenge) = pkce();
    let url = authorize_url(
        &t,
        "web-spa",
        SPA_REDIRECT,
        &challenge,
        &format!("&scope=read:orders&audience={ORDERS}"),
    );
    let p = location_params(&sign_in(&browser(), &t, &url, "ada@example.com", PASSWORD));
    assert_eq!(param(&p, "error"), Some("access_denied"));
    assert!(
        param(&p, "error_description")
            .expect("description")
            .contains("web-spa")
    );
    // The portal has a user grant, but not for delete:orders.
    let url = authorize_url(
        &t,
        "portal",
        PORTAL_REDIRECT,
        &challenge,
        &format!("&scope=delete:orders&audience={ORDERS}"),
    );
    let p = location_params(&sign_in(&browser(), &t, &url, "ada@example.com", PASSWORD));
    assert_eq!(param(&p, "error"), Some("invalid_scope"));
}

#[test]
fn codes_are_single_use_bound_to_client_redirect_and_verifier() {
    let t = Tessera::start(&user_config());
    add_user(&t, "ada@example.com", "{}");
    let b = browser();
    let (verifier, challenge) = pkce();
    let get_code = |b: &reqwest::blocking::Client, challenge: &str, scope: &str| -> String {
        let url = authorize_url(
            &t,
            "portal",
            PORTAL_REDIRECT,
            challenge,
            &format!("&scope={scope}&audience={ORDERS}"),
        );
        let r = b.get(&url).send().expect("authorize");
        let r = if r.status() == 200 {
            post_login(b, &t, &r.text().expect("html"), "ada@example.com", PASSWORD)
        } else {
            r
        };
        param(&location_params(&r), "code")
            .expect("code")
            .to_owned()
    };
    let portal = Some(("portal", PORTAL_SECRET));

    // Wrong verifier, too short a verifier, wrong redirect, wrong client.
    let code = get_code(&b, &challenge, "read:orders");
    let wrong_verifier = format!("{verifier}-but-different");
    exchange(
        &t,
        &[
            ("code", &code),
            ("redirect_uri", PORTAL_REDIRECT),
            ("code_verifier", &wrong_verifier),
        ],
        portal,
    )
    .expect_error(400, "invalid_grant");
    let code = get_code(&b, &challenge, "read:orders");
    exchange(
        &t,
        &[
            ("code", &code),
            ("redirect_uri", PORTAL_REDIRECT),
            ("code_verifier", "short"),
        ],
        portal,
    )
    .expect_error(400, "invalid_request");
    exchange(
        &t,
        &[
            ("code", &code),
            ("redirect_uri", "https://portal.example.com/other"),
            ("code_verifier", &verifier),
        ],
        portal,
    )
    .expect_error(400, "invalid_grant");
    let code = get_code(&b, &challenge, "read:orders");
    exchange(
        &t,
        &[
            ("client_id", "web-spa"),
            ("code", &code),
            ("redirect_uri", PORTAL_REDIRECT),
            ("code_verifier", &verifier),
        ],
        None,
    )
    .expect_error(400, "invalid_grant");
    // A confidential client must authenticate.
    let code = get_code(&b, &challenge, "read:orders");
    exchange(
        &t,
        &[
            ("client_id", "portal"),
            ("code", &code),
            ("redirect_uri", PORTAL_REDIRECT),
            ("code_verifier", &verifier),
        ],
        None,
    )
    .expect_error(400, "invalid_client");

    // Reuse: the second redemption fails and revokes what the first issued.
    let code = get_code(&b, &challenge, "offline_access%20read:orders");
    let ok = exchange(
        &t,
        &[
            ("code", &code),
            ("redirect_uri", PORTAL_REDIRECT),
            ("code_verifier", &verifier),
        ],
        portal,
    );
    let rt = ok.body["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned();
    exchange(
        &t,
        &[
            ("code", &code),
            ("redirect_uri", PORTAL_REDIRECT),
            ("code_verifier", &verifier),
        ],
        portal,
    )
    .expect_error(400, "invalid_grant");
    t.token(
        portal,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
    )
    .expect_error(400, "invalid_grant");
}

#[test]
fn refresh_tokens_rotate_detect_reuse_and_never_widen() {
    let t = Tessera::start(&user_config());
    add_user(&t, "ada@example.com", "{}");
    let first = spa_tokens(&t, "openid offline_access read:orders");
    let rt1 = first.body["refresh_token"]
        .as_str()
        .expect("rt1")
        .to_owned();

    // Wider scope is refused; narrower is fine and the new refresh token keeps the old scope.
    let refresh = |rt: &str, scope: Option<&str>| {
        let mut f = vec![
            ("grant_type", "refresh_token"),
            ("client_id", "web-spa"),
            ("refresh_token", rt),
        ];
        if let Some(s) = scope {
            f.push(("scope", s));
        }
        t.token(None, &f)
    };
    refresh(&rt1, Some("read:orders write:orders")).expect_error(400, "invalid_scope");
    let second = refresh(&rt1, Some("read:orders"));
    assert_eq!(
        t.verify(second.access_token(), ORDERS)["scope"],
        "read:orders"
    );
    let rt2 = second.body["refresh_token"]
        .as_str()
        .expect("rt2")
        .to_owned();
    assert_ne!(rt1, rt2);
    let third = refresh(&rt2, None);
    assert_eq!(
        t.verify(third.access_token(), ORDERS)["scope"],
        "openid offline_access read:orders"
    );
    let rt3 = third.body["refresh_token"]
        .as_str()
        .expect("rt3")
        .to_owned();

    // Replaying an old one revokes the family, including the newest token.
    refresh(&rt1, None).expect_error(400, "invalid_grant");
    refresh(&rt3, None).expect_error(400, "invalid_grant");
}

#[test]
fn client_credentials_never_gets_a_refresh_token() {
    let t = Tessera::start(&user_config());
    let reply = t.acme(&[("audience", ORDERS), ("scope", "read:orders")]);
    reply.access_token();
    assert!(reply.body.get("refresh_token").is_none());
    assert!(reply.body.get("id_token").is_none());
}

#[test]
fn discovery_describes_the_user_flows() {
    let t = Tessera::start(&user_config());
    let doc: Value = t
        .get("/.well-known/openid-configuration")
        .json()
        .expect("json");
    assert_eq!(doc["authorization_endpoint"], format!("{ISSUER}/authorize"));
    assert_eq!(doc["userinfo_endpoint"], format!("{ISSUER}/userinfo"));
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    let grants = doc["grant_types_supported"].as_array().expect("grants");
    for g in ["authorization_code", "refresh_token", "client_credentials"] {
        assert!(grants.iter().any(|x| x == g), "{g}");
    }
    for g in ["implicit", "password"] {
        assert!(!grants.iter().any(|x| x == g), "{g}");
    }
}

#[test]
fn roles_from_app_metadata_shape_and_refuse_user_tokens() {
    let config = user_config().replace(
        "owner = \"orders-team\",",
        "owner = \"orders-team\", required_roles = [\"customer\", \"staff\"], scope_roles = { \"write:orders\" = [\"staff\"] },",
    ) + &format!(
        "\n[[plugins]]\nname = \"roles\"\npath = \"{}\"\nstages = [\"authorize\"]\ntimeout_ms = 2000\nconfig = {{ namespace = \"https://claims.example.com/\" }}\n",
        wasm("roles_from_app_metadata").display()
    );
    let t = Tessera::start(&config);
    add_user(&t, "ada@example.com", "{\"roles\":[\"customer\"]}");
    add_user(&t, "eve@example.com", "{}");
    let (verifier, challenge) = pkce();
    let scope = format!("&scope=openid%20read:orders%20write:orders&audience={ORDERS}");

    // A customer gets the roles claim and loses the staff-only scope.
    let url = authorize_url(&t, "portal", PORTAL_REDIRECT, &challenge, &scope);
    let p = location_params(&sign_in(&browser(), &t, &url, "ada@example.com", PASSWORD));
    let code = param(&p, "code").expect("code").to_owned();
    let reply = exchange(
        &t,
        &[
            ("code", &code),
            ("redirect_uri", PORTAL_REDIRECT),
            ("code_verifier", &verifier),
        ],
        Some(("portal", PORTAL_SECRET)),
    );
    let at = t.verify(reply.access_token(), ORDERS);
    assert_eq!(
        at["https://claims.example.com/roles"],
        serde_json::json!(["customer"])
    );
    assert_eq!(at["scope"], "openid read:orders");
    let idt = verify_id_token(
        &t,
        reply.body["id_token"].as_str().expect("id token"),
        "portal",
    );
    assert_eq!(
        idt["https://claims.example.com/roles"],
        serde_json::json!(["customer"])
    );

    // A user without a role is refused on the client's redirect URI, clearly.
    let p = location_params(&sign_in(&browser(), &t, &url, "eve@example.com", PASSWORD));
    assert_eq!(param(&p, "error"), Some("access_denied"));
    assert_eq!(param(&p, "iss"), Some(ISSUER));
    let d = param(&p, "error_description").expect("description");
    assert!(
        d.contains("none of the roles") && d.contains("customer, staff"),
        "{d}"
    );
}

#[test]
fn a_failing_authorize_plugin_issues_no_code() {
    for (mode, on_error, expect) in [
        ("trap", "fail", Some("server_error")),
        ("loop", "fail", Some("server_error")),
        ("deny", "fail", Some("access_denied")),
        ("trap", "skip", None),
    ] {
        let config = user_config()
            + &format!(
                "\n[[plugins]]\nname = \"authz\"\npath = \"{}\"\nstages = [\"authorize\"]\ntimeout_ms = 30\non_error = \"{on_error}\"\nconfig = {{ mode = \"{mode}\", description = \"not today\" }}\n",
                wasm("misbehave").display()
            );
        let t = Tessera::start(&config);
        add_user(&t, "ada@example.com", "{}");
        let (_, challenge) = pkce();
        let url = authorize_url(
            &t,
            "web-spa",
            SPA_REDIRECT,
            &challenge,
            &format!("&scope=openid%20read:orders&audience={ORDERS}"),
        );
        let p = location_params(&sign_in(&browser(), &t, &url, "ada@example.com", PASSWORD));
        assert_eq!(param(&p, "error"), expect, "{mode}/{on_error}: {p:?}");
        assert_eq!(
            param(&p, "code").is_some(),
            expect.is_none(),
            "{mode}/{on_error}: a code despite the failure"
        );
        assert_eq!(param(&p, "iss"), Some(ISSUER));
        if mode == "deny" {
            assert_eq!(param(&p, "error_description"), Some("not today"));
        }
    }
}

#[test]
fn id_tokens_are_rs256_by_default_and_in_the_algorithm_a_client_registered() {
    // The portal asks for EdDSA; the SPA names none and gets RS256; access
    // tokens stay ES256.
    let config = user_config().replace(
        "id = \"portal\"\n",
        "id = \"portal\"\nid_token_signed_response_alg = \"EdDSA\"\n",
    );
    let t = Tessera::start(&config);
    add_user(&t, "ada@example.com", "{}");
    let doc: Value = t
        .get("/.well-known/openid-configuration")
        .json()
        .expect("json");
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        serde_json::json!(["ES256", "RS256", "EdDSA"])
    );
    assert_eq!(
        doc["access_token_signing_alg_values_supported"],
        serde_json::json!(["ES256"])
    );
    let jwks: Value = t.get("/.well-known/jwks.json").json().expect("jwks");
    let mut kinds: Vec<String> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kty"].as_str().expect("kty").to_owned())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["EC", "OKP", "RSA"], "one key per algorithm in use");

    let alg = |token: &str| format!("{:?}", jsonwebtoken::decode_header(token).expect("h").alg);
    for (reply, client, id_alg) in [
        (spa_tokens(&t, "openid read:orders"), "web-spa", "RS256"),
        (portal_tokens(&t, "openid read:orders"), "portal", "EdDSA"),
    ] {
        let id_token = reply.body["id_token"].as_str().expect("id_token");
        assert_eq!(alg(id_token), id_alg, "{client}");
        assert_eq!(alg(reply.access_token()), "ES256", "{client}");
        assert_eq!(verify_id_token(&t, id_token, client)["aud"], client);
        t.verify(reply.access_token(), ORDERS);
    }

    // An unknown algorithm is named.
    let (_dir, path) = write_config(&config.replace(
        "id_token_signed_response_alg = \"EdDSA\"",
        "id_token_signed_response_alg = \"HS256\"",
    ));
    let (ok, _, err) = run_tessera(&["check", "--config", &path]);
    assert!(!ok);
    assert!(err.contains("HS256"), "{err}");
}

/// Posts the consent form of `html` (a consent page) with `decision`.
fn post_consent(
    b: &reqwest::blocking::Client,
    t: &impl Endpoint,
    html: &str,
    decision: &str,
) -> reqwest::blocking::Response {
    b.post(t.url("/consent"))
        .form(&[
            ("tx", hidden(html, "tx")),
            ("csrf", hidden(html, "csrf")),
            ("decision", decision.into()),
        ])
        .send()
        .expect("consent")
}

#[test]
fn a_third_party_application_gets_consent_once_until_it_is_withdrawn() {
    let config = user_config().replace(
        "scopes = [\"read:orders\", \"write:orders\", \"delete:orders\"]\n",
        "scopes = [\"read:orders\", \"write:orders\", \"delete:orders\"]\n\
             scope_descriptions = { \"read:orders\" = \"See your order history\" }\n",
    ) + &format!(
        "\n[[clients]]\nid = \"partner\"\nname = \"Partner Shop\"\napp_type = \"spa\"\nfirst_party = false\n\
             redirect_uris = [\"{SPA_REDIRECT}\"]\n\
             \n[[grants]]\nclient = \"partner\"\napi = \"{ORDERS}\"\nscopes = [\"read:orders\"]\nsubject = \"user\"\n"
    );
    let t = Tessera::start(&config);
    let id = add_user(&t, "ada@example.com", "{}");
    let b = browser();
    let (verifier, challenge) = pkce();
    let url = authorize_url(
        &t,
        "partner",
        SPA_REDIRECT,
        &challenge,
        &format!("&scope=openid%20offline_access%20read:orders&audience={ORDERS}"),
    );
    let asked = sign_in(&b, &t, &url, "ada@example.com", PASSWORD);
    assert_eq!(asked.status(), 200, "the consent page");
    let html = asked.text().expect("html");
    assert!(
        html.contains("Partner Shop") && html.contains("See your order history"),
        "{html}"
    );
    let back = post_consent(&b, &t, &html, "allow");
    let params = location_params(&back);
    let code = param(&params, "code").expect("code");
    let reply = exchange(
        &t,
        &[
            ("code", code),
            ("redirect_uri", SPA_REDIRECT),
            ("code_verifier", &verifier),
            ("client_id", "partner"),
        ],
        None,
    );
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let refresh = reply.body["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned();

    // Allowed once: the same browser goes straight back with a code.
    let again = b.get(&url).send().expect("authorize");
    assert!(param(&location_params(&again), "code").is_some());

    let config_path = t.dir.path().join("tessera.toml").display().to_string();
    let (ok, out, err) = run_tessera(&[
        "users",
        "consents",
        "--config",
        &config_path,
        "ada@example.com",
    ]);
    assert!(ok, "{err}");
    let row = out.lines().nth(1).unwrap_or_default();
    assert!(
        row.starts_with("partner")
            && row.contains(ORDERS)
            && row.contains("offline_access openid read:orders"),
        "{out}"
    );
    let (ok, _, err) = run_tessera(&[
        "users",
        "consents",
        "--config",
        &config_path,
        &id,
        "--withdraw",
        "web-spa",
    ]);
    assert!(
        !ok && err.contains("has given \"web-spa\" no consent"),
        "{err}"
    );
    let (ok, _, err) = run_tessera(&[
        "users",
        "consents",
        "--config",
        &config_path,
        "nobody@example.com",
    ]);
    assert!(
        !ok && err.contains("no user with id or email \"nobody@example.com\""),
        "{err}"
    );
    let (ok, _, err) = run_tessera(&[
        "users",
        "consents",
        "--config",
        &config_path,
        &id,
        "--withdraw",
        "partner",
    ]);
    assert!(ok, "{err}");
    assert!(err.contains("revoked 1 refresh-token family"), "{err}");
    let (ok, _, err) = run_tessera(&["users", "consents", "--config", &config_path, &id]);
    assert!(ok && err.contains("has given no consents"), "{err}");

    // Withdrawn: the refresh token is dead and the page comes back.
    let refreshed = t.token(
        None,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", "partner"),
        ],
    );
    assert_eq!(refreshed.status, 400);
    assert_eq!(refreshed.body["error"], "invalid_grant");
    let asked = b.get(&url).send().expect("authorize");
    assert_eq!(asked.status(), 200);
    let html = asked.text().expect("html");
    assert!(html.contains("Allow access?"), "{html}");
    let denied = post_consent(&b, &t, &html, "deny");
    let params = location_params(&denied);
    assert_eq!(param(&params, "error"), Some("access_denied"));
    assert_eq!(param(&params, "state"), Some("st4te"));
}
