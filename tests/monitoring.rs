//! The generated monitoring against real promtool and the upstream dashboard
//! schema: rules load, every alert's scenarios pass, every metric the rules,
//! dashboards and KEDA triggers read survives its scrape allowlist, and the
//! dashboards are scoped and parse.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::process::Command;

use common::{documents, repo_fileset, scratch, tool};
use serde_json::Value;

fn promtool() -> Option<std::path::PathBuf> {
    tool("promtool", "apt-get install -y prometheus")
}

fn clusters() -> [&'static str; 2] {
    ["production", "staging"]
}

fn run(cmd: &Path, args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new(cmd)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn promtool_checks_the_rules_and_passes_every_alert_test() {
    let Some(promtool) = promtool() else { return };
    // An output directory of its own: poolc writes only into an empty one.
    let dir = scratch("promtool").join("generated");
    repo_fileset().write(&dir).expect("write");
    for cluster in clusters() {
        let prom = dir.join(cluster).join("prometheus");
        let (ok, text) = run(&promtool, &["check", "rules", "rules.yaml"], &prom);
        assert!(ok, "{cluster}: promtool check rules:\n{text}");
        let (ok, text) = run(&promtool, &["test", "rules", "rules.test.yaml"], &prom);
        assert!(ok, "{cluster}: promtool test rules:\n{text}");
    }
}

#[test]
fn the_alert_tests_fail_when_a_threshold_is_wrong() {
    let Some(promtool) = promtool() else { return };
    let dir = scratch("promtool-mutant").join("generated");
    repo_fileset().write(&dir).expect("write");
    let prom = dir.join("staging/prometheus");
    let rules = fs::read_to_string(prom.join("rules.yaml")).unwrap();
    // The naive `> 0` queue alert of the first draft fires on healthy bursts.
    let mutant = rules.replace(r#"pool="amd64"} > 8"#, r#"pool="amd64"} > 0"#);
    assert_ne!(mutant, rules, "the queue alert is where it was");
    fs::write(prom.join("rules.yaml"), mutant).unwrap();
    let (ok, text) = run(&promtool, &["test", "rules", "rules.test.yaml"], &prom);
    assert!(
        !ok,
        "the healthy-burst scenario did not catch `> 0`:\n{text}"
    );
    assert!(text.contains("healthy bursts"), "{text}");
}

#[test]
fn every_tested_alert_exists_and_every_alert_is_tested() {
    let set = repo_fileset();
    for cluster in clusters() {
        let rules: Value = serde_saphyr::from_str(
            set.get(&format!("{cluster}/prometheus/rules.yaml"))
                .unwrap(),
        )
        .unwrap();
        let defined: BTreeSet<&str> = rules["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_array().unwrap())
            .filter_map(|r| r["alert"].as_str())
            .collect();
        let tests: Value = serde_saphyr::from_str(
            set.get(&format!("{cluster}/prometheus/rules.test.yaml"))
                .unwrap(),
        )
        .unwrap();
        let mut firing: BTreeSet<&str> = BTreeSet::new();
        let mut quiet: BTreeSet<&str> = BTreeSet::new();
        for test in tests["tests"].as_array().unwrap() {
            for case in test["alert_rule_test"].as_array().unwrap() {
                let name = case["alertname"].as_str().unwrap();
                assert!(
                    defined.contains(name),
                    "{cluster}: test of undefined alert {name}"
                );
                if case["exp_alerts"].as_array().unwrap().is_empty() {
                    quiet.insert(name);
                } else {
                    firing.insert(name);
                    let expr = test["promql_expr_test"][0]["expr"].as_str().unwrap();
                    assert!(expr.contains(&format!(r#"alertname="{name}""#)), "{expr}");
                }
            }
        }
        assert_eq!(
            firing, defined,
            "{cluster}: every alert has a failure that fires"
        );
        assert_eq!(quiet, defined, "{cluster}: every alert has a healthy case");
    }
}

/// What the rules, dashboards and KEDA triggers read, parsed from the files.
fn metrics_read(set: &poolc::fileset::FileSet, cluster: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let rules: Value = serde_saphyr::from_str(
        set.get(&format!("{cluster}/prometheus/rules.yaml"))
            .unwrap(),
    )
    .unwrap();
    for group in rules["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let expr = poolc::promql::parse(rule["expr"].as_str().unwrap()).unwrap();
            names.extend(poolc::promql::metric_names(&expr));
        }
    }
    let dashboard: Value = serde_json::from_str(
        set.get(&format!("{cluster}/dashboards/pools.json"))
            .unwrap(),
    )
    .unwrap();
    for target in dashboard_targets(&dashboard) {
        let expr = poolc::promql::parse_dashboard(&target).unwrap();
        names.extend(poolc::promql::metric_names(&expr));
    }
    for doc in documents(set.get(&format!("{cluster}/keda.yaml")).unwrap()) {
        for trigger in doc["spec"]["triggers"].as_array().unwrap() {
            if let Some(location) = trigger["metadata"]["valueLocation"].as_str() {
                let expr = poolc::promql::parse(location).unwrap();
                names.extend(poolc::promql::metric_names(&expr));
            }
        }
    }
    names.retain(|n| !n.starts_with("poolc:"));
    names
}

fn dashboard_targets(dashboard: &Value) -> Vec<String> {
    dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| t["expr"].as_str().unwrap().to_string())
        .collect()
}

/// Keep regexes by exporter, anchored as Prometheus anchors them.
fn keep_filters(set: &poolc::fileset::FileSet, cluster: &str) -> BTreeMap<String, regex::Regex> {
    let mut out = BTreeMap::new();
    for doc in documents(set.get(&format!("{cluster}/servicemonitors.yaml")).unwrap()) {
        let exporter = doc["metadata"]["labels"]["poolc.dev/exporter"]
            .as_str()
            .unwrap()
            .to_string();
        for endpoint in doc["spec"]["endpoints"].as_array().unwrap() {
            for relabel in endpoint["metricRelabelings"]
                .as_array()
                .cloned()
                .unwrap_or_default()
            {
                if relabel["action"] == "keep" && relabel["sourceLabels"][0] == "__name__" {
                    let re = format!("^(?:{})$", relabel["regex"].as_str().unwrap());
                    out.insert(exporter.clone(), regex::Regex::new(&re).unwrap());
                }
            }
        }
    }
    out
}

fn dropped(names: &BTreeSet<String>, filters: &BTreeMap<String, regex::Regex>) -> Vec<String> {
    let mut out = Vec::new();
    for name in names {
        let exporter = match name.split('_').next() {
            Some("haproxy") => "haproxy",
            Some("keda") => "keda",
            // kube-state-metrics and Karpenter are scraped by their own charts.
            _ => continue,
        };
        let filter = filters
            .get(exporter)
            .unwrap_or_else(|| panic!("no ServiceMonitor keeps {exporter} metrics"));
        if !filter.is_match(name) {
            out.push(name.clone());
        }
    }
    out
}

#[test]
fn every_metric_read_survives_its_scrape_allowlist() {
    let set = repo_fileset();
    for cluster in clusters() {
        let names = metrics_read(&set, cluster);
        assert!(names.contains("haproxy_backend_current_queue"), "{names:?}");
        assert!(
            names.contains("keda_scaler_detail_errors_total"),
            "{names:?}"
        );
        let filters = keep_filters(&set, cluster);
        assert_eq!(dropped(&names, &filters), Vec::<String>::new(), "{cluster}");
        // The filter is anchored: a longer name sharing the prefix is dropped.
        assert!(!filters["haproxy"].is_match("haproxy_backend_current_queue_extra"));
    }
}

#[test]
fn the_allowlist_check_catches_a_dropped_metric() {
    let set = repo_fileset();
    let names = metrics_read(&set, "staging");
    let mut filters = keep_filters(&set, "staging");
    // The bug that shipped once: the queue metric missing from the keep regex.
    let pattern = filters["haproxy"]
        .as_str()
        .replace("haproxy_backend_current_queue|", "");
    filters.insert("haproxy".to_string(), regex::Regex::new(&pattern).unwrap());
    assert_eq!(
        dropped(&names, &filters),
        vec!["haproxy_backend_current_queue"]
    );
}

#[test]
fn dashboards_validate_are_scoped_and_parse() {
    let schema: Value = serde_json::from_str(
        &fs::read_to_string(common::schema_dir().join("grafana-dashboard.jsonschema.json"))
            .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("dashboard schema compiles");
    let set = repo_fileset();
    for cluster in clusters() {
        let text = set
            .get(&format!("{cluster}/dashboards/pools.json"))
            .unwrap();
        let dashboard: Value = serde_json::from_str(text).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&dashboard)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{cluster}: {errors:#?}");

        // No hard-coded datasource anywhere: every reference is the variable.
        let mut refs = Vec::new();
        collect_datasources(&dashboard, &mut refs);
        assert!(!refs.is_empty());
        for r in refs {
            assert_eq!(
                r["uid"], "${datasource}",
                "{cluster}: hard-coded datasource {r}"
            );
        }

        let targets = dashboard_targets(&dashboard);
        assert!(targets.len() >= 10, "{cluster}: {} targets", targets.len());
        for target in targets {
            let expr = poolc::promql::parse_dashboard(&target)
                .unwrap_or_else(|e| panic!("{cluster}: {target}: {e}"));
            for vs in poolc::promql::selectors(&expr) {
                let labels: BTreeSet<&str> = poolc::promql::label_matchers(vs)
                    .map(|m| m.name.as_str())
                    .collect();
                for scoped in ["env", "cluster"] {
                    assert!(
                        labels.contains(scoped),
                        "{cluster}: `{target}` is not scoped by {scoped}"
                    );
                }
            }
            // And the scoping uses the variables, not the values of today.
            assert!(
                target.contains(r#"env="$env""#) && target.contains(r#"cluster="$cluster""#),
                "{target}"
            );
        }
    }
}

fn collect_datasources<'a>(value: &'a Value, out: &mut Vec<&'a Value>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "datasource" && v.is_object() {
                    out.push(v);
                } else {
                    collect_datasources(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_datasources(v, out)),
        _ => {}
    }
}
