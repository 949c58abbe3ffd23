//! Text to AST: runs the pest grammar item by item, turns pest's pairs into `ast` nodes,
//! and turns pest's errors into diagnostics a person can act on.
//!
//! This is the only module that sees `Pair<Rule>`. Items are parsed one at a time so
//! that after a syntax error the parser can resume at the next line that starts an item
//! (`check`, `component`, ...) and report that item's errors too.

use std::cell::{Cell, RefCell};
use std::sync::LazyLock;

use pest::Parser as _;
use pest::error::{ErrorVariant, InputLocation};
use pest::iterators::Pair;
use pest::pratt_parser::{Assoc, Op, PrattParser};

use crate::ast::*;
use crate::diagnostic::{Code, Diagnostic, FileId};
use crate::names::{CLAUSE_KEYWORDS, ITEM_KEYWORDS, is_keyword};
use crate::scan::{self, TokKind, Token};

#[derive(pest_derive::Parser)]
#[grammar = "mlc.pest"]
struct MlcParser;

/// Operator precedence, loosest first (SPEC section 5). Comparisons are non-associative:
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

/// Parses a whole file, reporting the syntax errors of every item.
pub(crate) fn parse_file(file: FileId, text: &str) -> Result<File, Vec<Diagnostic>> {
    if u32::try_from(text.len()).is_err() {
        return Err(vec![
            Diagnostic::error(
                Code::Syntax,
                file,
                Span::default(),
                "file is larger than 4 GiB",
            )
            .with_help("split the checks into several files and `import` them"),
        ]);
    }
    let tokens = scan::tokenize(text);
    let comment_ends: Vec<(usize, usize)> = tokens
        .iter()
        .filter(|t| t.kind == TokKind::Comment)
        .map(|t| (t.end, t.start))
        .collect();
    let mut out = File::default();
    let mut diags = Vec::new();
    let mut pos = 0;
    while let Some(tok) = scan::token_at(&tokens, pos) {
        let word = tok.text(text);
        if tok.kind != TokKind::Word || !ITEM_KEYWORDS.contains(&word) {
            diags.push(unexpected_top_level(file, text, tok));
            pos = resync(&tokens, text, tok.end);
            continue;
        }
        let next_item = resync(&tokens, text, tok.end);
        if let Some(deep) = scan::too_deep(&tokens, text, tok.start, next_item) {
            diags.push(
                Diagnostic::error(
                    Code::Syntax,
                    file,
                    Span::new(deep.start, deep.end),
                    "this expression is nested too deeply",
                )
                .with_label("too deep")
                .with_help(format!(
                    "mlc accepts up to {} levels of brackets and {} operators in a row; \
                     split the expression",
                    scan::MAX_NESTING,
                    scan::MAX_PREFIX_RUN
                )),
            );
            pos = next_item;
            continue;
        }
        let rest = text.get(tok.start..).unwrap_or("");
        match MlcParser::parse(Rule::item, rest) {
            Ok(mut pairs) => {
                let Some(pair) = pairs.next() else { break };
                let end = tok.start + pair.as_span().end();
                let builder = Builder {
                    file,
                    text,
                    comment_ends: &comment_ends,
                    base: tok.start,
                    diags: RefCell::new(Vec::new()),
                    too_deep: Cell::new(false),
                };
                let item = builder.item(pair);
                diags.extend(builder.diags.into_inner());
                if let Some(item) = item {
                    out.items.push(item);
                }
                pos = end;
            }
            Err(err) => {
                let at = tok.start
                    + match err.location {
                        InputLocation::Pos(p) => p,
                        InputLocation::Span((s, _)) => s,
                    };
                let positives = match &err.variant {
                    ErrorVariant::ParsingError { positives, .. } => positives.clone(),
                    ErrorVariant::CustomError { .. } => Vec::new(),
                };
                let ctx = ErrorContext {
                    file,
                    text,
                    tokens: &tokens,
                    item: tok,
                };
                diags.push(ctx.explain(at, &positives));
                // Resume at the next item; when the error is at an item keyword (a
                // missing `}`), that item is parsed rather than skipped.
                pos = resync(&tokens, text, at.max(tok.end));
                if let Some(t) = scan::token_at(&tokens, at)
                    && t.start == at
                    && t.start > tok.start
                    && is_item_start(&tokens, text, t)
                {
                    pos = at;
                }
            }
        }
    }
    out.comments = tokens
        .iter()
        .filter(|t| t.kind == TokKind::Comment)
        .map(|t| Comment {
            text: t.text(text).trim_end().to_string(),
            span: Span::new(t.start, t.end),
        })
        .collect();
    if diags.is_empty() {
        Ok(out)
    } else {
        Err(diags)
    }
}

fn is_item_start(tokens: &[Token], text: &str, t: Token) -> bool {
    t.kind == TokKind::Word
        && ITEM_KEYWORDS.contains(&t.text(text))
        && scan::starts_line(text, t.start)
        // `component: "x"` at the start of a line inside `labels { }` is a key.
        && scan::token_at(tokens, t.end).is_none_or(|n| n.text(text) != ":")
}

/// The start of the first item keyword at the beginning of a line at or after `from`,
/// or the end of the text.
fn resync(tokens: &[Token], text: &str, from: usize) -> usize {
    let idx = tokens.partition_point(|t| t.start < from);
    tokens[idx..]
        .iter()
        .find(|t| is_item_start(tokens, text, **t))
        .map_or(text.len(), |t| t.start)
}

fn unexpected_top_level(file: FileId, text: &str, tok: Token) -> Diagnostic {
    let found = describe_token(text, Some(tok));
    let mut d = Diagnostic::error(
        Code::Syntax,
        file,
        Span::new(tok.start, tok.end),
        format!("expected `component`, `check`, `plugin`, `test` or `import`, found {found}"),
    )
    .with_label("not the start of an item");
    let word = tok.text(text);
    if tok.kind == TokKind::Word
        && let Some(best) = did_you_mean(word, ITEM_KEYWORDS)
    {
        d = d.with_help(format!("did you mean `{best}`?"));
    } else {
        d = d.with_help("a file holds `component`, `check`, `plugin`, `test` and `import` items");
    }
    d
}

fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), *c))
        .filter(|(d, c)| *d <= 2 && *d < c.len().max(word.len()) / 2 + 1)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn describe_token(text: &str, tok: Option<Token>) -> String {
    let Some(tok) = tok else {
        return "the end of the file".to_string();
    };
    match tok.kind {
        TokKind::Str { .. } => "a string".to_string(),
        _ => {
            let t = tok.text(text);
            if t.chars().count() > 30 {
                let short: String = t.chars().take(30).collect();
                format!("`{short}...`")
            } else {
                format!("`{t}`")
            }
        }
    }
}

/// What the grammar wanted at the place it stopped, in words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Want {
    Keyword(&'static str),
    Name,
    Str,
    Duration,
    Integer,
    Type,
    Severity,
    OptionValue,
    BaselineSpec,
    EachList,
    RowsSource,
    Outcome,
    Value,
    Expr,
    Clause,
    Open(char),
    Colon,
    Operator,
    Comma,
    Close(char),
    Item,
}

impl Want {
    fn describe(self) -> String {
        match self {
            Want::Keyword(k) => format!("`{k}`"),
            Want::Name => "a name".into(),
            Want::Str => "a string in double quotes".into(),
            Want::Duration => "a duration like `7d`".into(),
            Want::Integer => "a whole number like `200`".into(),
            Want::Type => "a type (`int`, `float`, `bool`, `string` or `timestamp`)".into(),
            Want::Severity => "a severity (`info`, `warning` or `critical`)".into(),
            Want::OptionValue => {
                "a value (a duration like `2s`, a size like `64MiB`, a number or a string)".into()
            }
            Want::BaselineSpec => {
                "a baseline (a component, `offset 7d` or `from \"...\" to \"...\"`)".into()
            }
            Want::EachList => {
                "a list of columns (`[a, b]`, `numeric(component)` or `categorical(component)`)"
                    .into()
            }
            Want::RowsSource => "`from \"file.csv\"` or a list of records `[ {...} ]`".into(),
            Want::Outcome => "`passes`, `fails`, `is insufficient` or `is error`".into(),
            Want::Value => "a value (a number, a string, `true`, `false` or `null`)".into(),
            Want::Expr => "an expression".into(),
            Want::Clause => "a clause".into(),
            Want::Open(c) => format!("`{c}`"),
            Want::Colon => "`:`".into(),
            Want::Operator => "an operator".into(),
            Want::Comma => "`,`".into(),
            Want::Close(c) => format!("`{c}`"),
            Want::Item => "`component`, `check`, `plugin`, `test` or `import`".into(),
        }
    }
}

fn want_of(rule: Rule) -> Option<Want> {
    use Rule as R;
    Some(match rule {
        R::ident
        | R::key_name
        | R::source
        | R::column
        | R::field
        | R::label
        | R::plugin_option
        | R::record_field => Want::Name,
        R::string | R::str_inner | R::import => Want::Str,
        R::duration => Want::Duration,
        R::integer => Want::Integer,
        R::field_type => Want::Type,
        R::severity_level => Want::Severity,
        R::option_value | R::size => Want::OptionValue,
        R::baseline_spec | R::baseline_offset | R::baseline_range => Want::BaselineSpec,
        R::each_list | R::column_list | R::each_numeric | R::each_categorical => Want::EachList,
        R::rows_file | R::rows_inline => Want::RowsSource,
        R::outcome => Want::Outcome,
        R::record_value
        | R::negative
        | R::percent
        | R::float
        | R::k_true
        | R::k_false
        | R::k_null => Want::Value,
        R::expr
        | R::arith
        | R::primary
        | R::op_neg
        | R::op_not
        | R::paren
        | R::name_ref
        | R::baseline_call => Want::Expr,
        R::clause => Want::Clause,
        R::op_or
        | R::op_and
        | R::op_cmp
        | R::op_sum
        | R::op_product
        | R::is_null
        | R::in_list
        | R::between
        | R::within
        | R::field_access
        | R::dot => Want::Operator,
        R::lbrace | R::plugin_options | R::record | R::fields => {
            if rule == R::fields {
                Want::Keyword("fields")
            } else {
                Want::Open('{')
            }
        }
        R::lbracket => Want::Open('['),
        R::lparen | R::call_args => Want::Open('('),
        R::rbrace => Want::Close('}'),
        R::rbracket => Want::Close(']'),
        R::rparen => Want::Close(')'),
        R::comma => Want::Comma,
        R::colon => Want::Colon,
        R::item => Want::Item,
        R::join => Want::Keyword("join"),
        R::at_clause => Want::Keyword("at"),
        R::rows => Want::Keyword("rows"),
        R::assert => Want::Keyword("assert"),
        R::k_import => Want::Keyword("import"),
        R::k_component => Want::Keyword("component"),
        R::k_key => Want::Keyword("key"),
        R::k_time => Want::Keyword("time"),
        R::k_fields => Want::Keyword("fields"),
        R::k_plugin => Want::Keyword("plugin"),
        R::k_from => Want::Keyword("from"),
        R::k_check => Want::Keyword("check"),
        R::k_on => Want::Keyword("on"),
        R::k_left => Want::Keyword("left"),
        R::k_join => Want::Keyword("join"),
        R::k_using => Want::Keyword("using"),
        R::k_window => Want::Keyword("window"),
        R::k_delay => Want::Keyword("delay"),
        R::k_every => Want::Keyword("every"),
        R::k_baseline => Want::Keyword("baseline"),
        R::k_offset => Want::Keyword("offset"),
        R::k_to => Want::Keyword("to"),
        R::k_where => Want::Keyword("where"),
        R::k_group => Want::Keyword("group"),
        R::k_by => Want::Keyword("by"),
        R::k_each => Want::Keyword("each"),
        R::k_in => Want::Keyword("in"),
        R::k_numeric => Want::Keyword("numeric"),
        R::k_categorical => Want::Keyword("categorical"),
        R::k_min_rows => Want::Keyword("min_rows"),
        R::k_expect => Want::Keyword("expect"),
        R::k_severity => Want::Keyword("severity"),
        R::k_for => Want::Keyword("for"),
        R::k_description => Want::Keyword("description"),
        R::k_labels => Want::Keyword("labels"),
        R::k_test => Want::Keyword("test"),
        R::k_at => Want::Keyword("at"),
        R::k_rows => Want::Keyword("rows"),
        R::k_assert => Want::Keyword("assert"),
        R::k_passes => Want::Keyword("passes"),
        R::k_fails => Want::Keyword("fails"),
        R::k_is => Want::Keyword("is"),
        R::k_insufficient => Want::Keyword("insufficient"),
        R::k_error => Want::Keyword("error"),
        R::k_not => Want::Keyword("not"),
        R::k_between => Want::Keyword("between"),
        R::k_and => Want::Keyword("and"),
        R::k_within => Want::Keyword("within"),
        R::k_of => Want::Keyword("of"),
        _ => return None,
    })
}

fn join_alternatives(items: &[String]) -> String {
    match items {
        [] => "something else".to_string(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// Everything needed to explain a syntax error in words.
struct ErrorContext<'a> {
    file: FileId,
    text: &'a str,
    tokens: &'a [Token],
    /// The keyword token of the item being parsed.
    item: Token,
}

impl ErrorContext<'_> {
    fn explain(&self, at: usize, positives: &[Rule]) -> Diagnostic {
        let mut wants: Vec<Want> = positives.iter().filter_map(|r| want_of(*r)).collect();
        wants.sort();
        wants.dedup();
        // After a name, `(` would make it a call; listing it beside the operators only
        // adds noise.
        if wants.contains(&Want::Operator) {
            wants.retain(|w| *w != Want::Open('('));
        }
        let found_tok = scan::token_at(self.tokens, at).filter(|t| t.start <= at.max(t.start));
        let found = describe_token(self.text, found_tok);
        let span = match found_tok {
            Some(t) => Span::new(t.start, t.end),
            None => Span::new(self.text.len(), self.text.len()),
        };
        let word = found_tok
            .filter(|t| t.kind == TokKind::Word)
            .map(|t| t.text(self.text));
        let err = |msg: String| Diagnostic::error(Code::Syntax, self.file, span, msg);

        if let Some(t) = found_tok {
            match t.kind {
                TokKind::Str { closed: false } => {
                    return err("this string is never closed".into())
                        .with_label("unterminated string")
                        .with_help("close it with `\"` before the end of the line");
                }
                TokKind::Quoted { closed: false } => {
                    return err("this backticked name is never closed".into())
                        .with_label("unterminated name")
                        .with_help("close it with a backtick before the end of the line");
                }
                _ => {}
            }
        }

        let wants_name = wants.iter().any(|w| matches!(w, Want::Name | Want::Expr));
        if let Some(w) = word
            && wants_name
            && is_keyword(w)
            && found_tok.is_some_and(|t| self.used_as_name(t))
        {
            if w == "not" && wants.contains(&Want::Expr) {
                return err("expected an expression, found `not`".into())
                    .with_label("`not` cannot follow an operator")
                    .with_help("put the negated part in parentheses: `(not ...)`");
            }
            return err(format!(
                "`{w}` is a reserved word and cannot be used as a name"
            ))
            .with_label("reserved word")
            .with_help(format!("to use it as a name, write it in backticks: `{w}`"));
        }

        // A clause starts a line; a stray word in the middle of one is more likely a
        // misspelling of what may follow there (`on a lft join b`).
        if let Some(w) = word
            && wants.contains(&Want::Clause)
            && !self.at_item_start(found_tok)
            && found_tok.is_some_and(|t| scan::starts_line(self.text, t.start))
        {
            let mut help = String::new();
            let first = w.split_whitespace().next().unwrap_or(w);
            if let Some(best) = did_you_mean(first, CLAUSE_KEYWORDS) {
                help.push_str(&format!("did you mean `{best}`? "));
            }
            let list: Vec<String> = CLAUSE_KEYWORDS.iter().map(|c| format!("`{c}`")).collect();
            help.push_str(&format!(
                "the clauses of a check are {}",
                join_alternatives(&list)
            ));
            return err(format!("unknown clause `{w}`"))
                .with_label("unknown clause")
                .with_help(help);
        }

        let close = wants.iter().find_map(|w| match w {
            Want::Close(c) => Some(*c),
            _ => None,
        });
        if let Some(c) = close {
            let stop = found_tok.is_none()
                || self.at_item_start(found_tok)
                || found_tok.is_some_and(|t| {
                    t.kind == TokKind::Punct && matches!(t.text(self.text), "}" | "]" | ")")
                });
            if stop && let Some(diag) = self.unclosed(c, at, span, &found) {
                return diag;
            }
        }

        if let Some(t) = found_tok
            && t.kind == TokKind::Punct
            && matches!(t.text(self.text), "<" | "<=" | ">" | ">=" | "==" | "!=")
            && wants.contains(&Want::Operator)
        {
            return err("comparison operators cannot be chained".into())
                .with_label("a second comparison")
                .with_help(
                    "join the comparisons with `and` (`a < b and b < c`), or use \
                     `x between low and high`",
                );
        }

        let described: Vec<String> = wants.iter().map(|w| w.describe()).collect();
        let expected = join_alternatives(&described);
        let mut d = err(format!("expected {expected}, found {found}"));
        d = d.with_label(match wants.as_slice() {
            [one] => format!("expected {}", one.describe()),
            _ => format!("unexpected {found}"),
        });
        let mut keywords: Vec<&str> = wants
            .iter()
            .filter_map(|w| match w {
                Want::Keyword(k) => Some(*k),
                _ => None,
            })
            .collect();
        if keywords.contains(&"join") {
            keywords.push("left");
        }
        if wants.contains(&Want::Clause) {
            keywords.extend(CLAUSE_KEYWORDS);
        }
        if let Some(w) = word
            && let Some(best) = did_you_mean(w, &keywords)
        {
            d = d.with_help(format!("did you mean `{best}`?"));
        }
        if let Some(t) = found_tok
            && t.text(self.text) == "%"
        {
            d = d.with_help("write the percent sign right after its number: `5%`");
        }
        if wants.contains(&Want::Duration)
            && let Some(t) = found_tok
            && t.kind == TokKind::Number
        {
            d = d.with_help("a duration is a whole number and a unit: `s`, `m`, `h`, `d` or `w`");
        }
        d
    }

    /// Whether a reserved word looks meant as a name rather than as the keyword it is:
    /// it is not the first word of its line (where clauses start), or what follows it
    /// only makes sense after a name (`time: timestamp`, `from)`).
    fn used_as_name(&self, t: Token) -> bool {
        if !scan::starts_line(self.text, t.start) {
            return true;
        }
        let next = scan::token_at(self.tokens, t.end).map(|n| n.text(self.text));
        matches!(
            next,
            Some(":" | "(" | "." | "," | ")" | "]" | "}" | "<" | ">" | "<=" | ">=" | "==" | "!=")
                | Some("+" | "-" | "*" | "/")
        )
    }

    fn at_item_start(&self, tok: Option<Token>) -> bool {
        tok.is_some_and(|t| t.start > self.item.start && is_item_start(self.tokens, self.text, t))
    }

    /// "expected `}` to close `check recall_slo`", pointing at the opening bracket too.
    fn unclosed(&self, close: char, at: usize, span: Span, found: &str) -> Option<Diagnostic> {
        let open_ch = match close {
            '}' => '{',
            ']' => '[',
            _ => '(',
        };
        let opens = scan::open_brackets(self.tokens, self.text, self.item.start, at);
        let open = opens.iter().rev().find(|o| o.ch == open_ch)?;
        let before = open.index.checked_sub(1).and_then(|i| self.tokens.get(i));
        let what = if opens.first().is_some_and(|o| o.start == open.start) {
            // The item's own brace: name the item.
            let name = self
                .tokens
                .iter()
                .find(|t| t.start > self.item.start && t.kind != TokKind::Comment)
                .map(|t| t.text(self.text))
                .unwrap_or("");
            format!("`{} {}`", self.item.text(self.text), name)
        } else {
            match (open_ch, before) {
                ('(', Some(t)) if matches!(t.kind, TokKind::Word | TokKind::Quoted { .. }) => {
                    format!("the call to `{}`", t.text(self.text))
                }
                ('(', _) => "the parenthesis".to_string(),
                ('[', _) => "the list".to_string(),
                (_, Some(t)) if t.kind == TokKind::Word && !is_keyword(t.text(self.text)) => {
                    format!("`{}`", t.text(self.text))
                }
                (_, Some(t)) if matches!(t.text(self.text), "fields" | "labels") => {
                    format!("`{}`", t.text(self.text))
                }
                _ => "the record".to_string(),
            }
        };
        Some(
            Diagnostic::error(
                Code::Syntax,
                self.file,
                span,
                format!("expected `{close}` to close {what}"),
            )
            .with_label(format!("expected `{close}`, found {found}"))
            .with_secondary(
                self.file,
                Span::new(open.start, open.start + 1),
                "opened here",
            ),
        )
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::KEYWORDS;

    fn is_grammar_keyword(word: &str) -> bool {
        MlcParser::parse(Rule::keyword, word).is_ok_and(|p| p.as_str() == word)
    }

    #[test]
    fn the_grammar_reserves_exactly_the_keywords() {
        for k in KEYWORDS {
            assert!(
                is_grammar_keyword(k),
                "`{k}` is in KEYWORDS but not reserved by the grammar"
            );
            let longer = format!("{k}x");
            assert!(
                !is_grammar_keyword(&longer),
                "`{longer}` is reserved by the grammar"
            );
        }
        // Every word the grammar uses as a keyword token, reserved or contextual.
        let grammar = include_str!("mlc.pest");
        for line in grammar.lines().filter(|l| l.starts_with("k_")) {
            let word = line.split('"').nth(1).unwrap_or_default();
            assert_eq!(
                is_grammar_keyword(word),
                KEYWORDS.contains(&word),
                "`{word}`: grammar and KEYWORDS disagree"
            );
        }
        for word in [
            "o", "offsets", "ofx", "int", "info", "error", "numeric", "x", "_a",
        ] {
            assert!(!is_grammar_keyword(word), "`{word}` must not be reserved");
        }
    }
}
