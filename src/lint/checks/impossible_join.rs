//! P013: binary operations whose two sides never share a matching label set.

use std::collections::BTreeSet;

use promql_parser::parser::{token, Expr, LabelModifier};

use super::{parsed, Check};
use crate::diagnostic::{Diagnostic, Severity};
use crate::lint::labels::{is_scalar, labels, Labels};
use crate::lint::{at, Context, Workspace};
use crate::promql;

pub const CHECK: Check = Check {
    code: "P013",
    name: "impossible-join",
    severity: Severity::Error,
    summary: "The two sides of a vector match never share their matching labels: the operation never pairs a series.",
    doc: r#"
What it does: for every binary operation between two vectors (arithmetic,
comparisons, `and`, `unless`, with or without `on`, `ignoring`,
`group_left` and `group_right`), computes which labels each side carries as
Prometheus stores them, and reports a matching label that one side always
has and the other never has. With `on (a, b)` the matching labels are `a`
and `b`; otherwise every label except the `ignoring` ones. Only sides made
of metrics the catalog knows are judged, and the external labels are left
out (both sides carry them alike). `or` is not judged: its sides need not
meet (`x or vector(0)`).

Why it matters: a join that never pairs returns nothing, so an alert over it
never fires; an `unless` that never pairs removes nothing, so its alert fires
whenever the left side exists. A nodeclaim alert written as
`karpenter_nodeclaims_created_total unless on (nodeclaim) ...` fires on every
created nodeclaim, because the created counter has no `nodeclaim` label.

Example:
    expr: kube_deployment_status_replicas_available
          < on (namespace, horizontalpodautoscaler) kube_horizontalpodautoscaler_spec_min_replicas

Instead:
    expr: kube_deployment_status_replicas_available
          < on (namespace, deployment)
          label_replace(kube_horizontalpodautoscaler_spec_min_replicas, "deployment", "$1", "horizontalpodautoscaler", "keda-hpa-(.+)")
"#,
    run,
};

/// Whether every metric `expr` reads is one the catalog knows the labels of.
fn known(ctx: &Context, expr: &Expr) -> bool {
    let selectors = promql::selectors(expr);
    !selectors.is_empty()
        && selectors.iter().all(|vs| {
            promql::metric_name(vs)
                .and_then(|n| ctx.catalog.get(n))
                .is_some_and(|e| !e.open)
        })
}

/// A label `has` always carries and `lacks` never does, among `matching`
/// (None: every label).
fn unmatched(
    has: &Labels,
    lacks: &Labels,
    matching: Option<&BTreeSet<String>>,
    ignoring: &BTreeSet<String>,
    external: &[String],
) -> Option<String> {
    has.guaranteed
        .iter()
        .filter(|l| matching.is_none_or(|m| m.contains(*l)))
        .filter(|l| !ignoring.contains(*l) && !external.contains(l))
        // `ignoring (x)` that leaves a renamed `exported_x` in the match is
        // P012's to report, with the scrape that renamed it.
        .filter(|l| {
            l.strip_prefix("exported_")
                .is_none_or(|own| !ignoring.contains(own))
        })
        .find(|l| !lacks.may_have(l))
        .cloned()
}

fn side_names(expr: &Expr) -> String {
    let names = promql::metric_names(expr);
    if names.is_empty() {
        return "the expression".into();
    }
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn run(ws: &Workspace, ctx: &Context, out: &mut Vec<Diagnostic>) {
    for (e, expr) in parsed(ws) {
        let mut stack = vec![expr];
        while let Some(node) = stack.pop() {
            stack.extend(promql::children(node));
            let Expr::Binary(b) = node else { continue };
            if b.op.id() == token::T_LOR || is_scalar(&b.lhs) || is_scalar(&b.rhs) {
                continue;
            }
            if !known(ctx, &b.lhs) || !known(ctx, &b.rhs) {
                continue;
            }
            let (lhs, rhs) = (labels(ctx, &b.lhs), labels(ctx, &b.rhs));
            let (matching, ignoring, modifier) =
                match b.modifier.as_ref().and_then(|m| m.matching.as_ref()) {
                    Some(LabelModifier::Include(on)) => (
                        Some(on.labels.iter().cloned().collect::<BTreeSet<_>>()),
                        BTreeSet::new(),
                        format!("on ({})", on.labels.join(", ")),
                    ),
                    Some(LabelModifier::Exclude(ign)) => (
                        None,
                        ign.labels.iter().cloned().collect(),
                        format!("ignoring ({})", ign.labels.join(", ")),
                    ),
                    None => (None, BTreeSet::new(), "(matching all labels)".to_string()),
                };
            let external = &ctx.external_labels;
            let found = unmatched(&lhs, &rhs, matching.as_ref(), &ignoring, external)
                .map(|l| (l, &b.lhs, &b.rhs))
                .or_else(|| {
                    unmatched(&rhs, &lhs, matching.as_ref(), &ignoring, external)
                        .map(|l| (l, &b.rhs, &b.lhs))
                });
            let Some((label, has, lacks)) = found else {
                continue;
            };
            let op = b.op.to_string();
            let effect = match b.op.id() {
                token::T_LUNLESS => {
                    "so `unless` removes nothing and the left side passes whole".to_string()
                }
                token::T_LAND => "so `and` returns nothing".to_string(),
                _ => format!("so `{op}` returns nothing"),
            };
            let fix = if matching.is_some() {
                format!(
                    "match on labels both sides carry, or bring `{label}` to {} with label_replace()",
                    side_names(lacks)
                )
            } else {
                format!(
                    "match with `on (...)` on labels both sides carry, or add `{label}` to `ignoring (...)`"
                )
            };
            out.push(at(
                ws,
                e,
                CHECK.code,
                CHECK.severity,
                format!(
                    "`{op} {modifier}` never pairs: {} always has `{label}`, {} never has it, {effect}",
                    side_names(has),
                    side_names(lacks)
                ),
                fix,
            ));
        }
    }
}
