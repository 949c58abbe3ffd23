//! Typing and compiling expressions: row-level ones (`where`, aggregate arguments) into
//! [`RowExpr`] and `expect` ones into [`AggExpr`] over de-duplicated aggregates.

use mlc_grammar::Code;
use mlc_grammar::Diagnostic;
use mlc_grammar::ast::{BinaryOp, ColumnRef, Expr, ExprKind, Ident, Literal, Span, UnaryOp};

use super::clauses::{CheckCx, UseCtx};
use super::suggest;
use super::types::{Ty, accepts, comparable, describe_arg, plugin_accepts, return_type};
use crate::functions::{self, ArgType, FunctionKind, Signature};
use crate::plan::{AggExpr, AggregateCall, ColumnId, FunctionRef, RowExpr, RowExprKind, RowSet};
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

fn row(kind: RowExprKind, ty: Ty) -> RowExpr {
    RowExpr {
        kind,
        ty: ty.to_data(),
    }
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

    // ----- row level -------------------------------------------------------------------

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

    // ----- aggregate level (expect) ------------------------------------------------------

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
        let rows = match (kind, on_baseline) {
            (FunctionKind::Scalar, true) => {
                let d = Diagnostic::error(
                    Code::InvalidBaselineCall,
                    self.file,
                    e.span,
                    format!(
                        "`{fname}` is a scalar function, so `baseline.{fname}(...)` means nothing"
                    ),
                )
                .with_help(format!(
                    "apply it to a baseline aggregate instead, e.g. `{fname}(baseline.mean(x))`"
                ));
                self.push(d);
                return None;
            }
            (FunctionKind::TwoSample, true) => {
                let d = Diagnostic::error(
                    Code::InvalidBaselineCall,
                    self.file,
                    e.span,
                    format!("`{fname}` already compares the current rows with the baseline"),
                )
                .with_help(format!("write `{fname}(...)` without `baseline.`"));
                self.push(d);
                return None;
            }
            (FunctionKind::Special, true) => {
                let d = Diagnostic::error(
                    Code::InvalidBaselineCall,
                    self.file,
                    e.span,
                    format!("`{fname}` is computed for the current rows only"),
                )
                .with_help(format!("write `{fname}()` without `baseline.`"));
                self.push(d);
                return None;
            }
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
}
