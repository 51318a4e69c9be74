//! P012: an exporter's label that the scrape stored as `exported_<label>`,
//! read under its own name: in a selector, a `by`/`without` list, an
//! `on`/`ignoring` list, a `label_replace` source, or an alert's
//! `$labels.x`. Under that name the series carry the target's value.

use std::collections::{BTreeMap, BTreeSet};

use promql_parser::label::MatchOp;
use promql_parser::parser::{token, Expr, LabelModifier, VectorMatchCardinality};

use super::{parsed, Check};
use crate::diagnostic::{Diagnostic, Severity};
use crate::lint::labels::{is_scalar, labels};
use crate::lint::scrape::ScrapePath;
use crate::lint::{at, inputs::Role, Context, Entry, Workspace};
use crate::promql;

pub const CHECK: Check = Check {
    code: "P012",
    name: "label-renamed-by-scrape",
    severity: Severity::Error,
    summary: "An exporter label that the scrape stores as `exported_<label>`, read under its own name: it holds the target's value instead.",
    doc: r#"
What it does: follows each exporter's series through its scrape path (the
ServiceMonitors, PodMonitors and scrape configs among the inputs, or the
catalog's `scrape:` and `scraped_by` entries). Without `honorLabels: true`,
Prometheus stores an exporter label that is also a target label
(`namespace`, `service`, `pod`, `container`, `endpoint`, `job`, `instance`,
and any `targetLabels`) as `exported_<label>`, and the name then holds the
target's value. It reports, with the ServiceMonitor and both fixes:
a matcher on that name whose value is not the target's; `by (label)`,
which groups by the target (one group for every object the exporter
reports on); `on (label)` against a side whose `label` is the object's own;
`ignoring (label)`, which still matches on `exported_<label>`; a
`label_replace`/`label_join` reading it; and an alert's `{{ $labels.label }}`,
which renders the target's value. `without (label)` keeps
`exported_<label>` and so splits the result by it: a warning.

Why it matters: KEDA labels its metrics with the ScaledObject's namespace.
Scraped without `honorLabels`, `namespace` is the KEDA operator's
namespace, so `keda_scaler_detail_errors_total{namespace="buildkit"}`
matches nothing and the scaler-error alert can never fire.

Example:
    # ServiceMonitor monitoring/keda-operator, endpoints: [{port: metrics}]
    expr: increase(keda_scaler_detail_errors_total{namespace="buildkit"}[15m]) > 3

    expr: sum by (namespace, scaledObject) (increase(keda_scaler_detail_errors_total[15m])) > 3
    annotations: {summary: "{{ $labels.namespace }}/{{ $labels.scaledObject }} fails"}

Instead:
    # endpoints: [{port: metrics, honorLabels: true}]
    expr: increase(keda_scaler_detail_errors_total{namespace="buildkit"}[15m]) > 3
    # or keep the scrape and use the stored name:
    expr: increase(keda_scaler_detail_errors_total{exported_namespace="buildkit"}[15m]) > 3
    expr: sum by (exported_namespace, scaledObject) (increase(keda_scaler_detail_errors_total[15m])) > 3
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

/// How the scrape renamed one exporter label of one metric: what to say
/// about it.
struct Renamed {
    /// `ServiceMonitor monitoring/keda (file:line)`.
    path: String,
    /// `KEDA`, or "the exporter" for a declared metric.
    owner: String,
    label: String,
    exported: String,
    /// `the target's (keda)`.
    holds: String,
    /// `set `honorLabels: true` on the endpoint of ServiceMonitor m/k`.
    honor: String,
}

impl Renamed {
    /// How `entry`'s `label` is renamed, with the target values it then
    /// holds; None when no path renames it.
    fn of(
        ctx: &Context,
        entry: &Entry,
        label: &str,
    ) -> Option<(Renamed, Option<BTreeSet<String>>)> {
        let exported = entry.renamed.get(label)?.clone();
        let paths = renaming(ctx, entry, label);
        let path = paths.first()?;
        let target_values = paths
            .iter()
            .map(|p| p.namespaces.clone().filter(|_| label == "namespace"))
            .collect::<Option<Vec<_>>>()
            .map(|sets| sets.into_iter().flatten().collect::<BTreeSet<_>>());
        let holds = match &target_values {
            Some(values) => format!(
                "the target's ({})",
                values.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
            None => "the target's".to_string(),
        };
        let renamed = Renamed {
            path: path.described(),
            owner: entry.exporter.map_or("the exporter", |x| x.title()).to_string(),
            label: label.to_string(),
            exported,
            holds,
            honor: format!(
                "set `{}` on the {} (as kube-prometheus-stack does for exporters that label other objects)",
                path.kind.honor_field(),
                match path.kind {
                    crate::lint::scrape::Kind::ScrapeConfig => format!("scrape job {}", path.name),
                    kind => format!("endpoint of {} {}", kind.as_str(), path.name),
                },
            ),
        };
        Some((renamed, target_values))
    }

    /// "ServiceMonitor m/k (…) does not honor KEDA's labels, so Prometheus
    /// stores KEDA's `namespace` as `exported_namespace` and `namespace`
    /// holds the target's (keda)".
    fn why(&self) -> String {
        format!(
            "{} does not honor {owner}'s labels, so Prometheus stores {owner}'s `{}` as `{}` and `{}` holds {}",
            self.path,
            self.label,
            self.exported,
            self.label,
            self.holds,
            owner = self.owner,
        )
    }
}

/// The labels of `expr`'s result that hold a target's value where the
/// exporter's own label of that name was renamed: label → the metric it
/// comes from. A selector that matches such a label on a value leaves it
/// out: that matcher is judged on its own, and fixes what the label holds.
fn carried(ctx: &Context, expr: &Expr) -> BTreeMap<String, String> {
    match expr {
        Expr::VectorSelector(vs) => selector_carried(ctx, vs),
        Expr::MatrixSelector(ms) => selector_carried(ctx, &ms.vs),
        Expr::Paren(p) => carried(ctx, &p.expr),
        Expr::Unary(u) => carried(ctx, &u.expr),
        Expr::Subquery(s) => carried(ctx, &s.expr),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => BTreeMap::new(),
        Expr::Aggregate(a) => {
            let inner = carried(ctx, &a.expr);
            let op = a.op.to_string();
            match &a.modifier {
                // topk and its kin return their input series whole.
                _ if ["topk", "bottomk", "limitk", "limit_ratio"].contains(&op.as_str()) => inner,
                Some(LabelModifier::Include(by)) => keep(inner, &by.labels),
                Some(LabelModifier::Exclude(without)) => drop(inner, &without.labels),
                None => BTreeMap::new(),
            }
        }
        Expr::Call(c) => {
            let args = &c.args.args;
            match c.func.name {
                "label_replace" | "label_join" => {
                    let mut out = args.first().map(|a| carried(ctx, a)).unwrap_or_default();
                    if let Some(Expr::StringLiteral(dst)) = args.get(1).map(|a| &**a) {
                        out.remove(&dst.val);
                    }
                    out
                }
                "absent" | "absent_over_time" | "vector" | "scalar" | "time" | "pi" => {
                    BTreeMap::new()
                }
                "histogram_quantile" => args.get(1).map(|a| carried(ctx, a)).unwrap_or_default(),
                _ => args.iter().flat_map(|a| carried(ctx, a)).collect(),
            }
        }
        Expr::Binary(b) => {
            let (lhs_scalar, rhs_scalar) = (is_scalar(&b.lhs), is_scalar(&b.rhs));
            if lhs_scalar && !rhs_scalar {
                return carried(ctx, &b.rhs);
            }
            let lhs = carried(ctx, &b.lhs);
            if rhs_scalar {
                return lhs;
            }
            let rhs = carried(ctx, &b.rhs);
            match b.op.id() {
                token::T_LOR => lhs.into_iter().chain(rhs).collect(),
                token::T_LAND | token::T_LUNLESS => lhs,
                _ => {
                    let modifier = b.modifier.as_ref();
                    let (side, other, extra) = match modifier.map(|m| &m.card) {
                        Some(VectorMatchCardinality::ManyToOne(l)) => (lhs, rhs, Some(l)),
                        Some(VectorMatchCardinality::OneToMany(l)) => (rhs, lhs, Some(l)),
                        _ => (lhs, rhs, None),
                    };
                    let filter = b.op.is_comparison_operator() && !b.return_bool();
                    let mut out = side;
                    if extra.is_none() && !filter {
                        match modifier.and_then(|m| m.matching.as_ref()) {
                            Some(LabelModifier::Include(on)) => out = keep(out, &on.labels),
                            Some(LabelModifier::Exclude(ign)) => out = drop(out, &ign.labels),
                            None => {}
                        }
                    }
                    if let Some(extra) = extra {
                        for l in &extra.labels {
                            if let Some(from) = other.get(l) {
                                out.insert(l.clone(), from.clone());
                            }
                        }
                    }
                    out
                }
            }
        }
    }
}

fn keep(map: BTreeMap<String, String>, labels: &[String]) -> BTreeMap<String, String> {
    map.into_iter()
        .filter(|(l, _)| labels.contains(l))
        .collect()
}

fn drop(map: BTreeMap<String, String>, labels: &[String]) -> BTreeMap<String, String> {
    map.into_iter()
        .filter(|(l, _)| !labels.contains(l))
        .collect()
}

fn selector_carried(
    ctx: &Context,
    vs: &promql_parser::parser::VectorSelector,
) -> BTreeMap<String, String> {
    let Some(name) = promql::metric_name(vs) else {
        return BTreeMap::new();
    };
    let Some(entry) = ctx.catalog.get(name) else {
        return BTreeMap::new();
    };
    entry
        .renamed
        .keys()
        .filter(|l| {
            !promql::label_matchers(vs).any(|m| &m.name == *l && !matches_empty(&m.op, &m.value))
        })
        .map(|l| (l.clone(), name.to_string()))
        .collect()
}

/// One finding of a renamed label read under its own name.
struct Finding {
    severity: Severity,
    renamed: Renamed,
    message: String,
    help: String,
}

/// A finding about `label` of `metric`, read as `what` (`by (namespace)`).
fn finding(
    ctx: &Context,
    metric: &str,
    label: &str,
    severity: Severity,
    effect: impl FnOnce(&Renamed) -> (String, String),
) -> Option<Finding> {
    let entry = ctx.catalog.get(metric)?;
    let (renamed, _) = Renamed::of(ctx, entry, label)?;
    let (message, help) = effect(&renamed);
    Some(Finding {
        severity,
        renamed,
        message,
        help,
    })
}

/// The findings in the label lists and `label_replace` sources of `expr`.
fn in_expression(ctx: &Context, expr: &Expr, out: &mut Vec<Finding>) {
    let mut stack = vec![expr];
    while let Some(node) = stack.pop() {
        stack.extend(promql::children(node));
        match node {
            Expr::Aggregate(a) => {
                let inner = carried(ctx, &a.expr);
                let op = a.op.to_string();
                match &a.modifier {
                    Some(LabelModifier::Include(by)) => {
                        for l in &by.labels {
                            let Some(metric) = inner.get(l) else { continue };
                            out.extend(finding(ctx, metric, l, Severity::Error, |r| {
                                (
                                    format!(
                                        "`{op} by ({l})` over `{metric}` groups by the target's `{l}`, not {}'s, so the objects {} reports on are merged",
                                        r.owner, r.owner
                                    ),
                                    format!("{}, or group `by ({})`", r.honor, r.exported),
                                )
                            }));
                        }
                    }
                    Some(LabelModifier::Exclude(without)) => {
                        for l in &without.labels {
                            let Some(metric) = inner.get(l) else { continue };
                            let exported = format!("exported_{l}");
                            if without.labels.contains(&exported) {
                                continue;
                            }
                            out.extend(finding(ctx, metric, l, Severity::Warning, |r| {
                                (
                                    format!(
                                        "`{op} without ({l})` over `{metric}` removes the target's `{l}` but keeps {}'s as `{}`, so the result is still split by it",
                                        r.owner, r.exported
                                    ),
                                    format!("{}, or add `{}` to `without (...)`", r.honor, r.exported),
                                )
                            }));
                        }
                    }
                    None => {}
                }
            }
            Expr::Binary(b) => {
                if b.op.id() == token::T_LOR || is_scalar(&b.lhs) || is_scalar(&b.rhs) {
                    continue;
                }
                let Some(matching) = b.modifier.as_ref().and_then(|m| m.matching.as_ref()) else {
                    continue;
                };
                let (lhs, rhs) = (carried(ctx, &b.lhs), carried(ctx, &b.rhs));
                let (lhs_labels, rhs_labels) = (labels(ctx, &b.lhs), labels(ctx, &b.rhs));
                let sides = [(&lhs, &rhs, &rhs_labels), (&rhs, &lhs, &lhs_labels)];
                match matching {
                    LabelModifier::Include(on) => {
                        for l in &on.labels {
                            // Both sides renamed alike match alike; a side
                            // without the label at all is P013's to report.
                            let Some(metric) =
                                sides.iter().find_map(|(this, that, that_labels)| {
                                    this.get(l).filter(|_| {
                                        !that.contains_key(l) && that_labels.may_have(l)
                                    })
                                })
                            else {
                                continue;
                            };
                            out.extend(finding(ctx, metric, l, Severity::Error, |r| {
                                (
                                    format!(
                                        "`on ({l})` matches `{metric}` by the target's `{l}`, not {}'s, against a side whose `{l}` is the object's own: the pairs are wrong or missing",
                                        r.owner
                                    ),
                                    format!(
                                        "{}, or match on `{}` with label_replace(..., \"{l}\", \"$1\", \"{}\", \"(.*)\") on that side",
                                        r.honor, r.exported, r.exported
                                    ),
                                )
                            }));
                        }
                    }
                    LabelModifier::Exclude(ignoring) => {
                        for l in &ignoring.labels {
                            let exported = format!("exported_{l}");
                            if ignoring.labels.contains(&exported) {
                                continue;
                            }
                            let Some(metric) = sides.iter().find_map(|(this, _, that_labels)| {
                                this.get(l).filter(|_| !that_labels.may_have(&exported))
                            }) else {
                                continue;
                            };
                            out.extend(finding(ctx, metric, l, Severity::Error, |r| {
                                (
                                    format!(
                                        "`ignoring ({l})` leaves {}'s `{}` on `{metric}` in the match, and the other side never has it: the operation never pairs",
                                        r.owner, r.exported
                                    ),
                                    format!("{}, or add `{}` to `ignoring (...)`", r.honor, r.exported),
                                )
                            }));
                        }
                    }
                }
            }
            Expr::Call(c) if matches!(c.func.name, "label_replace" | "label_join") => {
                let args = &c.args.args;
                let Some(source) = args.first().map(|a| carried(ctx, a)) else {
                    continue;
                };
                let from = if c.func.name == "label_replace" {
                    3..4
                } else {
                    3..args.len()
                };
                for arg in args.get(from).into_iter().flatten() {
                    let Expr::StringLiteral(l) = &**arg else {
                        continue;
                    };
                    let Some(metric) = source.get(&l.val) else {
                        continue;
                    };
                    let name = c.func.name;
                    out.extend(finding(ctx, metric, &l.val, Severity::Error, |r| {
                        (
                            format!(
                                "`{name}` reads `{}` of `{metric}`, which holds {}, not {}'s",
                                r.label, r.holds, r.owner
                            ),
                            format!("{}, or read `\"{}\"`", r.honor, r.exported),
                        )
                    }));
                }
            }
            _ => {}
        }
    }
}

fn run(ws: &Workspace, ctx: &Context, out: &mut Vec<Diagnostic>) {
    for (e, expr) in parsed(ws) {
        let mut found = Vec::new();
        selectors(ctx, e, expr, &mut found);
        in_expression(ctx, expr, &mut found);
        if let Role::Rule(rule) = &e.role {
            if let Some(alert) = &rule.alert {
                templates(ctx, alert, rule, expr, &mut found);
            }
        }
        for f in found {
            out.push(at(
                ws,
                e,
                CHECK.code,
                f.severity,
                format!("{}: {}", f.message, f.renamed.why()),
                f.help,
            ));
        }
    }
}

/// `{{ $labels.x }}` in an alert's annotations and labels, where x comes
/// out of the expression holding the target's value.
fn templates(
    ctx: &Context,
    alert: &str,
    rule: &crate::lint::inputs::RuleContext,
    expr: &Expr,
    out: &mut Vec<Finding>,
) {
    let result = carried(ctx, expr);
    if result.is_empty() {
        return;
    }
    let mut seen = BTreeSet::new();
    for (key, text) in rule.annotations.iter().chain(rule.labels.iter()) {
        for label in super::label_template::template_labels(text) {
            let Some(metric) = result.get(label) else {
                continue;
            };
            if !seen.insert((key.clone(), label.to_string())) {
                continue;
            }
            out.extend(finding(ctx, metric, label, Severity::Error, |r| {
                (
                    format!(
                        "alert {alert}: `{key}` uses `$labels.{label}`, which renders {}, not {}'s",
                        r.holds, r.owner
                    ),
                    format!("{}, or use `$labels.{}`", r.honor, r.exported),
                )
            }));
        }
    }
}

/// Matchers on a renamed label whose value is not the target's.
fn selectors(
    ctx: &Context,
    e: &crate::lint::inputs::Expression,
    expr: &Expr,
    out: &mut Vec<Finding>,
) {
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
            if !entry.renamed.contains_key(&m.name) {
                continue;
            }
            // A dashboard variable's value is unknown here.
            if matches_empty(&m.op, &m.value) || (dashboard && m.value.contains("placeholder")) {
                continue;
            }
            let Some((renamed, target_values)) = Renamed::of(ctx, entry, &m.name) else {
                continue;
            };
            // `namespace="keda"` on a target in namespace keda selects the target.
            let target_value = match &target_values {
                Some(values) => values.iter().any(|v| matches(&m.op, &m.value, v)),
                None => true,
            };
            if target_value {
                continue;
            }
            out.push(Finding {
                severity: Severity::Error,
                message: format!(
                    "`{name}{{{}{}\"{}\"}}` never matches",
                    m.name, m.op, m.value
                ),
                help: format!(
                    "{}, or select `{}{}\"{}\"`",
                    renamed.honor, renamed.exported, m.op, m.value
                ),
                renamed,
            });
        }
    }
}
