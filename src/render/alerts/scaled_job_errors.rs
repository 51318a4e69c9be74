//! PoolScaledJobErrors: KEDA fails a jobs pool's ScaledJob.

use super::scaler_errors::{count_at_least, window};
use super::{Ctx, Doc};
use crate::catalog::Version;
use crate::render::rules::{Alert, Scenario};
use crate::spec::Seconds;

pub const NAME: &str = "PoolScaledJobErrors";

pub const DOC: Doc = Doc {
    name: NAME,
    summary: "ScaledJob errors reached failureThreshold within the error window.",
    text: r#"
What it does: counts `keda_scaled_job_errors_total` (KEDA 2.14+;
`keda_scaled_job_errors` in 2.13) of the pool's ScaledJob over the error
window and fires at failureThreshold or more. Not generated for KEDA older
than 2.13, which has no such counter.

Why it matters: a ScaledJob that fails creates no Jobs: pending work waits.

Page once: KEDA records a ScaledJob's scaler errors on the scaler counter
and on the ScaledObject counter (under the ScaledJob's name), never on this
one, so a failing trigger pages through PoolScalerErrors only.

Example (fires): the ScaledJob fails every minute.
Example (quiet): one error that recovers.

Instead: `> 0` pages on one recovered error.

Default: the window and threshold of PoolScalerErrors.
"#,
};

pub fn alert(ctx: &Ctx) -> Option<Alert> {
    let version = ctx.cluster.exporters.keda;
    let metric = if version >= Version::new(2, 14) {
        "keda_scaled_job_errors_total"
    } else if version >= Version::new(2, 13) {
        "keda_scaled_job_errors"
    } else {
        return None;
    };
    let p = &ctx.pool.name;
    let f = ctx.pool.failure_threshold;
    let name = &ctx.pool.workload;
    let w = Seconds(window(ctx)).compact();
    let rule = ctx.rule(
        NAME,
        count_at_least(ctx, metric, "scaledJob", name, f),
        None,
        format!("KEDA cannot reconcile the ScaledJob of pool {p}"),
        format!("The ScaledJob {name} failed {f} times or more in {w}. `kubectl describe` it for the reason."),
    );
    let errors = ctx.stored(
        &ctx.scrapes.keda,
        metric,
        &[("namespace", ctx.ns()), ("scaledJob", name)],
    );
    let ns = ctx.keda_namespace_label();
    let fired = ctx.fired(&rule, &[(ns, ctx.ns()), ("scaledJob", name)]);
    Some(ctx.alert(
        rule,
        vec![
            Scenario {
                name: format!("{p}: one reconcile error that recovers"),
                series: vec![(errors.clone(), "0x5 1x30".to_string())],
                eval_minutes: 15,
                fires: None,
            },
            Scenario {
                name: format!("{p}: reconciles keep failing"),
                series: vec![(errors, "0+1x30".to_string())],
                eval_minutes: 20,
                fires: Some(fired),
            },
        ],
    ))
}
