//! The sign-in flow in process (see [`crate::http::testing`]).

use axum::http::{StatusCode, header};

use super::{BROWSER_COOKIE, SESSION_COOKIE};
use crate::grants::sign_in::{self, CODE_LIFETIME, PENDING_LIFETIME};
use axum::body::Body;
use axum::http::Request;

use crate::grants::throttle;
use crate::http::testing::{CALLBACK, EMAIL, Flow, ISSUER, Origin, PASSWORD, urlencode};

#[tokio::test]
async fn a_sign_in_ends_in_a_code_the_token_endpoint_takes() {
    let flow = Flow::new().await;
    let page = flow
        .authorize(
            "&scope=openid%20read:orders&audience=https://orders.example.com",
            &[],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Web &lt;Shop&gt;"), "{}", page.body);
    let browser = page.cookies();
    assert_eq!(browser.len(), 1, "one browser binding: {browser:?}");
    assert!(browser[0].starts_with(BROWSER_COOKIE));

    let done = flow.login(&page, &browser, PASSWORD).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.query("state").as_deref(), Some("s1"));
    assert_eq!(done.query("iss").as_deref(), Some(ISSUER));
    assert!(done.cookies().iter().any(|c| c.starts_with(SESSION_COOKIE)));
    let code = done.query("code").expect("a code");

    let tokens = flow.redeem(&code).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.body);
    let json: serde_json::Value = serde_json::from_str(&tokens.body).expect("json");
    assert_eq!(json["scope"], "openid read:orders");
    assert!(json["id_token"].is_string());
}

#[tokio::test]
async fn a_session_signs_in_at_once_until_it_ends() {
    let flow = Flow::new().await;
    let page = flow.authorize("&scope=openid", &[]).await;
    let browser = page.cookies();
    let done = flow.login(&page, &browser, PASSWORD).await;
    let cookies: Vec<String> = browser.into_iter().chain(done.cookies()).collect();

    let again = flow.authorize("&scope=openid", &cookies).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
    assert!(again.query("code").is_some());

    // prompt=login asks again despite the session.
    let asked = flow.authorize("&scope=openid&prompt=login", &cookies).await;
    assert_eq!(asked.status, StatusCode::OK);
    assert!(asked.body.contains("name=\"password\""));

    flow.advance(sign_in::SESSION_LIFETIME + 1);
    let later = flow.authorize("&scope=openid", &cookies).await;
    assert_eq!(later.status, StatusCode::OK, "the session has ended");
    let silent = flow.authorize("&scope=openid&prompt=none", &cookies).await;
    assert_eq!(silent.status, StatusCode::SEE_OTHER);
    assert_eq!(silent.query("error").as_deref(), Some("login_required"));
    assert_eq!(silent.query("state").as_deref(), Some("s1"));
}

#[tokio::test]
async fn a_form_works_once_in_its_own_browser_and_not_after_it_expires() {
    let flow = Flow::new().await;
    let page = flow.authorize("&scope=openid", &[]).await;
    let browser = page.cookies();

    let elsewhere = flow
        .login(&page, &[format!("{BROWSER_COOKIE}=someone-else")], PASSWORD)
        .await;
    assert_eq!(elsewhere.status, StatusCode::FORBIDDEN);
    let bare = flow.login(&page, &[], PASSWORD).await;
    assert_eq!(bare.status, StatusCode::FORBIDDEN);

    let wrong = flow.login(&page, &browser, "not the password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("Wrong email or password."));
    assert_eq!(
        wrong.field("tx"),
        page.field("tx"),
        "the same sign-in goes on"
    );

    let done = flow.login(&page, &browser, PASSWORD).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let replay = flow.login(&page, &browser, PASSWORD).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert!(replay.body.contains("expired"), "{}", replay.body);

    let late = flow.authorize("&scope=openid", &browser).await;
    assert!(late.cookies().is_empty(), "the browser keeps its binding");
    flow.advance(PENDING_LIFETIME + 1);
    let expired = flow.login(&late, &browser, PASSWORD).await;
    assert_eq!(expired.status, StatusCode::BAD_REQUEST);
    assert!(expired.body.contains("expired"), "{}", expired.body);
}

#[tokio::test]
async fn the_policy_decides_before_a_code_exists() {
    let flow = Flow::new().await;
    let page = flow.authorize("&scope=openid", &[]).await;
    let browser = page.cookies();
    let done = flow.login(&page, &browser, PASSWORD).await;
    let cookies: Vec<String> = browser.into_iter().chain(done.cookies()).collect();

    let denied = flow
        .authorize("&scope=run&audience=https://machines.example.com", &cookies)
        .await;
    assert_eq!(denied.query("error").as_deref(), Some("access_denied"));
    let beyond = flow
        .authorize(
            "&scope=delete:orders&audience=https://orders.example.com",
            &cookies,
        )
        .await;
    assert_eq!(beyond.query("error").as_deref(), Some("invalid_scope"));
    let unnamed = flow.authorize("&scope=read:orders", &cookies).await;
    assert_eq!(unnamed.query("error").as_deref(), Some("invalid_request"));
    let unknown = flow
        .authorize(
            "&scope=openid&audience=https://nowhere.example.com",
            &cookies,
        )
        .await;
    assert_eq!(unknown.query("error").as_deref(), Some("invalid_target"));
    for refused in [&denied, &beyond, &unnamed, &unknown] {
        assert_eq!(refused.query("iss").as_deref(), Some(ISSUER));
        assert!(refused.query("code").is_none());
    }

    // A code is good for its lifetime and no longer.
    let ok = flow.authorize("&scope=openid", &cookies).await;
    let code = ok.query("code").expect("a code");
    flow.advance(CODE_LIFETIME + 1);
    let late = flow.redeem(&code).await;
    assert_eq!(late.status, StatusCode::BAD_REQUEST);
    assert!(late.body.contains("invalid_grant"), "{}", late.body);
}

#[tokio::test]
async fn logins_queue_for_a_password_check_and_are_told_to_come_back() {
    let flow = Flow::new().await;
    let page = flow.authorize("&scope=openid", &[]).await;
    let browser = page.cookies();
    // Every password check is taken (a burst of logins elsewhere).
    let all = u32::try_from(flow.issuer.password_checks.available_permits()).expect("few");
    let busy = flow
        .issuer
        .password_checks
        .acquire_many(all)
        .await
        .expect("open");
    let refused = flow.login(&page, &browser, PASSWORD).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.headers[header::RETRY_AFTER], "1");
    assert!(
        refused.body.contains("try again in a moment"),
        "{}",
        refused.body
    );
    // The form was not spent: once a check is free, the same form signs in.
    drop(busy);
    let done = flow.login(&page, &browser, PASSWORD).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
}

#[tokio::test]
async fn overlong_requests_are_refused_before_a_sign_in_is_kept() {
    let flow = Flow::new().await;
    let long_state = format!(
        "/authorize?response_type=code&client_id=web-spa&redirect_uri={}&state={}",
        urlencode(CALLBACK),
        "a".repeat(2000)
    );
    for (page, what) in [
        (
            flow.authorize(&format!("&x={}", "a".repeat(9000)), &[])
                .await,
            "longer than 8192 bytes",
        ),
        (
            flow.send(
                Request::get(long_state)
                    .body(Body::empty())
                    .expect("request"),
            )
            .await,
            "state is longer",
        ),
    ] {
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
        assert!(page.body.contains(what), "{}", page.body);
        assert!(page.cookies().is_empty(), "nothing started");
    }
    let nonce = flow
        .authorize(&format!("&nonce={}", "n".repeat(1500)), &[])
        .await;
    assert_eq!(nonce.status, StatusCode::SEE_OTHER);
    assert_eq!(nonce.query("error").as_deref(), Some("invalid_request"));
    assert_eq!(nonce.query("state").as_deref(), Some("s1"));
    assert_eq!(
        flow.issuer
            .store
            .row_counts()
            .await
            .expect("counts")
            .of("pending_requests"),
        0
    );
}

#[tokio::test]
async fn the_browser_binding_is_one_the_issuer_made() {
    let flow = Flow::new().await;
    // A binding the browser made up (or a sibling site planted) is replaced.
    let planted = format!("{BROWSER_COOKIE}=chosen-by-someone-else");
    let page = flow
        .authorize("&scope=openid", std::slice::from_ref(&planted))
        .await;
    let given = page.cookies();
    assert_eq!(given.len(), 1, "a binding is issued: {given:?}");
    assert_ne!(given[0], planted);
    assert_eq!(
        flow.login(&page, &[planted], PASSWORD).await.status,
        StatusCode::FORBIDDEN
    );
    // A forged MAC is no better than none.
    let value = given[0].split_once('=').expect("name=value").1;
    let (random, _) = value.split_once('.').expect("RANDOM.MAC");
    let forged = format!("{BROWSER_COOKIE}={random}.AAAA");
    let again = flow.authorize("&scope=openid", &[forged]).await;
    assert_eq!(again.cookies().len(), 1, "replaced again");
    // The issued one binds, and is kept by later requests.
    let kept = flow.authorize("&scope=openid", &given).await;
    assert!(kept.cookies().is_empty());
    let done = flow.login(&kept, &given, PASSWORD).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
}

#[tokio::test]
async fn an_https_issuer_names_its_cookies_with_the_host_prefix() {
    let flow = Flow::with_issuer("https://login.example.com").await;
    let page = flow.authorize("&scope=openid", &[]).await;
    let set: Vec<String> = page
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .collect();
    assert_eq!(set.len(), 1, "{set:?}");
    assert!(
        set[0].starts_with(&format!("__Host-{BROWSER_COOKIE}=")),
        "{set:?}"
    );
    for attribute in ["Secure", "Path=/", "HttpOnly", "SameSite=Lax"] {
        assert!(set[0].contains(attribute), "{attribute}: {set:?}");
    }
    assert!(!set[0].contains("Domain"), "{set:?}");
    // The unprefixed name means nothing to it.
    let browser = page.cookies();
    let unprefixed = browser[0].trim_start_matches("__Host-").to_owned();
    assert_eq!(
        flow.login(&page, &[unprefixed], PASSWORD).await.status,
        StatusCode::FORBIDDEN
    );
    let done = flow.login(&page, &browser, PASSWORD).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert!(
        done.cookies()
            .iter()
            .any(|c| c.starts_with(&format!("__Host-{SESSION_COOKIE}="))),
        "{:?}",
        done.cookies()
    );
}

#[tokio::test]
async fn an_https_issuer_tells_browsers_to_keep_to_https() {
    let get = |path: &str| Request::get(path).body(Body::empty()).expect("request");
    let https = Flow::with_issuer("https://login.example.com").await;
    for path in [
        "/healthz",
        "/.well-known/openid-configuration",
        "/authorize",
    ] {
        let answer = https.send(get(path)).await;
        assert_eq!(
            answer.headers[header::STRICT_TRANSPORT_SECURITY],
            "max-age=31536000",
            "{path}"
        );
    }
    let http = Flow::new().await;
    let answer = http.send(get("/healthz")).await;
    assert!(
        !answer
            .headers
            .contains_key(header::STRICT_TRANSPORT_SECURITY)
    );
}

/// Posts wrong passwords for `email` from `origin` until the answer is
/// not 401; returns that answer and how many 401s came before it.
async fn fail_until_throttled(
    flow: &Flow,
    page: &crate::http::testing::Answer,
    browser: &[String],
    email: &str,
    origin: Origin<'_>,
) -> (crate::http::testing::Answer, usize) {
    for n in 0..200 {
        let r = flow
            .login_as(page, browser, email, "not the password", origin)
            .await;
        if r.status != StatusCode::UNAUTHORIZED {
            return (r, n);
        }
    }
    panic!("never throttled");
}

#[tokio::test]
async fn failed_sign_ins_back_off_then_lock_known_and_unknown_accounts_alike() {
    let flow = Flow::new().await;
    let page = flow.authorize("&scope=openid", &[]).await;
    let browser = page.cookies();
    let mut answers = Vec::new();
    // Each account from its own address, so only the account is counted.
    for (email, peer) in [
        (EMAIL, "198.51.100.1"),
        ("nobody@example.com", "198.51.100.2"),
    ] {
        let origin = Origin::peer(peer);
        let (first, free) = fail_until_throttled(&flow, &page, &browser, email, origin).await;
        assert_eq!(free, throttle::ACCOUNT.free as usize, "{}", first.body);
        assert_eq!(first.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(first.headers[header::RETRY_AFTER], "1");
        assert!(
            first.body.contains("Wait 1 second before trying again."),
            "{}",
            first.body
        );
        assert_eq!(first.field("tx"), page.field("tx"), "the form stays");
        // Even the right password waits: it is not looked at.
        let right = flow
            .login_as(&page, &browser, email, PASSWORD, origin)
            .await;
        assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS);
        // Each wait doubles, up to the lock.
        let mut waits = Vec::new();
        loop {
            let wait: u64 = flow
                .login_as(&page, &browser, email, "not the password", origin)
                .await
                .headers
                .get(header::RETRY_AFTER)
                .map_or(0, |v| v.to_str().unwrap().parse().unwrap());
            if wait > throttle::ACCOUNT.max_backoff {
                break;
            }
            flow.advance(wait);
            let r = flow
                .login_as(&page, &browser, email, "not the password", origin)
                .await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "after the wait, a try");
            waits.push(wait);
        }
        assert_eq!(waits, [1, 2, 4, 8, 16]);
        let locked = flow
            .login_as(&page, &browser, email, PASSWORD, origin)
            .await;
        assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(locked.headers[header::RETRY_AFTER], "900");
        assert!(
            locked.body.contains("Signing in is locked for 15 minutes"),
            "{}",
            locked.body
        );
        let alert = |a: &crate::http::testing::Answer| {
            let start = a.body.find("role=\"alert\"").expect("an alert");
            a.body[start..]
                .split("</p>")
                .next()
                .unwrap_or_default()
                .to_owned()
        };
        answers.push((first.status, alert(&first), locked.status, alert(&locked)));
    }
    assert_eq!(
        answers[0], answers[1],
        "nothing tells a known email from an unknown one"
    );

    // After the lock, the right password signs in and the count starts over
    // (in a new sign-in: the old one expired meanwhile).
    flow.advance(throttle::LOCK_SECS);
    let origin = Origin::peer("198.51.100.1");
    let page = flow.authorize("&scope=openid", &browser).await;
    let done = flow
        .login_as(&page, &browser, EMAIL, PASSWORD, origin)
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let page = flow.authorize("&scope=openid&prompt=login", &browser).await;
    let (_, free) = fail_until_throttled(&flow, &page, &browser, EMAIL, origin).await;
    assert_eq!(free, throttle::ACCOUNT.free as usize);
}

#[tokio::test]
async fn one_address_guessing_many_accounts_is_throttled_and_others_are_not() {
    let flow = Flow::new().await;
    let page = flow.authorize("&scope=openid", &[]).await;
    let browser = page.cookies();
    let guesser = Origin::peer("203.0.113.7");
    for n in 0..throttle::ADDRESS.free {
        let email = format!("user{n}@example.com");
        let r = flow
            .login_as(&page, &browser, &email, "not the password", guesser)
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "attempt {n}");
    }
    let next = flow
        .login_as(&page, &browser, "fresh@example.com", "x", guesser)
        .await;
    assert_eq!(next.status, StatusCode::TOO_MANY_REQUESTS);
    // The same network for IPv6 is its /64.
    let v6 = flow
        .login_as(
            &page,
            &browser,
            EMAIL,
            PASSWORD,
            Origin::peer("2001:db8::1"),
        )
        .await;
    assert_eq!(v6.status, StatusCode::SEE_OTHER, "another address signs in");
}

#[tokio::test]
async fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
    let config = "trusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\"]";
    let flow = Flow::with_server(ISSUER, config).await;
    let server = flow.issuer.snapshot().config.server.clone();
    let ip = |peer: &str, xff: Option<&str>| {
        let mut headers = axum::http::HeaderMap::new();
        if let Some(v) = xff {
            headers.insert("x-forwarded-for", v.parse().unwrap());
        }
        let peer = std::net::SocketAddr::new(peer.parse().unwrap(), 1);
        crate::http::client_ip(&server, peer, &headers).to_string()
    };
    assert_eq!(ip("127.0.0.1", Some("203.0.113.9")), "203.0.113.9");
    // Read from the right: what the client wrote itself is left of it.
    assert_eq!(
        ip("127.0.0.1", Some("1.2.3.4, 203.0.113.9, 10.1.2.3")),
        "203.0.113.9"
    );
    assert_eq!(ip("127.0.0.1", Some("garbage, 10.1.2.3")), "10.1.2.3");
    assert_eq!(ip("127.0.0.1", None), "127.0.0.1");
    // An untrusted peer's header is its own invention.
    assert_eq!(ip("198.51.100.5", Some("203.0.113.9")), "198.51.100.5");

    // Behind the proxy, two clients are counted apart.
    let page = flow.authorize("&scope=openid", &[]).await;
    let browser = page.cookies();
    let one = Origin {
        peer: "127.0.0.1",
        forwarded_for: Some("203.0.113.1"),
    };
    for n in 0..throttle::ADDRESS.free {
        let email = format!("user{n}@example.com");
        flow.login_as(&page, &browser, &email, "nope", one).await;
    }
    let blocked = flow.login_as(&page, &browser, EMAIL, PASSWORD, one).await;
    assert_eq!(blocked.status, StatusCode::TOO_MANY_REQUESTS);
    let two = Origin {
        peer: "127.0.0.1",
        forwarded_for: Some("203.0.113.2"),
    };
    let fine = flow.login_as(&page, &browser, EMAIL, PASSWORD, two).await;
    assert_eq!(fine.status, StatusCode::SEE_OTHER, "{}", fine.body);
}

#[tokio::test]
async fn one_address_cannot_park_more_than_its_share_of_sign_ins() {
    let flow = Flow::new().await;
    for n in 0..sign_in::MAX_PENDING_PER_ADDRESS {
        let r = flow
            .authorize_from("&scope=openid", &[], "203.0.113.50")
            .await;
        assert_eq!(r.status, StatusCode::OK, "sign-in {n}");
    }
    let over = flow
        .authorize_from("&scope=openid", &[], "203.0.113.50")
        .await;
    assert_eq!(over.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(over.headers[header::RETRY_AFTER], "60");
    assert!(
        over.body
            .contains("Too many sign-ins were started from your network")
    );
    let other = flow
        .authorize_from("&scope=openid", &[], "203.0.113.51")
        .await;
    assert_eq!(other.status, StatusCode::OK);
    // Once they expire, the address may start again.
    flow.advance(PENDING_LIFETIME + 1);
    let later = flow
        .authorize_from("&scope=openid", &[], "203.0.113.50")
        .await;
    assert_eq!(later.status, StatusCode::OK);
}

/// Signs in for `client` with `extra`: the answer to the login form, and
/// every cookie the browser then holds.
async fn signed_in_for(
    flow: &Flow,
    client: &str,
    extra: &str,
) -> (crate::http::testing::Answer, Vec<String>) {
    let page = flow.authorize_for(client, extra, &[], "127.0.0.1").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let browser = page.cookies();
    let done = flow.login(&page, &browser, PASSWORD).await;
    let cookies = browser.into_iter().chain(done.cookies()).collect();
    (done, cookies)
}

const ORDERS_SCOPES: &str = "&scope=openid%20read:orders&audience=https://orders.example.com";

#[tokio::test]
async fn a_third_party_application_asks_once_per_scope_set_and_a_first_party_one_never() {
    let flow = Flow::new().await;
    let (asked, cookies) = signed_in_for(&flow, "partner", ORDERS_SCOPES).await;
    assert_eq!(
        asked.status,
        StatusCode::OK,
        "the consent page: {}",
        asked.body
    );
    assert!(asked.body.contains("Partner App"), "{}", asked.body);
    assert!(
        asked.body.contains("See your &lt;orders&gt;"),
        "the API's words, escaped: {}",
        asked.body
    );
    assert!(asked.body.contains("Know who you are"), "{}", asked.body);
    assert!(asked.body.contains("value=\"deny\""), "{}", asked.body);

    let allowed = flow.consent(&asked, &cookies, "allow").await;
    assert_eq!(allowed.status, StatusCode::SEE_OTHER, "{}", allowed.body);
    assert_eq!(allowed.query("state").as_deref(), Some("s1"));
    let tokens = flow
        .redeem_for("partner", &allowed.query("code").expect("a code"))
        .await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.body);
    let json: serde_json::Value = serde_json::from_str(&tokens.body).expect("json");
    assert_eq!(json["scope"], "openid read:orders");

    // Remembered: the same scopes, or fewer, go straight to a code.
    for extra in [
        ORDERS_SCOPES,
        "&scope=openid&audience=https://orders.example.com",
    ] {
        let again = flow
            .authorize_for("partner", extra, &cookies, "127.0.0.1")
            .await;
        assert_eq!(
            again.status,
            StatusCode::SEE_OTHER,
            "{extra}: {}",
            again.body
        );
        assert!(again.query("code").is_some(), "{extra}");
    }
    // A scope not allowed yet asks again; prompt=none cannot.
    let more = "&scope=openid%20write:orders&audience=https://orders.example.com";
    let asked = flow
        .authorize_for("partner", more, &cookies, "127.0.0.1")
        .await;
    assert_eq!(asked.status, StatusCode::OK);
    assert!(
        asked.body.contains("<li>write:orders</li>"),
        "named when undescribed: {}",
        asked.body
    );
    let silent = flow
        .authorize_for(
            "partner",
            &format!("{more}&prompt=none"),
            &cookies,
            "127.0.0.1",
        )
        .await;
    assert_eq!(silent.query("error").as_deref(), Some("consent_required"));
    assert_eq!(silent.query("state").as_deref(), Some("s1"));
    let denied = flow.consent(&asked, &cookies, "deny").await;
    assert_eq!(denied.status, StatusCode::SEE_OTHER);
    assert_eq!(denied.query("error").as_deref(), Some("access_denied"));
    assert_eq!(denied.query("state").as_deref(), Some("s1"));
    let still = flow
        .authorize_for("partner", more, &cookies, "127.0.0.1")
        .await;
    assert_eq!(still.status, StatusCode::OK, "a refusal is not remembered");

    // A first-party application is not asked, unless with prompt=consent.
    let own = flow.authorize(ORDERS_SCOPES, &cookies).await;
    assert_eq!(own.status, StatusCode::SEE_OTHER, "{}", own.body);
    let forced = flow
        .authorize(&format!("{ORDERS_SCOPES}&prompt=consent"), &cookies)
        .await;
    assert_eq!(forced.status, StatusCode::OK);
    assert!(forced.body.contains("Web &lt;Shop&gt;"), "{}", forced.body);
    let forced = flow
        .authorize_for(
            "partner",
            &format!("{ORDERS_SCOPES}&prompt=consent"),
            &cookies,
            "127.0.0.1",
        )
        .await;
    assert_eq!(
        forced.status,
        StatusCode::OK,
        "prompt=consent asks despite the consent"
    );

    // Withdrawn, it is asked for again.
    let user = flow
        .issuer
        .store
        .user_by_email(EMAIL)
        .await
        .unwrap()
        .expect("the user");
    let withdrawn = flow
        .issuer
        .store
        .withdraw_consent(&user.id, "partner")
        .await
        .unwrap();
    assert_eq!(withdrawn.consents, 1);
    assert_eq!(withdrawn.refresh_families, 0, "no offline_access asked");
    let after = flow
        .authorize_for("partner", ORDERS_SCOPES, &cookies, "127.0.0.1")
        .await;
    assert_eq!(after.status, StatusCode::OK, "asked again");
    assert!(after.body.contains("Allow access?"), "{}", after.body);
}

#[tokio::test]
async fn a_consent_form_works_once_for_its_browser_and_signed_in_user() {
    let flow = Flow::new().await;
    let (asked, cookies) = signed_in_for(&flow, "partner", ORDERS_SCOPES).await;
    assert_eq!(asked.status, StatusCode::OK);
    let browser: Vec<String> = cookies
        .iter()
        .filter(|c| c.starts_with(BROWSER_COOKIE))
        .cloned()
        .collect();
    let session: Vec<String> = cookies
        .iter()
        .filter(|c| c.starts_with(SESSION_COOKIE))
        .cloned()
        .collect();

    let signed_out = flow.consent(&asked, &browser, "allow").await;
    assert_eq!(
        signed_out.status,
        StatusCode::BAD_REQUEST,
        "no session: {}",
        signed_out.body
    );
    let elsewhere = flow.consent(&asked, &session, "allow").await;
    assert_eq!(
        elsewhere.status,
        StatusCode::FORBIDDEN,
        "no browser binding"
    );
    let as_login = flow.login(&asked, &cookies, PASSWORD).await;
    assert_eq!(as_login.status, StatusCode::BAD_REQUEST, "not a login form");
    let undecided = flow.consent(&asked, &cookies, "maybe").await;
    assert_eq!(undecided.status, StatusCode::BAD_REQUEST);

    // Another user signed in in this browser cannot answer for the first.
    let other = crate::store::NewUser {
        email: "bo@example.com".into(),
        password: PASSWORD.into(),
        ..Default::default()
    };
    flow.issuer
        .store
        .add_user(other, 1_000)
        .await
        .expect("a second user");
    let page = flow.authorize("&scope=openid", &browser).await;
    let theirs = flow
        .login_as(
            &page,
            &browser,
            "bo@example.com",
            PASSWORD,
            Origin::default(),
        )
        .await;
    assert_eq!(theirs.status, StatusCode::SEE_OTHER);
    let their_cookies: Vec<String> = browser.iter().cloned().chain(theirs.cookies()).collect();
    let for_them = flow.consent(&asked, &their_cookies, "allow").await;
    assert_eq!(for_them.status, StatusCode::FORBIDDEN, "{}", for_them.body);
    let login_page = flow
        .authorize_for("partner", ORDERS_SCOPES, &browser, "127.0.0.1")
        .await;
    let wrong_form = flow.consent(&login_page, &cookies, "allow").await;
    assert_eq!(
        wrong_form.status,
        StatusCode::BAD_REQUEST,
        "a login form is not a consent form"
    );

    let allowed = flow.consent(&asked, &cookies, "allow").await;
    assert_eq!(allowed.status, StatusCode::SEE_OTHER, "{}", allowed.body);
    let replay = flow.consent(&asked, &cookies, "allow").await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST, "spent");

    let (asked, cookies) = signed_in_for(
        &flow,
        "partner",
        "&scope=openid%20write:orders&audience=https://orders.example.com",
    )
    .await;
    flow.advance(PENDING_LIFETIME + 1);
    let late = flow.consent(&asked, &cookies, "allow").await;
    assert_eq!(late.status, StatusCode::BAD_REQUEST);
    assert!(late.body.contains("expired"), "{}", late.body);
}
