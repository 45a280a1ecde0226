//! Property tests of the pure functions money and baskets depend on, and of whole runs.

use crate::common;

use bazaar::money::{group_indian, parse_plain, push_plain};
use bazaar::records::LineRecord;
use bazaar::rng::{Purpose, Stream};
use bazaar::systems::shopping::{Cut, trim_by_need, trim_to_budget};
use proptest::prelude::*;

fn line() -> impl Strategy<Value = LineRecord> {
    (0u16..30, 1u32..10, 1i64..500_000).prop_map(|(category, quantity, unit_price)| LineRecord {
        category,
        quantity,
        unit_price,
    })
}

proptest! {
    /// Trimming by need keeps the most needed lines whole as far as the money goes, never
    /// exceeds the budget, spends on wants only what is left above the reserve, keeps basket
    /// order, and is the basket-order trim when the ranks follow the basket.
    #[test]
    fn trimming_by_need_serves_the_most_needed_first(
        lines in prop::collection::vec(line(), 1..12),
        ranks in prop::collection::vec(0u16..5, 30),
        needs in 0u16..6,
        budget in 0i64..3_000_000,
        reserve in prop_oneof![Just(0i64), 0i64..3_000_000],
        seed in any::<u64>(),
    ) {
        let mut rng = Stream::for_agent(seed, 0, 0, Purpose::Basket);
        let mut trimmed = lines.clone();
        let cut = trim_by_need(&mut trimmed, 0, budget, budget - reserve, &ranks, needs, &mut rng);
        let is_need = |l: &LineRecord| ranks[usize::from(l.category)] < needs;
        let total: i64 = trimmed.iter().map(LineRecord::total).sum();
        prop_assert!(total <= budget);
        // Wants spend what is left above the reserve, and at most one unit more (rounded up
        // at random).
        if let Some(dearest) = trimmed.iter().filter(|l| !is_need(l)).map(|l| l.unit_price).max() {
            prop_assert!(total < budget - reserve + dearest, "wants ate into the reserve");
        }
        prop_assert_eq!(cut != Cut::Kept, trimmed != lines);
        // Short exactly when the whole basket cost more than everything left.
        let before: i64 = lines.iter().map(LineRecord::total).sum();
        prop_assert_eq!(cut == Cut::Short, before > budget);
        // Kept lines are a subsequence of the basket, quantities only reduced.
        let mut originals = lines.iter();
        for kept in &trimmed {
            let o = originals.find(|l| l.category == kept.category && l.unit_price == kept.unit_price);
            prop_assert!(o.is_some_and(|o| kept.quantity >= 1 && kept.quantity <= o.quantity));
        }
        // The most needed line (lowest rank, then first) gets every unit its money buys.
        let first = (0..lines.len())
            .min_by_key(|&i| (ranks[usize::from(lines[i].category)], i))
            .unwrap();
        let want = &lines[first];
        let money = if is_need(want) { budget } else { (budget - reserve).max(0) };
        // (A want may get one unit more at random, never fewer.)
        let affordable = (money / want.unit_price).min(i64::from(want.quantity));
        let got: i64 = trimmed
            .iter()
            .filter(|l| l.category == want.category && l.unit_price == want.unit_price)
            .map(|l| i64::from(l.quantity))
            .max()
            .unwrap_or(0);
        prop_assert!(got >= affordable, "{got} < {affordable}");
        // Ranks in basket order (distinct categories), no needs and no reserve give the
        // basket-order trim.
        let mut seen = std::collections::HashSet::new();
        if lines.iter().all(|l| seen.insert(l.category)) {
            let mut in_order = vec![u16::MAX; 30];
            for (k, l) in lines.iter().enumerate() {
                in_order[usize::from(l.category)] = k as u16;
            }
            let (mut a, mut b) = (lines.clone(), lines.clone());
            trim_by_need(&mut a, 0, budget, budget, &in_order, 0, &mut rng);
            trim_to_budget(&mut b, 0, budget);
            prop_assert_eq!(a, b);
        }
    }

    #[test]
    fn trimming_never_exceeds_the_budget_nor_adds_anything(
        lines in prop::collection::vec(line(), 0..12),
        budget in 0i64..3_000_000,
    ) {
        let mut trimmed = lines.clone();
        let cut = trim_to_budget(&mut trimmed, 0, budget);
        let total: i64 = trimmed.iter().map(LineRecord::total).sum();
        let before: i64 = lines.iter().map(LineRecord::total).sum();
        prop_assert!(total <= budget.max(0));
        prop_assert_eq!(cut, before > budget);
        // Kept lines are the original lines in order, with quantities only ever reduced.
        let mut originals = lines.iter();
        for kept in &trimmed {
            let original = originals.find(|l| l.category == kept.category && l.unit_price == kept.unit_price);
            prop_assert!(original.is_some_and(|o| kept.quantity >= 1 && kept.quantity <= o.quantity));
        }
        if !cut {
            prop_assert_eq!(&trimmed, &lines);
        }
    }

    #[test]
    fn money_formatting_round_trips(minor in -10_000_000_000i64..10_000_000_000, units in 0u8..=4) {
        let mut out = Vec::new();
        push_plain(&mut out, minor, units);
        let s = String::from_utf8(out).unwrap();
        let places = s.split_once('.').map_or(0, |(_, f)| f.len());
        prop_assert_eq!(places, usize::from(units));
        prop_assert_eq!(parse_plain(&s, units), Some(minor));
        let (whole, frac) = s.trim_start_matches('-').split_once('.').unwrap_or((s.trim_start_matches('-'), "0"));
        let back = whole.parse::<i64>().unwrap() * 10i64.pow(u32::from(units)) + frac.parse::<i64>().unwrap();
        prop_assert_eq!(if s.starts_with('-') { -back } else { back }, minor);
    }

    #[test]
    fn indian_grouping_keeps_the_digits(n in 0u64..u64::MAX) {
        let g = group_indian(n);
        prop_assert_eq!(g.replace(',', ""), n.to_string());
        // The last group has three digits, the others two.
        let groups: Vec<&str> = g.split(',').collect();
        if groups.len() > 1 {
            prop_assert_eq!(groups[groups.len() - 1].len(), 3);
            for inner in &groups[1..groups.len() - 1] {
                prop_assert_eq!(inner.len(), 2);
            }
        }
    }
}

/// A scenario of one persona with a basket of `items` (price, quantity range) and an event
/// of the given factors on its only day, or `None` where the pieces make no sense to write.
fn scenario_text(
    items: &[(f64, f64, u32, u32)],
    price: (f64, f64),
    quantity: f64,
    budget: Option<f64>,
    count: u32,
) -> String {
    let basket: Vec<String> = items
        .iter()
        .enumerate()
        .map(|(i, (lo, hi, qlo, qhi))| {
            format!(
                "(category: \"c{}\", p: 0.9, quantity: ({qlo}, {qhi}), price: Uniform({lo:e}, {hi:e}))",
                i % 3
            )
        })
        .collect();
    let budget = budget.map_or(String::new(), |s| {
        format!("budget: (income_share: {s:e}, payday: 1),")
    });
    format!(
        r#"Scenario(
    name: "prop", seed: 3, start: "2026-11-01", days: 1,
    catalog: [(name: "c0"), (name: "c1"), (name: "c2")],
    personas: [Persona(
        name: "p", age: (20, 60), income: (10000, 900000),
        visits: (recency: [(days: 0, p: 1.0)], cap: 1.0), hours: Slots([("09:00", "21:00")]),
        {budget}
        basket: [{}],
    )],
    population: [(persona: "p", count: {count})],
    events: [Sale(name: "s", from: "2026-11-01", price: ({:e}, {:e}), quantity: {quantity:e})],
)"#,
        basket.join(", "),
        price.0,
        price.1
    )
}

#[test]
fn the_generated_scenarios_ordinary_case_validates() {
    let text = scenario_text(&[(100.0, 200.0, 1, 3)], (1.0, 1.2), 1.0, Some(0.1), 10);
    bazaar::scenario::Scenario::from_text("prop.ron", &text, &bazaar::sim::registry()).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn any_scenario_that_validates_runs_a_day_and_conserves_money(
        // Mostly ordinary values, now and then at a limit or past it.
        items in prop::collection::vec(
            (
                prop_oneof![8 => 0.01f64..1e4, 1 => 1e4f64..1e7, 1 => Just(1e7), 1 => 1e7f64..1e9],
                prop_oneof![8 => 0.0f64..2.0, 1 => Just(0.0)],
                1u32..5,
                prop_oneof![8 => 1u32..10, 1 => 10u32..100_000, 1 => Just(100_000), 1 => 100_000u32..200_000],
            ),
            1..4,
        ),
        price in (prop_oneof![8 => 0.01f64..5.0, 1 => 5.0f64..100.0, 1 => Just(100.0)], 1.0f64..2.0),
        quantity in prop_oneof![8 => 0.0f64..3.0, 1 => Just(100.0), 1 => 100.0f64..1e6],
        budget in prop::option::of(0.001f64..1.0),
        count in 1u32..30,
    ) {
        let items: Vec<(f64, f64, u32, u32)> = items
            .into_iter()
            .map(|(lo, spread, qlo, qhi)| {
                let hi = if lo <= 1e7 { (lo * (1.0 + spread)).min(1e7) } else { lo * 2.0 };
                (lo, hi, qlo, qhi.max(qlo))
            })
            .collect();
        let price = (price.0, (price.0 * price.1).min(100.0).max(price.0));
        let text = scenario_text(&items, price, quantity, budget, count);
        let Ok(mut scenario) = bazaar::scenario::Scenario::from_text("prop.ron", &text, &bazaar::sim::registry()) else {
            // Refused with a located error: that is the other allowed outcome.
            return Ok(());
        };
        let dir = tempfile::tempdir().unwrap();
        scenario.output.dir = dir.path().join("out");
        let report = bazaar::run::run(
            &scenario,
            bazaar::run::RunOptions { threads: 1, report: false, ..Default::default() },
        );
        let report = match report {
            Ok(r) => r,
            Err(e) => {
                // The only run-time refusal allowed for a valid scenario: sums past the
                // outputs' range, stopped before anything is written.
                prop_assert!(matches!(e, bazaar::run::RunError::Overflow { .. }), "{e}");
                prop_assert!(!dir.path().join("out").exists());
                return Ok(());
            }
        };
        let conserved = common::money_conserved(&dir.path().join("out"), &report.summary);
        prop_assert!(conserved.is_ok(), "{:?}", conserved);
    }
}
