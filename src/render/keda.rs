//! The autoscalers: a KEDA ScaledObject per service pool, scaling its worker
//! Deployment on the LB's own session count (no external metrics backend),
//! and a ScaledJob per jobs pool, starting one agent per pending job.

use std::collections::BTreeMap;

use serde::Serialize;

use super::haproxy::metrics_url;
use super::k8s::{pool_labels, Manifest, ObjectMeta};
use super::workers::{container, pod_template, PodTemplate};
use super::{yaml_file, RenderError};
use crate::fileset::File;
use crate::model::{Backend, Cluster, Jobs, Pool};

pub const FILE: &str = "keda.yaml";

pub fn render(cluster: &Cluster) -> Result<Vec<File>, RenderError> {
    let objects: Vec<Object> = cluster
        .pools
        .iter()
        // The Model gives every service pool a Backend and every jobs pool its Jobs.
        .filter_map(|pool| match (&pool.lb, &pool.jobs) {
            (Some(backend), _) => Some(Object::ScaledObject(scaled_object(cluster, pool, backend))),
            (None, Some(jobs)) => Some(Object::ScaledJob(scaled_job(cluster, pool, jobs))),
            (None, None) => None,
        })
        .collect();
    Ok(vec![yaml_file(cluster, FILE, &objects)?])
}

/// The exporter series KEDA reads for a backend. Equality matchers only:
/// KEDA's prometheus-format parser ignores the operator, so `=~` would
/// silently match as `=`.
pub fn value_location(backend: &str) -> String {
    format!("haproxy_backend_current_sessions{{proxy=\"{backend}\"}}")
}

#[derive(Serialize)]
#[serde(untagged)]
enum Object {
    ScaledObject(ScaledObject),
    ScaledJob(ScaledJob),
}

type ScaledObject = Manifest<ScaledObjectSpec>;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ScaledObjectSpec {
    scale_target_ref: ScaleTargetRef,
    polling_interval: u64,
    cooldown_period: u64,
    min_replica_count: u32,
    max_replica_count: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    fallback: Option<Fallback>,
    advanced: Advanced,
    triggers: Vec<Trigger>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ScaleTargetRef {
    api_version: &'static str,
    kind: &'static str,
    name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Fallback {
    failure_threshold: u32,
    replicas: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Advanced {
    horizontal_pod_autoscaler_config: HpaConfig,
}

#[derive(Serialize)]
struct HpaConfig {
    behavior: Behavior,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Behavior {
    scale_down: ScaleDown,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ScaleDown {
    stabilization_window_seconds: u64,
    select_policy: &'static str,
    policies: Vec<Policy>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Policy {
    #[serde(rename = "type")]
    kind: &'static str,
    value: u32,
    period_seconds: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Trigger {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    metric_type: Option<&'static str>,
    metadata: BTreeMap<&'static str, String>,
}

type ScaledJob = Manifest<ScaledJobSpec>;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ScaledJobSpec {
    job_target_ref: JobSpec,
    polling_interval: u64,
    min_replica_count: u32,
    max_replica_count: u32,
    successful_jobs_history_limit: u32,
    failed_jobs_history_limit: u32,
    /// `gradual`: a change to the ScaledJob applies to new Jobs only. KEDA's
    /// default deletes every running Job (and the agent's build) on update.
    rollout: Rollout,
    scaling_strategy: ScalingStrategy,
    triggers: Vec<Trigger>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JobSpec {
    parallelism: u32,
    completions: u32,
    /// An agent that failed is not retried: the CI system reschedules the job.
    backoff_limit: u32,
    active_deadline_seconds: u64,
    template: PodTemplate,
}

#[derive(Serialize)]
struct Rollout {
    strategy: &'static str,
}

#[derive(Serialize)]
struct ScalingStrategy {
    strategy: &'static str,
}

fn scaled_object(cluster: &Cluster, pool: &Pool, backend: &Backend) -> ScaledObject {
    let s = &pool.scaling;
    let mut metadata = BTreeMap::new();
    metadata.insert("url", metrics_url(cluster));
    metadata.insert("format", "prometheus".to_string());
    metadata.insert("valueLocation", value_location(&backend.backend));
    metadata.insert("targetValue", s.target_sessions.to_string());
    ScaledObject {
        api_version: "keda.sh/v1alpha1",
        kind: "ScaledObject",
        metadata: ObjectMeta::named(&pool.workload, Some(&cluster.namespace))
            .with_labels(pool_labels(cluster, pool)),
        spec: ScaledObjectSpec {
            scale_target_ref: ScaleTargetRef {
                api_version: "apps/v1",
                kind: "Deployment",
                name: pool.workload.clone(),
            },
            polling_interval: s.polling_interval.0,
            cooldown_period: s.cooldown.0,
            min_replica_count: pool.min,
            max_replica_count: pool.max,
            fallback: pool.fallback.map(|f| Fallback {
                failure_threshold: f.failure_threshold,
                replicas: f.replicas,
            }),
            advanced: Advanced {
                horizontal_pod_autoscaler_config: HpaConfig {
                    behavior: Behavior {
                        // The highest recommendation in the window wins, and at
                        // most max(pods, percent) go per period: an idle builder
                        // keeps its layer cache for a while.
                        scale_down: ScaleDown {
                            stabilization_window_seconds: s.stabilization.0,
                            select_policy: "Max",
                            policies: vec![
                                Policy {
                                    kind: "Pods",
                                    value: s.scale_down_pods,
                                    period_seconds: s.scale_down_period.0,
                                },
                                Policy {
                                    kind: "Percent",
                                    value: s.scale_down_percent,
                                    period_seconds: s.scale_down_period.0,
                                },
                            ],
                        },
                    },
                },
            },
            triggers: vec![Trigger {
                kind: "metrics-api",
                // Always explicit: KEDA's webhook rejects a fallback without it
                // (2.14 to 2.17.0), and it is what makes desired ≈ sessions.
                metric_type: Some("AverageValue"),
                metadata,
            }],
        },
    }
}

fn scaled_job(cluster: &Cluster, pool: &Pool, jobs: &Jobs) -> ScaledJob {
    let mut metadata = BTreeMap::new();
    metadata.insert("serverAddress", jobs.server_address.clone());
    metadata.insert("query", jobs.query.clone());
    metadata.insert("threshold", jobs.target.to_string());
    let mut template = pod_template(cluster, pool, vec![container(pool)], Some("Never"));
    // A running agent must finish its job: Karpenter leaves its node alone.
    template.metadata.annotations.insert(
        "karpenter.sh/do-not-disrupt".to_string(),
        "true".to_string(),
    );
    ScaledJob {
        api_version: "keda.sh/v1alpha1",
        kind: "ScaledJob",
        metadata: ObjectMeta::named(&pool.workload, Some(&cluster.namespace))
            .with_labels(pool_labels(cluster, pool)),
        spec: ScaledJobSpec {
            job_target_ref: JobSpec {
                parallelism: 1,
                completions: 1,
                backoff_limit: 0,
                active_deadline_seconds: jobs.active_deadline.0,
                template,
            },
            polling_interval: pool.scaling.polling_interval.0,
            min_replica_count: pool.min,
            max_replica_count: pool.max,
            successful_jobs_history_limit: jobs.successful_history,
            failed_jobs_history_limit: jobs.failed_history,
            rollout: Rollout {
                strategy: "gradual",
            },
            scaling_strategy: ScalingStrategy {
                strategy: jobs.scaling_strategy.as_str(),
            },
            triggers: vec![Trigger {
                kind: "prometheus",
                metric_type: None,
                metadata,
            }],
        },
    }
}
