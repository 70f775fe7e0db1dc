//! Auth0 Actions run unmodified: the corpus in `plugins/auth0-actions/`
//! (CommonJS, `async`/`await`, Auth0's event names and `api` calls) built
//! with the JavaScript SDK, each checked against its `expected.json`; and the
//! host-side cache behind `api.cache`, across requests, reloads and a
//! shadow candidate, on the real server.
//!
//! They need Node.js and the SDK's packages (`npm ci` in `plugin-sdk/js`);
//! without them they skip, unless `TESSERA_REQUIRE_POLYGLOT=1` (set by CI).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::devkit::{have, ok, plugin_test, repo};
use crate::support::*;

/// Whether Node and the SDK's build packages are there; panics instead of
/// skipping under `TESSERA_REQUIRE_POLYGLOT=1`.
fn have_sdk() -> bool {
    if !have(&["node"]) {
        return false;
    }
    let modules = repo().join("plugin-sdk/js/node_modules");
    let installed = ["componentize-qjs", "esbuild", "promise-polyfill"]
        .iter()
        .all(|p| modules.join(p).is_dir());
    if !installed {
        assert!(
            std::env::var("TESSERA_REQUIRE_POLYGLOT").is_err(),
            "TESSERA_REQUIRE_POLYGLOT is set but {} lacks the SDK's packages: run npm ci there",
            modules.display()
        );
        eprintln!("skipping: run npm ci in plugin-sdk/js");
    }
    installed
}

/// Builds the plugin folder `dir` with the SDK's build script into `out`.
fn build(dir: &Path, out: &Path) {
    ok(
        Command::new("node")
            .arg(repo().join("plugin-sdk/js/src/build.mjs"))
            .arg(dir)
            .arg("--out")
            .arg(out)
            .output()
            .expect("run node"),
        &format!("building {}", dir.display()),
    );
}

/// The Actions of the corpus, by folder name.
fn corpus() -> Vec<PathBuf> {
    let mut actions: Vec<PathBuf> = std::fs::read_dir(repo().join("plugins/auth0-actions"))
        .expect("read the corpus")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("plugin.js").is_file())
        .collect();
    actions.sort();
    actions
}

/// A report's log lines as `expected.json` lists them: `LEVEL first line`,
/// without the runtime's copy of standard error.
fn log_lines(report: &Value) -> Vec<String> {
    report["logs"]
        .as_array()
        .expect("logs")
        .iter()
        .filter_map(|line| {
            let message = line["message"].as_str()?;
            (!message.starts_with("stderr:")).then(|| {
                format!(
                    "{} {}",
                    line["level"].as_str().unwrap_or("?"),
                    message.lines().next().unwrap_or("")
                )
            })
        })
        .collect()
}

#[test]
fn every_action_of_the_corpus_runs_unmodified_with_its_expected_outcome() {
    if !have_sdk() {
        return;
    }
    let actions = corpus();
    assert!(
        actions.len() >= 15,
        "the corpus has {} Actions",
        actions.len()
    );
    let work = tempfile::tempdir().expect("tempdir");
    // Two Actions at a time: node, componentize-qjs and the compile of the
    // component use a core each.
    let failures: Vec<String> = std::thread::scope(|scope| {
        let halves: Vec<_> = actions
            .chunks(actions.len().div_ceil(2))
            .map(|half| {
                scope.spawn(|| {
                    half.iter()
                        .flat_map(|a| check(a, work.path()))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        halves
            .into_iter()
            .flat_map(|h| h.join().expect("no panic"))
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Builds `action` from a copy in `work`, as its author would have it (a
/// folder with plugin.js; CommonJS, since no package.json says otherwise),
/// runs it on its `event.json` and says how the report differs from its
/// `expected.json`.
fn check(action: &Path, work: &Path) -> Vec<String> {
    let name = action.file_name().expect("name").to_string_lossy();
    let dir = work.join(&*name);
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::copy(action.join("plugin.js"), dir.join("plugin.js")).expect("copy");
    let wasm = dir.with_extension("wasm");
    build(&dir, &wasm);

    let read = |file: &str| -> Value {
        let text = std::fs::read_to_string(action.join(file)).expect("read");
        serde_json::from_str(&text).expect("JSON")
    };
    let expected = read("expected.json");
    let stage = expected["stage"].as_str().expect("stage");
    let (report, _) = plugin_test(&wasm, stage, &read("event.json"));
    let mut failures = Vec::new();
    let mut differ = |what: &str, want: &Value, got: &Value| {
        if want != got {
            failures.push(format!("{name}: {what}: expected {want}, got {got}"));
        }
    };
    for field in ["decision", "access_token", "id_token", "scopes"] {
        if let Some(want) = expected.get(field) {
            differ(field, want, &report[field]);
        }
    }
    for (key, want) in expected["error"].as_object().into_iter().flatten() {
        differ(&format!("error.{key}"), want, &report["error"][key]);
    }
    differ("logs", &expected["logs"], &Value::from(log_lines(&report)));
    failures
}

/// A plugin that counts its calls in the host-side cache and puts the count,
/// and its version, in the token.
const COUNTER: &str = r#"
const VERSION = "VERSION";
exports.onExecuteCredentialsExchange = async (event, api) => {
  const seen = api.cache.get("calls");
  const calls = Number(seen?.value ?? 0) + 1;
  const stored = await Promise.resolve(api.cache.set("calls", String(calls), { ttl: 60000 }));
  if (stored.type !== "success") throw new Error(`cache: ${stored.code}`);
  api.accessToken.setCustomClaim("calls", calls);
  api.accessToken.setCustomClaim("version", VERSION);
};
"#;

fn counter(dir: &Path, version: &str, out: &Path) {
    let src = dir.join(format!("counter-{version}"));
    std::fs::create_dir_all(&src).expect("mkdir");
    std::fs::write(src.join("plugin.js"), COUNTER.replace("VERSION", version)).expect("write");
    build(&src, out);
}

#[test]
fn the_cache_outlives_requests_and_reloads_and_a_shadow_has_its_own() {
    if !have_sdk() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let live = dir.path().join("counter.wasm");
    let candidate = dir.path().join("candidate.wasm");
    counter(dir.path(), "v1", &live);
    std::fs::copy(&live, &candidate).expect("copy");
    let config = format!(
        "{}\n[[plugins]]\nname = \"counter\"\npath = \"{}\"\nshadow_path = \"{}\"\n\
         shadow_sample = 1.0\nstages = [\"credentials-exchange\"]\napis = [\"{ORDERS}\"]\n\
         timeout_ms = 2000\n",
        base_config("ES256"),
        live.display(),
        candidate.display()
    );
    let t = Tessera::start_in(dir, &config);
    let token = |t: &Tessera| {
        let reply = t.acme(&[("audience", ORDERS)]);
        t.verify(reply.access_token(), ORDERS)
    };
    // The candidate counts in a cache of its own: were it the live one's,
    // the live count would go up by two per request.
    for calls in 1..=3 {
        let claims = token(&t);
        assert_eq!(claims["calls"], calls, "{claims}\n{}", t.log());
        assert_eq!(claims["version"], "v1");
    }

    // A new version of the plugin keeps the cache of the plugin's name.
    let next = t.dir.path().join("next.wasm");
    counter(t.dir.path(), "v2", &next);
    std::fs::rename(&next, &live).expect("replace the plugin");
    let mut last = Value::Null;
    let reloaded = wait_for(Duration::from_secs(20), || {
        last = token(&t);
        last["version"] == "v2"
    });
    assert!(reloaded, "{last}\n{}", t.log());
    let calls = last["calls"].as_u64().expect("calls");
    assert!(calls >= 4, "the count went on from 3: {last}");
    assert_eq!(token(&t)["calls"], calls + 1);
}
