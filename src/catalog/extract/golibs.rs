//! The Go libraries a Kubernetes controller links, whose metrics it serves
//! on its own `/metrics`: controller-runtime (reconcile, workqueue, webhook,
//! certwatcher, leader election and the `rest_client_*` counters it wires
//! into client-go), prometheus/client_golang's Go and process collectors,
//! the gRPC interceptors of go-grpc-middleware's Prometheus provider,
//! awslabs/operatorpkg's `operator_*` families, and the AWS SDK request
//! families of jonathan-innis/aws-sdk-go-prometheus.
//!
//! Which version of each library a release links is read from that
//! release's `go.mod` (a `replace` of the same module wins over the
//! `require`). The library's source at that version is the release's own
//! `vendor/<module>/` when it vendors, else a clone of the library's
//! repository at the version's tag (`providers/prometheus/v1.1.0` for a
//! module in a subdirectory) or at a pseudo-version's commit; a commit the
//! clone lacks is stood in for by the newest commit of the clone's default
//! branch at or before the pseudo-version's timestamp.
//!
//! The metric definitions are then read like the exporters' own (see
//! `gosrc`), with what each library computes at run time taken the closest
//! mechanical way:
//! - Go collector: the classic names (`go_goroutines`, `go_memstats_*`, …)
//!   are its descriptors; the names derived from Go's `runtime/metrics` are
//!   those of the rules the controller enables (client_golang's default
//!   rule, or controller-runtime's `MetricsAll`), looked up in client_golang's
//!   generated table of runtime metric names for the Go release the
//!   controller's `go.mod` names (the nearest older table when there is no
//!   table for it). Those names carry no type in the source: `_total` ones
//!   are counters, the others untyped.
//! - gRPC provider: a family guarded by an option (a handling-time
//!   histogram) counts only when the controller passes that option; the
//!   namespace the controller sets is prepended.
//! - operatorpkg: a metric function called with an empty object name is a
//!   global family; a status controller the controller creates for a kind
//!   adds the per-kind families `operator_<kind>_…`, whose extra labels are
//!   computed from the controller's options at run time and stay open.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use regex::Regex;

use super::re;
use super::{find_clone, gosrc, ExtractError, Repo, Row};

pub const CONTROLLER_RUNTIME: &str = "sigs.k8s.io/controller-runtime";
pub const CLIENT_GOLANG: &str = "github.com/prometheus/client_golang";
pub const GRPC_PROMETHEUS: &str =
    "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus";
pub const OPERATORPKG: &str = "github.com/awslabs/operatorpkg";
pub const AWS_SDK_PROMETHEUS: &str = "github.com/jonathan-innis/aws-sdk-go-prometheus";
pub const PROMETHEUS_COMMON: &str = "github.com/prometheus/common";

/// Each module's GitHub repository and its directory there.
const MODULES: [(&str, &str, &str); 6] = [
    (CONTROLLER_RUNTIME, "kubernetes-sigs/controller-runtime", ""),
    (CLIENT_GOLANG, "prometheus/client_golang", ""),
    (
        GRPC_PROMETHEUS,
        "grpc-ecosystem/go-grpc-middleware",
        "providers/prometheus",
    ),
    (OPERATORPKG, "awslabs/operatorpkg", ""),
    (
        AWS_SDK_PROMETHEUS,
        "jonathan-innis/aws-sdk-go-prometheus",
        "",
    ),
    (PROMETHEUS_COMMON, "prometheus/common", ""),
];

/// The module versions a `go.mod` selects.
#[derive(Debug, Default)]
pub struct GoMod {
    required: BTreeMap<String, String>,
    replaced: BTreeMap<String, String>,
    /// The Go release it builds with (`toolchain`, else `go`): minor.
    go_minor: Option<u32>,
}

impl GoMod {
    pub fn parse(text: &str) -> GoMod {
        let mut m = GoMod::default();
        let mut toolchain = None;
        for line in text.lines() {
            let line = line.split("//").next().unwrap_or("").trim();
            let line = ["require ", "replace "]
                .iter()
                .find_map(|k| line.strip_prefix(k))
                .unwrap_or(line)
                .trim();
            if let Some((from, to)) = line.split_once("=>") {
                let from: Vec<&str> = from.split_whitespace().collect();
                let to: Vec<&str> = to.split_whitespace().collect();
                // A replace by a fork (another path) is not a version.
                if let ([module, ..], [target, version]) = (&from[..], &to[..]) {
                    if module == target {
                        m.replaced.insert(module.to_string(), version.to_string());
                    }
                }
                continue;
            }
            let parts: Vec<&str> = line.split_whitespace().collect();
            match parts[..] {
                ["go", v] => m.go_minor = m.go_minor.or(minor(v)),
                ["toolchain", v] => toolchain = minor(v.trim_start_matches("go")),
                [module, version] if version.starts_with('v') && module.contains('.') => {
                    m.required.insert(module.to_string(), version.to_string());
                }
                _ => {}
            }
        }
        m.go_minor = toolchain.or(m.go_minor);
        m
    }

    /// The version the build uses.
    pub fn version(&self, module: &str) -> Option<&str> {
        self.replaced
            .get(module)
            .or_else(|| self.required.get(module))
            .map(String::as_str)
    }

    /// A module's pinned revision: its tag, or a pseudo-version's commit.
    pub fn revision(&self, module: &str) -> Option<String> {
        Some(match Revision::of("", self.version(module)?) {
            Revision::Tag(t) => t,
            Revision::Pseudo { commit, .. } => commit,
        })
    }
}

fn minor(v: &str) -> Option<u32> {
    v.split('.').nth(1)?.parse().ok()
}

/// A module version as a git revision.
#[derive(Debug, PartialEq, Eq)]
enum Revision {
    Tag(String),
    /// `vX.Y.Z-[pre.]0.YYYYMMDDHHMMSS-commit`: the commit and its time.
    Pseudo {
        commit: String,
        time: String,
    },
}

impl Revision {
    fn of(dir: &str, version: &str) -> Revision {
        let version = version.trim_end_matches("+incompatible");
        let parts: Vec<&str> = version.rsplitn(3, '-').collect();
        if let [commit, stamp, _] = parts[..] {
            let stamp = stamp.rsplit('.').next().unwrap_or(stamp);
            if commit.len() == 12
                && commit.bytes().all(|b| b.is_ascii_hexdigit())
                && stamp.len() == 14
                && stamp.bytes().all(|b| b.is_ascii_digit())
            {
                let time = format!(
                    "{}-{}-{}T{}:{}:{}Z",
                    &stamp[0..4],
                    &stamp[4..6],
                    &stamp[6..8],
                    &stamp[8..10],
                    &stamp[10..12],
                    &stamp[12..14]
                );
                return Revision::Pseudo {
                    commit: commit.to_string(),
                    time,
                };
            }
        }
        if dir.is_empty() {
            Revision::Tag(version.to_string())
        } else {
            Revision::Tag(format!("{dir}/{version}"))
        }
    }
}

/// One library's source at one version: a directory of a revision of a
/// clone (the library's own, or the controller's `vendor/`).
pub struct Tree<'a> {
    repo: &'a Repo,
    rev: String,
    prefix: String,
}

impl Tree<'_> {
    /// A key naming this source, for the cache.
    fn key(&self) -> String {
        format!("{}@{}:{}", self.repo.dir().display(), self.rev, self.prefix)
    }

    pub fn show(&self, path: &str) -> Option<String> {
        self.repo.show(&self.rev, &format!("{}{path}", self.prefix))
    }

    /// Paths (relative to the library) of the non-test Go files under
    /// `dir` whose text contains `fixed`.
    fn grep(&self, fixed: &str, dir: &str) -> Result<Vec<String>, ExtractError> {
        let full = format!("{}{dir}", self.prefix);
        let full = if full.is_empty() {
            ".".to_string()
        } else {
            full
        };
        let mut out: Vec<String> = self
            .repo
            .grep_files(&self.rev, fixed, &[&full])?
            .into_iter()
            .filter(|p| p.ends_with(".go") && !p.ends_with("_test.go"))
            .filter_map(|p| p.strip_prefix(&self.prefix).map(str::to_string))
            .collect();
        out.sort();
        Ok(out)
    }

    fn texts(&self, paths: &[String]) -> Vec<String> {
        paths.iter().filter_map(|p| self.show(p)).collect()
    }
}

/// The library clones, found once.
pub struct Libraries {
    repos: BTreeMap<&'static str, Repo>,
    missing: BTreeMap<&'static str, ExtractError>,
}

/// The rows read per library version, so each is read once per refresh.
#[derive(Default)]
pub struct Cache(HashMap<String, Vec<Row>>);

impl Cache {
    fn get(
        &mut self,
        key: String,
        read: impl FnOnce() -> Result<Vec<Row>, ExtractError>,
    ) -> Result<Vec<Row>, ExtractError> {
        if let Some(rows) = self.0.get(&key) {
            return Ok(rows.clone());
        }
        let rows = read()?;
        self.0.insert(key, rows.clone());
        Ok(rows)
    }
}

impl Libraries {
    pub fn new(clones: &Path) -> Libraries {
        let mut repos = BTreeMap::new();
        let mut missing = BTreeMap::new();
        for (module, repo, _) in MODULES {
            match find_clone(clones, repo) {
                Ok(r) => _ = repos.insert(module, r),
                Err(e) => _ = missing.insert(module, e),
            }
        }
        Libraries { repos, missing }
    }

    /// The library's own clone at the version `go_mod` pins, also when the
    /// release vendors it (a vendored copy has no test files).
    pub fn clone_tree(
        &self,
        go_mod: &GoMod,
        module: &str,
    ) -> Result<Option<Tree<'_>>, ExtractError> {
        let Some(version) = go_mod.version(module) else {
            return Ok(None);
        };
        let Some((module, _, dir)) = MODULES.iter().find(|(m, _, _)| *m == module) else {
            return Ok(None);
        };
        let Some(repo) = self.repos.get(module) else {
            return Err(self.missing.get(module).map_or_else(
                || ExtractError::NoReleases {
                    repo: module.to_string(),
                },
                clone_error,
            ));
        };
        let rev = match Revision::of(dir, version) {
            Revision::Tag(t) if repo.has_commit(&t) => t,
            Revision::Pseudo { commit, .. } if repo.has_commit(&commit) => commit,
            Revision::Pseudo { time, .. } => match repo.commit_before(&time) {
                Some(c) => c,
                None => return Err(stale(repo, module, version)),
            },
            Revision::Tag(_) => return Err(stale(repo, module, version)),
        };
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        Ok(Some(Tree { repo, rev, prefix }))
    }

    /// The source of `module` as the release `tag` of `app` builds it;
    /// None when the release does not use the module.
    pub fn tree<'a>(
        &'a self,
        app: &'a Repo,
        tag: &str,
        go_mod: &GoMod,
        module: &str,
    ) -> Result<Option<Tree<'a>>, ExtractError> {
        if go_mod.version(module).is_none() {
            return Ok(None);
        }
        let vendored = format!("vendor/{module}");
        if app.exists(tag, &vendored) {
            return Ok(Some(Tree {
                repo: app,
                rev: tag.to_string(),
                prefix: format!("{vendored}/"),
            }));
        }
        self.clone_tree(go_mod, module)
    }
}

fn clone_error(e: &ExtractError) -> ExtractError {
    match e {
        ExtractError::MissingClone { repo, dir, name } => ExtractError::MissingClone {
            repo: repo.clone(),
            dir: dir.clone(),
            name: name.clone(),
        },
        other => ExtractError::NoReleases {
            repo: other.to_string(),
        },
    }
}

fn stale(repo: &Repo, module: &str, version: &str) -> ExtractError {
    ExtractError::Git {
        args: format!("rev-parse {version}"),
        dir: repo.dir().to_path_buf(),
        message: format!("the clone has no revision for {module} {version}: fetch it again"),
    }
}

/// What a controller asks of client_golang's collectors.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Collectors {
    /// The Go collector, with the names of the runtime-metrics rules it
    /// enables (`MetricsAll`); empty: the library's default.
    pub go: Option<Vec<String>>,
    pub process: bool,
}

impl Collectors {
    /// The collectors registered in `texts`.
    pub fn registered_in(texts: &[String]) -> Collectors {
        let mut out = Collectors::default();
        let call = pattern!(r"NewGoCollector\(");
        let rule = pattern!(r"\bMetrics(\w+)\b");
        for t in texts {
            for m in call.find_iter(t) {
                // `Unregister(collectors.NewGoCollector(…))` takes one away.
                let line = t[..m.start()].rsplit('\n').next().unwrap_or("");
                if line.contains("Unregister(") {
                    continue;
                }
                let args = gosrc::block(t, m.end() - 1).unwrap_or("");
                let rules = out.go.get_or_insert_with(Vec::new);
                for r in rule.captures_iter(args) {
                    let name = format!("Metrics{}", &r[1]);
                    if !rules.contains(&name) {
                        rules.push(name);
                    }
                }
            }
            out.process |= t.contains("NewProcessCollector(");
        }
        out
    }
}

/// controller-runtime's families, and the collectors it registers.
pub fn controller_runtime(
    cache: &mut Cache,
    tree: &Tree,
) -> Result<(Vec<Row>, Collectors), ExtractError> {
    let mut with_opts = tree.grep("Opts{", "pkg")?;
    with_opts.retain(|p| !p.contains("/internal/testing/") && !p.contains("/envtest/"));
    let mut symbol_paths = with_opts.clone();
    for dir in ["pkg/metrics", "pkg/internal/metrics"] {
        symbol_paths.extend(tree.grep("", dir)?);
    }
    symbol_paths.sort();
    symbol_paths.dedup();
    let collectors = Collectors::registered_in(&tree.texts(&tree.grep("Collector(", "pkg")?));
    let rows = cache.get(tree.key(), || {
        let mut symbols = gosrc::Symbols::default();
        for t in tree.texts(&symbol_paths) {
            symbols.add_file(&t);
        }
        Ok(tree
            .texts(&with_opts)
            .iter()
            .flat_map(|t| gosrc::metrics(t, &symbols))
            .collect())
    })?;
    Ok((rows, collectors))
}

/// A descriptor's name: string literals joined by `+`, where a leading
/// namespace variable is the empty default and `f("x")` is the literal
/// `f` prepends (`memstatNamespace("alloc_bytes")` is `go_memstats_alloc_bytes`).
fn desc_name(expr: &str, text: &str) -> Option<String> {
    let call = pattern!(r#"^(\w+)\("([^"]*)"\)$"#);
    let mut name = String::new();
    let parts: Vec<&str> = expr.split('+').map(str::trim).collect();
    for (i, part) in parts.iter().enumerate() {
        if let Some(lit) = part.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
            name.push_str(lit);
        } else if let Some(c) = call.captures(part) {
            let body = re(&format!(
                r#"func {}\(\w+ string\) string \{{\s*return "([^"]*)" \+ \w+"#,
                regex::escape(&c[1])
            ));
            name.push_str(&body.captures(text)?[1]);
            name.push_str(&c[2]);
        } else if i + 1 < parts.len()
            && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            // The namespace option, empty unless the caller sets one.
        } else {
            return None;
        }
    }
    let valid = pattern!(r"^[a-z_][a-z0-9_]*[a-z0-9]$");
    valid.is_match(&name).then_some(name)
}

/// The descriptors of client_golang's collector files, typed by how the
/// collector emits them.
fn collector_descs(text: &str) -> Vec<Row> {
    let call = pattern!(r"(?:(\w+)\s*:\s*)?NewDesc\(");
    let const_labels = pattern!(r#""(\w+)"\s*:"#);
    let value_type = pattern!(r"valType:\s*(\w+)Value");
    // Another collector built in the same file (`NewBuildInfoCollector`)
    // is registered only on request.
    let other = pattern!(r"^func (New\w+Collector)\(");
    let skipped: Vec<(usize, usize)> =
        starts_of(text, pattern!(r"(?m)^func (?:\([^)]*\)\s*)?(\w+)\("))
            .into_iter()
            .filter(|(s, e, _)| {
                other
                    .captures(&text[*s..*e])
                    .is_some_and(|c| &c[1] != "NewGoCollector" && &c[1] != "NewProcessCollector")
            })
            .map(|(s, e, _)| (s, e))
            .collect();
    let mut out = Vec::new();
    for c in call.captures_iter(text) {
        let Some(m) = c.get(0) else { continue };
        if skipped.iter().any(|(s, e)| (*s..*e).contains(&m.start())) {
            continue;
        }
        let Some(args) = gosrc::block(text, m.end() - 1) else {
            continue;
        };
        let first = gosrc::list_end(args);
        let Some(name) = desc_name(&args[..first], text) else {
            continue;
        };
        // help, variable labels, constant labels.
        let mut rest = &args[(first + 1).min(args.len())..];
        let mut fields = Vec::new();
        while !rest.trim().is_empty() {
            let end = gosrc::list_end(rest);
            fields.push(rest[..end].trim());
            rest = &rest[(end + 1).min(rest.len())..];
        }
        let mut labels = BTreeSet::new();
        if let Some(vars) = fields.get(1) {
            if let Some(open) = vars.find('{') {
                let body = gosrc::block(vars, open).unwrap_or("");
                labels.extend(
                    pattern!(r#""(\w+)""#)
                        .captures_iter(body)
                        .map(|l| l[1].to_string()),
                );
            }
        }
        if let Some(consts) = fields.get(2) {
            labels.extend(const_labels.captures_iter(consts).map(|l| l[1].to_string()));
        }
        let after = &text[m.end() + args.len()..];
        let after = &after[..after.len().min(400)];
        let field = c.get(1).map(|f| f.as_str()).filter(|f| *f != "desc");
        let emitted = |how: &str| {
            field.is_some_and(|f| {
                re(&format!(r"{how}\(\s*\w+\.{}\b", regex::escape(f))).is_match(text)
            })
        };
        let kind = if emitted("Summary") {
            "summary"
        } else if emitted("Histogram") {
            "histogram"
        } else if field.is_some_and(|f| {
            re(&format!(r"\w+\.{}\s*,\s*CounterValue", regex::escape(f))).is_match(text)
        }) || (field.is_none()
            && value_type
                .captures(after)
                .is_some_and(|v| &v[1] == "Counter"))
            || name.ends_with("_total")
        {
            "counter"
        } else {
            "gauge"
        };
        out.push(Row::labelled(name, kind, labels));
    }
    out
}

/// A runtime-metrics rule as a matcher on runtime metric names: the
/// alternatives of its pattern, each an exact name or a `prefix.*`.
fn rule_matches(pattern: &str, name: &str) -> bool {
    pattern.split('|').any(|alt| {
        let alt = alt.trim_start_matches('^').trim_end_matches('$');
        match alt.strip_suffix(".*") {
            Some(prefix) => name.starts_with(prefix),
            None => name == alt,
        }
    })
}

/// The Go and process collectors' families.
pub fn client_golang(
    cache: &mut Cache,
    tree: &Tree,
    tables: &Tree,
    collectors: &Collectors,
    go_minor: Option<u32>,
) -> Result<Vec<Row>, ExtractError> {
    let key = format!(
        "{}|{}|{collectors:?}|{go_minor:?}",
        tree.key(),
        tables.key()
    );
    cache.get(key, || {
        let mut rows = Vec::new();
        if collectors.process {
            if let Some(t) = tree.show("prometheus/process_collector.go") {
                rows.extend(collector_descs(&t));
            }
        }
        let Some(rules) = &collectors.go else {
            return Ok(rows);
        };
        for file in ["prometheus/go_collector.go", "prometheus/go_collector_latest.go"] {
            if let Some(t) = tree.show(file) {
                rows.extend(collector_descs(&t));
            }
        }
        // The runtime-metrics rules in force, as patterns.
        let mut patterns = Vec::new();
        let literal = |text: &str, name: &str| -> Option<String> {
            let r = re(&format!(
                r"\b{}\s*=\s*[\w.]*?(?:GoRuntimeMetricsRule\{{)?regexp\.MustCompile\(\s*[`\x22]([^`\x22]*)[`\x22]",
                regex::escape(name)
            ));
            r.captures(text).map(|c| c[1].to_string())
        };
        if rules.is_empty() {
            let options = tree
                .show("prometheus/internal/go_collector_options.go")
                .unwrap_or_default();
            patterns.extend(literal(&options, "GoCollectorDefaultRuntimeMetrics"));
        } else {
            let named = tree
                .show("prometheus/collectors/go_collector_latest.go")
                .unwrap_or_default();
            for rule in rules {
                patterns.extend(literal(&named, rule));
            }
        }
        if patterns.is_empty() {
            return Ok(rows);
        }
        // client_golang's table of runtime metric names per Go release.
        // Test files hold the table, so it is read from the clone.
        let by_go: BTreeMap<u32, String> = tables
            .repo
            .files(&tables.rev, &format!("{}prometheus", tables.prefix))?
            .into_iter()
            .filter_map(|p| p.strip_prefix(&tables.prefix).map(str::to_string))
            .filter_map(|p| {
                let n = p
                    .strip_prefix("prometheus/go_collector_metrics_go1")?
                    .strip_suffix("_test.go")?
                    .parse()
                    .ok()?;
                Some((n, p))
            })
            .collect();
        let table = match go_minor {
            Some(minor) => by_go
                .range(..=minor)
                .next_back()
                .or_else(|| by_go.iter().next()),
            None => by_go.iter().next_back(),
        };
        let Some(text) = table.and_then(|(_, p)| tables.show(p)) else {
            return Ok(rows);
        };
        let entry = pattern!(r#""(/[^"]+)"\s*:\s*"(\w+)""#);
        for c in entry.captures_iter(&text) {
            if patterns.iter().any(|p| rule_matches(p, &c[1])) {
                let name = c[2].to_string();
                let kind = if name.ends_with("_total") {
                    "counter"
                } else {
                    "untyped"
                };
                rows.push(Row::new(name, kind, &[]));
            }
        }
        Ok(rows)
    })
}

/// The gRPC provider's families for the servers and clients `app` builds
/// (`grpcprom.NewServerMetrics(…)`), with the namespace it sets.
pub fn grpc_prometheus(tree: &Tree, app: &[String]) -> Result<Vec<Row>, ExtractError> {
    let mut out = Vec::new();
    let call = pattern!(r"\bNew(Server|Client)Metrics\(");
    let namespace = pattern!(r"o\.Namespace\s*=\s*(\w+)");
    for text in app {
        for c in call.captures_iter(text) {
            let Some(m) = c.get(0) else { continue };
            // The function around the call: from its `func` to the next.
            let start = text[..m.start()].rfind("\nfunc ").unwrap_or(0);
            let end = text[m.end()..]
                .find("\nfunc ")
                .map_or(text.len(), |i| m.end() + i);
            let body = &text[start..end];
            let mut symbols = gosrc::Symbols::default();
            symbols.add_file(body);
            let prefix = namespace
                .captures(body)
                .and_then(|n| symbols.string(&n[1]))
                .map(|ns| format!("{ns}_"))
                .unwrap_or_default();
            let side = c[1].to_lowercase();
            for row in side_rows(tree, &side, body)? {
                out.push(Row {
                    name: format!("{prefix}{}", row.name),
                    ..row
                });
            }
        }
    }
    Ok(out)
}

/// One side's families: those always built, and those an option the
/// caller passes builds (`WithServerHandlingTimeHistogram`).
fn side_rows(tree: &Tree, side: &str, caller: &str) -> Result<Vec<Row>, ExtractError> {
    let files = tree.grep("Opts{", "")?;
    let texts: Vec<String> = tree
        .texts(&files)
        .into_iter()
        .filter(|t| {
            t.contains(&format!("func New{}Metrics", capitalized(side)))
                || t.contains(&format!("{side}MetricsConfig"))
        })
        .collect();
    let options = tree.texts(&tree.grep("func With", "")?);
    let func = pattern!(r"(?m)^func (?:\([^)]*\)\s*)?(\w+)\(");
    let guard = pattern!(r"if\s+(?:\w+\.)+(\w+)\s*\{");
    let mut out = Vec::new();
    for text in &texts {
        let mut symbols = gosrc::Symbols::default();
        symbols.add_file(text);
        symbols.add_list_aliases(text);
        let starts: Vec<(usize, String)> = func
            .captures_iter(text)
            .filter_map(|c| Some((c.get(0)?.start(), c[1].to_string())))
            .collect();
        for (i, (start, name)) in starts.iter().enumerate() {
            let end = starts.get(i + 1).map_or(text.len(), |(s, _)| *s);
            let body = &text[*start..end];
            let is_option = name.starts_with("With");
            if !is_option && name != &format!("New{}Metrics", capitalized(side)) {
                continue;
            }
            if is_option
                && !(name.contains(&capitalized(side)) && caller.contains(&format!("{name}(")))
            {
                continue;
            }
            // A block under `if config.flag {` counts when an option the
            // caller passes sets the flag.
            let mut plain = body.to_string();
            for g in guard.captures_iter(body) {
                let Some(m) = g.get(0) else { continue };
                let Some(inner) = gosrc::block(body, m.end() - 1) else {
                    continue;
                };
                plain = plain.replace(inner, "");
                let setter = options.iter().find_map(|o| {
                    let set = re(&format!(r"\.{}\s*=\s*true", regex::escape(&g[1])));
                    starts_of(o, func).into_iter().find_map(|(s, e, n)| {
                        (set.is_match(&o[s..e]) && n.contains(&capitalized(side))).then_some(n)
                    })
                });
                if setter.is_some_and(|n| caller.contains(&format!("{n}("))) {
                    out.extend(gosrc::metrics(inner, &symbols));
                }
            }
            out.extend(gosrc::metrics(&plain, &symbols));
        }
    }
    Ok(out)
}

/// (start, end, name) of every top-level function of `text`.
fn starts_of(text: &str, func: &Regex) -> Vec<(usize, usize, String)> {
    let starts: Vec<(usize, String)> = func
        .captures_iter(text)
        .filter_map(|c| Some((c.get(0)?.start(), c[1].to_string())))
        .collect();
    starts
        .iter()
        .enumerate()
        .map(|(i, (s, n))| {
            (
                *s,
                starts.get(i + 1).map_or(text.len(), |(e, _)| *e),
                n.clone(),
            )
        })
        .collect()
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// operatorpkg's `operator_*` families: the global ones, and per kind the
/// ones of each status or events controller `app` creates
/// (`status.NewController[*v1.NodePool](…)`,
/// `events.NewController[*corev1.Node](…)`, under any import name ending in
/// `events`); a kind gets the families of its controller's package only.
pub fn operatorpkg(
    cache: &mut Cache,
    tree: &Tree,
    app: &[String],
) -> Result<Vec<Row>, ExtractError> {
    let kind = pattern!(r"\b(status|\w*events)\.New(?:Generic\w*)?Controller\[\*\w+\.(\w+)\]\(");
    let mut kinds: Vec<(&'static str, String, bool)> = Vec::new();
    for text in app {
        for c in kind.captures_iter(text) {
            let package = if &c[1] == "status" {
                "status"
            } else {
                "events"
            };
            let Some(m) = c.get(0) else { continue };
            let args = gosrc::block(text, m.end() - 1).unwrap_or("");
            // Labels and fields the controller passes are read from each
            // object at run time.
            let open = ["WithLabels(", "WithGaugeLabels(", "Fields("]
                .iter()
                .any(|o| args.contains(o));
            kinds.push((package, c[2].to_lowercase(), open));
        }
    }
    kinds.sort();
    kinds.dedup();
    let key = format!("{}|{kinds:?}", tree.key());
    cache.get(key, || {
        let paths = tree.grep("Opts{", "")?;
        let texts = tree.texts(&paths);
        let mut symbols = gosrc::Symbols::default();
        for t in tree.texts(&tree.grep("", "metrics")?) {
            symbols.add_file(&t);
        }
        for t in &texts {
            symbols.add_file(t);
        }
        // What the status and events controllers instantiate per kind.
        let mut controllers = BTreeMap::new();
        for package in ["status", "events"] {
            controllers.insert(package, tree.texts(&tree.grep("", package)?));
        }
        let of_name = pattern!(r"^func (\w+)\(objectName string");
        let ternary = pattern!(
            r#"(\w+)\s*:=\s*lo\.Ternary\(\s*len\(objectName\)\s*==\s*0\s*,\s*([\w.]+)\s*,"#
        );
        let func = pattern!(r"(?m)^func (?:\([^)]*\)\s*)?(\w+)\(");
        let mut rows = Vec::new();
        for text in &texts {
            let mut rest = text.clone();
            for (start, end, name) in starts_of(text, func) {
                let body = &text[start..end];
                if !of_name.is_match(body) {
                    continue;
                }
                rest = rest.replace(body, "");
                // The caller's extra labels are added per call below.
                let body = &body
                    .replace("additionalLabels...", "")
                    .replace("additionalLabels", "[]string{}");
                let subsystem = ternary.captures(body);
                // With an empty object name, the subsystem is the
                // ternary's first branch, or empty.
                let named = |s: &mut gosrc::Symbols, object: &str| match &subsystem {
                    Some(v) => {
                        let base = s.string(&v[2]).unwrap_or_default();
                        let sub = if object.is_empty() {
                            base
                        } else {
                            format!("{object}_{base}")
                        };
                        s.consts.insert(v[1].to_string(), sub);
                    }
                    None => _ = s.consts.insert("objectName".into(), object.to_string()),
                };
                let calls = re(&format!(r"\b{}\(", regex::escape(&name)));
                for t in &texts {
                    for call in calls.find_iter(t) {
                        let Some(args) = gosrc::block(t, call.end() - 1) else {
                            continue;
                        };
                        if args[..gosrc::list_end(args)].trim() != "\"\"" {
                            continue;
                        }
                        let mut s = symbols.clone();
                        s.add_file(text);
                        named(&mut s, "");
                        let extra: Vec<String> = args
                            .split(',')
                            .skip(1)
                            .filter_map(|a| s.string(a))
                            .collect();
                        for mut row in gosrc::metrics(body, &s) {
                            row.labels.extend(extra.iter().cloned());
                            rows.push(row);
                        }
                    }
                }
                let per_kind = re(&format!(
                    r"\b{}\(\s*strings\.ToLower\(",
                    regex::escape(&name)
                ));
                for (package, kind, open) in &kinds {
                    let texts = controllers.get(package).map(Vec::as_slice).unwrap_or(&[]);
                    if !texts.iter().any(|t| per_kind.is_match(t)) {
                        continue;
                    }
                    let mut s = symbols.clone();
                    s.add_file(text);
                    named(&mut s, kind);
                    for mut row in gosrc::metrics(body, &s) {
                        if *open {
                            row.labels.insert("*".into());
                        }
                        rows.push(row);
                    }
                }
            }
            rows.extend(gosrc::metrics(&rest, &symbols));
        }
        Ok(rows)
    })
}

/// Every library family a controller release serves: controller-runtime's,
/// the collectors it registers, and, where the release uses them, the gRPC
/// provider's and operatorpkg's. `app` is the release's own source that
/// configures them (gRPC servers and clients, status controllers).
pub fn families(
    libs: &Libraries,
    cache: &mut Cache,
    release: (&Repo, &str),
    go_mod: &GoMod,
    app: &[String],
) -> Result<Vec<Row>, ExtractError> {
    let (repo, tag) = release;
    let mut rows = Vec::new();
    let mut collectors = Collectors::registered_in(app);
    if let Some(tree) = libs.tree(repo, tag, go_mod, CONTROLLER_RUNTIME)? {
        let (own, registered) = controller_runtime(cache, &tree)?;
        rows.extend(own);
        collectors.process |= registered.process;
        collectors.go = match (collectors.go, registered.go) {
            (Some(mut a), Some(b)) => {
                a.extend(b.into_iter().filter(|r| !a.contains(r)).collect::<Vec<_>>());
                Some(a)
            }
            (a, b) => a.or(b),
        };
    }
    if collectors != Collectors::default() {
        let tree = libs.tree(repo, tag, go_mod, CLIENT_GOLANG)?;
        let tables = libs.clone_tree(go_mod, CLIENT_GOLANG)?;
        if let (Some(tree), Some(tables)) = (tree, tables) {
            rows.extend(client_golang(
                cache,
                &tree,
                &tables,
                &collectors,
                go_mod.go_minor,
            )?);
        }
    }
    if app.iter().any(|t| t.contains("grpcprom.New")) {
        if let Some(tree) = libs.tree(repo, tag, go_mod, GRPC_PROMETHEUS)? {
            rows.extend(grpc_prometheus(&tree, app)?);
        }
    }
    if let Some(tree) = libs.tree(repo, tag, go_mod, OPERATORPKG)? {
        rows.extend(operatorpkg(cache, &tree, app)?);
    }
    if app.iter().any(|t| t.contains(AWS_SDK_PROMETHEUS)) {
        if let Some(tree) = libs.tree(repo, tag, go_mod, AWS_SDK_PROMETHEUS)? {
            rows.extend(registrations(cache, &tree)?);
        }
    }
    Ok(rows)
}

/// What in a program's source serves client_golang's default registry:
/// its handler (`promhttp.Handler()`, `prometheus.Handler()` before
/// promhttp) or the registry itself.
const DEFAULT_REGISTRY: &[&str] = &[
    "promhttp.Handler()",
    "prometheus.Handler()",
    "DefaultRegisterer.(*prometheus.Registry)",
];

/// Whether Go source serves client_golang's default registry (code that is
/// commented out does not).
pub fn serves_default_registry(text: &str) -> bool {
    let code = gosrc::strip_line_comments(text);
    DEFAULT_REGISTRY.iter().any(|f| code.contains(f))
}

/// What a Go program's libraries serve at a release, by its `go.mod`: the
/// Go and process collectors (`go_*`, `process_*`), and, where `main` names
/// the file that registers a version collector, `<program>_build_info`.
pub fn program_rows(
    libs: &Libraries,
    cache: &mut Cache,
    release: (&Repo, &str),
    main: Option<&str>,
) -> Result<Vec<Row>, ExtractError> {
    let (repo, tag) = release;
    let go_mod = GoMod::parse(&repo.show(tag, "go.mod").unwrap_or_default());
    let mut rows = runtime_collectors(libs, cache, release, &go_mod)?;
    if let Some(path) = main {
        let text = repo.show(tag, path).unwrap_or_default();
        rows.extend(build_info(libs, release, &go_mod, &text)?);
    }
    Ok(rows)
}

/// The Go and process collectors' families a release serves: those its
/// own source registers (`collectors.NewGoCollector(…)`), and, when it
/// serves client_golang's default registry, those that registry's `init`
/// registers.
pub fn runtime_collectors(
    libs: &Libraries,
    cache: &mut Cache,
    release: (&Repo, &str),
    go_mod: &GoMod,
) -> Result<Vec<Row>, ExtractError> {
    let (repo, tag) = release;
    let own =
        |p: &String| p.ends_with(".go") && !p.ends_with("_test.go") && !p.starts_with("vendor/");
    let mut texts = Vec::new();
    for fixed in ["NewGoCollector(", "NewProcessCollector("] {
        for p in repo
            .grep_files(tag, fixed, &["."])?
            .iter()
            .filter(|p| own(p))
        {
            texts.extend(repo.show(tag, p));
        }
    }
    let mut serving = false;
    for fixed in DEFAULT_REGISTRY {
        for p in repo
            .grep_files(tag, fixed, &["."])?
            .iter()
            .filter(|p| own(p))
        {
            serving |= repo
                .show(tag, p)
                .is_some_and(|t| serves_default_registry(&t));
        }
    }
    let tree = libs.tree(repo, tag, go_mod, CLIENT_GOLANG)?;
    let tables = libs.clone_tree(go_mod, CLIENT_GOLANG)?;
    let (Some(tree), Some(tables)) = (tree, tables) else {
        return Ok(Vec::new());
    };
    if serving {
        texts.extend(tree.show("prometheus/registry.go"));
    }
    let collectors = Collectors::registered_in(&texts);
    if collectors == Collectors::default() {
        return Ok(Vec::new());
    }
    client_golang(cache, &tree, &tables, &collectors, go_mod.go_minor)
}

/// `<program>_build_info`, the version collector a program registers in
/// `main` (`version.NewCollector("node_exporter")`): prometheus/common's
/// `version` package, or client_golang's `collectors/version` (imported
/// under any name), read at the version `go_mod` pins (or the release's
/// `vendor/` copy, before `go.mod`). Its labels are the keys of the
/// collector's `Labels{…}` maps; the program name is the literal passed or
/// the constant it names (`-` as `_`, as the callers replace it).
pub fn build_info(
    libs: &Libraries,
    release: (&Repo, &str),
    go_mod: &GoMod,
    main: &str,
) -> Result<Option<Row>, ExtractError> {
    let (repo, tag) = release;
    let call = pattern!(r"\b(\w+)\.NewCollector\(");
    let import = pattern!(
        r#"(?m)^\s*(\w+)?\s*"github\.com/prometheus/client_golang/prometheus/collectors/version""#
    );
    let Some(c) = call.captures_iter(main).find(|c| {
        c[1] == *"version"
            || import
                .captures(main)
                .is_some_and(|i| i.get(1).is_some_and(|a| a.as_str() == &c[1]))
    }) else {
        return Ok(None);
    };
    let Some(m) = c.get(0) else {
        return Ok(None);
    };
    let args = gosrc::block(main, m.end() - 1).unwrap_or("");
    let mut symbols = gosrc::Symbols::default();
    symbols.add_file(main);
    let ident = pattern!(r#""(\w+)"|([A-Za-z_]\w*)"#);
    let program = ident
        .captures_iter(args)
        .find_map(|t| match (t.get(1), t.get(2)) {
            (Some(lit), _) => Some(lit.as_str().to_string()),
            (_, Some(id)) => symbols.string(id.as_str()),
            _ => None,
        });
    let Some(program) = program.map(|p| p.replace('-', "_")) else {
        return Ok(None);
    };
    let from_client = import
        .captures(main)
        .is_some_and(|i| i.get(1).map_or("version", |a| a.as_str()) == &c[1]);
    let (module, file) = if from_client {
        (CLIENT_GOLANG, "prometheus/collectors/version/version.go")
    } else {
        (PROMETHEUS_COMMON, "version/info.go")
    };
    let text = match libs.tree(repo, tag, go_mod, module)? {
        Some(tree) => tree.show(file),
        None => repo.show(tag, &format!("vendor/{module}/{file}")),
    };
    let Some(text) = text else {
        return Ok(None);
    };
    let map = pattern!(r"Labels\s*\{");
    let key = pattern!(r#""(\w+)"\s*:"#);
    let mut row = Row::new(format!("{program}_build_info"), "gauge", &[]);
    // A gauge vector's label list (older releases), …
    let mut symbols = gosrc::Symbols::default();
    symbols.consts.insert("program".into(), program.clone());
    symbols.add_file(&text);
    for r in gosrc::metrics(&text, &symbols) {
        if r.name == row.name {
            row.labels.extend(r.labels.into_iter().filter(|l| l != "*"));
        }
    }
    // … or the keys of its constant label maps.
    for m in map.find_iter(&text) {
        if let Some(body) = gosrc::block(&text, m.end() - 1) {
            row.labels
                .extend(key.captures_iter(body).map(|k| k[1].to_string()));
        }
    }
    Ok(Some(row))
}

/// Every `…Opts{` registration of a library that defines its families as
/// package variables (aws-sdk-go-prometheus' `aws_sdk_go_request_*`, which
/// instrument the AWS SDK clients a controller wraps with it), read with
/// the constants and label lists of the whole library.
pub fn registrations(cache: &mut Cache, tree: &Tree) -> Result<Vec<Row>, ExtractError> {
    cache.get(tree.key(), || {
        let texts = tree.texts(&tree.grep("Opts{", "")?);
        let mut symbols = gosrc::Symbols::default();
        for t in &texts {
            symbols.add_file(t);
        }
        Ok(texts
            .iter()
            .flat_map(|t| gosrc::metrics(t, &symbols))
            .collect())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_registry_counts_when_served_and_adds_its_collectors() {
        let served = "\tr.Get(\"/metrics\", promhttp.Handler().ServeHTTP)\n";
        let shared = "\tReg: prometheus.DefaultRegisterer.(*prometheus.Registry),\n";
        let commented = "\t// http.Handle(\"/metrics\", promhttp.Handler())\n";
        let own = "\treg := prometheus.NewRegistry()\n\thttp.Handle(\"/metrics\", promhttp.HandlerFor(reg, opts))\n";
        assert!(serves_default_registry(served));
        assert!(serves_default_registry(shared));
        assert!(!serves_default_registry(commented));
        assert!(!serves_default_registry(own));
        // The registry's `init`, and an option that swaps its Go collector
        // for one with every runtime metric.
        let registry = "func init() {\n\tMustRegister(NewProcessCollector(ProcessCollectorOpts{}))\n\tMustRegister(NewGoCollector())\n}\n".to_string();
        let option = "\tprometheus.Unregister(collectors.NewGoCollector())\n\tprometheus.MustRegister(collectors.NewGoCollector(\n\t\tcollectors.WithGoCollectorRuntimeMetrics(collectors.MetricsAll),\n\t))\n".to_string();
        assert_eq!(
            Collectors::registered_in(&[option, registry]),
            Collectors {
                go: Some(vec!["MetricsAll".to_string()]),
                process: true,
            }
        );
    }

    #[test]
    fn go_mod_replace_wins_and_pseudo_versions_are_commits() {
        let m = GoMod::parse(
            "module x\n\ngo 1.22.0\n\ntoolchain go1.24.4\n\nrequire (\n\tk8s.io/client-go v1.5.2\n\tgithub.com/awslabs/operatorpkg v0.0.0-20240805231134-67d0acfb6306 // indirect\n)\n\nreplace k8s.io/client-go => k8s.io/client-go v0.28.9\nreplace github.com/a/b => github.com/fork/b v1.0.0\n",
        );
        assert_eq!(m.version("k8s.io/client-go"), Some("v0.28.9"));
        assert_eq!(m.go_minor, Some(24));
        assert_eq!(
            Revision::of("", m.version(OPERATORPKG).unwrap()),
            Revision::Pseudo {
                commit: "67d0acfb6306".into(),
                time: "2024-08-05T23:11:34Z".into()
            }
        );
        assert_eq!(
            Revision::of("providers/prometheus", "v1.1.0"),
            Revision::Tag("providers/prometheus/v1.1.0".into())
        );
        assert_eq!(
            Revision::of("", "v1.14.1-0.20260819221709-6e7eab7a0f48"),
            Revision::Pseudo {
                commit: "6e7eab7a0f48".into(),
                time: "2026-08-19T22:17:09Z".into()
            }
        );
    }

    #[test]
    fn runtime_rules_match_names_and_prefixes() {
        let default = "/gc/gogc:percent|/gc/gomemlimit:bytes|/sched/gomaxprocs:threads";
        assert!(rule_matches(default, "/sched/gomaxprocs:threads"));
        assert!(!rule_matches(default, "/sched/latencies:seconds"));
        assert!(rule_matches("/.*", "/sched/latencies:seconds"));
        assert!(rule_matches("^/gc/.*", "/gc/heap/goal:bytes"));
    }

    #[test]
    fn collector_descriptors_are_typed_by_how_they_are_emitted() {
        let src = r#"
func memstatNamespace(s string) string {
	return "go_memstats_" + s
}
func x() {
	c := &col{
		gcDesc: NewDesc("go_gc_duration_seconds", "h", nil, nil),
		infoDesc: NewDesc("go_info", "h", nil, Labels{"version": runtime.Version()}),
		cpuTotal: NewDesc(ns+"process_cpu_seconds_total", "h", nil, nil),
	}
	ms := []m{{
		desc: NewDesc(memstatNamespace("frees_total"), "h", nil, nil),
		valType: CounterValue,
	}}
}
func (c *col) Collect(ch chan<- Metric) {
	ch <- MustNewConstSummary(c.gcDesc, 1, 2, nil)
	ch <- MustNewConstMetric(c.cpuTotal, CounterValue, 1)
}
"#;
        let got: Vec<(String, &str, Vec<String>)> = collector_descs(src)
            .into_iter()
            .map(|r| (r.name, r.kind, r.labels.into_iter().collect()))
            .collect();
        assert_eq!(
            got,
            [
                ("go_gc_duration_seconds".into(), "summary", vec![]),
                ("go_info".into(), "gauge", vec!["version".into()]),
                ("process_cpu_seconds_total".into(), "counter", vec![]),
                ("go_memstats_frees_total".into(), "counter", vec![]),
            ]
        );
    }

    /// A throwaway git repository holding `files`, committed.
    fn repository(name: &str, files: &[(&str, &str)]) -> Repo {
        let dir = std::env::temp_dir().join(format!("poolc-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (path, text) in files {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().expect("file in a directory"))
                .expect("create directory");
            std::fs::write(path, text).expect("write file");
        }
        let git = |args: &[&str]| {
            let status = std::process::Command::new("git")
                .arg("-C")
                .arg(&dir)
                .args(["-c", "user.name=t", "-c", "user.email=t@t"])
                .args(args)
                .status()
                .expect("git runs");
            assert!(status.success(), "git {args:?}");
        };
        git(&["init", "-q"]);
        git(&["add", "."]);
        git(&["commit", "-q", "-m", "x"]);
        Repo::new(dir)
    }

    #[test]
    fn events_controllers_add_their_kind_families_only() {
        let repo = repository(
            "operatorpkg-events",
            &[
                (
                    "metrics/constants.go",
                    "package metrics\n\nconst (\n\tNamespace = \"operator\"\n\tLabelType = \"type\"\n\tLabelReason = \"reason\"\n)\n",
                ),
                (
                    "events/metrics.go",
                    "package events\n\nfunc eventCounter(objectName string) pmetrics.CounterMetric {\n\treturn pmetrics.NewPrometheusCounter(\n\t\tmetrics.Registry,\n\t\tprometheus.CounterOpts{\n\t\t\tNamespace: pmetrics.Namespace,\n\t\t\tSubsystem: objectName,\n\t\t\tName:      \"event_total\",\n\t\t},\n\t\t[]string{pmetrics.LabelType, pmetrics.LabelReason},\n\t)\n}\n",
                ),
                (
                    "events/controller.go",
                    "package events\n\nfunc NewController[T client.Object](c client.Client) *Controller[T] {\n\treturn &Controller[T]{Count: eventCounter(strings.ToLower(gvk.Kind))}\n}\n",
                ),
                (
                    "status/metrics.go",
                    "package status\n\nfunc conditionGauge(objectName string) pmetrics.GaugeMetric {\n\treturn pmetrics.NewPrometheusGauge(\n\t\tmetrics.Registry,\n\t\tprometheus.GaugeOpts{\n\t\t\tNamespace: pmetrics.Namespace,\n\t\t\tSubsystem: objectName,\n\t\t\tName:      \"condition_count\",\n\t\t},\n\t\t[]string{pmetrics.LabelType},\n\t)\n}\n",
                ),
                (
                    "status/controller.go",
                    "package status\n\nfunc NewController[T Object](c client.Client) *Controller[T] {\n\treturn &Controller[T]{Gauge: conditionGauge(strings.ToLower(gvk.Kind))}\n}\n",
                ),
            ],
        );
        let tree = Tree {
            repo: &repo,
            rev: "HEAD".into(),
            prefix: String::new(),
        };
        let app = vec![
            "ctrls := []c{\n\tstatus.NewController[*v1.Widget](kubeClient),\n\topevents.NewController[*corev1.Node](kubeClient, clk),\n}\n".to_string(),
        ];
        let rows = operatorpkg(&mut Cache::default(), &tree, &app).expect("reads the tree");
        let _ = std::fs::remove_dir_all(repo.dir());
        let mut got: Vec<(String, Vec<String>)> = rows
            .into_iter()
            .map(|r| (r.name, r.labels.into_iter().collect()))
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                (
                    "operator_node_event_total".to_string(),
                    vec!["reason".to_string(), "type".to_string()]
                ),
                (
                    "operator_widget_condition_count".to_string(),
                    vec!["type".to_string()]
                ),
            ]
        );
    }

    #[test]
    fn a_library_of_package_level_families_is_read_with_its_label_lists() {
        let repo = repository(
            "sdk-metrics",
            &[
                (
                    "common/metrics.go",
                    "package common\n\nvar (\n\tcallLabels = []string{\"service\", \"op\"}\n\tCalls = prometheus.NewCounterVec(prometheus.CounterOpts{\n\t\tName: \"sdk_calls_total\",\n\t}, callLabels)\n\tLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{\n\t\tName:    \"sdk_call_seconds\",\n\t\tBuckets: prometheus.ExponentialBuckets(0.01, 2, 8),\n\t}, callLabels)\n)\n",
                ),
                (
                    "common/metrics_test.go",
                    "package common\n\nvar x = prometheus.NewCounter(prometheus.CounterOpts{Name: \"sdk_test_only_total\"})\n",
                ),
            ],
        );
        let tree = Tree {
            repo: &repo,
            rev: "HEAD".into(),
            prefix: String::new(),
        };
        let rows = registrations(&mut Cache::default(), &tree).expect("reads the tree");
        let _ = std::fs::remove_dir_all(repo.dir());
        let mut got: Vec<(String, &str, Vec<String>)> = rows
            .into_iter()
            .map(|r| (r.name, r.kind, r.labels.into_iter().collect()))
            .collect();
        got.sort();
        let labels = vec!["op".to_string(), "service".to_string()];
        assert_eq!(
            got,
            [
                ("sdk_call_seconds".to_string(), "histogram", labels.clone()),
                ("sdk_calls_total".to_string(), "counter", labels),
            ]
        );
    }

    #[test]
    fn build_info_takes_the_program_name_and_the_version_collectors_labels() {
        let collector = "package version\n\nfunc NewCollector(program string) prometheus.Collector {\n\treturn prometheus.NewGaugeFunc(prometheus.GaugeOpts{\n\t\tNamespace: program,\n\t\tName: \"build_info\",\n\t\tConstLabels: prometheus.Labels{\n\t\t\t\"version\": Version,\n\t\t\t\"goos\": GoOS,\n\t\t},\n\t}, func() float64 { return 1 })\n}\n";
        let repo = repository(
            "build-info",
            &[
                (
                    "go.mod",
                    "module x\n\nrequire (\n\tgithub.com/prometheus/common v0.42.0\n\tgithub.com/prometheus/client_golang v1.20.0\n)\n",
                ),
                ("vendor/github.com/prometheus/common/version/info.go", collector),
                (
                    "vendor/github.com/prometheus/client_golang/prometheus/collectors/version/version.go",
                    &collector.replace("\"goos\": GoOS,", "\"goarch\": GoArch,"),
                ),
            ],
        );
        let libs = Libraries::new(repo.dir());
        let go_mod = GoMod::parse(&repo.show("HEAD", "go.mod").expect("go.mod"));
        let row = |main: &str| {
            build_info(&libs, (&repo, "HEAD"), &go_mod, main)
                .expect("reads the tree")
                .map(|r| (r.name, r.labels.into_iter().collect::<Vec<_>>()))
        };
        let common = row(
            "import \"github.com/prometheus/common/version\"\n\nconst appName = \"my-app\"\n\nfunc main() {\n\tprometheus.MustRegister(version.NewCollector(strings.ReplaceAll(appName, \"-\", \"_\")))\n}\n",
        );
        let client = row(
            "import (\n\tvc \"github.com/prometheus/client_golang/prometheus/collectors/version\"\n)\n\nfunc main() {\n\tr.MustRegister(vc.NewCollector(\"tool\"))\n}\n",
        );
        let none = row("func main() {}\n");
        // An older collector: a gauge vector with a label list.
        let old = repository(
            "build-info-vec",
            &[
                ("go.mod", "module x\n\nrequire github.com/prometheus/common v0.7.0\n"),
                (
                    "vendor/github.com/prometheus/common/version/info.go",
                    "package version\n\nfunc NewCollector(program string) *prometheus.GaugeVec {\n\tbuildInfo := prometheus.NewGaugeVec(\n\t\tprometheus.GaugeOpts{\n\t\t\tNamespace: program,\n\t\t\tName: \"build_info\",\n\t\t},\n\t\t[]string{\"version\", \"branch\"},\n\t)\n\treturn buildInfo\n}\n",
                ),
            ],
        );
        let old_mod = GoMod::parse(&old.show("HEAD", "go.mod").expect("go.mod"));
        let vec_row = build_info(
            &libs,
            (&old, "HEAD"),
            &old_mod,
            "func main() {\n\tprometheus.MustRegister(version.NewCollector(\"old\"))\n}\n",
        )
        .expect("reads the tree")
        .map(|r| (r.name, r.labels.into_iter().collect::<Vec<_>>()));
        let _ = std::fs::remove_dir_all(old.dir());
        assert_eq!(
            vec_row,
            Some((
                "old_build_info".to_string(),
                vec!["branch".to_string(), "version".to_string()]
            ))
        );
        let _ = std::fs::remove_dir_all(repo.dir());
        assert_eq!(
            common,
            Some((
                "my_app_build_info".to_string(),
                vec!["goos".to_string(), "version".to_string()]
            ))
        );
        assert_eq!(
            client,
            Some((
                "tool_build_info".to_string(),
                vec!["goarch".to_string(), "version".to_string()]
            ))
        );
        assert_eq!(none, None);
    }
}
