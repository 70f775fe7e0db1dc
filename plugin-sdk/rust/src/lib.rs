//! Write Tessera token-pipeline plugins in Rust.
//!
//! A Tessera plugin is a WebAssembly component that the issuer runs at a stage
//! of a token request. This crate hides the component ABI
//! (`wit/0.2.0/plugin.wit`, package `tessera:plugin@0.2.0`) behind a few plain
//! Rust types:
//!
//! - the stage inputs, [`CredentialsExchangeEvent`] (client credentials grant)
//!   and [`AuthorizeEvent`] (a user signed in), made of [`Client`], [`Api`],
//!   [`User`], [`Request`], [`Transaction`] and [`TokenState`];
//! - the outputs: [`Changes`] to the tokens, or a [`Denial`] that fails the
//!   request with an OAuth error;
//! - a [`Context`] to read the plugin's configuration and secrets and to write
//!   log lines into the request's trace;
//! - the [`Plugin`] trait, and the [`export!`] macro that turns a type
//!   implementing it into a component.
//!
//! Metadata and claim values are [`serde_json::Value`]s, re-exported as
//! [`Value`] together with [`json!`] and [`Map`].
//!
//! # A complete plugin
//!
//! `Cargo.toml`:
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib", "rlib"]
//!
//! [dependencies]
//! tessera-plugin-sdk = { path = "../../plugin-sdk/rust" }
//! ```
//!
//! `src/lib.rs`, with its unit test (plugin logic runs natively, no
//! WebAssembly needed):
//!
//! ```rust,standalone_crate
//! use tessera_plugin_sdk::{Changes, Context, CredentialsExchangeEvent, Denial, Plugin};
//!
//! /// Puts the calling application's tier into the access token.
//! pub struct TierClaim;
//!
//! impl Plugin for TierClaim {
//!     fn on_credentials_exchange(
//!         event: &CredentialsExchangeEvent,
//!         ctx: &Context,
//!     ) -> Result<Changes, Denial> {
//!         let Some(tier) = event.client.metadata.get("tier") else {
//!             return Err(Denial::access_denied("this API is for partners with a tier"));
//!         };
//!         let claim = ctx.config("claim").unwrap_or_else(|| "tier".to_owned());
//!         ctx.debug(format!("tier of {}: {tier}", event.client.id));
//!         let mut changes = Changes::default();
//!         changes.set_access_token_claim(claim, tier.clone());
//!         Ok(changes)
//!     }
//! }
//!
//! tessera_plugin_sdk::export!(TierClaim);
//!
//! # fn main() {
//! // #[cfg(test)] mod tests { ... }
//! use tessera_plugin_sdk::{Api, AppType, Client, json};
//!
//! let client = Client::new("acme-sync", "ACME order sync", AppType::Machine)
//!     .with_metadata("tier", "gold");
//! let api = Api::new("https://orders.example.com", "Orders API");
//! let event = CredentialsExchangeEvent::new(client, api);
//! let ctx = Context::mock().with_config("claim", "https://claims.example.com/tier");
//!
//! let changes = TierClaim::on_credentials_exchange(&event, &ctx).unwrap();
//! assert_eq!(
//!     changes.access_token_claim("https://claims.example.com/tier"),
//!     Some(&json!("gold")),
//! );
//! assert_eq!(ctx.logs().len(), 1);
//! # }
//! ```
//!
//! Build it with `tessera plugin build DIR`: for `wasm32-unknown-unknown`,
//! without WASI, with this SDK's allocator (feature `allocator`), made a
//! component by Tessera. A plugin that needs std's clock, environment or
//! standard streams sets `wasi = true` under `[package.metadata.tessera]` in
//! its `Cargo.toml` and is built for `wasm32-wasip2` (also what
//! `cargo build --release --target wasm32-wasip2` makes by hand; the
//! component is `target/wasm32-wasip2/release/<lib name>.wasm`).
//!
//! # Panics are traps
//!
//! A plugin that panics traps: the host fails the request per the plugin's
//! `on_error` setting (`server_error` by default). Panic on configuration
//! errors (a required config key missing, malformed API metadata) with a
//! message that names the key; the SDK writes the panic message to the
//! request's log at error level before the trap, so it shows up in the trace.
//! Deny (return a [`Denial`]) when the *request* is not acceptable.

#[cfg(all(
    feature = "allocator",
    target_family = "wasm",
    target_os = "unknown",
    not(target_feature = "atomics")
))]
#[allow(
    unsafe_code,
    reason = "an allocator hands out raw memory; the unsafe blocks are in this one module"
)]
mod allocator;
mod changes;
mod context;
mod convert;
mod event;
mod part;

pub use serde_json::{Map, Value, json};

pub use crate::changes::{Changes, Denial, DenyCode};
pub use crate::context::{ConfigError, Context, Level};
pub use crate::event::{
    Api, AppType, AuthorizeEvent, Client, CredentialsExchangeEvent, Metadata, ParseAppTypeError,
    Request, TokenState, Transaction, User,
};
pub use crate::part::Part;

// Lets the generated bindings name this crate by its own name (their runtime
// path), both here and where `export!` expands.
extern crate self as tessera_plugin_sdk;

/// What a plugin does at each stage of the token pipeline.
///
/// Both functions default to "no changes", so implement only the stages the
/// plugin cares about. They are associated functions: a plugin keeps no state
/// between calls (each request gets a fresh instance), so there is no `self`.
///
/// Return `Ok` with the [`Changes`] to make (possibly empty) or `Err` with a
/// [`Denial`] to fail the request with an OAuth error.
///
/// # Example
///
/// ```
/// use tessera_plugin_sdk::{AuthorizeEvent, Changes, Context, Denial, Plugin};
///
/// /// Refuses users whose email address is not verified.
/// struct VerifiedOnly;
///
/// impl Plugin for VerifiedOnly {
///     fn on_authorize(event: &AuthorizeEvent, _ctx: &Context) -> Result<Changes, Denial> {
///         if event.user.email_verified {
///             Ok(Changes::default())
///         } else {
///             Err(Denial::access_denied("verify your email address first"))
///         }
///     }
/// }
/// ```
pub trait Plugin {
    /// Runs in the client credentials grant, after the client authenticated
    /// and the issuer's policy allowed the request, before the access token is
    /// signed. Scopes can only be removed at this stage.
    ///
    /// The default makes no changes.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::{Changes, Context, CredentialsExchangeEvent, Denial, Plugin};
    ///
    /// struct ClientName;
    ///
    /// impl Plugin for ClientName {
    ///     fn on_credentials_exchange(
    ///         event: &CredentialsExchangeEvent,
    ///         _ctx: &Context,
    ///     ) -> Result<Changes, Denial> {
    ///         let mut changes = Changes::default();
    ///         changes.set_access_token_claim("client_name", event.client.name.as_str());
    ///         Ok(changes)
    ///     }
    /// }
    /// ```
    fn on_credentials_exchange(
        event: &CredentialsExchangeEvent,
        ctx: &Context,
    ) -> Result<Changes, Denial> {
        let _ = (event, ctx);
        Ok(Changes::default())
    }

    /// Runs in user flows, after the user signed in and the API's policy
    /// allowed the request, before the authorization code is issued. A denial
    /// is redirected to the client as an OAuth error.
    ///
    /// The default makes no changes.
    ///
    /// # Example
    ///
    /// ```
    /// use tessera_plugin_sdk::{AuthorizeEvent, Changes, Context, Denial, Plugin};
    ///
    /// struct Email;
    ///
    /// impl Plugin for Email {
    ///     fn on_authorize(event: &AuthorizeEvent, _ctx: &Context) -> Result<Changes, Denial> {
    ///         let mut changes = Changes::default();
    ///         if let Some(email) = &event.user.email {
    ///             changes.set_id_token_claim("https://claims.example.com/email", email.as_str());
    ///         }
    ///         Ok(changes)
    ///     }
    /// }
    /// ```
    fn on_authorize(event: &AuthorizeEvent, ctx: &Context) -> Result<Changes, Denial> {
        let _ = (event, ctx);
        Ok(Changes::default())
    }
}

/// Makes a [`Plugin`] the component's implementation of its stages.
///
/// Invoke it once, at the top level of the plugin crate (a `cdylib`):
///
/// - `export!(MyPlugin)` exports both `on-credentials-exchange` and
///   `on-authorize` (world `plugin`);
/// - `export!(MyPlugin, credentials_exchange)` exports only
///   `on-credentials-exchange` (world `credentials-exchange`), and
///   `export!(MyPlugin, authorize)` only `on-authorize` (world
///   `authorize`). A plugin for one stage should say which: the host then
///   knows it runs there only, and `tessera plugin inspect` shows it.
///
/// Each call passes the plugin the host's event; the SDK wraps it in the
/// event types (whose parts are read from the host when first used), runs
/// the plugin with a [`Context`] backed by the host, and converts its answer
/// back.
///
/// In a native build (`cargo test`) the exports are inert: tests call the
/// [`Plugin`] functions directly with a [`Context::mock`].
///
/// # Example
///
/// ```rust,standalone_crate
/// use tessera_plugin_sdk::{Changes, Context, CredentialsExchangeEvent, Denial, Plugin};
///
/// /// A plugin that changes nothing, for client credentials only.
/// pub struct Noop;
///
/// impl Plugin for Noop {
///     fn on_credentials_exchange(
///         _event: &CredentialsExchangeEvent,
///         _ctx: &Context,
///     ) -> Result<Changes, Denial> {
///         Ok(Changes::default())
///     }
/// }
///
/// tessera_plugin_sdk::export!(Noop, credentials_exchange);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! export {
    ($plugin:ty) => {
        #[allow(unsafe_code)]
        const _: () = {
            struct __TesseraPluginAdapter;

            impl $crate::__bindings::plugin::Guest for __TesseraPluginAdapter {
                fn on_credentials_exchange(
                    event: $crate::__bindings::Event,
                ) -> ::core::result::Result<$crate::__bindings::Changes, $crate::__bindings::Denial>
                {
                    $crate::__private::credentials_exchange::<$plugin>(event)
                }

                fn on_authorize(
                    event: $crate::__bindings::Event,
                ) -> ::core::result::Result<$crate::__bindings::Changes, $crate::__bindings::Denial>
                {
                    $crate::__private::authorize::<$plugin>(event)
                }
            }

            $crate::__bindings::plugin::export!(__TesseraPluginAdapter with_types_in $crate::__bindings::plugin);
        };
    };
    ($plugin:ty, credentials_exchange) => {
        #[allow(unsafe_code)]
        const _: () = {
            struct __TesseraPluginAdapter;

            impl $crate::__bindings::credentials_exchange::Guest for __TesseraPluginAdapter {
                fn on_credentials_exchange(
                    event: $crate::__bindings::Event,
                ) -> ::core::result::Result<$crate::__bindings::Changes, $crate::__bindings::Denial>
                {
                    $crate::__private::credentials_exchange::<$plugin>(event)
                }
            }

            $crate::__bindings::credentials_exchange::export!(
                __TesseraPluginAdapter with_types_in $crate::__bindings::credentials_exchange
            );
        };
    };
    ($plugin:ty, authorize) => {
        #[allow(unsafe_code)]
        const _: () = {
            struct __TesseraPluginAdapter;

            impl $crate::__bindings::authorize::Guest for __TesseraPluginAdapter {
                fn on_authorize(
                    event: $crate::__bindings::Event,
                ) -> ::core::result::Result<$crate::__bindings::Changes, $crate::__bindings::Denial>
                {
                    $crate::__private::authorize::<$plugin>(event)
                }
            }

            $crate::__bindings::authorize::export!(
                __TesseraPluginAdapter with_types_in $crate::__bindings::authorize
            );
        };
    };
}

/// The generated component bindings, one module per world of
/// `tessera:plugin@0.2.0` (`wit/0.2.0/plugin.wit`), sharing one set of
/// types. Not part of the API: only [`export!`] uses them.
#[doc(hidden)]
#[allow(missing_docs, unsafe_code, clippy::all)]
pub mod __bindings {
    pub mod plugin {
        wit_bindgen::generate!({
            path: "wit/0.2.0/plugin.wit",
            world: "plugin",
            pub_export_macro: true,
            default_bindings_module: "tessera_plugin_sdk::__bindings::plugin",
            runtime_path: "tessera_plugin_sdk::__bindings::__rt",
        });
    }

    pub mod credentials_exchange {
        wit_bindgen::generate!({
            path: "wit/0.2.0/plugin.wit",
            world: "credentials-exchange",
            pub_export_macro: true,
            default_bindings_module: "tessera_plugin_sdk::__bindings::credentials_exchange",
            runtime_path: "tessera_plugin_sdk::__bindings::__rt",
            with: {
                "tessera:plugin/types@0.2.0": crate::__bindings::types,
                "tessera:plugin/host@0.2.0": crate::__bindings::host,
                "tessera:plugin/event@0.2.0": crate::__bindings::event,
            },
        });
    }

    pub mod authorize {
        wit_bindgen::generate!({
            path: "wit/0.2.0/plugin.wit",
            world: "authorize",
            pub_export_macro: true,
            default_bindings_module: "tessera_plugin_sdk::__bindings::authorize",
            runtime_path: "tessera_plugin_sdk::__bindings::__rt",
            with: {
                "tessera:plugin/types@0.2.0": crate::__bindings::types,
                "tessera:plugin/host@0.2.0": crate::__bindings::host,
                "tessera:plugin/event@0.2.0": crate::__bindings::event,
            },
        });
    }

    pub use event::Event;
    pub use plugin::tessera::plugin::{event, host, types};
    pub use types::{Changes, Denial};
    pub use wit_bindgen::rt as __rt;
}

/// The glue [`export!`] expands to. Not part of the API.
#[doc(hidden)]
pub mod __private {
    use crate::__bindings as wit;
    use crate::{Context, Plugin, convert};

    /// Runs `P` at the credentials-exchange stage on the host's event,
    /// which stays alive (its parts readable) until the plugin returns.
    pub fn credentials_exchange<P: Plugin>(
        host_event: wit::Event,
    ) -> Result<wit::Changes, wit::Denial> {
        convert::install_panic_hook();
        let event = convert::credentials_exchange_event(&host_event);
        let ctx = Context::host();
        P::on_credentials_exchange(&event, &ctx)
            .map(convert::changes)
            .map_err(convert::denial)
    }

    /// Runs `P` at the authorize stage on the host's event, which stays
    /// alive until the plugin returns.
    pub fn authorize<P: Plugin>(host_event: wit::Event) -> Result<wit::Changes, wit::Denial> {
        convert::install_panic_hook();
        let event = convert::authorize_event(&host_event);
        let ctx = Context::host();
        P::on_authorize(&event, &ctx)
            .map(convert::changes)
            .map_err(convert::denial)
    }
}
