//! `poolc simulate`: replays build arrivals through the pieces `generate`
//! emits (HAProxy backend, KEDA, HPA, ReplicaSet, Karpenter) and evaluates
//! the generated alerts on the scrape-sampled series, to predict queue
//! waits, failed builds, cold boots, pod- and node-hours and paging before a
//! spec change ships. Deterministic per seed: integer time, seeded streams.

pub mod engine;
pub mod hpa;
pub mod jobs;
pub mod karpenter;
pub mod keda;
pub mod params;
pub mod plot;
pub mod prometheus;
pub mod report;
pub mod rng;
pub mod workload;

use std::fmt;
use std::path::PathBuf;

use crate::fileset::FileSet;
use crate::model::{Cluster, Model, Pool};
use engine::PoolConfig;
use prometheus::{RuleFile, Store};
use report::{PoolReport, Report};
use workload::{Arrival, Durations, Generated, Generator, Trace, TraceError, Workload};

/// What to simulate.
#[derive(Debug, Clone)]
pub struct Request {
    /// `<cluster>` or `<cluster>/<pool>`.
    pub target: String,
    pub workload: Choice,
    pub seed: u64,
    /// Simulate at least this long (ms); default from the workload.
    pub horizon: Option<u64>,
    /// Build durations for generators and scenarios without their own.
    pub durations: Option<Durations>,
    /// Evaluate the generated alerts (the costliest part of a long run).
    pub alerts: bool,
}

#[derive(Debug, Clone)]
pub enum Choice {
    Scenario(String),
    Trace(PathBuf),
    Generator(Generator),
}

/// Why nothing was simulated: always bad input (exit 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimError {
    Input { message: String, help: String },
    Trace(TraceError),
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::Input { message, help } => write!(f, "error: {message}\n  help: {help}"),
            SimError::Trace(e) => write!(f, "{e}"),
        }
    }
}

fn input(message: impl Into<String>, help: impl Into<String>) -> SimError {
    SimError::Input {
        message: message.into(),
        help: help.into(),
    }
}

/// The pools a target names: `<cluster>` (all its pools) or
/// `<cluster>/<pool>`; several separated by commas.
fn targets<'m>(model: &'m Model, target: &str) -> Result<Vec<(&'m Cluster, &'m Pool)>, SimError> {
    let mut out = Vec::new();
    for one in target.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let (cluster_name, pool_name) = match one.split_once('/') {
            Some((c, p)) => (c, Some(p)),
            None => (one, None),
        };
        let Some(cluster) = model.clusters.iter().find(|c| c.name == cluster_name) else {
            let known: Vec<&str> = model.clusters.iter().map(|c| c.name.as_str()).collect();
            return Err(input(
                format!("no cluster `{cluster_name}`"),
                format!("the specs define {}", known.join(", ")),
            ));
        };
        match pool_name {
            Some(p) => match cluster.pools.iter().find(|x| x.name == p) {
                Some(pool) => out.push((cluster, pool)),
                None => {
                    let known: Vec<&str> = cluster.pools.iter().map(|x| x.name.as_str()).collect();
                    return Err(input(
                        format!("no pool `{p}` in cluster {cluster_name}"),
                        format!("its pools are {}", known.join(", ")),
                    ));
                }
            },
            None => out.extend(cluster.pools.iter().map(|p| (cluster, p))),
        }
    }
    if out.is_empty() {
        return Err(input(
            format!("`{target}` names no pool"),
            "name <cluster> or <cluster>/<pool>",
        ));
    }
    Ok(out)
}

/// The workload of a request for a cluster's parameters, and its label.
fn resolve_workload(req: &Request, cluster: &Cluster) -> Result<(Workload, String), SimError> {
    let params = &cluster.simulate;
    let durations = req.durations.unwrap_or(Durations::Lognormal {
        median: params.duration_median as f64,
        p95: params.duration_p95 as f64,
    });
    Ok(match &req.workload {
        Choice::Scenario(name) => (
            workload::scenario(name, durations).map_err(|e| {
                input(
                    e,
                    "pass --scenario with one of those names, --trace FILE, or a generator",
                )
            })?,
            format!("scenario {name}"),
        ),
        Choice::Trace(path) => (
            Workload::Trace(Trace::open(path)),
            format!("trace {}", path.display()),
        ),
        Choice::Generator(g) => (
            Workload::Generated {
                generator: g.clone(),
                durations,
                horizon: req.horizon.unwrap_or(86_400_000),
            },
            describe(g),
        ),
    })
}

/// Checks a trace once, streaming; returns its last arrival (ms).
fn trace_end(workload: &Workload, names: &[String]) -> Result<u64, SimError> {
    let mut end = 0;
    if let Workload::Trace(t) = workload {
        for a in t.read(names).map_err(SimError::Trace)? {
            end = end.max(a.map_err(SimError::Trace)?.at);
        }
    }
    Ok(end)
}

/// A cluster ready to run: compiled rules, workload, pool names, trace end.
struct Prepared<'m> {
    cluster: &'m Cluster,
    rules: Vec<prometheus::Compiled>,
    workload: Workload,
    names: Vec<String>,
    trace_end: u64,
}

/// Compiles a cluster's rules and resolves its workload (and its label).
fn prepare<'m>(
    cluster: &'m Cluster,
    files: &FileSet,
    req: &Request,
) -> Result<(Prepared<'m>, String), SimError> {
    let rules = prometheus::compile(&rule_files(cluster, files)).map_err(|e| {
        input(
            e,
            "fix the rule, or run `poolc generate` to see the PromQL gate's finding",
        )
    })?;
    let (workload, label) = resolve_workload(req, cluster)?;
    let names: Vec<String> = cluster.pools.iter().map(|p| p.name.clone()).collect();
    let end = trace_end(&workload, &names)?;
    Ok((
        Prepared {
            cluster,
            rules,
            workload,
            names,
            trace_end: end,
        },
        label,
    ))
}

/// Runs the request against the model and its rendered FileSet.
pub fn simulate(model: &Model, files: &FileSet, req: &Request) -> Result<Report, SimError> {
    let pools = targets(model, &req.target)?;
    let mut clusters: Vec<&Cluster> = Vec::new();
    for (cluster, _) in &pools {
        if !clusters.iter().any(|c| c.name == cluster.name) {
            clusters.push(cluster);
        }
    }
    let mut prepared: Vec<Prepared> = Vec::new();
    let mut label = String::new();
    for r in crate::parallel::map(&clusters, 1, |c| prepare(c, files, req)) {
        let (p, l) = r?;
        prepared.push(p);
        label = l;
    }
    let run_pool = |&(cluster, pool): &(&Cluster, &Pool)| -> Result<PoolReport, SimError> {
        let Some(p) = prepared.iter().find(|p| p.cluster.name == cluster.name) else {
            return Err(input("a cluster was not prepared", "report this as a bug"));
        };
        let run = run_one(
            cluster,
            pool,
            &p.rules,
            &p.workload,
            &p.names,
            p.trace_end,
            req,
        )?;
        let mine: Vec<_> = run
            .alerts
            .iter()
            .filter(|a| a.labels.get("pool").is_none_or(|n| *n == pool.name))
            .cloned()
            .collect();
        let options = karpenter::options(pool, &cluster.simulate.prices);
        let (types, cost) = report::node_types(
            &options,
            &run.outcome.boots_by_option,
            &run.outcome.node_ms_by_option,
        );
        let mut report = PoolReport::new(
            format!("{}/{}", cluster.name, pool.name),
            run.outcome,
            &mine,
            cluster.simulate.eval_interval,
        );
        report.node_types = types;
        report.cost = cost;
        Ok(report)
    };
    // Pools differ in size by orders of magnitude and the cores are shared:
    // each core takes the next pool when it finishes one.
    let results = crate::parallel::map_each(&pools, run_pool);
    let mut out = Vec::new();
    for r in results {
        out.push(r?);
    }
    Ok(Report {
        seed: req.seed,
        workload: label,
        pools: out,
    })
}

fn describe(g: &Generator) -> String {
    match g {
        Generator::Poisson { per_hour } => format!("poisson {per_hour}/h"),
        Generator::Bursts {
            per_hour,
            mean_size,
        } => format!("bursts {per_hour}/h of {mean_size}"),
        Generator::Diurnal { trough, peak } => format!("diurnal {trough}–{peak}/h"),
        Generator::Batches(b) => format!("{} batches", b.len()),
    }
}

/// The simulator's view of one pool, from the Model.
pub fn pool_config(cluster: &Cluster, pool: &Pool) -> PoolConfig {
    let first = &pool.node_pools[0];
    let lb = pool.lb.as_ref();
    PoolConfig {
        cluster: cluster.name.clone(),
        pool: pool.name.clone(),
        namespace: cluster.namespace.clone(),
        lb_job: cluster.lb.metrics_service.clone(),
        backend: lb.map(|b| b.backend.clone()).unwrap_or_default(),
        workload: pool.workload.clone(),
        nodepool: first.name.clone(),
        min: pool.min,
        max: pool.max,
        pods_per_node: first.pods_per_node.max(1),
        max_nodes: first.max_nodes,
        node_vcpu: first.instance_type.vcpu,
        node_memory_gib: first.instance_type.memory_gib as u32,
        target: pool.scaling.target_sessions.max(1) as f64,
        stabilization_ms: pool.scaling.stabilization.0 * 1000,
        scale_down_pods: pool.scaling.scale_down_pods,
        scale_down_percent: pool.scaling.scale_down_percent,
        scale_down_period_ms: pool.scaling.scale_down_period.0 * 1000,
        polling_ms: (pool.scaling.polling_interval.0 * 1000).max(1000),
        fallback: pool.fallback,
        keda: cluster.exporters.keda,
        queue_timeout_ms: lb.map(|b| b.timeout_queue.0 * 1000).unwrap_or(0),
        slots: lb.map(|b| b.slots).unwrap_or(pool.max),
        scrape_ms: (cluster.scrape_interval.0 * 1000).max(1000),
        node_options: karpenter::options(pool, &cluster.simulate.prices),
    }
}

/// The simulator's view of one jobs pool (ScaledJob), from the Model.
pub fn jobs_config(cluster: &Cluster, pool: &Pool, jobs: &crate::model::Jobs) -> jobs::JobsConfig {
    jobs::JobsConfig {
        cluster: cluster.name.clone(),
        pool: pool.name.clone(),
        namespace: cluster.namespace.clone(),
        workload: pool.workload.clone(),
        min: pool.min,
        max: pool.max,
        strategy: jobs.scaling_strategy,
        target: jobs.target.max(1) as f64,
        polling_ms: (pool.scaling.polling_interval.0 * 1000).max(1000),
        scrape_ms: (cluster.scrape_interval.0 * 1000).max(1000),
        active_deadline_ms: (jobs.active_deadline.0 * 1000).max(1000),
        node_options: karpenter::options(pool, &cluster.simulate.prices),
        queue_series: jobs::query_series(&jobs.query),
        lb_job: cluster.lb.metrics_service.clone(),
    }
}

/// Every Prometheus rule file `generate` writes for the cluster (plain
/// `groups:` YAML; the PrometheusRule objects carry the same rules).
pub fn rule_files(cluster: &Cluster, files: &FileSet) -> Vec<RuleFile> {
    let prefix = format!("{}/", cluster.name);
    files
        .iter()
        .filter(|(path, _)| {
            path.starts_with(&prefix) && (path.ends_with(".yaml") || path.ends_with(".yml"))
        })
        .filter(|(_, text)| text.lines().any(|l| l.starts_with("groups:")))
        .filter_map(|(_, text)| serde_saphyr::from_str::<RuleFile>(text).ok())
        .collect()
}

/// Loads and renders the specs in `specs_dir` and runs the request on them.
pub fn simulate_specs(specs_dir: &std::path::Path, req: &Request) -> Result<Report, String> {
    let model = crate::pipeline::load_model(specs_dir).map_err(|f| f.to_string())?;
    // Only the clusters simulated need their rule files.
    let wanted: Vec<&str> = req
        .target
        .split(',')
        .map(|t| t.trim().split('/').next().unwrap_or(""))
        .collect();
    let clusters: Vec<&Cluster> = model
        .clusters
        .iter()
        .filter(|c| wanted.contains(&c.name.as_str()))
        .collect();
    // The rule files are all a run reads of the rendered output.
    let rendered = crate::parallel::map(&clusters, 1, |c| crate::render::rules::render(c));
    let mut files = FileSet::new();
    for r in rendered {
        files
            .extend(r.map_err(|e| format!("error: {e}"))?)
            .map_err(|e| format!("error: {e}"))?;
    }
    simulate(&model, &files, req).map_err(|e| e.to_string())
}

/// What `poolc plan --simulate SCENARIO` adds to a plan: the scenario run
/// on every pool of the clusters of `specs` that have a service pool
/// ("after") and, where `baseline` holds
/// the base branch's specs, on the same clusters there ("before"). Both
/// runs take the same seed, so a difference comes from the specs alone.
pub fn plan_runs(
    specs: &std::path::Path,
    baseline: Option<&std::path::Path>,
    scenario: &str,
) -> Result<(Report, Option<Report>), String> {
    let clusters_with_service_pools = |dir: &std::path::Path| -> Result<Vec<String>, String> {
        let model = crate::pipeline::load_model(dir).map_err(|f| f.to_string())?;
        Ok(model
            .clusters
            .iter()
            .filter(|c| c.pools.iter().any(|p| p.mode == crate::spec::Mode::Service))
            .map(|c| c.name.clone())
            .collect())
    };
    let request = |clusters: &[String]| Request {
        target: clusters.join(","),
        workload: Choice::Scenario(scenario.to_string()),
        seed: 1,
        horizon: None,
        durations: None,
        alerts: true,
    };
    let after_clusters = clusters_with_service_pools(specs)?;
    if after_clusters.is_empty() {
        return Err("error: --simulate: no cluster has a service pool to simulate".to_string());
    }
    let after = simulate_specs(specs, &request(&after_clusters))?;
    let before = match baseline {
        Some(dir) => {
            let base = clusters_with_service_pools(dir)?;
            let shared: Vec<String> = after_clusters
                .iter()
                .filter(|c| base.contains(c))
                .cloned()
                .collect();
            if shared.is_empty() {
                None
            } else {
                Some(simulate_specs(dir, &request(&shared))?)
            }
        }
        None => None,
    };
    Ok((after, before))
}

/// The SVG timelines of a report, one file per pool: `<cluster>-<pool>.svg`.
pub fn svg_files(report: &Report) -> Result<FileSet, String> {
    let mut set = FileSet::new();
    for p in &report.pools {
        let name = format!("{}.svg", p.pool.replace('/', "-"));
        set.insert(crate::fileset::File::new(name, plot::svg(p)?))
            .map_err(|e| format!("error: {e}"))?;
    }
    Ok(set)
}

/// Parses `--horizon`, `--bursts PER_HOUR:SIZE` and `--diurnal TROUGH:PEAK`.
pub fn parse_generator(
    poisson: Option<f64>,
    bursts: Option<&str>,
    diurnal: Option<&str>,
) -> Result<Option<Generator>, String> {
    let pair = |flag: &str, text: &str| -> Result<(f64, f64), String> {
        let parsed = text.split_once(':').and_then(|(a, b)| {
            Some((a.trim().parse::<f64>().ok()?, b.trim().parse::<f64>().ok()?))
        });
        match parsed {
            Some((a, b)) if a >= 0.0 && b >= 0.0 && a.is_finite() && b.is_finite() => Ok((a, b)),
            _ => Err(format!(
                "error: {flag} `{text}`: write two numbers of 0 or more separated by `:`"
            )),
        }
    };
    let chosen = [poisson.is_some(), bursts.is_some(), diurnal.is_some()]
        .iter()
        .filter(|b| **b)
        .count();
    if chosen > 1 {
        return Err("error: choose one of --poisson, --bursts and --diurnal".to_string());
    }
    if let Some(rate) = poisson {
        if !(rate.is_finite() && rate >= 0.0) {
            return Err(format!(
                "error: --poisson {rate}: give builds per hour, 0 or more"
            ));
        }
        return Ok(Some(Generator::Poisson { per_hour: rate }));
    }
    if let Some(b) = bursts {
        let (per_hour, mean_size) = pair("--bursts", b)?;
        if mean_size < 1.0 {
            return Err(
                "error: --bursts PER_HOUR:SIZE needs a mean burst size of at least 1".into(),
            );
        }
        return Ok(Some(Generator::Bursts {
            per_hour,
            mean_size,
        }));
    }
    if let Some(d) = diurnal {
        let (trough, peak) = pair("--diurnal", d)?;
        return Ok(Some(Generator::Diurnal { trough, peak }));
    }
    Ok(None)
}

/// One pool's run in full: what it measured, the series Prometheus scraped
/// (the first `scraped` of the store; recording rules' outputs follow) and
/// every alert series that fired.
pub struct PoolRun {
    pub outcome: engine::Outcome,
    pub store: Store,
    pub scraped: usize,
    pub alerts: Vec<prometheus::AlertTimeline>,
}

fn run_one(
    cluster: &Cluster,
    pool: &Pool,
    rules: &[prometheus::Compiled],
    workload: &Workload,
    names: &[String],
    trace_end: u64,
    req: &Request,
) -> Result<PoolRun, SimError> {
    let params = &cluster.simulate;
    let cfg = pool_config(cluster, pool);
    let mut store = Store::default();
    let jobs_outcome = match &pool.jobs {
        Some(j) => Some(run_jobs(
            &jobs_config(cluster, pool, j),
            params,
            workload,
            names,
            trace_end,
            req,
            &mut store,
        )?),
        None => None,
    };
    let outcome = match (jobs_outcome, workload) {
        (Some(o), _) => o,
        (
            None,
            Workload::Generated {
                generator,
                durations,
                horizon,
            },
        ) => {
            let arrivals = Generated::new(generator.clone(), *durations, *horizon, req.seed);
            let h = req.horizon.unwrap_or(*horizon).max(*horizon);
            engine::run(&cfg, params, arrivals, h, req.seed, &mut store)
        }
        (None, Workload::Trace(t)) => {
            let reader = t.read(names).map_err(SimError::Trace)?;
            let name = pool.name.clone();
            let arrivals = reader
                .map_while(Result::ok)
                .filter(move |a: &Arrival| a.pool.as_ref().is_none_or(|p| *p == name));
            let h = req.horizon.unwrap_or(trace_end).max(trace_end);
            engine::run(&cfg, params, arrivals, h, req.seed, &mut store)
        }
    };
    let scraped = store.series.len();
    let interval = params.eval_interval.max(1) as i64;
    // Another pool's alerts read series this run does not have.
    let mine: Vec<&prometheus::Compiled> = rules
        .iter()
        .filter(|r| r.labels.get("pool").is_none_or(|p| *p == pool.name))
        .collect();
    let alerts = if req.alerts {
        prometheus::evaluate(&mine, &mut store, 0, outcome.end_ms as i64, interval)
    } else {
        Vec::new()
    };
    Ok(PoolRun {
        outcome,
        store,
        scraped,
        alerts,
    })
}

/// A jobs pool's run: the same arrivals, through the ScaledJob loop.
fn run_jobs(
    cfg: &jobs::JobsConfig,
    params: &params::Params,
    workload: &Workload,
    names: &[String],
    trace_end: u64,
    req: &Request,
    store: &mut Store,
) -> Result<engine::Outcome, SimError> {
    Ok(match workload {
        Workload::Generated {
            generator,
            durations,
            horizon,
        } => {
            let arrivals = Generated::new(generator.clone(), *durations, *horizon, req.seed);
            let h = req.horizon.unwrap_or(*horizon).max(*horizon);
            jobs::run(cfg, params, arrivals, h, req.seed, store)
        }
        Workload::Trace(t) => {
            let reader = t.read(names).map_err(SimError::Trace)?;
            let name = cfg.pool.clone();
            let arrivals = reader
                .map_while(Result::ok)
                .filter(move |a: &Arrival| a.pool.as_ref().is_none_or(|p| *p == name));
            let h = req.horizon.unwrap_or(trace_end).max(trace_end);
            jobs::run(cfg, params, arrivals, h, req.seed, store)
        }
    })
}

/// Runs one pool of the request and returns everything it produced: for
/// checks against other tools (promtool) and closed forms.
pub fn run_pool(model: &Model, files: &FileSet, req: &Request) -> Result<PoolRun, SimError> {
    let Some((cluster_name, pool_name)) = req.target.split_once('/') else {
        return Err(input("run_pool needs <cluster>/<pool>", "name one pool"));
    };
    let cluster = model
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .ok_or_else(|| input(format!("no cluster `{cluster_name}`"), "check the name"))?;
    let pool = cluster
        .pools
        .iter()
        .find(|p| p.name == pool_name)
        .ok_or_else(|| input(format!("no pool `{pool_name}`"), "check the name"))?;
    let rules =
        prometheus::compile(&rule_files(cluster, files)).map_err(|e| input(e, "fix the rule"))?;
    let (workload, _) = resolve_workload(req, cluster)?;
    let names: Vec<String> = cluster.pools.iter().map(|p| p.name.clone()).collect();
    let trace_end = trace_end(&workload, &names)?;
    run_one(cluster, pool, &rules, &workload, &names, trace_end, req)
}
