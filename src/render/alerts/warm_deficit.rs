//! PoolWarmDeficit: a pool runs without its warm floor.

use super::recording::{read, DEFICIT};
use super::{Ctx, Doc};
use crate::render::rules::{Alert, Scenario};
use crate::spec::Seconds;

pub const NAME: &str = "PoolWarmDeficit";

pub const DOC: Doc = Doc {
    name: NAME,
    summary:
        "Warm workers a pool should have and does not, for warm_deficit_for: new builds start cold.",
    text: r#"
What it does: records, per pool,
    warm_deficit = max(0, min(demand + floor, target) − max(allocated, demand))
with demand = builds running + queued on the LB
(`haproxy_backend_current_sessions`), floor = the HPA's min replicas, target
= the HPA's desired replicas, allocated = the Deployment's available
replicas. Fires when it stays above 0 for alerts.warm_deficit_for.

Why it matters: the floor keeps pods with a warm layer cache ready. A
squeezed floor (pods that cannot be scheduled, nodes that never come up)
shows here before builds slow down.

Example (fires): min 2, no load, 1 pod available for 20 minutes.
Example (quiet): 4 pods all busy, 2 builds queued, 2 pods Pending: the
deficit is 0. Raising allocated to demand before subtracting counts
pods still starting for queued builds as load starvation (the queue alert's
business), not warm-pool loss. Batches of 2 builds at minutes 0, 3, 10 and
14 with 7-minute pod starts stay at 0 the same way.

Instead: min(busy + floor, target) − allocated fires on every burst: while
pods start, the target exceeds the available replicas.

Default: warm_deficit_for = 15m: twice a node's start time, so a burst's
pods are ready before it fires.
"#,
};

/// Input series of the deficit, as stored: sessions and queue from the
/// LB's scrape, desired/min/available from kube-state-metrics.
pub struct Inputs<'a> {
    pub sessions: &'a str,
    pub queue: &'a str,
    pub target: &'a str,
    pub allocated: &'a str,
}

pub fn series(ctx: &Ctx, inputs: &Inputs) -> Vec<(String, String)> {
    let (ns, app, p) = (ctx.ns(), &ctx.cluster.app, &ctx.pool.name);
    let backend = format!("bk_{p}");
    let hpa = format!("keda-hpa-{app}-{p}");
    let deployment = format!("{app}-{p}");
    let (lb, ksm) = (&ctx.scrapes.haproxy, &ctx.scrapes.kube_state_metrics);
    let hpa_labels = [("namespace", ns), ("horizontalpodautoscaler", hpa.as_str())];
    vec![
        (
            ctx.stored(
                lb,
                "haproxy_backend_current_sessions",
                &[("proxy", &backend)],
            ),
            inputs.sessions.to_string(),
        ),
        (
            ctx.stored(lb, "haproxy_backend_current_queue", &[("proxy", &backend)]),
            inputs.queue.to_string(),
        ),
        (
            ctx.stored(
                ksm,
                "kube_horizontalpodautoscaler_status_desired_replicas",
                &hpa_labels,
            ),
            inputs.target.to_string(),
        ),
        (
            ctx.stored(
                ksm,
                "kube_horizontalpodautoscaler_spec_min_replicas",
                &hpa_labels,
            ),
            format!("{}x60", ctx.pool.min),
        ),
        (
            ctx.stored(
                ksm,
                "kube_deployment_status_replicas_available",
                &[("namespace", ns), ("deployment", deployment.as_str())],
            ),
            inputs.allocated.to_string(),
        ),
    ]
}

/// The seed's bursts on this pool, minute by minute: batches of 2 at
/// minutes 0, 3, 10 and 14, builds of `build` minutes, pods ready 7 minutes
/// after the autoscaler asks, a 20-minute stabilization window.
/// Returns (sessions, queue, target, allocated).
pub fn bursts(min: u32, max: u32, build: u32, minutes: u32) -> [Vec<u32>; 4] {
    let mut out: [Vec<u32>; 4] = Default::default();
    let (mut waiting, mut running): (u32, Vec<u32>) = (0, Vec::new());
    let mut raw: Vec<u32> = Vec::new();
    let mut targets: Vec<u32> = Vec::new();
    for t in 0..minutes {
        if [0, 3, 10, 14].contains(&t) {
            waiting += 2;
        }
        running.retain(|end| *end > t);
        let allocated = if t >= 7 {
            targets[(t - 7) as usize]
        } else {
            min
        };
        while (running.len() as u32) < allocated && waiting > 0 {
            running.push(t + build);
            waiting -= 1;
        }
        let demand = running.len() as u32 + waiting;
        raw.push(demand.clamp(min, max));
        let from = raw.len().saturating_sub(20);
        let target = raw[from..].iter().copied().max().unwrap_or(min);
        targets.push(target);
        for (i, v) in [demand, waiting, target, allocated].into_iter().enumerate() {
            out[i].push(v);
        }
    }
    out
}

fn join(values: &[u32]) -> String {
    values
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn alert(ctx: &Ctx) -> Alert {
    let p = &ctx.pool.name;
    let hold = ctx.pool.alerts.warm_deficit_for.0;
    let rule = ctx.rule(
        NAME,
        format!("{} > 0", read(ctx.cluster, DEFICIT, p)),
        Some(hold),
        format!("Pool {p} runs without its warm floor"),
        format!(
            "Pool {p} has had fewer available workers than min(demand + floor, target) for {}: new builds start cold. Check for pods that cannot be scheduled or nodes that do not come up.",
            Seconds(hold).compact()
        ),
    );
    let (min, max) = (ctx.pool.min, ctx.pool.max);
    let minutes = hold / 60;
    // 4 pods (fewer on a small pool) all busy, 2 builds queued, 2 pods Pending.
    let busy = max.saturating_sub(2).min(min.max(4)).max(1);
    let starved = series(
        ctx,
        &Inputs {
            sessions: &format!("{}x60", busy + 2),
            queue: "2x60",
            target: &format!("{}x60", (busy + 2).min(max)),
            allocated: &format!("{busy}x60"),
        },
    );
    let [sessions, queue, target, allocated] = bursts(min, max, 20, 45);
    let burst = series(
        ctx,
        &Inputs {
            sessions: &join(&sessions),
            queue: &join(&queue),
            target: &join(&target),
            allocated: &join(&allocated),
        },
    );
    let lost = series(
        ctx,
        &Inputs {
            sessions: "0x60",
            queue: "0x60",
            target: &format!("{min}x60"),
            allocated: &format!("{}x60", min.saturating_sub(1)),
        },
    );
    let fired = ctx.fired(&rule, &[("namespace", ctx.ns()), ("pool", p)]);
    let mut scenarios = vec![Scenario {
        name: format!(
            "{p}: all pods busy, builds queued, pods Pending is starvation, not a warm deficit"
        ),
        series: starved,
        eval_minutes: minutes + 5,
        fires: None,
    }];
    // Evaluate along the whole burst: quiet at each step.
    for eval in [15, 20, 25, 30, 35, 40] {
        scenarios.push(Scenario {
            name: format!("{p}: the seed's bursts at minute {eval}"),
            series: burst.clone(),
            eval_minutes: eval,
            fires: None,
        });
    }
    scenarios.push(Scenario {
        name: format!("{p}: a floor pod is missing for good"),
        series: lost,
        eval_minutes: minutes + 5,
        fires: Some(fired),
    });
    ctx.alert(rule, scenarios)
}
