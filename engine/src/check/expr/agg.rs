//! `expect` expressions typed and compiled into [`AggExpr`], evaluated by `eval/agg.rs`: an
//! `expect` must be a condition over aggregates; each aggregate call (builtin, two-sample,
//! special, plugin, `baseline.`) is checked against the check's clauses and de-duplicated
//! into the plan's list by its text and rows, its arguments compiled as row expressions.

use mlc_grammar::Code;
use mlc_grammar::Diagnostic;
use mlc_grammar::ast::{Expr, ExprKind, Ident, Span};

use super::{Callee, is_percent, literal_value, row_ty};
use crate::check::clauses::{CheckCx, UseCtx};
use crate::check::suggest;
use crate::check::types::{Ty, plugin_accepts, return_type};
use crate::functions::{self, FunctionKind};
use crate::plan::{AggExpr, AggregateCall, FunctionRef, RowExpr, RowSet};
use crate::value::Value;

impl CheckCx<'_> {
    /// Whether an expression computes an aggregate somewhere (it is judged per slice).
    fn has_aggregate(&self, e: &Expr) -> bool {
        match &e.kind {
            ExprKind::Literal(_) | ExprKind::Column(_) => false,
            ExprKind::BaselineCall { .. } => true,
            ExprKind::Call { name, args } => {
                let scalar = functions::lookup(&name.name)
                    .is_some_and(|f| f.signature().kind == FunctionKind::Scalar);
                let known =
                    functions::lookup(&name.name).is_some() || self.g.plugin(&name.name).is_some();
                (known && !scalar) || args.iter().any(|a| self.has_aggregate(a))
            }
            ExprKind::Field { base, .. } => self.has_aggregate(base),
            ExprKind::Unary { operand, .. }
            | ExprKind::IsNull { operand, .. }
            | ExprKind::Paren(operand) => self.has_aggregate(operand),
            ExprKind::Binary { lhs, rhs, .. } => self.has_aggregate(lhs) || self.has_aggregate(rhs),
            ExprKind::InList { operand, list, .. } => {
                self.has_aggregate(operand) || list.iter().any(|i| self.has_aggregate(i))
            }
            ExprKind::Between {
                operand,
                low: a,
                high: b,
            }
            | ExprKind::Within {
                operand,
                tolerance: a,
                target: b,
            } => self.has_aggregate(operand) || self.has_aggregate(a) || self.has_aggregate(b),
        }
    }

    /// Compiles one `expect`: it must be a condition over aggregates.
    pub(crate) fn expect_expr(&mut self, e: &Expr) -> Option<AggExpr> {
        if !self.has_aggregate(e) {
            let has_column = {
                fn cols(e: &Expr) -> bool {
                    match &e.kind {
                        ExprKind::Column(_) => true,
                        ExprKind::Literal(_) => false,
                        ExprKind::Call { args, .. } | ExprKind::BaselineCall { args, .. } => {
                            args.iter().any(cols)
                        }
                        ExprKind::Field { base, .. } => cols(base),
                        ExprKind::Unary { operand, .. }
                        | ExprKind::IsNull { operand, .. }
                        | ExprKind::Paren(operand) => cols(operand),
                        ExprKind::Binary { lhs, rhs, .. } => cols(lhs) || cols(rhs),
                        ExprKind::InList { operand, list, .. } => {
                            cols(operand) || list.iter().any(cols)
                        }
                        ExprKind::Between {
                            operand,
                            low: a,
                            high: b,
                        }
                        | ExprKind::Within {
                            operand,
                            tolerance: a,
                            target: b,
                        } => cols(operand) || cols(a) || cols(b),
                    }
                }
                cols(e)
            };
            // Unknown functions are reported as such rather than as a row-level expect.
            if self.reports_unknown_call(e) {
                return None;
            }
            let text = e.to_string();
            let d = if has_column {
                Diagnostic::error(
                    Code::RowLevelExpect,
                    self.file,
                    e.span,
                    format!("`expect {text}` is a condition on single rows, but `expect` judges aggregates"),
                )
                .with_label("row-level")
                .with_help(format!(
                    "to require it on every row write `expect all({text})`; to allow a few exceptions, `expect rate({text}) >= 99%`"
                ))
            } else {
                Diagnostic::error(
                    Code::RowLevelExpect,
                    self.file,
                    e.span,
                    format!("`expect {text}` does not depend on the data"),
                )
                .with_label("no aggregate")
                .with_help("compare an aggregate, e.g. `expect count() > 0`")
            };
            self.push(d);
            return None;
        }
        let (agg, ty) = self.agg_expr(e)?;
        if !matches!(ty, Ty::Bool | Ty::Null) {
            self.mismatch(
                e.span,
                format!("`expect` needs a condition, found {}", ty.describe()),
                &[],
                Some(format!("compare it, e.g. `expect {e} > 0`")),
            );
            return None;
        }
        Some(agg)
    }

    fn reports_unknown_call(&mut self, e: &Expr) -> bool {
        let mut unknown: Vec<Ident> = Vec::new();
        fn walk(e: &Expr, cx: &CheckCx<'_>, out: &mut Vec<Ident>) {
            match &e.kind {
                ExprKind::Call { name, args } => {
                    if functions::lookup(&name.name).is_none() && cx.g.plugin(&name.name).is_none()
                    {
                        out.push(name.clone());
                    }
                    args.iter().for_each(|a| walk(a, cx, out));
                }
                ExprKind::Literal(_) | ExprKind::Column(_) => {}
                ExprKind::BaselineCall { args, .. } => args.iter().for_each(|a| walk(a, cx, out)),
                ExprKind::Field { base, .. } => walk(base, cx, out),
                ExprKind::Unary { operand, .. }
                | ExprKind::IsNull { operand, .. }
                | ExprKind::Paren(operand) => walk(operand, cx, out),
                ExprKind::Binary { lhs, rhs, .. } => {
                    walk(lhs, cx, out);
                    walk(rhs, cx, out);
                }
                ExprKind::InList { operand, list, .. } => {
                    walk(operand, cx, out);
                    list.iter().for_each(|i| walk(i, cx, out));
                }
                ExprKind::Between {
                    operand,
                    low: a,
                    high: b,
                }
                | ExprKind::Within {
                    operand,
                    tolerance: a,
                    target: b,
                } => {
                    walk(operand, cx, out);
                    walk(a, cx, out);
                    walk(b, cx, out);
                }
            }
        }
        walk(e, self, &mut unknown);
        for name in &unknown {
            self.callee(name);
        }
        !unknown.is_empty()
    }

    fn agg_expr(&mut self, e: &Expr) -> Option<(AggExpr, Ty)> {
        match &e.kind {
            ExprKind::Literal(lit) => {
                let (v, t) = literal_value(lit);
                Some((AggExpr::Literal(v), t))
            }
            ExprKind::Paren(inner) => self.agg_expr(inner),
            ExprKind::Column(c) => {
                let name = match &c.qualifier {
                    Some(q) => format!("{}.{}", q.name, c.name.name),
                    None => c.name.name.clone(),
                };
                let d = Diagnostic::error(
                    Code::RowLevelExpect,
                    self.file,
                    c.span,
                    format!("column `{name}` is used outside an aggregate"),
                )
                .with_label("a row value")
                .with_help(format!(
                    "`expect` compares aggregates: wrap it, e.g. `mean({name})` or `latest({name})`"
                ));
                self.push(d);
                None
            }
            ExprKind::Call { name, args } => {
                let callee = self.callee(name)?;
                match callee {
                    Callee::Builtin(f, sig) if sig.kind == FunctionKind::Scalar => {
                        let compiled: Vec<Option<(AggExpr, Ty)>> =
                            args.iter().map(|a| self.agg_expr(a)).collect();
                        if !self.check_arity(name, e.span, &sig, args.len()) {
                            return None;
                        }
                        let compiled: Vec<(AggExpr, Ty)> =
                            compiled.into_iter().collect::<Option<_>>()?;
                        let tys: Vec<Ty> = compiled.iter().map(|(_, t)| *t).collect();
                        self.check_arg_types(f.name(), &sig, args, &tys)?;
                        let ty = return_type(sig.returns, &tys);
                        Some((
                            AggExpr::Scalar {
                                function: f,
                                args: compiled.into_iter().map(|(a, _)| a).collect(),
                            },
                            ty,
                        ))
                    }
                    callee => self.aggregate_call(e, name, args, callee, false),
                }
            }
            ExprKind::BaselineCall { name, args } => {
                let callee = self.callee(name)?;
                self.aggregate_call(e, name, args, callee, true)
            }
            ExprKind::Field { base, field } => {
                let (b, t) = self.agg_expr(base)?;
                let Ty::Struct(fields) = t else {
                    let d = Diagnostic::error(
                        Code::UnknownStructField,
                        self.file,
                        field.span,
                        format!(
                            "`{base}` is {}, it has no field `{}`",
                            t.describe(),
                            field.name
                        ),
                    )
                    .with_label("no such field")
                    .with_help("only results such as `ks(x)` and `chi2(x)` have fields");
                    self.push(d);
                    return None;
                };
                if !fields.contains(&field.name.as_str()) {
                    let help = suggest::help_for(
                        &field.name,
                        fields.iter().copied(),
                        &format!("fields of `{base}`"),
                        "",
                    );
                    let d = Diagnostic::error(
                        Code::UnknownStructField,
                        self.file,
                        field.span,
                        format!("`{base}` has no field `{}`", field.name),
                    )
                    .with_label("no such field")
                    .with_help(help);
                    self.push(d);
                    return None;
                }
                Some((
                    AggExpr::Field {
                        base: Box::new(b),
                        field: field.name.clone(),
                    },
                    Ty::Float,
                ))
            }
            ExprKind::Unary { op, operand } => {
                let (inner, t) = self.agg_expr(operand)?;
                let t = self.unary_type(*op, t, operand.span, e.span)?;
                Some((
                    AggExpr::Unary {
                        op: *op,
                        operand: Box::new(inner),
                    },
                    t,
                ))
            }
            ExprKind::Binary { op, lhs, rhs } => {
                let l = self.agg_expr(lhs);
                let r = self.agg_expr(rhs);
                let (mut l, mut r) = (l?, r?);
                if op.is_comparison() {
                    self.coerce_agg_time(&mut l, &mut r, lhs.span, rhs.span)?;
                }
                let t = self.binary_type(*op, l.1, r.1, lhs, rhs, e.span)?;
                Some((
                    AggExpr::Binary {
                        op: *op,
                        lhs: Box::new(l.0),
                        rhs: Box::new(r.0),
                    },
                    t,
                ))
            }
            ExprKind::IsNull { operand, negated } => {
                let (inner, _) = self.agg_expr(operand)?;
                Some((
                    AggExpr::IsNull {
                        operand: Box::new(inner),
                        negated: *negated,
                    },
                    Ty::Bool,
                ))
            }
            ExprKind::InList {
                operand,
                list,
                negated,
            } => {
                let o = self.agg_expr(operand);
                let items: Vec<Option<(AggExpr, Ty)>> =
                    list.iter().map(|i| self.agg_expr(i)).collect();
                let mut o = o?;
                let mut items: Vec<(AggExpr, Ty)> = items.into_iter().collect::<Option<_>>()?;
                let mut ok = true;
                for (item, expr) in items.iter_mut().zip(list) {
                    if self
                        .coerce_agg_time(&mut o, item, operand.span, expr.span)
                        .is_none()
                        || !self.in_item_ok(o.1, item.1, operand, expr)
                    {
                        ok = false;
                    }
                }
                ok.then(|| {
                    (
                        AggExpr::InList {
                            operand: Box::new(o.0),
                            list: items.into_iter().map(|(a, _)| a).collect(),
                            negated: *negated,
                        },
                        Ty::Bool,
                    )
                })
            }
            ExprKind::Between { operand, low, high } => {
                let o = self.agg_expr(operand);
                let lo = self.agg_expr(low);
                let hi = self.agg_expr(high);
                let (mut o, mut lo, mut hi) = (o?, lo?, hi?);
                self.coerce_agg_time(&mut o, &mut lo, operand.span, low.span)?;
                self.coerce_agg_time(&mut o, &mut hi, operand.span, high.span)?;
                self.between_ok(o.1, lo.1, hi.1, operand, low, high)?;
                Some((
                    AggExpr::Between {
                        operand: Box::new(o.0),
                        low: Box::new(lo.0),
                        high: Box::new(hi.0),
                    },
                    Ty::Bool,
                ))
            }
            ExprKind::Within {
                operand,
                tolerance,
                target,
            } => {
                let o = self.agg_expr(operand);
                let tol = self.agg_expr(tolerance);
                let t = self.agg_expr(target);
                let (o, tol, t) = (o?, tol?, t?);
                let relative = is_percent(tolerance);
                self.within_ok(o.1, tol.1, t.1, relative, operand, tolerance, target)?;
                Some((
                    AggExpr::Within {
                        operand: Box::new(o.0),
                        tolerance: Box::new(tol.0),
                        target: Box::new(t.0),
                        relative,
                    },
                    Ty::Bool,
                ))
            }
        }
    }

    /// An aggregate, two-sample, special or plugin call: its arguments are row-level.
    fn aggregate_call(
        &mut self,
        e: &Expr,
        name: &Ident,
        args: &[Expr],
        callee: Callee,
        on_baseline: bool,
    ) -> Option<(AggExpr, Ty)> {
        let fname = name.name.clone();
        let (kind, function) = match &callee {
            Callee::Builtin(f, sig) => (sig.kind, FunctionRef::Builtin(*f)),
            Callee::Plugin(_) => (FunctionKind::Aggregate, FunctionRef::Plugin(fname.clone())),
        };
        // `baseline.f(...)` of a function that cannot read the baseline on its own: why not,
        // and what to write instead.
        let refused = match (kind, on_baseline) {
            (FunctionKind::Scalar, true) => Some((
                format!("`{fname}` is a scalar function, so `baseline.{fname}(...)` means nothing"),
                format!(
                    "apply it to a baseline aggregate instead, e.g. `{fname}(baseline.mean(x))`"
                ),
            )),
            (FunctionKind::TwoSample, true) => Some((
                format!("`{fname}` already compares the current rows with the baseline"),
                format!("write `{fname}(...)` without `baseline.`"),
            )),
            (FunctionKind::Special, true) => Some((
                format!("`{fname}` is computed for the current rows only"),
                format!("write `{fname}()` without `baseline.`"),
            )),
            _ => None,
        };
        if let Some((message, help)) = refused {
            let d = Diagnostic::error(Code::InvalidBaselineCall, self.file, e.span, message)
                .with_help(help);
            self.push(d);
            return None;
        }
        let rows = match (kind, on_baseline) {
            (_, true) => RowSet::Baseline,
            (FunctionKind::TwoSample, false) => RowSet::Both,
            _ => RowSet::Current,
        };
        if rows != RowSet::Current && self.baseline.is_none() {
            let (message, label) = if on_baseline {
                (
                    format!("`baseline.{fname}(...)` needs a `baseline` clause"),
                    "reads the baseline",
                )
            } else {
                (
                    format!(
                        "`{fname}` compares with a baseline, but this check has no `baseline` clause"
                    ),
                    "a two-sample function",
                )
            };
            let d = Diagnostic::error(Code::BaselineRequired, self.file, e.span, message)
                .with_label(label)
                .with_help("add one, e.g. `baseline offset 7d`, `baseline training` or `baseline from \"2026-01-01T00:00:00Z\" to \"2026-02-01T00:00:00Z\"`");
            self.push(d);
            return None;
        }
        if function.builtin().is_some_and(|f| f.needs_join()) && self.source.len() < 2 {
            let d = Diagnostic::error(
                Code::NeedsJoin,
                self.file,
                e.span,
                format!("`{fname}()` measures join matches, but this check's source has no join"),
            )
            .with_label("no join in `on`")
            .with_help(
                "use it with a joined source, e.g. `on inference join feedback using request_id`",
            );
            self.push(d);
            return None;
        }
        let outer = std::mem::replace(&mut self.use_ctx, UseCtx::Agg(fname.clone(), rows));
        let compiled: Vec<Option<RowExpr>> = args.iter().map(|a| self.row_expr(a)).collect();
        self.use_ctx = outer;
        let ok_arity = match &callee {
            Callee::Builtin(_, sig) => self.check_arity(name, e.span, sig, args.len()),
            Callee::Plugin(Some(params)) => {
                self.check_plugin_arity(name, e.span, params.len(), args.len())
            }
            Callee::Plugin(None) => true,
        };
        if !ok_arity {
            return None;
        }
        let compiled: Vec<RowExpr> = compiled.into_iter().collect::<Option<_>>()?;
        let tys: Vec<Ty> = compiled.iter().map(row_ty).collect();
        let ty = match &callee {
            Callee::Builtin(_, sig) => {
                self.check_arg_types(&fname, sig, args, &tys)?;
                return_type(sig.returns, &tys)
            }
            Callee::Plugin(params) => {
                let mut ok = true;
                if let Some(params) = params {
                    for (i, ((want, got), arg)) in params.iter().zip(&tys).zip(args).enumerate() {
                        if !plugin_accepts(*want, *got) {
                            self.arg_mismatch(
                                &fname,
                                &format!("#{}", i + 1),
                                &format!("a {} value", want.name()),
                                *got,
                                arg.span,
                            );
                            ok = false;
                        }
                    }
                }
                if !ok {
                    return None;
                }
                Ty::Float
            }
        };
        let text = e.to_string();
        let key = (text.clone(), rows);
        let index = match self.agg_index.get(&key) {
            Some(&i) => i,
            None => {
                self.aggregates.push(AggregateCall {
                    function,
                    args: compiled,
                    rows,
                    text,
                });
                self.agg_index.insert(key, self.aggregates.len() - 1);
                self.aggregates.len() - 1
            }
        };
        Some((AggExpr::Aggregate(index), ty))
    }

    fn coerce_agg_time(
        &mut self,
        a: &mut (AggExpr, Ty),
        b: &mut (AggExpr, Ty),
        a_span: Span,
        b_span: Span,
    ) -> Option<()> {
        if a.1 == Ty::Timestamp
            && let AggExpr::Literal(Value::Str(s)) = &b.0
        {
            let us = self.time_literal(s, b_span)?;
            *b = (AggExpr::Literal(Value::Timestamp(us)), Ty::Timestamp);
        } else if b.1 == Ty::Timestamp
            && let AggExpr::Literal(Value::Str(s)) = &a.0
        {
            let us = self.time_literal(s, a_span)?;
            *a = (AggExpr::Literal(Value::Timestamp(us)), Ty::Timestamp);
        }
        Some(())
    }
}
