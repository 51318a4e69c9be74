//! The built-in tables: which metrics each exporter exposes, from which
//! release and until which, with type, labels and the closed value sets of
//! some labels. The data lives in `src/catalog/data/<exporter>.tsv`, one file
//! per exporter, written by the extractors in `src/catalog/extract/` from
//! upstream source at every release tag (`just catalog-refresh`). The tables
//! are embedded in the binary and parsed on first use, one exporter at a
//! time; histograms and summaries are listed once and expanded here.
//!
//! A table line is `name, type, labels, since, until, values`, separated
//! by tabs:
//! - `labels`: comma-separated names; `*` means any label (ALERTS carries
//!   every label of its alert); `label_*` means any label with that prefix
//!   (kube-state-metrics' `kube_pod_labels`).
//! - `since` is the first release that has the row, `until` the first later
//!   release that does not (empty while the newest release has it).
//! - `values`: `label=a|b|c` closed value sets, `;`-separated; a label not
//!   listed takes any value.
//!
//! A `#releases` line lists every release the extractor read.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, OnceLock};

use super::{MetricType, Version, Versions};

mod name_index {
    include!(concat!(env!("OUT_DIR"), "/name_index.rs"));
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Exporter {
    Haproxy,
    Keda,
    KubeStateMetrics,
    Karpenter,
    NodeExporter,
    Prometheus,
    Cadvisor,
    Kubernetes,
    Coredns,
    Alertmanager,
    PrometheusOperator,
    ActionsRunnerController,
    BuildkiteAgentMetrics,
}

impl Exporter {
    pub const ALL: [Exporter; 13] = [
        Exporter::Haproxy,
        Exporter::Keda,
        Exporter::KubeStateMetrics,
        Exporter::Karpenter,
        Exporter::NodeExporter,
        Exporter::Prometheus,
        Exporter::Cadvisor,
        Exporter::Kubernetes,
        Exporter::Coredns,
        Exporter::Alertmanager,
        Exporter::PrometheusOperator,
        Exporter::ActionsRunnerController,
        Exporter::BuildkiteAgentMetrics,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Exporter::Haproxy => "haproxy",
            Exporter::Keda => "keda",
            Exporter::KubeStateMetrics => "kube-state-metrics",
            Exporter::Karpenter => "karpenter",
            Exporter::NodeExporter => "node-exporter",
            Exporter::Prometheus => "prometheus",
            Exporter::Cadvisor => "cadvisor",
            Exporter::Kubernetes => "kubernetes",
            Exporter::Coredns => "coredns",
            Exporter::Alertmanager => "alertmanager",
            Exporter::PrometheusOperator => "prometheus-operator",
            Exporter::ActionsRunnerController => "actions-runner-controller",
            Exporter::BuildkiteAgentMetrics => "buildkite-agent-metrics",
        }
    }

    /// The product name used in messages ("removed in KEDA 2.17.0").
    pub fn title(self) -> &'static str {
        match self {
            Exporter::Haproxy => "HAProxy",
            Exporter::Keda => "KEDA",
            Exporter::KubeStateMetrics => "kube-state-metrics",
            Exporter::Karpenter => "Karpenter",
            Exporter::NodeExporter => "node-exporter",
            Exporter::Prometheus => "Prometheus",
            Exporter::Cadvisor => "cAdvisor",
            Exporter::Kubernetes => "Kubernetes",
            Exporter::Coredns => "CoreDNS",
            Exporter::Alertmanager => "Alertmanager",
            Exporter::PrometheusOperator => "prometheus-operator",
            Exporter::ActionsRunnerController => "actions-runner-controller",
            Exporter::BuildkiteAgentMetrics => "buildkite-agent-metrics",
        }
    }

    /// The deployed version: the declared one, else the newest known.
    pub fn version(self, v: &Versions) -> Version {
        match self {
            Exporter::Haproxy => v.haproxy,
            Exporter::Keda => v.keda,
            Exporter::KubeStateMetrics => v.kube_state_metrics,
            Exporter::Karpenter => v.karpenter,
            Exporter::NodeExporter => v.node_exporter.unwrap_or_else(|| self.newest()),
            Exporter::Prometheus => v.prometheus.unwrap_or_else(|| self.newest()),
            Exporter::Cadvisor => v.cadvisor.unwrap_or_else(|| self.newest()),
            Exporter::Kubernetes => v.kubernetes.unwrap_or_else(|| self.newest()),
            Exporter::Coredns => v.coredns.unwrap_or_else(|| self.newest()),
            Exporter::Alertmanager => v.alertmanager.unwrap_or_else(|| self.newest()),
            Exporter::PrometheusOperator => v.prometheus_operator.unwrap_or_else(|| self.newest()),
            Exporter::ActionsRunnerController => {
                v.actions_runner_controller.unwrap_or_else(|| self.newest())
            }
            Exporter::BuildkiteAgentMetrics => {
                v.buildkite_agent_metrics.unwrap_or_else(|| self.newest())
            }
        }
    }

    pub fn parse(name: &str) -> Option<Exporter> {
        Exporter::ALL.into_iter().find(|e| e.as_str() == name)
    }

    pub(crate) fn table_text(self) -> &'static str {
        match self {
            Exporter::Haproxy => include_str!("data/haproxy.tsv"),
            Exporter::Keda => include_str!("data/keda.tsv"),
            Exporter::KubeStateMetrics => include_str!("data/kube-state-metrics.tsv"),
            Exporter::Karpenter => include_str!("data/karpenter.tsv"),
            Exporter::NodeExporter => include_str!("data/node-exporter.tsv"),
            Exporter::Prometheus => include_str!("data/prometheus.tsv"),
            Exporter::Cadvisor => include_str!("data/cadvisor.tsv"),
            Exporter::Kubernetes => include_str!("data/kubernetes.tsv"),
            Exporter::Coredns => include_str!("data/coredns.tsv"),
            Exporter::Alertmanager => include_str!("data/alertmanager.tsv"),
            Exporter::PrometheusOperator => include_str!("data/prometheus-operator.tsv"),
            Exporter::ActionsRunnerController => include_str!("data/actions-runner-controller.tsv"),
            Exporter::BuildkiteAgentMetrics => include_str!("data/buildkite-agent-metrics.tsv"),
        }
    }

    /// Every series of this exporter, all versions.
    pub fn metrics(self) -> &'static [KnownMetric] {
        static TABLES: [OnceLock<Vec<KnownMetric>>; Exporter::ALL.len()] =
            [const { OnceLock::new() }; Exporter::ALL.len()];
        TABLES[self as usize].get_or_init(|| parse_rows(self, |_| true))
    }

    /// The series of this exporter at one version. Start-up matters (`poolc
    /// lint` builds its catalog on every run), so only the rows whose window
    /// holds `version` are built, once per version.
    pub fn metrics_at(self, version: Version) -> &'static [KnownMetric] {
        type Cache = Mutex<BTreeMap<(Exporter, Version), &'static [KnownMetric]>>;
        static CACHE: OnceLock<Cache> = OnceLock::new();
        let cache = CACHE.get_or_init(|| Mutex::new(BTreeMap::new()));
        let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.entry((self, version)).or_insert_with(|| {
            let rows = parse_rows(self, |line| window_holds(line, version));
            Box::leak(rows.into_boxed_slice())
        })
    }

    /// The exporters whose tables may hold `name`, in [`Exporter::ALL`]
    /// order, from an index of the tables' names built with the binary
    /// (`build.rs`): finding them parses no table.
    pub fn holding(name: &str) -> impl DoubleEndedIterator<Item = Exporter> {
        let word = match name.find('_') {
            Some(i) => &name[..=i],
            None => name,
        };
        // The index's table names, as exporters, once per run: every
        // selector of every check asks.
        static WORDS: OnceLock<Vec<(&str, [bool; Exporter::ALL.len()])>> = OnceLock::new();
        let words = WORDS.get_or_init(|| {
            name_index::NAME_WORDS
                .iter()
                .map(|(word, tables)| (*word, Exporter::set_of(tables.iter().copied())))
                .collect()
        });
        let mut held = words
            .binary_search_by(|(w, _)| (*w).cmp(word))
            .map_or([false; Exporter::ALL.len()], |i| words[i].1);
        let loose = name_index::NAME_LOOSE
            .iter()
            .filter(|(prefix, _)| name.starts_with(prefix))
            .map(|(_, table)| *table);
        for (e, loosely) in Exporter::set_of(loose).into_iter().enumerate() {
            held[e] |= loosely;
        }
        Exporter::ALL.into_iter().filter(move |e| held[*e as usize])
    }

    /// The exporters of some tables' names, as a set indexed by exporter.
    fn set_of<'a>(tables: impl Iterator<Item = &'a str>) -> [bool; Exporter::ALL.len()] {
        let mut set = [false; Exporter::ALL.len()];
        for table in tables {
            if let Some(e) = Exporter::parse(table) {
                set[e as usize] = true;
            }
        }
        set
    }

    /// Every release the extractor read, oldest first.
    pub fn releases(self) -> &'static [Version] {
        static RELEASES: [OnceLock<Vec<Version>>; Exporter::ALL.len()] =
            [const { OnceLock::new() }; Exporter::ALL.len()];
        RELEASES[self as usize].get_or_init(|| {
            self.table_text()
                .lines()
                .find_map(|l| l.strip_prefix("#releases\t"))
                .map(|list| list.split(' ').filter_map(|v| v.parse().ok()).collect())
                .unwrap_or_default()
        })
    }

    /// The newest release the catalog knows.
    pub fn newest(self) -> Version {
        self.releases()
            .last()
            .copied()
            .unwrap_or(Version::minor_only(0, 0))
    }
}

/// Which labels a series may carry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSet {
    /// Labels by exact name.
    pub names: Vec<String>,
    /// Labels by prefix: `label_` stands for every `label_<key>`.
    pub prefixes: Vec<String>,
    /// Any label at all (ALERTS carries every label of its alert).
    pub any: bool,
    /// Labels of `names` some series lack (`reason?` in a table:
    /// `kube_job_status_failed` has a `reason` only once the job failed).
    pub optional: Vec<String>,
}

impl LabelSet {
    pub fn allows(&self, label: &str) -> bool {
        self.any
            || self.names.iter().any(|n| n == label)
            || self.prefixes.iter().any(|p| label.starts_with(p.as_str()))
    }

    fn parse(field: &str) -> LabelSet {
        let mut set = LabelSet::default();
        for label in field.split(',').filter(|l| !l.is_empty()) {
            if label == "*" {
                set.any = true;
            } else if let Some(prefix) = label.strip_suffix('*') {
                set.prefixes.push(prefix.to_string());
            } else if let Some(name) = label.strip_suffix('?') {
                set.names.push(name.to_string());
                set.optional.push(name.to_string());
            } else {
                set.names.push(label.to_string());
            }
        }
        set
    }
}

/// One series name an exporter exposes in a version window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownMetric {
    pub name: String,
    pub kind: MetricType,
    /// The labels by exact name (what messages list).
    pub labels: Vec<String>,
    /// Prefixes and "any label", beyond `labels`.
    pub label_set: LabelSet,
    /// Labels whose values are a closed set; every other label is open.
    pub values: BTreeMap<String, BTreeSet<String>>,
    pub exporter: Exporter,
    pub since: Version,
    /// Exclusive; None while the newest known release still has it.
    pub until: Option<Version>,
}

impl KnownMetric {
    pub fn exists_in(&self, version: Version) -> bool {
        self.since <= version && self.until.is_none_or(|u| version < u)
    }

    pub fn has_label(&self, label: &str) -> bool {
        self.label_set.allows(label)
    }
}

/// Every row of an exporter's table that `keep` accepts (by its raw line).
fn parse_rows(exporter: Exporter, keep: impl Fn(&str) -> bool) -> Vec<KnownMetric> {
    exporter
        .table_text()
        .lines()
        .filter(|l| !l.starts_with('#') && keep(l))
        .filter_map(|l| parse_line(exporter, l).ok())
        .flatten()
        .collect()
}

/// Whether a table line's window holds `version`, reading only its bounds.
fn window_holds(line: &str, version: Version) -> bool {
    let mut fields = line.split('\t').skip(3);
    let (Some(since), Some(until)) = (fields.next(), fields.next()) else {
        return true; // malformed: let the parser decide
    };
    let Ok(since) = since.parse::<Version>() else {
        return true;
    };
    since <= version && (until.is_empty() || until.parse::<Version>().is_ok_and(|u| version < u))
}

/// Every entry of the built-in tables, all exporters and versions.
pub fn all() -> Vec<&'static KnownMetric> {
    Exporter::ALL
        .into_iter()
        .flat_map(|e| e.metrics().iter())
        .collect()
}

/// The metrics each exporter exposes at the deployed versions.
pub fn for_versions(v: &Versions) -> Vec<&'static KnownMetric> {
    Exporter::ALL
        .into_iter()
        .flat_map(|e| e.metrics_at(e.version(v)).iter())
        .collect()
}

pub(crate) fn parse_kind(s: &str) -> Option<MetricType> {
    Some(match s {
        "counter" => MetricType::Counter,
        "gauge" => MetricType::Gauge,
        "histogram" => MetricType::Histogram,
        "summary" => MetricType::Summary,
        "untyped" => MetricType::Untyped,
        _ => return None,
    })
}

/// Why a table line is not a row.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LineError {
    /// Comments and blank lines.
    NotARow,
    Malformed(String),
}

/// A table line as its series (a histogram is three).
pub(crate) fn parse_line(exporter: Exporter, line: &str) -> Result<Vec<KnownMetric>, LineError> {
    if line.starts_with('#') || line.trim().is_empty() {
        return Err(LineError::NotARow);
    }
    let bad = |why: &str| LineError::Malformed(why.to_string());
    let fields: Vec<&str> = line.split('\t').collect();
    let [name, kind, labels, since, until, values] = fields[..] else {
        return Err(bad("expected 6 tab-separated fields"));
    };
    let kind = parse_kind(kind).ok_or_else(|| bad("unknown type"))?;
    let label_set = LabelSet::parse(labels);
    let since: Version = since.parse().map_err(|_| bad("bad since"))?;
    let until: Option<Version> = if until.is_empty() {
        None
    } else {
        Some(until.parse().map_err(|_| bad("bad until"))?)
    };
    let mut value_sets = BTreeMap::new();
    for set in values.split(';').filter(|s| !s.is_empty()) {
        let (label, list) = set.split_once('=').ok_or_else(|| bad("bad values"))?;
        value_sets.insert(
            label.to_string(),
            list.split('|').map(str::to_string).collect::<BTreeSet<_>>(),
        );
    }
    let entry = |name: String, kind, extra: Option<&str>| {
        let mut label_set = label_set.clone();
        if let Some(extra) = extra {
            label_set.names.push(extra.to_string());
        }
        KnownMetric {
            name,
            kind,
            labels: label_set.names.clone(),
            label_set,
            values: value_sets.clone(),
            exporter,
            since,
            until,
        }
    };
    Ok(match kind {
        MetricType::Histogram => vec![
            entry(format!("{name}_bucket"), MetricType::Counter, Some("le")),
            entry(format!("{name}_sum"), MetricType::Counter, None),
            entry(format!("{name}_count"), MetricType::Counter, None),
        ],
        MetricType::Summary => vec![
            entry(name.to_string(), MetricType::Summary, Some("quantile")),
            entry(format!("{name}_sum"), MetricType::Counter, None),
            entry(format!("{name}_count"), MetricType::Counter, None),
        ],
        _ => vec![entry(name.to_string(), kind, None)],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_line_parses() {
        for exporter in Exporter::ALL {
            for (n, line) in exporter.table_text().lines().enumerate() {
                if let Err(LineError::Malformed(why)) = parse_line(exporter, line) {
                    panic!("data/{}.tsv:{}: {why}: {line:?}", exporter.as_str(), n + 1);
                }
                // A name family must be narrower than "any name of the
                // exporter" (`node_*`), or every misspelt name passes.
                let name = line.split('\t').next().unwrap_or_default();
                if let Some(prefix) = name.strip_suffix("_*") {
                    assert!(
                        prefix.contains('_'),
                        "data/{}.tsv:{}: {name} takes every name of the exporter",
                        exporter.as_str(),
                        n + 1
                    );
                }
            }
            assert!(
                !exporter.releases().is_empty(),
                "data/{}.tsv has no #releases line",
                exporter.as_str()
            );
        }
    }

    /// The tables are what the extractors write: rows sorted by name and
    /// window, every bound a release the extractor read, windows non-empty,
    /// one row per name at any release, and a row's windows neither overlap
    /// nor touch (touching windows are one run).
    #[test]
    fn tables_are_sorted_and_windows_consistent() {
        for exporter in Exporter::ALL {
            let file = format!("data/{}.tsv", exporter.as_str());
            let releases = exporter.releases();
            assert!(
                releases.windows(2).all(|w| w[0] < w[1]),
                "{file}: #releases not strictly ascending"
            );
            assert!(
                releases.iter().all(|r| r.patch.is_some()),
                "{file}: a release without a patch level"
            );
            let mut previous: Option<(String, Version)> = None;
            let mut rows: Vec<(String, String, Version, Option<Version>)> = Vec::new();
            for (n, line) in exporter.table_text().lines().enumerate() {
                if line.starts_with('#') {
                    continue;
                }
                let at = format!("{file}:{}", n + 1);
                let fields: Vec<&str> = line.split('\t').collect();
                let since: Version = fields[3].parse().unwrap();
                let until: Option<Version> =
                    (!fields[4].is_empty()).then(|| fields[4].parse().unwrap());
                assert!(
                    releases.contains(&since),
                    "{at}: since {since} is not a release"
                );
                if let Some(u) = until {
                    assert!(releases.contains(&u), "{at}: until {u} is not a release");
                    assert!(since < u, "{at}: empty window");
                }
                let key = (fields[0].to_string(), since);
                if let Some(p) = &previous {
                    assert!(p <= &key, "{at}: not sorted by name, then since");
                }
                previous = Some(key);
                let identity = fields[..3].join("\t") + "\t" + fields[5];
                rows.push((fields[0].to_string(), identity, since, until));
            }
            for (i, a) in rows.iter().enumerate() {
                for b in &rows[i + 1..] {
                    if a.0 != b.0 {
                        continue;
                    }
                    // Same name: windows must not overlap (one row per name
                    // per release); same row: they must not touch either.
                    let a_end = a.3.unwrap_or(Version::with_patch(u32::MAX, 0, 0));
                    let b_end = b.3.unwrap_or(Version::with_patch(u32::MAX, 0, 0));
                    assert!(
                        a_end <= b.2 || b_end <= a.2,
                        "{file}: {} has overlapping windows",
                        a.0
                    );
                    if a.1 == b.1 {
                        assert!(a.3 != Some(b.2), "{file}: {} has touching windows", a.0);
                    }
                }
            }
        }
    }

    /// The index built with the binary finds every table that holds a
    /// name, its histogram and summary series, and the members of a family.
    #[test]
    fn name_index_finds_every_table_holding_a_name() {
        for exporter in Exporter::ALL {
            for line in exporter.table_text().lines() {
                let Ok(series) = parse_line(exporter, line) else {
                    continue;
                };
                for m in series {
                    let name = match m.name.strip_suffix('*') {
                        Some(family) => format!("{family}member"),
                        None => m.name.clone(),
                    };
                    assert!(
                        Exporter::holding(&name).any(|e| e == exporter),
                        "the name index misses {name} in data/{}.tsv",
                        exporter.as_str()
                    );
                }
            }
        }
        assert_eq!(Exporter::holding("no_such_exporter_metric").count(), 0);
    }

    #[test]
    fn label_sets_take_names_prefixes_and_any() {
        let set = LabelSet::parse("namespace,pod,label_*");
        assert!(set.allows("pod"));
        assert!(set.allows("label_app_kubernetes_io_name"));
        assert!(!set.allows("annotation_x"));
        assert!(LabelSet::parse("*").allows("severity"));
        assert!(!LabelSet::parse("").allows("x"));
    }
}
