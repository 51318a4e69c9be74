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

use super::golibs;
use super::{find_clone, gosrc, release_tags, ExtractError, Releases, Row};
use crate::catalog::Version;

pub const SOURCES: &[&str] = &["kubernetes/kube-state-metrics", "prometheus/client_golang"];

pub fn extract(clones: &Path) -> Result<Releases, ExtractError> {
    let repo = find_clone(clones, SOURCES[0])?;
    let libs = golibs::Libraries::new(clones);
    let mut cache = golibs::Cache::default();
    let mut releases = Releases::new();
    for (version, tag) in release_tags(&repo, Version::new(2, 0))? {
        let mut store = Vec::new();
        for path in repo.files(&tag, "internal/store")? {
            if path.ends_with(".go") && !path.ends_with("_test.go") {
                // A trailing `//nolint` after a name constant hides it.
                store.extend(
                    repo.show(&tag, &path)
                        .map(|t| gosrc::strip_line_comments(&t)),
                );
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
        let funcs = functions(&store);
        let rows = releases.entry(version).or_default();
        // `go_*` and `process_*`: the Go and process collectors.
        rows.extend(golibs::program_rows(
            &libs,
            &mut cache,
            (&repo, &tag),
            None,
        )?);
        for text in &store {
            rows.extend(families(text, &helpers, &funcs));
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

/// Helper functions that turn a Kubernetes map into prefixed labels, with
/// their prefix: those passing a literal prefix to the mapping function,
/// and those calling such a helper in turn.
fn prefix_helpers(store: &[String]) -> BTreeMap<String, String> {
    let literal = pattern!(r#"\w*PrometheusLabels\w*\([^()]*?"(\w+)"\s*\)"#);
    let bodies = functions(store);
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

/// The top-level functions of the store files, by name, with their bodies.
fn functions(store: &[String]) -> BTreeMap<String, String> {
    let def = pattern!(r"(?m)^func\s+(\w+)\s*\(");
    let mut out = BTreeMap::new();
    for text in store {
        for m in def.captures_iter(text) {
            let Some(start) = m.get(0).map(|m| m.end()) else {
                continue;
            };
            let Some(open) = text[start..].find("{\n").map(|i| i + start) else {
                continue;
            };
            if let Some(body) = gosrc::block(text, open) {
                out.insert(m[1].to_string(), body.to_string());
            }
        }
    }
    out
}

/// A generator's source with the bodies of the store functions it calls
/// (two calls deep) appended: samples built by a helper
/// (`addCSRConditionMetrics`) get their label keys there. The wrappers that
/// merge in default labels are read separately.
fn with_callees(args: &str, funcs: &BTreeMap<String, String>) -> String {
    let call = pattern!(r"\b([A-Za-z_]\w*)\(");
    let mut out = args.to_string();
    let mut seen = BTreeSet::new();
    let mut frontier = vec![args.to_string()];
    for _ in 0..2 {
        let mut next = Vec::new();
        for text in &frontier {
            for c in call.captures_iter(text) {
                let name = &c[1];
                if name.starts_with("wrap") || !seen.insert(name.to_string()) {
                    continue;
                }
                if let Some(body) = funcs.get(name) {
                    out.push('\n');
                    out.push_str(body);
                    next.push(body.clone());
                }
            }
        }
        frontier = next;
    }
    out
}

/// The label keys a generator's samples set: `LabelKeys` lists, one literal
/// or spread over lines, and the keys appended to the list variable it names
/// (`keys = append(keys, "x")`, `keys = append([]string{"x"}, keys...)`).
fn label_keys(src: &str, local: &gosrc::Symbols) -> BTreeSet<String> {
    let keys = pattern!(r"LabelKeys\s*(?::|=)\s*");
    let ident = pattern!(r#""[^"\n]*"|([A-Za-z_]\w*)"#);
    let mut labels = BTreeSet::new();
    for k in keys.find_iter(src) {
        let rest = &src[k.end()..];
        let expr = match rest.strip_prefix("[]string{") {
            Some(_) => gosrc::block(rest, "[]string".len()).unwrap_or(""),
            None => &rest[..rest.find('\n').unwrap_or(rest.len())],
        };
        labels.extend(local.items(expr, 0));
        for c in ident.captures_iter(expr) {
            let Some(var) = c.get(1).map(|m| m.as_str()) else {
                continue;
            };
            if matches!(var, "append" | "string") {
                continue;
            }
            let assign = format!(r"\b{var}\s*:?=\s*append\(");
            let Ok(assign) = Regex::new(&assign) else {
                continue;
            };
            for a in assign.find_iter(src) {
                if let Some(args) = gosrc::block(src, a.end() - 1) {
                    labels.extend(local.items(args, 0));
                }
            }
        }
    }
    labels
}

/// The families one store file generates.
pub fn families(
    text: &str,
    helpers: &BTreeMap<String, String>,
    funcs: &BTreeMap<String, String>,
) -> Vec<Row> {
    let mut symbols = gosrc::Symbols::default();
    symbols.add_file(text);
    symbols.drop_local_lists(text);
    let call = pattern!(r"New(?:OptIn)?FamilyGenerator(?:WithStability)?\(");
    let wrap_use = pattern!(r"\b(wrap\w*Func)\(");
    // kubeMapToPrometheusLabels, createPrometheusLabelKeysValues, ….
    let prefix = pattern!(r#"\w*PrometheusLabel\w*\(\s*"([^"]*)""#);
    // mapToPrometheusLabels(m, "prefix").
    let prefix_second = pattern!(r#"\w*PrometheusLabels\w*\(\s*[\w.\[\]]+\s*,\s*"([^"]*)""#);
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
        let src = with_callees(args, funcs);
        let mut labels = label_keys(&src, &local);
        for p in prefix.captures_iter(&src) {
            labels.insert(format!("{}_*", &p[1]));
        }
        for p in prefix_second.captures_iter(&src) {
            labels.insert(format!("{}_*", &p[1]));
        }
        for (helper, p) in helpers {
            if args.contains(&format!("{helper}(")) {
                labels.insert(format!("{p}_*"));
            }
        }
        labels.retain(|l| !l.is_empty());
        // Keys some samples do not set are optional (`reason?`); the
        // wrapper's default labels are on every sample.
        if sets_no_keys(&src) {
            labels = labels
                .into_iter()
                .map(|l| if l.ends_with('*') { l } else { format!("{l}?") })
                .collect();
        }
        if let Some(w) = wrap_use.captures(args) {
            labels.extend(wrapper_labels(text, &w[1], &symbols));
        }
        let always: BTreeSet<String> = labels
            .iter()
            .filter(|l| !l.ends_with('?'))
            .cloned()
            .collect();
        labels.retain(|l| !l.is_empty() && l.strip_suffix('?').is_none_or(|n| !always.contains(n)));
        out.push(Row::labelled(name, kind, labels));
    }
    out
}

/// Whether a generator emits a sample without label keys of its own: a
/// `metric.Metric` literal that sets no `LabelKeys` (or sets `nil` or an
/// empty list), where nothing assigns them afterwards (`m.LabelKeys = …`).
/// `kube_job_status_failed` emits `{Value: 0}` until the job fails, and
/// `{reason=…}` samples after.
fn sets_no_keys(src: &str) -> bool {
    if pattern!(r"\.LabelKeys\s*=").is_match(src) {
        return false;
    }
    let keyless = |literal: &str| {
        let keys = pattern!(r"LabelKeys\s*:\s*(nil|\[\]string\{\s*\})?");
        match keys.captures(literal) {
            None => true,
            Some(c) => c.get(1).is_some(),
        }
    };
    let mut literals = Vec::new();
    for m in pattern!(r"metric\.Metric\{").find_iter(src) {
        let Some(body) = gosrc::block(src, m.end() - 1) else {
            continue;
        };
        let list = src[..m.start()].ends_with("[]*");
        if !list {
            literals.push(body);
            continue;
        }
        // The elements of a `[]*metric.Metric{{…}, {…}}` list.
        let mut at = 0;
        while let Some(open) = body[at..].find('{').map(|o| at + o) {
            let Some(element) = gosrc::block(body, open) else {
                break;
            };
            literals.push(element);
            at = open + element.len() + 2;
        }
    }
    literals.into_iter().any(keyless)
}

/// The default labels a `wrap<Resource>Func` merges into every sample.
fn wrapper_labels(text: &str, wrapper: &str, symbols: &gosrc::Symbols) -> BTreeSet<String> {
    let Some(body) = gosrc::function_body(text, wrapper) else {
        return BTreeSet::new();
    };
    let merge = pattern!(r"(?:mergeKeyValues|append)\(\s*([A-Za-z_]\w*)");
    let mut out = BTreeSet::new();
    for c in merge.captures_iter(body) {
        out.extend(symbols.items(&c[1], 0));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A generator that emits a sample without keys until its object
    /// changes state makes its keys optional; one whose samples all set
    /// keys, or that sets them after building the sample, does not.
    #[test]
    fn keys_some_samples_lack_are_optional() {
        let keyless_first = r#"func(w *Widget) *metric.Family {
	if w.Broken == 0 {
		return &metric.Family{Metrics: []*metric.Metric{{Value: 0}}}
	}
	return &metric.Family{Metrics: []*metric.Metric{&metric.Metric{LabelKeys: []string{"cause"}, LabelValues: []string{w.Cause}, Value: 1}}}
}"#;
        assert!(sets_no_keys(keyless_first));
        assert!(sets_no_keys(
            "ms = append(ms, &metric.Metric{LabelKeys: nil, Value: 1})"
        ));
        let always = r#"return &metric.Family{Metrics: []*metric.Metric{{LabelKeys: []string{"cause"}, LabelValues: []string{c}, Value: 1}, {LabelKeys: []string{"cause"}, LabelValues: []string{d}}}}"#;
        assert!(!sets_no_keys(always));
        let set_later = "m := &metric.Metric{Value: 1}\n\tm.LabelKeys = []string{\"phase\"}";
        assert!(!sets_no_keys(set_later));
    }

    fn labels_of(src: &str, name: &str) -> Vec<String> {
        let store = vec![gosrc::strip_line_comments(src)];
        let helpers = prefix_helpers(&store);
        let funcs = functions(&store);
        let rows = families(&store[0], &helpers, &funcs);
        let row = rows
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("{name} not read from the snippet"));
        row.labels.iter().cloned().collect()
    }

    const STORE: &str = r#"
var (
	descWidgetNotesName = "kube_widget_notes" //nolint:gosec
	descWidgetDefaultLabels = []string{"namespace", "widget"}
)

func widgetFamilies() []generator.FamilyGenerator {
	return []generator.FamilyGenerator{
		*generator.NewFamilyGeneratorWithStability(
			"kube_widget_info",
			"Info.",
			metric.Gauge,
			basemetrics.ALPHA,
			"",
			wrapWidgetFunc(func(w *Widget) *metric.Family {
				var labelKeys []string
				if w.Owner != "" {
					labelKeys = append(labelKeys, "owner")
				}
				labelKeys = append([]string{"api_version"}, labelKeys...)
				return &metric.Family{Metrics: []*metric.Metric{{
					LabelKeys: labelKeys,
					Value:     1,
				}}}
			}),
		),
		*generator.NewFamilyGeneratorWithStability(
			"kube_widget_spec",
			"Spec.",
			metric.Gauge,
			basemetrics.ALPHA,
			"",
			wrapWidgetFunc(func(w *Widget) *metric.Family {
				return &metric.Family{Metrics: []*metric.Metric{{
					LabelKeys: []string{
						"size",
						"color",
					},
					Value: 1,
				}}}
			}),
		),
		*generator.NewFamilyGeneratorWithStability(
			"kube_widget_phase",
			"Phase.",
			metric.Gauge,
			basemetrics.ALPHA,
			"",
			wrapWidgetFunc(func(w *Widget) *metric.Family {
				return &metric.Family{Metrics: widgetPhaseMetrics(w.Phase)}
			}),
		),
		*generator.NewFamilyGeneratorWithStability(
			descWidgetNotesName,
			"Notes.",
			metric.Gauge,
			basemetrics.ALPHA,
			"",
			wrapWidgetFunc(func(w *Widget) *metric.Family {
				keys, values := mapToPrometheusLabels(w.Notes, "note")
				return &metric.Family{Metrics: []*metric.Metric{{LabelKeys: keys, LabelValues: values}}}
			}),
		),
		*generator.NewOptInFamilyGenerator(
			"kube_widget_selectors",
			"Selectors.",
			metric.Gauge,
			basemetrics.ALPHA,
			"",
			wrapWidgetFunc(func(w *Widget) *metric.Family {
				return &metric.Family{Metrics: []*metric.Metric{{
					LabelKeys: []string{"selector"},
				}}}
			}),
		),
	}
}

func widgetPhaseMetrics(p string) []*metric.Metric {
	ms := []*metric.Metric{{Value: 1}}
	for _, m := range ms {
		m.LabelKeys = []string{"phase"}
	}
	return ms
}

func wrapWidgetFunc(f func(*Widget) *metric.Family) func(interface{}) *metric.Family {
	return func(obj interface{}) *metric.Family {
		for _, m := range f(obj.(*Widget)).Metrics {
			m.LabelKeys, m.LabelValues = mergeKeyValues(descWidgetDefaultLabels, nil, m.LabelKeys, m.LabelValues)
		}
	}
}
"#;

    #[test]
    fn keys_appended_to_the_sample_list_are_labels() {
        assert_eq!(
            labels_of(STORE, "kube_widget_info"),
            ["api_version", "namespace", "owner", "widget"]
        );
    }

    #[test]
    fn a_key_list_spread_over_lines_is_read_whole() {
        assert_eq!(
            labels_of(STORE, "kube_widget_spec"),
            ["color", "namespace", "size", "widget"]
        );
    }

    #[test]
    fn keys_set_by_a_called_helper_are_labels() {
        assert_eq!(
            labels_of(STORE, "kube_widget_phase"),
            ["namespace", "phase", "widget"]
        );
    }

    #[test]
    fn a_name_constant_with_a_trailing_comment_and_a_second_argument_prefix() {
        assert_eq!(
            labels_of(STORE, "kube_widget_notes"),
            ["namespace", "note_*", "widget"]
        );
    }

    #[test]
    fn opt_in_families_are_read() {
        assert_eq!(
            labels_of(STORE, "kube_widget_selectors"),
            ["namespace", "selector", "widget"]
        );
    }
}
