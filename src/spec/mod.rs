//! The input: one YAML spec per cluster under `specs/`, read into raw serde
//! types that mirror the file. Nothing here interprets the numbers; that is
//! `model`'s job. Every value that a validation error may point at is
//! `Spanned`, so the error can name its file and line.

mod duration;
mod error;
mod load;
mod located;
mod raw;

pub use duration::Seconds;
pub use error::SpecError;
pub use load::{load_bytes, load_dir, load_file, read_at_most, SpecFile, MAX_SPEC_BYTES};
pub use located::Located;
pub use raw::*;

/// The spec's JSON Schema, derived from the types above so it cannot drift
/// from what `poolc` accepts. Editors use it for completion and inline errors.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Spec);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}
