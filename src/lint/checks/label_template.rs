//! P005: `$labels.x` in an alert's annotations or labels where x does not
//! survive the expression.

use std::sync::OnceLock;

use regex::Regex;

use super::{parsed, Check};
use crate::diagnostic::{Diagnostic, Severity};
use crate::lint::{at, inputs::Role, labels::labels, Context, Workspace};

pub const CHECK: Check = Check {
    code: "P005",
    name: "label-not-guaranteed",
    severity: Severity::Error,
    summary: "A template uses a label the alert's series may not have: it renders empty.",
    doc: r#"
What it does: computes which labels the alert expression's result is
guaranteed to carry (aggregations keep only `by` labels, `on`/`ignoring`
narrow joins, `group_left` brings labels across, `label_replace` adds one,
`absent` keeps only its equality matchers) and checks every `$labels.x` and
`.Labels.x` in annotations and labels. Never present is an error; present only
sometimes is a warning.

Why it matters: `{{ $labels.scaledObject }}` rendered empty in a paged alert
because `keda_scaler_errors_total` has no labels at all.

Example:
    expr: sum by (scaledObject) (increase(keda_scaler_errors_total[15m])) > 3
    annotations: {summary: "scaler of {{ $labels.scaledObject }} fails"}

Instead:
    expr: sum by (scaledObject) (increase(keda_scaler_detail_errors_total[15m])) > 3
"#,
    run,
};

fn template() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?:\$labels|\.Labels)\.([A-Za-z_][A-Za-z0-9_]*)").expect("static regex")
    })
}

/// The `{{ ... }}` actions of a Go template: only there does `$labels.x`
/// expand; the same characters elsewhere are literal text.
fn actions(text: &str) -> impl Iterator<Item = &str> {
    text.split("{{")
        .skip(1)
        .filter_map(|rest| rest.split_once("}}").map(|(action, _)| action))
}

/// The labels `$labels.x` and `.Labels.x` read in the template actions of
/// `text`, in order.
pub fn template_labels(text: &str) -> impl Iterator<Item = &str> {
    actions(text).flat_map(|action| {
        template()
            .captures_iter(action)
            .filter_map(|cap| cap.get(1).map(|m| m.as_str()))
    })
}

fn run(ws: &Workspace, ctx: &Context, out: &mut Vec<Diagnostic>) {
    for (e, expr) in parsed(ws) {
        let Role::Rule(rule) = &e.role else { continue };
        let Some(alert) = &rule.alert else { continue };
        let result = labels(ctx, expr);
        if result.open {
            continue;
        }
        let texts = rule.annotations.iter().chain(rule.labels.iter());
        for (key, text) in texts {
            for label in template_labels(text) {
                if result.guaranteed.contains(label) {
                    continue;
                }
                let kept = if result.guaranteed.is_empty() {
                    "none".to_string()
                } else {
                    result
                        .guaranteed
                        .iter()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let (severity, what) = if result.may_have(label) {
                    (Severity::Warning, "may not be present on")
                } else {
                    (Severity::Error, "is never present on")
                };
                out.push(at(
                    ws,
                    e,
                    CHECK.code,
                    severity,
                    format!("alert {alert}: `{key}` uses `$labels.{label}`, which {what} the expression's result, so it renders empty"),
                    format!("the result always carries: {kept}; keep `{label}` in the aggregation (`by ({label})`) on a metric that has it, or drop it from the template"),
                ));
            }
        }
    }
}
