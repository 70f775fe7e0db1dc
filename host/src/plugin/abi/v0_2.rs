//! `tessera:plugin@0.2.0` (`wit/0.2.0/plugin.wit`): the bindings, the host
//! functions, the `event` resource, and the conversions between this
//! version's records and the host's [`Event`], [`Changes`] and [`Denial`].
//! The only module that sees this version's generated types.
//!
//! The event is a resource: the call puts the host's [`Event`] in the
//! store's resource table and passes the plugin a handle to it; each getter
//! copies one part into the plugin when asked. The handle is the plugin's
//! (`own`, not `borrow`: a borrow must be released before the call returns,
//! which componentize-qjs's synchronous exports do not do), but the event it
//! names leaves the table when the call returns, whether the plugin dropped
//! it or not.

use serde_json::{Map, Value, json};
use wasmtime::Store;
use wasmtime::component::{Component, InstancePre, Linker, Resource};

use crate::config::AppType;
use crate::oauth::ErrorCode;
use crate::plugin::engine::PluginState;
use crate::plugin::event::{Answer, Changes, ClaimValue, Denial, Event};

mod ce {
    wasmtime::component::bindgen!({
        path: "../wit/0.2.0/plugin.wit",
        world: "credentials-exchange",
        imports: { default: trappable },
        exports: { default: async },
        with: {
            "tessera:plugin/event.event": crate::plugin::event::Event,
        },
    });
}

mod authz {
    wasmtime::component::bindgen!({
        path: "../wit/0.2.0/plugin.wit",
        world: "authorize",
        imports: { default: trappable },
        exports: { default: async },
        with: {
            "tessera:plugin/types": super::ce::tessera::plugin::types,
            "tessera:plugin/host": super::ce::tessera::plugin::host,
            "tessera:plugin/event": super::ce::tessera::plugin::event,
        },
    });
}

use ce::tessera::plugin::{event as wit_event, host, types as wit};

/// The WIT package this module speaks.
pub const PACKAGE: &str = "tessera:plugin@0.2.0";

/// Adds the `host` and `event` interfaces to `linker`.
pub fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    use wasmtime::component::HasSelf;
    host::add_to_linker::<PluginState, HasSelf<PluginState>>(linker, |s| s)?;
    wit_event::add_to_linker::<PluginState, HasSelf<PluginState>>(linker, |s| s)?;
    wit::add_to_linker::<PluginState, HasSelf<PluginState>>(linker, |s| s)
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
    let mismatch = |export: &str, e: wasmtime::Error| {
        format!(
            "exports {export} with another signature ({}); rebuild it against {PACKAGE}",
            super::first_line(&e)
        )
    };
    let credentials_exchange = match component.get_export_index(None, "on-credentials-exchange") {
        None => None,
        Some(_) => Some(Pre::CredentialsExchange(
            ce::CredentialsExchangePre::new(pre.clone())
                .map_err(|e| mismatch("on-credentials-exchange", e))?,
        )),
    };
    let authorize = match component.get_export_index(None, "on-authorize") {
        None => None,
        Some(_) => Some(Pre::Authorize(
            authz::AuthorizePre::new(pre.clone()).map_err(|e| mismatch("on-authorize", e))?,
        )),
    };
    Ok((credentials_exchange, authorize))
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
    /// Calls the stage's export, passing it `event` for the call.
    pub async fn call(
        &self,
        store: &mut Store<PluginState>,
        event: &Event,
    ) -> wasmtime::Result<Answer> {
        let passed = store.data_mut().table().push(event.clone())?;
        let rep = passed.rep();
        let answer = match self {
            Instance::CredentialsExchange(i) => {
                i.call_on_credentials_exchange(&mut *store, passed).await
            }
            Instance::Authorize(i) => i.call_on_authorize(&mut *store, passed).await,
        };
        // The event leaves the table whatever the call did (the plugin may
        // have dropped it already): an instance kept warm must not read it
        // in a later call.
        let _ = store
            .data_mut()
            .table()
            .delete(Resource::<Event>::new_own(rep));
        Ok(answer?.map(changes).map_err(denial))
    }
}

impl wit::Host for PluginState {}

impl host::Host for PluginState {
    fn log(&mut self, level: wit::LogLevel, message: String) -> wasmtime::Result<()> {
        let level = match level {
            wit::LogLevel::Trace => "trace",
            wit::LogLevel::Debug => "debug",
            wit::LogLevel::Info => "info",
            wit::LogLevel::Warn => "warn",
            wit::LogLevel::Error => "error",
        };
        PluginState::log(self, level, message);
        Ok(())
    }

    fn config(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(PluginState::config(self, &key))
    }

    fn secret(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        Ok(PluginState::secret(self, &name))
    }
}

impl wit_event::Host for PluginState {}

impl wit_event::HostEvent for PluginState {
    fn client(&mut self, event: Resource<Event>) -> wasmtime::Result<wit::Client> {
        let c = &self.table().get(&event)?.facts.client;
        Ok(wit::Client {
            id: c.id.clone(),
            name: c.name.clone(),
            app_type: match c.app_type {
                AppType::Spa => wit::AppType::Spa,
                AppType::RegularWeb => wit::AppType::RegularWeb,
                AppType::Native => wit::AppType::Native,
                AppType::Machine => wit::AppType::Machine,
            },
            metadata: metadata(&c.metadata),
        })
    }

    fn api(&mut self, event: Resource<Event>) -> wasmtime::Result<Option<wit::Api>> {
        let e = self.table().get(&event)?;
        Ok(e.facts.api.as_ref().map(|a| wit::Api {
            identifier: a.identifier.clone(),
            name: a.name.clone(),
            scopes: a.scopes.clone(),
            metadata: metadata(&a.metadata),
        }))
    }

    fn user(&mut self, event: Resource<Event>) -> wasmtime::Result<Option<wit::User>> {
        let e = self.table().get(&event)?;
        Ok(e.facts.user.as_ref().map(|u| wit::User {
            id: u.id.clone(),
            email: u.email.clone(),
            email_verified: u.email_verified,
            name: u.name.clone(),
            app_metadata: metadata(&u.app_metadata),
            user_metadata: metadata(&u.user_metadata),
        }))
    }

    fn request(&mut self, event: Resource<Event>) -> wasmtime::Result<wit::Request> {
        let r = &self.table().get(&event)?.facts.request;
        Ok(wit::Request {
            ip: r.ip.clone(),
            user_agent: r.user_agent.clone(),
            hostname: r.hostname.clone(),
            method: r.method.clone(),
            params: r.params.clone(),
        })
    }

    fn transaction(&mut self, event: Resource<Event>) -> wasmtime::Result<wit::Transaction> {
        let t = &self.table().get(&event)?.facts.transaction;
        Ok(wit::Transaction {
            id: t.id.clone(),
            grant_type: t.grant_type.to_owned(),
            requested_scopes: t.requested_scopes.clone(),
            granted_scopes: t.granted_scopes.clone(),
            redirect_uri: t.redirect_uri.clone(),
            requested_audience: t.requested_audience.clone(),
        })
    }

    fn access_token(&mut self, event: Resource<Event>) -> wasmtime::Result<wit::TokenState> {
        let token = &self.table().get(&event)?.token;
        Ok(wit::TokenState {
            claims: metadata(&token.claims),
            scopes: token.scopes.clone(),
        })
    }

    fn id_token(&mut self, event: Resource<Event>) -> wasmtime::Result<Option<wit::TokenState>> {
        let e = self.table().get(&event)?;
        Ok(e.facts.user.is_some().then(|| wit::TokenState {
            claims: metadata(&e.token.id_claims),
            scopes: Vec::new(),
        }))
    }

    fn to_json(&mut self, event: Resource<Event>) -> wasmtime::Result<String> {
        Ok(event_json(self.table().get(&event)?).to_string())
    }

    fn drop(&mut self, event: Resource<Event>) -> wasmtime::Result<()> {
        // The plugin is done with it, during the call or after (when the
        // host has deleted it already).
        let _ = self.table().delete(event);
        Ok(())
    }
}

/// The event as the JSON object `to-json` documents.
pub fn event_json(e: &Event) -> Value {
    let f = &e.facts;
    let token = |claims: &Map<String, Value>, scopes: &[String]| json!({ "claims": claims, "scopes": scopes });
    json!({
        "client": f.client,
        "api": f.api,
        "user": f.user,
        "request": f.request,
        "transaction": f.transaction,
        "access_token": token(&e.token.claims, &e.token.scopes),
        "id_token": f.user.as_ref().map(|_| token(&e.token.id_claims, &[])),
    })
}

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

fn changes(c: wit::Changes) -> Changes {
    Changes {
        access_token_claims: claims(c.access_token_claims),
        id_token_claims: claims(c.id_token_claims),
        add_scopes: c.add_scopes,
        remove_scopes: c.remove_scopes,
    }
}

fn denial(d: wit::Denial) -> Denial {
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::Stage;
    use crate::plugin::event::{ClientFacts, Facts, RequestInfo, TokenShape, TransactionInfo};

    #[test]
    fn the_json_event_has_the_documented_shape() {
        let facts = Facts {
            client: ClientFacts {
                id: "c".into(),
                name: "C".into(),
                app_type: AppType::RegularWeb,
                metadata: serde_json::from_value(json!({"tier": "gold"})).unwrap(),
            },
            api: None,
            user: None,
            request: RequestInfo {
                params: vec![("scope".into(), "read".into())],
                ..Default::default()
            },
            transaction: TransactionInfo {
                grant_type: "client_credentials",
                ..Default::default()
            },
        };
        let event = Event {
            stage: Stage::CredentialsExchange,
            facts: Arc::new(facts),
            token: TokenShape {
                scopes: vec!["read".into()],
                ..Default::default()
            },
        };
        let v = event_json(&event);
        assert_eq!(v["client"]["app_type"], "regular_web");
        assert_eq!(v["client"]["metadata"]["tier"], "gold");
        assert_eq!(v["request"]["params"], json!([["scope", "read"]]));
        assert_eq!(v["transaction"]["grant_type"], "client_credentials");
        assert_eq!(v["access_token"], json!({"claims": {}, "scopes": ["read"]}));
        assert!(v["api"].is_null() && v["user"].is_null() && v["id_token"].is_null());
    }
}
