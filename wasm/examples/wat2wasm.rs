//! Builds a hand-written `.wat` plugin into the `.wasm` that is committed next to it
//! (`cargo run -p mlc-wasm --example wat2wasm -- IN.wat OUT.wasm`), so building WAT needs
//! nothing beyond cargo.
#![allow(clippy::unwrap_used)] // tests and benches fail loudly on purpose

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        return Err("usage: wat2wasm IN.wat OUT.wasm".to_string());
    };
    let bytes = wat::parse_file(input).map_err(|e| e.to_string())?;
    std::fs::write(output, bytes).map_err(|e| format!("cannot write {output}: {e}"))?;
    Ok(())
}
