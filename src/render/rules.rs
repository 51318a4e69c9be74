//! Alerts and recording rules for every pool, from the same Model as the
//! manifests: the backend names, HPA names, thresholds and KEDA metric names
//! (which depend on the deployed KEDA version) cannot drift from what is
//! deployed. Each alert carries the scenarios that prove it: a failure that
//! must fire and healthy load that must not. `promtool_tests` writes them out.
//!
//! Written twice: a PrometheusRule for the operator and a plain rule file
//! (`prometheus/rules.yaml`) for promtool.

use std::collections::BTreeMap;

use serde::Serialize;

use super::alerts::scope_expr;
use super::k8s::{managed_labels, Manifest, ObjectMeta};
use super::{header, path, to_yaml, yaml_file, RenderError};
use crate::fileset::File;
use crate::model::Cluster;

pub const RULE_FILE: &str = "prometheusrule.yaml";
pub const PLAIN_RULE_FILE: &str = "prometheus/rules.yaml";

/// Recording rules, each with a `pool` label whatever its source's label.
pub use super::alerts::recording::{ALLOCATED, BUSY, DEFICIT, DEMAND, FLOOR, QUEUE, TARGET};
/// The alert names: the contract with whoever routes and silences them.
pub use super::alerts::{
    at_max::NAME as AT_MAX, lb_down::NAME as LB_DOWN, no_active_servers::NAME as NO_ACTIVE_SERVERS,
    node_limit::NAME as NODE_LIMIT, pending_jobs::NAME as PENDING_JOBS,
    queue_backlog::NAME as QUEUE_BACKLOG, scaled_job_errors::NAME as SCALED_JOB_ERRORS,
    scaled_object_errors::NAME as SCALED_OBJECT_ERRORS, scaler_errors::NAME as SCALER_ERRORS,
    warm_deficit::NAME as WARM_DEFICIT,
};

#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub name: String,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Rule {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    pub expr: String,
    #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An alert of one pool, with the behaviour its promtool test proves.
#[derive(Debug, Clone)]
pub struct Alert {
    pub pool: String,
    pub rule: Rule,
    pub scenarios: Vec<Scenario>,
}

/// Input series (promtool expanding notation, one sample per minute) and
/// whether the alert must be firing at `eval_minutes`.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub series: Vec<(String, String)>,
    pub eval_minutes: u64,
    /// The labels of the firing alert; None when it must not fire.
    pub fires: Option<BTreeMap<String, String>>,
}

pub fn render(cluster: &Cluster) -> Result<Vec<File>, RenderError> {
    let groups = groups(cluster);
    let rule = PrometheusRule {
        api_version: "monitoring.coreos.com/v1",
        kind: "PrometheusRule",
        metadata: {
            let mut labels = managed_labels(&[("app.kubernetes.io/part-of", &cluster.app)]);
            labels.extend(cluster.monitoring.labels.clone());
            ObjectMeta::named(format!("{}-pools", cluster.app), Some(&cluster.namespace))
                .with_labels(labels)
        },
        spec: RuleFile {
            groups: groups.clone(),
        },
    };
    let plain = header(cluster, "#") + &to_yaml(&RuleFile { groups }, PLAIN_RULE_FILE)?;
    Ok(vec![
        yaml_file(cluster, RULE_FILE, &[rule])?,
        File::new(path(cluster, PLAIN_RULE_FILE), plain),
    ])
}

type PrometheusRule = Manifest<RuleFile>;

#[derive(Serialize)]
struct RuleFile {
    groups: Vec<Group>,
}

/// The rule groups of a cluster: recording rules first (alerts read them).
pub fn groups(cluster: &Cluster) -> Vec<Group> {
    let mut recording = super::alerts::recording::rules(cluster);
    recording.extend(extra_recording(cluster));
    let mut alert_rules: Vec<Rule> = alerts(cluster).into_iter().map(|a| a.rule).collect();
    alert_rules.extend(extra_alerts(cluster));
    let mut groups = Vec::new();
    if !recording.is_empty() {
        groups.push(Group {
            name: format!("poolc.{}.recording", cluster.name),
            rules: recording,
        });
    }
    groups.push(Group {
        name: format!("poolc.{}.alerts", cluster.name),
        rules: alert_rules,
    });
    groups
}

/// Every generated alert with the scenarios that prove it.
pub fn alerts(cluster: &Cluster) -> Vec<Alert> {
    super::alerts::alerts(cluster)
}

/// Per-pool instances of the spec's own alerts (`$pool` replaced).
fn extra_alerts(cluster: &Cluster) -> Vec<Rule> {
    let mut out = Vec::new();
    for extra in &cluster.extra_rules.alerts {
        let extra = &extra.value;
        let per_pool = extra
            .per_pool
            .unwrap_or_else(|| extra.expr.value.contains("$pool"));
        let pools: Vec<Option<&str>> = if per_pool {
            cluster
                .pools
                .iter()
                .map(|p| Some(p.name.as_str()))
                .collect()
        } else {
            vec![None]
        };
        for pool in pools {
            let fill = |s: &str| match pool {
                Some(p) => s.replace("$pool", p),
                None => s.to_string(),
            };
            let mut labels = cluster.alert_labels.clone();
            labels.insert("severity".to_string(), "warning".to_string());
            labels.extend(extra.labels.iter().map(|(k, v)| (k.clone(), fill(v))));
            if let Some(p) = pool {
                labels.insert("pool".to_string(), p.to_string());
            }
            out.push(Rule {
                alert: Some(extra.alert.value.clone()),
                expr: scope_expr(cluster, &fill(&extra.expr.value)),
                for_: extra.for_.map(|s| s.compact()),
                labels,
                annotations: extra
                    .annotations
                    .iter()
                    .map(|(k, v)| (k.clone(), fill(v)))
                    .collect(),
                ..Default::default()
            });
        }
    }
    out
}

fn extra_recording(cluster: &Cluster) -> Vec<Rule> {
    cluster
        .extra_rules
        .recording
        .iter()
        .map(|r| &r.value)
        .map(|r| Rule {
            record: Some(r.record.value.clone()),
            expr: scope_expr(cluster, &r.expr.value),
            labels: r.labels.clone(),
            ..Default::default()
        })
        .collect()
}
