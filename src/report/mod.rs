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

impl Format {
    /// Every format, as `poolc lint --format` lists them.
    pub const ALL: [Format; 4] = [Format::Human, Format::Json, Format::Github, Format::Sarif];

    /// The name `--format` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Human => "human",
            Format::Json => "json",
            Format::Github => "github",
            Format::Sarif => "sarif",
        }
    }
}

pub fn render(format: Format, diagnostics: &[Diagnostic]) -> String {
    match format {
        Format::Human => human::render(diagnostics),
        Format::Json => json::render(diagnostics),
        Format::Github => github::render(diagnostics),
        Format::Sarif => sarif::render(diagnostics),
    }
}
