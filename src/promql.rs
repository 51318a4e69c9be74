//! PromQL as data: parsing (promql-parser) and the walk that finds every
//! series selector in an expression. The ServiceMonitor keep-lists are derived
//! from it, and the lint checks read it.

use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::{self, Expr, VectorSelector};

/// Template variables Grafana substitutes before a query reaches Prometheus,
/// replaced by values of the same shape so the query parses.
const GRAFANA_VARIABLES: &[(&str, &str)] = &[
    ("$__rate_interval", "5m"),
    ("$__interval", "1m"),
    ("$__range", "1h"),
];

/// Parses a PromQL expression.
pub fn parse(expr: &str) -> Result<Expr, String> {
    parser::parse(expr)
}

/// Parses a Grafana panel target: its `$variables` become placeholders
/// (`$__rate_interval` a duration, `$env` a string) first.
pub fn parse_dashboard(expr: &str) -> Result<Expr, String> {
    parse(&substitute_variables(expr))
}

pub fn substitute_variables(expr: &str) -> String {
    let mut text = expr.to_string();
    for (var, value) in GRAFANA_VARIABLES {
        text = text.replace(var, value);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$'
            && chars
                .peek()
                .is_some_and(|n| n.is_ascii_alphabetic() || *n == '_')
        {
            while chars
                .peek()
                .is_some_and(|n| n.is_ascii_alphanumeric() || *n == '_')
            {
                chars.next();
            }
            out.push_str("placeholder");
        } else {
            out.push(c);
        }
    }
    out
}

/// Every vector selector in `expr`, including those under range selectors,
/// subqueries, function arguments and both sides of binary operators.
pub fn selectors(expr: &Expr) -> Vec<&VectorSelector> {
    let mut out = Vec::new();
    walk(expr, &mut out);
    out
}

fn walk<'a>(expr: &'a Expr, out: &mut Vec<&'a VectorSelector>) {
    match expr {
        Expr::Aggregate(a) => {
            walk(&a.expr, out);
            if let Some(p) = &a.param {
                walk(p, out);
            }
        }
        Expr::Unary(u) => walk(&u.expr, out),
        Expr::Binary(b) => {
            walk(&b.lhs, out);
            walk(&b.rhs, out);
        }
        Expr::Paren(p) => walk(&p.expr, out),
        Expr::Subquery(s) => walk(&s.expr, out),
        Expr::VectorSelector(vs) => out.push(vs),
        Expr::MatrixSelector(ms) => out.push(&ms.vs),
        Expr::Call(c) => {
            for arg in &c.args.args {
                walk(arg, out);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// The metric name a selector reads: `foo{…}` or `{__name__="foo"}`.
pub fn metric_name(vs: &VectorSelector) -> Option<&str> {
    vs.name.as_deref().or_else(|| {
        vs.matchers
            .matchers
            .iter()
            .find(|m| m.name == "__name__" && matches!(m.op, MatchOp::Equal))
            .map(|m| m.value.as_str())
    })
}

/// Matchers other than the metric name.
pub fn label_matchers(vs: &VectorSelector) -> impl Iterator<Item = &Matcher> {
    vs.matchers.matchers.iter().filter(|m| m.name != "__name__")
}

/// The metric names an expression reads.
pub fn metric_names(expr: &Expr) -> Vec<String> {
    let mut names: Vec<String> = selectors(expr)
        .into_iter()
        .filter_map(|vs| metric_name(vs).map(str::to_string))
        .collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_selectors_everywhere() {
        let e = parse(
            r#"sum by (pool) (rate(a_total{x="1"}[5m])) / on(pool) max_over_time(b[1h:5m]) > bool scalar(c) or label_replace(d, "p", "$1", "q", "(.*)")"#,
        )
        .unwrap();
        assert_eq!(metric_names(&e), ["a_total", "b", "c", "d"]);
    }

    #[test]
    fn dashboard_variables_become_placeholders() {
        let text = r#"sum(rate(x{env="$env", cluster=~"$cluster"}[$__rate_interval]))"#;
        assert_eq!(
            substitute_variables(text),
            r#"sum(rate(x{env="placeholder", cluster=~"placeholder"}[5m]))"#
        );
        assert!(parse_dashboard(text).is_ok());
    }
}
