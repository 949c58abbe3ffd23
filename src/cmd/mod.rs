//! One module per subcommand: its arguments (clap) and the wiring to the crates.

pub mod backfill;
pub mod check;
pub mod demo;
pub mod explain;
pub mod fmt;
pub mod ingest;
pub mod lint;
pub mod prune;
pub mod serve;
pub mod test;
