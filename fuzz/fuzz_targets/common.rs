//! What the lint targets share: the default catalog, built once, and one
//! file through every check.

use std::sync::OnceLock;

use poolc::lint::{catalog_file::CatalogFile, Context, Workspace};

pub fn context() -> &'static Context {
    static CONTEXT: OnceLock<Context> = OnceLock::new();
    CONTEXT.get_or_init(|| {
        CatalogFile::default()
            .context()
            .expect("the default catalog is valid")
    })
}

/// Lints `data` as the file `path` (its extension picks the reader).
#[allow(dead_code)]
pub fn lint_file(path: &str, data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut ws = Workspace::default();
    ws.add(path, text);
    let _ = poolc::lint::run(&ws, context());
}
