//! The generated rules on a real Prometheus, scraping a real HAProxy that
//! runs the generated config and a fake KEDA operator that serves KEDA's
//! exposition with its own `namespace` label.
//!
//! Prometheus's scrape configuration is the generated ServiceMonitors as
//! prometheus-operator renders them (`poolc::render::scrape`: job and target
//! labels, honor_labels, the keep-list), pointed at 127.0.0.1 instead of pod
//! IPs. It loads the generated rule file unchanged.
//!
//! To finish in well under two minutes the test compiles its own spec
//! (`LIVE_SPEC`, below): scrape and evaluation every second, `for:` of 5s on
//! the queue alert, a 20s KEDA error window. Everything else is as
//! `poolc generate` writes it for any spec.

mod common;
#[path = "support/live_haproxy.rs"]
mod live_haproxy;
#[path = "support/live_prometheus.rs"]
mod live_prometheus;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{documents, scratch};
use live_haproxy::{haproxy, local_config, wait_until, BuildClient, FakeWorker, Lb};
use live_prometheus::{prometheus, FakeKeda, Prometheus};
use poolc::render::scrape::{Endpoints, Target};
use serde_json::{json, Value};

/// A one-pool cluster with every time scaled to seconds. Test-only.
const LIVE_SPEC: &str = r#"cluster:
  name: live
  environment: test
  namespace: buildkit
  exporters:
    keda: "2.16"
    haproxy: "3.1"
    kube-state-metrics: "2.13"
    karpenter: "1.14"
  scrape_interval: 1s
pools:
  - name: amd64
    arch: amd64
    port: 3234
    worker:
      image: moby/buildkit:v0.29.0
    instance_types:
      - type: m6id.24xlarge
        pods_per_node: 2
    min: 1
    max: 2
    alerts:
      queue_backlog_for: 5s
      error_window: 20s
"#;

const BACKEND: &str = "bk_amd64";
const FRONTEND: &str = "ft_amd64";

struct Generated {
    haproxy_cfg: String,
    monitors: String,
    rules: String,
}

fn generate() -> Generated {
    let dir = scratch("prometheus-live");
    std::fs::write(dir.join("specs/live.yaml"), LIVE_SPEC).unwrap();
    let set = poolc::pipeline::compile(&dir.join("specs")).unwrap_or_else(|e| panic!("{e}"));
    let get = |name: &str| set.get(&format!("live/{name}")).unwrap().to_string();
    Generated {
        haproxy_cfg: get("haproxy.cfg"),
        monitors: get("servicemonitors.yaml"),
        rules: get("prometheus/rules.yaml"),
    }
}

/// One scrape job per endpoint of the generated ServiceMonitor of
/// `exporter`, for a pod serving at `address`, named as prometheus-operator
/// names it (`serviceMonitor/<namespace>/<name>/<endpoint>`).
fn scrape_jobs(
    monitors: &str,
    exporter: &str,
    namespace: &str,
    pod: &Endpoints,
    address: &str,
) -> Vec<Value> {
    let monitor = documents(monitors)
        .into_iter()
        .find(|d| d["metadata"]["labels"]["poolc.dev/exporter"] == exporter)
        .unwrap_or_else(|| panic!("no {exporter} ServiceMonitor"));
    let name = format!(
        "serviceMonitor/{}/{}",
        monitor["metadata"]["namespace"].as_str().unwrap(),
        monitor["metadata"]["name"].as_str().unwrap()
    );
    Target::from_monitor(&monitor, namespace, pod)
        .iter()
        .enumerate()
        .map(|(i, t)| t.scrape_config(&format!("{name}/{i}"), address))
        .collect()
}

fn keda_pod() -> Endpoints<'static> {
    Endpoints {
        service: "keda-operator",
        pod: "keda-operator-5b6f8d7c9-zx8qp",
        container: "keda-operator",
        address: "10.42.0.17:8080",
    }
}

fn config(jobs: Vec<Value>) -> String {
    serde_json::to_string(&json!({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["rules.yaml"],
        "scrape_configs": jobs,
    }))
    .unwrap()
}

/// Counts a KEDA scaler error every `every` until dropped: a sustained outage.
struct Outage(Arc<AtomicBool>, Option<std::thread::JoinHandle<()>>);

fn outage(keda: &Arc<FakeKeda>, every: Duration) -> Outage {
    let stop = Arc::new(AtomicBool::new(false));
    let (k, s) = (keda.clone(), stop.clone());
    let thread = std::thread::spawn(move || {
        while !s.load(Ordering::SeqCst) {
            k.scaler_error();
            std::thread::sleep(every);
        }
    });
    Outage(stop, Some(thread))
}

impl Drop for Outage {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
        if let Some(t) = self.1.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn queue_and_keda_alerts_fire_on_failure_and_stay_quiet_on_healthy_load() {
    let (Some(haproxy), Some(prometheus)) = (haproxy(), prometheus()) else {
        return;
    };
    let generated = generate();
    let local = local_config(&generated.haproxy_cfg, 1);
    let workers: Vec<FakeWorker> = local
        .server_ports(BACKEND)
        .into_iter()
        .map(FakeWorker::listen)
        .collect();
    let lb = Lb::start(&haproxy, local);
    let keda = Arc::new(FakeKeda::serve((2, 16), "buildkit", "buildkitd-amd64"));

    let lb_pod = Endpoints {
        service: "buildkitd-lb-metrics",
        pod: "buildkitd-lb-66d9c7f5b8-9tq2w",
        container: "haproxy",
        address: "10.42.1.5:9404",
    };
    let mut jobs = scrape_jobs(
        &generated.monitors,
        "haproxy",
        "buildkit",
        &lb_pod,
        &format!("127.0.0.1:{}", lb.config.metrics_port),
    );
    jobs.extend(scrape_jobs(
        &generated.monitors,
        "keda",
        "keda",
        &keda_pod(),
        &format!("127.0.0.1:{}", keda.port),
    ));
    let prom = Prometheus::start(&prometheus, &config(jobs), &generated.rules);

    // Healthy: one worker, two builds (one runs, one queues), one scaler
    // error that recovers.
    let port = lb.port(FRONTEND);
    let mut clients = vec![BuildClient::connect(port, 1), BuildClient::connect(port, 2)];
    keda.scaler_error();
    let stored = wait_until(Duration::from_secs(20), || {
        prom.query(r#"poolc:pool_queue:connections{pool="amd64"} == 1"#).len() == 1
            && !prom
                .query(r#"keda_scaler_detail_errors_total{namespace="buildkit", scaledObject="buildkitd-amd64"} == 1"#)
                .is_empty()
    });
    assert!(
        stored,
        "the healthy queue and KEDA's counter are not stored as the rules read them:\n{}",
        prom.targets()
    );
    // Longer than the queue alert's `for` and most of the error window.
    std::thread::sleep(Duration::from_secs(10));
    for name in [
        "PoolQueueBacklog",
        "PoolScalerErrors",
        "PoolScaledObjectErrors",
    ] {
        assert!(
            !prom.firing(name),
            "{name} fires on healthy load: {:?}",
            prom.alerts()
        );
    }

    // Failure: three more builds (queue 4 > 2) and a scaler that keeps failing.
    for id in 3..=5 {
        clients.push(BuildClient::connect(port, id));
    }
    let _outage = outage(&keda, Duration::from_millis(500));
    let fired = wait_until(Duration::from_secs(40), || {
        prom.firing("PoolQueueBacklog") && prom.firing("PoolScalerErrors")
    });
    assert!(
        fired,
        "alerts: {:?}\nrules: {}\nHAProxy queue: {}",
        prom.alerts(),
        prom.rules(),
        lb.backend_queue(BACKEND)
    );
    let alerts = prom.alerts();
    let scaler = alerts
        .iter()
        .find(|a| a["labels"]["alertname"] == "PoolScalerErrors")
        .unwrap();
    assert_eq!(scaler["labels"]["pool"], "amd64");
    assert_eq!(scaler["labels"]["namespace"], "buildkit");
    // One cause, one page.
    assert!(!prom.firing("PoolScaledObjectErrors"), "{alerts:?}");
    drop(clients);
    drop(workers);
}

/// The same KEDA exposition through a ServiceMonitor without honorLabels:
/// KEDA's `namespace` is stored as `exported_namespace`, the target's
/// (`keda`) as `namespace`, and the error alert can never fire.
#[test]
fn without_honor_labels_the_keda_alert_never_fires() {
    let Some(prometheus) = prometheus() else {
        return;
    };
    let generated = generate();
    let mutant = generated.monitors.replace("    honorLabels: true\n", "");
    assert_ne!(
        mutant, generated.monitors,
        "the KEDA ServiceMonitor honors labels"
    );
    let keda = Arc::new(FakeKeda::serve((2, 16), "buildkit", "buildkitd-amd64"));
    let jobs = scrape_jobs(
        &mutant,
        "keda",
        "keda",
        &keda_pod(),
        &format!("127.0.0.1:{}", keda.port),
    );
    let prom = Prometheus::start(&prometheus, &config(jobs), &generated.rules);
    let _outage = outage(&keda, Duration::from_millis(500));
    let stored = wait_until(Duration::from_secs(20), || {
        !prom
            .query(r#"keda_scaler_detail_errors_total{namespace="keda", exported_namespace="buildkit"} > 3"#)
            .is_empty()
    });
    assert!(stored, "{}", prom.targets());
    // Longer than the error window: the counter has gone up ~50 times.
    std::thread::sleep(Duration::from_secs(22));
    assert!(!prom.firing("PoolScalerErrors"), "{:?}", prom.alerts());
    assert!(
        prom.query(r#"keda_scaler_detail_errors_total{namespace="buildkit"}"#)
            .is_empty(),
        "KEDA's namespace survived a scrape without honorLabels"
    );
}
