//! Pushdown (docs/evaluation.md#pushdown): on PostgreSQL, the aggregates whose state is a
//! count of rows (`count`, `rate`, `all`, `any`, `null_rate`:
//! [`mlc_engine::functions::RowSum`]) are
//! computed by the database, one `GROUP BY` query per check, and only their counts come back;
//! they enter the check's state as if its rows had been fed. The check's other aggregates
//! read their columns as before.
//!
//! An expression is pushed down only where its SQL means exactly what mlc computes: columns,
//! literals, comparisons, `and`/`or`/`not` (three-valued in both), `is null`, `in` and
//! `between`. Strings compare byte by byte (`COLLATE "C"`), a comparison with a float column
//! follows IEEE 754 (PostgreSQL orders NaN above every number; mlc, as IEEE, finds every
//! comparison with NaN false but `!=`). Anything else (arithmetic, functions, `within`) keeps
//! its aggregate on the rows.

use mlc_engine::functions::RowSum;
use mlc_engine::plan::{CheckPlan, RowExpr, RowExprKind};
use mlc_engine::schema::DataType;
use mlc_engine::value::Value;
use mlc_grammar::ast::{BinaryOp, UnaryOp};
use mlc_store::{SumsQuery, quote_ident};

/// An expression in SQL, with its type (`None`: a null literal).
struct Sql {
    text: String,
    ty: Option<DataType>,
    /// A float that may be NaN: a column, or an expression over one.
    nan: bool,
    /// A literal that is not null (and, a float, not NaN).
    literal: Option<Value>,
}

/// The SQL of a predicate with mlc's meaning, if it has one.
pub(super) fn predicate(e: &RowExpr) -> Option<String> {
    let s = expr(e)?;
    matches!(s.ty, Some(DataType::Bool) | None).then_some(s.text)
}

fn boolean(text: String) -> Sql {
    Sql {
        text,
        ty: Some(DataType::Bool),
        nan: false,
        literal: None,
    }
}

fn expr(e: &RowExpr) -> Option<Sql> {
    match &e.kind {
        RowExprKind::Column(id) => {
            // Columns of the first component only: pushdown reads no join.
            (id.source == 0).then(|| Sql {
                text: quote_ident(&id.name),
                ty: Some(id.ty),
                nan: id.ty == DataType::Float,
                literal: None,
            })
        }
        RowExprKind::Literal(v) => literal(v),
        RowExprKind::Unary {
            op: UnaryOp::Not,
            operand,
        } => {
            let a = expr(operand)?;
            matches!(a.ty, Some(DataType::Bool) | None)
                .then(|| boolean(format!("(NOT {})", bool_text(&a))))
        }
        RowExprKind::Binary { op, lhs, rhs } => {
            let (a, b) = (expr(lhs)?, expr(rhs)?);
            match op {
                BinaryOp::And | BinaryOp::Or => {
                    let ok = |s: &Sql| matches!(s.ty, Some(DataType::Bool) | None);
                    if !ok(&a) || !ok(&b) {
                        return None;
                    }
                    let word = if *op == BinaryOp::And { "AND" } else { "OR" };
                    Some(boolean(format!(
                        "({} {word} {})",
                        bool_text(&a),
                        bool_text(&b)
                    )))
                }
                BinaryOp::Eq
                | BinaryOp::Ne
                | BinaryOp::Lt
                | BinaryOp::Le
                | BinaryOp::Gt
                | BinaryOp::Ge => compare(*op, &a, &b).map(boolean),
                _ => None,
            }
        }
        RowExprKind::IsNull { operand, negated } => {
            let a = expr(operand)?;
            let not = if *negated { " NOT" } else { "" };
            Some(boolean(format!("({} IS{not} NULL)", a.text)))
        }
        RowExprKind::InList {
            operand,
            list,
            negated,
        } => {
            // As mlc evaluates it: `false or a == x1 or a == x2 ...`, negated after; for
            // strings, integers and booleans against literals of their type that is SQL's
            // `IN`.
            let a = expr(operand)?;
            let items: Option<Vec<Sql>> = list.iter().map(expr).collect();
            let items = items?;
            if matches!(
                a.ty,
                Some(DataType::String | DataType::Int | DataType::Bool)
            ) && !items.is_empty()
                && items.iter().all(|b| b.literal.is_some() && b.ty == a.ty)
            {
                let texts: Vec<&str> = items.iter().map(|b| b.text.as_str()).collect();
                let collate = if a.ty == Some(DataType::String) {
                    " COLLATE \"C\""
                } else {
                    ""
                };
                let not = if *negated { " NOT" } else { "" };
                return Some(boolean(format!(
                    "({}{collate}{not} IN ({}))",
                    a.text,
                    texts.join(", ")
                )));
            }
            let mut any = String::from("(FALSE");
            for b in &items {
                any.push_str(" OR ");
                any.push_str(&compare(BinaryOp::Eq, &a, b)?);
            }
            any.push(')');
            Some(boolean(if *negated {
                format!("(NOT {any})")
            } else {
                any
            }))
        }
        RowExprKind::Between { operand, low, high } => {
            let (a, lo, hi) = (expr(operand)?, expr(low)?, expr(high)?);
            Some(boolean(format!(
                "({} AND {})",
                compare(BinaryOp::Ge, &a, &lo)?,
                compare(BinaryOp::Le, &a, &hi)?
            )))
        }
        _ => None,
    }
}

/// A boolean operand: a null literal typed as boolean.
fn bool_text(s: &Sql) -> String {
    match s.ty {
        None => "NULL::BOOLEAN".into(),
        _ => s.text.clone(),
    }
}

fn literal(v: &Value) -> Option<Sql> {
    let (text, ty) = match v {
        Value::Null => ("NULL".to_string(), None),
        Value::Bool(b) => (
            if *b { "TRUE" } else { "FALSE" }.into(),
            Some(DataType::Bool),
        ),
        Value::Int(i) => (format!("({i})::BIGINT"), Some(DataType::Int)),
        Value::Timestamp(us) => (format!("({us})::BIGINT"), Some(DataType::Timestamp)),
        // `{:?}` writes the shortest text that reads back as the same double.
        Value::Float(f) if f.is_finite() => {
            (format!("'{f:?}'::DOUBLE PRECISION"), Some(DataType::Float))
        }
        // An escape string (`E'..'`) reads the same whatever `standard_conforming_strings`.
        Value::Str(s) if !s.contains('\0') => (
            format!("E'{}'::TEXT", s.replace('\\', "\\\\").replace('\'', "''")),
            Some(DataType::String),
        ),
        _ => return None,
    };
    Some(Sql {
        text,
        ty,
        nan: false,
        literal: (!matches!(v, Value::Null)).then(|| v.clone()),
    })
}

/// A number as a double, as mlc compares an integer with a float (`as f64`).
fn double(s: &Sql) -> String {
    match (&s.literal, s.ty) {
        (Some(Value::Int(i)), _) => format!("'{:?}'::DOUBLE PRECISION", *i as f64),
        (_, Some(DataType::Float)) => s.text.clone(),
        _ => format!("({})::DOUBLE PRECISION", s.text),
    }
}

fn symbol(op: BinaryOp) -> &'static str {
    match op {
        BinaryOp::Eq => "=",
        BinaryOp::Ne => "<>",
        BinaryOp::Lt => "<",
        BinaryOp::Le => "<=",
        BinaryOp::Gt => ">",
        _ => ">=",
    }
}

/// `a op b` as mlc compares (row.rs `compare`): null when either is null; strings by bytes;
/// integers and times exactly; a float with any number as doubles, NaN unequal to all.
fn compare(op: BinaryOp, a: &Sql, b: &Sql) -> Option<String> {
    use DataType::*;
    let sym = symbol(op);
    let (Some(ta), Some(tb)) = (a.ty, b.ty) else {
        return Some("NULL::BOOLEAN".into());
    };
    Some(match (ta, tb) {
        (String, String) => format!("({} COLLATE \"C\" {sym} {})", a.text, b.text),
        (Bool, Bool) | (Int | Timestamp, Int | Timestamp) => {
            format!("({} {sym} {})", a.text, b.text)
        }
        (Int | Float | Timestamp, Int | Float | Timestamp) => {
            let (x, y) = (double(a), double(b));
            let nan_only = match (a.nan, b.nan) {
                (true, false) if b.literal.is_some() => Some(&x),
                (false, true) if a.literal.is_some() => Some(&y),
                _ => None,
            };
            if !a.nan && !b.nan {
                format!("({x} {sym} {y})")
            } else if let Some(c) = nan_only {
                // Against a number: a null stays null through AND/OR, NaN gives false (`!=`:
                // true).
                if op == BinaryOp::Ne {
                    format!("({x} {sym} {y} OR {c} = 'NaN'::DOUBLE PRECISION)")
                } else {
                    format!("({x} {sym} {y} AND {c} <> 'NaN'::DOUBLE PRECISION)")
                }
            } else {
                let nan: Vec<std::string::String> = [(&x, a.nan), (&y, b.nan)]
                    .into_iter()
                    .filter(|(_, n)| *n)
                    .map(|(s, _)| format!("{s} = 'NaN'::DOUBLE PRECISION"))
                    .collect();
                format!(
                    "(CASE WHEN {x} IS NULL OR {y} IS NULL THEN NULL::BOOLEAN WHEN {} THEN {} \
                     ELSE {x} {sym} {y} END)",
                    nan.join(" OR "),
                    if op == BinaryOp::Ne { "TRUE" } else { "FALSE" }
                )
            }
        }
        _ => return None,
    })
}

/// What a check pushes down: the query, and per count of it which aggregate it feeds.
pub(super) struct Pushdown {
    pub(super) query: SumsQuery,
    /// Per aggregate pushed: its index in the plan's aggregates and how many of the query's
    /// terms, in order, are its sums.
    pub(super) aggregates: Vec<(usize, usize)>,
    /// Whether every aggregate the check feeds rows is pushed: its rows are then not read.
    pub(super) whole: bool,
}

/// The pushdown of `plan` over `[start, end)`, given its aggregates whose state is sums
/// (`summable`) and how many aggregates it feeds rows (`fed`); `None` when none can be pushed
/// (its `where` or `group by` has no SQL of the same meaning, or no aggregate's arguments do).
pub(super) fn plan(
    plan: &CheckPlan,
    summable: &[(usize, &'static [RowSum])],
    fed: usize,
    start_us: Option<i64>,
    end_us: i64,
    max_groups: usize,
) -> Option<Pushdown> {
    if plan.baseline.is_some() || plan.each.is_some() || !plan.source.joins.is_empty() {
        return None;
    }
    let filter = match &plan.filter {
        Some(f) => Some(predicate(f)?),
        None => None,
    };
    let mut group_by = Vec::with_capacity(plan.group_by.len());
    for g in &plan.group_by {
        if g.source != 0 || !matches!(g.ty, DataType::String | DataType::Int | DataType::Bool) {
            return None;
        }
        group_by.push(g.name.clone());
    }
    let mut terms = Vec::new();
    let mut aggregates = Vec::new();
    'calls: for &(i, sums) in summable {
        let call = &plan.aggregates[i];
        let mut mine = Vec::with_capacity(sums.len());
        for s in sums {
            mine.push(match s {
                RowSum::Rows => None,
                RowSum::True(a) => match call.args.get(*a).and_then(predicate) {
                    Some(p) => Some(p),
                    None => continue 'calls,
                },
                RowSum::Null(a) => match call.args.get(*a).and_then(expr) {
                    Some(s) if s.ty.is_some() => Some(if s.nan {
                        format!("({t} IS NULL OR {t} = 'NaN'::DOUBLE PRECISION)", t = s.text)
                    } else {
                        format!("({} IS NULL)", s.text)
                    }),
                    _ => continue 'calls,
                },
            });
        }
        aggregates.push((i, mine.len()));
        terms.extend(mine);
    }
    if aggregates.is_empty() {
        return None;
    }
    Some(Pushdown {
        whole: aggregates.len() == fed,
        query: SumsQuery {
            group_by,
            filter,
            terms,
            start_us,
            end_us,
            max_groups,
        },
        aggregates,
    })
}

/// What `mlc explain` says of a check on PostgreSQL: which aggregates the database counts
/// (`a0`, ... as the plan numbers them) and which read their rows; `verbose` adds the SQL.
/// `None` for a check with nothing to count.
pub fn explain(
    program: &mlc_engine::plan::Program,
    check: &CheckPlan,
    verbose: bool,
) -> Option<String> {
    let make = |call: &mlc_engine::plan::AggregateCall| match call.function {
        mlc_engine::plan::FunctionRef::Builtin(_) => {
            mlc_engine::eval::check::builtin_accumulator(call)
        }
        mlc_engine::plan::FunctionRef::Plugin(_) => Err("a plugin".to_string()),
    };
    let state = mlc_engine::eval::CheckState::new(check, &make, usize::MAX);
    let summable = state.summable(check);
    if summable.is_empty() {
        return None;
    }
    let names = |v: &[usize]| {
        v.iter()
            .map(|i| format!("a{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = String::from("  on PostgreSQL:\n");
    let Some(p) = plan(
        check,
        &summable,
        state.fed(),
        None,
        0,
        mlc_engine::eval::check::DEFAULT_MAX_SERIES,
    ) else {
        out.push_str(
            "    every aggregate reads its rows (its `where`, `group by` or arguments have no \
             SQL of the same meaning, or it has a baseline, `each` or a join)\n",
        );
        return Some(out);
    };
    let pushed: Vec<usize> = p.aggregates.iter().map(|a| a.0).collect();
    out.push_str(&format!(
        "    counted in the database: {}\n",
        names(&pushed)
    ));
    let rows: Vec<usize> = (0..check.aggregates.len())
        .filter(|i| !pushed.contains(i))
        .collect();
    if !rows.is_empty() {
        out.push_str(&format!("    read from the rows: {}\n", names(&rows)));
    }
    if verbose {
        let component = &check.source.components.first()?.name;
        let schema = program.component(component)?;
        out.push_str(&format!(
            "    sql: {}\n",
            mlc_store::sums_sql(schema, &p.query, "<window start>", "<window end>", None)
        ));
        out.push_str(
            "    (on a table with foreign partitions: once per partition, summed; docs/operations.md#sharded-postgresql)\n",
        );
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn col(name: &str, ty: DataType) -> RowExpr {
        RowExpr {
            kind: RowExprKind::Column(mlc_engine::plan::ColumnId {
                source: 0,
                name: name.into(),
                ty,
            }),
            ty: Some(ty),
        }
    }

    fn lit(v: Value) -> RowExpr {
        let ty = match &v {
            Value::Int(_) => Some(DataType::Int),
            Value::Float(_) => Some(DataType::Float),
            Value::Str(_) => Some(DataType::String),
            Value::Bool(_) => Some(DataType::Bool),
            _ => None,
        };
        RowExpr {
            kind: RowExprKind::Literal(v),
            ty,
        }
    }

    fn bin(op: BinaryOp, a: RowExpr, b: RowExpr) -> RowExpr {
        RowExpr {
            kind: RowExprKind::Binary {
                op,
                lhs: Box::new(a),
                rhs: Box::new(b),
            },
            ty: Some(DataType::Bool),
        }
    }

    #[test]
    fn predicates_translate_with_mlc_semantics_or_not_at_all() {
        let p = predicate(&bin(
            BinaryOp::Lt,
            col("age", DataType::Int),
            lit(Value::Int(0)),
        ))
        .unwrap();
        assert_eq!(p, "(\"age\" < (0)::BIGINT)");
        // A float column compares as IEEE: NaN is guarded.
        let p = predicate(&bin(
            BinaryOp::Gt,
            col("score", DataType::Float),
            lit(Value::Int(1)),
        ))
        .unwrap();
        assert_eq!(
            p,
            "(\"score\" > '1.0'::DOUBLE PRECISION AND \"score\" <> 'NaN'::DOUBLE PRECISION)"
        );
        let p = predicate(&bin(
            BinaryOp::Ne,
            col("score", DataType::Float),
            lit(Value::Float(0.1)),
        ))
        .unwrap();
        assert_eq!(
            p,
            "(\"score\" <> '0.1'::DOUBLE PRECISION OR \"score\" = 'NaN'::DOUBLE PRECISION)"
        );
        // Two columns that may be null or NaN: null first, then NaN, then the comparison.
        let p = predicate(&bin(
            BinaryOp::Lt,
            col("score", DataType::Float),
            col("age", DataType::Int),
        ))
        .unwrap();
        assert!(
            p.starts_with("(CASE WHEN \"score\" IS NULL OR (\"age\")::DOUBLE PRECISION IS NULL")
                && p.contains("THEN FALSE ELSE"),
            "{p}"
        );
        // Strings compare by bytes; quotes are doubled.
        let p = predicate(&bin(
            BinaryOp::Le,
            col("country", DataType::String),
            lit(Value::Str("O'Brien".into())),
        ))
        .unwrap();
        assert_eq!(p, "(\"country\" COLLATE \"C\" <= E'O''Brien'::TEXT)");
        let p = predicate(&bin(
            BinaryOp::Eq,
            col("country", DataType::String),
            lit(Value::Str(r"a\b".into())),
        ))
        .unwrap();
        assert_eq!(p, r#"("country" COLLATE "C" = E'a\\b'::TEXT)"#);
        // Arithmetic keeps the aggregate on the rows.
        let sum = RowExpr {
            kind: RowExprKind::Binary {
                op: BinaryOp::Add,
                lhs: Box::new(col("age", DataType::Int)),
                rhs: Box::new(lit(Value::Int(1))),
            },
            ty: Some(DataType::Int),
        };
        assert!(predicate(&bin(BinaryOp::Gt, sum, lit(Value::Int(3)))).is_none());
        // A value is not a predicate.
        assert!(predicate(&col("age", DataType::Int)).is_none());
        // Strings against numbers are a type error mlc reports from the rows.
        assert!(
            predicate(&bin(
                BinaryOp::Eq,
                col("country", DataType::String),
                lit(Value::Int(1))
            ))
            .is_none()
        );
    }
}
