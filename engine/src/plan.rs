//! The typed logical plan of a checked program: what the executor runs and what
//! `mlc explain` prints (`Display` on [`CheckPlan`]).
//!
//! A plan names exactly what it needs from storage: per component, the columns and the time
//! range relative to the evaluation time `T`, so a store can be asked for no more.

use std::path::PathBuf;

use mlc_grammar::ast::{BinaryOp, Expected, Severity, Span, UnaryOp};
use mlc_grammar::diagnostic::FileId;

use crate::functions::Function;
use crate::schema::{ComponentSchema, DataType};
use crate::value::Value;

/// Everything loaded and checked: components, plugins, checks and tests, across all files.
#[derive(Debug, Clone, Default)]
pub struct Program {
    pub components: Vec<ComponentSchema>,
    pub plugins: Vec<PluginDecl>,
    pub checks: Vec<CheckPlan>,
    pub tests: Vec<TestCase>,
}

impl Program {
    pub fn component(&self, name: &str) -> Option<&ComponentSchema> {
        self.components.iter().find(|c| c.name == name)
    }
    pub fn check(&self, name: &str) -> Option<&CheckPlan> {
        self.checks.iter().find(|c| c.name == name)
    }
}

/// Where a plan element was written, for messages at evaluation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Origin {
    pub file: FileId,
    pub span: Span,
}

/// `plugin NAME from "path" { ... }` with the path resolved against the declaring file.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginDecl {
    pub name: String,
    pub path: PathBuf,
    /// Memory cap in bytes (`memory 64MiB`); `None` = the host's default.
    pub memory_bytes: Option<u64>,
    /// Wall-clock bound per call in seconds (`timeout 2s`); `None` = the host's default.
    pub timeout_secs: Option<u64>,
    /// Instruction budget per evaluation (`fuel 1000000`); `None` = the host's default.
    pub fuel: Option<u64>,
    /// Argument types and result, as the module's metadata describes them (read at lint time).
    pub signature: Option<PluginSignature>,
    pub origin: Origin,
}

/// A plugin's self-description, as its metadata states it.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginSignature {
    pub args: Vec<DataType>,
}

/// One check, compiled.
#[derive(Debug, Clone)]
pub struct CheckPlan {
    pub name: String,
    /// The file's name as shown in results (`checks/model.mlc`).
    pub file: String,
    pub origin: Origin,
    pub source: SourcePlan,
    /// `window D` in seconds; `None` = all rows with `time < end`.
    pub window_secs: Option<u64>,
    /// `delay D` in seconds: `end = T - delay`.
    pub delay_secs: u64,
    /// `every D` in seconds (default 60).
    pub every_secs: u64,
    pub baseline: Option<BaselinePlan>,
    /// `where`, applied to current and baseline rows.
    pub filter: Option<RowExpr>,
    pub group_by: Vec<ColumnId>,
    pub each: Option<EachPlan>,
    /// Default 1.
    pub min_rows: u64,
    /// The de-duplicated aggregates the expects need, computed once per row set.
    pub aggregates: Vec<AggregateCall>,
    pub expects: Vec<ExpectPlan>,
    pub severity: Severity,
    pub for_secs: u64,
    pub description: Option<String>,
    pub labels: Vec<(String, String)>,
}

impl CheckPlan {
    /// Every column the check's row expressions name (`where`, `group by`, aggregate
    /// arguments, `each` columns), once each, in first-use order. Join keys appear only where
    /// an expression names them; the event time, which `latest(x)` reads implicitly, is not
    /// included (the caller knows it).
    pub fn used_columns(&self) -> Vec<ColumnId> {
        let mut out: Vec<ColumnId> = Vec::new();
        let mut add = |c: &ColumnId| {
            if !out.contains(c) {
                out.push(c.clone());
            }
        };
        self.visit_named_columns(&mut add);
        if let Some(each) = &self.each {
            for c in &each.columns {
                add(c);
            }
        }
        out
    }

    /// Of `columns` (what the store is asked for of the first component, or of a component
    /// baseline), those a pass over the `each` columns numbered `keep` alone reads: all but
    /// the other `each` columns, which stay when an expression (`where`, `group by`, an
    /// aggregate's argument) names them too.
    pub fn columns_for_each(
        &self,
        columns: &[String],
        keep: std::ops::Range<usize>,
    ) -> Vec<String> {
        let Some(each) = &self.each else {
            return columns.to_vec();
        };
        let mut named: Vec<ColumnId> = Vec::new();
        self.visit_named_columns(&mut |c: &ColumnId| {
            if c.source == 0 && !named.contains(c) {
                named.push(c.clone());
            }
        });
        columns
            .iter()
            .filter(|c| {
                let other_each = each
                    .columns
                    .iter()
                    .enumerate()
                    .any(|(i, e)| !keep.contains(&i) && e.source == 0 && e.name == **c);
                let kept = each
                    .columns
                    .iter()
                    .enumerate()
                    .any(|(i, e)| keep.contains(&i) && e.source == 0 && e.name == **c);
                kept || !other_each || named.iter().any(|n| n.name == **c)
            })
            .cloned()
            .collect()
    }

    /// The columns a read feeding only the aggregates numbered in `aggregates` needs: those
    /// `where` and `group by` name, the `each` columns, and those aggregates' arguments.
    pub fn columns_for_aggregates(&self, aggregates: &[usize]) -> Vec<ColumnId> {
        let mut out: Vec<ColumnId> = Vec::new();
        let mut add = |c: &ColumnId| {
            if !out.contains(c) {
                out.push(c.clone());
            }
        };
        self.visit_columns_of(aggregates.iter().copied(), &mut add);
        for c in self.each.iter().flat_map(|e| &e.columns) {
            add(c);
        }
        out
    }

    /// Every column an expression names (`where`, `group by`, aggregate arguments), repeats
    /// included; not the `each` columns, which only `each` names.
    fn visit_named_columns(&self, add: &mut impl FnMut(&ColumnId)) {
        self.visit_columns_of(0..self.aggregates.len(), add);
    }

    /// The columns `where` and `group by` name, and the arguments of the aggregates numbered
    /// in `aggregates`.
    fn visit_columns_of(
        &self,
        aggregates: impl Iterator<Item = usize>,
        add: &mut impl FnMut(&ColumnId),
    ) {
        if let Some(f) = &self.filter {
            f.visit_columns(add);
        }
        for c in &self.group_by {
            add(c);
        }
        for i in aggregates {
            for e in self.aggregates.get(i).map_or(&[][..], |a| &a.args) {
                e.visit_columns(add);
            }
        }
    }

    /// The columns the check reads only through `c is [not] null` on the bare column (in
    /// `where` and aggregate arguments), never for their values: the store may leave their
    /// values out (`Store::scan_batches_nulls_only`). A column also used any other way, as a
    /// `group by` or `each` column, or as a join key, is not one of them.
    pub fn nulls_only_columns(&self) -> Vec<ColumnId> {
        let (mut nulls, mut values): (Vec<ColumnId>, Vec<ColumnId>) = (Vec::new(), Vec::new());
        let mut add = |c: &ColumnId, nulls_only: bool| {
            let into = if nulls_only { &mut nulls } else { &mut values };
            if !into.contains(c) {
                into.push(c.clone());
            }
        };
        if let Some(f) = &self.filter {
            f.visit_column_uses(&mut add);
        }
        for a in &self.aggregates {
            for e in &a.args {
                e.visit_column_uses(&mut add);
            }
        }
        let named = |c: &ColumnId, source: usize, name: &str| c.source == source && c.name == name;
        nulls.retain(|c| {
            !values
                .iter()
                .chain(&self.group_by)
                .chain(self.each.iter().flat_map(|e| &e.columns))
                .any(|v| named(v, c.source, &c.name))
                && !self.source.joins.iter().any(|j| {
                    named(&j.left_key, c.source, &c.name)
                        || j.right == c.source && j.right_key == c.name
                })
        });
        nulls
    }
}

impl RowExpr {
    /// Calls `f` on every column this expression names.
    pub(crate) fn visit_columns(&self, f: &mut impl FnMut(&ColumnId)) {
        self.visit_column_uses(&mut |c, _| f(c));
    }

    /// Calls `f` on every column this expression names, with `true` where the use reads only
    /// whether the value is null (`c is null`, `c is not null` on the bare column).
    pub(crate) fn visit_column_uses(&self, f: &mut impl FnMut(&ColumnId, bool)) {
        match &self.kind {
            RowExprKind::Column(c) => f(c, false),
            RowExprKind::EachVar | RowExprKind::Literal(_) => {}
            RowExprKind::IsNull { operand, .. } => match &operand.kind {
                RowExprKind::Column(c) => f(c, true),
                _ => operand.visit_column_uses(f),
            },
            RowExprKind::Unary { operand, .. } => operand.visit_column_uses(f),
            RowExprKind::Binary { lhs, rhs, .. } => {
                lhs.visit_column_uses(f);
                rhs.visit_column_uses(f);
            }
            RowExprKind::InList { operand, list, .. } => {
                operand.visit_column_uses(f);
                for e in list {
                    e.visit_column_uses(f);
                }
            }
            RowExprKind::Between { operand, low, high } => {
                operand.visit_column_uses(f);
                low.visit_column_uses(f);
                high.visit_column_uses(f);
            }
            RowExprKind::Within {
                operand,
                tolerance,
                target,
                ..
            } => {
                operand.visit_column_uses(f);
                tolerance.visit_column_uses(f);
                target.visit_column_uses(f);
            }
            RowExprKind::Scalar { args, .. } => {
                for e in args {
                    e.visit_column_uses(f);
                }
            }
        }
    }
}

/// The rows a check reads: the first component, then joins in order.
#[derive(Debug, Clone, PartialEq)]
pub struct SourcePlan {
    /// `components[0]` is the first component of `on`; `components[i]` for i >= 1 is the
    /// right side of `joins[i - 1]`.
    pub components: Vec<SourceComponent>,
    pub joins: Vec<JoinPlan>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SourceComponent {
    pub name: String,
    /// The columns of this component the check reads (key, time and every used column),
    /// so the store is asked for these only.
    pub columns: Vec<String>,
}

/// `left join`/`join` of `components[right]` on `left_key == right_key`, taking per key the
/// latest row of the right component with `time < T`.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinPlan {
    pub left: bool,
    pub right: usize,
    pub left_key: ColumnId,
    pub right_key: String,
}

/// A column of the source: which component (index into `SourcePlan::components`) and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ColumnId {
    pub source: usize,
    pub name: String,
    pub ty: DataType,
}

#[derive(Debug, Clone, PartialEq)]
pub enum BaselinePlan {
    /// All rows of another component with `time < end`, read with the same column names.
    Component { name: String, columns: Vec<String> },
    /// The same source, a window of the same length ending at `end - offset`.
    Offset { offset_secs: u64 },
    /// The same source over `[from, to)`, microseconds since the epoch.
    Range { from_us: i64, to_us: i64 },
}

/// `each NAME in LIST`: expects and aggregates refer to the column through
/// [`RowExprKind::EachVar`]; the executor substitutes each column in turn.
#[derive(Debug, Clone, PartialEq)]
pub struct EachPlan {
    pub var: String,
    pub columns: Vec<ColumnId>,
}

/// A row-level expression, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct RowExpr {
    pub kind: RowExprKind,
    /// `None` only for a bare `null` literal.
    pub ty: Option<DataType>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RowExprKind {
    Column(ColumnId),
    /// The column of the current `each` iteration.
    EachVar,
    Literal(Value),
    Unary {
        op: UnaryOp,
        operand: Box<RowExpr>,
    },
    Binary {
        op: BinaryOp,
        lhs: Box<RowExpr>,
        rhs: Box<RowExpr>,
    },
    IsNull {
        operand: Box<RowExpr>,
        negated: bool,
    },
    InList {
        operand: Box<RowExpr>,
        list: Vec<RowExpr>,
        negated: bool,
    },
    Between {
        operand: Box<RowExpr>,
        low: Box<RowExpr>,
        high: Box<RowExpr>,
    },
    /// `abs(operand - target) <= tolerance` (times `abs(target)` when `relative`).
    Within {
        operand: Box<RowExpr>,
        tolerance: Box<RowExpr>,
        target: Box<RowExpr>,
        relative: bool,
    },
    /// A builtin scalar function (plugins are aggregates), resolved when the check is compiled.
    Scalar {
        function: &'static dyn Function,
        args: Vec<RowExpr>,
    },
}

/// Which rows an aggregate runs over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RowSet {
    Current,
    /// `baseline.f(...)`
    Baseline,
    /// Two-sample functions see both.
    Both,
}

/// The function an aggregate call runs, resolved when the check is compiled: evaluation
/// never looks a name up. Everything a builtin does is in its file under `functions/`.
#[derive(Debug, Clone, PartialEq)]
pub enum FunctionRef {
    Builtin(&'static dyn Function),
    /// A declared plugin, by its name in `Program::plugins`; the executor loads the module.
    Plugin(String),
}

impl FunctionRef {
    /// The name as written in the check.
    pub fn name(&self) -> &str {
        match self {
            FunctionRef::Builtin(f) => f.name(),
            FunctionRef::Plugin(name) => name,
        }
    }

    /// The builtin, unless this is a plugin.
    pub fn builtin(&self) -> Option<&'static dyn Function> {
        match self {
            FunctionRef::Builtin(f) => Some(*f),
            FunctionRef::Plugin(_) => None,
        }
    }

    /// What a special builtin reads instead of argument columns (`freshness`, `coverage`).
    pub fn special_input(&self) -> Option<crate::functions::SpecialInput> {
        self.builtin().and_then(|f| f.special_input())
    }
}

/// One aggregate to compute, e.g. `recall(prediction, label)` over the current rows.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateCall {
    pub function: FunctionRef,
    pub args: Vec<RowExpr>,
    pub rows: RowSet,
    /// As written (canonical form), the key of this aggregate in a result's `values`.
    pub text: String,
}

/// An expression over aggregate values: what an `expect` asserts.
#[derive(Debug, Clone, PartialEq)]
pub enum AggExpr {
    Literal(Value),
    /// Index into `CheckPlan::aggregates`.
    Aggregate(usize),
    /// `ks(x).pvalue`
    Field {
        base: Box<AggExpr>,
        field: String,
    },
    Unary {
        op: UnaryOp,
        operand: Box<AggExpr>,
    },
    Binary {
        op: BinaryOp,
        lhs: Box<AggExpr>,
        rhs: Box<AggExpr>,
    },
    IsNull {
        operand: Box<AggExpr>,
        negated: bool,
    },
    InList {
        operand: Box<AggExpr>,
        list: Vec<AggExpr>,
        negated: bool,
    },
    Between {
        operand: Box<AggExpr>,
        low: Box<AggExpr>,
        high: Box<AggExpr>,
    },
    Within {
        operand: Box<AggExpr>,
        tolerance: Box<AggExpr>,
        target: Box<AggExpr>,
        relative: bool,
    },
    /// A builtin scalar function on aggregate values (`abs(mean(x) - 1)`).
    Scalar {
        function: &'static dyn Function,
        args: Vec<AggExpr>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExpectPlan {
    /// As written (canonical form), e.g. `recall(prediction, label) >= 0.9`.
    pub text: String,
    pub expr: AggExpr,
    pub origin: Origin,
}

/// A `test` block, checked: times parsed, files resolved, records typed against the component.
#[derive(Debug, Clone)]
pub struct TestCase {
    pub name: String,
    pub file: String,
    pub origin: Origin,
    /// Microseconds since the epoch.
    pub at_us: i64,
    pub rows: Vec<TestRows>,
    pub asserts: Vec<TestAssert>,
}

#[derive(Debug, Clone)]
pub struct TestRows {
    pub component: String,
    pub source: TestRowsSource,
}

#[derive(Debug, Clone)]
pub enum TestRowsSource {
    /// A CSV file, resolved against the declaring file.
    File(PathBuf),
    /// Records as written; values are literals, not yet coerced to the component's types.
    Inline(Vec<Vec<(String, Value)>>),
}

#[derive(Debug, Clone)]
pub struct TestAssert {
    pub check: String,
    pub expected: Expected,
    /// `for { country: "DE" }`; `None` asserts on every result of the check.
    pub slice: Option<Vec<(String, Value)>>,
    pub origin: Origin,
}
