//! A PodDisruptionBudget per pool, so node drains (upgrades, consolidation)
//! take at most one busy builder at a time. KEDA's own scale-down deletes
//! pods without eviction; the drain hook and grace period cover that path.
//! One for the LB too: every running build passes through its one pod.

use serde::Serialize;

use super::haproxy::lb_selector;
use super::k8s::{managed_labels, pool_labels, pool_selector, LabelSelector, Manifest, ObjectMeta};
use super::{yaml_file, RenderError};
use crate::fileset::File;
use crate::model::{Cluster, Pool};
use crate::spec::Mode;

pub const FILE: &str = "pdb.yaml";

pub fn render(cluster: &Cluster) -> Result<Vec<File>, RenderError> {
    let mut budgets: Vec<PodDisruptionBudget> =
        cluster.pools.iter().map(|p| budget(cluster, p)).collect();
    if cluster.pools.iter().any(|p| p.lb.is_some()) {
        budgets.push(lb_budget(cluster));
    }
    Ok(vec![yaml_file(cluster, FILE, &budgets)?])
}

type PodDisruptionBudget = Manifest<Spec>;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Spec {
    #[serde(skip_serializing_if = "Option::is_none")]
    max_unavailable: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    min_available: Option<u32>,
    selector: LabelSelector,
}

fn budget(cluster: &Cluster, pool: &Pool) -> PodDisruptionBudget {
    let (max_unavailable, min_available) = match pool.mode {
        Mode::Service => (Some(1), None),
        // Job pods have no scalable controller, so Kubernetes accepts only an
        // absolute minAvailable for them. Evictions above the warm floor are
        // allowed (a budget that never allows one keeps kube-prometheus'
        // KubePdbNotEnoughHealthyPods firing whenever the pool is not full);
        // a running agent is kept by its karpenter.sh/do-not-disrupt.
        Mode::Jobs => (None, Some(pool.min)),
    };
    PodDisruptionBudget {
        api_version: "policy/v1",
        kind: "PodDisruptionBudget",
        metadata: ObjectMeta::named(&pool.workload, Some(&cluster.namespace))
            .with_labels(pool_labels(cluster, pool)),
        spec: Spec {
            max_unavailable,
            min_available,
            selector: LabelSelector {
                match_labels: pool_selector(pool),
            },
        },
    }
}

/// No voluntary eviction of the LB: draining its node would cut every
/// running build. Replace it by deleting the pod, which soft-stops it.
fn lb_budget(cluster: &Cluster) -> PodDisruptionBudget {
    let mut labels = managed_labels(&[("app.kubernetes.io/part-of", &cluster.app)]);
    labels.extend(lb_selector(cluster));
    PodDisruptionBudget {
        api_version: "policy/v1",
        kind: "PodDisruptionBudget",
        metadata: ObjectMeta::named(&cluster.lb.name, Some(&cluster.namespace)).with_labels(labels),
        spec: Spec {
            max_unavailable: None,
            min_available: Some(cluster.lb.replicas),
            selector: LabelSelector {
                match_labels: lb_selector(cluster),
            },
        },
    }
}
