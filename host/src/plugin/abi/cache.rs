//! `tessera:cache@0.1.0` (`wit/cache/0.1.0/cache.wit`): the bindings of a
//! plugin's host-side cache and its host functions, over
//! [`crate::plugin::cache::Cache`]. A capability of its own, beside the
//! stage ABI: a component of any `tessera:plugin` version may import it.

use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};

use crate::plugin::engine::PluginState;

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/cache/0.1.0/cache.wit",
        world: "cache",
        imports: { default: trappable },
    });
}

use bindings::tessera::cache::store;

/// Adds the `store` interface to `linker`.
pub fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    store::add_to_linker::<PluginState, HasSelf<PluginState>>(linker, |s| s)
}

impl store::Host for PluginState {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<store::Entry>> {
        Ok(self.cache().get(&key).map(|entry| store::Entry {
            value: entry.value,
            expires_at: entry.expires_at,
        }))
    }

    fn set(
        &mut self,
        key: String,
        value: String,
        ttl_ms: Option<u64>,
    ) -> wasmtime::Result<Result<u64, String>> {
        Ok(self
            .cache()
            .set(key, value, ttl_ms.map(Duration::from_millis)))
    }

    fn delete(&mut self, key: String) -> wasmtime::Result<bool> {
        Ok(self.cache().delete(&key))
    }
}
