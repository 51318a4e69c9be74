//! Prometheus: the series it writes itself and its own metrics.
//! - Synthetic scrape series (`up`, `scrape_*`): the report-sample names in
//!   the scrape loop (`"up" + "\xff"`). They carry the target's labels,
//!   which relabeling decides, so any label is allowed.
//! - `ALERTS` and `ALERTS_FOR_STATE`: the rule manager's metric-name
//!   constants. They carry every label of their alert, so any label.
//! - Its own `prometheus_*` metrics: the Prometheus client registrations
//!   in every non-test Go file, with constants looked up per package.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use regex::Regex;

use super::{find_clone, gosrc, release_tags, ExtractError, Releases, Row};
use crate::catalog::Version;

pub const SOURCES: &[&str] = &["prometheus/prometheus"];

pub fn extract(clones: &Path) -> Result<Releases, ExtractError> {
    let repo = find_clone(clones, SOURCES[0])?;
    let report =
        Regex::new(r#""(up|scrape_[a-z_]+)"\s*\+\s*"\\xff""#).unwrap_or_else(|e| panic!("{e}"));
    let alerts = Regex::new(r#"(?m)^\s*alert(?:ForState)?MetricName\s*=\s*"([A-Z_]+)""#)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut releases = Releases::new();
    for (version, tag) in release_tags(&repo, Version::new(2, 0))? {
        let rows = releases.entry(version).or_default();
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
        let mut packages: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for path in repo.grep_files(&tag, "Opts{", &["."])? {
            if !path.ends_with(".go")
                || path.ends_with("_test.go")
                || path.starts_with("vendor/")
                || path.starts_with("documentation/")
                || path.contains("/testutil")
            {
                continue;
            }
            let dir = path
                .rsplit_once('/')
                .map(|(d, _)| d)
                .unwrap_or("")
                .to_string();
            packages
                .entry(dir)
                .or_default()
                .extend(repo.show(&tag, &path));
        }
        for texts in packages.values() {
            let mut symbols = gosrc::Symbols::default();
            for t in texts {
                symbols.add_file(t);
            }
            for t in texts {
                rows.extend(
                    gosrc::metrics(t, &symbols)
                        .into_iter()
                        .filter(|r| r.name.starts_with("prometheus_")),
                );
            }
        }
        // A name registered twice with different label lists (one per code
        // path) is one family whose labels are their union.
        let mut merged: BTreeMap<(String, &'static str), BTreeSet<String>> = BTreeMap::new();
        for r in std::mem::take(rows) {
            merged.entry((r.name, r.kind)).or_default().extend(r.labels);
        }
        for ((name, kind), labels) in merged {
            rows.insert(Row {
                name,
                kind,
                labels,
                values: Default::default(),
            });
        }
    }
    Ok(releases)
}
