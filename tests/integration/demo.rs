//! The demo configuration (`examples/tessera.toml`), served as `cargo xtask
//! demo` serves it, and the README's recipes against it.

use std::path::Path;

use serde_json::Value;

use crate::support::*;

const ACME: (&str, &str) = ("acme-sync", "demo-acme-secret-do-not-use-in-production");
const OPS: (&str, &str) = ("ops", "demo-ops-secret-do-not-use-in-production");

/// `examples/tessera.toml` with the test build's plugins and an ephemeral port.
pub fn demo_config() -> String {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/tessera.toml"),
    )
    .expect("examples/tessera.toml");
    let mut text = text.replace("listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1:0\"");
    for name in ["api_guard", "client_claims", "roles_from_app_metadata"] {
        text = text.replace(
            &format!("\"plugins/{name}.wasm\""),
            &format!("\"{}\"", wasm(name).display()),
        );
    }
    assert!(
        !text.contains("\"plugins/"),
        "a demo plugin the test does not build"
    );
    text
}

fn client_credentials(t: &Tessera, client: (&str, &str), audience: &str) -> Value {
    let reply = t.token(
        Some(client),
        &[("grant_type", "client_credentials"), ("audience", audience)],
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

#[test]
fn the_demo_serves_partners_and_its_operator() {
    let t = Tessera::start(&demo_config());
    let partner = client_credentials(&t, ACME, ORDERS);
    let claims = claims_unverified(partner["access_token"].as_str().expect("token"));
    assert_eq!(claims["https://claims.example.com/partner"], "acme");

    // The README's admin recipe: the operator's token has the admin scopes
    // and none of the plugins' partner claims.
    let admin = client_credentials(&t, OPS, "urn:tessera:admin");
    assert_eq!(
        admin["scope"],
        "tessera:plugins:read tessera:reload tessera:traces:read"
    );
    let token = admin["access_token"].as_str().expect("token");
    let claims = claims_unverified(token);
    assert!(
        !claims
            .as_object()
            .expect("claims")
            .keys()
            .any(|k| k.starts_with("https://claims.example.com/")),
        "{claims}"
    );
    let listing: Value = reqwest::blocking::Client::new()
        .get(t.url("/admin/plugins"))
        .bearer_auth(token)
        .send()
        .expect("admin/plugins")
        .json()
        .expect("json");
    assert_eq!(
        listing["plugins"].as_array().map(Vec::len),
        Some(3),
        "{listing}"
    );

    // The README's trace of the partner's token, as `tessera trace` prints it.
    let jti = claims_unverified(partner["access_token"].as_str().expect("token"))["jti"]
        .as_str()
        .expect("jti")
        .to_owned();
    let text = tessera_trace(&t, OPS, &jti);
    for line in [
        "token client_credentials  acme-sync -> https://orders.example.com  issued",
        "policy    client_access = require_client_grant; ceiling: read:orders write:orders",
        "plugin    client-claims sha256:",
        "plugin    api-guard sha256:",
        "set https://claims.example.com/partner",
    ] {
        assert!(text.contains(line), "{line:?} in\n{text}");
    }
}

/// `examples/sign-in.sh`, the README's sign-in without a browser.
fn sign_in(t: &Tessera, email: &str, password: &str) -> std::process::Output {
    use std::io::Write as _;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/sign-in.sh");
    let mut child = std::process::Command::new("bash")
        .arg(script)
        .arg(email)
        .env("ISSUER", &t.base)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run sign-in.sh");
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "{password}").expect("password");
    drop(stdin);
    child.wait_with_output().expect("sign-in.sh")
}

#[test]
fn the_sign_in_recipe_gets_a_users_tokens_with_curl() {
    let t = Tessera::start(&demo_config());
    let config = t.dir.path().join("tessera.toml");
    let mut add = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"));
    add.args(["users", "add", "--config"])
        .arg(&config)
        .args(["--email", "ada@example.com", "--name", "Ada Lovelace"])
        .args([
            "--email-verified",
            "--app-metadata",
            r#"{"roles":["customer"]}"#,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = add.spawn().expect("users add");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        writeln!(stdin, "correct horse battery staple").expect("password");
    }
    let added = child.wait_with_output().expect("users add");
    assert!(added.status.success());
    let user = String::from_utf8_lossy(&added.stdout).trim().to_owned();

    let out = sign_in(&t, "ada@example.com", "correct horse battery staple");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tokens: Value = serde_json::from_slice(&out.stdout).expect("token response JSON");
    let access = claims_unverified(tokens["access_token"].as_str().expect("access token"));
    assert_eq!(access["sub"], user.as_str());
    assert_eq!(
        access["scope"],
        "openid profile email offline_access read:orders"
    );
    let id = claims_unverified(tokens["id_token"].as_str().expect("id token"));
    assert_eq!(id["email"], "ada@example.com");
    assert!(tokens["refresh_token"].is_string(), "{tokens}");

    let out = sign_in(&t, "ada@example.com", "wrong password");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the sign-in was refused"), "{err}");
}
