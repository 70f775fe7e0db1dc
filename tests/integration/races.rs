//! Races between replicas on one PostgreSQL: one authorization code or one
//! refresh token presented many times at once, spread over three replicas,
//! and a replica killed (SIGKILL) while refresh tokens rotate through it.
//! What must hold is what a client and the store can observe: at most one
//! request wins, every other one is `invalid_grant`, nothing answers 5xx, and
//! no refresh-token family is left half-written.

use std::sync::Barrier;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::replicas::{SPA_REDIRECT, code_from, postgres_url, redeem, refresh, replica_config};
use crate::support::*;
use crate::user_flows::{
    PASSWORD, add_user, authorize_url, browser, location_params, param, pkce, sign_in,
};

/// Requests racing for one code or refresh token.
const RACERS: usize = 50;

/// Races per test: each with a fresh code or token, to catch a race that
/// is lost only sometimes.
const ROUNDS: usize = 5;

/// POSTs `form` to the token endpoint `RACERS` times at once, request `i` to
/// `bases[i % bases.len()]`. Each thread opens its connection first (a
/// `/healthz`) and waits at a barrier, so the requests reach the replicas
/// together. Returns (replica index, reply) per request.
/// Three replicas on a fresh PostgreSQL schema with Ada signed up: the
/// schema's URL, the folder of their KEK and the replicas; `None` when
/// PostgreSQL is skipped.
fn three_replicas_with_ada() -> Option<(String, tempfile::TempDir, Vec<Tessera>)> {
    let url = postgres_url()?;
    let keys = tempfile::tempdir().expect("keys");
    let r = crate::replicas::replicas(3, &url, keys.path());
    add_user(&r[0], "ada@example.com", "{}");
    Some((url, keys, r))
}

fn race(bases: &[&str], form: &[(&str, &str)]) -> Vec<(usize, Reply)> {
    let barrier = Barrier::new(RACERS);
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..RACERS)
            .map(|i| {
                let barrier = &barrier;
                let replica = i % bases.len();
                let base = bases[replica];
                s.spawn(move || {
                    let http = reqwest::blocking::Client::builder()
                        .timeout(Duration::from_secs(30))
                        .build()
                        .expect("client");
                    let warm = http.get(format!("{base}/healthz")).send();
                    assert!(warm.is_ok_and(|r| r.status() == 200), "{base} is not up");
                    barrier.wait();
                    let reply = http
                        .post(format!("{base}/oauth/token"))
                        .form(form)
                        .send()
                        .unwrap_or_else(|e| panic!("POST {base}/oauth/token: {e}"));
                    (replica, Reply::from(reply))
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("racer"))
            .collect()
    })
}

/// The lines of a replica's log that say something went wrong.
fn trouble(t: &Tessera) -> String {
    t.log()
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("WARN") || l.contains("panicked"))
        .take(40)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Checks the answers of a race: never a 5xx, at most one 200, every other
/// answer a 400 `invalid_grant` without tokens. Returns the 200, if any.
fn at_most_one_winner<'a>(r: &[Tessera], answers: &'a [(usize, Reply)]) -> Option<&'a Reply> {
    let mut winners = Vec::new();
    for (replica, reply) in answers {
        assert!(
            reply.status < 500,
            "replica {replica} answered {} {}; its log:\n{}",
            reply.status,
            reply.body,
            trouble(&r[*replica])
        );
        if reply.status == 200 {
            winners.push(reply);
            continue;
        }
        reply.expect_error(400, "invalid_grant");
        for field in ["access_token", "refresh_token", "id_token"] {
            assert!(reply.body.get(field).is_none(), "{}", reply.body);
        }
    }
    assert!(
        winners.len() <= 1,
        "{} of {} requests won; the first two: {:?}",
        winners.len(),
        answers.len(),
        winners.iter().take(2).map(|w| &w.body).collect::<Vec<_>>()
    );
    winners.pop()
}

/// Runs `f` on a connection to the test schema at `url`.
fn with_db<T>(url: &str, f: impl AsyncFnOnce(&mut sqlx::PgConnection) -> T) -> T {
    use sqlx::Connection as _;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            let mut db = sqlx::PgConnection::connect(url).await.expect("connect");
            let out = f(&mut db).await;
            db.close().await.expect("close");
            out
        })
}

/// The `count(*)` of `query` on the test schema at `url`.
fn count(url: &str, query: &str) -> i64 {
    with_db(url, async |db| {
        sqlx::query_scalar(query)
            .fetch_one(db)
            .await
            .unwrap_or_else(|e| panic!("{query}: {e}"))
    })
}

/// Refresh-token families nothing has revoked.
const LIVE_FAMILIES: &str = "SELECT count(*) FROM refresh_families WHERE NOT revoked";

/// Live families without a token that can still be used: a rotation that
/// marked a token used but never stored its successor.
const HALF_WRITTEN: &str = "SELECT count(*) FROM refresh_families f WHERE NOT f.revoked \
     AND NOT EXISTS (SELECT 1 FROM refresh_tokens t \
                     WHERE t.family_id = f.family_id AND t.used_at IS NULL)";

#[test]
fn one_code_redeemed_fifty_times_at_once_on_three_replicas() {
    let Some((url, _keys, r)) = three_replicas_with_ada() else {
        return;
    };
    let bases: Vec<&str> = r.iter().map(|t| t.base.as_str()).collect();
    let mut won = 0;
    for round in 0..ROUNDS {
        let (code, verifier) = code_from(&r[round % 3]);
        let answers = race(
            &bases,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", "web-spa"),
                ("code", &code),
                ("redirect_uri", SPA_REDIRECT),
                ("code_verifier", &verifier),
            ],
        );
        if let Some(winner) = at_most_one_winner(&r, &answers) {
            won += 1;
            r[0].verify(winner.access_token(), ORDERS);
            let rt = winner.body["refresh_token"]
                .as_str()
                .expect("offline_access was granted: a refresh token");
            // Every other request was a replay of the code, and a replay
            // revokes what the code issued (RFC 6749 §4.1.2, RFC 9700
            // §4.2.4): the winner's refresh token is dead by now, whether
            // its family was stored before the first replay (then revoked
            // by it) or after (then born revoked and refused: the winner
            // got invalid_grant instead, and there is no winner).
            refresh(&r[(round + 1) % 3], rt).expect_error(400, "invalid_grant");
        }
        // Whoever won, no refresh token from this code is usable.
        assert_eq!(count(&url, LIVE_FAMILIES), 0, "round {round}");
        // A late replay is refused too.
        redeem(&r[(round + 2) % 3], &code, &verifier).expect_error(400, "invalid_grant");
    }
    eprintln!("{won} of {ROUNDS} races had a winner");
}

#[test]
fn one_refresh_token_used_fifty_times_at_once_on_three_replicas() {
    let Some((url, _keys, r)) = three_replicas_with_ada() else {
        return;
    };
    let bases: Vec<&str> = r.iter().map(|t| t.base.as_str()).collect();
    let mut won = 0;
    for round in 0..ROUNDS {
        let (code, verifier) = code_from(&r[round % 3]);
        let tokens = redeem(&r[(round + 1) % 3], &code, &verifier);
        assert_eq!(tokens.status, 200, "{}", tokens.body);
        let rt = tokens.body["refresh_token"]
            .as_str()
            .expect("refresh token")
            .to_owned();
        let answers = race(
            &bases,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "web-spa"),
                ("refresh_token", &rt),
            ],
        );
        if let Some(winner) = at_most_one_winner(&r, &answers) {
            won += 1;
            r[1].verify(winner.access_token(), ORDERS);
            // The other uses were reuse: the family is revoked, the token
            // the winner got with it as well (RFC 9700 §4.14.2).
            let rotated = winner.body["refresh_token"].as_str().expect("rotated");
            refresh(&r[(round + 2) % 3], rotated).expect_error(400, "invalid_grant");
        }
        refresh(&r[round % 3], &rt).expect_error(400, "invalid_grant");
        assert_eq!(count(&url, LIVE_FAMILIES), 0, "round {round}");
    }
    eprintln!("{won} of {ROUNDS} races had a winner");
}

/// Families in the kill test, rotations each, and how many rotations in all
/// happen before the kill.
const FAMILIES: usize = 20;
const ROTATIONS: usize = 15;
const KILL_AFTER: usize = FAMILIES * ROTATIONS / 3;

/// The longest the storm may take.
const STORM_LIMIT: Duration = Duration::from_secs(60);

/// A SPA like `web-spa` whose refresh tokens may be used again for 30 s:
/// its client retries a request whose answer was lost.
const RETRYING_SPA: &str = "web-spa-retry";

/// How a family's storm ended.
#[derive(Debug, PartialEq)]
enum End {
    /// Every rotation done.
    Rotated,
    /// A request was cut by the kill, the retry with the same token was
    /// refused as reuse: the cut request had spent it, and without a reuse
    /// leeway that revokes the family (RFC 9700 §4.14.2).
    RevokedAfterCut,
    /// Anything else: a 5xx, a refusal out of the blue, a timeout.
    Failed(String),
}

/// One family's client.
struct Family {
    client: &'static str,
    /// The refresh token the client holds.
    token: String,
    rotations: usize,
    /// Requests cut by the kill (sent, no complete answer).
    cut: usize,
    /// Connections the killed replica refused.
    refused: usize,
    end: End,
}

/// Codes for `client` from one browser: Ada signs in once.
fn codes(t: &Tessera, client: &str, n: usize) -> Vec<(String, String)> {
    let b = browser();
    (0..n)
        .map(|i| {
            let (verifier, challenge) = pkce();
            let url = authorize_url(
                t,
                client,
                SPA_REDIRECT,
                &challenge,
                &format!("&scope=offline_access%20read:orders&audience={ORDERS}"),
            );
            let back = if i == 0 {
                sign_in(&b, t, &url, "ada@example.com", PASSWORD)
            } else {
                b.get(&url).send().expect("authorize")
            };
            let code = param(&location_params(&back), "code")
                .expect("code")
                .to_owned();
            (code, verifier)
        })
        .collect()
}

/// Rotates `family`'s token `ROTATIONS` times, starting on replica `first`
/// and moving to the next one on every request. A request without a complete
/// answer is retried with the same token on the next replica, as a client
/// would.
fn storm(bases: &[String], first: usize, family: &mut Family, rotated: &AtomicUsize) {
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let started = Instant::now();
    let mut k = first;
    let mut after_cut = false;
    while family.rotations < ROTATIONS {
        if started.elapsed() > STORM_LIMIT {
            family.end = End::Failed(format!("not done within {STORM_LIMIT:?}"));
            return;
        }
        let base = &bases[k % bases.len()];
        k += 1;
        let answer = http
            .post(format!("{base}/oauth/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", family.client),
                ("refresh_token", &family.token),
            ])
            .send()
            .and_then(|r| {
                let status = r.status().as_u16();
                r.text().map(|t| (status, t))
            });
        let (status, text) = match answer {
            Err(e) if e.is_connect() => {
                family.refused += 1;
                continue;
            }
            Err(_) => {
                family.cut += 1;
                after_cut = true;
                continue;
            }
            Ok(a) => a,
        };
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        match status {
            200 => {
                family.token = body["refresh_token"]
                    .as_str()
                    .expect("rotated refresh token")
                    .to_owned();
                family.rotations += 1;
                rotated.fetch_add(1, Ordering::SeqCst);
                after_cut = false;
            }
            400 if after_cut && body["error"] == "invalid_grant" && family.client == "web-spa" => {
                family.end = End::RevokedAfterCut;
                return;
            }
            _ => {
                family.end = End::Failed(format!("{base}: {status} {text}"));
                return;
            }
        }
    }
    family.end = End::Rotated;
}

/// What the store says of a refresh token: (unused, its family revoked).
fn token_state(url: &str, token: &str) -> (bool, bool) {
    let hash = tessera::store::secret_hash(token);
    with_db(url, async |db| {
        sqlx::query_as(
            "SELECT t.used_at IS NULL, f.revoked FROM refresh_tokens t \
             JOIN refresh_families f ON f.family_id = t.family_id WHERE t.token_hash = $1",
        )
        .bind(&hash)
        .fetch_one(db)
        .await
        .expect("the token is in the store")
    })
}

/// A refresh request for `client`, a public client.
fn refresh_as(t: &Tessera, client: &str, token: &str) -> Reply {
    t.token(
        None,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", client),
            ("refresh_token", token),
        ],
    )
}

#[test]
fn a_replica_killed_during_a_refresh_storm_leaves_no_family_half_written() {
    let Some(url) = postgres_url() else { return };
    let keys = tempfile::tempdir().expect("keys");
    let config = replica_config(&url, keys.path())
        + &format!(
            "\n[[clients]]\nid = \"{RETRYING_SPA}\"\napp_type = \"spa\"\n\
             redirect_uris = [\"{SPA_REDIRECT}\"]\nrefresh_reuse_leeway_secs = 30\n\
             \n[[grants]]\nclient = \"{RETRYING_SPA}\"\napi = \"{ORDERS}\"\n\
             scopes = [\"read:orders\"]\nsubject = \"user\"\n"
        );
    let mut r: Vec<Tessera> = (0..3).map(|_| Tessera::start(&config)).collect();
    add_user(&r[0], "ada@example.com", "{}");

    // Half the families on a client without reuse leeway, half on one with.
    let mut families: Vec<Family> = Vec::new();
    for client in ["web-spa", RETRYING_SPA] {
        for (i, (code, verifier)) in codes(&r[0], client, FAMILIES / 2).into_iter().enumerate() {
            let tokens = r[i % 3].token(
                None,
                &[
                    ("grant_type", "authorization_code"),
                    ("client_id", client),
                    ("code", &code),
                    ("redirect_uri", SPA_REDIRECT),
                    ("code_verifier", &verifier),
                ],
            );
            assert_eq!(tokens.status, 200, "{}", tokens.body);
            families.push(Family {
                client,
                token: tokens.body["refresh_token"]
                    .as_str()
                    .expect("refresh token")
                    .to_owned(),
                rotations: 0,
                cut: 0,
                refused: 0,
                end: End::Failed("did not run".into()),
            });
        }
    }

    // The storm; replica 1 is killed once a third of the rotations are done.
    let bases: Vec<String> = r.iter().map(|t| t.base.clone()).collect();
    let rotated = AtomicUsize::new(0);
    let started = Instant::now();
    let victim = std::thread::scope(|s| {
        for (i, family) in families.iter_mut().enumerate() {
            let (bases, rotated) = (&bases, &rotated);
            s.spawn(move || storm(bases, i, family, rotated));
        }
        let busy = wait_for(STORM_LIMIT, || rotated.load(Ordering::SeqCst) >= KILL_AFTER);
        let victim = r.remove(1);
        // Paused first, so the families' next requests to it are in flight
        // (sent, unanswered) when it dies: a kill between two requests
        // would cut nothing and prove nothing.
        let paused = std::process::Command::new("kill")
            .args(["-STOP", &victim.pid().to_string()])
            .status()
            .expect("kill -STOP");
        assert!(paused.success(), "kill -STOP: {paused}");
        std::thread::sleep(Duration::from_millis(200));
        let log = victim.log();
        let at = rotated.load(Ordering::SeqCst);
        victim.stop();
        assert!(busy, "the storm did not reach {KILL_AFTER} rotations");
        (at, log)
    });
    let (killed_at, victim_log) = victim;
    let cut: usize = families.iter().map(|f| f.cut).sum();
    let refused: usize = families.iter().map(|f| f.refused).sum();
    eprintln!(
        "storm: {} rotations in {:?}; replica killed after {killed_at}; {cut} requests cut, \
         {refused} refused; ends: {:?}",
        rotated.load(Ordering::SeqCst),
        started.elapsed(),
        families.iter().map(|f| &f.end).collect::<Vec<_>>()
    );
    let victim_trouble: String = victim_log
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("panicked"))
        .take(20)
        .collect::<Vec<_>>()
        .join("\n");
    for (i, f) in families.iter().enumerate() {
        match &f.end {
            End::Rotated => {}
            End::RevokedAfterCut if f.client == "web-spa" => {}
            other => panic!(
                "family {i} ({}): {other:?}\nsurvivors:\n{}\n{}\nkilled replica:\n{victim_trouble}",
                f.client,
                trouble(&r[0]),
                trouble(&r[1])
            ),
        }
    }
    assert!(
        cut > 0,
        "the kill cut no request in flight: the test proved nothing"
    );

    // The store: no live family without a usable token, whatever the kill
    // interrupted (a rotation spends the old token in one statement and
    // stores the new one in another; a cut between them is healed by the
    // retry within the leeway, or is reuse without one).
    assert_eq!(count(&url, HALF_WRITTEN), 0, "half-written families");
    for (i, f) in families.iter().enumerate() {
        let (unused, revoked) = token_state(&url, &f.token);
        match f.end {
            End::Rotated => assert!(
                unused && !revoked,
                "family {i} ({}): the token it holds is spent or revoked",
                f.client
            ),
            _ => assert!(revoked, "family {i}: refused, yet not revoked"),
        }
    }
    let revoked = families
        .iter()
        .filter(|f| f.end == End::RevokedAfterCut)
        .count();
    assert_eq!(
        count(&url, LIVE_FAMILIES),
        (FAMILIES - revoked) as i64,
        "live families"
    );

    // And the clients: each token held works on both survivors, and the
    // revoked families stay revoked.
    for f in &families {
        let first = refresh_as(&r[0], f.client, &f.token);
        if f.end == End::RevokedAfterCut {
            first.expect_error(400, "invalid_grant");
            continue;
        }
        assert_eq!(first.status, 200, "{}", first.body);
        let next = first.body["refresh_token"].as_str().expect("rotated");
        let second = refresh_as(&r[1], f.client, next);
        assert_eq!(second.status, 200, "{}", second.body);
    }
}
