//! Prometheus exposition text as catalog rows: one row per `# TYPE` family
//! (and per untyped name without one), with every label its samples carry.
//! Histogram and summary samples fold into their family, without `le` and
//! `quantile`.

use std::collections::{BTreeMap, BTreeSet};

use super::Row;

pub fn rows(text: &str) -> Vec<Row> {
    let mut kinds: BTreeMap<String, &'static str> = BTreeMap::new();
    let mut labels: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut words = rest.split_whitespace();
            if let (Some(name), Some(kind)) = (words.next(), words.next()) {
                let kind = match kind {
                    "counter" => "counter",
                    "gauge" => "gauge",
                    "histogram" => "histogram",
                    "summary" => "summary",
                    _ => "untyped",
                };
                kinds.insert(name.to_string(), kind);
                labels.entry(name.to_string()).or_default();
            }
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let sample = &line[..name_end];
        let family = family_of(sample, &kinds);
        let set = labels.entry(family).or_default();
        if line[name_end..].starts_with('{') {
            for l in label_names(&line[name_end + 1..]) {
                if l != "le" && l != "quantile" {
                    set.insert(l);
                }
            }
        }
    }
    labels
        .into_iter()
        .map(|(name, labels)| Row {
            kind: kinds.get(&name).copied().unwrap_or("untyped"),
            name,
            labels,
            values: BTreeMap::new(),
        })
        .collect()
}

/// The family a sample name belongs to: itself, or a histogram/summary
/// family it is the `_bucket`, `_sum` or `_count` of.
fn family_of(sample: &str, kinds: &BTreeMap<String, &'static str>) -> String {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = sample.strip_suffix(suffix) {
            if matches!(kinds.get(base), Some(&"histogram") | Some(&"summary")) {
                return base.to_string();
            }
        }
    }
    sample.to_string()
}

/// The label names of `a="x",b="y, z"}` (quoted values may hold anything).
fn label_names(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches([',', ' ']);
        if rest.starts_with('}') || rest.is_empty() {
            return out;
        }
        let Some(eq) = rest.find('=') else { return out };
        out.push(rest[..eq].trim().to_string());
        rest = &rest[eq + 1..];
        let Some(body) = rest.strip_prefix('"') else {
            return out;
        };
        let mut escaped = false;
        let mut end = None;
        for (i, c) in body.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    end = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        let Some(end) = end else { return out };
        rest = &body[end + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_histograms_and_reads_quoted_labels() {
        let text = "# TYPE h histogram\nh_bucket{le=\"1\",a=\"x,y=\\\"z\"} 1\nh_sum{a=\"1\"} 2\nh_count 1\n# TYPE g gauge\ng 1\nbare{b=\"\"} 3\n";
        let rows = rows(text);
        let got: Vec<(&str, &str, Vec<&str>)> = rows
            .iter()
            .map(|r| {
                (
                    r.name.as_str(),
                    r.kind,
                    r.labels.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("bare", "untyped", vec!["b"]),
                ("g", "gauge", vec![]),
                ("h", "histogram", vec!["a"]),
            ]
        );
    }
}
