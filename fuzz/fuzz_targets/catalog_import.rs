//! What `poolc catalog import` reads (an exporter's /metrics text, the JSON
//! of Prometheus' API) and the `--catalog` file it writes: errors, never a
//! panic. The first byte picks the reader.

#![no_main]

use libfuzzer_sys::fuzz_target;
use poolc::catalog::import;
use poolc::lint::catalog_file::CatalogFile;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    match pick % 3 {
        0 => {
            let _ = import::exposition("fuzz.txt", text, &["job".to_string()]);
        }
        1 => {
            let (metadata, series) = text.split_once('\n').unwrap_or((text, "{}"));
            let _ = import::prometheus_api("metadata.json", metadata, "series.json", series);
        }
        _ => {
            if let Ok(file) = CatalogFile::parse(text) {
                let _ = file.context();
            }
        }
    }
});
