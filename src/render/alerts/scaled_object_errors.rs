//! PoolScaledObjectErrors: KEDA fails a pool's ScaledObject for a reason
//! other than its scaler.

use super::scaler_errors::{count_at_least, metric as scaler_metric, window};
use super::{Ctx, Doc};
use crate::catalog::Version;
use crate::render::rules::{Alert, Scenario};
use crate::spec::Seconds;

pub const NAME: &str = "PoolScaledObjectErrors";

pub const DOC: Doc = Doc {
    name: NAME,
    summary: "ScaledObject errors reached failureThreshold in the error window while its scaler recorded none.",
    text: r#"
What it does: counts `keda_scaled_object_errors_total` (KEDA 2.14+;
`keda_scaled_object_errors` before) of the pool's ScaledObject over the
error window, as PoolScalerErrors counts scaler errors, and fires at
failureThreshold or more, unless the scaler itself recorded errors in the
same window.

Why it matters: errors of the ScaledObject that are not scaler errors are
reconcile failures (a missing target, a bad spec): KEDA does not manage the
pool at all.

Page once: every scaler error also increments the ScaledObject counter
(KEDA's RecordScalerError calls RecordScaledObjectError, and the polling
loop records each failed trigger against the ScaledObject again), so
without the `unless` one broken metric source pages twice.

Example (fires): reconcile errors every minute, the scaler quiet.
Example (quiet): the scaler fails every minute (PoolScalerErrors pages);
one reconcile error that recovers.

Instead: a second `increase(…) > F` on the ScaledObject counter pages for
every scaler outage as well.

Default: the window and threshold of PoolScalerErrors.
"#,
};

pub fn metric(version: Version) -> &'static str {
    if version >= Version::new(2, 14) {
        "keda_scaled_object_errors_total"
    } else {
        "keda_scaled_object_errors"
    }
}

pub fn alert(ctx: &Ctx) -> Alert {
    let p = &ctx.pool.name;
    let version = ctx.cluster.exporters.keda;
    let f = ctx.pool.failure_threshold;
    let so = &ctx.pool.workload;
    let ns = ctx.keda_namespace_label();
    let w = Seconds(window(ctx)).compact();
    let on = {
        let mut labels: Vec<&str> = super::external(ctx.cluster)
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        labels.extend([ns, "scaledObject"]);
        format!("on ({})", labels.join(", "))
    };
    let scaler = format!(
        "sum {} (increase({}{}[{w}])) > 0",
        ctx.by(&[ns, "scaledObject"]),
        scaler_metric(version),
        ctx.scope(&[
            format!(r#"{ns}="{}""#, ctx.ns()),
            format!(r#"scaledObject="{so}""#)
        ])
    );
    let rule = ctx.rule(
        NAME,
        format!(
            "{} unless {on} {scaler}",
            count_at_least(ctx, metric(version), "scaledObject", so, f)
        ),
        None,
        format!("KEDA cannot reconcile the ScaledObject of pool {p}"),
        format!("The ScaledObject {so} failed {f} times or more in {w} while its scaler reported no error. `kubectl describe` it for the reason."),
    );
    let keda = &ctx.scrapes.keda;
    let object = ctx.stored(
        keda,
        metric(version),
        &[("namespace", ctx.ns()), ("scaledObject", so)],
    );
    let mut exposed: Vec<(&str, &str)> = vec![
        ("namespace", ctx.ns()),
        ("metric", "s0-trigger"),
        ("scaledObject", so),
        ("scaler", "trigger"),
    ];
    exposed.extend(ctx.keda_trigger_labels("scaledobject"));
    let scaler_series = ctx.stored(keda, scaler_metric(version), &exposed);
    let fired = ctx.fired(&rule, &[(ns, ctx.ns()), ("scaledObject", so)]);
    ctx.alert(
        rule,
        vec![
            Scenario {
                name: format!("{p}: one reconcile error that recovers"),
                series: vec![
                    (object.clone(), "0x5 1x30".to_string()),
                    (scaler_series.clone(), "0x36".to_string()),
                ],
                eval_minutes: 15,
                fires: None,
            },
            Scenario {
                name: format!("{p}: the scaler fails every minute; only PoolScalerErrors pages"),
                series: vec![
                    (object.clone(), "0+2x30".to_string()),
                    (scaler_series.clone(), "0+1x30".to_string()),
                ],
                eval_minutes: 20,
                fires: None,
            },
            Scenario {
                name: format!("{p}: reconciles keep failing"),
                series: vec![
                    (object, "0+1x30".to_string()),
                    (scaler_series, "0x31".to_string()),
                ],
                eval_minutes: 20,
                fires: Some(fired),
            },
        ],
    )
}
