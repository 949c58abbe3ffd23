//! Static checks of a compiled module against the ABI: no imports, a memory, and every
//! required export with its exact signature. Errors are sentences that name the fix.

use wasmtime::{ExternType, Module, ValType};

use crate::abi::{MEMORY_EXPORT, REQUIRED_EXPORTS, WasmTy, signature_text};

fn wasm_ty(ty: &ValType) -> Option<WasmTy> {
    if ty.is_i32() {
        Some(WasmTy::I32)
    } else if ty.is_i64() {
        Some(WasmTy::I64)
    } else if ty.is_f64() {
        Some(WasmTy::F64)
    } else {
        None
    }
}

fn ty_text(ty: &ValType) -> String {
    wasm_ty(ty)
        .map(|t| t.name().to_string())
        .unwrap_or_else(|| ty.to_string())
}

/// Every problem with the module's imports and exports, in one sentence each.
pub(crate) fn check_module(module: &Module) -> Result<(), String> {
    let mut problems = Vec::new();

    let imports: Vec<String> = module
        .imports()
        .map(|i| format!("`{}.{}`", i.module(), i.name()))
        .collect();
    if !imports.is_empty() {
        let wasi = module.imports().any(|i| i.module().starts_with("wasi"));
        let hint = if wasi {
            "build for wasm32-unknown-unknown instead of a WASI target"
        } else {
            "remove the calls to host functions (with clang: -nostdlib \
             -Wl,--no-entry; in Rust: no wasm-bindgen)"
        };
        problems.push(format!(
            "it imports {}, but plugins run with no imports at all (no files, clock or \
             network); {hint}",
            imports.join(", ")
        ));
    }

    match module.get_export(MEMORY_EXPORT) {
        Some(ExternType::Memory(mem)) if mem.is_64() => problems.push(
            "its memory is 64-bit; plugins use a 32-bit memory (wasm32 targets)".to_string(),
        ),
        Some(ExternType::Memory(mem)) if mem.is_shared() => problems
            .push("its memory is shared; plugins must not use threads".to_string()),
        Some(ExternType::Memory(_)) => {}
        Some(_) => problems.push(format!(
            "its export `{MEMORY_EXPORT}` is not a memory; export the linear memory as `{MEMORY_EXPORT}`"
        )),
        None => problems.push(format!(
            "it does not export its linear memory as `{MEMORY_EXPORT}`; the host passes columns through it"
        )),
    }

    for required in REQUIRED_EXPORTS {
        match module.get_export(required.name) {
            None => problems.push(format!(
                "it does not export `{}`; add `{}: {}` (see docs/plugins.md)",
                required.name,
                required.name,
                required.signature()
            )),
            Some(ExternType::Func(func)) => {
                let params: Vec<_> = func.params().collect();
                let results: Vec<_> = func.results().collect();
                let same = params.len() == required.params.len()
                    && results.len() == required.results.len()
                    && params
                        .iter()
                        .zip(required.params)
                        .all(|(p, r)| wasm_ty(p) == Some(*r))
                    && results
                        .iter()
                        .zip(required.results)
                        .all(|(p, r)| wasm_ty(p) == Some(*r));
                if !same {
                    let params: Vec<_> = params.iter().map(ty_text).collect();
                    let results: Vec<_> = results.iter().map(ty_text).collect();
                    let found = format!(
                        "({}) -> {}",
                        params.join(", "),
                        match results.len() {
                            0 => "()".to_string(),
                            1 => results[0].clone(),
                            _ => format!("({})", results.join(", ")),
                        }
                    );
                    problems.push(format!(
                        "its export `{}` has the signature {found}; it must be {}",
                        required.name,
                        required.signature()
                    ));
                }
            }
            Some(_) => problems.push(format!(
                "its export `{}` is not a function; it must be a function {}",
                required.name,
                signature_text(
                    required.params.iter().copied(),
                    required.results.iter().copied()
                )
            )),
        }
    }

    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}
