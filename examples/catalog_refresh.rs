//! Regenerates `src/catalog/data/*.tsv` from git clones of the upstream
//! projects: `cargo run --release --example catalog_refresh -- CLONES_DIR [OUT_DIR]`.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(clones) = args.next().map(PathBuf::from) else {
        eprintln!(
            "usage: catalog_refresh CLONES_DIR [OUT_DIR [EXPORTER]]  (OUT_DIR defaults to src/catalog/data)"
        );
        return ExitCode::from(2);
    };
    let out = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("src/catalog/data"));
    let only = match args.next() {
        None => None,
        Some(name) => match poolc::catalog::Exporter::parse(&name.to_string_lossy()) {
            Some(e) => Some(e),
            None => {
                eprintln!("error: unknown exporter {name:?}");
                return ExitCode::from(2);
            }
        },
    };
    match poolc::catalog::extract::refresh(&clones, &out, only) {
        Ok(log) => {
            for line in log {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
