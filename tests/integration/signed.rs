//! Signed plugins: `tessera plugin keygen` and `sign`, and a `[[plugins]]`
//! entry with `signers` that loads only a file signed by one of them, at
//! start, in `tessera check` and on every reload.

use std::path::Path;
use std::time::Duration;

use crate::support::*;

/// Replaces `path` the way deploy tools do: write a temporary file, rename.
fn install(from: &Path, path: &Path) {
    let tmp = path.with_extension("tmp");
    std::fs::copy(from, &tmp).expect("copy");
    std::fs::rename(&tmp, path).expect("rename");
}

/// `tessera plugin keygen --out KEY`: the public key it prints.
fn keygen(key: &Path) -> String {
    let (ok, out, err) = run_tessera(&["plugin", "keygen", "--out", &key.display().to_string()]);
    assert!(ok, "{err}");
    out.trim().to_owned()
}

fn sign(file: &Path, key: &Path) -> (bool, String, String) {
    run_tessera(&[
        "plugin",
        "sign",
        &file.display().to_string(),
        "--key",
        &key.display().to_string(),
    ])
}

/// Client-claims (version A, `https://v/client_name`) or the misbehave
/// fixture in `claims` mode (version B, `version = "B"`) at `plugin`.
fn signed_config(plugin: &Path, signers: &str) -> String {
    format!(
        "{}\n[[plugins]]\nname = \"partner\"\npath = \"{}\"\nstages = [\"credentials-exchange\"]\n\
         apis = [\"{ORDERS}\"]\ntimeout_ms = 2000\nsigners = [{signers}]\n\
         config = {{ namespace = \"https://v/\", metadata_keys = [], mode = \"claims\", claims = {{ version = \"B\" }} }}\n",
        base_config("ES256"),
        plugin.display()
    )
}

fn version(t: &Tessera) -> &'static str {
    let claims = t.verify(t.acme(&[("audience", ORDERS)]).access_token(), ORDERS);
    match (
        claims.get("https://v/client_name").is_some(),
        claims.get("version").is_some(),
    ) {
        (true, false) => "A",
        (false, true) => "B",
        other => panic!("one version's claims, not {other:?}: {claims}"),
    }
}

#[test]
fn only_a_file_signed_by_a_listed_signer_loads_or_replaces_the_serving_version() {
    let keys = tempfile::tempdir().expect("tempdir");
    let (key, stranger) = (
        keys.path().join("publisher.key"),
        keys.path().join("other.key"),
    );
    let public = keygen(&key);
    assert!(public.starts_with("ed25519:"), "{public}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).expect("key").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key is its owner's only");
    }
    let (ok, _, err) = run_tessera(&["plugin", "keygen", "--out", &key.display().to_string()]);
    assert!(!ok && err.contains("already exists"), "{err}");
    let stranger_public = keygen(&stranger);

    let dir = tempfile::tempdir().expect("tempdir");
    let plugin = dir.path().join("partner.wasm");
    install(&wasm("client_claims"), &plugin);
    let config = signed_config(&plugin, &format!("\"{public}\""));
    std::fs::write(dir.path().join("tessera.toml"), &config).expect("config");
    let config_path = dir.path().join("tessera.toml").display().to_string();

    // Unsigned: refused, naming the key, the file and what to do.
    let (ok, _, err) = run_tessera(&["check", "--config", &config_path]);
    assert!(!ok);
    assert!(
        err.contains("plugins[partner].signers: ")
            && err.contains("is not signed")
            && err.contains("partner.wasm.sig")
            && err.contains("; sign it with `tessera plugin sign "),
        "{err}"
    );

    let (ok, out, err) = sign(&plugin, &key);
    assert!(ok, "{err}");
    assert!(out.trim().ends_with("partner.wasm.sig"), "{out}");
    assert!(err.contains(&public), "{err}");
    let (ok, out, err) = run_tessera(&["check", "--config", &config_path]);
    assert!(ok, "{out}{err}");
    assert!(out.contains(&format!("signed by {public}")), "{out}");
    let (_, inspected, _) = run_tessera(&["plugin", "inspect", &plugin.display().to_string()]);
    assert!(
        inspected.contains(&format!("by {public}, valid for this file")),
        "{inspected}"
    );

    let t = Tessera::start_in(dir, &config);
    assert_eq!(version(&t), "A");
    assert!(
        t.log().contains(&format!("signed_by={public}")),
        "{}",
        t.log()
    );

    // A new file without a new signature: the old signature signs the old
    // file, so the reload is refused and version A keeps serving.
    install(&wasm("misbehave"), &plugin);
    assert!(
        wait_for(Duration::from_secs(10), || t
            .log()
            .contains("signs another file")),
        "{}",
        t.log()
    );
    assert_eq!(version(&t), "A");

    // Signed, but by a key the entry does not list.
    assert!(sign(&plugin, &stranger).0);
    assert!(
        wait_for(Duration::from_secs(10), || t.log().contains(&format!(
            "is signed by {stranger_public}, which is not in signers"
        ))),
        "{}",
        t.log()
    );
    assert_eq!(version(&t), "A");

    // Signed by the publisher: the signature's arrival reloads it.
    assert!(sign(&plugin, &key).0);
    assert!(
        wait_for(Duration::from_secs(10), || version(&t) == "B"),
        "{}",
        t.log()
    );
}

#[test]
fn signers_must_be_ed25519_public_keys() {
    let plugin = wasm("client_claims");
    let (_dir, path) = write_config(&signed_config(
        &plugin,
        "\"ed25519:not-a-key\", \"rsa:AAAA\"",
    ));
    let (ok, _, err) = run_tessera(&["check", "--config", &path]);
    assert!(!ok);
    assert!(err.contains("2 problems"), "{err}");
    assert!(
        err.contains(
            "plugins[partner].signers: \"ed25519:not-a-key\" is not an Ed25519 public key"
        ),
        "{err}"
    );
    let key_dir = tempfile::tempdir().expect("tempdir");
    let (ok, _, err) = sign(&plugin, &key_dir.path().join("missing.key"));
    assert!(
        !ok && err.contains("--key: cannot read") && err.contains("missing.key"),
        "{err}"
    );
}
