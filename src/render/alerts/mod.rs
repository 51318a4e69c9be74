//! The generated alerts, one per file. Each file holds the alert's
//! expression, its annotations, the scenarios that prove it (a failure that
//! fires, healthy load that stays quiet) and its doc, which
//! `poolc explain <AlertName>` prints and the README lists.
//!
//! Scenario input series are what Prometheus stores for each exporter:
//! the exporter's own labels merged with the target labels of its scrape
//! (`scrape.rs`), plus the external labels when a central ruler evaluates
//! the rules. They are never built from the rule's own selectors.

pub mod at_max;
pub mod lb_down;
pub mod no_active_servers;
pub mod node_limit;
pub mod pending_jobs;
pub mod queue_backlog;
pub mod recording;
pub mod scaled_job_errors;
pub mod scaled_object_errors;
pub mod scaler_errors;
pub mod warm_deficit;

use std::collections::BTreeMap;

use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::{Expr, LabelModifier};

use super::rules::{Alert, Rule, Scenario};
use super::scrape::Target;
use super::servicemonitor::{scrapes, Scrapes};
use crate::catalog::Version;
use crate::model::{Cluster, Pool};
use crate::promql;

/// What `poolc explain <AlertName>` prints.
pub struct Doc {
    pub name: &'static str,
    pub summary: &'static str,
    /// What it does / Why it matters / Example / Instead / Default.
    pub text: &'static str,
}

pub const ALL: &[&Doc] = &[
    &queue_backlog::DOC,
    &no_active_servers::DOC,
    &lb_down::DOC,
    &warm_deficit::DOC,
    &at_max::DOC,
    &pending_jobs::DOC,
    &scaler_errors::DOC,
    &scaled_object_errors::DOC,
    &scaled_job_errors::DOC,
    &node_limit::DOC,
];

pub fn find(name: &str) -> Option<&'static Doc> {
    ALL.iter()
        .copied()
        .find(|d| d.name.eq_ignore_ascii_case(name))
}

/// The full text `poolc explain <AlertName>` prints.
pub fn explain(doc: &Doc) -> String {
    format!(
        "{} (alert)\n\n{}\n\n{}\n",
        doc.name,
        doc.summary,
        doc.text.trim()
    )
}

/// Every generated alert of the cluster, with its scenarios.
pub fn alerts(cluster: &Cluster) -> Vec<Alert> {
    let scrapes = scrapes(cluster);
    let mut out = Vec::new();
    if let Some(alert) = lb_down::alert(cluster, &scrapes) {
        out.push(alert);
    }
    for pool in &cluster.pools {
        let ctx = Ctx {
            cluster,
            pool,
            scrapes: &scrapes,
        };
        if let Some(backend) = &pool.lb {
            out.push(queue_backlog::alert(&ctx, backend));
            if pool.min >= 1 {
                out.push(no_active_servers::alert(&ctx, backend));
            }
            out.push(warm_deficit::alert(&ctx));
            out.push(at_max::alert(&ctx));
        }
        if let Some(jobs) = &pool.jobs {
            out.push(pending_jobs::alert(&ctx, jobs));
        }
        out.push(scaler_errors::alert(&ctx));
        if pool.jobs.is_some() {
            out.extend(scaled_job_errors::alert(&ctx));
        } else {
            out.push(scaled_object_errors::alert(&ctx));
        }
        for np in &pool.node_pools {
            out.push(node_limit::alert(&ctx, np));
        }
    }
    out
}

/// One pool's alerts are built against this.
pub struct Ctx<'a> {
    pub cluster: &'a Cluster,
    pub pool: &'a Pool,
    pub scrapes: &'a Scrapes,
}

impl Ctx<'_> {
    pub fn ns(&self) -> &str {
        &self.cluster.namespace
    }

    /// A rule of this pool: severity, routing labels, `pool`, summary,
    /// description and runbook.
    pub fn rule(
        &self,
        alert: &str,
        expr: String,
        for_: Option<u64>,
        summary: String,
        description: String,
    ) -> Rule {
        let mut rule = base_rule(self.cluster, &self.pool.alerts.severity, alert, expr, for_);
        rule.labels
            .insert("pool".to_string(), self.pool.name.clone());
        rule.annotations.insert("summary".to_string(), summary);
        rule.annotations
            .insert("description".to_string(), description);
        rule
    }

    pub fn alert(&self, rule: Rule, scenarios: Vec<Scenario>) -> Alert {
        Alert {
            pool: self.pool.name.clone(),
            rule,
            scenarios,
        }
    }

    /// `{matchers, external labels when central}`.
    pub fn scope(&self, matchers: &[String]) -> String {
        scope(self.cluster, matchers)
    }

    /// `by (…)` with the external labels kept when central.
    pub fn by(&self, labels: &[&str]) -> String {
        by(self.cluster, labels)
    }

    /// A stored series of `target` in promtool notation, with the
    /// external labels a central ruler sees.
    pub fn stored(&self, target: &Target, name: &str, exposed: &[(&str, &str)]) -> String {
        stored(self.cluster, target, name, exposed)
    }

    /// The labels of the firing alert: the rule's, plus the expression's.
    pub fn fired(&self, rule: &Rule, from_expr: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut labels = rule.labels.clone();
        for (k, v) in from_expr {
            labels.insert(k.to_string(), v.to_string());
        }
        if self.cluster.monitoring.central {
            for (k, v) in &self.cluster.monitoring.external_label_values {
                labels.insert(k.clone(), v.clone());
            }
        }
        labels
    }

    /// The label under which KEDA's `namespace` (the ScaledObject's) is stored.
    pub fn keda_namespace_label(&self) -> &'static str {
        if self.scrapes.keda.honor_labels {
            "namespace"
        } else {
            "exported_namespace"
        }
    }

    /// KEDA's per-trigger labels in the deployed version.
    pub fn keda_trigger_labels(&self, kind: &'static str) -> Vec<(&'static str, &'static str)> {
        if self.cluster.exporters.keda >= Version::new(2, 13) {
            vec![("triggerIndex", "0"), ("type", kind)]
        } else {
            vec![("scalerIndex", "0")]
        }
    }
}

pub fn base_rule(
    cluster: &Cluster,
    severity: &str,
    alert: &str,
    expr: String,
    for_: Option<u64>,
) -> Rule {
    let mut labels = cluster.alert_labels.clone();
    labels.insert("severity".to_string(), severity.to_string());
    let mut annotations = BTreeMap::new();
    if let Some(base) = &cluster.runbook_url {
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

/// The external labels a selector or aggregation must carry: this
/// cluster's values when a central ruler evaluates the rules, none when
/// the cluster's own Prometheus does (it adds them only on the way out).
pub fn external(cluster: &Cluster) -> &[(String, String)] {
    if cluster.monitoring.central {
        &cluster.monitoring.external_label_values
    } else {
        &[]
    }
}

pub fn scope(cluster: &Cluster, matchers: &[String]) -> String {
    let mut all: Vec<String> = external(cluster)
        .iter()
        .map(|(k, v)| format!(r#"{k}="{v}""#))
        .collect();
    all.extend(matchers.iter().cloned());
    format!("{{{}}}", all.join(", "))
}

pub fn by(cluster: &Cluster, labels: &[&str]) -> String {
    let mut all: Vec<&str> = external(cluster).iter().map(|(k, _)| k.as_str()).collect();
    all.extend(labels);
    format!("by ({})", all.join(", "))
}

pub fn stored(cluster: &Cluster, target: &Target, name: &str, exposed: &[(&str, &str)]) -> String {
    let mut labels = target
        .stored(name, exposed)
        .unwrap_or_else(|| target.labels.clone());
    labels.insert("__name__".to_string(), name.to_string());
    for (k, v) in external(cluster) {
        labels.insert(k.clone(), v.clone());
    }
    super::scrape::selector(&labels)
}

/// The same series as seen from another cluster by a central ruler: the
/// external labels carry other values. None when rules run in-cluster.
pub fn foreign(series: &str, cluster: &Cluster) -> Option<String> {
    let ext = external(cluster);
    if ext.is_empty() {
        return None;
    }
    let mut out = series.to_string();
    for (k, v) in ext {
        out = out.replace(&format!(r#"{k}="{v}""#), &format!(r#"{k}="other-{v}""#));
    }
    Some(out)
}

/// A user's PromQL scoped to this cluster for a central ruler: every
/// selector gets the external labels as matchers, and every aggregation
/// and vector match keeps them. Unchanged when rules run in-cluster.
pub fn scope_expr(cluster: &Cluster, query: &str) -> String {
    let ext = external(cluster);
    if ext.is_empty() {
        return query.to_string();
    }
    let Ok(mut expr) = promql::parse(query) else {
        // The PromQL gate reports it with its file and line.
        return query.to_string();
    };
    rewrite(&mut expr, ext);
    expr.to_string()
}

fn keep(modifier: &mut Option<LabelModifier>, ext: &[(String, String)]) {
    if let Some(LabelModifier::Include(labels)) = modifier {
        for (k, _) in ext {
            if !labels.labels.contains(k) {
                labels.labels.push(k.clone());
            }
        }
    } else if modifier.is_none() {
        *modifier = Some(LabelModifier::Include(promql_parser::label::Labels::new(
            ext.iter().map(|(k, _)| k.as_str()).collect(),
        )));
    }
}

fn rewrite(expr: &mut Expr, ext: &[(String, String)]) {
    match expr {
        Expr::Aggregate(a) => {
            keep(&mut a.modifier, ext);
            rewrite(&mut a.expr, ext);
            if let Some(p) = &mut a.param {
                rewrite(p, ext);
            }
        }
        Expr::Unary(u) => rewrite(&mut u.expr, ext),
        Expr::Binary(b) => {
            if let Some(m) = &mut b.modifier {
                if matches!(m.matching, Some(LabelModifier::Include(_))) {
                    keep(&mut m.matching, ext);
                }
            }
            rewrite(&mut b.lhs, ext);
            rewrite(&mut b.rhs, ext);
        }
        Expr::Paren(p) => rewrite(&mut p.expr, ext),
        Expr::Subquery(s) => rewrite(&mut s.expr, ext),
        Expr::VectorSelector(vs) => add_matchers(&mut vs.matchers.matchers, ext),
        Expr::MatrixSelector(ms) => add_matchers(&mut ms.vs.matchers.matchers, ext),
        Expr::Call(c) => {
            for arg in &mut c.args.args {
                rewrite(arg, ext);
            }
        }
        _ => {}
    }
}

fn add_matchers(matchers: &mut Vec<Matcher>, ext: &[(String, String)]) {
    for (k, v) in ext {
        matchers.retain(|m| &m.name != k);
        matchers.push(Matcher::new(MatchOp::Equal, k, v));
    }
}
