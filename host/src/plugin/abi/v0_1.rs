//! `tessera:plugin@0.1.0` (`wit/plugin.wit`): the bindings, the host
//! functions, and the conversions between its records and the host's
//! [`Event`], [`Changes`] and [`Denial`]. The only module that sees this
//! version's generated types.
//!
//! 0.1.0 passes the whole event as records: every string and list of it is
//! copied into the guest before the call, whether the plugin reads it or not.

use serde_json::{Map, Value};
use wasmtime::Store;
use wasmtime::component::{Component, InstancePre, Linker};

use crate::config::AppType;
use crate::oauth::ErrorCode;
use crate::plugin::engine::PluginState;
use crate::plugin::event::{
    Answer, ApiFacts, Changes, ClaimValue, ClientFacts, Denial, Event, RequestInfo,
    TransactionInfo, UserFacts,
};

mod ce {
    wasmtime::component::bindgen!({
        path: "../wit/plugin.wit",
        world: "credentials-exchange",
        exports: { default: async },
    });
}

mod authz {
    wasmtime::component::bindgen!({
        path: "../wit/plugin.wit",
        world: "authorize",
        exports: { default: async },
        with: {
            "tessera:plugin/types": super::ce::tessera::plugin::types,
            "tessera:plugin/host": super::ce::tessera::plugin::host,
        },
    });
}

/// The `types` interface, which 0.2.0 repeats unchanged: its bindings reuse
/// these Rust types and the conversions below.
pub use ce::tessera::plugin::types;
use ce::tessera::plugin::{host, types as wit};

/// The WIT package this module speaks.
pub const PACKAGE: &str = "tessera:plugin@0.1.0";

/// Adds the `host` interface to `linker`.
pub fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    host::add_to_linker::<PluginState, wasmtime::component::HasSelf<PluginState>>(linker, |s| s)
}

/// A component of this version linked for one stage.
#[derive(Clone)]
pub enum Pre {
    /// Exports `on-credentials-exchange`.
    CredentialsExchange(ce::CredentialsExchangePre<PluginState>),
    /// Exports `on-authorize`.
    Authorize(authz::AuthorizePre<PluginState>),
}

/// An instance of a [`Pre`], bound to its stage's export.
pub enum Instance {
    /// Bound to `on-credentials-exchange`.
    CredentialsExchange(ce::CredentialsExchange),
    /// Bound to `on-authorize`.
    Authorize(authz::Authorize),
}

/// The stages `component` exports, each checked against this version's
/// signature. `Err` says what does not match.
pub fn link(
    component: &Component,
    pre: &InstancePre<PluginState>,
) -> Result<(Option<Pre>, Option<Pre>), String> {
    super::stages(
        component,
        PACKAGE,
        || ce::CredentialsExchangePre::new(pre.clone()).map(Pre::CredentialsExchange),
        || authz::AuthorizePre::new(pre.clone()).map(Pre::Authorize),
    )
}

impl Pre {
    /// A new instance in `store`.
    pub async fn instantiate(&self, store: &mut Store<PluginState>) -> wasmtime::Result<Instance> {
        Ok(match self {
            Pre::CredentialsExchange(p) => {
                Instance::CredentialsExchange(p.instantiate_async(store).await?)
            }
            Pre::Authorize(p) => Instance::Authorize(p.instantiate_async(store).await?),
        })
    }
}

impl Instance {
    /// Calls the stage's export with `event`.
    pub async fn call(
        &self,
        store: &mut Store<PluginState>,
        event: &Event,
    ) -> wasmtime::Result<Answer> {
        let answer = match self {
            Instance::CredentialsExchange(i) => {
                let e = credentials_exchange_event(event)?;
                i.call_on_credentials_exchange(store, &e).await?
            }
            Instance::Authorize(i) => {
                let e = authorize_event(event);
                i.call_on_authorize(store, &e).await?
            }
        };
        Ok(answer.map(changes).map_err(denial))
    }
}

impl wit::Host for PluginState {}

impl host::Host for PluginState {
    fn log(&mut self, level: wit::LogLevel, message: String) {
        PluginState::log(self, log_level(level), message);
    }

    fn config(&mut self, key: String) -> Option<String> {
        PluginState::config(self, &key)
    }

    fn secret(&mut self, name: String) -> Option<String> {
        PluginState::secret(self, &name)
    }
}

/// A log line's level as the host's log names it.
pub(super) fn log_level(level: wit::LogLevel) -> &'static str {
    match level {
        wit::LogLevel::Trace => "trace",
        wit::LogLevel::Debug => "debug",
        wit::LogLevel::Info => "info",
        wit::LogLevel::Warn => "warn",
        wit::LogLevel::Error => "error",
    }
}

// ---------------------------------------------------------------------------
// Host → plugin. These cannot fail, except for an event without the parts its
// stage always has. 0.2.0 builds its getters' records with the same functions.

fn value(v: &Value) -> wit::Value {
    match ClaimValue::from_json(v) {
        ClaimValue::Null => wit::Value::Null,
        ClaimValue::Boolean(b) => wit::Value::Boolean(b),
        ClaimValue::Integer(i) => wit::Value::Integer(i),
        ClaimValue::Number(n) => wit::Value::Number(n),
        ClaimValue::Text(s) => wit::Value::Text(s),
        ClaimValue::TextList(l) => wit::Value::TextList(l),
        ClaimValue::Json(j) => wit::Value::Json(j),
    }
}

fn metadata(m: &Map<String, Value>) -> Vec<(String, wit::Value)> {
    m.iter().map(|(k, v)| (k.clone(), value(v))).collect()
}

pub(super) fn client(c: &ClientFacts) -> wit::Client {
    wit::Client {
        id: c.id.clone(),
        name: c.name.clone(),
        app_type: match c.app_type {
            AppType::Spa => wit::AppType::Spa,
            AppType::RegularWeb => wit::AppType::RegularWeb,
            AppType::Native => wit::AppType::Native,
            AppType::Machine => wit::AppType::Machine,
        },
        metadata: metadata(&c.metadata),
    }
}

pub(super) fn api(a: &ApiFacts) -> wit::Api {
    wit::Api {
        identifier: a.identifier.clone(),
        name: a.name.clone(),
        scopes: a.scopes.clone(),
        metadata: metadata(&a.metadata),
    }
}

pub(super) fn user(u: &UserFacts) -> wit::User {
    wit::User {
        id: u.id.clone(),
        email: u.email.clone(),
        email_verified: u.email_verified,
        name: u.name.clone(),
        app_metadata: metadata(&u.app_metadata),
        user_metadata: metadata(&u.user_metadata),
    }
}

pub(super) fn request(r: &RequestInfo) -> wit::Request {
    wit::Request {
        ip: r.ip.clone(),
        user_agent: r.user_agent.clone(),
        hostname: r.hostname.clone(),
        method: r.method.clone(),
        params: r.params.clone(),
    }
}

pub(super) fn transaction(t: &TransactionInfo) -> wit::Transaction {
    wit::Transaction {
        id: t.id.clone(),
        grant_type: t.grant_type.to_owned(),
        requested_scopes: t.requested_scopes.clone(),
        granted_scopes: t.granted_scopes.clone(),
        redirect_uri: t.redirect_uri.clone(),
        requested_audience: t.requested_audience.clone(),
    }
}

/// A token so far: the access token's claims and scopes, or the ID token's
/// claims (which carries no scopes).
pub(super) fn token_state(claims: &Map<String, Value>, scopes: &[String]) -> wit::TokenState {
    wit::TokenState {
        claims: metadata(claims),
        scopes: scopes.to_vec(),
    }
}

fn credentials_exchange_event(event: &Event) -> wasmtime::Result<wit::CredentialsExchangeEvent> {
    let f = &event.facts;
    let audience = f
        .api
        .as_ref()
        .ok_or_else(|| wasmtime::Error::msg("a credentials-exchange event without an API"))?;
    Ok(wit::CredentialsExchangeEvent {
        client: client(&f.client),
        api: api(audience),
        request: request(&f.request),
        transaction: transaction(&f.transaction),
        access_token: token_state(&event.token.claims, &event.token.scopes),
    })
}

fn authorize_event(event: &Event) -> wit::AuthorizeEvent {
    let f = &event.facts;
    let no_user = || wit::User {
        id: String::new(),
        email: None,
        email_verified: false,
        name: None,
        app_metadata: Vec::new(),
        user_metadata: Vec::new(),
    };
    wit::AuthorizeEvent {
        client: client(&f.client),
        api: f.api.as_ref().map(api),
        user: f.user.as_ref().map_or_else(no_user, user),
        request: request(&f.request),
        transaction: transaction(&f.transaction),
        access_token: token_state(&event.token.claims, &event.token.scopes),
        id_token: token_state(&event.token.id_claims, &[]),
    }
}

// ---------------------------------------------------------------------------
// Plugin → host. Values are checked by the pipeline, with the claim's name.

fn claim_value(v: wit::Value) -> ClaimValue {
    match v {
        wit::Value::Null => ClaimValue::Null,
        wit::Value::Boolean(b) => ClaimValue::Boolean(b),
        wit::Value::Integer(i) => ClaimValue::Integer(i),
        wit::Value::Number(n) => ClaimValue::Number(n),
        wit::Value::Text(s) => ClaimValue::Text(s),
        wit::Value::TextList(l) => ClaimValue::TextList(l),
        wit::Value::Json(j) => ClaimValue::Json(j),
    }
}

fn claims(list: Vec<(String, wit::Value)>) -> Vec<(String, ClaimValue)> {
    list.into_iter().map(|(k, v)| (k, claim_value(v))).collect()
}

pub(super) fn changes(c: wit::Changes) -> Changes {
    Changes {
        access_token_claims: claims(c.access_token_claims),
        id_token_claims: claims(c.id_token_claims),
        add_scopes: c.add_scopes,
        remove_scopes: c.remove_scopes,
    }
}

pub(super) fn denial(d: wit::Denial) -> Denial {
    Denial {
        code: match d.code {
            wit::DenyCode::AccessDenied => ErrorCode::AccessDenied,
            wit::DenyCode::InvalidScope => ErrorCode::InvalidScope,
            wit::DenyCode::InvalidRequest => ErrorCode::InvalidRequest,
            wit::DenyCode::UnauthorizedClient => ErrorCode::UnauthorizedClient,
            wit::DenyCode::InvalidTarget => ErrorCode::InvalidTarget,
        },
        description: d.description,
    }
}
