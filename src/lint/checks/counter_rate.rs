//! P006: counters read raw, and rate/increase over gauges.

use promql_parser::parser::{token, Expr};

use super::{parsed, Check};
use crate::catalog::MetricType;
use crate::diagnostic::{Diagnostic, Severity};
use crate::lint::{at, inputs::Expression, Context, Workspace};
use crate::promql;

pub const CHECK: Check = Check {
    code: "P006",
    name: "counter-gauge-misuse",
    severity: Severity::Error,
    summary: "rate()/increase() over a gauge, or a counter compared without rate()/increase().",
    doc: r#"
What it does: uses the catalog's metric types. `rate`, `irate` and `increase`
over a gauge are errors (they treat every drop as a counter reset), and a
warning over a timestamp gauge (`..._timestamp_seconds`), which only rises
while its process runs and restarts from 0 as a counter does. A counter
read without `rate`, `irate`, `increase`, `resets` or `changes` is a warning:
its raw value depends on when the process last restarted. Series only
counted (`count`, `group`) or on the right of `and`/`unless`, which lends
only its label sets, have no value read.

Why it matters: `keda_resource_registered_total` is a gauge despite its name;
`rate()` of it is nonsense. `keda_scaler_detail_errors_total > 3` fires
forever once three errors ever happened.

Example:
    expr: keda_scaled_object_errors_total > 3

Instead:
    expr: increase(keda_scaled_object_errors_total[15m]) > 3
"#,
    run,
};

const RATES: &[&str] = &["rate", "irate", "increase"];
const COUNTER_OK: &[&str] = &[
    "rate",
    "irate",
    "increase",
    "resets",
    "changes",
    "absent",
    "absent_over_time",
    "present_over_time",
    "timestamp",
];

fn walk(
    ws: &Workspace,
    ctx: &Context,
    e: &Expression,
    expr: &Expr,
    under: Option<&str>,
    out: &mut Vec<Diagnostic>,
) {
    match expr {
        Expr::Call(c) => {
            let name = c.func.name;
            // Relabeling passes values through untouched.
            let next = if matches!(name, "label_replace" | "label_join") {
                under
            } else {
                Some(name)
            };
            for arg in &c.args.args {
                walk(ws, ctx, e, arg, next, out);
            }
        }
        Expr::Aggregate(a) => {
            // count()/group() do not read values.
            let op = a.op.to_string();
            let next = if op == "count" || op == "group" {
                Some("count")
            } else {
                under
            };
            walk(ws, ctx, e, &a.expr, next, out);
        }
        Expr::Paren(p) => walk(ws, ctx, e, &p.expr, under, out),
        Expr::Unary(u) => walk(ws, ctx, e, &u.expr, under, out),
        Expr::Subquery(s) => walk(ws, ctx, e, &s.expr, under, out),
        Expr::Binary(b) => {
            // Under count() only a filtering comparison reads values; the
            // right side of `and`/`unless` only ever lends its label sets.
            let counted = under == Some("count") && !b.op.is_comparison_operator();
            let lhs = counted.then_some("count");
            let rhs = match b.op.id() {
                token::T_LAND | token::T_LUNLESS => Some("count"),
                _ => lhs,
            };
            walk(ws, ctx, e, &b.lhs, lhs, out);
            walk(ws, ctx, e, &b.rhs, rhs, out);
        }
        Expr::VectorSelector(_) | Expr::MatrixSelector(_) => {
            let vs = match expr {
                Expr::MatrixSelector(m) => &m.vs,
                Expr::VectorSelector(v) => v,
                _ => return,
            };
            let Some(name) = promql::metric_name(vs) else {
                return;
            };
            let Some(entry) = ctx.catalog.get(name) else {
                return;
            };
            match (entry.kind, under) {
                // A timestamp only rises while its process runs, and starts
                // again from 0 when it restarts, as a counter does: its
                // rate is the progress per second (how far a queue keeps up).
                (MetricType::Gauge, Some(f)) if RATES.contains(&f) && is_timestamp(name) => {
                    out.push(at(
                        ws,
                        e,
                        CHECK.code,
                        Severity::Warning,
                        format!("`{f}()` over `{name}`, a timestamp gauge: right only while it never falls"),
                        format!("`deriv({name}[5m])` reads its change whichever way it moves"),
                    ))
                }
                (MetricType::Gauge, Some(f)) if RATES.contains(&f) => out.push(at(
                    ws,
                    e,
                    CHECK.code,
                    Severity::Error,
                    format!("`{f}()` over `{name}`, which is a gauge"),
                    format!("use `{name}` directly, or `deriv()`/`delta()` for its change"),
                )),
                (MetricType::Counter, f)
                    if !f.is_some_and(|f| COUNTER_OK.contains(&f) || f == "count") =>
                {
                    out.push(at(
                        ws,
                        e,
                        CHECK.code,
                        Severity::Warning,
                        format!("counter `{name}` is read without rate() or increase()"),
                        format!("use `increase({name}[15m])` or `rate({name}[5m])`"),
                    ))
                }
                _ => {}
            }
        }
        _ => {}
    }
}

/// A gauge that holds a point in time (`..._timestamp_seconds`).
fn is_timestamp(name: &str) -> bool {
    ["_timestamp_seconds", "_timestamp_in_seconds", "_timestamp"]
        .iter()
        .any(|s| name.ends_with(s))
}

fn run(ws: &Workspace, ctx: &Context, out: &mut Vec<Diagnostic>) {
    for (e, expr) in parsed(ws) {
        walk(ws, ctx, e, expr, None, out);
    }
}
