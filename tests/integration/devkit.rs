//! The plugin author's path, as a new user takes it: `tessera plugin new` →
//! the template's own unit test → `tessera plugin build` → `tessera plugin
//! test` → `tessera serve` → a token carrying the plugin's claims, in Rust,
//! JavaScript and Python. And parity: the client-claims example in all three
//! languages gives the same claims and decisions for the same config and
//! events.
//!
//! JavaScript needs node and npm, Python needs python3 with venv; without
//! them these tests skip, unless `TESSERA_REQUIRE_POLYGLOT=1` (set by CI)
//! makes a missing tool a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

use crate::support::*;

const NS: &str = "https://claims.example.com/";

pub(crate) fn tessera() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
}

pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

/// Whether `program --version` runs; panics instead of skipping under
/// `TESSERA_REQUIRE_POLYGLOT=1`.
pub(crate) fn have(programs: &[&str]) -> bool {
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| {
            Command::new(p)
                .arg("--version")
                .output()
                .map_or(true, |o| !o.status.success())
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var("TESSERA_REQUIRE_POLYGLOT").is_err(),
        "TESSERA_REQUIRE_POLYGLOT is set but {missing:?} cannot run"
    );
    eprintln!("skipping: {missing:?} not installed");
    false
}

pub(crate) fn ok(output: Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Cargo builds of templates share a target folder between runs.
fn cargo_env(command: &mut Command) -> &mut Command {
    command
        .env("CARGO_TARGET_DIR", target_dir().join("plugin-templates"))
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
}

fn build(dir: &Path, out: Option<&Path>) -> PathBuf {
    let mut command = tessera();
    command.args(["plugin", "build"]).arg(dir);
    if let Some(out) = out {
        command.arg("--out").arg(out);
    }
    let stdout = ok(
        cargo_env(&mut command).output().expect("run build"),
        "plugin build",
    );
    let built = PathBuf::from(stdout.trim());
    assert!(built.is_file(), "{} was not written", built.display());
    built
}

/// `tessera plugin test` with `event`; returns the report and whether the
/// command succeeded.
pub(crate) fn plugin_test(file: &Path, stage: &str, event: &Value) -> (Value, bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let event_file = dir.path().join("event.json");
    std::fs::write(&event_file, event.to_string()).expect("write event");
    let out = tessera()
        .args(["plugin", "test"])
        .arg(file)
        .args(["--stage", stage, "--event"])
        .arg(&event_file)
        .arg("--cache-dir")
        .arg(shared_cache())
        .output()
        .expect("run plugin test");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "plugin test printed no JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    // Standard error is not a terminal here: no colour codes, and a failure is
    // told once, in the report, not again as a log line.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains('\x1b'),
        "colour codes on a pipe: {stderr:?}"
    );
    assert!(!stderr.contains("plugin failed"), "told twice: {stderr}");
    (report, out.status.success())
}

fn plugin_config(name: &str, path: &Path, config: &str) -> String {
    format!(
        "\n[[plugins]]\nname = \"{name}\"\npath = \"{}\"\nstages = [\"credentials-exchange\"]\ntimeout_ms = 2000\nmemory_mb = 128\nconfig = {config}\n",
        path.display()
    )
}

/// new → unit test → build → test → serve → token.
fn new_plugin_to_token(lang: &str, unit_test: &[&str]) {
    let parent = tempfile::tempdir().expect("tempdir");
    let name = format!("hello-{lang}");
    ok(
        tessera()
            .args(["plugin", "new", &name, "--lang", lang, "--dir"])
            .arg(parent.path())
            .output()
            .expect("run new"),
        "plugin new",
    );
    let dir = parent.path().join(&name);

    let wasm = build(&dir, None);
    assert_eq!(wasm, dir.join(format!("{name}.wasm")));

    let mut unit = Command::new(unit_test[0]);
    unit.args(&unit_test[1..]).current_dir(&dir);
    ok(
        cargo_env(&mut unit).output().expect("run unit test"),
        "the template's own test",
    );

    let event: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("event.json")).expect("template event"),
    )
    .expect("event JSON");
    let (report, success) = plugin_test(&wasm, "credentials-exchange", &event);
    assert!(success, "{report:#}");
    assert_eq!(report["decision"], "allow", "{report:#}");
    assert_eq!(
        report["access_token"]["claims"],
        json!({ format!("{NS}client_name"): "ACME order sync", format!("{NS}tier"): "gold" }),
        "{report:#}"
    );
    let language = if lang == "js" { "javascript" } else { lang };
    assert_eq!(report["plugin"]["language"], language);

    let t = Tessera::start(
        &(base_config("ES256")
            + &plugin_config(&name, &wasm, &format!("{{ namespace = \"{NS}\" }}"))),
    );
    let claims = t.verify(t.acme(&[("audience", ORDERS)]).access_token(), ORDERS);
    assert_eq!(claims[format!("{NS}client_name")], "ACME order sync");
    assert_eq!(claims[format!("{NS}tier")], "gold");
}

#[test]
fn a_new_rust_plugin_builds_tests_and_serves() {
    if have(&["cargo"]) {
        new_plugin_to_token("rust", &["cargo", "test", "--quiet"]);
    }
}

#[test]
fn a_new_javascript_plugin_builds_tests_and_serves() {
    if have(&["node", "npm"]) {
        new_plugin_to_token("js", &["npm", "test"]);
    }
}

#[test]
fn a_new_python_plugin_builds_tests_and_serves() {
    if have(&["python3"]) {
        new_plugin_to_token("python", &["python3", "-m", "unittest"]);
    }
}

/// What must match between languages: the decision, the OAuth error code and
/// the token.
fn outcome(report: &Value) -> Value {
    json!({
        "decision": report["decision"],
        "error": report["error"]["error"],
        "access_token": report["access_token"],
        "id_token": report["id_token"],
        "scopes": report["scopes"],
    })
}

#[test]
fn client_claims_is_the_same_in_rust_javascript_and_python() {
    if !have(&["node", "npm", "python3"]) {
        return;
    }
    let out = tempfile::tempdir().expect("tempdir");
    let components = [
        ("rust", wasm("client_claims")),
        (
            "javascript",
            build(
                &repo().join("plugins/client-claims-js"),
                Some(&out.path().join("client_claims_js.wasm")),
            ),
        ),
        (
            "python",
            build(
                &repo().join("plugins/client-claims-py"),
                Some(&out.path().join("client_claims_py.wasm")),
            ),
        ),
    ];

    // The examples' own unit tests (the build vendored their SDK).
    for (dir, test) in [
        ("plugins/client-claims-js", &["npm", "test"][..]),
        (
            "plugins/client-claims-py",
            &["python3", "-m", "unittest"][..],
        ),
    ] {
        ok(
            Command::new(test[0])
                .args(&test[1..])
                .current_dir(repo().join(dir))
                .output()
                .expect("run the example's tests"),
            dir,
        );
    }

    let client = json!({
        "id": "acme-sync",
        "name": "ACME order sync",
        "app_type": "machine",
        "metadata": { "partner": "acme", "tier": "gold", "limits": { "rps": 10, "regions": ["eu"] } },
    });
    let sneaky = json!({ "id": "c", "name": "Real name", "app_type": "spa", "metadata": { "client_name": "Fake" } });
    let cases = [
        (
            "credentials-exchange",
            client.clone(),
            json!({ "namespace": NS }),
        ),
        (
            "credentials-exchange",
            client.clone(),
            json!({ "namespace": NS, "metadata_keys": ["tier", "region"] }),
        ),
        (
            "credentials-exchange",
            client.clone(),
            json!({ "namespace": NS, "metadata_keys": " partner , limits,," }),
        ),
        (
            "credentials-exchange",
            client.clone(),
            json!({ "namespace": NS, "metadata_keys": [] }),
        ),
        ("credentials-exchange", sneaky, json!({ "namespace": NS })),
        ("credentials-exchange", client.clone(), json!({})),
        (
            "credentials-exchange",
            client.clone(),
            json!({ "namespace": "" }),
        ),
        (
            "credentials-exchange",
            client.clone(),
            json!({ "namespace": NS, "metadata_keys": ["tier", 3] }),
        ),
        ("authorize", client.clone(), json!({ "namespace": NS })),
    ];
    for (stage, client, config) in cases {
        let event = json!({ "client": client, "config": config });
        let outcomes: Vec<(&str, Value)> = components
            .iter()
            .map(|(lang, file)| (*lang, outcome(&plugin_test(file, stage, &event).0)))
            .collect();
        for (lang, o) in &outcomes[1..] {
            assert_eq!(
                o, &outcomes[0].1,
                "{lang} differs from rust at {stage} with {event}"
            );
        }
    }

    // Through `tessera serve`: the same token claims from each language.
    let config = format!("{{ namespace = \"{NS}\", metadata_keys = [\"partner\", \"tier\"] }}");
    let tokens: Vec<Value> = components
        .iter()
        .map(|(lang, file)| {
            let t = Tessera::start(
                &(base_config("ES256") + &plugin_config(&format!("claims-{lang}"), file, &config)),
            );
            let claims = t.verify(t.acme(&[("audience", ORDERS)]).access_token(), ORDERS);
            claims
                .as_object()
                .expect("claims object")
                .iter()
                .filter(|(k, _)| k.starts_with(NS))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .collect();
    assert_eq!(
        tokens[0],
        json!({
            format!("{NS}client_name"): "ACME order sync",
            format!("{NS}client_app_type"): "machine",
            format!("{NS}partner"): "acme",
            format!("{NS}tier"): "gold",
        })
    );
    assert_eq!(tokens[1], tokens[0], "javascript");
    assert_eq!(tokens[2], tokens[0], "python");

    // inspect tells the three apart.
    for (lang, file) in &components {
        let text = ok(
            tessera()
                .args(["plugin", "inspect", "--json"])
                .arg(file)
                .arg("--cache-dir")
                .arg(shared_cache())
                .output()
                .expect("run inspect"),
            "plugin inspect",
        );
        let found: Value = serde_json::from_str(&text).expect("inspect JSON");
        assert_eq!(found["loads"], true, "{lang}: {found:#}");
        assert_eq!(found["wit"], "tessera:plugin@0.2.0", "{lang}");
        let stages = found["stages"].as_array().expect("stages");
        assert!(
            stages.contains(&json!("credentials-exchange")),
            "{lang}: {found:#}"
        );
        if *lang != "rust" {
            assert_eq!(found["build"]["language"], *lang, "{found:#}");
        }
        // The text names the plugin's language, and says whose language the
        // producers sections name when an interpreter is embedded.
        let text = ok(
            tessera()
                .args(["plugin", "inspect"])
                .arg(file)
                .arg("--cache-dir")
                .arg(shared_cache())
                .output()
                .expect("run inspect"),
            "plugin inspect",
        );
        let runtime = match *lang {
            "javascript" => Some("QuickJS"),
            "python" => Some("CPython"),
            _ => None,
        };
        assert_eq!(found["runtime"], json!(runtime), "{lang}: {found:#}");
        if let Some(runtime) = runtime {
            assert!(text.contains(&format!("language      {lang}\n")), "{text}");
            assert!(
                text.contains(&format!("runtime       {runtime}, embedded")),
                "{text}"
            );
            assert!(
                text.contains(&format!("(the {runtime} runtime's)")),
                "{text}"
            );
        }
    }
}

#[test]
fn plugin_commands_explain_bad_input() {
    let dir = tempfile::tempdir().expect("tempdir");

    let out = tessera()
        .args(["plugin", "new", "Bad_Name", "--lang", "js", "--dir"])
        .arg(dir.path())
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a usable plugin name"));

    let out = tessera()
        .args(["plugin", "build"])
        .arg(dir.path())
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not a plugin folder") && err.contains("plugin new"),
        "{err}"
    );

    // --config names the entry to write for; a folder without one is told so.
    let (_cdir, config) = write_config(&base_config("ES256"));
    let out = tessera()
        .args(["plugin", "build", "--config", &config])
        .arg(dir.path().join("partner-claims"))
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "tessera.toml: no [[plugins]] entry is named \"partner-claims\" (its plugins: none)"
        ) && err.contains("--plugin NAME"),
        "{err}"
    );

    let event = dir.path().join("event.json");
    std::fs::write(&event, "{\n  \"client\": { \"nmae\": \"x\" }\n}").expect("write");
    let out = tessera()
        .args(["plugin", "test"])
        .arg(wasm("client_claims"))
        .args(["--stage", "credentials-exchange", "--event"])
        .arg(&event)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("event.json: line 2") && err.contains("nmae"),
        "{err}"
    );

    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, "not wasm").expect("write");
    for command in ["test", "inspect"] {
        let out = tessera()
            .args(["plugin", command])
            .arg(&garbage)
            .args(if command == "test" {
                &["--stage", "authorize"][..]
            } else {
                &[]
            })
            .output()
            .expect("run");
        assert!(!out.status.success(), "{command}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("garbage.wasm") && err.contains("is not a WebAssembly file"),
            "{command}: {err}"
        );
    }
}

#[test]
fn plugin_test_reports_a_denial_and_a_failure() {
    let (report, success) = plugin_test(
        &wasm("misbehave"),
        "credentials-exchange",
        &json!({ "config": { "mode": "deny", "code": "invalid_scope", "description": "no" } }),
    );
    assert!(success, "a denial is a result, not a failure: {report:#}");
    assert_eq!(report["decision"], "deny");
    assert_eq!(report["error"]["error"], "invalid_scope");

    let (report, success) = plugin_test(
        &wasm("misbehave"),
        "credentials-exchange",
        &json!({ "config": { "mode": "reserved", "claim": "sub" } }),
    );
    assert!(!success);
    assert_eq!(report["decision"], "fail");
    assert!(
        report["error"]["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("sub")),
        "{report:#}"
    );
}

#[test]
fn the_c_recipe_builds_a_plugin_that_serves() {
    if !have(&["clang-19", "wit-bindgen", "wasm-tools", "curl"]) {
        return;
    }
    let out = tempfile::tempdir().expect("tempdir");
    let wasm = out.path().join("client_name_c.wasm");
    ok(
        Command::new("bash")
            .arg(repo().join("plugins/client-name-c/build.sh"))
            .arg("--out")
            .arg(&wasm)
            .output()
            .expect("run build.sh"),
        "plugins/client-name-c/build.sh",
    );

    let event = json!({
        "client": { "id": "acme-sync", "name": "ACME order sync", "app_type": "machine" },
        "config": { "namespace": NS },
    });
    let (report, success) = plugin_test(&wasm, "credentials-exchange", &event);
    assert!(success, "{report:#}");
    assert_eq!(
        report["access_token"]["claims"],
        json!({ format!("{NS}client_name"): "ACME order sync", format!("{NS}client_app_type"): "machine" })
    );
    let (report, success) = plugin_test(&wasm, "credentials-exchange", &json!({}));
    assert!(!success);
    assert!(
        report["logs"]
            .to_string()
            .contains("config key \\\"namespace\\\" is required"),
        "{report:#}"
    );

    let t = Tessera::start(
        &(base_config("ES256")
            + &plugin_config(
                "client-name-c",
                &wasm,
                &format!("{{ namespace = \"{NS}\" }}"),
            )),
    );
    let claims = t.verify(t.acme(&[("audience", ORDERS)]).access_token(), ORDERS);
    assert_eq!(claims[format!("{NS}client_name")], "ACME order sync");
    assert_eq!(claims[format!("{NS}client_app_type")], "machine");
}

#[test]
fn plugin_test_repeat_counts_failures_of_reused_instances() {
    let dir = tempfile::tempdir().expect("tempdir");
    let event = dir.path().join("event.json");
    std::fs::write(
        &event,
        r#"{ "config": { "mode": "counter", "trap_at": "3" } }"#,
    )
    .expect("write");
    let out = tessera()
        .args(["plugin", "test"])
        .arg(wasm("misbehave"))
        .args([
            "--stage",
            "credentials-exchange",
            "--repeat",
            "5",
            "--event",
        ])
        .arg(&event)
        .arg("--cache-dir")
        .arg(shared_cache())
        .output()
        .expect("run");
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    // Fresh instances always see call 1; the reused one traps at its third.
    assert_eq!(report["decision"], "allow", "{report:#}");
    assert!(
        report["timing"]["repeat_failures"]
            .as_u64()
            .is_some_and(|n| n >= 1),
        "{report:#}"
    );
}

/// `TESSERA_PLUGIN_PROFILER=perfmap` writes the perf map where Linux `perf`
/// looks for code made at run time, naming the plugin's functions (here
/// from the compiled cache, as a restarted server loads them); another value
/// is refused, naming the variable.
#[test]
fn the_plugin_profiler_names_plugin_code_for_perf() {
    let dir = tempfile::tempdir().expect("tempdir");
    let event = dir.path().join("event.json");
    std::fs::write(
        &event,
        format!(r#"{{ "config": {{ "namespace": "{NS}" }} }}"#),
    )
    .expect("write");
    let run = |profiler: &str| {
        tessera()
            .args(["plugin", "test"])
            .arg(wasm("client_claims"))
            .args(["--stage", "credentials-exchange", "--event"])
            .arg(&event)
            .arg("--cache-dir")
            .arg(shared_cache())
            .env("TESSERA_PLUGIN_PROFILER", profiler)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run tessera plugin test")
    };
    // Once to fill the cache, once from it.
    for _ in 0..2 {
        let child = run("perfmap");
        let map = PathBuf::from(format!("/tmp/perf-{}.map", child.id()));
        let out = child.wait_with_output().expect("wait");
        let text = std::fs::read_to_string(&map).unwrap_or_default();
        let _ = std::fs::remove_file(&map);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.lines()
                .any(|l| l.contains("wasm[") && l.contains("function[")),
            "{} names no plugin function:\n{}",
            map.display(),
            text.lines().take(5).collect::<Vec<_>>().join("\n")
        );
    }
    let out = run("vtune").wait_with_output().expect("wait");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "TESSERA_PLUGIN_PROFILER: \"vtune\" is not a profiler Tessera knows; use perfmap"
        ),
        "{err}"
    );
}

/// `tessera plugin inspect FILE | head`: a reader that goes away ends the
/// command quietly (SIGPIPE, as other Unix tools), with no panic.
#[test]
fn a_report_whose_reader_went_away_ends_quietly() {
    use std::os::unix::process::ExitStatusExt as _;
    for args in [
        vec!["inspect".to_owned()],
        vec![
            "test".to_owned(),
            "--stage".to_owned(),
            "credentials-exchange".to_owned(),
        ],
    ] {
        let mut child = tessera()
            .arg("plugin")
            .args(&args)
            .arg(wasm("client_claims"))
            .arg("--cache-dir")
            .arg(shared_cache())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run tessera plugin");
        // The reader is gone before the command prints.
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "plugin {args:?}: {err}");
        assert_eq!(
            out.status.signal(),
            Some(13),
            "plugin {args:?}: {:?} {err}",
            out.status
        );
    }
}

/// The author's loop in one command: `plugin build --watch --config` writes
/// the component where a running server's configuration points; a saved edit
/// reaches the next token through the server's hot reload.
#[test]
fn plugin_build_watch_feeds_a_running_server() {
    let parent = tempfile::tempdir().expect("tempdir");
    ok(
        tessera()
            .args(["plugin", "new", "watched", "--lang", "rust", "--dir"])
            .arg(parent.path())
            .output()
            .expect("run new"),
        "plugin new",
    );
    let plugin = parent.path().join("watched");
    let server = tempfile::tempdir().expect("tempdir");
    let config = base_config("ES256")
        + &plugin_config(
            "watched",
            Path::new("plugins/watched.wasm"),
            &format!("{{ namespace = \"{NS}\" }}"),
        );
    let config_file = server.path().join("tessera.toml");
    std::fs::write(&config_file, &config).expect("write config");

    let mut watch = tessera();
    watch
        .args(["plugin", "build", "--watch", "--config"])
        .arg(&config_file)
        .arg(&plugin)
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(parent.path().join("watch.log")).expect("log"));
    let mut watch = KillOnDrop(cargo_env(&mut watch).spawn().expect("start watch"));
    let (tx, built) = std::sync::mpsc::channel();
    let stdout = watch.0.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(PathBuf::from(line));
        }
    });
    let log = || std::fs::read_to_string(parent.path().join("watch.log")).unwrap_or_default();
    let limit = std::time::Duration::from_secs(600);
    let first = built
        .recv_timeout(limit)
        .unwrap_or_else(|_| panic!("no build:\n{}", log()));
    assert_eq!(first, server.path().join("plugins/watched.wasm"));

    let t = Tessera::start_in(server, &config);
    let claim = |name: &str| {
        t.verify(t.acme(&[("audience", ORDERS)]).access_token(), ORDERS)
            .get(format!("{NS}{name}"))
            .cloned()
    };
    assert_eq!(claim("client_name"), Some(json!("ACME order sync")));

    let source = plugin.join("src/lib.rs");
    let text = std::fs::read_to_string(&source).expect("source");
    std::fs::write(
        &source,
        text.replace("{namespace}client_name", "{namespace}app_name"),
    )
    .expect("edit");
    let second = built
        .recv_timeout(limit)
        .unwrap_or_else(|_| panic!("no rebuild:\n{}", log()));
    assert_eq!(second, first);
    assert!(
        wait_for(std::time::Duration::from_secs(10), || claim("app_name")
            .is_some()),
        "the server did not pick up the rebuilt plugin:\n{}",
        t.log()
    );
    assert_eq!(claim("client_name"), None);
    let _ = watch.0.kill();
}

/// A child process killed when the test ends, passed or not.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
