//! RFC 6749 §4.1.3: redeeming an authorization code.
//!
//! The code is consumed atomically before anything else is checked, so it can
//! never be used twice, and a second use revokes the refresh tokens the first
//! use issued (RFC 9700 §4.2.4). The code must belong to the authenticated
//! client, come with the same redirect URI, and match the PKCE challenge.

use super::user_tokens::{self, TokenSet, UserGrant};
use super::{invalid_grant, store_error};
use crate::Snapshot;
use crate::oauth::client_auth::Authenticated;
use crate::oauth::{OAuthError, pkce};
use crate::store::{CodeUse, Store, secret_hash};
use crate::token::{Clock, KeySet};

/// An authorization code token request.
pub struct Request {
    /// `code`.
    pub code: String,
    /// `redirect_uri`.
    pub redirect_uri: Option<String>,
    /// `code_verifier`.
    pub code_verifier: Option<String>,
}

/// Redeems a code for tokens.
pub async fn exchange(
    snapshot: &Snapshot,
    keys: &KeySet,
    store: &Store,
    clock: &dyn Clock,
    auth: Authenticated,
    req: Request,
) -> Result<TokenSet, OAuthError> {
    let client = auth.client().clone();
    let verifier = pkce::check_verifier(req.code_verifier.as_deref())?;
    let code_hash = secret_hash(&req.code);
    let record = match store
        .consume_code(&code_hash, clock.now())
        .await
        .map_err(store_error)?
    {
        CodeUse::Fresh(r) => r,
        CodeUse::Replayed(_) => {
            store
                .revoke_from_code(&code_hash)
                .await
                .map_err(store_error)?;
            tracing::warn!(client = %client.id, "authorization code replayed; refresh tokens from its first use revoked");
            return Err(invalid_grant("the authorization code was already used"));
        }
        CodeUse::Expired => return Err(invalid_grant("the authorization code expired")),
        CodeUse::Unknown => return Err(invalid_grant("the authorization code is invalid")),
    };
    if record.client_id != client.id {
        return Err(invalid_grant(
            "the authorization code was issued to another client",
        ));
    }
    if req.redirect_uri.as_deref() != Some(record.redirect_uri.as_str()) {
        return Err(invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    if !pkce::verify(verifier, &record.code_challenge) {
        return Err(invalid_grant(
            "code_verifier does not match the code_challenge",
        ));
    }
    let user = super::granted_user(store, &record.user_id).await?;
    user_tokens::mint(
        snapshot,
        keys,
        store,
        clock,
        &UserGrant {
            user: &user,
            client: &client,
            scopes: &record.scopes,
            audience: record.audience.as_deref(),
            nonce: record.nonce.as_deref(),
            auth_time: record.auth_time,
            access_claims: &record.access_claims,
            id_claims: &record.id_claims,
        },
        Some(&code_hash),
    )
    .await
}
