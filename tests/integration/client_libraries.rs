//! Unmodified client libraries against the real binary: Python's Authlib
//! (introspection, revocation) and Node's openid-client with oauth4webapi
//! (strict discovery, the code flow with its ID token checks, RFC 9068
//! access token validation, refresh, introspection, revocation, RP-initiated
//! logout). The scripts and their pinned packages are in tests/clients/.
//!
//! The libraries are not part of the Rust toolchain: where they are not
//! installed these tests say so and pass, unless
//! `TESSERA_REQUIRE_CLIENT_LIBRARIES=1` (CI sets it, and installs them with
//! `npm ci` and a virtual environment, see tests/clients/README.md).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::support::*;
use crate::user_flows::{PASSWORD, add_user, user_config};

pub(crate) const RP_SECRET: &str = "relying-party-secret-0123456789abcdefghijk";
const RP_CALLBACK: &str = "https://rp.example.com/callback";
const RP_SIGNED_OUT: &str = "https://rp.example.com/signed-out";

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/clients")
}

/// `Ok(())` when `probe` holds, else the test is skipped with `why` — or
/// fails where CI requires the libraries.
fn available(what: &str, probe: Result<(), String>) -> bool {
    match probe {
        Ok(()) => true,
        Err(why) => {
            assert!(
                std::env::var_os("TESSERA_REQUIRE_CLIENT_LIBRARIES").is_none(),
                "{what} required but {why}"
            );
            eprintln!("skipping the {what} test: {why}");
            false
        }
    }
}

/// Tessera with its issuer at the address it listens on, as the libraries
/// fetch every endpoint from discovery; the user-flow world plus a
/// confidential relying party that may sign users out.
fn start_at_own_address() -> Tessera {
    start_at_own_address_in(tempfile::tempdir().expect("tempdir"), "")
}

/// [`start_at_own_address`] in `dir`, with `extra` configuration.
fn start_at_own_address_in(dir: tempfile::TempDir, extra: &str) -> Tessera {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let config = user_config()
        .replace(
            &format!("issuer = \"{ISSUER}\""),
            &format!("issuer = \"http://127.0.0.1:{port}\""),
        )
        .replace(
            "listen = \"127.0.0.1:0\"",
            &format!("listen = \"127.0.0.1:{port}\""),
        );
    let rp = hash(RP_SECRET);
    Tessera::start_in(
        dir,
        &format!(
            "{config}\n{extra}\n[[clients]]\nid = \"rp\"\nname = \"Relying party\"\napp_type = \"regular_web\"\n\
         secret_hash = \"{rp}\"\nredirect_uris = [\"{RP_CALLBACK}\"]\n\
         post_logout_redirect_uris = [\"{RP_SIGNED_OUT}\"]\n\
         \n[[grants]]\nclient = \"rp\"\napi = \"{ORDERS}\"\nscopes = [\"read:orders\"]\nsubject = \"user\"\n"
        ),
    )
}

/// The virtual environment's Python, if it is there.
fn python() -> Option<PathBuf> {
    let python = clients_dir().join(".venv/bin/python");
    let probe = if !python.is_file() {
        Err(format!(
            "{} is missing (see tests/clients/README.md)",
            python.display()
        ))
    } else {
        Ok(())
    };
    available("Authlib", probe).then_some(python)
}

/// Runs a script; its last stdout line is its JSON result.
fn run(t: &Tessera, program: &Path, args: &[&str]) -> Value {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        t.log()
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[test]
fn authlib_introspects_and_revokes() {
    let Some(python) = python() else { return };
    let t = start_at_own_address();
    let script = clients_dir().join("authlib_flow.py");
    let r = run(
        &t,
        &python,
        &[
            script.to_str().expect("path"),
            &t.base,
            ORDERS,
            "acme-sync",
            ACME_SECRET,
            "orders-api",
            ORDERS_API_SECRET,
        ],
    );
    assert_eq!(r["token_type"], "Bearer");
    for key in ["active", "active_post", "own"] {
        let a = &r[key];
        assert_eq!(a["active"], true, "{key}: {a}");
        assert_eq!(a["client_id"], "acme-sync", "{key}: {a}");
        assert_eq!(a["aud"], ORDERS, "{key}: {a}");
        assert_eq!(a["iss"], t.base, "{key}: {a}");
        assert_eq!(a["token_type"], "Bearer", "{key}: {a}");
        assert_eq!(a["scope"], "read:orders", "{key}: {a}");
    }
    let claims = claims_unverified(r["access_token"].as_str().expect("token"));
    assert_eq!(r["active"]["jti"], claims["jti"]);
    assert_eq!(r["active"]["exp"], claims["exp"]);
    assert_eq!(r["wrong_secret_status"], 401);
    assert_eq!(r["revoke_status"], json!([200, 200, 200]));
    assert_eq!(r["after_revoke"], json!({"active": false}));
    assert_eq!(r["garbage"], json!({"active": false}));
}

#[test]
fn authlib_authenticates_with_private_key_jwt() {
    let Some(python) = python() else { return };
    let script = clients_dir().join("authlib_private_key_jwt.py");
    let script = script.to_str().expect("path");
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().to_str().expect("path").to_owned();
    let made = Command::new(&python)
        .args([script, "keys", &keys])
        .output()
        .expect("run the key maker");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let public = format!("{keys}/public.json");
    let t = start_at_own_address_in(
        dir,
        &format!(
            "[[clients]]\nid = \"signer\"\nname = \"Signs its assertions\"\napp_type = \"machine\"\n\
             jwks_file = \"{public}\"\n\n[[grants]]\nclient = \"signer\"\napi = \"{ORDERS}\"\n\
             scopes = [\"read:orders\"]\n"
        ),
    );
    let r = run(
        &t,
        &python,
        &[script, "flow", &t.base, ORDERS, "signer", &keys],
    );
    let methods = r["methods"].as_array().expect("methods");
    assert!(methods.contains(&json!("private_key_jwt")), "{methods:?}");
    let algs = r["algs"].as_array().expect("algs");
    for alg in ["RS256", "ES256"] {
        assert!(algs.contains(&json!(alg)), "{algs:?}");
    }
    let claims = verify_access_token(
        &t.jwks(),
        r["access_token"].as_str().expect("token"),
        ORDERS,
        &t.base,
    );
    assert_eq!(
        (&claims["client_id"], &claims["sub"]),
        (&json!("signer"), &json!("signer@clients"))
    );
    let a = &r["introspected"];
    assert_eq!(a["active"], true, "{a}");
    assert_eq!(
        (&a["client_id"], &a["jti"]),
        (&json!("signer"), &claims["jti"])
    );
    assert_eq!(r["revoke_status"], 200);
    assert_eq!(r["after_revoke"], json!({"active": false}));
    assert_eq!(r["first"], 200);
    assert_eq!(r["replayed"][0], 400, "{}", r["replayed"]);
    assert_eq!(r["replayed"][1]["error"], "invalid_client");
    assert_eq!(r["stranger"][0], 400, "{}", r["stranger"]);
    assert_eq!(r["stranger"][1]["error"], "invalid_client");
}

#[test]
fn openid_client_signs_in_refreshes_revokes_and_signs_out() {
    let dir = clients_dir();
    let probe = if Command::new("node").arg("--version").output().is_err() {
        Err("node is missing".to_owned())
    } else if !dir.join("node_modules/openid-client").is_dir() {
        Err(format!(
            "openid-client is missing (cd {} && npm ci)",
            dir.display()
        ))
    } else {
        Ok(())
    };
    if !available("openid-client", probe) {
        return;
    }
    let t = start_at_own_address();
    let id = add_user(&t, "hedy@example.com", "{}");
    let script = dir.join("node_flow.mjs");
    let r = run(
        &t,
        Path::new("node"),
        &[
            script.to_str().expect("path"),
            &t.base,
            ORDERS,
            "rp",
            RP_SECRET,
            RP_CALLBACK,
            RP_SIGNED_OUT,
            "orders-api",
            ORDERS_API_SECRET,
            "hedy@example.com",
            PASSWORD,
        ],
    );
    assert_eq!(r["discovered"], json!({"oidc": t.base, "oauth2": t.base}));
    assert_eq!(r["end_session_endpoint"], t.url("/oidc/logout"));
    assert_eq!(
        r["id_token"],
        json!({"sub": id, "aud": "rp", "nonce": r["id_token"]["nonce"], "email": "hedy@example.com"})
    );
    assert!(r["id_token"]["nonce"].is_string());
    assert_eq!(
        r["access_token"],
        json!({"sub": id, "aud": ORDERS, "client_id": "rp", "scope": "openid email offline_access read:orders"})
    );
    assert_eq!(r["refreshed"], true);
    let a = &r["introspected_access"];
    assert_eq!(a["active"], true, "{a}");
    assert_eq!((&a["sub"], &a["client_id"]), (&json!(id), &json!("rp")));
    assert_eq!(r["spent_refresh"], json!({"active": false}));
    let live = &r["live_refresh"];
    assert_eq!(live["active"], true, "{live}");
    assert_eq!(live["token_type"], "refresh_token");
    assert_eq!(
        (&live["sub"], &live["client_id"]),
        (&json!(id), &json!("rp"))
    );
    assert_eq!(r["revoked_refresh"], json!({"active": false}));
    assert_eq!(r["refresh_after_revoke"], "invalid_grant");
    assert_eq!(r["revoked_access"], json!({"active": false}));
    assert_eq!(
        r["authorize_in_session"], 303,
        "the session skips the login page"
    );
    let logout = &r["logout"];
    assert_eq!(logout["status"], 303, "{logout}");
    let back = url::Url::parse(logout["location"].as_str().expect("location")).expect("url");
    assert_eq!(back.as_str().split('?').next(), Some(RP_SIGNED_OUT));
    let state: Vec<_> = back.query_pairs().filter(|(k, _)| k == "state").collect();
    assert_eq!(state.len(), 1);
    assert_eq!(state[0].1, logout["state"].as_str().expect("state"));
    assert_eq!(
        r["authorize_after_logout"], 200,
        "the login page again: the session is over"
    );
}
