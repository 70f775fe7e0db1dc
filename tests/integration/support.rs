//! Starting Tessera with a generated configuration, building the test plugins,
//! and asking for tokens.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;

pub const ISSUER: &str = "http://127.0.0.1:9";
pub const ORDERS: &str = "https://orders.example.com";
pub const BILLING: &str = "https://billing.example.com";
pub const LOCKED: &str = "https://locked.example.com";
pub const ACME_SECRET: &str = "acme-secret-0123456789abcdefghijklmnopqrstuv";
pub const GLOBEX_SECRET: &str = "globex-secret-0123456789abcdefghijklmnopqrs";
/// The Orders API's own client: its resource server, which may introspect
/// the Orders API's tokens.
pub const ORDERS_API_SECRET: &str = "orders-api-secret-0123456789abcdefghijklmn";

/// The cargo target folder this test binary was built into.
pub fn target_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    // <target>/<profile>/deps/integration-<hash>
    let exe = std::env::current_exe().expect("current exe");
    exe.ancestors().nth(3).expect("target dir").to_owned()
}

/// The folder holding the test plugins built for wasm32-wasip2. Built once per
/// test process with cargo (a no-op when fresh), unless `TESSERA_TEST_WASM_DIR`
/// names a folder that already holds them.
pub fn wasm_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Ok(dir) = std::env::var("TESSERA_TEST_WASM_DIR") {
            return PathBuf::from(dir);
        }
        let target = target_dir();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--release", "--target", "wasm32-wasip2", "-p", "client-claims", "-p", "api-guard", "-p", "misbehave", "-p", "roles-from-app-metadata", "-p", "abi-v0-2", "-p", "fetch"])
            .arg("--target-dir")
            .arg(&target)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("RUSTFLAGS")
            .status()
            .expect("running cargo to build the test plugins");
        assert!(status.success(), "building the test plugins failed (is the wasm32-wasip2 target installed? `rustup target add wasm32-wasip2`)");
        target.join("wasm32-wasip2/release")
    })
}

/// A built test plugin.
pub fn wasm(name: &str) -> PathBuf {
    let p = wasm_dir().join(format!("{name}.wasm"));
    assert!(p.is_file(), "{} is missing", p.display());
    p
}

/// The misbehave test plugin as `tessera plugin build` makes it by default:
/// for `wasm32-unknown-unknown`, without WASI, made a component by the
/// host. Built once per test process (cargo's own no-op when fresh).
pub fn misbehave_without_wasi() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let out = target_dir().join("bare-plugins/misbehave.wasm");
        let plugin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/plugins/misbehave");
        let built = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["plugin", "build"])
            .arg(&plugin)
            .arg("--out")
            .arg(&out)
            .env("CARGO_TARGET_DIR", target_dir())
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("RUSTFLAGS")
            .output()
            .expect("run tessera plugin build");
        assert!(
            built.status.success(),
            "tessera plugin build {}: {}",
            plugin.display(),
            String::from_utf8_lossy(&built.stderr)
        );
        out
    })
}

/// A component kept as a fixture in `tests/fixtures/` (`abi-0.1.0/client_claims`).
pub fn fixture(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(format!("{name}.wasm"));
    assert!(p.is_file(), "{} is missing", p.display());
    p
}

/// Runs `tests/clients/SCRIPT ARGS…` with the Python of `tests/clients/.venv`,
/// `stdin` on its standard input; its output, or `None` (with a note) where
/// the venv is missing and `TESSERA_REQUIRE_CLIENT_LIBRARIES` is not set.
pub fn run_client_script(script: &str, args: &[&str], stdin: &str) -> Option<std::process::Output> {
    use std::io::Write as _;
    let clients = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/clients");
    let python = clients.join(".venv/bin/python");
    let mut child = match Command::new(&python)
        .arg(clients.join(script))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if std::env::var_os("TESSERA_REQUIRE_CLIENT_LIBRARIES").is_none() => {
            eprintln!(
                "skipped {script}: no {} ({e}); see tests/clients/README.md",
                python.display()
            );
            return None;
        }
        Err(e) => panic!("{}: {e}", python.display()),
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write");
    Some(child.wait_with_output().expect(script))
}

/// A compiled-plugin cache shared by every test, so each component is compiled
/// once per run.
pub fn shared_cache() -> PathBuf {
    target_dir().join("tessera-test-cache")
}

/// The standard world: two APIs, one locked API, machine clients with
/// metadata, a public SPA, and grants.
pub fn base_config(algorithm: &str) -> String {
    let acme = hash(ACME_SECRET);
    let globex = hash(GLOBEX_SECRET);
    let orders_api = hash(ORDERS_API_SECRET);
    format!(
        r#"
[server]
issuer = "{ISSUER}"
listen = "127.0.0.1:0"

[signing]
algorithm = "{algorithm}"

[runtime]
cache_dir = "{cache}"

[[apis]]
identifier = "{ORDERS}"
name = "Orders API"
scopes = ["read:orders", "write:orders", "delete:orders"]
resource_servers = ["orders-api"]
metadata = {{ owner = "orders-team", allowed_app_types = ["machine"], restricted_scopes = {{ "write:orders" = {{ tier = ["gold"] }} }} }}

[[apis]]
identifier = "{BILLING}"
name = "Billing API"
scopes = ["read:invoices"]
metadata = {{ allowed_partners = ["globex"] }}

[[apis]]
identifier = "{LOCKED}"
scopes = ["x"]
client_access = "deny_all"

[[clients]]
id = "acme-sync"
name = "ACME order sync"
app_type = "machine"
secret_hash = "{acme}"
metadata = {{ partner = "acme", tier = "gold", region = "eu" }}

[[clients]]
id = "globex"
name = "Globex reporting"
app_type = "machine"
secret_hash = "{globex}"
metadata = {{ partner = "globex", tier = "silver" }}

[[clients]]
id = "orders-api"
name = "Orders API (resource server)"
app_type = "machine"
secret_hash = "{orders_api}"

[[clients]]
id = "web-spa"
app_type = "spa"
redirect_uris = ["https://app.example.com/callback"]

[[grants]]
client = "acme-sync"
api = "{ORDERS}"
scopes = ["read:orders", "write:orders"]

[[grants]]
client = "acme-sync"
api = "{BILLING}"
scopes = ["read:invoices"]

[[grants]]
client = "globex"
api = "{ORDERS}"
scopes = ["read:orders", "write:orders"]

[[grants]]
client = "globex"
api = "{BILLING}"
scopes = ["read:invoices"]
"#,
        cache = shared_cache().display()
    )
}

/// `sha256:` hash of a secret, computed with RustCrypto's sha2 (independent of
/// Tessera's ring-based hashing).
pub fn hash(secret: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(secret.as_bytes());
    format!("sha256:{}", hex::encode(digest))
}

/// A running `tessera serve`, killed on drop.
pub struct Tessera {
    child: Child,
    pub base: String,
    pub dir: tempfile::TempDir,
    http: reqwest::blocking::Client,
    stdout: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Tessera {
    /// Writes `config` to a fresh folder and starts the binary on it.
    pub fn start(config: &str) -> Tessera {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_in(dir, config)
    }

    /// Starts the binary with `config` in `dir` (to reuse keys across restarts).
    pub fn start_in(dir: tempfile::TempDir, config: &str) -> Tessera {
        let path = dir.path().join("tessera.toml");
        std::fs::write(&path, config).expect("write config");
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["serve", "--config"])
            .arg(&path)
            .env("TESSERA_LOG", "tessera=debug,info")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start tessera");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(mut seen) = seen.lock() {
                    seen.push(line.clone());
                }
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let url = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    let _ = tx.send(url);
                }
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let log =
                    std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();
                panic!("tessera did not start:\n{log}");
            }
        };
        Tessera {
            child,
            base,
            dir,
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            stdout: lines,
        }
    }

    /// What the server printed on standard output so far.
    pub fn stdout(&self) -> Vec<String> {
        self.stdout.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits up to `limit` for the server to exit by itself; its status.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn get(&self, path: &str) -> reqwest::blocking::Response {
        self.http.get(self.url(path)).send().expect("GET")
    }

    /// POSTs a form to the token endpoint with optional Basic credentials.
    pub fn token(&self, basic: Option<(&str, &str)>, form: &[(&str, &str)]) -> Reply {
        self.post_form("/oauth/token", basic, form)
    }

    /// POSTs a form to `path` with optional Basic credentials.
    pub fn post_form(
        &self,
        path: &str,
        basic: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> Reply {
        let mut req = self.http.post(self.url(path)).form(form);
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        Reply::from(req.send().unwrap_or_else(|e| panic!("POST {path}: {e}")))
    }

    /// A client-credentials token request for ACME with Basic auth.
    pub fn acme(&self, extra: &[(&str, &str)]) -> Reply {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend_from_slice(extra);
        self.token(Some(("acme-sync", ACME_SECRET)), &form)
    }

    /// Fetches the JWKS over HTTP and verifies an access token with
    /// `jsonwebtoken`, checking `typ`, `iss`, `aud` and expiry.
    pub fn verify(&self, token: &str, audience: &str) -> Value {
        verify_access_token(&self.jwks(), token, audience, ISSUER)
    }

    /// The JWKS, fetched over HTTP.
    pub fn jwks(&self) -> JwkSet {
        self.get("/.well-known/jwks.json")
            .json()
            .expect("jwks json")
    }

    /// Stops the server (SIGKILL) and returns its folder.
    pub fn stop(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = tempfile::tempdir().expect("tempdir");
        std::mem::replace(&mut self.dir, dir)
    }
}

impl Endpoint for Tessera {
    fn base(&self) -> &str {
        &self.base
    }
}

impl Drop for Tessera {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            assert_log_holds_no_secret(&self.log());
        }
    }
}

/// Where Tessera's endpoints are served: one replica, or a proxy in front
/// of several.
pub trait Endpoint {
    /// `http://HOST:PORT`, no trailing slash.
    fn base(&self) -> &str;

    /// The absolute URL of `path` there.
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }
}

/// Verifies an access token with `jsonwebtoken` against `jwks`, checking
/// `typ`, `iss`, `aud` and expiry; returns its claims.
pub fn verify_access_token(jwks: &JwkSet, token: &str, audience: &str, issuer: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).expect("header");
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let kid = header.kid.clone().expect("kid");
    let jwk = jwks.find(&kid).expect("kid is in the JWKS");
    let key = DecodingKey::from_jwk(jwk).expect("decoding key");
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[issuer]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("token verifies against the JWKS")
        .claims
}

/// Verifies an ID token for `client` against `jwks` (not an access token:
/// no `at+jwt` type); returns its claims.
pub fn verify_id_token(jwks: &JwkSet, token: &str, client: &str, issuer: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).expect("header");
    assert_ne!(header.typ.as_deref(), Some("at+jwt"));
    let jwk = jwks
        .find(&header.kid.clone().expect("kid"))
        .expect("kid is in the JWKS");
    let key = DecodingKey::from_jwk(jwk).expect("decoding key");
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[client]);
    validation.set_issuer(&[issuer]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("ID token verifies against the JWKS")
        .claims
}

/// A token endpoint reply.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl From<reqwest::blocking::Response> for Reply {
    fn from(r: reqwest::blocking::Response) -> Self {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().expect("body");
        // An empty body (a revocation's answer) is `null`.
        let body = match text.as_str() {
            "" => Value::Null,
            _ => {
                serde_json::from_str(&text).unwrap_or_else(|_| panic!("body is not JSON: {text:?}"))
            }
        };
        // Access and ID tokens are JWTs, which no log may hold at all.
        if let Some(secret) = body["refresh_token"].as_str() {
            remember_secret(secret);
        }
        Reply {
            status,
            headers,
            body,
        }
    }
}

/// Opaque secrets this test process has seen Tessera hand out (refresh
/// tokens), besides the fixed test secrets; no server log may hold any.
static SEEN_SECRETS: std::sync::Mutex<Option<std::collections::HashSet<String>>> =
    std::sync::Mutex::new(None);

/// Adds `secret` to what no server log may hold ([`assert_log_holds_no_secret`]).
pub fn remember_secret(secret: &str) {
    if let Ok(mut seen) = SEEN_SECRETS.lock() {
        seen.get_or_insert_default().insert(secret.to_owned());
    }
}

/// docs/operations.md, "What is never logged": no log line of a server, at
/// any level the tests run it with (`tessera=debug`), holds a client
/// secret, a password, a token Tessera handed out this test, or anything
/// shaped like a JWT. Every server the integration tests start is checked
/// when it stops.
pub fn assert_log_holds_no_secret(log: &str) {
    let fixed = [
        ACME_SECRET,
        GLOBEX_SECRET,
        ORDERS_API_SECRET,
        crate::user_flows::PASSWORD,
        crate::user_flows::PORTAL_SECRET,
        crate::reload::ADMIN_SECRET,
        crate::secrets::PLUGIN_SECRET,
        crate::client_libraries::RP_SECRET,
    ];
    for secret in fixed {
        assert!(!log.contains(secret), "a test secret is in the log:\n{log}");
    }
    // A JWT's header is base64url JSON, so every JWT starts with "eyJ"; a
    // random id may hold those letters too, but not two dots after them.
    for (at, _) in log.match_indices("eyJ") {
        let word: String = log[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .collect();
        let parts: Vec<&str> = word.split('.').collect();
        assert!(
            parts.len() < 3 || parts[..3].iter().any(|p| p.is_empty()),
            "something shaped like a JWT is in the log: {word}"
        );
    }
    // Every base64url word of the log, looked up among the opaque tokens
    // handed out (one pass, however many there were).
    let seen = SEEN_SECRETS.lock().map(|s| s.clone()).unwrap_or_default();
    if let Some(seen) = seen {
        let words = log.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        for word in words.filter(|w| w.len() >= 32) {
            assert!(
                !seen.contains(word),
                "a token handed out is in the log: {word}"
            );
        }
    }
}

impl Reply {
    /// The access token of a 200 reply.
    pub fn access_token(&self) -> &str {
        assert_eq!(self.status, 200, "expected a token, got {:?}", self.body);
        self.body["access_token"].as_str().expect("access_token")
    }

    /// Asserts an RFC 6749 error reply and returns its description.
    pub fn expect_error(&self, status: u16, error: &str) -> String {
        assert_eq!(
            (self.status, self.body["error"].as_str()),
            (status, Some(error)),
            "{:?}",
            self.body
        );
        assert_eq!(self.header("cache-control"), "no-store");
        assert!(self.header("content-type").starts_with("application/json"));
        self.body["error_description"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }
}

/// A `[[plugins]]` entry for the misbehave fixture.
///
/// An entry whose `extra` sets no `timeout_ms` gets 2 s rather than the
/// 50 ms default: on a two-core machine running the suite in parallel a
/// fresh instance can take longer than 50 ms to start, and only the tests
/// about deadlines should depend on them (they set `timeout_ms` themselves).
pub fn misbehave(name: &str, extra: &str) -> String {
    let deadline = if extra.contains("timeout_ms") {
        ""
    } else {
        "timeout_ms = 2000\n"
    };
    format!(
        "\n[[plugins]]\nname = \"{name}\"\npath = \"{}\"\nstages = [\"credentials-exchange\"]\n{deadline}{extra}\n",
        wasm("misbehave").display()
    )
}

/// The base configuration with one misbehave build (`file`) in `mode` for the
/// Orders API only (16 MiB, 200 ms), so Billing tokens show the server still
/// serves.
pub fn hostile(file: &Path, mode: &str, extra: &str) -> Tessera {
    Tessera::start(&format!(
        "{}\n[[plugins]]\nname = \"{mode}\"\npath = \"{}\"\nstages = [\"credentials-exchange\"]\napis = [\"{ORDERS}\"]\nmemory_mb = 16\ntimeout_ms = 200\nconfig = {{ mode = \"{mode}\" {extra} }}\n",
        base_config("ES256"),
        file.display()
    ))
}

/// Runs the binary with `args`; returns success, stdout and stderr.
pub fn run_tessera(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .output()
        .expect("run tessera");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `tessera trace ID` against `t` as the admin client `(id, secret)`: the
/// readable trace it prints (the command must succeed).
pub fn tessera_trace(t: &Tessera, admin: (&str, &str), id: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["trace", id, "--url", &t.base, "--admin-client", admin.0])
        .env("TESSERA_ADMIN_SECRET", admin.1)
        .env_remove("TESSERA_ADMIN_TOKEN")
        .output()
        .expect("tessera trace");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// Writes `text` as `tessera.toml` in a fresh folder; returns the folder
/// (removed on drop) and the file's path.
pub fn write_config(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tessera.toml");
    std::fs::write(&path, text).expect("write");
    let p = path.display().to_string();
    (dir, p)
}

/// Waits until `f` is true or `limit` passes.
pub fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A JWT's claims without verification (for high-rate checks of tokens whose
/// signatures other tests verify).
pub fn claims_unverified(token: &str) -> Value {
    use base64::Engine as _;
    let part = token.split('.').nth(1).expect("payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("json")
}
