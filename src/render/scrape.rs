//! What a series looks like once Prometheus has stored it: prometheus-operator
//! turns each ServiceMonitor endpoint into a scrape job, and the labels of the
//! scraped target are merged with the exporter's own. The alert scenarios and
//! the tests that run a real Prometheus both start from here, so the series
//! they feed are the ones a cluster stores, not the ones the rules expect.
//!
//! The translation, as prometheus-operator renders an endpoint (v0.93,
//! `pkg/prometheus/promcfg.go`, role `endpoints`):
//! - `job` is the Service's name (no `jobLabel` is set);
//! - the target labels are `namespace` (the Service's), `service`, `pod`,
//!   `container` (the container owning the port), `endpoint` (the port name)
//!   and `instance` (`<pod IP>:<port>`);
//! - `honorLabels: true` becomes `honor_labels: true`: on a conflict the
//!   exporter's label wins. Otherwise the target's wins and the exporter's
//!   value is kept as `exported_<name>`;
//! - `metricRelabelings` become `metric_relabel_configs`, applied after the
//!   merge; poolc emits only `keep` on `__name__` (anchored);
//! - `up` and the other series Prometheus writes itself carry the target
//!   labels only, and no metric relabeling applies to them.

use std::collections::BTreeMap;

use serde_json::{json, Value};

/// One scraped target of one ServiceMonitor endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The labels Prometheus attaches to every series of the target.
    pub labels: BTreeMap<String, String>,
    pub honor_labels: bool,
    /// The `keep` regex on `__name__`, unanchored as written; None keeps all.
    pub keep: Option<String>,
    pub path: String,
    pub interval: String,
}

/// The pod behind a Service port: what service discovery finds.
#[derive(Debug, Clone)]
pub struct Endpoints<'a> {
    pub service: &'a str,
    pub pod: &'a str,
    pub container: &'a str,
    /// `<pod IP>:<port>`.
    pub address: &'a str,
}

impl Target {
    /// The targets of every endpoint of a ServiceMonitor document, for a
    /// Service in `namespace` backed by `pod`.
    pub fn from_monitor(monitor: &Value, namespace: &str, pod: &Endpoints) -> Vec<Target> {
        let endpoints = monitor["spec"]["endpoints"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        endpoints
            .iter()
            .map(|endpoint| {
                let port = endpoint["port"].as_str().unwrap_or_default();
                let keep = endpoint["metricRelabelings"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|r| r["action"] == "keep" && r["sourceLabels"][0] == "__name__")
                    .and_then(|r| r["regex"].as_str())
                    .map(str::to_string);
                Target {
                    labels: target_labels(namespace, port, pod),
                    honor_labels: endpoint["honorLabels"].as_bool().unwrap_or(false),
                    keep,
                    path: endpoint["path"].as_str().unwrap_or("/metrics").to_string(),
                    interval: endpoint["interval"].as_str().unwrap_or("30s").to_string(),
                }
            })
            .collect()
    }

    /// A target scraped by another chart's ServiceMonitor (kube-state-metrics,
    /// Karpenter), whose port is named `port`.
    pub fn assumed(namespace: &str, port: &str, pod: &Endpoints, honor_labels: bool) -> Target {
        Target {
            labels: target_labels(namespace, port, pod),
            honor_labels,
            keep: None,
            path: "/metrics".to_string(),
            interval: "30s".to_string(),
        }
    }

    /// The labels of the stored series for a sample the exporter exposes as
    /// `name{exposed}`, or None when the keep-list drops it.
    pub fn stored(&self, name: &str, exposed: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
        if let Some(keep) = &self.keep {
            let re = regex::Regex::new(&format!("^(?:{keep})$")).ok()?;
            if !re.is_match(name) {
                return None;
            }
        }
        let mut labels = self.labels.clone();
        for (key, value) in exposed {
            match labels.get(*key) {
                Some(_) if !self.honor_labels => {
                    labels.insert(format!("exported_{key}"), value.to_string());
                }
                _ => {
                    labels.insert(key.to_string(), value.to_string());
                }
            }
        }
        labels.insert("__name__".to_string(), name.to_string());
        Some(labels)
    }

    /// `stored` in the series notation of promtool's `input_series`.
    pub fn series(&self, name: &str, exposed: &[(&str, &str)]) -> Option<String> {
        self.stored(name, exposed).map(|labels| selector(&labels))
    }

    /// A series Prometheus writes itself for the target (`up`).
    pub fn synthetic(&self, name: &str) -> String {
        let mut labels = self.labels.clone();
        labels.insert("__name__".to_string(), name.to_string());
        selector(&labels)
    }

    /// The scrape job a real Prometheus runs for this target at `address`
    /// (instead of the pod IP service discovery would find): the target
    /// labels become static labels, the rest is as the operator renders it.
    pub fn scrape_config(&self, job_name: &str, address: &str) -> Value {
        let mut labels = self.labels.clone();
        labels.remove("instance");
        let mut config = json!({
            "job_name": job_name,
            "honor_labels": self.honor_labels,
            "metrics_path": self.path,
            "scrape_interval": self.interval,
            "static_configs": [{"targets": [address], "labels": labels}],
            // The address is this machine's; `instance` stays the pod's.
            "relabel_configs": [{
                "target_label": "instance",
                "replacement": self.labels.get("instance").cloned().unwrap_or_default(),
            }],
        });
        if let Some(keep) = &self.keep {
            config["metric_relabel_configs"] = json!([{
                "source_labels": ["__name__"],
                "action": "keep",
                "regex": keep,
            }]);
        }
        config
    }
}

fn target_labels(namespace: &str, port: &str, pod: &Endpoints) -> BTreeMap<String, String> {
    [
        ("job", pod.service),
        ("namespace", namespace),
        ("service", pod.service),
        ("pod", pod.pod),
        ("container", pod.container),
        ("endpoint", port),
        ("instance", pod.address),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// `name{k="v", …}` from stored labels (with `__name__`).
pub fn selector(labels: &BTreeMap<String, String>) -> String {
    let name = labels.get("__name__").cloned().unwrap_or_default();
    let matchers: Vec<String> = labels
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| format!(r#"{k}="{}""#, v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("{name}{{{}}}", matchers.join(", "))
}
