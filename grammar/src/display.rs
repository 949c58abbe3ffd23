//! Canonical text of expressions: the `expr` and `values` keys of results and what
//! `mlc fmt` prints. Parentheses are printed where written (`ExprKind::Paren`) and added
//! only where a tree built by hand would otherwise read back differently.

use std::fmt::{self, Display, Formatter, Write as _};

use crate::ast::{ColumnRef, Expr, ExprKind, Ident, Literal, UnaryOp};
use crate::names::quote_name;

impl Display for Ident {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(&quote_name(&self.name))
    }
}

impl Display for ColumnRef {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if let Some(q) = &self.qualifier {
            write!(f, "{q}.")?;
        }
        write!(f, "{}", self.name)
    }
}

/// Writes `s` as a string literal, escaping what the grammar requires.
pub(crate) fn write_str_lit(f: &mut impl fmt::Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

impl Display for Literal {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Int(v) => write!(f, "{v}"),
            Literal::Float { text, .. } => f.write_str(text),
            Literal::Percent { text, .. } => write!(f, "{text}%"),
            Literal::Duration(d) => write!(f, "{d}"),
            Literal::Str(s) => write_str_lit(f, s),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Null => f.write_str("null"),
        }
    }
}

/// Binding strength, loosest first, as in docs/language.md#expressions.
const OR: u8 = 1;
const AND: u8 = 2;
const NOT: u8 = 3;
const CMP: u8 = 4;
const SUM: u8 = 5;
const PRODUCT: u8 = 6;
const NEG: u8 = 7;
const POSTFIX: u8 = 8;
const ATOM: u8 = 9;

fn precedence(e: &Expr) -> u8 {
    use crate::ast::BinaryOp as B;
    match &e.kind {
        ExprKind::Binary { op, .. } => match op {
            B::Or => OR,
            B::And => AND,
            B::Add | B::Sub => SUM,
            B::Mul | B::Div => PRODUCT,
            _ => CMP,
        },
        ExprKind::Unary {
            op: UnaryOp::Not, ..
        } => NOT,
        ExprKind::Unary {
            op: UnaryOp::Neg, ..
        } => NEG,
        ExprKind::IsNull { .. }
        | ExprKind::InList { .. }
        | ExprKind::Between { .. }
        | ExprKind::Within { .. } => CMP,
        ExprKind::Field { .. } => POSTFIX,
        // A negative number prints with its sign, so it binds like a negation.
        ExprKind::Literal(Literal::Int(v)) if *v < 0 => NEG,
        ExprKind::Literal(Literal::Float { value, .. } | Literal::Percent { value, .. })
            if value.is_sign_negative() =>
        {
            NEG
        }
        _ => ATOM,
    }
}

/// Writes `e`, in parentheses when it binds looser than `min`.
fn operand(f: &mut Formatter<'_>, e: &Expr, min: u8) -> fmt::Result {
    if precedence(e) < min {
        write!(f, "({e})")
    } else {
        write!(f, "{e}")
    }
}

fn args(f: &mut Formatter<'_>, args: &[Expr]) -> fmt::Result {
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{a}")?;
    }
    Ok(())
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ExprKind::Literal(l) => write!(f, "{l}"),
            ExprKind::Column(c) => write!(f, "{c}"),
            ExprKind::Call { name, args: a } => {
                write!(f, "{name}(")?;
                args(f, a)?;
                f.write_char(')')
            }
            ExprKind::BaselineCall { name, args: a } => {
                write!(f, "baseline.{name}(")?;
                args(f, a)?;
                f.write_char(')')
            }
            ExprKind::Field { base, field } => {
                operand(f, base, POSTFIX)?;
                write!(f, ".{field}")
            }
            ExprKind::Unary {
                op: UnaryOp::Not,
                operand: e,
            } => {
                f.write_str("not ")?;
                operand(f, e, NOT)
            }
            ExprKind::Unary {
                op: UnaryOp::Neg,
                operand: e,
            } => {
                f.write_char('-')?;
                // `- -x` keeps its space: `--x` would read as one token elsewhere.
                if precedence(e) == NEG {
                    f.write_char(' ')?;
                }
                operand(f, e, NEG)
            }
            ExprKind::Binary { op, lhs, rhs } => {
                let p = precedence(self);
                // Left-associative, except comparisons, which do not chain.
                let left_min = if p == CMP { p + 1 } else { p };
                operand(f, lhs, left_min)?;
                write!(f, " {} ", op.symbol())?;
                operand(f, rhs, p + 1)
            }
            ExprKind::IsNull {
                operand: e,
                negated,
            } => {
                operand(f, e, SUM)?;
                f.write_str(if *negated { " is not null" } else { " is null" })
            }
            ExprKind::InList {
                operand: e,
                list,
                negated,
            } => {
                operand(f, e, SUM)?;
                f.write_str(if *negated { " not in [" } else { " in [" })?;
                args(f, list)?;
                f.write_char(']')
            }
            ExprKind::Between {
                operand: e,
                low,
                high,
            } => {
                operand(f, e, SUM)?;
                f.write_str(" between ")?;
                operand(f, low, SUM)?;
                f.write_str(" and ")?;
                operand(f, high, SUM)
            }
            ExprKind::Within {
                operand: e,
                tolerance,
                target,
            } => {
                operand(f, e, SUM)?;
                f.write_str(" within ")?;
                operand(f, tolerance, SUM)?;
                f.write_str(" of ")?;
                operand(f, target, SUM)
            }
            ExprKind::Paren(e) => write!(f, "({e})"),
        }
    }
}
