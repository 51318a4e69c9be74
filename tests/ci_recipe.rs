//! The README's "Use it in CI" section, run as written: the GitHub Actions
//! workflow's steps on a scratch pull request, and the pre-commit hook's entry
//! on a current and on a stale tree. Only the installs and the comment upload
//! are left out: they need the network and GitHub.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{poolc, stderr, stdout, with_repo_specs};

/// The YAML block that starts with `first_line`, inside "## Use it in CI".
fn readme_block(first_line: &str) -> serde_json::Value {
    let readme = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let section = readme
        .split("## Use it in CI")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("README has a \"Use it in CI\" section");
    let block = section
        .split("```yaml\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .find(|b| b.starts_with(first_line))
        .unwrap_or_else(|| panic!("no yaml block starting with {first_line}"));
    serde_saphyr::from_str(block).expect("the README's YAML parses")
}

/// Steps that fetch tools or talk to GitHub; everything else runs.
fn needs_network(step: &str) -> bool {
    ["pip install", "apt-get", "cargo install", "gh pr comment"]
        .iter()
        .any(|p| step.contains(p))
}

/// A shell in `dir` whose PATH finds this build's poolc first, with what
/// GitHub Actions sets for a pull request into `main`.
fn shell(dir: &Path, script: &str) -> Output {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_poolc"));
    let path = std::env::join_paths(std::iter::once(bin.parent().unwrap().to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    Command::new("bash")
        .args(["-eo", "pipefail", "-c", script])
        .current_dir(dir)
        .env("PATH", path)
        .env("POOLC", &bin)
        .env("GITHUB_BASE_REF", "main")
        .env("GITHUB_ENV", dir.join("github.env"))
        .output()
        .expect("run bash")
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=ci", "-c", "user.email=ci@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run git");
    assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
}

/// main holds the repository's specs and their generated/; a clone has a
/// branch that raises production amd64's max and regenerates.
fn pull_request(name: &str) -> PathBuf {
    let origin = with_repo_specs(name);
    fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("justfile"),
        origin.join("justfile"),
    )
    .unwrap();
    assert_eq!(poolc(&origin, &["generate"]).status.code(), Some(0));
    git(&origin, &["init", "-q", "-b", "main"]);
    git(&origin, &["add", "."]);
    git(&origin, &["commit", "-q", "-m", "base"]);
    let work = origin.with_file_name(format!(
        "{}-work",
        origin.file_name().unwrap().to_string_lossy()
    ));
    let _ = fs::remove_dir_all(&work);
    let _ = fs::remove_dir_all(work.with_file_name("base"));
    git(
        origin.parent().unwrap(),
        &[
            "clone",
            "-q",
            origin.to_str().unwrap(),
            work.to_str().unwrap(),
        ],
    );
    git(&work, &["checkout", "-q", "-b", "more-amd64"]);
    let spec = work.join("specs/production.yaml");
    let text = fs::read_to_string(&spec).unwrap();
    assert!(text.contains("    max: 360\n"));
    fs::write(&spec, text.replacen("    max: 360\n", "    max: 400\n", 1)).unwrap();
    assert_eq!(poolc(&work, &["generate"]).status.code(), Some(0));
    git(&work, &["commit", "-q", "-am", "amd64 max 400"]);
    work
}

#[test]
fn the_readme_workflow_passes_on_a_pull_request_and_plans_its_change() {
    let (Some(_), Some(_), Some(_)) = (
        common::tool("just", "pip install rust-just"),
        common::tool("promtool", "apt-get install -y prometheus"),
        common::tool("git", "apt-get install -y git"),
    ) else {
        return;
    };
    let workflow = readme_block("# .github/workflows/pools.yaml");
    let steps: Vec<String> = workflow["jobs"]["pools"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["run"].as_str().map(str::to_string))
        .collect();
    let wanted = [
        "just check",
        "poolc lint --format github",
        "promtool test rules",
        "poolc plan --format markdown",
    ];
    for w in wanted {
        assert!(
            steps.iter().any(|s| s.contains(w)),
            "the workflow lost `{w}`"
        );
    }

    let work = pull_request("ci-workflow");
    let mut ran = 0;
    for step in steps.iter().filter(|s| !needs_network(s)) {
        let out = shell(&work, step);
        assert!(
            out.status.success(),
            "step `{step}` failed:\n{}{}",
            stdout(&out),
            stderr(&out)
        );
        ran += 1;
    }
    assert!(ran >= 5, "only {ran} steps ran");

    // The comment names the change and what it moves with it.
    let plan = fs::read_to_string(work.join("plan.md")).unwrap();
    assert!(plan.contains("maxReplicaCount 360 → 400"), "{plan}");
    assert!(plan.contains("HAProxy bk_amd64 slots 360 → 400"), "{plan}");

    // The same workflow fails a PR whose generated/ is stale.
    let spec = work.join("specs/production.yaml");
    let text = fs::read_to_string(&spec).unwrap();
    fs::write(&spec, text.replacen("    max: 400\n", "    max: 420\n", 1)).unwrap();
    let check = steps.iter().find(|s| s.as_str() == "just check").unwrap();
    let out = shell(&work, check);
    assert!(!out.status.success(), "just check passed on a stale tree");
}

#[test]
fn the_readme_pre_commit_hook_passes_a_current_tree_and_stops_a_stale_one() {
    let config = readme_block("# .pre-commit-config.yaml");
    let hook = &config["repos"][0]["hooks"][0];
    assert_eq!(hook["language"], "system");
    let entry = hook["entry"].as_str().expect("entry");
    let files = regex::Regex::new(hook["files"].as_str().expect("files")).unwrap();
    assert!(
        files.is_match("specs/production.yaml") && files.is_match("generated/staging/keda.yaml")
    );

    let dir = with_repo_specs("ci-hook");
    assert_eq!(poolc(&dir, &["generate"]).status.code(), Some(0));
    let out = shell(&dir, entry);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    let spec = dir.join("specs/staging.yaml");
    let text = fs::read_to_string(&spec).unwrap();
    fs::write(&spec, text.replacen("max: ", "max: 1", 1)).unwrap();
    let out = shell(&dir, entry);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}
