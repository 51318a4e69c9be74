//! Keeps the benchmark honest between runs: the synthetic fleet `just bench`
//! measures must compile, lint clean, and be rules promtool accepts too.
//! Timing belongs to `just bench`, never to a test.

mod common;

#[allow(dead_code)]
#[path = "../examples/synth_fleet.rs"]
mod synth_fleet;

use common::{poolc, scratch, stderr, stdout};

#[test]
fn a_tiny_synthetic_fleet_generates_and_lints_clean() {
    let dir = scratch("bench-smoke");
    synth_fleet::write(&dir, 12, 3, &[120]).expect("write the fleet");
    let specs: Vec<_> = std::fs::read_dir(dir.join("specs")).unwrap().collect();
    assert_eq!(specs.len(), 3);

    let out = poolc(&dir, &["generate"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("changed"), "{}", stdout(&out));

    let out = poolc(&dir, &["lint", "rules-120", "generated"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("0 errors, 0 warnings"),
        "{}",
        stdout(&out)
    );

    let Some(promtool) = common::tool("promtool", "apt-get install -y prometheus") else {
        return;
    };
    let out = std::process::Command::new(promtool)
        .args(["check", "rules", "rules-120/part-000.yaml"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("120 rules found"), "{}", stdout(&out));
}
