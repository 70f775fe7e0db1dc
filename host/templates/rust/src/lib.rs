//! {{name}}: a Tessera plugin.
//!
//! At the credentials-exchange stage (client credentials) it puts the calling
//! application's name, and its `tier` metadata when it has one, into the
//! access token under a namespace taken from the plugin's configuration:
//!
//! ```toml
//! [[plugins]]
//! name = "{{name}}"
//! path = "plugins/{{name}}.wasm"
//! config = { namespace = "https://claims.example.com/" }
//! ```
//!
//! Build: `tessera plugin build .`; unit tests: `cargo test`; the stage in the
//! real runtime: `tessera plugin test {{name}}.wasm --stage credentials-exchange --event event.json`.

use tessera_plugin_sdk::{Changes, Context, CredentialsExchangeEvent, Denial, Plugin};

/// The plugin.
pub struct MyPlugin;

impl Plugin for MyPlugin {
    fn on_credentials_exchange(
        event: &CredentialsExchangeEvent,
        ctx: &Context,
    ) -> Result<Changes, Denial> {
        let namespace = ctx
            .config("namespace")
            .unwrap_or_else(|| "https://example.com/".to_owned());
        let mut changes = Changes::default();
        changes.set_access_token_claim(format!("{namespace}client_name"), event.client.name.as_str());
        if let Some(tier) = event.client.metadata.get("tier") {
            changes.set_access_token_claim(format!("{namespace}tier"), tier.clone());
        }
        ctx.info(format!("{{name}}: claims for {}", event.client.id));
        Ok(changes)
    }
}

tessera_plugin_sdk::export!(MyPlugin, credentials_exchange);

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_plugin_sdk::{Api, AppType, Client, json};

    #[test]
    fn puts_the_client_name_and_tier_into_the_access_token() {
        let client = Client::new("acme-sync", "ACME order sync", AppType::Machine)
            .with_metadata("tier", "gold");
        let event = CredentialsExchangeEvent::new(client, Api::new("https://api.example.com", "API"));
        let ctx = Context::mock().with_config("namespace", "https://claims.example.com/");

        let changes = MyPlugin::on_credentials_exchange(&event, &ctx).expect("no denial");

        assert_eq!(
            changes.access_token_claim("https://claims.example.com/client_name"),
            Some(&json!("ACME order sync"))
        );
        assert_eq!(
            changes.access_token_claim("https://claims.example.com/tier"),
            Some(&json!("gold"))
        );
    }
}
