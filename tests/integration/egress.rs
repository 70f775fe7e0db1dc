//! Egress as a capability: plugins reach HTTP APIs only where their
//! `[[plugins]] egress` allows, through `wasi:http/outgoing-handler` (the
//! `fetch` fixture, Rust) or the SDKs' `fetch`/`urlopen` (JavaScript and
//! Python, over `tessera:egress`), against an upstream on loopback: an
//! allowed request, a host off the list, a redirect off the list, a slow
//! response and a huge one.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::devkit::{have, ok, plugin_test, repo};
use crate::support::*;

/// An HTTP/1.1 server on 127.0.0.1 with a few routes, counting the requests
/// each path got. Its threads end with the test process.
struct Upstream {
    port: u16,
    hits: Arc<Mutex<HashMap<String, u32>>>,
}

impl Upstream {
    fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let hits = Arc::new(Mutex::new(HashMap::new()));
        let counted = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let counted = counted.clone();
                std::thread::spawn(move || serve(stream, port, &counted));
            }
        });
        Upstream { port, hits }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn origin(&self) -> String {
        self.url("")
    }

    fn hits(&self, path: &str) -> u32 {
        self.hits
            .lock()
            .expect("hits")
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}

fn serve(stream: TcpStream, port: u16, hits: &Mutex<HashMap<String, u32>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split(' ').nth(1).unwrap_or("/").to_owned();
    let mut authorization = String::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
            break;
        }
        if let Some(value) = header.to_ascii_lowercase().strip_prefix("x-token:") {
            authorization = value.trim().to_owned();
        }
    }
    *hits.lock().expect("hits").entry(path.clone()).or_default() += 1;
    let mut out = stream;
    let reply = |out: &mut TcpStream, status: &str, headers: &str, body: &str| {
        let _ = write!(
            out,
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n{headers}\r\n{body}",
            body.len()
        );
    };
    match path.as_str() {
        "/hello" => reply(&mut out, "200 OK", "", "hello from upstream"),
        "/token" => reply(&mut out, "200 OK", "", &format!("token={authorization}")),
        "/redirect-in" => reply(&mut out, "302 Found", "location: /hello\r\n", ""),
        "/redirect-out" => reply(
            &mut out,
            "302 Found",
            &format!("location: http://localhost:{port}/hello\r\n"),
            "",
        ),
        "/slow" => {
            std::thread::sleep(Duration::from_secs(3));
            reply(&mut out, "200 OK", "", "late");
        }
        "/huge" => {
            // No length: the cap must hold while the body streams.
            let _ = write!(out, "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n");
            let chunk = vec![b'x'; 64 * 1024];
            for _ in 0..128 {
                if out.write_all(&chunk).is_err() {
                    return;
                }
            }
        }
        _ => reply(&mut out, "404 Not Found", "", ""),
    }
}

/// One client-credentials token for `acme` at Orders, with `fetch` set up
/// by `config`; the token's claims and how long the request took.
fn fetched(upstream: &Upstream, plugin_config: &str) -> (Value, Duration) {
    let config = format!(
        "{}\n[[plugins]]\nname = \"fetch\"\npath = \"{}\"\nstages = [\"credentials-exchange\"]\n\
         apis = [\"{ORDERS}\"]\n{plugin_config}\n",
        base_config("ES256"),
        wasm("fetch").display(),
    );
    let t = Tessera::start(&config);
    let started = Instant::now();
    let reply = t.acme(&[("audience", ORDERS)]);
    let took = started.elapsed();
    let claims = t.verify(reply.access_token(), ORDERS);
    assert!(upstream.port > 0);
    (claims, took)
}

fn egress_config(upstream: &Upstream, url: &str, extra: &str) -> String {
    format!(
        "egress = [\"{}\"]\ntimeout_ms = 1500\nconfig = {{ url = \"{url}\" {extra} }}\n",
        upstream.origin()
    )
}

#[test]
fn a_plugin_reaches_an_allowed_origin_through_wasi_http() {
    let upstream = Upstream::start();
    let (claims, _) = fetched(
        &upstream,
        &egress_config(&upstream, &upstream.url("/hello"), ""),
    );
    assert_eq!(claims["status"], 200, "{claims}");
    assert_eq!(claims["body"], "hello from upstream");
    assert_eq!(upstream.hits("/hello"), 1);
}

#[test]
fn plugin_test_sends_requests_where_the_event_files_egress_allows() {
    let upstream = Upstream::start();
    let event = |egress: &[String]| serde_json::json!({ "config": { "url": upstream.url("/hello") }, "egress": egress });
    let (report, _) = plugin_test(
        &wasm("fetch"),
        "credentials-exchange",
        &event(&[upstream.origin()]),
    );
    assert_eq!(
        report["access_token"]["claims"]["status"], 200,
        "{report:#}"
    );
    let (report, _) = plugin_test(&wasm("fetch"), "credentials-exchange", &event(&[]));
    assert_eq!(
        report["access_token"]["claims"]["error"], "ErrorCode::HttpRequestDenied",
        "{report:#}"
    );
    assert_eq!(upstream.hits("/hello"), 1);
}

#[test]
fn without_egress_or_off_the_list_a_request_is_refused_before_it_leaves() {
    let upstream = Upstream::start();
    // No egress at all.
    let (claims, _) = fetched(
        &upstream,
        &format!("config = {{ url = \"{}\" }}\n", upstream.url("/hello")),
    );
    assert_eq!(claims["error"], "ErrorCode::HttpRequestDenied", "{claims}");
    // Another host name for the same server: not the listed origin.
    let (claims, _) = fetched(
        &upstream,
        &egress_config(
            &upstream,
            &format!("http://localhost:{}/hello", upstream.port),
            "",
        ),
    );
    assert_eq!(claims["error"], "ErrorCode::HttpRequestDenied", "{claims}");
    assert_eq!(upstream.hits("/hello"), 0, "nothing reached the upstream");

    // A listed name that resolves to loopback: refused unless the address
    // itself is listed.
    let config = format!(
        "egress = [\"http://localhost:{}\"]\ntimeout_ms = 1500\nconfig = {{ url = \"http://localhost:{}/hello\" }}\n",
        upstream.port, upstream.port
    );
    let (claims, _) = fetched(&upstream, &config);
    assert_eq!(
        claims["error"], "ErrorCode::DestinationIpProhibited",
        "{claims}"
    );
    assert_eq!(upstream.hits("/hello"), 0);
}

#[test]
fn redirects_are_answers_and_a_hop_off_the_list_is_refused() {
    let upstream = Upstream::start();
    // The host follows nothing: the plugin sees the 302.
    let (claims, _) = fetched(
        &upstream,
        &egress_config(&upstream, &upstream.url("/redirect-in"), ""),
    );
    assert_eq!(claims["status"], 302, "{claims}");
    // Followed by the plugin, on the list: fine.
    let (claims, _) = fetched(
        &upstream,
        &egress_config(&upstream, &upstream.url("/redirect-in"), ", follow = \"3\""),
    );
    assert_eq!(
        (&claims["status"], &claims["hops"]),
        (&Value::from(200), &Value::from(1)),
        "{claims}"
    );
    // Followed off the list: refused at the hop.
    let (claims, _) = fetched(
        &upstream,
        &egress_config(
            &upstream,
            &upstream.url("/redirect-out"),
            ", follow = \"3\"",
        ),
    );
    assert_eq!(claims["error"], "ErrorCode::HttpRequestDenied", "{claims}");
    assert_eq!(claims["hops"], 1);
    assert_eq!(
        upstream.hits("/hello"),
        1,
        "only the followed in-list redirect arrived"
    );
}

#[test]
fn a_slow_upstream_times_out_within_the_plugins_deadline() {
    let upstream = Upstream::start();
    let (claims, took) = fetched(
        &upstream,
        &egress_config(&upstream, &upstream.url("/slow"), ""),
    );
    // The deadline (1.5 s) bounds the request; the plugin still answers.
    assert_eq!(
        claims["error"], "ErrorCode::ConnectionReadTimeout",
        "{claims}"
    );
    assert!(took < Duration::from_millis(2_900), "took {took:?}");
}

#[test]
fn a_huge_response_stops_at_egress_max_bytes() {
    let upstream = Upstream::start();
    let (claims, _) = fetched(
        &upstream,
        &format!(
            "egress_max_bytes = 65536\n{}",
            egress_config(&upstream, &upstream.url("/huge"), "")
        ),
    );
    // The body stream fails with the host's error (its text, as the stream
    // error carries it).
    let error = claims["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("body size exceeds limit: 65536 bytes"),
        "{claims}"
    );
    assert!(claims.get("status").is_none());
}

#[test]
fn egress_entries_that_are_not_origins_are_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tessera.toml");
    let config = format!(
        "{}\n[[plugins]]\nname = \"fetch\"\npath = \"{}\"\negress = [\"https://crm.example.com\", \"https://crm.example.com/api\"]\negress_max_bytes = 0\negress_ca_file = \"corp-ca.pem\"\n",
        base_config("ES256"),
        wasm("fetch").display(),
    );
    std::fs::write(&path, config).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .expect("tessera check");
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("plugins[fetch].egress[1]") && text.contains("without a path"),
        "{text}"
    );
    assert!(
        text.contains("plugins[fetch].egress_max_bytes") && text.contains("out of range"),
        "{text}"
    );
    assert!(
        text.contains("plugins[fetch].egress_ca_file: cannot read") && text.contains("corp-ca.pem"),
        "{text}"
    );
}

/// Builds a JavaScript plugin with the SDK; `None` where Node or the SDK's
/// packages are missing (and `TESSERA_REQUIRE_POLYGLOT` is not set).
fn js_plugin(dir: &Path, source: &str) -> Option<std::path::PathBuf> {
    if !have(&["node"]) {
        return None;
    }
    if !repo().join("plugin-sdk/js/node_modules/esbuild").is_dir() {
        assert!(
            std::env::var("TESSERA_REQUIRE_POLYGLOT").is_err(),
            "TESSERA_REQUIRE_POLYGLOT is set but plugin-sdk/js has no node_modules: run npm ci there"
        );
        return None;
    }
    let src = dir.join("js");
    std::fs::create_dir_all(&src).expect("mkdir");
    std::fs::write(src.join("plugin.js"), source).expect("write");
    let out = dir.join("fetch-js.wasm");
    ok(
        Command::new("node")
            .arg(repo().join("plugin-sdk/js/src/build.mjs"))
            .arg(&src)
            .arg("--out")
            .arg(&out)
            .output()
            .expect("node"),
        "building the JavaScript plugin",
    );
    Some(out)
}

/// Runs `wasm` (an SDK plugin that requests each URL of config `urls` and
/// puts what happened into claims `r0`, `r1`, ...) once, with the upstream
/// as its egress, a 64 KiB cap, a 2.5 s deadline and secret `TOKEN`.
fn fetch_each(upstream: &Upstream, wasm: &Path, urls: &[String]) -> Value {
    let config = format!(
        "{}\n[[plugins]]\nname = \"fetch-each\"\npath = \"{}\"\nstages = [\"credentials-exchange\"]\n\
         apis = [\"{ORDERS}\"]\negress = [\"{}\"]\negress_max_bytes = 65536\ntimeout_ms = 2500\n\
         config = {{ urls = '{}' }}\nsecrets = {{ TOKEN = {{ file = \"token.txt\" }} }}\n",
        base_config("ES256"),
        wasm.display(),
        upstream.origin(),
        serde_json::to_string(urls).expect("json"),
    );
    let home = tempfile::tempdir().expect("tempdir");
    std::fs::write(home.path().join("token.txt"), "s3cret\n").expect("write the secret");
    let t = Tessera::start_in(home, &config);
    let reply = t.acme(&[("audience", ORDERS)]);
    let claims = t.verify(reply.access_token(), ORDERS);
    assert_eq!(claims["r0"], "200 token=s3cret", "{claims}\n{}", t.log());
    claims
}

/// An Auth0-style Action that calls `fetch` for each URL of config `urls`
/// and puts what happened into the token, claim `r0`, `r1`, ...
const FETCHING_ACTION: &str = r#"
exports.onExecuteCredentialsExchange = async (event, api) => {
  const urls = JSON.parse(event.config.urls);
  for (const [i, url] of urls.entries()) {
    try {
      const response = await fetch(url, { headers: { "x-token": event.secrets.TOKEN } });
      api.accessToken.setCustomClaim(`r${i}`, `${response.status} ${await response.text()}`);
    } catch (error) {
      api.accessToken.setCustomClaim(`r${i}`, `${error.name}: ${error.cause?.tag}`);
    }
  }
};
"#;

#[test]
fn a_javascript_action_fetches_within_its_egress() {
    let upstream = Upstream::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(wasm) = js_plugin(dir.path(), FETCHING_ACTION) else {
        return;
    };
    let urls = [
        upstream.url("/token"),
        upstream.url("/redirect-in"),
        upstream.url("/redirect-out"),
        format!("http://localhost:{}/hello", upstream.port),
        upstream.url("/huge"),
        upstream.url("/slow"),
    ];
    let claims = fetch_each(&upstream, &wasm, &urls);
    assert_eq!(
        claims["r1"], "200 hello from upstream",
        "a redirect on the list is followed"
    );
    assert_eq!(
        claims["r2"], "TypeError: denied",
        "a redirect off the list is refused"
    );
    assert_eq!(
        claims["r3"], "TypeError: denied",
        "a host off the list is refused"
    );
    assert_eq!(claims["r4"], "TypeError: too-large");
    assert_eq!(claims["r5"], "TypeError: timeout");
    assert_eq!(upstream.hits("/hello"), 1);
}

/// Builds a Python plugin with the SDK and the CI's componentize-py (the
/// tests/clients venv); `None` where it is missing (and
/// `TESSERA_REQUIRE_POLYGLOT` is not set).
fn py_plugin(dir: &Path, source: &str) -> Option<std::path::PathBuf> {
    let python = repo().join("tests/clients/.venv/bin/python");
    let ready = Command::new(&python)
        .args(["-c", "import componentize_py"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ready {
        assert!(
            std::env::var("TESSERA_REQUIRE_POLYGLOT").is_err(),
            "TESSERA_REQUIRE_POLYGLOT is set but {} has no componentize-py",
            python.display()
        );
        return None;
    }
    let src = dir.join("py");
    std::fs::create_dir_all(&src).expect("mkdir");
    std::fs::write(src.join("plugin.py"), source).expect("write");
    let out = dir.join("fetch-py.wasm");
    ok(
        Command::new(&python)
            .args(["-m", "tessera_plugin.build"])
            .arg(&src)
            .arg("--out")
            .arg(&out)
            .env("PYTHONPATH", repo().join("plugin-sdk/python"))
            .output()
            .expect("python"),
        "building the Python plugin",
    );
    Some(out)
}

/// The Python twin of [`FETCHING_ACTION`], with `urlopen`.
const FETCHING_PY: &str = r#"
import json
from tessera_plugin.http import HTTPError, URLError, urlopen


def on_credentials_exchange(event, api):
    for i, url in enumerate(json.loads(event.config.get("urls"))):
        try:
            with urlopen(url, headers={"x-token": event.secrets.get("TOKEN")}) as response:
                api.access_token.set_custom_claim(f"r{i}", f"{response.status} {response.text()}")
        except HTTPError as error:
            api.access_token.set_custom_claim(f"r{i}", f"HTTPError {error.code}")
        except URLError as error:
            api.access_token.set_custom_claim(f"r{i}", f"URLError {error.kind}")
    # The SDK's api.cache reaches the host's cache too.
    api.cache.set("last", str(len(event.config.get("urls"))))
    api.access_token.set_custom_claim("cached", api.cache.get("last").value)
"#;

#[test]
fn a_python_plugin_opens_urls_within_its_egress() {
    let upstream = Upstream::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(wasm) = py_plugin(dir.path(), FETCHING_PY) else {
        return;
    };
    let urls = [
        upstream.url("/token"),
        upstream.url("/redirect-in"),
        upstream.url("/redirect-out"),
        upstream.url("/missing"),
        upstream.url("/huge"),
        upstream.url("/slow"),
    ];
    let claims = fetch_each(&upstream, &wasm, &urls);
    assert_eq!(claims["r1"], "200 hello from upstream");
    assert_eq!(claims["r2"], "URLError denied");
    assert_eq!(claims["r3"], "HTTPError 404");
    assert_eq!(claims["r4"], "URLError too-large");
    assert_eq!(claims["r5"], "URLError timeout");
    assert!(
        claims["cached"]
            .as_str()
            .is_some_and(|n| n.parse::<u32>().is_ok()),
        "{claims}"
    );
}

/// An HTTPS server on 127.0.0.1 (`openssl s_server -www`, which answers a
/// GET with a status page) whose certificate a certificate authority of our
/// own signed; killed on drop.
struct TlsUpstream {
    child: std::process::Child,
    port: u16,
    /// The authority's certificate (PEM).
    ca: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for TlsUpstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TlsUpstream {
    /// `None` without the openssl command (and `TESSERA_REQUIRE_POLYGLOT`
    /// unset: CI has it).
    fn start() -> Option<TlsUpstream> {
        let dir = tempfile::tempdir().expect("tempdir");
        let openssl = |args: &[&str]| {
            Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .is_ok_and(|o| o.status.success())
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        let made = openssl(
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "1",
                    "-subj",
                    "/CN=Tessera test CA",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign",
                ],
            ]
            .concat(),
        ) && openssl(
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    "leaf.key",
                    "-out",
                    "leaf.csr",
                    "-subj",
                    "/CN=127.0.0.1",
                ],
            ]
            .concat(),
        ) && std::fs::write(
            dir.path().join("leaf.cnf"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .is_ok()
            && openssl(&[
                "x509",
                "-req",
                "-in",
                "leaf.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "leaf.pem",
                "-days",
                "1",
                "-extfile",
                "leaf.cnf",
            ]);
        if !made {
            assert!(
                std::env::var("TESSERA_REQUIRE_POLYGLOT").is_err(),
                "TESSERA_REQUIRE_POLYGLOT is set but openssl cannot make test certificates"
            );
            return None;
        }
        let mut child = Command::new("openssl")
            .args([
                "s_server",
                "-accept",
                "127.0.0.1:0",
                "-cert",
                "leaf.pem",
                "-key",
                "leaf.key",
                "-www",
            ])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start openssl s_server");
        let stdout = child.stdout.take().expect("stdout");
        let port = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|line| line.strip_prefix("ACCEPT 127.0.0.1:")?.trim().parse().ok())
            .expect("s_server says where it listens");
        Some(TlsUpstream {
            child,
            port,
            ca: dir.path().join("ca.pem"),
            _dir: dir,
        })
    }
}

#[test]
fn https_egress_trusts_the_web_pki_and_the_plugins_egress_ca_file() {
    let Some(tls) = TlsUpstream::start() else {
        return;
    };
    let origin = format!("https://127.0.0.1:{}", tls.port);
    let plugin = |extra: &str| {
        let config = format!(
            "{}\n[[plugins]]\nname = \"fetch\"\npath = \"{}\"\nstages = [\"credentials-exchange\"]\n\
             apis = [\"{ORDERS}\"]\negress = [\"{origin}\"]\ntimeout_ms = 3000\n{extra}\
             config = {{ url = \"{origin}/\" }}\n",
            base_config("ES256"),
            wasm("fetch").display(),
        );
        let t = Tessera::start(&config);
        let reply = t.acme(&[("audience", ORDERS)]);
        t.verify(reply.access_token(), ORDERS)
    };
    // The Web PKI does not vouch for our authority.
    let claims = plugin("");
    assert_eq!(
        claims["error"], "ErrorCode::TlsCertificateError",
        "{claims}"
    );
    // egress_ca_file adds it.
    let claims = plugin(&format!("egress_ca_file = \"{}\"\n", tls.ca.display()));
    assert_eq!(claims["status"], 200, "{claims}");
    assert!(
        claims["body"]
            .as_str()
            .is_some_and(|b| b.contains("<HTML>") || b.contains("<html>")),
        "{claims}"
    );
}
