//! The built-in tables: which metrics each exporter exposes, from which
//! version and until which, with type and labels. The data lives in
//! `src/catalog/data/*.tsv`, one file per exporter, each citing its sources;
//! histograms and summaries are listed once and expanded here.

use std::sync::OnceLock;

use super::{MetricType, Version, Versions};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Exporter {
    Haproxy,
    Keda,
    KubeStateMetrics,
    Karpenter,
}

impl Exporter {
    pub const ALL: [Exporter; 4] = [
        Exporter::Haproxy,
        Exporter::Keda,
        Exporter::KubeStateMetrics,
        Exporter::Karpenter,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Exporter::Haproxy => "haproxy",
            Exporter::Keda => "keda",
            Exporter::KubeStateMetrics => "kube-state-metrics",
            Exporter::Karpenter => "karpenter",
        }
    }

    /// The product name used in messages ("removed in KEDA 2.17").
    pub fn title(self) -> &'static str {
        match self {
            Exporter::Haproxy => "HAProxy",
            Exporter::Keda => "KEDA",
            Exporter::KubeStateMetrics => "kube-state-metrics",
            Exporter::Karpenter => "Karpenter",
        }
    }

    pub fn version(self, v: &Versions) -> Version {
        match self {
            Exporter::Haproxy => v.haproxy,
            Exporter::Keda => v.keda,
            Exporter::KubeStateMetrics => v.kube_state_metrics,
            Exporter::Karpenter => v.karpenter,
        }
    }

    pub fn parse(name: &str) -> Option<Exporter> {
        Exporter::ALL.into_iter().find(|e| e.as_str() == name)
    }

    fn table(self) -> &'static str {
        match self {
            Exporter::Haproxy => include_str!("data/haproxy.tsv"),
            Exporter::Keda => include_str!("data/keda.tsv"),
            Exporter::KubeStateMetrics => include_str!("data/kube-state-metrics.tsv"),
            Exporter::Karpenter => include_str!("data/karpenter.tsv"),
        }
    }
}

/// One series name an exporter exposes in a version window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownMetric {
    pub name: String,
    pub kind: MetricType,
    pub labels: Vec<String>,
    pub exporter: Exporter,
    pub since: Version,
    /// Exclusive; None while the newest known version still has it.
    pub until: Option<Version>,
}

impl KnownMetric {
    pub fn exists_in(&self, version: Version) -> bool {
        self.since <= version && self.until.is_none_or(|u| version < u)
    }
}

/// Every entry of the built-in tables, all versions.
pub fn all() -> &'static [KnownMetric] {
    static ALL: OnceLock<Vec<KnownMetric>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut out = Vec::new();
        for exporter in Exporter::ALL {
            for line in exporter.table().lines() {
                if let Some(entries) = parse_line(exporter, line) {
                    out.extend(entries);
                }
            }
        }
        out
    })
}

/// The metrics each exporter exposes at the deployed versions.
pub fn for_versions(v: &Versions) -> Vec<&'static KnownMetric> {
    all()
        .iter()
        .filter(|m| m.exists_in(m.exporter.version(v)))
        .collect()
}

fn parse_kind(s: &str) -> Option<MetricType> {
    Some(match s {
        "counter" => MetricType::Counter,
        "gauge" => MetricType::Gauge,
        "histogram" => MetricType::Histogram,
        "summary" => MetricType::Summary,
        "untyped" => MetricType::Untyped,
        _ => return None,
    })
}

/// A table line as its series; None for comments, blanks and malformed lines
/// (a test asserts that no data line is malformed).
fn parse_line(exporter: Exporter, line: &str) -> Option<Vec<KnownMetric>> {
    if line.starts_with('#') || line.trim().is_empty() {
        return None;
    }
    let fields: Vec<&str> = line.split('\t').collect();
    let [name, kind, labels, since, until] = fields[..] else {
        return None;
    };
    let kind = parse_kind(kind)?;
    let labels: Vec<String> = labels
        .split(',')
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let since: Version = since.parse().ok()?;
    let until: Option<Version> = if until.is_empty() {
        None
    } else {
        Some(until.parse().ok()?)
    };
    let entry = |name: String, kind, labels: Vec<String>| KnownMetric {
        name,
        kind,
        labels,
        exporter,
        since,
        until,
    };
    let with = |extra: &str| {
        let mut l = labels.clone();
        l.push(extra.to_string());
        l
    };
    Some(match kind {
        MetricType::Histogram => vec![
            entry(format!("{name}_bucket"), MetricType::Counter, with("le")),
            entry(format!("{name}_sum"), MetricType::Counter, labels.clone()),
            entry(format!("{name}_count"), MetricType::Counter, labels.clone()),
        ],
        MetricType::Summary => vec![
            entry(name.to_string(), MetricType::Summary, with("quantile")),
            entry(format!("{name}_sum"), MetricType::Counter, labels.clone()),
            entry(format!("{name}_count"), MetricType::Counter, labels.clone()),
        ],
        _ => vec![entry(name.to_string(), kind, labels.clone())],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(keda: (u32, u32)) -> Versions {
        Versions {
            keda: Version::new(keda.0, keda.1),
            ..Versions::newest()
        }
    }

    fn find<'a>(v: &'a [&'static KnownMetric], name: &str) -> Option<&'a KnownMetric> {
        v.iter().copied().find(|m| m.name == name)
    }

    #[test]
    fn every_table_line_parses() {
        for exporter in Exporter::ALL {
            for line in exporter.table().lines() {
                if line.starts_with('#') || line.trim().is_empty() {
                    continue;
                }
                assert!(
                    parse_line(exporter, line).is_some(),
                    "{exporter:?}: {line:?}"
                );
            }
        }
    }

    #[test]
    fn keda_renames() {
        let v16 = for_versions(&versions((2, 16)));
        assert!(find(&v16, "keda_scaler_errors_total")
            .unwrap()
            .labels
            .is_empty());
        assert!(find(&v16, "keda_scaler_detail_errors_total").is_some());
        let v17 = for_versions(&versions((2, 17)));
        assert!(find(&v17, "keda_scaler_errors_total").is_none());
        assert!(find(&v17, "keda_scaled_object_errors").is_none());
        assert_eq!(
            find(&v17, "keda_scaled_object_errors_total")
                .unwrap()
                .labels,
            ["namespace", "scaledObject"]
        );
        assert!(!all()
            .iter()
            .any(|m| m.name == "keda_scaledobject_errors_total"));
        let v12 = for_versions(&versions((2, 12)));
        assert!(find(&v12, "keda_scaler_errors")
            .unwrap()
            .labels
            .contains(&"scalerIndex".to_string()));
        let v13 = for_versions(&versions((2, 13)));
        assert!(find(&v13, "keda_scaler_errors")
            .unwrap()
            .labels
            .contains(&"triggerIndex".to_string()));
    }

    #[test]
    fn haproxy_and_karpenter_facts() {
        let old = Versions {
            haproxy: Version::new(2, 6),
            ..Versions::newest()
        };
        let v = for_versions(&old);
        let queue = find(&v, "haproxy_backend_current_queue").unwrap();
        assert_eq!(
            (queue.kind, &queue.labels[..]),
            (MetricType::Gauge, &["proxy".to_string()][..])
        );
        assert!(find(&v, "haproxy_server_http_requests_total").is_none());
        assert!(find(
            &for_versions(&Versions::newest()),
            "haproxy_server_http_requests_total"
        )
        .is_some());
        assert_eq!(
            find(&v, "haproxy_process_failed_resolutions").unwrap().kind,
            MetricType::Counter
        );
        let usage = find(&v, "karpenter_nodepools_usage").unwrap();
        assert_eq!(usage.labels, ["resource_type", "nodepool"]);
        assert!(find(&v, "karpenter_pods_eviction_requests_total").is_some());
        assert!(find(&v, "karpenter_nodes_eviction_requests_total").is_none());
        assert!(find(&v, "karpenter_nodes_termination_duration_seconds_count").is_some());
    }
}
