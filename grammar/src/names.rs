//! Reserved words and how a name is spelled in canonical text (backticked when needed).

use std::borrow::Cow;

/// The reserved words of the language. A name spelled like one of these must be written
/// in backticks (`` `time` ``). Words that only have a meaning after a given keyword
/// (`int`, `info`, `insufficient`, `numeric`, ...) are not reserved.
///
/// Keep in sync with the `keyword` rule of `mlc.pest` (a unit test in `parser` compares
/// them).
pub const KEYWORDS: &[&str] = &[
    "and",
    "assert",
    "at",
    "baseline",
    "between",
    "by",
    "check",
    "component",
    "delay",
    "description",
    "each",
    "every",
    "expect",
    "fails",
    "false",
    "fields",
    "for",
    "from",
    "group",
    "import",
    "in",
    "is",
    "join",
    "key",
    "labels",
    "left",
    "min_rows",
    "not",
    "null",
    "of",
    "offset",
    "on",
    "or",
    "passes",
    "plugin",
    "rows",
    "severity",
    "test",
    "time",
    "to",
    "true",
    "using",
    "where",
    "window",
    "within",
];

/// The words that start a top-level item.
pub(crate) const ITEM_KEYWORDS: &[&str] = &["import", "component", "plugin", "check", "test"];

/// The words that start a clause of a check, in the order the docs list them.
pub(crate) const CLAUSE_KEYWORDS: &[&str] = &[
    "on",
    "window",
    "delay",
    "every",
    "baseline",
    "where",
    "group by",
    "each",
    "min_rows",
    "expect",
    "severity",
    "for",
    "description",
    "labels",
];

pub fn is_keyword(word: &str) -> bool {
    KEYWORDS.binary_search(&word).is_ok()
}

/// A name that can be written without backticks in a position where keywords are not
/// allowed: an ASCII letter or `_`, then letters, digits and `_`, and not reserved.
pub fn is_plain_name(name: &str) -> bool {
    is_word(name) && !is_keyword(name)
}

/// `letter { letter | digit | "_" }`, reserved or not.
pub(crate) fn is_word(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The name as it must be written where an expression or a name is expected.
pub fn quote_name(name: &str) -> Cow<'_, str> {
    if is_plain_name(name) {
        Cow::Borrowed(name)
    } else {
        Cow::Owned(format!("`{name}`"))
    }
}

/// The name as it must be written before a `:` in labels and records, where reserved
/// words need no backticks.
pub fn quote_key(name: &str) -> Cow<'_, str> {
    if is_word(name) {
        Cow::Borrowed(name)
    } else {
        Cow::Owned(format!("`{name}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_sorted_for_binary_search() {
        let mut sorted = KEYWORDS.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, KEYWORDS);
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_name("age"), "age");
        assert_eq!(quote_name("time"), "`time`");
        assert_eq!(quote_name("my col"), "`my col`");
        assert_eq!(quote_key("component"), "component");
        assert_eq!(quote_key("a-b"), "`a-b`");
    }
}
