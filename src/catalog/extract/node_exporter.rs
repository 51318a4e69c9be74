//! node-exporter: the end-to-end test fixture `collector/fixtures/e2e-output.txt`
//! is the exporter's real output with every collector enabled, so each
//! release's families, types and labels are read from it as exposition text.

use std::path::Path;

use super::{exposition, find_clone, release_tags, ExtractError, Releases};
use crate::catalog::Version;

pub const SOURCES: &[&str] = &["prometheus/node_exporter"];

pub fn extract(clones: &Path) -> Result<Releases, ExtractError> {
    let repo = find_clone(clones, SOURCES[0])?;
    let mut releases = Releases::new();
    for (version, tag) in release_tags(&repo, Version::new(1, 0))? {
        if let Some(text) = repo.show(&tag, "collector/fixtures/e2e-output.txt") {
            releases.insert(version, exposition::rows(&text).into_iter().collect());
        }
    }
    Ok(releases)
}
