//! buildkite-agent-metrics: the gauges of its Prometheus backend
//! (`backend/prometheus.go`, from 2.1). The backend builds each name from a
//! prefix and a collector key: `"buildkite_queues_" +
//! camelToUnderscore(name)` for every key the collector sets on that
//! scope (`result.Queues[queue][ScheduledJobsCount] = …`), or for every key
//! of `collector.AllMetrics` where the backend ranges over that list. The
//! labels are the list that follows the options (`queue`, `cluster`).
//! Releases without the backend have no Prometheus metrics and are not
//! read.

use std::collections::BTreeSet;
use std::path::Path;

use regex::Regex;

use super::{find_clone, gosrc, release_tags, ExtractError, Releases, Row};
use crate::catalog::Version;

pub const SOURCES: &[&str] = &["buildkite/buildkite-agent-metrics"];

pub fn extract(clones: &Path) -> Result<Releases, ExtractError> {
    let repo = find_clone(clones, SOURCES[0])?;
    let mut releases = Releases::new();
    for (version, tag) in release_tags(&repo, Version::new(1, 0))? {
        let Some(backend) = repo.show(&tag, "backend/prometheus.go") else {
            continue;
        };
        let collector = repo
            .show(&tag, "collector/collector.go")
            .unwrap_or_default();
        releases.insert(version, rows(&backend, &collector).into_iter().collect());
    }
    Ok(releases)
}

/// The gauges the backend source registers, given the collector source.
/// The name call (`fmt.Sprintf("buildkite_queues_%s", camelToUnderscore(name))`
/// or `"buildkite_queues_" + camelToUnderscore(name)`) is read as the
/// literal `buildkite_queues_@`, so the shared Go reader resolves the
/// registration and its label list; `@` then stands for each key. A label
/// list variable (`labelNames := []string{"queue"}`, widened by `append`
/// when a cluster is set) is read from the code between the previous
/// registration and this one, where each loop declares its own.
pub fn rows(backend: &str, collector: &str) -> Vec<Row> {
    let name_call = Regex::new(
        r#"fmt\.Sprintf\(\s*"(buildkite_[a-z]+_)%s"\s*,\s*camelToUnderscore\(\w+\)\s*\)|"(buildkite_[a-z]+_)"\s*\+\s*camelToUnderscore\(\w+\)"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let text = name_call.replace_all(backend, |c: &regex::Captures| {
        let p = c.get(1).or(c.get(2)).map_or("", |p| p.as_str());
        format!("\"{p}@\"")
    });
    let opts = Regex::new(r"GaugeOpts\s*\{").unwrap_or_else(|e| panic!("{e}"));
    let starts: Vec<usize> = opts.find_iter(&text).map(|m| m.start()).collect();
    let mut symbols = gosrc::Symbols::default();
    symbols.follow_lists = true;
    symbols.add_file(collector);
    let every = backend.contains("collector.AllMetrics");
    let all = keys_of_all_metrics(collector, &symbols);
    let mut out = Vec::new();
    for (i, &at) in starts.iter().enumerate() {
        let before = if i == 0 { 0 } else { starts[i - 1] + 1 };
        let after = starts.get(i + 1).copied().unwrap_or(text.len());
        let mut local = symbols.clone();
        local.add_file(&text[before..at]);
        for row in gosrc::metrics(&text[at..after], &local) {
            let Some(prefix) = row.name.strip_suffix('@') else {
                continue;
            };
            let keys = if every {
                all.clone()
            } else {
                assigned_keys(collector, scope_field(prefix), &symbols)
            };
            for key in keys {
                out.push(Row::labelled(
                    format!("{prefix}{}", camel_to_underscore(&key)),
                    "gauge",
                    row.labels.clone(),
                ));
            }
        }
    }
    out
}

/// The collector's result field a name prefix reads.
fn scope_field(prefix: &str) -> &'static str {
    match prefix {
        "buildkite_total_" => "Totals",
        "buildkite_pipelines_" => "Pipelines",
        _ => "Queues",
    }
}

fn keys_of_all_metrics(collector: &str, symbols: &gosrc::Symbols) -> BTreeSet<String> {
    let Some(start) = collector.find("AllMetrics = []string{") else {
        return BTreeSet::new();
    };
    let open = start + "AllMetrics = []string".len();
    gosrc::block(collector, open)
        .map(|body| symbols.items(body, 0))
        .unwrap_or_default()
}

/// The keys set on one result field: `result.Totals[Key] = …`,
/// `r.Queues[queue(job)][Key]++`, and, where a scope's map is made by
/// `newCounts()`, the keys of the map literal that function returns.
fn assigned_keys(collector: &str, field: &str, symbols: &gosrc::Symbols) -> BTreeSet<String> {
    let pattern = if field == "Totals" {
        format!(r"\.{field}\[(\w+)\]\s*(?:=|\+\+|\+=)")
    } else {
        format!(r"\.{field}\[[^\]\n]+\]\[(\w+)\]\s*(?:=|\+\+|\+=)")
    };
    let re = Regex::new(&pattern).unwrap_or_else(|e| panic!("{e}"));
    let mut keys: BTreeSet<String> = re
        .captures_iter(collector)
        .filter_map(|c| symbols.string(&c[1]))
        .collect();
    if collector.contains(&format!(".{field}[")) && collector.contains("= newCounts()") {
        let made = Regex::new(&format!(r"\.{field}\[[^\]\n]+\]\s*=\s*newCounts\(\)"))
            .unwrap_or_else(|e| panic!("{e}"));
        if made.is_match(collector) {
            keys.extend(new_counts_keys(collector, symbols));
        }
    }
    keys
}

/// The keys of the map literal `newCounts()` returns.
fn new_counts_keys(collector: &str, symbols: &gosrc::Symbols) -> BTreeSet<String> {
    let Some(start) = collector.find("func newCounts()") else {
        return BTreeSet::new();
    };
    let Some(open) = collector[start..]
        .find("map[string]int{")
        .map(|i| start + i + 14)
    else {
        return BTreeSet::new();
    };
    let key = Regex::new(r"(\w+)\s*:").unwrap_or_else(|e| panic!("{e}"));
    gosrc::block(collector, open)
        .map(|body| {
            key.captures_iter(body)
                .filter_map(|c| symbols.string(&c[1]))
                .collect()
        })
        .unwrap_or_default()
}

/// The backend's `camelToUnderscore`: words split where the source's
/// pattern `(^[^A-Z0-9]*|[A-Z0-9]*)([A-Z0-9][^A-Z]+|$)` splits them,
/// joined by `_`, lower-cased.
pub fn camel_to_underscore(s: &str) -> String {
    let re =
        Regex::new(r"(^[^A-Z0-9]*|[A-Z0-9]*)([A-Z0-9][^A-Z]+|$)").unwrap_or_else(|e| panic!("{e}"));
    let mut parts = Vec::new();
    for c in re.captures_iter(s) {
        for g in [c.get(1), c.get(2)].into_iter().flatten() {
            if !g.as_str().is_empty() {
                parts.push(g.as_str());
            }
        }
    }
    parts.join("_").to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_prefix_and_collector_key() {
        let collector = r#"
const (
	ScheduledJobsCount   = "ScheduledJobsCount"
	BusyAgentPercentage  = "BusyAgentPercentage"
	RunningBuildsCount   = "RunningBuildsCount"
	ScheduledBuildsCount = "ScheduledBuildsCount"
)
func collect(result *Result) {
	result.Totals[BusyAgentPercentage] = 1
	result.Queues[queueName][ScheduledJobsCount] = 2
	r.Pipelines[name] = newCounts()
	r.Pipelines[pipeline(job)][RunningBuildsCount]++
}
func newCounts() map[string]int {
	return map[string]int{
		ScheduledBuildsCount: 0,
	}
}
"#;
        let backend = r#"
	for name, value := range r.Totals {
		labelNames := []string{}
		if r.Cluster != "" {
			labelNames = append(labelNames, "cluster")
		}
		gauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: fmt.Sprintf("buildkite_total_%s", camelToUnderscore(name)),
			Help: fmt.Sprintf("Buildkite Total: %s", name),
		}, labelNames)
	}
	for queue, counts := range r.Queues {
		labelNames := []string{"queue"}
		gauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "buildkite_queues_" + camelToUnderscore(name),
		}, labelNames)
	}
	for pipeline, counts := range r.Pipelines {
		gauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: fmt.Sprintf("buildkite_pipelines_%s", camelToUnderscore(name)),
		}, []string{"pipeline"})
	}
"#;
        let got: Vec<(String, Vec<String>)> = rows(backend, collector)
            .into_iter()
            .map(|r| (r.name, r.labels.into_iter().collect()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "buildkite_total_busy_agent_percentage".to_string(),
                    vec!["cluster".to_string()]
                ),
                (
                    "buildkite_queues_scheduled_jobs_count".to_string(),
                    vec!["queue".to_string()]
                ),
                (
                    "buildkite_pipelines_running_builds_count".to_string(),
                    vec!["pipeline".to_string()]
                ),
                (
                    "buildkite_pipelines_scheduled_builds_count".to_string(),
                    vec!["pipeline".to_string()]
                ),
            ]
        );
    }

    #[test]
    fn camel_case_splits_like_the_backend() {
        assert_eq!(
            camel_to_underscore("ScheduledJobsCount"),
            "scheduled_jobs_count"
        );
        assert_eq!(
            camel_to_underscore("BusyAgentPercentage"),
            "busy_agent_percentage"
        );
    }
}
