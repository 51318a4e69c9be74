//! poolc compiles autoscaled CI build-worker pool specs into the artifacts that
//! run and watch them, and lints every PromQL expression on the way.

pub mod catalog;
