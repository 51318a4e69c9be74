//! The worker pods of each pool: a Deployment plus a headless Service for
//! service pools (KEDA owns the replica count, HAProxy finds pods through the
//! Service's DNS), and the same container for jobs pools' ScaledJob.

use std::collections::BTreeMap;

use serde::Serialize;

use super::k8s::{
    pool_labels, pool_placement, pool_selector, ContainerPort, IngressRule, LabelSelector,
    Manifest, NetworkPolicy, NetworkPolicySpec, ObjectMeta, Peer, PolicyPort, Resources,
    ServicePort, Toleration,
};
use super::{template, yaml_file, RenderError};
use crate::fileset::File;
use crate::model::{Cluster, Pool, DRAIN_MARGIN};
use crate::spec::Mode;

pub const FILE: &str = "workers.yaml";

pub fn render(cluster: &Cluster) -> Result<Vec<File>, RenderError> {
    let mut objects = Vec::new();
    for pool in &cluster.pools {
        if pool.mode == Mode::Service {
            objects.push(Object::Deployment(Box::new(deployment(cluster, pool)?)));
            if let Some(service) = pods_service(cluster, pool) {
                objects.push(Object::Service(service));
            }
        }
        objects.push(Object::NetworkPolicy(network_policy(cluster, pool)));
    }
    if objects.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![yaml_file(cluster, FILE, &objects)?])
}

#[derive(Serialize)]
#[serde(untagged)]
enum Object {
    Deployment(Box<Deployment>),
    Service(Service),
    NetworkPolicy(NetworkPolicy),
}

type Deployment = Manifest<DeploymentSpec>;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeploymentSpec {
    // No `replicas`: KEDA's HPA owns it, and a value here would reset the
    // pool on every apply.
    selector: LabelSelector,
    strategy: Strategy,
    template: PodTemplate,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Strategy {
    #[serde(rename = "type")]
    kind: &'static str,
    rolling_update: RollingUpdate,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RollingUpdate {
    max_surge: &'static str,
    max_unavailable: u32,
}

#[derive(Serialize)]
pub struct PodTemplate {
    pub metadata: ObjectMeta,
    pub spec: PodSpec,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<&'static str>,
    pub termination_grace_period_seconds: u64,
    pub node_selector: BTreeMap<String, String>,
    pub tolerations: Vec<Toleration>,
    pub containers: Vec<Container>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<serde_json::Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    pub name: &'static str,
    pub image: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ContainerPort>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<serde_json::Value>,
    pub resources: Resources,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_context: Option<SecurityContext>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<Probe>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Lifecycle>,
}

/// Ready only once the build port accepts connections: the headless
/// Service (and so HAProxy) lists the pod only then.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    pub tcp_socket: TcpSocket,
    pub period_seconds: u32,
}

#[derive(Serialize)]
pub struct TcpSocket {
    pub port: &'static str,
}

#[derive(Serialize)]
pub struct SecurityContext {
    pub privileged: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Lifecycle {
    pub pre_stop: Handler,
}

#[derive(Serialize)]
pub struct Handler {
    pub exec: Exec,
}

#[derive(Serialize)]
pub struct Exec {
    pub command: Vec<String>,
}

type Service = Manifest<ServiceSpec>;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ServiceSpec {
    #[serde(rename = "clusterIP")]
    cluster_ip: &'static str,
    selector: BTreeMap<String, String>,
    ports: Vec<ServicePort>,
}

/// Context of `templates/drain.sh.j2`.
#[derive(Serialize)]
struct DrainContext {
    /// The longest the hook waits: the grace period minus DRAIN_MARGIN.
    bound_seconds: u64,
    /// The build port as /proc/net/tcp prints it: four upper-case hex digits.
    port_hex: String,
}

fn deployment(cluster: &Cluster, pool: &Pool) -> Result<Deployment, RenderError> {
    let drain = template::render(
        "drain.sh.j2",
        &DrainContext {
            bound_seconds: pool.grace_period.0.saturating_sub(DRAIN_MARGIN.0),
            port_hex: format!("{:04X}", pool.worker.port),
        },
    )?;
    let mut container = container(pool);
    container.lifecycle = Some(Lifecycle {
        pre_stop: Handler {
            exec: Exec {
                command: vec!["/bin/sh".to_string(), "-c".to_string(), drain],
            },
        },
    });
    Ok(Deployment {
        api_version: "apps/v1",
        kind: "Deployment",
        metadata: ObjectMeta::named(&pool.workload, Some(&cluster.namespace))
            .with_labels(pool_labels(cluster, pool)),
        spec: DeploymentSpec {
            selector: LabelSelector {
                match_labels: pool_selector(pool),
            },
            // A rollout must never take a busy builder away all at once; new
            // pods come up first.
            strategy: Strategy {
                kind: "RollingUpdate",
                rolling_update: RollingUpdate {
                    max_surge: "25%",
                    max_unavailable: 0,
                },
            },
            template: pod_template(cluster, pool, vec![container], None),
        },
    })
}

/// The worker container, sized for Guaranteed QoS.
pub fn container(pool: &Pool) -> Container {
    let w = &pool.worker;
    let mut ports = Vec::new();
    if pool.mode == Mode::Service {
        ports.push(ContainerPort {
            name: "build".to_string(),
            container_port: w.port,
            protocol: "TCP",
        });
    }
    if let Some(port) = w.metrics_port {
        ports.push(ContainerPort {
            name: "metrics".to_string(),
            container_port: port,
            protocol: "TCP",
        });
    }
    Container {
        name: "worker",
        image: w.image.clone(),
        args: w.args.clone(),
        ports,
        env: w.env.clone(),
        resources: Resources::guaranteed(
            pool.pod.cpu.to_string(),
            format!("{}Gi", pool.pod.memory_gib),
        ),
        security_context: w.privileged.then_some(SecurityContext { privileged: true }),
        readiness_probe: (pool.mode == Mode::Service).then_some(Probe {
            tcp_socket: TcpSocket { port: "build" },
            period_seconds: 2,
        }),
        volume_mounts: w.volume_mounts.clone(),
        lifecycle: None,
    }
}

pub fn pod_template(
    cluster: &Cluster,
    pool: &Pool,
    containers: Vec<Container>,
    restart_policy: Option<&'static str>,
) -> PodTemplate {
    let (node_selector, tolerations) = pool_placement(pool);
    let mut metadata = ObjectMeta::default().with_labels(pool_labels(cluster, pool));
    metadata.name = String::new();
    PodTemplate {
        metadata,
        spec: PodSpec {
            restart_policy,
            termination_grace_period_seconds: pool.grace_period.0,
            node_selector,
            tolerations,
            containers,
            volumes: pool.worker.volumes.clone(),
        },
    }
}

fn pods_service(cluster: &Cluster, pool: &Pool) -> Option<Service> {
    let backend = pool.lb.as_ref()?;
    let mut ports = vec![ServicePort {
        name: "build".to_string(),
        port: pool.worker.port,
        target_port: "build".to_string(),
        protocol: "TCP",
    }];
    // The workers' ServiceMonitor scrapes through this Service too.
    if let Some(port) = pool.worker.metrics_port {
        ports.push(ServicePort {
            name: "metrics".to_string(),
            port,
            target_port: "metrics".to_string(),
            protocol: "TCP",
        });
    }
    Some(Service {
        api_version: "v1",
        kind: "Service",
        metadata: ObjectMeta::named(&backend.pods_service, Some(&cluster.namespace))
            .with_labels(pool_labels(cluster, pool)),
        spec: ServiceSpec {
            // Headless: HAProxy's server-template resolves one A record per pod.
            cluster_ip: "None",
            selector: pool_selector(pool),
            ports,
        },
    })
}

/// Who may reach a pool's pods. The build port only from the LB: a client
/// that connected directly would bypass `maxconn 1` and share a privileged
/// builder. The metrics port only from the monitoring namespace. Nothing
/// else (a jobs pool without metrics accepts no connections at all).
fn network_policy(cluster: &Cluster, pool: &Pool) -> NetworkPolicy {
    let mut ingress = Vec::new();
    if pool.mode == Mode::Service {
        ingress.push(IngressRule {
            from: vec![Peer {
                namespace_selector: None,
                pod_selector: Some(LabelSelector {
                    match_labels: super::haproxy::lb_selector(cluster),
                }),
            }],
            ports: vec![PolicyPort {
                protocol: "TCP",
                port: pool.worker.port,
            }],
        });
    }
    if let Some(port) = pool.worker.metrics_port {
        ingress.push(IngressRule {
            from: vec![Peer::namespace(&cluster.monitoring.namespace)],
            ports: vec![PolicyPort {
                protocol: "TCP",
                port,
            }],
        });
    }
    NetworkPolicy {
        api_version: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        metadata: ObjectMeta::named(&pool.workload, Some(&cluster.namespace))
            .with_labels(pool_labels(cluster, pool)),
        spec: NetworkPolicySpec {
            pod_selector: LabelSelector {
                match_labels: pool_selector(pool),
            },
            policy_types: vec!["Ingress"],
            ingress,
        },
    }
}
