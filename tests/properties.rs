//! Property tests of the pure functions money and baskets depend on.

use bazaar::output::format::{group_indian, rupees};
use bazaar::records::LineRecord;
use bazaar::systems::shopping::trim_to_budget;
use proptest::prelude::*;

fn line() -> impl Strategy<Value = LineRecord> {
    (0u16..30, 1u32..10, 1i64..500_000).prop_map(|(category, quantity, unit_price)| LineRecord {
        category,
        quantity,
        unit_price,
    })
}

proptest! {
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
    fn rupee_formatting_round_trips(paise in -10_000_000_000i64..10_000_000_000) {
        let s = rupees(paise);
        let (whole, frac) = s.trim_start_matches('-').split_once('.').unwrap();
        let back = whole.parse::<i64>().unwrap() * 100 + frac.parse::<i64>().unwrap();
        prop_assert_eq!(if s.starts_with('-') { -back } else { back }, paise);
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
