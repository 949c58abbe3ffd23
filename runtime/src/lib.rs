//! mlc-runtime: runs checked plans over the store (evaluation, results, tests of checks)
//! and the long-running service.

pub mod exec;
pub mod results;
pub mod rules;
pub mod service;
pub mod testing;
pub mod time;
