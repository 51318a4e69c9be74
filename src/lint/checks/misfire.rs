//! P011: alerts that fire on healthy behaviour.

use promql_parser::parser::{token, Expr};

use super::{parsed, Check};
use crate::catalog::MetricType;
use crate::diagnostic::{Diagnostic, Severity};
use crate::lint::{at, inputs::Role, Context, Workspace};
use crate::promql;

pub const CHECK: Check = Check {
    code: "P011",
    name: "misfire-risk",
    severity: Severity::Warning,
    summary: "`> 0` with `for` on a queue gauge, or a scaler-error threshold below the fallback failureThreshold.",
    doc: r#"
What it does: warns about two shapes that page on healthy load. A queue
gauge compared with `> 0` under `for`: bursts keep a queue non-empty for the
7–8 minutes scale-up takes. A KEDA scaler-error alert whose threshold is
below the failureThreshold of a ScaledObject among the inputs: it fires on
errors KEDA itself tolerates.

Why it matters: batches arriving at minutes 0, 3, 10 and 14 kept the
reference system's queue above 0 for 15 minutes with nothing wrong.

Example:
    expr: haproxy_backend_current_queue > 0
    for: 15m

Instead:
    expr: haproxy_backend_current_queue > 20
    for: 15m
"#,
    run,
};

fn number(e: &Expr) -> Option<f64> {
    match e {
        Expr::NumberLiteral(n) => Some(n.val),
        Expr::Paren(p) => number(&p.expr),
        _ => None,
    }
}

fn run(ws: &Workspace, ctx: &Context, out: &mut Vec<Diagnostic>) {
    let min_fallback = ws.fallbacks.values().min().copied();
    for (e, expr) in parsed(ws) {
        let Role::Rule(rule) = &e.role else { continue };
        if rule.alert.is_none() {
            continue;
        }
        let Expr::Binary(b) = &expr else { continue };
        let Some(threshold) = number(&b.rhs) else {
            continue;
        };
        let gt = b.op.id() == token::T_GTR;
        let names = promql::metric_names(&b.lhs);
        let queue_gauge = names.iter().any(|n| {
            n.contains("queue")
                && ctx
                    .catalog
                    .get(n)
                    .is_some_and(|m| m.kind == MetricType::Gauge)
        });
        if gt && threshold == 0.0 && rule.for_.is_some() && queue_gauge {
            out.push(at(ws, e, CHECK.code, Severity::Warning, "`> 0` with `for` on a queue: healthy bursts keep a queue non-empty while scale-up runs".into(), "alert on a backlog the pool cannot absorb, e.g. `> 20` (about max × target)".into()));
        }
        let scaler_errors = names
            .iter()
            .any(|n| n.starts_with("keda_scaler") && n.contains("errors"));
        if let (true, true, Some(f)) = (gt, scaler_errors, min_fallback) {
            if threshold < f64::from(f) {
                out.push(at(ws, e, CHECK.code, Severity::Warning, format!("threshold {threshold} is below the fallback failureThreshold {f}: the alert fires on errors KEDA tolerates"), format!("alert on `> {f}` errors in the window")));
            }
        }
    }
}
