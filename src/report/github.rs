//! GitHub Actions workflow commands: each finding becomes an annotation on
//! the PR diff at its file and line.

use std::fmt::Write;

use crate::diagnostic::{Diagnostic, Severity};

/// Workflow-command values escape `%`, CR and LF; properties also `:` and `,`.
fn escape(text: &str, property: bool) -> String {
    let mut s = text
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A");
    if property {
        s = s.replace(':', "%3A").replace(',', "%2C");
    }
    s
}

pub fn render(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diagnostics {
        let level = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        // The title names the rule or panel; the message says where it is in full.
        let (title, message) = match &d.subject {
            Some(s) => (
                format!("{} {}", d.code, s.name().unwrap_or_default()),
                format!("{}: {} (help: {})", s.describe(), d.message, d.help),
            ),
            None => (
                d.code.to_string(),
                format!("{} (help: {})", d.message, d.help),
            ),
        };
        let _ = writeln!(
            out,
            "::{level} file={},line={},col={},title={}::{}",
            escape(&d.path, true),
            d.line,
            d.column,
            escape(title.trim_end(), true),
            escape(&message, false)
        );
    }
    out
}
