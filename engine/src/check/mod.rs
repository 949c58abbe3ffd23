//! The checker: resolves names, types every expression and compiles parsed files into a
//! [`Program`] of typed plans, reporting every error found in every file.
//!
//! Entry point: [`compile`]. Plugin metadata comes from a [`PluginResolver`] handed in by
//! the caller, because reading a Wasm module is I/O and the engine does none.

mod clauses;
mod expr;
mod suggest;
mod testblocks;
mod types;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::Path;

use mlc_grammar::ast::{self, Item, OptionValue, Span};
use mlc_grammar::{Code, Diagnostic, FileId, Sources};

use crate::functions;
use crate::load::{LoadedFile, normalize};
use crate::plan::{Origin, PluginDecl, PluginSignature, Program};
use crate::schema::{ComponentSchema, DataType, FieldSchema};

pub use suggest::{duration_text, parse_time};

/// Tells the checker what a plugin module accepts, given the module's resolved path.
pub trait PluginResolver {
    fn describe(&self, decl_path: &Path) -> Result<PluginSignature, String>;
}

/// A resolver for programs without plugins, and for tests: every module is "not found".
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPlugins;

impl PluginResolver for NoPlugins {
    fn describe(&self, decl_path: &Path) -> Result<PluginSignature, String> {
        Err(format!(
            "no plugin resolver is available to read `{}`",
            decl_path.display()
        ))
    }
}

/// Loads and compiles one `.mlc` text held in memory, without plugins: a program for tests,
/// examples and benchmarks. `Err` holds the errors, rendered.
pub fn compile_text(text: &str) -> Result<Program, String> {
    let fs = crate::load::MemoryFs::new().with("rules.mlc", text);
    let loaded = crate::load::load(&fs, &[std::path::PathBuf::from("rules.mlc")]);
    let render = |d: &[Diagnostic]| mlc_grammar::render(d, &loaded.sources, false);
    if loaded.has_errors() {
        return Err(render(&loaded.diagnostics));
    }
    let (program, diags) = compile(&loaded.files, &loaded.sources, &NoPlugins);
    let errors: Vec<Diagnostic> = diags.into_iter().filter(|d| d.is_error()).collect();
    match errors.is_empty() {
        true => Ok(program),
        false => Err(render(&errors)),
    }
}

/// Checks every file and builds the program. Checks and tests with errors are left out of
/// the program; the returned diagnostics say why. A caller must refuse to run a program
/// when any returned diagnostic is an error.
pub fn compile(
    files: &[LoadedFile],
    sources: &Sources,
    plugins: &dyn PluginResolver,
) -> (Program, Vec<Diagnostic>) {
    let mut cx = Globals {
        file_names: sources.files.iter().map(|f| f.name.clone()).collect(),
        ..Globals::default()
    };
    cx.collect_declarations(files, plugins);

    let mut program = Program {
        components: cx.components.iter().map(|c| c.schema.clone()).collect(),
        plugins: cx.plugins.iter().map(|p| p.decl.clone()).collect(),
        checks: Vec::new(),
        tests: Vec::new(),
    };
    let mut check_slices: HashMap<String, Option<Vec<(String, DataType)>>> = HashMap::new();
    let mut seen_checks: HashMap<String, (FileId, Span)> = HashMap::new();
    for file in files {
        for item in &file.ast.items {
            if let Item::Check(check) = item {
                if let Some(&(prev_file, prev_span)) = seen_checks.get(&check.name.name) {
                    cx.diags.push(duplicate(
                        "check",
                        &check.name,
                        file.id,
                        prev_file,
                        prev_span,
                    ));
                    continue;
                }
                seen_checks.insert(check.name.name.clone(), (file.id, check.name.span));
                let (plan, diags) = clauses::compile_check(&cx, file.id, check);
                let ok = !diags.iter().any(Diagnostic::is_error);
                cx.diags.extend(diags);
                match plan {
                    Some(plan) if ok => {
                        check_slices.insert(
                            plan.name.clone(),
                            Some(
                                plan.group_by
                                    .iter()
                                    .map(|c| (c.name.clone(), c.ty))
                                    .collect(),
                            ),
                        );
                        program.checks.push(plan);
                    }
                    _ => {
                        check_slices.insert(check.name.name.clone(), None);
                    }
                }
            }
        }
    }
    let mut seen_tests: HashMap<String, (FileId, Span)> = HashMap::new();
    for file in files {
        for item in &file.ast.items {
            if let Item::Test(test) = item {
                if let Some(&(prev_file, prev_span)) = seen_tests.get(&test.name.name) {
                    cx.diags
                        .push(duplicate("test", &test.name, file.id, prev_file, prev_span));
                    continue;
                }
                seen_tests.insert(test.name.name.clone(), (file.id, test.name.span));
                let before = cx.diags.len();
                let case = testblocks::compile_test(&mut cx, file, test, &check_slices);
                let ok = !cx.diags[before..].iter().any(Diagnostic::is_error);
                if let (Some(case), true) = (case, ok) {
                    program.tests.push(case);
                }
            }
        }
    }
    (program, cx.diags)
}

/// A component as declared, with where it was declared.
#[derive(Debug, Clone)]
pub(crate) struct ComponentEntry {
    pub schema: ComponentSchema,
    pub file: FileId,
    pub decl: ast::Component,
}

#[derive(Debug, Clone)]
pub(crate) struct PluginEntry {
    pub decl: PluginDecl,
}

/// What every check can see: components and plugins of all files.
#[derive(Default)]
pub(crate) struct Globals {
    pub components: Vec<ComponentEntry>,
    pub component_index: HashMap<String, usize>,
    pub plugins: Vec<PluginEntry>,
    pub plugin_index: HashMap<String, usize>,
    pub diags: Vec<Diagnostic>,
    pub file_names: Vec<String>,
}

impl Globals {
    pub fn component(&self, name: &str) -> Option<&ComponentEntry> {
        self.component_index.get(name).map(|&i| &self.components[i])
    }
    pub fn plugin(&self, name: &str) -> Option<&PluginEntry> {
        self.plugin_index.get(name).map(|&i| &self.plugins[i])
    }
    pub fn file_name(&self, id: FileId) -> String {
        self.file_names
            .get(id.0 as usize)
            .cloned()
            .unwrap_or_default()
    }
    pub(crate) fn component_names(&self) -> impl Iterator<Item = &str> {
        self.components.iter().map(|c| c.schema.name.as_str())
    }

    fn collect_declarations(&mut self, files: &[LoadedFile], resolver: &dyn PluginResolver) {
        for file in files {
            for item in &file.ast.items {
                match item {
                    Item::Component(c) => self.add_component(file.id, c),
                    Item::Plugin(p) => self.add_plugin(file, p, resolver),
                    _ => {}
                }
            }
        }
    }

    fn add_component(&mut self, file: FileId, c: &ast::Component) {
        if let Some(&i) = self.component_index.get(&c.name.name) {
            let prev = &self.components[i];
            let d = duplicate("component", &c.name, file, prev.file, prev.decl.name.span);
            self.diags.push(d);
            return;
        }
        if c.key.name == c.time.name {
            self.diags.push(
                Diagnostic::error(
                    Code::InvalidComponent,
                    file,
                    c.time.span,
                    format!("`{}` cannot be both the key and the time", c.time.name),
                )
                .with_label("also the key")
                .with_help(
                    "the key is a string column and the time a timestamp column: name two columns",
                ),
            );
        }
        let mut fields: Vec<FieldSchema> = Vec::new();
        let mut field_spans: HashMap<&str, Span> = HashMap::new();
        for f in &c.fields {
            if let Some(&prev) = field_spans.get(f.name.name.as_str()) {
                self.diags.push(
                    Diagnostic::error(
                        Code::DuplicateName,
                        file,
                        f.name.span,
                        format!(
                            "field `{}` is declared twice in `{}`",
                            f.name.name, c.name.name
                        ),
                    )
                    .with_label("declared again here")
                    .with_secondary(file, prev, "first declared here")
                    .with_help("remove one of the two declarations"),
                );
                continue;
            }
            field_spans.insert(&f.name.name, f.name.span);
            let ty = DataType::from(f.ty);
            let fixed = if f.name.name == c.key.name {
                Some(("key", DataType::String))
            } else if f.name.name == c.time.name {
                Some(("time", DataType::Timestamp))
            } else {
                None
            };
            if let Some((role, want)) = fixed
                && ty != want
            {
                self.diags.push(
                    Diagnostic::error(
                        Code::InvalidComponent,
                        file,
                        f.ty_span,
                        format!(
                            "`{}` is the {role} of `{}`, so it is a {}, not a {}",
                            f.name.name,
                            c.name.name,
                            want.name(),
                            ty.name()
                        ),
                    )
                    .with_label(format!("declared as {}", ty.name()))
                    .with_help(format!(
                        "declare it as `{}: {}` or leave it out of `fields`",
                        f.name.name,
                        want.name()
                    )),
                );
                continue;
            }
            fields.push(FieldSchema {
                name: f.name.name.clone(),
                ty,
            });
        }
        let schema = ComponentSchema {
            name: c.name.name.clone(),
            key: c.key.name.clone(),
            time: c.time.name.clone(),
            fields,
        };
        self.component_index
            .insert(c.name.name.clone(), self.components.len());
        self.components.push(ComponentEntry {
            schema,
            file,
            decl: c.clone(),
        });
    }

    fn add_plugin(&mut self, file: &LoadedFile, p: &ast::Plugin, resolver: &dyn PluginResolver) {
        if let Some(&i) = self.plugin_index.get(&p.name.name) {
            let prev = self.plugins[i].decl.origin;
            self.diags
                .push(duplicate("plugin", &p.name, file.id, prev.file, prev.span));
            return;
        }
        if functions::lookup(&p.name.name).is_some() {
            self.diags.push(
                Diagnostic::error(
                    Code::PluginShadowsBuiltin,
                    file.id,
                    p.name.span,
                    format!(
                        "plugin `{}` has the name of a builtin function",
                        p.name.name
                    ),
                )
                .with_label("a builtin has this name")
                .with_help(format!("rename the plugin, e.g. `{}_custom`", p.name.name)),
            );
        }
        let dir = file
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let path = normalize(&dir.join(&p.path.value));
        let mut decl = PluginDecl {
            name: p.name.name.clone(),
            path: path.clone(),
            memory_bytes: None,
            timeout_secs: None,
            fuel: None,
            signature: None,
            origin: Origin {
                file: file.id,
                span: p.name.span,
            },
        };
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for opt in &p.options {
            if let Some(&prev) = seen.get(opt.name.name.as_str()) {
                self.diags.push(
                    Diagnostic::error(
                        Code::InvalidPluginOption,
                        file.id,
                        opt.name.span,
                        format!("option `{}` is given twice", opt.name.name),
                    )
                    .with_secondary(file.id, prev, "first given here")
                    .with_help("keep one of the two"),
                );
                continue;
            }
            seen.insert(&opt.name.name, opt.name.span);
            let bad = |want: &str| {
                Diagnostic::error(
                    Code::InvalidPluginOption,
                    file.id,
                    opt.value_span,
                    format!("option `{}` takes {want}", opt.name.name),
                )
                .with_label("this value")
            };
            match (opt.name.name.as_str(), &opt.value) {
                ("memory", OptionValue::Size { bytes, .. }) if *bytes > 0 => {
                    decl.memory_bytes = Some(*bytes)
                }
                ("memory", _) => self.diags.push(
                    bad("a size larger than zero")
                        .with_help("write it with a unit, e.g. `memory 64MiB`"),
                ),
                ("timeout", OptionValue::Duration(d)) if d.seconds() > 0 => {
                    decl.timeout_secs = Some(d.seconds())
                }
                ("timeout", _) => self
                    .diags
                    .push(bad("a duration larger than zero").with_help("e.g. `timeout 2s`")),
                ("fuel", OptionValue::Int(n)) if *n > 0 => decl.fuel = Some(*n as u64),
                ("fuel", _) => self.diags.push(
                    bad("a positive number of instructions").with_help("e.g. `fuel 1000000`"),
                ),
                (other, _) => {
                    let mut d = Diagnostic::error(
                        Code::InvalidPluginOption,
                        file.id,
                        opt.name.span,
                        format!("unknown plugin option `{other}`"),
                    )
                    .with_label("not an option");
                    d = match suggest::best(other, ["memory", "timeout", "fuel"]) {
                        Some(s) => d.with_help(format!(
                            "did you mean `{s}`? The options are `memory`, `timeout` and `fuel`"
                        )),
                        None => d.with_help("the options are `memory`, `timeout` and `fuel`"),
                    };
                    self.diags.push(d);
                }
            }
        }
        match resolver.describe(&path) {
            Ok(sig) => decl.signature = Some(sig),
            Err(reason) => self.diags.push(
                Diagnostic::error(
                    Code::PluginUnresolvable,
                    file.id,
                    p.path.span,
                    format!("plugin `{}` cannot be loaded: {reason}", p.name.name),
                )
                .with_label(format!("resolved to `{}`", path.to_string_lossy()))
                .with_help(
                    "the path is relative to this file; build the module first if it is generated",
                ),
            ),
        }
        self.plugin_index
            .insert(p.name.name.clone(), self.plugins.len());
        self.plugins.push(PluginEntry { decl });
    }
}

pub(crate) fn duplicate(
    kind: &str,
    name: &ast::Ident,
    file: FileId,
    prev_file: FileId,
    prev_span: Span,
) -> Diagnostic {
    Diagnostic::error(
        Code::DuplicateName,
        file,
        name.span,
        format!("{kind} `{}` is defined twice", name.name),
    )
    .with_label("defined again here")
    .with_secondary(prev_file, prev_span, "first defined here")
    .with_help(format!(
        "{kind} names are unique across all loaded files: rename one of them"
    ))
}
