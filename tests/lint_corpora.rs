//! `poolc lint` over corpora written the way public monitoring repos are:
//! kube-prometheus-style node, kube-state-metrics, kubelet and API server
//! rules; an HAProxy mixin; Helm-rendered PrometheusRules (nulls, a `List`,
//! several documents, `keep_firing_for`, `limit`, per-group `interval` and
//! `query_offset`); KEDA, Karpenter (schema v1 and v2) and
//! actions-runner-controller dashboards in sidecar ConfigMaps. They lint
//! with no error; the same files with real bugs planted in them are caught,
//! each finding naming its rule or panel.

mod common;

use std::path::Path;

use common::{documents, poolc, scratch, stdout, tool};

const CORPORA: &str = "tests/lint/corpora";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn the_corpora_lint_without_errors() {
    let out = poolc(
        root(),
        &[
            "lint",
            "--catalog",
            &format!("{CORPORA}/catalog.yaml"),
            CORPORA,
        ],
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("\n0 errors, "), "{text}");
    // What remains are warnings a reviewer would agree with: alerts
    // without severity or summary (Helm wrote `labels: null`), a template
    // label only some alerts carry, a raw counter compared with 0.
    insta::assert_snapshot!(text);

    // No dashboard is passed over: demanding an external label no query
    // writes reports a panel of each one.
    let dir = scratch("corpora-read");
    copy_dir(&root().join(CORPORA), &dir);
    let catalog = std::fs::read_to_string(dir.join("catalog.yaml")).unwrap();
    std::fs::write(
        dir.join("catalog.yaml"),
        catalog.replace(
            "external_labels: [cluster]",
            "external_labels: [cluster, region]",
        ),
    )
    .unwrap();
    let out = poolc(
        &dir,
        &["lint", "--catalog", "catalog.yaml", "--format", "json", "."],
    );
    let findings: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let panels: std::collections::BTreeSet<String> = findings
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["code"] == "P009")
        .map(|d| d["subject"]["dashboard"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        panels.into_iter().collect::<Vec<_>>(),
        [
            "ARC runner scale sets",
            "KEDA",
            "Karpenter NodePools",
            "Karpenter capacity"
        ],
        "{findings:#}"
    );
}

/// A real bug planted in one corpus file: the text replaced, and the
/// finding it must produce (code, and a text the finding contains).
struct Planted {
    file: &'static str,
    from: &'static str,
    to: &'static str,
    code: &'static str,
    names: &'static str,
}

const PLANTED: &[Planted] = &[
    // A summary has no buckets: the quantile panel shows nothing.
    Planted {
        file: "dashboards/karpenter-capacity.json",
        from: "karpenter_nodeclaims_termination_duration_seconds_bucket",
        to: "karpenter_nodes_termination_duration_seconds_bucket",
        code: "P002",
        names: "panel `Terminations` (id 5) of dashboard `Karpenter capacity`",
    },
    // A multi-value variable matched with `=` outside a repeat.
    Planted {
        file: "dashboards/arc-configmap.yaml",
        from: r#"gha_desired_runners{cluster=\"$cluster\", namespace=\"$namespace\", name=~\"$scaleset\"}"#,
        to: r#"gha_desired_runners{cluster=\"$cluster\", namespace=\"$namespace\", name=\"$scaleset\"}"#,
        code: "P009",
        names: "panel `Desired against registered runners` (id 2) of dashboard `ARC runner scale sets`",
    },
    Planted {
        file: "dashboards/karpenter-v2-configmap.yaml",
        from: r#"karpenter_nodepools_allowed_disruptions{cluster=\"$cluster\", nodepool=~\"$nodepool\"}"#,
        to: r#"karpenter_nodepools_allowed_disruptions{cluster=\"$cluster\", nodepool=\"$nodepool\"}"#,
        code: "P009",
        names: "panel `Disruption budgets in use` (id 2) of dashboard `Karpenter NodePools`",
    },
    // KEDA scraped without honorLabels: grouping by `namespace` groups by
    // the operator's namespace.
    Planted {
        file: "helm/rendered.yaml",
        from: "sum by (exported_namespace, scaledObject) (increase(keda_scaled_object_errors_total[15m])) > 3",
        to: "sum by (namespace, scaledObject) (increase(keda_scaled_object_errors_total[15m])) > 3",
        code: "P012",
        names: "alert `KedaScaledObjectErrors` in group `keda`",
    },
    // ...and the template's `exported_namespace` is gone with it.
    Planted {
        file: "helm/rendered.yaml",
        from: "",
        to: "",
        code: "P005",
        names: "alert `KedaScaledObjectErrors` in group `keda`",
    },
    // A syntax error in a rule of a `List` item names its alert.
    Planted {
        file: "helm/rendered.yaml",
        from: "karpenter_nodepools_limit{resource_type=\"cpu\"} > 0.9",
        to: "karpenter_nodepools_limit{resource_type=\"cpu\"}) > 0.9",
        code: "P001",
        names: "alert `KarpenterNodePoolNearLimit` in group `karpenter`",
    },
    // HAProxy's states are upper case.
    Planted {
        file: "haproxy/haproxy-mixin.yaml",
        from: "haproxy_backend_status{state=\"UP\"} == 0",
        to: "haproxy_backend_status{state=\"up\"} == 0",
        code: "P004",
        names: "alert `HAProxyBackendDown` in group `haproxy.alerts`",
    },
    // A join on a label one side never has.
    Planted {
        file: "kube-prometheus/kube-state-metrics.yaml",
        from: "              ==\n            kube_horizontalpodautoscaler_spec_max_replicas",
        to: "              == on (namespace, horizontalpodautoscaler)\n            kube_deployment_spec_replicas",
        code: "P013",
        names: "alert `KubeHpaMaxedOut` in group `kubernetes-apps`",
    },
    // A misspelled kube-state-metrics name in a recording rule.
    Planted {
        file: "kube-prometheus/node-exporter.yaml",
        from: "label_replace(kube_pod_info{job=\"kube-state-metrics\",node!=\"\"}",
        to: "label_replace(kube_pods_info{job=\"kube-state-metrics\",node!=\"\"}",
        code: "P002",
        names: "record `node_namespace_pod:kube_pod_info:` in group `node.rules`",
    },
];

#[test]
fn bugs_planted_in_the_corpora_are_caught() {
    let dir = scratch("corpora-planted");
    copy_dir(&root().join(CORPORA), &dir);
    for p in PLANTED.iter().filter(|p| !p.from.is_empty()) {
        let path = dir.join(p.file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches(p.from).count(), 1, "{}: {}", p.file, p.from);
        std::fs::write(&path, text.replace(p.from, p.to)).unwrap();
    }
    let out = poolc(&dir, &["lint", "--catalog", "catalog.yaml", "."]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let findings: Vec<&str> = text.split("\n\n").collect();
    for p in PLANTED {
        assert!(
            findings.iter().any(|f| f.contains(&format!("/{}:", p.file))
                && f.contains(&format!(": {} error:", p.code))
                && f.contains(p.names)),
            "{} {} not caught in {}:\n{text}",
            p.code,
            p.names,
            p.file
        );
    }
    // Nothing else: the planted bugs are the only errors.
    assert!(
        text.contains(&format!("\n{} errors, ", PLANTED.len())),
        "{text}"
    );
    insta::assert_snapshot!(text);
}

/// The rule groups of a YAML document: a rule file's, a PrometheusRule's,
/// or those of a `List`'s items.
fn groups(doc: &serde_json::Value, out: &mut Vec<serde_json::Value>) {
    for item in doc["items"].as_array().into_iter().flatten() {
        groups(item, out);
    }
    let own = doc["groups"]
        .as_array()
        .or_else(|| doc["spec"]["groups"].as_array());
    out.extend(own.into_iter().flatten().cloned());
}

#[test]
fn promtool_accepts_every_rule_group_of_the_corpora() {
    let Some(promtool) = tool("promtool", "apt-get install -y prometheus") else {
        return;
    };
    let dir = scratch("corpora-promtool");
    let mut files = Vec::new();
    let mut stack = vec![root().join(CORPORA)];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml")
                && path.file_name().is_some_and(|n| n != "catalog.yaml")
            {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut checked = Vec::new();
    for (n, file) in files.iter().enumerate() {
        let mut found = Vec::new();
        for doc in documents(&std::fs::read_to_string(file).unwrap()) {
            groups(&doc, &mut found);
        }
        if found.is_empty() {
            continue;
        }
        // The installed promtool (2.42) predates `query_offset` (2.53);
        // everything else, nulls included, it reads as written.
        for g in &mut found {
            if let Some(g) = g.as_object_mut() {
                g.remove("query_offset");
            }
        }
        let out = dir.join(format!("{n}.json"));
        std::fs::write(&out, serde_json::json!({"groups": found}).to_string()).unwrap();
        checked.push(out);
    }
    assert!(checked.len() >= 5, "{checked:?}");
    let run = std::process::Command::new(promtool)
        .arg("check")
        .arg("rules")
        .args(&checked)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
}
