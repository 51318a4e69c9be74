//! The spec file as written. Field names are the YAML keys; unknown keys are
//! errors so that a typo never silently falls back to a default. Optional
//! fields resolve in `model`: pool value, else `defaults`, else poolc's
//! built-in default (documented on each field and in the README).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Located, Seconds};
use crate::catalog::{MetricDecl, Versions};

/// One cluster: the top level of `specs/<cluster>.yaml`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub cluster: Cluster,
    /// Values every pool inherits unless it sets its own.
    #[serde(default)]
    pub defaults: PoolSettings,
    /// Instance types missing from poolc's built-in table.
    #[serde(default)]
    pub instance_types: Vec<Located<InstanceTypeDecl>>,
    pub pools: Located<Vec<Located<Pool>>>,
    /// Alerts and recording rules the team adds by hand; `$pool` in an
    /// expression is replaced by each pool's name.
    #[serde(default)]
    pub rules: ExtraRules,
    /// Latencies and probabilities `poolc simulate` uses; generate ignores them.
    #[serde(default)]
    pub simulate: crate::simulate::params::Simulate,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    pub name: Located<String>,
    pub environment: Located<String>,
    /// Namespace of the workers, the LB and the KEDA objects.
    pub namespace: Located<String>,
    /// Name prefix of every workload (`<app>-<pool>`, `<app>-lb`). Default `buildkitd`.
    #[serde(default)]
    pub app: Option<Located<String>>,
    /// Exporter versions deployed in this cluster; metric names depend on them.
    pub exporters: Located<Versions>,
    /// Prometheus scrape interval. Default 60s.
    #[serde(default)]
    pub scrape_interval: Option<Located<Seconds>>,
    /// Labels every generated alert carries for routing (team, priority).
    #[serde(default)]
    pub alert_labels: BTreeMap<String, Located<String>>,
    /// Base URL of the runbooks; alerts link `<base>/<AlertName>`.
    #[serde(default)]
    pub runbook_url: Option<Located<String>>,
    /// Metrics of the team's own exporters (a CI system's queue depth, say),
    /// known to the PromQL gate like built-in ones.
    #[serde(default)]
    pub metrics: Vec<MetricDecl>,
    #[serde(default)]
    pub lb: LoadBalancer,
    #[serde(default)]
    pub node_class: NodeClass,
    #[serde(default)]
    pub monitoring: Monitoring,
}

/// The HAProxy load balancer in front of the service pools.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancer {
    /// Default `haproxy:<exporters.haproxy>-alpine`, so the catalog matches the binary.
    #[serde(default)]
    pub image: Option<String>,
    /// Port of the Prometheus exporter frontend. Default 9404.
    #[serde(default)]
    pub metrics_port: Option<Located<u16>>,
    /// LB replicas. Must be 1: `maxconn 1` and the scale signal are counted
    /// per HAProxy process.
    #[serde(default)]
    pub replicas: Option<Located<u32>>,
    /// Namespaces whose pods may connect to the pools' LB ports. Default:
    /// every namespace.
    #[serde(default)]
    pub client_namespaces: Option<Located<Vec<Located<String>>>>,
}

/// The Karpenter EC2NodeClass shared by the cluster's NodePools.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeClass {
    /// IAM role of the nodes. Default `KarpenterNodeRole-<cluster>`.
    #[serde(default)]
    pub role: Option<String>,
    /// Value of the `karpenter.sh/discovery` tag on subnets and security
    /// groups. Default the cluster name.
    #[serde(default)]
    pub discovery_tag: Option<String>,
    /// Root volume size in GiB. Default 100.
    #[serde(default)]
    pub root_volume_gib: Option<Located<u32>>,
    /// The AMI, as an EC2NodeClass alias `family@version`, pinned so that
    /// nodes are replaced (drift) only when this line changes. Default
    /// `al2023@v20251110`. `@latest` is refused: every AMI release would
    /// drift every node.
    #[serde(default)]
    pub ami_alias: Option<Located<String>>,
}

/// Where the monitoring objects go and how Prometheus finds them.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Monitoring {
    /// Namespace of ServiceMonitors and the PrometheusRule. Default `monitoring`.
    #[serde(default)]
    pub namespace: Option<Located<String>>,
    /// Labels the Prometheus operator selects ServiceMonitors and rules by.
    #[serde(default)]
    pub labels: BTreeMap<String, Located<String>>,
    /// Also scrape the KEDA operator. Default true.
    #[serde(default)]
    pub keda_operator: Option<bool>,
    /// Namespace of the KEDA operator. Default `keda`.
    #[serde(default)]
    pub keda_namespace: Option<Located<String>>,
    /// Labels the pipeline adds to every series (external labels). Default
    /// [cluster, env]; dashboards scope every selector by them.
    #[serde(default)]
    pub external_labels: Option<Vec<Located<String>>>,
    /// Extra metric names to keep in a ServiceMonitor's allowlist, by exporter.
    #[serde(default)]
    pub keep: BTreeMap<String, Vec<Located<String>>>,
    /// How each exporter is scraped: whether its own labels win over the
    /// target's (`honor_labels`). The rules select the label under which the
    /// exporter's `namespace` is stored.
    #[serde(default)]
    pub scrape: Option<Scrape>,
    /// Where the rules are evaluated. `in-cluster` (default): a Prometheus
    /// that sees this cluster only. `central`: a ruler (Mimir, Thanos) that
    /// sees every cluster; each selector then carries the external labels and
    /// each aggregation keeps them.
    #[serde(default)]
    pub rule_evaluation: Option<RuleEvaluation>,
    /// The value of each external label of this cluster's series. Default
    /// `cluster` → cluster.name, `env` → cluster.environment.
    #[serde(default)]
    pub external_label_values: BTreeMap<String, Located<String>>,
}

/// Where the generated rules run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RuleEvaluation {
    #[default]
    InCluster,
    Central,
}

/// The scrape of each exporter whose labels the rules read.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scrape {
    /// The KEDA operator, scraped by poolc's ServiceMonitor. Default
    /// honor_labels true: KEDA's `namespace` label is the ScaledObject's.
    #[serde(default)]
    pub keda: Option<ExporterScrape>,
    /// kube-state-metrics, scraped by its own chart. Default honor_labels
    /// true, as kube-prometheus-stack scrapes it.
    #[serde(default, rename = "kube-state-metrics")]
    pub kube_state_metrics: Option<ExporterScrape>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExporterScrape {
    /// When false, Prometheus stores the exporter's own `namespace` as
    /// `exported_namespace` and `namespace` holds the exporter's namespace.
    #[serde(default)]
    pub honor_labels: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstanceTypeDecl {
    pub name: Located<String>,
    pub arch: Arch,
    pub vcpu: Located<u32>,
    pub memory_gib: Located<u32>,
    /// Pods the node may run (the ENI limit). Default 110.
    #[serde(default)]
    pub max_pods: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Amd64,
    Arm64,
}

impl Arch {
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }
}

/// `service`: long-lived pods behind the LB, scaled by a KEDA ScaledObject on
/// the LB's own session count. `jobs`: one-shot agents created per unit of
/// pending work by a KEDA ScaledJob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Service,
    Jobs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CapacityType {
    #[default]
    OnDemand,
    Spot,
}

impl CapacityType {
    pub fn as_str(self) -> &'static str {
        match self {
            CapacityType::OnDemand => "on-demand",
            CapacityType::Spot => "spot",
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    pub name: Located<String>,
    #[serde(default)]
    pub mode: Mode,
    pub arch: Located<Arch>,
    /// Ordered: the first sizes the pod, the others are lower-weight
    /// fallbacks that must fit their declared pod count.
    pub instance_types: Located<Vec<Located<InstanceChoice>>>,
    pub min: Located<u32>,
    pub max: Located<u32>,
    /// KEDA fallback: replicas to hold when the scaler fails. None = no fallback.
    #[serde(default)]
    pub fallback: Option<Located<Fallback>>,
    /// LB frontend port clients connect to (service pools only).
    #[serde(default)]
    pub port: Option<Located<u16>>,
    /// The ScaledJob's trigger (jobs pools only).
    #[serde(default)]
    pub jobs: Option<Located<Jobs>>,
    #[serde(default)]
    pub capacity_type: Option<CapacityType>,
    #[serde(default)]
    pub scaling: Option<Scaling>,
    #[serde(default)]
    pub haproxy: Option<Haproxy>,
    #[serde(default)]
    pub worker: Option<Worker>,
    #[serde(default)]
    pub drain: Option<Located<Seconds>>,
    #[serde(default)]
    pub grace_period: Option<Located<Seconds>>,
    #[serde(default)]
    pub alerts: Option<Alerts>,
    #[serde(default)]
    pub karpenter: Option<Karpenter>,
}

impl Pool {
    /// The inheritable part of the pool, to be layered over `defaults`.
    /// (serde's `flatten` would lose both line numbers and unknown-field
    /// errors, so the fields are repeated here instead.)
    pub fn settings(&self) -> PoolSettings {
        PoolSettings {
            capacity_type: self.capacity_type,
            scaling: self.scaling.clone(),
            haproxy: self.haproxy.clone(),
            worker: self.worker.clone(),
            drain: self.drain.clone(),
            grace_period: self.grace_period.clone(),
            alerts: self.alerts.clone(),
            karpenter: self.karpenter.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstanceChoice {
    #[serde(rename = "type")]
    pub name: Located<String>,
    pub pods_per_node: Located<u32>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fallback {
    /// Consecutive scaler failures before KEDA pins the pool. Default 3.
    #[serde(default)]
    pub failure_threshold: Option<Located<u32>>,
    pub replicas: Located<u32>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Jobs {
    /// PromQL whose value is the pending work for this pool.
    pub query: Located<String>,
    /// Prometheus the trigger queries.
    pub server_address: Located<String>,
    /// Pending units per Job. Default 1.
    #[serde(default)]
    pub target: Option<Located<u32>>,
    /// default, custom, accurate or eager. Default `accurate`.
    #[serde(default)]
    pub scaling_strategy: Option<ScalingStrategy>,
    /// Default 5.
    #[serde(default)]
    pub successful_history: Option<u32>,
    /// Default 10.
    #[serde(default)]
    pub failed_history: Option<u32>,
    /// Longest a Job may run. Default 2h.
    #[serde(default)]
    pub active_deadline: Option<Seconds>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ScalingStrategy {
    Default,
    Custom,
    Accurate,
    Eager,
}

impl ScalingStrategy {
    pub fn as_str(self) -> &'static str {
        match self {
            ScalingStrategy::Default => "default",
            ScalingStrategy::Custom => "custom",
            ScalingStrategy::Accurate => "accurate",
            ScalingStrategy::Eager => "eager",
        }
    }
}

/// Everything a pool may inherit from `defaults`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolSettings {
    #[serde(default)]
    pub capacity_type: Option<CapacityType>,
    #[serde(default)]
    pub scaling: Option<Scaling>,
    #[serde(default)]
    pub haproxy: Option<Haproxy>,
    #[serde(default)]
    pub worker: Option<Worker>,
    /// Time a draining pod may need beyond haproxy.timeout_server: the LB
    /// forgetting the pod, the hook's polling. Default 15m. (The preStop
    /// hook itself waits until no build connection is open, bounded only
    /// by grace_period minus 30s.)
    #[serde(default)]
    pub drain: Option<Located<Seconds>>,
    /// terminationGracePeriodSeconds. Service pools: must exceed
    /// haproxy.timeout_server + drain; default timeout_server + drain + 5m.
    /// Jobs pools: default jobs.active_deadline, the longest an agent can
    /// still need.
    #[serde(default)]
    pub grace_period: Option<Located<Seconds>>,
    #[serde(default)]
    pub alerts: Option<Alerts>,
    #[serde(default)]
    pub karpenter: Option<Karpenter>,
}

/// How Karpenter may replace the pool's nodes.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Karpenter {
    /// NodePool `expireAfter`: a duration, or `Never`. Expiry is forceful (it
    /// ignores disruption budgets and do-not-disrupt), so the default is
    /// `Never`; nodes are then replaced by drift when `node_class.ami_alias`
    /// changes, one at a time.
    #[serde(default)]
    pub expire_after: Option<Located<String>>,
    /// NodePool `terminationGracePeriod`: how long a node being replaced may
    /// wait for its pods. Must be at least grace_period. Default
    /// grace_period + 5m, so every drain runs to its end.
    #[serde(default)]
    pub termination_grace_period: Option<Located<Seconds>>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scaling {
    /// KEDA cooldownPeriod. Default 1200s.
    #[serde(default)]
    pub cooldown: Option<Seconds>,
    /// KEDA pollingInterval. Default 30s.
    #[serde(default)]
    pub polling_interval: Option<Located<Seconds>>,
    /// HPA scale-down stabilization window, at most 1h. Default 1200s.
    #[serde(default)]
    pub stabilization: Option<Located<Seconds>>,
    /// Scale down at most max(pods, percent%) per period (at most 30m).
    /// Defaults 10, 20, 1200s.
    #[serde(default)]
    pub scale_down_pods: Option<Located<u32>>,
    #[serde(default)]
    pub scale_down_percent: Option<Located<u32>>,
    #[serde(default)]
    pub scale_down_period: Option<Located<Seconds>>,
    /// Sessions per pod the ScaledObject aims for. Default 1 (one build per pod).
    #[serde(default)]
    pub target_sessions: Option<Located<u32>>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Haproxy {
    /// server-template slots. Default max; must be >= max.
    #[serde(default)]
    pub slots: Option<Located<u32>>,
    /// Defaults 5s, 120m, 120m.
    #[serde(default)]
    pub timeout_connect: Option<Seconds>,
    #[serde(default)]
    pub timeout_client: Option<Seconds>,
    #[serde(default)]
    pub timeout_server: Option<Located<Seconds>>,
    /// How long a build may wait in the backend queue for a free worker.
    /// Default: timeout_client, because HAProxy would otherwise fall back to
    /// timeout_connect (seconds) while scale-up takes minutes.
    #[serde(default)]
    pub timeout_queue: Option<Seconds>,
}

/// The worker container. `env`, `volumes` and `volume_mounts` are Kubernetes
/// objects passed through unchanged.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Worker {
    #[serde(default)]
    pub image: Option<Located<String>>,
    #[serde(default)]
    pub args: Option<Vec<String>>,
    /// Port the worker serves builds on. Default 1234.
    #[serde(default)]
    pub port: Option<Located<u16>>,
    /// Port of the worker's own metrics. Default none.
    #[serde(default)]
    pub metrics_port: Option<Located<u16>>,
    #[serde(default)]
    pub metrics_path: Option<String>,
    #[serde(default)]
    pub privileged: Option<bool>,
    #[serde(default)]
    pub env: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub volumes: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub volume_mounts: Option<Vec<serde_json::Value>>,
}

/// Alert thresholds. The defaults avoid firing on healthy bursts.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Alerts {
    /// Queued connections on the LB backend. Default min(20, max × target_sessions).
    #[serde(default)]
    pub queue_backlog: Option<Located<u32>>,
    /// Default 15m.
    #[serde(default)]
    pub queue_backlog_for: Option<Seconds>,
    /// How long desired replicas may sit at max while demand exceeds it.
    /// Default the scale-down stabilization window + 10m.
    #[serde(default)]
    pub at_max_for: Option<Seconds>,
    /// How long a warm deficit may last. Default 15m.
    #[serde(default)]
    pub warm_deficit_for: Option<Seconds>,
    /// Pending units a jobs pool may have. Default 2 × max.
    #[serde(default)]
    pub pending_jobs: Option<Located<u32>>,
    /// Default 15m.
    #[serde(default)]
    pub pending_jobs_for: Option<Seconds>,
    /// Severity of the generated alerts. Default warning.
    #[serde(default)]
    pub severity: Option<String>,
    /// Window over which KEDA error counters are counted. Default the
    /// larger of 15m and (2 × failureThreshold + 2) scrape intervals.
    #[serde(default)]
    pub error_window: Option<Seconds>,
    /// How long the LB may be down or unscraped. Default 5m.
    #[serde(default)]
    pub lb_down_for: Option<Seconds>,
}

/// Rules the team writes by hand next to the generated ones. They go through
/// the same PromQL gate.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtraRules {
    #[serde(default)]
    pub alerts: Vec<Located<ExtraAlert>>,
    #[serde(default)]
    pub recording: Vec<Located<ExtraRecording>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtraAlert {
    pub alert: Located<String>,
    pub expr: Located<String>,
    #[serde(default, rename = "for")]
    pub for_: Option<Seconds>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Instantiate once per pool, replacing `$pool`. Default true when the
    /// expression mentions `$pool`.
    #[serde(default)]
    pub per_pool: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtraRecording {
    pub record: Located<String>,
    pub expr: Located<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}
