//! Budgets behave like people's: a month's spending does not fall off a cliff before payday.
//! Customers whose shopping would outrun their month pace it: needs come out of whatever is
//! left, wants only out of a trip's share of the month, so ordinary days of one month see the
//! same spending and the only bump is the payday effect the calendar asks for.

use crate::common;

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use common::{paise, run_text};

/// No weekday, season or event effects; a payday effect of +6% traffic on days 1 to 4; a
/// persona whose baskets would cost about one and a half times its budget, its needs about
/// two thirds of it.
const SCENARIO: &str = r#"Scenario(
    name: "paced",
    seed: 5,
    start: "2026-02-01",
    end: "2026-04-30",
    catalog: [(name: "rice"), (name: "dal"), (name: "snacks"), (name: "jewellery")],
    personas: [
        Persona(
            name: "salaried",
            age: (25, 60),
            income: (20000, 30000),
            visits: (
                first_visit: 0.5,
                recency: [(days: 0, p: 0.05), (days: 2, p: 0.2), (days: 5, p: 0.35), (days: 15, p: 0.2)],
            ),
            hours: Slots([("09:00", "21:00")]),
            basket: [
                (category: "rice", p: 0.8, quantity: (1, 3), price: Uniform(60, 120)),
                (category: "dal", p: 0.6, quantity: (1, 2), price: Uniform(90, 160)),
                (category: "snacks", p: 0.5, quantity: (1, 4), price: Uniform(20, 80)),
                (category: "jewellery", p: 0.05, quantity: (1, 1), price: Uniform(3000, 9000)),
            ],
            budget: (income_share: 0.1, payday: 1, exhausted_visit_factor: 0.4,
                     needs: ["rice", "dal"], priority: ["snacks"]),
        ),
    ],
    population: [(persona: "salaried", count: 20000)],
    calendar: (payday: (day: 1, days: 4, effect: (traffic: 1.06))),
)
"#;

/// Revenue by day, and transactions and budget-trimmed baskets in all, of a run of
/// `scenario`.
fn run(scenario: &str) -> (BTreeMap<NaiveDate, i64>, u64, u64) {
    let (_dir, out) = run_text(scenario, &["--no-report"]);
    let mut revenue: BTreeMap<NaiveDate, i64> = BTreeMap::new();
    let (mut transactions, mut trimmed) = (0u64, 0u64);
    for row in csv::Reader::from_path(out.join("daily_metrics.csv"))
        .unwrap()
        .deserialize::<BTreeMap<String, String>>()
    {
        let row = row.unwrap();
        let date: NaiveDate = row["date"].parse().unwrap();
        *revenue.entry(date).or_default() += paise(&row["revenue"]);
        transactions += row["transactions"].parse::<u64>().unwrap();
        trimmed += row["budget_trimmed"].parse::<u64>().unwrap();
    }
    (revenue, transactions, trimmed)
}

#[test]
fn ordinary_days_of_a_month_spend_alike() {
    let (revenue, transactions, trimmed) = run(SCENARIO);

    // The budgets bind: without pacing, this population runs dry weeks before payday.
    assert!(
        trimmed * 10 > transactions,
        "only {trimmed} of {transactions} baskets met the budget: the test would not test pacing"
    );

    // Ordinary days (after the payday effect's four days), in three blocks per month: each
    // block's mean daily revenue within the payday effect (6%) of every other's.
    for month in 2..=4u32 {
        let block = |days: std::ops::RangeInclusive<u32>| {
            let v: Vec<i64> = revenue
                .iter()
                .filter(|(d, _)| d.month() == month && days.contains(&d.day()))
                .map(|(_, &r)| r)
                .collect();
            v.iter().sum::<i64>() as f64 / v.len() as f64
        };
        let blocks = [block(5..=12), block(13..=20), block(21..=31)];
        let (lo, hi) = blocks
            .iter()
            .fold((f64::MAX, 0f64), |(lo, hi), &b| (lo.min(b), hi.max(b)));
        assert!(
            hi / lo <= 1.06,
            "month {month}: ordinary days' mean revenue by block {blocks:?} varies {:.3}x, \
             more than the payday effect",
            hi / lo
        );
    }
}

#[test]
fn a_warm_start_mid_month_is_already_paced() {
    // Starting on 10 February, customers hold what paced shoppers hold on that day (the
    // month's money for the rest of it, and the wants money of the days since their last
    // purchase), so the first days spend like the next ones, and the money lasts to the
    // payday. Holding only the rest of the month's share, customers who last bought days ago
    // would spend those days' money twice and run short in the last days of February.
    let mid = SCENARIO
        .replace(r#"start: "2026-02-01","#, r#"start: "2026-02-10","#)
        .replace(r#"end: "2026-04-30","#, "days: 19,");
    let (revenue, _, _) = run(&mid);
    let days: Vec<f64> = revenue.values().map(|&r| r as f64).collect();
    assert_eq!(days.len(), 19, "10 to 28 February");
    let mean = |d: &[f64]| d.iter().sum::<f64>() / d.len() as f64;
    let (first, middle, last) = (mean(&days[..3]), mean(&days[3..14]), mean(&days[16..]));
    assert!(
        (first / middle - 1.0).abs() < 0.05,
        "the first three days spend {:.3}x the next eleven",
        first / middle
    );
    assert!(
        last / middle > 0.9,
        "the last three days of the month spend {:.3}x the middle ones",
        last / middle
    );
}
