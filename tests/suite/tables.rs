//! A plugin's own outputs: a table it declares is written in every configured format, listed
//! in the manifest, described in `tables.json` and checked by `bazaar check`; a column it adds
//! to `daily_metrics` is written beside the built-in ones in CSV and Parquet.

use crate::common;

use std::path::Path;

use bazaar::calendar::Clock;
use bazaar::output::Manifest;
use bazaar::output::schema::{Column, Kind, Table};
use bazaar::output::sinks::write_plugin_tables;
use bazaar::plugin::{Plugin, SimBuilder};
use bazaar::records::HourRecords;
use bazaar::run::{RunOptions, run};
use bazaar::scenario::{Format, Overrides, Scenario};
use bazaar::sim::{SimSet, registry};
use bazaar::systems::observe::{close_day, collect_records};
use bazaar::tables::{DailyColumn, DailyReport, PluginTables, TableId, Value};
use bevy_ecs::prelude::*;
use common::{MINIMAL, bazaar, text};

/// Counts each hour's baskets into a table of its own, and each persona's big baskets
/// (over 1,000 rupees) into a daily column.
struct HourlyBaskets;

#[derive(Resource)]
struct Handles {
    table: TableId,
    big: DailyColumn,
}

fn record_hour(
    clock: Res<Clock>,
    records: Res<HourRecords>,
    handles: Res<Handles>,
    mut tables: ResMut<PluginTables>,
    mut daily: ResMut<DailyReport>,
) -> bazaar::plugin::Result {
    if records.is_empty() {
        return Ok(());
    }
    let revenue: i64 = records.iter().map(|(t, _)| t.total).sum();
    tables.push(
        handles.table,
        vec![
            Value::D(clock.date()),
            Value::U(u64::from(clock.hour())),
            Value::U(records.len() as u64),
            Value::Paise(revenue),
            if clock.hour().is_multiple_of(2) {
                Value::Null
            } else {
                Value::S("odd hour, \"quoted\"".into())
            },
        ],
    )?;
    for (t, _) in records.iter().filter(|(t, _)| t.total > 100_000) {
        daily.add_to(handles.big, usize::from(t.persona), 1);
    }
    Ok(())
}

impl Plugin for HourlyBaskets {
    fn name(&self) -> &str {
        "hourly_baskets"
    }

    fn build(&self, sim: &mut SimBuilder) -> bazaar::plugin::Result {
        let table = sim.add_table(Table::new(
            "hourly_baskets",
            "hour with baskets",
            &[
                Column::new("date", Kind::Date, "Day."),
                Column::new("hour", Kind::U8, "Hour of the day."),
                Column::new("baskets", Kind::U32, "Baskets paid for."),
                Column::new("revenue", Kind::Money, "Paid."),
                Column::new("note", Kind::Text, "A note, odd hours only.").nullable(),
            ],
        ))?;
        let big = sim.daily_column(Column::new(
            "big_baskets",
            Kind::U64,
            "Baskets over 1,000 rupees.",
        ))?;
        sim.world.insert_resource(Handles { table, big });
        // In Observe, a reporter runs after the hour's records are collected, and before
        // the day closes and the plugin tables are written.
        sim.schedule.add_systems(
            record_hour
                .after(collect_records)
                .before(close_day)
                .before(write_plugin_tables)
                .in_set(SimSet::Observe),
        );
        Ok(())
    }
}

fn run_with_plugin(out: &Path) {
    let mut s =
        Scenario::from_text("t.ron", MINIMAL, &registry()).unwrap_or_else(|e| panic!("{e}"));
    s.apply(Overrides {
        out: Some(out.to_path_buf()),
        formats: vec![Format::Csv, Format::Parquet],
        ..Overrides::default()
    })
    .unwrap();
    run(
        &s,
        RunOptions {
            threads: 1,
            report: true,
            plugins: vec![Box::new(HourlyBaskets)],
            ..RunOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_plugin_table_is_written_listed_and_checked_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    run_with_plugin(&out);

    let mut r = csv::Reader::from_path(out.join("hourly_baskets.csv")).unwrap();
    assert_eq!(
        r.headers().unwrap().iter().collect::<Vec<_>>(),
        ["date", "hour", "baskets", "revenue", "note"]
    );
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert!(!rows.is_empty());
    // The table's baskets are the transactions, hour by hour.
    let baskets: u64 = rows.iter().map(|r| r[2].parse::<u64>().unwrap()).sum();
    let tx = csv::Reader::from_path(out.join("transactions.csv"))
        .unwrap()
        .records()
        .count() as u64;
    assert_eq!(baskets, tx);
    assert!(rows.iter().any(|r| &r[4] == "odd hour, \"quoted\""));
    assert!(rows.iter().any(|r| r[4].is_empty()));

    let manifest = Manifest::read(&out).unwrap();
    for name in [
        "hourly_baskets.csv",
        "hourly_baskets.parquet",
        "tables.json",
    ] {
        let e = manifest.files.iter().find(|f| f.name == name);
        assert!(e.is_some(), "{name} in the manifest");
    }
    let csv_entry = manifest
        .files
        .iter()
        .find(|f| f.name == "hourly_baskets.csv")
        .unwrap();
    assert_eq!(csv_entry.rows, rows.len() as u64);
    let parquet_entry = manifest
        .files
        .iter()
        .find(|f| f.name == "hourly_baskets.parquet")
        .unwrap();
    assert_eq!(parquet_entry.rows, rows.len() as u64);

    let o = bazaar(&["check", out.to_str().unwrap()]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("hourly_baskets: values as declared"),
        "{stdout}"
    );
    assert!(
        stdout.contains("parquet hourly_baskets: values as declared"),
        "{stdout}"
    );
}

#[test]
fn a_value_that_breaks_the_declaration_fails_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    run_with_plugin(&out);
    let path = out.join("hourly_baskets.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut fields: Vec<String> = lines[1].split(',').map(str::to_owned).collect();
    fields[1] = "noon".to_owned();
    lines[1] = fields.join(",");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let quality = bazaar::report::check(&out).unwrap();
    let check = quality
        .checks
        .iter()
        .find(|c| c.name == "hourly_baskets: values as declared")
        .expect("the check ran");
    assert!(!check.passed, "{check:?}");
}

#[test]
fn a_daily_column_joins_daily_metrics_in_csv_and_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    run_with_plugin(&out);
    let mut r = csv::Reader::from_path(out.join("daily_metrics.csv")).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header.last().map(String::as_str), Some("big_baskets"));
    let big: u64 = r
        .records()
        .map(|r| r.unwrap()[header.len() - 1].parse::<u64>().unwrap())
        .sum();
    let expected = csv::Reader::from_path(out.join("transactions.csv"))
        .unwrap()
        .records()
        .filter(|r| {
            let total: f64 = r.as_ref().unwrap()[4].parse().unwrap();
            total > 1000.0
        })
        .count() as u64;
    assert!(expected > 0);
    assert_eq!(big, expected);
    let file = std::fs::File::open(out.join("daily_metrics.parquet")).unwrap();
    let builder =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let field = builder.schema().fields().last().unwrap().clone();
    assert_eq!(
        (field.name().as_str(), field.data_type()),
        ("big_baskets", &arrow_schema::DataType::UInt64)
    );
}

#[test]
fn declaring_a_taken_table_name_is_a_build_error() {
    struct Squatter;
    impl Plugin for Squatter {
        fn name(&self) -> &str {
            "squatter"
        }
        fn build(&self, sim: &mut SimBuilder) -> bazaar::plugin::Result {
            sim.add_table(Table::new("customers", "x", &[]))?;
            Ok(())
        }
    }
    let s = Scenario::from_text("t.ron", MINIMAL, &registry()).unwrap();
    let e = bazaar::sim::Simulation::builder(&s)
        .add_plugin(Squatter)
        .build()
        .err()
        .expect("refused");
    assert!(
        e.to_string().contains("`customers` is already taken"),
        "{e}"
    );
}
