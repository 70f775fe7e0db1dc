//! The deployment of docs/deploy.md, end to end: three replicas on one
//! PostgreSQL behind nginx (round-robin, the configuration in
//! [`crate::nginx::config`]), `issuer` = nginx's URL. A user signs in, gets
//! and refreshes tokens, and machine clients ask for tokens — all through
//! nginx; the tokens verify against the JWKS that nginx and each replica
//! publish, and every replica served a share of the requests.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::nginx;
use crate::replicas::{SPA_REDIRECT, postgres_url, replica_config};
use crate::support::*;
use crate::user_flows::{
    PASSWORD, add_user, authorize_url, browser, location_params, param, pkce, sign_in,
};

/// Client-credentials requests through nginx, and the threads sending them.
const M2M_REQUESTS: usize = 400;
const M2M_THREADS: usize = 8;

/// `tessera_tokens_issued_total` of one replica, every grant type, read
/// from it directly.
fn tokens_issued(t: &Tessera) -> u64 {
    let text = t.get("/metrics").text().expect("metrics");
    let counts: Vec<u64> = text
        .lines()
        .filter(|l| l.starts_with("tessera_tokens_issued_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse().ok())
        .collect();
    assert!(
        !counts.is_empty(),
        "no tessera_tokens_issued_total in {text}"
    );
    counts.iter().sum()
}

/// The token requests of nginx's access log: (status, upstream) per line.
fn token_lines(log: &str) -> Vec<(String, String)> {
    log.lines()
        .filter(|l| l.contains("\"POST /oauth/token "))
        .map(|l| {
            // ADDR [TIME] "REQUEST" STATUS upstream=… upstream_status=… …
            let after = l.rsplit('"').next().unwrap_or_default();
            let mut words = after.split_whitespace();
            let status = words.next().unwrap_or_default().to_owned();
            let upstream = words
                .find_map(|w| w.strip_prefix("upstream="))
                .unwrap_or_else(|| panic!("no upstream= in {l}"))
                .to_owned();
            (status, upstream)
        })
        .collect()
}

#[test]
fn three_replicas_behind_nginx_are_one_issuer() {
    let Some(url) = postgres_url() else { return };
    let Some(front) = nginx::Reserved::new() else {
        return;
    };
    let issuer = front.base();
    let keys = tempfile::tempdir().expect("keys");
    let config = replica_config(&url, keys.path()).replacen(
        &format!("issuer = \"{ISSUER}\""),
        &format!("issuer = \"{issuer}\""),
        1,
    );
    assert!(config.contains(&format!("issuer = \"{issuer}\"")));
    let r: Vec<Tessera> = (0..3).map(|_| Tessera::start(&config)).collect();
    let bases: Vec<&str> = r.iter().map(|t| t.base.as_str()).collect();
    let front = front.start(&bases);
    let id = add_user(&r[0], "ada@example.com", "{\"roles\":[\"reader\"]}");

    // Ready, and discovery names nginx's URL, not a replica's.
    let ready = front.get("/readyz");
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.text().expect("body"), "ready\n");
    let doc: Value = front
        .get("/.well-known/openid-configuration")
        .json()
        .expect("discovery");
    assert_eq!(doc["issuer"], issuer);
    assert_eq!(doc["token_endpoint"], format!("{issuer}/oauth/token"));
    assert_eq!(doc["jwks_uri"], format!("{issuer}/.well-known/jwks.json"));

    // A user signs in: authorize, the login page and the login post go
    // through nginx, so they may each land on another replica.
    let b = browser();
    let (verifier, challenge) = pkce();
    let authorize = authorize_url(
        &front,
        "web-spa",
        SPA_REDIRECT,
        &challenge,
        &format!(
            "&scope=openid%20email%20offline_access%20read:orders&nonce=n0nce&audience={ORDERS}"
        ),
    );
    let back = sign_in(&b, &front, &authorize, "ada@example.com", PASSWORD);
    let params = location_params(&back);
    assert_eq!(param(&params, "state"), Some("st4te"));
    assert_eq!(param(&params, "iss"), Some(issuer.as_str()), "RFC 9207 iss");
    let code = param(&params, "code").expect("code").to_owned();
    let tokens = front.token(
        None,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "web-spa"),
            ("code", &code),
            ("redirect_uri", SPA_REDIRECT),
            ("code_verifier", &verifier),
        ],
    );
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    let rt = tokens.body["refresh_token"]
        .as_str()
        .expect("refresh token");
    let rotated = front.token(
        None,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "web-spa"),
            ("refresh_token", rt),
        ],
    );
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    assert_ne!(rotated.body["refresh_token"], tokens.body["refresh_token"]);

    // Every token verifies against the JWKS fetched through nginx and
    // against each replica's own.
    let through_nginx: jsonwebtoken::jwk::JwkSet = front
        .get("/.well-known/jwks.json")
        .json()
        .expect("jwks through nginx");
    let jwks_sets: Vec<_> = std::iter::once(through_nginx.clone())
        .chain(r.iter().map(Tessera::jwks))
        .collect();
    for jwks in &jwks_sets {
        for reply in [&tokens, &rotated] {
            let at = verify_access_token(jwks, reply.access_token(), ORDERS, &issuer);
            assert_eq!(at["sub"], id);
            assert_eq!(at["client_id"], "web-spa");
            let idt = verify_id_token(
                jwks,
                reply.body["id_token"].as_str().expect("id token"),
                "web-spa",
                &issuer,
            );
            assert_eq!(idt["sub"], id);
            assert_eq!(idt["email"], "ada@example.com");
        }
        let first_id = tokens.body["id_token"].as_str().expect("id token");
        assert_eq!(
            verify_id_token(jwks, first_id, "web-spa", &issuer)["nonce"],
            "n0nce"
        );
    }
    // The Orders API's resource server introspects the user's token, and
    // the SPA revokes it: each request may land on another replica, and
    // every replica reads the same revocation list.
    let rs = Some(("orders-api", ORDERS_API_SECRET));
    let at = rotated.access_token();
    let seen = front.post_form("/oauth/introspect", rs, &[("token", at)]);
    assert_eq!(
        (seen.body["active"].as_bool(), &seen.body["sub"]),
        (Some(true), &Value::from(id.as_str()))
    );
    let revoked = front.post_form(
        "/oauth/revoke",
        None,
        &[("client_id", "web-spa"), ("token", at)],
    );
    assert_eq!(revoked.status, 200, "{:?}", revoked.body);
    for _ in 0..3 {
        let seen = front.post_form("/oauth/introspect", rs, &[("token", at)]);
        assert_eq!(seen.body, serde_json::json!({"active": false}));
    }

    // Machine clients: M2M_REQUESTS client-credentials requests from
    // M2M_THREADS threads, all through nginx.
    let next = AtomicUsize::new(0);
    let answers = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..M2M_THREADS {
            s.spawn(|| {
                let http = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .expect("client");
                while next.fetch_add(1, Ordering::SeqCst) < M2M_REQUESTS {
                    let answer = http
                        .post(front.url("/oauth/token"))
                        .basic_auth("acme-sync", Some(ACME_SECRET))
                        .form(&[
                            ("grant_type", "client_credentials"),
                            ("audience", ORDERS),
                            ("scope", "read:orders"),
                        ])
                        .send()
                        .and_then(|r| {
                            let status = r.status().as_u16();
                            r.text().map(|t| (status, t))
                        })
                        .map_err(|e| e.to_string());
                    answers.lock().expect("lock").push(answer);
                }
            });
        }
    });
    let answers = answers.into_inner().expect("lock");
    assert_eq!(answers.len(), M2M_REQUESTS);
    let mut jtis = HashSet::new();
    for answer in &answers {
        let (status, text) = answer
            .as_ref()
            .unwrap_or_else(|e| panic!("a request through nginx failed: {e}"));
        assert_eq!(*status, 200, "{text}\n{}", front.logs());
        let body: Value = serde_json::from_str(text).expect("json");
        let token = body["access_token"].as_str().expect("access token");
        let claims = verify_access_token(&through_nginx, token, ORDERS, &issuer);
        assert_eq!(claims["client_id"], "acme-sync");
        assert_eq!(claims["scope"], "read:orders");
        assert!(
            jtis.insert(claims["jti"].as_str().expect("jti").to_owned()),
            "a jti twice: {claims}"
        );
    }

    // Every token request is in nginx's access log (written once the
    // response is sent), each served by one replica at the first try, and
    // each replica served about a third.
    let expected = M2M_REQUESTS + 2;
    let logged = || token_lines(&front.access_log()).len();
    assert!(
        wait_for(Duration::from_secs(10), || logged() >= expected),
        "{}",
        front.access_log()
    );
    let lines = token_lines(&front.access_log());
    assert_eq!(lines.len(), expected);
    let mut served: BTreeMap<&str, u64> = BTreeMap::new();
    for (status, upstream) in &lines {
        assert_eq!(status, "200", "{upstream}");
        assert!(
            front.upstreams.contains(upstream),
            "{upstream} is not one replica (a retry on another?)"
        );
        *served.entry(upstream.as_str()).or_default() += 1;
    }
    eprintln!("token requests served, by replica: {served:?}");
    for (t, upstream) in r.iter().zip(&front.upstreams) {
        let logged = served.get(upstream.as_str()).copied().unwrap_or_default();
        assert!(
            logged >= (expected / 6) as u64,
            "round-robin: {upstream} served {logged} of {expected}: {served:?}"
        );
        // The replica's own count agrees with nginx's.
        assert_eq!(tokens_issued(t), logged, "{upstream}");
    }

    // The user's requests went through nginx too, and nginx saw no failure.
    let log = front.access_log();
    for request in [
        "\"GET /authorize?",
        "\"POST /login ",
        "\"POST /oauth/introspect ",
        "\"POST /oauth/revoke ",
    ] {
        assert!(log.contains(request), "no {request} in\n{log}");
    }
    let logs = front.logs();
    for level in ["[emerg]", "[alert]", "[crit]", "[error]"] {
        assert!(!logs.contains(level), "{logs}");
    }
}
