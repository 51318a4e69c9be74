//! The HorizontalPodAutoscaler's control law for an External metric with an
//! AverageValue target (what KEDA creates), `spec.behavior` set: tolerance in
//! f64, stabilization windows over raw recommendations (strict cutoffs),
//! per-direction rate policies with `selectPolicy`, and the final clamp.
//! Kubernetes v1.28 `horizontal.go` and `replica_calculator.go` semantics;
//! kept free of the event loop so it can be checked against hand-computed
//! sequences.

use std::collections::VecDeque;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    Pods,
    Percent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub kind: PolicyKind,
    pub value: u32,
    pub period_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select {
    Max,
    Min,
    Disabled,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    pub window_ms: u64,
    pub policies: Vec<Policy>,
    pub select: Select,
    pub tolerance: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Behavior {
    pub up: Rules,
    pub down: Rules,
    /// The HPA's minReplicas (KEDA: minReplicaCount, at least 1) and maxReplicas.
    pub min: u32,
    pub max: u32,
}

impl Behavior {
    /// Kubernetes' defaults for a direction left unset: up Pods 4 and
    /// Percent 100 per 15s, Max, window 0.
    pub fn default_up(tolerance: f64) -> Rules {
        Rules {
            window_ms: 0,
            policies: vec![
                Policy {
                    kind: PolicyKind::Pods,
                    value: 4,
                    period_ms: 15_000,
                },
                Policy {
                    kind: PolicyKind::Percent,
                    value: 100,
                    period_ms: 15_000,
                },
            ],
            select: Select::Max,
            tolerance,
        }
    }
}

/// One HPA's memory: raw recommendations and the scale events it made.
#[derive(Debug, Clone)]
pub struct Hpa {
    pub behavior: Behavior,
    /// The raw recommendations that can still bound a scale-up (smallest
    /// first after each newer, smaller one drops the larger ones before
    /// it) and a scale-down (largest first, likewise): the window's min
    /// and max without a scan of the whole window per sync.
    up_window: VecDeque<(u32, u64)>,
    down_window: VecDeque<(u32, u64)>,
    up_events: Vec<(u32, u64)>,
    down_events: Vec<(u32, u64)>,
}

impl Hpa {
    pub fn new(behavior: Behavior) -> Hpa {
        Hpa {
            behavior,
            up_window: VecDeque::new(),
            down_window: VecDeque::new(),
            up_events: Vec::new(),
            down_events: Vec::new(),
        }
    }

    /// One reconcile at `now_ms`. `usage` is the summed metric (None when the
    /// fetch failed), `target` the AverageValue, `current` the scale's
    /// spec.replicas and `status` its status.replicas (non-terminating pods).
    /// Returns the new spec.replicas.
    pub fn sync(
        &mut self,
        now_ms: u64,
        usage: Option<f64>,
        target: f64,
        current: u32,
        status: u32,
    ) -> u32 {
        let b = &self.behavior;
        if current == 0 && b.min != 0 {
            return current;
        }
        if current > b.max {
            return self.record_change(now_ms, current, b.max);
        }
        if current < b.min {
            return self.record_change(now_ms, current, b.min);
        }
        let Some(usage) = usage else {
            return current;
        };
        let proposal = proposal(usage, target, status, b.up.tolerance, b.down.tolerance);
        let stabilized = self.stabilize(now_ms, proposal, current);
        let desired = self.rate_limit(now_ms, stabilized, current);
        self.record_change(now_ms, current, desired)
    }

    fn stabilize(&mut self, now: u64, proposal: u32, current: u32) -> u32 {
        // Recommendations strictly newer than `now - window` count; the
        // cutoffs only move forward, so an older one never counts again.
        let up_cut = now.checked_sub(self.behavior.up.window_ms);
        let down_cut = now.checked_sub(self.behavior.down.window_ms);
        let stale = |t: u64, cut: Option<u64>| cut.is_some_and(|c| t <= c);
        while self
            .up_window
            .front()
            .is_some_and(|&(_, t)| stale(t, up_cut))
        {
            self.up_window.pop_front();
        }
        while self
            .down_window
            .front()
            .is_some_and(|&(_, t)| stale(t, down_cut))
        {
            self.down_window.pop_front();
        }
        let up = self
            .up_window
            .front()
            .map_or(proposal, |&(rec, _)| rec.min(proposal));
        let down = self
            .down_window
            .front()
            .map_or(proposal, |&(rec, _)| rec.max(proposal));
        let mut rec = current;
        if rec < up {
            rec = up;
        }
        if rec > down {
            rec = down;
        }
        while self.up_window.back().is_some_and(|&(r, _)| r >= proposal) {
            self.up_window.pop_back();
        }
        self.up_window.push_back((proposal, now));
        while self.down_window.back().is_some_and(|&(r, _)| r <= proposal) {
            self.down_window.pop_back();
        }
        self.down_window.push_back((proposal, now));
        rec
    }

    fn rate_limit(&self, now: u64, desired: u32, current: u32) -> u32 {
        let b = &self.behavior;
        if desired > current {
            let limit = self.limit(now, current, &b.up, true).max(current as i64);
            let allowed = (b.max as i64).min(limit);
            (desired as i64).min(allowed) as u32
        } else if desired < current {
            let limit = self.limit(now, current, &b.down, false).min(current as i64);
            let allowed = (b.min as i64).max(limit);
            (desired as i64).max(allowed) as u32
        } else {
            desired
        }
    }

    fn limit(&self, now: u64, current: u32, rules: &Rules, up: bool) -> i64 {
        if rules.select == Select::Disabled {
            return current as i64;
        }
        let pick_max = (rules.select == Select::Max) == up;
        let mut result: Option<i64> = None;
        for p in &rules.policies {
            let added = changes(&self.up_events, now, p.period_ms);
            let deleted = changes(&self.down_events, now, p.period_ms);
            let start = current as i64 - added + deleted;
            let proposed = match (p.kind, up) {
                (PolicyKind::Pods, true) => start + p.value as i64,
                (PolicyKind::Percent, true) => {
                    (start as f64 * (1.0 + p.value as f64 / 100.0)).ceil() as i64
                }
                (PolicyKind::Pods, false) => start - p.value as i64,
                (PolicyKind::Percent, false) => {
                    (start as f64 * (1.0 - p.value as f64 / 100.0)) as i64
                }
            };
            result = Some(match result {
                None => proposed,
                Some(r) if pick_max => r.max(proposed),
                Some(r) => r.min(proposed),
            });
        }
        result.unwrap_or(current as i64)
    }

    fn record_change(&mut self, now: u64, current: u32, desired: u32) -> u32 {
        let longest = |r: &Rules| r.policies.iter().map(|p| p.period_ms).max().unwrap_or(0);
        if desired > current {
            let keep = longest(&self.behavior.up);
            self.up_events
                .retain(|&(_, t)| now.saturating_sub(t) <= keep);
            self.up_events.push((desired - current, now));
        } else if desired < current {
            let keep = longest(&self.behavior.down);
            self.down_events
                .retain(|&(_, t)| now.saturating_sub(t) <= keep);
            self.down_events.push((current - desired, now));
        }
        desired
    }
}

/// Replicas the metric asks for: `ceil(usage / target)` unless the ratio to
/// the current pods is within the tolerance, in which case the current count.
pub fn proposal(usage: f64, target: f64, status: u32, tol_up: f64, tol_down: f64) -> u32 {
    let ratio = usage / (target * status as f64);
    let tolerance = if ratio > 1.0 { tol_up } else { tol_down };
    if (1.0 - ratio).abs() > tolerance {
        (usage / target).ceil().min(u32::MAX as f64) as u32
    } else {
        status
    }
}

/// Sum of the changes strictly newer than `now - period`.
fn changes(events: &[(u32, u64)], now: u64, period: u64) -> i64 {
    let cut = now.checked_sub(period);
    events
        .iter()
        .filter(|&&(_, t)| cut.is_none_or(|c| t > c))
        .map(|&(n, _)| n as i64)
        .sum()
}
