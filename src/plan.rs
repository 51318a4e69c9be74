//! `poolc plan`: what `generate` would change in `generated/`, object by
//! object and field by field, the way reviewers read `tofu plan`. A raw YAML
//! diff hides that "max 8 → 12" also moved NodePool limits and LB slots; the
//! plan lists every such consequence under the object it touches.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::fileset::{Change, FileSet, FileSetError, Old, DIFF_BUDGET};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Added,
    Removed,
    Changed,
}

/// One object (a Kubernetes object, a dashboard, a config file) and how it changes.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectChange {
    pub file: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub action: Action,
    pub fields: Vec<FieldChange>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FieldChange {
    pub path: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// What a reviewer must not miss, one line each: capacity limits, LB
    /// slots, replica bounds and alert thresholds that moved.
    pub consequences: Vec<String>,
    pub changes: Vec<ObjectChange>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    fn count(&self, action: Action) -> usize {
        self.changes.iter().filter(|c| c.action == action).count()
    }
}

/// Compares what would be generated with what is in `root`.
pub fn plan(set: &FileSet, root: &Path) -> Result<Plan, FileSetError> {
    let mut changes = Vec::new();
    let mut consequences = Vec::new();
    for change in set.changes(root)? {
        let path = change.path().to_string();
        let old = match change {
            Change::Added(_) => None,
            _ => match crate::fileset::read_old(root, &path, DIFF_BUDGET)? {
                Old::Text(text) => Some(text),
                Old::TooLarge(size) => {
                    changes.push(too_large(&path, size, set.get(&path)));
                    continue;
                }
            },
        };
        let new = set.get(&path);
        let within =
            crate::fileset::within_diff_budget(old.as_deref().unwrap_or(""), new.unwrap_or(""));
        if !within {
            let size = old.as_ref().map_or(0, |o| o.len() as u64);
            changes.push(too_large(&path, size, new));
            continue;
        }
        let (objects, found) = compare_file(&path, old.as_deref(), new);
        changes.extend(objects);
        for line in found {
            if !consequences.contains(&line) {
                consequences.push(line);
            }
        }
    }
    Ok(Plan {
        consequences,
        changes,
    })
}

/// A file past the diff budget, summarized by its sizes.
fn too_large(path: &str, old: u64, new: Option<&str>) -> ObjectChange {
    let new = new.map_or(0, str::len);
    ObjectChange {
        file: path.to_string(),
        kind: "file".into(),
        namespace: None,
        name: path.to_string(),
        action: Action::Changed,
        // Reads "differs: N → M bytes" in every format.
        fields: vec![FieldChange {
            path: "differs".into(),
            old: Some(old.to_string()),
            new: Some(format!("{new} bytes")),
        }],
    }
}

type Key = (String, Option<String>, String);

fn compare_file(
    path: &str,
    old: Option<&str>,
    new: Option<&str>,
) -> (Vec<ObjectChange>, Vec<String>) {
    let old_objects = old.map(|t| objects(path, t)).unwrap_or_default();
    let new_objects = new.map(|t| objects(path, t)).unwrap_or_default();
    let mut out = Vec::new();
    let mut found = Vec::new();
    for (key, new_value) in &new_objects {
        let (action, fields) = match old_objects.get(key) {
            None => {
                found.extend(capacity_added(key, new_value));
                (Action::Added, Vec::new())
            }
            Some(old_value) if old_value == new_value => continue,
            Some(old_value) => {
                let mut fields = Vec::new();
                match (lines_of(old_value), lines_of(new_value)) {
                    (Some(old_lines), Some(new_lines)) => {
                        diff_lines(&old_lines, &new_lines, &mut fields)
                    }
                    _ => diff_values("", old_value, new_value, &mut fields),
                }
                found.extend(consequences(key, new_value, &fields));
                (Action::Changed, fields)
            }
        };
        out.push(object_change(path, key, action, fields));
    }
    for key in old_objects.keys().filter(|k| !new_objects.contains_key(*k)) {
        if ["NodePool", "ScaledObject", "ScaledJob"].contains(&key.0.as_str()) {
            found.push(format!("{} {} removed", key.0, key.2));
        }
        out.push(object_change(path, key, Action::Removed, Vec::new()));
    }
    (out, found)
}

/// The changed fields that carry a pool's capacity or its alerting, said
/// the way a reviewer would say them.
fn consequences(key: &Key, new: &Value, fields: &[FieldChange]) -> Vec<String> {
    let (kind, name) = (key.0.as_str(), key.2.as_str());
    let mut out = Vec::new();
    out.extend(rollout(kind, name, new, fields));
    for f in fields {
        if kind == "File" && name.ends_with("haproxy.cfg") {
            out.extend(slots_change(new, f));
        }
        let (Some(old_v), Some(new_v)) = (&f.old, &f.new) else {
            continue;
        };
        let moved = format!("{old_v} → {new_v}");
        match kind {
            "NodePool" => {
                if let Some(resource) = f.path.strip_prefix("spec.limits.") {
                    out.push(format!("NodePool {name} limits.{resource} {moved}"));
                }
            }
            "ScaledObject" | "ScaledJob" => {
                if let Some(bound) = ["minReplicaCount", "maxReplicaCount"]
                    .into_iter()
                    .find(|b| f.path == format!("spec.{b}"))
                {
                    out.push(format!("{kind} {name} {bound} {moved}"));
                }
                if f.path.starts_with("spec.fallback.") {
                    let what = f.path.trim_start_matches("spec.fallback.");
                    out.push(format!("{kind} {name} fallback {what} {moved}"));
                }
            }
            "PodDisruptionBudget" => {
                if let Some(bound) = f.path.strip_prefix("spec.") {
                    out.push(format!("PodDisruptionBudget {name} {bound} {moved}"));
                }
            }
            "PrometheusRule" => out.extend(threshold_change(f)),
            _ => {}
        }
    }
    out
}

/// What applying the change does to running builds: a changed pod
/// template rolls the Deployment, a changed ScaledJob replaces its Jobs
/// unless its rollout is gradual.
fn rollout(kind: &str, name: &str, new: &Value, fields: &[FieldChange]) -> Option<String> {
    match kind {
        "Deployment" if fields.iter().any(|f| f.path.starts_with("spec.template.")) => {
            let grace = new
                .pointer("/spec/template/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_u64)
                .unwrap_or(30);
            let grace = crate::spec::Seconds(grace).compact();
            let component = new
                .pointer("/metadata/labels/app.kubernetes.io~1component")
                .and_then(Value::as_str);
            Some(if component == Some("load-balancer") {
                format!("LB rolls: running builds get {grace} to finish")
            } else {
                format!("worker Deployment rolls: running builds get {grace} to finish ({name})")
            })
        }
        "ScaledJob" if !fields.is_empty() => {
            let gradual = new
                .pointer("/spec/rollout/strategy")
                .and_then(Value::as_str)
                == Some("gradual");
            Some(if gradual {
                format!("ScaledJob changes: running Jobs are kept (gradual) ({name})")
            } else {
                format!("ScaledJob changes: running Jobs are deleted ({name})")
            })
        }
        _ => None,
    }
}

/// The capacity a new NodePool or scaler brings.
fn capacity_added(key: &Key, new: &Value) -> Option<String> {
    let (kind, name) = (key.0.as_str(), key.2.as_str());
    let text = |v: Option<&Value>| v.map(short).unwrap_or_else(|| "?".into());
    match kind {
        "NodePool" => Some(format!(
            "NodePool {name} added with limits.cpu {}, limits.memory {}",
            text(new.pointer("/spec/limits/cpu")),
            text(new.pointer("/spec/limits/memory"))
        )),
        "ScaledObject" | "ScaledJob" => Some(format!(
            "{kind} {name} added with replicas {} to {}",
            text(new.pointer("/spec/minReplicaCount")),
            text(new.pointer("/spec/maxReplicaCount"))
        )),
        _ => None,
    }
}

/// `rules[PoolQueueBacklog pool=amd64].expr` whose numbers alone changed:
/// "PoolQueueBacklog threshold for amd64 20 → 30".
fn threshold_change(f: &FieldChange) -> Option<String> {
    let rule = f.path.strip_suffix("].expr")?.rsplit_once(".rules[")?.1;
    let (alert, pool) = match rule.split_once(" pool=") {
        Some((alert, pool)) => (alert, format!(" for {pool}")),
        None => (rule, String::new()),
    };
    let (old, new) = (f.old.as_deref()?, f.new.as_deref()?);
    let (old_shape, old_numbers) = numbers(old);
    let (new_shape, new_numbers) = numbers(new);
    if old_shape != new_shape {
        return None;
    }
    let moved: Vec<String> = old_numbers
        .iter()
        .zip(&new_numbers)
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("{a} → {b}"))
        .collect();
    (!moved.is_empty()).then(|| format!("{alert} threshold{pool} {}", moved.join(", ")))
}

/// An expression with its numbers cut out, and the numbers in order.
fn numbers(expr: &str) -> (String, Vec<String>) {
    let mut shape = String::new();
    let mut found = Vec::new();
    let mut current = String::new();
    let mut in_quotes = false;
    for c in expr.chars() {
        if c == '"' {
            in_quotes = !in_quotes;
        }
        let numeric = c.is_ascii_digit() || (c == '.' && !current.is_empty());
        let starts_word = shape.ends_with(|p: char| p.is_alphanumeric() || p == '_' || p == ':');
        if !in_quotes && numeric && (!current.is_empty() || !starts_word) {
            current.push(c);
            continue;
        }
        if !current.is_empty() {
            found.push(std::mem::take(&mut current));
            shape.push('#');
        }
        shape.push(c);
    }
    if !current.is_empty() {
        found.push(current);
        shape.push('#');
    }
    (shape, found)
}

/// A changed or added `server-template` line: the backend it belongs to and
/// its slots.
fn slots_change(new: &Value, f: &FieldChange) -> Option<String> {
    let slots = |line: &str| -> Option<String> {
        let mut words = line.split_whitespace();
        (words.next()? == "server-template").then_some(())?;
        words.next()?;
        words.next().map(str::to_string)
    };
    let new_slots = slots(f.new.as_deref()?)?;
    let old = f.old.as_deref().and_then(slots);
    // `line N` counts from 1; the backend is the last one opened above it.
    let number: usize = f.path.strip_prefix("line ")?.parse().ok()?;
    let lines = new.as_array()?;
    let backend = lines[..number.saturating_sub(1).min(lines.len())]
        .iter()
        .rev()
        .filter_map(Value::as_str)
        .find_map(|l| l.strip_prefix("backend "))?;
    Some(match old {
        Some(old) => format!("HAProxy {backend} slots {old} → {new_slots}"),
        None => format!("HAProxy {backend} added with {new_slots} slots"),
    })
}

fn object_change(path: &str, key: &Key, action: Action, fields: Vec<FieldChange>) -> ObjectChange {
    ObjectChange {
        file: path.to_string(),
        kind: key.0.clone(),
        namespace: key.1.clone(),
        name: key.2.clone(),
        action,
        fields,
    }
}

/// The objects in a file: Kubernetes documents by (kind, namespace, name), a
/// dashboard by its uid, and any other text file as one object of lines.
fn objects(path: &str, text: &str) -> BTreeMap<Key, Value> {
    let file_name = path.rsplit('/').next().unwrap_or(path).to_string();
    if path.ends_with(".json") {
        if let Ok(v) = serde_json::from_str::<Value>(text) {
            let name = v
                .get("uid")
                .and_then(Value::as_str)
                .unwrap_or(&file_name)
                .to_string();
            return BTreeMap::from([(("Dashboard".to_string(), None, name), v)]);
        }
    }
    if path.ends_with(".yaml") {
        if let Ok(docs) = serde_saphyr::from_multiple::<Value>(text) {
            let mut out = BTreeMap::new();
            for (i, doc) in docs.into_iter().enumerate() {
                let kind = doc.get("kind").and_then(Value::as_str);
                let name = doc.pointer("/metadata/name").and_then(Value::as_str);
                let key = match (kind, name) {
                    (Some(kind), Some(name)) => (
                        kind.to_string(),
                        doc.pointer("/metadata/namespace")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                        name.to_string(),
                    ),
                    _ if i == 0 && kind.is_none() => ("File".to_string(), None, path.to_string()),
                    _ => ("File".to_string(), None, format!("{path}#{i}")),
                };
                out.insert(key, doc);
            }
            return out;
        }
    }
    let lines = text.lines().map(|l| Value::String(l.to_string())).collect();
    BTreeMap::from([(
        ("File".to_string(), None, path.to_string()),
        Value::Array(lines),
    )])
}

/// A text file's lines, as `objects` holds them.
fn lines_of(v: &Value) -> Option<Vec<&str>> {
    v.as_array()?.iter().map(Value::as_str).collect()
}

/// Line-level differences of a text file, numbered as in the new file for
/// changed and added lines and as in the old one for removed lines, so an
/// inserted backend reads as its lines, not as the rest of the file moved.
fn diff_lines(old: &[&str], new: &[&str], out: &mut Vec<FieldChange>) {
    use similar::DiffOp;
    let line = |v: &str| Some(short(&Value::String(v.to_string())));
    for op in similar::capture_diff_slices(similar::Algorithm::Myers, old, new) {
        let (o, o_len, n, n_len) = match op {
            DiffOp::Equal { .. } => continue,
            DiffOp::Delete {
                old_index,
                old_len,
                new_index,
            } => (old_index, old_len, new_index, 0),
            DiffOp::Insert {
                old_index,
                new_index,
                new_len,
            } => (old_index, 0, new_index, new_len),
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => (old_index, old_len, new_index, new_len),
        };
        for i in 0..o_len.max(n_len) {
            let (old_line, new_line) = (
                old.get(o + i).filter(|_| i < o_len),
                new.get(n + i).filter(|_| i < n_len),
            );
            let number = if new_line.is_some() {
                n + i + 1
            } else {
                o + i + 1
            };
            out.push(FieldChange {
                path: format!("line {number}"),
                old: old_line.and_then(|l| line(l)),
                new: new_line.and_then(|l| line(l)),
            });
        }
    }
}

/// Field-level differences. Lists of named things (rules, containers,
/// policies) are matched by name so an insertion reads as one change.
fn diff_values(path: &str, old: &Value, new: &Value, out: &mut Vec<FieldChange>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => diff_values(&p, x, y, out),
                    (x, y) => out.push(field(&p, x, y)),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if named(a) && named(b) => {
            let index = |items: &Vec<Value>| -> BTreeMap<String, Value> {
                items
                    .iter()
                    .filter_map(|v| item_name(v).map(|n| (n, v.clone())))
                    .collect()
            };
            let (ia, ib) = (index(a), index(b));
            let names: std::collections::BTreeSet<&String> = ia.keys().chain(ib.keys()).collect();
            for n in names {
                let p = format!("{path}[{n}]");
                match (ia.get(n), ib.get(n)) {
                    (Some(x), Some(y)) => diff_values(&p, x, y, out),
                    (x, y) => out.push(field(&p, x, y)),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                diff_values(&format!("{path}[{i}]"), x, y, out);
            }
        }
        (a, b) if a != b => out.push(field(path, Some(a), Some(b))),
        _ => {}
    }
}

fn named(items: &[Value]) -> bool {
    !items.is_empty() && items.iter().all(|v| item_name(v).is_some())
}

fn item_name(v: &Value) -> Option<String> {
    let o = v.as_object()?;
    for key in ["alert", "record", "name", "title", "type"] {
        if let Some(Value::String(s)) = o.get(key) {
            let mut name = s.clone();
            // Alerts repeat per pool; the pool label tells them apart.
            if let Some(pool) = v.pointer("/labels/pool").and_then(Value::as_str) {
                name = format!("{name} pool={pool}");
            }
            return Some(name);
        }
    }
    None
}

fn field(path: &str, old: Option<&Value>, new: Option<&Value>) -> FieldChange {
    FieldChange {
        path: path.to_string(),
        old: old.map(short),
        new: new.map(short),
    }
}

fn short(v: &Value) -> String {
    let text = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 120 {
        format!("{}…", one_line.chars().take(119).collect::<String>())
    } else {
        one_line
    }
}

fn object_title(c: &ObjectChange) -> String {
    match &c.namespace {
        Some(ns) => format!("{} {ns}/{}", c.kind, c.name),
        None => format!("{} {}", c.kind, c.name),
    }
}

fn arrow(f: &FieldChange) -> String {
    match (&f.old, &f.new) {
        (Some(o), Some(n)) => format!("{o} → {n}"),
        (None, Some(n)) => format!("(added) {n}"),
        (Some(o), None) => format!("{o} (removed)"),
        (None, None) => String::new(),
    }
}

fn summary(plan: &Plan) -> String {
    format!(
        "{} to add, {} to change, {} to remove",
        plan.count(Action::Added),
        plan.count(Action::Changed),
        plan.count(Action::Removed)
    )
}

pub fn render_text(plan: &Plan) -> String {
    if plan.is_empty() {
        return "No changes: generated/ is current.\n".to_string();
    }
    let mut s = format!("Plan: {}.\n\n", summary(plan));
    if !plan.consequences.is_empty() {
        s.push_str("Consequences:\n");
        for line in &plan.consequences {
            let _ = writeln!(s, "  * {line}");
        }
        s.push('\n');
    }
    for c in &plan.changes {
        let sign = match c.action {
            Action::Added => "+",
            Action::Removed => "-",
            Action::Changed => "~",
        };
        let _ = writeln!(s, "{sign} {} ({})", object_title(c), c.file);
        for f in &c.fields {
            let _ = writeln!(s, "    {}: {}", f.path, arrow(f));
        }
    }
    s
}

pub fn render_markdown(plan: &Plan) -> String {
    if plan.is_empty() {
        return "### poolc plan\n\nNo changes: `generated/` is current.\n".to_string();
    }
    let mut s = format!("### poolc plan\n\n**{}.**\n\n", md_text(&summary(plan)));
    if !plan.consequences.is_empty() {
        s.push_str("Consequences:\n\n");
        for line in &plan.consequences {
            let _ = writeln!(s, "- {}", md_text(line));
        }
        s.push_str("\nObjects:\n\n");
    }
    for c in &plan.changes {
        let verb = match c.action {
            Action::Added => "added",
            Action::Removed => "removed",
            Action::Changed => "changed",
        };
        let _ = writeln!(s, "- {} {verb}", code_span(&object_title(c)));
    }
    s.push_str("\n<details><summary>Field changes</summary>\n\n");
    for c in plan.changes.iter().filter(|c| !c.fields.is_empty()) {
        let _ = writeln!(
            s,
            "#### {} ({})\n",
            md_text(&object_title(c)),
            code_span(&c.file)
        );
        s.push_str("| field | old | new |\n| --- | --- | --- |\n");
        for f in &c.fields {
            let cell = |v: &Option<String>| v.as_deref().map(code_span).unwrap_or_default();
            let _ = writeln!(
                s,
                "| {} | {} | {} |",
                code_span(&f.path),
                cell(&f.old),
                cell(&f.new)
            );
        }
        s.push('\n');
    }
    s.push_str("</details>\n");
    s
}

/// Text from the specs or the tree, safe as Markdown outside code: what
/// can open emphasis, code, a link, an image, a table cell or strikethrough
/// is escaped, as is a block marker (`#`, `-`, `+`, `1.`) at the start; HTML
/// is written as entities, line breaks folded, `:` escaped so no autolink
/// forms, and `@` kept from mentioning anyone (a zero-width space follows).
/// `_` inside a word (`bk_amd64`) cannot emphasize and stays as it is.
fn md_text(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let word = |i: Option<usize>| {
        i.and_then(|i| chars.get(i))
            .is_some_and(|c| c.is_alphanumeric())
    };
    let leading_digits = chars.iter().take_while(|c| c.is_ascii_digit()).count();
    let mut out = String::with_capacity(text.len());
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '@' => out.push_str("@&#8203;"),
            '_' if word(i.checked_sub(1)) && word(Some(i + 1)) => out.push(c),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' | ':' => {
                out.push('\\');
                out.push(c);
            }
            '#' | '-' | '+' | '=' if i == 0 => {
                out.push('\\');
                out.push(c);
            }
            '.' | ')' if leading_digits > 0 && i == leading_digits => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Text as an inline code span in a table cell or list: nothing inside is
/// Markdown, HTML or a mention, so only what would end the span or the row
/// is replaced (a backtick, `|`, a line break).
fn code_span(text: &str) -> String {
    let inner: String = text
        .chars()
        .map(|c| match c {
            '`' => '\'',
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => ' ',
            c => c,
        })
        .collect::<String>()
        .replace('|', "\\|");
    format!("`{inner}`")
}

pub fn render_json(plan: &Plan) -> String {
    let mut s =
        serde_json::to_string_pretty(plan).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}
