//! The statistics a calibration is judged by, measured the same way on real and simulated
//! visits, and their scores as SDMetrics defines them: KS-complement (1 minus the
//! two-sample Kolmogorov-Smirnov statistic) for numbers, TV-complement (1 minus the total
//! variation distance) for categories. 1 is a perfect match; 0 the worst.
//!
//! Both are written here: statrs has the distributions but no two-sample test, and each is a
//! sort and a merge (KS) or a sum (TV); a test holds the KS statistic to scipy's `ks_2samp`.

use chrono::NaiveDate;
use serde::Serialize;

use super::log::{Log, weekday};

/// A statistic's data on one side.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Sample {
    /// Observations of a numeric statistic.
    Numeric {
        /// The values.
        values: Vec<f64>,
    },
    /// Frequencies of a categorical statistic, one per category in `labels` order.
    Categorical {
        /// The categories.
        labels: Vec<String>,
        /// Weight of each category.
        weights: Vec<f64>,
    },
}

/// One statistic, real against simulated.
#[derive(Debug, Clone, Serialize)]
pub struct Score {
    /// Identifier, e.g. `basket_value`.
    pub name: String,
    /// What it measures.
    pub title: String,
    /// `KSComplement` or `TVComplement`.
    pub metric: &'static str,
    /// The score, 0 to 1.
    pub score: f64,
    /// Mean of the real data (numeric), or its most common category.
    pub real: String,
    /// The same of the simulated data.
    pub simulated: String,
    /// The data, for the charts (left out of `fit.json`).
    #[serde(skip)]
    pub samples: (Sample, Sample),
}

/// KS-complement of two samples: 1 - sup |F_a - F_b| over their empirical CDFs.
pub fn ks_complement(a: &[f64], b: &[f64]) -> f64 {
    let mut a: Vec<f64> = a.iter().copied().filter(|x| x.is_finite()).collect();
    let mut b: Vec<f64> = b.iter().copied().filter(|x| x.is_finite()).collect();
    match (a.is_empty(), b.is_empty()) {
        // Nothing on either side: they agree.
        (true, true) => return 1.0,
        (true, false) | (false, true) => return 0.0,
        _ => {}
    }
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (mut i, mut j, mut d) = (0, 0, 0.0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
    }
    1.0 - d
}

/// TV-complement of two frequency vectors over the same categories.
pub fn tv_complement(a: &[f64], b: &[f64]) -> f64 {
    let (sa, sb): (f64, f64) = (a.iter().sum(), b.iter().sum());
    match (sa > 0.0, sb > 0.0) {
        (false, false) => return 1.0,
        (true, true) => {}
        _ => return 0.0,
    }
    let tv: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x / sa - y / sb).abs())
        .sum::<f64>()
        / 2.0;
    1.0 - tv
}

/// Each statistic of a log, in report order. `windows` are the days around holidays whose
/// revenue shape is compared; `categories` the category names in the order both logs share.
pub fn measure(
    log: &Log,
    windows: &[(String, NaiveDate, NaiveDate)],
) -> Vec<(String, String, Sample)> {
    let per_customer = log.by_customer();
    let mut value = Vec::with_capacity(log.visits.len());
    let mut lines = Vec::with_capacity(log.visits.len());
    let mut gaps = Vec::new();
    let mut counts = Vec::new();
    let mut wd = vec![0.0; 7];
    let mut hours = vec![0.0; 24];
    let mut mix = vec![0.0; log.categories.len()];
    for visits in &per_customer {
        if visits.is_empty() {
            continue;
        }
        counts.push(visits.len() as f64);
        for w in visits.windows(2) {
            gaps.push((w[1].date - w[0].date).num_days() as f64);
        }
        for v in *visits {
            value.push(v.value);
            lines.push(v.lines.len() as f64);
            wd[weekday(v.date)] += 1.0;
            hours[usize::from(v.hour)] += 1.0;
            for l in &v.lines {
                mix[usize::from(l.category)] += 1.0;
            }
        }
    }
    let mut out = vec![
        (
            "basket_value".into(),
            "Value of a shopping day".into(),
            Sample::Numeric { values: value },
        ),
        (
            "lines_per_basket".into(),
            "Categories in a shopping day's basket".into(),
            Sample::Numeric { values: lines },
        ),
        (
            "baskets_per_customer".into(),
            "Shopping days per customer".into(),
            Sample::Numeric { values: counts },
        ),
        (
            "days_between".into(),
            "Days between a customer's shopping days".into(),
            Sample::Numeric { values: gaps },
        ),
        (
            "weekday".into(),
            "Day of the week".into(),
            Sample::Categorical {
                labels: ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
                    .map(String::from)
                    .to_vec(),
                weights: wd,
            },
        ),
        (
            "hour".into(),
            "Hour of the day".into(),
            Sample::Categorical {
                labels: (0..24).map(|h| format!("{h:02}")).collect(),
                weights: hours,
            },
        ),
        (
            "category_mix".into(),
            "Lines by category".into(),
            Sample::Categorical {
                labels: log.categories.clone(),
                weights: mix,
            },
        ),
    ];
    if !windows.is_empty() {
        let mut labels = Vec::new();
        let mut weights = Vec::new();
        let mut daily = std::collections::HashMap::new();
        for v in &log.visits {
            *daily.entry(v.date).or_insert(0.0) += v.value;
        }
        for (name, from, to) in windows {
            for d in from.iter_days().take_while(|d| d <= to) {
                labels.push(if name.is_empty() {
                    d.to_string()
                } else {
                    format!("{name} {d}")
                });
                weights.push(daily.get(&d).copied().unwrap_or(0.0));
            }
        }
        out.push((
            "holiday_revenue".into(),
            "Daily revenue around the holidays (share of the windows' revenue)".into(),
            Sample::Categorical { labels, weights },
        ));
    }
    out
}

/// Scores real against simulated statistics (as [`measure`] returns them, same order).
/// Categorical statistics are matched by label, so the two logs' category orders may differ.
pub fn score(
    real: Vec<(String, String, Sample)>,
    sim: Vec<(String, String, Sample)>,
) -> Vec<Score> {
    real.into_iter()
        .zip(sim)
        .map(|((name, title, r), (_, _, s))| {
            let (metric, score, rs, ss, r, s) = match (r, s) {
                (Sample::Numeric { values: a }, Sample::Numeric { values: b }) => {
                    let (ma, mb) = (mean(&a), mean(&b));
                    (
                        "KSComplement",
                        ks_complement(&a, &b),
                        format!("mean {ma:.2}"),
                        format!("mean {mb:.2}"),
                        Sample::Numeric { values: a },
                        Sample::Numeric { values: b },
                    )
                }
                (
                    Sample::Categorical {
                        labels: la,
                        weights: wa,
                    },
                    Sample::Categorical {
                        labels: lb,
                        weights: wb,
                    },
                ) => {
                    let wb: Vec<f64> = la
                        .iter()
                        .map(|l| lb.iter().position(|x| x == l).map_or(0.0, |i| wb[i]))
                        .collect();
                    let top = |w: &[f64]| {
                        w.iter()
                            .enumerate()
                            .max_by(|a, b| a.1.total_cmp(b.1))
                            .map_or(String::new(), |(i, _)| format!("most {}", la[i]))
                    };
                    (
                        "TVComplement",
                        tv_complement(&wa, &wb),
                        top(&wa),
                        top(&wb),
                        Sample::Categorical {
                            labels: la.clone(),
                            weights: wa,
                        },
                        Sample::Categorical {
                            labels: la,
                            weights: wb,
                        },
                    )
                }
                (a, b) => ("mismatch", 0.0, String::new(), String::new(), a, b),
            };
            Score {
                name,
                title,
                metric,
                score,
                real: rs,
                simulated: ss,
                samples: (r, s),
            }
        })
        .collect()
}

fn mean(x: &[f64]) -> f64 {
    use statrs::statistics::Statistics;
    if x.is_empty() { 0.0 } else { x.iter().mean() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ks_complement_of_identical_and_disjoint_samples() {
        assert_eq!(ks_complement(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), 1.0);
        assert_eq!(ks_complement(&[1.0, 2.0], &[3.0, 4.0]), 0.0);
        // F_a(1) = 0.5, F_b(1) = 0: the largest gap is a half.
        assert!((ks_complement(&[1.0, 2.0], &[2.0, 2.0]) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn ks_complement_counts_ties_on_both_sides() {
        // scipy.stats.ks_2samp([1, 2, 2, 3, 5], [2, 3, 3, 4]).statistic == 0.35 (at 2:
        // 3/5 of one sample against 1/4 of the other), ties counted on both sides at once.
        let s = ks_complement(&[1.0, 2.0, 2.0, 3.0, 5.0], &[2.0, 3.0, 3.0, 4.0]);
        assert!((s - 0.65).abs() < 1e-12, "{s}");
    }

    #[test]
    fn tv_complement_compares_shares() {
        assert_eq!(tv_complement(&[1.0, 1.0], &[5.0, 5.0]), 1.0);
        assert_eq!(tv_complement(&[1.0, 0.0], &[0.0, 1.0]), 0.0);
        assert!((tv_complement(&[3.0, 1.0], &[1.0, 1.0]) - 0.75).abs() < 1e-12);
    }
}
