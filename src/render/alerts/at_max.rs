//! PoolAtMaxReplicas: the autoscaler is pinned at max while builds wait.

use super::recording::{read, DEMAND, TARGET};
use super::{Ctx, Doc};
use crate::render::rules::{Alert, Scenario};
use crate::spec::Seconds;

pub const NAME: &str = "PoolAtMaxReplicas";

pub const DOC: Doc = Doc {
    name: NAME,
    summary: "Desired replicas at max while demand exceeds max, for at_max_for.",
    text: r#"
What it does: fires when the HPA's desired replicas are at max AND demand
(builds running + queued) exceeds what max pods run, at every evaluation
for alerts.at_max_for.

Why it matters: builds queue behind the ceiling; raise max (the NodePool
limits follow) if this is the new normal.

Example (fires): demand of max + 4 for an hour.
Example (quiet): a burst fills the pool for 10 minutes and drains; the
stabilization window then holds desired replicas at max for 20 more
minutes with nothing queued.

Instead: `desired >= max for 30m` alone measures the stabilization window:
desired stays at max for one window after demand falls, so with a 20m
window staging paged for every build of 26 minutes or longer, after the
queue had drained.

Default: at_max_for = the scale-down stabilization window + 10m (30m with
the default 1200s window), so even a max held over by the window cannot
fill it.
"#,
};

pub fn alert(ctx: &Ctx) -> Alert {
    let (p, max) = (&ctx.pool.name, ctx.pool.max);
    let capacity = max.saturating_mul(ctx.pool.scaling.target_sessions);
    let hold = ctx.pool.alerts.at_max_for.0;
    let on = {
        let mut labels: Vec<&str> = super::external(ctx.cluster)
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        labels.extend(["namespace", "pool"]);
        format!("on ({})", labels.join(", "))
    };
    let rule = ctx.rule(
        NAME,
        format!(
            "{} >= {max} and {on} {} > {capacity}",
            read(ctx.cluster, TARGET, p),
            read(ctx.cluster, DEMAND, p)
        ),
        Some(hold),
        format!("Pool {p} is pinned at its max of {max}"),
        format!(
            "The autoscaler has wanted all {max} workers of pool {p} for {}, with more builds than they run: builds queue beyond the ceiling. Raise max (the NodePool limits follow) if this is the new normal.",
            Seconds(hold).compact()
        ),
    );
    let minutes = (hold / 60) as u32;
    let long = minutes + 30;
    let series = |sessions: String, queue: String, target: String| {
        super::warm_deficit::series(
            ctx,
            &super::warm_deficit::Inputs {
                sessions: &sessions,
                queue: &queue,
                target: &target,
                allocated: &format!("{max}x{long}"),
            },
        )
    };
    let fired = ctx.fired(&rule, &[("namespace", ctx.ns()), ("pool", p)]);
    let min = ctx.pool.min;
    let [sessions, queue, target, _] = super::warm_deficit::bursts(min, max, 26, long);
    let join = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(" ");
    ctx.alert(
        rule,
        vec![
            Scenario {
                name: format!(
                    "{p}: a burst over max drains; the stabilization window holds desired at max"
                ),
                series: series(
                    format!("{}x10 2x{long}", capacity + 4),
                    format!("4x10 0x{long}"),
                    format!("{max}x{long}"),
                ),
                eval_minutes: u64::from(minutes) + 5,
                fires: None,
            },
            Scenario {
                name: format!("{p}: the seed's bursts with 26-minute builds"),
                series: series(join(&sessions), join(&queue), join(&target)),
                eval_minutes: u64::from(long) - 1,
                fires: None,
            },
            Scenario {
                name: format!("{p}: demand stays above max"),
                series: series(
                    format!("{}x{long}", capacity + 4),
                    format!("4x{long}"),
                    format!("{max}x{long}"),
                ),
                eval_minutes: u64::from(minutes) + 5,
                fires: Some(fired),
            },
        ],
    )
}
