//! `mlc demo`: the example pipeline of examples/pipeline with generated, seeded records,
//! faults injected in each of the four quadrants of docs/demo.md (stateless or stateful, one component or several), evaluated end to end
//! on a fresh SQLite store, and the table of what the example checks must say about them.

pub mod data;
pub mod embedded;
pub mod faults;
pub mod generate;
pub mod judge;
pub mod load;
pub mod rng;
pub mod rules;
pub mod run;

use std::path::{Path, PathBuf};

pub use data::{Column, ColumnData, Table};
pub use faults::{Expectation, FAULTS, Fault, HEALTHY, Quadrant};
pub use generate::{Dataset, DemoConfig, generate};
pub use run::{DemoOptions, DemoOutcome, run};

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("the demo's rules do not check:\n{0}")]
    Rules(String),
    #[error("{0}")]
    Schema(String),
    #[error(transparent)]
    Store(#[from] mlc_store::StoreError),
    #[error("`{path}`: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "refusing to replace `{0}`: it is not a store written by `mlc demo`; pass another `--db` path"
    )]
    NotADemoStore(PathBuf),
    #[error("cannot write the demo's output: {0}")]
    Output(std::io::Error),
}

impl DemoError {
    fn io(path: &Path, source: std::io::Error) -> DemoError {
        DemoError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

#[cfg(test)]
mod tests;
