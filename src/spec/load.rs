//! Reading spec files: size limits, encoding, YAML budgets, and turning the
//! YAML library's errors into `SpecError`s with a fix.

use std::path::Path;

use crate::door::{Dir, DoorError, Kind, Opened};

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
/// so that all mistakes are reported together. Every entry named like a spec
/// is loaded or reported: a link, FIFO or directory named `x.yaml`, or a
/// name that is not a DNS label, is an error, never skipped (skipping one
/// would make `generate` delete that cluster's outputs).
pub fn load_dir(dir: &Path) -> Result<Vec<SpecFile>, Vec<SpecError>> {
    let shown = display_path(dir);
    let listed = Dir::open(dir).and_then(|handle| handle.entries().map(|e| (handle, e)));
    let (handle, entries) = listed.map_err(|e| {
        vec![SpecError::file(
            &shown,
            format!("cannot read the spec directory: {e}"),
            "run poolc from the repository root, or pass --specs DIR",
        )]
    })?;
    let names: Vec<String> = entries
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| spec_extension(name).is_some())
        .collect();
    if names.is_empty() {
        return Err(vec![SpecError::file(
            &shown,
            "no spec files (*.yaml) found",
            "add one spec per cluster, for example with `poolc init <cluster>`",
        )]);
    }
    let mut specs = Vec::new();
    let mut errors = Vec::new();
    for name in names {
        let path = handle.show(&name);
        if let Err(e) = check_file_name(&path, &name) {
            errors.push(e);
            continue;
        }
        match read_in(&handle, &name, &path).and_then(|bytes| load_bytes(&path, &bytes)) {
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

/// `yaml` or `yml` if `name` ends so.
fn spec_extension(name: &str) -> Option<&str> {
    let (_, ext) = name.rsplit_once('.')?;
    matches!(ext, "yaml" | "yml").then_some(ext)
}

/// Spec file names reach every output's header comment and name the
/// cluster's files: a DNS label (lowercase letters, digits, `-`, at most 63)
/// plus `.yaml` or `.yml`.
fn check_file_name(path: &str, name: &str) -> Result<(), SpecError> {
    let stem = name
        .strip_suffix(".yaml")
        .or_else(|| name.strip_suffix(".yml"))
        .unwrap_or(name);
    let label = !stem.is_empty()
        && stem.len() <= 63
        && stem
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !stem.starts_with('-')
        && !stem.ends_with('-');
    if label {
        return Ok(());
    }
    let suggestion: String = stem
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .trim_matches('-')
        .chars()
        .take(63)
        .collect();
    let suggestion = if suggestion.is_empty() {
        "cluster".to_string()
    } else {
        suggestion
    };
    Err(SpecError::file(
        path,
        "a spec's file name must be a DNS label (lowercase letters, digits and `-`, at most 63) plus .yaml or .yml",
        format!("rename it, for example to `{suggestion}.yaml`"),
    ))
}

/// One spec file, by a path the user named.
pub fn load_file(path: &Path) -> Result<SpecFile, SpecError> {
    let shown = display_path(path);
    // load_bytes tells a file over the limit by the extra byte read.
    let bytes = read_at_most(path, MAX_SPEC_BYTES).map_err(|e| {
        SpecError::file(
            &shown,
            format!("cannot read the spec: {e}"),
            "check the path and permissions",
        )
    })?;
    load_bytes(&shown, &bytes)
}

fn read_in(dir: &Dir, name: &str, shown: &str) -> Result<Vec<u8>, SpecError> {
    let read = dir.open_file(name).and_then(|file| match file {
        Some(file) => file
            .read_bounded(MAX_SPEC_BYTES)
            .map_err(|source| DoorError::Io {
                path: shown.to_string(),
                source,
            }),
        None => Err(DoorError::Io {
            path: shown.to_string(),
            source: std::io::ErrorKind::NotFound.into(),
        }),
    });
    match read {
        Ok(Some(bytes)) => Ok(bytes),
        Ok(None) => Err(too_large(shown)),
        Err(e) => Err(SpecError::file(
            shown,
            format!("cannot read the spec: {e}"),
            "a spec must be a regular file in the spec directory",
        )),
    }
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

/// At most `limit + 1` bytes of the regular file a user named (through
/// [`crate::door`], so no link is followed and a FIFO cannot hang the read):
/// enough to tell that a file is over the limit without reading a huge one.
pub fn read_at_most(path: &Path, limit: usize) -> Result<Vec<u8>, DoorError> {
    let shown = display_path(path);
    let file = match Dir::open_any(path)? {
        Opened::File(file) => file,
        Opened::Dir(_) => {
            return Err(DoorError::WrongKind {
                path: shown,
                found: Kind::Dir,
                expected: Kind::File,
            })
        }
    };
    let mut bytes = Vec::new();
    use std::io::Read;
    file.into_reader()
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| DoorError::Io {
            path: shown,
            source,
        })?;
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
            Some(loc) if message.starts_with("missing field") => {
                let err = SpecError::at(shown, text, loc, message, help);
                match mapping_start(text, err.line, err.col) {
                    Some((line, col)) => {
                        SpecError::at_line(shown, text, line, col, err.message, err.help)
                    }
                    None => err,
                }
            }
            Some(loc) => SpecError::at(shown, text, loc, message, help),
            None => SpecError::file(shown, message, help),
        }
    })
}

/// Where the block mapping holding the key at `line`:`col` starts: its
/// parent key, or the `- ` of its list item. A field is missing from a
/// mapping the library reports where the mapping ends; the reader looks for
/// it where it starts. None for a flow mapping.
fn mapping_start(text: &str, line: usize, col: usize) -> Option<(usize, usize)> {
    let indent = col.checked_sub(1)?;
    let lines: Vec<&str> = text.lines().take(line).collect();
    let at = lines.get(line.checked_sub(1)?)?;
    let key_here = at.len() >= indent && at[..indent].chars().all(|c| c == ' ' || c == '-');
    if !key_here {
        return None;
    }
    if indent == 0 {
        // The whole document: its first key.
        return lines
            .iter()
            .position(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .map(|i| (i + 1, 1));
    }
    lines.iter().enumerate().rev().find_map(|(i, l)| {
        let body = l.trim_start_matches(' ');
        let depth = l.len() - body.len();
        let blank = body.is_empty() || body.starts_with('#');
        (!blank && depth < indent && !at.trim_start_matches([' ', '-']).is_empty())
            .then_some((i + 1, depth + 1))
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
