//! `poolc plan` over typical spec edits, in all three formats. Each snapshot
//! is what a reviewer would read on the PR.

mod common;

use std::fs;

use common::{poolc, stderr, stdout, with_repo_specs};

const ARM_POOL_START: &str = "  - name: arm64\n";

/// A named edit of the staging spec.
type Edit = (&'static str, fn(&str) -> String);

fn edits() -> Vec<Edit> {
    vec![
        ("no_change", |s| s.to_string()),
        ("max_changed", |s| {
            s.replacen("    max: 8\n", "    max: 12\n", 1)
        }),
        ("threshold_changed", |s| {
            s.replacen(
                "    max: 8\n",
                "    max: 8\n    alerts:\n      queue_backlog: 30\n",
                1,
            )
        }),
        ("instance_type_added", |s| {
            s.replacen(
                "      - type: m6id.24xlarge\n        pods_per_node: 2\n",
                "      - type: m6id.24xlarge\n        pods_per_node: 2\n      - type: m6id.12xlarge\n        pods_per_node: 1\n",
                1,
            )
        }),
        ("pool_removed", |s| {
            let start = s.find(ARM_POOL_START).expect("arm64 pool");
            let end = s[start + 1..]
                .find("\n  - name: ")
                .map(|i| start + 2 + i)
                .unwrap_or(s.len());
            format!("{}{}", &s[..start], &s[end..])
        }),
        ("pool_added", |s| {
            s.replacen(
                ARM_POOL_START,
                "  - name: amd64-large\n    arch: amd64\n    port: 4234\n    worker:\n      image: moby/buildkit:v0.29.0\n    instance_types:\n      - type: m6id.24xlarge\n        pods_per_node: 1\n    min: 1\n    max: 4\n\n  - name: arm64\n",
                1,
            )
        }),
    ]
}

#[test]
fn plan_reports_each_edit_in_every_format() {
    for (name, edit) in edits() {
        let dir = with_repo_specs(&format!("plan-{name}"));
        assert_eq!(poolc(&dir, &["generate"]).status.code(), Some(0));
        let spec = dir.join("specs/staging.yaml");
        let text = fs::read_to_string(&spec).unwrap();
        let edited = edit(&text);
        assert_eq!(
            edited == text,
            name == "no_change",
            "{name}: the edit did not apply"
        );
        fs::write(&spec, edited).unwrap();
        for format in ["text", "markdown", "json"] {
            let out = poolc(&dir, &["plan", "--format", format, "--detailed-exitcode"]);
            let expected = if name == "no_change" { 0 } else { 2 };
            assert_eq!(
                out.status.code(),
                Some(expected),
                "{name} {format}: {}",
                stderr(&out)
            );
            insta::assert_snapshot!(format!("{name}__{format}"), stdout(&out));
        }
    }
}

#[test]
fn plan_names_the_consequences_of_a_max_change() {
    let dir = with_repo_specs("plan-consequences");
    assert_eq!(poolc(&dir, &["generate"]).status.code(), Some(0));
    let spec = dir.join("specs/staging.yaml");
    let text = fs::read_to_string(&spec).unwrap();
    fs::write(&spec, text.replacen("    max: 8\n", "    max: 12\n", 1)).unwrap();
    let out = stdout(&poolc(&dir, &["plan"]));
    // One number in the spec moves the autoscaler, the LB and the NodePool limits.
    assert!(out.contains("spec.maxReplicaCount: 8 → 12"), "{out}");
    assert!(
        out.contains("limits.cpu: \"768\" → \"1152\"") || out.contains("limits.cpu: 768 → 1152"),
        "{out}"
    );
    assert!(out.contains("haproxy.cfg"), "{out}");
}

#[test]
fn plan_errors_exit_1_with_detailed_exitcode() {
    let dir = with_repo_specs("plan-error");
    fs::write(dir.join("specs/broken.yaml"), "cluster: [\n").unwrap();
    let out = poolc(&dir, &["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let out = poolc(&dir, &["plan"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn plan_states_what_a_change_does_to_running_builds() {
    let dir = with_repo_specs("plan-rollouts");
    assert_eq!(poolc(&dir, &["generate"]).status.code(), Some(0));
    let spec = dir.join("specs/production.yaml");
    let text = fs::read_to_string(&spec).unwrap();
    let edited = text
        .replacen("timeout_server: 120m", "timeout_server: 110m", 1)
        .replacen("moby/buildkit:v0.29.0", "moby/buildkit:v0.29.1", 1)
        .replacen("buildkite/agent:3.98.0", "buildkite/agent:3.99.0", 1);
    assert_ne!(edited, text);
    fs::write(&spec, edited).unwrap();
    let out = stdout(&poolc(&dir, &["plan"]));
    // haproxy.cfg changed, so the LB pod rolls; its grace period is the
    // new timeout_server plus 5m.
    assert!(
        out.contains("LB rolls: running builds get 115m to finish"),
        "{out}"
    );
    assert!(
        out.contains("worker Deployment buildkitd-amd64 rolls: running builds get 135m to finish"),
        "{out}"
    );
    assert!(
        out.contains("ScaledJob buildkitd-agents changes: running Jobs are kept (gradual)"),
        "{out}"
    );
}
