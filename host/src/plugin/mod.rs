//! The plugin runtime: WebAssembly components that shape tokens.
//!
//! - [`engine`] owns the one wasmtime `Engine` (pooling allocator, epoch ticker)
//!   and the linker; it is the only module allowed `unsafe` (loading compiled
//!   artifacts from the on-disk cache).
//! - [`bindings`] holds the generated WIT bindings, private to this module.
//! - [`registry`] compiles (or loads from cache) and pre-instantiates the
//!   configured plugins.
//! - [`pipeline`] runs a stage: plugins in order, each in a fresh `Store`,
//!   with a deadline, a memory cap and bounded output.
//! - [`convert`] is the only place WIT types and domain types meet.

mod bindings;
pub mod convert;
#[allow(unsafe_code)]
pub mod engine;
pub mod pipeline;
pub mod registry;

pub use engine::Runtime;
pub use pipeline::{PipelineError, PluginRun, RunOutcome, TokenShape};
pub use registry::{LoadError, LoadedPlugin, Stages};
