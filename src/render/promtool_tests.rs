//! promtool unit tests for every generated alert, next to the plain rule
//! file: each alert's healthy scenarios must stay quiet and its failure must
//! fire. promtool accepts a misspelled `alertname` with `exp_alerts: []`
//! silently, so every firing case also asserts on `ALERTS{…}` directly, and
//! the test suite checks that every tested name exists in the rules.

use std::collections::BTreeMap;

use serde::Serialize;

use super::rules::{self, PLAIN_RULE_FILE};
use super::{header, path, to_yaml, RenderError};
use crate::fileset::File;
use crate::model::Cluster;

pub const TEST_FILE: &str = "prometheus/rules.test.yaml";

pub fn render(cluster: &Cluster) -> Result<Vec<File>, RenderError> {
    let rule_file = PLAIN_RULE_FILE
        .rsplit('/')
        .next()
        .unwrap_or(PLAIN_RULE_FILE);
    let mut tests = Vec::new();
    for alert in rules::alerts(cluster) {
        let rule = &alert.rule;
        let name = rule.alert.clone().unwrap_or_default();
        for scenario in &alert.scenarios {
            let eval_time = format!("{}m", scenario.eval_minutes);
            let exp_alerts: Vec<ExpAlert> = scenario
                .fires
                .iter()
                .map(|labels| ExpAlert {
                    exp_labels: labels.clone(),
                    exp_annotations: rule.annotations.clone(),
                })
                .collect();
            let promql_expr_test = scenario
                .fires
                .iter()
                .map(|labels| {
                    let mut series = labels.clone();
                    series.insert("alertname".to_string(), name.clone());
                    series.insert("alertstate".to_string(), "firing".to_string());
                    let matchers: Vec<String> = series
                        .iter()
                        .map(|(k, v)| format!("{k}={}", quote(v)))
                        .collect();
                    ExprTest {
                        expr: format!("ALERTS{{{}}}", matchers.join(", ")),
                        eval_time: eval_time.clone(),
                        exp_samples: vec![Sample {
                            labels: format!("ALERTS{{{}}}", matchers.join(", ")),
                            value: 1,
                        }],
                    }
                })
                .collect();
            tests.push(Test {
                name: format!("{name} {}", scenario.name),
                interval: "1m",
                input_series: scenario
                    .series
                    .iter()
                    .map(|(series, values)| InputSeries {
                        series: series.clone(),
                        values: values.clone(),
                    })
                    .collect(),
                alert_rule_test: vec![AlertTest {
                    eval_time,
                    alertname: name.clone(),
                    exp_alerts,
                }],
                promql_expr_test,
            });
        }
    }
    let file = TestFile {
        rule_files: vec![rule_file.to_string()],
        evaluation_interval: "1m",
        // promtool evaluates groups in a random order unless told: an alert
        // that reads a recording rule would then fire a minute early or late
        // from run to run. Prometheus runs groups concurrently too; the
        // scenarios assume the recording rules are fresh.
        group_eval_order: rules::groups(cluster).into_iter().map(|g| g.name).collect(),
        tests,
    };
    let text = header(cluster, "#") + &to_yaml(&file, TEST_FILE)?;
    Ok(vec![File::new(path(cluster, TEST_FILE), text)])
}

/// A PromQL string literal (labels here are DNS labels and fixed words, but
/// quoting properly costs nothing).
fn quote(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

#[derive(Serialize)]
struct TestFile {
    rule_files: Vec<String>,
    evaluation_interval: &'static str,
    group_eval_order: Vec<String>,
    tests: Vec<Test>,
}

#[derive(Serialize)]
struct Test {
    name: String,
    interval: &'static str,
    input_series: Vec<InputSeries>,
    alert_rule_test: Vec<AlertTest>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    promql_expr_test: Vec<ExprTest>,
}

#[derive(Serialize)]
struct InputSeries {
    series: String,
    values: String,
}

#[derive(Serialize)]
struct AlertTest {
    eval_time: String,
    alertname: String,
    exp_alerts: Vec<ExpAlert>,
}

#[derive(Serialize)]
struct ExpAlert {
    exp_labels: BTreeMap<String, String>,
    exp_annotations: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct ExprTest {
    expr: String,
    eval_time: String,
    exp_samples: Vec<Sample>,
}

#[derive(Serialize)]
struct Sample {
    labels: String,
    value: u32,
}
