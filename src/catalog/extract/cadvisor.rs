//! cAdvisor: the `container_*` and `machine_*` families, read from the
//! collector source at every release tag from v0.24 on (`metrics/` until
//! v0.57, `lib/metrics/` after it): `prometheus.go` for containers,
//! `prometheus_machine.go` for machines once it exists. Before v0.24 every
//! key of a container's labels and environment became a label name as it
//! was, so no label set can be stated; those tags are left out.
//!
//! Both collectors keep their families in a table of struct literals
//! (`name:`, `valueType:`, `extraLabels:`); a family's labels are the
//! collector's base labels followed by its extra labels. The few families
//! outside the table are `prometheus.NewDesc` descriptors and the
//! `scrape_error` gauges.
//!
//! Base labels are computed at run time by a labels function, so they are
//! read the way that function builds them:
//! - containers, standalone: the keys `DefaultContainerLabels` sets (`id`,
//!   `name`, `image`), and the prefixes it joins with a container's labels
//!   and environment (`container_label_*`, `container_env_*`);
//! - containers, served by the kubelet at `/metrics/cadvisor`: the kubelet
//!   passes its own labels function, which sets the same `id`, `name` and
//!   `image` plus `container`, `pod` and `namespace` ([`KUBELET_LABELS`]);
//!   the row carries the union, as a family's labels are whatever either
//!   server may attach;
//! - machines: the `baseLabelsNames` list of `prometheus_machine.go`. Before
//!   that file existed the machine descriptors had no labels.
//!
//! Application metrics the collector re-exports under names an application
//! chooses (`container_custom_*`) are not families of cAdvisor's own.

use std::collections::BTreeSet;
use std::path::Path;

use super::re;
use super::{find_clone, gosrc, release_tags, ExtractError, Releases, Row};
use crate::catalog::Version;

pub const SOURCES: &[&str] = &["google/cadvisor"];

/// The labels the kubelet's cAdvisor labels function
/// (`containerPrometheusLabelsFunc` in `pkg/kubelet/server/server.go`, since
/// Kubernetes 1.16) adds to cAdvisor's own `id`, `name` and `image`.
pub const KUBELET_LABELS: &[&str] = &["container", "namespace", "pod"];

const DIRS: &[&str] = &["metrics", "lib/metrics"];

/// The label keys a labels function body sets: `set[Key] = …`,
/// `map[string]string{Key: …}` and `set[Prefix+k]` (a prefix, `Prefix*`).
pub fn labels_function(body: &str, symbols: &gosrc::Symbols) -> BTreeSet<String> {
    let index = re(r"\bset\[([^\]]+)\]\s*=");
    let map = re(r"map\[string\]string\s*\{");
    let mut keys = Vec::new();
    for c in index.captures_iter(body) {
        keys.push(c[1].to_string());
    }
    for m in map.find_iter(body) {
        let Some(inner) = gosrc::block(body, m.end() - 1) else {
            continue;
        };
        for entry in inner.split(',') {
            if let Some((key, _)) = entry.split_once(':') {
                keys.push(key.to_string());
            }
        }
    }
    let mut out = BTreeSet::new();
    for key in keys {
        let key = key.trim();
        if key.is_empty() {
            continue;
        }
        match key.split_once('+') {
            Some((prefix, _)) => {
                if let Some(p) = symbols.string(prefix) {
                    out.insert(format!("{p}*"));
                }
            }
            None => {
                if let Some(k) = symbols.string(key) {
                    out.insert(k);
                }
            }
        }
    }
    out
}

/// Every family of a collector table: struct literals whose first field is
/// `name: "…"`, with their `valueType` and `extraLabels`, plus `base` labels.
pub fn table(text: &str, symbols: &gosrc::Symbols, base: &BTreeSet<String>) -> Vec<Row> {
    let name = re(r#"\bname:\s*"(\w+)""#);
    let value_type = re(r"valueType:\s*prometheus\.(\w+)Value");
    let extra = re(r"extraLabels:\s*\[\]string\s*\{");
    let mut out = Vec::new();
    for c in name.captures_iter(text) {
        let Some(m) = c.get(0) else { continue };
        let before = text[..m.start()].trim_end();
        if !before.ends_with('{') {
            continue;
        }
        let Some(body) = gosrc::block(text, before.len() - 1) else {
            continue;
        };
        let kind = match value_type.captures(body).as_ref().map(|v| &v[1]) {
            Some("Counter") => "counter",
            Some("Gauge") => "gauge",
            _ => "untyped",
        };
        let mut labels = base.clone();
        if let Some(e) = extra.find(body) {
            if let Some(list) = gosrc::block(body, e.end() - 1) {
                labels.extend(symbols.items(list, 0));
            }
        }
        out.push(Row::labelled(c[1].to_string(), kind, labels));
    }
    out
}

/// The families of one collector file outside its table: descriptors
/// (those of containers carry the container labels when collected, whatever
/// their declaration says) and the `scrape_error` gauge.
fn others(text: &str, symbols: &gosrc::Symbols, base: &BTreeSet<String>) -> Vec<Row> {
    // A literal label list after a help text with commas in it.
    let literal = re(r#"NewDesc\(\s*"(\w+)",\s*"(?:[^"\\]|\\.)*",\s*\[\]string\s*\{([^}]*)\}"#);
    let mut out = gosrc::metrics(text, symbols);
    for mut row in gosrc::descs(text, symbols) {
        if row.name.starts_with("container_") {
            row.labels = base.clone();
        } else if let Some(c) = literal.captures_iter(text).find(|c| c[1] == row.name) {
            row.labels = symbols.items(&c[2], 0);
        }
        out.push(row);
    }
    out
}

pub fn extract(clones: &Path) -> Result<Releases, ExtractError> {
    let repo = find_clone(clones, SOURCES[0])?;
    let mut releases = Releases::new();
    for (version, tag) in release_tags(&repo, Version::new(0, 24))? {
        let Some((dir, containers)) = DIRS
            .iter()
            .find_map(|d| Some((*d, repo.show(&tag, &format!("{d}/prometheus.go"))?)))
        else {
            continue;
        };
        let machines = repo.show(&tag, &format!("{dir}/prometheus_machine.go"));
        let mut symbols = gosrc::Symbols::default();
        symbols.add_file(&containers);
        if let Some(m) = &machines {
            symbols.add_file(m);
        }
        let mut container_base = gosrc::function_body(&containers, "DefaultContainerLabels")
            .map(|b| labels_function(b, &symbols))
            .unwrap_or_default();
        container_base.extend(KUBELET_LABELS.iter().map(|l| l.to_string()));

        let mut rows = table(&containers, &symbols, &container_base);
        rows.extend(others(&containers, &symbols, &container_base));
        if let Some(m) = &machines {
            let base = symbols.items("baseLabelsNames", 0);
            rows.extend(table(m, &symbols, &base));
            rows.extend(others(m, &symbols, &BTreeSet::new()));
        }
        rows.retain(|r| {
            (r.name.starts_with("container_") || r.name.starts_with("machine_"))
                && !r.name.starts_with("container_custom_")
                || r.name == "cadvisor_version_info"
        });
        releases.insert(version, rows.into_iter().collect());
    }
    Ok(releases)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTAINERS: &str = r#"
const (
	ContainerLabelPrefix = "container_label_"
	LabelID = "id"
	LabelImage = "image"
)

func NewPrometheusCollector(i infoProvider) *PrometheusCollector {
	c := &PrometheusCollector{
		errors: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "container",
			Name:      "scrape_error",
			Help:      "1 if there was an error {sic}",
		}),
		containerMetrics: []containerMetric{
			{
				name:      "container_last_seen",
				help:      "Last time a container was seen",
				valueType: prometheus.GaugeValue,
			}, {
				name:        "container_fs_reads_total",
				help:        "Cumulative reads",
				valueType:   prometheus.CounterValue,
				extraLabels: []string{"device"},
				getValues: func(s *info.ContainerStats) metricValues {
					return metricValues{{labels: []string{"sda"}}}
				},
			},
		},
	}
	return c
}

var startTimeDesc = prometheus.NewDesc("container_start_time_seconds", "Start time.", nil, nil)
var versionInfoDesc = prometheus.NewDesc("cadvisor_version_info", "Labeled by kernel version, OS version.", []string{"kernelVersion", "osVersion"}, nil)

func DefaultContainerLabels(container *info.ContainerInfo) map[string]string {
	set := map[string]string{LabelID: container.Name}
	if image := container.Spec.Image; len(image) > 0 {
		set[LabelImage] = image
	}
	for k, v := range container.Spec.Labels {
		set[ContainerLabelPrefix+k] = v
	}
	return set
}
"#;

    fn names(rows: &[Row]) -> Vec<(String, &str, Vec<String>)> {
        let mut out: Vec<_> = rows
            .iter()
            .map(|r| (r.name.clone(), r.kind, r.labels.iter().cloned().collect()))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn reads_the_labels_function_as_keys_and_prefixes() {
        let mut s = gosrc::Symbols::default();
        s.add_file(CONTAINERS);
        let body = gosrc::function_body(CONTAINERS, "DefaultContainerLabels").unwrap();
        let got: Vec<String> = labels_function(body, &s).into_iter().collect();
        assert_eq!(got, ["container_label_*", "id", "image"]);
    }

    #[test]
    fn reads_the_table_descriptors_and_scrape_error() {
        let mut s = gosrc::Symbols::default();
        s.add_file(CONTAINERS);
        let base: BTreeSet<String> = ["id".to_string()].into();
        let mut rows = table(CONTAINERS, &s, &base);
        rows.extend(others(CONTAINERS, &s, &base));
        let id = || "id".to_string();
        assert_eq!(
            names(&rows),
            [
                (
                    "cadvisor_version_info".to_string(),
                    "gauge",
                    vec!["kernelVersion".to_string(), "osVersion".to_string()]
                ),
                (
                    "container_fs_reads_total".to_string(),
                    "counter",
                    vec!["device".to_string(), id()]
                ),
                ("container_last_seen".to_string(), "gauge", vec![id()]),
                ("container_scrape_error".to_string(), "gauge", vec![]),
                (
                    "container_start_time_seconds".to_string(),
                    "gauge",
                    vec![id()]
                ),
            ]
        );
    }

    #[test]
    fn machine_labels_resolve_constants() {
        let src = r#"
var baseLabelsNames = []string{"machine_id", "boot_id"}
const (
	prometheusNodeLabelName = "node_id"
)
func NewPrometheusMachineCollector() *PrometheusMachineCollector {
	c := &PrometheusMachineCollector{
		machineMetrics: []machineMetric{
			{
				name:        "machine_node_memory_capacity_bytes",
				valueType:   prometheus.GaugeValue,
				extraLabels: []string{prometheusNodeLabelName},
			},
		},
	}
}
"#;
        let mut s = gosrc::Symbols::default();
        s.add_file(src);
        let base = s.items("baseLabelsNames", 0);
        assert_eq!(
            names(&table(src, &s, &base)),
            [(
                "machine_node_memory_capacity_bytes".to_string(),
                "gauge",
                vec!["boot_id".into(), "machine_id".into(), "node_id".into()]
            )]
        );
    }
}
