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
