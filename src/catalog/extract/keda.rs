//! KEDA: the Prometheus metrics of the operator, the metrics server and the
//! admission webhooks, read from every Go file of the metrics packages
//! (`pkg/metrics` before 2.9, `pkg/prommetrics` to 2.11,
//! `pkg/metricscollector` since 2.12; the OpenTelemetry collector there
//! uses other names and is skipped).
//!
//! The operator, metrics server and webhooks are controller-runtime
//! managers: each release also serves the families of the libraries its
//! `go.mod` pins (controller-runtime, the Go and process collectors, and
//! from 2.14 the metrics service's gRPC server and client under
//! `keda_internal_metricsservice_`), read as `golibs` describes.

use std::path::Path;

use super::golibs::{self, GoMod};
use super::{find_clone, gosrc, release_tags, ExtractError, Releases};
use crate::catalog::Version;

pub const SOURCES: &[&str] = &[
    "kedacore/keda",
    "kubernetes-sigs/controller-runtime",
    "prometheus/client_golang",
    "grpc-ecosystem/go-grpc-middleware",
];

const PACKAGES: &[&str] = &["pkg/metrics", "pkg/prommetrics", "pkg/metricscollector"];

pub fn extract(clones: &Path) -> Result<Releases, ExtractError> {
    let repo = find_clone(clones, SOURCES[0])?;
    let libs = golibs::Libraries::new(clones);
    let mut cache = golibs::Cache::default();
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
        let go_mod = GoMod::parse(&repo.show(&tag, "go.mod").unwrap_or_default());
        let app: Vec<String> = repo
            .grep_files(&tag, "grpcprom.New", &["cmd", "pkg"])?
            .iter()
            .filter(|p| p.ends_with(".go") && !p.ends_with("_test.go"))
            .filter_map(|p| repo.show(&tag, p))
            .collect();
        rows.extend(golibs::families(
            &libs,
            &mut cache,
            (&repo, &tag),
            &go_mod,
            &app,
        )?);
    }
    Ok(releases)
}
