//! P010: duplicate alerts and alerts without severity or summary.

use std::collections::BTreeMap;

use super::Check;
use crate::diagnostic::{Diagnostic, Severity};
use crate::lint::{at, inputs::Role, Context, Workspace};

pub const CHECK: Check = Check {
    code: "P010",
    name: "rule-hygiene",
    severity: Severity::Warning,
    summary:
        "Duplicate alerts in a group, or an alert without a severity label or summary annotation.",
    doc: r#"
What it does: reports two alerts of one group with the same name and the
same static labels (an error: Prometheus evaluates both and they collide),
and alerts without a `severity` label or a `summary` annotation (warnings:
routing and the page text depend on them).

Why it matters: an alert without severity falls through every route to the
default receiver; one without a summary pages with an empty title.

Example:
    - alert: PoolQueueBacklog
      expr: poolc:pool_queue:connections > 20

Instead:
    - alert: PoolQueueBacklog
      expr: poolc:pool_queue:connections > 20
      labels: {severity: warning}
      annotations: {summary: Builds pile up}
"#,
    run,
};

fn run(ws: &Workspace, _ctx: &Context, out: &mut Vec<Diagnostic>) {
    let mut seen: BTreeMap<(String, String, String, String), usize> = BTreeMap::new();
    for e in &ws.expressions {
        let Role::Rule(rule) = &e.role else { continue };
        let Some(alert) = &rule.alert else { continue };
        let key = (
            e.path.clone(),
            rule.group.clone(),
            alert.clone(),
            format!("{:?}", rule.labels),
        );
        if let Some(first) = seen.insert(key, e.line) {
            out.push(at(ws, e, CHECK.code, Severity::Error, format!("alert {alert} is defined twice in group {} with the same labels (first at line {first})", rule.group), "merge the two, or tell them apart with a label".into()));
        }
        if !rule.labels.contains_key("severity") {
            out.push(at(
                ws,
                e,
                CHECK.code,
                Severity::Warning,
                format!("alert {alert} has no `severity` label"),
                "add `labels: {severity: warning}` (or critical) so routing can place it".into(),
            ));
        }
        if !rule.annotations.contains_key("summary") {
            out.push(at(
                ws,
                e,
                CHECK.code,
                Severity::Warning,
                format!("alert {alert} has no `summary` annotation"),
                "add a one-line `summary` that says what is wrong".into(),
            ));
        }
    }
}
