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
