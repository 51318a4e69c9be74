//! Build arrivals: the built-in scenarios, seeded generators (Poisson,
//! compound-Poisson bursts, diurnal) and trace files a team replays from its
//! own history (CSV or the JSON of GitHub's jobs API). Traces are streamed:
//! a first pass checks every line (exit 2 with file:line on the first bad
//! one), a second feeds the simulation, so memory does not grow with the file.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::rng::Rng;

/// One build: when it first dials, how long it runs, and its pool if the
/// trace names one.
#[derive(Debug, Clone, PartialEq)]
pub struct Arrival {
    pub at: u64,
    pub duration: u64,
    pub pool: Option<String>,
}

/// How synthetic builds last.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Durations {
    Fixed(u64),
    Exponential { mean: f64 },
    Lognormal { median: f64, p95: f64 },
}

impl Durations {
    /// `fixed:10m`, `exp:10m`, `lognormal:20m:60m` (median:p95).
    pub fn parse(text: &str) -> Result<Durations, String> {
        let parts: Vec<&str> = text.split(':').collect();
        let d = |s: &str| {
            super::params::Millis::parse(s)
                .map(|m| m.0)
                .map_err(|e| format!("--durations: {e}"))
        };
        match parts.as_slice() {
            ["fixed", v] => Ok(Durations::Fixed(d(v)?)),
            ["exp", v] => Ok(Durations::Exponential { mean: d(v)? as f64 }),
            ["lognormal", m, p] => {
                let (median, p95) = (d(m)? as f64, d(p)? as f64);
                if p95 < median || median <= 0.0 {
                    return Err("--durations lognormal:MEDIAN:P95 needs 0 < MEDIAN <= P95".into());
                }
                Ok(Durations::Lognormal { median, p95 })
            }
            _ => Err(format!(
                "--durations `{text}`: use fixed:10m, exp:10m or lognormal:20m:60m (median:p95)"
            )),
        }
    }

    pub fn draw(&self, rng: &mut Rng) -> u64 {
        let v = match *self {
            Durations::Fixed(v) => return v.max(1),
            Durations::Exponential { mean } => rng.exponential(mean),
            Durations::Lognormal { median, p95 } => rng.lognormal(median, p95),
        };
        (v.round() as u64).max(1)
    }
}

/// Synthetic arrival processes.
#[derive(Debug, Clone, PartialEq)]
pub enum Generator {
    /// Builds per hour.
    Poisson { per_hour: f64 },
    /// Bursts per hour, each of 1 + Poisson(mean_size − 1) builds at once.
    Bursts { per_hour: f64, mean_size: f64 },
    /// A sinusoidal day: `trough` builds per hour at 00:00, `peak` at 12:00.
    Diurnal { trough: f64, peak: f64 },
    /// Builds in groups at fixed times: (minute offset, count).
    Batches(Vec<(u64, u32)>),
}

/// A complete workload for one pool.
#[derive(Debug, Clone)]
pub enum Workload {
    Generated {
        generator: Generator,
        durations: Durations,
        horizon: u64,
    },
    Trace(Trace),
}

/// The built-in scenarios: (name, what it is).
pub const SCENARIOS: &[(&str, &str)] = &[
    (
        "seed000",
        "batches of 2 builds at minutes 0, 3, 10 and 14 (the backlog alert review)",
    ),
    (
        "seed001-burst",
        "an 8-wide burst of 10-minute builds at t = 0 (the staging integration test)",
    ),
    (
        "seed001-overload",
        "9 builds of 10 minutes at t = 0: one more than a max-8 pool holds",
    ),
    (
        "diurnal",
        "one day of Poisson arrivals, 2 builds/h at night to 30 builds/h at noon",
    ),
];

/// The named scenario, with the spec's build durations where it has none.
pub fn scenario(name: &str, durations: Durations) -> Result<Workload, String> {
    let ten = Durations::Fixed(10 * 60_000);
    let (generator, durations, horizon) = match name {
        "seed000" => (
            Generator::Batches(vec![(0, 2), (3, 2), (10, 2), (14, 2)]),
            durations,
            3 * 3_600_000,
        ),
        "seed001-burst" => (Generator::Batches(vec![(0, 8)]), ten, 3_600_000),
        "seed001-overload" => (Generator::Batches(vec![(0, 9)]), ten, 3_600_000),
        "diurnal" => (
            Generator::Diurnal {
                trough: 2.0,
                peak: 30.0,
            },
            durations,
            86_400_000,
        ),
        _ => {
            let known: Vec<&str> = SCENARIOS.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "unknown scenario `{name}`; the built-in scenarios are {}",
                known.join(", ")
            ));
        }
    };
    Ok(Workload::Generated {
        generator,
        durations,
        horizon,
    })
}

/// Arrivals of a generated workload, in time order, drawn lazily.
pub struct Generated {
    generator: Generator,
    durations: Durations,
    horizon: u64,
    arrivals: Rng,
    lengths: Rng,
    /// Next arrival time (ms, fractional) and builds left in the current group.
    t: f64,
    group_left: u32,
    batch_index: usize,
}

impl Generated {
    pub fn new(generator: Generator, durations: Durations, horizon: u64, seed: u64) -> Generated {
        Generated {
            generator,
            durations,
            horizon,
            arrivals: Rng::new(seed, 1),
            lengths: Rng::new(seed, 2),
            t: 0.0,
            group_left: 0,
            batch_index: 0,
        }
    }
}

impl Iterator for Generated {
    type Item = Arrival;

    fn next(&mut self) -> Option<Arrival> {
        const HOUR: f64 = 3_600_000.0;
        if self.group_left == 0 {
            match &self.generator {
                Generator::Batches(b) => {
                    let &(minute, count) = b.get(self.batch_index)?;
                    self.batch_index += 1;
                    self.t = minute as f64 * 60_000.0;
                    self.group_left = count;
                }
                Generator::Poisson { per_hour } => {
                    if *per_hour <= 0.0 {
                        return None;
                    }
                    self.t += self.arrivals.exponential(HOUR / per_hour);
                    self.group_left = 1;
                }
                Generator::Bursts {
                    per_hour,
                    mean_size,
                } => {
                    if *per_hour <= 0.0 {
                        return None;
                    }
                    self.t += self.arrivals.exponential(HOUR / per_hour);
                    self.group_left = 1 + self.arrivals.poisson((mean_size - 1.0).max(0.0)) as u32;
                }
                Generator::Diurnal { trough, peak } => {
                    // Thinning of a Poisson process at the peak rate.
                    let top = trough.max(*peak);
                    if top <= 0.0 {
                        return None;
                    }
                    loop {
                        self.t += self.arrivals.exponential(HOUR / top);
                        let phase = (self.t / (24.0 * HOUR)) * std::f64::consts::TAU;
                        let rate = trough + (peak - trough) * (1.0 - phase.cos()) / 2.0;
                        if self.arrivals.unit() * top <= rate || self.t >= self.horizon as f64 {
                            break;
                        }
                    }
                    self.group_left = 1;
                }
            }
        }
        if self.t >= self.horizon as f64 {
            return None;
        }
        self.group_left -= 1;
        Some(Arrival {
            at: self.t as u64,
            duration: self.durations.draw(&mut self.lengths),
            pool: None,
        })
    }
}

/// A trace file on disk, in one of the two formats.
#[derive(Debug, Clone)]
pub struct Trace {
    pub path: PathBuf,
    pub format: TraceFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceFormat {
    Csv,
    GithubJobs,
}

/// A bad trace: where, what, and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceError {
    pub path: String,
    pub line: u64,
    pub message: String,
    pub help: String,
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Line 0: about the file as a whole (it cannot be opened).
        match self.line {
            0 => write!(f, "error: {}: {}", self.path, self.message),
            line => write!(f, "error: {}:{line}: {}", self.path, self.message),
        }?;
        write!(f, "\n  help: {}", self.help)
    }
}

/// The largest GitHub jobs JSON read whole (CSV is streamed, any size).
const MAX_JSON_BYTES: u64 = 256 << 20;
/// The longest CSV line: a guard against a binary file.
const MAX_LINE: usize = 4096;

impl Trace {
    pub fn open(path: &Path) -> Trace {
        let json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        Trace {
            path: path.to_path_buf(),
            format: if json {
                TraceFormat::GithubJobs
            } else {
                TraceFormat::Csv
            },
        }
    }

    /// Reads the trace from the start; `pools` are the names a row may give.
    pub fn read(&self, pools: &[String]) -> Result<TraceReader, TraceError> {
        let shown = self.path.display().to_string();
        let err = |message: String| TraceError {
            path: shown.clone(),
            line: 0,
            message,
            help: "pass a readable CSV (arrival,duration[,pool]) or GitHub jobs JSON file"
                .to_string(),
        };
        let meta = std::fs::symlink_metadata(&self.path)
            .map_err(|e| err(format!("cannot read the trace: {e}")))?;
        if !meta.is_file() {
            return Err(err("the trace is not a regular file".to_string()));
        }
        let file =
            File::open(&self.path).map_err(|e| err(format!("cannot read the trace: {e}")))?;
        match self.format {
            TraceFormat::Csv => Ok(TraceReader::Csv(CsvReader {
                path: shown,
                lines: BufReader::with_capacity(1 << 16, file),
                line: 0,
                buf: String::new(),
                pools: pools.to_vec(),
                origin: None,
                last: 0,
                header_allowed: true,
            })),
            TraceFormat::GithubJobs => {
                if meta.len() > MAX_JSON_BYTES {
                    return Err(err(format!(
                        "the jobs JSON is {} bytes; poolc reads at most {MAX_JSON_BYTES}",
                        meta.len()
                    )));
                }
                let jobs = github_jobs(&shown, file, pools)?;
                Ok(TraceReader::Jobs(jobs.into_iter()))
            }
        }
    }

    /// Checks every line without keeping any; returns the number of builds.
    pub fn validate(&self, pools: &[String]) -> Result<u64, TraceError> {
        let mut n = 0;
        for a in self.read(pools)? {
            a?;
            n += 1;
        }
        Ok(n)
    }
}

pub enum TraceReader {
    Csv(CsvReader),
    Jobs(std::vec::IntoIter<Arrival>),
}

impl Iterator for TraceReader {
    type Item = Result<Arrival, TraceError>;
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            TraceReader::Csv(r) => r.next(),
            TraceReader::Jobs(j) => j.next().map(Ok),
        }
    }
}

pub struct CsvReader {
    path: String,
    lines: BufReader<File>,
    line: u64,
    buf: String,
    pools: Vec<String>,
    /// The first RFC 3339 arrival, in ms since the epoch: time 0.
    origin: Option<i64>,
    last: u64,
    header_allowed: bool,
}

/// A CSV field without its blanks and the double quotes that spreadsheets
/// and `csv.QUOTE_ALL` put around it (no field of a trace holds a comma).
fn unquote(field: &str) -> &str {
    let field = field.trim();
    field
        .strip_prefix('"')
        .and_then(|f| f.strip_suffix('"'))
        .map_or(field, str::trim)
}

impl CsvReader {
    fn error(&self, message: String, help: &str) -> TraceError {
        TraceError {
            path: self.path.clone(),
            line: self.line,
            message,
            help: help.to_string(),
        }
    }

    fn parse_line(&mut self) -> Result<Option<Arrival>, TraceError> {
        let text = self.buf.trim_end_matches(['\n', '\r']).trim();
        if text.is_empty() || text.starts_with('#') {
            return Ok(None);
        }
        let fields: Vec<&str> = text.split(',').map(unquote).collect();
        // A first line of names, none of them a number or a time, is a
        // header (`arrival,duration,pool`, or the user's own names).
        let header = self.header_allowed
            && fields
                .iter()
                .all(|f| parse_seconds(f).is_none() && parse_rfc3339(f).is_none());
        self.header_allowed = false;
        if header {
            return Ok(None);
        }
        const FORMAT: &str = "write `arrival,duration[,pool]`: arrival in seconds from the start or an RFC 3339 time, duration in seconds";
        if !(2..=3).contains(&fields.len()) {
            return Err(self.error(
                format!(
                    "expected 2 or 3 comma-separated fields, found {}",
                    fields.len()
                ),
                FORMAT,
            ));
        }
        let at = match parse_seconds(fields[0]) {
            Some(s) if s < 0.0 => {
                return Err(self.error(format!("arrival `{}` is negative", fields[0]), FORMAT))
            }
            Some(s) => (s * 1000.0).round() as u64,
            None => match parse_rfc3339(fields[0]) {
                Some(ms) => {
                    let origin = *self.origin.get_or_insert(ms);
                    if ms < origin {
                        return Err(self.error(
                            format!("arrival {} is before the first arrival", fields[0]),
                            "sort the trace by arrival time",
                        ));
                    }
                    (ms - origin) as u64
                }
                None => {
                    return Err(self.error(
                        format!(
                            "arrival `{}` is neither seconds nor an RFC 3339 time",
                            fields[0]
                        ),
                        FORMAT,
                    ))
                }
            },
        };
        let duration = match parse_seconds(fields[1]) {
            Some(s) if s < 0.0 => {
                return Err(self.error(
                    format!("duration `{}` is negative", fields[1]),
                    "a build lasts 0 seconds or more",
                ))
            }
            Some(s) if s > 365.0 * 86_400.0 => {
                return Err(self.error(
                    format!("duration `{}` is longer than a year", fields[1]),
                    "give the duration in seconds",
                ))
            }
            Some(s) => ((s * 1000.0).round() as u64).max(1),
            None => {
                return Err(self.error(
                    format!("duration `{}` is not a number of seconds", fields[1]),
                    FORMAT,
                ))
            }
        };
        if at < self.last {
            return Err(self.error(
                format!(
                    "arrival {} is earlier than the line before ({} s)",
                    fields[0],
                    self.last as f64 / 1000.0
                ),
                "sort the trace by arrival time",
            ));
        }
        if at > 365 * 86_400_000 {
            return Err(self.error(
                format!("arrival {} is more than a year after the start", fields[0]),
                "split the trace or give arrivals in seconds from its start",
            ));
        }
        self.last = at;
        let pool = match fields.get(2) {
            Some(p) if !p.is_empty() => {
                if !self.pools.iter().any(|k| k == p) {
                    return Err(self.error(
                        format!("unknown pool `{p}`"),
                        &format!("the cluster's pools are {}", self.pools.join(", ")),
                    ));
                }
                Some(p.to_string())
            }
            _ => None,
        };
        Ok(Some(Arrival { at, duration, pool }))
    }
}

impl Iterator for CsvReader {
    type Item = Result<Arrival, TraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.buf.clear();
            self.line += 1;
            let read =
                std::io::Read::take(&mut self.lines, MAX_LINE as u64 + 1).read_line(&mut self.buf);
            match read {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => {
                    return Some(Err(self.error(
                        format!("cannot read this line: {e}"),
                        "a trace is UTF-8 text, one build per line",
                    )))
                }
            }
            if self.buf.len() > MAX_LINE && !self.buf.ends_with('\n') {
                return Some(Err(self.error(
                    format!("line longer than {MAX_LINE} bytes"),
                    "a trace is UTF-8 text, one build per line",
                )));
            }
            match self.parse_line() {
                Ok(Some(a)) => return Some(Ok(a)),
                Ok(None) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

fn parse_seconds(s: &str) -> Option<f64> {
    if s.is_empty()
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
    {
        return None;
    }
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// `2024-05-01T12:00:00Z`, with optional fraction and `±HH:MM` offset, to ms
/// since the Unix epoch.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if !t.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut frac_ms = 0i64;
    if let Some(r) = rest.strip_prefix('.') {
        let digits = r.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let f = &r[..digits.min(3)];
        frac_ms = f.parse::<i64>().ok()? * 10i64.pow(3 - f.len() as u32);
        rest = &r[digits..];
    }
    let offset_min = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) && &o[3..4] == ":" => {
            let oh: i64 = o[1..3].parse().ok()?;
            let om: i64 = o[4..6].parse().ok()?;
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (oh * 60 + om)
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    Some(((days * 86_400 + h * 3600 + mi * 60 + se) - offset_min * 60) * 1000 + frac_ms)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// GitHub's `GET /repos/{o}/{r}/actions/runs/{id}/jobs`: one page, several
/// pages as `gh api --paginate` prints them (one document after another) or
/// as `--slurp` gathers them (a list of pages), or a plain list of jobs.
/// Arrival = created_at, duration = completed_at − started_at; jobs not
/// completed are skipped; the rest are sorted by arrival. A job goes to the
/// pool that one of its `labels` (its `runs-on`) names, else to every pool.
fn github_jobs(path: &str, file: File, pools: &[String]) -> Result<Vec<Arrival>, TraceError> {
    const HELP: &str = "pass the body of GET /repos/OWNER/REPO/actions/runs/RUN/jobs (pages one after another or in a list, as `gh api --paginate [--slurp]` writes them), or a JSON list of its jobs";
    let mut text = String::new();
    BufReader::new(file)
        .read_to_string(&mut text)
        .map_err(|e| TraceError {
            path: path.to_string(),
            line: 1,
            message: format!("cannot read the jobs JSON: {e}"),
            help: HELP.to_string(),
        })?;
    let line_at = |offset: usize| text[..offset.min(text.len())].matches('\n').count() as u64 + 1;
    let mut jobs: Vec<(u64, serde_json::Value)> = Vec::new();
    let mut docs = serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>();
    loop {
        let start = docs.byte_offset();
        let doc = match docs.next() {
            None => break,
            Some(Ok(doc)) => doc,
            Some(Err(e)) => {
                return Err(TraceError {
                    path: path.to_string(),
                    line: e.line() as u64,
                    message: format!("not JSON: {e}"),
                    help: HELP.to_string(),
                })
            }
        };
        let line = line_at(start + text[start..].len() - text[start..].trim_start().len());
        let not_jobs = |what: &str| TraceError {
            path: path.to_string(),
            line,
            message: format!("not GitHub jobs JSON: {what}"),
            help: HELP.to_string(),
        };
        let page_jobs = |page: serde_json::Value| -> Result<Vec<serde_json::Value>, TraceError> {
            match page {
                serde_json::Value::Object(mut o) => match o.remove("jobs") {
                    Some(serde_json::Value::Array(list)) => Ok(list),
                    _ if o.contains_key("workflow_runs") => {
                        Err(not_jobs("a list of workflow runs; fetch each run's /jobs"))
                    }
                    _ if o.contains_key("created_at") => Ok(vec![serde_json::Value::Object(o)]),
                    _ => Err(not_jobs("an object with neither `jobs` nor `created_at`")),
                },
                other => Err(not_jobs(&format!(
                    "a {} where a page or a job belongs",
                    kind(&other)
                ))),
            }
        };
        match doc {
            serde_json::Value::Array(items) => {
                for item in items {
                    jobs.extend(page_jobs(item)?.into_iter().map(|j| (line, j)));
                }
            }
            page => jobs.extend(page_jobs(page)?.into_iter().map(|j| (line, j))),
        }
    }
    let mut out = Vec::with_capacity(jobs.len());
    for (i, (line, job)) in jobs.iter().enumerate() {
        let field = |k: &str| job.get(k).and_then(|v| v.as_str());
        let id = job
            .get("id")
            .map_or_else(|| format!("#{i}"), |v| v.to_string());
        let bad = |message: String| TraceError {
            path: path.to_string(),
            line: *line,
            message: format!("job {id}: {message}"),
            help: "each job needs created_at, started_at and completed_at as RFC 3339 times"
                .to_string(),
        };
        let Some(completed) = field("completed_at") else {
            continue;
        };
        let created = field("created_at").ok_or_else(|| bad("no created_at".into()))?;
        let started = field("started_at").ok_or_else(|| bad("no started_at".into()))?;
        let t =
            |s: &str| parse_rfc3339(s).ok_or_else(|| bad(format!("`{s}` is not an RFC 3339 time")));
        let (c, s, e) = (t(created)?, t(started)?, t(completed)?);
        if e < s {
            return Err(bad(format!(
                "completed_at {completed} is before started_at {started}: a negative duration"
            )));
        }
        let pool = job
            .get("labels")
            .and_then(|l| l.as_array())
            .into_iter()
            .flatten()
            .filter_map(|l| l.as_str())
            .find(|l| pools.iter().any(|p| p == l))
            .map(str::to_string);
        out.push((c, ((e - s) as u64).max(1), pool));
    }
    if out.is_empty() {
        return Err(TraceError {
            path: path.to_string(),
            line: 1,
            message: format!("none of its {} jobs has completed", jobs.len()),
            help: "a replay needs completed jobs: pass the jobs of finished runs".to_string(),
        });
    }
    out.sort();
    let origin = out[0].0;
    Ok(out
        .into_iter()
        .map(|(c, duration, pool)| Arrival {
            at: (c - origin) as u64,
            duration,
            pool,
        })
        .collect())
}

/// What a JSON value is, for a message.
fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "list",
        serde_json::Value::Object(_) => "object",
    }
}
