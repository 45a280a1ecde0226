//! Same scenario and seed give byte-identical outputs at any thread count.

use crate::common;

use common::{bazaar, read_dir_bytes, text};

fn run(scenario: &str, threads: &str, out: &std::path::Path, extra: &[&str]) {
    let mut args = vec![
        scenario,
        "--threads",
        threads,
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = bazaar(&args);
    assert!(o.status.success(), "{:?}", text(&o));
}

#[test]
fn csv_and_parquet_outputs_are_byte_identical_at_1_2_and_4_threads() {
    let dir = tempfile::tempdir().unwrap();
    let outs: Vec<_> = ["1", "2", "4"]
        .iter()
        .map(|t| {
            let out = dir.path().join(format!("t{t}"));
            run(
                "scenarios/diwali.ron",
                t,
                &out,
                &["--scale", "0.05", "--days", "12", "--format", "csv,parquet"],
            );
            read_dir_bytes(&out)
        })
        .collect();
    let names: Vec<_> = outs[0].iter().map(|f| f.0.as_str()).collect();
    for expected in [
        "aggregates.json",
        "charts/daily_revenue.png",
        "charts/daily_revenue.svg",
        "churn_events.csv",
        "customers.csv",
        "daily_metrics.csv",
        "data_quality.json",
        "insights.md",
        "line_items.csv",
        "manifest.json",
        "report.html",
        "summary.json",
        "transactions.csv",
        "transactions.parquet",
        "line_items.parquet",
        "customers.parquet",
        "daily_metrics.parquet",
        "churn_events.parquet",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    let transactions = &outs[0]
        .iter()
        .find(|f| f.0 == "transactions.csv")
        .unwrap()
        .1;
    assert!(
        transactions.iter().filter(|&&b| b == b'\n').count() > 1_000,
        "a run big enough to exercise several threads"
    );
    for other in &outs[1..] {
        assert_eq!(outs[0].len(), other.len());
        for (a, b) in outs[0].iter().zip(other) {
            assert_eq!(a.0, b.0);
            assert!(a.1 == b.1, "{} differs between thread counts", a.0);
        }
    }
}

#[test]
fn a_different_seed_gives_different_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    run("scenarios/quick.ron", "2", &a, &[]);
    run("scenarios/quick.ron", "2", &b, &["--seed", "8"]);
    let fa = std::fs::read(a.join("transactions.csv")).unwrap();
    let fb = std::fs::read(b.join("transactions.csv")).unwrap();
    assert_ne!(fa, fb);
}

/// A million customers: the parallel paths (chunked iteration, per-thread buffers, parallel
/// encoding, Parquet writer threads) all carry real load, and still give the same bytes. The
/// small run above serves its hours and encodes its CSV rows on one thread each (they are
/// under the thresholds for handing work out); here every busy hour is split.
#[test]
fn a_million_customers_give_byte_identical_csv_and_parquet_at_1_2_and_8_threads() {
    let dir = tempfile::tempdir().unwrap();
    // Eight threads encode two Parquet row groups of a table at once; fewer, one.
    let outs: Vec<_> = ["1", "2", "8"]
        .iter()
        .map(|t| {
            let out = dir.path().join(format!("t{t}"));
            run(
                "scenarios/stress_1m.ron",
                t,
                &out,
                &["--days", "2", "--no-report", "--format", "csv,parquet"],
            );
            read_dir_bytes(&out)
        })
        .collect();
    let tx = outs[0]
        .iter()
        .find(|f| f.0 == "transactions.parquet")
        .expect("the stress scenario writes Parquet");
    assert!(tx.1.len() > 1_000_000, "a run of real size");
    for other in &outs[1..] {
        assert_eq!(outs[0].len(), other.len());
        for (a, b) in outs[0].iter().zip(other) {
            assert_eq!(a.0, b.0);
            assert!(a.1 == b.1, "{} differs between thread counts", a.0);
        }
    }
    // The line items span several row groups; none is lost at a boundary: their count is
    // the sum of the transactions' `lines`, and the manifest agrees with the files.
    let out = dir.path().join("t1");
    let rows = |name: &str| -> Vec<arrow_array::RecordBatch> {
        let file = std::fs::File::open(out.join(name)).unwrap();
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    use arrow_array::cast::AsArray;
    let declared: u64 = rows("transactions.parquet")
        .iter()
        .flat_map(|b| {
            b.column(5)
                .as_primitive::<arrow_array::types::UInt16Type>()
                .values()
                .iter()
                .map(|&n| u64::from(n))
                .collect::<Vec<_>>()
        })
        .sum();
    let line_batches = rows("line_items.parquet");
    let lines: usize = line_batches.iter().map(|b| b.num_rows()).sum();
    assert!(
        lines > parquet_row_group(),
        "{lines} line items fill more than one row group"
    );
    assert_eq!(declared, lines as u64);
    let manifest: bazaar::output::Manifest =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let listed = manifest
        .files
        .iter()
        .find(|f| f.name == "line_items.parquet")
        .unwrap()
        .rows;
    assert_eq!(listed, lines as u64);
}

fn parquet_row_group() -> usize {
    bazaar::output::parquet::ROW_GROUP_ROWS
}

/// `--timings` adds timings.json, listed in the manifest, saying where the run's time went;
/// every other output is the same bytes as without it.
#[test]
fn timings_say_where_the_time_went_and_change_no_other_output() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, timed) = (dir.path().join("plain"), dir.path().join("timed"));
    let args = ["--scale", "0.05", "--days", "3", "--format", "csv,parquet"];
    run("scenarios/diwali.ron", "2", &plain, &args);
    run(
        "scenarios/diwali.ron",
        "2",
        &timed,
        &[&args[..], &["--timings"]].concat(),
    );
    let (a, b) = (read_dir_bytes(&plain), read_dir_bytes(&timed));
    let others = |files: &[(String, Vec<u8>)]| -> Vec<(String, Vec<u8>)> {
        files
            .iter()
            .filter(|f| f.0 != "timings.json" && f.0 != "manifest.json")
            .cloned()
            .collect()
    };
    assert!(others(&a) == others(&b), "timings changed another output");
    assert!(!plain.join("timings.json").exists());
    let o = bazaar(&["check", timed.to_str().unwrap()]);
    assert!(o.status.success(), "{:?}", text(&o));

    let t: serde_json::Value =
        serde_json::from_slice(&std::fs::read(timed.join("timings.json")).unwrap()).unwrap();
    assert_eq!(t["threads"], 2);
    let phases: Vec<&str> = t["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for phase in [
        "set-up",
        "spawn",
        "simulate",
        "finish: sinks",
        "summary and report",
    ] {
        assert!(phases.contains(&phase), "{phase} missing from {phases:?}");
    }
    let phase_sum: f64 = t["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["seconds"].as_f64().unwrap())
        .sum();
    let wall = t["wall_seconds"].as_f64().unwrap();
    assert!(
        phase_sum <= wall + 1e-6 && phase_sum > 0.5 * wall,
        "phases {phase_sum} s of a {wall} s run"
    );
    let stage = |part: &str, stage: &str| -> u64 {
        t["parts"][part][stage]["count"]
            .as_u64()
            .unwrap_or_else(|| panic!("{part}: {stage} missing from {}", t["parts"]))
    };
    // One row group each at this size: built, encoded and written once.
    for table in [
        "transactions.parquet",
        "line_items.parquet",
        "customers.parquet",
    ] {
        for s in ["build", "encode", "write"] {
            assert_eq!(stage(table, s), 1, "{table}: {s}");
        }
    }
    assert!(stage("line_items.csv", "write") >= 1);
    assert!(stage("transactions.csv and line_items.csv", "encode") > 24);
    // Every hour with records, and each of the three days, handed to the output.
    assert!(stage("simulation", "output hand-off") > 3 * 12);
    assert!(stage("sinks' finish", "customer rows handed over") == 1);
}
