//! `poolc lint --catalog FILE`: the exporters and versions deployed in the
//! target environment, the team's own metrics, which ServiceMonitor scrapes
//! which exporter, the scrape interval and the external labels. Without a
//! file, the newest known versions apply.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::scrape::{Declared, Kind, ScrapeModel};
use super::{Catalog, Context};
use crate::catalog::{Exporter, MetricDecl, Versions};
use crate::spec::Seconds;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile {
    #[serde(default)]
    pub exporters: Option<Versions>,
    #[serde(default)]
    pub metrics: Vec<MetricDecl>,
    #[serde(default)]
    pub scrape: Vec<ScrapeEntry>,
    #[serde(default)]
    pub scrape_interval: Option<Seconds>,
    #[serde(default)]
    pub external_labels: Option<Vec<String>>,
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

    pub fn context(&self) -> Result<Context, String> {
        let versions = self.exporters.clone().unwrap_or_else(Versions::newest);
        let mut scrape = BTreeMap::new();
        let mut declared = Vec::new();
        for s in &self.scrape {
            let exporter = Exporter::parse(&s.exporter).ok_or_else(|| {
                format!(
                    "scrape: unknown exporter `{}` (known: haproxy, keda, kube-state-metrics, karpenter)",
                    s.exporter
                )
            })?;
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
                        m.name
                    ));
                }
            }
        }
        Ok(Context {
            catalog: Catalog::new(&versions, &self.metrics),
            scrape_interval: self.scrape_interval.map(|s| s.0).unwrap_or(60),
            external_labels: self
                .external_labels
                .clone()
                .unwrap_or_else(|| vec!["cluster".into(), "env".into()]),
            scrape,
            declared,
            paths: ScrapeModel::default(),
        })
    }
}
