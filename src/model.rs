//! The validated Model: every default resolved, every derived number computed
//! once (pod size, node counts, NodePool limits, names), every invariant
//! checked. Renderers read only this, so all artifacts agree by construction.

use std::collections::{BTreeMap, BTreeSet};

use serde_saphyr::{Location, Spanned};

use crate::catalog::{MetricDecl, Version, Versions};
use crate::instance_types::{self, InstanceType, PodSize};
use crate::spec::{self, Arch, CapacityType, Located, Mode, Seconds, SpecError, SpecFile};

/// All clusters, in spec-file order.
#[derive(Debug, Clone)]
pub struct Model {
    pub clusters: Vec<Cluster>,
    /// Accepted, but hazardous: printed by generate, check and plan.
    pub warnings: Vec<SpecError>,
}

#[derive(Debug, Clone)]
pub struct Cluster {
    /// The spec it came from, as shown in headers: `specs/production.yaml`.
    pub source: String,
    pub name: String,
    pub environment: String,
    pub namespace: String,
    pub app: String,
    pub exporters: Versions,
    pub scrape_interval: Seconds,
    pub alert_labels: BTreeMap<String, String>,
    pub runbook_url: Option<String>,
    pub metrics: Vec<MetricDecl>,
    pub lb: LoadBalancer,
    pub node_class: NodeClass,
    pub monitoring: Monitoring,
    pub pools: Vec<Pool>,
    pub extra_rules: spec::ExtraRules,
    /// Every `poolc simulate` parameter, defaults filled in.
    pub simulate: crate::simulate::params::Params,
}

#[derive(Debug, Clone)]
pub struct LoadBalancer {
    pub name: String,
    pub image: String,
    pub metrics_port: u16,
    pub metrics_service: String,
    pub replicas: u32,
    /// Namespaces whose pods may reach the pools' frontends; empty = all.
    pub client_namespaces: Vec<String>,
    /// The LB pod's terminationGracePeriodSeconds: the longest
    /// haproxy.timeout_server plus 5m, so a soft stop lets running builds end.
    pub grace_period: Seconds,
    /// The resolvers' `accepted_payload_size`: one DNS response must list
    /// an AAAA record for every slot of the largest backend.
    pub dns_payload: u64,
}

#[derive(Debug, Clone)]
pub struct NodeClass {
    pub name: String,
    pub role: String,
    pub discovery_tag: String,
    pub root_volume_gib: u32,
    pub ami_alias: String,
}

#[derive(Debug, Clone)]
pub struct Monitoring {
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub keda_operator: bool,
    pub keda_namespace: String,
    pub external_labels: Vec<String>,
    pub keep: BTreeMap<String, Vec<String>>,
    /// KEDA's own `namespace` label survives the scrape (honorLabels).
    pub keda_honor_labels: bool,
    /// kube-state-metrics' `namespace` label survives the scrape.
    pub ksm_honor_labels: bool,
    /// Rules run on a ruler that sees many clusters.
    pub central: bool,
    /// Each external label with this cluster's value, in `external_labels` order.
    pub external_label_values: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct Pool {
    pub name: String,
    pub mode: Mode,
    pub arch: Arch,
    /// Deployment, ScaledObject/ScaledJob and PDB name: `<app>-<pool>`.
    pub workload: String,
    pub pod: PodSize,
    /// One per instance type, in fallback order (highest weight first).
    pub node_pools: Vec<NodePool>,
    pub min: u32,
    pub max: u32,
    pub fallback: Option<Fallback>,
    /// Consecutive scaler failures KEDA tolerates; alerts use it even without a fallback.
    pub failure_threshold: u32,
    pub capacity_type: CapacityType,
    pub scaling: Scaling,
    /// Present for service pools.
    pub lb: Option<Backend>,
    /// Present for jobs pools.
    pub jobs: Option<Jobs>,
    pub worker: Worker,
    pub drain: Seconds,
    pub grace_period: Seconds,
    pub alerts: Alerts,
    pub node_lifetime: NodeLifetime,
}

/// How long a pool's nodes live, and how long their replacement may take.
#[derive(Debug, Clone, Copy)]
pub struct NodeLifetime {
    /// NodePool expireAfter; None is `Never`.
    pub expire_after: Option<Seconds>,
    /// NodePool terminationGracePeriod, at least the pod grace period.
    pub termination_grace_period: Seconds,
}

/// What the preStop drain keeps back from the grace period, so the kubelet's
/// stop signal still reaches the worker before SIGKILL.
pub const DRAIN_MARGIN: Seconds = Seconds(30);
/// The AMI the EC2NodeClass pins when the spec does not.
pub const DEFAULT_AMI_ALIAS: &str = "al2023@v20251110";
/// Bytes of one AAAA answer in a DNS response: a compressed name (2), type,
/// class, TTL and length (10), and the address (16).
const AAAA_RECORD_BYTES: u64 = 28;
/// The most HAProxy accepts for `accepted_payload_size`.
const MAX_DNS_PAYLOAD: u64 = 65535;

#[derive(Debug, Clone)]
pub struct NodePool {
    pub name: String,
    pub instance_type: InstanceType,
    pub pods_per_node: u32,
    pub weight: u32,
    /// 2 × ceil(max / pods per node): 100% headroom for rolling updates.
    pub max_nodes: u64,
    pub limit_cpu: u64,
    pub limit_memory_gib: u64,
}

#[derive(Debug, Clone, Copy)]
pub struct Fallback {
    pub failure_threshold: u32,
    pub replicas: u32,
}

#[derive(Debug, Clone)]
pub struct Scaling {
    pub cooldown: Seconds,
    pub polling_interval: Seconds,
    pub stabilization: Seconds,
    pub scale_down_pods: u32,
    pub scale_down_percent: u32,
    pub scale_down_period: Seconds,
    pub target_sessions: u32,
}

/// A service pool's place in the LB.
#[derive(Debug, Clone)]
pub struct Backend {
    /// `bk_<pool>`: also the `proxy` label of its metrics.
    pub backend: String,
    pub frontend: String,
    pub port: u16,
    pub slots: u32,
    /// Headless Service whose DNS lists the worker pods.
    pub pods_service: String,
    pub timeout_connect: Seconds,
    pub timeout_client: Seconds,
    pub timeout_server: Seconds,
    pub timeout_queue: Seconds,
}

#[derive(Debug, Clone)]
pub struct Jobs {
    pub query: String,
    pub query_line: usize,
    pub server_address: String,
    pub target: u32,
    pub scaling_strategy: spec::ScalingStrategy,
    pub successful_history: u32,
    pub failed_history: u32,
    pub active_deadline: Seconds,
}

#[derive(Debug, Clone)]
pub struct Worker {
    pub image: String,
    pub args: Vec<String>,
    pub port: u16,
    pub metrics_port: Option<u16>,
    pub metrics_path: String,
    pub privileged: bool,
    pub env: Vec<serde_json::Value>,
    pub volumes: Vec<serde_json::Value>,
    pub volume_mounts: Vec<serde_json::Value>,
}

#[derive(Debug, Clone)]
pub struct Alerts {
    pub severity: String,
    pub queue_backlog: u32,
    pub queue_backlog_for: Seconds,
    pub at_max_for: Seconds,
    pub warm_deficit_for: Seconds,
    pub pending_jobs: u32,
    pub pending_jobs_for: Seconds,
    /// None: derived from the scrape interval and failureThreshold by the alert.
    pub error_window: Option<Seconds>,
    pub lb_down_for: Seconds,
}

/// Names end up in Kubernetes object names, HAProxy identifiers, PromQL label
/// values and file paths; a DNS-1123 label is safe in all of them.
const MAX_POOL_NAME: usize = 40;
/// `cluster.app` prefixes every workload name.
const MAX_APP_NAME: usize = 20;
/// Service names (DNS-1035 labels) and label values, such as the
/// `karpenter.sh/nodepool` label Karpenter puts on each node.
const MAX_OBJECT_NAME: usize = 63;
/// Ports the LB itself listens on besides the pools' frontends.
pub const LB_STATS_PORT: u16 = 8404;

/// Validates every spec into the Model, or returns every error found.
pub fn build(files: &[SpecFile]) -> Result<Model, Vec<SpecError>> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut clusters = Vec::new();
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for file in files {
        let mut v = Validator {
            file,
            errors: Vec::new(),
            warnings: Vec::new(),
        };
        if let Some(cluster) = v.cluster() {
            if let Some(other) = names.insert(cluster.name.clone(), file.path.clone()) {
                v.error(
                    &file.spec.cluster.name.referenced,
                    format!("cluster `{}` is also defined in {other}", cluster.name),
                    "give each cluster spec a unique cluster.name",
                );
            } else {
                clusters.push(cluster);
            }
        }
        errors.extend(v.errors);
        warnings.extend(v.warnings);
    }
    if errors.is_empty() {
        Ok(Model { clusters, warnings })
    } else {
        Err(errors)
    }
}

struct Validator<'a> {
    file: &'a SpecFile,
    errors: Vec<SpecError>,
    warnings: Vec<SpecError>,
}

impl Validator<'_> {
    fn warning(&mut self, at: &Location, message: impl Into<String>, help: impl Into<String>) {
        self.warnings.push(SpecError::at(
            &self.file.path,
            &self.file.source,
            *at,
            message,
            help,
        ));
    }

    fn error(&mut self, at: &Location, message: impl Into<String>, help: impl Into<String>) {
        self.errors.push(SpecError::at(
            &self.file.path,
            &self.file.source,
            *at,
            message,
            help,
        ));
    }

    fn dns_label(&mut self, what: &str, name: &Located<String>, max: usize) -> bool {
        if let Err(problem) = check_dns_label(&name.value, max) {
            self.error(
                &name.referenced,
                format!("{what} {:?} {problem}", name.value),
                format!(
                    "use lowercase letters, digits and '-', starting with a letter, at most {max} characters"
                ),
            );
            false
        } else {
            true
        }
    }

    fn cluster(&mut self) -> Option<Cluster> {
        let spec = &self.file.spec;
        let c = &spec.cluster;
        self.dns_label("cluster name", &c.name, 63);
        self.dns_label("environment", &c.environment, 63);
        self.dns_label("namespace", &c.namespace, 63);
        let app = c.app.clone().unwrap_or_else(|| {
            Located(Spanned {
                value: "buildkitd".to_string(),
                referenced: c.name.referenced,
                defined: c.name.defined,
            })
        });
        self.dns_label("app", &app, MAX_APP_NAME);
        let scrape_interval = c
            .scrape_interval
            .as_ref()
            .map(|s| s.value)
            .unwrap_or(Seconds(60));
        if scrape_interval.0 == 0 {
            if let Some(s) = &c.scrape_interval {
                self.error(
                    &s.referenced,
                    "scrape_interval is 0",
                    "use the Prometheus scrape interval, such as 60s",
                );
            }
        }
        for (key, value) in &c.alert_labels {
            if !is_label_name(key) {
                self.error(
                    &value.referenced,
                    format!("alert label name {key:?} is not a Prometheus label name"),
                    "use letters, digits and '_', not starting with a digit",
                );
            } else if RESERVED_ALERT_LABELS.contains(&key.as_str()) {
                self.error(
                    &value.referenced,
                    format!("alert label `{key}` is one poolc sets on its own alerts"),
                    format!(
                        "use another name; poolc sets {} itself",
                        RESERVED_ALERT_LABELS.join(", ")
                    ),
                );
            }
            self.plain_text("alert label value", value);
        }
        if let Some(url) = &c.runbook_url {
            self.plain_text("runbook_url", url);
        }
        let lb_port = c.lb.metrics_port.as_ref().map(|p| p.value).unwrap_or(9404);
        let monitoring_ns = c
            .monitoring
            .namespace
            .clone()
            .map(|ns| {
                self.dns_label("monitoring namespace", &ns, 63);
                ns.value.clone()
            })
            .unwrap_or_else(|| "monitoring".to_string());
        if let Some(ns) = &c.monitoring.keda_namespace {
            self.dns_label("KEDA namespace", ns, MAX_OBJECT_NAME);
        }
        // They become label names in every dashboard selector.
        let mut variables: Vec<&str> = Vec::new();
        for label in c.monitoring.external_labels.iter().flatten() {
            if RESERVED_EXTERNAL_LABELS.contains(&label.value.as_str()) {
                self.error(
                    &label.referenced,
                    format!(
                        "external label `{}` would name a second dashboard variable `{}`",
                        label.value, label.value
                    ),
                    format!(
                        "use another label; the dashboards define {} themselves",
                        RESERVED_EXTERNAL_LABELS.join(", ")
                    ),
                );
            } else if variables.contains(&label.value.as_str()) {
                self.error(
                    &label.referenced,
                    format!("external label `{}` is listed twice", label.value),
                    "list each external label once",
                );
            }
            variables.push(&label.value);
            if !is_label_name(&label.value) {
                self.error(
                    &label.referenced,
                    format!(
                        "external label {:?} is not a Prometheus label name",
                        label.value
                    ),
                    "use letters, digits and '_', not starting with a digit",
                );
            }
        }
        for (key, value) in &c.monitoring.labels {
            self.kubernetes_label(key, value);
        }
        // Joined into a keep regex: a pattern would keep every series, or break it.
        for (exporter, names) in &c.monitoring.keep {
            for name in names {
                if !is_metric_name(&name.value) {
                    self.error(
                        &name.referenced,
                        format!(
                            "monitoring.keep.{exporter} entry {:?} is not a metric name",
                            name.value
                        ),
                        "list metric names (letters, digits, '_' and ':', not starting with a digit); poolc builds the keep regex from them, so a pattern is not allowed",
                    );
                }
            }
        }
        let external_label_values = self.external_label_values(c);
        let declared = self.declared_types();
        let pools = self.pools(&app.value, &declared, lb_port);
        self.rule_expansion(self.file.spec.pools.value.len());

        let lb_replicas = c.lb.replicas.as_ref().map(|r| r.value).unwrap_or(1);
        if let Some(r) = &c.lb.replicas {
            if r.value == 0 {
                self.error(
                    &r.referenced,
                    "lb.replicas is 0",
                    "run at least 1 LB replica",
                );
            }
        }
        for m in &c.metrics {
            if let Some(by) = &m.scraped_by {
                let named = [&by.servicemonitor, &by.podmonitor, &by.job]
                    .iter()
                    .filter(|n| n.is_some())
                    .count();
                if named != 1 {
                    self.error(
                        &c.name.referenced,
                        format!(
                            "cluster.metrics: `{}`: `scraped_by` names {named} scrape paths",
                            m.name
                        ),
                        "give exactly one of `servicemonitor: namespace/name`, `podmonitor: namespace/name` or `job: job_name`",
                    );
                }
            }
        }
        let exporters = c.exporters.value.clone();
        self.keda_fallback_hazard(&exporters);
        let has_service_pool = pools.iter().flatten().any(|p| p.mode == Mode::Service);
        let has_jobs_pool = pools.iter().flatten().any(|p| p.mode == Mode::Jobs);
        if has_service_pool && exporters.keda < Version::new(2, 14) {
            self.error(
                &c.exporters.referenced,
                format!(
                    "KEDA {} cannot read the LB's Prometheus exporter: the metrics-api trigger's `format: prometheus` needs KEDA 2.14 or newer",
                    exporters.keda
                ),
                "upgrade KEDA to 2.14+, and set exporters.keda to the deployed version",
            );
        }
        if let Some(r) = c.lb.replicas.as_ref().filter(|r| r.value > 1) {
            self.error(
                &r.referenced,
                format!(
                    "lb.replicas is {}: each HAProxy process counts `maxconn 1` on its own, so two builds could land on one worker, and KEDA would read one replica's sessions only",
                    r.value
                ),
                "set lb.replicas to 1 (or remove it): one LB process keeps one build per worker and the whole queue in one count",
            );
        }
        if has_jobs_pool && exporters.keda < Version::new(2, 8) {
            self.error(
                &c.exporters.referenced,
                format!(
                    "KEDA {} has no ScaledJob `rollout.strategy: gradual`: every change to a jobs pool would delete its running Jobs",
                    exporters.keda
                ),
                "upgrade KEDA to 2.8+, and set exporters.keda to the deployed version",
            );
        }
        let client_namespaces: Vec<String> =
            c.lb.client_namespaces
                .iter()
                .flat_map(|list| list.value.iter())
                .filter(|ns| self.dns_label("LB client namespace", ns, 63))
                .map(|ns| ns.value.clone())
                .collect();
        if let Some(list) =
            c.lb.client_namespaces
                .as_ref()
                .filter(|l| l.value.is_empty())
        {
            self.error(
                &list.referenced,
                "lb.client_namespaces is empty, so no build client could reach the LB",
                "list the namespaces of the build clients, or remove lb.client_namespaces to allow every namespace",
            );
        }
        let ami_alias = match &c.node_class.ami_alias {
            Some(alias) => {
                self.ami_alias(alias);
                alias.value.clone()
            }
            None => DEFAULT_AMI_ALIAS.to_string(),
        };
        let root_volume_gib = c
            .node_class
            .root_volume_gib
            .as_ref()
            .map(|v| v.value)
            .unwrap_or(100);
        if let Some(v) = &c.node_class.root_volume_gib {
            if !(20..=16384).contains(&v.value) {
                self.error(
                    &v.referenced,
                    format!("root_volume_gib {} is out of range", v.value),
                    "use 20 to 16384 GiB",
                );
            }
        }
        for (at, message, help) in crate::simulate::params::Params::problems(&spec.simulate) {
            self.error(&at, message, help);
        }
        let pools = pools?;
        let dns_payload = self.dns_payload(&c.namespace.value, &pools);
        if !self.errors.is_empty() {
            return None;
        }
        let lb_grace = pools
            .iter()
            .filter_map(|p| p.lb.as_ref())
            .map(|b| b.timeout_server.0 + 300)
            .max()
            .unwrap_or(300);
        Some(Cluster {
            source: self.file.path.clone(),
            name: c.name.value.clone(),
            environment: c.environment.value.clone(),
            namespace: c.namespace.value.clone(),
            app: app.value.clone(),
            scrape_interval,
            alert_labels: c
                .alert_labels
                .iter()
                .map(|(k, v)| (k.clone(), v.value.clone()))
                .collect(),
            runbook_url: c
                .runbook_url
                .as_ref()
                .map(|u| u.value.trim_end_matches('/').to_string()),
            metrics: c.metrics.clone(),
            lb: LoadBalancer {
                name: format!("{}-lb", app.value),
                image: c
                    .lb
                    .image
                    .clone()
                    .unwrap_or_else(|| format!("haproxy:{}-alpine", exporters.haproxy)),
                metrics_port: lb_port,
                metrics_service: format!("{}-lb-metrics", app.value),
                replicas: lb_replicas,
                client_namespaces,
                grace_period: Seconds(lb_grace),
                dns_payload,
            },
            node_class: NodeClass {
                name: app.value.clone(),
                role: c
                    .node_class
                    .role
                    .clone()
                    .unwrap_or_else(|| format!("KarpenterNodeRole-{}", c.name.value)),
                discovery_tag: c
                    .node_class
                    .discovery_tag
                    .clone()
                    .unwrap_or_else(|| c.name.value.clone()),
                root_volume_gib,
                ami_alias,
            },
            monitoring: Monitoring {
                namespace: monitoring_ns,
                labels: c
                    .monitoring
                    .labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.value.clone()))
                    .collect(),
                keda_operator: c.monitoring.keda_operator.unwrap_or(true),
                keda_namespace: c
                    .monitoring
                    .keda_namespace
                    .as_ref()
                    .map_or_else(|| "keda".to_string(), |ns| ns.value.clone()),
                external_labels: c
                    .monitoring
                    .external_labels
                    .as_ref()
                    .map(|labels| labels.iter().map(|l| l.value.clone()).collect())
                    .unwrap_or_else(|| vec!["cluster".to_string(), "env".to_string()]),
                keep: c
                    .monitoring
                    .keep
                    .iter()
                    .map(|(exporter, names)| {
                        (
                            exporter.clone(),
                            names.iter().map(|n| n.value.clone()).collect(),
                        )
                    })
                    .collect(),
                keda_honor_labels: c
                    .monitoring
                    .scrape
                    .as_ref()
                    .and_then(|s| s.keda.as_ref())
                    .and_then(|k| k.honor_labels)
                    .unwrap_or(true),
                ksm_honor_labels: c
                    .monitoring
                    .scrape
                    .as_ref()
                    .and_then(|s| s.kube_state_metrics.as_ref())
                    .and_then(|k| k.honor_labels)
                    .unwrap_or(true),
                central: c.monitoring.rule_evaluation.unwrap_or_default()
                    == spec::RuleEvaluation::Central,
                external_label_values,
            },
            exporters,
            pools,
            extra_rules: spec.rules.clone(),
            simulate: crate::simulate::params::Params::resolve(&spec.simulate),
        })
    }

    /// The value of each external label. A central ruler sees every
    /// cluster, so the rules must name this cluster's values; an in-cluster
    /// Prometheus needs none, and unknown labels stay without a value.
    fn external_label_values(&mut self, c: &spec::Cluster) -> Vec<(String, String)> {
        let names: Vec<Located<String>> =
            c.monitoring.external_labels.clone().unwrap_or_else(|| {
                ["cluster", "env"]
                    .map(|l| {
                        Located(Spanned {
                            value: l.to_string(),
                            referenced: c.name.referenced,
                            defined: c.name.defined,
                        })
                    })
                    .to_vec()
            });
        let central = c.monitoring.rule_evaluation == Some(spec::RuleEvaluation::Central);
        for (key, value) in &c.monitoring.external_label_values {
            if !names.iter().any(|n| &n.value == key) {
                self.error(
                    &value.referenced,
                    format!("external_label_values names {key:?}, which is not in external_labels"),
                    "add it to monitoring.external_labels, or remove the value",
                );
            }
            self.plain_text("external label value", value);
        }
        let mut out = Vec::new();
        for name in &names {
            let value = match c.monitoring.external_label_values.get(&name.value) {
                Some(v) => Some(v.value.clone()),
                None if name.value == "cluster" => Some(c.name.value.clone()),
                None if name.value == "env" => Some(c.environment.value.clone()),
                None => None,
            };
            match value {
                Some(v) => out.push((name.value.clone(), v)),
                None if central => self.error(
                    &name.referenced,
                    format!(
                        "rules are evaluated centrally, but the value of external label {:?} for this cluster is unknown",
                        name.value
                    ),
                    format!(
                        "set monitoring.external_label_values.{}, so every rule selects this cluster's series only",
                        name.value
                    ),
                ),
                None => {}
            }
        }
        out
    }

    /// KEDA before 2.17 sets the Deployment straight to fallback.replicas on
    /// the first failed fetch of its polling loop (no threshold, no HPA
    /// policies): with more pods busy than the fallback, one blip deletes
    /// busy workers. Fixed in 2.17.0.
    fn keda_fallback_hazard(&mut self, exporters: &Versions) {
        if exporters.keda >= Version::new(2, 17) {
            return;
        }
        for pool in &self.file.spec.pools.value {
            let p = &pool.value;
            let Some(f) = &p.fallback else { continue };
            let (replicas, max) = (f.value.replicas.value, p.max.value);
            if replicas < max {
                self.warning(
                    &f.value.replicas.referenced,
                    format!(
                        "pool `{}`: KEDA {} scales the Deployment straight to fallback.replicas ({replicas}) on the first failed metric fetch, without waiting for failureThreshold: with more than {replicas} builds running, one blip deletes up to {} busy workers",
                        p.name.value,
                        exporters.keda,
                        max - replicas
                    ),
                    format!(
                        "upgrade KEDA to 2.17+ (and set exporters.keda), or set fallback.replicas to max ({max}) so the fallback can never scale the pool down"
                    ),
                );
            }
        }
    }

    /// Text that is rendered into YAML strings and annotations: no control
    /// characters, so nothing can break out of its line.
    fn plain_text(&mut self, what: &str, value: &Located<String>) {
        if value.value.chars().any(char::is_control) || value.value.len() > 256 {
            self.error(
                &value.referenced,
                format!("{what} contains control characters or is over 256 characters"),
                "use a single line of plain text",
            );
        }
        // Prometheus expands alert labels and annotations as Go templates:
        // `{{` would start an action, and an unclosed one fails the rules.
        if value.value.contains("{{") {
            self.error(
                &value.referenced,
                format!("{what} contains `{{{{`, which Prometheus would expand as a template"),
                "write the text without `{{`; poolc passes it to every alert literally",
            );
        }
    }

    /// Refuses a spec whose own alerts would multiply past the limits:
    /// pools × `$pool` alerts is quadratic in the spec's size.
    fn rule_expansion(&mut self, pools: usize) {
        let rules = &self.file.spec.rules;
        let (mut instances, mut bytes) = (rules.recording.len(), 0usize);
        for alert in &rules.alerts {
            let a = &alert.value;
            let per_pool = a.per_pool.unwrap_or_else(|| a.expr.value.contains("$pool"));
            let copies = if per_pool { pools.max(1) } else { 1 };
            let size = a.alert.value.len()
                + a.expr.value.len()
                + a.labels
                    .iter()
                    .chain(&a.annotations)
                    .map(|(k, v)| k.len() + v.len())
                    .sum::<usize>();
            instances = instances.saturating_add(copies);
            bytes = bytes.saturating_add(copies.saturating_mul(size));
            if instances > MAX_RULE_INSTANCES || bytes > MAX_RULE_BYTES {
                let at = a.alert.referenced;
                self.error(
                    &at,
                    format!(
                        "the spec's own alerts expand past poolc's limit of {MAX_RULE_INSTANCES} rules or {} MiB \
                         ({pools} pools × each `$pool` alert): this alert brings them to {instances} rules, {bytes} bytes",
                        MAX_RULE_BYTES / (1024 * 1024)
                    ),
                    "set `per_pool: false` and aggregate `by (pool)` in one alert instead of one alert per pool",
                );
                return;
            }
        }
    }

    /// `monitoring.labels` land on ServiceMonitors and the PrometheusRule:
    /// the API server rejects a label its syntax does not allow.
    fn kubernetes_label(&mut self, key: &str, value: &Located<String>) {
        if !is_label_key(key) {
            self.error(
                &value.referenced,
                format!("monitoring label name {key:?} is not a Kubernetes label name"),
                "use an optional DNS prefix and '/', then at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
            );
        }
        if !is_label_value(&value.value) {
            self.error(
                &value.referenced,
                format!("monitoring label value {:?} is not a Kubernetes label value", value.value),
                "use at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
            );
        }
    }

    /// A pinned EC2NodeClass alias: `family@version`, never `@latest`.
    fn ami_alias(&mut self, alias: &Located<String>) {
        let families = ["al2", "al2023", "bottlerocket"];
        let (family, version) = alias.value.split_once('@').unwrap_or((&alias.value, ""));
        if !families.contains(&family)
            || version.is_empty()
            || version.contains(char::is_whitespace)
        {
            self.error(
                &alias.referenced,
                format!(
                    "node_class.ami_alias {:?} is not an alias Karpenter accepts",
                    alias.value
                ),
                format!(
                    "write family@version with family one of {}, such as {DEFAULT_AMI_ALIAS}",
                    families.join(", ")
                ),
            );
        } else if version == "latest" {
            self.error(
                &alias.referenced,
                format!("node_class.ami_alias {:?} follows every AMI release, so each release drifts (replaces) every node", alias.value),
                format!("pin a release, such as {DEFAULT_AMI_ALIAS}, and bump it in a reviewed change"),
            );
        }
    }

    /// The resolvers' payload size for the largest backend, or an error on
    /// the first pool whose slots cannot fit in one DNS response.
    fn dns_payload(&mut self, namespace: &str, pools: &[Pool]) -> u64 {
        let mut largest = 512;
        for (pool, spec) in pools.iter().zip(&self.file.spec.pools.value) {
            let Some(b) = &pool.lb else { continue };
            // Header (12), the question (the name, its root, type and
            // class), the answers, and the EDNS OPT record (11).
            let name = format!("{}.{namespace}.svc.cluster.local", b.pods_service);
            let bytes =
                12 + name.len() as u64 + 2 + 4 + AAAA_RECORD_BYTES * u64::from(b.slots) + 11;
            if bytes > MAX_DNS_PAYLOAD {
                let fit = (MAX_DNS_PAYLOAD - 12 - name.len() as u64 - 6 - 11) / AAAA_RECORD_BYTES;
                self.error(
                    &spec.value.max.referenced,
                    format!(
                        "pool `{}`: {} LB slots need a {bytes}-byte DNS response, over the {MAX_DNS_PAYLOAD} bytes HAProxy accepts, so some workers would never be resolved",
                        pool.name, b.slots
                    ),
                    format!("keep max (and haproxy.slots) at {fit} or less, and split the pool beyond that"),
                );
            }
            largest = largest.max(bytes);
        }
        largest
    }

    fn declared_types(&mut self) -> BTreeMap<String, InstanceType> {
        let mut out = BTreeMap::new();
        for decl in &self.file.spec.instance_types {
            let d = &decl.value;
            if !is_instance_type_name(&d.name.value) {
                self.error(
                    &d.name.referenced,
                    format!(
                        "instance type name {:?} is not an EC2 type name",
                        d.name.value
                    ),
                    "write it as family.size, such as m6id.24xlarge",
                );
                continue;
            }
            if d.vcpu.value == 0 || d.vcpu.value > 1024 {
                self.error(
                    &d.vcpu.referenced,
                    format!("vcpu {} is out of range", d.vcpu.value),
                    "use the type's vCPU count, 1 to 1024",
                );
                continue;
            }
            if d.memory_gib.value == 0 || d.memory_gib.value > 32768 {
                self.error(
                    &d.memory_gib.referenced,
                    format!("memory_gib {} is out of range", d.memory_gib.value),
                    "use the type's memory in GiB, 1 to 32768",
                );
                continue;
            }
            let t = InstanceType::declared(
                &d.name.value,
                d.arch,
                d.vcpu.value,
                d.memory_gib.value,
                d.max_pods.unwrap_or(110).clamp(1, 10_000),
            );
            out.insert(d.name.value.clone(), t);
        }
        out
    }

    fn pools(
        &mut self,
        app: &str,
        declared: &BTreeMap<String, InstanceType>,
        lb_metrics_port: u16,
    ) -> Option<Vec<Pool>> {
        let spec = &self.file.spec;
        if spec.pools.value.is_empty() {
            self.error(
                &spec.pools.referenced,
                "the spec has no pools",
                "add at least one pool under `pools:`",
            );
            return None;
        }
        let mut pools = Vec::new();
        let mut seen_names = BTreeSet::new();
        let mut ports: BTreeMap<u16, String> = BTreeMap::new();
        ports.insert(lb_metrics_port, "the LB metrics frontend".to_string());
        ports.insert(LB_STATS_PORT, "the LB stats frontend".to_string());
        let mut ok = true;
        for pool in &spec.pools.value {
            match self.pool(app, &pool.value, &pool.referenced, declared) {
                Some(p) => {
                    if !seen_names.insert(p.name.clone()) {
                        self.error(
                            &pool.value.name.referenced,
                            format!("pool `{}` is defined twice", p.name),
                            "give each pool a unique name",
                        );
                        ok = false;
                    }
                    if let (Some(b), Some(port)) = (&p.lb, &pool.value.port) {
                        if let Some(other) = ports.insert(b.port, format!("pool `{}`", p.name)) {
                            self.error(
                                &port.referenced,
                                format!("port {} is already used by {other}", b.port),
                                "give every pool its own LB port",
                            );
                            ok = false;
                        }
                    }
                    pools.push(p);
                }
                None => ok = false,
            }
        }
        ok.then_some(pools)
    }

    fn pool(
        &mut self,
        app: &str,
        p: &spec::Pool,
        at: &Location,
        declared: &BTreeMap<String, InstanceType>,
    ) -> Option<Pool> {
        let errors_before = self.errors.len();
        let name_ok = self.dns_label("pool name", &p.name, MAX_POOL_NAME);
        let name = p.name.value.clone();
        let pods_service = format!("{app}-{name}-pods");
        if name_ok
            && check_dns_label(app, MAX_APP_NAME).is_ok()
            && p.mode == Mode::Service
            && pods_service.len() > MAX_OBJECT_NAME
        {
            self.error(
                &p.name.referenced,
                format!(
                    "pool `{name}`: its worker Service `{pods_service}` would be {} characters; a Service name is at most {MAX_OBJECT_NAME}",
                    pods_service.len()
                ),
                format!(
                    "shorten the pool name (or cluster.app) by {} characters",
                    pods_service.len() - MAX_OBJECT_NAME
                ),
            );
        }
        let defaults = &self.file.spec.defaults;
        let settings = p.settings();

        // Replica bounds.
        let (min, max) = (p.min.value, p.max.value);
        if max == 0 {
            self.error(
                &p.max.referenced,
                format!("pool `{name}`: max is 0"),
                "set max to at least 1, above the expected peak concurrency",
            );
        } else if max > 10_000 {
            self.error(
                &p.max.referenced,
                format!("pool `{name}`: max {max} is over 10000"),
                "split the pool, or lower max",
            );
        }
        if min > max {
            self.error(
                &p.min.referenced,
                format!("pool `{name}`: min ({min}) is greater than max ({max})"),
                "lower min or raise max so that min <= max",
            );
        }
        if p.mode == Mode::Service && min == 0 {
            self.error(
                &p.min.referenced,
                format!("pool `{name}`: min is 0, so the pool can never wake"),
                "set min to at least 1: a service pool scales on its own LB backend's sessions, and with no pods there are no servers to count",
            );
        }

        // Fallback.
        let failure_threshold = p
            .fallback
            .as_ref()
            .and_then(|f| f.value.failure_threshold.as_ref().map(|t| t.value))
            .unwrap_or(3);
        let fallback = p.fallback.as_ref().map(|f| Fallback {
            failure_threshold,
            replicas: f.value.replicas.value,
        });
        if let Some(f) = &p.fallback {
            if f.value.replicas.value > max {
                self.error(
                    &f.value.replicas.referenced,
                    format!(
                        "pool `{name}`: fallback.replicas ({}) is greater than max ({max})",
                        f.value.replicas.value
                    ),
                    "lower fallback.replicas to at most max (KEDA cannot hold more than max)",
                );
            }
            if f.value.replicas.value == 0 {
                self.error(
                    &f.value.replicas.referenced,
                    format!("pool `{name}`: fallback.replicas is 0"),
                    "hold at least min replicas, or remove the fallback",
                );
            }
            if let Some(t) = &f.value.failure_threshold {
                if t.value == 0 {
                    self.error(
                        &t.referenced,
                        format!("pool `{name}`: fallback.failure_threshold is 0"),
                        "use 1 or more (the reference uses 3)",
                    );
                }
            }
        }

        // Instance types and pod size.
        let node_pools = self.node_pools(app, p, declared);

        // Scaling.
        let s = merged(&settings.scaling, &defaults.scaling);
        let polling_interval = pick(s.0.polling_interval.as_ref(), s.1.polling_interval.as_ref());
        let target_sessions = pick(s.0.target_sessions.as_ref(), s.1.target_sessions.as_ref());
        let scale_down_percent = pick(
            s.0.scale_down_percent.as_ref(),
            s.1.scale_down_percent.as_ref(),
        );
        let stabilization = pick(s.0.stabilization.as_ref(), s.1.stabilization.as_ref());
        let scale_down_pods = pick(s.0.scale_down_pods.as_ref(), s.1.scale_down_pods.as_ref());
        let scale_down_period = pick(
            s.0.scale_down_period.as_ref(),
            s.1.scale_down_period.as_ref(),
        );
        // The API server's own bounds for an HPA's behavior: past them the
        // ScaledObject's HPA is rejected and the pool stops scaling.
        if let Some(w) = stabilization.filter(|w| w.value.0 > 3600) {
            self.error(
                &w.referenced,
                format!(
                    "pool `{name}`: scaling.stabilization {} is over the HPA's limit of 1h",
                    w.value
                ),
                "use 1h or less; scale_down_pods, scale_down_percent and scale_down_period slow the scale-down further (KEDA's cooldown only governs scaling to zero)",
            );
        }
        if let Some(p) = scale_down_period.filter(|p| p.value.0 == 0 || p.value.0 > 1800) {
            self.error(
                &p.referenced,
                format!(
                    "pool `{name}`: scaling.scale_down_period {} is outside the HPA's 1s to 30m",
                    p.value
                ),
                "use 1s to 30m",
            );
        }
        if let Some(n) = scale_down_pods.filter(|n| n.value == 0) {
            self.error(
                &n.referenced,
                format!("pool `{name}`: scaling.scale_down_pods is 0"),
                "use 1 or more; the HPA rejects a policy of 0 pods",
            );
        }
        if let Some(t) = target_sessions.filter(|t| t.value == 0) {
            self.error(
                &t.referenced,
                format!("pool `{name}`: scaling.target_sessions is 0"),
                "use 1 (one build per pod) or more",
            );
        }
        if let Some(pi) = polling_interval.filter(|pi| pi.value.0 == 0) {
            self.error(
                &pi.referenced,
                format!("pool `{name}`: scaling.polling_interval is 0"),
                "use a few seconds or more, such as 30s",
            );
        }
        if let Some(pct) = scale_down_percent.filter(|pct| pct.value == 0 || pct.value > 100) {
            self.error(
                &pct.referenced,
                format!(
                    "pool `{name}`: scaling.scale_down_percent {} is out of range",
                    pct.value
                ),
                "use 1 to 100",
            );
        }
        let scaling = Scaling {
            cooldown: s.0.cooldown.or(s.1.cooldown).unwrap_or(Seconds(1200)),
            polling_interval: polling_interval.map(|v| v.value).unwrap_or(Seconds(30)),
            stabilization: stabilization.map(|v| v.value).unwrap_or(Seconds(1200)),
            scale_down_pods: scale_down_pods.map(|v| v.value).unwrap_or(10),
            scale_down_percent: scale_down_percent.map(|v| v.value).unwrap_or(20),
            scale_down_period: scale_down_period.map(|v| v.value).unwrap_or(Seconds(1200)),
            target_sessions: target_sessions.map(|v| v.value).unwrap_or(1),
        };

        // HAProxy, drain and grace period.
        let h = merged(&settings.haproxy, &defaults.haproxy);
        let timeout_server_spanned = pick(h.0.timeout_server.as_ref(), h.1.timeout_server.as_ref());
        let timeout_server = timeout_server_spanned
            .map(|t| t.value)
            .unwrap_or(Seconds(7200));
        let drain_spanned = pick(settings.drain.as_ref(), defaults.drain.as_ref());
        let drain = drain_spanned.map(|d| d.value).unwrap_or(Seconds(900));
        let grace_spanned = pick(
            settings.grace_period.as_ref(),
            defaults.grace_period.as_ref(),
        );
        // A jobs pool's agent needs at most what is left of its Job's
        // deadline; HAProxy's timeouts do not apply to it.
        let active_deadline = p
            .jobs
            .as_ref()
            .and_then(|j| j.value.active_deadline)
            .unwrap_or(Seconds(7200));
        let grace_period = grace_spanned.map(|g| g.value).unwrap_or(match p.mode {
            Mode::Service => Seconds(timeout_server.0 + drain.0 + 300),
            Mode::Jobs => active_deadline,
        });
        if p.mode == Mode::Service && grace_period.0 <= DRAIN_MARGIN.0 {
            if let Some(g) = grace_spanned {
                self.error(
                    &g.referenced,
                    format!("pool `{name}`: grace_period {} leaves the drain no time", g.value),
                    format!("use more than {DRAIN_MARGIN}: the drain waits for the last build until {DRAIN_MARGIN} before the grace period ends"),
                );
            }
        }
        let k = merged(&settings.karpenter, &defaults.karpenter);
        let expire_spanned = pick(k.0.expire_after.as_ref(), k.1.expire_after.as_ref());
        let expire_after = match expire_spanned {
            None => None,
            Some(e) if e.value == "Never" => None,
            Some(e) => match Seconds::parse(&e.value) {
                Ok(d) if d.0 > 0 => Some(d),
                _ => {
                    self.error(
                        &e.referenced,
                        format!(
                            "pool `{name}`: karpenter.expire_after {:?} is not a duration",
                            e.value
                        ),
                        "write Never, or a duration such as 720h",
                    );
                    None
                }
            },
        };
        let tgp_spanned = pick(
            k.0.termination_grace_period.as_ref(),
            k.1.termination_grace_period.as_ref(),
        );
        if let Some(t) = tgp_spanned.filter(|t| t.value < grace_period) {
            self.error(
                &t.referenced,
                format!(
                    "pool `{name}`: karpenter.termination_grace_period {} is shorter than the pods' grace period {grace_period}",
                    t.value
                ),
                format!("use {grace_period} or more, or Karpenter deletes a draining pod before its build ends"),
            );
        }
        let node_lifetime = NodeLifetime {
            expire_after,
            termination_grace_period: tgp_spanned
                .map(|t| t.value)
                .unwrap_or(Seconds(grace_period.0 + 300)),
        };
        let lb = match p.mode {
            Mode::Service => {
                let slots_spanned = pick(h.0.slots.as_ref(), h.1.slots.as_ref());
                let slots = slots_spanned.map(|s| s.value).unwrap_or(max);
                if let Some(sl) = slots_spanned {
                    if sl.value < max {
                        self.error(
                            &sl.referenced,
                            format!("pool `{name}`: haproxy.slots ({}) is less than max ({max})", sl.value),
                            format!("raise haproxy.slots to at least {max}, or drop it to default to max: pods beyond the slots get no traffic"),
                        );
                    }
                }
                if let Some(g) = grace_spanned {
                    if g.value.0 <= timeout_server.0 + drain.0 {
                        self.error(
                            &g.referenced,
                            format!(
                                "pool `{name}`: grace_period ({}) is not greater than haproxy.timeout_server ({}) + drain ({})",
                                g.value, timeout_server, drain
                            ),
                            format!(
                                "raise grace_period above {}s, or the kubelet kills builds mid-drain",
                                timeout_server.0 + drain.0
                            ),
                        );
                    }
                }
                let port = match &p.port {
                    Some(port) if port.value < 1024 => {
                        self.error(
                            &port.referenced,
                            format!("pool `{name}`: port {} is privileged", port.value),
                            "use a port from 1024 to 65535",
                        );
                        0
                    }
                    Some(port) => port.value,
                    None => {
                        self.error(
                            at,
                            format!("pool `{name}`: a service pool needs `port`"),
                            "add `port:` with the LB port clients connect to, such as 2234",
                        );
                        0
                    }
                };
                if p.jobs.is_some() {
                    self.error(
                        at,
                        format!("pool `{name}`: `jobs` is set on a service pool"),
                        "remove `jobs`, or set `mode: jobs`",
                    );
                }
                let timeout_client =
                    h.0.timeout_client
                        .or(h.1.timeout_client)
                        .unwrap_or(Seconds(7200));
                Some(Backend {
                    backend: format!("bk_{name}"),
                    frontend: format!("ft_{name}"),
                    port,
                    slots,
                    pods_service,
                    timeout_connect: h
                        .0
                        .timeout_connect
                        .or(h.1.timeout_connect)
                        .unwrap_or(Seconds(5)),
                    timeout_client,
                    timeout_server,
                    timeout_queue: h
                        .0
                        .timeout_queue
                        .or(h.1.timeout_queue)
                        .unwrap_or(timeout_client),
                })
            }
            Mode::Jobs => {
                if let Some(port) = &p.port {
                    self.error(
                        &port.referenced,
                        format!("pool `{name}`: `port` is set on a jobs pool"),
                        "remove `port`: jobs pools are not behind the LB",
                    );
                }
                // A ScaledJob has no fallback: accepting one would drop it
                // silently while the alerts claim the pool is pinned at it.
                if let Some(f) = &p.fallback {
                    self.error(
                        &f.referenced,
                        format!("pool `{name}`: `fallback` is set on a jobs pool"),
                        "remove `fallback`: KEDA ScaledJobs have no fallback, only ScaledObjects do",
                    );
                }
                None
            }
        };
        let jobs = match (p.mode, &p.jobs) {
            (Mode::Jobs, Some(j)) => self.jobs(&name, &j.value),
            (Mode::Jobs, None) => {
                self.error(
                    at,
                    format!("pool `{name}`: a jobs pool needs `jobs`"),
                    "add `jobs:` with `query` (PromQL of the pending work) and `server_address`",
                );
                None
            }
            (Mode::Service, _) => None,
        };

        // Worker container.
        let w = merged(&settings.worker, &defaults.worker);
        let image = pick(w.0.image.as_ref(), w.1.image.as_ref());
        let image = match image {
            Some(i)
                if i.value.trim().is_empty()
                    || i.value.chars().any(|c| c.is_whitespace() || c.is_control()) =>
            {
                self.error(
                    &i.referenced,
                    format!(
                        "pool `{name}`: worker.image {:?} is not an image reference",
                        i.value
                    ),
                    "use an image such as moby/buildkit:v0.29.0",
                );
                String::new()
            }
            Some(i) => i.value.clone(),
            None => {
                self.error(
                    at,
                    format!("pool `{name}`: no worker.image"),
                    "set worker.image on the pool or under defaults.worker",
                );
                String::new()
            }
        };
        let worker_port = pick(w.0.port.as_ref(), w.1.port.as_ref())
            .map(|p| p.value)
            .unwrap_or(1234);
        let worker = Worker {
            image,
            args: w
                .0
                .args
                .clone()
                .or_else(|| w.1.args.clone())
                .unwrap_or_default(),
            port: worker_port,
            metrics_port: pick(w.0.metrics_port.as_ref(), w.1.metrics_port.as_ref())
                .map(|p| p.value),
            metrics_path: w
                .0
                .metrics_path
                .clone()
                .or_else(|| w.1.metrics_path.clone())
                .unwrap_or_else(|| "/metrics".to_string()),
            privileged: w.0.privileged.or(w.1.privileged).unwrap_or(false),
            env: w
                .0
                .env
                .clone()
                .or_else(|| w.1.env.clone())
                .unwrap_or_default(),
            volumes: w
                .0
                .volumes
                .clone()
                .or_else(|| w.1.volumes.clone())
                .unwrap_or_default(),
            volume_mounts: w
                .0
                .volume_mounts
                .clone()
                .or_else(|| w.1.volume_mounts.clone())
                .unwrap_or_default(),
        };

        // Alerts.
        let a = merged(&settings.alerts, &defaults.alerts);
        let queue_backlog = pick(a.0.queue_backlog.as_ref(), a.1.queue_backlog.as_ref());
        if let Some(q) = queue_backlog.filter(|q| q.value == 0) {
            self.error(
                &q.referenced,
                format!("pool `{name}`: alerts.queue_backlog is 0"),
                "a threshold of 0 fires on every healthy burst (queues drain while scale-up takes minutes); use about max × target, 20 by default",
            );
        }
        let pending_jobs = pick(a.0.pending_jobs.as_ref(), a.1.pending_jobs.as_ref());
        let severity =
            a.0.severity
                .clone()
                .or_else(|| a.1.severity.clone())
                .unwrap_or_else(|| "warning".to_string());
        if !matches!(severity.as_str(), "info" | "warning" | "critical") {
            self.error(
                at,
                format!("pool `{name}`: alerts.severity {severity:?} is unknown"),
                "use info, warning or critical",
            );
        }
        let alerts = Alerts {
            severity,
            // 20 (the reference system's number) where the pool can run 20
            // builds at once; a smaller pool is saturated by a queue of its
            // own capacity, so a queue of 20 would page far too late.
            queue_backlog: queue_backlog
                .map(|q| q.value)
                .unwrap_or_else(|| max.saturating_mul(scaling.target_sessions).clamp(1, 20)),
            queue_backlog_for: a
                .0
                .queue_backlog_for
                .or(a.1.queue_backlog_for)
                .unwrap_or(Seconds(900)),
            // Desired replicas stays at max for one stabilization window
            // after demand falls; the margin on top is what the alert measures.
            at_max_for: a
                .0
                .at_max_for
                .or(a.1.at_max_for)
                .unwrap_or(Seconds(scaling.stabilization.0 + 600)),
            warm_deficit_for: a
                .0
                .warm_deficit_for
                .or(a.1.warm_deficit_for)
                .unwrap_or(Seconds(900)),
            pending_jobs: pending_jobs
                .map(|q| q.value)
                .unwrap_or(max.saturating_mul(2).max(1)),
            pending_jobs_for: a
                .0
                .pending_jobs_for
                .or(a.1.pending_jobs_for)
                .unwrap_or(Seconds(900)),
            error_window: a.0.error_window.or(a.1.error_window),
            lb_down_for: a.0.lb_down_for.or(a.1.lb_down_for).unwrap_or(Seconds(300)),
        };

        let (node_pools, pod) = node_pools?;
        if self.errors.len() > errors_before || !name_ok {
            return None;
        }
        Some(Pool {
            workload: format!("{app}-{name}"),
            name,
            mode: p.mode,
            arch: p.arch.value,
            pod,
            node_pools,
            min,
            max,
            fallback,
            failure_threshold,
            capacity_type: settings
                .capacity_type
                .or(defaults.capacity_type)
                .unwrap_or_default(),
            scaling,
            lb,
            jobs,
            worker,
            drain,
            grace_period,
            alerts,
            node_lifetime,
        })
    }

    fn node_pools(
        &mut self,
        app: &str,
        p: &spec::Pool,
        declared: &BTreeMap<String, InstanceType>,
    ) -> Option<(Vec<NodePool>, PodSize)> {
        let name = &p.name.value;
        let choices = &p.instance_types;
        if choices.value.is_empty() {
            self.error(
                &choices.referenced,
                format!("pool `{name}` has no instance types"),
                "list at least one `- type: ..., pods_per_node: N`",
            );
            return None;
        }
        if choices.value.len() > 10 {
            self.error(
                &choices.referenced,
                format!("pool `{name}` lists {} instance types", choices.value.len()),
                "list at most 10: weights step down by 10 from 100",
            );
            return None;
        }
        let mut resolved = Vec::new();
        let mut seen = BTreeSet::new();
        for choice in &choices.value {
            let c = &choice.value;
            let ppn = c.pods_per_node.value;
            if ppn == 0 {
                self.error(
                    &c.pods_per_node.referenced,
                    format!("pool `{name}`: pods_per_node is 0 for {}", c.name.value),
                    "use 1 or more pods per node",
                );
                continue;
            }
            if !seen.insert(c.name.value.clone()) {
                self.error(
                    &c.name.referenced,
                    format!("pool `{name}` lists {} twice", c.name.value),
                    "list each instance type once",
                );
                continue;
            }
            let found = declared
                .get(&c.name.value)
                .or_else(|| instance_types::builtin().get(&c.name.value));
            let Some(t) = found else {
                let hint = nearest_type(&c.name.value)
                    .map(|n| format!("did you mean {n}? Otherwise declare it under `instance_types:` with arch, vcpu and memory_gib"))
                    .unwrap_or_else(|| "declare it under `instance_types:` with arch, vcpu and memory_gib".to_string());
                self.error(
                    &c.name.referenced,
                    format!("unknown instance type `{}`", c.name.value),
                    hint,
                );
                continue;
            };
            if t.arch != p.arch.value {
                self.error(
                    &c.name.referenced,
                    format!(
                        "pool `{name}` is {} but {} is {}",
                        p.arch.value.as_str(),
                        t.name,
                        t.arch.as_str()
                    ),
                    format!(
                        "pick an {} instance type, or change the pool's arch",
                        p.arch.value.as_str()
                    ),
                );
                continue;
            }
            if u64::from(ppn) > u64::from(t.max_pods) {
                self.error(
                    &c.pods_per_node.referenced,
                    format!("{} allows at most {} pods per node", t.name, t.max_pods),
                    format!("lower pods_per_node to {} or less", t.max_pods),
                );
                continue;
            }
            resolved.push((choice, t.clone(), ppn));
        }
        if resolved.len() != choices.value.len() {
            return None;
        }
        let (first, first_type, first_ppn) = &resolved[0];
        let pod = first_type.pod_size(*first_ppn);
        if pod.cpu == 0 || pod.memory_gib == 0 {
            self.error(
                &first.value.pods_per_node.referenced,
                format!(
                    "{} at {} pods per node leaves {} vCPU / {} GiB per pod",
                    first_type.name, first_ppn, pod.cpu, pod.memory_gib
                ),
                "lower pods_per_node or pick a larger instance type: a build pod needs at least 1 vCPU and 1 GiB",
            );
            return None;
        }
        let mut node_pools = Vec::new();
        let mut ok = true;
        for (i, (choice, t, ppn)) in resolved.iter().enumerate() {
            let fits = t.pods_that_fit(pod);
            if fits < u64::from(*ppn) {
                self.error(
                    &choice.value.pods_per_node.referenced,
                    format!(
                        "{} fits {fits} pods of {} vCPU / {} GiB, not the declared {ppn}",
                        t.name, pod.cpu, pod.memory_gib
                    ),
                    if fits == 0 {
                        format!(
                            "{} is too small for pods sized by {}; pick a type with at least {} vCPU and {} GiB free",
                            t.name, first_type.name, pod.cpu, pod.memory_gib
                        )
                    } else {
                        format!(
                            "set pods_per_node to {fits} or less for {}, or pick a larger type",
                            t.name
                        )
                    },
                );
                ok = false;
                continue;
            }
            let node_pool = format!("{app}-{name}-{}", t.name.replace('.', "-"));
            // Only a name that is valid itself can be too long in combination.
            let parts_ok = check_dns_label(name, MAX_POOL_NAME).is_ok()
                && check_dns_label(app, MAX_APP_NAME).is_ok();
            if parts_ok && node_pool.len() > MAX_OBJECT_NAME {
                self.error(
                    &choice.value.name.referenced,
                    format!(
                        "NodePool `{node_pool}` would be {} characters; Karpenter labels each node with its NodePool's name, and a label value is at most {MAX_OBJECT_NAME}",
                        node_pool.len()
                    ),
                    format!(
                        "shorten the pool name (or cluster.app) by {} characters",
                        node_pool.len() - MAX_OBJECT_NAME
                    ),
                );
                ok = false;
                continue;
            }
            let max_nodes = 2 * u64::from(p.max.value).div_ceil(u64::from(*ppn));
            let weight = 100 - 10 * i as u32;
            node_pools.push(NodePool {
                name: node_pool,
                instance_type: t.clone(),
                pods_per_node: *ppn,
                weight,
                max_nodes,
                limit_cpu: max_nodes * u64::from(t.vcpu),
                limit_memory_gib: max_nodes * t.memory_gib_whole(),
            });
        }
        ok.then_some((node_pools, pod))
    }

    fn jobs(&mut self, name: &str, j: &spec::Jobs) -> Option<Jobs> {
        let mut ok = true;
        if let Err(e) = crate::promql::parse(&j.query.value) {
            self.error(
                &j.query.referenced,
                format!("pool `{name}`: jobs.query is not valid PromQL: {}", e.to_string().trim()),
                "write a PromQL expression for the pending work, such as sum(buildkite_queues_scheduled_jobs_count{queue=\"default\"})",
            );
            ok = false;
        }
        let addr = &j.server_address.value;
        if !(addr.starts_with("http://") || addr.starts_with("https://"))
            || addr.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            self.error(
                &j.server_address.referenced,
                format!("pool `{name}`: jobs.server_address {addr:?} is not an http(s) URL"),
                "use the Prometheus URL, such as http://prometheus.monitoring.svc:9090",
            );
            ok = false;
        }
        if let Some(t) = j.target.as_ref().filter(|t| t.value == 0) {
            self.error(
                &t.referenced,
                format!("pool `{name}`: jobs.target is 0"),
                "use 1 (one Job per pending unit) or more",
            );
            ok = false;
        }
        ok.then(|| Jobs {
            query: j.query.value.trim().to_string(),
            query_line: usize::try_from(j.query.referenced.line()).unwrap_or(0),
            server_address: addr.clone(),
            target: j.target.as_ref().map(|t| t.value).unwrap_or(1),
            scaling_strategy: j
                .scaling_strategy
                .unwrap_or(spec::ScalingStrategy::Accurate),
            successful_history: j.successful_history.unwrap_or(5),
            failed_history: j.failed_history.unwrap_or(10),
            active_deadline: j.active_deadline.unwrap_or(Seconds(7200)),
        })
    }
}

/// The pool's section and the defaults' section, either possibly absent.
fn merged<T: Default + Clone>(pool: &Option<T>, defaults: &Option<T>) -> (T, T) {
    (
        pool.clone().unwrap_or_default(),
        defaults.clone().unwrap_or_default(),
    )
}

fn pick<'a, T>(pool: Option<&'a T>, defaults: Option<&'a T>) -> Option<&'a T> {
    pool.or(defaults)
}

/// DNS-1123 label: what Kubernetes accepts as a name, and a strict subset of
/// what HAProxy, PromQL strings and file names accept unescaped.
pub fn check_dns_label(name: &str, max: usize) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty".into());
    }
    if name.len() > max {
        return Err(format!("is {} characters long (at most {max})", name.len()));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err("must start with a lowercase letter".into());
    }
    if name.ends_with('-') {
        return Err("must not end with '-'".into());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!("contains {bad:?}"));
    }
    Ok(())
}

/// The most rules a spec's own alerts may expand to (each `$pool` alert
/// once per pool), and the most bytes of expression, labels and
/// annotations they may add: ten times any real fleet, far below the lint
/// limit on one rule file. Past either, the spec is refused before rendering.
pub const MAX_RULE_INSTANCES: usize = 20_000;
pub const MAX_RULE_BYTES: usize = 8 * 1024 * 1024;

/// Labels poolc sets on its own alerts, or that their expressions carry and
/// its promtool tests assert: a spec's `alert_labels` may not override them.
pub const RESERVED_ALERT_LABELS: &[&str] = &[
    "alertname",
    "namespace",
    "nodepool",
    "pool",
    "proxy",
    "scaledObject",
    "severity",
];

/// Dashboard variables poolc defines besides one per external label.
pub const RESERVED_EXTERNAL_LABELS: &[&str] = &["datasource", "pool"];

/// A Prometheus metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn is_metric_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

/// A Kubernetes label value: empty, or up to 63 of `[A-Za-z0-9._-]`,
/// alphanumeric at both ends.
fn is_label_value(value: &str) -> bool {
    value.is_empty()
        || (value.len() <= 63
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && value.starts_with(|c: char| c.is_ascii_alphanumeric())
            && value.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

/// A Kubernetes label key: `[prefix/]name`, the prefix a DNS subdomain.
fn is_label_key(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let prefix_ok = prefix.is_none_or(|p| {
        p.len() <= 253
            && p.split('.').all(|part| {
                !part.is_empty()
                    && part.len() <= 63
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            })
    });
    prefix_ok && !name.is_empty() && is_label_value(name)
}

fn is_instance_type_name(name: &str) -> bool {
    let mut parts = name.split('.');
    let ok = |p: Option<&str>| {
        p.is_some_and(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
    };
    ok(parts.next()) && ok(parts.next()) && parts.next().is_none() && name.len() <= 40
}

/// The closest built-in type name, for typos like `m6id.24xl`.
fn nearest_type(name: &str) -> Option<&'static str> {
    // The distance is at least the difference in length: skipping those
    // keeps a hostile, megabyte-long name from costing seconds per type.
    let len = name.chars().count();
    instance_types::builtin()
        .keys()
        .filter(|k| k.chars().count().abs_diff(len) <= 3)
        .filter_map(|k| edit_distance_within(name, k, 3).map(|d| (d, k.as_str())))
        .min()
        .map(|(_, k)| k)
}

pub fn edit_distance(a: &str, b: &str) -> usize {
    edit_distance_within(a, b, usize::MAX).unwrap_or(usize::MAX)
}

/// The edit distance of `a` and `b`, when it is at most `bound`. It stops
/// at the first row past the bound (a row's least distance never falls
/// after it), so a "did you mean" over every catalog name costs little.
pub fn edit_distance_within(a: &str, b: &str, bound: usize) -> Option<usize> {
    if a.is_ascii() && b.is_ascii() {
        return levenshtein(a.as_bytes(), b.as_bytes(), bound);
    }
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    levenshtein(&a, &b, bound)
}

fn levenshtein<T: PartialEq>(a: &[T], b: &[T], bound: usize) -> Option<usize> {
    if a.len().abs_diff(b.len()) > bound {
        return None;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        let mut least = cur[0];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
            least = least.min(cur[j + 1]);
        }
        if least > bound {
            return None;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    Some(prev[b.len()]).filter(|&d| d <= bound)
}

#[cfg(test)]
mod tests {
    use super::{edit_distance, edit_distance_within};

    /// The textbook distance, every cell of the table.
    fn full(a: &str, b: &str) -> usize {
        let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
        let mut d = vec![vec![0; b.len() + 1]; a.len() + 1];
        for (i, row) in d.iter_mut().enumerate() {
            row[0] = i;
        }
        for (j, cell) in d[0].iter_mut().enumerate() {
            *cell = j;
        }
        for i in 1..=a.len() {
            for j in 1..=b.len() {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                d[i][j] = (d[i - 1][j - 1] + cost)
                    .min(d[i - 1][j] + 1)
                    .min(d[i][j - 1] + 1);
            }
        }
        d[a.len()][b.len()]
    }

    /// The bounded distance is the full one wherever that is within the
    /// bound, and nothing elsewhere, for ASCII and other names.
    #[test]
    fn bounded_edit_distance_is_the_full_one_within_the_bound() {
        let names = [
            "",
            "a",
            "up",
            "kube_pod_info",
            "kube_pod_infos",
            "kube_node_info",
            "kdea_scaler_errors",
            "keda_scaler_errors",
            "karpenter_nodes_total",
            "nodé_cpu",
            "node_cpu",
            "ab",
            "ba",
        ];
        for a in names {
            for b in names {
                let d = full(a, b);
                assert_eq!(edit_distance(a, b), d, "{a} ~ {b}");
                for bound in 0..6 {
                    let want = (d <= bound).then_some(d);
                    assert_eq!(
                        edit_distance_within(a, b, bound),
                        want,
                        "{a} ~ {b} within {bound}"
                    );
                }
            }
        }
    }
}
