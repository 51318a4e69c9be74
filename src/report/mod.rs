//! One renderer per output format of `poolc lint`; each takes the findings
//! (sorted by file and position) and returns the text to print.

pub mod github;
pub mod human;
pub mod json;
pub mod sarif;

use crate::diagnostic::Diagnostic;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
    Github,
    Sarif,
}

pub fn render(format: Format, diagnostics: &[Diagnostic]) -> String {
    match format {
        Format::Human => human::render(diagnostics),
        Format::Json => json::render(diagnostics),
        Format::Github => github::render(diagnostics),
        Format::Sarif => sarif::render(diagnostics),
    }
}
