//! The whole compile, specs/ → FileSet, as one call for the CLI and tests:
//! load, validate, render (and lint, before anything can be written).

use std::fmt;
use std::path::Path;

use crate::fileset::FileSet;
use crate::model::{self, Model};
use crate::render::{self, RenderError};
use crate::spec::{self, SpecError};

/// Why a compile produced nothing. Spec errors are bad input (exit 2).
#[derive(Debug)]
pub enum Failure {
    Spec(Vec<SpecError>),
    Render(RenderError),
    /// The PromQL gate found errors in what would be written (exit 1).
    Lint(Vec<crate::diagnostic::Diagnostic>),
}

impl Failure {
    /// 2 for bad input, 1 for findings.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Lint(_) => 1,
            _ => 2,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Spec(errors) => {
                for e in errors {
                    writeln!(f, "{e}\n")?;
                }
                write!(
                    f,
                    "{} error{} in the specs; nothing was written",
                    errors.len(),
                    if errors.len() == 1 { "" } else { "s" }
                )
            }
            Failure::Render(e) => write!(f, "error: {e}; nothing was written"),
            Failure::Lint(d) => write!(
                f,
                "{}the PromQL gate failed; nothing was written",
                crate::report::human::render(d)
            ),
        }
    }
}

/// Loads and validates every spec in `specs_dir`.
pub fn load_model(specs_dir: &Path) -> Result<Model, Failure> {
    let files = spec::load_dir(specs_dir).map_err(Failure::Spec)?;
    model::build(&files).map_err(Failure::Spec)
}

/// Everything `poolc generate` would write.
pub fn compile(specs_dir: &Path) -> Result<FileSet, Failure> {
    let model = load_model(specs_dir)?;
    let set = render::render(&model).map_err(Failure::Render)?;
    let findings = crate::lint::lint_fileset(&model, &set);
    if findings
        .iter()
        .any(|d| d.severity == crate::diagnostic::Severity::Error)
    {
        return Err(Failure::Lint(findings));
    }
    Ok(set)
}
