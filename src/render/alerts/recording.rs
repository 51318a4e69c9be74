//! Recording rules: one series per pool and quantity, each with a `pool`
//! label whatever its source's label, so alerts and panels read the same
//! numbers.
//!
//! `haproxy_backend_current_sessions` counts running AND queued connections
//! (HAProxy counts a stream on the backend when it is assigned, before it
//! queues: 4 running + 3 queued read 7). It is therefore recorded as
//! demand; busy workers are demand minus the queue.

use super::{by, external, scope};
use crate::model::Cluster;
use crate::render::rules::Rule;

/// Builds running plus builds queued on the LB: the autoscaler's input.
pub const DEMAND: &str = "poolc:pool_demand:sessions";
/// Builds running: demand minus the queue.
pub const BUSY: &str = "poolc:pool_busy:sessions";
pub const QUEUE: &str = "poolc:pool_queue:connections";
pub const TARGET: &str = "poolc:pool_target:replicas";
pub const ALLOCATED: &str = "poolc:pool_allocated:replicas";
pub const FLOOR: &str = "poolc:pool_floor:replicas";
pub const DEFICIT: &str = "poolc:pool_warm_deficit:replicas";

/// Every recorded name, for whoever must know what the rules provide.
pub const ALL: &[&str] = &[DEMAND, BUSY, QUEUE, TARGET, ALLOCATED, FLOOR, DEFICIT];

/// The matchers a recorded series is read with: this pool in this
/// namespace (and this cluster, when central).
pub fn read(cluster: &Cluster, name: &str, pool: &str) -> String {
    format!(
        "{name}{}",
        scope(
            cluster,
            &[
                format!(r#"namespace="{}""#, cluster.namespace),
                format!(r#"pool="{pool}""#)
            ]
        )
    )
}

/// `label_replace` that turns a source label carrying `<prefix><pool>` into
/// `pool`; `ns_label` is where the workload's namespace is stored.
fn normalize(
    cluster: &Cluster,
    metric: &str,
    ns_label: &str,
    label: &str,
    prefix: &str,
    pools: &[&str],
) -> String {
    let names: Vec<String> = pools.iter().map(|p| format!("{prefix}{p}")).collect();
    let selector = scope(
        cluster,
        &[
            format!(r#"{ns_label}="{}""#, cluster.namespace),
            format!(r#"{label}=~"{}""#, names.join("|")),
        ],
    );
    let mut inner =
        format!(r#"label_replace({metric}{selector}, "pool", "$1", "{label}", "{prefix}(.+)")"#);
    if ns_label != "namespace" {
        inner = format!(r#"label_replace({inner}, "namespace", "$1", "{ns_label}", "(.+)")"#);
    }
    format!("sum {} ({inner})", by(cluster, &["namespace", "pool"]))
}

pub fn rules(cluster: &Cluster) -> Vec<Rule> {
    let pools: Vec<&str> = cluster
        .pools
        .iter()
        .filter(|p| p.lb.is_some())
        .map(|p| p.name.as_str())
        .collect();
    if pools.is_empty() {
        return Vec::new();
    }
    let app = &cluster.app;
    let ksm_ns = if cluster.monitoring.ksm_honor_labels {
        "namespace"
    } else {
        "exported_namespace"
    };
    let record = |name: &str, expr: String| Rule {
        record: Some(name.to_string()),
        expr,
        ..Default::default()
    };
    // Recorded series match one to one on these labels.
    let on = {
        let mut labels: Vec<&str> = external(cluster).iter().map(|(k, _)| k.as_str()).collect();
        labels.extend(["namespace", "pool"]);
        format!("on ({})", labels.join(", "))
    };
    let hpa = format!("keda-hpa-{app}-");
    let deployment = format!("{app}-");
    vec![
        record(
            DEMAND,
            normalize(
                cluster,
                "haproxy_backend_current_sessions",
                "namespace",
                "proxy",
                "bk_",
                &pools,
            ),
        ),
        record(
            QUEUE,
            normalize(
                cluster,
                "haproxy_backend_current_queue",
                "namespace",
                "proxy",
                "bk_",
                &pools,
            ),
        ),
        record(BUSY, format!("clamp_min({DEMAND} - {on} {QUEUE}, 0)")),
        record(
            TARGET,
            normalize(
                cluster,
                "kube_horizontalpodautoscaler_status_desired_replicas",
                ksm_ns,
                "horizontalpodautoscaler",
                &hpa,
                &pools,
            ),
        ),
        record(
            ALLOCATED,
            normalize(
                cluster,
                "kube_deployment_status_replicas_available",
                ksm_ns,
                "deployment",
                &deployment,
                &pools,
            ),
        ),
        record(
            FLOOR,
            normalize(
                cluster,
                "kube_horizontalpodautoscaler_spec_min_replicas",
                ksm_ns,
                "horizontalpodautoscaler",
                &hpa,
                &pools,
            ),
        ),
        // max(0, min(demand + floor, target) − max(allocated, demand)).
        // Raising allocated to demand keeps load starvation (pods pending
        // or starting for queued builds) out of the warm deficit: only warm
        // pods missing beyond the work in hand count.
        record(
            DEFICIT,
            format!(
                "clamp_min((({DEMAND} + {on} {FLOOR} < {on} {TARGET}) or {on} {TARGET}) - {on} (({ALLOCATED} > {on} {DEMAND}) or {on} {DEMAND}), 0)"
            ),
        ),
    ]
}
