//! Machine-readable findings: a JSON array, one object per diagnostic.

use crate::diagnostic::Diagnostic;

pub fn render(diagnostics: &[Diagnostic]) -> String {
    let mut text = serde_json::to_string_pretty(diagnostics).unwrap_or_else(|_| "[]".to_string());
    text.push('\n');
    text
}
