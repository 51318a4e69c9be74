//! What the generated fleet promises running builds, read from the
//! manifests as Kubernetes, Karpenter and KEDA will read them: who may stop
//! a builder and when, how long each stop may take, who may reach it. The
//! behaviour itself is proven on real HAProxy and BusyBox in live_lb.rs and
//! drain.rs; these are the settings that make the cluster give it the time.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::process::Command;

use common::{documents, poolc, repo_fileset, scratch, stderr, tool, VALID_SPEC};
use serde_json::Value;

const CLUSTERS: [&str; 2] = ["production", "staging"];

/// Every Kubernetes document poolc writes for a cluster.
fn objects(cluster: &str) -> Vec<Value> {
    let set = repo_fileset();
    set.iter()
        .filter(|(path, _)| {
            path.starts_with(&format!("{cluster}/"))
                && path.ends_with(".yaml")
                && !path.contains("/prometheus/")
                && !path.ends_with("kustomization.yaml")
                && !path.ends_with("poolc-catalog.yaml")
        })
        .flat_map(|(_, text)| documents(text))
        .collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn labels(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `selector` (matchLabels) selects pods labelled `pod`.
fn selects(selector: &Value, pod: &Value) -> bool {
    let pod = labels(pod);
    labels(&selector["matchLabels"])
        .iter()
        .all(|(k, v)| pod.get(k) == Some(v))
}

/// `timeout server` of every backend in haproxy.cfg, in seconds.
fn timeouts_server(cluster: &str) -> Vec<u64> {
    let set = repo_fileset();
    set.get(&format!("{cluster}/haproxy.cfg"))
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("timeout server "))
        .map(|t| poolc::spec::Seconds::parse(t).unwrap().0)
        .collect()
}

fn lb_deployment(docs: &[Value]) -> &Value {
    of_kind(docs, "Deployment")
        .into_iter()
        .find(|d| d["metadata"]["labels"]["app.kubernetes.io/component"] == "load-balancer")
        .expect("an LB Deployment")
}

/// A changed haproxy.cfg rolls the LB pod: the old pod must be given the
/// longest build's time to finish, and nothing else may take it away.
#[test]
fn the_lb_pod_outlives_every_running_build() {
    for cluster in CLUSTERS {
        let docs = objects(cluster);
        let lb = lb_deployment(&docs);
        let pod = &lb["spec"]["template"];
        let grace = pod["spec"]["terminationGracePeriodSeconds"]
            .as_u64()
            .unwrap_or(30);
        let longest = timeouts_server(cluster).into_iter().max().unwrap();
        assert!(
            grace >= longest,
            "{cluster}: LB grace {grace}s < timeout server {longest}s"
        );
        assert_eq!(
            pod["metadata"]["annotations"]["karpenter.sh/do-not-disrupt"], "true",
            "{cluster}: Karpenter may consolidate the LB's node"
        );
        let budget = of_kind(&docs, "PodDisruptionBudget")
            .into_iter()
            .find(|b| selects(&b["spec"]["selector"], &pod["metadata"]["labels"]))
            .unwrap_or_else(|| panic!("{cluster}: no PDB covers the LB"));
        let replicas = lb["spec"]["replicas"].as_u64().unwrap_or(1);
        let min = budget["spec"]["minAvailable"].as_u64();
        let max_unavailable = budget["spec"]["maxUnavailable"].as_u64();
        assert!(
            min == Some(replicas) || max_unavailable == Some(0),
            "{cluster}: the LB PDB allows an eviction: {budget}"
        );
    }
}

/// KEDA deletes every running Job of a ScaledJob it updates unless the
/// rollout is gradual.
#[test]
fn scaled_job_changes_keep_running_jobs() {
    for cluster in CLUSTERS {
        for job in of_kind(&objects(cluster), "ScaledJob") {
            assert_eq!(
                job["spec"]["rollout"]["strategy"], "gradual",
                "{cluster}: {}",
                job["metadata"]["name"]
            );
        }
    }
}

/// A jobs pool's agent is stopped with its Job's numbers, not HAProxy's.
#[test]
fn agents_get_a_grace_period_within_their_deadline() {
    let mut seen = 0;
    for cluster in CLUSTERS {
        for job in of_kind(&objects(cluster), "ScaledJob") {
            let spec = &job["spec"]["jobTargetRef"];
            let deadline = spec["activeDeadlineSeconds"].as_u64().unwrap();
            let grace = spec["template"]["spec"]["terminationGracePeriodSeconds"]
                .as_u64()
                .unwrap();
            assert!(
                grace <= deadline,
                "{cluster}: grace {grace} > deadline {deadline}"
            );
            seen += 1;
        }
    }
    assert!(seen > 0, "no ScaledJob in the repository's specs");
}

/// The jobs pool's PDB must allow evictions above the warm floor, or
/// KubePdbNotEnoughHealthyPods fires whenever the pool is not full.
#[test]
fn the_jobs_pool_budget_allows_disruption() {
    let mut seen = 0;
    for cluster in CLUSTERS {
        let docs = objects(cluster);
        for job in of_kind(&docs, "ScaledJob") {
            let pod_labels = &job["spec"]["jobTargetRef"]["template"]["metadata"]["labels"];
            let budget = of_kind(&docs, "PodDisruptionBudget")
                .into_iter()
                .find(|b| selects(&b["spec"]["selector"], pod_labels))
                .expect("a PDB for the agents");
            let min_available = budget["spec"]["minAvailable"].as_u64().unwrap();
            let floor = job["spec"]["minReplicaCount"].as_u64().unwrap();
            let max = job["spec"]["maxReplicaCount"].as_u64().unwrap();
            assert!(
                min_available <= floor && min_available < max,
                "{cluster}: minAvailable {min_available} with min {floor}, max {max}"
            );
            seen += 1;
        }
    }
    assert!(seen > 0);
}

/// A new pod joins the LB only once its build port listens.
#[test]
fn workers_are_ready_only_when_the_build_port_listens() {
    for cluster in CLUSTERS {
        let docs = objects(cluster);
        for d in of_kind(&docs, "Deployment") {
            if d["metadata"]["labels"]["app.kubernetes.io/component"] != "worker" {
                continue;
            }
            let container = &d["spec"]["template"]["spec"]["containers"][0];
            let probe = &container["readinessProbe"];
            let port = &probe["tcpSocket"]["port"];
            let build = container["ports"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == "build")
                .unwrap();
            assert!(
                *port == build["name"] || *port == build["containerPort"],
                "{cluster}: readiness probe {probe} does not check the build port"
            );
        }
    }
}

/// The build port only from the LB; the metrics port only from the
/// monitoring namespace; nothing else.
#[test]
fn only_the_lb_reaches_a_builder() {
    for cluster in CLUSTERS {
        let docs = objects(cluster);
        let lb_pod = &lb_deployment(&docs)["spec"]["template"]["metadata"]["labels"];
        for d in of_kind(&docs, "Deployment") {
            if d["metadata"]["labels"]["app.kubernetes.io/component"] != "worker" {
                continue;
            }
            let pod = &d["spec"]["template"];
            let container = &pod["spec"]["containers"][0];
            let port_of = |name: &str| {
                container["ports"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|p| p["name"] == name)
                    .map(|p| p["containerPort"].as_u64().unwrap())
            };
            let policy = of_kind(&docs, "NetworkPolicy")
                .into_iter()
                .find(|p| selects(&p["spec"]["podSelector"], &pod["metadata"]["labels"]))
                .unwrap_or_else(|| {
                    panic!("{cluster}: no NetworkPolicy for {}", d["metadata"]["name"])
                });
            assert!(policy["spec"]["policyTypes"]
                .as_array()
                .unwrap()
                .contains(&Value::from("Ingress")));
            let rules = policy["spec"]["ingress"].as_array().unwrap();
            let mut allowed: BTreeMap<u64, Vec<&Value>> = BTreeMap::new();
            for rule in rules {
                let from = rule["from"].as_array().expect("every rule names its peers");
                assert!(
                    !from.is_empty(),
                    "{cluster}: a rule open to everyone: {rule}"
                );
                for port in rule["ports"]
                    .as_array()
                    .expect("every rule names its ports")
                {
                    allowed
                        .entry(port["port"].as_u64().unwrap())
                        .or_default()
                        .extend(from);
                }
            }
            let build = port_of("build").unwrap();
            let peers = &allowed[&build];
            assert!(
                peers
                    .iter()
                    .all(|p| p.get("namespaceSelector").is_none()
                        && selects(&p["podSelector"], lb_pod)),
                "{cluster}: build port {build} open to {peers:?}"
            );
            if let Some(metrics) = port_of("metrics") {
                let peers = &allowed[&metrics];
                assert!(
                    peers.iter().all(|p| p.get("podSelector").is_none()
                        && p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                            == "monitoring"),
                    "{cluster}: metrics port {metrics} open to {peers:?}"
                );
            }
            let ports: Vec<u64> = allowed.keys().copied().collect();
            let expected: Vec<u64> = [port_of("build"), port_of("metrics")]
                .into_iter()
                .flatten()
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            assert_eq!(
                ports, expected,
                "{cluster}: ports open beyond build and metrics"
            );
        }
    }
}

/// `lb.client_namespaces` limits who may open a build through the LB.
#[test]
fn client_namespaces_restrict_the_lb_frontends() {
    let dir = scratch("client-namespaces");
    let spec = VALID_SPEC.replace(
        "  metrics:\n",
        "  lb:\n    client_namespaces: [ci-runners, release]\n  metrics:\n",
    );
    fs::write(dir.join("specs/demo.yaml"), spec).unwrap();
    let out = poolc(&dir, &["generate"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lb = documents(&fs::read_to_string(dir.join("generated/demo/lb.yaml")).unwrap());
    let policy = lb.iter().find(|d| d["kind"] == "NetworkPolicy").unwrap();
    let frontends = policy["spec"]["ingress"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["ports"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["port"] == 3234)
        })
        .expect("a rule for the pool frontend");
    let namespaces: Vec<&str> = frontends["from"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(namespaces, ["ci-runners", "release"]);
}

/// More than one LB process breaks `maxconn 1` and the scale signal:
/// refused, naming the field and the fix.
#[test]
fn more_than_one_lb_replica_is_refused() {
    let dir = scratch("lb-replicas");
    let spec = VALID_SPEC.replace("  metrics:\n", "  lb:\n    replicas: 2\n  metrics:\n");
    fs::write(dir.join("specs/demo.yaml"), spec).unwrap();
    let out = poolc(&dir, &["generate"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("specs/demo.yaml:11"), "{err}");
    assert!(err.contains("lb.replicas is 2"), "{err}");
    assert!(err.contains("set lb.replicas to 1"), "{err}");
    assert!(!dir.join("generated").exists());
}

/// Every frontend takes IPv6 and IPv4 clients, and one DNS response may
/// carry an AAAA record for every slot of the largest backend.
#[test]
fn the_lb_serves_ipv6_and_resolves_every_slot() {
    let set = repo_fileset();
    for cluster in CLUSTERS {
        let cfg = set.get(&format!("{cluster}/haproxy.cfg")).unwrap();
        let binds: Vec<&str> = cfg
            .lines()
            .filter_map(|l| l.trim().strip_prefix("bind "))
            .collect();
        assert!(!binds.is_empty());
        for bind in &binds {
            assert!(
                bind.starts_with(":::") && bind.ends_with(" v4v6"),
                "{cluster}: bind {bind}"
            );
        }
        let payload: u64 = cfg
            .lines()
            .find_map(|l| l.trim().strip_prefix("accepted_payload_size "))
            .unwrap()
            .parse()
            .unwrap();
        // RFC 1035 sizes: a 12-byte header, the question (name + 4), and
        // per AAAA answer a compressed name (2), type, class, TTL, length
        // (10) and the address (16); EDNS adds an 11-byte OPT record.
        for line in cfg.lines().map(str::trim) {
            let Some(rest) = line.strip_prefix("server-template ") else {
                continue;
            };
            let words: Vec<&str> = rest.split_whitespace().collect();
            let slots: u64 = words[1].parse().unwrap();
            let name = words[2].rsplit_once(':').unwrap().0;
            let needed = 12 + (name.len() as u64 + 2) + 4 + slots * (2 + 10 + 16) + 11;
            assert!(
                payload >= needed,
                "{cluster}: {slots} AAAA records need {needed} bytes, accepted_payload_size is {payload}"
            );
        }
    }
}

/// Karpenter neither expires nodes under running builds by default nor
/// follows every AMI release, and a replaced node's pods get their whole
/// grace period. The alias obeys the vendored EC2NodeClass schema's rules.
#[test]
fn karpenter_replaces_nodes_only_gracefully() {
    let crd =
        fs::read_to_string(common::schema_dir().join("karpenter.k8s.aws_ec2nodeclasses.yaml"))
            .unwrap();
    // The family list of the alias's CEL rule: `self.split('@')[0] in [...]`.
    let rule = crd
        .lines()
        .find(|l| l.contains("rule: self.split('@')[0] in ["))
        .expect("the alias family rule in the vendored CRD");
    let families: Vec<String> = rule
        .split_once(" in [")
        .unwrap()
        .1
        .trim_end_matches(']')
        .split(',')
        .map(|f| f.trim().trim_matches('\'').to_string())
        .collect();
    for cluster in CLUSTERS {
        let docs = objects(cluster);
        for class in of_kind(&docs, "EC2NodeClass") {
            let alias = class["spec"]["amiSelectorTerms"][0]["alias"]
                .as_str()
                .unwrap();
            let (family, version) = alias.split_once('@').unwrap();
            assert!(
                families.iter().any(|f| f == family),
                "{alias} not in {families:?}"
            );
            assert!(
                !version.is_empty() && version != "latest",
                "{cluster}: {alias}"
            );
        }
        let grace_of_pool = |pool: &str| -> u64 {
            docs.iter()
                .filter_map(|d| match d["kind"].as_str() {
                    Some("Deployment") => Some(&d["spec"]["template"]),
                    Some("ScaledJob") => Some(&d["spec"]["jobTargetRef"]["template"]),
                    _ => None,
                })
                .find(|t| t["metadata"]["labels"]["poolc.dev/pool"] == pool)
                .and_then(|t| t["spec"]["terminationGracePeriodSeconds"].as_u64())
                .unwrap_or_else(|| panic!("{cluster}: no pods for pool {pool}"))
        };
        for np in of_kind(&docs, "NodePool") {
            let spec = &np["spec"]["template"]["spec"];
            assert_eq!(
                spec["expireAfter"], "Never",
                "{cluster}: {}",
                np["metadata"]["name"]
            );
            let tgp = poolc::spec::Seconds::parse(spec["terminationGracePeriod"].as_str().unwrap())
                .unwrap()
                .0;
            let pool = np["metadata"]["labels"]["poolc.dev/pool"].as_str().unwrap();
            let grace = grace_of_pool(pool);
            assert!(
                tgp >= grace,
                "{cluster}: node grace {tgp}s < pod grace {grace}s"
            );
        }
    }
}

/// `kubectl apply -k` on a fresh cluster needs the Namespace first: every
/// namespaced object lives in one the kustomization creates.
#[test]
fn the_kustomization_creates_its_namespace() {
    let Some(kubectl) = tool("kubectl", "apt-get install -y kubernetes-client") else {
        return;
    };
    let dir = scratch("namespace");
    repo_fileset().write(&dir.join("generated")).expect("write");
    for cluster in CLUSTERS {
        let out = Command::new(&kubectl)
            .arg("kustomize")
            .arg(dir.join("generated").join(cluster))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let docs = documents(&String::from_utf8_lossy(&out.stdout));
        let created: Vec<&str> = docs
            .iter()
            .filter(|d| d["kind"] == "Namespace")
            .map(|d| d["metadata"]["name"].as_str().unwrap())
            .collect();
        let monitoring = "monitoring";
        for d in &docs {
            if let Some(ns) = d["metadata"]["namespace"].as_str() {
                assert!(
                    created.contains(&ns) || ns == monitoring,
                    "{cluster}: {} {} is in namespace {ns}, which nothing creates",
                    d["kind"],
                    d["metadata"]["name"]
                );
            }
        }
        assert!(!created.is_empty(), "{cluster}: no Namespace");
    }
}
