//! Plugins in the real host: the example plugins, ordering, filters, denials,
//! and every way a plugin can fail.

use std::time::{Duration, Instant};

use crate::support::*;

const NS: &str = "https://claims.example.com/";

fn client_claims() -> String {
    format!(
        "\n[[plugins]]\nname = \"client-claims\"\npath = \"{}\"\nstages = [\"credentials-exchange\"]\ntimeout_ms = 2000\nconfig = {{ namespace = \"{NS}\", metadata_keys = [\"partner\", \"tier\"] }}\n",
        wasm("client_claims").display()
    )
}

fn api_guard() -> String {
    format!(
        "\n[[plugins]]\nname = \"api-guard\"\npath = \"{}\"\ntimeout_ms = 2000\n",
        wasm("api_guard").display()
    )
}

#[test]
fn client_claims_puts_the_calling_client_into_the_token() {
    let t = Tessera::start(&(base_config("ES256") + &client_claims()));
    let claims = t.verify(t.acme(&[("audience", ORDERS)]).access_token(), ORDERS);
    assert_eq!(claims[format!("{NS}client_name")], "ACME order sync");
    assert_eq!(claims[format!("{NS}partner")], "acme");
    assert_eq!(claims[format!("{NS}tier")], "gold");
    assert!(
        claims.get(format!("{NS}region")).is_none(),
        "only configured keys: {claims}"
    );
    // The token can be traced to the plugin that shaped it.
    let log = t.log();
    assert!(
        log.contains("issued access token") && log.contains("client-claims"),
        "{log}"
    );
}

#[test]
fn api_guard_enforces_the_apis_own_policy() {
    let t = Tessera::start(&(base_config("ES256") + &api_guard()));
    // Billing accepts only the partner globex.
    let d = t
        .acme(&[("audience", BILLING)])
        .expect_error(400, "access_denied");
    assert!(
        d.contains("acme-sync") && d.contains("allowed_partners"),
        "{d}"
    );
    let reply = t.token(
        Some(("globex", GLOBEX_SECRET)),
        &[("grant_type", "client_credentials"), ("audience", BILLING)],
    );
    t.verify(reply.access_token(), BILLING);
    // write:orders is restricted to gold clients: removed for globex, kept for acme.
    let reply = t.token(
        Some(("globex", GLOBEX_SECRET)),
        &[("grant_type", "client_credentials"), ("audience", ORDERS)],
    );
    assert_eq!(
        t.verify(reply.access_token(), ORDERS)["scope"],
        "read:orders"
    );
    assert_eq!(reply.body["scope"], "read:orders");
    let claims = t.verify(t.acme(&[("audience", ORDERS)]).access_token(), ORDERS);
    assert_eq!(claims["scope"], "read:orders write:orders");
}

#[test]
fn plugins_run_in_order_and_see_the_state_left_before_them() {
    let config = base_config("ES256")
        + &client_claims()
        + &misbehave("echo", "config = { mode = \"echo\" }");
    let t = Tessera::start(&config);
    let claims = t.verify(
        t.acme(&[("audience", ORDERS), ("scope", "read:orders")])
            .access_token(),
        ORDERS,
    );
    let seen = &claims["seen"];
    assert_eq!(seen["client"], "acme-sync");
    assert_eq!(seen["client_name"], "ACME order sync");
    assert_eq!(seen["app_type"], "machine");
    assert_eq!(seen["api"], ORDERS);
    assert_eq!(seen["scopes"], serde_json::json!(["read:orders"]));
    assert_eq!(seen["grant_type"], "client_credentials");
    assert!(
        seen["claims_so_far"]
            .as_array()
            .expect("list")
            .iter()
            .any(|c| c == &format!("{NS}client_name")),
        "{seen}"
    );
    assert_eq!(
        seen["params"],
        serde_json::json!(["grant_type", "audience", "scope"])
    );
}

#[test]
fn secrets_reach_the_plugin_but_never_the_request_params() {
    let secrets = tempfile::tempdir().expect("tempdir");
    let file = secrets.path().join("token");
    std::fs::write(&file, "s3cr3t\n").expect("write");
    let config = base_config("ES256")
        + &misbehave(
            "echo",
            &format!(
                "config = {{ mode = \"echo\" }}\nsecrets = {{ token = {{ file = \"{}\" }} }}",
                file.display()
            ),
        );
    let t = Tessera::start(&config);
    let reply = t.token(
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "acme-sync"),
            ("client_secret", ACME_SECRET),
            ("audience", ORDERS),
        ],
    );
    let seen = &t.verify(reply.access_token(), ORDERS)["seen"];
    assert_eq!(seen["secret"], "s3cr3t");
    assert_eq!(
        seen["params"],
        serde_json::json!(["grant_type", "client_id", "audience"])
    );
    assert!(!t.log().contains(ACME_SECRET));
}

#[test]
fn a_denial_becomes_its_oauth_error() {
    let config = base_config("ES256")
        + &misbehave(
            "deny",
            "config = { mode = \"deny\", code = \"invalid_scope\", description = \"no scopes for you\" }",
        );
    let t = Tessera::start(&config);
    let d = t
        .acme(&[("audience", ORDERS)])
        .expect_error(400, "invalid_scope");
    assert_eq!(d, "no scopes for you");
}

#[test]
fn the_apis_filter_limits_where_a_plugin_runs() {
    let config = base_config("ES256")
        + &misbehave(
            "deny",
            &format!("apis = [\"{BILLING}\"]\nconfig = {{ mode = \"deny\" }}"),
        );
    let t = Tessera::start(&config);
    t.verify(t.acme(&[("audience", ORDERS)]).access_token(), ORDERS);
    t.acme(&[("audience", BILLING)])
        .expect_error(400, "access_denied");
}

fn marker() -> String {
    misbehave(
        "marker",
        "config = { mode = \"claims\", claims = { marker = \"before\" } }",
    )
}

#[test]
fn a_plugin_timeout_fails_closed_then_the_next_request_is_fine() {
    let config = base_config("ES256")
        + &marker()
        + &misbehave(
            "spin",
            "timeout_ms = 30\nconfig = { mode = \"loop\" }\napis = [\"https://orders.example.com\"]",
        );
    let t = Tessera::start(&config);
    let started = Instant::now();
    let d = t
        .acme(&[("audience", ORDERS)])
        .expect_error(500, "server_error");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        d.contains("spin") && d.contains("timed out after 30 ms"),
        "{d}"
    );
    // The host keeps serving.
    let claims = t.verify(t.acme(&[("audience", BILLING)]).access_token(), BILLING);
    assert_eq!(claims["marker"], "before");
    let metrics = t.get("/metrics").text().expect("metrics");
    assert!(
        metrics.contains("tessera_plugin_failures_total{plugin=\"spin\"} 1"),
        "{metrics}"
    );
}

#[test]
fn a_failing_plugin_with_on_error_skip_leaves_the_token_without_its_changes() {
    for mode in ["loop", "trap", "reserved"] {
        let config = base_config("ES256")
            + &marker()
            + &misbehave(
                "bad",
                &format!("timeout_ms = 30\non_error = \"skip\"\nconfig = {{ mode = \"{mode}\" }}"),
            );
        let t = Tessera::start(&config);
        let claims = t.verify(t.acme(&[("audience", ORDERS)]).access_token(), ORDERS);
        assert_eq!(claims["marker"], "before", "{mode}");
        assert!(
            claims.get("fine").is_none(),
            "{mode}: a skipped plugin's changes leaked: {claims}"
        );
        assert_eq!(claims["sub"], "acme-sync@clients");
        let metrics = t.get("/metrics").text().expect("metrics");
        assert!(
            metrics.contains("tessera_plugin_failures_total{plugin=\"bad\"} 1"),
            "{mode}: {metrics}"
        );
    }
}

#[test]
fn a_trap_or_stack_overflow_is_a_server_error() {
    let config = base_config("ES256")
        + &misbehave(
            "trap",
            &format!("apis = [\"{ORDERS}\"]\nconfig = {{ mode = \"trap\" }}"),
        )
        + &misbehave(
            "deep",
            &format!("apis = [\"{BILLING}\"]\nconfig = {{ mode = \"recurse\" }}"),
        );
    let t = Tessera::start(&config);
    let d = t
        .acme(&[("audience", ORDERS)])
        .expect_error(500, "server_error");
    assert!(d.contains("trap") && d.contains("trapped"), "{d}");
    // The panic message reaches the server log through the captured stderr.
    assert!(t.log().contains("asked to trap"), "{}", t.log());
    let d = t
        .acme(&[("audience", BILLING)])
        .expect_error(500, "server_error");
    assert!(d.contains("stack overflow"), "{d}");
}

#[test]
fn reserved_claims_are_refused_by_name() {
    for claim in [
        "sub",
        "iss",
        "aud",
        "exp",
        "client_id",
        "scope",
        "jti",
        "cnf",
    ] {
        let config = base_config("ES256")
            + &misbehave(
                "forge",
                &format!("config = {{ mode = \"reserved\", claim = \"{claim}\" }}"),
            );
        let t = Tessera::start(&config);
        let d = t
            .acme(&[("audience", ORDERS)])
            .expect_error(500, "server_error");
        assert!(
            d.contains(&format!("'{claim}'")) && d.contains("reserved"),
            "{claim}: {d}"
        );
    }
}

#[test]
fn credentials_exchange_cannot_add_scopes_but_can_remove_them() {
    let config = base_config("ES256")
        + &misbehave(
            "widen",
            &format!(
                "apis = [\"{ORDERS}\"]\nconfig = {{ mode = \"add-scope\", scope = \"delete:orders\" }}"
            ),
        )
        + &misbehave(
            "narrow",
            &format!(
                "apis = [\"{BILLING}\"]\nconfig = {{ mode = \"remove-scope\", scope = \"read:invoices\" }}"
            ),
        );
    let t = Tessera::start(&config);
    let d = t
        .acme(&[("audience", ORDERS)])
        .expect_error(500, "server_error");
    assert!(d.contains("delete:orders"), "{d}");
    let reply = t.acme(&[("audience", BILLING)]);
    let claims = t.verify(reply.access_token(), BILLING);
    assert!(claims.get("scope").is_none(), "{claims}");
    assert_eq!(reply.body["scope"], "");
}

#[test]
fn no_state_crosses_calls_even_in_reused_pool_slots() {
    let t = std::sync::Arc::new(Tessera::start(
        &(base_config("ES256") + &misbehave("counter", "config = { mode = \"counter\" }")),
    ));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let t = t.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    let claims = t.verify(t.acme(&[("audience", ORDERS)]).access_token(), ORDERS);
                    assert_eq!(
                        claims["calls_seen_by_this_instance"], 1,
                        "a plugin instance saw an earlier call"
                    );
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("state crossed calls");
    }
}

#[test]
fn warm_instances_are_reused_for_at_most_warm_max_calls() {
    let t = Tessera::start(
        &(base_config("ES256")
            + &misbehave(
                "counter",
                "config = { mode = \"counter\" }\nwarm_instances = 1\nwarm_max_calls = 4",
            )),
    );
    // One request at a time, so the one idle instance serves each call until
    // it has served four; then a fresh one starts from 1 again.
    let seen: Vec<u64> = (0..10)
        .map(|_| {
            let claims = t.verify(t.acme(&[("audience", ORDERS)]).access_token(), ORDERS);
            claims["calls_seen_by_this_instance"]
                .as_u64()
                .expect("counter claim")
        })
        .collect();
    assert_eq!(seen, [1, 2, 3, 4, 1, 2, 3, 4, 1, 2]);
}

#[test]
fn a_warm_instance_that_trapped_is_not_reused() {
    let t = Tessera::start(
        &(base_config("ES256")
            + &misbehave(
                "counter",
                "config = { mode = \"counter\", trap_at = \"2\" }\nwarm_instances = 2",
            )),
    );
    let call = || t.acme(&[("audience", ORDERS)]);
    let first = t.verify(call().access_token(), ORDERS);
    assert_eq!(first["calls_seen_by_this_instance"], 1);
    call().expect_error(500, "server_error");
    // The instance that trapped is gone: the next call starts from a fresh one.
    let third = t.verify(call().access_token(), ORDERS);
    assert_eq!(third["calls_seen_by_this_instance"], 1);
}
