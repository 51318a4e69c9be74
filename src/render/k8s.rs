//! The Kubernetes object shapes poolc emits, as typed structs: an
//! indentation or field-name mistake is a compile error, never a broken
//! manifest. Only the fields poolc sets are modelled.

use std::collections::BTreeMap;

use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
pub struct ObjectMeta {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
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
