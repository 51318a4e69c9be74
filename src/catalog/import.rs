//! `poolc catalog import`: a `--catalog` file built from what a real
//! Prometheus stores (the JSON of `/api/v1/metadata` and `/api/v1/series`) or
//! what an exporter serves (its `/metrics` text). It covers exporters poolc
//! has no built-in rows for, so the gate can still tell a typo from a metric.
//!
//! Rows are what PromQL sees: one per stored series name, except histograms
//! and summaries, which are listed once under their family name and expanded
//! by the catalog (`_bucket` with `le`, the summary itself with `quantile`,
//! `_sum`, `_count`), as in the built-in tables. The output is sorted and has
//! no timestamps, so importing twice from the same inputs writes the same bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use super::MetricType;

/// The largest input read: a full `/api/v1/series` dump of a busy server is
/// large; narrow it with `match[]` per job if this is too small.
pub const MAX_INPUT_BYTES: usize = 512 * 1024 * 1024;

/// The label set entry that stands for "any label": the source named the
/// metric but showed none of its series.
pub const ANY_LABEL: &str = "*";

/// Series Prometheus itself writes; the built-in catalog already knows them,
/// with the labels every target gives them.
const SYNTHETIC: &[&str] = &["up", "ALERTS", "ALERTS_FOR_STATE"];

/// One catalog row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Family {
    pub name: String,
    pub kind: MetricType,
    pub labels: BTreeSet<String>,
}

/// What to read: the two Prometheus API answers together, any number of
/// exposition texts, or both.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub metadata: Option<PathBuf>,
    pub series: Option<PathBuf>,
    pub exposition: Vec<PathBuf>,
    /// Labels Prometheus attaches when it scrapes an exposition text.
    pub target_labels: Vec<String>,
}

/// The finished catalog text, and what was left out and why.
#[derive(Debug, Clone)]
pub struct Imported {
    pub text: String,
    pub rows: usize,
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{path}:{line}: {message}")]
    At {
        path: String,
        line: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error(
        "`{name}` is a {first} in {first_source} but a {second} in {second_source}; \
         import the two sources into separate catalogs, or drop one"
    )]
    Conflict {
        name: String,
        first: &'static str,
        first_source: String,
        second: &'static str,
        second_source: String,
    },
    #[error("nothing to import: give --metadata and --series (saved from Prometheus' API), or --exposition (an exporter's /metrics)")]
    NoSource,
    #[error("--target-labels: `{0}` is not a label name (letters, digits and `_`, not starting with a digit)")]
    TargetLabel(String),
}

/// Reads every source, merges the rows and renders the catalog file.
pub fn import(sources: &Sources) -> Result<Imported, ImportError> {
    for label in sources.target_labels.iter().filter(|l| !l.is_empty()) {
        if !is_label_name(label) {
            return Err(ImportError::TargetLabel(label.clone()));
        }
    }
    let mut rows = Rows::default();
    let mut notes = Vec::new();
    let mut shown = Vec::new();
    match (&sources.metadata, &sources.series) {
        (Some(metadata), Some(series)) => {
            let (m_shown, m_text) = read(metadata)?;
            let (s_shown, s_text) = read(series)?;
            let (families, mut n) = prometheus_api(&m_shown, &m_text, &s_shown, &s_text)?;
            let source = format!("{m_shown} + {s_shown}");
            rows.add(&source, families)?;
            notes.append(&mut n);
            shown.push(m_shown);
            shown.push(s_shown);
        }
        (None, None) => {}
        _ => return Err(ImportError::NoSource),
    }
    for path in &sources.exposition {
        let (p_shown, text) = read(path)?;
        let target_labels: Vec<String> = sources
            .target_labels
            .iter()
            .filter(|l| !l.is_empty())
            .cloned()
            .collect();
        let (families, mut n) = exposition(&p_shown, &text, &target_labels)?;
        rows.add(&p_shown, families)?;
        notes.append(&mut n);
        shown.push(p_shown);
    }
    if shown.is_empty() {
        return Err(ImportError::NoSource);
    }
    Ok(Imported {
        text: render(&rows.rows, &shown),
        rows: rows.rows.len(),
        notes,
    })
}

fn read(path: &Path) -> Result<(String, String), ImportError> {
    let shown = path.to_string_lossy().replace('\\', "/");
    let file = |message: String| ImportError::File {
        path: shown.clone(),
        message,
    };
    let bytes = crate::spec::read_at_most(path, MAX_INPUT_BYTES)
        .map_err(|e| file(format!("cannot read it: {e}")))?;
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(file(format!(
            "larger than {} MiB; save the series of fewer jobs (`match[]={{job=\"...\"}}`) per file",
            MAX_INPUT_BYTES / (1024 * 1024)
        )));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        file(format!(
            "not UTF-8 (invalid byte at offset {}); save the answer as it came",
            e.utf8_error().valid_up_to()
        ))
    })?;
    Ok((shown, text))
}

/// Rows by name, remembering which source first gave each, so a clash of
/// types can name both.
#[derive(Default)]
struct Rows {
    rows: BTreeMap<String, Family>,
    origin: BTreeMap<String, String>,
}

impl Rows {
    fn add(&mut self, source: &str, families: Vec<Family>) -> Result<(), ImportError> {
        for family in families {
            match self.rows.get_mut(&family.name) {
                Some(row) if row.kind != family.kind => {
                    return Err(ImportError::Conflict {
                        name: family.name.clone(),
                        first: type_name(row.kind),
                        first_source: self.origin[&family.name].clone(),
                        second: type_name(family.kind),
                        second_source: source.to_string(),
                    });
                }
                Some(row) => row.labels.extend(family.labels),
                None => {
                    self.origin.insert(family.name.clone(), source.to_string());
                    self.rows.insert(family.name.clone(), family);
                }
            }
        }
        Ok(())
    }
}

/// The metric types an exposition or Prometheus' metadata may declare,
/// OpenMetrics' included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Declared {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    Unknown,
}

impl Declared {
    fn parse(s: &str) -> Option<Declared> {
        Some(match s {
            "counter" => Declared::Counter,
            "gauge" => Declared::Gauge,
            "histogram" => Declared::Histogram,
            "gaugehistogram" => Declared::GaugeHistogram,
            "summary" => Declared::Summary,
            "info" => Declared::Info,
            "stateset" => Declared::StateSet,
            "untyped" | "unknown" => Declared::Unknown,
            _ => return None,
        })
    }
}

/// Where a stored series name goes: its row's name and type, and the label
/// the catalog adds back when it expands the row (`le`, `quantile`).
struct Placement {
    row: String,
    kind: MetricType,
    expanded_label: Option<&'static str>,
}

/// The endings a series name adds to its family's name.
const SUFFIXES: [&str; 8] = [
    "_bucket", "_sum", "_count", "_total", "_created", "_info", "_gsum", "_gcount",
];

/// Places the series `name` given the family types the source declared.
/// OpenMetrics names a counter family `foo` and its series `foo_total`;
/// the text format names both `foo_total`; both land on the series name.
fn place(name: &str, declared: impl Fn(&str) -> Option<Declared>) -> Placement {
    let own = |kind| Placement {
        row: name.to_string(),
        kind,
        expanded_label: None,
    };
    if let Some(d) = declared(name) {
        return match d {
            Declared::Counter => own(MetricType::Counter),
            Declared::Gauge | Declared::GaugeHistogram | Declared::Info | Declared::StateSet => {
                own(MetricType::Gauge)
            }
            Declared::Unknown => own(MetricType::Untyped),
            // A native histogram is stored under the family name itself.
            Declared::Histogram => own(MetricType::Histogram),
            Declared::Summary => Placement {
                row: name.to_string(),
                kind: MetricType::Summary,
                expanded_label: Some("quantile"),
            },
        };
    }
    for suffix in SUFFIXES {
        let Some(base) = name.strip_suffix(suffix) else {
            continue;
        };
        let Some(d) = declared(base) else { continue };
        let family = |kind, expanded_label| Placement {
            row: base.to_string(),
            kind,
            expanded_label,
        };
        match (d, suffix) {
            (Declared::Histogram, "_bucket") => return family(MetricType::Histogram, Some("le")),
            (Declared::Histogram, "_sum" | "_count") => return family(MetricType::Histogram, None),
            (Declared::Summary, "_sum" | "_count") => {
                return family(MetricType::Summary, Some("quantile"))
            }
            (Declared::Counter, "_total") => return own(MetricType::Counter),
            (Declared::Counter | Declared::Histogram | Declared::Summary, "_created")
            | (Declared::Info, "_info")
            | (Declared::GaugeHistogram, "_bucket" | "_gsum" | "_gcount") => {
                return own(MetricType::Gauge)
            }
            _ => {}
        }
    }
    own(MetricType::Untyped)
}

/// Folds series (name → label names) into rows. A summary's `_sum` and
/// `_count` carry no `quantile`, its quantile series do; both land on the
/// family, without the label the catalog adds back.
fn fold(
    series: BTreeMap<String, BTreeSet<String>>,
    declared: impl Fn(&str) -> Option<Declared>,
) -> Vec<Family> {
    let mut rows: BTreeMap<String, Family> = BTreeMap::new();
    for (name, labels) in series {
        let placement = place(&name, &declared);
        let row = rows.entry(placement.row.clone()).or_insert_with(|| Family {
            name: placement.row.clone(),
            kind: placement.kind,
            labels: BTreeSet::new(),
        });
        row.labels.extend(
            labels
                .into_iter()
                .filter(|l| Some(l.as_str()) != placement.expanded_label),
        );
    }
    rows.into_values().collect()
}

// ---- Prometheus' HTTP API -------------------------------------------------

/// The envelope of every `/api/v1` answer.
#[derive(Deserialize)]
struct Answer<T> {
    status: String,
    data: Option<T>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct MetadataEntry {
    #[serde(rename = "type")]
    kind: String,
}

/// The series of `/api/v1/series`, folded as they are read (a dump can hold
/// millions): name → every label name seen on it. `/api/v1/label/__name__/values`
/// gives names only; those get the any-label entry.
#[derive(Default)]
struct SeriesLabels(BTreeMap<String, BTreeSet<String>>);

impl<'de> Deserialize<'de> for SeriesLabels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Folding;
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Item {
            Series(BTreeMap<String, String>),
            Name(String),
        }
        impl<'de> Visitor<'de> for Folding {
            type Value = SeriesLabels;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of series (label maps) or of metric names")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SeriesLabels, A::Error> {
                let mut out = SeriesLabels::default();
                while let Some(item) = seq.next_element::<Item>()? {
                    match item {
                        Item::Series(mut labels) => {
                            let Some(name) = labels.remove("__name__") else {
                                continue;
                            };
                            out.0.entry(name).or_default().extend(labels.into_keys());
                        }
                        Item::Name(name) => {
                            out.0.entry(name).or_default().insert(ANY_LABEL.into());
                        }
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_seq(Folding)
    }
}

fn parse_answer<'de, T: Deserialize<'de>>(
    path: &str,
    text: &'de str,
    endpoint: &str,
) -> Result<T, ImportError> {
    let answer: Answer<T> = serde_json::from_str(text).map_err(|e| ImportError::At {
        path: path.to_string(),
        line: e.line(),
        message: format!(
            "{e}; expected the JSON Prometheus answers on {endpoint} \
             (curl -s http://PROMETHEUS:9090{endpoint} > {path})"
        ),
    })?;
    if answer.status != "success" {
        return Err(ImportError::File {
            path: path.to_string(),
            message: format!(
                "Prometheus answered status `{}`: {}; fix the query and save the answer again",
                answer.status,
                answer.error.as_deref().unwrap_or("no error text")
            ),
        });
    }
    answer.data.ok_or_else(|| ImportError::File {
        path: path.to_string(),
        message: format!("the answer has no `data`; save the whole answer of {endpoint}"),
    })
}

/// Rows from the JSON of `/api/v1/metadata` (types) and `/api/v1/series`
/// (names and labels, as stored). Only stored names become rows: a family
/// the scrape's relabeling drops still has metadata but never a series.
pub fn prometheus_api(
    metadata_path: &str,
    metadata: &str,
    series_path: &str,
    series: &str,
) -> Result<(Vec<Family>, Vec<String>), ImportError> {
    let metadata: BTreeMap<String, Vec<MetadataEntry>> =
        parse_answer(metadata_path, metadata, "/api/v1/metadata")?;
    let SeriesLabels(mut stored) = parse_answer(series_path, series, "/api/v1/series")?;
    let mut notes = Vec::new();
    let mut types = BTreeMap::new();
    for (name, entries) in &metadata {
        let kinds: BTreeSet<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
        let declared = match kinds.iter().collect::<Vec<_>>()[..] {
            [one] => Declared::parse(one).unwrap_or(Declared::Unknown),
            _ => {
                notes.push(format!(
                    "`{name}`: targets disagree on its type ({}); imported as untyped",
                    kinds.iter().copied().collect::<Vec<_>>().join(", ")
                ));
                Declared::Unknown
            }
        };
        types.insert(name.as_str(), declared);
    }
    let synthetic: Vec<String> = stored
        .keys()
        .filter(|n| {
            !types.contains_key(n.as_str())
                && (SYNTHETIC.contains(&n.as_str()) || n.starts_with("scrape_"))
        })
        .cloned()
        .collect();
    for name in &synthetic {
        stored.remove(name);
    }
    if !synthetic.is_empty() {
        notes.push(format!(
            "left to poolc's built-in rows (Prometheus writes them itself): {}",
            synthetic.join(", ")
        ));
    }
    let declared = |name: &str| types.get(name).copied();
    let families = fold(stored, declared);
    let untyped: Vec<&str> = families
        .iter()
        .filter(|f| f.kind == MetricType::Untyped && !types.contains_key(f.name.as_str()))
        .map(|f| f.name.as_str())
        .collect();
    if !untyped.is_empty() {
        notes.push(format!(
            "no metadata, imported as untyped (recording rules, or targets gone since): {}",
            untyped.join(", ")
        ));
    }
    Ok((families, notes))
}

// ---- The exposition text format -------------------------------------------

/// Rows from an exporter's `/metrics` (the Prometheus text format or
/// OpenMetrics). Prometheus adds `target_labels` to every series it scrapes.
pub fn exposition(
    path: &str,
    text: &str,
    target_labels: &[String],
) -> Result<(Vec<Family>, Vec<String>), ImportError> {
    let mut declared: BTreeMap<String, (Declared, usize)> = BTreeMap::new();
    let mut series: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let at = |line: usize, message: String| ImportError::At {
        path: path.to_string(),
        line,
        message,
    };
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.split_whitespace();
            if words.next() != Some("TYPE") {
                continue; // HELP, UNIT, EOF and free comments say nothing about names
            }
            let (Some(name), Some(kind)) = (words.next(), words.next()) else {
                return Err(at(
                    line_no,
                    "a TYPE line needs a metric name and a type: `# TYPE name counter`".into(),
                ));
            };
            if !is_metric_name(name) {
                return Err(at(line_no, format!("`{name}` is not a metric name")));
            }
            let kind = Declared::parse(kind).ok_or_else(|| {
                at(
                    line_no,
                    format!(
                        "unknown type `{kind}`; the types are counter, gauge, histogram, \
                         gaugehistogram, summary, info, stateset, untyped and unknown"
                    ),
                )
            })?;
            if let Some((_, first)) = declared.insert(name.to_string(), (kind, line_no)) {
                return Err(at(
                    line_no,
                    format!("a second TYPE line for `{name}` (the first is on line {first})"),
                ));
            }
            continue;
        }
        let (name, labels) = sample(line).map_err(|message| at(line_no, message))?;
        series.entry(name).or_default().extend(labels);
    }
    let mut notes = Vec::new();
    let used: BTreeSet<&str> = series
        .keys()
        .flat_map(|s| {
            let bases = SUFFIXES.iter().filter_map(|suffix| s.strip_suffix(suffix));
            std::iter::once(s.as_str()).chain(bases)
        })
        .collect();
    let empty: Vec<&str> = declared
        .keys()
        .map(String::as_str)
        .filter(|family| !used.contains(family))
        .collect();
    if !empty.is_empty() {
        notes.push(format!(
            "{path}: declared without a sample, so their names and labels are unknown \
             (import again once they have one): {}",
            empty.join(", ")
        ));
    }
    for labels in series.values_mut() {
        labels.extend(target_labels.iter().cloned());
    }
    let families = fold(series, |name| declared.get(name).map(|(d, _)| *d));
    Ok((families, notes))
}

/// The name and label names of one sample line:
/// `name{label="value",...} value [timestamp] [# exemplar]`.
fn sample(line: &str) -> Result<(String, BTreeSet<String>), String> {
    let end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    let name = &line[..end];
    if !is_metric_name(name) {
        return Err(format!(
            "`{name}` is not a metric name; a sample line reads `name{{label=\"value\"}} 1`"
        ));
    }
    let mut labels = BTreeSet::new();
    let mut rest = &line[end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let (names, after) = label_names(inner)?;
        labels = names;
        rest = after;
    }
    let value = rest.split_whitespace().next().ok_or_else(|| {
        format!("`{name}` has no value; a sample line reads `name{{label=\"value\"}} 1`")
    })?;
    if !is_sample_value(value) {
        return Err(format!(
            "`{value}` is not a sample value (a number, NaN, +Inf or -Inf)"
        ));
    }
    Ok((name.to_string(), labels))
}

/// The label names of `a="x",b="y"}` and the text after the closing brace.
fn label_names(mut rest: &str) -> Result<(BTreeSet<String>, &str), String> {
    let mut names = BTreeSet::new();
    let mut seen = BTreeSet::new();
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((names, after));
        }
        let eq = rest
            .find('=')
            .ok_or("a label needs `=\"value\"`; close the label set with `}`")?;
        let name = rest[..eq].trim();
        if !is_label_name(name) {
            return Err(format!("`{name}` is not a label name"));
        }
        rest = rest[eq + 1..]
            .trim_start()
            .strip_prefix('"')
            .ok_or_else(|| format!("the value of `{name}` must be in double quotes"))?;
        let mut escaped = false;
        let close = rest
            .char_indices()
            .find(|&(_, c)| {
                let done = c == '"' && !escaped;
                escaped = c == '\\' && !escaped;
                done
            })
            .map(|(i, _)| i)
            .ok_or_else(|| format!("the value of `{name}` has no closing quote"))?;
        if !seen.insert(name) {
            return Err(format!("label `{name}` appears twice in one sample"));
        }
        // Prometheus stores a label with an empty value as no label at all.
        if close > 0 {
            names.insert(name.to_string());
        }
        rest = rest[close + 1..].trim_start();
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return Err(format!("expected `,` or `}}` after the value of `{name}`"));
        }
    }
}

fn is_sample_value(v: &str) -> bool {
    matches!(v, "NaN" | "+Inf" | "-Inf" | "Inf") || v.parse::<f64>().is_ok_and(f64::is_finite)
}

pub fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

pub fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

// ---- Output ---------------------------------------------------------------

fn type_name(kind: MetricType) -> &'static str {
    match kind {
        MetricType::Counter => "counter",
        MetricType::Gauge => "gauge",
        MetricType::Histogram => "histogram",
        MetricType::Summary => "summary",
        MetricType::Untyped => "untyped",
    }
}

/// The catalog file: one flow mapping per row, so a new label or metric is a
/// one-line diff.
fn render(rows: &BTreeMap<String, Family>, sources: &[String]) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "# Metric catalog imported by `poolc catalog import` from {}.\n",
        sources.join(", ")
    ));
    out.push_str(
        "# Import again rather than editing: the rows are sorted and the output is stable.\n",
    );
    out.push_str("# Use it with `poolc lint --catalog FILE`.\n");
    if rows.is_empty() {
        out.push_str("metrics: []\n");
        return out;
    }
    out.push_str("metrics:\n");
    for row in rows.values() {
        let labels: Vec<String> = row.labels.iter().map(|l| scalar(l)).collect();
        out.push_str(&format!(
            "  - {{name: {}, type: {}, labels: [{}]}}\n",
            scalar(&row.name),
            type_name(row.kind),
            labels.join(", ")
        ));
    }
    out
}

/// A YAML scalar that reads back as exactly `s`: plain when it is a simple
/// name YAML cannot mistake for a boolean or null, double-quoted otherwise.
fn scalar(s: &str) -> String {
    const KEYWORDS: [&str; 11] = [
        "true", "false", "yes", "no", "on", "off", "y", "n", "null", "nan", "inf",
    ];
    let simple = is_label_name(s) && !KEYWORDS.contains(&s.to_ascii_lowercase().as_str());
    if simple {
        s.to_string()
    } else {
        serde_json::Value::String(s.to_string()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn sample_lines_give_names_and_label_names() {
        let (name, l) =
            sample(r#"http_requests_total{code="200",path="/a,b}\"c"} 1027 1395066363000"#)
                .unwrap();
        assert_eq!(name, "http_requests_total");
        assert_eq!(l, labels(&["code", "path"]));
        assert_eq!(sample("up 1").unwrap().1, labels(&[]));
        assert_eq!(sample(r#"x{a="1",} +Inf"#).unwrap().1, labels(&["a"]));
        assert_eq!(sample(r#"x{a="",b="\\"} 1"#).unwrap().1, labels(&["b"]));
        assert!(sample(r#"x{a="1" b="2"} 1"#).is_err());
        assert!(sample(r#"x{a="1"} one"#).is_err());
        assert!(sample(r#"x{a="1",a="2"} 1"#).is_err());
        assert!(sample("9x 1").is_err());
    }

    #[test]
    fn histograms_and_summaries_fold_to_their_family() {
        let text = "\
# TYPE req_seconds histogram
req_seconds_bucket{path=\"/\",le=\"0.1\"} 1
req_seconds_bucket{path=\"/\",le=\"+Inf\"} 2
req_seconds_sum{path=\"/\"} 0.3
req_seconds_count{path=\"/\"} 2
# TYPE gc_seconds summary
gc_seconds{quantile=\"0.5\"} 0.1
gc_seconds_sum 1
gc_seconds_count 3
# TYPE jobs counter
jobs_total{queue=\"a\"} 4
jobs_created{queue=\"a\"} 1.7e9
# TYPE idle untyped
idle 3
";
        let (rows, notes) = exposition("m.txt", text, &["job".into()]).unwrap();
        assert!(notes.is_empty(), "{notes:?}");
        let got: Vec<(&str, MetricType, BTreeSet<String>)> = rows
            .iter()
            .map(|f| (f.name.as_str(), f.kind, f.labels.clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("gc_seconds", MetricType::Summary, labels(&["job"])),
                ("idle", MetricType::Untyped, labels(&["job"])),
                ("jobs_created", MetricType::Gauge, labels(&["job", "queue"])),
                ("jobs_total", MetricType::Counter, labels(&["job", "queue"])),
                (
                    "req_seconds",
                    MetricType::Histogram,
                    labels(&["job", "path"])
                ),
            ]
        );
    }

    #[test]
    fn exposition_errors_name_the_line() {
        let err = exposition("m.txt", "# TYPE a gauge\na 1\nb{x=\"1\" 2\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("m.txt:3: "), "{err}");
        let err = exposition("m.txt", "# TYPE a gauge\n# TYPE a counter\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("m.txt:2:") && err.contains("line 1"), "{err}");
        let err = exposition("m.txt", "# TYPE a gauges\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("m.txt:1: unknown type"), "{err}");
    }

    #[test]
    fn api_answers_fold_and_skip_synthetic_series() {
        let metadata = r#"{"status":"success","data":{
            "rq":[{"type":"histogram","help":"","unit":""}],
            "jobs":[{"type":"counter","help":"","unit":""}]}}"#;
        let series = r#"{"status":"success","data":[
            {"__name__":"rq_bucket","job":"a","instance":"i","le":"1"},
            {"__name__":"rq_count","job":"a","instance":"i"},
            {"__name__":"jobs_total","job":"a","instance":"i","queue":"q"},
            {"__name__":"up","job":"a","instance":"i"},
            {"__name__":"cluster:jobs:rate5m","job":"a"}]}"#;
        let (rows, notes) = prometheus_api("m.json", metadata, "s.json", series).unwrap();
        let got: Vec<(&str, MetricType, BTreeSet<String>)> = rows
            .iter()
            .map(|f| (f.name.as_str(), f.kind, f.labels.clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("cluster:jobs:rate5m", MetricType::Untyped, labels(&["job"])),
                (
                    "jobs_total",
                    MetricType::Counter,
                    labels(&["instance", "job", "queue"])
                ),
                ("rq", MetricType::Histogram, labels(&["instance", "job"])),
            ]
        );
        assert_eq!(notes.len(), 2, "{notes:?}");
    }

    #[test]
    fn api_errors_name_the_file_and_line() {
        let err = prometheus_api(
            "m.json",
            "{\"status\":\"success\",\n\"data\":[]}",
            "s.json",
            "",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("m.json:2: "), "{err}");
        let err = prometheus_api(
            "m.json",
            r#"{"status":"success","data":{}}"#,
            "s.json",
            r#"{"status":"error","errorType":"bad_data","error":"match[] missing"}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("s.json") && err.contains("match[] missing"),
            "{err}"
        );
    }

    /// Any text, and any edit of a real exposition, gives rows or an error
    /// that names a line of the file: never a panic.
    #[test]
    fn exposition_never_panics_and_errors_name_a_real_line() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
        const BASE: &str = "# HELP jobs_total Jobs.\n# TYPE jobs_total counter\njobs_total{queue=\"a\",agent=\"\"} 3\n# TYPE t histogram\nt_bucket{le=\"+Inf\"} 1\nt_sum 1\nt_count 1\n";
        let edits = (0..BASE.len(), "[ -~\\n\\t{}\",=#\\\\]{0,8}", 0..4usize);
        let strategy = (any::<String>(), proptest::collection::vec(edits, 1..6));
        let mut runner = TestRunner::new_with_rng(
            Config {
                cases: 512,
                failure_persistence: None,
                ..Config::default()
            },
            TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
        );
        runner
            .run(&strategy, |(noise, edits)| {
                let mut text = BASE.to_string();
                for (at, insert, cut) in edits {
                    let at = (0..=at.min(text.len()))
                        .rev()
                        .find(|i| text.is_char_boundary(*i))
                        .unwrap_or(0);
                    let end = (at..=(at + cut).min(text.len()))
                        .rev()
                        .find(|i| text.is_char_boundary(*i))
                        .unwrap_or(at);
                    text.replace_range(at..end, &insert);
                }
                for input in [noise.as_str(), text.as_str()] {
                    if let Err(e) = exposition("m.txt", input, &[]) {
                        let line: usize = e
                            .to_string()
                            .strip_prefix("m.txt:")
                            .and_then(|r| r.split(':').next())
                            .and_then(|n| n.parse().ok())
                            .unwrap_or_else(|| panic!("no line in {e}"));
                        prop_assert!(line >= 1 && line <= input.lines().count(), "{e}");
                    }
                    let _ = prometheus_api("m.json", input, "s.json", input);
                }
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn scalars_read_back_unchanged() {
        assert_eq!(scalar("job"), "job");
        assert_eq!(scalar("on"), "\"on\"");
        assert_eq!(scalar("a:b"), "\"a:b\"");
        assert_eq!(scalar("*"), "\"*\"");
    }
}
