//! The server's log as an operator reads it: `[log] format = "json"` gives
//! one JSON object per line, every line written while a request is served
//! names its `X-Request-Id` (and the `traceparent`'s trace id), and each
//! request ends with one access line saying what it came to.

use std::process::Command;

use serde_json::Value;

use crate::support::*;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

#[test]
fn json_logs_name_the_request_id_the_answer_carries() {
    let t = Tessera::start(&(base_config("ES256") + "\n[log]\nformat = \"json\"\n"));
    let form = [
        ("grant_type", "client_credentials"),
        ("audience", ORDERS),
        ("scope", "read:orders"),
    ];
    let token = |id: Option<&str>| {
        let mut req = reqwest::blocking::Client::new()
            .post(t.url("/oauth/token"))
            .basic_auth("acme-sync", Some(ACME_SECRET))
            .header("traceparent", format!("00-{TRACE}-00f067aa0ba902b7-01"))
            .form(&form);
        if let Some(id) = id {
            req = req.header("x-request-id", id);
        }
        let r = req.send().expect("token request");
        assert_eq!(r.status(), 200);
        r.headers()["x-request-id"]
            .to_str()
            .expect("ascii")
            .to_owned()
    };
    assert_eq!(
        token(Some("lb-7f3a.1")),
        "lb-7f3a.1",
        "the caller's id is kept"
    );
    let made = token(None);
    let replaced = token(Some("not a <sane> id"));
    assert!(!made.is_empty() && made != replaced, "{made} {replaced}");
    assert_ne!(replaced, "not a <sane> id");

    let log = t.log();
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() > 3, "{log}");
    for line in &lines {
        for field in ["timestamp", "level", "target"] {
            assert!(line[field].is_string(), "{field} in {line}");
        }
    }
    let issued: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "issued access token")
        .collect();
    assert_eq!(issued.len(), 3, "{log}");
    let ids: Vec<&str> = issued
        .iter()
        .map(|l| l["span"]["request_id"].as_str().expect("request_id"))
        .collect();
    assert_eq!(ids, ["lb-7f3a.1", made.as_str(), replaced.as_str()]);
    for l in &issued {
        assert_eq!(l["span"]["trace_id"], TRACE, "{l}");
        assert_eq!(l["span"]["path"], "/oauth/token", "{l}");
    }
    // One access line per request, with what the request came to.
    let served: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target"] == "tessera::access")
        .collect();
    assert_eq!(served.len(), 3, "{log}");
    for l in &served {
        assert_eq!(l["message"], "request served", "{l}");
        assert_eq!(l["level"], "INFO", "{l}");
        assert_eq!(l["status"], 200, "{l}");
        assert_eq!(l["client_id"], "acme-sync", "{l}");
        assert_eq!(l["grant"], "client_credentials", "{l}");
        assert_eq!(l["outcome"], "ok", "{l}");
        assert!(l["duration_us"].as_u64().is_some(), "{l}");
    }
    assert_eq!(served[0]["span"]["request_id"], "lb-7f3a.1");
    assert!(!log.contains(ACME_SECRET), "no secret in the log");
}

#[test]
fn a_log_format_that_does_not_exist_is_named() {
    let (_dir, path) = write_config(&(base_config("ES256") + "\n[log]\nformat = \"xml\"\n"));
    let (ok, _, err) = run_tessera(&["check", "--config", &path]);
    assert!(!ok);
    assert!(err.contains("log") && err.contains("xml"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["check", "--config", &path])
        .env("TESSERA_LOG_FORMAT", "yaml")
        .output()
        .expect("tessera check");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("TESSERA_LOG_FORMAT: \"yaml\" is not a log format; use text or json"),
        "{err}"
    );
}
