//! Watches the rule files (the `--checks` roots, every imported file and plugin module) and
//! asks for a reload when one of them changes, debounced so that an editor's burst of
//! writes, or a `git checkout`, triggers one reload.
//!
//! Folders are watched rather than files: editors replace files by renaming, which a watch
//! on the file itself would lose.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::RecursiveMode;
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use tokio::sync::mpsc;

/// Why a reload was asked for (logged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadCause {
    FileChange(Vec<PathBuf>),
    Signal,
}

pub struct RuleWatcher {
    debouncer: Debouncer<notify::RecommendedWatcher, RecommendedCache>,
    watched: BTreeSet<(PathBuf, bool)>,
}

impl std::fmt::Debug for RuleWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleWatcher")
            .field("watched", &self.watched)
            .finish()
    }
}

fn relevant(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "mlc" || e == "wasm")
}

impl RuleWatcher {
    pub fn start(
        debounce: Duration,
        tx: mpsc::UnboundedSender<ReloadCause>,
    ) -> Result<RuleWatcher, String> {
        let debouncer = new_debouncer(debounce, None, move |res: DebounceEventResult| match res {
            Ok(events) => {
                let paths: BTreeSet<PathBuf> = events
                    .iter()
                    .filter(|e| !e.kind.is_access())
                    .flat_map(|e| e.paths.iter())
                    .filter(|p| relevant(p))
                    .cloned()
                    .collect();
                if !paths.is_empty() {
                    let _ = tx.send(ReloadCause::FileChange(paths.into_iter().collect()));
                }
            }
            Err(errors) => {
                for e in errors {
                    tracing::warn!(error = %e, "file watcher error; POST /-/reload still works");
                }
            }
        })
        .map_err(|e| format!("cannot start the file watcher: {e}"))?;
        Ok(RuleWatcher {
            debouncer,
            watched: BTreeSet::new(),
        })
    }

    /// Watches the roots (folders recursively) and the folders of every loaded file. New
    /// folders are added; folders already watched are left alone.
    pub fn watch_rules(&mut self, roots: &[PathBuf], files: &[PathBuf]) {
        let mut wanted = BTreeSet::new();
        for root in roots {
            if root.is_dir() {
                wanted.insert((root.clone(), true));
            } else if let Some(parent) = parent_dir(root) {
                wanted.insert((parent, false));
            }
        }
        for file in files {
            if let Some(parent) = parent_dir(file)
                && !wanted
                    .iter()
                    .any(|(dir, rec)| *rec && parent.starts_with(dir))
            {
                wanted.insert((parent, false));
            }
        }
        for (dir, recursive) in wanted {
            if self.watched.contains(&(dir.clone(), recursive)) {
                continue;
            }
            let mode = if recursive {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            match self.debouncer.watch(&dir, mode) {
                Ok(()) => {
                    tracing::debug!(dir = %dir.display(), recursive, "watching rule files");
                    self.watched.insert((dir, recursive));
                }
                Err(e) => tracing::warn!(
                    dir = %dir.display(),
                    error = %e,
                    "cannot watch folder; use POST /-/reload or SIGHUP after editing"
                ),
            }
        }
    }
}

fn parent_dir(path: &Path) -> Option<PathBuf> {
    match path.parent() {
        Some(p) if p.as_os_str().is_empty() => Some(PathBuf::from(".")),
        Some(p) => Some(p.to_path_buf()),
        None => None,
    }
}
