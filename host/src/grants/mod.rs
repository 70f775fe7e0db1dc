//! One file per grant. Each takes an authenticated client and a typed request,
//! applies the API's policy and the client's grant, runs the plugin stage, and
//! mints tokens. No HTTP types.

pub mod client_credentials;

/// An issued access token.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The signed JWT.
    pub access_token: String,
    /// Lifetime in seconds.
    pub expires_in: u64,
    /// The scopes it carries.
    pub scopes: Vec<String>,
    /// Its `jti`.
    pub jti: String,
    /// Its audience.
    pub audience: String,
}
