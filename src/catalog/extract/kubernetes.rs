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
//! Prometheus client) with its label list, or a `NewDesc` descriptor. A
//! registration with a `DeprecatedVersion` leaves the table at the release
//! that hides it by default, by the rule component-base has at that release
//! ([`Hiding`]). Every component also serves `go_*` and `process_*`: the
//! collectors component-base's legacy registry registers, as the
//! client_golang of its `go.mod` defines them.
//!
//! When a clone of `kubernetes/kubernetes` is also in the clones directory,
//! each release adds the families of its `v1.X.Y` tag: the documented
//! metric lists under `test/instrumentation/` (the stable list, and the list
//! of every documented metric where the tag has one), and the
//! registrations in the kubelet, scheduler, kube-proxy and volume packages.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;

use super::{find_clone, golibs, gosrc, ExtractError, Releases, Repo, Row};
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
            Row::labelled(name.join("_"), kind, e.labels)
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
pub fn families(files: &[GoFile], version: Version, hiding: &Hiding) -> Vec<Row> {
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
        let hidden = hidden(t, &local, version, hiding);
        out.extend(
            gosrc::metrics(t, &local)
                .into_iter()
                .filter(|r| !hidden.contains(&r.name)),
        );
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

/// How long component-base serves a deprecated metric, read from its
/// `shouldHide` at the release: up to 1.34 a metric deprecated in 1.X is
/// served through 1.X whatever its stability; from 1.35
/// `deprecationPeriodMinorVersions` gives each stability level a number of
/// minors, and the metric is hidden from 1.(X + period) on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hiding {
    /// Minors per stability level, when the release has periods.
    periods: Option<std::collections::BTreeMap<String, u32>>,
    /// The period of a level the switch does not name.
    default: u32,
}

impl Hiding {
    /// Reads component-base's `metrics/registry.go`.
    pub fn read(registry: &str) -> Hiding {
        static CASE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
            regex::Regex::new(r"(?s)(case\s+([A-Z][\w, ]*)|default)\s*:[^\n]*\n\s*return\s+(\d+)")
                .unwrap_or_else(|e| panic!("{e}"))
        });
        let Some(at) = registry.find("func deprecationPeriodMinorVersions(") else {
            return Hiding::default();
        };
        let Some(open) = registry[at..].find('{').map(|o| at + o) else {
            return Hiding::default();
        };
        let body = gosrc::block(registry, open).unwrap_or("");
        let mut periods = std::collections::BTreeMap::new();
        let mut default = 0;
        for c in CASE.captures_iter(body) {
            let minors: u32 = c[3].parse().unwrap_or(0);
            match c.get(2) {
                Some(levels) => {
                    for level in levels.as_str().split(',') {
                        periods.insert(level.trim().to_string(), minors);
                    }
                }
                None => default = minors,
            }
        }
        Hiding {
            periods: Some(periods),
            default,
        }
    }

    /// Whether `version` hides a metric of `level` deprecated in `major.minor`.
    fn hides(&self, version: Version, level: &str, major: u32, minor: u32) -> bool {
        if version.major != major {
            return version.major > major;
        }
        match &self.periods {
            None => version.minor > minor,
            Some(periods) => {
                let period = periods.get(level).copied().unwrap_or(self.default);
                version.minor >= minor + period
            }
        }
    }
}

/// The families of `text` that `version` hides by its deprecation rule
/// (until an operator asks for hidden metrics).
pub fn hidden(
    text: &str,
    symbols: &gosrc::Symbols,
    version: Version,
    hiding: &Hiding,
) -> BTreeSet<String> {
    static OPTS: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\b(Counter|Gauge|Histogram|Summary)Opts\s*\{")
            .unwrap_or_else(|e| panic!("{e}"))
    });
    static DEPRECATED: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r#"DeprecatedVersion:\s*"v?(\d+)\.(\d+)"#)
            .unwrap_or_else(|e| panic!("{e}"))
    });
    static LEVEL: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"StabilityLevel:\s*(?:[\w]+\.)?([A-Z]+)")
            .unwrap_or_else(|e| panic!("{e}"))
    });
    let mut out = BTreeSet::new();
    for m in OPTS.find_iter(text) {
        let Some(body) = gosrc::block(text, m.end() - 1) else {
            continue;
        };
        let Some(d) = DEPRECATED.captures(body) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (d[1].parse::<u32>(), d[2].parse::<u32>()) else {
            continue;
        };
        // component-base defaults an unset level to ALPHA.
        let level = LEVEL
            .captures(body)
            .map_or_else(|| "ALPHA".to_string(), |c| c[1].to_string());
        if !hiding.hides(version, &level, major, minor) {
            continue;
        }
        let one = format!("{}{{{body}}})", m.as_str().trim_end_matches('{'));
        out.extend(gosrc::metrics(&one, symbols).into_iter().map(|r| r.name));
    }
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
    let libs = golibs::Libraries::new(clones);
    let mut cache = golibs::Cache::default();
    let mut releases = Releases::new();
    for (version, tag) in releases_of(&modules[0])? {
        let mut rows: BTreeSet<Row> = BTreeSet::new();
        if !tags.iter().all(|t| t.contains(&tag)) {
            continue;
        }
        let hiding = modules[1]
            .show(&tag, "metrics/registry.go")
            .map(|t| Hiding::read(&t))
            .unwrap_or_default();
        for ((repo, reader), dirs) in modules.iter().zip(&mut readers).zip(MODULE_DIRS) {
            let texts = go_sources(repo, reader, &tag, dirs)?;
            rows.extend(families(&texts, version, &hiding));
        }
        // `go_*` and `process_*`: component-base's legacy registry, which
        // every component serves, registers the Go and process collectors
        // of the client_golang its `go.mod` requires.
        let base = (&modules[1], tag.as_str());
        let go_mod = golibs::GoMod::parse(&modules[1].show(&tag, "go.mod").unwrap_or_default());
        rows.extend(golibs::runtime_collectors(
            &libs, &mut cache, base, &go_mod,
        )?);
        if let (Some(mono), Some(reader)) = (&monorepo, &mut mono_reader) {
            let rev = format!("v{version}");
            for list in LISTS {
                if let Some(text) = mono.show(&rev, list) {
                    rows.extend(documented(&text));
                }
            }
            let texts = go_sources(mono, reader, &rev, MONOREPO_DIRS)?;
            rows.extend(families(&texts, version, &hiding));
        }
        releases.insert(version, rows);
    }
    Ok(releases)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deprecated_registrations_are_hidden_after_their_release() {
        let text = r#"
const subsystem = "flowcontrol"
var old = metrics.NewGaugeVec(&metrics.GaugeOpts{
	Namespace:         "apiserver",
	Subsystem:         subsystem,
	Name:              "request_concurrency_limit",
	DeprecatedVersion: "1.30.0",
	StabilityLevel:    metrics.ALPHA,
}, []string{"priority_level"})
"#;
        let file: GoFile = ("flowcontrol".into(), text.into());
        let names = |minor| -> Vec<String> {
            families(
                std::slice::from_ref(&file),
                Version::new(1, minor),
                &Hiding::default(),
            )
            .into_iter()
            .map(|r| r.name)
            .collect()
        };
        assert_eq!(
            names(30),
            ["apiserver_flowcontrol_request_concurrency_limit"]
        );
        assert!(names(31).is_empty());
    }

    #[test]
    fn periods_by_stability_come_from_component_base() {
        let registry = r#"
func deprecationPeriodMinorVersions(stabilityLevel StabilityLevel) uint64 {
	switch stabilityLevel {
	case STABLE:
		return 3
	case BETA:
		return 1
	default: // ALPHA, INTERNAL
		return 0
	}
}
"#;
        let h = Hiding::read(registry);
        let v = |minor| Version::new(1, minor);
        // Deprecated in 1.34: stable is served through 1.36, beta through
        // 1.34, alpha not at all.
        assert!(!h.hides(v(36), "STABLE", 1, 34));
        assert!(h.hides(v(37), "STABLE", 1, 34));
        assert!(!h.hides(v(34), "BETA", 1, 34));
        assert!(h.hides(v(35), "BETA", 1, 34));
        assert!(h.hides(v(34), "ALPHA", 1, 34));
        // Without periods, the release after the deprecation hides it.
        let legacy = Hiding::read("func shouldHide() {}");
        assert!(!legacy.hides(v(34), "STABLE", 1, 34));
        assert!(legacy.hides(v(35), "STABLE", 1, 34));
    }

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
        let got: Vec<(String, &str, Vec<String>)> = families(
            &[consts, other, uses],
            Version::new(1, 30),
            &Hiding::default(),
        )
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
