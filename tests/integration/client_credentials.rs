//! The client credentials grant over a real socket: happy paths verified
//! against the JWKS, and every error the issue names.

use crate::support::*;

fn plain() -> Tessera {
    Tessera::start(&base_config("ES256"))
}

#[test]
fn token_verifies_against_the_jwks_and_follows_rfc_9068() {
    let t = plain();
    let reply = t.acme(&[("audience", ORDERS), ("scope", "read:orders")]);
    assert_eq!(reply.header("cache-control"), "no-store");
    assert_eq!(reply.body["token_type"], "Bearer");
    assert_eq!(reply.body["expires_in"], 3600);
    assert_eq!(reply.body["scope"], "read:orders");
    let claims = t.verify(reply.access_token(), ORDERS);
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["aud"], ORDERS);
    assert_eq!(claims["client_id"], "acme-sync");
    assert_eq!(claims["sub"], "acme-sync@clients");
    assert_eq!(claims["scope"], "read:orders");
    assert_eq!(
        claims["exp"].as_u64().expect("exp") - claims["iat"].as_u64().expect("iat"),
        3600
    );
    assert_eq!(claims["jti"].as_str().expect("jti").len(), 22);
}

#[test]
fn client_secret_post_and_resource_work_too() {
    let t = plain();
    let reply = t.token(
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "globex"),
            ("client_secret", GLOBEX_SECRET),
            ("resource", BILLING),
        ],
    );
    let claims = t.verify(reply.access_token(), BILLING);
    assert_eq!(claims["scope"], "read:invoices");
}

#[test]
fn no_scope_means_every_granted_scope_and_jtis_differ() {
    let t = plain();
    let a = t.verify(t.acme(&[("audience", ORDERS)]).access_token(), ORDERS);
    let b = t.verify(t.acme(&[("audience", ORDERS)]).access_token(), ORDERS);
    assert_eq!(a["scope"], "read:orders write:orders");
    assert_ne!(a["jti"], b["jti"]);
}

#[test]
fn wrong_secret_via_basic_is_401_with_a_challenge() {
    let t = plain();
    let reply = t.token(
        Some(("acme-sync", "wrong")),
        &[("grant_type", "client_credentials")],
    );
    reply.expect_error(401, "invalid_client");
    assert!(
        reply.header("www-authenticate").starts_with("Basic"),
        "{:?}",
        reply.headers
    );
    // An unknown client gets exactly the same answer.
    let unknown = t.token(
        Some(("nobody", "wrong")),
        &[("grant_type", "client_credentials")],
    );
    unknown.expect_error(401, "invalid_client");
    assert_eq!(unknown.body, reply.body);
}

#[test]
fn wrong_secret_in_the_body_is_invalid_client_without_challenge() {
    let t = plain();
    let reply = t.token(
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "acme-sync"),
            ("client_secret", "nope"),
        ],
    );
    reply.expect_error(400, "invalid_client");
    assert_eq!(reply.header("www-authenticate"), "");
}

#[test]
fn unknown_audience_is_invalid_target() {
    let t = plain();
    let d = t
        .acme(&[("audience", "https://unknown.example.com")])
        .expect_error(400, "invalid_target");
    assert!(d.contains("unknown.example.com"), "{d}");
    t.acme(&[("resource", "not-a-uri")])
        .expect_error(400, "invalid_target");
}

#[test]
fn scope_beyond_the_grant_is_invalid_scope() {
    let t = plain();
    let d = t
        .acme(&[("audience", ORDERS), ("scope", "read:orders delete:orders")])
        .expect_error(400, "invalid_scope");
    assert!(d.contains("delete:orders"), "{d}");
    t.acme(&[("audience", ORDERS), ("scope", "made:up")])
        .expect_error(400, "invalid_scope");
}

#[test]
fn no_grant_or_a_closed_api_is_refused_by_policy() {
    let config = base_config("ES256").replace(
        "[[grants]]\nclient = \"acme-sync\"\napi = \"https://billing.example.com\"\nscopes = [\"read:invoices\"]\n",
        "",
    );
    let t = Tessera::start(&config);
    let d = t
        .acme(&[("audience", BILLING)])
        .expect_error(400, "access_denied");
    assert!(d.contains("no grant"), "{d}");
    let d = t
        .acme(&[("audience", LOCKED)])
        .expect_error(400, "access_denied");
    assert!(d.contains("does not accept"), "{d}");
    // With a single grant left, the audience may be omitted.
    let claims = t.verify(t.acme(&[]).access_token(), ORDERS);
    assert_eq!(claims["aud"], ORDERS);
}

#[test]
fn audience_is_required_when_the_client_has_several_grants() {
    let t = plain();
    let d = t.acme(&[]).expect_error(400, "invalid_request");
    assert!(d.contains("audience"), "{d}");
}

#[test]
fn public_clients_cannot_use_client_credentials() {
    let t = plain();
    t.token(
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "web-spa"),
            ("audience", ORDERS),
        ],
    )
    .expect_error(400, "unauthorized_client");
}

#[test]
fn malformed_requests_are_invalid_request() {
    let t = plain();
    let http = reqwest::blocking::Client::new();
    let raw = |body: &str, content_type: &str| -> Reply {
        http.post(t.url("/oauth/token"))
            .basic_auth("acme-sync", Some(ACME_SECRET))
            .header("content-type", content_type)
            .body(body.to_owned())
            .send()
            .expect("send")
            .into()
    };
    let form = "application/x-www-form-urlencoded";
    raw("grant_type=client_credentials&audience=x&audience=y", form)
        .expect_error(400, "invalid_request");
    raw("audience=https://orders.example.com", form).expect_error(400, "invalid_request");
    raw(
        "{\"grant_type\":\"client_credentials\"}",
        "application/json",
    )
    .expect_error(400, "invalid_request");
    raw("grant_type=password&username=a&password=b", form)
        .expect_error(400, "unsupported_grant_type");
    let big = format!("grant_type=client_credentials&pad={}", "x".repeat(20_000));
    raw(&big, form).expect_error(413, "invalid_request");

    // Parameters in the URL, and GET, are refused.
    let reply: Reply = http
        .post(t.url("/oauth/token?client_secret=x"))
        .basic_auth("acme-sync", Some(ACME_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .expect("send")
        .into();
    reply.expect_error(400, "invalid_request");
    let reply: Reply = http.get(t.url("/oauth/token")).send().expect("send").into();
    reply.expect_error(405, "invalid_request");
    assert_eq!(reply.header("allow"), "POST");
}

#[test]
fn double_authentication_is_refused() {
    let t = plain();
    t.token(
        Some(("acme-sync", ACME_SECRET)),
        &[
            ("grant_type", "client_credentials"),
            ("client_secret", ACME_SECRET),
            ("audience", ORDERS),
        ],
    )
    .expect_error(400, "invalid_request");
}

#[test]
fn discovery_lists_only_what_is_implemented() {
    let t = plain();
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let doc: serde_json::Value = t.get(path).json().expect("json");
        assert_eq!(doc["issuer"], ISSUER);
        assert_eq!(doc["token_endpoint"], format!("{ISSUER}/oauth/token"));
        assert_eq!(doc["jwks_uri"], format!("{ISSUER}/.well-known/jwks.json"));
        let grants = doc["grant_types_supported"]
            .as_array()
            .expect("grant types");
        assert!(grants.iter().any(|g| g == "client_credentials"));
        assert!(!grants.iter().any(|g| g == "implicit" || g == "password"));
        let methods = doc["token_endpoint_auth_methods_supported"]
            .as_array()
            .expect("methods");
        assert_eq!(
            methods,
            &[
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
                "none"
            ]
        );
        for endpoint in ["token", "introspection", "revocation"] {
            assert_eq!(
                doc[format!("{endpoint}_endpoint_auth_signing_alg_values_supported")],
                serde_json::json!(["ES256", "EdDSA", "PS256", "RS256"]),
                "{endpoint}"
            );
        }
    }
    let jwks: serde_json::Value = t.get("/.well-known/jwks.json").json().expect("json");
    for key in jwks["keys"].as_array().expect("keys") {
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(key.get(private).is_none(), "{private} published");
        }
    }
    assert_eq!(t.get("/healthz").status(), 200);
    let metrics = t.get("/metrics").text().expect("text");
    assert!(metrics.contains("tessera_tokens_issued_total"), "{metrics}");
}

#[test]
fn rs256_and_eddsa_tokens_verify() {
    for alg in ["RS256", "EdDSA"] {
        let t = Tessera::start(&base_config(alg));
        let token = t.acme(&[("audience", ORDERS)]).access_token().to_owned();
        let header = jsonwebtoken::decode_header(&token).expect("header");
        assert_eq!(format!("{:?}", header.alg), alg);
        t.verify(&token, ORDERS);
    }
}

#[test]
fn signing_keys_survive_a_restart_and_are_private() {
    let t = plain();
    let first = jsonwebtoken::decode_header(t.acme(&[("audience", ORDERS)]).access_token())
        .expect("h")
        .kid;
    let dir = t.stop();
    let keys: Vec<_> = std::fs::read_dir(dir.path().join("data/keys"))
        .expect("key dir")
        .collect();
    assert_eq!(
        keys.len(),
        2,
        "ES256 for access tokens, RS256 for ID tokens"
    );
    #[cfg(unix)]
    for key in &keys {
        use std::os::unix::fs::PermissionsExt;
        let meta = key.as_ref().expect("entry").metadata().expect("meta");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }
    let config = std::fs::read_to_string(dir.path().join("tessera.toml")).expect("config");
    let t = Tessera::start_in(dir, &config);
    let second = jsonwebtoken::decode_header(t.acme(&[("audience", ORDERS)]).access_token())
        .expect("h")
        .kid;
    assert_eq!(first, second);
}

#[test]
fn a_client_registered_for_one_auth_method_is_refused_with_another() {
    let config = base_config("ES256").replace(
        "id = \"acme-sync\"\n",
        "id = \"acme-sync\"\ntoken_endpoint_auth_method = \"client_secret_post\"\n",
    );
    let t = Tessera::start(&config);
    let posted = t.token(
        None,
        &[
            ("grant_type", "client_credentials"),
            ("audience", ORDERS),
            ("client_id", "acme-sync"),
            ("client_secret", ACME_SECRET),
        ],
    );
    posted.access_token();
    let basic = t.acme(&[("audience", ORDERS)]);
    let why = basic.expect_error(401, "invalid_client");
    assert_eq!(
        why,
        "the client is registered to authenticate with client_secret_post, not client_secret_basic"
    );
    assert!(basic.header("www-authenticate").starts_with("Basic"));
    // A wrong secret still says nothing more than that.
    let wrong = t.token(
        Some(("acme-sync", "wrong-secret-0123456789")),
        &[("grant_type", "client_credentials")],
    );
    assert_eq!(
        wrong.expect_error(401, "invalid_client"),
        "client authentication failed"
    );

    // The method must fit the client's credentials.
    for (method, needs) in [
        (
            "private_key_jwt",
            "private_key_jwt needs public keys (jwks or jwks_file)",
        ),
        ("none", "none needs a public client (spa or native)"),
        ("client_secret_jwt", "unknown variant `client_secret_jwt`"),
    ] {
        let (_dir, path) = write_config(&config.replace(
            "token_endpoint_auth_method = \"client_secret_post\"",
            &format!("token_endpoint_auth_method = \"{method}\""),
        ));
        let (ok, _, err) = run_tessera(&["check", "--config", &path]);
        assert!(!ok, "{method}");
        assert!(
            err.contains("clients[acme-sync].token_endpoint_auth_method") && err.contains(needs),
            "{method}: {err}"
        );
    }
}
