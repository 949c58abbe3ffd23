//! mlc-wasm: the sandboxed WebAssembly host that runs custom aggregates (plugins).
