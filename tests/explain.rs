//! `poolc explain pool` for every pool in specs/, as snapshots, and proof that
//! its numbers are the ones in the generated manifests.

mod common;

use std::path::Path;

use common::{poolc, stderr, stdout, with_repo_specs};
use serde_json::Value;

fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_multiple(&text).expect("generated YAML parses")
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

#[test]
fn explain_matches_the_manifests_for_every_pool() {
    let dir = with_repo_specs("explain");
    assert_eq!(poolc(&dir, &["generate"]).status.code(), Some(0));
    let model = poolc::pipeline::load_model(&dir.join("specs")).expect("specs are valid");
    let mut pools = 0;
    for cluster in &model.clusters {
        let out = dir.join("generated").join(&cluster.name);
        let karpenter = documents(&out.join("karpenter.yaml"));
        let keda = documents(&out.join("keda.yaml"));
        for pool in &cluster.pools {
            pools += 1;
            let target = format!("{}/{}", cluster.name, pool.name);
            let run = poolc(&dir, &["explain", "pool", &target]);
            assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
            let text = stdout(&run);
            insta::assert_snapshot!(format!("{}__{}", cluster.name, pool.name), text);

            for np in &pool.node_pools {
                let manifest = find(&karpenter, "NodePool", &np.name);
                let cpu = manifest["spec"]["limits"]["cpu"]
                    .as_str()
                    .expect("limits.cpu");
                let memory = manifest["spec"]["limits"]["memory"]
                    .as_str()
                    .expect("limits.memory");
                let row = text
                    .lines()
                    .find(|l| l.trim_start().starts_with(&np.name))
                    .unwrap_or_else(|| panic!("{target}: no row for {}", np.name));
                let cells: Vec<&str> = row.split_whitespace().collect();
                assert_eq!(cells[4], cpu, "{target}: cpu limit in {row}");
                assert_eq!(cells[5], memory, "{target}: memory limit in {row}");
                assert_eq!(
                    cells[1],
                    manifest["spec"]["weight"].to_string(),
                    "{target}: weight"
                );
            }
            let kind = if pool.lb.is_some() {
                "ScaledObject"
            } else {
                "ScaledJob"
            };
            let scaler = find(&keda, kind, &pool.workload);
            let max = scaler["spec"]["maxReplicaCount"]
                .as_u64()
                .expect("maxReplicaCount");
            let min = scaler["spec"]["minReplicaCount"].as_u64().unwrap_or(0);
            assert!(
                text.contains(&format!("replicas          min {min}, max {max}")),
                "{target}:\n{text}"
            );
            if let Some(lb) = &pool.lb {
                let cfg = std::fs::read_to_string(out.join("haproxy.cfg")).unwrap();
                let slots = format!("server-template w {} ", lb.slots);
                assert!(
                    cfg.contains(&slots),
                    "{target}: haproxy.cfg lacks `{slots}`"
                );
                assert!(
                    text.contains(&format!("{} slots", lb.slots)),
                    "{target}:\n{text}"
                );
            }
        }
    }
    assert!(pools >= 6, "expected the pools of staging and production");
}
