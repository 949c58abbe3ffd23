//! The plugin host: loads and validates modules, and runs them in sandboxed sessions (one
//! wasmtime `Store` each) with a memory cap, a time budget and an optional fuel budget.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mlc_engine::functions::{Accumulator, EvalError};
use mlc_engine::plan::{PluginDecl, PluginSignature};
use wasmtime::{
    Engine, Instance, InstancePre, Linker, Memory, Module, ResourceLimiter, Store, Trap, TypedFunc,
};

use crate::abi::{self, ABI_VERSION, PluginMeta};
use crate::cache::{CacheHit, ModuleCache, default_cache_dir, sha256_hex};
use crate::engines;
use crate::failure::{During, FailureCounts, PluginError, PluginFailure};
use crate::validate::check_module;

/// The sandbox bounds of one plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Cap on the plugin's linear memory, in bytes.
    pub memory_bytes: u64,
    /// Wall-clock time the plugin may spend running per session (one evaluation), summed
    /// over its calls.
    pub timeout: Duration,
    /// Instruction budget per session; `None` = unmetered.
    pub fuel: Option<u64>,
}

impl Limits {
    pub(crate) const DEFAULT_MEMORY_BYTES: u64 = 64 * 1024 * 1024;
    pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

    /// The limits a declaration asks for, with the host's defaults for what it leaves out.
    pub(crate) fn from_decl(decl: &PluginDecl) -> Limits {
        Limits {
            memory_bytes: decl.memory_bytes.unwrap_or(Self::DEFAULT_MEMORY_BYTES),
            timeout: decl
                .timeout_secs
                .map(Duration::from_secs)
                .unwrap_or(Self::DEFAULT_TIMEOUT),
            fuel: decl.fuel,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: Self::DEFAULT_MEMORY_BYTES,
            timeout: Self::DEFAULT_TIMEOUT,
            fuel: None,
        }
    }
}

/// Human form of a byte count for messages: `64 MiB`.
pub(crate) fn bytes_text(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{} {unit}", bytes / size);
        }
    }
    for (unit, size) in UNITS {
        if bytes >= size {
            return format!("{:.1} {unit}", bytes as f64 / size as f64);
        }
    }
    format!("{bytes} bytes")
}

pub(crate) fn duration_text(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{d:?}")
    }
}

/// Store data: the memory limiter, which remembers why it refused so errors can say so.
pub(crate) struct HostState {
    memory_cap: usize,
    refused: Option<usize>,
}

impl ResourceLimiter for HostState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_cap {
            self.refused = Some(desired);
            // An error (not `Ok(false)`) traps at once: a plugin that ignores a failed
            // `memory.grow` would otherwise fail later with a confusing out-of-bounds trap.
            return Err(wasmtime::format_err!("memory limit reached"));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }

    fn instances(&self) -> usize {
        1
    }
    fn memories(&self) -> usize {
        1
    }
    fn tables(&self) -> usize {
        4
    }
}

/// The typed exports, looked up once per instance.
struct Exports {
    memory: Memory,
    abi_version: TypedFunc<(), i32>,
    meta: TypedFunc<(), i64>,
    alloc: TypedFunc<i32, i32>,
    free: TypedFunc<(i32, i32), ()>,
    init: TypedFunc<(), i32>,
    update: TypedFunc<(i32, i32, i32, i32), i32>,
    merge: TypedFunc<(i32, i32), i32>,
    finalize: TypedFunc<(i32, i32), i32>,
    agg_free: TypedFunc<i32, ()>,
    last_error: TypedFunc<(), i64>,
}

impl Exports {
    fn new(store: &mut Store<HostState>, instance: &Instance) -> Result<Exports, String> {
        fn f<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
            store: &mut Store<HostState>,
            instance: &Instance,
            name: &str,
        ) -> Result<TypedFunc<P, R>, String> {
            instance
                .get_typed_func::<P, R>(&mut *store, name)
                .map_err(|e| format!("its export `{name}` is unusable: {e}"))
        }
        let memory = instance
            .get_memory(&mut *store, abi::MEMORY_EXPORT)
            .ok_or("it does not export its linear memory as `memory`")?;
        Ok(Exports {
            memory,
            abi_version: f(store, instance, "mlc_abi_version")?,
            meta: f(store, instance, "mlc_meta")?,
            alloc: f(store, instance, "mlc_alloc")?,
            free: f(store, instance, "mlc_free")?,
            init: f(store, instance, "mlc_agg_init")?,
            update: f(store, instance, "mlc_agg_update")?,
            merge: f(store, instance, "mlc_agg_merge")?,
            finalize: f(store, instance, "mlc_agg_finalize")?,
            agg_free: f(store, instance, "mlc_agg_free")?,
            last_error: f(store, instance, "mlc_last_error")?,
        })
    }
}

/// Rows per chunk copied into the plugin's memory: 64k rows of f64 is 512 KiB per column,
/// so a 10M-row window never needs more than that at once.
pub(crate) const CHUNK_ROWS: usize = 64 * 1024;

/// Rows per chunk for a plugin with `n_cols` arguments under a memory cap: at most
/// [`CHUNK_ROWS`], and a buffer of at most an eighth of the cap, so that a plugin declared
/// with a small `memory` still has room for its own state.
pub(crate) fn chunk_rows(memory_bytes: u64, n_cols: usize) -> usize {
    let per_row = 8 * n_cols.max(1) as u64;
    let fit = usize::try_from(memory_bytes / 8 / per_row).unwrap_or(CHUNK_ROWS);
    fit.clamp(256, CHUNK_ROWS)
}

/// A host-owned buffer inside the plugin's memory: a table of `n_cols` column pointers
/// followed by `n_cols` columns of `rows` f64 values (plus 8 bytes for a finalize result).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scratch {
    pub ptr: u32,
    pub size: u32,
    pub n_cols: usize,
    pub rows: usize,
}

impl Scratch {
    fn table_bytes(n_cols: usize) -> usize {
        (n_cols * 4).div_ceil(8) * 8
    }
    pub(crate) fn bytes_for(n_cols: usize, rows: usize) -> usize {
        8 + Self::table_bytes(n_cols) + n_cols * rows * 8
    }
    pub(crate) fn out_ptr(&self) -> u32 {
        self.ptr
    }
    pub(crate) fn table_ptr(&self) -> u32 {
        self.ptr + 8
    }
    pub(crate) fn column_ptr(&self, col: usize) -> u32 {
        (self.ptr as usize + 8 + Self::table_bytes(self.n_cols) + col * self.rows * 8) as u32
    }
}

/// One instance of a plugin in its own `Store`: the unit of isolation. After a trap or a
/// limit hit the instance is poisoned (its state may be half-updated) and every later call
/// reports the first failure.
pub(crate) struct Sandbox {
    pub name: String,
    pub limits: Limits,
    store: Store<HostState>,
    exports: Exports,
    spent: Duration,
    poisoned: Option<PluginError>,
    pub scratch: Option<Scratch>,
    /// Where failures are counted, when the session was given a tally.
    failures: Option<FailureCounts>,
}

impl Sandbox {
    fn new(
        name: &str,
        engine: &Engine,
        pre: &InstancePre<HostState>,
        limits: Limits,
        failures: Option<FailureCounts>,
    ) -> Result<Sandbox, PluginError> {
        let memory_cap = usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX);
        let mut store = Store::new(
            engine,
            HostState {
                memory_cap,
                refused: None,
            },
        );
        store.limiter(|s| s as &mut dyn ResourceLimiter);
        if let Some(fuel) = limits.fuel {
            store.set_fuel(fuel).map_err(|e| {
                PluginError::host(
                    name,
                    PluginFailure::Other(format!("cannot set the fuel budget: {e}")),
                )
            })?;
        }
        store.set_epoch_deadline(engines::ticks_for(limits.timeout));
        let started = Instant::now();
        let instance = pre.instantiate(&mut store);
        let spent = started.elapsed();
        let instance = instance.map_err(|e| {
            let failure = match store.data().refused {
                Some(desired) => PluginFailure::Memory {
                    limit: limits.memory_bytes,
                    asked: desired as u64,
                },
                None => classify(&e, &limits, None),
            };
            PluginError::new(name, During::Start, failure)
        })?;
        let exports = Exports::new(&mut store, &instance)
            .map_err(|e| PluginError::host(name, PluginFailure::Other(e)))?;
        Ok(Sandbox {
            name: name.to_string(),
            limits,
            store,
            exports,
            spent,
            poisoned: None,
            scratch: None,
            failures,
        })
    }

    /// Runs one of the calls the host makes on behalf of an accumulator and counts its
    /// failure, if it has a tally: once per failing call, not for the repeats of a sandbox
    /// that had already failed. A call that poisons the sandbox without returning an error
    /// (a failed `mlc_last_error` behind an undefined result, a failed `mlc_agg_free`)
    /// counts too.
    fn counted<R>(
        &mut self,
        f: impl FnOnce(&mut Sandbox) -> Result<R, PluginError>,
    ) -> Result<R, PluginError> {
        let was_poisoned = self.poisoned.is_some();
        let result = f(self);
        if !was_poisoned && let Some(failures) = &self.failures {
            let reason = match (&result, &self.poisoned) {
                (Err(e), _) => Some(e.reason()),
                (Ok(_), Some(p)) => Some(p.reason()),
                (Ok(_), None) => None,
            };
            if let Some(reason) = reason {
                failures.record(&self.name, reason);
            }
        }
        result
    }

    /// Poisons the sandbox with `failure` and returns it.
    fn poison(&mut self, failure: PluginError) -> PluginError {
        self.poisoned = Some(failure.clone());
        failure
    }

    /// Runs one call into the plugin under the session's remaining time budget; any trap
    /// or limit poisons the sandbox.
    fn call<R>(
        &mut self,
        what: &'static str,
        f: impl FnOnce(&Exports, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        if let Some(reason) = &self.poisoned {
            return Err(reason.clone());
        }
        let remaining = self.limits.timeout.saturating_sub(self.spent);
        if remaining.is_zero() {
            let failure = PluginFailure::Timeout {
                limit: self.limits.timeout,
            };
            return Err(self.poison(PluginError::new(&self.name, During::BetweenCalls, failure)));
        }
        self.store.set_epoch_deadline(engines::ticks_for(remaining));
        let started = Instant::now();
        let result = f(&self.exports, &mut self.store);
        self.spent += started.elapsed();
        result.map_err(|e| {
            let failure = classify(&e, &self.limits, self.store.data().refused);
            self.poison(PluginError::new(&self.name, During::Call(what), failure))
        })
    }

    fn memory_len(&self) -> usize {
        self.exports.memory.data_size(&self.store)
    }

    /// Copies `len` bytes at `ptr` out of the plugin's memory, if they lie inside it.
    fn read_bytes(&self, ptr: u32, len: u32) -> Option<Vec<u8>> {
        let start = ptr as usize;
        let end = start.checked_add(len as usize)?;
        self.exports
            .memory
            .data(&self.store)
            .get(start..end)
            .map(<[u8]>::to_vec)
    }

    /// The plugin's last error message, or a note that it gave none.
    fn last_error(&mut self) -> String {
        let packed = match self.call("mlc_last_error", |e, s| e.last_error.call(s, ())) {
            Ok(packed) => packed,
            Err(reason) => return reason.to_string(),
        };
        let (ptr, len) = abi::unpack_ptr_len(packed);
        if len == 0 {
            return "(the plugin gave no message)".to_string();
        }
        match self.read_bytes(ptr, len.min(abi::MAX_ERROR_BYTES)) {
            Some(bytes) => String::from_utf8_lossy(&bytes).trim().to_string(),
            None => "(its mlc_last_error points outside its memory)".to_string(),
        }
    }

    /// Reads and validates the ABI version and metadata.
    fn read_meta(&mut self) -> Result<PluginMeta, String> {
        let version = self
            .call("mlc_abi_version", |e, s| e.abi_version.call(s, ()))
            .map_err(|e| e.to_string())?;
        if version != ABI_VERSION {
            return Err(format!(
                "it speaks plugin ABI version {version}, but this mlc speaks version \
                 {ABI_VERSION}; rebuild it with a matching mlc-plugin-sdk (see docs/plugins.md)"
            ));
        }
        let packed = self
            .call("mlc_meta", |e, s| e.meta.call(s, ()))
            .map_err(|e| e.to_string())?;
        let (ptr, len) = abi::unpack_ptr_len(packed);
        if len == 0 || len > abi::MAX_META_BYTES {
            return Err(format!(
                "its metadata (mlc_meta) is {len} bytes long; return (ptr << 32 | len) of a \
                 JSON document of 1 to {} bytes",
                abi::MAX_META_BYTES
            ));
        }
        let bytes = self.read_bytes(ptr, len).ok_or_else(|| {
            format!(
                "its metadata (mlc_meta) points at bytes {ptr}..{} but its memory holds {} \
                 bytes; return (ptr << 32 | len) of a JSON document inside its memory",
                u64::from(ptr) + u64::from(len),
                self.memory_len()
            )
        })?;
        PluginMeta::parse(&bytes)
    }

    pub fn init(&mut self) -> Result<i32, PluginError> {
        self.counted(Sandbox::try_init)
    }

    fn try_init(&mut self) -> Result<i32, PluginError> {
        let handle = self.call("mlc_agg_init", |e, s| e.init.call(s, ()))?;
        if handle < 0 {
            let message = self.last_error();
            return Err(PluginError::host(
                &self.name,
                PluginFailure::Reported(format!(
                    "plugin `{}` could not start an aggregate: {message}",
                    self.name
                )),
            ));
        }
        Ok(handle)
    }

    pub(crate) fn free_state(&mut self, handle: i32) {
        // Freeing after a failure is pointless and would report the failure again.
        if self.poisoned.is_none() {
            let _ = self.counted(|s| s.call("mlc_agg_free", |e, s| e.agg_free.call(s, handle)));
        }
    }

    /// A buffer for `n_cols` columns of up to `rows` rows, reusing the current one when it
    /// is big enough.
    pub(crate) fn ensure_scratch(
        &mut self,
        n_cols: usize,
        rows: usize,
    ) -> Result<Scratch, PluginError> {
        if let Some(s) = self.scratch
            && s.n_cols == n_cols
            && s.rows >= rows
        {
            return Ok(s);
        }
        if let Some(old) = self.scratch.take() {
            let (ptr, size) = (old.ptr as i32, old.size as i32);
            self.call("mlc_free", |e, s| e.free.call(s, (ptr, size)))?;
        }
        let size = Scratch::bytes_for(n_cols, rows);
        let size_i32 = i32::try_from(size).map_err(|_| {
            PluginError::host(
                &self.name,
                PluginFailure::Other(format!(
                    "plugin `{}`: a chunk of {rows} rows is too large",
                    self.name
                )),
            )
        })?;
        let ptr = self.call("mlc_alloc", |e, s| e.alloc.call(s, size_i32))?;
        let ptr = ptr as u32;
        let end = ptr as usize + size;
        if ptr == 0 || !ptr.is_multiple_of(8) || end > self.memory_len() {
            let reason = format!(
                "plugin `{}`: mlc_alloc({size}) returned {ptr}, which is not an 8-byte aligned \
                 block inside its memory of {} bytes",
                self.name,
                self.memory_len()
            );
            let failure = PluginError::host(&self.name, PluginFailure::BadOutput(reason));
            return Err(self.poison(failure));
        }
        let scratch = Scratch {
            ptr,
            size: size as u32,
            n_cols,
            rows,
        };
        self.scratch = Some(scratch);
        Ok(scratch)
    }

    /// Fills the scratch buffer with one chunk of `rows` rows (`fill(column, bytes)` writes
    /// column `column` as little-endian f64 straight into the plugin's memory, with no
    /// intermediate copy) and calls `mlc_agg_update`. `capacity` is the chunk size, so the
    /// buffer is allocated once for all chunks.
    pub(crate) fn update_with(
        &mut self,
        handle: i32,
        n_cols: usize,
        rows: usize,
        capacity: usize,
        fill: impl FnMut(usize, &mut [u8]) -> Result<(), String>,
    ) -> Result<(), PluginError> {
        self.counted(|s| s.try_update_with(handle, n_cols, rows, capacity, fill))
    }

    fn try_update_with(
        &mut self,
        handle: i32,
        n_cols: usize,
        rows: usize,
        capacity: usize,
        mut fill: impl FnMut(usize, &mut [u8]) -> Result<(), String>,
    ) -> Result<(), PluginError> {
        let scratch = self.ensure_scratch(n_cols, capacity.max(rows).max(1))?;
        let memory = self.exports.memory.data_mut(&mut self.store);
        for col in 0..n_cols {
            let table = scratch.table_ptr() as usize + col * 4;
            memory[table..table + 4].copy_from_slice(&scratch.column_ptr(col).to_le_bytes());
            let start = scratch.column_ptr(col) as usize;
            fill(col, &mut memory[start..start + rows * 8]).map_err(|e| {
                PluginError::host(
                    &self.name,
                    PluginFailure::Other(format!("plugin `{}`: {e}", self.name)),
                )
            })?;
        }
        let args = (
            handle,
            scratch.table_ptr() as i32,
            n_cols as i32,
            rows as i32,
        );
        let status = self.call("mlc_agg_update", |e, s| e.update.call(s, args))?;
        if status != abi::STATUS_OK {
            let message = self.last_error();
            let reason = format!(
                "plugin `{}` rejected the data in mlc_agg_update: {message}",
                self.name
            );
            let failure = PluginError::host(&self.name, PluginFailure::Reported(reason));
            return Err(self.poison(failure));
        }
        Ok(())
    }

    pub fn merge(&mut self, dst: i32, src: i32) -> Result<(), PluginError> {
        self.counted(|s| s.try_merge(dst, src))
    }

    fn try_merge(&mut self, dst: i32, src: i32) -> Result<(), PluginError> {
        let status = self.call("mlc_agg_merge", |e, s| e.merge.call(s, (dst, src)))?;
        if status != abi::STATUS_OK {
            let message = self.last_error();
            return Err(PluginError::host(
                &self.name,
                PluginFailure::Reported(format!(
                    "plugin `{}` failed in mlc_agg_merge: {message}",
                    self.name
                )),
            ));
        }
        Ok(())
    }

    /// `Ok(Ok(v))` a value, `Ok(Err(reason))` undefined on these rows.
    pub fn finalize(&mut self, handle: i32) -> Result<Result<f64, String>, PluginError> {
        self.counted(|s| s.try_finalize(handle))
    }

    fn try_finalize(&mut self, handle: i32) -> Result<Result<f64, String>, PluginError> {
        let scratch = match self.scratch {
            Some(s) => s,
            None => self.ensure_scratch(1, 1)?,
        };
        let out = scratch.out_ptr();
        self.exports.memory.data_mut(&mut self.store)[out as usize..out as usize + 8]
            .copy_from_slice(&f64::NAN.to_le_bytes());
        let status = self.call("mlc_agg_finalize", |e, s| {
            e.finalize.call(s, (handle, out as i32))
        })?;
        match status {
            abi::STATUS_OK => {
                let bytes = self.read_bytes(out, 8).unwrap_or_default();
                let value = <[u8; 8]>::try_from(bytes.as_slice()).map(f64::from_le_bytes);
                match value {
                    Ok(v) if v.is_finite() => Ok(Ok(v)),
                    Ok(v) => Err(PluginError::host(
                        &self.name,
                        PluginFailure::BadOutput(format!(
                            "plugin `{}` returned {v} from mlc_agg_finalize; a result must be a \
                             finite number (a plugin reports an undefined metric with status 1 \
                             and a reason)",
                            self.name
                        )),
                    )),
                    Err(_) => Err(PluginError::host(
                        &self.name,
                        PluginFailure::BadOutput(format!(
                            "plugin `{}`: result unreadable",
                            self.name
                        )),
                    )),
                }
            }
            abi::STATUS_UNDEFINED => Ok(Err(self.last_error())),
            other => {
                let message = self.last_error();
                Err(PluginError::host(
                    &self.name,
                    PluginFailure::Reported(format!(
                        "plugin `{}` failed in mlc_agg_finalize (status {other}): {message}",
                        self.name
                    )),
                ))
            }
        }
    }
}

/// Classifies a wasmtime failure: which limit, or which trap. `refused` is the memory the
/// limiter refused, which explains the trap that followed.
fn classify(e: &wasmtime::Error, limits: &Limits, refused: Option<usize>) -> PluginFailure {
    if let Some(desired) = refused {
        return PluginFailure::Memory {
            limit: limits.memory_bytes,
            asked: desired as u64,
        };
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => PluginFailure::Timeout {
            limit: limits.timeout,
        },
        Some(Trap::OutOfFuel) => PluginFailure::OutOfFuel {
            budget: limits.fuel.unwrap_or(0),
        },
        Some(Trap::StackOverflow) => PluginFailure::StackOverflow,
        Some(trap) => {
            let text = trap.to_string();
            PluginFailure::Trap(
                text.strip_prefix("wasm trap: ")
                    .unwrap_or(&text)
                    .to_string(),
            )
        }
        None => {
            let text = e.to_string();
            PluginFailure::Other(text.lines().next().unwrap_or(&text).to_string())
        }
    }
}

/// A shared sandbox: accumulators of one session live in one instance, so they can merge.
pub(crate) type SharedSandbox = Arc<Mutex<Sandbox>>;

/// Loads plugins: shared engines, the compiled-module cache, and validation.
pub struct PluginHost {
    cache: ModuleCache,
}

impl std::fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHost")
            .field("cache_dir", &self.cache.dir())
            .finish()
    }
}

impl PluginHost {
    /// A host caching compiled modules under `cache_dir` (`None`: `$MLC_CACHE_DIR`, else
    /// `~/.cache/mlc`). A cache that cannot be written only costs time.
    pub fn new(cache_dir: Option<PathBuf>) -> PluginHost {
        PluginHost {
            cache: ModuleCache::new(cache_dir.or_else(default_cache_dir)),
        }
    }

    /// A host that keeps compiled modules in memory only.
    pub fn without_disk_cache() -> PluginHost {
        PluginHost {
            cache: ModuleCache::new(None),
        }
    }

    pub fn cache(&self) -> &ModuleCache {
        &self.cache
    }

    /// Reads, compiles (or loads from the cache), validates and inspects the module a
    /// declaration names. Errors are sentences about the file that name the fix.
    pub fn load(&self, decl: &PluginDecl) -> Result<LoadedPlugin, String> {
        let limits = Limits::from_decl(decl);
        let plugin = self.load_path(&decl.name, &decl.path, limits)?;
        if let Some(expected) = &decl.signature
            && expected.args != plugin.meta.arg_types()
        {
            return Err(format!(
                "plugin file {} changed since it was checked: its arguments are now ({}); \
                 run `mlc lint` again",
                decl.path.display(),
                plugin
                    .meta
                    .args
                    .iter()
                    .map(|a| a.ty.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        Ok(plugin)
    }

    /// [`PluginHost::load`] from a path and explicit limits.
    pub fn load_path(
        &self,
        name: &str,
        path: &Path,
        limits: Limits,
    ) -> Result<LoadedPlugin, String> {
        let in_file = |msg: String| format!("plugin file {}: {msg}", path.display());
        let bytes = std::fs::read(path).map_err(|e| {
            in_file(format!(
                "cannot be read ({e}); check the path, which is relative to the .mlc file"
            ))
        })?;
        let engine = engines::engine(limits.fuel.is_some()).map_err(in_file)?;
        let (module, cache_hit) = self.cache.module(engine, &bytes).map_err(in_file)?;
        check_module(&module).map_err(in_file)?;
        let pre = Linker::<HostState>::new(engine)
            .instantiate_pre(&module)
            .map_err(|e| in_file(format!("it cannot be linked: {e}")))?;
        // The metadata is read in a throwaway sandbox with the plugin's own limits, so a
        // module that misbehaves at start-up is caught here and not at evaluation time.
        let mut sandbox =
            Sandbox::new(name, engine, &pre, limits, None).map_err(|e| in_file(e.to_string()))?;
        let meta = sandbox.read_meta().map_err(in_file)?;
        Ok(LoadedPlugin {
            name: name.to_string(),
            path: path.to_path_buf(),
            sha256: sha256_hex(&bytes),
            engine: engine.clone(),
            module,
            pre,
            limits,
            meta,
            cache_hit,
        })
    }
}

/// A validated plugin, ready to run; cheap to keep, cheap to start sessions from.
pub struct LoadedPlugin {
    pub name: String,
    pub path: PathBuf,
    /// SHA-256 of the module file: a changed file is a different plugin (hot reload).
    pub sha256: String,
    engine: Engine,
    module: Module,
    pre: InstancePre<HostState>,
    pub limits: Limits,
    pub meta: PluginMeta,
    /// Where the compiled module came from (for logs and benchmarks).
    pub cache_hit: CacheHit,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("limits", &self.limits)
            .field("meta", &self.meta)
            .finish()
    }
}

impl LoadedPlugin {
    /// The signature the checker uses for calls.
    pub fn signature(&self) -> PluginSignature {
        PluginSignature {
            args: self.meta.arg_types(),
        }
    }

    pub fn module(&self) -> &Module {
        &self.module
    }

    /// A fresh sandbox (one `Store`, one instance) for one evaluation. Its time and fuel
    /// budgets are shared by every accumulator made from it.
    pub fn session(&self) -> Result<PluginSession, EvalError> {
        self.new_session(None)
    }

    /// [`LoadedPlugin::session`], counting every failure of its calls in `failures`, by
    /// this plugin's name and the failure's [`PluginFailure::reason`].
    pub(crate) fn session_counted(
        &self,
        failures: &FailureCounts,
    ) -> Result<PluginSession, EvalError> {
        self.new_session(Some(failures.clone()))
    }

    fn new_session(&self, failures: Option<FailureCounts>) -> Result<PluginSession, EvalError> {
        let sandbox = Sandbox::new(
            &self.name,
            &self.engine,
            &self.pre,
            self.limits,
            failures.clone(),
        )
        .map_err(|e| {
            if let Some(failures) = &failures {
                failures.record(&self.name, e.reason());
            }
            EvalError::Invalid(format!("plugin `{}`: {e}", self.name))
        })?;
        Ok(PluginSession {
            sandbox: Arc::new(Mutex::new(sandbox)),
            n_args: self.meta.args.len(),
        })
    }

    /// An accumulator in a session of its own: the simple path for one aggregate.
    pub fn accumulator(&self) -> Result<Box<dyn Accumulator>, EvalError> {
        self.session()?.accumulator()
    }

    /// [`LoadedPlugin::accumulator`], counting failures as
    /// [`LoadedPlugin::session_counted`] does.
    pub fn accumulator_counted(
        &self,
        failures: &FailureCounts,
    ) -> Result<Box<dyn Accumulator>, EvalError> {
        self.session_counted(failures)?.accumulator()
    }
}

/// One evaluation's sandbox; accumulators made from it share memory, time and fuel, and
/// can be merged with each other.
#[derive(Clone)]
pub struct PluginSession {
    sandbox: SharedSandbox,
    n_args: usize,
}

impl std::fmt::Debug for PluginSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginSession")
            .field("n_args", &self.n_args)
            .finish()
    }
}

impl PluginSession {
    pub fn accumulator(&self) -> Result<Box<dyn Accumulator>, EvalError> {
        let handle = {
            let mut sandbox = self.sandbox.lock().map_err(|_| poisoned_lock())?;
            sandbox.init().map_err(eval_error)?
        };
        Ok(Box::new(crate::accumulator::PluginAccumulator::new(
            self.sandbox.clone(),
            handle,
            self.n_args,
        )))
    }
}

/// A plugin failure as the engine sees it: its sentence.
pub(crate) fn eval_error(e: PluginError) -> EvalError {
    EvalError::Invalid(e.to_string())
}

pub(crate) fn poisoned_lock() -> EvalError {
    EvalError::Invalid("a plugin sandbox was left broken by an earlier panic".to_string())
}

/// The signature of the plugin at `path`, read and validated as [`PluginHost::load`] does,
/// with default limits; what `mlc lint` calls for every `plugin` declaration.
pub fn inspect(path: &Path) -> Result<PluginSignature, String> {
    inspect_meta(path).map(|meta| PluginSignature {
        args: meta.arg_types(),
    })
}

/// Like [`inspect`], with the whole metadata (names of arguments, description).
pub fn inspect_meta(path: &Path) -> Result<PluginMeta, String> {
    static HOST: std::sync::OnceLock<PluginHost> = std::sync::OnceLock::new();
    let host = HOST.get_or_init(|| PluginHost::new(None));
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    host.load_path(
        &name,
        path,
        Limits {
            timeout: Duration::from_secs(2),
            ..Limits::default()
        },
    )
    .map(|p| p.meta)
}
