//! `poolc lint` end to end: a fixture per check with its rendered
//! diagnostics as a snapshot, the three bugs of the first alert review and
//! their fixes, realistic rules that must lint clean, every code explained,
//! and the HAProxy catalog against a real HAProxy's /metrics.

mod common;
#[path = "support/live_haproxy.rs"]
mod live_haproxy;
#[path = "support/live_prometheus.rs"]
mod live_prometheus;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{poolc, repo_fileset, scratch, stdout, tool};

const CATALOG: &str = "tests/lint/catalog.yaml";

fn lint(args: &[&str]) -> std::process::Output {
    let mut all = vec!["lint", "--catalog", CATALOG];
    all.extend_from_slice(args);
    poolc(Path::new(env!("CARGO_MANIFEST_DIR")), &all)
}

#[test]
fn every_check_has_a_fixture_that_triggers_it() {
    let mut covered = BTreeSet::new();
    insta::glob!("lint/fixtures/*", |path| {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let code = name.split('-').next().unwrap().to_string();
        let rel = format!("tests/lint/fixtures/{name}");
        let out = lint(&["--deny", "warnings", &rel]);
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(1), "{name}:\n{text}");
        assert!(
            text.contains(&format!(": {code} ")),
            "{name} does not trigger {code}:\n{text}"
        );
        covered.insert(code);
        insta::assert_snapshot!(text);
    });
    let codes: BTreeSet<String> = poolc::lint::checks::ALL
        .iter()
        .map(|c| c.code.to_string())
        .collect();
    assert_eq!(covered, codes, "every check has a fixture");
}

#[test]
fn the_three_review_bugs_are_caught_and_their_fixes_are_clean() {
    let cases = [
        (
            "P003-dropped-by-scrape-filter.yaml",
            "haproxy_backend_current_queue",
            "add `haproxy_backend_current_queue` to the keep regex",
        ),
        (
            "P002-unknown-metric.yaml",
            "keda_scaledobject_errors_total",
            "did you mean `keda_scaled_object_errors_total`?",
        ),
        (
            "P005-label-not-guaranteed.yaml",
            "$labels.scaledObject",
            "keep `scaledObject` in the aggregation",
        ),
    ];
    for (file, names, fix) in cases {
        let out = lint(&[&format!("tests/lint/fixtures/{file}")]);
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(1), "{file}");
        assert!(
            text.contains(names) && text.contains(fix),
            "{file}:\n{text}"
        );
    }
    let out = lint(&["--deny", "warnings", "tests/lint/fixed"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("0 errors, 0 warnings"));
}

#[test]
fn realistic_rules_lint_without_errors() {
    let path = "tests/lint/valid/realistic-rules.yaml";
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
    assert!(text.matches("- alert:").count() >= 40);
    let out = lint(&["--deny", "warnings", path]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn generated_output_lints_clean_with_the_specs_context() {
    let model = poolc::pipeline::load_model(Path::new("specs")).unwrap();
    let set = repo_fileset();
    let findings = poolc::lint::lint_fileset(&model, &set);
    assert!(
        findings.is_empty(),
        "{}",
        poolc::report::human::render(&findings)
    );
}

#[test]
fn lint_of_a_generated_tree_takes_each_clusters_catalog() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = poolc(root, &["lint", "generated/"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    // A metric only the cluster's spec declares, and one KEDA 2.16 still has
    // but 2.17 removed: the nearest poolc-catalog.yaml decides.
    let dir = scratch("lint-nearest-catalog");
    let rules = "groups:\n- name: g\n  rules:\n  - record: team:jobs:sum\n    expr: sum(buildkite_queues_scheduled_jobs_count) + sum(keda_resource_totals)\n";
    for cluster in ["old", "new"] {
        std::fs::create_dir_all(dir.join(format!("{cluster}/prometheus"))).unwrap();
        std::fs::write(dir.join(format!("{cluster}/prometheus/rules.yaml")), rules).unwrap();
    }
    let catalog =
        std::fs::read_to_string(root.join("generated/production/poolc-catalog.yaml")).unwrap();
    assert!(catalog.contains("keda: \"2.16\""), "{catalog}");
    std::fs::write(dir.join("old/poolc-catalog.yaml"), &catalog).unwrap();
    std::fs::write(
        dir.join("new/poolc-catalog.yaml"),
        catalog.replace("keda: \"2.16\"", "keda: \"2.17\""),
    )
    .unwrap();
    let out = poolc(&dir, &["lint", "."]);
    let report = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains("./new/prometheus/rules.yaml:5:")
            && report.contains("keda_resource_totals"),
        "{report}"
    );
    assert!(
        !report.contains("./old/"),
        "the 2.16 cluster was judged by another catalog:\n{report}"
    );
    assert!(
        !report.contains("metric `buildkite_queues_scheduled_jobs_count`"),
        "{report}"
    );
    assert!(report.contains("1 error"), "{report}");
}

#[test]
fn json_and_github_formats() {
    for format in ["json", "github", "sarif"] {
        let out = lint(&[
            "--format",
            format,
            "tests/lint/fixtures/P002-unknown-metric.yaml",
        ]);
        assert_eq!(out.status.code(), Some(1));
        let text = stdout(&out);
        if format != "github" {
            serde_json::from_str::<serde_json::Value>(&text).expect("valid JSON");
        }
        insta::assert_snapshot!(format!("format_{format}"), text);
    }
}

#[test]
fn explain_prints_every_code() {
    for check in poolc::lint::checks::ALL {
        let out = poolc(Path::new("."), &["explain", check.code]);
        assert_eq!(out.status.code(), Some(0), "{}", check.code);
        let text = stdout(&out);
        for part in ["What it does:", "Why it matters:", "Example:", "Instead:"] {
            assert!(text.contains(part), "{}: no `{part}`", check.code);
        }
    }
    assert_eq!(
        poolc(Path::new("."), &["explain", "P999"]).status.code(),
        Some(2)
    );
}

#[test]
fn bad_input_to_lint_exits_2() {
    let dir = scratch("lint-bad");
    std::fs::write(
        dir.join("catalog.yaml"),
        "exporters:\n  keda: 2.16\n  nope: 1\n",
    )
    .unwrap();
    let out = poolc(&dir, &["lint", "--catalog", "catalog.yaml", "."]);
    assert_eq!(out.status.code(), Some(2));
    let out = poolc(&dir, &["lint", "missing-dir"]);
    assert_eq!(out.status.code(), Some(2));
    // A scrape path is one ServiceMonitor, PodMonitor or job.
    std::fs::write(
        dir.join("catalog.yaml"),
        "scrape:\n  - {servicemonitor: m/a, job: a, exporter: keda}\n",
    )
    .unwrap();
    let out = poolc(&dir, &["lint", "--catalog", "catalog.yaml", "."]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        common::stderr(&out).contains("write one entry per scrape path"),
        "{}",
        common::stderr(&out)
    );
    std::fs::write(
        dir.join("catalog.yaml"),
        "metrics:\n  - {name: q, type: gauge, scraped_by: {}}\n",
    )
    .unwrap();
    let out = poolc(&dir, &["lint", "--catalog", "catalog.yaml", "."]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        common::stderr(&out).contains("give exactly one of"),
        "{}",
        common::stderr(&out)
    );
}

#[test]
fn suppression_needs_a_reason() {
    let dir = scratch("lint-suppress");
    let rule = "groups:\n  - name: g\n    rules:\n      # poolc: ignore P002{reason}\n      - alert: A\n        expr: nope_total > 1\n        labels: {severity: warning}\n        annotations: {summary: s}\n";
    std::fs::write(
        dir.join("with.yaml"),
        rule.replace("{reason}", " exporter ships next week"),
    )
    .unwrap();
    std::fs::write(dir.join("without.yaml"), rule.replace("{reason}", "")).unwrap();
    assert_eq!(poolc(&dir, &["lint", "with.yaml"]).status.code(), Some(0));
    assert_eq!(
        poolc(&dir, &["lint", "without.yaml"]).status.code(),
        Some(1)
    );
}

fn scrape(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).ok()?;
    let (head, body) = body.split_once("\r\n\r\n")?;
    if !head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Some(body.to_string());
    }
    // Chunked even for HTTP/1.0 clients: size line, data, CRLF, until 0.
    let mut out = String::new();
    let mut rest = body;
    loop {
        let (size, after) = rest.split_once("\r\n")?;
        let size = usize::from_str_radix(size.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(after.get(..size)?);
        rest = after.get(size + 2..)?;
    }
}

#[test]
fn the_haproxy_catalog_matches_a_real_haproxy() {
    let Some(haproxy) = tool("haproxy", "apt-get install -y haproxy") else {
        return;
    };
    let version =
        String::from_utf8_lossy(&Command::new(&haproxy).arg("-v").output().unwrap().stdout)
            .into_owned();
    let number = version.split_whitespace().nth(2).unwrap_or("");
    // The release itself, patch level included (`2.6.12-1+deb12u4`).
    let release: poolc::catalog::Version = number
        .split(['-', '+'])
        .next()
        .unwrap_or("")
        .parse()
        .unwrap();

    // The generated staging config, bound to free loopback ports.
    let set = repo_fileset();
    let local = live_haproxy::local_config(set.get("staging/haproxy.cfg").unwrap(), 1);
    let (config, metrics_port) = (local.text, local.metrics_port);
    let dir = scratch("haproxy-run");
    std::fs::write(dir.join("haproxy.cfg"), &config).unwrap();
    let mut child = Command::new(&haproxy)
        .args(["-db", "-f"])
        .arg(dir.join("haproxy.cfg"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        if let Some(body) = scrape(metrics_port) {
            break body;
        }
        assert!(Instant::now() < deadline, "haproxy did not serve /metrics");
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = child.kill();
    let _ = child.wait();

    let versions = poolc::catalog::Versions {
        haproxy: release,
        ..poolc::catalog::Versions::newest()
    };
    let catalog: BTreeMap<&str, &poolc::catalog::KnownMetric> =
        poolc::catalog::builtin::for_versions(&versions)
            .into_iter()
            .filter(|m| m.exporter == poolc::catalog::Exporter::Haproxy)
            .map(|m| (m.name.as_str(), m))
            .collect();
    let mut families = 0;
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut words = rest.split_whitespace();
            let (name, kind) = (words.next().unwrap(), words.next().unwrap());
            // The catalog reads the stable branch's patch releases, so a
            // backport is dated to the patch release that brought it.
            let Some(entry) = catalog.get(name) else {
                panic!("HAProxy {number} exposes {name}, the catalog does not know it");
            };
            assert_eq!(format!("{:?}", entry.kind).to_lowercase(), kind, "{name}");
            families += 1;
        } else if !line.starts_with('#') && !line.is_empty() {
            let name = line.split(['{', ' ']).next().unwrap();
            let labels: Vec<&str> = line
                .split_once('{')
                .and_then(|(_, rest)| rest.split_once('}'))
                .map(|(labels, _)| {
                    labels
                        .split(',')
                        .filter_map(|kv| kv.split_once('=').map(|(k, _)| k))
                        .collect()
                })
                .unwrap_or_default();
            let entry = catalog
                .get(name)
                .unwrap_or_else(|| panic!("series {line}: not in the catalog"));
            for label in labels {
                assert!(
                    entry.labels.iter().any(|l| l == label),
                    "{name} has label {label}, the catalog says {:?}",
                    entry.labels
                );
            }
        }
    }
    assert!(families > 100, "only {families} families scraped");
    // The names poolc's own rules depend on are really there.
    for name in [
        "haproxy_backend_current_queue",
        "haproxy_backend_current_sessions",
        "haproxy_backend_active_servers",
    ] {
        assert!(
            body.contains(&format!("{name}{{proxy=\"bk_amd64\"}}")),
            "{name}"
        );
    }
}

#[test]
fn the_generated_keda_servicemonitor_without_honor_labels_kills_the_keda_alerts() {
    // Copied from a `generate` whose KEDA ServiceMonitor had no honorLabels.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = "tests/lint/scrape/keda-without-honor-labels";
    let out = poolc(root, &["lint", dir]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let rules = std::fs::read_to_string(root.join(dir).join("prometheusrule.yaml")).unwrap();
    let keda_alerts = rules
        .lines()
        .filter(|l| l.contains("keda_") && l.contains("namespace=\"buildkit\""))
        .count();
    assert_eq!(text.matches(": P012 error").count(), keda_alerts, "{text}");
    assert!(text.contains("set `honorLabels: true` on the endpoint of ServiceMonitor monitoring/buildkitd-keda-operator"), "{text}");
    insta::assert_snapshot!(text);

    // The same files with honorLabels on the KEDA endpoint: nothing to say.
    let fixed = scratch("keda-honor-labels");
    for file in [
        "poolc-catalog.yaml",
        "prometheusrule.yaml",
        "servicemonitors.yaml",
    ] {
        let mut text = std::fs::read_to_string(root.join(dir).join(file)).unwrap();
        if file == "servicemonitors.yaml" {
            let at = text.find("name: buildkitd-keda-operator").unwrap();
            let interval = at + text[at..].find("interval: 1m").unwrap();
            text.insert_str(interval, "honorLabels: true\n    ");
        }
        std::fs::write(fixed.join(file), text).unwrap();
    }
    let out = poolc(&fixed, &["lint", "."]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn generated_keda_servicemonitor_honors_labels() {
    let set = repo_fileset();
    let monitors = set.get("production/servicemonitors.yaml").unwrap();
    let keda = &monitors[monitors.find("name: buildkitd-keda-operator").unwrap()..];
    assert!(keda.contains("honorLabels: true"), "{keda}");
}

#[test]
fn labels_the_scrape_stores_are_accepted() {
    // ALERTS with its alerts' labels, `up` with a relabeled target label,
    // declared metrics with their ServiceMonitor's target labels, and a
    // recording rule over an undeclared metric with its by() labels.
    let out = lint(&["--deny", "warnings", "tests/lint/valid/stored-labels.yaml"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn a_label_only_some_series_carry_does_not_block_a_join() {
    // kube_job_status_failed{reason} exists only for failed jobs.
    let path = "tests/lint/valid/optional-labels.yaml";
    let out = lint(&["--deny", "warnings", path]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn labels_the_scrape_never_stores_are_still_caught() {
    let out = lint(&["tests/lint/scrape/never-stored.yaml"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert_eq!(text.matches(": P004 error").count(), 2, "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn every_format_names_the_panel_and_the_rule() {
    for format in ["human", "json", "github", "sarif"] {
        let out = lint(&[
            "--format",
            format,
            "tests/lint/fixtures/P009-schema-v2.json",
            "tests/lint/fixtures/P001-rule-without-expr.yaml",
        ]);
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(1), "{text}");
        for name in [
            "Karpenter capacity",
            "Nodes by pool",
            "pool-capacity",
            "PoolQueueBacklog",
        ] {
            assert!(text.contains(name), "{format} lacks {name}:\n{text}");
        }
        if format == "json" {
            let findings: serde_json::Value = serde_json::from_str(&text).unwrap();
            let panel = findings
                .as_array()
                .unwrap()
                .iter()
                .find_map(|d| (d["subject"]["kind"] == "panel").then(|| &d["subject"]))
                .unwrap();
            assert_eq!(panel["id"], 1, "{text}");
        }
    }
}

#[test]
fn dashboard_scope_follows_the_catalogs_external_labels() {
    let dir = scratch("lint-scope");
    std::fs::write(
        dir.join("single.json"),
        r#"{"uid": "q", "title": "Queue", "panels": [{"id": 1, "title": "Queue",
  "datasource": {"type": "prometheus", "uid": "${datasource}"},
  "targets": [{"expr": "max(haproxy_backend_current_queue{proxy=\"$proxy\"})"}]}]}"#,
    )
    .unwrap();
    std::fs::write(dir.join("none.yaml"), "scrape_interval: 30s\n").unwrap();
    std::fs::write(dir.join("multi.yaml"), "external_labels: [cluster]\n").unwrap();
    let out = poolc(&dir, &["lint", "--catalog", "none.yaml", "single.json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    insta::assert_snapshot!("scope_single_cluster", stdout(&out));
    let out = poolc(&dir, &["lint", "--catalog", "multi.yaml", "single.json"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("not scoped by `cluster`, which the catalog declares as external labels"),
        "{text}"
    );
    insta::assert_snapshot!("scope_external_labels", text);
}

#[test]
fn schema_v2_dashboards_written_as_yaml_are_read() {
    let dir = scratch("lint-v2-yaml");
    std::fs::write(
        dir.join("dashboard.yaml"),
        "apiVersion: dashboard.grafana.app/v2alpha1\nkind: Dashboard\nmetadata:\n  name: pools\nspec:\n  title: Pools\n  elements:\n    panel-3:\n      kind: Panel\n      spec:\n        id: 3\n        title: Sessions\n        data:\n          kind: QueryGroup\n          spec:\n            queries:\n              - kind: PanelQuery\n                spec:\n                  refId: A\n                  datasource: {type: prometheus, uid: \"${datasource}\"}\n                  query:\n                    kind: prometheus\n                    spec:\n                      expr: sum(haproxy_backend_current_sesions)\n  variables: []\n",
    )
    .unwrap();
    let out = poolc(&dir, &["lint", "dashboard.yaml"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("dashboard.yaml:24:")
            && text.contains("haproxy_backend_current_sessions")
            && text.contains("panel `Sessions` (id 3) of dashboard `Pools`"),
        "{text}"
    );
    insta::assert_snapshot!(text);
}

#[test]
fn renamed_labels_are_judged_wherever_they_are_read() {
    // Each fixture's findings are snapshotted by the fixture test; here,
    // which reads are judged, and that each names both fixes.
    let cases = [
        (
            "P012-by-without.yaml",
            &["`sum by (namespace)`", "`sum without (namespace)`"][..],
            "`by (exported_namespace)`",
        ),
        (
            "P012-on-ignoring.yaml",
            &["`on (namespace)`", "`ignoring (namespace)`"][..],
            "add `exported_namespace` to `ignoring (...)`",
        ),
        (
            "P012-label-replace.yaml",
            &[
                "`label_replace` reads `namespace`",
                "`label_join` reads `namespace`",
            ][..],
            "read `\"exported_namespace\"`",
        ),
        (
            "P012-templates.yaml",
            &[
                "`object_namespace` uses `$labels.namespace`",
                "`summary` uses `$labels.namespace`",
            ][..],
            "use `$labels.exported_namespace`",
        ),
    ];
    for (file, reads, fix) in cases {
        let out = lint(&[&format!("tests/lint/fixtures/{file}")]);
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(1), "{file}:\n{text}");
        assert_eq!(
            text.matches(": P012 ").count(),
            reads.len(),
            "{file}:\n{text}"
        );
        for read in reads {
            assert!(text.contains(read), "{file} lacks {read}:\n{text}");
        }
        assert!(
            text.contains("set `honorLabels: true` on the endpoint of ServiceMonitor monitoring/keda-operator")
                && text.contains(fix),
            "{file}:\n{text}"
        );
        // Only P012: the stored names, the operator's own namespace and
        // two KEDA sides matched alike are fine.
        assert_eq!(
            text.lines().filter(|l| l.contains(": P0")).count(),
            reads.len(),
            "{file}:\n{text}"
        );
    }
}

#[test]
fn every_format_names_the_group_and_rule_or_the_dashboard_and_panel() {
    // A record and an alert of one group, and a panel with an id: each
    // format carries every name, as text and where it has fields for them.
    let names = [
        "pool-capacity",
        "pool:queue_depth:max",
        "PoolQueueBacklog",
        "Build pools",
        "Queued builds",
    ];
    let formats = poolc::report::Format::ALL;
    let help = stdout(&poolc(Path::new("."), &["lint", "--help"]));
    let listed: Vec<&str> = formats.iter().map(|f| f.as_str()).collect();
    assert!(
        help.contains(&format!("[possible values: {}]", listed.join(", "))),
        "`--format` offers a format this test does not cover:\n{help}"
    );
    for format in formats {
        let name = format.as_str();
        let out = lint(&["--format", name, "tests/lint/subjects"]);
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(1), "{text}");
        for expected in names {
            // GitHub escapes `:` in titles but not in messages.
            assert!(text.contains(expected), "{name} lacks {expected}:\n{text}");
        }
        let id = match format {
            poolc::report::Format::Human | poolc::report::Format::Github => "(id 7)",
            poolc::report::Format::Json => "\"id\": 7",
            poolc::report::Format::Sarif => "\"panelId\": 7",
        };
        assert!(text.contains(id), "{name} lacks the panel id:\n{text}");
        match format {
            poolc::report::Format::Json => {
                let findings: serde_json::Value = serde_json::from_str(&text).unwrap();
                let subjects: Vec<&serde_json::Value> = findings
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| &d["subject"])
                    .collect();
                assert_eq!(subjects.len(), 3, "{text}");
                assert!(subjects.iter().any(
                    |s| s["group"] == "pool-capacity" && s["record"] == "pool:queue_depth:max"
                ));
                assert!(subjects
                    .iter()
                    .any(|s| s["group"] == "pool-capacity" && s["alert"] == "PoolQueueBacklog"));
                assert!(subjects.iter().any(|s| s["dashboard"] == "Build pools"
                    && s["title"] == "Queued builds"
                    && s["id"] == 7));
            }
            poolc::report::Format::Sarif => {
                let log: serde_json::Value = serde_json::from_str(&text).unwrap();
                let qualified: BTreeSet<&str> = log["runs"][0]["results"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| {
                        r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]
                            .as_str()
                            .unwrap()
                    })
                    .collect();
                assert_eq!(
                    qualified,
                    BTreeSet::from([
                        "Build pools/Queued builds",
                        "pool-capacity/PoolQueueBacklog",
                        "pool-capacity/pool:queue_depth:max"
                    ])
                );
            }
            _ => {}
        }
        insta::assert_snapshot!(format!("subjects_{name}"), text);
    }
}

#[test]
fn a_real_prometheus_stores_what_p012_says_about_by_and_templates() {
    let Some(binary) = live_prometheus::prometheus() else {
        return;
    };
    // KEDA's exposition, scraped without honor_labels by a job whose
    // targets carry the operator's namespace, as prometheus-operator gives it.
    let keda = live_prometheus::FakeKeda::serve((2, 16), "ci", "builders");
    let config = format!(
        "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nrule_files: [rules.yaml]\nscrape_configs:\n  - job_name: keda-operator\n    honor_labels: false\n    static_configs: [{{targets: ['127.0.0.1:{}']}}]\n    relabel_configs:\n      - {{target_label: namespace, replacement: keda}}\n",
        keda.port
    );
    let rules = "groups:\n  - name: keda\n    rules:\n      - alert: ScaledObjectErrorsSeen\n        expr: sum by (namespace, scaledObject) (keda_scaled_object_errors_total) >= 0\n        labels: {severity: info}\n        annotations: {summary: \"{{ $labels.namespace }}/{{ $labels.scaledObject }}\"}\n";

    let dir = scratch("lint-live-renamed");
    std::fs::write(dir.join("prometheus.yml"), &config).unwrap();
    std::fs::write(dir.join("rules.yaml"), rules).unwrap();
    let out = poolc(&dir, &["lint", "prometheus.yml", "rules.yaml"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("`sum by (namespace)` over `keda_scaled_object_errors_total` groups by the target's `namespace`")
            && text.contains("`summary` uses `$labels.namespace`")
            && text.contains("set `honor_labels: true` on the scrape job keda-operator"),
        "{text}"
    );

    let prometheus = live_prometheus::Prometheus::start(&binary, &config, rules);
    let deadline = Instant::now() + Duration::from_secs(30);
    let alert = loop {
        let firing = prometheus.alerts().into_iter().find(|a| {
            a["labels"]["alertname"] == "ScaledObjectErrorsSeen" && a["state"] == "firing"
        });
        if let Some(alert) = firing {
            break alert;
        }
        assert!(
            Instant::now() < deadline,
            "no alert:\n{}\n{}",
            prometheus.rules(),
            prometheus.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // Grouped by the target's namespace, and the template renders it: the
    // ScaledObject's own namespace is only in exported_namespace.
    assert_eq!(alert["labels"]["namespace"], "keda", "{alert}");
    assert_eq!(alert["annotations"]["summary"], "keda/builders", "{alert}");
    let stored = prometheus.query("keda_scaled_object_errors_total");
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(
        stored[0]["metric"]["exported_namespace"], "ci",
        "{stored:?}"
    );
    assert_eq!(stored[0]["metric"]["namespace"], "keda", "{stored:?}");
}
