//! The rules `mlc demo` evaluates: the copy of examples/pipeline built into mlc, or a
//! folder given with `--checks` (an edited copy), checked as `mlc lint` checks them.

use std::path::{Path, PathBuf};

use mlc_engine::check::NoPlugins;
use mlc_engine::load::MemoryFs;
use sha2::{Digest, Sha256};

use super::DemoError;
use super::embedded::FILES;
use super::run::Rules;
use mlc_runtime::rules::{load_rules, load_rules_with};

/// Where the built-in files appear to live, in diagnostics and in results' `file`.
const BUILTIN_DIR: &str = "examples/pipeline";

pub fn load(dir: Option<&Path>) -> Result<Rules, DemoError> {
    let (loaded, version, origin) = match dir {
        None => {
            let mut fs = MemoryFs::new();
            for (name, text) in FILES {
                fs.insert(Path::new(BUILTIN_DIR).join(name), *text);
            }
            // The example declares no plugin, so none needs resolving.
            let loaded = load_rules_with(&fs, &NoPlugins, &[PathBuf::from(BUILTIN_DIR)]);
            (
                loaded,
                builtin_version(),
                "built-in copy of examples/pipeline".to_string(),
            )
        }
        Some(dir) => {
            let loaded = load_rules(&[dir.to_path_buf()]);
            let version = loaded.rules_version.clone();
            (loaded, version, dir.display().to_string())
        }
    };
    if loaded.has_errors() {
        return Err(DemoError::Rules(loaded.render(false)));
    }
    Ok(Rules {
        program: loaded.program,
        version,
        origin,
    })
}

/// `builtin sha256:<16 hex digits>` over the embedded files' names and contents: the
/// built-in rules have no folder, hence no git commit, to name them by.
fn builtin_version() -> String {
    let mut hasher = Sha256::new();
    for (name, text) in FILES {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(text.as_bytes());
        hasher.update([0]);
    }
    let hex: String = hasher
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("builtin sha256:{hex}")
}
