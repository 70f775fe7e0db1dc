//! RFC 7662: token introspection, and finding the token a request presents
//! (shared with RFC 7009 revocation, [`super::revocation`]).
//!
//! Who may see what: a resource server (a confidential client named in an
//! API's `resource_servers`) may introspect the access tokens for that API;
//! any confidential client may introspect the tokens issued to itself. A
//! refresh token is only ever shown to the client it was issued to. Every
//! other token, and every expired, revoked, malformed or foreign one, is
//! `{"active": false}` and nothing more (§2.2), so the answer says nothing
//! about a token the caller may not see.

use serde_json::{Map, Value, json};

use crate::Snapshot;
use crate::config::{Client, Config};
use crate::oauth::OAuthError;
use crate::oauth::client_auth::Authenticated;
use crate::store::{RefreshStatus, Store, secret_hash};
use crate::token::{Clock, KeySet, verify};

/// A token as presented to introspection or revocation.
pub enum Presented {
    /// An access token of this issuer: signed by one of its keys, unexpired,
    /// not revoked. Its claims.
    Access(Map<String, Value>),
    /// A refresh token the store knows, active or not.
    Refresh(Box<RefreshStatus>),
    /// Anything else: expired, revoked, malformed, foreign, never issued.
    Unknown,
}

/// What `token` is. Access tokens are JWTs and refresh tokens are opaque, so
/// the form decides where to look; only a verified access token costs a
/// store read (the revocation list).
pub async fn find(
    config: &Config,
    keys: &KeySet,
    store: &Store,
    now: u64,
    token: &str,
) -> Result<Presented, OAuthError> {
    if token.contains('.') {
        let Ok(claims) = verify::access_token(keys, &config.server.issuer, token, now) else {
            return Ok(Presented::Unknown);
        };
        let Some(jti) = claims.get("jti").and_then(Value::as_str) else {
            return Ok(Presented::Unknown);
        };
        if store
            .access_token_revoked(jti)
            .await
            .map_err(super::store_error)?
        {
            return Ok(Presented::Unknown);
        }
        return Ok(Presented::Access(claims));
    }
    Ok(
        match store
            .refresh_status(&secret_hash(token), now)
            .await
            .map_err(super::store_error)?
        {
            Some(status) => Presented::Refresh(Box::new(status)),
            None => Presented::Unknown,
        },
    )
}

/// The introspection response for `token`, asked by `auth`.
pub async fn introspect(
    snapshot: &Snapshot,
    keys: &KeySet,
    store: &Store,
    clock: &dyn Clock,
    auth: Authenticated,
    token: &str,
) -> Result<Value, OAuthError> {
    let Authenticated::Confidential(caller) = auth else {
        return Err(OAuthError {
            description: "introspection needs client authentication; a public client cannot \
                          introspect"
                .into(),
            ..OAuthError::invalid_client(true)
        });
    };
    let config = &snapshot.config;
    let inactive = json!({ "active": false });
    Ok(match find(config, keys, store, clock.now(), token).await? {
        Presented::Access(claims) if may_see_access(config, &caller, &claims) => {
            let mut out = claims;
            out.insert("active".into(), true.into());
            out.insert("token_type".into(), "Bearer".into());
            Value::Object(out)
        }
        Presented::Refresh(status) if status.active && status.record.client_id == caller.id => {
            let record = status.record;
            let mut out = json!({
                "active": true,
                "token_type": "refresh_token",
                "iss": config.server.issuer,
                "sub": record.user_id,
                "client_id": record.client_id,
                "scope": record.scopes.join(" "),
                "iat": record.issued_at,
                "exp": record.expires_at,
            });
            if let Some(aud) = record.audience {
                out["aud"] = aud.into();
            }
            out
        }
        _ => inactive,
    })
}

/// Whether `caller` may see an access token with these claims: it was
/// issued to the caller, or the caller is a resource server of its audience.
fn may_see_access(config: &Config, caller: &Client, claims: &Map<String, Value>) -> bool {
    let claim = |name| claims.get(name).and_then(Value::as_str);
    claim("client_id") == Some(caller.id.as_str())
        || claim("aud")
            .and_then(|aud| config.api(aud))
            .is_some_and(|api| api.resource_servers.contains(&caller.id))
}
