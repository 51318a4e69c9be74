//! The rendered outputs as an in-memory set of files, and the only code that
//! touches `generated/`: write (all or nothing per file, stale owned files
//! removed, foreign files left alone) and check (unified diff of what is stale).
//! Every path goes through [`crate::door`], so no link in the output tree is
//! followed and nothing outside it is read, written or removed.
//!
//! A write is a commit with a journal. Before anything is staged, the
//! journal (`.poolc-journal`) records every path poolc owns, old and new,
//! the directories the run will make and the temporaries it will write. A
//! run that fails or is killed at any step therefore leaves a tree that is
//! either the old one, or one the next run completes: that run removes the
//! journal's temporaries and the empty directories it made, and treats every
//! path in it as poolc's, so a file renamed into place by a killed run is
//! removed once no spec produces it, and `check` reports it until then.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use crate::door::{Dir, DoorError, Kind};

/// The list of files poolc wrote last time: only these may be removed.
pub const MANIFEST: &str = ".poolc-manifest";
const LOCK: &str = ".poolc.lock";
/// The commit in progress; see the module doc.
pub const JOURNAL: &str = ".poolc-journal";
/// Manifests and journals list paths: a few hundred lines each.
const MAX_LIST_BYTES: usize = 4 * 1024 * 1024;
/// Past this many bytes on either side, `check` and `plan` say how large
/// the two versions are instead of diffing them.
pub const DIFF_BUDGET: usize = 1024 * 1024;

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
    #[error(transparent)]
    Door(#[from] DoorError),
    #[error("another `poolc generate` is writing {0}: wait for it to finish")]
    Locked(String),
    #[error("{0} is not empty and holds no {MANIFEST}: poolc writes only into an empty directory or one it wrote before; pass a new or empty --out")]
    NotOurs(String),
    #[error("{failure}; {out} is part-way between the old and the new outputs and {JOURNAL} records both: fix the cause and run `poolc generate` again to complete it")]
    Incomplete { out: String, failure: DoorError },
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
    /// are no longer produced. A missing `root` is an empty one.
    pub fn changes(&self, root: &Path) -> Result<Vec<Change>, FileSetError> {
        match Dir::open(root) {
            Ok(dir) => self.changes_in(&dir),
            Err(e) if e.is_not_found() => Ok(self
                .files
                .keys()
                .map(|p| Change::Added(p.clone()))
                .collect()),
            Err(e) => Err(e.into()),
        }
    }

    fn changes_in(&self, dir: &Dir) -> Result<Vec<Change>, FileSetError> {
        let mut changes = Vec::new();
        for (path, contents) in &self.files {
            match dir.open_file(path)? {
                None => changes.push(Change::Added(path.clone())),
                // Sizes first: a stale file is never read past what poolc would write.
                Some(file) if file.size != contents.len() as u64 => {
                    changes.push(Change::Changed(path.clone()))
                }
                Some(file) => {
                    let same = file
                        .read_bounded(contents.len())
                        .map_err(|e| door_io(dir, path, e))?
                        .is_some_and(|bytes| bytes == contents.as_bytes());
                    if !same {
                        changes.push(Change::Changed(path.clone()))
                    }
                }
            }
        }
        for path in owned(dir)? {
            if self.files.contains_key(&path) {
                continue;
            }
            match dir.kind(&path)? {
                Some(Kind::File) => changes.push(Change::Removed(path)),
                // A directory now stands where poolc once wrote a file: not poolc's.
                None | Some(Kind::Dir) => {}
                Some(Kind::Symlink) => {
                    return Err(DoorError::Symlink {
                        path: dir.show(&path),
                    }
                    .into())
                }
                Some(found) => {
                    return Err(DoorError::WrongKind {
                        path: dir.show(&path),
                        found,
                        expected: Kind::File,
                    }
                    .into())
                }
            }
        }
        changes.sort_by(|a, b| a.path().cmp(b.path()));
        Ok(changes)
    }

    /// A unified diff of every change, `a/` being what is on disk. A file
    /// past [`DIFF_BUDGET`] on either side is summarized by its sizes.
    pub fn diff(&self, root: &Path) -> Result<String, FileSetError> {
        let mut out = String::new();
        for change in self.changes(root)? {
            let path = change.path();
            let new = self.files.get(path).map(String::as_str).unwrap_or("");
            let old = match &change {
                Change::Added(_) => Old::Text(String::new()),
                _ => read_old(root, path, DIFF_BUDGET)?,
            };
            let old = match old {
                Old::Text(text) if within_diff_budget(&text, new) => text,
                Old::Text(text) => {
                    out.push_str(&too_large_to_diff(path, text.len() as u64, new.len()));
                    continue;
                }
                Old::TooLarge(size) => {
                    out.push_str(&too_large_to_diff(path, size, new.len()));
                    continue;
                }
            };
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

    /// Writes the set under `root` as a journaled commit (see the module
    /// doc): journal, then every new or changed file staged beside its
    /// target under a fresh temporary name and synced, then each temporary
    /// renamed over its target, files poolc wrote before but no longer
    /// produces removed, the manifest replaced, and the journal removed.
    /// A failure before the first rename leaves `root` exactly as before.
    /// Files poolc never wrote are left alone, and a `root` that holds files
    /// but no manifest is refused. A lock keeps concurrent runs apart.
    pub fn write(&self, root: &Path) -> Result<Vec<Change>, FileSetError> {
        let (dir, _) = Dir::open_or_create(root)?;
        refuse_foreign(&dir)?;
        let lock = dir.lock_file(LOCK)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(FileSetError::Locked(dir.shown().to_string()))
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(door_io(&dir, LOCK, e));
            }
        }
        let previous = recover(&dir)?;
        let changes = self.changes_in(&dir)?;
        let manifest: String = self.files.keys().map(|p| format!("{p}\n")).collect();
        let manifest_current = dir
            .read(MANIFEST, MAX_LIST_BYTES)?
            .is_some_and(|m| m == manifest.as_bytes());
        if changes.is_empty() && manifest_current && previous.is_none() {
            return Ok(changes);
        }

        // The plan, recorded before anything is touched.
        let mut commit = Commit::default();
        for change in &changes {
            if let Change::Added(path) | Change::Changed(path) = change {
                for missing in missing_dirs(&dir, path)? {
                    if !commit.dirs.contains(&missing) {
                        commit.dirs.push(missing);
                    }
                }
                commit.staged.push((temporary_name(path), path.clone()));
            }
        }
        let mut own: BTreeSet<String> = owned(&dir)?;
        own.extend(self.files.keys().cloned());
        write_journal(&dir, &own, &commit)?;

        for (tmp, path) in &commit.staged {
            let staged = match path.rsplit_once('/') {
                Some((parent, _)) => dir
                    .subdir_or_create(parent, &mut Vec::new())
                    .map(|_| ())
                    .and_then(|()| dir.create_new(tmp, self.files[path].as_bytes())),
                None => dir.create_new(tmp, self.files[path].as_bytes()),
            };
            if let Err(e) = staged {
                commit.roll_back(&dir);
                let _ = dir.remove_file(JOURNAL);
                return Err(e.into());
            }
        }
        crash_point("staged");
        let incomplete = |failure: DoorError| FileSetError::Incomplete {
            out: dir.shown().to_string(),
            failure,
        };
        for (i, (tmp, path)) in commit.staged.iter().enumerate() {
            if let Err(e) = dir.rename(tmp, path) {
                for (tmp, _) in &commit.staged[i..] {
                    let _ = dir.remove_file(tmp);
                }
                return Err(incomplete(e));
            }
            crash_point("renaming");
        }
        for change in &changes {
            if let Change::Removed(path) = change {
                // Only a regular file poolc wrote; never a link or a directory.
                if dir.remove_file(path).map_err(incomplete)? {
                    remove_empty_parents(&dir, path);
                }
            }
        }
        crash_point("removed");
        replace(&dir, MANIFEST, manifest.as_bytes()).map_err(incomplete)?;
        dir.remove_file(JOURNAL).map_err(incomplete)?;
        dir.sync();
        drop(lock);
        Ok(changes)
    }
}

/// What is on disk at a path, for a diff.
pub enum Old {
    Text(String),
    /// Over the budget; the file's size.
    TooLarge(u64),
}

/// The file at `path` under `root`, read through the door up to `budget`
/// bytes (lossily as UTF-8, since it is only shown).
pub fn read_old(root: &Path, path: &str, budget: usize) -> Result<Old, FileSetError> {
    let dir = Dir::open(root)?;
    let Some(file) = dir.open_file(path)? else {
        return Ok(Old::Text(String::new()));
    };
    let size = file.size;
    match file.read_bounded(budget) {
        Ok(Some(bytes)) => Ok(Old::Text(String::from_utf8_lossy(&bytes).into_owned())),
        Ok(None) => Ok(Old::TooLarge(size)),
        Err(e) => Err(door_io(&dir, path, e)),
    }
}

/// Past this many lines on both sides together, a line diff (quadratic in
/// the worst case) is not attempted either.
pub const DIFF_LINES: usize = 20_000;

/// True if two versions are small enough to diff line by line.
pub fn within_diff_budget(old: &str, new: &str) -> bool {
    old.len() <= DIFF_BUDGET
        && new.len() <= DIFF_BUDGET
        && old.lines().count() + new.lines().count() <= DIFF_LINES
}

fn too_large_to_diff(path: &str, old: u64, new: usize) -> String {
    format!("--- a/{path}\n+++ b/{path}\ndiffers: {old} → {new} bytes (past the diff budget of {DIFF_BUDGET} bytes or {DIFF_LINES} lines)\n")
}

fn door_io(dir: &Dir, path: &str, source: std::io::Error) -> FileSetError {
    DoorError::Io {
        path: dir.show(path),
        source,
    }
    .into()
}

/// What one write does, as recorded in its journal.
#[derive(Default)]
struct Commit {
    /// Directories the run makes, outermost first.
    dirs: Vec<String>,
    /// (temporary, target), in path order.
    staged: Vec<(String, String)>,
}

impl Commit {
    /// Removes what staging made: the temporaries, then the directories.
    fn roll_back(&self, dir: &Dir) {
        for (tmp, _) in &self.staged {
            let _ = dir.remove_file(tmp);
        }
        for made in self.dirs.iter().rev() {
            dir.remove_empty_dir(made);
        }
    }
}

/// The directories above `path` that do not exist yet, outermost first.
fn missing_dirs(dir: &Dir, path: &str) -> Result<Vec<String>, FileSetError> {
    let mut missing = Vec::new();
    let mut at = 0;
    while let Some(slash) = path[at..].find('/') {
        let parent = &path[..at + slash];
        match dir.kind(parent)? {
            None => missing.push(parent.to_string()),
            Some(Kind::Dir) => {}
            Some(Kind::Symlink) => {
                return Err(DoorError::Symlink {
                    path: dir.show(parent),
                }
                .into())
            }
            Some(found) => {
                return Err(DoorError::WrongKind {
                    path: dir.show(parent),
                    found,
                    expected: Kind::Dir,
                }
                .into())
            }
        }
        at += slash + 1;
    }
    Ok(missing)
}

fn write_journal(dir: &Dir, own: &BTreeSet<String>, commit: &Commit) -> Result<(), FileSetError> {
    let mut text = String::from("poolc-journal 1\n");
    for path in own {
        text.push_str(&format!("own\t{path}\n"));
    }
    for made in &commit.dirs {
        text.push_str(&format!("dir\t{made}\n"));
    }
    for (tmp, _) in &commit.staged {
        text.push_str(&format!("tmp\t{tmp}\n"));
    }
    replace(dir, JOURNAL, text.as_bytes())?;
    crash_point("journaled");
    Ok(())
}

/// Writes `name` (at the top of `dir`) through a temporary and a rename.
fn replace(dir: &Dir, name: &str, bytes: &[u8]) -> Result<(), DoorError> {
    let tmp = temporary_name(name);
    let written = dir
        .create_new(&tmp, bytes)
        .and_then(|()| dir.rename(&tmp, name));
    if written.is_err() {
        let _ = dir.remove_file(&tmp);
    }
    written
}

/// A journal left by a run that failed or was killed, undone as far as
/// staging goes: its temporaries and the empty directories it made are
/// removed. The journal itself stays until this run commits, since the paths
/// it owns are still poolc's. Returns the journal's text, if there was one.
fn recover(dir: &Dir) -> Result<Option<String>, FileSetError> {
    // Temporaries of any run, journaled or not: only regular files named
    // the way poolc names them.
    sweep_temporaries(dir, "");
    let Some(bytes) = dir.read(JOURNAL, MAX_LIST_BYTES)? else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let mut made: Vec<&str> = journal_entries(&text, "dir").collect();
    made.sort_by_key(|d| std::cmp::Reverse(d.len()));
    for d in made {
        dir.remove_empty_dir(d);
    }
    Ok(Some(text))
}

fn journal_entries<'a>(text: &'a str, kind: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    text.lines().filter_map(move |line| {
        line.strip_prefix(kind)
            .and_then(|rest| rest.strip_prefix('\t'))
            .filter(|p| is_safe_relative(p))
    })
}

/// Dies on the spot, as `kill -9` would, when `POOLC_CRASH_AT` names this
/// point: the crash-safety tests stop a run exactly between two steps. A run
/// killed anywhere leaves its journal; the next run sweeps the temporaries,
/// removes what the journal owns and is no longer produced, and rewrites
/// what differs, so it ends with exactly the tree a clean run writes.
fn crash_point(name: &str) {
    if std::env::var_os("POOLC_CRASH_AT").is_some_and(|at| at == name) {
        std::process::abort();
    }
}

const TEMP_MARK: &str = ".poolc-tmp-";

/// `dir/.name.poolc-tmp-<random>`: never a name a user or an attacker can
/// predict, and created with `O_EXCL` in any case.
fn temporary_name(path: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write(path.as_bytes());
    let suffix = hasher.finish();
    match path.rsplit_once('/') {
        Some((parent, name)) => format!("{parent}/.{name}{TEMP_MARK}{suffix:016x}"),
        None => format!(".{path}{TEMP_MARK}{suffix:016x}"),
    }
}

fn is_temporary(name: &str) -> bool {
    name.starts_with('.') && name.contains(TEMP_MARK)
}

/// Removes the temporaries a killed run left under `rel` (of `dir`): regular
/// files named like poolc's, in real directories; links are not followed.
fn sweep_temporaries(dir: &Dir, rel: &str) {
    let here = if rel.is_empty() {
        dir.entries()
    } else {
        dir.subdir(rel).and_then(|d| d.entries())
    };
    let Ok(entries) = here else { return };
    for (name, kind) in entries {
        let path = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        match kind {
            Kind::Dir => sweep_temporaries(dir, &path),
            Kind::File if is_temporary(&name) => {
                let _ = dir.remove_file(&path);
            }
            _ => {}
        }
    }
}

/// An output directory must be poolc's: empty, or holding its manifest or
/// journal. `--out /` or a checkout root is refused before anything is
/// swept or written.
fn refuse_foreign(dir: &Dir) -> Result<(), FileSetError> {
    let entries = dir.entries()?;
    // A manifest that is not a regular file is refused when it is read.
    let ours = entries
        .iter()
        .any(|(name, _)| name == MANIFEST || name == JOURNAL)
        || entries
            .iter()
            .all(|(name, kind)| *kind == Kind::File && (name == LOCK || is_temporary(name)));
    if ours {
        Ok(())
    } else {
        Err(FileSetError::NotOurs(dir.shown().to_string()))
    }
}

fn remove_empty_parents(dir: &Dir, file: &str) {
    let mut path = file;
    while let Some((parent, _)) = path.rsplit_once('/') {
        if !dir.remove_empty_dir(parent) {
            break;
        }
        path = parent;
    }
}

/// The paths poolc may remove: the manifest's, and those of an unfinished
/// commit's journal.
fn owned(dir: &Dir) -> Result<BTreeSet<String>, FileSetError> {
    let mut own = BTreeSet::new();
    if let Some(bytes) = dir.read(MANIFEST, MAX_LIST_BYTES)? {
        let text = String::from_utf8_lossy(&bytes);
        own.extend(
            text.lines()
                .filter(|l| is_safe_relative(l))
                .map(str::to_string),
        );
    }
    if let Some(bytes) = dir.read(JOURNAL, MAX_LIST_BYTES)? {
        let text = String::from_utf8_lossy(&bytes);
        own.extend(journal_entries(&text, "own").map(str::to_string));
    }
    Ok(own)
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
