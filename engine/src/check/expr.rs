//! Typing and compiling expressions, what both levels share: the `CheckCx` helpers that
//! resolve a call's name ([`Callee`]), check its arity and argument types, resolve columns
//! (with the `each` variable and join keys), and the typing rules of operators.
//! `row.rs` compiles row-level expressions (`where`, aggregate arguments) into [`RowExpr`];
//! `agg.rs` compiles `expect` ones into [`AggExpr`](crate::plan::AggExpr) over
//! de-duplicated aggregates, as `eval/row.rs` and `eval/agg.rs` evaluate them.

mod agg;
mod row;

use mlc_grammar::Code;
use mlc_grammar::Diagnostic;
use mlc_grammar::ast::{BinaryOp, ColumnRef, Expr, ExprKind, Ident, Literal, Span, UnaryOp};

use super::clauses::{CheckCx, UseCtx};
use super::suggest;
use super::types::{Ty, accepts, comparable, describe_arg};
use crate::functions::{self, ArgType, Signature};
use crate::plan::{ColumnId, RowExpr, RowExprKind};
use crate::value::Value;

/// What a call name refers to.
enum Callee {
    Builtin(&'static dyn functions::Function, Signature),
    Plugin(Option<Vec<crate::schema::DataType>>),
}

fn strip_parens(e: &Expr) -> &Expr {
    match &e.kind {
        ExprKind::Paren(inner) => strip_parens(inner),
        _ => e,
    }
}

fn is_percent(e: &Expr) -> bool {
    matches!(
        strip_parens(e).kind,
        ExprKind::Literal(Literal::Percent { .. })
    )
}

fn literal_value(lit: &Literal) -> (Value, Ty) {
    match lit {
        Literal::Int(i) => (Value::Int(*i), Ty::Int),
        Literal::Float { value, .. } | Literal::Percent { value, .. } => {
            (Value::Float(*value), Ty::Float)
        }
        Literal::Duration(d) => (Value::Duration(d.seconds() as f64), Ty::Duration),
        Literal::Str(s) => (Value::Str(s.clone()), Ty::Str),
        Literal::Bool(b) => (Value::Bool(*b), Ty::Bool),
        Literal::Null => (Value::Null, Ty::Null),
    }
}

fn row_ty(e: &RowExpr) -> Ty {
    e.ty.map(Ty::from_data).unwrap_or(Ty::Null)
}

impl CheckCx<'_> {
    fn err(&mut self, code: Code, span: Span, message: impl Into<String>) -> &mut Diagnostic {
        self.diags
            .push(Diagnostic::error(code, self.file, span, message));
        let last = self.diags.len() - 1;
        &mut self.diags[last]
    }

    fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn callee(&mut self, name: &Ident) -> Option<Callee> {
        if let Some(f) = functions::lookup(&name.name) {
            return Some(Callee::Builtin(f, f.signature()));
        }
        if let Some(p) = self.g.plugin(&name.name) {
            return Some(Callee::Plugin(
                p.decl.signature.as_ref().map(|s| s.args.clone()),
            ));
        }
        let names: Vec<&str> = functions::all()
            .iter()
            .map(|f| f.name())
            .chain(self.g.plugins.iter().map(|p| p.decl.name.as_str()))
            .collect();
        let help = match suggest::best(&name.name, names.iter().copied()) {
            Some(s) => format!("did you mean `{s}`?"),
            None => "see docs/functions.md for the builtin functions; a custom metric needs a `plugin NAME from \"file.wasm\"` declaration".to_string(),
        };
        let d = Diagnostic::error(
            Code::UnknownFunction,
            self.file,
            name.span,
            format!("unknown function `{}`", name.name),
        )
        .with_label("not a builtin or a declared plugin")
        .with_help(help);
        self.push(d);
        None
    }

    fn check_arity(&mut self, name: &Ident, span: Span, sig: &Signature, given: usize) -> bool {
        let max = if sig.variadic {
            usize::MAX
        } else {
            sig.params.len()
        };
        if given >= sig.required && given <= max {
            return true;
        }
        let names: Vec<&str> = sig.params.iter().map(|p| p.name).collect();
        let takes = if sig.variadic {
            format!("at least {}", sig.required.max(1))
        } else if sig.required == sig.params.len() {
            format!("{}", sig.params.len())
        } else {
            format!("{} to {}", sig.required, sig.params.len())
        };
        let plural = if takes == "1" {
            "argument"
        } else {
            "arguments"
        };
        let usage = format!("{}({})", name.name, names.join(", "));
        let d = Diagnostic::error(
            Code::WrongArity,
            self.file,
            span,
            format!("`{}` takes {takes} {plural}, {given} given", name.name),
        )
        .with_label(format!("{given} given"))
        .with_help(format!("write it as `{usage}`"));
        self.push(d);
        false
    }

    fn check_plugin_arity(&mut self, name: &Ident, span: Span, want: usize, given: usize) -> bool {
        if want == given {
            return true;
        }
        let plural = if want == 1 { "argument" } else { "arguments" };
        let d = Diagnostic::error(
            Code::WrongArity,
            self.file,
            span,
            format!("plugin `{}` takes {want} {plural}, {given} given", name.name),
        )
        .with_label(format!("{given} given"))
        .with_help("the plugin module's metadata states its arguments; see `mlc explain` or the plugin's docs");
        self.push(d);
        false
    }

    fn arg_mismatch(&mut self, fname: &str, param: &str, want: &str, got: Ty, span: Span) {
        let d = Diagnostic::error(
            Code::TypeMismatch,
            self.file,
            span,
            format!(
                "argument `{param}` of `{fname}` must be {want}, found {}",
                got.describe()
            ),
        )
        .with_label(got.describe());
        self.push(d);
    }

    /// `quantile(x, 0.9)`: a probability must be a literal in `0..=1`.
    fn probability(&mut self, fname: &str, param: &str, arg: &Expr) -> Option<f64> {
        let v = match &strip_parens(arg).kind {
            ExprKind::Literal(Literal::Int(i)) => Some(*i as f64),
            ExprKind::Literal(Literal::Float { value, .. } | Literal::Percent { value, .. }) => {
                Some(*value)
            }
            _ => None,
        };
        match v {
            Some(v) if (0.0..=1.0).contains(&v) => Some(v),
            _ => {
                self.err(
                    Code::InvalidArgument,
                    arg.span,
                    format!(
                        "argument `{param}` of `{fname}` must be a number literal between 0 and 1"
                    ),
                )
                .primary
                .message = "not a fraction between 0 and 1".into();
                if let Some(d) = self.diags.last_mut() {
                    d.help = Some("write it as a literal, e.g. `0.9` or `90%`".into());
                }
                None
            }
        }
    }

    fn check_arg_types(
        &mut self,
        fname: &str,
        sig: &Signature,
        args: &[Expr],
        tys: &[Ty],
    ) -> Option<()> {
        let mut ok = true;
        for (i, (arg, t)) in args.iter().zip(tys).enumerate() {
            let Some(param) = sig.params.get(i.min(sig.params.len().saturating_sub(1))) else {
                continue;
            };
            if param.ty == ArgType::Probability {
                if self.probability(fname, param.name, arg).is_none() {
                    ok = false;
                }
            } else if !accepts(param.ty, *t) {
                self.arg_mismatch(fname, param.name, describe_arg(param.ty), *t, arg.span);
                ok = false;
            }
        }
        ok.then_some(())
    }

    /// Resolves a column of the source (or the `each` variable) and notes that it is read.
    pub(crate) fn column(&mut self, c: &ColumnRef) -> Option<RowExpr> {
        if c.qualifier.is_none()
            && let Some(var) = self.each_var.clone()
            && var == c.name.name
        {
            let UseCtx::Agg(_, rows) = self.use_ctx else {
                self.push(
                    Diagnostic::error(
                        Code::UnknownColumn,
                        self.file,
                        c.span,
                        format!("`{var}` is the `each` variable; it stands for a column only inside `expect`"),
                    )
                    .with_help("`where` and `group by` name real columns"),
                );
                return None;
            };
            self.each_rows.insert(rows);
            let ty = self.each_col.as_ref().map(|c| c.ty);
            return Some(RowExpr {
                kind: RowExprKind::EachVar,
                ty,
            });
        }
        let col = self.resolve_column(c)?;
        self.note_use(&col, c.span);
        let ty = col.ty;
        Some(RowExpr {
            kind: RowExprKind::Column(col),
            ty: Some(ty),
        })
    }

    /// Finds which component of the source a column reference means.
    pub(crate) fn resolve_column(&mut self, c: &ColumnRef) -> Option<ColumnId> {
        let name = &c.name.name;
        if let Some(q) = &c.qualifier {
            let Some(idx) = self.source.iter().position(|s| s.schema.name == q.name) else {
                if self.g.component(&q.name).is_some() {
                    let joined: Vec<String> = self
                        .source
                        .iter()
                        .map(|s| format!("`{}`", s.schema.name))
                        .collect();
                    let d = Diagnostic::error(
                        Code::ComponentNotInSource,
                        self.file,
                        q.span,
                        format!("`{}` is not part of this check's source", q.name),
                    )
                    .with_label("not in `on`")
                    .with_help(format!(
                        "the source is {}; join `{}` in `on` to read its columns",
                        joined.join(", "),
                        q.name
                    ));
                    self.push(d);
                } else {
                    let help = suggest::help_for(
                        &q.name,
                        self.source.iter().map(|s| s.schema.name.as_str()),
                        "components of the source",
                        "",
                    );
                    let d = Diagnostic::error(
                        Code::UnknownComponent,
                        self.file,
                        q.span,
                        format!("unknown component `{}`", q.name),
                    )
                    .with_label("no component has this name")
                    .with_help(help);
                    self.push(d);
                }
                return None;
            };
            let schema = self.source[idx].schema;
            let Some(ty) = schema.column_type(name) else {
                let help = suggest::help_for(
                    name,
                    schema.column_names(),
                    &format!("columns of `{}`", schema.name),
                    "",
                );
                let d = Diagnostic::error(
                    Code::UnknownColumn,
                    self.file,
                    c.name.span,
                    format!("component `{}` has no column `{name}`", schema.name),
                )
                .with_label("not declared")
                .with_help(help);
                self.push(d);
                return None;
            };
            return Some(ColumnId {
                source: idx,
                name: name.clone(),
                ty,
            });
        }
        let found: Vec<usize> = (0..self.source.len())
            .filter(|&i| self.source[i].schema.column_type(name).is_some())
            .collect();
        match found.as_slice() {
            [] => {
                let all: Vec<&str> = self
                    .source
                    .iter()
                    .flat_map(|s| s.schema.column_names())
                    .collect();
                let mut help =
                    suggest::help_for(name, all.iter().copied(), "columns of the source", "");
                let elsewhere: Vec<&str> = self
                    .g
                    .components
                    .iter()
                    .filter(|c| c.schema.column_type(name).is_some())
                    .map(|c| c.schema.name.as_str())
                    .filter(|n| !self.source.iter().any(|s| s.schema.name == *n))
                    .collect();
                if let Some(other) = elsewhere.first() {
                    help = format!(
                        "`{name}` is a column of `{other}`, which this check does not read: join it in `on`"
                    );
                }
                let d = Diagnostic::error(
                    Code::UnknownColumn,
                    self.file,
                    c.span,
                    format!("unknown column `{name}`"),
                )
                .with_label(if self.source.len() == 1 {
                    format!("not a column of `{}`", self.source[0].schema.name)
                } else {
                    "not a column of any component of the source".to_string()
                })
                .with_help(help);
                self.push(d);
                None
            }
            [one] => {
                let ty = self.source[*one].schema.column_type(name)?;
                Some(ColumnId {
                    source: *one,
                    name: name.clone(),
                    ty,
                })
            }
            many => {
                // The join key is equal on both sides of a match (and only the left side is
                // non-null in a left join), so a bare key means the left one.
                if let Some(key) = self.join_keys.iter().find(|(k, _)| k == name) {
                    return Some(key.1.clone());
                }
                let options: Vec<String> = many
                    .iter()
                    .map(|&i| format!("`{}.{name}`", self.source[i].schema.name))
                    .collect();
                let d = Diagnostic::error(
                    Code::AmbiguousColumn,
                    self.file,
                    c.span,
                    format!("column `{name}` is in several components of the source"),
                )
                .with_label("ambiguous")
                .with_help(format!("qualify it: {}", options.join(" or ")));
                self.push(d);
                None
            }
        }
    }

    // ----- shared typing rules -----------------------------------------------------------

    fn unary_type(&mut self, op: UnaryOp, t: Ty, operand: Span, whole: Span) -> Option<Ty> {
        match (op, t) {
            (UnaryOp::Neg, t) if t.is_numeric() || t == Ty::Duration || t == Ty::Null => Some(t),
            (UnaryOp::Not, Ty::Bool | Ty::Null) => Some(Ty::Bool),
            (UnaryOp::Neg, t) => {
                let d = Diagnostic::error(
                    Code::TypeMismatch,
                    self.file,
                    whole,
                    format!("`-` needs a number, found {}", t.describe()),
                )
                .with_secondary(self.file, operand, t.describe());
                self.push(d);
                None
            }
            (UnaryOp::Not, t) => {
                let d = Diagnostic::error(
                    Code::TypeMismatch,
                    self.file,
                    whole,
                    format!("`not` needs a condition, found {}", t.describe()),
                )
                .with_secondary(self.file, operand, t.describe())
                .with_help("compare it first, e.g. `not (x > 0)`");
                self.push(d);
                None
            }
        }
    }

    fn mismatch(
        &mut self,
        whole: Span,
        message: String,
        parts: &[(Span, Ty)],
        help: Option<String>,
    ) {
        let mut d = Diagnostic::error(Code::TypeMismatch, self.file, whole, message);
        for (span, t) in parts {
            d = d.with_secondary(self.file, *span, t.describe());
        }
        if let Some(h) = help {
            d = d.with_help(h);
        } else if let Some((_, Ty::Struct(fields))) =
            parts.iter().find(|(_, t)| matches!(t, Ty::Struct(_)))
        {
            let field = fields
                .iter()
                .find(|f| **f == "pvalue")
                .or(fields.first())
                .copied()
                .unwrap_or("statistic");
            d = d.with_help(format!("pick a field of the result, e.g. `.{field}`"));
        }
        self.push(d);
    }

    fn binary_type(
        &mut self,
        op: BinaryOp,
        lt: Ty,
        rt: Ty,
        lhs: &Expr,
        rhs: &Expr,
        whole: Span,
    ) -> Option<Ty> {
        let parts = [(lhs.span, lt), (rhs.span, rt)];
        match op {
            BinaryOp::And | BinaryOp::Or => {
                for (span, t) in parts {
                    if !matches!(t, Ty::Bool | Ty::Null) {
                        let d = Diagnostic::error(
                            Code::TypeMismatch,
                            self.file,
                            span,
                            format!(
                                "`{}` needs conditions on both sides, found {}",
                                op.symbol(),
                                t.describe()
                            ),
                        )
                        .with_label(t.describe())
                        .with_help("compare the value, e.g. `x > 0`");
                        self.push(d);
                        return None;
                    }
                }
                Some(Ty::Bool)
            }
            _ if op.is_comparison() => {
                if lt == Ty::Null || rt == Ty::Null {
                    let subject = if lt == Ty::Null { rhs } else { lhs };
                    let not = if op == BinaryOp::Ne { "not " } else { "" };
                    self.mismatch(
                        whole,
                        format!("`{}` with `null` is never true", op.symbol()),
                        &[],
                        Some(format!("write `{subject} is {not}null`")),
                    );
                    return None;
                }
                let eq = matches!(op, BinaryOp::Eq | BinaryOp::Ne);
                if comparable(lt, rt, eq) {
                    return Some(Ty::Bool);
                }
                let help = if lt == Ty::Duration || rt == Ty::Duration {
                    Some("durations compare with durations, e.g. `freshness() < 2h`".to_string())
                } else {
                    None
                };
                self.mismatch(
                    whole,
                    format!("cannot compare {} with {}", lt.describe(), rt.describe()),
                    &parts,
                    help,
                );
                None
            }
            _ => {
                let t = match (lt, rt) {
                    (Ty::Null, t) | (t, Ty::Null)
                        if t.is_numeric() || t == Ty::Duration || t == Ty::Null =>
                    {
                        Some(t)
                    }
                    (Ty::Int, Ty::Int) if op != BinaryOp::Div => Some(Ty::Int),
                    (a, b) if a.is_numeric() && b.is_numeric() => Some(Ty::Float),
                    (Ty::Duration, Ty::Duration) if matches!(op, BinaryOp::Add | BinaryOp::Sub) => {
                        Some(Ty::Duration)
                    }
                    (Ty::Duration, n)
                        if n.is_numeric() && matches!(op, BinaryOp::Mul | BinaryOp::Div) =>
                    {
                        Some(Ty::Duration)
                    }
                    (n, Ty::Duration) if n.is_numeric() && op == BinaryOp::Mul => {
                        Some(Ty::Duration)
                    }
                    _ => None,
                };
                if t.is_none() {
                    self.mismatch(
                        whole,
                        format!(
                            "`{}` cannot combine {} and {}",
                            op.symbol(),
                            lt.describe(),
                            rt.describe()
                        ),
                        &parts,
                        None,
                    );
                }
                t
            }
        }
    }

    fn in_item_ok(&mut self, ot: Ty, it: Ty, operand: &Expr, item: &Expr) -> bool {
        if it == Ty::Null || ot == Ty::Null || comparable(ot, it, true) {
            return true;
        }
        self.mismatch(
            item.span,
            format!(
                "`in` list item is {}, but the value is {}",
                it.describe(),
                ot.describe()
            ),
            &[(operand.span, ot)],
            None,
        );
        false
    }

    fn between_ok(
        &mut self,
        ot: Ty,
        lt: Ty,
        ht: Ty,
        operand: &Expr,
        low: &Expr,
        high: &Expr,
    ) -> Option<()> {
        for (bound, bt) in [(low, lt), (high, ht)] {
            if bt != Ty::Null && ot != Ty::Null && !comparable(ot, bt, false) {
                self.mismatch(
                    bound.span.to(operand.span),
                    format!(
                        "`between` bound is {}, but the value is {}",
                        bt.describe(),
                        ot.describe()
                    ),
                    &[(operand.span, ot), (bound.span, bt)],
                    None,
                );
                return None;
            }
        }
        Some(())
    }

    #[allow(clippy::too_many_arguments)]
    fn within_ok(
        &mut self,
        ot: Ty,
        tolt: Ty,
        tt: Ty,
        relative: bool,
        operand: &Expr,
        tolerance: &Expr,
        target: &Expr,
    ) -> Option<()> {
        let measurable = |t: Ty| t.is_numeric() || t == Ty::Duration || t == Ty::Null;
        if !measurable(ot)
            || !measurable(tt)
            || !(comparable(ot, tt, false) || ot == Ty::Null || tt == Ty::Null)
        {
            self.mismatch(
                operand.span.to(target.span),
                format!(
                    "`within` compares two numbers or two durations, found {} and {}",
                    ot.describe(),
                    tt.describe()
                ),
                &[(operand.span, ot), (target.span, tt)],
                None,
            );
            return None;
        }
        let base = if ot == Ty::Null { tt } else { ot };
        let tol_ok = relative
            || tolt == Ty::Null
            || (base == Ty::Duration && tolt == Ty::Duration)
            || (base != Ty::Duration && tolt.is_numeric());
        if !tol_ok {
            let want = if base == Ty::Duration {
                "a duration or a percentage"
            } else {
                "a number or a percentage"
            };
            self.mismatch(
                tolerance.span,
                format!(
                    "the tolerance of `within` must be {want}, found {}",
                    tolt.describe()
                ),
                &[],
                Some("e.g. `x within 5% of y` (relative) or `x within 0.1 of y`".into()),
            );
            return None;
        }
        Some(())
    }

    fn time_literal(&mut self, s: &str, span: Span) -> Option<i64> {
        match suggest::parse_time(s) {
            Ok(us) => Some(us),
            Err(msg) => {
                let d = Diagnostic::error(Code::InvalidTime, self.file, span, msg)
                    .with_label("compared with a timestamp")
                    .with_help(
                        "write the time as RFC 3339 with an offset, e.g. \"2026-03-01T00:00:00Z\"",
                    );
                self.push(d);
                None
            }
        }
    }
}
