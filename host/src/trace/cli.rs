//! The work behind `tessera trace`: asking a running replica for its
//! decision traces over `GET /admin/traces` (with an admin token it is
//! given, or gets by client credentials) and printing each in a form a
//! person reads, or as the JSON lines the endpoint sends.

use std::fmt::Write as _;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, StatusCode};
use serde_json::Value;

use crate::config::{ADMIN_AUDIENCE, SCOPE_TRACES_READ};
use crate::plugin::compare::Difference;
use crate::tabular::utc;

/// What to ask for and how to print it.
#[derive(Debug, Clone)]
pub struct Query {
    /// The replica, `http://HOST:PORT` (its `server.listen`).
    pub base: String,
    /// Only this client's traces.
    pub client: Option<String>,
    /// Only those for this API.
    pub api: Option<String>,
    /// At most this many of the recent ones.
    pub limit: usize,
    /// One trace, by `jti` or request id.
    pub id: Option<String>,
    /// Keep printing new traces as they come.
    pub follow: bool,
    /// Print the JSON lines as they come instead of the readable form.
    pub json: bool,
}

/// How `tessera trace` proves it may read traces.
pub enum Credentials {
    /// An admin access token (`TESSERA_ADMIN_TOKEN`).
    Token(String),
    /// An admin client's id and secret, to get a token with.
    Client {
        /// The client id.
        id: String,
        /// Its secret.
        secret: String,
    },
}

/// Why `tessera trace` failed, phrased for the person who typed it.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The replica could not be reached.
    #[error("cannot reach {base}: {error}")]
    Connect {
        /// The address.
        base: String,
        /// What failed.
        error: String,
    },
    /// The replica answered with an error.
    #[error("{what}: {status} {body}")]
    Refused {
        /// What was asked.
        what: String,
        /// The status.
        status: StatusCode,
        /// What it said.
        body: String,
    },
    /// Writing to standard output failed (a closed pipe).
    #[error("writing the output: {0}")]
    Output(#[from] std::io::Error),
}

/// Fetches the traces `query` asks for and prints them to `out`; with
/// `follow`, until the replica goes away.
pub async fn run(
    query: &Query,
    credentials: Credentials,
    out: &mut dyn std::io::Write,
) -> Result<(), TraceError> {
    let token = match credentials {
        Credentials::Token(t) => t,
        Credentials::Client { id, secret } => admin_token(&query.base, &id, &secret).await?,
    };
    let path = match &query.id {
        Some(id) => format!("/admin/traces/{}", encode(id)),
        None => {
            let mut pairs = form_urlencoded::Serializer::new(String::new());
            pairs.append_pair("limit", &query.limit.to_string());
            if let Some(c) = &query.client {
                pairs.append_pair("client", c);
            }
            if let Some(a) = &query.api {
                pairs.append_pair("api", a);
            }
            if query.follow {
                pairs.append_pair("follow", "true");
            }
            format!("/admin/traces?{}", pairs.finish())
        }
    };
    let request = Request::get(&path)
        .header(hyper::header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .map_err(|e| connect_error(&query.base, e))?;
    let response = send(&query.base, request).await?;
    let status = response.status();
    let mut body = response.into_body();
    if status != StatusCode::OK {
        let text = body
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
            .unwrap_or_default();
        return Err(TraceError::Refused {
            what: format!("GET {path}"),
            status,
            body: text,
        });
    }
    if !query.follow {
        let bytes = body
            .collect()
            .await
            .map_err(|e| connect_error(&query.base, e))?
            .to_bytes();
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let traces = match value.get("traces").and_then(Value::as_array) {
            Some(list) => list.iter().rev().cloned().collect(),
            None => vec![value],
        };
        for trace in &traces {
            print(out, trace, query.json)?;
        }
        return Ok(());
    }
    // Follow: NDJSON, one trace a line, as long as the replica keeps sending.
    let mut pending = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| connect_error(&query.base, e))?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        pending.extend_from_slice(data);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            if let Ok(trace) = serde_json::from_slice::<Value>(&line) {
                print(out, &trace, query.json)?;
            }
        }
    }
    Ok(())
}

fn print(out: &mut dyn std::io::Write, trace: &Value, json: bool) -> std::io::Result<()> {
    if json {
        writeln!(out, "{trace}")?;
    } else {
        write!(out, "{}", render(trace))?;
    }
    out.flush()
}

/// An admin token for reading traces, by client credentials.
async fn admin_token(base: &str, id: &str, secret: &str) -> Result<String, TraceError> {
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair("client_id", id)
        .append_pair("client_secret", secret)
        .append_pair("audience", ADMIN_AUDIENCE)
        .append_pair("scope", SCOPE_TRACES_READ)
        .finish();
    let request = Request::post("/oauth/token")
        .header(
            hyper::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(Full::new(Bytes::from(form)))
        .map_err(|e| connect_error(base, e))?;
    let response = send(base, request).await?;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| connect_error(base, e))?
        .to_bytes();
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    match value.get("access_token").and_then(Value::as_str) {
        Some(t) if status == StatusCode::OK => Ok(t.to_owned()),
        _ => Err(TraceError::Refused {
            what: format!(
                "an admin token for client {id:?} (audience {ADMIN_AUDIENCE}, scope {SCOPE_TRACES_READ})"
            ),
            status,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }),
    }
}

/// One request on a new HTTP/1.1 connection to `base` (`http://HOST:PORT`).
async fn send(
    base: &str,
    mut request: Request<Full<Bytes>>,
) -> Result<hyper::Response<hyper::body::Incoming>, TraceError> {
    let authority = base
        .strip_prefix("http://")
        .unwrap_or(base)
        .trim_end_matches('/');
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| connect_error(base, e))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| connect_error(base, e))?;
    tokio::spawn(connection);
    if let Ok(host) = hyper::header::HeaderValue::from_str(authority) {
        request.headers_mut().insert(hyper::header::HOST, host);
    }
    sender
        .send_request(request)
        .await
        .map_err(|e| connect_error(base, e))
}

fn connect_error(base: &str, error: impl std::fmt::Display) -> TraceError {
    TraceError::Connect {
        base: base.to_owned(),
        error: error.to_string(),
    }
}

fn encode(segment: &str) -> String {
    form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}

/// A trace as a person reads it: a headline, the policy, each plugin with
/// its changes and logs, and what the token ended up with.
pub fn render(t: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
    let list = |v: &Value| match v.as_array() {
        Some(items) if !items.is_empty() => items
            .iter()
            .map(|i| i.as_str().unwrap_or("?"))
            .collect::<Vec<_>>()
            .join(" "),
        Some(_) => "(none)".to_owned(),
        None => "(all)".to_owned(),
    };
    let d = &t["decision"];
    let mut out = String::new();
    let outcome = match s(&t["outcome"]["result"]).as_str() {
        "issued" => "issued".to_owned(),
        _ => format!(
            "refused {}: {}",
            s(&t["outcome"]["error"]),
            s(&t["outcome"]["description"])
        ),
    };
    let _ = writeln!(
        out,
        "{}  {} {}  {} -> {}  {}  {} us",
        utc(t["at"].as_u64().unwrap_or(0)),
        s(&t["kind"]),
        t["grant"].as_str().unwrap_or("-"),
        t["client"].as_str().unwrap_or("(unauthenticated)"),
        d["api"].as_str().unwrap_or("(no API)"),
        outcome,
        t["micros"].as_u64().unwrap_or(0),
    );
    let _ = writeln!(
        out,
        "  id        {}  request {}",
        s(&t["id"]),
        s(&t["request_id"])
    );
    if let Some(sub) = t["subject"].as_str() {
        let _ = writeln!(out, "  subject   {sub}");
    }
    if let Some(sign_in) = t["sign_in"].as_str() {
        let _ = writeln!(
            out,
            "  sign-in   {sign_in} (its trace holds the authorize stage)"
        );
    }
    if let Some(rule) = d["rule"].as_str() {
        let _ = writeln!(
            out,
            "  policy    {rule}; ceiling: {}; requested: {}; granted: {}",
            list(&d["ceiling"]),
            list(&d["requested"]),
            list(&d["granted"])
        );
    }
    for run in d["plugins"].as_array().into_iter().flatten() {
        let sha = s(&run["sha256"]);
        let reason = run["outcome"]["reason"]
            .as_str()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  plugin    {} sha256:{}  {}  {}{}  {} us",
            s(&run["plugin"]),
            sha.get(..12).unwrap_or(&sha),
            s(&run["stage"]),
            s(&run["outcome"]["kind"]),
            reason,
            run["micros"].as_u64().unwrap_or(0)
        );
        for change in run["changed"].as_array().into_iter().flatten() {
            let _ = writeln!(out, "              {}", change.as_str().unwrap_or(""));
        }
        for log in run["logs"].as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
                "              log {}: {}",
                s(&log["level"]),
                s(&log["message"])
            );
        }
    }
    for run in t["shadows"].as_array().into_iter().flatten() {
        let sha = s(&run["sha256"]);
        let _ = writeln!(
            out,
            "  shadow    {} sha256:{}  {}  {} → {}  {} us (live {} us)",
            s(&run["plugin"]),
            sha.get(..12).unwrap_or(&sha),
            s(&run["result"]),
            s(&run["live"]),
            s(&run["candidate"]),
            run["micros"].as_u64().unwrap_or(0),
            run["live_micros"].as_u64().unwrap_or(0)
        );
        for difference in run["differences"].as_array().into_iter().flatten() {
            if let Ok(d) = serde_json::from_value::<Difference>(difference.clone()) {
                let _ = writeln!(out, "              {d}");
            }
        }
    }
    if t["outcome"]["result"] == "issued" {
        let _ = writeln!(out, "  scopes    {}", list(&d["scopes"]));
        if let Some(claims) = d["claims"].as_object().filter(|c| !c.is_empty()) {
            let _ = writeln!(out, "  claims    {}", Value::Object(claims.clone()));
        }
        if let Some(claims) = d["id_claims"].as_object().filter(|c| !c.is_empty()) {
            let _ = writeln!(out, "  id claims {}", Value::Object(claims.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_reads_as_its_decision() {
        let t = serde_json::json!({
            "id": "jti-1", "at": 0, "request_id": "r-1", "kind": "token",
            "grant": "client_credentials", "client": "acme-sync", "subject": "acme-sync@clients",
            "decision": {
                "api": "https://orders.example.com",
                "rule": "client_access = require_client_grant",
                "ceiling": ["read:orders", "write:orders"], "requested": null,
                "granted": ["read:orders", "write:orders"],
                "plugins": [{
                    "plugin": "client-claims", "sha256": "0123456789abcdef", "stage": "credentials-exchange",
                    "micros": 41, "outcome": {"kind": "applied"},
                    "changed": ["set https://claims.example.com/partner"],
                    "logs": [{"level": "info", "message": "partner acme"}]
                }],
                "scopes": ["read:orders"], "claims": {"https://claims.example.com/partner": "acme"}
            },
            "outcome": {"result": "issued"}, "micros": 312
        });
        let text = render(&t);
        for line in [
            "1970-01-01 00:00:00  token client_credentials  acme-sync -> https://orders.example.com  issued  312 us",
            "  policy    client_access = require_client_grant; ceiling: read:orders write:orders; requested: (all); granted: read:orders write:orders",
            "  plugin    client-claims sha256:0123456789ab  credentials-exchange  applied  41 us",
            "              set https://claims.example.com/partner",
            "              log info: partner acme",
            "  scopes    read:orders",
            "  claims    {\"https://claims.example.com/partner\":\"acme\"}",
        ] {
            assert!(text.contains(line), "{line:?} in\n{text}");
        }
    }
}
