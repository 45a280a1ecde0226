//! Drift monitoring: Bazaar's PSI, KS statistic and Jensen-Shannon distance equal
//! Evidently's (installed from PyPI into a virtual environment on first need) on the same
//! data, and a run with a model that keeps a training reference writes a `drift` table of
//! every scoring and names the drift in its log.

use crate::common;

use std::process::Command;

use common::{bazaar, root, text};

/// The churn card's reference quantiles, by feature, and the card's feature order.
fn churn_reference() -> (serde_json::Value, Vec<String>) {
    let card: serde_json::Value = common::json(&root().join("models/churn.json"));
    let names = card["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_owned())
        .collect();
    (card["reference"].clone(), names)
}

#[test]
fn psi_ks_and_js_equal_evidentlys_on_the_same_data() {
    let Some(python) = common::python_with(
        "evidently-venv",
        "import evidently.legacy.calculations.stattests, scipy",
    ) else {
        return;
    };
    // Today's data: the features of a small run's customers (another world than the one
    // the reference was taken from, so every figure is well above zero somewhere).
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = bazaar(&[
        "scenarios/quick.ron",
        "--quiet",
        "--features",
        "--snapshot-every",
        "2",
        "--horizon",
        "3",
        "--no-report",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let mut reader = csv::Reader::from_path(out.join("features.csv")).unwrap();
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert!(rows.len() > 1000);
    let (reference, names) = churn_reference();
    let mut pairs = Vec::new();
    let mut ours = Vec::new();
    let mut summarised = 0;
    for name in &names {
        let column = header.iter().position(|h| h == name).unwrap();
        let current: Vec<f64> = rows
            .iter()
            .map(|r| f64::from(r[column].parse::<f32>().unwrap()))
            .collect();
        let quantiles: Vec<f64> = reference["features"][name]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        ours.push(bazaar::ml::drift::drift(&quantiles, &current));
        // By value only when reference and today together hold at most 20 distinct values.
        let values = |xs: &[f64]| -> std::collections::BTreeSet<u64> {
            xs.iter().map(|x| (x + 0.0).to_bits()).collect()
        };
        let reference_values = values(&quantiles);
        let mut all = reference_values.clone();
        all.extend(values(&current));
        let numeric = all.len() > 20;
        assert_eq!(
            numeric,
            !bazaar::ml::drift::is_categorical(&quantiles, &current),
            "{name}"
        );
        summarised += usize::from(numeric && reference_values.len() <= 20);
        pairs.push(
            serde_json::json!({"reference": quantiles, "current": current, "numeric": numeric}),
        );
    }
    let input = dir.path().join("pairs.json");
    std::fs::write(&input, serde_json::to_vec(&pairs).unwrap()).unwrap();
    let o = Command::new(&python)
        .arg(root().join("tests/python/drift_evidently.py"))
        .arg(&input)
        .output()
        .unwrap();
    assert!(o.status.success(), "{:?}", text(&o));
    let theirs: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0);
    let mut moved = 0;
    for ((name, d), e) in names.iter().zip(&ours).zip(&theirs) {
        let (psi, js, ks) = (
            e["psi"].as_f64().unwrap(),
            e["js"].as_f64().unwrap(),
            e["ks"].as_f64().unwrap(),
        );
        assert!(
            close(d.psi, psi),
            "{name}: PSI {} against Evidently's {psi}",
            d.psi
        );
        assert!(
            close(d.js, js),
            "{name}: JS {} against Evidently's {js}",
            d.js
        );
        assert!(close(d.ks, ks), "{name}: KS {} against scipy's {ks}", d.ks);
        moved += usize::from(d.psi > 0.01);
    }
    assert!(moved >= 3, "the test data moved several features: {ours:?}");
    assert!(
        summarised >= 1,
        "a feature with a point mass (few distinct quantiles, many values) is among them"
    );
}

#[test]
fn a_run_writes_the_drift_of_every_scoring_and_logs_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = Command::new(env!("CARGO_BIN_EXE_bazaar"))
        .args([
            "scenarios/diwali.ron",
            "--scale",
            "0.1",
            "--no-report",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .current_dir(root())
        .env("RUST_LOG", "bazaar=info")
        .output()
        .unwrap();
    let (_, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let (_, names) = churn_reference();
    let mut reader = csv::Reader::from_path(out.join("drift.csv")).unwrap();
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header,
        ["date", "model", "feature", "psi", "ks", "js", "drifted"]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    // diwali.ron scores churn weekly: 4 scorings in 30 days, each every feature and the score.
    let dates: std::collections::BTreeSet<&str> = rows.iter().map(|r| &r[0]).collect();
    assert_eq!(dates.len(), 4, "{dates:?}");
    assert_eq!(rows.len(), 4 * (names.len() + 1));
    for r in &rows {
        assert_eq!(&r[1], "churn");
        let psi: f64 = r[3].parse().unwrap();
        let ks: f64 = r[4].parse().unwrap();
        let js: f64 = r[5].parse().unwrap();
        assert!(
            psi >= 0.0 && (0.0..=1.0).contains(&ks) && (0.0..=1.0).contains(&js),
            "{r:?}"
        );
        let drifted = psi >= 0.1 || ks >= 0.1 || js >= 0.1;
        assert_eq!(&r[6], if drifted { "true" } else { "false" }, "{r:?}");
    }
    // The logged drift names the scoring day and what moved.
    let drifted_days: Vec<&str> = dates
        .iter()
        .copied()
        .filter(|d| {
            let moved = rows
                .iter()
                .filter(|r| &r[0] == *d && &r[6] == "true")
                .count();
            moved * 2 >= names.len()
        })
        .collect();
    for d in &drifted_days {
        assert!(
            err.lines()
                .any(|l| l.contains("drift: churn model") && l.contains(d)),
            "{d} drifted but the log does not say so: {err}"
        );
    }
    // drift.json holds the same figures, and the report gains a section drawn from it.
    let json: serde_json::Value = common::json(&out.join("drift.json"));
    let scorings = json["scorings"].as_array().unwrap();
    assert_eq!(scorings.len(), 4);
    let first = &scorings[0]["figures"][0];
    assert_eq!(first[0], names[0].as_str());
    let psi = first[1]["psi"].as_f64().unwrap();
    assert!((psi - rows[0][3].parse::<f64>().unwrap()).abs() < 1e-12);
    // daily_metrics carries each scoring day's score PSI and drifted features, 0 between.
    let mut daily = csv::Reader::from_path(out.join("daily_metrics.csv")).unwrap();
    let header = daily.headers().unwrap().clone();
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (psi_at, count_at) = (column("churn_score_psi"), column("churn_drifted_features"));
    let mut scored = 0;
    for r in daily.records().map(Result::unwrap) {
        let score = rows.iter().find(|d| d[0] == r[0] && &d[2] == "score");
        let count = rows
            .iter()
            .filter(|d| d[0] == r[0] && &d[2] != "score" && &d[6] == "true")
            .count();
        let psi: f64 = r[psi_at].parse().unwrap();
        match score {
            Some(d) => {
                scored += 1;
                assert!((psi - d[3].parse::<f64>().unwrap()).abs() < 1e-12, "{r:?}");
            }
            None => assert_eq!(psi, 0.0, "{r:?}"),
        }
        assert_eq!(r[count_at].parse::<usize>().unwrap(), count, "{r:?}");
    }
    assert_eq!(scored, 4 * 5, "four scorings, a row per persona");
    let o = bazaar(&["report", out.to_str().unwrap()]);
    assert!(o.status.success(), "{:?}", text(&o));
    let page = std::fs::read_to_string(out.join("report.html")).unwrap();
    let section = &page[page.find("<h2>Model drift</h2>").expect("a drift section")..];
    let drifted = scorings.iter().filter(|s| s["drifted"] == true).count();
    assert!(drifted >= drifted_days.len());
    assert!(
        section.contains(&format!("{drifted} of 4 scorings drifted")),
        "{section}"
    );
    assert!(section.contains("churn model: PSI by scoring"), "a chart");
}

#[test]
fn the_shipped_drift_scenario_moves_the_churn_models_scores_after_its_shock() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = bazaar(&[
        "scenarios/drift.ron",
        "--scale",
        "0.2",
        "--no-report",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let json: serde_json::Value = common::json(&out.join("drift.json"));
    // The churn model's score PSI at each weekly scoring, before and after the shock of
    // 19 November (its lead-in from the 16th).
    let mut before = Vec::new();
    let mut after = Vec::new();
    for s in json["scorings"].as_array().unwrap() {
        if s["model"] != "churn" {
            continue;
        }
        let psi = s["figures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f[0] == "score")
            .unwrap()[1]["psi"]
            .as_f64()
            .unwrap();
        let date = s["date"].as_str().unwrap();
        if date < "2026-11-16" {
            before.push(psi);
        } else if date > "2026-11-30" {
            after.push(psi);
        }
    }
    assert_eq!((before.len(), after.len()), (3, 2), "{before:?} {after:?}");
    let calm = before.iter().copied().fold(0.0, f64::max);
    let shocked = after.iter().copied().fold(f64::INFINITY, f64::min);
    assert!(
        shocked > 0.1 && shocked > 2.0 * calm,
        "score PSI {before:?} then {after:?}"
    );
}
