//! Reading the files `poolc lint` is given (and the ones `generate`
//! produces) into the expressions and facts the checks look at: every PromQL
//! expression with its file, line and role, the scrape filters of
//! ServiceMonitors, HAProxy backend names and KEDA fallback thresholds.
//! Files are read leniently: only the fields the checks need are typed.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_saphyr::Spanned;

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
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Line of the rule's first key, where a suppression comment sits above.
    pub rule_line: usize,
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
    pub uid: String,
}

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

fn yaml_options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_events = 2 * YAML_MAX_NODES;
    budget.max_aliases = YAML_MAX_ALIASES;
    budget.max_anchors = YAML_MAX_ALIASES;
    budget.max_depth = YAML_MAX_DEPTH;
    budget.max_nodes = YAML_MAX_NODES;
    budget.max_documents = 10_000;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
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

    /// Adds one file, by its name and content.
    pub fn add(&mut self, path: &str, text: &str) {
        self.asts = std::sync::OnceLock::new();
        if text.len() > MAX_FILE_BYTES {
            self.files.insert(path.to_string(), String::new());
            self.unreadable.push(Unreadable {
                path: path.to_string(),
                line: 1,
                message: too_large_message(),
                help: TOO_LARGE_HELP.into(),
            });
            return;
        }
        self.files.insert(path.to_string(), text.to_string());
        let starts = line_starts(text);
        if path.ends_with(".cfg") {
            self.haproxy(text);
        } else if path.ends_with(".json") {
            self.dashboard(path, text);
        } else if path.ends_with(".yaml") || path.ends_with(".yml") {
            self.yaml(path, text, &starts);
        }
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
        let docs: Vec<Doc> = match serde_saphyr::from_multiple_with_options(text, yaml_options()) {
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
                });
                return;
            }
        };
        for doc in docs {
            let groups = doc
                .groups
                .or_else(|| doc.spec.as_ref().and_then(|s| s.groups.clone()))
                .unwrap_or_default();
            for group in groups {
                for rule in group.rules {
                    let Some(expr) = rule.expr else { continue };
                    let first = rule
                        .alert
                        .as_ref()
                        .or(rule.record.as_ref())
                        .map(|s| line_of(&s.referenced))
                        .unwrap_or_else(|| line_of(&expr.referenced));
                    let (line, column) = expr_position(text, starts, &expr);
                    self.expressions.push(Expression {
                        path: path.to_string(),
                        line,
                        column,
                        text: expr.value.clone(),
                        role: Role::Rule(RuleContext {
                            group: group.name.clone(),
                            alert: rule.alert.map(|a| a.value),
                            record: rule.record.map(|r| r.value),
                            for_: rule.for_,
                            labels: rule.labels,
                            annotations: rule.annotations,
                            rule_line: first,
                        }),
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
            let Some(spec) = doc.spec else { continue };
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
                        let (line, column) = expr_position(text, starts, value);
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
            if kind == "ServiceMonitor" {
                let exporter_label = doc
                    .metadata
                    .as_ref()
                    .and_then(|m| m.labels.get("poolc.dev/exporter").cloned());
                for endpoint in &spec.endpoints {
                    for r in &endpoint.metric_relabelings {
                        let on_name =
                            r.source_labels.len() == 1 && r.source_labels[0] == "__name__";
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
                });
                return;
            }
        };
        let uid = value["uid"].as_str().unwrap_or("").to_string();
        let mut cursor = Cursor::START;
        let mut panels = Vec::new();
        collect_panels(&value, &mut panels);
        for panel in panels {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let Some(expr) = target["expr"].as_str() else {
                    continue;
                };
                let needle = serde_json::to_string(expr).unwrap_or_default();
                let (line, column, at) = find_from(text, &needle, cursor);
                cursor = at;
                self.expressions.push(Expression {
                    path: path.to_string(),
                    line,
                    column: column + 1,
                    text: expr.to_string(),
                    role: Role::Dashboard { uid: uid.clone() },
                });
            }
        }
        let mut refs = Vec::new();
        collect_datasources(&value, &mut refs);
        let mut cursor = Cursor::START;
        for uid in refs {
            let (line, _, at) = find_from(text, &format!("\"{uid}\""), cursor);
            cursor = at;
            self.datasources.push(DatasourceRef {
                path: path.to_string(),
                line,
                uid,
            });
        }
    }
}

fn collect_panels<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a serde_json::Value>) {
    for panel in value["panels"].as_array().into_iter().flatten() {
        out.push(panel);
        collect_panels(panel, out);
    }
}

fn collect_datasources(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                if k == "datasource" {
                    match v {
                        serde_json::Value::Object(d) => {
                            if let Some(uid) = d.get("uid").and_then(|u| u.as_str()) {
                                out.push(uid.to_string());
                            }
                        }
                        serde_json::Value::String(s) => out.push(s.clone()),
                        _ => {}
                    }
                } else {
                    collect_datasources(v, out);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_datasources(v, out)),
        _ => {}
    }
}

/// Where the last search ended, with its line and column, so each search
/// counts only the text it skips: a dashboard's targets are placed in one
/// pass, linear in the file, even when it is one minified line.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    byte: usize,
    line: usize,
    /// 0-based, in characters.
    column: usize,
    /// Searches that found nothing; each scans the rest of the file, so
    /// past [`MAX_MISSES`] the rest are not searched.
    misses: usize,
}

const MAX_MISSES: usize = 16;

impl Cursor {
    const START: Cursor = Cursor {
        byte: 0,
        line: 1,
        column: 0,
        misses: 0,
    };
}

/// Line, 0-based column and the cursor just past the next `needle` at or
/// after `from`; line 1, column 0 if it is not found.
fn find_from(text: &str, needle: &str, from: Cursor) -> (usize, usize, Cursor) {
    let found = if from.misses >= MAX_MISSES {
        None
    } else {
        text.get(from.byte..)
            .and_then(|t| t.find(needle))
            .map(|i| i + from.byte)
    };
    let Some(at) = found else {
        let misses = from.misses + 1;
        return (1, 0, Cursor { misses, ..from });
    };
    let skipped = &text[from.byte..at];
    let (line, column) = match skipped.rfind('\n') {
        Some(nl) => (
            from.line + skipped.matches('\n').count(),
            skipped[nl + 1..].chars().count(),
        ),
        None => (from.line, from.column + skipped.chars().count()),
    };
    let past = Cursor {
        byte: at + needle.len(),
        line: line + needle.matches('\n').count(),
        column: match needle.rfind('\n') {
            Some(nl) => needle[nl + 1..].chars().count(),
            None => column + needle.chars().count(),
        },
        misses: from.misses,
    };
    (line, column, past)
}

fn line_of(loc: &serde_saphyr::Location) -> usize {
    usize::try_from(loc.line()).unwrap_or(1).max(1)
}

fn column_of(loc: &serde_saphyr::Location) -> usize {
    usize::try_from(loc.column()).unwrap_or(1).max(1)
}

/// Where an expression's text starts: for a block scalar (`expr: |`) the
/// next line, otherwise the scalar's own position.
fn expr_position(text: &str, starts: &[usize], value: &Spanned<String>) -> (usize, usize) {
    let line = line_of(&value.referenced);
    let column = column_of(&value.referenced);
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
        let unique = crate::parallel::map(&distinct, 256, |e| parse(e));
        Asts { of, unique }
    }
}

/// Parses an expression as its role needs (dashboards substitute variables).
fn parse(e: &Expression) -> Result<promql_parser::parser::Expr, promql::ParseError> {
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
}

#[derive(Deserialize)]
struct Meta {
    #[serde(default)]
    name: String,
    namespace: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Deserialize, Clone)]
struct GroupRaw {
    #[serde(default)]
    name: String,
    #[serde(default)]
    rules: Vec<RuleRaw>,
}

#[derive(Deserialize, Clone)]
struct RuleRaw {
    alert: Option<Spanned<String>>,
    record: Option<Spanned<String>>,
    expr: Option<Spanned<String>>,
    #[serde(rename = "for")]
    for_: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpecRaw {
    groups: Option<Vec<GroupRaw>>,
    #[serde(default)]
    triggers: Vec<TriggerRaw>,
    fallback: Option<FallbackRaw>,
    #[serde(default)]
    endpoints: Vec<EndpointRaw>,
}

#[derive(Deserialize)]
struct TriggerRaw {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
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
    #[serde(default)]
    metric_relabelings: Vec<RelabelRaw>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RelabelRaw {
    #[serde(default)]
    source_labels: Vec<String>,
    action: Option<String>,
    regex: Option<Spanned<String>>,
}
