//! A Grafana dashboard (JSON) through every check, with the default catalog.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use poolc::lint::{catalog_file::CatalogFile, Context, Workspace};

fn context() -> &'static Context {
    static CONTEXT: OnceLock<Context> = OnceLock::new();
    CONTEXT.get_or_init(|| {
        CatalogFile::default()
            .context()
            .expect("the default catalog is valid")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut ws = Workspace::default();
    ws.add("dashboards/fuzz.json", text);
    let _ = poolc::lint::run(&ws, context());
});
