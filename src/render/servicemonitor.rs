//! ServiceMonitors for the LB exporter, the workers and the KEDA operator.
//! Each keeps only the metrics that something poolc generated reads (rules,
//! dashboards, KEDA triggers) plus the spec's `monitoring.keep` additions:
//! a metric can no longer be dropped by its own allowlist, and nothing else
//! costs series.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::haproxy::lb_selector;
use super::k8s::{managed_labels, LabelSelector, Manifest, ObjectMeta};
use super::scrape::{Endpoints, Target};
use super::{dashboard, keda, rules, yaml_file, RenderError};
use crate::fileset::File;
use crate::model::Cluster;
use crate::promql;

pub const FILE: &str = "servicemonitors.yaml";

/// The exporters poolc scrapes, by the prefix of their metric names.
pub const EXPORTERS: &[(&str, &str)] = &[("haproxy", "haproxy_"), ("keda", "keda_")];

pub fn render(cluster: &Cluster) -> Result<Vec<File>, RenderError> {
    let used = used_metrics(cluster);
    let keep = |exporter: &str, prefix: &str| -> Vec<String> {
        let mut names: BTreeSet<String> = used
            .iter()
            .filter(|m| m.starts_with(prefix))
            .cloned()
            .collect();
        names.extend(
            cluster
                .monitoring
                .keep
                .get(exporter)
                .cloned()
                .unwrap_or_default(),
        );
        names.into_iter().collect()
    };
    Ok(vec![yaml_file(cluster, FILE, &monitors(cluster, &keep))?])
}

/// The scrape of each exporter the generated rules read, as Prometheus will
/// run it: poolc's own ServiceMonitors (keep-lists aside, which change no
/// label), and the charts' own for kube-state-metrics and Karpenter, with
/// the honor_labels the spec declares.
pub struct Scrapes {
    pub haproxy: Target,
    pub keda: Target,
    pub kube_state_metrics: Target,
    pub karpenter: Target,
}

pub fn scrapes(cluster: &Cluster) -> Scrapes {
    let monitors = monitors(cluster, &|_: &str, _: &str| Vec::new());
    let find = |exporter: &str| -> Option<serde_json::Value> {
        let m = monitors.iter().find(|m| {
            m.metadata
                .labels
                .get("poolc.dev/exporter")
                .map(String::as_str)
                == Some(exporter)
        })?;
        serde_json::to_value(m).ok()
    };
    let lb_address = format!("10.0.1.12:{}", cluster.lb.metrics_port);
    let lb = Endpoints {
        service: &cluster.lb.metrics_service,
        pod: &format!("{}-5c8d7b9f4-x2x7k", cluster.lb.name),
        container: "haproxy",
        address: &lb_address,
    };
    let haproxy = find("haproxy")
        .and_then(|m| Target::from_monitor(&m, &cluster.namespace, &lb).pop())
        .unwrap_or_else(|| Target::assumed(&cluster.namespace, "metrics", &lb, false));
    let keda_pod = Endpoints {
        service: "keda-operator",
        pod: "keda-operator-6b7d8c9f5-q4w2n",
        container: "keda-operator",
        address: "10.0.2.7:8080",
    };
    let ns = &cluster.monitoring.keda_namespace;
    let keda = find("keda")
        .and_then(|m| Target::from_monitor(&m, ns, &keda_pod).pop())
        // Scraped by the team's own ServiceMonitor when poolc does not.
        .unwrap_or_else(|| {
            Target::assumed(
                ns,
                "metrics",
                &keda_pod,
                cluster.monitoring.keda_honor_labels,
            )
        });
    let kube_state_metrics = Target::assumed(
        &cluster.monitoring.namespace,
        "http",
        &Endpoints {
            service: "kube-prometheus-stack-kube-state-metrics",
            pod: "kube-prometheus-stack-kube-state-metrics-7f9c6d5b8-m3k8p",
            container: "kube-state-metrics",
            address: "10.0.3.4:8080",
        },
        cluster.monitoring.ksm_honor_labels,
    );
    let karpenter = Target::assumed(
        "kube-system",
        "http-metrics",
        &Endpoints {
            service: "karpenter",
            pod: "karpenter-7d5f9b8c6-h2j4k",
            container: "controller",
            address: "10.0.4.5:8080",
        },
        false,
    );
    Scrapes {
        haproxy,
        keda,
        kube_state_metrics,
        karpenter,
    }
}

fn monitors(cluster: &Cluster, keep: &dyn Fn(&str, &str) -> Vec<String>) -> Vec<ServiceMonitor> {
    let interval = cluster.scrape_interval.compact();
    let mut monitors = vec![monitor(
        cluster,
        cluster.lb.name.clone(),
        "haproxy",
        &cluster.namespace,
        None,
        lb_selector(cluster),
        Endpoint {
            port: "metrics".to_string(),
            path: "/metrics".to_string(),
            interval: interval.clone(),
            honor_labels: false,
            metric_relabelings: keep_relabeling(&keep("haproxy", "haproxy_")),
        },
    )];
    if cluster
        .pools
        .iter()
        .any(|p| p.worker.metrics_port.is_some())
    {
        let mut selector = BTreeMap::new();
        selector.insert("app.kubernetes.io/part-of".to_string(), cluster.app.clone());
        selector.insert(
            "app.kubernetes.io/component".to_string(),
            "worker".to_string(),
        );
        let path = cluster
            .pools
            .iter()
            .find(|p| p.worker.metrics_port.is_some())
            .map(|p| p.worker.metrics_path.clone())
            .unwrap_or_else(|| "/metrics".to_string());
        let worker_keep = cluster
            .monitoring
            .keep
            .get("worker")
            .cloned()
            .unwrap_or_default();
        monitors.push(monitor(
            cluster,
            format!("{}-workers", cluster.app),
            "worker",
            &cluster.namespace,
            None,
            selector,
            Endpoint {
                port: "metrics".to_string(),
                path,
                interval: interval.clone(),
                honor_labels: false,
                // Nothing poolc generates reads worker metrics; keep what the
                // spec lists, or everything when it lists nothing.
                metric_relabelings: keep_relabeling(&worker_keep),
            },
        ));
    }
    if cluster.monitoring.keda_operator {
        let mut selector = BTreeMap::new();
        selector.insert(
            "app.kubernetes.io/name".to_string(),
            "keda-operator".to_string(),
        );
        monitors.push(monitor(
            cluster,
            format!("{}-keda-operator", cluster.app),
            "keda",
            &cluster.monitoring.namespace,
            Some(&cluster.monitoring.keda_namespace),
            selector,
            Endpoint {
                port: "metrics".to_string(),
                path: "/metrics".to_string(),
                interval,
                // KEDA's `namespace` label is the ScaledObject's. Without
                // this, the operator's target label `namespace` (KEDA's own
                // namespace) wins and the rules' selectors match nothing.
                honor_labels: cluster.monitoring.keda_honor_labels,
                metric_relabelings: keep_relabeling(&keep("keda", "keda_")),
            },
        ));
    }
    monitors
}

/// Every metric name read by the generated rules, dashboard and KEDA triggers.
pub fn used_metrics(cluster: &Cluster) -> BTreeSet<String> {
    let mut exprs: Vec<(String, bool)> = rules::groups(cluster)
        .into_iter()
        .flat_map(|g| g.rules)
        .map(|r| (r.expr, false))
        .collect();
    exprs.extend(dashboard::targets(cluster).into_iter().map(|e| (e, true)));
    exprs.extend(
        cluster
            .pools
            .iter()
            .filter_map(|p| p.lb.as_ref())
            .map(|b| (keda::value_location(&b.backend), false)),
    );
    let mut used = BTreeSet::new();
    for (expr, dashboard) in exprs {
        let parsed = if dashboard {
            promql::parse_dashboard(&expr)
        } else {
            promql::parse(&expr)
        };
        // An expression that does not parse is reported by the PromQL gate
        // with its file and line; it reads nothing here.
        if let Ok(parsed) = parsed {
            used.extend(promql::metric_names(&parsed));
        }
    }
    used
}

/// A `keep` on `__name__`, anchored by Prometheus itself. Empty: keep all.
fn keep_relabeling(names: &[String]) -> Vec<Relabeling> {
    if names.is_empty() {
        return Vec::new();
    }
    vec![Relabeling {
        source_labels: vec!["__name__"],
        action: "keep",
        regex: names.join("|"),
    }]
}

fn monitor(
    cluster: &Cluster,
    name: String,
    exporter: &str,
    namespace: &str,
    target_namespace: Option<&str>,
    selector: BTreeMap<String, String>,
    endpoint: Endpoint,
) -> ServiceMonitor {
    let mut labels = managed_labels(&[
        ("app.kubernetes.io/part-of", &cluster.app),
        ("poolc.dev/exporter", exporter),
    ]);
    labels.extend(cluster.monitoring.labels.clone());
    ServiceMonitor {
        api_version: "monitoring.coreos.com/v1",
        kind: "ServiceMonitor",
        metadata: ObjectMeta::named(name, Some(namespace)).with_labels(labels),
        spec: Spec {
            namespace_selector: target_namespace.map(|ns| NamespaceSelector {
                match_names: vec![ns.to_string()],
            }),
            selector: LabelSelector {
                match_labels: selector,
            },
            endpoints: vec![endpoint],
        },
    }
}

type ServiceMonitor = Manifest<Spec>;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Spec {
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace_selector: Option<NamespaceSelector>,
    selector: LabelSelector,
    endpoints: Vec<Endpoint>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NamespaceSelector {
    match_names: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Endpoint {
    port: String,
    path: String,
    interval: String,
    /// KEDA labels its series with the ScaledObject's `namespace`; without
    /// this Prometheus stores it as `exported_namespace`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    honor_labels: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    metric_relabelings: Vec<Relabeling>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Relabeling {
    source_labels: Vec<&'static str>,
    action: &'static str,
    regex: String,
}
