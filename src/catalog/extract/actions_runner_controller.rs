//! actions-runner-controller: the `gha_*` metrics of the runner scale set
//! mode, at the tags of its releases (`gha-runner-scale-set-X.Y.Z`; the
//! controller chart `gha-runner-scale-set-controller` ships with the same
//! version, so one tag family versions both the listener and the
//! controller). The legacy `actions.summerwind.net` mode and its
//! `github_*` metrics are a different product line with other tags.
//!
//! - The controller's `gha_controller_*` gauges and the listener's metrics
//!   up to 0.11 are plain Prometheus registrations (`cmd/ghalistener`,
//!   earlier `cmd/githubrunnerscalesetlistener`, and
//!   `controllers/actions.github.com/metrics`).
//! - From 0.12 the listener's metrics are configurable: each name is a
//!   `Metric… = "gha_…"` constant, its type is the section of the help
//!   registry that lists it (`counters`, `gauges`, `histograms`), and its
//!   labels are the defaults in `defaultMetrics`, which is what a scale
//!   set without a `listenerMetrics` setting serves. 0.11 has no defaults
//!   (only what `listenerMetrics` configures is served), so there every
//!   name takes any of the listener's label keys.

use std::collections::BTreeSet;
use std::path::Path;

use regex::Regex;

use super::{find_clone, gopkg, gosrc, ExtractError, Releases, Row};
use crate::catalog::Version;

pub const SOURCES: &[&str] = &["actions/actions-runner-controller"];

pub const TAG_PREFIX: &str = "gha-runner-scale-set-";

const LISTENER: &str = "cmd/ghalistener/metrics/metrics.go";

pub fn extract(clones: &Path) -> Result<Releases, ExtractError> {
    let repo = find_clone(clones, SOURCES[0])?;
    let scan = gopkg::Scan {
        roots: &[
            "cmd/ghalistener",
            "cmd/githubrunnerscalesetlistener",
            "controllers/actions.github.com",
        ],
        shared: &[],
        const_labels: true,
    };
    let mut releases = Releases::new();
    for (version, tag) in super::prefixed_release_tags(&repo, TAG_PREFIX, Version::new(0, 2))? {
        let rows = releases.entry(version).or_default();
        for (_, row) in gopkg::rows(&repo, &tag, &scan)? {
            if row.name.starts_with("gha_") {
                rows.insert(row);
            }
        }
        if let Some(text) = repo.show(&tag, LISTENER) {
            rows.extend(configurable(&text));
        }
    }
    Ok(releases)
}

/// The configurable listener metrics of one source file: names from the
/// `Metric…` constants, types from the help registry, default labels from
/// `defaultMetrics`.
pub fn configurable(text: &str) -> Vec<Row> {
    let mut symbols = gosrc::Symbols::default();
    symbols.add_file(text);
    let Some(help) = section(text, "metricsHelp = ") else {
        return Vec::new();
    };
    let Some(defaults) = section(text, "defaultMetrics = ") else {
        return without_defaults(help, &symbols);
    };
    let entry = Regex::new(r"(Metric\w+)\s*:\s*\{").unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    for (field, kind) in [
        ("Counters", "counter"),
        ("Gauges", "gauge"),
        ("Histograms", "histogram"),
    ] {
        let Some(group) = section(defaults, &format!("{field}:")) else {
            continue;
        };
        // The help registry's section must list the name under the same
        // type, or the listener refuses it.
        let listed = section(help, &format!("{}:", field.to_lowercase())).unwrap_or("");
        for c in entry.captures_iter(group) {
            let Some(m) = c.get(0) else { continue };
            let Some(name) = symbols.string(&c[1]) else {
                continue;
            };
            if !listed.contains(&c[1]) {
                continue;
            }
            let body = gosrc::block(group, m.end() - 1).unwrap_or("");
            let labels: BTreeSet<String> = body
                .find("[]string{")
                .and_then(|i| gosrc::block(body, i + "[]string".len()))
                .map(|list| symbols.items(list, 0))
                .unwrap_or_default();
            out.push(Row::labelled(name, kind, labels));
        }
    }
    out
}

/// 0.11 registers only what the scale set's `listenerMetrics` lists (the
/// chart documents the set but leaves it commented out): every name of the
/// help registry, with any of the listener's label keys (`labelKey…`).
fn without_defaults(help: &str, symbols: &gosrc::Symbols) -> Vec<Row> {
    let keys: BTreeSet<String> = symbols
        .consts
        .iter()
        .filter(|(k, _)| k.starts_with("labelKey"))
        .map(|(_, v)| v.clone())
        .collect();
    let entry = Regex::new(r"(Metric\w+)\s*:").unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    for (field, kind) in [
        ("counters:", "counter"),
        ("gauges:", "gauge"),
        ("histograms:", "histogram"),
    ] {
        let Some(group) = section(help, field) else {
            continue;
        };
        for c in entry.captures_iter(group) {
            if let Some(name) = symbols.string(&c[1]) {
                out.push(Row::labelled(name, kind, keys.clone()));
            }
        }
    }
    out
}

/// The braces that follow `key` (the first `{` after it).
fn section<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let start = text.find(key)?;
    let open = start + text[start..].find('{')?;
    gosrc::block(text, open)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configurable_metrics_take_type_from_help_and_labels_from_defaults() {
        let src = r#"
const (
	labelKeyName   = "name"
	labelKeyResult = "job_result"
)
const (
	MetricBusy      = "gha_busy_runners"
	MetricCompleted = "gha_completed_jobs_total"
	MetricGone      = "gha_gone"
)
var metricsHelp = metricsHelpRegistry{
	counters: map[string]string{
		MetricCompleted: "Jobs {completed}.",
	},
	gauges: map[string]string{
		MetricBusy: "Busy runners.",
	},
}
var defaultMetrics = v1alpha1.MetricsConfig{
	Counters: map[string]*v1alpha1.CounterMetric{
		MetricCompleted: {
			Labels: []string{labelKeyName, labelKeyResult},
		},
	},
	Gauges: map[string]*v1alpha1.GaugeMetric{
		MetricBusy: {Labels: []string{labelKeyName}},
		MetricGone: {Labels: []string{labelKeyName}},
	},
}
"#;
        let got: Vec<(String, &str, Vec<String>)> = configurable(src)
            .into_iter()
            .map(|r| (r.name, r.kind, r.labels.into_iter().collect()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "gha_completed_jobs_total".to_string(),
                    "counter",
                    vec!["job_result".to_string(), "name".to_string()]
                ),
                (
                    "gha_busy_runners".to_string(),
                    "gauge",
                    vec!["name".to_string()]
                ),
            ]
        );
    }
}
