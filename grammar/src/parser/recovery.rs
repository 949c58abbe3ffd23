//! Syntax errors in words: what the grammar wanted where pest stopped, said as a person
//! would ("expected a duration like `7d`"), with a "did you mean" for misspelt keywords and
//! the unclosed bracket named; and where to resume (the next line that starts an item).

use super::Rule;
use crate::ast::Span;
use crate::diagnostic::{Code, Diagnostic, FileId};
use crate::names::{CLAUSE_KEYWORDS, ITEM_KEYWORDS, is_keyword};
use crate::scan::{self, TokKind, Token};

/// The diagnostic for a syntax error at `at` inside the item starting at `item`, where the
/// grammar wanted one of `positives`.
pub(super) fn explain(
    file: FileId,
    text: &str,
    tokens: &[Token],
    item: Token,
    at: usize,
    positives: &[Rule],
) -> Diagnostic {
    ErrorContext {
        file,
        text,
        tokens,
        item,
    }
    .explain(at, positives)
}

pub(super) fn is_item_start(tokens: &[Token], text: &str, t: Token) -> bool {
    t.kind == TokKind::Word
        && ITEM_KEYWORDS.contains(&t.text(text))
        && scan::starts_line(text, t.start)
        // `component: "x"` at the start of a line inside `labels { }` is a key.
        && scan::token_at(tokens, t.end).is_none_or(|n| n.text(text) != ":")
}

/// The start of the first item keyword at the beginning of a line at or after `from`,
/// or the end of the text.
pub(super) fn resync(tokens: &[Token], text: &str, from: usize) -> usize {
    let idx = tokens.partition_point(|t| t.start < from);
    tokens[idx..]
        .iter()
        .find(|t| is_item_start(tokens, text, **t))
        .map_or(text.len(), |t| t.start)
}

pub(super) fn unexpected_top_level(file: FileId, text: &str, tok: Token) -> Diagnostic {
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
