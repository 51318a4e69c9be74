//! The generated manifests against the real things: insta snapshots per spec
//! per artifact, every custom resource validated against its upstream CRD
//! schema, `haproxy -c` on every config, and `kubectl kustomize` on every
//! cluster directory.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::process::Command;

use common::{documents, repo_fileset, schemas, scratch, tool, validate};
use serde_json::Value;

#[test]
fn snapshots_per_spec_per_artifact() {
    insta::glob!("../specs", "*.yaml", |path| {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let spec =
            poolc::spec::load_file(&std::path::Path::new("specs").join(&name)).expect("spec loads");
        let model = poolc::model::build(&[spec]).expect("spec is valid");
        let files = poolc::render::render_cluster(&model.clusters[0]).expect("renders");
        assert!(files.len() >= 7, "{name}: only {} files", files.len());
        for file in files {
            let artifact = file.path.split_once('/').map_or(&*file.path, |(_, a)| a);
            insta::assert_snapshot!(artifact.replace('/', "__"), file.contents);
        }
    });
}

#[test]
fn every_custom_resource_validates_against_its_upstream_schema() {
    let schemas = schemas();
    let mut checked: BTreeMap<String, usize> = BTreeMap::new();
    for (path, contents) in repo_fileset().iter() {
        if !path.ends_with(".yaml")
            || path.ends_with("kustomization.yaml")
            || path.contains("/prometheus/")
        {
            continue;
        }
        for doc in documents(contents) {
            if let Some(errors) = validate(&schemas, &doc) {
                assert!(
                    errors.is_empty(),
                    "{path}: {} {}: {errors:#?}",
                    doc["kind"],
                    doc["metadata"]["name"]
                );
                *checked
                    .entry(doc["kind"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
        }
    }
    for kind in [
        "ScaledObject",
        "ScaledJob",
        "NodePool",
        "EC2NodeClass",
        "PodDisruptionBudget",
    ] {
        assert!(
            checked.contains_key(kind),
            "no {kind} was validated: {checked:?}"
        );
    }
}

#[test]
fn the_schema_check_catches_a_broken_manifest() {
    let schemas = schemas();
    let set = repo_fileset();
    let keda = documents(set.get("staging/keda.yaml").expect("keda.yaml"));
    let mut doc = keda[0].clone();
    assert!(validate(&schemas, &doc).unwrap().is_empty());
    // A misspelled field (pruned silently by the API server), a wrong type,
    // and a trigger without its type.
    let spec = doc["spec"].as_object_mut().unwrap();
    let min = spec.remove("minReplicaCount").unwrap();
    spec.insert("minReplicas".to_string(), min);
    spec.insert("cooldownPeriod".to_string(), Value::String("20m".into()));
    doc["spec"]["triggers"][0]
        .as_object_mut()
        .unwrap()
        .remove("type");
    let errors = validate(&schemas, &doc).unwrap();
    assert_eq!(errors.len(), 3, "{errors:#?}");

    let karpenter = documents(set.get("staging/karpenter.yaml").unwrap());
    let mut pool = karpenter
        .into_iter()
        .find(|d| d["kind"] == "NodePool")
        .unwrap();
    pool["spec"]["disruption"]["consolidationPolicy"] = Value::String("WhenIdle".into());
    assert_eq!(validate(&schemas, &pool).unwrap().len(), 1);
}

#[test]
fn haproxy_accepts_every_generated_config() {
    let Some(haproxy) = tool("haproxy", "apt-get install -y haproxy") else {
        return;
    };
    let dir = scratch("haproxy-c");
    let mut checked = 0;
    for (path, contents) in repo_fileset().iter() {
        if !path.ends_with("/haproxy.cfg") {
            continue;
        }
        let file = dir.join(path.replace('/', "_"));
        fs::write(&file, contents).unwrap();
        let out = Command::new(&haproxy)
            .arg("-c")
            .arg("-f")
            .arg(&file)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "haproxy -c rejected {path}:\n{text}");
        // Warnings are how HAProxy says a setting does not do what it reads like.
        assert!(
            !text.contains("[WARNING]"),
            "haproxy -c warned on {path}:\n{text}"
        );
        checked += 1;
    }
    assert_eq!(checked, 2, "one haproxy.cfg per cluster");

    // And the check is real: a config with a slot-less backend line fails.
    let broken = dir.join("broken.cfg");
    fs::write(
        &broken,
        "defaults\n    mode tcp\nbackend bk\n    server-template w 0 x:1\n",
    )
    .unwrap();
    let out = Command::new(&haproxy)
        .arg("-c")
        .arg("-f")
        .arg(&broken)
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn kubectl_kustomize_builds_every_cluster() {
    let Some(kubectl) = tool("kubectl", "apt-get install -y kubernetes-client") else {
        return;
    };
    let dir = scratch("kustomize");
    repo_fileset().write(&dir.join("generated")).expect("write");
    for cluster in ["production", "staging"] {
        let out = Command::new(&kubectl)
            .args(["kustomize"])
            .arg(dir.join("generated").join(cluster))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{cluster}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let docs = documents(&text);
        let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
        for kind in [
            "ConfigMap",
            "Deployment",
            "Service",
            "ScaledObject",
            "NodePool",
            "EC2NodeClass",
            "PodDisruptionBudget",
        ] {
            assert!(kinds.contains(&kind), "{cluster}: no {kind} in {kinds:?}");
        }
        // The LB mounts the ConfigMap the kustomization generates, by name.
        let config_map = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
        let lb = docs
            .iter()
            .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "buildkitd-lb")
            .unwrap();
        assert_eq!(
            lb["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"],
            config_map["metadata"]["name"]
        );
        assert!(config_map["data"]["haproxy.cfg"]
            .as_str()
            .unwrap()
            .contains("backend bk_amd64"));
    }
}

#[test]
fn vendored_schemas_match_their_sources_entry() {
    use sha2::{Digest, Sha256};
    let dir = common::schema_dir();
    let sources = fs::read_to_string(dir.join("SOURCES")).expect("tests/schemas/SOURCES");
    let listed: BTreeMap<String, String> = sources
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let fields: Vec<&str> = l.split(" | ").collect();
            assert_eq!(fields.len(), 6, "SOURCES line has 6 fields: {l}");
            (fields[0].to_string(), fields[5].to_string())
        })
        .collect();
    let mut files = BTreeMap::new();
    for entry in fs::read_dir(&dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "SOURCES" {
            continue;
        }
        let digest = Sha256::digest(fs::read(entry.path()).unwrap());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        files.insert(name, hex);
    }
    assert_eq!(
        files, listed,
        "every vendored schema is named in SOURCES with its sha256, and nothing else is"
    );
}
