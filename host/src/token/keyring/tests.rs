//! Keys in a folder and in the store (every backend): rotation, states,
//! retirement, concurrent first starts, and that nothing private is stored
//! unsealed.

use std::time::Duration;

use super::*;
use crate::store::testing::on_each_backend;

const DELAY: u64 = 600;

fn signing(kek: Option<Arc<Kek>>, dir: &Path) -> SigningConfig {
    SigningConfig {
        algorithm: Algorithm::ES256,
        id_token_algorithm: Algorithm::ES256,
        algorithms: vec![Algorithm::ES256],
        key_dir: dir.to_owned(),
        kek,
        pre_publication_delay: Duration::from_secs(DELAY),
    }
}

fn kek() -> Arc<Kek> {
    Arc::new(Kek::from_base64(&Kek::generate().expect("rng")).expect("kek"))
}

fn states_of(keys: &[KeyInfo]) -> Vec<KeyState> {
    keys.iter().map(|k| k.state).collect()
}

/// The life of keys on one ring: first key, rotation, activation, retirement.
async fn lifecycle(ring: &KeyRing, signing: &SigningConfig) {
    use KeyState::{Active, Next, Retired, Retiring};
    let first = ring.load(signing, 1_000).await.expect("first load");
    let first_kid = first.active().kid.clone();
    assert_eq!(first.keys().len(), 1);
    // Loading again makes no second key.
    let again = ring.load(signing, 1_001).await.expect("load");
    assert!(again.same_as(&first));

    let next = ring.rotate(signing, 2_000).await.expect("rotate").remove(0);
    assert_eq!(next.state, Next);
    assert_eq!(next.life.activates_at, 2_000 + DELAY);
    let during = ring.load(signing, 2_001).await.expect("load");
    assert_eq!(
        during.active().kid,
        first_kid,
        "the old key signs during the delay"
    );
    assert_eq!(during.keys().len(), 2, "the new key is published at once");

    let after = ring.load(signing, 2_000 + DELAY).await.expect("load");
    assert_eq!(after.active().kid, next.kid);
    assert_eq!(
        states_of(&ring.list(signing, 2_000 + DELAY).await.expect("list")),
        [Retiring, Active]
    );

    let e = ring
        .retire(signing, &next.kid, 3_000, 3_600)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("is the active ES256 key"), "{e}");
    let retiring = ring
        .retire(signing, &first_kid, 3_000, 3_600)
        .await
        .expect("retire");
    // Its last token was signed just before the next key activated.
    let until = 2_000 + DELAY + 3_600 + RETIRE_MARGIN_SECS;
    assert_eq!(retiring.life.retire_at, Some(until));
    assert_eq!(retiring.state, Retiring);
    assert_eq!(
        ring.load(signing, until - 1)
            .await
            .expect("load")
            .keys()
            .len(),
        2
    );
    let set = ring.load(signing, until).await.expect("load");
    assert_eq!(set.keys().len(), 1, "unpublished once its tokens expired");
    assert_eq!(
        states_of(&ring.list(signing, until).await.expect("list")),
        [Retired, Active]
    );

    // A key rotated by mistake never signed: it retires at once.
    let mistake = ring
        .rotate(signing, until + 1)
        .await
        .expect("rotate")
        .remove(0);
    let gone = ring
        .retire(signing, &mistake.kid, until + 2, 3_600)
        .await
        .expect("retire");
    assert_eq!(gone.state, Retired);
    assert!(matches!(
        ring.retire(signing, "no-such-kid", until, 60).await,
        Err(KeyError::NoSuchKey(_))
    ));
}

fn two_algorithms(signing: SigningConfig) -> SigningConfig {
    SigningConfig {
        algorithms: vec![Algorithm::ES256, Algorithm::EdDSA],
        ..signing
    }
}

/// Keys for two algorithms on one ring: both sign from a first start, rotate
/// together, and a ring that gains an algorithm signs for it with the
/// primary key until its own key activates.
async fn second_algorithm(ring: &KeyRing, signing: &SigningConfig) {
    use KeyState::{Active, Next, Retiring};
    let one = SigningConfig {
        algorithms: vec![Algorithm::ES256],
        ..signing.clone()
    };
    let two = two_algorithms(signing.clone());
    let first = ring.load(&one, 1_000).await.expect("first load");
    assert_eq!(first.active_for(Algorithm::EdDSA).kid, first.active().kid);

    // EdDSA comes into use: its key is published now, signs after the delay.
    let gained = ring.load(&two, 1_100).await.expect("load");
    assert_eq!(gained.keys().len(), 2);
    assert_eq!(
        gained.active_for(Algorithm::EdDSA).algorithm,
        Algorithm::ES256,
        "the primary key signs for EdDSA during the delay"
    );
    assert_eq!(
        states_of(&ring.list(&two, 1_100).await.expect("list")),
        [Active, Next]
    );
    let later = ring.load(&two, 1_100 + DELAY).await.expect("load");
    assert_eq!(later.active().kid, first.active().kid);
    assert_eq!(
        later.active_for(Algorithm::EdDSA).algorithm,
        Algorithm::EdDSA
    );
    assert!(!later.same_as(&gained));
    assert_eq!(
        states_of(&ring.list(&two, 1_100 + DELAY).await.expect("list")),
        [Active, Active]
    );
    let algorithms: Vec<_> = later.algorithms().collect();
    assert_eq!(algorithms, [Algorithm::ES256, Algorithm::EdDSA]);

    // A rotation adds a key for each algorithm.
    let at = 5_000;
    let rotated = ring.rotate(&two, at).await.expect("rotate");
    let algs: Vec<_> = rotated.iter().map(|k| (k.algorithm, k.state)).collect();
    assert_eq!(algs, [(Algorithm::ES256, Next), (Algorithm::EdDSA, Next)]);
    let set = ring.load(&two, at + DELAY).await.expect("load");
    assert_eq!(set.active().kid, rotated[0].kid);
    assert_eq!(set.active_for(Algorithm::EdDSA).kid, rotated[1].kid);
    assert_eq!(
        states_of(&ring.list(&two, at + DELAY).await.expect("list")),
        [Retiring, Retiring, Active, Active]
    );
    // The old EdDSA key was superseded by the new EdDSA key, not the ES256
    // one: its tokens expire `longest` after that.
    let old_ed = ring
        .retire(
            &two,
            &later.active_for(Algorithm::EdDSA).kid,
            at + DELAY,
            100,
        )
        .await
        .expect("retire");
    assert_eq!(
        old_ed.life.retire_at,
        Some(at + DELAY + 100 + RETIRE_MARGIN_SECS)
    );
    let e = ring
        .retire(&two, &rotated[1].kid, at + DELAY, 100)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("active EdDSA key"), "{e}");
}

#[tokio::test]
async fn a_first_start_signs_with_every_algorithm_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = two_algorithms(signing(None, dir.path()));
    let store = crate::store::Store::open_memory().await.expect("store");
    let set = KeyRing::new(&folder, &store)
        .load(&folder, 1_000)
        .await
        .expect("load");
    assert_eq!(set.active().algorithm, Algorithm::ES256);
    assert_eq!(set.active_for(Algorithm::EdDSA).algorithm, Algorithm::EdDSA);
    on_each_backend(|store| async move {
        let sealed = two_algorithms(signing(Some(kek()), Path::new("/nonexistent")));
        let set = KeyRing::new(&sealed, &store)
            .load(&sealed, 1_000)
            .await
            .expect("load");
        assert_eq!(set.active().algorithm, Algorithm::ES256);
        assert_eq!(set.active_for(Algorithm::EdDSA).algorithm, Algorithm::EdDSA);
    })
    .await;
}

#[tokio::test]
async fn a_key_folder_keeps_a_key_for_each_algorithm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let signing = signing(None, dir.path());
    let store = crate::store::Store::open_memory().await.expect("store");
    second_algorithm(&KeyRing::new(&signing, &store), &signing).await;
}

#[tokio::test]
async fn the_store_keeps_a_key_for_each_algorithm() {
    on_each_backend(|store| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let signing = signing(Some(kek()), dir.path());
        second_algorithm(&KeyRing::new(&signing, &store), &signing).await;
    })
    .await;
}

#[tokio::test]
async fn a_key_folder_rotates_activates_and_retires() {
    let dir = tempfile::tempdir().expect("tempdir");
    let signing = signing(None, dir.path());
    let store = crate::store::Store::open_memory().await.expect("store");
    lifecycle(&KeyRing::new(&signing, &store), &signing).await;
}

#[tokio::test]
async fn store_keys_rotate_activate_and_retire() {
    on_each_backend(|store| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let signing = signing(Some(kek()), dir.path());
        lifecycle(&KeyRing::new(&signing, &store), &signing).await;
        assert!(
            std::fs::read_dir(dir.path()).expect("dir").next().is_none(),
            "nothing written to the key folder"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_starting_together_make_one_first_key_and_see_each_rotation() {
    on_each_backend(|store| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let signing = two_algorithms(signing(Some(kek()), dir.path()));
        let rings: Vec<Arc<KeyRing>> = (0..4)
            .map(|_| Arc::new(KeyRing::new(&signing, &store)))
            .collect();
        let starts: Vec<_> = rings
            .iter()
            .map(|ring| {
                let (ring, signing) = (ring.clone(), signing.clone());
                tokio::spawn(async move { ring.load(&signing, 100).await })
            })
            .collect();
        let mut kids = Vec::new();
        for start in starts {
            kids.push(
                start
                    .await
                    .expect("task")
                    .expect("load")
                    .active()
                    .kid
                    .clone(),
            );
        }
        assert!(kids.iter().all(|k| k == &kids[0]), "{kids:?}");
        let rows = store.signing_keys().await.expect("keys");
        let algorithms: Vec<&str> = rows.iter().map(|k| k.algorithm.as_str()).collect();
        assert_eq!(
            algorithms,
            ["ES256", "EdDSA"],
            "one first key per algorithm"
        );
        assert!(
            rows.iter().all(|k| k.activates_at == 100),
            "both sign at once"
        );

        let next = rings[0]
            .rotate(&signing, 200)
            .await
            .expect("rotate")
            .remove(0);
        for ring in &rings[1..] {
            let set = ring.load(&signing, 201).await.expect("load");
            assert!(set.keys().iter().any(|k| k.kid == next.kid));
            assert_eq!(set.active().kid, kids[0]);
        }
    })
    .await;
}

#[tokio::test]
async fn a_store_key_opens_only_with_its_kek_and_is_stored_sealed() {
    on_each_backend(|store| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let right = signing(Some(kek()), dir.path());
        let set = KeyRing::new(&right, &store)
            .load(&right, 5)
            .await
            .expect("load");
        let rows = store.signing_keys().await.expect("keys");
        assert_eq!(rows.len(), 1);
        // The row holds the public key as published and no private scalar.
        let jwk: serde_json::Value = serde_json::from_str(&rows[0].public_jwk).expect("jwk");
        assert_eq!(jwk, set.active().public_jwk);
        assert!(jwk.get("d").is_none());
        assert!(!format!("{:?}", rows[0]).contains(&rows[0].sealed_key));

        let wrong = signing(Some(kek()), dir.path());
        let e = KeyRing::new(&wrong, &store)
            .load(&wrong, 6)
            .await
            .unwrap_err();
        assert!(matches!(e, KeyError::Sealed { .. }), "{e}");
        assert!(
            e.to_string().contains("sealed with key-encryption key"),
            "{e}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_key_folder_moves_into_the_store_with_its_kids_and_dates() {
    on_each_backend(|store| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        // RS256, so the test can name the private exponent it looks for.
        let in_dir = SigningConfig {
            algorithm: Algorithm::RS256,
            algorithms: vec![Algorithm::RS256],
            ..signing(None, dir.path())
        };
        let folder = KeyRing::new(&in_dir, &store);
        let old = folder
            .load(&in_dir, 10)
            .await
            .expect("load")
            .active()
            .kid
            .clone();
        let newer = folder.rotate(&in_dir, 20).await.expect("rotate").remove(0);

        let in_store = SigningConfig {
            kek: Some(kek()),
            ..in_dir.clone()
        };
        let ring = KeyRing::new(&in_store, &store);
        let imported = ring.import_dir(dir.path()).await.expect("import");
        assert_eq!(imported, [old.clone(), newer.kid.clone()]);
        assert!(ring.import_dir(dir.path()).await.expect("again").is_empty());
        // No column holds the private key in any encoding.
        use base64::Engine as _;
        for file in std::fs::read_dir(dir.path()).expect("dir") {
            use rsa::pkcs8::DecodePrivateKey as _;
            use rsa::traits::PrivateKeyParts as _;
            let der = std::fs::read(file.expect("entry").path()).expect("read");
            let d = rsa::RsaPrivateKey::from_pkcs8_der(&der)
                .expect("RSA key")
                .d()
                .to_bytes_be();
            let encodings = [
                base64::engine::general_purpose::STANDARD.encode(&der),
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&d),
                hex::encode(&d[..32]),
            ];
            for row in store.signing_keys().await.expect("keys") {
                let text = format!(
                    "{} {} {} {}",
                    row.kid, row.public_jwk, row.sealed_key, row.kek_id
                );
                for encoded in &encodings {
                    assert!(!text.contains(encoded.as_str()), "plaintext key in {text}");
                }
            }
        }
        let listed = ring.list(&in_store, 30).await.expect("list");
        let kids: Vec<&str> = listed.iter().map(|k| k.kid.as_str()).collect();
        assert_eq!(kids, [old.as_str(), newer.kid.as_str()]);
        assert_eq!(listed[1].life.created, 20);
        // The store's own rule applies from now on: both are published.
        assert_eq!(
            ring.load(&in_store, 30).await.expect("load").keys().len(),
            2
        );
    })
    .await;
}
