//! Text to AST: runs the pest grammar item by item, turns pest's pairs into `ast` nodes,
//! and turns pest's errors into diagnostics a person can act on.
//!
//! This module and its two children are the only code that sees `Pair<Rule>`. Items are
//! parsed one at a time so that after a syntax error the parser can resume at the next line
//! that starts an item (`check`, `component`, ...) and report that item's errors too. Here:
//! the loop over items; `build.rs`: pairs to AST nodes (operator precedence included);
//! `recovery.rs`: pest's errors to diagnostics in words, and where to resume.

mod build;
mod recovery;

use pest::Parser as _;
use pest::error::{ErrorVariant, InputLocation};

use crate::ast::*;
use crate::diagnostic::{Code, Diagnostic, FileId};
use crate::names::ITEM_KEYWORDS;
use crate::scan::{self, TokKind};
use recovery::{is_item_start, resync, unexpected_top_level};

#[derive(pest_derive::Parser)]
#[grammar = "mlc.pest"]
struct MlcParser;

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
                let (item, item_diags) = build::item(file, text, &comment_ends, tok.start, pair);
                diags.extend(item_diags);
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
                diags.push(recovery::explain(file, text, &tokens, tok, at, &positives));
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
