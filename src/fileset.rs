//! The rendered outputs as an in-memory set of files, and the only code that
//! touches `generated/`: write (all or nothing per file, stale owned files
//! removed, foreign files left alone) and check (unified diff of what is stale).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

/// The list of files poolc wrote last time: only these may be removed.
pub const MANIFEST: &str = ".poolc-manifest";
const LOCK: &str = ".poolc.lock";

/// One output file, by its path under `generated/` (always `/`-separated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub path: String,
    pub contents: String,
}

impl File {
    pub fn new(path: impl Into<String>, contents: impl Into<String>) -> File {
        File {
            path: path.into(),
            contents: contents.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FileSetError {
    #[error("two renderers produced {0}: give one of them another file name")]
    Duplicate(String),
    #[error("output path {0:?} is not a plain relative path under generated/")]
    BadPath(String),
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{0} is a symlink: poolc never writes through links; replace it with a directory or remove it")]
    Symlink(String),
    #[error("another `poolc generate` is writing {0}: wait for it to finish")]
    Locked(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> FileSetError + '_ {
    move |source| FileSetError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Files in path order, so every run writes and diffs in the same order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileSet {
    files: BTreeMap<String, String>,
}

/// How a path under `generated/` differs from what would be generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Added(String),
    Removed(String),
    Changed(String),
}

impl Change {
    pub fn path(&self) -> &str {
        match self {
            Change::Added(p) | Change::Removed(p) | Change::Changed(p) => p,
        }
    }
}

impl FileSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, file: File) -> Result<(), FileSetError> {
        if !is_safe_relative(&file.path) {
            return Err(FileSetError::BadPath(file.path));
        }
        if self.files.contains_key(&file.path) {
            return Err(FileSetError::Duplicate(file.path));
        }
        self.files.insert(file.path, file.contents);
        Ok(())
    }

    pub fn extend(&mut self, files: Vec<File>) -> Result<(), FileSetError> {
        files.into_iter().try_for_each(|f| self.insert(f))
    }

    pub fn get(&self, path: &str) -> Option<&str> {
        self.files.get(path).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.files.iter().map(|(p, c)| (p.as_str(), c.as_str()))
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// What differs between this set and `root`, including owned files that
    /// are no longer produced.
    pub fn changes(&self, root: &Path) -> Result<Vec<Change>, FileSetError> {
        let mut changes = Vec::new();
        for (path, contents) in &self.files {
            let full = root.join(path);
            match fs::read(&full) {
                Ok(bytes) if bytes == contents.as_bytes() => {}
                Ok(_) => changes.push(Change::Changed(path.clone())),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    changes.push(Change::Added(path.clone()))
                }
                Err(e) => return Err(io_err(&full)(e)),
            }
        }
        for path in read_manifest(root)? {
            if !self.files.contains_key(&path) && root.join(&path).exists() {
                changes.push(Change::Removed(path));
            }
        }
        changes.sort_by(|a, b| a.path().cmp(b.path()));
        Ok(changes)
    }

    /// A unified diff of every change, `a/` being what is on disk.
    pub fn diff(&self, root: &Path) -> Result<String, FileSetError> {
        let mut out = String::new();
        for change in self.changes(root)? {
            let path = change.path();
            let old = match &change {
                Change::Added(_) => String::new(),
                _ => {
                    let bytes = fs::read(root.join(path)).map_err(io_err(&root.join(path)))?;
                    String::from_utf8_lossy(&bytes).into_owned()
                }
            };
            let new = self.files.get(path).map(String::as_str).unwrap_or("");
            let diff = similar::TextDiff::from_lines(old.as_str(), new);
            out.push_str(
                &diff
                    .unified_diff()
                    .context_radius(3)
                    .header(&format!("a/{path}"), &format!("b/{path}"))
                    .to_string(),
            );
        }
        Ok(out)
    }

    /// Writes the set under `root` in two phases. First every new or changed
    /// file is written beside its target under a temporary name and synced;
    /// if any of that fails, the temporaries (and directories made for them)
    /// are removed and `root` is exactly as before. Then each temporary is
    /// renamed over its target, files poolc wrote before but no longer
    /// produces are removed, and the manifest is replaced. Files poolc never
    /// wrote are left alone. A lock keeps concurrent runs apart.
    pub fn write(&self, root: &Path) -> Result<Vec<Change>, FileSetError> {
        refuse_symlink(root)?;
        fs::create_dir_all(root).map_err(io_err(root))?;
        let lock_path = root.join(LOCK);
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(FileSetError::Locked(root.display().to_string()))
            }
            Err(fs::TryLockError::Error(e)) => return Err(io_err(&lock_path)(e)),
        }
        // A run killed mid-write leaves temporaries; they are poolc's own.
        sweep_temporaries(root);
        let changes = self.changes(root)?;

        let mut staged = Staged::default();
        for change in &changes {
            if let Change::Added(path) | Change::Changed(path) = change {
                if let Err(e) = staged.stage(root, path, self.files[path].as_bytes()) {
                    staged.roll_back();
                    return Err(e);
                }
            }
        }
        crash_point("staged");
        staged.commit()?;
        for change in &changes {
            if let Change::Removed(path) = change {
                let full = root.join(path);
                // Only a regular file poolc wrote; never a link or a directory.
                let meta = fs::symlink_metadata(&full).map_err(io_err(&full))?;
                if meta.is_file() {
                    fs::remove_file(&full).map_err(io_err(&full))?;
                    remove_empty_parents(root, &full);
                }
            }
        }
        let manifest: String = self.files.keys().map(|p| format!("{p}\n")).collect();
        let mut manifest_write = Staged::default();
        manifest_write.stage(root, MANIFEST, manifest.as_bytes())?;
        manifest_write.commit()?;
        drop(lock);
        Ok(changes)
    }
}

/// Temporaries written beside their targets, and the directories made for them.
#[derive(Default)]
struct Staged {
    files: Vec<(PathBuf, PathBuf)>,
    made_dirs: Vec<PathBuf>,
}

impl Staged {
    fn stage(&mut self, root: &Path, path: &str, bytes: &[u8]) -> Result<(), FileSetError> {
        let full = root.join(path);
        for dir in Path::new(path).ancestors().skip(1) {
            refuse_symlink(&root.join(dir))?;
        }
        refuse_symlink(&full)?;
        if let Some(parent) = full.parent() {
            let missing: Vec<PathBuf> = parent
                .ancestors()
                .take_while(|d| *d != root && !d.exists())
                .map(Path::to_path_buf)
                .collect();
            fs::create_dir_all(parent).map_err(io_err(parent))?;
            self.made_dirs.extend(missing.into_iter().rev());
        }
        let tmp = temporary_name(&full);
        self.files.push((tmp.clone(), full.clone()));
        let mut f = fs::File::create(&tmp).map_err(io_err(&full))?;
        f.write_all(bytes).map_err(io_err(&full))?;
        f.sync_all().map_err(io_err(&full))
    }

    fn roll_back(self) {
        for (tmp, _) in &self.files {
            let _ = fs::remove_file(tmp);
        }
        for dir in self.made_dirs.iter().rev() {
            let _ = fs::remove_dir(dir);
        }
    }

    fn commit(self) -> Result<(), FileSetError> {
        for (tmp, target) in &self.files {
            fs::rename(tmp, target).map_err(io_err(target))?;
            crash_point("renaming");
        }
        Ok(())
    }
}

/// Dies on the spot, as `kill -9` would, when `POOLC_CRASH_AT` names this
/// point: the crash-safety tests stop a run exactly between two steps. A run
/// killed while renaming leaves some files new and the manifest old; the next
/// run rewrites what differs, removes what the old manifest owns, and sweeps
/// the temporaries, so it ends with exactly the tree a clean run writes.
fn crash_point(name: &str) {
    if std::env::var_os("POOLC_CRASH_AT").is_some_and(|at| at == name) {
        std::process::abort();
    }
}

const TEMP_MARK: &str = ".poolc-tmp-";

fn temporary_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}{TEMP_MARK}{}", std::process::id()))
}

/// Removes the temporaries a killed run left under `dir`, and the
/// directories below it that held nothing else (made by that run for a new
/// cluster). True if a temporary was removed.
fn sweep_temporaries(dir: &Path) -> bool {
    let Ok(entries) = fs::read_dir(dir) else {
        return false;
    };
    let mut swept = false;
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if kind.is_dir() {
            if sweep_temporaries(&path) {
                swept = true;
                // Fails, as it should, unless nothing else is left.
                let _ = fs::remove_dir(&path);
            }
        } else if kind.is_file() && entry.file_name().to_string_lossy().contains(TEMP_MARK) {
            swept = fs::remove_file(&path).is_ok() || swept;
        }
    }
    swept
}

fn refuse_symlink(path: &Path) -> Result<(), FileSetError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            Err(FileSetError::Symlink(path.display().to_string()))
        }
        _ => Ok(()),
    }
}

fn remove_empty_parents(root: &Path, file: &Path) {
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d == root || !d.starts_with(root) || fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

fn read_manifest(root: &Path) -> Result<BTreeSet<String>, FileSetError> {
    let path = root.join(MANIFEST);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(text
            .lines()
            .filter(|l| is_safe_relative(l))
            .map(str::to_string)
            .collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeSet::new()),
        Err(e) => Err(io_err(&path)(e)),
    }
}

/// Relative, no `..`, no root: a manifest line can never name a file outside
/// the tree, even if someone edits the manifest.
fn is_safe_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.contains('\\')
        && PathBuf::from(path)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_paths_that_leave_the_tree() {
        let mut set = FileSet::new();
        assert!(set.insert(File::new("../x", "")).is_err());
        assert!(set.insert(File::new("/etc/x", "")).is_err());
        assert!(set.insert(File::new("a/../b", "")).is_err());
        assert!(set.insert(File::new("a/b", "")).is_ok());
        assert!(
            set.insert(File::new("a/b", "")).is_err(),
            "duplicates are an error"
        );
    }
}
