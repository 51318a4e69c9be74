//! prometheus-operator: the operator's own `prometheus_operator_*` metrics
//! and the config-reloader sidecar's `reloader_*` metrics.
//!
//! - Operator: the Prometheus registrations of `pkg/`, `cmd/` and
//!   `internal/`. Each workload controller (Prometheus, Alertmanager,
//!   Thanos Ruler, Prometheus Agent) registers through a registerer
//!   wrapped with a `controller` label
//!   (`WrapRegistererWith(prometheus.Labels{"controller": …})`). The label
//!   is given to every metric of the packages that wrap it or register
//!   through the operator's `Metrics` (`c.metrics.MustRegister(…)`), and
//!   of `pkg/operator`, whose constructors receive the wrapped registerer:
//!   the closest mechanical reading of that data flow, which may allow
//!   `controller` on a metric or two registered on the root registry.
//! - Config-reloader: the reloader is Thanos' `pkg/reloader`, at the
//!   version the operator's `go.mod` requires (a tag, or the commit of a
//!   pseudo-version), read from a clone of thanos-io/thanos.

use std::collections::BTreeSet;
use std::path::Path;

use super::{find_clone, gopkg, release_tags, ExtractError, Releases, Repo, Row};
use crate::catalog::Version;

pub const SOURCES: &[&str] = &[
    "prometheus-operator/prometheus-operator",
    "thanos-io/thanos",
];

const WRAP: &str = "WrapRegistererWith(prometheus.Labels{\"controller\"";
/// Registration through the operator's `Metrics`, which holds the wrapped
/// registerer.
const HANDED: &str = ".metrics.MustRegister(";

pub fn extract(clones: &Path) -> Result<Releases, ExtractError> {
    let repo = find_clone(clones, SOURCES[0])?;
    let thanos = find_clone(clones, SOURCES[1])?;
    let thanos_tags: BTreeSet<String> = thanos.tags()?.into_iter().collect();
    let scan = gopkg::Scan {
        roots: &["pkg", "cmd", "internal"],
        shared: &[],
        const_labels: true,
    };
    let mut releases = Releases::new();
    for (version, tag) in release_tags(&repo, Version::new(0, 40))? {
        let mut controllers: BTreeSet<String> = ["pkg/operator".to_string()].into();
        for needle in [WRAP, HANDED] {
            for path in repo.grep_files(&tag, needle, &["pkg"])? {
                if let Some((dir, _)) = path.rsplit_once('/') {
                    controllers.insert(dir.to_string());
                }
            }
        }
        let rows = releases.entry(version).or_default();
        for (path, mut row) in gopkg::rows(&repo, &tag, &scan)? {
            if !row.name.starts_with("prometheus_operator_") {
                continue;
            }
            let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
            if controllers.contains(dir) {
                row.labels.insert("controller".to_string());
            }
            rows.insert(row);
        }
        if let Some(text) = repo.show(&tag, "go.mod") {
            if let Some(rev) = thanos_revision(&text, &thanos_tags) {
                rows.extend(reloader_rows(&thanos, &rev)?);
            }
        }
    }
    Ok(releases)
}

/// The Thanos revision `go.mod` requires: its tag when the clone has it,
/// else the commit of a pseudo-version (`v0.0.0-20200101120000-abcdef123456`).
pub fn thanos_revision(go_mod: &str, tags: &BTreeSet<String>) -> Option<String> {
    let line = go_mod.lines().find(|l| {
        let l = l.trim_start().trim_start_matches("require").trim_start();
        l.starts_with("github.com/thanos-io/thanos ")
    })?;
    let version = line.split_whitespace().find(|w| w.starts_with('v'))?;
    let version = version.trim_end_matches("+incompatible");
    if tags.contains(version) {
        return Some(version.to_string());
    }
    let hash = version.rsplit('-').next()?;
    (hash.len() == 12 && hash.bytes().all(|b| b.is_ascii_hexdigit())).then(|| hash.to_string())
}

fn reloader_rows(thanos: &Repo, rev: &str) -> Result<Vec<Row>, ExtractError> {
    let scan = gopkg::Scan {
        roots: &["pkg/reloader"],
        shared: &[],
        const_labels: true,
    };
    Ok(gopkg::rows(thanos, rev, &scan)?
        .into_iter()
        .map(|(_, row)| row)
        .filter(|row| row.name.starts_with("reloader_"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thanos_revision_is_a_tag_or_a_pseudo_version_commit() {
        let tags: BTreeSet<String> = ["v0.28.0".to_string()].into();
        let go_mod = "module x\n\nrequire (\n\tgithub.com/thanos-io/thanos v0.28.0\n\tgithub.com/thanos-io/thanos/extra v1.0.0\n)\n";
        assert_eq!(thanos_revision(go_mod, &tags).as_deref(), Some("v0.28.0"));
        let pseudo = "require github.com/thanos-io/thanos v0.29.1-0.20221115151135-cbd5e1f2ef26\n";
        assert_eq!(
            thanos_revision(pseudo, &tags).as_deref(),
            Some("cbd5e1f2ef26")
        );
        assert_eq!(thanos_revision("module x\n", &tags), None);
    }
}
