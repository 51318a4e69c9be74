//! PoolNodeLimitReached: Karpenter cannot add a node to a pool's NodePool.

use super::{Ctx, Doc};
use crate::model::NodePool;
use crate::render::rules::{Alert, Scenario};

pub const NAME: &str = "PoolNodeLimitReached";

pub const DOC: Doc = Doc {
    name: NAME,
    summary: "A NodePool's CPU usage leaves no room for one more node, for 10m.",
    text: r#"
What it does: fires when `karpenter_nodepools_usage{resource_type="cpu"}`
of the NodePool exceeds its CPU limit minus one node's vCPUs for 10m.

Why it matters: Karpenter cannot add another node; pods stay Pending.

Example (fires): the limit is reached.
Example (quiet): half the limit in use.

Instead: comparing usage with the limit itself fires only once the last
node is already in.

Default: the limit is 2 × ceil(max / pods per node) nodes: a pool at max
plus a rollout fits, so reaching it means nodes that do not drain.
"#,
};

pub fn alert(ctx: &Ctx, np: &NodePool) -> Alert {
    let p = &ctx.pool.name;
    let vcpu = u64::from(np.instance_type.vcpu);
    // One more node would cross the limit: Karpenter cannot add it.
    let room = np.limit_cpu.saturating_sub(vcpu);
    let mut rule = ctx.rule(
        NAME,
        format!(
            "max {} (karpenter_nodepools_usage{}) > {room}",
            ctx.by(&["nodepool"]),
            ctx.scope(&[
                format!(r#"nodepool="{}""#, np.name),
                r#"resource_type="cpu""#.to_string()
            ])
        ),
        Some(600),
        format!("NodePool {} of pool {p} is at its limit", np.name),
        format!(
            "NodePool {} uses more than {room} of its {} CPUs: Karpenter cannot add another {} node. The limit is 2 × ceil(max / pods per node) nodes; a pool at max plus a rollout fits, so look for nodes that do not drain.",
            np.name, np.limit_cpu, np.instance_type.name
        ),
    );
    // Two NodePools of one pool would otherwise be duplicate rules.
    rule.labels.insert("nodepool".to_string(), np.name.clone());
    let usage = ctx.stored(
        &ctx.scrapes.karpenter,
        "karpenter_nodepools_usage",
        &[("nodepool", &np.name), ("resource_type", "cpu")],
    );
    let series = |values: String| vec![(usage.clone(), values)];
    let fired = ctx.fired(&rule, &[("nodepool", &np.name)]);
    ctx.alert(
        rule,
        vec![
            Scenario {
                name: format!("{}: half the limit in use", np.name),
                series: series(format!("{}x20", np.limit_cpu / 2)),
                eval_minutes: 15,
                fires: None,
            },
            Scenario {
                name: format!("{}: the limit is reached", np.name),
                series: series(format!("{}x20", np.limit_cpu)),
                eval_minutes: 15,
                fires: Some(fired),
            },
        ],
    )
}
