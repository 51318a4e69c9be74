//! `poolc simulate` against independent oracles: closed-form queueing results
//! (Erlang C, Erlang B, Little's law), the HPA's hand-computed sequences,
//! KEDA's version-specific fallback, promtool evaluating the same series, a
//! replay of a published staging run, and bad input.

mod common;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use common::{poolc, scratch, stderr, stdout, tool};
use poolc::simulate::hpa::{self, Behavior, Hpa, Policy, PolicyKind, Rules, Select};
use poolc::simulate::keda::{Fetched, PollAction, Scaler};
use poolc::simulate::workload::{Durations, Generator};
use poolc::simulate::{self, Choice, PoolRun, Request};

/// A one-pool cluster spec; `pool` and `simulate` are YAML inserted as given.
fn spec(keda: &str, pool: &str, simulate: &str, rules: &str) -> String {
    format!(
        r#"cluster:
  name: sim
  environment: test
  namespace: ci
  exporters:
    keda: "{keda}"
    haproxy: "3.1"
    kube-state-metrics: "2.13"
    karpenter: "1.14"
  scrape_interval: 60s
pools:
  - name: amd64
    arch: amd64
    port: 3234
    worker:
      image: moby/buildkit:v0.29.0
    instance_types:
      - type: m6id.24xlarge
        pods_per_node: 2
{pool}
simulate:
{simulate}
{rules}
"#
    )
}

fn run(dir: &Path, spec_text: &str, req: &Request) -> PoolRun {
    fs::write(dir.join("specs/sim.yaml"), spec_text).unwrap();
    let model = poolc::pipeline::load_model(&dir.join("specs")).unwrap_or_else(|e| panic!("{e}"));
    let files = poolc::render::render(&model).unwrap();
    let run = simulate::run_pool(&model, &files, req).unwrap_or_else(|e| panic!("{e}"));
    assert_littles_law(&run);
    run
}

/// Little's law holds on every sample path: the time-average number of
/// builds waiting equals the arrival rate times the mean time a build waits
/// (failed builds included), both over the whole run.
fn assert_littles_law(run: &PoolRun) {
    let o = &run.outcome;
    let area = o.waiting_area as f64;
    let total = o.waiting_total as f64;
    assert!(
        (area - total).abs() <= 1e-9 * total.max(1.0),
        "Little's law: ∫N(t)dt = {area} build·ms but Σ waits = {total}"
    );
}

fn request(generator: Generator, durations: Durations, horizon_h: u64, seed: u64) -> Request {
    Request {
        target: "sim/amd64".into(),
        workload: Choice::Generator(generator),
        seed,
        horizon: Some(horizon_h * 3_600_000),
        durations: Some(durations),
        alerts: false,
    }
}

// ---- Erlang C / Erlang B ---------------------------------------------------

/// Erlang C probability of waiting for c servers and offered load a.
fn erlang_c(c: u32, a: f64) -> f64 {
    let b = erlang_b(c, a);
    let rho = a / c as f64;
    b / (1.0 - rho * (1.0 - b))
}

/// Erlang B blocking probability by the stable recursion.
fn erlang_b(c: u32, a: f64) -> f64 {
    let mut b = 1.0;
    for k in 1..=c {
        b = a * b / (k as f64 + a * b);
    }
    b
}

fn mean_and_se(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

const FIXED_POOL: &str = "    min: 8\n    max: 8\n    haproxy:\n      timeout_queue: 365d";
const WAIT_FOREVER: &str = "  client:\n    attempts: 1\n    attempt_timeout: 0";

/// M/M/8 with λ = 0.6/min, μ = 0.1/min (a = 6): the vectors of the design
/// notes, C = 0.356981, E[W] = 1.7849 min, P(W > 10 min) = 0.048312,
/// P(W > 30 min) = 0.000885 — recomputed here from the formulas.
///
/// Run length and tolerance: 20 independent replications (seeds 1–20) of
/// 500 hours each (≈ 18,000 builds). Each replication's estimate is one
/// sample, so the spread of the 20 gives a standard error that includes the
/// autocorrelation of waits within a run. The check is |mean − exact| <
/// 4 standard errors + 1 % of the exact value (the empty start biases waits
/// slightly down); and the standard error must be small (under 5 % of the
/// exact value), so the check has power.
#[test]
fn fixed_pool_matches_erlang_c() {
    let dir = scratch("sim-erlang-c");
    let text = spec("2.16", FIXED_POOL, WAIT_FOREVER, "");
    let (c, lambda, mu) = (8u32, 0.6f64, 0.1f64);
    let a = lambda / mu;
    let p_wait = erlang_c(c, a);
    let decay = c as f64 * mu - lambda;
    let mean_wait = p_wait / decay;
    let tail = |t: f64| p_wait * (-decay * t).exp();
    assert!((p_wait - 0.356981).abs() < 1e-6, "{p_wait}");
    let mut estimates: [Vec<f64>; 4] = Default::default();
    for seed in 1..=20 {
        let req = request(
            Generator::Poisson {
                per_hour: lambda * 60.0,
            },
            Durations::Exponential {
                mean: 60_000.0 / mu,
            },
            500,
            seed,
        );
        let o = run(&dir, &text, &req).outcome;
        assert_eq!(o.failed, 0, "nobody gives up with attempt_timeout 0");
        let n = o.waits.len() as f64;
        let frac =
            |pred: &dyn Fn(u64) -> bool| o.waits.iter().filter(|&&w| pred(w)).count() as f64 / n;
        estimates[0].push(frac(&|w| w > 0));
        estimates[1].push(o.waits.iter().sum::<u64>() as f64 / n / 60_000.0);
        estimates[2].push(frac(&|w| w > 10 * 60_000));
        estimates[3].push(frac(&|w| w > 30 * 60_000));
    }
    let exact = [p_wait, mean_wait, tail(10.0), tail(30.0)];
    let names = ["P(wait)", "E[W] min", "P(W>10m)", "P(W>30m)"];
    for i in 0..4 {
        let (mean, se) = mean_and_se(&estimates[i]);
        assert!(
            (mean - exact[i]).abs() < 4.0 * se + 0.01 * exact[i],
            "{}: simulated {mean:.6} ± {se:.6}, Erlang C {:.6}",
            names[i],
            exact[i]
        );
        if i < 3 {
            assert!(
                se < 0.05 * exact[i],
                "{}: standard error {se} too large to test",
                names[i]
            );
        }
    }
}

/// With a queue timeout → 0 and no retry, a build that finds every worker
/// busy is lost: the loss fraction is Erlang B, B(8, 6) = 0.1219…
/// Tolerance as above (20 replications, 4 standard errors).
#[test]
fn zero_queue_timeout_matches_erlang_b() {
    let dir = scratch("sim-erlang-b");
    let text = spec(
        "2.16",
        FIXED_POOL,
        "  client:\n    attempts: 1\n    attempt_timeout: 1ms",
        "",
    );
    let b = erlang_b(8, 6.0);
    let mut lost = Vec::new();
    for seed in 1..=20 {
        let req = request(
            Generator::Poisson { per_hour: 36.0 },
            Durations::Exponential { mean: 600_000.0 },
            500,
            seed,
        );
        let o = run(&dir, &text, &req).outcome;
        lost.push(o.failed as f64 / o.builds as f64);
    }
    let (mean, se) = mean_and_se(&lost);
    assert!(
        (mean - b).abs() < 4.0 * se + 0.005,
        "lost {mean} ± {se}, Erlang B {b}"
    );
    assert!(se < 0.01, "{se}");
}

// ---- the HPA -----------------------------------------------------------------

fn behavior(min: u32, max: u32, down: Rules) -> Behavior {
    Behavior {
        up: Behavior::default_up(0.1),
        down,
        min,
        max,
    }
}

/// ci-infra's scale-down: window 1200 s, Pods 10 and Percent 20 per 1200 s, Max.
fn ci_infra_down() -> Rules {
    Rules {
        window_ms: 1_200_000,
        policies: vec![
            Policy {
                kind: PolicyKind::Pods,
                value: 10,
                period_ms: 1_200_000,
            },
            Policy {
                kind: PolicyKind::Percent,
                value: 20,
                period_ms: 1_200_000,
            },
        ],
        select: Select::Max,
        tolerance: 0.1,
    }
}

/// Syncs 15.1 s apart toward a constant demand; the distinct replica counts.
fn climb(from: u32, demand: f64, max: u32) -> Vec<u32> {
    let mut h = Hpa::new(behavior(from.min(2), max, ci_infra_down()));
    let mut r = from;
    let mut seen = vec![r];
    for k in 0..40 {
        r = h.sync(k * 15_100, Some(demand), 1.0, r, r);
        if seen.last() != Some(&r) {
            seen.push(r);
        }
    }
    seen
}

#[test]
fn hpa_scale_up_follows_the_hand_computed_sequences() {
    assert_eq!(climb(2, 40.0, 360), [2, 6, 12, 24, 40]);
    assert_eq!(climb(2, 360.0, 360), [2, 6, 12, 24, 48, 96, 192, 360]);
    assert_eq!(climb(4, 30.0, 30), [4, 8, 16, 30]);
    // A fallback of 32 reads as 32 sessions.
    assert_eq!(climb(2, 32.0, 360), [2, 6, 12, 24, 32]);
}

/// Demand drops to 0 just after a sync at t = 0: one step per 1200 s.
fn descend(from: u32) -> Vec<(u32, u64)> {
    let mut h = Hpa::new(behavior(2, 360, ci_infra_down()));
    let mut r = h.sync(0, Some(from as f64), 1.0, from, from);
    let mut steps = vec![(r, 0)];
    let mut t = 0;
    while r > 2 && t < 10 * 3_600_000 {
        t += 15_100;
        let next = h.sync(t, Some(0.0), 1.0, r, r);
        if next != r {
            steps.push((next, t));
        }
        r = next;
    }
    steps
}

#[test]
fn hpa_scale_down_follows_the_hand_computed_sequences() {
    let big = descend(360);
    let counts: Vec<u32> = big.iter().map(|&(r, _)| r).collect();
    assert_eq!(
        counts,
        [360, 288, 230, 184, 147, 117, 93, 74, 59, 47, 37, 27, 17, 7, 2]
    );
    for pair in big.windows(2).skip(1) {
        let gap = pair[1].1 - pair[0].1;
        assert!((1_200_000..1_200_000 + 15_100).contains(&gap), "{gap}");
    }
    let last = big.last().unwrap().1;
    assert!((14 * 1_200_000..14 * 1_200_000 + 14 * 15_100).contains(&last));
    let hundred: Vec<u32> = descend(100).iter().map(|&(r, _)| r).collect();
    assert_eq!(hundred, [100, 80, 64, 51, 40, 30, 20, 10, 2]);
    let thirty: Vec<u32> = descend(30).iter().map(|&(r, _)| r).collect();
    assert_eq!(thirty, [30, 20, 10, 2]);
    let eight: Vec<u32> = descend(8).iter().map(|&(r, _)| r).collect();
    assert_eq!(eight, [8, 2]);
}

#[test]
fn hpa_tolerance_uses_float_arithmetic() {
    for (status, sessions, want) in [
        (100, 109.0, 100),
        (100, 110.0, 110),
        (100, 90.0, 100),
        (100, 89.0, 89),
        (10, 11.0, 11),
        (30, 32.0, 30),
        (36, 32.0, 32),
    ] {
        assert_eq!(
            hpa::proposal(sessions, 1.0, status, 0.1, 0.1),
            want,
            "{status} {sessions}"
        );
    }
}

// ---- KEDA -------------------------------------------------------------------------

#[test]
fn keda_2_16_falls_back_on_the_first_polling_error_later_versions_wait() {
    use poolc::catalog::Version;
    use poolc::model::Fallback;
    let fallback = Some(Fallback {
        failure_threshold: 3,
        replicas: 32,
    });
    let mut old = Scaler::new(Version::new(2, 16), fallback, 1.0);
    assert_eq!(old.poll(None), PollAction::ScaleTo(32));
    for version in [Version::new(2, 17), Version::new(2, 20)] {
        let mut new = Scaler::new(version, fallback, 1.0);
        assert_eq!(new.poll(None), PollAction::None);
        let mut s = Scaler::new(version, fallback, 1.0);
        for _ in 0..3 {
            assert_eq!(s.for_hpa(None), Fetched::Error);
        }
        assert_eq!(
            s.for_hpa(None),
            Fetched::Value(32.0),
            "the 4th failure engages"
        );
        assert_eq!(s.for_hpa(Some(7.0)), Fetched::Value(7.0));
    }
}

/// The whole loop: ~100 busy builds and one 40 s outage of the LB's metrics
/// (one polling tick, at most three HPA syncs). KEDA 2.16 scales the
/// Deployment to the fallback 32 and the HPA climbs back with cold pods;
/// 2.17 and later change nothing.
#[test]
fn keda_2_16_flap_costs_cold_pods_that_2_17_does_not() {
    let dir = scratch("sim-keda");
    let pool = "    min: 2\n    max: 360\n    fallback:\n      replicas: 32\n    haproxy:\n      timeout_queue: 365d";
    let sim = "  client:\n    attempts: 1\n    attempt_timeout: 0\n  keda:\n    outages:\n      - start: 3h\n        duration: 40s";
    let req = request(
        Generator::Poisson { per_hour: 600.0 },
        Durations::Fixed(10 * 60_000),
        6,
        3,
    );
    let old = run(&dir, &spec("2.16", pool, sim, ""), &req).outcome;
    let new = run(&dir, &spec("2.17", pool, sim, ""), &req).outcome;
    assert_eq!(old.builds, new.builds);
    assert!(
        old.fallback_episodes >= 1,
        "2.16 fell back {}",
        old.fallback_episodes
    );
    assert_eq!(new.fallback_episodes, 0);
    assert!(
        old.cold_pod_starts >= new.cold_pod_starts + 30,
        "2.16 {} cold pods vs 2.17 {}",
        old.cold_pod_starts,
        new.cold_pod_starts
    );
}

// ---- alerts against promtool ----------------------------------------------------

/// Seed 000's case with the reviewer's assumptions: batches of 2 at minutes
/// 0, 3, 10 and 14 on a warm pool of 2, new capacity 7–8 minutes away, and
/// clients that wait in the LB queue. The backlog alert at `> 0 for 15m`
/// (added as a team rule) fires; the generated `> 20` stays quiet. Then the
/// scraped series go to promtool with the generated rule file, and at every
/// minute the set of firing alerts must be the one poolc predicted.
#[test]
fn seed_000_alerts_agree_with_promtool() {
    let dir = scratch("sim-seed000");
    let pool = "    min: 2\n    max: 8\n    haproxy:\n      timeout_queue: 2h";
    let sim = "  client:\n    attempt_timeout: 0\n  builds:\n    duration_median: 20m\n    duration_p95: 40m\n  karpenter:\n    launch_median: 390s\n    launch_p95: 450s\n  prometheus:\n    scrape_phase: 0s";
    let rules = "rules:\n  alerts:\n    - alert: PoolQueueNotEmpty\n      expr: poolc:pool_queue:connections{pool=\"$pool\"} > 0\n      for: 15m\n      labels:\n        severity: info";
    let text = spec("2.16", pool, sim, rules);
    let req = Request {
        target: "sim/amd64".into(),
        workload: Choice::Scenario("seed000".into()),
        seed: 1,
        horizon: None,
        durations: None,
        alerts: true,
    };
    let run = run(&dir, &text, &req);
    let fired: BTreeSet<&str> = run.alerts.iter().map(|a| a.alert.as_str()).collect();
    assert!(
        fired.contains("PoolQueueNotEmpty"),
        "`> 0 for 15m` fires: {fired:?}"
    );
    assert!(
        !fired.contains("PoolQueueBacklog"),
        "`> 20 for 15m` stays quiet: {fired:?}"
    );

    let Some(promtool) = tool("promtool", "apt-get install prometheus") else {
        return;
    };
    let model = poolc::pipeline::load_model(&dir.join("specs")).unwrap();
    let files = poolc::render::render(&model).unwrap();
    let rules_text = files
        .get("sim/prometheus/rules.yaml")
        .expect("plain rule file");
    fs::write(dir.join("rules.yaml"), rules_text).unwrap();
    let minutes = run.outcome.end_ms / 60_000;
    // promtool evaluates groups in random order unless told; Prometheus
    // evaluates a file's groups each on its own offset. poolc evaluates them
    // in file order, recording rules first, so the test fixes that order.
    let groups: poolc::simulate::prometheus::RuleFile = serde_saphyr::from_str(rules_text).unwrap();
    let order: Vec<String> = groups
        .groups
        .iter()
        .map(|g| format!("\"{}\"", g.name))
        .collect();
    let mut test = format!(
        "rule_files: [rules.yaml]\nevaluation_interval: 1m\ngroup_eval_order: [{}]\ntests:\n  - interval: 1m\n    input_series:\n",
        order.join(", ")
    );
    for s in &run.store.series[..run.scraped] {
        let labels: Vec<String> = s
            .labels
            .iter()
            .filter(|(k, _)| k != "__name__")
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect();
        let values: Vec<String> = s.samples.iter().map(|(_, v)| format!("{v}")).collect();
        assert!(
            s.samples
                .iter()
                .enumerate()
                .all(|(i, (t, _))| *t == i as i64 * 60_000),
            "scrapes sit on the minute grid"
        );
        let _ = writeln!(
            test,
            "      - series: '{}{{{}}}'\n        values: '{}'",
            s.name(),
            labels.join(","),
            values.join(" ")
        );
    }
    test.push_str("    promql_expr_test:\n");
    for m in 0..minutes {
        let t = m as i64 * 60_000;
        let _ = writeln!(
            test,
            "      - expr: ALERTS{{alertstate=\"firing\"}}\n        eval_time: {m}m\n        exp_samples:"
        );
        let mut any = false;
        for a in &run.alerts {
            if a.firing.contains(&t) {
                any = true;
                let mut labels: Vec<String> = a
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{v}\""))
                    .collect();
                labels.push("alertstate=\"firing\"".into());
                let _ = writeln!(
                    test,
                    "          - labels: 'ALERTS{{{}}}'\n            value: 1",
                    labels.join(",")
                );
            }
        }
        if !any {
            test.truncate(test.trim_end_matches("\n        exp_samples:\n").len());
            test.push_str("\n        exp_samples: []\n");
        }
    }
    fs::write(dir.join("prediction.test.yaml"), &test).unwrap();
    let out = std::process::Command::new(promtool)
        .args(["test", "rules", "prediction.test.yaml"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool disagrees with the prediction:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---- a published staging run -------------------------------------------------------

/// pytorch/ci-infra#725: 8 builds holding a worker ~10 min, fired at t = 0 at
/// a staging pool (min 2, max 8; HAProxy `timeout connect 5s` and no
/// `timeout queue`, so a queued dial is dropped after 5 s; clients retry 45 ×
/// 15 s). Reported: ~43 min serialized on min 2 (4 waves; 40 min of build
/// time), "one wave ~18m" with autoscaling. The wall clock includes the CI
/// job's own start-up, so the check allows ±5 min around 18 min and 40–45 min.
#[test]
fn replays_the_staging_integration_test() {
    let dir = scratch("sim-725");
    let makespan = |pool: &str, attempts: u32| {
        let sim = format!(
            "  client:\n    attempts: {attempts}\n    delay: 15s\n    attempt_timeout: 20s"
        );
        let req = Request {
            target: "sim/amd64".into(),
            workload: Choice::Scenario("seed001-burst".into()),
            seed: 1,
            horizon: None,
            durations: None,
            alerts: true,
        };
        let o = run(&dir, &spec("2.16", pool, &sim, ""), &req).outcome;
        assert_eq!(o.builds, 8);
        assert_eq!(o.failed, 0);
        (o.waits.iter().max().unwrap() + 10 * 60_000) as f64 / 60_000.0
    };
    // Serialized, the last wave waits 30 min: more than 45 × 20 s allows,
    // so the estimate assumes a client that keeps trying (480 attempts).
    let serial = makespan(
        "    min: 2\n    max: 2\n    haproxy:\n      timeout_queue: 5s",
        480,
    );
    assert!((40.0..=45.0).contains(&serial), "serialized: {serial} min");
    let scaled = makespan(
        "    min: 2\n    max: 8\n    haproxy:\n      timeout_queue: 5s",
        45,
    );
    assert!((13.0..=23.0).contains(&scaled), "autoscaled: {scaled} min");
}

// ---- determinism and the CLI -------------------------------------------------------------

fn cli_dir(name: &str) -> std::path::PathBuf {
    let dir = scratch(name);
    fs::write(
        dir.join("specs/sim.yaml"),
        spec(
            "2.16",
            "    min: 2\n    max: 8",
            "  client:\n    attempts: 40",
            "",
        ),
    )
    .unwrap();
    dir
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let dir = cli_dir("sim-determinism");
    let args = |seed: &'static str| {
        [
            "simulate",
            "sim",
            "--diurnal",
            "2:30",
            "--format",
            "json",
            "--seed",
            seed,
        ]
    };
    let a = poolc(&dir, &args("7"));
    let b = poolc(&dir, &args("7"));
    let c = poolc(&dir, &args("8"));
    assert!(a.status.success(), "{}", stderr(&a));
    assert_eq!(a.stdout, b.stdout);
    assert_ne!(a.stdout, c.stdout);
    let json: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    let pool = &json["pools"][0];
    assert_eq!(pool["pool"], "sim/amd64");
    for key in [
        "builds",
        "failed",
        "waited_fraction",
        "cold_node_boots",
        "pod_hours",
        "node_hours",
        "time_at_max_seconds",
    ] {
        assert!(pool[key].is_number(), "{key}");
    }
    for key in ["p50", "p95", "p99", "max", "mean"] {
        assert!(pool["wait_seconds"][key].is_number(), "{key}");
    }
    assert!(pool["alerts"].is_array());
}

#[test]
fn text_markdown_and_svg_outputs() {
    let dir = cli_dir("sim-formats");
    let out = poolc(&dir, &["simulate", "sim/amd64", "--scenario", "seed000"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("sim/amd64"));
    let out = poolc(
        &dir,
        &[
            "simulate",
            "sim/amd64",
            "--scenario",
            "seed000",
            "--format",
            "markdown",
            "--baseline",
            "specs",
            "--svg",
            "svg",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("| builds | 8 | 8 |"),
        "{}",
        stdout(&out)
    );
    let svg = fs::read_to_string(dir.join("svg/sim-amd64.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("polyline"));
}

/// `poolc simulate ARGS --format json` in `dir`, which must succeed: its
/// report.
fn simulate_json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["simulate"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json"]);
    let out = poolc(dir, &all);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn trace_error(name: &str, trace: &str, want: &[&str]) {
    let dir = cli_dir(name);
    fs::write(dir.join("trace.csv"), trace).unwrap();
    let out = poolc(&dir, &["simulate", "sim", "--trace", "trace.csv"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    for w in want {
        assert!(err.contains(w), "`{w}` missing from:\n{err}");
    }
    assert!(!err.contains("panicked"));
}

#[test]
fn bad_traces_exit_2_with_file_and_line() {
    trace_error(
        "sim-bad-1",
        "arrival,duration\n0,600\n60;600\n",
        &["trace.csv:3:", "fields"],
    );
    trace_error("sim-bad-2", "0,600\n10,-5\n", &["trace.csv:2:", "negative"]);
    trace_error(
        "sim-bad-3",
        "0,600,amd64\n5,600,riscv\n",
        &["trace.csv:2:", "unknown pool `riscv`", "amd64"],
    );
    trace_error(
        "sim-bad-4",
        "0,600\n100,600\n50,600\n",
        &["trace.csv:3:", "sort the trace"],
    );
    trace_error(
        "sim-bad-5",
        "2026-01-01T00:10:00Z,600\n2026-01-01T00:05:00Z,600\n",
        &["trace.csv:2:", "before the first arrival"],
    );
    trace_error("sim-bad-6", "abc,600\n", &["trace.csv:1:", "RFC 3339"]);
    trace_error(
        "sim-bad-7",
        "arrival,duration\n\"0\",\"ten minutes\"\n",
        &["trace.csv:2:", "`ten minutes` is not a number"],
    );
}

#[test]
fn good_traces_replay_in_both_formats() {
    let dir = cli_dir("sim-trace");
    fs::write(
        dir.join("trace.csv"),
        "arrival,duration,pool\n2026-01-01T00:00:00Z,600,amd64\n2026-01-01T00:00:30Z,300\n2026-01-01T00:01:00.5+00:00,60,amd64\n",
    )
    .unwrap();
    let json = simulate_json(&dir, &["sim", "--trace", "trace.csv"]);
    assert_eq!(json["pools"][0]["builds"], 3);
    // As a spreadsheet exports it: the user's column names, every field
    // quoted, CRLF line ends, an exponent.
    fs::write(
        dir.join("trace.csv"),
        "\"start\",\"seconds\",\"queue\"\r\n\"0\",\"600\",\"amd64\"\r\n\"30\",\"3e2\",\"\"\r\n",
    )
    .unwrap();
    let json = simulate_json(&dir, &["sim", "--trace", "trace.csv"]);
    assert_eq!(json["pools"][0]["builds"], 2);
    // GitHub's jobs API: created_at → arrival, completed_at − started_at → duration.
    fs::write(
        dir.join("jobs.json"),
        r#"{"total_count":2,"jobs":[
          {"id":2,"created_at":"2026-01-01T00:05:00Z","started_at":"2026-01-01T00:06:00Z","completed_at":"2026-01-01T00:16:00Z"},
          {"id":1,"created_at":"2026-01-01T00:00:00Z","started_at":"2026-01-01T00:00:10Z","completed_at":"2026-01-01T00:20:10Z"},
          {"id":3,"created_at":"2026-01-01T00:07:00Z","started_at":null,"completed_at":null}]}"#,
    )
    .unwrap();
    let json = simulate_json(&dir, &["sim/amd64", "--trace", "jobs.json"]);
    assert_eq!(json["pools"][0]["builds"], 2);
    // `gh api --paginate` prints one page after another, `--slurp` a list of
    // pages; a job's runs-on labels that name a pool send it there.
    let job = |id: u32, minute: u32, labels: &str| {
        format!(
            r#"{{"id":{id},"created_at":"2026-01-01T00:{minute:02}:00Z","started_at":"2026-01-01T00:{minute:02}:30Z","completed_at":"2026-01-01T00:{:02}:30Z","labels":[{labels}]}}"#,
            minute + 10
        )
    };
    let page1 = format!(
        r#"{{"total_count":3,"jobs":[{},{}]}}"#,
        job(1, 0, r#""self-hosted","amd64""#),
        job(2, 1, r#""self-hosted","arm64""#)
    );
    let page2 = format!(r#"{{"total_count":3,"jobs":[{}]}}"#, job(3, 2, ""));
    for (name, text) in [
        ("paginate.json", format!("{page1}\n{page2}\n")),
        ("slurp.json", format!("[{page1},\n{page2}]")),
    ] {
        fs::write(dir.join(name), text).unwrap();
        let json = simulate_json(&dir, &["sim", "--trace", name]);
        // The arm64 job names a pool this cluster lacks: it goes everywhere.
        assert_eq!(json["pools"][0]["builds"], 3, "{name}");
    }
    // staging has amd64 and arm64: each takes its own job and the unlabeled one.
    let specs = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs");
    let json = simulate_json(
        &dir,
        &[
            "staging/amd64,staging/arm64",
            "--specs",
            specs.to_str().unwrap(),
            "--trace",
            "paginate.json",
            "--no-alerts",
        ],
    );
    assert_eq!(json["pools"][0]["pool"], "staging/amd64");
    assert_eq!(json["pools"][0]["builds"], 2);
    assert_eq!(json["pools"][1]["pool"], "staging/arm64");
    assert_eq!(json["pools"][1]["builds"], 2);
    fs::write(
        dir.join("runs.json"),
        "{\"total_count\":0,\"workflow_runs\":[]}",
    )
    .unwrap();
    let out = poolc(&dir, &["simulate", "sim", "--trace", "runs.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("runs.json:1: not GitHub jobs JSON: a list of workflow runs"),
        "{}",
        stderr(&out)
    );
    fs::write(dir.join("bad.json"), r#"{"jobs":[{"created_at":"2026-01-01T00:00:00Z","started_at":"2026-01-01T00:10:00Z","completed_at":"2026-01-01T00:05:00Z"}]}"#).unwrap();
    let out = poolc(&dir, &["simulate", "sim", "--trace", "bad.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("negative duration"),
        "{}",
        stderr(&out)
    );
}

/// 10^7 lines with the bad one last: exit 2 naming line 10,000,001, after a
/// streamed pass (memory does not grow with the file; checked with
/// /usr/bin/time where installed).
#[test]
fn a_ten_million_line_trace_is_streamed() {
    let dir = cli_dir("sim-huge");
    let path = dir.join("huge.csv");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(fs::File::create(&path).unwrap());
        for i in 0..10_000_000u64 {
            writeln!(f, "{},60", i / 100).unwrap();
        }
        writeln!(f, "oops").unwrap();
    }
    let timed = Path::new("/usr/bin/time").is_file();
    let out = if timed {
        std::process::Command::new("/usr/bin/time")
            .args([
                "-f",
                "maxrss_kb=%M",
                env!("CARGO_BIN_EXE_poolc"),
                "simulate",
                "sim",
                "--trace",
                "huge.csv",
            ])
            .current_dir(&dir)
            .output()
            .unwrap()
    } else {
        poolc(&dir, &["simulate", "sim", "--trace", "huge.csv"])
    };
    let _ = fs::remove_file(&path);
    let err = stderr(&out);
    assert!(err.contains("huge.csv:10000001:"), "{err}");
    assert!(!err.contains("panicked"));
    if timed {
        let rss: u64 = err
            .lines()
            .find_map(|l| l.strip_prefix("maxrss_kb="))
            .and_then(|v| v.trim().parse().ok())
            .expect("maxrss");
        assert!(rss < 64 * 1024, "peak RSS {rss} KB for a streamed trace");
    } else {
        assert_eq!(out.status.code(), Some(2));
    }
}

#[test]
fn unknown_targets_and_bad_options_exit_2() {
    let dir = cli_dir("sim-usage");
    for (args, want) in [
        (
            vec!["simulate", "nope", "--scenario", "seed000"],
            "no cluster `nope`",
        ),
        (
            vec!["simulate", "sim/riscv", "--scenario", "seed000"],
            "no pool `riscv`",
        ),
        (
            vec!["simulate", "sim", "--scenario", "seed999"],
            "unknown scenario",
        ),
        (vec!["simulate", "sim"], "give a workload"),
        (
            vec![
                "simulate",
                "sim",
                "--poisson",
                "5",
                "--durations",
                "weibull:3",
            ],
            "--durations",
        ),
        (vec!["simulate", "sim", "--bursts", "x"], "--bursts"),
    ] {
        let out = poolc(&dir, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
    }
}

/// On a healthy run of the repository's own specs (the LB up and scraped,
/// KEDA without errors, seed 000's small bursts) none of the generated
/// alerts that watch the scrape path or the scaler may fire: their series
/// must exist in the simulated store as a real scrape stores them.
#[test]
fn healthy_load_fires_no_scrape_or_scaler_alert() {
    let dir = cli_dir("sim-healthy");
    let json = simulate_json(&dir, &["sim", "--scenario", "seed000"]);
    let fired: Vec<&str> = json["pools"][0]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["alert"].as_str())
        .collect();
    for quiet in [
        "PoolLoadBalancerDown",
        "PoolScalerErrors",
        "PoolScaledObjectErrors",
        "PoolNoActiveServers",
    ] {
        assert!(!fired.contains(&quiet), "{quiet} fired: {fired:?}");
    }
}

/// Nine 10-minute builds on four servers are served in 30 minutes: the
/// run ends at the scenario's one-hour horizon, not at the last leftover
/// timer, and the LB, scraped all along, never looks down.
#[test]
fn a_run_ends_at_its_horizon_once_every_build_is_served() {
    let dir = scratch("sim-horizon");
    fs::write(
        dir.join("specs/sim.yaml"),
        spec(
            "2.17",
            "    min: 4\n    max: 4",
            "  client:\n    attempts: 1\n    attempt_timeout: 0s",
            "",
        ),
    )
    .unwrap();
    let json = simulate_json(&dir, &["sim", "--scenario", "seed001-overload"]);
    let pool = &json["pools"][0];
    assert_eq!(pool["builds"], 9);
    assert_eq!(pool["simulated_seconds"], 3600.0, "{pool}");
    assert_eq!(pool["pod_hours"], 4.0, "{pool}");
    let fired: Vec<&str> = pool["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["alert"].as_str())
        .collect();
    assert!(!fired.contains(&"PoolLoadBalancerDown"), "{fired:?}");
}

/// `plan --simulate` runs the scenario on the specs and on the base specs
/// beside the compared tree, and shows what the edit changes.
#[test]
fn plan_simulate_compares_with_the_base_specs() {
    let base = cli_dir("sim-plan");
    let generated = poolc(&base, &["generate"]);
    assert!(generated.status.success(), "{}", stderr(&generated));
    let head = scratch("sim-plan-head");
    let text = fs::read_to_string(base.join("specs/sim.yaml")).unwrap();
    fs::write(
        head.join("specs/sim.yaml"),
        text.replacen("    max: 8", "    max: 3", 1),
    )
    .unwrap();
    let out_dir = base.join("generated");
    let out = poolc(
        &head,
        &[
            "plan",
            "--format",
            "markdown",
            "--out",
            out_dir.to_str().unwrap(),
            "--simulate",
            "seed001-overload",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let plan = stdout(&out);
    assert!(plan.contains("ScaledObject"), "{plan}");
    assert!(plan.contains("| | before | after |"), "{plan}");
    let peak = plan
        .lines()
        .find(|l| l.starts_with("| peak pods / nodes |"))
        .unwrap_or_else(|| panic!("{plan}"));
    assert!(
        peak.contains("**≠**"),
        "a lower max changes the peak: {peak}"
    );
    // JSON carries both runs.
    let out = poolc(
        &head,
        &[
            "plan",
            "--format",
            "json",
            "--out",
            out_dir.to_str().unwrap(),
            "--simulate",
            "seed001-overload",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["simulate"]["after"]["pools"].is_array());
    assert!(json["simulate"]["before"]["pools"].is_array());
}

// ---- jobs pools (KEDA ScaledJob) ---------------------------------------------------

use poolc::simulate::keda::jobs_to_create;
use poolc::spec::ScalingStrategy;

/// A one-pool cluster whose pool is a jobs pool: Buildkite agents that read
/// the scheduled-jobs count through Prometheus; `pool` and `simulate` are
/// YAML inserted as given.
fn jobs_spec(scrape: &str, pool: &str, simulate: &str) -> String {
    format!(
        r#"cluster:
  name: sim
  environment: test
  namespace: ci
  exporters:
    keda: "2.16"
    haproxy: "3.1"
    kube-state-metrics: "2.13"
    karpenter: "1.14"
  scrape_interval: {scrape}
  metrics:
    - name: buildkite_queues_scheduled_jobs_count
      type: gauge
      labels: [queue]
      scraped_by:
        servicemonitor: ci/buildkite-agent-metrics
pools:
  - name: agents
    mode: jobs
    arch: amd64
    worker:
      image: buildkite/agent:3.98.0
      args: [start, --disconnect-after-job]
    instance_types:
      - type: c6id.4xlarge
        pods_per_node: 2
{pool}
simulate:
{simulate}
"#
    )
}

fn jobs_pool(min: u32, max: u32, strategy: &str, polling: &str, deadline: &str) -> String {
    format!(
        "    min: {min}\n    max: {max}\n    scaling:\n      polling_interval: {polling}\n    jobs:\n      query: sum(buildkite_queues_scheduled_jobs_count{{queue=\"default\"}})\n      server_address: http://prometheus:9090\n      scaling_strategy: {strategy}\n      active_deadline: {deadline}"
    )
}

/// KEDA's documented strategy formulas ("Scaling Jobs", scalingStrategy;
/// executor `scale_jobs.go`), worked by hand. With `maxScale = ceil(min(queue
/// / target, max))`, `scaleTo = ceil(queue)` and `r = running − min`, KEDA
/// creates `min(scaleTo, effective)` Jobs where effective is:
/// default `maxScale − r`; custom `min(maxScale − deduction − r × percentage,
/// max)`, which KEDA replaces by default when `customScalingRunningJobPercentage`
/// is unset, as in the ScaledJob poolc writes; accurate `max − r` if
/// `maxScale + r − pending > max`, else `maxScale − pending`; eager
/// `min(max − r − pending, maxScale)` with scaleTo = max.
#[test]
fn scaled_job_strategies_follow_keda_formulas() {
    use ScalingStrategy::*;
    // (strategy, queue, target, min, max, running, pending, jobs created)
    let cases = [
        // Empty pool, 10 queued, max 6: maxScale 6, effective 6 − 0 → 6.
        (Default, 10.0, 1.0, 0, 6, 0, 0, 6),
        (Accurate, 10.0, 1.0, 0, 6, 0, 0, 6),
        // 4 queued behind 10 running (max 20): default reads the queue as
        // including running work, 4 − 10 < 0 → 0; accurate 4 + 10 − 0 = 14 ≤ 20
        // → 4 − 0 = 4; eager min(20 − 10 − 0, 4) = 4; custom as default.
        (Default, 4.0, 1.0, 0, 20, 10, 0, 0),
        (Custom, 4.0, 1.0, 0, 20, 10, 0, 0),
        (Accurate, 4.0, 1.0, 0, 20, 10, 0, 4),
        (Eager, 4.0, 1.0, 0, 20, 10, 0, 4),
        // 10 queued, 15 running of which 2 pending, max 20: accurate
        // 10 + 15 − 2 = 23 > 20 → 20 − 15 = 5; default 10 − 15 < 0 → 0.
        (Accurate, 10.0, 1.0, 0, 20, 15, 2, 5),
        (Default, 10.0, 1.0, 0, 20, 15, 2, 0),
        // 10 queued, 3 running: default and custom 10 − 3 = 7.
        (Default, 10.0, 1.0, 0, 20, 3, 0, 7),
        (Custom, 10.0, 1.0, 0, 20, 3, 0, 7),
        // Jobs still pending count against accurate: 10 − 10 = 0.
        (Accurate, 10.0, 1.0, 0, 20, 10, 10, 0),
        // Below minReplicaCount: min − running, whatever the queue.
        (Default, 0.0, 1.0, 3, 20, 1, 0, 2),
        (Accurate, 0.0, 1.0, 3, 20, 1, 1, 2),
        // min = max = 8, all 8 running: r = running − min = 0, so accurate
        // creates maxScale − pending = 3 more, past max.
        (Accurate, 3.0, 1.0, 8, 8, 8, 0, 3),
        // Inactive (queue 0, min 0): nothing.
        (Accurate, 0.0, 1.0, 0, 20, 0, 0, 0),
        // Target 2 per Job: maxScale = ceil(10 / 2) = 5, scaleTo 10 → 5.
        (Default, 10.0, 2.0, 0, 20, 0, 0, 5),
        // Fractional queue per target rounds up: ceil(3 / 2) = 2.
        (Accurate, 3.0, 2.0, 0, 20, 0, 0, 2),
    ];
    for (s, q, t, min, max, r, p, want) in cases {
        assert_eq!(
            jobs_to_create(s, q, t, min, max, r, p),
            want,
            "{s:?} queue {q} target {t} min {min} max {max} running {r} pending {p}"
        );
    }
}

/// Runs a jobs spec on 10 builds at t = 0 and 4 more at 5 min, each
/// holding an agent 30 min; node launch fixed at 60 s (+ 15 s init), image
/// pull 10 s, agent start 0 s, scrape every 1 s so the trigger's value is
/// the live queue up to a second.
fn two_waves(name: &str, strategy: &str) -> PoolRun {
    let dir = scratch(name);
    let text = jobs_spec(
        "1s",
        &jobs_pool(0, 20, strategy, "30s", "2h"),
        "  karpenter:\n    launch_median: 60s\n    launch_p95: 60s\n  pod:\n    startup: 0s",
    );
    let req = Request {
        target: "sim/agents".into(),
        workload: Choice::Generator(Generator::Batches(vec![(0, 10), (5, 4)])),
        seed: 3,
        horizon: None,
        durations: Some(Durations::Fixed(30 * 60_000)),
        alerts: false,
    };
    run(&dir, &text, &req)
}

/// The polling ticks that created Jobs: (time, queue, running, pending, created).
fn creations(run: &PoolRun) -> Vec<(u64, u32, u32, u32, u32)> {
    run.outcome
        .job_ticks
        .iter()
        .filter(|t| t.created > 0)
        .map(|t| (t.t, t.queue, t.running, t.pending, t.created))
        .collect()
}

/// The two-wave sequence, by hand. Wave 1: the first tick that sees 10
/// queued creates 10 (every strategy: 10 − 0); while they are pending,
/// default sees 10 − 10 = 0 and accurate 10 − 10 pending = 0; once the
/// agents take the builds the queue is 0 and the trigger inactive. Wave 2
/// (4 queued, 10 running, none pending): accurate creates 4 (14 ≤ 20 →
/// 4 − 0) at the first tick after 5 min and needs 2 new nodes (the 5 nodes
/// hold 10 busy agents); default and custom (4 − 10 < 0) create nothing until
/// the first wave's Jobs finish 30 min later, then 4 − 0 = 4 on the nodes the
/// first wave left (no new node, no image pull).
#[test]
fn scaled_job_two_waves_follow_the_hand_computed_sequence() {
    let accurate = two_waves("sim-jobs-accurate", "accurate");
    let c = creations(&accurate);
    assert_eq!(c.len(), 2, "{c:?}");
    assert_eq!((c[0].1, c[0].2, c[0].3, c[0].4), (10, 0, 0, 10), "{c:?}");
    assert!(
        c[0].0 < 30_000,
        "first tick within one polling interval: {c:?}"
    );
    assert_eq!((c[1].1, c[1].2, c[1].3, c[1].4), (4, 10, 0, 4), "{c:?}");
    assert!((300_000..332_000).contains(&c[1].0), "{c:?}");
    let o = &accurate.outcome;
    assert_eq!((o.builds, o.failed, o.cold_pod_starts), (14, 0, 14));
    assert_eq!(o.cold_node_boots, 7, "5 nodes for 10 agents, 2 for 4");
    // Each build waits for a tick (≤ 30 s + 1 s scrape), the batch (1 s), the
    // node (75 s) and the pull (10 s).
    assert!(
        o.waits.iter().all(|w| (86_000..=118_000).contains(w)),
        "{:?}",
        o.waits
    );

    for strategy in ["default", "custom"] {
        let run = two_waves(&format!("sim-jobs-{strategy}"), strategy);
        let c = creations(&run);
        assert_eq!(c.len(), 2, "{strategy}: {c:?}");
        assert_eq!((c[0].1, c[0].2, c[0].3, c[0].4), (10, 0, 0, 10));
        assert_eq!((c[1].1, c[1].2, c[1].3, c[1].4), (4, 0, 0, 4), "{c:?}");
        // The first wave's agents start at ≥ 86 s and run 30 min.
        assert!(c[1].0 >= 86_000 + 1_800_000, "{strategy}: {c:?}");
        let o = &run.outcome;
        assert_eq!((o.builds, o.failed, o.cold_pod_starts), (14, 0, 14));
        assert_eq!(
            o.cold_node_boots, 5,
            "{strategy}: the second wave reuses nodes"
        );
        let mut w = o.waits.clone();
        w.sort_unstable();
        assert!(w[13] > 25 * 60_000, "{strategy}: {w:?}");
        assert!(w[9] <= 118_000, "{strategy}: {w:?}");
    }
}

/// The reduced configuration: min 0, max c = 8, accurate, the trigger
/// polled and the queue scraped every second, nodes that launch in 1 s and
/// are never consolidated, no image pull or agent start-up. Then an agent is
/// started for every queued build while fewer than c Jobs run (accurate:
/// `maxScale − pending`, capped at `max − running`), each takes one build
/// and leaves, and builds wait FIFO in the CI queue without limit: M/M/c,
/// except that a freed slot is refilled only after the next tick reads the
/// next scrape — a lag L of about 1 s (polling phase + scrape age, each
/// U(0, 1 s)), which adds to each slot's holding time. So the comparison is
/// with Erlang C at the offered load λ·(1/μ + E[L]), E[L] = 1 s, and a
/// build "waited" when it waited more than the 2 s the lag can take.
/// Run length and tolerance: 10 replications of 200 h (≈ 7,200 builds
/// each); |mean − exact| < 4 standard errors + 2 % (the lag's shape, a
/// uniform rather than part of an exponential, and the empty start).
#[test]
fn reduced_jobs_pool_matches_erlang_c() {
    let dir = scratch("sim-jobs-erlang-c");
    let text = jobs_spec(
        "1s",
        &jobs_pool(0, 8, "accurate", "1s", "365d"),
        "  karpenter:\n    launch_median: 1s\n    launch_p95: 1s\n    node_init: 0s\n    consolidate_after: 8760h\n  pod:\n    startup: 0s\n    image_pull: 0s",
    );
    let (c, lambda, mu) = (8u32, 0.6f64, 0.1f64);
    let hold = 1.0 / mu + 1.0 / 60.0;
    let a = lambda * hold;
    let p_wait = erlang_c(c, a);
    let mean_wait = p_wait / (c as f64 / hold - lambda);
    let mut estimates: [Vec<f64>; 2] = Default::default();
    for seed in 1..=10 {
        let mut req = request(
            Generator::Poisson {
                per_hour: lambda * 60.0,
            },
            Durations::Exponential {
                mean: 60_000.0 / mu,
            },
            200,
            seed,
        );
        req.target = "sim/agents".into();
        let o = run(&dir, &text, &req).outcome;
        assert_eq!(o.failed, 0);
        assert!(o.peak_pods <= c, "max {c}: {}", o.peak_pods);
        let n = o.waits.len() as f64;
        estimates[0].push(o.waits.iter().filter(|&&w| w > 2_000).count() as f64 / n);
        estimates[1].push(o.waits.iter().sum::<u64>() as f64 / n / 60_000.0);
    }
    for (i, (name, exact)) in [("P(wait)", p_wait), ("E[W] min", mean_wait)]
        .into_iter()
        .enumerate()
    {
        let (mean, se) = mean_and_se(&estimates[i]);
        eprintln!("{name}: simulated {mean:.6} ± {se:.6}, Erlang C {exact:.6}");
        assert!(
            (mean - exact).abs() < 4.0 * se + 0.02 * exact,
            "{name}: simulated {mean:.6} ± {se:.6}, Erlang C {exact:.6}"
        );
        assert!(se < 0.08 * exact, "{name}: standard error {se} too large");
    }
}

/// The SVG timeline (plotters' SVG backend) names every curve in its
/// legend, shades a band per firing alert, and is byte-identical for the
/// same seed; another seed draws another picture.
#[test]
fn svg_timelines_are_deterministic_and_complete() {
    let dir = cli_dir("sim-svg");
    let draw = |seed: &str, out: &str| {
        let o = poolc(
            &dir,
            &[
                "simulate",
                "sim/amd64",
                "--bursts",
                "3:6",
                "--horizon",
                "3h",
                "--seed",
                seed,
                "--svg",
                out,
            ],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        fs::read(dir.join(out).join("sim-amd64.svg")).unwrap()
    };
    let a = draw("5", "a");
    assert_eq!(a, draw("5", "b"), "same seed, same bytes");
    assert_ne!(a, draw("6", "c"));
    let text = String::from_utf8(a).unwrap();
    assert!(text.starts_with("<svg") && text.trim_end().ends_with("</svg>"));
    for name in [
        "arrivals",
        "waiting",
        "sessions",
        "HPA desired",
        "pods ready",
        "pods booting",
        "pods draining",
        "nodes",
    ] {
        assert!(text.contains(&format!("\n{name}\n")), "legend lacks {name}");
    }
    // 8 curves plus the axes' ticks are polylines.
    assert!(text.matches("<polyline").count() >= 8);
    // 60 builds an hour at a max-8 pool keep builds queued: the backlog and
    // at-max alerts fire and each gets its band.
    let o = poolc(
        &dir,
        &[
            "simulate",
            "sim/amd64",
            "--poisson",
            "60",
            "--horizon",
            "3h",
            "--format",
            "json",
            "--svg",
            "d",
        ],
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let svg = fs::read_to_string(dir.join("d/sim-amd64.svg")).unwrap();
    let alerts = report["pools"][0]["alerts"].as_array().unwrap();
    assert!(!alerts.is_empty(), "the backlog alert fires");
    for alert in alerts {
        let name = alert["alert"].as_str().unwrap();
        assert!(
            svg.contains(&format!("\n{name} firing\n")),
            "no band for {name}"
        );
    }
}

/// Seed 001's question as the README answers it, on the repository's
/// staging spec: 3 × max (24) builds of 20 min at once on staging amd64
/// (max 8), so the third wave waits two average builds. The client's budget
/// is attempts × (20 s attempt + 15 s sleep): 40 attempts ≈ 23 min, less
/// than the 40 min the third wave waits, so at least those 8 fail, and no
/// build that ran waited longer than the budget; 480 attempts ≈ 4.7 h, so
/// none fails and the longest wait is two builds (40 min) plus the
/// scale-up, which the README's latencies keep under 10 min.
#[test]
fn seed_001_answer_holds_on_the_staging_spec() {
    let dir = scratch("sim-seed-001");
    let staging =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/staging.yaml"))
            .unwrap();
    let trace = "arrival,duration\n".to_string() + &"0,1200\n".repeat(24);
    fs::write(dir.join("t24.csv"), &trace).unwrap();
    let run_with = |attempts: u32| {
        fs::write(
            dir.join("specs/staging.yaml"),
            format!("{staging}\nsimulate:\n  client:\n    attempts: {attempts}\n"),
        )
        .unwrap();
        let model = poolc::pipeline::load_model(&dir.join("specs")).unwrap();
        let files = poolc::render::render(&model).unwrap();
        let req = Request {
            target: "staging/amd64".into(),
            workload: Choice::Trace(dir.join("t24.csv")),
            seed: 1,
            horizon: None,
            durations: None,
            alerts: false,
        };
        let run = simulate::run_pool(&model, &files, &req).unwrap();
        assert_littles_law(&run);
        run.outcome
    };
    let budget = |attempts: u64| attempts * 35_000;
    let short = run_with(40);
    assert_eq!(short.builds, 24);
    assert!(short.failed >= 8, "the third wave fails: {}", short.failed);
    assert!(
        short.waits.iter().all(|&w| w <= budget(40)),
        "{:?}",
        short.waits
    );
    let long = run_with(480);
    assert_eq!(long.failed, 0);
    let max = *long.waits.iter().max().unwrap();
    assert!(
        (40 * 60_000..50 * 60_000).contains(&max),
        "two builds plus the scale-up: {max} ms"
    );
}

/// A jobs pool's report is as deterministic as a service pool's, and fills
/// the same fields.
#[test]
fn jobs_pool_same_seed_same_bytes() {
    let dir = scratch("sim-jobs-cli");
    fs::write(
        dir.join("specs/sim.yaml"),
        jobs_spec("60s", &jobs_pool(0, 10, "accurate", "30s", "2h"), "  {}"),
    )
    .unwrap();
    let args = |seed: &'static str| {
        [
            "simulate",
            "sim",
            "--poisson",
            "20",
            "--horizon",
            "6h",
            "--format",
            "json",
            "--seed",
            seed,
        ]
    };
    let a = poolc(&dir, &args("7"));
    assert!(a.status.success(), "{}", stderr(&a));
    assert_eq!(a.stdout, poolc(&dir, &args("7")).stdout);
    assert_ne!(a.stdout, poolc(&dir, &args("8")).stdout);
    let json: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    let pool = &json["pools"][0];
    assert_eq!(pool["pool"], "sim/agents");
    assert!(pool["builds"].as_u64().unwrap() > 0);
    assert_eq!(pool["queue_timeout_drops"], 0);
    assert!(
        pool["cold_pod_starts"].as_u64().unwrap()
            >= pool["builds"].as_u64().unwrap() - pool["failed"].as_u64().unwrap()
    );
    assert_eq!(pool["node_types"][0]["instance_type"], "c6id.4xlarge");
    assert!(pool["node_hours"].as_f64().unwrap() > 0.0);
}
