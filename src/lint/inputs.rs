//! Reading the files `poolc lint` is given (and the ones `generate`
//! produces) into the expressions and facts the checks look at: every PromQL
//! expression with its file, line and role, the scrape filters of
//! ServiceMonitors, HAProxy backend names and KEDA fallback thresholds.
//! Files are read leniently: only the fields the checks need are typed.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::diagnostic::Subject;
use crate::promql;

/// One PromQL expression found in an input.
#[derive(Debug, Clone)]
pub struct Expression {
    pub path: String,
    pub line: usize,
    pub column: usize,
    pub text: String,
    pub role: Role,
}

#[derive(Debug, Clone)]
pub enum Role {
    Rule(RuleContext),
    /// A Grafana panel target (with `$variables`).
    Dashboard {
        uid: String,
        panel: PanelContext,
    },
    /// A KEDA metrics-api `valueLocation`.
    ValueLocation,
    /// A KEDA prometheus trigger query.
    TriggerQuery,
}

#[derive(Debug, Clone, Default)]
pub struct RuleContext {
    pub group: String,
    pub alert: Option<String>,
    pub record: Option<String>,
    pub for_: Option<String>,
    pub labels: TextMap,
    pub annotations: TextMap,
    /// Line of the rule's first key, where a suppression comment sits above.
    pub rule_line: usize,
}

/// A rule's `labels` or `annotations`: text by key, in key order. A rule
/// has a few, and a run holds every rule of a file: one small list per
/// rule, not a tree of nodes.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TextMap(Vec<(String, String)>);

impl TextMap {
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(_, v)| v)
    }

    pub fn get(&self, key: &str) -> Option<&String> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| &self.0[i].1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// In key order; of a key given twice, the value given last.
impl FromIterator<(String, String)> for TextMap {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(pairs: I) -> TextMap {
        let mut pairs: Vec<(String, String)> = pairs.into_iter().collect();
        // Stable: equal keys stay in the order given.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(String, String)> = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            match out.last_mut() {
                Some(last) if last.0 == k => last.1 = v,
                _ => out.push((k, v)),
            }
        }
        TextMap(out)
    }
}

impl<'a> IntoIterator for &'a TextMap {
    type Item = (&'a String, &'a String);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, String)>,
        fn(&'a (String, String)) -> (&'a String, &'a String),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

/// As a map: `{"severity": "warning"}`.
impl std::fmt::Debug for TextMap {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Where a dashboard query or datasource sits: the dashboard, its panel,
/// and the variables that may hold several values at once.
#[derive(Debug, Clone, Default)]
pub struct PanelContext {
    /// The dashboard's title, or its uid.
    pub dashboard: String,
    pub title: Option<String>,
    pub id: Option<i64>,
    /// Variables with `multi` or `includeAll`: Grafana joins their values
    /// as a regex alternation, which only `=~` and `!~` match.
    pub multi_value: std::sync::Arc<BTreeSet<String>>,
}

impl PanelContext {
    pub fn subject(&self) -> Subject {
        Subject::Panel {
            dashboard: self.dashboard.clone(),
            title: self.title.clone(),
            id: self.id,
        }
    }
}

impl Expression {
    /// The rule or panel this expression belongs to.
    pub fn subject(&self) -> Option<Subject> {
        match &self.role {
            Role::Rule(r) => Some(r.subject()),
            Role::Dashboard { panel, .. } => Some(panel.subject()),
            Role::ValueLocation | Role::TriggerQuery => None,
        }
    }
}

impl RuleContext {
    pub fn subject(&self) -> Subject {
        Subject::Rule {
            group: self.group.clone(),
            alert: self.alert.clone(),
            record: self.record.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ScrapeFilter {
    pub path: String,
    pub line: usize,
    pub column: usize,
    /// `namespace/name` of the ServiceMonitor.
    pub servicemonitor: String,
    /// Its `poolc.dev/exporter` label, if any.
    pub exporter_label: Option<String>,
    pub keep: bool,
    pub regex: String,
}

#[derive(Debug, Clone)]
pub struct DatasourceRef {
    pub path: String,
    pub line: usize,
    pub column: usize,
    pub uid: String,
    pub subject: Option<Subject>,
}

/// Grafana's own datasources: annotations from Grafana's database, the
/// mixed datasource (each query names its own), a panel reusing another
/// panel's queries, and server-side expressions. None is a Prometheus that
/// differs between installations.
const BUILT_IN_DATASOURCES: &[&str] = &[
    "-- Grafana --",
    "grafana",
    "-- Mixed --",
    "-- Dashboard --",
    "__expr__",
];

/// Everything read from the inputs.
#[derive(Debug, Default)]
pub struct Workspace {
    pub files: BTreeMap<String, String>,
    pub expressions: Vec<Expression>,
    pub filters: Vec<ScrapeFilter>,
    /// Backend and frontend names from haproxy.cfg: the known `proxy` values.
    pub proxies: BTreeSet<String>,
    /// `scaledObject name → fallback.failureThreshold`.
    pub fallbacks: BTreeMap<String, u32>,
    /// The ServiceMonitors, PodMonitors and scrape configs among the inputs.
    pub scrape_paths: Vec<crate::lint::scrape::ScrapePath>,
    pub datasources: Vec<DatasourceRef>,
    /// Files that could not be read as what their name says.
    pub unreadable: Vec<Unreadable>,
    /// Byte offsets where each line of a file starts, for O(1) line lookups.
    line_starts: BTreeMap<String, Vec<usize>>,
    /// Every expression parsed once, on first use; see [`Workspace::ast`].
    asts: std::sync::OnceLock<Asts>,
}

/// Parse results, one per distinct (text, dialect): rule files repeat the
/// same expression across alerts, and every check reads the same trees.
#[derive(Debug, Default)]
struct Asts {
    /// Expression index → position in `unique`.
    of: Vec<usize>,
    unique: Vec<Result<promql_parser::parser::Expr, crate::promql::ParseError>>,
}

/// A file the checks cannot look into, and why.
#[derive(Debug, Clone)]
pub struct Unreadable {
    pub path: String,
    pub line: usize,
    pub message: String,
    pub help: String,
    /// The rule it is about, when it is one rule that cannot be read.
    pub subject: Option<Subject>,
}

/// The largest file `poolc lint` reads. Rule files and dashboards are
/// kilobytes; a file this large is a mistake or an attack.
pub const MAX_FILE_BYTES: usize = 16 * 1024 * 1024;

const TOO_LARGE_HELP: &str =
    "split it (one rule file per group, one dashboard per file) and lint the parts";

fn too_large_message() -> String {
    format!(
        "the file is larger than poolc's limit of {} MiB per file",
        MAX_FILE_BYTES / (1024 * 1024)
    )
}

/// What to do about a file over [`MAX_FILE_BYTES`].
pub fn too_large(path: &str) -> String {
    format!("{path}: {}; {TOO_LARGE_HELP}", too_large_message())
}

/// YAML budgets for lint inputs: far above any real rule file, far below
/// what would hurt. Alias bombs and deep nesting fail fast.
const YAML_MAX_NODES: usize = 2_000_000;
const YAML_MAX_ALIASES: usize = 10_000;
const YAML_MAX_DEPTH: usize = 64;

/// The reader's options, with `1 / share` of the budget.
fn yaml_options(share: usize) -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_events = 2 * YAML_MAX_NODES / share;
    budget.max_aliases = YAML_MAX_ALIASES / share;
    budget.max_anchors = YAML_MAX_ALIASES / share;
    budget.max_depth = YAML_MAX_DEPTH;
    budget.max_nodes = YAML_MAX_NODES / share;
    budget.max_documents = 10_000;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

/// The documents of a YAML file. A large plain rule file is read in
/// pieces on every core ([`super::pieces`]), each with its share of the
/// budget, so the pieces together stay within the whole file's; when a
/// piece does not read, or is more than groups, the file is read whole, and
/// any error is the whole file's.
fn read_docs(text: &str) -> Result<Vec<Doc>, serde_saphyr::Error> {
    read_docs_on(text, crate::parallel::cores())
}

fn read_docs_on(text: &str, cores: usize) -> Result<Vec<Doc>, serde_saphyr::Error> {
    if let Some(pieces) = super::pieces::cut(text, cores) {
        let share = pieces.len();
        let read = crate::parallel::map(&pieces, 1, |piece| {
            match rule_file_by_events(piece, share) {
                Some(doc) => Some(vec![doc]),
                None => {
                    serde_saphyr::from_multiple_with_options::<Doc>(piece, yaml_options(share)).ok()
                }
            }
        });
        if let Some(doc) = joined(read) {
            return Ok(vec![doc]);
        }
    }
    if let Some(doc) = rule_file_by_events(text, 1) {
        return Ok(vec![doc]);
    }
    serde_saphyr::from_multiple_with_options(text, yaml_options(1))
}

/// `text` as a rule file of the common shape, read from the parser's
/// events with its share of the budget ([`super::rule_events`]).
fn rule_file_by_events(text: &str, share: usize) -> Option<Doc> {
    let doc = super::rule_events::document(text, YAML_MAX_NODES / share, YAML_MAX_DEPTH)?;
    Some(Doc {
        kind: doc.kind,
        metadata: doc.metadata,
        groups: doc.groups,
        spec: doc.spec.map(|groups| SpecRaw {
            groups,
            triggers: Vec::new(),
            fallback: None,
            endpoints: Vec::new(),
            json: None,
        }),
        items: Vec::new(),
        data: BTreeMap::new(),
    })
}

/// The pieces' documents as one: the first piece's, with the groups of the
/// others, which must hold nothing else.
fn joined(read: Vec<Option<Vec<Doc>>>) -> Option<Doc> {
    let mut pieces = read.into_iter();
    let mut whole = one(pieces.next()??)?;
    for piece in pieces {
        let doc = one(piece?)?;
        let only_groups = doc.kind.is_none()
            && doc.metadata.is_none()
            && doc.spec.is_none()
            && doc.items.is_empty()
            && doc.data.is_empty();
        if !only_groups {
            return None;
        }
        whole
            .groups
            .get_or_insert_with(Vec::new)
            .extend(doc.groups?);
    }
    Some(whole)
}

fn one(mut docs: Vec<Doc>) -> Option<Doc> {
    (docs.len() == 1).then(|| docs.pop()).flatten()
}

impl Workspace {
    pub fn source_line(&self, path: &str, line: usize) -> String {
        match (self.files.get(path), self.line_starts.get(path)) {
            (Some(text), Some(starts)) => nth_line(text, starts, line).to_string(),
            _ => String::new(),
        }
    }

    /// The parsed tree of `ws.expressions[i]`, or the parser's message.
    pub fn ast(
        &self,
        i: usize,
    ) -> Result<&promql_parser::parser::Expr, &crate::promql::ParseError> {
        let asts = self.asts.get_or_init(|| Asts::of(&self.expressions));
        asts.unique[asts.of[i]].as_ref()
    }

    /// Parses every expression now, once, so checks running on several
    /// threads share the trees.
    pub fn parse_all(&self) {
        self.asts.get_or_init(|| Asts::of(&self.expressions));
    }

    /// Takes the facts of `other` that checks of every file read: scrape
    /// filters, HAProxy proxies and KEDA fallbacks.
    pub fn gather(&mut self, other: &Workspace) {
        self.filters.extend(other.filters.iter().cloned());
        self.proxies.extend(other.proxies.iter().cloned());
        self.fallbacks
            .extend(other.fallbacks.iter().map(|(k, v)| (k.clone(), *v)));
        self.scrape_paths.extend(other.scrape_paths.iter().cloned());
    }

    /// Whether an expression may read `ALERTS` or `ALERTS_FOR_STATE`,
    /// whose labels are those of every alert among the inputs.
    pub fn reads_alerts(&self) -> bool {
        self.expressions.iter().any(|e| e.text.contains("ALERTS"))
    }

    /// How many cross-file facts this workspace holds: a later file that
    /// adds one changes what earlier files' checks would have seen.
    pub fn fact_count(&self) -> usize {
        self.filters.len() + self.proxies.len() + self.fallbacks.len() + self.scrape_paths.len()
    }

    /// Replaces this workspace's cross-file facts with those gathered from
    /// every input (its own among them).
    pub fn share(&mut self, shared: &Workspace) {
        self.filters.clone_from(&shared.filters);
        self.proxies.clone_from(&shared.proxies);
        self.fallbacks.clone_from(&shared.fallbacks);
        self.scrape_paths.clone_from(&shared.scrape_paths);
    }

    /// Adds one file, by its name and content.
    pub fn add(&mut self, path: &str, text: &str) {
        self.add_owned(path, text.to_string());
    }

    /// [`Workspace::add`], keeping `text` itself rather than a copy.
    pub fn add_owned(&mut self, path: &str, text: String) {
        self.asts = std::sync::OnceLock::new();
        if text.len() > MAX_FILE_BYTES {
            self.files.insert(path.to_string(), String::new());
            self.unreadable.push(Unreadable {
                path: path.to_string(),
                line: 1,
                message: too_large_message(),
                help: TOO_LARGE_HELP.into(),
                subject: None,
            });
            return;
        }
        crate::lint::scrape::read_paths(path, &text, &mut self.scrape_paths);
        let starts = line_starts(&text);
        if path.ends_with(".cfg") {
            self.haproxy(&text);
        } else if path.ends_with(".json") {
            self.dashboard(path, &text);
        } else if path.ends_with(".yaml") || path.ends_with(".yml") {
            self.yaml(path, &text, &starts);
        }
        self.files.insert(path.to_string(), text);
        self.line_starts.insert(path.to_string(), starts);
    }

    fn haproxy(&mut self, text: &str) {
        for line in text.lines() {
            let mut words = line.split_whitespace();
            if let (Some("backend" | "frontend" | "listen"), Some(name)) =
                (words.next(), words.next())
            {
                self.proxies.insert(name.to_string());
            }
        }
    }

    fn yaml(&mut self, path: &str, text: &str, starts: &[usize]) {
        let docs: Vec<Doc> = match read_docs(text) {
            Ok(docs) => docs,
            Err(e) => {
                let raw = e.without_snippet().to_string();
                let budget = raw.starts_with("budget breached")
                    || raw.starts_with("recursion limit exceeded");
                self.unreadable.push(Unreadable {
                    path: path.to_string(),
                    line: e
                        .location()
                        .and_then(|l| usize::try_from(l.line()).ok())
                        .unwrap_or(1)
                        .max(1),
                    message: if budget {
                        format!(
                            "the YAML expands or nests past poolc's budget ({YAML_MAX_NODES} nodes, \
                             {YAML_MAX_ALIASES} aliases, depth {YAML_MAX_DEPTH}): alias chains, \
                             repeated anchors or deep nesting"
                        )
                    } else {
                        format!("not readable as YAML: {e}")
                    },
                    help: if budget {
                        "rule files need no deep nesting or alias chains: write the rules out"
                    } else {
                        "fix the file's syntax"
                    }
                    .into(),
                    subject: None,
                });
                return;
            }
        };
        for doc in docs {
            self.document(path, text, starts, doc);
        }
        if text.contains("dashboard.grafana.app/") {
            self.yaml_dashboards(path, text);
        }
    }

    /// One YAML document: rule groups (plain or in a PrometheusRule), KEDA
    /// triggers, ServiceMonitor and PodMonitor filters, dashboards in
    /// ConfigMaps, and the items of a `List`.
    fn document(&mut self, path: &str, text: &str, starts: &[usize], doc: Doc) {
        for item in doc.items {
            self.document(path, text, starts, item);
        }
        let mut spec = doc.spec;
        let groups = doc
            .groups
            .or_else(|| spec.as_mut().and_then(|s| s.groups.take()))
            .unwrap_or_default();
        for group in groups {
            for (n, rule) in group.rules.into_iter().enumerate() {
                let first = rule
                    .alert
                    .as_ref()
                    .or(rule.record.as_ref())
                    .map(|s| s.line)
                    .or_else(|| rule.expr.as_ref().map(|e| e.line))
                    .unwrap_or(1);
                let context = RuleContext {
                    group: group.name.clone(),
                    alert: rule.alert.map(|a| a.value),
                    record: rule.record.map(|r| r.value),
                    for_: rule.for_,
                    labels: rule.labels,
                    annotations: rule.annotations,
                    rule_line: first,
                };
                let Some(expr) = rule.expr.filter(|e| !e.value.trim().is_empty()) else {
                    if context.alert.is_some() || context.record.is_some() {
                        let name = context
                            .alert
                            .as_deref()
                            .or(context.record.as_deref())
                            .unwrap_or_default();
                        self.unreadable.push(Unreadable {
                            path: path.to_string(),
                            line: first,
                            message: format!(
                                "rule {} of group `{}` (`{name}`) has no `expr`; promtool rejects the \
                                 file: field 'expr' must be set in rule",
                                n + 1,
                                group.name
                            ),
                            help: "give the rule the PromQL expression it evaluates".into(),
                            subject: Some(context.subject()),
                        });
                    }
                    continue;
                };
                let (line, column) = expr_position(text, starts, (expr.line, expr.column));
                self.expressions.push(Expression {
                    path: path.to_string(),
                    line,
                    column,
                    text: expr.value,
                    role: Role::Rule(context),
                });
            }
        }
        let kind = doc.kind.as_deref().unwrap_or("");
        let name = doc
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default();
        let namespace = doc
            .metadata
            .as_ref()
            .and_then(|m| m.namespace.clone())
            .unwrap_or_else(|| "default".to_string());
        if kind == "ConfigMap" {
            let sidecar = doc
                .metadata
                .as_ref()
                .is_some_and(|m| m.labels.contains_key("grafana_dashboard"));
            for (key, value) in &doc.data {
                if sidecar || key.ends_with(".json") {
                    self.embedded_dashboard(path, text, starts, value);
                }
            }
        }
        let Some(spec) = spec else { return };
        if kind == "GrafanaDashboard" {
            if let Some(json) = &spec.json {
                self.embedded_dashboard(path, text, starts, json);
            }
        }
        if kind == "ScaledObject" || kind == "ScaledJob" {
            if let Some(f) = &spec.fallback {
                self.fallbacks.insert(name.clone(), f.failure_threshold);
            }
            for trigger in &spec.triggers {
                let (key, role) = match trigger.kind.as_str() {
                    "metrics-api"
                        if trigger.metadata.get("format").map(|f| &f.value[..])
                            == Some("prometheus") =>
                    {
                        ("valueLocation", Role::ValueLocation)
                    }
                    "prometheus" => ("query", Role::TriggerQuery),
                    _ => continue,
                };
                if let Some(value) = trigger.metadata.get(key) {
                    let (line, column) = expr_position(text, starts, place(value));
                    self.expressions.push(Expression {
                        path: path.to_string(),
                        line,
                        column,
                        text: value.value.clone(),
                        role,
                    });
                }
            }
        }
        if kind == "ServiceMonitor" || kind == "PodMonitor" {
            let exporter_label = doc
                .metadata
                .as_ref()
                .and_then(|m| m.labels.get("poolc.dev/exporter").cloned());
            for endpoint in &spec.endpoints {
                for r in &endpoint.metric_relabelings {
                    let on_name = r.source_labels.len() == 1 && r.source_labels[0] == "__name__";
                    let action = r.action.as_deref().unwrap_or("replace").to_lowercase();
                    if !on_name || (action != "keep" && action != "drop") {
                        continue;
                    }
                    let Some(regex) = &r.regex else { continue };
                    self.filters.push(ScrapeFilter {
                        path: path.to_string(),
                        line: line_of(&regex.referenced),
                        column: column_of(&regex.referenced),
                        servicemonitor: format!("{namespace}/{name}"),
                        exporter_label: exporter_label.clone(),
                        keep: action == "keep",
                        regex: regex.value.clone(),
                    });
                }
            }
        }
    }

    fn dashboard(&mut self, path: &str, text: &str) {
        let value: serde_json::Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                self.unreadable.push(Unreadable {
                    path: path.to_string(),
                    line: e.line().max(1),
                    message: format!("not readable as JSON: {e}"),
                    help: if e.to_string().starts_with("recursion limit exceeded") {
                        "a dashboard needs no nesting this deep: the JSON reader stops at 128 levels"
                    } else {
                        "fix the file's syntax"
                    }
                    .into(),
                    subject: None,
                });
                return;
            }
        };
        self.read_dashboard(path, &value, Locator::new(text, Placement::FILE));
    }

    /// A dashboard held as JSON text in a YAML string: a ConfigMap's `data`
    /// (Grafana's sidecar loads those labelled `grafana_dashboard`) or a
    /// GrafanaDashboard's `spec.json`.
    fn embedded_dashboard(
        &mut self,
        path: &str,
        text: &str,
        starts: &[usize],
        value: &Spanned<String>,
    ) {
        let json = value.value.trim_start();
        if !json.starts_with('{') {
            return;
        }
        // A block scalar keeps the JSON's lines; a quoted one is one line.
        let (line, column) = expr_position(text, starts, place(value));
        let placement = Placement {
            first_line: line,
            indent: column - 1,
            flat: !value.value.trim_end().contains('\n'),
            yaml: false,
        };
        match serde_json::from_str::<serde_json::Value>(&value.value) {
            Ok(dashboard) if is_dashboard(&dashboard) => {
                self.read_dashboard(path, &dashboard, Locator::new(&value.value, placement));
            }
            Ok(_) => {}
            Err(e) => {
                let (line, _) = placement.place(e.line().max(1), 1);
                self.unreadable.push(Unreadable {
                    path: path.to_string(),
                    line,
                    message: format!(
                        "the dashboard in this ConfigMap is not readable as JSON: {e}"
                    ),
                    help: "fix the embedded JSON's syntax".into(),
                    subject: None,
                });
            }
        }
    }

    /// Schema v2 dashboards written as YAML (`apiVersion:
    /// dashboard.grafana.app/v2…`), read a second time as plain values.
    fn yaml_dashboards(&mut self, path: &str, text: &str) {
        let Ok(docs) =
            serde_saphyr::from_multiple_with_options::<serde_json::Value>(text, yaml_options(1))
        else {
            return;
        };
        for doc in docs {
            if is_dashboard(&doc) {
                self.read_dashboard(path, &doc, Locator::new(text, Placement::YAML));
            }
        }
    }

    /// Reads the queries, datasources and variables of a dashboard, in
    /// either schema: v1 (`panels[].targets[].expr`, `templating.list`) or
    /// v2 (`spec.elements.*.spec.data.spec.queries[].spec.query.spec.expr`,
    /// `spec.variables`).
    fn read_dashboard(&mut self, path: &str, value: &serde_json::Value, locator: Locator) {
        let v2 = value.get("elements").is_some() || is_v2(value);
        let (body, uid) = if v2 && value.get("elements").is_none() {
            (&value["spec"], value["metadata"]["name"].as_str())
        } else {
            (value, value["uid"].as_str())
        };
        let uid = uid.unwrap_or("").to_string();
        let dashboard = body["title"]
            .as_str()
            .filter(|t| !t.is_empty())
            .unwrap_or(&uid)
            .to_string();
        let variables: Vec<&serde_json::Value> = if v2 {
            body["variables"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| &v["spec"])
                .collect()
        } else {
            body["templating"]["list"]
                .as_array()
                .into_iter()
                .flatten()
                .collect()
        };
        let multi_value = variables
            .iter()
            .filter(|v| v["multi"] == true || v["includeAll"] == true)
            .filter_map(|v| v["name"].as_str().map(str::to_string))
            .collect();
        let mut walk = DashboardWalk {
            path,
            uid,
            base: PanelContext {
                dashboard,
                title: None,
                id: None,
                multi_value: std::sync::Arc::new(multi_value),
            },
            locator,
            expressions: Vec::new(),
            datasources: Vec::new(),
            row_repeat: None,
            repeats: if v2 {
                let mut repeats = BTreeMap::new();
                v2_repeats(&body["layout"], None, &mut repeats);
                repeats
            } else {
                BTreeMap::new()
            },
        };
        walk.value(value, "", None, None);
        self.expressions.append(&mut walk.expressions);
        self.datasources.append(&mut walk.datasources);
    }
}

/// A dashboard is JSON with panels (v1) or elements (v2).
fn is_dashboard(value: &serde_json::Value) -> bool {
    is_v2(value)
        || value.get("elements").is_some()
        || value.get("panels").is_some()
        || value.get("rows").is_some()
}

fn is_v2(value: &serde_json::Value) -> bool {
    value["apiVersion"]
        .as_str()
        .is_some_and(|v| v.starts_with("dashboard.grafana.app/"))
        && value["spec"].get("elements").is_some()
}

/// One pass over a dashboard's JSON in document order, so each query and
/// datasource is found in the text right after the one before it.
struct DashboardWalk<'a> {
    path: &'a str,
    uid: String,
    base: PanelContext,
    locator: Locator<'a>,
    expressions: Vec<Expression>,
    datasources: Vec<DatasourceRef>,
    /// The `repeat` variable of the v1 row the panels being read sit in.
    row_repeat: Option<String>,
    /// v2: element name → the variable its layout item (or row) repeats over.
    repeats: BTreeMap<String, String>,
}

/// The repeat variable of each element a v2 layout places: a layout item's
/// own `repeat`, or that of the row or tab it sits in.
fn v2_repeats(
    layout: &serde_json::Value,
    inherited: Option<&str>,
    out: &mut BTreeMap<String, String>,
) {
    match layout {
        serde_json::Value::Array(items) => {
            for item in items {
                v2_repeats(item, inherited, out);
            }
        }
        serde_json::Value::Object(map) => {
            let repeat = map
                .get("repeat")
                .and_then(|r| r["value"].as_str())
                .or(inherited);
            if let (Some(name), Some(r)) =
                (map.get("element").and_then(|e| e["name"].as_str()), repeat)
            {
                out.insert(name.to_string(), r.to_string());
            }
            for v in map.values() {
                v2_repeats(v, repeat, out);
            }
        }
        _ => {}
    }
}

/// The datasource types whose queries are PromQL (or a superset of it).
fn is_promql_datasource(kind: &str) -> bool {
    matches!(kind, "prometheus" | "datasource" | "")
        || kind.starts_with('$')
        || kind.contains("prometheus")
}

impl DashboardWalk<'_> {
    /// `key` is the key this value sits under (for array items, the
    /// array's); `panel` the panel it is in; `source` the datasource type in
    /// force, when known.
    fn value(
        &mut self,
        value: &serde_json::Value,
        key: &str,
        panel: Option<&PanelContext>,
        source: Option<&str>,
    ) {
        match value {
            serde_json::Value::Array(items) if key == "panels" => {
                // A v1 row's `repeat` holds for the panels after it, up to
                // the next row (its collapsed panels nest under it).
                let outer = self.row_repeat.take();
                for item in items {
                    if item["type"] == "row" {
                        self.row_repeat = item["repeat"].as_str().map(str::to_string);
                    }
                    self.value(item, key, panel, source);
                }
                self.row_repeat = outer;
            }
            serde_json::Value::Array(items) => {
                for item in items {
                    self.value(item, key, panel, source);
                }
            }
            serde_json::Value::Object(map) => {
                let own_panel;
                let mut panel = panel;
                let v1_panel = key == "panels";
                let v2_panel = matches!(
                    map.get("kind").and_then(|k| k.as_str()),
                    Some("Panel" | "LibraryPanel")
                ) && map.get("spec").is_some_and(|s| s.is_object());
                if v1_panel || v2_panel {
                    let fields = if v2_panel { &map["spec"] } else { value };
                    // Each copy of a repeated panel (or of a panel in a
                    // repeated row) holds one value of the repeat variable.
                    let inherited = panel.unwrap_or(&self.base).multi_value.clone();
                    let repeats: Vec<&str> = if v2_panel {
                        self.repeats
                            .get(key)
                            .map(String::as_str)
                            .into_iter()
                            .collect()
                    } else {
                        [value["repeat"].as_str(), self.row_repeat.as_deref()]
                            .into_iter()
                            .flatten()
                            .collect()
                    };
                    let multi_value = if repeats.iter().any(|r| inherited.contains(*r)) {
                        let mut narrowed = (*inherited).clone();
                        for r in &repeats {
                            narrowed.remove(*r);
                        }
                        std::sync::Arc::new(narrowed)
                    } else {
                        inherited
                    };
                    own_panel = PanelContext {
                        title: fields["title"].as_str().map(str::to_string),
                        id: fields["id"].as_i64(),
                        multi_value,
                        ..self.base.clone()
                    };
                    panel = Some(&own_panel);
                }
                // The datasource type in force: a `datasource: {type}` here,
                // or a v2 query's kind (v2alpha1) or group (v2beta1).
                let mut source = source;
                if let Some(t) = map
                    .get("datasource")
                    .and_then(|d| d.get("type"))
                    .and_then(|t| t.as_str())
                {
                    source = Some(t);
                }
                if map.get("kind").and_then(|k| k.as_str()) == Some("DataQuery") {
                    if let Some(g) = map.get("group").and_then(|g| g.as_str()) {
                        source = Some(g);
                    }
                } else if key == "query" {
                    if let (Some(k), true) = (
                        map.get("kind").and_then(|k| k.as_str()),
                        map.get("spec").is_some(),
                    ) {
                        source = Some(k);
                    }
                }
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("datasource", _) => self.datasource(v, panel),
                        ("expr", serde_json::Value::String(expr)) => {
                            if source.is_none_or(is_promql_datasource) {
                                self.expression(expr, panel);
                            }
                        }
                        _ => self.value(v, k, panel, source),
                    }
                }
            }
            _ => {}
        }
    }

    fn expression(&mut self, expr: &str, panel: Option<&PanelContext>) {
        let (line, column) = self.locator.find_string(expr);
        self.expressions.push(Expression {
            path: self.path.to_string(),
            line,
            column,
            text: expr.to_string(),
            role: Role::Dashboard {
                uid: self.uid.clone(),
                panel: panel.unwrap_or(&self.base).clone(),
            },
        });
    }

    /// A `datasource`: a name (old dashboards), `{type, uid}`, or v2beta1's
    /// `{name}`. Built-in datasources and variables are fine.
    fn datasource(&mut self, value: &serde_json::Value, panel: Option<&PanelContext>) {
        let uid = match value {
            serde_json::Value::String(s) => s.as_str(),
            serde_json::Value::Object(d) => {
                match d
                    .get("uid")
                    .or_else(|| d.get("name"))
                    .and_then(|u| u.as_str())
                {
                    Some(uid) => uid,
                    None => return,
                }
            }
            _ => return,
        };
        let kind = value.get("type").and_then(|t| t.as_str()).unwrap_or("");
        if uid.is_empty()
            || BUILT_IN_DATASOURCES.contains(&uid)
            || matches!(kind, "grafana" | "__expr__")
        {
            return;
        }
        let (line, column) = self.locator.find_string(uid);
        self.datasources.push(DatasourceRef {
            path: self.path.to_string(),
            line,
            column,
            uid: uid.to_string(),
            subject: Some(panel.unwrap_or(&self.base).subject()),
        });
    }
}

/// How positions in a dashboard's own text map to the file's lines: a
/// dashboard file maps one to one; a block scalar in YAML shifts lines
/// and indents columns; a quoted scalar puts everything on its line.
#[derive(Debug, Clone, Copy)]
struct Placement {
    first_line: usize,
    indent: usize,
    flat: bool,
    /// The text is YAML: strings are searched for unquoted.
    yaml: bool,
}

impl Placement {
    const FILE: Placement = Placement {
        first_line: 1,
        indent: 0,
        flat: false,
        yaml: false,
    };
    const YAML: Placement = Placement {
        yaml: true,
        ..Placement::FILE
    };

    fn place(&self, line: usize, column: usize) -> (usize, usize) {
        if self.flat {
            return (self.first_line, self.indent + 1);
        }
        (self.first_line + line - 1, column + self.indent)
    }
}

/// Finds strings in a text front to back, counting lines and columns only
/// over the bytes it passes, so a whole dashboard costs one scan.
struct Locator<'a> {
    text: &'a str,
    placement: Placement,
    /// Byte offset, 1-based line and 0-based char column at `at`.
    at: usize,
    line: usize,
    column: usize,
    /// Searches that found nothing; each scans the rest of the text, so
    /// past [`MAX_MISSES`] the rest are not searched.
    misses: usize,
}

const MAX_MISSES: usize = 16;

impl<'a> Locator<'a> {
    fn new(text: &'a str, placement: Placement) -> Locator<'a> {
        Locator {
            text,
            placement,
            at: 0,
            line: 1,
            column: 0,
            misses: 0,
        }
    }

    /// The line and 1-based column of `value` as written in the text
    /// (JSON-quoted, or for YAML its first line as is), searched from the
    /// previous find on; the previous position when it is not there.
    fn find_string(&mut self, value: &str) -> (usize, usize) {
        let needle = if self.placement.yaml {
            value.lines().next().unwrap_or("").trim().to_string()
        } else {
            serde_json::to_string(value).unwrap_or_default()
        };
        let found = if needle.is_empty() || self.misses >= MAX_MISSES {
            None
        } else {
            self.text
                .get(self.at..)
                .and_then(|t| t.find(&needle))
                .map(|i| i + self.at)
        };
        if found.is_none() {
            self.misses += 1;
        }
        if let Some(found) = found {
            for c in self.text[self.at..found].chars() {
                if c == '\n' {
                    self.line += 1;
                    self.column = 0;
                } else {
                    self.column += 1;
                }
            }
            self.at = found;
        }
        let (line, column) = self.placement.place(self.line, self.column + 1);
        if let Some(found) = found {
            // Past this string, so the next search starts after it.
            let end = found + needle.len();
            for c in self.text[found..end].chars() {
                if c == '\n' {
                    self.line += 1;
                    self.column = 0;
                } else {
                    self.column += 1;
                }
            }
            self.at = end;
        }
        (line, column)
    }
}

fn line_of(loc: &serde_saphyr::Location) -> usize {
    usize::try_from(loc.line()).unwrap_or(1).max(1)
}

fn column_of(loc: &serde_saphyr::Location) -> usize {
    usize::try_from(loc.column()).unwrap_or(1).max(1)
}

/// Where a scalar starts (line and column, from 1).
fn place<T>(value: &Spanned<T>) -> (usize, usize) {
    (line_of(&value.referenced), column_of(&value.referenced))
}

/// Where an expression's text starts, from where its scalar starts: for a
/// block scalar (`expr: |`) the next line, for a quoted one the column
/// after the quote, otherwise the scalar's own position.
fn expr_position(text: &str, starts: &[usize], (line, column): (usize, usize)) -> (usize, usize) {
    let source = nth_line(text, starts, line);
    let rest = source
        .char_indices()
        .nth(column - 1)
        .map(|(at, _)| &source[at..])
        .unwrap_or("");
    if rest.starts_with('|') || rest.starts_with('>') {
        let next = nth_line(text, starts, line + 1);
        let indent = next.len() - next.trim_start().len();
        return (line + 1, indent + 1);
    }
    if rest.starts_with('"') || rest.starts_with('\'') {
        return (line, column + 1);
    }
    (line, column)
}

fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(at, _)| at + 1))
        .collect()
}

/// Line `line` (1-based) without its line ending; "" past the end.
fn nth_line<'a>(text: &'a str, starts: &[usize], line: usize) -> &'a str {
    let Some(&start) = line.checked_sub(1).and_then(|i| starts.get(i)) else {
        return "";
    };
    let end = starts.get(line).map_or(text.len(), |next| next - 1);
    text.get(start..end).unwrap_or("").trim_end_matches('\r')
}

impl Asts {
    /// Parses each distinct expression once, on every core: the parse is
    /// most of the gate's cost and expressions are independent.
    fn of(expressions: &[Expression]) -> Asts {
        let mut seen: std::collections::HashMap<(bool, &str), usize> =
            std::collections::HashMap::new();
        let mut of = Vec::with_capacity(expressions.len());
        let mut distinct: Vec<&Expression> = Vec::new();
        for e in expressions {
            let key = (matches!(e.role, Role::Dashboard { .. }), e.text.as_str());
            let next = distinct.len();
            let at = *seen.entry(key).or_insert(next);
            if at == next {
                distinct.push(e);
            }
            of.push(at);
        }
        let unique = crate::parallel::map(&distinct, 256, |e| parse_expression(e));
        Asts { of, unique }
    }
}

/// Parses an expression as its role needs (dashboards substitute variables).
pub fn parse_expression(e: &Expression) -> Result<promql_parser::parser::Expr, promql::ParseError> {
    match e.role {
        Role::Dashboard { .. } => promql::parse_dashboard(&e.text),
        _ => promql::parse(&e.text),
    }
}

#[derive(Deserialize)]
struct Doc {
    kind: Option<String>,
    metadata: Option<Meta>,
    groups: Option<Vec<GroupRaw>>,
    spec: Option<SpecRaw>,
    /// A `List` (or `ConfigMapList`, …) of objects.
    #[serde(default, deserialize_with = "lenient::list")]
    items: Vec<Doc>,
    /// A ConfigMap's files.
    #[serde(default, deserialize_with = "lenient::spanned_map")]
    data: BTreeMap<String, Spanned<String>>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
pub(super) struct Meta {
    #[serde(default, deserialize_with = "lenient::text")]
    pub(super) name: String,
    #[serde(default, deserialize_with = "lenient::optional_text")]
    pub(super) namespace: Option<String>,
    #[serde(default, deserialize_with = "lenient::text_map")]
    pub(super) labels: TextMap,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
pub(super) struct GroupRaw {
    #[serde(default, deserialize_with = "lenient::text")]
    pub(super) name: String,
    #[serde(default, deserialize_with = "lenient::list")]
    pub(super) rules: Vec<RuleRaw>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
pub(super) struct RuleRaw {
    pub(super) alert: Option<Placed>,
    pub(super) record: Option<Placed>,
    pub(super) expr: Option<Placed>,
    #[serde(rename = "for", default, deserialize_with = "lenient::optional_text")]
    pub(super) for_: Option<String>,
    #[serde(default, deserialize_with = "lenient::text_map")]
    pub(super) labels: TextMap,
    #[serde(default, deserialize_with = "lenient::text_map")]
    pub(super) annotations: TextMap,
}

/// A scalar's text and where it starts (line and column, from 1).
#[cfg_attr(test, derive(Debug, PartialEq))]
pub(super) struct Placed {
    pub(super) value: String,
    pub(super) line: usize,
    pub(super) column: usize,
}

impl<'de> Deserialize<'de> for Placed {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Placed, D::Error> {
        let spanned = Spanned::<String>::deserialize(d)?;
        let (line, column) = place(&spanned);
        Ok(Placed {
            value: spanned.value,
            line,
            column,
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpecRaw {
    groups: Option<Vec<GroupRaw>>,
    #[serde(default, deserialize_with = "lenient::list")]
    triggers: Vec<TriggerRaw>,
    fallback: Option<FallbackRaw>,
    /// A ServiceMonitor's endpoints, or a PodMonitor's.
    #[serde(
        default,
        alias = "podMetricsEndpoints",
        deserialize_with = "lenient::list"
    )]
    endpoints: Vec<EndpointRaw>,
    /// A GrafanaDashboard's dashboard, as JSON text.
    json: Option<Spanned<String>>,
}

#[derive(Deserialize)]
struct TriggerRaw {
    #[serde(rename = "type", default, deserialize_with = "lenient::text")]
    kind: String,
    #[serde(default, deserialize_with = "lenient::spanned_map")]
    metadata: BTreeMap<String, Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FallbackRaw {
    failure_threshold: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EndpointRaw {
    #[serde(default, deserialize_with = "lenient::list")]
    metric_relabelings: Vec<RelabelRaw>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RelabelRaw {
    #[serde(default, deserialize_with = "lenient::list")]
    source_labels: Vec<String>,
    action: Option<String>,
    regex: Option<Spanned<String>>,
}

#[cfg(test)]
mod tests {
    use super::{line_starts, read_docs_on, TextMap, Workspace};

    /// What the tests compare of a rule file's document: its kind,
    /// metadata, groups and `spec` groups. A document holding anything else
    /// is not one.
    type Compared = (
        Option<String>,
        Option<super::Meta>,
        Option<Vec<super::GroupRaw>>,
        Option<Option<Vec<super::GroupRaw>>>,
    );

    fn compared(doc: super::Doc) -> Option<Compared> {
        let spec = match doc.spec {
            None => None,
            Some(spec) => {
                let only_groups = spec.triggers.is_empty()
                    && spec.fallback.is_none()
                    && spec.endpoints.is_empty()
                    && spec.json.is_none();
                if !only_groups {
                    return None;
                }
                Some(spec.groups)
            }
        };
        (doc.items.is_empty() && doc.data.is_empty()).then_some((
            doc.kind,
            doc.metadata,
            doc.groups,
            spec,
        ))
    }

    /// The document the typed reader gives for `text`, read whole.
    fn typed_doc(text: &str) -> Option<Compared> {
        let docs =
            serde_saphyr::from_multiple_with_options::<super::Doc>(text, super::yaml_options(1))
                .ok()?;
        let [doc] = <[super::Doc; 1]>::try_from(docs).ok()?;
        compared(doc)
    }

    /// The document the event reader gives for `text`.
    fn event_doc(text: &str) -> Option<Compared> {
        compared(super::rule_file_by_events(text, 1)?)
    }

    /// A plain rule file's groups (no kind, metadata or spec).
    fn plain(doc: Compared) -> Option<Vec<super::GroupRaw>> {
        let (kind, meta, groups, spec) = doc;
        if kind.is_some() || meta.is_some() || spec.is_some() {
            return None;
        }
        groups
    }

    fn typed_groups(text: &str) -> Option<Vec<super::GroupRaw>> {
        typed_doc(text).and_then(plain)
    }

    fn event_groups(text: &str) -> Option<Vec<super::GroupRaw>> {
        event_doc(text).and_then(plain)
    }

    /// Every shape the event reader takes, each in a way a rule file
    /// writes it: the typed reader gives the same groups, field for field,
    /// with the same positions, in LF and in CRLF.
    #[test]
    fn the_event_reader_gives_the_typed_readers_groups() {
        let text = r#"# leading comment
---
groups:
  - name: quoted and plain
    interval: 30s
    limit: 10
    rules:
      - alert: "Quoted"
        expr: 'up{job="a"} == 0'
        for: 5m
        keep_firing_for: 10m
        labels: {severity: critical, team: "infra"}
        annotations:
          summary: '{{ $labels.job }} is down: it''s "gone"'
          escaped: "a\ttab, \u00e9 and \"quotes\""
          description: >
            folded text
            on two lines
          runbook_url:
      - record: job:up:sum
        expr: |
          sum by (job) (
            up
          )
        labels:
          priority: 1
          page: true
          ratio: 1.50
          hex: 0x1F
          nothing: ~
      - alert: PlainMultiLine
        expr: up
          == 0
        for: 0
        labels: null
        annotations: ~
      - "alert": KeyQuoted
        "expr": vector(1)
        unknown: {nested: [1, 2, {deep: x}]}
  - name:
    rules: null
  - name: 42
    rules: []
  - name: empty
    rules:
  - name: flow
    rules: [{alert: Flow, expr: 'up == 0', labels: {a: b}}]
  - name: values of any kind
    rules:
      - alert: true
        expr: 1
        for: ""
"#;
        for text in [text.to_string(), text.replace('\n', "\r\n")] {
            let events = event_groups(&text).expect("the event reader takes this file");
            assert_eq!(Some(events), typed_groups(&text));
        }
        // A PrometheusRule, and a file whose groups are `null`.
        let rule = "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n  name: pool-alerts\n  namespace: ci\n  labels: {release: kube-prometheus, priority: 1}\n  annotations: {note: x}\nspec:\n  groups:\n  - name: pool\n    rules:\n    - alert: Down\n      expr: up == 0\n";
        for text in [rule, "groups: null\n", "kind: PrometheusRule\nspec: null\n"] {
            let events = event_doc(text).expect("the event reader takes this file");
            assert_eq!(Some(events), typed_doc(text), "{text}");
        }
    }

    /// Shapes the event reader leaves to the typed reader, which reads them
    /// (or reports their error) as before.
    #[test]
    fn the_event_reader_leaves_other_shapes_to_the_typed_reader() {
        let rule = "  - name: a\n    rules:\n      - alert: A\n        expr: up\n";
        let cases = [
            ("an anchor and alias", format!("groups:\n{rule}  - name: b\n    rules:\n      - &r {{alert: B, expr: up}}\n      - *r\n")),
            ("a tag", format!("groups:\n{rule}  - name: !!str b\n")),
            ("a merge key", format!("groups:\n{rule}  - <<: {{name: b}}\n")),
            ("a key given twice", format!("groups:\n{rule}  - name: b\n    name: c\n")),
            ("a label given twice", format!("groups:\n{rule}        labels: {{a: b, a: c}}\n")),
            ("a second document", format!("groups:\n{rule}---\ngroups: []\n")),
            ("a List's items", format!("groups:\n{rule}items: []\n")),
            ("a ConfigMap's data", "kind: ConfigMap\ndata:\n  a.json: '{}'\n".to_string()),
            ("a ScaledObject", "kind: ScaledObject\nspec:\n  triggers: []\n".to_string()),
            ("a ServiceMonitor", "kind: ServiceMonitor\nspec:\n  endpoints: []\n".to_string()),
            ("a label with a mapping value", format!("groups:\n{rule}        labels: {{a: {{b: c}}}}\n")),
            ("a rule that is not a mapping", "groups:\n  - name: a\n    rules:\n      - up\n".to_string()),
            ("a parse error", format!("groups:\n{rule}      - alert: \"unterminated\n")),
            ("a %YAML directive", format!("%YAML 1.2\n---\ngroups:\n{rule}")),
        ];
        for (case, text) in cases {
            assert!(
                event_doc(&text).is_none(),
                "{case}: read by the event reader"
            );
        }
        // The budget: nesting past the depth, and more events than allowed.
        let deep = format!(
            "groups:\n  - name: a\n    x: {}{}\n",
            "[".repeat(70),
            "]".repeat(70)
        );
        assert!(event_groups(&deep).is_none(), "nesting past the budget");
        let small = "groups:\n  - name: a\n";
        assert!(event_groups(small).is_some());
        // Six nodes and thirteen events, against twice the nodes in events.
        assert!(
            super::super::rule_events::document(small, 5, 64).is_none(),
            "nodes past the budget"
        );
        assert!(super::super::rule_events::document(small, 7, 64).is_some());
    }

    /// Random rule files, from every shape the event reader takes and some
    /// it leaves (anchors, aliases, tags, merge keys, keys given twice):
    /// wherever it gives groups, they are the typed reader's.
    #[test]
    fn the_event_reader_agrees_on_random_rule_files() {
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        let mut pick = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        // How many files each reader reads.
        let (mut taken, mut typed) = (0, 0);
        for _ in 0..3000 {
            let text = random_rule_file(&mut pick);
            let doc = typed_doc(&text);
            typed += usize::from(doc.is_some());
            if let Some(events) = event_doc(&text) {
                taken += 1;
                assert_eq!(Some(events), doc, "{text}");
            }
        }
        assert!(
            taken * 2 > typed,
            "the event reader read {taken} of the {typed} files the typed reader read"
        );
    }

    fn random_rule_file(pick: &mut impl FnMut(usize) -> usize) -> String {
        const WORDS: [&str; 6] = ["severity", "team", "\"quoted key\"", "a", "summary", "x-y"];
        const ODD: [&str; 6] = ["<<", "&a k", "!!str k", "*a", "~", "? k"];
        fn scalar(pick: &mut impl FnMut(usize) -> usize, indent: usize) -> String {
            let pad = " ".repeat(indent + 2);
            match pick(40) {
                0 => "up == 0".into(),
                1 => "\"{{ $labels.job }} is \\\"down\\\"\\t\\u00e9\"".into(),
                2 => "'it''s {x=\"y\"}'".into(),
                3 => [
                    "1", "1.50", "true", "0x1F", "-3", ".inf", "-.NaN", "1e999", "2e3",
                ][pick(9)]
                .into(),
                4 => ["~", "null", "", "Null", "NULL"][pick(5)].into(),
                5 => format!("|\n{pad}sum by (job) (\n{pad}  up\n{pad})"),
                6 => format!(">-\n{pad}folded\n{pad}text"),
                7 => format!("rate(x[5m])\n{pad}> 0"),
                8 => "&a anchored".into(),
                9 => "*a".into(),
                10 => "!!str 5m".into(),
                11 => "\"\"".into(),
                _ => ["5m", "warning", "job:up:sum", "vector(1)"][pick(4)].into(),
            }
        }
        fn map(pick: &mut impl FnMut(usize) -> usize, indent: usize) -> String {
            let pad = " ".repeat(indent + 2);
            match pick(5) {
                0 => ["null", "~", "", "{}"][pick(4)].into(),
                1 => format!("{{a: b, c: {}}}", ["1", "true", "\"q\""][pick(3)]),
                _ => (0..pick(4))
                    .map(|_| {
                        let key = if pick(25) == 0 {
                            ODD[pick(6)]
                        } else {
                            WORDS[pick(6)]
                        };
                        format!("\n{pad}{key}: {}", scalar(pick, indent + 2))
                    })
                    .collect(),
            }
        }
        let mut text = String::from("groups:\n");
        for _ in 0..1 + pick(3) {
            let mut keys = vec!["name", "rules", "interval"];
            if pick(20) == 0 {
                keys.push(["name", "<<", "limit"][pick(3)]);
            }
            for (i, key) in keys.iter().enumerate() {
                let lead = if i == 0 { "  - " } else { "    " };
                match *key {
                    "rules" => {
                        text.push_str(&format!("{lead}rules:"));
                        if pick(6) == 0 {
                            text.push_str([" null", " []", ""][pick(3)]);
                        }
                        for _ in 0..pick(4) {
                            let fields = [
                                "alert",
                                "record",
                                "expr",
                                "for",
                                "labels",
                                "annotations",
                                "keep_firing_for",
                                "\"expr\"",
                            ];
                            let mut first = true;
                            for _ in 0..1 + pick(5) {
                                let field = fields[pick(fields.len())];
                                let lead = if first { "\n      - " } else { "\n        " };
                                first = false;
                                let value = match field {
                                    "labels" | "annotations" => map(pick, 8),
                                    _ => scalar(pick, 8),
                                };
                                text.push_str(&format!("{lead}{field}: {value}"));
                            }
                        }
                        text.push('\n');
                    }
                    key => text.push_str(&format!("{lead}{key}: {}\n", scalar(pick, 4))),
                }
            }
        }
        if pick(3) == 0 {
            // A PrometheusRule holds the same groups under `spec`.
            let spec: String = text.lines().map(|l| format!("  {l}\n")).collect();
            let labels = map(pick, 2);
            text = format!(
                "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n  name: {}\n  namespace: {}\n  labels: {labels}\nspec:\n{spec}",
                scalar(pick, 2),
                scalar(pick, 2),
            );
        }
        if pick(3) == 0 {
            text.insert_str(0, "# rules\n---\n");
        }
        if pick(15) == 0 {
            text.push_str(["---\ngroups: []\n", "items: []\n", "other: 1\n"][pick(3)]);
        }
        text
    }

    /// Every rule file among the tests' inputs: where the event reader
    /// takes it, the typed reader gives the same groups; and most are taken.
    #[test]
    fn the_event_reader_agrees_on_every_rule_file_of_the_tests() {
        let mut files = Vec::new();
        let mut dirs = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("tests directory") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                    files.push(path);
                }
            }
        }
        let mut taken = 0;
        for path in &files {
            let Ok(text) = std::fs::read_to_string(path) else {
                continue;
            };
            if let Some(events) = event_doc(&text) {
                taken += 1;
                assert_eq!(Some(events), typed_doc(&text), "{}", path.display());
            }
        }
        assert!(
            taken >= 20,
            "only {taken} of {} files read by the event reader",
            files.len()
        );
    }

    /// The rules of `text` read on `cores` cores, as the checks see them,
    /// or the reader's error.
    fn read_on(text: &str, cores: usize) -> String {
        let mut ws = Workspace::default();
        let starts = line_starts(text);
        match read_docs_on(text, cores) {
            Ok(docs) => {
                for doc in docs {
                    ws.document("rules.yaml", text, &starts, doc);
                }
                format!("{:?}\n{:?}", ws.expressions, ws.unreadable)
            }
            Err(e) => format!("error: {e}"),
        }
    }

    /// A large rule file read in pieces gives the rules, lines and columns
    /// of one read of the whole file, and a file whose pieces do not read
    /// (a quoted scalar running across a cut) gives the whole file's reading.
    #[test]
    fn rule_files_read_in_pieces_as_whole() {
        let mut text = String::from("# generated\ngroups:\n");
        for g in 0..400 {
            text.push_str(&format!(
                "  - name: group-{g}\n    interval: 1m\n    rules:\n      - record: job:up:sum{g}\n        expr: sum by (job) (up)\n        labels: null\n      - alert: Down{g}\n        expr: |\n          up{{job=\"a\"}}\n\n            == 0\n        for: 5m\n        labels:\n          severity: 'warning'\n        annotations:\n          summary: \"{{{{ $labels.job }}}} is down \\\"{g}\\\"\"\n  # between groups\n\n"
            ));
        }
        let whole = read_on(&text, 1);
        assert!(
            whole.contains("Down399") && !whole.contains("error"),
            "{}",
            &whole[..200]
        );
        for cores in [2, 3, 8] {
            assert_eq!(read_on(&text, cores), whole, "{cores} cores");
        }
        // Relaxed YAML lets a quoted scalar continue below its indentation;
        // a cut there leaves a piece that does not read.
        let mut cut_inside = 0;
        for g in 190..210 {
            let spanning = text.replacen(
                &format!("summary: \"{{{{ $labels.job }}}} is down \\\"{g}\\\"\"\n"),
                "summary: \"{{ $labels.job }} is down\n  - name: not a group\"\n",
                1,
            );
            assert_ne!(spanning, text);
            let pieces = crate::lint::pieces::cut(&spanning, 2).expect("cut");
            let second = pieces[1].strip_prefix("groups:\n").unwrap_or_default();
            cut_inside += usize::from(
                second
                    .trim_start_matches('\n')
                    .starts_with("  - name: not a group"),
            );
            assert_eq!(read_on(&spanning, 2), read_on(&spanning, 1));
        }
        assert_eq!(
            cut_inside, 1,
            "one of the quoted scalars runs across the cut"
        );
        let broken = text.replacen("expr: sum by (job) (up)", "expr: [unclosed", 1);
        assert!(read_on(&broken, 1).starts_with("error"));
        assert_eq!(read_on(&broken, 2), read_on(&broken, 1));
    }

    /// A rule's labels read as a map would hold them: in key order, the
    /// value given last for a key given twice, and printed as a map.
    #[test]
    fn text_map_reads_as_a_map() {
        let pairs = [("team", "ci"), ("severity", "warning"), ("team", "infra")];
        let map: TextMap = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let tree: std::collections::BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert!(map.iter().eq(tree.iter()));
        assert!((&map).into_iter().eq(tree.iter()));
        assert_eq!(format!("{map:?}"), format!("{tree:?}"));
        assert_eq!(map.get("team").map(String::as_str), Some("infra"));
        assert!(map.contains_key("severity") && !map.contains_key("summary"));
        assert_eq!(map.len(), 2);
    }
}

/// Fields read as promtool and the Kubernetes API read them: `null` is
/// an empty value (Helm writes `labels: null` for an empty map), and a
/// scalar label value is its text (`priority: 1` is the label "1").
mod lenient {
    use std::collections::BTreeMap;
    use std::fmt;

    use serde::de::{Deserializer, MapAccess, Visitor};
    use serde::Deserialize;
    use serde_saphyr::Spanned;

    /// A list, or nothing for `null`.
    pub fn list<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
        Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
    }

    /// Any scalar as text; `null` as "".
    pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Ok(Option::<Text>::deserialize(d)?
            .map(|t| t.0)
            .unwrap_or_default())
    }

    pub fn optional_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(Option::<Text>::deserialize(d)?.map(|t| t.0))
    }

    /// A map of scalars as text; `null` as empty, a `null` value as "".
    pub fn text_map<'de, D: Deserializer<'de>>(d: D) -> Result<super::TextMap, D::Error> {
        Ok(Option::<TextPairs>::deserialize(d)?
            .map(|pairs| pairs.0.into_iter().collect())
            .unwrap_or_default())
    }

    /// A map's entries in the order written, each value as text.
    struct TextPairs(Vec<(String, String)>);

    impl<'de> Deserialize<'de> for TextPairs {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<TextPairs, D::Error> {
            struct Pairs;
            impl<'de> Visitor<'de> for Pairs {
                type Value = TextPairs;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a map")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TextPairs, A::Error> {
                    let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
                    while let Some((k, v)) = map.next_entry::<String, Option<Text>>()? {
                        pairs.push((k, v.map(|t| t.0).unwrap_or_default()));
                    }
                    Ok(TextPairs(pairs))
                }
            }
            d.deserialize_map(Pairs)
        }
    }

    /// A map of strings with their positions; `null` and `null` values dropped.
    pub fn spanned_map<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, Spanned<String>>, D::Error> {
        let map =
            Option::<BTreeMap<String, Option<Spanned<Text>>>>::deserialize(d)?.unwrap_or_default();
        Ok(map
            .into_iter()
            .filter_map(|(k, v)| {
                v.map(|v| {
                    (
                        k,
                        Spanned {
                            value: v.value.0,
                            referenced: v.referenced,
                            defined: v.defined,
                        },
                    )
                })
            })
            .collect())
    }

    /// A YAML scalar of any type, as its text.
    pub struct Text(pub String);

    impl<'de> Deserialize<'de> for Text {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
            struct Scalar;
            impl Visitor<'_> for Scalar {
                type Value = Text;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a string, number or boolean")
                }
                fn visit_str<E>(self, v: &str) -> Result<Text, E> {
                    Ok(Text(v.to_string()))
                }
                fn visit_string<E>(self, v: String) -> Result<Text, E> {
                    Ok(Text(v))
                }
                fn visit_bool<E>(self, v: bool) -> Result<Text, E> {
                    Ok(Text(v.to_string()))
                }
                fn visit_i64<E>(self, v: i64) -> Result<Text, E> {
                    Ok(Text(v.to_string()))
                }
                fn visit_u64<E>(self, v: u64) -> Result<Text, E> {
                    Ok(Text(v.to_string()))
                }
                fn visit_f64<E>(self, v: f64) -> Result<Text, E> {
                    Ok(Text(v.to_string()))
                }
                fn visit_unit<E>(self) -> Result<Text, E> {
                    Ok(Text(String::new()))
                }
            }
            // Asked for a string, the YAML reader hands over any scalar's
            // text without guessing its type first.
            d.deserialize_string(Scalar)
        }
    }
}
