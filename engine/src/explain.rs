//! What `mlc explain` prints: `Display` for [`CheckPlan`], spelling out the rows a check
//! reads, its time bounds relative to `T`, the aggregates it computes and what it asserts.
//!
//! The text is stable (snapshot-tested) and carries no line numbers, so that a formatted file
//! explains exactly like the original.

use std::fmt::{self, Write as _};

use crate::plan::{
    AggExpr, BaselinePlan, CheckPlan, ColumnId, FunctionRef, Program, RowExpr, RowExprKind, RowSet,
};
use crate::value::Value;
use mlc_grammar::ast::{BinaryOp, UnaryOp};

fn dur(secs: u64) -> String {
    crate::check::duration_text(secs)
}

fn time_text(us: i64) -> String {
    match jiff::Timestamp::from_microsecond(us) {
        Ok(t) => t.to_string(),
        Err(_) => format!("{us}us"),
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => format!("{f}"),
        Value::Str(s) => format!("{s:?}"),
        Value::Timestamp(us) => format!("\"{}\"", time_text(*us)),
        Value::Duration(s) if *s >= 0.0 && s.fract() == 0.0 => dur(*s as u64),
        Value::Duration(s) => format!("{s}s"),
        Value::Struct(fields) => {
            let inner: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{k}: {}", value_text(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
    }
}

/// The end of the current window: `T` or `T - delay`.
fn end_text(plan: &CheckPlan) -> String {
    if plan.delay_secs == 0 {
        "T".into()
    } else {
        format!("T - {}", dur(plan.delay_secs))
    }
}

/// Writes expressions with column names qualified when the source has several components,
/// and every compound sub-expression parenthesised, so the explanation shows how the text
/// was parsed.
struct Printer<'a> {
    plan: &'a CheckPlan,
}

impl Printer<'_> {
    fn column(&self, c: &ColumnId) -> String {
        if self.plan.source.components.len() > 1 {
            let comp = self
                .plan
                .source
                .components
                .get(c.source)
                .map(|s| s.name.as_str())
                .unwrap_or("?");
            format!("{comp}.{}", c.name)
        } else {
            c.name.clone()
        }
    }

    fn nested_row(&self, e: &RowExpr) -> String {
        let s = self.row(e);
        match e.kind {
            RowExprKind::Column(_)
            | RowExprKind::EachVar
            | RowExprKind::Literal(_)
            | RowExprKind::Scalar { .. } => s,
            _ => format!("({s})"),
        }
    }

    fn row(&self, e: &RowExpr) -> String {
        let shape = match &e.kind {
            RowExprKind::Column(c) => return self.column(c),
            RowExprKind::EachVar => {
                return self
                    .plan
                    .each
                    .as_ref()
                    .map(|e| e.var.clone())
                    .unwrap_or_else(|| "?".into());
            }
            RowExprKind::Literal(v) => return value_text(v),
            RowExprKind::Unary { op, operand } => Shape::Unary(*op, &**operand),
            RowExprKind::Binary { op, lhs, rhs } => Shape::Binary(*op, &**lhs, &**rhs),
            RowExprKind::IsNull { operand, negated } => Shape::IsNull(&**operand, *negated),
            RowExprKind::InList {
                operand,
                list,
                negated,
            } => Shape::InList(&**operand, list, *negated),
            RowExprKind::Between { operand, low, high } => {
                Shape::Between(&**operand, &**low, &**high)
            }
            RowExprKind::Within {
                operand,
                tolerance,
                target,
                relative,
            } => Shape::Within(&**operand, &**tolerance, &**target, *relative),
            RowExprKind::Scalar { function, args } => Shape::Scalar(function.name(), args),
        };
        shape_text(shape, &|e| self.row(e), &|e| self.nested_row(e))
    }

    fn nested_agg(&self, e: &AggExpr) -> String {
        let s = self.agg(e);
        match e {
            AggExpr::Literal(_)
            | AggExpr::Aggregate(_)
            | AggExpr::Field { .. }
            | AggExpr::Scalar { .. } => s,
            _ => format!("({s})"),
        }
    }

    fn agg(&self, e: &AggExpr) -> String {
        let shape = match e {
            AggExpr::Literal(v) => return value_text(v),
            AggExpr::Aggregate(i) => return format!("a{i}"),
            AggExpr::Field { base, field } => return format!("{}.{field}", self.nested_agg(base)),
            AggExpr::Unary { op, operand } => Shape::Unary(*op, &**operand),
            AggExpr::Binary { op, lhs, rhs } => Shape::Binary(*op, &**lhs, &**rhs),
            AggExpr::IsNull { operand, negated } => Shape::IsNull(&**operand, *negated),
            AggExpr::InList {
                operand,
                list,
                negated,
            } => Shape::InList(&**operand, list, *negated),
            AggExpr::Between { operand, low, high } => Shape::Between(&**operand, &**low, &**high),
            AggExpr::Within {
                operand,
                tolerance,
                target,
                relative,
            } => Shape::Within(&**operand, &**tolerance, &**target, *relative),
            AggExpr::Scalar { function, args } => Shape::Scalar(function.name(), args),
        };
        shape_text(shape, &|e| self.agg(e), &|e| self.nested_agg(e))
    }
}

/// The operators row and aggregate expressions share, seen alike so that one function
/// ([`shape_text`]) writes both levels.
enum Shape<'e, E> {
    Unary(UnaryOp, &'e E),
    Binary(BinaryOp, &'e E, &'e E),
    IsNull(&'e E, bool),
    InList(&'e E, &'e [E], bool),
    Between(&'e E, &'e E, &'e E),
    Within(&'e E, &'e E, &'e E, bool),
    Scalar(&'static str, &'e [E]),
}

/// An operator's text: `text` writes an operand as is, `nested` parenthesised when compound.
fn shape_text<E>(
    shape: Shape<'_, E>,
    text: &dyn Fn(&E) -> String,
    nested: &dyn Fn(&E) -> String,
) -> String {
    let not = |negated: bool| if negated { "not " } else { "" };
    match shape {
        Shape::Unary(UnaryOp::Neg, operand) => format!("-{}", nested(operand)),
        Shape::Unary(UnaryOp::Not, operand) => format!("not {}", nested(operand)),
        Shape::Binary(op, lhs, rhs) => format!("{} {} {}", nested(lhs), op.symbol(), nested(rhs)),
        Shape::IsNull(operand, negated) => format!("{} is {}null", nested(operand), not(negated)),
        Shape::InList(operand, list, negated) => {
            let items: Vec<String> = list.iter().map(text).collect();
            format!(
                "{} {}in [{}]",
                nested(operand),
                not(negated),
                items.join(", ")
            )
        }
        Shape::Between(operand, low, high) => format!(
            "{} between {} and {}",
            nested(operand),
            nested(low),
            nested(high)
        ),
        Shape::Within(operand, tolerance, target, relative) => format!(
            "abs({} - {}) <= {}{}",
            nested(operand),
            nested(target),
            nested(tolerance),
            if relative {
                format!(" * abs({})", text(target))
            } else {
                String::new()
            }
        ),
        Shape::Scalar(function, args) => {
            let items: Vec<String> = args.iter().map(text).collect();
            format!("{function}({})", items.join(", "))
        }
    }
}

impl fmt::Display for CheckPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = Printer { plan: self };
        let comps = &self.source.components;
        let name = |i: usize| comps.get(i).map(|c| c.name.as_str()).unwrap_or("?");
        let end = end_text(self);
        writeln!(f, "check {} ({})", self.name, self.file)?;

        let mut source = name(0).to_string();
        for j in &self.source.joins {
            write!(
                source,
                " {}join {} using {}",
                if j.left { "left " } else { "" },
                name(j.right),
                j.right_key
            )?;
        }
        writeln!(f, "  source: {source}")?;
        for j in &self.source.joins {
            let left = name(j.left_key.source);
            let right = name(j.right);
            writeln!(
                f,
                "    {}join {right}: each {} row of the window takes the latest {right} row with {right}.{} == {left}.{} and time < T, however late it arrived",
                if j.left { "left " } else { "" },
                name(0),
                j.right_key,
                j.left_key.name,
            )?;
            if j.left {
                writeln!(f, "      rows without a match keep {right}'s columns null")?;
            } else {
                writeln!(
                    f,
                    "      rows without a match, or with a null key, are dropped"
                )?;
            }
        }
        match self.window_secs {
            Some(w) => {
                let start = if self.delay_secs == 0 {
                    format!("T - {}", dur(w))
                } else {
                    format!("{end} - {}", dur(w))
                };
                writeln!(f, "  window: [{start}, {end}) of {}'s time", name(0))?;
            }
            None => writeln!(f, "  window: every row of {} with time < {end}", name(0))?,
        }
        writeln!(f, "  reads:")?;
        for c in comps {
            writeln!(f, "    {}: {}", c.name, c.columns.join(", "))?;
        }
        match &self.baseline {
            None => writeln!(f, "  baseline: none")?,
            Some(BaselinePlan::Component { name, columns }) => {
                writeln!(f, "  baseline: every row of {name} with time < {end}")?;
                writeln!(f, "    reads {name}: {}", columns.join(", "))?;
            }
            Some(BaselinePlan::Offset { offset_secs }) => {
                let b_end = format!("{end} - {}", dur(*offset_secs));
                match self.window_secs {
                    Some(w) => writeln!(
                        f,
                        "  baseline: the same source over [{b_end} - {}, {b_end})",
                        dur(w)
                    )?,
                    None => writeln!(
                        f,
                        "  baseline: the same source over every row with time < {b_end}"
                    )?,
                }
            }
            Some(BaselinePlan::Range { from_us, to_us }) => {
                writeln!(
                    f,
                    "  baseline: the same source over [{}, {})",
                    time_text(*from_us),
                    time_text(*to_us)
                )?;
            }
        }
        match &self.filter {
            None => writeln!(f, "  filter: none")?,
            Some(e) => writeln!(
                f,
                "  filter: {} (current{} rows; null counts as false)",
                p.row(e),
                if self.baseline.is_some() {
                    " and baseline"
                } else {
                    ""
                }
            )?,
        }
        if self.group_by.is_empty() {
            writeln!(f, "  slices: one result")?;
        } else {
            let cols: Vec<String> = self.group_by.iter().map(|c| p.column(c)).collect();
            writeln!(
                f,
                "  slices: group by {} (null is a slice of its own)",
                cols.join(", ")
            )?;
        }
        if let Some(each) = &self.each {
            let cols: Vec<String> = each
                .columns
                .iter()
                .map(|c| format!("{} {}", p.column(c), c.ty.name()))
                .collect();
            writeln!(
                f,
                "  fan-out: each {} in [{}] (one result per column)",
                each.var,
                cols.join(", ")
            )?;
        }
        writeln!(f, "  aggregates:")?;
        for (set, label) in [
            (RowSet::Current, "current rows"),
            (RowSet::Baseline, "baseline rows"),
            (RowSet::Both, "current vs baseline"),
        ] {
            let of_set: Vec<(usize, &crate::plan::AggregateCall)> = self
                .aggregates
                .iter()
                .enumerate()
                .filter(|(_, a)| a.rows == set)
                .collect();
            if of_set.is_empty() {
                continue;
            }
            writeln!(f, "    {label}:")?;
            for (i, a) in of_set {
                let args: Vec<String> = a.args.iter().map(|x| p.row(x)).collect();
                let plugin = if matches!(a.function, FunctionRef::Plugin(_)) {
                    " (plugin)"
                } else {
                    ""
                };
                writeln!(
                    f,
                    "      a{i} = {}({}){plugin}  as {:?}",
                    a.function.name(),
                    args.join(", "),
                    a.text
                )?;
            }
        }
        writeln!(f, "  expects (the check fails if any fails):")?;
        for e in &self.expects {
            writeln!(f, "    {}  =>  {}", e.text, p.agg(&e.expr))?;
        }
        writeln!(
            f,
            "  severity {}, for {}, every {}, min_rows {}",
            self.severity.keyword(),
            dur(self.for_secs),
            dur(self.every_secs),
            self.min_rows
        )?;
        if let Some(d) = &self.description {
            writeln!(f, "  description: {d:?}")?;
        }
        if !self.labels.is_empty() {
            let items: Vec<String> = self
                .labels
                .iter()
                .map(|(k, v)| format!("{k}: {v:?}"))
                .collect();
            writeln!(f, "  labels: {}", items.join(", "))?;
        }
        Ok(())
    }
}

/// The text of `mlc explain`: every check (or only `only`), separated by blank lines.
/// `None` when `only` names no check of the program.
pub fn explain(program: &Program, only: Option<&str>) -> Option<String> {
    let plans: Vec<String> = program
        .checks
        .iter()
        .filter(|c| only.is_none_or(|n| c.name == n))
        .map(|c| c.to_string())
        .collect();
    if only.is_some() && plans.is_empty() {
        return None;
    }
    Some(plans.join("\n"))
}
