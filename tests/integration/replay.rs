//! `tessera plugin replay`: traces recorded by a running server (their
//! events, redacted), saved with `tessera trace --json`, run against new
//! builds of the plugin offline.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::*;

const OPS_SECRET: &str = "ops-secret-0123456789abcdefghijklmnopqrstuv";

/// An admin API whose `ops` client reads traces, and the plugin `shaper`:
/// client-claims (`https://v/client_name`) for the Orders API. Its config
/// also suits the misbehave fixture in `claims` mode (`version = "B"`).
fn config() -> String {
    format!(
        "{}\n[[apis]]\nidentifier = \"urn:tessera:admin\"\nscopes = [\"tessera:traces:read\"]\n\
         \n[[clients]]\nid = \"ops\"\napp_type = \"machine\"\nsecret_hash = \"{}\"\n\
         \n[[grants]]\nclient = \"ops\"\napi = \"urn:tessera:admin\"\nscopes = [\"tessera:traces:read\"]\n\
         \n[[plugins]]\nname = \"shaper\"\npath = \"{}\"\nstages = [\"credentials-exchange\"]\n\
         apis = [\"{ORDERS}\"]\ntimeout_ms = 2000\n\
         config = {{ namespace = \"https://v/\", metadata_keys = [\"tier\"], mode = \"claims\", claims = {{ version = \"B\" }} }}\n",
        base_config("ES256"),
        hash(OPS_SECRET),
        wasm("client_claims").display()
    )
}

fn replay(file: &Path, args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["plugin", "replay"];
    let file = file.display().to_string();
    all.push(&file);
    all.extend_from_slice(args);
    run_tessera(&all)
}

#[test]
fn recorded_traces_replay_against_new_builds_and_a_flipped_decision_fails() {
    let t = Tessera::start(&config());
    for _ in 0..3 {
        t.verify(t.acme(&[("audience", ORDERS)]).access_token(), ORDERS);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["trace", "--url", &t.base, "--admin-client", "ops", "--json"])
        .env("TESSERA_ADMIN_SECRET", OPS_SECRET)
        .env_remove("TESSERA_ADMIN_TOKEN")
        .output()
        .expect("tessera trace");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let traces = t.dir.path().join("traces.jsonl");
    std::fs::write(&traces, &out.stdout).expect("save traces");

    // Each trace of an Orders token recorded the event its plugin saw, with
    // the request's address and User-Agent redacted by default.
    let recorded: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a trace a line"))
        .filter(|t: &Value| t["decision"]["api"] == ORDERS)
        .collect();
    assert_eq!(recorded.len(), 3);
    let event = &recorded[0]["decision"]["event"];
    assert_eq!(event["client"]["id"], "acme-sync", "{event}");
    assert_eq!(event["request"]["ip"], "<redacted>", "{event}");
    let run = &recorded[0]["decision"]["plugins"][0];
    assert_eq!(
        run["token_before"]["access_token"]["scopes"]
            .as_array()
            .map(Vec::len),
        Some(2),
        "{run}"
    );
    assert_eq!(
        run["token_after"]["access_token"]["claims"]["https://v/client_name"], "ACME order sync",
        "{run}"
    );

    let traces = traces.display().to_string();
    let config = t.dir.path().join("tessera.toml").display().to_string();

    // The same build: nothing changes.
    let (ok, text, err) = replay(
        &wasm("client_claims"),
        &["--traces", &traces, "--config", &config],
    );
    assert!(ok, "{text}{err}");
    assert_eq!(text.matches(": same\n").count(), 3, "{text}");
    assert!(
        text.contains(
            "3 event(s) of plugin \"shaper\": 3 the same, 0 changed, 0 decision(s) flipped"
        ),
        "{text}"
    );

    // Another build that still allows: its claim changes, exit 0.
    let (ok, text, err) = replay(
        &wasm("misbehave"),
        &["--traces", &traces, "--config", &config],
    );
    assert!(ok, "{text}{err}");
    assert!(
        text.contains("access_token claim https://v/client_name: \"ACME order sync\" → (not set)")
            && text.contains("access_token claim version: (not set) → \"B\"")
            && text.contains("3 changed, 0 decision(s) flipped"),
        "{text}"
    );

    // Without the entry's config the misbehave build denies: every decision
    // flips, and the command fails, for a plugin author's CI.
    let (ok, text, err) = replay(&wasm("misbehave"), &["--traces", &traces, "--json"]);
    assert!(!ok, "{text}{err}");
    let report: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(report["plugin"], "shaper");
    let events = report["events"].as_array().expect("events");
    assert_eq!(events.len(), 3);
    for e in events {
        assert_eq!(
            (&e["recorded"], &e["replayed"]),
            (&Value::from("allow"), &Value::from("deny")),
            "{e}"
        );
        assert_eq!(e["differences"][0]["kind"], "decision", "{e}");
        assert_eq!(e["differences"][0]["flipped"], true, "{e}");
    }

    // Bad input says what is wrong.
    let (ok, _, err) = replay(
        &wasm("client_claims"),
        &["--traces", &traces, "--plugin", "nope"],
    );
    assert!(
        !ok && err.contains("no trace ran a plugin named \"nope\" (they ran: shaper)"),
        "{err}"
    );
    let (ok, _, err) = replay(&wasm("client_claims"), &["--traces", &config]);
    assert!(
        !ok && err.contains(": not JSON") && err.contains("one trace per line"),
        "{err}"
    );
}

#[test]
fn redaction_names_fields_a_trace_records() {
    let (_dir, path) = write_config(
        &(config()
            + "\n[trace]\nredact = [\"user.email\", \"user.password\", \"client.metadata.\"]\n"),
    );
    let (ok, _, err) = run_tessera(&["check", "--config", &path]);
    assert!(!ok);
    assert!(err.contains("2 problems"), "{err}");
    assert!(
        err.contains("trace.redact: \"user.password\" is not a field a trace records"),
        "{err}"
    );
    assert!(err.contains("\"client.metadata.\" is not a field"), "{err}");
}
