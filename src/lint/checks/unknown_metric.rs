//! P002: metric names that the deployed exporter versions do not expose.

use super::{parsed, Check};
use crate::catalog::builtin::{self, KnownMetric};
use crate::diagnostic::{Diagnostic, Severity};
use crate::lint::{at, nearest, Context, Workspace};
use crate::promql;
use promql_parser::parser::{Expr, VectorSelector};

pub const CHECK: Check = Check {
    code: "P002",
    name: "unknown-metric",
    severity: Severity::Error,
    summary: "The metric does not exist in the deployed exporter versions.",
    doc: r#"
What it does: looks up every metric name in the catalog: the HAProxy, KEDA,
kube-state-metrics and Karpenter metrics of the versions in the catalog file
(or the spec), Prometheus's own series, recording rules among the inputs and
the team's declared metrics. It suggests the nearest name and says when the
name existed in another version.

Why it matters: a selector on a metric that does not exist returns nothing,
so the alert can never fire and nobody notices. KEDA renamed its metrics in
2.14 and removed the old names in 2.17; `keda_scaledobject_errors_total`
never existed.

Example:
    expr: increase(keda_scaledobject_errors_total[15m]) > 3

Instead:
    expr: increase(keda_scaled_object_errors_total[15m]) > 3
"#,
    run,
};

/// The selectors that are one version's name beside another's: in
/// `old or new`, a side whose names the catalog knows in other versions of
/// their exporter only, next to a side it knows at the deployed ones. Rules
/// shared across versions of an exporter read both names this way
/// (`prometheus_remote_storage_failed_samples_total or
/// prometheus_remote_storage_samples_failed_total`); the side of the other
/// version matches nothing, and the expression still works.
fn version_alternatives<'a>(ctx: &Context, expr: &'a Expr) -> Vec<&'a VectorSelector> {
    let mut out = Vec::new();
    let mut stack = vec![expr];
    while let Some(e) = stack.pop() {
        if let Expr::Binary(b) = e {
            if b.op.to_string() == "or" {
                let (lhs, rhs) = (promql::selectors(&b.lhs), promql::selectors(&b.rhs));
                let known = |side: &[&VectorSelector]| {
                    side.iter().any(|vs| {
                        promql::metric_name(vs).is_some_and(|n| ctx.catalog.get(n).is_some())
                    })
                };
                let elsewhere = |vs: &&VectorSelector| {
                    promql::metric_name(vs).is_some_and(|n| {
                        ctx.catalog.get(n).is_none() && builtin::all().iter().any(|m| m.name == n)
                    })
                };
                if known(&rhs) {
                    out.extend(lhs.iter().copied().filter(elsewhere));
                }
                if known(&lhs) {
                    out.extend(rhs.iter().copied().filter(elsewhere));
                }
            }
        }
        stack.extend(promql::children(e));
    }
    out
}

/// A name's first word (`kubelet` of `kubelet_running_pods`): what
/// usually names its exporter.
fn family_word(name: &str) -> &str {
    name.trim_start_matches(':')
        .split(['_', ':'])
        .next()
        .unwrap_or(name)
}

fn run(ws: &Workspace, ctx: &Context, out: &mut Vec<Diagnostic>) {
    // One search per distinct unknown name: a file repeating one name in
    // thousands of targets costs one catalog scan, not thousands.
    let mut nearest_of: std::collections::HashMap<String, (Option<String>, bool)> =
        std::collections::HashMap::new();
    for (e, expr) in parsed(ws) {
        let alternatives = version_alternatives(ctx, expr);
        for vs in promql::selectors(expr) {
            let Some(name) = promql::metric_name(vs) else {
                continue;
            };
            // A Grafana variable in a name's place: chosen in the browser.
            if ctx.catalog.get(name).is_some() || name == promql::VARIABLE_NAME {
                continue;
            }
            // A name of the same family (its first word): a near name of
            // another exporter (`grafana_…` beside `alertmanager_…`) is
            // not what the author meant.
            let word = family_word(name);
            let (suggestion, family_known) = nearest_of
                .entry(name.to_string())
                .or_insert_with(|| {
                    let same = || ctx.catalog.names().filter(|n| family_word(n) == word);
                    // Or a typo in the family word itself (`kdea_` for `keda_`).
                    let misspelt = || {
                        nearest(name, ctx.catalog.names())
                            .filter(|n| crate::model::edit_distance(family_word(n), word) <= 2)
                    };
                    (
                        nearest(name, same()).or_else(misspelt).map(str::to_string),
                        same().next().is_some(),
                    )
                })
                .clone();
            let suggestion = suggestion.as_deref();
            let other_version = other_version(ctx, name);
            if alternatives.iter().any(|a| std::ptr::eq(*a, vs)) {
                out.push(at(
                    ws,
                    e,
                    CHECK.code,
                    Severity::Warning,
                    format!(
                        "unknown metric `{name}`{}: this side of `or` matches nothing, and the other side carries the expression",
                        other_version.unwrap_or_default()
                    ),
                    "drop this side of the `or` once no older (or newer) version is deployed".into(),
                ));
                continue;
            }
            let help = match suggestion {
                Some(s) => format!("did you mean `{s}`?"),
                None if !family_known && other_version.is_none() => format!(
                    "no exporter of the catalog serves `{word}_*` names: declare the ones you read under `metrics:` in the catalog file, or build a catalog from your Prometheus with `poolc catalog import`"
                ),
                None => "declare the metric in the catalog file (`metrics:`) or the spec (`cluster.metrics`) if your own exporter exposes it".into(),
            };
            out.push(at(
                ws,
                e,
                CHECK.code,
                CHECK.severity,
                format!(
                    "unknown metric `{name}`{}",
                    other_version.unwrap_or_default()
                ),
                help,
            ));
        }
    }
}

/// Why `name`, unknown at the deployed versions, is in some release's
/// table: the release that removed it, when every row of it ended by the
/// deployed version (its last row, so a name whose labels changed is
/// reported at its final removal), or else the first release that has it.
fn other_version(ctx: &Context, name: &str) -> Option<String> {
    let rows: Vec<&KnownMetric> = builtin::all()
        .into_iter()
        .filter(|m| m.name == name)
        .collect();
    let last = rows.iter().max_by_key(|m| (m.until.is_none(), m.until))?;
    let versions = ctx.catalog.versions.as_ref();
    let deployed_of = |m: &KnownMetric| versions.map(|v| m.exporter.version(v));
    let shown = |m: &KnownMetric| deployed_of(m).map(|v| v.to_string()).unwrap_or_default();
    if let (Some(until), Some(deployed)) = (last.until, deployed_of(last)) {
        if deployed >= until {
            return Some(format!(
                "; it was removed in {} {until} (deployed: {})",
                last.exporter.title(),
                shown(last)
            ));
        }
    }
    let first = rows
        .iter()
        .filter(|m| deployed_of(m).is_none_or(|d| m.since > d))
        .min_by_key(|m| m.since)
        .unwrap_or(last);
    Some(format!(
        "; it exists from {} {} (deployed: {})",
        first.exporter.title(),
        first.since,
        shown(first)
    ))
}
