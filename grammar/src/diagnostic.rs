//! The one diagnostic type of mlc: a stable code, a message, a primary span, secondary
//! labels and a help line, rendered as `file:line:col` with the source line underlined.
//!
//! Every error the parser or the checker reports goes through here, so that `mlc lint`,
//! `mlc serve`'s reload log and the test snapshots all print the same text.

use crate::ast::Span;

/// Index of a file in a [`Sources`] set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct FileId(pub u32);

/// One loaded source file: the name shown in diagnostics (a path relative to where the
/// command was run, or a label such as `<stdin>`) and its text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
}

/// All files of one load, addressed by [`FileId`].
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub files: Vec<SourceFile>,
}

impl Sources {
    pub fn add(&mut self, name: impl Into<String>, text: impl Into<String>) -> FileId {
        self.files.push(SourceFile {
            name: name.into(),
            text: text.into(),
        });
        FileId((self.files.len() - 1) as u32)
    }
    pub fn get(&self, id: FileId) -> Option<&SourceFile> {
        self.files.get(id.0 as usize)
    }
    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, id: FileId, offset: u32) -> (usize, usize) {
        let Some(file) = self.get(id) else {
            return (1, 1);
        };
        let offset = (offset as usize).min(file.text.len());
        let before = file.text.get(..offset).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let col = before
            .get(line_start..)
            .map(|s| s.chars().count())
            .unwrap_or(0)
            + 1;
        (line, col)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    Error,
    Warning,
}

/// A span in a file with a short message shown under it.
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    pub file: FileId,
    pub span: Span,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub code: Code,
    pub level: Level,
    pub message: String,
    pub primary: Label,
    pub secondary: Vec<Label>,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(code: Code, file: FileId, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            level: Level::Error,
            message: message.into(),
            primary: Label {
                file,
                span,
                message: String::new(),
            },
            secondary: Vec::new(),
            help: None,
        }
    }
    pub fn warning(code: Code, file: FileId, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            level: Level::Warning,
            ..Diagnostic::error(code, file, span, message)
        }
    }
    /// The short text under the primary span.
    pub fn with_label(mut self, message: impl Into<String>) -> Self {
        self.primary.message = message.into();
        self
    }
    pub fn with_secondary(mut self, file: FileId, span: Span, message: impl Into<String>) -> Self {
        self.secondary.push(Label {
            file,
            span,
            message: message.into(),
        });
        self
    }
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
    pub fn is_error(&self) -> bool {
        self.level == Level::Error
    }
}

macro_rules! codes {
    ($($variant:ident = $code:literal : $title:literal,)*) => {
        /// Stable diagnostic codes. Append only: a code is never renumbered or reused,
        /// because users search for them and suppress them by code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code { $($variant,)* }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];
            /// The code as printed, e.g. `E0101`.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code,)* }
            }
            /// A one-line title, used in docs/diagnostics.md.
            pub fn title(self) -> &'static str {
                match self { $(Code::$variant => $title,)* }
            }
        }
    };
}

// E00xx: files and syntax (grammar). E01xx: names. E02xx: types and functions.
// E03xx: clause structure. E04xx: tests of checks. E05xx: plugins. A `W` code is a
// warning: the rules still load and run.
codes! {
    Syntax = "E0001": "syntax error",
    InvalidLiteral = "E0002": "invalid literal",
    FileRead = "E0003": "file cannot be read",
    ImportCycle = "E0004": "import cycle",
    UnknownComponent = "E0101": "unknown component",
    UnknownColumn = "E0102": "unknown column",
    UnknownFunction = "E0103": "unknown function",
    UnknownCheck = "E0104": "unknown check",
    DuplicateName = "E0105": "duplicate name",
    AmbiguousColumn = "E0106": "ambiguous column",
    UnknownStructField = "E0107": "unknown field of a result",
    ComponentNotInSource = "E0108": "component is not part of the check's source",
    TypeMismatch = "E0201": "type mismatch",
    WrongArity = "E0202": "wrong number of arguments",
    RowLevelExpect = "E0203": "`expect` on a row-level expression",
    NestedAggregate = "E0204": "aggregate where a row-level expression is needed",
    BaselineRequired = "E0205": "function needs a `baseline`",
    InvalidBaselineCall = "E0206": "`baseline.f()` with a function that is not an aggregate",
    InvalidArgument = "E0207": "invalid argument",
    NeedsJoin = "E0208": "function needs a joined source",
    MissingClause = "E0301": "missing clause",
    DuplicateClause = "E0302": "clause given twice",
    InvalidDuration = "E0303": "invalid duration",
    InvalidTime = "E0304": "invalid time",
    EmptyTimeRange = "E0305": "empty time range",
    BaselineMissingColumn = "E0306": "baseline component lacks a used column",
    JoinKeyMissing = "E0307": "join key missing",
    EmptyColumnList = "E0308": "`each` list has no columns",
    InvalidComponent = "E0309": "invalid component declaration",
    EachVarHidesColumn = "E0310": "`each` variable hides a column",
    GroupByKey = "W0311": "`group by` the component's key",
    UnknownRecordField = "E0401": "record field not in the component",
    RecordFieldType = "E0402": "record field of the wrong type",
    SliceKeyNotGrouped = "E0403": "slice key is not a `group by` column",
    PluginUnresolvable = "E0501": "plugin cannot be loaded",
    InvalidPluginOption = "E0502": "invalid plugin option",
    PluginShadowsBuiltin = "E0503": "plugin name hides a builtin function",
}
