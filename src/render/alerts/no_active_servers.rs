//! PoolNoActiveServers: the LB reaches no worker of a pool.

use super::{Ctx, Doc};
use crate::model::Backend;
use crate::render::rules::{Alert, Scenario};

pub const NAME: &str = "PoolNoActiveServers";

pub const DOC: Doc = Doc {
    name: NAME,
    summary: "A pool with min ≥ 1 has had no UP server on its LB backend for 5m.",
    text: r#"
What it does: fires when `haproxy_backend_active_servers` of the pool's
backend is 0 at every evaluation for 5m. Only for pools with min ≥ 1:
min = 0 pools have no servers while idle by design.

Why it matters: every build to the pool waits in the queue or fails, and
the sessions the autoscaler reads stop reflecting work.

Example (fires): the worker pods crash-loop for 10 minutes.
Example (quiet): a rolling restart leaves the backend without servers for 2
minutes.

Instead: alerting on `haproxy_backend_status` flaps with every health check.

Default: 5m: longer than a rolling restart of the warm pods.
"#,
};

pub fn alert(ctx: &Ctx, backend: &Backend) -> Alert {
    let p = &ctx.pool.name;
    let rule = ctx.rule(
        NAME,
        format!(
            "max {} (haproxy_backend_active_servers{}) == 0",
            ctx.by(&["namespace", "proxy"]),
            ctx.scope(&[
                format!(r#"namespace="{}""#, ctx.ns()),
                format!(r#"proxy="{}""#, backend.backend)
            ])
        ),
        Some(300),
        format!("Pool {p} has no worker the LB can reach"),
        format!(
            "Backend {} has had no UP server for 5m although min is {}: every build to pool {p} waits or fails. Check the worker pods and the {} Service.",
            backend.backend, ctx.pool.min, backend.pods_service
        ),
    );
    let active = ctx.stored(
        &ctx.scrapes.haproxy,
        "haproxy_backend_active_servers",
        &[("proxy", &backend.backend)],
    );
    let series = |values: String| vec![(active.clone(), values)];
    let fired = ctx.fired(
        &rule,
        &[("namespace", ctx.ns()), ("proxy", &backend.backend)],
    );
    let min = ctx.pool.min;
    ctx.alert(
        rule,
        vec![
            Scenario {
                name: format!("{p}: a rolling restart drops to 0 servers for 2m"),
                series: series(format!("{min}x5 0x2 {min}x10")),
                eval_minutes: 8,
                fires: None,
            },
            Scenario {
                name: format!("{p}: no server for 10m"),
                series: series("0x15".to_string()),
                eval_minutes: 10,
                fires: Some(fired),
            },
        ],
    )
}
