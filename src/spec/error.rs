//! A mistake in a spec, with where it is and how to fix it. Loading and
//! validation both produce these, and report every one before stopping.

use std::fmt;

use serde_saphyr::Location;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub path: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
    pub help: String,
    /// The offending line of the file, shown under the message.
    pub source_line: Option<String>,
}

impl SpecError {
    /// An error at `location` in the file `path` whose text is `source`.
    pub fn at(
        path: &str,
        source: &str,
        location: Location,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> SpecError {
        let line = usize::try_from(location.line()).unwrap_or(0);
        let col = usize::try_from(location.column()).unwrap_or(0);
        SpecError::at_line(path, source, line, col, message, help)
    }

    /// An error at `line`:`col` (from 1) in the file `path` whose text is
    /// `source`.
    pub fn at_line(
        path: &str,
        source: &str,
        line: usize,
        col: usize,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> SpecError {
        SpecError {
            path: path.to_string(),
            line,
            col,
            message: message.into(),
            help: help.into(),
            source_line: line
                .checked_sub(1)
                .and_then(|i| source.lines().nth(i))
                // A window of a long (minified, flow-style) line, not all of it.
                .map(|l| crate::diagnostic::excerpt(l.trim_end_matches('\r'), col)),
        }
    }

    /// An error about the whole file (unreadable, too large).
    pub fn file(path: &str, message: impl Into<String>, help: impl Into<String>) -> SpecError {
        SpecError {
            path: path.to_string(),
            line: 1,
            col: 1,
            message: message.into(),
            help: help.into(),
            source_line: None,
        }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}:{}:{}: error: {}",
            self.path, self.line, self.col, self.message
        )?;
        if let Some(text) = &self.source_line {
            let (text, caret) = if text.contains('\n') {
                crate::diagnostic::excerpt_and_caret(text, self.col)
            } else {
                (text.as_str(), self.col.saturating_sub(1))
            };
            let gutter = self.line.to_string();
            let pad = " ".repeat(gutter.len());
            // Control characters in the echoed line could rewrite the terminal.
            let shown: String = text
                .chars()
                .map(|c| if c.is_control() && c != '\t' { '?' } else { c })
                .collect();
            writeln!(f, "{pad} |")?;
            writeln!(f, "{gutter} | {shown}")?;
            writeln!(f, "{pad} | {}^", " ".repeat(caret))?;
        }
        // `=` under the gutter's `|`, as rustc aligns it.
        let pad = " ".repeat(self.line.to_string().len().max(1));
        write!(f, "{pad} = help: {}", self.help)
    }
}

impl std::error::Error for SpecError {}
