//! Reading spec files: size limits, encoding, YAML budgets, and turning the
//! YAML library's errors into `SpecError`s with a fix.

use std::path::{Path, PathBuf};

use serde_saphyr::{Budget, Options};

use super::{Spec, SpecError};

/// Specs are hand-written and small; anything larger is a mistake or an attack.
pub const MAX_SPEC_BYTES: usize = 1024 * 1024;

/// A loaded spec with the text it came from, for error lines and headers.
#[derive(Debug, Clone)]
pub struct SpecFile {
    /// As the user named it, with `/` separators: `specs/production.yaml`.
    pub path: String,
    pub source: String,
    pub spec: Spec,
}

/// Loads every `*.yaml`/`*.yml` in `dir`, in name order. Every file is tried
/// so that all mistakes are reported together.
pub fn load_dir(dir: &Path) -> Result<Vec<SpecFile>, Vec<SpecError>> {
    let shown = display_path(dir);
    let entries = std::fs::read_dir(dir).map_err(|e| {
        vec![SpecError::file(
            &shown,
            format!("cannot read the spec directory: {e}"),
            "run poolc from the repository root, or pass --specs DIR",
        )]
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("yaml") | Some("yml")
                )
        })
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(vec![SpecError::file(
            &shown,
            "no spec files (*.yaml) found",
            "add one spec per cluster, for example with `poolc init <cluster>`",
        )]);
    }
    let mut specs = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        match load_file(&path) {
            Ok(spec) => specs.push(spec),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(specs)
    } else {
        Err(errors)
    }
}

pub fn load_file(path: &Path) -> Result<SpecFile, SpecError> {
    let shown = display_path(path);
    // load_bytes tells a file over the limit by the extra byte read.
    let bytes = read_bounded(path, &shown)?;
    load_bytes(&shown, &bytes)
}

/// A spec from its raw bytes, shown in errors as `shown`: the size limit,
/// the encoding, a leading byte-order mark, then the YAML itself. Everything
/// `load_file` checks after reading the file.
pub fn load_bytes(shown: &str, bytes: &[u8]) -> Result<SpecFile, SpecError> {
    if bytes.len() > MAX_SPEC_BYTES {
        return Err(too_large(shown));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        SpecError::file(
            shown,
            format!(
                "the file is not UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ),
            "save the spec as UTF-8",
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text).to_string();
    let spec = parse(shown, &text)?;
    Ok(SpecFile {
        path: shown.to_string(),
        source: text,
        spec,
    })
}

fn too_large(shown: &str) -> SpecError {
    SpecError::file(
        shown,
        format!("the spec is larger than {} KiB", MAX_SPEC_BYTES / 1024),
        "a cluster spec is hand-written and small; split the fleet into one spec per cluster",
    )
}

fn read_bounded(path: &Path, shown: &str) -> Result<Vec<u8>, SpecError> {
    read_at_most(path, MAX_SPEC_BYTES).map_err(|e| {
        SpecError::file(
            shown,
            format!("cannot read the spec: {e}"),
            "check the path and permissions",
        )
    })
}

/// At most `limit + 1` bytes of `path`: enough to tell that a file is over
/// the limit without ever reading a huge one into memory.
pub fn read_at_most(path: &Path, limit: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Budgets far above any real spec, far below what would hurt: alias bombs
/// and deep nesting fail fast with a clear error.
fn options() -> Options {
    let mut budget = Budget::default();
    budget.max_events = 200_000;
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    budget.max_depth = 64;
    budget.max_nodes = 100_000;
    let mut options = Options::default();
    options.budget = Some(budget);
    options
}

fn parse(shown: &str, text: &str) -> Result<Spec, SpecError> {
    if text.trim().is_empty() {
        return Err(SpecError::file(
            shown,
            "the spec is empty",
            "a spec needs `cluster:` and `pools:`; `poolc init <cluster>` writes a starter",
        ));
    }
    serde_saphyr::from_str_with_options::<Spec>(text, options()).map_err(|e| {
        let raw = e.without_snippet().to_string();
        let message = friendly(&strip_position(&raw));
        let help = help_for(&message);
        match e.location() {
            Some(loc) => SpecError::at(shown, text, loc, message, help),
            None => SpecError::file(shown, message, help),
        }
    })
}

/// The YAML library appends " at line L, column C"; poolc shows the position
/// in front, so drop the duplicate.
fn strip_position(raw: &str) -> String {
    match raw.find(" at line ") {
        Some(i) => raw[..i].to_string(),
        None => raw.to_string(),
    }
}

/// The YAML library's wording, in the user's terms.
fn friendly(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("duplicate mapping key: ") {
        let key = rest.split(',').next().unwrap_or(rest);
        return format!("duplicate key `{key}`");
    }
    if message.starts_with("budget breached") {
        return "the YAML expands past poolc's budget (100000 nodes, 1000 aliases, depth 64): alias chains or repeated anchors".into();
    }
    if message.starts_with("recursion limit exceeded") {
        return "the YAML nests deeper than the parser allows".into();
    }
    match message {
        "invalid u16" => "expected a whole number from 0 to 65535".into(),
        "invalid u32" => "expected a whole number from 0 to 4294967295".into(),
        "invalid u64" | "invalid usize" => "expected a whole number, 0 or more".into(),
        _ => message.to_string(),
    }
}

fn help_for(message: &str) -> String {
    if message.starts_with("unknown field") {
        "remove the field or fix its spelling; the README lists every spec field".into()
    } else if message.starts_with("missing field") {
        "add the field; the README's spec reference says what it takes".into()
    } else if message.starts_with("duplicate key") {
        "a key may appear once per mapping: remove one of the two".into()
    } else if message.starts_with("unknown variant") {
        "use one of the listed values".into()
    } else if message.contains("budget") || message.contains("nests deeper") {
        "specs need no deep nesting or alias chains: write the values out".into()
    } else if message.starts_with("expected a whole number") {
        "write a plain whole number within the range, without quotes or a sign".into()
    } else if message.starts_with("invalid") || message.contains("expected") {
        "give a value of the type the field takes (see the README's spec reference)".into()
    } else {
        "fix the value at this position; the README's spec reference lists what each field takes"
            .into()
    }
}

fn display_path(path: &Path) -> String {
    path.to_string_lossy().replace('\\', "/")
}
