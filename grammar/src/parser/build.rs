//! Pairs to AST nodes: items, clauses and expressions (operator precedence by a Pratt
//! parser), with spans trimmed of trailing comments, literal errors collected so that an item
//! reports all of them, and expressions capped in depth.

use std::cell::{Cell, RefCell};
use std::sync::LazyLock;

use pest::iterators::Pair;
use pest::pratt_parser::{Assoc, Op, PrattParser};

use super::Rule;
use crate::ast::*;
use crate::diagnostic::{Code, Diagnostic, FileId};

/// The AST of one item (`pair`, parsed from `text[base..]`) and the literal errors found in
/// it; `None` when the item could not be built.
pub(super) fn item(
    file: FileId,
    text: &str,
    comment_ends: &[(usize, usize)],
    base: usize,
    pair: Pair<'_, Rule>,
) -> (Option<Item>, Vec<Diagnostic>) {
    let builder = Builder {
        file,
        text,
        comment_ends,
        base,
        diags: RefCell::new(Vec::new()),
        too_deep: Cell::new(false),
    };
    let item = builder.item(pair);
    (item, builder.diags.into_inner())
}

/// Operator precedence, loosest first (docs/language.md#expressions). Comparisons are non-associative:
/// the grammar allows one per operand, so their associativity here never matters.
static PRATT: LazyLock<PrattParser<Rule>> = LazyLock::new(|| {
    PrattParser::new()
        .op(Op::infix(Rule::op_or, Assoc::Left))
        .op(Op::infix(Rule::op_and, Assoc::Left))
        .op(Op::prefix(Rule::op_not))
        .op(Op::infix(Rule::op_cmp, Assoc::Left)
            | Op::postfix(Rule::is_null)
            | Op::postfix(Rule::in_list)
            | Op::postfix(Rule::between)
            | Op::postfix(Rule::within))
        .op(Op::infix(Rule::op_sum, Assoc::Left))
        .op(Op::infix(Rule::op_product, Assoc::Left))
        .op(Op::prefix(Rule::op_neg))
        .op(Op::postfix(Rule::field_access))
});

/// Builds AST nodes from pairs. Literal errors (an integer too large, an unknown escape)
/// are collected rather than returned so that one item reports all of them.
struct Builder<'t> {
    file: FileId,
    text: &'t str,
    /// `(end, start)` of every comment, sorted, to trim them off the end of spans.
    comment_ends: &'t [(usize, usize)],
    /// Offset of the parsed item in the file: pest's positions are relative to it.
    base: usize,
    diags: RefCell<Vec<Diagnostic>>,
    /// Whether "expression too long" was reported already (once per item is enough).
    too_deep: Cell<bool>,
}

type P<'i> = Pair<'i, Rule>;

impl Builder<'_> {
    /// The span of a pair, without the whitespace and comments pest may have consumed
    /// after its last token.
    fn span(&self, p: &P<'_>) -> Span {
        let s = p.as_span();
        let (start, raw_end) = (self.base + s.start(), self.base + s.end());
        let bytes = self.text.as_bytes();
        let mut end = raw_end;
        loop {
            while end > start && bytes.get(end - 1).is_some_and(|b| b.is_ascii_whitespace()) {
                end -= 1;
            }
            // A comment ending here was skipped by pest too: step over it.
            let idx = self.comment_ends.partition_point(|&(e, _)| e < end);
            match self.comment_ends.get(idx) {
                Some(&(e, comment_start)) if e == end && comment_start >= start => {
                    end = comment_start
                }
                _ => break,
            }
        }
        Span::new(start, end)
    }

    fn error(&self, span: Span, msg: impl Into<String>, label: &str, help: Option<String>) {
        let mut d = Diagnostic::error(Code::InvalidLiteral, self.file, span, msg).with_label(label);
        if let Some(h) = help {
            d = d.with_help(h);
        }
        self.diags.borrow_mut().push(d);
    }

    fn item(&self, pair: P<'_>) -> Option<Item> {
        let inner = pair.into_inner().next()?;
        Some(match inner.as_rule() {
            Rule::import => {
                let span = self.span(&inner);
                let path = self.string(inner.into_inner().find(|p| p.as_rule() == Rule::string)?);
                Item::Import(Import { path, span })
            }
            Rule::component => Item::Component(self.component(inner)?),
            Rule::plugin => Item::Plugin(self.plugin(inner)?),
            Rule::check => Item::Check(self.check(inner)?),
            Rule::test => Item::Test(self.test(inner)?),
            _ => return None,
        })
    }

    fn ident(&self, p: P<'_>) -> Ident {
        let span = self.span(&p);
        let raw = p.as_str();
        let name = raw
            .strip_prefix('`')
            .and_then(|s| s.strip_suffix('`'))
            .unwrap_or(raw);
        Ident {
            name: name.to_string(),
            span,
        }
    }

    fn idents<'i>(&self, p: P<'i>) -> Vec<Ident> {
        p.into_inner()
            .filter(|p| matches!(p.as_rule(), Rule::ident | Rule::key_name))
            .map(|p| self.ident(p))
            .collect()
    }

    fn string(&self, p: P<'_>) -> StrLit {
        let span = self.span(&p);
        let raw = p.as_str();
        let inner = raw.get(1..raw.len().saturating_sub(1)).unwrap_or("");
        let mut value = String::with_capacity(inner.len());
        let mut chars = inner.char_indices();
        while let Some((i, c)) = chars.next() {
            if c != '\\' {
                value.push(c);
                continue;
            }
            match chars.next() {
                Some((_, '"')) => value.push('"'),
                Some((_, '\\')) => value.push('\\'),
                Some((_, 'n')) => value.push('\n'),
                Some((_, 't')) => value.push('\t'),
                Some((j, other)) => {
                    let start = span.start as usize + 1 + i;
                    let end = span.start as usize + 1 + j + other.len_utf8();
                    self.error(
                        Span::new(start, end),
                        format!("unknown escape `\\{other}` in a string"),
                        "unknown escape",
                        Some("the escapes are `\\\"`, `\\\\`, `\\n` and `\\t`".into()),
                    );
                }
                None => {}
            }
        }
        StrLit { value, span }
    }

    fn duration(&self, p: P<'_>) -> Duration {
        let span = self.span(&p);
        let text = p.as_str();
        let (digits, unit) = text.split_at(text.len().saturating_sub(1));
        let unit = match unit {
            "s" => DurationUnit::Seconds,
            "m" => DurationUnit::Minutes,
            "h" => DurationUnit::Hours,
            "d" => DurationUnit::Days,
            _ => DurationUnit::Weeks,
        };
        let value = digits.parse::<u64>().unwrap_or_else(|_| {
            self.error(
                span,
                format!("duration `{text}` is too large"),
                "too large",
                None,
            );
            0
        });
        Duration { value, unit, span }
    }

    fn int(&self, p: &P<'_>) -> i64 {
        let text = p.as_str();
        text.parse::<i64>().unwrap_or_else(|_| {
            self.error(
                self.span(p),
                format!("integer `{text}` is too large"),
                "does not fit in 64 bits",
                Some(format!(
                    "integers range up to {}; write a float such as `{text}.0`",
                    i64::MAX
                )),
            );
            0
        })
    }

    fn float(&self, p: &P<'_>, text: &str) -> f64 {
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => v,
            _ => {
                self.error(
                    self.span(p),
                    format!("number `{text}` is too large"),
                    "too large",
                    None,
                );
                0.0
            }
        }
    }

    fn component(&self, p: P<'_>) -> Option<Component> {
        let span = self.span(&p);
        let mut names = Vec::new();
        let mut fields = Vec::new();
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::ident => names.push(self.ident(c)),
                Rule::fields => {
                    for f in c.into_inner().filter(|f| f.as_rule() == Rule::field) {
                        fields.push(self.field(f)?);
                    }
                }
                _ => {}
            }
        }
        let mut names = names.into_iter();
        Some(Component {
            name: names.next()?,
            key: names.next()?,
            time: names.next()?,
            fields,
            span,
        })
    }

    fn field(&self, p: P<'_>) -> Option<Field> {
        let span = self.span(&p);
        let mut inner = p.into_inner();
        let name = self.ident(inner.next()?);
        let ty_pair = inner.find(|c| c.as_rule() == Rule::field_type)?;
        let ty = match ty_pair.as_str() {
            "int" => FieldType::Int,
            "float" => FieldType::Float,
            "bool" => FieldType::Bool,
            "string" => FieldType::String,
            _ => FieldType::Timestamp,
        };
        Some(Field {
            name,
            ty,
            ty_span: self.span(&ty_pair),
            span,
        })
    }

    fn plugin(&self, p: P<'_>) -> Option<Plugin> {
        let span = self.span(&p);
        let mut name = None;
        let mut path = None;
        let mut options = Vec::new();
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::ident => name = Some(self.ident(c)),
                Rule::string => path = Some(self.string(c)),
                Rule::plugin_options => {
                    for o in c
                        .into_inner()
                        .filter(|o| o.as_rule() == Rule::plugin_option)
                    {
                        options.push(self.plugin_option(o)?);
                    }
                }
                _ => {}
            }
        }
        Some(Plugin {
            name: name?,
            path: path?,
            options,
            span,
        })
    }

    fn plugin_option(&self, p: P<'_>) -> Option<PluginOption> {
        let span = self.span(&p);
        let mut inner = p.into_inner();
        let name = self.ident(inner.next()?);
        let value_pair = inner.next()?;
        let value_span = self.span(&value_pair);
        let v = value_pair.into_inner().next()?;
        let value = match v.as_rule() {
            Rule::size => {
                let text = v.as_str();
                let split = text
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(text.len());
                let (digits, unit) = text.split_at(split);
                let mult: u64 = match unit {
                    "KiB" => 1 << 10,
                    "MiB" => 1 << 20,
                    "GiB" => 1 << 30,
                    _ => 1,
                };
                let bytes = digits.parse::<u64>().ok().and_then(|n| n.checked_mul(mult));
                let bytes = bytes.unwrap_or_else(|| {
                    self.error(
                        value_span,
                        format!("size `{text}` is too large"),
                        "too large",
                        None,
                    );
                    0
                });
                OptionValue::Size {
                    bytes,
                    text: text.to_string(),
                }
            }
            Rule::duration => OptionValue::Duration(self.duration(v)),
            Rule::integer => OptionValue::Int(self.int(&v)),
            _ => OptionValue::Str(self.string(v).value),
        };
        Some(PluginOption {
            name,
            value,
            value_span,
            span,
        })
    }

    fn check(&self, p: P<'_>) -> Option<Check> {
        let span = self.span(&p);
        let mut name = None;
        let mut clauses = Vec::new();
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::ident => name = Some(self.ident(c)),
                Rule::clause => clauses.push(self.clause(c)?),
                _ => {}
            }
        }
        Some(Check {
            name: name?,
            clauses,
            span,
        })
    }

    fn clause(&self, p: P<'_>) -> Option<Clause> {
        let span = self.span(&p);
        let c = p.into_inner().next()?;
        let rule = c.as_rule();
        // Every clause is a keyword followed by its content; skip keywords.
        let mut parts = c.into_inner().filter(|x| {
            !matches!(
                x.as_rule(),
                Rule::k_on
                    | Rule::k_window
                    | Rule::k_delay
                    | Rule::k_every
                    | Rule::k_baseline
                    | Rule::k_where
                    | Rule::k_group
                    | Rule::k_by
                    | Rule::k_each
                    | Rule::k_in
                    | Rule::k_min_rows
                    | Rule::k_expect
                    | Rule::k_severity
                    | Rule::k_for
                    | Rule::k_description
                    | Rule::k_labels
                    | Rule::comma
                    | Rule::lbrace
                    | Rule::rbrace
            )
        });
        let kind = match rule {
            Rule::on_clause => ClauseKind::On(self.source(parts.next()?)?),
            Rule::window_clause => ClauseKind::Window(self.duration(parts.next()?)),
            Rule::delay_clause => ClauseKind::Delay(self.duration(parts.next()?)),
            Rule::every_clause => ClauseKind::Every(self.duration(parts.next()?)),
            Rule::for_clause => ClauseKind::For(self.duration(parts.next()?)),
            Rule::baseline_clause => {
                let spec = parts.next()?.into_inner().next()?;
                ClauseKind::Baseline(match spec.as_rule() {
                    Rule::ident => Baseline::Component(self.ident(spec)),
                    Rule::baseline_offset => Baseline::Offset(
                        self.duration(spec.into_inner().find(|x| x.as_rule() == Rule::duration)?),
                    ),
                    _ => {
                        let mut s = spec.into_inner().filter(|x| x.as_rule() == Rule::string);
                        let from = self.string(s.next()?);
                        let to = self.string(s.next()?);
                        Baseline::Range { from, to }
                    }
                })
            }
            Rule::where_clause => ClauseKind::Where(self.top_expr(parts.next()?)),
            Rule::expect_clause => ClauseKind::Expect(self.top_expr(parts.next()?)),
            Rule::group_clause => {
                ClauseKind::GroupBy(parts.filter_map(|x| self.column(x)).collect())
            }
            Rule::each_clause => {
                let var = self.ident(parts.next()?);
                let list = parts.next()?.into_inner().next()?;
                let list = match list.as_rule() {
                    Rule::column_list => EachList::Columns(
                        list.into_inner()
                            .filter(|x| x.as_rule() == Rule::column)
                            .filter_map(|x| self.column(x))
                            .collect(),
                    ),
                    Rule::each_numeric => EachList::Numeric(self.idents(list).into_iter().next()?),
                    _ => EachList::Categorical(self.idents(list).into_iter().next()?),
                };
                ClauseKind::Each { var, list }
            }
            Rule::min_rows_clause => {
                let n = parts.next()?;
                let nspan = self.span(&n);
                let value = n.as_str().parse::<u64>().unwrap_or_else(|_| {
                    self.error(
                        nspan,
                        format!("`{}` is too large", n.as_str()),
                        "too large",
                        None,
                    );
                    0
                });
                ClauseKind::MinRows { value, span: nspan }
            }
            Rule::severity_clause => {
                let l = parts.next()?;
                let level = match l.as_str() {
                    "info" => Severity::Info,
                    "critical" => Severity::Critical,
                    _ => Severity::Warning,
                };
                ClauseKind::Severity {
                    level,
                    span: self.span(&l),
                }
            }
            Rule::description_clause => ClauseKind::Description(self.string(parts.next()?)),
            Rule::labels_clause => ClauseKind::Labels(
                parts
                    .filter(|x| x.as_rule() == Rule::label)
                    .filter_map(|l| {
                        let mut it = l.into_inner();
                        let key = self.ident(it.next()?);
                        let value = self.string(it.find(|x| x.as_rule() == Rule::string)?);
                        Some(Label { key, value })
                    })
                    .collect(),
            ),
            _ => return None,
        };
        Some(Clause { kind, span })
    }

    fn source(&self, p: P<'_>) -> Option<Source> {
        let span = self.span(&p);
        let mut inner = p.into_inner();
        let first = self.ident(inner.next()?);
        let mut joins = Vec::new();
        for j in inner {
            let jspan = self.span(&j);
            let left = j.clone().into_inner().any(|x| x.as_rule() == Rule::k_left);
            let mut ids = self.idents(j).into_iter();
            joins.push(Join {
                left,
                component: ids.next()?,
                using: ids.next()?,
                span: jspan,
            });
        }
        Some(Source { first, joins, span })
    }

    fn column(&self, p: P<'_>) -> Option<ColumnRef> {
        if p.as_rule() != Rule::column {
            return None;
        }
        let span = self.span(&p);
        let mut ids = self.idents(p);
        let name = ids.pop()?;
        Some(ColumnRef {
            qualifier: ids.pop(),
            name,
            span,
        })
    }

    fn test(&self, p: P<'_>) -> Option<Test> {
        let span = self.span(&p);
        let mut name = None;
        let mut at = None;
        let mut rows = Vec::new();
        let mut asserts = Vec::new();
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::ident => name = Some(self.ident(c)),
                Rule::at_clause => {
                    at = Some(self.string(c.into_inner().find(|x| x.as_rule() == Rule::string)?))
                }
                Rule::rows => rows.push(self.rows(c)?),
                Rule::assert => asserts.push(self.assert(c)?),
                _ => {}
            }
        }
        Some(Test {
            name: name?,
            at: at?,
            rows,
            asserts,
            span,
        })
    }

    fn rows(&self, p: P<'_>) -> Option<Rows> {
        let span = self.span(&p);
        let mut component = None;
        let mut source = None;
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::ident => component = Some(self.ident(c)),
                Rule::rows_file => {
                    source = Some(RowsSource::File(
                        self.string(c.into_inner().find(|x| x.as_rule() == Rule::string)?),
                    ))
                }
                Rule::rows_inline => {
                    let mut records = Vec::new();
                    for r in c.into_inner().filter(|x| x.as_rule() == Rule::record) {
                        records.push(self.record(r)?);
                    }
                    source = Some(RowsSource::Inline(records));
                }
                _ => {}
            }
        }
        Some(Rows {
            component: component?,
            source: source?,
            span,
        })
    }

    fn record(&self, p: P<'_>) -> Option<Record> {
        let span = self.span(&p);
        let mut fields = Vec::new();
        for f in p.into_inner().filter(|x| x.as_rule() == Rule::record_field) {
            let mut it = f.into_inner();
            let name = self.ident(it.next()?);
            let v = it.find(|x| x.as_rule() == Rule::record_value)?;
            let value_span = self.span(&v);
            let lit = v.into_inner().next()?;
            let value = if lit.as_rule() == Rule::negative {
                let num = lit.into_inner().next()?;
                self.negative_literal(num)
            } else {
                self.literal(lit)
            };
            fields.push(RecordField {
                name,
                value,
                value_span,
            });
        }
        Some(Record { fields, span })
    }

    fn negative_literal(&self, num: P<'_>) -> Literal {
        match num.as_rule() {
            Rule::integer => {
                // Parse with the sign so that i64::MIN is representable.
                let text = format!("-{}", num.as_str());
                match text.parse::<i64>() {
                    Ok(v) => Literal::Int(v),
                    Err(_) => {
                        self.error(
                            self.span(&num),
                            format!("integer `{text}` is too small"),
                            "does not fit in 64 bits",
                            None,
                        );
                        Literal::Int(0)
                    }
                }
            }
            _ => match self.literal(num) {
                Literal::Float { value, text } => Literal::Float {
                    value: -value,
                    text: format!("-{text}"),
                },
                Literal::Percent { value, text } => Literal::Percent {
                    value: -value,
                    text: format!("-{text}"),
                },
                other => other,
            },
        }
    }

    fn assert(&self, p: P<'_>) -> Option<Assert> {
        let span = self.span(&p);
        let mut check = None;
        let mut expected = None;
        let mut slice = None;
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::ident => check = Some(self.ident(c)),
                Rule::outcome => {
                    let last = c.into_inner().last()?;
                    expected = Some(match last.as_rule() {
                        Rule::k_passes => Expected::Passes,
                        Rule::k_fails => Expected::Fails,
                        Rule::k_insufficient => Expected::Insufficient,
                        _ => Expected::Error,
                    });
                }
                Rule::record => slice = Some(self.record(c)?),
                _ => {}
            }
        }
        Some(Assert {
            check: check?,
            expected: expected?,
            slice,
            span,
        })
    }

    fn literal(&self, p: P<'_>) -> Literal {
        match p.as_rule() {
            Rule::integer => Literal::Int(self.int(&p)),
            Rule::float => {
                let text = p.as_str().to_string();
                Literal::Float {
                    value: self.float(&p, &text),
                    text,
                }
            }
            Rule::percent => {
                let text = p.as_str().trim_end_matches('%').to_string();
                Literal::Percent {
                    value: self.float(&p, &text) / 100.0,
                    text,
                }
            }
            Rule::duration => Literal::Duration(self.duration(p)),
            Rule::string => Literal::Str(self.string(p).value),
            Rule::k_true => Literal::Bool(true),
            Rule::k_false => Literal::Bool(false),
            _ => Literal::Null,
        }
    }

    /// A whole expression of a clause.
    fn top_expr(&self, p: P<'_>) -> Expr {
        self.expr(p).0
    }

    /// Caps the depth of the tree as it is built, so that everything that walks it
    /// recursively afterwards (printing, checking, dropping) stays far from the end of
    /// the stack, even for generated or hostile input.
    fn capped(&self, e: Expr, depth: usize) -> (Expr, usize) {
        if depth <= MAX_EXPR_DEPTH {
            return (e, depth);
        }
        if !self.too_deep.replace(true) {
            self.diags.borrow_mut().push(
                Diagnostic::error(
                    Code::Syntax,
                    self.file,
                    e.span,
                    "this expression is too long",
                )
                .with_label(format!("more than {MAX_EXPR_DEPTH} levels of operators"))
                .with_help(format!(
                    "mlc accepts expressions up to {MAX_EXPR_DEPTH} operators deep; split it \
                         into several `expect` clauses"
                )),
            );
        }
        (
            Expr {
                kind: ExprKind::Literal(Literal::Null),
                span: e.span,
            },
            1,
        )
    }

    /// An `expr` or `arith` pair, through the Pratt parser, with the depth of its tree.
    fn expr(&self, p: P<'_>) -> (Expr, usize) {
        PRATT
            .map_primary(|prim| self.primary(prim))
            .map_prefix(|op, (rhs, d)| {
                let span = self.span(&op).to(rhs.span);
                let op = if op.as_rule() == Rule::op_not {
                    UnaryOp::Not
                } else {
                    UnaryOp::Neg
                };
                let e = Expr {
                    kind: ExprKind::Unary {
                        op,
                        operand: Box::new(rhs),
                    },
                    span,
                };
                self.capped(e, d + 1)
            })
            .map_postfix(|lhs, op| self.postfix(lhs, op))
            .map_infix(|(lhs, dl), op, (rhs, dr)| {
                let op = match (op.as_rule(), op.as_str()) {
                    (Rule::op_or, _) => BinaryOp::Or,
                    (Rule::op_and, _) => BinaryOp::And,
                    (_, "==") => BinaryOp::Eq,
                    (_, "!=") => BinaryOp::Ne,
                    (_, "<") => BinaryOp::Lt,
                    (_, "<=") => BinaryOp::Le,
                    (_, ">") => BinaryOp::Gt,
                    (_, ">=") => BinaryOp::Ge,
                    (_, "+") => BinaryOp::Add,
                    (_, "-") => BinaryOp::Sub,
                    (_, "*") => BinaryOp::Mul,
                    _ => BinaryOp::Div,
                };
                let span = lhs.span.to(rhs.span);
                let e = Expr {
                    kind: ExprKind::Binary {
                        op,
                        lhs: Box::new(lhs),
                        rhs: Box::new(rhs),
                    },
                    span,
                };
                self.capped(e, dl.max(dr) + 1)
            })
            .parse(p.into_inner())
    }

    fn postfix(&self, (lhs, depth): (Expr, usize), op: P<'_>) -> (Expr, usize) {
        let span = lhs.span.to(self.span(&op));
        let rule = op.as_rule();
        let negated = op.clone().into_inner().any(|x| x.as_rule() == Rule::k_not);
        let mut operands = op
            .into_inner()
            .filter(|x| matches!(x.as_rule(), Rule::expr | Rule::arith | Rule::ident));
        let operand = Box::new(lhs);
        let mut depth = depth;
        let kind = match rule {
            Rule::is_null => ExprKind::IsNull { operand, negated },
            Rule::in_list => {
                let mut list = Vec::new();
                for item in operands {
                    let (e, d) = self.expr(item);
                    depth = depth.max(d);
                    list.push(e);
                }
                ExprKind::InList {
                    operand,
                    list,
                    negated,
                }
            }
            Rule::between | Rule::within => {
                let (Some(a), Some(b)) = (operands.next(), operands.next()) else {
                    return (*operand, depth);
                };
                let ((a, da), (b, db)) = (self.expr(a), self.expr(b));
                depth = depth.max(da).max(db);
                let (a, b) = (Box::new(a), Box::new(b));
                if rule == Rule::between {
                    ExprKind::Between {
                        operand,
                        low: a,
                        high: b,
                    }
                } else {
                    ExprKind::Within {
                        operand,
                        tolerance: a,
                        target: b,
                    }
                }
            }
            _ => match operands.next() {
                Some(field) => ExprKind::Field {
                    base: operand,
                    field: self.ident(field),
                },
                None => return (*operand, depth),
            },
        };
        self.capped(Expr { kind, span }, depth + 1)
    }

    /// An argument of a call, raising `depth` to the argument's.
    fn arg(&self, p: P<'_>, depth: &mut usize) -> Expr {
        let (e, d) = self.expr(p);
        *depth = (*depth).max(d);
        e
    }

    fn primary(&self, p: P<'_>) -> (Expr, usize) {
        let span = self.span(&p);
        let Some(inner) = p.into_inner().next() else {
            return (
                Expr {
                    kind: ExprKind::Literal(Literal::Null),
                    span,
                },
                1,
            );
        };
        let mut depth = 0;
        let kind = match inner.as_rule() {
            Rule::paren => match inner.into_inner().find(|x| x.as_rule() == Rule::expr) {
                Some(e) => {
                    let (e, d) = self.expr(e);
                    depth = d;
                    ExprKind::Paren(Box::new(e))
                }
                None => ExprKind::Literal(Literal::Null),
            },
            Rule::baseline_call | Rule::name_ref => {
                let is_baseline = inner.as_rule() == Rule::baseline_call;
                let mut ids = Vec::new();
                let mut args = None;
                for c in inner.into_inner() {
                    match c.as_rule() {
                        Rule::ident => ids.push(self.ident(c)),
                        Rule::expr => {
                            let e = self.arg(c, &mut depth);
                            args.get_or_insert_with(Vec::new).push(e);
                        }
                        Rule::call_args => {
                            let mut list = Vec::new();
                            for e in c.into_inner().filter(|e| e.as_rule() == Rule::expr) {
                                list.push(self.arg(e, &mut depth));
                            }
                            args = Some(list);
                        }
                        _ => {}
                    }
                }
                let unnamed = || Ident {
                    name: String::new(),
                    span,
                };
                match (is_baseline, args) {
                    (true, args) => ExprKind::BaselineCall {
                        name: ids.pop().unwrap_or_else(unnamed),
                        args: args.unwrap_or_default(),
                    },
                    (false, Some(args)) => ExprKind::Call {
                        name: ids.pop().unwrap_or_else(unnamed),
                        args,
                    },
                    (false, None) => match ids.pop() {
                        Some(name) => ExprKind::Column(ColumnRef {
                            qualifier: ids.pop(),
                            name,
                            span,
                        }),
                        None => ExprKind::Literal(Literal::Null),
                    },
                }
            }
            _ => ExprKind::Literal(self.literal(inner)),
        };
        self.capped(Expr { kind, span }, depth + 1)
    }
}

const MAX_EXPR_DEPTH: usize = 256;
