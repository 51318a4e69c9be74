//! P004: matchers on labels a metric never has, or on values it never takes.

use promql_parser::label::MatchOp;

use super::{parsed, Check};
use crate::diagnostic::{Diagnostic, Severity};
use crate::lint::{at, nearest, Context, Workspace};
use crate::promql;

pub const CHECK: Check = Check {
    code: "P004",
    name: "impossible-matcher",
    severity: Severity::Error,
    summary: "A label matcher names a label the metric never has, or a value it never takes.",
    doc: r#"
What it does: checks every label matcher against the metric's labels in the
catalog as Prometheus stores them: renamed to `exported_<label>` where the
scrape does not honor the exporter's labels, dropped by `metricRelabelings`,
plus the target labels of its scrape path (`job`, `instance` and
prometheus-operator's `namespace`, `service`, `pod`, `container`,
`endpoint`) and the external labels. Where an exporter's scrape is not
among the inputs, `metrics_path` and labels named like a Kubernetes label
key (`actions_github_com_scale_set_name`, as a `labelmap` of pod labels
writes it) may be target labels. It also checks them against known value
sets: HAProxy `state` and `code`, Karpenter `resource_type`, and the `proxy`
names of a haproxy.cfg among the inputs.

Why it matters: `haproxy_backend_current_queue{backend="bk_amd64"}` matches
nothing, because the HAProxy exporter's label is `proxy`. The alert is dead.

Example:
    expr: haproxy_backend_status{proxy="bk_amd64", state="up"} == 0

Instead:
    expr: haproxy_backend_status{proxy="bk_amd64", state="UP"} == 0
"#,
    run,
};

fn run(ws: &Workspace, ctx: &Context, out: &mut Vec<Diagnostic>) {
    for (e, expr) in parsed(ws) {
        for vs in promql::selectors(expr) {
            let Some(name) = promql::metric_name(vs) else {
                continue;
            };
            let Some(entry) = ctx.catalog.get(name) else {
                continue;
            };
            for m in promql::label_matchers(vs) {
                // `{x=""}` selects series without x: always possible.
                let matches_empty = match &m.op {
                    MatchOp::Equal => m.value.is_empty(),
                    MatchOp::NotEqual => !m.value.is_empty(),
                    MatchOp::Re(re) => re.is_match(""),
                    MatchOp::NotRe(re) => !re.is_match(""),
                };
                let known = entry.may_have(&m.name) || ctx.external_labels.contains(&m.name);
                if !known {
                    if matches_empty {
                        continue;
                    }
                    // Its scrape is not among the inputs: relabeling may
                    // have written a target label like this one.
                    let unseen_scrape = entry
                        .exporter
                        .is_some_and(|x| ctx.paths.for_exporter(x).next().is_none());
                    if unseen_scrape && crate::lint::scrape::relabeling_may_add(&m.name) {
                        continue;
                    }
                    // Exporters' and declared metrics' own labels; all of a rule's or ALERTS'.
                    let own: Vec<&str> = if entry.exporter.is_some() || entry.user {
                        entry
                            .labels
                            .iter()
                            .map(|l| entry.renamed.get(l).unwrap_or(l).as_str())
                            .filter(|l| entry.stored.contains(*l))
                            .collect()
                    } else {
                        entry.stored.iter().map(String::as_str).collect()
                    };
                    let listed = if own.is_empty() {
                        "none of its own".to_string()
                    } else {
                        own.join(", ")
                    };
                    let help = if entry.labels.contains(&m.name) {
                        format!(
                            "the scrape's metricRelabelings remove `{}` before storage; `{name}` is stored with: {listed}",
                            m.name
                        )
                    } else {
                        match nearest(&m.name, entry.stored.iter().map(String::as_str)) {
                            Some(s) => format!("did you mean `{s}`? `{name}` has labels: {listed}"),
                            None => format!("`{name}` has labels: {listed}"),
                        }
                    };
                    out.push(at(
                        ws,
                        e,
                        CHECK.code,
                        CHECK.severity,
                        format!(
                            "`{name}` never has a `{}` label, so this selector matches nothing",
                            m.name
                        ),
                        help,
                    ));
                    continue;
                }
                let mut values = entry.values.get(&m.name).cloned();
                if m.name == "proxy" && name.starts_with("haproxy_") && !ws.proxies.is_empty() {
                    values = Some(ws.proxies.clone());
                }
                let Some(values) = values else { continue };
                let possible = match &m.op {
                    MatchOp::Equal => values.contains(&m.value),
                    MatchOp::Re(re) => values.iter().any(|v| re.is_match(v)),
                    _ => true,
                };
                if !possible {
                    let help = match nearest(&m.value, values.iter().map(String::as_str)) {
                        Some(s) => format!(
                            "did you mean `{s}`? known values: {}",
                            values.iter().cloned().collect::<Vec<_>>().join(", ")
                        ),
                        None => format!(
                            "known values: {}",
                            values.iter().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    };
                    out.push(at(
                        ws,
                        e,
                        CHECK.code,
                        CHECK.severity,
                        format!(
                            "`{}{}{}` never matches a value of `{name}`",
                            m.name,
                            m.op,
                            format_args!("\"{}\"", m.value)
                        ),
                        help,
                    ));
                }
            }
        }
    }
}
