//! Prometheus: the series it writes itself and its own metrics.
//! - Synthetic scrape series (`up`, `scrape_*`): the report-sample names in
//!   the scrape loop (`"up" + "\xff"`). They carry the target's labels,
//!   which relabeling decides, so any label is allowed.
//! - `ALERTS` and `ALERTS_FOR_STATE`: the rule manager's metric-name
//!   constants. They carry every label of their alert, so any label.
//! - Its own `prometheus_*` metrics: the Prometheus client registrations
//!   in every non-test Go file, with constants looked up per package;
//!   `prometheus_build_info` from the version collector `main` registers
//!   (`golibs`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use regex::Regex;

use super::golibs;
use super::{find_clone, gosrc, release_tags, ExtractError, Releases, Row};
use crate::catalog::Version;

pub const SOURCES: &[&str] = &[
    "prometheus/prometheus",
    "prometheus/common",
    "prometheus/client_golang",
];

pub fn extract(clones: &Path) -> Result<Releases, ExtractError> {
    let repo = find_clone(clones, SOURCES[0])?;
    let report =
        Regex::new(r#""(up|scrape_[a-z_]+)"\s*\+\s*"\\xff""#).unwrap_or_else(|e| panic!("{e}"));
    let alerts = Regex::new(r#"(?m)^\s*alert(?:ForState)?MetricName\s*=\s*"([A-Z_]+)""#)
        .unwrap_or_else(|e| panic!("{e}"));
    let prefix_literal = Regex::new(
        r#"(?m)(?:prefix\w*\s*:?=\s*|WrapRegistererWithPrefix\(\s*)"(prometheus_\w+_)""#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // A name part taken from another package of the repository
    // (`Namespace: discovery.KubernetesMetricsNamespace`).
    let qualified_part = Regex::new(r"\b(?:Namespace|Subsystem|Name)\s*:\s*([a-z]\w*)\.[A-Z]\w*")
        .unwrap_or_else(|e| panic!("{e}"));
    let libs = golibs::Libraries::new(clones);
    let mut cache = golibs::Cache::default();
    let mut releases = Releases::new();
    for (version, tag) in release_tags(&repo, Version::new(2, 0))? {
        let rows = releases.entry(version).or_default();
        // `go_*`, `process_*` and `prometheus_build_info`, which `main`
        // registers.
        rows.extend(golibs::program_rows(
            &libs,
            &mut cache,
            (&repo, &tag),
            Some("cmd/prometheus/main.go"),
        )?);
        for path in ["scrape/scrape.go", "retrieval/scrape.go"] {
            if let Some(text) = repo.show(&tag, path) {
                for c in report.captures_iter(&text) {
                    rows.insert(Row::new(&c[1], "gauge", &["*"]));
                }
            }
        }
        if let Some(text) = repo.show(&tag, "rules/alerting.go") {
            for c in alerts.captures_iter(&text) {
                rows.insert(Row::new(&c[1], "gauge", &["*"]));
            }
        }
        // Constants live anywhere in a package: read every file of each
        // package that registers metrics.
        let mut dirs: BTreeSet<String> = BTreeSet::new();
        let registering = repo
            .grep_files(&tag, "Opts{", &["."])?
            .into_iter()
            .chain(repo.grep_files(&tag, "NewDesc(", &["."])?);
        for path in registering {
            if path.ends_with(".go")
                && !path.ends_with("_test.go")
                && !path.starts_with("vendor/")
                && !path.starts_with("documentation/")
                && !path.contains("/testutil")
            {
                dirs.insert(
                    path.rsplit_once('/')
                        .map(|(d, _)| d)
                        .unwrap_or("")
                        .to_string(),
                );
            }
        }
        for dir in dirs {
            let texts: Vec<String> = repo
                .files(&tag, &dir)?
                .into_iter()
                .filter(|p| {
                    p.ends_with(".go")
                        && !p.ends_with("_test.go")
                        && p.rsplit_once('/').map(|(d, _)| d).unwrap_or("") == dir
                })
                .filter_map(|p| repo.show(&tag, &p))
                .collect();
            let mut symbols = gosrc::Symbols::default();
            symbols.const_labels = true;
            for t in &texts {
                symbols.add_file(t);
            }
            for package in texts
                .iter()
                .flat_map(|t| qualified_part.captures_iter(t).map(|c| c[1].to_string()))
                .collect::<BTreeSet<_>>()
            {
                let Some(import) = texts.iter().find_map(|t| own_import(t, &package)) else {
                    continue;
                };
                for p in repo.files(&tag, &import)? {
                    let local = p.rsplit_once('/').map(|(d, _)| d) == Some(import.as_str());
                    if local && p.ends_with(".go") && !p.ends_with("_test.go") {
                        if let Some(t) = repo.show(&tag, &p) {
                            symbols.add_package_file(&package, &t);
                        }
                    }
                }
            }
            for t in &texts {
                let found = registered(t, &symbols);
                // Metrics registered through
                // `WrapRegistererWithPrefix(prefix, …)` get the prefix the
                // same file names (`prefix := "prometheus_tsdb_wal_"`).
                let prefixes: Vec<String> = if t.contains("WrapRegistererWithPrefix(") {
                    prefix_literal
                        .captures_iter(t)
                        .map(|c| c[1].to_string())
                        .collect()
                } else {
                    Vec::new()
                };
                for row in found {
                    if row.name.starts_with("prometheus_") {
                        rows.insert(row);
                    } else {
                        for p in &prefixes {
                            let mut r = row.clone();
                            r.name = format!("{p}{}", row.name);
                            rows.insert(r);
                        }
                    }
                }
            }
        }
        // A name registered twice with different label lists (one per code
        // path) is one family whose labels are their union.
        let mut merged: BTreeMap<(String, &'static str), BTreeSet<String>> = BTreeMap::new();
        for r in std::mem::take(rows) {
            merged.entry((r.name, r.kind)).or_default().extend(r.labels);
        }
        for ((name, kind), labels) in merged {
            rows.insert(Row::labelled(name, kind, labels));
        }
    }
    Ok(releases)
}

/// The metrics one file registers: options (`CounterOpts{…}`) and the
/// descriptors of collectors (`prometheus.NewDesc`), which carry their
/// whole name.
fn registered(text: &str, symbols: &gosrc::Symbols) -> Vec<Row> {
    let mut found = gosrc::metrics(text, symbols);
    found.extend(
        gosrc::descs(text, symbols)
            .into_iter()
            .filter(|r| r.name.starts_with("prometheus_") && !r.name.contains('*')),
    );
    found
}

/// The directory of the repository's own package that `text` imports as
/// `package` (`"github.com/prometheus/prometheus/discovery"`, or an alias).
fn own_import(text: &str, package: &str) -> Option<String> {
    let import = Regex::new(
        r#"(?m)^\s*(?:import\s+)?([A-Za-z_]\w*\s+)?"github\.com/prometheus/prometheus/([\w/.-]+)""#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let found = import.captures_iter(text).find_map(|c| {
        let dir = c[2].to_string();
        let name = match c.get(1) {
            Some(alias) => alias.as_str().trim().to_string(),
            None => dir.rsplit('/').next().unwrap_or("").to_string(),
        };
        (name == package).then_some(dir)
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_and_labels(rows: Vec<Row>) -> Vec<(String, Vec<String>)> {
        rows.into_iter()
            .map(|r| (r.name, r.labels.into_iter().collect()))
            .collect()
    }

    #[test]
    fn const_label_variables_and_constants_of_other_packages_resolve() {
        let shared = r#"
package discovery
const (
	WatchNamespace = "prometheus_sd_watch"
)
"#;
        let src = r#"
package watch
import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/prometheus/prometheus/discovery"
)
const (
	queueKey = "queue"
	sinkKey  = "sink"
)
func newQueueMetrics(name, sink string) {
	labels := prometheus.Labels{
		queueKey: name,
		sinkKey:  sink,
	}
	sent := prometheus.NewCounter(prometheus.CounterOpts{
		Namespace:   "prometheus",
		Name:        "queue_sent_total",
		ConstLabels: labels,
	})
	lost := prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: discovery.WatchNamespace,
		Name:      "lost_total",
	})
	size := prometheus.NewDesc(
		"prometheus_queue_size_bytes",
		"Bytes held.",
		[]string{"pool"},
		nil,
	)
}
"#;
        assert_eq!(own_import(src, "discovery").as_deref(), Some("discovery"));
        assert_eq!(own_import(src, "prometheus"), None);
        let mut symbols = gosrc::Symbols::default();
        symbols.const_labels = true;
        symbols.add_file(src);
        symbols.add_package_file("discovery", shared);
        assert_eq!(
            names_and_labels(registered(src, &symbols)),
            [
                (
                    "prometheus_queue_sent_total".to_string(),
                    vec!["queue".to_string(), "sink".to_string()]
                ),
                ("prometheus_sd_watch_lost_total".to_string(), vec![]),
                (
                    "prometheus_queue_size_bytes".to_string(),
                    vec!["pool".to_string()]
                ),
            ]
        );
    }
}
