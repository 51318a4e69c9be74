//! node-exporter: the end-to-end test fixture `collector/fixtures/e2e-output.txt`
//! is the exporter's real output with most collectors enabled, so each
//! release's families, types and labels are read from it as exposition text.
//! The fixture runs on canned /proc and /sys files and leaves some collectors
//! out (filesystem, for one), so the descriptors in `collector/*.go`
//! (`prometheus.NewDesc`) add the families it lacks; a name built from data
//! at run time (`node_memory_<meminfo key>`) becomes a name family.
//! `node_exporter_build_info`, which the fixture lists without samples,
//! takes the labels of the version collector `main` registers (`golibs`).

use std::path::Path;

use std::collections::BTreeSet;

use super::golibs::{self, GoMod};
use super::{exposition, find_clone, gosrc, release_tags, ExtractError, Releases, Row};
use crate::catalog::Version;

pub const SOURCES: &[&str] = &[
    "prometheus/node_exporter",
    "prometheus/common",
    "prometheus/client_golang",
];

pub fn extract(clones: &Path) -> Result<Releases, ExtractError> {
    let repo = find_clone(clones, SOURCES[0])?;
    let libs = golibs::Libraries::new(clones);
    let mut releases = Releases::new();
    let field_init = regex::Regex::new(r#"(?m)^\s*(subsystem|namespace)\s*:\s*"(\w+)",\s*$"#)
        .unwrap_or_else(|e| panic!("{e}"));

    for (version, tag) in release_tags(&repo, Version::new(1, 0))? {
        let Some(text) = repo.show(&tag, "collector/fixtures/e2e-output.txt") else {
            continue;
        };
        let mut rows: Vec<Row> = exposition::rows(&text);
        let known: BTreeSet<String> = rows.iter().map(|r| r.name.clone()).collect();
        let mut sources = Vec::new();
        for path in repo.files(&tag, "collector")? {
            if path.ends_with(".go") && !path.ends_with("_test.go") && !path.contains("/fixtures/")
            {
                sources.extend(repo.show(&tag, &path));
            }
        }
        let mut symbols = gosrc::Symbols::default();
        for t in &sources {
            symbols.add_file(t);
        }
        for t in &sources {
            // A file's own constants win over same-named ones elsewhere.
            let mut local = symbols.clone();
            local.add_file(t);
            // Collectors keep their subsystem in a struct field
            // (`subsystem: "network"`, read as `c.subsystem`).
            for c in field_init.captures_iter(t) {
                local.consts.insert(c[1].to_string(), c[2].to_string());
            }
            // Names built at run time from a prefix (`node_hwmon_<sensor
            // type>_<element>`) are a name family; never the whole exporter.
            let built = gosrc::prefix_families(t, &local)
                .into_iter()
                .filter(|r| r.name != "node_*" && !known.contains(&r.name));
            rows.extend(built);
            // And from a subsystem, by a helper (`node_ethtool_<stat>`).
            rows.extend(
                gosrc::helper_families(t, &local)
                    .into_iter()
                    .filter(|r| !known.contains(&r.name)),
            );
            for row in gosrc::descs(t, &local) {
                if row.name == "node_*" {
                    // A whole name from a struct field the source sets
                    // elsewhere (BSD's boot time, up to 1.2): "any name of
                    // the exporter" would let every typo through, so such a
                    // name is left to the fixture, which has the real one.
                    continue;
                }
                if !known.contains(&row.name) {
                    rows.push(row);
                } else if !row.labels.contains("*") {
                    // A fixture family without samples shows no labels;
                    // its descriptor names them.
                    if let Some(r) = rows.iter_mut().find(|r| r.name == row.name) {
                        r.labels.extend(row.labels);
                    }
                }
            }
        }
        // The same for the names of a name family (`node_network_*`, one
        // per /proc/net/dev field) that the fixture lists without samples.
        let families: Vec<Row> = rows
            .iter()
            .filter(|r| r.name.ends_with('*'))
            .cloned()
            .collect();
        for family in families {
            let prefix = family.name.trim_end_matches('*');
            for r in rows.iter_mut() {
                if r.name.starts_with(prefix) && !r.name.ends_with('*') && r.labels.is_empty() {
                    r.labels.extend(family.labels.iter().cloned());
                }
            }
        }
        // The fixture lists the build info family without its samples.
        let go_mod = GoMod::parse(&repo.show(&tag, "go.mod").unwrap_or_default());
        let main = repo.show(&tag, "node_exporter.go").unwrap_or_default();
        if let Some(row) = golibs::build_info(&libs, (&repo, &tag), &go_mod, &main)? {
            rows.retain(|r| r.name != row.name);
            rows.push(row);
        }
        // A name the source builds from a value it reads at run time
        // (`?_input`, `Unknown`) is no name the exporter serves.
        rows.retain(|r| is_name_served(&r.name));
        releases.insert(version, rows.into_iter().collect());
    }
    Ok(releases)
}

/// Whether `name` can be one of the exporter's names: a metric name that
/// starts lower-case, as every family it serves does (`node_*`, `go_*`,
/// `process_*`, `promhttp_*`), or a name family of one (`node_hwmon_*`).
fn is_name_served(name: &str) -> bool {
    let name = name.strip_suffix('*').unwrap_or(name);
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_read_at_run_time_are_not_served() {
        for served in [
            "node_memory_MemTotal_bytes",
            "node_hwmon_*",
            "go_goroutines",
        ] {
            assert!(super::is_name_served(served), "{served}");
        }
        for junk in ["?_input", "Unknown", "Unknown_input", "node-x", ""] {
            assert!(!super::is_name_served(junk), "{junk}");
        }
    }
}
