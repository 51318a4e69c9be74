//! The one door to the file system for everything poolc reads or writes
//! under `specs/`, the output directory and lint inputs.
//!
//! Those trees come from a pull request, so a symlink, a FIFO or a device in
//! them is an attack, not an accident. Every path below a [`Dir`] handle is
//! walked one component at a time with `openat(O_NOFOLLOW)`: no symlink is
//! followed in any component, and `..` is never accepted, so nothing outside
//! the handle's directory can be reached. Files open with `O_NONBLOCK` (a
//! FIFO cannot hang the open), must be regular files (a FIFO, device, socket
//! or directory in a file's place is an error naming the path), and are read
//! up to a limit, never to the end of whatever they are. New files are
//! created with `O_CREAT | O_EXCL`, so nothing planted at their name is
//! written through.
//!
//! The directory a user names on the command line is the anchor. For a
//! relative path every component is walked without following links, since
//! the working tree is what may be hostile. For an absolute path the parent
//! is resolved as the system does (it is the caller's own choice, outside
//! any tree poolc reads) and only the last component must not be a link.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

/// What a path turned out to be, for errors and directory listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    Device,
    Unknown,
}

impl Kind {
    fn of(file_type: FileType) -> Kind {
        match file_type {
            FileType::RegularFile => Kind::File,
            FileType::Directory => Kind::Dir,
            FileType::Symlink => Kind::Symlink,
            FileType::Fifo => Kind::Fifo,
            FileType::Socket => Kind::Socket,
            FileType::CharacterDevice | FileType::BlockDevice => Kind::Device,
            _ => Kind::Unknown,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Kind::File => "a regular file",
            Kind::Dir => "a directory",
            Kind::Symlink => "a symbolic link",
            Kind::Fifo => "a FIFO (named pipe)",
            Kind::Socket => "a socket",
            Kind::Device => "a device",
            Kind::Unknown => "not a regular file",
        }
    }
}

/// Why the door refused or failed; every variant names the path.
#[derive(Debug, thiserror::Error)]
pub enum DoorError {
    #[error("{path} is a symbolic link: poolc follows no links in specs/, the output directory or lint inputs; replace it with the file or directory itself")]
    Symlink { path: String },
    #[error("{path} is {}, where poolc expects {}: remove it or replace it with {}", found.describe(), expected.describe(), expected.describe())]
    WrongKind {
        path: String,
        found: Kind,
        expected: Kind,
    },
    #[error("{path} is larger than poolc's limit of {limit} bytes for this file")]
    TooLarge { path: String, limit: usize },
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{path} is not a plain relative path (no `..`, no leading `/`, no empty part)")]
    BadPath { path: String },
}

impl DoorError {
    /// True when nothing exists at the path.
    pub fn is_not_found(&self) -> bool {
        matches!(self, DoorError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }

    fn io(path: &str, source: impl Into<io::Error>) -> DoorError {
        DoorError::Io {
            path: path.to_string(),
            source: source.into(),
        }
    }
}

/// An open directory; every path given to its methods is relative to it,
/// `/`-separated, and resolved beneath it without following links.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    /// How the user sees this directory, for messages: `generated`, `specs/a`.
    shown: String,
}

/// A regular file opened for reading, with its size at open time.
pub struct RegularFile {
    file: File,
    pub size: u64,
}

impl RegularFile {
    /// The open file, for a caller that bounds its own reads.
    pub fn into_reader(self) -> File {
        self.file
    }

    /// At most `limit` bytes; `None` if the file holds more.
    pub fn read_bounded(self, limit: usize) -> io::Result<Option<Vec<u8>>> {
        let mut bytes = Vec::with_capacity((self.size as usize).min(limit) + 1);
        self.file.take(limit as u64 + 1).read_to_end(&mut bytes)?;
        Ok((bytes.len() <= limit).then_some(bytes))
    }
}

/// How a user-supplied path is shown in messages.
pub fn shown(path: &Path) -> String {
    let text = path.to_string_lossy().replace('\\', "/");
    let trimmed = text.trim_end_matches('/');
    if trimmed.is_empty() && text.starts_with('/') {
        "/".into()
    } else {
        trimmed.to_string()
    }
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::NONBLOCK)
    .union(OFlags::CLOEXEC);
const FILE_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::NONBLOCK)
    .union(OFlags::NOCTTY)
    .union(OFlags::CLOEXEC);

/// What a user-named path is once opened: a directory or a regular file.
pub enum Opened {
    Dir(Dir),
    File(RegularFile),
}

/// Splits a user path into the directory resolved as the system does and
/// the components walked without following links (see the module doc).
fn anchor(path: &Path) -> Result<(OwnedFd, Vec<String>), DoorError> {
    let shown_path = shown(path);
    let components: Vec<Component> = path.components().collect();
    let (trusted, walked): (std::path::PathBuf, &[Component]) = if path.is_absolute() {
        match components.split_last() {
            Some((last @ Component::Normal(_), rest)) => {
                (rest.iter().collect(), std::slice::from_ref(last))
            }
            _ => (path.to_path_buf(), &[]),
        }
    } else {
        let cut = components
            .iter()
            .rposition(|c| matches!(c, Component::ParentDir | Component::Prefix(_)))
            .map_or(0, |i| i + 1);
        let prefix: std::path::PathBuf = components[..cut].iter().collect();
        let prefix = if prefix.as_os_str().is_empty() {
            Path::new(".").to_path_buf()
        } else {
            prefix
        };
        (prefix, &components[cut..])
    };
    let fd = rustix::fs::open(
        &trusted,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| DoorError::io(&shown_path, e))?;
    let names = walked
        .iter()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    Ok((fd, names))
}

impl Dir {
    /// Opens a directory the user named (`--specs`, `--out`, a lint path).
    pub fn open(path: &Path) -> Result<Dir, DoorError> {
        let (fd, names) = anchor(path)?;
        let base = Dir {
            fd,
            shown: String::new(),
        };
        let mut dir = base.walk(&names, false, &mut Vec::new(), &shown(path))?;
        dir.shown = shown(path);
        Ok(dir)
    }

    /// Opens a directory the user named, making it (and missing parents
    /// below the anchor) if needed. True in the second place if it was made.
    pub fn open_or_create(path: &Path) -> Result<(Dir, bool), DoorError> {
        let (fd, names) = anchor(path)?;
        let base = Dir {
            fd,
            shown: String::new(),
        };
        let mut made = Vec::new();
        let mut dir = base.walk(&names, true, &mut made, &shown(path))?;
        dir.shown = shown(path);
        Ok((dir, !made.is_empty()))
    }

    /// Opens what the user named, a directory or a regular file.
    pub fn open_any(path: &Path) -> Result<Opened, DoorError> {
        let shown_path = shown(path);
        let (fd, mut names) = anchor(path)?;
        let Some(last) = names.pop() else {
            return Ok(Opened::Dir(Dir {
                fd,
                shown: shown_path,
            }));
        };
        let parent = Dir {
            fd,
            shown: String::new(),
        }
        .walk(&names, false, &mut Vec::new(), &shown_path)?;
        let file = rustix::fs::openat(&parent.fd, last.as_str(), FILE_FLAGS, Mode::empty())
            .map_err(|e| parent.explain(&last, e, &shown_path))?;
        let stat = rustix::fs::fstat(&file).map_err(|e| DoorError::io(&shown_path, e))?;
        match Kind::of(FileType::from_raw_mode(stat.st_mode)) {
            Kind::Dir => Ok(Opened::Dir(Dir {
                fd: file,
                shown: shown_path,
            })),
            Kind::File => Ok(Opened::File(RegularFile {
                file: File::from(file),
                size: stat.st_size as u64,
            })),
            found => Err(DoorError::WrongKind {
                path: shown_path,
                found,
                expected: Kind::File,
            }),
        }
    }

    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// `rel` as the user sees it: `generated/prod/rules.yaml`.
    pub fn show(&self, rel: &str) -> String {
        match self.shown.as_str() {
            "" | "." => rel.to_string(),
            "/" => format!("/{rel}"),
            dir => format!("{dir}/{rel}"),
        }
    }

    /// Walks `names` beneath `self`, one `openat(O_NOFOLLOW)` each; with
    /// `create`, missing directories are made and recorded in `made`.
    fn walk(
        &self,
        names: &[String],
        create: bool,
        made: &mut Vec<String>,
        shown_path: &str,
    ) -> Result<Dir, DoorError> {
        let mut fd = rustix::io::dup(&self.fd).map_err(|e| DoorError::io(shown_path, e))?;
        let mut so_far = self.shown.clone();
        for name in names {
            so_far = if so_far.is_empty() {
                name.clone()
            } else {
                format!("{so_far}/{name}")
            };
            let here = Dir {
                fd,
                shown: String::new(),
            };
            let opened = match rustix::fs::openat(&here.fd, name.as_str(), DIR_FLAGS, Mode::empty())
            {
                Err(rustix::io::Errno::NOENT) if create => {
                    match rustix::fs::mkdirat(&here.fd, name.as_str(), Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                        Err(e) => return Err(DoorError::io(&so_far, e)),
                    }
                    made.push(so_far.clone());
                    rustix::fs::openat(&here.fd, name.as_str(), DIR_FLAGS, Mode::empty())
                }
                other => other,
            };
            fd = opened.map_err(|e| here.explain_dir(name, e, &so_far))?;
        }
        Ok(Dir { fd, shown: so_far })
    }

    /// The error for a failed open of `name`, by what is really there.
    fn explain(&self, name: &str, errno: rustix::io::Errno, shown_path: &str) -> DoorError {
        match self.kind_of_entry(name) {
            Some(Kind::Symlink) => DoorError::Symlink {
                path: shown_path.to_string(),
            },
            Some(found) if found != Kind::File && found != Kind::Dir => DoorError::WrongKind {
                path: shown_path.to_string(),
                found,
                expected: Kind::File,
            },
            _ => DoorError::io(shown_path, errno),
        }
    }

    fn explain_dir(&self, name: &str, errno: rustix::io::Errno, shown_path: &str) -> DoorError {
        match self.kind_of_entry(name) {
            Some(Kind::Symlink) => DoorError::Symlink {
                path: shown_path.to_string(),
            },
            Some(found) if found != Kind::Dir => DoorError::WrongKind {
                path: shown_path.to_string(),
                found,
                expected: Kind::Dir,
            },
            _ => DoorError::io(shown_path, errno),
        }
    }

    fn kind_of_entry(&self, name: &str) -> Option<Kind> {
        rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW)
            .ok()
            .map(|s| Kind::of(FileType::from_raw_mode(s.st_mode)))
    }

    /// Splits `rel` into its parent directory (opened) and its last name.
    fn parent_of(&self, rel: &str) -> Result<(Dir, String), DoorError> {
        let mut names = split(rel).ok_or_else(|| DoorError::BadPath {
            path: self.show(rel),
        })?;
        let last = names.pop().unwrap_or_default();
        let parent = self.walk(&names, false, &mut Vec::new(), &self.show(rel))?;
        Ok((parent, last))
    }

    /// What is at `rel`, without following a link; `None` if nothing is.
    pub fn kind(&self, rel: &str) -> Result<Option<Kind>, DoorError> {
        let (parent, name) = match self.parent_of(rel) {
            Ok(found) => found,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        match rustix::fs::statat(&parent.fd, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(s) => Ok(Some(Kind::of(FileType::from_raw_mode(s.st_mode)))),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(DoorError::io(&self.show(rel), e)),
        }
    }

    /// Opens the regular file at `rel`; `None` if nothing is there.
    pub fn open_file(&self, rel: &str) -> Result<Option<RegularFile>, DoorError> {
        let shown_path = self.show(rel);
        let (parent, name) = match self.parent_of(rel) {
            Ok(found) => found,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let fd = match rustix::fs::openat(&parent.fd, name.as_str(), FILE_FLAGS, Mode::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(e) => return Err(parent.explain(&name, e, &shown_path)),
        };
        let stat = rustix::fs::fstat(&fd).map_err(|e| DoorError::io(&shown_path, e))?;
        match Kind::of(FileType::from_raw_mode(stat.st_mode)) {
            Kind::File => Ok(Some(RegularFile {
                file: File::from(fd),
                size: stat.st_size as u64,
            })),
            found => Err(DoorError::WrongKind {
                path: shown_path,
                found,
                expected: Kind::File,
            }),
        }
    }

    /// The bytes of the regular file at `rel`, at most `limit` of them;
    /// `None` if nothing is there.
    pub fn read(&self, rel: &str, limit: usize) -> Result<Option<Vec<u8>>, DoorError> {
        let Some(file) = self.open_file(rel)? else {
            return Ok(None);
        };
        match file.read_bounded(limit) {
            Ok(Some(bytes)) => Ok(Some(bytes)),
            Ok(None) => Err(DoorError::TooLarge {
                path: self.show(rel),
                limit,
            }),
            Err(e) => Err(DoorError::io(&self.show(rel), e)),
        }
    }

    /// The directory at `rel`, opened without following links.
    pub fn subdir(&self, rel: &str) -> Result<Dir, DoorError> {
        let names = split(rel).ok_or_else(|| DoorError::BadPath {
            path: self.show(rel),
        })?;
        self.walk(&names, false, &mut Vec::new(), &self.show(rel))
    }

    /// The directory at `rel`, made with its missing parents; the ones made
    /// (relative to `self`) are appended to `made`, outermost first.
    pub fn subdir_or_create(&self, rel: &str, made: &mut Vec<String>) -> Result<Dir, DoorError> {
        let names = split(rel).ok_or_else(|| DoorError::BadPath {
            path: self.show(rel),
        })?;
        let base = Dir {
            fd: rustix::io::dup(&self.fd).map_err(|e| DoorError::io(&self.show(rel), e))?,
            shown: String::new(),
        };
        let mut dir = base.walk(&names, true, made, &self.show(rel))?;
        dir.shown = self.show(rel);
        Ok(dir)
    }

    /// Every entry, by name, with its kind (links not followed).
    pub fn entries(&self) -> Result<Vec<(String, Kind)>, DoorError> {
        let mut reader =
            rustix::fs::Dir::read_from(&self.fd).map_err(|e| DoorError::io(&self.shown, e))?;
        let mut out = Vec::new();
        while let Some(entry) = reader.read() {
            let entry = entry.map_err(|e| DoorError::io(&self.shown, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "." || name == ".." {
                continue;
            }
            let kind = match entry.file_type() {
                FileType::Unknown => self.kind_of_entry(&name).unwrap_or(Kind::Unknown),
                known => Kind::of(known),
            };
            out.push((name, kind));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Creates `rel` (which must not exist in any form, not even as a
    /// dangling link), writes `bytes` and syncs it.
    pub fn create_new(&self, rel: &str, bytes: &[u8]) -> Result<(), DoorError> {
        let shown_path = self.show(rel);
        let (parent, name) = self.parent_of(rel)?;
        let fd = rustix::fs::openat(
            &parent.fd,
            name.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .map_err(|e| match e {
            rustix::io::Errno::EXIST => match parent.kind_of_entry(&name) {
                Some(Kind::Symlink) => DoorError::Symlink {
                    path: shown_path.clone(),
                },
                _ => DoorError::io(&shown_path, e),
            },
            e => DoorError::io(&shown_path, e),
        })?;
        let mut file = File::from(fd);
        fault("write", &shown_path)?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(|e| DoorError::io(&shown_path, e))
    }

    /// Renames `from` over `to`, both beneath `self`. A link at `to` is
    /// replaced, never written through.
    pub fn rename(&self, from: &str, to: &str) -> Result<(), DoorError> {
        let (from_dir, from_name) = self.parent_of(from)?;
        let (to_dir, to_name) = self.parent_of(to)?;
        fault("rename", &self.show(to))?;
        rustix::fs::renameat(
            &from_dir.fd,
            from_name.as_str(),
            &to_dir.fd,
            to_name.as_str(),
        )
        .map_err(|e| DoorError::io(&self.show(to), e))?;
        let _ = rustix::fs::fsync(&to_dir.fd);
        Ok(())
    }

    /// Removes the regular file at `rel`. Anything else there (a link, a
    /// directory, a FIFO) is left alone; false if nothing was removed.
    pub fn remove_file(&self, rel: &str) -> Result<bool, DoorError> {
        let (parent, name) = match self.parent_of(rel) {
            Ok(found) => found,
            Err(e) if e.is_not_found() => return Ok(false),
            Err(e) => return Err(e),
        };
        if parent.kind_of_entry(&name) != Some(Kind::File) {
            return Ok(false);
        }
        match rustix::fs::unlinkat(&parent.fd, name.as_str(), AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::NOENT) => Ok(false),
            Err(e) => Err(DoorError::io(&self.show(rel), e)),
        }
    }

    /// Removes the directory at `rel` if it is empty; false otherwise.
    pub fn remove_empty_dir(&self, rel: &str) -> bool {
        match self.parent_of(rel) {
            Ok((parent, name)) => {
                parent.kind_of_entry(&name) == Some(Kind::Dir)
                    && rustix::fs::unlinkat(&parent.fd, name.as_str(), AtFlags::REMOVEDIR).is_ok()
            }
            Err(_) => false,
        }
    }

    /// Opens (creating) the regular file at `rel` for an exclusive lock.
    pub fn lock_file(&self, rel: &str) -> Result<File, DoorError> {
        let shown_path = self.show(rel);
        let (parent, name) = self.parent_of(rel)?;
        let fd = rustix::fs::openat(
            &parent.fd,
            name.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .map_err(|e| parent.explain(&name, e, &shown_path))?;
        let stat = rustix::fs::fstat(&fd).map_err(|e| DoorError::io(&shown_path, e))?;
        match Kind::of(FileType::from_raw_mode(stat.st_mode)) {
            Kind::File => Ok(File::from(fd)),
            found => Err(DoorError::WrongKind {
                path: shown_path,
                found,
                expected: Kind::File,
            }),
        }
    }

    /// Flushes the directory's entries (renames, removals) to disk.
    pub fn sync(&self) {
        let _ = rustix::fs::fsync(self.fd.as_fd());
    }
}

/// `a/b/c` as names, or `None` if any part is empty, `.` or `..`.
fn split(rel: &str) -> Option<Vec<String>> {
    let names: Vec<String> = rel.split('/').map(str::to_string).collect();
    let plain = names
        .iter()
        .all(|n| !n.is_empty() && n != "." && n != ".." && !n.contains('\0'));
    plain.then_some(names)
}

/// Fails on the spot, as the system would, when `POOLC_FAIL_AT` names this
/// operation: `rename:3` refuses the third rename (as an immutable file
/// does), `write:2` the second file write and `write:TEXT` every write to a
/// path containing TEXT (a full disk, or no inodes left).
/// The commit tests use it where a real full disk or immutable file cannot
/// be had without privileges.
pub(crate) fn fault(operation: &str, path: &str) -> Result<(), DoorError> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static COUNTS: [AtomicUsize; 3] = [
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    ];
    let Some(at) = std::env::var_os("POOLC_FAIL_AT") else {
        return Ok(());
    };
    let at = at.to_string_lossy();
    let Some((op, nth)) = at.split_once(':') else {
        return Ok(());
    };
    let slot = match operation {
        "rename" => 0,
        "write" => 1,
        _ => 2,
    };
    if op != operation {
        return Ok(());
    }
    let count = COUNTS[slot].fetch_add(1, Ordering::SeqCst) + 1;
    let hit = match nth.parse::<usize>() {
        Ok(n) => n == count,
        // `write:zeta/` fails every write whose path contains `zeta/`.
        Err(_) => path.contains(nth),
    };
    if hit {
        let errno = if operation == "rename" {
            rustix::io::Errno::PERM
        } else {
            rustix::io::Errno::NOSPC
        };
        return Err(DoorError::io(path, errno));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_plain_names() {
        assert!(split("a/b").is_some());
        for bad in ["", "a//b", "../a", "a/..", "./a", "/a"] {
            assert!(split(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn shown_drops_trailing_slashes() {
        assert_eq!(shown(Path::new("generated/")), "generated");
        assert_eq!(shown(Path::new("/")), "/");
    }
}
