//! Example plugin: roles from the user's `app_metadata` into tokens, and the
//! API's own metadata deciding what those roles allow. See README.md.

use tessera_plugin_sdk::{AuthorizeEvent, Changes, Context, Denial, Metadata, Plugin, Value};

/// The plugin.
pub struct RolesFromAppMetadata;

/// Reads a list of strings, failing loudly on any other shape.
fn string_list(value: &Value, what: &str) -> Vec<String> {
    match value {
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => s.clone(),
                other => panic!("roles-from-app-metadata: {what} must list strings, found {other}"),
            })
            .collect(),
        other => panic!("roles-from-app-metadata: {what} must be a list of strings, found {other}"),
    }
}

fn list_at(metadata: &Metadata, key: &str, what: &str) -> Option<Vec<String>> {
    metadata.get(key).map(|v| string_list(v, what))
}

impl Plugin for RolesFromAppMetadata {
    fn on_authorize(event: &AuthorizeEvent, ctx: &Context) -> Result<Changes, Denial> {
        let namespace = ctx.config("namespace").unwrap_or_else(|| {
            panic!("roles-from-app-metadata: config key \"namespace\" is required")
        });
        let roles =
            list_at(&event.user.app_metadata, "roles", "app_metadata.roles").unwrap_or_default();
        let mut changes = Changes::default();
        let claim = format!("{namespace}roles");
        changes.set_access_token_claim(claim.clone(), roles.clone());
        changes.set_id_token_claim(claim, roles.clone());

        let Some(api) = &event.api else {
            return Ok(changes);
        };
        if let Some(required) = list_at(
            &api.metadata,
            "required_roles",
            "API metadata required_roles",
        ) && !required.iter().any(|r| roles.contains(r))
        {
            return Err(Denial::access_denied(format!(
                "user {} has none of the roles API {} requires ({})",
                event.user.id,
                api.identifier,
                required.join(", ")
            )));
        }
        if let Some(scope_roles) = api.metadata.get("scope_roles") {
            let Value::Object(table) = scope_roles else {
                panic!(
                    "roles-from-app-metadata: API metadata scope_roles must be a table of role lists"
                );
            };
            for (scope, allowed) in table {
                let allowed = string_list(allowed, &format!("scope_roles.{scope}"));
                if event.access_token.scopes.contains(scope)
                    && !allowed.iter().any(|r| roles.contains(r))
                {
                    ctx.info(format!(
                        "removed {scope}: needs one of {}",
                        allowed.join(", ")
                    ));
                    changes.remove_scope(scope.clone());
                }
            }
        }
        Ok(changes)
    }
}

tessera_plugin_sdk::export!(RolesFromAppMetadata, authorize);

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_plugin_sdk::{Api, AppType, Client, DenyCode, User, json};

    fn event(roles: Value) -> AuthorizeEvent {
        let mut user = User::new("u_1");
        user.app_metadata.insert("roles".into(), roles);
        AuthorizeEvent::new(Client::new("shop", "Shop", AppType::Spa), user)
            .with_api(
                Api::new("https://orders.example.com", "Orders")
                    .with_metadata("required_roles", json!(["customer", "staff"]))
                    .with_metadata("scope_roles", json!({"write:orders": ["staff"]})),
            )
            .with_scopes(["read:orders", "write:orders"])
    }

    fn ctx() -> Context {
        Context::mock().with_config("namespace", "https://claims.example.com/")
    }

    #[test]
    fn roles_become_claims_and_restrict_scopes() {
        let c = RolesFromAppMetadata::on_authorize(&event(json!(["customer"])), &ctx())
            .expect("allowed");
        assert_eq!(
            c.access_token_claim("https://claims.example.com/roles"),
            Some(&json!(["customer"]))
        );
        assert_eq!(
            c.id_token_claim("https://claims.example.com/roles"),
            Some(&json!(["customer"]))
        );
        assert_eq!(c.removed_scopes(), ["write:orders"]);
    }

    #[test]
    fn staff_keep_the_restricted_scope() {
        let c =
            RolesFromAppMetadata::on_authorize(&event(json!(["staff"])), &ctx()).expect("allowed");
        assert!(c.removed_scopes().is_empty());
    }

    #[test]
    fn users_without_a_required_role_are_denied() {
        let d = RolesFromAppMetadata::on_authorize(&event(json!([])), &ctx()).expect_err("denied");
        assert_eq!(d.code, DenyCode::AccessDenied);
        assert!(
            d.description.contains("customer, staff"),
            "{}",
            d.description
        );
    }

    #[test]
    #[should_panic(expected = "app_metadata.roles must be a list of strings")]
    fn malformed_roles_fail_loudly() {
        let _ = RolesFromAppMetadata::on_authorize(&event(json!("admin")), &ctx());
    }
}
