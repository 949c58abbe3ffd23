//! mlc-wasm: the sandboxed WebAssembly host that runs custom aggregates (plugins).
//!
//! Entry points: [`inspect`] (what `mlc lint` calls: validate a module and read its
//! signature), [`PluginHost::load`] (what the executor calls per `plugin` declaration) and
//! [`LoadedPlugin::accumulator`] / [`LoadedPlugin::session`] (one sandbox per evaluation).
//! The ABI is described in `docs/plugins.md` and checked in [`abi`].

pub mod abi;
mod accumulator;
mod cache;
mod engines;
mod failure;
mod host;
mod validate;

pub use abi::PluginMeta;
pub use accumulator::PluginAccumulator;
pub use cache::{CacheHit, ModuleCache, default_cache_dir};
pub use failure::{During, FailureCounts, PluginError, PluginFailure};
pub use host::{
    CHUNK_ROWS, Limits, LoadedPlugin, PluginHost, PluginSession, chunk_rows, inspect, inspect_meta,
};
