//! The plugin ABI, version 1, as the host checks it: the required exports with their exact
//! signatures, the status codes, and the JSON self-description (docs/plugins.md is the prose).

use mlc_engine::schema::DataType;
use serde::Deserialize;

/// The ABI version this host speaks; `mlc_abi_version()` must return it.
pub const ABI_VERSION: i32 = 1;

/// Status returned by `mlc_agg_update`, `mlc_agg_merge` and `mlc_agg_finalize` on success.
pub(crate) const STATUS_OK: i32 = 0;
/// Status returned by `mlc_agg_finalize` when the metric is undefined on the rows it saw
/// (the reason is in `mlc_last_error`); the `expect` becomes `insufficient`.
pub(crate) const STATUS_UNDEFINED: i32 = 1;

/// Largest metadata document the host reads; anything larger is a broken module.
pub(crate) const MAX_META_BYTES: u32 = 64 * 1024;
/// Largest error message the host reads from `mlc_last_error`; longer ones are cut.
pub(crate) const MAX_ERROR_BYTES: u32 = 4 * 1024;
/// Most arguments a plugin may declare.
pub(crate) const MAX_ARGS: usize = 16;

/// A WebAssembly value type as it appears in an export's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WasmTy {
    I32,
    I64,
    F64,
}

impl WasmTy {
    pub fn name(self) -> &'static str {
        match self {
            WasmTy::I32 => "i32",
            WasmTy::I64 => "i64",
            WasmTy::F64 => "f64",
        }
    }
}

/// One function every plugin must export.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequiredExport {
    pub name: &'static str,
    pub params: &'static [WasmTy],
    pub results: &'static [WasmTy],
}

impl RequiredExport {
    /// The signature in WAT-like notation, for messages: `(i32, i32) -> i32`.
    pub fn signature(&self) -> String {
        signature_text(self.params.iter().copied(), self.results.iter().copied())
    }
}

/// Renders a signature for messages.
pub(crate) fn signature_text(
    params: impl Iterator<Item = WasmTy>,
    results: impl Iterator<Item = WasmTy>,
) -> String {
    let params: Vec<_> = params.map(WasmTy::name).collect();
    let results: Vec<_> = results.map(WasmTy::name).collect();
    let results = match results.len() {
        0 => "()".to_string(),
        1 => results[0].to_string(),
        _ => format!("({})", results.join(", ")),
    };
    format!("({}) -> {}", params.join(", "), results)
}

use WasmTy::{I32, I64};

/// The exported memory through which columns, metadata and messages travel.
pub(crate) const MEMORY_EXPORT: &str = "memory";

/// Every function export the host calls, with its exact signature.
pub(crate) const REQUIRED_EXPORTS: &[RequiredExport] = &[
    RequiredExport {
        name: "mlc_abi_version",
        params: &[],
        results: &[I32],
    },
    RequiredExport {
        name: "mlc_meta",
        params: &[],
        results: &[I64],
    },
    RequiredExport {
        name: "mlc_alloc",
        params: &[I32],
        results: &[I32],
    },
    RequiredExport {
        name: "mlc_free",
        params: &[I32, I32],
        results: &[],
    },
    RequiredExport {
        name: "mlc_agg_init",
        params: &[],
        results: &[I32],
    },
    RequiredExport {
        name: "mlc_agg_update",
        params: &[I32, I32, I32, I32],
        results: &[I32],
    },
    RequiredExport {
        name: "mlc_agg_merge",
        params: &[I32, I32],
        results: &[I32],
    },
    RequiredExport {
        name: "mlc_agg_finalize",
        params: &[I32, I32],
        results: &[I32],
    },
    RequiredExport {
        name: "mlc_agg_free",
        params: &[I32],
        results: &[],
    },
    RequiredExport {
        name: "mlc_last_error",
        params: &[],
        results: &[I64],
    },
];

/// Splits a packed `(ptr << 32) | len` into its parts.
pub(crate) fn unpack_ptr_len(packed: i64) -> (u32, u32) {
    let bits = packed as u64;
    ((bits >> 32) as u32, (bits & 0xffff_ffff) as u32)
}

/// The JSON self-description returned by `mlc_meta`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PluginMeta {
    /// The plugin's own name, e.g. `ece` (the `.mlc` file may bind it to another name).
    pub name: String,
    /// The argument columns, in call order.
    pub args: Vec<MetaArg>,
    #[serde(default)]
    pub description: Option<String>,
    /// The plugin's own version, free-form.
    #[serde(default)]
    pub version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MetaArg {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
}

impl PluginMeta {
    /// Parses and validates the metadata bytes; errors are sentences naming the fix.
    pub fn parse(bytes: &[u8]) -> Result<PluginMeta, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| {
            "its metadata (mlc_meta) is not UTF-8 text; return a JSON document".to_string()
        })?;
        let meta: PluginMeta = serde_json::from_str(text).map_err(|e| {
            format!(
                "its metadata (mlc_meta) is not valid: {e}; expected JSON like \
                 {{\"name\": \"ece\", \"args\": [{{\"name\": \"score\", \"type\": \"float\"}}]}}"
            )
        })?;
        if !is_identifier(&meta.name) {
            return Err(format!(
                "its metadata names the plugin {:?}; a name must be 1 to 64 characters of \
                 lowercase letters, digits and `_`, starting with a letter",
                meta.name
            ));
        }
        if meta.args.len() > MAX_ARGS {
            return Err(format!(
                "its metadata declares {} arguments; at most {MAX_ARGS} are supported",
                meta.args.len()
            ));
        }
        for arg in &meta.args {
            if parse_type(&arg.ty).is_none() {
                return Err(format!(
                    "its metadata gives argument `{}` the type {:?}; plugin arguments are \
                     \"int\", \"float\" or \"bool\" (all passed as f64, NaN for null)",
                    arg.name, arg.ty
                ));
            }
        }
        Ok(meta)
    }

    /// The argument types, as the checker uses them.
    pub(crate) fn arg_types(&self) -> Vec<DataType> {
        self.args.iter().filter_map(|a| parse_type(&a.ty)).collect()
    }
}

fn parse_type(ty: &str) -> Option<DataType> {
    match ty {
        "int" => Some(DataType::Int),
        "float" => Some(DataType::Float),
        "bool" => Some(DataType::Bool),
        _ => None,
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && s.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_good_metadata() {
        let meta = PluginMeta::parse(
            br#"{"name":"ece","args":[{"name":"score","type":"float"},{"name":"label","type":"int"}]}"#,
        )
        .unwrap();
        assert_eq!(meta.arg_types(), vec![DataType::Float, DataType::Int]);
    }

    #[test]
    fn rejects_unknown_type_and_bad_name() {
        let err = PluginMeta::parse(br#"{"name":"x","args":[{"name":"s","type":"string"}]}"#)
            .unwrap_err();
        assert!(err.contains("\"int\", \"float\" or \"bool\""), "{err}");
        let err = PluginMeta::parse(br#"{"name":"Bad Name","args":[]}"#).unwrap_err();
        assert!(err.contains("lowercase"), "{err}");
        let err = PluginMeta::parse(b"not json").unwrap_err();
        assert!(err.contains("expected JSON like"), "{err}");
    }

    #[test]
    fn unpacks_pointer_and_length() {
        assert_eq!(unpack_ptr_len((1024i64 << 32) | 17), (1024, 17));
        assert_eq!(unpack_ptr_len(-1), (u32::MAX, u32::MAX));
    }
}
