//! The PromQL gate. Every expression in the inputs (rules, dashboards, KEDA
//! triggers) is parsed and checked against the catalog: the metrics the
//! deployed exporter versions expose, with their types and labels, narrowed
//! by what the scrape filters keep. One check per file in `checks/`.

pub mod catalog_file;
pub mod checks;
pub mod inputs;
pub mod labels;
pub(crate) mod pieces;
mod rule_events;
pub mod scrape;

use std::collections::{BTreeMap, BTreeSet};

use crate::catalog::{Exporter, KnownMetric, MetricDecl, MetricType, ScrapedBy, Versions};
use crate::diagnostic::{Diagnostic, Severity};
pub use inputs::Workspace;

/// What the checks know about one metric name.
#[derive(Debug, Clone)]
pub struct Entry {
    pub kind: MetricType,
    /// The exporter's own labels, as it exposes them.
    pub labels: Vec<String>,
    /// The labels its series carry in Prometheus: its own as the scrape
    /// stored them, plus the target labels. See [`scrape`].
    pub stored: BTreeSet<String>,
    /// The labels every series carries.
    pub guaranteed: BTreeSet<String>,
    /// Any other label may be present too (a recording rule over metrics
    /// nobody declared, `up`, `ALERTS` when no alert is known).
    pub open: bool,
    /// Own label → the name the scrape stored it under (`exported_<label>`).
    pub renamed: BTreeMap<String, String>,
    /// None for the user's own metrics and recording rules.
    pub exporter: Option<Exporter>,
    /// Declared by the user (catalog `metrics:` or the spec's `cluster.metrics`).
    pub user: bool,
    /// A declared metric's scrape path.
    pub scraped_by: Option<ScrapedBy>,
    /// Fixed value sets of some labels (`state`, `code`, `resource_type`, `proxy`).
    pub values: BTreeMap<String, BTreeSet<String>>,
    /// The values a sample can take, where the metric's kind or meaning bounds them.
    pub range: Option<ValueRange>,
    /// Label families (`label_*` on `kube_pod_labels`, or a catalog file's
    /// `prefix_*`): any label with such a prefix may be present.
    pub prefixes: Vec<String>,
    /// Any label at all of its own (`ALERTS`, a catalog file's `"*"`).
    pub any_label: bool,
}

/// Inclusive bounds of a metric's values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValueRange {
    pub min: f64,
    pub max: f64,
    /// Why: "a counter", "a 0/1 gauge".
    pub why: &'static str,
}

impl Entry {
    /// Joins the same family as another exporter serves it: the labels of
    /// either, stored as either scrape stores them, and a value set stays
    /// closed only where both close it.
    fn join(&mut self, other: &Entry) {
        for l in &other.labels {
            if !self.labels.contains(l) {
                self.labels.push(l.clone());
            }
        }
        for p in &other.prefixes {
            if !self.prefixes.contains(p) {
                self.prefixes.push(p.clone());
            }
        }
        self.any_label |= other.any_label;
        self.stored.extend(other.stored.iter().cloned());
        self.guaranteed.retain(|l| other.guaranteed.contains(l));
        self.open |= other.open;
        for (label, stored_as) in &other.renamed {
            self.renamed
                .entry(label.clone())
                .or_insert_with(|| stored_as.clone());
        }
        self.values
            .retain(|label, values| match other.values.get(label) {
                Some(more) => {
                    values.extend(more.iter().cloned());
                    true
                }
                None => false,
            });
    }

    /// A built-in exporter's row, as the scrape of that exporter stores it.
    fn builtin(m: &KnownMetric, paths: Option<&scrape::ScrapeModel>) -> Entry {
        let mut entry = Entry::closed(m.kind, BTreeSet::new());
        entry.labels = m.labels.clone();
        entry.prefixes = m.label_set.prefixes.clone();
        entry.any_label = m.label_set.any;
        let own_paths = paths.into_iter().flat_map(|p| p.for_exporter(m.exporter));
        entry.store(scrape::ScrapeModel::stored_over(own_paths, &m.labels));
        // A label only some series carry is possible, never guaranteed.
        for label in &m.label_set.optional {
            let stored_as = entry.renamed.get(label).unwrap_or(label).clone();
            entry.guaranteed.remove(&stored_as);
        }
        entry.exporter = Some(m.exporter);
        entry.values = m.values.clone();
        entry.range = known_range(&m.name, m.kind, &m.labels);
        entry
    }

    /// An entry whose labels are exactly `stored`.
    fn closed(kind: MetricType, stored: BTreeSet<String>) -> Entry {
        Entry {
            kind,
            labels: stored.iter().cloned().collect(),
            guaranteed: stored.clone(),
            stored,
            open: false,
            renamed: BTreeMap::new(),
            exporter: None,
            user: false,
            scraped_by: None,
            values: BTreeMap::new(),
            range: None,
            prefixes: Vec::new(),
            any_label: false,
        }
    }

    /// Whether a series of this metric, as stored, can carry `label`.
    pub fn may_have(&self, label: &str) -> bool {
        self.open
            || self.stored.contains(label)
            || self.prefixes.iter().any(|p| label.starts_with(p.as_str()))
    }

    /// Sets the stored labels from how the series are scraped.
    fn store(&mut self, stored: scrape::Stored) {
        self.stored = stored.labels;
        self.guaranteed = stored.guaranteed;
        self.open = stored.open;
        self.renamed = stored.renamed;
        // A catalog file may name label families: `"*"` (any label) and
        // `prefix_*`. They are patterns, not labels a series carries.
        let patterns: Vec<String> = self
            .labels
            .iter()
            .filter(|l| l.ends_with('*'))
            .cloned()
            .collect();
        for p in &patterns {
            self.stored.remove(p);
            self.guaranteed.remove(p);
        }
        self.open |= self.any_label || patterns.iter().any(|p| p == "*");
        self.prefixes.extend(
            patterns
                .iter()
                .filter_map(|p| p.strip_suffix('*'))
                .filter(|p| !p.is_empty())
                .map(String::from),
        );
        self.prefixes.sort();
        self.prefixes.dedup();
    }
}

/// The resolved catalog for one lint run.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub versions: Option<Versions>,
    /// Prometheus's own series, the user's metrics and the recording rules
    /// among the inputs. They shadow the built-in exporters' rows.
    pub metrics: BTreeMap<String, Entry>,
    /// The built-in exporters at `versions`.
    builtin: Builtin,
    /// The recording rules among the inputs, by name. They shadow every
    /// other entry. Records whose results carry the same labels share one
    /// entry: a run holds one per record of every input file. Hashed:
    /// every selector of every expression looks its name up here first.
    records: foldhash::HashMap<String, std::sync::Arc<Entry>>,
    /// The records' names that end in `*`, read as name families.
    record_families: BTreeSet<String>,
    /// One entry (and its compact labels) per distinct record result.
    record_shapes: BTreeMap<RecordShape, (std::sync::Arc<Entry>, RecordLabels)>,
}

/// The labels of a record's result, as its entry holds them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct RecordShape {
    possible: BTreeSet<String>,
    guaranteed: BTreeSet<String>,
    open: bool,
}

/// The built-in exporters' entries, one exporter's table at a time, built
/// on the first lookup of a name that table may hold: a run pays only for
/// the exporters its inputs read, however large the catalog grows.
#[derive(Debug, Clone, Default)]
struct Builtin {
    /// The scrape paths of this run, once known; until then every
    /// exporter's series are as stored by a scrape poolc knows nothing about.
    paths: Option<std::sync::Arc<scrape::ScrapeModel>>,
    tables: [std::sync::OnceLock<Table>; Exporter::ALL.len()],
}

/// One exporter's rows at the deployed version, each made an entry on its
/// first lookup: a run pays for the names its inputs read, not for the
/// whole table.
#[derive(Debug, Clone, Default)]
struct Table {
    /// The rows by name, in name order; of rows with one name, the last.
    rows: Vec<&'static KnownMetric>,
    /// Each row's place in `rows`, by name.
    index: foldhash::HashMap<&'static str, usize>,
    /// `rows[i]`'s entry, once looked up.
    entries: Vec<std::sync::OnceLock<Entry>>,
    /// Its name families (`node_memory_*`), in name order.
    families: Vec<String>,
    versions: Option<Versions>,
    paths: Option<std::sync::Arc<scrape::ScrapeModel>>,
}

impl Table {
    fn build(
        exporter: Exporter,
        versions: &Versions,
        paths: Option<std::sync::Arc<scrape::ScrapeModel>>,
    ) -> Table {
        let mut rows: Vec<&'static KnownMetric> = exporter
            .metrics_at(exporter.version(versions))
            .iter()
            .collect();
        // Stable, so of equal names the last row stays last; keep it.
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        rows.reverse();
        rows.dedup_by(|later, earlier| later.name == earlier.name);
        rows.reverse();
        let families = rows
            .iter()
            .filter(|m| m.name.ends_with('*'))
            .map(|m| m.name.clone())
            .collect();
        Table {
            index: rows
                .iter()
                .enumerate()
                .map(|(i, m)| (m.name.as_str(), i))
                .collect(),
            entries: rows.iter().map(|_| std::sync::OnceLock::new()).collect(),
            rows,
            families,
            versions: Some(versions.clone()),
            paths,
        }
    }

    /// The entry named `name`.
    fn get(&self, name: &str) -> Option<&Entry> {
        let i = *self.index.get(name)?;
        let versions = self.versions.as_ref()?;
        Some(self.entries[i].get_or_init(|| {
            let m = self.rows[i];
            let paths = self.paths.as_deref();
            let mut entry = Entry::builtin(m, paths);
            // A library family several exporters serve (`workqueue_depth`,
            // `go_goroutines`) may carry the labels of any of them, each as
            // its own scrape stored them.
            for other in Exporter::holding(&m.name).filter(|o| *o != m.exporter) {
                let rows = other.metrics_at(other.version(versions));
                for row in rows.iter().filter(|r| r.name == m.name) {
                    entry.join(&Entry::builtin(row, paths));
                }
            }
            entry
        }))
    }

    fn names(&self) -> impl Iterator<Item = &String> {
        self.rows.iter().map(|m| &m.name)
    }
}

/// Whether `family` is a name family (`node_memory_*`) that holds `name`.
fn is_family_of(family: &str, name: &str) -> bool {
    family
        .strip_suffix('*')
        .is_some_and(|p| name.starts_with(p))
}

impl Catalog {
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.exact(name).or_else(|| {
            // Name families such as `node_memory_*`, whose names come from
            // data at run time: the first family in name order.
            let own = self.metrics.keys().find(|k| is_family_of(k, name));
            let records = self.record_families.iter().find(|k| is_family_of(k, name));
            let builtin = Exporter::holding(name).filter_map(|e| {
                self.table(e)
                    .families
                    .iter()
                    .find(|k| is_family_of(k, name))
            });
            own.into_iter()
                .chain(records)
                .chain(builtin)
                .min()
                .and_then(|family| self.exact(family))
        })
    }

    /// The entry named `name` exactly. Where several exporters' tables
    /// hold it, the last in [`Exporter::ALL`] order.
    fn exact(&self, name: &str) -> Option<&Entry> {
        if let Some(record) = self.records.get(name) {
            return Some(record);
        }
        self.metrics.get(name).or_else(|| {
            Exporter::holding(name)
                .rev()
                .find_map(|e| self.table(e).get(name))
        })
    }

    fn table(&self, exporter: Exporter) -> &Table {
        self.builtin.tables[exporter as usize].get_or_init(|| match &self.versions {
            Some(v) => Table::build(exporter, v, self.builtin.paths.clone()),
            None => Table::default(),
        })
    }

    /// Every name the catalog knows, for "did you mean". This builds every
    /// exporter's table, so only a finding asks for it.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        let builtin = Exporter::ALL
            .into_iter()
            .flat_map(|e| self.table(e).names());
        self.records
            .keys()
            .chain(self.metrics.keys())
            .chain(builtin)
            .map(String::as_str)
    }

    /// The entry named `name`, to change it: a record's own copy, or the
    /// entry of `metrics`. Built-in rows are never changed.
    fn get_mut(&mut self, name: &str) -> Option<&mut Entry> {
        match self.records.get_mut(name) {
            Some(record) => Some(std::sync::Arc::make_mut(record)),
            None => self.metrics.get_mut(name),
        }
    }

    /// Makes the record `name` a metric whose series carry `labels`, and
    /// returns them in their compact form, shared with every record whose
    /// result carries the same.
    fn set_record(&mut self, name: &str, labels: &labels::Labels) -> RecordLabels {
        let shape = RecordShape {
            possible: labels.possible.clone(),
            guaranteed: labels.guaranteed.clone(),
            open: labels.open,
        };
        let (entry, compact) = match self.record_shapes.get(&shape) {
            Some(known) => known.clone(),
            None => {
                // A rule has no labels of its own: all it carries is `stored`.
                let mut entry = Entry::closed(MetricType::Gauge, BTreeSet::new());
                entry.stored = shape.possible.clone();
                entry.guaranteed = shape.guaranteed.clone();
                entry.open = shape.open;
                let known = (std::sync::Arc::new(entry), RecordLabels::of(labels));
                self.record_shapes.insert(shape, known.clone());
                known
            }
        };
        if name.ends_with('*') {
            self.record_families.insert(name.to_string());
        }
        self.records.insert(name.to_string(), entry);
        compact
    }

    /// Prometheus's own series and the user's metrics, all as stored by a
    /// scrape poolc knows nothing about yet, over the built-in exporters at
    /// `versions`; [`run`] applies the scrape paths among the inputs.
    pub fn new(versions: &Versions, user: &[MetricDecl]) -> Catalog {
        let mut metrics = BTreeMap::new();
        let unknown_path = |own: &[String]| scrape::ScrapeModel::stored_over([], own);
        // Relabeling may give targets any label (`metrics_path`, a pod
        // label): Prometheus's own series are open past `job` and `instance`.
        let target = |kind| {
            let mut e = Entry::closed(kind, ["job", "instance"].map(String::from).into());
            e.open = true;
            e
        };
        let mut up = target(MetricType::Gauge);
        up.range = Some(ValueRange {
            min: 0.0,
            max: 1.0,
            why: "a 0/1 gauge",
        });
        metrics.insert("up".into(), up);
        for name in [
            "scrape_duration_seconds",
            "scrape_samples_scraped",
            "scrape_samples_post_metric_relabeling",
            "scrape_series_added",
        ] {
            metrics.insert(name.into(), target(MetricType::Gauge));
        }
        for (name, labels) in [
            ("ALERTS", &["alertname", "alertstate"][..]),
            ("ALERTS_FOR_STATE", &["alertname"][..]),
        ] {
            let mut alerts = Entry::closed(
                MetricType::Gauge,
                labels.iter().map(|s| s.to_string()).collect(),
            );
            alerts.open = true;
            metrics.insert(name.into(), alerts);
        }
        for m in user {
            let mut entry = Entry::closed(m.kind, BTreeSet::new());
            entry.labels = m.labels.clone();
            entry.store(unknown_path(&m.labels));
            entry.user = true;
            entry.scraped_by = m.scraped_by.clone();
            entry.range = known_range(&m.name, m.kind, &m.labels);
            metrics.insert(m.name.clone(), entry);
        }
        Catalog {
            versions: Some(versions.clone()),
            metrics,
            ..Catalog::default()
        }
    }

    /// Restates every scraped metric's labels as its scrape paths store them.
    fn apply_scrape(&mut self, model: &scrape::ScrapeModel) {
        self.builtin = Builtin {
            paths: Some(std::sync::Arc::new(model.clone())),
            tables: Default::default(),
        };
        for entry in self.metrics.values_mut() {
            if let Some(exporter) = entry.exporter {
                let stored =
                    scrape::ScrapeModel::stored_over(model.for_exporter(exporter), &entry.labels);
                entry.store(stored);
            } else if let Some(by) = &entry.scraped_by {
                let path = model.for_user(by);
                let stored = path.stored(&entry.labels);
                entry.store(stored);
            }
        }
    }

    /// `ALERTS` and `ALERTS_FOR_STATE` carry every label of their alerts
    /// (`possible`); `open` when one alert's result is.
    fn set_alerts(&mut self, possible: BTreeSet<String>, open: bool) {
        for name in ["ALERTS", "ALERTS_FOR_STATE"] {
            if let Some(entry) = self.get_mut(name) {
                entry.open = open;
                entry.stored.extend(possible.iter().cloned());
            }
        }
        if let Some(entry) = self.get_mut("ALERTS") {
            entry.stored.insert("alertstate".into());
        }
    }
}

/// The labels of the alerts among the inputs: their expressions' results
/// and their rules' `labels`, and whether any result is open. None when
/// there is no alert.
fn alert_labels(ws: &Workspace, ctx: &Context) -> Option<(BTreeSet<String>, bool)> {
    let mut possible = BTreeSet::new();
    let mut open = false;
    let mut any = false;
    for (i, e) in ws.expressions.iter().enumerate() {
        let inputs::Role::Rule(r) = &e.role else {
            continue;
        };
        if r.alert.is_none() {
            continue;
        }
        any = true;
        match ws.ast(i) {
            Ok(parsed) => {
                let l = labels::labels(ctx, parsed);
                open |= l.open;
                possible.extend(l.possible);
            }
            Err(_) => open = true,
        }
        possible.extend(r.labels.keys().cloned());
    }
    any.then_some((possible, open))
}

/// Bounds the catalog knows from a metric's kind and meaning: counters never
/// go below 0, `_info` series are always 1, and state series (HAProxy
/// `state`, kube-state-metrics `condition` and `phase`, KEDA's `active` and
/// `paused`) are 0 or 1.
fn known_range(name: &str, kind: MetricType, labels: &[String]) -> Option<ValueRange> {
    let has = |l: &str| labels.iter().any(|x| x == l);
    let flag = ValueRange {
        min: 0.0,
        max: 1.0,
        why: "a 0/1 gauge",
    };
    if kind == MetricType::Counter {
        return Some(ValueRange {
            min: 0.0,
            max: f64::INFINITY,
            why: "a counter",
        });
    }
    if kind != MetricType::Gauge {
        return None;
    }
    if name.ends_with("_info") {
        return Some(ValueRange {
            min: 1.0,
            max: 1.0,
            why: "an info series",
        });
    }
    // `haproxy_backend_agg_*_status` count servers per state: not flags.
    let haproxy_state = name.starts_with("haproxy_") && !name.contains("_agg_") && has("state");
    let flag_name = (haproxy_state
        && (name.ends_with("_status") || name.ends_with("_check_status")))
        || matches!(name, "keda_scaler_active" | "keda_scaled_object_paused")
        || (name.starts_with("kube_") && (has("condition") || has("phase")))
        || (name.starts_with("kube_")
            && (name.ends_with("_status_ready") || name.ends_with("_spec_paused")));
    flag_name.then_some(flag)
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
    /// The scrape paths the catalog file declares.
    pub declared: Vec<scrape::Declared>,
    /// Every scrape path of this run: the inputs' and the declared ones.
    pub paths: scrape::ScrapeModel,
    /// The recording rules among the inputs, by name: the labels of each
    /// one's result. Rules in one file read these for rules in another,
    /// so no file's parse trees outlive its own checks.
    pub records: BTreeMap<String, RecordLabels>,
}

/// The labels of a recording rule's result, kept compactly: a lint run
/// holds one per record of every input file, and records with the same
/// labels share them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordLabels {
    /// Labels every series of the result carries.
    pub guaranteed: std::sync::Arc<[String]>,
    /// Labels some series may carry, besides the guaranteed ones.
    pub possible: std::sync::Arc<[String]>,
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
    let mut ctx = scraped(ws, ctx);
    let mut records = Vec::new();
    for (i, e) in ws.expressions.iter().enumerate() {
        let Some(record) = RecordSummary::of(e) else {
            continue;
        };
        if let Ok(parsed) = ws.ast(i) {
            records.extend(record.add(&mut ctx, parsed));
        }
    }
    RecordSummary::resolve_all(&mut ctx, &records);
    let mut alerts = AlertLabels::default();
    if ws.reads_alerts() {
        alerts.add(ws, &ctx);
    }
    alerts.apply(&mut ctx);
    check(ws, &ctx)
}

/// The context with the scrape paths among the inputs (those `ws` holds or
/// was shared) and the catalog's declared ones: every scraped metric's
/// labels restated as those paths store them.
pub fn scraped(ws: &Workspace, ctx: &Context) -> Context {
    let mut out = ctx.clone();
    out.paths = scrape::ScrapeModel::build(ws, &ctx.declared);
    out.catalog.apply_scrape(&out.paths);
    out
}

/// The labels of the alerts among the inputs, gathered file by file:
/// `ALERTS` and `ALERTS_FOR_STATE` carry them.
#[derive(Debug, Default)]
struct AlertLabels {
    possible: BTreeSet<String>,
    open: bool,
    any: bool,
}

impl AlertLabels {
    fn add(&mut self, ws: &Workspace, ctx: &Context) {
        if let Some((possible, open)) = alert_labels(ws, ctx) {
            self.possible.extend(possible);
            self.open |= open;
            self.any = true;
        }
    }

    fn apply(self, ctx: &mut Context) {
        if self.any {
            ctx.catalog.set_alerts(self.possible, self.open);
        }
    }
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
            source_line: crate::diagnostic::excerpt(&ws.source_line(&u.path, u.line), 1),
            subject: u.subject.clone(),
        });
    }
    // The checks are independent readers of the same trees: on every core.
    ws.parse_all();
    for found in crate::parallel::map_each(checks::ALL, |check| {
        let mut found = Vec::new();
        (check.run)(ws, ctx, &mut found);
        found
    }) {
        out.extend(found);
    }
    let rule_lines = RuleLines::of(ws);
    out.retain(|d| !suppressed(ws, &rule_lines, d));
    out.sort();
    out.dedup();
    out
}

/// Per file, the rules' expression lines in order, each with the largest
/// rule line at or before it: "the rule a finding sits in" is then a binary
/// search, so filtering findings is linear in their number, not a product
/// of findings and expressions.
struct RuleLines<'a> {
    by_path: BTreeMap<&'a str, Vec<(usize, usize)>>,
}

impl<'a> RuleLines<'a> {
    fn of(ws: &'a Workspace) -> RuleLines<'a> {
        let mut by_path: BTreeMap<&str, Vec<(usize, usize)>> = BTreeMap::new();
        for e in &ws.expressions {
            if let inputs::Role::Rule(r) = &e.role {
                by_path
                    .entry(&e.path)
                    .or_default()
                    .push((e.line, r.rule_line));
            }
        }
        for lines in by_path.values_mut() {
            lines.sort();
            let mut max = 0;
            for entry in lines.iter_mut() {
                max = max.max(entry.1);
                entry.1 = max;
            }
        }
        RuleLines { by_path }
    }

    /// The largest rule line among the rules whose expression is at or before `line`.
    fn at_or_before(&self, path: &str, line: usize) -> Option<usize> {
        let lines = self.by_path.get(path)?;
        let count = lines.partition_point(|(l, _)| *l <= line);
        count.checked_sub(1).map(|i| lines[i].1)
    }
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
    /// The record `e` defines, if it is a recording rule: its name, its
    /// expression and its own labels, to [`RecordSummary::add`] once the
    /// scrape paths are known.
    pub fn of(e: &inputs::Expression) -> Option<RecordSummary> {
        let inputs::Role::Rule(rule) = &e.role else {
            return None;
        };
        Some(RecordSummary {
            name: rule.record.clone()?,
            reads: Vec::new(),
            text: e.text.clone(),
            static_labels: rule.labels.keys().cloned().collect(),
        })
    }

    /// [`RecordSummary::add_batch`] a batch at a time: memory holds one
    /// batch's trees. Returns the records to judge again.
    pub fn add_all(ctx: &mut Context, records: Vec<RecordSummary>) -> Vec<RecordSummary> {
        let mut chained = Vec::new();
        let mut records = records.into_iter();
        loop {
            let batch: Vec<RecordSummary> = records.by_ref().take(RECORD_BATCH).collect();
            if batch.is_empty() {
                return chained;
            }
            chained.extend(RecordSummary::add_batch(ctx, batch));
        }
    }

    /// [`RecordSummary::add`] for each of `batch` in order, with the work
    /// that depends on the catalog alone done on every core: the parse of
    /// each distinct expression, and the labels of each record that reads
    /// only names the catalog knows (no record, nothing unknown), which no
    /// earlier record can change. The others are added in order as before.
    /// Returns the records to judge again.
    pub fn add_batch(ctx: &mut Context, batch: Vec<RecordSummary>) -> Vec<RecordSummary> {
        let mut distinct: foldhash::HashMap<&str, usize> = foldhash::HashMap::default();
        let mut texts: Vec<&str> = Vec::new();
        let at: Vec<usize> = batch
            .iter()
            .map(|r| {
                *distinct.entry(&r.text).or_insert_with(|| {
                    texts.push(&r.text);
                    texts.len() - 1
                })
            })
            .collect();
        let trees = crate::parallel::map(&texts, 64, |text| {
            crate::promql::parse(text)
                .ok()
                .map(|tree| (crate::promql::metric_names(&tree), tree))
        });
        drop(distinct);
        // A record reads only the catalog when none of its names is a
        // record (before it in the batch, or already known) or unknown; a
        // name family among the records makes every name suspect.
        let mut defined: BTreeSet<&str> = BTreeSet::new();
        let mut families = !ctx.catalog.record_families.is_empty();
        let independent: Vec<bool> = batch
            .iter()
            .zip(&at)
            .map(|(record, &i)| {
                let alone = trees[i].as_ref().is_some_and(|(reads, _)| {
                    !families
                        && reads.iter().all(|n| {
                            !defined.contains(n.as_str())
                                && !ctx.records.contains_key(n)
                                && ctx.catalog.get(n).is_some()
                        })
                });
                defined.insert(&record.name);
                families |= record.name.ends_with('*');
                alone && !families
            })
            .collect();
        let labelled: Vec<Option<labels::Labels>> = {
            let ctx = &*ctx;
            let work: Vec<(usize, bool)> = at
                .iter()
                .copied()
                .zip(independent.iter().copied())
                .collect();
            crate::parallel::map(&work, 64, |&(i, alone)| {
                let (_, tree) = trees[i].as_ref().filter(|_| alone)?;
                Some(labels::labels(ctx, tree))
            })
        };
        let mut chained = Vec::new();
        for ((record, i), labelled) in batch.into_iter().zip(at).zip(labelled) {
            let Some((_, parsed)) = &trees[i] else {
                continue;
            };
            match labelled {
                Some(l) => record.set(ctx, l),
                None => chained.extend(record.add(ctx, parsed)),
            }
        }
        chained
    }

    /// Makes the record a metric of `ctx` at once, so later rules see it.
    /// Returns it, to judge again later, when its expression (`parsed`)
    /// reads a name `ctx` did not know.
    pub fn add(
        mut self,
        ctx: &mut Context,
        parsed: &promql_parser::parser::Expr,
    ) -> Option<RecordSummary> {
        let reads = crate::promql::metric_names(parsed);
        let chained = reads
            .iter()
            .any(|n| ctx.records.contains_key(n) || ctx.catalog.get(n).is_none());
        self.judge(ctx, parsed);
        chained.then(|| {
            self.reads = reads;
            self
        })
    }

    fn judge(&self, ctx: &mut Context, parsed: &promql_parser::parser::Expr) {
        let l = labels::labels(ctx, parsed);
        self.set(ctx, l);
    }

    /// Makes the record a metric of `ctx` whose expression yields `l`.
    fn set(&self, ctx: &mut Context, mut l: labels::Labels) {
        for k in &self.static_labels {
            l.guaranteed.insert(k.clone());
            l.possible.insert(k.clone());
        }
        let compact = ctx.catalog.set_record(&self.name, &l);
        ctx.records.insert(self.name.clone(), compact);
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

    /// [`RecordSummary::resolve_chains`] until nothing changes, so a chain
    /// of records defined in any order is labelled through; the records
    /// whose labels changed on the way.
    pub fn resolve_all(ctx: &mut Context, records: &[RecordSummary]) -> BTreeSet<String> {
        let mut changed = BTreeSet::new();
        for _ in 0..=records.len().min(8) {
            let now = RecordSummary::resolve_chains(ctx, records);
            if now.is_empty() {
                break;
            }
            changed.extend(now);
        }
        changed
    }
}

/// `# poolc: ignore CODE reason` on the line above the rule (or the
/// finding) silences that code there. A reason is required.
fn suppressed(ws: &Workspace, rule_lines: &RuleLines, d: &Diagnostic) -> bool {
    let rule_line = rule_lines.at_or_before(&d.path, d.line);
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
        source_line: crate::diagnostic::excerpt(&ws.source_line(&e.path, e.line), e.column),
        subject: e.subject(),
    }
}

/// The nearest name in `candidates`, for "did you mean".
pub fn nearest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let within = |c: &str| (name.len().max(c.len()) / 3).max(2);
    let len = name.chars().count();
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        // The distance is at least the difference in length, so a hostile
        // long name is compared with nothing; and a candidate farther than
        // the best so far is given up as soon as its distance passes it.
        if c.chars().count().abs_diff(len) > within(c) {
            continue;
        }
        let bound = best.map_or(within(c), |(d, _)| d.min(within(c)));
        if let Some(d) = crate::model::edit_distance_within(name, c, bound) {
            if best.is_none_or(|b| (d, c) < b) {
                best = Some((d, c));
            }
        }
    }
    best.map(|(_, c)| c)
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
    crate::parallel::bound_allocator();
    let mut files = Vec::new();
    for path in paths {
        collect_files(path, &mut files)?;
    }
    files.retain(|f| f.file_name().is_none_or(|n| n != CATALOG_FILE));
    // Files grouped by the catalog file that applies to them.
    let mut groups: BTreeMap<Option<std::path::PathBuf>, Group> = BTreeMap::new();
    for file in files {
        let applies = match catalog {
            Some(path) => Some(path.to_path_buf()),
            None => nearest_catalog(&file)?,
        };
        groups.entry(applies).or_default().push(file);
    }
    let mut out = Vec::new();
    for (catalog, files) in groups {
        let ctx = read_catalog(catalog.as_deref())?;
        out.extend(lint_files(files, ctx)?);
    }
    out.sort();
    Ok(out)
}

/// Lints files that share one catalog, one workspace (text and parse
/// trees) at a time: no file's text is held while another is checked.
/// Files that can hold no cross-file fact and no `ALERTS` read are read
/// once ([`lint_in_one_pass`]); others as [`lint_in_two_passes`] does.
fn lint_files(files: Group, ctx: Context) -> Result<Vec<Diagnostic>, String> {
    if files.len() > 1 && !may_hold_facts(&files)? {
        if let Some((out, _)) = lint_in_one_pass(&files, &ctx)? {
            return Ok(out);
        }
    }
    lint_in_two_passes(files, ctx)
}

/// Whether any of `files` may hold a cross-file fact (a scrape path or
/// filter, an HAProxy proxy, a KEDA fallback) or read `ALERTS`, by the
/// words every such input contains.
fn may_hold_facts(files: &Group) -> Result<bool, String> {
    const WORDS: [&str; 6] = [
        "ServiceMonitor",
        "PodMonitor",
        "scrape_configs",
        "ScaledObject",
        "ScaledJob",
        "ALERTS",
    ];
    let holds = crate::parallel::map_each(files, |file| {
        if file.extension().is_some_and(|e| e == "cfg") {
            return Ok::<bool, String>(true);
        }
        let shown = crate::door::shown(file);
        let text = read_input(file, &shown)?;
        Ok(WORDS.iter().any(|w| text.contains(w)))
    });
    for held in holds {
        if held? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// One file's findings from [`lint_in_one_pass`], and what they rest on.
struct Checked {
    /// The step (file number) at which it was checked.
    step: usize,
    /// The metric names its expressions read.
    reads: BTreeSet<String>,
    /// Whether a finding or a selector rests on every name the catalog
    /// knows: an unknown name's "did you mean", or a selector without a
    /// fixed metric name.
    reads_all: bool,
    found: Vec<Diagnostic>,
}

/// Lints files in one read each: every file's records join the context
/// and the file is checked at once, with the records of the files before
/// it and its own. Once every record is known, a file whose findings read
/// a record defined or changed after its check is read and checked again.
/// The findings are those of [`lint_in_two_passes`], with how many files
/// were checked again; `None` when a file
/// turns out to hold a cross-file fact or to read `ALERTS`, which only the
/// two passes see.
fn lint_in_one_pass(
    files: &Group,
    ctx: &Context,
) -> Result<Option<(Vec<Diagnostic>, usize)>, String> {
    let mut ctx = scraped(&Workspace::default(), ctx);
    // Record name → the last step that set it.
    let mut set_at: BTreeMap<String, usize> = BTreeMap::new();
    let mut last_set: Option<usize> = None;
    let mut family_at: Option<usize> = None;
    let mut chained: Vec<RecordSummary> = Vec::new();
    let mut checked: Vec<Checked> = Vec::new();
    let mut failed = None;
    let mut facts = false;
    crate::parallel::pipeline(
        files,
        |f| read_workspace(f),
        |ws| {
            if failed.is_some() || facts {
                return;
            }
            let ws = match ws {
                Ok(ws) => ws,
                Err(e) => {
                    failed.get_or_insert(e);
                    return;
                }
            };
            if ws.fact_count() > 0 || ws.reads_alerts() {
                facts = true;
                return;
            }
            let step = checked.len();
            let records: Vec<RecordSummary> = ws
                .expressions
                .iter()
                .filter_map(RecordSummary::of)
                .collect();
            for r in &records {
                set_at.insert(r.name.clone(), step);
                last_set = Some(step);
                if r.name.ends_with('*') {
                    family_at = Some(step);
                }
            }
            chained.extend(RecordSummary::add_all(&mut ctx, records));
            let found = check(&ws, &ctx);
            let (reads, open) = names_read(&ws);
            let unknown = found
                .iter()
                .any(|d| d.code == checks::unknown_metric::CHECK.code);
            checked.push(Checked {
                step,
                reads,
                reads_all: open || unknown,
                found,
            });
        },
    );
    if let Some(e) = failed {
        return Err(e);
    }
    if facts {
        return Ok(None);
    }
    // Records read before they were defined are complete only now.
    let end = checked.len();
    for name in RecordSummary::resolve_all(&mut ctx, &chained) {
        set_at.insert(name, end);
        last_set = Some(end);
    }
    drop(chained);
    let after = |at: Option<usize>, step: usize| at.is_some_and(|at| at > step);
    let stale: Vec<usize> = checked
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            after(family_at, c.step)
                || (c.reads_all && after(last_set, c.step))
                || c.reads
                    .iter()
                    .any(|n| after(set_at.get(n).copied(), c.step))
        })
        .map(|(i, _)| i)
        .collect();
    let again: Vec<&std::path::PathBuf> = stale.iter().map(|&i| &files[i]).collect();
    let mut rechecked = Vec::new();
    crate::parallel::pipeline(
        &again,
        |f| read_workspace(f),
        |ws| match ws {
            Ok(ws) if failed.is_none() => rechecked.push(check(&ws, &ctx)),
            Ok(_) => {}
            Err(e) => drop(failed.get_or_insert(e)),
        },
    );
    if let Some(e) = failed {
        return Err(e);
    }
    let again = stale.len();
    for (i, found) in stale.into_iter().zip(rechecked) {
        checked[i].found = found;
    }
    let found = checked.into_iter().flat_map(|c| c.found).collect();
    Ok(Some((found, again)))
}

/// The metric names `ws`'s expressions read, and whether any selector
/// reads no fixed name (`{__name__=~"…"}`).
fn names_read(ws: &Workspace) -> (BTreeSet<String>, bool) {
    let mut names = BTreeSet::new();
    let mut open = false;
    for i in 0..ws.expressions.len() {
        let Ok(tree) = ws.ast(i) else { continue };
        for vs in crate::promql::selectors(tree) {
            match crate::promql::metric_name(vs) {
                Some(name) => {
                    names.insert(name.to_string());
                }
                None => open = true,
            }
        }
    }
    (names, open)
}

/// One input file, read into a workspace of its own.
fn read_workspace(path: &std::path::Path) -> Result<Workspace, String> {
    let shown = crate::door::shown(path);
    let mut ws = Workspace::default();
    ws.add_owned(&shown, read_input(path, &shown)?);
    Ok(ws)
}

/// Lints files in two reads each. The first reads the cross-file
/// facts (scrape paths, scrape filters, HAProxy proxies, KEDA fallbacks)
/// and its recording rules' expressions; with the scrape model those facts
/// complete, every record is summarized into the context (and the alerts'
/// labels, re-reading the files, when something reads `ALERTS`); then
/// each file is checked with everything known.
fn lint_in_two_passes(files: Group, ctx: Context) -> Result<Vec<Diagnostic>, String> {
    let read = |path: &std::path::PathBuf| read_workspace(path);
    // Files are read on every core, each worker one file at a time, so
    // memory holds one workspace per core. Each file's facts and records
    // are merged in input order, as a serial read would. The file read
    // last is kept, to be checked first without reading it again.
    let last = files.len().checked_sub(1);
    let numbered: Vec<(usize, &std::path::PathBuf)> = files.iter().enumerate().collect();
    let first_reads = crate::parallel::map_each(&numbered, |(i, file)| {
        read(file).map(|ws| FirstRead::of(ws, Some(*i) == last))
    });
    let mut shared = Workspace::default();
    let mut reads_alerts = false;
    let mut records = Vec::new();
    let mut kept = None;
    for first in first_reads {
        let first = first?;
        shared.gather(&first.facts);
        reads_alerts |= first.reads_alerts;
        records.extend(first.records);
        kept = first.kept.or(kept);
    }
    let mut ctx = scraped(&shared, &ctx);
    let chained = RecordSummary::add_all(&mut ctx, records);
    RecordSummary::resolve_all(&mut ctx, &chained);
    drop(chained);
    // The later passes check one file at a time, with the next file read
    // meanwhile: memory holds the trees of one file.
    let mut failed = None;
    let mut alerts = AlertLabels::default();
    if reads_alerts {
        crate::parallel::pipeline(&files, read, |ws| match ws {
            Ok(ws) if failed.is_none() => alerts.add(&ws, &ctx),
            Ok(_) => {}
            Err(e) => drop(failed.get_or_insert(e)),
        });
    }
    if let Some(e) = failed {
        return Err(e);
    }
    alerts.apply(&mut ctx);
    let mut out = Vec::new();
    if let Some(mut ws) = kept {
        ws.share(&shared);
        out.extend(check(&ws, &ctx));
    }
    crate::parallel::pipeline(&files[..last.unwrap_or(0)], read, |ws| match ws {
        Ok(mut ws) if failed.is_none() => {
            ws.share(&shared);
            out.extend(check(&ws, &ctx));
        }
        Ok(_) => {}
        Err(e) => drop(failed.get_or_insert(e)),
    });
    match failed {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// What the first read of a file leaves: its cross-file facts, whether it
/// reads `ALERTS`, its recording rules, and, for the file read last, the
/// whole workspace.
struct FirstRead {
    facts: Workspace,
    reads_alerts: bool,
    records: Vec<RecordSummary>,
    kept: Option<Workspace>,
}

impl FirstRead {
    fn of(ws: Workspace, keep: bool) -> FirstRead {
        let mut facts = Workspace::default();
        facts.gather(&ws);
        FirstRead {
            facts,
            reads_alerts: ws.reads_alerts(),
            records: ws
                .expressions
                .iter()
                .filter_map(RecordSummary::of)
                .collect(),
            kept: keep.then_some(ws),
        }
    }
}

/// How many recording rules the record pass parses at a time.
const RECORD_BATCH: usize = 2048;

/// Input files, each found and read once through the door.
type Group = Vec<std::path::PathBuf>;

/// An input's text, read again through the door.
fn read_input(path: &std::path::Path, shown: &str) -> Result<String, String> {
    use crate::door::{Dir, Opened};
    match Dir::open_any(path).map_err(|e| e.to_string())? {
        Opened::File(file) => read_open(file, shown),
        Opened::Dir(_) => Err(format!(
            "{shown}: became a directory while poolc read it; lint it again"
        )),
    }
}

fn read_catalog(path: Option<&std::path::Path>) -> Result<Context, String> {
    let file = match path {
        Some(path) => {
            let shown = path.to_string_lossy().replace('\\', "/");
            let text = read_bounded(path, &shown, catalog_file::MAX_CATALOG_BYTES, |shown| {
                format!(
                    "{shown}: the catalog is larger than {} MiB; it lists exporter versions and metrics, \
                     so import the series of fewer jobs",
                    catalog_file::MAX_CATALOG_BYTES / (1024 * 1024)
                )
            })?;
            catalog_file::CatalogFile::parse(&text)
                .map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => catalog_file::CatalogFile::default(),
    };
    file.context().map_err(|e| match path {
        Some(p) => catalog_file::located(&p.to_string_lossy(), &e),
        None => e,
    })
}

/// The `poolc-catalog.yaml` in `file`'s directory or the nearest parent.
/// One that is a link or not a regular file is an error, not skipped.
fn nearest_catalog(file: &std::path::Path) -> Result<Option<std::path::PathBuf>, String> {
    for candidate in file.ancestors().skip(1).map(|dir| dir.join(CATALOG_FILE)) {
        match crate::door::Dir::open_any(&candidate) {
            Ok(crate::door::Opened::File(_)) => return Ok(Some(candidate)),
            Ok(crate::door::Opened::Dir(_)) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(None)
}

/// Reads a UTF-8 file of at most `limit` bytes, never more into memory.
fn read_bounded(
    path: &std::path::Path,
    shown: &str,
    limit: usize,
    too_large: fn(&str) -> String,
) -> Result<String, String> {
    let bytes = crate::spec::read_at_most(path, limit).map_err(|e| e.to_string())?;
    utf8(bytes, shown, limit, too_large)
}

fn utf8(
    bytes: Vec<u8>,
    shown: &str,
    limit: usize,
    too_large: fn(&str) -> String,
) -> Result<String, String> {
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

/// Directories nest no deeper than this below a lint path.
const MAX_LINT_DEPTH: usize = 64;

/// Every lint input under `path`, read through the door (so a file that
/// is not UTF-8 or too large is an error before anything is linted): no
/// link is followed (so a directory linking to itself is walked once), and
/// an input-named entry that is a link, FIFO, socket or device is an error.
/// The texts are not kept: each pass reads a file again.
fn collect_files(path: &std::path::Path, out: &mut Group) -> Result<(), String> {
    use crate::door::{Dir, Opened};
    match Dir::open_any(path).map_err(|e| e.to_string())? {
        Opened::File(file) => {
            let shown = crate::door::shown(path);
            read_open(file, &shown)?;
            out.push(path.to_path_buf());
            Ok(())
        }
        Opened::Dir(dir) => walk_inputs(&dir, path, 0, out),
    }
}

fn read_open(file: crate::door::RegularFile, shown: &str) -> Result<String, String> {
    let limit = inputs::MAX_FILE_BYTES;
    match file.read_bounded(limit) {
        Ok(Some(bytes)) => utf8(bytes, shown, limit, inputs::too_large),
        Ok(None) => Err(inputs::too_large(shown)),
        Err(e) => Err(format!("{shown}: {e}")),
    }
}

fn walk_inputs(
    dir: &crate::door::Dir,
    path: &std::path::Path,
    depth: usize,
    out: &mut Group,
) -> Result<(), String> {
    use crate::door::Kind;
    if depth > MAX_LINT_DEPTH {
        return Err(format!(
            "{}: directories nest deeper than {MAX_LINT_DEPTH} levels; lint the directories that hold the files",
            dir.shown()
        ));
    }
    for (name, kind) in dir.entries().map_err(|e| e.to_string())? {
        let entry = path.join(&name);
        let input = matches!(
            std::path::Path::new(&name)
                .extension()
                .and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json" | "cfg")
        );
        match kind {
            Kind::Dir => {
                let sub = dir.subdir(&name).map_err(|e| e.to_string())?;
                walk_inputs(&sub, &entry, depth + 1, out)?;
            }
            // Reported whatever its name: a link may stand for a directory.
            Kind::Symlink => {
                return Err(crate::door::DoorError::Symlink {
                    path: dir.show(&name),
                }
                .to_string())
            }
            _ if name == CATALOG_FILE || !input => {}
            _ => {
                let file = dir
                    .open_file(&name)
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("{}: removed while poolc read it", dir.show(&name)))?;
                read_open(file, &dir.show(&name))?;
                out.push(entry);
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn built(catalog: &Catalog) -> Vec<Exporter> {
        Exporter::ALL
            .into_iter()
            .filter(|e| catalog.builtin.tables[*e as usize].get().is_some())
            .collect()
    }

    /// A run builds only the tables of the exporters its expressions read,
    /// so start-up does not grow with the catalog.
    #[test]
    fn only_the_exporters_read_are_built() {
        let ctx = catalog_file::CatalogFile::default().context().unwrap();
        assert!(built(&ctx.catalog).is_empty());
        let mut ws = Workspace::default();
        ws.add(
            "rules.yaml",
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: haproxy_backend_active_servers == 0 and up == 0\n",
        );
        let ctx = scraped(&ws, &ctx);
        assert!(built(&ctx.catalog).is_empty());
        check(&ws, &ctx);
        assert_eq!(built(&ctx.catalog), [Exporter::Haproxy]);
    }

    /// Files read once give the findings of files read twice: records
    /// read in a file before the one defining them, defined twice, read
    /// through a chain defined backwards, an unknown name and its "did you
    /// mean", and a selector without a fixed name. A file holding a scrape
    /// path, or reading `ALERTS`, is left to the two passes.
    #[test]
    fn one_pass_finds_what_two_passes_find() {
        let dir = std::env::temp_dir().join(format!("poolc-one-pass-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let rules = |name: &str, rules: &str| format!("groups:\n- name: {name}\n  rules:\n{rules}");
        let files = [
            (
                "a.yaml",
                rules(
                    "a",
                    "  - alert: ReadsALaterRecord\n    expr: sum by (pool) (pool:busy:sum) > 1\n    annotations:\n      summary: \"{{ $labels.proxy }}\"\n  - alert: Typo\n    expr: pool:busy:summ > 0\n  - alert: AnyName\n    expr: count({__name__=~\"pool:.*\"}) > 0\n  - record: chain:first\n    expr: sum by (pool, proxy) (chain:second)\n",
                ),
            ),
            (
                "b.yaml",
                rules(
                    "b",
                    "  - record: pool:busy:sum\n    expr: sum by (pool) (label_replace(haproxy_backend_current_sessions, \"pool\", \"$1\", \"proxy\", \"bk_(.*)\"))\n  - alert: ReadsAChain\n    expr: sum by (proxy, instance) (chain:first{proxy=\"x\"}) > 0\n",
                ),
            ),
            (
                "c.yaml",
                rules(
                    "c",
                    "  - record: chain:second\n    expr: haproxy_backend_current_sessions\n  - record: pool:busy:sum\n    expr: sum by (pool, proxy) (haproxy_backend_current_sessions)\n  - alert: Alone\n    expr: haproxy_backend_active_servers{typo=\"x\"} == 0\n",
                ),
            ),
        ];
        let mut paths: Group = Vec::new();
        for (name, text) in &files {
            std::fs::write(dir.join(name), text).unwrap();
            paths.push(dir.join(name));
        }
        let ctx = catalog_file::CatalogFile::default().context().unwrap();
        let (mut once, again) = lint_in_one_pass(&paths, &ctx).unwrap().expect("no facts");
        let mut twice = lint_in_two_passes(paths.clone(), ctx.clone()).unwrap();
        once.sort();
        twice.sort();
        assert_eq!(once, twice);
        assert!(twice.len() >= 3, "{twice:#?}");
        assert_eq!(
            again, 2,
            "a.yaml and b.yaml read records set after their checks"
        );
        for (name, text) in [
            ("d.yaml", "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: m, namespace: n}\nspec:\n  endpoints: [{port: metrics}]\n  selector: {}\n".to_string()),
            ("e.yaml", rules("e", "  - alert: Meta\n    expr: ALERTS{alertname=\"Typo\"} > 0\n")),
        ] {
            std::fs::write(dir.join(name), text).unwrap();
            let mut with = paths.clone();
            with.push(dir.join(name));
            assert!(lint_in_one_pass(&with, &ctx).unwrap().is_none(), "{name}");
            assert!(may_hold_facts(&with).unwrap(), "{name}");
        }
        assert!(!may_hold_facts(&paths).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A label the catalog marks optional (`reason?`) is possible but not
    /// guaranteed; the others stay guaranteed.
    #[test]
    fn optional_labels_are_possible_not_guaranteed() {
        let ctx = scraped(
            &Workspace::default(),
            &catalog_file::CatalogFile::default().context().unwrap(),
        );
        let failed = ctx.catalog.get("kube_job_status_failed").unwrap();
        assert!(failed.may_have("reason"));
        assert!(!failed.guaranteed.contains("reason"));
        assert!(failed.guaranteed.contains("job_name") && failed.guaranteed.contains("namespace"));
    }

    /// The records' entries are the same as the labels say, and records
    /// with the same labels share one.
    #[test]
    fn records_with_the_same_labels_share_an_entry() {
        let mut ctx = catalog_file::CatalogFile::default().context().unwrap();
        let ws = Workspace::default();
        ctx = scraped(&ws, &ctx);
        for (name, expr) in [
            (
                "a:sessions",
                "sum by (proxy) (haproxy_backend_current_sessions)",
            ),
            (
                "b:sessions",
                "sum by (proxy) (haproxy_backend_current_queue)",
            ),
            ("c:all", "sum(haproxy_backend_current_queue)"),
        ] {
            let parsed = crate::promql::parse(expr).unwrap();
            let record = RecordSummary {
                name: name.into(),
                reads: Vec::new(),
                text: expr.into(),
                static_labels: Vec::new(),
            };
            assert!(record.add(&mut ctx, &parsed).is_none());
        }
        let a = ctx.catalog.get("a:sessions").unwrap();
        assert!(std::ptr::eq(a, ctx.catalog.get("b:sessions").unwrap()));
        assert_eq!(a.stored, BTreeSet::from(["proxy".to_string()]));
        assert_eq!(a.guaranteed, a.stored);
        assert!(ctx.catalog.get("c:all").unwrap().stored.is_empty());
        assert_eq!(
            ctx.records["a:sessions"].guaranteed[..],
            ["proxy".to_string()]
        );
    }
}
