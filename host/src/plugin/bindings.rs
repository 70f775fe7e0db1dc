//! Bindings generated from `wit/`, one module per single-stage world. The
//! `authorize` world reuses the `credentials-exchange` world's types and host
//! interface, so both stages share one set of Rust types.

pub(crate) mod ce {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "credentials-exchange",
        exports: { default: async },
    });
}

pub(crate) mod authz {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "authorize",
        exports: { default: async },
        with: {
            "tessera:plugin/types": super::ce::tessera::plugin::types,
            "tessera:plugin/host": super::ce::tessera::plugin::host,
        },
    });
}

pub(crate) use ce::tessera::plugin::host;
pub(crate) use ce::tessera::plugin::types;
