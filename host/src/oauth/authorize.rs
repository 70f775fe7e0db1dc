//! Authorization requests (RFC 6749 §4.1.1, OpenID Connect Core §3.1.2.1):
//! validating them, and the two ways they fail.
//!
//! Until the client and its redirect URI are trusted, an error can only be
//! shown on an error page (RFC 6749 §4.1.2.1: never redirect to an unverified
//! URI). After that, errors go back to the client on its redirect URI, with
//! `state` and `iss` (RFC 9207).

use std::sync::Arc;

use super::error::{ErrorCode, OAuthError};
use super::params::Params;
use super::{pkce, scope};
use crate::config::{AppType, Client, Config};

/// The OpenID Connect scopes; every other scope belongs to an API.
pub const OIDC_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

/// A validated authorization request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuthorizeRequest {
    /// `client_id`.
    pub client_id: String,
    /// `redirect_uri`, exactly as sent (and registered).
    pub redirect_uri: String,
    /// `state`, echoed back.
    pub state: Option<String>,
    /// `nonce`, put into the ID token.
    pub nonce: Option<String>,
    /// Requested OpenID Connect scopes.
    pub oidc_scopes: Vec<String>,
    /// Requested API scopes.
    pub api_scopes: Vec<String>,
    /// `audience` / `resource`.
    pub audience: Option<String>,
    /// The S256 `code_challenge`.
    pub code_challenge: String,
    /// `prompt=login`: sign in again even with a session.
    pub prompt_login: bool,
    /// `prompt=none`: never show the login page.
    pub prompt_none: bool,
    /// `prompt=consent`: ask for consent even when it was given before.
    #[serde(default)]
    pub prompt_consent: bool,
}

/// Why an authorization request failed.
#[derive(Debug, Clone)]
pub enum AuthorizeError {
    /// The client or redirect URI cannot be trusted: show an error page.
    Page(String),
    /// Send the error to the client's redirect URI.
    Redirect {
        /// Where to.
        redirect_uri: String,
        /// The request's `state`.
        state: Option<String>,
        /// The error.
        error: OAuthError,
    },
}

/// The longest `state` and `nonce` accepted, in bytes. A client needs a few
/// dozen; the limit keeps what an anonymous caller can park in the store small.
pub const MAX_STATE_BYTES: usize = 1024;
/// The longest value of any other authorization request parameter, in bytes.
pub const MAX_PARAM_BYTES: usize = 2048;
/// The longest authorization request (its query string), in bytes.
pub const MAX_QUERY_BYTES: usize = 8 * 1024;

impl AuthorizeRequest {
    /// Validates an authorization request against the configuration.
    pub fn parse(
        config: &Config,
        params: &Params,
    ) -> Result<(Arc<Client>, AuthorizeRequest), AuthorizeError> {
        let client_id = params
            .get("client_id")
            .ok_or_else(|| AuthorizeError::Page("The request has no client_id.".into()))?;
        let client = config.clients.get(client_id).cloned().ok_or_else(|| {
            AuthorizeError::Page("The application is not known to this issuer.".into())
        })?;
        let redirect_uri = params
            .get("redirect_uri")
            .ok_or_else(|| AuthorizeError::Page("The request has no redirect_uri.".into()))?;
        if !redirect_uri_matches(&client, redirect_uri) {
            return Err(AuthorizeError::Page(
                "The redirect_uri is not registered for this application.".into(),
            ));
        }
        // A state too long to keep is too long to send back: a page.
        let state = params.get("state");
        if state.is_some_and(|s| s.len() > MAX_STATE_BYTES) {
            return Err(AuthorizeError::Page(format!(
                "The request's state is longer than {MAX_STATE_BYTES} bytes."
            )));
        }
        let state = state.map(str::to_owned);
        let fail = |error: OAuthError| AuthorizeError::Redirect {
            redirect_uri: redirect_uri.to_owned(),
            state: state.clone(),
            error,
        };
        for (name, value) in params.iter() {
            let limit = if name == "nonce" {
                MAX_STATE_BYTES
            } else {
                MAX_PARAM_BYTES
            };
            if value.len() > limit {
                return Err(fail(OAuthError::invalid_request(format!(
                    "{} is longer than {limit} bytes",
                    super::params::echo(name)
                ))));
            }
        }

        match params.get("response_type") {
            Some("code") => {}
            None => {
                return Err(fail(OAuthError::invalid_request(
                    "response_type is required",
                )));
            }
            Some(_) => {
                return Err(fail(OAuthError::new(
                    ErrorCode::UnsupportedResponseType,
                    "only response_type=code is supported",
                )));
            }
        }
        if params.get("response_mode").is_some_and(|m| m != "query") {
            return Err(fail(OAuthError::invalid_request(
                "only response_mode=query is supported",
            )));
        }
        if params.get("request").is_some() || params.get("request_uri").is_some() {
            return Err(fail(OAuthError::new(
                ErrorCode::RequestNotSupported,
                "request objects are not supported",
            )));
        }
        let code_challenge = pkce::check_challenge(
            params.get("code_challenge"),
            params.get("code_challenge_method"),
        )
        .map_err(fail)?;
        let scopes = params
            .get("scope")
            .map(scope::parse)
            .transpose()
            .map_err(fail)?
            .unwrap_or_default();
        let (oidc_scopes, api_scopes): (Vec<String>, Vec<String>) = scopes
            .into_iter()
            .partition(|s| OIDC_SCOPES.contains(&s.as_str()));
        let audience = super::audience(params).map_err(fail)?;
        let prompts: Vec<&str> = params
            .get("prompt")
            .map(|p| p.split(' ').collect())
            .unwrap_or_default();
        let prompt_none = prompts.contains(&"none");
        if prompt_none && prompts.len() > 1 {
            return Err(fail(OAuthError::invalid_request(
                "prompt=none cannot be combined with other prompts",
            )));
        }
        Ok((
            client,
            AuthorizeRequest {
                client_id: client_id.to_owned(),
                redirect_uri: redirect_uri.to_owned(),
                state,
                nonce: params.get("nonce").map(str::to_owned),
                oidc_scopes,
                api_scopes,
                audience,
                code_challenge,
                prompt_login: prompts.contains(&"login"),
                prompt_none,
                prompt_consent: prompts.contains(&"consent"),
            },
        ))
    }

    /// Every requested scope, OpenID Connect ones first.
    pub fn scopes(&self) -> Vec<String> {
        self.oidc_scopes
            .iter()
            .chain(&self.api_scopes)
            .cloned()
            .collect()
    }
}

/// Exact string match against the registered URIs; for native applications a
/// loopback IP redirect may use any port (RFC 8252 §7.3).
pub fn redirect_uri_matches(client: &Client, uri: &str) -> bool {
    if client.redirect_uris.iter().any(|r| r == uri) {
        return true;
    }
    if client.app_type != AppType::Native {
        return false;
    }
    let Ok(asked) = url::Url::parse(uri) else {
        return false;
    };
    let loopback =
        |u: &url::Url| u.scheme() == "http" && matches!(u.host_str(), Some("127.0.0.1" | "[::1]"));
    loopback(&asked)
        && client.redirect_uris.iter().any(|r| {
            url::Url::parse(r).is_ok_and(|reg| {
                loopback(&reg)
                    && reg.host_str() == asked.host_str()
                    && reg.path() == asked.path()
                    && reg.query() == asked.query()
                    && asked.fragment().is_none()
            })
        })
}

/// The client's redirect URI with `params` appended to its query.
pub fn redirect_with(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(mut u) => {
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in params {
                    q.append_pair(k, v);
                }
            }
            u.into()
        }
        Err(_) => redirect_uri.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn config() -> Config {
        let text = r#"
[server]
issuer = "http://127.0.0.1:8080"
[[apis]]
identifier = "https://orders.example.com"
scopes = ["read:orders"]
[[clients]]
id = "spa"
app_type = "spa"
redirect_uris = ["https://app.example.com/cb"]
[[clients]]
id = "cli"
app_type = "native"
redirect_uris = ["http://127.0.0.1/callback"]
"#;
        Config::parse(Path::new("/tmp/t.toml"), text, &|_| None).expect("config")
    }

    fn parse(query: &str) -> Result<AuthorizeRequest, AuthorizeError> {
        let params = Params::parse(query.as_bytes()).expect("params");
        AuthorizeRequest::parse(&config(), &params).map(|(_, r)| r)
    }

    fn ok_query(extra: &str) -> String {
        format!(
            "response_type=code&client_id=spa&redirect_uri=https://app.example.com/cb&code_challenge={CHALLENGE}&code_challenge_method=S256&state=xyz{extra}"
        )
    }

    #[test]
    fn a_good_request_parses() {
        let r = parse(&ok_query(
            "&scope=openid read:orders&nonce=n&audience=https://orders.example.com",
        ))
        .expect("ok");
        assert_eq!(r.oidc_scopes, ["openid"]);
        assert_eq!(r.api_scopes, ["read:orders"]);
        assert_eq!(r.state.as_deref(), Some("xyz"));
        assert_eq!(r.audience.as_deref(), Some("https://orders.example.com"));
    }

    #[test]
    fn long_values_are_refused_before_anything_is_kept() {
        // A state too long to send back: a page, no redirect.
        let long_state = ok_query("").replace("state=xyz", &format!("state={}", "s".repeat(1025)));
        assert!(matches!(parse(&long_state), Err(AuthorizeError::Page(m)) if m.contains("state")));
        let fits = ok_query("").replace("state=xyz", &format!("state={}", "s".repeat(1024)));
        assert!(parse(&fits).is_ok());
        // Anything else too long: invalid_request back to the client, with
        // its short state and the parameter's name.
        for extra in [
            format!("&nonce={}", "n".repeat(1025)),
            format!("&login_hint={}", "h".repeat(2049)),
        ] {
            match parse(&ok_query(&extra)) {
                Err(AuthorizeError::Redirect { error, state, .. }) => {
                    assert_eq!(error.code, ErrorCode::InvalidRequest);
                    assert_eq!(state.as_deref(), Some("xyz"));
                    assert!(
                        error.description.contains("longer than"),
                        "{}",
                        error.description
                    );
                }
                other => panic!("{extra:.20}: {:?}", other.is_ok()),
            }
        }
    }

    #[test]
    fn untrusted_redirects_get_an_error_page() {
        for uri in [
            "https://app.example.com/cb/",
            "https://APP.example.com/cb",
            "https://app.example.com/cb?x=1",
            "https://app.example.com/cb#f",
            "https://app.example.com/cb/%2e%2e/cb",
            "https://evil.example.com/cb",
        ] {
            let q = ok_query("").replace("https://app.example.com/cb", uri);
            assert!(matches!(parse(&q), Err(AuthorizeError::Page(_))), "{uri}");
        }
        assert!(matches!(
            parse("response_type=code&client_id=nobody"),
            Err(AuthorizeError::Page(_))
        ));
    }

    #[test]
    fn native_loopback_redirects_may_use_any_port() {
        let q = ok_query("")
            .replace("client_id=spa", "client_id=cli")
            .replace(
                "https://app.example.com/cb",
                "http://127.0.0.1:53117/callback",
            );
        assert!(parse(&q).is_ok());
        let q = ok_query("")
            .replace("client_id=spa", "client_id=cli")
            .replace("https://app.example.com/cb", "http://127.0.0.1:53117/other");
        assert!(matches!(parse(&q), Err(AuthorizeError::Page(_))));
    }

    fn redirected_code(q: &str) -> ErrorCode {
        match parse(q) {
            Err(AuthorizeError::Redirect { error, state, .. }) => {
                assert_eq!(state.as_deref(), Some("xyz"));
                error.code
            }
            other => panic!("expected a redirect error, got {other:?}"),
        }
    }

    #[test]
    fn protocol_errors_go_back_to_the_client() {
        assert_eq!(
            redirected_code(&ok_query("").replace("response_type=code", "response_type=token")),
            ErrorCode::UnsupportedResponseType
        );
        assert_eq!(
            redirected_code(&ok_query("").replace(&format!("code_challenge={CHALLENGE}&"), "")),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            redirected_code(&ok_query("").replace("S256", "plain")),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            redirected_code(&ok_query("").replace("&code_challenge_method=S256", "")),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            redirected_code(&ok_query("&resource=relative")),
            ErrorCode::InvalidTarget
        );
        assert_eq!(
            redirected_code(&ok_query("&scope=a\"b")),
            ErrorCode::InvalidScope
        );
    }

    #[test]
    fn redirect_with_keeps_the_registered_query() {
        let u = redirect_with(
            "https://app.example.com/cb?tenant=1",
            &[("code", "a b"), ("iss", "http://x")],
        );
        assert_eq!(
            u,
            "https://app.example.com/cb?tenant=1&code=a+b&iss=http%3A%2F%2Fx"
        );
    }
}
