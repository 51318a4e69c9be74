//! Helpers shared by the CLI tests: a scratch repository with specs/, a
//! way to run the real `poolc` binary in it, and the upstream schemas the
//! generated manifests must satisfy.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

/// A fresh directory under the target dir, removed and recreated per call.
pub fn scratch(name: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("specs")).expect("create scratch dir");
    dir
}

/// Runs `poolc ARGS` with `dir` as the working directory.
pub fn poolc(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_poolc"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run poolc")
}

/// Runs poolc in `dir` as a child process, reading at most `max_output`
/// bytes of each stream, and kills it (and fails the test) past `deadline`,
/// so a run that hangs or floods cannot take the test with it. Also returns
/// how long the run took.
pub fn poolc_within(
    dir: &Path,
    args: &[&str],
    deadline: std::time::Duration,
    max_output: u64,
) -> (Output, std::time::Duration) {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_poolc"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn poolc");
    let pipe = |from: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = from.take(max_output).read_to_end(&mut bytes);
            bytes
        })
    };
    let out = pipe(Box::new(child.stdout.take().unwrap()));
    let err = pipe(Box::new(child.stderr.take().unwrap()));
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for poolc") {
            break status;
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("poolc {args:?} ran past {deadline:?}: killed");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let took = started.elapsed();
    let output = Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    (output, took)
}

/// A free TCP port on 127.0.0.1 (free when asked; nothing holds it after).
///
/// The tests of one binary run in parallel, and the kernel may hand the same
/// just-released port to two of them: one test's LB would then reach the
/// other's workers. No port is handed out twice in one process.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every file under `root` with its bytes, sorted: a tree's fingerprint.
pub fn tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(root, &path, out);
        } else {
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            out.push((rel, fs::read(&path).unwrap_or_default()));
        }
    }
}

/// Copies the repository's real specs into a scratch dir.
pub fn with_repo_specs(name: &str) -> PathBuf {
    let dir = scratch(name);
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs");
    for entry in fs::read_dir(src).expect("specs/").flatten() {
        fs::copy(entry.path(), dir.join("specs").join(entry.file_name())).expect("copy spec");
    }
    dir
}

/// A small valid spec: one service pool, one jobs pool. Bad-input cases are
/// edits of it, so each case shows exactly one mistake.
pub const VALID_SPEC: &str = r#"cluster:
  name: demo
  environment: dev
  namespace: ci
  exporters:
    keda: "2.16"
    haproxy: "3.1"
    kube-state-metrics: "2.13"
    karpenter: "1.14"
  metrics:
    - {name: buildkite_queues_scheduled_jobs_count,
       type: gauge, labels: [queue],
       scraped_by: {servicemonitor: ci/buildkite-agent-metrics}}
pools:
  - name: amd64
    arch: amd64
    port: 3234
    worker:
      image: moby/buildkit:v0.29.0
    instance_types:
      - type: m6id.24xlarge
        pods_per_node: 2
    min: 2
    max: 8
    fallback:
      replicas: 4
  - name: agents
    mode: jobs
    arch: amd64
    worker:
      image: buildkite/agent:3
    instance_types:
      - type: c6id.4xlarge
        pods_per_node: 2
    min: 0
    max: 10
    jobs:
      query: sum(buildkite_queues_scheduled_jobs_count{queue="default"})
      server_address: http://prometheus.monitoring.svc:9090
"#;

/// The path of an external tool the test needs, or None after saying clearly
/// that the test is skipped. Under `CI=true` a missing tool fails the test:
/// CI installs them all, so a skip there would hide a broken setup.
pub fn tool(name: &str, install: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file());
    if found.is_none() {
        let message = format!("`{name}` is not installed (install it with: {install})");
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{message}; CI=true requires it");
        }
        eprintln!("SKIPPED: {message}");
    }
    found
}

/// Compiles the repository's specs in memory, as `poolc generate` would.
pub fn repo_fileset() -> poolc::fileset::FileSet {
    // Relative, as a user runs it: the path appears in every file's header.
    // Cargo runs integration tests from the package root.
    poolc::pipeline::compile(Path::new("specs")).unwrap_or_else(|e| panic!("specs/ compile: {e}"))
}

/// Every YAML document of a generated multi-document file.
pub fn documents(text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple(text).expect("generated YAML parses")
}

/// The vendored upstream schemas (`tests/schemas/`, see `SOURCES` there).
pub fn schema_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemas")
}

/// Upstream schemas, by `apiVersion` group and kind.
pub fn schemas() -> BTreeMap<(String, String), jsonschema::Validator> {
    let crds = schema_dir();
    let mut out = BTreeMap::new();
    for file in [
        "keda.sh_scaledobjects.yaml",
        "keda.sh_scaledjobs.yaml",
        "karpenter.sh_nodepools.yaml",
        "karpenter.k8s.aws_ec2nodeclasses.yaml",
        "monitoring.coreos.com_prometheusrules.yaml",
        "monitoring.coreos.com_servicemonitors.yaml",
    ] {
        let text = fs::read_to_string(crds.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let crd: Value = serde_saphyr::from_str(&text).expect("CRD parses");
        let group = crd["spec"]["group"].as_str().unwrap().to_string();
        let kind = crd["spec"]["names"]["kind"].as_str().unwrap().to_string();
        for version in crd["spec"]["versions"].as_array().unwrap() {
            if version["storage"] != true {
                continue;
            }
            let api_version = format!("{group}/{}", version["name"].as_str().unwrap());
            let mut schema = version["schema"]["openAPIV3Schema"].clone();
            strict(&mut schema);
            let validator = jsonschema::validator_for(&schema).expect("CRD schema compiles");
            out.insert((api_version, kind.clone()), validator);
        }
    }
    let pdb: Value = serde_json::from_str(
        &fs::read_to_string(crds.join("poddisruptionbudget-policy-v1.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .build(&pdb)
        .expect("PDB schema compiles");
    out.insert(
        ("policy/v1".to_string(), "PodDisruptionBudget".to_string()),
        validator,
    );
    out
}

/// The API server prunes unknown fields silently, so a misspelled field would
/// apply and do nothing. Like a strict kubeconform, reject them: every object
/// schema that lists its properties allows only those.
fn strict(schema: &mut Value) {
    if let Value::Object(map) = schema {
        let preserves = map.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
        if map.contains_key("properties") && !map.contains_key("additionalProperties") && !preserves
        {
            map.insert("additionalProperties".to_string(), Value::Bool(false));
        }
        for value in map.values_mut() {
            strict(value);
        }
    } else if let Value::Array(items) = schema {
        for item in items {
            strict(item);
        }
    }
}

pub fn validate(
    schemas: &BTreeMap<(String, String), jsonschema::Validator>,
    doc: &Value,
) -> Option<Vec<String>> {
    let key = (
        doc["apiVersion"].as_str()?.to_string(),
        doc["kind"].as_str()?.to_string(),
    );
    let validator = schemas.get(&key)?;
    Some(
        validator
            .iter_errors(doc)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect(),
    )
}
