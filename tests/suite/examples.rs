//! The example behaviours' scenarios (`scenarios/examples/*.ron`): each runs, passes
//! `bazaar check`, is big enough that some hour is served in parallel, and writes the same
//! bytes at 1, 2 and 4 threads. A new example is covered by adding its scenario there.

use crate::common;

use std::path::{Path, PathBuf};

use bazaar::output::Manifest;
use common::{bazaar, root, text};

fn examples() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(root().join("scenarios/examples"))
        .map(|d| {
            d.map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "ron"))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

fn run(scenario: &Path, threads: u32, out: &Path) -> Vec<(String, String)> {
    let o = bazaar(&[
        "run",
        scenario.to_str().unwrap(),
        "--threads",
        &threads.to_string(),
        "--format",
        "csv,parquet",
        "--no-report",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}: {:?}", scenario.display(), text(&o));
    Manifest::read(out)
        .unwrap()
        .files
        .into_iter()
        .map(|f| (f.name, f.blake3))
        .collect()
}

/// The most transactions in one hour (a lower bound on that hour's visitors).
fn busiest_hour(out: &Path) -> usize {
    let mut per_hour = std::collections::HashMap::new();
    for r in csv::Reader::from_path(out.join("transactions.csv"))
        .unwrap()
        .records()
    {
        let r = r.unwrap();
        *per_hour.entry(r[1][..13].to_owned()).or_insert(0usize) += 1;
    }
    per_hour.into_values().max().unwrap_or(0)
}

#[test]
fn every_example_is_checked_parallel_and_the_same_at_1_2_and_4_threads() {
    let examples = examples();
    assert!(
        !examples.is_empty(),
        "scenarios/examples holds the examples' scenarios"
    );
    for scenario in &examples {
        let dir = tempfile::tempdir().unwrap();
        let one = run(scenario, 1, &dir.path().join("t1"));
        let o = bazaar(&["check", dir.path().join("t1").to_str().unwrap()]);
        assert!(o.status.success(), "{}: {:?}", scenario.display(), text(&o));
        let busiest = busiest_hour(&dir.path().join("t1"));
        assert!(
            busiest >= bazaar::systems::shopping::PARALLEL_VISITS as usize,
            "{}: the busiest hour has {busiest} transactions, too few for the parallel path",
            scenario.display()
        );
        assert_eq!(
            one,
            run(scenario, 2, &dir.path().join("t2")),
            "{}",
            scenario.display()
        );
        assert_eq!(
            one,
            run(scenario, 4, &dir.path().join("t4")),
            "{}",
            scenario.display()
        );
    }
}
