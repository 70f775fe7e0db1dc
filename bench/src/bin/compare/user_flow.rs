//! The `tessera code+refresh` rows: the store's hot path, on SQLite and on
//! PostgreSQL. wrk sends one fixed request; a user's flow is a chain (the
//! code from one answer goes into the next request), so these rows have
//! their own small load generator: per connection, a user signs in once,
//! then loops `GET /authorize` (the session cookie answers it at once with a
//! code), the code exchange, and one refresh. Both token responses count as
//! tokens, and their latencies make the percentiles; the CPU per token
//! includes the `/authorize` round trip that produced the code.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::{AUDIENCE, Figures, cpu_ticks};

const EMAIL: &str = "bench@example.com";
const PASSWORD: &str = "bench-password-not-a-secret";
const CLIENT: &str = "bench-spa";
const REDIRECT: &str = "http://127.0.0.1:3000/callback";
const VERIFIER: &str = "bench-pkce-verifier-0123456789-0123456789-abcdef";

/// The public client, its grant and the scopes the flow asks for, to append
/// to a configuration.
pub fn config_section() -> String {
    format!(
        r#"
[[clients]]
id = "{CLIENT}"
app_type = "spa"
redirect_uris = ["{REDIRECT}"]

[[grants]]
client = "{CLIENT}"
api = "{AUDIENCE}"
scopes = ["read:orders"]
subject = "user"
"#
    )
}

/// Adds the bench user to the store of `config` (the password on stdin);
/// a user left there by an earlier row is fine.
pub fn add_user(tessera: &Path, config: &Path, env: &[(&str, &str)]) -> Result<(), String> {
    let mut child = Command::new(tessera)
        .args(["users", "add", "--email", EMAIL, "--config"])
        .arg(config)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("tessera users add: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = writeln!(stdin, "{PASSWORD}");
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("tessera users add: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() || stderr.contains("already exists") {
        Ok(())
    } else {
        Err(format!("tessera users add: {}", stderr.trim()))
    }
}

/// Runs `connections` user loops for `warmup` then `duration` and measures
/// the second part.
pub fn measure(
    port: u16,
    connections: u32,
    warmup: Duration,
    duration: Duration,
    pid: u32,
    ticks: f64,
) -> Result<Figures, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let window = Arc::new(std::sync::OnceLock::<Instant>::new());
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (stop, window) = (stop.clone(), window.clone());
            std::thread::spawn(move || run_user(port, &stop, &window))
        })
        .collect();
    std::thread::sleep(warmup);
    let (user0, system0) = cpu_ticks(pid)?;
    let started = Instant::now();
    let _ = window.set(started);
    std::thread::sleep(duration);
    let (user1, system1) = cpu_ticks(pid)?;
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    let mut errors = 0;
    for worker in workers {
        match worker.join() {
            Ok(Ok(mut samples)) => latencies.append(&mut samples),
            Ok(Err(e)) => {
                eprintln!("bench: a user loop failed: {e}");
                errors += 1;
            }
            Err(_) => errors += 1,
        }
    }
    if latencies.is_empty() {
        return Err("no token was issued".into());
    }
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    let tokens = latencies.len() as f64;
    let per_token = |t: u64| (t as f64) * 1e6 / ticks / tokens;
    Ok(Figures {
        tokens_per_sec: tokens / elapsed.as_secs_f64(),
        p50_ms: at(0.50).as_secs_f64() * 1e3,
        p99_ms: at(0.99).as_secs_f64() * 1e3,
        user_us: per_token(user1 - user0),
        system_us: per_token(system1 - system0),
        errors,
    })
}

/// One connection's loop; the latencies of its token requests made after
/// the measured window opened.
fn run_user(
    port: u16,
    stop: &AtomicBool,
    window: &std::sync::OnceLock<Instant>,
) -> Result<Vec<Duration>, String> {
    let mut http = Http::connect(port)?;
    let challenge = URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        VERIFIER.as_bytes(),
    ));
    let authorize = format!(
        "/authorize?response_type=code&client_id={CLIENT}&redirect_uri={}&scope=openid%20offline_access%20read%3Aorders&audience={}&state=s&code_challenge={challenge}&code_challenge_method=S256",
        encode(REDIRECT),
        encode(AUDIENCE)
    );
    let page = http.send("GET", &authorize, "")?;
    let field = |name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        page.body
            .split_once(&marker)
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(value, _)| value.to_owned())
            .ok_or_else(|| format!("the login page has no {name} field"))
    };
    let form = format!(
        "tx={}&csrf={}&email={}&password={}",
        encode(&field("tx")?),
        encode(&field("csrf")?),
        encode(EMAIL),
        encode(PASSWORD)
    );
    http.send("POST", "/login", &form)?.code()?;
    let mut samples = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let code = http.send("GET", &authorize, "")?.code()?;
        let exchange = format!(
            "grant_type=authorization_code&client_id={CLIENT}&code={}&redirect_uri={}&code_verifier={VERIFIER}",
            encode(&code),
            encode(REDIRECT)
        );
        let t0 = Instant::now();
        let tokens = http.send("POST", "/oauth/token", &exchange)?.json(200)?;
        let t1 = Instant::now();
        let refresh_token = tokens["refresh_token"]
            .as_str()
            .ok_or("the code exchange gave no refresh token")?;
        let refresh = format!(
            "grant_type=refresh_token&client_id={CLIENT}&refresh_token={}",
            encode(refresh_token)
        );
        http.send("POST", "/oauth/token", &refresh)?.json(200)?;
        let t2 = Instant::now();
        if window.get().is_some_and(|start| t0 >= *start) {
            samples.push(t1 - t0);
            samples.push(t2 - t1);
        }
    }
    Ok(samples)
}

fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A keep-alive HTTP/1.1 connection with a cookie jar: just what the flow
/// needs (Content-Length bodies, no chunking).
struct Http {
    port: u16,
    reader: BufReader<TcpStream>,
    cookies: BTreeMap<String, String>,
}

struct Reply {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Reply {
    /// The `code` of a redirect to the client.
    fn code(&self) -> Result<String, String> {
        let location = self
            .location
            .as_deref()
            .filter(|_| self.status == 302 || self.status == 303)
            .ok_or_else(|| format!("expected a redirect, got {}: {}", self.status, self.body))?;
        location
            .split_once('?')
            .map(|(_, q)| q)
            .into_iter()
            .flat_map(|q| q.split('&'))
            .find_map(|p| p.strip_prefix("code="))
            .map(str::to_owned)
            .ok_or_else(|| format!("no code in {location}"))
    }

    fn json(&self, status: u16) -> Result<serde_json::Value, String> {
        if self.status != status {
            return Err(format!(
                "expected {status}, got {}: {}",
                self.status, self.body
            ));
        }
        serde_json::from_str(&self.body).map_err(|e| format!("not JSON: {e}"))
    }
}

impl Http {
    fn connect(port: u16) -> Result<Http, String> {
        let stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        Ok(Http {
            port,
            reader: BufReader::new(stream),
            cookies: BTreeMap::new(),
        })
    }

    fn send(&mut self, method: &str, path: &str, form: &str) -> Result<Reply, String> {
        let cookies: Vec<String> = self
            .cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n",
            self.port
        );
        if !cookies.is_empty() {
            request.push_str(&format!("Cookie: {}\r\n", cookies.join("; ")));
        }
        if method == "POST" {
            request.push_str(&format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
                form.len()
            ));
        }
        request.push_str("\r\n");
        request.push_str(form);
        self.reader
            .get_mut()
            .write_all(request.as_bytes())
            .map_err(|e| e.to_string())?;

        let mut line = String::new();
        self.reader
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("not an HTTP answer: {line:?}"))?;
        let (mut length, mut location) = (0, None);
        loop {
            line.clear();
            self.reader
                .read_line(&mut line)
                .map_err(|e| e.to_string())?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let Some((name, value)) = header.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse().map_err(|_| "bad Content-Length")?,
                "location" => location = Some(value.to_owned()),
                "set-cookie" => {
                    if let Some((name, value)) =
                        value.split(';').next().and_then(|c| c.split_once('='))
                    {
                        self.cookies.insert(name.to_owned(), value.to_owned());
                    }
                }
                _ => {}
            }
        }
        let mut body = vec![0; length];
        self.reader
            .read_exact(&mut body)
            .map_err(|e| e.to_string())?;
        Ok(Reply {
            status,
            location,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}
