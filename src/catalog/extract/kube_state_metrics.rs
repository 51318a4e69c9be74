//! kube-state-metrics: every family generator in `internal/store/*.go`
//! (`NewFamilyGenerator[WithStability]("kube_…", help, metric.<Type>, …)`),
//! with the union of the label keys its samples set, the resource's default
//! labels (the `wrap<Resource>Func` that merges them in), and a prefix label
//! `<prefix>_*` wherever a Kubernetes map becomes labels through
//! `kubeMapToPrometheusLabels("<prefix>", …)`. KSM's own telemetry comes from
//! the Prometheus client registrations elsewhere in the tree.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use regex::Regex;

use super::{find_clone, gosrc, release_tags, ExtractError, Releases, Row};
use crate::catalog::Version;

pub const SOURCES: &[&str] = &["kubernetes/kube-state-metrics"];

pub fn extract(clones: &Path) -> Result<Releases, ExtractError> {
    let repo = find_clone(clones, SOURCES[0])?;
    let mut releases = Releases::new();
    for (version, tag) in release_tags(&repo, Version::new(2, 0))? {
        let mut store = Vec::new();
        for path in repo.files(&tag, "internal/store")? {
            if path.ends_with(".go") && !path.ends_with("_test.go") {
                store.extend(repo.show(&tag, &path));
            }
        }
        let mut telemetry = Vec::new();
        for path in repo.grep_files(&tag, "Opts{", &["pkg", "internal", "main.go"])? {
            if path.ends_with(".go")
                && !path.ends_with("_test.go")
                && !path.starts_with("internal/store/")
            {
                telemetry.extend(repo.show(&tag, &path));
            }
        }
        let helpers = prefix_helpers(&store);
        let rows = releases.entry(version).or_default();
        for text in &store {
            rows.extend(families(text, &helpers));
        }
        let mut symbols = gosrc::Symbols::default();
        for t in &telemetry {
            symbols.add_file(t);
        }
        for t in &telemetry {
            rows.extend(gosrc::metrics(t, &symbols));
        }
    }
    Ok(releases)
}

fn re(s: &str) -> Regex {
    Regex::new(s).unwrap_or_else(|e| panic!("pattern {s}: {e}"))
}

/// A pattern compiled once per process.
macro_rules! pattern {
    ($s:expr) => {{
        static P: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| re($s));
        &*P
    }};
}

/// Helper functions that turn a Kubernetes map into prefixed labels, with
/// their prefix: those passing a literal prefix to the mapping function,
/// and those calling such a helper in turn.
fn prefix_helpers(store: &[String]) -> BTreeMap<String, String> {
    let def = pattern!(r"(?m)^func\s+(\w+)\s*\(");
    let literal = pattern!(r#"\w*PrometheusLabels\w*\([^()]*?"(\w+)"\s*\)"#);
    let mut bodies = Vec::new();
    for text in store {
        for m in def.captures_iter(text) {
            let Some(start) = m.get(0).map(|m| m.end()) else {
                continue;
            };
            let Some(open) = text[start..].find("{\n").map(|i| i + start) else {
                continue;
            };
            if let Some(body) = gosrc::block(text, open) {
                bodies.push((m[1].to_string(), body));
            }
        }
    }
    let mut out = BTreeMap::new();
    for (name, body) in &bodies {
        if let Some(c) = literal.captures(body) {
            out.insert(name.clone(), c[1].to_string());
        }
    }
    for _ in 0..2 {
        for (name, body) in &bodies {
            if out.contains_key(name) {
                continue;
            }
            let inherited = out
                .iter()
                .find(|(helper, _)| body.contains(&format!("{helper}(")))
                .map(|(_, p)| p.clone());
            if let Some(p) = inherited {
                out.insert(name.clone(), p);
            }
        }
    }
    out
}

/// The families one store file generates.
pub fn families(text: &str, helpers: &BTreeMap<String, String>) -> Vec<Row> {
    let mut symbols = gosrc::Symbols::default();
    symbols.add_file(text);
    symbols.drop_local_lists(text);
    let call = pattern!(r"NewFamilyGenerator(?:WithStability)?\(");
    let wrap_use = pattern!(r"\b(wrap\w*Func)\(");
    let keys = pattern!(r"LabelKeys\s*(?::|=)\s*");
    // kubeMapToPrometheusLabels, createPrometheusLabelKeysValues, ….
    let prefix = pattern!(r#"\w*PrometheusLabel\w*\(\s*"([^"]*)""#);
    let mut out = Vec::new();
    for m in call.find_iter(text) {
        let Some(args) = gosrc::block(text, m.end() - 1) else {
            continue;
        };
        let mut parts = args.splitn(4, ',');
        let (Some(name), Some(_help), Some(kind)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let Some(name) = symbols.string(name) else {
            continue;
        };
        if !name.starts_with("kube_") {
            continue;
        }
        let kind = match kind.trim() {
            "metric.Counter" => "counter",
            _ => "gauge",
        };
        // Label lists local to this generator win over same-named ones
        // elsewhere in the file.
        let mut local = symbols.clone();
        local.add_file(args);
        let mut labels: BTreeSet<String> = BTreeSet::new();
        for k in keys.find_iter(args) {
            let rest = &args[k.end()..];
            let end = rest.find(['\n']).unwrap_or(rest.len());
            labels.extend(local.items(&rest[..end], 0));
        }
        for p in prefix.captures_iter(args) {
            labels.insert(format!("{}_*", &p[1]));
        }
        for (helper, p) in helpers {
            if args.contains(&format!("{helper}(")) {
                labels.insert(format!("{p}_*"));
            }
        }
        if let Some(w) = wrap_use.captures(args) {
            labels.extend(wrapper_labels(text, &w[1], &symbols));
        }
        labels.retain(|l| !l.is_empty());
        out.push(Row {
            name,
            kind,
            labels,
            values: Default::default(),
        });
    }
    out
}

/// The default labels a `wrap<Resource>Func` merges into every sample.
fn wrapper_labels(text: &str, wrapper: &str, symbols: &gosrc::Symbols) -> BTreeSet<String> {
    let def = format!("func {wrapper}(");
    let Some(start) = text.find(&def).map(|i| i + def.len()) else {
        return BTreeSet::new();
    };
    let Some(open) = text[start..].find("{\n").map(|i| i + start) else {
        return BTreeSet::new();
    };
    let Some(body) = gosrc::block(text, open) else {
        return BTreeSet::new();
    };
    let merge = pattern!(r"(?:mergeKeyValues|append)\(\s*([A-Za-z_]\w*)");
    let mut out = BTreeSet::new();
    for c in merge.captures_iter(body) {
        out.extend(symbols.items(&c[1], 0));
    }
    out
}
