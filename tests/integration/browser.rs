//! Signing in on the real login page in headless Chromium (Debian's
//! `/usr/bin/chromium` driven by `playwright-core`, see tests/browser/).
//!
//! The browser and Node are not part of the Rust toolchain: on a machine
//! without them this test says so and passes, unless
//! `TESSERA_REQUIRE_BROWSER=1` (CI sets it, and installs both).

use std::path::Path;
use std::process::Command;

use crate::support::*;
use crate::user_flows::{PASSWORD, add_user, user_config};

fn browser_available(dir: &Path) -> Result<(), String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Err(format!("{chromium} is missing (apt-get install chromium)"));
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Err("node is missing".into());
    }
    if !dir.join("node_modules/playwright-core").is_dir() {
        return Err(format!(
            "playwright-core is missing (cd {} && npm ci)",
            dir.display()
        ));
    }
    Ok(())
}

#[test]
fn a_user_signs_in_with_a_real_browser() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/browser");
    if let Err(why) = browser_available(&dir) {
        assert!(
            std::env::var_os("TESSERA_REQUIRE_BROWSER").is_none(),
            "browser test required but {why}"
        );
        eprintln!("skipping the browser sign-in test: {why}");
        return;
    }
    let t = Tessera::start(&user_config());
    let id = add_user(&t, "grace@example.com", "{}");
    let screenshot = t.dir.path().join("login.png");
    let out = Command::new("node")
        .arg(dir.join("sign_in.mjs"))
        .args([
            &t.base,
            "web-spa",
            "https://app.example.com/callback",
            "grace@example.com",
            PASSWORD,
            ORDERS,
        ])
        .arg(&screenshot)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        t.log()
    );
    let result: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).expect("json line");
    assert_eq!(result["alert"], "Wrong email or password.");
    assert_eq!(result["iss"], ISSUER);
    let tokens = &result["tokens"];
    let at = t.verify(
        tokens["access_token"].as_str().expect("access token"),
        ORDERS,
    );
    assert_eq!(at["sub"], id);
    assert!(
        tokens["id_token"].is_string() && tokens["refresh_token"].is_string(),
        "{tokens}"
    );
    assert!(screenshot.is_file());
}

#[test]
fn a_page_on_an_allowed_origin_calls_the_token_endpoint_and_userinfo_and_others_cannot() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/browser");
    if let Err(why) = browser_available(&dir) {
        assert!(
            std::env::var_os("TESSERA_REQUIRE_BROWSER").is_none(),
            "browser test required but {why}"
        );
        eprintln!("skipping the browser CORS test: {why}");
        return;
    }
    let page_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let config = user_config().replace(
        "id = \"web-spa\"\n",
        &format!("id = \"web-spa\"\nallowed_origins = [\"http://127.0.0.1:{page_port}\"]\n"),
    );
    let t = Tessera::start(&config);
    let id = add_user(&t, "ada@example.com", "{}");
    let reply = crate::user_flows::spa_tokens_for_userinfo(&t, "openid");
    let out = Command::new("node")
        .arg(dir.join("cors.mjs"))
        .args([&t.base, &page_port.to_string(), reply.access_token()])
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        t.log()
    );
    let result: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).expect("json line");
    let (allowed, other) = (&result["allowed"], &result["other"]);
    assert_eq!(allowed["discovery"], ISSUER, "{result}");
    assert!(allowed["jwks"].as_u64().is_some_and(|n| n >= 1), "{result}");
    assert_eq!(
        allowed["token"],
        serde_json::json!({"status": 400, "error": "invalid_grant"}),
        "{result}"
    );
    assert_eq!(
        allowed["userinfo"],
        serde_json::json!({"status": 200, "sub": id}),
        "after a preflight: {result}"
    );
    assert_eq!(allowed["userinfoError"]["status"], 401, "{result}");
    assert!(
        allowed["userinfoError"]["challenge"]
            .as_str()
            .is_some_and(|c| c.contains("invalid_token")),
        "WWW-Authenticate is exposed: {result}"
    );
    assert_eq!(allowed["withCookies"], "blocked", "{result}");
    // Another origin reads the public documents, and nothing else.
    assert_eq!(other["discovery"], ISSUER, "{result}");
    for call in ["token", "userinfo", "userinfoError"] {
        assert_eq!(other[call], "blocked", "{call}: {result}");
    }
}
