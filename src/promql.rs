//! PromQL as data: parsing (promql-parser) and the walk that finds every
//! series selector in an expression. The ServiceMonitor keep-lists are derived
//! from it, and the lint checks read it.

use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::{self, Expr, VectorSelector};

/// What a Grafana variable becomes where PromQL wants a name: a metric
/// name or a label in `by (…)`. Checks skip it, since its value is chosen
/// in the browser.
pub const VARIABLE_NAME: &str = "__grafana_variable__";

/// What a variable becomes in a range, subquery or `offset`: long enough
/// that no window check calls it short, whatever the scrape interval.
const VARIABLE_DURATION: &str = "1h";

/// What a variable becomes where PromQL wants a number (`> $threshold`,
/// `topk($n, …)`, `$__range_s`).
const VARIABLE_NUMBER: &str = "1";

/// What a variable becomes inside a string (`{pool=~"$pool"}`).
const VARIABLE_STRING: &str = "placeholder";

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

/// Replaces each Grafana variable (`$name`, `${name}`, `${name:format}`,
/// `[[name]]`) with a placeholder of the type PromQL expects where it
/// stands, as Grafana's interpolation leaves a value of that type there:
/// a duration inside `[…]` or after `offset`, a number beside an operator or
/// as a scalar argument, a string inside quotes, a name elsewhere.
pub fn substitute_variables(expr: &str) -> String {
    let bytes = expr.as_bytes();
    let mut out = String::with_capacity(expr.len());
    let mut at = 0;
    // Where we are: inside a range `[…]`, inside label-list parentheses,
    // and the last significant token before the current position.
    let mut in_range = false;
    let mut label_list = 0usize;
    let mut parens: Vec<bool> = Vec::new();
    let mut last_word = String::new();
    let mut last_char = ' ';
    while at < bytes.len() {
        let c = expr[at..].chars().next().unwrap_or(' ');
        if c == '"' || c == '\'' || c == '`' {
            let end = string_end(expr, at, c);
            out.push_str(&replace_in_string(&expr[at..end]));
            at = end;
            last_char = c;
            last_word.clear();
            continue;
        }
        if let Some((len, _name)) = variable_at(expr, at) {
            let next = expr[at + len..].trim_start().chars().next();
            let unit_follows = expr[at + len..]
                .chars()
                .next()
                .is_some_and(|n| n.is_ascii_alphabetic());
            let placeholder = if in_range || last_word == "offset" {
                if unit_follows {
                    VARIABLE_NUMBER
                } else {
                    VARIABLE_DURATION
                }
            } else if label_list > 0 || matches!(next, Some('{' | '[')) {
                VARIABLE_NAME
            } else if last_word == "bool"
                || "+-*/%^<>=!,@".contains(last_char)
                || (last_char == '(' && SCALAR_FIRST.contains(&last_word.as_str()))
            {
                VARIABLE_NUMBER
            } else {
                VARIABLE_NAME
            };
            out.push_str(placeholder);
            at += len;
            last_char = 'x';
            last_word = "$".into();
            continue;
        }
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            let end = expr[at..]
                .find(|n: char| !(n.is_ascii_alphanumeric() || n == '_' || n == ':'))
                .map_or(expr.len(), |i| at + i);
            last_word = expr[at..end].to_ascii_lowercase();
            out.push_str(&expr[at..end]);
            last_char = 'x';
            at = end;
            continue;
        }
        match c {
            '[' => in_range = true,
            ']' => in_range = false,
            '(' => {
                let list = LABEL_LISTS.contains(&last_word.as_str());
                parens.push(list);
                if list {
                    label_list += 1;
                }
            }
            ')' if parens.pop() == Some(true) => {
                label_list = label_list.saturating_sub(1);
            }
            _ => {}
        }
        if !c.is_whitespace() {
            last_char = c;
            if c != '(' {
                last_word.clear();
            }
        }
        out.push(c);
        at += c.len_utf8();
    }
    out
}

/// Keywords whose parentheses hold label names.
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// Functions and aggregations whose first argument is a number.
const SCALAR_FIRST: &[&str] = &[
    "topk",
    "bottomk",
    "limitk",
    "limit_ratio",
    "quantile",
    "quantile_over_time",
    "histogram_quantile",
    "vector",
];

/// The byte just past the string literal that opens at `start` with `quote`.
fn string_end(expr: &str, start: usize, quote: char) -> usize {
    let mut escaped = false;
    for (i, c) in expr[start + 1..].char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' && quote != '`' {
            escaped = true;
        } else if c == quote {
            return start + 1 + i + 1;
        }
    }
    expr.len()
}

/// Every variable inside a string literal becomes the same word.
fn replace_in_string(literal: &str) -> String {
    let mut out = String::with_capacity(literal.len());
    let mut at = 0;
    while at < literal.len() {
        if let Some((len, _)) = variable_at(literal, at) {
            out.push_str(VARIABLE_STRING);
            at += len;
        } else {
            let c = literal[at..].chars().next().unwrap_or(' ');
            out.push(c);
            at += c.len_utf8();
        }
    }
    out
}

/// A Grafana variable reference starting at byte `at`: its length and name.
/// `$name`, `${name}`, `${name:format}` and the older `[[name]]`.
pub fn variable_at(text: &str, at: usize) -> Option<(usize, &str)> {
    let rest = text.get(at..)?;
    let word_len = |s: &str| {
        s.char_indices()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_'))
            .map_or(s.len(), |(i, _)| i)
    };
    if let Some(inner) = rest.strip_prefix("${") {
        let close = inner.find('}')?;
        let body = &inner[..close];
        let name = body.split(':').next().unwrap_or("");
        let name_len = word_len(name);
        if name.is_empty() || name_len != name.len() {
            return None;
        }
        return Some((close + 3, name));
    }
    if let Some(inner) = rest.strip_prefix("[[") {
        let close = inner.find("]]")?;
        let name = inner[..close].split(':').next().unwrap_or("");
        if name.is_empty() || word_len(name) != name.len() {
            return None;
        }
        return Some((close + 4, name));
    }
    let inner = rest.strip_prefix('$')?;
    if !inner
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
    {
        return None;
    }
    let len = word_len(inner);
    Some((len + 1, &inner[..len]))
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
            r#"sum(rate(x{env="placeholder", cluster=~"placeholder"}[1h]))"#
        );
        assert!(parse_dashboard(text).is_ok());
    }

    #[test]
    fn dashboard_variables_take_the_type_of_their_place() {
        let cases = [
            ("rate(x[$trailing])", "rate(x[1h])"),
            ("rate(x[${trailing}])", "rate(x[1h])"),
            ("x offset $shift", "x offset 1h"),
            ("increase(x[${__range_s}s])", "increase(x[1s])"),
            (
                "max_over_time(x[$__range:$__interval])",
                "max_over_time(x[1h:1h])",
            ),
            ("x > $threshold", "x > 1"),
            ("x / $__range_s", "x / 1"),
            ("topk($n, x)", "topk(1, x)"),
            ("clamp_max(x, [[max]])", "clamp_max(x, 1)"),
            ("sum by ($group) (x)", "sum by (__grafana_variable__) (x)"),
            (
                "sum($metric{a=\"b\"})",
                "sum(__grafana_variable__{a=\"b\"})",
            ),
            ("x{a=~\"${a:regex}|b\"}", "x{a=~\"placeholder|b\"}"),
            ("x{a=\"$5\"}", "x{a=\"$5\"}"),
        ];
        for (text, want) in cases {
            assert_eq!(substitute_variables(text), want, "{text}");
            assert!(parse_dashboard(text).is_ok(), "{text}");
        }
    }
}
