//! The audit log: who got a token for which API and scopes, failed client
//! authentications and sign-ins, admin calls, signing-key changes and
//! reloads — one structured event each, on the log target
//! [`TARGET`] (`tessera::audit`), which `[log] audit` sends to standard
//! error with the rest of the log or to a file of its own (JSON lines).
//!
//! Every event has an `event` field naming it; its other fields are listed
//! in docs/operations.md. No event holds a secret: tokens appear by `jti`,
//! users by id, and an unknown account is not named at all.

/// The log target of audit events.
pub const TARGET: &str = "tessera::audit";

/// Tokens were issued (a token response).
pub fn token_issued(
    client: &str,
    grant: &str,
    audience: &str,
    scope: &str,
    subject: &str,
    jti: &str,
) {
    tracing::info!(
        target: TARGET,
        event = "token_issued",
        client_id = client,
        grant,
        audience,
        scope,
        subject,
        jti,
        "token issued"
    );
}

/// A client failed to authenticate at `endpoint`; `client` is the id it
/// claimed, cut like every echoed value.
pub fn client_auth_failed(client: Option<&str>, endpoint: &str, reason: &str) {
    tracing::info!(
        target: TARGET,
        event = "client_auth_failed",
        client_id = client.map(crate::oauth::params::echo),
        endpoint,
        reason,
        "client authentication failed"
    );
}

/// A sign-in failed: a wrong password, an unknown account (not named), or a
/// throttled attempt.
pub fn login_failed(client: &str, ip: std::net::IpAddr, reason: &'static str) {
    tracing::info!(
        target: TARGET,
        event = "login_failed",
        client_id = client,
        %ip,
        reason,
        "sign-in failed"
    );
}

/// A user signed in.
pub fn login_succeeded(client: &str, ip: std::net::IpAddr, user: &str) {
    tracing::info!(
        target: TARGET,
        event = "login_succeeded",
        client_id = client,
        %ip,
        user_id = user,
        "signed in"
    );
}

/// An admin endpoint was called; `client` is the admin token's client when
/// the token was good.
pub fn admin_call(endpoint: &str, client: Option<&str>, allowed: bool, refusal: Option<&str>) {
    tracing::info!(
        target: TARGET,
        event = "admin_call",
        endpoint,
        client_id = client,
        allowed,
        refusal,
        "admin call"
    );
}

/// A token was revoked by its client (RFC 7009): a refresh token's family,
/// or an access token (by its `jti`).
pub fn token_revoked(client: &str, kind: &str, jti: Option<&str>) {
    tracing::info!(
        target: TARGET,
        event = "token_revoked",
        client_id = client,
        token_type = kind,
        jti,
        "token revoked"
    );
}

/// The signing keys in use changed (a rotation's key began to sign, a key
/// was added or retired), as this process sees them.
pub fn signing_keys_changed(active_kid: &str, algorithm: &str, published: usize) {
    tracing::info!(
        target: TARGET,
        event = "signing_keys_changed",
        kid = active_kid,
        alg = algorithm,
        published,
        "signing keys changed"
    );
}

/// `tessera keys rotate`, `retire` or `import` changed the stored keys.
pub fn signing_key_command(command: &str, kid: &str, algorithm: &str) {
    tracing::info!(
        target: TARGET,
        event = "signing_key_command",
        command,
        kid,
        alg = algorithm,
        "signing key command"
    );
}

/// A reload ended: swapped in (`generation`) or refused (`reason`).
pub fn reload(trigger: &str, generation: u64, refused: Option<&str>) {
    tracing::info!(
        target: TARGET,
        event = "reload",
        trigger,
        generation,
        result = if refused.is_some() { "refused" } else { "ok" },
        reason = refused,
        "reload"
    );
}
