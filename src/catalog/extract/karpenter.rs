//! Karpenter as deployed on AWS: the provider's metrics and those of the
//! core it pins in `go.mod` (a tag or a pseudo-version's commit), read from
//! every non-test Go file under `pkg/` that registers Prometheus options.
//! Versions are the AWS provider's release tags.
//!
//! The node gauges' labels are computed at run time from the well-known
//! node labels (core's `WellKnownLabels`, extended by the provider's
//! `init`). They are read the way that code builds them: each well-known
//! label key, resolved through the constants of core, the provider and the
//! `k8s.io/api` release pinned in `go.mod`, becomes the part after its `/`,
//! lower-cased, with `-` as `_`.
//!
//! The controller also serves the families of the libraries the
//! provider's `go.mod` pins: controller-runtime's, the Go and process
//! collectors', the AWS SDK clients' `aws_sdk_go_request_*` where the
//! provider wraps its SDK config with aws-sdk-go-prometheus, and
//! operatorpkg's `operator_*` (with the per-kind families of
//! the status and events controllers core and the provider create), read as `golibs`
//! describes.

use std::collections::BTreeSet;
use std::path::Path;

use regex::Regex;

use super::golibs::{self, GoMod};
use super::{find_clone, gosrc, release_tags, ExtractError, Releases, Repo};
use crate::catalog::Version;

pub const SOURCES: &[&str] = &[
    "aws/karpenter-provider-aws",
    "kubernetes-sigs/karpenter",
    "kubernetes/api",
    "kubernetes-sigs/controller-runtime",
    "prometheus/client_golang",
    "awslabs/operatorpkg",
    "jonathan-innis/aws-sdk-go-prometheus",
];

fn go_files(repo: &Repo, rev: &str, out: &mut Vec<String>) -> Result<(), ExtractError> {
    for path in repo.grep_files(rev, "Opts{", &["pkg"])? {
        if path.ends_with(".go") && !path.ends_with("_test.go") {
            out.extend(repo.show(rev, &path));
        }
    }
    Ok(())
}

fn well_known(text: &str, symbols: &gosrc::Symbols) -> BTreeSet<String> {
    let set = Regex::new(
        r"WellKnownLabels(?:\s*=\s*sets\.New|\s*=\s*[\w.]*WellKnownLabels\.Insert|\.Insert)\s*\(",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut out = BTreeSet::new();
    for m in set.find_iter(text) {
        let Some(body) = gosrc::block(text, m.end() - 1) else {
            continue;
        };
        for item in body.split(',') {
            let item = item.trim();
            if item.is_empty() || item.starts_with("//") {
                continue;
            }
            if let Some(key) = symbols.string(item) {
                let name = key.rsplit('/').next().unwrap_or(&key);
                out.insert(name.to_lowercase().replace(['-', '.'], "_"));
            }
        }
    }
    out
}

pub fn extract(clones: &Path) -> Result<Releases, ExtractError> {
    let aws = find_clone(clones, SOURCES[0])?;
    let core = find_clone(clones, SOURCES[1])?;
    let api = find_clone(clones, SOURCES[2]).ok();
    let libs = golibs::Libraries::new(clones);
    let mut cache = golibs::Cache::default();
    let mut releases = Releases::new();
    for (version, tag) in release_tags(&aws, Version::new(1, 0))? {
        let go_mod = GoMod::parse(&aws.show(&tag, "go.mod").unwrap_or_default());
        let Some(core_rev) = go_mod.revision("sigs.k8s.io/karpenter") else {
            continue;
        };
        let mut texts = Vec::new();
        go_files(&core, &core_rev, &mut texts)?;
        go_files(&aws, &tag, &mut texts)?;
        let mut label_sources = Vec::new();
        if let (Some(api), Some(rev)) = (&api, go_mod.revision("k8s.io/api")) {
            label_sources.extend(api.show(&rev, "core/v1/well_known_labels.go"));
        }
        label_sources.extend(core.show(&core_rev, "pkg/apis/apis.go"));
        label_sources.extend(core.show(&core_rev, "pkg/apis/v1/labels.go"));
        label_sources.extend(core.show(&core_rev, "pkg/metrics/constants.go"));
        let mut symbols = gosrc::Symbols::default();
        for t in &label_sources {
            symbols.add_file(t);
        }
        let mut well = BTreeSet::new();
        for t in &label_sources {
            well.extend(well_known(t, &symbols));
        }
        // The provider's own label keys, in its own namespace.
        let mut provider = gosrc::Symbols::default();
        let provider_sources: Vec<String> = ["pkg/apis/apis.go", "pkg/apis/v1/labels.go"]
            .iter()
            .filter_map(|p| aws.show(&tag, p))
            .collect();
        for t in label_sources.iter().chain(&provider_sources) {
            provider.add_file(t);
        }
        for t in &provider_sources {
            well.extend(well_known(t, &provider));
        }
        symbols.well_known = well;
        for t in &texts {
            symbols.add_file(t);
        }
        let rows = releases.entry(version).or_default();
        for t in &texts {
            rows.extend(gosrc::metrics(t, &symbols));
        }
        // Core's and the provider's status and events controllers.
        let mut app = Vec::new();
        for (repo, rev) in [(&core, core_rev.as_str()), (&aws, tag.as_str())] {
            let mut paths = repo.grep_files(rev, "status.New", &["pkg"])?;
            paths.extend(repo.grep_files(rev, "events.NewController[", &["pkg"])?);
            // The AWS SDK clients' request families.
            paths.extend(repo.grep_files(rev, golibs::AWS_SDK_PROMETHEUS, &["pkg"])?);
            paths.sort();
            paths.dedup();
            for path in paths {
                if path.ends_with(".go") && !path.ends_with("_test.go") {
                    app.extend(repo.show(rev, &path));
                }
            }
        }
        rows.extend(golibs::families(
            &libs,
            &mut cache,
            (&aws, &tag),
            &go_mod,
            &app,
        )?);
    }
    Ok(releases)
}
