//! `poolc lint --catalog FILE`: the exporters and versions deployed in the
//! target environment, the team's own metrics, which ServiceMonitor scrapes
//! which exporter, the scrape interval and the external labels. Without a
//! file, the newest known versions apply; an exporter the file leaves out
//! takes its newest known version too.
//!
//! A metric's labels may be open: `"*"` stands for any label (`ALERTS`
//! carries every label of its alert), and a name ending in `*` for every
//! label with that prefix (`label_*` on `kube_pod_labels`). A label's values
//! are open unless `values` closes them. Histograms and summaries are
//! declared once, under their family name, and expanded as in the built-in
//! tables, so `poolc catalog import` can write one row per family.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Deserializer};
use serde_saphyr::Spanned;

use super::scrape::{Declared, Kind, ScrapeModel};
use super::{Catalog, Context};
use crate::catalog::import::{is_label_name, is_metric_name};
use crate::catalog::{Exporter, MetricDecl, MetricType, ScrapedBy, Version, Versions};
use crate::spec::Seconds;

/// The largest catalog file read. Imported catalogs of whole clusters run
/// to thousands of rows, more than a hand-written spec ever holds.
pub const MAX_CATALOG_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile {
    /// Exporter → deployed version; `MAJOR.MINOR` or `MAJOR.MINOR.PATCH`.
    #[serde(default)]
    pub exporters: BTreeMap<ExporterKey, Version>,
    #[serde(default)]
    pub metrics: Vec<CatalogMetric>,
    #[serde(default)]
    pub scrape: Vec<ScrapeEntry>,
    #[serde(default)]
    pub scrape_interval: Option<Seconds>,
    #[serde(default)]
    pub external_labels: Option<Vec<String>>,
}

/// An exporter the built-in catalog knows, as a key of `exporters:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ExporterKey(pub Exporter);

impl<'de> Deserialize<'de> for ExporterKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        exporter(&name)
            .map(ExporterKey)
            .map_err(serde::de::Error::custom)
    }
}

fn exporter(name: &str) -> Result<Exporter, String> {
    Exporter::parse(&name.replace('_', "-")).ok_or_else(|| {
        let known: Vec<&str> = Exporter::ALL.iter().map(|e| e.as_str()).collect();
        format!(
            "unknown exporter `{name}` (known: {}); declare other exporters' metrics under `metrics:` \
             (`poolc catalog import` writes them from a real Prometheus)",
            known.join(", ")
        )
    })
}

/// A metric of the file: one the team's own exporter exposes, or a row
/// `poolc catalog import` wrote.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogMetric {
    pub name: Spanned<String>,
    #[serde(rename = "type")]
    pub kind: MetricType,
    /// Label names; `"*"` for any label, `prefix_*` for every label with a prefix.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Closed value sets: such a label takes only the values listed.
    #[serde(default)]
    pub values: BTreeMap<String, Vec<String>>,
    /// What scrapes it, so its series carry that path's target labels.
    #[serde(default)]
    pub scraped_by: Option<ScrapedBy>,
}

/// Whether `label` is one of `labels`, where `"*"` admits any label and
/// `prefix_*` every label that starts with `prefix_`.
pub fn label_allowed(labels: &[String], label: &str) -> bool {
    labels.iter().any(|l| match l.strip_suffix('*') {
        Some(prefix) => label.starts_with(prefix),
        None => l == label,
    })
}

/// Whether the label set is open: it admits labels it does not name.
pub fn labels_open(labels: &[String]) -> bool {
    labels.iter().any(|l| l.ends_with('*'))
}

impl CatalogMetric {
    fn check(&self) -> Result<(), String> {
        let name = &self.name.value;
        let at = |message: String| {
            format!(
                "line {}: metric `{name}`: {message}",
                self.name.referenced.line()
            )
        };
        if !is_metric_name(name) {
            return Err(at(
                "not a metric name (letters, digits, `_` and `:`, not starting with a digit)"
                    .into(),
            ));
        }
        for label in &self.labels {
            let bare = label.strip_suffix('*').unwrap_or(label);
            if !(bare.is_empty() || is_label_name(bare)) || bare.contains('*') {
                return Err(at(format!(
                    "`{label}` is not a label name; write a name, `prefix_*` for a family of labels, or \"*\" for any label"
                )));
            }
        }
        for label in self.values.keys() {
            if !label_allowed(&self.labels, label) {
                return Err(at(format!(
                    "`values` closes `{label}`, which is not among its labels; add it to `labels`"
                )));
            }
        }
        Ok(())
    }

    /// The series names PromQL sees, as the built-in tables expand them:
    /// a histogram's `_bucket` (with `le`), `_sum` and `_count`; a summary
    /// itself (with `quantile`), `_sum` and `_count`.
    fn series(&self) -> Vec<MetricDecl> {
        let name = &self.name.value;
        let decl = |name: String, kind, extra: Option<&str>| {
            let mut labels = self.labels.clone();
            labels.extend(extra.map(String::from));
            MetricDecl {
                name,
                kind,
                labels,
                scraped_by: self.scraped_by.clone(),
            }
        };
        match self.kind {
            MetricType::Histogram => vec![
                decl(format!("{name}_bucket"), MetricType::Counter, Some("le")),
                decl(format!("{name}_sum"), MetricType::Counter, None),
                decl(format!("{name}_count"), MetricType::Counter, None),
            ],
            MetricType::Summary => vec![
                decl(name.clone(), MetricType::Summary, Some("quantile")),
                decl(format!("{name}_sum"), MetricType::Counter, None),
                decl(format!("{name}_count"), MetricType::Counter, None),
            ],
            kind => vec![decl(name.clone(), kind, None)],
        }
    }
}

/// One scrape path of an exporter: which ServiceMonitor, PodMonitor or
/// scrape job stores its series, and whether it honors the exporter's labels.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeEntry {
    /// `namespace/name`.
    #[serde(default)]
    pub servicemonitor: Option<String>,
    /// `namespace/name`.
    #[serde(default)]
    pub podmonitor: Option<String>,
    /// A plain scrape config's `job_name`.
    #[serde(default)]
    pub job: Option<String>,
    pub exporter: String,
    /// Unknown when absent: both the exporter's label and `exported_<label>` may be stored.
    #[serde(default)]
    pub honor_labels: Option<bool>,
}

impl CatalogFile {
    pub fn parse(text: &str) -> Result<CatalogFile, String> {
        serde_saphyr::from_str(text).map_err(|e| e.to_string())
    }

    /// The versions the file declares, the newest known for the rest.
    pub fn versions(&self) -> Versions {
        let mut versions = Versions::newest();
        for (ExporterKey(exporter), version) in &self.exporters {
            set_version(&mut versions, *exporter, *version);
        }
        versions
    }

    pub fn context(&self) -> Result<Context, String> {
        let versions = self.versions();
        let mut scrape = BTreeMap::new();
        let mut declared = Vec::new();
        for s in &self.scrape {
            let exporter = exporter(&s.exporter).map_err(|e| format!("scrape: {e}"))?;
            if let Some(sm) = &s.servicemonitor {
                scrape.insert(sm.clone(), exporter);
            }
            let named = [
                (Kind::ServiceMonitor, &s.servicemonitor),
                (Kind::PodMonitor, &s.podmonitor),
                (Kind::ScrapeConfig, &s.job),
            ];
            let mut named = named.into_iter().filter(|(_, n)| n.is_some());
            let (kind, name) = match (named.next(), named.next()) {
                (Some((kind, name)), None) => (Some(kind), name.clone()),
                (None, _) => (None, None),
                (Some(_), Some(_)) => {
                    return Err(format!(
                        "scrape: the entry for `{}` names more than one of servicemonitor, podmonitor and job; \
                         write one entry per scrape path",
                        s.exporter
                    ))
                }
            };
            declared.push(Declared {
                kind,
                name,
                exporter,
                honor_labels: s.honor_labels,
            });
        }
        for m in &self.metrics {
            if let Some(by) = &m.scraped_by {
                let named = [&by.servicemonitor, &by.podmonitor, &by.job]
                    .iter()
                    .filter(|n| n.is_some())
                    .count();
                if named != 1 {
                    return Err(format!(
                        "metrics: `{}`: `scraped_by` names {named} scrape paths; give exactly one of \
                         `servicemonitor: namespace/name`, `podmonitor: namespace/name` or `job: job_name`",
                        m.name.value
                    ));
                }
            }
        }
        let mut series = Vec::new();
        for metric in &self.metrics {
            metric.check()?;
            series.extend(metric.series());
        }
        let mut catalog = Catalog::new(&versions, &series);
        for metric in self.metrics.iter().filter(|m| !m.values.is_empty()) {
            for series in metric.series() {
                if let Some(entry) = catalog.metrics.get_mut(&series.name) {
                    entry.values = metric
                        .values
                        .iter()
                        .map(|(label, values)| {
                            (
                                label.clone(),
                                values.iter().cloned().collect::<BTreeSet<_>>(),
                            )
                        })
                        .collect();
                }
            }
        }
        Ok(Context {
            catalog,
            scrape_interval: self.scrape_interval.map(|s| s.0).unwrap_or(60),
            external_labels: self
                .external_labels
                .clone()
                .unwrap_or_else(|| vec!["cluster".into(), "env".into()]),
            scope_labels: self.external_labels.clone().unwrap_or_default(),
            scrape,
            declared,
            paths: ScrapeModel::default(),
            records: BTreeMap::new(),
        })
    }
}

/// `path:N: message` for a message that starts with `line N: `, so an
/// error inside the file reads like every other poolc error.
pub fn located(path: &str, message: &str) -> String {
    let line = message
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
        .filter(|(n, _)| n.chars().all(|c| c.is_ascii_digit()));
    match line {
        Some((n, rest)) => format!("{path}:{n}: {rest}"),
        None => format!("{path}: {message}"),
    }
}

fn set_version(versions: &mut Versions, exporter: Exporter, version: Version) {
    match exporter {
        Exporter::Haproxy => versions.haproxy = version,
        Exporter::Keda => versions.keda = version,
        Exporter::KubeStateMetrics => versions.kube_state_metrics = version,
        Exporter::Karpenter => versions.karpenter = version,
        Exporter::NodeExporter => versions.node_exporter = Some(version),
        Exporter::Prometheus => versions.prometheus = Some(version),
        Exporter::Cadvisor => versions.cadvisor = Some(version),
        Exporter::Kubernetes => versions.kubernetes = Some(version),
        Exporter::Coredns => versions.coredns = Some(version),
        Exporter::Alertmanager => versions.alertmanager = Some(version),
        Exporter::PrometheusOperator => versions.prometheus_operator = Some(version),
        Exporter::ActionsRunnerController => versions.actions_runner_controller = Some(version),
        Exporter::BuildkiteAgentMetrics => versions.buildkite_agent_metrics = Some(version),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(text: &str) -> Result<Context, String> {
        CatalogFile::parse(text)?.context()
    }

    #[test]
    fn undeclared_exporters_take_the_newest_version() {
        let file = CatalogFile::parse("exporters: {keda: \"2.12\"}\n").unwrap();
        let versions = file.versions();
        assert_eq!(versions.keda, Version::minor_only(2, 12));
        assert_eq!(versions.haproxy, Versions::newest().haproxy);
        let err = CatalogFile::parse("exporters: {hapoxy: \"3.1\"}\n").unwrap_err();
        assert!(err.contains("unknown exporter `hapoxy`"), "{err}");
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn histograms_expand_and_value_sets_close() {
        let ctx = context(
            "metrics:\n  - {name: req_seconds, type: histogram, labels: [path]}\n  - {name: state, type: gauge, labels: [phase], values: {phase: [up, down]}}\n",
        )
        .unwrap();
        let bucket = ctx.catalog.get("req_seconds_bucket").unwrap();
        assert_eq!(bucket.labels, ["path", "le"]);
        assert!(ctx.catalog.get("req_seconds_count").is_some());
        assert!(ctx.catalog.get("req_seconds").is_none());
        let state = ctx.catalog.get("state").unwrap();
        assert_eq!(state.values["phase"].len(), 2);
    }

    #[test]
    fn label_patterns() {
        let labels = ["namespace".to_string(), "label_*".to_string()];
        assert!(label_allowed(&labels, "label_team"));
        assert!(label_allowed(&labels, "namespace"));
        assert!(!label_allowed(&labels, "annotation_team"));
        assert!(label_allowed(&["*".to_string()], "anything"));
        assert!(labels_open(&labels));
        let err = context("metrics:\n  - {name: a, type: gauge, labels: [\"la*bel\"]}\n")
            .err()
            .unwrap();
        assert!(err.starts_with("line 2: metric `a`"), "{err}");
        let err = context("metrics:\n  - {name: a, type: gauge, values: {x: [\"1\"]}}\n")
            .err()
            .unwrap();
        assert!(err.contains("not among its labels"), "{err}");
    }
}
