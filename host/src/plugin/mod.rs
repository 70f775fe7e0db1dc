//! The plugin runtime: WebAssembly components that shape tokens.
//!
//! - [`engine`] owns the one wasmtime `Engine` (pooling allocator, epoch ticker)
//!   and the linker; it is the only module allowed `unsafe` (loading compiled
//!   artifacts from the on-disk cache).
//! - [`abi`] has one module per WIT version, the only code that sees
//!   generated bindings.
//! - [`event`] is what a stage passes to a plugin and takes back, in the
//!   host's own types.
//! - [`lease`] holds an instance for one call: acquiring it (fresh or warm),
//!   the deadline, the call, giving it back; and starts a plugin's warm
//!   instances ahead of calls.
//! - [`registry`] compiles (or loads from cache) and pre-instantiates the
//!   configured plugins.
//! - [`pipeline`] runs a stage: plugins in order, each in its own `Store`,
//!   with a deadline, a memory cap and bounded output.
//! - [`warm`] keeps idle instances of plugins whose runtime is expensive to
//!   start (JavaScript, Python), when their configuration allows it.
//! - [`metadata`] reads what a component file says about itself.
//! - [`compare`] says how two runs of a plugin on the same event differ.
//! - [`cache`] is each plugin's bounded host-side cache.
//! - [`egress`] sends the outgoing HTTP requests a plugin's `egress` allows.
//! - [`signature`] signs component files and checks the signature a
//!   plugin's `signers` ask for.

pub mod abi;
pub mod cache;
pub mod compare;
pub mod egress;
#[allow(unsafe_code)]
pub mod engine;
pub mod event;
mod lease;
pub mod metadata;
pub mod pipeline;
pub mod registry;
pub mod signature;
mod warm;

pub use engine::Runtime;
pub use event::TokenShape;
pub use lease::start_warm_instances;
pub use pipeline::{PipelineError, PluginRun, RunOutcome};
pub use registry::{LoadError, LoadedPlugin, Stages};
pub use warm::Warm;
