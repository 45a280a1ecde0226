//! Published figures: a scenario names figures from the world (Worldline's +32% card
//! transactions on Diwali and Dhanteras days, Pine Labs' shraadh dip) and the run says how
//! close it came. Each is an uplift of a measure on an event's full-effect days over
//! ordinary days of the same weekday, computed from the aggregates at the end of the run
//! and shown in the report's "Against published figures" section.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use super::Day;
use crate::calendar::Calendar;

/// What a figure measures on a day.
#[derive(Debug, Clone, PartialEq)]
pub enum Measure {
    /// Transactions.
    Transactions,
    /// Revenue.
    Revenue,
    /// Revenue of some categories: the names as written, and the catalog ids they cover.
    Categories(Vec<String>, Vec<u16>),
}

impl Measure {
    /// The measure on a day.
    fn of(&self, day: &Day) -> f64 {
        match self {
            Self::Transactions => day.personas.iter().map(|c| c.transactions as f64).sum(),
            Self::Revenue => day.personas.iter().map(|c| c.revenue_paise as f64).sum(),
            Self::Categories(_, ids) => ids
                .iter()
                .map(|&c| {
                    day.category_revenue
                        .get(usize::from(c))
                        .copied()
                        .unwrap_or(0) as f64
                })
                .sum(),
        }
    }

    /// Words for the report.
    fn describe(&self) -> String {
        match self {
            Self::Transactions => "transactions".into(),
            Self::Revenue => "revenue".into(),
            Self::Categories(names, _) => format!("{} revenue", names.join(" and ")),
        }
    }
}

/// The published uplift (0.32 is +32%).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub enum Uplift {
    /// A point figure.
    Exactly(f64),
    /// A lower bound ("more than +50%").
    AtLeast(f64),
    /// A range ("4 to 5% down" is `Between(-0.05, -0.04)`).
    Between(f64, f64),
}

impl Uplift {
    /// The band a simulated uplift must fall in: the figure widened by `tolerance` of its
    /// size on each side (a lower bound stays open above).
    pub fn band(self, tolerance: f64) -> (f64, f64) {
        match self {
            Self::Exactly(u) => (u - tolerance * u.abs(), u + tolerance * u.abs()),
            Self::AtLeast(u) => (u - tolerance * u.abs(), f64::INFINITY),
            Self::Between(a, b) => {
                let (a, b) = (a.min(b), a.max(b));
                (a - tolerance * a.abs(), b + tolerance * b.abs())
            }
        }
    }

    /// The figure as published, in words.
    fn describe(self) -> String {
        let pct = |u: f64| format!("{:+.0}%", u * 100.0);
        match self {
            Self::Exactly(u) => pct(u),
            Self::AtLeast(u) => format!("over {}", pct(u)),
            Self::Between(a, b) => format!("{} to {}", pct(a.min(b)), pct(a.max(b))),
        }
    }
}

/// A published figure, validated against the scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// What the figure is, in words.
    pub name: String,
    /// Where it was published.
    pub source: String,
    /// Events whose full-effect days it covers.
    pub events: Vec<String>,
    /// What it measures.
    pub measure: Measure,
    /// The published uplift.
    pub uplift: Uplift,
    /// How far off still counts as met, as a share of the figure (0.1: within 10%).
    pub tolerance: f64,
}

/// How a run compares with one published figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The figure, in words.
    pub name: String,
    /// Its source.
    pub source: String,
    /// What is measured.
    pub measure: String,
    /// The figure as published.
    pub target: String,
    /// The band that counts as met, as uplifts (`null` above: no upper bound).
    pub band: (f64, Option<f64>),
    /// The simulated uplift; `null` when the run has none of the figure's days or no
    /// ordinary day to compare them with.
    pub simulated: Option<f64>,
    /// Whether the simulated uplift is in the band.
    pub met: bool,
    /// The figure's days in the run.
    pub days: Vec<String>,
    /// The ordinary days they were compared with.
    pub ordinary_days: usize,
}

/// An ordinary day: no event in force (ramps included) and no payday effect.
fn ordinary(calendar: &Calendar, categories: usize, date: NaiveDate) -> bool {
    let today = calendar.day(date, categories);
    today.events.is_empty() && !today.payday
}

/// Compares the run's days with each figure: the measure summed over the figure's days
/// (those on which one of its events is at full effect), against the sum over the same days
/// of the mean of ordinary days of each one's weekday (of all ordinary days when none shares
/// it). `categories` is the catalog's size.
pub fn evaluate(
    figures: &[Figure],
    calendar: &Calendar,
    categories: usize,
    days: &[Day],
) -> Vec<Outcome> {
    let dated: Vec<(NaiveDate, &Day)> = days
        .iter()
        .filter_map(|d| d.date.parse().ok().map(|date| (date, d)))
        .collect();
    let plain: Vec<(NaiveDate, &Day)> = dated
        .iter()
        .copied()
        .filter(|&(date, _)| ordinary(calendar, categories, date))
        .collect();
    figures
        .iter()
        .map(|f| {
            let on: Vec<(NaiveDate, &Day)> = dated
                .iter()
                .copied()
                .filter(|&(date, _)| {
                    calendar
                        .events
                        .iter()
                        .any(|e| f.events.contains(&e.name) && e.weight(date) >= 1.0)
                })
                .collect();
            let mean = |ds: &[&(NaiveDate, &Day)]| {
                (!ds.is_empty())
                    .then(|| ds.iter().map(|(_, d)| f.measure.of(d)).sum::<f64>() / ds.len() as f64)
            };
            let all: Vec<&(NaiveDate, &Day)> = plain.iter().collect();
            let mut simulated = None;
            if !on.is_empty() {
                let mut base = Some(0.0);
                for (date, _) in &on {
                    let same: Vec<&(NaiveDate, &Day)> = plain
                        .iter()
                        .filter(|(d, _)| d.weekday() == date.weekday())
                        .collect();
                    base = base
                        .zip(mean(&same).or_else(|| mean(&all)))
                        .map(|(a, b)| a + b);
                }
                let value: f64 = on.iter().map(|(_, d)| f.measure.of(d)).sum();
                simulated = base.filter(|&b| b > 0.0).map(|b| value / b - 1.0);
            }
            let (lo, hi) = f.uplift.band(f.tolerance);
            Outcome {
                name: f.name.clone(),
                source: f.source.clone(),
                measure: f.measure.describe(),
                target: f.uplift.describe(),
                band: (lo, hi.is_finite().then_some(hi)),
                simulated,
                met: simulated.is_some_and(|s| s >= lo && s <= hi),
                days: on.iter().map(|(d, _)| d.to_string()).collect(),
                ordinary_days: plain.len(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_widen_each_figure_by_its_tolerance() {
        let close = |(a, b): (f64, f64), (c, d): (f64, f64)| {
            assert!((a - c).abs() < 1e-12 && (b - d).abs() < 1e-12, "{a} {b}")
        };
        close(Uplift::Exactly(0.32).band(0.1), (0.288, 0.352));
        close(Uplift::Exactly(4.0).band(0.1), (3.6, 4.4));
        close(Uplift::Between(-0.04, -0.05).band(0.1), (-0.055, -0.036));
        assert_eq!(Uplift::AtLeast(0.5).band(0.1).1, f64::INFINITY);
        assert_eq!(Uplift::Between(-0.05, -0.04).describe(), "-5% to -4%");
        assert_eq!(Uplift::AtLeast(0.5).describe(), "over +50%");
    }
}
