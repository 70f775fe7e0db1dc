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
    assert_eq!(admin["scope"], "tessera:plugins:read tessera:reload");
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
}
