//! `poolc init <cluster>`: a commented starter spec with one service pool and
//! one jobs pool, valid as written, so a new cluster starts from something
//! that generates and lints clean rather than from a blank page.

use crate::model::check_dns_label;

/// The starter spec for `cluster`, or why the name cannot be a cluster name.
pub fn starter_spec(cluster: &str) -> Result<String, String> {
    check_dns_label(cluster, 63).map_err(|problem| {
        format!(
            "cluster name {cluster:?} {problem}: use lowercase letters, digits and '-', starting with a letter"
        )
    })?;
    Ok(STARTER.replace("CLUSTER", cluster))
}

const STARTER: &str = r#"# yaml-language-server: $schema=../generated/poolc.schema.json
# The CLUSTER build-worker fleet. `poolc generate` compiles this file into
# generated/CLUSTER/; the README's spec reference lists every field.
cluster:
  name: CLUSTER
  environment: CLUSTER
  namespace: ci-workers
  # Metric names depend on these versions: keep them in step with what runs.
  exporters:
    keda: "2.20"
    haproxy: "3.2"
    kube-state-metrics: "2.20"
    karpenter: "1.14"
  scrape_interval: 60s
  alert_labels:
    team: ci-platform
  # Metrics of your own exporters that rules and triggers may use.
  metrics:
    - name: buildkite_queues_scheduled_jobs_count
      type: gauge
      labels: [queue]
      # What scrapes it: a jobs pool's trigger reads it.
      scraped_by:
        servicemonitor: buildkite/buildkite-agent-metrics

defaults:
  # grace_period must exceed haproxy.timeout_server + drain.
  drain: 10m
  haproxy:
    timeout_server: 2h

pools:
  # Long-lived build servers behind the LB, scaled on the LB's sessions.
  - name: amd64
    arch: amd64
    port: 3234                  # clients connect to the LB on this port
    worker:
      image: moby/buildkit:v0.29.0
      args: [--addr, "tcp://[::]:1234"]
      privileged: true
    instance_types:             # the first sizes the pod; later ones are fallbacks
      - type: m6id.24xlarge
        pods_per_node: 2
      - type: m6id.12xlarge
        pods_per_node: 1
    min: 2                      # one node's worth stays warm; must be >= 1
    max: 16
    fallback:
      replicas: 4               # held if KEDA cannot read the LB's metrics

  # One-shot agents: one Job per pending unit of work.
  - name: agents
    mode: jobs
    arch: amd64
    worker:
      image: buildkite/agent:3
      args: [start, --disconnect-after-job]
    instance_types:
      - type: c6id.4xlarge
        pods_per_node: 2
    min: 0
    max: 20
    jobs:
      query: sum(buildkite_queues_scheduled_jobs_count{queue="default"})
      server_address: http://prometheus-operated.monitoring.svc:9090
"#;
