//! Compiling one `check` block: its clauses, its source and joins, its baseline, the
//! columns it reads, and its `expect`s (once per column of an `each` list).

use std::collections::{HashMap, HashSet};

use mlc_grammar::ast::{self, ClauseKind, Span};
use mlc_grammar::{Code, Diagnostic, FileId};

use super::Globals;
use super::suggest::{self, MAX_DURATION_SECS};
use super::types::Ty;
use crate::eval::check::DEFAULT_MAX_SERIES;
use crate::plan::{
    AggregateCall, BaselinePlan, CheckPlan, ColumnId, EachPlan, ExpectPlan, JoinPlan, Origin,
    RowSet, SourceComponent, SourcePlan,
};
use crate::schema::{ComponentSchema, DataType};

/// Where a column reference sits, which decides which row sets must carry the column.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum UseCtx {
    Filter,
    GroupBy,
    /// Inside the arguments of the aggregate named, over that row set.
    Agg(String, RowSet),
}

#[derive(Debug, Clone)]
pub(crate) struct ColUse {
    pub col: ColumnId,
    pub span: Span,
    pub ctx: UseCtx,
}

pub(crate) struct SrcComp<'g> {
    pub schema: &'g ComponentSchema,
}

/// The state of compiling one check.
pub(crate) struct CheckCx<'g> {
    pub g: &'g Globals,
    pub file: FileId,
    pub source: Vec<SrcComp<'g>>,
    /// `using` key name -> the left-side column it was resolved to.
    pub join_keys: Vec<(String, ColumnId)>,
    pub baseline: Option<BaselinePlan>,
    pub each_var: Option<String>,
    /// The column the `each` variable stands for in the current pass over the expects.
    pub each_col: Option<ColumnId>,
    /// The row sets in which aggregates read the `each` variable.
    pub each_rows: HashSet<RowSet>,
    pub aggregates: Vec<AggregateCall>,
    pub agg_index: HashMap<(String, RowSet), usize>,
    pub diags: Vec<Diagnostic>,
    pub use_ctx: UseCtx,
    pub uses: Vec<ColUse>,
}

impl CheckCx<'_> {
    pub(crate) fn note_use(&mut self, col: &ColumnId, span: Span) {
        self.uses.push(ColUse {
            col: col.clone(),
            span,
            ctx: self.use_ctx.clone(),
        });
    }
}

/// The first occurrence of each clause kind, with the `expect`s in order.
#[derive(Default)]
struct Clauses<'a> {
    on: Option<&'a ast::Source>,
    window: Option<&'a ast::Duration>,
    delay: Option<&'a ast::Duration>,
    every: Option<&'a ast::Duration>,
    baseline: Option<(&'a ast::Baseline, Span)>,
    filter: Option<&'a ast::Expr>,
    group_by: Option<&'a [ast::ColumnRef]>,
    each: Option<(&'a ast::Ident, &'a ast::EachList, Span)>,
    min_rows: Option<u64>,
    expects: Vec<&'a ast::Expr>,
    severity: Option<ast::Severity>,
    for_: Option<&'a ast::Duration>,
    description: Option<&'a ast::StrLit>,
    labels: Option<&'a [ast::Label]>,
}

fn gather<'a>(check: &'a ast::Check, file: FileId, diags: &mut Vec<Diagnostic>) -> Clauses<'a> {
    let mut c = Clauses::default();
    let mut first: HashMap<&'static str, Span> = HashMap::new();
    for clause in &check.clauses {
        let kw = clause.kind.keyword();
        if !matches!(clause.kind, ClauseKind::Expect(_)) {
            if let Some(&prev) = first.get(kw) {
                diags.push(
                    Diagnostic::error(
                        Code::DuplicateClause,
                        file,
                        clause.span,
                        format!("`{kw}` is given twice in check `{}`", check.name.name),
                    )
                    .with_label("given again here")
                    .with_secondary(file, prev, "first given here")
                    .with_help(format!("keep one `{kw}`; only `expect` may repeat")),
                );
                continue;
            }
            first.insert(kw, clause.span);
        }
        match &clause.kind {
            ClauseKind::On(s) => c.on = Some(s),
            ClauseKind::Window(d) => c.window = Some(d),
            ClauseKind::Delay(d) => c.delay = Some(d),
            ClauseKind::Every(d) => c.every = Some(d),
            ClauseKind::Baseline(b) => c.baseline = Some((b, clause.span)),
            ClauseKind::Where(e) => c.filter = Some(e),
            ClauseKind::GroupBy(cols) => c.group_by = Some(cols),
            ClauseKind::Each { var, list } => c.each = Some((var, list, clause.span)),
            ClauseKind::MinRows { value, .. } => c.min_rows = Some(*value),
            ClauseKind::Expect(e) => c.expects.push(e),
            ClauseKind::Severity { level, .. } => c.severity = Some(*level),
            ClauseKind::For(d) => c.for_ = Some(d),
            ClauseKind::Description(s) => c.description = Some(s),
            ClauseKind::Labels(l) => c.labels = Some(l),
        }
    }
    c
}

/// Checks a duration against the limits; `positive` refuses `0s`.
fn duration(
    d: &ast::Duration,
    what: &str,
    positive: bool,
    file: FileId,
    diags: &mut Vec<Diagnostic>,
) -> Option<u64> {
    let secs = d.seconds();
    if positive && secs == 0 {
        diags.push(
            Diagnostic::error(Code::InvalidDuration, file, d.span, format!("`{what}` must be longer than 0s"))
                .with_label("zero")
                .with_help(match what {
                    "window" => "give the length of the window, e.g. `window 1d`; leave `window` out to read all rows",
                    "every" => "give how often to evaluate, e.g. `every 5m`",
                    _ => "give a length, e.g. `7d`",
                }),
        );
        return None;
    }
    if d.value > MAX_DURATION_SECS || secs > MAX_DURATION_SECS {
        diags.push(
            Diagnostic::error(
                Code::InvalidDuration,
                file,
                d.span,
                format!("`{what}` {d} is longer than 100 years"),
            )
            .with_label("too long")
            .with_help("durations are limited to 100 years (5217w)"),
        );
        return None;
    }
    Some(secs)
}

pub(crate) fn compile_check(
    g: &Globals,
    file: FileId,
    check: &ast::Check,
) -> (Option<CheckPlan>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let c = gather(check, file, &mut diags);

    let window_secs = c
        .window
        .and_then(|d| duration(d, "window", true, file, &mut diags));
    let delay_secs = c
        .delay
        .map(|d| duration(d, "delay", false, file, &mut diags));
    let every_secs = c
        .every
        .map(|d| duration(d, "every", true, file, &mut diags));
    let for_secs = c.for_.map(|d| duration(d, "for", false, file, &mut diags));

    if c.on.is_none() {
        diags.push(
            Diagnostic::error(Code::MissingClause, file, check.name.span, format!("check `{}` has no `on` clause", check.name.name))
                .with_label("reads no rows")
                .with_help("say which rows it reads, e.g. `on inference` or `on inference join feedback using request_id`"),
        );
    }
    if c.expects.is_empty() {
        diags.push(
            Diagnostic::error(
                Code::MissingClause,
                file,
                check.name.span,
                format!("check `{}` has no `expect` clause", check.name.name),
            )
            .with_label("asserts nothing")
            .with_help("add what must hold, e.g. `expect null_rate(age) < 1%`"),
        );
    }

    let mut cx = CheckCx {
        g,
        file,
        source: Vec::new(),
        join_keys: Vec::new(),
        baseline: None,
        each_var: None,
        each_col: None,
        each_rows: HashSet::new(),
        aggregates: Vec::new(),
        agg_index: HashMap::new(),
        diags,
        use_ctx: UseCtx::Filter,
        uses: Vec::new(),
    };

    let baseline = c.baseline.and_then(|(b, span)| cx.baseline_clause(b, span));
    cx.baseline = baseline.as_ref().map(|(plan, _, _)| plan.clone());

    let source = c.on.and_then(|on| cx.source_clause(on));
    let Some(joins) = source else {
        return (None, cx.diags);
    };

    let filter = c.filter.and_then(|e| {
        cx.use_ctx = UseCtx::Filter;
        let r = cx.row_expr(e)?;
        if !matches!(r.ty, Some(DataType::Bool) | None) {
            let ty = r.ty.map(Ty::from_data).unwrap_or(Ty::Null);
            cx.diags.push(
                Diagnostic::error(
                    Code::TypeMismatch,
                    file,
                    e.span,
                    format!("`where` needs a condition, found {}", ty.describe()),
                )
                .with_label(ty.describe())
                .with_help(format!("compare it, e.g. `where {e} > 0`")),
            );
            return None;
        }
        Some(r)
    });
    let filter_ok = c.filter.is_none() || filter.is_some();

    cx.use_ctx = UseCtx::GroupBy;
    let mut group_by = Vec::new();
    let mut group_ok = true;
    for col in c.group_by.unwrap_or(&[]) {
        match cx.resolve_column(col) {
            Some(id) => {
                cx.note_use(&id, col.span);
                if let Some(src) = cx.source.get(id.source)
                    && src.schema.key == id.name
                {
                    cx.diags.push(
                        Diagnostic::warning(
                            Code::GroupByKey,
                            file,
                            col.span,
                            format!(
                                "`group by {}` makes one slice per record: it is the key of `{}`",
                                id.name, src.schema.name
                            ),
                        )
                        .with_label("the component's key")
                        .with_help(format!(
                            "group by a column with a few values (a country, a model version); \
                             a check with more than {DEFAULT_MAX_SERIES} results (`--max-series-per-check`) \
                             is evaluated to one `error` result"
                        )),
                    );
                }
                group_by.push(id);
            }
            None => group_ok = false,
        }
    }

    let each = c
        .each
        .and_then(|(var, list, span)| cx.each_clause(var, list, span));
    let each_ok = c.each.is_none() || each.is_some();

    // Expects, once per column of an `each` list so that every column is type-checked.
    let expects = cx.expects(&c.expects, each.as_ref());

    let labels: Vec<(String, String)> = {
        let mut seen: HashMap<&str, Span> = HashMap::new();
        let mut out = Vec::new();
        for l in c.labels.unwrap_or(&[]) {
            if let Some(&prev) = seen.get(l.key.name.as_str()) {
                cx.diags.push(
                    Diagnostic::error(
                        Code::DuplicateName,
                        file,
                        l.key.span,
                        format!("label `{}` is given twice", l.key.name),
                    )
                    .with_secondary(file, prev, "first given here")
                    .with_help("keep one of the two"),
                );
                continue;
            }
            seen.insert(&l.key.name, l.key.span);
            out.push((l.key.name.clone(), l.value.value.clone()));
        }
        out
    };

    let columns = cx.source_columns(&joins, each.as_ref());
    let baseline_plan = match baseline {
        Some((BaselinePlan::Component { name, .. }, schema, span)) => {
            cx.baseline_columns(&name, schema, span, each.as_ref())
        }
        Some((plan, _, _)) => Some(plan),
        None => None,
    };
    let baseline_ok = c.baseline.is_none() || baseline_plan.is_some();

    let (Some(expects), true, true, true, true) =
        (expects, filter_ok, group_ok, each_ok, baseline_ok)
    else {
        return (None, cx.diags);
    };
    if window_secs.is_none() && c.window.is_some()
        || delay_secs.is_some_and(|d| d.is_none())
        || every_secs.is_some_and(|d| d.is_none())
        || for_secs.is_some_and(|d| d.is_none())
    {
        return (None, cx.diags);
    }
    let source = SourcePlan {
        components: cx
            .source
            .iter()
            .zip(columns)
            .map(|(s, columns)| SourceComponent {
                name: s.schema.name.clone(),
                columns,
            })
            .collect(),
        joins,
    };
    let plan = CheckPlan {
        name: check.name.name.clone(),
        file: g.file_name(file),
        origin: Origin {
            file,
            span: check.name.span,
        },
        source,
        window_secs,
        delay_secs: delay_secs.flatten().unwrap_or(0),
        every_secs: every_secs.flatten().unwrap_or(60),
        baseline: baseline_plan,
        filter,
        group_by,
        each,
        min_rows: c.min_rows.unwrap_or(1),
        aggregates: cx.aggregates,
        expects,
        severity: c.severity.unwrap_or(ast::Severity::Warning),
        for_secs: for_secs.flatten().unwrap_or(0),
        description: c.description.map(|d| d.value.clone()),
        labels,
    };
    (Some(plan), cx.diags)
}

impl<'g> CheckCx<'g> {
    fn unknown_component(&mut self, name: &ast::Ident) {
        let help = suggest::help_for(
            &name.name,
            self.g.component_names(),
            "components",
            "declare it with `component NAME { key K time T fields { ... } }`",
        );
        self.diags.push(
            Diagnostic::error(
                Code::UnknownComponent,
                self.file,
                name.span,
                format!("unknown component `{}`", name.name),
            )
            .with_label("not declared in any loaded file")
            .with_help(help),
        );
    }

    /// Resolves `on A join B using k ...`; returns the joins, or `None` when the source is
    /// unusable (then no expression of the check can be checked).
    fn source_clause(&mut self, on: &ast::Source) -> Option<Vec<JoinPlan>> {
        let g = self.g;
        let mut ok = true;
        let mut comps: Vec<(&'g ComponentSchema, &ast::Ident)> = Vec::new();
        for ident in std::iter::once(&on.first).chain(on.joins.iter().map(|j| &j.component)) {
            match g.component(&ident.name) {
                Some(entry) => {
                    if let Some((_, prev)) = comps.iter().find(|(s, _)| s.name == ident.name) {
                        self.diags.push(
                            Diagnostic::error(Code::DuplicateName, self.file, ident.span, format!("`{}` appears twice in the source", ident.name))
                                .with_secondary(self.file, prev.span, "first here")
                                .with_help("a component can be joined once per check; columns are named `component.column`"),
                        );
                        ok = false;
                    }
                    comps.push((&entry.schema, ident));
                }
                None => {
                    self.unknown_component(ident);
                    ok = false;
                }
            }
        }
        if !ok {
            return None;
        }
        self.source = comps.iter().map(|(s, _)| SrcComp { schema: s }).collect();
        let mut joins = Vec::new();
        for (i, join) in on.joins.iter().enumerate() {
            let right = i + 1;
            let key = &join.using.name;
            let left = (0..right).find(|&l| self.source[l].schema.column_type(key).is_some());
            let right_ty = self.source[right].schema.column_type(key);
            let Some(left) = left else {
                let names: Vec<String> = (0..right)
                    .map(|l| format!("`{}`", self.source[l].schema.name))
                    .collect();
                self.diags.push(
                    Diagnostic::error(
                        Code::JoinKeyMissing,
                        self.file,
                        join.using.span,
                        format!("join key `{key}` is not a column of {}", names.join(" or ")),
                    )
                    .with_label("missing on the left side")
                    .with_help(format!(
                        "join on a column both sides have, e.g. the key of `{}`: `{}`",
                        self.source[0].schema.name, self.source[0].schema.key
                    )),
                );
                ok = false;
                continue;
            };
            let Some(right_ty) = right_ty else {
                let r = self.source[right].schema;
                self.diags.push(
                    Diagnostic::error(
                        Code::JoinKeyMissing,
                        self.file,
                        join.using.span,
                        format!("join key `{key}` is not a column of `{}`", r.name),
                    )
                    .with_label("missing on the right side")
                    .with_secondary(
                        self.file,
                        join.component.span,
                        format!("`{}` has key `{}`", r.name, r.key),
                    )
                    .with_help(format!(
                        "declare `{key}` in `{}`, or join on a column both sides have",
                        r.name
                    )),
                );
                ok = false;
                continue;
            };
            let left_ty = self.source[left]
                .schema
                .column_type(key)
                .unwrap_or(right_ty);
            if left_ty != right_ty {
                self.diags.push(
                    Diagnostic::error(
                        Code::TypeMismatch,
                        self.file,
                        join.using.span,
                        format!(
                            "join key `{key}` is {} in `{}` but {} in `{}`",
                            left_ty.name(),
                            self.source[left].schema.name,
                            right_ty.name(),
                            self.source[right].schema.name
                        ),
                    )
                    .with_help("declare the key with the same type on both sides"),
                );
                ok = false;
                continue;
            }
            let left_key = ColumnId {
                source: left,
                name: key.clone(),
                ty: left_ty,
            };
            self.join_keys.push((key.clone(), left_key.clone()));
            joins.push(JoinPlan {
                left: join.left,
                right,
                left_key,
                right_key: key.clone(),
            });
        }
        ok.then_some(joins)
    }

    /// Returns the plan (component baselines get their columns later), the baseline
    /// component's schema, and the clause span.
    fn baseline_clause(
        &mut self,
        b: &ast::Baseline,
        span: Span,
    ) -> Option<(BaselinePlan, Option<&'g ComponentSchema>, Span)> {
        match b {
            ast::Baseline::Component(name) => match self.g.component(&name.name) {
                Some(entry) => Some((
                    BaselinePlan::Component {
                        name: name.name.clone(),
                        columns: Vec::new(),
                    },
                    Some(&entry.schema),
                    span,
                )),
                None => {
                    self.unknown_component(name);
                    None
                }
            },
            ast::Baseline::Offset(d) => {
                let secs = duration(d, "baseline offset", true, self.file, &mut self.diags)?;
                Some((BaselinePlan::Offset { offset_secs: secs }, None, span))
            }
            ast::Baseline::Range { from, to } => {
                let f = self.time_lit(from);
                let t = self.time_lit(to);
                let (from_us, to_us) = (f?, t?);
                if from_us >= to_us {
                    self.diags.push(
                        Diagnostic::error(
                            Code::EmptyTimeRange,
                            self.file,
                            from.span.to(to.span),
                            format!(
                                "baseline range is empty: {} is not before {}",
                                from.value, to.value
                            ),
                        )
                        .with_label("`from` must be before `to`")
                        .with_help("the range is `[from, to)`: swap the two times, or widen it"),
                    );
                    return None;
                }
                Some((BaselinePlan::Range { from_us, to_us }, None, span))
            }
        }
    }

    pub(crate) fn time_lit(&mut self, s: &ast::StrLit) -> Option<i64> {
        match suggest::parse_time(&s.value) {
            Ok(us) => Some(us),
            Err(msg) => {
                self.diags.push(
                    Diagnostic::error(Code::InvalidTime, self.file, s.span, msg)
                        .with_label("not an RFC 3339 time")
                        .with_help("write it like \"2026-03-01T00:00:00Z\" (date, `T`, time, and `Z` or an offset)"),
                );
                None
            }
        }
    }

    fn each_clause(
        &mut self,
        var: &ast::Ident,
        list: &ast::EachList,
        _span: Span,
    ) -> Option<EachPlan> {
        let hidden: Vec<&str> = self
            .source
            .iter()
            .filter(|s| s.schema.column_type(&var.name).is_some())
            .map(|s| s.schema.name.as_str())
            .collect();
        if let Some(comp) = hidden.first() {
            self.diags.push(
                Diagnostic::error(
                    Code::EachVarHidesColumn,
                    self.file,
                    var.span,
                    format!(
                        "`each` variable `{}` has the name of a column of `{comp}`",
                        var.name
                    ),
                )
                .with_label("hides a column")
                .with_help(
                    "name the variable something that is not a column, e.g. `each col in ...`",
                ),
            );
            return None;
        }
        let columns: Vec<ColumnId> = match list {
            ast::EachList::Columns(cols) => {
                let mut out = Vec::new();
                let mut ok = true;
                for col in cols {
                    match self.resolve_column(col) {
                        Some(id) => out.push(id),
                        None => ok = false,
                    }
                }
                if !ok {
                    return None;
                }
                out
            }
            ast::EachList::Numeric(comp) | ast::EachList::Categorical(comp) => {
                let numeric = matches!(list, ast::EachList::Numeric(_));
                let Some(idx) = self.source.iter().position(|s| s.schema.name == comp.name) else {
                    if self.g.component(&comp.name).is_some() {
                        self.diags.push(
                            Diagnostic::error(Code::ComponentNotInSource, self.file, comp.span, format!("`{}` is not part of this check's source", comp.name))
                                .with_label("not in `on`")
                                .with_help(format!("list the columns of a component the check reads, e.g. `numeric({})`", self.source[0].schema.name)),
                        );
                    } else {
                        self.unknown_component(comp);
                    }
                    return None;
                };
                let schema = self.source[idx].schema;
                let cols: Vec<ColumnId> = schema
                    .fields
                    .iter()
                    .filter(|f| {
                        if numeric {
                            f.ty.is_numeric()
                        } else {
                            f.ty.is_categorical()
                        }
                    })
                    .map(|f| ColumnId {
                        source: idx,
                        name: f.name.clone(),
                        ty: f.ty,
                    })
                    .collect();
                if cols.is_empty() {
                    let kind = if numeric {
                        "numeric (int or float)"
                    } else {
                        "categorical (string or bool)"
                    };
                    self.diags.push(
                        Diagnostic::error(
                            Code::EmptyColumnList,
                            self.file,
                            comp.span,
                            format!("`{}` has no {kind} fields", comp.name),
                        )
                        .with_label("no columns to check")
                        .with_help("list the columns instead, e.g. `each col in [a, b]`"),
                    );
                    return None;
                }
                cols
            }
        };
        self.each_var = Some(var.name.clone());
        Some(EachPlan {
            var: var.name.clone(),
            columns,
        })
    }

    fn expects(
        &mut self,
        exprs: &[&ast::Expr],
        each: Option<&EachPlan>,
    ) -> Option<Vec<ExpectPlan>> {
        let compile_all = |cx: &mut CheckCx<'_>| -> Option<Vec<ExpectPlan>> {
            let mut out = Vec::new();
            let mut ok = true;
            for e in exprs {
                cx.use_ctx = UseCtx::Filter;
                match cx.expect_expr(e) {
                    Some(expr) => out.push(ExpectPlan {
                        text: e.to_string(),
                        expr,
                        origin: Origin {
                            file: cx.file,
                            span: e.span,
                        },
                    }),
                    None => ok = false,
                }
            }
            ok.then_some(out)
        };
        let Some(each) = each else {
            return compile_all(self);
        };
        let before = std::mem::take(&mut self.diags);
        let mut passes: Vec<(String, Vec<Diagnostic>)> = Vec::new();
        let mut first: Option<Option<Vec<ExpectPlan>>> = None;
        let mut all_ok = true;
        for col in &each.columns {
            self.each_col = Some(col.clone());
            let (aggs, index) = (self.aggregates.len(), self.agg_index.clone());
            let uses = self.uses.len();
            let result = compile_all(self);
            all_ok &= result.is_some();
            if first.is_none() {
                first = Some(result);
            } else {
                self.aggregates.truncate(aggs);
                self.agg_index = index;
                self.uses.truncate(uses);
            }
            passes.push((col.name.clone(), std::mem::take(&mut self.diags)));
        }
        self.each_col = each.columns.first().cloned();
        self.diags = before;
        // A problem found for every column is reported once; one found for some columns
        // only says for which.
        let key = |d: &Diagnostic| (d.code, d.primary.span, d.message.clone());
        let mut reported: HashSet<(Code, Span, String)> = HashSet::new();
        for (col, diags) in &passes {
            for d in diags {
                let k = key(d);
                let everywhere = passes.iter().all(|(_, ds)| ds.iter().any(|o| key(o) == k));
                if everywhere {
                    if reported.insert(k) {
                        self.diags.push(d.clone());
                    }
                } else {
                    let mut d = d.clone();
                    d.message = format!("{} (when `{}` is `{col}`)", d.message, each.var);
                    self.diags.push(d);
                }
            }
        }
        if !all_ok {
            return None;
        }
        first.flatten()
    }

    /// Whether a use means the column must be read from the source rows (a component
    /// baseline reads its own rows for baseline-only aggregates).
    fn source_needs(&self, ctx: &UseCtx) -> bool {
        match ctx {
            UseCtx::Agg(_, RowSet::Baseline) => {
                !matches!(self.baseline, Some(BaselinePlan::Component { .. }))
            }
            _ => true,
        }
    }

    fn source_columns(&self, joins: &[JoinPlan], each: Option<&EachPlan>) -> Vec<Vec<String>> {
        let mut wanted: Vec<HashSet<&str>> = self
            .source
            .iter()
            .map(|s| HashSet::from([s.schema.key.as_str(), s.schema.time.as_str()]))
            .collect();
        for j in joins {
            wanted[j.left_key.source].insert(&j.left_key.name);
            wanted[j.right].insert(&j.right_key);
        }
        for u in &self.uses {
            if self.source_needs(&u.ctx) {
                wanted[u.col.source].insert(&u.col.name);
            }
        }
        for col in each.map(|e| e.columns.as_slice()).unwrap_or(&[]) {
            wanted[col.source].insert(&col.name);
        }
        self.source
            .iter()
            .zip(&wanted)
            .map(|(s, w)| {
                s.schema
                    .column_names()
                    .filter(|n| w.contains(n))
                    .map(str::to_string)
                    .collect()
            })
            .collect()
    }

    /// Finds the columns a component baseline must have, and refuses when it lacks one.
    fn baseline_columns(
        &mut self,
        name: &str,
        schema: Option<&ComponentSchema>,
        span: Span,
        each: Option<&EachPlan>,
    ) -> Option<BaselinePlan> {
        let schema = schema?;
        let mut needed: Vec<(ColumnId, Span)> = Vec::new();
        for u in &self.uses {
            let needs = match &u.ctx {
                UseCtx::Filter | UseCtx::GroupBy => true,
                UseCtx::Agg(_, rows) => *rows != RowSet::Current,
            };
            if needs {
                needed.push((u.col.clone(), u.span));
            }
        }
        if self.each_rows.iter().any(|r| *r != RowSet::Current) {
            for col in each.map(|e| e.columns.as_slice()).unwrap_or(&[]) {
                needed.push((col.clone(), span));
            }
        }
        let mut ok = true;
        let mut reported: HashSet<String> = HashSet::new();
        let mut names: HashSet<&str> = HashSet::from([schema.time.as_str()]);
        for (col, use_span) in &needed {
            match schema.column_type(&col.name) {
                Some(t) if t == col.ty || (t.is_numeric() && col.ty.is_numeric()) => {
                    names.insert(
                        schema
                            .column_names()
                            .find(|n| *n == col.name)
                            .unwrap_or(schema.time.as_str()),
                    );
                }
                found => {
                    ok = false;
                    if !reported.insert(col.name.clone()) {
                        continue;
                    }
                    let message = match found {
                        Some(t) => format!(
                            "baseline `{name}` has `{}` as {}, but the check reads it as {}",
                            col.name,
                            t.name(),
                            col.ty.name()
                        ),
                        None => format!("baseline `{name}` has no column `{}`", col.name),
                    };
                    self.diags.push(
                        Diagnostic::error(Code::BaselineMissingColumn, self.file, *use_span, message)
                            .with_label("read from the baseline here")
                            .with_secondary(self.file, span, "the baseline")
                            .with_help(format!("declare `{}: {}` in component `{name}`, or compare with another baseline", col.name, col.ty.name())),
                    );
                }
            }
        }
        if !ok {
            return None;
        }
        let columns = schema
            .column_names()
            .filter(|n| names.contains(n))
            .map(str::to_string)
            .collect();
        Some(BaselinePlan::Component {
            name: name.to_string(),
            columns,
        })
    }
}
