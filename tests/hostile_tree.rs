//! A pull request's tree is hostile: CI runs `poolc check` and `poolc lint`
//! on it. A committed symlink, FIFO, device link or planted temporary must
//! never make poolc read, write, delete or print anything outside `specs/`,
//! the output directory or the lint inputs, nor hang. Every run here is a
//! child process with a deadline: one that hangs is killed and fails.
#![cfg(unix)]

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{poolc, stderr, stdout, tree, with_repo_specs};

/// How long any poolc run here may take; the real runs take well under a second.
const DEADLINE: Duration = Duration::from_secs(20);

/// Runs poolc in `dir`, killing it (and failing) past the deadline; a
/// stream past 1 MiB is cut, so a flood of output cannot fill memory.
fn bounded(dir: &Path, args: &[&str]) -> Output {
    common::poolc_within(dir, args, DEADLINE, 1 << 20).0
}

fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(made.success(), "mkfifo {}", path.display());
}

/// A repository with its outputs generated, and a directory beside it
/// standing for everything outside the tree.
fn generated(name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = with_repo_specs(name);
    let run = poolc(&dir, &["generate"]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let outside = dir.join("outside");
    fs::create_dir_all(&outside).unwrap();
    (dir, outside)
}

fn all_output(run: &Output) -> String {
    format!("{}{}", stdout(run), stderr(run))
}

#[test]
fn a_manifest_line_through_a_linked_directory_deletes_nothing_outside() {
    let (dir, outside) = generated("hostile-manifest-link");
    fs::write(outside.join("precious.txt"), "keep me\n").unwrap();
    symlink(&outside, dir.join("generated/evil")).unwrap();
    let manifest = dir.join("generated/.poolc-manifest");
    let mut text = fs::read_to_string(&manifest).unwrap();
    text.push_str("evil/precious.txt\n");
    fs::write(&manifest, text).unwrap();

    for command in ["generate", "check", "plan"] {
        let run = bounded(&dir, &[command]);
        assert!(
            outside.join("precious.txt").exists(),
            "{command} deleted a file outside the output"
        );
        assert_eq!(
            run.status.code(),
            Some(2),
            "{command}: {}",
            all_output(&run)
        );
        assert!(
            stderr(&run).contains("generated/evil is a symbolic link"),
            "{command}: {}",
            stderr(&run)
        );
    }
}

#[test]
fn a_planted_temporary_link_is_never_written_through() {
    let (dir, outside) = generated("hostile-planted-tmp");
    let staging = dir.join("generated/staging");
    fs::remove_file(staging.join("kustomization.yaml")).unwrap();
    // Temporaries were once named `.NAME.poolc-tmp-PID`: plant one for every
    // process id the next runs can get.
    let next: u32 = fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(1);
    for pid in next..next + 2000 {
        symlink(
            outside.join(format!("victim-{pid}")),
            staging.join(format!(".kustomization.yaml.poolc-tmp-{pid}")),
        )
        .unwrap();
    }
    let run = bounded(&dir, &["generate"]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        0,
        "generate wrote outside through a planted temporary"
    );
    let written = fs::symlink_metadata(staging.join("kustomization.yaml")).unwrap();
    assert!(written.is_file(), "a planted link was renamed into place");
    // The planted links are not poolc's: the sweep leaves them alone.
    assert!(
        fs::symlink_metadata(staging.join(format!(".kustomization.yaml.poolc-tmp-{next}"))).is_ok()
    );
}

#[test]
fn a_linked_output_directory_is_refused_with_or_without_a_trailing_slash() {
    let dir = with_repo_specs("hostile-out-link");
    let outside = dir.join("outside");
    fs::create_dir_all(&outside).unwrap();
    symlink(&outside, dir.join("generated")).unwrap();
    for out in ["generated", "generated/", "generated/."] {
        for command in ["generate", "check", "plan"] {
            let run = bounded(&dir, &[command, "--out", out]);
            assert_eq!(
                run.status.code(),
                Some(2),
                "{command} --out {out}: {}",
                all_output(&run)
            );
            assert!(stderr(&run).contains("symbolic link"), "{}", stderr(&run));
        }
    }
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        0,
        "wrote through the link"
    );
}

#[test]
fn a_linked_lock_creates_nothing_outside() {
    let (dir, outside) = generated("hostile-lock-link");
    let lock = dir.join("generated/.poolc.lock");
    fs::remove_file(&lock).unwrap();
    symlink(outside.join("planted"), &lock).unwrap();
    let run = bounded(&dir, &["generate"]);
    assert_eq!(run.status.code(), Some(2), "{}", all_output(&run));
    assert!(
        stderr(&run).contains(".poolc.lock is a symbolic link"),
        "{}",
        stderr(&run)
    );
    assert!(
        !outside.join("planted").exists(),
        "the lock was created outside"
    );
}

#[test]
fn init_never_writes_through_a_dangling_link() {
    let dir = with_repo_specs("hostile-init-link");
    let outside = dir.join("outside");
    fs::create_dir_all(&outside).unwrap();
    symlink(
        outside.join("planted.yaml"),
        dir.join("specs/newcluster.yaml"),
    )
    .unwrap();
    let run = bounded(&dir, &["init", "newcluster"]);
    assert_eq!(run.status.code(), Some(2), "{}", all_output(&run));
    assert!(
        !outside.join("planted.yaml").exists(),
        "init wrote through the link"
    );

    // Nor through a linked spec directory.
    let other = with_repo_specs("hostile-init-dir-link");
    fs::remove_dir_all(other.join("specs")).unwrap();
    symlink(&outside, other.join("specs")).unwrap();
    let run = bounded(&other, &["init", "newcluster"]);
    assert_eq!(run.status.code(), Some(2), "{}", all_output(&run));
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
}

const SECRET: &str = "SECRET_TOKEN_7f3a";

#[test]
fn check_plan_and_lint_never_print_what_a_link_points_at() {
    let (dir, outside) = generated("hostile-print-link");
    let secret = outside.join("secrets.yaml");
    fs::write(
        &secret,
        format!("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: {SECRET}{{\n"),
    )
    .unwrap();
    let target = dir.join("generated/staging/kustomization.yaml");
    fs::remove_file(&target).unwrap();
    symlink(&secret, &target).unwrap();
    for args in [
        &["check"][..],
        &["plan"],
        &["plan", "--format", "markdown"],
        &["plan", "--format", "json"],
        &["lint", "generated"],
        &["lint", "--format", "github", "generated/staging"],
        &["lint", "generated/staging/kustomization.yaml"],
    ] {
        let run = bounded(&dir, args);
        assert!(
            !all_output(&run).contains(SECRET),
            "{args:?} printed a link's target"
        );
        assert_eq!(run.status.code(), Some(2), "{args:?}: {}", all_output(&run));
        assert!(
            stderr(&run).contains("generated/staging/kustomization.yaml is a symbolic link"),
            "{args:?}: {}",
            stderr(&run)
        );
    }
    // /proc/self/environ behind a link in a linted directory.
    let rules = dir.join("rules");
    fs::create_dir_all(&rules).unwrap();
    symlink("/proc/self/environ", rules.join("environ.yaml")).unwrap();
    let run = bounded(&dir, &["lint", "--format", "github", "rules"]);
    assert_eq!(run.status.code(), Some(2), "{}", all_output(&run));
    assert!(!all_output(&run).contains("PATH="), "{}", all_output(&run));
}

/// Where a hostile file may stand, and the command that would meet it.
struct Place {
    /// Path of the planted entry, under the repository.
    at: &'static str,
    commands: &'static [&'static [&'static str]],
}

const PLACES: &[Place] = &[
    Place {
        at: "generated/staging/kustomization.yaml",
        commands: &[&["generate"], &["check"], &["plan"], &["lint", "generated"]],
    },
    Place {
        at: "generated/.poolc-manifest",
        commands: &[&["generate"], &["check"], &["plan"]],
    },
    Place {
        at: "generated/.poolc.lock",
        commands: &[&["generate"]],
    },
    Place {
        at: "rules/alerts.yaml",
        commands: &[&["lint", "rules"], &["lint", "rules/alerts.yaml"]],
    },
    Place {
        at: "catalog.yaml",
        commands: &[&["lint", "--catalog", "catalog.yaml", "generated"]],
    },
    Place {
        at: "specs/zero.yaml",
        commands: &[&["generate"], &["check"], &["plan"]],
    },
];

#[test]
fn a_fifo_or_a_dev_zero_link_in_any_file_place_is_an_error_not_a_hang() {
    for (i, place) in PLACES.iter().enumerate() {
        for plant in ["fifo", "/dev/zero"] {
            let (dir, _) = generated(&format!("hostile-special-{i}-{}", plant.len()));
            fs::create_dir_all(dir.join("rules")).unwrap();
            let path = dir.join(place.at);
            let _ = fs::remove_file(&path);
            if plant == "fifo" {
                mkfifo(&path);
            } else {
                symlink(plant, &path).unwrap();
            }
            for args in place.commands {
                let run = bounded(&dir, args);
                assert_eq!(
                    run.status.code(),
                    Some(2),
                    "{} as {}: {args:?}: {}",
                    plant,
                    place.at,
                    all_output(&run)
                );
                assert!(
                    stderr(&run).contains(place.at),
                    "{plant} as {}: {args:?} does not name it: {}",
                    place.at,
                    stderr(&run)
                );
            }
        }
    }
}

#[test]
fn a_directory_linking_to_itself_is_not_walked() {
    let dir = with_repo_specs("hostile-self-link");
    let rules = dir.join("rules");
    fs::create_dir_all(&rules).unwrap();
    symlink(".", rules.join("a")).unwrap();
    symlink(".", rules.join("b")).unwrap();
    let run = bounded(&dir, &["lint", "rules"]);
    assert_eq!(run.status.code(), Some(2), "{}", all_output(&run));
    assert!(
        stderr(&run).contains("rules/a is a symbolic link"),
        "{}",
        stderr(&run)
    );
}

#[test]
fn every_spec_named_entry_is_loaded_or_reported() {
    let (dir, outside) = generated("hostile-spec-entries");
    let before = tree(&dir.join("generated"));
    // The cluster whose outputs a silent skip would delete.
    let staging = dir.join("specs/staging.yaml");
    fs::rename(&staging, outside.join("staging.yaml")).unwrap();
    symlink(outside.join("staging.yaml"), &staging).unwrap();
    symlink(outside.join("gone.yaml"), dir.join("specs/gone.yaml")).unwrap();
    mkfifo(&dir.join("specs/pipe.yaml"));
    fs::create_dir_all(dir.join("specs/x.yaml")).unwrap();
    for command in ["generate", "check", "plan"] {
        let run = bounded(&dir, &[command]);
        assert_eq!(
            run.status.code(),
            Some(2),
            "{command}: {}",
            all_output(&run)
        );
        for named in [
            "specs/staging.yaml",
            "specs/gone.yaml",
            "specs/pipe.yaml",
            "specs/x.yaml",
        ] {
            assert!(
                stderr(&run).contains(named),
                "{command} skipped {named}: {}",
                stderr(&run)
            );
        }
    }
    assert_eq!(
        tree(&dir.join("generated")),
        before,
        "a skipped spec's outputs changed"
    );
}

#[test]
fn spec_file_names_are_dns_labels() {
    let dir = with_repo_specs("hostile-spec-names");
    let text = fs::read_to_string(dir.join("specs/staging.yaml")).unwrap();
    for name in [
        "a\u{2028}b.yaml",
        "Staging.yaml",
        "-x.yaml",
        "a b.yml",
        "a_b.yaml",
    ] {
        fs::write(dir.join("specs").join(name), &text).unwrap();
        let run = bounded(&dir, &["generate"]);
        assert_eq!(run.status.code(), Some(2), "{name:?}: {}", all_output(&run));
        assert!(stderr(&run).contains(name), "{name:?}: {}", stderr(&run));
        assert!(stderr(&run).contains("DNS label"), "{}", stderr(&run));
        assert!(stderr(&run).contains("rename it"), "{}", stderr(&run));
        fs::remove_file(dir.join("specs").join(name)).unwrap();
    }
    assert!(!dir.join("generated").exists(), "something was written");
}

#[test]
fn an_output_directory_that_is_not_poolcs_is_refused() {
    let dir = with_repo_specs("hostile-foreign-out");
    let foreign = dir.join("foreign");
    fs::create_dir_all(foreign.join("tmp")).unwrap();
    fs::write(foreign.join("important.txt"), "keep\n").unwrap();
    fs::write(foreign.join("tmp/.notes.poolc-tmp-1"), "not poolc's\n").unwrap();
    let before = tree(&foreign);
    let run = bounded(&dir, &["generate", "--out", "foreign"]);
    assert_eq!(run.status.code(), Some(2), "{}", all_output(&run));
    assert!(stderr(&run).contains(".poolc-manifest"), "{}", stderr(&run));
    assert_eq!(tree(&foreign), before, "a foreign directory was touched");

    // An empty directory, or a new one, is poolc's to fill.
    fs::create_dir_all(dir.join("empty")).unwrap();
    for out in ["empty", "new/out"] {
        let run = bounded(&dir, &["generate", "--out", out]);
        assert_eq!(run.status.code(), Some(0), "{out}: {}", all_output(&run));
    }
}
