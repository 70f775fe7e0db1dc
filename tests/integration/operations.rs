//! Operating Tessera: `/metrics` as Prometheus and OpenMetrics parse it (and
//! on a listener of its own), the decision trace of a token through the
//! admin API, its `Tessera-Trace` header and `tessera trace`, and a SIGTERM
//! that lets every request in flight finish.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

const OPS_SECRET: &str = "ops-secret-0123456789abcdefghijklmnopqrstuv";
const NS: &str = "https://claims.example.com/";

/// The base configuration with an admin API whose `ops` client may read
/// traces, the client-claims plugin, and a client `tracer` whose token
/// responses name their trace.
fn config(extra: &str) -> String {
    format!(
        "{}\n[[apis]]\nidentifier = \"urn:tessera:admin\"\nscopes = [\"tessera:traces:read\", \"tessera:plugins:read\"]\n\
         \n[[clients]]\nid = \"ops\"\napp_type = \"machine\"\nsecret_hash = \"{}\"\n\
         \n[[clients]]\nid = \"tracer\"\napp_type = \"machine\"\nsecret_hash = \"{}\"\ntrace = true\n\
         \n[[grants]]\nclient = \"ops\"\napi = \"urn:tessera:admin\"\nscopes = [\"tessera:traces:read\"]\n\
         \n[[grants]]\nclient = \"tracer\"\napi = \"{ORDERS}\"\nscopes = [\"read:orders\"]\n\
         \n[[plugins]]\nname = \"client-claims\"\npath = \"{}\"\nstages = [\"credentials-exchange\"]\ntimeout_ms = 2000\n\
         config = {{ namespace = \"{NS}\", metadata_keys = [\"partner\"] }}\n{extra}",
        base_config("ES256"),
        hash(OPS_SECRET),
        hash(GLOBEX_SECRET),
        wasm("client_claims").display()
    )
}

fn ops_token(t: &Tessera) -> String {
    t.token(
        Some(("ops", OPS_SECRET)),
        &[
            ("grant_type", "client_credentials"),
            ("audience", "urn:tessera:admin"),
            ("scope", "tessera:traces:read"),
        ],
    )
    .access_token()
    .to_owned()
}

fn admin_get(t: &Tessera, path: &str, token: &str) -> (u16, Value) {
    let r = reqwest::blocking::Client::new()
        .get(t.url(path))
        .bearer_auth(token)
        .send()
        .expect("GET");
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

#[test]
fn a_token_s_trace_tells_the_policy_the_plugin_and_the_claims() {
    let t = Tessera::start(&config(""));
    let issued = t.acme(&[("audience", ORDERS), ("scope", "read:orders")]);
    let jti = claims_unverified(issued.access_token())["jti"]
        .as_str()
        .expect("jti")
        .to_owned();
    assert_eq!(
        issued.header("tessera-trace"),
        "",
        "acme-sync has no trace = true"
    );
    let ops = ops_token(&t);

    let (status, trace) = admin_get(&t, &format!("/admin/traces/{jti}"), &ops);
    assert_eq!(status, 200, "{trace}");
    assert_eq!(trace["kind"], "token");
    assert_eq!(trace["grant"], "client_credentials");
    assert_eq!(trace["client"], "acme-sync");
    assert_eq!(trace["subject"], "acme-sync@clients");
    assert_eq!(trace["outcome"]["result"], "issued");
    let d = &trace["decision"];
    assert_eq!(d["api"], ORDERS);
    assert_eq!(d["rule"], "client_access = require_client_grant");
    assert_eq!(
        d["ceiling"],
        serde_json::json!(["read:orders", "write:orders"])
    );
    assert_eq!(d["requested"], serde_json::json!(["read:orders"]));
    assert_eq!(d["granted"], serde_json::json!(["read:orders"]));
    assert_eq!(d["scopes"], serde_json::json!(["read:orders"]));
    assert_eq!(d["claims"][format!("{NS}partner")], "acme");
    let run = &d["plugins"][0];
    assert_eq!(run["plugin"], "client-claims");
    assert_eq!(run["stage"], "credentials-exchange");
    assert_eq!(run["outcome"]["kind"], "applied");
    assert_eq!(run["sha256"].as_str().map(str::len), Some(64));
    assert!(
        run["changed"]
            .as_array()
            .is_some_and(|c| c.iter().any(|x| x == &format!("set {NS}partner"))),
        "{run}"
    );

    // A refusal is traced too, under its request id.
    let refused = t.acme(&[("audience", LOCKED)]);
    refused.expect_error(400, "access_denied");
    let request_id = refused.header("x-request-id");
    let (status, trace) = admin_get(&t, &format!("/admin/traces/{request_id}"), &ops);
    assert_eq!(status, 200, "{trace}");
    assert_eq!(trace["outcome"]["error"], "access_denied");
    assert_eq!(trace["decision"]["rule"], "client_access = deny_all");

    // Filters, newest first; the ops token's own response is traced as well.
    let (_, list) = admin_get(&t, "/admin/traces?client=acme-sync&limit=1", &ops);
    let list = list["traces"].as_array().expect("traces").clone();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], request_id.as_str());
    let (_, list) = admin_get(&t, &format!("/admin/traces?api={ORDERS}"), &ops);
    assert!(
        list["traces"]
            .as_array()
            .expect("traces")
            .iter()
            .all(|t| t["decision"]["api"] == ORDERS)
    );
    let (status, _) = admin_get(&t, "/admin/traces/no-such-trace", &ops);
    assert_eq!(status, 404);
    let (status, body) = admin_get(&t, "/admin/traces?colour=red", &ops);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );

    // Without the traces scope: 403, naming the scope.
    let r = reqwest::blocking::Client::new()
        .get(t.url("/admin/traces"))
        .bearer_auth(issued.access_token())
        .send()
        .expect("GET");
    assert_eq!(r.status(), 403);

    // A client with trace = true is told its trace's id.
    let traced = t.token(
        Some(("tracer", GLOBEX_SECRET)),
        &[("grant_type", "client_credentials"), ("audience", ORDERS)],
    );
    let id = traced.header("tessera-trace");
    assert_eq!(
        id,
        claims_unverified(traced.access_token())["jti"]
            .as_str()
            .expect("jti")
    );
    let (status, _) = admin_get(&t, &format!("/admin/traces/{id}"), &ops);
    assert_eq!(status, 200);
}

#[test]
fn tessera_trace_prints_the_recent_and_follows_new_ones() {
    let t = Tessera::start(&config(""));
    let first = t.acme(&[("audience", ORDERS)]);
    let jti = claims_unverified(first.access_token())["jti"]
        .as_str()
        .expect("jti")
        .to_owned();
    let config = t.dir.path().join("tessera.toml");
    let config = config.to_str().expect("utf-8");
    let tessera = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_tessera"));
        c.env("TESSERA_ADMIN_SECRET", OPS_SECRET)
            .env_remove("TESSERA_ADMIN_TOKEN");
        c
    };

    // One trace, readable, with an admin client's credentials.
    let text = tessera_trace(&t, ("ops", OPS_SECRET), &jti);
    assert!(
        text.contains("token client_credentials  acme-sync -> https://orders.example.com  issued"),
        "{text}"
    );
    assert!(text.contains("plugin    client-claims sha256:"), "{text}");
    assert!(text.contains(&format!("set {NS}partner")), "{text}");

    // No credentials: told what to set.
    let out = tessera()
        .args(["trace", "--config", config])
        .env_remove("TESSERA_ADMIN_SECRET")
        .output()
        .expect("tessera trace");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("TESSERA_ADMIN_TOKEN"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // --follow --json with a token: the recent ones, then each new one.
    let mut follow = tessera()
        .args([
            "trace",
            "--follow",
            "--json",
            "--client",
            "acme-sync",
            "--url",
            &t.base,
        ])
        .env("TESSERA_ADMIN_TOKEN", ops_token(&t))
        .stdout(Stdio::piped())
        .spawn()
        .expect("tessera trace --follow");
    let mut lines = BufReader::new(follow.stdout.take().expect("stdout")).lines();
    let mut next = || -> Value {
        serde_json::from_str(&lines.next().expect("a line").expect("read")).expect("json")
    };
    assert_eq!(next()["id"], jti.as_str(), "the backlog first");
    let second = t.acme(&[("audience", BILLING)]);
    let live = next();
    assert_eq!(live["id"], claims_unverified(second.access_token())["jti"]);
    assert_eq!(live["decision"]["api"], BILLING);
    let _ = follow.kill();
    let _ = follow.wait();
}

/// Runs the metrics parser of the Python `prometheus_client` package on
/// `exposition` (`text` or `openmetrics`); its families as JSON, or `None`
/// where the package is missing and not required.
fn parse_with_prometheus_client(exposition: &str, format: &str) -> Option<Value> {
    let out = run_client_script("parse_metrics.py", &[format], exposition)?;
    assert!(
        out.status.success(),
        "the {format} parser refused the exposition: {}\n{exposition}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).expect("json"))
}

fn scrape(url: &str, accept: Option<&str>) -> (String, String) {
    let mut req = reqwest::blocking::Client::new().get(url);
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    let r = req.send().expect("GET /metrics");
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_owned();
    (ct, r.text().expect("body"))
}

/// The value of the sample `name` whose labels include `labels`.
fn sample(families: &Value, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    families.as_object()?.values().find_map(|family| {
        family["samples"].as_array()?.iter().find_map(|s| {
            (s["name"] == name && labels.iter().all(|(k, v)| s["labels"][*k] == *v))
                .then(|| s["value"].as_f64())
                .flatten()
        })
    })
}

#[test]
fn metrics_parse_in_both_formats_and_count_what_happened() {
    let t = Tessera::start(&config(""));
    for _ in 0..3 {
        t.acme(&[("audience", ORDERS)]).access_token();
    }
    t.acme(&[("audience", LOCKED)])
        .expect_error(400, "access_denied");
    t.get("/.well-known/jwks.json");

    let (ct, text) = scrape(&t.url("/metrics"), None);
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let (ct, om) = scrape(&t.url("/metrics"), Some(prometheus));
    assert!(
        ct.starts_with("application/openmetrics-text; version=1.0.0"),
        "{ct}"
    );
    assert!(om.ends_with("# EOF\n"), "{om}");

    let Some(families) = parse_with_prometheus_client(&text, "text") else {
        return;
    };
    parse_with_prometheus_client(&om, "openmetrics").expect("the parser ran once");
    let token = [
        ("endpoint", "/oauth/token"),
        ("grant", "client_credentials"),
        ("outcome", "ok"),
    ];
    assert_eq!(
        sample(
            &families,
            "tessera_http_request_duration_seconds_count",
            &token
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &families,
            "tessera_http_request_duration_seconds_count",
            &[("endpoint", "/oauth/token"), ("outcome", "access_denied")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &families,
            "tessera_tokens_issued_total",
            &[("grant", "client_credentials")]
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &families,
            "tessera_plugin_call_duration_seconds_count",
            &[
                ("plugin", "client-claims"),
                ("stage", "credentials-exchange"),
                ("outcome", "applied")
            ]
        ),
        Some(3.0)
    );
    for name in [
        "tessera_plugin_instance_slots",
        "tessera_plugin_instances_in_use",
        "tessera_signing_keys_published",
        "tessera_build_info",
        "tessera_token_errors_total",
    ] {
        assert!(
            sample(&families, name, &[]).is_some(),
            "{name} missing:\n{text}"
        );
    }
    assert!(
        sample(
            &families,
            "tessera_signing_key_age_seconds",
            &[("alg", "ES256")]
        )
        .is_some_and(|age| age >= 0.0),
        "{text}"
    );
}

#[test]
fn metrics_move_to_their_own_listener() {
    let t = Tessera::start(&config("\n[metrics]\nlisten = \"127.0.0.1:0\"\n"));
    assert_eq!(t.get("/metrics").status(), 404, "not on the main listener");
    let url = t
        .stdout()
        .iter()
        .find_map(|l| l.strip_prefix("Tessera metrics on ").map(str::to_owned))
        .expect("the metrics address on stdout");
    t.acme(&[("audience", ORDERS)]).access_token();
    let (_, text) = scrape(&url, None);
    assert!(
        text.contains("tessera_tokens_issued_total{grant=\"client_credentials\"} 1"),
        "{text}"
    );

    let (_dir, path) = write_config(&config("\n[metrics]\nlisten = \"localhost\"\n"));
    let (ok, _, err) = run_tessera(&["check", "--config", &path]);
    assert!(!ok);
    assert!(
        err.contains("metrics.listen: \"localhost\" is not an IP address and port"),
        "{err}"
    );
}

/// docs/reliability.md, case 52: SIGTERM stops new connections and lets
/// every request already being served finish, then the process exits 0.
#[test]
fn sigterm_lets_requests_in_flight_finish() {
    const IN_FLIGHT: usize = 12;
    let slow = misbehave(
        "slow",
        "timeout_ms = 5000\nconfig = { mode = \"busy\", ms = \"600\" }",
    );
    let mut t = Tessera::start(&(base_config("ES256") + &slow));
    let url = Arc::new(t.url("/oauth/token"));
    let requests: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                reqwest::blocking::Client::new()
                    .post(url.as_str())
                    .basic_auth("acme-sync", Some(ACME_SECRET))
                    .form(&[("grant_type", "client_credentials"), ("audience", ORDERS)])
                    .send()
                    .map(|r| r.status().as_u16())
                    .map_err(|e| e.to_string())
            })
        })
        .collect();
    // Every request holds a plugin instance while it is served.
    let serving = wait_for(Duration::from_secs(10), || {
        t.get("/metrics")
            .text()
            .unwrap_or_default()
            .lines()
            .any(|l| l == format!("tessera_plugin_instances_in_use {IN_FLIGHT}"))
    });
    assert!(serving, "the requests did not all reach the plugin");
    let killed = Command::new("kill")
        .args(["-TERM", &t.pid().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let answers: Vec<_> = requests
        .into_iter()
        .map(|r| r.join().expect("thread"))
        .collect();
    assert!(
        answers.iter().all(|a| a == &Ok(200)),
        "requests in flight at SIGTERM failed: {answers:?}"
    );
    let status = t
        .wait_exit(Duration::from_secs(15))
        .expect("the server exits");
    assert!(status.success(), "exit status {status:?}:\n{}", t.log());
    assert!(
        t.log()
            .contains("shutting down; finishing in-flight requests")
    );
}

/// Every metric the Grafana dashboard and the alerting rules in `deploy/`
/// query is one `/metrics` exports, once what it counts has happened: a
/// token, a plugin failure, a store query, a key rotation waiting to
/// activate.
#[test]
fn the_dashboard_and_the_alerts_query_only_metrics_that_exist() {
    let failing = misbehave(
        "failing",
        "on_error = \"skip\"\napis = [\"https://billing.example.com\"]\nconfig = { mode = \"trap\" }",
    );
    let text = config(&failing).replace(
        "[signing]\n",
        "[signing]\npre_publication_delay_secs = 3600\n",
    );
    let t = Tessera::start(&text);
    t.acme(&[("audience", ORDERS)]).access_token();
    t.acme(&[("audience", BILLING)]).access_token();
    assert_eq!(t.get("/readyz").status(), 200);
    let config_path = t.dir.path().join("tessera.toml");
    let (rotated, out, err) = run_tessera(&[
        "keys",
        "rotate",
        "--config",
        config_path.to_str().expect("utf-8"),
    ]);
    assert!(rotated, "{out}{err}");
    let waiting = wait_for(Duration::from_secs(10), || {
        t.get("/metrics")
            .text()
            .unwrap_or_default()
            .contains("tessera_signing_key_next_activation_seconds{alg=\"ES256\"}")
    });
    assert!(waiting, "the rotated key is not seen waiting");
    let (_, text) = scrape(&t.url("/metrics"), None);
    let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(deploy.join("grafana-dashboard.json")).expect("dashboard"),
    )
    .expect("the dashboard is JSON");
    let mut queries: Vec<String> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_owned))
        .collect();
    assert!(queries.len() >= 10, "{queries:?}");
    queries.push(std::fs::read_to_string(deploy.join("prometheus-alerts.yml")).expect("alerts"));
    let mut names: Vec<&str> = queries
        .iter()
        .flat_map(|q| {
            q.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("tessera_"))
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    let exported = |name: &str| {
        let family = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        text.lines().any(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(['{', ' ']))
                || l.starts_with(&format!("# TYPE {family} "))
        })
    };
    let missing: Vec<&&str> = names.iter().filter(|n| !exported(n)).collect();
    assert!(
        missing.is_empty(),
        "queried but not exported: {missing:?}\n{text}"
    );
    assert!(names.len() >= 12, "{names:?}");
}
