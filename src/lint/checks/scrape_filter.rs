//! P003: metrics the scrape's keep/drop filter removes before storage.

use regex::Regex;

use super::{parsed, Check};
use crate::catalog::Exporter;
use crate::diagnostic::{Diagnostic, Severity};
use crate::lint::{at, Context, Workspace};
use crate::promql;

pub const CHECK: Check = Check {
    code: "P003",
    name: "dropped-by-scrape-filter",
    severity: Severity::Error,
    summary: "A ServiceMonitor's metricRelabelings drop the metric, so it is never stored.",
    doc: r#"
What it does: turns every `keep`/`drop` metricRelabeling on `__name__` of the
ServiceMonitors among the inputs into a filter for the exporter that
ServiceMonitor scrapes (from the catalog file's `scrape`, the
`poolc.dev/exporter` label, or the metric prefix its regex names). The
regex is anchored, as Prometheus anchors it. A metric that does not pass is
reported with the ServiceMonitor and its regex.

Why it matters: the queue alert of the reference system could never fire
because `haproxy_backend_current_queue` was missing from the keep regex.

Example:
    regex: haproxy_backend_current_sessions|haproxy_backend_active_servers
    expr: haproxy_backend_current_queue > 20

Instead:
    regex: haproxy_backend_current_sessions|haproxy_backend_active_servers|haproxy_backend_current_queue
"#,
    run,
};

fn exporter_of(ctx: &Context, f: &crate::lint::inputs::ScrapeFilter) -> Option<Exporter> {
    if let Some(e) = ctx.scrape.get(&f.servicemonitor) {
        return Some(*e);
    }
    if let Some(e) = f.exporter_label.as_deref().and_then(Exporter::parse) {
        return Some(e);
    }
    // The monitor's own scrape paths, when they all scrape one exporter.
    let mut own = ctx
        .paths
        .paths
        .iter()
        .filter(|p| p.among_inputs() && p.name == f.servicemonitor)
        .map(|p| p.exporter);
    let of_paths = match own.next() {
        Some(first) if own.all(|e| e == first) => first,
        _ => None,
    };
    // A keep regex lists what the exporter serves; a drop regex names only
    // what is dropped, which says nothing of whose scrape it is.
    of_paths.or_else(|| {
        f.keep
            .then(|| crate::lint::scrape::exporter_of_regex(&f.regex))
            .flatten()
    })
}

/// The monitors that scrape `exporter` among the inputs: a series is
/// stored unless every one of them removes it.
fn monitors_of(ctx: &Context, exporter: Exporter) -> std::collections::BTreeSet<&str> {
    ctx.paths
        .for_exporter(exporter)
        .filter(|p| p.among_inputs())
        .map(|p| p.name.as_str())
        .collect()
}

/// A filter's regex, anchored as Prometheus anchors it, compiled on first
/// use under a size limit: a file of filters no expression meets costs
/// nothing, and none costs more than the limit.
fn compiled(f: &crate::lint::inputs::ScrapeFilter) -> Option<Regex> {
    crate::lint::scrape::anchored(&f.regex)
}

type Lazy<'a> = (
    Exporter,
    &'a crate::lint::inputs::ScrapeFilter,
    std::cell::OnceCell<Option<Regex>>,
);

fn run(ws: &Workspace, ctx: &Context, out: &mut Vec<Diagnostic>) {
    let filters: Vec<Lazy> = ws
        .filters
        .iter()
        .filter_map(|f| Some((exporter_of(ctx, f)?, f, std::cell::OnceCell::new())))
        .collect();
    if filters.is_empty() {
        return;
    }
    for (e, expr) in parsed(ws) {
        for vs in promql::selectors(expr) {
            let Some(name) = promql::metric_name(vs) else {
                continue;
            };
            let Some(exporter) = ctx.catalog.get(name).and_then(|m| m.exporter) else {
                continue;
            };
            let removes = |f: &crate::lint::inputs::ScrapeFilter,
                           re: &std::cell::OnceCell<Option<Regex>>| {
                re.get_or_init(|| compiled(f))
                    .as_ref()
                    .is_some_and(|re| re.is_match(name) != f.keep)
            };
            let removing: std::collections::BTreeSet<&str> = filters
                .iter()
                .filter(|(fe, f, re)| *fe == exporter && removes(f, re))
                .map(|(_, f, _)| f.servicemonitor.as_str())
                .collect();
            // A monitor whose regex is past the size limit is not judged.
            let unjudged: std::collections::BTreeSet<&str> = filters
                .iter()
                .filter(|(fe, f, re)| *fe == exporter && re.get_or_init(|| compiled(f)).is_none())
                .map(|(_, f, _)| f.servicemonitor.as_str())
                .collect();
            let mut monitors = monitors_of(ctx, exporter);
            monitors.retain(|m| !unjudged.contains(m));
            if removing.is_empty() || !monitors.is_subset(&removing) {
                continue;
            }
            for (fe, f, re) in &filters {
                if *fe != exporter || !removes(f, re) {
                    continue;
                }
                let (verb, fix) = if f.keep {
                    ("does not keep", format!("add `{name}` to the keep regex"))
                } else {
                    ("drops", format!("remove `{name}` from the drop regex"))
                };
                out.push(at(
                    ws,
                    e,
                    CHECK.code,
                    CHECK.severity,
                    format!(
                        "`{name}` is never stored: ServiceMonitor {} {verb} it (regex `{}`), so this can never match",
                        f.servicemonitor, f.regex
                    ),
                    format!("{fix} of ServiceMonitor {} at {}:{}", f.servicemonitor, f.path, f.line),
                ));
            }
        }
    }
}
