//! SARIF 2.1.0, for code-scanning dashboards: one run, one rule per check
//! code that fired, one result per finding.

use std::collections::BTreeSet;

use serde_json::json;

use crate::diagnostic::{Diagnostic, Severity};

pub fn render(diagnostics: &[Diagnostic]) -> String {
    let codes: BTreeSet<&str> = diagnostics.iter().map(|d| d.code).collect();
    let rules: Vec<_> = codes
        .iter()
        .map(|code| {
            let doc = crate::lint::checks::find(code);
            json!({
                "id": code,
                "name": doc.map(|c| c.name).unwrap_or(code),
                "shortDescription": {"text": doc.map(|c| c.summary).unwrap_or("")},
            })
        })
        .collect();
    let results: Vec<_> = diagnostics
        .iter()
        .map(|d| {
            json!({
                "ruleId": d.code,
                "level": match d.severity { Severity::Error => "error", Severity::Warning => "warning" },
                "message": {"text": format!("{} Help: {}", d.message, d.help)},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": d.path},
                        "region": {"startLine": d.line, "startColumn": d.column}
                    }
                }]
            })
        })
        .collect();
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "poolc", "version": env!("CARGO_PKG_VERSION"), "rules": rules}},
            "results": results
        }]
    });
    let mut text = serde_json::to_string_pretty(&log).unwrap_or_default();
    text.push('\n');
    text
}
