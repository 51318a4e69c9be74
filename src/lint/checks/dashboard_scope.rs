//! P009: dashboard queries not scoped by the catalog's external labels,
//! multi-value variables matched with `=`, and hard-coded datasources.

use super::{parsed, Check};
use crate::diagnostic::{Diagnostic, Severity};
use crate::lint::{at, inputs::Role, Context, Workspace};
use crate::promql;

pub const CHECK: Check = Check {
    code: "P009",
    name: "dashboard-scope",
    severity: Severity::Error,
    summary: "A dashboard selector not scoped by the catalog's external labels, a multi-value variable matched with `=`, or a hard-coded datasource.",
    doc: r#"
What it does: when the catalog declares external labels (`external_labels:
[cluster, env]`), every selector of every panel query must match each of
them against its template variable. A variable that can hold several values
(`multi` or `includeAll`) must be matched with `=~` or `!~`. Every datasource
reference must be a variable (`${datasource}`) or one of Grafana's own
(`-- Grafana --`, `-- Mixed --`, `-- Dashboard --`).

Why it matters: without the scope, `max by (pool)` merges environments that
share pool names; a queued-vs-running panel once showed an impossible
picture that way. Grafana joins a multi-value selection as `a|b`, which `=`
compares as one literal string: selecting two values, or All, empties the
panel. A hard-coded datasource uid breaks on every other Grafana.

Example:
    "expr": "sum by (pool) (poolc:pool_queue:connections{pool=\"$pool\"})"

Instead:
    "expr": "sum by (pool) (poolc:pool_queue:connections{cluster=\"$cluster\", env=\"$env\", pool=~\"$pool\"})"
"#,
    run,
};

fn run(ws: &Workspace, ctx: &Context, out: &mut Vec<Diagnostic>) {
    for (e, expr) in parsed(ws) {
        let Role::Dashboard { panel, .. } = &e.role else {
            continue;
        };
        for vs in promql::selectors(expr) {
            let have: Vec<&str> = promql::label_matchers(vs)
                .map(|m| m.name.as_str())
                .collect();
            let missing: Vec<&String> = ctx
                .scope_labels
                .iter()
                .filter(|l| !have.contains(&l.as_str()))
                .collect();
            if !missing.is_empty() {
                let name = promql::metric_name(vs).unwrap_or("{…}");
                let listed = missing
                    .iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(" and ");
                out.push(at(
                    ws,
                    e,
                    CHECK.code,
                    Severity::Error,
                    format!(
                        "`{name}` is not scoped by {listed}, which the catalog declares as external \
                         labels: series of every {} are merged",
                        missing[0]
                    ),
                    format!(
                        "add {}",
                        missing
                            .iter()
                            .map(|l| format!("{l}=\"${l}\""))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        for (label, op, variable) in equal_on_multi_value(&e.text, &panel.multi_value) {
            let regex_op = if op == "!=" { "!~" } else { "=~" };
            out.push(at(
                ws,
                e,
                CHECK.code,
                Severity::Error,
                format!(
                    "`{label}{op}\"${variable}\"`: `${variable}` can hold several values (multi-value \
                     or All), which Grafana joins as a regex that `{op}` compares as one string, so \
                     selecting more than one value shows nothing"
                ),
                format!("match it as a regex: `{label}{regex_op}\"${variable}\"`"),
            ));
        }
    }
    for d in &ws.datasources {
        if !d.uid.starts_with('$') {
            out.push(Diagnostic {
                path: d.path.clone(),
                line: d.line,
                column: d.column,
                code: CHECK.code,
                severity: Severity::Error,
                message: format!("hard-coded datasource `{}`", d.uid),
                help: "use a datasource template variable: {\"type\": \"prometheus\", \"uid\": \"${datasource}\"}".into(),
                source_line: crate::diagnostic::excerpt(&ws.source_line(&d.path, d.line), 1),
                subject: d.subject.clone(),
            });
        }
    }
}

/// Each `label="…$var…"` or `label!="…$var…"` in a query's text whose
/// variable is multi-value: its label, operator and variable.
fn equal_on_multi_value<'a>(
    text: &'a str,
    multi: &std::collections::BTreeSet<String>,
) -> Vec<(&'a str, &'static str, &'a str)> {
    let mut found = Vec::new();
    if multi.is_empty() {
        return found;
    }
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let quote = bytes[i];
        if quote != b'"' && quote != b'\'' {
            i += 1;
            continue;
        }
        // The operator and label just before the opening quote.
        let before = text[..i].trim_end();
        let op = if before.ends_with("!=") {
            Some("!=")
        } else if before.ends_with('=') && !before.ends_with("==") && !before.ends_with("~=") {
            Some("=")
        } else {
            None
        };
        let end = text[i + 1..]
            .find(quote as char)
            .map_or(text.len(), |j| i + 1 + j);
        if let Some(op) = op {
            let lhs = before[..before.len() - op.len()].trim_end();
            let label_start = lhs
                .char_indices()
                .rev()
                .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_'))
                .map_or(0, |(j, c)| j + c.len_utf8());
            let label = &lhs[label_start..];
            let literal = &text[i + 1..end];
            let mut at = 0;
            while at < literal.len() {
                match promql::variable_at(literal, at) {
                    Some((len, name)) => {
                        if !label.is_empty() && multi.contains(name) {
                            found.push((label, op, name));
                        }
                        at += len;
                    }
                    None => at += literal[at..].chars().next().map_or(1, char::len_utf8),
                }
            }
        }
        i = end + 1;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_equality_on_multi_value_variables_only() {
        let multi = ["pool".to_string()].into();
        let text = r#"x{pool="$pool", env="$env", a=~"$pool", é="${pool}", b != "[[pool]]"} == 1"#;
        assert_eq!(
            equal_on_multi_value(text, &multi),
            [("pool", "=", "pool"), ("b", "!=", "pool")]
        );
    }
}
