//! Drift monitoring: how far the customers a model scores today have moved from the data it
//! was trained on, feature by feature and in its scores.
//!
//! A model card keeps its training reference as quantiles of each feature and of the scores
//! (`models/reference.py`). Against that reference, each scoring day's values give three
//! figures per feature, computed as Evidently computes them (so the numbers can be checked
//! against it, `tests/suite/drift.rs`):
//!
//! - PSI, Σ (r − c) ln(r / c) over bins: Sturges' equal-width bins over the reference and
//!   today's values together, or one bin per value for a feature with at most 20 distinct
//!   values (Evidently counts the reference data's; quantiles understate them, so today's
//!   count too: [`is_categorical`]); an empty bin takes a small share instead of zero;
//! - the Kolmogorov-Smirnov statistic, the largest gap between the two empirical CDFs
//!   (exact, as `scipy.stats.ks_2samp` gives it);
//! - the Jensen-Shannon distance (natural logarithm) of the same bins, without the stand-in
//!   for empty ones.
//!
//! They are written here rather than taken from a crate because what makes them comparable
//! is Evidently's binning, which no crate reproduces; the KS statistic is counted against
//! the reference's few hundred quantiles without sorting a million of today's values.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The file a run writes its drift figures to.
pub const DRIFT_FILE: &str = "drift.json";

/// One scoring's drift: every feature's figures (and the scores', as `score`), whether each
/// crossed a threshold, and whether the scoring counts as drifted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scoring {
    /// The scoring day.
    pub date: chrono::NaiveDate,
    /// The model: `churn` or `spend`.
    pub model: String,
    /// Customers scored.
    pub rows: u64,
    /// Each feature's name, figures and whether they crossed a threshold.
    pub figures: Vec<(String, Drift, bool)>,
    /// The scores drifted, or the threshold's share of features did.
    pub drifted: bool,
}

/// A run's `drift.json`: the thresholds and every scoring's figures.
#[derive(Debug, Clone, Deserialize)]
pub struct DriftFile {
    /// The thresholds the run judged by.
    pub thresholds: Thresholds,
    /// Every scoring, in order.
    pub scorings: Vec<Scoring>,
}

impl DriftFile {
    /// The `drift.json` of the output folder `dir`, or `None` when the run measured no drift.
    pub fn read(dir: &std::path::Path) -> Result<Option<Self>, String> {
        let path = dir.join(DRIFT_FILE);
        let Ok(bytes) = std::fs::read(&path) else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// A feature whose reference and today together have at most this many distinct values is
/// binned by value ([`is_categorical`]).
pub const MAX_CATEGORIES: usize = 20;

/// A model's training reference, from its card.
#[derive(Debug, Clone, Deserialize)]
pub struct Reference {
    /// Quantiles kept per feature.
    pub points: usize,
    /// Rows they summarise.
    pub rows: u64,
    /// How the data was made.
    #[serde(default)]
    pub made_with: String,
    /// Each feature's quantiles, ascending.
    pub features: BTreeMap<String, Vec<f64>>,
    /// The scores' quantiles, ascending.
    pub score: Vec<f64>,
}

impl Reference {
    /// Checks the reference covers `features` with ascending, finite quantiles.
    pub fn check(&self, features: &[String]) -> Result<(), String> {
        let ascending = |q: &[f64]| {
            !q.is_empty() && q.iter().all(|v| v.is_finite()) && q.windows(2).all(|w| w[0] <= w[1])
        };
        for f in features {
            let q = self
                .features
                .get(f)
                .ok_or_else(|| format!("its reference has no quantiles of feature `{f}`"))?;
            if !ascending(q) {
                return Err(format!(
                    "the reference quantiles of `{f}` are empty, not finite or not ascending"
                ));
            }
        }
        if !ascending(&self.score) {
            return Err(
                "the reference quantiles of the score are empty, not finite or not ascending"
                    .into(),
            );
        }
        Ok(())
    }
}

/// One distribution's drift from its reference.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    /// Population stability index.
    pub psi: f64,
    /// Kolmogorov-Smirnov statistic.
    pub ks: f64,
    /// Jensen-Shannon distance.
    pub js: f64,
}

/// The figures beyond which a distribution counts as drifted, and the share of a model's
/// features that must drift for the model to.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// PSI at or above this (Evidently's default 0.1).
    pub psi: f64,
    /// KS statistic at or above this. Evidently judges KS by its p-value below 0.05,
    /// which at a million rows flags any difference at all; Bazaar judges the statistic.
    pub ks: f64,
    /// Jensen-Shannon distance at or above this (Evidently's default 0.1).
    pub js: f64,
    /// Share of features drifted for the model's inputs to count as drifted (Evidently's
    /// dataset drift share, 0.5).
    pub share: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            psi: 0.1,
            ks: 0.1,
            js: 0.1,
            share: 0.5,
        }
    }
}

impl Thresholds {
    /// Whether `d` crosses any threshold.
    pub fn drifted(&self, d: &Drift) -> bool {
        d.psi >= self.psi || d.ks >= self.ks || d.js >= self.js
    }
}

/// The drift of `current` from the ascending `reference`. Values that are not finite (a
/// regressor's overflow) are left out, as Evidently leaves out missing values.
pub fn drift(reference: &[f64], current: &[f64]) -> Drift {
    let finite: Vec<f64>;
    let current = if current.iter().all(|x| x.is_finite()) {
        current
    } else {
        finite = current.iter().copied().filter(|x| x.is_finite()).collect();
        &finite
    };
    if reference.is_empty() || current.is_empty() {
        return Drift {
            psi: 0.0,
            ks: 0.0,
            js: 0.0,
        };
    }
    let (r, c) = binned(reference, current);
    Drift {
        psi: psi(&r, &c),
        ks: ks(reference, current),
        js: jensen_shannon(&r, &c),
    }
}

/// Whether a feature is binned by value: Evidently's test, at most [`MAX_CATEGORIES`]
/// distinct values, made on what the reference summarises rather than on its quantiles. A
/// continuous feature with a point mass (most customers' budget share at 1) has few distinct
/// quantiles but many values; binned by value, every value today would be a bin the
/// reference never saw, and an unchanged world would read as drifted. So the values seen on
/// both sides must number at most [`MAX_CATEGORIES`] too.
pub fn is_categorical(reference: &[f64], current: &[f64]) -> bool {
    by_value(reference, current).is_some()
}

/// Both samples' shares of each distinct value, or `None` once they have more than
/// [`MAX_CATEGORIES`] between them (counted in the same pass, so a category costs one pass
/// over today's values and a continuous feature stops early).
fn by_value(reference: &[f64], current: &[f64]) -> Option<(Vec<f64>, Vec<f64>)> {
    let (m, n) = (reference.len() as f64, current.len() as f64);
    let mut counts: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    let key = |x: f64| (x + 0.0).to_bits();
    for &x in reference {
        counts.entry(key(x)).or_default().0 += 1;
        if counts.len() > MAX_CATEGORIES {
            return None;
        }
    }
    for &x in current {
        counts.entry(key(x)).or_default().1 += 1;
        if counts.len() > MAX_CATEGORIES {
            return None;
        }
    }
    Some(
        counts
            .values()
            .map(|&(r, c)| (r as f64 / m, c as f64 / n))
            .unzip(),
    )
}

/// Both samples' shares of each bin (Evidently's `get_binned_data` without its stand-in for
/// empty bins), by value or in Sturges bins as [`is_categorical`] says.
fn binned(reference: &[f64], current: &[f64]) -> (Vec<f64>, Vec<f64>) {
    if let Some(shares) = by_value(reference, current) {
        return shares;
    }
    let (m, n) = (reference.len() as f64, current.len() as f64);
    let edges = sturges_edges(reference, current);
    let count = |xs: &[f64]| {
        let bins = edges.len() - 1;
        let mut counts = vec![0u64; bins];
        for &x in xs {
            // numpy's histogram: [e_i, e_i+1) and the last bin closed.
            let k = edges.partition_point(|&e| e <= x).saturating_sub(1);
            counts[k.min(bins - 1)] += 1;
        }
        counts
    };
    let share = |counts: Vec<u64>, len: f64| counts.into_iter().map(|c| c as f64 / len).collect();
    (share(count(reference), m), share(count(current), n))
}

/// numpy's `histogram_bin_edges(reference ∪ current, bins="sturges")`: equal-width bins
/// from the smallest value to the largest, ⌈log2(N) + 1⌉ of them, by numpy's own arithmetic.
fn sturges_edges(reference: &[f64], current: &[f64]) -> Vec<f64> {
    let all = || reference.iter().chain(current);
    let lo = all().copied().fold(f64::INFINITY, f64::min);
    let hi = all().copied().fold(f64::NEG_INFINITY, f64::max);
    let size = (reference.len() + current.len()) as f64;
    let (first, last) = if lo == hi {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    };
    let width = (hi - lo) / (size.log2() + 1.0);
    let bins = if width > 0.0 {
        (((last - first) / width).ceil() as usize).max(1)
    } else {
        1
    };
    // numpy's linspace: start + i * step, the last edge exactly `last`.
    let step = (last - first) / bins as f64;
    let mut edges: Vec<f64> = (0..=bins).map(|i| first + i as f64 * step).collect();
    edges[bins] = last;
    edges
}

/// Evidently's stand-in for an empty bin: the smallest non-zero share over a million if that
/// is at most 0.0001, else 0.0001.
fn fill_empty(shares: &[f64]) -> Vec<f64> {
    let least = shares
        .iter()
        .copied()
        .filter(|&s| s != 0.0)
        .fold(f64::INFINITY, f64::min);
    let stand_in = if least <= 0.0001 { least / 1e6 } else { 0.0001 };
    shares
        .iter()
        .map(|&s| if s == 0.0 { stand_in } else { s })
        .collect()
}

/// Population stability index of binned shares.
fn psi(reference: &[f64], current: &[f64]) -> f64 {
    let (r, c) = (fill_empty(reference), fill_empty(current));
    r.iter().zip(&c).map(|(r, c)| (r - c) * (r / c).ln()).sum()
}

/// `scipy.spatial.distance.jensenshannon` of binned shares, natural logarithm.
fn jensen_shannon(reference: &[f64], current: &[f64]) -> f64 {
    let normal = |s: &[f64]| {
        let total: f64 = s.iter().sum();
        s.iter().map(|x| x / total).collect::<Vec<f64>>()
    };
    let (p, q) = (normal(reference), normal(current));
    let m: Vec<f64> = p.iter().zip(&q).map(|(a, b)| (a + b) / 2.0).collect();
    let relative = |x: &[f64]| -> f64 {
        x.iter()
            .zip(&m)
            .map(|(&a, &b)| if a > 0.0 { a * (a / b).ln() } else { 0.0 })
            .sum()
    };
    ((relative(&p) + relative(&q)) / 2.0).max(0.0).sqrt()
}

/// The two-sample Kolmogorov-Smirnov statistic of the ascending `reference` and `current`:
/// the largest gap between their empirical CDFs. Today's values are counted between and at
/// the reference's distinct values (a binary search each, no sort); between two of those
/// the reference's CDF is flat and today's rises, so the gap is largest at an end.
fn ks(reference: &[f64], current: &[f64]) -> f64 {
    if reference.is_empty() || current.is_empty() {
        return 0.0;
    }
    let mut values: Vec<f64> = Vec::new();
    let mut up_to: Vec<usize> = Vec::new();
    for (i, &v) in reference.iter().enumerate() {
        if values.last() == Some(&v) {
            *up_to.last_mut().expect("a value was pushed") = i + 1;
        } else {
            values.push(v);
            up_to.push(i + 1);
        }
    }
    let d = values.len();
    // below[k]: today's values between the (k-1)-th distinct value and the k-th; at[k]: equal
    // to the k-th.
    let mut below = vec![0u64; d + 1];
    let mut at = vec![0u64; d];
    for &x in current {
        let k = values.partition_point(|&v| v < x);
        if k < d && values[k] == x {
            at[k] += 1;
        } else {
            below[k] += 1;
        }
    }
    let (m, n) = (reference.len() as f64, current.len() as f64);
    let mut seen = 0u64;
    let mut gap = 0f64;
    for k in 0..d {
        let before = if k == 0 { 0 } else { up_to[k - 1] } as f64 / m;
        seen += below[k];
        gap = gap.max((before - seen as f64 / n).abs());
        seen += at[k];
        gap = gap.max((up_to[k] as f64 / m - seen as f64 / n).abs());
    }
    gap
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_sample_has_not_drifted() {
        let r: Vec<f64> = (0..500).map(f64::from).collect();
        let d = drift(&r, &r);
        assert_eq!((d.psi, d.ks, d.js), (0.0, 0.0, 0.0));
    }

    #[test]
    fn a_point_mass_beside_continuous_values_is_binned_as_numbers() {
        // 93% of customers at 1 (no budget used), the rest spread below: the reference
        // keeps 201 quantiles, of which few are distinct; today is the same world.
        let value = |i: u64| {
            let u = (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as f64 / (1u64 << 53) as f64;
            if u < 0.93 { 1.0 } else { (u - 0.93) / 0.07 }
        };
        let mut sample: Vec<f64> = (0..100_000).map(value).collect();
        sample.sort_by(f64::total_cmp);
        let quantiles: Vec<f64> = (0..=200)
            .map(|q| sample[q * (sample.len() - 1) / 200])
            .collect();
        let distinct = 1 + quantiles.windows(2).filter(|w| w[0] != w[1]).count();
        assert!(distinct <= MAX_CATEGORIES, "{distinct}");
        let today: Vec<f64> = (100_000..130_000).map(value).collect();
        assert!(!is_categorical(&quantiles, &today));
        let d = drift(&quantiles, &today);
        assert!(d.psi < 0.1 && d.js < 0.1, "{d:?}");
        // A real category keeps its bins by value.
        assert!(is_categorical(&[0.0, 0.0, 1.0], &[1.0, 0.0, 1.0, 1.0]));
    }

    #[test]
    fn values_that_are_not_finite_are_left_out() {
        let r: Vec<f64> = (0..100).map(f64::from).collect();
        let mut c = r.clone();
        c.push(f64::INFINITY);
        c.push(f64::NAN);
        assert_eq!(drift(&r, &c), drift(&r, &r));
        let none = drift(&r, &[f64::INFINITY]);
        assert_eq!((none.psi, none.ks, none.js), (0.0, 0.0, 0.0));
    }

    #[test]
    fn ks_is_the_largest_gap_between_the_cdfs() {
        // Reference 1, 2, 3, 4; today 3, 4, 5, 6: at 2 the reference is at 1/2, today at 0.
        assert_eq!(ks(&[1.0, 2.0, 3.0, 4.0], &[5.0, 3.0, 6.0, 4.0]), 0.5);
        // Ties: reference 0, 0, 1, 1; today 0, 1, 1, 1 → at 0: 1/2 against 1/4.
        assert_eq!(ks(&[0.0, 0.0, 1.0, 1.0], &[1.0, 0.0, 1.0, 1.0]), 0.25);
        // Disjoint: 1.
        assert_eq!(ks(&[0.0, 1.0], &[7.0, 8.0]), 1.0);
    }

    #[test]
    fn few_values_are_binned_by_value_and_an_empty_bin_takes_a_stand_in() {
        // Reference all 0; today half 1: bins {0: (1, 0.5), 1: (0, 0.5)}.
        let (r, c) = binned(&[0.0; 10], &[0.0, 1.0, 0.0, 1.0]);
        assert_eq!((r, c), (vec![1.0, 0.0], vec![0.5, 0.5]));
        let p = psi(&[1.0, 0.0], &[0.5, 0.5]);
        let expected = (1.0 - 0.5) * (1.0f64 / 0.5).ln() + (0.0001 - 0.5) * (0.0001f64 / 0.5).ln();
        assert!((p - expected).abs() < 1e-12, "{p} vs {expected}");
        // JS of (1, 0) and (0.5, 0.5): m = (0.75, 0.25).
        let js = jensen_shannon(&[1.0, 0.0], &[0.5, 0.5]);
        let kl = |p: &[f64]| -> f64 {
            p.iter()
                .zip([0.75, 0.25])
                .filter(|(a, _)| **a > 0.0)
                .map(|(a, b)| a * (a / b).ln())
                .sum()
        };
        let expected = ((kl(&[1.0, 0.0]) + kl(&[0.5, 0.5])) / 2.0).sqrt();
        assert!((js - expected).abs() < 1e-12);
    }

    #[test]
    fn many_values_take_sturges_bins_over_both_samples() {
        // 30 + 34 values from 0 to 63: log2(64) + 1 = 7 bins of width 9.
        let r: Vec<f64> = (0..30).map(f64::from).collect();
        let c: Vec<f64> = (30..64).map(f64::from).collect();
        let edges = sturges_edges(&r, &c);
        assert_eq!(edges.len(), 8);
        assert_eq!((edges[0], edges[7]), (0.0, 63.0));
        let (rb, cb) = binned(&r, &c);
        assert!((rb.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((cb.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(cb[0], 0.0, "today's values start at 30");
    }
}
