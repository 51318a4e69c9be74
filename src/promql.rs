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

/// The longest expression poolc parses. Real rules and panel queries are a
/// few hundred bytes; promql-parser's time grows with the square of an
/// operator chain, so the limits below keep a hostile input cheap.
pub const MAX_EXPR_BYTES: usize = 16 * 1024;

/// The deepest nesting poolc parses: brackets, function calls, aggregations,
/// subqueries and each operator of a chain add a level. The parser, the
/// analysis and dropping the tree all recurse once per level.
pub const MAX_DEPTH: usize = 200;

/// The most operators (`+`, `==`, `and`, `[`, …) in one expression: each may
/// add a level, and the parser's work grows with their square.
pub const MAX_OPERATORS: usize = 1000;

/// Why an expression was not parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// promql-parser's own message.
    #[error("{0}")]
    Syntax(String),
    #[error("the expression is {bytes} bytes, over poolc's limit of {MAX_EXPR_BYTES}")]
    TooLong { bytes: usize },
    #[error("the expression has more than {MAX_OPERATORS} operators")]
    TooManyOperators,
    #[error("the expression nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

impl ParseError {
    /// How to fix it.
    pub fn help(&self) -> &'static str {
        match self {
            ParseError::Syntax(_) => {
                "fix the expression; `promtool check rules` shows the same error"
            }
            ParseError::TooLong { .. } | ParseError::TooManyOperators | ParseError::TooDeep => {
                "split the expression into recording rules and combine their results; \
                 nothing this large or deep is needed to express an alert or a panel"
            }
        }
    }
}

/// Parses a PromQL expression within the limits above.
pub fn parse(expr: &str) -> Result<Expr, ParseError> {
    if expr.len() > MAX_EXPR_BYTES {
        return Err(ParseError::TooLong { bytes: expr.len() });
    }
    let shape = Shape::of(expr);
    if shape.depth > MAX_DEPTH {
        return Err(ParseError::TooDeep);
    }
    if shape.operators > MAX_OPERATORS {
        return Err(ParseError::TooManyOperators);
    }
    let parsed = parser::parse(expr).map_err(ParseError::Syntax)?;
    if depth(&parsed) > MAX_DEPTH {
        return Err(ParseError::TooDeep);
    }
    Ok(parsed)
}

/// Parses a Grafana panel target: its `$variables` become placeholders
/// (`$__rate_interval` a duration, `$env` a string) first.
pub fn parse_dashboard(expr: &str) -> Result<Expr, ParseError> {
    if expr.len() > MAX_EXPR_BYTES {
        return Err(ParseError::TooLong { bytes: expr.len() });
    }
    parse(&substitute_variables(expr))
}

/// What a lexical pass sees before the parser runs: the bracket depth and
/// the operators, outside strings and comments.
struct Shape {
    depth: usize,
    operators: usize,
}

impl Shape {
    fn of(expr: &str) -> Shape {
        let mut shape = Shape {
            depth: 0,
            operators: 0,
        };
        let mut open = 0usize;
        let mut word = String::new();
        let mut chars = expr.chars();
        let count_word = |word: &mut String, operators: &mut usize| {
            if ["and", "or", "unless", "atan2"]
                .iter()
                .any(|k| word.eq_ignore_ascii_case(k))
            {
                *operators += 1;
            }
            word.clear();
        };
        while let Some(c) = chars.next() {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                word.push(c);
                continue;
            }
            count_word(&mut word, &mut shape.operators);
            match c {
                '"' | '\'' | '`' => {
                    let mut escaped = false;
                    for s in chars.by_ref() {
                        if escaped {
                            escaped = false;
                        } else if s == '\\' && c != '`' {
                            escaped = true;
                        } else if s == c {
                            break;
                        }
                    }
                }
                '#' => {
                    for s in chars.by_ref() {
                        if s == '\n' {
                            break;
                        }
                    }
                }
                '(' | '{' | '[' => {
                    open += 1;
                    shape.depth = shape.depth.max(open);
                    if c == '[' {
                        shape.operators += 1;
                    }
                }
                ')' | '}' | ']' => open = open.saturating_sub(1),
                '+' | '-' | '*' | '/' | '%' | '^' | '<' | '>' | '=' | '!' | '@' => {
                    shape.operators += 1
                }
                _ => {}
            }
        }
        count_word(&mut word, &mut shape.operators);
        shape
    }
}

/// The depth of a parsed tree, without recursion.
fn depth(expr: &Expr) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(expr, 1usize)];
    while let Some((e, d)) = stack.pop() {
        deepest = deepest.max(d);
        if d > MAX_DEPTH {
            break;
        }
        stack.extend(children(e).into_iter().map(|c| (c, d + 1)));
    }
    deepest
}

/// The direct subexpressions of `expr`.
pub fn children(expr: &Expr) -> Vec<&Expr> {
    match expr {
        Expr::Aggregate(a) => std::iter::once(&*a.expr)
            .chain(a.param.as_deref())
            .collect(),
        Expr::Unary(u) => vec![&u.expr],
        Expr::Binary(b) => vec![&b.lhs, &b.rhs],
        Expr::Paren(p) => vec![&p.expr],
        Expr::Subquery(s) => vec![&s.expr],
        Expr::Call(c) => c.args.args.iter().map(|a| &**a).collect(),
        Expr::VectorSelector(_)
        | Expr::MatrixSelector(_)
        | Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::Extension(_) => Vec::new(),
    }
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
