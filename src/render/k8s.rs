//! The Kubernetes object shapes poolc emits, as typed structs: an
//! indentation or field-name mistake is a compile error, never a broken
//! manifest. Only the fields poolc sets are modelled.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{Cluster, Pool};

#[derive(Debug, Clone, Default, Serialize)]
pub struct ObjectMeta {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Any object poolc emits: apiVersion, kind, metadata and the kind's own
/// spec.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest<S> {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: ObjectMeta,
    pub spec: S,
}

impl ObjectMeta {
    pub fn named(name: impl Into<String>, namespace: Option<&str>) -> Self {
        ObjectMeta {
            name: name.into(),
            namespace: namespace.map(str::to_string),
            ..Default::default()
        }
    }

    pub fn with_labels(mut self, labels: BTreeMap<String, String>) -> Self {
        self.labels = labels;
        self
    }
}

/// Labels on everything poolc generates, so a reviewer (and `kubectl get -l`)
/// can tell poolc's objects apart.
pub fn managed_labels(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    labels.insert(
        "app.kubernetes.io/managed-by".to_string(),
        "poolc".to_string(),
    );
    for (k, v) in extra {
        labels.insert(k.to_string(), v.to_string());
    }
    labels
}

/// The node label and taint key that ties a pool's pods to its NodePools.
pub const POOL_KEY: &str = "poolc.dev/pool";

/// The selector labels of a pool's pods (Deployment, Service, PDB, Jobs).
pub fn pool_selector(pool: &Pool) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    labels.insert("app.kubernetes.io/name".to_string(), pool.workload.clone());
    labels.insert(
        "app.kubernetes.io/component".to_string(),
        "worker".to_string(),
    );
    labels
}

/// Selector labels plus the labels that say which app and pool an object serves.
pub fn pool_labels(cluster: &Cluster, pool: &Pool) -> BTreeMap<String, String> {
    let mut labels = managed_labels(&[
        ("app.kubernetes.io/part-of", &cluster.app),
        (POOL_KEY, &pool.name),
    ]);
    labels.extend(pool_selector(pool));
    labels
}

#[derive(Debug, Clone, Serialize)]
pub struct LabelSelector {
    #[serde(rename = "matchLabels")]
    pub match_labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Toleration {
    pub key: String,
    pub operator: &'static str,
    pub value: String,
    pub effect: &'static str,
}

/// Pods of a pool run only on its own nodes, and only its pods tolerate them.
pub fn pool_placement(pool: &Pool) -> (BTreeMap<String, String>, Vec<Toleration>) {
    let mut node_selector = BTreeMap::new();
    node_selector.insert(POOL_KEY.to_string(), pool.name.clone());
    node_selector.insert(
        "kubernetes.io/arch".to_string(),
        pool.arch.as_str().to_string(),
    );
    let tolerations = vec![Toleration {
        key: POOL_KEY.to_string(),
        operator: "Equal",
        value: pool.name.clone(),
        effect: "NoSchedule",
    }];
    (node_selector, tolerations)
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerPort {
    pub name: String,
    pub container_port: u16,
    pub protocol: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Resources {
    pub requests: BTreeMap<&'static str, String>,
    pub limits: BTreeMap<&'static str, String>,
}

impl Resources {
    /// requests = limits: Guaranteed QoS, so a build never gets throttled
    /// below its share or evicted for memory pressure first.
    pub fn guaranteed(cpu: String, memory: String) -> Self {
        let mut both = BTreeMap::new();
        both.insert("cpu", cpu);
        both.insert("memory", memory);
        Resources {
            requests: both.clone(),
            limits: both,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ServicePort {
    pub name: String,
    pub port: u16,
    #[serde(rename = "targetPort")]
    pub target_port: String,
    pub protocol: &'static str,
}

/// A `networking.k8s.io/v1` NetworkPolicy admitting only the listed ingress.
pub type NetworkPolicy = Manifest<NetworkPolicySpec>;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicySpec {
    pub pod_selector: LabelSelector,
    pub policy_types: Vec<&'static str>,
    pub ingress: Vec<IngressRule>,
}

/// One ingress rule; no `from` means from anywhere.
#[derive(Serialize)]
pub struct IngressRule {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<Peer>,
    pub ports: Vec<PolicyPort>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Peer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<LabelSelector>,
}

impl Peer {
    /// Every pod of the namespace `name`.
    pub fn namespace(name: &str) -> Peer {
        Peer {
            namespace_selector: Some(LabelSelector {
                match_labels: [("kubernetes.io/metadata.name".to_string(), name.to_string())]
                    .into(),
            }),
            pod_selector: None,
        }
    }
}

#[derive(Serialize)]
pub struct PolicyPort {
    pub protocol: &'static str,
    pub port: u16,
}
