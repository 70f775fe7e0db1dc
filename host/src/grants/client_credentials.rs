//! RFC 6749 §4.4: the client credentials grant.
//!
//! Order of decisions: the client must be confidential; the API is the one named
//! by `audience`/`resource` (or the client's only granted API); the API's
//! `client_access` policy and the client's grant decide whether it may get a
//! token at all; scopes are the request narrowed to the grant; then the
//! credentials-exchange plugins run; then the token is signed.

use super::policy;
use super::user_tokens::TokenSet;
use crate::Snapshot;
use crate::oauth::client_auth::Authenticated;
use crate::oauth::{OAuthError, scope};
use crate::plugin::event::{RequestInfo, TransactionInfo};
use crate::plugin::pipeline::{self, CredentialsExchange};
use crate::plugin::{Runtime, TokenShape};
use crate::token::{self, AccessToken, Clock, KeySet};
use crate::trace::Decision;

/// A client credentials request.
pub struct Request {
    /// Requested scopes (`None`: all granted).
    pub scope: Option<Vec<String>>,
    /// `audience` / `resource`.
    pub audience: Option<String>,
    /// The HTTP request as plugins see it.
    pub request: RequestInfo,
}

/// Issues an access token, or says why not. `decision` receives the policy's
/// decision and every plugin run as they happen, so it tells how far a
/// request that failed got.
pub async fn exchange(
    snapshot: &Snapshot,
    keys: &KeySet,
    runtime: &Runtime,
    clock: &dyn Clock,
    auth: Authenticated,
    req: Request,
    decision: &mut Decision,
) -> Result<TokenSet, OAuthError> {
    let config = &snapshot.config;
    let client = match auth {
        Authenticated::Confidential(c) => c,
        Authenticated::Public(c) => {
            return Err(OAuthError::unauthorized_client(format!(
                "{} clients are public and cannot use client_credentials",
                c.app_type.as_str()
            )));
        }
    };

    let api = match &req.audience {
        Some(aud) => policy::named_api(config, aud)?,
        None => match client.client_grant_apis.as_slice() {
            [only] => config
                .api(only)
                .ok_or_else(|| OAuthError::server_error("a grant names an unknown API"))?,
            grants => {
                return Err(OAuthError::invalid_request(format!(
                    "audience (or resource) is required: this client has grants for {} APIs",
                    grants.len()
                )));
            }
        },
    };
    decision.api = Some(api.identifier.clone());
    decision.rule = Some(policy::client_rule(api));
    decision.requested.clone_from(&req.scope);
    let ceiling = policy::client_ceiling(config, &client, api)?;
    decision.ceiling = ceiling.to_vec();
    let scopes = scope::narrow(req.scope.as_deref(), ceiling)?;
    decision.granted.clone_from(&scopes);

    let jti = token::new_jti()
        .map_err(|_| OAuthError::server_error("the random number generator failed"))?;
    let transaction = TransactionInfo {
        id: jti.clone(),
        grant_type: "client_credentials",
        requested_scopes: req.scope.clone().unwrap_or_default(),
        granted_scopes: scopes.clone(),
        redirect_uri: None,
        requested_audience: req.audience.clone(),
    };
    let mut shape = TokenShape {
        scopes,
        ..TokenShape::default()
    };
    pipeline::credentials_exchange(
        runtime,
        &snapshot.plugins,
        config.claims,
        CredentialsExchange {
            client: &client,
            api,
            request: &req.request,
            transaction: &transaction,
        },
        &mut shape,
        &mut decision.stage,
    )
    .await
    .map_err(|e| e.to_oauth())?;
    decision.claims.clone_from(&shape.claims);

    let subject = token::client_subject(&client.id);
    let lifetime = api.token_lifetime.as_secs();
    let claims = AccessToken {
        issuer: &config.server.issuer,
        subject: &subject,
        audience: &api.identifier,
        client_id: &client.id,
        scopes: &shape.scopes,
        issued_at: clock.now(),
        lifetime_secs: lifetime,
        jti: &jti,
        custom: &shape.claims,
    }
    .claims();
    let access_token = token::jwt::sign(keys.active(), "at+jwt", &claims)
        .map_err(|_| OAuthError::server_error("signing the token failed"))?;
    Ok(TokenSet {
        access_token,
        expires_in: lifetime,
        jti,
        subject,
        audience: api.identifier.clone(),
        scope: shape.scopes.join(" "),
        id_token: None,
        refresh_token: None,
    })
}
