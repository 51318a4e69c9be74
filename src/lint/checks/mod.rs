//! The checks, one per file. Each declares its code, name, severity and a
//! doc in the same four parts (What it does / Why it matters / Example /
//! Instead); `poolc explain CODE` prints that doc.

pub mod counter_rate;
pub mod dashboard_scope;
pub mod impossible_comparison;
pub mod impossible_join;
pub mod keda_value_location;
pub mod label_template;
pub mod misfire;
pub mod range_window;
pub mod renamed_label;
pub mod rule_hygiene;
pub mod scrape_filter;
pub mod syntax;
pub mod unknown_label;
pub mod unknown_metric;
pub mod unscraped_trigger;

use super::{Context, Workspace};
use crate::diagnostic::{Diagnostic, Severity};

pub struct Check {
    pub code: &'static str,
    pub name: &'static str,
    pub severity: Severity,
    pub summary: &'static str,
    pub doc: &'static str,
    pub run: fn(&Workspace, &Context, &mut Vec<Diagnostic>),
}

pub const ALL: &[&Check] = &[
    &syntax::CHECK,
    &unknown_metric::CHECK,
    &scrape_filter::CHECK,
    &unknown_label::CHECK,
    &label_template::CHECK,
    &counter_rate::CHECK,
    &range_window::CHECK,
    &keda_value_location::CHECK,
    &dashboard_scope::CHECK,
    &rule_hygiene::CHECK,
    &misfire::CHECK,
    &renamed_label::CHECK,
    &impossible_join::CHECK,
    &impossible_comparison::CHECK,
    &unscraped_trigger::CHECK,
];

pub fn find(code: &str) -> Option<&'static Check> {
    ALL.iter()
        .copied()
        .find(|c| c.code.eq_ignore_ascii_case(code) || c.name == code)
}

/// The full text `poolc explain CODE` prints.
pub fn explain(check: &Check) -> String {
    format!(
        "{} {} ({})\n\n{}\n\n{}\n",
        check.code,
        check.name,
        check.severity.as_str(),
        check.summary,
        check.doc.trim()
    )
}

/// Every expression that parses, with its AST (parsed once per workspace).
pub fn parsed(
    ws: &Workspace,
) -> impl Iterator<Item = (&super::inputs::Expression, &promql_parser::parser::Expr)> {
    ws.expressions
        .iter()
        .enumerate()
        .filter_map(|(i, e)| ws.ast(i).ok().map(|p| (e, p)))
}
