//! System tests: build a world from a small scenario, run the schedule hour by hour, and
//! assert on the components and resources.

use bazaar::calendar::{Clock, Today};
use bazaar::components::*;
use bazaar::scenario::Scenario;
use bazaar::sim::{Simulation, registry};
use bevy_ecs::prelude::*;

fn scenario(persona_extra: &str, start: &str, events: &str) -> Scenario {
    let text = format!(
        r#"Scenario(
    name: "t", seed: 3, start: "{start}", days: 10, warm_start: false,
    catalog: [(name: "rice", group: "grocery"), (name: "gold", group: "jewellery")],
    personas: [Persona(
        name: "p", age: (30, 40), income: (50000, 50000),
        hours: Slots([("10:00", "11:00")]),
        basket: [(category: "rice", p: 1.0, quantity: (1, 1), price: Fixed(100))],
        {persona_extra}
    )],
    population: [(persona: "p", count: 200)],
    events: [{events}],
)"#
    );
    Scenario::from_text("t.ron", &text, &registry()).unwrap_or_else(|e| panic!("{e}"))
}

fn sim(s: &Scenario) -> Simulation {
    let mut sim = Simulation::builder(s)
        .threads(2)
        .check_invariants(true)
        .build()
        .expect("the simulation builds");
    sim.spawn_population();
    sim
}

fn run_hours(sim: &mut Simulation, hours: u32) {
    for _ in 0..hours {
        sim.step().expect("an hour runs");
    }
}

fn all<T: Component + Copy>(sim: &mut Simulation) -> Vec<T> {
    let mut q = sim.world.query::<&T>();
    q.iter(&sim.world).copied().collect()
}

#[test]
fn first_visits_happen_in_the_planned_hour_and_set_recency() {
    let s = scenario(
        "visits: (first_visit: 1.0, recency: [(days: 0, p: 0.0)]),",
        "2026-03-02",
        "",
    );
    let mut sim = sim(&s);
    run_hours(&mut sim, 10);
    assert!(
        all::<Ledger>(&mut sim).iter().all(|l| l.visits == 0),
        "slot starts at 10:00"
    );
    run_hours(&mut sim, 1);
    // Everyone visits; p = 1.0 is capped at PURCHASE_CAP (0.95), so a few baskets are empty.
    let ledgers = all::<Ledger>(&mut sim);
    let recency = all::<Engagement>(&mut sim);
    for (l, r) in ledgers.iter().zip(&recency) {
        assert_eq!(l.visits, 1);
        assert_eq!(l.spent, i64::from(l.purchases) * 10_000);
        assert_eq!(r.last_purchase == 0, l.purchases == 1);
    }
    let bought = ledgers.iter().filter(|l| l.purchases == 1).count();
    assert!((175..200).contains(&bought), "{bought} of 200 at p = 0.95");
    // Those whose basket was empty are still first-time customers and come back the next
    // day; with p = 0 after a purchase, nobody who bought comes back.
    run_hours(&mut sim, 24 * 3);
    for l in all::<Ledger>(&mut sim) {
        assert_eq!(l.purchases, 1, "{l:?}");
        assert!((1..=4).contains(&l.visits), "{l:?}");
    }
    let again = all::<Ledger>(&mut sim)
        .iter()
        .filter(|l| l.visits > 1)
        .count();
    assert_eq!(again, 200 - bought);
}

#[test]
fn a_closed_day_keeps_first_timers_home_too() {
    let s = scenario(
        "visits: (first_visit: 1.0, recency: [(days: 0, p: 0.0)]),",
        "2026-03-02",
        r#"Closed(name: "Stocktake", from: "2026-03-02")"#,
    );
    let mut sim = sim(&s);
    run_hours(&mut sim, 24);
    assert!(
        all::<Ledger>(&mut sim).iter().all(|l| l.visits == 0),
        "nobody visits a closed shop, never-bought customers included"
    );
    run_hours(&mut sim, 24);
    assert!(all::<Ledger>(&mut sim).iter().all(|l| l.visits == 1));
}

#[test]
fn budgets_trim_baskets_and_top_up_on_payday() {
    // Monthly budget 50000 x 0.005 = Rs 250; each visit wants Rs 100. On 2026-03-30 the
    // budget is prorated to 2 days of March's 31 (Rs 16.13), so no basket can be paid.
    let s = scenario(
        "visits: (first_visit: 1.0, recency: [(days: 0, p: 0.95)], cap: 0.95),
         budget: (income_share: 0.005, payday: 1, exhausted_visit_factor: 1.0),",
        "2026-03-30",
        "",
    );
    let mut sim = sim(&s);
    run_hours(&mut sim, 24);
    let budgets = all::<Budget>(&mut sim);
    assert!(
        budgets
            .iter()
            .all(|b| b.monthly == 25_000 && b.left == 1_613)
    );
    assert!(
        all::<Ledger>(&mut sim)
            .iter()
            .all(|l| l.visits == 1 && l.purchases == 0)
    );
    let mut q = sim.world.query::<&Loyalty>();
    assert_eq!(q.iter(&sim.world).count(), 200);
    // Day 2 is 31 March; at its last hour the month's money is added for 1 April, to the
    // unspent Rs 16.13 that carries over.
    run_hours(&mut sim, 24);
    assert!(
        all::<Budget>(&mut sim)
            .iter()
            .all(|b| b.left == b.monthly + 1_613)
    );
    // In April, at most two Rs 100 baskets fit in Rs 266.13; nobody ever goes negative.
    run_hours(&mut sim, 24 * 5);
    for (b, l) in all::<Budget>(&mut sim).iter().zip(all::<Ledger>(&mut sim)) {
        assert!(b.left >= 0);
        assert!(l.purchases <= 2, "{l:?}");
        assert_eq!(i64::from(b.monthly + 1_613 - b.left), l.spent);
    }
}

#[test]
fn loyalty_decays_daily_and_lowers_visits() {
    let s = scenario(
        "visits: (first_visit: 0.0, recency: [(days: 0, p: 0.5)]),
         loyalty: (initial: (0.5, 0.5), decay: 0.1, visit_effect: 1.0),",
        "2026-03-02",
        "",
    );
    let mut sim = sim(&s);
    run_hours(&mut sim, 48);
    for l in all::<Loyalty>(&mut sim) {
        assert!((l.0 - 0.5 * 0.9 * 0.9).abs() < 1e-6, "{l:?}");
    }
}

#[test]
fn a_festival_sets_todays_multipliers_for_its_categories() {
    let s = scenario(
        "visits: (recency: [(days: 0, p: 0.5)]),",
        "2026-11-05",
        r#"Festival(name: "Dhanteras", from: "2026-11-06", traffic: 1.3, categories: [(category: "jewellery", purchase: 5.0)])"#,
    );
    let mut sim = sim(&s);
    run_hours(&mut sim, 1);
    assert!(!sim.world.resource::<Today>().festival);
    run_hours(&mut sim, 24);
    let today = sim.world.resource::<Today>();
    assert_eq!(sim.world.resource::<Clock>().day(), 1);
    assert!(today.festival && today.events == "Dhanteras");
    assert_eq!(today.purchase, vec![1.0, 5.0]);
    assert!((today.traffic - 1.3).abs() < 1e-6);
}

#[test]
fn the_schedule_has_no_ambiguous_system_order() {
    let s = scenario("visits: (recency: [(days: 0, p: 0.5)]),", "2026-03-02", "");
    let mut sim = Simulation::new(&s, 2, Vec::new()).expect("the simulation builds");
    // Ambiguity detection is at error level: initialising fails if two systems that touch
    // the same data have no declared order.
    sim.schedule
        .initialize(&mut sim.world)
        .expect("no ambiguities");
}

#[test]
fn agent_ids_are_dense_and_attributes_in_range() {
    let s = scenario("visits: (recency: [(days: 0, p: 0.5)]),", "2026-03-02", "");
    let mut sim = sim(&s);
    let mut ids: Vec<u32> = all::<AgentId>(&mut sim).iter().map(|a| a.0).collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..200).collect::<Vec<_>>());
    // Age and income are drawn again from each customer's spawn stream, the same each time.
    let personas = all::<Persona>(&mut sim);
    let model = sim.world.resource::<bazaar::sim::Model>();
    let mut ages = std::collections::BTreeSet::new();
    for (&id, &p) in ids.iter().zip(&personas) {
        let d = model.demographics(AgentId(id), p);
        assert!((30..=40).contains(&d.age) && d.income == 50_000);
        assert_eq!(d, model.demographics(AgentId(id), p));
        ages.insert(d.age);
    }
    assert!(ages.len() >= 8, "ages spread over the range: {ages:?}");
}

#[test]
fn acquired_customers_extend_the_population_in_id_order() {
    let with_acquisition = Scenario::from_text(
        "t.ron",
        r#"Scenario(
    name: "t", seed: 3, start: "2026-03-02", days: 10,
    catalog: [(name: "rice", group: "grocery")],
    personas: [Persona(
        name: "p", age: (30, 40), income: (50000, 50000),
        hours: Slots([("10:00", "11:00")]),
        basket: [(category: "rice", p: 1.0, quantity: (1, 1), price: Fixed(100))],
        visits: (recency: [(days: 0, p: 0.5)]),
    )],
    population: [(persona: "p", count: 200, new_per_day: 7.5)],
)"#,
        &registry(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut sim = Simulation::builder(&with_acquisition)
        .threads(2)
        .check_invariants(true)
        .build()
        .expect("the simulation builds");
    let before = sim.world.entity_count(); // resources live in entities too
    sim.spawn_population();
    // Rows reserved for the run's acquisitions hold no entity.
    assert_eq!(sim.world.entity_count(), before + 200);
    assert_eq!(all::<AgentId>(&mut sim).len(), 200);
    // The per-entity records were grown once, to the batch (200 customers and 75 reserved
    // rows) plus the probe and the keeper that sized them, not to a power of two.
    assert_eq!(sim.world.entities().len(), before + 275 + 2);
    let mut q = sim.world.query::<(Entity, &AgentId)>();
    let handles: Vec<Entity> = q.iter(&sim.world).map(|(e, _)| e).collect();
    assert!(handles.iter().all(|&e| sim.world.get_entity(e).is_ok()));
    run_hours(&mut sim, 10 * 24);
    // 7.5 a day from day 1 to day 9: 67 customers (the half carries over).
    let ids: Vec<u32> = all::<AgentId>(&mut sim).iter().map(|a| a.0).collect();
    assert_eq!(ids, (0..267).collect::<Vec<_>>(), "dense, in table order");
    assert_eq!(sim.next_id(), 267);
    // Entities spawned past the reserved rows still get indices of their own.
    let more: Vec<Entity> = (0..300).map(|_| sim.world.spawn(AgentId(9)).id()).collect();
    let mut q = sim.world.query::<Entity>();
    let mut indices: Vec<u32> = q.iter(&sim.world).map(|e| e.index_u32()).collect();
    indices.sort_unstable();
    let n = indices.len();
    indices.dedup();
    assert_eq!(indices.len(), n, "no entity index handed out twice");
    assert!(more.iter().all(|&e| sim.world.get_entity(e).is_ok()));
    let joined: Vec<i32> = all::<Engagement>(&mut sim)
        .iter()
        .map(|e| i32::from(e.joined))
        .collect();
    assert!(joined[..200].iter().all(|&d| d == 0));
    assert!(joined[200..].windows(2).all(|w| w[0] <= w[1]) && joined[200] == 1);
}
