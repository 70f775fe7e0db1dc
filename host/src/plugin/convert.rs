//! The only place WIT types and domain types meet.
//!
//! Outbound (host → plugin) conversions cannot fail. Inbound conversions
//! (plugin → host) check every value: JSON text must parse and stay shallow,
//! numbers must be finite.

use serde_json::{Map, Number, Value};

use super::bindings::types as wit;
use super::pipeline::{RequestInfo, TokenShape, TransactionInfo};
use crate::config::{Api, AppType, Client};
use crate::oauth::{ErrorCode, OAuthError};
use crate::store::User;

/// Deepest nesting accepted in a `json` value from a plugin.
pub const MAX_JSON_DEPTH: usize = 16;

/// A JSON value as a WIT `value`.
pub fn value_to_wit(v: &Value) -> wit::Value {
    match v {
        Value::Null => wit::Value::Null,
        Value::Bool(b) => wit::Value::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => wit::Value::Integer(i),
            None => wit::Value::Number(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => wit::Value::Text(s.clone()),
        Value::Array(items) if items.iter().all(Value::is_string) => wit::Value::TextList(
            items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect(),
        ),
        other => wit::Value::Json(other.to_string()),
    }
}

/// A JSON object as WIT `metadata`.
pub fn metadata_to_wit(m: &Map<String, Value>) -> Vec<(String, wit::Value)> {
    m.iter()
        .map(|(k, v)| (k.clone(), value_to_wit(v)))
        .collect()
}

/// A WIT `value` from a plugin as JSON; `None` for `null` (which removes a
/// claim).
pub fn value_from_wit(v: wit::Value) -> Result<Option<Value>, String> {
    Ok(Some(match v {
        wit::Value::Null => return Ok(None),
        wit::Value::Boolean(b) => Value::Bool(b),
        wit::Value::Integer(i) => Value::from(i),
        wit::Value::Number(f) => {
            Value::Number(Number::from_f64(f).ok_or_else(|| format!("{f} is not a finite number"))?)
        }
        wit::Value::Text(s) => Value::String(s),
        wit::Value::TextList(l) => Value::Array(l.into_iter().map(Value::String).collect()),
        wit::Value::Json(text) => {
            let v: Value = serde_json::from_str(&text)
                .map_err(|e| format!("json value does not parse: {e}"))?;
            if depth(&v) > MAX_JSON_DEPTH {
                return Err(format!(
                    "json value nests deeper than {MAX_JSON_DEPTH} levels"
                ));
            }
            v
        }
    }))
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// The client record.
pub fn client(c: &Client) -> wit::Client {
    wit::Client {
        id: c.id.clone(),
        name: c.name.clone(),
        app_type: match c.app_type {
            AppType::Spa => wit::AppType::Spa,
            AppType::RegularWeb => wit::AppType::RegularWeb,
            AppType::Native => wit::AppType::Native,
            AppType::Machine => wit::AppType::Machine,
        },
        metadata: metadata_to_wit(&c.metadata),
    }
}

/// The API record.
pub fn api(a: &Api) -> wit::Api {
    wit::Api {
        identifier: a.identifier.clone(),
        name: a.name.clone(),
        scopes: a.scopes.clone(),
        metadata: metadata_to_wit(&a.metadata),
    }
}

/// The request record.
pub fn request(r: &RequestInfo) -> wit::Request {
    wit::Request {
        ip: r.ip.clone(),
        user_agent: r.user_agent.clone(),
        hostname: r.hostname.clone(),
        method: r.method.clone(),
        params: r.params.clone(),
    }
}

/// The transaction record.
pub fn transaction(t: &TransactionInfo) -> wit::Transaction {
    wit::Transaction {
        id: t.id.clone(),
        grant_type: t.grant_type.to_owned(),
        requested_scopes: t.requested_scopes.clone(),
        granted_scopes: t.granted_scopes.clone(),
        redirect_uri: t.redirect_uri.clone(),
        requested_audience: t.requested_audience.clone(),
    }
}

/// The access-token state record.
pub fn token_state(shape: &TokenShape) -> wit::TokenState {
    wit::TokenState {
        claims: metadata_to_wit(&shape.claims),
        scopes: shape.scopes.clone(),
    }
}

/// The user record.
pub fn user(u: &User) -> wit::User {
    wit::User {
        id: u.id.clone(),
        email: Some(u.email.clone()),
        email_verified: u.email_verified,
        name: u.name.clone(),
        app_metadata: metadata_to_wit(&u.app_metadata),
        user_metadata: metadata_to_wit(&u.user_metadata),
    }
}

/// The ID-token state record (ID tokens carry no scopes).
pub fn id_token_state(shape: &TokenShape) -> wit::TokenState {
    wit::TokenState {
        claims: metadata_to_wit(&shape.id_claims),
        scopes: Vec::new(),
    }
}

/// A plugin's denial as the OAuth error it becomes.
pub fn denial(d: wit::Denial) -> OAuthError {
    let code = match d.code {
        wit::DenyCode::AccessDenied => ErrorCode::AccessDenied,
        wit::DenyCode::InvalidScope => ErrorCode::InvalidScope,
        wit::DenyCode::InvalidRequest => ErrorCode::InvalidRequest,
        wit::DenyCode::UnauthorizedClient => ErrorCode::UnauthorizedClient,
        wit::DenyCode::InvalidTarget => ErrorCode::InvalidTarget,
    };
    let mut description = d.description;
    if description.len() > 512 {
        let mut cut = 512;
        while !description.is_char_boundary(cut) {
            cut -= 1;
        }
        description.truncate(cut);
    }
    if description.is_empty() {
        description = "denied by policy".to_owned();
    }
    OAuthError::new(code, description)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_round_trip() {
        for v in [
            json!(null),
            json!(true),
            json!(7),
            json!(1.5),
            json!("x"),
            json!(["a", "b"]),
            json!({"a": [1, "x"]}),
            json!([1, 2]),
        ] {
            let back = value_from_wit(value_to_wit(&v)).expect("valid");
            assert_eq!(back.unwrap_or(Value::Null), v);
        }
    }

    #[test]
    fn bad_values_from_plugins_are_refused() {
        assert!(value_from_wit(wit::Value::Number(f64::NAN)).is_err());
        assert!(value_from_wit(wit::Value::Json("{".into())).is_err());
        let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
        assert!(
            value_from_wit(wit::Value::Json(deep))
                .unwrap_err()
                .contains("deeper")
        );
    }

    #[test]
    fn denial_maps_to_its_code() {
        let e = denial(wit::Denial {
            code: wit::DenyCode::InvalidTarget,
            description: String::new(),
        });
        assert_eq!(e.code, ErrorCode::InvalidTarget);
        assert_eq!(e.description, "denied by policy");
    }
}
