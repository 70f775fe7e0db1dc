//! OAuth errors, free of HTTP: each variant is one RFC 6749 §5.2 (or RFC 8707)
//! error code. The HTTP edge maps them to a status, headers and a JSON body in
//! one place ([`crate::http`]).

use std::borrow::Cow;
use std::fmt;

/// An OAuth error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// RFC 6749 §5.2: malformed or unsupported request.
    InvalidRequest,
    /// RFC 6749 §5.2: client authentication failed.
    InvalidClient,
    /// RFC 6749 §5.2: the grant (code, refresh token) is invalid.
    InvalidGrant,
    /// RFC 6749 §5.2: this client may not use this grant type.
    UnauthorizedClient,
    /// RFC 6749 §5.2: the grant type is not supported.
    UnsupportedGrantType,
    /// RFC 6749 §5.2: the scope is invalid or exceeds what was granted.
    InvalidScope,
    /// RFC 8707 §2: the resource (audience) is invalid or unknown.
    InvalidTarget,
    /// RFC 6749 §4.1.2.1: the request was refused by policy.
    AccessDenied,
    /// RFC 6749 §4.1.2.1: the server failed.
    ServerError,
    /// RFC 6749 §4.1.2.1: this response type is not supported.
    UnsupportedResponseType,
    /// OIDC Core §3.1.2.6: `prompt=none` but the user is not signed in.
    LoginRequired,
    /// OIDC Core §3.1.2.6: `prompt=none` but the user has not consented.
    ConsentRequired,
    /// OIDC Core §3.1.2.6: request objects are not supported.
    RequestNotSupported,
    /// RFC 6749 §4.1.2.1: the server is overloaded or a dependency is down.
    TemporarilyUnavailable,
}

impl ErrorCode {
    /// Every code, in declaration order.
    pub const ALL: [ErrorCode; 14] = [
        ErrorCode::InvalidRequest,
        ErrorCode::InvalidClient,
        ErrorCode::InvalidGrant,
        ErrorCode::UnauthorizedClient,
        ErrorCode::UnsupportedGrantType,
        ErrorCode::InvalidScope,
        ErrorCode::InvalidTarget,
        ErrorCode::AccessDenied,
        ErrorCode::ServerError,
        ErrorCode::UnsupportedResponseType,
        ErrorCode::LoginRequired,
        ErrorCode::ConsentRequired,
        ErrorCode::RequestNotSupported,
        ErrorCode::TemporarilyUnavailable,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::ServerError => "server_error",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::ConsentRequired => "consent_required",
            ErrorCode::RequestNotSupported => "request_not_supported",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }
}

/// An OAuth error with a description for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// The error code.
    pub code: ErrorCode,
    /// `error_description`: safe to show the client (no secrets).
    pub description: Cow<'static, str>,
    /// Client authentication failed through the Basic scheme (RFC 6749 §5.2:
    /// 401 with `WWW-Authenticate`).
    pub basic_challenge: bool,
}

impl OAuthError {
    /// An error with a description.
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        OAuthError {
            code,
            description: description.into(),
            basic_challenge: false,
        }
    }

    /// `invalid_request`.
    pub fn invalid_request(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, d)
    }

    /// `invalid_client`; `basic` when the client used HTTP Basic.
    pub fn invalid_client(basic: bool) -> Self {
        OAuthError {
            code: ErrorCode::InvalidClient,
            description: Cow::Borrowed("client authentication failed"),
            basic_challenge: basic,
        }
    }

    /// `invalid_scope`.
    pub fn invalid_scope(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidScope, d)
    }

    /// `invalid_target`.
    pub fn invalid_target(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidTarget, d)
    }

    /// `access_denied`.
    pub fn access_denied(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::AccessDenied, d)
    }

    /// `unauthorized_client`.
    pub fn unauthorized_client(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::UnauthorizedClient, d)
    }

    /// `server_error`.
    pub fn server_error(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::ServerError, d)
    }

    /// The description with every character RFC 6749 §5.2 forbids in
    /// `error_description` (outside %x20-21 / %x23-5B / %x5D-7E) replaced by `?`.
    pub fn safe_description(&self) -> String {
        self.description
            .chars()
            .map(|c| match c {
                '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e' => c,
                '"' | '\\' => '\'',
                _ => '?',
            })
            .collect()
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.description)
    }
}

impl std::error::Error for OAuthError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn description_is_restricted_to_the_rfc_charset() {
        let e = OAuthError::invalid_request("client \"a\\b\"\r\n\t\u{202e}é");
        let d = e.safe_description();
        assert!(
            d.bytes().all(|b| b == 0x20
                || b == 0x21
                || (0x23..=0x5b).contains(&b)
                || (0x5d..=0x7e).contains(&b)),
            "{d}"
        );
        assert_eq!(d, "client 'a'b'?????");
    }
}
