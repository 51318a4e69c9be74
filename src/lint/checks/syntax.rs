//! P001: expressions that do not parse.

use super::Check;
use crate::diagnostic::{Diagnostic, Severity};
use crate::lint::{at, Context, Workspace};

pub const CHECK: Check = Check {
    code: "P001",
    name: "promql-syntax",
    severity: Severity::Error,
    summary: "The expression is not valid PromQL.",
    doc: r#"
What it does: parses every expression (rules, dashboard targets with their
variables substituted, KEDA queries and valueLocations) and reports the
parser's message.

Why it matters: Prometheus refuses to load a rule file with one bad rule, and
a dashboard panel with a syntax error shows nothing.

Example:
    expr: sum(rate(haproxy_backend_current_queue[5m])

Instead:
    expr: sum(rate(haproxy_backend_current_queue[5m]))
"#,
    run,
};

fn run(ws: &Workspace, _ctx: &Context, out: &mut Vec<Diagnostic>) {
    for (i, e) in ws.expressions.iter().enumerate() {
        if let Err(error) = ws.ast(i) {
            let message = error.to_string();
            out.push(at(
                ws,
                e,
                CHECK.code,
                CHECK.severity,
                format!("invalid PromQL: {}", message.lines().next().unwrap_or("")),
                error.help().into(),
            ));
        }
    }
}
