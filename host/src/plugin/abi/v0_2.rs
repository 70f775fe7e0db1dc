//! `tessera:plugin@0.2.0` (`wit/0.2.0/plugin.wit`): the bindings, the host
//! functions and the `event` resource. The only module that sees this
//! version's generated bindings; its `types` interface repeats 0.1.0's, so
//! the records and their conversions are [`v0_1`]'s.
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

use crate::plugin::engine::PluginState;
use crate::plugin::event::{Answer, Event};

mod ce {
    wasmtime::component::bindgen!({
        path: "../wit/0.2.0/plugin.wit",
        world: "credentials-exchange",
        imports: { default: trappable },
        exports: { default: async },
        with: {
            // 0.2.0 repeats 0.1.0's types unchanged: one set of Rust types
            // and conversions serves both (`v0_1`).
            "tessera:plugin/types": crate::plugin::abi::v0_1::types,
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

use super::v0_1::{self, types as wit};
use ce::tessera::plugin::{event as wit_event, host};

/// The WIT package this module speaks.
pub const PACKAGE: &str = "tessera:plugin@0.2.0";

/// Adds the `host` and `event` interfaces to `linker`.
pub fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    use wasmtime::component::HasSelf;
    host::add_to_linker::<PluginState, HasSelf<PluginState>>(linker, |s| s)?;
    wit_event::add_to_linker::<PluginState, HasSelf<PluginState>>(linker, |s| s)?;
    // `types` holds types only: an empty instance under this version's name.
    linker.instance("tessera:plugin/types@0.2.0")?;
    Ok(())
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
    /// Calls the stage's export, passing it `event` for the call.
    pub async fn call(
        &self,
        store: &mut Store<PluginState>,
        event: Event,
    ) -> wasmtime::Result<Answer> {
        let passed = store.data_mut().table().push(event)?;
        let rep = passed.rep();
        let answer = match self {
            Instance::CredentialsExchange(i) => {
                i.call_on_credentials_exchange(&mut *store, passed).await
            }
            Instance::Authorize(i) => i.call_on_authorize(&mut *store, passed).await,
        };
        // The event leaves the table whatever the call did (the plugin may
        // have dropped it already): an instance kept warm cannot read it in
        // a later call. A handle it kept then names nothing, or, once the
        // table reuses the slot, that later call's own event: never another
        // plugin's, since a store serves one plugin.
        let _ = store
            .data_mut()
            .table()
            .delete(Resource::<Event>::new_own(rep));
        Ok(answer?.map(v0_1::changes).map_err(v0_1::denial))
    }
}

impl host::Host for PluginState {
    fn log(&mut self, level: wit::LogLevel, message: String) -> wasmtime::Result<()> {
        PluginState::log(self, v0_1::log_level(level), message);
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
        Ok(v0_1::client(&self.table().get(&event)?.facts.client))
    }

    fn api(&mut self, event: Resource<Event>) -> wasmtime::Result<Option<wit::Api>> {
        Ok(self.table().get(&event)?.facts.api.as_ref().map(v0_1::api))
    }

    fn user(&mut self, event: Resource<Event>) -> wasmtime::Result<Option<wit::User>> {
        Ok(self
            .table()
            .get(&event)?
            .facts
            .user
            .as_ref()
            .map(v0_1::user))
    }

    fn request(&mut self, event: Resource<Event>) -> wasmtime::Result<wit::Request> {
        Ok(v0_1::request(&self.table().get(&event)?.facts.request))
    }

    fn transaction(&mut self, event: Resource<Event>) -> wasmtime::Result<wit::Transaction> {
        Ok(v0_1::transaction(
            &self.table().get(&event)?.facts.transaction,
        ))
    }

    fn access_token(&mut self, event: Resource<Event>) -> wasmtime::Result<wit::TokenState> {
        let token = &self.table().get(&event)?.token;
        Ok(v0_1::token_state(&token.claims, &token.scopes))
    }

    fn id_token(&mut self, event: Resource<Event>) -> wasmtime::Result<Option<wit::TokenState>> {
        let e = self.table().get(&event)?;
        Ok(e.facts
            .user
            .is_some()
            .then(|| v0_1::token_state(&e.token.id_claims, &[])))
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::{AppType, Stage};
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
