//! Which instance type Karpenter launches for a batch of pending pods, and
//! within which limits. The pools `generate` writes have one NodePool per
//! instance type, weighted in the spec's order; Karpenter tries NodePools by
//! weight, highest first, and a NodeClaim launches the cheapest of its
//! NodePool's types that holds the pods packed onto it.
//!
//! Simplifications, stated once: every pod of a pool has the same size, so
//! "fits" is the type's pods-per-node count from the spec; packing is
//! greedy (fill one NodeClaim with as many pods as the largest remaining
//! type holds, then take the cheapest type holding that many); there is no
//! capacity shortage (InsufficientInstanceCapacity), so a lower-weight
//! NodePool is used only once a higher one reaches its `limits`. "Cheapest"
//! is by the spec's `simulate.karpenter.prices` ($ per node-hour) where
//! every candidate has one, else by vCPU and then memory (EC2 prices within
//! one family scale with size).

/// One instance type of a pool, as its NodePool offers it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeOption {
    pub nodepool: String,
    pub instance_type: String,
    pub weight: u32,
    pub pods_per_node: u32,
    pub vcpu: u32,
    /// Whole GiB, as NodePool limits count memory.
    pub memory_gib: u64,
    pub limit_cpu: u64,
    pub limit_memory_gib: u64,
    /// $ per node-hour, when the spec gives one.
    pub price: Option<f64>,
}

/// A node to launch: the option (index) and how many pods go on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Launch {
    pub option: usize,
    pub pods: u32,
}

/// Whether one more node of option `i` stays within its NodePool's limits,
/// given the nodes of each option that exist now (launching, ready or
/// being deleted: Karpenter counts them all).
fn within_limits(options: &[NodeOption], live: &[u32], i: usize) -> bool {
    let o = &options[i];
    let (mut cpu, mut mem) = (0u64, 0u64);
    for (j, other) in options.iter().enumerate() {
        if other.nodepool == o.nodepool {
            let n = u64::from(live.get(j).copied().unwrap_or(0));
            cpu += n * u64::from(other.vcpu);
            mem += n * other.memory_gib;
        }
    }
    cpu + u64::from(o.vcpu) <= o.limit_cpu && mem + o.memory_gib <= o.limit_memory_gib
}

/// Orders two options by price: the spec's prices if both have one, else
/// vCPU, then memory, then the spec's order.
fn cheaper(options: &[NodeOption], a: usize, b: usize) -> std::cmp::Ordering {
    let (x, y) = (&options[a], &options[b]);
    match (x.price, y.price) {
        (Some(p), Some(q)) if p != q => p.total_cmp(&q),
        _ => (x.vcpu, x.memory_gib, a).cmp(&(y.vcpu, y.memory_gib, b)),
    }
}

/// The next node for `pending` unplaced pods, or None when every NodePool
/// is at its limits (the pods stay Pending).
pub fn choose(options: &[NodeOption], live: &[u32], pending: u32) -> Option<Launch> {
    if pending == 0 {
        return None;
    }
    // NodePools by weight, highest first; equal weights keep the spec's order.
    let mut order: Vec<usize> = (0..options.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(options[i].weight), i));
    let mut tried: Vec<&str> = Vec::new();
    for &first in &order {
        let name = options[first].nodepool.as_str();
        if tried.contains(&name) {
            continue;
        }
        tried.push(name);
        let open: Vec<usize> = (0..options.len())
            .filter(|&i| options[i].nodepool == name && within_limits(options, live, i))
            .collect();
        let Some(most) = open.iter().map(|&i| options[i].pods_per_node).max() else {
            continue;
        };
        let pods = pending.min(most.max(1));
        let option = open
            .iter()
            .copied()
            .filter(|&i| options[i].pods_per_node.max(1) >= pods)
            .min_by(|&a, &b| cheaper(options, a, b))?;
        return Some(Launch { option, pods });
    }
    None
}

/// The options of a pool, from the Model, with the spec's prices.
pub fn options(
    pool: &crate::model::Pool,
    prices: &std::collections::BTreeMap<String, f64>,
) -> Vec<NodeOption> {
    pool.node_pools
        .iter()
        .map(|np| NodeOption {
            nodepool: np.name.clone(),
            instance_type: np.instance_type.name.clone(),
            weight: np.weight,
            pods_per_node: np.pods_per_node.max(1),
            vcpu: np.instance_type.vcpu,
            memory_gib: np.instance_type.memory_gib_whole(),
            limit_cpu: np.limit_cpu,
            limit_memory_gib: np.limit_memory_gib,
            price: prices.get(&np.instance_type.name).copied(),
        })
        .collect()
}

/// Karpenter's provisioning batch: it opens with the first pending pod and
/// closes `batch_idle` after the last one, or `batch_max` after it opened,
/// whichever comes first. Each opened window has its own generation, so a
/// close event of an earlier window does nothing.
#[derive(Debug)]
pub struct Batch {
    idle: u64,
    max: u64,
    /// The open window: its start, its last pod, its generation.
    open: Option<(u64, u64, u32)>,
    generation: u32,
}

impl Batch {
    pub fn new(idle: u64, max: u64) -> Batch {
        Batch {
            idle,
            max,
            open: None,
            generation: 0,
        }
    }

    /// A pod became pending at `now`: the time and generation of the close
    /// event to schedule.
    pub fn pending(&mut self, now: u64) -> (u64, u32) {
        match self.open {
            Some((start, _, generation)) => {
                self.open = Some((start, now, generation));
                ((now + self.idle).min(start + self.max), generation)
            }
            None => {
                self.generation += 1;
                self.open = Some((now, now, self.generation));
                (now + self.idle, self.generation)
            }
        }
    }

    /// A close event of `generation` at `now`: whether the window closes
    /// (and provisioning runs) now.
    pub fn closes(&mut self, now: u64, generation: u32) -> bool {
        let Some((start, last, open)) = self.open else {
            return false;
        };
        if open != generation || now < (last + self.idle).min(start + self.max) {
            return false;
        }
        self.open = None;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn option(np: &str, t: &str, weight: u32, ppn: u32, vcpu: u32, nodes: u64) -> NodeOption {
        NodeOption {
            nodepool: np.into(),
            instance_type: t.into(),
            weight,
            pods_per_node: ppn,
            vcpu,
            memory_gib: u64::from(vcpu) * 4,
            limit_cpu: nodes * u64::from(vcpu),
            limit_memory_gib: nodes * u64::from(vcpu) * 4,
            price: None,
        }
    }

    /// The production amd64 shape: m6id.24xlarge (2 pods, weight 100) and
    /// m6id.12xlarge (1 pod, weight 50), 4 nodes each allowed.
    fn production() -> Vec<NodeOption> {
        vec![
            option("a-24x", "m6id.24xlarge", 100, 2, 96, 4),
            option("a-12x", "m6id.12xlarge", 50, 1, 48, 4),
        ]
    }

    #[test]
    fn the_heaviest_nodepool_wins_until_its_limit() {
        let o = production();
        assert_eq!(choose(&o, &[0, 0], 5), Some(Launch { option: 0, pods: 2 }));
        // A single pod still goes to the heavier NodePool: weight before price.
        assert_eq!(choose(&o, &[3, 0], 1), Some(Launch { option: 0, pods: 1 }));
        assert_eq!(choose(&o, &[4, 0], 3), Some(Launch { option: 1, pods: 1 }));
        assert_eq!(choose(&o, &[4, 4], 3), None);
        assert_eq!(choose(&o, &[0, 0], 0), None);
    }

    #[test]
    fn within_one_nodepool_the_cheapest_type_that_holds_the_pods() {
        let mut o = vec![
            option("mixed", "big", 10, 4, 64, 10),
            option("mixed", "small", 10, 1, 16, 10),
        ];
        // Limits are shared by the NodePool: 10 × 64 vCPU.
        o[1].limit_cpu = o[0].limit_cpu;
        o[1].limit_memory_gib = o[0].limit_memory_gib;
        assert_eq!(choose(&o, &[0, 0], 7), Some(Launch { option: 0, pods: 4 }));
        assert_eq!(choose(&o, &[0, 0], 1), Some(Launch { option: 1, pods: 1 }));
        // With prices given, the price decides among types that hold the pods.
        o[0].price = Some(1.0);
        o[1].price = Some(2.0);
        assert_eq!(choose(&o, &[0, 0], 1), Some(Launch { option: 0, pods: 1 }));
        // 9 big nodes use 576 of 640 vCPU: a big one no longer fits, a small one does.
        assert_eq!(
            choose(&o, &[10, 0], 3),
            None,
            "10 big nodes use the whole limit"
        );
        assert_eq!(choose(&o, &[9, 3], 3), Some(Launch { option: 1, pods: 1 }));
    }

    /// Idle 1 s, max 10 s: each pod pushes the close back to 1 s after it,
    /// never past 10 s after the first; a close event of an earlier window,
    /// or one that comes early, does nothing.
    #[test]
    fn a_batch_closes_idle_after_its_last_pod_or_at_its_maximum() {
        let mut b = super::Batch::new(1_000, 10_000);
        assert_eq!(b.pending(0), (1_000, 1));
        assert_eq!(b.pending(900), (1_900, 1));
        assert!(!b.closes(1_000, 1), "closed before idle");
        assert_eq!(b.pending(9_500), (10_000, 1));
        assert!(b.closes(10_000, 1));
        assert!(!b.closes(10_000, 1), "closed twice");
        assert_eq!(b.pending(20_000), (21_000, 2));
        assert!(!b.closes(21_000, 1), "an old window closed the new one");
        assert!(b.closes(21_000, 2));
    }
}
