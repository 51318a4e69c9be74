//! Nodes for the pools: one Karpenter NodePool per (pool, instance type), the
//! first type weighted highest and the others as capacity fallbacks, plus the
//! cluster's EC2NodeClass. Limits come from the Model (2 × ceil(max / pods per
//! node) nodes), so they move with `max`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::k8s::{managed_labels, Manifest, ObjectMeta, POOL_KEY};
use super::{yaml_file, RenderError};
use crate::fileset::File;
use crate::model::{Cluster, NodePool, Pool};

pub const FILE: &str = "karpenter.yaml";

pub fn render(cluster: &Cluster) -> Result<Vec<File>, RenderError> {
    let mut objects = vec![Object::NodeClass(node_class(cluster))];
    for pool in &cluster.pools {
        for np in &pool.node_pools {
            objects.push(Object::NodePool(node_pool(cluster, pool, np)));
        }
    }
    Ok(vec![yaml_file(cluster, FILE, &objects)?])
}

#[derive(Serialize)]
#[serde(untagged)]
enum Object {
    NodeClass(Ec2NodeClass),
    NodePool(NodePoolObject),
}

type Ec2NodeClass = Manifest<NodeClassSpec>;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NodeClassSpec {
    role: String,
    ami_selector_terms: Vec<AmiTerm>,
    subnet_selector_terms: Vec<TagTerm>,
    security_group_selector_terms: Vec<TagTerm>,
    /// The local NVMe disks become one RAID0 volume for the build cache.
    instance_store_policy: &'static str,
    block_device_mappings: Vec<BlockDevice>,
}

#[derive(Serialize)]
struct AmiTerm {
    alias: String,
}

#[derive(Serialize)]
struct TagTerm {
    tags: BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BlockDevice {
    device_name: &'static str,
    ebs: Ebs,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Ebs {
    volume_size: String,
    volume_type: &'static str,
    encrypted: bool,
    delete_on_termination: bool,
}

type NodePoolObject = Manifest<NodePoolSpec>;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NodePoolSpec {
    weight: u32,
    limits: Limits,
    disruption: Disruption,
    template: NodeTemplate,
}

#[derive(Serialize)]
struct Limits {
    cpu: String,
    memory: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Disruption {
    consolidation_policy: &'static str,
    consolidate_after: &'static str,
    budgets: Vec<Budget>,
}

#[derive(Serialize)]
struct Budget {
    nodes: &'static str,
}

#[derive(Serialize)]
struct NodeTemplate {
    metadata: NodeMeta,
    spec: NodeSpec,
}

#[derive(Serialize)]
struct NodeMeta {
    labels: BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NodeSpec {
    node_class_ref: NodeClassRef,
    /// `Never` by default: expiry ignores budgets and do-not-disrupt.
    expire_after: String,
    /// At least the pods' grace period, so a replaced node's drains finish.
    termination_grace_period: String,
    requirements: Vec<Requirement>,
    taints: Vec<Taint>,
}

#[derive(Serialize)]
struct NodeClassRef {
    group: &'static str,
    kind: &'static str,
    name: String,
}

#[derive(Serialize)]
struct Requirement {
    key: &'static str,
    operator: &'static str,
    values: Vec<String>,
}

#[derive(Serialize)]
struct Taint {
    key: &'static str,
    value: String,
    effect: &'static str,
}

fn node_class(cluster: &Cluster) -> Ec2NodeClass {
    let nc = &cluster.node_class;
    let discovery = || TagTerm {
        tags: [(
            "karpenter.sh/discovery".to_string(),
            nc.discovery_tag.clone(),
        )]
        .into(),
    };
    Ec2NodeClass {
        api_version: "karpenter.k8s.aws/v1",
        kind: "EC2NodeClass",
        metadata: ObjectMeta::named(&nc.name, None).with_labels(managed_labels(&[(
            "app.kubernetes.io/part-of",
            &cluster.app,
        )])),
        spec: NodeClassSpec {
            role: nc.role.clone(),
            // Pinned: nodes drift to a new AMI only when the spec says so.
            ami_selector_terms: vec![AmiTerm {
                alias: nc.ami_alias.clone(),
            }],
            subnet_selector_terms: vec![discovery()],
            security_group_selector_terms: vec![discovery()],
            instance_store_policy: "RAID0",
            block_device_mappings: vec![BlockDevice {
                device_name: "/dev/xvda",
                ebs: Ebs {
                    volume_size: format!("{}Gi", nc.root_volume_gib),
                    volume_type: "gp3",
                    encrypted: true,
                    delete_on_termination: true,
                },
            }],
        },
    }
}

fn node_pool(cluster: &Cluster, pool: &Pool, np: &NodePool) -> NodePoolObject {
    let requirement = |key, value: &str| Requirement {
        key,
        operator: "In",
        values: vec![value.to_string()],
    };
    NodePoolObject {
        api_version: "karpenter.sh/v1",
        kind: "NodePool",
        metadata: ObjectMeta::named(&np.name, None).with_labels(managed_labels(&[
            ("app.kubernetes.io/part-of", &cluster.app),
            (POOL_KEY, &pool.name),
        ])),
        spec: NodePoolSpec {
            weight: np.weight,
            limits: Limits {
                cpu: np.limit_cpu.to_string(),
                memory: format!("{}Gi", np.limit_memory_gib),
            },
            // Only empty nodes go, one at a time, after a quiet spell: a
            // builder's node is never consolidated under a running build.
            disruption: Disruption {
                consolidation_policy: "WhenEmpty",
                consolidate_after: "5m",
                budgets: vec![Budget { nodes: "1" }],
            },
            template: NodeTemplate {
                metadata: NodeMeta {
                    labels: [(POOL_KEY.to_string(), pool.name.clone())].into(),
                },
                spec: NodeSpec {
                    node_class_ref: NodeClassRef {
                        group: "karpenter.k8s.aws",
                        kind: "EC2NodeClass",
                        name: cluster.node_class.name.clone(),
                    },
                    expire_after: pool
                        .node_lifetime
                        .expire_after
                        .map_or_else(|| "Never".to_string(), |d| d.compact()),
                    termination_grace_period: pool.node_lifetime.termination_grace_period.compact(),
                    requirements: vec![
                        requirement("kubernetes.io/arch", pool.arch.as_str()),
                        requirement("kubernetes.io/os", "linux"),
                        requirement("karpenter.sh/capacity-type", pool.capacity_type.as_str()),
                        requirement("node.kubernetes.io/instance-type", &np.instance_type.name),
                    ],
                    taints: vec![Taint {
                        key: POOL_KEY,
                        value: pool.name.clone(),
                        effect: "NoSchedule",
                    }],
                },
            },
        },
    }
}
