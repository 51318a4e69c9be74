//! poolc compiles autoscaled CI build-worker pool specs into the artifacts that
//! run and watch them, and lints every PromQL expression on the way.
//!
//! The pipeline runs one way: `spec` (load) → `model` (validate) → `render`
//! (Model → FileSet) → lint → `fileset` (write / check), the only stage that
//! touches `generated/`.

pub mod capacity;
pub mod catalog;
pub mod diagnostic;
pub mod door;
pub mod fileset;
pub mod instance_types;
pub mod lint;
pub mod model;
pub mod parallel;
pub mod pipeline;
pub mod plan;
pub mod promql;
pub mod render;
pub mod report;
pub mod simulate;
pub mod spec;
pub mod starter;
