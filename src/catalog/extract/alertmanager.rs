//! Alertmanager: its own `alertmanager_*` metrics (API, dispatcher,
//! notification pipeline, silences, notification log, cluster gossip,
//! configuration), read from the Prometheus registrations of every package.
//! Labels added on one code path only (`receiver_name` behind a feature
//! flag) are part of the family, as are the keys of `ConstLabels`
//! (`alertmanager_silences{state}`). `alertmanager_build_info` is the
//! version collector `main` registers, with that library's labels (`golibs`).

use std::path::Path;

use super::golibs;
use super::{find_clone, gopkg, release_tags, ExtractError, Releases};
use crate::catalog::Version;

pub const SOURCES: &[&str] = &[
    "prometheus/alertmanager",
    "prometheus/common",
    "prometheus/client_golang",
];

pub fn extract(clones: &Path) -> Result<Releases, ExtractError> {
    let repo = find_clone(clones, SOURCES[0])?;
    let scan = gopkg::Scan {
        roots: &["."],
        shared: &[],
        const_labels: true,
    };
    let libs = golibs::Libraries::new(clones);
    let mut cache = golibs::Cache::default();
    let mut releases = Releases::new();
    for (version, tag) in release_tags(&repo, Version::new(0, 20))? {
        let rows = releases.entry(version).or_default();
        rows.extend(golibs::program_rows(
            &libs,
            &mut cache,
            (&repo, &tag),
            Some("cmd/alertmanager/main.go"),
        )?);
        for (_, row) in gopkg::rows(&repo, &tag, &scan)? {
            if row.name.starts_with("alertmanager_") {
                rows.insert(row);
            }
        }
    }
    Ok(releases)
}
