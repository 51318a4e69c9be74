//! What poolc spends is bounded by its input, and linear where it can be:
//! hostile regexes, huge dashboards, minified lines, stale multi-megabyte
//! outputs and specs that multiply. Every run is a child process with a
//! deadline; one past it is killed and fails.

mod common;

use std::fs;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::{poolc, with_repo_specs, VALID_SPEC};

/// Far above what each case takes (well under a few seconds), far below
/// what the unbounded versions took (18 s to never).
const DEADLINE: Duration = Duration::from_secs(30);

/// Runs poolc, killing it past the deadline; also returns how long it took.
fn bounded(dir: &Path, args: &[&str]) -> (Output, Duration) {
    common::poolc_within(dir, args, DEADLINE, u64::MAX)
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

#[test]
fn hostile_keep_regexes_compile_lazily_under_a_size_limit() {
    let dir = common::scratch("cost-regex");
    let lint = dir.join("lint");
    fs::create_dir_all(&lint).unwrap();
    // One real filter, which must still be checked, among hostile ones.
    let mut monitors = String::from(
        "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata:\n  name: real\n  labels:\n    poolc.dev/exporter: haproxy\nspec:\n  endpoints:\n    - metricRelabelings:\n        - sourceLabels: [__name__]\n          action: keep\n          regex: haproxy_up|haproxy_backend_status\n",
    );
    for i in 0..300 {
        monitors.push_str(&format!(
            "---\napiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata:\n  name: m{i}\n  labels:\n    poolc.dev/exporter: haproxy\nspec:\n  endpoints:\n    - metricRelabelings:\n        - sourceLabels: [__name__]\n          action: keep\n          regex: 'haproxy_\\w{{1,300}}\\w{{1,300}}{i}'\n"
        ));
    }
    fs::write(lint.join("monitors.yaml"), monitors).unwrap();
    fs::write(
        lint.join("rules.yaml"),
        "groups:\n  - name: g\n    rules:\n      - record: q\n        expr: sum(haproxy_backend_current_queue)\n",
    )
    .unwrap();
    let (run, took) = bounded(&dir, &["lint", "lint"]);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run.stderr));
    let out = text(&run.stdout);
    assert!(
        out.contains("ServiceMonitor default/real does not keep it"),
        "{out}"
    );
    eprintln!("300 hostile keep regexes: {took:?}");
}

#[test]
fn dashboard_lint_is_linear_in_its_targets() {
    let dir = common::scratch("cost-dashboard");
    let panel = r#"{"type":"timeseries","targets":[{"expr":"sum(haproxy_backend_current_queue{proxy=~\"$pool\"})"}]}"#;
    let mut times = Vec::new();
    for panels in [10_000, 100_000] {
        let body = vec![panel; panels].join(",\n");
        let path = dir.join(format!("d{panels}.json"));
        fs::write(&path, format!("{{\"uid\":\"d\",\"panels\":[\n{body}\n]}}")).unwrap();
        let (run, took) = bounded(&dir, &["lint", &format!("d{panels}.json")]);
        assert!(run.status.code().is_some(), "{}", text(&run.stderr));
        times.push(took);
    }
    eprintln!("dashboard of 10,000 / 100,000 panels: {times:?}");
    // Ten times the targets may take at most about ten times as long (with
    // room for a noisy machine); quadratic would be a hundred times.
    assert!(
        times[1] < times[0] * 30 + Duration::from_secs(2),
        "not linear: {times:?}"
    );
}

#[test]
fn a_finding_on_a_minified_line_shows_a_window_not_the_line() {
    let dir = common::scratch("cost-minified");
    let panel = r#"{"type":"timeseries","targets":[{"expr":"sum(no_such_metric_anywhere)"}]}"#;
    let panels = 1_500;
    let body = vec![panel; panels].join(",");
    let line = format!("{{\"uid\":\"d\",\"panels\":[{body}]}}");
    fs::write(dir.join("minified.json"), &line).unwrap();
    let (run, _) = bounded(&dir, &["lint", "minified.json"]);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run.stderr));
    let out = text(&run.stdout);
    let findings = out.matches("minified.json:1:").count();
    assert!(findings >= panels, "{findings} findings");
    assert!(
        out.len() < findings * 1_000,
        "{} bytes for {findings} findings on a {} byte line",
        out.len(),
        line.len()
    );
    // The caret still stands under the column the finding names.
    let mut lines = out.lines();
    while let Some(l) = lines.next() {
        let Some(rest) = l.strip_prefix("minified.json:1:") else {
            continue;
        };
        let column: usize = rest.split(':').next().unwrap().parse().unwrap();
        let _gutter = lines.next().unwrap();
        let source = lines
            .next()
            .unwrap()
            .split_once(" | ")
            .unwrap()
            .1
            .to_string();
        let caret = lines.next().unwrap().split_once(" | ").unwrap().1.len() - 1;
        let at: String = source.chars().skip(caret).take(4).collect();
        let want: String = line.chars().skip(column - 1).take(4).collect();
        assert_eq!(at, want, "caret misplaced for column {column}");
        break;
    }
}

#[test]
fn check_and_plan_summarize_a_huge_stale_file_by_its_sizes() {
    let dir = with_repo_specs("cost-diff");
    assert_eq!(poolc(&dir, &["generate"]).status.code(), Some(0));
    let stale = dir.join("generated/staging/kustomization.yaml");
    let lines: String = (0..600_000).map(|i| format!("line {i}\n")).collect();
    fs::write(&stale, &lines).unwrap();
    for args in [&["check"][..], &["plan"], &["plan", "--format", "json"]] {
        let (run, took) = bounded(&dir, args);
        let out = text(&run.stdout);
        let summary = if args.contains(&"json") {
            format!(
                "\"path\": \"differs\",\n          \"old\": \"{}\"",
                lines.len()
            )
        } else {
            format!("differs: {} → ", lines.len())
        };
        assert!(
            out.contains(&summary),
            "{args:?}: {}",
            &out[..out.len().min(2000)]
        );
        assert!(out.len() < 100_000, "{args:?} printed {} bytes", out.len());
        eprintln!("{args:?} with a {} byte stale file: {took:?}", lines.len());
    }
}

#[test]
fn a_spec_whose_rules_multiply_is_refused_before_rendering() {
    let dir = common::scratch("cost-expansion");
    let pool = VALID_SPEC
        .split("  - name: amd64\n")
        .nth(1)
        .unwrap()
        .split("  - name: agents\n")
        .next()
        .unwrap();
    let mut spec = VALID_SPEC.split("pools:\n").next().unwrap().to_string();
    spec.push_str("pools:\n");
    for i in 0..150 {
        spec.push_str(&format!("  - name: p{i}\n"));
        spec.push_str(&pool.replace("port: 3234", &format!("port: {}", 3300 + i)));
    }
    spec.push_str("rules:\n  alerts:\n");
    for i in 0..200 {
        spec.push_str(&format!(
            "    - alert: PoolAlert{i}\n      expr: sum(haproxy_backend_current_queue{{proxy=\"bk_$pool\"}}) > {i}\n"
        ));
    }
    fs::write(dir.join("specs/big.yaml"), spec).unwrap();
    let (run, took) = bounded(&dir, &["generate"]);
    let err = text(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{err}");
    assert!(err.contains("limit of 20000 rules"), "{err}");
    assert!(err.contains("specs/big.yaml:"), "{err}");
    assert!(err.contains("per_pool: false"), "{err}");
    assert!(!dir.join("generated").exists());
    eprintln!("150 pools × 200 $pool alerts refused in {took:?}");
}
