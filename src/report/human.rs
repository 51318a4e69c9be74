//! `path:line:col: CODE severity: message`, the source line with a caret
//! under the position, and the fix: the format compilers taught everyone.

use std::fmt::Write;

use crate::diagnostic::{Diagnostic, Severity};

pub fn render(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diagnostics {
        let _ = writeln!(
            out,
            "{}:{}:{}: {} {}: {}",
            d.path,
            d.line,
            d.column,
            d.code,
            d.severity.as_str(),
            d.message
        );
        if !d.source_line.is_empty() {
            let gutter = d.line.to_string().len();
            let _ = writeln!(out, "{:gutter$} |", "");
            let (text, caret_at) = crate::diagnostic::excerpt_and_caret(&d.source_line, d.column);
            let _ = writeln!(out, "{} | {}", d.line, text);
            let _ = writeln!(out, "{:gutter$} | {}^", "", " ".repeat(caret_at));
        }
        if let Some(subject) = &d.subject {
            let _ = writeln!(out, "  = in: {}", subject.describe());
        }
        let _ = writeln!(out, "  = help: {}\n", d.help);
    }
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diagnostics.len() - errors;
    let _ = writeln!(
        out,
        "{errors} error{}, {warnings} warning{}",
        if errors == 1 { "" } else { "s" },
        if warnings == 1 { "" } else { "s" }
    );
    out
}
