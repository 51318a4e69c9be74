//! What a run predicts, per pool, and its renderings: a text table, stable
//! JSON (sorted keys, no timestamps) and a Markdown PR comment with an
//! optional before → after column (the SVG timeline is `plot`).

use std::fmt::Write as _;

use serde::Serialize;

use super::engine::{Outcome, Sample};
use super::prometheus::AlertTimeline;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub seed: u64,
    pub workload: String,
    pub pools: Vec<PoolReport>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PoolReport {
    /// `<cluster>/<pool>`.
    pub pool: String,
    pub builds: u64,
    pub failed: u64,
    pub queue_timeout_drops: u64,
    pub wait_seconds: Waits,
    pub waited_fraction: f64,
    pub attempts: Attempts,
    pub cold_node_boots: u64,
    pub cold_pod_starts: u64,
    pub peak_pods: u32,
    pub peak_nodes: u32,
    pub time_at_max_seconds: f64,
    pub pod_hours: f64,
    pub node_hours: f64,
    pub fallback_episodes: u32,
    pub simulated_seconds: f64,
    /// Little's law on this run: time-average builds waiting, and
    /// arrival rate × mean time waiting (failed builds included).
    pub mean_waiting: f64,
    pub arrival_rate_times_wait: f64,
    pub alerts: Vec<AlertReport>,
    /// Nodes launched and node-hours per instance type Karpenter chose, in
    /// the NodePools' weight order; cost where the spec gives a price.
    pub node_types: Vec<NodeTypeReport>,
    /// Σ cost over the types, when every type used has a price.
    pub cost: Option<f64>,
    #[serde(skip)]
    pub timeline: Vec<Sample>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NodeTypeReport {
    pub nodepool: String,
    pub instance_type: String,
    pub nodes_launched: u64,
    pub node_hours: f64,
    pub cost: Option<f64>,
}

/// The per-type rows of a run whose nodes came from `options`.
pub fn node_types(
    options: &[super::karpenter::NodeOption],
    boots: &[u64],
    node_ms: &[u128],
) -> (Vec<NodeTypeReport>, Option<f64>) {
    let mut total = Some(0.0);
    let rows = options
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let hours = node_ms.get(i).copied().unwrap_or(0) as f64 / 3_600_000.0;
            let cost = o.price.map(|p| round3(p * hours));
            if hours > 0.0 {
                total = match (total, cost) {
                    (Some(t), Some(c)) => Some(t + c),
                    _ => None,
                };
            }
            NodeTypeReport {
                nodepool: o.nodepool.clone(),
                instance_type: o.instance_type.clone(),
                nodes_launched: boots.get(i).copied().unwrap_or(0),
                node_hours: round3(hours),
                cost,
            }
        })
        .collect();
    let any_price = options.iter().any(|o| o.price.is_some());
    (rows, total.filter(|_| any_price).map(round3))
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Waits {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Attempts {
    pub mean: f64,
    pub p95: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AlertReport {
    pub alert: String,
    pub first_firing_seconds: f64,
    pub firing_seconds: f64,
}

/// Nearest-rank quantile of sorted values.
fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

impl PoolReport {
    pub fn new(pool: String, mut o: Outcome, alerts: &[AlertTimeline], eval_ms: u64) -> PoolReport {
        o.waits.sort_unstable();
        let secs = |ms: u64| round3(ms as f64 / 1000.0);
        let started = o.waits.len() as f64;
        let mean_wait = if o.waits.is_empty() {
            0.0
        } else {
            o.waits.iter().map(|&w| w as f64).sum::<f64>() / started / 1000.0
        };
        let mut attempts: Vec<u64> = o.attempts.iter().map(|&a| a as u64).collect();
        attempts.sort_unstable();
        let attempts_mean = if attempts.is_empty() {
            0.0
        } else {
            attempts.iter().sum::<u64>() as f64 / attempts.len() as f64
        };
        let span = o.end_ms.max(1) as f64;
        let mut by_name: std::collections::BTreeMap<String, (i64, usize)> = Default::default();
        for a in alerts {
            let e = by_name.entry(a.alert.clone()).or_insert((i64::MAX, 0));
            if let Some(&first) = a.firing.first() {
                e.0 = e.0.min(first);
            }
            e.1 += a.firing.len();
        }
        PoolReport {
            pool,
            builds: o.builds,
            failed: o.failed,
            queue_timeout_drops: o.queue_timeouts,
            wait_seconds: Waits {
                p50: secs(quantile(&o.waits, 0.50)),
                p95: secs(quantile(&o.waits, 0.95)),
                p99: secs(quantile(&o.waits, 0.99)),
                max: secs(o.waits.last().copied().unwrap_or(0)),
                mean: round3(mean_wait),
            },
            waited_fraction: if started > 0.0 {
                round3(o.waited as f64 / started)
            } else {
                0.0
            },
            attempts: Attempts {
                mean: round3(attempts_mean),
                p95: quantile(&attempts, 0.95) as f64,
                max: attempts.last().copied().unwrap_or(0) as f64,
            },
            cold_node_boots: o.cold_node_boots,
            cold_pod_starts: o.cold_pod_starts,
            peak_pods: o.peak_pods,
            peak_nodes: o.peak_nodes,
            time_at_max_seconds: secs(o.time_at_max_ms),
            pod_hours: round3(o.pod_ms as f64 / 3_600_000.0),
            node_hours: round3(o.node_ms as f64 / 3_600_000.0),
            fallback_episodes: o.fallback_episodes,
            simulated_seconds: secs(o.end_ms),
            mean_waiting: o.waiting_area as f64 / span,
            arrival_rate_times_wait: o.builds as f64 / span
                * if o.builds > 0 {
                    o.waiting_total as f64 / o.builds as f64
                } else {
                    0.0
                },
            alerts: by_name
                .into_iter()
                .map(|(alert, (first, n))| AlertReport {
                    alert,
                    first_firing_seconds: first as f64 / 1000.0,
                    firing_seconds: (n as u64 * eval_ms) as f64 / 1000.0,
                })
                .collect(),
            node_types: Vec::new(),
            cost: None,
            timeline: o.timeline,
        }
    }
}

/// `1h 2m 3s`, `45s`, `0s`.
pub fn human(seconds: f64) -> String {
    let s = seconds.round() as u64;
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    match (h, m) {
        (0, 0) => format!("{sec}s"),
        (0, _) => format!("{m}m {sec:02}s"),
        _ => format!("{h}h {m:02}m"),
    }
}

fn alerts_text(p: &PoolReport) -> String {
    if p.alerts.is_empty() {
        return "none".to_string();
    }
    p.alerts
        .iter()
        .map(|a| {
            format!(
                "{} (from {}, {})",
                a.alert,
                human(a.first_firing_seconds),
                human(a.firing_seconds)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The rows of the table: (label, value).
fn rows(p: &PoolReport) -> Vec<(&'static str, String)> {
    let w = &p.wait_seconds;
    vec![
        ("builds", p.builds.to_string()),
        ("failed (retries exhausted)", p.failed.to_string()),
        ("queue-timeout drops", p.queue_timeout_drops.to_string()),
        (
            "wait p50 / p95 / p99",
            format!("{} / {} / {}", human(w.p50), human(w.p95), human(w.p99)),
        ),
        (
            "wait max / mean",
            format!("{} / {}", human(w.max), human(w.mean)),
        ),
        (
            "builds that waited",
            format!("{:.1}%", p.waited_fraction * 100.0),
        ),
        (
            "attempts mean / p95 / max",
            format!(
                "{:.2} / {} / {}",
                p.attempts.mean, p.attempts.p95, p.attempts.max
            ),
        ),
        ("cold node boots", p.cold_node_boots.to_string()),
        ("cold pod starts", p.cold_pod_starts.to_string()),
        (
            "peak pods / nodes",
            format!("{} / {}", p.peak_pods, p.peak_nodes),
        ),
        (
            "time at max",
            format!(
                "{} ({:.1}%)",
                human(p.time_at_max_seconds),
                100.0 * p.time_at_max_seconds / p.simulated_seconds.max(1.0)
            ),
        ),
        ("pod-hours", format!("{:.1}", p.pod_hours)),
        ("node-hours", format!("{:.1}", p.node_hours)),
        (
            "node-hours by type",
            p.node_types
                .iter()
                .filter(|t| t.nodes_launched > 0 || t.node_hours > 0.0)
                .map(|t| format!("{} {:.1}", t.instance_type, t.node_hours))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        (
            "cost",
            p.cost
                .map_or_else(|| "no prices given".to_string(), |c| format!("${c:.2}")),
        ),
        ("fallback episodes", p.fallback_episodes.to_string()),
        ("alerts firing", alerts_text(p)),
    ]
}

pub fn text(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "workload: {} (seed {})", r.workload, r.seed);
    for p in &r.pools {
        let _ = writeln!(
            out,
            "\n{} — {} simulated",
            p.pool,
            human(p.simulated_seconds)
        );
        for (k, v) in rows(p) {
            let _ = writeln!(out, "  {k:<28} {v}");
        }
    }
    out
}

pub fn json(r: &Report) -> String {
    let mut s = serde_json::to_string_pretty(r).unwrap_or_else(|_| "{}".to_string());
    s.push('\n');
    s
}

/// A PR comment: a verdict line per pool and the table, with the baseline
/// run (the same workload and seed on the base specs) as "before".
pub fn markdown(r: &Report, baseline: Option<&Report>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### poolc simulate: {} (seed {})\n",
        r.workload, r.seed
    );
    for p in &r.pools {
        let _ = writeln!(
            out,
            "- **{}**: p95 wait {}, {} failed, {}",
            p.pool,
            human(p.wait_seconds.p95),
            p.failed,
            match p.alerts.len() {
                0 => "no alert fires".to_string(),
                1 => "1 alert fires".to_string(),
                n => format!("{n} alerts fire"),
            }
        );
    }
    for p in &r.pools {
        let before = baseline.and_then(|b| b.pools.iter().find(|x| x.pool == p.pool));
        let _ = writeln!(out, "\n#### {}\n", p.pool);
        match before {
            Some(b) => {
                let _ = writeln!(out, "| | before | after |\n|---|---|---|");
                for ((k, after), (_, was)) in rows(p).into_iter().zip(rows(b)) {
                    let mark = if after == was { "" } else { " **≠**" };
                    let _ = writeln!(out, "| {k} | {was} | {after}{mark} |");
                }
            }
            None => {
                let _ = writeln!(out, "| | |\n|---|---|");
                for (k, v) in rows(p) {
                    let _ = writeln!(out, "| {k} | {v} |");
                }
            }
        }
    }
    out
}
