//! The built-in catalog against the real world: rules and a dashboard over
//! the families a stock Kubernetes monitoring stack reads lint without
//! unknown metrics or impossible labels; the Debian node-exporter and
//! Prometheus binaries, started here, expose nothing the catalog does not
//! know at their versions; and the patch-level renames upstream made are
//! in the data.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, poolc, scratch, stdout, tool};
use poolc::catalog::{builtin, Exporter, KnownMetric, Version, Versions};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn stock_families_lint_without_unknown_metrics_or_impossible_labels() {
    let out = poolc(
        root(),
        &[
            "lint",
            "--catalog",
            "tests/catalog/catalog.yaml",
            "tests/catalog/stock",
        ],
    );
    let text = stdout(&out);
    for code in ["P001", "P002", "P004"] {
        assert!(!text.contains(&format!(": {code} ")), "{code} in:\n{text}");
    }
    // The gate still blocks: a name no exporter has, and a label the
    // family never carries.
    let dir = scratch("catalog-unknown");
    std::fs::write(
        dir.join("rules.yaml"),
        "groups:\n  - name: g\n    rules:\n      - record: a:b\n        expr: node_cpu_seconds_totl\n      - record: c:d\n        expr: 'kube_pod_labels{severity=\"x\"}'\n",
    )
    .unwrap();
    std::fs::copy(
        root().join("tests/catalog/catalog.yaml"),
        dir.join("catalog.yaml"),
    )
    .unwrap();
    let out = poolc(&dir, &["lint", "--catalog", "catalog.yaml", "rules.yaml"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains(": P002 "), "{text}");
    assert!(
        text.contains("did you mean `node_cpu_seconds_total`"),
        "{text}"
    );
    assert!(text.contains(": P004 "), "{text}");
}

fn at(exporter: Exporter, version: &str) -> Vec<&'static KnownMetric> {
    let v: Version = version.parse().unwrap();
    exporter
        .metrics()
        .iter()
        .filter(|m| m.exists_in(v))
        .collect()
}

fn has(exporter: Exporter, version: &str, name: &str) -> bool {
    at(exporter, version).iter().any(|m| m.name == name)
}

#[test]
fn patch_releases_that_renamed_metrics_are_in_the_windows() {
    // KEDA 2.9.2 fixed `keda_scaled_errors` to `keda_scaled_object_errors`.
    assert!(has(Exporter::Keda, "2.9.1", "keda_scaled_errors"));
    assert!(!has(Exporter::Keda, "2.9.1", "keda_scaled_object_errors"));
    assert!(has(Exporter::Keda, "2.9.2", "keda_scaled_object_errors"));
    assert!(!has(Exporter::Keda, "2.9.2", "keda_scaled_errors"));
    // A minor without a patch is its newest patch.
    assert!(has(Exporter::Keda, "2.9", "keda_scaled_object_errors"));
    // The AWS provider added the user-data size gauge in 1.14.1.
    assert!(!has(
        Exporter::Karpenter,
        "1.14.0",
        "karpenter_ec2nodeclasses_userdata_bytes"
    ));
    assert!(has(
        Exporter::Karpenter,
        "1.14.1",
        "karpenter_ec2nodeclasses_userdata_bytes"
    ));
    // kube-state-metrics 2.19.1 added the invalid-schedule gauge.
    assert!(!has(
        Exporter::KubeStateMetrics,
        "2.19.0",
        "kube_cronjob_schedule_invalid"
    ));
    assert!(has(
        Exporter::KubeStateMetrics,
        "2.19.1",
        "kube_cronjob_schedule_invalid"
    ));
}

#[test]
fn open_label_sets_and_prefixes() {
    let alerts = at(Exporter::Prometheus, "2.42")
        .into_iter()
        .find(|m| m.name == "ALERTS")
        .unwrap();
    assert!(alerts.has_label("severity") && alerts.has_label("alertstate"));
    let labels = at(Exporter::KubeStateMetrics, "2.13")
        .into_iter()
        .find(|m| m.name == "kube_pod_labels")
        .unwrap();
    assert!(labels.has_label("label_app_kubernetes_io_name"));
    assert!(labels.has_label("pod"));
    assert!(!labels.has_label("annotation_x"));
    for name in ["up", "scrape_duration_seconds", "scrape_series_added"] {
        assert!(has(Exporter::Prometheus, "2.42", name), "{name}");
    }
}

fn metric(exporter: Exporter, version: &str, name: &str) -> &'static KnownMetric {
    at(exporter, version)
        .into_iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("{name} is not in {} {version}", exporter.as_str()))
}

#[test]
fn kubernetes_and_cadvisor_windows_follow_upstream_releases() {
    // The SLI latency histogram arrived in Kubernetes 1.26.
    assert!(!has(
        Exporter::Kubernetes,
        "1.25",
        "apiserver_request_sli_duration_seconds_bucket"
    ));
    assert!(has(
        Exporter::Kubernetes,
        "1.26.0",
        "apiserver_request_sli_duration_seconds_bucket"
    ));
    // The storage size gauge renamed its label in the patch releases 1.28.10
    // and 1.29.5, and 1.29.0 shipped with the old name again.
    let size = "apiserver_storage_size_bytes";
    for (version, label) in [
        ("1.28.9", "cluster"),
        ("1.28.10", "storage_cluster_id"),
        ("1.29.0", "cluster"),
        ("1.29.5", "storage_cluster_id"),
    ] {
        let m = metric(Exporter::Kubernetes, version, size);
        assert!(m.has_label(label), "{size} {version} {label}");
    }
    assert!(!metric(Exporter::Kubernetes, "1.28.9", size).has_label("storage_cluster_id"));
    // The REST client keyed its latency by `url` until 1.24, by `host` since.
    let latency = "rest_client_request_duration_seconds_bucket";
    assert!(metric(Exporter::Kubernetes, "1.23", latency).has_label("url"));
    assert!(metric(Exporter::Kubernetes, "1.24.0", latency).has_label("host"));
    assert!(!metric(Exporter::Kubernetes, "1.24.0", latency).has_label("url"));

    // cAdvisor counts OOM events from 0.40.
    assert!(!has(
        Exporter::Cadvisor,
        "0.39.4",
        "container_oom_events_total"
    ));
    assert!(has(
        Exporter::Cadvisor,
        "0.40.0",
        "container_oom_events_total"
    ));
    // Container families carry cAdvisor's labels and the kubelet's.
    let cpu = metric(
        Exporter::Cadvisor,
        "0.49",
        "container_cpu_usage_seconds_total",
    );
    for label in [
        "id",
        "image",
        "name",
        "container",
        "pod",
        "namespace",
        "cpu",
    ] {
        assert!(cpu.has_label(label), "{label}");
    }
    assert!(cpu.has_label("container_label_io_kubernetes_pod_uid"));
    assert!(!cpu.has_label("pod_name"));
    // Machine families gained their machine labels with their own collector
    // in 0.37.
    assert!(!metric(Exporter::Cadvisor, "0.36", "machine_cpu_cores").has_label("machine_id"));
    assert!(metric(Exporter::Cadvisor, "0.37.0", "machine_cpu_cores").has_label("machine_id"));
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).ok()?;
    let (head, body) = body.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.0 200").then(|| body.to_string())
}

fn wait_for(port: u16, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(body) = get(port, path) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "nothing served on 127.0.0.1:{port}{path}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Families of an exposition: name → (type, label names), with histogram
/// and summary samples folded into their family.
fn families(body: &str) -> BTreeMap<String, (String, BTreeSet<String>)> {
    let mut out: BTreeMap<String, (String, BTreeSet<String>)> = BTreeMap::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            out.insert(name.to_string(), (kind.to_string(), BTreeSet::new()));
        } else if !line.starts_with('#') && !line.is_empty() {
            let name = line.split(['{', ' ']).next().unwrap();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .filter_map(|s| name.strip_suffix(s))
                .find(|base| {
                    out.get(*base)
                        .is_some_and(|(k, _)| k == "histogram" || k == "summary")
                })
                .unwrap_or(name)
                .to_string();
            let labels: Vec<String> = line
                .split_once('{')
                .and_then(|(_, rest)| rest.rsplit_once('}'))
                .map(|(labels, _)| {
                    labels
                        .split("\",")
                        .filter_map(|kv| kv.split_once('=').map(|(k, _)| k.trim().to_string()))
                        .filter(|k| k != "le" && k != "quantile")
                        .collect()
                })
                .unwrap_or_default();
            out.entry(family)
                .or_insert_with(|| ("untyped".into(), BTreeSet::new()))
                .1
                .extend(labels);
        }
    }
    out
}

/// Names the source builds with `fmt.Sprintf`, which the extractors do not
/// evaluate: known gaps, listed so that any other miss fails.
const BUILT_AT_RUN_TIME: &[&str] = &["prometheus_tsdb_clean_start"];

/// Every family of `body` whose name starts with `prefix` is in the catalog
/// at `version`, with its type and a label set that allows its labels.
fn check_against(exporter: Exporter, version: &str, body: &str, prefix: &str) -> usize {
    let catalog: BTreeMap<&str, &KnownMetric> = at(exporter, version)
        .into_iter()
        .map(|m| (m.name.as_str(), m))
        .collect();
    let mut checked = 0;
    let mut problems = Vec::new();
    for (name, (kind, labels)) in families(body) {
        // `<app>_build_info` is registered by a library (prometheus/common's
        // version collector), not by the exporter's own source.
        if !name.starts_with(prefix)
            || name.ends_with("_build_info")
            || BUILT_AT_RUN_TIME.contains(&name.as_str())
        {
            continue;
        }
        // Histograms and summaries are listed by their series.
        let series = match kind.as_str() {
            "histogram" => format!("{name}_count"),
            _ => name.clone(),
        };
        let family = catalog
            .iter()
            .find(|(k, _)| k.strip_suffix('*').is_some_and(|p| series.starts_with(p)))
            .map(|(_, e)| *e);
        let Some(entry) = catalog.get(series.as_str()).copied().or(family) else {
            problems.push(format!("{name} ({kind}) is not in the catalog"));
            continue;
        };
        let want = match kind.as_str() {
            "histogram" => "counter",
            k => k,
        };
        // A name family read from data at run time is untyped in the source.
        let kind_known =
            entry.kind != poolc::catalog::MetricType::Untyped || entry.name.ends_with('*');
        if kind_known
            && !entry.name.ends_with('*')
            && format!("{:?}", entry.kind).to_lowercase() != want
        {
            problems.push(format!("{name}: {kind}, the catalog says {:?}", entry.kind));
        }
        for l in &labels {
            if !entry.has_label(l) {
                problems.push(format!(
                    "{name} has label {l}, the catalog says {:?}",
                    entry.labels
                ));
            }
        }
        checked += 1;
    }
    assert!(
        problems.is_empty(),
        "{} {version}:\n{}",
        exporter.title(),
        problems.join("\n")
    );
    checked
}

fn version_of(binary: &Path) -> String {
    let out = Command::new(binary).arg("--version").output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let word = text.split_whitespace().nth(2).unwrap_or("");
    word.split(['+', '-']).next().unwrap().to_string()
}

#[test]
fn the_node_exporter_catalog_matches_a_real_node_exporter() {
    let Some(binary) = tool(
        "prometheus-node-exporter",
        "apt-get install -y prometheus-node-exporter",
    ) else {
        return;
    };
    let version = version_of(&binary);
    let port = free_port();
    let _running = Running(
        Command::new(&binary)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let body = wait_for(port, "/metrics");
    let checked = check_against(Exporter::NodeExporter, &version, &body, "node_");
    assert!(checked > 50, "only {checked} node_ families checked");
}

#[test]
fn the_prometheus_catalog_matches_a_real_prometheus() {
    let Some(binary) = tool("prometheus", "apt-get install -y prometheus") else {
        return;
    };
    let version = version_of(&binary);
    let dir: PathBuf = scratch("prometheus-own");
    let port = free_port();
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: self\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
        ),
    )
    .unwrap();
    let _running = Running(
        Command::new(&binary)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for(port, "/-/ready");
    // After a scrape and a rule-free evaluation cycle the lazily created
    // families are there too.
    std::thread::sleep(Duration::from_secs(3));
    let body = wait_for(port, "/metrics");
    let checked = check_against(Exporter::Prometheus, &version, &body, "prometheus_");
    assert!(checked > 50, "only {checked} prometheus_ families checked");
    // The synthetic series of that scrape are known too.
    let versions = Versions {
        prometheus: Some(version.parse().unwrap()),
        ..Versions::newest()
    };
    let known: BTreeSet<&str> = builtin::for_versions(&versions)
        .into_iter()
        .map(|m| m.name.as_str())
        .collect();
    let series = wait_for(port, "/api/v1/label/__name__/values");
    for name in series
        .split('"')
        .filter(|s| s.starts_with("scrape_") || *s == "up")
    {
        assert!(
            known.contains(name),
            "{name} is not in the catalog at Prometheus {version}"
        );
    }
}
