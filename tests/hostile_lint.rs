//! `poolc lint` against hostile input: files too large to read, YAML that
//! expands or nests past the budget, JSON nested past the parser's limit,
//! and PromQL too long, too deep or with too many operators. Each gives exit
//! 2 or a P001 diagnostic naming the limit, never a panic or a stack
//! overflow, and the exact text is a snapshot. The library-level tests run
//! on a test thread's small stack, so a recursion that escaped the limits
//! would fail here first.

mod common;

use std::path::Path;

use common::{poolc, scratch, stderr, stdout};
use poolc::promql::{self, ParseError, MAX_DEPTH, MAX_EXPR_BYTES, MAX_OPERATORS};

/// A rule file with one alert whose expression is `expr`.
fn rule_file(expr: &str) -> String {
    format!(
        "groups:\n  - name: hostile\n    rules:\n      - alert: Hostile\n        expr: '{}'\n        labels: {{severity: warning}}\n        annotations: {{summary: hostile}}\n",
        expr.replace('\'', "''")
    )
}

/// A dashboard with one panel target `expr`.
fn dashboard(expr: &str) -> String {
    serde_json::json!({
        "uid": "hostile",
        "panels": [{"type": "timeseries", "targets": [{"expr": expr}]}],
    })
    .to_string()
}

/// `((((1))))`: `n` levels of brackets.
fn parens(n: usize) -> String {
    format!("{}1{}", "(".repeat(n), ")".repeat(n))
}

/// `up or up or …`: a flat chain the parser turns into a tree `n` deep.
fn chain(n: usize, op: &str) -> String {
    let mut text = String::from("up");
    for _ in 0..n {
        text.push_str(&format!(" {op} up"));
    }
    text
}

/// Lints the single file `name` with `text` in a scratch directory.
fn lint_one(name: &str, text: &[u8]) -> (Option<i32>, String, String) {
    let dir = scratch(&format!("hostile-{}", name.replace(['/', '.'], "-")));
    std::fs::write(dir.join(name), text).unwrap();
    let out = poolc(&dir, &["lint", name]);
    let (out_text, err_text) = (stdout(&out), stderr(&out));
    assert!(
        !err_text.contains("panicked") && !err_text.contains("overflow"),
        "{name}: {err_text}"
    );
    (out.status.code(), out_text, err_text)
}

#[test]
fn a_file_over_the_size_limit_is_not_read() {
    for name in ["rules.yaml", "pools.json"] {
        let mut text = rule_file("up == 0").into_bytes();
        text.resize(17 * 1024 * 1024, b'\n');
        let (code, _, err) = lint_one(name, &text);
        assert_eq!(code, Some(2), "{err}");
        insta::assert_snapshot!(format!("too_large_{name}"), err);
    }
}

#[test]
fn a_yaml_alias_bomb_stops_at_the_budget() {
    let mut text = String::from(
        "groups:\n  - name: bomb\n    x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for i in 1..12 {
        let p = i - 1;
        text.push_str(&format!(
            "    x{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    text.push_str("    rules: []\n");
    let (code, out, _) = lint_one("bomb.yaml", text.as_bytes());
    assert_eq!(code, Some(1), "{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn deeply_nested_yaml_and_json_are_refused() {
    let yaml = format!("groups:\n{}{}\n", "[\n".repeat(10_000), "]".repeat(10_000));
    let (code, out, _) = lint_one("deep.yaml", yaml.as_bytes());
    assert_eq!(code, Some(1), "{out}");
    insta::assert_snapshot!("deep_yaml", out);

    let json = format!("{}{}", "[\n".repeat(100_000), "]".repeat(100_000));
    let (code, out, _) = lint_one("deep.json", json.as_bytes());
    assert_eq!(code, Some(1), "{out}");
    insta::assert_snapshot!("deep_json", out);
}

#[test]
fn hostile_promql_in_rules_and_dashboards_gets_a_p001_naming_the_limit() {
    let cases = [
        (
            "too_long",
            format!("up{{job=\"{}\"}}", "x".repeat(MAX_EXPR_BYTES)),
        ),
        ("deep_brackets", parens(5_000)),
        ("deep_unary", format!("{}1", "-".repeat(5_000))),
        ("long_chain", chain(1_500, "+")),
        ("deep_chain", chain(300, "or")),
        (
            "deep_calls",
            format!("{}up{}", "abs(".repeat(300), ")".repeat(300)),
        ),
    ];
    for (name, expr) in cases {
        for (file, text) in [
            ("rules.yaml", rule_file(&expr)),
            ("pools.json", dashboard(&expr)),
        ] {
            let (code, out, err) = lint_one(file, text.as_bytes());
            assert_eq!(code, Some(1), "{name} in {file}: {out}{err}");
            assert!(out.contains(": P001 "), "{name} in {file}: {out}");
            let shown: String = out
                .lines()
                .filter(|l| !l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
                .collect::<Vec<_>>()
                .join("\n");
            insta::assert_snapshot!(format!("promql_{name}_{file}"), shown);
        }
    }
}

#[test]
fn a_jobs_query_too_deep_is_a_spec_error() {
    let dir = scratch("hostile-jobs-query");
    let spec = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/production.yaml"),
    )
    .unwrap();
    let start = spec
        .find("      query: ")
        .expect("production has a jobs pool");
    let end = start + spec[start..].find('\n').unwrap();
    let hostile = format!("      query: '{}'", parens(1_000));
    std::fs::write(
        dir.join("specs/production.yaml"),
        format!("{}{}{}", &spec[..start], hostile, &spec[end..]),
    )
    .unwrap();
    let out = poolc(&dir, &["generate"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("nests deeper than {MAX_DEPTH} levels")),
        "{err}"
    );
}

/// The limits hold on a test thread's stack, in a debug build, for every
/// shape that recurses: brackets, calls, aggregations, unary and binary chains.
#[test]
fn the_parser_rejects_every_deep_shape_without_recursing_into_it() {
    let cases = [
        (parens(100_000), ParseError::TooLong { bytes: 200_001 }),
        (parens(MAX_DEPTH + 1), ParseError::TooDeep),
        (
            format!("{}1", "-".repeat(MAX_OPERATORS + 1)),
            ParseError::TooManyOperators,
        ),
        (
            chain(MAX_OPERATORS + 1, "and"),
            ParseError::TooManyOperators,
        ),
        (chain(MAX_DEPTH + 1, "/"), ParseError::TooDeep),
        (
            format!(
                "{}up{}",
                "sum(".repeat(MAX_DEPTH + 1),
                ")".repeat(MAX_DEPTH + 1)
            ),
            ParseError::TooDeep,
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(
            promql::parse(&text).err(),
            Some(expected.clone()),
            "{}",
            &text[..40]
        );
        assert_eq!(promql::parse_dashboard(&text).err(), Some(expected));
    }
    // Just inside the limits, everything parses and the analysis runs.
    let ctx = poolc::lint::catalog_file::CatalogFile::default()
        .context()
        .unwrap();
    for text in [
        parens(MAX_DEPTH - 2),
        chain(MAX_DEPTH - 2, "or"),
        format!(
            "{}up{}",
            "abs(".repeat(MAX_DEPTH - 2),
            ")".repeat(MAX_DEPTH - 2)
        ),
    ] {
        let expr = promql::parse(&text).unwrap();
        let _ = poolc::lint::labels::labels(&ctx, &expr);
        let _ = promql::metric_names(&expr);
    }
}

/// "Did you mean" compares a name with every known one; a hostile name
/// 16 KiB long must not cost seconds per candidate (found by fuzzing).
#[test]
fn a_huge_unknown_metric_name_is_reported_quickly() {
    let name = "k".repeat(MAX_EXPR_BYTES - 10);
    let start = std::time::Instant::now();
    let (code, out, err) = lint_one("rules.yaml", rule_file(&name).as_bytes());
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains(": P002 "), "{out}");
    assert!(
        start.elapsed() < std::time::Duration::from_secs(10),
        "took {:?}",
        start.elapsed()
    );
}

/// The same for an instance type in a spec: a megabyte-long name is checked
/// against every built-in type's name.
#[test]
fn a_huge_unknown_instance_type_is_reported_quickly() {
    let dir = scratch("hostile-instance-type");
    let spec = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/production.yaml"),
    )
    .unwrap();
    let start = spec
        .find("type: m6id.24xlarge")
        .expect("production uses m6id.24xlarge");
    let huge = format!("type: {}", "m".repeat(900 * 1024));
    let text = format!(
        "{}{}{}",
        &spec[..start],
        huge,
        &spec[start + "type: m6id.24xlarge".len()..]
    );
    std::fs::write(dir.join("specs/production.yaml"), text).unwrap();
    let clock = std::time::Instant::now();
    let out = poolc(&dir, &["generate"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("instance type"),
        "{}",
        err.chars().take(400).collect::<String>()
    );
    assert!(
        clock.elapsed() < std::time::Duration::from_secs(10),
        "took {:?}",
        clock.elapsed()
    );
}
