//! Introspection (RFC 7662) and revocation (RFC 7009) on the real binary:
//! who may see which token, what an inactive token looks like, and what a
//! revocation ends.

use serde_json::{Value, json};

use crate::support::*;
use crate::user_flows::{add_user, spa_tokens, user_config};

const RS: Option<(&str, &str)> = Some(("orders-api", ORDERS_API_SECRET));
const ACME: Option<(&str, &str)> = Some(("acme-sync", ACME_SECRET));
const GLOBEX: Option<(&str, &str)> = Some(("globex", GLOBEX_SECRET));

fn introspect(t: &Tessera, caller: Option<(&str, &str)>, token: &str) -> Reply {
    t.post_form("/oauth/introspect", caller, &[("token", token)])
}

fn revoke(t: &Tessera, caller: Option<(&str, &str)>, form: &[(&str, &str)]) -> Reply {
    t.post_form("/oauth/revoke", caller, form)
}

fn assert_inactive(r: &Reply, why: &str) {
    assert_eq!(r.status, 200, "{why}: {:?}", r.body);
    assert_eq!(r.body, json!({"active": false}), "{why}: nothing more");
    assert_eq!(r.header("cache-control"), "no-store", "{why}");
}

#[test]
fn an_access_token_is_shown_to_its_client_and_its_apis_resource_servers_only() {
    let t = Tessera::start(&base_config("ES256"));
    let token = t.acme(&[("audience", ORDERS), ("scope", "read:orders")]);
    let token = token.access_token();
    let claims = claims_unverified(token);

    for caller in [ACME, RS] {
        let r = introspect(&t, caller, token);
        assert_eq!(r.status, 200, "{:?}", r.body);
        let b = &r.body;
        assert_eq!(b["active"], true);
        assert_eq!(b["token_type"], "Bearer");
        for claim in [
            "iss",
            "sub",
            "aud",
            "client_id",
            "scope",
            "exp",
            "iat",
            "jti",
        ] {
            assert_eq!(b[claim], claims[claim], "{claim}");
        }
        assert_eq!(b["client_id"], "acme-sync");
        assert_eq!(b["scope"], "read:orders");
        assert_eq!(r.header("cache-control"), "no-store");
    }
    // Globex has a grant for the same API, but is not its resource server.
    assert_inactive(&introspect(&t, GLOBEX, token), "another client");
    // A token for an API without resource servers: only its own client.
    let billing = t.acme(&[("audience", BILLING)]);
    assert_eq!(
        introspect(&t, ACME, billing.access_token()).body["active"],
        true
    );
    assert_inactive(
        &introspect(&t, RS, billing.access_token()),
        "another API's token",
    );

    // Expired, malformed, foreign and made-up tokens look the same.
    let mut forged = token.rsplit_once('.').expect("jws").0.to_owned();
    forged.push_str(".AAAA");
    let foreign = {
        let other = Tessera::start(&base_config("ES256"));
        other
            .acme(&[("audience", ORDERS)])
            .access_token()
            .to_owned()
    };
    for (bad, why) in [
        (forged.as_str(), "bad signature"),
        (foreign.as_str(), "signed by another issuer's key"),
        ("not-a-token", "never issued"),
        ("a.b.c", "malformed"),
    ] {
        assert_inactive(&introspect(&t, ACME, bad), why);
    }

    // The caller must authenticate, as a confidential client.
    introspect(&t, None, token).expect_error(400, "invalid_client");
    introspect(&t, Some(("acme-sync", "wrong")), token).expect_error(401, "invalid_client");
    let public = t.post_form(
        "/oauth/introspect",
        None,
        &[("client_id", "web-spa"), ("token", token)],
    );
    public.expect_error(401, "invalid_client");
    assert!(public.header("www-authenticate").starts_with("Basic"));
    introspect(&t, ACME, "").expect_error(400, "invalid_request");
    let get = t.get("/oauth/introspect");
    assert_eq!(get.status(), 405);
}

#[test]
fn a_revoked_access_token_is_inactive_and_refused_by_userinfo() {
    let t = Tessera::start(&user_config());
    add_user(&t, "ada@example.com", "{}");
    let issued = t.acme(&[("audience", ORDERS)]);
    let token = issued.access_token();

    // Only the client it was issued to may revoke it.
    revoke(&t, GLOBEX, &[("token", token)]).expect_error(400, "unauthorized_client");
    assert_eq!(introspect(&t, ACME, token).body["active"], true);
    let done = revoke(
        &t,
        ACME,
        &[("token", token), ("token_type_hint", "access_token")],
    );
    assert_eq!(done.status, 200, "{:?}", done.body);
    assert_eq!(done.body, Value::Null, "an empty body");
    assert_inactive(&introspect(&t, ACME, token), "revoked");
    assert_inactive(
        &introspect(&t, RS, token),
        "revoked, for the resource server too",
    );
    // A second revocation, and revoking what was never issued, are fine.
    assert_eq!(revoke(&t, ACME, &[("token", token)]).status, 200);
    assert_eq!(revoke(&t, ACME, &[("token", "never-issued")]).status, 200);
    // A wrong hint is looked past.
    let other = t.acme(&[("audience", ORDERS)]);
    let hinted = revoke(
        &t,
        ACME,
        &[
            ("token", other.access_token()),
            ("token_type_hint", "refresh_token"),
        ],
    );
    assert_eq!(hinted.status, 200);
    assert_inactive(
        &introspect(&t, ACME, other.access_token()),
        "revoked despite the hint",
    );

    // /userinfo consults the list too.
    let user = spa_tokens(&t, "openid email");
    let at = user.access_token();
    let info = |token: &str| {
        reqwest::blocking::Client::new()
            .get(t.url("/userinfo"))
            .bearer_auth(token)
            .send()
            .expect("userinfo")
    };
    // spa_tokens asks for the Orders API: /userinfo is not its audience.
    assert_eq!(info(at).status(), 401);
    let own = crate::user_flows::spa_tokens_for_userinfo(&t, "openid email");
    assert_eq!(info(own.access_token()).status(), 200);
    let public = revoke(
        &t,
        None,
        &[("client_id", "web-spa"), ("token", own.access_token())],
    );
    assert_eq!(
        public.status, 200,
        "a public client revokes with its client_id"
    );
    let refused = info(own.access_token());
    assert_eq!(refused.status(), 401);
    assert!(
        refused.headers()["www-authenticate"]
            .to_str()
            .expect("ascii")
            .contains("revoked")
    );
}

#[test]
fn a_refresh_token_is_its_clients_to_see_and_revoking_it_ends_its_family() {
    let t = Tessera::start(&user_config());
    add_user(&t, "ada@example.com", "{}");
    let first = spa_tokens(&t, "openid offline_access read:orders");
    let rt = first.body["refresh_token"].as_str().expect("refresh token");

    // The SPA is public and cannot introspect; the portal (confidential)
    // has its own flow below. Nobody else sees the SPA's refresh token.
    for caller in [ACME, RS] {
        assert_inactive(
            &introspect(&t, caller, rt),
            "not the caller's refresh token",
        );
    }
    // Only its client may revoke it.
    revoke(&t, ACME, &[("token", rt)]).expect_error(400, "unauthorized_client");

    let refresh = |token: &str| {
        t.token(
            None,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "web-spa"),
                ("refresh_token", token),
            ],
        )
    };
    let second = refresh(rt);
    let rt2 = second.body["refresh_token"].as_str().expect("rotated");
    let done = revoke(
        &t,
        None,
        &[
            ("client_id", "web-spa"),
            ("token", rt2),
            ("token_type_hint", "refresh_token"),
        ],
    );
    assert_eq!(done.status, 200, "{:?}", done.body);
    refresh(rt2).expect_error(400, "invalid_grant");
}

#[test]
fn a_confidential_client_introspects_its_own_refresh_token() {
    let t = Tessera::start(&user_config());
    add_user(&t, "ada@example.com", "{}");
    let portal = Some(("portal", crate::user_flows::PORTAL_SECRET));
    let tokens = crate::user_flows::portal_tokens(&t, "openid offline_access read:orders");
    let rt = tokens.body["refresh_token"]
        .as_str()
        .expect("refresh token");

    let r = introspect(&t, portal, rt);
    assert_eq!(r.status, 200, "{:?}", r.body);
    let b = &r.body;
    assert_eq!(b["active"], true);
    assert_eq!(b["token_type"], "refresh_token");
    assert_eq!(b["client_id"], "portal");
    assert_eq!(b["iss"], ISSUER);
    assert_eq!(b["aud"], ORDERS);
    assert_eq!(b["scope"], "openid offline_access read:orders");
    assert!(b["sub"].as_str().expect("sub").starts_with("u_"));
    assert!(b["exp"].as_u64() > b["iat"].as_u64());
    assert_inactive(
        &introspect(&t, RS, rt),
        "the resource server never sees refresh tokens",
    );

    // Rotated: the old one is spent, the new one active.
    let rotated = t.token(
        portal,
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
    );
    let rt2 = rotated.body["refresh_token"].as_str().expect("rotated");
    assert_inactive(&introspect(&t, portal, rt), "used");
    assert_eq!(introspect(&t, portal, rt2).body["active"], true);
    // The portal's access token is the API's to see too.
    assert_eq!(
        introspect(&t, RS, rotated.access_token()).body["active"],
        true
    );

    assert_eq!(revoke(&t, portal, &[("token", rt)]).status, 200);
    assert_inactive(
        &introspect(&t, portal, rt2),
        "its family was revoked through the old token",
    );
}

#[test]
fn discovery_lists_introspection_and_revocation() {
    let t = Tessera::start(&base_config("ES256"));
    let doc: Value = t
        .get("/.well-known/openid-configuration")
        .json()
        .expect("json");
    assert_eq!(
        doc["introspection_endpoint"],
        format!("{ISSUER}/oauth/introspect")
    );
    assert_eq!(doc["revocation_endpoint"], format!("{ISSUER}/oauth/revoke"));
    assert_eq!(
        doc["introspection_endpoint_auth_methods_supported"],
        json!([
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt"
        ])
    );
    assert_eq!(
        doc["revocation_endpoint_auth_methods_supported"],
        json!([
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "none"
        ])
    );
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        json!([
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "none"
        ])
    );
}
