//! Strings from a spec or its file name that validate must not change the
//! structure of an output: a comment that ends early, a regex that keeps
//! everything, a PR comment with headings, images or mentions, or a name
//! that collides with one poolc sets itself.

mod common;

use std::fs;

use common::{poolc, stderr, stdout, tree, with_repo_specs};

fn edit_staging(dir: &std::path::Path, from: &str, to: &str) {
    let path = dir.join("specs/staging.yaml");
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "the edit does not apply: {from}");
    fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn keep_entries_are_metric_names() {
    for entry in [".*", "haproxy_(", "a|b", "x{1}"] {
        let dir = with_repo_specs("inject-keep");
        edit_staging(
            &dir,
            "  monitoring:\n",
            &format!("  monitoring:\n    keep:\n      haproxy: [haproxy_up, {entry:?}]\n"),
        );
        let run = poolc(&dir, &["generate"]);
        assert_eq!(run.status.code(), Some(2), "{entry}: {}", stdout(&run));
        let err = stderr(&run);
        let edited = fs::read_to_string(dir.join("specs/staging.yaml")).unwrap();
        let line = 1 + edited
            .lines()
            .position(|l| l.contains("haproxy: [haproxy_up"))
            .unwrap();
        assert!(
            err.contains(&format!("specs/staging.yaml:{line}:")),
            "{entry}: {err}"
        );
        assert!(err.contains("monitoring.keep.haproxy"), "{entry}: {err}");
        assert!(err.contains("not a metric name"), "{entry}: {err}");
    }
    let dir = with_repo_specs("inject-keep-ok");
    edit_staging(
        &dir,
        "  monitoring:\n",
        "  monitoring:\n    keep:\n      haproxy: [haproxy_process_uptime_seconds]\n",
    );
    assert_eq!(poolc(&dir, &["generate"]).status.code(), Some(0));
}

#[test]
fn reserved_alert_labels_and_dashboard_variables_are_refused_with_the_list() {
    for label in ["namespace", "severity", "pool"] {
        let dir = with_repo_specs("inject-alert-label");
        edit_staging(
            &dir,
            "    team: ci-platform\n",
            &format!("    {label}: x\n"),
        );
        let run = poolc(&dir, &["generate"]);
        assert_eq!(run.status.code(), Some(2), "{label}");
        let err = stderr(&run);
        assert!(err.contains(&format!("alert label `{label}`")), "{err}");
        assert!(
            err.contains("alertname, namespace, nodepool, pool, proxy, scaledObject, severity"),
            "{err}"
        );
    }
    for labels in [
        "[cluster, pool]",
        "[cluster, datasource]",
        "[cluster, cluster]",
    ] {
        let dir = with_repo_specs("inject-external-label");
        edit_staging(
            &dir,
            "  monitoring:\n",
            &format!("  monitoring:\n    external_labels: {labels}\n"),
        );
        let run = poolc(&dir, &["generate"]);
        assert_eq!(run.status.code(), Some(2), "{labels}");
        assert!(stderr(&run).contains("external label"), "{}", stderr(&run));
    }
}

#[test]
fn a_literal_dollar_labels_outside_a_template_is_not_a_finding() {
    let dir = with_repo_specs("inject-literal-labels");
    edit_staging(&dir, "    team: ci-platform\n", "    team: $labels.pool\n");
    let run = poolc(&dir, &["generate"]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let lint = poolc(&dir, &["lint", "generated"]);
    assert!(!stdout(&lint).contains("P005"), "{}", stdout(&lint));
}

#[test]
fn the_markdown_plan_escapes_markdown_html_and_mentions() {
    let dir = with_repo_specs("inject-markdown");
    let hostile = "X\n# Heading ![img](https://x.invalid/a.png) <img src=x> @octocat `tick` | cell";
    edit_staging(
        &dir,
        "      image: moby/buildkit:v0.29.0\n",
        &format!(
            "      image: moby/buildkit:v0.29.0\n      env:\n        - name: {hostile:?}\n          value: old\n"
        ),
    );
    assert_eq!(poolc(&dir, &["generate"]).status.code(), Some(0));
    // The name now appears in the changed field's path.
    edit_staging(&dir, "          value: old\n", "          value: new\n");
    let run = poolc(&dir, &["plan", "--format", "markdown"]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let md = stdout(&run);
    assert!(
        md.contains("Heading"),
        "the hostile value is not in the plan:\n{md}"
    );
    for line in md.lines() {
        assert!(
            !line.starts_with('#')
                || line.starts_with("### poolc plan")
                || line.starts_with("#### "),
            "an injected heading: {line}"
        );
        assert!(!line.starts_with("# Heading"), "{line}");
    }
    // Outside code spans (where nothing is Markdown, HTML or a mention)
    // every such construct is escaped.
    for line in md.lines() {
        let prose: String = line.split('`').step_by(2).collect();
        assert!(!prose.contains("<img"), "raw HTML: {line}");
        assert!(!prose.contains("@octocat"), "a mention: {line}");
        assert!(!prose.contains("]("), "a link or image: {line}");
    }
    // A code span never ends early: the hostile backticks are replaced.
    assert!(!md.contains("`tick`"), "{md}");
}

#[test]
fn the_spec_path_in_a_comment_cannot_end_the_comment() {
    let dir = with_repo_specs("inject-comment");
    let specs = "sp\u{2028}ecs";
    fs::rename(dir.join("specs"), dir.join(specs)).unwrap();
    let run = poolc(&dir, &["generate", "--specs", specs]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    for (path, bytes) in tree(&dir.join("generated")) {
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains('\u{2028}'),
            "{path} holds a raw line separator"
        );
    }
    let kustomization =
        fs::read_to_string(dir.join("generated/staging/kustomization.yaml")).unwrap();
    assert!(
        kustomization.starts_with("# generated by poolc from sp\\u{2028}ecs/staging.yaml"),
        "{kustomization}"
    );
}
