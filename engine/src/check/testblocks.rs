//! Checking `test` blocks: the time, the fixtures against their component, and the asserted
//! checks and slices.

use std::collections::HashMap;
use std::path::Path;

use mlc_grammar::ast::{self, Literal, RowsSource};
use mlc_grammar::{Code, Diagnostic};

use super::Globals;
use super::suggest;
use crate::load::{LoadedFile, normalize};
use crate::plan::{Origin, TestAssert, TestCase, TestRows, TestRowsSource};
use crate::schema::DataType;
use crate::value::Value;

fn literal_to_value(lit: &Literal) -> Value {
    match lit {
        Literal::Int(i) => Value::Int(*i),
        Literal::Float { value, .. } | Literal::Percent { value, .. } => Value::Float(*value),
        Literal::Duration(d) => Value::Duration(d.seconds() as f64),
        Literal::Str(s) => Value::Str(s.clone()),
        Literal::Bool(b) => Value::Bool(*b),
        Literal::Null => Value::Null,
    }
}

/// Whether a literal can be stored in a column of type `ty` (as ingest would read it).
fn literal_fits(lit: &Literal, ty: DataType) -> bool {
    match (lit, ty) {
        (Literal::Null, _) => true,
        (Literal::Int(_), DataType::Int | DataType::Float | DataType::Timestamp) => true,
        (Literal::Float { .. }, DataType::Float | DataType::Timestamp) => true,
        (Literal::Str(_), DataType::String) => true,
        (Literal::Str(s), DataType::Timestamp) => suggest::parse_time(s).is_ok(),
        (Literal::Bool(_), DataType::Bool) => true,
        _ => false,
    }
}

fn literal_kind(lit: &Literal) -> &'static str {
    match lit {
        Literal::Int(_) => "an integer",
        Literal::Float { .. } => "a float",
        Literal::Percent { .. } => "a percentage",
        Literal::Duration(_) => "a duration",
        Literal::Str(s) if suggest::parse_time(s).is_err() && s.contains('T') => {
            "a string that is not an RFC 3339 time"
        }
        Literal::Str(_) => "a string",
        Literal::Bool(_) => "a boolean",
        Literal::Null => "null",
    }
}

fn expected_for(ty: DataType) -> &'static str {
    match ty {
        DataType::Int => "an integer",
        DataType::Float => "a number",
        DataType::Bool => "`true` or `false`",
        DataType::String => "a string",
        DataType::Timestamp => "an RFC 3339 time string or epoch seconds",
    }
}

pub(crate) fn compile_test(
    g: &mut Globals,
    file: &LoadedFile,
    test: &ast::Test,
    check_slices: &HashMap<String, Option<Vec<(String, DataType)>>>,
) -> Option<TestCase> {
    let id = file.id;
    let mut ok = true;
    let at_us = match suggest::parse_time(&test.at.value) {
        Ok(us) => Some(us),
        Err(msg) => {
            g.diags.push(
                Diagnostic::error(Code::InvalidTime, id, test.at.span, msg)
                    .with_label("not an RFC 3339 time")
                    .with_help("write it like \"2026-03-01T00:00:00Z\""),
            );
            None
        }
    };
    let dir = file
        .path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut rows = Vec::new();
    for r in &test.rows {
        let Some(schema) = g.component(&r.component.name).map(|c| c.schema.clone()) else {
            let help = suggest::help_for(
                &r.component.name,
                g.component_names(),
                "components",
                "declare the component first",
            );
            g.diags.push(
                Diagnostic::error(
                    Code::UnknownComponent,
                    id,
                    r.component.span,
                    format!("unknown component `{}`", r.component.name),
                )
                .with_label("not declared in any loaded file")
                .with_help(help),
            );
            ok = false;
            continue;
        };
        let source = match &r.source {
            RowsSource::File(path) => TestRowsSource::File(normalize(&dir.join(&path.value))),
            RowsSource::Inline(records) => {
                let mut out = Vec::new();
                for rec in records {
                    let mut fields = Vec::new();
                    for f in &rec.fields {
                        let Some(ty) = schema.column_type(&f.name.name) else {
                            let help = suggest::help_for(
                                &f.name.name,
                                schema.column_names(),
                                &format!("columns of `{}`", schema.name),
                                "",
                            );
                            g.diags.push(
                                Diagnostic::error(
                                    Code::UnknownRecordField,
                                    id,
                                    f.name.span,
                                    format!(
                                        "component `{}` has no column `{}`",
                                        schema.name, f.name.name
                                    ),
                                )
                                .with_label("not declared")
                                .with_help(help),
                            );
                            ok = false;
                            continue;
                        };
                        if !literal_fits(&f.value, ty) {
                            g.diags.push(
                                Diagnostic::error(
                                    Code::RecordFieldType,
                                    id,
                                    f.value_span,
                                    format!(
                                        "`{}` is a {} column, so its value must be {}",
                                        f.name.name,
                                        ty.name(),
                                        expected_for(ty)
                                    ),
                                )
                                .with_label(format!("{} here", literal_kind(&f.value)))
                                .with_help(format!(
                                    "`{}` is declared as `{}` in component `{}`",
                                    f.name.name,
                                    ty.name(),
                                    schema.name
                                )),
                            );
                            ok = false;
                            continue;
                        }
                        fields.push((f.name.name.clone(), literal_to_value(&f.value)));
                    }
                    out.push(fields);
                }
                TestRowsSource::Inline(out)
            }
        };
        rows.push(TestRows {
            component: schema.name.clone(),
            source,
        });
    }
    let mut asserts = Vec::new();
    for a in &test.asserts {
        let Some(slices) = check_slices.get(&a.check.name) else {
            let help = suggest::help_for(
                &a.check.name,
                check_slices.keys().map(String::as_str),
                "checks",
                "no check is loaded",
            );
            g.diags.push(
                Diagnostic::error(
                    Code::UnknownCheck,
                    id,
                    a.check.span,
                    format!("unknown check `{}`", a.check.name),
                )
                .with_label("no check has this name")
                .with_help(help),
            );
            ok = false;
            continue;
        };
        let slice = match (&a.slice, slices) {
            (None, _) => None,
            (Some(rec), group_by) => {
                let mut fields = Vec::new();
                for f in &rec.fields {
                    // A check that did not compile has no known slices: its errors are
                    // already reported, so the slice is taken as written.
                    if let Some(group_by) = group_by {
                        let Some((_, ty)) = group_by.iter().find(|(n, _)| *n == f.name.name) else {
                            let cols: Vec<String> =
                                group_by.iter().map(|(n, _)| format!("`{n}`")).collect();
                            let help = if cols.is_empty() {
                                format!(
                                    "check `{}` has no `group by`: drop `for {{ ... }}` to assert on its one result",
                                    a.check.name
                                )
                            } else {
                                format!(
                                    "the slices of `{}` are keyed by {}",
                                    a.check.name,
                                    cols.join(", ")
                                )
                            };
                            g.diags.push(
                                Diagnostic::error(
                                    Code::SliceKeyNotGrouped,
                                    id,
                                    f.name.span,
                                    format!(
                                        "`{}` is not a `group by` column of check `{}`",
                                        f.name.name, a.check.name
                                    ),
                                )
                                .with_label("not a slice key")
                                .with_help(help),
                            );
                            ok = false;
                            continue;
                        };
                        if !literal_fits(&f.value, *ty) {
                            g.diags.push(
                                Diagnostic::error(
                                    Code::RecordFieldType,
                                    id,
                                    f.value_span,
                                    format!(
                                        "slice key `{}` is a {} column, so its value must be {}",
                                        f.name.name,
                                        ty.name(),
                                        expected_for(*ty)
                                    ),
                                )
                                .with_label(format!("{} here", literal_kind(&f.value))),
                            );
                            ok = false;
                            continue;
                        }
                    }
                    fields.push((f.name.name.clone(), literal_to_value(&f.value)));
                }
                Some(fields)
            }
        };
        asserts.push(TestAssert {
            check: a.check.name.clone(),
            expected: a.expected,
            slice,
            origin: Origin {
                file: id,
                span: a.span,
            },
        });
    }
    let at_us = at_us?;
    ok.then(|| TestCase {
        name: test.name.name.clone(),
        file: g.file_name(id),
        origin: Origin {
            file: id,
            span: test.name.span,
        },
        at_us,
        rows,
        asserts,
    })
}
