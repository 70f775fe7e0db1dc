//! RFC 7009: token revocation.
//!
//! A refresh token revokes its whole family, the grant it belongs to, so no
//! token rotated from it can be used either. An access token's `jti` goes on
//! the revocation list until the token's `exp`: introspection and
//! `/userinfo` then refuse it. A resource server that verifies the JWT
//! offline still accepts it until `exp`; that is what a self-contained token
//! is, and why access tokens live minutes, not days.
//!
//! Only the client a token was issued to may revoke it; another client is
//! refused with `unauthorized_client` (§2.1). An unknown, expired or foreign
//! token is a success with nothing to do (§2.2), so the answer tells the
//! caller nothing about tokens it does not hold.

use serde_json::Value;

use super::introspection::{Presented, find};
use crate::Snapshot;
use crate::oauth::OAuthError;
use crate::oauth::client_auth::Authenticated;
use crate::store::Store;
use crate::token::{Clock, KeySet};

/// Revokes `token` for the client `auth`. `Ok` also when there was nothing
/// to revoke.
pub async fn revoke(
    snapshot: &Snapshot,
    keys: &KeySet,
    store: &Store,
    clock: &dyn Clock,
    auth: Authenticated,
    token: &str,
) -> Result<(), OAuthError> {
    let caller = auth.client();
    let now = clock.now();
    let not_yours = || OAuthError::unauthorized_client("the token was issued to another client");
    match find(&snapshot.config, keys, store, now, token).await? {
        Presented::Unknown => Ok(()),
        Presented::Refresh(status) => {
            if status.record.client_id != caller.id {
                return Err(not_yours());
            }
            store
                .revoke_family(&status.record.family_id)
                .await
                .map_err(super::store_error)?;
            crate::audit::token_revoked(&caller.id, "refresh_token", None);
            Ok(())
        }
        Presented::Access(claims) => {
            let claim = |name| claims.get(name).and_then(Value::as_str);
            if claim("client_id") != Some(caller.id.as_str()) {
                return Err(not_yours());
            }
            let (Some(jti), Some(exp)) = (claim("jti"), claims.get("exp").and_then(Value::as_u64))
            else {
                return Ok(());
            };
            store
                .revoke_access_token(jti, &caller.id, now, exp)
                .await
                .map_err(super::store_error)?;
            crate::audit::token_revoked(&caller.id, "access_token", Some(jti));
            Ok(())
        }
    }
}
