//! Kubernetes: the metrics of the API server, the aggregator and the
//! component-base families every component serves (`kubernetes_build_info`,
//! `rest_client_*`, `workqueue_*`, leader election, feature gates), read
//! from the Go source of the published `k8s.io/apiserver`,
//! `k8s.io/component-base` and `k8s.io/kube-aggregator` modules at their
//! `kubernetes-1.X.Y` tags. Those modules are cut from the Kubernetes tree at
//! every Kubernetes release, patch releases included, so each tag is one
//! Kubernetes version; versions start at 1.20, and a release is read when
//! all three modules carry its tag.
//!
//! A family is a `metrics.{Counter,Gauge,Histogram,Summary}Opts{…}`
//! registration (component-base's wrappers take the same options as the
//! Prometheus client) with its label list, or a `NewDesc` descriptor.
//!
//! When a clone of `kubernetes/kubernetes` is also in the clones directory,
//! each release adds the families of its `v1.X.Y` tag: the documented
//! metric lists under `test/instrumentation/` (the stable list, and the list
//! of every documented metric where the tag has one), and the
//! registrations in the kubelet, scheduler, kube-proxy and volume packages.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;

use super::{find_clone, gosrc, ExtractError, Releases, Repo, Row};
use crate::catalog::Version;

pub const SOURCES: &[&str] = &[
    "kubernetes/apiserver",
    "kubernetes/component-base",
    "kubernetes/kube-aggregator",
];

/// The monorepo, read when present.
pub const MONOREPO: &str = "kubernetes/kubernetes";

const FIRST: Version = Version::new(1, 20);

/// Where each published module keeps its metrics.
const MODULE_DIRS: [&[&str]; 3] = [&["pkg", "plugin"], &["metrics"], &["pkg"]];

/// The monorepo's packages that register kubelet, scheduler, kube-proxy
/// and volume families.
const MONOREPO_DIRS: &[&str] = &["pkg/kubelet", "pkg/scheduler", "pkg/proxy", "pkg/volume"];

const LISTS: &[&str] = &[
    "test/instrumentation/testdata/stable-metrics-list.yaml",
    "test/instrumentation/testdata/documentation-list.yaml",
    "test/instrumentation/documentation/documentation-list.yaml",
];

/// One entry of a documented metrics list.
#[derive(Debug, Deserialize)]
struct Documented {
    name: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    subsystem: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    labels: Vec<String>,
}

/// The rows of a documented metrics list (YAML: a sequence of metrics with
/// `name`, `namespace`, `subsystem`, `type` and `labels`).
pub fn documented(text: &str) -> Vec<Row> {
    let Ok(entries) = serde_saphyr::from_str::<Vec<Documented>>(text) else {
        return Vec::new();
    };
    entries
        .into_iter()
        .map(|e| {
            let name: Vec<&str> = [e.namespace.as_str(), e.subsystem.as_str(), e.name.as_str()]
                .into_iter()
                .filter(|p| !p.is_empty())
                .collect();
            let kind = match e.kind.as_str() {
                "Counter" => "counter",
                "Gauge" => "gauge",
                "Histogram" | "TimingRatioHistogram" => "histogram",
                "Summary" => "summary",
                _ => "untyped",
            };
            Row {
                name: name.join("_"),
                kind,
                labels: e.labels.into_iter().collect(),
                values: Default::default(),
            }
        })
        .collect()
}

/// A Go file: its package directory and text.
pub type GoFile = (String, std::rc::Rc<str>);

/// The Go files at `rev` under `dirs` that register metrics, read through
/// one blob cache per repository.
fn go_sources(
    repo: &Repo,
    reader: &mut super::git::BlobReader,
    rev: &str,
    dirs: &[&str],
) -> Result<Vec<GoFile>, ExtractError> {
    let mut out = Vec::new();
    for blob in repo.blobs(rev, dirs)? {
        if !blob.path.ends_with(".go")
            || blob.path.ends_with("_test.go")
            || blob.path.contains("/testing/")
            || blob.path.contains("/testdata/")
        {
            continue;
        }
        let text = reader.text(&blob.id)?;
        if text.contains("Opts{") || text.contains("NewDesc(") {
            let dir = blob.path.rsplit_once('/').map_or("", |(d, _)| d);
            out.push((dir.to_string(), text));
        }
    }
    Ok(out)
}

/// The families of a set of Go files. A constant resolves in its own file
/// first, then in its package, then anywhere in the set (a subsystem
/// constant may live in a shared package); packages reuse names such as
/// `subsystem` for different values.
pub fn families(files: &[GoFile]) -> Vec<Row> {
    let mut global = gosrc::Symbols::default();
    for (_, t) in files {
        global.add_file(t);
    }
    let mut out = Vec::new();
    for (dir, t) in files {
        let mut local = global.clone();
        for (_, sibling) in files.iter().filter(|(d, _)| d == dir) {
            local.add_file(sibling);
        }
        local.add_file(t);
        out.extend(gosrc::metrics(t, &local));
        out.extend(
            gosrc::descs(t, &local)
                .into_iter()
                .filter(|r| !r.name.ends_with('*')),
        );
    }
    // A name with no resolvable subsystem or a generic option struct is no
    // family of its own.
    out.retain(|r| r.name.contains('_'));
    out
}

/// Kubernetes release versions: the `kubernetes-1.X.Y` tags of a published
/// module, oldest first.
fn releases_of(repo: &Repo) -> Result<Vec<(Version, String)>, ExtractError> {
    let mut out = std::collections::BTreeMap::new();
    for tag in repo.tags()? {
        let Some(v) = tag
            .strip_prefix("kubernetes-")
            .and_then(super::release_version)
        else {
            continue;
        };
        if v >= FIRST {
            out.entry(v).or_insert(tag);
        }
    }
    if out.is_empty() {
        return Err(ExtractError::NoReleases {
            repo: repo.dir().display().to_string(),
        });
    }
    Ok(out.into_iter().collect())
}

pub fn extract(clones: &Path) -> Result<Releases, ExtractError> {
    let modules: Vec<Repo> = SOURCES
        .iter()
        .map(|s| find_clone(clones, s))
        .collect::<Result<_, _>>()?;
    let mut readers: Vec<super::git::BlobReader> =
        modules.iter().map(Repo::reader).collect::<Result<_, _>>()?;
    let tags: Vec<BTreeSet<String>> = modules
        .iter()
        .map(|m| Ok(m.tags()?.into_iter().collect()))
        .collect::<Result<_, ExtractError>>()?;
    let monorepo = find_clone(clones, MONOREPO).ok();
    let mut mono_reader = monorepo.as_ref().map(Repo::reader).transpose()?;
    let mut releases = Releases::new();
    for (version, tag) in releases_of(&modules[0])? {
        let mut rows: BTreeSet<Row> = BTreeSet::new();
        if !tags.iter().all(|t| t.contains(&tag)) {
            continue;
        }
        for ((repo, reader), dirs) in modules.iter().zip(&mut readers).zip(MODULE_DIRS) {
            let texts = go_sources(repo, reader, &tag, dirs)?;
            rows.extend(families(&texts));
        }
        if let (Some(mono), Some(reader)) = (&monorepo, &mut mono_reader) {
            let rev = format!("v{version}");
            for list in LISTS {
                if let Some(text) = mono.show(&rev, list) {
                    rows.extend(documented(&text));
                }
            }
            let texts = go_sources(mono, reader, &rev, MONOREPO_DIRS)?;
            rows.extend(families(&texts));
        }
        releases.insert(version, rows);
    }
    Ok(releases)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_documented_lists() {
        let text = r#"
- name: request_total
  subsystem: apiserver
  help: Counter of apiserver requests.
  type: Counter
  stabilityLevel: STABLE
  labels:
  - code
  - verb
- name: pod_start_sli_duration_seconds
  namespace: kubelet
  type: Histogram
  stabilityLevel: BETA
  labels:
  - node
- name: kubernetes_healthcheck
  type: Gauge
"#;
        let got: Vec<(String, &str, Vec<String>)> = documented(text)
            .into_iter()
            .map(|r| (r.name, r.kind, r.labels.into_iter().collect()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "apiserver_request_total".to_string(),
                    "counter",
                    vec!["code".to_string(), "verb".to_string()]
                ),
                (
                    "kubelet_pod_start_sli_duration_seconds".to_string(),
                    "histogram",
                    vec!["node".to_string()]
                ),
                ("kubernetes_healthcheck".to_string(), "gauge", vec![]),
            ]
        );
    }

    #[test]
    fn reads_component_base_registrations_across_files() {
        let consts: GoFile = (
            "workqueue".into(),
            r#"
const (
	WorkQueueSubsystem = "workqueue"
	DepthKey           = "depth"
)
"#
            .into(),
        );
        let other: GoFile = ("other".into(), "const DepthKey = \"size\"\n".into());
        let uses: GoFile = (
            "workqueue".into(),
            r#"
var depth = k8smetrics.NewGaugeVec(&k8smetrics.GaugeOpts{
	Subsystem:      WorkQueueSubsystem,
	Name:           DepthKey,
	StabilityLevel: k8smetrics.ALPHA,
	Help:           "Current depth of workqueue",
}, []string{"name"})
var requestLatency = k8smetrics.NewHistogramVec(
	&k8smetrics.HistogramOpts{
		Name:    "rest_client_request_duration_seconds",
		Help:    "Request latency in seconds. Broken down by verb, and host.",
		Buckets: []float64{0.005, 0.025},
	},
	[]string{"verb", "host"},
)
"#
            .into(),
        );
        let got: Vec<(String, &str, Vec<String>)> = families(&[consts, other, uses])
            .into_iter()
            .map(|r| (r.name, r.kind, r.labels.into_iter().collect()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "workqueue_depth".to_string(),
                    "gauge",
                    vec!["name".to_string()]
                ),
                (
                    "rest_client_request_duration_seconds".to_string(),
                    "histogram",
                    vec!["host".to_string(), "verb".to_string()]
                ),
            ]
        );
    }
}
