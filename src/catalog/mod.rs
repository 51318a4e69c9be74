//! The metric catalog: which metrics each exporter version exposes, with their
//! types and labels, plus the metrics a user declares for their own exporters.
//! The PromQL gate checks every expression against it.

pub mod builtin;
pub mod extract;
pub mod import;
mod version;

pub use builtin::{Exporter, KnownMetric, LabelSet};
pub use version::{Version, VersionError};

use serde::Deserialize;

/// The exporter versions deployed in one environment. Metric names and labels
/// depend on them (KEDA renamed its error counters in 2.14 and removed the old
/// ones in 2.17).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Versions {
    pub haproxy: Version,
    pub keda: Version,
    #[serde(alias = "kube_state_metrics")]
    pub kube_state_metrics: Version,
    pub karpenter: Version,
    /// Undeclared: the newest node-exporter the catalog knows.
    #[serde(default, alias = "node_exporter")]
    pub node_exporter: Option<Version>,
    /// Undeclared: the newest Prometheus the catalog knows.
    #[serde(default)]
    pub prometheus: Option<Version>,
    /// Undeclared: the newest cAdvisor the catalog knows.
    #[serde(default)]
    pub cadvisor: Option<Version>,
    /// Undeclared: the newest Kubernetes the catalog knows.
    #[serde(default)]
    pub kubernetes: Option<Version>,
    /// Undeclared: the newest CoreDNS the catalog knows.
    #[serde(default)]
    pub coredns: Option<Version>,
    /// Undeclared: the newest Alertmanager the catalog knows.
    #[serde(default)]
    pub alertmanager: Option<Version>,
    /// Undeclared: the newest prometheus-operator the catalog knows.
    #[serde(default, alias = "prometheus_operator")]
    pub prometheus_operator: Option<Version>,
    /// Undeclared: the newest actions-runner-controller the catalog knows.
    #[serde(default, alias = "actions_runner_controller")]
    pub actions_runner_controller: Option<Version>,
    /// Undeclared: the newest buildkite-agent-metrics the catalog knows.
    #[serde(default, alias = "buildkite_agent_metrics")]
    pub buildkite_agent_metrics: Option<Version>,
}

impl Versions {
    /// The newest release of every exporter the catalog knows.
    pub fn newest() -> Self {
        Versions {
            haproxy: Exporter::Haproxy.newest(),
            keda: Exporter::Keda.newest(),
            kube_state_metrics: Exporter::KubeStateMetrics.newest(),
            karpenter: Exporter::Karpenter.newest(),
            node_exporter: None,
            prometheus: None,
            cadvisor: None,
            kubernetes: None,
            coredns: None,
            alertmanager: None,
            prometheus_operator: None,
            actions_runner_controller: None,
            buildkite_agent_metrics: None,
        }
    }
}

/// The Prometheus metric types that matter to the checks: counters must be
/// read through rate/increase, gauges must not.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Deserialize,
    serde::Serialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

/// A metric the user declares: one their own exporter exposes, such as a CI
/// system's queue depth.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricDecl {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: MetricType,
    #[serde(default)]
    pub labels: Vec<String>,
    /// What scrapes it: the ServiceMonitor, PodMonitor or scrape job whose
    /// target labels its series carry. A KEDA trigger needs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scraped_by: Option<ScrapedBy>,
}

/// The scrape path of a user's metric. Exactly one of `servicemonitor`,
/// `podmonitor` (both `namespace/name`) or `job` (a plain scrape config's
/// `job_name`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScrapedBy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub servicemonitor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub podmonitor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// The scrape's `honorLabels`. Without it, a label of the metric that
    /// is also a target label (`namespace`, `pod`, ...) is stored as
    /// `exported_<label>`. Default false, as in Prometheus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub honor_labels: Option<bool>,
}
