//! The only place where the generated ABI types and the SDK types meet.
//!
//! WIT has no recursive types, so a WIT `value` is a flat variant and nested
//! JSON travels as JSON text. The mapping to [`serde_json::Value`]:
//!
//! | WIT `value`        | `serde_json::Value`                                 |
//! |--------------------|-----------------------------------------------------|
//! | `null`             | `Null`                                              |
//! | `boolean(b)`       | `Bool(b)`                                           |
//! | `integer(i)`       | a number that fits `i64`                            |
//! | `number(f)`        | any other number (`u64` above `i64::MAX`, floats)   |
//! | `text(s)`          | `String(s)`                                         |
//! | `text-list(l)`     | an array of strings only (the empty array included) |
//! | `json(t)`          | objects and other arrays, as JSON text              |
//!
//! `json` text from the host that does not parse becomes a JSON string of
//! that text rather than failing the plugin; a non-finite `number` (which the
//! host refuses anyway) becomes `Null`.

use std::sync::Once;

use serde_json::{Number, Value};

use crate::__bindings as wit;
use crate::__bindings::host;
use crate::__bindings::types as t;
use crate::{
    Api, AppType, AuthorizeEvent, Changes, Client, CredentialsExchangeEvent, Denial, DenyCode,
    Level, Metadata, Part, Request, TokenState, Transaction, User,
};

/// A WIT value as JSON.
pub(crate) fn value_from_wit(value: t::Value) -> Value {
    match value {
        t::Value::Null => Value::Null,
        t::Value::Boolean(b) => Value::Bool(b),
        t::Value::Integer(i) => Value::Number(i.into()),
        t::Value::Number(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        t::Value::Text(s) => Value::String(s),
        t::Value::TextList(list) => Value::Array(list.into_iter().map(Value::String).collect()),
        t::Value::Json(text) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

/// JSON as a WIT value.
pub(crate) fn value_to_wit(value: Value) -> t::Value {
    match value {
        Value::Null => t::Value::Null,
        Value::Bool(b) => t::Value::Boolean(b),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => t::Value::Integer(i),
            (None, Some(f)) => t::Value::Number(f),
            (None, None) => t::Value::Json(n.to_string()),
        },
        Value::String(s) => t::Value::Text(s),
        Value::Array(items) if items.iter().all(Value::is_string) => t::Value::TextList(
            items
                .into_iter()
                .filter_map(|item| match item {
                    Value::String(s) => Some(s),
                    _ => None,
                })
                .collect(),
        ),
        other @ (Value::Array(_) | Value::Object(_)) => t::Value::Json(other.to_string()),
    }
}

/// WIT metadata as a JSON map.
pub(crate) fn metadata_from_wit(metadata: t::Metadata) -> Metadata {
    metadata
        .into_iter()
        .map(|(name, value)| (name, value_from_wit(value)))
        .collect()
}

/// Claim edits as WIT metadata; a removal is `null`.
fn claim_edits_to_wit(edits: Vec<(String, Option<Value>)>) -> t::Metadata {
    edits
        .into_iter()
        .map(|(name, value)| (name, value.map_or(t::Value::Null, value_to_wit)))
        .collect()
}

fn app_type(app_type: t::AppType) -> AppType {
    match app_type {
        t::AppType::Spa => AppType::Spa,
        t::AppType::RegularWeb => AppType::RegularWeb,
        t::AppType::Native => AppType::Native,
        t::AppType::Machine => AppType::Machine,
    }
}

fn client(client: t::Client) -> Client {
    Client {
        id: client.id,
        name: client.name,
        app_type: app_type(client.app_type),
        metadata: metadata_from_wit(client.metadata),
    }
}

fn api(api: t::Api) -> Api {
    Api {
        identifier: api.identifier,
        name: api.name,
        scopes: api.scopes,
        metadata: metadata_from_wit(api.metadata),
    }
}

fn user(user: t::User) -> User {
    User {
        id: user.id,
        email: user.email,
        email_verified: user.email_verified,
        name: user.name,
        app_metadata: metadata_from_wit(user.app_metadata),
        user_metadata: metadata_from_wit(user.user_metadata),
    }
}

fn request(request: t::Request) -> Request {
    Request {
        ip: request.ip,
        user_agent: request.user_agent,
        hostname: request.hostname,
        method: request.method,
        params: request.params,
    }
}

fn transaction(transaction: t::Transaction) -> Transaction {
    Transaction {
        id: transaction.id,
        grant_type: transaction.grant_type,
        requested_scopes: transaction.requested_scopes,
        granted_scopes: transaction.granted_scopes,
        redirect_uri: transaction.redirect_uri,
        requested_audience: transaction.requested_audience,
    }
}

fn token_state(token: t::TokenState) -> TokenState {
    TokenState {
        claims: metadata_from_wit(token.claims),
        scopes: token.scopes,
    }
}

/// The host's event, by its handle, for reading one part: never dropped
/// here (the export's glue owns it and drops it when the plugin returns).
#[allow(unsafe_code, reason = "a second view of the handle the glue owns")]
fn lent(handle: u32) -> std::mem::ManuallyDrop<wit::Event> {
    // SAFETY: `handle` is the handle of the event the host passed to the
    // running export, owned by `__private` until the plugin returns (see
    // `credentials_exchange_event`). A part read later finds the handle gone
    // and traps in the component's handle check; it never reads memory.
    // `ManuallyDrop` keeps this view from dropping what it does not own.
    std::mem::ManuallyDrop::new(unsafe { wit::Event::from_handle(handle) })
}

fn read_client(handle: u32) -> Client {
    client(lent(handle).client())
}

fn read_api(handle: u32) -> Api {
    // The host always gives credentials-exchange an API.
    lent(handle)
        .api()
        .map(api)
        .unwrap_or_else(|| Api::new("", ""))
}

fn read_user(handle: u32) -> User {
    // The host always gives authorize a user.
    lent(handle).user().map(user).unwrap_or_default()
}

fn read_request(handle: u32) -> Request {
    request(lent(handle).request())
}

fn read_transaction(handle: u32) -> Transaction {
    transaction(lent(handle).transaction())
}

fn read_access_token(handle: u32) -> TokenState {
    token_state(lent(handle).access_token())
}

fn read_id_token(handle: u32) -> TokenState {
    lent(handle).id_token().map(token_state).unwrap_or_default()
}

/// The host's credentials-exchange event as the SDK event; each part is read
/// when the plugin first looks at it.
pub(crate) fn credentials_exchange_event(event: &wit::Event) -> CredentialsExchangeEvent {
    let h = event.handle();
    CredentialsExchangeEvent {
        client: Part::from_host(h, read_client),
        api: Part::from_host(h, read_api),
        request: Part::from_host(h, read_request),
        transaction: Part::from_host(h, read_transaction),
        access_token: Part::from_host(h, read_access_token),
    }
}

/// The host's authorize event as the SDK event; the API is read at once
/// (so it can be matched as an `Option`), the other parts when first used.
pub(crate) fn authorize_event(event: &wit::Event) -> AuthorizeEvent {
    let h = event.handle();
    AuthorizeEvent {
        client: Part::from_host(h, read_client),
        api: event.api().map(api),
        user: Part::from_host(h, read_user),
        request: Part::from_host(h, read_request),
        transaction: Part::from_host(h, read_transaction),
        access_token: Part::from_host(h, read_access_token),
        id_token: Part::from_host(h, read_id_token),
    }
}

/// A plugin's changes as the ABI's.
pub(crate) fn changes(changes: Changes) -> wit::Changes {
    wit::Changes {
        access_token_claims: claim_edits_to_wit(changes.access_token_claims),
        id_token_claims: claim_edits_to_wit(changes.id_token_claims),
        add_scopes: changes.added_scopes,
        remove_scopes: changes.removed_scopes,
    }
}

/// A plugin's denial as the ABI's.
pub(crate) fn denial(denial: Denial) -> wit::Denial {
    let code = match denial.code {
        DenyCode::AccessDenied => t::DenyCode::AccessDenied,
        DenyCode::InvalidScope => t::DenyCode::InvalidScope,
        DenyCode::InvalidRequest => t::DenyCode::InvalidRequest,
        DenyCode::UnauthorizedClient => t::DenyCode::UnauthorizedClient,
        DenyCode::InvalidTarget => t::DenyCode::InvalidTarget,
    };
    wit::Denial {
        code,
        description: denial.description,
    }
}

fn log_level(level: Level) -> t::LogLevel {
    match level {
        Level::Trace => t::LogLevel::Trace,
        Level::Debug => t::LogLevel::Debug,
        Level::Info => t::LogLevel::Info,
        Level::Warn => t::LogLevel::Warn,
        Level::Error => t::LogLevel::Error,
    }
}

/// `host.log`. Only callable inside a component.
pub(crate) fn host_log(level: Level, message: &str) {
    host::log(log_level(level), message);
}

/// `host.config`. Only callable inside a component.
pub(crate) fn host_config(key: &str) -> Option<String> {
    host::config(key)
}

/// `host.secret`. Only callable inside a component.
pub(crate) fn host_secret(name: &str) -> Option<String> {
    host::secret(name)
}

/// Sends panic messages to the host's log before the trap, so that a
/// plugin's failure explains itself in the request's trace. Only installed by
/// the exported entry points.
pub(crate) fn install_panic_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            host_log(Level::Error, &format!("plugin panicked: {info}"));
            default_hook(info);
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(value: Value) -> Value {
        value_from_wit(value_to_wit(value))
    }

    #[test]
    fn scalars_map_to_their_own_variants() {
        assert!(matches!(value_to_wit(Value::Null), t::Value::Null));
        assert!(matches!(value_to_wit(json!(true)), t::Value::Boolean(true)));
        assert!(matches!(value_to_wit(json!(-7)), t::Value::Integer(-7)));
        assert!(matches!(
            value_to_wit(json!(i64::MAX)),
            t::Value::Integer(i64::MAX)
        ));
        assert!(matches!(value_to_wit(json!(1.5)), t::Value::Number(f) if f == 1.5));
        assert!(matches!(value_to_wit(json!("x")), t::Value::Text(s) if s == "x"));
    }

    #[test]
    fn integers_beyond_i64_travel_as_numbers() {
        let big = u64::MAX;
        assert!(
            matches!(value_to_wit(json!(big)), t::Value::Number(f) if f == big as f64),
            "u64 above i64::MAX is not an s64"
        );
    }

    #[test]
    fn string_arrays_are_text_lists_and_other_arrays_json() {
        assert!(
            matches!(value_to_wit(json!(["a", "b"])), t::Value::TextList(l) if l == ["a", "b"])
        );
        assert!(matches!(value_to_wit(json!([])), t::Value::TextList(l) if l.is_empty()));
        assert!(matches!(value_to_wit(json!(["a", 1])), t::Value::Json(s) if s == r#"["a",1]"#));
        assert!(
            matches!(value_to_wit(json!({ "k": [1, null] })), t::Value::Json(s) if s == r#"{"k":[1,null]}"#)
        );
    }

    #[test]
    fn values_round_trip() {
        for value in [
            Value::Null,
            json!(false),
            json!(0),
            json!(i64::MIN),
            json!(-0.25),
            json!(""),
            json!("ünïcode"),
            json!([]),
            json!(["a"]),
            json!([1, 2]),
            json!([["nested"]]),
            json!({}),
            json!({ "tier": "gold", "limits": { "rps": 10, "burst": 2.5 }, "tags": ["x"] }),
        ] {
            assert_eq!(round_trip(value.clone()), value);
        }
    }

    #[test]
    fn json_text_from_the_host_is_parsed_or_kept_as_a_string() {
        assert_eq!(
            value_from_wit(t::Value::Json(r#"{"a":[1,"b"]}"#.into())),
            json!({ "a": [1, "b"] })
        );
        assert_eq!(
            value_from_wit(t::Value::Json("{not json".into())),
            json!("{not json")
        );
        assert_eq!(value_from_wit(t::Value::Number(f64::NAN)), Value::Null);
        assert_eq!(
            value_from_wit(t::Value::TextList(vec!["a".into(), "b".into()])),
            json!(["a", "b"])
        );
    }

    #[test]
    fn changes_become_wit_lists_with_null_for_removals() {
        let mut edits = Changes::default();
        edits
            .set_access_token_claim("a", json!({ "x": 1 }))
            .remove_access_token_claim("b")
            .set_id_token_claim("c", "v")
            .add_scope("s1")
            .remove_scope("s2");
        let out = changes(edits);
        assert_eq!(out.access_token_claims.len(), 2);
        assert!(
            matches!(&out.access_token_claims[0], (n, t::Value::Json(s)) if n == "a" && s == r#"{"x":1}"#)
        );
        assert!(matches!(&out.access_token_claims[1], (n, t::Value::Null) if n == "b"));
        assert!(matches!(&out.id_token_claims[0], (n, t::Value::Text(s)) if n == "c" && s == "v"));
        assert_eq!(out.add_scopes, ["s1"]);
        assert_eq!(out.remove_scopes, ["s2"]);
    }

    #[test]
    fn denials_keep_code_and_description() {
        let out = denial(Denial::invalid_target("nope"));
        assert_eq!(out.code, t::DenyCode::InvalidTarget);
        assert_eq!(out.description, "nope");
    }

    fn wit_client() -> t::Client {
        t::Client {
            id: "acme".into(),
            name: "ACME".into(),
            app_type: t::AppType::RegularWeb,
            metadata: vec![
                ("partner".into(), t::Value::Text("acme".into())),
                ("limits".into(), t::Value::Json(r#"{"rps":5}"#.into())),
            ],
        }
    }

    fn wit_api() -> t::Api {
        t::Api {
            identifier: "https://orders.example.com".into(),
            name: "Orders".into(),
            scopes: vec!["read:orders".into()],
            metadata: vec![("owner".into(), t::Value::Text("team".into()))],
        }
    }

    fn wit_request() -> t::Request {
        t::Request {
            ip: "127.0.0.1".into(),
            user_agent: Some("curl".into()),
            hostname: "issuer".into(),
            method: "POST".into(),
            params: vec![("grant_type".into(), "client_credentials".into())],
        }
    }

    fn wit_transaction() -> t::Transaction {
        t::Transaction {
            id: "jti-1".into(),
            grant_type: "client_credentials".into(),
            requested_scopes: vec!["read:orders".into()],
            granted_scopes: vec!["read:orders".into()],
            redirect_uri: None,
            requested_audience: Some("https://orders.example.com".into()),
        }
    }

    /// The parts an event reads from the host, each converted field by
    /// field (in a component, `credentials_exchange_event` and
    /// `authorize_event` wrap these in `Part`s read on first use).
    #[test]
    fn event_parts_convert_field_by_field() {
        let client = client(wit_client());
        assert_eq!(client.id, "acme");
        assert_eq!(client.app_type, AppType::RegularWeb);
        assert_eq!(client.metadata["partner"], "acme");
        assert_eq!(client.metadata["limits"], json!({ "rps": 5 }));
        let api = api(wit_api());
        assert_eq!(api.identifier, "https://orders.example.com");
        assert_eq!(api.metadata["owner"], "team");
        let request = request(wit_request());
        assert_eq!(request.user_agent.as_deref(), Some("curl"));
        assert_eq!(request.param("grant_type"), Some("client_credentials"));
        let transaction = transaction(wit_transaction());
        assert_eq!(transaction.id, "jti-1");
        assert_eq!(
            transaction.requested_audience.as_deref(),
            Some("https://orders.example.com")
        );
        let token = token_state(t::TokenState {
            claims: vec![("x".into(), t::Value::Integer(1))],
            scopes: vec!["read:orders".into()],
        });
        assert_eq!(token.claims["x"], 1);
        assert!(token.has_scope("read:orders"));
        let user = user(t::User {
            id: "user-1".into(),
            email: Some("ada@example.com".into()),
            email_verified: true,
            name: None,
            app_metadata: vec![("roles".into(), t::Value::TextList(vec!["admin".into()]))],
            user_metadata: vec![("theme".into(), t::Value::Text("dark".into()))],
        });
        assert_eq!(user.id, "user-1");
        assert!(user.email_verified);
        assert_eq!(user.app_metadata["roles"], json!(["admin"]));
        assert_eq!(user.user_metadata["theme"], "dark");
    }

    #[test]
    fn every_app_type_and_level_has_a_counterpart() {
        assert_eq!(app_type(t::AppType::Spa), AppType::Spa);
        assert_eq!(app_type(t::AppType::Native), AppType::Native);
        assert_eq!(app_type(t::AppType::Machine), AppType::Machine);
        assert_eq!(log_level(Level::Warn), t::LogLevel::Warn);
        assert_eq!(log_level(Level::Trace), t::LogLevel::Trace);
    }
}
