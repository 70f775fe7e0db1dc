//! OAuth errors and token responses on the wire (RFC 6749 §5.1, §5.2).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::oauth::{ErrorCode, OAuthError};

/// JSON with `Cache-Control: no-store` (RFC 6749 §5.1).
pub fn no_store_json(status: StatusCode, body: Vec<u8>) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// The HTTP status of an error: 401 for a failed Basic authentication, 500 and
/// 503 for server trouble, 400 otherwise.
pub fn status(e: &OAuthError) -> StatusCode {
    match e.code {
        ErrorCode::InvalidClient if e.basic_challenge => StatusCode::UNAUTHORIZED,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        error_response(&self, status(&self))
    }
}

/// An error body with a chosen status (413, 405 …).
pub fn error_response(e: &OAuthError, status: StatusCode) -> Response {
    // RFC 6749 §5.2 has no `temporarily_unavailable` for the token endpoint
    // (only §4.1.2.1 for authorization responses), so a client would not know
    // it: the token endpoint says `server_error`, and the 503 with
    // `Retry-After` says that it is worth a retry.
    let error = match e.code {
        ErrorCode::TemporarilyUnavailable => ErrorCode::ServerError.as_str(),
        code => code.as_str(),
    };
    let body = serde_json::json!({
        "error": error,
        "error_description": e.safe_description(),
    });
    let mut r = no_store_json(status, body.to_string().into_bytes());
    // For the request log and metrics (`super::observe`).
    r.extensions_mut().insert(e.code);
    if e.code == ErrorCode::TemporarilyUnavailable {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    if e.basic_challenge {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"tessera\", charset=\"UTF-8\""),
        );
    }
    r
}

/// Any method but POST at the token, introspection or revocation endpoint.
pub async fn method_not_allowed() -> Response {
    let e = OAuthError::invalid_request("this endpoint accepts only POST (RFC 6749 §3.2)");
    let mut r = error_response(&e, StatusCode::METHOD_NOT_ALLOWED);
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    r
}

/// A request that was not read and answered within
/// `[server.limits] request_timeout_ms`: 408, and the connection closes.
pub fn request_timeout(limit: std::time::Duration) -> Response {
    let e = OAuthError::invalid_request(format!(
        "the request was not complete within {} ms",
        limit.as_millis()
    ));
    let mut r = error_response(&e, StatusCode::REQUEST_TIMEOUT);
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// An HTTP/1.1 request without a `Host` header, or any request with more
/// than one: 400 (RFC 9112 §3.2), and the connection closes.
pub fn bad_host(count: usize) -> Response {
    let e = OAuthError::invalid_request(if count == 0 {
        "the request has no Host header (RFC 9112 §3.2)"
    } else {
        "the request has more than one Host header (RFC 9112 §3.2)"
    });
    let mut r = error_response(&e, StatusCode::BAD_REQUEST);
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// Request headers past `[server.limits] max_header_bytes`: 431, and the
/// connection closes.
pub fn headers_too_large(limit: usize) -> Response {
    let e =
        OAuthError::invalid_request(format!("the request headers are larger than {limit} bytes"));
    let mut r = error_response(&e, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}
