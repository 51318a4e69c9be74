//! P014: comparisons with a number that the metric's values never satisfy.

use promql_parser::parser::{token, Expr};

use super::{parsed, Check};
use crate::diagnostic::{Diagnostic, Severity};
use crate::lint::{at, Context, ValueRange, Workspace};
use crate::promql;

pub const CHECK: Check = Check {
    code: "P014",
    name: "impossible-comparison",
    severity: Severity::Error,
    summary: "A comparison with a number outside the values the metric can take: it is never true.",
    doc: r#"
What it does: where the catalog bounds a metric's values (counters and their
rates are never below 0, `_info` series are always 1, state series such as
`keda_scaler_active`, `haproxy_backend_status{state}`, `up` and
kube-state-metrics `condition`/`phase` series are 0 or 1), follows the bounds
through `max`, `min`, `avg`, `*_over_time`, `rate` and `sum`, and reports a
filtering comparison with a number (`>`, `>=`, `<`, `<=`, `==`, `!=`) that
no value within them satisfies.

Why it matters: the comparison filters out every series, so the alert can
never fire: a 0/1 gauge is never `> 1`.

Example:
    expr: keda_scaler_active{scaledObject="builders"} > 1

Instead:
    expr: keda_scaler_active{scaledObject="builders"} == 1
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

/// The bounds of `expr`'s sample values, where the catalog knows them.
fn range(ctx: &Context, expr: &Expr) -> Option<ValueRange> {
    match expr {
        Expr::VectorSelector(vs) => promql::metric_name(vs)
            .and_then(|n| ctx.catalog.get(n))
            .and_then(|e| e.range),
        Expr::MatrixSelector(ms) => promql::metric_name(&ms.vs)
            .and_then(|n| ctx.catalog.get(n))
            .and_then(|e| e.range),
        Expr::Paren(p) => range(ctx, &p.expr),
        Expr::Call(c) => {
            let arg = |i: usize| c.args.args.get(i).and_then(|a| range(ctx, a));
            match c.func.name {
                "rate" | "irate" | "increase" => {
                    arg(0).filter(|r| r.min >= 0.0).map(|_| ValueRange {
                        min: 0.0,
                        max: f64::INFINITY,
                        why: "the rate of a counter",
                    })
                }
                "avg_over_time" | "min_over_time" | "max_over_time" | "last_over_time" => arg(0),
                "quantile_over_time" => arg(1),
                _ => None,
            }
        }
        Expr::Aggregate(a) => {
            let inner = range(ctx, &a.expr)?;
            match a.op.to_string().as_str() {
                "max" | "min" | "avg" | "topk" | "bottomk" | "quantile" => Some(inner),
                "sum" if inner.min >= 0.0 => Some(ValueRange {
                    min: 0.0,
                    max: f64::INFINITY,
                    why: "a sum of values never below 0",
                }),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Whether `value OP c` can hold for some value in `r`.
fn possible(op: token::TokenId, r: &ValueRange, c: f64) -> bool {
    match op {
        token::T_GTR => r.max > c,
        token::T_GTE => r.max >= c,
        token::T_LSS => r.min < c,
        token::T_LTE => r.min <= c,
        token::T_EQLC => r.min <= c && c <= r.max,
        token::T_NEQ => !(r.min == c && r.max == c),
        _ => true,
    }
}

/// The operator with its sides swapped: `c > x` is `x < c`.
fn flipped(op: token::TokenId) -> token::TokenId {
    match op {
        token::T_GTR => token::T_LSS,
        token::T_GTE => token::T_LTE,
        token::T_LSS => token::T_GTR,
        token::T_LTE => token::T_GTE,
        other => other,
    }
}

fn bounds(r: &ValueRange) -> String {
    if r.min == r.max {
        format!("always {}", r.min)
    } else if r.max.is_infinite() {
        format!("never below {}", r.min)
    } else {
        format!("between {} and {}", r.min, r.max)
    }
}

fn run(ws: &Workspace, ctx: &Context, out: &mut Vec<Diagnostic>) {
    for (e, expr) in parsed(ws) {
        let mut stack = vec![expr];
        while let Some(node) = stack.pop() {
            stack.extend(promql::children(node));
            let Expr::Binary(b) = node else { continue };
            if !b.op.is_comparison_operator() || b.return_bool() {
                continue;
            }
            let (op, vector, c, shown) = match (number(&b.lhs), number(&b.rhs)) {
                (None, Some(c)) => (b.op.id(), &b.lhs, c, format!("… {} {c}", b.op)),
                (Some(c), None) => (flipped(b.op.id()), &b.rhs, c, format!("{c} {} …", b.op)),
                _ => continue,
            };
            let Some(r) = range(ctx, vector) else {
                continue;
            };
            if possible(op, &r, c) {
                continue;
            }
            let names = promql::metric_names(vector).join(", ");
            out.push(at(
                ws,
                e,
                CHECK.code,
                CHECK.severity,
                format!(
                    "`{shown}` is never true: `{names}` is {}, {}, so this filters out every series",
                    r.why,
                    bounds(&r)
                ),
                format!("compare with a value the series can take ({})", bounds(&r)),
            ));
        }
    }
}
