//! Property tests over generated specs. Random valid specs compile, their
//! manifests pass the upstream schemas, they lint clean, compile to the same
//! bytes twice, and the capacity invariants hold in what is written. Random
//! broken specs fail with the file and the line of the mistake, never a
//! panic. And no string poolc accepts changes the structure of any output.
//!
//! Every property runs a fixed number of cases from a fixed ChaCha seed, so a
//! failure reproduces on every machine and `cargo test` stays quick. For a
//! deeper run, set `PROPTEST_CASES` (the same seed, more cases).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::path::Path;
use std::sync::OnceLock;

use poolc::instance_types::{builtin, InstanceType};
use poolc::pipeline::{self, Failure};
use poolc::spec::Arch;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::{json, Map, Value};

use common::{documents, poolc, scratch, stderr, VALID_SPEC};

// ---------------------------------------------------------------------------
// The runner: fixed seed, bounded cases, no persistence files.

const SEED: [u8; 32] = *b"poolc: every spec, every output!";

fn run<S>(
    cases: u32,
    strategy: impl FnOnce() -> S + Send,
    test: impl Fn(S::Value) -> Result<(), TestCaseError> + Send,
) where
    S: Strategy,
    S::Value: Debug,
{
    // PROPTEST_CASES overrides the count for a deeper run by hand.
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() {
        Config::default().cases
    } else {
        cases
    };
    let config = Config {
        cases,
        max_shrink_iters: 200,
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::ChaCha,
        ..Config::default()
    };
    // The spec strategies nest deeply; unoptimized, their value trees need
    // more than a test thread's default stack.
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn_scoped(scope, move || {
                let mut runner = TestRunner::new_with_rng(
                    config,
                    TestRng::from_seed(RngAlgorithm::ChaCha, &SEED),
                );
                if let Err(e) = runner.run(&strategy(), test) {
                    panic!("{e}");
                }
            })
            .expect("spawn the property thread")
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
    });
}

// ---------------------------------------------------------------------------
// YAML out of a JSON tree, one scalar per line, so a test knows the line of
// every field. Scalars are written as double-quoted YAML (strings) or JSON
// (numbers, booleans, flow lists and maps), both of which YAML reads.

struct Emitted {
    text: String,
    /// `pools.0.max` → its 1-based line.
    lines: BTreeMap<String, usize>,
}

fn emit(spec: &Value) -> Emitted {
    let mut out = Emitted {
        text: String::new(),
        lines: BTreeMap::new(),
    };
    let map = spec.as_object().expect("a spec is a mapping");
    emit_map(&mut out, map, 0, "", false);
    out
}

fn line_no(out: &Emitted) -> usize {
    out.text.matches('\n').count() + 1
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// `dash`: the first key goes on a `- ` line of a sequence at `indent - 2`.
fn emit_map(
    out: &mut Emitted,
    map: &Map<String, Value>,
    indent: usize,
    path: &str,
    mut dash: bool,
) {
    for (key, value) in map {
        let prefix = if std::mem::take(&mut dash) {
            format!("{}- ", " ".repeat(indent - 2))
        } else {
            " ".repeat(indent)
        };
        let here = join(path, key);
        let line = line_no(out);
        out.lines.insert(here.clone(), line);
        out.text.push_str(&prefix);
        out.text.push_str(&yaml_key(key));
        out.text.push(':');
        match value {
            Value::Object(inner) if !inner.is_empty() => {
                out.text.push('\n');
                emit_map(out, inner, indent + 2, &here, false);
            }
            Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {
                out.text.push('\n');
                for (i, item) in items.iter().enumerate() {
                    let item_path = join(&here, &i.to_string());
                    out.lines.insert(item_path.clone(), line_no(out));
                    let inner = item.as_object().unwrap();
                    if inner.is_empty() {
                        out.text
                            .push_str(&format!("{}- {{}}\n", " ".repeat(indent + 2)));
                    } else {
                        emit_map(out, inner, indent + 4, &item_path, true);
                    }
                }
            }
            scalar => {
                out.text.push(' ');
                out.text.push_str(&flow(scalar));
                out.text.push('\n');
                record_flow_paths(out, scalar, &here, line);
            }
        }
    }
}

fn record_flow_paths(out: &mut Emitted, value: &Value, path: &str, line: usize) {
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let p = join(path, &i.to_string());
                out.lines.insert(p.clone(), line);
                record_flow_paths(out, item, &p, line);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                let p = join(path, k);
                out.lines.insert(p.clone(), line);
                record_flow_paths(out, v, &p, line);
            }
        }
        _ => {}
    }
}

fn yaml_key(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c))
    {
        key.to_string()
    } else {
        quoted(key)
    }
}

fn flow(value: &Value) -> String {
    match value {
        Value::String(s) => quoted(s),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(flow).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", quoted(k), flow(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        other => other.to_string(),
    }
}

/// A YAML double-quoted scalar: anything YAML cannot hold raw is escaped.
fn quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if yaml_printable(c) => out.push(c),
            c if (c as u32) <= 0xFFFF => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push_str(&format!("\\U{:08X}", c as u32)),
        }
    }
    out.push('"');
    out
}

fn yaml_printable(c: char) -> bool {
    matches!(c as u32, 0x20..=0x7E | 0x85 | 0xA0..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
        && c != '\u{FEFF}'
}

/// Sets `path` (dotted; numbers index lists), creating mappings on the way.
fn set(root: &mut Value, path: &str, new: Value) {
    let mut node = root;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i == parts.len() - 1;
        node = match node {
            Value::Array(items) => {
                let idx: usize = part.parse().expect("list index");
                &mut items[idx]
            }
            Value::Object(map) => {
                if last {
                    map.insert(part.to_string(), new);
                    return;
                }
                map.entry(part.to_string())
                    .or_insert_with(|| Value::Object(Map::new()))
            }
            other => panic!("cannot descend into {other} at {part} of {path}"),
        };
        if last {
            *node = new;
            return;
        }
    }
}

fn get<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(root, |node, part| match node {
        Value::Array(items) => items.get(part.parse::<usize>().ok()?),
        Value::Object(map) => map.get(part),
        _ => None,
    })
}

// ---------------------------------------------------------------------------
// Valid specs: drawn as free choices, then resolved into a spec that meets
// every rule of the Model (README, "The spec").

#[derive(Debug, Clone, Copy)]
struct Dur {
    seconds: u64,
    format: u8,
}

impl Dur {
    /// One of the spellings the spec accepts for this many seconds.
    fn value(self) -> Value {
        let s = self.seconds;
        let mut spellings = vec![json!(s), json!(format!("{s}s"))];
        if s > 0 && s.is_multiple_of(60) {
            spellings.push(json!(format!("{}m", s / 60)));
        }
        if s > 0 && s.is_multiple_of(3600) {
            spellings.push(json!(format!("{}h", s / 3600)));
        }
        if s > 0 && s.is_multiple_of(86400) {
            spellings.push(json!(format!("{}d", s / 86400)));
        }
        spellings.swap_remove(usize::from(self.format) % spellings.len())
    }
}

fn dur(lo: u64, hi: u64) -> impl Strategy<Value = Dur> {
    let round = (lo.div_ceil(60)..=(hi / 60).max(lo.div_ceil(60))).prop_map(|m| m * 60);
    (prop_oneof![lo..=hi, round], any::<u8>()).prop_map(move |(seconds, format)| Dur {
        seconds: seconds.clamp(lo, hi),
        format,
    })
}

fn opt<T: Debug + Clone>(s: impl Strategy<Value = T>) -> impl Strategy<Value = Option<T>> {
    prop::option::weighted(0.4, s)
}

fn dns_label(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z][a-z0-9]{0,7}".boxed(),
        1 => proptest::string::string_regex(&format!("[a-z]([a-z0-9-]{{0,{}}}[a-z0-9])?", max - 2))
            .expect("a regex")
            .boxed(),
        1 => proptest::string::string_regex(&format!("[a-z][a-z0-9]{{{}}}", max - 1))
            .expect("a regex")
            .boxed(),
    ]
}

#[derive(Debug, Clone)]
struct PoolDraw {
    name: String,
    jobs: bool,
    arm: bool,
    types: Vec<(Index, Index)>,
    max: u32,
    min: Index,
    fallback: Option<(Index, Option<u32>)>,
    port: u16,
    slots_extra: Option<u32>,
    timeout_server: Option<Dur>,
    drain: Option<Dur>,
    grace_extra: Option<u64>,
    timeouts: (Option<Dur>, Option<Dur>, Option<Dur>),
    scaling: ScalingDraw,
    alerts: AlertsDraw,
    job: JobDraw,
    worker: WorkerDraw,
    capacity: Option<bool>,
}

#[derive(Debug, Clone)]
struct ScalingDraw {
    cooldown: Option<Dur>,
    polling: Option<Dur>,
    stabilization: Option<Dur>,
    pods: Option<u32>,
    percent: Option<u32>,
    period: Option<Dur>,
    target: Option<u32>,
}

#[derive(Debug, Clone)]
struct AlertsDraw {
    severity: Option<&'static str>,
    queue_backlog: Option<u32>,
    queue_backlog_for: Option<Dur>,
    at_max_for: Option<Dur>,
    warm_deficit_for: Option<Dur>,
    pending_jobs: Option<u32>,
    pending_jobs_for: Option<Dur>,
}

#[derive(Debug, Clone)]
struct JobDraw {
    query: &'static str,
    server: &'static str,
    target: Option<u32>,
    strategy: Option<&'static str>,
    histories: (Option<u32>, Option<u32>),
    deadline: Option<Dur>,
}

#[derive(Debug, Clone)]
struct WorkerDraw {
    image: Option<&'static str>,
    args: Option<Vec<&'static str>>,
    port: Option<u16>,
    metrics: Option<(u16, Option<&'static str>)>,
    privileged: Option<bool>,
}

#[derive(Debug, Clone)]
struct ClusterDraw {
    name: String,
    environment: String,
    namespace: String,
    app: Option<String>,
    versions: (Index, Index, Index, Index),
    scrape: Option<Dur>,
    alert_labels: BTreeMap<&'static str, String>,
    runbook: Option<&'static str>,
    lb: (Option<u16>, Option<u32>, bool),
    node_class: (Option<String>, Option<String>, Option<u32>),
    monitoring: MonitoringDraw,
    defaults: DefaultsDraw,
    pools: Vec<PoolDraw>,
}

#[derive(Debug, Clone)]
struct MonitoringDraw {
    namespace: Option<String>,
    labels: BTreeMap<&'static str, String>,
    keda_operator: Option<bool>,
    keda_namespace: Option<String>,
}

#[derive(Debug, Clone)]
struct DefaultsDraw {
    capacity: Option<bool>,
    timeout_server: Option<Dur>,
    drain: Option<Dur>,
    grace_extra: Option<u64>,
    image: Option<&'static str>,
    scaling: ScalingDraw,
    alerts: AlertsDraw,
}

const IMAGES: &[&str] = &[
    "moby/buildkit:v0.29.0",
    "buildkite/agent:3",
    "registry.example.com/ci/builder@sha256:0123456789abcdef",
    "ghcr.io/acme/worker:1.2.3-rc.1",
];
const QUERIES: &[&str] = &[
    r#"sum(buildkite_queues_scheduled_jobs_count{queue="default"})"#,
    "max(buildkite_queues_scheduled_jobs_count)",
    r#"sum by (queue) (buildkite_queues_scheduled_jobs_count{queue=~"arm.*"})"#,
];
const SERVERS: &[&str] = &[
    "http://prometheus.monitoring.svc:9090",
    "https://prom.example.com",
];
const SEVERITIES: &[&str] = &["info", "warning", "critical"];
const STRATEGIES: &[&str] = &["default", "custom", "accurate", "eager"];
const KEDA: &[(u32, u32)] = &[
    (2, 9),
    (2, 12),
    (2, 13),
    (2, 14),
    (2, 16),
    (2, 17),
    (2, 19),
    (2, 20),
];
const HAPROXY: &[&str] = &["2.6", "2.8", "3.0", "3.1", "3.2", "3.4"];
const KSM: &[&str] = &["2.8", "2.10", "2.13", "2.17", "2.19", "2.20"];
const KARPENTER: &[&str] = &["1.0", "1.3", "1.9", "1.13", "1.14"];

prop_compose! {
    fn scaling_draw()(
        cooldown in opt(dur(0, 3600)),
        polling in opt(dur(1, 300)),
        stabilization in opt(dur(0, 3600)),
        pods in opt(1..=50u32),
        percent in opt(1..=100u32),
        period in opt(dur(1, 1800)),
        target in opt(1..=8u32),
    ) -> ScalingDraw {
        ScalingDraw { cooldown, polling, stabilization, pods, percent, period, target }
    }
}

prop_compose! {
    fn alerts_draw()(
        severity in opt(select(SEVERITIES)),
        queue_backlog in opt(1..=200u32),
        queue_backlog_for in opt(dur(60, 7200)),
        at_max_for in opt(dur(60, 7200)),
        warm_deficit_for in opt(dur(60, 7200)),
        pending_jobs in opt(1..=2000u32),
        pending_jobs_for in opt(dur(60, 7200)),
    ) -> AlertsDraw {
        AlertsDraw { severity, queue_backlog, queue_backlog_for, at_max_for, warm_deficit_for, pending_jobs, pending_jobs_for }
    }
}

prop_compose! {
    fn job_draw()(
        query in select(QUERIES),
        server in select(SERVERS),
        target in opt(1..=10u32),
        strategy in opt(select(STRATEGIES)),
        histories in (opt(0..=20u32), opt(0..=20u32)),
        deadline in opt(dur(60, 86400)),
    ) -> JobDraw {
        JobDraw { query, server, target, strategy, histories, deadline }
    }
}

prop_compose! {
    fn worker_draw()(
        image in opt(select(IMAGES)),
        args in opt(prop::collection::vec(select(&["--addr", "tcp://[::]:1234", "start", "--debug", "--oci-worker-gc=false"][..]), 0..4)),
        port in opt(1024..=20000u16),
        metrics in opt((20001..=30000u16, opt(select(&["/metrics", "/debug/metrics_prometheus"][..])))),
        privileged in opt(any::<bool>()),
    ) -> WorkerDraw {
        WorkerDraw { image, args, port, metrics, privileged }
    }
}

prop_compose! {
    fn pool_draw()(
        name in dns_label(40),
        jobs in prop::bool::weighted(0.3),
        arm in any::<bool>(),
        types in prop::collection::vec((any::<Index>(), any::<Index>()), 1..=3),
        max in prop_oneof![4 => 1..=16u32, 2 => 1..=400u32, 1 => 1..=10_000u32],
        min in any::<Index>(),
        fallback in opt((any::<Index>(), opt(1..=10u32))),
        port in 1024..=65535u16,
        slots_extra in opt(0..=64u32),
        timeout_server in opt(dur(1, 4 * 3600)),
        drain in opt(dur(0, 3600)),
        grace_extra in opt(1..=3600u64),
        timeouts in (opt(dur(1, 60)), opt(dur(1, 4 * 3600)), opt(dur(1, 4 * 3600))),
        scaling in scaling_draw(),
        alerts in alerts_draw(),
        job in job_draw(),
        worker in worker_draw(),
        capacity in opt(any::<bool>()),
    ) -> PoolDraw {
        PoolDraw { name, jobs, arm, types, max, min, fallback, port, slots_extra, timeout_server, drain, grace_extra, timeouts, scaling, alerts, job, worker, capacity }
    }
}

prop_compose! {
    fn cluster_draw(max_pools: usize)(
        name in dns_label(63),
        environment in dns_label(63),
        namespace in dns_label(63),
        app in opt(dns_label(20)),
        versions in (any::<Index>(), any::<Index>(), any::<Index>(), any::<Index>()),
        scrape in opt(select(&[15u64, 30, 60][..]).prop_flat_map(|s| any::<u8>().prop_map(move |format| Dur { seconds: s, format }))),
        alert_labels in prop::collection::btree_map(select(&["team", "priority", "owner", "tier"][..]), "[A-Za-z0-9 ._/-]{1,20}", 0..3),
        runbook in opt(select(&["https://runbooks.example.com/poolc", "https://wiki.example.com/ci/"][..])),
        lb in (opt(1024..=65535u16), opt(1..=3u32), any::<bool>()),
        node_class in (opt("[A-Za-z][A-Za-z0-9-]{0,30}"), opt("[a-z][a-z0-9-]{0,20}"), opt(20..=2000u32)),
        monitoring in monitoring_draw(),
        defaults in defaults_draw(),
        pools in prop::collection::vec(pool_draw(), 1..=max_pools),
    ) -> ClusterDraw {
        ClusterDraw { name, environment, namespace, app, versions, scrape, alert_labels, runbook, lb, node_class, monitoring, defaults, pools }
    }
}

prop_compose! {
    fn monitoring_draw()(
        namespace in opt(dns_label(63)),
        labels in prop::collection::btree_map(select(&["release", "prometheus", "team"][..]), "[a-z0-9]([a-z0-9._-]{0,18}[a-z0-9])?", 0..3),
        keda_operator in opt(any::<bool>()),
        keda_namespace in opt(dns_label(63)),
    ) -> MonitoringDraw {
        MonitoringDraw { namespace, labels, keda_operator, keda_namespace }
    }
}

prop_compose! {
    fn defaults_draw()(
        capacity in opt(any::<bool>()),
        timeout_server in opt(dur(1, 4 * 3600)),
        drain in opt(dur(0, 3600)),
        grace_extra in opt(1..=3600u64),
        image in opt(select(IMAGES)),
        scaling in scaling_draw(),
        alerts in alerts_draw(),
    ) -> DefaultsDraw {
        DefaultsDraw { capacity, timeout_server, drain, grace_extra, image, scaling, alerts }
    }
}

/// Types of an arch that can hold at least one 1 vCPU / 1 GiB pod.
fn types_of(arch: Arch) -> &'static [&'static InstanceType] {
    static TYPES: OnceLock<BTreeMap<Arch, Vec<&'static InstanceType>>> = OnceLock::new();
    let all = TYPES.get_or_init(|| {
        let mut by_arch: BTreeMap<Arch, Vec<&'static InstanceType>> = BTreeMap::new();
        for t in builtin().values() {
            if most_pods(t) >= 1 {
                by_arch.entry(t.arch).or_default().push(t);
            }
        }
        by_arch
    });
    &all[&arch]
}

/// The most pods per node that still leaves each pod 1 vCPU and 1 GiB.
fn most_pods(t: &InstanceType) -> u32 {
    let (cpu_m, mem_mi) = t.usable();
    let by_cpu = cpu_m * 90 / 100 / 1000;
    let by_mem = mem_mi * 90 / 100 / 1024;
    let n = by_cpu.min(by_mem).min(u64::from(t.max_pods));
    let n = u32::try_from(n).unwrap_or(u32::MAX);
    // The formula above is the README's; trust only what pod_size says.
    (1..=n)
        .rev()
        .find(|&p| {
            let s = t.pod_size(p);
            s.cpu >= 1 && s.memory_gib >= 1
        })
        .unwrap_or(0)
}

fn put(map: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        map.insert(key.to_string(), v);
    }
}

fn scaling_value(s: &ScalingDraw) -> Option<Value> {
    let mut m = Map::new();
    put(&mut m, "cooldown", s.cooldown.map(Dur::value));
    put(&mut m, "polling_interval", s.polling.map(Dur::value));
    put(&mut m, "stabilization", s.stabilization.map(Dur::value));
    put(&mut m, "scale_down_pods", s.pods.map(|v| json!(v)));
    put(&mut m, "scale_down_percent", s.percent.map(|v| json!(v)));
    put(&mut m, "scale_down_period", s.period.map(Dur::value));
    put(&mut m, "target_sessions", s.target.map(|v| json!(v)));
    (!m.is_empty()).then_some(Value::Object(m))
}

fn alerts_value(a: &AlertsDraw) -> Option<Value> {
    let mut m = Map::new();
    put(&mut m, "severity", a.severity.map(|v| json!(v)));
    put(&mut m, "queue_backlog", a.queue_backlog.map(|v| json!(v)));
    put(
        &mut m,
        "queue_backlog_for",
        a.queue_backlog_for.map(Dur::value),
    );
    put(&mut m, "at_max_for", a.at_max_for.map(Dur::value));
    put(
        &mut m,
        "warm_deficit_for",
        a.warm_deficit_for.map(Dur::value),
    );
    put(&mut m, "pending_jobs", a.pending_jobs.map(|v| json!(v)));
    put(
        &mut m,
        "pending_jobs_for",
        a.pending_jobs_for.map(Dur::value),
    );
    (!m.is_empty()).then_some(Value::Object(m))
}

/// Resolves the draws into a spec every rule accepts. `taken` holds cluster
/// names already used by other specs in the same directory.
fn build_spec(c: &ClusterDraw, taken: &mut BTreeSet<String>) -> Value {
    let name = unique(&c.name, 63, taken);
    let has_service = c.pools.iter().any(|p| !p.jobs);
    // Service pools need KEDA 2.14+ (metrics-api `format: prometheus`).
    let keda_choices: Vec<(u32, u32)> = KEDA
        .iter()
        .copied()
        .filter(|v| !has_service || *v >= (2, 14))
        .collect();
    let keda = keda_choices[c.versions.0.index(keda_choices.len())];
    let mut cluster = Map::new();
    cluster.insert("name".into(), json!(name));
    cluster.insert("environment".into(), json!(c.environment));
    cluster.insert("namespace".into(), json!(c.namespace));
    put(&mut cluster, "app", c.app.as_ref().map(|a| json!(a)));
    cluster.insert(
        "exporters".into(),
        json!({
            "keda": format!("{}.{}", keda.0, keda.1),
            "haproxy": c.versions.1.get(HAPROXY),
            "kube-state-metrics": c.versions.2.get(KSM),
            "karpenter": c.versions.3.get(KARPENTER),
        }),
    );
    put(&mut cluster, "scrape_interval", c.scrape.map(Dur::value));
    if !c.alert_labels.is_empty() {
        cluster.insert("alert_labels".into(), json!(c.alert_labels));
    }
    put(&mut cluster, "runbook_url", c.runbook.map(|r| json!(r)));
    cluster.insert(
        "metrics".into(),
        json!([{"name": "buildkite_queues_scheduled_jobs_count", "type": "gauge", "labels": ["queue"], "scraped_by": {"servicemonitor": "ci/buildkite-agent-metrics"}}]),
    );
    // The LB: a metrics port clear of the stats port, and one replica
    // (`maxconn 1` and the scale signal are per HAProxy process).
    let metrics_port = c.lb.0.filter(|p| *p != 8404);
    let replicas = c.lb.1.filter(|r| *r == 1);
    let mut lb = Map::new();
    put(&mut lb, "metrics_port", metrics_port.map(|p| json!(p)));
    put(&mut lb, "replicas", replicas.map(|r| json!(r)));
    if c.lb.2 {
        lb.insert(
            "image".into(),
            json!(format!("haproxy:{}-alpine", c.versions.1.get(HAPROXY))),
        );
    }
    if !lb.is_empty() {
        cluster.insert("lb".into(), Value::Object(lb));
    }
    let mut nc = Map::new();
    put(&mut nc, "role", c.node_class.0.as_ref().map(|v| json!(v)));
    put(
        &mut nc,
        "discovery_tag",
        c.node_class.1.as_ref().map(|v| json!(v)),
    );
    put(&mut nc, "root_volume_gib", c.node_class.2.map(|v| json!(v)));
    if !nc.is_empty() {
        cluster.insert("node_class".into(), Value::Object(nc));
    }
    let mut mon = Map::new();
    let m = &c.monitoring;
    put(
        &mut mon,
        "namespace",
        m.namespace.as_ref().map(|v| json!(v)),
    );
    if !m.labels.is_empty() {
        mon.insert("labels".into(), json!(m.labels));
    }
    put(&mut mon, "keda_operator", m.keda_operator.map(|v| json!(v)));
    put(
        &mut mon,
        "keda_namespace",
        m.keda_namespace.as_ref().map(|v| json!(v)),
    );
    if !mon.is_empty() {
        cluster.insert("monitoring".into(), Value::Object(mon));
    }

    // defaults:
    let d = &c.defaults;
    let mut defaults = Map::new();
    put(
        &mut defaults,
        "capacity_type",
        d.capacity
            .map(|s| json!(if s { "spot" } else { "on-demand" })),
    );
    put(&mut defaults, "scaling", scaling_value(&d.scaling));
    if let Some(ts) = d.timeout_server {
        defaults.insert("haproxy".into(), json!({"timeout_server": ts.value()}));
    }
    put(&mut defaults, "drain", d.drain.map(Dur::value));
    put(
        &mut defaults,
        "worker",
        d.image.map(|i| json!({"image": i})),
    );
    put(&mut defaults, "alerts", alerts_value(&d.alerts));

    // pools:
    let mut pool_names = BTreeSet::new();
    let mut ports: BTreeSet<u16> = [8404, metrics_port.unwrap_or(9404)].into();
    let mut pools = Vec::new();
    let mut worst_service = 0u64;
    let app = c.app.as_deref().unwrap_or("buildkitd");
    for p in &c.pools {
        let arch = if p.arm { Arch::Arm64 } else { Arch::Amd64 };
        let types = instance_types(p, arch);
        // `<app>-<pool>-pods` and `<app>-<pool>-<type>` stay within 63.
        let longest_type = types
            .iter()
            .map(|t| t["type"].as_str().unwrap().len())
            .max()
            .unwrap_or(0);
        let room = (63 - app.len() - 2 - longest_type.max(4)).min(40);
        let stem: String = p.name.chars().take(room).collect();
        let pool_name = unique(stem.trim_end_matches('-'), room, &mut pool_names);
        let mut pool = Map::new();
        pool.insert("name".into(), json!(pool_name));
        if p.jobs {
            pool.insert("mode".into(), json!("jobs"));
        } else if p.port % 3 == 0 {
            pool.insert("mode".into(), json!("service"));
        }
        pool.insert("arch".into(), json!(arch.as_str()));
        if !p.jobs {
            let mut port = p.port;
            while ports.contains(&port) {
                port = if port == u16::MAX { 1024 } else { port + 1 };
            }
            ports.insert(port);
            pool.insert("port".into(), json!(port));
        }
        pool.insert("instance_types".into(), json!(types));
        // A service pool's slots must fit in one DNS response of AAAA records.
        let max = if p.jobs { p.max } else { p.max.min(2_000) };
        let min = if p.jobs {
            p.min.index(max as usize + 1) as u32
        } else {
            1 + p.min.index(max as usize) as u32
        };
        pool.insert("min".into(), json!(min));
        pool.insert("max".into(), json!(max));
        if let Some((replicas, threshold)) = p.fallback.as_ref().filter(|_| !p.jobs) {
            let mut f = Map::new();
            put(&mut f, "failure_threshold", threshold.map(|t| json!(t)));
            f.insert(
                "replicas".into(),
                json!(1 + replicas.index(max as usize) as u32),
            );
            pool.insert("fallback".into(), Value::Object(f));
        }
        if let Some(j) = p.jobs.then_some(&p.job) {
            let mut jobs = Map::new();
            jobs.insert("query".into(), json!(j.query));
            jobs.insert("server_address".into(), json!(j.server));
            put(&mut jobs, "target", j.target.map(|v| json!(v)));
            put(&mut jobs, "scaling_strategy", j.strategy.map(|v| json!(v)));
            put(
                &mut jobs,
                "successful_history",
                j.histories.0.map(|v| json!(v)),
            );
            put(&mut jobs, "failed_history", j.histories.1.map(|v| json!(v)));
            put(&mut jobs, "active_deadline", j.deadline.map(Dur::value));
            pool.insert("jobs".into(), Value::Object(jobs));
        }
        put(
            &mut pool,
            "capacity_type",
            p.capacity
                .map(|s| json!(if s { "spot" } else { "on-demand" })),
        );
        put(&mut pool, "scaling", scaling_value(&p.scaling));
        let mut haproxy = Map::new();
        put(&mut haproxy, "slots", p.slots_extra.map(|e| json!(max + e)));
        put(
            &mut haproxy,
            "timeout_connect",
            p.timeouts.0.map(Dur::value),
        );
        put(&mut haproxy, "timeout_client", p.timeouts.1.map(Dur::value));
        put(&mut haproxy, "timeout_queue", p.timeouts.2.map(Dur::value));
        put(
            &mut haproxy,
            "timeout_server",
            p.timeout_server.map(Dur::value),
        );
        if !haproxy.is_empty() {
            pool.insert("haproxy".into(), Value::Object(haproxy));
        }
        let w = &p.worker;
        let mut worker = Map::new();
        // A pool without its own image needs one from defaults.
        let image = w.image.or(if d.image.is_none() {
            Some(IMAGES[0])
        } else {
            None
        });
        put(&mut worker, "image", image.map(|i| json!(i)));
        put(&mut worker, "args", w.args.as_ref().map(|a| json!(a)));
        put(&mut worker, "port", w.port.map(|v| json!(v)));
        if let Some((port, path)) = w.metrics {
            worker.insert("metrics_port".into(), json!(port));
            put(&mut worker, "metrics_path", path.map(|v| json!(v)));
        }
        put(&mut worker, "privileged", w.privileged.map(|v| json!(v)));
        if !worker.is_empty() {
            pool.insert("worker".into(), Value::Object(worker));
        }
        put(&mut pool, "drain", p.drain.map(Dur::value));
        let timeout_server = p
            .timeout_server
            .or(d.timeout_server)
            .map_or(7200, |t| t.seconds);
        let drain = p.drain.or(d.drain).map_or(900, |t| t.seconds);
        if let Some(extra) = p.grace_extra {
            pool.insert(
                "grace_period".into(),
                json!(format!("{}s", timeout_server + drain + extra)),
            );
        } else if !p.jobs {
            worst_service = worst_service.max(timeout_server + drain);
        }
        put(&mut pool, "alerts", alerts_value(&p.alerts));
        pools.push(Value::Object(pool));
    }
    if let Some(extra) = d.grace_extra {
        defaults.insert("grace_period".into(), json!(worst_service.max(1) + extra));
    }
    let mut spec = Map::new();
    spec.insert("cluster".into(), Value::Object(cluster));
    if !defaults.is_empty() {
        spec.insert("defaults".into(), Value::Object(defaults));
    }
    spec.insert("pools".into(), Value::Array(pools));
    Value::Object(spec)
}

/// `name`, or a variant of it no other object of the same kind has.
fn unique(name: &str, max: usize, taken: &mut BTreeSet<String>) -> String {
    let mut candidate = name.to_string();
    let mut n = 0;
    while taken.contains(&candidate) {
        n += 1;
        let suffix = n.to_string();
        let stem: String = name.chars().take(max - suffix.len()).collect();
        candidate = format!("{stem}{suffix}");
    }
    taken.insert(candidate.clone());
    candidate
}

/// The first type sizes the pod; each other one must fit its declared count.
fn instance_types(p: &PoolDraw, arch: Arch) -> Vec<Value> {
    let candidates = types_of(arch);
    let (first_i, first_n) = p.types[0];
    let first = candidates[first_i.index(candidates.len())];
    let ppn = 1 + first_n.index(most_pods(first) as usize) as u32;
    let pod = first.pod_size(ppn);
    let mut out = vec![json!({"type": first.name, "pods_per_node": ppn})];
    let mut used = BTreeSet::from([first.name.clone()]);
    for (ti, ni) in &p.types[1..] {
        let fitting: Vec<&InstanceType> = candidates
            .iter()
            .copied()
            .filter(|t| !used.contains(&t.name) && t.pods_that_fit(pod) >= 1)
            .collect();
        if fitting.is_empty() {
            break;
        }
        let t = fitting[ti.index(fitting.len())];
        let room = t.pods_that_fit(pod).min(u64::from(t.max_pods));
        let n = 1 + ni.index(room as usize) as u32;
        used.insert(t.name.clone());
        out.push(json!({"type": t.name, "pods_per_node": n}));
    }
    out
}

fn specs_draw(max_clusters: usize, max_pools: usize) -> impl Strategy<Value = Vec<ClusterDraw>> {
    prop::collection::vec(cluster_draw(max_pools), 1..=max_clusters)
}

fn build_specs(draws: &[ClusterDraw]) -> Vec<Value> {
    let mut taken = BTreeSet::new();
    draws.iter().map(|c| build_spec(c, &mut taken)).collect()
}

/// Writes one spec per cluster into a fresh `specs/`, returns the directory.
fn write_specs(name: &str, specs: &[Value]) -> std::path::PathBuf {
    let dir = scratch(name);
    for spec in specs {
        let cluster = spec["cluster"]["name"].as_str().unwrap();
        std::fs::write(
            dir.join("specs").join(format!("{cluster}.yaml")),
            emit(spec).text,
        )
        .unwrap();
    }
    dir
}

// ---------------------------------------------------------------------------
// Reading the outputs back.

fn schemas() -> &'static BTreeMap<(String, String), jsonschema::Validator> {
    static SCHEMAS: OnceLock<BTreeMap<(String, String), jsonschema::Validator>> = OnceLock::new();
    SCHEMAS.get_or_init(common::schemas)
}

fn dashboard_schema() -> &'static jsonschema::Validator {
    static SCHEMA: OnceLock<jsonschema::Validator> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let path = common::schema_dir().join("grafana-dashboard.jsonschema.json");
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        jsonschema::validator_for(&schema).expect("dashboard schema compiles")
    })
}

fn yaml_docs(set: &poolc::fileset::FileSet, path: &str) -> Vec<Value> {
    set.get(path).map(documents).unwrap_or_default()
}

/// `2h`, `15m`, `90s` as HAProxy and poolc write them.
fn seconds(text: &str) -> u64 {
    let (n, unit) = text.split_at(text.len() - 1);
    let n: u64 = n.parse().unwrap_or_else(|_| panic!("duration {text}"));
    match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => panic!("duration {text}"),
    }
}

fn quantity_gib(text: &str) -> u64 {
    text.strip_suffix("Gi")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("memory quantity {text}"))
}

fn quantity_cpu(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.parse().unwrap_or_else(|_| panic!("cpu quantity {s}")),
        Value::Number(n) => n.as_u64().unwrap(),
        other => panic!("cpu quantity {other}"),
    }
}

/// `backend bk_x` → its indented lines.
fn haproxy_backends(cfg: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in cfg.lines() {
        if !line.starts_with(' ') {
            current = line.strip_prefix("backend ").map(str::to_string);
            if let Some(b) = &current {
                out.insert(b.clone(), Vec::new());
            }
        } else if let Some(b) = &current {
            out.get_mut(b).unwrap().push(line.trim().to_string());
        }
    }
    out
}

fn first_word_after<'a>(lines: &'a [String], prefix: &str) -> Option<&'a str> {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|rest| rest.split_whitespace().next())
}

fn is_dns_label(s: &str, max: usize) -> bool {
    poolc::model::check_dns_label(s, max).is_ok() || s.chars().all(|c| c.is_ascii_digit())
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|part| {
            !part.is_empty()
                && part.len() <= 63
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

fn is_label_value(s: &str) -> bool {
    s.is_empty()
        || (s.len() <= 63
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

/// What the API server checks beyond the CRD schemas: object names and labels.
fn check_names(path: &str, doc: &Value) -> Result<(), TestCaseError> {
    let kind = doc["kind"].as_str().unwrap_or_default();
    let name = doc["metadata"]["name"].as_str().unwrap_or_default();
    prop_assert!(is_dns_subdomain(name), "{path}: {kind} name {name:?}");
    if kind == "NodePool" {
        prop_assert!(
            is_label_value(name),
            "{path}: NodePool name {name:?} cannot be the value of the nodes' karpenter.sh/nodepool label"
        );
    }
    if kind == "Service" {
        prop_assert!(
            is_dns_label(name, 63),
            "{path}: Service name {name:?} is not a DNS-1035 label of at most 63 characters"
        );
    }
    let mut labels = Vec::new();
    collect_labels(doc, &mut labels);
    for (key, value) in labels {
        prop_assert!(
            is_label_value(&value),
            "{path}: {kind} {name}: label {key}={value:?} is not a valid label value"
        );
    }
    Ok(())
}

/// Kubernetes labels: `metadata.labels` and `matchLabels`, at any depth
/// (pod templates included), but not the Prometheus labels of rules.
fn collect_labels(v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(map) => {
            let meta = map.get("metadata").and_then(|m| m.get("labels"));
            for labels in [meta, map.get("matchLabels")].into_iter().flatten() {
                for (k, v) in labels.as_object().into_iter().flatten() {
                    out.push((k.clone(), v.as_str().unwrap_or_default().to_string()));
                }
            }
            map.values().for_each(|child| collect_labels(child, out));
        }
        Value::Array(items) => items.iter().for_each(|i| collect_labels(i, out)),
        _ => {}
    }
}

// ---------------------------------------------------------------------------
// Property 1: valid specs.

fn check_valid(draws: Vec<ClusterDraw>) -> Result<(), TestCaseError> {
    let specs = build_specs(&draws);
    let dir = write_specs("prop-valid", &specs);
    let specs_dir = dir.join("specs");
    let set = match pipeline::compile(&specs_dir) {
        Ok(set) => set,
        Err(e) => {
            let text = specs
                .iter()
                .map(|s| emit(s).text)
                .collect::<Vec<_>>()
                .join("---\n");
            return Err(TestCaseError::fail(format!(
                "a valid spec did not compile:\n{e}\n\nspecs:\n{text}"
            )));
        }
    };

    // The PromQL gate: nothing at error level, checked directly too.
    let model = pipeline::load_model(&specs_dir).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let findings = poolc::lint::lint_fileset(&model, &set);
    let errors: Vec<String> = findings
        .iter()
        .filter(|d| d.severity == poolc::diagnostic::Severity::Error)
        .map(|d| format!("{d:?}"))
        .collect();
    prop_assert!(errors.is_empty(), "lint errors: {errors:#?}");

    // The same input gives the same bytes.
    let again = pipeline::compile(&specs_dir).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert!(again == set, "a second compile differs");

    for spec in &specs {
        check_cluster(&set, spec)?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn check_cluster(set: &poolc::fileset::FileSet, spec: &Value) -> Result<(), TestCaseError> {
    let cluster = spec["cluster"]["name"].as_str().unwrap();
    let app = spec["cluster"]["app"].as_str().unwrap_or("buildkitd");
    let p = |f: &str| format!("{cluster}/{f}");

    // Every manifest against its schema, every name against the API rules.
    let mut validated = 0;
    for (path, contents) in set.iter() {
        if !path.starts_with(&format!("{cluster}/")) {
            continue;
        }
        if path.ends_with(".json") {
            let doc: Value = serde_json::from_str(contents)
                .map_err(|e| TestCaseError::fail(format!("{path}: {e}")))?;
            let errors: Vec<String> = dashboard_schema()
                .iter_errors(&doc)
                .map(|e| format!("{e} at {}", e.instance_path()))
                .collect();
            prop_assert!(errors.is_empty(), "{path}: {errors:#?}");
            continue;
        }
        if !path.ends_with(".yaml")
            || path.ends_with("kustomization.yaml")
            || path.ends_with(poolc::render::catalog::FILE)
            || path.contains("/prometheus/")
        {
            continue;
        }
        for doc in documents(contents) {
            if let Some(errors) = common::validate(schemas(), &doc) {
                prop_assert!(
                    errors.is_empty(),
                    "{path}: {} {}: {errors:#?}",
                    doc["kind"],
                    doc["metadata"]["name"]
                );
                validated += 1;
            }
            check_names(path, &doc)?;
        }
    }
    prop_assert!(validated > 0, "{cluster}: no manifest was validated");

    let cfg = set.get(&p("haproxy.cfg")).unwrap_or_default().to_string();
    let backends = haproxy_backends(&cfg);
    let keda = yaml_docs(set, &p("keda.yaml"));
    let workers = yaml_docs(set, &p("workers.yaml"));
    let nodepools: Vec<Value> = yaml_docs(set, &p("karpenter.yaml"))
        .into_iter()
        .filter(|d| d["kind"] == "NodePool")
        .collect();
    let pools = spec["pools"].as_array().unwrap();
    prop_assert_eq!(
        nodepools.len(),
        pools
            .iter()
            .map(|p| p["instance_types"].as_array().unwrap().len())
            .sum::<usize>(),
        "one NodePool per pool and instance type"
    );
    let service_pools = pools.iter().filter(|p| p.get("port").is_some()).count();
    prop_assert_eq!(
        backends.len(),
        service_pools,
        "one backend per service pool"
    );

    for pool in pools {
        let name = pool["name"].as_str().unwrap();
        let max = pool["max"].as_u64().unwrap();
        let workload = format!("{app}-{name}");
        let service = pool.get("port").is_some();

        // The KEDA object: max as given, fallback within it.
        let kind = if service { "ScaledObject" } else { "ScaledJob" };
        let object = keda
            .iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == workload.as_str())
            .ok_or_else(|| TestCaseError::fail(format!("no {kind} {workload}")))?;
        let max_out = object["spec"]["maxReplicaCount"].as_u64();
        prop_assert_eq!(max_out, Some(max), "{}: maxReplicaCount", workload);
        if let Some(fallback) = object["spec"].get("fallback") {
            let replicas = fallback["replicas"].as_u64().unwrap();
            prop_assert!(
                (1..=max).contains(&replicas),
                "{workload}: fallback replicas {replicas} outside 1..={max}"
            );
            prop_assert_eq!(
                Some(replicas),
                pool["fallback"]["replicas"].as_u64(),
                "{}: fallback replicas",
                workload
            );
        } else {
            prop_assert!(
                pool.get("fallback").is_none(),
                "{workload}: fallback dropped"
            );
        }

        // Pod resources: from the Deployment (service) or the Job template.
        let pod_spec = if service {
            let d = workers
                .iter()
                .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == workload.as_str())
                .ok_or_else(|| TestCaseError::fail(format!("no Deployment {workload}")))?;
            d["spec"]["template"]["spec"].clone()
        } else {
            object["spec"]["jobTargetRef"]["template"]["spec"].clone()
        };
        let limits = &pod_spec["containers"][0]["resources"]["limits"];
        let requests = &pod_spec["containers"][0]["resources"]["requests"];
        prop_assert_eq!(limits, requests, "{}: not Guaranteed", workload);
        let pod_cpu = quantity_cpu(&limits["cpu"]);
        let pod_mem = quantity_gib(limits["memory"].as_str().unwrap());
        prop_assert!(pod_cpu >= 1 && pod_mem >= 1, "{workload}: empty pod");

        // Every NodePool of the pool holds max pods of that size on its own.
        let mine: Vec<&Value> = nodepools
            .iter()
            .filter(|n| n["metadata"]["labels"]["poolc.dev/pool"] == name)
            .collect();
        prop_assert_eq!(
            mine.len(),
            pool["instance_types"].as_array().unwrap().len(),
            "{}: NodePools",
            workload
        );
        for np in &mine {
            let cpu = quantity_cpu(&np["spec"]["limits"]["cpu"]);
            let mem = quantity_gib(np["spec"]["limits"]["memory"].as_str().unwrap());
            prop_assert!(
                cpu >= max * pod_cpu && mem >= max * pod_mem,
                "{}: limits {cpu} vCPU / {mem} GiB below {max} pods of {pod_cpu} vCPU / {pod_mem} GiB",
                np["metadata"]["name"]
            );
        }

        if !service {
            continue;
        }
        // The LB: slots cover max; the grace period outlasts a build's drain.
        let backend = backends
            .get(&format!("bk_{name}"))
            .ok_or_else(|| TestCaseError::fail(format!("no backend bk_{name}")))?;
        let slots: u64 = first_word_after(backend, "server-template w ")
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| TestCaseError::fail(format!("bk_{name}: no server-template")))?;
        prop_assert!(slots >= max, "bk_{name}: {slots} slots < max {max}");
        let timeout_server = seconds(
            first_word_after(backend, "timeout server ")
                .ok_or_else(|| TestCaseError::fail(format!("bk_{name}: no timeout server")))?,
        );
        let grace = pod_spec["terminationGracePeriodSeconds"].as_u64().unwrap();
        let pre_stop = pod_spec["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
            .as_array()
            .and_then(|c| c.last())
            .and_then(Value::as_str)
            .unwrap_or_default();
        // The drain waits for the last build until just before the grace
        // period ends, and the grace period outlasts a build.
        let bound: u64 = pre_stop
            .split("POOLC_DRAIN_SECONDS:-")
            .nth(1)
            .and_then(|rest| rest.split('}').next())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| TestCaseError::fail(format!("{workload}: no drain in {pre_stop:?}")))?;
        prop_assert!(
            bound < grace && bound + 60 >= grace,
            "{workload}: the drain gives up after {bound}s of a {grace}s grace period"
        );
        prop_assert!(
            grace > timeout_server,
            "{workload}: grace {grace}s <= timeout server {timeout_server}s"
        );
    }
    Ok(())
}

#[test]
fn valid_specs_compile_validate_lint_clean_and_keep_their_invariants() {
    run(40, || specs_draw(3, 6), check_valid);
}

// ---------------------------------------------------------------------------
// Property 2: broken specs.

#[derive(Debug, Clone)]
enum Mutation {
    /// One of the numeric rules broken, in pool `Index`.
    Number(Index, u8, u32),
    /// A scalar replaced by a value of another type.
    WrongType(Index, u8),
    /// A key no spec type has, in some mapping.
    UnknownField(Index, String),
    /// A name field set to something no DNS label is.
    HostileName(Index, String),
    /// The file cut short before `pools:`.
    Truncate(Index),
}

fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a\nserver x 1.2.3.4".to_string()),
        Just("pool\"quoted\"".to_string()),
        Just("{{ .Values }}".to_string()),
        Just("../../etc".to_string()),
        Just("..".to_string()),
        Just("bk_a\"} or vector(1) #".to_string()),
        Just("a".repeat(300)),
        Just(String::new()),
        Just("Uppercase".to_string()),
        Just("9starts-with-digit".to_string()),
        Just("ends-with-".to_string()),
        Just("ünïcødé".to_string()),
        Just("a b".to_string()),
        "[a-z]{1,10}[^a-z0-9-][a-z]{0,10}",
        "[a-z]{64,120}",
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), 0..20u8, any::<u32>()).prop_map(|(i, k, n)| Mutation::Number(i, k, n)),
        3 => (any::<Index>(), any::<u8>()).prop_map(|(i, k)| Mutation::WrongType(i, k)),
        2 => (any::<Index>(), "[a-z][a-z_]{2,12}").prop_map(|(i, k)| Mutation::UnknownField(i, format!("x_{k}"))),
        3 => (any::<Index>(), hostile()).prop_map(|(i, s)| Mutation::HostileName(i, s)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
    ]
}

/// The effective (timeout_server, drain) of a pool, as the Model resolves them.
fn timeout_and_drain(spec: &Value, pool: &str) -> (u64, u64) {
    let dur = |v: Option<&Value>| -> Option<u64> {
        v.map(|v| match v {
            Value::Number(n) => n.as_u64().unwrap(),
            Value::String(s) => poolc::spec::Seconds::parse(s).unwrap().0,
            other => panic!("duration {other}"),
        })
    };
    let ts = dur(get(spec, &format!("{pool}.haproxy.timeout_server")))
        .or(dur(get(spec, "defaults.haproxy.timeout_server")))
        .unwrap_or(7200);
    let drain = dur(get(spec, &format!("{pool}.drain")))
        .or(dur(get(spec, "defaults.drain")))
        .unwrap_or(900);
    (ts, drain)
}

/// Applies `m`; returns the text and the lines one of the errors must name
/// (None: any line within the file).
fn apply(spec: &Value, m: &Mutation) -> (String, Option<(usize, usize)>) {
    let mut spec = spec.clone();
    let pools = spec["pools"].as_array().unwrap().len();
    let target: String;
    // A mapping put where a scalar was starts on the line after its key.
    let mut slack = 0;
    match m {
        Mutation::Number(i, kind, n) => {
            let at = format!("pools.{}", i.index(pools));
            let pool = get(&spec, &at).unwrap().clone();
            let max = pool["max"].as_u64().unwrap() as u32;
            let service = pool.get("port").is_some();
            let k = n % 1000;
            let (path, value) = match kind {
                0 => (format!("{at}.max"), json!(0)),
                1 => (format!("{at}.max"), json!(10_001 + n % 1_000_000)),
                2 => (format!("{at}.min"), json!(max + 1 + k)),
                3 => (format!("{at}.fallback.replicas"), json!(max + 1 + k)),
                4 => (format!("{at}.fallback.replicas"), json!(0)),
                5 => (format!("{at}.instance_types.0.pods_per_node"), json!(0)),
                6 => {
                    let t = pool["instance_types"][0]["type"].as_str().unwrap();
                    let most = builtin()[t].max_pods;
                    (
                        format!("{at}.instance_types.0.pods_per_node"),
                        json!(most + 1 + k),
                    )
                }
                7 if service => (format!("{at}.port"), json!(n % 1024)),
                7 => (format!("{at}.port"), json!(2000 + n % 1000)),
                8 if service => (format!("{at}.haproxy.slots"), json!(max - 1 - (k % max))),
                8 => (format!("{at}.min"), json!(-1 - i64::from(k))),
                9 if service => {
                    let (ts, drain) = timeout_and_drain(&spec, &at);
                    let grace = (ts + drain).saturating_sub(u64::from(k) % (ts + drain + 1));
                    (format!("{at}.grace_period"), json!(grace))
                }
                9 => (format!("{at}.jobs.target"), json!(0)),
                10 => (
                    format!("{at}.scaling.scale_down_percent"),
                    json!(if k % 2 == 0 { 0 } else { 101 + k }),
                ),
                11 => (format!("{at}.scaling.target_sessions"), json!(0)),
                12 => (format!("{at}.scaling.polling_interval"), json!(0)),
                13 => (format!("{at}.alerts.queue_backlog"), json!(0)),
                14 => (
                    "cluster.node_class.root_volume_gib".to_string(),
                    json!(if k % 2 == 0 { k % 20 } else { 16_385 + k }),
                ),
                15 => (format!("{at}.drain"), json!(format!("{}d", 366 + k))),
                16 => (
                    format!("{at}.max"),
                    json!(u64::from(u32::MAX) + 1 + u64::from(k)),
                ),
                17 => ("cluster.lb.replicas".to_string(), json!(0)),
                18 => ("cluster.scrape_interval".to_string(), json!(0)),
                _ => (format!("{at}.fallback.failure_threshold"), json!(0)),
            };
            if path.ends_with("fallback.failure_threshold")
                && get(&spec, &format!("{at}.fallback")).is_none()
            {
                set(&mut spec, &format!("{at}.fallback.replicas"), json!(1));
            }
            set(&mut spec, &path, value);
            target = path;
        }
        Mutation::WrongType(i, k) => {
            let mut leaves = Vec::new();
            scalar_leaves(&spec, "", &mut leaves);
            let path = leaves[i.index(leaves.len())].clone();
            let old = get(&spec, &path).unwrap().clone();
            let value = match (&old, k % 3) {
                (Value::String(_), 0) => json!(["a", "b"]),
                (Value::String(_), _) => json!({"nested": 1}),
                (_, 0) => json!("not-a-number"),
                (_, 1) => json!([1, 2]),
                _ => json!({"nested": true}),
            };
            slack = usize::from(value.is_object());
            set(&mut spec, &path, value);
            target = path;
        }
        Mutation::UnknownField(i, key) => {
            let mut maps = Vec::new();
            strict_maps(&spec, "", &mut maps);
            let path = maps[i.index(maps.len())].clone();
            let field = join(&path, key);
            set(&mut spec, &field, json!(1));
            target = field;
        }
        Mutation::HostileName(i, value) => {
            let fields = [
                "cluster.name".to_string(),
                "cluster.environment".to_string(),
                "cluster.namespace".to_string(),
                "cluster.app".to_string(),
                "cluster.monitoring.namespace".to_string(),
                format!("pools.{}.name", i.index(pools)),
                format!("pools.{}.name", pools - 1),
            ];
            let path = fields[i.index(fields.len())].clone();
            set(&mut spec, &path, json!(value));
            target = path;
        }
        Mutation::Truncate(i) => {
            let text = emit(&spec).text;
            let end = text.find("\npools:").unwrap_or(text.len());
            let mut cut = i.index(end + 1);
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            return (text[..cut].to_string(), None);
        }
    }
    let e = emit(&spec);
    let line = e.lines[&target];
    (e.text, Some((line, line + slack)))
}

/// Scalar fields whose type is fixed (not the pass-through Kubernetes objects).
fn scalar_leaves(v: &Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                scalar_leaves(child, &join(path, k), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                scalar_leaves(child, &join(path, &i.to_string()), out);
            }
        }
        _ => out.push(path.to_string()),
    }
}

/// Mappings with a fixed set of keys (not the free-form label maps).
fn strict_maps(v: &Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            let free = ["alert_labels", "labels", "keep"]
                .iter()
                .any(|k| path.ends_with(k));
            if !free {
                out.push(path.to_string());
            }
            for (k, child) in map {
                strict_maps(child, &join(path, k), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                strict_maps(child, &join(path, &i.to_string()), out);
            }
        }
        _ => {}
    }
}

fn check_broken((draw, m): (ClusterDraw, Mutation)) -> Result<(), TestCaseError> {
    let spec = build_specs(std::slice::from_ref(&draw)).remove(0);
    let (text, line) = apply(&spec, &m);
    let dir = scratch("prop-broken");
    std::fs::write(dir.join("specs/broken.yaml"), &text).unwrap();
    let result = std::panic::catch_unwind(|| pipeline::compile(&dir.join("specs")));
    let _ = std::fs::remove_dir_all(&dir);
    let result = result.map_err(|_| TestCaseError::fail(format!("panic on:\n{text}")))?;
    let failure = match result {
        Ok(_) => return Err(TestCaseError::fail(format!("accepted:\n{text}"))),
        Err(f) => f,
    };
    prop_assert_eq!(failure.exit_code(), 2, "{}\n\n{}", failure, text);
    let Failure::Spec(errors) = &failure else {
        return Err(TestCaseError::fail(format!("not a spec error: {failure}")));
    };
    let lines = text.lines().count().max(1);
    let shown = failure.to_string();
    for e in errors {
        prop_assert!(e.path.ends_with("specs/broken.yaml"), "path {}", e.path);
        prop_assert!(
            (1..=lines + 1).contains(&e.line),
            "line {} outside the {lines}-line file: {e}",
            e.line
        );
        let at = format!("specs/broken.yaml:{}:{}: error: ", e.line, e.col);
        prop_assert!(shown.contains(&at), "no `{at}` in\n{shown}");
        prop_assert!(!e.help.is_empty(), "no help in {e}");
    }
    if let Some((lo, hi)) = line {
        prop_assert!(
            errors.iter().any(|e| (lo..=hi).contains(&e.line)),
            "{m:?}: no error at line {lo}..={hi}:\n{shown}\n\n{text}"
        );
    }
    Ok(())
}

#[test]
fn broken_specs_fail_with_file_line_and_never_panic() {
    run(160, || (cluster_draw(3), mutation()), check_broken);
}

/// The binary, not only the library: exit 2, a file:line, no panic, nothing written.
#[test]
fn the_binary_exits_2_on_broken_specs() {
    run(
        6,
        || (cluster_draw(2), mutation()),
        |(draw, m)| {
            let spec = build_specs(std::slice::from_ref(&draw)).remove(0);
            let (text, _) = apply(&spec, &m);
            let dir = scratch("prop-broken-bin");
            std::fs::write(dir.join("specs/broken.yaml"), &text).unwrap();
            let out = poolc(&dir, &["generate"]);
            let err = stderr(&out);
            prop_assert_eq!(out.status.code(), Some(2), "{}", err);
            prop_assert!(!err.contains("panicked"), "{}", err);
            prop_assert!(
                regex::Regex::new(r"specs/broken\.yaml:\d+:\d+: error: ")
                    .unwrap()
                    .is_match(&err),
                "no file:line:col in {err}"
            );
            prop_assert!(!dir.join("generated").exists(), "something was written");
            let _ = std::fs::remove_dir_all(&dir);
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------
// Property 3: no accepted string changes the structure of any output.

/// A spec with a service and a jobs pool and every free-text field set, so
/// each field the strings go into reaches the outputs.
fn injection_base() -> Value {
    json!({
        "cluster": {
            "name": "demo",
            "environment": "dev",
            "namespace": "ci",
            "app": "buildkitd",
            "exporters": {"keda": "2.16", "haproxy": "3.1", "kube-state-metrics": "2.13", "karpenter": "1.14"},
            "alert_labels": {"team": "platform"},
            "runbook_url": "https://runbooks.example.com/poolc",
            "metrics": [{"name": "buildkite_queues_scheduled_jobs_count", "type": "gauge", "labels": ["queue"], "scraped_by": {"servicemonitor": "ci/buildkite-agent-metrics"}}],
            "lb": {"image": "haproxy:3.1-alpine"},
            "node_class": {"role": "KarpenterNodeRole-demo", "discovery_tag": "demo"},
            "monitoring": {
                "namespace": "monitoring",
                "labels": {"release": "kube-prometheus-stack"},
                "keda_namespace": "keda",
                "external_labels": ["cluster", "env"],
            },
        },
        "pools": [
            {
                "name": "amd64",
                "arch": "amd64",
                "port": 3234,
                "worker": {"image": "moby/buildkit:v0.29.0", "args": ["--debug"], "metrics_port": 9090, "metrics_path": "/metrics"},
                "instance_types": [{"type": "m6id.24xlarge", "pods_per_node": 2}],
                "min": 2,
                "max": 8,
                "fallback": {"replicas": 4},
            },
            {
                "name": "agents",
                "mode": "jobs",
                "arch": "amd64",
                "worker": {"image": "buildkite/agent:3"},
                "instance_types": [{"type": "c6id.4xlarge", "pods_per_node": 2}],
                "min": 0,
                "max": 10,
                "jobs": {
                    "query": "sum(buildkite_queues_scheduled_jobs_count{queue=\"default\"})",
                    "server_address": "http://prometheus.monitoring.svc:9090",
                },
            },
        ],
    })
}

/// Where the strings go: names, namespaces, label values and the other text
/// that reaches object fields, HAProxy, PromQL and paths.
const INJECTED_FIELDS: &[&str] = &[
    "cluster.name",
    "cluster.environment",
    "cluster.namespace",
    "cluster.app",
    "pools.0.name",
    "pools.1.name",
    "cluster.alert_labels.team",
    "cluster.runbook_url",
    "cluster.monitoring.labels.release",
    "cluster.monitoring.namespace",
    "cluster.monitoring.keda_namespace",
    "cluster.monitoring.external_labels.1",
    "cluster.node_class.role",
    "cluster.node_class.discovery_tag",
    "cluster.lb.image",
    "pools.0.worker.image",
    "pools.0.worker.metrics_path",
    "pools.0.worker.args.0",
    "pools.1.jobs.server_address",
];

fn injected() -> impl Strategy<Value = String> {
    let pieces = prop::collection::vec(
        prop_oneof![
            select(
                &[
                    "\n", "\r", "\"", "'", "{", "}", "{{", "}}", "..", "/", "\\", " ", "#", ": ",
                    "- ", "$", "`", ",", "=~", "\"}", "é", "\u{202e}", "\u{0}", "\t", "*", "&",
                    "|", ">", "[", "]", "%", ";", "=", "\u{85}", "\u{2028}",
                ][..]
            )
            .prop_map(str::to_string),
            "[a-z0-9]{1,4}",
        ],
        1..6,
    )
    .prop_map(|p| p.concat());
    prop_oneof![
        3 => "[a-z][a-z0-9-]{0,20}",
        2 => "[a-z0-9]([a-z0-9._-]{0,12}[a-z0-9])?",
        3 => pieces,
        2 => "\\PC{0,24}",
        1 => ".{0,24}",
        1 => Just("a".repeat(300)),
        1 => select(&["", "123", "0x1F", "1e3", "true", "null", "~", "yes", "-", "a-", "ok.", "https://x/{{ $labels.pool }}"][..]).prop_map(str::to_string),
    ]
}

/// The structure of a compile's outputs: paths with the cluster directory
/// abstracted; per file, the shape of each YAML/JSON document (keys and
/// value types, and per PromQL string its selectors and matcher counts,
/// per rule text its template actions), or per haproxy.cfg line its
/// indentation, keyword and word count.
fn structure(set: &poolc::fileset::FileSet, cluster: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (path, contents) in set.iter() {
        let rel = path
            .strip_prefix(&format!("{cluster}/"))
            .map(|rest| format!("<cluster>/{rest}"))
            .unwrap_or_else(|| path.to_string());
        let templated = path.contains("prometheus");
        let shape = if path.ends_with(".cfg") {
            contents
                .lines()
                .map(|line| {
                    let trimmed = line.trim_start();
                    let indent = line.len() - trimmed.len();
                    if trimmed.starts_with('#') {
                        format!("{indent} #")
                    } else {
                        let words: Vec<&str> = trimmed.split_whitespace().collect();
                        format!("{indent} {} {}", words.first().unwrap_or(&""), words.len())
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
        } else if path.ends_with(".json") {
            match serde_json::from_str::<Value>(contents) {
                Ok(doc) => shape(&doc, "", templated),
                Err(e) => format!("unparsable JSON: {e}"),
            }
        } else {
            match serde_saphyr::from_multiple::<Value>(contents) {
                Ok(docs) => docs
                    .iter()
                    .map(|d| shape(d, "", templated))
                    .collect::<Vec<_>>()
                    .join("\n---\n"),
                Err(e) => format!("unparsable YAML: {e}"),
            }
        };
        out.insert(rel, shape);
    }
    out
}

fn shape(v: &Value, key: &str, templated: bool) -> String {
    match v {
        Value::Object(map) => {
            let fields: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}: {}", shape(v, k, templated)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(|i| shape(i, key, templated)).collect();
            format!("[{}]", items.join(", "))
        }
        Value::String(s) => {
            let mut out = "str".to_string();
            if matches!(
                key,
                "expr" | "query" | "valueLocation" | "series" | "definition"
            ) {
                out.push_str(&promql_shape(s));
            }
            if templated {
                out.push_str(&format!(" {}{{{{", s.matches("{{").count()));
            }
            out
        }
        Value::Number(_) => "num".to_string(),
        Value::Bool(_) => "bool".to_string(),
        Value::Null => "null".to_string(),
    }
}

fn promql_shape(text: &str) -> String {
    // Grafana's `label_values(<selector>, <label>)` wraps a selector.
    let text = text
        .strip_prefix("label_values(")
        .and_then(|rest| rest.rsplit_once(','))
        .map_or(text, |(selector, _)| selector);
    match poolc::promql::parse_dashboard(text) {
        Ok(expr) => {
            let selectors: Vec<String> = poolc::promql::selectors(&expr)
                .iter()
                .map(|vs| {
                    format!(
                        "{}/{}",
                        poolc::promql::metric_name(vs).unwrap_or("?"),
                        vs.matchers.matchers.len()
                    )
                })
                .collect();
            format!(" promql({})", selectors.join(" "))
        }
        Err(_) => " not-promql".to_string(),
    }
}

fn compile_value(name: &str, spec: &Value) -> (String, Result<poolc::fileset::FileSet, Failure>) {
    let text = emit(spec).text;
    let dir = scratch(name);
    std::fs::write(dir.join("specs/demo.yaml"), &text).unwrap();
    let result = pipeline::compile(&dir.join("specs"));
    let _ = std::fs::remove_dir_all(&dir);
    (text, result)
}

fn check_injection(
    baseline: &BTreeMap<String, String>,
    (field, value): (&'static str, String),
) -> Result<(), TestCaseError> {
    let base = injection_base();
    let before = get(&base, field)
        .and_then(Value::as_str)
        .unwrap()
        .to_string();
    let mut spec = base;
    set(&mut spec, field, json!(value));
    let (text, result) = compile_value("prop-inject", &spec);
    let set = match result {
        Err(Failure::Spec(errors)) => {
            // Refused: with the file and a line of it.
            let lines = text.lines().count();
            for e in &errors {
                prop_assert!((1..=lines).contains(&e.line), "{e}");
            }
            return Ok(());
        }
        Err(other) => {
            return Err(TestCaseError::fail(format!(
                "{field} = {value:?} was accepted by validation but failed later:\n{other}"
            )))
        }
        Ok(set) => set,
    };
    let cluster = spec["cluster"]["name"].as_str().unwrap();
    for (path, _) in set.iter() {
        let p = Path::new(path);
        prop_assert!(
            !path.contains('\\')
                && p.components()
                    .all(|c| matches!(c, std::path::Component::Normal(_))),
            "{field} = {value:?}: output path {path:?} leaves generated/"
        );
    }
    let after = structure(&set, cluster);
    let before_keys: Vec<&String> = baseline.keys().collect();
    let after_keys: Vec<&String> = after.keys().collect();
    prop_assert_eq!(
        &before_keys,
        &after_keys,
        "{} = {:?}: other files",
        field,
        value
    );
    for (path, shape) in &after {
        let expected = &baseline[path];
        if shape != expected {
            let now: Vec<char> = shape.chars().collect();
            let was: Vec<char> = expected.chars().collect();
            let at = now
                .iter()
                .zip(&was)
                .position(|(a, b)| a != b)
                .unwrap_or(now.len().min(was.len()));
            let around = |text: &[char]| -> String {
                let from = at.saturating_sub(120).min(text.len());
                text[from..(at + 80).min(text.len())].iter().collect()
            };
            return Err(TestCaseError::fail(format!(
                "{field} = {value:?} (was {before:?}) changed the structure of {path}:\n  now: …{}…\n  was: …{}…",
                around(&now),
                around(&was),
            )));
        }
    }
    // And what is written still passes the API server's name and label rules.
    for (path, contents) in set.iter() {
        if path.ends_with(".yaml")
            && !path.contains("/prometheus/")
            && !path.ends_with("kustomization.yaml")
            && !path.ends_with(poolc::render::catalog::FILE)
        {
            for doc in documents(contents) {
                check_names(path, &doc)?;
            }
        }
    }
    Ok(())
}

#[test]
fn accepted_strings_never_change_the_structure_of_the_outputs() {
    let base = injection_base();
    let (_, result) = compile_value("prop-inject-base", &base);
    let set = result.unwrap_or_else(|e| panic!("the base spec: {e}"));
    let baseline = structure(&set, "demo");
    run(
        160,
        || (select(INJECTED_FIELDS), injected()),
        |case| check_injection(&baseline, case),
    );
}

// ---------------------------------------------------------------------------
// What the properties found, pinned as plain examples.

fn compile_text(name: &str, text: &str) -> Result<poolc::fileset::FileSet, Failure> {
    let dir = scratch(name);
    std::fs::write(dir.join("specs/demo.yaml"), text).unwrap();
    pipeline::compile(&dir.join("specs"))
}

fn spec_errors(name: &str, text: &str) -> Vec<poolc::spec::SpecError> {
    match compile_text(name, text) {
        Err(Failure::Spec(errors)) => errors,
        Err(other) => panic!("{name}: not a spec error: {other}"),
        Ok(_) => panic!("{name}: accepted"),
    }
}

/// The spec's line `n` (1-based).
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn a_cluster_of_jobs_pools_only_compiles_and_its_dashboard_reads_no_unrecorded_rule() {
    let start = VALID_SPEC.find("  - name: amd64").unwrap();
    let end = VALID_SPEC.find("  - name: agents").unwrap();
    let text = format!("{}{}", &VALID_SPEC[..start], &VALID_SPEC[end..]);
    let set = compile_text("jobs-only", &text).unwrap_or_else(|e| panic!("{e}"));
    let dashboard = set.get("demo/dashboards/pools.json").unwrap();
    assert!(
        !dashboard.contains("\"expr\": \"sum by (pool) (poolc:"),
        "{dashboard}"
    );
    assert!(dashboard.contains("Scaler errors"), "the other panels stay");
    // With a service pool, the recorded series are still charted.
    let full = compile_text("with-service", VALID_SPEC).unwrap();
    assert!(full
        .get("demo/dashboards/pools.json")
        .unwrap()
        .contains("poolc:pool_busy:sessions"));
}

#[test]
fn a_fallback_on_a_jobs_pool_is_an_error_at_the_fallback() {
    let text = VALID_SPEC.replacen(
        "    jobs:\n",
        "    fallback:\n      replicas: 2\n    jobs:\n",
        1,
    );
    let errors = spec_errors("jobs-fallback", &text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0]
        .message
        .contains("`fallback` is set on a jobs pool"));
    assert_eq!(errors[0].line, line_of(&text, "      replicas: 2"));
}

#[test]
fn monitoring_labels_must_be_kubernetes_labels() {
    for (label, bad) in [
        ("release: \"kube-prometheus-\"", "value"),
        ("release: \"a b\"", "value"),
        (&*format!("release: {}", "x".repeat(64)), "value"),
        ("\"-bad\": ok", "name"),
        ("\"example.com/\": ok", "name"),
    ] {
        let text = VALID_SPEC.replacen(
            "  metrics:\n",
            &format!("  monitoring:\n    labels:\n      {label}\n  metrics:\n"),
            1,
        );
        let errors = spec_errors("monitoring-labels", &text);
        assert_eq!(errors.len(), 1, "{label}: {errors:?}");
        assert!(
            errors[0]
                .message
                .contains(&format!("monitoring label {bad}")),
            "{label}: {}",
            errors[0]
        );
        assert_eq!(errors[0].line, line_of(&text, label), "{label}");
    }
    let good = VALID_SPEC.replacen(
        "  metrics:\n",
        "  monitoring:\n    labels:\n      release: kube-prometheus-stack\n      prometheus.io/team: ci_platform.v2\n  metrics:\n",
        1,
    );
    compile_text("monitoring-labels-ok", &good).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn names_derived_from_a_pool_stay_within_63_characters() {
    let app = "b".repeat(20);
    let pool = "a".repeat(40);
    let text = VALID_SPEC
        .replacen(
            "  namespace: ci\n",
            &format!("  namespace: ci\n  app: {app}\n"),
            1,
        )
        .replacen("  - name: amd64", &format!("  - name: {pool}"), 1);
    let errors = spec_errors("long-names", &text);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].message.contains("worker Service"),
        "{}",
        errors[0]
    );
    assert_eq!(errors[0].line, line_of(&text, &format!("name: {pool}")));
    assert!(errors[1].message.contains("NodePool"), "{}", errors[1]);
    assert_eq!(errors[1].line, line_of(&text, "type: m6id.24xlarge"));
    // Three characters shorter fits the Service; the NodePool needs twelve.
    let text = text.replacen(&pool, &"a".repeat(28), 1);
    compile_text("long-names-ok", &text).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn text_that_reaches_promql_or_templates_is_refused_at_its_line() {
    for (edit, message) in [
        (
            "  monitoring:\n    external_labels: [cluster, \"x=\\\"1\\\"} or vector(1) or y{z\"]\n",
            "is not a Prometheus label name",
        ),
        (
            "  monitoring:\n    external_labels: [cluster, \"\\n\"]\n",
            "is not a Prometheus label name",
        ),
        (
            "  monitoring:\n    keda_namespace: \"keda-\"\n",
            "KEDA namespace",
        ),
        (
            "  alert_labels:\n    team: \"{{ $labels.pool\"\n",
            "Prometheus would expand as a template",
        ),
        (
            "  runbook_url: \"https://wiki/{{ .x }}\"\n",
            "Prometheus would expand as a template",
        ),
    ] {
        let text = VALID_SPEC.replacen("  metrics:\n", &format!("{edit}  metrics:\n"), 1);
        let errors = spec_errors("refused-text", &text);
        assert_eq!(errors.len(), 1, "{edit}: {errors:?}");
        assert!(errors[0].message.contains(message), "{edit}: {}", errors[0]);
        let last = edit.trim_end().lines().last().unwrap();
        assert_eq!(errors[0].line, line_of(&text, last), "{edit}");
    }
    // Plain values still pass.
    let text = VALID_SPEC.replacen(
        "  metrics:\n",
        "  alert_labels:\n    team: \"ci } platform\"\n  runbook_url: https://wiki/{x}\n  monitoring:\n    keda_namespace: keda-system\n    external_labels: [cluster, region_1]\n  metrics:\n",
        1,
    );
    compile_text("plain-text", &text).unwrap_or_else(|e| panic!("{e}"));
}
