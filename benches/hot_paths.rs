//! Micro-benchmarks of the hot paths, on the repository's own specs and the
//! rules they generate: spec loading, PromQL parsing, label-flow analysis,
//! rendering, YAML/JSON serialization, and the whole gate. `cargo bench`
//! runs them; `just bench` measures whole processes against promtool.

use std::path::Path;

use divan::{black_box, Bencher};
use poolc::lint::{catalog_file::CatalogFile, Workspace};

fn main() {
    divan::main();
}

fn specs() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/specs"))
}

fn model() -> poolc::model::Model {
    poolc::pipeline::load_model(specs()).expect("specs load")
}

/// Every PromQL expression of the generated production rules.
fn expressions() -> Vec<String> {
    let set = poolc::render::render(&model()).expect("render");
    let mut ws = Workspace::default();
    ws.add(
        "rules.yaml",
        set.get("production/prometheus/rules.yaml").expect("rules"),
    );
    ws.expressions.into_iter().map(|e| e.text).collect()
}

#[divan::bench]
fn load_and_validate_specs() -> poolc::model::Model {
    model()
}

#[divan::bench]
fn parse_promql(bencher: Bencher) {
    let exprs = expressions();
    bencher.counter(exprs.len()).bench(|| {
        for e in &exprs {
            black_box(poolc::promql::parse(e).ok());
        }
    });
}

#[divan::bench]
fn label_flow(bencher: Bencher) {
    let ctx = CatalogFile::default().context().expect("context");
    let trees: Vec<_> = expressions()
        .iter()
        .filter_map(|e| poolc::promql::parse(e).ok())
        .collect();
    bencher.counter(trees.len()).bench(|| {
        for t in &trees {
            black_box(poolc::lint::labels::labels(&ctx, t));
        }
    });
}

#[divan::bench]
fn render_all_clusters(bencher: Bencher) {
    let model = model();
    bencher.bench(|| poolc::render::render(&model).expect("render"));
}

#[divan::bench]
fn serialize_yaml(bencher: Bencher) {
    let text = poolc::render::render(&model()).expect("render");
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(text.get("production/keda.yaml").expect("keda")).expect("yaml");
    bencher.bench(|| poolc::render::to_yaml(&docs, "keda.yaml").expect("yaml"));
}

#[divan::bench]
fn serialize_json(bencher: Bencher) {
    let set = poolc::render::render(&model()).expect("render");
    let dashboard: serde_json::Value = serde_json::from_str(
        set.get("production/dashboards/pools.json")
            .expect("dashboard"),
    )
    .expect("json");
    bencher.bench(|| poolc::render::to_json(&dashboard, "pools.json").expect("json"));
}

#[divan::bench]
fn lint_generated(bencher: Bencher) {
    let model = model();
    let set = poolc::render::render(&model).expect("render");
    bencher.bench(|| poolc::lint::lint_fileset(&model, &set));
}
