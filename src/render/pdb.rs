//! A PodDisruptionBudget per pool, so node drains (upgrades, consolidation)
//! take at most one busy builder at a time. KEDA's own scale-down deletes
//! pods without eviction; the drain hook and grace period cover that path.

use serde::Serialize;

use super::k8s::{pool_labels, pool_selector, LabelSelector, ObjectMeta};
use super::{yaml_file, RenderError};
use crate::fileset::File;
use crate::model::{Cluster, Pool};
use crate::spec::Mode;

pub const FILE: &str = "pdb.yaml";

pub fn render(cluster: &Cluster) -> Result<Vec<File>, RenderError> {
    let budgets: Vec<PodDisruptionBudget> =
        cluster.pools.iter().map(|p| budget(cluster, p)).collect();
    Ok(vec![yaml_file(cluster, FILE, &budgets)?])
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PodDisruptionBudget {
    api_version: &'static str,
    kind: &'static str,
    metadata: ObjectMeta,
    spec: Spec,
}

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
        // absolute minAvailable for them. At `max` no running agent is ever
        // evicted: it finishes its job and exits.
        Mode::Jobs => (None, Some(pool.max)),
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
