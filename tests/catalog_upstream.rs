//! The catalog against upstream's own expected exposition text, an oracle
//! independent of the extractors: kube-state-metrics' store tests
//! (`internal/store/*_test.go`) and cAdvisor's exposition fixtures
//! (`metrics/testdata/prometheus_*`), at every release tag of a local
//! clone. Every sample they expect must be a family of the catalog at that
//! release, with labels the catalog allows.
//!
//! Set `POOLC_UPSTREAM_CLONES` to the directory of clones the catalog is
//! refreshed from (`<owner>+<name>/repo` or `<name>` inside it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use poolc::catalog::{Exporter, KnownMetric, Version};

fn clone_of(repo: &str) -> Option<PathBuf> {
    let Some(dir) = std::env::var_os("POOLC_UPSTREAM_CLONES") else {
        eprintln!("SKIPPED: POOLC_UPSTREAM_CLONES is not set (the directory of upstream clones)");
        return None;
    };
    let dir = PathBuf::from(dir);
    let (owner, name) = repo.split_once('/').unwrap();
    let found = [
        dir.join(format!("{owner}+{name}")).join("repo"),
        dir.join(format!("{owner}+{name}")),
        dir.join(name),
    ]
    .into_iter()
    .find(|p| p.exists());
    if found.is_none() {
        eprintln!("SKIPPED: no clone of {repo} in {}", dir.display());
    }
    found
}

fn git(repo: &Path, args: &[&str]) -> String {
    // A bare clone is its own git directory.
    let git_dir = if repo.join(".git").is_dir() {
        repo.join(".git")
    } else {
        repo.to_path_buf()
    };
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(git_dir)
        .args(args)
        .output()
        .expect("git runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Release tags `vX.Y.Z` at or after `from`, with their versions.
fn releases(repo: &Path, from: Version) -> Vec<(Version, String)> {
    let mut out: Vec<(Version, String)> = git(repo, &["tag"])
        .lines()
        .filter_map(|t| {
            let v = t.strip_prefix('v')?;
            (v.split('.').count() == 3 && v.split('.').all(|p| p.parse::<u32>().is_ok()))
                .then(|| Some((v.parse::<Version>().ok()?, t.to_string())))
                .flatten()
        })
        .filter(|(v, _)| *v >= from)
        .collect();
    out.sort();
    out
}

/// The text of every file at `tag` under `dir` whose path `keep` accepts.
fn texts(repo: &Path, tag: &str, dir: &str, keep: impl Fn(&str) -> bool) -> String {
    git(repo, &["ls-tree", "-r", "--name-only", tag, "--", dir])
        .lines()
        .filter(|p| keep(p))
        .map(|p| git(repo, &["show", &format!("{tag}:{p}")]))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Sample lines of an exposition embedded in any text: series name →
/// label names seen.
fn samples(text: &str, prefixes: &[&str]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim_start_matches([' ', '\t', '`', '"']);
        if !prefixes.iter().any(|p| line.starts_with(p)) {
            continue;
        }
        let name_end = line
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(line.len());
        let (name, rest) = line.split_at(name_end);
        let (labels, value) = match rest.strip_prefix('{') {
            Some(r) => match r.split_once("} ") {
                Some((labels, value)) => (labels, value),
                None => continue,
            },
            None => ("", rest),
        };
        // A value follows: a number, or a format verb the test fills in.
        let value = value.trim_start();
        if !value.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+' || c == '%')
            && !value.starts_with("NaN")
        {
            continue;
        }
        let keys: BTreeSet<String> = split_labels(labels)
            .into_iter()
            .filter(|k| k != "le" && k != "quantile")
            .collect();
        out.entry(name.to_string()).or_default().extend(keys);
    }
    out
}

/// The label names of `a="x",b="y \" z"`.
fn split_labels(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some((key, after)) = rest.split_once("=\"") {
        out.push(key.trim_start_matches(',').trim().to_string());
        let mut escaped = false;
        let mut end = after.len();
        for (i, c) in after.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    end = i;
                    break;
                }
                _ => escaped = false,
            }
        }
        rest = after.get(end + 1..).unwrap_or("");
    }
    out
}

/// Disagreements between the expected samples and the catalog at `version`.
fn compare(
    exporter: Exporter,
    version: Version,
    seen: &BTreeMap<String, BTreeSet<String>>,
    ignored_labels: &[&str],
    problems: &mut Vec<String>,
) {
    let catalog: Vec<&KnownMetric> = exporter
        .metrics()
        .iter()
        .filter(|m| m.exists_in(version))
        .collect();
    for (name, labels) in seen {
        // A series is its family's, or a histogram's or summary's
        // `_bucket`, `_sum` or `_count`.
        let family = std::iter::once(name.as_str())
            .chain(
                ["_bucket", "_sum", "_count"]
                    .iter()
                    .filter_map(|s| name.strip_suffix(s)),
            )
            .find(|f| catalog.iter().any(|m| m.name == *f));
        let Some(family) = family else {
            problems.push(format!("{version}: {name} is not in the catalog"));
            continue;
        };
        let rows: Vec<&&KnownMetric> = catalog.iter().filter(|m| m.name == family).collect();
        for l in labels {
            if !ignored_labels.contains(&l.as_str()) && !rows.iter().any(|m| m.has_label(l)) {
                problems.push(format!("{version}: {name} has label {l}"));
            }
        }
    }
}

#[test]
fn kube_state_metrics_store_tests_expect_only_catalog_families_and_labels() {
    let Some(repo) = clone_of("kubernetes/kube-state-metrics") else {
        return;
    };
    let mut problems = Vec::new();
    let mut checked = 0;
    for (version, tag) in releases(&repo, Version::new(2, 0)) {
        let text = texts(&repo, &tag, "internal/store", |p| p.ends_with("_test.go"));
        let seen = samples(&text, &["kube_"]);
        checked += seen.len();
        compare(
            Exporter::KubeStateMetrics,
            version,
            &seen,
            &[],
            &mut problems,
        );
    }
    assert!(checked > 1000, "only {checked} expected families read");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn cadvisor_exposition_fixtures_expect_only_catalog_families_and_labels() {
    let Some(repo) = clone_of("google/cadvisor") else {
        return;
    };
    let mut problems = Vec::new();
    let mut checked = 0;
    for (version, tag) in releases(&repo, Version::new(0, 24)) {
        let text = texts(&repo, &tag, ".", |p| {
            p.contains("/testdata/prometheus_") && !p.ends_with("_failure")
        });
        // The fixtures' container declares custom application metrics of
        // its own, which are not cAdvisor's families.
        let seen: BTreeMap<String, BTreeSet<String>> =
            samples(&text, &["container_", "machine_", "cadvisor_"])
                .into_iter()
                .filter(|(n, _)| !n.starts_with("container_custom_"))
                .collect();
        checked += seen.len();
        // `zone_name` comes from the fixtures' own container label function.
        compare(
            Exporter::Cadvisor,
            version,
            &seen,
            &["zone_name"],
            &mut problems,
        );
    }
    assert!(checked > 1000, "only {checked} expected families read");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
