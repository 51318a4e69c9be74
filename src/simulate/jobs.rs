//! The event loop for one jobs pool (a KEDA ScaledJob). Builds wait in the
//! CI system's queue, not the LB: an agent that is up and idle takes the
//! oldest. KEDA's polling loop reads the queue through Prometheus (the
//! trigger's query sees the last scrape) and creates Jobs by the ScaledJob's
//! scaling strategy; each Job's pod is scheduled on a node (Karpenter
//! launches nodes as for a service pool), pulls its image, starts its agent,
//! runs one build and exits (`--disconnect-after-job`). An agent that finds
//! no build waits idle until the Job's `activeDeadlineSeconds`. Integer
//! time; ties break by event class and then insertion order.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use super::engine::{Outcome, Sample};
use super::karpenter::{self, NodeOption};
use super::keda::jobs_to_create;
use super::params::Params;
use super::prometheus::Store;
use super::rng::Rng;
use super::workload::Arrival;
use crate::spec::ScalingStrategy;

/// A stalled pool (max 0, or every NodePool at its limit) is given up on
/// this long after the horizon; builds still queued then count as failed.
const GIVE_UP_AFTER_MS: u64 = 7 * 86_400_000;

/// Everything the loop needs to know about one jobs pool, from the Model.
#[derive(Debug, Clone)]
pub struct JobsConfig {
    pub cluster: String,
    pub pool: String,
    pub namespace: String,
    /// The ScaledJob's name.
    pub workload: String,
    pub min: u32,
    pub max: u32,
    pub strategy: ScalingStrategy,
    /// Queue units per Job (the trigger's threshold).
    pub target: f64,
    pub polling_ms: u64,
    pub scrape_ms: u64,
    /// The Job's activeDeadlineSeconds, in ms.
    pub active_deadline_ms: u64,
    pub node_options: Vec<NodeOption>,
    /// The series the trigger's query reads, when it names exactly one:
    /// its name and its `=` matchers. The simulated queue is stored there,
    /// so the generated pending-jobs alert reads it.
    pub queue_series: Option<(String, Vec<(String, String)>)>,
    /// The scrape job of the cluster's LB exporter: modelled up, as for a
    /// service pool, so the cluster's LB-down alert stays quiet.
    pub lb_job: String,
}

/// A polling tick of the ScaledJob that created Jobs: what KEDA saw and
/// how many it created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    pub t: u64,
    /// The queue length the query returned (the last scrape).
    pub queue: u32,
    /// Jobs not finished, and those of them without a running pod.
    pub running: u32,
    pub pending: u32,
    pub created: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    // At equal times capacity changes first, decisions next, scrapes last.
    BuildEnd { job: u32 },
    Deadline { job: u32 },
    NodeReady { node: u32 },
    PodRunning { job: u32 },
    AgentUp { job: u32 },
    NodeGone { node: u32 },
    Validated { node: u32 },
    Arrival,
    BatchClose { gen: u32 },
    KedaPoll,
    DisruptionPoll,
    Scrape,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not bound to a node (maybe nominated to one launching).
    Unbound,
    /// Bound; image pull. The pod is not Running yet: KEDA counts the Job pending.
    Pulling,
    /// Container running; the agent registers after `startup`.
    Starting,
    Idle,
    Busy,
    Done,
}

#[derive(Debug, Clone)]
struct Job {
    phase: Phase,
    node: Option<u32>,
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
    /// Job pods bound or nominated here that have not finished.
    pods: u32,
    capacity: u32,
    option: usize,
    last_pod_event: u64,
    /// When the agent image is on the node: the first pod bound starts the
    /// pull, pods bound meanwhile wait for the same pull.
    pulled_at: Option<u64>,
    validating: bool,
}

struct Loop<'a, I: Iterator<Item = Arrival>> {
    cfg: &'a JobsConfig,
    p: &'a Params,
    heap: BinaryHeap<Reverse<(u64, Event, u64)>>,
    seq: u64,
    now: u64,
    horizon: u64,
    arrivals: std::iter::Peekable<I>,
    /// The CI system's queue: (arrival, duration), oldest first.
    queue: VecDeque<(u64, u64)>,
    busy: u32,
    jobs: Vec<Job>,
    live_jobs: Vec<u32>,
    idle: Vec<u32>,
    nodes: Vec<Node>,
    live_nodes: Vec<u32>,
    live_by_option: Vec<u32>,
    batch: karpenter::Batch,
    disruption_armed: bool,
    scraped_queue: u32,
    errors_total: u64,
    rng_launch: Rng,
    rng_fetch: Rng,
    out: Outcome,
    last_change: u64,
    arrivals_since_scrape: u32,
    store: &'a mut Store,
    series: Series,
}

struct Series {
    queue: Option<usize>,
    errors: Vec<usize>,
    lb_up: usize,
    /// Per node option: usage cpu, usage nodes, limit cpu.
    nodepools: Vec<(usize, usize, usize)>,
}

/// Runs one jobs pool to completion; the scrape samples go into `store`.
pub fn run<I: Iterator<Item = Arrival>>(
    cfg: &JobsConfig,
    p: &Params,
    arrivals: I,
    horizon: u64,
    seed: u64,
    store: &mut Store,
) -> Outcome {
    let series = register(cfg, store);
    let options = cfg.node_options.len();
    let mut l = Loop {
        cfg,
        p,
        heap: BinaryHeap::new(),
        seq: 0,
        now: 0,
        horizon,
        arrivals: arrivals.peekable(),
        queue: VecDeque::new(),
        busy: 0,
        jobs: Vec::new(),
        live_jobs: Vec::new(),
        idle: Vec::new(),
        nodes: Vec::new(),
        live_nodes: Vec::new(),
        live_by_option: vec![0; options],
        batch: karpenter::Batch::new(p.batch_idle, p.batch_max),
        disruption_armed: false,
        scraped_queue: 0,
        errors_total: 0,
        rng_launch: Rng::new(seed, 3),
        rng_fetch: Rng::new(seed, 5),
        out: Outcome {
            boots_by_option: vec![0; options],
            node_ms_by_option: vec![0; options],
            ..Outcome::default()
        },
        last_change: 0,
        arrivals_since_scrape: 0,
        store,
        series,
    };
    let mut phase = Rng::new(seed, 10);
    let poll_phase = phase.between(0, cfg.polling_ms.saturating_sub(1));
    let scrape_phase = p
        .scrape_phase
        .unwrap_or_else(|| phase.between(0, cfg.scrape_ms.saturating_sub(1)))
        % cfg.scrape_ms.max(1);
    l.push(poll_phase, Event::KedaPoll);
    l.push(scrape_phase, Event::Scrape);
    if let Some(a) = l.arrivals.peek() {
        let at = a.at;
        l.push(at, Event::Arrival);
    }
    l.run_loop();
    l.finish()
}

fn register(cfg: &JobsConfig, store: &mut Store) -> Series {
    let ns = ("namespace", cfg.namespace.as_str());
    let sj = ("scaledJob", cfg.workload.as_str());
    let queue = cfg.queue_series.as_ref().map(|(name, labels)| {
        let labels: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        store.series(name, &labels)
    });
    let detail = [
        ns,
        ("scaledObject", cfg.workload.as_str()),
        ("scaler", "prometheusScaler"),
        ("metric", "s0-prometheus"),
        ("triggerIndex", "0"),
        ("type", "scaledjob"),
    ];
    let errors = vec![
        store.series("keda_scaled_job_errors_total", &[ns, sj]),
        store.series("keda_scaler_detail_errors_total", &detail),
    ];
    let nodepools = cfg
        .node_options
        .iter()
        .map(|o| {
            let np = ("nodepool", o.nodepool.as_str());
            (
                store.series("karpenter_nodepools_usage", &[np, ("resource_type", "cpu")]),
                store.series(
                    "karpenter_nodepools_usage",
                    &[np, ("resource_type", "nodes")],
                ),
                store.series("karpenter_nodepools_limit", &[np, ("resource_type", "cpu")]),
            )
        })
        .collect();
    Series {
        queue,
        errors,
        lb_up: store.series("up", &[ns, ("job", cfg.lb_job.as_str())]),
        nodepools,
    }
}

impl<I: Iterator<Item = Arrival>> Loop<'_, I> {
    fn push(&mut self, t: u64, ev: Event) {
        self.seq += 1;
        self.heap.push(Reverse((t, ev, self.seq)));
    }

    fn done(&mut self) -> bool {
        self.now >= self.horizon && self.finished()
    }

    /// Every build arrived and served.
    fn finished(&mut self) -> bool {
        self.queue.is_empty() && self.busy == 0 && self.arrivals.peek().is_none()
    }

    fn run_loop(&mut self) {
        while let Some(Reverse((t, ev, _))) = self.heap.pop() {
            // The run ends with its last build: idle agents waiting for
            // their deadline after it are not counted.
            if self.done() || (t > self.horizon && self.finished()) {
                break;
            }
            if t > self.horizon.saturating_add(GIVE_UP_AFTER_MS) {
                self.give_up();
                break;
            }
            self.advance(t);
            match ev {
                Event::Arrival => self.arrival(),
                Event::BuildEnd { job } => self.build_end(job),
                Event::Deadline { job } => self.deadline(job),
                Event::NodeReady { node } => self.node_ready(node),
                Event::PodRunning { job } => self.pod_running(job),
                Event::AgentUp { job } => self.agent_up(job),
                Event::NodeGone { node } => self.node_gone(node),
                Event::Validated { node } => self.validated(node),
                Event::BatchClose { gen } => self.batch_close(gen),
                Event::KedaPoll => self.keda_poll(),
                Event::DisruptionPoll => self.disruption_poll(),
                Event::Scrape => self.scrape(),
            }
        }
    }

    /// Builds still queued when the run is given up on never ran.
    fn give_up(&mut self) {
        let end = self.horizon.saturating_add(GIVE_UP_AFTER_MS);
        self.advance(end);
        while let Some((arrival, _)) = self.queue.pop_front() {
            self.out.failed += 1;
            self.out.attempts.push(1);
            self.out.waiting_total += (self.now - arrival) as u128;
        }
    }

    fn advance(&mut self, t: u64) {
        let dt = t.saturating_sub(self.last_change);
        if dt > 0 {
            let dt128 = dt as u128;
            self.out.waiting_area += self.queue.len() as u128 * dt128;
            self.out.pod_ms += self.live_jobs.len() as u128 * dt128;
            self.out.node_ms += self.live_nodes.len() as u128 * dt128;
            for (ms, &n) in self
                .out
                .node_ms_by_option
                .iter_mut()
                .zip(&self.live_by_option)
            {
                *ms += n as u128 * dt128;
            }
            if self.live_jobs.len() as u32 >= self.cfg.max {
                self.out.time_at_max_ms += dt;
            }
            self.last_change = t;
        }
        self.now = t;
    }

    // ---- builds and agents -------------------------------------------------

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
        self.queue.push_back((self.now, a.duration));
        if let Some(job) = self.idle.pop() {
            self.take_build(job);
        }
    }

    /// An idle agent takes the oldest queued build.
    fn take_build(&mut self, job: u32) {
        let Some((arrival, duration)) = self.queue.pop_front() else {
            self.idle.push(job);
            return;
        };
        let wait = self.now - arrival;
        self.out.waits.push(wait);
        self.out.waiting_total += wait as u128;
        if wait > 0 {
            self.out.waited += 1;
        }
        self.out.attempts.push(1);
        self.jobs[job as usize].phase = Phase::Busy;
        self.busy += 1;
        self.push(self.now + duration, Event::BuildEnd { job });
    }

    fn build_end(&mut self, job: u32) {
        if self.jobs[job as usize].phase != Phase::Busy {
            return;
        }
        self.busy -= 1;
        self.finish_job(job);
    }

    /// activeDeadlineSeconds: the Job fails, and a build it runs with it.
    fn deadline(&mut self, job: u32) {
        match self.jobs[job as usize].phase {
            Phase::Done => return,
            Phase::Busy => {
                self.busy -= 1;
                self.out.failed += 1;
            }
            Phase::Idle => self.idle.retain(|&j| j != job),
            _ => {}
        }
        self.finish_job(job);
    }

    /// The Job is Complete or Failed: its pod leaves the node.
    fn finish_job(&mut self, job: u32) {
        let j = &mut self.jobs[job as usize];
        let (was, node) = (j.phase, j.node);
        j.phase = Phase::Done;
        if let Some(i) = self.live_jobs.iter().position(|&x| x == job) {
            self.live_jobs.swap_remove(i);
        }
        if let Some(n) = node {
            let node = &mut self.nodes[n as usize];
            node.pods -= 1;
            node.last_pod_event = self.now;
        }
        if was == Phase::Unbound && node.is_none() {
            return;
        }
        self.arm_disruption();
    }

    fn pod_running(&mut self, job: u32) {
        let j = &mut self.jobs[job as usize];
        if j.phase != Phase::Pulling {
            return;
        }
        j.phase = Phase::Starting;
        self.push(self.now + self.p.startup, Event::AgentUp { job });
    }

    fn agent_up(&mut self, job: u32) {
        if self.jobs[job as usize].phase != Phase::Starting {
            return;
        }
        self.jobs[job as usize].phase = Phase::Idle;
        self.take_build(job);
    }

    // ---- KEDA ----------------------------------------------------------------

    fn keda_poll(&mut self) {
        let now = self.now;
        let outage = self.p.outages.iter().any(|&(s, e)| now >= s && now < e);
        let failed =
            outage || (self.p.fetch_failure > 0.0 && self.rng_fetch.unit() < self.p.fetch_failure);
        // A failed query is an inactive trigger with no value.
        let queue = if failed {
            self.errors_total += 1;
            0
        } else {
            self.scraped_queue
        };
        let running = self.live_jobs.len() as u32;
        let pending = self
            .live_jobs
            .iter()
            .filter(|&&j| matches!(self.jobs[j as usize].phase, Phase::Unbound | Phase::Pulling))
            .count() as u32;
        let created = jobs_to_create(
            self.cfg.strategy,
            queue as f64,
            self.cfg.target,
            self.cfg.min,
            self.cfg.max,
            running,
            pending,
        );
        if created > 0 {
            self.out.job_ticks.push(Tick {
                t: now,
                queue,
                running,
                pending,
                created,
            });
        }
        for _ in 0..created {
            self.new_job();
        }
        if self.unplaced() > 0 {
            self.trigger_batch();
        }
        if !self.done() {
            self.push(now + self.cfg.polling_ms, Event::KedaPoll);
        }
    }

    fn new_job(&mut self) {
        self.jobs.push(Job {
            phase: Phase::Unbound,
            node: None,
        });
        let job = (self.jobs.len() - 1) as u32;
        self.live_jobs.push(job);
        self.out.cold_pod_starts += 1;
        self.out.peak_pods = self.out.peak_pods.max(self.live_jobs.len() as u32);
        self.push(
            self.now + self.cfg.active_deadline_ms,
            Event::Deadline { job },
        );
        self.schedule(job);
    }

    // ---- scheduling and Karpenter --------------------------------------------

    /// kube-scheduler: bind to a Ready node with room, least allocated first.
    fn schedule(&mut self, job: u32) -> bool {
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
                self.nodes[n as usize].pods += 1;
                self.bind(job, n);
                true
            }
            None => false,
        }
    }

    /// The pod is bound to `node` (already counted in its pods).
    fn bind(&mut self, job: u32, node: u32) {
        let n = &mut self.nodes[node as usize];
        n.last_pod_event = self.now;
        let now = self.now;
        let image = *n.pulled_at.get_or_insert(now + self.p.image_pull);
        let j = &mut self.jobs[job as usize];
        j.node = Some(node);
        j.phase = Phase::Pulling;
        self.push(image.max(now), Event::PodRunning { job });
    }

    fn unplaced(&self) -> u32 {
        self.live_jobs
            .iter()
            .filter(|&&j| {
                let job = &self.jobs[j as usize];
                job.phase == Phase::Unbound && job.node.is_none()
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

    /// Nominates unplaced pods to launching nodes with room, then launches
    /// the nodes Karpenter picks within the NodePools' limits.
    fn provision(&mut self) {
        let unplaced: Vec<u32> = self
            .live_jobs
            .iter()
            .copied()
            .filter(|&j| {
                let job = &self.jobs[j as usize];
                job.phase == Phase::Unbound && job.node.is_none()
            })
            .collect();
        let mut rest = Vec::new();
        for job in unplaced {
            if self.schedule(job) {
                continue;
            }
            let launching = self.live_nodes.iter().copied().find(|&n| {
                let node = &self.nodes[n as usize];
                node.phase == NodePhase::Launching && node.pods < node.capacity
            });
            match launching {
                Some(n) => {
                    self.nodes[n as usize].pods += 1;
                    self.jobs[job as usize].node = Some(n);
                }
                None => rest.push(job),
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
            let n = self.new_node(launch.option);
            let latency = self
                .rng_launch
                .lognormal(self.p.launch_median as f64, self.p.launch_p95 as f64)
                .round() as u64
                + self.p.node_init;
            self.push(self.now + latency, Event::NodeReady { node: n });
            for &job in chunk {
                self.nodes[n as usize].pods += 1;
                self.jobs[job as usize].node = Some(n);
            }
        }
    }

    fn new_node(&mut self, option: usize) -> u32 {
        self.nodes.push(Node {
            phase: NodePhase::Launching,
            pods: 0,
            capacity: self.cfg.node_options[option].pods_per_node.max(1),
            option,
            last_pod_event: self.now,
            pulled_at: None,
            validating: false,
        });
        let id = (self.nodes.len() - 1) as u32;
        self.live_nodes.push(id);
        self.live_by_option[option] += 1;
        self.out.boots_by_option[option] += 1;
        self.out.cold_node_boots += 1;
        self.out.peak_nodes = self.out.peak_nodes.max(self.live_nodes.len() as u32);
        id
    }

    fn node_ready(&mut self, node: u32) {
        {
            let n = &mut self.nodes[node as usize];
            if n.phase != NodePhase::Launching {
                return;
            }
            n.phase = NodePhase::Ready;
            n.last_pod_event = self.now;
        }
        let nominated: Vec<u32> = self
            .live_jobs
            .iter()
            .copied()
            .filter(|&j| {
                let job = &self.jobs[j as usize];
                job.phase == Phase::Unbound && job.node == Some(node)
            })
            .collect();
        for job in nominated {
            self.bind(job, node);
        }
        self.arm_disruption();
    }

    fn disruption_poll(&mut self) {
        let now = self.now;
        let in_flight = self
            .live_nodes
            .iter()
            .filter(|&&n| {
                let node = &self.nodes[n as usize];
                node.phase == NodePhase::Deleting || node.validating
            })
            .count() as u32;
        let mut allowed = self.p.budget_nodes.saturating_sub(in_flight);
        let mut candidates: Vec<(u64, u32)> = self
            .live_nodes
            .iter()
            .copied()
            .filter(|&n| self.consolidatable(n))
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

    fn consolidatable(&self, n: u32) -> bool {
        let node = &self.nodes[n as usize];
        node.phase == NodePhase::Ready
            && !node.validating
            && node.pods == 0
            && self.now.saturating_sub(node.last_pod_event) >= self.p.consolidate_after
    }

    /// Polls are scheduled only while some node is empty.
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
        self.nodes[node as usize].validating = false;
        if !self.consolidatable(node) {
            return;
        }
        self.nodes[node as usize].phase = NodePhase::Deleting;
        self.push(self.now + self.p.deletion, Event::NodeGone { node });
    }

    fn node_gone(&mut self, node: u32) {
        let n = &mut self.nodes[node as usize];
        if n.phase != NodePhase::Deleting {
            return;
        }
        n.phase = NodePhase::Gone;
        let option = n.option;
        self.live_by_option[option] -= 1;
        if let Some(i) = self.live_nodes.iter().position(|&x| x == node) {
            self.live_nodes.swap_remove(i);
        }
        if self.unplaced() > 0 {
            self.trigger_batch();
        }
    }

    // ---- Prometheus -------------------------------------------------------------

    fn scrape(&mut self) {
        let t = self.now as i64;
        let queue = self.queue.len() as u32;
        self.scraped_queue = queue;
        if let Some(i) = self.series.queue {
            self.store.push(i, t, queue as f64);
        }
        self.store.push(self.series.lb_up, t, 1.0);
        for &i in &self.series.errors {
            self.store.push(i, t, self.errors_total as f64);
        }
        for (k, &(cpu, count, limit)) in self.series.nodepools.iter().enumerate() {
            let o = &self.cfg.node_options[k];
            let n = self.live_by_option[k] as f64;
            self.store.push(cpu, t, n * o.vcpu as f64);
            self.store.push(count, t, n);
            self.store.push(limit, t, o.limit_cpu as f64);
        }
        let (mut ready, mut booting) = (0, 0);
        for &j in &self.live_jobs {
            match self.jobs[j as usize].phase {
                Phase::Idle | Phase::Busy => ready += 1,
                Phase::Done => {}
                _ => booting += 1,
            }
        }
        self.out.timeline.push(Sample {
            t: self.now,
            arrivals: std::mem::take(&mut self.arrivals_since_scrape),
            waiting: queue,
            sessions: self.busy + queue,
            desired: self.live_jobs.len() as u32,
            ready,
            booting,
            draining: 0,
            nodes: self.live_nodes.len() as u32,
        });
        if !self.done() {
            self.push(self.now + self.cfg.scrape_ms, Event::Scrape);
        }
    }

    fn finish(mut self) -> Outcome {
        let end = self.now.max(self.horizon);
        self.advance(end);
        self.out.end_ms = end;
        self.out
    }
}

/// The one series a trigger query reads, when it reads exactly one by
/// name: `sum(buildkite_queues_scheduled_jobs_count{queue="default"})`
/// gives the name and `queue="default"`.
pub fn query_series(query: &str) -> Option<(String, Vec<(String, String)>)> {
    use promql_parser::label::MatchOp;
    use promql_parser::parser::{self, Expr};
    fn walk<'e>(e: &'e Expr, out: &mut Vec<&'e parser::VectorSelector>) {
        match e {
            Expr::Aggregate(a) => walk(&a.expr, out),
            Expr::Unary(u) => walk(&u.expr, out),
            Expr::Binary(b) => {
                walk(&b.lhs, out);
                walk(&b.rhs, out);
            }
            Expr::Paren(p) => walk(&p.expr, out),
            Expr::Subquery(s) => walk(&s.expr, out),
            Expr::MatrixSelector(m) => out.push(&m.vs),
            Expr::VectorSelector(v) => out.push(v),
            Expr::Call(c) => c.args.args.iter().for_each(|a| walk(a, out)),
            _ => {}
        }
    }
    let expr = parser::parse(query).ok()?;
    let mut found = Vec::new();
    walk(&expr, &mut found);
    let [vs] = found.as_slice() else {
        return None;
    };
    let name = vs.name.clone()?;
    let labels = vs
        .matchers
        .matchers
        .iter()
        .filter(|m| matches!(m.op, MatchOp::Equal) && m.name != "__name__")
        .map(|m| (m.name.clone(), m.value.clone()))
        .collect();
    Some((name, labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_names_its_series() {
        assert_eq!(
            query_series(r#"sum(buildkite_queues_scheduled_jobs_count{queue="default"})"#),
            Some((
                "buildkite_queues_scheduled_jobs_count".to_string(),
                vec![("queue".to_string(), "default".to_string())]
            ))
        );
        assert_eq!(query_series("sum(a) + sum(b)"), None);
        assert_eq!(query_series("sum("), None);
    }
}
