//! A rule file read straight from the YAML parser's events. The typed
//! reader ([`serde_saphyr`]) costs about three times the parse itself, and
//! rule files are mostly one shape: `groups:` (at the top, or in a
//! PrometheusRule's `spec`), each a mapping with a `name` and `rules`, each
//! rule a mapping of scalars. That shape is read here.
//!
//! Anything else returns `None` and the typed reader reads the text, so
//! what it gives (or the error it reports) is the file's: a second
//! document, a key of another object (`items`, `data`, a KEDA or
//! monitor `spec`), an anchor, alias, tag or merge key, a key given twice,
//! a value of the wrong kind, a parse error, or more nodes, events or depth
//! than the budget allows. Where this reader gives a document, it is the
//! typed reader's, field for field (the tests compare them).

use std::borrow::Cow;

use granit_parser::{Event, Parser, ScalarStyle, Span};

use super::inputs::{GroupRaw, Meta, Placed, RuleRaw, TextMap};

/// What a rule file's one document holds: its groups, or a PrometheusRule's
/// kind, metadata and `spec` groups.
pub(super) struct RuleDoc {
    pub(super) kind: Option<String>,
    pub(super) metadata: Option<Meta>,
    pub(super) groups: Option<Vec<GroupRaw>>,
    /// The `spec`, when there is one: its groups.
    pub(super) spec: Option<Option<Vec<GroupRaw>>>,
}

/// The document of `text`, when it is one rule file of the common shape
/// and within the typed reader's budget: `max_nodes` nodes, twice as many
/// events, and `max_depth` levels.
pub(super) fn document(text: &str, max_nodes: usize, max_depth: usize) -> Option<RuleDoc> {
    let mut events = Events {
        parser: Parser::new_from_str(text),
        events_left: 2 * max_nodes,
        nodes_left: max_nodes,
        depth: 0,
        max_depth,
    };
    events.expect(|e| matches!(e, Event::StreamStart))?;
    events.expect(|e| matches!(e, Event::DocumentStart(_, None)))?;
    events.open_mapping()?;
    let mut doc = RuleDoc {
        kind: None,
        metadata: None,
        groups: None,
        spec: None,
    };
    events.entries(|events, key| {
        match key {
            "groups" => doc.groups = events.group_list()?,
            "kind" => doc.kind = events.text()?,
            "metadata" => doc.metadata = events.meta()?,
            "spec" => doc.spec = events.spec()?,
            "items" | "data" => return None,
            _ => events.skip()?,
        }
        Some(())
    })?;
    events.expect(|e| matches!(e, Event::DocumentEnd))?;
    events.expect(|e| matches!(e, Event::StreamEnd))?;
    Some(doc)
}

struct Events<'a> {
    parser: Parser<'a, granit_parser::StrInput<'a>>,
    events_left: usize,
    nodes_left: usize,
    depth: usize,
    max_depth: usize,
}

/// A scalar as the typed reader sees it: `null` when plain and null-like.
enum Scalar<'a> {
    Null,
    Text(Cow<'a, str>, Span),
}

impl<'a> Events<'a> {
    /// The next event; `None` on a parse error, an anchor, an alias, a tag
    /// or a breached budget.
    fn next(&mut self) -> Option<(Event<'a>, Span)> {
        self.events_left = self.events_left.checked_sub(1)?;
        let (event, span) = self.parser.next_event()?.ok()?;
        if matches!(
            event,
            Event::Scalar(..) | Event::SequenceStart(..) | Event::MappingStart(..)
        ) {
            self.nodes_left = self.nodes_left.checked_sub(1)?;
        }
        match &event {
            Event::Scalar(_, _, anchor, tag)
            | Event::SequenceStart(_, anchor, tag)
            | Event::MappingStart(_, anchor, tag)
                if *anchor != 0 || tag.is_some() =>
            {
                return None
            }
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                self.depth += 1;
                if self.depth > self.max_depth {
                    return None;
                }
            }
            Event::SequenceEnd | Event::MappingEnd => self.depth = self.depth.saturating_sub(1),
            Event::Alias(_) | Event::UnresolvedAlias(_) | Event::Anchor(..) => return None,
            _ => {}
        }
        Some((event, span))
    }

    fn expect(&mut self, wanted: impl Fn(&Event) -> bool) -> Option<()> {
        let (event, _) = self.next()?;
        wanted(&event).then_some(())
    }

    fn open_mapping(&mut self) -> Option<()> {
        self.expect(|e| matches!(e, Event::MappingStart(..)))
    }

    /// Opens the mapping that comes next: `Some(true)`, or `Some(false)`
    /// for a `null` in its place.
    fn mapping_or_null(&mut self) -> Option<bool> {
        match self.next()? {
            (Event::Scalar(value, style, ..), _) if nullish(&value, style) => Some(false),
            (Event::MappingStart(..), _) => Some(true),
            _ => None,
        }
    }

    /// Opens the sequence that comes next: `Some(true)`, or `Some(false)`
    /// for a `null` in its place.
    fn sequence_or_null(&mut self) -> Option<bool> {
        match self.next()? {
            (Event::Scalar(value, style, ..), _) if nullish(&value, style) => Some(false),
            (Event::SequenceStart(..), _) => Some(true),
            _ => None,
        }
    }

    /// Reads the items of a sequence whose `SequenceStart` is read, each a
    /// mapping read by `item` once its `MappingStart` is read.
    fn mappings(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        loop {
            match self.next()? {
                (Event::SequenceEnd, _) => return Some(()),
                (Event::MappingStart(..), _) => item(self)?,
                _ => return None,
            }
        }
    }

    /// A list of groups; `null` as none.
    fn group_list(&mut self) -> Option<Option<Vec<GroupRaw>>> {
        if !self.sequence_or_null()? {
            return Some(None);
        }
        let mut groups = Vec::new();
        self.mappings(|events| {
            groups.push(events.group()?);
            Some(())
        })?;
        Some(Some(groups))
    }

    /// An object's `metadata`; `null` as none.
    fn meta(&mut self) -> Option<Option<Meta>> {
        if !self.mapping_or_null()? {
            return Some(None);
        }
        let mut meta = Meta {
            name: String::new(),
            namespace: None,
            labels: TextMap::default(),
        };
        self.entries(|events, key| {
            match key {
                "name" => meta.name = events.text()?.unwrap_or_default(),
                "namespace" => meta.namespace = events.text()?,
                "labels" => meta.labels = events.text_map()?,
                _ => events.skip()?,
            }
            Some(())
        })?;
        Some(Some(meta))
    }

    /// A PrometheusRule's `spec`: its groups. A key another object's spec
    /// holds (KEDA triggers, monitor endpoints, a dashboard) reads nothing.
    fn spec(&mut self) -> Option<Option<Option<Vec<GroupRaw>>>> {
        if !self.mapping_or_null()? {
            return Some(None);
        }
        let mut groups = None;
        self.entries(|events, key| {
            match key {
                "groups" => groups = events.group_list()?,
                "triggers" | "fallback" | "endpoints" | "podMetricsEndpoints" | "json" => {
                    return None
                }
                _ => events.skip()?,
            }
            Some(())
        })?;
        Some(Some(groups))
    }

    /// Reads the entries of a mapping whose `MappingStart` is read, each
    /// value by `entry` given its key; a key given twice reads nothing.
    fn entries(&mut self, mut entry: impl FnMut(&mut Self, &str) -> Option<()>) -> Option<()> {
        let mut seen = Vec::new();
        while let Some(key) = self.next_key(&mut seen)? {
            entry(self, &key)?;
        }
        Some(())
    }

    /// The next key of a mapping whose keys so far are `seen`, or `None`
    /// at its end (`Some(None)`); a key given twice reads nothing.
    fn next_key(&mut self, seen: &mut Vec<Cow<'a, str>>) -> Option<Option<Cow<'a, str>>> {
        let key = match self.next()? {
            (Event::MappingEnd, _) => return Some(None),
            (Event::Scalar(key, style, ..), _) if !nullish(&key, style) && key != "<<" => key,
            _ => return None,
        };
        if seen.contains(&key) {
            return None;
        }
        seen.push(key.clone());
        Some(Some(key))
    }

    fn scalar(&mut self) -> Option<Scalar<'a>> {
        match self.next()? {
            (Event::Scalar(value, style, ..), _) if nullish(&value, style) => Some(Scalar::Null),
            (Event::Scalar(value, _, _, _), span) => Some(Scalar::Text(value, span)),
            _ => None,
        }
    }

    /// A scalar as text, `null` as nothing.
    fn text(&mut self) -> Option<Option<String>> {
        Some(match self.scalar()? {
            Scalar::Null => None,
            Scalar::Text(value, _) => Some(value.into_owned()),
        })
    }

    /// A scalar with its position, `null` as nothing.
    fn placed(&mut self) -> Option<Option<Placed>> {
        Some(match self.scalar()? {
            Scalar::Null => None,
            Scalar::Text(value, span) => Some(Placed {
                value: value.into_owned(),
                line: span.start.line(),
                column: span.start.col() + 1,
            }),
        })
    }

    /// Skips one value, whatever its shape. The typed reader still types
    /// the plain scalars of a value it ignores, and rejects a non-finite
    /// float (`.inf`, `1e999`): any scalar that may be one is left to it.
    fn skip(&mut self) -> Option<()> {
        let mut open = 0usize;
        loop {
            match self.next()?.0 {
                Event::SequenceStart(..) | Event::MappingStart(..) => open += 1,
                Event::SequenceEnd | Event::MappingEnd => open = open.checked_sub(1)?,
                Event::Scalar(value, ScalarStyle::Plain, ..) if may_be_non_finite(&value) => {
                    return None
                }
                Event::Scalar(..) => {}
                _ => return None,
            }
            if open == 0 {
                return Some(());
            }
        }
    }

    /// A group, its `MappingStart` read.
    fn group(&mut self) -> Option<GroupRaw> {
        let mut group = GroupRaw {
            name: String::new(),
            rules: Vec::new(),
        };
        self.entries(|events, key| {
            match key {
                "name" => group.name = events.text()?.unwrap_or_default(),
                "rules" => {
                    if events.sequence_or_null()? {
                        events.mappings(|events| {
                            group.rules.push(events.rule()?);
                            Some(())
                        })?;
                    }
                }
                _ => events.skip()?,
            }
            Some(())
        })?;
        Some(group)
    }

    /// A rule, its `MappingStart` read.
    fn rule(&mut self) -> Option<RuleRaw> {
        let mut rule = RuleRaw {
            alert: None,
            record: None,
            expr: None,
            for_: None,
            labels: TextMap::default(),
            annotations: TextMap::default(),
        };
        self.entries(|events, key| {
            match key {
                "alert" => rule.alert = events.placed()?,
                "record" => rule.record = events.placed()?,
                "expr" => rule.expr = events.placed()?,
                "for" => rule.for_ = events.text()?,
                "labels" => rule.labels = events.text_map()?,
                "annotations" => rule.annotations = events.text_map()?,
                _ => events.skip()?,
            }
            Some(())
        })?;
        Some(rule)
    }

    /// A map of scalars as text; `null` as empty, a `null` value as "".
    fn text_map(&mut self) -> Option<TextMap> {
        if !self.mapping_or_null()? {
            return Some(TextMap::default());
        }
        let mut pairs = Vec::new();
        self.entries(|events, key| {
            pairs.push((key.to_string(), events.text()?.unwrap_or_default()));
            Some(())
        })?;
        Some(pairs.into_iter().collect())
    }
}

/// Whether the typed reader takes this scalar for `null`.
fn nullish(value: &str, style: ScalarStyle) -> bool {
    style == ScalarStyle::Plain && matches!(value, "" | "~" | "null" | "Null" | "NULL")
}

/// Whether a plain scalar may be a float the typed reader finds infinite
/// or not a number: `.inf` and `.nan` in any case and sign, or a number
/// with an exponent, which may overflow.
fn may_be_non_finite(value: &str) -> bool {
    let unsigned = value
        .trim()
        .trim_start_matches(['+', '-'])
        .to_ascii_lowercase();
    unsigned.starts_with(".inf")
        || unsigned.starts_with(".nan")
        || (unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.')
            && unsigned.contains('e'))
}
