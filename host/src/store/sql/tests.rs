//! The statements' behaviour, on every backend.

use std::collections::HashMap;

use serde_json::json;

use crate::store::testing::{on_each_backend, postgres_for_test, postgres_url_for_test};
use crate::store::{Backend, NewUser, Store, secret_hash};

use super::*;

async fn add_user(store: &Store, email: &str) -> String {
    store
        .add_user(
            NewUser {
                email: email.into(),
                password: "correct horse battery".into(),
                ..NewUser::default()
            },
            1,
        )
        .await
        .unwrap()
        .id
}

fn claims(value: Value) -> Metadata {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn code(code_hash: &str, user_id: &str, expires_at: u64) -> CodeRecord {
    CodeRecord {
        code_hash: code_hash.into(),
        client_id: "spa".into(),
        redirect_uri: "https://app.example.com/cb".into(),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        user_id: user_id.into(),
        scopes: vec!["openid".into(), "read:orders".into()],
        audience: Some("https://orders.example.com".into()),
        nonce: Some("n-0S6_WzA2Mj".into()),
        auth_time: 1_000,
        access_claims: claims(json!({"https://claims.example.com/roles": ["admin"]})),
        id_claims: claims(json!({"nickname": "kim"})),
        issued_at: 1_000,
        expires_at,
    }
}

fn refresh(token_hash: &str, family_id: &str, user_id: &str, expires_at: u64) -> RefreshRecord {
    RefreshRecord {
        token_hash: token_hash.into(),
        family_id: family_id.into(),
        client_id: "spa".into(),
        user_id: user_id.into(),
        scopes: vec!["openid".into(), "offline_access".into()],
        audience: Some("https://orders.example.com".into()),
        auth_time: 1_000,
        access_claims: claims(json!({"tier": "gold"})),
        id_claims: Metadata::new(),
        code_hash: None,
        issued_at: 1_000,
        expires_at,
    }
}

fn sqlite_pool(store: &Store) -> &sqlx::SqlitePool {
    match &store.backend {
        Backend::Sqlite(db) => &db.pool,
        Backend::Postgres(_) => panic!("not an SQLite store"),
    }
}

/// The ids of the refresh families in the store.
async fn family_ids(store: &Store) -> Vec<String> {
    on_backend!(store, db => sqlx::query(
        "SELECT family_id FROM refresh_families ORDER BY family_id",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap()
    .iter()
    .map(|row| row.text("family_id").unwrap())
    .collect())
}

#[tokio::test]
async fn opening_creates_a_private_wal_database_and_reopens_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/data/tessera.db");
    let url = format!("sqlite://{}", path.display());
    let store = Store::open(&url).await.unwrap();
    let user = add_user(&store, "ann@example.com").await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(sqlite_pool(&store))
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(sqlite_pool(&store))
        .await
        .unwrap();
    assert_eq!(fk, 1);
    drop(store);

    // Migrations are recorded once; the data is still there.
    let store = Store::open(&url).await.unwrap();
    assert!(store.user_by_id(&user).await.unwrap().is_some());
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(sqlite_pool(&store))
        .await
        .unwrap();
    assert_eq!(applied, MIGRATIONS.len() as i64);
}

#[tokio::test]
async fn a_code_is_used_once_then_replayed() {
    on_each_backend(|store| async move {
        let user = add_user(&store, "kim@example.com").await;
        let record = code("h-code-1", &user, 1_600);
        store.put_code(&record).await.unwrap();
        assert_eq!(
            store.consume_code("h-code-1", 1_010).await.unwrap(),
            CodeUse::Fresh(record.clone())
        );
        assert_eq!(
            store.consume_code("h-code-1", 1_040).await.unwrap(),
            CodeUse::Replayed(record.clone())
        );
        assert_eq!(
            store.consume_code("h-other", 1_010).await.unwrap(),
            CodeUse::Unknown
        );
        let err = store.put_code(&record).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err}");
        let err = store
            .put_code(&code("h-code-2", "u_nobody", 1_600))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Invalid {
                    field: "user_id",
                    ..
                }
            ),
            "{err}"
        );
    })
    .await;
}

#[tokio::test]
async fn an_expired_code_is_refused_and_consumed_anyway() {
    on_each_backend(|store| async move {
        let user = add_user(&store, "kim@example.com").await;
        store.put_code(&code("h-late", &user, 1_600)).await.unwrap();
        store.put_code(&code("h-edge", &user, 1_600)).await.unwrap();
        assert_eq!(
            store.consume_code("h-late", 1_600).await.unwrap(),
            CodeUse::Expired
        );
        // Consumed by the expired attempt: a clock that goes back finds it used.
        assert!(matches!(
            store.consume_code("h-late", 1_100).await.unwrap(),
            CodeUse::Replayed(_)
        ));
        assert!(matches!(
            store.consume_code("h-edge", 1_599).await.unwrap(),
            CodeUse::Fresh(_)
        ));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_parallel_redemptions_of_one_code_give_one_fresh() {
    on_each_backend(|store| async move {
        let user = add_user(&store, "par@example.com").await;
        store.put_code(&code("h-race", &user, 1_600)).await.unwrap();
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(50));
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let store = store.clone();
                let barrier = barrier.clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.consume_code("h-race", 1_010).await
                })
            })
            .collect();
        let mut counts = HashMap::new();
        for task in tasks {
            let outcome = match task.await.unwrap().unwrap() {
                CodeUse::Fresh(_) => "fresh",
                CodeUse::Replayed(_) => "replayed",
                CodeUse::Expired => "expired",
                CodeUse::Unknown => "unknown",
            };
            *counts.entry(outcome).or_insert(0) += 1;
        }
        assert_eq!(counts, HashMap::from([("fresh", 1), ("replayed", 49)]));
    })
    .await;
}

#[tokio::test]
async fn refresh_rotation_and_reuse_revokes_the_family() {
    on_each_backend(|store| async move {
        let user = add_user(&store, "kim@example.com").await;
        let rt1 = refresh("h-rt1", "fam-1", &user, 9_000);
        store.put_refresh(&rt1).await.unwrap();
        assert_eq!(
            store.use_refresh("h-rt1", 2_000).await.unwrap(),
            RefreshUse::Fresh(rt1.clone())
        );
        let rt2 = refresh("h-rt2", "fam-1", &user, 9_000);
        store.put_refresh(&rt2).await.unwrap();
        assert!(matches!(
            store.use_refresh("h-rt2", 2_100).await.unwrap(),
            RefreshUse::Fresh(_)
        ));
        store
            .put_refresh(&refresh("h-rt3", "fam-1", &user, 9_000))
            .await
            .unwrap();

        // An attacker replays RT1: reuse detected, the whole family dies.
        assert_eq!(
            store.use_refresh("h-rt1", 2_200).await.unwrap(),
            RefreshUse::Reused(rt1)
        );
        assert_eq!(
            store.use_refresh("h-rt3", 2_300).await.unwrap(),
            RefreshUse::Revoked
        );
        assert_eq!(
            store.use_refresh("h-rt2", 2_300).await.unwrap(),
            RefreshUse::Revoked
        );
        assert_eq!(
            store.use_refresh("h-rt1", 2_300).await.unwrap(),
            RefreshUse::Revoked
        );
        // Nothing can be added to it any more (a rotation racing the reuse).
        let err = store
            .put_refresh(&refresh("h-rt4", "fam-1", &user, 9_000))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Revoked), "{err}");
        assert_eq!(
            store.use_refresh("h-rt4", 2_300).await.unwrap(),
            RefreshUse::Unknown
        );

        // Other families are untouched.
        store
            .put_refresh(&refresh("h-other", "fam-2", &user, 9_000))
            .await
            .unwrap();
        assert!(matches!(
            store.use_refresh("h-other", 2_400).await.unwrap(),
            RefreshUse::Fresh(_)
        ));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_uses_of_a_refresh_token_give_one_fresh_and_revoke_the_family() {
    on_each_backend(|store| async move {
        let user = add_user(&store, "par@example.com").await;
        store
            .put_refresh(&refresh("h-rt", "fam", &user, 9_000))
            .await
            .unwrap();
        let tasks: Vec<_> = (0..5)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.use_refresh("h-rt", 2_000).await })
            })
            .collect();
        let mut fresh = 0;
        for task in tasks {
            match task.await.unwrap().unwrap() {
                RefreshUse::Fresh(_) => fresh += 1,
                RefreshUse::Reused(_) | RefreshUse::Revoked => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(fresh, 1);
        let err = store
            .put_refresh(&refresh("h-rt2", "fam", &user, 9_000))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Revoked), "{err}");
    })
    .await;
}

#[tokio::test]
async fn a_rotation_spends_the_token_and_stores_its_successor_in_one_commit() {
    on_each_backend(|store| async move {
        let user = add_user(&store, "rot@example.com").await;
        store
            .put_refresh(&refresh("h-1", "fam", &user, 9_000))
            .await
            .unwrap();
        let RefreshUse::Fresh(old) = store
            .rotate_refresh("h-1", 2_000, 0, "h-2", 8_000)
            .await
            .unwrap()
        else {
            panic!("the first rotation is fresh");
        };
        assert_eq!(old.token_hash, "h-1");
        let next = store
            .refresh_token("h-2")
            .await
            .unwrap()
            .expect("successor");
        assert_eq!(
            (next.family_id.as_str(), next.issued_at, next.expires_at),
            ("fam", 2_000, 8_000)
        );
        assert_eq!(next.scopes, old.scopes, "the family keeps its grant");

        // Concurrent rotations of the successor: one wins, and the family
        // gains exactly one more token.
        let tasks: Vec<_> = (0..10)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .rotate_refresh("h-2", 3_000, 0, &format!("h-3-{i}"), 8_000)
                        .await
                })
            })
            .collect();
        let mut fresh = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(RefreshUse::Fresh(_)) => fresh += 1,
                Ok(RefreshUse::Reused(_) | RefreshUse::Revoked) | Err(StoreError::Revoked) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(fresh, 1);
        // The replays revoked the family: nothing rotates any more, and a
        // refused rotation stores no successor and spends nothing.
        assert!(matches!(
            store.rotate_refresh("h-1", 4_000, 0, "h-x", 8_000).await,
            Ok(RefreshUse::Revoked) | Err(StoreError::Revoked)
        ));
        assert!(store.refresh_token("h-x").await.unwrap().is_none());

        // A family revoked between the read and the rotation: refused, the
        // token stays unused.
        store
            .put_refresh(&refresh("h-a", "fam-2", &user, 9_000))
            .await
            .unwrap();
        store.revoke_family("fam-2").await.unwrap();
        assert_eq!(
            store
                .rotate_refresh("h-a", 2_000, 0, "h-b", 8_000)
                .await
                .unwrap(),
            RefreshUse::Revoked
        );
        assert!(store.refresh_token("h-b").await.unwrap().is_none());
    })
    .await;
}

#[tokio::test]
async fn refresh_expiry_unknown_and_family_ownership() {
    on_each_backend(|store| async move {
        let user = add_user(&store, "kim@example.com").await;
        store
            .put_refresh(&refresh("h-old", "fam-old", &user, 5_000))
            .await
            .unwrap();
        assert_eq!(
            store.use_refresh("h-old", 5_000).await.unwrap(),
            RefreshUse::Expired
        );
        assert_eq!(
            store.use_refresh("h-none", 1_000).await.unwrap(),
            RefreshUse::Unknown
        );

        let mut other_client = refresh("h-x", "fam-old", &user, 9_000);
        other_client.client_id = "web".into();
        let err = store.put_refresh(&other_client).await.unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Invalid {
                    field: "family_id",
                    ..
                }
            ),
            "{err}"
        );
        let err = store
            .put_refresh(&refresh("h-old", "fam-new", &user, 9_000))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    })
    .await;
}

#[tokio::test]
async fn a_replayed_code_revokes_its_families_present_and_future() {
    on_each_backend(|store| async move {
        let user = add_user(&store, "kim@example.com").await;
        store.put_code(&code("h-code", &user, 1_600)).await.unwrap();
        assert!(matches!(
            store.consume_code("h-code", 1_010).await.unwrap(),
            CodeUse::Fresh(_)
        ));
        let mut rt = refresh("h-rt", "fam-code", &user, 9_000);
        rt.code_hash = Some("h-code".into());
        store.put_refresh(&rt).await.unwrap();

        assert!(matches!(
            store.consume_code("h-code", 1_020).await.unwrap(),
            CodeUse::Replayed(_)
        ));
        assert_eq!(store.revoke_from_code("h-code").await.unwrap(), 1);
        assert_eq!(
            store.use_refresh("h-rt", 1_030).await.unwrap(),
            RefreshUse::Revoked
        );

        // The first redemption may still be minting: its family is stillborn.
        let mut late = refresh("h-late", "fam-late", &user, 9_000);
        late.code_hash = Some("h-code".into());
        let err = store.put_refresh(&late).await.unwrap_err();
        assert!(matches!(err, StoreError::Revoked), "{err}");
        assert_eq!(store.revoke_from_code("h-code").await.unwrap(), 0);
    })
    .await;
}

#[tokio::test]
async fn revocation_by_family_and_by_token_for_its_client_only() {
    on_each_backend(|store| async move {
        let user = add_user(&store, "kim@example.com").await;
        store
            .put_refresh(&refresh("h-a", "fam-a", &user, 9_000))
            .await
            .unwrap();
        store
            .put_refresh(&refresh("h-b", "fam-b", &user, 9_000))
            .await
            .unwrap();

        assert!(!store.revoke_refresh("h-a", "someone-else").await.unwrap());
        assert!(!store.revoke_refresh("h-unknown", "spa").await.unwrap());
        assert!(store.revoke_refresh("h-a", "spa").await.unwrap());
        assert_eq!(
            store.use_refresh("h-a", 2_000).await.unwrap(),
            RefreshUse::Revoked
        );

        assert!(store.revoke_family("fam-b").await.unwrap());
        assert!(!store.revoke_family("fam-none").await.unwrap());
        assert_eq!(
            store.use_refresh("h-b", 2_000).await.unwrap(),
            RefreshUse::Revoked
        );
    })
    .await;
}

#[tokio::test]
async fn a_refresh_tokens_status_follows_its_use_family_and_expiry() {
    on_each_backend(|store| async move {
        let user = add_user(&store, "ines@example.com").await;
        store
            .put_refresh(&refresh("h-live", "fam-1", &user, 9_000))
            .await
            .unwrap();
        store
            .put_refresh(&refresh("h-other", "fam-2", &user, 9_000))
            .await
            .unwrap();
        let active = |hash: &'static str, now: u64| {
            let store = &store;
            async move {
                store
                    .refresh_status(hash, now)
                    .await
                    .unwrap()
                    .map(|s| s.active)
            }
        };
        assert_eq!(active("h-live", 2_000).await, Some(true));
        let status = store
            .refresh_status("h-live", 2_000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(status.record, refresh("h-live", "fam-1", &user, 9_000));
        assert_eq!(active("h-live", 9_000).await, Some(false), "expired");
        assert_eq!(active("h-unknown", 2_000).await, None);

        // Rotated: the old token is spent, its successor active.
        let rotated = store
            .rotate_refresh("h-live", 2_000, 60, "h-next", 9_500)
            .await
            .unwrap();
        assert!(matches!(rotated, RefreshUse::Fresh(_)));
        assert_eq!(
            active("h-live", 2_001).await,
            Some(false),
            "used, even within the leeway"
        );
        assert_eq!(active("h-next", 2_001).await, Some(true));

        store.revoke_family("fam-2").await.unwrap();
        assert_eq!(active("h-other", 2_000).await, Some(false), "revoked");
    })
    .await;
}

#[tokio::test]
async fn revoked_access_tokens_are_listed_once_until_they_expire() {
    on_each_backend(|store| async move {
        assert!(!store.access_token_revoked("jti-1").await.unwrap());
        store
            .revoke_access_token("jti-1", "spa", 1_000, 4_600)
            .await
            .unwrap();
        store
            .revoke_access_token("jti-1", "spa", 1_001, 4_600)
            .await
            .expect("revoking twice is no error");
        assert!(store.access_token_revoked("jti-1").await.unwrap());
        assert!(!store.access_token_revoked("jti-2").await.unwrap());
        assert!(matches!(
            store.revoke_access_token("", "spa", 1_000, 4_600).await,
            Err(StoreError::Invalid { .. })
        ));
        assert_eq!(store.purge_expired(4_599).await.unwrap(), Purged::default());
        assert_eq!(
            store
                .purge_expired(4_600)
                .await
                .unwrap()
                .revoked_access_tokens,
            1
        );
        assert!(!store.access_token_revoked("jti-1").await.unwrap());
    })
    .await;
}

#[tokio::test]
async fn a_client_assertion_is_spent_once_per_client_until_it_expires() {
    on_each_backend(|store| async move {
        assert!(
            store
                .spend_client_assertion("acme", "j-1", 1_060)
                .await
                .unwrap()
        );
        assert!(
            !store
                .spend_client_assertion("acme", "j-1", 1_060)
                .await
                .unwrap()
        );
        assert!(
            store
                .spend_client_assertion("other", "j-1", 1_060)
                .await
                .unwrap(),
            "a jti is unique per client, not across clients"
        );
        assert!(matches!(
            store.spend_client_assertion("acme", "", 1_060).await,
            Err(StoreError::Invalid { .. })
        ));
        let spends: Vec<_> = (0..20)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(
                    async move { store.spend_client_assertion("acme", "j-race", 1_060).await },
                )
            })
            .collect();
        let mut wins = 0;
        for spend in spends {
            wins += usize::from(spend.await.unwrap().unwrap());
        }
        assert_eq!(wins, 1, "one of twenty concurrent uses wins");
        assert_eq!(store.purge_expired(1_059).await.unwrap(), Purged::default());
        assert_eq!(
            store.purge_expired(1_060).await.unwrap().client_assertions,
            3
        );
    })
    .await;
}

#[tokio::test]
async fn sessions_expire_and_end() {
    on_each_backend(|store| async move {
        let user = add_user(&store, "kim@example.com").await;
        store
            .create_session("h-sid", &user, 1_000, 2_000)
            .await
            .unwrap();
        let session = Session {
            user_id: user.clone(),
            auth_time: 1_000,
            expires_at: 2_000,
        };
        assert_eq!(store.session("h-sid", 1_999).await.unwrap(), Some(session));
        assert_eq!(store.session("h-sid", 2_000).await.unwrap(), None);
        assert_eq!(store.session("h-nope", 1_500).await.unwrap(), None);
        assert!(matches!(
            store
                .create_session("h-sid", &user, 1_000, 2_000)
                .await
                .unwrap_err(),
            StoreError::Conflict(_)
        ));
        assert!(store.delete_session("h-sid").await.unwrap());
        assert!(!store.delete_session("h-sid").await.unwrap());
        assert_eq!(store.session("h-sid", 1_500).await.unwrap(), None);
        assert!(matches!(
            store
                .create_session("h-x", "u_nobody", 1, 2)
                .await
                .unwrap_err(),
            StoreError::Invalid {
                field: "user_id",
                ..
            }
        ));
    })
    .await;
}

#[tokio::test]
async fn failed_sign_ins_count_block_and_are_forgotten() {
    on_each_backend(|store| async move {
        let (a, b) = ("account:a", "address:198.51.100.7");
        for n in 1..=3 {
            assert_eq!(
                store.record_login_failure(a, 1_000, 1_900).await.unwrap(),
                n
            );
        }
        assert_eq!(store.login_blocked_until(&[a, b], 1_000).await.unwrap(), 0);
        store.block_login(a, 1_060, 1_960).await.unwrap();
        store.record_login_failure(b, 1_000, 1_900).await.unwrap();
        assert_eq!(
            store.login_blocked_until(&[a, b], 1_010).await.unwrap(),
            1_060
        );
        assert_eq!(store.login_blocked_until(&[b], 1_010).await.unwrap(), 0);
        // Past its expiry a count is gone, and starts again from one.
        assert_eq!(store.login_blocked_until(&[a], 1_960).await.unwrap(), 0);
        assert_eq!(
            store.record_login_failure(a, 1_960, 2_800).await.unwrap(),
            1
        );
        assert_eq!(store.login_blocked_until(&[a], 1_970).await.unwrap(), 0);
        store.clear_login_failures(a).await.unwrap();
        assert_eq!(
            store.record_login_failure(a, 1_970, 2_800).await.unwrap(),
            1
        );
    })
    .await;
}

#[tokio::test]
async fn pending_requests_are_counted_per_source_up_to_a_cap() {
    on_each_backend(|store| async move {
        for (i, source) in ["198.51.100.7", "198.51.100.7", "198.51.100.7", "2001:db8::"]
            .iter()
            .enumerate()
        {
            store
                .put_pending(&format!("h-{i}"), &json!({}), source, 2_000)
                .await
                .unwrap();
        }
        store
            .put_pending("h-gone", &json!({}), "198.51.100.7", 1_200)
            .await
            .unwrap();
        let counts = |source: &'static str, now, cap| {
            let store = &store;
            async move { store.pending_counts(source, now, cap).await.unwrap() }
        };
        assert_eq!(counts("198.51.100.7", 1_000, 100).await, (4, 5));
        assert_eq!(counts("198.51.100.7", 1_500, 100).await, (3, 4));
        assert_eq!(counts("2001:db8::", 1_500, 100).await, (1, 4));
        assert_eq!(counts("198.51.100.7", 1_500, 2).await, (2, 2));
        assert_eq!(counts("203.0.113.1", 1_500, 100).await, (0, 4));
    })
    .await;
}

#[tokio::test]
async fn a_pending_request_is_taken_once() {
    on_each_backend(|store| async move {
        let data = json!({"client_id": "spa", "scope": ["openid"], "state": "xyz"});
        store
            .put_pending("h-p", &data, "198.51.100.7", 2_000)
            .await
            .unwrap();
        assert_eq!(
            store.get_pending("h-p", 1_000).await.unwrap(),
            Some(data.clone())
        );
        assert_eq!(
            store.get_pending("h-p", 1_000).await.unwrap(),
            Some(data.clone())
        );
        assert_eq!(
            store.take_pending("h-p", 1_000).await.unwrap(),
            Some(data.clone())
        );
        assert_eq!(store.take_pending("h-p", 1_000).await.unwrap(), None);
        assert_eq!(store.get_pending("h-p", 1_000).await.unwrap(), None);

        store
            .put_pending("h-old", &data, "198.51.100.7", 2_000)
            .await
            .unwrap();
        assert_eq!(store.get_pending("h-old", 2_000).await.unwrap(), None);
        assert_eq!(store.take_pending("h-old", 2_000).await.unwrap(), None);
        assert_eq!(
            store.take_pending("h-old", 1_000).await.unwrap(),
            None,
            "an expired take still removed it"
        );

        store
            .put_pending("h-dup", &data, "198.51.100.7", 2_000)
            .await
            .unwrap();
        assert!(matches!(
            store
                .put_pending("h-dup", &data, "198.51.100.7", 2_000)
                .await
                .unwrap_err(),
            StoreError::Conflict(_)
        ));
        let huge = json!({"x": "y".repeat(crate::store::PENDING_MAX_BYTES)});
        assert!(matches!(
            store
                .put_pending("h-huge", &huge, "198.51.100.7", 2_000)
                .await
                .unwrap_err(),
            StoreError::Invalid { field: "data", .. }
        ));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_takes_of_a_pending_request_give_it_once() {
    on_each_backend(|store| async move {
        store
            .put_pending("h-p", &json!({"n": 1}), "198.51.100.7", 2_000)
            .await
            .unwrap();
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.take_pending("h-p", 1_000).await })
            })
            .collect();
        let mut got = 0;
        for task in tasks {
            got += usize::from(task.await.unwrap().unwrap().is_some());
        }
        assert_eq!(got, 1);
    })
    .await;
}

#[tokio::test]
async fn removing_a_user_ends_sessions_codes_and_refresh_tokens() {
    on_each_backend(|store| async move {
        let user = add_user(&store, "kim@example.com").await;
        let other = add_user(&store, "other@example.com").await;
        store
            .create_session("h-s1", &user, 1_000, 9_000)
            .await
            .unwrap();
        store
            .create_session("h-s2", &other, 1_000, 9_000)
            .await
            .unwrap();
        store.put_code(&code("h-c1", &user, 9_000)).await.unwrap();
        store
            .put_refresh(&refresh("h-r1", "fam-1", &user, 9_000))
            .await
            .unwrap();
        store
            .put_refresh(&refresh("h-r2", "fam-2", &other, 9_000))
            .await
            .unwrap();

        assert!(store.remove_user(&user).await.unwrap());
        assert_eq!(store.session("h-s1", 2_000).await.unwrap(), None);
        assert_eq!(
            store.consume_code("h-c1", 2_000).await.unwrap(),
            CodeUse::Unknown
        );
        assert_eq!(
            store.use_refresh("h-r1", 2_000).await.unwrap(),
            RefreshUse::Revoked
        );
        // The other user keeps everything.
        assert!(store.session("h-s2", 2_000).await.unwrap().is_some());
        assert!(matches!(
            store.use_refresh("h-r2", 2_000).await.unwrap(),
            RefreshUse::Fresh(_)
        ));
    })
    .await;
}

#[tokio::test]
async fn purge_deletes_what_expired_and_keeps_the_rest() {
    on_each_backend(|store| async move {
        let user = add_user(&store, "kim@example.com").await;
        store
            .put_code(&code("h-c-old", &user, 1_500))
            .await
            .unwrap();
        store
            .put_code(&code("h-c-new", &user, 3_000))
            .await
            .unwrap();
        store
            .put_pending("h-p-old", &json!({}), "198.51.100.7", 1_500)
            .await
            .unwrap();
        store
            .put_pending("h-p-new", &json!({}), "198.51.100.7", 3_000)
            .await
            .unwrap();
        store
            .create_session("h-s-old", &user, 1_000, 1_500)
            .await
            .unwrap();
        store
            .create_session("h-s-new", &user, 1_000, 3_000)
            .await
            .unwrap();
        store
            .put_refresh(&refresh("h-r-old", "fam-old", &user, 1_500))
            .await
            .unwrap();
        store
            .put_refresh(&refresh("h-r-new", "fam-new", &user, 3_000))
            .await
            .unwrap();
        store
            .revoke_access_token("jti-old", "spa", 1_000, 1_500)
            .await
            .unwrap();
        store
            .revoke_access_token("jti-new", "spa", 1_000, 3_000)
            .await
            .unwrap();

        store
            .spend_client_assertion("acme", "jti-old", 1_500)
            .await
            .unwrap();
        store
            .spend_client_assertion("acme", "jti-new", 3_000)
            .await
            .unwrap();
        store
            .record_login_failure("account:old", 1_000, 1_500)
            .await
            .unwrap();
        store
            .record_login_failure("account:new", 1_000, 3_000)
            .await
            .unwrap();

        let purged = store.purge_expired(2_000).await.unwrap();
        assert_eq!(
            purged,
            Purged {
                codes: 1,
                pending: 1,
                sessions: 1,
                refresh_tokens: 1,
                revoked_access_tokens: 1,
                login_failures: 1,
                client_assertions: 1,
            }
        );
        assert_eq!(family_ids(&store).await, ["fam-new"]);
        assert_eq!(
            store.consume_code("h-c-old", 1_000).await.unwrap(),
            CodeUse::Unknown
        );
        assert!(matches!(
            store.consume_code("h-c-new", 1_000).await.unwrap(),
            CodeUse::Fresh(_)
        ));
        assert!(store.get_pending("h-p-new", 1_000).await.unwrap().is_some());
        assert!(store.session("h-s-new", 1_000).await.unwrap().is_some());
        assert!(!store.access_token_revoked("jti-old").await.unwrap());
        assert!(store.access_token_revoked("jti-new").await.unwrap());
        assert!(matches!(
            store.use_refresh("h-r-new", 1_000).await.unwrap(),
            RefreshUse::Fresh(_)
        ));
        assert_eq!(store.purge_expired(2_000).await.unwrap(), Purged::default());
    })
    .await;
}

/// What a client holds and a user types, as the store is given them: the
/// password in plaintext (the store hashes it), the rest as their hashes.
const PASSWORD: &str = "Plaintext-Passw0rd-7f3a";
const CLIENT_SECRETS: [&str; 4] = [
    "code-PLAINTEXT-8d1c0a",
    "refresh-PLAINTEXT-44b2e9",
    "session-PLAINTEXT-91aa07",
    "pending-PLAINTEXT-5e6f3c",
];

async fn store_one_of_each(store: &Store) {
    let user = store
        .add_user(
            NewUser {
                email: "secret@example.com".into(),
                password: PASSWORD.into(),
                ..NewUser::default()
            },
            1,
        )
        .await
        .unwrap()
        .id;
    let [code_secret, refresh_secret, session_secret, pending_secret] = CLIENT_SECRETS;
    store
        .put_code(&code(&secret_hash(code_secret), &user, 9_000))
        .await
        .unwrap();
    let mut rt = refresh(&secret_hash(refresh_secret), "fam", &user, 9_000);
    rt.code_hash = Some(secret_hash(code_secret));
    store.put_refresh(&rt).await.unwrap();
    store
        .create_session(&secret_hash(session_secret), &user, 1_000, 9_000)
        .await
        .unwrap();
    store
        .put_pending(
            &secret_hash(pending_secret),
            &json!({"state": "s"}),
            "198.51.100.7",
            9_000,
        )
        .await
        .unwrap();
}

/// Whether what the database holds (`bytes`) has no secret in plaintext,
/// the hashes of the client's secrets and an argon2id password hash.
fn assert_no_plaintext(bytes: &[u8]) {
    let contains = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(!contains(PASSWORD), "the password is stored in plaintext");
    for secret in CLIENT_SECRETS {
        assert!(!contains(secret), "{secret} is stored in plaintext");
        assert!(contains(&secret_hash(secret)), "{secret}'s hash is stored");
    }
    assert!(contains("secret@example.com"), "the scan reads the data");
    assert!(
        contains("$argon2id$"),
        "the password is stored as an argon2id hash"
    );
}

#[tokio::test]
async fn the_database_files_hold_no_plaintext_secret() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = Store::open(&url).await.unwrap();
    store_one_of_each(&store).await;
    store.close().await;
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    assert_no_plaintext(&bytes);
}

#[tokio::test]
async fn the_postgres_tables_hold_no_plaintext_secret() {
    let Some(store) = postgres_for_test().await else {
        return;
    };
    store_one_of_each(&store).await;
    let Backend::Postgres(db) = &store.backend else {
        unreachable!()
    };
    // Every row of every table of the schema, as JSON: what a dump holds.
    let mut bytes = Vec::new();
    for table in [
        "users",
        "sessions",
        "pending_requests",
        "authorization_codes",
        "refresh_families",
        "refresh_tokens",
    ] {
        let rows = sqlx::query(&format!(
            "SELECT row_to_json(t)::text AS row FROM {table} t"
        ))
        .fetch_all(&db.pool)
        .await
        .unwrap();
        for row in rows {
            bytes.extend(row.text("row").unwrap().into_bytes());
        }
    }
    assert_no_plaintext(&bytes);
}

#[tokio::test]
async fn a_refresh_token_may_be_used_again_within_the_leeway_only() {
    on_each_backend(|store| async move {
        let user = add_user(&store, "kim@example.com").await;
        store
            .put_refresh(&refresh("h-rt", "fam", &user, 9_000))
            .await
            .unwrap();
        let fresh = |u: RefreshUse| matches!(u, RefreshUse::Fresh(_));
        assert!(fresh(
            store
                .use_refresh_with_leeway("h-rt", 2_000, 10)
                .await
                .unwrap()
        ));
        // The response was lost; the client retries within the leeway.
        assert!(fresh(
            store
                .use_refresh_with_leeway("h-rt", 2_009, 10)
                .await
                .unwrap()
        ));
        // Ten seconds after the first use it is reuse, as without leeway.
        assert!(matches!(
            store
                .use_refresh_with_leeway("h-rt", 2_010, 10)
                .await
                .unwrap(),
            RefreshUse::Reused(_)
        ));
        assert_eq!(
            store
                .use_refresh_with_leeway("h-rt", 2_011, 10)
                .await
                .unwrap(),
            RefreshUse::Revoked
        );
    })
    .await;
}

#[tokio::test]
async fn a_schema_newer_than_this_build_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut urls = vec![format!("sqlite://{}", dir.path().join("t.db").display())];
    urls.extend(postgres_url_for_test().await);
    for url in urls {
        let store = Store::open(&url).await.unwrap();
        assert_eq!(store.schema_version(), Store::latest_schema_version());
        let future = Store::latest_schema_version() + 1;
        on_backend!(store, db => sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES ($1, 'from a newer tessera', TRUE, $2, 0)",
        )
        .bind(future)
        .bind(vec![0u8; 48])
        .execute(&db.pool)
        .await
        .map(|_| ())
        .unwrap());
        store.close().await;
        let err = Store::open(&url).await.unwrap_err();
        assert!(
            matches!(err, StoreError::NewerSchema { found, .. } if found == future),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains(&future.to_string()) && message.contains("newer"),
            "{message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_starting_together_migrate_once() {
    let Some(url) = postgres_url_for_test().await else {
        return;
    };
    let opens: Vec<_> = (0..3)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { Store::open(&url).await })
        })
        .collect();
    for open in opens {
        let store = open.await.unwrap().unwrap();
        assert_eq!(store.schema_version(), Store::latest_schema_version());
    }
    let store = Store::open(&url).await.unwrap();
    let Backend::Postgres(db) = &store.backend else {
        unreachable!()
    };
    let applied = sqlx::query("SELECT COUNT(*) AS n FROM _sqlx_migrations")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(applied.int("n").unwrap(), MIGRATIONS.len() as i64);
}

/// Everything `store` holds, as the copy reads it.
async fn dump(store: &Store) -> crate::store::copy::Dump {
    on_backend!(store, db => db.dump().await).unwrap()
}

#[tokio::test]
async fn a_copy_moves_every_row_into_an_empty_store_and_refuses_a_full_one() {
    let dir = tempfile::tempdir().unwrap();
    let source = Store::open(&format!(
        "sqlite://{}",
        dir.path().join("from.db").display()
    ))
    .await
    .unwrap();
    store_one_of_each(&source).await;
    // A used refresh token and a consumed, revoked code: the nullable and
    // flag columns travel too.
    let [code_secret, refresh_secret, ..] = CLIENT_SECRETS;
    source
        .consume_code(&secret_hash(code_secret), 2)
        .await
        .unwrap();
    source
        .revoke_from_code(&secret_hash(code_secret))
        .await
        .unwrap();
    source
        .use_refresh(&secret_hash(refresh_secret), 3)
        .await
        .unwrap();
    let key = crate::store::StoredKey {
        kid: "kid-1".into(),
        algorithm: "ES256".into(),
        public_jwk: "{}".into(),
        sealed_key: "sealed".into(),
        kek_id: "kek".into(),
        created_at: 1,
        activates_at: 1,
        retire_at: Some(99),
    };
    source.add_signing_key(&key, true).await.unwrap();
    source
        .revoke_access_token("jti-1", "spa", 2, 9_000)
        .await
        .unwrap();
    source.issuer_secret("browser-binding", 4).await.unwrap();
    source
        .record_login_failure("account:x", 2, 9_000)
        .await
        .unwrap();
    source
        .spend_client_assertion("acme", "j-1", 9_000)
        .await
        .unwrap();
    let user = source.list_users().await.unwrap().remove(0);
    source
        .grant_consent(&user.id, "spa", None, &["openid".to_owned()], 5)
        .await
        .unwrap();
    let expected = dump(&source).await;
    assert!(
        expected.tables.iter().all(|rows| !rows.is_empty()),
        "one of each"
    );

    on_each_backend(|target| {
        let (source, expected) = (source.clone(), expected.clone());
        async move {
            let copied = source.copy_to(&target, false).await.unwrap();
            assert_eq!(copied.of("users"), 1);
            assert_eq!(copied.of("signing_keys"), 1);
            assert_eq!(dump(&target).await, expected);
            assert_eq!(target.row_counts().await.unwrap(), copied);
            assert!(
                target
                    .user_by_email("secret@example.com")
                    .await
                    .unwrap()
                    .is_some()
            );

            let e = source.copy_to(&target, false).await.unwrap_err();
            assert!(matches!(e, StoreError::Conflict(_)), "{e}");
            assert!(e.to_string().contains("not empty (it holds 1 users"), "{e}");
            assert_eq!(
                dump(&target).await,
                expected,
                "a refused copy changes nothing"
            );

            // --replace: what the target held is gone, the source's rows are in.
            add_user(&target, "only-in-target@example.com").await;
            source.copy_to(&target, true).await.unwrap();
            assert_eq!(dump(&target).await, expected);
        }
    })
    .await;
}

#[tokio::test]
async fn an_issuer_secret_is_made_once_and_shared() {
    on_each_backend(|store| async move {
        let first = store.issuer_secret("browser-binding", 1).await.unwrap();
        assert_eq!(first.len(), 32);
        let again = store.issuer_secret("browser-binding", 2).await.unwrap();
        assert_eq!(first, again, "whoever asks next reads the same bytes");
        let other = store.issuer_secret("another", 3).await.unwrap();
        assert_ne!(first, other);
    })
    .await;
}

#[tokio::test]
async fn consents_add_up_per_audience_and_are_withdrawn_with_the_refresh_tokens() {
    on_each_backend(|store| async move {
        let user = add_user(&store, "olu@example.com").await;
        let other = add_user(&store, "pia@example.com").await;
        let orders = Some("https://orders.example.com");
        let scopes = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(
            store
                .consented_scopes(&user, "spa", orders)
                .await
                .unwrap()
                .is_empty()
        );
        store
            .grant_consent(
                &user,
                "spa",
                orders,
                &scopes(&["read:orders", "openid"]),
                1_000,
            )
            .await
            .unwrap();
        store
            .grant_consent(
                &user,
                "spa",
                orders,
                &scopes(&["write:orders", "openid"]),
                1_100,
            )
            .await
            .unwrap();
        store
            .grant_consent(&user, "spa", None, &scopes(&["openid"]), 1_200)
            .await
            .unwrap();
        store
            .grant_consent(&other, "spa", orders, &scopes(&["read:orders"]), 1_300)
            .await
            .unwrap();
        assert_eq!(
            store.consented_scopes(&user, "spa", orders).await.unwrap(),
            scopes(&["openid", "read:orders", "write:orders"]),
            "added up, sorted, once each"
        );
        assert!(
            store
                .consented_scopes(&user, "other-app", orders)
                .await
                .unwrap()
                .is_empty()
        );
        let listed = store.consents(&user).await.unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].audience, None);
        assert_eq!(listed[1].audience.as_deref(), orders);
        assert_eq!(listed[1].granted_at, 1_100);

        store
            .put_refresh(&refresh("h-spa", "fam-spa", &user, 9_000))
            .await
            .unwrap();
        let withdrawn = store.withdraw_consent(&user, "spa").await.unwrap();
        assert_eq!(
            withdrawn,
            Withdrawn {
                consents: 2,
                refresh_families: 1
            }
        );
        assert!(store.consents(&user).await.unwrap().is_empty());
        assert_eq!(
            store
                .refresh_status("h-spa", 2_000)
                .await
                .unwrap()
                .map(|s| s.active),
            Some(false),
            "the client's refresh tokens for the user end with the consent"
        );
        assert_eq!(
            store.consents(&other).await.unwrap().len(),
            1,
            "others keep theirs"
        );
        assert!(store.remove_user(&other).await.unwrap());
        assert_eq!(store.row_counts().await.unwrap().of("consents"), 0);
    })
    .await;
}
