//! `GET` and `POST /oidc/logout`: the HTTP of RP-initiated logout. The rules
//! are [`crate::grants::logout`]; this module reads the parameters and the
//! session cookie, and answers with a redirect, the confirmation form or a
//! page.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;

use super::authorize::{SESSION_COOKIE, cookie, redirect, set_cookie};
use super::pages::{self, LogoutForm};
use crate::Issuer;
use crate::grants::logout::{self, LogoutRequest, Outcome};
use crate::oauth::{ErrorCode, Params};

/// The longest query or form a logout request may have: room for an ID
/// token with the claims plugins add.
const MAX_LOGOUT_BYTES: usize = 32 * 1024;

/// `GET /oidc/logout` (RP-Initiated Logout 1.0 §2).
pub async fn get(State(issuer): State<Arc<Issuer>>, headers: HeaderMap, uri: Uri) -> Response {
    let query = uri.query().unwrap_or("");
    if query.len() > MAX_LOGOUT_BYTES {
        return too_large();
    }
    logout(&issuer, &headers, query.as_bytes(), false).await
}

/// `POST /oidc/logout`: the same request as a form, and the confirmation
/// form's answer.
pub async fn post(State(issuer): State<Arc<Issuer>>, headers: HeaderMap, body: Body) -> Response {
    let Ok(body) = axum::body::to_bytes(body, MAX_LOGOUT_BYTES).await else {
        return too_large();
    };
    logout(&issuer, &headers, &body, true).await
}

fn too_large() -> Response {
    pages::logout_error(
        &format!("The request is longer than {MAX_LOGOUT_BYTES} bytes."),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
}

/// Checks the request, ends the session if it may, and says where to go. A
/// confirmation counts only in a POST: the form is the only place it goes.
async fn logout(issuer: &Issuer, headers: &HeaderMap, input: &[u8], posted: bool) -> Response {
    let params = match Params::parse(input) {
        Ok(p) => p,
        Err(e) => return pages::logout_error(&e.safe_description(), StatusCode::BAD_REQUEST),
    };
    let snapshot = issuer.snapshot();
    let config = &snapshot.config;
    let req = match LogoutRequest::parse(config, &issuer.keys(), &params) {
        Ok(r) => r,
        Err(message) => return pages::logout_error(&message, StatusCode::BAD_REQUEST),
    };
    let session = cookie(headers, config, SESSION_COOKIE);
    let confirmation = params.get("confirm").filter(|_| posted);
    match logout::end(issuer, &req, session.as_deref(), confirmation).await {
        Ok(Outcome::SignedOut) => {
            let mut r = match req.location() {
                Some(location) => redirect(&location),
                None => pages::signed_out(),
            };
            if session.is_some() {
                set_cookie(&mut r, config, SESSION_COOKIE, "", Some(0));
            }
            r
        }
        Ok(Outcome::Confirm(confirmation)) => {
            let mut fields = req.form_fields();
            fields.push(("confirm", &confirmation));
            pages::logout_confirm(&LogoutForm {
                client_name: req.client.as_ref().map(|c| c.name.as_str()),
                fields: &fields,
            })
        }
        Err(e) if e.code == ErrorCode::TemporarilyUnavailable => pages::logout_error(
            "The sign-out service is unavailable; try again shortly.",
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        Err(_) => pages::logout_error(
            "The server could not end the sign-in.",
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
    }
}

#[cfg(test)]
mod tests;
