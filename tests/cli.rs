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
    assert_eq!(poolc(&dir, &["generate"]).status.code(), Some(0));
    fs::remove_dir_all(dir.join("generated/staging")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, dir.join("generated/staging")).unwrap();
    let run = poolc(&dir, &["generate"]);
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    assert!(stderr(&run).contains("symbolic link"), "{}", stderr(&run));
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

/// The subcommands `poolc --help` lists, so a new command is covered by the
/// tests below without editing them.
fn subcommands(dir: &std::path::Path) -> Vec<String> {
    let help = stdout(&poolc(dir, &["--help"]));
    let listed: Vec<String> = help
        .split("Commands:")
        .nth(1)
        .expect("--help lists commands")
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // Wrapped descriptions continue on deeper-indented lines.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect();
    assert!(listed.len() >= 9, "too few commands in --help:\n{help}");
    listed
}

#[test]
fn every_command_has_an_example_in_its_help() {
    let dir = with_repo_specs("cli-help");
    for command in subcommands(&dir) {
        let out = poolc(&dir, &[&command, "--help"]);
        assert_eq!(out.status.code(), Some(0), "{command} --help");
        let help = stdout(&out);
        assert!(
            help.contains("Example") && help.contains(&format!("poolc {command}")),
            "`poolc {command} --help` shows no example of itself:\n{help}"
        );
    }
}

#[test]
fn bash_completion_loads_and_offers_every_command() {
    let dir = with_repo_specs("cli-completions");
    let Some(bash) = common::tool("bash", "apt-get install -y bash") else {
        return;
    };
    let script = stdout(&poolc(&dir, &["completions", "bash"]));
    fs::write(dir.join("poolc.bash"), &script).unwrap();
    // Load the script, then ask it what follows `poolc ` and `poolc plan --format `.
    let ask = r#"source ./poolc.bash
complete -p poolc
COMP_WORDS=(poolc ""); COMP_CWORD=1; COMP_LINE="poolc "; COMP_POINT=6
_poolc poolc "" poolc; echo "top: ${COMPREPLY[*]}"
COMP_WORDS=(poolc plan --format ""); COMP_CWORD=3; COMP_LINE="poolc plan --format "; COMP_POINT=20
_poolc poolc "" --format; echo "format: ${COMPREPLY[*]}""#;
    let out = std::process::Command::new(bash)
        .args(["-c", ask])
        .current_dir(&dir)
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{}{}", text, stderr(&out));
    assert!(text.contains("-F _poolc poolc"), "{text}");
    let top = text.lines().find(|l| l.starts_with("top: ")).unwrap();
    for command in subcommands(&dir) {
        assert!(
            top.split_whitespace().any(|w| w == command),
            "{command} missing from {top}"
        );
    }
    assert!(text.contains("format: text markdown json"), "{text}");
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = poolc(&dir, &["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        assert!(
            stdout(&out).contains("init"),
            "{shell} completion lacks commands"
        );
    }
}

#[test]
fn man_pages_cover_every_command_with_its_example() {
    let dir = with_repo_specs("cli-man");
    let out = poolc(&dir, &["man", "--dir", "man"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let top = fs::read_to_string(dir.join("man/poolc.1")).unwrap();
    assert!(top.contains(".TH poolc 1"), "{top}");
    for command in subcommands(&dir) {
        let page = fs::read_to_string(dir.join(format!("man/poolc-{command}.1")))
            .unwrap_or_else(|e| panic!("no page for {command}: {e}"));
        assert!(page.contains(&format!(".TH poolc-{command} 1")), "{page}");
        assert!(page.contains("Example"), "poolc-{command}.1 has no example");
        assert!(
            top.contains(&format!("poolc\\-{command}(1)")),
            "poolc.1 does not list {command}"
        );
    }
    assert_eq!(
        stdout(&poolc(&dir, &["man"])),
        top,
        "`poolc man` prints poolc.1"
    );
}

#[test]
fn init_then_generate_and_lint_are_clean() {
    let dir = common::scratch("cli-init");
    let out = poolc(&dir, &["init", "edge-eu"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let spec = fs::read_to_string(dir.join("specs/edge-eu.yaml")).unwrap();
    assert!(
        spec.contains("name: edge-eu") && spec.contains("jobs:"),
        "{spec}"
    );

    let out = poolc(&dir, &["generate"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // A starter is a spec to copy: it draws no warning of its own.
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    for file in [
        "keda.yaml",
        "haproxy.cfg",
        "karpenter.yaml",
        "prometheus/rules.test.yaml",
    ] {
        assert!(
            dir.join("generated/edge-eu").join(file).is_file(),
            "no {file}"
        );
    }
    let out = poolc(&dir, &["lint", "--deny", "warnings", "generated/"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("0 errors, 0 warnings"),
        "{}",
        stdout(&out)
    );

    // Never over an existing spec; never a name that is not a DNS label.
    let again = poolc(&dir, &["init", "edge-eu"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("never overwrites"),
        "{}",
        stderr(&again)
    );
    let bad = poolc(&dir, &["init", "../edge"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(!dir.join("edge.yaml").exists());
}
