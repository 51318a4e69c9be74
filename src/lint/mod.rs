//! The PromQL gate. Every expression in the inputs (rules, dashboards, KEDA
//! triggers) is parsed and checked against the catalog: the metrics the
//! deployed exporter versions expose, with their types and labels, narrowed
//! by what the scrape filters keep. One check per file in `checks/`.

pub mod catalog_file;
pub mod checks;
pub mod inputs;
pub mod labels;

use std::collections::{BTreeMap, BTreeSet};

use crate::catalog::{builtin, Exporter, MetricDecl, MetricType, Versions};
use crate::diagnostic::{Diagnostic, Severity};
pub use inputs::Workspace;

/// What the checks know about one metric name.
#[derive(Debug, Clone)]
pub struct Entry {
    pub kind: MetricType,
    pub labels: Vec<String>,
    /// None for the user's own metrics and recording rules.
    pub exporter: Option<Exporter>,
    /// Fixed value sets of some labels (`state`, `code`, `resource_type`, `proxy`).
    pub values: BTreeMap<String, BTreeSet<String>>,
}

impl Entry {
    /// Labels every scraped series carries besides its own: Prometheus's
    /// `job`/`instance` and prometheus-operator's target labels. Recording
    /// rules carry only what their expression keeps.
    pub fn target_labels(&self) -> &'static [&'static str] {
        match self.exporter {
            Some(_) => &[
                "job",
                "instance",
                "namespace",
                "service",
                "pod",
                "container",
                "endpoint",
            ],
            None => &[],
        }
    }
}

/// The resolved catalog for one lint run.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub versions: Option<Versions>,
    pub metrics: BTreeMap<String, Entry>,
}

impl Catalog {
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.metrics.get(name)
    }

    /// The built-in exporters at `versions`, Prometheus's own series, and
    /// the user's metrics.
    pub fn new(versions: &Versions, user: &[MetricDecl]) -> Catalog {
        let mut metrics = BTreeMap::new();
        for m in builtin::for_versions(versions) {
            metrics.insert(
                m.name.clone(),
                Entry {
                    kind: m.kind,
                    labels: m.labels.clone(),
                    exporter: Some(m.exporter),
                    values: known_values(&m.name, &m.labels),
                },
            );
        }
        let own = |labels: &[&str]| Entry {
            kind: MetricType::Gauge,
            labels: labels.iter().map(|s| s.to_string()).collect(),
            exporter: None,
            values: BTreeMap::new(),
        };
        metrics.insert(
            "up".into(),
            own(&[
                "job",
                "instance",
                "namespace",
                "service",
                "pod",
                "container",
                "endpoint",
            ]),
        );
        for name in [
            "scrape_duration_seconds",
            "scrape_samples_scraped",
            "scrape_samples_post_metric_relabeling",
            "scrape_series_added",
        ] {
            metrics.insert(
                name.into(),
                own(&[
                    "job",
                    "instance",
                    "namespace",
                    "service",
                    "pod",
                    "container",
                    "endpoint",
                ]),
            );
        }
        let mut alerts = own(&["alertname", "alertstate"]);
        alerts.values.insert(
            "alertstate".into(),
            ["firing", "pending"].map(String::from).into(),
        );
        metrics.insert("ALERTS".into(), alerts);
        metrics.insert("ALERTS_FOR_STATE".into(), own(&["alertname"]));
        for m in user {
            metrics.insert(
                m.name.clone(),
                Entry {
                    kind: m.kind,
                    labels: m.labels.clone(),
                    exporter: None,
                    values: BTreeMap::new(),
                },
            );
        }
        Catalog {
            versions: Some(versions.clone()),
            metrics,
        }
    }
}

fn known_values(name: &str, labels: &[String]) -> BTreeMap<String, BTreeSet<String>> {
    let mut values = BTreeMap::new();
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    for label in labels {
        match label.as_str() {
            "state" if name.starts_with("haproxy_") => {
                let states = if name.ends_with("check_status") {
                    set(&[
                        "HANA", "SOCKERR", "L4OK", "L4TOUT", "L4CON", "L6OK", "L6TOUT", "L6RSP",
                        "L7TOUT", "L7RSP", "L7OK", "L7OKC", "L7STS", "PROCERR", "PROCTOUT",
                        "PROCOK", "DOWN", "UP", "MAINT", "DRAIN", "NOLB",
                    ])
                } else if name.starts_with("haproxy_backend_status")
                    || name.starts_with("haproxy_frontend_status")
                {
                    set(&["DOWN", "UP"])
                } else {
                    set(&["DOWN", "UP", "MAINT", "DRAIN", "NOLB"])
                };
                values.insert(label.clone(), states);
            }
            "code" if name.starts_with("haproxy_") => {
                values.insert(
                    label.clone(),
                    set(&["1xx", "2xx", "3xx", "4xx", "5xx", "other"]),
                );
            }
            "resource_type" if name.starts_with("karpenter_nodepools_") => {
                values.insert(
                    label.clone(),
                    set(&["cpu", "memory", "ephemeral_storage", "pods", "nodes"]),
                );
            }
            _ => {}
        }
    }
    values
}

/// Everything a check may consult.
#[derive(Debug, Clone)]
pub struct Context {
    pub catalog: Catalog,
    pub scrape_interval: u64,
    pub external_labels: Vec<String>,
    /// The external labels the catalog declares: each dashboard selector
    /// must match them. Without a declaration nothing is demanded, since
    /// a single Prometheus adds none.
    pub scope_labels: Vec<String>,
    /// ServiceMonitor (`namespace/name`) → exporter, from the catalog file.
    pub scrape: BTreeMap<String, Exporter>,
    /// The recording rules among the inputs, by name: the labels of each
    /// one's result. Rules in one file read these for rules in another,
    /// so no file's parse trees outlive its own checks.
    pub records: BTreeMap<String, RecordLabels>,
}

/// The labels of a recording rule's result, kept compactly: a lint run
/// holds one per record of every input file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordLabels {
    /// Labels every series of the result carries.
    pub guaranteed: Box<[String]>,
    /// Labels some series may carry, besides the guaranteed ones.
    pub possible: Box<[String]>,
    /// The result may carry any label (it reads something unknown).
    pub open: bool,
}

impl RecordLabels {
    pub fn of(l: &labels::Labels) -> RecordLabels {
        RecordLabels {
            guaranteed: l.guaranteed.iter().cloned().collect(),
            possible: l.possible.difference(&l.guaranteed).cloned().collect(),
            open: l.open,
        }
    }

    pub fn labels(&self) -> labels::Labels {
        labels::Labels {
            guaranteed: self.guaranteed.iter().cloned().collect(),
            possible: self
                .guaranteed
                .iter()
                .chain(self.possible.iter())
                .cloned()
                .collect(),
            open: self.open,
        }
    }
}

/// Runs every check; findings sorted by file and position, suppressed ones removed.
pub fn run(ws: &Workspace, ctx: &Context) -> Vec<Diagnostic> {
    let mut ctx = ctx.clone();
    let mut records = Vec::new();
    for (i, e) in ws.expressions.iter().enumerate() {
        if let Ok(parsed) = ws.ast(i) {
            records.extend(RecordSummary::add(&mut ctx, e, parsed));
        }
    }
    RecordSummary::resolve_chains(&mut ctx, &records);
    check(ws, &ctx)
}

/// Runs every check on `ws`, with a context that already knows every
/// recording rule of the inputs.
pub fn check(ws: &Workspace, ctx: &Context) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for u in &ws.unreadable {
        out.push(Diagnostic {
            path: u.path.clone(),
            line: u.line,
            column: 1,
            code: checks::syntax::CHECK.code,
            severity: Severity::Error,
            message: u.message.clone(),
            help: u.help.clone(),
            source_line: ws.source_line(&u.path, u.line),
            subject: u.subject.clone(),
        });
    }
    // The checks are independent readers of the same trees: on every core.
    ws.parse_all();
    for found in crate::parallel::map(checks::ALL, 1, |check| {
        let mut found = Vec::new();
        (check.run)(ws, ctx, &mut found);
        found
    }) {
        out.extend(found);
    }
    out.retain(|d| !suppressed(ws, d));
    out.sort();
    out.dedup();
    out
}

/// A recording rule as the rest of the inputs see it: a metric whose
/// labels are those its expression leaves, plus the rule's own `labels:`.
/// The labels go into the context (`Context::records` and the catalog);
/// only a record that reads a name the catalog did not know yet (another
/// record, perhaps defined later) keeps its expression, to be judged again
/// once every record is known. Parse trees are never kept.
#[derive(Debug, Clone)]
pub struct RecordSummary {
    pub name: String,
    /// The metric names its expression reads.
    pub reads: Vec<String>,
    text: String,
    static_labels: Vec<String>,
}

impl RecordSummary {
    /// Makes `e`'s record, if it is a recording rule, a metric of `ctx` at
    /// once, so later rules see it. Returns a summary to judge again later
    /// when the expression reads a name `ctx` did not know.
    pub fn add(
        ctx: &mut Context,
        e: &inputs::Expression,
        parsed: &promql_parser::parser::Expr,
    ) -> Option<RecordSummary> {
        let inputs::Role::Rule(rule) = &e.role else {
            return None;
        };
        let name = rule.record.as_ref()?;
        let reads = crate::promql::metric_names(parsed);
        let chained = reads
            .iter()
            .any(|n| ctx.records.contains_key(n) || ctx.catalog.get(n).is_none());
        let summary = RecordSummary {
            name: name.clone(),
            reads: if chained { reads } else { Vec::new() },
            text: if chained {
                e.text.clone()
            } else {
                String::new()
            },
            static_labels: rule.labels.keys().cloned().collect(),
        };
        summary.judge(ctx, parsed);
        chained.then_some(summary)
    }

    fn judge(&self, ctx: &mut Context, parsed: &promql_parser::parser::Expr) {
        let mut l = labels::labels(ctx, parsed);
        for k in &self.static_labels {
            l.guaranteed.insert(k.clone());
            l.possible.insert(k.clone());
        }
        ctx.catalog.metrics.insert(
            self.name.clone(),
            Entry {
                kind: MetricType::Gauge,
                labels: if l.open {
                    Vec::new()
                } else {
                    l.guaranteed.iter().cloned().collect()
                },
                exporter: None,
                values: BTreeMap::new(),
            },
        );
        ctx.records.insert(self.name.clone(), RecordLabels::of(&l));
    }

    /// Judges again the records that read other records, now that every
    /// record is known: one read before the record it reads was defined
    /// (later in its file, or in a later file) is complete only now.
    /// Returns the records whose labels changed.
    pub fn resolve_chains(ctx: &mut Context, records: &[RecordSummary]) -> BTreeSet<String> {
        let mut changed = BTreeSet::new();
        for r in records {
            if r.reads.iter().any(|n| ctx.records.contains_key(n)) {
                if let Ok(parsed) = crate::promql::parse(&r.text) {
                    let before = ctx.records.get(&r.name).cloned();
                    r.judge(ctx, &parsed);
                    if ctx.records.get(&r.name) != before.as_ref() {
                        changed.insert(r.name.clone());
                    }
                }
            }
        }
        changed
    }
}

/// `# poolc: ignore CODE reason` on the line above the rule (or the
/// finding) silences that code there. A reason is required.
fn suppressed(ws: &Workspace, d: &Diagnostic) -> bool {
    let rule_line = ws
        .expressions
        .iter()
        .filter(|e| e.path == d.path && e.line <= d.line)
        .filter_map(|e| match &e.role {
            inputs::Role::Rule(r) => Some(r.rule_line),
            _ => None,
        })
        .max();
    let candidates = [Some(d.line), rule_line];
    candidates.into_iter().flatten().any(|line| {
        (1..=2).any(|back| {
            let Some(l) = line.checked_sub(back).filter(|l| *l > 0) else {
                return false;
            };
            let text = ws.source_line(&d.path, l);
            let Some(rest) = text.trim().strip_prefix("# poolc: ignore ") else {
                return false;
            };
            let mut words = rest.split_whitespace();
            words.next() == Some(d.code) && words.next().is_some()
        })
    })
}

/// A diagnostic at an expression, with the source line filled in.
pub fn at(
    ws: &Workspace,
    e: &inputs::Expression,
    code: &'static str,
    severity: Severity,
    message: String,
    help: String,
) -> Diagnostic {
    Diagnostic {
        path: e.path.clone(),
        line: e.line,
        column: e.column,
        code,
        severity,
        message,
        help,
        source_line: ws.source_line(&e.path, e.line),
        subject: e.subject(),
    }
}

/// The nearest name in `candidates`, for "did you mean".
pub fn nearest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let within = |c: &str| (name.len().max(c.len()) / 3).max(2);
    let len = name.chars().count();
    candidates
        // The distance is at least the difference in length, so a hostile
        // long name is compared with nothing.
        .filter(|c| c.chars().count().abs_diff(len) <= within(c))
        .map(|c| (crate::model::edit_distance(name, c), c))
        .filter(|(d, c)| *d <= within(c))
        .min()
        .map(|(_, c)| c)
}

/// The catalog file `generate` writes beside each cluster's outputs.
pub const CATALOG_FILE: &str = "poolc-catalog.yaml";

/// `poolc lint PATH...`: reads every file (directories recursively, in name
/// order) and runs the checks. With `--catalog`, that file's context applies to
/// everything; otherwise each file takes the nearest `poolc-catalog.yaml` in
/// its directory or a parent (so `poolc lint generated/` judges each cluster by
/// its own versions), and files with none take the newest versions.
pub fn lint_paths(
    paths: &[std::path::PathBuf],
    catalog: Option<&std::path::Path>,
) -> Result<Vec<Diagnostic>, String> {
    let mut files = Vec::new();
    for path in paths {
        collect_files(path, &mut files)?;
    }
    files.retain(|f| f.file_name().is_none_or(|n| n != CATALOG_FILE));
    // Files grouped by the catalog file that applies to them.
    let mut groups: BTreeMap<Option<std::path::PathBuf>, Vec<std::path::PathBuf>> = BTreeMap::new();
    for file in files {
        let applies = match catalog {
            Some(path) => Some(path.to_path_buf()),
            None => nearest_catalog(&file),
        };
        groups.entry(applies).or_default().push(file);
    }
    let mut out = Vec::new();
    for (catalog, files) in groups {
        let ctx = read_catalog(catalog.as_deref())?;
        out.extend(lint_files(&files, ctx)?);
    }
    out.sort();
    Ok(out)
}

/// Lints files that share one catalog, one file in memory at a time: each
/// file's recording rules are summarized, then its checks run with every
/// record and fact (scrape filters, HAProxy proxies, KEDA fallbacks) known
/// so far, and its parse trees and text are dropped. A file that read a
/// record defined in a later file, or was checked before a later file added
/// facts, is read and checked again at the end. Peak memory follows the
/// largest file, not the sum of all.
fn lint_files(files: &[std::path::PathBuf], mut ctx: Context) -> Result<Vec<Diagnostic>, String> {
    struct Checked {
        findings: Vec<Diagnostic>,
        /// Metric names its expressions read.
        reads: BTreeSet<String>,
        /// Those the context did not know when it was checked.
        unknown: Vec<String>,
        /// How many facts were known when it was checked.
        facts: usize,
    }
    let mut shared = Workspace::default();
    let mut chained: Vec<RecordSummary> = Vec::new();
    let mut checked = Vec::with_capacity(files.len());
    for path in files {
        let mut ws = read_input(path)?;
        let mut mine = Vec::new();
        let mut reads = BTreeSet::new();
        for (j, e) in ws.expressions.iter().enumerate() {
            if let Ok(parsed) = ws.ast(j) {
                reads.extend(crate::promql::metric_names(parsed));
                mine.extend(RecordSummary::add(&mut ctx, e, parsed));
            }
        }
        RecordSummary::resolve_chains(&mut ctx, &mine);
        chained.extend(mine);
        shared.gather(&ws);
        ws.share(&shared);
        checked.push(Checked {
            findings: check(&ws, &ctx),
            unknown: reads
                .iter()
                .filter(|n| ctx.catalog.get(n).is_none())
                .cloned()
                .collect(),
            reads,
            facts: shared.fact_count(),
        });
    }
    let changed = RecordSummary::resolve_chains(&mut ctx, &chained);
    let mut out = Vec::new();
    for (path, done) in files.iter().zip(checked) {
        let stale = done.facts != shared.fact_count()
            || done.unknown.iter().any(|n| ctx.records.contains_key(n))
            || done.reads.iter().any(|n| changed.contains(n));
        if stale {
            let mut ws = read_input(path)?;
            ws.share(&shared);
            out.extend(check(&ws, &ctx));
        } else {
            out.extend(done.findings);
        }
    }
    Ok(out)
}

/// One lint input, read into a workspace of its own.
fn read_input(path: &std::path::Path) -> Result<Workspace, String> {
    let shown = path.to_string_lossy().replace('\\', "/");
    let text = read_bounded(path, &shown, inputs::MAX_FILE_BYTES, inputs::too_large)?;
    let mut ws = Workspace::default();
    ws.add(&shown, &text);
    Ok(ws)
}

fn read_catalog(path: Option<&std::path::Path>) -> Result<Context, String> {
    let file = match path {
        Some(path) => {
            let shown = path.to_string_lossy().replace('\\', "/");
            let text = read_bounded(path, &shown, crate::spec::MAX_SPEC_BYTES, |shown| {
                format!(
                    "{shown}: the catalog is larger than {} KiB; it lists exporter versions and your own metrics, \
                     so keep only those",
                    crate::spec::MAX_SPEC_BYTES / 1024
                )
            })?;
            catalog_file::CatalogFile::parse(&text)
                .map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => catalog_file::CatalogFile::default(),
    };
    file.context().map_err(|e| match path {
        Some(p) => format!("{}: {e}", p.display()),
        None => e,
    })
}

fn nearest_catalog(file: &std::path::Path) -> Option<std::path::PathBuf> {
    file.ancestors()
        .skip(1)
        .map(|dir| dir.join(CATALOG_FILE))
        .find(|candidate| candidate.is_file())
}

/// Reads a UTF-8 file of at most `limit` bytes, never more into memory.
fn read_bounded(
    path: &std::path::Path,
    shown: &str,
    limit: usize,
    too_large: fn(&str) -> String,
) -> Result<String, String> {
    let bytes = crate::spec::read_at_most(path, limit).map_err(|e| format!("{shown}: {e}"))?;
    if bytes.len() > limit {
        return Err(too_large(shown));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "{shown}: the file is not UTF-8 (invalid byte at offset {}); save it as UTF-8",
            e.utf8_error().valid_up_to()
        )
    })
}

fn collect_files(path: &std::path::Path, out: &mut Vec<std::path::PathBuf>) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<std::path::PathBuf> = std::fs::read_dir(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            collect_files(&entry, out)?;
        } else if matches!(
            entry.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json" | "cfg")
        ) {
            out.push(entry);
        }
    }
    Ok(())
}

/// Lints what `generate` would write, cluster by cluster, with the context
/// of the cluster's own `poolc-catalog.yaml`: the same file a later
/// `poolc lint generated/` reads, so both always judge alike.
pub fn lint_fileset(model: &crate::model::Model, set: &crate::fileset::FileSet) -> Vec<Diagnostic> {
    crate::parallel::map(&model.clusters, 1, |cluster| lint_cluster(cluster, set))
        .into_iter()
        .flatten()
        .collect()
}

/// One cluster's generated files, judged by its own `poolc-catalog.yaml`.
fn lint_cluster(cluster: &crate::model::Cluster, set: &crate::fileset::FileSet) -> Vec<Diagnostic> {
    let prefix = format!("{}/", cluster.name);
    let catalog_path = format!("{prefix}{CATALOG_FILE}");
    let ctx = set
        .get(&catalog_path)
        .ok_or_else(|| format!("{catalog_path} was not rendered"))
        .and_then(catalog_file::CatalogFile::parse)
        .and_then(|file| file.context());
    let ctx = match ctx {
        Ok(ctx) => ctx,
        Err(message) => {
            return vec![Diagnostic {
                path: format!("generated/{catalog_path}"),
                line: 1,
                column: 1,
                code: checks::syntax::CHECK.code,
                severity: Severity::Error,
                message,
                help: "poolc wrote a catalog it cannot read back; please report this".into(),
                source_line: String::new(),
                subject: None,
            }];
        }
    };
    let mut ws = Workspace::default();
    for (path, text) in set.iter() {
        let Some(name) = path.strip_prefix(&prefix) else {
            continue;
        };
        if !crate::render::PROMQL_FREE.contains(&name) {
            ws.add(&format!("generated/{path}"), text);
        }
    }
    run(&ws, &ctx)
}
