//! Micro-benchmarks of the token path, piece by piece (bench/README.md):
//!
//! - `plugin_stage/*`: the `credentials-exchange` stage with the Rust
//!   `client-claims` plugin alone, on a fresh instance per call and on a warm
//!   one: as the current SDK builds it (`rust`, `tessera:plugin@0.2.0`) and
//!   as the 0.1.0 SDK built it (`rust-0.1`, the test fixture), so one run
//!   compares the two ABI versions on the same host (the JavaScript and
//!   Python ports too, when they have been built);
//! - `mint_sign/*`: the access-token claims set, JSON and signature;
//! - `request/*`: form parsing, Basic credentials and client authentication;
//! - `observe/*`: what every token response records besides the token — a
//!   request's and a plugin call's metrics, its decision trace, and its
//!   span and log lines.
//!
//! ```text
//! cargo build --release --target wasm32-wasip2 -p client-claims
//! cargo bench -p tessera --bench hot_path
//! ```
//!
//! Plugins are found in the target folder; `TESSERA_BENCH_JS` and
//! `TESSERA_BENCH_PY` name built JavaScript and Python components, and
//! `TESSERA_BENCH_PLUGINS=name=file.wasm,…` adds other builds of
//! `client-claims` (such as `tessera plugin build plugins/client-claims`,
//! built without WASI) under their own names.

#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Map, Value, json};
use tessera::config::{Algorithm, Config, Stage};
use tessera::devkit::run::{EventFile, Harness, TestOptions};
use tessera::oauth::{Params, authenticate, client_auth};
use tessera::token::keys::SigningKey;
use tessera::token::{AccessToken, KeySet, jwt, new_jti};

const BASIC: &[u8] = b"Basic YWNtZS1zeW5jOmRlbW8tYWNtZS1zZWNyZXQtZG8tbm90LXVzZS1pbi1wcm9kdWN0aW9u";
const BODY: &[u8] =
    b"grant_type=client_credentials&resource=https%3A%2F%2Forders.example.com&scope=read%3Aorders";

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

fn harness(file: PathBuf, cache: &Path) -> Option<Harness> {
    if !file.exists() {
        eprintln!("skipping {}: not built", file.display());
        return None;
    }
    let event: EventFile = serde_json::from_value(json!({
        "client": {
            "id": "acme-sync",
            "name": "ACME order sync",
            "app_type": "machine",
            "metadata": { "partner": "acme", "tier": "gold" }
        },
        "config": { "namespace": "https://claims.example.com/", "metadata_keys": "" }
    }))
    .unwrap();
    let options = TestOptions {
        file,
        stage: Stage::CredentialsExchange,
        event,
        cache_dir: cache.to_owned(),
        timeout: Duration::from_secs(1),
        memory_bytes: 64 << 20,
        repeat: 0,
    };
    let mut h = Harness::new(&options).unwrap();
    assert!(h.call_fresh(), "the plugin failed");
    h.keep_warm().unwrap();
    Some(h)
}

fn plugin_stage(c: &mut Criterion) {
    let cache = tempfile::tempdir().unwrap();
    let rust = target_dir().join("wasm32-wasip2/release/client_claims.wasm");
    let rust_0_1 = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/abi-0.1.0/client_claims.wasm");
    let mut plugins = vec![("rust", Some(rust)), ("rust-0.1", Some(rust_0_1))];
    for (name, var) in [
        ("javascript", "TESSERA_BENCH_JS"),
        ("python", "TESSERA_BENCH_PY"),
    ] {
        plugins.push((name, std::env::var_os(var).map(PathBuf::from)));
    }
    // More builds side by side: `TESSERA_BENCH_PLUGINS=name=file.wasm,…`.
    let more = std::env::var("TESSERA_BENCH_PLUGINS").unwrap_or_default();
    for pair in more.split(',').filter(|p| !p.is_empty()) {
        let (name, path) = pair
            .split_once('=')
            .expect("TESSERA_BENCH_PLUGINS: name=file.wasm,…");
        let name: &'static str = Box::leak(name.to_owned().into_boxed_str());
        plugins.push((name, Some(PathBuf::from(path))));
    }
    let mut group = c.benchmark_group("plugin_stage");
    for (name, file) in plugins {
        let Some(h) = file.and_then(|f| harness(f, cache.path())) else {
            continue;
        };
        group.bench_function(format!("{name}/fresh"), |b| b.iter(|| h.call_fresh()));
        group.bench_function(format!("{name}/warm"), |b| b.iter(|| h.call_warm()));
    }
    group.finish();
}

fn mint_sign(c: &mut Criterion) {
    let mut custom = Map::new();
    custom.insert(
        "https://claims.example.com/client_name".into(),
        Value::from("ACME order sync"),
    );
    custom.insert(
        "https://claims.example.com/client_app_type".into(),
        Value::from("machine"),
    );
    let scopes = vec!["read:orders".to_owned()];
    let mut group = c.benchmark_group("mint_sign");
    for algorithm in [Algorithm::ES256, Algorithm::RS256, Algorithm::EdDSA] {
        let keys = KeySet::single(SigningKey::generate(algorithm, 0).unwrap());
        group.bench_function(algorithm.as_str(), |b| {
            b.iter(|| {
                let jti = new_jti().unwrap();
                let claims = AccessToken {
                    issuer: "http://127.0.0.1:8080",
                    subject: "client:acme-sync",
                    audience: "https://orders.example.com",
                    client_id: "acme-sync",
                    scopes: &scopes,
                    issued_at: 1_800_000_000,
                    lifetime_secs: 3600,
                    jti: &jti,
                    custom: &custom,
                }
                .claims();
                black_box(jwt::sign(keys.active(), "at+jwt", &claims).unwrap())
            })
        });
    }
    group.finish();
}

fn request(c: &mut Criterion) {
    let config = Config::parse(
        Path::new("bench.toml"),
        r#"
[server]
issuer = "http://127.0.0.1:8080"
[[apis]]
identifier = "https://orders.example.com"
name = "Orders API"
scopes = ["read:orders", "write:orders"]
[[clients]]
id = "acme-sync"
name = "ACME order sync"
app_type = "machine"
secret_hash = "sha256:04e149338a0452c6ac0e8fb9678a35511ee5552eae68569faf9bbe976b492fb5"
[[grants]]
client = "acme-sync"
api = "https://orders.example.com"
scopes = ["read:orders"]
"#,
        &|_| None,
    )
    .unwrap();
    let mut group = c.benchmark_group("request");
    group.bench_function("parse_form", |b| {
        b.iter(|| Params::parse(black_box(BODY)).unwrap())
    });
    let params = Params::parse(BODY).unwrap();
    group.bench_function("basic_credentials", |b| {
        b.iter(|| client_auth::credentials(&params, &[black_box(BASIC)]).unwrap())
    });
    let creds = client_auth::credentials(&params, &[BASIC]).unwrap();
    group.bench_function("authenticate", |b| {
        b.iter(|| authenticate(&config, black_box(&creds), &[], 0).unwrap())
    });
    group.bench_function("parse_and_authenticate", |b| {
        b.iter(|| {
            let params = Params::parse(black_box(BODY)).unwrap();
            let creds = client_auth::credentials(&params, &[BASIC]).unwrap();
            authenticate(&config, &creds, &[], 0).unwrap();
        })
    });
    group.finish();
}

fn observe(c: &mut Criterion) {
    use tessera::config::LogFormat;
    use tessera::http::observe;
    use tessera::logging::Audit;
    use tessera::metrics::{Metrics, PluginMetrics, RequestLabels, histograms};
    use tessera::plugin::pipeline::StageTrace;
    use tessera::plugin::{PluginRun, RunOutcome, TokenShape};
    use tessera::trace::{Decision, Outcome, Trace, Traces};

    let plugins = PluginMetrics::default();
    let metrics = Metrics::new(histograms(), plugins.clone());
    let mut group = c.benchmark_group("observe");
    group.bench_function("metrics_request", |b| {
        b.iter(|| {
            metrics.request(
                black_box(&RequestLabels {
                    endpoint: "/oauth/token",
                    grant: "client_credentials",
                    outcome: "ok",
                }),
                Duration::from_micros(60),
            );
            metrics.token_issued("client_credentials");
        })
    });
    let run = PluginRun {
        plugin: "client-claims".into(),
        sha256: "4c0d5a1b2e3f4c0d5a1b2e3f4c0d5a1b2e3f4c0d5a1b2e3f4c0d5a1b2e3f4c0d".into(),
        stage: "credentials-exchange",
        micros: 31,
        outcome: RunOutcome::Applied,
        changed: vec![
            "set https://claims.example.com/client_name".into(),
            "set https://claims.example.com/client_app_type".into(),
        ],
        logs: Vec::new(),
        token_before: TokenShape {
            scopes: vec!["read:orders".into()],
            ..TokenShape::default()
        },
        token_after: None,
    };
    // As the pipeline does: the labels are built from the run.
    group.bench_function("metrics_plugin_call", |b| {
        b.iter(|| plugins.call(&black_box(&run).metric_labels(), Duration::from_micros(31)))
    });
    let traces = Traces::new(1000);
    let mut claims = Map::new();
    claims.insert(
        "https://claims.example.com/client_name".into(),
        json!("ACME order sync"),
    );
    claims.insert(
        "https://claims.example.com/client_app_type".into(),
        json!("machine"),
    );
    let scopes = vec!["read:orders".to_owned()];
    // What the token path adds for its trace: the policy's scope lists and
    // the final claims copied, the record built, the ring updated.
    group.bench_function("trace_record", |b| {
        b.iter(|| {
            let decision = Decision {
                api: Some("https://orders.example.com".into()),
                rule: Some("client_access = require_client_grant"),
                ceiling: scopes.clone(),
                requested: Some(scopes.clone()),
                granted: scopes.clone(),
                stage: StageTrace {
                    runs: vec![run.clone()],
                    event: None,
                    shadows: Vec::new(),
                },
                scopes: scopes.clone(),
                claims: claims.clone(),
                id_claims: Map::new(),
            };
            traces.record(Trace {
                id: "0mSYbqW2Jm3CmvWuvv0kRA".into(),
                at: 1_800_000_000,
                request_id: "6f1c09e2a4b1-3".into(),
                kind: "token",
                grant: Some("client_credentials"),
                client: Some("acme-sync".into()),
                subject: Some("acme-sync@clients".into()),
                sign_in: None,
                decision: black_box(decision),
                outcome: Outcome::Issued,
                micros: 187,
                shadows: Vec::new(),
            })
        })
    });
    // What a token response writes to the log at the default level, with
    // the subscriber `tessera serve` installs (text, audit lines with the
    // rest) writing to a sink: the request span, the audit line, the
    // access line.
    let subscriber = tessera::logging::subscriber(
        LogFormat::Text,
        tracing_subscriber::EnvFilter::new("info"),
        false,
        std::io::sink,
        Audit::<fn() -> std::io::Sink>::Main,
    );
    tracing::subscriber::with_default(subscriber, || {
        group.bench_function("log_token_response", |b| {
            b.iter(|| {
                let span = observe::request_span(
                    black_box("6f1c09e2a4b1-3"),
                    "POST",
                    "/oauth/token",
                    None,
                );
                let _entered = span.enter();
                tessera::audit::token_issued(
                    "acme-sync",
                    "client_credentials",
                    "https://orders.example.com",
                    "read:orders",
                    "acme-sync@clients",
                    black_box("0mSYbqW2Jm3CmvWuvv0kRA"),
                );
                observe::access_line(
                    200,
                    Duration::from_micros(60),
                    Some("acme-sync"),
                    Some("client_credentials"),
                    "ok",
                );
            })
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = plugin_stage, mint_sign, request, observe
}
criterion_main!(benches);
