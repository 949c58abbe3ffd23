//! mlc-wasm: the sandboxed WebAssembly host that runs custom aggregates (plugins).
//!
//! Entry points: [`inspect`] (what `mlc lint` calls: validate a module and read its
//! signature), [`PluginHost::load`] (what the executor calls per `plugin` declaration) and
//! [`LoadedPlugin::accumulator`] / [`LoadedPlugin::session`] (one sandbox per evaluation).
//! The ABI is described in `docs/plugins.md` and checked in [`abi`].

pub(crate) mod abi;
mod accumulator;
mod cache;
mod engines;
mod failure;
mod host;
mod validate;

pub use abi::PluginMeta;
pub use cache::{CacheHit, ModuleCache, default_cache_dir};
pub use failure::{FailureCounts, PluginFailure};
pub use host::{Limits, LoadedPlugin, PluginHost, PluginSession, inspect, inspect_meta};
