//! What charts read from the [`Aggregates`]: persona names, revenues, loyalty.

use super::style::{LegendItem, Mark, item, persona_color};
use crate::analytics::{Aggregates, Day, LOYALTY_BINS};

/// Display names of the personas (labels, else names).
pub fn persona_names(agg: &Aggregates) -> Vec<String> {
    let n = agg
        .labels
        .len()
        .max(agg.personas.len())
        .max(agg.days.first().map_or(0, |d| d.personas.len()));
    (0..n)
        .map(|i| {
            agg.labels
                .get(i)
                .filter(|l| !l.is_empty())
                .or_else(|| agg.personas.get(i).filter(|p| !p.is_empty()))
                .cloned()
                .unwrap_or_else(|| format!("Persona {}", i + 1))
        })
        .collect()
}

/// The display name of persona `p`, or a numbered stand-in.
pub fn persona_name(names: &[String], p: usize) -> String {
    names
        .get(p)
        .cloned()
        .unwrap_or_else(|| format!("Persona {}", p + 1))
}

/// One legend box per persona, in persona colours.
pub fn persona_items(names: &[String]) -> Vec<LegendItem> {
    names
        .iter()
        .enumerate()
        .map(|(p, name)| item(name.clone(), persona_color(p), Mark::Box))
        .collect()
}

/// Persona `p`'s revenue on `day` in major units (`per_major` minor units each).
pub fn persona_revenue(day: &Day, p: usize, per_major: f64) -> f64 {
    day.personas
        .get(p)
        .map_or(0.0, |c| c.revenue_paise as f64 / per_major)
}

/// The day's revenue in major units (`per_major` minor units each).
pub fn day_revenue(day: &Day, per_major: f64) -> f64 {
    day.personas
        .iter()
        .map(|c| c.revenue_paise as f64 / per_major)
        .sum()
}

/// The mean loyalty (0-1) of a loyalty histogram; None if it is empty.
pub fn mean_loyalty(h: &[u64; LOYALTY_BINS]) -> Option<f64> {
    let n: u64 = h.iter().sum();
    if n == 0 {
        return None;
    }
    let sum: f64 = h
        .iter()
        .enumerate()
        .map(|(b, &c)| c as f64 * (b as f64 + 0.5) / LOYALTY_BINS as f64)
        .sum();
    Some(sum / n as f64)
}

/// A scenario name for display: `dry_fruits` → `dry fruits`.
pub fn pretty(name: &str) -> String {
    name.replace('_', " ")
}
