//! The generated alerts against real promtool, fed the series a cluster
//! stores. Each input series here is an exporter's sample as the exporter
//! exposes it (KEDA's, HAProxy's, kube-state-metrics'), passed through the
//! scrape that the generated ServiceMonitors describe, the way
//! prometheus-operator renders them (`poolc::render::scrape`). Nothing here
//! reads the rules to decide what to feed them.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use common::{documents, poolc, repo_fileset, scratch, stderr, tool};
use poolc::render::scrape::{Endpoints, Target};
use serde_json::{json, Value};

fn promtool() -> Option<std::path::PathBuf> {
    tool("promtool", "apt-get install -y prometheus")
}

/// The ServiceMonitor of `exporter` in a generated servicemonitors.yaml.
fn monitor(text: &str, exporter: &str) -> Value {
    documents(text)
        .into_iter()
        .find(|d| d["metadata"]["labels"]["poolc.dev/exporter"] == exporter)
        .unwrap_or_else(|| panic!("no {exporter} ServiceMonitor"))
}

/// The KEDA operator as the KEDA chart deploys it, scraped through the
/// generated ServiceMonitor.
fn keda_target(monitors: &str) -> Target {
    let pod = Endpoints {
        service: "keda-operator",
        pod: "keda-operator-5b6f8d7c9-zx8qp",
        container: "keda-operator",
        address: "10.42.0.17:8080",
    };
    Target::from_monitor(&monitor(monitors, "keda"), "keda", &pod)
        .pop()
        .unwrap()
}

/// The LB's metrics Service and pod, scraped through the generated ServiceMonitor.
fn lb_target(monitors: &str) -> Target {
    let pod = Endpoints {
        service: "buildkitd-lb-metrics",
        pod: "buildkitd-lb-66d9c7f5b8-9tq2w",
        container: "haproxy",
        address: "10.42.1.5:9404",
    };
    Target::from_monitor(&monitor(monitors, "haproxy"), "buildkit", &pod)
        .pop()
        .unwrap()
}

/// kube-state-metrics as kube-prometheus-stack scrapes it: honorLabels true.
fn ksm_target() -> Target {
    let pod = Endpoints {
        service: "kube-prometheus-stack-kube-state-metrics",
        pod: "kube-prometheus-stack-kube-state-metrics-6c9d4b5f7-k2l9m",
        container: "kube-state-metrics",
        address: "10.42.2.9:8080",
    };
    Target::assumed("monitoring", "http", &pod, true)
}

fn series(target: &Target, name: &str, exposed: &[(&str, &str)]) -> String {
    target
        .series(name, exposed)
        .unwrap_or_else(|| panic!("{name} is dropped by its scrape"))
}

/// Runs `promtool test rules` over `rules` with one test group per case.
fn promtool_test(rules: &str, tests: Vec<Value>) -> (bool, String) {
    let Some(promtool) = promtool() else {
        return (true, "SKIPPED".to_string());
    };
    let dir = scratch("alerts-promtool");
    fs::write(dir.join("rules.yaml"), rules).unwrap();
    let file = json!({
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": tests,
    });
    fs::write(dir.join("test.yaml"), serde_json::to_string(&file).unwrap()).unwrap();
    let out = Command::new(promtool)
        .args(["test", "rules", "test.yaml"])
        .current_dir(&dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// A test group asserting which alerts of `alertname` fire at `eval`: the
/// firing alerts' label sets must include `labels` (checked on ALERTS).
fn case(
    input: Vec<(String, String)>,
    interval: &str,
    eval: &str,
    alertname: &str,
    fires: bool,
    labels: &[(&str, &str)],
) -> Value {
    let input: Vec<Value> = input
        .into_iter()
        .map(|(s, v)| json!({"series": s, "values": v}))
        .collect();
    let mut matchers = vec![
        format!(r#"alertname="{alertname}""#),
        r#"alertstate="firing""#.to_string(),
    ];
    matchers.extend(labels.iter().map(|(k, v)| format!(r#"{k}="{v}""#)));
    let expr = format!("count(ALERTS{{{}}}) or vector(0)", matchers.join(", "));
    json!({
        "interval": interval,
        "input_series": input,
        "promql_expr_test": [{
            "expr": expr,
            "eval_time": eval,
            "exp_samples": [{"labels": "{}", "value": if fires { 1 } else { 0 }}],
        }],
    })
}

fn staging() -> (String, String) {
    let set = repo_fileset();
    (
        set.get("staging/prometheus/rules.yaml")
            .unwrap()
            .to_string(),
        set.get("staging/servicemonitors.yaml").unwrap().to_string(),
    )
}

fn scaler_errors(keda: &Target, scaled_object: &str) -> String {
    series(
        keda,
        "keda_scaler_detail_errors_total",
        &[
            ("namespace", "buildkit"),
            ("metric", "s0-metric-api-haproxy_backend_current_sessions"),
            ("scaledObject", scaled_object),
            ("scaler", "metricsAPIScaler"),
            ("triggerIndex", "0"),
            ("type", "scaledobject"),
        ],
    )
}

fn object_errors(keda: &Target, scaled_object: &str) -> String {
    series(
        keda,
        "keda_scaled_object_errors_total",
        &[("namespace", "buildkit"), ("scaledObject", scaled_object)],
    )
}

// 1. KEDA's labels survive the scrape.

#[test]
fn the_keda_error_alert_fires_on_what_the_keda_scrape_stores() {
    let (rules, monitors) = staging();
    let keda = keda_target(&monitors);
    let input = vec![
        (
            scaler_errors(&keda, "buildkitd-amd64"),
            "0+2x30".to_string(),
        ),
        (
            object_errors(&keda, "buildkitd-amd64"),
            "0+4x30".to_string(),
        ),
    ];
    let (ok, out) = promtool_test(
        &rules,
        vec![case(
            input,
            "1m",
            "20m",
            "PoolScalerErrors",
            true,
            &[("pool", "amd64")],
        )],
    );
    assert!(ok, "{out}");
}

#[test]
fn without_honor_labels_the_keda_series_lose_their_namespace() {
    let (rules, monitors) = staging();
    assert!(monitor(&monitors, "keda")["spec"]["endpoints"][0]["honorLabels"] == true);
    let mutant = monitors.replace("    honorLabels: true\n", "");
    assert_ne!(mutant, monitors);
    let keda = keda_target(&mutant);
    let stored = scaler_errors(&keda, "buildkitd-amd64");
    assert!(
        stored.contains(r#"exported_namespace="buildkit""#),
        "{stored}"
    );
    assert!(stored.contains(r#", namespace="keda""#), "{stored}");
    let input = vec![(stored, "0+2x30".to_string())];
    let (ok, out) = promtool_test(
        &rules,
        vec![case(input, "1m", "20m", "PoolScalerErrors", true, &[])],
    );
    assert!(!ok || out == "SKIPPED", "fired without honorLabels:\n{out}");
}

#[test]
fn a_spec_that_scrapes_keda_without_honor_labels_gets_rules_that_match() {
    let dir = common::with_repo_specs("keda-no-honor");
    let spec = dir.join("specs/staging.yaml");
    let text = fs::read_to_string(&spec).unwrap().replace(
        "  monitoring:\n    labels:\n",
        "  monitoring:\n    scrape:\n      keda:\n        honor_labels: false\n    labels:\n",
    );
    fs::write(&spec, text).unwrap();
    let set = poolc::pipeline::compile(&dir.join("specs")).unwrap_or_else(|e| panic!("{e}"));
    let monitors = set.get("staging/servicemonitors.yaml").unwrap();
    assert!(!monitors.contains("honorLabels"), "{monitors}");
    let keda = keda_target(monitors);
    let input = vec![(
        scaler_errors(&keda, "buildkitd-amd64"),
        "0+2x30".to_string(),
    )];
    let (ok, out) = promtool_test(
        set.get("staging/prometheus/rules.yaml").unwrap(),
        vec![case(input, "1m", "20m", "PoolScalerErrors", true, &[])],
    );
    assert!(ok, "{out}");
}

// 2. The warm deficit with the clamp.

/// Sessions, queue, desired, min and available of staging's `pool`.
fn pool_series(lb: &Target, pool: &str, values: [&str; 5]) -> Vec<(String, String)> {
    let ksm = ksm_target();
    let hpa = format!("keda-hpa-buildkitd-{pool}");
    let backend = format!("bk_{pool}");
    let deployment = format!("buildkitd-{pool}");
    let hpa_labels = [
        ("namespace", "buildkit"),
        ("horizontalpodautoscaler", hpa.as_str()),
    ];
    vec![
        (
            series(
                lb,
                "haproxy_backend_current_sessions",
                &[("proxy", &backend)],
            ),
            values[0].to_string(),
        ),
        (
            series(lb, "haproxy_backend_current_queue", &[("proxy", &backend)]),
            values[1].to_string(),
        ),
        (
            series(
                &ksm,
                "kube_horizontalpodautoscaler_status_desired_replicas",
                &hpa_labels,
            ),
            values[2].to_string(),
        ),
        (
            series(
                &ksm,
                "kube_horizontalpodautoscaler_spec_min_replicas",
                &hpa_labels,
            ),
            values[3].to_string(),
        ),
        (
            series(
                &ksm,
                "kube_deployment_status_replicas_available",
                &[
                    ("namespace", "buildkit"),
                    ("deployment", deployment.as_str()),
                ],
            ),
            values[4].to_string(),
        ),
    ]
}

#[test]
fn busy_pods_with_queued_builds_and_pending_pods_are_no_warm_deficit() {
    let (rules, monitors) = staging();
    let lb = lb_target(&monitors);
    // arm64 (min 4): 4 pods all busy, 2 builds queued (6 sessions), the
    // autoscaler wants 6, 2 pods Pending so 4 available.
    let input = pool_series(&lb, "arm64", ["6x40", "2x40", "6x40", "4x40", "4x40"]);
    let deficit = json!({
        "interval": "1m",
        "input_series": input.iter().map(|(s, v)| json!({"series": s, "values": v})).collect::<Vec<_>>(),
        "promql_expr_test": [{
            "expr": r#"poolc:pool_warm_deficit:replicas{pool="arm64"}"#,
            "eval_time": "10m",
            "exp_samples": [{"labels": r#"poolc:pool_warm_deficit:replicas{namespace="buildkit", pool="arm64"}"#, "value": 0}],
        }],
    });
    let quiet = case(input.clone(), "1m", "30m", "PoolWarmDeficit", false, &[]);
    let (ok, out) = promtool_test(&rules, vec![deficit, quiet]);
    assert!(ok, "{out}");

    // A floor pod missing for good, no load: fires.
    let lost = pool_series(&lb, "arm64", ["0x40", "0x40", "4x40", "4x40", "3x40"]);
    let (ok, out) = promtool_test(
        &rules,
        vec![case(
            lost,
            "1m",
            "30m",
            "PoolWarmDeficit",
            true,
            &[("pool", "arm64")],
        )],
    );
    assert!(ok, "{out}");
}

/// The seed's bursts on staging amd64 (min 2, max 8): batches of 2 builds
/// at minutes 0, 3, 10 and 14, each build 20 minutes once it has a pod,
/// pods ready 8 minutes after the autoscaler asks, desired held by a
/// 20-minute stabilization window. Written out minute by minute.
fn seed_bursts() -> [Vec<u32>; 4] {
    let (min, max, start, build) = (2u32, 8u32, 8usize, 20u32);
    let (mut queued, mut running) = (0u32, Vec::<u32>::new());
    let (mut wanted, mut out) = (Vec::<u32>::new(), <[Vec<u32>; 4]>::default());
    for t in 0..50u32 {
        if matches!(t, 0 | 3 | 10 | 14) {
            queued += 2;
        }
        running.retain(|&end| end > t);
        let ready = if (t as usize) >= start {
            out[2][t as usize - start]
        } else {
            min
        };
        while (running.len() as u32) < ready && queued > 0 {
            running.push(t + build);
            queued -= 1;
        }
        let sessions = running.len() as u32 + queued;
        wanted.push(sessions.clamp(min, max));
        let desired = *wanted[wanted.len().saturating_sub(20)..]
            .iter()
            .max()
            .unwrap();
        for (i, v) in [sessions, queued, desired, ready].into_iter().enumerate() {
            out[i].push(v);
        }
    }
    out
}

#[test]
fn the_seed_bursts_never_fire_the_warm_deficit() {
    let (rules, monitors) = staging();
    let lb = lb_target(&monitors);
    let [sessions, queue, desired, ready] = seed_bursts();
    let join = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(" ");
    let input = pool_series(
        &lb,
        "amd64",
        [
            &join(&sessions),
            &join(&queue),
            &join(&desired),
            "2x50",
            &join(&ready),
        ],
    );
    let cases = (10..=45)
        .map(|m| {
            case(
                input.clone(),
                "1m",
                &format!("{m}m"),
                "PoolWarmDeficit",
                false,
                &[],
            )
        })
        .collect();
    let (ok, out) = promtool_test(&rules, cases);
    assert!(ok, "{out}");
}

// 3. Demand and busy.

#[test]
fn sessions_are_recorded_as_demand_and_busy_is_sessions_minus_queue() {
    let (rules, monitors) = staging();
    let lb = lb_target(&monitors);
    // Measured on HAProxy: 4 running + 3 queued read 7 sessions.
    let input = [
        (
            series(
                &lb,
                "haproxy_backend_current_sessions",
                &[("proxy", "bk_amd64")],
            ),
            "7x10".to_string(),
        ),
        (
            series(
                &lb,
                "haproxy_backend_current_queue",
                &[("proxy", "bk_amd64")],
            ),
            "3x10".to_string(),
        ),
    ];
    let expect = |record: &str, value: u32| {
        json!({
            "expr": format!(r#"{record}{{pool="amd64"}}"#),
            "eval_time": "5m",
            "exp_samples": [{"labels": format!(r#"{record}{{namespace="buildkit", pool="amd64"}}"#), "value": value}],
        })
    };
    let test = json!({
        "interval": "1m",
        "input_series": input.iter().map(|(s, v)| json!({"series": s, "values": v})).collect::<Vec<_>>(),
        "promql_expr_test": [expect("poolc:pool_demand:sessions", 7), expect("poolc:pool_busy:sessions", 4)],
    });
    let (ok, out) = promtool_test(&rules, vec![test]);
    assert!(ok, "{out}");

    // The dashboard shows each under its own name.
    let set = repo_fileset();
    let dashboard: Value =
        serde_json::from_str(set.get("staging/dashboards/pools.json").unwrap()).unwrap();
    let panel = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["title"] == "Demand and busy workers")
        .expect("a demand and busy panel");
    let targets: Vec<(&str, &str)> = panel["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["legendFormat"].as_str().unwrap(),
                t["expr"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        targets
            .iter()
            .any(|(l, e)| l.starts_with("demand") && e.contains("poolc:pool_demand:sessions")),
        "{targets:?}"
    );
    assert!(
        targets
            .iter()
            .any(|(l, e)| l.starts_with("busy") && e.contains("poolc:pool_busy:sessions")),
        "{targets:?}"
    );
}

// 4. Central evaluation.

fn central_staging() -> poolc::fileset::FileSet {
    let dir = common::with_repo_specs("central");
    let spec = dir.join("specs/staging.yaml");
    let text = fs::read_to_string(&spec).unwrap().replace(
        "  monitoring:\n    labels:\n",
        "  monitoring:\n    rule_evaluation: central\n    labels:\n",
    );
    fs::write(&spec, text).unwrap();
    poolc::pipeline::compile(&dir.join("specs")).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn central_rules_select_and_keep_this_clusters_external_labels() {
    let set = central_staging();
    let rules: Value =
        serde_saphyr::from_str(set.get("staging/prometheus/rules.yaml").unwrap()).unwrap();
    let mut checked = 0;
    for group in rules["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let text = rule["expr"].as_str().unwrap();
            let expr = poolc::promql::parse(text).unwrap();
            for vs in poolc::promql::selectors(&expr) {
                if vs.name.as_deref().is_some_and(|n| n.starts_with("poolc:"))
                    && !vs.matchers.matchers.iter().any(|m| m.name == "pool")
                {
                    // A recorded series read whole inside a recording rule;
                    // its own rule keeps the labels.
                    continue;
                }
                let labels: BTreeMap<&str, &str> = poolc::promql::label_matchers(vs)
                    .map(|m| (m.name.as_str(), m.value.as_str()))
                    .collect();
                assert_eq!(labels.get("cluster"), Some(&"staging"), "{text}");
                assert_eq!(labels.get("env"), Some(&"staging"), "{text}");
                checked += 1;
            }
            for by in text.match_indices("by (") {
                let list = &text[by.0 + 4..];
                let list = &list[..list.find(')').unwrap()];
                assert!(list.contains("cluster") && list.contains("env"), "{text}");
            }
        }
    }
    assert!(checked > 20, "{checked} selectors");
}

#[test]
fn central_pending_jobs_does_not_add_other_clusters_work() {
    let set = central_staging();
    let rules = set.get("staging/prometheus/rules.yaml").unwrap();
    // The CI system's exporter, scraped once, remote-written by each cluster.
    let pending = |cluster: &str, env: &str| {
        format!(
            r#"buildkite_queues_scheduled_jobs_count{{cluster="{cluster}", env="{env}", job="buildkite-agent-metrics", instance="10.42.3.3:8080", namespace="buildkite", queue="default"}}"#
        )
    };
    let quiet = case(
        vec![
            (pending("staging", "staging"), "10x40".to_string()),
            (pending("production", "prod"), "15x40".to_string()),
        ],
        "1m",
        "30m",
        "PoolPendingJobs",
        false,
        &[],
    );
    let fires = case(
        vec![
            (pending("staging", "staging"), "25x40".to_string()),
            (pending("production", "prod"), "0x40".to_string()),
        ],
        "1m",
        "30m",
        "PoolPendingJobs",
        true,
        &[("cluster", "staging"), ("env", "staging")],
    );
    let (ok, out) = promtool_test(rules, vec![quiet, fires]);
    assert!(ok, "{out}");
}

#[test]
fn central_evaluation_needs_every_external_label_value() {
    let dir = common::with_repo_specs("central-unknown-label");
    let spec = dir.join("specs/staging.yaml");
    let text = fs::read_to_string(&spec).unwrap().replace(
        "  monitoring:\n    labels:\n",
        "  monitoring:\n    rule_evaluation: central\n    external_labels: [cluster, env, region]\n    labels:\n",
    );
    fs::write(&spec, text).unwrap();
    let out = poolc(&dir, &["generate"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("external_label_values.region"),
        "{}",
        stderr(&out)
    );
}

// 5. The LB's own target.

#[test]
fn the_lb_down_alert_fires_when_its_target_is_down_or_gone() {
    let (rules, monitors) = staging();
    let lb = lb_target(&monitors);
    let keda = keda_target(&monitors);
    let up = lb.synthetic("up");
    let cases = vec![
        case(
            vec![(up.clone(), "1x30".to_string())],
            "1m",
            "20m",
            "PoolLoadBalancerDown",
            false,
            &[],
        ),
        case(
            vec![(up.clone(), "1x5 0 1x30".to_string())],
            "1m",
            "20m",
            "PoolLoadBalancerDown",
            false,
            &[],
        ),
        case(
            vec![(up, "1 0x30".to_string())],
            "1m",
            "20m",
            "PoolLoadBalancerDown",
            true,
            &[("job", "buildkitd-lb-metrics")],
        ),
        case(
            vec![(keda.synthetic("up"), "1x30".to_string())],
            "1m",
            "20m",
            "PoolLoadBalancerDown",
            true,
            &[("namespace", "buildkit")],
        ),
    ];
    let (ok, out) = promtool_test(&rules, cases);
    assert!(ok, "{out}");
}

// 6. KEDA version hazards.

#[test]
fn keda_before_2_17_with_a_fallback_below_max_is_flagged_with_the_fix() {
    let dir = common::with_repo_specs("keda-fallback");
    let out = poolc(&dir, &["generate"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("specs/production.yaml:") && err.contains("warning"),
        "{err}"
    );
    assert!(
        err.contains("fallback.replicas (32)") && err.contains("upgrade KEDA to 2.17+"),
        "{err}"
    );
    assert!(err.contains("fallback.replicas to max (360)"), "{err}");

    // Upgraded: no warning.
    let spec = dir.join("specs/production.yaml");
    let text = fs::read_to_string(&spec)
        .unwrap()
        .replace(r#"keda: "2.16""#, r#"keda: "2.17""#);
    fs::write(&spec, text).unwrap();
    let out = poolc(&dir, &["generate"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("fallback.replicas"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn one_failing_scaler_pages_once() {
    let (rules, monitors) = staging();
    let keda = keda_target(&monitors);
    // KEDA records each scaler error on both counters (and the polling loop
    // once more on the ScaledObject's).
    let input = vec![
        (
            scaler_errors(&keda, "buildkitd-amd64"),
            "0+1x30".to_string(),
        ),
        (
            object_errors(&keda, "buildkitd-amd64"),
            "0+2x30".to_string(),
        ),
    ];
    let cases = vec![
        case(input.clone(), "1m", "20m", "PoolScalerErrors", true, &[]),
        case(input, "1m", "20m", "PoolScaledObjectErrors", false, &[]),
        // A reconcile error with a healthy scaler still pages.
        case(
            vec![
                (scaler_errors(&keda, "buildkitd-amd64"), "0x30".to_string()),
                (
                    object_errors(&keda, "buildkitd-amd64"),
                    "0+1x30".to_string(),
                ),
            ],
            "1m",
            "20m",
            "PoolScaledObjectErrors",
            true,
            &[],
        ),
    ];
    let (ok, out) = promtool_test(&rules, cases);
    assert!(ok, "{out}");
}

/// KEDA 2.19+ with a fallback: the counter goes up by failureThreshold (3)
/// and stops. Scraped every 60s, once on the evaluation grid and once 30s
/// off it (`_` is a missing sample at the 30s input resolution).
#[test]
fn a_counter_that_stops_at_the_threshold_fires_whatever_the_scrape_phase() {
    let (rules, monitors) = staging();
    let keda = keda_target(&monitors);
    let samples = |values: &[u32], off_grid: bool| -> String {
        let mut out = Vec::new();
        for v in values {
            if off_grid {
                out.push("_".to_string());
                out.push(v.to_string());
            } else {
                out.push(v.to_string());
                out.push("_".to_string());
            }
        }
        out.join(" ")
    };
    let mut stops_at_3 = vec![0u32; 5];
    stops_at_3.extend([1, 2, 3]);
    stops_at_3.extend([3; 30]);
    let mut stops_at_2 = vec![0u32; 5];
    stops_at_2.extend([1, 2]);
    stops_at_2.extend([2; 30]);
    let mut cases = Vec::new();
    for off_grid in [false, true] {
        for eval in ["10m", "15m", "18m"] {
            cases.push(case(
                vec![(
                    scaler_errors(&keda, "buildkitd-amd64"),
                    samples(&stops_at_3, off_grid),
                )],
                "30s",
                eval,
                "PoolScalerErrors",
                true,
                &[],
            ));
            cases.push(case(
                vec![(
                    scaler_errors(&keda, "buildkitd-amd64"),
                    samples(&stops_at_2, off_grid),
                )],
                "30s",
                eval,
                "PoolScalerErrors",
                false,
                &[],
            ));
        }
    }
    let (ok, out) = promtool_test(&rules, cases);
    assert!(ok, "{out}");
}

// 7. Defaults that follow the pool.

#[test]
fn the_queue_threshold_follows_a_small_pool_and_stays_20_on_a_large_one() {
    let set = repo_fileset();
    let threshold = |cluster: &str, pool: &str| -> u32 {
        let rules: Value = serde_saphyr::from_str(
            set.get(&format!("{cluster}/prometheus/rules.yaml"))
                .unwrap(),
        )
        .unwrap();
        let rule = rules["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_array().unwrap())
            .find(|r| r["alert"] == "PoolQueueBacklog" && r["labels"]["pool"] == pool)
            .unwrap();
        rule["expr"]
            .as_str()
            .unwrap()
            .rsplit("> ")
            .next()
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    // production amd64 runs 360 builds at once: the reference's 20.
    assert_eq!(threshold("production", "amd64"), 20);
    assert_eq!(threshold("production", "arm64"), 20);
    // staging runs 8: a queue of a whole pool's worth is the backlog.
    assert_eq!(threshold("staging", "amd64"), 8);
    assert_eq!(threshold("staging", "arm64"), 8);

    // And it fires: 10 builds queued on staging amd64 for 20 minutes.
    let (rules, monitors) = staging();
    let lb = lb_target(&monitors);
    let input = vec![(
        series(
            &lb,
            "haproxy_backend_current_queue",
            &[("proxy", "bk_amd64")],
        ),
        "10x30".to_string(),
    )];
    let (ok, out) = promtool_test(
        &rules,
        vec![case(
            input,
            "1m",
            "20m",
            "PoolQueueBacklog",
            true,
            &[("pool", "amd64")],
        )],
    );
    assert!(ok, "{out}");
}

#[test]
fn at_max_after_the_queue_drained_is_quiet_and_at_max_for_follows_the_window() {
    let (rules, monitors) = staging();
    let lb = lb_target(&monitors);
    // All 8 of the seed's builds running 26 minutes on staging amd64:
    // desired sits at 8 for 26 minutes plus the 20-minute window, nothing
    // queued after the first minutes.
    let held = pool_series(
        &lb,
        "amd64",
        ["8x26 0x30", "2x5 0x50", "8x50", "2x50", "8x50"],
    );
    let over = pool_series(&lb, "amd64", ["12x60", "4x60", "8x60", "2x60", "8x60"]);
    let (ok, out) = promtool_test(
        &rules,
        vec![
            case(held, "1m", "45m", "PoolAtMaxReplicas", false, &[]),
            case(
                over,
                "1m",
                "45m",
                "PoolAtMaxReplicas",
                true,
                &[("pool", "amd64")],
            ),
        ],
    );
    assert!(ok, "{out}");

    // A 30-minute window: at_max_for is 40m.
    let dir = common::with_repo_specs("at-max-window");
    let spec = dir.join("specs/staging.yaml");
    let text = fs::read_to_string(&spec).unwrap().replace(
        "  drain: 10m\n",
        "  drain: 10m\n  scaling:\n    stabilization: 1800s\n",
    );
    fs::write(&spec, text).unwrap();
    let set = poolc::pipeline::compile(&dir.join("specs")).unwrap_or_else(|e| panic!("{e}"));
    let rules = set.get("staging/prometheus/rules.yaml").unwrap();
    let at = rules.find("alert: PoolAtMaxReplicas").unwrap();
    assert!(
        rules[at..].lines().take(6).any(|l| l.trim() == "for: 40m"),
        "{}",
        &rules[at..at + 300]
    );
}

// The generated scenarios carry what a scrape stores.

#[test]
fn generated_scenario_series_carry_the_scrape_target_labels() {
    let set = repo_fileset();
    for cluster in ["staging", "production"] {
        let tests: Value = serde_saphyr::from_str(
            set.get(&format!("{cluster}/prometheus/rules.test.yaml"))
                .unwrap(),
        )
        .unwrap();
        let mut seen = 0;
        for test in tests["tests"].as_array().unwrap() {
            for input in test["input_series"].as_array().unwrap() {
                let text = input["series"].as_str().unwrap();
                let expr = poolc::promql::parse(text).unwrap();
                let vs = poolc::promql::selectors(&expr)[0];
                let name = vs.name.clone().unwrap_or_default();
                if !["haproxy_", "keda_", "kube_", "karpenter_", "up"]
                    .iter()
                    .any(|p| name.starts_with(p))
                {
                    continue;
                }
                let labels: BTreeMap<&str, &str> = poolc::promql::label_matchers(vs)
                    .map(|m| (m.name.as_str(), m.value.as_str()))
                    .collect();
                for target in [
                    "job",
                    "instance",
                    "namespace",
                    "service",
                    "pod",
                    "container",
                    "endpoint",
                ] {
                    assert!(
                        labels.contains_key(target),
                        "{cluster}: {text} lacks {target}"
                    );
                }
                if name.starts_with("keda_") {
                    // The generated KEDA ServiceMonitor honors KEDA's labels.
                    assert_eq!(labels["namespace"], "buildkit", "{text}");
                    assert!(!labels.contains_key("exported_namespace"), "{text}");
                }
                seen += 1;
            }
        }
        assert!(seen > 30, "{cluster}: {seen} scraped series");
    }
}

#[test]
fn explain_prints_each_alerts_doc() {
    let dir = scratch("explain-alert");
    for name in [
        "PoolQueueBacklog",
        "PoolWarmDeficit",
        "PoolScalerErrors",
        "PoolScaledObjectErrors",
        "PoolLoadBalancerDown",
        "PoolAtMaxReplicas",
    ] {
        let out = poolc(&dir, &["explain", name]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let text = common::stdout(&out);
        for part in [
            "What it does:",
            "Why it matters:",
            "Example",
            "Instead:",
            "Default:",
        ] {
            assert!(text.contains(part), "{name}: no {part}\n{text}");
        }
    }
    let _ = Path::new("");
}
