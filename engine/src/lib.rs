//! mlc-engine: turns parsed `.mlc` files into a checked, typed [`plan::Program`], and
//! evaluates aggregates over in-memory columns (Arrow arrays).
//!
//! Pure: no I/O and no async. Files are read by the caller and handed in.

pub mod check;
pub mod eval;
pub mod explain;
pub mod functions;
pub mod load;
pub mod plan;
pub mod schema;
pub mod value;
