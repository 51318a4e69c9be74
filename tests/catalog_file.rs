//! The `--catalog` file format end to end: exporter versions declared in
//! part, open label sets (`"*"`, `prefix_*`), closed value sets, and
//! histograms declared once under their family name.

mod common;

use std::fs;
use std::path::Path;

use common::{poolc, scratch, stderr, stdout};

const CATALOG: &str = r#"exporters:
  keda: "2.12"
metrics:
  - {name: kube_pod_labels, type: gauge, labels: [namespace, pod, "label_*"]}
  - {name: ci_alerts, type: gauge, labels: ["*"]}
  - {name: ci_pod_phase, type: gauge, labels: [pod, phase], values: {phase: [Pending, Running, Failed]}}
  - {name: ci_build_duration_seconds, type: histogram, labels: [queue]}
"#;

fn alert(expr: &str) -> String {
    format!(
        "groups:\n  - name: t\n    rules:\n      - alert: T\n        expr: {expr}\n        for: 10m\n        labels: {{severity: warning}}\n        annotations: {{summary: \"t\"}}\n"
    )
}

/// Lints one alert over `expr` with `CATALOG`; the exit code and the report.
fn lint(dir: &Path, expr: &str) -> (Option<i32>, String) {
    fs::write(dir.join("catalog.yaml"), CATALOG).unwrap();
    fs::write(dir.join("rules.yaml"), alert(expr)).unwrap();
    let out = poolc(dir, &["lint", "--catalog", "catalog.yaml", "rules.yaml"]);
    (
        out.status.code(),
        format!("{}{}", stdout(&out), stderr(&out)),
    )
}

#[test]
fn open_label_sets_admit_their_labels_and_nothing_else() {
    let dir = scratch("catalog-file-labels");
    for clean in [
        r#"kube_pod_labels{namespace="ci", label_team="builds"} == 1"#,
        r#"count by (label_app_kubernetes_io_name) (kube_pod_labels) > 100"#,
        r#"ci_alerts{alertname="Anything", whatever="x"} == 1"#,
    ] {
        let (code, out) = lint(&dir, clean);
        assert_eq!(code, Some(0), "{clean}\n{out}");
    }
    let (code, out) = lint(&dir, r#"kube_pod_labels{annotation_team="builds"} == 1"#);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("P004") && out.contains("`annotation_team`"),
        "{out}"
    );
}

#[test]
fn closed_value_sets_reject_other_values() {
    let dir = scratch("catalog-file-values");
    let (code, out) = lint(&dir, r#"ci_pod_phase{phase="Running"} == 1"#);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = lint(&dir, r#"ci_pod_phase{phase="Runing"} == 1"#);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("P004") && out.contains("did you mean `Running`"),
        "{out}"
    );
    // A label without `values` takes any value.
    let (code, out) = lint(&dir, r#"ci_pod_phase{pod="anything-at-all"} == 1"#);
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn histograms_expand_like_the_built_in_tables() {
    let dir = scratch("catalog-file-histogram");
    let (code, out) = lint(
        &dir,
        r#"histogram_quantile(0.9, sum by (le, queue) (rate(ci_build_duration_seconds_bucket{queue="default"}[5m]))) > 600"#,
    );
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = lint(
        &dir,
        r#"rate(ci_build_duration_seconds_sum[5m]) / rate(ci_build_duration_seconds_count[5m]) > 600"#,
    );
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = lint(&dir, "ci_build_duration_seconds > 600");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("P002"), "{out}");
}

#[test]
fn undeclared_exporters_take_their_newest_version() {
    let dir = scratch("catalog-file-versions");
    // KEDA as declared: 2.12 still labels by scalerIndex.
    let (code, out) = lint(
        &dir,
        r#"sum by (scaledObject) (increase(keda_scaler_errors{scalerIndex="0"}[15m])) > 3"#,
    );
    assert_eq!(code, Some(0), "{out}");
    // HAProxy undeclared: the newest known version, which has per-server HTTP counters.
    let (code, out) = lint(
        &dir,
        r#"sum by (proxy) (rate(haproxy_server_http_requests_total[5m])) > 100"#,
    );
    assert_eq!(code, Some(0), "{out}");
    fs::write(
        dir.join("bad.yaml"),
        "exporters:\n  keda: \"2.12\"\n  hapoxy: \"3.1\"\n",
    )
    .unwrap();
    let out = poolc(&dir, &["lint", "--catalog", "bad.yaml", "rules.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("bad.yaml") && stderr(&out).contains("unknown exporter `hapoxy`"),
        "{}",
        stderr(&out)
    );
}
