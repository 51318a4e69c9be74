//! PoolLoadBalancerDown: the LB is down or Prometheus cannot scrape it.

use super::{base_rule, external, scope, stored, Doc};
use crate::model::Cluster;
use crate::render::rules::{Alert, Scenario};
use crate::render::servicemonitor::Scrapes;
use crate::spec::Seconds;

pub const NAME: &str = "PoolLoadBalancerDown";

pub const DOC: Doc = Doc {
    name: NAME,
    summary: "The LB's metrics target is down (`up == 0`) or gone (`up` absent) for lb_down_for.",
    text: r#"
What it does: fires when the `up` series of the LB's metrics target (job
`<app>-lb-metrics` in the pools' namespace) is 0, or absent, at every
evaluation for alerts.lb_down_for (5m). One alert per cluster, with the
alert settings of its first service pool.

Why it matters: the LB's exporter is the scaling signal of every service
pool. While it is down or unscraped, KEDA's metric fetches fail (the pools
stop following load, or sit at their fallback) and every queue, demand and
warm-deficit series vanishes, so the other alerts go quiet instead of
firing.

Example (fires): the LB pod crash-loops; or the ServiceMonitor no longer
selects the metrics Service, so `up` disappears.
Example (quiet): one failed scrape during an LB rollout.

Instead: alerts on the LB's own series alone (`haproxy_…`) cannot fire when
those series are gone.

Default: lb_down_for = 5m: five scrapes at the default interval, longer
than an LB rollout.
"#,
};

pub fn alert(cluster: &Cluster, scrapes: &Scrapes) -> Option<Alert> {
    let pool = cluster.pools.iter().find(|p| p.lb.is_some())?;
    let hold = pool.alerts.lb_down_for.0;
    let job = &cluster.lb.metrics_service;
    let selector = format!(
        "up{}",
        scope(
            cluster,
            &[
                format!(r#"job="{job}""#),
                format!(r#"namespace="{}""#, cluster.namespace)
            ]
        )
    );
    let mut rule = base_rule(
        cluster,
        &pool.alerts.severity,
        NAME,
        format!("{selector} == 0 or absent({selector})"),
        Some(hold),
    );
    rule.annotations.insert(
        "summary".to_string(),
        "The LB that scales every service pool is down or unscraped".to_string(),
    );
    rule.annotations.insert(
        "description".to_string(),
        format!(
            "Prometheus has not scraped {job} in {} for {}: the pools' scaling signal is gone, so KEDA cannot follow load and the queue alerts cannot fire. Check the {} pods and the {} ServiceMonitor.",
            cluster.namespace,
            Seconds(hold).compact(),
            cluster.lb.name,
            cluster.lb.name
        ),
    );
    // `up` carries the target labels only: no exporter label, no relabeling.
    let mut up = scrapes.haproxy.labels.clone();
    up.insert("__name__".to_string(), "up".to_string());
    for (k, v) in external(cluster) {
        up.insert(k.clone(), v.clone());
    }
    let up = crate::render::scrape::selector(&up);
    let other_up = stored(cluster, &scrapes.keda, "up", &[]);
    let minutes = hold / 60;
    let mut down = rule.labels.clone();
    down.extend(scrapes.haproxy.labels.clone());
    let mut gone = rule.labels.clone();
    gone.insert("job".to_string(), job.clone());
    gone.insert("namespace".to_string(), cluster.namespace.clone());
    for (k, v) in external(cluster) {
        down.insert(k.clone(), v.clone());
        gone.insert(k.clone(), v.clone());
    }
    Some(Alert {
        pool: String::new(),
        rule,
        scenarios: vec![
            Scenario {
                name: "the LB: one failed scrape during a rollout".to_string(),
                series: vec![(up.clone(), format!("1x5 0 1x{}", minutes + 10))],
                eval_minutes: minutes + 5,
                fires: None,
            },
            Scenario {
                name: "the LB: its target is down".to_string(),
                series: vec![(up, format!("1 0x{}", minutes + 10))],
                eval_minutes: minutes + 5,
                fires: Some(down),
            },
            Scenario {
                name: "the LB: its target is no longer scraped".to_string(),
                series: vec![(other_up, format!("1x{}", minutes + 10))],
                eval_minutes: minutes + 5,
                fires: Some(gone),
            },
        ],
    })
}
