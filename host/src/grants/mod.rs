//! One file per grant or flow. Each takes an authenticated client (or a
//! validated authorization request) and a typed request, applies the access
//! policy of [`policy`], runs the plugin stage, and mints tokens or a code.
//! No HTTP types: `crate::http` turns requests into these inputs and their
//! results into responses.

pub mod authorization_code;
pub mod client_auth;
pub mod client_credentials;
pub mod introspection;
pub mod logout;
pub mod policy;
pub mod refresh_token;
pub mod revocation;
pub mod sign_in;
pub mod throttle;
pub mod user_tokens;

use crate::oauth::{ErrorCode, OAuthError};
use crate::store::StoreError;

/// `invalid_grant` (RFC 6749 §5.2): the code or refresh token is not good.
pub fn invalid_grant(why: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidGrant, why)
}

/// The longest any signed token lives under `config` (seconds): how long a
/// key that stopped signing must stay published.
pub fn longest_token_lifetime(config: &crate::config::Config) -> u64 {
    config
        .apis
        .iter()
        .map(|api| api.token_lifetime.as_secs())
        .chain([
            user_tokens::DEFAULT_ACCESS_LIFETIME,
            user_tokens::ID_TOKEN_LIFETIME,
        ])
        .max()
        .unwrap_or(0)
}

/// The user a code or refresh token was granted for; `invalid_grant` once the
/// user has been removed.
pub async fn granted_user(
    store: &crate::store::Store,
    id: &str,
) -> Result<crate::store::User, OAuthError> {
    store
        .user_by_id(id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| invalid_grant("the user no longer exists"))
}

/// A store failure as the client sees it: the database being unreachable is
/// temporary (503 with `Retry-After`); anything else is a server error.
pub fn store_error(e: StoreError) -> OAuthError {
    if matches!(e, StoreError::Revoked) {
        return invalid_grant("the grant was revoked");
    }
    tracing::error!(error = %e, "store operation failed");
    if e.is_unavailable() {
        OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            "the token store is unavailable; retry shortly",
        )
    } else {
        OAuthError::server_error("the token store failed")
    }
}
