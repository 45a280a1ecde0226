//! Churn and spend: the committed models score like scikit-learn, bad models are refused
//! before anything is written, churn happens at plausible rates, retention offers change the
//! outcome against the same seed without them, and offers that target value lost go to the
//! customers with the most to spend.
//!
//! These tests need ONNX Runtime: from ORT_DYLIB_PATH, Bazaar's cache, or fetched once from
//! PyPI with pip (see src/ml/runtime.rs).

use crate::common;

use std::path::{Path, PathBuf};

use bazaar::ml::model::OnnxModel;
use common::{bazaar, root, text, write};

const PERSONAS: [&str; 5] = [
    "premium",
    "family",
    "young_professional",
    "senior",
    "budget",
];

fn personas() -> Vec<String> {
    PERSONAS.iter().map(|p| (*p).to_owned()).collect()
}

#[test]
fn scores_equal_scikit_learns_on_the_golden_rows() {
    golden("churn");
}

#[test]
fn the_challengers_scores_equal_scikit_learns_on_its_golden_rows() {
    golden("churn_challenger");
}

#[test]
fn spend_predictions_equal_scikit_learns_on_the_golden_rows() {
    golden("spend");
}

/// Bazaar's scores of `models/{name}.json`'s golden rows against scikit-learn's, within
/// 1e-6 for a probability and 1e-5 relative for a predicted amount.
fn golden(name: &str) {
    let mut model = OnnxModel::load(
        &root().join(format!("models/{name}.json")),
        &personas(),
        None,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut reader =
        csv::Reader::from_path(root().join(format!("models/{name}_golden.csv"))).unwrap();
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let names: Vec<String> = model.features.features().iter().map(|f| f.name()).collect();
    assert_eq!(
        &header[..header.len() - 1],
        &names[..],
        "golden columns = model features"
    );
    let mut x = Vec::new();
    let mut expected = Vec::new();
    for row in reader.records() {
        let row = row.unwrap();
        let values: Vec<f64> = row.iter().map(|v| v.parse().unwrap()).collect();
        x.extend(values[..values.len() - 1].iter().map(|&v| v as f32));
        expected.push(values[values.len() - 1]);
    }
    assert!(expected.len() >= 100);
    let mut scores = Vec::new();
    model.score(&x, expected.len(), &mut scores).unwrap();
    let regression = model.spec.kind == bazaar::ml::model::Kind::Regression;
    assert_eq!(regression, name == "spend");
    for (s, e) in scores.iter().zip(&expected) {
        let tolerance = if regression {
            1e-5 * e.abs().max(1.0)
        } else {
            1e-6
        };
        assert!(
            (f64::from(*s) - e).abs() < tolerance,
            "bazaar {s} vs scikit-learn {e}"
        );
    }
}

/// A scenario file in `dir` that includes the shipped pieces and uses `spec` for churn.
fn scenario_with_model(dir: &Path, spec: &Path, mode: &str, scale: f64) -> PathBuf {
    let s = root().join("scenarios");
    let counts: Vec<String> = PERSONAS
        .iter()
        .map(|p| format!("(persona: \"{p}\", count: {})", (2000.0 * scale) as u64))
        .collect();
    let churn = if mode.is_empty() {
        String::new()
    } else {
        format!(
            "churn_model: (spec: \"{}\", every_days: 1, mode: {mode}),",
            spec.display()
        )
    };
    write(
        dir,
        "churn.ron",
        &format!(
            r#"Scenario(
    name: "churn-test", seed: 5, start: "2026-10-20", days: 28,
    catalog: include("{s}/catalogs/india.ron"),
    personas: include("{s}/personas/india.ron"),
    population: [{}],
    calendar: include("{s}/calendars/india.ron"),
    {churn}
)"#,
            counts.join(", "),
            s = s.display()
        ),
    )
}

fn run_summary(scenario: &Path, out: &Path, threads: &str) -> serde_json::Value {
    let o = bazaar(&[
        scenario.to_str().unwrap(),
        "--quiet",
        "--threads",
        threads,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap()
}

/// Copies the shipped model into `dir` with `edit` applied to its description.
fn model_variant(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let models = root().join("models");
    std::fs::copy(models.join("churn.onnx"), dir.join("churn.onnx")).unwrap();
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(models.join("churn.json")).unwrap()).unwrap();
    edit(&mut spec);
    let path = dir.join("churn.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
    path
}

/// Runs a scenario using the model variant and returns stderr, asserting exit 2 and no output.
fn refused(edit: impl FnOnce(&mut serde_json::Value), onnx: Option<&[u8]>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let spec = model_variant(dir.path(), edit);
    if let Some(bytes) = onnx {
        std::fs::write(dir.path().join("churn.onnx"), bytes).unwrap();
    }
    let scenario = scenario_with_model(dir.path(), &spec, "Drive", 0.05);
    let out = dir.path().join("out");
    let o = bazaar(&[
        scenario.to_str().unwrap(),
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(!out.exists(), "nothing written");
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn a_missing_model_description_is_a_located_scenario_error() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = scenario_with_model(dir.path(), &dir.path().join("nowhere.json"), "Drive", 0.05);
    let o = bazaar(&["validate", scenario.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err.contains("churn.ron:") && err.contains("`churn_model.spec`"),
        "{err}"
    );
    assert!(err.contains("no churn model description"), "{err}");
}

#[test]
fn a_missing_onnx_file_is_refused() {
    let err = refused(|s| s["model"] = "gone.onnx".into(), None);
    assert!(
        err.contains("gone.onnx") && err.contains("no such file"),
        "{err}"
    );
}

#[test]
fn a_file_that_is_not_onnx_is_refused() {
    let err = refused(|_| {}, Some(b"certainly not a protobuf"));
    assert!(
        err.contains("churn.onnx") && err.contains("not a model ONNX Runtime can load"),
        "{err}"
    );
}

#[test]
fn a_wrong_input_name_is_refused() {
    let err = refused(|s| s["input"] = "x".into(), None);
    assert!(
        err.contains("input is named `features`, churn.json says `x`"),
        "{err}"
    );
}

#[test]
fn a_feature_count_mismatch_is_refused() {
    let err = refused(
        |s| {
            s["features"].as_array_mut().unwrap().pop();
        },
        None,
    );
    assert!(
        err.contains("takes 16 features per row, churn.json lists 15"),
        "{err}"
    );
}

#[test]
fn an_output_that_is_not_a_probability_is_refused() {
    let err = refused(|s| s["output"] = "label".into(), None);
    assert!(
        err.contains("output `label`") && err.contains("not float32 probabilities"),
        "{err}"
    );
    let err = refused(|s| s["output"] = "scores".into(), None);
    assert!(err.contains("no output named `scores`"), "{err}");
}

#[test]
fn an_unknown_feature_is_refused() {
    let err = refused(|s| s["features"][0] = "shoe_size".into(), None);
    assert!(err.contains("unknown feature `shoe_size`"), "{err}");
}

#[test]
fn a_model_driven_run_loses_customers_at_plausible_rates() {
    let dir = tempfile::tempdir().unwrap();
    let spec = root().join("models/churn.json");
    let scenario = scenario_with_model(dir.path(), &spec, "Drive", 1.0);
    let summary = run_summary(&scenario, &dir.path().join("out"), "2");
    for p in summary["personas"].as_array().unwrap() {
        let churned = p["totals"]["churned"].as_u64().unwrap() as f64;
        let rate = churned / p["customers"].as_u64().unwrap() as f64;
        // Over 28 days: some churn, but not an exodus.
        assert!((0.002..0.25).contains(&rate), "{}: {rate}", p["persona"]);
    }
    let (_, events) = {
        let mut r = csv::Reader::from_path(dir.path().join("out/churn_events.csv")).unwrap();
        let h = r.headers().unwrap().clone();
        (h, r.records().map(Result::unwrap).collect::<Vec<_>>())
    };
    assert!(!events.is_empty());
    assert!(events.iter().all(|e| e.get(4) == Some("model")));
}

#[test]
fn retention_offers_change_the_outcome_against_the_same_seed() {
    let dir = tempfile::tempdir().unwrap();
    let spec = root().join("models/churn.json");
    let with = scenario_with_model(
        dir.path(),
        &spec,
        "Retain(top_k: 400, cost: 150, loyalty_boost: 0.5, cooldown_days: 14)",
        1.0,
    );
    let with = run_summary(&with, &dir.path().join("with"), "2");
    let without = scenario_with_model(dir.path(), &spec, "", 1.0);
    let without = run_summary(&without, &dir.path().join("without"), "2");
    let offers = with["totals"]["offers"].as_u64().unwrap();
    assert!(offers > 1_000, "{offers}");
    assert_eq!(without["totals"]["offers"], 0);
    assert_eq!(
        with["totals"]["offer_cost_paise"].as_i64().unwrap(),
        offers as i64 * 15_000
    );
    let churned_with = with["totals"]["churned"].as_u64().unwrap();
    let churned_without = without["totals"]["churned"].as_u64().unwrap();
    assert!(
        churned_with < churned_without,
        "offers should keep customers: {churned_with} vs {churned_without}"
    );
    assert_ne!(
        with["totals"]["revenue_paise"],
        without["totals"]["revenue_paise"]
    );
}

/// Each persona's share of the run's retention offers.
fn offer_shares(summary: &serde_json::Value) -> Vec<(String, f64)> {
    let all = summary["totals"]["offers"].as_f64().unwrap();
    summary["personas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let offers = p["totals"]["offers"].as_f64().unwrap();
            (p["persona"].as_str().unwrap().to_owned(), offers / all)
        })
        .collect()
}

#[test]
fn offers_that_target_value_lost_go_to_the_biggest_spenders() {
    let dir = tempfile::tempdir().unwrap();
    let spec = root().join("models/churn.json");
    let spend = root().join("models/spend.json");
    let retain = "Retain(top_k: 100, cost: 150, loyalty_boost: 0.5, cooldown_days: 14";
    let by_risk = scenario_with_model(dir.path(), &spec, &format!("{retain})"), 0.5);
    let by_risk = run_summary(&by_risk, &dir.path().join("risk"), "2");
    let by_value = scenario_with_model(
        dir.path(),
        &spec,
        &format!(
            "{retain}, target: ValueLost), spend: (spec: \"{}\", every_days: 7)",
            spend.display()
        ),
        0.5,
    );
    let by_value = run_summary(&by_value, &dir.path().join("value"), "2");
    // The same number of offers (top-k binds every day), given to other customers: the
    // premium persona, which spends the most, gets more of them.
    assert_eq!(by_risk["totals"]["offers"], by_value["totals"]["offers"]);
    let share = |s: &serde_json::Value| {
        offer_shares(s)
            .into_iter()
            .find(|(p, _)| p == "premium")
            .unwrap()
            .1
    };
    let (risk, value) = (share(&by_risk), share(&by_value));
    assert!(
        value > risk + 0.2,
        "premium's share of offers: {risk} by risk, {value} by value"
    );
}

#[test]
fn a_spend_model_must_be_a_regressor_and_value_targeting_needs_one() {
    let dir = tempfile::tempdir().unwrap();
    let spec = root().join("models/churn.json");
    let run = |mode: &str| {
        let scenario = scenario_with_model(dir.path(), &spec, mode, 0.05);
        let out = dir.path().join("out");
        let o = bazaar(&[
            scenario.to_str().unwrap(),
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ]);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(!out.exists(), "nothing written");
        err
    };
    let err = run("Retain(top_k: 10, cost: 1, loyalty_boost: 0.1, target: ValueLost)");
    assert!(err.contains("churn.ron:"), "located: {err}");
    assert!(
        err.contains("offers that target value lost need a spend model"),
        "{err}"
    );
    let err = run(&format!(
        "Retain(top_k: 10, cost: 1, loyalty_boost: 0.1, target: ValueLost), spend: (spec: \"{}\")",
        spec.display()
    ));
    assert!(
        err.contains("a Regression model is wanted here, the card says Classification"),
        "{err}"
    );
}

#[test]
fn churn_scoring_is_deterministic_across_threads() {
    let dir = tempfile::tempdir().unwrap();
    let spec = root().join("models/churn.json");
    let scenario = scenario_with_model(dir.path(), &spec, "Drive", 0.5);
    run_summary(&scenario, &dir.path().join("a"), "1");
    run_summary(&scenario, &dir.path().join("b"), "2");
    for file in [
        "churn_events.csv",
        "customers.csv",
        "transactions.csv",
        "daily_metrics.csv",
    ] {
        let a = std::fs::read(dir.path().join("a").join(file)).unwrap();
        let b = std::fs::read(dir.path().join("b").join(file)).unwrap();
        assert!(a == b, "{file} differs between 1 and 2 threads");
    }
}

#[test]
fn the_training_table_has_honest_labels_and_only_complete_horizons() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t");
    let o = bazaar(&[
        "scenarios/quick.ron",
        "--scale",
        "5",
        "--quiet",
        "--features",
        "--snapshot-every",
        "2",
        "--horizon",
        "3",
        "--spend-horizon",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    // What each customer spent on each day, in paise, from the transactions.
    let mut spent = std::collections::HashMap::<(String, i64), i64>::new();
    let mut r = csv::Reader::from_path(out.join("transactions.csv")).unwrap();
    for t in r.records() {
        let t = t.unwrap();
        let day: chrono::NaiveDate = t.get(1).unwrap()[..10].parse().unwrap();
        let day = (day - "2026-11-04".parse::<chrono::NaiveDate>().unwrap()).num_days();
        let (whole, cents) = t.get(4).unwrap().split_once('.').unwrap();
        let paise = whole.parse::<i64>().unwrap() * 100 + cents.parse::<i64>().unwrap();
        *spent
            .entry((t.get(2).unwrap().to_owned(), day))
            .or_default() += paise;
    }
    // Churn day of every customer who left, from the customer table (start 2026-11-04).
    let start: chrono::NaiveDate = "2026-11-04".parse().unwrap();
    let mut churn_day = std::collections::HashMap::new();
    let mut r = csv::Reader::from_path(out.join("customers.csv")).unwrap();
    for c in r.records() {
        let c = c.unwrap();
        if let Some(d) = c.get(12).filter(|d| !d.is_empty()) {
            let d: chrono::NaiveDate = d.parse().unwrap();
            churn_day.insert(c.get(0).unwrap().to_owned(), (d - start).num_days());
        }
    }
    assert!(
        !churn_day.is_empty(),
        "some customers churn in a week at this scale"
    );
    let mut r = csv::Reader::from_path(out.join("features.csv")).unwrap();
    let header = r.headers().unwrap().clone();
    assert_eq!(header.get(0), Some("customer_id"));
    assert_eq!(header.get(header.len() - 1), Some("label"));
    let mut days = std::collections::BTreeSet::new();
    let mut positives = 0;
    let mut spenders = 0;
    for row in r.records() {
        let row = row.unwrap();
        let day: i64 = row.get(1).unwrap().parse().unwrap();
        days.insert(day);
        let churned = churn_day.get(row.get(0).unwrap()).copied();
        // Only customers still active at the snapshot are in the table ...
        assert!(churned.is_none_or(|c| c > day), "{row:?}");
        // ... and the label is exactly "churned within the next 3 days".
        let label = row.get(header.len() - 1).unwrap();
        let expected = churned.is_some_and(|c| c <= day + 3);
        assert_eq!(label == "1", expected, "{row:?}");
        // ... and `spend_next` is what the customer spent in the 2 days after.
        assert_eq!(header.get(header.len() - 2), Some("spend_next"));
        let next: i64 = (day + 1..=day + 2)
            .map(|d| {
                spent
                    .get(&(row.get(0).unwrap().to_owned(), d))
                    .copied()
                    .unwrap_or(0)
            })
            .sum();
        let written = row.get(header.len() - 2).unwrap();
        assert_eq!(
            written,
            format!("{}.{:02}", next / 100, next % 100),
            "{row:?}"
        );
        spenders += usize::from(next > 0);
        positives += usize::from(expected);
    }
    // 7 days: snapshots at the end of days 1 and 3 (day 5's horizon would pass the end).
    assert_eq!(days.into_iter().collect::<Vec<_>>(), vec![1, 3]);
    assert!(positives > 0 && spenders > 0);
    let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    assert!(manifest.contains("features.csv") && !out.join("features.partial").exists());
    assert!(!out.join("spend.partial").exists());
}

/// On a fresh machine several runs may fetch ONNX Runtime at once (this file's own tests do);
/// each must end with a whole library in place, none with one another run truncated.
#[test]
fn simultaneous_first_fetches_all_succeed() {
    use std::process::{Command, Stdio};
    let cache = tempfile::tempdir().unwrap();
    let children: Vec<_> = (0..3)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_bazaar"))
                .args(["scenarios/diwali.ron", "--quiet", "--days", "1", "--out"])
                .arg(cache.path().join(format!("out{i}")))
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .env("BAZAAR_CACHE_DIR", cache.path())
                .env_remove("ORT_DYLIB_PATH")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("the bazaar binary starts")
        })
        .collect();
    for child in children {
        let o = child.wait_with_output().unwrap();
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{err}");
    }
    let dir = cache
        .path()
        .join(format!("onnxruntime-{}", bazaar::ml::runtime::ORT_VERSION));
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left.len(), 1, "only the library, no temporary: {left:?}");
    assert!(left[0].contains("onnxruntime"), "{left:?}");
}
