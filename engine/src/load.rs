//! Loading a set of `.mlc` files: roots (files or folders), `import`s followed once each,
//! import cycles reported. Reading goes through [`FileSystem`] so the engine stays free of I/O.

use std::collections::HashMap;
use std::io;
use std::path::{Component, Path, PathBuf};

use mlc_grammar::ast::{self, Item, Span};
use mlc_grammar::{Code, Diagnostic, FileId, Sources};

/// Where `.mlc` files come from: the disk (`mlc_runtime::rules`) or memory (tests).
pub trait FileSystem {
    fn read(&self, path: &Path) -> io::Result<String>;
    /// Every `*.mlc` file below `dir`, recursively, sorted by path.
    fn list_mlc(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;
    fn is_dir(&self, path: &Path) -> bool;
}

/// One parsed file of a load.
#[derive(Debug, Clone)]
pub struct LoadedFile {
    pub id: FileId,
    /// The path the file was read from (imports and plugin paths resolve against it).
    pub path: PathBuf,
    pub ast: ast::File,
}

/// The outcome of a load: every file read, the ones that parsed, and what went wrong.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub sources: Sources,
    pub files: Vec<LoadedFile>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Reads every root (a file, or all `*.mlc` below a folder) and everything they import.
/// Each file is loaded once, whichever way it is reached; files appear in `files` in the
/// order they were first reached (depth-first, imports before the rest of the importer's
/// siblings), which is the order of names in `mlc explain`.
pub fn load(fs: &dyn FileSystem, roots: &[PathBuf]) -> Loaded {
    let mut loader = Loader {
        fs,
        out: Loaded::default(),
        seen: HashMap::new(),
        stack: Vec::new(),
    };
    for root in roots {
        let root = normalize(root);
        if fs.is_dir(&root) {
            match fs.list_mlc(&root) {
                Ok(paths) => {
                    for path in paths {
                        loader.visit(&normalize(&path), None);
                    }
                }
                Err(err) => loader.root_error(&root, &err),
            }
        } else {
            loader.visit(&root, None);
        }
    }
    loader.out
}

struct Loader<'a> {
    fs: &'a dyn FileSystem,
    out: Loaded,
    /// Normalised path -> its file id, for files already read (or being read).
    seen: HashMap<PathBuf, FileId>,
    /// The chain of files being loaded, for cycle reports.
    stack: Vec<(PathBuf, FileId)>,
}

/// The import statement that led to a file: the importing file and the span of the path.
type ImportSite = (FileId, Span);

impl Loader<'_> {
    fn visit(&mut self, path: &Path, site: Option<ImportSite>) {
        if let Some(pos) = self.stack.iter().position(|(p, _)| p == path) {
            if let Some((file, span)) = site {
                let chain: Vec<String> = self.stack[pos..]
                    .iter()
                    .map(|(p, _)| display(p))
                    .chain(std::iter::once(display(path)))
                    .collect();
                self.out.diagnostics.push(
                    Diagnostic::error(
                        Code::ImportCycle,
                        file,
                        span,
                        format!("import cycle: {}", chain.join(" -> ")),
                    )
                    .with_label("this import closes the cycle")
                    .with_help("move what both files need into a third file that both import"),
                );
            }
            return;
        }
        if self.seen.contains_key(path) {
            return;
        }
        let text = match self.fs.read(path) {
            Ok(text) => text,
            Err(err) => {
                match site {
                    Some((file, span)) => self.out.diagnostics.push(
                        Diagnostic::error(
                            Code::FileRead,
                            file,
                            span,
                            format!("cannot read `{}`: {err}", display(path)),
                        )
                        .with_label("imported here")
                        .with_help("import paths are relative to the importing file"),
                    ),
                    None => self.root_error(path, &err),
                }
                return;
            }
        };
        if text.len() > u32::MAX as usize {
            let id = self.out.sources.add(display(path), String::new());
            self.out.diagnostics.push(Diagnostic::error(
                Code::FileRead,
                id,
                Span::default(),
                format!("`{}` is larger than 4 GiB", display(path)),
            ));
            return;
        }
        let id = self.out.sources.add(display(path), text);
        self.seen.insert(path.to_path_buf(), id);
        let parsed = {
            let text = self
                .out
                .sources
                .get(id)
                .map(|f| f.text.as_str())
                .unwrap_or("");
            mlc_grammar::parse(id, text)
        };
        let ast = match parsed {
            Ok(ast) => ast,
            Err(diags) => {
                self.out.diagnostics.extend(diags);
                return;
            }
        };
        self.stack.push((path.to_path_buf(), id));
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        for item in &ast.items {
            if let Item::Import(import) = item {
                let target = normalize(&dir.join(&import.path.value));
                self.visit(&target, Some((id, import.path.span)));
            }
        }
        self.stack.pop();
        self.out.files.push(LoadedFile {
            id,
            path: path.to_path_buf(),
            ast,
        });
    }

    /// A root that cannot be read has no file to point into, so it gets an empty source of
    /// its own name: the diagnostic still reads `path: error[E0003]: ...`.
    fn root_error(&mut self, path: &Path, err: &io::Error) {
        let id = self.out.sources.add(display(path), String::new());
        self.out.diagnostics.push(
            Diagnostic::error(
                Code::FileRead,
                id,
                Span::default(),
                format!("cannot read `{}`: {err}", display(path)),
            )
            .with_help("give a `.mlc` file or a folder that contains some"),
        );
    }
}

fn display(path: &Path) -> String {
    path.to_string_lossy().replace('\\', "/")
}

/// Removes `.` and folds `dir/..` without touching the disk, so that one file reached by two
/// spellings (`a/../b.mlc`, `b.mlc`) is loaded once.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out: Vec<Component<'_>> = Vec::new();
    for comp in path.components() {
        match comp {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(comp),
            },
            _ => out.push(comp),
        }
    }
    let joined: PathBuf = out.iter().collect();
    if joined.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        joined
    }
}

/// An in-memory [`FileSystem`] for tests: a map from path to text; folders are implied by
/// the paths.
#[derive(Debug, Clone, Default)]
pub struct MemoryFs {
    files: std::collections::BTreeMap<PathBuf, String>,
}

impl MemoryFs {
    pub fn new() -> Self {
        MemoryFs::default()
    }
    pub fn with(mut self, path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        self.insert(path, text);
        self
    }
    pub fn insert(&mut self, path: impl Into<PathBuf>, text: impl Into<String>) {
        self.files.insert(normalize(&path.into()), text.into());
    }
}

impl FileSystem for MemoryFs {
    fn read(&self, path: &Path) -> io::Result<String> {
        self.files
            .get(&normalize(path))
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))
    }
    fn list_mlc(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let dir = normalize(dir);
        Ok(self
            .files
            .keys()
            .filter(|p| {
                (dir == Path::new(".") || p.starts_with(&dir))
                    && p.extension().is_some_and(|e| e == "mlc")
            })
            .cloned()
            .collect())
    }
    fn is_dir(&self, path: &Path) -> bool {
        let path = normalize(path);
        !self.files.contains_key(&path)
            && (path == Path::new(".") || self.files.keys().any(|p| p.starts_with(&path)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_folds_dots() {
        assert_eq!(
            normalize(Path::new("a/./b/../c.mlc")),
            PathBuf::from("a/c.mlc")
        );
        assert_eq!(normalize(Path::new("../x.mlc")), PathBuf::from("../x.mlc"));
        assert_eq!(normalize(Path::new("./")), PathBuf::from("."));
    }

    #[test]
    fn memory_fs_lists_sorted_recursively() {
        let fs = MemoryFs::new()
            .with("r/b.mlc", "")
            .with("r/sub/a.mlc", "")
            .with("r/a.mlc", "")
            .with("r/notes.txt", "")
            .with("other/c.mlc", "");
        let listed = fs.list_mlc(Path::new("r")).unwrap();
        assert_eq!(
            listed,
            vec![
                PathBuf::from("r/a.mlc"),
                PathBuf::from("r/b.mlc"),
                PathBuf::from("r/sub/a.mlc")
            ]
        );
        assert!(fs.is_dir(Path::new("r")));
        assert!(!fs.is_dir(Path::new("r/a.mlc")));
    }
}
