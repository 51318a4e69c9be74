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
