//! The metric registrations of a Go repository at one tag, read package by
//! package: every non-test file that builds options (`…Opts{`) or a
//! descriptor (`NewDesc(`) is read with the constants and label lists of
//! its whole package, its own declarations winning over same-named ones of
//! sibling files (a local `labels := …` in one constructor is not another's).

use std::collections::{BTreeMap, BTreeSet};

use super::{gosrc, ExtractError, Repo, Row};

/// Where to look and what else to know.
pub struct Scan<'a> {
    /// Path prefixes to search (`.` for the whole tree).
    pub roots: &'a [&'a str],
    /// Files whose constants every package sees (`plugin/plugin.go`
    /// declaring the namespace).
    pub shared: &'a [&'a str],
    /// Whether `ConstLabels` keys are labels.
    pub const_labels: bool,
}

/// A path the scan never reads: tests, vendored code, test helpers and
/// end-to-end frameworks.
fn skipped(path: &str) -> bool {
    !path.ends_with(".go")
        || path.ends_with("_test.go")
        || path.starts_with("vendor/")
        || path.contains("/vendor/")
        || path.starts_with("test/")
        || path.starts_with("tests/")
        || path.contains("/testutil")
        || path.contains("/mocks/")
        || path.contains("/fake/")
}

fn dir_of(path: &str) -> &str {
    path.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
}

/// Every row registered at `tag`, with the file that registers it.
pub fn rows(repo: &Repo, tag: &str, scan: &Scan) -> Result<Vec<(String, Row)>, ExtractError> {
    let mut files: BTreeSet<String> = BTreeSet::new();
    for needle in ["Opts{", "NewDesc("] {
        files.extend(
            repo.grep_files(tag, needle, scan.roots)?
                .into_iter()
                .filter(|p| !skipped(p)),
        );
    }
    let mut base = gosrc::Symbols::default();
    base.const_labels = scan.const_labels;
    base.follow_lists = true;
    for path in scan.shared {
        if let Some(text) = repo.show(tag, path) {
            base.add_file(&text);
        }
    }
    let mut by_dir: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for f in &files {
        by_dir.entry(dir_of(f)).or_default().push(f);
    }
    let mut out = Vec::new();
    for (dir, registering) in by_dir {
        let package: Vec<(String, String)> = repo
            .files(tag, if dir.is_empty() { "." } else { dir })?
            .into_iter()
            .filter(|p| dir_of(p) == dir && !skipped(p))
            .filter_map(|p| {
                repo.show(tag, &p)
                    .map(|t| (p, gosrc::strip_line_comments(&t)))
            })
            .collect();
        let mut symbols = base.clone();
        for (_, text) in &package {
            symbols.add_file(text);
        }
        for (path, text) in &package {
            if !registering.contains(&path.as_str()) {
                continue;
            }
            let mut local = symbols.clone();
            local.add_file(text);
            for row in gosrc::metrics(text, &local)
                .into_iter()
                .chain(gosrc::descs(text, &local))
            {
                out.push((path.clone(), row));
            }
        }
    }
    Ok(out)
}
