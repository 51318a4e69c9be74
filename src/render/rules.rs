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

use super::k8s::{managed_labels, ObjectMeta};
use super::{header, path, to_yaml, yaml_file, RenderError};
use crate::catalog::Version;
use crate::fileset::File;
use crate::model::{Backend, Cluster, Jobs, Pool};
use crate::promql;

pub const RULE_FILE: &str = "prometheusrule.yaml";
pub const PLAIN_RULE_FILE: &str = "prometheus/rules.yaml";

/// The alert names: the contract with whoever routes and silences them.
pub const QUEUE_BACKLOG: &str = "PoolQueueBacklog";
pub const SCALER_ERRORS: &str = "PoolScalerErrors";
pub const SCALED_OBJECT_ERRORS: &str = "PoolScaledObjectErrors";
pub const SCALED_JOB_ERRORS: &str = "PoolScaledJobErrors";
pub const AT_MAX: &str = "PoolAtMaxReplicas";
pub const NODE_LIMIT: &str = "PoolNodeLimitReached";
pub const NO_ACTIVE_SERVERS: &str = "PoolNoActiveServers";
pub const WARM_DEFICIT: &str = "PoolWarmDeficit";
pub const PENDING_JOBS: &str = "PoolPendingJobs";

/// Recording rules, each with a `pool` label whatever its source's label.
pub const BUSY: &str = "poolc:pool_busy:sessions";
pub const QUEUE: &str = "poolc:pool_queue:connections";
pub const TARGET: &str = "poolc:pool_target:replicas";
pub const ALLOCATED: &str = "poolc:pool_allocated:replicas";
pub const FLOOR: &str = "poolc:pool_floor:replicas";
pub const DEFICIT: &str = "poolc:pool_warm_deficit:replicas";

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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PrometheusRule {
    api_version: &'static str,
    kind: &'static str,
    metadata: ObjectMeta,
    spec: RuleFile,
}

#[derive(Serialize)]
struct RuleFile {
    groups: Vec<Group>,
}

/// The rule groups of a cluster: recording rules first (alerts read them).
pub fn groups(cluster: &Cluster) -> Vec<Group> {
    let mut recording = recording_rules(cluster);
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

fn service_pools(cluster: &Cluster) -> impl Iterator<Item = (&Pool, &Backend)> {
    cluster
        .pools
        .iter()
        .filter_map(|p| p.lb.as_ref().map(|b| (p, b)))
}

/// `label_replace` that turns a source label carrying `<prefix><pool>` into `pool`.
fn normalize(metric: &str, ns: &str, label: &str, prefix: &str, pools: &[&str]) -> String {
    let names: Vec<String> = pools.iter().map(|p| format!("{prefix}{p}")).collect();
    format!(
        r#"sum by (namespace, pool) (label_replace({metric}{{namespace="{ns}", {label}=~"{}"}}, "pool", "$1", "{label}", "{prefix}(.+)"))"#,
        names.join("|")
    )
}

fn recording_rules(cluster: &Cluster) -> Vec<Rule> {
    let pools: Vec<&str> = service_pools(cluster)
        .map(|(p, _)| p.name.as_str())
        .collect();
    if pools.is_empty() {
        return Vec::new();
    }
    let ns = &cluster.namespace;
    let app = &cluster.app;
    let record = |name: &str, expr: String| Rule {
        record: Some(name.to_string()),
        expr,
        ..Default::default()
    };
    vec![
        record(
            BUSY,
            normalize(
                "haproxy_backend_current_sessions",
                ns,
                "proxy",
                "bk_",
                &pools,
            ),
        ),
        record(
            QUEUE,
            normalize("haproxy_backend_current_queue", ns, "proxy", "bk_", &pools),
        ),
        record(
            TARGET,
            normalize(
                "kube_horizontalpodautoscaler_status_desired_replicas",
                ns,
                "horizontalpodautoscaler",
                &format!("keda-hpa-{app}-"),
                &pools,
            ),
        ),
        record(
            ALLOCATED,
            normalize(
                "kube_deployment_status_replicas_available",
                ns,
                "deployment",
                &format!("{app}-"),
                &pools,
            ),
        ),
        record(
            FLOOR,
            normalize(
                "kube_horizontalpodautoscaler_spec_min_replicas",
                ns,
                "horizontalpodautoscaler",
                &format!("keda-hpa-{app}-"),
                &pools,
            ),
        ),
        // max(0, min(busy + floor, target) − allocated): the warm pods the pool
        // should have and does not. Clamped at target so that load beyond
        // max (starvation) is not counted as a lost warm floor.
        record(
            DEFICIT,
            format!("clamp_min((({BUSY} + {FLOOR} < {TARGET}) or {TARGET}) - {ALLOCATED}, 0)"),
        ),
    ]
}

/// The KEDA counters that exist in the deployed version.
struct KedaErrors {
    scaler: &'static str,
    scaled_object: &'static str,
    scaled_job: Option<&'static str>,
}

fn keda_errors(version: Version) -> KedaErrors {
    if version >= Version::new(2, 14) {
        KedaErrors {
            scaler: "keda_scaler_detail_errors_total",
            scaled_object: "keda_scaled_object_errors_total",
            scaled_job: Some("keda_scaled_job_errors_total"),
        }
    } else {
        KedaErrors {
            scaler: "keda_scaler_errors",
            scaled_object: "keda_scaled_object_errors",
            scaled_job: (version >= Version::new(2, 13)).then_some("keda_scaled_job_errors"),
        }
    }
}

/// Labels of a KEDA per-scaler series (2.13+ names; older ones have `scalerIndex`).
fn scaler_series(metric: &str, version: Version, ns: &str, so: &str, kind: &str) -> String {
    let index = if version >= Version::new(2, 13) {
        format!(r#"triggerIndex="0", type="{kind}""#)
    } else {
        r#"scalerIndex="0""#.to_string()
    };
    format!(
        r#"{metric}{{namespace="{ns}", metric="s0-trigger", scaledObject="{so}", scaler="trigger", {index}}}"#
    )
}

pub fn alerts(cluster: &Cluster) -> Vec<Alert> {
    let mut out = Vec::new();
    for pool in &cluster.pools {
        let b = AlertBuilder { cluster, pool };
        if let Some(backend) = &pool.lb {
            out.push(b.queue_backlog(backend));
            if pool.min >= 1 {
                out.push(b.no_active_servers(backend));
            }
            out.push(b.warm_deficit());
            out.push(b.at_max());
        }
        if let Some(jobs) = &pool.jobs {
            out.push(b.pending_jobs(jobs));
        }
        out.push(b.scaler_errors());
        out.extend(b.resource_errors());
        for np in &pool.node_pools {
            out.push(b.node_limit(np));
        }
    }
    out
}

struct AlertBuilder<'a> {
    cluster: &'a Cluster,
    pool: &'a Pool,
}

impl AlertBuilder<'_> {
    fn rule(
        &self,
        alert: &str,
        expr: String,
        for_: Option<u64>,
        summary: String,
        description: String,
    ) -> Rule {
        let mut labels = self.cluster.alert_labels.clone();
        labels.insert("severity".to_string(), self.pool.alerts.severity.clone());
        labels.insert("pool".to_string(), self.pool.name.clone());
        let mut annotations = BTreeMap::new();
        annotations.insert("summary".to_string(), summary);
        annotations.insert("description".to_string(), description);
        if let Some(base) = &self.cluster.runbook_url {
            annotations.insert(
                "runbook_url".to_string(),
                format!("{}/{}", base.trim_end_matches('/'), alert.to_lowercase()),
            );
        }
        Rule {
            alert: Some(alert.to_string()),
            expr,
            for_: for_.map(|s| crate::spec::Seconds(s).compact()),
            labels,
            annotations,
            ..Default::default()
        }
    }

    /// The labels a firing alert carries: the rule's plus the expression's.
    fn fired(&self, rule: &Rule, from_expr: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut labels = rule.labels.clone();
        for (k, v) in from_expr {
            labels.insert(k.to_string(), v.to_string());
        }
        labels
    }

    fn ns(&self) -> &str {
        &self.cluster.namespace
    }

    fn alert(&self, rule: Rule, scenarios: Vec<Scenario>) -> Alert {
        Alert {
            pool: self.pool.name.clone(),
            rule,
            scenarios,
        }
    }

    fn queue_backlog(&self, backend: &Backend) -> Alert {
        let (p, t) = (&self.pool.name, self.pool.alerts.queue_backlog);
        let hold = self.pool.alerts.queue_backlog_for.0;
        let rule = self.rule(
            QUEUE_BACKLOG,
            format!(r#"{QUEUE}{{namespace="{}", pool="{p}"}} > {t}"#, self.ns()),
            Some(hold),
            format!("Builds pile up in front of pool {p}"),
            format!(
                "More than {t} builds have waited in the {} queue for {}: more work arrives than pool {p} absorbs. Check whether it is at max or its nodes cannot start.",
                backend.backend,
                crate::spec::Seconds(hold).compact()
            ),
        );
        let series = |values: String| {
            vec![(
                format!(
                    r#"haproxy_backend_current_queue{{namespace="{}", proxy="{}"}}"#,
                    self.ns(),
                    backend.backend
                ),
                values,
            )]
        };
        let minutes = hold / 60;
        let fired = self.fired(&rule, &[("namespace", self.ns())]);
        // Batches of 2 arriving at minutes 0, 3, 10 and 14 keep the queue
        // non-empty while scale-up takes 7–8 minutes: healthy.
        let bursts = "2 2 2 4 4 4 4 4 2 2 4 4 4 4 6 6 6 4 4 2 2 0 0 0 0 0 0 0 0 0 0".to_string();
        let spike = format!(
            "0 {}x{} 0x{}",
            t + 5,
            minutes.saturating_sub(5).max(1),
            minutes + 10
        );
        let scenarios = vec![
            Scenario {
                name: format!("{p}: healthy bursts queue a few builds for a while"),
                series: series(bursts),
                eval_minutes: 20,
                fires: None,
            },
            Scenario {
                name: format!(
                    "{p}: a spike above {t} shorter than {}",
                    crate::spec::Seconds(hold).compact()
                ),
                series: series(spike),
                eval_minutes: minutes + 5,
                fires: None,
            },
            Scenario {
                name: format!("{p}: the queue stays above {t}"),
                series: series(format!("{}x{}", t + 5, minutes + 10)),
                eval_minutes: minutes + 5,
                fires: Some(fired),
            },
        ];
        self.alert(rule, scenarios)
    }

    fn no_active_servers(&self, backend: &Backend) -> Alert {
        let p = &self.pool.name;
        let rule = self.rule(
            NO_ACTIVE_SERVERS,
            format!(
                r#"max by (namespace, proxy) (haproxy_backend_active_servers{{namespace="{}", proxy="{}"}}) == 0"#,
                self.ns(),
                backend.backend
            ),
            Some(300),
            format!("Pool {p} has no worker the LB can reach"),
            format!(
                "Backend {} has had no UP server for 5m although min is {}: every build to pool {p} waits or fails. Check the worker pods and the {} Service.",
                backend.backend, self.pool.min, backend.pods_service
            ),
        );
        let series = |values: String| {
            vec![(
                format!(
                    r#"haproxy_backend_active_servers{{namespace="{}", proxy="{}"}}"#,
                    self.ns(),
                    backend.backend
                ),
                values,
            )]
        };
        let fired = self.fired(
            &rule,
            &[("namespace", self.ns()), ("proxy", &backend.backend)],
        );
        let min = self.pool.min;
        self.alert(
            rule,
            vec![
                Scenario {
                    name: format!("{p}: a rolling restart drops to 0 servers for 2m"),
                    series: series(format!("{min}x5 0x2 {min}x10")),
                    eval_minutes: 8,
                    fires: None,
                },
                Scenario {
                    name: format!("{p}: no server for 10m"),
                    series: series("0x15".to_string()),
                    eval_minutes: 10,
                    fires: Some(fired),
                },
            ],
        )
    }

    /// Series for the warm-deficit inputs: sessions, desired, min, available.
    fn deficit_series(&self, busy: &str, target: &str, allocated: &str) -> Vec<(String, String)> {
        let (ns, app, p) = (self.ns(), &self.cluster.app, &self.pool.name);
        vec![
            (
                format!(r#"haproxy_backend_current_sessions{{namespace="{ns}", proxy="bk_{p}"}}"#),
                busy.to_string(),
            ),
            (
                format!(
                    r#"kube_horizontalpodautoscaler_status_desired_replicas{{namespace="{ns}", horizontalpodautoscaler="keda-hpa-{app}-{p}"}}"#
                ),
                target.to_string(),
            ),
            (
                format!(
                    r#"kube_horizontalpodautoscaler_spec_min_replicas{{namespace="{ns}", horizontalpodautoscaler="keda-hpa-{app}-{p}"}}"#
                ),
                format!("{}x40", self.pool.min),
            ),
            (
                format!(
                    r#"kube_deployment_status_replicas_available{{namespace="{ns}", deployment="{app}-{p}"}}"#
                ),
                allocated.to_string(),
            ),
        ]
    }

    fn warm_deficit(&self) -> Alert {
        let p = &self.pool.name;
        let hold = self.pool.alerts.warm_deficit_for.0;
        let rule = self.rule(
            WARM_DEFICIT,
            format!(r#"{DEFICIT}{{namespace="{}", pool="{p}"}} > 0"#, self.ns()),
            Some(hold),
            format!("Pool {p} runs without its warm floor"),
            format!(
                "Pool {p} has had fewer ready workers than min(busy + floor, target) for {}: new builds start cold. Check for pods that cannot be scheduled or nodes that do not come up.",
                crate::spec::Seconds(hold).compact()
            ),
        );
        let min = u64::from(self.pool.min);
        let max = u64::from(self.pool.max);
        let minutes = hold / 60;
        // Demand beyond max: target is max and all max are allocated; the
        // pool is starved, not short of warm pods.
        let starved = self.deficit_series(
            &format!("{}x40", max + 20),
            &format!("{max}x40"),
            &format!("{max}x40"),
        );
        // A burst: the target jumps and allocation catches up within 8 minutes.
        let catch_up = self.deficit_series(
            &format!("0x5 {max}x35"),
            &format!("{min}x5 {max}x35"),
            &format!("{min}x12 {max}x28"),
        );
        // Floor pods missing for good.
        let lost = self.deficit_series(
            "0x40",
            &format!("{min}x40"),
            &format!("{}x40", min.saturating_sub(1)),
        );
        let fired = self.fired(&rule, &[("namespace", self.ns())]);
        self.alert(
            rule,
            vec![
                Scenario {
                    name: format!("{p}: load beyond max is starvation, not a warm deficit"),
                    series: starved,
                    eval_minutes: minutes + 5,
                    fires: None,
                },
                Scenario {
                    name: format!("{p}: allocation catches up with a burst"),
                    series: catch_up,
                    eval_minutes: 5 + minutes,
                    fires: None,
                },
                Scenario {
                    name: format!("{p}: a floor pod is missing for good"),
                    series: lost,
                    eval_minutes: minutes + 5,
                    fires: Some(fired),
                },
            ],
        )
    }

    fn at_max(&self) -> Alert {
        let (p, max) = (&self.pool.name, self.pool.max);
        let hold = self.pool.alerts.at_max_for.0;
        let rule = self.rule(
            AT_MAX,
            format!(r#"{TARGET}{{namespace="{}", pool="{p}"}} >= {max}"#, self.ns()),
            Some(hold),
            format!("Pool {p} is pinned at its max of {max}"),
            format!(
                "The autoscaler has wanted all {max} workers of pool {p} for {}: builds queue beyond the ceiling. Raise max (the NodePool limits follow) if this is the new normal.",
                crate::spec::Seconds(hold).compact()
            ),
        );
        let minutes = hold / 60;
        let series = |target: String| {
            self.deficit_series(
                &format!("{max}x{}", minutes + 20),
                &target,
                &format!("{max}x{}", minutes + 20),
            )
        };
        let fired = self.fired(&rule, &[("namespace", self.ns())]);
        let min = self.pool.min;
        self.alert(
            rule,
            vec![
                Scenario {
                    name: format!("{p}: at max for 10m during a burst"),
                    series: series(format!("{min}x5 {max}x10 {min}x{}", minutes + 5)),
                    eval_minutes: minutes + 5,
                    fires: None,
                },
                Scenario {
                    name: format!("{p}: at max for good"),
                    series: series(format!("{max}x{}", minutes + 20)),
                    eval_minutes: minutes + 5,
                    fires: Some(fired),
                },
            ],
        )
    }

    fn pending_jobs(&self, jobs: &Jobs) -> Alert {
        let (p, t) = (&self.pool.name, self.pool.alerts.pending_jobs);
        let hold = self.pool.alerts.pending_jobs_for.0;
        let rule = self.rule(
            PENDING_JOBS,
            format!("({}) > {t}", jobs.query),
            Some(hold),
            format!("Jobs for pool {p} wait for agents"),
            format!(
                "More than {t} jobs have been pending for {}: pool {p} (max {}) does not start agents fast enough. Check the ScaledJob and node capacity.",
                crate::spec::Seconds(hold).compact(),
                self.pool.max
            ),
        );
        let minutes = hold / 60;
        // A scenario needs input series that make the query's value known:
        // a single selector with equality matchers, under at most one
        // sum/max/min/avg. Anything else is tested by the user's own rules.
        let Some(series) = single_series(&jobs.query) else {
            return self.alert(rule, Vec::new());
        };
        let fired = self.fired(&rule, &[]);
        self.alert(
            rule,
            vec![
                Scenario {
                    name: format!("{p}: a batch of {} jobs drains within 10m", t * 2),
                    series: vec![(series.clone(), format!("{}x10 0x{}", t * 2, minutes + 10))],
                    eval_minutes: minutes + 5,
                    fires: None,
                },
                Scenario {
                    name: format!("{p}: jobs stay pending"),
                    series: vec![(series, format!("{}x{}", t + 5, minutes + 10))],
                    eval_minutes: minutes + 5,
                    fires: Some(fired),
                },
            ],
        )
    }

    fn scaler_errors(&self) -> Alert {
        let p = &self.pool.name;
        let version = self.cluster.exporters.keda;
        let metric = keda_errors(version).scaler;
        let f = self.pool.failure_threshold;
        let so = &self.pool.workload;
        let rule = self.rule(
            SCALER_ERRORS,
            format!(
                r#"sum by (namespace, scaledObject) (increase({metric}{{namespace="{}", scaledObject="{so}"}}[15m])) > {f}"#,
                self.ns()
            ),
            None,
            format!("The autoscaler of pool {p} cannot read its metric"),
            format!(
                "The scaler of {so} failed more than {f} times in 15m, KEDA's failure threshold{}. Check the trigger's source.",
                if self.pool.fallback.is_some() {
                    ": the pool is pinned at its fallback replicas"
                } else {
                    ", and the pool has no fallback: it stops scaling"
                }
            ),
        );
        let kind = if self.pool.jobs.is_some() {
            "scaledjob"
        } else {
            "scaledobject"
        };
        let series = |values: &str| {
            vec![(
                scaler_series(metric, version, self.ns(), so, kind),
                values.to_string(),
            )]
        };
        let fired = self.fired(&rule, &[("namespace", self.ns()), ("scaledObject", so)]);
        self.alert(
            rule,
            vec![
                Scenario {
                    name: format!("{p}: one scaler error that recovers"),
                    series: series("0x5 1x30"),
                    eval_minutes: 15,
                    fires: None,
                },
                Scenario {
                    name: format!("{p}: the scaler fails every minute"),
                    series: series("0+1x30"),
                    eval_minutes: 20,
                    fires: Some(fired),
                },
            ],
        )
    }

    fn resource_errors(&self) -> Option<Alert> {
        let p = &self.pool.name;
        let names = keda_errors(self.cluster.exporters.keda);
        let (alert, metric, label, what) = if self.pool.jobs.is_some() {
            (
                SCALED_JOB_ERRORS,
                names.scaled_job?,
                "scaledJob",
                "ScaledJob",
            )
        } else {
            (
                SCALED_OBJECT_ERRORS,
                names.scaled_object,
                "scaledObject",
                "ScaledObject",
            )
        };
        let f = self.pool.failure_threshold;
        let name = &self.pool.workload;
        let rule = self.rule(
            alert,
            format!(
                r#"sum by (namespace, {label}) (increase({metric}{{namespace="{}", {label}="{name}"}}[15m])) > {f}"#,
                self.ns()
            ),
            None,
            format!("KEDA cannot reconcile the {what} of pool {p}"),
            format!("The {what} {name} failed to reconcile more than {f} times in 15m. `kubectl describe` it for the reason."),
        );
        let series = |values: &str| {
            vec![(
                format!(r#"{metric}{{namespace="{}", {label}="{name}"}}"#, self.ns()),
                values.to_string(),
            )]
        };
        let fired = self.fired(&rule, &[("namespace", self.ns()), (label, name)]);
        Some(self.alert(
            rule,
            vec![
                Scenario {
                    name: format!("{p}: one reconcile error that recovers"),
                    series: series("0x5 1x30"),
                    eval_minutes: 15,
                    fires: None,
                },
                Scenario {
                    name: format!("{p}: reconciles keep failing"),
                    series: series("0+1x30"),
                    eval_minutes: 20,
                    fires: Some(fired),
                },
            ],
        ))
    }

    fn node_limit(&self, np: &crate::model::NodePool) -> Alert {
        let p = &self.pool.name;
        let vcpu = u64::from(np.instance_type.vcpu);
        // One more node would cross the limit: Karpenter cannot add it.
        let room = np.limit_cpu.saturating_sub(vcpu);
        let mut rule = self.rule(
            NODE_LIMIT,
            format!(
                r#"max by (nodepool) (karpenter_nodepools_usage{{nodepool="{}", resource_type="cpu"}}) > {room}"#,
                np.name
            ),
            Some(600),
            format!("NodePool {} of pool {p} is at its limit", np.name),
            format!(
                "NodePool {} uses more than {room} of its {} CPUs: Karpenter cannot add another {} node. The limit is 2 × ceil(max / pods per node) nodes; a pool at max plus a rollout fits, so look for nodes that do not drain.",
                np.name, np.limit_cpu, np.instance_type.name
            ),
        );
        // Two NodePools of one pool would otherwise be duplicate rules.
        rule.labels.insert("nodepool".to_string(), np.name.clone());
        let series = |values: String| {
            vec![(
                format!(
                    r#"karpenter_nodepools_usage{{nodepool="{}", resource_type="cpu"}}"#,
                    np.name
                ),
                values,
            )]
        };
        let fired = self.fired(&rule, &[("nodepool", &np.name)]);
        self.alert(
            rule,
            vec![
                Scenario {
                    name: format!("{}: half the limit in use", np.name),
                    series: series(format!("{}x20", np.limit_cpu / 2)),
                    eval_minutes: 15,
                    fires: None,
                },
                Scenario {
                    name: format!("{}: the limit is reached", np.name),
                    series: series(format!("{}x20", np.limit_cpu)),
                    eval_minutes: 15,
                    fires: Some(fired),
                },
            ],
        )
    }
}

/// The one input series whose value is the query's value, if the query is
/// `sel`, or `agg(sel)` with agg in sum/max/min/avg and only `=` matchers.
fn single_series(query: &str) -> Option<String> {
    use promql_parser::label::MatchOp;
    use promql_parser::parser::Expr;
    let expr = promql::parse(query).ok()?;
    let inner = match &expr {
        Expr::Aggregate(a)
            if ["sum", "max", "min", "avg"].contains(&a.op.to_string().as_str())
                && a.param.is_none() =>
        {
            &*a.expr
        }
        other => other,
    };
    let Expr::VectorSelector(vs) = inner else {
        return None;
    };
    let name = vs.name.as_deref()?;
    let matchers: Vec<String> = promql::label_matchers(vs)
        .map(|m| match m.op {
            MatchOp::Equal => Some(format!(r#"{}="{}""#, m.name, m.value)),
            _ => None,
        })
        .collect::<Option<_>>()?;
    Some(format!("{name}{{{}}}", matchers.join(", ")))
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
                expr: fill(&extra.expr.value),
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
            expr: r.expr.value.clone(),
            labels: r.labels.clone(),
            ..Default::default()
        })
        .collect()
}
