//! mlc-plugin-sdk: write an mlc custom metric (a WebAssembly plugin, ABI version 1) in Rust.
//!
//! Implement [`Aggregate`] for a state type and call [`export_plugin!`] once; build with
//! `cargo build --release --target wasm32-unknown-unknown` as a `cdylib`. The macro emits
//! every export the host requires (docs/plugins.md in the mlc repository), with the JSON
//! metadata `mlc lint` reads to check calls.
//!
//! ```ignore
//! #[derive(Default)]
//! struct Mean { sum: f64, n: f64 }
//!
//! impl mlc_plugin_sdk::Aggregate for Mean {
//!     fn update(&mut self, columns: &[&[f64]]) -> Result<(), String> {
//!         for &x in columns[0] {
//!             if !x.is_nan() { self.sum += x; self.n += 1.0; }
//!         }
//!         Ok(())
//!     }
//!     fn merge(&mut self, other: &Self) -> Result<(), String> {
//!         self.sum += other.sum; self.n += other.n; Ok(())
//!     }
//!     fn finalize(&self) -> Result<mlc_plugin_sdk::Outcome, String> {
//!         Ok(if self.n == 0.0 { mlc_plugin_sdk::Outcome::Undefined("no values".into()) }
//!            else { mlc_plugin_sdk::Outcome::Value(self.sum / self.n) })
//!     }
//! }
//!
//! mlc_plugin_sdk::export_plugin! {
//!     aggregate: Mean,
//!     name: "my_mean",
//!     args: [x: float],
//!     description: "Mean of x, skipping nulls",
//! }
//! ```
//!
//! `no_std` with `alloc`: a plugin crate may use std (wasm32-unknown-unknown's std brings an
//! allocator and turns panics into a trap, with no imports) or provide its own allocator.

#![no_std]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

/// The plugin ABI version this SDK implements; the host refuses other versions.
pub const ABI_VERSION: i32 = 1;

/// Status codes returned to the host (docs/plugins.md).
pub mod status {
    /// Success.
    pub const OK: i32 = 0;
    /// `mlc_agg_finalize` only: the metric is undefined on these rows (the `expect` becomes
    /// `insufficient`); the reason is in `mlc_last_error`.
    pub const UNDEFINED: i32 = 1;
    /// Failure; the message is in `mlc_last_error` and the `expect` becomes `error`.
    pub const ERROR: i32 = 2;
}

/// What a finished aggregate gives.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A finite number.
    Value(f64),
    /// The metric is undefined on these rows, with the reason shown to the user.
    Undefined(String),
}

/// A streaming aggregate: one value per slice of rows, built from batches.
///
/// Columns arrive as `f64`, one slice per declared argument, all the same length, with NaN
/// for null (int and bool columns are converted: `true` is 1.0). Batches are at most 65 536
/// rows; a window of any size arrives in several calls.
pub trait Aggregate: Default {
    /// Folds one batch into the state. An `Err` makes the `expect` `error` with the message.
    fn update(&mut self, columns: &[&[f64]]) -> Result<(), String>;
    /// Folds in another state of the same aggregate (partial results of other row sets).
    fn merge(&mut self, other: &Self) -> Result<(), String>;
    /// The result. Must not consume the state: the host may call it more than once.
    fn finalize(&self) -> Result<Outcome, String>;
}

struct Inner<T> {
    slots: Vec<Option<T>>,
    error: String,
}

/// The live states of one plugin and its last error message. The export macro declares one
/// as a `static`; the methods are what the generated exports call.
pub struct Registry<T> {
    busy: AtomicBool,
    inner: UnsafeCell<Inner<T>>,
}

// SAFETY: every access to `inner` goes through `with`, which holds the `busy` flag for the
// duration, so no two threads (native tests) or re-entrant calls can alias it. Wasm plugins
// are single-threaded anyway.
unsafe impl<T> Sync for Registry<T> {}

impl<T> Default for Registry<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Registry<T> {
    /// An empty registry, usable in a `static`.
    pub const fn new() -> Self {
        Registry {
            busy: AtomicBool::new(false),
            inner: UnsafeCell::new(Inner {
                slots: Vec::new(),
                error: String::new(),
            }),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner<T>) -> R) -> R {
        while self
            .busy
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            core::hint::spin_loop();
        }
        // SAFETY: the `busy` flag is held, so this is the only reference to `inner`.
        let result = f(unsafe { &mut *self.inner.get() });
        self.busy.store(false, Ordering::Release);
        result
    }

    fn fail(inner: &mut Inner<T>, message: String, code: i32) -> i32 {
        inner.error = message;
        code
    }

    /// The last error message as `(ptr << 32) | len` (pointer valid until the next call).
    pub fn last_error(&self) -> i64 {
        self.with(|inner| pack(inner.error.as_ptr() as usize, inner.error.len()))
    }
}

impl<T: Aggregate> Registry<T> {
    /// `mlc_agg_init`: a new state's handle, or -1.
    pub fn init(&self) -> i32 {
        self.with(|inner| {
            let free = inner.slots.iter().position(Option::is_none);
            let index = match free {
                Some(i) => i,
                None => {
                    inner.slots.push(None);
                    inner.slots.len() - 1
                }
            };
            match i32::try_from(index) {
                Ok(handle) => {
                    inner.slots[index] = Some(T::default());
                    handle
                }
                Err(_) => Self::fail(inner, "too many aggregate states".into(), -1),
            }
        })
    }

    /// `mlc_agg_update` once the host's pointers are turned into slices.
    pub fn update(&self, handle: i32, expected_cols: usize, columns: &[&[f64]]) -> i32 {
        self.with(|inner| {
            if columns.len() != expected_cols {
                let message = alloc::format!(
                    "expected {expected_cols} argument columns, got {}",
                    columns.len()
                );
                return Self::fail(inner, message, status::ERROR);
            }
            let Some(Some(state)) = usize::try_from(handle)
                .ok()
                .and_then(|h| inner.slots.get_mut(h))
            else {
                return Self::fail(
                    inner,
                    alloc::format!("invalid handle {handle}"),
                    status::ERROR,
                );
            };
            match state.update(columns) {
                Ok(()) => status::OK,
                Err(message) => Self::fail(inner, message, status::ERROR),
            }
        })
    }

    /// `mlc_agg_merge`: folds `src` into `dst`; `src` stays valid.
    pub fn merge(&self, dst: i32, src: i32) -> i32 {
        self.with(|inner| {
            let (Ok(d), Ok(s)) = (usize::try_from(dst), usize::try_from(src)) else {
                return Self::fail(inner, "invalid handle".into(), status::ERROR);
            };
            if d == s || d >= inner.slots.len() || s >= inner.slots.len() {
                return Self::fail(
                    inner,
                    alloc::format!("cannot merge {src} into {dst}"),
                    status::ERROR,
                );
            }
            // Take the source out so both can be borrowed, then put it back.
            let Some(source) = inner.slots[s].take() else {
                return Self::fail(inner, alloc::format!("invalid handle {src}"), status::ERROR);
            };
            let result = match inner.slots[d].as_mut() {
                Some(target) => target.merge(&source),
                None => Err(alloc::format!("invalid handle {dst}")),
            };
            inner.slots[s] = Some(source);
            match result {
                Ok(()) => status::OK,
                Err(message) => Self::fail(inner, message, status::ERROR),
            }
        })
    }

    /// `mlc_agg_finalize`: the status, and the value when the status is OK.
    pub fn finalize(&self, handle: i32) -> (i32, f64) {
        self.with(|inner| {
            let Some(Some(state)) = usize::try_from(handle)
                .ok()
                .and_then(|h| inner.slots.get(h))
            else {
                let code = Self::fail(
                    inner,
                    alloc::format!("invalid handle {handle}"),
                    status::ERROR,
                );
                return (code, f64::NAN);
            };
            match state.finalize() {
                Ok(Outcome::Value(v)) if v.is_finite() => (status::OK, v),
                Ok(Outcome::Value(v)) => {
                    let message = alloc::format!("the result is {v}, not a finite number");
                    (Self::fail(inner, message, status::ERROR), f64::NAN)
                }
                Ok(Outcome::Undefined(reason)) => {
                    (Self::fail(inner, reason, status::UNDEFINED), f64::NAN)
                }
                Err(message) => (Self::fail(inner, message, status::ERROR), f64::NAN),
            }
        })
    }

    /// `mlc_agg_free`.
    pub fn free(&self, handle: i32) {
        self.with(|inner| {
            if let Some(slot) = usize::try_from(handle)
                .ok()
                .and_then(|h| inner.slots.get_mut(h))
            {
                *slot = None;
            }
        })
    }
}

/// Packs a pointer and a length the way the ABI returns them: `(ptr << 32) | len`.
pub fn pack(ptr: usize, len: usize) -> i64 {
    (((ptr as u64) << 32) | (len as u64 & 0xffff_ffff)) as i64
}

/// `mlc_alloc`: an 8-byte aligned block, or 0.
pub fn alloc_block(size: i32) -> i32 {
    let Ok(size) = usize::try_from(size) else {
        return 0;
    };
    let Ok(layout) = core::alloc::Layout::from_size_align(size.max(1), 8) else {
        return 0;
    };
    // SAFETY: the layout has a non-zero size.
    let ptr = unsafe { alloc::alloc::alloc(layout) };
    ptr as usize as i32
}

/// `mlc_free`: releases a block from [`alloc_block`] of the same size.
///
/// # Safety
/// `ptr` must come from `alloc_block(size)` and not have been freed.
pub unsafe fn free_block(ptr: i32, size: i32) {
    let Ok(size) = usize::try_from(size) else {
        return;
    };
    let Ok(layout) = core::alloc::Layout::from_size_align(size.max(1), 8) else {
        return;
    };
    if ptr != 0 {
        // SAFETY: guaranteed by the caller.
        unsafe { alloc::alloc::dealloc(ptr as u32 as usize as *mut u8, layout) };
    }
}

/// Turns the host's column table into slices and calls [`Registry::update`].
///
/// # Safety
/// `cols` must point to `n_cols` 32-bit addresses, each of `n_rows` f64 values, as the host
/// guarantees (wasm32 only: addresses are 32-bit).
pub unsafe fn update_from_raw<T: Aggregate>(
    registry: &Registry<T>,
    expected_cols: usize,
    handle: i32,
    cols: i32,
    n_cols: i32,
    n_rows: i32,
) -> i32 {
    let (Ok(n_cols), Ok(n_rows)) = (usize::try_from(n_cols), usize::try_from(n_rows)) else {
        return status::ERROR;
    };
    let table = cols as u32 as usize as *const u32;
    let mut columns: Vec<&[f64]> = Vec::with_capacity(n_cols);
    for i in 0..n_cols {
        // SAFETY: the host wrote `n_cols` aligned u32 addresses at `table`, each of `n_rows`
        // aligned f64 values inside this module's memory.
        let column = unsafe {
            let ptr = *table.add(i) as usize as *const f64;
            core::slice::from_raw_parts(ptr, n_rows)
        };
        columns.push(column);
    }
    registry.update(handle, expected_cols, &columns)
}

/// Emits every export of the plugin ABI for an [`Aggregate`] type.
///
/// ```ignore
/// mlc_plugin_sdk::export_plugin! {
///     aggregate: Ece,
///     name: "ece",
///     args: [score: float, label: int],
///     description: "Expected calibration error over 10 equal-width bins",
/// }
/// ```
/// Argument types are `float`, `int` or `bool`. The name and description must not contain
/// `"` or `\` (they are pasted into the JSON metadata as they are).
#[macro_export]
macro_rules! export_plugin {
    (
        aggregate: $ty:ty,
        name: $name:literal,
        args: [$($arg:ident : $argty:ident),* $(,)?],
        description: $desc:literal $(,)?
    ) => {
        const _: () = {
            static REGISTRY: $crate::Registry<$ty> = $crate::Registry::new();
            const N_ARGS: usize = [$(stringify!($arg)),*].len();
            static META: &str = concat!(
                "{\"name\":\"", $name, "\",\"args\":[",
                $crate::__args_json!($($arg : $argty),*),
                "],\"description\":\"", $desc, "\",\"version\":\"",
                env!("CARGO_PKG_VERSION"), "\"}"
            );

            #[unsafe(no_mangle)]
            pub extern "C" fn mlc_abi_version() -> i32 {
                $crate::ABI_VERSION
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn mlc_meta() -> i64 {
                $crate::pack(META.as_ptr() as usize, META.len())
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn mlc_alloc(size: i32) -> i32 {
                $crate::alloc_block(size)
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn mlc_free(ptr: i32, size: i32) {
                // SAFETY: the host frees only blocks it got from `mlc_alloc`, with their size.
                unsafe { $crate::free_block(ptr, size) }
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn mlc_agg_init() -> i32 {
                REGISTRY.init()
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn mlc_agg_update(handle: i32, cols: i32, n_cols: i32, n_rows: i32) -> i32 {
                // SAFETY: the host passes a column table as the ABI describes.
                unsafe { $crate::update_from_raw(&REGISTRY, N_ARGS, handle, cols, n_cols, n_rows) }
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn mlc_agg_merge(dst: i32, src: i32) -> i32 {
                REGISTRY.merge(dst, src)
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn mlc_agg_finalize(handle: i32, out: i32) -> i32 {
                let (status, value) = REGISTRY.finalize(handle);
                if status == $crate::status::OK {
                    // SAFETY: the host passes an 8-byte aligned address inside this memory.
                    unsafe { *(out as u32 as usize as *mut f64) = value };
                }
                status
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn mlc_agg_free(handle: i32) {
                REGISTRY.free(handle)
            }
            #[unsafe(no_mangle)]
            pub extern "C" fn mlc_last_error() -> i64 {
                REGISTRY.last_error()
            }
        };
    };
}

/// The `args` array of the metadata JSON, comma-separated (an implementation detail of
/// [`export_plugin!`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __args_json {
    () => { "" };
    ($arg:ident : $ty:ident $(, $rest:ident : $rty:ident)*) => {
        concat!(
            "{\"name\":\"", stringify!($arg), "\",\"type\":\"", $crate::__arg_type!($ty), "\"}"
            $(, ",{\"name\":\"", stringify!($rest), "\",\"type\":\"", $crate::__arg_type!($rty), "\"}")*
        )
    };
}

/// Checks an argument type at compile time (an implementation detail of [`export_plugin!`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __arg_type {
    (float) => {
        "float"
    };
    (int) => {
        "int"
    };
    (bool) => {
        "bool"
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[derive(Default)]
    struct Sum(f64);

    impl Aggregate for Sum {
        fn update(&mut self, columns: &[&[f64]]) -> Result<(), String> {
            self.0 += columns[0].iter().filter(|x| !x.is_nan()).sum::<f64>();
            if self.0 > 1e9 {
                Err("too big".to_string())
            } else {
                Ok(())
            }
        }
        fn merge(&mut self, other: &Self) -> Result<(), String> {
            self.0 += other.0;
            Ok(())
        }
        fn finalize(&self) -> Result<Outcome, String> {
            Ok(if self.0 == 0.0 {
                Outcome::Undefined("empty".to_string())
            } else {
                Outcome::Value(self.0)
            })
        }
    }

    fn message(r: &Registry<Sum>) -> String {
        let len = (r.last_error() as u64 & 0xffff_ffff) as usize;
        r.with(|inner| inner.error[..len].to_string())
    }

    #[test]
    fn states_update_merge_finalize_and_free() {
        let r: Registry<Sum> = Registry::new();
        let a = r.init();
        let b = r.init();
        assert_ne!(a, b);
        assert_eq!(r.update(a, 1, &[&[1.0, f64::NAN, 2.0]]), status::OK);
        assert_eq!(r.update(b, 1, &[&[4.0]]), status::OK);
        assert_eq!(r.merge(a, b), status::OK);
        assert_eq!(r.finalize(a), (status::OK, 7.0));
        assert_eq!(
            r.finalize(b),
            (status::OK, 4.0),
            "merge leaves the source intact"
        );
        r.free(b);
        assert_eq!(r.init(), b, "freed slots are reused");
        assert_eq!(r.finalize(b).0, status::UNDEFINED);
        assert_eq!(message(&r), "empty");
    }

    #[test]
    fn errors_are_reported_with_messages() {
        let r: Registry<Sum> = Registry::new();
        let a = r.init();
        assert_eq!(r.update(a, 2, &[&[1.0]]), status::ERROR);
        assert_eq!(message(&r), "expected 2 argument columns, got 1");
        assert_eq!(r.update(99, 1, &[&[1.0]]), status::ERROR);
        assert_eq!(message(&r), "invalid handle 99");
        assert_eq!(r.update(a, 1, &[&[2e9]]), status::ERROR);
        assert_eq!(message(&r), "too big");
        assert_eq!(r.merge(a, a), status::ERROR);
    }

    #[test]
    fn metadata_json_is_built_at_compile_time() {
        let json = concat!("[", crate::__args_json!(score: float, label: int), "]");
        assert_eq!(
            json,
            r#"[{"name":"score","type":"float"},{"name":"label","type":"int"}]"#
        );
        assert_eq!(crate::__args_json!(), "");
        assert_eq!(pack(1024, 17), (1024i64 << 32) | 17);
    }
}
