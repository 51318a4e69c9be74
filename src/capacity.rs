//! `poolc explain pool`: a pool's capacity as a reviewer needs it before
//! changing a number: pod size, nodes, NodePool limits, warm capacity, LB
//! slots, the scale-down timeline and the alerts that guard it. Every number
//! comes from the same Model the manifests are rendered from.

use std::fmt::Write as _;

use crate::model::{Cluster, Pool};
use crate::spec::Mode;

pub fn explain(cluster: &Cluster, pool: &Pool) -> String {
    let mut s = String::new();
    let first = &pool.node_pools[0];
    let nodes_for = |replicas: u32| u64::from(replicas).div_ceil(u64::from(first.pods_per_node));
    let _ = writeln!(
        s,
        "pool {}/{} ({}, {})",
        cluster.name,
        pool.name,
        mode(pool),
        pool.arch.as_str()
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "pod size          {} vCPU, {} GiB (requests = limits, sized by {} @ {} per node)",
        pool.pod.cpu, pool.pod.memory_gib, first.instance_type.name, first.pods_per_node
    );
    let _ = writeln!(s, "replicas          min {}, max {}", pool.min, pool.max);
    let _ = writeln!(
        s,
        "nodes at min      {} × {}",
        nodes_for(pool.min),
        first.instance_type.name
    );
    let _ = writeln!(
        s,
        "nodes at max      {} × {}",
        nodes_for(pool.max),
        first.instance_type.name
    );
    match &pool.fallback {
        Some(f) => {
            let _ = writeln!(
                s,
                "scaler fallback   hold {} replicas after {} failed polls",
                f.replicas, f.failure_threshold
            );
        }
        None => {
            let _ = writeln!(
                s,
                "scaler fallback   none: replicas stay where they are when the scaler fails"
            );
        }
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "NodePools (Karpenter tries higher weight first)");
    let _ = writeln!(
        s,
        "  {:<40} {:>6} {:>9} {:>9} {:>10} {:>12}",
        "name", "weight", "pods/node", "max nodes", "limit cpu", "limit memory"
    );
    for np in &pool.node_pools {
        let _ = writeln!(
            s,
            "  {:<40} {:>6} {:>9} {:>9} {:>10} {:>12}",
            np.name,
            np.weight,
            np.pods_per_node,
            np.max_nodes,
            np.limit_cpu,
            format!("{}Gi", np.limit_memory_gib)
        );
    }
    let _ = writeln!(s, "  limits = 2 × ceil(max / pods per node) × the type's vCPU and memory (headroom for rolling updates)");
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "warm capacity     {} pods always ready ({} vCPU, {} GiB)",
        pool.min,
        u64::from(pool.min) * pool.pod.cpu,
        u64::from(pool.min) * pool.pod.memory_gib
    );
    if let Some(lb) = &pool.lb {
        let _ = writeln!(
            s,
            "HAProxy           backend {} on port {}, {} slots, headroom {} over max",
            lb.backend,
            lb.port,
            lb.slots,
            lb.slots.saturating_sub(pool.max)
        );
        let _ = writeln!(
            s,
            "                  timeout server {}, queue {}",
            lb.timeout_server, lb.timeout_queue
        );
    }
    if let Some(jobs) = &pool.jobs {
        let _ = writeln!(
            s,
            "jobs              one Job per {} pending (strategy {}), query {}",
            jobs.target,
            jobs.scaling_strategy.as_str(),
            jobs.query
        );
    }
    let _ = writeln!(s);
    let sc = &pool.scaling;
    let _ = writeln!(s, "scale-down timeline");
    if pool.mode == Mode::Service {
        let _ = writeln!(s, "  an idle pod is kept {} (HPA stabilization), then at most max({} pods, {}%) go per {}",
            sc.stabilization, sc.scale_down_pods, sc.scale_down_percent, sc.scale_down_period);
        let _ = writeln!(
            s,
            "  to 0 active triggers: KEDA waits {} (cooldown)",
            sc.cooldown
        );
        let _ = writeln!(
            s,
            "  a removed pod drains up to {}; the kubelet kills it after {}",
            pool.drain, pool.grace_period
        );
    } else {
        let _ = writeln!(
            s,
            "  Jobs run once and exit; a Job is stopped after {}",
            pool.jobs
                .as_ref()
                .map(|j| j.active_deadline.to_string())
                .unwrap_or_default()
        );
    }
    let _ = writeln!(
        s,
        "  an empty node is removed after 5m, one node at a time (Karpenter WhenEmpty)"
    );
    let _ = writeln!(s);
    let a = &pool.alerts;
    let window = crate::spec::Seconds(crate::render::alerts::scaler_errors::error_window(
        cluster, pool,
    ));
    let _ = writeln!(s, "alerts ({}, labels pool=\"{}\")", a.severity, pool.name);
    if pool.lb.is_some() {
        let _ = writeln!(
            s,
            "  PoolQueueBacklog       queue > {} for {}",
            a.queue_backlog, a.queue_backlog_for
        );
        let _ = writeln!(
            s,
            "  PoolScalerErrors       >= {} scaler errors in {}",
            pool.failure_threshold, window
        );
        let _ = writeln!(
            s,
            "  PoolScaledObjectErrors >= {} other errors in {}",
            pool.failure_threshold, window
        );
        if pool.min >= 1 {
            let _ = writeln!(
                s,
                "  PoolNoActiveServers    no UP server in {}",
                pool.lb.as_ref().map(|l| l.backend.as_str()).unwrap_or("")
            );
        }
        let _ = writeln!(
            s,
            "  PoolWarmDeficit        warm deficit > 0 for {}",
            a.warm_deficit_for
        );
        let _ = writeln!(
            s,
            "  PoolAtMaxReplicas      desired = {} and demand above it for {}",
            pool.max, a.at_max_for
        );
    } else {
        let _ = writeln!(
            s,
            "  PoolPendingJobs        pending > {} for {}",
            a.pending_jobs, a.pending_jobs_for
        );
        let _ = writeln!(
            s,
            "  PoolScaledJobErrors    >= {} errors in {}",
            pool.failure_threshold, window
        );
    }
    let _ = writeln!(s, "  PoolNodeLimitReached   NodePool usage at its limit");
    s
}

fn mode(pool: &Pool) -> &'static str {
    match pool.mode {
        Mode::Service => "service",
        Mode::Jobs => "jobs",
    }
}
