//! `tessera:egress@0.1.0` (`wit/egress/0.1.0/egress.wit`): a whole HTTP
//! request in, a whole response out, through the same checks as
//! `wasi:http` ([`crate::plugin::egress::send`]). Each request leaves a line
//! in the call's log (so in its trace): method, origin and path, and the
//! status or why there is none.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use wasmtime::component::{HasSelf, Linker};
use wasmtime_wasi_http::{DEFAULT_FORBIDDEN_HEADERS, Error, RequestOptions};

use crate::plugin::egress::{Egress, describe};
use crate::plugin::engine::PluginState;

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/egress/0.1.0/egress.wit",
        world: "egress",
        imports: { default: async | trappable },
    });
}

use bindings::tessera::egress::http;

/// Whether the host refuses a header from a plugin: the ones wasi:http
/// refuses (it writes `host` itself; the connection's own headers are
/// hyper's), and `content-length`, which comes from the body.
fn set_by_host(name: &::http::HeaderName) -> bool {
    name == ::http::header::CONTENT_LENGTH || DEFAULT_FORBIDDEN_HEADERS.contains(name)
}

/// Adds the `http` interface to `linker`.
pub fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    http::add_to_linker::<PluginState, HasSelf<PluginState>>(linker, |s| s)
}

impl http::Host for PluginState {
    async fn send(
        &mut self,
        request: http::Request,
    ) -> wasmtime::Result<Result<http::Response, http::Error>> {
        let started = Instant::now();
        let shown = format!("{} {}", request.method, without_query(&request.url));
        let result = match build(request) {
            Ok((built, options)) => fetch(self.egress().clone(), built, options).await,
            Err(why) => Err(http::Error::Invalid(why)),
        };
        let took = started.elapsed().as_millis();
        let line = match &result {
            Ok(response) => format!(
                "egress {shown} → {} ({} bytes, {took} ms)",
                response.status,
                response.body.len()
            ),
            Err(error) => format!("egress {shown} failed: {} ({took} ms)", message(error)),
        };
        self.log("info", line);
        Ok(result)
    }
}

/// The URL up to its query: what the log shows (queries carry tokens).
fn without_query(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

fn message(error: &http::Error) -> String {
    match error {
        http::Error::Denied(m)
        | http::Error::Timeout(m)
        | http::Error::Invalid(m)
        | http::Error::Failed(m) => m.clone(),
        http::Error::TooLarge(limit) => {
            format!("the response is larger than {limit} bytes (egress_max_bytes)")
        }
    }
}

/// The request as wasi:http hands it to the host, or why it is malformed.
fn build(
    request: http::Request,
) -> Result<
    (
        ::http::Request<wasmtime_wasi_http::WasiBody>,
        RequestOptions,
    ),
    String,
> {
    let uri: ::http::Uri = request
        .url
        .parse()
        .map_err(|e| format!("the URL {:?} is not valid ({e})", request.url))?;
    let authority = uri
        .authority()
        .ok_or_else(|| format!("the URL {:?} is not absolute", request.url))?
        .clone();
    let method = ::http::Method::from_bytes(request.method.as_bytes())
        .map_err(|_| format!("{:?} is not an HTTP method", request.method))?;
    let mut builder = ::http::Request::builder()
        .method(method)
        .uri(uri)
        .header(::http::header::HOST, authority.as_str());
    for (name, value) in &request.headers {
        let name = ::http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("{name:?} is not a header name"))?;
        if set_by_host(&name) {
            return Err(format!("the {name} header is set by Tessera"));
        }
        let value = ::http::HeaderValue::from_str(value)
            .map_err(|_| format!("the value of the {name} header is not valid"))?;
        builder = builder.header(name, value);
    }
    let body = Full::new(Bytes::from(request.body.unwrap_or_default()))
        .map_err(|never| match never {})
        .boxed_unsync();
    let built = builder.body(body).map_err(|e| e.to_string())?;
    let timeout = request
        .timeout_ms
        .map(|ms| Duration::from_millis(ms.into()));
    let options = RequestOptions {
        connect_timeout: timeout,
        first_byte_timeout: timeout,
        between_bytes_timeout: timeout,
    };
    Ok((built, options))
}

/// Sends `request` under `egress` and reads the whole response.
async fn fetch(
    egress: Egress,
    request: ::http::Request<wasmtime_wasi_http::WasiBody>,
    options: RequestOptions,
) -> Result<http::Response, http::Error> {
    let whole = options.first_byte_timeout;
    let exchange = async {
        let (response, mut connection) = egress.send(request, Some(options)).await?;
        let (parts, body) = response.into_parts();
        let body = connection.while_doing(body.collect()).await?;
        Ok::<_, Error>((parts, body.to_bytes()))
    };
    let exchanged = match whole {
        Some(limit) => tokio::time::timeout(limit, exchange)
            .await
            .unwrap_or(Err(Error::ConnectionReadTimeout)),
        None => exchange.await,
    };
    let (parts, body) = exchanged.map_err(|e| classify(&e))?;
    Ok(http::Response {
        status: parts.status.as_u16(),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    })
}

/// The WIT case of a wasi:http error.
fn classify(error: &Error) -> http::Error {
    let text = describe(error);
    match error {
        Error::HttpRequestDenied | Error::DestinationIpProhibited => http::Error::Denied(text),
        Error::ConnectionTimeout
        | Error::ConnectionReadTimeout
        | Error::ConnectionWriteTimeout
        | Error::HttpResponseTimeout
        | Error::DnsTimeout => http::Error::Timeout(text),
        Error::HttpResponseBodySize(limit) => http::Error::TooLarge(limit.unwrap_or_default()),
        Error::HttpRequestUriInvalid | Error::HttpRequestMethodInvalid => {
            http::Error::Invalid(text)
        }
        _ => http::Error::Failed(text),
    }
}
