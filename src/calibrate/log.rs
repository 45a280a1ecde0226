//! Reads a real transaction log (Parquet or CSV, any column names) into shopping days, the
//! unit Bazaar simulates: one customer's purchases on one local day.
//!
//! A Bazaar customer shops at most once a day, so the log's baskets of one customer on one
//! day are merged into one visit (their value summed, their categories joined); a line is
//! one category of a visit, its quantity the log's rows (or summed `quantity` column) of that
//! category. The same reading turns a simulated run's own tables into visits
//! ([`Log::from_run`]), so real and simulated data are measured by the same code.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, TimestampMillisecondType};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Timelike};

use super::CalibrateError;

/// Which column of the log holds what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// Customer identifier (required).
    pub customer: String,
    /// Time of the purchase, a timestamp or a date (required).
    pub time: String,
    /// Value of the row, in major currency units (required).
    pub value: String,
    /// Basket identifier: rows of one basket share its first row's time.
    pub basket: Option<String>,
    /// Category of the row's product.
    pub category: Option<String>,
    /// Store of the purchase.
    pub store: Option<String>,
    /// Units the row stands for (else each row is one unit).
    pub quantity: Option<String>,
}

impl Default for Mapping {
    /// Bazaar's own `transactions` table: one row per basket, no categories.
    fn default() -> Self {
        Self {
            customer: "customer_id".into(),
            time: "timestamp".into(),
            value: "total".into(),
            basket: None,
            category: None,
            store: None,
            quantity: None,
        }
    }
}

impl Mapping {
    /// Parses `role=column,role=column`, over the defaults.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut m = Self::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((role, column)) = part.split_once('=') else {
                return Err(format!(
                    "`{part}` is not role=column\n  hint: e.g. --map customer=household_id,time=ts,value=amount"
                ));
            };
            let column = column.trim().to_owned();
            if column.is_empty() {
                return Err(format!("`{part}` names no column"));
            }
            match role.trim() {
                "customer" => m.customer = column,
                "time" | "timestamp" | "date" => m.time = column,
                "value" => m.value = column,
                "basket" => m.basket = Some(column),
                "category" => m.category = Some(column),
                "store" => m.store = Some(column),
                "quantity" => m.quantity = Some(column),
                other => {
                    return Err(format!(
                        "unknown role `{other}`\n  hint: the roles are customer, time, value, basket, category, store and quantity"
                    ));
                }
            }
        }
        Ok(m)
    }
}

/// One line of a visit: a category, its units and their value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Line {
    /// Index into [`Log::categories`].
    pub category: u16,
    /// Units (rows of the log, or its quantity column).
    pub units: u32,
    /// Value, major currency units.
    pub value: f64,
}

/// One customer's shopping on one day.
#[derive(Debug, Clone, PartialEq)]
pub struct Visit {
    /// Index into [`Log::customers`].
    pub customer: u32,
    /// Local date.
    pub date: NaiveDate,
    /// Hour of the day's first purchase.
    pub hour: u8,
    /// Value of the day's purchases.
    pub value: f64,
    /// Lines by category, in category order.
    pub lines: Vec<Line>,
}

/// A transaction log as visits.
#[derive(Debug, Clone, Default)]
pub struct Log {
    /// Customer keys as the log writes them.
    pub customers: Vec<String>,
    /// Category names as the log writes them (one, `all`, when it has none).
    pub categories: Vec<String>,
    /// Visits by customer, then date.
    pub visits: Vec<Visit>,
    /// First and last date of the log.
    pub first: NaiveDate,
    /// Last date.
    pub last: NaiveDate,
    /// Rows read.
    pub rows: u64,
    /// Customer-days whose value was zero or negative (returns, coupons), left out.
    pub dropped_visits: u64,
    /// Distinct stores, when a store column was mapped.
    pub stores: Option<usize>,
}

/// One row of a log, read column by column.
struct Row<'a> {
    customer: &'a str,
    basket: Option<&'a str>,
    time: NaiveDateTime,
    value: f64,
    category: Option<&'a str>,
    store: Option<&'a str>,
    quantity: u32,
}

/// Gathers rows into visits.
#[derive(Default)]
struct Builder {
    customers: HashMap<String, u32>,
    customer_keys: Vec<String>,
    categories: HashMap<String, u16>,
    category_names: Vec<String>,
    stores: HashSet<String>,
    has_store: bool,
    /// Whether the mapping names a category column.
    has_category: bool,
    /// A basket's time is its first row's (keyed by customer and basket).
    baskets: HashMap<(u32, String), NaiveDateTime>,
    days: HashMap<(u32, NaiveDate), Acc>,
    rows: u64,
}

#[derive(Default)]
struct Acc {
    hour: u8,
    first: Option<NaiveDateTime>,
    value: f64,
    lines: HashMap<u16, (u32, f64)>,
}

impl Builder {
    fn add(&mut self, row: Row, offset: Duration) -> Result<(), CalibrateError> {
        self.rows += 1;
        let n = self.customers.len();
        let customer = *self
            .customers
            .entry(row.customer.to_owned())
            .or_insert_with(|| n as u32);
        if customer as usize == self.customer_keys.len() {
            self.customer_keys.push(row.customer.to_owned());
        }
        let mut time = row.time.checked_add_signed(offset).ok_or_else(|| {
            CalibrateError::Input(format!(
                "the time {} is out of range once shifted by the UTC offset",
                row.time
            ))
        })?;
        if let Some(b) = row.basket {
            time = *self.baskets.entry((customer, b.to_owned())).or_insert(time);
        }
        // A log without categories is one category, `all`; a row with none in a log that has
        // them, `unknown`.
        let name = match row.category {
            Some(c) => c,
            None if self.has_category => "unknown",
            None => "all",
        };
        let category = match self.categories.get(name) {
            Some(&c) => c,
            None => {
                let c = u16::try_from(self.category_names.len()).map_err(|_| {
                    CalibrateError::Input(
                        "the log has more than 65,535 categories\n  hint: map a coarser column (a department) as the category".into(),
                    )
                })?;
                self.categories.insert(name.to_owned(), c);
                self.category_names.push(name.to_owned());
                c
            }
        };
        if let Some(s) = row.store {
            self.has_store = true;
            if !self.stores.contains(s) {
                self.stores.insert(s.to_owned());
            }
        }
        let acc = self.days.entry((customer, time.date())).or_default();
        if acc.first.is_none_or(|f| time < f) {
            acc.first = Some(time);
            acc.hour = time.hour() as u8;
        }
        acc.value += row.value;
        let line = acc.lines.entry(category).or_default();
        line.0 = line.0.saturating_add(row.quantity);
        line.1 += row.value;
        Ok(())
    }

    fn finish(self) -> Result<Log, CalibrateError> {
        let mut visits = Vec::with_capacity(self.days.len());
        let mut dropped = 0;
        for ((customer, date), acc) in self.days {
            if !acc.value.is_finite() {
                return Err(CalibrateError::Input(format!(
                    "customer `{}` spent more on {date} than a number can hold\n  hint: check the value column's unit",
                    self.customer_keys[customer as usize]
                )));
            }
            if acc.value <= 0.0 {
                dropped += 1;
                continue;
            }
            let mut lines: Vec<Line> = acc
                .lines
                .into_iter()
                .filter(|(_, (units, value))| *units > 0 && *value > 0.0)
                .map(|(category, (units, value))| Line {
                    category,
                    units,
                    value,
                })
                .collect();
            lines.sort_by_key(|l| l.category);
            visits.push(Visit {
                customer,
                date,
                hour: acc.hour,
                value: acc.value,
                lines,
            });
        }
        visits.sort_by_key(|v| (v.customer, v.date));
        let (Some(first), Some(last)) = (
            visits.iter().map(|v| v.date).min(),
            visits.iter().map(|v| v.date).max(),
        ) else {
            return Err(CalibrateError::Input(
                "the log has no purchase with a positive value".into(),
            ));
        };
        let days = (last - first).num_days() + 1;
        if days > i64::from(crate::limits::MAX_DAYS) {
            return Err(CalibrateError::Input(format!(
                "the log runs from {first} to {last}, {days} days: longer than Bazaar simulates ({} days)\n  hint: look for stray dates (a year typed wrong, a zero timestamp) or split the log",
                crate::limits::MAX_DAYS
            )));
        }
        Ok(Log {
            customers: self.customer_keys,
            categories: self.category_names,
            visits,
            first,
            last,
            rows: self.rows,
            dropped_visits: dropped,
            stores: self.has_store.then_some(self.stores.len()),
        })
    }
}

impl Log {
    /// Reads `path` (`.parquet`, else CSV) with `mapping`; `utc_offset` hours are added to
    /// every time (a log kept in UTC, read as local time).
    pub fn read(path: &Path, mapping: &Mapping, utc_offset: i32) -> Result<Self, CalibrateError> {
        let offset = Duration::hours(i64::from(utc_offset));
        let mut b = Builder {
            has_category: mapping.category.is_some(),
            ..Builder::default()
        };
        let parquet = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
        if parquet {
            read_parquet(path, mapping, offset, &mut b)?;
        } else {
            read_csv(path, mapping, offset, &mut b)?;
        }
        b.finish()
    }

    /// Reads a Bazaar run's `transactions.csv` and `line_items.csv` from `dir` as visits,
    /// with each customer's persona.
    pub fn from_run(dir: &Path) -> Result<(Self, Vec<String>), CalibrateError> {
        let fit = |path: &Path, e: &dyn std::fmt::Display| {
            CalibrateError::Fit(format!("reading the simulation's {}: {e}", path.display()))
        };
        let open = |name: &str| -> Result<(csv::Reader<File>, Vec<String>), CalibrateError> {
            let path = dir.join(name);
            let mut r = csv::Reader::from_path(&path).map_err(|e| fit(&path, &e))?;
            let header = r
                .headers()
                .map_err(|e| fit(&path, &e))?
                .iter()
                .map(str::to_owned)
                .collect();
            Ok((r, header))
        };
        let col = |header: &[String], name: &str| {
            header.iter().position(|h| h == name).ok_or_else(|| {
                CalibrateError::Fit(format!("the simulation's output has no column {name}"))
            })
        };
        let mut b = Builder {
            has_category: true,
            ..Builder::default()
        };
        let mut lines: HashMap<String, Vec<(String, u32, f64)>> = HashMap::new();
        let (mut r, h) = open("line_items.csv")?;
        let (ti, ci, qi, vi) = (
            col(&h, "transaction_id")?,
            col(&h, "category")?,
            col(&h, "quantity")?,
            col(&h, "line_total")?,
        );
        for rec in r.records() {
            let rec = rec.map_err(|e| fit(&dir.join("line_items.csv"), &e))?;
            let get = |i: usize| rec.get(i).unwrap_or("");
            lines.entry(get(ti).to_owned()).or_default().push((
                get(ci).to_owned(),
                get(qi).parse().unwrap_or(0),
                get(vi).parse().unwrap_or(0.0),
            ));
        }
        let (mut r, h) = open("transactions.csv")?;
        let (ti, tsi, ci, pi) = (
            col(&h, "transaction_id")?,
            col(&h, "timestamp")?,
            col(&h, "customer_id")?,
            col(&h, "persona")?,
        );
        let mut persona_of: HashMap<String, String> = HashMap::new();
        for rec in r.records() {
            let rec = rec.map_err(|e| fit(&dir.join("transactions.csv"), &e))?;
            let get = |i: usize| rec.get(i).unwrap_or("");
            let time = parse_time(get(tsi)).ok_or_else(|| {
                CalibrateError::Fit(format!(
                    "the simulation wrote a bad timestamp `{}`",
                    get(tsi)
                ))
            })?;
            persona_of
                .entry(get(ci).to_owned())
                .or_insert_with(|| get(pi).to_owned());
            for (category, units, value) in lines.remove(get(ti)).unwrap_or_default() {
                b.add(
                    Row {
                        customer: get(ci),
                        basket: None,
                        time,
                        value,
                        category: Some(&category),
                        store: None,
                        quantity: units,
                    },
                    Duration::zero(),
                )?;
            }
        }
        let log = b.finish().map_err(|e| match e {
            CalibrateError::Input(m) => CalibrateError::Fit(format!("the simulation: {m}")),
            e => e,
        })?;
        let personas = log
            .customers
            .iter()
            .map(|c| persona_of.get(c).cloned().unwrap_or_default())
            .collect();
        Ok((log, personas))
    }

    /// Days from the first to the last date, both included.
    pub fn days(&self) -> u32 {
        (self.last - self.first).num_days() as u32 + 1
    }

    /// The visits of each customer, in customer order (customers without visits have none).
    pub fn by_customer(&self) -> Vec<&[Visit]> {
        let mut out = vec![&self.visits[..0]; self.customers.len()];
        let mut start = 0;
        while start < self.visits.len() {
            let c = self.visits[start].customer;
            let end = start
                + self.visits[start..]
                    .iter()
                    .take_while(|v| v.customer == c)
                    .count();
            out[c as usize] = &self.visits[start..end];
            start = end;
        }
        out
    }

    /// The log restricted to the customers `keep` says yes to, renumbered.
    pub fn subset(&self, keep: impl Fn(&str) -> bool) -> Self {
        let mut map = vec![None; self.customers.len()];
        let mut customers = Vec::new();
        for (i, key) in self.customers.iter().enumerate() {
            if keep(key) {
                map[i] = Some(customers.len() as u32);
                customers.push(key.clone());
            }
        }
        let visits = self
            .visits
            .iter()
            .filter_map(|v| {
                map[v.customer as usize].map(|c| Visit {
                    customer: c,
                    ..v.clone()
                })
            })
            .collect();
        Self {
            customers,
            visits,
            categories: self.categories.clone(),
            ..*self
        }
    }
}

fn io(path: &Path, e: impl std::fmt::Display) -> CalibrateError {
    CalibrateError::Input(format!("{}: {e}", path.display()))
}

/// Parses `YYYY-MM-DD HH:MM[:SS[.fff]]`, with `T` or a space, or a bare date (noon).
pub fn parse_time(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    for f in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(t);
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(12, 0, 0))
}

/// A required or mapped column that the file lacks, with the nearest name it has.
fn missing(path: &Path, role: &str, name: &str, have: &[String]) -> CalibrateError {
    let near = crate::scenario::diag::did_you_mean(name, have.iter().map(String::as_str))
        .map(|h| format!("did you mean `{h}`? "))
        .unwrap_or_default();
    CalibrateError::Input(format!(
        "{}: no column `{name}` for the {role}\n  hint: {near}the file's columns are {}; map them with --map {role}=COLUMN",
        path.display(),
        have.join(", ")
    ))
}

fn read_csv(
    path: &Path,
    m: &Mapping,
    offset: Duration,
    b: &mut Builder,
) -> Result<(), CalibrateError> {
    let mut r = csv::Reader::from_path(path).map_err(|e| io(path, e))?;
    let header: Vec<String> = r
        .headers()
        .map_err(|e| io(path, e))?
        .iter()
        .map(str::to_owned)
        .collect();
    let col = |role: &str, name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| missing(path, role, name, &header))
    };
    let opt = |role: &str, name: &Option<String>| name.as_ref().map(|n| col(role, n)).transpose();
    let (cc, tc, vc) = (
        col("customer", &m.customer)?,
        col("time", &m.time)?,
        col("value", &m.value)?,
    );
    let (bc, kc, sc, qc) = (
        opt("basket", &m.basket)?,
        opt("category", &m.category)?,
        opt("store", &m.store)?,
        opt("quantity", &m.quantity)?,
    );
    for (i, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| io(path, e))?;
        let line = i + 2;
        let bad = |what: &str, v: &str| {
            CalibrateError::Input(format!(
                "{}:{line}: {what} `{v}` is not readable\n  hint: times are YYYY-MM-DD[ HH:MM[:SS]], values plain numbers",
                path.display()
            ))
        };
        let get = |c: usize| rec.get(c).unwrap_or("");
        if get(cc).trim().is_empty() {
            return Err(CalibrateError::Input(format!(
                "{}:{line}: the row has no customer\n  hint: drop rows without a customer before calibrating",
                path.display()
            )));
        }
        let time = parse_time(get(tc)).ok_or_else(|| bad("time", get(tc)))?;
        let value: f64 = get(vc).trim().parse().map_err(|_| bad("value", get(vc)))?;
        if !value.is_finite() {
            return Err(bad("value", get(vc)));
        }
        let quantity = match qc {
            Some(q) => get(q).trim().parse().map_err(|_| bad("quantity", get(q)))?,
            None => 1,
        };
        b.add(
            Row {
                customer: get(cc),
                basket: bc.map(get).filter(|s| !s.trim().is_empty()),
                time,
                value,
                category: kc.map(get).filter(|s| !s.is_empty()),
                store: sc.map(get),
                quantity,
            },
            offset,
        )?;
    }
    Ok(())
}

fn read_parquet(
    path: &Path,
    m: &Mapping,
    offset: Duration,
    b: &mut Builder,
) -> Result<(), CalibrateError> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let file = File::open(path).map_err(|e| io(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| io(path, e))?;
    let have: Vec<String> = builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    for (role, name) in [
        ("customer", Some(&m.customer)),
        ("time", Some(&m.time)),
        ("value", Some(&m.value)),
        ("basket", m.basket.as_ref()),
        ("category", m.category.as_ref()),
        ("store", m.store.as_ref()),
        ("quantity", m.quantity.as_ref()),
    ] {
        if let Some(n) = name
            && !have.contains(n)
        {
            return Err(missing(path, role, n, &have));
        }
    }
    let reader = builder
        .with_batch_size(64 * 1024)
        .build()
        .map_err(|e| io(path, e))?;
    for batch in reader {
        let batch = batch.map_err(|e| io(path, e))?;
        let text = |name: &str| cast(path, &batch, name, &DataType::Utf8);
        let customer = text(&m.customer)?;
        let customer = customer.as_string::<i32>();
        // A bare date counts as noon, as in CSV.
        let noon = matches!(
            batch.column_by_name(&m.time).map(|c| c.data_type()),
            Some(DataType::Date32 | DataType::Date64)
        );
        let time = cast(
            path,
            &batch,
            &m.time,
            &DataType::Timestamp(TimeUnit::Millisecond, None),
        )?;
        let time = time.as_primitive::<TimestampMillisecondType>();
        let value = cast(path, &batch, &m.value, &DataType::Float64)?;
        let value = value.as_primitive::<Float64Type>();
        let basket = m.basket.as_deref().map(text).transpose()?;
        let category = m.category.as_deref().map(text).transpose()?;
        let store = m.store.as_deref().map(text).transpose()?;
        let quantity = m
            .quantity
            .as_deref()
            .map(|q| cast(path, &batch, q, &DataType::Float64))
            .transpose()?;
        for i in 0..batch.num_rows() {
            if customer.is_null(i) || time.is_null(i) || value.is_null(i) {
                return Err(CalibrateError::Input(format!(
                    "{}: row {} has no customer, time or value\n  hint: drop incomplete rows before calibrating",
                    path.display(),
                    b.rows + 1
                )));
            }
            let ms = time
                .value(i)
                .saturating_add(if noon { 12 * 3_600_000 } else { 0 });
            let t = chrono::DateTime::from_timestamp_millis(ms)
                .ok_or_else(|| {
                    CalibrateError::Input(format!("{}: a time out of range", path.display()))
                })?
                .naive_utc();
            let v = value.value(i);
            if !v.is_finite() {
                return Err(CalibrateError::Input(format!(
                    "{}: row {} has a value that is not a number",
                    path.display(),
                    b.rows + 1
                )));
            }
            let q = quantity.as_ref().map_or(1, |q| {
                let q = q.as_primitive::<Float64Type>();
                if q.is_null(i) {
                    0
                } else {
                    q.value(i).clamp(0.0, f64::from(u32::MAX)).round() as u32
                }
            });
            b.add(
                Row {
                    customer: customer.value(i),
                    basket: str_at(&basket, i),
                    time: t,
                    value: v,
                    category: str_at(&category, i),
                    store: str_at(&store, i),
                    quantity: q,
                },
                offset,
            )?;
        }
    }
    Ok(())
}

/// Row `i` of an optional text column, `None` where it is null.
fn str_at(a: &Option<ArrayRef>, i: usize) -> Option<&str> {
    a.as_ref().and_then(|a| {
        let a = a.as_string::<i32>();
        (!a.is_null(i)).then(|| a.value(i))
    })
}

fn cast(
    path: &Path,
    batch: &RecordBatch,
    name: &str,
    to: &DataType,
) -> Result<ArrayRef, CalibrateError> {
    let col = batch
        .column_by_name(name)
        .ok_or_else(|| CalibrateError::Input(format!("{}: no column `{name}`", path.display())))?;
    arrow_cast::cast(col, to).map_err(|e| {
        CalibrateError::Input(format!(
            "{}: column `{name}` ({}) cannot be read as {to}: {e}",
            path.display(),
            col.data_type()
        ))
    })
}

/// Monday = 0.
pub fn weekday(d: NaiveDate) -> usize {
    d.weekday().num_days_from_monday() as usize
}
