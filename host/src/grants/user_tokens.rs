//! Minting the tokens of a user flow: the access token, the ID token (OpenID
//! Connect Core §2) when `openid` was granted, and a rotating refresh token
//! when `offline_access` was granted. Shared by the authorization code and
//! refresh token grants, so both issue exactly the same shapes.

use serde_json::{Map, Value};

use crate::Snapshot;
use crate::config::Client;
use crate::oauth::OAuthError;
use crate::store::{RefreshRecord, Store, User, secret_hash};
use crate::token::{self, AccessToken, Clock, KeySet};

/// Access tokens without an API are for `/userinfo` and live this long.
pub const DEFAULT_ACCESS_LIFETIME: u64 = 3600;
/// ID token lifetime.
pub const ID_TOKEN_LIFETIME: u64 = 3600;
/// Refresh token lifetime (each rotation starts a new period).
pub const REFRESH_LIFETIME: u64 = 30 * 24 * 3600;

/// What was granted, and to whom.
pub struct UserGrant<'a> {
    /// The user.
    pub user: &'a User,
    /// The client.
    pub client: &'a Client,
    /// Granted scopes (OpenID Connect scopes first).
    pub scopes: &'a [String],
    /// The API identifier, if any.
    pub audience: Option<&'a str>,
    /// The authorization request's `nonce`.
    pub nonce: Option<&'a str>,
    /// When the user signed in.
    pub auth_time: u64,
    /// Custom access-token claims from the authorize stage.
    pub access_claims: &'a Map<String, Value>,
    /// Custom ID-token claims from the authorize stage.
    pub id_claims: &'a Map<String, Value>,
}

/// The tokens of one response.
#[derive(Debug)]
pub struct TokenSet {
    /// The access token.
    pub access_token: String,
    /// Its lifetime.
    pub expires_in: u64,
    /// Its `jti`.
    pub jti: String,
    /// Its `sub`: the user's id, or the client's subject.
    pub subject: String,
    /// Its audience.
    pub audience: String,
    /// The granted scopes, space-joined.
    pub scope: String,
    /// The ID token, when `openid` was granted.
    pub id_token: Option<String>,
    /// The refresh token, when `offline_access` was granted.
    pub refresh_token: Option<String>,
}

/// A fresh opaque token: 256 random bits, base64url.
pub fn opaque_token() -> Result<String, OAuthError> {
    crate::secret::generate()
        .map_err(|_| OAuthError::server_error("the random number generator failed"))
}

/// Mints the access token and, as granted, the ID token. Redeeming a code
/// (`code_hash`) with `offline_access` granted also starts a refresh-token
/// family; rotations are the refresh grant's own business.
pub async fn mint(
    snapshot: &Snapshot,
    keys: &KeySet,
    store: &Store,
    clock: &dyn Clock,
    g: &UserGrant<'_>,
    code_hash: Option<&str>,
) -> Result<TokenSet, OAuthError> {
    let config = &snapshot.config;
    let now = clock.now();
    let has = |s: &str| g.scopes.iter().any(|x| x == s);
    let userinfo = config.server.url("/userinfo");
    let (audience, lifetime) = match g.audience.and_then(|a| config.api(a)) {
        Some(api) => (api.identifier.clone(), api.token_lifetime.as_secs()),
        None => (userinfo, DEFAULT_ACCESS_LIFETIME),
    };
    let jti = token::new_jti()
        .map_err(|_| OAuthError::server_error("the random number generator failed"))?;
    let claims = AccessToken {
        issuer: &config.server.issuer,
        subject: &g.user.id,
        audience: &audience,
        client_id: &g.client.id,
        scopes: g.scopes,
        issued_at: now,
        lifetime_secs: lifetime,
        jti: &jti,
        custom: g.access_claims,
    }
    .claims();
    let access_token = token::jwt::sign(keys.active(), "at+jwt", &claims)
        .map_err(|_| OAuthError::server_error("signing the token failed"))?;

    let id_token = if has("openid") {
        let mut c = g.id_claims.clone();
        c.insert("iss".into(), config.server.issuer.clone().into());
        c.insert("sub".into(), g.user.id.clone().into());
        c.insert("aud".into(), g.client.id.clone().into());
        c.insert("iat".into(), now.into());
        c.insert("exp".into(), (now + ID_TOKEN_LIFETIME).into());
        c.insert("auth_time".into(), g.auth_time.into());
        if let Some(n) = g.nonce {
            c.insert("nonce".into(), n.into());
        }
        if has("profile")
            && let Some(name) = &g.user.name
        {
            c.insert("name".into(), name.clone().into());
        }
        if has("email") {
            c.insert("email".into(), g.user.email.clone().into());
            c.insert("email_verified".into(), g.user.email_verified.into());
        }
        Some(
            token::jwt::sign(keys.active_for(g.client.id_token_algorithm), "JWT", &c)
                .map_err(|_| OAuthError::server_error("signing the ID token failed"))?,
        )
    } else {
        None
    };

    let refresh_token = if let (true, Some(code_hash)) = (has("offline_access"), code_hash) {
        let rt = opaque_token()?;
        let family = opaque_token()?;
        store
            .put_refresh(&RefreshRecord {
                token_hash: secret_hash(&rt),
                family_id: family,
                client_id: g.client.id.clone(),
                user_id: g.user.id.clone(),
                scopes: g.scopes.to_vec(),
                audience: g.audience.map(str::to_owned),
                auth_time: g.auth_time,
                access_claims: g.access_claims.clone(),
                id_claims: g.id_claims.clone(),
                code_hash: Some(code_hash.to_owned()),
                issued_at: now,
                expires_at: now + REFRESH_LIFETIME,
            })
            .await
            .map_err(super::store_error)?;
        Some(rt)
    } else {
        None
    };

    Ok(TokenSet {
        access_token,
        expires_in: lifetime,
        jti,
        subject: g.user.id.clone(),
        audience,
        scope: g.scopes.join(" "),
        id_token,
        refresh_token,
    })
}
