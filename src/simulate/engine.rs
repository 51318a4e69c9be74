//! The discrete-event loop for one ScaledObject pool: builds dialing through
//! HAProxy (maxconn 1 servers, a FIFO backend queue with `timeout queue`),
//! the client's connect-retry, KEDA's fetch and polling loop, the HPA, the
//! ReplicaSet's deletion rank, pod start and readiness, servers coming UP
//! through DNS, and Karpenter's batching, launches, limits and WhenEmpty
//! consolidation. Time is integer milliseconds; ties break by event class
//! and then insertion order, so a seed fixes the whole run.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use super::hpa::{Behavior, Hpa, Policy, PolicyKind, Rules, Select};
use super::karpenter::{self, NodeOption};
use super::keda::{Fetched, PollAction, Scaler};
use super::params::Params;
use super::prometheus::Store;
use super::rng::Rng;
use super::workload::Arrival;
use crate::catalog::Version;
use crate::model::Fallback;

/// Everything the loop needs to know about one pool, from the Model.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    pub cluster: String,
    pub pool: String,
    pub namespace: String,
    /// The scrape job of the LB's exporter (its metrics Service), whose
    /// `up` the LB-down alert reads.
    pub lb_job: String,
    pub backend: String,
    pub workload: String,
    pub nodepool: String,
    pub min: u32,
    pub max: u32,
    pub pods_per_node: u32,
    pub max_nodes: u64,
    pub node_vcpu: u32,
    pub node_memory_gib: u32,
    pub target: f64,
    pub stabilization_ms: u64,
    pub scale_down_pods: u32,
    pub scale_down_percent: u32,
    pub scale_down_period_ms: u64,
    pub polling_ms: u64,
    pub fallback: Option<Fallback>,
    pub keda: Version,
    /// HAProxy `timeout queue` (0: never).
    pub queue_timeout_ms: u64,
    pub slots: u32,
    pub scrape_ms: u64,
    /// The pool's instance types as its NodePools offer them, heaviest
    /// first; the first is the one `nodepool` and `pods_per_node` name.
    pub node_options: Vec<NodeOption>,
}

/// What one run measured.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub builds: u64,
    pub failed: u64,
    pub queue_timeouts: u64,
    /// Wait of every build that started, in ms (arrival → first byte served).
    pub waits: Vec<u64>,
    pub waited: u64,
    pub attempts: Vec<u32>,
    pub cold_node_boots: u64,
    pub cold_pod_starts: u64,
    pub peak_pods: u32,
    pub peak_nodes: u32,
    pub time_at_max_ms: u64,
    pub pod_ms: u128,
    pub node_ms: u128,
    pub fallback_episodes: u32,
    /// ∫ (builds waiting) dt, in build·ms, and the sum of every build's
    /// waiting time including failed ones: equal by Little's law.
    pub waiting_area: u128,
    pub waiting_total: u128,
    pub end_ms: u64,
    pub timeline: Vec<Sample>,
    /// Per node option (instance type): nodes launched and node-ms.
    pub boots_by_option: Vec<u64>,
    pub node_ms_by_option: Vec<u128>,
    /// A jobs pool's polling ticks that created Jobs (empty for a service pool).
    pub job_ticks: Vec<super::jobs::Tick>,
}

/// One point of the timeline plot (per scrape).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sample {
    pub t: u64,
    pub arrivals: u32,
    pub waiting: u32,
    pub sessions: u32,
    pub desired: u32,
    pub ready: u32,
    pub booting: u32,
    pub draining: u32,
    pub nodes: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    // Ordered: at equal times, capacity changes are seen before decisions,
    // and scrapes see the state after everything else at that instant.
    BuildEnd {
        pod: u32,
    },
    NodeReady {
        node: u32,
    },
    PodRunning {
        pod: u32,
        gen: u32,
    },
    PodReady {
        pod: u32,
        gen: u32,
    },
    PodUp {
        pod: u32,
        gen: u32,
    },
    PodGone {
        pod: u32,
        gen: u32,
    },
    NodeGone {
        node: u32,
    },
    Validated {
        node: u32,
    },
    AttemptEnd {
        build: u32,
        id: u64,
        attempt: u32,
        haproxy: bool,
    },
    Arrival,
    Attempt {
        build: u32,
        id: u64,
    },
    BatchClose {
        gen: u32,
    },
    KedaPoll,
    HpaSync,
    DisruptionPoll,
    Scrape,
}

/// The ReplicaSet's deletion order, smallest first: bound, running, ready,
/// fewer pods of the set on its node, ready longer, older.
type DeletionRank = (u8, u8, u8, Reverse<u32>, Reverse<u64>, Reverse<u64>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PodPhase {
    /// Not bound to a node (maybe nominated to one launching).
    Pending,
    /// Bound; image pull and container start.
    Starting,
    /// Worker up, readiness probe not yet passed.
    NotReady,
    /// Ready; waiting for DNS to put it in the LB.
    Ready,
    /// A server slot in HAProxy.
    Serving,
    /// Deleted; finishing its build (preStop drain).
    Terminating,
    Gone,
}

#[derive(Debug, Clone)]
struct Pod {
    phase: PodPhase,
    node: Option<u32>,
    gen: u32,
    created: u64,
    ready_at: u64,
    build: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodePhase {
    Launching,
    Ready,
    Deleting,
    Gone,
}

#[derive(Debug, Clone)]
struct Node {
    phase: NodePhase,
    /// Pods bound or nominated here that are not terminating.
    pods: u32,
    /// Terminating pods still running here.
    draining: u32,
    last_pod_event: u64,
    pulled: bool,
    validating: bool,
    /// The node option (instance type) and the pods it holds.
    option: usize,
    capacity: u32,
}

#[derive(Debug, Clone)]
struct Build {
    id: u64,
    arrival: u64,
    duration: u64,
    attempts: u32,
    queued: bool,
    waiting: bool,
}

pub struct Engine<'a, I: Iterator<Item = Arrival>> {
    cfg: &'a PoolConfig,
    p: &'a Params,
    heap: BinaryHeap<Reverse<(u64, Event, u64)>>,
    seq: u64,
    now: u64,
    horizon: u64,
    arrivals: std::iter::Peekable<I>,
    builds: Vec<Option<Build>>,
    free_builds: Vec<u32>,
    next_id: u64,
    active_builds: u64,
    queue: VecDeque<(u32, u64, u32)>,
    queued_total: u32,
    running: u32,
    waiting: u32,
    pods: Vec<Pod>,
    live_pods: Vec<u32>,
    free_servers: Vec<u32>,
    serving: u32,
    nodes: Vec<Node>,
    live_nodes: Vec<u32>,
    replicas: u32,
    hpa: Hpa,
    scaler: Scaler,
    cached_sessions: f64,
    batch: karpenter::Batch,
    disruption_armed: bool,
    rng_launch: Rng,
    rng_dns: Rng,
    rng_fetch: Rng,
    out: Outcome,
    last_change: u64,
    arrivals_since_scrape: u32,
    store: &'a mut Store,
    series: Series,
    live_by_option: Vec<u32>,
}

struct Series {
    sessions: usize,
    queue: usize,
    active_servers: usize,
    desired: usize,
    current: usize,
    spec_min: usize,
    spec_max: usize,
    deploy_spec: usize,
    available: usize,
    ready: usize,
    errors: Vec<usize>,
    usage_cpu: usize,
    usage_nodes: usize,
    limit_cpu: usize,
    lb_up: usize,
    /// `karpenter_nodepools_usage` (cpu, nodes) and limit of the options
    /// after the first.
    other_nodepools: Vec<(usize, usize, usize)>,
}

/// Runs one pool to completion; the scrape samples go into `store`.
pub fn run<I: Iterator<Item = Arrival>>(
    cfg: &PoolConfig,
    p: &Params,
    arrivals: I,
    horizon: u64,
    seed: u64,
    store: &mut Store,
) -> Outcome {
    let series = register(cfg, store);
    let behavior = Behavior {
        up: Rules {
            window_ms: p.scale_up_window,
            policies: vec![
                Policy {
                    kind: PolicyKind::Pods,
                    value: p.scale_up_pods,
                    period_ms: p.scale_up_period,
                },
                Policy {
                    kind: PolicyKind::Percent,
                    value: p.scale_up_percent,
                    period_ms: p.scale_up_period,
                },
            ],
            select: Select::Max,
            tolerance: p.tolerance_up,
        },
        down: Rules {
            window_ms: cfg.stabilization_ms,
            policies: vec![
                Policy {
                    kind: PolicyKind::Pods,
                    value: cfg.scale_down_pods,
                    period_ms: cfg.scale_down_period_ms,
                },
                Policy {
                    kind: PolicyKind::Percent,
                    value: cfg.scale_down_percent,
                    period_ms: cfg.scale_down_period_ms,
                },
            ],
            select: Select::Max,
            tolerance: p.tolerance_down,
        },
        min: cfg.min.max(1),
        max: cfg.max,
    };
    let mut phase = Rng::new(seed, 10);
    let mut e = Engine {
        cfg,
        p,
        heap: BinaryHeap::new(),
        seq: 0,
        now: 0,
        horizon,
        arrivals: arrivals.peekable(),
        builds: Vec::new(),
        free_builds: Vec::new(),
        next_id: 0,
        active_builds: 0,
        queue: VecDeque::new(),
        queued_total: 0,
        running: 0,
        waiting: 0,
        pods: Vec::new(),
        live_pods: Vec::new(),
        free_servers: Vec::new(),
        serving: 0,
        nodes: Vec::new(),
        live_nodes: Vec::new(),
        replicas: cfg.min,
        hpa: Hpa::new(behavior),
        scaler: Scaler::new(cfg.keda, cfg.fallback, cfg.target),
        cached_sessions: 0.0,
        batch: karpenter::Batch::new(p.batch_idle, p.batch_max),
        disruption_armed: false,
        rng_launch: Rng::new(seed, 3),
        rng_dns: Rng::new(seed, 4),
        rng_fetch: Rng::new(seed, 5),
        out: Outcome::default(),
        last_change: 0,
        arrivals_since_scrape: 0,
        store,
        series,
        live_by_option: vec![0; cfg.node_options.len().max(1)],
    };
    e.out.boots_by_option = vec![0; cfg.node_options.len().max(1)];
    e.out.node_ms_by_option = vec![0; cfg.node_options.len().max(1)];
    e.warm_start();
    let hpa_phase = phase.between(0, p.hpa_period.saturating_sub(1));
    let poll_phase = phase.between(0, cfg.polling_ms.saturating_sub(1));
    let scrape_phase = p
        .scrape_phase
        .unwrap_or_else(|| phase.between(0, cfg.scrape_ms.saturating_sub(1)))
        % cfg.scrape_ms.max(1);
    e.push(hpa_phase, Event::HpaSync);
    e.push(poll_phase, Event::KedaPoll);
    e.push(scrape_phase, Event::Scrape);
    e.arm_disruption();
    if let Some(a) = e.arrivals.peek() {
        let at = a.at;
        e.push(at, Event::Arrival);
    }
    e.run_loop();
    e.finish()
}

fn register(cfg: &PoolConfig, store: &mut Store) -> Series {
    let ns = ("namespace", cfg.namespace.as_str());
    let proxy = ("proxy", cfg.backend.as_str());
    let hpa_name = format!("keda-hpa-{}", cfg.workload);
    let hpa = ("horizontalpodautoscaler", hpa_name.as_str());
    let dep = ("deployment", cfg.workload.as_str());
    let so = ("scaledObject", cfg.workload.as_str());
    let np = ("nodepool", cfg.nodepool.as_str());
    let mut s = |name: &str, labels: &[(&str, &str)]| store.series(name, labels);
    let keda_detail = [
        ns,
        so,
        ("scaler", "metricsAPIScaler"),
        ("metric", "s0-metric-api-haproxy_backend_current_sessions"),
        ("triggerIndex", "0"),
        ("type", "scaledobject"),
    ];
    let mut errors = vec![s("keda_scaled_object_errors_total", &[ns, so])];
    if cfg.keda >= Version::new(2, 14) {
        errors.push(s("keda_scaler_detail_errors_total", &keda_detail));
    }
    if cfg.keda < Version::new(2, 17) {
        errors.push(s("keda_scaler_errors", &keda_detail));
        errors.push(s("keda_scaled_object_errors", &[ns, so]));
        errors.push(s("keda_scaler_errors_total", &[]));
    }
    Series {
        sessions: s("haproxy_backend_current_sessions", &[ns, proxy]),
        queue: s("haproxy_backend_current_queue", &[ns, proxy]),
        active_servers: s("haproxy_backend_active_servers", &[ns, proxy]),
        desired: s(
            "kube_horizontalpodautoscaler_status_desired_replicas",
            &[ns, hpa],
        ),
        current: s(
            "kube_horizontalpodautoscaler_status_current_replicas",
            &[ns, hpa],
        ),
        spec_min: s("kube_horizontalpodautoscaler_spec_min_replicas", &[ns, hpa]),
        spec_max: s("kube_horizontalpodautoscaler_spec_max_replicas", &[ns, hpa]),
        deploy_spec: s("kube_deployment_spec_replicas", &[ns, dep]),
        available: s("kube_deployment_status_replicas_available", &[ns, dep]),
        ready: s("kube_deployment_status_replicas_ready", &[ns, dep]),
        errors,
        usage_cpu: s("karpenter_nodepools_usage", &[np, ("resource_type", "cpu")]),
        usage_nodes: s(
            "karpenter_nodepools_usage",
            &[np, ("resource_type", "nodes")],
        ),
        limit_cpu: s("karpenter_nodepools_limit", &[np, ("resource_type", "cpu")]),
        // The LB is modelled as always up and scraped.
        lb_up: s("up", &[ns, ("job", cfg.lb_job.as_str())]),
        other_nodepools: cfg
            .node_options
            .iter()
            .skip(1)
            .map(|o| {
                let np = ("nodepool", o.nodepool.as_str());
                (
                    s("karpenter_nodepools_usage", &[np, ("resource_type", "cpu")]),
                    s(
                        "karpenter_nodepools_usage",
                        &[np, ("resource_type", "nodes")],
                    ),
                    s("karpenter_nodepools_limit", &[np, ("resource_type", "cpu")]),
                )
            })
            .collect(),
    }
}

impl<I: Iterator<Item = Arrival>> Engine<'_, I> {
    fn push(&mut self, t: u64, ev: Event) {
        self.seq += 1;
        self.heap.push(Reverse((t, ev, self.seq)));
    }

    fn done(&mut self) -> bool {
        self.now >= self.horizon && self.active_builds == 0 && self.arrivals.peek().is_none()
    }

    fn warm_start(&mut self) {
        let nodes = self.cfg.min.div_ceil(self.cfg.pods_per_node.max(1));
        for _ in 0..nodes {
            let n = self.new_node(0, 0);
            self.nodes[n as usize].phase = NodePhase::Ready;
            self.nodes[n as usize].pulled = true;
            self.out.cold_node_boots -= 1;
            self.out.boots_by_option[0] -= 1;
        }
        for _ in 0..self.cfg.min {
            let pod = self.new_pod();
            let node = self
                .live_nodes
                .iter()
                .copied()
                .find(|&n| self.nodes[n as usize].pods < self.cfg.pods_per_node);
            if let Some(n) = node {
                self.nodes[n as usize].pods += 1;
                let pd = &mut self.pods[pod as usize];
                pd.node = Some(n);
                pd.phase = PodPhase::Serving;
                self.serving += 1;
                self.free_servers.push(pod);
            }
            self.out.cold_pod_starts -= 1;
        }
    }

    fn run_loop(&mut self) {
        while let Some(Reverse((t, ev, _))) = self.heap.pop() {
            // Past the horizon with every build served, what is left
            // (timers of finished attempts, idle scale-down) lies after the
            // run: counting it would stretch pod-hours, time at max and the
            // alert window over time no scrape covers.
            if t > self.horizon && self.active_builds == 0 && self.arrivals.peek().is_none() {
                break;
            }
            self.advance(t);
            match ev {
                Event::Arrival => self.arrival(),
                Event::Attempt { build, id } => self.attempt(build, id),
                Event::AttemptEnd {
                    build,
                    id,
                    attempt,
                    haproxy,
                } => self.attempt_end(build, id, attempt, haproxy),
                Event::BuildEnd { pod } => self.build_end(pod),
                Event::HpaSync => self.hpa_sync(),
                Event::KedaPoll => self.keda_poll(),
                Event::PodRunning { pod, gen } => self.pod_running(pod, gen),
                Event::PodReady { pod, gen } => self.pod_ready(pod, gen),
                Event::PodUp { pod, gen } => self.pod_up(pod, gen),
                Event::PodGone { pod, gen } => self.pod_gone(pod, gen),
                Event::BatchClose { gen } => self.batch_close(gen),
                Event::NodeReady { node } => self.node_ready(node),
                Event::DisruptionPoll => self.disruption_poll(),
                Event::Validated { node } => self.validated(node),
                Event::NodeGone { node } => self.node_gone(node),
                Event::Scrape => self.scrape(),
            }
        }
    }

    /// Moves the clock, integrating the time-weighted quantities.
    fn advance(&mut self, t: u64) {
        let dt = t.saturating_sub(self.last_change);
        if dt > 0 {
            self.out.waiting_area += self.waiting as u128 * dt as u128;
            let pods = self.live_pods.len() as u128;
            self.out.pod_ms += pods * dt as u128;
            self.out.node_ms += self.live_nodes.len() as u128 * dt as u128;
            for (ms, &n) in self
                .out
                .node_ms_by_option
                .iter_mut()
                .zip(&self.live_by_option)
            {
                *ms += n as u128 * dt as u128;
            }
            if self.replicas >= self.cfg.max {
                self.out.time_at_max_ms += dt;
            }
            self.last_change = t;
        }
        self.now = t;
    }

    // ---- builds and the client -------------------------------------------

    fn arrival(&mut self) {
        let Some(a) = self.arrivals.next() else {
            return;
        };
        if let Some(next) = self.arrivals.peek() {
            let at = next.at.max(self.now);
            self.push(at, Event::Arrival);
        }
        self.arrivals_since_scrape += 1;
        self.out.builds += 1;
        self.next_id += 1;
        let b = Build {
            id: self.next_id,
            arrival: self.now,
            duration: a.duration,
            attempts: 0,
            queued: false,
            waiting: true,
        };
        let slot = match self.free_builds.pop() {
            Some(s) => {
                self.builds[s as usize] = Some(b);
                s
            }
            None => {
                self.builds.push(Some(b));
                (self.builds.len() - 1) as u32
            }
        };
        self.active_builds += 1;
        self.waiting += 1;
        let id = self.next_id;
        self.attempt(slot, id);
    }

    fn attempt(&mut self, slot: u32, id: u64) {
        let Some(b) = self.builds[slot as usize].as_mut().filter(|b| b.id == id) else {
            return;
        };
        b.attempts += 1;
        let attempt = b.attempts;
        if self.serving == 0 {
            // No server resolved: HAProxy closes the connection at once.
            self.attempt_end(slot, id, attempt, false);
            return;
        }
        if let Some(pod) = self.take_free_server() {
            self.start_build(slot, pod);
            return;
        }
        if let Some(b) = self.builds[slot as usize].as_mut() {
            b.queued = true;
        }
        self.queue.push_back((slot, id, attempt));
        self.queued_total += 1;
        let q = self.cfg.queue_timeout_ms;
        let a = self.p.attempt_timeout;
        let end = match (q, a) {
            (0, 0) => None,
            (0, a) => Some((a, false)),
            (q, 0) => Some((q, true)),
            (q, a) => Some(if q <= a { (q, true) } else { (a, false) }),
        };
        if let Some((after, haproxy)) = end {
            self.push(
                self.now + after,
                Event::AttemptEnd {
                    build: slot,
                    id,
                    attempt,
                    haproxy,
                },
            );
        }
    }

    fn attempt_end(&mut self, slot: u32, id: u64, attempt: u32, haproxy: bool) {
        let abort = self.p.abortonclose || haproxy;
        let Some(b) = self.builds[slot as usize].as_mut().filter(|b| b.id == id) else {
            return;
        };
        if b.attempts != attempt || !b.waiting {
            return;
        }
        if b.queued {
            b.queued = false;
            if haproxy {
                self.out.queue_timeouts += 1;
            }
            if abort {
                self.queued_total -= 1;
            }
        }
        if b.attempts >= self.p.attempts {
            self.out.failed += 1;
            self.out.attempts.push(b.attempts);
            self.out.waiting_total += (self.now - b.arrival) as u128;
            self.waiting -= 1;
            self.release_build(slot);
            return;
        }
        self.push(
            self.now + self.p.retry_delay,
            Event::Attempt { build: slot, id },
        );
    }

    fn release_build(&mut self, slot: u32) {
        self.builds[slot as usize] = None;
        self.free_builds.push(slot);
        self.active_builds -= 1;
    }

    fn take_free_server(&mut self) -> Option<u32> {
        while let Some(pod) = self.free_servers.pop() {
            let p = &self.pods[pod as usize];
            if p.phase == PodPhase::Serving && p.build.is_none() {
                return Some(pod);
            }
        }
        None
    }

    fn start_build(&mut self, slot: u32, pod: u32) {
        let now = self.now;
        let Some(b) = self.builds[slot as usize].as_mut() else {
            return;
        };
        b.waiting = false;
        let wait = now - b.arrival;
        let (attempts, duration) = (b.attempts, b.duration);
        self.waiting -= 1;
        self.out.waits.push(wait);
        self.out.waiting_total += wait as u128;
        if wait > 0 {
            self.out.waited += 1;
        }
        self.out.attempts.push(attempts);
        self.running += 1;
        self.pods[pod as usize].build = Some(slot);
        self.push(now + duration, Event::BuildEnd { pod });
    }

    fn build_end(&mut self, pod: u32) {
        let Some(slot) = self.pods[pod as usize].build.take() else {
            return;
        };
        self.running -= 1;
        self.release_build(slot);
        match self.pods[pod as usize].phase {
            PodPhase::Terminating => {
                let gen = self.pods[pod as usize].gen;
                self.push(self.now + self.p.drain_idle, Event::PodGone { pod, gen });
            }
            PodPhase::Serving => self.serve_next(pod),
            _ => {}
        }
    }

    /// A free server takes the oldest connection still queued.
    fn serve_next(&mut self, pod: u32) {
        while let Some((slot, id, attempt)) = self.queue.pop_front() {
            let live = self.builds[slot as usize]
                .as_ref()
                .is_some_and(|b| b.id == id && b.attempts == attempt && b.queued);
            if !live {
                // A client that left without abortonclose still held a place.
                let counted = self.builds[slot as usize]
                    .as_ref()
                    .is_none_or(|b| b.id != id || b.attempts != attempt || !b.queued);
                if counted && !self.p.abortonclose && self.queued_total > self.queued_live() {
                    self.queued_total -= 1;
                }
                continue;
            }
            if let Some(b) = self.builds[slot as usize].as_mut() {
                b.queued = false;
            }
            self.queued_total -= 1;
            self.start_build(slot, pod);
            return;
        }
        self.free_servers.push(pod);
    }

    fn queued_live(&self) -> u32 {
        self.queue
            .iter()
            .filter(|&&(slot, id, attempt)| {
                self.builds[slot as usize]
                    .as_ref()
                    .is_some_and(|b| b.id == id && b.attempts == attempt && b.queued)
            })
            .count() as u32
    }

    fn sessions(&self) -> u32 {
        self.running + self.queued_total
    }

    // ---- KEDA and the HPA -------------------------------------------------

    fn metric_readable(&mut self) -> bool {
        let now = self.now;
        if self.p.outages.iter().any(|&(s, e)| now >= s && now < e) {
            return false;
        }
        !(self.p.fetch_failure > 0.0 && self.rng_fetch.unit() < self.p.fetch_failure)
    }

    fn hpa_sync(&mut self) {
        let live = self.sessions() as f64;
        let value = if self.metric_readable() {
            Some(if self.p.use_cached_metrics {
                self.cached_sessions
            } else {
                live
            })
        } else {
            None
        };
        let usage = match self.scaler.for_hpa(value) {
            Fetched::Value(v) => Some(v),
            Fetched::Error => None,
        };
        let status = self.active_pods();
        let desired = self
            .hpa
            .sync(self.now, usage, self.cfg.target, self.replicas, status);
        self.set_replicas(desired);
        let jitter = self.rng_fetch.between(0, self.p.hpa_jitter);
        if !self.done() {
            self.push(self.now + self.p.hpa_period + jitter, Event::HpaSync);
        }
    }

    fn keda_poll(&mut self) {
        let value = if self.metric_readable() {
            Some(self.sessions() as f64)
        } else {
            None
        };
        if let Some(v) = value {
            self.cached_sessions = v;
        }
        match self.scaler.poll(value) {
            PollAction::ScaleTo(n) => self.set_replicas(n),
            PollAction::None => {
                let active = value.is_some_and(|v| v > 0.0);
                if active && self.replicas == 0 {
                    self.set_replicas(self.cfg.min.max(1));
                } else if self.replicas < self.cfg.min {
                    self.set_replicas(self.cfg.min);
                }
            }
        }
        if !self.done() {
            self.push(self.now + self.cfg.polling_ms, Event::KedaPoll);
        }
    }

    fn active_pods(&self) -> u32 {
        self.live_pods
            .iter()
            .filter(|&&p| {
                !matches!(
                    self.pods[p as usize].phase,
                    PodPhase::Terminating | PodPhase::Gone
                )
            })
            .count() as u32
    }

    /// The Deployment's spec.replicas changed: the ReplicaSet creates or deletes pods.
    fn set_replicas(&mut self, n: u32) {
        self.replicas = n;
        let active = self.active_pods();
        if n > active {
            for _ in active..n {
                let pod = self.new_pod();
                self.schedule(pod);
            }
            if self.pending_unplaced() > 0 {
                self.trigger_batch();
            }
        } else if n < active {
            self.scale_down(active - n);
        }
    }

    // ---- pods ---------------------------------------------------------------

    fn new_pod(&mut self) -> u32 {
        self.pods.push(Pod {
            phase: PodPhase::Pending,
            node: None,
            gen: 0,
            created: self.now,
            ready_at: 0,
            build: None,
        });
        let id = (self.pods.len() - 1) as u32;
        self.live_pods.push(id);
        self.out.cold_pod_starts += 1;
        let live = self.live_pods.len() as u32;
        self.out.peak_pods = self.out.peak_pods.max(live);
        id
    }

    /// kube-scheduler: bind to a Ready node with room (least allocated
    /// first), else leave Pending for Karpenter.
    fn schedule(&mut self, pod: u32) -> bool {
        let best = self
            .live_nodes
            .iter()
            .copied()
            .filter(|&n| {
                let node = &self.nodes[n as usize];
                node.phase == NodePhase::Ready && node.pods < node.capacity && !node.validating
            })
            .min_by_key(|&n| (self.nodes[n as usize].pods, n));
        match best {
            Some(n) => {
                self.bind(pod, n);
                true
            }
            None => false,
        }
    }

    fn bind(&mut self, pod: u32, node: u32) {
        let now = self.now;
        let n = &mut self.nodes[node as usize];
        n.pods += 1;
        n.last_pod_event = now;
        let pull = if n.pulled { 0 } else { self.p.image_pull };
        n.pulled = true;
        let p = &mut self.pods[pod as usize];
        p.node = Some(node);
        p.phase = PodPhase::Starting;
        let gen = p.gen;
        self.push(now + pull, Event::PodRunning { pod, gen });
    }

    fn pod_running(&mut self, pod: u32, gen: u32) {
        let p = &mut self.pods[pod as usize];
        if p.gen != gen || p.phase != PodPhase::Starting {
            return;
        }
        p.phase = PodPhase::NotReady;
        // The first probe passing after the worker is up: delay + k·period.
        let up = self.p.startup;
        let delay = self.p.readiness_delay;
        let period = self.p.readiness_period.max(1);
        let wait = if up <= delay {
            delay
        } else {
            delay + (up - delay).div_ceil(period) * period
        };
        self.push(self.now + wait, Event::PodReady { pod, gen });
    }

    fn pod_ready(&mut self, pod: u32, gen: u32) {
        let p = &mut self.pods[pod as usize];
        if p.gen != gen || p.phase != PodPhase::NotReady {
            return;
        }
        p.phase = PodPhase::Ready;
        p.ready_at = self.now;
        let dns = self.rng_dns.between(self.p.dns_min, self.p.dns_max);
        self.push(self.now + dns, Event::PodUp { pod, gen });
    }

    fn pod_up(&mut self, pod: u32, gen: u32) {
        let p = &mut self.pods[pod as usize];
        if p.gen != gen || p.phase != PodPhase::Ready {
            return;
        }
        if self.serving >= self.cfg.slots {
            // No server-template slot left: the pod idles outside the LB.
            return;
        }
        p.phase = PodPhase::Serving;
        self.serving += 1;
        self.serve_next(pod);
    }

    /// Pods deleted by ReplicaSet rank: unbound, then starting, then not
    /// ready, then those on nodes with more of this ReplicaSet's pods, then
    /// most recently ready, then newest. Busy or idle does not matter.
    fn scale_down(&mut self, count: u32) {
        let mut on_node = vec![0u32; self.nodes.len()];
        for &p in &self.live_pods {
            let pod = &self.pods[p as usize];
            if let (Some(n), false) = (pod.node, pod.phase == PodPhase::Terminating) {
                if pod.phase != PodPhase::Pending {
                    on_node[n as usize] += 1;
                }
            }
        }
        let mut ranked: Vec<(DeletionRank, u32)> = self
            .live_pods
            .iter()
            .copied()
            .filter(|&p| {
                !matches!(
                    self.pods[p as usize].phase,
                    PodPhase::Terminating | PodPhase::Gone
                )
            })
            .map(|p| {
                let pod = &self.pods[p as usize];
                let unbound = u8::from(pod.phase != PodPhase::Pending);
                let running =
                    u8::from(!matches!(pod.phase, PodPhase::Pending | PodPhase::Starting));
                let ready = u8::from(matches!(pod.phase, PodPhase::Ready | PodPhase::Serving));
                let crowd = pod
                    .node
                    .filter(|_| pod.phase != PodPhase::Pending)
                    .map(|n| on_node[n as usize])
                    .unwrap_or(0);
                (
                    (
                        unbound,
                        running,
                        ready,
                        Reverse(crowd),
                        Reverse(pod.ready_at),
                        Reverse(pod.created),
                    ),
                    p,
                )
            })
            .collect();
        ranked.sort();
        for &(_, pod) in ranked.iter().take(count as usize) {
            self.delete_pod(pod);
        }
    }

    fn delete_pod(&mut self, pod: u32) {
        let now = self.now;
        let (phase, node, busy) = {
            let p = &mut self.pods[pod as usize];
            p.gen += 1;
            (p.phase, p.node, p.build.is_some())
        };
        if let Some(n) = node {
            let n = &mut self.nodes[n as usize];
            n.pods -= 1;
            n.last_pod_event = now;
        }
        self.arm_disruption();
        if phase == PodPhase::Serving {
            self.serving -= 1;
        }
        match phase {
            PodPhase::Pending | PodPhase::Starting | PodPhase::NotReady => {
                self.pods[pod as usize].phase = PodPhase::Gone;
                self.forget_pod(pod);
            }
            _ => {
                if let Some(n) = node {
                    self.nodes[n as usize].draining += 1;
                }
                let p = &mut self.pods[pod as usize];
                p.phase = PodPhase::Terminating;
                if !busy {
                    let gen = p.gen;
                    self.push(now + self.p.drain_idle, Event::PodGone { pod, gen });
                }
            }
        }
    }

    fn pod_gone(&mut self, pod: u32, gen: u32) {
        let p = &mut self.pods[pod as usize];
        if p.gen != gen || p.phase != PodPhase::Terminating || p.build.is_some() {
            return;
        }
        p.phase = PodPhase::Gone;
        if let Some(n) = p.node {
            let node = &mut self.nodes[n as usize];
            node.draining -= 1;
            node.last_pod_event = self.now;
            if node.phase == NodePhase::Deleting && node.draining == 0 && node.pods == 0 {
                self.push(self.now + self.p.deletion, Event::NodeGone { node: n });
            }
        }
        self.forget_pod(pod);
    }

    fn forget_pod(&mut self, pod: u32) {
        if let Some(i) = self.live_pods.iter().position(|&p| p == pod) {
            self.live_pods.swap_remove(i);
        }
    }

    // ---- Karpenter ------------------------------------------------------------

    fn pending_unplaced(&self) -> u32 {
        self.live_pods
            .iter()
            .filter(|&&p| {
                let pod = &self.pods[p as usize];
                pod.phase == PodPhase::Pending && pod.node.is_none()
            })
            .count() as u32
    }

    fn trigger_batch(&mut self) {
        let (close, gen) = self.batch.pending(self.now);
        self.push(close, Event::BatchClose { gen });
    }

    fn batch_close(&mut self, gen: u32) {
        if self.batch.closes(self.now, gen) {
            self.provision();
        }
    }

    /// One scheduling round: nominate pending pods to in-flight nodes with
    /// room, then launch nodes of the type Karpenter picks (`karpenter::choose`)
    /// while the NodePools' limits allow.
    fn provision(&mut self) {
        let unplaced: Vec<u32> = self
            .live_pods
            .iter()
            .copied()
            .filter(|&p| {
                let pod = &self.pods[p as usize];
                pod.phase == PodPhase::Pending && pod.node.is_none()
            })
            .collect();
        let mut rest = Vec::new();
        for pod in unplaced {
            if self.schedule(pod) {
                continue;
            }
            let launching = self.live_nodes.iter().copied().find(|&n| {
                let node = &self.nodes[n as usize];
                node.phase == NodePhase::Launching && node.pods < node.capacity
            });
            match launching {
                Some(n) => {
                    self.nodes[n as usize].pods += 1;
                    self.pods[pod as usize].node = Some(n);
                }
                None => rest.push(pod),
            }
        }
        let mut rest = rest.as_slice();
        while let Some(launch) = karpenter::choose(
            &self.cfg.node_options,
            &self.live_by_option,
            rest.len() as u32,
        ) {
            let (chunk, after) = rest.split_at((launch.pods as usize).min(rest.len()));
            rest = after;
            let n = self.new_node(self.now, launch.option);
            let latency = self
                .rng_launch
                .lognormal(self.p.launch_median as f64, self.p.launch_p95 as f64)
                .round() as u64
                + self.p.node_init;
            self.push(self.now + latency, Event::NodeReady { node: n });
            for &pod in chunk {
                self.nodes[n as usize].pods += 1;
                self.pods[pod as usize].node = Some(n);
            }
        }
    }

    fn new_node(&mut self, now: u64, option: usize) -> u32 {
        let capacity = self
            .cfg
            .node_options
            .get(option)
            .map_or(self.cfg.pods_per_node, |o| o.pods_per_node)
            .max(1);
        if let Some(n) = self.live_by_option.get_mut(option) {
            *n += 1;
        }
        if let Some(n) = self.out.boots_by_option.get_mut(option) {
            *n += 1;
        }
        self.nodes.push(Node {
            phase: NodePhase::Launching,
            pods: 0,
            draining: 0,
            last_pod_event: now,
            pulled: false,
            validating: false,
            option,
            capacity,
        });
        let id = (self.nodes.len() - 1) as u32;
        self.live_nodes.push(id);
        self.out.cold_node_boots += 1;
        self.out.peak_nodes = self.out.peak_nodes.max(self.live_nodes.len() as u32);
        id
    }

    fn node_ready(&mut self, node: u32) {
        let now = self.now;
        {
            let n = &mut self.nodes[node as usize];
            if n.phase != NodePhase::Launching {
                return;
            }
            n.phase = NodePhase::Ready;
            n.last_pod_event = now;
        }
        let nominated: Vec<u32> = self
            .live_pods
            .iter()
            .copied()
            .filter(|&p| {
                let pod = &self.pods[p as usize];
                pod.phase == PodPhase::Pending && pod.node == Some(node)
            })
            .collect();
        for pod in nominated {
            self.nodes[node as usize].pods -= 1;
            self.bind(pod, node);
        }
        self.arm_disruption();
    }

    fn disruption_poll(&mut self) {
        let now = self.now;
        let busy_budget = self
            .live_nodes
            .iter()
            .filter(|&&n| {
                let node = &self.nodes[n as usize];
                node.phase != NodePhase::Ready || node.validating
            })
            .count() as u32;
        let mut allowed = self.p.budget_nodes.saturating_sub(busy_budget);
        let mut candidates: Vec<(u64, u32)> = self
            .live_nodes
            .iter()
            .copied()
            .filter(|&n| {
                let node = &self.nodes[n as usize];
                node.phase == NodePhase::Ready
                    && !node.validating
                    && node.pods == 0
                    && now.saturating_sub(node.last_pod_event) >= self.p.consolidate_after
            })
            .map(|n| (self.nodes[n as usize].last_pod_event, n))
            .collect();
        candidates.sort();
        for (_, n) in candidates {
            if allowed == 0 {
                break;
            }
            allowed -= 1;
            self.nodes[n as usize].validating = true;
            self.push(now + self.p.validation, Event::Validated { node: n });
        }
        self.disruption_armed = false;
        self.arm_disruption();
    }

    /// The disruption controller polls every 10 s; polls while no node is
    /// empty change nothing, so they are only scheduled while one is.
    fn arm_disruption(&mut self) {
        if self.disruption_armed || self.done() {
            return;
        }
        let empty = self.live_nodes.iter().any(|&n| {
            let node = &self.nodes[n as usize];
            node.phase == NodePhase::Ready && node.pods == 0
        });
        if empty {
            self.disruption_armed = true;
            let period = self.p.disruption_poll.max(1);
            let next = (self.now / period + 1) * period;
            self.push(next, Event::DisruptionPoll);
        }
    }

    fn validated(&mut self, node: u32) {
        let now = self.now;
        let n = &mut self.nodes[node as usize];
        n.validating = false;
        let still = n.phase == NodePhase::Ready
            && n.pods == 0
            && now.saturating_sub(n.last_pod_event) >= self.p.consolidate_after;
        if !still {
            return;
        }
        n.phase = NodePhase::Deleting;
        if n.draining == 0 {
            self.push(now + self.p.deletion, Event::NodeGone { node });
        }
    }

    fn node_gone(&mut self, node: u32) {
        let n = &mut self.nodes[node as usize];
        if n.phase != NodePhase::Deleting {
            return;
        }
        n.phase = NodePhase::Gone;
        let option = n.option;
        if let Some(c) = self.live_by_option.get_mut(option) {
            *c -= 1;
        }
        if let Some(i) = self.live_nodes.iter().position(|&x| x == node) {
            self.live_nodes.swap_remove(i);
        }
        if self.pending_unplaced() > 0 {
            self.trigger_batch();
        }
    }

    // ---- Prometheus -----------------------------------------------------------

    fn scrape(&mut self) {
        let t = self.now as i64;
        let s = &self.series;
        let mut booting = 0;
        let mut ready = 0;
        let mut draining = 0;
        for &p in &self.live_pods {
            match self.pods[p as usize].phase {
                PodPhase::Ready | PodPhase::Serving => ready += 1,
                PodPhase::Terminating => draining += 1,
                PodPhase::Gone => {}
                _ => booting += 1,
            }
        }
        let nodes = self
            .live_nodes
            .iter()
            .filter(|&&n| self.nodes[n as usize].phase != NodePhase::Gone)
            .count() as u32;
        let sessions = self.sessions();
        let queue = self.queued_total;
        let active = self.active_pods();
        let first_nodes = if self.cfg.node_options.len() > 1 {
            self.live_by_option[0]
        } else {
            nodes
        };
        let values = [
            (s.sessions, sessions as f64),
            (s.queue, queue as f64),
            (s.active_servers, self.serving as f64),
            (s.desired, self.replicas as f64),
            (s.current, active as f64),
            (s.spec_min, self.cfg.min.max(1) as f64),
            (s.spec_max, self.cfg.max as f64),
            (s.deploy_spec, self.replicas as f64),
            (s.available, ready as f64),
            (s.ready, ready as f64),
            (s.usage_cpu, first_nodes as f64 * self.cfg.node_vcpu as f64),
            (s.usage_nodes, first_nodes as f64),
            (
                s.limit_cpu,
                self.cfg.max_nodes as f64 * self.cfg.node_vcpu as f64,
            ),
            (s.lb_up, 1.0),
        ];
        for (i, v) in values {
            self.store.push(i, t, v);
        }
        for (k, &(cpu, count, limit)) in s.other_nodepools.iter().enumerate() {
            let o = &self.cfg.node_options[k + 1];
            let n = self.live_by_option[k + 1] as f64;
            self.store.push(cpu, t, n * o.vcpu as f64);
            self.store.push(count, t, n);
            self.store.push(limit, t, o.limit_cpu as f64);
        }
        let errors = self.scaler.errors_total as f64;
        for &i in &s.errors {
            self.store.push(i, t, errors);
        }
        self.out.timeline.push(Sample {
            t: self.now,
            arrivals: std::mem::take(&mut self.arrivals_since_scrape),
            waiting: self.waiting,
            sessions,
            desired: self.replicas,
            ready,
            booting,
            draining,
            nodes,
        });
        if !self.done() {
            self.push(self.now + self.cfg.scrape_ms, Event::Scrape);
        }
    }

    fn finish(mut self) -> Outcome {
        self.out.end_ms = self.now.max(self.horizon);
        let end = self.out.end_ms;
        self.advance(end);
        self.out.fallback_episodes = self.scaler.fallback_episodes;
        self.out
    }
}
