//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): an
//! application sends the browser to `/oidc/logout`, the login session ends in
//! the store, and the browser goes back to a URI the application registered.
//!
//! The request is checked before anything ends (§2, §3): an `id_token_hint`
//! must be an ID token this issuer signed (expired ones too: it names a past
//! sign-in); `client_id`, when both are given, must be the hint's audience;
//! a `post_logout_redirect_uri` must match one of the client's
//! `post_logout_redirect_uris` exactly, or there is no redirect at all.
//!
//! A request whose hint names the signed-in user ends the session at once.
//! Any other request that finds a session (no hint, or a hint for someone
//! else) is asked about first (§2: the OP should confirm with the user), with
//! a confirmation only this issuer can make for this session, so a link or
//! image on another site cannot sign the user out.
//!
//! No HTTP here: `http::logout` reads the cookie and the parameters and turns
//! these results into pages, cookies and redirects.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::Issuer;
use crate::config::{Client, Config};
use crate::oauth::authorize::{MAX_STATE_BYTES, redirect_with};
use crate::oauth::{OAuthError, Params};
use crate::store::secret_hash;
use crate::token::{KeySet, verify};

/// A checked logout request.
#[derive(Debug)]
pub struct LogoutRequest {
    /// The application the request is from (`client_id`, else the hint's
    /// audience), when it names one this issuer knows.
    pub client: Option<Arc<Client>>,
    /// The user a valid `id_token_hint` names.
    pub hinted_user: Option<String>,
    /// The registered `post_logout_redirect_uri` to return to.
    pub redirect_uri: Option<String>,
    /// The `state` to give back with the redirect.
    pub state: Option<String>,
}

impl LogoutRequest {
    /// Checks the request's parameters; the error is the message for the
    /// user, as no redirect is safe before the request is checked.
    pub fn parse(config: &Config, keys: &KeySet, params: &Params) -> Result<Self, String> {
        let state = params.get("state").map(str::to_owned);
        if state.as_ref().is_some_and(|s| s.len() > MAX_STATE_BYTES) {
            return Err(format!(
                "The request's state is longer than {MAX_STATE_BYTES} bytes."
            ));
        }
        let mut audiences = Vec::new();
        let mut hinted_user = None;
        if let Some(hint) = params.get("id_token_hint") {
            let claims = verify::id_token_hint(keys, &config.server.issuer, hint)
                .map_err(|_| "The id_token_hint is not an ID token this issuer signed.")?;
            audiences = match &claims["aud"] {
                Value::String(a) => vec![a.clone()],
                Value::Array(list) => list
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
                _ => Vec::new(),
            };
            hinted_user = claims["sub"].as_str().map(str::to_owned);
        }
        let client_id = match params.get("client_id") {
            Some(id) if hinted_user.is_some() && !audiences.iter().any(|a| a == id) => {
                return Err(
                    "The client_id is not the audience of the id_token_hint; send the ID token \
                     this application received."
                        .into(),
                );
            }
            Some(id) => {
                if !config.clients.contains_key(id) {
                    return Err("The application is not known to this issuer.".into());
                }
                Some(id.to_owned())
            }
            None if audiences.len() == 1 => audiences.pop(),
            None => None,
        };
        let client = client_id
            .as_deref()
            .and_then(|id| config.clients.get(id).cloned());
        let redirect_uri = match params.get("post_logout_redirect_uri") {
            None => None,
            Some(uri) => {
                let Some(client) = &client else {
                    return Err("A post_logout_redirect_uri needs a client_id or an \
                                id_token_hint to say which application registered it."
                        .into());
                };
                if !client.post_logout_redirect_uris.iter().any(|u| u == uri) {
                    return Err(format!(
                        "The post_logout_redirect_uri is not registered for {}; add it to the \
                         client's post_logout_redirect_uris.",
                        client.name
                    ));
                }
                Some(uri.to_owned())
            }
        };
        Ok(LogoutRequest {
            client,
            hinted_user,
            redirect_uri,
            state,
        })
    }

    /// Where the browser goes once signed out: the registered URI with
    /// `state` added, or nowhere (the signed-out page).
    pub fn location(&self) -> Option<String> {
        let uri = self.redirect_uri.as_deref()?;
        Some(match &self.state {
            Some(state) => redirect_with(uri, &[("state", state)]),
            None => uri.to_owned(),
        })
    }

    /// The parameters that carry this request through the confirmation form.
    pub fn form_fields(&self) -> Vec<(&'static str, &str)> {
        let mut fields = Vec::new();
        if let Some(c) = &self.client {
            fields.push(("client_id", c.id.as_str()));
        }
        if let Some(u) = &self.redirect_uri {
            fields.push(("post_logout_redirect_uri", u.as_str()));
        }
        if let Some(s) = &self.state {
            fields.push(("state", s.as_str()));
        }
        fields
    }
}

/// What became of the browser's session.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It has ended, or there was none.
    SignedOut,
    /// The user has to confirm: the form carries this confirmation.
    Confirm(String),
}

/// Ends the session with cookie value `session` if the request shows it is
/// the user's wish: its hint names the session's user, or `confirmation` is
/// the one [`Outcome::Confirm`] gave for this session.
pub async fn end(
    issuer: &Issuer,
    req: &LogoutRequest,
    session: Option<&str>,
    confirmation: Option<&str>,
) -> Result<Outcome, OAuthError> {
    let Some(sid) = session else {
        return Ok(Outcome::SignedOut);
    };
    let store = &issuer.store;
    let id_hash = secret_hash(sid);
    let Some(found) = store
        .session(&id_hash, issuer.clock.now())
        .await
        .map_err(super::store_error)?
    else {
        return Ok(Outcome::SignedOut);
    };
    let key = issuer.browser_key().await.map_err(super::store_error)?;
    let confirmed = confirmation.is_some_and(|c| genuine_confirmation(key, sid, c));
    if req.hinted_user.as_deref() != Some(found.user_id.as_str()) && !confirmed {
        return Ok(Outcome::Confirm(new_confirmation(key, sid)));
    }
    store
        .delete_session(&id_hash)
        .await
        .map_err(super::store_error)?;
    Ok(Outcome::SignedOut)
}

/// The confirmation for ending the session `sid`: an HMAC only the issuer
/// can make, under the browser-binding key with its own label, so neither
/// value can stand for the other.
fn new_confirmation(key: &ring::hmac::Key, sid: &str) -> String {
    let mac = ring::hmac::sign(key, format!("logout\0{sid}").as_bytes());
    URL_SAFE_NO_PAD.encode(mac.as_ref())
}

fn genuine_confirmation(key: &ring::hmac::Key, sid: &str, value: &str) -> bool {
    URL_SAFE_NO_PAD
        .decode(value)
        .is_ok_and(|mac| ring::hmac::verify(key, format!("logout\0{sid}").as_bytes(), &mac).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_confirmation_holds_for_its_session_only() {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"k");
        let c = new_confirmation(&key, "s1");
        assert!(genuine_confirmation(&key, "s1", &c));
        assert!(!genuine_confirmation(&key, "s2", &c));
        assert!(!genuine_confirmation(&key, "s1", "x"));
        let other = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"j");
        assert!(!genuine_confirmation(&other, "s1", &c));
    }
}
