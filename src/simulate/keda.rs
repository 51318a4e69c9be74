//! KEDA between the LB's metric and the HPA: a live fetch per HPA request,
//! the failure counter and fallback (which differ by KEDA version), the
//! error counters an alert sees, and ScaledJob's scaling strategies.

use crate::catalog::Version;
use crate::model::Fallback;
use crate::spec::ScalingStrategy;

/// The fallback behaviours that differ between KEDA releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generation {
    /// ≤ 2.16: the polling loop scales straight to `fallback.replicas` on the
    /// first failed fetch; only HPA requests count failures.
    Immediate,
    /// 2.17–2.18: fallback only after the threshold, counted on HPA requests.
    Threshold,
    /// ≥ 2.19: HPA requests and polling ticks share one counter, and both
    /// record only post-fallback errors.
    Shared,
}

impl Generation {
    pub fn of(v: Version) -> Generation {
        if v < Version::new(2, 17) {
            Generation::Immediate
        } else if v < Version::new(2, 19) {
            Generation::Threshold
        } else {
            Generation::Shared
        }
    }
}

/// What a fetch gave the asker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fetched {
    Value(f64),
    /// The HPA holds its scale.
    Error,
}

/// One ScaledObject's scaler state.
#[derive(Debug, Clone)]
pub struct Scaler {
    pub generation: Generation,
    pub fallback: Option<Fallback>,
    pub target: f64,
    failures: u32,
    /// `keda_scaler_detail_errors_total` (and its older names).
    pub errors_total: u64,
    /// Fetches answered with the fallback value, and how many separate runs of them.
    pub fallback_episodes: u32,
    in_fallback: bool,
}

/// What the polling loop asks of the Deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollAction {
    None,
    /// Set spec.replicas, bypassing the HPA.
    ScaleTo(u32),
}

impl Scaler {
    pub fn new(version: Version, fallback: Option<Fallback>, target: f64) -> Scaler {
        Scaler {
            generation: Generation::of(version),
            fallback,
            target,
            failures: 0,
            errors_total: 0,
            fallback_episodes: 0,
            in_fallback: false,
        }
    }

    fn engaged(&self) -> Option<Fallback> {
        self.fallback
            .filter(|f| self.failures > f.failure_threshold)
    }

    fn note_fallback(&mut self, on: bool) {
        if on && !self.in_fallback {
            self.fallback_episodes += 1;
        }
        self.in_fallback = on;
    }

    /// An HPA request; `value` is None when the LB's metrics could not be read.
    pub fn for_hpa(&mut self, value: Option<f64>) -> Fetched {
        match value {
            Some(v) => {
                self.failures = 0;
                self.note_fallback(false);
                Fetched::Value(v)
            }
            None => {
                self.failures = self.failures.saturating_add(1);
                match self.engaged() {
                    Some(f) => {
                        self.note_fallback(true);
                        let target = match self.generation {
                            // 2.16 truncates the target to an integer.
                            Generation::Immediate => self.target.trunc(),
                            _ => self.target,
                        };
                        Fetched::Value(target * f.replicas as f64)
                    }
                    None => {
                        self.errors_total += 1;
                        Fetched::Error
                    }
                }
            }
        }
    }

    /// A polling tick; `value` as for `for_hpa`.
    pub fn poll(&mut self, value: Option<f64>) -> PollAction {
        match (self.generation, value) {
            (Generation::Shared, Some(_)) => {
                self.failures = 0;
                self.note_fallback(false);
                PollAction::None
            }
            (Generation::Shared, None) => {
                self.failures = self.failures.saturating_add(1);
                if self.engaged().is_some() {
                    self.note_fallback(true);
                } else {
                    self.errors_total += 1;
                }
                PollAction::None
            }
            (_, Some(_)) => PollAction::None,
            (g, None) => {
                self.errors_total += 1;
                match (g, self.fallback) {
                    (Generation::Immediate, Some(f)) => {
                        if !self.in_fallback {
                            self.fallback_episodes += 1;
                        }
                        PollAction::ScaleTo(f.replicas)
                    }
                    _ => PollAction::None,
                }
            }
        }
    }
}

/// Jobs a ScaledJob creates at one polling tick: `queue` units waiting,
/// `running` Jobs not finished, `pending` of them without a running pod.
///
/// KEDA's "Scaling Jobs" documentation (scalingStrategy) and its executor
/// (`pkg/scaling/executor/scale_jobs.go`, `pkg/scaling/scaledjob/metrics.go`
/// at v2.16–v2.20): `maxScale = ceil(min(queue / target, max))`, `scaleTo =
/// ceil(queue)`; below `minReplicaCount` running Jobs it creates `min −
/// running`; else, with `r = running − min`, the strategy gives how many
/// may be created and KEDA creates `min(scaleTo, that)`:
/// - default: `maxScale − r`;
/// - custom: `min(maxScale − deduction − trunc(r × runningJobPercentage),
///   max)` — but only when `customScalingRunningJobPercentage` parses as a
///   number; the ScaledJob poolc writes sets neither field, so KEDA selects
///   the default strategy and so does this function;
/// - accurate: `max − r` if `maxScale + r − pending > max`, else
///   `maxScale − pending`;
/// - eager: `min(max − r − pending, maxScale)`, with scaleTo = max.
///
/// Nothing is created unless the trigger is active (queue above its
/// activation threshold of 0) or `minReplicaCount > 0`.
pub fn jobs_to_create(
    strategy: ScalingStrategy,
    queue: f64,
    target: f64,
    min: u32,
    max: u32,
    running: u32,
    pending: u32,
) -> u32 {
    if running < min {
        return min - running;
    }
    let active = queue > 0.0 || min > 0;
    let max_scale = (queue / target).min(max as f64).ceil() as i64;
    let mut scale_to = queue.ceil() as i64;
    let r = (running - min) as i64;
    let pending = pending as i64;
    let max = max as i64;
    let effective = match strategy {
        ScalingStrategy::Default | ScalingStrategy::Custom => max_scale - r,
        ScalingStrategy::Accurate => {
            if max_scale + r - pending > max {
                max - r
            } else {
                max_scale - pending
            }
        }
        ScalingStrategy::Eager => {
            scale_to = max;
            (max - r - pending).min(max_scale)
        }
    };
    if effective <= 0 || !active {
        return 0;
    }
    scale_to.min(effective).max(0) as u32
}
