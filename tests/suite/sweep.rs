//! Every number and date of a scenario that uses every feature, replaced in turn by extreme
//! values: each variant is refused with a located error or runs cleanly, in process, with
//! its money conserved. Never a panic, never a wrong number.

use crate::common;

use std::panic::{AssertUnwindSafe, catch_unwind};

use bazaar::run::{RunOptions, run};
use bazaar::scenario::{Overrides, Scenario};

/// Every schema feature but the churn model (which needs ONNX Runtime; `tests/suite/churn.rs`).
const SINK: &str = r#"Scenario(name: "k", seed: 9, start: "2026-10-30", days: 4,
 catalog: [(name: "rice", group: "grocery"), (name: "sweets", group: "festive"), (name: "gold")],
 personas: [
  Persona(name: "a", label: "A", age: (20, 60), income: (1000, 90000),
   visits: (first_visit: 0.4, recency: [(days: 0, p: 0.2), (days: 3, p: 0.6)], weekday: [1, 1, 1, 1, 1, 1.2, 1.1], cap: 0.9),
   hours: Profile([0,0,0,0,0,0,0,0.2,0.4,0.6,0.8,1.6,1.6,0.8,0.5,0.5,0.6,0.8,1,1.6,1.6,0.8,0.2,0]),
   budget: (income_share: 0.2, payday: 1, exhausted_visit_factor: 0.6),
   loyalty: (initial: (0.6, 0.9), visit_effect: 0.4, gain: 0.03, decay: 0.004, trim_penalty: 0.03, shock_threshold: 0.2, shock_penalty: 0.1),
   churn: (base: 0.001, loyalty: 2.0, unmet: 0.3, trims: 0.2, lapse: 0.8, memory_decay: 0.1),
   basket: [(category: "rice", p: 0.8, quantity: (1, 3), price: Uniform(40, 120)),
    (category: "sweets", p: 0.3, quantity: (1, 2), price: Fixed(250)),
    (category: "gold", p: 0.01, quantity: (1, 1), price: LogNormal(median: 40000, sigma: 0.6, min: 5000, max: 400000))]),
  Persona(name: "b", age: (30, 40), income: (5, 6), visits: (recency: [(days: 1, p: 0.5)]),
   hours: Slots([("09:00", "12:30"), ("18:00", "24:00")]), basket: [(category: "rice", p: 1, quantity: (2, 2), price: Uniform(1, 2))]),
 ],
 population: [(persona: "a", count: 20, new_per_day: 1.5), (persona: "b", count: 5)],
 calendar: Calendar(
  weekend: (traffic: 1.2, purchase: 1.1, quantity: 1.0, price: (1.0, 1.02)),
  seasons: [(name: "winter", months: [11, 12, 1], effect: (traffic: 1.05, categories: [(category: "festive", purchase: 1.3)]))],
  payday: (day: 1, days: 3, effect: (traffic: 1.1)),
  events: [Festival(name: "Diwali", from: "2026-11-01", to: "2026-11-02", lead_in: 2, tail: 1, traffic: 1.5, purchase: 1.2, quantity: 1.1, price: (1.0, 1.1),
    categories: [(category: "sweets", purchase: 3.0, quantity: 1.5, price: (1.1, 1.2))])],
 ),
 events: [Sale(name: "Mega", from: "2026-10-31", days: 2, traffic: 1.3, price: (0.8, 0.9)), Dip(name: "Rain", from: "2026-11-02", traffic: 0.7)],
)"#;

const NUMBERS: [&str; 14] = [
    "0",
    "-1",
    "0.5",
    "2.5",
    "255",
    "65536",
    "4294967295",
    "9223372036854775807",
    "18446744073709551615",
    "1e-300",
    "1e308",
    "-1e308",
    "NaN",
    "inf",
];

const DATES: [&str; 6] = [
    "0000-01-01",
    "0001-01-01",
    "9999-12-31",
    "2026-02-30",
    "+10000-01-01",
    "-0001-06-15",
];

/// A byte range of the scenario text.
type Span = (usize, usize);

/// Byte ranges of the numbers outside strings, and of the dates inside them.
fn places(text: &str) -> (Vec<Span>, Vec<Span>) {
    let b = text.as_bytes();
    let (mut numbers, mut dates) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                let end = i + 1 + text[i + 1..].find('"').expect("closed string");
                let inner = &text[i + 1..end];
                if inner.len() == 10 && inner.as_bytes()[4] == b'-' {
                    dates.push((i + 1, end));
                }
                i = end + 1;
            }
            c if c.is_ascii_digit() => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                    i += 1;
                }
                numbers.push((start, i));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    (numbers, dates)
}

/// Runs a validated scenario for at most 40 days and checks its money
/// (`common::money_conserved`).
fn run_and_check(mut scenario: Scenario) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    scenario
        .apply(Overrides {
            days: Some(scenario.days.min(40)),
            out: Some(dir.path().join("out")),
            ..Overrides::default()
        })
        .map_err(|e| format!("overrides: {e}"))?;
    if scenario.max_customers() > 20_000 {
        return Ok(()); // Validated; too many customers to run inside a test.
    }
    let report = match run(
        &scenario,
        RunOptions {
            threads: 1,
            report: false,
            ..RunOptions::default()
        },
    ) {
        Ok(r) => r,
        Err(bazaar::run::RunError::Overflow { .. }) => return Ok(()),
        Err(e) => return Err(format!("run failed: {e}")),
    };
    common::money_conserved(&dir.path().join("out"), &report.summary)?;
    Ok(())
}

#[test]
fn extreme_values_in_every_number_and_date_are_refused_or_run_cleanly() {
    let (numbers, dates) = places(SINK);
    assert!(
        numbers.len() > 100 && dates.len() == 5,
        "{} {}",
        numbers.len(),
        dates.len()
    );
    let mut variants = Vec::new();
    for &(a, b) in &numbers {
        for v in NUMBERS {
            variants.push(format!("{}{v}{}", &SINK[..a], &SINK[b..]));
        }
    }
    for &(a, b) in &dates {
        for v in DATES {
            variants.push(format!("{}{v}{}", &SINK[..a], &SINK[b..]));
        }
    }
    let (mut refused, mut ran, mut failures) = (0, 0, Vec::new());
    for text in &variants {
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            match Scenario::from_text("sweep.ron", text, &bazaar::sim::registry()) {
                Err(e) => {
                    let shown = e.to_string();
                    if e.problems
                        .iter()
                        .any(|p| p.line == 0 && !p.message.starts_with("... and"))
                    {
                        return Err(format!("an error without a location: {shown}"));
                    }
                    Ok(false)
                }
                Ok(s) => run_and_check(s).map(|()| true),
            }
        }));
        match outcome {
            Ok(Ok(false)) => refused += 1,
            Ok(Ok(true)) => ran += 1,
            Ok(Err(e)) => failures.push(e),
            Err(_) => failures.push("panicked".to_owned()),
        }
    }
    eprintln!(
        "{} variants: {refused} refused with a location, {ran} ran with money conserved, {} failed",
        variants.len(),
        failures.len()
    );
    assert!(ran > 100 && refused > 100, "{ran} ran, {refused} refused");
    assert!(failures.is_empty(), "{failures:#?}");
}
