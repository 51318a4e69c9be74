//! One PromQL expression through everything that reads it: parsing (plain
//! and with Grafana variables), the selector walk, label flow, and every
//! check, as an alert, a recording rule, a dashboard target, a KEDA
//! valueLocation or a KEDA query.

#![no_main]

mod common;

use common::context;
use libfuzzer_sys::fuzz_target;
use poolc::lint::inputs::{Expression, Role, RuleContext};
use poolc::lint::Workspace;

fn alert() -> Role {
    Role::Rule(RuleContext {
        group: "fuzz".into(),
        alert: Some("FuzzAlert".into()),
        for_: Some("15m".into()),
        labels: [("severity".into(), "warning".into())].into_iter().collect(),
        annotations: [(
            "summary".into(),
            "{{ $labels.pool }} of {{ $labels.namespace }}".into(),
        )]
        .into_iter()
        .collect(),
        rule_line: 1,
        ..RuleContext::default()
    })
}

fn record() -> Role {
    Role::Rule(RuleContext {
        group: "fuzz".into(),
        record: Some("fuzz:record".into()),
        rule_line: 1,
        ..RuleContext::default()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for parsed in [
        poolc::promql::parse(text),
        poolc::promql::parse_dashboard(text),
    ] {
        if let Ok(expr) = parsed {
            let _ = poolc::promql::metric_names(&expr);
            for vs in poolc::promql::selectors(&expr) {
                let _ = poolc::promql::metric_name(vs);
                let _ = poolc::promql::label_matchers(vs).count();
            }
            let _ = poolc::lint::labels::labels(context(), &expr);
        }
    }
    // One role per input, picked by its length so the seeds stay plain
    // expressions: running all five per input costs five times the speed.
    let role = match text.len() % 5 {
        0 => alert(),
        1 => record(),
        2 => Role::Dashboard {
            uid: "fuzz".into(),
            panel: Default::default(),
        },
        3 => Role::ValueLocation,
        _ => Role::TriggerQuery,
    };
    let mut ws = Workspace::default();
    ws.files.insert("rules/fuzz.yaml".into(), text.into());
    ws.expressions.push(Expression {
        path: "rules/fuzz.yaml".into(),
        line: 1,
        column: 1,
        text: text.into(),
        role,
    });
    let _ = poolc::lint::run(&ws, context());
});
