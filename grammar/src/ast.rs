//! The spanned syntax tree of one `.mlc` file, as written: no names resolved, no types.
//!
//! Every node carries the byte span it was parsed from so that the checker can point
//! diagnostics at exactly the offending text, and so that `mlc fmt` can put comments
//! back next to the node they were written beside.

use std::fmt;

/// A byte range `start..end` in one source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        // Files larger than 4 GiB are refused by the loader, so the casts cannot truncate.
        Span {
            start: start as u32,
            end: end as u32,
        }
    }
    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// A name as written (backticks removed), with its span.
#[derive(Debug, Clone, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// A string literal, unescaped, with the span of the whole quoted text.
#[derive(Debug, Clone, PartialEq)]
pub struct StrLit {
    pub value: String,
    pub span: Span,
}

/// A comment, `#` included, without the line break.
#[derive(Debug, Clone, PartialEq)]
pub struct Comment {
    pub text: String,
    pub span: Span,
}

/// One parsed file: its items in source order and every comment in it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct File {
    pub items: Vec<Item>,
    pub comments: Vec<Comment>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Import(Import),
    Component(Component),
    Plugin(Plugin),
    Check(Check),
    Test(Test),
}

impl Item {
    pub fn span(&self) -> Span {
        match self {
            Item::Import(i) => i.span,
            Item::Component(c) => c.span,
            Item::Plugin(p) => p.span,
            Item::Check(c) => c.span,
            Item::Test(t) => t.span,
        }
    }
}

/// `import "other.mlc"`
#[derive(Debug, Clone, PartialEq)]
pub struct Import {
    pub path: StrLit,
    pub span: Span,
}

/// `component NAME { key K time T fields { ... } }`
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    pub name: Ident,
    pub key: Ident,
    pub time: Ident,
    pub fields: Vec<Field>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: Ident,
    pub ty: FieldType,
    pub ty_span: Span,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldType {
    Int,
    Float,
    Bool,
    String,
    Timestamp,
}

impl FieldType {
    pub fn keyword(self) -> &'static str {
        match self {
            FieldType::Int => "int",
            FieldType::Float => "float",
            FieldType::Bool => "bool",
            FieldType::String => "string",
            FieldType::Timestamp => "timestamp",
        }
    }
}

/// `plugin NAME from "path" [{ option value, ... }]`
#[derive(Debug, Clone, PartialEq)]
pub struct Plugin {
    pub name: Ident,
    pub path: StrLit,
    pub options: Vec<PluginOption>,
    pub span: Span,
}

/// One sandbox setting of a plugin, e.g. `memory 64MiB` or `timeout 2s`.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginOption {
    pub name: Ident,
    pub value: OptionValue,
    pub value_span: Span,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum OptionValue {
    Duration(Duration),
    /// A byte size written with a unit: `B`, `KiB`, `MiB`, `GiB`.
    Size {
        bytes: u64,
        text: String,
    },
    Int(i64),
    Str(String),
}

/// A duration literal: an integer and one of the units `s m h d w`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duration {
    pub value: u64,
    pub unit: DurationUnit,
    pub span: Span,
}

impl Duration {
    /// Length in seconds, saturating (a duration of billions of weeks is refused by the checker).
    pub fn seconds(&self) -> u64 {
        self.value.saturating_mul(self.unit.seconds())
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.value, self.unit.suffix())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DurationUnit {
    Seconds,
    Minutes,
    Hours,
    Days,
    Weeks,
}

impl DurationUnit {
    pub fn seconds(self) -> u64 {
        match self {
            DurationUnit::Seconds => 1,
            DurationUnit::Minutes => 60,
            DurationUnit::Hours => 3600,
            DurationUnit::Days => 86_400,
            DurationUnit::Weeks => 604_800,
        }
    }
    pub fn suffix(self) -> &'static str {
        match self {
            DurationUnit::Seconds => "s",
            DurationUnit::Minutes => "m",
            DurationUnit::Hours => "h",
            DurationUnit::Days => "d",
            DurationUnit::Weeks => "w",
        }
    }
}

/// `check NAME { clause... }`. Clauses are kept in source order; the checker enforces
/// which may repeat.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub name: Ident,
    pub clauses: Vec<Clause>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    pub kind: ClauseKind,
    /// The whole clause, keyword included.
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ClauseKind {
    On(Source),
    Window(Duration),
    Delay(Duration),
    Every(Duration),
    Baseline(Baseline),
    Where(Expr),
    GroupBy(Vec<ColumnRef>),
    Each { var: Ident, list: EachList },
    MinRows { value: u64, span: Span },
    Expect(Expr),
    Severity { level: Severity, span: Span },
    For(Duration),
    Description(StrLit),
    Labels(Vec<Label>),
}

impl ClauseKind {
    /// The clause's keyword as written, for messages ("`window` is given twice").
    pub fn keyword(&self) -> &'static str {
        match self {
            ClauseKind::On(_) => "on",
            ClauseKind::Window(_) => "window",
            ClauseKind::Delay(_) => "delay",
            ClauseKind::Every(_) => "every",
            ClauseKind::Baseline(_) => "baseline",
            ClauseKind::Where(_) => "where",
            ClauseKind::GroupBy(_) => "group by",
            ClauseKind::Each { .. } => "each",
            ClauseKind::MinRows { .. } => "min_rows",
            ClauseKind::Expect(_) => "expect",
            ClauseKind::Severity { .. } => "severity",
            ClauseKind::For(_) => "for",
            ClauseKind::Description(_) => "description",
            ClauseKind::Labels(_) => "labels",
        }
    }
}

/// `A [left] join B using KEY ...`
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub first: Ident,
    pub joins: Vec<Join>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Join {
    pub left: bool,
    pub component: Ident,
    pub using: Ident,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Baseline {
    /// `baseline training`
    Component(Ident),
    /// `baseline offset 7d`
    Offset(Duration),
    /// `baseline from "T1" to "T2"` (the strings are checked as RFC 3339 by the checker)
    Range { from: StrLit, to: StrLit },
}

#[derive(Debug, Clone, PartialEq)]
pub enum EachList {
    Columns(Vec<ColumnRef>),
    Numeric(Ident),
    Categorical(Ident),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn keyword(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// `key: "value"` in `labels { }`
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    pub key: Ident,
    pub value: StrLit,
}

/// A column reference: `col` or `component.col`.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnRef {
    pub qualifier: Option<Ident>,
    pub name: Ident,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Literal(Literal),
    /// `x` or `A.x`. A dotted name is parsed as a column; whether `a.b` is really a
    /// qualified column is decided by the checker (only `call(...).field` is a field access).
    Column(ColumnRef),
    /// `name(args)`; `count()` has no arguments.
    Call {
        name: Ident,
        args: Vec<Expr>,
    },
    /// `baseline.name(args)`
    BaselineCall {
        name: Ident,
        args: Vec<Expr>,
    },
    /// `expr.field`, e.g. `ks(x).pvalue`
    Field {
        base: Box<Expr>,
        field: Ident,
    },
    Unary {
        op: UnaryOp,
        operand: Box<Expr>,
    },
    Binary {
        op: BinaryOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// `x is null` / `x is not null`
    IsNull {
        operand: Box<Expr>,
        negated: bool,
    },
    /// `x in [a, b]` / `x not in [a, b]`
    InList {
        operand: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
    /// `x between a and b` (inclusive)
    Between {
        operand: Box<Expr>,
        low: Box<Expr>,
        high: Box<Expr>,
    },
    /// `x within tol of target`
    Within {
        operand: Box<Expr>,
        tolerance: Box<Expr>,
        target: Box<Expr>,
    },
    /// Parentheses as written, kept so `mlc fmt` does not drop or add them.
    Paren(Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    Neg,
    Not,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
}

impl BinaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "or",
            BinaryOp::And => "and",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
        }
    }
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Int(i64),
    /// A float as written (`3.5`, `1e-6`): `text` keeps the spelling for `mlc fmt`.
    Float {
        value: f64,
        text: String,
    },
    /// `10%`: `value` is the fraction (0.1); `text` is the number as written ("10").
    Percent {
        value: f64,
        text: String,
    },
    Duration(Duration),
    Str(String),
    Bool(bool),
    Null,
}

/// `test NAME { at "T" rows ... assert ... }`
#[derive(Debug, Clone, PartialEq)]
pub struct Test {
    pub name: Ident,
    pub at: StrLit,
    pub rows: Vec<Rows>,
    pub asserts: Vec<Assert>,
    pub span: Span,
}

/// `rows COMPONENT from "file.csv"` or `rows COMPONENT [ {..}, ... ]`
#[derive(Debug, Clone, PartialEq)]
pub struct Rows {
    pub component: Ident,
    pub source: RowsSource,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RowsSource {
    File(StrLit),
    Inline(Vec<Record>),
}

/// `{ name: literal, ... }`; a leading `-` on a number literal is allowed.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub fields: Vec<RecordField>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecordField {
    pub name: Ident,
    pub value: Literal,
    pub value_span: Span,
}

/// `assert CHECK passes|fails|is insufficient|is error [for { slice }]`
#[derive(Debug, Clone, PartialEq)]
pub struct Assert {
    pub check: Ident,
    pub expected: Expected,
    pub slice: Option<Record>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Expected {
    Passes,
    Fails,
    Insufficient,
    Error,
}
