//! The scrape path: how an exporter's series arrive in Prometheus, and so
//! which labels they carry there. A rule is judged against what Prometheus
//! stores, not against what the exporter prints.
//!
//! prometheus-operator turns a ServiceMonitor endpoint into a scrape job
//! whose targets carry `job`, `instance`, `namespace`, `service`, `pod`,
//! `container` and `endpoint` (a PodMonitor: no `service`; a plain scrape
//! config: `job` and `instance`), plus `targetLabels`/`podTargetLabels` and
//! whatever its `relabelings` write. Without `honorLabels: true`, an
//! exporter's own label of the same name as a target label is stored as
//! `exported_<label>`, and the target's value takes the name. Then
//! `metricRelabelings` run on every series (`labeldrop`, `labelkeep`,
//! `labelmap`, `replace`).
//!
//! Paths come from the ServiceMonitors, PodMonitors and `scrape_configs`
//! among the inputs, and from the catalog (`scrape:` entries and each
//! declared metric's `scraped_by`). An exporter with no known path is
//! judged leniently: it may carry both its own label and `exported_<label>`.

use std::collections::{BTreeMap, BTreeSet};

use regex::Regex;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::Workspace;
use crate::catalog::{Exporter, ScrapedBy};

/// The kinds of scrape configuration poolc reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    ServiceMonitor,
    PodMonitor,
    /// A `scrape_configs` entry of a Prometheus configuration.
    ScrapeConfig,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ServiceMonitor => "ServiceMonitor",
            Kind::PodMonitor => "PodMonitor",
            Kind::ScrapeConfig => "scrape job",
        }
    }

    /// The labels prometheus-operator (or Prometheus) gives every target.
    fn target_labels(self) -> &'static [&'static str] {
        match self {
            Kind::ServiceMonitor => &[
                "job",
                "instance",
                "namespace",
                "service",
                "pod",
                "container",
                "endpoint",
            ],
            Kind::PodMonitor => &[
                "job",
                "instance",
                "namespace",
                "pod",
                "container",
                "endpoint",
            ],
            Kind::ScrapeConfig => &["job", "instance"],
        }
    }

    /// The field that turns the exporter's labels on.
    pub fn honor_field(self) -> &'static str {
        match self {
            Kind::ScrapeConfig => "honor_labels: true",
            _ => "honorLabels: true",
        }
    }
}

/// One relabeling step, in either spelling (operator camelCase or
/// Prometheus snake_case).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Relabel {
    #[serde(default, deserialize_with = "nullable", alias = "source_labels")]
    pub source_labels: Vec<String>,
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub regex: Option<String>,
    #[serde(default, alias = "target_label")]
    pub target_label: Option<String>,
    #[serde(default)]
    pub replacement: Option<String>,
    /// The compiled regex, built once: a path's relabelings are applied to
    /// every metric of its exporter.
    #[serde(skip)]
    compiled: std::sync::OnceLock<Option<Regex>>,
}

/// The most memory one compiled relabel or keep regex may take. Real keep
/// regexes are an alternation of names, tens of KiB compiled; a hostile one
/// (`\w{1,300}` repeated) would take megabytes each, so past this it is not
/// judged.
pub const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// `re` anchored as Prometheus anchors it, compiled under [`REGEX_SIZE_LIMIT`].
pub fn anchored(re: &str) -> Option<Regex> {
    regex::RegexBuilder::new(&format!("^(?:{re})$"))
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .ok()
}

impl Relabel {
    fn action(&self) -> String {
        self.action
            .as_deref()
            .unwrap_or("replace")
            .to_ascii_lowercase()
    }

    /// The regex as Prometheus anchors it; `(.*)` by default.
    fn regex(&self) -> Option<Regex> {
        self.compiled
            .get_or_init(|| anchored(self.regex.as_deref().unwrap_or("(.*)")))
            .clone()
    }
}

/// How one scrape stores the series of its targets.
#[derive(Debug, Clone)]
pub struct ScrapePath {
    pub kind: Kind,
    /// `namespace/name`, or the job name of a scrape config.
    pub name: String,
    /// Where it is declared: `file:line`, or `the catalog`.
    pub at: String,
    pub exporter: Option<Exporter>,
    /// None when declared in the catalog without saying.
    pub honor_labels: Option<bool>,
    /// Labels every target carries after `relabelings`.
    pub target: BTreeSet<String>,
    /// A `labelmap` or templated target label: any label may be added.
    pub target_open: bool,
    /// The values `namespace` can take as a target label, when known.
    pub namespaces: Option<BTreeSet<String>>,
    pub metric_relabelings: Vec<Relabel>,
}

/// The labels of a series as stored, and which of the exporter's own labels
/// the scrape renamed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stored {
    pub labels: BTreeSet<String>,
    /// Labels every series carries (the exporter's, as stored, and the target's).
    pub guaranteed: BTreeSet<String>,
    pub open: bool,
    /// Exporter label → the name it is stored under.
    pub renamed: BTreeMap<String, String>,
}

impl ScrapePath {
    fn new(kind: Kind, name: String, at: String) -> ScrapePath {
        ScrapePath {
            kind,
            name,
            at,
            exporter: None,
            honor_labels: Some(false),
            target: kind.target_labels().iter().map(|s| s.to_string()).collect(),
            target_open: false,
            namespaces: None,
            metric_relabelings: Vec::new(),
        }
    }

    /// Applies target `relabelings`: they write, drop or keep target labels.
    fn relabel_targets(&mut self, relabelings: &[Relabel]) {
        for r in relabelings {
            let Some(re) = r.regex() else { continue };
            match r.action().as_str() {
                "replace" | "lowercase" | "uppercase" | "hashmod" => {
                    if let Some(t) = &r.target_label {
                        if t.contains('$') {
                            self.target_open = true;
                        } else if !t.starts_with("__") {
                            self.target.insert(t.clone());
                        }
                    }
                }
                // Maps discovery labels (`__meta_...`) we cannot see.
                "labelmap" => self.target_open = true,
                "labeldrop" => self.target.retain(|l| !re.is_match(l)),
                "labelkeep" => self.target.retain(|l| re.is_match(l)),
                _ => {}
            }
        }
    }

    /// What Prometheus stores for a series whose exporter labels are `own`.
    pub fn stored(&self, own: &[String]) -> Stored {
        let mut out = Stored {
            open: self.target_open,
            ..Default::default()
        };
        for l in own {
            let conflicts = self.target.contains(l);
            match self.honor_labels {
                Some(false) if conflicts => {
                    let exported = format!("exported_{l}");
                    out.labels.insert(exported.clone());
                    out.guaranteed.insert(exported.clone());
                    out.renamed.insert(l.clone(), exported);
                }
                None if conflicts => {
                    out.labels.insert(format!("exported_{l}"));
                    out.labels.insert(l.clone());
                }
                _ => {
                    out.labels.insert(l.clone());
                    out.guaranteed.insert(l.clone());
                }
            }
        }
        out.labels.extend(self.target.iter().cloned());
        out.guaranteed.extend(self.target.iter().cloned());
        for r in &self.metric_relabelings {
            let Some(re) = r.regex() else { continue };
            match r.action().as_str() {
                "replace" | "lowercase" | "uppercase" | "hashmod" => match &r.target_label {
                    Some(t) if t.contains('$') => out.open = true,
                    Some(t) if !t.starts_with("__") => {
                        out.labels.insert(t.clone());
                    }
                    _ => {}
                },
                "labeldrop" => {
                    out.labels.retain(|l| !re.is_match(l));
                    out.guaranteed.retain(|l| !re.is_match(l));
                    out.renamed.retain(|_, to| !re.is_match(to));
                }
                "labelkeep" => {
                    out.labels.retain(|l| re.is_match(l));
                    out.guaranteed.retain(|l| re.is_match(l));
                    out.renamed.retain(|_, to| re.is_match(to));
                }
                "labelmap" => {
                    let replacement = r.replacement.as_deref().unwrap_or("$1");
                    let mapped: Vec<String> = out
                        .labels
                        .iter()
                        .filter(|l| re.is_match(l))
                        .map(|l| re.replace(l, replacement).into_owned())
                        .collect();
                    out.labels.extend(mapped);
                }
                _ => {}
            }
        }
        out
    }

    /// Whether it was read from an input file, not declared in the catalog.
    pub fn among_inputs(&self) -> bool {
        self.at != DECLARED
    }

    /// The kind, name and place, for messages.
    pub fn described(&self) -> String {
        format!("{} {} ({})", self.kind.as_str(), self.name, self.at)
    }
}

/// Where a path declared in the catalog "is".
const DECLARED: &str = "declared in the catalog";

/// Every scrape path known to one lint run.
#[derive(Debug, Clone, Default)]
pub struct ScrapeModel {
    pub paths: Vec<ScrapePath>,
}

/// A scrape path the catalog file declares (`scrape:`).
#[derive(Debug, Clone)]
pub struct Declared {
    pub kind: Option<Kind>,
    pub name: Option<String>,
    pub exporter: Exporter,
    pub honor_labels: Option<bool>,
}

impl ScrapeModel {
    /// The paths among the inputs, then the catalog's for the ones not there.
    pub fn build(ws: &Workspace, declared: &[Declared]) -> ScrapeModel {
        let mut paths = ws.scrape_paths.clone();
        for path in &mut paths {
            let named = declared
                .iter()
                .find(|d| d.kind == Some(path.kind) && d.name.as_deref() == Some(&path.name));
            if let Some(d) = named {
                path.exporter = Some(d.exporter);
            }
        }
        for d in declared {
            let among_inputs = paths
                .iter()
                .any(|p| Some(p.kind) == d.kind && Some(&p.name) == d.name.as_ref());
            if among_inputs {
                continue;
            }
            let kind = d.kind.unwrap_or(Kind::ServiceMonitor);
            let mut p = ScrapePath::new(
                kind,
                d.name
                    .clone()
                    .unwrap_or_else(|| d.exporter.as_str().to_string()),
                DECLARED.into(),
            );
            p.exporter = Some(d.exporter);
            p.honor_labels = d.honor_labels;
            paths.push(p);
        }
        ScrapeModel { paths }
    }

    pub fn for_exporter(&self, exporter: Exporter) -> impl Iterator<Item = &ScrapePath> {
        self.paths
            .iter()
            .filter(move |p| p.exporter == Some(exporter))
    }

    /// The path a user's metric names, among the inputs or as declared.
    pub fn for_user(&self, by: &ScrapedBy) -> ScrapePath {
        let (kind, name) = match (&by.servicemonitor, &by.podmonitor, &by.job) {
            (Some(n), _, _) => (Kind::ServiceMonitor, n),
            (_, Some(n), _) => (Kind::PodMonitor, n),
            (_, _, Some(n)) => (Kind::ScrapeConfig, n),
            _ => (Kind::ScrapeConfig, &String::new()),
        };
        if let Some(p) = self
            .paths
            .iter()
            .find(|p| p.kind == kind && &p.name == name)
        {
            return p.clone();
        }
        let mut p = ScrapePath::new(kind, name.clone(), DECLARED.into());
        p.honor_labels = Some(by.honor_labels.unwrap_or(false));
        p
    }

    /// The labels stored for a series with `own` labels scraped by any of
    /// `paths`; lenient when there is none.
    pub fn stored_over<'a>(
        paths: impl IntoIterator<Item = &'a ScrapePath>,
        own: &[String],
    ) -> Stored {
        let mut paths = paths.into_iter().peekable();
        if paths.peek().is_none() {
            let mut unknown = ScrapePath::new(Kind::ServiceMonitor, String::new(), String::new());
            unknown.honor_labels = None;
            return unknown.stored(own);
        }
        let mut out: Option<Stored> = None;
        for p in paths {
            let s = p.stored(own);
            out = Some(match out {
                None => s,
                Some(acc) => Stored {
                    labels: acc.labels.union(&s.labels).cloned().collect(),
                    guaranteed: acc
                        .guaranteed
                        .intersection(&s.guaranteed)
                        .cloned()
                        .collect(),
                    open: acc.open || s.open,
                    // Renamed only where every path renames.
                    renamed: acc
                        .renamed
                        .into_iter()
                        .filter(|(k, _)| s.renamed.contains_key(k))
                        .collect(),
                },
            });
        }
        out.unwrap_or_default()
    }
}

/// Whether a target label may come from relabeling poolc cannot see, for
/// an exporter whose scrape is not among the inputs: `metrics_path` (the
/// kubelet's monitors write it from `__metrics_path__`), and a Kubernetes
/// label key as a `labelmap` of pod or service labels writes it
/// (`actions.github.com/scale-set-name` → `actions_github_com_scale_set_name`).
pub fn relabeling_may_add(label: &str) -> bool {
    label == "metrics_path"
        || ["_io_", "_com_", "_sh_", "_dev_", "_org_", "_net_"]
            .iter()
            .any(|domain| label.contains(domain))
}

/// The exporter a `keep` regex on `__name__` is for, by its first name's prefix.
pub fn exporter_of_regex(regex: &str) -> Option<Exporter> {
    let first = regex
        .trim_start_matches(['(', '^'])
        .split(['|', ')'])
        .next()?;
    exporter_of_name(first).or_else(|| exporter_of_metric(first))
}

/// The exporter whose series a metric name prefix names, for exporters
/// whose names share no prefix with their app's name.
fn exporter_of_metric(name: &str) -> Option<Exporter> {
    [
        ("node_", Exporter::NodeExporter),
        ("container_", Exporter::Cadvisor),
        ("machine_", Exporter::Cadvisor),
        ("coredns_", Exporter::Coredns),
        ("alertmanager_", Exporter::Alertmanager),
        ("prometheus_operator_", Exporter::PrometheusOperator),
        ("prometheus_", Exporter::Prometheus),
        ("apiserver_", Exporter::Kubernetes),
        ("kubelet_", Exporter::Kubernetes),
        ("gha_", Exporter::ActionsRunnerController),
        ("buildkite_", Exporter::BuildkiteAgentMetrics),
    ]
    .into_iter()
    .find(|(prefix, _)| name.starts_with(prefix))
    .map(|(_, e)| e)
}

/// The exporter an app's name (a selector's `app.kubernetes.io/name`,
/// `k8s-app` or `app`, a monitor's or job's name) stands for, as the
/// stock charts and kube-prometheus name them. The kubelet serves
/// cAdvisor's families on `/metrics/cadvisor` and its own elsewhere.
fn exporter_of_app(name: &str) -> Option<Exporter> {
    if let Some(e) = exporter_of_name(name) {
        return Some(e);
    }
    let name = name.to_ascii_lowercase();
    let e = match name.as_str() {
        "node-exporter" | "node_exporter" | "prometheus-node-exporter" | "node" => {
            Exporter::NodeExporter
        }
        "cadvisor" => Exporter::Cadvisor,
        "kubelet"
        | "kube-apiserver"
        | "apiserver"
        | "kube-controller-manager"
        | "kube-scheduler"
        | "kube-proxy"
        | "kubernetes-apiservers"
        | "kubernetes-nodes" => Exporter::Kubernetes,
        "coredns" | "kube-dns" => Exporter::Coredns,
        "prometheus" => Exporter::Prometheus,
        "alertmanager" => Exporter::Alertmanager,
        "prometheus-operator" | "kube-prometheus-stack-operator" => Exporter::PrometheusOperator,
        "gha-runner-scale-set-controller" | "gha-rs-controller" | "actions-runner-controller" => {
            Exporter::ActionsRunnerController
        }
        "buildkite-agent-metrics" => Exporter::BuildkiteAgentMetrics,
        _ if name.contains("cadvisor") => Exporter::Cadvisor,
        _ => return None,
    };
    Some(e)
}

/// The exporter one endpoint scrapes, where its path or port says more
/// than its monitor: the kubelet's `/metrics/cadvisor` serves cAdvisor,
/// a `reloader-web` port prometheus-operator's config reloader.
fn exporter_of_endpoint(e: &Endpoint) -> Option<Exporter> {
    let path = e.path.as_deref().unwrap_or_default();
    let port = e.port.as_deref().unwrap_or_default();
    if path.contains("cadvisor") {
        Some(Exporter::Cadvisor)
    } else if port.contains("reloader") {
        Some(Exporter::PrometheusOperator)
    } else {
        None
    }
}

fn exporter_of_name(name: &str) -> Option<Exporter> {
    [
        ("haproxy", Exporter::Haproxy),
        ("keda", Exporter::Keda),
        ("kube-state-metrics", Exporter::KubeStateMetrics),
        ("kube_", Exporter::KubeStateMetrics),
        ("karpenter", Exporter::Karpenter),
    ]
    .into_iter()
    .find(|(prefix, _)| name.starts_with(prefix))
    .map(|(_, e)| e)
}

#[derive(Deserialize)]
struct Doc {
    kind: Option<String>,
    metadata: Option<Meta>,
    spec: Option<serde_json::Value>,
    scrape_configs: Option<serde_json::Value>,
    /// A `List` of objects.
    #[serde(default, deserialize_with = "nullable")]
    items: Vec<Doc>,
}

#[derive(Deserialize)]
struct Meta {
    name: Option<Spanned<String>>,
    namespace: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    labels: BTreeMap<String, Option<String>>,
}

/// `null` read as the empty value, as the Kubernetes API and Helm's
/// output treat it (`relabelings: null`, `labels: null`).
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct MonitorSpec {
    #[serde(default, deserialize_with = "nullable")]
    target_labels: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pod_target_labels: Vec<String>,
    namespace_selector: Option<NamespaceSelector>,
    #[serde(default, deserialize_with = "nullable")]
    selector: Option<Selector>,
    #[serde(default, deserialize_with = "nullable")]
    endpoints: Vec<Endpoint>,
    #[serde(default, deserialize_with = "nullable")]
    pod_metrics_endpoints: Vec<Endpoint>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct NamespaceSelector {
    #[serde(default, deserialize_with = "nullable")]
    any: bool,
    #[serde(default, deserialize_with = "nullable")]
    match_names: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Selector {
    #[serde(default, deserialize_with = "nullable")]
    match_labels: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Endpoint {
    #[serde(default, deserialize_with = "nullable", alias = "honor_labels")]
    honor_labels: bool,
    #[serde(default, deserialize_with = "nullable", alias = "relabel_configs")]
    relabelings: Vec<Relabel>,
    #[serde(
        default,
        deserialize_with = "nullable",
        alias = "metric_relabel_configs"
    )]
    metric_relabelings: Vec<Relabel>,
    /// Only in scrape configs.
    #[serde(rename = "job_name")]
    job_name: Option<String>,
    #[serde(default, deserialize_with = "nullable", alias = "metrics_path")]
    path: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    port: Option<String>,
}

/// The scrape paths in one input file, if it is YAML that holds any.
pub fn read_paths(path: &str, text: &str, out: &mut Vec<ScrapePath>) {
    let yaml = path.ends_with(".yaml") || path.ends_with(".yml");
    if yaml
        && (text.contains("ServiceMonitor")
            || text.contains("PodMonitor")
            || text.contains("scrape_configs"))
    {
        read_file(path, text, out);
    }
}

/// The scrape paths in one YAML file. A file that does not read is
/// reported by the input reader; here it adds nothing.
fn read_file(path: &str, text: &str, out: &mut Vec<ScrapePath>) {
    let Ok(mut docs) = serde_saphyr::from_multiple::<Doc>(text) else {
        return;
    };
    // The items of a `List` are read as documents of their own.
    let mut at = 0;
    while at < docs.len() {
        let items = std::mem::take(&mut docs[at].items);
        docs.extend(items);
        at += 1;
    }
    for doc in docs {
        if let Some(configs) = doc.scrape_configs {
            let configs: Vec<Endpoint> = serde_json::from_value(configs).unwrap_or_default();
            for c in configs {
                let Some(job) = c.job_name.clone() else {
                    continue;
                };
                let mut p = ScrapePath::new(Kind::ScrapeConfig, job.clone(), path.to_string());
                p.exporter = exporter_of_endpoint(&c).or_else(|| exporter_of_app(&job));
                scrape_endpoint(&mut p, &c);
                out.push(p);
            }
        }
        let kind = match doc.kind.as_deref() {
            Some("ServiceMonitor") => Kind::ServiceMonitor,
            Some("PodMonitor") => Kind::PodMonitor,
            _ => continue,
        };
        let Some(meta) = doc.metadata else { continue };
        let Some(name) = meta.name else { continue };
        let line = usize::try_from(name.referenced.line()).unwrap_or(1).max(1);
        let namespace = meta.namespace.unwrap_or_else(|| "default".into());
        let spec: MonitorSpec = doc
            .spec
            .and_then(|s| serde_json::from_value(s).ok())
            .unwrap_or_default();
        let endpoints = match kind {
            Kind::PodMonitor => &spec.pod_metrics_endpoints,
            _ => &spec.endpoints,
        };
        // The app's name first, then any other value the selector matches.
        let selector_values: Vec<String> = spec
            .selector
            .as_ref()
            .map(|s| {
                let named = ["app.kubernetes.io/name", "k8s-app", "app", "name"]
                    .iter()
                    .filter_map(|k| s.match_labels.get(*k));
                named.chain(s.match_labels.values()).cloned().collect()
            })
            .unwrap_or_default();
        let labelled = meta
            .labels
            .get("poolc.dev/exporter")
            .and_then(|e| e.as_deref().and_then(Exporter::parse));
        let exporter = labelled
            .or_else(|| {
                endpoints
                    .iter()
                    .flat_map(|e| &e.metric_relabelings)
                    .filter(|r| {
                        r.source_labels == ["__name__"] && matches!(r.action().as_str(), "keep")
                    })
                    .find_map(|r| r.regex.as_deref().and_then(exporter_of_regex))
            })
            .or_else(|| selector_values.iter().find_map(|v| exporter_of_app(v)))
            .or_else(|| exporter_of_app(&name.value));
        let namespaces = match &spec.namespace_selector {
            Some(s) if s.any => None,
            Some(s) if !s.match_names.is_empty() => Some(s.match_names.iter().cloned().collect()),
            _ => Some(BTreeSet::from([namespace.clone()])),
        };
        for endpoint in endpoints {
            let mut p = ScrapePath::new(
                kind,
                format!("{namespace}/{}", name.value),
                format!("{path}:{line}"),
            );
            p.exporter = labelled
                .or_else(|| exporter_of_endpoint(endpoint))
                .or(exporter);
            p.namespaces = namespaces.clone();
            p.target.extend(spec.target_labels.iter().cloned());
            p.target.extend(spec.pod_target_labels.iter().cloned());
            scrape_endpoint(&mut p, endpoint);
            out.push(p);
        }
    }
}

fn scrape_endpoint(p: &mut ScrapePath, e: &Endpoint) {
    p.honor_labels = Some(e.honor_labels);
    p.relabel_targets(&e.relabelings);
    if e.relabelings
        .iter()
        .any(|r| r.target_label.as_deref() == Some("namespace") && r.action() == "replace")
    {
        p.namespaces = None;
    }
    p.metric_relabelings = e.metric_relabelings.clone();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own(labels: &[&str]) -> Vec<String> {
        labels.iter().map(|s| s.to_string()).collect()
    }

    fn model(yaml: &str) -> ScrapeModel {
        let mut ws = Workspace::default();
        ws.add("sm.yaml", yaml);
        ScrapeModel::build(&ws, &[])
    }

    const KEDA: &str = "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata:\n  name: keda\n  namespace: monitoring\n  labels: {poolc.dev/exporter: keda}\nspec:\n  namespaceSelector: {matchNames: [keda]}\n  selector: {matchLabels: {app: x}}\n  endpoints:\n  - port: metrics\n";

    #[test]
    fn without_honor_labels_a_conflicting_label_is_exported() {
        let m = model(KEDA);
        let p = &m.paths[0];
        assert_eq!(p.exporter, Some(Exporter::Keda));
        assert_eq!(p.at, "sm.yaml:4");
        assert_eq!(p.namespaces, Some(BTreeSet::from(["keda".to_string()])));
        let s = p.stored(&own(&["namespace", "scaledObject"]));
        assert_eq!(s.renamed["namespace"], "exported_namespace");
        assert!(s.labels.contains("exported_namespace") && s.labels.contains("namespace"));
        assert!(s.labels.contains("scaledObject") && s.labels.contains("endpoint"));
    }

    #[test]
    fn honor_labels_keeps_the_exporters_label() {
        let m = model(&KEDA.replace("- port: metrics", "- port: metrics\n    honorLabels: true"));
        let s = m.paths[0].stored(&own(&["namespace"]));
        assert!(s.renamed.is_empty());
        assert!(!s.labels.contains("exported_namespace"));
    }

    #[test]
    fn relabelings_add_drop_and_map() {
        let yaml = KEDA.replace(
            "- port: metrics\n",
            "- port: metrics\n    relabelings:\n    - sourceLabels: [__metrics_path__]\n      targetLabel: metrics_path\n    - action: labeldrop\n      regex: container|endpoint\n    metricRelabelings:\n    - action: labelmap\n      regex: exported_(.+)\n      replacement: keda_$1\n    - action: labeldrop\n      regex: scaler\n",
        );
        let s = model(&yaml).paths[0].stored(&own(&["namespace", "scaler"]));
        assert!(s.labels.contains("metrics_path"));
        assert!(!s.labels.contains("container") && !s.labels.contains("endpoint"));
        assert!(s.labels.contains("keda_namespace"));
        assert!(!s.labels.contains("scaler"));
    }

    #[test]
    fn a_plain_scrape_config_has_job_and_instance() {
        let m = model("scrape_configs:\n- job_name: keda\n  honor_labels: false\n  static_configs: [{targets: ['a:1']}]\n");
        let s = m.paths[0].stored(&own(&["namespace"]));
        assert_eq!(m.paths[0].exporter, Some(Exporter::Keda));
        assert!(s.renamed.is_empty());
        assert_eq!(
            s.labels,
            BTreeSet::from(["instance".into(), "job".into(), "namespace".into()])
        );
    }

    #[test]
    fn a_pod_monitor_has_no_service_and_its_own_namespace() {
        let m = model("apiVersion: monitoring.coreos.com/v1\nkind: PodMonitor\nmetadata:\n  name: karpenter\n  namespace: kube-system\nspec:\n  podTargetLabels: [team]\n  selector: {matchLabels: {app.kubernetes.io/name: karpenter}}\n  podMetricsEndpoints:\n  - port: http-metrics\n    honorLabels: true\n");
        let p = &m.paths[0];
        assert_eq!(
            (p.kind, p.exporter),
            (Kind::PodMonitor, Some(Exporter::Karpenter))
        );
        assert_eq!(
            p.namespaces,
            Some(BTreeSet::from(["kube-system".to_string()]))
        );
        let s = p.stored(&own(&["namespace", "nodepool"]));
        assert!(s.renamed.is_empty());
        assert!(!s.labels.contains("service"));
        assert!(s.labels.contains("team") && s.labels.contains("pod"));
    }

    #[test]
    fn the_catalog_declares_paths_not_among_the_inputs() {
        let declared = [Declared {
            kind: Some(Kind::ServiceMonitor),
            name: Some("monitoring/ksm".into()),
            exporter: Exporter::KubeStateMetrics,
            honor_labels: Some(false),
        }];
        let m = ScrapeModel::build(&Workspace::default(), &declared);
        let s = ScrapeModel::stored_over(
            m.for_exporter(Exporter::KubeStateMetrics),
            &own(&["namespace", "deployment"]),
        );
        assert_eq!(s.renamed["namespace"], "exported_namespace");
        assert!(s.labels.contains("deployment"));
    }

    #[test]
    fn nulls_and_list_items_are_read_as_the_api_server_reads_them() {
        let m = model("apiVersion: v1\nkind: List\nitems:\n  - apiVersion: monitoring.coreos.com/v1\n    kind: ServiceMonitor\n    metadata:\n      name: keda-operator\n      namespace: keda\n      labels: null\n    spec:\n      targetLabels: null\n      selector: {matchLabels: {app: keda-operator}}\n      endpoints:\n        - port: metrics\n          honorLabels: null\n          relabelings: null\n          metricRelabelings: null\n");
        assert_eq!(m.paths.len(), 1);
        assert_eq!(m.paths[0].exporter, Some(Exporter::Keda));
        let s = m.paths[0].stored(&own(&["namespace"]));
        assert_eq!(s.renamed["namespace"], "exported_namespace");
    }

    #[test]
    fn the_kubelets_endpoints_serve_its_own_families_and_cadvisors() {
        let m = model("apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata:\n  name: kubelet\n  namespace: monitoring\nspec:\n  selector: {matchLabels: {app.kubernetes.io/name: kubelet}}\n  endpoints:\n  - port: https-metrics\n    honorLabels: true\n    relabelings:\n    - sourceLabels: [__metrics_path__]\n      targetLabel: metrics_path\n  - port: https-metrics\n    path: /metrics/cadvisor\n    honorLabels: true\n");
        let exporters: Vec<_> = m.paths.iter().map(|p| p.exporter).collect();
        assert_eq!(
            exporters,
            [Some(Exporter::Kubernetes), Some(Exporter::Cadvisor)]
        );
        assert!(m.paths[0].target.contains("metrics_path"));
        assert!(!m.paths[1].target.contains("metrics_path"));
    }

    #[test]
    fn stock_app_names_and_keep_lists_name_their_exporter() {
        for (app, exporter) in [
            ("node-exporter", Exporter::NodeExporter),
            ("prometheus-node-exporter", Exporter::NodeExporter),
            ("kube-dns", Exporter::Coredns),
            ("alertmanager", Exporter::Alertmanager),
            ("prometheus", Exporter::Prometheus),
            ("prometheus-operator", Exporter::PrometheusOperator),
        ] {
            assert_eq!(exporter_of_app(app), Some(exporter), "{app}");
        }
        assert_eq!(exporter_of_app("prometheus-adapter"), None);
        assert_eq!(
            exporter_of_regex("node_cpu_seconds_total|node_load1"),
            Some(Exporter::NodeExporter)
        );
        assert_eq!(
            exporter_of_regex("prometheus_operator_.*"),
            Some(Exporter::PrometheusOperator)
        );
    }

    #[test]
    fn no_known_path_is_lenient() {
        let s = ScrapeModel::stored_over(std::iter::empty(), &own(&["namespace"]));
        assert!(s.renamed.is_empty());
        assert!(s.labels.contains("namespace") && s.labels.contains("exported_namespace"));
    }
}
