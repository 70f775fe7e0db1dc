//! What a stage gives a plugin and takes back, in the host's own types.
//!
//! The pipeline builds an [`Event`] once per stage and each plugin answers
//! with [`Changes`] or a [`Denial`]. The ABI modules ([`super::abi`]) are the
//! only code that turns these into a WIT version's types and back; nothing
//! else in the host sees generated bindings.

use std::sync::Arc;

use serde_json::{Map, Number, Value};

use crate::config::{Api, AppType, Client, Stage};
use crate::oauth::{ErrorCode, OAuthError};
use crate::store::User;

/// Deepest nesting accepted in a `json` value from a plugin.
pub const MAX_JSON_DEPTH: usize = 16;
/// Longest `error_description` a denial keeps.
pub const MAX_DENIAL_DESCRIPTION: usize = 512;

/// The HTTP request, as plugins see it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RequestInfo {
    /// Peer IP.
    pub ip: String,
    /// `User-Agent`.
    pub user_agent: Option<String>,
    /// `Host`.
    pub hostname: String,
    /// Method.
    pub method: String,
    /// Parameters without secrets.
    pub params: Vec<(String, String)>,
}

/// The protocol state, as plugins see it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TransactionInfo {
    /// Also the access token's `jti`.
    pub id: String,
    /// `grant_type`.
    pub grant_type: &'static str,
    /// Scopes asked for.
    pub requested_scopes: Vec<String>,
    /// Scopes granted before plugins.
    pub granted_scopes: Vec<String>,
    /// Redirect URI of a user flow.
    pub redirect_uri: Option<String>,
    /// `audience`/`resource` as asked.
    pub requested_audience: Option<String>,
}

/// The token as the plugins shape it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenShape {
    /// Custom access-token claims.
    pub claims: Map<String, Value>,
    /// Access-token scopes.
    pub scopes: Vec<String>,
    /// Custom ID-token claims.
    pub id_claims: Map<String, Value>,
}

/// Written as `tessera plugin test`'s event file writes the tokens:
/// `{"access_token": {"claims": …, "scopes": […]}, "id_token": {"claims": …}}`.
impl serde::Serialize for TokenShape {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serde_json::json!({
            "access_token": { "claims": self.claims, "scopes": self.scopes },
            "id_token": { "claims": self.id_claims },
        })
        .serialize(s)
    }
}

/// The application asking for a token.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClientFacts {
    /// `client_id`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Kind of application.
    pub app_type: AppType,
    /// Metadata from configuration.
    pub metadata: Map<String, Value>,
}

/// The API the token is for.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ApiFacts {
    /// The audience.
    pub identifier: String,
    /// Display name.
    pub name: String,
    /// Every scope it defines.
    pub scopes: Vec<String>,
    /// Metadata from configuration.
    pub metadata: Map<String, Value>,
}

/// The signed-in user.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UserFacts {
    /// `sub`.
    pub id: String,
    /// Email address.
    pub email: Option<String>,
    /// Whether the address is verified.
    pub email_verified: bool,
    /// Display name.
    pub name: Option<String>,
    /// Set by the system.
    pub app_metadata: Map<String, Value>,
    /// Set by the user.
    pub user_metadata: Map<String, Value>,
}

/// What stays the same for every plugin of one stage: who asks, for what,
/// and how. Shared by the calls of a stage (and by their stores) behind an
/// `Arc`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Facts {
    /// The client.
    pub client: ClientFacts,
    /// The API; none in a user flow that asked only for OpenID scopes.
    pub api: Option<ApiFacts>,
    /// The user (user flows only).
    pub user: Option<UserFacts>,
    /// The HTTP request.
    pub request: RequestInfo,
    /// The protocol state.
    pub transaction: TransactionInfo,
}

impl Facts {
    /// The facts of a request, copied out of the configuration and the store.
    pub fn new(
        client: &Client,
        api: Option<&Api>,
        user: Option<&User>,
        request: &RequestInfo,
        transaction: &TransactionInfo,
    ) -> Facts {
        Facts {
            client: ClientFacts {
                id: client.id.clone(),
                name: client.name.clone(),
                app_type: client.app_type,
                metadata: client.metadata.clone(),
            },
            api: api.map(|a| ApiFacts {
                identifier: a.identifier.clone(),
                name: a.name.clone(),
                scopes: a.scopes.clone(),
                metadata: a.metadata.clone(),
            }),
            user: user.map(|u| UserFacts {
                id: u.id.clone(),
                email: Some(u.email.clone()),
                email_verified: u.email_verified,
                name: u.name.clone(),
                app_metadata: u.app_metadata.clone(),
                user_metadata: u.user_metadata.clone(),
            }),
            request: request.clone(),
            transaction: transaction.clone(),
        }
    }
}

/// One plugin's input: the stage's facts and the token as the plugins before
/// it left it.
#[derive(Debug, Clone)]
pub struct Event {
    /// The stage.
    pub stage: Stage,
    /// Who asks, for what, how.
    pub facts: Arc<Facts>,
    /// The tokens so far.
    pub token: TokenShape,
}

/// A metadata or claim value as a plugin returns it: the WIT `value` variant
/// of every ABI version, checked by [`ClaimValue::into_json`].
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimValue {
    /// `null`: removes the claim.
    Null,
    /// `boolean`.
    Boolean(bool),
    /// `integer`.
    Integer(i64),
    /// `number`: must be finite.
    Number(f64),
    /// `text`.
    Text(String),
    /// `text-list`.
    TextList(Vec<String>),
    /// `json`: JSON text, which must parse and stay shallow.
    Json(String),
}

impl ClaimValue {
    /// The value as JSON; `None` for `null` (which removes a claim).
    pub fn into_json(self) -> Result<Option<Value>, String> {
        Ok(Some(match self {
            ClaimValue::Null => return Ok(None),
            ClaimValue::Boolean(b) => Value::Bool(b),
            ClaimValue::Integer(i) => Value::from(i),
            ClaimValue::Number(f) => Value::Number(
                Number::from_f64(f).ok_or_else(|| format!("{f} is not a finite number"))?,
            ),
            ClaimValue::Text(s) => Value::String(s),
            ClaimValue::TextList(l) => Value::Array(l.into_iter().map(Value::String).collect()),
            ClaimValue::Json(text) => {
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

    /// A JSON value in the variant's terms: arrays of strings as
    /// `text-list`, objects and other arrays as `json`.
    pub fn from_json(v: &Value) -> ClaimValue {
        match v {
            Value::Null => ClaimValue::Null,
            Value::Bool(b) => ClaimValue::Boolean(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => ClaimValue::Integer(i),
                None => ClaimValue::Number(n.as_f64().unwrap_or(0.0)),
            },
            Value::String(s) => ClaimValue::Text(s.clone()),
            Value::Array(items) if items.iter().all(Value::is_string) => ClaimValue::TextList(
                items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_owned))
                    .collect(),
            ),
            other => ClaimValue::Json(other.to_string()),
        }
    }
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// What a plugin wants changed; checked as a whole by the pipeline before
/// any of it is applied.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// Access-token claims to set (`null` removes one).
    pub access_token_claims: Vec<(String, ClaimValue)>,
    /// ID-token claims to set.
    pub id_token_claims: Vec<(String, ClaimValue)>,
    /// Scopes to add (authorize stage only).
    pub add_scopes: Vec<String>,
    /// Scopes to remove.
    pub remove_scopes: Vec<String>,
}

/// A plugin's refusal.
#[derive(Debug, Clone)]
pub struct Denial {
    /// The OAuth error it becomes.
    pub code: ErrorCode,
    /// The `error_description`, as the plugin wrote it.
    pub description: String,
}

impl Denial {
    /// The OAuth error the client sees: the description cut to
    /// [`MAX_DENIAL_DESCRIPTION`] bytes, or a generic one when empty.
    pub fn into_oauth(self) -> OAuthError {
        let mut description = self.description;
        if description.len() > MAX_DENIAL_DESCRIPTION {
            let mut cut = MAX_DENIAL_DESCRIPTION;
            while !description.is_char_boundary(cut) {
                cut -= 1;
            }
            description.truncate(cut);
        }
        if description.is_empty() {
            description = "denied by policy".to_owned();
        }
        OAuthError::new(self.code, description)
    }
}

/// A plugin's answer.
pub type Answer = Result<Changes, Denial>;

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
            let back = ClaimValue::from_json(&v).into_json().expect("valid");
            assert_eq!(back.unwrap_or(Value::Null), v);
        }
    }

    #[test]
    fn bad_values_from_plugins_are_refused() {
        assert!(ClaimValue::Number(f64::NAN).into_json().is_err());
        assert!(ClaimValue::Json("{".into()).into_json().is_err());
        let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
        assert!(
            ClaimValue::Json(deep)
                .into_json()
                .unwrap_err()
                .contains("deeper")
        );
    }

    #[test]
    fn a_denial_keeps_its_code_and_gets_a_description() {
        let e = Denial {
            code: ErrorCode::InvalidTarget,
            description: String::new(),
        }
        .into_oauth();
        assert_eq!(e.code, ErrorCode::InvalidTarget);
        assert_eq!(e.description, "denied by policy");
        let long = Denial {
            code: ErrorCode::AccessDenied,
            description: "é".repeat(400),
        }
        .into_oauth();
        assert!(long.description.len() <= MAX_DENIAL_DESCRIPTION);
    }
}
