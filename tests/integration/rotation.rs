//! A key rotation while three replicas on one PostgreSQL serve client
//! credentials under load: no request fails, no replica signs with a key
//! that any replica's JWKS does not publish yet, and every token issued
//! verifies against every replica's JWKS afterwards.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::replicas::{postgres_url, replica_config_with_delay};
use crate::support::*;

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .expect("header")
        .kid
        .expect("kid")
}

fn publishes(t: &Tessera, kid: &str) -> bool {
    t.jwks().find(kid).is_some()
}

/// Sets the flag when dropped, so the load threads stop also when the test
/// fails half-way (a scoped thread that never stops would hang it).
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The load never runs longer than this, whatever happens.
const LOAD_LIMIT: Duration = Duration::from_secs(60);

#[test]
fn a_rotation_under_load_fails_nothing_and_every_token_verifies_everywhere() {
    let Some(url) = postgres_url() else { return };
    let secrets = tempfile::tempdir().expect("secrets");
    const DELAY_SECS: u64 = 4;
    let r: Vec<Tessera> = (0..3)
        .map(|_| Tessera::start(&replica_config_with_delay(&url, secrets.path(), DELAY_SECS)))
        .collect();
    let first = kid_of(r[0].acme(&[("audience", ORDERS)]).access_token());
    let seen = Mutex::new(HashSet::from([first.clone()]));
    let stop = AtomicBool::new(false);
    let config = r[0].dir.path().join("tessera.toml").display().to_string();

    let (tokens, new_kid) = std::thread::scope(|s| {
        let load: Vec<_> = (0..6)
            .map(|worker| {
                let (r, seen, stop) = (&r, &seen, &stop);
                s.spawn(move || -> Result<(Vec<String>, usize), String> {
                    let _stop_all = StopOnDrop(stop);
                    let started = Instant::now();
                    let mut tokens = Vec::new();
                    let mut n = worker;
                    while !stop.load(Ordering::Relaxed) && started.elapsed() < LOAD_LIMIT {
                        let i = n % r.len();
                        n += 1;
                        let reply = r[i].acme(&[("audience", ORDERS)]);
                        if reply.status != 200 {
                            return Err(format!("replica {i}: {} {}", reply.status, reply.body));
                        }
                        let token = reply.access_token().to_owned();
                        let kid = kid_of(&token);
                        // The first token signed with a key: every replica
                        // must publish that key already.
                        if seen.lock().expect("seen").insert(kid.clone()) {
                            for (j, other) in r.iter().enumerate() {
                                if !publishes(other, &kid) {
                                    return Err(format!(
                                        "replica {i} signs with {kid}, which replica {j} does not publish yet"
                                    ));
                                }
                            }
                        }
                        // Every token's key was checked above; a sample (and
                        // each key's first token) is verified at the end.
                        if n % 10 == 0 || tokens.is_empty() {
                            tokens.push(token);
                        }
                    }
                    Ok((tokens, n / r.len()))
                })
            })
            .collect();

        let _stop_load = StopOnDrop(&stop);
        std::thread::sleep(Duration::from_millis(500));
        // The key is dated while the command runs, which takes most of a
        // second on a busy machine: the delay counts from before it.
        let asked = Instant::now();
        let (ok, out, err) = run_tessera(&["keys", "rotate", "--config", &config]);
        assert!(ok, "{err}");
        let rotated = Instant::now();
        let new_kid = out.split_whitespace().nth(4).expect("kid").to_owned();
        assert!(
            wait_for(Duration::from_secs(4), || r
                .iter()
                .all(|t| publishes(t, &new_kid))),
            "every replica publishes the new key within a poll"
        );
        assert!(rotated.elapsed() < Duration::from_secs(DELAY_SECS));
        assert!(
            wait_for(Duration::from_secs(DELAY_SECS + 6), || r.iter().all(|t| {
                kid_of(t.acme(&[("audience", ORDERS)]).access_token()) == new_kid
            })),
            "every replica signs with the new key after the delay"
        );
        // Key dates are whole Unix seconds: a key made at x.9 s activates at
        // x + DELAY, so up to a second sooner than DELAY after the command.
        assert!(
            asked.elapsed() >= Duration::from_secs(DELAY_SECS - 1),
            "not before the delay: {:?}",
            asked.elapsed()
        );
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::Relaxed);
        let (mut tokens, mut issued) = (Vec::new(), 0);
        for h in load {
            match h.join().expect("a load thread panicked") {
                Ok((t, n)) => {
                    tokens.extend(t);
                    issued += n * r.len();
                }
                Err(e) => panic!(
                    "{e}\n{}",
                    r.iter().map(Tessera::log).collect::<Vec<_>>().join("\n")
                ),
            }
        }
        eprintln!("{issued} tokens issued over the rotation, none failed");
        (tokens, new_kid)
    });

    let kids: HashSet<String> = tokens.iter().map(|t| kid_of(t)).collect();
    assert_eq!(
        kids,
        HashSet::from([first, new_kid]),
        "both keys signed under load"
    );
    for (i, replica) in r.iter().enumerate() {
        let jwks = replica.jwks();
        for token in &tokens {
            let claims = verify_access_token(&jwks, token, ORDERS, ISSUER);
            assert_eq!(claims["client_id"], "acme-sync", "replica {i}");
        }
    }
}
