//! Expression parsing: precedence and associativity (docs/language.md#expressions) and the canonical
//! text of `Display`, checked as a table of input -> fully parenthesized tree.

// Test helpers outside #[test] functions may unwrap too: a panic is a test failure.
#![allow(clippy::unwrap_used)]

use mlc_grammar::ast::{ClauseKind, Expr, ExprKind, Item, Literal, UnaryOp};
use mlc_grammar::{FileId, parse};

fn expect_expr(src: &str) -> Expr {
    let text = format!("check t {{\n  on x\n  expect {src}\n}}\n");
    let file = parse(FileId(0), &text).unwrap_or_else(|d| panic!("{src}: {d:#?}"));
    let Item::Check(c) = &file.items[0] else {
        panic!("not a check")
    };
    match &c.clauses[1].kind {
        ClauseKind::Expect(e) => e.clone(),
        other => panic!("{other:?}"),
    }
}

/// The tree with every node parenthesized, so the table shows how it grouped.
fn tree(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Literal(l) => format!("{l}"),
        ExprKind::Column(c) => format!("{c}"),
        ExprKind::Call { name, args } => {
            format!(
                "{name}({})",
                args.iter().map(tree).collect::<Vec<_>>().join(", ")
            )
        }
        ExprKind::BaselineCall { name, args } => {
            format!(
                "baseline.{name}({})",
                args.iter().map(tree).collect::<Vec<_>>().join(", ")
            )
        }
        ExprKind::Field { base, field } => format!("{{{}}}.{field}", tree(base)),
        ExprKind::Unary {
            op: UnaryOp::Not,
            operand,
        } => format!("{{not {}}}", tree(operand)),
        ExprKind::Unary {
            op: UnaryOp::Neg,
            operand,
        } => format!("{{-{}}}", tree(operand)),
        ExprKind::Binary { op, lhs, rhs } => {
            format!("{{{} {} {}}}", tree(lhs), op.symbol(), tree(rhs))
        }
        ExprKind::IsNull { operand, negated } => {
            format!(
                "{{{} is {}null}}",
                tree(operand),
                if *negated { "not " } else { "" }
            )
        }
        ExprKind::InList {
            operand,
            list,
            negated,
        } => format!(
            "{{{} {}in [{}]}}",
            tree(operand),
            if *negated { "not " } else { "" },
            list.iter().map(tree).collect::<Vec<_>>().join(", ")
        ),
        ExprKind::Between { operand, low, high } => {
            format!(
                "{{{} between {} and {}}}",
                tree(operand),
                tree(low),
                tree(high)
            )
        }
        ExprKind::Within {
            operand,
            tolerance,
            target,
        } => {
            format!(
                "{{{} within {} of {}}}",
                tree(operand),
                tree(tolerance),
                tree(target)
            )
        }
        ExprKind::Paren(inner) => format!("({})", tree(inner)),
    }
}

#[test]
fn precedence_table() {
    let cases = [
        ("a or b and c", "{a or {b and c}}"),
        ("a and b or c", "{{a and b} or c}"),
        ("a or b or c", "{{a or b} or c}"),
        ("not a > b", "{not {a > b}}"),
        ("not a and b", "{{not a} and b}"),
        ("not not a", "{not {not a}}"),
        ("a and not b or c", "{{a and {not b}} or c}"),
        ("a + b * c", "{a + {b * c}}"),
        ("a - b - c", "{{a - b} - c}"),
        ("a / b * c", "{{a / b} * c}"),
        ("-a * b", "{{-a} * b}"),
        ("- -a", "{-{-a}}"),
        ("a - -b", "{a - {-b}}"),
        ("a + b >= c * d", "{{a + b} >= {c * d}}"),
        ("x between 1 and 2 and y", "{{x between 1 and 2} and y}"),
        (
            "x + 1 between a - 1 and b * 2",
            "{{x + 1} between {a - 1} and {b * 2}}",
        ),
        ("x within 5% of y", "{x within 5% of y}"),
        (
            "mean(x) within 0.1 of baseline.mean(x)",
            "{mean(x) within 0.1 of baseline.mean(x)}",
        ),
        (
            "x is null or y is not null",
            "{{x is null} or {y is not null}}",
        ),
        ("x in [\"a\", \"b\"]", "{x in [\"a\", \"b\"]}"),
        ("x not in [1, 2,]", "{x not in [1, 2]}"),
        ("not x in [1]", "{not {x in [1]}}"),
        ("ks(x).pvalue > 0.05", "{{ks(x)}.pvalue > 0.05}"),
        ("-ks(x).statistic", "{-{ks(x)}.statistic}"),
        ("a.b", "a.b"),
        ("(a or b) and c", "{({a or b}) and c}"),
        ("count() > 0", "{count() > 0}"),
        ("rate(age >= 0) >= 99%", "{rate({age >= 0}) >= 99%}"),
        ("freshness() < 15m", "{freshness() < 15m}"),
        ("x == true or y != null", "{{x == true} or {y != null}}"),
        ("1e-6 < 3.5E+2", "{1e-6 < 3.5E+2}"),
        ("`time` > 0", "{`time` > 0}"),
        ("`my col`.`and` > 0", "{`my col`.`and` > 0}"),
    ];
    let mut failures = Vec::new();
    for (src, want) in cases {
        let got = tree(&expect_expr(src));
        if got != want {
            failures.push(format!("{src}\n  want {want}\n  got  {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn display_is_canonical_text() {
    let cases = [
        (
            "recall(prediction,label)>=0.9",
            "recall(prediction, label) >= 0.9",
        ),
        ("x in [ \"a\" ,\"b\" ]", "x in [\"a\", \"b\"]"),
        ("rate( age>=0 )>=99%", "rate(age >= 0) >= 99%"),
        ("ks( x ).pvalue", "ks(x).pvalue"),
        ("baseline . mean( x )", "baseline.mean(x)"),
        ("( a + b ) * c", "(a + b) * c"),
        ("1.50 + 1e-6", "1.50 + 1e-6"),
        ("`time` is not null", "`time` is not null"),
        ("`plain` > 1", "plain > 1"),
        (
            "lower(\"a\\\"b\\\\c\\n\\t\")",
            "lower(\"a\\\"b\\\\c\\n\\t\")",
        ),
        ("not(a)", "not (a)"),
        ("- -x", "- -x"),
        ("x   not   in [1]", "x not in [1]"),
        ("a between 1 and 2", "a between 1 and 2"),
        ("m within 20 % of n", "m within 20 % of n"),
    ];
    for (src, want) in cases {
        if src.contains(" % ") {
            // A percent sign must touch its number: this is a syntax error.
            let text = format!("check t {{ on x expect {src} }}");
            assert!(parse(FileId(0), &text).is_err(), "{src} should not parse");
            continue;
        }
        assert_eq!(expect_expr(src).to_string(), want, "{src}");
    }
}

#[test]
fn display_adds_parentheses_only_where_a_built_tree_needs_them() {
    use mlc_grammar::ast::{BinaryOp, ColumnRef, Ident, Span};
    let col = |n: &str| Expr {
        kind: ExprKind::Column(ColumnRef {
            qualifier: None,
            name: Ident {
                name: n.into(),
                span: Span::default(),
            },
            span: Span::default(),
        }),
        span: Span::default(),
    };
    let bin = |op, l, r| Expr {
        kind: ExprKind::Binary {
            op,
            lhs: Box::new(l),
            rhs: Box::new(r),
        },
        span: Span::default(),
    };
    let sum = bin(BinaryOp::Add, col("a"), col("b"));
    assert_eq!(
        bin(BinaryOp::Mul, sum.clone(), col("c")).to_string(),
        "(a + b) * c"
    );
    assert_eq!(
        bin(BinaryOp::Sub, col("c"), sum.clone()).to_string(),
        "c - (a + b)"
    );
    assert_eq!(bin(BinaryOp::Add, sum, col("c")).to_string(), "a + b + c");
    let neg_lit = Expr {
        kind: ExprKind::Literal(Literal::Int(-3)),
        span: Span::default(),
    };
    let neg = Expr {
        kind: ExprKind::Unary {
            op: UnaryOp::Neg,
            operand: Box::new(neg_lit),
        },
        span: Span::default(),
    };
    assert_eq!(neg.to_string(), "- -3");
}

#[test]
fn literals_keep_their_values() {
    let e = expect_expr("x > 10%");
    let ExprKind::Binary { rhs, .. } = &e.kind else {
        panic!()
    };
    assert_eq!(
        rhs.kind,
        ExprKind::Literal(Literal::Percent {
            value: 0.1,
            text: "10".into()
        })
    );
    let e = expect_expr("x > 1e-6");
    let ExprKind::Binary { rhs, .. } = &e.kind else {
        panic!()
    };
    assert_eq!(
        rhs.kind,
        ExprKind::Literal(Literal::Float {
            value: 1e-6,
            text: "1e-6".into()
        })
    );
    let e = expect_expr("x == \"a\\\"b\"");
    let ExprKind::Binary { rhs, .. } = &e.kind else {
        panic!()
    };
    assert_eq!(rhs.kind, ExprKind::Literal(Literal::Str("a\"b".into())));
    let e = expect_expr("x < 9223372036854775807");
    let ExprKind::Binary { rhs, .. } = &e.kind else {
        panic!()
    };
    assert_eq!(rhs.kind, ExprKind::Literal(Literal::Int(i64::MAX)));
}

#[test]
fn spans_are_narrow() {
    let text = "check t { on x expect recall(p, l) >= 0.9 }";
    let file = parse(FileId(0), text).unwrap();
    let Item::Check(c) = &file.items[0] else {
        panic!()
    };
    let ClauseKind::Expect(e) = &c.clauses[1].kind else {
        panic!()
    };
    assert_eq!(&text[e.span.range()], "recall(p, l) >= 0.9");
    let ExprKind::Binary { lhs, rhs, .. } = &e.kind else {
        panic!()
    };
    assert_eq!(&text[lhs.span.range()], "recall(p, l)");
    assert_eq!(&text[rhs.span.range()], "0.9");
    assert_eq!(
        &text[c.clauses[1].span.range()],
        "expect recall(p, l) >= 0.9"
    );
    assert_eq!(&text[c.name.span.range()], "t");
}

#[test]
fn very_long_expressions_are_refused_with_a_clear_error() {
    let ok = format!("check c {{ on x expect a{} > 0 }}", " + a".repeat(200));
    assert!(parse(FileId(0), &ok).is_ok());
    let long = format!("check c {{ on x expect a{} > 0 }}", " + a".repeat(300));
    let diags = parse(FileId(0), &long).unwrap_err();
    assert_eq!(diags.len(), 1, "{diags:#?}");
    assert_eq!(diags[0].message, "this expression is too long");
}

#[test]
fn a_byte_order_mark_and_crlf_line_ends_are_accepted() {
    let text = "\u{feff}# c\r\ncheck t {\r\n  on x\r\n  expect a > 1  # why\r\n}\r\n";
    let file = parse(FileId(0), text).unwrap();
    assert_eq!(file.items.len(), 1);
    assert_eq!(file.comments.len(), 2);
    assert_eq!(file.comments[1].text, "# why");
    let out = mlc_grammar::format(&file, text);
    assert_eq!(out, "# c\ncheck t {\n  on x\n  expect a > 1  # why\n}\n");
}
