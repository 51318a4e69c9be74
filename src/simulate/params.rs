//! The `simulate:` section of a cluster spec: every latency and probability
//! the simulator uses, each with a default from measured or documented
//! upstream behaviour (the README names the source of each). Nothing here
//! changes what `generate` writes.

use std::fmt;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::spec::Located;

/// A duration in milliseconds, written `250ms`, `15s`, `5m`, `2h`, `1d` or a
/// bare number of seconds. `0` is allowed and means "none" where a field says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Millis(pub u64);

impl Millis {
    pub fn parse(text: &str) -> Result<Millis, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (digits, unit) = text.split_at(split);
        let value: u64 = digits.parse().map_err(|_| {
            format!("`{text}` is not a duration: write a whole number with ms, s, m, h or d, such as 250ms or 15s")
        })?;
        let factor = match unit {
            "ms" => 1,
            "" | "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => {
                return Err(format!(
                    "`{text}` has unit `{unit}`: use ms, s, m, h or d, such as 250ms or 15s"
                ))
            }
        };
        value
            .checked_mul(factor)
            .filter(|ms| *ms <= MAX_MILLIS)
            .map(Millis)
            .ok_or_else(|| format!("`{text}` is longer than the 365 days poolc accepts"))
    }

    pub fn secs(s: u64) -> Millis {
        Millis(s * 1000)
    }
}

const MAX_MILLIS: u64 = 365 * 86_400_000;

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0;
        if !ms.is_multiple_of(1000) {
            write!(f, "{ms}ms")
        } else {
            write!(f, "{}", crate::spec::Seconds(ms / 1000))
        }
    }
}

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Millis;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as 250ms, 15s or 5m")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Millis, E> {
                Millis::parse(&v.to_string()).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Millis, E> {
                Err(E::custom(format!(
                    "{v} is negative: a duration must be 0 or more"
                )))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Millis, E> {
                Millis::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Millis {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SimDuration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A duration: whole seconds, or a number with ms, s, m, h or d (250ms, 15s, 5m).",
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": "^[0-9]+(ms|[smhd])?$"}
            ]
        })
    }
}

/// `simulate:` as written. Every field is optional.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Simulate {
    #[serde(default)]
    pub client: Option<ClientSpec>,
    #[serde(default)]
    pub hpa: Option<HpaSpec>,
    #[serde(default)]
    pub keda: Option<KedaSpec>,
    #[serde(default)]
    pub karpenter: Option<KarpenterSpec>,
    #[serde(default)]
    pub pod: Option<PodSpec>,
    #[serde(default)]
    pub lb: Option<LbSpec>,
    #[serde(default)]
    pub prometheus: Option<PrometheusSpec>,
    #[serde(default)]
    pub builds: Option<BuildsSpec>,
}

/// The build client's connect-retry loop.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientSpec {
    /// Connection attempts before the build fails. Default 40.
    #[serde(default)]
    pub attempts: Option<Located<u32>>,
    /// Sleep between attempts. Default 15s.
    #[serde(default)]
    pub delay: Option<Millis>,
    /// How long one attempt waits for a worker; 0 waits until served. Default 20s.
    #[serde(default)]
    pub attempt_timeout: Option<Millis>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HpaSpec {
    /// Controller sync period. Default 15s.
    #[serde(default)]
    pub sync_period: Option<Millis>,
    /// Reconcile time added to each period, drawn uniformly in [0, this]. Default 200ms.
    #[serde(default)]
    pub sync_jitter: Option<Millis>,
    /// Default 0.1 each.
    #[serde(default)]
    pub tolerance_up: Option<Located<f64>>,
    #[serde(default)]
    pub tolerance_down: Option<Located<f64>>,
    /// Scale-up policies: Pods 4 and Percent 100 per 15s, selectPolicy Max, window 0.
    #[serde(default)]
    pub scale_up_pods: Option<u32>,
    #[serde(default)]
    pub scale_up_percent: Option<u32>,
    #[serde(default)]
    pub scale_up_period: Option<Millis>,
    #[serde(default)]
    pub scale_up_window: Option<Millis>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KedaSpec {
    /// Probability that one metric fetch fails. Default 0.
    #[serde(default)]
    pub fetch_failure: Option<Located<f64>>,
    /// Windows in which every fetch fails (the LB's metrics port unreachable).
    #[serde(default)]
    pub outages: Vec<Outage>,
    /// Serve the HPA the value of the last polling tick instead of a live fetch.
    #[serde(default)]
    pub use_cached_metrics: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Outage {
    pub start: Millis,
    pub duration: Millis,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KarpenterSpec {
    /// Batch window: closes after this long without a new pending pod. Default 1s.
    #[serde(default)]
    pub batch_idle: Option<Millis>,
    /// ... or after this long in total. Default 10s.
    #[serde(default)]
    pub batch_max: Option<Millis>,
    /// NodeClaim to node Ready, lognormal. Defaults median 45s, p95 90s.
    #[serde(default)]
    pub launch_median: Option<Millis>,
    #[serde(default)]
    pub launch_p95: Option<Millis>,
    /// Extra node initialisation (RAID0, DaemonSets). Default 15s.
    #[serde(default)]
    pub node_init: Option<Millis>,
    /// WhenEmpty: a node empty this long is removed. Default 5m.
    #[serde(default)]
    pub consolidate_after: Option<Millis>,
    /// Nodes disrupted at a time. Default 1.
    #[serde(default)]
    pub budget_nodes: Option<u32>,
    /// Disruption controller poll and command validation. Defaults 10s, 15s.
    #[serde(default)]
    pub disruption_poll: Option<Millis>,
    #[serde(default)]
    pub validation: Option<Millis>,
    /// Taint to instance gone. Default 45s.
    #[serde(default)]
    pub deletion: Option<Millis>,
    /// $ per node-hour by instance type, for the cost per type; no default
    /// (the specs carry no prices).
    #[serde(default)]
    pub prices: std::collections::BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PodSpec {
    /// Worker image pull on a node that has not pulled it. Default 10s.
    #[serde(default)]
    pub image_pull: Option<Millis>,
    /// Container start to worker serving. Default 3s.
    #[serde(default)]
    pub startup: Option<Millis>,
    /// Readiness probe initial delay and period. Defaults 5s, 30s.
    #[serde(default)]
    pub readiness_delay: Option<Millis>,
    #[serde(default)]
    pub readiness_period: Option<Millis>,
    /// preStop: an idle pod leaves after this. Default 15s.
    #[serde(default)]
    pub drain_idle: Option<Millis>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LbSpec {
    /// Ready pod to usable HAProxy slot (EndpointSlice, DNS TTL, resolver),
    /// uniform in [min, max]. Defaults 1s, 6s.
    #[serde(default)]
    pub dns_delay_min: Option<Millis>,
    #[serde(default)]
    pub dns_delay_max: Option<Millis>,
    /// HAProxy `option abortonclose`: a client that gives up leaves the queue. Default true.
    #[serde(default)]
    pub abortonclose: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrometheusSpec {
    /// Rule evaluation interval. Default 60s.
    #[serde(default)]
    pub evaluation_interval: Option<Millis>,
    /// Offset of the scrapes from the evaluation grid; default: drawn from the seed.
    #[serde(default)]
    pub scrape_phase: Option<Millis>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BuildsSpec {
    /// Synthetic build durations, lognormal. Defaults median 20m, p95 60m.
    #[serde(default)]
    pub duration_median: Option<Millis>,
    #[serde(default)]
    pub duration_p95: Option<Millis>,
}

/// Every parameter resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub attempts: u32,
    pub retry_delay: u64,
    /// 0: wait until served.
    pub attempt_timeout: u64,
    pub hpa_period: u64,
    pub hpa_jitter: u64,
    pub tolerance_up: f64,
    pub tolerance_down: f64,
    pub scale_up_pods: u32,
    pub scale_up_percent: u32,
    pub scale_up_period: u64,
    pub scale_up_window: u64,
    pub fetch_failure: f64,
    pub outages: Vec<(u64, u64)>,
    pub use_cached_metrics: bool,
    pub batch_idle: u64,
    pub batch_max: u64,
    pub launch_median: u64,
    pub launch_p95: u64,
    pub node_init: u64,
    pub consolidate_after: u64,
    pub budget_nodes: u32,
    pub disruption_poll: u64,
    pub validation: u64,
    pub deletion: u64,
    pub image_pull: u64,
    pub startup: u64,
    pub readiness_delay: u64,
    pub readiness_period: u64,
    pub drain_idle: u64,
    pub dns_min: u64,
    pub dns_max: u64,
    pub abortonclose: bool,
    pub eval_interval: u64,
    pub scrape_phase: Option<u64>,
    pub duration_median: u64,
    pub duration_p95: u64,
    pub prices: std::collections::BTreeMap<String, f64>,
}

impl Default for Params {
    fn default() -> Self {
        Params::resolve(&Simulate::default())
    }
}

fn ms(v: Option<Millis>, default_ms: u64) -> u64 {
    v.map(|m| m.0).unwrap_or(default_ms)
}

impl Params {
    /// Fills every default. Range problems are reported by `problems`.
    pub fn resolve(s: &Simulate) -> Params {
        let c = s.client.clone().unwrap_or_default();
        let h = s.hpa.clone().unwrap_or_default();
        let k = s.keda.clone().unwrap_or_default();
        let n = s.karpenter.clone().unwrap_or_default();
        let p = s.pod.clone().unwrap_or_default();
        let l = s.lb.clone().unwrap_or_default();
        let m = s.prometheus.clone().unwrap_or_default();
        let b = s.builds.clone().unwrap_or_default();
        Params {
            attempts: c.attempts.map(|a| a.value).unwrap_or(40),
            retry_delay: ms(c.delay, 15_000),
            attempt_timeout: ms(c.attempt_timeout, 20_000),
            hpa_period: ms(h.sync_period, 15_000),
            hpa_jitter: ms(h.sync_jitter, 200),
            tolerance_up: h.tolerance_up.map(|t| t.value).unwrap_or(0.1),
            tolerance_down: h.tolerance_down.map(|t| t.value).unwrap_or(0.1),
            scale_up_pods: h.scale_up_pods.unwrap_or(4),
            scale_up_percent: h.scale_up_percent.unwrap_or(100),
            scale_up_period: ms(h.scale_up_period, 15_000),
            scale_up_window: ms(h.scale_up_window, 0),
            fetch_failure: k.fetch_failure.map(|f| f.value).unwrap_or(0.0),
            outages: k
                .outages
                .iter()
                .map(|o| (o.start.0, o.start.0.saturating_add(o.duration.0)))
                .collect(),
            use_cached_metrics: k.use_cached_metrics.unwrap_or(false),
            batch_idle: ms(n.batch_idle, 1_000),
            batch_max: ms(n.batch_max, 10_000),
            launch_median: ms(n.launch_median, 45_000),
            launch_p95: ms(n.launch_p95, 90_000),
            node_init: ms(n.node_init, 15_000),
            consolidate_after: ms(n.consolidate_after, 300_000),
            budget_nodes: n.budget_nodes.unwrap_or(1),
            disruption_poll: ms(n.disruption_poll, 10_000),
            validation: ms(n.validation, 15_000),
            deletion: ms(n.deletion, 45_000),
            image_pull: ms(p.image_pull, 10_000),
            startup: ms(p.startup, 3_000),
            readiness_delay: ms(p.readiness_delay, 5_000),
            readiness_period: ms(p.readiness_period, 30_000),
            drain_idle: ms(p.drain_idle, 15_000),
            dns_min: ms(l.dns_delay_min, 1_000),
            dns_max: ms(l.dns_delay_max, 6_000),
            abortonclose: l.abortonclose.unwrap_or(true),
            eval_interval: ms(m.evaluation_interval, 60_000),
            scrape_phase: m.scrape_phase.map(|p| p.0),
            duration_median: ms(b.duration_median, 20 * 60_000),
            duration_p95: ms(b.duration_p95, 60 * 60_000),
            prices: n.prices.clone(),
        }
    }

    /// Values that parse but cannot be simulated, each with where and the fix.
    pub fn problems(s: &Simulate) -> Vec<(serde_saphyr::Location, String, String)> {
        let mut out = Vec::new();
        let mut probability = |v: &Option<Located<f64>>, what: &str| {
            if let Some(v) = v {
                if !(0.0..=1.0).contains(&v.value) {
                    out.push((
                        v.referenced,
                        format!("simulate {what} {} is not a probability", v.value),
                        "use a number from 0 to 1".to_string(),
                    ));
                }
            }
        };
        if let Some(k) = &s.keda {
            probability(&k.fetch_failure, "keda.fetch_failure");
        }
        if let Some(h) = &s.hpa {
            probability(&h.tolerance_up, "hpa.tolerance_up");
            probability(&h.tolerance_down, "hpa.tolerance_down");
        }
        if let Some(c) = &s.client {
            if let Some(a) = &c.attempts {
                if a.value == 0 {
                    out.push((
                        a.referenced,
                        "simulate client.attempts is 0: no build could ever connect".to_string(),
                        "use 1 or more (the pytorch helper uses 40)".to_string(),
                    ));
                }
            }
        }
        let p = Params::resolve(s);
        if p.hpa_period == 0 || p.eval_interval == 0 || p.disruption_poll == 0 {
            out.push((
                serde_saphyr::Location::UNKNOWN,
                "simulate hpa.sync_period, prometheus.evaluation_interval and karpenter.disruption_poll must be above 0".to_string(),
                "use at least 1s".to_string(),
            ));
        }
        if p.launch_p95 < p.launch_median || p.duration_p95 < p.duration_median {
            out.push((
                serde_saphyr::Location::UNKNOWN,
                "simulate: a p95 is below its median".to_string(),
                "set launch_p95 >= launch_median and duration_p95 >= duration_median".to_string(),
            ));
        }
        if let Some((t, price)) = p
            .prices
            .iter()
            .find(|(_, v)| !(v.is_finite() && **v >= 0.0))
        {
            out.push((
                serde_saphyr::Location::UNKNOWN,
                format!("simulate karpenter.prices: {t} costs {price}"),
                "give dollars per node-hour, 0 or more".to_string(),
            ));
        }
        if p.dns_max < p.dns_min {
            out.push((
                serde_saphyr::Location::UNKNOWN,
                "simulate lb.dns_delay_max is below dns_delay_min".to_string(),
                "set dns_delay_max >= dns_delay_min".to_string(),
            ));
        }
        out
    }
}
