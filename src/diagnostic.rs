//! Findings as data. Checks produce them, reports render them (human, json,
//! GitHub annotations, SARIF); nothing here knows about output formats.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Diagnostic {
    pub path: String,
    pub line: usize,
    pub column: usize,
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    pub help: String,
    /// The source line the position points into, for the caret display.
    #[serde(skip)]
    pub source_line: String,
    /// The rule or dashboard panel the finding is in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<Subject>,
}

/// What a finding is in, beyond its position: a rule (its group, and its
/// alert or record name) or a dashboard panel (the dashboard, the panel's
/// title and id). Reviewers look for these names, not for line numbers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Subject {
    Rule {
        group: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        alert: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        record: Option<String>,
    },
    Panel {
        /// The dashboard's title, or its uid when it has none.
        dashboard: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<i64>,
    },
}

impl Subject {
    /// `alert `X` in group `g``, or `panel `T` (id 3) of dashboard `D``.
    pub fn describe(&self) -> String {
        match self {
            Subject::Rule {
                group,
                alert,
                record,
            } => match (alert, record) {
                (Some(a), _) => format!("alert `{a}` in group `{group}`"),
                (None, Some(r)) => format!("record `{r}` in group `{group}`"),
                (None, None) => format!("a rule in group `{group}`"),
            },
            Subject::Panel {
                dashboard,
                title,
                id,
            } => {
                let panel = match (title, id) {
                    (Some(t), Some(id)) => format!("panel `{t}` (id {id}) of "),
                    (Some(t), None) => format!("panel `{t}` of "),
                    (None, Some(id)) => format!("panel id {id} of "),
                    (None, None) => String::new(),
                };
                format!("{panel}dashboard `{dashboard}`")
            }
        }
    }

    /// The rule or panel's own name, for titles: `Foo`, `foo:sum`, `Queue`.
    pub fn name(&self) -> Option<&str> {
        match self {
            Subject::Rule { alert, record, .. } => alert.as_deref().or(record.as_deref()),
            Subject::Panel {
                title, dashboard, ..
            } => title.as_deref().or(Some(dashboard.as_str())),
        }
    }
}

/// The widest source excerpt a finding shows, in characters. A minified
/// dashboard is one line of hundreds of KiB; a finding shows a window of it.
pub const EXCERPT_CHARS: usize = 160;

/// `line` cut to a window of [`EXCERPT_CHARS`] around `column` (1-based,
/// in characters), with `…` where it was cut. A cut line carries the number
/// of characters dropped before the window, before a `\n` (which no source
/// line holds), so [`excerpt_and_caret`] can place the caret.
pub fn excerpt(line: &str, column: usize) -> String {
    let len = line.chars().count();
    if len <= EXCERPT_CHARS {
        return line.to_string();
    }
    let half = EXCERPT_CHARS / 2;
    let start = column
        .saturating_sub(1)
        .saturating_sub(half)
        .min(len - EXCERPT_CHARS);
    let window: String = if line.is_ascii() {
        line[start..start + EXCERPT_CHARS].to_string()
    } else {
        line.chars().skip(start).take(EXCERPT_CHARS).collect()
    };
    let before = if start > 0 { "…" } else { "" };
    let after = if start + EXCERPT_CHARS < len {
        "…"
    } else {
        ""
    };
    format!("{start}\n{before}{window}{after}")
}

/// The text to show for a finding's source line and the caret's index in
/// it (0-based, in characters).
pub fn excerpt_and_caret(source_line: &str, column: usize) -> (&str, usize) {
    let (dropped, text) = match source_line.split_once('\n') {
        Some((n, text)) => (n.parse::<usize>().unwrap_or(0), text),
        None => (0, source_line),
    };
    let marker = usize::from(dropped > 0);
    let caret = (column.saturating_sub(1) + marker)
        .saturating_sub(dropped)
        .min(text.chars().count());
    (text, caret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_line_shows_a_window_with_the_caret_on_the_column() {
        let line: String = (0..10_000)
            .map(|i| if i == 5_000 { 'X' } else { 'a' })
            .collect();
        let cut = excerpt(&line, 5_001);
        let (text, caret) = excerpt_and_caret(&cut, 5_001);
        assert!(text.chars().count() <= EXCERPT_CHARS + 2);
        assert_eq!(text.chars().nth(caret), Some('X'));
        let (text, caret) = excerpt_and_caret("short line", 3);
        assert_eq!((text, caret), ("short line", 2));
        for column in [1, 80, 9_999, 10_000] {
            let cut = excerpt(&line, column);
            let (text, caret) = excerpt_and_caret(&cut, column);
            let want = line.chars().nth(column - 1);
            assert_eq!(text.chars().nth(caret), want, "column {column}");
        }
    }
}
