//! The stage outputs: changes to the tokens, or a denial.

use std::fmt;

use serde_json::Value;

/// What a plugin wants changed in the tokens. The default changes nothing.
///
/// Claims are set by name; setting the same name twice keeps the last value.
/// Setting a claim to JSON `null` is the same as removing it. Removing only
/// affects custom claims that earlier plugins set; reserved claims (`iss`,
/// `sub`, `aud`, `scope`, ...) can be neither set nor removed, and the host
/// fails the plugin if it tries.
///
/// Scopes: the last of [`add_scope`](Changes::add_scope) and
/// [`remove_scope`](Changes::remove_scope) for a scope wins. Scopes can only
/// be added in the authorize stage, and only within what the API's policy
/// allows.
///
/// # Example
///
/// ```
/// use tessera_plugin_sdk::{Changes, json};
///
/// let mut changes = Changes::default();
/// changes
///     .set_access_token_claim("https://claims.example.com/tier", "gold")
///     .set_access_token_claim("https://claims.example.com/regions", json!(["eu"]))
///     .remove_scope("write:orders");
///
/// assert_eq!(
///     changes.access_token_claim("https://claims.example.com/tier"),
///     Some(&json!("gold")),
/// );
/// assert_eq!(changes.removed_scopes(), ["write:orders"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes {
    // `None` removes a claim. Crate-visible for the conversion to the ABI.
    pub(crate) access_token_claims: Vec<(String, Option<Value>)>,
    pub(crate) id_token_claims: Vec<(String, Option<Value>)>,
    pub(crate) added_scopes: Vec<String>,
    pub(crate) removed_scopes: Vec<String>,
}

impl Changes {
    /// Sets a custom claim on the access token, replacing any earlier value.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::{Changes, json};
    ///
    /// let mut changes = Changes::default();
    /// changes.set_access_token_claim("https://claims.example.com/limits", json!({ "rps": 10 }));
    /// assert_eq!(
    ///     changes.access_token_claim("https://claims.example.com/limits"),
    ///     Some(&json!({ "rps": 10 })),
    /// );
    /// ```
    pub fn set_access_token_claim(
        &mut self,
        name: impl Into<String>,
        value: impl Into<Value>,
    ) -> &mut Self {
        upsert(&mut self.access_token_claims, name.into(), value.into());
        self
    }

    /// Removes a custom claim that an earlier plugin set on the access token.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::Changes;
    ///
    /// let mut changes = Changes::default();
    /// changes.remove_access_token_claim("https://claims.example.com/debug");
    /// assert!(changes.removes_access_token_claim("https://claims.example.com/debug"));
    /// ```
    pub fn remove_access_token_claim(&mut self, name: impl Into<String>) -> &mut Self {
        upsert(&mut self.access_token_claims, name.into(), Value::Null);
        self
    }

    /// Sets a custom claim on the ID token (authorize stage only), replacing
    /// any earlier value.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::{Changes, json};
    ///
    /// let mut changes = Changes::default();
    /// changes.set_id_token_claim("https://claims.example.com/plan", "pro");
    /// assert_eq!(
    ///     changes.id_token_claim("https://claims.example.com/plan"),
    ///     Some(&json!("pro")),
    /// );
    /// ```
    pub fn set_id_token_claim(
        &mut self,
        name: impl Into<String>,
        value: impl Into<Value>,
    ) -> &mut Self {
        upsert(&mut self.id_token_claims, name.into(), value.into());
        self
    }

    /// Removes a custom claim that an earlier plugin set on the ID token.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::Changes;
    ///
    /// let mut changes = Changes::default();
    /// changes.remove_id_token_claim("https://claims.example.com/plan");
    /// assert!(changes.removes_id_token_claim("https://claims.example.com/plan"));
    /// ```
    pub fn remove_id_token_claim(&mut self, name: impl Into<String>) -> &mut Self {
        upsert(&mut self.id_token_claims, name.into(), Value::Null);
        self
    }

    /// Adds a scope to the access token (authorize stage only).
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::Changes;
    ///
    /// let mut changes = Changes::default();
    /// changes.add_scope("read:orders");
    /// assert_eq!(changes.added_scopes(), ["read:orders"]);
    /// ```
    pub fn add_scope(&mut self, scope: impl Into<String>) -> &mut Self {
        let scope = scope.into();
        self.removed_scopes.retain(|s| *s != scope);
        if !self.added_scopes.contains(&scope) {
            self.added_scopes.push(scope);
        }
        self
    }

    /// Removes a scope from the access token. Removing a scope the token does
    /// not carry is not an error.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::Changes;
    ///
    /// let mut changes = Changes::default();
    /// changes.add_scope("write:orders").remove_scope("write:orders");
    /// assert!(changes.added_scopes().is_empty());
    /// assert_eq!(changes.removed_scopes(), ["write:orders"]);
    /// ```
    pub fn remove_scope(&mut self, scope: impl Into<String>) -> &mut Self {
        let scope = scope.into();
        self.added_scopes.retain(|s| *s != scope);
        if !self.removed_scopes.contains(&scope) {
            self.removed_scopes.push(scope);
        }
        self
    }

    /// The access-token claim changes in the order they were first made:
    /// `Some(value)` sets a claim, `None` removes it.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::{Changes, json};
    ///
    /// let mut changes = Changes::default();
    /// changes.set_access_token_claim("a", 1).remove_access_token_claim("b");
    /// assert_eq!(
    ///     changes.access_token_claims(),
    ///     [("a".to_owned(), Some(json!(1))), ("b".to_owned(), None)],
    /// );
    /// ```
    pub fn access_token_claims(&self) -> &[(String, Option<Value>)] {
        &self.access_token_claims
    }

    /// The value these changes set for an access-token claim; `None` if they
    /// do not set it (or remove it).
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::Changes;
    ///
    /// let mut changes = Changes::default();
    /// changes.set_access_token_claim("a", true);
    /// assert_eq!(changes.access_token_claim("a"), Some(&true.into()));
    /// assert_eq!(changes.access_token_claim("b"), None);
    /// ```
    pub fn access_token_claim(&self, name: &str) -> Option<&Value> {
        find(&self.access_token_claims, name).flatten()
    }

    /// Whether these changes remove an access-token claim.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::Changes;
    ///
    /// let mut changes = Changes::default();
    /// changes.set_access_token_claim("a", serde_json::Value::Null);
    /// assert!(changes.removes_access_token_claim("a"));
    /// ```
    pub fn removes_access_token_claim(&self, name: &str) -> bool {
        matches!(find(&self.access_token_claims, name), Some(None))
    }

    /// The ID-token claim changes in the order they were first made:
    /// `Some(value)` sets a claim, `None` removes it.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::Changes;
    ///
    /// let mut changes = Changes::default();
    /// changes.set_id_token_claim("plan", "pro");
    /// assert_eq!(changes.id_token_claims().len(), 1);
    /// ```
    pub fn id_token_claims(&self) -> &[(String, Option<Value>)] {
        &self.id_token_claims
    }

    /// The value these changes set for an ID-token claim; `None` if they do
    /// not set it (or remove it).
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::Changes;
    ///
    /// let mut changes = Changes::default();
    /// changes.set_id_token_claim("plan", "pro");
    /// assert_eq!(changes.id_token_claim("plan").and_then(|v| v.as_str()), Some("pro"));
    /// ```
    pub fn id_token_claim(&self, name: &str) -> Option<&Value> {
        find(&self.id_token_claims, name).flatten()
    }

    /// Whether these changes remove an ID-token claim.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::Changes;
    ///
    /// let mut changes = Changes::default();
    /// changes.remove_id_token_claim("plan");
    /// assert!(changes.removes_id_token_claim("plan"));
    /// ```
    pub fn removes_id_token_claim(&self, name: &str) -> bool {
        matches!(find(&self.id_token_claims, name), Some(None))
    }

    /// The scopes to add, in the order they were added.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::Changes;
    ///
    /// let mut changes = Changes::default();
    /// changes.add_scope("b").add_scope("a").add_scope("b");
    /// assert_eq!(changes.added_scopes(), ["b", "a"]);
    /// ```
    pub fn added_scopes(&self) -> &[String] {
        &self.added_scopes
    }

    /// The scopes to remove, in the order they were removed.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::Changes;
    ///
    /// let mut changes = Changes::default();
    /// changes.remove_scope("write:orders");
    /// assert_eq!(changes.removed_scopes(), ["write:orders"]);
    /// ```
    pub fn removed_scopes(&self) -> &[String] {
        &self.removed_scopes
    }

    /// Whether these changes change nothing.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::Changes;
    ///
    /// assert!(Changes::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.access_token_claims.is_empty()
            && self.id_token_claims.is_empty()
            && self.added_scopes.is_empty()
            && self.removed_scopes.is_empty()
    }
}

/// Sets `name` in an edit list, keeping the position of an earlier edit.
/// `null` means removal.
fn upsert(edits: &mut Vec<(String, Option<Value>)>, name: String, value: Value) {
    let value = (!value.is_null()).then_some(value);
    match edits.iter_mut().find(|(n, _)| *n == name) {
        Some(edit) => edit.1 = value,
        None => edits.push((name, value)),
    }
}

/// The edit of `name`, if any: `Some(None)` is a removal.
fn find<'a>(edits: &'a [(String, Option<Value>)], name: &str) -> Option<Option<&'a Value>> {
    edits
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, value)| value.as_ref())
}

/// The OAuth error a [`Denial`] becomes (RFC 6749 section 5.2, RFC 8707).
///
/// # Example
///
/// ```
/// use tessera_plugin_sdk::DenyCode;
///
/// assert_eq!(DenyCode::InvalidTarget.as_str(), "invalid_target");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyCode {
    /// The request is refused (`access_denied`).
    AccessDenied,
    /// The requested scope is not acceptable (`invalid_scope`).
    InvalidScope,
    /// The request is malformed or missing something (`invalid_request`).
    InvalidRequest,
    /// This client may not use this flow (`unauthorized_client`).
    UnauthorizedClient,
    /// The requested API is not acceptable (`invalid_target`).
    InvalidTarget,
}

impl DenyCode {
    /// The OAuth `error` code: `access_denied`, `invalid_scope`, ...
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::DenyCode;
    ///
    /// assert_eq!(DenyCode::AccessDenied.as_str(), "access_denied");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            DenyCode::AccessDenied => "access_denied",
            DenyCode::InvalidScope => "invalid_scope",
            DenyCode::InvalidRequest => "invalid_request",
            DenyCode::UnauthorizedClient => "unauthorized_client",
            DenyCode::InvalidTarget => "invalid_target",
        }
    }
}

impl fmt::Display for DenyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal: the request fails with this OAuth error, and later plugins do
/// not run.
///
/// The description is sent to the client as `error_description`: keep it
/// free of secrets.
///
/// # Example
///
/// ```
/// use tessera_plugin_sdk::{Denial, DenyCode};
///
/// let denial = Denial::invalid_scope("write:orders needs a gold tier");
/// assert_eq!(denial.code, DenyCode::InvalidScope);
/// assert_eq!(denial.to_string(), "invalid_scope: write:orders needs a gold tier");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The OAuth error code.
    pub code: DenyCode,
    /// A human-readable reason, sent to the client as `error_description`.
    pub description: String,
}

impl Denial {
    /// A denial with any code.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::{Denial, DenyCode};
    ///
    /// let denial = Denial::new(DenyCode::AccessDenied, "outside office hours");
    /// assert_eq!(denial, Denial::access_denied("outside office hours"));
    /// ```
    pub fn new(code: DenyCode, description: impl Into<String>) -> Self {
        Denial {
            code,
            description: description.into(),
        }
    }

    /// `access_denied`: the request is refused.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::{Denial, DenyCode};
    ///
    /// assert_eq!(Denial::access_denied("no").code, DenyCode::AccessDenied);
    /// ```
    pub fn access_denied(description: impl Into<String>) -> Self {
        Denial::new(DenyCode::AccessDenied, description)
    }

    /// `invalid_scope`: the requested scope is not acceptable.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::{Denial, DenyCode};
    ///
    /// assert_eq!(Denial::invalid_scope("no").code, DenyCode::InvalidScope);
    /// ```
    pub fn invalid_scope(description: impl Into<String>) -> Self {
        Denial::new(DenyCode::InvalidScope, description)
    }

    /// `invalid_request`: the request is malformed or missing something.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::{Denial, DenyCode};
    ///
    /// assert_eq!(Denial::invalid_request("no").code, DenyCode::InvalidRequest);
    /// ```
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Denial::new(DenyCode::InvalidRequest, description)
    }

    /// `unauthorized_client`: this client may not use this flow.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::{Denial, DenyCode};
    ///
    /// assert_eq!(Denial::unauthorized_client("no").code, DenyCode::UnauthorizedClient);
    /// ```
    pub fn unauthorized_client(description: impl Into<String>) -> Self {
        Denial::new(DenyCode::UnauthorizedClient, description)
    }

    /// `invalid_target`: the requested API is not acceptable.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::{Denial, DenyCode};
    ///
    /// assert_eq!(Denial::invalid_target("no").code, DenyCode::InvalidTarget);
    /// ```
    pub fn invalid_target(description: impl Into<String>) -> Self {
        Denial::new(DenyCode::InvalidTarget, description)
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.description)
    }
}

impl std::error::Error for Denial {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn setting_a_claim_twice_keeps_the_first_position_and_the_last_value() {
        let mut changes = Changes::default();
        changes
            .set_access_token_claim("a", 1)
            .set_access_token_claim("b", 2)
            .set_access_token_claim("a", 3);
        assert_eq!(
            changes.access_token_claims(),
            [
                ("a".to_owned(), Some(json!(3))),
                ("b".to_owned(), Some(json!(2)))
            ]
        );
    }

    #[test]
    fn null_and_remove_are_the_same_edit() {
        let mut changes = Changes::default();
        changes
            .set_id_token_claim("a", Value::Null)
            .remove_id_token_claim("b");
        assert!(changes.removes_id_token_claim("a"));
        assert!(changes.removes_id_token_claim("b"));
        assert_eq!(changes.id_token_claim("a"), None);
        assert!(!changes.removes_id_token_claim("c"));
    }

    #[test]
    fn a_removed_claim_can_be_set_again() {
        let mut changes = Changes::default();
        changes
            .remove_access_token_claim("a")
            .set_access_token_claim("a", "x");
        assert!(!changes.removes_access_token_claim("a"));
        assert_eq!(changes.access_token_claim("a"), Some(&json!("x")));
    }

    #[test]
    fn the_last_scope_edit_wins_and_duplicates_collapse() {
        let mut changes = Changes::default();
        changes
            .remove_scope("s")
            .add_scope("s")
            .add_scope("s")
            .remove_scope("t")
            .remove_scope("t");
        assert_eq!(changes.added_scopes(), ["s"]);
        assert_eq!(changes.removed_scopes(), ["t"]);
        assert!(!changes.is_empty());
    }

    #[test]
    fn access_and_id_token_claims_are_separate() {
        let mut changes = Changes::default();
        changes.set_access_token_claim("a", 1);
        assert_eq!(changes.id_token_claim("a"), None);
        assert!(changes.id_token_claims().is_empty());
    }

    #[test]
    fn denial_constructors_pick_their_codes() {
        let cases = [
            (Denial::access_denied("d"), "access_denied"),
            (Denial::invalid_scope("d"), "invalid_scope"),
            (Denial::invalid_request("d"), "invalid_request"),
            (Denial::unauthorized_client("d"), "unauthorized_client"),
            (Denial::invalid_target("d"), "invalid_target"),
        ];
        for (denial, code) in cases {
            assert_eq!(denial.code.as_str(), code);
            assert_eq!(denial.to_string(), format!("{code}: d"));
        }
    }
}
