//! CoreDNS: the metrics of the server and of every plugin, read from the
//! Prometheus registrations in the whole tree (each plugin's `metrics.go`,
//! and wherever else a plugin registers: `setup.go`, `handler.go`,
//! `overloaded.go`), with the `coredns` namespace from `plugin/plugin.go`
//! and each plugin's subsystem constant.
//!
//! Two value sets are fixed by the server's report code
//! (`plugin/metrics/vars`): `family` is `1` or `2`, and the query `type`
//! of the request counters is one of the monitored types (the
//! `dns.Type…` keys of `monitorType`, in `plugin/pkg/dnsutil/monitor.go`
//! for 1.8.2 and 1.8.3) or `other`.

use std::collections::BTreeSet;
use std::path::Path;

use regex::Regex;

use super::golibs;
use super::{find_clone, gopkg, release_tags, ExtractError, Releases};
use crate::catalog::Version;

pub const SOURCES: &[&str] = &["coredns/coredns", "prometheus/client_golang"];

const VARS: &str = "plugin/metrics/vars";
const MONITOR: &str = "plugin/pkg/dnsutil/monitor.go";

pub fn extract(clones: &Path) -> Result<Releases, ExtractError> {
    let repo = find_clone(clones, SOURCES[0])?;
    let scan = gopkg::Scan {
        roots: &["plugin", "core"],
        shared: &["plugin/plugin.go"],
        const_labels: true,
    };
    let libs = golibs::Libraries::new(clones);
    let mut cache = golibs::Cache::default();
    let mut releases = Releases::new();
    for (version, tag) in release_tags(&repo, Version::new(1, 6))? {
        let mut vars = String::new();
        for path in repo.files(&tag, VARS)? {
            if path.ends_with(".go") && !path.ends_with("_test.go") {
                vars.extend(repo.show(&tag, &path));
            }
        }
        // 1.8.2 and 1.8.3 kept the monitored types in a shared package.
        vars.extend(repo.show(&tag, MONITOR));
        let (families, types) = report_values(&vars);
        let rows = releases.entry(version).or_default();
        // `go_*` and `process_*`: the Go and process collectors.
        rows.extend(golibs::program_rows(
            &libs,
            &mut cache,
            (&repo, &tag),
            None,
        )?);
        for (path, mut row) in gopkg::rows(&repo, &tag, &scan)? {
            if !row.name.starts_with("coredns_") {
                continue;
            }
            if path.starts_with(VARS) {
                if row.labels.contains("family") && !families.is_empty() {
                    row.values.insert("family".into(), families.clone());
                }
                if row.labels.contains("type") && !types.is_empty() {
                    row.values.insert("type".into(), types.clone());
                }
            }
            rows.insert(row);
        }
    }
    Ok(releases)
}

/// The `family` values (`fam := "1"`, `fam = "2"`) and the monitored query
/// types (`dns.TypeAAAA: {}` in `monitorType`, plus the `other` bucket) of
/// the report code.
pub fn report_values(vars: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let fam = Regex::new(r#"\bfam\s*:?=\s*"(\d)""#).unwrap_or_else(|e| panic!("{e}"));
    let families = fam.captures_iter(vars).map(|c| c[1].to_string()).collect();
    let mut types = BTreeSet::new();
    if let Some(start) = vars.find("monitorType = map[uint16]struct{}{") {
        let open = start + "monitorType = map[uint16]struct{}".len();
        if let Some(body) = super::gosrc::block(vars, open) {
            let ty = Regex::new(r"dns\.Type([A-Z0-9]+)\s*:").unwrap_or_else(|e| panic!("{e}"));
            types.extend(ty.captures_iter(body).map(|c| c[1].to_string()));
            if !types.is_empty() && vars.contains("\"other\"") {
                types.insert("other".to_string());
            }
        }
    }
    (families, types)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_and_type_values_come_from_the_report_code() {
        let vars = r#"
func Report(req request.Request) {
	fam := "1"
	if req.Family() == 2 {
		fam = "2"
	}
}
var monitorType = map[uint16]struct{}{
	dns.TypeAAAA: {},
	dns.TypeA:    {},
	// Meta Qtypes
	dns.TypeIXFR: {},
}
const other = "other"
"#;
        let (families, types) = report_values(vars);
        assert_eq!(families.into_iter().collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(
            types.into_iter().collect::<Vec<_>>(),
            ["A", "AAAA", "IXFR", "other"]
        );
    }
}
