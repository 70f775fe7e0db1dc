//! `client-claims`: puts the calling application into its access token.
//!
//! An API exposed to third parties wants to know, from the token alone, which
//! application is calling. This plugin sets namespaced claims on the access
//! token:
//!
//! - `{namespace}client_name`: the client's display name;
//! - `{namespace}client_app_type`: `spa`, `regular_web`, `native` or `machine`;
//! - `{namespace}{key}`: for each selected key of the client's metadata that
//!   the client has, its value (any JSON).
//!
//! It runs at both stages: `credentials-exchange` (machine clients) and
//! `authorize` (user flows), with the same claims.
//!
//! # Configuration
//!
//! - `namespace` (required): the prefix of every claim name, used as is, e.g.
//!   `"https://claims.example.com/"`. A missing or empty namespace is a
//!   configuration error: the plugin traps with
//!   `client-claims: config key "namespace" is required`, and the host fails
//!   the request per the plugin's `on_error`.
//! - `metadata_keys` (optional): which client metadata keys to copy, as a list
//!   (`["partner", "tier"]`) or a comma-separated string (`"partner, tier"`).
//!   Default: every key. An empty list copies none. Anything else traps.
//!
//! The built-in claims win over metadata keys of the same name
//! (`client_name`, `client_app_type`); such keys are skipped with a warning.

use tessera_plugin_sdk::{
    AuthorizeEvent, Changes, Client, Context, CredentialsExchangeEvent, Denial, Plugin, Value,
};

/// The plugin: see the [crate documentation](crate).
pub struct ClientClaims;

impl Plugin for ClientClaims {
    fn on_credentials_exchange(
        event: &CredentialsExchangeEvent,
        ctx: &Context,
    ) -> Result<Changes, Denial> {
        Ok(client_claims(&event.client, ctx))
    }

    fn on_authorize(event: &AuthorizeEvent, ctx: &Context) -> Result<Changes, Denial> {
        Ok(client_claims(&event.client, ctx))
    }
}

tessera_plugin_sdk::export!(ClientClaims);

/// Claim names (after the namespace) that the plugin sets itself.
const BUILT_IN: [&str; 2] = ["client_name", "client_app_type"];

/// The access-token claims describing `client`.
fn client_claims(client: &Client, ctx: &Context) -> Changes {
    let namespace = ctx
        .config("namespace")
        .filter(|namespace| !namespace.is_empty())
        .unwrap_or_else(|| panic!("client-claims: config key \"namespace\" is required"));

    let keys: Vec<&str> = match metadata_keys(ctx) {
        Some(keys) => keys
            .iter()
            .filter_map(|key| client.metadata.get_key_value(key.as_str()))
            .map(|(key, _)| key.as_str())
            .collect(),
        None => client.metadata.keys().map(String::as_str).collect(),
    };

    let mut changes = Changes::default();
    let mut names = Vec::new();
    for key in keys {
        if BUILT_IN.contains(&key) {
            ctx.warn(format!(
                "client-claims: client {:?} has a metadata key {key:?}, which would shadow a built-in claim; skipped",
                client.id
            ));
            continue;
        }
        changes.set_access_token_claim(format!("{namespace}{key}"), client.metadata[key].clone());
        names.push(key);
    }
    changes
        .set_access_token_claim(format!("{namespace}client_name"), client.name.as_str())
        .set_access_token_claim(
            format!("{namespace}client_app_type"),
            client.app_type.as_str(),
        );

    ctx.debug(format!(
        "client-claims: client {:?}: set client_name, client_app_type and {} metadata claim(s) [{}] under {namespace}",
        client.id,
        names.len(),
        names.join(", "),
    ));
    changes
}

/// The configured `metadata_keys`, or `None` for "every key".
fn metadata_keys(ctx: &Context) -> Option<Vec<String>> {
    fn malformed() -> ! {
        panic!(
            "client-claims: config key \"metadata_keys\" must be a list of strings or a comma-separated string"
        )
    }
    let keys = match ctx.config_value("metadata_keys")? {
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::String(key) => key,
                _ => malformed(),
            })
            .collect(),
        Value::String(list) => list
            .split(',')
            .map(str::trim)
            .filter(|key| !key.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => malformed(),
    };
    Some(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_plugin_sdk::{Api, AppType, Level, User, json};

    const NS: &str = "https://claims.example.com/";

    fn client() -> Client {
        Client::new("acme-sync", "ACME order sync", AppType::Machine)
            .with_metadata("partner", "acme")
            .with_metadata("tier", "gold")
            .with_metadata("limits", json!({ "rps": 10, "regions": ["eu"] }))
    }

    fn exchange(client: Client) -> CredentialsExchangeEvent {
        CredentialsExchangeEvent::new(client, Api::new("https://orders.example.com", "Orders"))
    }

    fn run(ctx: &Context) -> Changes {
        match ClientClaims::on_credentials_exchange(&exchange(client()), ctx) {
            Ok(changes) => changes,
            Err(denial) => panic!("unexpected denial: {denial}"),
        }
    }

    fn claim<'a>(changes: &'a Changes, name: &str) -> Option<&'a Value> {
        changes.access_token_claim(&format!("{NS}{name}"))
    }

    #[test]
    fn sets_name_app_type_and_every_metadata_key_by_default() {
        let changes = run(&Context::mock().with_config("namespace", NS));

        assert_eq!(
            claim(&changes, "client_name"),
            Some(&json!("ACME order sync"))
        );
        assert_eq!(claim(&changes, "client_app_type"), Some(&json!("machine")));
        assert_eq!(claim(&changes, "partner"), Some(&json!("acme")));
        assert_eq!(claim(&changes, "tier"), Some(&json!("gold")));
        assert_eq!(
            claim(&changes, "limits"),
            Some(&json!({ "rps": 10, "regions": ["eu"] }))
        );
        assert_eq!(changes.access_token_claims().len(), 5);
        assert!(changes.id_token_claims().is_empty());
        assert!(changes.added_scopes().is_empty() && changes.removed_scopes().is_empty());
    }

    #[test]
    fn metadata_keys_as_a_json_list_selects_keys_and_skips_absent_ones() {
        let ctx = Context::mock()
            .with_config("namespace", NS)
            .with_config("metadata_keys", json!(["tier", "region"]));
        let changes = run(&ctx);

        assert_eq!(claim(&changes, "tier"), Some(&json!("gold")));
        assert_eq!(claim(&changes, "partner"), None);
        assert_eq!(claim(&changes, "region"), None);
        assert_eq!(changes.access_token_claims().len(), 3);
    }

    #[test]
    fn metadata_keys_as_a_comma_separated_string() {
        let ctx = Context::mock()
            .with_config("namespace", NS)
            .with_config("metadata_keys", " partner , limits,,");
        let changes = run(&ctx);

        assert_eq!(claim(&changes, "partner"), Some(&json!("acme")));
        assert_eq!(
            claim(&changes, "limits").map(|l| &l["rps"]),
            Some(&json!(10))
        );
        assert_eq!(claim(&changes, "tier"), None);
    }

    #[test]
    fn an_empty_list_copies_no_metadata() {
        let ctx = Context::mock()
            .with_config("namespace", NS)
            .with_config("metadata_keys", json!([]));
        let changes = run(&ctx);

        assert_eq!(changes.access_token_claims().len(), 2);
    }

    #[test]
    fn logs_one_debug_line() {
        let ctx = Context::mock().with_config("namespace", NS);
        run(&ctx);

        let logs = ctx.logs();
        assert_eq!(logs.len(), 1);
        assert_eq!(logs[0].0, Level::Debug);
        assert!(logs[0].1.contains("\"acme-sync\""), "{}", logs[0].1);
        assert!(logs[0].1.contains("3 metadata claim(s)"), "{}", logs[0].1);
    }

    #[test]
    fn metadata_cannot_shadow_the_built_in_claims() {
        let sneaky =
            Client::new("c", "Real name", AppType::Spa).with_metadata("client_name", "Fake");
        let ctx = Context::mock().with_config("namespace", NS);
        let changes = ClientClaims::on_credentials_exchange(&exchange(sneaky), &ctx);

        let changes = changes.unwrap_or_default();
        assert_eq!(claim(&changes, "client_name"), Some(&json!("Real name")));
        assert_eq!(claim(&changes, "client_app_type"), Some(&json!("spa")));
        assert!(ctx.logs().iter().any(|(level, _)| *level == Level::Warn));
    }

    #[test]
    fn authorize_sets_the_same_access_token_claims() {
        let event = AuthorizeEvent::new(client(), User::new("user-1"));
        let ctx = Context::mock().with_config("namespace", NS);
        let changes = ClientClaims::on_authorize(&event, &ctx).unwrap_or_default();

        assert_eq!(changes, run(&Context::mock().with_config("namespace", NS)));
    }

    #[test]
    #[should_panic(expected = "client-claims: config key \"namespace\" is required")]
    fn a_missing_namespace_traps() {
        run(&Context::mock());
    }

    #[test]
    #[should_panic(expected = "client-claims: config key \"namespace\" is required")]
    fn an_empty_namespace_traps() {
        run(&Context::mock().with_config("namespace", ""));
    }

    #[test]
    #[should_panic(expected = "config key \"metadata_keys\" must be a list of strings")]
    fn a_malformed_metadata_keys_traps() {
        run(&Context::mock()
            .with_config("namespace", NS)
            .with_config("metadata_keys", json!(["tier", 3])));
    }
}
