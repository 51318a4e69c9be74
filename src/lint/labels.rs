//! Label flow: which labels an expression's result series are guaranteed to
//! carry, and which they may carry. Modelled on pint's
//! Impossible/Possible/Guaranteed analysis: aggregations keep only their
//! `by` labels, `on`/`ignoring` narrow a join, `group_left` brings labels
//! across, `label_replace` adds one, `absent` and `vector` start from nothing.

use std::collections::BTreeSet;

use promql_parser::label::MatchOp;
use promql_parser::parser::{token, Expr, LabelModifier, VectorMatchCardinality};

use super::Context;
use crate::promql;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels {
    pub guaranteed: BTreeSet<String>,
    pub possible: BTreeSet<String>,
    /// A source we know nothing about: any label may be present.
    pub open: bool,
}

impl Labels {
    pub fn may_have(&self, label: &str) -> bool {
        self.open || self.possible.contains(label)
    }

    /// Only `keep` survives. Over a source we know nothing about, the kept
    /// labels are taken as present: the author named them.
    fn keep(&self, keep: &BTreeSet<String>) -> Labels {
        Labels {
            guaranteed: if self.open {
                keep.clone()
            } else {
                self.guaranteed.intersection(keep).cloned().collect()
            },
            possible: if self.open {
                keep.clone()
            } else {
                self.possible.intersection(keep).cloned().collect()
            },
            open: false,
        }
    }

    fn drop(&self, drop: &BTreeSet<String>) -> Labels {
        Labels {
            guaranteed: self.guaranteed.difference(drop).cloned().collect(),
            possible: self.possible.difference(drop).cloned().collect(),
            open: self.open,
        }
    }

    fn add(&mut self, label: &str) {
        self.guaranteed.insert(label.to_string());
        self.possible.insert(label.to_string());
    }

    fn union_possible(&self, other: &Labels) -> Labels {
        Labels {
            guaranteed: self
                .guaranteed
                .intersection(&other.guaranteed)
                .cloned()
                .collect(),
            possible: self.possible.union(&other.possible).cloned().collect(),
            open: self.open || other.open,
        }
    }
}

/// The labels of `expr`'s result.
pub fn labels(ctx: &Context, expr: &Expr) -> Labels {
    match expr {
        Expr::VectorSelector(vs) => selector_labels(ctx, vs),
        Expr::MatrixSelector(ms) => selector_labels(ctx, &ms.vs),
        Expr::Paren(p) => labels(ctx, &p.expr),
        Expr::Unary(u) => labels(ctx, &u.expr),
        Expr::Subquery(s) => labels(ctx, &s.expr),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => Labels::default(),
        Expr::Aggregate(a) => {
            let inner = labels(ctx, &a.expr);
            let op = a.op.to_string();
            // topk and its kin return their input series whole: `by`
            // only groups the ranking.
            let selecting = ["topk", "bottomk", "limitk", "limit_ratio"].contains(&op.as_str());
            let mut out = match &a.modifier {
                _ if selecting => inner,
                Some(LabelModifier::Include(l)) => inner.keep(&l.labels.iter().cloned().collect()),
                Some(LabelModifier::Exclude(l)) => inner.drop(&l.labels.iter().cloned().collect()),
                None => Labels::default(),
            };
            if op == "count_values" {
                if let Some(Expr::StringLiteral(s)) = a.param.as_deref() {
                    out.add(&s.val);
                }
            }
            out
        }
        Expr::Call(c) => {
            let args = &c.args.args;
            let first = || args.first().map(|a| labels(ctx, a)).unwrap_or_default();
            match c.func.name {
                "label_replace" | "label_join" => {
                    let mut out = first();
                    if let Some(Expr::StringLiteral(dst)) = args.get(1).map(|a| &**a) {
                        out.add(&dst.val);
                    }
                    out
                }
                "absent" | "absent_over_time" => {
                    // absent() returns the equality matchers of its selector as labels.
                    let mut out = Labels::default();
                    if let Some(arg) = args.first() {
                        for vs in promql::selectors(arg) {
                            for m in promql::label_matchers(vs) {
                                if matches!(m.op, MatchOp::Equal) {
                                    out.add(&m.name);
                                }
                            }
                        }
                    }
                    out
                }
                "vector" | "scalar" | "time" | "pi" => Labels::default(),
                "histogram_quantile" => args
                    .get(1)
                    .map(|a| labels(ctx, a).drop(&["le".to_string()].into()))
                    .unwrap_or_default(),
                _ => args
                    .iter()
                    .map(|a| labels(ctx, a))
                    .find(|l| l.open || !l.possible.is_empty())
                    .unwrap_or_default(),
            }
        }
        Expr::Binary(b) => {
            let lhs = labels(ctx, &b.lhs);
            let rhs = labels(ctx, &b.rhs);
            let lhs_scalar = is_scalar(&b.lhs);
            let rhs_scalar = is_scalar(&b.rhs);
            if lhs_scalar && !rhs_scalar {
                return rhs;
            }
            if rhs_scalar {
                return lhs;
            }
            match b.op.id() {
                token::T_LOR => lhs.union_possible(&rhs),
                token::T_LAND | token::T_LUNLESS => lhs,
                _ => {
                    let modifier = b.modifier.as_ref();
                    let card = modifier.map(|m| &m.card);
                    let comparison_filter = b.op.is_comparison_operator() && !b.return_bool();
                    let (side, other, extra) = match card {
                        Some(VectorMatchCardinality::ManyToOne(l)) => (lhs, rhs, Some(l)),
                        Some(VectorMatchCardinality::OneToMany(l)) => (rhs, lhs, Some(l)),
                        _ => (lhs, rhs, None),
                    };
                    let mut out = side;
                    if extra.is_none() && !comparison_filter {
                        match modifier.and_then(|m| m.matching.as_ref()) {
                            Some(LabelModifier::Include(on)) => {
                                out = out.keep(&on.labels.iter().cloned().collect())
                            }
                            Some(LabelModifier::Exclude(ign)) => {
                                out = out.drop(&ign.labels.iter().cloned().collect())
                            }
                            None => {}
                        }
                    }
                    if let Some(extra) = extra {
                        for l in &extra.labels {
                            if other.guaranteed.contains(l) {
                                out.add(l);
                            } else if other.may_have(l) {
                                out.possible.insert(l.clone());
                            }
                        }
                    }
                    out
                }
            }
        }
    }
}

pub fn is_scalar(e: &Expr) -> bool {
    match e {
        Expr::NumberLiteral(_) => true,
        Expr::Paren(p) => is_scalar(&p.expr),
        Expr::Unary(u) => is_scalar(&u.expr),
        Expr::Call(c) => matches!(c.func.name, "scalar" | "time" | "pi"),
        Expr::Binary(b) => is_scalar(&b.lhs) && is_scalar(&b.rhs),
        _ => false,
    }
}

fn selector_labels(ctx: &Context, vs: &promql_parser::parser::VectorSelector) -> Labels {
    let mut out = match promql::metric_name(vs).and_then(|n| ctx.catalog.get(n)) {
        Some(entry) => Labels {
            guaranteed: entry.guaranteed.clone(),
            possible: entry.stored.clone(),
            open: entry.open || !entry.prefixes.is_empty(),
        },
        None => Labels {
            open: true,
            ..Default::default()
        },
    };
    // The external labels are on every series where the catalog's queries
    // and rules are evaluated, as its matchers on them assume.
    for l in &ctx.external_labels {
        out.add(l);
    }
    for m in promql::label_matchers(vs) {
        if matches!(m.op, MatchOp::Equal) && !m.value.is_empty() {
            out.add(&m.name);
        }
    }
    out
}
