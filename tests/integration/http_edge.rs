//! The HTTP edge under hostile clients (docs/reliability.md, "HTTP hardening"
//! and "Error format"): header limits, slow clients, bodies that never end,
//! and client ids and credentials built to confuse. Raw TCP where a normal
//! HTTP client would refuse to send what the test needs.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::*;

fn addr(t: &Tessera) -> String {
    t.base.trim_start_matches("http://").to_owned()
}

/// Sends `request` and reads until the server closes or `limit` passes;
/// returns what came back.
fn exchange(t: &Tessera, request: &[u8], limit: Duration) -> String {
    let mut s = TcpStream::connect(addr(t)).expect("connect");
    s.set_read_timeout(Some(limit)).expect("timeout");
    s.write_all(request).expect("write");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn status_of(response: &str) -> u16 {
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {response:?}"))
}

fn token_ok(t: &Tessera) {
    let claims = t.verify(t.acme(&[("audience", ORDERS)]).access_token(), ORDERS);
    assert_eq!(claims["client_id"], "acme-sync");
}

#[test]
fn too_many_or_too_large_headers_get_431() {
    let t = Tessera::start(&base_config("ES256"));
    let mut many = String::from("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    for i in 0..120 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("Connection: close\r\n\r\n");
    let reply = exchange(&t, many.as_bytes(), Duration::from_secs(5));
    assert_eq!(status_of(&reply), 431, "{reply}");

    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(80 * 1024)
    );
    let reply = exchange(&t, big.as_bytes(), Duration::from_secs(5));
    assert_eq!(status_of(&reply), 431, "{reply}");

    let fine = exchange(
        &t,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    );
    assert_eq!(status_of(&fine), 200);
    token_ok(&t);
}

#[test]
fn slow_header_senders_are_cut_off_and_others_are_served() {
    // The deadline is long enough that the normal clients below finish well
    // inside it, even on a loaded machine: what this checks is that they are
    // served while the slow connections are all still held, not how fast.
    let config = base_config("ES256") + "\n[server.limits]\nheader_read_timeout_ms = 3000\n";
    let t = Tessera::start(&config);
    // 1,000 connections that start a request and never finish its headers.
    let slow: Vec<TcpStream> = (0..1000)
        .map(|_| {
            let mut s = TcpStream::connect(addr(&t)).expect("connect");
            s.write_all(b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .expect("write");
            s
        })
        .collect();
    // Meanwhile, normal clients are served...
    for _ in 0..10 {
        token_ok(&t);
    }
    // ... before the last slow connection's deadline has passed: they did
    // not wait for the slow ones to go.
    let last = slow.last().expect("slow connections");
    last.set_nonblocking(true).expect("nonblocking");
    let mut probe = [0u8; 1];
    let early = (&*last).read(&mut probe);
    assert!(
        matches!(&early, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the normal clients were served only after the slow connections' deadline: {early:?}"
    );
    last.set_nonblocking(false).expect("blocking");
    // Each slow connection is answered 408 once the deadline passes, and closed.
    let started = Instant::now();
    for mut s in slow {
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut out = Vec::new();
        let read = s.read_to_end(&mut out);
        assert!(read.is_ok(), "a slow connection was left open: {read:?}");
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HTTP/1.1 408 "), "{text}");
        assert!(text.contains("\"error\":\"invalid_request\""), "{text}");
        assert!(text.contains("not received within 3000 ms"), "{text}");
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    token_ok(&t);

    // A keep-alive connection left idle after its answer is closed without
    // a word: a 408 there could pass for the answer to its next request.
    let mut idle = TcpStream::connect(addr(&t)).expect("connect");
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let mut first = [0u8; 512];
    let n = idle.read(&mut first).expect("the answer");
    assert!(first[..n].starts_with(b"HTTP/1.1 200"));
    let mut rest = Vec::new();
    idle.read_to_end(&mut rest).expect("closed");
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
}

/// Python's urllib writes the whole body before it reads; a refused body must
/// still reach it as a 413, not as a connection reset.
#[test]
fn a_client_that_writes_a_large_body_before_reading_gets_its_413() {
    let t = Tessera::start(&base_config("ES256"));
    let body = vec![b'a'; 10 * 1024 * 1024];
    for path in ["/oauth/token", "/oauth/introspect", "/login"] {
        let mut s = TcpStream::connect(addr(&t)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).expect("write the head");
        s.write_all(&body)
            .unwrap_or_else(|e| panic!("{path}: the server stopped reading: {e}"));
        let mut out = Vec::new();
        s.read_to_end(&mut out)
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        let text = String::from_utf8_lossy(&out);
        assert_eq!(status_of(&text), 413, "{path}: {text}");
        assert!(
            text.to_ascii_lowercase().contains("connection: close"),
            "{text}"
        );
    }
    token_ok(&t);
}

#[test]
fn a_body_shorter_than_its_length_times_out_and_an_endless_one_is_cut() {
    let config = base_config("ES256") + "\n[server.limits]\nrequest_timeout_ms = 500\n";
    let t = Tessera::start(&config);

    // Content-Length says 100; 10 bytes come, then nothing.
    let started = Instant::now();
    let reply = exchange(
        &t,
        b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type",
        Duration::from_secs(10),
    );
    assert_eq!(status_of(&reply), 408, "{reply}");
    assert!(reply.contains("\"error\":\"invalid_request\""), "{reply}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // A chunked body that goes on: refused once past the body limit.
    let mut s = TcpStream::connect(addr(&t)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n")
        .expect("write");
    let chunk = format!("1000\r\n{}\r\n", "a".repeat(0x1000));
    for _ in 0..64 {
        if s.write_all(chunk.as_bytes()).is_err() {
            break; // the server stopped reading: it has answered
        }
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let reply = String::from_utf8_lossy(&out);
    assert_eq!(status_of(&reply), 413, "{reply}");
    token_ok(&t);
}

/// Every character of an `error_description` is one RFC 6749 §5.2 allows.
fn description_is_clean(body: &str) {
    let v: serde_json::Value = serde_json::from_str(body).expect("JSON error body");
    let d = v["error_description"].as_str().unwrap_or("");
    assert!(
        d.chars()
            .all(|c| matches!(c, '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e')),
        "error_description has a forbidden character: {d:?}"
    );
}

#[test]
fn hostile_client_ids_are_invalid_client_and_never_5xx() {
    let t = Tessera::start(&base_config("ES256"));
    let http = reqwest::blocking::Client::new();
    let ids = [
        "acme\0sync",
        "acme-sync\u{202e}",
        "\u{0430}cme-sync", // Cyrillic а
        "acme\r\nX-Injected: 1",
        "acme\"sync\\",
        "acme\tsync",
        &"x".repeat(10_000),
    ];
    for id in ids {
        let reply = http
            .post(t.url("/oauth/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("client_secret", ACME_SECRET),
            ])
            .send()
            .expect("send");
        let status = reply.status().as_u16();
        let body = reply.text().expect("body");
        assert!(matches!(status, 400 | 401), "{id:?}: {status} {body}");
        assert!(
            body.contains("\"error\":\"invalid_client\"")
                || body.contains("\"error\":\"invalid_request\""),
            "{id:?}: {body}"
        );
        description_is_clean(&body);
    }
    // Overlong UTF-8 for "/" and a lone continuation byte, percent-encoded.
    for raw in ["client_id=%C0%AF", "client_id=%80acme"] {
        let body = format!("grant_type=client_credentials&{raw}&client_secret=x");
        let reply = http
            .post(t.url("/oauth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .expect("send");
        let status = reply.status().as_u16();
        let text = reply.text().expect("body");
        assert!(matches!(status, 400 | 401), "{raw}: {status} {text}");
        description_is_clean(&text);
    }
    token_ok(&t);
    let log = t.log();
    assert!(
        !log.contains('\u{202e}'),
        "a raw bidi override reached the log"
    );
    assert!(!log.contains('\0'), "a raw NUL reached the log");
    assert!(
        !log.contains("\nX-Injected"),
        "a client id split a log line"
    );
}

#[test]
fn malformed_basic_credentials_are_401_invalid_client() {
    let t = Tessera::start(&base_config("ES256"));
    let form = "grant_type=client_credentials&audience=https%3A%2F%2Forders.example.com";
    let authorizations = [
        "Basic bm9jb2xvbg==".to_owned(), // "nocolon"
        "Basic !!!not-base64!!!".to_owned(),
        format!("Basic {}", "QUFB".repeat(2500)), // 10 KB
        "Basic".to_owned(),
        "Bearer abc".to_owned(),
    ];
    for authorization in &authorizations {
        let request = format!(
            "POST /oauth/token HTTP/1.1\r\nHost: x\r\nAuthorization: {authorization}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        );
        let reply = exchange(&t, request.as_bytes(), Duration::from_secs(5));
        let status = status_of(&reply);
        assert!(
            status == 401 || status == 400,
            "{authorization:.40}: {reply}"
        );
        assert!(
            reply.contains("invalid_client") || reply.contains("invalid_request"),
            "{reply}"
        );
    }
    // Two Authorization headers.
    let request = format!(
        "POST /oauth/token HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YTpi\r\nAuthorization: Basic Yzpk\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
        form.len()
    );
    let reply = exchange(&t, request.as_bytes(), Duration::from_secs(5));
    assert_eq!(status_of(&reply), 401, "{reply}");
    assert!(reply.contains("invalid_client"), "{reply}");
    token_ok(&t);
}

#[test]
fn limits_are_checked_by_name() {
    let (_dir, path) = write_config(
        &(base_config("ES256") + "\n[server.limits]\nmax_headers = 2\nrequest_timeout_ms = 0\n"),
    );
    let (ok, _, err) = run_tessera(&["check", "--config", &path]);
    assert!(!ok);
    assert!(err.contains("server.limits.max_headers"), "{err}");
    assert!(err.contains("server.limits.request_timeout_ms"), "{err}");
}

#[test]
fn http_1_1_needs_exactly_one_host_header() {
    let t = Tessera::start(&base_config("ES256"));
    for (request, why) in [
        (
            &b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n"[..],
            "no Host",
        ),
        (
            b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
            "two Hosts",
        ),
        (
            b"GET /healthz HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
            "two Hosts in HTTP/1.0",
        ),
    ] {
        let reply = exchange(&t, request, Duration::from_secs(5));
        assert_eq!(status_of(&reply), 400, "{why}: {reply}");
        assert!(reply.contains("RFC 9112"), "{why}: {reply}");
    }
    // HTTP/1.0 may leave Host out.
    let old = exchange(&t, b"GET /healthz HTTP/1.0\r\n\r\n", Duration::from_secs(5));
    assert_eq!(status_of(&old), 200, "{old}");
    token_ok(&t);
}

#[test]
fn errors_echo_at_most_a_short_piece_of_the_request() {
    let t = Tessera::start(&base_config("ES256"));
    let long_scope = "s".repeat(14_000);
    let long_api = format!("https://{}.example.com", "a".repeat(10_000));
    let long_grant = "g".repeat(10_000);
    for (form, error) in [
        (
            vec![
                ("grant_type", "client_credentials"),
                ("audience", ORDERS),
                ("scope", long_scope.as_str()),
            ],
            "invalid_scope",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("audience", long_api.as_str()),
            ],
            "invalid_target",
        ),
        (
            vec![("grant_type", long_grant.as_str())],
            "unsupported_grant_type",
        ),
    ] {
        let reply = t.token(Some(("acme-sync", ACME_SECRET)), &form);
        let description = reply.expect_error(400, error);
        assert!(
            description.len() < 200,
            "{error}: {} bytes",
            description.len()
        );
    }
}
