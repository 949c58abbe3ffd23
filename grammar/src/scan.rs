//! A forgiving tokenizer used beside the pest grammar: it collects comments, names the
//! token a syntax error stopped at, finds unclosed brackets and the next item to resume
//! at. It never fails, so it can describe text the grammar rejected.

/// What a [`Token`] is, coarsely: only what error messages and the formatter need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokKind {
    /// A plain word: a name or a keyword.
    Word,
    /// A backticked name; `closed` is false when the line ended first.
    Quoted {
        closed: bool,
    },
    /// Digits, possibly followed by letters (`7d`, `7x`, `64MiB`) or a `%`.
    Number,
    /// A string literal; `closed` is false when the line ended first.
    Str {
        closed: bool,
    },
    Comment,
    /// One punctuation character or a two-character operator (`<=`).
    Punct,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: TokKind,
    pub start: usize,
    pub end: usize,
}

impl Token {
    pub fn text<'a>(&self, src: &'a str) -> &'a str {
        src.get(self.start..self.end).unwrap_or("")
    }
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Splits `src` into tokens, comments included. Whitespace separates tokens.
pub(crate) fn tokenize(src: &str) -> Vec<Token> {
    let bytes = src.as_bytes();
    let mut out = Vec::with_capacity(src.len() / 4);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let start = i;
        // A byte-order mark, which some editors write at the start of a file.
        if i == 0 && src.starts_with('\u{feff}') {
            i = '\u{feff}'.len_utf8();
            continue;
        }
        let kind = match b {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'#' => {
                i = find_line_end(bytes, i);
                // With CRLF line ends the `\r` is not part of the comment.
                let end = if i > start + 1 && bytes[i - 1] == b'\r' {
                    i - 1
                } else {
                    i
                };
                out.push(Token {
                    kind: TokKind::Comment,
                    start,
                    end,
                });
                continue;
            }
            b'"' => {
                i += 1;
                let mut closed = false;
                while i < bytes.len() {
                    match bytes[i] {
                        b'\\' if i + 1 < bytes.len() && bytes[i + 1] != b'\n' => i += 2,
                        b'"' => {
                            i += 1;
                            closed = true;
                            break;
                        }
                        b'\n' => break,
                        _ => i += 1,
                    }
                }
                TokKind::Str { closed }
            }
            b'`' => {
                i += 1;
                let mut closed = false;
                while i < bytes.len() {
                    match bytes[i] {
                        b'`' => {
                            i += 1;
                            closed = true;
                            break;
                        }
                        b'\n' => break,
                        _ => i += 1,
                    }
                }
                TokKind::Quoted { closed }
            }
            b'0'..=b'9' => {
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                if i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit() {
                    i += 1;
                    while i < bytes.len() && bytes[i].is_ascii_digit() {
                        i += 1;
                    }
                }
                if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
                    let mut j = i + 1;
                    if j < bytes.len() && (bytes[j] == b'+' || bytes[j] == b'-') {
                        j += 1;
                    }
                    if j < bytes.len() && bytes[j].is_ascii_digit() {
                        i = j;
                    }
                }
                while i < bytes.len() && is_ident_char(bytes[i] as char) {
                    i += 1;
                }
                if i < bytes.len() && bytes[i] == b'%' {
                    i += 1;
                }
                TokKind::Number
            }
            b if b.is_ascii_alphabetic() || b == b'_' => {
                while i < bytes.len() && is_ident_char(bytes[i] as char) {
                    i += 1;
                }
                TokKind::Word
            }
            _ => {
                let two = src.get(i..i + 2).unwrap_or("");
                if matches!(two, "<=" | ">=" | "==" | "!=") {
                    i += 2;
                } else {
                    // Step over one whole character so spans stay on char boundaries.
                    let len = src
                        .get(i..)
                        .and_then(|s| s.chars().next())
                        .map_or(1, char::len_utf8);
                    i += len;
                }
                TokKind::Punct
            }
        };
        out.push(Token {
            kind,
            start,
            end: i,
        });
    }
    out
}

fn find_line_end(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |p| from + p)
}

/// The first non-comment token starting at or after `pos`.
pub(crate) fn token_at(tokens: &[Token], pos: usize) -> Option<Token> {
    let idx = tokens.partition_point(|t| t.start < pos);
    tokens[idx..]
        .iter()
        .find(|t| t.kind != TokKind::Comment)
        .copied()
}

/// True when nothing but whitespace lies between the previous line break and `pos`.
pub(crate) fn starts_line(src: &str, pos: usize) -> bool {
    let before = src.get(..pos).unwrap_or("");
    before
        .rsplit('\n')
        .next()
        .is_none_or(|l| l.trim().is_empty())
}

/// An opening bracket not closed before some position.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Open {
    pub ch: char,
    pub start: usize,
    /// Index in the token list, to look at what precedes it.
    pub index: usize,
}

/// The brackets opened in `from..to` and not closed before `to`, innermost last.
pub(crate) fn open_brackets(tokens: &[Token], src: &str, from: usize, to: usize) -> Vec<Open> {
    let mut stack: Vec<Open> = Vec::new();
    let first = tokens.partition_point(|t| t.start < from);
    for (index, t) in tokens.iter().enumerate().skip(first) {
        if t.start >= to {
            break;
        }
        if t.kind != TokKind::Punct {
            continue;
        }
        match t.text(src) {
            "{" => stack.push(Open {
                ch: '{',
                start: t.start,
                index,
            }),
            "[" => stack.push(Open {
                ch: '[',
                start: t.start,
                index,
            }),
            "(" => stack.push(Open {
                ch: '(',
                start: t.start,
                index,
            }),
            close @ ("}" | "]" | ")") => {
                let want = match close {
                    "}" => '{',
                    "]" => '[',
                    _ => '(',
                };
                if let Some(pos) = stack.iter().rposition(|o| o.ch == want) {
                    stack.truncate(pos);
                }
            }
            _ => {}
        }
    }
    stack
}

/// Limits that keep the recursive descent of pest and of the Pratt parser far from the
/// stack's end (the depth of the finished tree is capped by the parser itself).
pub(crate) const MAX_NESTING: usize = 64;
pub(crate) const MAX_PREFIX_RUN: usize = 64;

/// Finds the first place in `from..to` that is nested deeper than the limits allow.
pub(crate) fn too_deep(tokens: &[Token], src: &str, from: usize, to: usize) -> Option<Token> {
    let mut depth = 0usize;
    let mut prefix_run = 0usize;
    let first = tokens.partition_point(|t| t.start < from);
    for t in tokens.iter().skip(first) {
        if t.start >= to {
            break;
        }
        let text = t.text(src);
        match (t.kind, text) {
            (TokKind::Comment, _) => continue,
            (TokKind::Punct, "(" | "[" | "{") => depth += 1,
            (TokKind::Punct, ")" | "]" | "}") => depth = depth.saturating_sub(1),
            _ => {}
        }
        let is_prefix = matches!(text, "-" | "not");
        if is_prefix {
            prefix_run += 1;
        } else {
            prefix_run = 0;
        }
        if depth > MAX_NESTING || prefix_run > MAX_PREFIX_RUN {
            return Some(*t);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<(TokKind, &str)> {
        tokenize(src)
            .iter()
            .map(|t| (t.kind, t.text(src)))
            .collect()
    }

    #[test]
    fn splits_the_tricky_tokens() {
        assert_eq!(
            kinds("a>=1.5e-3 \"x # y\" # c\n`t t` 10% 7d"),
            vec![
                (TokKind::Word, "a"),
                (TokKind::Punct, ">="),
                (TokKind::Number, "1.5e-3"),
                (TokKind::Str { closed: true }, "\"x # y\""),
                (TokKind::Comment, "# c"),
                (TokKind::Quoted { closed: true }, "`t t`"),
                (TokKind::Number, "10%"),
                (TokKind::Number, "7d"),
            ]
        );
    }

    #[test]
    fn unclosed_string_stops_at_line_end() {
        assert_eq!(
            kinds("\"abc\nx"),
            vec![
                (TokKind::Str { closed: false }, "\"abc"),
                (TokKind::Word, "x")
            ]
        );
    }

    #[test]
    fn open_brackets_finds_the_unclosed_one() {
        let src = "check a { expect f(x, (y) ";
        let toks = tokenize(src);
        let open = open_brackets(&toks, src, 0, src.len());
        assert_eq!(open.iter().map(|o| o.ch).collect::<String>(), "{(");
    }
}
