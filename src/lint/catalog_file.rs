//! `poolc lint --catalog FILE`: the exporters and versions deployed in the
//! target environment, the team's own metrics, which ServiceMonitor scrapes
//! which exporter, the scrape interval and the external labels. Without a
//! file, the newest known versions apply.

use std::collections::BTreeMap;

use serde::Deserialize;

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeEntry {
    /// `namespace/name`.
    pub servicemonitor: String,
    pub exporter: String,
}

impl CatalogFile {
    pub fn parse(text: &str) -> Result<CatalogFile, String> {
        serde_saphyr::from_str(text).map_err(|e| e.to_string())
    }

    pub fn context(&self) -> Result<Context, String> {
        let versions = self.exporters.clone().unwrap_or_else(Versions::newest);
        let mut scrape = BTreeMap::new();
        for s in &self.scrape {
            let exporter = Exporter::parse(&s.exporter).ok_or_else(|| {
                format!(
                    "scrape: unknown exporter `{}` (known: haproxy, keda, kube-state-metrics, karpenter)",
                    s.exporter
                )
            })?;
            scrape.insert(s.servicemonitor.clone(), exporter);
        }
        Ok(Context {
            catalog: Catalog::new(&versions, &self.metrics),
            scrape_interval: self.scrape_interval.map(|s| s.0).unwrap_or(60),
            external_labels: self
                .external_labels
                .clone()
                .unwrap_or_else(|| vec!["cluster".into(), "env".into()]),
            scope_labels: self.external_labels.clone().unwrap_or_default(),
            scrape,
            records: BTreeMap::new(),
        })
    }
}
