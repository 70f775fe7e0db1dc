//! Tessera side by side with panva's oidc-provider and the floor server, in one
//! run, with one load generator (wrk) and one request. See bench/README.md.
//!
//! ```text
//! bench/run [--duration SECS] [--warmup SECS] [--quick] [--only NAME,...]
//! ```
//!
//! For each scenario it starts the server on a free loopback port, checks one
//! token by hand (audience, `typ`, the two client claims), warms up, then runs
//! `wrk -t1 -cN` and reads the server's CPU time from `/proc/PID/stat` before
//! and after. It prints tokens/s, p50/p99 latency, CPU µs per token (user and
//! system), errors, and the ratios against the floor and oidc-provider.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

#[path = "compare/user_flow.rs"]
mod user_flow;

const CLIENT_SECRET_HASH: &str =
    "sha256:04e149338a0452c6ac0e8fb9678a35511ee5552eae68569faf9bbe976b492fb5";
const BASIC: &str = "YWNtZS1zeW5jOmRlbW8tYWNtZS1zZWNyZXQtZG8tbm90LXVzZS1pbi1wcm9kdWN0aW9u";
const BODY: &str =
    "grant_type=client_credentials&resource=https%3A%2F%2Forders.example.com&scope=read%3Aorders";
const AUDIENCE: &str = "https://orders.example.com";
const NAMESPACE: &str = "https://claims.example.com/";

#[derive(Clone, Copy, PartialEq, Eq)]
enum System {
    Floor,
    Tessera(Plugin),
    /// Tessera without plugins on a PostgreSQL store (keys sealed in it): the
    /// client-credentials path reads nothing from the store, so this row
    /// should match `tessera`'s.
    TesseraPostgres,
    /// A user's code exchange and refresh, on SQLite (`false`) or PostgreSQL
    /// (`true`): the path that does use the store ([`user_flow`]).
    TesseraUserFlow {
        postgres: bool,
    },
    OidcProvider,
}

/// The PostgreSQL the `tessera-pg` row runs on (`cargo xtask bench` starts a
/// throwaway one); without it the row is skipped.
const DATABASE_URL: &str = "TESSERA_BENCH_DATABASE_URL";

/// The key-encryption key of the `tessera-pg` row: a benchmark's, not a secret.
const BENCH_KEK: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Plugin {
    None,
    Rust,
    /// The Rust plugin with warm instances: what a fresh instance per call
    /// costs, side by side.
    RustWarm,
    /// The Rust plugin with no decision traces kept (`[trace] keep = 0`) and
    /// no access log line (`TESSERA_LOG=warn`): what tracing and the
    /// per-request log cost, side by side with `tessera+rust`.
    RustQuiet,
    /// The Rust plugin with a candidate build (a copy of the same one) run
    /// in the shadow on one call in ten: what shadow runs cost the live
    /// path, side by side with `tessera+rust`.
    RustShadow,
    JavaScript,
    Python,
}

#[derive(Clone, Copy)]
struct Scenario {
    system: System,
    alg: &'static str,
    connections: u32,
}

impl Scenario {
    fn name(&self) -> String {
        let system = match self.system {
            System::Floor => "floor",
            System::Tessera(Plugin::None) => "tessera",
            System::Tessera(Plugin::Rust) => "tessera+rust",
            System::Tessera(Plugin::RustWarm) => "tessera+rust-warm",
            System::Tessera(Plugin::RustQuiet) => "tessera+rust-quiet",
            System::Tessera(Plugin::RustShadow) => "tessera+rust-shadow",
            System::Tessera(Plugin::JavaScript) => "tessera+js",
            System::Tessera(Plugin::Python) => "tessera+python",
            System::TesseraPostgres => "tessera-pg",
            System::TesseraUserFlow { postgres: false } => "tessera-code+refresh",
            System::TesseraUserFlow { postgres: true } => "tessera-pg-code+refresh",
            System::OidcProvider => "oidc-provider",
        };
        format!("{system} {} c{}", self.alg, self.connections)
    }
}

struct Options {
    duration: u64,
    warmup: u64,
    quick: bool,
    only: Vec<String>,
}

/// docs/reliability.md, case 37, as a figure: p99 at a fixed rate, without
/// and then with the plugin swapped every second.
struct ReloadFigures {
    rate: u32,
    baseline: Figures,
    reloading: Figures,
    swaps: u32,
}

/// One measured run.
struct Figures {
    tokens_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    user_us: f64,
    system_us: f64,
    errors: u64,
}

fn main() {
    let options = parse_args();
    let root = repo_root();
    let bin = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| fail("cannot find the binaries' folder"));
    let tessera = bin.join("tessera");
    let floor = bin.join("tessera-bench-floor");
    for exe in [&tessera, &floor] {
        if !exe.exists() {
            fail(&format!(
                "{} is missing; run bench/run, which builds it",
                exe.display()
            ));
        }
    }
    ensure_wrk();
    let oidc = ensure_oidc_provider(&root);
    let work = std::env::temp_dir().join(format!("tessera-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap_or_else(|e| fail(&format!("{}: {e}", work.display())));

    let mut plugins = BTreeMap::new();
    let mut languages = vec![(Plugin::Rust, "client-claims")];
    if !options.quick {
        languages.push((Plugin::JavaScript, "client-claims-js"));
        languages.push((Plugin::Python, "client-claims-py"));
    }
    for (_, dir) in languages {
        let out = work.join(format!("{dir}.wasm"));
        eprintln!("bench: building plugins/{dir}");
        let built = Command::new(&tessera)
            .args(["plugin", "build"])
            .arg(root.join("plugins").join(dir))
            .arg("--out")
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if built {
            plugins.insert(dir, out);
        } else {
            eprintln!(
                "bench: plugins/{dir} did not build (`tessera plugin build plugins/{dir}` says why); its scenarios are skipped"
            );
        }
    }

    let mut scenarios = Vec::new();
    let es = |system, connections| Scenario {
        system,
        alg: "ES256",
        connections,
    };
    let database = std::env::var(DATABASE_URL).ok().filter(|u| !u.is_empty());
    if database.is_none() {
        eprintln!(
            "bench: {DATABASE_URL} is not set, so the tessera-pg row is skipped (bench/run starts a PostgreSQL when it is installed)"
        );
    }
    for system in [
        System::Floor,
        System::Tessera(Plugin::None),
        System::TesseraPostgres,
        System::Tessera(Plugin::Rust),
        System::Tessera(Plugin::RustWarm),
        System::Tessera(Plugin::RustQuiet),
        System::Tessera(Plugin::RustShadow),
        System::Tessera(Plugin::JavaScript),
        System::Tessera(Plugin::Python),
        System::OidcProvider,
    ] {
        scenarios.push(es(system, 32));
    }
    for postgres in [false, true] {
        scenarios.push(es(System::TesseraUserFlow { postgres }, 32));
    }
    for system in [
        System::Floor,
        System::Tessera(Plugin::Rust),
        System::OidcProvider,
    ] {
        scenarios.push(Scenario {
            system,
            alg: "RS256",
            connections: 32,
        });
    }
    for system in [
        System::Floor,
        System::Tessera(Plugin::Rust),
        System::OidcProvider,
    ] {
        scenarios.push(es(system, 64));
    }
    scenarios.retain(|s| {
        let available = match s.system {
            System::Tessera(
                Plugin::Rust | Plugin::RustWarm | Plugin::RustQuiet | Plugin::RustShadow,
            ) => plugins.contains_key("client-claims"),
            System::Tessera(Plugin::JavaScript) => plugins.contains_key("client-claims-js"),
            System::Tessera(Plugin::Python) => plugins.contains_key("client-claims-py"),
            System::OidcProvider => oidc.is_some(),
            System::TesseraPostgres | System::TesseraUserFlow { postgres: true } => {
                database.is_some()
            }
            _ => true,
        };
        let wanted = options.only.is_empty()
            || options
                .only
                .iter()
                .any(|o| s.name().starts_with(o.as_str()));
        available && wanted
    });
    if options.quick {
        scenarios.retain(|s| s.connections == 32 && s.alg == "ES256");
    }

    let ticks = clock_ticks();
    let mut results: Vec<(Scenario, Figures)> = Vec::new();
    for scenario in scenarios {
        let name = scenario.name();
        eprintln!("bench: {name}");
        let port = free_port();
        let dir = work.join(name.replace(' ', "-"));
        let _ = std::fs::create_dir_all(&dir);
        let (mut child, path) = match scenario.system {
            System::Floor => (
                spawn(Command::new(&floor).args([
                    "--listen",
                    &format!("127.0.0.1:{port}"),
                    "--alg",
                    scenario.alg,
                ])),
                "/oauth/token",
            ),
            System::Tessera(plugin) => {
                let wasm = match plugin {
                    Plugin::None => None,
                    Plugin::Rust | Plugin::RustWarm | Plugin::RustQuiet | Plugin::RustShadow => {
                        plugins.get("client-claims")
                    }
                    Plugin::JavaScript => plugins.get("client-claims-js"),
                    Plugin::Python => plugins.get("client-claims-py"),
                };
                let config = dir.join("tessera.toml");
                // Interpreted plugins keep the most warm instances a plugin
                // may: with 32 connections, the default 4 leaves most calls
                // on a fresh interpreter. `tessera+rust-warm` shows what the
                // Rust plugin's fresh instance per call costs.
                let warm = matches!(
                    plugin,
                    Plugin::RustWarm | Plugin::JavaScript | Plugin::Python
                );
                let quiet = plugin == Plugin::RustQuiet;
                let mut text = tessera_config(port, scenario.alg, wasm, warm, None);
                if plugin == Plugin::RustShadow
                    && let Some(wasm) = wasm
                {
                    let candidate = dir.join("candidate.wasm");
                    std::fs::copy(wasm, &candidate)
                        .unwrap_or_else(|e| fail(&format!("{}: {e}", candidate.display())));
                    text.push_str(&format!(
                        "shadow_path = \"{}\"\nshadow_sample = 0.1\n",
                        candidate.display()
                    ));
                }
                if quiet {
                    text.push_str("\n[trace]\nkeep = 0\n");
                }
                std::fs::write(&config, text)
                    .unwrap_or_else(|e| fail(&format!("{}: {e}", config.display())));
                let mut command = Command::new(&tessera);
                command.arg("serve").arg("--config").arg(&config);
                if quiet {
                    command.env("TESSERA_LOG", "warn");
                }
                (spawn(&mut command), "/oauth/token")
            }
            System::TesseraPostgres => {
                let Some(url) = &database else { continue };
                let config = dir.join("tessera.toml");
                std::fs::write(
                    &config,
                    tessera_config(port, scenario.alg, None, false, Some(url)),
                )
                .unwrap_or_else(|e| fail(&format!("{}: {e}", config.display())));
                (serve_with_kek(&tessera, &config), "/oauth/token")
            }
            System::TesseraUserFlow { postgres } => {
                let url = if postgres { database.as_deref() } else { None };
                let config = dir.join("tessera.toml");
                let text = tessera_config(port, scenario.alg, None, false, url)
                    + &user_flow::config_section();
                std::fs::write(&config, text)
                    .unwrap_or_else(|e| fail(&format!("{}: {e}", config.display())));
                if let Err(e) =
                    user_flow::add_user(&tessera, &config, &[("TESSERA_BENCH_KEK", BENCH_KEK)])
                {
                    eprintln!("bench: {name}: {e}");
                    continue;
                }
                (serve_with_kek(&tessera, &config), "/oauth/token")
            }
            System::OidcProvider => {
                let Some(node) = &oidc else { continue };
                (
                    spawn(
                        Command::new(node)
                            .arg("server.mjs")
                            .current_dir(root.join("bench/oidc-provider"))
                            .env("PORT", port.to_string())
                            .env("ALG", scenario.alg)
                            .env("NODE_ENV", "production"),
                    ),
                    "/token",
                )
            }
        };
        let outcome = match scenario.system {
            System::TesseraUserFlow { .. } => wait_for_token(&mut child, port, path, &scenario)
                .and_then(|()| {
                    user_flow::measure(
                        port,
                        scenario.connections,
                        Duration::from_secs(options.warmup),
                        Duration::from_secs(options.duration),
                        child.id(),
                        ticks,
                    )
                }),
            _ => measure(
                &options, &scenario, &mut child, port, path, ticks, &root, None,
            ),
        };
        let _ = child.kill();
        let _ = child.wait();
        match outcome {
            Ok(figures) => results.push((scenario, figures)),
            Err(e) => eprintln!("bench: {name}: {e}"),
        }
    }
    let reload = if options.quick
        || !(options.only.is_empty() || options.only.iter().any(|o| o == "reload"))
    {
        None
    } else {
        plugins
            .get("client-claims")
            .and_then(|wasm| reload_soak(&options, &tessera, wasm, &work, ticks, &root))
    };
    let _ = std::fs::remove_dir_all(&work);
    print_table(&results, &options);
    if let Some(r) = reload {
        println!(
            "\nHot reload (docs/reliability.md, case 37): tessera+rust ES256 at a fixed {} tokens/s over 32 connections, {} s each; in the second run the plugin file was swapped {} times (every second)\n",
            r.rate, options.duration, r.swaps
        );
        println!("| run | tokens/s | p50 ms | p99 ms | CPU µs/token | errors |");
        println!("|---|---:|---:|---:|---:|---:|");
        for (name, f) in [("steady", &r.baseline), ("reloading", &r.reloading)] {
            println!(
                "| {name} | {:.0} | {:.2} | {:.2} | {:.0} | {} |",
                f.tokens_per_sec,
                f.p50_ms,
                f.p99_ms,
                f.user_us + f.system_us,
                f.errors
            );
        }
        println!(
            "\np99 while reloading: {:.2}× the steady p99 (target in docs/reliability.md, case 37: at most 1.2×)",
            r.reloading.p99_ms / r.baseline.p99_ms
        );
    }
}

/// Runs Tessera with the Rust plugin at a fixed rate twice: once steady, once
/// while another thread replaces the plugin file every second with one of two
/// builds that differ only in a custom section (so each is a new component to
/// load).
fn reload_soak(
    options: &Options,
    tessera: &Path,
    wasm: &Path,
    work: &Path,
    ticks: f64,
    root: &Path,
) -> Option<ReloadFigures> {
    const RATE: u32 = 500;
    eprintln!("bench: tessera+rust reload soak");
    let dir = work.join("reload");
    let _ = std::fs::create_dir_all(&dir);
    let original = std::fs::read(wasm).ok()?;
    let variant = with_custom_section(&original, "tessera-bench", b"variant b");
    let live = dir.join("client-claims.wasm");
    std::fs::write(&live, &original).ok()?;
    let port = free_port();
    let config = dir.join("tessera.toml");
    std::fs::write(
        &config,
        tessera_config(port, "ES256", Some(&live), false, None),
    )
    .ok()?;
    let mut child = spawn(
        Command::new(tessera)
            .arg("serve")
            .arg("--config")
            .arg(&config),
    );
    let scenario = Scenario {
        system: System::Tessera(Plugin::Rust),
        alg: "ES256",
        connections: 32,
    };
    let run = |child: &mut Child| {
        measure(
            options,
            &scenario,
            child,
            port,
            "/oauth/token",
            ticks,
            root,
            Some(RATE),
        )
    };
    let baseline = run(&mut child);
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (stop, live) = (stop.clone(), live.clone());
        std::thread::spawn(move || {
            let mut swaps = 0;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_secs(1));
                let bytes = if swaps % 2 == 0 { &variant } else { &original };
                let next = live.with_extension("next");
                if std::fs::write(&next, bytes).is_ok() && std::fs::rename(&next, &live).is_ok() {
                    swaps += 1;
                }
            }
            swaps
        })
    };
    let reloading = run(&mut child);
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap_or(0);
    let _ = child.kill();
    let _ = child.wait();
    match (baseline, reloading) {
        (Ok(baseline), Ok(reloading)) => Some(ReloadFigures {
            rate: RATE,
            baseline,
            reloading,
            swaps,
        }),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("bench: reload soak: {e}");
            None
        }
    }
}

/// `component` with a custom section appended: the same code, other bytes.
fn with_custom_section(component: &[u8], name: &str, payload: &[u8]) -> Vec<u8> {
    let mut body = leb128(name.len());
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(payload);
    let mut out = component.to_vec();
    out.push(0);
    out.extend(leb128(body.len()));
    out.extend(body);
    out
}

fn leb128(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// Measures one running server under wrk, optionally paced to `rate`
/// requests per second in all.
#[allow(clippy::too_many_arguments, reason = "one private helper of main")]
fn measure(
    options: &Options,
    scenario: &Scenario,
    child: &mut Child,
    port: u16,
    path: &str,
    ticks: f64,
    root: &Path,
    rate: Option<u32>,
) -> Result<Figures, String> {
    wait_for_token(child, port, path, scenario)?;
    let url = format!("http://127.0.0.1:{port}{path}");
    let script = root.join("bench/wrk/token.lua");
    let connections = scenario.connections.to_string();
    let wrk = |secs: u64| {
        let mut command = Command::new("wrk");
        if let Some(rate) = rate {
            command
                .env("RATE", rate.to_string())
                .env("CONNECTIONS", &connections);
        }
        command
            .args([
                "-t1",
                "-c",
                &connections,
                "-d",
                &format!("{secs}s"),
                "--latency",
                "-s",
            ])
            .arg(&script)
            .arg(&url)
            .output()
            .map_err(|e| format!("wrk: {e}"))
    };
    wrk(options.warmup)?;
    let pid = child.id();
    let (user0, system0) = cpu_ticks(pid)?;
    let out = wrk(options.duration)?;
    let (user1, system1) = cpu_ticks(pid)?;
    let text = String::from_utf8_lossy(&out.stdout);
    let requests = find_number(&text, " requests in ").ok_or("wrk printed no request count")?;
    let tokens_per_sec = find_after(&text, "Requests/sec:").ok_or("wrk printed no rate")?;
    let errors =
        find_after(&text, "Non-2xx or 3xx responses:").unwrap_or(0.0) as u64 + socket_errors(&text);
    let per_token = |t: u64| (t as f64) * 1e6 / ticks / requests.max(1.0);
    Ok(Figures {
        tokens_per_sec,
        p50_ms: latency(&text, "50%").ok_or("wrk printed no p50")?,
        p99_ms: latency(&text, "99%").ok_or("wrk printed no p99")?,
        user_us: per_token(user1 - user0),
        system_us: per_token(system1 - system0),
        errors,
    })
}

/// Waits for the server to answer, then checks one token: the right audience,
/// `typ: at+jwt`, the algorithm, and the two client claims.
fn wait_for_token(
    child: &mut Child,
    port: u16,
    path: &str,
    scenario: &Scenario,
) -> Result<(), String> {
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("the server exited ({status}) before answering"));
        }
        if let Ok(body) = token_request(port, path) {
            return check_token(&body, scenario);
        }
        if started.elapsed() > Duration::from_secs(60) {
            return Err("the server did not answer within 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn token_request(port: u16, path: &str) -> Result<String, String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Basic {BASIC}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut reply = String::new();
    stream
        .read_to_string(&mut reply)
        .map_err(|e| e.to_string())?;
    let (head, body) = reply.split_once("\r\n\r\n").ok_or("no HTTP reply")?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!(
            "token request answered: {}",
            head.lines().next().unwrap_or("")
        ));
    }
    Ok(body.to_owned())
}

fn check_token(body: &str, scenario: &Scenario) -> Result<(), String> {
    let reply: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("token reply is not JSON: {e}"))?;
    let token = reply["access_token"].as_str().ok_or("no access_token")?;
    let part = |i: usize| -> Result<serde_json::Value, String> {
        let segment = token.split('.').nth(i).ok_or("not a JWT")?;
        let bytes = URL_SAFE_NO_PAD
            .decode(segment)
            .map_err(|e| format!("JWT segment: {e}"))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("JWT segment: {e}"))
    };
    let (header, claims) = (part(0)?, part(1)?);
    let expect = |ok: bool, what: &str| {
        if ok {
            Ok(())
        } else {
            Err(format!("token: {what}"))
        }
    };
    expect(header["typ"] == "at+jwt", "typ is not at+jwt")?;
    expect(header["alg"] == scenario.alg, "wrong alg")?;
    expect(claims["aud"] == AUDIENCE, "wrong aud")?;
    expect(claims["client_id"] == "acme-sync", "wrong client_id")?;
    expect(claims["scope"] == "read:orders", "wrong scope")?;
    if !matches!(
        scenario.system,
        System::Tessera(Plugin::None) | System::TesseraPostgres | System::TesseraUserFlow { .. }
    ) {
        expect(
            claims[format!("{NAMESPACE}client_name")] == "ACME order sync"
                && claims[format!("{NAMESPACE}client_app_type")] == "machine",
            "the two client claims are missing",
        )?;
    }
    Ok(())
}

/// `tessera serve` on `config`, with the benchmark's KEK in the environment
/// (used when the configuration names it).
fn serve_with_kek(tessera: &Path, config: &Path) -> Child {
    spawn(
        Command::new(tessera)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .env("TESSERA_BENCH_KEK", BENCH_KEK),
    )
}

/// A Tessera configuration: SQLite and a key folder, or with `postgres` that
/// store and the keys sealed in it.
fn tessera_config(
    port: u16,
    alg: &str,
    plugin: Option<&PathBuf>,
    warm: bool,
    postgres: Option<&str>,
) -> String {
    let (keys, store) = match postgres {
        Some(url) => ("kek_env = \"TESSERA_BENCH_KEK\"".to_owned(), url.to_owned()),
        None => (
            "key_dir = \"keys\"".to_owned(),
            "sqlite://tessera.db".to_owned(),
        ),
    };
    let mut config = format!(
        r#"[server]
issuer = "http://127.0.0.1:{port}"
listen = "127.0.0.1:{port}"

[signing]
algorithm = "{alg}"
{keys}

[store]
url = "{store}"

[runtime]
cache_dir = "cache"

[[apis]]
identifier = "{AUDIENCE}"
name = "Orders API"
scopes = ["read:orders", "write:orders"]
token_lifetime_secs = 3600

[[clients]]
id = "acme-sync"
name = "ACME order sync"
app_type = "machine"
secret_hash = "{CLIENT_SECRET_HASH}"
metadata = {{ partner = "acme", tier = "gold" }}

[[grants]]
client = "acme-sync"
api = "{AUDIENCE}"
scopes = ["read:orders", "write:orders"]
"#
    );
    if let Some(path) = plugin {
        config.push_str(&format!(
            r#"
[[plugins]]
name = "client-claims"
path = "{}"
stages = ["credentials-exchange"]
config = {{ namespace = "{NAMESPACE}", metadata_keys = [] }}
"#,
            path.display()
        ));
        if warm {
            config.push_str("warm_instances = 16\n");
        }
    }
    config
}

fn print_table(results: &[(Scenario, Figures)], options: &Options) {
    println!(
        "\nTessera, oidc-provider and the floor: wrk -t1, {} s per run after {} s of warm-up, loopback, this machine ({} cores)\n",
        options.duration,
        options.warmup,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "| scenario | tokens/s | p50 ms | p99 ms | CPU µs/token (user + sys) | errors | CPU × floor | CPU ÷ oidc-provider |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let cpu = |f: &Figures| f.user_us + f.system_us;
    let peer = |s: &Scenario, system: System| {
        results
            .iter()
            .find(|(o, _)| o.system == system && o.alg == s.alg && o.connections == s.connections)
            .map(|(_, f)| cpu(f))
    };
    for (s, f) in results {
        let vs_floor =
            peer(s, System::Floor).map_or("–".into(), |c| format!("{:.2}×", cpu(f) / c));
        let vs_oidc = peer(s, System::OidcProvider)
            .map_or("–".into(), |c| format!("{:.1}× less", c / cpu(f)));
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.0} ({:.0} + {:.0}) | {} | {} | {} |",
            s.name(),
            f.tokens_per_sec,
            f.p50_ms,
            f.p99_ms,
            cpu(f),
            f.user_us,
            f.system_us,
            f.errors,
            vs_floor,
            vs_oidc
        );
    }
}

fn parse_args() -> Options {
    let mut options = Options {
        duration: 10,
        warmup: 2,
        quick: false,
        only: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| fail(&format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--duration" => {
                options.duration = value()
                    .parse()
                    .unwrap_or_else(|_| fail("--duration: seconds"));
            }
            "--warmup" => {
                options.warmup = value()
                    .parse()
                    .unwrap_or_else(|_| fail("--warmup: seconds"));
            }
            "--only" => options.only = value().split(',').map(str::to_owned).collect(),
            "--quick" => options.quick = true,
            "-h" | "--help" => {
                println!(
                    "bench/run [--duration SECS] [--warmup SECS] [--quick] [--only PREFIX,...]\n\
                     Scenario names: floor|tessera|tessera+rust|tessera+rust-warm|tessera+rust-quiet|tessera+rust-shadow|tessera+js|tessera+python|oidc-provider, \
                     then ES256|RS256, then c32|c64 (e.g. --only 'tessera+rust ES256'); `reload` is the hot-reload soak."
                );
                std::process::exit(0);
            }
            other => fail(&format!("unknown argument {other:?}; see --help")),
        }
    }
    options
}

fn repo_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).unwrap_or(manifest)
}

fn spawn(command: &mut Command) -> Child {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| fail(&format!("cannot start {command:?}: {e}")))
}

fn ensure_wrk() {
    if Command::new("wrk").arg("--version").output().is_ok() {
        return;
    }
    eprintln!("bench: installing wrk (apt-get)");
    let installed = Command::new("sh")
        .args(["-c", "apt-get update -qq && apt-get install -y -qq wrk"])
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        fail("wrk is missing and apt-get could not install it; install wrk and run again");
    }
}

/// Node and the benchmark's oidc-provider (`npm ci`), or `None` with a note
/// when Node cannot be had.
fn ensure_oidc_provider(root: &Path) -> Option<PathBuf> {
    let has = |program: &str| Command::new(program).arg("--version").output().is_ok();
    if !has("node") || !has("npm") {
        eprintln!("bench: installing Node.js (apt-get)");
        let _ = Command::new("sh")
            .args([
                "-c",
                "apt-get update -qq && apt-get install -y -qq nodejs npm",
            ])
            .status();
    }
    if !has("node") || !has("npm") {
        eprintln!("bench: Node.js is missing; the oidc-provider scenarios are skipped");
        return None;
    }
    let dir = root.join("bench/oidc-provider");
    if !dir.join("node_modules/oidc-provider").exists() {
        eprintln!("bench: installing oidc-provider (npm ci)");
        let ok = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!(
                "bench: npm ci failed in bench/oidc-provider; the oidc-provider scenarios are skipped"
            );
            return None;
        }
    }
    Some(PathBuf::from("node"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| fail(&format!("no free port: {e}")))
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// User and system CPU ticks of `pid` and all its threads.
fn cpu_ticks(pid: u32) -> Result<(u64, u64), String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // Fields after the command name, which is in parentheses: state is the
    // first, utime the 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or("bad /proc stat")
    };
    Ok((field(11)?, field(12)?))
}

fn find_after(text: &str, label: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.trim_start().starts_with(label))?;
    line.trim_start()[label.len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn find_number(text: &str, marker: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.contains(marker))?;
    line.split_whitespace().next()?.parse().ok()
}

/// A latency percentile from wrk's distribution, in milliseconds.
fn latency(text: &str, percentile: &str) -> Option<f64> {
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with(percentile))?;
    let value = line.split_whitespace().nth(1)?;
    let (number, unit) = value.split_at(value.find(|c: char| c.is_ascii_alphabetic())?);
    let number: f64 = number.parse().ok()?;
    Some(match unit {
        "us" => number / 1000.0,
        "ms" => number,
        "s" => number * 1000.0,
        "m" => number * 60_000.0,
        _ => return None,
    })
}

fn socket_errors(text: &str) -> u64 {
    text.lines()
        .find(|l| l.trim_start().starts_with("Socket errors:"))
        .map(|l| {
            l.split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0)
}

fn fail(message: &str) -> ! {
    eprintln!("tessera-bench: {message}");
    std::process::exit(2)
}
