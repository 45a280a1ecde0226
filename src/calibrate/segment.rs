//! Segments customers into personas: k-means (linfa) on standardised recency, frequency,
//! monetary and timing features, with K given or chosen by the mean silhouette.

use linfa::prelude::*;
use linfa_clustering::KMeans;
use ndarray::{Array1, Array2, Axis};

use super::CalibrateError;
use super::log::{Log, weekday};

/// The features, one row per customer with visits, in this order.
pub const FEATURES: [&str; 6] = [
    "ln shopping days per 30 days",
    "ln mean value",
    "ln(1 + days since the last visit)",
    "mean categories per visit",
    "weekend share",
    "mean hour",
];

/// Weight of the frequency feature after standardising.
const FREQUENCY_WEIGHT: f64 = 2.0;

/// Most customers the silhouette is computed on (it costs the square of the count).
const SILHOUETTE_SAMPLE: usize = 4000;

/// The outcome of segmentation.
#[derive(Debug, Clone)]
pub struct Segments {
    /// Persona of each customer (by [`Log::customers`] index); `None` without visits.
    pub of: Vec<Option<usize>>,
    /// Number of personas.
    pub k: usize,
    /// Mean silhouette of each K tried (K, score); the chosen K when one was given.
    pub silhouettes: Vec<(usize, f64)>,
}

/// Each customer's feature row (customers without visits are skipped), and their indices.
fn features(log: &Log) -> (Array2<f64>, Vec<usize>) {
    let mut rows = Vec::new();
    let mut who = Vec::new();
    for (c, visits) in log.by_customer().into_iter().enumerate() {
        let (Some(first), Some(last)) = (visits.first(), visits.last()) else {
            continue;
        };
        let span = (log.last - first.date).num_days() as f64 + 1.0;
        let n = visits.len() as f64;
        let value: f64 = visits.iter().map(|v| v.value).sum::<f64>() / n;
        let lines: f64 = visits.iter().map(|v| v.lines.len() as f64).sum::<f64>() / n;
        let weekend = visits.iter().filter(|v| weekday(v.date) >= 5).count() as f64 / n;
        let hour: f64 = visits.iter().map(|v| f64::from(v.hour)).sum::<f64>() / n;
        let recency = (log.last - last.date).num_days() as f64;
        rows.extend([
            (n / span * 30.0).ln(),
            value.max(0.01).ln(),
            recency.ln_1p(),
            lines,
            weekend,
            hour,
        ]);
        who.push(c);
    }
    let x = Array2::from_shape_vec((who.len(), FEATURES.len()), rows).unwrap_or_default();
    let mut x = standardise(x);
    // Frequency counts twice: a persona's customers share one visit hazard, so a segment
    // wide in frequency spreads its customers' visit counts less than the data does.
    x.column_mut(0).mapv_inplace(|v| v * FREQUENCY_WEIGHT);
    (x, who)
}

fn standardise(mut x: Array2<f64>) -> Array2<f64> {
    if x.nrows() == 0 {
        return x;
    }
    let mean = x
        .mean_axis(Axis(0))
        .unwrap_or_else(|| Array1::zeros(x.ncols()));
    let sd = x.std_axis(Axis(0), 0.0);
    for mut row in x.rows_mut() {
        for j in 0..row.len() {
            row[j] = if sd[j] > 1e-12 {
                (row[j] - mean[j]) / sd[j]
            } else {
                0.0
            };
        }
    }
    x
}

fn fit(x: &Array2<f64>, k: usize) -> Result<Array1<usize>, CalibrateError> {
    let data = DatasetBase::from(x.clone());
    let model = KMeans::params(k)
        .n_runs(10)
        .max_n_iterations(300)
        .tolerance(1e-6)
        .fit(&data)
        .map_err(|e| CalibrateError::Fit(format!("k-means with K = {k}: {e}")))?;
    Ok(model.predict(x))
}

/// Kinds of trip from the categories bought on each visit: k-means on the count (K = 3,
/// or fewer distinct counts), each cluster a kind with its share of visits and its mean
/// count over the overall mean as the purchase factor, smallest first.
pub fn trips(lines: &[f64]) -> Vec<(f64, f64)> {
    let mut distinct = lines.to_vec();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    let k = distinct.len().min(3);
    let mean = lines.iter().sum::<f64>() / lines.len().max(1) as f64;
    if k < 2 || mean <= 0.0 {
        return Vec::new();
    }
    let x = Array2::from_shape_vec((lines.len(), 1), lines.to_vec()).unwrap_or_default();
    let Ok(labels) = fit(&x, k) else {
        return Vec::new();
    };
    let mut sums = vec![(0.0, 0usize); k];
    for (l, &c) in lines.iter().zip(&labels) {
        sums[c].0 += l;
        sums[c].1 += 1;
    }
    let mut out: Vec<(f64, f64)> = sums
        .into_iter()
        .filter(|s| s.1 > 0)
        .map(|(s, n)| (n as f64 / lines.len() as f64, s / n as f64 / mean))
        .collect();
    out.sort_by(|a, b| a.1.total_cmp(&b.1));
    out
}

/// Segments the customers of `log` into `k` personas, or, without `k`, into the K in
/// `2..=max_k` with the highest mean silhouette.
pub fn segment(log: &Log, k: Option<usize>, max_k: usize) -> Result<Segments, CalibrateError> {
    let (x, who) = features(log);
    let n = x.nrows();
    if n < 2 * k.unwrap_or(2) {
        return Err(CalibrateError::Input(format!(
            "{n} customers with purchases are too few to segment\n  hint: give a longer log, or fewer personas with --personas"
        )));
    }
    // Every step-th customer, for the silhouette.
    let step = n.div_ceil(SILHOUETTE_SAMPLE).max(1);
    let sample: Vec<usize> = (0..n).step_by(step).collect();
    let xs = x.select(Axis(0), &sample);
    let silhouette = |labels: &Array1<usize>| -> Result<f64, CalibrateError> {
        let ls: Array1<usize> = sample.iter().map(|&i| labels[i]).collect();
        DatasetBase::new(xs.clone(), ls)
            .silhouette_score()
            .map_err(|e| CalibrateError::Fit(format!("silhouette: {e}")))
    };
    let (labels, silhouettes) = match k {
        Some(k) => {
            let labels = fit(&x, k)?;
            let s = silhouette(&labels)?;
            (labels, vec![(k, s)])
        }
        None => {
            let mut best: Option<(f64, Array1<usize>)> = None;
            let mut tried = Vec::new();
            for k in 2..=max_k.min(n / 2).max(2) {
                let labels = fit(&x, k)?;
                let s = silhouette(&labels)?;
                tried.push((k, s));
                if best.as_ref().is_none_or(|b| s > b.0) {
                    best = Some((s, labels));
                }
            }
            let Some((_, labels)) = best else {
                return Err(CalibrateError::Fit("no K could be tried".into()));
            };
            (labels, tried)
        }
    };
    let k = labels.iter().copied().max().map_or(1, |m| m + 1);
    let mut of = vec![None; log.customers.len()];
    for (row, &c) in who.iter().enumerate() {
        of[c] = Some(labels[row]);
    }
    Ok(Segments { of, k, silhouettes })
}
