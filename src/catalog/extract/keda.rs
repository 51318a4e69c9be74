//! KEDA: the Prometheus metrics of the operator, the metrics server and the
//! admission webhooks, read from every Go file of the metrics packages
//! (`pkg/metrics` before 2.9, `pkg/prommetrics` to 2.11,
//! `pkg/metricscollector` since 2.12; the OpenTelemetry collector there
//! uses other names and is skipped).

use std::path::Path;

use super::{find_clone, gosrc, release_tags, ExtractError, Releases};
use crate::catalog::Version;

pub const SOURCES: &[&str] = &["kedacore/keda"];

const PACKAGES: &[&str] = &["pkg/metrics", "pkg/prommetrics", "pkg/metricscollector"];

pub fn extract(clones: &Path) -> Result<Releases, ExtractError> {
    let repo = find_clone(clones, SOURCES[0])?;
    let mut releases = Releases::new();
    for (version, tag) in release_tags(&repo, Version::new(2, 0))? {
        let mut texts = Vec::new();
        for dir in PACKAGES {
            for path in repo.files(&tag, dir)? {
                if !path.ends_with(".go")
                    || path.ends_with("_test.go")
                    || path.contains("opentelemetry")
                {
                    continue;
                }
                if let Some(text) = repo.show(&tag, &path) {
                    texts.push(text);
                }
            }
        }
        let mut symbols = gosrc::Symbols::default();
        for t in &texts {
            symbols.add_file(t);
        }
        let rows = releases.entry(version).or_default();
        for t in &texts {
            rows.extend(gosrc::metrics(t, &symbols));
        }
    }
    Ok(releases)
}
