//! The server's log as an operator reads it: `[log] format = "json"` gives
//! one JSON object per line, every line written while a request is served
//! names its `X-Request-Id` (and the `traceparent`'s trace id), and each
//! request ends with one access line saying what it came to.

use std::process::Command;
use std::time::Duration;

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

/// `[log] audit = FILE`: who got which token, a failed client
/// authentication and an admin call, as JSON lines in a file of their own
/// and not in the log; a folder that does not exist is named by
/// `tessera check`.
#[test]
fn audit_events_go_to_their_own_file() {
    let admin = format!(
        "\n[[apis]]\nidentifier = \"urn:tessera:admin\"\nscopes = [\"tessera:traces:read\"]\n\
         \n[[clients]]\nid = \"ops\"\napp_type = \"machine\"\nsecret_hash = \"{}\"\n\
         \n[[grants]]\nclient = \"ops\"\napi = \"urn:tessera:admin\"\nscopes = [\"tessera:traces:read\"]\n",
        hash(GLOBEX_SECRET)
    );
    let t = Tessera::start(&(base_config("ES256") + "\n[log]\naudit = \"audit.log\"\n" + &admin));
    let issued = t.acme(&[("audience", ORDERS), ("scope", "read:orders")]);
    let jti = claims_unverified(issued.access_token())["jti"]
        .as_str()
        .expect("jti")
        .to_owned();
    t.token(
        Some(("acme-sync", "not-the-secret")),
        &[("grant_type", "client_credentials")],
    )
    .expect_error(401, "invalid_client");
    let ops = t.token(
        Some(("ops", GLOBEX_SECRET)),
        &[
            ("grant_type", "client_credentials"),
            ("audience", "urn:tessera:admin"),
        ],
    );
    let r = reqwest::blocking::Client::new()
        .get(t.url("/admin/traces"))
        .bearer_auth(ops.access_token())
        .send()
        .expect("GET");
    assert_eq!(r.status(), 200);

    let path = t.dir.path().join("audit.log");
    let events = || -> Vec<Value> {
        std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    };
    // Written by a background thread: wait for the last one.
    assert!(
        wait_for(Duration::from_secs(5), || events()
            .iter()
            .any(|e| e["event"] == "admin_call")),
        "{:?}",
        events()
    );
    let events = events();
    let find = |name: &str| {
        events
            .iter()
            .find(|e| e["event"] == name)
            .unwrap_or_else(|| panic!("no {name} in {events:?}"))
            .clone()
    };
    let issued = find("token_issued");
    assert_eq!(issued["target"], "tessera::audit");
    assert_eq!(issued["client_id"], "acme-sync");
    assert_eq!(issued["grant"], "client_credentials");
    assert_eq!(issued["audience"], ORDERS);
    assert_eq!(issued["scope"], "read:orders");
    assert_eq!(issued["subject"], "acme-sync@clients");
    assert_eq!(issued["jti"], jti.as_str());
    assert!(issued["span"]["request_id"].is_string(), "{issued}");
    let failed = find("client_auth_failed");
    assert_eq!(failed["client_id"], "\"acme-sync\"");
    assert_eq!(failed["endpoint"], "/oauth/token");
    let call = find("admin_call");
    assert_eq!(call["endpoint"], "GET /admin/traces");
    assert_eq!(call["client_id"], "ops");
    assert_eq!(call["allowed"], true);
    assert!(
        !t.log().contains("token_issued"),
        "audit events stay out of the log"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path)
            .expect("audit file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let (_dir, config) =
        write_config(&(base_config("ES256") + "\n[log]\naudit = \"no/such/folder/audit.log\"\n"));
    let (ok, _, err) = run_tessera(&["check", "--config", &config]);
    assert!(!ok);
    assert!(
        err.contains("log.audit: the folder of") && err.contains("does not exist"),
        "{err}"
    );
}
