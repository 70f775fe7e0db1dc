//! Secrets never reach the log: a full run (client credentials right and
//! wrong, plugins that fail and deny while holding a secret, a user signing in
//! with a right and a wrong password, a refresh, a reload) at debug level,
//! then the log is searched for every secret the run used.

use crate::support::*;
use crate::user_flows::{PASSWORD, PORTAL_SECRET, add_user, spa_tokens, user_config};

pub(crate) const PLUGIN_SECRET: &str = "crm-token-9f8e7d6c5b4a39281706f5e4d3c2b1a0";

#[test]
fn no_secret_reaches_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret_file = dir.path().join("crm-token");
    std::fs::write(&secret_file, format!("{PLUGIN_SECRET}\n")).expect("write");
    let with_secret = |mode: &str| {
        format!(
            "\n[[plugins]]\nname = \"{mode}\"\npath = \"{}\"\nstages = [\"credentials-exchange\"]\napis = [\"{BILLING}\"]\non_error = \"skip\"\nconfig = {{ mode = \"{mode}\", description = \"denied by {mode}\" }}\nsecrets = {{ crm = {{ file = \"{}\" }} }}\n",
            wasm("misbehave").display(),
            secret_file.display()
        )
    };
    let config = user_config() + &with_secret("trap") + &with_secret("deny");
    let t = Tessera::start_in(dir, &config);

    // Client credentials: right, wrong, in the body, through failing plugins.
    t.acme(&[("audience", ORDERS)]).access_token();
    t.token(
        Some(("acme-sync", "not-the-secret")),
        &[("grant_type", "client_credentials")],
    )
    .expect_error(401, "invalid_client");
    t.token(
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "globex"),
            ("client_secret", GLOBEX_SECRET),
            ("audience", ORDERS),
        ],
    )
    .access_token();
    t.acme(&[("audience", BILLING)])
        .expect_error(400, "access_denied");
    // A secret sent as the wrong client's secret, and as a parameter name.
    t.token(
        Some(("globex", ACME_SECRET)),
        &[("grant_type", "client_credentials")],
    )
    .expect_error(401, "invalid_client");
    t.token(
        Some(("acme-sync", ACME_SECRET)),
        &[("grant_type", "client_credentials"), (ACME_SECRET, "x")],
    );

    // A user signs in, the SPA gets tokens and refreshes them.
    add_user(&t, "ada@example.com", "{}");
    let tokens = spa_tokens(&t, "openid offline_access read:orders");
    let refresh = tokens.body["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned();
    let refreshed = t.token(
        None,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "web-spa"),
            ("refresh_token", &refresh),
        ],
    );
    refreshed.access_token();
    // A confidential client presents its secret with a bad code.
    t.token(
        Some(("portal", PORTAL_SECRET)),
        &[
            ("grant_type", "authorization_code"),
            ("code", "nope"),
            ("redirect_uri", "https://portal.example.com/cb"),
            ("code_verifier", &"v".repeat(43)),
        ],
    )
    .expect_error(400, "invalid_grant");

    let log = t.log();
    assert!(
        log.contains("plugin failed"),
        "the run did not exercise the failure path:\n{log}"
    );
    for (what, secret) in [
        ("ACME's client secret", ACME_SECRET),
        ("Globex's client secret", GLOBEX_SECRET),
        ("the portal's client secret", PORTAL_SECRET),
        ("the plugin secret", PLUGIN_SECRET),
        ("the user's password", PASSWORD),
        ("a refresh token", &refresh),
        (
            "the new refresh token",
            refreshed.body["refresh_token"].as_str().unwrap_or("-"),
        ),
    ] {
        assert!(!log.contains(secret), "{what} is in the log:\n{log}");
    }
}

#[test]
fn a_secret_in_metadata_gets_a_warning_naming_its_key() {
    let config = base_config("ES256").replace(
        "metadata = { partner = \"acme\", tier = \"gold\", region = \"eu\" }",
        "metadata = { partner = \"acme\", tier = \"gold\", region = \"eu\", crm_api_key = \"k-123\" }",
    );
    assert!(config.contains("crm_api_key"), "the base config changed");
    let (_dir, path) = write_config(&config);
    let (ok, _, err) = run_tessera(&["check", "--config", &path]);
    assert!(ok, "a warning is not an error: {err}");
    assert!(
        err.contains("warning:")
            && err.contains("clients[acme-sync].metadata.crm_api_key: looks like a secret"),
        "{err}"
    );
    assert!(!err.contains("k-123"), "the warning shows the value: {err}");
    assert!(!err.contains(".partner"), "{err}");
}
