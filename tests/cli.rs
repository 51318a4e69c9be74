//! The CLI end to end: exit codes, the stale-tree diff, determinism, and what
//! `generate` may and may not touch in generated/.

mod common;

use std::fs;

use common::{poolc, stderr, stdout, tree, with_repo_specs};

#[test]
fn generate_then_check_is_clean_and_repeatable() {
    let dir = with_repo_specs("cli-repeat");
    let first = poolc(&dir, &["generate"]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let tree1 = tree(&dir.join("generated"));
    assert!(tree1.len() > 4, "generate wrote almost nothing: {tree1:?}");

    let second = poolc(&dir, &["generate"]);
    assert_eq!(second.status.code(), Some(0));
    assert_eq!(
        tree(&dir.join("generated")),
        tree1,
        "two runs must be byte-identical"
    );
    assert!(
        stdout(&second).contains(", 0 changed"),
        "{}",
        stdout(&second)
    );

    let check = poolc(&dir, &["check"]);
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
}

#[test]
fn check_exits_1_with_a_diff_after_a_spec_number_changes() {
    let dir = with_repo_specs("cli-stale");
    assert_eq!(poolc(&dir, &["generate"]).status.code(), Some(0));
    let spec = dir.join("specs/staging.yaml");
    let text = fs::read_to_string(&spec).unwrap();
    let edited = text.replacen("    max: 8\n", "    max: 12\n", 1);
    assert_ne!(text, edited, "staging.yaml must contain `max: 8`");
    fs::write(&spec, edited).unwrap();

    let check = poolc(&dir, &["check"]);
    assert_eq!(check.status.code(), Some(1), "{}", stderr(&check));
    let diff = stdout(&check);
    assert!(
        diff.contains("--- a/staging/"),
        "no unified diff header:\n{diff}"
    );
    assert!(
        diff.contains("+") && diff.contains("12"),
        "diff lacks the new max:\n{diff}"
    );
    assert!(stderr(&check).contains("is stale"), "{}", stderr(&check));
}

#[test]
fn generate_removes_only_files_it_owns() {
    let dir = with_repo_specs("cli-owned");
    assert_eq!(poolc(&dir, &["generate"]).status.code(), Some(0));
    let out = dir.join("generated");
    // A file the user added is never poolc's to remove.
    fs::write(out.join("staging/NOTES.md"), "mine\n").unwrap();
    // Dropping a cluster's spec removes exactly the files poolc wrote for it.
    fs::remove_file(dir.join("specs/production.yaml")).unwrap();
    let run = poolc(&dir, &["generate"]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    assert!(
        !out.join("production").exists(),
        "stale cluster dir left behind"
    );
    assert_eq!(
        fs::read_to_string(out.join("staging/NOTES.md")).unwrap(),
        "mine\n"
    );
    let check = poolc(&dir, &["check"]);
    assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));
}

#[cfg(unix)]
#[test]
fn generate_never_writes_through_a_symlink() {
    let dir = with_repo_specs("cli-symlink");
    let elsewhere = dir.join("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    fs::create_dir_all(dir.join("generated")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, dir.join("generated/staging")).unwrap();
    let run = poolc(&dir, &["generate"]);
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    assert!(stderr(&run).contains("symlink"), "{}", stderr(&run));
    assert_eq!(
        fs::read_dir(&elsewhere).unwrap().count(),
        0,
        "wrote through the link"
    );
}

#[test]
fn usage_errors_exit_2() {
    let dir = with_repo_specs("cli-usage");
    let out = poolc(&dir, &["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    let out = poolc(&dir, &["generate", "--specs", "does-not-exist"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("does-not-exist"), "{}", stderr(&out));
}

#[test]
fn specs_with_a_bom_and_crlf_line_endings_compile_the_same() {
    let dir = with_repo_specs("cli-crlf");
    assert_eq!(poolc(&dir, &["generate"]).status.code(), Some(0));
    let spec = dir.join("specs/staging.yaml");
    let text = fs::read_to_string(&spec).unwrap();
    fs::write(&spec, format!("\u{feff}{}", text.replace('\n', "\r\n"))).unwrap();
    let check = poolc(&dir, &["check"]);
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}{}",
        stdout(&check),
        stderr(&check)
    );
}
