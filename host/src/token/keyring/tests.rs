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

    let next = ring.rotate(signing, 2_000).await.expect("rotate");
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
    assert!(e.to_string().contains("active key"), "{e}");
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
    let mistake = ring.rotate(signing, until + 1).await.expect("rotate");
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
        let signing = signing(Some(kek()), dir.path());
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
        assert_eq!(store.signing_keys().await.expect("keys").len(), 1);

        let next = rings[0].rotate(&signing, 200).await.expect("rotate");
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
        let newer = folder.rotate(&in_dir, 20).await.expect("rotate");

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
