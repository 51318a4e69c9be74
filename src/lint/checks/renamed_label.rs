//! P012: a selector on an exporter's label that the scrape stored as
//! `exported_<label>`.

use promql_parser::label::MatchOp;

use super::{parsed, Check};
use crate::diagnostic::{Diagnostic, Severity};
use crate::lint::scrape::ScrapePath;
use crate::lint::{at, inputs::Role, Context, Entry, Workspace};
use crate::promql;

pub const CHECK: Check = Check {
    code: "P012",
    name: "label-renamed-by-scrape",
    severity: Severity::Error,
    summary: "A matcher on an exporter label that the scrape stores as `exported_<label>`: it reads the target's label instead.",
    doc: r#"
What it does: follows each exporter's series through its scrape path (the
ServiceMonitors, PodMonitors and scrape configs among the inputs, or the
catalog's `scrape:` and `scraped_by` entries). Without `honorLabels: true`,
Prometheus stores an exporter label that is also a target label
(`namespace`, `service`, `pod`, `container`, `endpoint`, `job`, `instance`,
and any `targetLabels`) as `exported_<label>`, and the name then holds the
target's value. A matcher on that name, whose value is not the target's,
is reported with the ServiceMonitor and both fixes.

Why it matters: KEDA labels its metrics with the ScaledObject's namespace.
Scraped without `honorLabels`, `namespace` is the KEDA operator's
namespace, so `keda_scaler_detail_errors_total{namespace="buildkit"}`
matches nothing and the scaler-error alert can never fire.

Example:
    # ServiceMonitor monitoring/keda-operator, endpoints: [{port: metrics}]
    expr: increase(keda_scaler_detail_errors_total{namespace="buildkit"}[15m]) > 3

Instead:
    # endpoints: [{port: metrics, honorLabels: true}]
    expr: increase(keda_scaler_detail_errors_total{namespace="buildkit"}[15m]) > 3
    # or keep the scrape and select the stored name:
    expr: increase(keda_scaler_detail_errors_total{exported_namespace="buildkit"}[15m]) > 3
"#,
    run,
};

/// The paths of `entry` that rename `label`.
fn renaming(ctx: &Context, entry: &Entry, label: &str) -> Vec<ScrapePath> {
    let own = &entry.labels;
    let renames = |p: &ScrapePath| p.stored(own).renamed.contains_key(label);
    match (entry.exporter, &entry.scraped_by) {
        (Some(exporter), _) => ctx
            .paths
            .for_exporter(exporter)
            .filter(|p| renames(p))
            .cloned()
            .collect(),
        (None, Some(by)) => Some(ctx.paths.for_user(by))
            .filter(|p| renames(p))
            .into_iter()
            .collect(),
        (None, None) => Vec::new(),
    }
}

fn matches_empty(op: &MatchOp, value: &str) -> bool {
    match op {
        MatchOp::Equal => value.is_empty(),
        MatchOp::NotEqual => !value.is_empty(),
        MatchOp::Re(re) => re.is_match(""),
        MatchOp::NotRe(re) => !re.is_match(""),
    }
}

fn matches(op: &MatchOp, want: &str, value: &str) -> bool {
    match op {
        MatchOp::Equal => want == value,
        MatchOp::NotEqual => want != value,
        MatchOp::Re(re) => re.is_match(value),
        MatchOp::NotRe(re) => !re.is_match(value),
    }
}

fn run(ws: &Workspace, ctx: &Context, out: &mut Vec<Diagnostic>) {
    for (e, expr) in parsed(ws) {
        let dashboard = matches!(e.role, Role::Dashboard { .. });
        for vs in promql::selectors(expr) {
            let Some(name) = promql::metric_name(vs) else {
                continue;
            };
            let Some(entry) = ctx.catalog.get(name) else {
                continue;
            };
            if entry.renamed.is_empty() {
                continue;
            }
            for m in promql::label_matchers(vs) {
                let Some(exported) = entry.renamed.get(&m.name) else {
                    continue;
                };
                // A dashboard variable's value is unknown here.
                if matches_empty(&m.op, &m.value) || (dashboard && m.value.contains("placeholder"))
                {
                    continue;
                }
                let paths = renaming(ctx, entry, &m.name);
                let Some(path) = paths.first() else { continue };
                // `namespace="keda"` on a target in namespace keda selects the target.
                let target_values = paths
                    .iter()
                    .map(|p| p.namespaces.clone().filter(|_| m.name == "namespace"))
                    .collect::<Option<Vec<_>>>();
                let target_value = match &target_values {
                    Some(sets) => sets.iter().flatten().any(|v| matches(&m.op, &m.value, v)),
                    None => true,
                };
                if target_value {
                    continue;
                }
                let owner = entry.exporter.map_or("the exporter", |x| x.title());
                let holds = match &target_values {
                    Some(sets) => format!(
                        "the target's ({})",
                        sets.iter()
                            .flatten()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    None => "the target's".to_string(),
                };
                out.push(at(
                    ws,
                    e,
                    CHECK.code,
                    CHECK.severity,
                    format!(
                        "`{name}{{{}{}\"{}\"}}` never matches: {} does not honor {owner}'s labels, so Prometheus stores {owner}'s `{}` as `{exported}` and `{}` holds {holds}",
                        m.name,
                        m.op,
                        m.value,
                        path.described(),
                        m.name,
                        m.name,
                    ),
                    format!(
                        "set `{}` on the {} (as kube-prometheus-stack does for exporters that label other objects), or select `{exported}{}\"{}\"`",
                        path.kind.honor_field(),
                        match path.kind {
                            crate::lint::scrape::Kind::ScrapeConfig => format!("scrape job {}", path.name),
                            kind => format!("endpoint of {} {}", kind.as_str(), path.name),
                        },
                        m.op,
                        m.value
                    ),
                ));
            }
        }
    }
}
