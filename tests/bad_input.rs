//! Every broken spec exits 2 with an error naming file:line and the fix,
//! never panics, and leaves generated/ exactly as it was. The exact text of
//! each error is a snapshot, so a reviewer sees what a user would see.

mod common;

use common::{poolc, scratch, stderr, tree, VALID_SPEC};

enum Input {
    /// VALID_SPEC with one substring replaced.
    Edit(&'static str, &'static str),
    Text(String),
    Bytes(Vec<u8>),
}

fn cases() -> Vec<(&'static str, Input)> {
    use Input::*;
    vec![
        ("min_greater_than_max", Edit("    min: 2\n    max: 8", "    min: 9\n    max: 8")),
        ("max_zero", Edit("    max: 10\n", "    max: 0\n")),
        ("fallback_over_max", Edit("      replicas: 4", "      replicas: 40")),
        ("pods_per_node_zero", Edit("pods_per_node: 2\n    min: 2", "pods_per_node: 0\n    min: 2")),
        ("service_min_zero", Edit("    min: 2\n", "    min: 0\n")),
        ("slots_below_max", Edit("    max: 8\n", "    max: 8\n    haproxy:\n      slots: 6\n")),
        ("grace_not_above_timeout_and_drain", Edit("    max: 8\n", "    max: 8\n    drain: 10m\n    grace_period: 2h\n")),
        (
            "fallback_type_too_small",
            Edit("        pods_per_node: 2\n    min: 2", "        pods_per_node: 2\n      - type: m6id.4xlarge\n        pods_per_node: 1\n    min: 2"),
        ),
        ("unknown_instance_type", Edit("m6id.24xlarge", "m6id.24xlarg")),
        ("arch_mismatch", Edit("m6id.24xlarge", "m7gd.16xlarge")),
        ("pods_over_eni_limit", Edit("c6id.4xlarge\n        pods_per_node: 2", "c6id.4xlarge\n        pods_per_node: 500")),
        ("malformed_yaml", Edit("  namespace: ci\n", "  namespace: [ci\n")),
        ("unknown_field", Edit("    max: 8\n", "    max: 8\n    maxx: 9\n")),
        ("wrong_type", Edit("    min: 2\n", "    min: two\n")),
        ("negative_number", Edit("    min: 2\n", "    min: -2\n")),
        ("number_overflow", Edit("    max: 8\n", "    max: 99999999999999999999\n")),
        ("hostile_name_newline", Edit("  - name: amd64", "  - name: \"a\\nserver x 1.2.3.4\"")),
        ("hostile_name_path", Edit("  - name: amd64", "  - name: ../../etc")),
        ("hostile_name_promql", Edit("  - name: amd64", "  - name: 'bk_a\"} or vector(1) #'")),
        ("hostile_name_long", Text(VALID_SPEC.replace("  - name: amd64", &format!("  - name: {}", "a".repeat(300))))),
        ("hostile_namespace", Edit("  namespace: ci", "  namespace: \"ci; rm -rf /\"")),
        ("empty_file", Text(String::new())),
        ("duplicate_key", Edit("    min: 2\n", "    min: 2\n    min: 3\n")),
        ("duplicate_pool", Edit("  - name: agents", "  - name: amd64")),
        ("duplicate_port", Text(format!("{VALID_SPEC}{SECOND_POOL_SAME_PORT}"))),
        ("jobs_without_query", Edit("    jobs:\n      query: sum(buildkite_queues_scheduled_jobs_count{queue=\"default\"})\n      server_address: http://prometheus.monitoring.svc:9090\n", "")),
        ("jobs_query_not_promql", Edit("sum(buildkite_queues_scheduled_jobs_count{queue=\"default\"})", "sum(buildkite_queues_scheduled_jobs_count{queue=\"default\"}")),
        ("service_without_port", Edit("    port: 3234\n", "")),
        ("missing_cluster", Text("pools: []\n".to_string())),
        ("missing_exporters", Edit("  exporters:\n    keda: \"2.16\"\n    haproxy: \"3.1\"\n    kube-state-metrics: \"2.13\"\n    karpenter: \"1.14\"\n", "")),
        ("missing_pool_arch", Edit("    arch: amd64\n    port: 3234\n", "    port: 3234\n")),
        ("no_pools", Edit("pools:\n", "pools: []\nold_pools:\n")),
        ("non_utf8", Bytes(b"cluster:\n  name: \xff\xfe\n".to_vec())),
        ("alias_bomb", Edit("      image: moby/buildkit:v0.29.0\n", Box::leak(alias_bomb().into_boxed_str()))),
        (
            "deep_nesting",
            Edit("      image: moby/buildkit:v0.29.0\n", Box::leak(format!("      image: moby/buildkit:v0.29.0\n      env: {}{}\n", "[".repeat(500), "]".repeat(500)).into_boxed_str())),
        ),
        ("huge_file", Text(format!("{VALID_SPEC}# {}\n", "x".repeat(2 * 1024 * 1024)))),
        ("bad_duration", Edit("    max: 8\n", "    max: 8\n    drain: 10 minutes\n")),
        ("bad_version", Edit("keda: \"2.16\"", "keda: \"two\"")),
        ("scraped_by_two_paths", Edit("{servicemonitor: ci/buildkite-agent-metrics}", "{servicemonitor: ci/buildkite-agent-metrics, job: buildkite}")),
        ("keda_too_old_for_the_lb_exporter", Edit("keda: \"2.16\"", "keda: \"2.13\"")),
        ("lb_replicas_over_one", Edit("  metrics:\n", "  lb:\n    replicas: 2\n  metrics:\n")),
        ("lb_client_namespaces_empty", Edit("  metrics:\n", "  lb:\n    client_namespaces: []\n  metrics:\n")),
        ("ami_alias_latest", Edit("  metrics:\n", "  node_class:\n    ami_alias: al2023@latest\n  metrics:\n")),
        ("ami_alias_malformed", Edit("  metrics:\n", "  node_class:\n    ami_alias: ubuntu\n  metrics:\n")),
        ("karpenter_grace_below_pod_grace", Edit("    max: 8\n", "    max: 8\n    karpenter:\n      termination_grace_period: 1h\n")),
        ("karpenter_expire_after_not_a_duration", Edit("    max: 8\n", "    max: 8\n    karpenter:\n      expire_after: soon\n")),
        ("slots_beyond_one_dns_response", Edit("    min: 2\n    max: 8\n", "    min: 2\n    max: 3000\n")),
        ("keda_too_old_for_gradual_job_rollout", Edit("keda: \"2.16\"", "keda: \"2.7\"")),
        // Line numbers stay right behind a byte-order mark and with CRLF endings.
        ("bom_then_mistake", Text(format!("\u{feff}{}", VALID_SPEC.replace("    min: 2\n", "    min: 9\n")))),
        ("crlf_then_mistake", Text(VALID_SPEC.replace("    min: 2\n", "    min: 9\n").replace('\n', "\r\n"))),
        ("nul_byte", Bytes(VALID_SPEC.replace("name: demo", "name: de\0mo").into_bytes())),
        ("deep_promql_in_query", Edit("sum(buildkite_queues_scheduled_jobs_count{queue=\"default\"})", Box::leak(format!("{}buildkite_queues_scheduled_jobs_count{}", "(".repeat(300), ")".repeat(300)).into_boxed_str()))),
        ("u32_overflow", Edit("    max: 8\n", "    max: 4294967296\n")),
        ("float_where_integer", Edit("    max: 8\n", "    max: 8.5\n")),
        ("hpa_stabilization_over_an_hour", Edit("    max: 8\n", "    max: 8\n    scaling:\n      stabilization: 2h\n")),
        ("hpa_period_over_30m", Edit("    max: 8\n", "    max: 8\n    scaling:\n      scale_down_period: 45m\n")),
        ("hpa_zero_pods_policy", Edit("    max: 8\n", "    max: 8\n    scaling:\n      scale_down_pods: 0\n")),
        ("hostile_image", Edit("image: moby/buildkit:v0.29.0", "image: \"moby/buildkit:v0.29.0\\nprivileged: true\"")),
    ]
}

const SECOND_POOL_SAME_PORT: &str = "  - name: arm64
    arch: arm64
    port: 3234
    worker:
      image: moby/buildkit:v0.29.0
    instance_types:
      - type: m7gd.16xlarge
        pods_per_node: 4
    min: 4
    max: 8
";

/// "Billion laughs": ten levels of nine aliases each, inside a field that
/// takes arbitrary YAML (the worker's env), so only the budget can stop it.
fn alias_bomb() -> String {
    let mut text = String::from(
        "      image: moby/buildkit:v0.29.0\n      env:\n        - &a [\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]\n",
    );
    for i in 1..10 {
        let prev = (b'a' + i - 1) as char;
        let this = (b'a' + i) as char;
        text.push_str(&format!(
            "        - &{this} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
        ));
    }
    text
}

#[test]
fn broken_specs_exit_2_with_file_line_and_fix_and_write_nothing() {
    let cases = cases();
    assert!(cases.len() >= 25, "the table must stay at least 25 cases");
    for (name, input) in cases {
        let dir = scratch(&format!("bad-{name}"));
        let bytes = match input {
            Input::Edit(from, to) => {
                assert!(
                    VALID_SPEC.contains(from),
                    "{name}: edit target not in VALID_SPEC"
                );
                VALID_SPEC.replacen(from, to, 1).into_bytes()
            }
            Input::Text(t) => t.into_bytes(),
            Input::Bytes(b) => b,
        };
        std::fs::write(dir.join("specs/bad.yaml"), bytes).unwrap();
        // A previous good tree that must survive untouched.
        std::fs::create_dir_all(dir.join("generated/demo")).unwrap();
        std::fs::write(dir.join("generated/demo/keda.yaml"), "previous\n").unwrap();
        let before = tree(&dir.join("generated"));

        let out = poolc(&dir, &["generate"]);
        let err = stderr(&out);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{name}: expected exit 2, stderr:\n{err}"
        );
        assert!(!err.contains("panicked"), "{name}: panic:\n{err}");
        assert!(
            err.contains("specs/bad.yaml:"),
            "{name}: no file:line in\n{err}"
        );
        assert!(err.contains("help:"), "{name}: no fix in\n{err}");
        assert_eq!(
            tree(&dir.join("generated")),
            before,
            "{name}: generated/ changed"
        );
        insta::assert_snapshot!(name, err);
    }
}

#[test]
fn every_mistake_in_a_spec_is_reported_at_once() {
    let dir = scratch("bad-many");
    let text = VALID_SPEC
        .replacen("    min: 2\n", "    min: 0\n", 1)
        .replacen("      replicas: 4", "      replicas: 40", 1)
        .replacen("c6id.4xlarge", "c6id.4xlarg", 1);
    std::fs::write(dir.join("specs/bad.yaml"), text).unwrap();
    let out = poolc(&dir, &["generate"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(err.contains("min is 0"), "{err}");
    assert!(
        err.contains("fallback.replicas (40) is greater than max (8)"),
        "{err}"
    );
    assert!(err.contains("unknown instance type `c6id.4xlarg`"), "{err}");
    assert!(err.contains("3 errors in the specs"), "{err}");
}
