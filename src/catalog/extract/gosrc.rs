//! Metric registrations in Go source that uses the Prometheus client:
//! `prometheus.GaugeOpts{Namespace: …, Subsystem: …, Name: …}` followed by the
//! label list (`[]string{…}`, a variable holding one, or a function that
//! builds one). Names and labels are string literals or constants; constants
//! are looked up among the files the caller hands in.
//!
//! Labels computed at run time are read from the function that computes them:
//! every string literal and known constant in its body, the functions it
//! calls in turn, and, where it ranges over Kubernetes well-known node
//! labels, the caller's list of those.

use std::collections::{BTreeSet, HashMap};

use regex::Regex;

use super::Row;

/// What the extractor knows about a package: constants, `[]string` variables
/// and functions that return `[]string`.
#[derive(Default, Clone)]
pub struct Symbols {
    pub consts: HashMap<String, String>,
    lists: HashMap<String, String>,
    funcs: HashMap<String, String>,
    /// `prometheus.Labels{…}` maps held in variables, by name: their bodies.
    maps: HashMap<String, String>,
    /// Constants of other packages, by qualified name (`discovery.Name`).
    qualified: HashMap<String, String>,
    /// Label names for code that ranges over well-known node labels.
    pub well_known: BTreeSet<String>,
    /// Whether the keys of an options' `ConstLabels` map count as labels
    /// (`ConstLabels: prometheus.Labels{"key": key}`).
    pub const_labels: bool,
    /// Whether label lists follow `append` (`b = append(a, "x")`, a label
    /// added on one code path: `a = append(a, "x")`) and aliases (`b = a`).
    pub follow_lists: bool,
}

/// The text between the bracket (`{` or `(`) at `open` and its match,
/// skipping brackets inside string literals.
pub fn block(text: &str, open: usize) -> Option<&str> {
    let bytes = text.as_bytes();
    let (left, right) = match bytes.get(open)? {
        b'(' => (b'(', b')'),
        b'[' => (b'[', b']'),
        _ => (b'{', b'}'),
    };
    let mut depth = 0usize;
    let mut in_str = false;
    for (i, &b) in bytes.iter().enumerate().skip(open) {
        match b {
            b'"' if i == 0 || bytes[i - 1] != b'\\' => in_str = !in_str,
            _ if in_str => {}
            _ if b == left => depth += 1,
            _ if b == right => {
                depth -= 1;
                if depth == 0 {
                    return text.get(open + 1..i);
                }
            }
            _ => {}
        }
    }
    None
}

impl Symbols {
    /// Reads the constants, list variables and list functions of one file.
    pub fn add_file(&mut self, text: &str) {
        let consts = pattern!(
            r#"(?m)^\s*(?:const\s+|var\s+)?([A-Za-z_]\w*)\s*(?:string\s*)?:?=\s*"([^"\n]*)"\s*$"#
        );
        for c in consts.captures_iter(text) {
            self.consts.insert(c[1].to_string(), c[2].to_string());
        }
        // `Key = pkg.Group + "/suffix"`: the literal tail is what label
        // names are made of; an unknown head is kept as `?`.
        let joined =
            pattern!(r#"(?m)^\s*([A-Za-z_]\w*)\s*=\s*([A-Za-z_][\w.]*)\s*\+\s*"([^"\n]*)"\s*$"#);
        for c in joined.captures_iter(text) {
            let head = self.string(&c[2]).unwrap_or_else(|| "?".to_string());
            self.consts
                .insert(c[1].to_string(), format!("{head}{}", &c[3]));
        }
        let lists = pattern!(r"(?m)([A-Za-z_]\w*)\s*(?::=|=)\s*\[\]string\s*\{");
        for c in lists.captures_iter(text) {
            let Some(m) = c.get(0) else { continue };
            if let Some(body) = block(text, m.end() - 1) {
                self.lists.insert(c[1].to_string(), body.to_string());
            }
        }
        // `b = append(a, "x", y)`: the list `a` names plus the appended
        // items; `a = append(a, "x")` (a label added on one code path)
        // widens `a` itself.
        let appends = pattern!(r"(?m)([A-Za-z_]\w*)\s*(?::=|=)\s*append\(");
        for c in appends.captures_iter(text).filter(|_| self.follow_lists) {
            let Some(m) = c.get(0) else { continue };
            let Some(args) = block(text, m.end() - 1) else {
                continue;
            };
            let Some((base, items)) = args.split_once(',') else {
                continue;
            };
            let base = base.trim().rsplit('.').next().unwrap_or("");
            let Some(head) = self.lists.get(base) else {
                continue;
            };
            let body = format!("{head}, {items}");
            self.lists.insert(c[1].to_string(), body);
        }
        // `b = a`: another name for a list.
        let alias = pattern!(r"(?m)^\s*([A-Za-z_]\w*)\s*=\s*([A-Za-z_]\w*)\s*$");
        for c in alias.captures_iter(text).filter(|_| self.follow_lists) {
            if let Some(body) = self.lists.get(&c[2]).cloned() {
                self.lists.insert(c[1].to_string(), body);
            }
        }
        let maps = pattern!(
            r"([A-Za-z_]\w*)\s*(?::=|=)\s*(?:prometheus\.Labels|map\[string\]string)\s*\{"
        );
        for c in maps.captures_iter(text) {
            let Some(m) = c.get(0) else { continue };
            if let Some(body) = block(text, m.end() - 1) {
                self.maps.insert(c[1].to_string(), body.to_string());
            }
        }
        let funcs = pattern!(r"(?m)^func\s+([A-Za-z_]\w*)\s*\(\s*\)\s*\[\]string\s*\{");
        for c in funcs.captures_iter(text) {
            let Some(m) = c.get(0) else { continue };
            if let Some(body) = block(text, m.end() - 1) {
                self.funcs.insert(c[1].to_string(), body.to_string());
            }
        }
    }

    /// Reads the constants of another package's file, to be looked up as
    /// `package.Name`.
    pub fn add_package_file(&mut self, package: &str, text: &str) {
        let mut own = Symbols::default();
        own.add_file(text);
        for (name, value) in own.consts {
            self.qualified.insert(format!("{package}.{name}"), value);
        }
    }

    /// Reads `x := append(y, more...)` as the list `y`: the labels the
    /// source names, where `more` is the caller's extension.
    pub fn add_list_aliases(&mut self, text: &str) {
        let alias = pattern!(r"([A-Za-z_]\w*)\s*:?=\s*append\(\s*([A-Za-z_]\w*)\s*,");
        for c in alias.captures_iter(text) {
            if let Some(body) = self.lists.get(&c[2]).cloned() {
                self.lists.insert(c[1].to_string(), body);
            }
        }
    }

    /// Forgets the list variables `text` declares with `:=` (function
    /// locals), so a local of one function does not stand in for a
    /// same-named local of another.
    pub fn drop_local_lists(&mut self, text: &str) {
        let local = pattern!(r"([A-Za-z_]\w*)\s*:=\s*\[\]string\s*\{");
        for c in local.captures_iter(text) {
            self.lists.remove(&c[1]);
        }
    }

    /// A string expression: a literal or a (possibly qualified) constant.
    pub fn string(&self, expr: &str) -> Option<String> {
        let expr = expr.trim().trim_end_matches(',').trim();
        if let Some(lit) = expr.strip_prefix('"').and_then(|e| e.strip_suffix('"')) {
            return Some(lit.to_string());
        }
        if let Some(v) = self.qualified.get(expr) {
            return Some(v.clone());
        }
        let ident = expr.rsplit('.').next()?;
        self.consts.get(ident).cloned()
    }

    /// The labels of a list expression; `*` when nothing can be read.
    fn labels(&self, expr: &str, depth: usize) -> BTreeSet<String> {
        let expr = expr.trim();
        let mut out = BTreeSet::new();
        if depth > 4 {
            out.insert("*".to_string());
            return out;
        }
        let append = expr.strip_prefix("append(").filter(|_| self.follow_lists);
        if let Some(args) = append.and_then(|_| block(expr, 6)) {
            let (base, items) = args.split_once(',').unwrap_or((args, ""));
            out.extend(self.labels(base, depth + 1));
            out.extend(self.items(items, depth));
            return out;
        }
        if let Some(start) = expr.find("[]string{") {
            if let Some(body) = block(expr, start + "[]string".len()) {
                out.extend(self.items(body, depth));
                return out;
            }
        }
        let ident = expr.trim_end_matches("()").rsplit('.').next().unwrap_or("");
        if let Some(body) = self.lists.get(ident) {
            return self.items(body, depth);
        }
        if let Some(body) = self.funcs.get(ident) {
            return self.items(body, depth);
        }
        out.insert("*".to_string());
        out
    }

    /// Every label a list literal or function body names.
    pub fn items(&self, body: &str, depth: usize) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let token = pattern!(r#""([^"\n]*)"|([A-Za-z_][\w.]*)(\(\))?"#);
        for c in token.captures_iter(body) {
            if let Some(lit) = c.get(1) {
                out.insert(lit.as_str().to_string());
            } else if let Some(ident) = c.get(2) {
                let ident = ident.as_str().rsplit('.').next().unwrap_or("");
                if ident.contains("WellKnownLabels") {
                    out.extend(self.well_known.iter().cloned());
                } else if c.get(3).is_some() && self.funcs.contains_key(ident) {
                    out.extend(self.labels(ident, depth + 1));
                } else if let Some(v) = self.consts.get(ident) {
                    out.insert(v.clone());
                } else if let Some(list) = self.lists.get(ident) {
                    out.extend(self.items(list, depth + 1));
                }
            }
        }
        out.retain(|l| !l.is_empty());
        out
    }
}

/// `text` without its `//` comments (code commented out is not
/// registered), string literals kept whole.
pub fn strip_line_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let bytes = line.as_bytes();
        let mut quote: Option<u8> = None;
        let mut end = line.len();
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            match quote {
                Some(q) if b == b'\\' && q == b'"' => i += 1,
                Some(q) if b == q => quote = None,
                Some(_) => {}
                None if b == b'"' || b == b'`' => quote = Some(b),
                None if b == b'/' && bytes.get(i + 1) == Some(&b'/') => {
                    end = i;
                    break;
                }
                None => {}
            }
            i += 1;
        }
        out.push_str(&line[..end]);
        out.push('\n');
    }
    out
}

/// Every `*Opts{…}` registration in `text` whose name resolves.
pub fn metrics(text: &str, symbols: &Symbols) -> Vec<Row> {
    let opts = pattern!(r"\b(Counter|Gauge|Histogram|Summary)Opts\s*\{");
    let fields: [(&str, &Regex); 3] = [
        (
            "Namespace",
            pattern!(r#"(?:^|[\s{,])Namespace\s*:\s*("[^"\n]*"|[A-Za-z_][\w.]*)"#),
        ),
        (
            "Subsystem",
            pattern!(r#"(?:^|[\s{,])Subsystem\s*:\s*("[^"\n]*"|[A-Za-z_][\w.]*)"#),
        ),
        (
            "Name",
            pattern!(r#"(?:^|[\s{,])Name\s*:\s*("[^"\n]*"|[A-Za-z_][\w.]*)"#),
        ),
    ];
    let field = |body: &str, key: &str| -> Option<String> {
        let (_, r) = fields.iter().find(|(k, _)| *k == key)?;
        r.captures(body).map(|c| c[1].to_string())
    };
    let mut out = Vec::new();
    for c in opts.captures_iter(text) {
        let Some(m) = c.get(0) else { continue };
        let open = m.end() - 1;
        let Some(body) = block(text, open) else {
            continue;
        };
        let part = |key: &str| -> Option<String> {
            match field(body, key) {
                None => Some(String::new()),
                Some(expr) => symbols.string(&expr),
            }
        };
        let (Some(ns), Some(sub), Some(name)) =
            (part("Namespace"), part("Subsystem"), part("Name"))
        else {
            continue;
        };
        if name.is_empty() {
            continue;
        }
        let full: Vec<&str> = [ns.as_str(), sub.as_str(), name.as_str()]
            .into_iter()
            .filter(|p| !p.is_empty())
            .collect();
        let kind = match &c[1] {
            "Counter" => "counter",
            "Gauge" => "gauge",
            "Histogram" => "histogram",
            _ => "summary",
        };
        // What follows the options: `)` (no labels), `func…` (a Func
        // metric, no labels), or the label list.
        let mut after = &text[open + body.len() + 2..];
        // `opts.apply(prometheus.CounterOpts{…}), labels`: the options
        // are the argument of a call that closes first.
        let before = text[..m.start()]
            .trim_end_matches(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        if before.trim_end().ends_with(".apply(") {
            after = after.trim_start().strip_prefix(')').unwrap_or(after);
        }
        loop {
            after = after.trim_start().trim_start_matches(',').trim_start();
            match after.strip_prefix("//") {
                Some(comment) => after = comment.split_once('\n').map_or("", |(_, rest)| rest),
                None => break,
            }
        }
        let mut labels = if after.starts_with(')') || after.starts_with("func") {
            BTreeSet::new()
        } else {
            let end = list_end(after);
            symbols.labels(&after[..end], 0)
        };
        if symbols.const_labels {
            labels.extend(const_labels(body, symbols));
        }
        out.push(Row::labelled(full.join("_"), kind, labels));
    }
    out
}

/// The keys of the `ConstLabels` map in an options body, written there or
/// held in a variable: literals or constants.
fn const_labels(body: &str, symbols: &Symbols) -> BTreeSet<String> {
    let map = pattern!(r"ConstLabels\s*:\s*(?:prometheus\.Labels|map\[string\]string)\s*\{");
    let named = pattern!(r"ConstLabels\s*:\s*([A-Za-z_]\w*)\s*(?:,|$|\n|\})");
    let key = pattern!(r#"(?:^|[{,\n])\s*("[^"\n]*"|[A-Za-z_][\w.]*)\s*:"#);
    let mut maps: Vec<&str> = map
        .find_iter(body)
        .filter_map(|m| block(body, m.end() - 1))
        .collect();
    for c in named.captures_iter(body) {
        maps.extend(symbols.maps.get(&c[1]).map(String::as_str));
    }
    let mut out = BTreeSet::new();
    for entries in maps {
        for c in key.captures_iter(entries) {
            out.extend(symbols.string(&c[1]));
        }
    }
    out
}

/// Where the argument starting `s` ends, as `list_end`, with commas and
/// brackets inside string literals skipped (a help text built with `+`).
fn arg_end(s: &str) -> usize {
    let bytes = s.as_bytes();
    let mut in_str = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_str => i += 1,
            b'"' => in_str = !in_str,
            _ if in_str => {}
            _ => {
                if list_end(&s[i..]) == 0 {
                    return i;
                }
                if let b'(' | b'{' | b'[' = bytes[i] {
                    let close = block(s, i).map_or(s.len(), |b| i + 1 + b.len());
                    i = close;
                }
            }
        }
        i += 1;
    }
    s.len()
}

/// Where the argument starting `s` ends: the first `,` or `)` outside
/// brackets.
pub fn list_end(s: &str) -> usize {
    let mut depth = 0i32;
    for (i, b) in s.bytes().enumerate() {
        match b {
            b'(' | b'{' | b'[' => depth += 1,
            b')' | b'}' | b']' => {
                if depth == 0 {
                    return i;
                }
                depth -= 1;
            }
            b',' if depth == 0 => return i,
            _ => {}
        }
    }
    s.len()
}

/// The body of the top-level `func name(…) … {`, when the text has one.
pub fn function_body<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let head = super::re(&format!(r"(?m)^func\s+{}\s*\(", regex::escape(name)));
    let start = head.find(text)?.end();
    let open = start + text[start..].find("{\n")?;
    block(text, open)
}

/// Every `prometheus.NewDesc(name, help, labels, …)` in `text`. The name is a
/// string, a constant or `BuildFQName(namespace, subsystem, name)`; when the
/// last part is computed at run time (one family per /proc/meminfo key),
/// the row is the name family `<namespace>_<subsystem>_*`, untyped. A
/// descriptor does not carry its type, so `_total` names are counters and
/// the others gauges.
pub fn descs(text: &str, symbols: &Symbols) -> Vec<Row> {
    let call = pattern!(r"\bNewDesc\(");
    let fq = pattern!(r"^\s*(?:prometheus\.)?BuildFQName\(");
    let mut out = Vec::new();
    for m in call.find_iter(text) {
        let Some(args) = block(text, m.end() - 1) else {
            continue;
        };
        let first_end = list_end(args);
        let first = &args[..first_end];
        let name = if fq.is_match(first) {
            let Some(open) = first.find('(') else {
                continue;
            };
            let Some(parts) = block(first, open) else {
                continue;
            };
            let parts: Vec<&str> = parts.split(',').collect();
            let [ns, sub, last] = parts[..] else { continue };
            let (Some(ns), Some(sub)) = (symbols.string(ns), symbols.string(sub)) else {
                continue;
            };
            // The last part is a literal, or data read at run time: a
            // same-named local elsewhere must not stand in for it.
            let last = last.trim();
            let last = last
                .strip_prefix('"')
                .and_then(|l| l.strip_suffix('"'))
                .filter(|l| !l.contains('"'))
                .map_or_else(|| "*".to_string(), str::to_string);
            [ns, sub, last]
                .into_iter()
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>()
                .join("_")
        } else {
            match symbols.string(first) {
                Some(n) => n,
                None => continue,
            }
        };
        if name.is_empty() || name == "*" {
            continue;
        }
        // help, then the variable labels.
        let rest = &args[(first_end + 1).min(args.len())..];
        let help_end = list_end(rest);
        let rest = rest[(help_end + 1).min(rest.len())..].trim_start();
        let labels_end = list_end(rest);
        let expr = rest[..labels_end].trim();
        let labels = if expr == "nil" || expr.is_empty() {
            BTreeSet::new()
        } else {
            symbols.labels(expr, 0)
        };
        let kind = if name.ends_with('*') {
            "untyped"
        } else if name.ends_with("_total") {
            "counter"
        } else {
            "gauge"
        };
        out.push(Row::labelled(name, kind, labels));
    }
    out
}

/// Names a helper builds at run time under a subsystem (`func
/// buildEthtoolFQName(m string) string { return
/// prometheus.BuildFQName(namespace, "ethtool", m) }`), whose result reaches
/// `NewDesc(name, …)` as a variable: one untyped name family
/// `<namespace>_<subsystem>_*`, with the labels of the file's descriptors
/// whose name is a variable no constant names.
pub fn helper_families(text: &str, symbols: &Symbols) -> Vec<Row> {
    let helper = pattern!(r"func\s+\w+\(\s*\w+\s+string\s*\)\s+string\s*\{");
    let built = pattern!(
        r#"return\s+(?:prometheus\.)?BuildFQName\(\s*(\w+)\s*,\s*"(\w+)"\s*,\s*[A-Za-z_]\w*\s*\)"#
    );
    let call = pattern!(r"\bNewDesc\(");
    let mut out = Vec::new();
    let bodies = helper
        .find_iter(text)
        .filter_map(|f| block(text, f.end() - 1));
    for c in bodies.filter_map(|body| built.captures(body)) {
        let Some(namespace) = symbols.string(&c[1]) else {
            continue;
        };
        let mut labels = BTreeSet::new();
        for m in call.find_iter(text) {
            let Some(args) = block(text, m.end() - 1) else {
                continue;
            };
            let first_end = list_end(args);
            let head = args[..first_end].trim();
            let variable = !head.is_empty()
                && head.chars().all(|ch| ch.is_alphanumeric() || ch == '_')
                && symbols.string(head).is_none();
            if !variable {
                continue;
            }
            let rest = &args[(first_end + 1).min(args.len())..];
            let rest = &rest[(arg_end(rest) + 1).min(rest.len())..];
            let expr = rest[..arg_end(rest)].trim();
            if expr != "nil" && !expr.is_empty() {
                labels.extend(symbols.labels(expr, 0));
            }
        }
        out.push(Row::labelled(
            format!("{namespace}_{}_*", &c[2]),
            "untyped",
            labels,
        ));
    }
    out
}

/// Names built at run time from a literal prefix
/// (`prefix := "node_hwmon_" + sensorType`, then `name := prefix + "_" + …`
/// handed to `NewDesc(name, …)`): one untyped name family `<prefix>*` per
/// prefix, with the labels of the descriptors that take a name derived
/// from it.
pub fn prefix_families(text: &str, symbols: &Symbols) -> Vec<Row> {
    let start = pattern!(r#"([A-Za-z_]\w*)\s*:?=\s*"([a-z][a-z0-9_]*_)"\s*\+"#);
    let assign = pattern!(r"([A-Za-z_]\w*)\s*:?=\s*([A-Za-z_]\w*)\b");
    let call = pattern!(r"\bNewDesc\(");
    let mut out = Vec::new();
    for c in start.captures_iter(text) {
        // The variables that hold a name derived from the prefix.
        let mut derived: BTreeSet<String> = BTreeSet::from([c[1].to_string()]);
        loop {
            let before = derived.len();
            for a in assign.captures_iter(text) {
                if derived.contains(&a[2]) {
                    derived.insert(a[1].to_string());
                }
            }
            if derived.len() == before {
                break;
            }
        }
        let mut labels = BTreeSet::new();
        let mut used = false;
        for m in call.find_iter(text) {
            let Some(args) = block(text, m.end() - 1) else {
                continue;
            };
            let first_end = list_end(args);
            let head = args[..first_end].trim();
            let head = head
                .split(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
                .next();
            if !head.is_some_and(|h| derived.contains(h)) {
                continue;
            }
            used = true;
            let rest = &args[(first_end + 1).min(args.len())..];
            let rest = &rest[(arg_end(rest) + 1).min(rest.len())..];
            let expr = rest[..arg_end(rest)].trim();
            if expr != "nil" && !expr.is_empty() {
                labels.extend(symbols.labels(expr, 0));
            }
        }
        if used {
            out.push(Row::labelled(format!("{}*", &c[2]), "untyped", labels));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_a_helper_builds_under_a_subsystem_are_a_family() {
        let src = r#"
const namespace = "demo"
func (c *nicCollector) describe(key, fqName string) *prometheus.Desc {
	return prometheus.NewDesc(fqName, "Counter "+key, []string{"port"}, nil)
}
func (c *nicCollector) fixed() *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, "nic", "info"), "Info.", []string{"model", "port"}, nil)
}
// The full name of a counter the driver reports.
func nicName(stat string) string {
	name := strings.ToLower(stat)
	return prometheus.BuildFQName(namespace, "nic", name)
}
func label(stat string) string {
	return prometheus.BuildFQName(namespace, "nic", "fixed")
}
"#;
        let mut s = Symbols::default();
        s.add_file(src);
        let got: Vec<(String, Vec<String>)> = helper_families(src, &s)
            .into_iter()
            .map(|r| (r.name, r.labels.into_iter().collect()))
            .collect();
        assert_eq!(got, [("demo_nic_*".to_string(), vec!["port".to_string()])]);
    }

    #[test]
    fn names_built_from_a_literal_prefix_are_a_family() {
        let src = r#"
var sensorLabels = []string{"board", "probe"}
func (c *boardCollector) update(ch chan<- prometheus.Metric, kind string) {
	base := "demo_board_" + kind
	for part, value := range readings {
		name := base
		if part != "" {
			name = name + "_" + part
		}
		desc := prometheus.NewDesc(name+"_level", "Level, as a ratio ("+part+").", sensorLabels, nil)
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, value, labels...)
	}
	unused := "demo_other_" + kind
	fixed := prometheus.NewDesc("demo_board_info", "Info.", []string{"model"}, nil)
}
"#;
        let mut s = Symbols::default();
        s.add_file(src);
        let got: Vec<(String, &str, Vec<String>)> = prefix_families(src, &s)
            .into_iter()
            .map(|r| (r.name, r.kind, r.labels.into_iter().collect()))
            .collect();
        assert_eq!(
            got,
            [(
                "demo_board_*".to_string(),
                "untyped",
                vec!["board".to_string(), "probe".to_string()]
            )]
        );
    }

    #[test]
    fn appended_aliased_and_const_labels_count() {
        let src = r#"
var (
	jobLabels = []string{"repository", "job_name"}
	completedLabels = append(jobLabels, "job_result")
	startedLabels   = jobLabels
)
func newMetrics(r prometheus.Registerer) {
	labels := []string{"integration"}
	if ff.EnableReceiverNames() {
		labels = append(labels, "receiver_name")
	}
	a := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "a_total"}, completedLabels)
	b := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "b_total"}, startedLabels)
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "c_total"}, append(labels, "reason"))
	d := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "d",
		ConstLabels: prometheus.Labels{"state": string(st)},
	}, func() float64 { return 1 })
	// e := prometheus.NewGauge(prometheus.GaugeOpts{Name: "e"})
}
"#;
        let src = strip_line_comments(src);
        let mut s = Symbols {
            const_labels: true,
            follow_lists: true,
            ..Default::default()
        };
        s.add_file(&src);
        let got: Vec<(String, Vec<String>)> = metrics(&src, &s)
            .into_iter()
            .map(|r| (r.name, r.labels.into_iter().collect()))
            .collect();
        let want: Vec<(String, Vec<String>)> = [
            ("a_total", &["job_name", "job_result", "repository"][..]),
            ("b_total", &["job_name", "repository"][..]),
            ("c_total", &["integration", "reason", "receiver_name"][..]),
            ("d", &["state"][..]),
        ]
        .into_iter()
        .map(|(n, l)| (n.to_string(), l.iter().map(|l| l.to_string()).collect()))
        .collect();
        assert_eq!(got, want);
        assert_eq!(
            strip_line_comments("x := \"http://a\" // note\n"),
            "x := \"http://a\" \n"
        );
    }

    #[test]
    fn reads_options_wrapped_in_an_apply_call_and_appended_lists() {
        let src = r#"
func NewServerMetrics(opts ...Option) *ServerMetrics {
	defaultLabels := []string{"grpc_type", "grpc_method"}
	startedLabels := append(defaultLabels, config.contextLabels...)
	return &ServerMetrics{
		started: prometheus.NewCounterVec(
			config.counterOpts.apply(prometheus.CounterOpts{
				Name: "grpc_server_started_total",
			}), startedLabels),
		plain: prometheus.NewCounter(prometheus.CounterOpts{Name: "plain_total"}),
	}
}
"#;
        let mut s = Symbols::default();
        s.add_file(src);
        s.add_list_aliases(src);
        let got: Vec<(String, Vec<String>)> = metrics(src, &s)
            .into_iter()
            .map(|r| (r.name, r.labels.into_iter().collect()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "grpc_server_started_total".into(),
                    vec!["grpc_method".into(), "grpc_type".into()]
                ),
                ("plain_total".into(), vec![]),
            ]
        );
    }

    #[test]
    fn reads_opts_constants_and_label_lists() {
        let src = r#"
const (
	Namespace = "demo"
	poolLabel = "pool"
)
var (
	common = []string{"a", poolLabel}
	x = prometheus.NewGaugeVec(
		prometheus.GaugeOpts{
			Namespace: Namespace,
			Subsystem: "queue",
			Name:      "depth",
			Help:      "Depth, {braces} in help.",
		},
		common,
	)
	y = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "runs_total"})
)
func dynamic() []string {
	return append(lo.Keys(WellKnownLabels), "node_name")
}
var z = opmetrics.NewPrometheusGauge(r, prometheus.GaugeOpts{
	Name: "nodes",
}, dynamic())
"#;
        let mut s = Symbols::default();
        s.well_known.insert("zone".into());
        s.add_file(src);
        let rows = metrics(src, &s);
        let got: Vec<(String, &str, Vec<String>)> = rows
            .into_iter()
            .map(|r| (r.name, r.kind, r.labels.into_iter().collect()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "demo_queue_depth".into(),
                    "gauge",
                    vec!["a".into(), "pool".into()]
                ),
                ("demo_runs_total".into(), "counter", vec![]),
                (
                    "nodes".into(),
                    "gauge",
                    vec!["node_name".into(), "zone".into()]
                ),
            ]
        );
    }
}
