//! Shadow runs: a plugin's candidate build (`shadow_path`) runs beside the
//! live one on a sample of its calls, after the answer, and what it would
//! have changed lands in the request's trace and on `/metrics` while the
//! client gets what the live build decided.

use std::time::Duration;

use serde_json::Value;

use crate::support::*;

const OPS_SECRET: &str = "ops-secret-0123456789abcdefghijklmnopqrstuv";

/// The live plugin `shaper` is client-claims (`https://v/client_name`); its
/// candidate the misbehave fixture, which with `mode = "claims"` sets
/// `version = "B"` and without a mode denies every call.
fn config(mode: &str, extra: &str) -> String {
    config_with(&wasm("misbehave"), mode, extra)
}

fn config_with(candidate: &std::path::Path, mode: &str, extra: &str) -> String {
    format!(
        "{}\n[[apis]]\nidentifier = \"urn:tessera:admin\"\nscopes = [\"tessera:traces:read\"]\n\
         \n[[clients]]\nid = \"ops\"\napp_type = \"machine\"\nsecret_hash = \"{}\"\n\
         \n[[grants]]\nclient = \"ops\"\napi = \"urn:tessera:admin\"\nscopes = [\"tessera:traces:read\"]\n\
         \n[[plugins]]\nname = \"shaper\"\npath = \"{}\"\nshadow_path = \"{}\"\n{extra}\
         stages = [\"credentials-exchange\"]\napis = [\"{ORDERS}\"]\ntimeout_ms = 2000\n\
         config = {{ namespace = \"https://v/\", metadata_keys = [], {mode} claims = {{ version = \"B\" }} }}\n",
        base_config("ES256"),
        hash(OPS_SECRET),
        wasm("client_claims").display(),
        candidate.display()
    )
}

/// The trace of the token `jti` once `n` shadow runs are in it.
fn shadowed_trace(t: &Tessera, jti: &str, n: usize) -> Value {
    let token = t
        .token(
            Some(("ops", OPS_SECRET)),
            &[
                ("grant_type", "client_credentials"),
                ("audience", "urn:tessera:admin"),
                ("scope", "tessera:traces:read"),
            ],
        )
        .access_token()
        .to_owned();
    let mut trace = Value::Null;
    let found = wait_for(Duration::from_secs(10), || {
        trace = reqwest::blocking::Client::new()
            .get(t.url(&format!("/admin/traces/{jti}")))
            .bearer_auth(&token)
            .send()
            .and_then(|r| r.json())
            .unwrap_or(Value::Null);
        trace["shadows"].as_array().is_some_and(|s| s.len() >= n)
    });
    assert!(found, "{trace}\n{}", t.log());
    trace
}

fn metric(t: &Tessera, line_start: &str) -> Option<f64> {
    t.get("/metrics")
        .text()
        .expect("metrics")
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn a_candidate_runs_in_the_shadow_and_its_differences_reach_the_trace_not_the_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let candidate = dir.path().join("candidate.wasm");
    std::fs::copy(wasm("misbehave"), &candidate).expect("copy");
    let t = Tessera::start_in(
        dir,
        &config_with(&candidate, "mode = \"claims\",", "shadow_sample = 1.0\n"),
    );
    let reply = t.acme(&[("audience", ORDERS)]);
    let claims = t.verify(reply.access_token(), ORDERS);
    // The client gets the live build's token.
    assert_eq!(claims["https://v/client_name"], "ACME order sync");
    assert!(claims.get("version").is_none(), "{claims}");

    let jti = claims["jti"].as_str().expect("jti");
    let trace = shadowed_trace(&t, jti, 1);
    let shadow = &trace["shadows"][0];
    assert_eq!(shadow["plugin"], "shaper");
    assert_eq!(shadow["result"], "changed", "{shadow}");
    assert_eq!(
        (&shadow["live"], &shadow["candidate"]),
        (&Value::from("allow"), &Value::from("allow"))
    );
    let differences = shadow["differences"].to_string();
    assert!(
        differences.contains("\"name\":\"version\"") && differences.contains("\"to\":\"B\""),
        "{differences}"
    );
    assert!(
        differences.contains("\"name\":\"https://v/client_name\""),
        "{differences}"
    );
    assert!(shadow["micros"].as_u64().is_some() && shadow["live_micros"].as_u64().is_some());
    let printed = tessera_trace(&t, ("ops", OPS_SECRET), jti);
    assert!(
        printed.contains("  shadow    shaper sha256:")
            && printed.contains("changed  allow → allow")
            && printed.contains("access_token claim version: (not set) → \"B\""),
        "{printed}"
    );
    assert_eq!(
        metric(
            &t,
            "tessera_plugin_shadow_runs_total{plugin=\"shaper\",result=\"changed\"}"
        ),
        Some(1.0),
        "{}",
        t.get("/metrics").text().unwrap_or_default()
    );

    // A new candidate file is watched like the plugin's own: once the
    // candidate is the live build, the shadow finds nothing to report.
    let tmp = candidate.with_extension("tmp");
    std::fs::copy(wasm("client_claims"), &tmp).expect("copy");
    std::fs::rename(&tmp, &candidate).expect("rename");
    let mut last = Value::Null;
    let same = wait_for(Duration::from_secs(10), || {
        let claims = t.verify(t.acme(&[("audience", ORDERS)]).access_token(), ORDERS);
        last = shadowed_trace(&t, claims["jti"].as_str().expect("jti"), 1);
        last["shadows"][0]["result"] == "same"
    });
    assert!(same, "{last}\n{}", t.log());
}

#[test]
fn a_candidate_that_would_refuse_flips_in_the_shadow_while_the_live_build_serves() {
    // Without a mode the candidate denies; every second call is sampled.
    let t = Tessera::start(&config("", "shadow_sample = 0.5\n"));
    let jtis: Vec<String> = (0..4)
        .map(|_| {
            let claims = t.verify(t.acme(&[("audience", ORDERS)]).access_token(), ORDERS);
            claims["jti"].as_str().expect("jti").to_owned()
        })
        .collect();
    // Calls 2 and 4 were picked.
    let trace = shadowed_trace(&t, &jtis[3], 1);
    let shadow = &trace["shadows"][0];
    assert_eq!(shadow["result"], "flipped", "{shadow}");
    assert_eq!(shadow["candidate"], "deny");
    assert_eq!(shadow["differences"][0]["kind"], "decision");
    assert!(
        wait_for(Duration::from_secs(10), || metric(
            &t,
            "tessera_plugin_shadow_runs_total{plugin=\"shaper\",result=\"flipped\"}"
        ) == Some(2.0)),
        "{}",
        t.get("/metrics").text().unwrap_or_default()
    );
}

#[test]
fn shadow_settings_are_checked() {
    for (extra, problem) in [
        (
            "shadow_sample = 0.0\n",
            "plugins[shaper].shadow_sample: 0 is out of range",
        ),
        (
            "shadow_sample = 1.5\n",
            "plugins[shaper].shadow_sample: 1.5 is out of range",
        ),
    ] {
        let (_dir, path) = write_config(&config("", extra));
        let (ok, _, err) = run_tessera(&["check", "--config", &path]);
        assert!(!ok && err.contains(problem), "{extra}: {err}");
    }
    let without = config("", "").replace(
        &format!("shadow_path = \"{}\"\n", wasm("misbehave").display()),
        "shadow_sample = 0.5\n",
    );
    let (_dir, path) = write_config(&without);
    let (ok, _, err) = run_tessera(&["check", "--config", &path]);
    assert!(
        !ok && err.contains("shadow_sample: needs shadow_path"),
        "{err}"
    );
    let missing = config("", "").replace(
        &wasm("misbehave").display().to_string(),
        "/nonexistent/candidate.wasm",
    );
    let (_dir, path) = write_config(&missing);
    let (ok, _, err) = run_tessera(&["check", "--config", &path]);
    assert!(
        !ok && err.contains("plugins[shaper].shadow_path: cannot read /nonexistent/candidate.wasm"),
        "{err}"
    );
}

#[test]
fn promote_makes_the_candidate_live_by_editing_the_configuration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let candidate = dir.path().join("candidate.wasm");
    std::fs::copy(wasm("misbehave"), &candidate).expect("copy");
    let text = format!(
        "# kept by promote\n{}",
        config_with(&candidate, "mode = \"claims\",", "shadow_sample = 0.5\n")
    );
    let t = Tessera::start_in(dir, &text);
    let version = |t: &Tessera| {
        t.verify(t.acme(&[("audience", ORDERS)]).access_token(), ORDERS)
            .get("version")
            .cloned()
    };
    assert_eq!(version(&t), None, "the live build serves");

    let config = t.dir.path().join("tessera.toml");
    let path = config.display().to_string();
    let (ok, out, err) = run_tessera(&["plugin", "promote", "shaper", "--config", &path]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("plugins[shaper].path: ") && out.contains("shadow_path removed"),
        "{out}"
    );
    let edited = std::fs::read_to_string(&config).expect("config");
    assert!(edited.starts_with("# kept by promote\n"), "{edited}");
    assert!(
        edited.contains(&format!("path = \"{}\"", candidate.display()))
            && !edited.contains("shadow_path")
            && !edited.contains("shadow_sample"),
        "{edited}"
    );
    assert!(
        wait_for(Duration::from_secs(10), || version(&t)
            == Some(Value::from("B"))),
        "{}",
        t.log()
    );

    let (ok, _, err) = run_tessera(&["plugin", "promote", "shaper", "--config", &path]);
    assert!(
        !ok && err.contains("plugins[shaper] has no shadow_path"),
        "{err}"
    );
    let (ok, _, err) = run_tessera(&["plugin", "promote", "nope", "--config", &path]);
    assert!(
        !ok && err.contains("no [[plugins]] entry is named \"nope\" (its plugins: shaper)"),
        "{err}"
    );
}

#[test]
fn a_candidate_that_would_not_load_is_not_promoted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let candidate = dir.path().join("candidate.wasm");
    std::fs::write(&candidate, b"not a component").expect("junk");
    let config = dir.path().join("tessera.toml");
    let text = config_with(&candidate, "", "");
    std::fs::write(&config, &text).expect("config");
    let (ok, _, err) = run_tessera(&[
        "plugin",
        "promote",
        "shaper",
        "--config",
        &config.display().to_string(),
    ]);
    assert!(
        !ok && err.contains("the candidate would not load, so nothing changed")
            && err.contains("is not a WebAssembly file"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&config).expect("config"), text);
}
