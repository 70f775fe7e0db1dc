//! The command line as an operator uses it.

use std::time::Duration;

use crate::support::*;

#[test]
fn secret_new_prints_a_secret_and_its_hash() {
    let (ok, out, _) = run_tessera(&["secret", "new"]);
    assert!(ok);
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("secret:"))
        .expect("secret line")
        .trim();
    let hash = out
        .lines()
        .find_map(|l| l.strip_prefix("secret_hash:"))
        .expect("hash line")
        .trim()
        .trim_matches('"');
    assert!(secret.len() >= 43, "{secret}");
    assert_eq!(hash, crate::support::hash(secret));
}

#[test]
fn check_accepts_a_good_config_and_lists_plugins() {
    let config = base_config("ES256")
        + &format!(
            "\n[[plugins]]\nname = \"api-guard\"\npath = \"{}\"\n",
            wasm("api_guard").display()
        );
    let (_dir, path) = write_config(&config);
    let (ok, out, err) = run_tessera(&["check", "--config", &path]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("OK")
            && out.contains("api-guard")
            && out.contains("authorize, credentials-exchange"),
        "{out}"
    );
}

#[test]
fn check_names_every_problem_of_a_broken_config_once() {
    // Three mistakes: an unknown section, a dangling reference, and a client
    // whose own secret is malformed (a grant naming it is not a fourth).
    let config = base_config("ES256")
        .replace(
            "client = \"globex\"\napi = \"https://billing.example.com\"",
            "client = \"globx\"\napi = \"https://billing.example.com\"",
        )
        .replacen("secret_hash = \"sha256:", "secret_hash = \"sha256:zz", 1)
        + "\n[server2]\n";
    let (_dir, path) = write_config(&config);
    let (ok, _, err) = run_tessera(&["check", "--config", &path]);
    assert!(!ok);
    assert!(err.contains("tessera.toml: 3 problems"), "{err}");
    assert!(err.contains("server2 (line "), "{err}");
    assert!(err.contains("unknown section"), "{err}");
    assert!(
        err.contains("grants[3].client: no client has id \"globx\""),
        "{err}"
    );
    assert!(err.contains("clients[acme-sync].secret_hash: "), "{err}");
    assert!(!err.contains("no client has id \"acme-sync\""), "{err}");
}

#[test]
fn check_and_serve_name_a_broken_plugin_file_by_its_key() {
    let config = base_config("ES256")
        + "\n[[plugins]]\nname = \"junk\"\npath = \"plugins/junk.wasm\"\n"
        + "\n[[plugins]]\nname = \"partner-claims\"\npath = \"plugins/partner-claim.wasm\"\n";
    let (dir, path) = write_config(&config);
    std::fs::create_dir_all(dir.path().join("plugins")).expect("mkdir");
    std::fs::write(dir.path().join("plugins/junk.wasm"), b"\0asm\x01\0\0\0").expect("write");
    for cmd in ["check", "serve"] {
        let (ok, _, err) = run_tessera(&[cmd, "--config", &path]);
        assert!(!ok, "{cmd} accepted a broken plugin");
        assert!(err.contains("tessera.toml: 2 problems"), "{cmd}: {err}");
        assert!(
            err.contains("plugins[junk].path: plugins/junk.wasm is a core WebAssembly module"),
            "{cmd}: {err}"
        );
        assert!(
            err.contains(
                "plugins[partner-claims].path: cannot read plugins/partner-claim.wasm: \
                 no such file; build it with `tessera plugin build`"
            ),
            "{cmd}: {err}"
        );
    }
}

/// The `kid` a fresh client-credentials token of `t` is signed with.
fn signing_kid(t: &Tessera) -> String {
    jsonwebtoken::decode_header(t.acme(&[("audience", ORDERS)]).access_token())
        .expect("header")
        .kid
        .expect("kid")
}

fn published_kids(t: &Tessera) -> Vec<String> {
    let jwks: serde_json::Value = t.get("/.well-known/jwks.json").json().expect("jwks");
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect()
}

#[test]
fn keys_rotate_publishes_at_once_and_signs_after_the_delay_without_a_restart() {
    let config =
        base_config("ES256").replace("[signing]\n", "[signing]\npre_publication_delay_secs = 6\n");
    let t = Tessera::start(&config);
    let pid = t.pid();
    let before = signing_kid(&t);
    let path = t.dir.path().join("tessera.toml").display().to_string();
    let (ok, out, err) = run_tessera(&["keys", "rotate", "--config", &path]);
    assert!(ok, "{err}");
    let rotated_at = std::time::Instant::now();
    let new_kid = out
        .split_whitespace()
        .nth(4)
        .expect("`new ES256 signing key KID in …`")
        .to_owned();

    // Published within a poll, and not signing yet.
    assert!(
        wait_for(Duration::from_secs(4), || published_kids(&t)
            .contains(&new_kid)),
        "the new key is not published: {:?}\n{}",
        published_kids(&t),
        t.log()
    );
    // Key dates are whole seconds: the key may sign from 5 s after the
    // command; before that, the old key must still be the one.
    assert!(rotated_at.elapsed() < Duration::from_secs(5));
    assert_eq!(
        signing_kid(&t),
        before,
        "the old key signs during the delay"
    );
    let (ok, list, err) = run_tessera(&["keys", "list", "--config", &path]);
    assert!(ok, "{err}");
    let state_of = |list: &str, kid: &str| {
        list.lines()
            .find(|l| l.starts_with(kid))
            .and_then(|l| l.split_whitespace().nth(2))
            .unwrap_or("-")
            .to_owned()
    };
    assert_eq!(state_of(&list, &before), "active", "{list}");
    assert_eq!(state_of(&list, &new_kid), "next", "{list}");

    // Then it signs, and tokens of both keys verify.
    assert!(
        wait_for(Duration::from_secs(15), || signing_kid(&t) == new_kid),
        "the new key never signed:\n{}",
        t.log()
    );
    t.verify(t.acme(&[("audience", ORDERS)]).access_token(), ORDERS);
    assert_eq!(
        published_kids(&t).len(),
        4,
        "the old keys (ES256 and RS256) stay published beside the new ones"
    );
    assert_eq!(t.pid(), pid, "no restart");

    let (ok, list, _) = run_tessera(&["keys", "list", "--config", &path]);
    assert!(ok);
    assert_eq!(state_of(&list, &before), "retiring", "{list}");
    assert_eq!(state_of(&list, &new_kid), "active", "{list}");
    let (ok, _, err) = run_tessera(&["keys", "retire", "--config", &path, "--", &new_kid]);
    assert!(!ok);
    assert!(err.contains("is the active ES256 key"), "{err}");
    let (ok, out, err) = run_tessera(&["keys", "retire", "--config", &path, "--", &before]);
    assert!(ok, "{err}");
    assert!(out.contains("stays published until"), "{out}");
    let (ok, _, err) = run_tessera(&["keys", "retire", "nope", "--config", &path]);
    assert!(!ok);
    assert!(err.contains("no signing key nope"), "{err}");
}

#[test]
fn a_compile_that_takes_too_long_fails_the_load() {
    // A fresh cache (so the component really compiles) and a 1 ms budget.
    let cache = tempfile::tempdir().expect("tempdir");
    let mut config: String = base_config("ES256")
        .lines()
        .map(|line| match line.starts_with("cache_dir = ") {
            true => format!(
                "cache_dir = \"{}\"\ncompile_timeout_ms = 1\n",
                cache.path().display()
            ),
            false => format!("{line}\n"),
        })
        .collect();
    config += &format!(
        "\n[[plugins]]\nname = \"slow\"\npath = \"{}\"\n",
        wasm("misbehave").display()
    );
    let (_dir, path) = write_config(&config);
    let (ok, _, err) = run_tessera(&["check", "--config", &path]);
    assert!(!ok, "a 1 ms compile budget was met?");
    assert!(
        err.contains("compiling took longer than 1 ms") && err.contains("compile_timeout_ms"),
        "{err}"
    );
}

#[test]
fn a_log_file_gets_no_colour_codes() {
    let t = Tessera::start(&base_config("ES256"));
    t.acme(&[("audience", ORDERS)]).access_token();
    let log = t.log();
    assert!(log.contains("snapshot ready"), "{log}");
    assert!(!log.contains('\x1b'), "colour codes in a log file: {log:?}");
}
