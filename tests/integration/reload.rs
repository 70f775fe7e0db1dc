//! Hot reload of plugins and configuration: triggers, atomic swaps, the last
//! good version surviving bad files, and zero failed requests under load.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

pub(crate) const ADMIN_SECRET: &str = "admin-secret-0123456789abcdefghijklmnopqrst";

/// Version A is client-claims (sets `https://v/client_name`); version B is the
/// misbehave fixture in `claims` mode (sets `version = "B"`). The same config
/// table serves both, so swapping the file is the only change.
fn versions() -> (PathBuf, PathBuf) {
    (wasm("client_claims"), wasm("misbehave"))
}

fn version_of(claims: &Value) -> &'static str {
    match (
        claims.get("https://v/client_name").is_some(),
        claims.get("version").is_some(),
    ) {
        (true, false) => "A",
        (false, true) => "B",
        other => panic!("a token must carry exactly one version's claims: {other:?} in {claims}"),
    }
}

/// Replaces `path` the way deploy tools do: write a temporary file, rename.
fn install(from: &Path, path: &Path) {
    let tmp = path.with_extension("tmp");
    std::fs::copy(from, &tmp).expect("copy");
    std::fs::rename(&tmp, path).expect("rename");
}

/// The reload tests' configuration. The plugin gets a generous deadline: these
/// tests are about reloading, and on a two-core CI machine compiling other
/// tests' plugins can hold a call past the 50 ms default.
fn reload_config(plugin: &Path, namespace: &str) -> String {
    format!(
        "{}\n[[apis]]\nidentifier = \"urn:tessera:admin\"\nscopes = [\"tessera:plugins:read\", \"tessera:reload\"]\n\
         \n[[clients]]\nid = \"ops\"\napp_type = \"machine\"\nsecret_hash = \"{}\"\n\
         \n[[grants]]\nclient = \"ops\"\napi = \"urn:tessera:admin\"\nscopes = [\"tessera:plugins:read\", \"tessera:reload\"]\n\
         \n[[plugins]]\nname = \"shaper\"\npath = \"{}\"\nstages = [\"credentials-exchange\"]\n\
         timeout_ms = 2000\n\
         config = {{ namespace = \"{namespace}\", metadata_keys = [], mode = \"claims\", claims = {{ version = \"B\" }} }}\n",
        base_config("ES256"),
        hash(ADMIN_SECRET),
        plugin.display()
    )
}

/// A server whose plugin file lives in its own folder (so tests can replace it).
fn start_with_plugin_file() -> (Tessera, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugin = dir.path().join("shaper.wasm");
    install(&versions().0, &plugin);
    let t = Tessera::start_in(dir, &reload_config(&plugin, "https://v/"));
    (t, plugin)
}

fn admin_token(t: &Tessera) -> String {
    admin_token_with(t, "tessera:plugins:read tessera:reload")
}

fn admin_token_with(t: &Tessera, scope: &str) -> String {
    t.token(
        Some(("ops", ADMIN_SECRET)),
        &[
            ("grant_type", "client_credentials"),
            ("audience", "urn:tessera:admin"),
            ("scope", scope),
        ],
    )
    .access_token()
    .to_owned()
}

fn admin(t: &Tessera, method: reqwest::Method, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut r = reqwest::blocking::Client::new().request(method, t.url(path));
    if let Some(tok) = token {
        r = r.bearer_auth(tok);
    }
    let r = r.send().expect("admin request");
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

/// Asks for a reload that must be refused (422); returns why.
fn refused_reload(t: &Tessera, token: &str) -> String {
    let (status, body) = admin(t, reqwest::Method::POST, "/admin/reload", Some(token));
    assert_eq!(status, 422, "{body}");
    body["error_description"].as_str().expect("why").to_owned()
}

fn current_version(t: &Tessera) -> &'static str {
    version_of(&t.verify(t.acme(&[("audience", ORDERS)]).access_token(), ORDERS))
}

#[test]
fn a_new_plugin_file_takes_over_within_a_second() {
    let (t, plugin) = start_with_plugin_file();
    assert_eq!(current_version(&t), "A");
    let swapped = Instant::now();
    install(&versions().1, &plugin);
    assert!(
        wait_for(Duration::from_secs(5), || current_version(&t) == "B"),
        "{}",
        t.log()
    );
    let took = swapped.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "the new version took {took:?}"
    );
    let (status, body) = admin(
        &t,
        reqwest::Method::GET,
        "/admin/plugins",
        Some(&admin_token(&t)),
    );
    assert_eq!(status, 200);
    assert_eq!(body["generation"], 2);
    let sha = body["plugins"][0]["sha256"].as_str().expect("sha");
    assert_eq!(sha, sha256_of(&versions().1));
    // A Rust component without a tessera-plugin section: no warm instances.
    assert_eq!(body["plugins"][0]["warm"]["instances"], 0);
    assert_eq!(body["plugins"][0]["language"], Value::Null);
}

#[test]
fn a_broken_file_keeps_the_last_good_version_serving() {
    let (t, plugin) = start_with_plugin_file();
    let token = admin_token(&t);
    let wants_http = wat::parse_str(
        r#"(component (import "wasi:http/outgoing-handler@0.2.0" (instance (export "handle" (func)))))"#,
    )
    .expect("WAT");
    let mut oversized = b"\0asm\x0d\0\x01\0".to_vec();
    oversized.resize(65 << 20, 0);
    for junk in [
        &b"\0asm\x0d\0\x01\0 truncated"[..],
        b"not wasm at all",
        b"",
        &wants_http,
        &oversized,
    ] {
        std::fs::write(&plugin, junk).expect("write junk");
        let why = refused_reload(&t, &token);
        // Named like a problem of the configuration file: the file, the key.
        assert!(why.contains("tessera.toml: 1 problem"), "{why}");
        assert!(why.contains("plugins[shaper].path: "), "{why}");
        assert!(why.contains("shaper.wasm"), "{why}");
        assert_eq!(
            current_version(&t),
            "A",
            "the last good version must keep serving"
        );
    }
    let (_, listing) = admin(&t, reqwest::Method::GET, "/admin/plugins", Some(&token));
    assert!(
        listing["plugins"][0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("shaper")),
        "{listing}"
    );
    assert_eq!(listing["generation"], 1);
    let metrics = t.get("/metrics").text().expect("metrics");
    // Refused because a plugin did not load (once per burst of file
    // events the watcher saw), and for nothing else.
    assert!(
        metrics.contains("tessera_reloads_total{result=\"refused\",reason=\"plugin\"}")
            && !metrics.contains("tessera_reloads_total{result=\"refused\",reason=\"plugin\"} 0"),
        "{metrics}"
    );
    for reason in ["config", "needs_restart", "internal"] {
        assert!(
            metrics.contains(&format!(
                "tessera_reloads_total{{result=\"refused\",reason=\"{reason}\"}} 0"
            )),
            "{reason}: {metrics}"
        );
    }
    // A good file again: the watcher picks it up.
    install(&versions().1, &plugin);
    assert!(wait_for(Duration::from_secs(5), || current_version(&t) == "B"));
}

#[test]
fn a_slow_writer_never_serves_half_a_file() {
    let (t, plugin) = start_with_plugin_file();
    let b = std::fs::read(versions().1).expect("version B");
    // Four writes 300 ms apart, each long enough for the watcher to settle
    // and reload what is there so far.
    let mut file = std::fs::File::create(&plugin).expect("open");
    for chunk in b.chunks(b.len() / 4 + 1) {
        use std::io::Write as _;
        file.write_all(chunk).expect("write");
        file.flush().expect("flush");
        std::thread::sleep(Duration::from_millis(300));
        // Whatever the watcher made of the partial file, tokens keep coming.
        let v = current_version(&t);
        assert!(v == "A" || v == "B", "{v}");
    }
    drop(file);
    assert!(wait_for(Duration::from_secs(5), || current_version(&t) == "B"));
}

#[test]
fn a_compile_bomb_times_out_off_the_request_path() {
    let (t, plugin) = start_with_plugin_file();
    let token = admin_token(&t);
    // A component whose one core module takes far longer than 50 ms to
    // compile: 40 functions of 25,000 instructions each.
    let body = "(drop (i32.add (i32.const 1) (i32.const 2)))\n".repeat(25_000);
    let funcs: String = (0..40)
        .map(|i| format!("(func (export \"f{i}\") {body})\n"))
        .collect();
    let bomb = wat::parse_str(format!("(component (core module {funcs}))")).expect("WAT");
    std::fs::write(&plugin, bomb).expect("write bomb");
    let config = reload_config(&plugin, "https://claims.example.com/")
        .replace("[runtime]\n", "[runtime]\ncompile_timeout_ms = 50\n");
    assert!(config.contains("compile_timeout_ms = 50"));
    std::fs::write(t.dir.path().join("tessera.toml"), config).expect("write config");

    let why = refused_reload(&t, &token);
    assert!(why.contains("compiling took longer than 50 ms"), "{why}");
    // The abandoned compile goes on in the background; requests do not wait.
    for _ in 0..10 {
        let started = std::time::Instant::now();
        assert_eq!(current_version(&t), "A");
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "{:?}",
            started.elapsed()
        );
    }
}

#[test]
fn editing_the_config_reloads_it_and_a_bad_edit_is_refused() {
    let (t, plugin) = start_with_plugin_file();
    let config = t.dir.path().join("tessera.toml");
    std::fs::write(&config, reload_config(&plugin, "https://w/")).expect("rewrite");
    let renamed = || {
        t.verify(t.acme(&[("audience", ORDERS)]).access_token(), ORDERS)
            .get("https://w/client_name")
            .is_some()
    };
    assert!(wait_for(Duration::from_secs(5), renamed), "{}", t.log());
    std::fs::write(&config, reload_config(&plugin, "https://x/") + "\n[oops]\n").expect("break");
    let token = admin_token(&t);
    let why = refused_reload(&t, &token);
    assert!(why.contains("oops (line "), "{why}");
    assert!(why.contains("unknown section"), "{why}");
    assert!(renamed(), "the last good configuration keeps serving");
}

#[test]
fn admin_endpoints_need_an_admin_token() {
    let (t, _) = start_with_plugin_file();
    assert_eq!(
        admin(&t, reqwest::Method::GET, "/admin/plugins", None).0,
        401
    );
    assert_eq!(
        admin(&t, reqwest::Method::POST, "/admin/reload", Some("garbage")).0,
        401
    );
    let orders_token = t.acme(&[("audience", ORDERS)]).access_token().to_owned();
    assert_eq!(
        admin(
            &t,
            reqwest::Method::POST,
            "/admin/reload",
            Some(&orders_token)
        )
        .0,
        403
    );
    // Each endpoint needs its own admin scope, and says which (RFC 6750 §3).
    let read_only = admin_token_with(&t, "tessera:plugins:read");
    assert_eq!(
        admin(&t, reqwest::Method::GET, "/admin/plugins", Some(&read_only)).0,
        200
    );
    let refused = reqwest::blocking::Client::new()
        .post(t.url("/admin/reload"))
        .bearer_auth(&read_only)
        .send()
        .expect("reload");
    assert_eq!(refused.status().as_u16(), 403);
    let challenge = refused.headers()["www-authenticate"]
        .to_str()
        .expect("ascii");
    assert!(
        challenge.contains("error=\"insufficient_scope\"")
            && challenge.contains("scope=\"tessera:reload\""),
        "{challenge}"
    );
    let reload_only = admin_token_with(&t, "tessera:reload");
    assert_eq!(
        admin(
            &t,
            reqwest::Method::GET,
            "/admin/plugins",
            Some(&reload_only)
        )
        .0,
        403
    );
    let (status, body) = admin(
        &t,
        reqwest::Method::POST,
        "/admin/reload",
        Some(&reload_only),
    );
    assert_eq!((status, body["generation"].as_u64()), (200, Some(2)));
}

#[cfg(unix)]
#[test]
fn sighup_reloads() {
    let (t, plugin) = start_with_plugin_file();
    // Change the file where the watcher cannot see it: a new path in the config.
    let other = plugin.with_file_name("other.wasm");
    install(&versions().1, &other);
    std::fs::write(
        t.dir.path().join("tessera.toml.new"),
        reload_config(&other, "https://v/"),
    )
    .expect("write");
    std::fs::rename(
        t.dir.path().join("tessera.toml.new"),
        t.dir.path().join("tessera.toml"),
    )
    .expect("rename");
    assert!(wait_for(Duration::from_secs(5), || current_version(&t) == "B"));
    let before = admin(
        &t,
        reqwest::Method::GET,
        "/admin/plugins",
        Some(&admin_token(&t)),
    )
    .1["generation"]
        .as_u64()
        .expect("gen");
    let status = std::process::Command::new("kill")
        .args(["-HUP", &t.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    assert!(wait_for(Duration::from_secs(5), || {
        admin(
            &t,
            reqwest::Method::GET,
            "/admin/plugins",
            Some(&admin_token(&t)),
        )
        .1["generation"]
            .as_u64()
            == Some(before + 1)
    }));
}

fn sha256_of(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).expect("read")))
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// About 20 s of constant load while the plugin flips between two versions
/// every 2 s, the config is rewritten, and a corrupt file lands once: no
/// request fails, and every token carries exactly one version's claims. Then
/// 1,000 reloads that each swap the component (docs/reliability.md, case
/// 37), with resident memory measured before and after.
#[test]
fn reloads_under_load_fail_no_request_and_memory_stays_flat() {
    let (t, plugin) = start_with_plugin_file();
    let t = Arc::new(t);
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let seen_b = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let (t, stop, ok, seen_b) = (t.clone(), stop.clone(), ok.clone(), seen_b.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let reply = t.acme(&[("audience", ORDERS)]);
                    assert_eq!(
                        reply.status, 200,
                        "a request failed during reloads: {:?}",
                        reply.body
                    );
                    if version_of(&crate::support::claims_unverified(reply.access_token())) == "B" {
                        seen_b.store(true, Ordering::Relaxed);
                    }
                    ok.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        })
        .collect();
    let (a, b) = versions();
    for round in 0..10 {
        std::thread::sleep(Duration::from_secs(2));
        match round {
            4 => std::fs::write(&plugin, b"corrupt").expect("corrupt"),
            6 => std::fs::write(
                t.dir.path().join("tessera.toml"),
                reload_config(&plugin, "https://v/") + "\n# edited\n",
            )
            .expect("config"),
            _ => install(if round % 2 == 0 { &b } else { &a }, &plugin),
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("a worker saw a failed request");
    }
    assert!(
        ok.load(Ordering::Relaxed) > 500,
        "too few requests: {}",
        ok.load(Ordering::Relaxed)
    );
    assert!(seen_b.load(Ordering::Relaxed), "version B never served");

    let token = admin_token(&t);
    for _ in 0..20 {
        admin(&t, reqwest::Method::POST, "/admin/reload", Some(&token));
    }
    let before = rss_kib(t.pid());
    for i in 0..1000 {
        // Every reload swaps the component: each loads one version and drops
        // the other.
        install(if i % 2 == 0 { &a } else { &b }, &plugin);
        let (status, _) = admin(&t, reqwest::Method::POST, "/admin/reload", Some(&token));
        assert_eq!(status, 200);
    }
    let after = rss_kib(t.pid());
    eprintln!("resident memory over 1,000 reloads: {before} KiB -> {after} KiB");
    assert!(
        after < before + 32 * 1024,
        "resident memory grew from {before} KiB to {after} KiB over 1,000 reloads"
    );
}

#[test]
fn turning_fuel_on_needs_a_restart() {
    let (t, plugin) = start_with_plugin_file();
    let token = admin_token(&t);
    let config =
        reload_config(&plugin, "https://v/").replace("[runtime]\n", "[runtime]\nfuel = true\n");
    std::fs::write(t.dir.path().join("tessera.toml"), config).expect("write config");
    let why = refused_reload(&t, &token);
    assert!(why.contains("takes effect at the next start"), "{why}");
    assert_eq!(current_version(&t), "A");
}

#[test]
fn warm_instances_start_before_a_version_serves_and_are_replaced_when_retired() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugin = dir.path().join("shaper.wasm");
    install(&versions().0, &plugin);
    let warm = |n: u32| {
        reload_config(&plugin, "https://v/")
            + &format!("apis = [\"{ORDERS}\"]\nwarm_instances = {n}\nwarm_max_calls = 1\n")
    };
    let t = Tessera::start_in(dir, &warm(2));
    let token = admin_token(&t);
    let listing = || admin(&t, reqwest::Method::GET, "/admin/plugins", Some(&token)).1;
    let idle = |l: &Value| {
        l["plugins"][0]["idle_instances"]
            .as_u64()
            .expect("idle_instances")
    };
    // The plugin runs for the Orders API only, not for the admin token, so
    // the two instances were started at start-up, before any call.
    assert_eq!(idle(&listing()), 2, "{}", t.log());

    // Each instance serves one call, then retires; a replacement starts in
    // the background, so the plugin soon holds two again.
    assert_eq!(current_version(&t), "A");
    assert!(
        wait_for(Duration::from_secs(5), || idle(&listing()) == 2),
        "{}",
        listing()
    );

    // A reload starts the new version's instances before it serves: the
    // first listing that shows generation 2 already shows three.
    std::fs::write(t.dir.path().join("tessera.toml"), warm(3)).expect("rewrite");
    let mut swapped = Value::Null;
    assert!(
        wait_for(Duration::from_secs(5), || {
            swapped = listing();
            swapped["generation"].as_u64() == Some(2)
        }),
        "{}",
        t.log()
    );
    assert_eq!(idle(&swapped), 3, "{swapped}");
}
