//! `<cluster>/poolc-catalog.yaml`: what the cluster's spec tells the PromQL
//! gate (exporter versions, the team's own metrics, which ServiceMonitor
//! scrapes which exporter, the scrape interval, external labels), in the
//! `poolc lint --catalog` format. `poolc lint generated/` picks it up for the
//! files beside it, so a standalone lint of the tree judges every expression
//! exactly as `generate` did, against the versions actually deployed.

use serde::Serialize;

use super::{header, path, to_yaml, RenderError};
use crate::catalog::MetricDecl;
use crate::fileset::File;
use crate::model::Cluster;

/// The file name `poolc lint` looks for in a linted file's directory and its parents.
pub const FILE: &str = crate::lint::CATALOG_FILE;

#[derive(Serialize)]
struct CatalogFile<'a> {
    exporters: Exporters,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    metrics: &'a [MetricDecl],
    scrape: Vec<Scrape>,
    scrape_interval: String,
    external_labels: &'a [String],
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Exporters {
    haproxy: String,
    keda: String,
    kube_state_metrics: String,
    karpenter: String,
}

#[derive(Serialize)]
struct Scrape {
    servicemonitor: String,
    exporter: &'static str,
}

pub fn render(cluster: &Cluster) -> Result<Vec<File>, RenderError> {
    let versions = &cluster.exporters;
    let file = CatalogFile {
        exporters: Exporters {
            haproxy: versions.haproxy.to_string(),
            keda: versions.keda.to_string(),
            kube_state_metrics: versions.kube_state_metrics.to_string(),
            karpenter: versions.karpenter.to_string(),
        },
        metrics: &cluster.metrics,
        scrape: vec![Scrape {
            servicemonitor: format!("{}/{}", cluster.namespace, cluster.lb.name),
            exporter: "haproxy",
        }],
        scrape_interval: cluster.scrape_interval.to_string(),
        external_labels: &cluster.monitoring.external_labels,
    };
    let mut text = header(cluster, "#");
    text.push_str("# `poolc lint` reads this for the files in this directory.\n");
    text.push_str(&to_yaml(&file, FILE)?);
    Ok(vec![File::new(path(cluster, FILE), text)])
}
