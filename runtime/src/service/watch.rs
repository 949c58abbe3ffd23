//! Watches the rule files (the `--checks` roots, every imported file and plugin module) and
//! asks for a reload when one of them changes, debounced so that an editor's burst of
//! writes, or a `git checkout`, triggers one reload.
//!
//! Folders are watched rather than files: editors replace files by renaming, which a watch
//! on the file itself would lose. For the same reason a watch on a root folder is not
//! enough: it follows the folder it was put on, so after `mv rules rules.old; mv rules.new
//! rules` it would watch `rules.old`. The folder holding each root is watched too (not
//! recursively, only for the root's own name), and every reload re-resolves the watches: a
//! root that is a different folder than the one watched is watched afresh, and a root that
//! is gone is said so in the log (the reload then fails, which shows in
//! `mlc_rules_last_reload_successful`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use tokio::sync::mpsc;

/// Why a reload was asked for (logged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReloadCause {
    FileChange(Vec<PathBuf>),
    Signal,
}

/// Which folder a path named when it was watched (device and inode), to tell a folder
/// replaced under the same name.
type FolderId = Option<(u64, u64)>;

pub(crate) struct RuleWatcher {
    debouncer: Debouncer<notify::RecommendedWatcher, RecommendedCache>,
    watched: BTreeMap<(PathBuf, bool), FolderId>,
    /// Watches the folders holding the roots, for the roots' own names.
    parents: Option<notify::RecommendedWatcher>,
    parents_watched: BTreeSet<PathBuf>,
    /// The roots that were folders at start, as absolute paths.
    roots: Vec<PathBuf>,
    /// Roots already reported gone (reported once until they are back).
    gone: BTreeSet<PathBuf>,
}

impl std::fmt::Debug for RuleWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleWatcher")
            .field("watched", &self.watched)
            .field("parents_watched", &self.parents_watched)
            .finish()
    }
}

fn relevant(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "mlc" || e == "wasm")
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(unix)]
fn folder_id(path: &Path) -> FolderId {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn folder_id(_: &Path) -> FolderId {
    None
}

impl RuleWatcher {
    /// Starts watching nothing yet; [`RuleWatcher::watch_rules`] says what. Must be called
    /// inside the async runtime (the roots' folders are debounced on it).
    pub fn start(
        debounce: Duration,
        roots: &[PathBuf],
        tx: mpsc::UnboundedSender<ReloadCause>,
    ) -> Result<RuleWatcher, String> {
        let files_tx = tx.clone();
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
                    let _ = files_tx.send(ReloadCause::FileChange(paths.into_iter().collect()));
                }
            }
            Err(errors) => {
                for e in errors {
                    tracing::warn!(error = %e, "file watcher error; POST /-/reload still works");
                }
            }
        })
        .map_err(|e| format!("cannot start the file watcher: {e}"))?;
        // Roots that are folders; a root file's folder is watched for it already.
        let roots: Vec<PathBuf> = roots
            .iter()
            .filter(|r| r.is_dir())
            .map(|r| absolute(r))
            .collect();
        let parents = match Self::watch_roots_by_name(debounce, roots.clone(), tx) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "cannot watch the folders holding the rules: a rules folder replaced by \
                     another (mv) needs POST /-/reload or SIGHUP"
                );
                None
            }
        };
        Ok(RuleWatcher {
            debouncer,
            watched: BTreeMap::new(),
            parents,
            parents_watched: BTreeSet::new(),
            roots,
            gone: BTreeSet::new(),
        })
    }

    /// A watcher for the folders holding the roots that asks for a reload, debounced, when
    /// an event names a root itself (created, deleted, renamed to or from). Its events are
    /// filtered as they come, so a busy neighbour (the store's file beside the rules) costs
    /// a comparison per event and nothing is queued for it.
    fn watch_roots_by_name(
        debounce: Duration,
        roots: Vec<PathBuf>,
        tx: mpsc::UnboundedSender<ReloadCause>,
    ) -> Result<notify::RecommendedWatcher, String> {
        let (hit_tx, mut hit_rx) = mpsc::unbounded_channel::<PathBuf>();
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let Ok(event) = res else { return };
            if event.kind.is_access() {
                return;
            }
            for path in &event.paths {
                if roots.iter().any(|r| r == path) {
                    let _ = hit_tx.send(path.clone());
                }
            }
        })
        .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            while let Some(first) = hit_rx.recv().await {
                let mut paths = BTreeSet::from([first]);
                loop {
                    match tokio::time::timeout(debounce, hit_rx.recv()).await {
                        Ok(Some(p)) => {
                            paths.insert(p);
                        }
                        Ok(None) => return,
                        Err(_) => break,
                    }
                }
                if tx
                    .send(ReloadCause::FileChange(paths.into_iter().collect()))
                    .is_err()
                {
                    return;
                }
            }
        });
        Ok(watcher)
    }

    /// Watches the roots (folders recursively) and the folders of every loaded file, and
    /// re-resolves what is watched: a folder now another than the one watched under its name
    /// is watched afresh, folders no longer wanted (or gone) are let go, and a root that is
    /// gone is logged. Called before every reload and after each successful one.
    pub(crate) fn watch_rules(&mut self, roots: &[PathBuf], files: &[PathBuf]) {
        let mut wanted = BTreeSet::new();
        for root in roots {
            let abs = absolute(root);
            if root.is_dir() {
                wanted.insert((abs.clone(), true));
                if self.gone.remove(&abs) {
                    tracing::info!(folder = %root.display(), "the checks folder is back; watching it");
                }
            } else {
                if !root.exists() && self.gone.insert(abs.clone()) {
                    tracing::error!(
                        folder = %root.display(),
                        "the checks folder (or file) is gone: moved or deleted; the previous rules \
                         keep running, and are reloaded when it is back"
                    );
                }
                if let Some(parent) = parent_dir(&abs) {
                    wanted.insert((parent, false));
                }
            }
        }
        for file in files {
            if let Some(parent) = parent_dir(&absolute(file))
                && !wanted
                    .iter()
                    .any(|(dir, rec)| *rec && parent.starts_with(dir))
            {
                wanted.insert((parent, false));
            }
        }
        let stale: Vec<(PathBuf, bool)> = self
            .watched
            .iter()
            .filter(|(key, id)| !wanted.contains(key) || folder_id(&key.0) != **id)
            .map(|(key, _)| key.clone())
            .collect();
        for key in stale {
            // The watch may already be gone with its folder.
            let _ = self.debouncer.unwatch(&key.0);
            self.watched.remove(&key);
            tracing::debug!(dir = %key.0.display(), "no longer watching the folder under this name");
        }
        for (dir, recursive) in wanted {
            if self.watched.contains_key(&(dir.clone(), recursive)) || !dir.is_dir() {
                continue;
            }
            let mode = if recursive {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            let id = folder_id(&dir);
            match self.debouncer.watch(&dir, mode) {
                Ok(()) => {
                    tracing::debug!(dir = %dir.display(), recursive, "watching rule files");
                    self.watched.insert((dir, recursive), id);
                }
                Err(e) => tracing::warn!(
                    dir = %dir.display(),
                    error = %e,
                    "cannot watch folder; use POST /-/reload or SIGHUP after editing"
                ),
            }
        }
        if let Some(parents) = self.parents.as_mut() {
            for root in &self.roots {
                let Some(parent) = parent_dir(root) else {
                    continue;
                };
                if self.parents_watched.contains(&parent) {
                    continue;
                }
                match parents.watch(&parent, RecursiveMode::NonRecursive) {
                    Ok(()) => {
                        self.parents_watched.insert(parent);
                    }
                    Err(e) => tracing::warn!(
                        dir = %parent.display(),
                        error = %e,
                        "cannot watch the folder holding the rules; a rules folder replaced \
                         by another (mv) needs POST /-/reload or SIGHUP"
                    ),
                }
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
