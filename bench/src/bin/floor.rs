//! The floor: the least a server can do to issue the benchmark's token.
//!
//! hyper and ring, nothing else. It accepts `POST /oauth/token` with
//! `client_secret_basic`, checks the secret against a SHA-256 hash in constant
//! time, and mints the same RFC 9068 access token Tessera mints with the
//! `client-claims` plugin: `typ: at+jwt`, ES256 or RS256, `iss sub aud
//! client_id iat exp jti scope` and the two client claims. No configuration
//! file, no policy, no store, no plugins, no metrics: what is left when all of
//! that is gone, so Tessera's figures can be read against it.
//!
//! ```text
//! tessera-bench-floor [--listen 127.0.0.1:0] [--alg ES256|RS256]
//! ```
//!
//! It prints `listening on ADDR` once it accepts connections.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, EcdsaKeyPair, RsaKeyPair};
use serde_json::json;

/// The benchmark's client, API and claims, the same as in Tessera's bench
/// configuration and the oidc-provider server.
const CLIENT_ID: &str = "acme-sync";
const CLIENT_SECRET: &str = "demo-acme-secret-do-not-use-in-production";
const CLIENT_NAME: &str = "ACME order sync";
const AUDIENCE: &str = "https://orders.example.com";
const SCOPES: [&str; 2] = ["read:orders", "write:orders"];
const NAMESPACE: &str = "https://claims.example.com/";

enum Signer {
    Es256(EcdsaKeyPair),
    Rs256(RsaKeyPair),
}

struct Floor {
    issuer: String,
    secret_hash: [u8; 32],
    signer: Signer,
    alg: &'static str,
    rng: SystemRandom,
}

/// The same allocator as Tessera's binary, so the ratio compares the work
/// done and not the allocators.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let mut listen: SocketAddr = ([127, 0, 0, 1], 0).into();
    let mut alg = "ES256".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_default();
        match arg.as_str() {
            "--listen" => {
                listen = value
                    .parse()
                    .unwrap_or_else(|_| fail("--listen: not an address"))
            }
            "--alg" => alg = value,
            _ => fail(&format!("unknown argument {arg:?}")),
        }
    }
    let rng = SystemRandom::new();
    let (signer, alg) = match alg.as_str() {
        "ES256" => {
            let pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .unwrap_or_else(|_| fail("cannot generate a P-256 key"));
            let pair = EcdsaKeyPair::from_pkcs8(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                pkcs8.as_ref(),
                &rng,
            )
            .unwrap_or_else(|_| fail("cannot load the P-256 key"));
            (Signer::Es256(pair), "ES256")
        }
        "RS256" => {
            use rsa::pkcs8::EncodePrivateKey;
            let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
                .unwrap_or_else(|_| fail("cannot generate an RSA key"));
            let der = key
                .to_pkcs8_der()
                .unwrap_or_else(|_| fail("cannot encode the RSA key"));
            let pair = RsaKeyPair::from_pkcs8(der.as_bytes())
                .unwrap_or_else(|_| fail("cannot load the RSA key"));
            (Signer::Rs256(pair), "RS256")
        }
        other => fail(&format!("--alg {other:?}: use ES256 or RS256")),
    };
    let secret_hash = ring::digest::digest(&ring::digest::SHA256, CLIENT_SECRET.as_bytes());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|_| fail("cannot start tokio"));
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .unwrap_or_else(|e| fail(&format!("cannot listen on {listen}: {e}")));
        let addr = listener.local_addr().unwrap_or(listen);
        let floor = Arc::new(Floor {
            issuer: format!("http://{addr}"),
            secret_hash: secret_hash.as_ref().try_into().unwrap_or([0; 32]),
            signer,
            alg,
            rng,
        });
        println!("listening on {addr}");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let floor = floor.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let floor = floor.clone();
                    async move { Ok::<_, Infallible>(floor.handle(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

fn fail(message: &str) -> ! {
    eprintln!("tessera-bench-floor: {message}");
    std::process::exit(2)
}

impl Floor {
    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        if req.method() != hyper::Method::POST || req.uri().path() != "/oauth/token" {
            return error(StatusCode::NOT_FOUND, "invalid_request");
        }
        let authenticated = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|h| self.authenticates(h));
        if !authenticated {
            return error(StatusCode::UNAUTHORIZED, "invalid_client");
        }
        let Ok(body) = Limited::new(req.into_body(), 16 * 1024).collect().await else {
            return error(StatusCode::PAYLOAD_TOO_LARGE, "invalid_request");
        };
        let body = body.to_bytes();
        let mut grant_ok = false;
        let mut scopes: Vec<&str> = Vec::new();
        let mut requested_scope = None;
        for (key, value) in form_urlencoded::parse(&body) {
            match key.as_ref() {
                "grant_type" => grant_ok = value == "client_credentials",
                "scope" => requested_scope = Some(value.into_owned()),
                "resource" | "audience" if value != AUDIENCE => {
                    return error(StatusCode::BAD_REQUEST, "invalid_target");
                }
                _ => {}
            }
        }
        if !grant_ok {
            return error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
        }
        match &requested_scope {
            Some(requested) => {
                for s in requested.split(' ').filter(|s| !s.is_empty()) {
                    match SCOPES.iter().find(|g| **g == s) {
                        Some(g) => scopes.push(g),
                        None => return error(StatusCode::BAD_REQUEST, "invalid_scope"),
                    }
                }
            }
            None => scopes.extend(SCOPES),
        }
        let scope = scopes.join(" ");
        match self.mint(&scope) {
            Some(token) => {
                let body = json!({
                    "access_token": token,
                    "token_type": "Bearer",
                    "expires_in": 3600,
                    "scope": scope,
                });
                json_response(StatusCode::OK, body.to_string())
            }
            None => error(StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
        }
    }

    /// `Basic base64(urlencode(id):urlencode(secret))`, the secret compared by
    /// its SHA-256 hash in constant time.
    fn authenticates(&self, header: &str) -> bool {
        let Some(encoded) = header.strip_prefix("Basic ") else {
            return false;
        };
        let Ok(decoded) = STANDARD.decode(encoded) else {
            return false;
        };
        let Some(colon) = decoded.iter().position(|b| *b == b':') else {
            return false;
        };
        let id = percent_decode(&decoded[..colon]);
        let secret = percent_decode(&decoded[colon + 1..]);
        let hash = ring::digest::digest(&ring::digest::SHA256, secret.as_bytes());
        id == CLIENT_ID
            && hash.as_ref().len() == 32
            && hash
                .as_ref()
                .iter()
                .zip(self.secret_hash)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }

    fn mint(&self, scope: &str) -> Option<String> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
        let mut jti = [0u8; 16];
        self.rng.fill(&mut jti).ok()?;
        let header = json!({ "alg": self.alg, "typ": "at+jwt", "kid": "floor" });
        let claims = json!({
            "iss": self.issuer,
            "sub": CLIENT_ID,
            "aud": AUDIENCE,
            "client_id": CLIENT_ID,
            "iat": now,
            "exp": now + 3600,
            "jti": hex::encode(jti),
            "scope": scope,
            format!("{NAMESPACE}client_name"): CLIENT_NAME,
            format!("{NAMESPACE}client_app_type"): "machine",
        });
        let mut token = URL_SAFE_NO_PAD.encode(header.to_string());
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature = match &self.signer {
            Signer::Es256(pair) => pair
                .sign(&self.rng, token.as_bytes())
                .ok()?
                .as_ref()
                .to_vec(),
            Signer::Rs256(pair) => {
                let mut sig = vec![0; pair.public().modulus_len()];
                pair.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &self.rng,
                    token.as_bytes(),
                    &mut sig,
                )
                .ok()?;
                sig
            }
        };
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Some(token)
    }
}

fn percent_decode(bytes: &[u8]) -> String {
    form_urlencoded::parse(&[b"x=", bytes].concat())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn error(status: StatusCode, code: &str) -> Response<Full<Bytes>> {
    json_response(status, json!({ "error": code }).to_string())
}

fn json_response(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    headers.insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    response
}
