//! Data quality: checks run on the written outputs themselves (so they also catch a corrupted
//! or hand-edited folder), and basket-value outliers per persona.
//!
//! Everything streams: transactions and line items are read in lockstep (both are written in
//! transaction order), id uniqueness uses one bit per customer per day, and outliers use
//! fences from the basket histogram. Memory does not grow with the number of transactions.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use serde::Serialize;

use super::{Aggregates, basket_bin_edge};
use crate::output::sinks::{
    CUSTOMER_COLUMNS, DAILY_COLUMNS, LINE_COLUMNS, TRANSACTION_COLUMNS, TX_ID_DAY,
};

/// Failures listed per check, at most.
const MAX_EXAMPLES: usize = 5;
/// Outlier fence: Q3 + this many interquartile ranges (of log basket value).
pub const OUTLIER_IQRS: f64 = 3.0;

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What is checked.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// Rows checked.
    pub rows: u64,
    /// Failing rows.
    pub failures: u64,
    /// A few failures, for a person to look at.
    pub examples: Vec<String>,
}

/// Basket outliers of one persona.
#[derive(Debug, Clone, Serialize)]
pub struct Outliers {
    /// Persona name.
    pub persona: String,
    /// Baskets.
    pub baskets: u64,
    /// Quartiles of the basket value, rupees (from the histogram: bin-edge precision).
    pub quartiles_rs: [f64; 3],
    /// Fence above which a basket is an outlier, rupees.
    pub fence_rs: f64,
    /// Baskets above the fence.
    pub outliers: u64,
    /// Their share.
    pub share: f64,
}

/// The whole report, written as `data_quality.json`.
#[derive(Debug, Clone, Serialize)]
pub struct QualityReport {
    /// Whether every check passed.
    pub passed: bool,
    /// The checks.
    pub checks: Vec<Check>,
    /// Basket outliers by persona.
    pub outliers: Vec<Outliers>,
}

struct Tally {
    name: String,
    rows: u64,
    failures: u64,
    examples: Vec<String>,
}

impl Tally {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            rows: 0,
            failures: 0,
            examples: Vec::new(),
        }
    }

    fn check(&mut self, ok: bool, example: impl FnOnce() -> String) {
        self.rows += 1;
        if !ok {
            self.failures += 1;
            if self.examples.len() < MAX_EXAMPLES {
                self.examples.push(example());
            }
        }
    }

    fn fail(&mut self, example: String) {
        self.rows += 1;
        self.failures += 1;
        if self.examples.len() < MAX_EXAMPLES {
            self.examples.push(example);
        }
    }

    fn done(self) -> Check {
        Check {
            passed: self.failures == 0,
            name: self.name,
            rows: self.rows,
            failures: self.failures,
            examples: self.examples,
        }
    }
}

/// Parses a money field (`1234.56`) into paise.
fn paise(s: &str) -> Option<i64> {
    let (whole, frac) = s.split_once('.')?;
    if frac.len() != 2 {
        return None;
    }
    let w: i64 = whole.parse().ok()?;
    let f: i64 = frac.parse().ok()?;
    Some(w * 100 + if whole.starts_with('-') { -f } else { f })
}

/// Reads a CSV header and a row iterator.
fn open_csv(path: &Path) -> Result<csv::Reader<BufReader<File>>, String> {
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    Ok(csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(BufReader::with_capacity(1 << 20, file)))
}

fn schema_check(name: &str, path: &Path, expected: &[&str], checks: &mut Vec<Check>) -> bool {
    let mut t = Tally::new(&format!("{name}: columns"));
    match open_csv(path).and_then(|mut r| r.headers().cloned().map_err(|e| e.to_string())) {
        Ok(h) => {
            let got: Vec<&str> = h.iter().collect();
            t.check(got == expected, || {
                format!("columns are {got:?}, expected {expected:?}")
            });
        }
        Err(e) => t.fail(e),
    }
    let ok = t.failures == 0;
    checks.push(t.done());
    ok
}

/// Runs every check on an output folder. `start`/`end` bound the timestamps (from
/// `summary.json`), `aggregates` gives the basket histograms for outliers.
pub fn check_folder(
    dir: &Path,
    start: &str,
    end: &str,
    aggregates: Option<&Aggregates>,
) -> QualityReport {
    let mut checks = Vec::new();
    let tx_path = dir.join("transactions.csv");
    let line_path = dir.join("line_items.csv");
    let tx_ok = schema_check(
        "transactions.csv",
        &tx_path,
        &TRANSACTION_COLUMNS,
        &mut checks,
    );
    let lines_present = line_path.exists();
    let lines_ok =
        lines_present && schema_check("line_items.csv", &line_path, &LINE_COLUMNS, &mut checks);
    schema_check(
        "customers.csv",
        &dir.join("customers.csv"),
        &CUSTOMER_COLUMNS,
        &mut checks,
    );
    schema_check(
        "daily_metrics.csv",
        &dir.join("daily_metrics.csv"),
        &DAILY_COLUMNS,
        &mut checks,
    );

    if tx_ok {
        checks.extend(transaction_checks(
            &tx_path,
            lines_ok.then_some(&line_path),
            start,
            end,
        ));
    }
    checks.push(customer_ids(&dir.join("customers.csv")));

    let outliers = aggregates.map(outliers).unwrap_or_default();
    QualityReport {
        passed: checks.iter().all(|c| c.passed),
        checks,
        outliers,
    }
}

fn transaction_checks(tx: &Path, lines: Option<&Path>, start: &str, end: &str) -> Vec<Check> {
    let mut missing = Tally::new("transactions: no missing values");
    let mut positive = Tally::new("transactions and line items: amounts and quantities positive");
    let mut window = Tally::new(&format!("transactions: timestamps within {start}..{end}"));
    let mut unique = Tally::new("transactions: ids unique");
    let mut sums = Tally::new("line items: line totals add up to basket totals");
    let mut line_math = Tally::new("line items: quantity x unit price = line total");
    let mut reader = match open_csv(tx) {
        Ok(r) => r,
        Err(e) => {
            missing.fail(e);
            return vec![missing.done()];
        }
    };
    let mut line_reader = lines.and_then(|p| open_csv(p).ok());
    let mut line_records = line_reader.as_mut().map(|r| r.records());
    let mut seen_day: Option<u64> = None;
    let mut seen: Vec<u64> = Vec::new();
    for row in reader.records() {
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                missing.fail(format!("unreadable row: {e}"));
                continue;
            }
        };
        let line_no = row.position().map_or(0, |p| p.line());
        // Columns that may be empty: events.
        let empty = row
            .iter()
            .enumerate()
            .find(|(i, f)| f.is_empty() && TRANSACTION_COLUMNS[*i] != "events");
        missing.check(
            empty.is_none() && row.len() == TRANSACTION_COLUMNS.len(),
            || {
                format!(
                    "line {line_no}: missing {}",
                    empty.map_or("columns", |e| TRANSACTION_COLUMNS[e.0])
                )
            },
        );
        let id: Option<u64> = row.get(0).and_then(|f| f.parse().ok());
        let total = row.get(4).and_then(paise);
        let n_lines: Option<u64> = row.get(5).and_then(|f| f.parse().ok());
        positive.check(total.is_some_and(|t| t > 0), || {
            format!("line {line_no}: total `{}`", row.get(4).unwrap_or(""))
        });
        let ts = row.get(1).unwrap_or("");
        window.check(
            ts.len() >= 10 && &ts[..10] >= start && &ts[..10] <= end,
            || format!("line {line_no}: timestamp `{ts}`"),
        );
        match id {
            Some(id) => {
                let (day, agent) = (id / TX_ID_DAY, (id % TX_ID_DAY) as usize);
                if seen_day != Some(day) {
                    // Transactions come in time order; a day seen again means disorder.
                    if seen_day.is_some_and(|d| d > day) {
                        unique.fail(format!("line {line_no}: id {id} out of day order"));
                    }
                    seen_day = Some(day);
                    seen.iter_mut().for_each(|w| *w = 0);
                }
                if seen.len() <= agent / 64 {
                    seen.resize(agent / 64 + 1, 0);
                }
                let bit = 1u64 << (agent % 64);
                let dup = seen[agent / 64] & bit != 0;
                seen[agent / 64] |= bit;
                unique.check(!dup, || format!("line {line_no}: id {id} repeated"));
            }
            None => unique.fail(format!(
                "line {line_no}: id `{}` is not a number",
                row.get(0).unwrap_or("")
            )),
        }
        if let (Some(records), Some(n), Some(total), Some(id)) =
            (line_records.as_mut(), n_lines, total, id)
        {
            let mut sum = 0i64;
            let mut ok = true;
            for _ in 0..n {
                match records.next() {
                    Some(Ok(l)) => {
                        let q: i64 = l.get(3).and_then(|f| f.parse().ok()).unwrap_or(0);
                        let unit = l.get(4).and_then(paise).unwrap_or(0);
                        let lt = l.get(5).and_then(paise).unwrap_or(0);
                        let lid: Option<u64> = l.get(0).and_then(|f| f.parse().ok());
                        ok &= lid == Some(id);
                        positive.check(q >= 1 && unit > 0 && lt > 0, || {
                            format!(
                                "line item of {id}: quantity {q}, unit price {unit}, total {lt}"
                            )
                        });
                        line_math.check(q * unit == lt, || {
                            format!("line item of {id}: {q} x {unit} != {lt}")
                        });
                        sum += lt;
                    }
                    _ => ok = false,
                }
            }
            sums.check(ok && sum == total, || {
                format!("transaction {id}: lines sum to {sum}, total {total}")
            });
        }
    }
    if let Some(records) = line_records.as_mut()
        && let Some(extra) = records.next()
    {
        sums.fail(format!(
            "line items left over after the last transaction: {extra:?}"
        ));
    }
    let mut out = vec![
        missing.done(),
        positive.done(),
        window.done(),
        unique.done(),
    ];
    if lines.is_some() {
        out.push(sums.done());
        out.push(line_math.done());
    }
    out
}

fn customer_ids(path: &Path) -> Check {
    let mut t = Tally::new("customers: ids unique, no missing values");
    let mut reader = match open_csv(path) {
        Ok(r) => r,
        Err(e) => {
            t.fail(e);
            return t.done();
        }
    };
    let mut seen: Vec<u64> = Vec::new();
    // Columns that may be empty: budgets (unlimited), last purchase, churn date.
    let optional: HashMap<&str, ()> = [
        "monthly_budget",
        "budget_left",
        "last_purchase",
        "churned_on",
    ]
    .into_iter()
    .map(|c| (c, ()))
    .collect();
    for row in reader.records() {
        let Ok(row) = row else {
            t.fail("unreadable row".to_owned());
            continue;
        };
        let id: Option<usize> = row.get(0).and_then(|f| f.parse().ok());
        let empty = row.iter().enumerate().any(|(i, f)| {
            f.is_empty() && !optional.contains_key(CUSTOMER_COLUMNS.get(i).unwrap_or(&""))
        });
        let dup = id.is_none_or(|id| {
            if seen.len() <= id / 64 {
                seen.resize(id / 64 + 1, 0);
            }
            let bit = 1u64 << (id % 64);
            let d = seen[id / 64] & bit != 0;
            seen[id / 64] |= bit;
            d
        });
        t.check(!dup && !empty, || {
            format!("customer `{}`", row.get(0).unwrap_or(""))
        });
    }
    t.done()
}

/// Quantiles from histogram counts: the upper edge of the bin holding each quantile.
fn quantile_edges(counts: &[u64], qs: [f64; 3]) -> [f64; 3] {
    let total: u64 = counts.iter().sum();
    let mut out = [0.0; 3];
    for (k, q) in qs.iter().enumerate() {
        let target = (q * total as f64).ceil() as u64;
        let mut acc = 0;
        for (i, c) in counts.iter().enumerate() {
            acc += c;
            if acc >= target.max(1) {
                out[k] = basket_bin_edge(i + 1);
                break;
            }
        }
    }
    out
}

/// Per-persona basket outliers: IQR fences on the log of the basket value.
pub fn outliers(a: &Aggregates) -> Vec<Outliers> {
    a.personas
        .iter()
        .zip(&a.basket_histogram)
        .map(|(name, counts)| {
            let baskets: u64 = counts.iter().sum();
            let q = quantile_edges(counts, [0.25, 0.5, 0.75]);
            let (l1, l3) = (q[0].max(1e-9).ln(), q[2].max(1e-9).ln());
            let fence = (l3 + OUTLIER_IQRS * (l3 - l1)).exp();
            let outliers: u64 = counts
                .iter()
                .enumerate()
                .filter(|(i, _)| basket_bin_edge(*i) >= fence)
                .map(|(_, c)| c)
                .sum();
            Outliers {
                persona: name.clone(),
                baskets,
                quartiles_rs: q,
                fence_rs: (fence * 100.0).round() / 100.0,
                outliers,
                share: if baskets == 0 {
                    0.0
                } else {
                    outliers as f64 / baskets as f64
                },
            }
        })
        .collect()
}
