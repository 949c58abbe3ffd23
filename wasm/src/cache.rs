//! Compiled-module cache: in memory for this process, and on disk across processes, keyed
//! by the module's SHA-256 and the engine's compatibility hash so that a new wasmtime, a
//! different CPU or other engine settings never load a stale artifact.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

/// Where a module came from, reported by benchmarks and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheHit {
    Memory,
    Disk,
    Compiled,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    module_sha256: String,
    engine: String,
}

pub struct ModuleCache {
    dir: Option<PathBuf>,
    memory: Mutex<HashMap<Key, Module>>,
}

/// The cache folder when none is given: `$MLC_CACHE_DIR`, else `~/.cache/mlc`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("MLC_CACHE_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    std::env::var_os("HOME")
        .filter(|d| !d.is_empty())
        .map(|home| PathBuf::from(home).join(".cache").join("mlc"))
}

/// A short stable hash of everything that makes a compiled artifact loadable by `engine`.
fn engine_key(engine: &Engine) -> String {
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl ModuleCache {
    /// `dir` = `None` keeps compiled modules in memory only.
    pub fn new(dir: Option<PathBuf>) -> ModuleCache {
        ModuleCache {
            dir: dir.map(|d| d.join("wasm")),
            memory: Mutex::new(HashMap::new()),
        }
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The compiled module for `bytes` (binary `.wasm` or `.wat` text), from memory, disk, or
    /// compiled now and stored in both.
    pub fn module(&self, engine: &Engine, bytes: &[u8]) -> Result<(Module, CacheHit), String> {
        let key = Key {
            module_sha256: sha256_hex(bytes),
            engine: engine_key(engine),
        };
        if let Some(module) = self.memory.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok((module, CacheHit::Memory));
        }
        let file = self
            .dir
            .as_ref()
            .map(|d| d.join(format!("{}-{}.cwasm", key.module_sha256, key.engine)));
        let mut hit = CacheHit::Compiled;
        let mut module = file.as_deref().and_then(|f| load_artifact(engine, f));
        if module.is_some() {
            hit = CacheHit::Disk;
        }
        let module = match module.take() {
            Some(module) => module,
            None => {
                let module = Module::new(engine, bytes).map_err(|e| {
                    format!(
                        "it is not a valid WebAssembly module ({}); build it for \
                         wasm32-unknown-unknown (see docs/plugins.md)",
                        first_line(&e.to_string())
                    )
                })?;
                if let Some(file) = &file {
                    store_artifact(&module, file);
                }
                module
            }
        };
        if let Ok(mut memory) = self.memory.lock() {
            memory.insert(key, module.clone());
        }
        Ok((module, hit))
    }

    /// Forgets modules compiled in this process (benchmarks use it to time disk loads).
    pub fn clear_memory(&self) {
        if let Ok(mut memory) = self.memory.lock() {
            memory.clear();
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// Loads a compiled artifact written by [`store_artifact`]; any failure (missing file, other
/// wasmtime, corrupted file) means "compile again".
#[allow(unsafe_code)]
fn load_artifact(engine: &Engine, file: &Path) -> Option<Module> {
    if !file.is_file() {
        return None;
    }
    // SAFETY: wasmtime requires that the file be an artifact it produced itself. The cache
    // folder belongs to the user running mlc, files are written under a temporary name and
    // renamed into place (never partially visible), and wasmtime checks the header, its own
    // version and the engine settings before use, rejecting anything else.
    match unsafe { Module::deserialize_file(engine, file) } {
        Ok(module) => Some(module),
        Err(e) => {
            tracing::debug!("ignoring cached plugin {}: {e}", file.display());
            None
        }
    }
}

fn store_artifact(module: &Module, file: &Path) {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let result = (|| -> Result<(), String> {
        let bytes = module.serialize().map_err(|e| e.to_string())?;
        let dir = file.parent().ok_or("no parent folder")?;
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let tmp = dir.join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&tmp, bytes).map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, file).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            e.to_string()
        })
    })();
    if let Err(e) = result {
        // The cache only saves time; a read-only home must not stop plugins from running.
        tracing::warn!(
            "cannot cache the compiled plugin in {}: {e}",
            file.display()
        );
    }
}
