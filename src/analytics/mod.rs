//! Analytics: aggregates collected while the run streams (so they cost the same at 10M
//! customers as at 10k), the insights computed from them, and data-quality checks on the
//! written outputs.
//!
//! The aggregates are the fields of [`Aggregates`], serialised as `aggregates.json`. The
//! systems of [`collect`] fill them: `collect_hour` from every hour's records,
//! `collect_day` from every closed day, `sample_loyalty` from the customers at the end of a
//! day. Adding a metric is a field of [`Aggregates`] and the lines that fill it there.

pub mod collect;
pub mod insights;
pub mod published;
pub mod quality;
pub mod rollup;

use serde::{Deserialize, Serialize};

use crate::money::Currency;

/// Basket-value histogram bin edges, rupees: log-spaced from Rs 10 to Rs 10 lakh.
pub const BASKET_BINS: usize = 50;
/// Lowest basket-histogram edge, rupees.
pub const BASKET_MIN_RS: f64 = 10.0;
/// Highest basket-histogram edge, rupees.
pub const BASKET_MAX_RS: f64 = 1_000_000.0;
/// Loyalty histogram bins over 0..1.
pub const LOYALTY_BINS: usize = 10;

/// The lower edge of basket bin `i`, rupees (bin `BASKET_BINS` is the top edge).
pub fn basket_bin_edge(i: usize) -> f64 {
    BASKET_MIN_RS * (BASKET_MAX_RS / BASKET_MIN_RS).powf(i as f64 / BASKET_BINS as f64)
}

/// The basket bin of a value in paise (values outside the range go to the end bins): the
/// number of inner edges at or below it. No logarithm and no binary search: it runs for
/// every transaction on the thread between hours, where a search of the 49 edges was half
/// of the analytics' time. The value's power of two gives the edges below that power
/// (a table), and the few edges within the octave (bins are a tenth of a decade, three to an
/// octave) are stepped over.
#[inline]
pub fn basket_bin(paise: i64) -> usize {
    /// Inner edges (bins 1 to `BASKET_BINS - 1`), as the smallest whole paise in each bin,
    /// and for each power of two `2^k`, the number of edges at or below it.
    struct Edges {
        edges: [i64; BASKET_BINS - 1],
        below_power: [u8; 64],
    }
    static EDGES: std::sync::LazyLock<Edges> = std::sync::LazyLock::new(|| {
        let edges = std::array::from_fn(|i| (basket_bin_edge(i + 1) * 100.0).ceil() as i64);
        let below_power = std::array::from_fn(|k| {
            let power = 1i64
                .checked_shl(k as u32)
                .filter(|&p| p > 0)
                .unwrap_or(i64::MAX);
            edges.partition_point(|&edge| edge <= power) as u8
        });
        Edges { edges, below_power }
    });
    if paise <= 0 {
        return 0;
    }
    let e = &*EDGES;
    let mut bin = usize::from(e.below_power[63 - paise.leading_zeros() as usize]);
    while bin < e.edges.len() && e.edges[bin] <= paise {
        bin += 1;
    }
    bin
}

/// Sums for one cell of an aggregate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    /// Revenue, paise.
    pub revenue_paise: i64,
    /// Transactions (baskets).
    pub transactions: u64,
    /// Units.
    pub units: u64,
}

impl Cell {
    /// Adds another cell.
    pub fn add(&mut self, o: &Cell) {
        // Saturating: `Tally::check_money` stops a run whose sums outgrow the outputs,
        // at the end of the day; until then no sum may wrap (or panic, with overflow checks).
        self.revenue_paise = self.revenue_paise.saturating_add(o.revenue_paise);
        self.transactions += o.transactions;
        self.units += o.units;
    }
}

/// One simulated day.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Day {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Monday = 0.
    pub weekday: u8,
    /// A festival's full-effect day.
    pub festival: bool,
    /// Saturday or Sunday.
    pub weekend: bool,
    /// Events in force (`+`-joined).
    pub events: String,
    /// By persona.
    pub personas: Vec<Cell>,
    /// Revenue by category, paise.
    pub category_revenue: Vec<i64>,
    /// Customers who left, by persona.
    pub churned: Vec<u64>,
    /// Active customers at the end of the day, by persona.
    pub active: Vec<u64>,
    /// Loyalty histogram of active customers at the end of the day, by persona.
    pub loyalty: Vec<[u64; LOYALTY_BINS]>,
    /// The day's values of the columns plugins added to `daily_metrics`
    /// ([`Aggregates::columns`]), by column and persona: counts, paise or reals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra: Vec<Vec<f64>>,
}

impl Day {
    /// The day's value of plugin column `column` ([`Aggregates::column`]) for persona `p`
    /// (0 where there is none).
    pub fn value(&self, column: usize, p: usize) -> f64 {
        self.extra
            .get(column)
            .and_then(|c| c.get(p))
            .copied()
            .unwrap_or(0.0)
    }
}

/// Budget use of one persona over the run.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct BudgetUse {
    /// Spent by customers with a budget, paise.
    pub spent_paise: i64,
    /// What their budgets held over the run: what they held at the start (or on joining)
    /// and what paydays added, so what was spent plus what is left at the end, paise.
    #[serde(alias = "budget_paise")]
    pub available_paise: i64,
    /// Baskets trimmed to fit.
    pub trimmed: u64,
    /// Whether the persona has budgets at all.
    pub limited: bool,
}

/// Everything collected during a run; written as `aggregates.json`, read back by
/// `bazaar report`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Aggregates {
    /// Scenario name.
    pub scenario: String,
    /// Persona names.
    pub personas: Vec<String>,
    /// Persona labels.
    pub labels: Vec<String>,
    /// Customers at the start, by persona.
    pub customers: Vec<u64>,
    /// Category names.
    pub categories: Vec<String>,
    /// Category groups (empty when none).
    pub groups: Vec<String>,
    /// Day by day.
    pub days: Vec<Day>,
    /// Transactions and revenue by weekday (Monday first) and hour.
    pub hour_weekday: Vec<Vec<Cell>>,
    /// Revenue and units by persona and category.
    pub category_persona: Vec<Vec<Cell>>,
    /// Basket values by persona: counts in log-spaced bins (see [`basket_bin_edge`]).
    pub basket_histogram: Vec<Vec<u64>>,
    /// Budget use by persona.
    pub budget: Vec<BudgetUse>,
    /// Names of the columns plugins added to `daily_metrics`, in order (their values are
    /// each day's [`Day::extra`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    /// Names of the plugins' charts the report draws after its own
    /// ([`crate::plugin::Plugin::charts`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub charts: Vec<String>,
    /// The currency of every amount (`..._paise` fields hold its minor units); left out for
    /// Indian rupees, the default.
    #[serde(default, skip_serializing_if = "Currency::is_default")]
    pub currency: Currency,
    /// The first day (index into `days`) of the steady state insights compare: 0 on a warm
    /// start; on a cold start, once nine customers in ten would have bought again.
    #[serde(default)]
    pub settled_from: usize,
    /// How the run compares with the scenario's published figures.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub published: Vec<published::Outcome>,
}

impl Aggregates {
    /// Adds another rank's aggregates of the same run, collected over its own customers
    /// ([`crate::cluster`]): every count and sum of money, day by day. What is already the
    /// whole run's on every rank (a day's churned and active customers, its date and
    /// events) is kept.
    pub fn add_shard(&mut self, o: &Aggregates) {
        fn cells(a: &mut [Cell], b: &[Cell]) {
            for (x, y) in a.iter_mut().zip(b) {
                x.add(y);
            }
        }
        fn counts(a: &mut [u64], b: &[u64]) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        for (d, od) in self.days.iter_mut().zip(&o.days) {
            cells(&mut d.personas, &od.personas);
            for (x, y) in d.category_revenue.iter_mut().zip(&od.category_revenue) {
                *x = x.saturating_add(*y);
            }
            for (x, y) in d.loyalty.iter_mut().zip(&od.loyalty) {
                counts(x, y);
            }
        }
        for (a, b) in self.hour_weekday.iter_mut().zip(&o.hour_weekday) {
            cells(a, b);
        }
        for (a, b) in self.category_persona.iter_mut().zip(&o.category_persona) {
            cells(a, b);
        }
        for (a, b) in self.basket_histogram.iter_mut().zip(&o.basket_histogram) {
            counts(a, b);
        }
        for (a, b) in self.budget.iter_mut().zip(&o.budget) {
            a.spent_paise = a.spent_paise.saturating_add(b.spent_paise);
            a.available_paise = a.available_paise.saturating_add(b.available_paise);
            a.trimmed += b.trimmed;
            a.limited |= b.limited;
        }
    }

    /// The index of plugin column `name` in each day's [`Day::extra`].
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basket_bins_follow_their_edges() {
        assert_eq!(basket_bin(i64::MIN), 0);
        assert_eq!(basket_bin(0), 0);
        assert_eq!(basket_bin(i64::MAX), BASKET_BINS - 1);
        for i in 1..BASKET_BINS {
            let edge = (basket_bin_edge(i) * 100.0).ceil() as i64;
            assert_eq!(basket_bin(edge), i, "at the edge of bin {i}");
            assert_eq!(basket_bin(edge - 1), i - 1, "just under bin {i}");
        }
        // The same as searching the edges, around every power of two.
        let edges: Vec<i64> = (1..BASKET_BINS)
            .map(|i| (basket_bin_edge(i) * 100.0).ceil() as i64)
            .collect();
        for k in 0..63 {
            for paise in [(1i64 << k) - 1, 1 << k, (1 << k) + 1] {
                assert_eq!(
                    basket_bin(paise),
                    edges.partition_point(|&e| e <= paise),
                    "{paise}"
                );
            }
        }
        // Every value lies between its bin's edges.
        for paise in (1_000..100_000_000).step_by(9_973) {
            let b = basket_bin(paise);
            let rs = paise as f64 / 100.0;
            assert!(b == 0 || basket_bin_edge(b) <= rs, "{paise} in {b}");
            assert!(
                b == BASKET_BINS - 1 || rs < basket_bin_edge(b + 1),
                "{paise} in {b}"
            );
        }
    }
}
