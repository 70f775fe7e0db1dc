//! The access policy every flow applies before a plugin runs: which API a
//! request is for, whether that API accepts this kind of token from this
//! client, and the scope ceiling that follows. Client credentials read the
//! API's `client_access`, user flows its `user_access`; both read the same
//! grants.

use std::sync::Arc;

use crate::config::{Api, Client, ClientAccess, Config, Subject, UserAccess};
use crate::oauth::OAuthError;

/// The API whose identifier is `audience` (`invalid_target` when none is).
pub fn named_api<'a>(config: &'a Config, audience: &str) -> Result<&'a Arc<Api>, OAuthError> {
    config.api(audience).ok_or_else(|| {
        OAuthError::invalid_target(format!(
            "no API has the identifier {}",
            crate::oauth::params::echo(audience)
        ))
    })
}

/// The scopes `client` may get for itself from `api`: its `subject =
/// "client"` grant, if the API takes client-credentials tokens at all.
pub fn client_ceiling<'a>(
    config: &'a Config,
    client: &Client,
    api: &Api,
) -> Result<&'a [String], OAuthError> {
    match api.client_access {
        ClientAccess::DenyAll => Err(OAuthError::access_denied(format!(
            "API {:?} does not accept client-credentials tokens",
            api.identifier
        ))),
        ClientAccess::RequireClientGrant => config
            .grant(&client.id, &api.identifier, Subject::Client)
            .map(|g| g.scopes.as_slice())
            .ok_or_else(|| {
                OAuthError::access_denied(format!(
                    "client {:?} has no grant for API {:?}",
                    client.id, api.identifier
                ))
            }),
    }
}

/// The scopes `client` may get from `api` on a user's behalf: every scope of
/// the API, or its `subject = "user"` grant, as the API's `user_access` says.
pub fn user_ceiling<'a>(
    config: &'a Config,
    client: &Client,
    api: &'a Api,
) -> Result<&'a [String], OAuthError> {
    match api.user_access {
        UserAccess::DenyAll => Err(OAuthError::access_denied(format!(
            "API {:?} does not accept user tokens",
            api.identifier
        ))),
        UserAccess::AllowAll => Ok(&api.scopes),
        UserAccess::RequireClientGrant => config
            .grant(&client.id, &api.identifier, Subject::User)
            .map(|g| g.scopes.as_slice())
            .ok_or_else(|| {
                OAuthError::access_denied(format!(
                    "application {:?} may not get tokens for API {:?}",
                    client.id, api.identifier
                ))
            }),
    }
}

/// The rule of `api` that decides client-credentials tokens, as the trace
/// shows it (`client_access = require_client_grant`).
pub fn client_rule(api: &Api) -> &'static str {
    match api.client_access {
        ClientAccess::RequireClientGrant => "client_access = require_client_grant",
        ClientAccess::DenyAll => "client_access = deny_all",
    }
}

/// The rule of `api` that decides user tokens, as the trace shows it
/// (`user_access = allow_all`).
pub fn user_rule(api: &Api) -> &'static str {
    match api.user_access {
        UserAccess::AllowAll => "user_access = allow_all",
        UserAccess::RequireClientGrant => "user_access = require_client_grant",
        UserAccess::DenyAll => "user_access = deny_all",
    }
}
