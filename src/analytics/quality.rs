//! Data quality: checks run on the written outputs themselves (so they also catch a corrupted
//! or hand-edited folder), and basket-value outliers per persona.
//!
//! Everything streams: transactions and line items are read in lockstep (both are written in
//! transaction order), id uniqueness uses one bit per customer per day, and outliers use
//! fences from the basket histogram. Memory does not grow with the number of transactions.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use arrow_array::{
    Array, Decimal128Array, RecordBatch, TimestampMillisecondArray, UInt16Array, UInt32Array,
    UInt64Array,
};
use chrono::NaiveDate;

use serde::Serialize;

use super::{Aggregates, basket_bin_edge};
use crate::output::schema;
use crate::output::sinks::TX_ID_DAY;

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
    /// Quartiles of the basket value, major units of the folder's currency (from the
    /// histogram: bin-edge precision).
    pub quartiles_rs: [f64; 3],
    /// Fence above which a basket is an outlier, major units of the folder's currency.
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

/// Parses a money field written with `minor_units` decimal places (`1234.56` with 2) into
/// minor units; a field with other places, or past i64 (a damaged file may hold any
/// number), is not a money field.
fn money(s: &str, minor_units: u8) -> Option<i64> {
    let places = s.split_once('.').map_or(0, |(_, f)| f.len());
    if places != usize::from(minor_units) {
        return None;
    }
    crate::money::parse_plain(s, minor_units)
}

/// Opens a table that must be a regular file: a pipe or a device put in its place could
/// block the checks or never end.
fn open_regular(path: &Path) -> Result<File, String> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => {
            File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))
        }
        Ok(_) => Err(format!("{} is not a regular file", path.display())),
        Err(e) => Err(format!("cannot open {}: {e}", path.display())),
    }
}

/// Reads a CSV header and a row iterator.
fn open_csv(path: &Path) -> Result<csv::Reader<BufReader<File>>, String> {
    let file = open_regular(path)?;
    Ok(csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(BufReader::with_capacity(1 << 20, file)))
}

/// A table of the folder, in the format the run wrote it (CSV first when both exist).
#[derive(Debug, Clone)]
enum TableFile {
    Csv(PathBuf),
    Parquet(PathBuf),
}

impl TableFile {
    /// `<stem>.csv` (or `<stem>.parquet`) in `dir`, if it is there.
    fn find(dir: &Path, stem: &str, parquet: bool) -> Option<Self> {
        if parquet {
            let path = dir.join(format!("{stem}.parquet"));
            path.exists().then_some(Self::Parquet(path))
        } else {
            let path = dir.join(format!("{stem}.csv"));
            path.exists().then_some(Self::Csv(path))
        }
    }

    /// The column names, checked against `expected`.
    fn columns(&self) -> Result<Vec<String>, String> {
        match self {
            Self::Csv(path) => {
                let mut r = open_csv(path)?;
                let h = r.headers().map_err(|e| e.to_string())?;
                Ok(h.iter().map(str::to_owned).collect())
            }
            Self::Parquet(path) => {
                let b = parquet_builder(path)?;
                Ok(b.schema()
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect())
            }
        }
    }
}

/// Where a row is, for a failure's example: a CSV line or a Parquet row.
#[derive(Debug, Clone, Copy)]
struct Pos {
    parquet: bool,
    n: u64,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.parquet {
            write!(f, "row {}", self.n)
        } else {
            write!(f, "line {}", self.n)
        }
    }
}

/// A transaction as the checks see it, whatever the file format.
struct TxRow {
    at: Pos,
    /// The first required column that is empty (or the row is short).
    missing: Option<&'static str>,
    id: Option<u64>,
    total: Option<i64>,
    lines: Option<u64>,
    date: Option<NaiveDate>,
    /// The timestamp as written, for examples.
    timestamp: Stamp,
}

/// A timestamp kept for a failure's example, formatted only if it is shown.
enum Stamp {
    Text(String),
    Millis(Option<i64>),
}

impl std::fmt::Display for Stamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stamp::Text(t) => f.write_str(t),
            Stamp::Millis(Some(ms)) => match chrono::DateTime::from_timestamp_millis(*ms) {
                Some(t) => write!(f, "{}", t.naive_utc()),
                None => write!(f, "{ms} ms"),
            },
            Stamp::Millis(None) => f.write_str("null"),
        }
    }
}

/// A line item as the checks see it.
struct LineRow {
    id: Option<u64>,
    quantity: i64,
    unit: i64,
    total: i64,
}

/// A customer as the id check sees it.
struct CustomerRow {
    id: Option<usize>,
    missing: bool,
    shown: String,
}

type Rows<T> = Box<dyn Iterator<Item = Result<T, String>>>;

fn parquet_builder(
    path: &Path,
) -> Result<parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder<File>, String> {
    let file = open_regular(path)?;
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Rows of a Parquet file, converted batch by batch by `convert` (given the batch and the
/// position of its first row).
fn parquet_rows<T: 'static>(
    path: &Path,
    convert: fn(&RecordBatch, u64) -> Result<Vec<T>, String>,
) -> Result<Rows<T>, String> {
    let reader = parquet_builder(path)?
        .with_batch_size(1 << 16)
        .build()
        .map_err(|e| e.to_string())?;
    let mut first = 1u64;
    let mut stopped = false;
    Ok(Box::new(
        reader
            // The first unreadable batch ends the table: a damaged page is not skipped by
            // the reader, so reading on would repeat the same error.
            .map_while(move |batch| {
                if stopped {
                    return None;
                }
                let rows = batch.map_err(|e| e.to_string()).and_then(|batch| {
                    let rows = convert(&batch, first)?;
                    first += batch.num_rows() as u64;
                    Ok(rows)
                });
                stopped = rows.is_err();
                Some(rows)
            })
            .flat_map(|rows: Result<Vec<T>, String>| match rows {
                Ok(v) => v.into_iter().map(Ok).collect::<Vec<_>>(),
                Err(e) => vec![Err(e)],
            }),
    ))
}

/// A column of a batch as a concrete array type.
fn column<'a, A: 'static>(b: &'a RecordBatch, name: &str) -> Result<&'a A, String> {
    b.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<A>())
        .ok_or_else(|| format!("column `{name}` is missing or of the wrong type"))
}

/// The first of `names` whose value at `i` is null.
fn first_null(b: &RecordBatch, names: &[&'static str], i: usize) -> Option<&'static str> {
    names
        .iter()
        .find(|n| b.column_by_name(n).is_none_or(|c| c.is_null(i)))
        .copied()
}

fn tx_rows(table: &TableFile, minor_units: u8) -> Result<Rows<TxRow>, String> {
    match table {
        TableFile::Csv(path) => {
            let reader = open_csv(path)?;
            let tx_table = schema::transactions();
            Ok(Box::new(reader.into_records().map(move |row| {
                let row = row.map_err(|e| format!("unreadable row: {e}"))?;
                let n = row.position().map_or(0, |p| p.line());
                let missing = if row.len() != tx_table.columns.len() {
                    Some("columns")
                } else {
                    row.iter()
                        .enumerate()
                        .find(|(i, f)| f.is_empty() && tx_table.is_required(*i))
                        .map(|(i, _)| tx_table.columns[i].name)
                };
                let ts = row.get(1).unwrap_or("");
                Ok(TxRow {
                    at: Pos { parquet: false, n },
                    missing,
                    id: row.get(0).and_then(|f| f.parse().ok()),
                    total: row.get(4).and_then(|s| money(s, minor_units)),
                    lines: row.get(5).and_then(|f| f.parse().ok()),
                    date: ts
                        .get(..10)
                        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()),
                    timestamp: Stamp::Text(ts.to_owned()),
                })
            })))
        }
        TableFile::Parquet(path) => parquet_rows(path, |b, first| {
            let id = column::<UInt64Array>(b, "transaction_id")?;
            let ts = column::<TimestampMillisecondArray>(b, "timestamp")?;
            let total = column::<Decimal128Array>(b, "total")?;
            let lines = column::<UInt16Array>(b, "lines")?;
            let required = schema::transactions().required();
            Ok((0..b.num_rows())
                .map(|i| {
                    let ms = ts.is_valid(i).then(|| ts.value(i));
                    let stamp = ms
                        .and_then(chrono::DateTime::from_timestamp_millis)
                        .map(|t| t.naive_utc());
                    TxRow {
                        at: Pos {
                            parquet: true,
                            n: first + i as u64,
                        },
                        missing: first_null(b, &required, i),
                        id: id.is_valid(i).then(|| id.value(i)),
                        total: total.is_valid(i).then(|| total.value(i) as i64),
                        lines: lines.is_valid(i).then(|| u64::from(lines.value(i))),
                        date: stamp.map(|t| t.date()),
                        timestamp: Stamp::Millis(ms),
                    }
                })
                .collect())
        }),
    }
}

fn line_rows(table: &TableFile, minor_units: u8) -> Result<Rows<LineRow>, String> {
    match table {
        TableFile::Csv(path) => {
            let reader = open_csv(path)?;
            Ok(Box::new(reader.into_records().map(move |l| {
                let l = l.map_err(|e| format!("unreadable line item: {e}"))?;
                Ok(LineRow {
                    id: l.get(0).and_then(|f| f.parse().ok()),
                    quantity: l.get(3).and_then(|f| f.parse().ok()).unwrap_or(0),
                    unit: l.get(4).and_then(|s| money(s, minor_units)).unwrap_or(0),
                    total: l.get(5).and_then(|s| money(s, minor_units)).unwrap_or(0),
                })
            })))
        }
        TableFile::Parquet(path) => parquet_rows(path, |b, _| {
            let id = column::<UInt64Array>(b, "transaction_id")?;
            let q = column::<UInt32Array>(b, "quantity")?;
            let unit = column::<Decimal128Array>(b, "unit_price")?;
            let total = column::<Decimal128Array>(b, "line_total")?;
            let or0 =
                |a: &Decimal128Array, i: usize| if a.is_valid(i) { a.value(i) as i64 } else { 0 };
            Ok((0..b.num_rows())
                .map(|i| LineRow {
                    id: id.is_valid(i).then(|| id.value(i)),
                    quantity: if q.is_valid(i) {
                        i64::from(q.value(i))
                    } else {
                        0
                    },
                    unit: or0(unit, i),
                    total: or0(total, i),
                })
                .collect())
        }),
    }
}

fn customer_rows(table: &TableFile) -> Result<Rows<CustomerRow>, String> {
    match table {
        TableFile::Csv(path) => {
            let reader = open_csv(path)?;
            let customers = schema::customers();
            Ok(Box::new(reader.into_records().map(move |row| {
                let row = row.map_err(|_| "unreadable row".to_owned())?;
                let missing = row
                    .iter()
                    .enumerate()
                    .any(|(i, f)| f.is_empty() && customers.is_required(i));
                Ok(CustomerRow {
                    id: row.get(0).and_then(|f| f.parse().ok()),
                    missing,
                    shown: row.get(0).unwrap_or("").to_owned(),
                })
            })))
        }
        TableFile::Parquet(path) => parquet_rows(path, |b, _| {
            let id = column::<UInt32Array>(b, "customer_id")?;
            let required = schema::customers().required();
            Ok((0..b.num_rows())
                .map(|i| {
                    let valid = id.is_valid(i);
                    CustomerRow {
                        id: valid.then(|| id.value(i) as usize),
                        missing: first_null(b, &required, i).is_some(),
                        shown: if valid {
                            id.value(i).to_string()
                        } else {
                            String::new()
                        },
                    }
                })
                .collect())
        }),
    }
}

/// Checks a table is there and has the expected columns; returns it if so.
fn schema_check(
    dir: &Path,
    declared: &schema::Table,
    parquet: bool,
    checks: &mut Vec<Check>,
) -> Option<TableFile> {
    columns_check(dir, declared.stem, &declared.names(), parquet, checks)
}

/// Checks a table is there and has the `expected` columns; returns it if so.
fn columns_check(
    dir: &Path,
    stem: &str,
    expected: &[&str],
    parquet: bool,
    checks: &mut Vec<Check>,
) -> Option<TableFile> {
    let table = TableFile::find(dir, stem, parquet);
    let ext = if parquet { "parquet" } else { "csv" };
    let mut t = Tally::new(&format!("{stem}.{ext}: columns"));
    let got = match &table {
        Some(table) => table.columns(),
        None => Err(format!("{stem}.{ext} is not in the folder")),
    };
    match got {
        Ok(got) => t.check(got == expected, || {
            format!("columns are {got:?}, expected {expected:?}")
        }),
        Err(e) => t.fail(e),
    }
    let ok = t.failures == 0;
    checks.push(t.done());
    table.filter(|_| ok)
}

/// Checks every value of a plugin-declared table: present where the column requires one,
/// of the declared type (CSV: parses as it; Parquet: the declared Arrow type, nulls only
/// where allowed).
fn declared_values(
    table: &TableFile,
    decl: &schema::Declared,
    label: &str,
    minor_units: u8,
) -> Check {
    use schema::{Kind, Null};
    let mut t = Tally::new(&format!("{label}{}: values as declared", decl.stem));
    match table {
        TableFile::Csv(path) => match open_csv(path) {
            Ok(reader) => {
                for row in reader.into_records() {
                    let row = match row {
                        Ok(row) => row,
                        Err(e) => {
                            t.fail(format!("unreadable row: {e}"));
                            break;
                        }
                    };
                    let line = row.position().map_or(0, |p| p.line());
                    let bad = decl
                        .columns
                        .iter()
                        .enumerate()
                        .find(|(i, (_, kind, null))| {
                            let f = row.get(*i).unwrap_or("");
                            if f.is_empty() {
                                return *null == Null::Never;
                            }
                            !match kind {
                                Kind::U8 => f.parse::<u8>().is_ok(),
                                Kind::U16 => f.parse::<u16>().is_ok(),
                                Kind::U32 => f.parse::<u32>().is_ok(),
                                Kind::U64 => f.parse::<u64>().is_ok(),
                                Kind::Money => money(f, minor_units).is_some(),
                                Kind::Float => f.parse::<f64>().is_ok_and(f64::is_finite),
                                Kind::Bool => f == "true" || f == "false",
                                Kind::Date => NaiveDate::parse_from_str(f, "%Y-%m-%d").is_ok(),
                                Kind::Timestamp => {
                                    chrono::NaiveDateTime::parse_from_str(f, "%Y-%m-%dT%H:%M")
                                        .is_ok()
                                }
                                Kind::Text | Kind::Name8 | Kind::Name16 => true,
                            }
                        });
                    t.check(bad.is_none() && row.len() == decl.columns.len(), || {
                        let col = bad.map_or("(columns)", |(_, c)| c.0.as_str());
                        format!("line {line}: `{col}`")
                    });
                }
            }
            Err(e) => t.fail(e),
        },
        TableFile::Parquet(path) => match parquet_builder(path) {
            Ok(b) => {
                let fields = b.schema().fields().clone();
                for (f, (name, kind, null)) in fields.iter().zip(&decl.columns) {
                    t.check(
                        f.data_type() == &kind.arrow(minor_units)
                            && f.is_nullable() == (*null == Null::Allowed),
                        || format!("`{name}` is {:?}, declared {kind:?}", f.data_type()),
                    );
                }
                match b.build() {
                    Ok(reader) => {
                        for batch in reader {
                            match batch {
                                Ok(batch) => {
                                    for (c, (name, _, null)) in
                                        batch.columns().iter().zip(&decl.columns)
                                    {
                                        t.check(
                                            c.null_count() == 0 || *null == Null::Allowed,
                                            || format!("`{name}` has nulls"),
                                        );
                                    }
                                }
                                Err(e) => {
                                    t.fail(e.to_string());
                                    break;
                                }
                            }
                        }
                    }
                    Err(e) => t.fail(e.to_string()),
                }
            }
            Err(e) => t.fail(e),
        },
    }
    t.done()
}

/// Runs every check on an output folder: on its CSV tables, on its Parquet tables, or on both
/// when the run wrote both (the Parquet checks' names then start with `parquet`).
/// `start`/`end` bound the timestamps (from `summary.json`), `aggregates` gives the basket
/// histograms for outliers, `declared` the shapes plugins declared (`tables.json`): their
/// tables, and `daily_metrics` with the columns they added.
pub fn check_folder(
    dir: &Path,
    start: &str,
    end: &str,
    aggregates: Option<&Aggregates>,
    declared: &[schema::Declared],
    minor_units: u8,
) -> QualityReport {
    let mut checks = Vec::new();
    // A sharded run's per-customer tables are folders of parts, one a rank: read back by
    // `bazaar check` through the manifest's hashes, not row by row here.
    let parted = dir.join("transactions").is_dir();
    let part = |parquet: bool| {
        let ext = if parquet { "parquet" } else { "csv" };
        dir.join("transactions")
            .join(format!("part-00000.{ext}"))
            .is_file()
    };
    let has = |parquet: bool| {
        TableFile::find(dir, "transactions", parquet).is_some() || (parted && part(parquet))
    };
    let formats: Vec<bool> = match (has(false), has(true)) {
        (_, false) => vec![false],
        (false, true) => vec![true],
        (true, true) => vec![false, true],
    };
    for &parquet in &formats {
        let label = if parquet && formats.len() > 1 {
            "parquet "
        } else {
            ""
        };
        let (tx, lines, customers) = if parted {
            (None, None, None)
        } else {
            let tx = schema_check(dir, &schema::transactions(), parquet, &mut checks);
            let lines_present = TableFile::find(dir, "line_items", parquet).is_some();
            let lines = if lines_present {
                schema_check(dir, &schema::line_items(), parquet, &mut checks)
            } else {
                None
            };
            let customers = schema_check(dir, &schema::customers(), parquet, &mut checks);
            (tx, lines, customers)
        };
        let daily = declared.iter().find(|d| d.stem == "daily_metrics");
        match daily {
            Some(d) => {
                if let Some(t) = columns_check(dir, &d.stem, &d.names(), parquet, &mut checks) {
                    checks.push(declared_values(&t, d, label, minor_units));
                }
            }
            None => {
                schema_check(dir, &schema::daily_metrics(), parquet, &mut checks);
            }
        }
        for d in declared.iter().filter(|d| d.stem != "daily_metrics") {
            if let Some(t) = columns_check(dir, &d.stem, &d.names(), parquet, &mut checks) {
                checks.push(declared_values(&t, d, label, minor_units));
            }
        }
        if let Some(tx) = &tx {
            checks.extend(transaction_checks(
                tx,
                lines.as_ref(),
                start,
                end,
                label,
                minor_units,
            ));
        }
        if let Some(customers) = &customers {
            checks.push(customer_ids(customers, label));
        }
    }

    let outliers = aggregates.map(outliers).unwrap_or_default();
    QualityReport {
        passed: checks.iter().all(|c| c.passed),
        checks,
        outliers,
    }
}

fn transaction_checks(
    tx: &TableFile,
    lines: Option<&TableFile>,
    start: &str,
    end: &str,
    label: &str,
    minor_units: u8,
) -> Vec<Check> {
    let named = |name: &str| Tally::new(&format!("{label}{name}"));
    let mut missing = named("transactions: no missing values");
    let mut positive = named("transactions and line items: amounts and quantities positive");
    let mut window = named(&format!("transactions: timestamps within {start}..{end}"));
    let mut unique = named("transactions: ids unique");
    let mut sums = named("line items: line totals add up to basket totals");
    let mut line_math = named("line items: quantity x unit price = line total");
    let rows = match tx_rows(tx, minor_units) {
        Ok(r) => r,
        Err(e) => {
            missing.fail(e);
            return vec![missing.done()];
        }
    };
    let (first, last) = (
        NaiveDate::parse_from_str(start, "%Y-%m-%d").ok(),
        NaiveDate::parse_from_str(end, "%Y-%m-%d").ok(),
    );
    let mut line_records = match lines.map(|l| line_rows(l, minor_units)) {
        Some(Ok(r)) => Some(r),
        Some(Err(e)) => {
            sums.fail(e);
            None
        }
        None => None,
    };
    let mut seen_day: Option<u64> = None;
    let mut seen: Vec<u64> = Vec::new();
    for row in rows {
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                missing.fail(e);
                continue;
            }
        };
        let at = row.at;
        missing.check(row.missing.is_none(), || {
            format!("{at}: missing {}", row.missing.unwrap_or("columns"))
        });
        positive.check(row.total.is_some_and(|t| t > 0), || {
            format!("{at}: total {:?}", row.total)
        });
        window.check(
            matches!((row.date, first, last), (Some(d), Some(a), Some(b)) if d >= a && d <= b),
            || format!("{at}: timestamp `{}`", row.timestamp),
        );
        match row.id {
            Some(id) => {
                let (day, agent) = (id / TX_ID_DAY, (id % TX_ID_DAY) as usize);
                if seen_day != Some(day) {
                    // Transactions come in time order; a day seen again means disorder.
                    if seen_day.is_some_and(|d| d > day) {
                        unique.fail(format!("{at}: id {id} out of day order"));
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
                unique.check(!dup, || format!("{at}: id {id} repeated"));
            }
            None => unique.fail(format!("{at}: id is missing or not a number")),
        }
        if let (Some(records), Some(n), Some(total), Some(id)) =
            (line_records.as_mut(), row.lines, row.total, row.id)
        {
            let mut sum = 0i64;
            let mut ok = true;
            for _ in 0..n {
                match records.next() {
                    Some(Ok(l)) => {
                        let (q, unit, lt) = (l.quantity, l.unit, l.total);
                        ok &= l.id == Some(id);
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
        let shown = match extra {
            Ok(l) => format!("a line item of transaction {:?}", l.id),
            Err(e) => e,
        };
        sums.fail(format!(
            "line items left over after the last transaction: {shown}"
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

fn customer_ids(table: &TableFile, label: &str) -> Check {
    let mut t = Tally::new(&format!("{label}customers: ids unique, no missing values"));
    let rows = match customer_rows(table) {
        Ok(r) => r,
        Err(e) => {
            t.fail(e);
            return t.done();
        }
    };
    let mut seen: Vec<u64> = Vec::new();
    for row in rows {
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                t.fail(e);
                continue;
            }
        };
        let dup = row.id.is_none_or(|id| {
            if seen.len() <= id / 64 {
                seen.resize(id / 64 + 1, 0);
            }
            let bit = 1u64 << (id % 64);
            let d = seen[id / 64] & bit != 0;
            seen[id / 64] |= bit;
            d
        });
        t.check(!dup && !row.missing, || format!("customer `{}`", row.shown));
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
