//! P015: a KEDA trigger query over a metric that no declared scrape path keeps.

use regex::Regex;

use super::{parsed, Check};
use crate::diagnostic::{Diagnostic, Severity};
use crate::lint::scrape::ScrapePath;
use crate::lint::{at, inputs::Role, Context, Workspace};
use crate::promql;

pub const CHECK: Check = Check {
    code: "P015",
    name: "unscraped-trigger-metric",
    severity: Severity::Error,
    summary: "A KEDA trigger query reads a declared metric that no declared scrape path keeps.",
    doc: r#"
What it does: for every metric a KEDA `prometheus` trigger query reads
(a jobs pool's `jobs.query`), requires the metric's declaration to say what
scrapes it (`scraped_by:` with a `servicemonitor`, `podmonitor` or `job`),
and, when that ServiceMonitor or PodMonitor is among the inputs, that its
`metricRelabelings` keep the metric.

Why it matters: the trigger is the only thing that scales a jobs pool up.
A declared metric says the name and labels are right, not that Prometheus
stores it; if nothing scrapes it, the query returns nothing, KEDA reads 0
and the jobs wait forever.

Example:
    metrics:
      - name: buildkite_queues_scheduled_jobs_count
        type: gauge
        labels: [queue]

Instead:
    metrics:
      - name: buildkite_queues_scheduled_jobs_count
        type: gauge
        labels: [queue]
        scraped_by:
          servicemonitor: buildkite/buildkite-agent-metrics
"#,
    run,
};

/// Whether `path`'s name filters keep `name`.
fn keeps(path: &ScrapePath, name: &str) -> bool {
    path.metric_relabelings.iter().all(|r| {
        let action = r
            .action
            .as_deref()
            .unwrap_or("replace")
            .to_ascii_lowercase();
        if r.source_labels != ["__name__"] || !matches!(action.as_str(), "keep" | "drop") {
            return true;
        }
        let re = r.regex.as_deref().unwrap_or("(.*)");
        match Regex::new(&format!("^(?:{re})$")) {
            Ok(re) => re.is_match(name) == (action == "keep"),
            Err(_) => true,
        }
    })
}

fn run(ws: &Workspace, ctx: &Context, out: &mut Vec<Diagnostic>) {
    for (e, expr) in parsed(ws) {
        if !matches!(e.role, Role::TriggerQuery) {
            continue;
        }
        for name in promql::metric_names(expr) {
            let Some(entry) = ctx.catalog.get(&name).filter(|m| m.user) else {
                continue;
            };
            let (message, help) = match &entry.scraped_by {
                None => (
                    format!("the trigger reads `{name}`, but nothing says what scrapes it: if nothing does, KEDA reads 0 and the pool never scales up"),
                    format!("add `scraped_by:` to the declaration of `{name}` (the spec's `cluster.metrics` or the catalog's `metrics:`): `servicemonitor: namespace/name`, `podmonitor: namespace/name` or `job: job_name`"),
                ),
                Some(by) => {
                    let path = ctx.paths.for_user(by);
                    if !path.among_inputs() || keeps(&path, &name) {
                        continue;
                    }
                    (
                        format!("the trigger reads `{name}`, but {} drops it: KEDA reads 0 and the pool never scales up", path.described()),
                        format!("keep `{name}` in the metricRelabelings of {} {}", path.kind.as_str(), path.name),
                    )
                }
            };
            out.push(at(ws, e, CHECK.code, CHECK.severity, message, help));
        }
    }
}
