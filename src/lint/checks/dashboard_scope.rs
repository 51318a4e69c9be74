//! P009: dashboard queries not scoped by the environment variables, and
//! hard-coded datasources.

use super::{parsed, Check};
use crate::diagnostic::{Diagnostic, Severity};
use crate::lint::{at, inputs::Role, Context, Workspace};
use crate::promql;

pub const CHECK: Check = Check {
    code: "P009",
    name: "dashboard-scope",
    severity: Severity::Error,
    summary: "A dashboard selector not scoped by every external label, or a hard-coded datasource.",
    doc: r#"
What it does: every selector of every panel target must match each external
label (`cluster`, `env` by default) against its template variable, and every
datasource reference must be a variable (`${datasource}`).

Why it matters: without the scope, `max by (pool)` merges environments that
share pool names; a queued-vs-running panel once showed an impossible
picture that way. A hard-coded datasource uid breaks on every other Grafana.

Example:
    "expr": "sum by (pool) (poolc:pool_queue:connections)"

Instead:
    "expr": "sum by (pool) (poolc:pool_queue:connections{cluster=\"$cluster\", env=\"$env\"})"
"#,
    run,
};

fn run(ws: &Workspace, ctx: &Context, out: &mut Vec<Diagnostic>) {
    for (e, expr) in parsed(ws) {
        if !matches!(e.role, Role::Dashboard { .. }) {
            continue;
        }
        for vs in promql::selectors(expr) {
            let have: Vec<&str> = promql::label_matchers(vs)
                .map(|m| m.name.as_str())
                .collect();
            let missing: Vec<&String> = ctx
                .external_labels
                .iter()
                .filter(|l| !have.contains(&l.as_str()))
                .collect();
            if !missing.is_empty() {
                let name = promql::metric_name(vs).unwrap_or("{…}");
                out.push(at(
                    ws,
                    e,
                    CHECK.code,
                    Severity::Error,
                    format!(
                        "`{name}` is not scoped by {}: series of every environment are merged",
                        missing
                            .iter()
                            .map(|s| format!("`{s}`"))
                            .collect::<Vec<_>>()
                            .join(" and ")
                    ),
                    format!(
                        "add {}",
                        missing
                            .iter()
                            .map(|l| format!("{l}=\"${l}\""))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
    }
    for d in &ws.datasources {
        if !d.uid.starts_with('$') {
            out.push(Diagnostic {
                path: d.path.clone(),
                line: d.line,
                column: 1,
                code: CHECK.code,
                severity: Severity::Error,
                message: format!("hard-coded datasource `{}`", d.uid),
                help: "use a datasource template variable: {\"type\": \"prometheus\", \"uid\": \"${datasource}\"}".into(),
                source_line: crate::diagnostic::excerpt(&ws.source_line(&d.path, d.line), 1),
            });
        }
    }
}
