//! A test fixture: sends `GET` config `url` through
//! `wasi:http/outgoing-handler`, following up to config `follow` redirects
//! (default 0: a redirect is an answer), and puts what came back into the
//! access token: `status`, `bytes` and `body` (its first 64 bytes), or
//! `error` (the wasi:http error code, as `Debug` prints it) and `hops`.

use tessera_plugin_sdk::{Changes, Context, CredentialsExchangeEvent, Denial, Plugin};
use wasi::http::outgoing_handler;
use wasi::http::types::{ErrorCode, Fields, Method, OutgoingRequest, Scheme};
use wasi::io::streams::StreamError;

/// The fixture.
pub struct Fetch;

/// What one request brought back.
struct Answer {
    status: u16,
    location: Option<String>,
    body: Vec<u8>,
}

fn get(url: &str) -> Result<Answer, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("not an absolute URL: {url}"))?;
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_owned()),
    };
    let set = [
        request.set_method(&Method::Get),
        request.set_scheme(Some(&scheme)),
        request.set_authority(Some(authority)),
        request.set_path_with_query(Some(path)),
    ];
    if set.iter().any(Result::is_err) {
        return Err(format!("cannot make a request of {url}"));
    }
    let future = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    future.subscribe().block();
    let response = match future.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(e))) => return Err(format!("{e:?}")),
        Some(Err(())) | None => return Err("no response".into()),
    };
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .first()
        .map(|v| String::from_utf8_lossy(v).into_owned());
    let incoming = response.consume().map_err(|()| "no body")?;
    let stream = incoming.stream().map_err(|()| "no body stream")?;
    let mut body = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => body.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                let code: Option<ErrorCode> = wasi::http::types::http_error_code(&e);
                return Err(code.map_or_else(|| e.to_debug_string(), |c| format!("{c:?}")));
            }
        }
    }
    drop(stream);
    drop(incoming);
    Ok(Answer {
        status,
        location,
        body,
    })
}

impl Plugin for Fetch {
    fn on_credentials_exchange(
        _event: &CredentialsExchangeEvent,
        ctx: &Context,
    ) -> Result<Changes, Denial> {
        let mut changes = Changes::default();
        let mut url = ctx.config("url").unwrap_or_default();
        let follow: u32 = ctx
            .config("follow")
            .and_then(|f| f.parse().ok())
            .unwrap_or(0);
        let mut hops = 0;
        let outcome = loop {
            match get(&url) {
                Ok(Answer {
                    status: 301 | 302 | 303 | 307 | 308,
                    location: Some(next),
                    ..
                }) if hops < follow => {
                    hops += 1;
                    url = if next.starts_with('/') {
                        // Relative to the origin of the last URL.
                        let origin_end = url
                            .find("://")
                            .and_then(|at| url[at + 3..].find('/').map(|slash| at + 3 + slash))
                            .unwrap_or(url.len());
                        format!("{}{next}", &url[..origin_end])
                    } else {
                        next
                    };
                }
                other => break other,
            }
        };
        match outcome {
            Ok(answer) => {
                changes.set_access_token_claim("status", i64::from(answer.status));
                changes.set_access_token_claim("bytes", answer.body.len() as i64);
                let head = &answer.body[..answer.body.len().min(64)];
                changes.set_access_token_claim("body", String::from_utf8_lossy(head).into_owned());
            }
            Err(error) => {
                changes.set_access_token_claim("error", error);
            }
        }
        changes.set_access_token_claim("hops", i64::from(hops));
        Ok(changes)
    }
}

tessera_plugin_sdk::export!(Fetch, credentials_exchange);
