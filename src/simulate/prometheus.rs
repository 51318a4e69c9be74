//! Prometheus over the simulated series: the scrape-sampled store, a small
//! PromQL evaluator over promql-parser's AST (the constructs rule files use:
//! selectors, aggregations by/without, rate/increase/…_over_time, arithmetic,
//! comparisons with and without `bool`, and/or/unless, absent, clamp and
//! label_replace), and rule groups evaluated as Prometheus 2.x and promtool do:
//! at every evaluation interval, groups in file order, recording rules
//! visible to later rules, alerts pending until `for` has passed.
//!
//! The rules come from the rendered FileSet, so the prediction follows
//! whatever `generate` writes.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use promql_parser::label::Matchers;
use promql_parser::parser::{self, Expr, VectorSelector};
use serde::Deserialize;

/// Sorted label pairs, `__name__` included.
pub type Labels = Vec<(String, String)>;

/// A label name or value as evaluation passes it on: label sets are copied
/// at every step, their strings are shared.
type Name = Arc<str>;

/// Sorted label pairs, `__name__` included, as evaluation passes them on.
type Set = Vec<(Name, Name)>;

const LOOKBACK_MS: i64 = 5 * 60_000;

/// How many label sets each per-rule (and per-`label_replace`) table
/// remembers; a pool's rules see a handful, so the tables stay short
/// enough to scan.
const REMEMBERED: usize = 64;

#[derive(Debug, Default, Clone)]
pub struct Store {
    pub series: Vec<Series>,
    index: HashMap<Set, usize>,
    /// Each series' labels, shared, in the order of `series`.
    sets: Vec<Set>,
}

#[derive(Debug, Clone)]
pub struct Series {
    pub labels: Labels,
    pub samples: Vec<(i64, f64)>,
}

impl Series {
    pub fn name(&self) -> &str {
        self.labels
            .iter()
            .find(|(k, _)| k == "__name__")
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
}

impl Store {
    /// The index of the series `name{labels}`, created if new.
    pub fn series(&mut self, name: &str, labels: &[(&str, &str)]) -> usize {
        let mut l: Set = labels
            .iter()
            .map(|(k, v)| (Name::from(*k), Name::from(*v)))
            .collect();
        l.push((Name::from("__name__"), Name::from(name)));
        self.by_labels(l)
    }

    fn by_labels(&mut self, mut labels: Set) -> usize {
        labels.sort();
        if let Some(&i) = self.index.get(&labels) {
            return i;
        }
        self.series.push(Series {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            samples: Vec::new(),
        });
        self.sets.push(labels.clone());
        self.index.insert(labels, self.series.len() - 1);
        self.series.len() - 1
    }

    pub fn push(&mut self, i: usize, t: i64, v: f64) {
        self.series[i].samples.push((t, v));
    }
}

/// A rule file as Prometheus reads it.
#[derive(Debug, Clone, Deserialize)]
pub struct RuleFile {
    pub groups: Vec<Group>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Group {
    pub name: String,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Rule {
    #[serde(default)]
    pub record: Option<String>,
    #[serde(default)]
    pub alert: Option<String>,
    pub expr: String,
    #[serde(default, rename = "for")]
    pub for_: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// A rule parsed once.
pub struct Compiled {
    pub record: Option<String>,
    pub alert: Option<String>,
    pub expr: Expr,
    pub hold_ms: i64,
    pub labels: BTreeMap<String, String>,
}

/// Parses every rule; an expression the parser refuses is an error naming the rule.
pub fn compile(files: &[RuleFile]) -> Result<Vec<Compiled>, String> {
    let mut out = Vec::new();
    for f in files {
        for g in &f.groups {
            for r in &g.rules {
                let name = r
                    .alert
                    .as_ref()
                    .or(r.record.as_ref())
                    .cloned()
                    .unwrap_or_default();
                let expr = crate::promql::parse(&r.expr)
                    .map_err(|e| format!("rule {name} in group {}: {e}", g.name))?;
                let hold_ms = match &r.for_ {
                    Some(f) => duration_ms(f)
                        .ok_or_else(|| format!("rule {name}: `for: {f}` is not a duration"))?,
                    None => 0,
                };
                out.push(Compiled {
                    record: r.record.clone(),
                    alert: r.alert.clone(),
                    expr,
                    hold_ms,
                    labels: r.labels.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// `1h30m`, `15m`, `90s`, `500ms` → ms.
pub fn duration_ms(text: &str) -> Option<i64> {
    let mut total = 0i64;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|b| b.is_ascii_alphabetic()).count();
        let factor = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(factor)?)?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// One alert's firing history on a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertTimeline {
    pub alert: String,
    /// Labels of the alert (rule labels merged over the series').
    pub labels: BTreeMap<String, String>,
    /// Evaluation times at which it was firing.
    pub firing: Vec<i64>,
}

/// One alert series is active at `t`: pending since it first became
/// active, firing once it has been for `hold_ms`.
fn observe(
    key: (usize, Set),
    alert: &str,
    t: i64,
    hold_ms: i64,
    active: &mut BTreeMap<(usize, Set), i64>,
    present: &mut Vec<(usize, Set)>,
    fired: &mut BTreeMap<(usize, Set), AlertTimeline>,
) {
    let since = match active.get(&key) {
        Some(&since) => since,
        None => {
            active.insert(key.clone(), t);
            t
        }
    };
    if t - since >= hold_ms {
        match fired.get_mut(&key) {
            Some(timeline) => timeline.firing.push(t),
            None => {
                let labels = key
                    .1
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                fired.insert(
                    key.clone(),
                    AlertTimeline {
                        alert: alert.to_string(),
                        labels,
                        firing: vec![t],
                    },
                );
            }
        }
    }
    present.push(key);
}

/// Evaluates every rule at `start, start + interval, …, end`; recording
/// rules write into `store`. Returns each alert series that ever fired.
pub fn evaluate(
    rules: &[&Compiled],
    store: &mut Store,
    start: i64,
    end: i64,
    interval: i64,
) -> Vec<AlertTimeline> {
    let mut active: BTreeMap<(usize, Set), i64> = BTreeMap::new();
    let mut fired: BTreeMap<(usize, Set), AlertTimeline> = BTreeMap::new();
    // Each rule's labels, and the name it records or alerts as, shared.
    let extra: Vec<Set> = rules
        .iter()
        .map(|r| {
            r.labels
                .iter()
                .map(|(k, v)| (Name::from(k.as_str()), Name::from(v.as_str())))
                .collect()
        })
        .collect();
    let named: Vec<Option<Name>> = rules
        .iter()
        .map(|r| {
            r.record
                .as_ref()
                .or(r.alert.as_ref())
                .map(|n| Name::from(n.as_str()))
        })
        .collect();
    let name_key = Name::from("__name__");
    let alertname = Name::from("alertname");
    let mut t = start;
    let caches = RefCell::new(Caches::default());
    let mut memos: Vec<Memo> = rules
        .iter()
        .map(|r| Memo {
            reusable: reusable(&r.expr),
            ..Memo::default()
        })
        .collect();
    let plans: Vec<Vec<(&VectorSelector, Option<i64>)>> = rules
        .iter()
        .map(|r| {
            let mut out = Vec::new();
            plan(&r.expr, &mut out);
            out
        })
        .collect();
    // What a rule made of the label sets its expression returned: for a
    // recording rule the series written, for an alert its labels.
    let mut written: Vec<Vec<(Set, usize)>> = vec![Vec::new(); rules.len()];
    let mut renamed: Vec<Vec<(Set, Set)>> = vec![Vec::new(); rules.len()];
    let mut present: Vec<(usize, Set)> = Vec::new();
    while t <= end {
        present.clear();
        for (i, rule) in rules.iter().enumerate() {
            let memo = &mut memos[i];
            if memo.reusable {
                let unchanged = fingerprint(&plans[i], store, t, &caches, memo);
                if unchanged && memo.valid {
                    for &(idx, v) in &memo.recorded {
                        store.push(idx, t, v);
                    }
                    if let Some(alert) = &rule.alert {
                        for labels in &memo.alerts {
                            let key = (i, labels.clone());
                            observe(
                                key,
                                alert,
                                t,
                                rule.hold_ms,
                                &mut active,
                                &mut present,
                                &mut fired,
                            );
                        }
                    }
                    continue;
                }
                memo.recorded.clear();
                memo.alerts.clear();
                memo.valid = true;
            }
            let value = Eval {
                store,
                t,
                caches: &caches,
            }
            .eval(&rule.expr);
            let vector = match value {
                Value::Vector(v) => v,
                Value::Scalar(s) => vec![(Vec::new(), s)],
                _ => Vec::new(),
            };
            if let (Some(_), Some(record)) = (&rule.record, &named[i]) {
                for (found, v) in vector {
                    let seen = written[i].iter().find(|(l, _)| *l == found);
                    let idx = match seen {
                        Some(&(_, idx)) => idx,
                        None => {
                            let mut labels = found.clone();
                            labels.retain(|(k, _)| !is_name(k));
                            for (k, val) in &extra[i] {
                                set_label(&mut labels, k, val);
                            }
                            labels.push((name_key.clone(), record.clone()));
                            let idx = store.by_labels(labels);
                            if written[i].len() < REMEMBERED {
                                written[i].push((found, idx));
                            }
                            idx
                        }
                    };
                    store.push(idx, t, v);
                    if memo.reusable {
                        memo.recorded.push((idx, v));
                    }
                }
            } else if let (Some(alert), Some(shared)) = (&rule.alert, &named[i]) {
                for (found, _) in vector {
                    let seen = renamed[i].iter().find(|(l, _)| *l == found);
                    let labels = match seen {
                        Some((_, labels)) => labels.clone(),
                        None => {
                            let mut labels = found.clone();
                            labels.retain(|(k, _)| !is_name(k));
                            for (k, val) in &extra[i] {
                                set_label(&mut labels, k, val);
                            }
                            set_label(&mut labels, &alertname, shared);
                            if renamed[i].len() < REMEMBERED {
                                renamed[i].push((found, labels.clone()));
                            }
                            labels
                        }
                    };
                    if memo.reusable {
                        memo.alerts.push(labels.clone());
                    }
                    observe(
                        (i, labels),
                        alert,
                        t,
                        rule.hold_ms,
                        &mut active,
                        &mut present,
                        &mut fired,
                    );
                }
            }
        }
        present.sort();
        active.retain(|k, _| present.binary_search(k).is_ok());
        t += interval;
    }
    fired.into_values().collect()
}

/// A rule's last evaluation. Between scrapes of unchanged values most
/// rules read exactly what they read a minute before: then the result is
/// the same, and it is replayed instead of evaluated again.
#[derive(Default)]
struct Memo {
    /// The expression reads nothing but samples (no `time()`, no function
    /// the fingerprint does not know), so equal inputs give equal results.
    reusable: bool,
    valid: bool,
    /// What the selectors saw, relative to the evaluation time.
    inputs: Vec<u64>,
    /// Recording rules: each sample written (series index, value).
    recorded: Vec<(usize, f64)>,
    /// Alerts: the labels of each element returned.
    alerts: Vec<Set>,
    /// `fingerprint`'s positions, kept from one evaluation to the next.
    selections: Vec<(usize, std::rc::Rc<[usize]>)>,
    cursors: Vec<(usize, usize)>,
}

/// The functions whose result depends only on their arguments' samples,
/// with times taken relative to the evaluation time.
const SAMPLE_ONLY: &[&str] = &[
    "rate",
    "increase",
    "delta",
    "irate",
    "idelta",
    "avg_over_time",
    "sum_over_time",
    "max_over_time",
    "min_over_time",
    "count_over_time",
    "last_over_time",
    "present_over_time",
    "changes",
    "resets",
    "absent",
    "absent_over_time",
    "clamp_min",
    "clamp_max",
    "clamp",
    "abs",
    "ceil",
    "floor",
    "round",
    "sqrt",
    "exp",
    "ln",
    "vector",
    "scalar",
    "label_replace",
];

fn reusable(e: &Expr) -> bool {
    match e {
        Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::VectorSelector(_)
        | Expr::MatrixSelector(_) => true,
        Expr::Paren(p) => reusable(&p.expr),
        Expr::Unary(u) => reusable(&u.expr),
        Expr::Aggregate(a) => reusable(&a.expr) && a.param.as_deref().is_none_or(reusable),
        Expr::Binary(b) => reusable(&b.lhs) && reusable(&b.rhs),
        Expr::Call(c) => {
            SAMPLE_ONLY.contains(&c.func.name) && c.args.args.iter().all(|a| reusable(a))
        }
        Expr::Subquery(_) | Expr::Extension(_) => false,
    }
}

/// Writes over `memo.inputs` what every selector of a rule reads at `t`:
/// the series selected and, per series, the sample an instant selector
/// sees or the samples of a range (times relative to `t`), exactly as
/// `Eval` reads them. True when that is what the last pass wrote.
fn fingerprint(
    plan: &[(&VectorSelector, Option<i64>)],
    store: &Store,
    t: i64,
    caches: &RefCell<Caches>,
    memo: &mut Memo,
) -> bool {
    let mut walk = Walk {
        store,
        t,
        caches,
        out: &mut memo.inputs,
        selections: &mut memo.selections,
        cursors: &mut memo.cursors,
        selection: 0,
        cursor: 0,
        written: 0,
        unchanged: true,
    };
    for &(vs, range) in plan {
        walk.selector(vs, range);
    }
    let (written, unchanged) = (walk.written, walk.unchanged);
    if written != memo.inputs.len() {
        memo.inputs.truncate(written);
        return false;
    }
    unchanged
}

/// The selectors of `e` in the order `fingerprint` reads them, with their
/// ranges: collected once per run instead of walking the tree every step.
fn plan<'e>(e: &'e Expr, out: &mut Vec<(&'e VectorSelector, Option<i64>)>) {
    match e {
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
        Expr::Paren(p) => plan(&p.expr, out),
        Expr::Unary(u) => plan(&u.expr, out),
        Expr::Aggregate(a) => {
            plan(&a.expr, out);
            if let Some(p) = &a.param {
                plan(p, out);
            }
        }
        Expr::Binary(b) => {
            plan(&b.lhs, out);
            plan(&b.rhs, out);
        }
        Expr::Call(c) => {
            for a in &c.args.args {
                plan(a, out);
            }
        }
        Expr::VectorSelector(vs) => out.push((vs, None)),
        Expr::MatrixSelector(ms) => out.push((&ms.vs, Some(ms.range.as_millis() as i64))),
        Expr::Subquery(_) | Expr::Extension(_) => {}
    }
}

/// One pass of `fingerprint`. Evaluation times only grow, so where each
/// selector's window starts and ends in a series moves forward: the
/// positions are kept between passes instead of searched for again.
struct Walk<'a> {
    store: &'a Store,
    t: i64,
    caches: &'a RefCell<Caches>,
    out: &'a mut Vec<u64>,
    /// Per selector in walk order: (store size, the series it selects).
    selections: &'a mut Vec<(usize, std::rc::Rc<[usize]>)>,
    /// Per (selector, series) bound in walk order: (series, position).
    cursors: &'a mut Vec<(usize, usize)>,
    selection: usize,
    cursor: usize,
    /// How much of `out` this pass has written, and whether all of it
    /// equalled what was there.
    written: usize,
    unchanged: bool,
}

impl Walk<'_> {
    fn put(&mut self, x: u64) {
        match self.out.get_mut(self.written) {
            Some(slot) => {
                if *slot != x {
                    *slot = x;
                    self.unchanged = false;
                }
            }
            None => {
                self.out.push(x);
                self.unchanged = false;
            }
        }
        self.written += 1;
    }

    fn selector(&mut self, vs: &VectorSelector, range: Option<i64>) {
        let at = self.t - offset_ms(vs);
        let len = self.store.series.len();
        if self.selection == self.selections.len() {
            self.selections.push((usize::MAX, std::rc::Rc::from([])));
        }
        if self.selections[self.selection].0 != len {
            let hits = Eval {
                store: self.store,
                t: self.t,
                caches: self.caches,
            }
            .select(vs);
            self.selections[self.selection] = (len, hits);
        }
        let hits = self.selections[self.selection].1.clone();
        self.put(hits.len() as u64);
        for &i in hits.iter() {
            let s = &self.store.series[i].samples;
            self.put(i as u64);
            // The first sample after `at`, as `partition_point(ts <= at)`.
            let hi = self.advance(i, s, |ts| ts <= at);
            match range {
                None => match hi.checked_sub(1).map(|k| s[k]) {
                    Some((ts, v)) if ts > at - LOOKBACK_MS => {
                        self.put(1);
                        self.put(v.to_bits());
                    }
                    _ => self.put(0),
                },
                Some(range) => {
                    let lo = self.advance(i, s, |ts| ts < at - range);
                    let window = &s[lo..hi.max(lo)];
                    self.put(window.len() as u64);
                    for &(ts, v) in window {
                        self.put((ts - self.t) as u64);
                        self.put(v.to_bits());
                    }
                }
            }
        }
        self.selection += 1;
    }

    /// `s.partition_point(before)`, resumed from the last pass's answer
    /// for this bound when it was on the same series.
    fn advance(&mut self, series: usize, s: &[(i64, f64)], before: impl Fn(i64) -> bool) -> usize {
        if self.cursor == self.cursors.len() {
            self.cursors.push((usize::MAX, 0));
        }
        let (on, from) = self.cursors[self.cursor];
        let mut k = if on == series && from <= s.len() && (from == 0 || before(s[from - 1].0)) {
            from
        } else {
            s.partition_point(|&(ts, _)| before(ts))
        };
        while k < s.len() && before(s[k].0) {
            k += 1;
        }
        self.cursors[self.cursor] = (series, k);
        self.cursor += 1;
        k
    }
}

fn set_label(labels: &mut Set, k: &Name, v: &Name) {
    labels.retain(|(n, _)| n != k);
    if !v.is_empty() {
        labels.push((k.clone(), v.clone()));
    }
    labels.sort();
}

fn is_name(k: &Name) -> bool {
    &**k == "__name__"
}

#[derive(Debug, Clone)]
pub enum Value {
    Scalar(f64),
    Str(String),
    Vector(Vec<(Set, f64)>),
    Matrix(Vec<(Set, Vec<(i64, f64)>)>),
}

struct Eval<'a> {
    store: &'a Store,
    t: i64,
    caches: &'a RefCell<Caches>,
}

/// What does not change between evaluations: which series each selector
/// matches (until a recording rule adds a series).
#[derive(Default)]
struct Caches {
    selectors: NumberMap<usize, (usize, std::rc::Rc<[usize]>)>,
    /// Per `label_replace` call site: label sets in, label sets out.
    relabelled: NumberMap<usize, Vec<(Set, Set)>>,
}

/// Hashes the small integers the evaluator's tables are keyed by (a
/// selector's address, a token id) with one multiply: SipHash would cost
/// more than the lookup it serves. Only looked up, never iterated, so the
/// order it gives the tables reaches no output.
#[derive(Default, Clone, Copy)]
struct NumberHasher(u64);

impl std::hash::Hasher for NumberHasher {
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

type NumberMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<NumberHasher>>;

fn matches(series: &Series, vs: &VectorSelector) -> bool {
    let get = |k: &str| {
        series
            .labels
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    if let Some(name) = &vs.name {
        if series.name() != name {
            return false;
        }
    }
    let ok = |m: &Matchers| m.matchers.iter().all(|m| m.is_match(get(&m.name)));
    if vs.matchers.or_matchers.is_empty() {
        ok(&vs.matchers)
    } else {
        vs.matchers
            .or_matchers
            .iter()
            .any(|group| group.iter().all(|m| m.is_match(get(&m.name))))
    }
}

fn drop_name(mut l: Set) -> Set {
    l.retain(|(k, _)| !is_name(k));
    l
}

fn offset_ms(vs: &VectorSelector) -> i64 {
    match &vs.offset {
        Some(parser::Offset::Pos(d)) => d.as_millis() as i64,
        Some(parser::Offset::Neg(d)) => -(d.as_millis() as i64),
        None => 0,
    }
}

impl Eval<'_> {
    fn eval(&self, e: &Expr) -> Value {
        match e {
            Expr::NumberLiteral(n) => Value::Scalar(n.val),
            Expr::StringLiteral(s) => Value::Str(s.val.clone()),
            Expr::Paren(p) => self.eval(&p.expr),
            Expr::Unary(u) => match self.eval(&u.expr) {
                Value::Scalar(s) => Value::Scalar(-s),
                Value::Vector(v) => {
                    Value::Vector(v.into_iter().map(|(l, x)| (drop_name(l), -x)).collect())
                }
                other => other,
            },
            Expr::VectorSelector(vs) => self.instant(vs),
            Expr::MatrixSelector(ms) => self.range(&ms.vs, ms.range.as_millis() as i64),
            Expr::Aggregate(a) => self.aggregate(a),
            Expr::Binary(b) => self.binary(b),
            Expr::Call(c) => self.call(c),
            Expr::Subquery(_) | Expr::Extension(_) => Value::Vector(Vec::new()),
        }
    }

    /// Indices of the series `vs` selects.
    fn select(&self, vs: &VectorSelector) -> std::rc::Rc<[usize]> {
        let key = vs as *const VectorSelector as usize;
        let len = self.store.series.len();
        let mut caches = self.caches.borrow_mut();
        if let Some((n, hit)) = caches.selectors.get(&key) {
            if *n == len {
                return hit.clone();
            }
        }
        let hit: std::rc::Rc<[usize]> = (0..len)
            .filter(|&i| matches(&self.store.series[i], vs))
            .collect();
        caches.selectors.insert(key, (len, hit.clone()));
        hit
    }

    fn instant(&self, vs: &VectorSelector) -> Value {
        let t = self.t - offset_ms(vs);
        let mut out = Vec::new();
        for &i in self.select(vs).iter() {
            let s = &self.store.series[i];
            let k = s.samples.partition_point(|&(ts, _)| ts <= t);
            if k == 0 {
                continue;
            }
            let (ts, v) = s.samples[k - 1];
            if ts > t - LOOKBACK_MS {
                out.push((self.store.sets[i].clone(), v));
            }
        }
        Value::Vector(out)
    }

    /// Samples in [t − range, t] (Prometheus 2.x includes both ends).
    fn range(&self, vs: &VectorSelector, range: i64) -> Value {
        let t = self.t - offset_ms(vs);
        let mut out = Vec::new();
        for &i in self.select(vs).iter() {
            let s = &self.store.series[i];
            let lo = s.samples.partition_point(|&(ts, _)| ts < t - range);
            let hi = s.samples.partition_point(|&(ts, _)| ts <= t);
            if hi > lo {
                out.push((self.store.sets[i].clone(), s.samples[lo..hi].to_vec()));
            }
        }
        Value::Matrix(out)
    }

    fn aggregate(&self, a: &parser::AggregateExpr) -> Value {
        let Value::Vector(v) = self.eval(&a.expr) else {
            return Value::Vector(Vec::new());
        };
        let op = op_name(a.op);
        let key = |l: &Set| -> Set {
            match &a.modifier {
                Some(parser::LabelModifier::Include(keep)) => l
                    .iter()
                    .filter(|(k, _)| keep.labels.iter().any(|x| **x == **k))
                    .cloned()
                    .collect(),
                Some(parser::LabelModifier::Exclude(drop)) => l
                    .iter()
                    .filter(|(k, _)| !is_name(k) && !drop.labels.iter().any(|x| **x == **k))
                    .cloned()
                    .collect(),
                None => Vec::new(),
            }
        };
        let mut groups: BTreeMap<Set, Vec<f64>> = BTreeMap::new();
        for (l, x) in &v {
            groups.entry(key(l)).or_default().push(*x);
        }
        let out = groups
            .into_iter()
            .filter_map(|(l, xs)| {
                let n = xs.len() as f64;
                let v = match op {
                    "sum" => xs.iter().sum(),
                    "max" => xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    "min" => xs.iter().copied().fold(f64::INFINITY, f64::min),
                    "count" => n,
                    "avg" => xs.iter().sum::<f64>() / n,
                    "group" => 1.0,
                    _ => return None,
                };
                Some((l, v))
            })
            .collect();
        Value::Vector(out)
    }

    fn binary(&self, b: &parser::BinaryExpr) -> Value {
        let op = op_name(b.op);
        let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
        let lhs = self.eval(&b.lhs);
        let rhs = self.eval(&b.rhs);
        let comparison = matches!(op, "==" | "!=" | ">" | "<" | ">=" | "<=");
        match (lhs, rhs) {
            (Value::Scalar(x), Value::Scalar(y)) => {
                let (v, keep) = elem(op, x, y);
                if comparison && !keep && !return_bool {
                    Value::Scalar(f64::NAN)
                } else if comparison {
                    Value::Scalar(if keep { 1.0 } else { 0.0 })
                } else {
                    Value::Scalar(v)
                }
            }
            (Value::Vector(v), Value::Scalar(s)) => {
                Value::Vector(vector_scalar(op, v, s, false, comparison, return_bool))
            }
            (Value::Scalar(s), Value::Vector(v)) => {
                Value::Vector(vector_scalar(op, v, s, true, comparison, return_bool))
            }
            (Value::Vector(l), Value::Vector(r)) => {
                Value::Vector(self.vector_vector(b, op, l, r, comparison, return_bool))
            }
            _ => Value::Vector(Vec::new()),
        }
    }

    fn vector_vector(
        &self,
        b: &parser::BinaryExpr,
        op: &str,
        l: Vec<(Set, f64)>,
        r: Vec<(Set, f64)>,
        comparison: bool,
        return_bool: bool,
    ) -> Vec<(Set, f64)> {
        let matching = b.modifier.as_ref().and_then(|m| m.matching.clone());
        let sig = |labels: &Set| -> Set {
            match &matching {
                Some(parser::LabelModifier::Include(on)) => labels
                    .iter()
                    .filter(|(k, _)| on.labels.iter().any(|x| **x == **k))
                    .cloned()
                    .collect(),
                Some(parser::LabelModifier::Exclude(ign)) => labels
                    .iter()
                    .filter(|(k, _)| !is_name(k) && !ign.labels.iter().any(|x| **x == **k))
                    .cloned()
                    .collect(),
                None => drop_name(labels.clone()),
            }
        };
        match op {
            "and" => {
                let keys: Vec<Set> = r.iter().map(|(l, _)| sig(l)).collect();
                l.into_iter()
                    .filter(|(x, _)| keys.contains(&sig(x)))
                    .collect()
            }
            "unless" => {
                let keys: Vec<Set> = r.iter().map(|(l, _)| sig(l)).collect();
                l.into_iter()
                    .filter(|(x, _)| !keys.contains(&sig(x)))
                    .collect()
            }
            "or" => {
                let keys: Vec<Set> = l.iter().map(|(x, _)| sig(x)).collect();
                let mut out = l;
                out.extend(r.into_iter().filter(|(x, _)| !keys.contains(&sig(x))));
                out
            }
            _ => {
                let card = b.modifier.as_ref().map(|m| m.card.clone());
                let (many_left, include) = match &card {
                    Some(parser::VectorMatchCardinality::ManyToOne(inc)) => {
                        (Some(true), inc.labels.clone())
                    }
                    Some(parser::VectorMatchCardinality::OneToMany(inc)) => {
                        (Some(false), inc.labels.clone())
                    }
                    _ => (None, Vec::new()),
                };
                let mut out = Vec::new();
                let (outer, inner_is_right) = match many_left {
                    Some(false) => (&r, false),
                    _ => (&l, true),
                };
                // The side looked up, by signature; the last element with a
                // signature wins. Vectors hold one pool's series: a scan is
                // cheaper than hashing their labels.
                let inner: Vec<(Set, &(Set, f64))> = if inner_is_right { &r } else { &l }
                    .iter()
                    .map(|item| (sig(&item.0), item))
                    .collect();
                for (labels, x) in outer {
                    let key = sig(labels);
                    let other = inner.iter().rev().find(|(k, _)| *k == key);
                    let Some((_, (olabels, y))) = other else {
                        continue;
                    };
                    let (lv, rv) = if inner_is_right { (*x, *y) } else { (*y, *x) };
                    let (v, keep) = elem(op, lv, rv);
                    if comparison && !return_bool && !keep {
                        continue;
                    }
                    let mut result = if inner_is_right {
                        labels.clone()
                    } else {
                        olabels.clone()
                    };
                    if !comparison || return_bool {
                        result = drop_name(result);
                    }
                    if many_left.is_none() {
                        match &matching {
                            Some(parser::LabelModifier::Include(on)) => {
                                result.retain(|(k, _)| on.labels.iter().any(|x| **x == **k))
                            }
                            Some(parser::LabelModifier::Exclude(ign)) => {
                                result.retain(|(k, _)| !ign.labels.iter().any(|x| **x == **k))
                            }
                            None => {}
                        }
                    }
                    let source = if inner_is_right { olabels } else { labels };
                    for name in &include {
                        if let Some((k, val)) = source.iter().find(|(k, _)| **k == **name) {
                            set_label(&mut result, k, val);
                        }
                    }
                    let value = if comparison && return_bool {
                        if keep {
                            1.0
                        } else {
                            0.0
                        }
                    } else if comparison {
                        lv
                    } else {
                        v
                    };
                    out.push((result, value));
                }
                out
            }
        }
    }

    fn call(&self, c: &parser::Call) -> Value {
        let name = c.func.name;
        let arg = |i: usize| c.args.args.get(i).map(|a| self.eval(a));
        let scalar = |i: usize| match arg(i) {
            Some(Value::Scalar(s)) => s,
            _ => f64::NAN,
        };
        let vector = |i: usize| match arg(i) {
            Some(Value::Vector(v)) => v,
            _ => Vec::new(),
        };
        let map = |f: &dyn Fn(f64) -> f64| {
            Value::Vector(
                vector(0)
                    .into_iter()
                    .map(|(l, x)| (drop_name(l), f(x)))
                    .collect(),
            )
        };
        match name {
            "rate" | "increase" | "delta" | "irate" | "idelta" => {
                let Some(Value::Matrix(m)) = arg(0) else {
                    return Value::Vector(Vec::new());
                };
                let range = match c.args.args.first().map(|a| a.as_ref()) {
                    Some(Expr::MatrixSelector(ms)) => ms.range.as_millis() as i64,
                    _ => 0,
                };
                let out = m
                    .into_iter()
                    .filter_map(|(l, s)| {
                        let v = match name {
                            "rate" => extrapolated(&s, self.t - range, self.t, true, true),
                            "increase" => extrapolated(&s, self.t - range, self.t, true, false),
                            "delta" => extrapolated(&s, self.t - range, self.t, false, false),
                            "irate" | "idelta" => {
                                if s.len() < 2 {
                                    None
                                } else {
                                    let (a, b) = (s[s.len() - 2], s[s.len() - 1]);
                                    let d = if name == "irate" && b.1 < a.1 {
                                        b.1
                                    } else {
                                        b.1 - a.1
                                    };
                                    if name == "irate" {
                                        Some(d / ((b.0 - a.0) as f64 / 1000.0))
                                    } else {
                                        Some(d)
                                    }
                                }
                            }
                            _ => None,
                        }?;
                        Some((drop_name(l), v))
                    })
                    .collect();
                Value::Vector(out)
            }
            n if n.ends_with("_over_time") => {
                let Some(Value::Matrix(m)) = arg(0) else {
                    return Value::Vector(Vec::new());
                };
                let out = m
                    .into_iter()
                    .filter_map(|(l, s)| {
                        let xs: Vec<f64> = s.iter().map(|&(_, v)| v).collect();
                        let n_ = xs.len() as f64;
                        let v = match n {
                            "avg_over_time" => xs.iter().sum::<f64>() / n_,
                            "sum_over_time" => xs.iter().sum(),
                            "max_over_time" => xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                            "min_over_time" => xs.iter().copied().fold(f64::INFINITY, f64::min),
                            "count_over_time" => n_,
                            "last_over_time" => *xs.last()?,
                            "present_over_time" => 1.0,
                            _ => return None,
                        };
                        let labels = if n == "last_over_time" {
                            l
                        } else {
                            drop_name(l)
                        };
                        Some((labels, v))
                    })
                    .collect();
                Value::Vector(out)
            }
            "changes" | "resets" => {
                let Some(Value::Matrix(m)) = arg(0) else {
                    return Value::Vector(Vec::new());
                };
                Value::Vector(
                    m.into_iter()
                        .map(|(l, s)| {
                            let n = s
                                .windows(2)
                                .filter(|w| {
                                    if name == "changes" {
                                        w[0].1 != w[1].1
                                    } else {
                                        w[1].1 < w[0].1
                                    }
                                })
                                .count();
                            (drop_name(l), n as f64)
                        })
                        .collect(),
                )
            }
            "absent" | "absent_over_time" => {
                let empty = match arg(0) {
                    Some(Value::Vector(v)) => v.is_empty(),
                    Some(Value::Matrix(m)) => m.is_empty(),
                    _ => true,
                };
                if !empty {
                    return Value::Vector(Vec::new());
                }
                let mut labels = Vec::new();
                let selector = match c.args.args.first().map(|a| a.as_ref()) {
                    Some(Expr::VectorSelector(vs)) => Some(vs),
                    Some(Expr::MatrixSelector(ms)) => Some(&ms.vs),
                    _ => None,
                };
                if let Some(vs) = selector {
                    for m in &vs.matchers.matchers {
                        if matches!(m.op, promql_parser::label::MatchOp::Equal)
                            && m.name != "__name__"
                        {
                            set_label(
                                &mut labels,
                                &Name::from(m.name.as_str()),
                                &Name::from(m.value.as_str()),
                            );
                        }
                    }
                }
                Value::Vector(vec![(labels, 1.0)])
            }
            "clamp_min" => {
                let m = scalar(1);
                map(&|x| x.max(m))
            }
            "clamp_max" => {
                let m = scalar(1);
                map(&|x| x.min(m))
            }
            "clamp" => {
                let (lo, hi) = (scalar(1), scalar(2));
                if lo > hi {
                    return Value::Vector(Vec::new());
                }
                map(&|x| x.max(lo).min(hi))
            }
            "abs" => map(&f64::abs),
            "ceil" => map(&f64::ceil),
            "floor" => map(&f64::floor),
            "round" => map(&f64::round),
            "sqrt" => map(&f64::sqrt),
            "exp" => map(&f64::exp),
            "ln" => map(&f64::ln),
            "vector" => Value::Vector(vec![(Vec::new(), scalar(0))]),
            "scalar" => {
                let v = vector(0);
                Value::Scalar(if v.len() == 1 { v[0].1 } else { f64::NAN })
            }
            "time" => Value::Scalar(self.t as f64 / 1000.0),
            "label_replace" => {
                // Literal arguments are read in place, not copied per step.
                let s = |i: usize| -> std::borrow::Cow<str> {
                    match c.args.args.get(i).map(|a| a.as_ref()) {
                        Some(Expr::StringLiteral(l)) => l.val.as_str().into(),
                        _ => match arg(i) {
                            Some(Value::Str(s)) => s.into(),
                            _ => "".into(),
                        },
                    }
                };
                let (dst, repl, src, re) = (s(1), s(2), s(3), s(4));
                let dst = Name::from(&*dst);
                let input = vector(0);
                // With literal arguments a label set is always relabelled
                // the same way: each call site remembers what it made.
                let literal = (1..=4).all(|i| {
                    matches!(
                        c.args.args.get(i).map(|a| a.as_ref()),
                        Some(Expr::StringLiteral(_))
                    )
                });
                let site = c as *const parser::Call as usize;
                let out = with_pattern(&re, |re| {
                    let Some(re) = re else {
                        return Vec::new();
                    };
                    let mut caches = self.caches.borrow_mut();
                    let seen = caches.relabelled.entry(site).or_default();
                    input
                        .into_iter()
                        .map(|(mut l, x)| {
                            if literal {
                                if let Some((_, made)) = seen.iter().find(|(k, _)| *k == l) {
                                    return (made.clone(), x);
                                }
                            }
                            let before = (literal && seen.len() < REMEMBERED).then(|| l.clone());
                            let value = l
                                .iter()
                                .find(|(k, _)| **k == *src)
                                .map(|(_, v)| &**v)
                                .unwrap_or_default();
                            if let Some(caps) = re.captures(value) {
                                let mut to = String::new();
                                caps.expand(&repl, &mut to);
                                set_label(&mut l, &dst, &Name::from(to));
                            }
                            if let Some(before) = before {
                                seen.push((before, l.clone()));
                            }
                            (l, x)
                        })
                        .collect()
                });
                Value::Vector(out)
            }
            _ => Value::Vector(Vec::new()),
        }
    }
}

fn vector_scalar(
    op: &str,
    v: Vec<(Set, f64)>,
    s: f64,
    swap: bool,
    comparison: bool,
    return_bool: bool,
) -> Vec<(Set, f64)> {
    v.into_iter()
        .filter_map(|(l, x)| {
            let (a, b) = if swap { (s, x) } else { (x, s) };
            let (v, keep) = elem(op, a, b);
            if comparison {
                if return_bool {
                    Some((drop_name(l), if keep { 1.0 } else { 0.0 }))
                } else if keep {
                    Some((l, x))
                } else {
                    None
                }
            } else {
                Some((drop_name(l), v))
            }
        })
        .collect()
}

/// The value of `a op b`, and whether a comparison holds.
fn elem(op: &str, a: f64, b: f64) -> (f64, bool) {
    match op {
        "+" => (a + b, true),
        "-" => (a - b, true),
        "*" => (a * b, true),
        "/" => (a / b, true),
        "%" => (a % b, true),
        "^" => (a.powf(b), true),
        "atan2" => (a.atan2(b), true),
        "==" => (a, a == b),
        "!=" => (a, a != b),
        ">" => (a, a > b),
        "<" => (a, a < b),
        ">=" => (a, a >= b),
        "<=" => (a, a <= b),
        _ => (f64::NAN, false),
    }
}

/// Prometheus 2.x `extrapolatedRate`: the change over the samples, extended
/// towards the range edges when the gap is under 1.1 × the average step.
fn extrapolated(s: &[(i64, f64)], start: i64, end: i64, counter: bool, rate: bool) -> Option<f64> {
    if s.len() < 2 {
        return None;
    }
    let (first, last) = (s[0], s[s.len() - 1]);
    let mut result = last.1 - first.1;
    if counter {
        for w in s.windows(2) {
            if w[1].1 < w[0].1 {
                result += w[0].1;
            }
        }
    }
    let mut to_start = (first.0 - start) as f64 / 1000.0;
    let to_end = (end - last.0) as f64 / 1000.0;
    let sampled = (last.0 - first.0) as f64 / 1000.0;
    let average = sampled / (s.len() - 1) as f64;
    if counter && result > 0.0 && first.1 >= 0.0 {
        let to_zero = sampled * (first.1 / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = average * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold {
        to_start
    } else {
        average / 2.0
    };
    interval += if to_end < threshold {
        to_end
    } else {
        average / 2.0
    };
    let mut v = result * (interval / sampled);
    if rate {
        v /= (end - start) as f64 / 1000.0;
    }
    Some(v)
}

/// The operator's text (`sum`, `>`, `and`), lower-case. promql-parser only
/// offers it through `Display`; each distinct token is rendered once.
fn op_name(op: parser::token::TokenType) -> &'static str {
    thread_local! {
        static NAMES: RefCell<NumberMap<u16, &'static str>> = RefCell::default();
    }
    NAMES.with_borrow_mut(|names| {
        let id = op.id();
        match names.get(&id) {
            Some(name) => *name,
            None => {
                let name: &'static str = Box::leak(op.to_string().to_lowercase().into_boxed_str());
                names.insert(id, name);
                name
            }
        }
    })
}

/// Runs `f` with the anchored `label_replace` pattern `re` (None when it
/// does not compile). Patterns are compiled once per thread: the pools of
/// a cluster share them, and compiling one costs more than a day of
/// evaluating it.
fn with_pattern<R>(re: &str, f: impl FnOnce(Option<&regex::Regex>) -> R) -> R {
    thread_local! {
        static PATTERNS: RefCell<HashMap<String, Option<regex::Regex>>> = RefCell::default();
    }
    PATTERNS.with_borrow_mut(|patterns| {
        if !patterns.contains_key(re) {
            let compiled = regex::Regex::new(&format!("^(?s:{re})$")).ok();
            patterns.insert(re.to_string(), compiled);
        }
        f(patterns.get(re).and_then(Option::as_ref))
    })
}
