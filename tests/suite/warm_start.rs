//! Warm start: a run starts from customers' steady state, so its first days look like the
//! days after them; a cold start (`warm_start: false`) shows the spike of every customer
//! visiting as a first-timer, which is what the warm start removes.

use crate::common;

use common::run_text;

/// No calendar, weekday or budget effects: every day is alike once the run is steady.
fn flat(warm: bool) -> String {
    format!(
        r#"Scenario(
    name: "flat",
    seed: 3,
    start: "2026-03-02",
    days: 42,
    warm_start: {warm},
    catalog: [(name: "rice"), (name: "dal"), (name: "ghee")],
    personas: [
        Persona(
            name: "regular",
            age: (30, 60),
            income: (40000, 90000),
            visits: (
                first_visit: 0.5,
                recency: [(days: 0, p: 0.02), (days: 2, p: 0.12), (days: 6, p: 0.3), (days: 20, p: 0.1)],
            ),
            hours: Slots([("09:00", "21:00")]),
            basket: [
                (category: "rice", p: 0.7, quantity: (1, 3), price: Uniform(60, 120)),
                (category: "dal", p: 0.5, quantity: (1, 2), price: Uniform(90, 160)),
                (category: "ghee", p: 0.1, quantity: (1, 1), price: Uniform(500, 700)),
            ],
        ),
    ],
    population: [(persona: "regular", count: 30000)],
)
"#
    )
}

/// Transactions per day.
fn daily(warm: bool) -> Vec<f64> {
    let (_dir, out) = run_text(&flat(warm), &["--no-report"]);
    let mut r = csv::Reader::from_path(out.join("daily_metrics.csv")).unwrap();
    let tx = r
        .headers()
        .unwrap()
        .iter()
        .position(|c| c == "transactions")
        .unwrap();
    r.records()
        .map(|row| row.unwrap()[tx].parse().unwrap())
        .collect()
}

#[test]
fn a_warm_start_begins_in_the_steady_state_and_a_cold_one_does_not() {
    let steady = |days: &[f64]| days[21..].iter().sum::<f64>() / days[21..].len() as f64;
    let warm = daily(true);
    let level = steady(&warm);
    assert!(level > 2_000.0, "{warm:?}");
    for (d, &n) in warm.iter().enumerate().take(7) {
        assert!(
            (n / level - 1.0).abs() < 0.08,
            "warm day {d}: {n} transactions against a steady {level:.0}: {warm:?}"
        );
    }

    let cold = daily(false);
    assert!(
        cold[0] > 1.5 * steady(&cold),
        "a cold start's first day is a spike: {cold:?}"
    );
    // Both settle to the same steady state.
    assert!((steady(&cold) / level - 1.0).abs() < 0.05);
}

/// Mean loyalty of the active customers on each day, from the aggregates' histograms.
fn mean_loyalty(scenario: &str) -> Vec<f64> {
    let (_dir, out) = run_text(scenario, &["--no-report"]);
    let a: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("aggregates.json")).unwrap()).unwrap();
    a["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let bins: Vec<f64> = d["loyalty"][0]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_f64().unwrap())
                .collect();
            let n: f64 = bins.iter().sum();
            bins.iter()
                .enumerate()
                .map(|(b, c)| (b as f64 + 0.5) / bins.len() as f64 * c)
                .sum::<f64>()
                / n
        })
        .collect()
}

#[test]
fn a_warm_start_takes_loyalty_from_a_burn_in() {
    // Loyalty starts high (0.9 to 1) but decays faster than purchases restore it: the steady
    // state is far lower. A warm start begins there, so loyalty stays level; a cold start
    // begins at `initial` and slides for months.
    let scenario = |warm: bool| {
        flat(warm).replace(
            "            hours: Slots",
            "            loyalty: (initial: (0.9, 1.0), visit_effect: 0.5, gain: 0.02, decay: 0.01),\n            hours: Slots",
        )
    };
    let warm = mean_loyalty(&scenario(true));
    let cold = mean_loyalty(&scenario(false));
    let last = warm.len() - 1;
    assert!(
        (warm[0] - warm[last]).abs() < 0.03,
        "warm: loyalty {:.3} on day 1, {:.3} on day {}",
        warm[0],
        warm[last],
        last + 1
    );
    assert!(
        warm[0] < 0.85,
        "warm day 1 at {:.3} is not the steady state",
        warm[0]
    );
    assert!(
        cold[0] - cold[last] > 0.1,
        "cold: loyalty {:.3} on day 1, {:.3} on day {}",
        cold[0],
        cold[last],
        last + 1
    );
}
