//! The LB in front of the service pools: `haproxy.cfg` (from
//! `templates/haproxy.cfg.j2`, shipped as a ConfigMap by the kustomization)
//! and `lb.yaml` with its Deployment, Services and NetworkPolicy. The
//! backend names, exporter port and metrics Service here are the ones the
//! KEDA trigger, ServiceMonitor and alerts read; they all come from the Model.

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::k8s::{
    managed_labels, ContainerPort, IngressRule, LabelSelector, Manifest, NetworkPolicy,
    NetworkPolicySpec, ObjectMeta, Peer, PolicyPort, Resources, ServicePort,
};
use super::workers::{Exec, Handler, Lifecycle};
use super::{header, path, template, yaml_file, RenderError};
use crate::fileset::File;
use crate::model::{Cluster, LB_STATS_PORT};

/// The HAProxy config, also the key of the LB's ConfigMap.
pub const CONFIG_FILE: &str = "haproxy.cfg";
pub const LB_FILE: &str = "lb.yaml";
/// Where the official haproxy image reads its config.
const CONFIG_DIR: &str = "/usr/local/etc/haproxy";

pub fn config_map_name(cluster: &Cluster) -> String {
    format!("{}-config", cluster.lb.name)
}

/// Selector labels of the LB pods; the metrics Service carries them too, and
/// the ServiceMonitor selects on them.
pub fn lb_selector(cluster: &Cluster) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    labels.insert(
        "app.kubernetes.io/name".to_string(),
        cluster.lb.name.clone(),
    );
    labels.insert(
        "app.kubernetes.io/component".to_string(),
        "load-balancer".to_string(),
    );
    labels
}

/// In-cluster URL of the LB's Prometheus exporter, as KEDA reads it.
pub fn metrics_url(cluster: &Cluster) -> String {
    format!(
        "http://{}.{}.svc.cluster.local:{}/metrics",
        cluster.lb.metrics_service, cluster.namespace, cluster.lb.metrics_port
    )
}

pub fn render(cluster: &Cluster) -> Result<Vec<File>, RenderError> {
    let pools: Vec<PoolContext> = cluster
        .pools
        .iter()
        .filter_map(|pool| {
            let b = pool.lb.as_ref()?;
            Some(PoolContext {
                name: pool.name.clone(),
                max: pool.max,
                frontend: b.frontend.clone(),
                backend: b.backend.clone(),
                port: b.port,
                slots: b.slots,
                servers: format!("{}.{}.svc.cluster.local", b.pods_service, cluster.namespace),
                worker_port: pool.worker.port,
                timeout_connect: b.timeout_connect.compact(),
                timeout_client: b.timeout_client.compact(),
                timeout_server: b.timeout_server.compact(),
                timeout_queue: b.timeout_queue.compact(),
            })
        })
        .collect();
    if pools.is_empty() {
        return Ok(Vec::new());
    }
    let total_slots: u64 = pools.iter().map(|p| u64::from(p.slots)).sum();
    let context = ConfigContext {
        header: header(cluster, "#").trim_end().to_string(),
        // Room for every worker's connection plus as many waiting in queues.
        maxconn: (4 * total_slots).max(4096),
        accepted_payload_size: cluster.lb.dns_payload,
        metrics_port: cluster.lb.metrics_port,
        stats_port: LB_STATS_PORT,
        pools,
    };
    let config = template::render("haproxy.cfg.j2", &context)?;
    let checksum = hex(&Sha256::digest(config.as_bytes()))[..16].to_string();
    let lb = lb_objects(cluster, &context, checksum)?;
    Ok(vec![
        File::new(path(cluster, CONFIG_FILE), config),
        yaml_file(cluster, LB_FILE, &lb)?,
    ])
}

/// Context of `templates/haproxy.cfg.j2`.
#[derive(Serialize)]
struct ConfigContext {
    header: String,
    maxconn: u64,
    /// Bytes of the largest DNS response the resolvers accept.
    accepted_payload_size: u64,
    metrics_port: u16,
    stats_port: u16,
    pools: Vec<PoolContext>,
}

#[derive(Serialize)]
struct PoolContext {
    name: String,
    max: u32,
    frontend: String,
    backend: String,
    port: u16,
    slots: u32,
    /// DNS name of the pool's headless Service: one A record per worker pod.
    servers: String,
    worker_port: u16,
    timeout_connect: String,
    timeout_client: String,
    timeout_server: String,
    timeout_queue: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Serialize)]
#[serde(untagged)]
enum Object {
    Deployment(Deployment),
    Service(Service),
    NetworkPolicy(NetworkPolicy),
}

type Deployment = Manifest<DeploymentSpec>;

#[derive(Serialize)]
struct DeploymentSpec {
    replicas: u32,
    selector: LabelSelector,
    template: PodTemplate,
}

#[derive(Serialize)]
struct PodTemplate {
    metadata: ObjectMeta,
    spec: PodSpec,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PodSpec {
    /// A soft stop waits for running builds; this bounds it.
    termination_grace_period_seconds: u64,
    containers: Vec<Container>,
    volumes: Vec<Volume>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Container {
    name: &'static str,
    image: String,
    args: Vec<String>,
    ports: Vec<ContainerPort>,
    resources: Resources,
    readiness_probe: Probe,
    lifecycle: Lifecycle,
    volume_mounts: Vec<VolumeMount>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    http_get: HttpGet,
    period_seconds: u32,
}

#[derive(Serialize)]
struct HttpGet {
    path: &'static str,
    port: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VolumeMount {
    name: &'static str,
    mount_path: &'static str,
    read_only: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Volume {
    name: &'static str,
    config_map: ConfigMapRef,
}

#[derive(Serialize)]
struct ConfigMapRef {
    name: String,
}

type Service = Manifest<ServiceSpec>;

#[derive(Serialize)]
struct ServiceSpec {
    selector: BTreeMap<String, String>,
    ports: Vec<ServicePort>,
}

/// The LB's preStop hook (`templates/soft_stop.sh.j2`): a soft stop that
/// lets running builds end, whatever stop signal the image declares.
fn soft_stop() -> Result<String, RenderError> {
    template::render("soft_stop.sh.j2", &())
}

fn lb_objects(
    cluster: &Cluster,
    config: &ConfigContext,
    checksum: String,
) -> Result<Vec<Object>, RenderError> {
    let ns = Some(cluster.namespace.as_str());
    let lb = &cluster.lb;
    let labels = || {
        let mut l = managed_labels(&[("app.kubernetes.io/part-of", &cluster.app)]);
        l.extend(lb_selector(cluster));
        l
    };
    let mut pod_meta = ObjectMeta::default().with_labels(labels());
    // The pods roll whenever haproxy.cfg changes, although the ConfigMap keeps its name.
    pod_meta
        .annotations
        .insert("poolc.dev/config-checksum".to_string(), checksum);
    // Every running build passes through this pod: Karpenter must not
    // consolidate its node away (the PDB in pdb.yaml holds off evictions).
    pod_meta.annotations.insert(
        "karpenter.sh/do-not-disrupt".to_string(),
        "true".to_string(),
    );

    let mut ports = vec![
        ContainerPort {
            name: "metrics".to_string(),
            container_port: config.metrics_port,
            protocol: "TCP",
        },
        ContainerPort {
            name: "stats".to_string(),
            container_port: config.stats_port,
            protocol: "TCP",
        },
    ];
    ports.extend(config.pools.iter().map(|p| ContainerPort {
        // Container port names are at most 15 characters; the port says enough.
        name: format!("ft-{}", p.port),
        container_port: p.port,
        protocol: "TCP",
    }));

    let deployment = Deployment {
        api_version: "apps/v1",
        kind: "Deployment",
        metadata: ObjectMeta::named(&lb.name, ns).with_labels(labels()),
        spec: DeploymentSpec {
            replicas: lb.replicas,
            selector: LabelSelector {
                match_labels: lb_selector(cluster),
            },
            template: PodTemplate {
                metadata: pod_meta,
                spec: PodSpec {
                    termination_grace_period_seconds: lb.grace_period.0,
                    containers: vec![Container {
                        name: "haproxy",
                        image: lb.image.clone(),
                        args: vec!["-f".to_string(), format!("{CONFIG_DIR}/{CONFIG_FILE}")],
                        ports,
                        resources: Resources::guaranteed("1".to_string(), "512Mi".to_string()),
                        readiness_probe: Probe {
                            http_get: HttpGet {
                                path: "/metrics",
                                port: "metrics".to_string(),
                            },
                            period_seconds: 10,
                        },
                        lifecycle: Lifecycle {
                            pre_stop: Handler {
                                exec: Exec {
                                    command: vec![
                                        "/bin/sh".to_string(),
                                        "-c".to_string(),
                                        soft_stop()?,
                                    ],
                                },
                            },
                        },
                        volume_mounts: vec![VolumeMount {
                            name: "config",
                            mount_path: CONFIG_DIR,
                            read_only: true,
                        }],
                    }],
                    volumes: vec![Volume {
                        name: "config",
                        config_map: ConfigMapRef {
                            name: config_map_name(cluster),
                        },
                    }],
                },
            },
        },
    };

    let clients = Service {
        api_version: "v1",
        kind: "Service",
        metadata: ObjectMeta::named(&lb.name, ns).with_labels(labels()),
        spec: ServiceSpec {
            selector: lb_selector(cluster),
            ports: config
                .pools
                .iter()
                .map(|p| ServicePort {
                    name: p.name.clone(),
                    port: p.port,
                    target_port: format!("ft-{}", p.port),
                    protocol: "TCP",
                })
                .collect(),
        },
    };

    let metrics = Service {
        api_version: "v1",
        kind: "Service",
        metadata: ObjectMeta::named(&lb.metrics_service, ns).with_labels(labels()),
        spec: ServiceSpec {
            selector: lb_selector(cluster),
            ports: vec![ServicePort {
                name: "metrics".to_string(),
                port: config.metrics_port,
                target_port: "metrics".to_string(),
                protocol: "TCP",
            }],
        },
    };

    // Where policies are enforced, the KEDA operator and Prometheus must
    // still reach the exporter, or the pools stop scaling.
    let namespace = Peer::namespace;
    let mut scrapers = vec![namespace(&cluster.monitoring.keda_namespace)];
    if cluster.monitoring.namespace != cluster.monitoring.keda_namespace {
        scrapers.push(namespace(&cluster.monitoring.namespace));
    }
    let policy = NetworkPolicy {
        api_version: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        metadata: ObjectMeta::named(&lb.name, ns).with_labels(labels()),
        spec: NetworkPolicySpec {
            pod_selector: LabelSelector {
                match_labels: lb_selector(cluster),
            },
            policy_types: vec!["Ingress"],
            ingress: vec![
                IngressRule {
                    // Empty: any namespace.
                    from: lb
                        .client_namespaces
                        .iter()
                        .map(|ns| namespace(ns))
                        .collect(),
                    ports: config
                        .pools
                        .iter()
                        .map(|p| PolicyPort {
                            protocol: "TCP",
                            port: p.port,
                        })
                        .collect(),
                },
                IngressRule {
                    from: scrapers,
                    ports: vec![PolicyPort {
                        protocol: "TCP",
                        port: config.metrics_port,
                    }],
                },
            ],
        },
    };

    Ok(vec![
        Object::Deployment(deployment),
        Object::Service(clients),
        Object::Service(metrics),
        Object::NetworkPolicy(policy),
    ])
}
