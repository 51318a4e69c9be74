//! Writes the catalog's name index: which exporters' tables
//! (`src/catalog/data/*.tsv`) hold a metric name, by the name's first word
//! (up to and including its first `_`). `poolc lint` parses an exporter's
//! table only when an expression reads a name its table may hold, so the
//! work at start-up does not grow with the catalog.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let data = Path::new("src/catalog/data");
    println!("cargo:rerun-if-changed={}", data.display());
    let mut tables: Vec<(String, String)> = std::fs::read_dir(data)
        .expect("src/catalog/data is readable")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "tsv"))
        .map(|path| {
            let exporter = path.file_stem().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).expect("a table is UTF-8");
            (exporter, text)
        })
        .collect();
    tables.sort();
    // First word → exporters; and the name families whose fixed part is
    // shorter than a first word (`foo*`), matched by prefix.
    let mut words: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut loose: BTreeSet<(String, String)> = BTreeSet::new();
    for (exporter, text) in &tables {
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split('\t').next().unwrap_or_default();
            if name.is_empty() {
                continue;
            }
            let fixed = name.strip_suffix('*').unwrap_or(name);
            match fixed.find('_') {
                Some(i) => {
                    words
                        .entry(fixed[..=i].to_string())
                        .or_default()
                        .insert(exporter.clone());
                }
                None if fixed.len() < name.len() => {
                    loose.insert((fixed.to_string(), exporter.clone()));
                }
                None => {
                    words
                        .entry(fixed.to_string())
                        .or_default()
                        .insert(exporter.clone());
                }
            }
        }
    }
    let mut out = String::from(
        "/// First word of a metric name → the tables that hold names with it, sorted.\n\
         pub(crate) static NAME_WORDS: &[(&str, &[&str])] = &[\n",
    );
    for (word, exporters) in &words {
        let list: Vec<String> = exporters.iter().map(|e| format!("{e:?}")).collect();
        let _ = writeln!(out, "    ({word:?}, &[{}]),", list.join(", "));
    }
    out.push_str(
        "];\n\n/// Name families without a whole first word (`foo*`): prefix → table.\n\
         pub(crate) static NAME_LOOSE: &[(&str, &str)] = &[\n",
    );
    for (prefix, exporter) in &loose {
        let _ = writeln!(out, "    ({prefix:?}, {exporter:?}),");
    }
    out.push_str("];\n");
    let dest =
        Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("name_index.rs");
    std::fs::write(dest, out).expect("OUT_DIR is writable");
}
