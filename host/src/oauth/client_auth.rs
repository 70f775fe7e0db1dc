//! Client authentication at the token endpoint: `client_secret_basic` (RFC 6749
//! §2.3.1, credentials form-urlencoded before base64) and `client_secret_post`.
//!
//! Exactly one method per request (§2.3). Checking a secret always hashes and
//! compares in constant time, against a dummy hash when the client is unknown,
//! so an unknown client and a wrong secret look the same from outside.

use std::sync::Arc;

use base64::Engine as _;

use super::error::OAuthError;
use super::params::Params;
use crate::config::{Client, Config};
use crate::secret::SecretHash;

/// Longest `Authorization` header value accepted, in bytes.
const MAX_AUTHORIZATION_LEN: usize = 1024;

/// Credentials as presented; nothing checked yet.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    /// The claimed client id (may be anything the caller sent).
    pub id: String,
    /// The presented secret, if any.
    pub secret: Option<String>,
    /// Whether they came in an HTTP Basic `Authorization` header.
    pub basic: bool,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("id", &self.id)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("basic", &self.basic)
            .finish()
    }
}

/// Extracts the client's credentials from the `Authorization` header values and
/// the body parameters.
pub fn credentials(
    params: &Params,
    authorization: &[&[u8]],
) -> Result<ClientCredentials, OAuthError> {
    if params.get("client_assertion").is_some() || params.get("client_assertion_type").is_some() {
        return Err(OAuthError::invalid_request(
            "client assertions are not supported; use client_secret_basic or client_secret_post",
        ));
    }
    let body_id = params.get("client_id");
    let body_secret = params.get("client_secret");
    match authorization {
        [] => {}
        [value] => {
            let (id, secret) =
                parse_basic(value).ok_or_else(|| OAuthError::invalid_client(true))?;
            if body_secret.is_some() {
                return Err(OAuthError::invalid_request(
                    "the client authenticated twice (Authorization header and client_secret); use one method",
                ));
            }
            if body_id.is_some_and(|b| b != id) {
                return Err(OAuthError::invalid_request(
                    "client_id in the body differs from the Authorization header",
                ));
            }
            return Ok(ClientCredentials {
                id,
                secret: Some(secret),
                basic: true,
            });
        }
        _ => return Err(OAuthError::invalid_client(true)),
    }
    match body_id {
        Some(id) => Ok(ClientCredentials {
            id: id.to_owned(),
            secret: body_secret.map(str::to_owned),
            basic: false,
        }),
        None => Err(OAuthError::new(
            super::ErrorCode::InvalidClient,
            "client authentication is required (HTTP Basic or client_id and client_secret)",
        )),
    }
}

/// Decodes `Basic base64(urlencode(id) ":" urlencode(secret))`.
fn parse_basic(value: &[u8]) -> Option<(String, String)> {
    if value.len() > MAX_AUTHORIZATION_LEN {
        return None;
    }
    let text = std::str::from_utf8(value).ok()?;
    let (scheme, b64) = text.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let id = form_decode(id);
    let secret = form_decode(secret);
    (!id.is_empty()).then_some((id, secret))
}

/// `application/x-www-form-urlencoded` decoding of one component.
fn form_decode(s: &str) -> String {
    form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Who authenticated.
#[derive(Debug, Clone)]
pub enum Authenticated {
    /// A confidential client that proved its secret.
    Confidential(Arc<Client>),
    /// A public client identified by its id only (it holds no secret).
    Public(Arc<Client>),
}

impl Authenticated {
    /// The client, however it authenticated.
    pub fn client(&self) -> &Arc<Client> {
        match self {
            Authenticated::Confidential(c) | Authenticated::Public(c) => c,
        }
    }
}

/// Checks presented credentials against the configuration.
pub fn authenticate(
    config: &Config,
    creds: &ClientCredentials,
) -> Result<Authenticated, OAuthError> {
    let client = config.clients.get(&creds.id);
    let expected = client
        .and_then(|c| c.secret.as_ref())
        .unwrap_or(SecretHash::dummy());
    let presented = creds.secret.as_deref().unwrap_or("");
    // Always hash and compare, so unknown clients cost the same as known ones.
    let secret_ok = expected.verify(presented);
    match client {
        Some(c) if c.secret.is_some() => {
            if creds.secret.is_some() && secret_ok {
                Ok(Authenticated::Confidential(c.clone()))
            } else {
                Err(OAuthError::invalid_client(creds.basic))
            }
        }
        Some(c) if creds.secret.is_none() => Ok(Authenticated::Public(c.clone())),
        _ => Err(OAuthError::invalid_client(creds.basic)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::ErrorCode;

    fn basic(id: &str, secret: &str) -> String {
        let raw = format!("{id}:{secret}");
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    fn creds(body: &str, auth: &[&str]) -> Result<ClientCredentials, OAuthError> {
        let params = Params::parse(body.as_bytes())?;
        let auth: Vec<&[u8]> = auth.iter().map(|a| a.as_bytes()).collect();
        credentials(&params, &auth)
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let c = creds("", &[&basic("a%3Ab", "x+y%2Bz")]).expect("ok");
        assert_eq!(c.id, "a:b");
        assert_eq!(c.secret.as_deref(), Some("x y+z"));
        assert!(c.basic);
    }

    #[test]
    fn malformed_basic_is_invalid_client_with_challenge() {
        let no_colon = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("nocolon")
        );
        for bad in [
            "Basic",
            "Basic !!!",
            &no_colon,
            "Bearer abc",
            &format!("Basic {}", "A".repeat(2000)),
        ] {
            let e = creds("", &[bad]).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidClient, "{bad}");
            assert!(e.basic_challenge, "{bad}");
        }
        let two = basic("a", "b");
        assert_eq!(
            creds("", &[&two, &two]).unwrap_err().code,
            ErrorCode::InvalidClient
        );
    }

    #[test]
    fn two_methods_are_refused() {
        let e = creds("client_secret=s", &[&basic("a", "b")]).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        let e = creds("client_id=other", &[&basic("a", "b")]).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        assert!(creds("client_id=a", &[&basic("a", "b")]).is_ok());
        let e = creds("client_id=a&client_assertion=x", &[]).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn post_credentials() {
        let c = creds("client_id=a&client_secret=s", &[]).expect("ok");
        assert_eq!(
            (c.id.as_str(), c.secret.as_deref(), c.basic),
            ("a", Some("s"), false)
        );
        assert_eq!(creds("", &[]).unwrap_err().code, ErrorCode::InvalidClient);
        assert!(!format!("{c:?}").contains("\"s\""));
    }
}
