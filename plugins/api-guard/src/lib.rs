//! `api-guard`: the API decides who may call it, and with which scopes.
//!
//! API owners put their policy in the API's `metadata` in `tessera.toml`,
//! not on each application. This plugin reads it at both stages
//! (`credentials-exchange` and `authorize`; in `authorize` it does nothing
//! when the request has no API, i.e. only OpenID Connect scopes).
//!
//! # Who may call
//!
//! Each of these lists that is present is a rule; a client must pass every
//! rule present (an empty list lets no client through). With none present,
//! every client passes.
//!
//! - `allowed_clients`: client ids;
//! - `allowed_app_types`: `spa`, `regular_web`, `native`, `machine`;
//! - `allowed_partners`: values of the client's metadata key `partner` (a
//!   string; a client without one fails the rule).
//!
//! A client that fails a rule is denied with `access_denied` and a
//! description naming the client, the API and the rule, e.g.
//! `client "x" is not in allowed_partners of API "https://orders.example.com"`.
//!
//! # Which scopes it keeps
//!
//! `restricted_scopes` maps a scope to requirements on client metadata:
//!
//! ```toml
//! metadata = { restricted_scopes = { "write:orders" = { tier = ["gold", "platinum"] } } }
//! ```
//!
//! A restricted scope that the token carries is removed unless, for every key
//! of its requirements, the client's metadata value under that key is one of
//! the allowed strings (a metadata list of strings passes if any item is).
//! Removed scopes are logged at info level.
//!
//! # Malformed metadata
//!
//! Wrong types in these keys are the API owner's configuration error: the
//! plugin traps with a message naming the API and the key, and the host fails
//! the request (`server_error` unless the plugin's `on_error` says `skip`).

use std::fmt;

use tessera_plugin_sdk::{
    Api, AppType, AuthorizeEvent, Changes, Client, Context, CredentialsExchangeEvent, Denial, Map,
    Metadata, Plugin, Value,
};

/// The plugin: see the [crate documentation](crate).
pub struct ApiGuard;

impl Plugin for ApiGuard {
    fn on_credentials_exchange(
        event: &CredentialsExchangeEvent,
        ctx: &Context,
    ) -> Result<Changes, Denial> {
        guard(&event.client, &event.api, &event.access_token.scopes, ctx)
    }

    fn on_authorize(event: &AuthorizeEvent, ctx: &Context) -> Result<Changes, Denial> {
        match &event.api {
            Some(api) => guard(&event.client, api, &event.access_token.scopes, ctx),
            None => Ok(Changes::default()),
        }
    }
}

tessera_plugin_sdk::export!(ApiGuard);

/// Applies `api`'s policy to `client` and the token's current `scopes`.
fn guard(client: &Client, api: &Api, scopes: &[String], ctx: &Context) -> Result<Changes, Denial> {
    let policy = Policy::from_metadata(&api.metadata).unwrap_or_else(|err| {
        panic!(
            "api-guard: API {:?} has malformed metadata: {err}",
            api.identifier
        )
    });

    if let Some(rule) = policy.failed_rule(client) {
        return Err(Denial::access_denied(format!(
            "client {:?} is not in {rule} of API {:?}",
            client.id, api.identifier
        )));
    }

    let mut changes = Changes::default();
    let removed: Vec<&str> = scopes
        .iter()
        .map(String::as_str)
        .filter(|scope| !policy.keeps_scope(scope, client))
        .collect();
    if !removed.is_empty() {
        for scope in &removed {
            changes.remove_scope(*scope);
        }
        ctx.info(format!(
            "api-guard: removed restricted scope(s) {} for client {:?} on API {:?}",
            removed.join(" "),
            client.id,
            api.identifier
        ));
    }
    Ok(changes)
}

/// The policy an API's metadata describes. `None` means "no such rule".
#[derive(Debug, Default, PartialEq)]
struct Policy {
    allowed_clients: Option<Vec<String>>,
    allowed_app_types: Option<Vec<AppType>>,
    allowed_partners: Option<Vec<String>>,
    restricted_scopes: Vec<Restriction>,
}

/// A restricted scope and what the client's metadata must hold to keep it.
#[derive(Debug, PartialEq)]
struct Restriction {
    scope: String,
    /// Every one must hold.
    requirements: Vec<Requirement>,
}

/// The client's metadata value under `key` must be one of `allowed` (or, for a
/// list, contain one of them).
#[derive(Debug, PartialEq)]
struct Requirement {
    key: String,
    allowed: Vec<String>,
}

/// A metadata key of the wrong shape.
#[derive(Debug, PartialEq)]
struct MalformedMetadata {
    /// Where: the key, and for nested values the path below it.
    at: String,
    /// What was expected there.
    expected: &'static str,
}

impl fmt::Display for MalformedMetadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "metadata key {} must be {}", self.at, self.expected)
    }
}

const ALLOWED_CLIENTS: &str = "allowed_clients";
const ALLOWED_APP_TYPES: &str = "allowed_app_types";
const ALLOWED_PARTNERS: &str = "allowed_partners";
const RESTRICTED_SCOPES: &str = "restricted_scopes";
/// The client metadata key `allowed_partners` is matched against.
const PARTNER: &str = "partner";

impl Policy {
    fn from_metadata(metadata: &Metadata) -> Result<Self, MalformedMetadata> {
        let list = |key: &str| {
            metadata
                .get(key)
                .map(|value| string_list(value, || format!("{key:?}")))
                .transpose()
        };
        let allowed_app_types = match list(ALLOWED_APP_TYPES)? {
            Some(names) => Some(
                names
                    .iter()
                    .map(|name| name.parse::<AppType>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| MalformedMetadata {
                        at: format!("{ALLOWED_APP_TYPES:?}"),
                        expected: "a list of \"spa\", \"regular_web\", \"native\" or \"machine\"",
                    })?,
            ),
            None => None,
        };
        Ok(Policy {
            allowed_clients: list(ALLOWED_CLIENTS)?,
            allowed_app_types,
            allowed_partners: list(ALLOWED_PARTNERS)?,
            restricted_scopes: match metadata.get(RESTRICTED_SCOPES) {
                Some(value) => restricted_scopes(value)?,
                None => Vec::new(),
            },
        })
    }

    /// The first rule `client` fails, by its metadata key.
    fn failed_rule(&self, client: &Client) -> Option<&'static str> {
        if let Some(ids) = &self.allowed_clients
            && !ids.contains(&client.id)
        {
            return Some(ALLOWED_CLIENTS);
        }
        if let Some(app_types) = &self.allowed_app_types
            && !app_types.contains(&client.app_type)
        {
            return Some(ALLOWED_APP_TYPES);
        }
        if let Some(partners) = &self.allowed_partners {
            let partner = client.metadata.get(PARTNER).and_then(Value::as_str);
            if !partner.is_some_and(|partner| partners.iter().any(|p| p == partner)) {
                return Some(ALLOWED_PARTNERS);
            }
        }
        None
    }

    /// Whether `client` may keep `scope`: it is not restricted, or the
    /// client's metadata meets every requirement.
    fn keeps_scope(&self, scope: &str, client: &Client) -> bool {
        let Some(restriction) = self.restricted_scopes.iter().find(|r| r.scope == scope) else {
            return true;
        };
        restriction
            .requirements
            .iter()
            .all(|Requirement { key, allowed }| {
                let allows = |value: &Value| {
                    value
                        .as_str()
                        .is_some_and(|v| allowed.iter().any(|a| a == v))
                };
                match client.metadata.get(key) {
                    Some(Value::Array(items)) => items.iter().any(allows),
                    Some(value) => allows(value),
                    None => false,
                }
            })
    }
}

/// A JSON list of strings; `at` names it in the error.
fn string_list(value: &Value, at: impl Fn() -> String) -> Result<Vec<String>, MalformedMetadata> {
    let malformed = || MalformedMetadata {
        at: at(),
        expected: "a list of strings",
    };
    let items = value.as_array().ok_or_else(malformed)?;
    items
        .iter()
        .map(|item| item.as_str().map(str::to_owned).ok_or_else(malformed))
        .collect()
}

/// A JSON object; `at` names it in the error.
fn table(value: &Value, at: impl Fn() -> String) -> Result<&Map<String, Value>, MalformedMetadata> {
    value.as_object().ok_or_else(|| MalformedMetadata {
        at: at(),
        expected: "a table",
    })
}

/// `restricted_scopes`: a table of scope to a table of metadata key to a list
/// of allowed strings.
fn restricted_scopes(value: &Value) -> Result<Vec<Restriction>, MalformedMetadata> {
    table(value, || format!("{RESTRICTED_SCOPES:?}"))?
        .iter()
        .map(|(scope, requirements)| {
            let requirements = table(requirements, || format!("{RESTRICTED_SCOPES:?}.{scope:?}"))?
                .iter()
                .map(|(key, allowed)| {
                    let at = || format!("{RESTRICTED_SCOPES:?}.{scope:?}.{key:?}");
                    Ok(Requirement {
                        key: key.clone(),
                        allowed: string_list(allowed, at)?,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Restriction {
                scope: scope.clone(),
                requirements,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_plugin_sdk::{Level, User, json};

    const ORDERS: &str = "https://orders.example.com";

    fn orders_api() -> Api {
        Api::new(ORDERS, "Orders API").with_scopes(["read:orders", "write:orders"])
    }

    fn acme() -> Client {
        Client::new("acme-sync", "ACME order sync", AppType::Machine)
            .with_metadata("partner", "acme")
            .with_metadata("tier", "gold")
    }

    fn exchange(client: Client, api: Api) -> Result<Changes, Denial> {
        let event =
            CredentialsExchangeEvent::new(client, api).with_scopes(["read:orders", "write:orders"]);
        ApiGuard::on_credentials_exchange(&event, &Context::mock())
    }

    fn denial_of(result: Result<Changes, Denial>) -> Denial {
        match result {
            Ok(changes) => panic!("expected a denial, got {changes:?}"),
            Err(denial) => denial,
        }
    }

    fn changes_of(result: Result<Changes, Denial>) -> Changes {
        match result {
            Ok(changes) => changes,
            Err(denial) => panic!("expected changes, got {denial}"),
        }
    }

    #[test]
    fn an_api_without_policy_lets_everyone_through_unchanged() {
        let changes = changes_of(exchange(acme(), orders_api()));
        assert!(changes.is_empty());
    }

    #[test]
    fn allowed_clients_admits_listed_ids_only() {
        let api = orders_api().with_metadata("allowed_clients", json!(["acme-sync", "other"]));
        assert!(changes_of(exchange(acme(), api.clone())).is_empty());

        let stranger = Client::new("stranger", "Stranger", AppType::Machine);
        let denial = denial_of(exchange(stranger, api));
        assert_eq!(denial.code.as_str(), "access_denied");
        assert_eq!(
            denial.description,
            "client \"stranger\" is not in allowed_clients of API \"https://orders.example.com\""
        );
    }

    #[test]
    fn allowed_app_types_admits_listed_kinds_only() {
        let api =
            orders_api().with_metadata("allowed_app_types", json!(["machine", "regular_web"]));
        assert!(changes_of(exchange(acme(), api.clone())).is_empty());

        let spa = Client::new("shop-spa", "Shop", AppType::Spa);
        let denial = denial_of(exchange(spa, api));
        assert_eq!(
            denial.description,
            "client \"shop-spa\" is not in allowed_app_types of API \"https://orders.example.com\""
        );
    }

    #[test]
    fn allowed_partners_matches_the_partner_metadata_key() {
        let api = orders_api().with_metadata("allowed_partners", json!(["acme"]));
        assert!(changes_of(exchange(acme(), api.clone())).is_empty());

        let globex =
            Client::new("globex", "Globex", AppType::Machine).with_metadata("partner", "globex");
        let nobody = Client::new("nobody", "No partner", AppType::Machine);
        let listy = Client::new("listy", "Partner list", AppType::Machine)
            .with_metadata("partner", json!(["acme"]));
        for client in [globex, nobody, listy] {
            let id = client.id.clone();
            let denial = denial_of(exchange(client, api.clone()));
            assert_eq!(
                denial.description,
                format!("client \"{id}\" is not in allowed_partners of API \"{ORDERS}\"")
            );
        }
    }

    #[test]
    fn every_present_rule_must_pass() {
        let api = orders_api()
            .with_metadata("allowed_clients", json!(["acme-sync"]))
            .with_metadata("allowed_app_types", json!(["machine"]))
            .with_metadata("allowed_partners", json!(["initech"]));
        let denial = denial_of(exchange(acme(), api));
        assert!(denial.description.contains("allowed_partners"), "{denial}");
    }

    #[test]
    fn an_empty_list_admits_nobody() {
        let api = orders_api().with_metadata("allowed_clients", json!([]));
        assert!(
            denial_of(exchange(acme(), api))
                .description
                .contains("allowed_clients")
        );
    }

    fn tiered_api() -> Api {
        orders_api().with_metadata(
            "restricted_scopes",
            json!({ "write:orders": { "tier": ["gold", "platinum"] } }),
        )
    }

    #[test]
    fn a_restricted_scope_stays_when_the_metadata_allows_it() {
        let changes = changes_of(exchange(acme(), tiered_api()));
        assert!(changes.removed_scopes().is_empty());
    }

    #[test]
    fn a_restricted_scope_is_removed_and_logged_otherwise() {
        let silver = acme().with_metadata("tier", "silver");
        let untiered = Client::new("plain", "Plain", AppType::Machine);
        for client in [silver, untiered] {
            let event = CredentialsExchangeEvent::new(client, tiered_api())
                .with_scopes(["read:orders", "write:orders"]);
            let ctx = Context::mock();
            let changes = changes_of(ApiGuard::on_credentials_exchange(&event, &ctx));

            assert_eq!(changes.removed_scopes(), ["write:orders"]);
            assert!(changes.added_scopes().is_empty());
            let logs = ctx.logs();
            assert_eq!(logs.len(), 1);
            assert_eq!(logs[0].0, Level::Info);
            assert!(logs[0].1.contains("write:orders"), "{}", logs[0].1);
        }
    }

    #[test]
    fn a_metadata_list_passes_if_any_item_is_allowed() {
        let multi = acme().with_metadata("tier", json!(["bronze", "platinum"]));
        assert!(
            changes_of(exchange(multi, tiered_api()))
                .removed_scopes()
                .is_empty()
        );

        let none = acme().with_metadata("tier", json!(["bronze", 3]));
        assert_eq!(
            changes_of(exchange(none, tiered_api())).removed_scopes(),
            ["write:orders"]
        );
    }

    #[test]
    fn every_requirement_of_a_scope_must_hold() {
        let api = orders_api().with_metadata(
            "restricted_scopes",
            json!({ "write:orders": { "tier": ["gold"], "region": ["eu"] } }),
        );
        assert_eq!(
            changes_of(exchange(acme(), api.clone())).removed_scopes(),
            ["write:orders"]
        );

        let eu = acme().with_metadata("region", "eu");
        assert!(changes_of(exchange(eu, api)).removed_scopes().is_empty());
    }

    #[test]
    fn only_scopes_the_token_carries_are_removed() {
        let api = orders_api().with_metadata(
            "restricted_scopes",
            json!({ "admin:orders": { "tier": ["platinum"] } }),
        );
        let event = CredentialsExchangeEvent::new(acme(), api).with_scopes(["read:orders"]);
        let ctx = Context::mock();
        let changes = changes_of(ApiGuard::on_credentials_exchange(&event, &ctx));
        assert!(changes.is_empty());
        assert!(ctx.logs().is_empty());
    }

    #[test]
    fn authorize_without_an_api_does_nothing() {
        let event = AuthorizeEvent::new(
            Client::new("shop", "Shop", AppType::Spa),
            User::new("user-1"),
        )
        .with_scopes(["openid"]);
        let changes = changes_of(ApiGuard::on_authorize(&event, &Context::mock()));
        assert!(changes.is_empty());
    }

    #[test]
    fn authorize_applies_the_same_rules() {
        let api = tiered_api().with_metadata("allowed_app_types", json!(["regular_web"]));
        let user = User::new("user-1");

        let spa = AuthorizeEvent::new(Client::new("shop-spa", "Shop", AppType::Spa), user.clone())
            .with_api(api.clone());
        let denial = denial_of(ApiGuard::on_authorize(&spa, &Context::mock()));
        assert!(denial.description.contains("allowed_app_types"), "{denial}");

        let web = AuthorizeEvent::new(Client::new("shop", "Shop", AppType::RegularWeb), user)
            .with_api(api)
            .with_scopes(["openid", "read:orders", "write:orders"]);
        let changes = changes_of(ApiGuard::on_authorize(&web, &Context::mock()));
        assert_eq!(changes.removed_scopes(), ["write:orders"]);
    }

    #[test]
    fn malformed_metadata_is_reported_with_its_key() {
        let cases = [
            (
                json!({ "allowed_clients": "acme-sync" }),
                "metadata key \"allowed_clients\" must be a list of strings",
            ),
            (
                json!({ "allowed_partners": ["acme", 1] }),
                "metadata key \"allowed_partners\" must be a list of strings",
            ),
            (
                json!({ "allowed_app_types": ["desktop"] }),
                "metadata key \"allowed_app_types\" must be a list of",
            ),
            (
                json!({ "restricted_scopes": ["write:orders"] }),
                "metadata key \"restricted_scopes\" must be a table",
            ),
            (
                json!({ "restricted_scopes": { "write:orders": "gold" } }),
                "metadata key \"restricted_scopes\".\"write:orders\" must be a table",
            ),
            (
                json!({ "restricted_scopes": { "write:orders": { "tier": "gold" } } }),
                "metadata key \"restricted_scopes\".\"write:orders\".\"tier\" must be a list of strings",
            ),
        ];
        for (metadata, expected) in cases {
            let Value::Object(metadata) = metadata else {
                unreachable!()
            };
            match Policy::from_metadata(&metadata) {
                Ok(policy) => panic!("{metadata:?} parsed as {policy:?}"),
                Err(err) => assert!(err.to_string().starts_with(expected), "{err}"),
            }
        }
    }

    #[test]
    fn well_formed_metadata_parses() {
        let api = tiered_api()
            .with_metadata("allowed_clients", json!(["a"]))
            .with_metadata("allowed_app_types", json!(["spa", "native"]))
            .with_metadata("owner", "orders-team");
        let policy = Policy::from_metadata(&api.metadata);
        assert_eq!(
            policy,
            Ok(Policy {
                allowed_clients: Some(vec!["a".into()]),
                allowed_app_types: Some(vec![AppType::Spa, AppType::Native]),
                allowed_partners: None,
                restricted_scopes: vec![Restriction {
                    scope: "write:orders".into(),
                    requirements: vec![Requirement {
                        key: "tier".into(),
                        allowed: vec!["gold".into(), "platinum".into()],
                    }],
                }],
            })
        );
    }

    #[test]
    #[should_panic(
        expected = "api-guard: API \"https://orders.example.com\" has malformed metadata: metadata key \"allowed_clients\""
    )]
    fn malformed_metadata_traps() {
        let api = orders_api().with_metadata("allowed_clients", "acme-sync");
        let _ = exchange(acme(), api);
    }
}
