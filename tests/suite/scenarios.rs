//! Every scenario shipped in scenarios/ validates and runs (scaled down), and its outputs are
//! consistent with one another.

use crate::common;

use std::collections::HashSet;

use common::{bazaar, root, text};

fn shipped() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root().join("scenarios"))
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            let name = p.file_name()?.to_str()?.to_owned();
            (p.extension()? == "ron").then(|| format!("scenarios/{name}"))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn the_main_scenarios_are_shipped() {
    let s = shipped();
    for name in [
        "scenarios/diwali.ron",
        "scenarios/quick.ron",
        "scenarios/seed_parity.ron",
    ] {
        assert!(s.iter().any(|x| x == name), "{name} missing from {s:?}");
    }
}

#[test]
fn every_scenario_validates() {
    for s in shipped() {
        let out = bazaar(&["validate", &s]);
        assert!(out.status.success(), "{s}: {:?}", text(&out));
    }
}

#[test]
fn every_scenario_runs_scaled_down() {
    let dir = tempfile::tempdir().unwrap();
    for s in shipped() {
        let out_dir = dir.path().join(s.replace('/', "_"));
        let out = bazaar(&[
            &s,
            "--scale",
            "0.02",
            "--days",
            "3",
            "--quiet",
            "--out",
            out_dir.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{s}: {:?}", text(&out));
        let summary: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out_dir.join("summary.json")).unwrap()).unwrap();
        assert_eq!(summary["days"], 3, "{s}");
        assert!(
            summary["totals"]["transactions"].as_u64().unwrap() > 0,
            "{s}"
        );
    }
}

fn read_csv(path: &std::path::Path) -> (Vec<String>, Vec<csv::StringRecord>) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header = r.headers().unwrap().iter().map(str::to_owned).collect();
    let rows = r.records().map(Result::unwrap).collect();
    (header, rows)
}

fn paise(s: &str) -> i64 {
    let (whole, frac) = s.split_once('.').expect("two decimals");
    assert_eq!(frac.len(), 2, "{s}");
    whole.parse::<i64>().unwrap() * 100 + frac.parse::<i64>().unwrap()
}

#[test]
fn outputs_agree_with_each_other_and_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("quick");
    let out = bazaar(&[
        "scenarios/quick.ron",
        "--quiet",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{:?}", text(&out));

    let (_, txs) = read_csv(&out_dir.join("transactions.csv"));
    let (_, lines) = read_csv(&out_dir.join("line_items.csv"));
    let (_, customers) = read_csv(&out_dir.join("customers.csv"));
    let (_, daily) = read_csv(&out_dir.join("daily_metrics.csv"));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("summary.json")).unwrap()).unwrap();

    // Ids are unique; timestamps are inside the scenario window and in order within an hour.
    let ids: HashSet<&str> = txs.iter().map(|r| r.get(0).unwrap()).collect();
    assert_eq!(ids.len(), txs.len());
    for r in &txs {
        let ts = r.get(1).unwrap();
        assert!(("2026-11-04".."2026-11-11").contains(&&ts[..10]), "{ts}");
    }

    // Line totals add up to basket totals; quantity x unit price = line total.
    let mut by_tx = std::collections::HashMap::<&str, i64>::new();
    for l in &lines {
        let q: i64 = l.get(3).unwrap().parse().unwrap();
        assert!(q >= 1);
        assert_eq!(q * paise(l.get(4).unwrap()), paise(l.get(5).unwrap()));
        *by_tx.entry(l.get(0).unwrap()).or_default() += paise(l.get(5).unwrap());
    }
    let mut revenue = 0;
    for t in &txs {
        let total = paise(t.get(4).unwrap());
        assert!(total > 0);
        assert_eq!(
            by_tx[t.get(0).unwrap()],
            total,
            "transaction {}",
            t.get(0).unwrap()
        );
        revenue += total;
    }

    // Daily metrics and summary agree with the transaction log.
    let daily_tx: u64 = daily
        .iter()
        .map(|r| r.get(7).unwrap().parse::<u64>().unwrap())
        .sum();
    let daily_rev: i64 = daily.iter().map(|r| paise(r.get(8).unwrap())).sum();
    assert_eq!(daily_tx, txs.len() as u64);
    assert_eq!(daily_rev, revenue);
    assert_eq!(summary["totals"]["transactions"], txs.len() as u64);
    assert_eq!(summary["totals"]["revenue_paise"], revenue);
    assert_eq!(daily.len(), 7 * 5, "one row per day and persona");

    // Churn: events, daily counts and customers' churn dates agree.
    let (_, churn) = read_csv(&out_dir.join("churn_events.csv"));
    let daily_churned: u64 = daily
        .iter()
        .map(|r| r.get(4).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(daily_churned, churn.len() as u64);
    let churned_on = customers
        .iter()
        .filter(|r| !r.get(12).unwrap().is_empty())
        .count();
    assert_eq!(churned_on, churn.len());
    assert_eq!(summary["totals"]["churned"], churn.len() as u64);

    // Customers: every one listed once, purchases and spend match the log.
    assert_eq!(customers.len(), 2_000);
    let spent: i64 = customers.iter().map(|r| paise(r.get(9).unwrap())).sum();
    let purchases: u64 = customers
        .iter()
        .map(|r| r.get(8).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(spent, revenue);
    assert_eq!(purchases, txs.len() as u64);
    for c in &customers {
        let left = c.get(5).unwrap();
        if !left.is_empty() {
            assert!(paise(left) >= 0, "budgets never go negative");
        }
    }

    // The manifest lists every file with its row count and hash.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("manifest.json")).unwrap()).unwrap();
    for f in manifest["files"].as_array().unwrap() {
        let name = f["name"].as_str().unwrap();
        let bytes = std::fs::read(out_dir.join(name)).unwrap();
        assert_eq!(f["bytes"], bytes.len() as u64, "{name}");
        assert_eq!(
            f["blake3"],
            blake3::hash(&bytes).to_hex().to_string(),
            "{name}"
        );
        if name.ends_with(".csv") {
            let rows = bytes.iter().filter(|&&b| b == b'\n').count() as u64 - 1;
            assert_eq!(f["rows"], rows, "{name}");
        }
    }
}

#[test]
fn a_rerun_replaces_its_own_output_but_never_a_users_folder() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("run");
    let args = |seed: &'static str| {
        vec![
            "scenarios/quick.ron".to_owned(),
            "--quiet".into(),
            "--days".into(),
            "1".into(),
            "--seed".into(),
            seed.into(),
            "--out".into(),
            out_dir.to_str().unwrap().to_owned(),
        ]
    };
    let run = |a: Vec<String>| bazaar(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(run(args("1")).status.success());
    let first = std::fs::read(out_dir.join("transactions.csv")).unwrap();
    assert!(run(args("2")).status.success());
    assert_ne!(
        first,
        std::fs::read(out_dir.join("transactions.csv")).unwrap()
    );

    let mine = dir.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("thesis.txt"), "precious").unwrap();
    let o = bazaar(&[
        "scenarios/quick.ron",
        "--quiet",
        "--out",
        mine.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("refusing to replace"), "{:?}", text(&o));
    assert_eq!(
        std::fs::read_to_string(mine.join("thesis.txt")).unwrap(),
        "precious"
    );
    // The folders and their lock files (which stay, so two runs never lock two files).
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| !n.to_string_lossy().ends_with(".lock"))
        .collect();
    assert_eq!(
        leftovers.len(),
        2,
        "no temporary folder left behind: {leftovers:?}"
    );
}

#[test]
fn cli_overrides_and_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("o");
    let out = bazaar(&[
        "run",
        "scenarios/quick.ron",
        "--days",
        "2",
        "--scale",
        "0.5",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("quick: 1,000 customers, 2 days (2026-11-04 to 2026-11-05)"),
        "{stdout}"
    );
    assert!(stdout.contains("Premium Shopper"), "{stdout}");
    assert!(stdout.contains("Rs "), "{stdout}");
    let bad = bazaar(&["scenarios/quick.ron", "--scale", "-1"]);
    assert_eq!(bad.status.code(), Some(2));
    let none = bazaar(&[]);
    assert_eq!(none.status.code(), Some(2));
    let systems = bazaar(&["systems"]);
    assert!(text(&systems).0.contains("daily_log"));
}

#[test]
fn an_absurd_population_is_refused_before_anything_is_allocated() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("o");
    let o = bazaar(&[
        "scenarios/quick.ron",
        "--scale",
        "1000000",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("customers need about") && err.contains("MiB available"),
        "{err}"
    );
    assert!(err.contains("hint: lower --scale"), "{err}");
    assert!(!out_dir.exists());
    let o = bazaar(&[
        "scenarios/quick.ron",
        "--scale",
        "3000000",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o)
            .1
            .contains("more than the 4294967295 one run supports"),
        "{:?}",
        text(&o)
    );
}
