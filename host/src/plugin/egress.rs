//! Outgoing HTTP for plugins, as a capability: a plugin reaches only the
//! origins its `[[plugins]] egress` lists, within its own deadline, with a
//! cap on what it may read back, and never a loopback, private or otherwise
//! non-public address unless the list names that address itself.
//!
//! Requests come from `wasi:http/outgoing-handler` (through the
//! [`WasiHttpHooks`] of [`Egress`]) or from the one-call `tessera:egress`
//! interface the JavaScript and Python SDKs use (`abi::egress`); both go
//! through [`send`]. Tessera resolves the name itself, checks every address
//! it resolves to, and connects to the checked address (so a second lookup
//! cannot swap in another: DNS rebinding). Redirects are answers like any
//! other: the host never follows one, and the SDKs' helpers that do send
//! each hop through here again.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::net::TcpStream;
use tokio::time::Sleep;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// Bytes of a response body a plugin may read, unless `egress_max_bytes`
/// says otherwise.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1 << 20;
/// The largest `egress_max_bytes`.
pub const MAX_RESPONSE_BYTES: usize = 16 << 20;
/// How long a request may take when the call has no deadline (never in the
/// issuer, where every call has one).
const NO_DEADLINE: Duration = Duration::from_secs(10);

/// How long before a call's deadline its outgoing requests end: a tenth of
/// the plugin's `timeout_ms`, at most 100 ms, so that a plugin whose
/// upstream is slow still has time to answer (with a fallback, or a
/// denial) before the deadline stops it.
pub fn margin(timeout: Duration) -> Duration {
    (timeout / 10).min(Duration::from_millis(100))
}

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS, verified against the Web PKI's roots.
    Https,
}

/// The host part of an origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A name, lowercase; it must resolve to public addresses only.
    Name(String),
    /// An address, reachable whatever kind it is: listing it is the grant.
    Ip(IpAddr),
}

/// One entry of `egress`: `scheme://host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The scheme.
    pub scheme: Scheme,
    /// The host.
    pub host: Host,
    /// The port (the scheme's default when not written).
    pub port: u16,
}

impl FromStr for Origin {
    type Err = String;

    fn from_str(text: &str) -> Result<Origin, String> {
        let url = url::Url::parse(text)
            .map_err(|e| format!("{text:?} is not an origin, scheme://host[:port] ({e})"))?;
        let scheme = match url.scheme() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => return Err(format!("{text:?}: the scheme {other} is not http or https")),
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("{text:?}: an origin has no user name or password"));
        }
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "{text:?}: write an origin, scheme://host[:port], without a path, query or fragment"
            ));
        }
        let host = match url.host() {
            Some(url::Host::Domain(name)) => Host::Name(name.to_ascii_lowercase()),
            Some(url::Host::Ipv4(ip)) => Host::Ip(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Host::Ip(IpAddr::V6(ip)),
            None => return Err(format!("{text:?} has no host")),
        };
        let port = url
            .port_or_known_default()
            .ok_or_else(|| format!("{text:?} has no port"))?;
        Ok(Origin { scheme, host, port })
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (scheme, default) = match self.scheme {
            Scheme::Http => ("http", 80),
            Scheme::Https => ("https", 443),
        };
        write!(f, "{scheme}://")?;
        match &self.host {
            Host::Name(name) => write!(f, "{name}")?,
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]")?,
            Host::Ip(ip) => write!(f, "{ip}")?,
        }
        if self.port != default {
            write!(f, ":{}", self.port)?;
        }
        Ok(())
    }
}

/// What a plugin may reach: its `egress` origins, `egress_max_bytes` and
/// the TLS roots of `egress_ca_file`. Empty by default: no outgoing request
/// at all.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The origins it may send requests to.
    pub origins: Vec<Origin>,
    /// Bytes of a response body it may read.
    pub max_response_bytes: usize,
    /// TLS that also trusts the roots of `egress_ca_file`; `None`: the Web
    /// PKI's roots only.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            origins: Vec::new(),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            tls: None,
        }
    }
}

/// TLS that trusts the Web PKI's roots and the certificates of `pem` (the
/// text of `egress_ca_file`: an organisation's own certificate
/// authorities), or why `pem` cannot serve.
pub fn tls_trusting(pem: &str) -> Result<Arc<rustls::ClientConfig>, String> {
    let blocks = ::pem::parse_many(pem).map_err(|e| format!("not PEM ({e})"))?;
    let mut roots = web_pki_roots();
    let mut added = 0;
    for (i, block) in blocks.iter().enumerate() {
        if block.tag() != "CERTIFICATE" {
            continue;
        }
        roots
            .add(rustls::pki_types::CertificateDer::from(
                block.contents().to_vec(),
            ))
            .map_err(|e| format!("certificate {} is not usable as a root: {e}", i + 1))?;
        added += 1;
    }
    if added == 0 {
        return Err("holds no CERTIFICATE block".into());
    }
    client_config(roots).ok_or_else(|| "TLS cannot be set up with ring".into())
}

fn web_pki_roots() -> rustls::RootCertStore {
    rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.into(),
    }
}

fn client_config(roots: rustls::RootCertStore) -> Option<Arc<rustls::ClientConfig>> {
    // ring, as for token signing: the one crypto library Tessera links.
    #[allow(
        deprecated,
        reason = "rustls would have aws-lc-rs for post-quantum key exchange"
    )]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|builder| Arc::new(builder.with_root_certificates(roots).with_no_client_auth()))
        .map_err(|e| tracing::error!(error = %e, "no TLS for plugin egress"))
        .ok()
}

impl Policy {
    /// The listed origin `uri` is on, or why it is not allowed.
    fn origin_of(&self, uri: &http::Uri) -> Result<&Origin, String> {
        let scheme = match uri.scheme_str() {
            Some("http") => Scheme::Http,
            Some("https") => Scheme::Https,
            other => return Err(format!("the scheme {other:?} is not http or https")),
        };
        let host = uri.host().ok_or("the URL has no host")?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = match host.parse::<IpAddr>() {
            Ok(ip) => Host::Ip(ip),
            Err(_) => Host::Name(host.to_ascii_lowercase()),
        };
        let port = uri.port_u16().unwrap_or(match scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        });
        let asked = Origin { scheme, host, port };
        self.origins.iter().find(|o| **o == asked).ok_or_else(|| {
            if self.origins.is_empty() {
                format!("{asked} is not allowed: the plugin's egress lists no origin")
            } else {
                let listed: Vec<String> = self.origins.iter().map(Origin::to_string).collect();
                format!(
                    "{asked} is not allowed: the plugin's egress lists {}",
                    listed.join(", ")
                )
            }
        })
    }
}

/// Whether `ip` is a public unicast address: not loopback, private,
/// link-local, shared (carrier-grade NAT), documentation, benchmarking,
/// multicast, broadcast, unspecified or reserved, nor an IPv6 unique-local
/// address or an IPv4 one in IPv6 clothing that is any of those.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return public_v4(v4);
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
                || (first == 0x0064 && v6.segments()[1] == 0xff9b) // NAT64 of any IPv4
                || v6.segments()[..6] == [0; 6]) // IPv4-compatible and the like
        }
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_unspecified()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared, 100.64.0.0/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240) // reserved
}

/// The egress of one plugin call: its policy and the call's deadline. The
/// `wasi:http` hooks of the store.
#[derive(Clone, Default)]
pub struct Egress {
    policy: Arc<Policy>,
    deadline: Option<Instant>,
}

impl Egress {
    /// Egress under `policy`.
    pub fn new(policy: Arc<Policy>) -> Egress {
        Egress {
            policy,
            deadline: None,
        }
    }

    /// Requests end by `deadline` (the plugin call's).
    pub fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = Some(deadline);
    }

    /// Sends `request` under this egress (see [`send`]).
    pub fn send(
        &self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> impl Future<Output = Result<Sent, Error>> + Send + 'static {
        send(self.policy.clone(), self.deadline, request, options)
    }
}

/// A response whose body is being read, and its connection (which must be
/// polled for the body to arrive).
pub type Sent = (http::Response<Guarded>, Connection);

/// A connection's I/O: it must be polled for an answer and its body's bytes
/// to move, beside the work that waits for them ([`Connection::while_doing`]),
/// or on its own to its end ([`Connection::finish`]).
pub struct Connection {
    io: Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>,
    ended: bool,
}

impl Connection {
    /// Runs `work` while polling the connection's I/O; the connection
    /// failing fails the work.
    pub async fn while_doing<T>(
        &mut self,
        work: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        tokio::pin!(work);
        loop {
            tokio::select! {
                done = &mut work => return done,
                ended = self.io.as_mut(), if !self.ended => {
                    self.ended = true;
                    ended?;
                }
            }
        }
    }

    /// Polls the connection's I/O to its end.
    pub async fn finish(mut self) -> Result<(), Error> {
        if self.ended {
            return Ok(());
        }
        self.io.as_mut().await
    }
}

/// What wasi:http polls to move a response's bytes.
type Driver = Box<dyn Future<Output = Result<(), Error>> + Send>;

impl WasiHttpHooks for Egress {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _body_sent: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = Result<(http::Response<WasiBody>, Driver), Error>> + Send> {
        let sent = self.send(request, options);
        Box::new(async move {
            let (response, connection) = sent.await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(connection.finish()) as Driver,
            ))
        })
    }
}

/// Sends `request` if `policy` allows its origin: resolves the host, checks
/// the addresses, connects (with TLS for `https`), and returns the response
/// once its head arrives, its body guarded by the policy's size cap, the
/// guest's between-bytes timeout and the deadline. Every timeout the guest
/// asks for is cut to what is left before `deadline`.
pub async fn send(
    policy: Arc<Policy>,
    deadline: Option<Instant>,
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<Sent, Error> {
    let deadline = deadline.unwrap_or_else(|| Instant::now() + NO_DEADLINE);
    let left = || deadline.saturating_duration_since(Instant::now());
    let within = |asked: Option<Duration>| asked.map_or_else(left, |a| a.min(left()));
    let options = options.unwrap_or_default();

    let origin = match policy.origin_of(request.uri()) {
        Ok(origin) => origin.clone(),
        Err(why) => {
            tracing::debug!(uri = %request.uri(), %why, "plugin egress refused");
            return Err(Error::HttpRequestDenied);
        }
    };
    let addresses = match &origin.host {
        Host::Ip(ip) => vec![SocketAddr::new(*ip, origin.port)],
        Host::Name(name) => {
            let found = tokio::time::timeout(
                within(options.connect_timeout),
                tokio::net::lookup_host((name.as_str(), origin.port)),
            )
            .await
            .map_err(|_| Error::DnsTimeout)?
            .map_err(|e| Error::DnsError {
                rcode: Some(e.to_string()),
                info_code: None,
            })?
            .collect::<Vec<_>>();
            if found.is_empty() {
                return Err(Error::DestinationNotFound);
            }
            if let Some(private) = found.iter().find(|a| !is_public(a.ip())) {
                tracing::debug!(host = %name, address = %private.ip(), "plugin egress refused: not a public address");
                return Err(Error::DestinationIpProhibited);
            }
            found
        }
    };

    let stream = connect(&addresses, within(options.connect_timeout)).await?;
    let stream: Box<dyn Stream> = match origin.scheme {
        Scheme::Http => Box::new(stream),
        Scheme::Https => {
            let name = match &origin.host {
                Host::Name(name) => rustls::pki_types::ServerName::try_from(name.clone())
                    .map_err(|_| Error::HttpRequestUriInvalid)?,
                Host::Ip(ip) => rustls::pki_types::ServerName::IpAddress((*ip).into()),
            };
            let tls = tokio::time::timeout(
                within(options.connect_timeout),
                tls_connector(&policy)?.connect(name, stream),
            )
            .await
            .map_err(|_| Error::ConnectionTimeout)?
            .map_err(tls_error)?;
            Box::new(tls)
        }
    };
    let (mut sender, io) = tokio::time::timeout(
        within(options.connect_timeout),
        hyper::client::conn::http1::Builder::new().handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;

    // On the wire the target is the path; the scheme and authority were for
    // us (wasi:http adds the Host header).
    let target = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    *request.uri_mut() = target.parse().map_err(|_| Error::HttpRequestUriInvalid)?;

    let mut connection = Connection {
        io: Box::pin(async move { io.await.map_err(Error::from) }),
        ended: false,
    };
    let answer = async { sender.send_request(request).await.map_err(Error::from) };
    let response = tokio::time::timeout(
        within(options.first_byte_timeout),
        connection.while_doing(answer),
    )
    .await
    .map_err(|_| Error::ConnectionReadTimeout)??;

    let limit = policy.max_response_bytes;
    if response
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .is_some_and(|length| length > limit as u64)
    {
        return Err(Error::HttpResponseBodySize(Some(limit as u64)));
    }
    let between = within(options.between_bytes_timeout);
    let response = response.map(|body| Guarded {
        body,
        limit,
        read: 0,
        between,
        idle: Box::pin(tokio::time::sleep(between)),
        deadline: Box::pin(tokio::time::sleep_until(deadline.into())),
    });
    Ok((response, connection))
}

trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Stream for T {}

/// Connects to the first of `addresses` that answers within `timeout`.
async fn connect(addresses: &[SocketAddr], timeout: Duration) -> Result<TcpStream, Error> {
    let attempt = async {
        let mut last = None;
        for address in addresses {
            match TcpStream::connect(address).await {
                Ok(stream) => return Ok(stream),
                Err(e) => last = Some(e),
            }
        }
        Err(match last {
            Some(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                Error::ConnectionRefused
            }
            Some(e) => Error::Connect(e),
            None => Error::DestinationNotFound,
        })
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| Error::ConnectionTimeout)?
}

/// TLS to servers with a certificate from the Web PKI (Mozilla's roots), and
/// from the policy's own roots when it has them.
fn tls_connector(policy: &Policy) -> Result<tokio_rustls::TlsConnector, Error> {
    static WEB_PKI: OnceLock<Option<Arc<rustls::ClientConfig>>> = OnceLock::new();
    policy
        .tls
        .clone()
        .or_else(|| {
            WEB_PKI
                .get_or_init(|| client_config(web_pki_roots()))
                .clone()
        })
        .map(tokio_rustls::TlsConnector::from)
        .ok_or(Error::ConfigurationError)
}

/// The wasi:http error of a failed TLS handshake: a certificate the roots do
/// not vouch for, an alert from the server, or another protocol failure.
fn tls_error(error: std::io::Error) -> Error {
    match error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(_)) => Error::TlsCertificateError,
        Some(rustls::Error::AlertReceived(alert)) => Error::TlsAlertReceived {
            alert_id: Some(u8::from(*alert)),
            alert_message: Some(format!("{alert:?}")),
        },
        Some(_) => Error::TlsProtocolError,
        None => Error::Tls(error),
    }
}

/// A response body as a plugin reads it: at most `limit` bytes, each frame
/// within `between` of the last, all before the call's deadline.
pub struct Guarded {
    body: hyper::body::Incoming,
    limit: usize,
    read: usize,
    between: Duration,
    idle: Pin<Box<Sleep>>,
    deadline: Pin<Box<Sleep>>,
}

impl Body for Guarded {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Error::ConnectionReadTimeout)));
        }
        match Pin::new(&mut self.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.read = self.read.saturating_add(data.len());
                    if self.read > self.limit {
                        return Poll::Ready(Some(Err(Error::HttpResponseBodySize(Some(
                            self.limit as u64,
                        )))));
                    }
                }
                let next = tokio::time::Instant::now() + self.between;
                self.idle.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(if e.is_timeout() {
                Error::HttpResponseTimeout
            } else {
                Error::from(e)
            }))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                ready!(self.idle.as_mut().poll(cx));
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// What an error means, in words for a plugin's log.
pub fn describe(error: &Error) -> String {
    match error {
        Error::HttpRequestDenied => "not allowed by the plugin's egress".into(),
        Error::DestinationIpProhibited => {
            "the host resolves to a non-public address; list the address itself to reach it".into()
        }
        Error::HttpResponseBodySize(Some(limit)) => {
            format!("the response is larger than {limit} bytes (egress_max_bytes)")
        }
        Error::ConnectionReadTimeout | Error::ConnectionTimeout | Error::HttpResponseTimeout => {
            "timed out within the plugin's deadline".into()
        }
        Error::TlsCertificateError => {
            "the server's certificate is not signed by a trusted root (add the root to egress_ca_file)"
                .into()
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_parse_and_print_without_default_ports() {
        let origin: Origin = "https://CRM.example.com".parse().unwrap();
        assert_eq!(origin.host, Host::Name("crm.example.com".into()));
        assert_eq!(origin.port, 443);
        assert_eq!(origin.to_string(), "https://crm.example.com");
        let origin: Origin = "http://127.0.0.1:8080/".parse().unwrap();
        assert_eq!(origin.to_string(), "http://127.0.0.1:8080");
        assert_eq!(
            "http://[::1]:81".parse::<Origin>().unwrap().to_string(),
            "http://[::1]:81"
        );
    }

    #[test]
    fn what_is_not_an_origin_says_why() {
        for (text, why) in [
            ("crm.example.com", "is not an origin, scheme://host[:port]"),
            (
                "ftp://crm.example.com",
                "the scheme ftp is not http or https",
            ),
            (
                "https://user:pw@crm.example.com",
                "no user name or password",
            ),
            ("https://crm.example.com/api", "without a path"),
            ("https://crm.example.com?x=1", "without a path, query"),
        ] {
            let error = text.parse::<Origin>().unwrap_err();
            assert!(error.contains(why), "{text}: {error}");
        }
    }

    #[test]
    fn only_listed_origins_are_allowed() {
        let policy = Policy {
            origins: vec!["https://crm.example.com".parse().unwrap()],
            ..Policy::default()
        };
        let allowed = |uri: &str| policy.origin_of(&uri.parse().unwrap()).is_ok();
        assert!(allowed("https://crm.example.com/v1/users?id=2"));
        assert!(allowed("https://CRM.example.com:443/"));
        assert!(!allowed("http://crm.example.com/"), "another scheme");
        assert!(!allowed("https://crm.example.com:8443/"), "another port");
        assert!(!allowed("https://evil.example.com/"));
        assert!(!allowed("https://crm.example.com.evil.example/"));
        let why = Policy::default()
            .origin_of(&"https://x.example/".parse().unwrap())
            .unwrap_err();
        assert!(why.contains("lists no origin"), "{why}");
    }

    #[test]
    fn only_public_addresses_count_as_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "2001:db8::1",
            "64:ff9b::7f00:1",
            "::127.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "93.184.215.14",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }
}
