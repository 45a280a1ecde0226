//! The seed-parity scenario reproduces the original simulator's published figures
//! (../shared/seed/SEED_MODEL.md) within 3%, on its 5-day headline and on a longer run.

use bazaar::run::{RunOptions, run};
use bazaar::scenario::Scenario;
use bazaar::sim::registry;

fn within(actual: f64, expected: f64, tolerance: f64, what: &str) {
    let err = (actual - expected).abs();
    assert!(
        err <= tolerance,
        "{what}: {actual} vs published {expected} (off by {err}, allowed {tolerance})"
    );
}

fn run_parity(days: u32) -> bazaar::output::summary::Summary {
    let mut s = Scenario::load("scenarios/seed_parity.ron".as_ref(), &registry()).unwrap();
    s.days = days;
    let dir = tempfile::tempdir().unwrap();
    s.output.dir = dir.path().join("out");
    run(&s, RunOptions::default()).unwrap().summary
}

#[test]
fn five_day_headline_within_three_percent() {
    let s = run_parity(5);
    within(
        s.totals.transactions as f64,
        11_160.0,
        0.03 * 11_160.0,
        "transactions",
    );
    within(s.revenue, 45_471_690.10, 0.03 * 45_471_690.10, "revenue");
    within(s.mean_basket, 4_074.52, 0.03 * 4_074.52, "mean basket");
    // Per persona: (transactions, revenue in Rs millions as published, rounded to 0.1M).
    let published = [
        ("premium", 4_196.0, 31.2),
        ("family", 1_402.0, 6.7),
        ("young_professional", 2_950.0, 3.3),
        ("senior", 1_192.0, 2.9),
        ("budget", 1_420.0, 1.4),
    ];
    for (name, tx, revenue_m) in published {
        let p = s.personas.iter().find(|p| p.persona == name).unwrap();
        within(p.totals.transactions as f64, tx, 0.03 * tx, name);
        // 3%, plus the half-unit of rounding in the published figure (0.05M).
        within(p.revenue / 1e6, revenue_m, 0.03 * revenue_m + 0.05, name);
    }
}

#[test]
fn thirty_days_stay_faithful() {
    // Original: 30 days x 1,000 per persona gave 60,102 transactions.
    let s = run_parity(30);
    within(
        s.totals.transactions as f64,
        60_102.0,
        0.03 * 60_102.0,
        "transactions",
    );
    // Weekends and the Makar Sankranti window are in these 30 days: both must lift traffic.
    let w = &s.weekend_vs_weekday;
    assert!(
        w.transactions_per_day > w.other_transactions_per_day * 1.05,
        "{w:?}"
    );
    let f = &s.festival_vs_ordinary;
    assert_eq!(f.days, 5, "Makar Sankranti counts 13-17 January");
    assert!(f.revenue_uplift.unwrap() > 1.2, "{f:?}");
}

/// The reference run's exact figures. Every random draw feeds them (visit plans and their
/// minutes, baskets, prices), so a change that alters any draw sequence shows here even when
/// the statistical checks above still pass. Update them only for an intended change to the
/// random streams, and say so in the commit.
#[test]
fn the_reference_run_is_pinned_to_its_exact_figures() {
    let s = run_parity(5);
    assert_eq!(s.totals.visits, 11_129);
    assert_eq!(s.totals.transactions, 11_105);
    assert_eq!(s.totals.lines, 40_414);
    assert_eq!(s.totals.units, 99_830);
    assert_eq!(s.totals.revenue_paise, 4_528_598_880);
}
