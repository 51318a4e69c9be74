//! `poolc generate` writes the same bytes wherever and however it runs: under
//! any time zone and locale, from any working directory, and whatever order
//! the spec files were created in or however their names sort.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{scratch, tree, VALID_SPEC};

/// Spec files whose names (DNS labels, as poolc requires) sort differently
/// by bytes, by locale collation and numerically: `10-` before `9-` only by
/// bytes, `a-c` before `ab` by bytes but after it where a locale ignores `-`.
fn spec_files() -> Vec<(&'static str, String)> {
    let repo = |name: &str| {
        fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("specs")
                .join(name),
        )
        .unwrap()
    };
    vec![
        ("a-c.yaml", repo("production.yaml")),
        ("ab.yaml", repo("staging.yaml")),
        ("10-demo.yml", VALID_SPEC.to_string()),
        (
            "9-edge.yaml",
            VALID_SPEC.replacen("  name: demo", "  name: edge", 1),
        ),
        (
            "east.yaml",
            VALID_SPEC.replacen("  name: demo", "  name: east", 1),
        ),
    ]
}

/// (Re)creates `specs` with the files written in `order`.
fn lay_out_specs(specs: &Path, order: &[usize]) {
    let _ = fs::remove_dir_all(specs);
    fs::create_dir_all(specs).unwrap();
    let files = spec_files();
    for &i in order {
        let (name, text) = &files[i];
        fs::write(specs.join(name), text).unwrap();
    }
}

/// Runs `poolc generate --specs <specs> --out <out>` from `cwd` with `env`
/// (and nothing else from the locale or time zone of the caller).
fn generate(cwd: &Path, specs: &Path, out: &Path, env: &[(&str, &str)]) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_poolc"));
    cmd.arg("generate")
        .arg("--specs")
        .arg(specs)
        .arg("--out")
        .arg(out)
        .current_dir(cwd);
    for var in [
        "TZ",
        "LANG",
        "LANGUAGE",
        "LC_ALL",
        "LC_COLLATE",
        "LC_CTYPE",
        "LC_TIME",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    let result = cmd.output().expect("run poolc");
    assert!(
        result.status.success(),
        "poolc generate with {env:?} from {}: {}",
        cwd.display(),
        String::from_utf8_lossy(&result.stderr)
    );
}

#[test]
fn generate_is_byte_identical_across_environments() {
    let root = scratch("determinism");
    let specs = root.join("specs");
    let forward: Vec<usize> = (0..spec_files().len()).collect();
    let reverse: Vec<usize> = forward.iter().rev().copied().collect();
    let shuffled = vec![2, 4, 0, 3, 1];

    lay_out_specs(&specs, &forward);
    let reference_out = root.join("out-reference");
    generate(&root, &specs, &reference_out, &[]);
    let reference = tree(&reference_out);
    // Every spec was compiled: one directory per cluster.
    for cluster in ["production", "staging", "demo", "edge", "east"] {
        assert!(
            reference
                .iter()
                .any(|(path, _)| path.starts_with(&format!("{cluster}/"))),
            "no output for {cluster}"
        );
    }
    assert!(reference.len() > 40, "only {} files", reference.len());

    let elsewhere = root.join("some/other/dir");
    fs::create_dir_all(&elsewhere).unwrap();
    type Variant<'a> = (&'a str, Vec<usize>, PathBuf, Vec<(&'a str, &'a str)>);
    let variants: Vec<Variant> = vec![
        (
            "TZ far east",
            forward.clone(),
            root.clone(),
            vec![("TZ", "Pacific/Kiritimati")],
        ),
        (
            "TZ far west",
            forward.clone(),
            root.clone(),
            vec![("TZ", "Etc/GMT+12")],
        ),
        (
            "TZ with a 45-minute offset",
            forward.clone(),
            root.clone(),
            vec![("TZ", "Asia/Kathmandu")],
        ),
        (
            "Turkish locale",
            forward.clone(),
            root.clone(),
            vec![("LANG", "tr_TR.UTF-8"), ("LC_ALL", "tr_TR.UTF-8")],
        ),
        (
            "German collation",
            forward.clone(),
            root.clone(),
            vec![("LC_ALL", "de_DE.UTF-8"), ("LC_COLLATE", "de_DE.UTF-8")],
        ),
        (
            "POSIX locale",
            forward.clone(),
            root.clone(),
            vec![("LANG", "C"), ("LC_ALL", "POSIX")],
        ),
        (
            "from another directory",
            forward.clone(),
            elsewhere.clone(),
            vec![],
        ),
        (
            "from /",
            forward.clone(),
            PathBuf::from("/"),
            vec![("TZ", "UTC")],
        ),
        ("files created in reverse", reverse, root.clone(), vec![]),
        (
            "files shuffled, another locale, time zone and directory",
            shuffled,
            elsewhere,
            vec![
                ("LANG", "ja_JP.UTF-8"),
                ("LC_ALL", "ja_JP.UTF-8"),
                ("TZ", "America/St_Johns"),
            ],
        ),
    ];
    for (n, (what, order, cwd, env)) in variants.into_iter().enumerate() {
        lay_out_specs(&specs, &order);
        let out = root.join(format!("out-{n}"));
        generate(&cwd, &specs, &out, &env);
        let got = tree(&out);
        let paths = |t: &[(String, Vec<u8>)]| t.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
        assert_eq!(paths(&got), paths(&reference), "{what}: other files");
        for ((path, bytes), (_, want)) in got.iter().zip(&reference) {
            assert!(bytes == want, "{what}: {path} differs");
        }
    }
}
