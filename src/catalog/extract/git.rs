//! Read-only access to a git clone (bare or not) through the `git` command:
//! tags, the files of a tag, a file's text at a tag.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::ExtractError;

pub struct Repo {
    dir: PathBuf,
}

impl Repo {
    pub fn new(dir: PathBuf) -> Repo {
        Repo { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn git(&self, args: &[&str]) -> Result<String, ExtractError> {
        let out = Command::new("git")
            .arg("-C")
            .arg(&self.dir)
            .args(args)
            .output()
            .map_err(|e| self.error(args, e.to_string()))?;
        if !out.status.success() {
            return Err(self.error(
                args,
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn error(&self, args: &[&str], message: String) -> ExtractError {
        ExtractError::Git {
            args: args.join(" "),
            dir: self.dir.clone(),
            message,
        }
    }

    pub fn tags(&self) -> Result<Vec<String>, ExtractError> {
        Ok(self.git(&["tag"])?.lines().map(str::to_string).collect())
    }

    /// Every file path at `tag` under `dir` (recursive).
    pub fn files(&self, tag: &str, dir: &str) -> Result<Vec<String>, ExtractError> {
        Ok(self
            .git(&["ls-tree", "-r", "--name-only", tag, "--", dir])?
            .lines()
            .map(str::to_string)
            .collect())
    }

    /// A file's text at `tag`; None when the file does not exist there.
    pub fn show(&self, tag: &str, path: &str) -> Option<String> {
        self.git(&["show", &format!("{tag}:{path}")]).ok()
    }
}

impl Repo {
    /// The files at `tag` under `paths` whose text contains `fixed` (a fixed
    /// string, not a pattern).
    pub fn grep_files(
        &self,
        tag: &str,
        fixed: &str,
        paths: &[&str],
    ) -> Result<Vec<String>, ExtractError> {
        let mut args = vec!["grep", "-l", "-F", "-e", fixed, tag, "--"];
        args.extend_from_slice(paths);
        let out = Command::new("git")
            .arg("-C")
            .arg(&self.dir)
            .args(&args)
            .output()
            .map_err(|e| self.error(&args, e.to_string()))?;
        // git grep exits 1 when nothing matches.
        if !out.status.success() && out.status.code() != Some(1) {
            return Err(self.error(
                &args,
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ));
        }
        let prefix = format!("{tag}:");
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.strip_prefix(&prefix).unwrap_or(l).to_string())
            .collect())
    }
}

impl Repo {
    /// Whether `path` exists at `rev` (a file or a directory).
    pub fn exists(&self, rev: &str, path: &str) -> bool {
        self.git(&["cat-file", "-e", &format!("{rev}:{path}")])
            .is_ok()
    }

    /// Whether `rev` names a commit of this clone.
    pub fn has_commit(&self, rev: &str) -> bool {
        self.git(&["cat-file", "-e", &format!("{rev}^{{commit}}")])
            .is_ok()
    }

    /// The newest commit of the default branch committed at or before
    /// `time` (`YYYY-MM-DDTHH:MM:SSZ`), for a revision the clone lacks.
    pub fn commit_before(&self, time: &str) -> Option<String> {
        let out = self
            .git(&["rev-list", "-1", &format!("--before={time}"), "HEAD"])
            .ok()?;
        let hash = out.trim();
        (!hash.is_empty()).then(|| hash.to_string())
    }

    /// Every commit of every branch whose subject starts with `prefix`, as
    /// (commit, the rest of the subject).
    pub fn commits_with_subject(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, String)>, ExtractError> {
        let out = self.git(&[
            "log",
            "--all",
            "--format=%H %s",
            "--fixed-strings",
            &format!("--grep={prefix}"),
        ])?;
        Ok(out
            .lines()
            .filter_map(|l| {
                let (hash, subject) = l.split_once(' ')?;
                let rest = subject.strip_prefix(prefix)?;
                Some((hash.to_string(), rest.trim().to_string()))
            })
            .collect())
    }
}

/// A file at a revision as its blob id, from `git ls-tree`.
pub struct Blob {
    pub id: String,
    pub path: String,
}

impl Repo {
    /// Every file at `rev` under `dirs` with its blob id, so texts can be
    /// read once per blob however many tags share it.
    pub fn blobs(&self, rev: &str, dirs: &[&str]) -> Result<Vec<Blob>, ExtractError> {
        let mut args = vec!["ls-tree", "-r", rev, "--"];
        args.extend_from_slice(dirs);
        Ok(self
            .git(&args)?
            .lines()
            .filter_map(|l| {
                let (meta, path) = l.split_once('\t')?;
                let id = meta.split_whitespace().nth(2)?;
                Some(Blob {
                    id: id.to_string(),
                    path: path.to_string(),
                })
            })
            .collect())
    }

    /// Blob texts through one `git cat-file --batch` process.
    pub fn reader(&self) -> Result<BlobReader, ExtractError> {
        let args = ["cat-file", "--batch"];
        let mut child = Command::new("git")
            .arg("-C")
            .arg(&self.dir)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| self.error(&args, e.to_string()))?;
        let (Some(input), Some(output)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(self.error(&args, "no pipes".into()));
        };
        Ok(BlobReader {
            dir: self.dir.clone(),
            child,
            input,
            output: std::io::BufReader::new(output),
            cache: std::collections::HashMap::new(),
        })
    }
}

/// Reads blobs by id, each once.
pub struct BlobReader {
    dir: PathBuf,
    child: std::process::Child,
    input: std::process::ChildStdin,
    output: std::io::BufReader<std::process::ChildStdout>,
    cache: std::collections::HashMap<String, std::rc::Rc<str>>,
}

impl BlobReader {
    pub fn text(&mut self, id: &str) -> Result<std::rc::Rc<str>, ExtractError> {
        use std::io::{BufRead, Read, Write};
        if let Some(t) = self.cache.get(id) {
            return Ok(t.clone());
        }
        let fail = |message: String| ExtractError::Git {
            args: format!("cat-file --batch {id}"),
            dir: self.dir.clone(),
            message,
        };
        writeln!(self.input, "{id}").map_err(|e| fail(e.to_string()))?;
        self.input.flush().map_err(|e| fail(e.to_string()))?;
        let mut header = String::new();
        self.output
            .read_line(&mut header)
            .map_err(|e| fail(e.to_string()))?;
        let size: usize = header
            .split_whitespace()
            .nth(2)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| fail(format!("unexpected answer {:?}", header.trim())))?;
        let mut body = vec![0u8; size + 1];
        self.output
            .read_exact(&mut body)
            .map_err(|e| fail(e.to_string()))?;
        body.truncate(size);
        let text: std::rc::Rc<str> = String::from_utf8_lossy(&body).into();
        self.cache.insert(id.to_string(), text.clone());
        Ok(text)
    }
}

impl Drop for BlobReader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
