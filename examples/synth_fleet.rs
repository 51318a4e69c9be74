//! Writes a synthetic fleet for the benchmark: cluster specs with a realistic
//! mix of service and jobs pools and instance-type fallbacks, and a plain
//! Prometheus rule file of realistic rules over the catalog's exporters.
//!
//!     cargo run --release --example synth_fleet -- DIR [POOLS] [CLUSTERS] [RULES...]
//!
//! writes DIR/specs/*.yaml and, for each N in RULES, DIR/rules-<N>/ with N
//! rules in files of at most 10,000 (as monitoring repos split them).

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first() else {
        eprintln!("usage: synth_fleet DIR [POOLS] [CLUSTERS] [RULES...]");
        std::process::exit(2);
    };
    let number =
        |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let pools = number(1, 1000);
    let clusters = number(2, 20).max(1);
    let rule_counts: Vec<usize> = if args.len() > 3 {
        args[3..].iter().filter_map(|a| a.parse().ok()).collect()
    } else {
        vec![10_000]
    };
    write(Path::new(dir), pools, clusters, &rule_counts)
}

/// Writes `pools` pools over `clusters` specs, and a rule set per count.
pub fn write(
    dir: &Path,
    pools: usize,
    clusters: usize,
    rule_counts: &[usize],
) -> std::io::Result<()> {
    let specs = dir.join("specs");
    let _ = fs::remove_dir_all(&specs);
    fs::create_dir_all(&specs)?;
    let per_cluster = pools.div_ceil(clusters);
    for c in 0..clusters {
        let count = per_cluster.min(pools.saturating_sub(c * per_cluster));
        fs::write(specs.join(format!("cluster-{c:02}.yaml")), spec(c, count))?;
    }
    for &n in rule_counts {
        let out = dir.join(format!("rules-{n}"));
        let _ = fs::remove_dir_all(&out);
        fs::create_dir_all(&out)?;
        for (part, first) in (0..n).step_by(RULES_PER_FILE).enumerate() {
            let count = RULES_PER_FILE.min(n - first);
            fs::write(
                out.join(format!("part-{part:03}.yaml")),
                rules(first, count),
            )?;
        }
    }
    Ok(())
}

const RULES_PER_FILE: usize = 10_000;

/// The first type sizes the pod; the fallbacks fit their counts at that size.
const AMD64: [(&str, u32); 3] = [
    ("m6id.24xlarge", 2),
    ("m6id.12xlarge", 1),
    ("m6id.16xlarge", 1),
];
const ARM64: [(&str, u32); 3] = [
    ("m7gd.16xlarge", 4),
    ("m7gd.8xlarge", 2),
    ("c7gd.16xlarge", 2),
];

fn spec(cluster: usize, pools: usize) -> String {
    let mut s = format!(
        r#"cluster:
  name: cluster-{cluster:02}
  environment: env-{env}
  namespace: ci
  exporters:
    keda: "2.{keda}"
    haproxy: "3.1"
    kube-state-metrics: "2.13"
    karpenter: "1.14"
  alert_labels:
    team: ci-platform
  metrics:
    - name: buildkite_queues_scheduled_jobs_count
      type: gauge
      labels: [queue]
      scraped_by:
        servicemonitor: buildkite/buildkite-agent-metrics
defaults:
  drain: 10m
  worker:
    image: moby/buildkit:v0.29.0
pools:
"#,
        env = cluster % 3,
        keda = [14, 16, 20][cluster % 3],
    );
    for p in 0..pools {
        let arm = p % 3 == 1;
        let jobs = p % 5 == 4;
        let (arch, types) = if arm {
            ("arm64", &ARM64[..])
        } else {
            ("amd64", &AMD64[..])
        };
        let fallbacks = p % 3;
        let max = 8 + (p * 7) % 200;
        let _ = writeln!(s, "  - name: pool-{p:03}\n    arch: {arch}");
        if jobs {
            let _ = writeln!(
                s,
                "    mode: jobs\n    min: 0\n    max: {max}\n    jobs:\n      query: sum(buildkite_queues_scheduled_jobs_count{{queue=\"q{p}\"}})\n      server_address: http://prometheus.monitoring.svc:9090"
            );
        } else {
            let _ = writeln!(
                s,
                "    port: {}\n    min: {}\n    max: {max}",
                10_000 + p,
                1 + p % 4
            );
            if p % 2 == 0 {
                let _ = writeln!(s, "    fallback:\n      replicas: {}", 1 + max / 4);
            }
        }
        let _ = writeln!(s, "    instance_types:");
        for (name, pods_per_node) in types.iter().take(1 + fallbacks) {
            let _ = writeln!(
                s,
                "      - type: {name}\n        pods_per_node: {pods_per_node}"
            );
        }
    }
    s
}

/// Rules in the shapes real monitoring repos hold: alerts with annotations,
/// recording rules with label_replace, joins with on/group_left.
fn rules(first: usize, n: usize) -> String {
    let mut s = String::from("groups:\n");
    let per_group = 50;
    for i in first..first + n {
        if i % per_group == 0 {
            let _ = writeln!(s, "  - name: group-{}\n    rules:", i / per_group);
        }
        let b = format!("bk_pool-{}", i % 997);
        let rule = match i % 10 {
            0 => format!(
                "      - alert: QueueBacklog{i}\n        expr: haproxy_backend_current_queue{{proxy=\"{b}\"}} > {t}\n        for: 15m\n        labels:\n          severity: warning\n        annotations:\n          summary: \"{{{{ $labels.proxy }}}} has more than {t} queued builds\"\n",
                t = 10 + i % 40
            ),
            1 => format!(
                "      - record: pool:sessions:sum{i}\n        expr: sum by (pool) (label_replace(haproxy_backend_current_sessions{{proxy=~\"bk_.*\"}}, \"pool\", \"$1\", \"proxy\", \"bk_(.*)\"))\n"
            ),
            2 => format!(
                "      - alert: ScalerErrors{i}\n        expr: sum by (namespace, scaledObject) (increase(keda_scaler_detail_errors_total[15m])) > 3\n        labels:\n          severity: warning\n        annotations:\n          summary: \"KEDA scaler errors for {{{{ $labels.scaledObject }}}}\"\n"
            ),
            3 => format!(
                "      - alert: HpaMaxedOut{i}\n        expr: kube_horizontalpodautoscaler_status_current_replicas{{namespace=\"ci\"}} == on (namespace, horizontalpodautoscaler) kube_horizontalpodautoscaler_spec_max_replicas{{namespace=\"ci\"}}\n        for: 15m\n        labels:\n          severity: info\n        annotations:\n          summary: \"HPA {{{{ $labels.horizontalpodautoscaler }}}} at max\"\n"
            ),
            4 => format!(
                "      - alert: DeploymentUnavailable{i}\n        expr: kube_deployment_status_replicas_available{{namespace=\"ci\"}} < on (namespace, deployment) group_left kube_deployment_spec_replicas{{namespace=\"ci\"}}\n        for: 10m\n        labels:\n          severity: warning\n        annotations:\n          summary: \"{{{{ $labels.deployment }}}} has unavailable replicas\"\n"
            ),
            5 => format!(
                "      - record: nodepool:usage:ratio{i}\n        expr: karpenter_nodepools_usage{{resource_type=\"cpu\"}} / on (nodepool, resource_type) karpenter_nodepools_limit{{resource_type=\"cpu\"}}\n"
            ),
            6 => format!(
                "      - alert: BackendDown{i}\n        expr: haproxy_backend_active_servers{{proxy=\"{b}\"}} == 0\n        for: 5m\n        labels:\n          severity: critical\n        annotations:\n          summary: \"{{{{ $labels.proxy }}}} has no active servers\"\n"
            ),
            7 => format!(
                "      - record: haproxy:http_errors:rate5m{i}\n        expr: sum by (proxy, code) (rate(haproxy_backend_http_responses_total{{code=\"5xx\"}}[5m]))\n"
            ),
            8 => format!(
                "      - alert: PodsRestarting{i}\n        expr: increase(kube_pod_container_status_restarts_total{{namespace=\"ci\"}}[1h]) > 3\n        labels:\n          severity: warning\n        annotations:\n          summary: \"{{{{ $labels.pod }}}} restarts\"\n"
            ),
            _ => format!(
                "      - alert: TargetDown{i}\n        expr: up{{job=\"buildkitd-lb-metrics\"}} == 0\n        for: 5m\n        labels:\n          severity: critical\n        annotations:\n          summary: \"{{{{ $labels.instance }}}} is down\"\n"
            ),
        };
        s.push_str(&rule);
    }
    s
}
