//! Rules from disk: reading `.mlc` files and folders, checking them (with plugin metadata
//! read from the Wasm modules), naming the loaded set with a `rules_version`, and rewriting
//! files in canonical form for `mlc fmt`.
//!
//! This is the one place that gives the pure engine its files: `mlc lint`, `mlc explain`,
//! `mlc check`, `mlc test` and `mlc serve`'s reload all load rules through [`load_rules`].

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use mlc_engine::check::{PluginResolver, compile};
use mlc_engine::load::{FileSystem, LoadedFile, load, normalize};
use mlc_engine::plan::{PluginSignature, Program};
use mlc_grammar::{Diagnostic, Sources};
use sha2::{Digest, Sha256};

/// The real file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiskFs;

impl FileSystem for DiskFs {
    fn read(&self, path: &Path) -> io::Result<String> {
        read_regular(path)
    }

    fn list_mlc(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
            for entry in std::fs::read_dir(dir)? {
                let entry = entry?;
                let path = entry.path();
                let kind = entry.file_type()?;
                if kind.is_dir() {
                    // Hidden folders (`.git`, editors' caches) never hold rules.
                    if !entry.file_name().to_string_lossy().starts_with('.') {
                        walk(&path, out)?;
                    }
                } else if path.extension().is_some_and(|e| e == "mlc") {
                    out.push(path);
                }
            }
            Ok(())
        }
        let mut out = Vec::new();
        walk(dir, &mut out)?;
        out.sort();
        Ok(out)
    }

    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }
}

/// Reads a rule file, refusing anything but a regular file (after following symlinks).
///
/// Opening a FIFO for reading blocks until a writer appears, so a FIFO named `x.mlc` in a
/// rules folder used to hang `mlc lint` and wedge `mlc serve`'s reload for good. Sockets and
/// devices are refused for the same reason. The type is checked before opening and again on
/// the opened file.
pub(crate) fn read_regular(path: &Path) -> io::Result<String> {
    use std::io::Read as _;
    refuse_irregular(&std::fs::metadata(path)?)?;
    let mut file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    refuse_irregular(&meta)?;
    let mut text = String::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.read_to_string(&mut text)?;
    Ok(text)
}

/// An error naming what a file is when it is not a regular file (or a folder, which the
/// callers handle themselves). The callers' messages name the path.
fn refuse_irregular(meta: &std::fs::Metadata) -> io::Result<()> {
    let kind = meta.file_type();
    if kind.is_file() || kind.is_dir() {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "it is {}, not a regular file: rules and plugin modules are read only from \
             regular files (remove it, or replace it with a regular file)",
            irregular_kind(&kind)
        ),
    ))
}

#[cfg(unix)]
fn irregular_kind(kind: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else {
        "a special file"
    }
}

#[cfg(not(unix))]
fn irregular_kind(_: &std::fs::FileType) -> &'static str {
    "a special file"
}

/// Reads plugin signatures from the modules themselves (`mlc_wasm::inspect`).
#[derive(Debug, Clone, Copy, Default)]
pub struct WasmPlugins;

impl PluginResolver for WasmPlugins {
    fn describe(&self, decl_path: &Path) -> Result<PluginSignature, String> {
        // `inspect` reads the module whole: a FIFO would block it as it would a rule file.
        if let Ok(meta) = std::fs::metadata(decl_path) {
            refuse_irregular(&meta)
                .map_err(|e| format!("cannot read `{}`: {e}", decl_path.display()))?;
        }
        mlc_wasm::inspect(decl_path)
    }
}

/// A loaded and checked set of rules.
#[derive(Debug, Clone)]
pub struct Rules {
    pub sources: Sources,
    pub files: Vec<LoadedFile>,
    pub program: Program,
    /// Load, syntax and check diagnostics, in that order.
    pub diagnostics: Vec<Diagnostic>,
    /// `git:<short commit>[+dirty] sha256:<hash>`, or `sha256:<hash>` outside a repository.
    pub rules_version: String,
}

impl Rules {
    /// Whether the rules must be refused (any diagnostic is an error).
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// Refuses the first of `names` that is not a loaded check, listing the checks there are
    /// (`--check NAME` of `mlc check`, `backfill` and `explain`).
    pub fn require_checks<'n>(
        &self,
        names: impl IntoIterator<Item = &'n str>,
    ) -> Result<(), String> {
        for name in names {
            if self.program.check(name).is_none() {
                let known: Vec<&str> = self
                    .program
                    .checks
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect();
                let known = if known.is_empty() {
                    "(none)".to_string()
                } else {
                    known.join(", ")
                };
                return Err(format!(
                    "no check named `{name}` in the rules; the checks are: {known}"
                ));
            }
        }
        Ok(())
    }

    /// The diagnostics as `mlc lint` prints them.
    pub fn render(&self, color: bool) -> String {
        mlc_grammar::render(&self.diagnostics, &self.sources, color)
    }

    /// One line saying what was loaded and how it went.
    pub fn summary(&self) -> String {
        let errors = self.diagnostics.iter().filter(|d| d.is_error()).count();
        let warnings = self.diagnostics.len() - errors;
        let files = plural(self.sources.files.len(), "file");
        if errors > 0 {
            let w = if warnings > 0 {
                format!(", {}", plural(warnings, "warning"))
            } else {
                String::new()
            };
            return format!(
                "{} in {files}{w}: the rules are invalid",
                plural(errors, "error")
            );
        }
        let p = &self.program;
        let mut parts = vec![
            plural(p.checks.len(), "check"),
            plural(p.components.len(), "component"),
        ];
        if !p.tests.is_empty() {
            parts.push(plural(p.tests.len(), "test"));
        }
        if !p.plugins.is_empty() {
            parts.push(plural(p.plugins.len(), "plugin"));
        }
        let w = if warnings > 0 {
            format!(" ({})", plural(warnings, "warning"))
        } else {
            String::new()
        };
        format!("{files} ok: {}{w}", parts.join(", "))
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Loads and checks the rules under `paths` (files or folders) from disk.
pub fn load_rules(paths: &[PathBuf]) -> Rules {
    load_rules_with(&DiskFs, &WasmPlugins, paths)
}

/// [`load_rules`] with another file system or plugin resolver (tests).
///
/// When a file cannot be read or parsed, the rest is not checked: names it declares would
/// otherwise show up as a cascade of "unknown component" errors elsewhere.
pub fn load_rules_with(
    fs: &dyn FileSystem,
    plugins: &dyn PluginResolver,
    paths: &[PathBuf],
) -> Rules {
    let loaded = load(fs, paths);
    let files_for_hash: Vec<(PathBuf, &str)> = loaded
        .files
        .iter()
        .filter_map(|f| {
            loaded
                .sources
                .get(f.id)
                .map(|s| (f.path.clone(), s.text.as_str()))
        })
        .collect();
    let rules_version = rules_version(paths, &files_for_hash);
    let mut diagnostics = loaded.diagnostics.clone();
    let program = if loaded.has_errors() {
        Program::default()
    } else {
        let (program, diags) = compile(&loaded.files, &loaded.sources, plugins);
        diagnostics.extend(diags);
        program
    };
    Rules {
        sources: loaded.sources,
        files: loaded.files,
        program,
        diagnostics,
        rules_version,
    }
}

/// Names a set of rule files: the git commit of the rules' folder (`+dirty` when it has
/// uncommitted changes) where it is in a repository, and always a hash of the files.
///
/// The hash covers each file's path relative to the rules' folder and its contents, in
/// sorted order, so it does not depend on where the command was run from. It is shown as 16
/// hex digits (64 bits), plenty to tell rule sets apart.
pub fn rules_version(roots: &[PathBuf], files: &[(PathBuf, &str)]) -> String {
    let base = base_dir(roots);
    let mut entries: Vec<(String, &str)> = files
        .iter()
        .map(|(path, text)| {
            let rel = path.strip_prefix(&base).unwrap_or(path);
            (rel.to_string_lossy().replace('\\', "/"), *text)
        })
        .collect();
    entries.sort();
    let mut hasher = Sha256::new();
    for (name, text) in &entries {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(text.as_bytes());
        hasher.update([0]);
    }
    let digest = hasher.finalize();
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    match git_version(&base) {
        Some(git) => format!("git:{git} sha256:{hex}"),
        None => format!("sha256:{hex}"),
    }
}

/// The folder the rules live in: the first root if it is a folder, else its parent.
fn base_dir(roots: &[PathBuf]) -> PathBuf {
    let Some(first) = roots.first() else {
        return PathBuf::from(".");
    };
    let first = normalize(first);
    let dir = if first.is_dir() {
        first
    } else {
        first.parent().map(Path::to_path_buf).unwrap_or_default()
    };
    if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    }
}

/// `3f2c1e0` or `3f2c1e0+dirty`; `None` outside a repository or without git. Both git
/// commands run at once: every `mlc` command waits for them before it starts.
fn git_version(dir: &Path) -> Option<String> {
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
    };
    let head = git(&["rev-parse", "--short", "HEAD"]).ok()?;
    let status = git(&["status", "--porcelain", "--", "."]);
    // Both waited for before either is judged: no child is left unreaped.
    let head = head.wait_with_output();
    let status = status.and_then(|s| s.wait_with_output());
    let head = head.ok()?;
    if !head.status.success() {
        return None;
    }
    let commit = String::from_utf8_lossy(&head.stdout).trim().to_string();
    if commit.is_empty() {
        return None;
    }
    let status = status.ok()?;
    let dirty = !status.status.success() || !status.stdout.is_empty();
    Some(if dirty {
        format!("{commit}+dirty")
    } else {
        commit
    })
}

/// What `mlc fmt` did or would do.
#[derive(Debug, Clone, Default)]
pub struct FmtReport {
    pub sources: Sources,
    /// Syntax errors and unreadable files: those files are left alone.
    pub diagnostics: Vec<Diagnostic>,
    /// Files whose canonical form differs from their text (rewritten unless `check`).
    pub changed: Vec<String>,
    /// Files examined.
    pub files: usize,
}

impl FmtReport {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Formats every `.mlc` file under `paths` (imports are not followed: only what is named).
/// With `check`, nothing is written.
pub fn fmt_paths(paths: &[PathBuf], check: bool) -> FmtReport {
    let fs = DiskFs;
    let mut report = FmtReport::default();
    let mut files: Vec<PathBuf> = Vec::new();
    for root in paths {
        if fs.is_dir(root) {
            match fs.list_mlc(root) {
                Ok(list) => files.extend(list),
                Err(err) => unreadable(&mut report, root, &err),
            }
        } else {
            files.push(root.clone());
        }
    }
    for path in files {
        let text = match fs.read(&path) {
            Ok(text) => text,
            Err(err) => {
                unreadable(&mut report, &path, &err);
                continue;
            }
        };
        report.files += 1;
        let name = path.to_string_lossy().replace('\\', "/");
        let id = report.sources.add(name.clone(), text);
        let text = report
            .sources
            .get(id)
            .map(|s| s.text.as_str())
            .unwrap_or("");
        match mlc_grammar::format_source(id, text) {
            Ok(formatted) if formatted != text => {
                if !check && let Err(err) = std::fs::write(&path, formatted) {
                    report.diagnostics.push(Diagnostic::error(
                        mlc_grammar::Code::FileRead,
                        id,
                        Default::default(),
                        format!("cannot write `{name}`: {err}"),
                    ));
                    continue;
                }
                report.changed.push(name);
            }
            Ok(_) => {}
            Err(diags) => report.diagnostics.extend(diags),
        }
    }
    report
}

fn unreadable(report: &mut FmtReport, path: &Path, err: &io::Error) {
    let name = path.to_string_lossy().replace('\\', "/");
    let id = report.sources.add(name.clone(), String::new());
    report.diagnostics.push(
        Diagnostic::error(
            mlc_grammar::Code::FileRead,
            id,
            Default::default(),
            format!("cannot read `{name}`: {err}"),
        )
        .with_help("give a `.mlc` file or a folder that contains some"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_version_hashes_names_and_contents_independently_of_order() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let a = (root.join("a.mlc"), "component a { key k time t }");
        let b = (root.join("b.mlc"), "component b { key k time t }");
        let v1 = rules_version(std::slice::from_ref(&root), &[a.clone(), b.clone()]);
        let v2 = rules_version(std::slice::from_ref(&root), &[b.clone(), a.clone()]);
        assert_eq!(v1, v2);
        assert!(
            v1.starts_with("sha256:") && v1.len() == "sha256:".len() + 16,
            "{v1}"
        );
        let changed = (root.join("b.mlc"), "component b { key k time t2 }");
        assert_ne!(
            v1,
            rules_version(std::slice::from_ref(&root), &[a, changed])
        );
    }

    #[test]
    fn rules_version_names_the_git_commit_and_dirtiness() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let git = |args: &[&str]| {
            Command::new("git")
                .arg("-C")
                .arg(&root)
                .args([
                    "-c",
                    "user.name=t",
                    "-c",
                    "user.email=t@t",
                    "-c",
                    "commit.gpgsign=false",
                ])
                .args(args)
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        };
        if !git(&["init", "-q"]) {
            return; // no git on this machine: the sha256-only form is tested above
        }
        std::fs::write(root.join("a.mlc"), "component a { key k time t }\n").unwrap();
        assert!(git(&["add", "a.mlc"]) && git(&["commit", "-q", "-m", "x"]));
        let rules = load_rules(std::slice::from_ref(&root));
        assert!(!rules.has_errors(), "{}", rules.render(false));
        assert!(
            rules.rules_version.starts_with("git:"),
            "{}",
            rules.rules_version
        );
        assert!(
            !rules.rules_version.contains("+dirty"),
            "{}",
            rules.rules_version
        );
        std::fs::write(root.join("a.mlc"), "component a { key k time t2 }\n").unwrap();
        let dirty = load_rules(std::slice::from_ref(&root));
        assert!(
            dirty.rules_version.contains("+dirty "),
            "{}",
            dirty.rules_version
        );
    }

    /// A FIFO named `*.mlc` blocks whoever opens it to read: loading must refuse it instead.
    #[cfg(unix)]
    #[test]
    fn a_fifo_named_mlc_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        std::fs::write(root.join("a.mlc"), "component a { key k time t }\n").unwrap();
        let fifo = root.join("b.mlc");
        assert!(
            Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let (tx, rx) = std::sync::mpsc::channel();
        let roots = vec![root.clone()];
        std::thread::spawn(move || {
            let rules = load_rules(&roots);
            let _ = tx.send((rules.has_errors(), rules.render(false)));
        });
        let outcome = rx.recv_timeout(std::time::Duration::from_secs(10));
        if outcome.is_err() {
            // Release the blocked reader before failing, so the thread ends.
            drop(std::fs::OpenOptions::new().write(true).open(&fifo));
        }
        let (errors, text) = outcome.expect("loading a folder with a FIFO blocked");
        assert!(errors, "{text}");
        assert!(text.contains("b.mlc") && text.contains("FIFO"), "{text}");
        // fmt reads through the same file system.
        let report = fmt_paths(std::slice::from_ref(&root), true);
        assert!(report.has_errors());
    }

    #[test]
    fn fmt_check_lists_without_writing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.mlc");
        let ugly = "component   a {key k time t}";
        std::fs::write(&path, ugly).unwrap();
        let report = fmt_paths(std::slice::from_ref(&path), true);
        assert_eq!(report.changed.len(), 1);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), ugly);
        let report = fmt_paths(std::slice::from_ref(&path), false);
        assert_eq!(report.changed.len(), 1);
        let again = fmt_paths(std::slice::from_ref(&path), true);
        assert!(again.changed.is_empty(), "fmt is idempotent on disk");
    }
}
