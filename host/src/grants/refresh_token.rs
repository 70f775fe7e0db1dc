//! RFC 6749 §6: the refresh token grant, with rotation on every use and
//! reuse detection (RFC 9700 §4.14.2): presenting a refresh token that was
//! already used revokes its whole family. The scope may be narrowed for the
//! access token, never widened; the new refresh token keeps the original scope.

use super::user_tokens::{self, TokenSet, UserGrant};
use super::{invalid_grant, store_error};
use crate::Snapshot;
use crate::oauth::OAuthError;
use crate::oauth::client_auth::Authenticated;
use crate::store::{RefreshUse, Store, secret_hash};
use crate::token::{Clock, KeySet};

/// A refresh token request.
pub struct Request {
    /// `refresh_token`.
    pub refresh_token: String,
    /// `scope`, to narrow the access token.
    pub scope: Option<Vec<String>>,
}

/// Rotates a refresh token and issues new tokens.
pub async fn exchange(
    snapshot: &Snapshot,
    keys: &KeySet,
    store: &Store,
    clock: &dyn Clock,
    auth: Authenticated,
    req: Request,
) -> Result<TokenSet, OAuthError> {
    let client = auth.client().clone();
    let hash = secret_hash(&req.refresh_token);
    // A request for more than the grant is refused before the token is spent,
    // so a client's mistake does not look like a replay later.
    if let Some(asked) = &req.scope
        && let Some(stored) = store.refresh_token(&hash).await.map_err(store_error)?
        && let Some(extra) = asked.iter().find(|s| !stored.scopes.contains(s))
    {
        return Err(OAuthError::invalid_scope(format!(
            "scope {} was not part of the original grant",
            crate::oauth::params::echo(extra)
        )));
    }
    // The rotation is one transaction: the token is spent and its successor
    // stored together, so a crash never leaves the family half-written.
    let rt = user_tokens::opaque_token()?;
    let now = clock.now();
    let record = match store
        .rotate_refresh(
            &hash,
            now,
            client.refresh_reuse_leeway.as_secs(),
            &secret_hash(&rt),
            now + user_tokens::REFRESH_LIFETIME,
        )
        .await
        .map_err(store_error)?
    {
        RefreshUse::Fresh(r) => r,
        RefreshUse::Reused(r) => {
            tracing::warn!(client = %r.client_id, "refresh token reused; its family is revoked");
            return Err(invalid_grant(
                "the refresh token was already used; its grant is revoked",
            ));
        }
        RefreshUse::Revoked => return Err(invalid_grant("the refresh token was revoked")),
        RefreshUse::Expired => return Err(invalid_grant("the refresh token expired")),
        RefreshUse::Unknown => return Err(invalid_grant("the refresh token is invalid")),
    };
    if record.client_id != client.id {
        store
            .revoke_family(&record.family_id)
            .await
            .map_err(store_error)?;
        return Err(invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    // Narrowing (checked above, before the token was spent) applies to this
    // access token only; the family keeps its scope.
    let scopes = req.scope.unwrap_or_else(|| record.scopes.clone());
    let user = super::granted_user(store, &record.user_id).await?;
    let mut tokens = user_tokens::mint(
        snapshot,
        keys,
        store,
        clock,
        &UserGrant {
            user: &user,
            client: &client,
            scopes: &scopes,
            audience: record.audience.as_deref(),
            nonce: None,
            auth_time: record.auth_time,
            access_claims: &record.access_claims,
            id_claims: &record.id_claims,
        },
        None,
    )
    .await?;
    // The successor (stored above) keeps the family's original scope,
    // whatever this request narrowed.
    tokens.refresh_token = Some(rt);
    Ok(tokens)
}
