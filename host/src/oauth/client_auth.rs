//! Client authentication at the token endpoint: `client_secret_basic` (RFC 6749
//! §2.3.1, credentials form-urlencoded before base64), `client_secret_post`,
//! `private_key_jwt` (RFC 7523, checked in [`super::client_assertion`]) and
//! `none` for public clients.
//!
//! Exactly one method per request (§2.3). Checking a secret always hashes and
//! compares in constant time, against a dummy hash when the client is unknown,
//! so an unknown client and a wrong secret look the same from outside.

use std::sync::Arc;

use base64::Engine as _;

use super::client_assertion::{self, JWT_BEARER, Spent};
use super::error::{ErrorCode, OAuthError};
use super::params::{self, Params};
use crate::config::{AuthMethod, Client, Config};
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
    /// A signed client assertion (`private_key_jwt`), if that is the method.
    pub assertion: Option<String>,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("id", &self.id)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("basic", &self.basic)
            .field("assertion", &self.assertion.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Extracts the client's credentials from the `Authorization` header values and
/// the body parameters.
pub fn credentials(
    params: &Params,
    authorization: &[&[u8]],
) -> Result<ClientCredentials, OAuthError> {
    let body_id = params.get("client_id");
    if params.get("client_assertion").is_some() || params.get("client_assertion_type").is_some() {
        return assertion_credentials(params, authorization, body_id);
    }
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
                assertion: None,
            });
        }
        _ => return Err(OAuthError::invalid_client(true)),
    }
    match body_id {
        Some(id) => Ok(ClientCredentials {
            id: id.to_owned(),
            secret: body_secret.map(str::to_owned),
            basic: false,
            assertion: None,
        }),
        None => Err(OAuthError::new(
            super::ErrorCode::InvalidClient,
            "client authentication is required (HTTP Basic or client_id and client_secret)",
        )),
    }
}

/// `client_assertion_type` and `client_assertion` (RFC 7521 §4.2): the
/// client is the assertion's `sub`, and `client_id`, if sent, must agree.
fn assertion_credentials(
    params: &Params,
    authorization: &[&[u8]],
    body_id: Option<&str>,
) -> Result<ClientCredentials, OAuthError> {
    match params.get("client_assertion_type") {
        Some(JWT_BEARER) => {}
        Some(other) => {
            return Err(OAuthError::invalid_request(format!(
                "client_assertion_type {} is not supported; use {JWT_BEARER}",
                params::echo(other)
            )));
        }
        None => {
            return Err(OAuthError::invalid_request(
                "client_assertion_type is required with client_assertion",
            ));
        }
    }
    let Some(assertion) = params.get("client_assertion").filter(|a| !a.is_empty()) else {
        return Err(OAuthError::invalid_request(
            "client_assertion is required with client_assertion_type",
        ));
    };
    if !authorization.is_empty() || params.get("client_secret").is_some() {
        return Err(OAuthError::invalid_request(
            "the client authenticated twice (a client assertion and a secret); use one method",
        ));
    }
    let payload = crate::token::jwk::unverified_payload(assertion)
        .ok_or_else(|| OAuthError::invalid_client(false))?;
    let sub = payload
        .get("sub")
        .and_then(serde_json::Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| OAuthError::invalid_client(false))?;
    if body_id.is_some_and(|id| id != sub) {
        return Err(OAuthError::invalid_client(false));
    }
    Ok(ClientCredentials {
        id: sub.to_owned(),
        secret: None,
        basic: false,
        assertion: Some(assertion.to_owned()),
    })
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

/// A client that authenticated, and the assertion it used, if it used one:
/// the caller must spend that in the store before trusting the client.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Who authenticated.
    pub client: Authenticated,
    /// The `private_key_jwt` assertion to mark as used.
    pub assertion: Option<Spent>,
}

/// Checks presented credentials against the configuration. `audiences`
/// are what a client assertion's `aud` may name: the issuer, the token
/// endpoint and the endpoint called.
pub fn authenticate(
    config: &Config,
    creds: &ClientCredentials,
    audiences: &[&str],
    now: u64,
) -> Result<Verified, OAuthError> {
    let client = config.clients.get(&creds.id);
    if let Some(assertion) = &creds.assertion {
        let Some((client, keys)) = client.and_then(|c| Some((c, c.keys.as_ref()?))) else {
            return Err(OAuthError::invalid_client(false));
        };
        let spent = client_assertion::check(client, keys, assertion, audiences, now)?;
        registered_for(client, AuthMethod::PrivateKeyJwt)?;
        return Ok(Verified {
            client: Authenticated::Confidential(client.clone()),
            assertion: Some(spent),
        });
    }
    let expected = client
        .and_then(|c| c.secret.as_ref())
        .unwrap_or(SecretHash::dummy());
    let presented = creds.secret.as_deref().unwrap_or("");
    // Always hash and compare, so unknown clients cost the same as known ones.
    let secret_ok = expected.verify(presented);
    let client = match client {
        Some(c) if c.secret.is_some() && creds.secret.is_some() && secret_ok => {
            registered_for(
                c,
                if creds.basic {
                    AuthMethod::ClientSecretBasic
                } else {
                    AuthMethod::ClientSecretPost
                },
            )?;
            Authenticated::Confidential(c.clone())
        }
        Some(c) if c.secret.is_some() => return Err(OAuthError::invalid_client(creds.basic)),
        // A confidential client without a secret signs assertions; its id
        // alone proves nothing.
        Some(c) if !c.app_type.is_confidential() && creds.secret.is_none() => {
            Authenticated::Public(c.clone())
        }
        _ => return Err(OAuthError::invalid_client(creds.basic)),
    };
    Ok(Verified {
        client,
        assertion: None,
    })
}

/// Refuses a client that authenticated with `used` when it is registered
/// for another `token_endpoint_auth_method`.
fn registered_for(client: &Client, used: AuthMethod) -> Result<(), OAuthError> {
    match client.auth_method {
        Some(method) if method != used => Err(OAuthError {
            basic_challenge: used == AuthMethod::ClientSecretBasic,
            ..OAuthError::new(
                ErrorCode::InvalidClient,
                format!(
                    "the client is registered to authenticate with {}, not {}",
                    method.as_str(),
                    used.as_str()
                ),
            )
        }),
        _ => Ok(()),
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
        let jwt_bearer = format!("client_assertion_type={}", form(JWT_BEARER));
        let e = creds(
            &format!("{jwt_bearer}&client_assertion={}", assertion("a")),
            &[&basic("a", "b")],
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest, "an assertion and Basic");
        let e = creds(
            &format!(
                "{jwt_bearer}&client_assertion={}&client_secret=s",
                assertion("a")
            ),
            &[],
        )
        .unwrap_err();
        assert_eq!(
            e.code,
            ErrorCode::InvalidRequest,
            "an assertion and a secret"
        );
    }

    fn form(s: &str) -> String {
        form_urlencoded::byte_serialize(s.as_bytes()).collect()
    }

    /// An unsigned assertion naming `sub`: enough for reading who claims
    /// to be the client, which is all `credentials` does.
    fn assertion(sub: &str) -> String {
        let b64 = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        format!(
            "{}.{}.sig",
            b64(serde_json::json!({"alg": "ES256"})),
            b64(serde_json::json!({"sub": sub}))
        )
    }

    #[test]
    fn an_assertion_names_its_client() {
        let jwt_bearer = format!("client_assertion_type={}", form(JWT_BEARER));
        let c = creds(
            &format!("{jwt_bearer}&client_assertion={}", assertion("acme")),
            &[],
        )
        .expect("ok");
        assert_eq!((c.id.as_str(), c.secret.is_none()), ("acme", true));
        assert!(c.assertion.is_some());
        assert!(!format!("{c:?}").contains(&assertion("acme")));
        let same = format!(
            "client_id=acme&{jwt_bearer}&client_assertion={}",
            assertion("acme")
        );
        assert_eq!(creds(&same, &[]).expect("ok").id, "acme");
        for (body, code) in [
            (
                format!(
                    "client_id=other&{jwt_bearer}&client_assertion={}",
                    assertion("acme")
                ),
                ErrorCode::InvalidClient,
            ),
            (
                format!("{jwt_bearer}&client_assertion=not-a-jwt"),
                ErrorCode::InvalidClient,
            ),
            (
                format!("{jwt_bearer}&client_assertion={}", assertion("")),
                ErrorCode::InvalidClient,
            ),
            (
                format!("{jwt_bearer}&client_assertion="),
                ErrorCode::InvalidRequest,
            ),
            (jwt_bearer.clone(), ErrorCode::InvalidRequest),
            (
                format!(
                    "client_assertion_type=saml&client_assertion={}",
                    assertion("acme")
                ),
                ErrorCode::InvalidRequest,
            ),
        ] {
            assert_eq!(creds(&body, &[]).unwrap_err().code, code, "{body}");
        }
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
