//! `poolc catalog import` against real components: a Prometheus started here
//! scrapes a node-exporter, an HAProxy with its Prometheus exporter, and
//! itself. The API answers are saved as a user would save them with curl,
//! imported, and the catalog must then pass a rule file over those metrics
//! while an unknown name still fails. The node-exporter's own /metrics text
//! is imported directly too, and must agree with what Prometheus stored.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, poolc, scratch, stderr, stdout, tool};
use serde_json::Value;

/// A component started by the test, killed when the test ends however it ends.
struct Running {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Running {
    fn start(name: &'static str, program: &Path, args: &[String], dir: &Path) -> Running {
        let log = dir.join(format!("{name}.log"));
        let out = fs::File::create(&log).expect("create log");
        let child = Command::new(program)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log handle"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Running { name, child, log }
    }

    fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!(
            "--- {} log (last lines) ---\n{}",
            self.name,
            lines[lines.len().saturating_sub(15)..].join("\n")
        )
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET over HTTP/1.0 with every step bounded; the status and body.
fn get(port: u16, target: &str) -> std::io::Result<(u16, String)> {
    let addr = ([127, 0, 0, 1], port).into();
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {target} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut raw = Vec::new();
    stream.take(64 * 1024 * 1024).read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no end of headers"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status"))?;
    Ok((status, body.to_string()))
}

/// Percent-encodes a query parameter value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Polls `ready` until it returns Some, for at most `limit`.
fn wait_for<T>(
    what: &str,
    limit: Duration,
    running: &[&Running],
    mut ready: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = ready() {
            return value;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = running.iter().map(|r| r.log_tail()).collect();
            panic!(
                "gave up after {limit:?} waiting for {what}\n{}",
                logs.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The `data` of a successful API answer.
fn api(port: u16, target: &str) -> Option<(String, Value)> {
    let (status, body) = get(port, target).ok()?;
    let value: Value = serde_json::from_str(&body).ok()?;
    (status == 200 && value["status"] == "success").then(|| (body, value["data"].clone()))
}

/// Metric name → label names, from a saved `/api/v1/series` answer.
fn stored(series: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in series.as_array().expect("series is a list") {
        let map = s.as_object().expect("a series is a label map");
        let name = map["__name__"].as_str().expect("__name__").to_string();
        out.entry(name)
            .or_default()
            .extend(map.keys().filter(|k| *k != "__name__").cloned());
    }
    out
}

/// The rows of an imported catalog: name → (type, labels).
fn rows(catalog: &str) -> BTreeMap<String, (String, BTreeSet<String>)> {
    let file: Value = serde_saphyr::from_str(catalog).expect("the catalog is YAML");
    file["metrics"]
        .as_array()
        .expect("metrics is a list")
        .iter()
        .map(|m| {
            let labels = m["labels"]
                .as_array()
                .expect("labels is a list")
                .iter()
                .map(|l| l.as_str().expect("a label name").to_string())
                .collect();
            (
                m["name"].as_str().expect("name").to_string(),
                (m["type"].as_str().expect("type").to_string(), labels),
            )
        })
        .collect()
}

/// The metrics and labels the rule files below read, each checked against
/// what the scrape stored before the rules are trusted as a test input.
const USED: &[(&str, &[&str])] = &[
    ("node_cpu_seconds_total", &["mode", "instance"]),
    ("node_memory_MemAvailable_bytes", &["instance"]),
    ("node_memory_MemTotal_bytes", &["instance"]),
    ("node_load1", &["instance"]),
    ("haproxy_backend_current_queue", &["proxy"]),
    ("haproxy_server_status", &["proxy", "server", "state"]),
    (
        "prometheus_http_request_duration_seconds_bucket",
        &["handler", "le"],
    ),
    ("go_gc_duration_seconds", &["job", "quantile"]),
    ("prometheus_tsdb_head_series", &["job"]),
];

const NODE_RULES: &str = r#"groups:
  - name: node
    rules:
      - alert: NodeCpuSaturated
        expr: avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m])) < 0.05
        for: 15m
        labels: {severity: warning}
        annotations: {summary: "{{ $labels.instance }} has had no idle CPU for 15 minutes"}
      - alert: NodeMemoryLow
        expr: node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes < 0.05
        for: 10m
        labels: {severity: warning}
        annotations: {summary: "{{ $labels.instance }} has under 5% memory available"}
      - record: instance:node_load1:max
        expr: max by (instance) (node_load1)
"#;

const SERVER_RULES: &str = r#"groups:
  - name: lb-and-prometheus
    rules:
      - alert: BuildQueueBacklog
        expr: haproxy_backend_current_queue{proxy="bk_pool"} > 20
        for: 15m
        labels: {severity: warning}
        annotations: {summary: "{{ $labels.proxy }} has more than 20 builds queued"}
      - alert: WorkerDown
        expr: haproxy_server_status{proxy="bk_pool", state="DOWN"} == 1
        for: 5m
        labels: {severity: warning}
        annotations: {summary: "{{ $labels.server }} in {{ $labels.proxy }} is down"}
      - alert: PrometheusQueriesSlow
        expr: histogram_quantile(0.99, sum by (le, handler) (rate(prometheus_http_request_duration_seconds_bucket{handler="/api/v1/query"}[5m]))) > 5
        for: 10m
        labels: {severity: warning}
        annotations: {summary: "99th percentile of {{ $labels.handler }} above 5s"}
      - alert: PrometheusGcPauses
        expr: max by (job) (go_gc_duration_seconds{quantile="1"}) > 1
        for: 10m
        labels: {severity: warning}
        annotations: {summary: "{{ $labels.job }} pauses over a second for GC"}
      - alert: PrometheusSeriesChurn
        expr: prometheus_tsdb_head_series{job="prometheus"} > 5e6
        for: 30m
        labels: {severity: warning}
        annotations: {summary: "{{ $labels.job }} holds over five million series"}
"#;

const UNKNOWN_NAME: &str = r#"groups:
  - name: typo
    rules:
      - alert: NodeCpuSaturated
        expr: avg by (instance) (rate(node_cpu_seconds_totl{mode="idle"}[5m])) < 0.05
        for: 15m
        labels: {severity: warning}
        annotations: {summary: "{{ $labels.instance }} has had no idle CPU"}
"#;

const UNKNOWN_LABEL: &str = r#"groups:
  - name: typo
    rules:
      - alert: NodeCpuSaturated
        expr: avg by (instance) (rate(node_cpu_seconds_total{mod="idle"}[5m])) < 0.05
        for: 15m
        labels: {severity: warning}
        annotations: {summary: "{{ $labels.instance }} has had no idle CPU"}
"#;

fn lint(dir: &Path, catalog: &str, rules: &str, text: &str) -> (Option<i32>, String) {
    fs::write(dir.join(rules), text).expect("write rules");
    let out = poolc(dir, &["lint", "--catalog", catalog, rules]);
    (
        out.status.code(),
        format!("{}{}", stdout(&out), stderr(&out)),
    )
}

fn import(dir: &Path, args: &[&str], into: &str) -> String {
    let mut all = vec!["catalog", "import"];
    all.extend_from_slice(args);
    let out = poolc(dir, &all);
    assert_eq!(
        out.status.code(),
        Some(0),
        "poolc catalog import {args:?}: {}",
        stderr(&out)
    );
    let text = stdout(&out);
    fs::write(dir.join(into), &text).expect("write catalog");
    text
}

#[test]
fn imports_a_real_prometheus_and_an_exporter_and_lints_with_the_result() {
    let install = "apt-get install prometheus prometheus-node-exporter haproxy";
    let (Some(prometheus), Some(node_exporter), Some(haproxy)) = (
        tool("prometheus", install),
        tool("prometheus-node-exporter", install),
        tool("haproxy", install),
    ) else {
        return;
    };
    let dir = scratch("catalog-import");
    let (prom_port, node_port, stats_port, lb_port, worker_port) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );

    // Collectors that read /proc and need no privileges.
    let node_args: Vec<String> = [
        format!("--web.listen-address=127.0.0.1:{node_port}"),
        "--collector.disable-defaults".into(),
        "--collector.cpu".into(),
        "--collector.meminfo".into(),
        "--collector.loadavg".into(),
        "--collector.stat".into(),
        "--collector.time".into(),
        "--collector.uname".into(),
    ]
    .into();
    let node = Running::start("node-exporter", &node_exporter, &node_args, &dir);

    // A backend whose only server never answers: its status series exist all the same.
    fs::write(
        dir.join("haproxy.cfg"),
        format!(
            "global\n  log stdout format raw local0 emerg\n\
             defaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n\
             frontend stats\n  bind 127.0.0.1:{stats_port}\n  http-request use-service prometheus-exporter if {{ path /metrics }}\n\
             frontend fe_pool\n  bind 127.0.0.1:{lb_port}\n  default_backend bk_pool\n\
             backend bk_pool\n  server worker-0 127.0.0.1:{worker_port} check inter 1s\n"
        ),
    )
    .expect("write haproxy.cfg");
    let lb = Running::start(
        "haproxy",
        &haproxy,
        &["-db".into(), "-f".into(), "haproxy.cfg".into()],
        &dir,
    );

    fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n\
             \x20 - job_name: prometheus\n    static_configs: [{{targets: [\"127.0.0.1:{prom_port}\"]}}]\n\
             \x20 - job_name: node\n    static_configs: [{{targets: [\"127.0.0.1:{node_port}\"]}}]\n\
             \x20 - job_name: haproxy\n    static_configs: [{{targets: [\"127.0.0.1:{stats_port}\"]}}]\n"
        ),
    )
    .expect("write prometheus.yml");
    let server = Running::start(
        "prometheus",
        &prometheus,
        &[
            "--config.file=prometheus.yml".into(),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{prom_port}"),
        ],
        &dir,
    );
    let all = [&node, &lb, &server];

    // Every target up, and every metric the rules read stored with its labels.
    let jobs = ["haproxy", "node", "prometheus"];
    wait_for(
        "all three targets up",
        Duration::from_secs(60),
        &all,
        || {
            let (_, targets) = api(prom_port, "/api/v1/targets")?;
            let up: BTreeSet<&str> = targets["activeTargets"]
                .as_array()?
                .iter()
                .filter(|t| t["health"] == "up")
                .filter_map(|t| t["labels"]["job"].as_str())
                .collect();
            (up == jobs.into()).then_some(())
        },
    );
    let series_query = format!(
        "/api/v1/series?match[]={}",
        encode(r#"{job=~"haproxy|node|prometheus"}"#)
    );
    let (series_json, metadata_json) = wait_for(
        "the series the rules read",
        Duration::from_secs(60),
        &all,
        || {
            let (body, data) = api(prom_port, &series_query)?;
            let names = stored(&data);
            let complete = USED.iter().all(|(metric, labels)| {
                names
                    .get(*metric)
                    .is_some_and(|have| labels.iter().all(|l| have.contains(*l)))
            });
            let (metadata, meta) = api(prom_port, "/api/v1/metadata")?;
            let typed = [
                "node_cpu_seconds_total",
                "haproxy_backend_current_queue",
                "go_gc_duration_seconds",
            ]
            .iter()
            .all(|m| meta.get(m).is_some());
            (complete && typed).then_some((body, metadata))
        },
    );
    fs::write(dir.join("metadata.json"), &metadata_json).expect("save metadata");
    fs::write(dir.join("series.json"), &series_json).expect("save series");
    let (status, node_text) = get(node_port, "/metrics").expect("node-exporter /metrics");
    assert_eq!(status, 200, "node-exporter /metrics");
    fs::write(dir.join("node.txt"), &node_text).expect("save node metrics");
    drop(server);
    drop(lb);
    drop(node);

    // The catalog from the API answers.
    let from_api = import(
        &dir,
        &["--metadata", "metadata.json", "--series", "series.json"],
        "catalog.yaml",
    );
    assert_eq!(
        import(
            &dir,
            &["--metadata", "metadata.json", "--series", "series.json"],
            "again.yaml"
        ),
        from_api,
        "importing the same answers twice writes the same bytes"
    );
    let api_rows = rows(&from_api);
    let names: Vec<&String> = api_rows.keys().collect();
    assert!(names.windows(2).all(|w| w[0] < w[1]), "rows are sorted");

    // Each row agrees with what Prometheus reported: its type from the
    // metadata, its labels from the stored series (histograms and
    // summaries under their family name, without `le` and `quantile`).
    let metadata: Value = serde_json::from_str(&metadata_json).unwrap();
    let series: Value = serde_json::from_str(&series_json).unwrap();
    let stored = stored(&series["data"]);
    for (family, suffixes, dropped) in [
        ("node_cpu_seconds_total", &[""][..], None),
        ("haproxy_backend_current_queue", &[""][..], None),
        ("haproxy_server_status", &[""][..], None),
        (
            "prometheus_http_request_duration_seconds",
            &["_bucket", "_sum", "_count"][..],
            Some("le"),
        ),
        (
            "go_gc_duration_seconds",
            &["", "_sum", "_count"][..],
            Some("quantile"),
        ),
    ] {
        let declared = metadata["data"][family][0]["type"]
            .as_str()
            .unwrap_or_else(|| panic!("{family} has metadata"));
        let mut labels = BTreeSet::new();
        for suffix in suffixes {
            labels.extend(stored[&format!("{family}{suffix}")].iter().cloned());
        }
        if let Some(d) = dropped {
            labels.remove(d);
        }
        assert_eq!(
            api_rows.get(family),
            Some(&(declared.to_string(), labels)),
            "{family}"
        );
    }
    for synthetic in ["up", "scrape_duration_seconds"] {
        assert!(stored.contains_key(synthetic));
        assert!(!api_rows.contains_key(synthetic), "{synthetic} is built in");
    }

    // A rule file over those metrics lints clean with it.
    for rules in [NODE_RULES, SERVER_RULES] {
        let (code, out) = lint(&dir, "catalog.yaml", "rules.yaml", rules);
        assert_eq!(code, Some(0), "{out}");
        assert!(!out.contains("P0"), "{out}");
    }
    // Without the imported catalog, the built-in node-exporter tables judge
    // the same rules, and agree with what the real scrape stored.
    fs::write(dir.join("rules.yaml"), NODE_RULES).unwrap();
    let out = poolc(&dir, &["lint", "rules.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // An unknown name still fails, and so does a label the metric never has.
    let (code, out) = lint(&dir, "catalog.yaml", "typo.yaml", UNKNOWN_NAME);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("P002") && out.contains("node_cpu_seconds_totl"),
        "{out}"
    );
    assert!(
        out.contains("did you mean `node_cpu_seconds_total`"),
        "{out}"
    );
    let (code, out) = lint(&dir, "catalog.yaml", "typo.yaml", UNKNOWN_LABEL);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("P004") && out.contains("`mod`"), "{out}");

    // The node-exporter's exposition text, imported directly, gives the
    // rows Prometheus stored for it (Prometheus adds `job` and `instance`).
    let from_text = import(&dir, &["--exposition", "node.txt"], "node-catalog.yaml");
    let text_rows = rows(&from_text);
    let node_rows = |r: &BTreeMap<String, (String, BTreeSet<String>)>| {
        r.iter()
            .filter(|(name, _)| name.starts_with("node_"))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    assert!(node_rows(&text_rows).len() > 20, "{from_text}");
    assert_eq!(node_rows(&text_rows), node_rows(&api_rows));
    let (code, out) = lint(&dir, "node-catalog.yaml", "rules.yaml", NODE_RULES);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = lint(&dir, "node-catalog.yaml", "typo.yaml", UNKNOWN_NAME);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("P002"), "{out}");
}

#[test]
fn bad_input_names_the_file_and_line() {
    let dir = scratch("catalog-import-bad");
    fs::write(
        dir.join("metrics.txt"),
        "# TYPE jobs counter\njobs_total{queue=\"a\"} 1\njobs_total{queue=\"b\" 2\n",
    )
    .unwrap();
    let out = poolc(&dir, &["catalog", "import", "--exposition", "metrics.txt"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("error: metrics.txt:3: "),
        "{}",
        stderr(&out)
    );
    // The two API answers swapped: the series list where the metadata map belongs.
    fs::write(
        dir.join("series.json"),
        "{\"status\":\"success\",\n\"data\":[]}\n",
    )
    .unwrap();
    fs::write(
        dir.join("metadata.json"),
        "{\"status\":\"success\",\"data\":{}}\n",
    )
    .unwrap();
    let out = poolc(
        &dir,
        &[
            "catalog",
            "import",
            "--metadata",
            "series.json",
            "--series",
            "metadata.json",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("error: series.json:2: ")
            && stderr(&out).contains("/api/v1/metadata"),
        "{}",
        stderr(&out)
    );
    let out = poolc(&dir, &["catalog", "import"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("nothing to import"),
        "{}",
        stderr(&out)
    );
    // A catalog file's own mistakes name its line.
    fs::write(
        dir.join("catalog.yaml"),
        "metrics:\n  - {name: jobs_total, type: counter, labels: [queue]}\n  - {name: pods, type: gauge, labels: [\"label_*x\"]}\n",
    )
    .unwrap();
    fs::write(dir.join("rules.yaml"), "groups: []\n").unwrap();
    let out = poolc(&dir, &["lint", "--catalog", "catalog.yaml", "rules.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("error: catalog.yaml:3: metric `pods`"),
        "{}",
        stderr(&out)
    );
}
