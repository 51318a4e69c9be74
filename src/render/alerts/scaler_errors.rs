//! PoolScalerErrors: KEDA cannot read a pool's scaling metric.

use super::{Ctx, Doc};
use crate::catalog::Version;
use crate::model::{Cluster, Pool};
use crate::render::rules::{Alert, Scenario};
use crate::spec::Seconds;

pub const NAME: &str = "PoolScalerErrors";

pub const DOC: Doc = Doc {
    name: NAME,
    summary: "KEDA's scaler failed failureThreshold times within the error window.",
    text: r#"
What it does: counts KEDA's scaler errors of the pool's ScaledObject (or
ScaledJob) over the error window and fires when at least failureThreshold
were recorded:
    floor(sum by (namespace, scaledObject) (increase(<scaler errors>[W]))) >= F
The counter is `keda_scaler_detail_errors_total` from KEDA 2.14
(`keda_scaler_errors` before), selected on KEDA's own `namespace` label,
which the KEDA ServiceMonitor keeps with `honorLabels: true`.

Why it matters: after failureThreshold consecutive failures KEDA pins the
pool at its fallback replicas (or, without a fallback, stops scaling it).

Threshold semantics: from KEDA 2.19 the HPA requests and the polling loop
share one failure count and record only errors that reach the HPA; once
the fallback engages they stop. A sustained outage therefore adds exactly F
to the counter, then nothing. `increase(…[15m]) > 3` over a counter that
went up by exactly 3 returns 3.0 when scrapes sit on the evaluation grid
and 3.107 when they sit 30s off it: the alert fires or not by scrape phase.
`increase()` never returns less than the increments between its samples
and extrapolates by at most two scrape intervals, so with
W ≥ (2F + 2) scrape intervals, floor(increase) is exactly the count for
counts below F and at least F from F on: `>= F` cannot flip on alignment.
Before 2.19 a sustained outage adds about one error per polling interval,
far above F either way.

Example (fires): the LB's metrics port is unreachable for 10 minutes; or,
on KEDA 2.19+, three failures followed by the fallback.
Example (quiet): one failed fetch that recovers; F − 1 failures.

Instead: `> 0 for 10m` fires on one recovered blip; `> F` never fires
reliably on 2.19+.

Default: W = the larger of 15m and (2F + 2) scrape intervals; F = the
pool's fallback.failure_threshold (3).
"#,
};

/// The scaler-error counter of the deployed KEDA.
pub fn metric(version: Version) -> &'static str {
    if version >= Version::new(2, 14) {
        "keda_scaler_detail_errors_total"
    } else {
        "keda_scaler_errors"
    }
}

/// The window KEDA error counters are read over.
pub fn window(ctx: &Ctx) -> u64 {
    error_window(ctx.cluster, ctx.pool)
}

/// `alerts.error_window`, or the larger of 15m and (2F + 2) scrape intervals.
pub fn error_window(cluster: &Cluster, pool: &Pool) -> u64 {
    pool.alerts.error_window.map(|w| w.0).unwrap_or_else(|| {
        let scrapes = 2 * u64::from(pool.failure_threshold) + 2;
        (scrapes * cluster.scrape_interval.0).max(900)
    })
}

/// `floor(sum by (ns, label) (increase(metric{ns, label}[W]))) >= F`.
pub fn count_at_least(ctx: &Ctx, metric: &str, label: &str, name: &str, at_least: u32) -> String {
    let ns = ctx.keda_namespace_label();
    format!(
        "floor(sum {} (increase({metric}{}[{}]))) >= {at_least}",
        ctx.by(&[ns, label]),
        ctx.scope(&[
            format!(r#"{ns}="{}""#, ctx.ns()),
            format!(r#"{label}="{name}""#)
        ]),
        Seconds(window(ctx)).compact()
    )
}

pub fn alert(ctx: &Ctx) -> Alert {
    let p = &ctx.pool.name;
    let metric = metric(ctx.cluster.exporters.keda);
    let f = ctx.pool.failure_threshold;
    let so = &ctx.pool.workload;
    let w = Seconds(window(ctx)).compact();
    let rule = ctx.rule(
        NAME,
        count_at_least(ctx, metric, "scaledObject", so, f),
        None,
        format!("The autoscaler of pool {p} cannot read its metric"),
        format!(
            "The scaler of {so} failed {f} times or more in {w}, KEDA's failure threshold{}. Check the trigger's source.",
            if ctx.pool.fallback.is_some() {
                ": the pool is pinned at its fallback replicas"
            } else {
                ", and the pool has no fallback: it stops scaling"
            }
        ),
    );
    let kind = if ctx.pool.jobs.is_some() {
        "scaledjob"
    } else {
        "scaledobject"
    };
    let trigger = ctx.keda_trigger_labels(kind);
    let mut exposed: Vec<(&str, &str)> = vec![
        ("namespace", ctx.ns()),
        ("metric", "s0-trigger"),
        ("scaledObject", so),
        ("scaler", "trigger"),
    ];
    exposed.extend(trigger);
    let errors = ctx.stored(&ctx.scrapes.keda, metric, &exposed);
    let series = |values: String| vec![(errors.clone(), values)];
    let ns = ctx.keda_namespace_label();
    let fired = ctx.fired(&rule, &[(ns, ctx.ns()), ("scaledObject", so)]);
    let below: Vec<String> = (0..f).map(|i| i.to_string()).collect();
    let upto: Vec<String> = (0..=f).map(|i| i.to_string()).collect();
    ctx.alert(
        rule,
        vec![
            Scenario {
                name: format!("{p}: one scaler error that recovers"),
                series: series("0x5 1x30".to_string()),
                eval_minutes: 15,
                fires: None,
            },
            Scenario {
                name: format!("{p}: {} failures, fewer than the threshold", f - 1),
                series: series(format!("0x5 {} {}x30", below.join(" "), f - 1)),
                eval_minutes: 12,
                fires: None,
            },
            Scenario {
                name: format!(
                    "{p}: {f} failures, then the fallback stops the counter (KEDA 2.19+)"
                ),
                series: series(format!("0x5 {} {f}x30", upto.join(" "))),
                eval_minutes: 12,
                fires: Some(fired.clone()),
            },
            Scenario {
                name: format!("{p}: the scaler fails every minute"),
                series: series("0+1x30".to_string()),
                eval_minutes: 20,
                fires: Some(fired),
            },
        ],
    )
}
