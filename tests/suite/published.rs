//! Against published figures: the shipped festive scenarios reproduce, within 10%, the
//! festival-season figures their `published` lists name (Worldline's and Pine Labs' card
//! data, Mastercard's estimates), and the report says so figure by figure.

use crate::common;

use common::{bazaar, root, run_file, text};
use serde_json::Value;

/// Runs a shipped scenario (with its report) and returns its published outcomes, and the
/// report's page followed by its insights.
fn outcomes(scenario: &str) -> (Vec<Value>, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    run_file(&root().join("scenarios").join(scenario), &out, &[]);
    let aggregates: Value =
        serde_json::from_slice(&std::fs::read(out.join("aggregates.json")).unwrap()).unwrap();
    let mut page = std::fs::read_to_string(out.join("report.html")).unwrap();
    page.push_str(&std::fs::read_to_string(out.join("insights.md")).unwrap());
    assert_eq!(
        aggregates["settled_from"], 0,
        "a warm start is settled from day 1"
    );
    (aggregates["published"].as_array().unwrap().clone(), page)
}

/// The outcome of figure `name`.
fn outcome<'a>(outcomes: &'a [Value], name: &str) -> &'a Value {
    outcomes
        .iter()
        .find(|o| o["name"] == name)
        .unwrap_or_else(|| panic!("no figure {name}"))
}

/// Asserts figure `name` is met and its simulated uplift is in `band`.
fn holds(outcomes: &[Value], name: &str, band: (f64, f64)) {
    let o = outcome(outcomes, name);
    let simulated = o["simulated"].as_f64().unwrap();
    assert!(
        o["met"] == true && simulated >= band.0 && simulated <= band.1,
        "{name}: simulated {simulated:+.4}, published band {band:?}: {o}"
    );
}

/// Worldline: +32% card transactions and +37% value on Diwali and Dhanteras days.
fn holds_worldline(outcomes: &[Value]) {
    holds(
        outcomes,
        "Card transactions on Diwali and Dhanteras days",
        (0.288, 0.352),
    );
    holds(
        outcomes,
        "Card spending on Diwali and Dhanteras days",
        (0.333, 0.407),
    );
}

#[test]
fn diwali_reproduces_the_published_diwali_figures() {
    let (o, page) = outcomes("diwali.ron");
    assert_eq!(o.len(), 4);
    holds_worldline(&o);
    // Mastercard: Dhanteras jewellery +400% (at 100,000 customers a dozen purchases: the
    // figure is met with this seed, not robustly; see the calendar's comment).
    holds(&o, "Jewellery spending on Dhanteras", (3.6, 4.4));
    // Mastercard: groceries and confectionery over +50% during Diwali.
    holds(
        &o,
        "Groceries and confectionery during Diwali",
        (0.45, f64::INFINITY),
    );
    assert!(page.contains("<h2>Against published figures</h2><p>4 of 4 figures met."));
    assert!(page.contains("Worldline India card data"));
    // Insights say nothing a reader cannot trust: what budgets allowed is never overspent.
    let budget = page
        .lines()
        .find(|l| l.contains("of the money their budgets held"))
        .expect("a budget insight");
    let used: f64 = budget
        .split(" spent ")
        .nth(1)
        .and_then(|r| r.split('%').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(used > 0.0 && used <= 100.0, "{budget}");
}

#[test]
fn the_festive_season_reproduces_shraadh_navratri_and_diwali() {
    let (o, page) = outcomes("festive_season.ron");
    // Pine Labs: the shraadh fortnight cuts spending 4-5%; Navratri adds about 5%.
    holds(
        &o,
        "Spending during the shraadh fortnight",
        (-0.055, -0.036),
    );
    holds(&o, "Spending during Navratri", (0.045, 0.055));
    holds_worldline(&o);
    holds(
        &o,
        "Groceries and confectionery during Diwali",
        (0.45, f64::INFINITY),
    );
    // The jewellery figure is reported, met or not: here it misses, and the report says so.
    let jewellery = outcome(&o, "Jewellery spending on Dhanteras");
    let met = o.iter().filter(|o| o["met"] == true).count();
    assert_eq!(met, 5 + usize::from(jewellery["met"] == true));
    assert!(page.contains(&format!("{met} of 6 figures met.")));
    assert!(page.contains("Pine Labs card data"));
}

#[test]
fn a_figure_names_events_of_the_calendar() {
    let dir = tempfile::tempdir().unwrap();
    let text_of = std::fs::read_to_string(root().join("scenarios/diwali.ron"))
        .unwrap()
        .replace(
            "include(\"",
            &format!("include(\"{}/scenarios/", root().display()),
        )
        .replace(
            "\"../models/churn.json\"",
            &format!("\"{}/models/churn.json\"", root().display()),
        )
        .replace(r#"days: ["Dhanteras"]"#, r#"days: ["Dhanteras "]"#);
    let path = common::write(dir.path(), "diwali.ron", &text_of);
    let o = bazaar(&["validate", path.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("no calendar event is named `Dhanteras `")
            && err.contains("did you mean `Dhanteras`?"),
        "{err}"
    );
}

#[test]
fn a_cold_start_marks_its_first_days_as_not_yet_settled() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    run_file(&root().join("scenarios/seed_parity.ron"), &out, &[]);
    let aggregates: Value =
        serde_json::from_slice(&std::fs::read(out.join("aggregates.json")).unwrap()).unwrap();
    let settled = aggregates["settled_from"].as_u64().unwrap();
    let days = aggregates["days"].as_array().unwrap().len() as u64;
    // Every customer of a cold start is new on day 1: those days are not a steady state.
    assert!(
        settled >= 1 && settled <= days / 2,
        "settled from day {settled} of {days}"
    );
}
