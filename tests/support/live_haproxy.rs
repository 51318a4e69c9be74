//! A generated `haproxy.cfg` running on a real HAProxy on 127.0.0.1, with
//! fake workers behind it and gRPC-like build clients in front of it.
//!
//! Include it from a test file that also has `mod common;`:
//!
//! ```ignore
//! mod common;
//! #[path = "support/live_haproxy.rs"]
//! mod live_haproxy;
//! ```
//!
//! The pieces:
//! - [`local_config`] rewrites a generated config for a local run, and
//!   documents exactly what it changes;
//! - [`haproxy`] finds the binary (SKIPPED without it, a failure under `CI=true`);
//! - [`Lb`] runs it in a scratch directory, reads its real `/metrics` and its
//!   log, soft-stops it, and kills it on drop;
//! - [`FakeWorker`] holds each build connection open, the way buildkitd does
//!   while a build runs, until the test finishes the build;
//! - [`BuildClient`] connects through the LB, sends an HTTP/2 preface as
//!   BuildKit's gRPC client does, and then holds or abandons.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The HTTP/2 connection preface every gRPC client sends first.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame: what an HTTP/2 server sends first.
const SETTINGS: [u8; 9] = [0, 0, 0, 4, 0, 0, 0, 0, 0];

/// The `haproxy` binary, or None after printing SKIPPED (a panic under `CI=true`).
pub fn haproxy() -> Option<PathBuf> {
    crate::common::tool("haproxy", "apt-get install -y haproxy")
}

pub use crate::common::free_port;

/// Polls `done` every 20 ms until it is true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A generated config rewritten for 127.0.0.1, and where everything went.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    pub text: String,
    /// Frontend name → the local port it now binds (first `bind` only).
    pub frontends: BTreeMap<String, u16>,
    /// The original port of each `bind` → its local port.
    pub ports: BTreeMap<u16, u16>,
    /// Backend name → its servers as (name, local port), in config order.
    pub servers: BTreeMap<String, Vec<(String, u16)>>,
    /// The local port of the frontend that serves the Prometheus exporter.
    pub metrics_port: u16,
}

impl LocalConfig {
    /// The local port of frontend `name`.
    pub fn frontend(&self, name: &str) -> u16 {
        *self
            .frontends
            .get(name)
            .unwrap_or_else(|| panic!("no frontend {name} in {:?}", self.frontends))
    }

    /// The local ports of backend `name`'s servers.
    pub fn server_ports(&self, backend: &str) -> Vec<u16> {
        self.servers
            .get(backend)
            .unwrap_or_else(|| panic!("no backend {backend} in {:?}", self.servers.keys()))
            .iter()
            .map(|(_, port)| *port)
            .collect()
    }
}

/// Rewrites a generated `haproxy.cfg` so it runs unprivileged on 127.0.0.1
/// with static servers. It changes exactly these lines, and nothing else:
///
/// 1. `bind ADDR:PORT [options]` (every frontend; ADDR may be empty, `*` or
///    `::`) → `bind 127.0.0.1:FREE [options]`, the options kept as written
///    (HAProxy accepts `v4v6` on an IPv4 address and ignores it there).
///    A port below 1024 would need root, and the fixed ports may be taken.
/// 2. `server-template PREFIX N FQDN:PORT [options]` → `workers` lines
///    `server PREFIX1 127.0.0.1:FREE [options]` … `PREFIX<workers>`, with the
///    options kept as written except `resolvers NAME` and `init-addr VALUE`,
///    which are dropped: there is no cluster DNS here. Servers are named as
///    `server-template` names them (PREFIX1 …), so metrics and logs read the
///    same. Only `workers` of the N slots exist; nothing listens on their
///    ports until a test starts a [`FakeWorker`] there.
/// 3. `parse-resolv-conf` (in a `resolvers` section) → `nameserver local
///    127.0.0.1:FREE`, so the section never reads this machine's
///    /etc/resolv.conf. No server uses the resolvers any more (2.), so
///    nothing is ever asked of it; `hold`, `accepted_payload_size` and the
///    rest of the section stay as written, and HAProxy still parses them.
pub fn local_config(generated: &str, workers: usize) -> LocalConfig {
    let mut text = String::new();
    let mut frontends = BTreeMap::new();
    let mut ports = BTreeMap::new();
    let mut servers: BTreeMap<String, Vec<(String, u16)>> = BTreeMap::new();
    let mut section: (String, String) = (String::new(), String::new());
    let mut exporter_frontends = Vec::new();
    for line in generated.lines() {
        let indent = &line[..line.len() - line.trim_start().len()];
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [kind @ ("global" | "defaults" | "frontend" | "backend" | "listen" | "resolvers"), rest @ ..]
                if indent.is_empty() =>
            {
                section = (kind.to_string(), rest.first().unwrap_or(&"").to_string());
                text.push_str(line);
            }
            ["bind", address, options @ ..] => {
                let (_, original) = address.rsplit_once(':').expect("bind ADDR:PORT");
                let original: u16 = original.parse().expect("a numeric bind port");
                let port = free_port();
                ports.insert(original, port);
                frontends.entry(section.1.clone()).or_insert(port);
                text.push_str(&format!("{indent}bind 127.0.0.1:{port}"));
                for option in options {
                    text.push(' ');
                    text.push_str(option);
                }
            }
            ["server-template", prefix, _slots, _address, options @ ..] => {
                let mut kept = Vec::new();
                let mut words = options.iter();
                while let Some(word) = words.next() {
                    if matches!(*word, "resolvers" | "init-addr") {
                        words.next();
                    } else {
                        kept.push(*word);
                    }
                }
                let list = servers.entry(section.1.clone()).or_default();
                for i in 1..=workers {
                    let name = format!("{prefix}{i}");
                    let port = free_port();
                    text.push_str(&format!(
                        "{indent}server {name} 127.0.0.1:{port} {}\n",
                        kept.join(" ")
                    ));
                    list.push((name, port));
                }
                text.pop();
            }
            ["parse-resolv-conf"] => {
                text.push_str(&format!(
                    "{indent}nameserver local 127.0.0.1:{}",
                    free_port()
                ));
            }
            _ => {
                if line.contains("prometheus-exporter") && section.0 == "frontend" {
                    exporter_frontends.push(section.1.clone());
                }
                text.push_str(line);
            }
        }
        text.push('\n');
    }
    let exporter = exporter_frontends
        .first()
        .expect("the config has a frontend that serves prometheus-exporter");
    let metrics_port = frontends[exporter];
    LocalConfig {
        text,
        frontends,
        ports,
        servers,
        metrics_port,
    }
}

/// A running HAProxy. Killed (SIGKILL) on drop if it has not exited.
pub struct Lb {
    pub config: LocalConfig,
    pub dir: PathBuf,
    child: Child,
    exited: Option<ExitStatus>,
}

impl Lb {
    /// Checks the config with `haproxy -c`, starts `haproxy -db` in a fresh
    /// scratch directory (its log, stdout and stderr go to `haproxy.log`
    /// there), and waits until `/metrics` answers.
    pub fn start(haproxy: &Path, config: LocalConfig) -> Lb {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "live-haproxy-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let cfg = dir.join("haproxy.cfg");
        std::fs::write(&cfg, &config.text).expect("write haproxy.cfg");
        let check = Command::new(haproxy)
            .arg("-c")
            .arg("-f")
            .arg(&cfg)
            .output()
            .expect("run haproxy -c");
        assert!(
            check.status.success(),
            "haproxy -c rejects the config:\n{}{}\n--- config ---\n{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr),
            config.text
        );
        let log = std::fs::File::create(dir.join("haproxy.log")).expect("log file");
        let child = Command::new(haproxy)
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .current_dir(&dir)
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start haproxy");
        let lb = Lb {
            config,
            dir,
            child,
            exited: None,
        };
        let up = wait_until(Duration::from_secs(10), || lb.try_metrics().is_some());
        assert!(up, "haproxy did not serve /metrics:\n{}", lb.log());
        lb
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The local port of frontend `name`.
    pub fn port(&self, frontend: &str) -> u16 {
        self.config.frontend(frontend)
    }

    /// The body of `GET /metrics` on the exporter frontend, or None.
    pub fn try_metrics(&self) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.config.metrics_port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let (head, body) = response.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.0 200")
            .then(|| body.to_string())
            .or_else(|| head.starts_with("HTTP/1.1 200").then(|| body.to_string()))
    }

    /// `GET /metrics`; panics if the exporter does not answer.
    pub fn metrics(&self) -> String {
        self.try_metrics()
            .unwrap_or_else(|| panic!("no /metrics from haproxy:\n{}", self.log()))
    }

    /// The value of the first series named `name` whose labels include every
    /// `(label, value)` pair given.
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        series_value(&self.metrics(), name, labels)
    }

    /// `haproxy_backend_current_sessions{proxy=backend}`: running plus queued.
    pub fn backend_sessions(&self, backend: &str) -> f64 {
        self.metric("haproxy_backend_current_sessions", &[("proxy", backend)])
            .unwrap_or_else(|| panic!("no current_sessions for {backend}"))
    }

    /// `haproxy_backend_current_queue{proxy=backend}`.
    pub fn backend_queue(&self, backend: &str) -> f64 {
        self.metric("haproxy_backend_current_queue", &[("proxy", backend)])
            .unwrap_or_else(|| panic!("no current_queue for {backend}"))
    }

    /// Whether HAProxy considers `server` of `backend` UP
    /// (`haproxy_server_status{state="UP"}`).
    pub fn server_up(&self, backend: &str, server: &str) -> bool {
        self.metric(
            "haproxy_server_status",
            &[("proxy", backend), ("server", server), ("state", "UP")],
        ) == Some(1.0)
    }

    /// Everything HAProxy wrote: its log (`log stdout`), warnings and errors.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("haproxy.log")).unwrap_or_default()
    }

    /// The session log lines (`option tcplog`) for `backend`.
    pub fn sessions_logged(&self, backend: &str) -> Vec<SessionLog> {
        self.log()
            .lines()
            .filter_map(SessionLog::parse)
            .filter(|s| s.backend == backend)
            .collect()
    }

    /// A soft stop, as the kubelet's stop signal does to the haproxy image
    /// (its STOPSIGNAL is SIGUSR1): listeners close, running sessions go on.
    pub fn soft_stop(&self) {
        self.signal("USR1");
    }

    /// Sends `kill -SIGNAL` to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = &mut self.child;
        let mut exited = self.exited;
        wait_until(timeout, || {
            if exited.is_none() {
                exited = child.try_wait().ok().flatten();
            }
            exited.is_some()
        });
        self.exited = exited;
        exited
    }
}

impl Drop for Lb {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One `option tcplog` line, as HAProxy writes it when a session ends.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionLog {
    pub frontend: String,
    pub backend: String,
    pub server: String,
    /// Connect retries; a leading `+` means the session was redispatched.
    pub retries: String,
    /// The two-letter termination state, such as `--`, `SC` or `CQ`.
    pub termination: String,
}

impl SessionLog {
    /// `%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq`
    pub fn parse(line: &str) -> Option<SessionLog> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let at = words.iter().position(|w| w.starts_with('['))?;
        let rest = words.get(at + 1..at + 7)?;
        let (backend, server) = rest[1].split_once('/')?;
        let counters: Vec<&str> = rest[5].split('/').collect();
        Some(SessionLog {
            frontend: rest[0].to_string(),
            backend: backend.to_string(),
            server: server.to_string(),
            retries: counters.get(4)?.to_string(),
            termination: rest[4].to_string(),
        })
    }
}

/// The value of the first series in a Prometheus text exposition named
/// `name` whose labels include each `(label, value)` pair.
pub fn series_value(body: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, label_text) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if series_name != name {
                return None;
            }
            let all = labels
                .iter()
                .all(|(k, v)| label_text.split(',').any(|kv| kv == format!("{k}=\"{v}\"")));
            all.then(|| value.parse().ok()).flatten()
        })
}

/// A worker pod's build port: accepts connections and holds each build open
/// (as buildkitd does for the length of a build) until the test finishes it.
/// A connection that closes before sending anything is a health check.
/// Stops listening and drops every connection on [`FakeWorker::kill`] or drop.
pub struct FakeWorker {
    pub port: u16,
    state: Arc<WorkerState>,
    accept: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct WorkerState {
    stop: AtomicBool,
    builds: Mutex<Vec<Build>>,
    checks: AtomicUsize,
    max_running: AtomicUsize,
}

struct Build {
    client: u64,
    stream: TcpStream,
    running: bool,
}

impl WorkerState {
    fn running(&self) -> usize {
        self.builds
            .lock()
            .unwrap()
            .iter()
            .filter(|b| b.running)
            .count()
    }
}

impl FakeWorker {
    /// Listens on 127.0.0.1:`port`.
    pub fn listen(port: u16) -> FakeWorker {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("fake worker on {port}: {e}"));
        listener.set_nonblocking(true).expect("nonblocking");
        let state = Arc::new(WorkerState::default());
        let shared = Arc::clone(&state);
        let accept = std::thread::spawn(move || {
            while !shared.stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let shared = Arc::clone(&shared);
                        std::thread::spawn(move || serve(shared, stream));
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(_) => break,
                }
            }
            // The listener closes here: new connections are refused.
        });
        FakeWorker {
            port,
            state,
            accept: Some(accept),
        }
    }

    /// Client ids of every build this worker started, in order.
    pub fn builds(&self) -> Vec<u64> {
        let builds = self.state.builds.lock().unwrap();
        builds.iter().map(|b| b.client).collect()
    }

    /// Builds running now.
    pub fn running(&self) -> usize {
        self.state.running()
    }

    /// The most builds that ever ran at once here.
    pub fn max_running(&self) -> usize {
        self.state.max_running.load(Ordering::SeqCst)
    }

    /// Health-check connections seen (closed without sending anything).
    pub fn checks(&self) -> usize {
        self.state.checks.load(Ordering::SeqCst)
    }

    /// Ends client `id`'s build: the worker closes the connection.
    pub fn finish(&self, id: u64) {
        let mut builds = self.state.builds.lock().unwrap();
        for b in builds.iter_mut().filter(|b| b.client == id && b.running) {
            let _ = b.stream.shutdown(Shutdown::Both);
            b.running = false;
        }
    }

    /// Ends every running build.
    pub fn finish_all(&self) {
        let mut builds = self.state.builds.lock().unwrap();
        for b in builds.iter_mut().filter(|b| b.running) {
            let _ = b.stream.shutdown(Shutdown::Both);
            b.running = false;
        }
    }

    /// The pod dies: the port stops listening and open connections close.
    pub fn kill(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        self.finish_all();
    }
}

impl Drop for FakeWorker {
    fn drop(&mut self) {
        self.kill();
    }
}

fn serve(state: Arc<WorkerState>, mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    // The preface, then a PING frame (9-byte header, 8-byte payload) that
    // carries the client's id.
    let mut hello = Vec::new();
    let mut buf = [0u8; 256];
    while hello.len() < PREFACE.len() + 17 {
        if state.stop.load(Ordering::SeqCst) {
            return;
        }
        match stream.read(&mut buf) {
            Ok(0) => {
                if hello.is_empty() {
                    state.checks.fetch_add(1, Ordering::SeqCst);
                }
                return;
            }
            Ok(n) => hello.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => {
                if hello.is_empty() {
                    state.checks.fetch_add(1, Ordering::SeqCst);
                }
                return;
            }
        }
    }
    if !hello.starts_with(PREFACE) {
        return;
    }
    let ping = &hello[PREFACE.len()..];
    let mut id = [0u8; 8];
    id.copy_from_slice(&ping[9..17]);
    let client = u64::from_be_bytes(id);
    let Ok(handle) = stream.try_clone() else {
        return;
    };
    {
        let mut builds = state.builds.lock().unwrap();
        builds.push(Build {
            client,
            stream: handle,
            running: true,
        });
        let running = builds.iter().filter(|b| b.running).count();
        state.max_running.fetch_max(running, Ordering::SeqCst);
    }
    let _ = stream.write_all(&SETTINGS);
    // Hold the build until the worker finishes it or the client leaves.
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                let still = state
                    .builds
                    .lock()
                    .unwrap()
                    .iter()
                    .any(|b| b.client == client && b.running);
                if !still {
                    return;
                }
            }
            Err(_) => break,
        }
    }
    let mut builds = state.builds.lock().unwrap();
    for b in builds.iter_mut().filter(|b| b.client == client) {
        b.running = false;
    }
}

/// What a client has seen so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Still waiting: queued in the LB, or connecting.
    Waiting,
    /// A worker answered: the build runs.
    Served,
    /// A worker answered, then the connection closed: the build is over.
    Finished,
    /// The connection closed before any worker answered: the build failed
    /// (queue timeout, no server, `SC` after the retries…).
    Closed,
}

/// A build client, like BuildKit's gRPC client: it connects to the LB and at
/// once sends the HTTP/2 preface and a PING frame whose payload is its `id`
/// (so a [`FakeWorker`] knows whose build it runs). A reader thread watches
/// the connection and, when the other side closes it, closes its own side
/// too, as the real client does. [`BuildClient::abandon`] (or drop) gives up.
pub struct BuildClient {
    pub id: u64,
    stream: TcpStream,
    seen: Arc<Mutex<Seen>>,
}

impl BuildClient {
    pub fn connect(port: u16, id: u64) -> BuildClient {
        let mut stream = TcpStream::connect(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("client {id} cannot connect to {port}: {e}"));
        let mut hello = PREFACE.to_vec();
        hello.extend_from_slice(&[0, 0, 8, 6, 0, 0, 0, 0, 0]);
        hello.extend_from_slice(&id.to_be_bytes());
        stream.write_all(&hello).expect("send the preface");
        let seen = Arc::new(Mutex::new(Seen::Waiting));
        let mut reader = stream.try_clone().expect("clone the client stream");
        let shared = Arc::clone(&seen);
        std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            loop {
                match reader.read(&mut buf) {
                    Ok(n) if n > 0 => *shared.lock().unwrap() = Seen::Served,
                    _ => break,
                }
            }
            let _ = reader.shutdown(Shutdown::Both);
            let mut seen = shared.lock().unwrap();
            *seen = match *seen {
                Seen::Served | Seen::Finished => Seen::Finished,
                _ => Seen::Closed,
            };
        });
        BuildClient { id, stream, seen }
    }

    /// Where the build stands now.
    pub fn seen(&self) -> Seen {
        *self.seen.lock().unwrap()
    }

    /// Waits up to `timeout` for anything but [`Seen::Waiting`].
    pub fn wait_served(&self, timeout: Duration) -> Seen {
        wait_until(timeout, || self.seen() != Seen::Waiting);
        self.seen()
    }

    /// Waits up to `timeout` for the connection to close; true if it did.
    pub fn wait_closed(&self, timeout: Duration) -> bool {
        wait_until(timeout, || {
            matches!(self.seen(), Seen::Closed | Seen::Finished)
        })
    }

    /// The client gives up, as grpc-go does after its connect timeout: it
    /// closes the connection.
    pub fn abandon(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

impl Drop for BuildClient {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}
