//! SARIF 2.1.0, for code-scanning dashboards: one run, one rule per check
//! code that fired, one result per finding.

use std::collections::BTreeSet;

use serde_json::json;

use crate::diagnostic::{Diagnostic, Severity, Subject};

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
            let mut location = json!({
                "physicalLocation": {
                    "artifactLocation": {"uri": d.path},
                    "region": {"startLine": d.line, "startColumn": d.column}
                }
            });
            let mut text = format!("{} Help: {}", d.message, d.help);
            if let Some(subject) = &d.subject {
                location["logicalLocations"] = json!([logical_location(subject)]);
                text = format!("In {}: {text}", subject.describe());
            }
            json!({
                "ruleId": d.code,
                "level": match d.severity { Severity::Error => "error", Severity::Warning => "warning" },
                "message": {"text": text},
                "locations": [location]
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

/// A rule as `group/name`, a panel as `dashboard/title`, so code-scanning
/// views can group findings by the rule or panel they are in.
fn logical_location(subject: &Subject) -> serde_json::Value {
    match subject {
        Subject::Rule {
            group,
            alert,
            record,
        } => {
            let (kind, name) = match (alert, record) {
                (Some(a), _) => ("alert", a.as_str()),
                (None, Some(r)) => ("record", r.as_str()),
                (None, None) => ("rule", ""),
            };
            json!({"name": name, "fullyQualifiedName": format!("{group}/{name}"), "kind": kind})
        }
        Subject::Panel {
            dashboard,
            title,
            id,
        } => {
            let name = title.clone().unwrap_or_default();
            let mut value = json!({
                "name": name,
                "fullyQualifiedName": format!("{dashboard}/{name}"),
                "kind": "panel"
            });
            if let Some(id) = id {
                value["properties"] = json!({"panelId": id});
            }
            value
        }
    }
}
