//! PoolQueueBacklog: builds pile up in front of a pool.

use super::recording::{read, QUEUE};
use super::{Ctx, Doc};
use crate::model::Backend;
use crate::render::rules::{Alert, Scenario};
use crate::spec::Seconds;

pub const NAME: &str = "PoolQueueBacklog";

pub const DOC: Doc = Doc {
    name: NAME,
    summary:
        "More builds have waited in a pool's LB queue than the pool absorbs, for queue_backlog_for.",
    text: r#"
What it does: fires when the LB backend's queue
(`haproxy_backend_current_queue{proxy="bk_<pool>"}`, recorded as
poolc:pool_queue:connections) stays above alerts.queue_backlog at every
evaluation for alerts.queue_backlog_for (15m). One evaluation at or below
the threshold resets it.

Why it matters: the queue is the scaling signal. A queue that outlasts
scale-up (7–8 minutes for a new node) means the pool is at max, its nodes
cannot start, or its workers do not become ready.

Example (fires): 25 builds queued on an 8-pod pool for 20 minutes.
Example (quiet): batches of 2 builds arriving at minutes 0, 3, 10 and 14
keep the queue at 2–6 for 20 minutes while pods start.

Instead: `> 0 for 15m` pages on those healthy bursts.

Default: queue_backlog = min(20, max × target_sessions). 20 is the
reference system's number, kept where the pool runs 20 builds or more at
once: fewer than one pool's worth of builds waiting for 15 minutes. A
smaller pool is saturated by a queue of its own capacity (8 on an 8-pod
pool: every build waits a whole build), so its threshold is its capacity.
queue_backlog_for = 15m: twice the time a new node takes to join.
"#,
};

pub fn alert(ctx: &Ctx, backend: &Backend) -> Alert {
    let (p, t) = (&ctx.pool.name, ctx.pool.alerts.queue_backlog);
    let hold = ctx.pool.alerts.queue_backlog_for.0;
    let rule = ctx.rule(
        NAME,
        format!("{} > {t}", read(ctx.cluster, QUEUE, p)),
        Some(hold),
        format!("Builds pile up in front of pool {p}"),
        format!(
            "More than {t} builds have waited in the {} queue for {}: more work arrives than pool {p} absorbs. Check whether it is at max or its nodes cannot start.",
            backend.backend,
            Seconds(hold).compact()
        ),
    );
    let queue = ctx.stored(
        &ctx.scrapes.haproxy,
        "haproxy_backend_current_queue",
        &[("proxy", &backend.backend)],
    );
    let series = |values: String| vec![(queue.clone(), values)];
    let minutes = hold / 60;
    let fired = ctx.fired(&rule, &[("namespace", ctx.ns()), ("pool", p)]);
    // Batches of 2 arriving at minutes 0, 3, 10 and 14 keep the queue
    // non-empty while scale-up takes 7–8 minutes: healthy. On a pool
    // smaller than the burst, the queue cannot exceed its own capacity
    // for long without being a backlog.
    let bursts: Vec<String> = [
        2, 2, 2, 4, 4, 4, 4, 4, 2, 2, 4, 4, 4, 4, 6, 6, 6, 4, 4, 2, 2,
    ]
    .iter()
    .map(|v: &u32| (*v).min(t).to_string())
    .chain(std::iter::once("0x10".to_string()))
    .collect();
    let scenarios = vec![
        Scenario {
            name: format!("{p}: healthy bursts queue a few builds for a while"),
            series: series(bursts.join(" ")),
            eval_minutes: 20,
            fires: None,
        },
        Scenario {
            name: format!(
                "{p}: a spike above {t} shorter than {}",
                Seconds(hold).compact()
            ),
            series: series(format!(
                "0 {}x{} 0x{}",
                t + 5,
                minutes.saturating_sub(5).max(1),
                minutes + 10
            )),
            eval_minutes: minutes + 5,
            fires: None,
        },
        Scenario {
            name: format!("{p}: the queue stays above {t}"),
            series: series(format!("{}x{}", t + 5, minutes + 10)),
            eval_minutes: minutes + 5,
            fires: Some(fired),
        },
    ];
    ctx.alert(rule, scenarios)
}
