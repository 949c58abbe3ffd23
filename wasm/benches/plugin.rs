//! Plugin host benchmark: a plugin mean against a native mean over 1M rows with the sandbox
//! limits on, module load from the disk cache, and per-evaluation instantiation overhead.
//! Run: `cargo bench -p mlc-wasm --bench plugin`. Prints figures; asserts nothing.
#![allow(clippy::unwrap_used)] // tests and benches fail loudly on purpose

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{Array, ArrayRef, Float64Array, Int64Array};
use mlc_engine::functions::{Outcome, Side};
use mlc_wasm::{Limits, LoadedPlugin, ModuleCache, PluginHost};

const ROWS: usize = 1_000_000;

fn example(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/plugins")
        .join(path)
}

/// Median of `runs` timings of `f`.
fn time<R>(runs: usize, mut f: impl FnMut() -> R) -> (Duration, R) {
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let started = Instant::now();
        let r = f();
        times.push(started.elapsed());
        last = Some(r);
    }
    times.sort();
    (times[runs / 2], last.expect("runs > 0"))
}

/// The native mean the executor would run: the registered builtin when there is one,
/// otherwise the same loop over the Arrow array (nulls skipped).
fn native_mean(array: &ArrayRef) -> f64 {
    if let Some(mean) = mlc_engine::functions::lookup("mean")
        && let Some(mut acc) = mean.accumulator()
    {
        acc.update(Side::Current, std::slice::from_ref(array))
            .expect("builtin mean");
        if let Ok(Outcome::Value(v)) = acc.finalize() {
            return v.as_f64().unwrap_or(f64::NAN);
        }
    }
    let a = array.as_any().downcast_ref::<Float64Array>().expect("f64");
    let (mut sum, mut n) = (0.0, 0usize);
    match a.nulls() {
        None => {
            sum = a.values().iter().sum();
            n = a.len();
        }
        Some(nulls) => {
            for (i, v) in a.values().iter().enumerate() {
                if nulls.is_valid(i) {
                    sum += v;
                    n += 1;
                }
            }
        }
    }
    sum / n as f64
}

fn plugin_eval(plugin: &LoadedPlugin, args: &[ArrayRef]) -> f64 {
    let mut acc = plugin.accumulator().expect("accumulator");
    acc.update(Side::Current, args).expect("update");
    match acc.finalize().expect("finalize") {
        Outcome::Value(v) => v.as_f64().unwrap_or(f64::NAN),
        other => panic!("{other:?}"),
    }
}

fn main() {
    let builtin = if mlc_engine::functions::lookup("mean").is_some() {
        "builtin `mean`"
    } else {
        "native loop (no builtin `mean` registered yet)"
    };
    let values: Vec<Option<f64>> = (0..ROWS)
        .map(|i| {
            if i % 97 == 0 {
                None
            } else {
                Some((i % 1000) as f64 * 0.5)
            }
        })
        .collect();
    let with_nulls: ArrayRef = Arc::new(Float64Array::from(values));
    let dense: ArrayRef = Arc::new(Float64Array::from_iter_values((0..ROWS).map(|i| i as f64)));

    let cache_dir = tempfile::tempdir().expect("tempdir");
    let host = PluginHost::new(Some(cache_dir.path().to_path_buf()));
    let limits = Limits::default();
    let mean = host
        .load_path("wat_mean", &example("mean_wat/mean.wasm"), limits)
        .expect("load");
    let fueled = host
        .load_path(
            "wat_mean",
            &example("mean_wat/mean.wasm"),
            Limits {
                fuel: Some(u64::MAX / 2),
                ..limits
            },
        )
        .expect("load");
    let ece = host
        .load_path("ece", &example("ece_rust/ece.wasm"), limits)
        .expect("load");

    println!(
        "plugin host benchmark, {ROWS} rows, limits: memory 64 MiB, timeout 5s (median of runs)"
    );
    for (label, array) in [("dense", &dense), ("1% nulls", &with_nulls)] {
        let (native, nv) = time(21, || native_mean(array));
        let (plugin, pv) = time(21, || plugin_eval(&mean, std::slice::from_ref(array)));
        let (metered, mv) = time(11, || plugin_eval(&fueled, std::slice::from_ref(array)));
        assert!(
            (nv - pv).abs() <= 1e-9 * nv.abs().max(1.0)
                && (pv - mv).abs() < 1e-9 * pv.abs().max(1.0)
        );
        println!(
            "mean, {label:9}: native {builtin} {:>8.3} ms | plugin (wat) {:>8.3} ms = {:.2}x | with fuel metering {:>8.3} ms = {:.2}x",
            ms(native),
            ms(plugin),
            ratio(plugin, native),
            ms(metered),
            ratio(metered, native)
        );
    }

    let scores: ArrayRef = Arc::new(Float64Array::from_iter_values(
        (0..ROWS).map(|i| (i % 1000) as f64 / 1000.0),
    ));
    let labels: ArrayRef = Arc::new(Int64Array::from_iter_values(
        (0..ROWS).map(|i| (i % 3 == 0) as i64),
    ));
    let (t, _) = time(11, || plugin_eval(&ece, &[scores.clone(), labels.clone()]));
    println!("ece (rust sdk), 2 columns: {:>8.3} ms", ms(t));

    // Module load from the disk cache: a fresh in-memory cache each time, as in a new process.
    let bytes = std::fs::read(example("ece_rust/ece.wasm")).expect("read");
    let engine = mean.module().engine().clone();
    let disk = ModuleCache::new(Some(cache_dir.path().to_path_buf()));
    let _ = disk.module(&engine, &bytes).expect("warm");
    let (t_module, hit) = time(101, || {
        disk.clear_memory();
        disk.module(&engine, &bytes).expect("load").1
    });
    println!(
        "module load from disk cache (ece.wasm, {} KiB): {:.3} ms ({hit:?})",
        bytes.len() / 1024,
        ms(t_module)
    );
    let (t_compile, _) = time(5, || {
        let nocache = ModuleCache::new(None);
        nocache.module(&engine, &bytes).expect("compile").1
    });
    println!(
        "module compile without cache (ece.wasm): {:.3} ms",
        ms(t_compile)
    );
    let (t_load, _) = time(101, || {
        host.cache().clear_memory();
        host.load_path("ece", &example("ece_rust/ece.wasm"), limits)
            .expect("load")
    });
    println!(
        "full plugin load from disk cache (read, hash, deserialize, validate, read metadata): {:.3} ms",
        ms(t_load)
    );

    let (t_inst, _) = time(1001, || {
        let acc = mean.accumulator().expect("accumulator");
        drop(acc);
    });
    println!(
        "per-evaluation instantiation (new Store + instance + init + free), wat mean: {:.1} us",
        t_inst.as_secs_f64() * 1e6
    );
    let (t_inst, _) = time(1001, || {
        let acc = ece.accumulator().expect("accumulator");
        drop(acc);
    });
    println!(
        "per-evaluation instantiation, ece (rust sdk): {:.1} us",
        t_inst.as_secs_f64() * 1e6
    );
    let small: ArrayRef = Arc::new(Float64Array::from_iter_values((0..100).map(f64::from)));
    let (t_small, _) = time(1001, || plugin_eval(&mean, std::slice::from_ref(&small)));
    println!(
        "whole evaluation over 100 rows (instantiate, update, finalize): {:.1} us",
        t_small.as_secs_f64() * 1e6
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-12)
}
