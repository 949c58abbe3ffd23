//! The compiled-module cache and loading through a `PluginDecl`: a second process (a new
//! host) loads from disk, a damaged cache file is recompiled, and a declaration's limits and
//! checked signature are honoured.

// Tests may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;

use mlc_engine::functions::Side;
use mlc_engine::plan::{Origin, PluginDecl, PluginSignature};
use mlc_engine::schema::DataType;
use mlc_wasm::{CacheHit, Limits, PluginHost};

fn mean_wasm() -> PathBuf {
    common::repo_root().join("examples/plugins/mean_wat/mean.wasm")
}

fn decl(path: PathBuf) -> PluginDecl {
    PluginDecl {
        name: "avg".into(),
        path,
        memory_bytes: Some(2 * 1024 * 1024),
        timeout_secs: Some(1),
        fuel: None,
        signature: None,
        origin: Origin::default(),
    }
}

fn cached_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("wasm"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn a_new_host_loads_the_compiled_module_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let first = PluginHost::new(Some(dir.path().to_path_buf()));
    let a = first
        .load_path("m", &mean_wasm(), Limits::default())
        .unwrap();
    assert_eq!(a.cache_hit, CacheHit::Compiled);
    let b = first
        .load_path("m", &mean_wasm(), Limits::default())
        .unwrap();
    assert_eq!(b.cache_hit, CacheHit::Memory);
    let files = cached_files(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with(&a.sha256) && name.ends_with(".cwasm"),
        "{name}"
    );

    let second = PluginHost::new(Some(dir.path().to_path_buf()));
    let c = second
        .load_path("m", &mean_wasm(), Limits::default())
        .unwrap();
    assert_eq!(c.cache_hit, CacheHit::Disk);
    let mut acc = c.accumulator().unwrap();
    acc.update(Side::Current, &[common::floats(&[Some(2.0), Some(4.0)])])
        .unwrap();
    assert!(matches!(
        acc.finalize().unwrap(),
        mlc_engine::functions::Outcome::Value(_)
    ));

    // A fuel budget needs the metered engine: another artifact, cached next to the first.
    let metered = Limits {
        fuel: Some(1_000_000),
        ..Limits::default()
    };
    let d = second.load_path("m", &mean_wasm(), metered).unwrap();
    assert_eq!(d.cache_hit, CacheHit::Compiled);
    assert_eq!(cached_files(dir.path()).len(), 2);
}

#[test]
fn a_damaged_cache_file_is_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    PluginHost::new(Some(dir.path().to_path_buf()))
        .load_path("m", &mean_wasm(), Limits::default())
        .unwrap();
    let files = cached_files(dir.path());
    std::fs::write(&files[0], b"not a compiled module").unwrap();
    let host = PluginHost::new(Some(dir.path().to_path_buf()));
    let again = host
        .load_path("m", &mean_wasm(), Limits::default())
        .unwrap();
    assert_eq!(again.cache_hit, CacheHit::Compiled);
    let rewritten = std::fs::read(&files[0]).unwrap();
    assert_ne!(rewritten, b"not a compiled module");
}

#[test]
fn an_unwritable_cache_only_costs_time() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"").unwrap();
    // The cache folder would be inside a regular file: creating it fails.
    let host = PluginHost::new(Some(blocker));
    let plugin = host
        .load_path("m", &mean_wasm(), Limits::default())
        .unwrap();
    assert_eq!(plugin.cache_hit, CacheHit::Compiled);
}

#[test]
fn load_applies_the_declared_limits_and_checks_the_signature() {
    let host = PluginHost::without_disk_cache();
    let plugin = host.load(&decl(mean_wasm())).unwrap();
    assert_eq!(plugin.limits.memory_bytes, 2 * 1024 * 1024);
    assert_eq!(plugin.limits.timeout, std::time::Duration::from_secs(1));
    assert_eq!(
        plugin.signature(),
        PluginSignature {
            args: vec![DataType::Float]
        }
    );

    let mut changed = decl(mean_wasm());
    changed.signature = Some(PluginSignature {
        args: vec![DataType::Float, DataType::Int],
    });
    let err = host.load(&changed).unwrap_err();
    assert!(
        err.contains("changed since it was checked") && err.contains("run `mlc lint` again"),
        "{err}"
    );

    let err = host
        .load(&decl(PathBuf::from("/nonexistent/x.wasm")))
        .unwrap_err();
    assert!(err.contains("/nonexistent/x.wasm: cannot be read"), "{err}");
}

#[test]
fn a_small_memory_cap_gets_smaller_chunks_and_a_tiny_one_fails_cleanly() {
    let host = PluginHost::without_disk_cache();
    let rows: Vec<Option<f64>> = (0..100_000).map(|i| Some(i as f64)).collect();
    // 256 KiB cannot hold one 64k-row chunk (512 KiB); chunks shrink to fit.
    let mut small = decl(mean_wasm());
    small.memory_bytes = Some(256 * 1024);
    let plugin = host.load(&small).unwrap();
    let mut acc = plugin.accumulator().unwrap();
    acc.update(Side::Current, &[common::floats(&rows)]).unwrap();
    assert_eq!(
        acc.finalize().unwrap(),
        mlc_engine::functions::Outcome::Value(mlc_engine::value::Value::Float(49_999.5))
    );
    // Below the module's own initial memory (128 KiB) it cannot even start.
    small.memory_bytes = Some(64 * 1024);
    let err = host.load(&small).unwrap_err();
    assert!(
        err.contains("needs 128 KiB of memory to start, more than its limit of 64 KiB"),
        "{err}"
    );
}

#[test]
fn inspect_reports_the_signature_and_names_missing_files() {
    let sig =
        mlc_wasm::inspect(&common::repo_root().join("examples/plugins/ece_rust/ece.wasm")).unwrap();
    assert_eq!(sig.args, vec![DataType::Float, DataType::Int]);
    let meta = mlc_wasm::inspect_meta(
        &common::repo_root().join("examples/plugins/trimmed_mean_c/trimmed_mean.wasm"),
    )
    .unwrap();
    assert_eq!(meta.name, "trimmed_mean");
    let err = mlc_wasm::inspect(std::path::Path::new("missing.wasm")).unwrap_err();
    assert!(
        err.starts_with("plugin file missing.wasm: cannot be read"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"\0asm\x01\0\0\0garbage").unwrap();
    let err = mlc_wasm::inspect(&junk).unwrap_err();
    assert!(
        err.contains("it is not a valid WebAssembly module"),
        "{err}"
    );
}
