//! PoolPendingJobs: work for a jobs pool waits for agents.

use super::{foreign, scope_expr, Ctx, Doc};
use crate::model::Jobs;
use crate::promql;
use crate::render::rules::{Alert, Scenario};
use crate::spec::Seconds;

pub const NAME: &str = "PoolPendingJobs";

pub const DOC: Doc = Doc {
    name: NAME,
    summary: "The jobs pool's pending-work query stays above pending_jobs for pending_jobs_for.",
    text: r#"
What it does: fires when the ScaledJob's own trigger query (the pending
work, such as `sum(buildkite_queues_scheduled_jobs_count{queue="default"})`)
stays above alerts.pending_jobs for alerts.pending_jobs_for. When a central
ruler evaluates the rules, every selector of the query carries this
cluster's external labels and every aggregation keeps them.

Why it matters: KEDA creates one Job per unit of pending work; work that
stays pending means the ScaledJob is at max or its pods cannot start.

Example (fires): 25 jobs pending for 20 minutes on a pool of max 10.
Example (quiet): a batch of 20 jobs that drains within 10 minutes; on a
central ruler, 10 pending here while another cluster has 15.

Instead: the bare `sum(…)` on a central ruler adds every cluster's pending
work: staging's 10 plus another cluster's 15 paged staging.

Default: pending_jobs = 2 × max (a full pool's worth of work waiting behind
a full pool); pending_jobs_for = 15m.
"#,
};

pub fn alert(ctx: &Ctx, jobs: &Jobs) -> Alert {
    let (p, t) = (&ctx.pool.name, ctx.pool.alerts.pending_jobs);
    let hold = ctx.pool.alerts.pending_jobs_for.0;
    let query = scope_expr(ctx.cluster, &jobs.query);
    let rule = ctx.rule(
        NAME,
        format!("({query}) > {t}"),
        Some(hold),
        format!("Jobs for pool {p} wait for agents"),
        format!(
            "More than {t} jobs have been pending for {}: pool {p} (max {}) does not start agents fast enough. Check the ScaledJob and node capacity.",
            Seconds(hold).compact(),
            ctx.pool.max
        ),
    );
    let minutes = hold / 60;
    // A scenario needs input series that make the query's value known:
    // a single selector with equality matchers, under at most one
    // sum/max/min/avg. Anything else is tested by the user's own rules.
    let Some(series) = single_series(&query) else {
        return ctx.alert(rule, Vec::new());
    };
    let from_expr: Vec<(String, String)> = super::external(ctx.cluster).to_vec();
    let from_expr: Vec<(&str, &str)> = from_expr
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let fired = ctx.fired(&rule, &from_expr);
    let mut scenarios = vec![
        Scenario {
            name: format!("{p}: a batch of {} jobs drains within 10m", t * 2),
            series: vec![(series.clone(), format!("{}x10 0x{}", t * 2, minutes + 10))],
            eval_minutes: minutes + 5,
            fires: None,
        },
        Scenario {
            name: format!("{p}: jobs stay pending"),
            series: vec![(series.clone(), format!("{}x{}", t + 5, minutes + 10))],
            eval_minutes: minutes + 5,
            fires: Some(fired),
        },
    ];
    if let Some(other) = foreign(&series, ctx.cluster) {
        scenarios.push(Scenario {
            name: format!("{p}: another cluster's pending work is not this pool's"),
            series: vec![
                (series, format!("{}x{}", t / 2 + 1, minutes + 10)),
                (other, format!("{}x{}", t, minutes + 10)),
            ],
            eval_minutes: minutes + 5,
            fires: None,
        });
    }
    ctx.alert(rule, scenarios)
}

/// The one input series whose value is the query's value, if the query is
/// `sel`, or `agg(sel)` with agg in sum/max/min/avg and only `=` matchers.
fn single_series(query: &str) -> Option<String> {
    use promql_parser::label::MatchOp;
    use promql_parser::parser::Expr;
    let expr = promql::parse(query).ok()?;
    let inner = match &expr {
        Expr::Aggregate(a)
            if ["sum", "max", "min", "avg"].contains(&a.op.to_string().as_str())
                && a.param.is_none() =>
        {
            &*a.expr
        }
        other => other,
    };
    let Expr::VectorSelector(vs) = inner else {
        return None;
    };
    let name = vs.name.as_deref()?;
    let mut matchers: Vec<String> = promql::label_matchers(vs)
        .map(|m| match m.op {
            MatchOp::Equal => Some(format!(r#"{}="{}""#, m.name, m.value)),
            _ => None,
        })
        .collect::<Option<_>>()?;
    matchers.sort();
    Some(format!("{name}{{{}}}", matchers.join(", ")))
}
