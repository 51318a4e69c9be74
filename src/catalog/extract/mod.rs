//! Extractors: read local git clones of the upstream projects and write the
//! catalog tables in `src/catalog/data/`. Each exporter module reads the
//! source of one release tag into a set of rows; this module runs it over
//! every release tag (patch releases included), folds the per-release sets
//! into since/until windows and writes the table. Nothing here is typed
//! data: a window is the run of consecutive releases whose source has the
//! row, so rerunning over the same clones writes the same bytes.
//!
//! `cargo run --release --example catalog_refresh -- CLONES_DIR` (what
//! `just catalog-refresh` runs) finds each clone under `CLONES_DIR` as
//! `<name>`, `<owner>+<name>/repo`, `<owner>+<name>` or `<name>.git`.

/// A regex of the extractors' own, known to compile.
fn re(s: &str) -> regex::Regex {
    regex::Regex::new(s).unwrap_or_else(|e| panic!("pattern {s}: {e}"))
}

/// A pattern compiled once per process.
macro_rules! pattern {
    ($s:expr) => {{
        static P: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| super::re($s));
        &*P
    }};
}

pub mod actions_runner_controller;
pub mod alertmanager;
pub mod buildkite_agent_metrics;
pub mod cadvisor;
pub mod coredns;
pub mod exposition;
pub mod git;
pub mod golibs;
pub mod gopkg;
pub mod gosrc;
pub mod haproxy;
pub mod karpenter;
pub mod keda;
pub mod kube_state_metrics;
pub mod kubernetes;
pub mod node_exporter;
pub mod prometheus;
pub mod prometheus_operator;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{Exporter, Version};
pub use git::Repo;

/// One catalog row as one release's source states it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Row {
    pub name: String,
    /// `counter`, `gauge`, `histogram`, `summary` or `untyped`.
    pub kind: &'static str,
    /// Sorted; `*` is any label, `prefix_*` a prefix.
    pub labels: BTreeSet<String>,
    /// Closed value sets of some labels.
    pub values: BTreeMap<String, BTreeSet<String>>,
}

impl Row {
    pub fn new(name: impl Into<String>, kind: &'static str, labels: &[&str]) -> Row {
        Row::labelled(name, kind, labels.iter().map(|l| l.to_string()))
    }

    /// A row whose label keys were read as strings, with no value sets.
    pub fn labelled(
        name: impl Into<String>,
        kind: &'static str,
        labels: impl IntoIterator<Item = String>,
    ) -> Row {
        Row {
            name: name.into(),
            kind,
            labels: labels.into_iter().collect(),
            values: BTreeMap::new(),
        }
    }

    pub fn with_values(mut self, label: &str, values: &[&str]) -> Row {
        self.values.insert(
            label.to_string(),
            values.iter().map(|v| v.to_string()).collect(),
        );
        self
    }
}

/// Every row of every release.
pub type Releases = BTreeMap<Version, BTreeSet<Row>>;

/// Why a refresh failed: a clone is missing or unreadable.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("no clone of {repo} under {dir}: clone it there (git clone --bare https://github.com/{repo} {dir}/{name})")]
    MissingClone {
        repo: String,
        dir: PathBuf,
        name: String,
    },
    #[error("git {args} in {dir}: {message}")]
    Git {
        args: String,
        dir: PathBuf,
        message: String,
    },
    #[error("{repo} has no release tags")]
    NoReleases { repo: String },
}

/// Finds `owner/name` under the clones directory.
pub fn find_clone(clones: &Path, repo: &str) -> Result<Repo, ExtractError> {
    let (owner, name) = repo.split_once('/').unwrap_or(("", repo));
    let candidates = [
        clones.join(format!("{owner}+{name}")).join("repo"),
        clones.join(format!("{owner}+{name}")),
        clones.join(name),
        clones.join(format!("{name}.git")),
    ];
    candidates
        .into_iter()
        .find(|p| p.join("HEAD").is_file() || p.join(".git").exists())
        .map(Repo::new)
        .ok_or_else(|| ExtractError::MissingClone {
            repo: repo.to_string(),
            dir: clones.to_path_buf(),
            name: name.to_string(),
        })
}

/// A release tag as its version: `vX.Y.Z` or `X.Y.Z`, nothing after it
/// (release candidates, betas and dev tags are not releases).
pub fn release_version(tag: &str) -> Option<Version> {
    let v = tag.strip_prefix('v').unwrap_or(tag);
    if v.split('.').count() != 3 {
        return None;
    }
    v.parse().ok()
}

/// The release tags of a clone from `min` on, oldest first, one tag per version.
pub fn release_tags(repo: &Repo, min: Version) -> Result<Vec<(Version, String)>, ExtractError> {
    let mut out: BTreeMap<Version, String> = BTreeMap::new();
    for tag in repo.tags()? {
        if let Some(v) = release_version(&tag) {
            if v >= min {
                out.entry(v).or_insert(tag);
            }
        }
    }
    if out.is_empty() {
        return Err(ExtractError::NoReleases {
            repo: repo.dir().display().to_string(),
        });
    }
    Ok(out.into_iter().collect())
}

/// The release tags `<prefix>X.Y.Z` of a clone from `min` on, oldest first:
/// for a repository that tags several products (`gha-runner-scale-set-0.9.0`).
pub fn prefixed_release_tags(
    repo: &Repo,
    prefix: &str,
    min: Version,
) -> Result<Vec<(Version, String)>, ExtractError> {
    let mut out: BTreeMap<Version, String> = BTreeMap::new();
    for tag in repo.tags()? {
        if let Some(v) = tag.strip_prefix(prefix).and_then(release_version) {
            if v >= min {
                out.entry(v).or_insert(tag);
            }
        }
    }
    if out.is_empty() {
        return Err(ExtractError::NoReleases {
            repo: format!("{} ({prefix}X.Y.Z)", repo.dir().display()),
        });
    }
    Ok(out.into_iter().collect())
}

/// A row with the releases it exists in: `since` is the first release of a
/// run, `until` the first release after it that lacks the row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub row: Row,
    pub since: Version,
    pub until: Option<Version>,
}

/// One row per name and release: a name registered on several code paths
/// (or with two label lists) is one family carrying the union of their
/// labels; a value set stays closed only if every registration closes it.
fn one_row_per_name(rows: &BTreeSet<Row>) -> BTreeSet<Row> {
    let mut by_name: BTreeMap<&str, Row> = BTreeMap::new();
    for row in rows {
        match by_name.get_mut(row.name.as_str()) {
            None => {
                by_name.insert(&row.name, row.clone());
            }
            Some(merged) => {
                merged.labels.extend(row.labels.iter().cloned());
                let values = std::mem::take(&mut merged.values);
                merged.values = values
                    .into_iter()
                    .filter_map(|(label, mut v)| {
                        let other = row.values.get(&label)?;
                        v.extend(other.iter().cloned());
                        Some((label, v))
                    })
                    .collect();
            }
        }
    }
    by_name.into_values().collect()
}

/// Folds per-release rows into windows, sorted by name, then since.
pub fn windows(releases: &Releases) -> Vec<Window> {
    let releases: Releases = releases
        .iter()
        .map(|(v, rows)| (*v, one_row_per_name(rows)))
        .collect();
    let order: Vec<Version> = releases.keys().copied().collect();
    let mut present: BTreeMap<&Row, Vec<bool>> = BTreeMap::new();
    for (i, rows) in releases.values().enumerate() {
        for row in rows {
            present
                .entry(row)
                .or_insert_with(|| vec![false; order.len()])[i] = true;
        }
    }
    let mut out = Vec::new();
    for (row, bits) in present {
        let mut i = 0;
        while i < bits.len() {
            if !bits[i] {
                i += 1;
                continue;
            }
            let start = i;
            while i < bits.len() && bits[i] {
                i += 1;
            }
            out.push(Window {
                row: row.clone(),
                since: order[start],
                until: order.get(i).copied(),
            });
        }
    }
    out.sort_by(|a, b| (&a.row.name, a.since, &a.row).cmp(&(&b.row.name, b.since, &b.row)));
    out
}

/// The table file: a header naming the sources, the releases read, the rows.
pub fn render_table(exporter: Exporter, sources: &[&str], releases: &Releases) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# {} metrics: written by `just catalog-refresh` from {} at every release tag; do not edit.",
        exporter.title(),
        sources.join(" and ")
    );
    out.push_str("# name\ttype\tlabels\tsince\tuntil\tvalues\n");
    let list: Vec<String> = releases.keys().map(Version::to_string).collect();
    let _ = writeln!(out, "#releases\t{}", list.join(" "));
    for w in windows(releases) {
        let labels: Vec<&str> = w.row.labels.iter().map(String::as_str).collect();
        let values: Vec<String> = w
            .row
            .values
            .iter()
            .map(|(l, v)| format!("{l}={}", v.iter().cloned().collect::<Vec<_>>().join("|")))
            .collect();
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{}",
            w.row.name,
            w.row.kind,
            labels.join(","),
            w.since,
            w.until.map(|u| u.to_string()).unwrap_or_default(),
            values.join(";")
        );
    }
    out
}

/// Runs the extractors over the clones (all, or the one `only` names) and
/// writes `<out>/<exporter>.tsv`. Returns what it wrote, for the log.
pub fn refresh(
    clones: &Path,
    out: &Path,
    only: Option<Exporter>,
) -> Result<Vec<String>, ExtractError> {
    let mut log = Vec::new();
    let mut write = |exporter: Exporter, sources: &[&str], releases: Releases| {
        let text = render_table(exporter, sources, &releases);
        let path = out.join(format!("{}.tsv", exporter.as_str()));
        let rows = text.lines().filter(|l| !l.starts_with('#')).count();
        log.push(format!(
            "{}: {} releases, {rows} rows",
            path.display(),
            releases.len()
        ));
        std::fs::write(&path, text).map_err(|e| ExtractError::Git {
            args: "write".into(),
            dir: path.clone(),
            message: e.to_string(),
        })
    };
    type Extract = fn(&Path) -> Result<Releases, ExtractError>;
    let extractors: [(Exporter, &[&str], Extract); 13] = [
        (Exporter::Haproxy, haproxy::SOURCES, haproxy::extract),
        (Exporter::Keda, keda::SOURCES, keda::extract),
        (
            Exporter::KubeStateMetrics,
            kube_state_metrics::SOURCES,
            kube_state_metrics::extract,
        ),
        (Exporter::Karpenter, karpenter::SOURCES, karpenter::extract),
        (
            Exporter::NodeExporter,
            node_exporter::SOURCES,
            node_exporter::extract,
        ),
        (
            Exporter::Prometheus,
            prometheus::SOURCES,
            prometheus::extract,
        ),
        (Exporter::Coredns, coredns::SOURCES, coredns::extract),
        (
            Exporter::Alertmanager,
            alertmanager::SOURCES,
            alertmanager::extract,
        ),
        (
            Exporter::PrometheusOperator,
            prometheus_operator::SOURCES,
            prometheus_operator::extract,
        ),
        (
            Exporter::ActionsRunnerController,
            actions_runner_controller::SOURCES,
            actions_runner_controller::extract,
        ),
        (
            Exporter::BuildkiteAgentMetrics,
            buildkite_agent_metrics::SOURCES,
            buildkite_agent_metrics::extract,
        ),
        (Exporter::Cadvisor, cadvisor::SOURCES, cadvisor::extract),
        (
            Exporter::Kubernetes,
            kubernetes::SOURCES,
            kubernetes::extract,
        ),
    ];
    for (exporter, sources, extract) in extractors {
        if only.is_none_or(|o| o == exporter) {
            write(exporter, sources, extract(clones)?)?;
        }
    }
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    #[test]
    fn windows_are_runs_of_releases() {
        let a = Row::new("a", "gauge", &[]);
        let b = Row::new("b", "counter", &["x"]);
        let mut releases = Releases::new();
        releases.insert(v("1.0.0"), [a.clone()].into());
        releases.insert(v("1.0.1"), [a.clone(), b.clone()].into());
        releases.insert(v("1.1.0"), [b.clone()].into());
        releases.insert(v("1.2.0"), [a.clone(), b.clone()].into());
        let w = windows(&releases);
        let got: Vec<(&str, String, Option<String>)> = w
            .iter()
            .map(|w| {
                (
                    w.row.name.as_str(),
                    w.since.to_string(),
                    w.until.map(|u| u.to_string()),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("a", "1.0.0".into(), Some("1.1.0".into())),
                ("a", "1.2.0".into(), None),
                ("b", "1.0.1".into(), None),
            ]
        );
    }

    #[test]
    fn only_plain_release_tags_count() {
        assert_eq!(
            release_version("v2.9.1"),
            Some(Version::with_patch(2, 9, 1))
        );
        assert_eq!(release_version("2.9.1"), Some(Version::with_patch(2, 9, 1)));
        for tag in [
            "v2.9.1-rc1",
            "v3.5-dev5",
            "v2.9",
            "helm-chart-1.2.3",
            "v1.0.0-beta.1",
        ] {
            assert_eq!(release_version(tag), None, "{tag}");
        }
    }
}
