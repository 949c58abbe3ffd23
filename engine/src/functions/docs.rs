//! The function reference (`docs/functions.md`), generated from the registry so that it
//! cannot drift from what the checker and the executor use.

use std::fmt::Write;

use super::{ArgType, Function, FunctionKind, ReturnType, Signature, all};

fn arg_type(t: ArgType) -> &'static str {
    match t {
        ArgType::Numeric => "numeric",
        ArgType::Predicate => "predicate",
        ArgType::Label => "label",
        ArgType::Categorical => "categorical",
        ArgType::Probability => "probability",
        ArgType::Any => "any",
    }
}

fn return_type(sig: &Signature) -> String {
    match sig.returns {
        ReturnType::Number => "number".into(),
        ReturnType::Duration => "duration".into(),
        ReturnType::Bool => "bool".into(),
        ReturnType::SameAsArg(i) => match sig.params.get(i) {
            Some(p) => format!("type of {}", p.name),
            None => "value".into(),
        },
        ReturnType::Struct(fields) => format!("{{{}}}", fields.join(", ")),
    }
}

/// `name(a: numeric, [b: predicate], c: any...) -> number`
pub fn signature_line(f: &dyn Function) -> String {
    let sig = f.signature();
    let mut params = Vec::new();
    for (i, p) in sig.params.iter().enumerate() {
        let mut s = format!("{}: {}", p.name, arg_type(p.ty));
        if sig.variadic && i + 1 == sig.params.len() {
            s.push_str(", ...");
        }
        if i >= sig.required {
            s = format!("[{s}]");
        }
        params.push(s);
    }
    format!(
        "{}({}) -> {}",
        f.name(),
        params.join(", "),
        return_type(&sig)
    )
}

fn section(kind: FunctionKind) -> &'static str {
    match kind {
        FunctionKind::Scalar => "Scalar functions",
        FunctionKind::Aggregate => "Aggregates",
        FunctionKind::TwoSample => "Against the baseline",
        FunctionKind::Special => "Pipeline functions",
    }
}

/// The whole reference, in Markdown.
pub fn markdown() -> String {
    let mut out = String::new();
    out.push_str(
        "# Builtin functions\n\n\
         <!-- Generated from the registry (engine/src/functions) by engine/tests/functions_docs.rs;\n\
         do not edit: run `MLC_UPDATE_DOCS=1 cargo test -p mlc-engine --test functions_docs`. -->\n\n\
         Argument types: `numeric` is an int or float column or expression; `predicate` a row-level\n\
         condition (null counts as false); `label` an int or bool column whose positive class is\n\
         `1` / `true`; `categorical` a string, bool or int column; `probability` a literal between 0\n\
         and 1; `any` a column of any type. Aggregates skip null inputs (and NaN, as pandas does);\n\
         a metric that is undefined on the rows (no values, a single class, ...) makes its `expect`\n\
         `insufficient` with the reason. Every aggregate can also run over the baseline rows as\n\
         `baseline.f(...)`.\n",
    );
    for kind in [
        FunctionKind::Scalar,
        FunctionKind::Aggregate,
        FunctionKind::TwoSample,
        FunctionKind::Special,
    ] {
        let _ = write!(out, "\n## {}\n", section(kind));
        for f in all().iter().filter(|f| f.signature().kind == kind) {
            let _ = write!(out, "\n### `{}`\n\n", f.name());
            let _ = writeln!(out, "`{}`\n", signature_line(*f));
            let _ = writeln!(out, "{}", f.summary());
            if f.signature().wants_time {
                out.push_str("\nReads the event time of each row as well.\n");
            }
            for e in f.examples() {
                let _ = write!(out, "\n```mlc\n{}\n```\n{}\n", e.source, e.description);
            }
        }
    }
    out
}
