//! Parquet output read back with the arrow reader: schemas, row counts and values agree with
//! the CSV tables of the same run, a Parquet-only folder passes the data-quality checks, and
//! line items keep their baskets where a row group ends mid-basket.

use crate::common;

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Decimal128Type, TimestampMillisecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use bazaar::output::Manifest;
use bazaar::output::schema::daily_metrics;
use common::{bazaar, text};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// Every batch of a Parquet file, and its schema's column names.
fn read_parquet(path: &Path) -> (Vec<String>, Vec<RecordBatch>) {
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
    let names = builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let batches = builder.build().unwrap().map(Result::unwrap).collect();
    (names, batches)
}

/// The header and rows of a CSV file.
fn read_csv(path: &Path) -> (Vec<String>, Vec<csv::StringRecord>) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header = r.headers().unwrap().iter().map(String::from).collect();
    (header, r.records().map(Result::unwrap).collect())
}

fn run(args: &[&str]) {
    let o = bazaar(args);
    assert!(o.status.success(), "{:?}", text(&o));
}

/// Runs `scenarios/quick.ron` with Parquet output only into `out`, plus `extra` flags.
fn run_quick_parquet(out: &Path, extra: &[&str]) {
    let mut args = vec![
        "run",
        "scenarios/quick.ron",
        "--format",
        "parquet",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(&args);
}

/// Paise from a CSV money field such as `1234.56`.
fn paise(s: &str) -> i128 {
    let (w, f) = s.split_once('.').unwrap();
    w.parse::<i128>().unwrap() * 100 + f.parse::<i128>().unwrap()
}

#[test]
fn parquet_tables_match_the_csv_tables_column_for_column() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("both");
    run(&[
        "run",
        "scenarios/diwali.ron",
        "--scale",
        "0.02",
        "--days",
        "10",
        "--format",
        "csv,parquet",
        "--no-report",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    let manifest: Manifest =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let rows: HashMap<&str, u64> = manifest
        .files
        .iter()
        .map(|f| (f.name.as_str(), f.rows))
        .collect();

    for table in [
        "transactions",
        "line_items",
        "customers",
        "daily_metrics",
        "churn_events",
    ] {
        let (names, batches) = read_parquet(&out.join(format!("{table}.parquet")));
        let (header, records) = read_csv(&out.join(format!("{table}.csv")));
        assert_eq!(names, header, "{table}: same columns in both formats");
        let n: usize = batches.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(n, records.len(), "{table}: same rows in both formats");
        assert_eq!(rows[format!("{table}.parquet").as_str()], n as u64);
        assert!(n > 0, "{table} has rows");
    }

    // Transactions, value for value.
    let (_, batches) = read_parquet(&out.join("transactions.parquet"));
    let (_, records) = read_csv(&out.join("transactions.csv"));
    let mut csv = records.iter();
    for b in &batches {
        assert_eq!(
            b.schema().field_with_name("total").unwrap().data_type(),
            &DataType::Decimal128(18, 2)
        );
        let id = b.column(0).as_primitive::<UInt64Type>();
        let ts = b.column(1).as_primitive::<TimestampMillisecondType>();
        let customer = b.column(2).as_primitive::<UInt32Type>();
        let persona = b.column(3).as_dictionary::<UInt8Type>();
        let persona_names = persona.values().as_string::<i32>();
        let total = b.column(4).as_primitive::<Decimal128Type>();
        let lines = b.column(5).as_primitive::<UInt16Type>();
        let units = b.column(6).as_primitive::<UInt32Type>();
        let festival = b.column(7).as_boolean();
        let weekend = b.column(8).as_boolean();
        let events = b.column(9).as_dictionary::<UInt16Type>();
        let event_names = events.values().as_string::<i32>();
        let trimmed = b.column(10).as_boolean();
        for i in 0..b.num_rows() {
            let r = csv.next().unwrap();
            assert_eq!(id.value(i).to_string(), &r[0]);
            let stamp = chrono::DateTime::from_timestamp_millis(ts.value(i))
                .unwrap()
                .naive_utc()
                .format("%Y-%m-%dT%H:%M:%S")
                .to_string();
            assert_eq!(stamp, &r[1]);
            assert_eq!(customer.value(i).to_string(), &r[2]);
            let key = persona.keys().value(i) as usize;
            assert_eq!(persona_names.value(key), &r[3]);
            assert_eq!(total.value(i), paise(&r[4]));
            assert_eq!(lines.value(i).to_string(), &r[5]);
            assert_eq!(units.value(i).to_string(), &r[6]);
            assert_eq!(festival.value(i).to_string(), &r[7]);
            assert_eq!(weekend.value(i).to_string(), &r[8]);
            let key = events.keys().value(i) as usize;
            assert_eq!(event_names.value(key), &r[9]);
            assert_eq!(trimmed.value(i).to_string(), &r[10]);
        }
    }

    // Line items: ids, quantities and money, and the totals multiply out.
    let (_, batches) = read_parquet(&out.join("line_items.parquet"));
    let (_, records) = read_csv(&out.join("line_items.csv"));
    let mut csv = records.iter();
    for b in &batches {
        let id = b.column(0).as_primitive::<UInt64Type>();
        let line = b.column(1).as_primitive::<UInt16Type>();
        let category = b.column(2).as_dictionary::<UInt16Type>();
        let category_names = category.values().as_string::<i32>();
        let quantity = b.column(3).as_primitive::<UInt32Type>();
        let unit = b.column(4).as_primitive::<Decimal128Type>();
        let total = b.column(5).as_primitive::<Decimal128Type>();
        for i in 0..b.num_rows() {
            let r = csv.next().unwrap();
            assert_eq!(id.value(i).to_string(), &r[0]);
            assert_eq!(line.value(i).to_string(), &r[1]);
            let key = category.keys().value(i) as usize;
            assert_eq!(category_names.value(key), &r[2]);
            assert_eq!(quantity.value(i).to_string(), &r[3]);
            assert_eq!(unit.value(i), paise(&r[4]));
            assert_eq!(total.value(i), paise(&r[5]));
            assert_eq!(
                total.value(i),
                i128::from(quantity.value(i)) * unit.value(i)
            );
        }
    }

    // Daily metrics: transactions and revenue per day and persona.
    let (_, batches) = read_parquet(&out.join("daily_metrics.parquet"));
    let (_, records) = read_csv(&out.join("daily_metrics.csv"));
    let mut csv = records.iter();
    for b in &batches {
        let transactions = b.column(7).as_primitive::<UInt64Type>();
        let revenue = b.column(8).as_primitive::<Decimal128Type>();
        for i in 0..b.num_rows() {
            let r = csv.next().unwrap();
            assert_eq!(transactions.value(i).to_string(), &r[7]);
            assert_eq!(revenue.value(i), paise(&r[8]));
        }
    }

    // Customers: nullable budgets and dates are null exactly where the CSV is empty.
    let (_, batches) = read_parquet(&out.join("customers.parquet"));
    let (header, records) = read_csv(&out.join("customers.csv"));
    let mut csv = records.iter();
    for b in &batches {
        for i in 0..b.num_rows() {
            let r = csv.next().unwrap();
            for (c, name) in header.iter().enumerate() {
                assert_eq!(
                    b.column(c).is_null(i),
                    r[c].is_empty(),
                    "customer {} column {name}",
                    &r[0]
                );
            }
            let id = b.column(0).as_primitive::<UInt32Type>();
            let income = b.column(3).as_primitive::<UInt32Type>();
            let visits = b.column(7).as_primitive::<UInt32Type>();
            let spent = b.column(9).as_primitive::<Decimal128Type>();
            assert_eq!(id.value(i).to_string(), &r[0]);
            assert_eq!(income.value(i).to_string(), &r[3]);
            assert_eq!(visits.value(i).to_string(), &r[7]);
            assert_eq!(spent.value(i), paise(&r[9]));
        }
    }
}

#[test]
fn a_parquet_only_run_passes_its_data_quality_checks() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("parquet");
    run_quick_parquet(&out, &[]);
    assert!(!out.join("transactions.csv").exists());
    assert!(out.join("report.html").is_file());
    let quality: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("data_quality.json")).unwrap()).unwrap();
    assert_eq!(quality["passed"], true, "{quality:#}");
    let checks = quality["checks"].as_array().unwrap();
    assert!(
        checks.iter().any(
            |c| c["name"] == "line items: line totals add up to basket totals"
                && c["rows"].as_u64().unwrap() > 100
        ),
        "the line-item checks read the Parquet rows: {checks:?}"
    );
    let o = bazaar(&["check", out.to_str().unwrap()]);
    assert!(o.status.success(), "{:?}", text(&o));
}

#[test]
fn a_corrupted_parquet_table_fails_the_checks() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("parquet");
    run_quick_parquet(&out, &["--no-report"]);
    // Truncate the line items: the file is no longer Parquet.
    let path = out.join("line_items.parquet");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let o = bazaar(&["check", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{:?}", text(&o));
    let (stdout, _) = text(&o);
    assert!(
        stdout.contains("FAIL line_items.parquet: columns"),
        "the truncated table is named: {stdout}"
    );

    // Damage pages in the middle of the transactions, footer intact: the checks report the
    // unreadable rows and end (the reader does not skip a bad page, so reading on would
    // repeat the error forever).
    let path = out.join("transactions.parquet");
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 3;
    bytes[middle..middle + 2_000].fill(0xA5);
    std::fs::write(&path, &bytes).unwrap();
    let o = bazaar(&["check", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{:?}", text(&o));
    let (stdout, _) = text(&o);
    assert!(stdout.contains("FAIL "), "{stdout}");
}

#[test]
fn an_empty_format_list_is_refused_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = common::MINIMAL.replace(
        "population: [(persona: \"family\", count: 50)],",
        "population: [(persona: \"family\", count: 50)],\n    output: (formats: []),",
    );
    let path = common::write(dir.path(), "s.ron", &scenario);
    let o = bazaar(&["validate", path.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("no output format"), "{err}");
    assert!(err.contains("s.ron:20:23"), "{err}");
}

/// A line-items row group that ends in the middle of a basket, and hours split into several
/// segments, read back: every line keeps its transaction id, line number and values.
#[test]
fn line_items_stay_with_their_baskets_across_row_groups_and_segments() {
    use bazaar::output::OutputDir;
    use bazaar::output::parquet::{ParquetSink, ROW_GROUP_ROWS};
    use bazaar::output::sinks::{Sink, feed_hours, transaction_id};
    use bazaar::records::{HourRecords, LineRecord};

    let personas = vec!["premium".to_string(), "budget".to_string()];
    let categories: Vec<String> = (0..7).map(|i| format!("category_{i}")).collect();
    // Three lines a basket, so the first row group (a power of two) ends mid-basket; two
    // segments an hour, so baskets come from more than one segment.
    let baskets_per_segment = 50_000u32;
    let mut records = HourRecords::default();
    for (s, segment) in records.add_segments(2).iter_mut().enumerate() {
        for b in 0..baskets_per_segment {
            let agent = s as u32 * baskets_per_segment + b;
            let lines = (0..3u32).map(|k| LineRecord {
                category: ((agent + k) % 7) as u16,
                quantity: 1 + k,
                unit_price: i64::from(agent) * 10 + i64::from(k),
            });
            segment.push_basket(agent, (agent % 2) as u8, (agent % 60) as u8, lines);
        }
    }
    let date: chrono::NaiveDate = "2026-11-06".parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("o");
    let mut out = OutputDir::create(&target).unwrap();
    let mut sink = Box::new(
        ParquetSink::create(
            &out,
            true,
            &personas,
            &categories,
            date,
            &daily_metrics(),
            2,
        )
        .unwrap(),
    );
    let hours = 4u32;
    let feed = std::iter::repeat_n(&records, hours as usize);
    feed_hours(&mut *sink, date, &personas, &categories, feed).unwrap();
    sink.finish(&mut out).unwrap();
    let path = out.path("line_items.parquet");

    let rows_per_hour = 2 * baskets_per_segment as usize * 3;
    assert!(rows_per_hour * hours as usize > ROW_GROUP_ROWS && !ROW_GROUP_ROWS.is_multiple_of(3));
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap();
    assert!(builder.metadata().num_row_groups() >= 2);
    let mut row = 0usize;
    for b in builder.build().unwrap().map(Result::unwrap) {
        let id = b.column(0).as_primitive::<UInt64Type>();
        let line = b.column(1).as_primitive::<UInt16Type>();
        let category = b.column(2).as_dictionary::<UInt16Type>();
        let names = category.values().as_string::<i32>();
        let quantity = b.column(3).as_primitive::<UInt32Type>();
        let unit = b.column(4).as_primitive::<Decimal128Type>();
        for i in 0..b.num_rows() {
            let in_hour = row % rows_per_hour;
            let (agent, k) = ((in_hour / 3) as u32, (in_hour % 3) as u32);
            assert_eq!(id.value(i), transaction_id(0, agent), "row {row}");
            assert_eq!(u32::from(line.value(i)), k + 1, "row {row}");
            let name = names.value(usize::from(category.keys().value(i)));
            assert_eq!(name, format!("category_{}", (agent + k) % 7), "row {row}");
            assert_eq!(quantity.value(i), 1 + k, "row {row}");
            assert_eq!(
                unit.value(i),
                i128::from(agent) * 10 + i128::from(k),
                "row {row}"
            );
            row += 1;
        }
    }
    assert_eq!(row, rows_per_hour * hours as usize);
}
