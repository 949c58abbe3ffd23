//! Partial states give what the whole rows give: for every builtin's examples (and `each`,
//! `group by`, `where`, a joined source with coverage, a baseline), random rows are cut into
//! random batches, fed to one `CheckState` batch by batch, given all at once
//! (`evaluate_batches`, column by column), and fed into one state per batch merged in a random
//! order, and a concluded state slid by batches leaving and joining it (`CheckState::slide`,
//! `mlc serve`'s window); all conclude to the outcomes of `evaluate_check` over all rows at
//! once. Counts, statuses and every integer, boolean and string value are identical; a
//! float value may differ only in its last bits where the summation order changed
//! (docs/evaluation.md#partial-states).

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray, UInt32Array,
};
use arrow_schema::{DataType as ArrowType, Field, Schema};
use mlc_engine::eval::check::{DEFAULT_MAX_SERIES, builtin_accumulator};
use mlc_engine::eval::{
    CheckInput, CheckState, Conclusion, Frame, Outcome, SourceRows, Status, evaluate_check,
};
use mlc_engine::functions::{self, Side};
use mlc_engine::plan::{CheckPlan, ColumnId};
use mlc_engine::schema::DataType;
use mlc_engine::value::Value;

/// The components the builtins' examples are written against (docs/functions.md).
const COMPONENTS: &str = mlc_engine::functions::docs::EXAMPLE_COMPONENTS;

/// xorshift64*: a small deterministic generator, so a failure names its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn null(&mut self) -> bool {
        self.below(10) == 0
    }
}

/// The checks: one per builtin example, over a joined source with a baseline, in three
/// shapes (plain, `group by country`, `where` plus `group by`), and a few with `each`.
fn program() -> Vec<CheckPlan> {
    let mut text = String::from(COMPONENTS);
    let shapes = [
        "",
        "  group by country\n",
        "  where age >= 20\n  group by status\n",
    ];
    let mut n = 0;
    for f in functions::all() {
        for e in f.examples() {
            for shape in shapes {
                n += 1;
                text.push_str(&format!(
                    "check c{n}_{} {{\n  on inference join feedback using request_id\n  \
                     baseline offset 7d\n{shape}  {}\n}}\n",
                    f.name(),
                    e.source
                ));
            }
        }
    }
    text.push_str(
        "check each_plain {\n  on inference\n  baseline offset 7d\n  \
         each c in [income, score, latency_ms]\n  \
         expect mean(c) > 0 and quantile(c, 0.5) > 0 and ks(c).pvalue > 0.01 and psi(c) < 0.2\n}\n\
         check each_sliced {\n  on inference join feedback using request_id\n  \
         group by country\n  each c in [age, failed_jobs]\n  \
         expect sum(c) > 10 and distinct(c) > 2 and coverage() > 0.5 and recall(prediction, label) > 0.5\n}\n",
    );
    mlc_engine::check::compile_text(&text)
        .unwrap_or_else(|e| panic!("{e}"))
        .checks
}

fn column(rng: &mut Rng, ty: ArrowType, name: &str, rows: usize) -> ArrayRef {
    match ty {
        ArrowType::Int64 if name == "prediction" || name == "label" => Arc::new(
            (0..rows)
                .map(|_| (!rng.null()).then(|| rng.below(2) as i64))
                .collect::<Int64Array>(),
        ),
        ArrowType::Int64 => Arc::new(
            (0..rows)
                .map(|_| (!rng.null()).then(|| rng.below(90) as i64 - 5))
                .collect::<Int64Array>(),
        ),
        ArrowType::Float64 if name == "score" => Arc::new(
            (0..rows)
                .map(|_| (!rng.null()).then(|| rng.unit()))
                .collect::<Float64Array>(),
        ),
        ArrowType::Float64 => Arc::new(
            (0..rows)
                .map(|_| (!rng.null()).then(|| rng.unit() * 1000.0 - 100.0))
                .collect::<Float64Array>(),
        ),
        _ => {
            let values = ["DE", "US", "BR", "IN", "ok", "failed"];
            Arc::new(
                (0..rows)
                    .map(|_| (!rng.null()).then(|| values[rng.below(values.len() as u64) as usize]))
                    .collect::<StringArray>(),
            )
        }
    }
}

/// Random rows of a joined source: the inference columns, the feedback columns (label null
/// where unmatched) and which rows matched; event times increasing.
fn rows(rng: &mut Rng, n: usize, t0: i64) -> SourceRows {
    let inference: Vec<(&str, ArrowType)> = vec![
        ("age", ArrowType::Int64),
        ("income", ArrowType::Float64),
        ("country", ArrowType::Utf8),
        ("score", ArrowType::Float64),
        ("prediction", ArrowType::Int64),
        ("model_version", ArrowType::Utf8),
        ("latency_ms", ArrowType::Float64),
        ("logit", ArrowType::Float64),
        ("status", ArrowType::Utf8),
        ("failed_jobs", ArrowType::Int64),
        ("predicted_eta", ArrowType::Float64),
        ("actual_eta", ArrowType::Float64),
        ("predicted_price", ArrowType::Float64),
        ("price", ArrowType::Float64),
        ("forecast", ArrowType::Float64),
        ("demand", ArrowType::Float64),
    ];
    let mut fields = vec![
        Field::new("request_id", ArrowType::Utf8, true),
        Field::new("ts", ArrowType::Int64, true),
    ];
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            (0..n).map(|i| format!("r{t0}-{i}")),
        )),
        Arc::new(Int64Array::from_iter_values(
            (0..n as i64).map(|i| t0 + i * 1_000_000),
        )),
    ];
    for (name, ty) in inference {
        fields.push(Field::new(name, ty.clone(), true));
        cols.push(column(rng, ty, name, n));
    }
    let first = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap();
    let matched: BooleanArray = (0..n).map(|_| Some(rng.below(4) != 0)).collect();
    let labels: Int64Array = (0..n)
        .map(|i| (matched.value(i) && !rng.null()).then(|| rng.below(2) as i64))
        .collect();
    let feedback = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            "label",
            ArrowType::Int64,
            true,
        )])),
        vec![Arc::new(labels)],
    )
    .unwrap();
    SourceRows {
        frame: Frame::new(vec![first, feedback]).unwrap(),
        kept: None,
        matched: Some(matched),
    }
}

/// Rows `from..to` of `rows`.
fn part(rows: &SourceRows, from: usize, to: usize) -> SourceRows {
    pick(rows, &(from as u32..to as u32).collect::<Vec<_>>())
}

/// The rows at `indices` of `rows`.
fn pick(rows: &SourceRows, indices: &[u32]) -> SourceRows {
    let idx = UInt32Array::from(indices.to_vec());
    let pick = |a: &BooleanArray| {
        arrow_select::take::take(a, &idx, None)
            .unwrap()
            .as_any()
            .downcast_ref::<BooleanArray>()
            .unwrap()
            .clone()
    };
    SourceRows {
        frame: rows.frame.take(&idx).unwrap(),
        kept: rows.kept.as_ref().map(pick),
        matched: rows.matched.as_ref().map(pick),
    }
}

/// Random cut points of `n` rows into batches (empty batches included).
fn cuts(rng: &mut Rng, n: usize) -> Vec<(usize, usize)> {
    let k = 1 + rng.below(6) as usize;
    let mut points: Vec<usize> = (0..k - 1)
        .map(|_| rng.below(n as u64 + 1) as usize)
        .collect();
    points.push(0);
    points.push(n);
    points.sort_unstable();
    points.windows(2).map(|w| (w[0], w[1])).collect()
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => close(*x, *y),
        (Value::Struct(x), Value::Struct(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((n, v), (m, w))| n == m && same_value(v, w))
        }
        _ => a == b,
    }
}

fn assert_same(check: &str, seed: u64, how: &str, want: &[Outcome], got: &[Outcome]) {
    assert_eq!(
        want.len(),
        got.len(),
        "{check} (seed {seed}, {how}): result count"
    );
    for (w, g) in want.iter().zip(got) {
        let at = format!(
            "{check} (seed {seed}, {how}) slice {:?} column {:?}",
            w.slice, w.column
        );
        assert_eq!(w.slice, g.slice, "{at}");
        assert_eq!(w.column, g.column, "{at}");
        assert_eq!(w.rows, g.rows, "{at}: rows");
        assert_eq!(w.baseline_rows, g.baseline_rows, "{at}: baseline rows");
        assert_eq!(w.coverage, g.coverage, "{at}: coverage");
        assert_eq!(w.status, g.status, "{at}: status ({w:?} vs {g:?})");
        for (we, ge) in w.expects.iter().zip(&g.expects) {
            assert_eq!(we.status, ge.status, "{at}: {}", we.text);
            assert_eq!(we.values.len(), ge.values.len(), "{at}: {}", we.text);
            let mut exact = true;
            for ((wn, wv), (gn, gv)) in we.values.iter().zip(&ge.values) {
                assert_eq!(wn, gn, "{at}");
                assert!(same_value(wv, gv), "{at}: {wn} = {wv:?} vs {gv:?}");
                exact &= wv == gv;
            }
            if exact {
                assert_eq!(we.explanation, ge.explanation, "{at}");
            }
        }
    }
}

#[test]
fn states_fed_in_batches_or_merged_equal_the_whole_rows() {
    let checks = program();
    let make = |c: &mlc_engine::plan::AggregateCall| builtin_accumulator(c);
    let time = ColumnId {
        source: 0,
        name: "ts".into(),
        ty: DataType::Timestamp,
    };
    // How many of the whole rows' results were judged pass or fail: the comparison must be of
    // real verdicts, not of a sea of `insufficient`.
    let (mut judged, mut total) = (0usize, 0usize);
    // How many kept states could slide (the others have an aggregate that failed).
    let (mut slid, mut tried) = (0usize, 0usize);
    for seed in 1..=12u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let n = rng.below(400) as usize;
        let current = rows(&mut rng, n, 1_000_000_000);
        let m = rng.below(300) as usize;
        let baseline = rows(&mut rng, m, 0);
        let input = CheckInput {
            current: &current,
            baseline: Some(&baseline),
            time: time.clone(),
            baseline_time: Some(time.clone()),
            event_age_secs: Some(3600.0),
            max_series: DEFAULT_MAX_SERIES,
        };
        let cur_cuts = cuts(&mut rng, n);
        let base_cuts = cuts(&mut rng, m);
        for plan in &checks {
            let plan_input = CheckInput {
                baseline: plan.baseline.as_ref().map(|_| &baseline),
                ..input.clone()
            };
            let want = evaluate_check(plan, &plan_input, &make).unwrap();
            total += want.len();
            judged += want
                .iter()
                .filter(|o| matches!(o.status, Status::Pass | Status::Fail))
                .count();
            let conclusion = Conclusion::of(&plan_input);

            // One state, fed batch by batch, baseline batches between current ones.
            let mut one = CheckState::new(plan, &make, DEFAULT_MAX_SERIES);
            let mut pending: Vec<(Side, usize, usize)> = cur_cuts
                .iter()
                .map(|&(a, b)| (Side::Current, a, b))
                .chain(base_cuts.iter().map(|&(a, b)| (Side::Baseline, a, b)))
                .collect();
            if plan_input.baseline.is_none() {
                pending.retain(|p| p.0 == Side::Current);
            }
            let order: Vec<usize> = {
                let mut o: Vec<usize> = (0..pending.len()).collect();
                for i in (1..o.len()).rev() {
                    o.swap(i, rng.below(i as u64 + 1) as usize);
                }
                o
            };
            for &i in &order {
                let (side, a, b) = pending[i];
                let src = if side == Side::Current {
                    &current
                } else {
                    &baseline
                };
                one.add(plan, side, &part(src, a, b), &time, &make).unwrap();
            }
            let got = one.conclude(plan, &conclusion, &make);
            assert_same(&plan.name, seed, "one state in batches", &want, &got);

            // All batches at once, column by column.
            let cur_parts: Vec<SourceRows> = cur_cuts
                .iter()
                .map(|&(a, b)| part(&current, a, b))
                .collect();
            let base_parts: Vec<SourceRows> = base_cuts
                .iter()
                .map(|&(a, b)| part(&baseline, a, b))
                .collect();
            let got = CheckState::new(plan, &make, DEFAULT_MAX_SERIES)
                .evaluate_batches(
                    plan,
                    (&cur_parts, &time),
                    plan_input.baseline.map(|_| (base_parts.as_slice(), &time)),
                    &conclusion,
                    &make,
                )
                .unwrap();
            assert_same(&plan.name, seed, "all batches at once", &want, &got);

            // A kept state slid (`mlc serve`'s window): the first half of the batches and
            // an extra batch, concluded (its values left sorted); then the extra batch leaves
            // and the second half joins. Accumulators that cannot take rows out are rebuilt
            // from the batches.
            // One state per batch (its side, its rows).
            let fed = |&(side, a, b): &(Side, usize, usize)| {
                let src = if side == Side::Current {
                    &current
                } else {
                    &baseline
                };
                let mut s = CheckState::new(plan, &make, DEFAULT_MAX_SERIES);
                s.add(plan, side, &part(src, a, b), &time, &make).unwrap();
                s
            };
            let parts: Vec<CheckState> = pending.iter().map(fed).collect();
            let half = parts.len() / 2;
            let mut extra = CheckState::new(plan, &make, DEFAULT_MAX_SERIES);
            let e = rng.below(n as u64 + 1) as usize;
            extra
                .add(
                    plan,
                    Side::Current,
                    &part(&current, e, n.min(e + 30)),
                    &time,
                    &make,
                )
                .unwrap();
            let mut window = CheckState::new(plan, &make, DEFAULT_MAX_SERIES);
            for s in &parts[..half] {
                window.merge_from(plan, s, &make).unwrap();
            }
            window.merge_from(plan, &extra, &make).unwrap();
            let _ = window.conclude_kept(plan, &conclusion, &make);
            window.drop_unretractable(plan, &make);
            let all: Vec<&CheckState> = parts.iter().collect();
            let join: Vec<&CheckState> = parts[half..].iter().collect();
            tried += 1;
            if window.slide(plan, &[&extra], &join, &all, &make).unwrap() {
                slid += 1;
                let got = window.conclude_kept(plan, &conclusion, &make);
                assert_same(&plan.name, seed, "a kept state slid", &want, &got);
            }

            // One state per batch, merged in a random order.
            let mut states: Vec<CheckState> = pending.iter().map(fed).collect();
            let mut merged = CheckState::new(plan, &make, DEFAULT_MAX_SERIES);
            while !states.is_empty() {
                let s = states.swap_remove(rng.below(states.len() as u64) as usize);
                merged.merge(plan, s).unwrap();
            }
            let got = merged.conclude(plan, &conclusion, &make);
            assert_same(&plan.name, seed, "merged states", &want, &got);
        }
    }
    assert!(
        judged * 3 > total * 2,
        "only {judged} of {total} results were judged"
    );
    assert!(slid * 10 > tried * 9, "only {slid} of {tried} states slid");
}

/// The slice limit holds over the union of batches: two batches of two countries each, four
/// in all, past a limit of three, fail as the whole rows do, though each batch alone passes.
#[test]
fn the_slice_limit_counts_the_keys_of_all_batches() {
    let checks = program();
    let plan = checks
        .iter()
        .find(|c| c.group_by.iter().any(|g| g.name == "country") && c.filter.is_none())
        .unwrap();
    let make = |c: &mlc_engine::plan::AggregateCall| builtin_accumulator(c);
    let time = ColumnId {
        source: 0,
        name: "ts".into(),
        ty: DataType::Timestamp,
    };
    let mut rng = Rng(7);
    let all = rows(&mut rng, 400, 0);
    let country = all.frame.sources[0]
        .column_by_name("country")
        .unwrap()
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap()
        .clone();
    let of = |set: &[&str]| -> Vec<u32> {
        (0..country.len() as u32)
            .filter(|&i| !country.is_null(i as usize) && set.contains(&country.value(i as usize)))
            .collect()
    };
    let (a, b) = (of(&["DE", "US"]), of(&["BR", "IN"]));
    let whole_rows = pick(&all, &[a.clone(), b.clone()].concat());
    let input = CheckInput {
        current: &whole_rows,
        baseline: None,
        time: time.clone(),
        baseline_time: None,
        event_age_secs: None,
        max_series: 3,
    };
    let whole = evaluate_check(plan, &input, &make).unwrap_err();
    let mut state = CheckState::new(plan, &make, 3);
    state
        .add(plan, Side::Current, &pick(&all, &a), &time, &make)
        .unwrap();
    let second = state.add(plan, Side::Current, &pick(&all, &b), &time, &make);
    assert_eq!(Err(whole.clone()), second);
    // And merged from states of each batch alone, each within the limit.
    let mut first = CheckState::new(plan, &make, 3);
    first
        .add(plan, Side::Current, &pick(&all, &a), &time, &make)
        .unwrap();
    let mut other = CheckState::new(plan, &make, 3);
    other
        .add(plan, Side::Current, &pick(&all, &b), &time, &make)
        .unwrap();
    assert_eq!(Err(whole), first.merge(plan, other));
}
