//! HAProxy's built-in exporter (promex), read at every release tag.
//!
//! The fields and their scopes come from one of two tables:
//! - up to 3.1, promex's own `promex_global_metrics` and `promex_st_metrics`
//!   (`.n = IST("name")`, `.type = PROMEX_MT_*`, `.flags = PROMEX_FL_*_METRIC`);
//! - from 3.2, the stats column tables `stat_cols_info` (src/stats.c) and
//!   `stat_cols_px` (src/stats-proxy.c): exported when they have an
//!   `alt_name`, scoped by their `STATS_PX_CAP_*` capability, typed by their
//!   field nature (counter for `FN_COUNTER`, and promex's own list of
//!   historical counters), with promex's per-scope name overrides.
//!
//! Labels come from the dump function of each scope
//! (`promex_dump_<scope>_metrics`): every label it always sets (`proxy`,
//! `server`, `listener`, `desc`), plus `state` and `code` for the fields of
//! the `case` group that sets them, with the values of the state array or
//! the HTTP code array that group reads. A `state` filled from the health
//! check status names stays open.
//!
//! Stick tables and resolvers have scopes of their own: promex's
//! `promex_sticktable_metrics` table up to 2.9, and from 3.0 the promex
//! modules a source file registers (`promex_register_module`), each named
//! `haproxy_<module>_<metric>` and labelled by its `fill_ts` function.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::re;
use super::{find_clone, release_tags, release_version, ExtractError, Releases, Row};
use crate::catalog::Version;

pub const SOURCES: &[&str] = &["haproxy/haproxy", "its stable branches (haproxy-X.Y)"];

const PROMEX: &str = "addons/promex/service-prometheus.c";

/// One exported field: its index name (`ST_F_QCUR`, `ST_I_PX_QCUR`), metric
/// name, type and scopes.
struct Field {
    index: String,
    name: String,
    counter: bool,
    scopes: BTreeSet<&'static str>,
}

const SCOPES: [(&str, &str); 4] = [
    ("frontend", "front"),
    ("listener", "listener"),
    ("backend", "back"),
    ("server", "srv"),
];

/// The IST strings of a `promex_<x>[…] = { [..] = IST("…"), … }` array.
fn ist_array(src: &str, array: &str) -> Option<BTreeSet<String>> {
    let start = src.find(&format!("{array}["))?;
    let body_start = start + src[start..].find('{')?;
    let body_end = body_start + src[body_start..].find("};")?;
    let item = pattern!(r#"IST\("([^"]*)"\)"#);
    Some(
        item.captures_iter(&src[body_start..body_end])
            .map(|c| c[1].to_string())
            .collect(),
    )
}

/// The body of `static int <name>(` up to the next function.
fn function<'a>(src: &'a str, name: &str) -> &'a str {
    let Some(start) = src.find(&format!("static int {name}(")) else {
        return "";
    };
    let rest = &src[start..];
    let end = rest[1..]
        .find("\nstatic ")
        .map(|i| i + 1)
        .unwrap_or(rest.len());
    &rest[..end]
}

/// Per field index: the `state`/`code` labels and their values (None: open).
type SpecialLabels = BTreeMap<String, Vec<(String, Option<BTreeSet<String>>)>>;

/// Labels a dump function sets: the ones it always sets, and per field
/// index the `state`/`code` labels with their values (None: open).
struct ScopeLabels {
    common: BTreeSet<String>,
    special: SpecialLabels,
}

fn scope_labels(src: &str, body: &str) -> ScopeLabels {
    let label = pattern!(r#"\.name\s*=\s*ist\("(\w+)"\)"#);
    let case = pattern!(r"^\s*case\s+(\w+)\s*:");
    let array = pattern!(r"\b(promex_\w+_(?:st|code))\[");
    let lines: Vec<&str> = body.lines().collect();
    let mut common = BTreeSet::new();
    let mut special = SpecialLabels::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(c) = label.captures(line) else {
            continue;
        };
        let name = c[1].to_string();
        // `mod` labels the extra counters of stats modules, which are not
        // fields; `desc` appears only when a scrape asks for it
        // (`?desc-labels`), so a selector on it is the scrape's choice.
        let opt_in = (i.saturating_sub(2)..i).any(|j| lines[j].contains("PROMEX_FL_DESC_LABELS"));
        if name == "mod" || opt_in {
            continue;
        }
        if name != "state" && name != "code" {
            common.insert(name);
            continue;
        }
        // The case group above: the nearest `case` line and the ones
        // directly before it.
        let Some(last) = (0..i).rev().find(|&j| case.is_match(lines[j])) else {
            continue;
        };
        let mut first = last;
        while first > 0 && (case.is_match(lines[first - 1]) || lines[first - 1].trim().is_empty()) {
            first -= 1;
        }
        let window = lines[first..(i + 3).min(lines.len())].join("\n");
        let values = array.captures(&window).and_then(|a| ist_array(src, &a[1]));
        for l in &lines[first..=last] {
            if let Some(c) = case.captures(l) {
                special
                    .entry(c[1].to_string())
                    .or_default()
                    .push((name.clone(), values.clone()));
            }
        }
    }
    ScopeLabels { common, special }
}

/// Labels of process-wide fields: each label the global dump function sets
/// belongs to the info field named nearest above it (`ST_I_INF_BUILD_INFO`).
fn info_labels(body: &str) -> BTreeMap<String, BTreeSet<String>> {
    let label = pattern!(r#"\.name\s*=\s*ist\("(\w+)"\)"#);
    let field = pattern!(r"\b((?:ST_I_)?INF_[A-Z_]+)\b");
    let lines: Vec<&str> = body.lines().collect();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(c) = label.captures(line) else {
            continue;
        };
        let near = (0..=i).rev().find_map(|j| {
            field
                .captures_iter(lines[j])
                .filter(|f| !f[1].ends_with("_MAX") && !f[1].ends_with("TOTAL_FIELDS"))
                .last()
                .map(|f| f[1].to_string())
        });
        if let Some(index) = near {
            out.entry(index).or_default().insert(c[1].to_string());
        }
    }
    out
}

/// Fields of promex's own tables (up to 3.1).
fn promex_fields(src: &str, table: &str) -> Vec<Field> {
    let entry = pattern!(
        r#"\[(\w+)\s*\]\s*=\s*\{\s*\.n\s*=\s*IST\("(\w+)"\)\s*,\s*\.type\s*=\s*PROMEX_MT_(\w+)\s*,\s*\.flags\s*=\s*\(?([^}]*)\}"#
    );
    let Some(start) = src.find(&format!("{table}[")) else {
        return Vec::new();
    };
    let end = start + src[start..].find("};").unwrap_or(src.len() - start);
    entry
        .captures_iter(&src[start..end])
        .filter(|c| !c[0].trim_start().starts_with("//"))
        .map(|c| {
            let flags = &c[4];
            let scopes = [
                ("PROMEX_FL_FRONT_METRIC", "frontend"),
                ("PROMEX_FL_LI_METRIC", "listener"),
                ("PROMEX_FL_BACK_METRIC", "backend"),
                ("PROMEX_FL_SRV_METRIC", "server"),
            ]
            .into_iter()
            .filter(|(f, _)| flags.contains(f))
            .map(|(_, s)| s)
            .collect();
            Field {
                index: c[1].to_string(),
                name: c[2].to_string(),
                counter: &c[3] == "COUNTER",
                scopes,
            }
        })
        .collect()
}

/// Fields of the stats column tables (from 3.2).
fn column_fields(table_src: &str, fill_src: &str, promex: &str, global: bool) -> Vec<Field> {
    let line = pattern!(r"(?m)^\s*\[(\w+)\s*\]\s*=\s*(.*)$");
    let alt = pattern!(r#"\.alt_name\s*=\s*"(\w+)""#);
    let me_new = pattern!(r#"ME_NEW_\w+\(\s*"\w+"\s*,\s*"(\w+)"\s*,\s*FN_(\w+)"#);
    let cap = pattern!(r"STATS_PX_CAP_(\w+)");
    let gettype = function(promex, "promex_global_gettype_dummy");
    let _ = gettype;
    let historic: BTreeSet<String> = {
        let start = promex.find("promex_global_gettype(").unwrap_or(0);
        let body = &promex[start..];
        let end = body.find("\n}").unwrap_or(body.len());
        pattern!(r"case\s+(\w+)\s*:")
            .captures_iter(&body[..end])
            .map(|c| c[1].to_string())
            .collect()
    };
    let mut out = Vec::new();
    for c in line.captures_iter(table_src) {
        let (index, rest) = (c[1].to_string(), &c[2]);
        let (name, nature) = if let Some(m) = me_new.captures(rest) {
            (m[1].to_string(), Some(m[2].to_string()))
        } else if let Some(a) = alt.captures(rest) {
            (a[1].to_string(), None)
        } else {
            continue;
        };
        let nature = nature.or_else(|| {
            let fill = re(&format!(r"{index}\b[^;]{{0,200}}?mkf_\w+\(\s*FN_(\w+)"));
            fill.captures(fill_src).map(|f| f[1].to_string())
        });
        let counter = nature.as_deref() == Some("COUNTER") || (global && historic.contains(&index));
        let scopes = if global {
            BTreeSet::new()
        } else {
            let mut s = BTreeSet::new();
            for cap in cap.captures_iter(rest) {
                let flags = &cap[1];
                match flags {
                    "FE" => _ = s.insert("frontend"),
                    "BE" => _ = s.insert("backend"),
                    "SRV" => _ = s.insert("server"),
                    "LI" => _ = s.insert("listener"),
                    _ if flags.len() == 4 => {
                        for (ch, scope) in flags
                            .chars()
                            .zip(["listener", "frontend", "backend", "server"])
                        {
                            if ch != '_' {
                                s.insert(scope);
                            }
                        }
                    }
                    _ => {}
                }
            }
            s
        };
        out.push(Field {
            index,
            name,
            counter,
            scopes,
        });
    }
    out
}

/// The release points of every clone: the main repository's tags (each
/// branch's `.0`), then the patch releases of the stable-branch clones
/// next to it (`haproxy-2.6`, `<owner>+haproxy-2.6`). A stable branch lives
/// in a repository of its own, and copies of it do not always carry its
/// tags, so a release is its tag or, failing that, the commit that
/// released it (`[RELEASE] Released version 2.6.12`).
fn stable_releases(
    clones: &Path,
    tags: &mut BTreeMap<Version, (usize, String)>,
) -> Result<Vec<super::Repo>, ExtractError> {
    let mut repos = vec![find_clone(clones, SOURCES[0])?];
    let mut stable: Vec<std::path::PathBuf> = std::fs::read_dir(clones)
        .map(|dir| {
            dir.flatten()
                .filter(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let branch = name.rsplit('+').next().unwrap_or(&name);
                    branch
                        .trim_end_matches(".git")
                        .strip_prefix("haproxy-")
                        .is_some_and(|v| release_version(&format!("{v}.0")).is_some())
                })
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    stable.sort();
    for dir in stable {
        let git = [dir.join("repo"), dir.clone()]
            .into_iter()
            .find(|p| p.join("HEAD").is_file() || p.join(".git").exists());
        if let Some(git) = git {
            repos.push(super::Repo::new(git));
        }
    }
    for (i, repo) in repos.iter().enumerate() {
        if let Ok(found) = release_tags(repo, Version::new(2, 0)) {
            for (version, tag) in found {
                tags.entry(version).or_insert((i, tag));
            }
        }
        if i == 0 {
            continue;
        }
        let mut released = repo.commits_with_subject("[RELEASE] Released version ")?;
        // Oldest last in the log: keep the first commit per version in
        // history order, whatever the branch listing order.
        released.sort();
        for (commit, version) in released {
            if let Some(v) = release_version(&version).filter(|v| *v >= Version::new(2, 0)) {
                tags.entry(v).or_insert((i, commit));
            }
        }
    }
    if tags.is_empty() {
        return Err(ExtractError::NoReleases {
            repo: SOURCES[0].to_string(),
        });
    }
    Ok(repos)
}

pub fn extract(clones: &Path) -> Result<Releases, ExtractError> {
    let mut tags: BTreeMap<Version, (usize, String)> = BTreeMap::new();
    let repos = stable_releases(clones, &mut tags)?;
    let mut releases = Releases::new();
    for (version, (i, tag)) in tags {
        let repo = &repos[i];
        let Some(promex) = repo.show(&tag, PROMEX) else {
            continue;
        };
        let (global, px) = if promex.contains("promex_st_metrics[") {
            (
                promex_fields(&promex, "promex_global_metrics"),
                promex_fields(&promex, "promex_st_metrics"),
            )
        } else {
            let stats = repo.show(&tag, "src/stats.c").unwrap_or_default();
            let proxy = repo.show(&tag, "src/stats-proxy.c").unwrap_or_default();
            (
                column_fields(&stats, &stats, &promex, true),
                column_fields(&proxy, &proxy, &promex, false),
            )
        };
        let mut modules = Vec::new();
        for path in repo.grep_files(&tag, "promex_register_module", &["src", "addons"])? {
            if path.ends_with(".c") {
                modules.extend(repo.show(&tag, &path));
            }
        }
        let rows = releases.entry(version).or_default();
        rows.extend(sticktable_rows(&promex));
        for text in &modules {
            rows.extend(module_rows(text));
        }
        let global_labels = info_labels(function(&promex, "promex_dump_global_metrics"));
        for f in &global {
            let mut row = Row::new(
                format!("haproxy_process_{}", f.name),
                if f.counter { "counter" } else { "gauge" },
                &[],
            );
            // `desc` and `node` are set on their own fields only.
            if let Some(extra) = global_labels.get(&f.index) {
                row.labels.extend(extra.iter().cloned());
            }
            rows.insert(row);
        }
        for (scope, short) in SCOPES {
            let labels = scope_labels(
                &promex,
                function(&promex, &format!("promex_dump_{short}_metrics")),
            );
            let overrides = ist_overrides(&promex, &format!("promex_st_{short}_metrics_names"));
            for f in px.iter().filter(|f| f.scopes.contains(scope)) {
                let name = overrides.get(&f.index).unwrap_or(&f.name);
                let mut row = Row {
                    name: format!("haproxy_{scope}_{name}"),
                    kind: if f.counter { "counter" } else { "gauge" },
                    labels: labels.common.clone(),
                    values: BTreeMap::new(),
                };
                if let Some(extra) = labels.special.get(&f.index) {
                    for (l, v) in extra {
                        row.labels.insert(l.clone());
                        if let Some(v) = v {
                            row.values
                                .entry(l.clone())
                                .or_default()
                                .extend(v.iter().cloned());
                        }
                    }
                }
                rows.insert(row);
            }
        }
    }
    Ok(releases)
}

/// The stick-table gauges promex dumps itself (up to 2.9): the
/// `promex_sticktable_metrics` table, named with the prefix its dump
/// function writes and labelled by what that function sets.
pub fn sticktable_rows(promex: &str) -> Vec<Row> {
    let body = function(promex, "promex_dump_sticktable_metrics");
    let Some(prefix) = pattern!(r#"prefix\s*=\s*IST\("(\w+)"\)"#).captures(body) else {
        return Vec::new();
    };
    let labels = scope_labels(promex, body).common;
    promex_fields(promex, "promex_sticktable_metrics")
        .into_iter()
        .map(|f| Row {
            name: format!("{}{}", &prefix[1], f.name),
            kind: if f.counter { "counter" } else { "gauge" },
            labels: labels.clone(),
            values: BTreeMap::new(),
        })
        .collect()
}

/// The families of the promex modules a source file registers (from 3.0:
/// stick tables, resolvers): `haproxy_<module>_<metric>` for each metric its
/// `metric_info` function describes (a literal name, or the `.name` of each
/// entry of the stats table it indexes, less the entries it skips), with
/// the labels its `fill_ts` function sets.
pub fn module_rows(src: &str) -> Vec<Row> {
    let module = pattern!(r"struct\s+promex_module\s+\w+\s*=\s*\{");
    let field = |body: &str, key: &str| {
        re(&format!(r"\.{key}\s*=\s*(?:IST\(\s*)?(\w+)"))
            .captures(body)
            .map(|c| c[1].to_string())
    };
    let literal = pattern!(r#"\.n\s*=\s*ist\("(\w+)"\)\s*,\s*\.type\s*=\s*PROMEX_MT_(\w+)"#);
    let indexed = pattern!(
        r"\.n\s*=\s*ist\(\s*(\w+)\[\s*\w+\s*\]\.name\s*\)\s*,\s*\.type\s*=\s*PROMEX_MT_(\w+)"
    );
    let skipped = pattern!(r"\bid\s*==\s*(\w+)");
    let entry = pattern!(r#"\[(\w+)\]\s*=\s*\{\s*\.name\s*=\s*"(\w+)""#);
    let label = pattern!(r#"labels\[\d+\]\.name\s*=\s*ist\("(\w+)"\)"#);
    let mut rows = Vec::new();
    for m in module.find_iter(src) {
        let Some(body) = super::gosrc::block(src, m.end() - 1) else {
            continue;
        };
        let name = pattern!(r#"\.name\s*=\s*IST\("(\w+)"\)"#)
            .captures(body)
            .map(|c| c[1].to_string());
        let (Some(name), Some(info), Some(fill)) =
            (name, field(body, "metric_info"), field(body, "fill_ts"))
        else {
            continue;
        };
        let info = function(src, &info);
        let labels: BTreeSet<String> = label
            .captures_iter(function(src, &fill))
            .map(|c| c[1].to_string())
            .collect();
        let kind = |t: &str| if t == "COUNTER" { "counter" } else { "gauge" };
        let mut metrics: Vec<(String, &'static str)> = literal
            .captures_iter(info)
            .map(|c| (c[1].to_string(), kind(&c[2])))
            .collect();
        let skip: BTreeSet<&str> = skipped
            .captures_iter(info)
            .filter_map(|c| c.get(1).map(|m| m.as_str()))
            .collect();
        for c in indexed.captures_iter(info) {
            let def = re(&format!(r"\b{}\[\w*\]\s*=\s*\{{", regex::escape(&c[1])));
            let Some(open) = def.find(src).map(|d| d.end() - 1) else {
                continue;
            };
            let table = super::gosrc::block(src, open).unwrap_or("");
            for e in entry.captures_iter(table) {
                if !skip.contains(&e[1]) {
                    metrics.push((e[2].to_string(), kind(&c[2])));
                }
            }
        }
        for (metric, kind) in metrics {
            rows.push(Row {
                name: format!("haproxy_{name}_{metric}"),
                kind,
                labels: labels.clone(),
                values: BTreeMap::new(),
            });
        }
    }
    rows
}

/// `[INDEX] = IST("name")` entries of a name-override array.
fn ist_overrides(src: &str, array: &str) -> BTreeMap<String, String> {
    let Some(start) = src.find(&format!("{array}[")) else {
        return BTreeMap::new();
    };
    let end = start + src[start..].find("};").unwrap_or(src.len() - start);
    pattern!(r#"\[(\w+)\s*\]\s*=\s*IST\("(\w+)"\)"#)
        .captures_iter(&src[start..end])
        .map(|c| (c[1].to_string(), c[2].to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(rows: Vec<Row>) -> Vec<(String, &'static str, Vec<String>)> {
        let mut out: Vec<_> = rows
            .into_iter()
            .map(|r| (r.name, r.kind, r.labels.into_iter().collect()))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn promex_dumps_stick_tables_with_their_own_labels() {
        let src = r#"
const struct promex_metric promex_sticktable_metrics[STKT_TOTAL] = {
	[STKT_CAP] = { .n = IST("capacity"), .type = PROMEX_MT_GAUGE, .flags = PROMEX_FL_STICKTABLE_METRIC },
	[STKT_HITS] = { .n = IST("hits_total"), .type = PROMEX_MT_COUNTER, .flags = PROMEX_FL_STICKTABLE_METRIC },
};

static int promex_dump_sticktable_metrics(struct appctx *appctx, struct htx *htx)
{
	static struct ist prefix = IST("haproxy_sticktable_");
	labels[0].name  = ist("table");
	labels[0].value = ist(t->id);
}

static int promex_dump_other(struct appctx *appctx)
{
}
"#;
        assert_eq!(
            summary(sticktable_rows(src)),
            [
                (
                    "haproxy_sticktable_capacity".into(),
                    "gauge",
                    vec!["table".into()]
                ),
                (
                    "haproxy_sticktable_hits_total".into(),
                    "counter",
                    vec!["table".into()]
                ),
            ]
        );
    }

    #[test]
    fn registered_modules_name_their_metrics_from_literals_or_their_stats_table() {
        let src = r#"
static struct stat_col lookup_stats[] = {
	[LK_STAT_ID]    = { .name = "id",      .desc = "ID" },
	[LK_STAT_SENT]  = { .name = "sent",    .desc = "Sent" },
	[LK_STAT_LOST]  = { .name = "lost",    .desc = "Lost" },
};

static int lk_metric_info(unsigned int id, struct promex_metric *metric, struct ist *desc)
{
	if (id == LK_STAT_ID)
		return 0;
	*metric = (struct promex_metric){ .n = ist(lookup_stats[id].name), .type = PROMEX_MT_COUNTER, .flags = PROMEX_FL_MODULE_METRIC };
	return 1;
}

static int lk_fill_ts(void *unused, void *ctx, unsigned int id, struct promex_label *labels, struct field *field)
{
	labels[0].name  = ist("pool");
	labels[1].name  = ist("peer");
	return 1;
}

static struct promex_module promex_lookup_module = {
	.name        = IST("lookup"),
	.metric_info = lk_metric_info,
	.fill_ts     = lk_fill_ts,
};

static int cache_metric_info(unsigned int id, struct promex_metric *metric, struct ist *desc)
{
	switch (id) {
		case CACHE_SIZE:
			*metric = (struct promex_metric){ .n = ist("size"), .type = PROMEX_MT_GAUGE, .flags = PROMEX_FL_MODULE_METRIC };
			break;
	}
	return 1;
}

static int cache_fill_ts(void *unused, void *ctx, unsigned int id, struct promex_label *labels, struct field *field)
{
	labels[0].name  = ist("name");
	return 1;
}

static struct promex_module promex_cache_module = {
	.name        = IST("cache"),
	.metric_info = cache_metric_info,
	.fill_ts     = cache_fill_ts,
};
"#;
        let pool_peer = vec!["peer".to_string(), "pool".to_string()];
        assert_eq!(
            summary(module_rows(src)),
            [
                ("haproxy_cache_size".into(), "gauge", vec!["name".into()]),
                ("haproxy_lookup_lost".into(), "counter", pool_peer.clone()),
                ("haproxy_lookup_sent".into(), "counter", pool_peer),
            ]
        );
    }
}
