//! Row-level expressions (a `where`, the arguments of an aggregate) typed and compiled into
//! [`RowExpr`], evaluated by `eval/row.rs`; an aggregate found here is an error (nested, or
//! in `where`), and a string compared with a timestamp becomes a time.

use mlc_grammar::Code;
use mlc_grammar::Diagnostic;
use mlc_grammar::ast::{Expr, ExprKind, Literal, Span};

use super::{Callee, is_percent, literal_value, row_ty};
use crate::check::clauses::{CheckCx, UseCtx};
use crate::check::types::{Ty, return_type};
use crate::functions::FunctionKind;
use crate::plan::{RowExpr, RowExprKind};
use crate::value::Value;

fn row(kind: RowExprKind, ty: Ty) -> RowExpr {
    RowExpr {
        kind,
        ty: ty.to_data(),
    }
}

impl CheckCx<'_> {
    /// Compiles a row-level expression (a `where`, an argument of an aggregate).
    pub(crate) fn row_expr(&mut self, e: &Expr) -> Option<RowExpr> {
        match &e.kind {
            ExprKind::Literal(lit) => {
                if let Literal::Duration(_) = lit {
                    self.push(
                        Diagnostic::error(
                            Code::TypeMismatch,
                            self.file,
                            e.span,
                            "a duration cannot be used on rows",
                        )
                        .with_label("a duration")
                        .with_help("durations compare with duration aggregates, e.g. `expect freshness() < 2h`"),
                    );
                    return None;
                }
                let (v, t) = literal_value(lit);
                Some(row(RowExprKind::Literal(v), t))
            }
            ExprKind::Column(c) => self.column(c),
            ExprKind::Paren(inner) => self.row_expr(inner),
            ExprKind::Call { name, args } => {
                let callee = self.callee(name)?;
                match callee {
                    Callee::Builtin(f, sig) if sig.kind == FunctionKind::Scalar => {
                        let compiled: Vec<Option<RowExpr>> =
                            args.iter().map(|a| self.row_expr(a)).collect();
                        if !self.check_arity(name, e.span, &sig, args.len()) {
                            return None;
                        }
                        let compiled: Vec<RowExpr> = compiled.into_iter().collect::<Option<_>>()?;
                        let tys: Vec<Ty> = compiled.iter().map(row_ty).collect();
                        self.check_arg_types(f.name(), &sig, args, &tys)?;
                        let ty = return_type(sig.returns, &tys);
                        Some(row(
                            RowExprKind::Scalar {
                                function: f,
                                args: compiled,
                            },
                            ty,
                        ))
                    }
                    _ => {
                        self.nested_aggregate(&name.name, name.span);
                        None
                    }
                }
            }
            ExprKind::BaselineCall { name, .. } => {
                self.nested_aggregate(&format!("baseline.{}", name.name), e.span);
                None
            }
            ExprKind::Field { field, .. } => {
                self.push(
                    Diagnostic::error(
                        Code::TypeMismatch,
                        self.file,
                        field.span,
                        format!(
                            "`.{}` reads a field of an aggregate result, not of a row",
                            field.name
                        ),
                    )
                    .with_help("fields exist on results such as `ks(x).pvalue`, inside `expect`"),
                );
                None
            }
            ExprKind::Unary { op, operand } => {
                let inner = self.row_expr(operand)?;
                let t = self.unary_type(*op, row_ty(&inner), operand.span, e.span)?;
                Some(row(
                    RowExprKind::Unary {
                        op: *op,
                        operand: Box::new(inner),
                    },
                    t,
                ))
            }
            ExprKind::Binary { op, lhs, rhs } => {
                let l = self.row_expr(lhs);
                let r = self.row_expr(rhs);
                let (mut l, mut r) = (l?, r?);
                if op.is_comparison() {
                    self.coerce_row_time(&mut l, &mut r, lhs.span, rhs.span)?;
                }
                let t = self.binary_type(*op, row_ty(&l), row_ty(&r), lhs, rhs, e.span)?;
                if t == Ty::Duration {
                    self.push(Diagnostic::error(
                        Code::TypeMismatch,
                        self.file,
                        e.span,
                        "a duration cannot be computed on rows",
                    ).with_help("durations compare with duration aggregates, e.g. `expect freshness() < 2h`"));
                    return None;
                }
                Some(row(
                    RowExprKind::Binary {
                        op: *op,
                        lhs: Box::new(l),
                        rhs: Box::new(r),
                    },
                    t,
                ))
            }
            ExprKind::IsNull { operand, negated } => {
                let inner = self.row_expr(operand)?;
                Some(row(
                    RowExprKind::IsNull {
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
                let o = self.row_expr(operand);
                let items: Vec<Option<RowExpr>> = list.iter().map(|i| self.row_expr(i)).collect();
                let mut o = o?;
                let mut items: Vec<RowExpr> = items.into_iter().collect::<Option<_>>()?;
                let mut ok = true;
                for (item, expr) in items.iter_mut().zip(list) {
                    if self
                        .coerce_row_time(&mut o, item, operand.span, expr.span)
                        .is_none()
                        || !self.in_item_ok(row_ty(&o), row_ty(item), operand, expr)
                    {
                        ok = false;
                    }
                }
                ok.then(|| {
                    row(
                        RowExprKind::InList {
                            operand: Box::new(o),
                            list: items,
                            negated: *negated,
                        },
                        Ty::Bool,
                    )
                })
            }
            ExprKind::Between { operand, low, high } => {
                let o = self.row_expr(operand);
                let lo = self.row_expr(low);
                let hi = self.row_expr(high);
                let (mut o, mut lo, mut hi) = (o?, lo?, hi?);
                self.coerce_row_time(&mut o, &mut lo, operand.span, low.span)?;
                self.coerce_row_time(&mut o, &mut hi, operand.span, high.span)?;
                self.between_ok(row_ty(&o), row_ty(&lo), row_ty(&hi), operand, low, high)?;
                Some(row(
                    RowExprKind::Between {
                        operand: Box::new(o),
                        low: Box::new(lo),
                        high: Box::new(hi),
                    },
                    Ty::Bool,
                ))
            }
            ExprKind::Within {
                operand,
                tolerance,
                target,
            } => {
                let o = self.row_expr(operand);
                let tol = self.row_expr(tolerance);
                let t = self.row_expr(target);
                let (o, tol, t) = (o?, tol?, t?);
                let relative = is_percent(tolerance);
                self.within_ok(
                    row_ty(&o),
                    row_ty(&tol),
                    row_ty(&t),
                    relative,
                    operand,
                    tolerance,
                    target,
                )?;
                Some(row(
                    RowExprKind::Within {
                        operand: Box::new(o),
                        tolerance: Box::new(tol),
                        target: Box::new(t),
                        relative,
                    },
                    Ty::Bool,
                ))
            }
        }
    }

    fn nested_aggregate(&mut self, name: &str, span: Span) {
        let (message, help) = match &self.use_ctx {
            UseCtx::Agg(outer, _) => (
                format!("aggregate `{name}` cannot be nested inside `{outer}(...)`"),
                format!(
                    "`{outer}` works on row values; compare aggregates in the `expect` instead, e.g. `expect {name}(...) > 0`"
                ),
            ),
            UseCtx::Filter => (
                format!("aggregate `{name}` cannot be used in `where`"),
                "`where` filters rows one at a time; put the aggregate in an `expect`".to_string(),
            ),
            UseCtx::GroupBy => (
                format!("aggregate `{name}` cannot be used here"),
                "only columns can be used here".to_string(),
            ),
        };
        let d = Diagnostic::error(Code::NestedAggregate, self.file, span, message)
            .with_label("an aggregate")
            .with_help(help);
        self.push(d);
    }

    /// A string literal compared with a timestamp is read as an RFC 3339 time.
    fn coerce_row_time(
        &mut self,
        a: &mut RowExpr,
        b: &mut RowExpr,
        a_span: Span,
        b_span: Span,
    ) -> Option<()> {
        let a_ts = a.ty == Some(crate::schema::DataType::Timestamp);
        let b_ts = b.ty == Some(crate::schema::DataType::Timestamp);
        if a_ts && let RowExprKind::Literal(Value::Str(s)) = &b.kind {
            let us = self.time_literal(s, b_span)?;
            *b = RowExpr {
                kind: RowExprKind::Literal(Value::Timestamp(us)),
                ty: a.ty,
            };
        } else if b_ts && let RowExprKind::Literal(Value::Str(s)) = &a.kind {
            let us = self.time_literal(s, a_span)?;
            *a = RowExpr {
                kind: RowExprKind::Literal(Value::Timestamp(us)),
                ty: b.ty,
            };
        }
        Some(())
    }
}
