//! A run that fails mid-write leaves generated/ byte-identical, with no
//! temporaries; concurrent runs never corrupt the tree.

mod common;

use std::fs;

use common::{poolc, stderr, tree, with_repo_specs, VALID_SPEC};

#[test]
fn a_write_that_fails_midway_leaves_the_previous_tree_intact() {
    let dir = with_repo_specs("crash-fail");
    assert_eq!(poolc(&dir, &["generate"]).status.code(), Some(0));
    let out = dir.join("generated");

    // Change every existing cluster, and add a cluster whose output directory
    // is blocked by a user's file: staging succeeds for the first clusters,
    // then fails on the last one, after other files were already staged.
    for spec in ["production", "staging"] {
        let path = dir.join(format!("specs/{spec}.yaml"));
        let text = fs::read_to_string(&path).unwrap();
        fs::write(&path, text.replace("priority: P", "priority: Q")).unwrap();
    }
    fs::write(
        dir.join("specs/zeta.yaml"),
        VALID_SPEC.replace("name: demo", "name: zeta"),
    )
    .unwrap();
    fs::write(
        out.join("zeta"),
        "a user's file where poolc needs a directory\n",
    )
    .unwrap();
    let before = tree(&out);

    let run = poolc(&dir, &["generate"]);
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    assert!(stderr(&run).contains("zeta"), "{}", stderr(&run));
    assert_eq!(
        tree(&out),
        before,
        "generated/ changed although the write failed"
    );
    let leftovers: Vec<String> = tree(&out)
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| p.contains("poolc-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporaries left: {leftovers:?}");
}

#[test]
fn temporaries_of_a_killed_run_are_swept() {
    let dir = with_repo_specs("crash-sweep");
    assert_eq!(poolc(&dir, &["generate"]).status.code(), Some(0));
    let clean = tree(&dir.join("generated"));
    // What a run killed between staging and renaming leaves behind.
    fs::write(
        dir.join("generated/staging/.kustomization.yaml.poolc-tmp-999999"),
        "half",
    )
    .unwrap();
    assert_eq!(poolc(&dir, &["generate"]).status.code(), Some(0));
    assert_eq!(tree(&dir.join("generated")), clean);
}

#[test]
fn concurrent_runs_serialize_or_fail_clearly_and_never_corrupt() {
    let dir = with_repo_specs("crash-concurrent");
    for _ in 0..5 {
        let _ = fs::remove_dir_all(dir.join("generated"));
        let bin = env!("CARGO_BIN_EXE_poolc");
        let spawn = || {
            std::process::Command::new(bin)
                .arg("generate")
                .current_dir(&dir)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn poolc")
        };
        let (a, b) = (spawn(), spawn());
        for run in [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()] {
            let code = run.status.code();
            let err = String::from_utf8_lossy(&run.stderr);
            assert!(
                code == Some(0) || (code == Some(2) && err.contains("another `poolc generate`")),
                "unexpected outcome {code:?}: {err}"
            );
        }
        let check = poolc(&dir, &["check"]);
        assert_eq!(
            check.status.code(),
            Some(0),
            "tree corrupted:\n{}",
            String::from_utf8_lossy(&check.stdout)
        );
    }
}

/// What a killed run leaves of its commit: temporaries and the journal.
fn is_commit_state(path: &str) -> bool {
    path.contains("poolc-tmp") || path.ends_with(".poolc-journal")
}

/// Every file of the tree but the temporaries and journal a killed run leaves.
fn without_temporaries(tree: Vec<(String, Vec<u8>)>) -> Vec<(String, Vec<u8>)> {
    tree.into_iter()
        .filter(|(p, _)| !is_commit_state(p))
        .collect()
}

fn temporaries(root: &std::path::Path) -> Vec<String> {
    tree(root)
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| is_commit_state(p))
        .collect()
}

/// A run that dies mid-write (aborted on the spot, as `kill -9` would stop
/// it) leaves generated/ byte-identical if it had staged but not renamed
/// anything; wherever it died, the next run ends with exactly the tree a
/// clean run writes, and no temporaries.
#[test]
fn a_run_killed_mid_write_is_made_whole_by_the_next() {
    for point in ["journaled", "staged", "renaming", "removed"] {
        let dir = with_repo_specs(&format!("crash-at-{point}"));
        assert_eq!(poolc(&dir, &["generate"]).status.code(), Some(0));
        let out = dir.join("generated");
        fs::write(out.join("notes.md"), "a user's file\n").unwrap();
        let before = tree(&out);

        // The change: new values everywhere, a file added, a file removed.
        let spec = dir.join("specs/staging.yaml");
        let text = fs::read_to_string(&spec).unwrap();
        fs::write(&spec, text.replace("priority: P", "priority: Q")).unwrap();
        fs::write(
            dir.join("specs/zeta.yaml"),
            VALID_SPEC.replace("name: demo", "name: zeta"),
        )
        .unwrap();
        fs::remove_file(dir.join("specs/production.yaml")).unwrap();
        let expected = {
            let clean = with_repo_specs(&format!("crash-expected-{point}"));
            fs::remove_file(clean.join("specs/production.yaml")).unwrap();
            fs::copy(&spec, clean.join("specs/staging.yaml")).unwrap();
            fs::copy(dir.join("specs/zeta.yaml"), clean.join("specs/zeta.yaml")).unwrap();
            assert_eq!(poolc(&clean, &["generate"]).status.code(), Some(0));
            fs::write(clean.join("generated/notes.md"), "a user's file\n").unwrap();
            tree(&clean.join("generated"))
        };

        let killed = std::process::Command::new(env!("CARGO_BIN_EXE_poolc"))
            .arg("generate")
            .current_dir(&dir)
            .env("POOLC_CRASH_AT", point)
            .output()
            .unwrap();
        assert_eq!(
            killed.status.code(),
            None,
            "{point}: the run was not killed"
        );
        assert!(
            !temporaries(&out).is_empty(),
            "{point}: died before staging"
        );
        if point == "journaled" || point == "staged" {
            assert_eq!(
                without_temporaries(tree(&out)),
                before,
                "{point}: generated/ changed before the write committed"
            );
        } else {
            assert_ne!(
                without_temporaries(tree(&out)),
                before,
                "{point}: nothing renamed"
            );
        }

        let next = poolc(&dir, &["generate"]);
        assert_eq!(next.status.code(), Some(0), "{point}: {}", stderr(&next));
        assert_eq!(
            temporaries(&out),
            Vec::<String>::new(),
            "{point}: temporaries left"
        );
        let after = tree(&out);
        let names = |t: &[(String, Vec<u8>)]| t.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
        assert_eq!(names(&after), names(&expected), "{point}: files differ");
        assert!(
            after == expected,
            "{point}: contents differ from a clean run"
        );
        assert_eq!(poolc(&dir, &["check"]).status.code(), Some(0));
    }
}

#[test]
fn a_killed_run_leaves_no_directory_for_a_cluster_that_was_dropped() {
    let dir = with_repo_specs("crash-dropped-cluster");
    assert_eq!(poolc(&dir, &["generate"]).status.code(), Some(0));
    let omega = dir.join("specs/omega.yaml");
    fs::write(&omega, VALID_SPEC.replace("name: demo", "name: omega")).unwrap();
    let killed = std::process::Command::new(env!("CARGO_BIN_EXE_poolc"))
        .arg("generate")
        .current_dir(&dir)
        .env("POOLC_CRASH_AT", "staged")
        .output()
        .unwrap();
    assert_eq!(killed.status.code(), None, "the run was not killed");
    assert!(
        dir.join("generated/omega").is_dir(),
        "nothing was staged for omega"
    );

    fs::remove_file(&omega).unwrap();
    assert_eq!(poolc(&dir, &["generate"]).status.code(), Some(0));
    assert!(
        !dir.join("generated/omega").exists(),
        "the killed run's directory is left"
    );
    assert_eq!(poolc(&dir, &["check"]).status.code(), Some(0));
}

/// The tree a clean run writes for the specs in `dir`.
fn clean_tree(dir: &std::path::Path, name: &str) -> Vec<(String, Vec<u8>)> {
    let clean = common::scratch(name);
    for entry in fs::read_dir(dir.join("specs")).unwrap().flatten() {
        fs::copy(entry.path(), clean.join("specs").join(entry.file_name())).unwrap();
    }
    assert_eq!(poolc(&clean, &["generate"]).status.code(), Some(0));
    tree(&clean.join("generated"))
}

/// Runs `generate` with a failure injected where a real system would fail:
/// `POOLC_FAIL_AT` stands in for an immutable file (a refused rename) or a
/// full disk (a refused write), which a test cannot cause without privileges.
fn generate_failing_at(dir: &std::path::Path, at: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_poolc"))
        .arg("generate")
        .current_dir(dir)
        .env("POOLC_FAIL_AT", at)
        .output()
        .unwrap()
}

/// A change that rewrites every file of one cluster, adds a cluster and
/// drops another.
fn change_specs(dir: &std::path::Path) {
    let spec = dir.join("specs/staging.yaml");
    let text = fs::read_to_string(&spec).unwrap();
    fs::write(&spec, text.replace("priority: P", "priority: Q")).unwrap();
    fs::write(
        dir.join("specs/zeta.yaml"),
        VALID_SPEC.replace("name: demo", "name: zeta"),
    )
    .unwrap();
    fs::remove_file(dir.join("specs/production.yaml")).unwrap();
}

#[test]
fn a_write_refused_before_the_first_rename_leaves_the_old_tree() {
    // The journal itself, a file of an existing cluster, and the first file
    // of a new cluster's directory (as when the disk has no inodes left).
    for at in [
        "write:poolc-journal",
        "write:staging/",
        "write:zeta/",
        "write:3",
    ] {
        let dir = with_repo_specs("crash-refused-write");
        assert_eq!(poolc(&dir, &["generate"]).status.code(), Some(0));
        let out = dir.join("generated");
        let before = tree(&out);
        change_specs(&dir);
        let run = generate_failing_at(&dir, at);
        assert_eq!(run.status.code(), Some(2), "{at}: {}", stderr(&run));
        assert!(
            stderr(&run).contains("No space left"),
            "{at}: {}",
            stderr(&run)
        );
        assert_eq!(tree(&out), before, "{at}: generated/ changed");
        assert!(
            !out.join("zeta").exists(),
            "{at}: an empty cluster directory is left"
        );
        assert_eq!(
            poolc(&dir, &["check"]).status.code(),
            Some(1),
            "{at}: check"
        );
    }
}

#[test]
fn a_rename_refused_midway_is_reported_by_check_and_completed_by_the_next_run() {
    let dir = with_repo_specs("crash-refused-rename");
    assert_eq!(poolc(&dir, &["generate"]).status.code(), Some(0));
    let out = dir.join("generated");
    change_specs(&dir);
    let expected = clean_tree(&dir, "crash-refused-rename-expected");

    let run = generate_failing_at(&dir, "rename:5");
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    assert!(
        stderr(&run).contains("Operation not permitted"),
        "{}",
        stderr(&run)
    );
    assert!(
        stderr(&run).contains("run `poolc generate` again"),
        "{}",
        stderr(&run)
    );
    let left: Vec<String> = temporaries(&out)
        .into_iter()
        .filter(|p| p.contains("poolc-tmp"))
        .collect();
    assert!(left.is_empty(), "temporaries left: {left:?}");
    let check = poolc(&dir, &["check"]);
    assert_eq!(
        check.status.code(),
        Some(1),
        "a half-renamed tree called current"
    );

    let next = poolc(&dir, &["generate"]);
    assert_eq!(next.status.code(), Some(0), "{}", stderr(&next));
    assert!(
        tree(&out) == expected,
        "the next run did not complete the commit"
    );
    assert_eq!(poolc(&dir, &["check"]).status.code(), Some(0));
}

#[test]
fn a_full_disk_at_the_manifest_leaves_the_new_tree_and_check_says_so() {
    let dir = with_repo_specs("crash-manifest-full");
    assert_eq!(poolc(&dir, &["generate"]).status.code(), Some(0));
    let out = dir.join("generated");
    change_specs(&dir);
    let expected = clean_tree(&dir, "crash-manifest-full-expected");

    let run = generate_failing_at(&dir, "write:poolc-manifest");
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    let is_list = |p: &str| p.ends_with(".poolc-manifest") || p.ends_with(".poolc-journal");
    let outputs = |t: Vec<(String, Vec<u8>)>| -> Vec<(String, Vec<u8>)> {
        t.into_iter().filter(|(p, _)| !is_list(p)).collect()
    };
    assert!(
        outputs(tree(&out)) == outputs(expected.clone()),
        "every output should be new"
    );
    // The outputs are the new ones, so check is right to call them current.
    assert_eq!(poolc(&dir, &["check"]).status.code(), Some(0));
    assert_eq!(poolc(&dir, &["generate"]).status.code(), Some(0));
    assert!(
        tree(&out) == expected,
        "the next run did not finish the manifest"
    );
}

#[test]
fn a_run_killed_mid_rename_then_a_spec_change_leaves_no_orphan() {
    let dir = with_repo_specs("crash-orphan");
    assert_eq!(poolc(&dir, &["generate"]).status.code(), Some(0));
    let out = dir.join("generated");
    let before = tree(&out);
    // `aaa` sorts first: its files are renamed before anything else.
    let aaa = dir.join("specs/aaa.yaml");
    fs::write(&aaa, VALID_SPEC.replace("name: demo", "name: aaa")).unwrap();
    let killed = std::process::Command::new(env!("CARGO_BIN_EXE_poolc"))
        .arg("generate")
        .current_dir(&dir)
        .env("POOLC_CRASH_AT", "renaming")
        .output()
        .unwrap();
    assert_eq!(killed.status.code(), None, "the run was not killed");
    let renamed: Vec<String> = tree(&out)
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| p.starts_with("aaa/") && !p.contains("poolc-tmp"))
        .collect();
    assert_eq!(renamed.len(), 1, "one file renamed into place: {renamed:?}");

    // The spec change: aaa is gone again. Its renamed file is poolc's.
    fs::remove_file(&aaa).unwrap();
    let check = poolc(&dir, &["check"]);
    assert_eq!(
        check.status.code(),
        Some(1),
        "check called the orphan current"
    );
    assert!(
        common::stdout(&check).contains(&renamed[0]),
        "{}",
        common::stdout(&check)
    );
    assert_eq!(poolc(&dir, &["generate"]).status.code(), Some(0));
    assert!(!out.join("aaa").exists(), "the orphan's directory is left");
    assert!(tree(&out) == before, "the tree is not the clean one");
    assert_eq!(poolc(&dir, &["check"]).status.code(), Some(0));
}
