//! `mlc demo`: the example pipeline of examples/pipeline with generated, seeded records,
//! faults injected in each of the four quadrants of SPEC section 1, and the table of what
//! the example checks must say about them.

pub mod data;
pub mod embedded;
pub mod faults;
pub mod generate;
pub mod rng;

pub use data::{Column, ColumnData, Table};
pub use faults::{Expectation, FAULTS, Fault, HEALTHY, Quadrant};
pub use generate::{Dataset, DemoConfig, generate};

#[cfg(test)]
mod tests;
