//! Plugin ABI versions side by side: a component built against
//! `tessera:plugin@0.1.0` by an earlier SDK (kept byte for byte in
//! `tests/fixtures/abi-0.1.0/`) and one built against 0.2.0 run in one
//! pipeline, each through its own ABI module, and each sees the token as the
//! plugins before it left it.

use serde_json::{Value, json};

use crate::support::*;

const NS: &str = "https://claims.example.com/";

fn v0_1_client_claims() -> String {
    format!(
        "\n[[plugins]]\nname = \"client-claims-0-1\"\npath = \"{}\"\nstages = [\"credentials-exchange\"]\ntimeout_ms = 2000\nconfig = {{ namespace = \"{NS}\", metadata_keys = [\"tier\"] }}\n",
        fixture("abi-0.1.0/client_claims").display()
    )
}

fn v0_2(name: &str, extra: &str) -> String {
    format!(
        "\n[[plugins]]\nname = \"{name}\"\npath = \"{}\"\n{extra}\n",
        wasm("abi_v0_2").display()
    )
}

#[test]
fn a_0_1_and_a_0_2_plugin_share_one_pipeline() {
    let config = base_config("ES256")
        + &v0_1_client_claims()
        + &v0_2(
            "reader-0-2",
            "stages = [\"credentials-exchange\"]\nconfig = { mode = \"claims\" }",
        );
    let t = Tessera::start(&config);
    let claims = t.verify(
        t.acme(&[("audience", ORDERS), ("scope", "read:orders")])
            .access_token(),
        ORDERS,
    );
    // The 0.1.0 component built by the old SDK, unchanged.
    assert_eq!(claims[format!("{NS}client_name")], "ACME order sync");
    assert_eq!(claims[format!("{NS}tier")], "gold");
    // The 0.2.0 component read the event through its getters.
    assert_eq!(claims["v2_client"], "ACME order sync");
    assert_eq!(claims["v2_tier"], "gold");
    assert_eq!(claims["v2_scopes"], json!(["read:orders"]));
    assert_eq!(
        claims["v2_parts"],
        json!(["client", "request", "transaction", "api"])
    );
    // `to-json` has the documented shape, with the 0.1.0 plugin's claims in
    // the token so far.
    let event = &claims["v2_event"];
    assert_eq!(event["client"]["id"], "acme-sync");
    assert_eq!(event["client"]["app_type"], "machine");
    assert_eq!(event["client"]["metadata"]["tier"], "gold");
    assert_eq!(event["api"]["identifier"], ORDERS);
    assert_eq!(event["transaction"]["grant_type"], "client_credentials");
    assert_eq!(
        event["transaction"]["requested_scopes"],
        json!(["read:orders"])
    );
    assert_eq!(event["request"]["method"], "POST");
    assert!(
        event["user"].is_null() && event["id_token"].is_null(),
        "{event}"
    );
    assert_eq!(
        event["access_token"]["claims"][format!("{NS}client_name")],
        "ACME order sync",
        "{event}"
    );
    assert!(
        event["request"]["params"]
            .as_array()
            .is_some_and(|p| p.contains(&json!(["scope", "read:orders"]))),
        "{event}"
    );
    // And it is what the schema generated from the WIT says, to the letter.
    check_event_schema(event);
}

/// Validates `event` against `plugin-sdk/event.schema.json` with the Python
/// `jsonschema` package (pinned in `tests/clients/requirements.txt`).
fn check_event_schema(event: &Value) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let schema = root.join("plugin-sdk/event.schema.json");
    let Some(out) = run_client_script(
        "check_event_schema.py",
        &[schema.to_str().expect("a UTF-8 path")],
        &event.to_string(),
    ) else {
        return;
    };
    assert!(
        out.status.success(),
        "the event does not match plugin-sdk/event.schema.json:\n{}{}\n{event:#}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `tessera plugin test --stage STAGE` on the 0.2.0 test guest with `event`
/// (the event file's JSON); whether it exited 0, and its report.
fn plugin_test(stage: &str, event: &str) -> (bool, Value) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let file = dir.path().join("event.json");
    std::fs::write(&file, event).expect("write the event");
    let (ok, out, err) = run_tessera(&[
        "plugin",
        "test",
        "--stage",
        stage,
        "--event",
        file.to_str().expect("a UTF-8 path"),
        "--cache-dir",
        shared_cache().to_str().expect("a UTF-8 path"),
        wasm("abi_v0_2").to_str().expect("a UTF-8 path"),
    ]);
    let report = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    (ok, report)
}

/// `tessera plugin test` on the 0.2.0 fixture: a denial, a removed scope
/// and a trap behave as they do for 0.1.0 plugins.
#[test]
fn a_0_2_plugin_denies_changes_and_fails_like_any_other() {
    let run = |mode: &str, extra: &str| {
        plugin_test(
            "credentials-exchange",
            &format!("{{\"config\": {{\"mode\": \"{mode}\"{extra}}}}}"),
        )
    };
    let (ok, report) = run("deny", "");
    assert!(ok, "{report}");
    assert_eq!(report["decision"], "deny");
    assert_eq!(report["error"]["error"], "invalid_target");
    assert_eq!(report["error"]["error_description"], "abi-v0-2 denies");

    let (ok, report) = run("remove-scope", ", \"scope\": \"write:example\"");
    assert!(ok, "{report}");
    assert_eq!(report["scopes"]["removed"], json!(["write:example"]));

    let (ok, report) = run("trap", "");
    assert!(!ok, "{report}");
    assert_eq!(report["decision"], "fail");
    let logs = report["logs"].to_string();
    assert!(
        report["error"]["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("trapped")),
        "{report}"
    );
    assert!(logs.contains("asked to trap"), "{logs}");
}

/// In a user flow the 0.2.0 event has the user and the ID token, and the
/// plugin may add a scope within the ceiling.
#[test]
fn a_0_2_plugin_reads_the_user_at_the_authorize_stage() {
    let (ok, report) = plugin_test(
        "authorize",
        r#"{"config": {"mode": "user", "scope": "write:example"},
            "user": {"id": "u_1", "email": "ada@example.com"},
            "access_token": {"scopes": ["read:example"]}}"#,
    );
    assert!(ok, "{report}");
    assert_eq!(
        report["id_token"]["claims"]["v2_user"], "u_1 ada@example.com",
        "{report}"
    );
    assert_eq!(
        report["scopes"]["added"],
        json!(["write:example"]),
        "{report}"
    );
}

#[test]
fn inspect_names_each_components_abi_version() {
    for (file, version) in [
        (fixture("abi-0.1.0/client_claims"), "tessera:plugin@0.1.0"),
        (wasm("abi_v0_2"), "tessera:plugin@0.2.0"),
    ] {
        let (ok, out, err) = run_tessera(&[
            "plugin",
            "inspect",
            "--json",
            "--cache-dir",
            shared_cache().to_str().unwrap(),
            file.to_str().unwrap(),
        ]);
        assert!(ok, "{out} {err}");
        let found: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(found["wit"], version, "{found}");
        assert_eq!(found["loads"], true, "{found}");
    }
}

/// The misbehave fixture as the 0.1.0 SDK built it, for Orders tokens only.
fn hostile_0_1(mode: &str, extra: &str) -> Tessera {
    hostile(&fixture("abi-0.1.0/misbehave"), mode, extra)
}

/// The sandbox holds for 0.1.0 components as for 0.2.0 ones (which
/// `sandbox.rs` and `plugins.rs` test with the current SDK's build): the
/// deadline, the memory cap, a stack overflow and an oversized result each
/// fail only their request, and no instance sees an earlier call.
#[test]
fn the_sandbox_holds_for_0_1_components() {
    for (mode, extra, expected) in [
        ("loop", "", "timed out after 200 ms"),
        ("memory-bomb", "", "trapped"),
        ("recurse", "", "stack overflow"),
        ("big-claim", ", bytes = \"1048576\"", "before being copied"),
    ] {
        let t = hostile_0_1(mode, extra);
        let d = t
            .acme(&[("audience", ORDERS)])
            .expect_error(500, "server_error");
        assert!(d.contains(expected), "{mode}: {d}");
        let claims = t.verify(t.acme(&[("audience", BILLING)]).access_token(), BILLING);
        assert_eq!(claims["client_id"], "acme-sync", "{mode}");
    }
    let t = hostile_0_1("counter", "");
    for _ in 0..20 {
        let claims = t.verify(t.acme(&[("audience", ORDERS)]).access_token(), ORDERS);
        assert_eq!(claims["calls_seen_by_this_instance"], 1, "{claims}");
    }
}
