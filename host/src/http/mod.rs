//! The HTTP edge: the accept loop (hyper, with header-read timeouts, a
//! connection limit and graceful shutdown), routing, and the one place where
//! an [`OAuthError`](crate::oauth::OAuthError) becomes an RFC 6749 response.
//!
//! Handlers are thin: they turn HTTP into the typed inputs of [`crate::oauth`]
//! and [`crate::grants`] and their results back into HTTP.

pub mod admin;
pub mod authorize;
mod conn;
pub mod cors;
pub mod logout;
pub mod observe;
pub mod pages;
pub mod request_id;
pub mod response;
pub mod token;
pub mod token_ops;
pub mod userinfo;
pub mod well_known;

#[cfg(test)]
pub(crate) mod testing;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::Issuer;

/// In-flight requests get this long to finish at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The client's address: the peer, or, when the peer is one of
/// `server.trusted_proxies`, the address that proxy saw. `X-Forwarded-For` is
/// read from the right (each proxy appends the address it was reached from),
/// past the trusted proxies, and the first address not trusted is the
/// client's; a header that is missing or malformed there leaves the last
/// address that is known, so a client cannot choose its address by sending
/// the header itself.
pub fn client_ip(
    server: &crate::config::ServerConfig,
    peer: SocketAddr,
    headers: &axum::http::HeaderMap,
) -> std::net::IpAddr {
    let trusted = |ip: &std::net::IpAddr| server.trusted_proxies.iter().any(|n| n.contains(ip));
    let mut client = peer.ip();
    if !trusted(&client) {
        return client;
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.to_str().unwrap_or(""))
        .collect::<Vec<_>>()
        .join(",");
    for hop in forwarded.rsplit(',') {
        let Ok(ip) = hop.trim().parse::<std::net::IpAddr>() else {
            break;
        };
        client = ip;
        if !trusted(&ip) {
            break;
        }
    }
    client
}

/// The HTTP request as plugins see it: the client's IP ([`client_ip`]),
/// `User-Agent` and `Host` (each cut to 512 characters), method, and
/// parameters without secrets.
pub fn request_info(
    ip: std::net::IpAddr,
    headers: &axum::http::HeaderMap,
    method: &str,
    params: Vec<(String, String)>,
) -> crate::plugin::event::RequestInfo {
    let text = |name: axum::http::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(512).collect::<String>())
    };
    crate::plugin::event::RequestInfo {
        ip: ip.to_string(),
        user_agent: text(axum::http::header::USER_AGENT),
        hostname: text(axum::http::header::HOST).unwrap_or_default(),
        method: method.to_owned(),
        params,
    }
}

/// The routes.
pub fn router(issuer: Arc<Issuer>) -> Router {
    use axum::middleware::from_fn_with_state;
    let clients =
        |methods| from_fn_with_state(cors::Cors::clients(issuer.clone(), methods), cors::layer);
    let public = || from_fn_with_state(cors::Cors::public(issuer.clone()), cors::layer);
    let router = Router::new()
        .route(
            "/oauth/token",
            post(token::token)
                .fallback(response::method_not_allowed)
                .layer(clients("POST")),
        )
        .route(
            "/oauth/introspect",
            post(token_ops::introspect).fallback(response::method_not_allowed),
        )
        .route(
            "/oauth/revoke",
            post(token_ops::revoke)
                .fallback(response::method_not_allowed)
                .layer(clients("POST")),
        )
        .route("/admin/plugins", get(admin::plugins))
        .route("/admin/reload", post(admin::reload))
        .route("/admin/traces", get(admin::traces))
        .route("/admin/traces/{id}", get(admin::trace))
        .route("/authorize", get(authorize::authorize))
        .route("/login", post(authorize::login))
        .route("/consent", post(authorize::consent))
        .route("/oidc/logout", get(logout::get).post(logout::post))
        .route(
            "/userinfo",
            get(userinfo::userinfo)
                .post(userinfo::userinfo)
                .layer(clients("GET, POST")),
        )
        .route(
            "/.well-known/jwks.json",
            get(well_known::jwks).layer(public()),
        )
        .route(
            "/.well-known/openid-configuration",
            get(well_known::discovery).layer(public()),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(well_known::discovery).layer(public()),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz));
    // `[metrics] listen` moves /metrics to a listener of its own.
    let router = if issuer.snapshot().config.metrics.listen.is_none() {
        router.route("/metrics", get(well_known::metrics))
    } else {
        router
    };
    router
        .layer(axum::middleware::map_response_with_state(
            issuer.clone(),
            strict_transport,
        ))
        .layer(from_fn_with_state(issuer.clone(), observe::layer))
        .with_state(issuer)
}

/// How long a browser keeps to https for this host once told (a year, as
/// the HSTS preload list asks).
const HSTS: &str = "max-age=31536000";

/// `Strict-Transport-Security` on every answer of an https issuer (RFC 6797):
/// a browser that once reached it over TLS never sends it a cookie or a
/// password in the clear.
async fn strict_transport(State(issuer): State<Arc<Issuer>>, mut r: Response) -> Response {
    if issuer.snapshot().config.server.is_https() {
        r.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            header::HeaderValue::from_static(HSTS),
        );
    }
    r
}

/// How long `/readyz` waits for the store before it answers "not ready".
const READY_STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// `/readyz`: 200 when the store answers, else 503 with the reason. The
/// client-credentials path does not need the store, so this is stricter than
/// "can issue some tokens"; `/healthz` only says the process serves.
async fn readyz(State(issuer): State<Arc<Issuer>>) -> Response {
    let reason = match tokio::time::timeout(READY_STORE_TIMEOUT, issuer.store.ping()).await {
        Ok(Ok(())) => return "ready\n".into_response(),
        Ok(Err(e)) => format!("the store is unavailable: {e}"),
        Err(_) => format!(
            "the store did not answer within {} s",
            READY_STORE_TIMEOUT.as_secs()
        ),
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        format!("not ready: {reason}\n"),
    )
        .into_response()
}

/// How many finished TCP handshakes the kernel holds for the accept loop.
/// The standard library asks for 128; a burst of new connections larger than
/// that while the loop is busy has its handshakes dropped, and each of those
/// clients waits a second for its SYN to be sent again. 1024 is what nginx
/// and Go servers ask for (the kernel caps it at `net.core.somaxconn`).
pub const LISTEN_BACKLOG: u32 = 1024;

/// Binds `addr` for [`serve`], with [`LISTEN_BACKLOG`].
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As the standard library does: a restarted server binds while its old
    // connections to the port are still in TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// The routes of `[metrics] listen`: `/metrics` alone.
pub fn metrics_router(issuer: Arc<Issuer>) -> Router {
    Router::new()
        .route("/metrics", get(well_known::metrics))
        .with_state(issuer)
}

/// Serves `issuer` on `listener` until `shutdown` resolves, then lets in-flight
/// requests finish (up to [`SHUTDOWN_GRACE`]).
pub async fn serve(listener: TcpListener, issuer: Arc<Issuer>, shutdown: impl Future<Output = ()>) {
    let limits = issuer.snapshot().config.server.limits;
    serve_router(listener, router(issuer), limits, shutdown).await;
}

/// Serves `app` on `listener` with `limits` until `shutdown` resolves, then
/// lets in-flight requests finish (up to [`SHUTDOWN_GRACE`]).
pub async fn serve_router(
    listener: TcpListener,
    app: Router,
    limits: crate::config::HttpLimits,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut builder = hyper::server::conn::http1::Builder::new();
    // Headers: a deadline (slowloris; `conn` answers 408 when hyper gives
    // up), a count and, through the read buffer, a size (431).
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(limits.max_headers)
        .max_buf_size(64 * 1024);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let (socket, returned, linger) = conn::wrap(stream);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            let app = app.clone();
            let linger = linger.clone();
            let header_bytes: usize = req
                .headers()
                .iter()
                .map(|(name, value)| name.as_str().len() + value.len())
                .sum();
            let hosts = req.headers().get_all(header::HOST).iter().count();
            let host_ok = hosts == 1 || (hosts == 0 && req.version() < hyper::Version::HTTP_11);
            async move {
                if header_bytes > limits.max_header_bytes {
                    return Ok(response::headers_too_large(limits.max_header_bytes));
                }
                if !host_ok {
                    return Ok(response::bad_host(hosts));
                }
                // The whole request, body included, has a deadline: a client
                // that sends its body slowly (or less than its Content-Length)
                // cannot hold a connection.
                let response = tokio::time::timeout(
                    limits.request_timeout,
                    app.oneshot(req.map(axum::body::Body::new)),
                )
                .await;
                let mut response = match response {
                    Ok(r) => r.unwrap_or_else(|e| match e {}),
                    Err(_) => response::request_timeout(limits.request_timeout),
                };
                // A body refused unread: say the connection closes, and let
                // the client finish writing before it does (see `conn`).
                if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    response.headers_mut().insert(
                        header::CONNECTION,
                        header::HeaderValue::from_static("close"),
                    );
                    linger.set();
                }
                Ok::<_, Infallible>(response)
            }
        });
        let conn = builder.serve_connection(TokioIo::new(socket), service);
        let conn = graceful.watch(conn);
        let header_timeout = limits.header_read_timeout;
        tokio::spawn(async move {
            let ended = conn.await;
            if let Err(e) = &ended {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            returned.finish(&ended, header_timeout).await;
            drop(permit);
        });
    }
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("shutdown grace period over; closing remaining connections");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    /// A burst of a thousand connections is held by the kernel whole while
    /// nothing accepts them; with the standard library's 128, the rest of
    /// the handshakes would be dropped and their clients would wait.
    #[tokio::test]
    async fn a_burst_of_connections_waits_in_the_backlog() {
        let listener = super::bind(([127, 0, 0, 1], 0).into()).expect("bind");
        let addr = listener.local_addr().expect("address");
        let connected = tokio::task::spawn_blocking(move || {
            (0..1000)
                .map(|i| {
                    std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500))
                        .unwrap_or_else(|e| panic!("connection {i} was not taken: {e}"))
                })
                .collect::<Vec<_>>()
        })
        .await
        .expect("connect");
        assert_eq!(connected.len(), 1000);
        drop(listener);
    }
}
