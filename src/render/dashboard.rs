//! A Grafana dashboard per cluster: demand, capacity, cold-boot risk and
//! autoscaler health of every pool. The datasource is a template variable
//! (never a hard-coded uid), and every selector is scoped by the external
//! labels (`env`, `cluster` by default): without that, a `max by (pool)`
//! silently merges environments that share pool names.

use serde::Serialize;
use serde_json::{json, Value};

use super::rules::{ALLOCATED, BUSY, DEFICIT, DEMAND, FLOOR, QUEUE, TARGET};
use super::{path, to_json, RenderError};
use crate::catalog::Version;
use crate::fileset::File;
use crate::model::Cluster;

pub const FILE: &str = "dashboards/pools.json";

pub fn render(cluster: &Cluster) -> Result<Vec<File>, RenderError> {
    let dashboard = dashboard(cluster);
    Ok(vec![File::new(
        path(cluster, FILE),
        to_json(&dashboard, FILE)?,
    )])
}

/// Every PromQL target of the cluster's dashboard, for the keep-lists and lint.
pub fn targets(cluster: &Cluster) -> Vec<String> {
    rows(cluster)
        .into_iter()
        .flat_map(|(_, panels)| panels)
        .flat_map(|p| p.targets.into_iter().map(|t| t.expr))
        .collect()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Dashboard {
    uid: String,
    title: String,
    description: String,
    tags: Vec<&'static str>,
    timezone: &'static str,
    editable: bool,
    graph_tooltip: u8,
    time: Time,
    refresh: &'static str,
    schema_version: u32,
    version: u32,
    annotations: Value,
    templating: Templating,
    panels: Vec<Value>,
}

#[derive(Serialize)]
struct Time {
    from: &'static str,
    to: &'static str,
}

#[derive(Serialize)]
struct Templating {
    list: Vec<Value>,
}

struct PanelDef {
    title: &'static str,
    description: String,
    unit: &'static str,
    targets: Vec<TargetDef>,
}

struct TargetDef {
    expr: String,
    legend: &'static str,
}

fn target(expr: String, legend: &'static str) -> TargetDef {
    TargetDef { expr, legend }
}

/// `{namespace="…", env="$env", cluster="$cluster", extra…}`.
fn scope(cluster: &Cluster, extra: &str) -> String {
    let mut matchers = vec![format!(r#"namespace="{}""#, cluster.namespace)];
    matchers.extend(
        cluster
            .monitoring
            .external_labels
            .iter()
            .map(|l| format!(r#"{l}="${l}""#)),
    );
    if !extra.is_empty() {
        matchers.push(extra.to_string());
    }
    format!("{{{}}}", matchers.join(", "))
}

/// Karpenter's metrics carry its own namespace, so only the external labels scope them.
fn scope_global(cluster: &Cluster, extra: &str) -> String {
    let mut matchers: Vec<String> = cluster
        .monitoring
        .external_labels
        .iter()
        .map(|l| format!(r#"{l}="${l}""#))
        .collect();
    matchers.push(extra.to_string());
    format!("{{{}}}", matchers.join(", "))
}

/// The panels, less the targets that read the `poolc:` recording rules
/// when the cluster has no service pool: those rules are only recorded for
/// pools behind the LB, and a target on a series nobody records is an
/// unknown metric to the PromQL gate.
fn rows(cluster: &Cluster) -> Vec<(&'static str, Vec<PanelDef>)> {
    let mut rows = all_rows(cluster);
    if cluster.pools.iter().any(|p| p.lb.is_some()) {
        return rows;
    }
    let recorded = [ALLOCATED, BUSY, DEFICIT, DEMAND, FLOOR, QUEUE, TARGET];
    for (_, panels) in &mut rows {
        for panel in panels.iter_mut() {
            panel
                .targets
                .retain(|t| !recorded.iter().any(|r| t.expr.contains(r)));
        }
        panels.retain(|p| !p.targets.is_empty());
    }
    rows.retain(|(_, panels)| !panels.is_empty());
    rows
}

fn all_rows(cluster: &Cluster) -> Vec<(&'static str, Vec<PanelDef>)> {
    let app = &cluster.app;
    let s = |extra: &str| scope(cluster, extra);
    let pools = r#"pool=~"$pool""#;
    let hpa = format!(r#"horizontalpodautoscaler=~"keda-hpa-{app}-.+""#);
    let (scaler_errors, object_errors) = if cluster.exporters.keda >= Version::new(2, 14) {
        (
            "keda_scaler_detail_errors_total",
            "keda_scaled_object_errors_total",
        )
    } else {
        ("keda_scaler_errors", "keda_scaled_object_errors")
    };
    let nodepools = format!(r#"nodepool=~"{app}-.+""#);
    // KEDA's `namespace` is the ScaledObject's only when the scrape honors it.
    let keda_scope = |extra: &str| {
        let s = s(extra);
        if cluster.monitoring.keda_honor_labels {
            s
        } else {
            s.replacen("{namespace=", "{exported_namespace=", 1)
        }
    };
    let window = cluster
        .pools
        .iter()
        .map(|p| super::alerts::scaler_errors::error_window(cluster, p))
        .max()
        .unwrap_or(900);
    vec![
        (
            "Demand",
            vec![
                PanelDef {
                    title: "Queued builds",
                    description: "Connections waiting in each pool's LB backend for a free worker. A queue that stays up means the pool cannot absorb its load (PoolQueueBacklog).".to_string(),
                    unit: "short",
                    targets: vec![target(format!("sum by (pool) ({QUEUE}{})", s(pools)), "{{pool}}")],
                },
                PanelDef {
                    title: "Demand and busy workers",
                    description: "Demand: builds running plus queued on each pool's LB backend (haproxy_backend_current_sessions counts both), the autoscaler's input. Busy: builds running, one per busy worker (demand minus the queue).".to_string(),
                    unit: "short",
                    targets: vec![
                        target(format!("sum by (pool) ({DEMAND}{})", s(pools)), "demand {{pool}}"),
                        target(format!("sum by (pool) ({BUSY}{})", s(pools)), "busy {{pool}}"),
                    ],
                },
                PanelDef {
                    title: "Queue time",
                    description: "Average time a build waited in the LB queue, over the last 1024 connections of each backend.".to_string(),
                    unit: "s",
                    targets: vec![target(
                        format!(
                            "max by (proxy) (haproxy_backend_queue_time_average_seconds{})",
                            s(r#"proxy=~"bk_.+""#)
                        ),
                        "{{proxy}}",
                    )],
                },
            ],
        ),
        (
            "Capacity",
            vec![
                PanelDef {
                    title: "Replicas: desired, current, available",
                    description: "What the autoscaler wants, what the Deployment has, and what is ready, per pool. Compare with the min and max lines.".to_string(),
                    unit: "short",
                    targets: vec![
                        target(format!("sum by (horizontalpodautoscaler) (kube_horizontalpodautoscaler_status_desired_replicas{})", s(&hpa)), "desired {{horizontalpodautoscaler}}"),
                        target(format!("sum by (horizontalpodautoscaler) (kube_horizontalpodautoscaler_status_current_replicas{})", s(&hpa)), "current {{horizontalpodautoscaler}}"),
                        target(format!("sum by (pool) ({ALLOCATED}{})", s(pools)), "available {{pool}}"),
                        target(format!("sum by (pool) ({FLOOR}{})", s(pools)), "min {{pool}}"),
                        target(format!("sum by (horizontalpodautoscaler) (kube_horizontalpodautoscaler_spec_max_replicas{})", s(&hpa)), "max {{horizontalpodautoscaler}}"),
                    ],
                },
                PanelDef {
                    title: "NodePool CPU: usage and limit",
                    description: "CPU cores Karpenter has provisioned for each NodePool against its limit. At the limit no node can be added (PoolNodeLimitReached).".to_string(),
                    unit: "short",
                    targets: vec![
                        target(format!(r#"max by (nodepool) (karpenter_nodepools_usage{})"#, scope_global(cluster, &format!(r#"resource_type="cpu", {nodepools}"#))), "usage {{nodepool}}"),
                        target(format!(r#"max by (nodepool) (karpenter_nodepools_limit{})"#, scope_global(cluster, &format!(r#"resource_type="cpu", {nodepools}"#))), "limit {{nodepool}}"),
                    ],
                },
            ],
        ),
        (
            "Cold-boot risk",
            vec![
                PanelDef {
                    title: "Warm deficit",
                    description: "max(0, min(demand + floor, target) − max(allocated, demand)): warm workers a pool should have and does not, beyond the work in hand. Above 0, new builds start on cold pods (PoolWarmDeficit).".to_string(),
                    unit: "short",
                    targets: vec![target(format!("sum by (pool) ({DEFICIT}{})", s(pools)), "{{pool}}")],
                },
                PanelDef {
                    title: "Target and allocated",
                    description: "The pool's full ask (desired replicas) against what it got (available replicas).".to_string(),
                    unit: "short",
                    targets: vec![
                        target(format!("sum by (pool) ({TARGET}{})", s(pools)), "target {{pool}}"),
                        target(format!("sum by (pool) ({ALLOCATED}{})", s(pools)), "allocated {{pool}}"),
                    ],
                },
            ],
        ),
        (
            "Autoscaler health",
            vec![
                PanelDef {
                    title: "Scaler errors",
                    description: format!("Failed metric reads per ScaledObject. After failureThreshold consecutive failures KEDA pins the pool at its fallback replicas ({scaler_errors})."),
                    unit: "short",
                    targets: vec![target(format!("sum by (scaledObject) (increase({scaler_errors}{}[$__rate_interval]))", keda_scope("")), "{{scaledObject}}")],
                },
                PanelDef {
                    title: "ScaledObject errors",
                    description: format!("Reconcile errors per ScaledObject ({object_errors})."),
                    unit: "short",
                    targets: vec![target(format!("sum by (scaledObject) (increase({object_errors}{}[$__rate_interval]))", keda_scope("")), "{{scaledObject}}")],
                },
                PanelDef {
                    title: "Fallback engaged",
                    description: "1 while a pool's autoscaler has failed at least failureThreshold reads in the error window (PoolScalerErrors): KEDA holds it at the fallback replicas instead of following load.".to_string(),
                    unit: "bool",
                    targets: vec![target(
                        format!(
                            "floor(sum by (scaledObject) (increase({scaler_errors}{}[{}]))) >= bool {}",
                            keda_scope(""),
                            crate::spec::Seconds(window).compact(),
                            cluster.pools.iter().map(|p| p.failure_threshold).min().unwrap_or(3)
                        ),
                        "{{scaledObject}}",
                    )],
                },
            ],
        ),
    ]
}

fn dashboard(cluster: &Cluster) -> Dashboard {
    let datasource = json!({"type": "prometheus", "uid": "${datasource}"});
    let mut list = vec![json!({
        "type": "datasource",
        "name": "datasource",
        "label": "Data source",
        "query": "prometheus",
        "hide": 0,
        "current": {"text": "default", "value": "default"}
    })];
    // Each external label chains on the previous ones.
    let mut chain: Vec<String> = Vec::new();
    for label in &cluster.monitoring.external_labels {
        let current = if label == "cluster" {
            cluster.name.clone()
        } else if label == "env" {
            cluster.environment.clone()
        } else {
            String::new()
        };
        let selector = if chain.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", chain.join(", "))
        };
        let query = format!("label_values(haproxy_backend_current_sessions{selector}, {label})");
        list.push(json!({
            "type": "query",
            "name": label,
            "label": label,
            "datasource": datasource,
            "query": query,
            "definition": query,
            "refresh": 1,
            "sort": 1,
            "hide": 0,
            "current": {"text": current, "value": current}
        }));
        chain.push(format!(r#"{label}="${label}""#));
    }
    // The spec lists the pools, so the variable does too: a query would come
    // back empty for pools whose series do not exist yet (or ever, for jobs
    // pools, which have no LB backend).
    let pools: Vec<&str> = cluster.pools.iter().map(|p| p.name.as_str()).collect();
    list.push(json!({
        "type": "custom",
        "name": "pool",
        "label": "pool",
        // Grafana builds a custom variable's options from this list on load.
        "query": pools.join(","),
        "hide": 0,
        "multi": true,
        "includeAll": true,
        "allValue": ".+",
        "current": {"text": "All", "value": "$__all"}
    }));

    let mut panels = Vec::new();
    let mut id = 1;
    let mut y = 0;
    for (title, defs) in rows(cluster) {
        panels.push(json!({
            "type": "row",
            "id": id,
            "title": title,
            "collapsed": false,
            "panels": [],
            "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}
        }));
        id += 1;
        y += 1;
        let width = 24 / defs.len().max(1) as u32;
        for (i, def) in defs.into_iter().enumerate() {
            let targets: Vec<Value> = def
                .targets
                .iter()
                .enumerate()
                .map(|(n, t)| {
                    json!({
                        "refId": ref_id(n),
                        "datasource": datasource,
                        "expr": t.expr,
                        "legendFormat": t.legend,
                        "range": true
                    })
                })
                .collect();
            panels.push(json!({
                "type": "timeseries",
                "id": id,
                "title": def.title,
                "description": def.description,
                "datasource": datasource,
                "gridPos": {"h": 8, "w": width, "x": width * i as u32, "y": y},
                "fieldConfig": {"defaults": {"unit": def.unit, "min": 0}, "overrides": []},
                "options": {"legend": {"displayMode": "table", "placement": "right", "calcs": ["max", "lastNotNull"]}},
                "targets": targets
            }));
            id += 1;
        }
        y += 8;
    }

    let tags = vec!["ci", "poolc"];
    Dashboard {
        uid: format!("poolc-{}", cluster.name),
        title: format!("CI pools: {} ({})", cluster.name, cluster.environment),
        description: format!(
            "generated by poolc from {} — do not edit",
            super::comment_text(&cluster.source)
        ),
        tags,
        timezone: "utc",
        editable: false,
        graph_tooltip: 1,
        time: Time {
            from: "now-24h",
            to: "now",
        },
        refresh: "1m",
        schema_version: 39,
        version: 1,
        annotations: json!({"list": []}),
        templating: Templating { list },
        panels,
    }
}

fn ref_id(n: usize) -> String {
    char::from(b'A' + (n % 26) as u8).to_string()
}
