//! The input: one YAML spec per cluster under `specs/`, read into raw serde
//! types that mirror the file. Nothing here interprets the numbers; that is
//! `model`'s job. Every value that a validation error may point at is
//! `Spanned`, so the error can name its file and line.

mod duration;
mod error;
mod load;
mod raw;

pub use duration::Seconds;
pub use error::SpecError;
pub use load::{load_dir, load_file, SpecFile, MAX_SPEC_BYTES};
pub use raw::*;
