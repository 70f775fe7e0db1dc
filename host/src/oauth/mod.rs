//! Protocol logic with no HTTP types: parsing token requests into typed grants,
//! client authentication, scopes, and OAuth errors.
//!
//! The HTTP edge hands this module the body bytes and the `Authorization`
//! header values; it gets back a [`TokenRequest`] or an [`OAuthError`]. A
//! handler never looks at raw parameter strings twice.

pub mod authorize;
pub mod client_assertion;
pub mod client_auth;
pub mod error;
pub mod params;
pub mod pkce;
pub mod scope;

pub use client_auth::{ClientCredentials, authenticate};
pub use error::{ErrorCode, OAuthError};
pub use params::Params;

/// A token request, tagged by `grant_type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantRequest {
    /// RFC 6749 §4.4.
    ClientCredentials {
        /// The requested scopes (`None`: everything the client was granted).
        scope: Option<Vec<String>>,
        /// `audience` or `resource` (RFC 8707), if any.
        audience: Option<String>,
    },
    /// RFC 6749 §4.1.3.
    AuthorizationCode {
        /// `code`.
        code: String,
        /// `redirect_uri`.
        redirect_uri: Option<String>,
        /// `code_verifier` (RFC 7636).
        code_verifier: Option<String>,
    },
    /// RFC 6749 §6.
    RefreshToken {
        /// `refresh_token`.
        refresh_token: String,
        /// `scope`, to narrow.
        scope: Option<Vec<String>>,
    },
}

impl GrantRequest {
    /// The `grant_type` value.
    pub fn grant_type(&self) -> &'static str {
        match self {
            GrantRequest::ClientCredentials { .. } => "client_credentials",
            GrantRequest::AuthorizationCode { .. } => "authorization_code",
            GrantRequest::RefreshToken { .. } => "refresh_token",
        }
    }
}

/// A parsed token request: who the client claims to be, and what it asks for.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// The client's credentials as presented (not yet checked).
    pub client: ClientCredentials,
    /// The grant.
    pub grant: GrantRequest,
}

/// Grant types this issuer implements, for discovery.
pub const GRANT_TYPES_SUPPORTED: &[&str] =
    &["authorization_code", "refresh_token", "client_credentials"];

impl TokenRequest {
    /// Parses a token request from its form parameters and `Authorization`
    /// header values.
    pub fn parse(params: &Params, authorization: &[&[u8]]) -> Result<TokenRequest, OAuthError> {
        let client = client_auth::credentials(params, authorization)?;
        let grant = match params.get("grant_type") {
            None => return Err(OAuthError::invalid_request("grant_type is required")),
            Some("client_credentials") => GrantRequest::ClientCredentials {
                scope: params.get("scope").map(scope::parse).transpose()?,
                audience: audience(params)?,
            },
            Some("authorization_code") => GrantRequest::AuthorizationCode {
                code: params
                    .get("code")
                    .ok_or_else(|| OAuthError::invalid_request("code is required"))?
                    .to_owned(),
                redirect_uri: params.get("redirect_uri").map(str::to_owned),
                code_verifier: params.get("code_verifier").map(str::to_owned),
            },
            Some("refresh_token") => GrantRequest::RefreshToken {
                refresh_token: params
                    .get("refresh_token")
                    .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?
                    .to_owned(),
                scope: params.get("scope").map(scope::parse).transpose()?,
            },
            Some(other) => {
                return Err(OAuthError::new(
                    ErrorCode::UnsupportedGrantType,
                    format!(
                        "grant_type {} is not supported; supported: {}",
                        params::echo(other),
                        GRANT_TYPES_SUPPORTED.join(", ")
                    ),
                ));
            }
        };
        Ok(TokenRequest { client, grant })
    }
}

/// A request about a token the caller holds or was shown: introspection
/// (RFC 7662 §2.1) or revocation (RFC 7009 §2.1).
#[derive(Debug, Clone)]
pub struct TokenQuery {
    /// The caller's credentials as presented (not yet checked).
    pub client: ClientCredentials,
    /// `token`. `token_type_hint` is not kept: an access token is a JWT
    /// and a refresh token is not, so the form says which it is, and both
    /// RFCs let the server look past the hint.
    pub token: String,
}

impl TokenQuery {
    /// Parses an introspection or revocation request from its form
    /// parameters and `Authorization` header values.
    pub fn parse(params: &Params, authorization: &[&[u8]]) -> Result<TokenQuery, OAuthError> {
        let client = client_auth::credentials(params, authorization)?;
        let token = params
            .get("token")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| OAuthError::invalid_request("token is required"))?
            .to_owned();
        Ok(TokenQuery { client, token })
    }
}

/// `audience` (as Auth0 clients send it) and `resource` (RFC 8707) mean the
/// same; both may be sent only if they agree.
pub(crate) fn audience(params: &Params) -> Result<Option<String>, OAuthError> {
    let resource = params.get("resource");
    let audience = params.get("audience");
    if let Some(r) = resource {
        crate::config::check_api_identifier(r).map_err(|_| {
            OAuthError::invalid_target(
                "resource must be an absolute URI without a fragment (RFC 8707 §2)",
            )
        })?;
    }
    match (audience, resource) {
        (Some(a), Some(r)) if a != r => Err(OAuthError::invalid_target(
            "audience and resource name different APIs; send one",
        )),
        (a, r) => Ok(a.or(r).map(str::to_owned)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<TokenRequest, OAuthError> {
        TokenRequest::parse(&Params::parse(body.as_bytes())?, &[])
    }

    #[test]
    fn client_credentials_is_typed() {
        let r = parse("grant_type=client_credentials&client_id=a&client_secret=s&scope=read%20write&resource=https%3A%2F%2Fapi.example.com").expect("ok");
        assert_eq!(
            r.grant,
            GrantRequest::ClientCredentials {
                scope: Some(vec!["read".into(), "write".into()]),
                audience: Some("https://api.example.com".into()),
            }
        );
    }

    #[test]
    fn grant_type_errors() {
        assert_eq!(
            parse("client_id=a&client_secret=s").unwrap_err().code,
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            parse("grant_type=password&client_id=a&client_secret=s")
                .unwrap_err()
                .code,
            ErrorCode::UnsupportedGrantType
        );
    }

    #[test]
    fn audience_and_resource() {
        let both = "grant_type=client_credentials&client_id=a&client_secret=s&audience=https://a&resource=https://b";
        assert_eq!(parse(both).unwrap_err().code, ErrorCode::InvalidTarget);
        let same = "grant_type=client_credentials&client_id=a&client_secret=s&audience=https://a&resource=https://a";
        assert!(parse(same).is_ok());
        for bad in ["relative/path", "https://a#frag"] {
            let body =
                format!("grant_type=client_credentials&client_id=a&client_secret=s&resource={bad}");
            assert_eq!(
                parse(&body).unwrap_err().code,
                ErrorCode::InvalidTarget,
                "{bad}"
            );
        }
    }
}
