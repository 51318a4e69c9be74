//! The cluster's Namespace, so `kubectl apply -k generated/<cluster>` works
//! on a fresh cluster: every other namespaced object poolc writes lives in it.

use serde::Serialize;

use super::k8s::{managed_labels, ObjectMeta};
use super::{yaml_file, RenderError};
use crate::fileset::File;
use crate::model::Cluster;

pub const FILE: &str = "namespace.yaml";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Namespace {
    api_version: &'static str,
    kind: &'static str,
    metadata: ObjectMeta,
}

pub fn render(cluster: &Cluster) -> Result<Vec<File>, RenderError> {
    let mut labels = managed_labels(&[("app.kubernetes.io/part-of", &cluster.app)]);
    // Privileged builders (buildkitd) are refused where Pod Security
    // Admission enforces baseline or restricted by default.
    if cluster.pools.iter().any(|p| p.worker.privileged) {
        labels.insert(
            "pod-security.kubernetes.io/enforce".to_string(),
            "privileged".to_string(),
        );
    }
    let namespace = Namespace {
        api_version: "v1",
        kind: "Namespace",
        metadata: ObjectMeta::named(&cluster.namespace, None).with_labels(labels),
    };
    Ok(vec![yaml_file(cluster, FILE, &[namespace])?])
}
