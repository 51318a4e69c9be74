//! A real Prometheus server on 127.0.0.1 for a test, and a fake KEDA
//! operator exporter for it to scrape.
//!
//! Include it from a test file that also has `mod common;`:
//!
//! ```ignore
//! mod common;
//! #[path = "support/live_prometheus.rs"]
//! mod live_prometheus;
//! ```
//!
//! - [`Prometheus`] writes `prometheus.yml` and the rule file into a scratch
//!   directory, starts the Debian `prometheus` binary with its TSDB there,
//!   waits for `/-/ready`, answers queries through the HTTP API and is
//!   killed on drop;
//! - [`FakeKeda`] serves `/metrics` in the text exposition of the KEDA
//!   operator (the error counters and their labels of the given version),
//!   with counters the test moves.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `prometheus` binary, or None after printing SKIPPED (a panic under `CI=true`).
pub fn prometheus() -> Option<PathBuf> {
    crate::common::tool("prometheus", "apt-get install -y prometheus")
}

/// `GET path` on 127.0.0.1:port; the body of a 200 answer.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    (head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200")).then(|| body.to_string())
}

/// Percent-encodes a query parameter.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A running Prometheus. Killed on drop.
pub struct Prometheus {
    pub port: u16,
    pub dir: PathBuf,
    child: Child,
}

impl Prometheus {
    /// Starts `prometheus` with `config` (prometheus.yml) and `rules` (the
    /// rule file it names as `rules.yaml`), and waits until it is ready.
    pub fn start(binary: &Path, config: &str, rules: &str) -> Prometheus {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "live-prometheus-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).expect("scratch dir");
        std::fs::write(dir.join("prometheus.yml"), config).expect("write prometheus.yml");
        std::fs::write(dir.join("rules.yaml"), rules).expect("write rules.yaml");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("log file");
        let child = Command::new(binary)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        let prometheus = Prometheus { port, dir, child };
        let deadline = Instant::now() + Duration::from_secs(30);
        while http_get(port, "/-/ready").is_none() {
            assert!(
                Instant::now() < deadline,
                "prometheus did not become ready:\n{}",
                prometheus.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        prometheus
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// `/api/v1/query?query=…`: the result vector.
    pub fn query(&self, promql: &str) -> Vec<Value> {
        let body = http_get(
            self.port,
            &format!("/api/v1/query?query={}", encode(promql)),
        )
        .unwrap_or_else(|| panic!("query {promql} failed:\n{}", self.log()));
        let value: Value = serde_json::from_str(&body).expect("JSON answer");
        value["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// `/api/v1/alerts`: every active alert (pending or firing).
    pub fn alerts(&self) -> Vec<Value> {
        let body = http_get(self.port, "/api/v1/alerts").expect("alerts API");
        let value: Value = serde_json::from_str(&body).expect("JSON answer");
        value["data"]["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Whether `alertname` is firing.
    pub fn firing(&self, alertname: &str) -> bool {
        self.alerts()
            .iter()
            .any(|a| a["labels"]["alertname"] == alertname && a["state"] == "firing")
    }

    /// Loaded rule groups and their health, for failure messages.
    pub fn rules(&self) -> String {
        http_get(self.port, "/api/v1/rules").unwrap_or_default()
    }

    /// Loaded scrape targets and their health, for failure messages.
    pub fn targets(&self) -> String {
        http_get(self.port, "/api/v1/targets").unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The KEDA operator's `/metrics`: the error counters of one ScaledObject
/// in the exposition of the given KEDA version (from 2.13 the trigger's
/// labels are `triggerIndex, type`; 2.14–2.16 also export the deprecated
/// names; 2.17 removed them). Every counter exists from the start at 0, as
/// KEDA initializes them on the first successful fetch.
pub struct FakeKeda {
    pub port: u16,
    scaler_errors: Arc<AtomicU64>,
    object_errors: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeKeda {
    pub fn serve(version: (u32, u32), namespace: &str, scaled_object: &str) -> FakeKeda {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake KEDA");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("address").port();
        let scaler_errors = Arc::new(AtomicU64::new(0));
        let object_errors = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, o, halt) = (scaler_errors.clone(), object_errors.clone(), stop.clone());
        let (ns, so) = (namespace.to_string(), scaled_object.to_string());
        let thread = std::thread::spawn(move || {
            while !halt.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                        let mut request = [0u8; 4096];
                        let _ = stream.read(&mut request);
                        let body = exposition(
                            version,
                            &ns,
                            &so,
                            s.load(Ordering::SeqCst),
                            o.load(Ordering::SeqCst),
                        );
                        let _ = stream.write_all(
                            format!(
                                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                body.len()
                            )
                            .as_bytes(),
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        FakeKeda {
            port,
            scaler_errors,
            object_errors,
            stop,
            thread: Some(thread),
        }
    }

    /// One failed metric fetch: KEDA's RecordScalerError increments the
    /// scaler counter and the ScaledObject counter.
    pub fn scaler_error(&self) {
        self.scaler_errors.fetch_add(1, Ordering::SeqCst);
        self.object_errors.fetch_add(1, Ordering::SeqCst);
    }
}

impl Drop for FakeKeda {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn exposition(version: (u32, u32), ns: &str, so: &str, scaler: u64, object: u64) -> String {
    let trigger = if version >= (2, 13) {
        r#"triggerIndex="0",type="scaledobject""#
    } else {
        r#"scalerIndex="0""#
    };
    let ml = format!(
        r#"metric="s0-metric-api-haproxy_backend_current_sessions",namespace="{ns}",scaledObject="{so}",scaler="metricsAPIScaler",{trigger}"#
    );
    let mut out = String::new();
    let mut family = |name: &str, help: &str, labels: &str, value: u64| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n"));
        if labels.is_empty() {
            out.push_str(&format!("{name} {value}\n"));
        } else {
            out.push_str(&format!("{name}{{{labels}}} {value}\n"));
        }
    };
    let object_labels = format!(r#"namespace="{ns}",scaledObject="{so}""#);
    if version >= (2, 14) {
        family(
            "keda_scaler_detail_errors_total",
            "The total number of errors encountered for each scaler.",
            &ml,
            scaler,
        );
        family(
            "keda_scaled_object_errors_total",
            "The number of errors that have occurred for each ScaledObject.",
            &object_labels,
            object,
        );
    }
    if version < (2, 17) {
        family("keda_scaler_errors", "Number of scaler errors", &ml, scaler);
        family(
            "keda_scaler_errors_total",
            "Total number of errors for all scalers",
            "",
            scaler,
        );
        family(
            "keda_scaled_object_errors",
            "Number of scaled object errors",
            &object_labels,
            object,
        );
    }
    out
}
