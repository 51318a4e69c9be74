//! P008: KEDA metrics-api valueLocations KEDA reads differently than written.

use promql_parser::label::MatchOp;
use promql_parser::parser::Expr;

use super::{parsed, Check};
use crate::diagnostic::{Diagnostic, Severity};
use crate::lint::{at, inputs::Role, Context, Workspace};
use crate::promql;

pub const CHECK: Check = Check {
    code: "P008",
    name: "keda-value-location",
    severity: Severity::Error,
    summary: "A KEDA prometheus-format valueLocation with a non-equality matcher, or one that can select several series.",
    doc: r#"
What it does: checks the `valueLocation` of metrics-api triggers with
`format: prometheus`. It must be a plain selector; every matcher must be `=`
(KEDA ignores the operator and compares values literally), and every label
of the metric should be pinned, because KEDA takes the first matching series
and does not sum.

Why it matters: `{proxy=~"bk_.*"}` reads as `proxy="bk_.*"` to KEDA: no
series, the scaler errors, the pool stops scaling.

Example:
    valueLocation: haproxy_backend_current_sessions{proxy=~"bk_amd64"}

Instead:
    valueLocation: haproxy_backend_current_sessions{proxy="bk_amd64"}
"#,
    run,
};

fn run(ws: &Workspace, ctx: &Context, out: &mut Vec<Diagnostic>) {
    for (e, expr) in parsed(ws) {
        if !matches!(e.role, Role::ValueLocation) {
            continue;
        }
        let Expr::VectorSelector(vs) = &expr else {
            out.push(at(
                ws,
                e,
                CHECK.code,
                Severity::Error,
                "a valueLocation must be a plain series selector; KEDA does not evaluate PromQL"
                    .into(),
                "write `metric{label=\"value\"}` and move any math to the trigger's targetValue"
                    .into(),
            ));
            continue;
        };
        for m in promql::label_matchers(vs) {
            if !matches!(m.op, MatchOp::Equal) {
                out.push(at(ws, e, CHECK.code, Severity::Error, format!("matcher `{}{}\"{}\"`: KEDA ignores the operator and compares `{}` to \"{}\" literally", m.name, m.op, m.value, m.name, m.value), format!("use `{}=\"<exact value>\"`", m.name)));
            }
        }
        if let Some(entry) = promql::metric_name(vs).and_then(|n| ctx.catalog.get(n)) {
            let pinned: Vec<&str> = promql::label_matchers(vs)
                .map(|m| m.name.as_str())
                .collect();
            let loose: Vec<&String> = entry
                .labels
                .iter()
                .filter(|l| !pinned.contains(&l.as_str()))
                .collect();
            if !loose.is_empty() {
                out.push(at(ws, e, CHECK.code, Severity::Warning, format!("the valueLocation can match several series (unpinned: {}); KEDA reads only the first", loose.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")), "pin every label with `=`".into()));
            }
        }
    }
}
