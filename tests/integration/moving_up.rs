//! Moving up from the embedded default (SQLite, a key folder) to PostgreSQL
//! with keys in the store, as `docs/deploy.md` tells an operator to: stop,
//! `tessera store copy`, `tessera keys import`, start on PostgreSQL. A user
//! signed in before the move keeps their refresh token, and tokens signed
//! before it still verify.

use crate::replicas::{code_from, postgres_url, redeem, refresh, replica_config};
use crate::support::*;
use crate::user_flows::{add_user, user_config};

#[test]
fn a_sqlite_issuer_moves_to_postgres_without_its_users_noticing() {
    let Some(pg) = postgres_url() else { return };
    let before = Tessera::start(&user_config());
    let id = add_user(&before, "ada@example.com", "{\"roles\":[\"reader\"]}");
    let (code, verifier) = code_from(&before);
    let tokens = redeem(&before, &code, &verifier);
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    let access = tokens.access_token().to_owned();
    let rt = tokens.body["refresh_token"]
        .as_str()
        .expect("rt")
        .to_owned();
    let old = before.stop();
    let sqlite = format!("sqlite://{}", old.path().join("data/tessera.db").display());

    let (ok, out, err) = run_tessera(&["store", "copy", "--from", &sqlite, "--to", &pg]);
    assert!(ok, "{err}");
    assert!(out.starts_with("copied 1 users, "), "{out}");
    assert!(
        err.contains("tessera keys import"),
        "the key folder is named: {err}"
    );
    let (ok, _, err) = run_tessera(&["store", "copy", "--from", &sqlite, "--to", &pg]);
    assert!(!ok, "a second copy into a full store is refused");
    assert!(err.contains("the target store is not empty"), "{err}");

    let secrets = tempfile::tempdir().expect("secrets");
    let (_dir, config) = write_config(&replica_config(&pg, secrets.path()));
    let keys = old.path().join("data/keys").display().to_string();
    let (ok, out, err) = run_tessera(&["keys", "import", &keys, "--config", &config]);
    assert!(ok, "{err}");
    assert!(out.starts_with("imported 2 keys from"), "{out}");

    let after = Tessera::start(&replica_config(&pg, secrets.path()));
    assert_eq!(
        after.verify(&access, ORDERS)["sub"],
        id,
        "old tokens verify"
    );
    let rotated = refresh(&after, &rt);
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    assert_eq!(after.verify(rotated.access_token(), ORDERS)["sub"], id);
    // The same key signs on, so resource servers need no new fetch.
    let kid = |t: &str| jsonwebtoken::decode_header(t).expect("header").kid;
    assert_eq!(kid(rotated.access_token()), kid(&access));
    // And the user signs in again on the new store.
    let (code, verifier) = code_from(&after);
    assert_eq!(redeem(&after, &code, &verifier).status, 200);
}
