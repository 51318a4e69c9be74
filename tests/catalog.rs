//! The built-in catalog against the real world: rules and a dashboard over
//! the families a stock Kubernetes monitoring stack reads lint without
//! unknown metrics or impossible labels; the Debian node-exporter,
//! Prometheus, Alertmanager and HAProxy binaries, started here, expose nothing the catalog does not
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
    // Every template names a label its series carry, and every dashboard
    // selector is scoped by the catalog's external label `cluster`.
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("0 errors, 0 warnings"), "{text}");
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

fn labels_at(exporter: Exporter, version: &str, name: &str) -> Vec<String> {
    at(exporter, version)
        .into_iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("{name} is not in {} {version}", exporter.title()))
        .labels
        .clone()
}

#[test]
fn controllers_serve_the_families_of_the_libraries_they_pin() {
    // controller-runtime's reconcile and workqueue families, in every KEDA
    // and Karpenter release; the workqueue's `controller` label came with
    // controller-runtime 0.18 (KEDA 2.16 pins it, 2.15 pinned 0.17).
    for (exporter, version) in [(Exporter::Keda, "2.0.0"), (Exporter::Karpenter, "1.0.0")] {
        for name in [
            "controller_runtime_reconcile_total",
            "controller_runtime_reconcile_errors_total",
            "controller_runtime_reconcile_time_seconds_bucket",
            "controller_runtime_webhook_requests_total",
            "workqueue_depth",
            "workqueue_adds_total",
            "workqueue_queue_duration_seconds_bucket",
            "workqueue_work_duration_seconds_count",
            "workqueue_retries_total",
            "workqueue_unfinished_work_seconds",
            "workqueue_longest_running_processor_seconds",
            "rest_client_requests_total",
            "go_goroutines",
            "go_memstats_heap_alloc_bytes",
            "process_resident_memory_bytes",
        ] {
            assert!(has(exporter, version, name), "{name} at {version}");
        }
    }
    assert_eq!(
        labels_at(Exporter::Keda, "2.15", "workqueue_depth"),
        ["name"]
    );
    assert_eq!(
        labels_at(Exporter::Keda, "2.16", "workqueue_depth"),
        ["controller", "name"]
    );
    assert_eq!(
        labels_at(Exporter::Keda, "2.16", "controller_runtime_reconcile_total"),
        ["controller", "result"]
    );
    assert_eq!(labels_at(Exporter::Keda, "2.16", "go_info"), ["version"]);
    // The metrics service's gRPC server and client, from 2.14, under KEDA's
    // namespace and with the interceptors' labels.
    assert!(!has(
        Exporter::Keda,
        "2.13",
        "keda_internal_metricsservice_grpc_server_handled_total"
    ));
    assert_eq!(
        labels_at(
            Exporter::Keda,
            "2.14",
            "keda_internal_metricsservice_grpc_server_handled_total"
        ),
        ["grpc_code", "grpc_method", "grpc_service", "grpc_type"]
    );
    for name in [
        "keda_internal_metricsservice_grpc_server_started_total",
        "keda_internal_metricsservice_grpc_server_handling_seconds_bucket",
        "keda_internal_metricsservice_grpc_client_handled_total",
        "keda_internal_metricsservice_grpc_client_handling_seconds_bucket",
        "keda_webhook_scaled_object_validations_total",
        "keda_webhook_scaled_object_validation_errors_total",
    ] {
        assert!(has(Exporter::Keda, "2.20", name), "{name}");
    }
    // operatorpkg: the global status-condition families since 1.0, the
    // per-kind ones with the status controllers of 1.1.
    assert_eq!(
        labels_at(
            Exporter::Karpenter,
            "1.0",
            "operator_status_condition_count"
        ),
        [
            "group",
            "kind",
            "name",
            "namespace",
            "reason",
            "status",
            "type"
        ]
    );
    assert!(!has(
        Exporter::Karpenter,
        "1.0",
        "operator_nodepool_status_condition_count"
    ));
    for name in [
        "operator_nodepool_status_condition_count",
        "operator_nodeclaim_status_condition_transitions_total",
        "operator_ec2nodeclass_status_condition_current_status_seconds",
        "operator_node_status_condition_count",
    ] {
        assert!(has(Exporter::Karpenter, "1.1", name), "{name}");
    }
    // NodeClaim conditions carry the labels the controller passes (the
    // node class and node pool of each object): computed, so open.
    let nodeclaim = at(Exporter::Karpenter, "1.14")
        .into_iter()
        .find(|m| m.name == "operator_nodeclaim_status_condition_count")
        .unwrap();
    assert!(nodeclaim.has_label("karpenter_sh_nodepool"));
}

#[test]
fn karpenter_windows_and_labels_follow_the_source() {
    // The termination histogram exists in every release since 1.0.
    assert!(has(
        Exporter::Karpenter,
        "1.0.0",
        "karpenter_nodeclaims_termination_duration_seconds_bucket"
    ));
    // `zone` on the terminated counter only from 1.14.
    assert!(!labels_at(
        Exporter::Karpenter,
        "1.13",
        "karpenter_nodeclaims_terminated_total"
    )
    .contains(&"zone".to_string()));
    assert!(labels_at(
        Exporter::Karpenter,
        "1.14",
        "karpenter_nodeclaims_terminated_total"
    )
    .contains(&"zone".to_string()));
    // The node gauges carry the well-known labels, the provider's included.
    let allocatable = labels_at(Exporter::Karpenter, "1.14", "karpenter_nodes_allocatable");
    for label in [
        "instance_category",
        "instance_cpu",
        "capacity_type",
        "zone",
        "nodepool",
    ] {
        assert!(allocatable.contains(&label.to_string()), "{label}");
    }
    // `resource_type` is any resource name.
    let usage = at(Exporter::Karpenter, "1.14")
        .into_iter()
        .find(|m| m.name == "karpenter_nodepools_usage")
        .unwrap();
    assert!(usage.has_label("resource_type"));
    assert!(!usage.values.contains_key("resource_type"));
}

#[test]
fn haproxy_backports_carry_their_patch_release() {
    // The aggregated server status reached the 2.6 branch in 2.6.8.
    assert!(!has(
        Exporter::Haproxy,
        "2.6.7",
        "haproxy_backend_agg_server_status"
    ));
    assert!(has(
        Exporter::Haproxy,
        "2.6.8",
        "haproxy_backend_agg_server_status"
    ));
    assert!(has(
        Exporter::Haproxy,
        "2.6.12",
        "haproxy_backend_agg_check_status"
    ));
    assert!(has(
        Exporter::Haproxy,
        "2.8.0",
        "haproxy_backend_agg_server_status"
    ));
    // 2.6 is its newest patch release.
    assert!(has(
        Exporter::Haproxy,
        "2.6",
        "haproxy_backend_agg_server_status"
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
    // HAProxy answers an HTTP/1.0 request with an HTTP/1.1 status line.
    (head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200")).then(|| body.to_string())
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
        // `<app>_build_info` carries the labels of the version collector
        // the binary was linked with: a distribution's rebuild links its
        // own prometheus/common (Debian's node-exporter 1.5.0 adds `goos`
        // and `goarch`, which the v0.37.0 upstream pins lacks).
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

#[test]
fn the_alertmanager_catalog_matches_a_real_alertmanager() {
    let Some(binary) = tool(
        "prometheus-alertmanager",
        "apt-get install -y prometheus-alertmanager",
    ) else {
        return;
    };
    let version = version_of(&binary);
    let dir: PathBuf = scratch("alertmanager-own");
    std::fs::write(
        dir.join("alertmanager.yml"),
        "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n",
    )
    .unwrap();
    let port = free_port();
    // Clustering on a loopback port, so the gossip families are served too.
    let cluster = free_port();
    let _running = Running(
        Command::new(&binary)
            .arg(format!(
                "--config.file={}",
                dir.join("alertmanager.yml").display()
            ))
            .arg(format!("--storage.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--cluster.listen-address=127.0.0.1:{cluster}"))
            .arg(format!("--cluster.advertise-address=127.0.0.1:{cluster}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for(port, "/-/ready");
    let body = wait_for(port, "/metrics");
    let checked = check_against(Exporter::Alertmanager, &version, &body, "alertmanager_");
    assert!(
        checked > 30,
        "only {checked} alertmanager_ families checked"
    );
    // The families stock alerts read are among them.
    for name in [
        "alertmanager_notifications_failed_total",
        "alertmanager_cluster_members",
        "alertmanager_config_last_reload_successful",
    ] {
        assert!(families(&body).contains_key(name), "{name} not served");
    }
}

#[test]
fn the_haproxy_catalog_matches_a_real_haproxy() {
    let Some(binary) = tool("haproxy", "apt-get install -y haproxy") else {
        return;
    };
    // `HAProxy version 2.6.12-1+deb12u4 2026/10/17 - …`
    let out = Command::new(&binary).arg("-v").output().unwrap();
    let banner = String::from_utf8_lossy(&out.stdout).into_owned();
    let version = banner
        .split_whitespace()
        .nth(2)
        .and_then(|w| w.split(['+', '-']).next())
        .unwrap_or_else(|| panic!("no version in {banner:?}"))
        .to_string();
    let dir: PathBuf = scratch("haproxy-own");
    let (port, lb, worker) = (free_port(), free_port(), free_port());
    // Every scope promex dumps: the process, a frontend with its listener
    // (`option socket-stats`), a backend whose server is health- and
    // agent-checked (it never answers: its status series exist all the
    // same), and a stick table.
    std::fs::write(
        dir.join("haproxy.cfg"),
        format!(
            "global\n  log stdout format raw local0 emerg\n\
             defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n\
             frontend stats\n  bind 127.0.0.1:{port}\n  http-request use-service prometheus-exporter if {{ path /metrics }}\n\
             frontend fe_pool\n  bind 127.0.0.1:{lb}\n  option socket-stats\n  default_backend bk_pool\n\
             backend bk_pool\n  stick-table type ip size 1k expire 1m\n  stick on src\n\
             \x20 server worker-0 127.0.0.1:{worker} check inter 1s agent-check agent-port {worker} agent-inter 1s\n"
        ),
    )
    .unwrap();
    let _running = Running(
        Command::new(&binary)
            .arg("-db")
            .arg("-f")
            .arg(dir.join("haproxy.cfg"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let body = wait_for(port, "/metrics");
    let checked = check_against(Exporter::Haproxy, &version, &body, "haproxy_");
    assert!(checked > 150, "only {checked} haproxy_ families checked");
    // Every scope was served.
    let served = families(&body);
    for scope in [
        "process",
        "frontend",
        "listener",
        "backend",
        "server",
        "sticktable",
    ] {
        assert!(
            served
                .keys()
                .any(|n| n.starts_with(&format!("haproxy_{scope}_"))),
            "no haproxy_{scope}_ family served"
        );
    }
}

fn label_set_at(exporter: Exporter, version: &str, name: &str) -> BTreeSet<String> {
    at(exporter, version)
        .into_iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("{name} is not in the catalog at {version}"))
        .labels
        .iter()
        .cloned()
        .collect()
}

fn set(labels: &[&str]) -> BTreeSet<String> {
    labels.iter().map(|l| l.to_string()).collect()
}

/// Facts read in upstream source and changelogs, per exporter.
#[test]
fn platform_exporters_follow_their_upstream_releases() {
    // CoreDNS 1.7.0 renamed the `_count_total` counters; 1.10.0 added
    // `view`; 1.11.0 moved the forwarder's upstream metrics to `proxy`.
    assert!(has(
        Exporter::Coredns,
        "1.6.9",
        "coredns_dns_request_count_total"
    ));
    assert!(!has(
        Exporter::Coredns,
        "1.6.9",
        "coredns_dns_requests_total"
    ));
    assert!(has(
        Exporter::Coredns,
        "1.7.0",
        "coredns_dns_requests_total"
    ));
    assert!(
        !label_set_at(Exporter::Coredns, "1.9.4", "coredns_dns_requests_total").contains("view")
    );
    assert_eq!(
        label_set_at(Exporter::Coredns, "1.10.0", "coredns_dns_requests_total"),
        set(&["server", "zone", "view", "proto", "family", "type"])
    );
    assert_eq!(
        label_set_at(Exporter::Coredns, "1.11", "coredns_dns_responses_total"),
        set(&["server", "zone", "view", "rcode", "plugin"])
    );
    assert!(has(
        Exporter::Coredns,
        "1.10",
        "coredns_forward_request_duration_seconds_bucket"
    ));
    assert!(!has(
        Exporter::Coredns,
        "1.11.0",
        "coredns_forward_request_duration_seconds_bucket"
    ));
    assert_eq!(
        label_set_at(
            Exporter::Coredns,
            "1.11.0",
            "coredns_proxy_request_duration_seconds_bucket"
        ),
        set(&["proxy_name", "to", "rcode", "le"])
    );
    assert_eq!(
        label_set_at(Exporter::Coredns, "1.12", "coredns_build_info"),
        set(&["version", "revision", "goversion"])
    );
    assert!(label_set_at(Exporter::Coredns, "1.12", "coredns_panics_total").is_empty());
    let requests = at(Exporter::Coredns, "1.12")
        .into_iter()
        .find(|m| m.name == "coredns_dns_requests_total")
        .unwrap();
    assert_eq!(requests.values["family"], set(&["1", "2"]));
    assert!(requests.values["type"].contains("AAAA") && requests.values["type"].contains("other"));

    // Alertmanager 0.26 added `reason` to failed notifications, 0.27 the
    // receiver name (behind a feature flag) and the suppressed counter.
    assert_eq!(
        label_set_at(
            Exporter::Alertmanager,
            "0.25",
            "alertmanager_notifications_failed_total"
        ),
        set(&["integration"])
    );
    assert_eq!(
        label_set_at(
            Exporter::Alertmanager,
            "0.26.0",
            "alertmanager_notifications_failed_total"
        ),
        set(&["integration", "reason"])
    );
    assert!(label_set_at(
        Exporter::Alertmanager,
        "0.27.0",
        "alertmanager_notifications_total"
    )
    .contains("receiver_name"));
    assert!(!has(
        Exporter::Alertmanager,
        "0.26",
        "alertmanager_notifications_suppressed_total"
    ));
    assert!(has(
        Exporter::Alertmanager,
        "0.27",
        "alertmanager_notifications_suppressed_total"
    ));
    assert_eq!(
        label_set_at(Exporter::Alertmanager, "0.20.0", "alertmanager_silences"),
        set(&["state"])
    );

    // prometheus-operator: per-controller reconcile metrics, the workqueue
    // metrics from 0.85, and the config-reloader's from Thanos.
    assert_eq!(
        label_set_at(
            Exporter::PrometheusOperator,
            "0.75",
            "prometheus_operator_reconcile_errors_total"
        ),
        set(&["controller"])
    );
    assert!(!has(
        Exporter::PrometheusOperator,
        "0.84",
        "prometheus_operator_workqueue_depth"
    ));
    assert!(has(
        Exporter::PrometheusOperator,
        "0.85.0",
        "prometheus_operator_workqueue_depth"
    ));
    assert_eq!(
        label_set_at(
            Exporter::PrometheusOperator,
            "0.75",
            "prometheus_operator_syncs"
        ),
        set(&["controller", "status"])
    );
    for name in ["reloader_reloads_total", "reloader_last_reload_successful"] {
        assert!(has(Exporter::PrometheusOperator, "0.75", name), "{name}");
    }

    // actions-runner-controller: 0.12 made the listener's labels
    // configurable and dropped `job_workflow_ref` from the defaults.
    assert!(!has(
        Exporter::ActionsRunnerController,
        "0.4.0",
        "gha_busy_runners"
    ));
    assert_eq!(
        label_set_at(
            Exporter::ActionsRunnerController,
            "0.12",
            "gha_busy_runners"
        ),
        set(&[
            "name",
            "namespace",
            "repository",
            "organization",
            "enterprise"
        ])
    );
    assert!(label_set_at(
        Exporter::ActionsRunnerController,
        "0.9",
        "gha_completed_jobs_total"
    )
    .contains("job_workflow_ref"));
    assert!(!label_set_at(
        Exporter::ActionsRunnerController,
        "0.12",
        "gha_completed_jobs_total"
    )
    .contains("job_workflow_ref"));
    assert!(has(
        Exporter::ActionsRunnerController,
        "0.14",
        "gha_controller_running_ephemeral_runners"
    ));

    // buildkite-agent-metrics 5.9.0 added the cluster label; 5.0.0 the
    // waiting-jobs and busy-percentage gauges.
    assert_eq!(
        label_set_at(
            Exporter::BuildkiteAgentMetrics,
            "5.8",
            "buildkite_queues_scheduled_jobs_count"
        ),
        set(&["queue"])
    );
    assert_eq!(
        label_set_at(
            Exporter::BuildkiteAgentMetrics,
            "5.9.0",
            "buildkite_queues_scheduled_jobs_count"
        ),
        set(&["queue", "cluster"])
    );
    assert!(!has(
        Exporter::BuildkiteAgentMetrics,
        "4.1",
        "buildkite_total_waiting_jobs_count"
    ));
    assert!(has(
        Exporter::BuildkiteAgentMetrics,
        "5.0.0",
        "buildkite_total_waiting_jobs_count"
    ));
}
