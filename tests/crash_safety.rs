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
