//! P007: range windows too short to hold two samples.

use super::{parsed, Check};
use crate::diagnostic::{Diagnostic, Severity};
use crate::lint::{at, Context, Workspace};

pub const CHECK: Check = Check {
    code: "P007",
    name: "range-too-short",
    severity: Severity::Warning,
    summary: "A range selector shorter than twice the scrape interval.",
    doc: r#"
What it does: compares every range selector (`x[2m]`) with the scrape
interval of the catalog file or spec (default 60s).

Why it matters: `rate()` needs two samples in the window. With a 60s scrape,
`[1m]` often holds one, and the result is empty at random.

Example:
    expr: rate(haproxy_backend_connection_errors_total[1m]) > 0

Instead:
    expr: rate(haproxy_backend_connection_errors_total[5m]) > 0
"#,
    run,
};

fn run(ws: &Workspace, ctx: &Context, out: &mut Vec<Diagnostic>) {
    let min = ctx.scrape_interval * 2;
    for (e, expr) in parsed(ws) {
        let mut ranges = Vec::new();
        collect(expr, &mut ranges);
        for range in ranges {
            if range < min {
                out.push(at(
                    ws,
                    e,
                    CHECK.code,
                    CHECK.severity,
                    format!(
                        "a {range}s window holds fewer than two samples at a {}s scrape interval",
                        ctx.scrape_interval
                    ),
                    format!("use a window of at least {min}s (4× the interval is safer)"),
                ));
            }
        }
    }
}

fn collect(expr: &promql_parser::parser::Expr, out: &mut Vec<u64>) {
    use promql_parser::parser::Expr;
    match expr {
        Expr::MatrixSelector(m) => out.push(m.range.as_secs()),
        Expr::Aggregate(a) => collect(&a.expr, out),
        Expr::Unary(u) => collect(&u.expr, out),
        Expr::Paren(p) => collect(&p.expr, out),
        Expr::Subquery(s) => collect(&s.expr, out),
        Expr::Binary(b) => {
            collect(&b.lhs, out);
            collect(&b.rhs, out);
        }
        Expr::Call(c) => c.args.args.iter().for_each(|a| collect(a, out)),
        _ => {}
    }
}
