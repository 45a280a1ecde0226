//! Checkpoints of a simulation's state: a simulation taken up from one goes on exactly as
//! the one that never stopped (every built-in behaviour with state, acquisitions, a warm
//! start and budgets included), at any thread count; checkpoints of something else, or
//! taken mid-day, are refused.

use crate::common;

use bazaar::analytics::collect::{Analytics, AnalyticsPlugin};
use bazaar::checkpoint::Snapshot;
use bazaar::records::Tally;
use bazaar::scenario::Scenario;
use bazaar::sim::Simulation;
use common::root;

/// Twelve days around Diwali with every optional behaviour that keeps state across days.
fn scenario(seed: u64) -> Scenario {
    with_systems(
        seed,
        "checkpoint",
        r#"Stores(count: 4, stock: 400, restock_every_days: 3, sold_out_penalty: 0.05),
        WordOfMouth(rate: 0.03, min_loyalty: 0.6, max_per_day: 40),
        Promotions(campaigns: [
            (name: "sweets", category: "sweets", discount: 0.15, from: "2026-11-05", to: "2026-11-09", lift: 1.3),
        ]),
        DailyLog,"#,
    )
}

/// The twelve days with `systems`, named `name`.
fn with_systems(seed: u64, name: &str, systems: &str) -> Scenario {
    parse(&text_with(seed, name, systems))
}

fn parse(text: &str) -> Scenario {
    Scenario::from_text("checkpoint.ron", text, &bazaar::sim::registry())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The twelve days' scenario text.
fn text_with(seed: u64, name: &str, systems: &str) -> String {
    let dir = root().join("scenarios");
    let at = |p: &str| dir.join(p).display().to_string();
    format!(
        r#"Scenario(
    name: "{name}",
    seed: {seed},
    start: "2026-11-01",
    days: 12,
    catalog: include("{catalog}"),
    personas: include("{personas}"),
    population: [
        (persona: "premium", count: 300, new_per_day: 2.5),
        (persona: "family", count: 700),
        (persona: "young_professional", count: 600, new_per_day: 0.4),
        (persona: "senior", count: 400),
        (persona: "budget", count: 500),
    ],
    calendar: include("{calendar}"),
    systems: [{systems}],
)"#,
        catalog = at("catalogs/india.ron"),
        personas = at("personas/india.ron"),
        calendar = at("calendars/india.ron"),
    )
}

fn build(s: &Scenario, threads: usize) -> Simulation {
    Simulation::builder(s)
        .threads(threads)
        .check_invariants(true)
        .add_plugin(AnalyticsPlugin)
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Runs to the end of day `day` (days counted from 1).
fn run_to(sim: &mut Simulation, day: u32) {
    while sim.clock().tick.wrapping_add(1) < day * 24 {
        sim.step().unwrap_or_else(|e| panic!("{e}"));
    }
}

/// The run's totals and aggregates as JSON, for comparison.
fn results(sim: &mut Simulation) -> String {
    let tally = serde_json::to_string(&tally(sim)).unwrap();
    let aggregates = serde_json::to_string(&sim.world.resource::<Analytics>().aggregates).unwrap();
    format!("{tally}\n{aggregates}")
}

#[test]
fn a_simulation_taken_up_from_a_checkpoint_goes_on_as_if_it_never_stopped() {
    let s = scenario(11);
    let mut whole = build(&s, 2);
    whole.spawn_population();
    run_to(&mut whole, 4);
    let day4 = whole.checkpoint(&s).unwrap();
    assert_eq!(day4.header.day, 4);
    run_to(&mut whole, 9);
    let day9 = whole.checkpoint(&s).unwrap();
    assert!(
        day9.header.customers > day4.header.customers,
        "acquisitions"
    );
    let expected = results(&mut whole);

    // Through a file, at another thread count.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("day4.ckpt");
    day4.write(&path).unwrap();
    let read = Snapshot::read(&path).unwrap();
    assert_eq!(read, day4);
    for threads in [1, 3] {
        let mut resumed = build(&s, threads);
        resumed.restore(&s, &read).unwrap();
        // Its own checkpoint is the one it was taken up from.
        assert_eq!(resumed.checkpoint(&s).unwrap().to_bytes(), day4.to_bytes());
        run_to(&mut resumed, 9);
        assert!(
            resumed.checkpoint(&s).unwrap().to_bytes() == day9.to_bytes(),
            "the state five days on differs ({threads} threads)"
        );
        assert_eq!(results(&mut resumed), expected, "{threads} threads");
    }
}

#[test]
fn a_checkpoint_before_the_first_hour_starts_the_same_run() {
    let s = scenario(5);
    let mut whole = build(&s, 2);
    whole.spawn_population();
    let start = whole.checkpoint(&s).unwrap();
    assert_eq!(start.header.day, 0);
    let expected = results(&mut whole);
    let mut resumed = build(&s, 2);
    resumed.restore(&s, &start).unwrap();
    assert_eq!(results(&mut resumed), expected);
}

#[test]
fn checkpoints_of_something_else_or_mid_day_are_refused() {
    let s = scenario(11);
    let mut sim = build(&s, 2);
    sim.spawn_population();
    run_to(&mut sim, 2);
    let day2 = sim.checkpoint(&s).unwrap();
    sim.step().unwrap();
    let err = sim.checkpoint(&s).unwrap_err().to_string();
    assert!(err.contains("at the end of a day"), "{err}");

    // Another scenario (a different seed).
    let other = scenario(12);
    let mut fresh = build(&other, 2);
    let err = fresh.restore(&other, &day2).unwrap_err().to_string();
    assert!(err.contains("another scenario"), "{err}");
    // A simulation that has its customers already.
    let mut spawned = build(&s, 2);
    spawned.spawn_population();
    let err = spawned.restore(&s, &day2).unwrap_err().to_string();
    assert!(err.contains("no customers yet"), "{err}");
    // Other plugins.
    let mut fewer = Simulation::builder(&s).threads(2).build().unwrap();
    let err = fewer.restore(&s, &day2).unwrap_err().to_string();
    assert!(err.contains("plugins"), "{err}");
    // Damage: cut short, or one byte changed anywhere (a persona index among the
    // customers', a plugin's state), refused before any state is read.
    let whole = day2.to_bytes();
    assert_eq!(Snapshot::from_bytes(&whole).unwrap(), day2);
    let mut bytes = whole.clone();
    bytes.truncate(bytes.len() / 2);
    assert!(Snapshot::from_bytes(&bytes).is_err());
    for at in [200, whole.len() / 2, whole.len() - 40, whole.len() - 1] {
        let mut bytes = whole.clone();
        bytes[at] ^= 0x5a;
        let err = Snapshot::from_bytes(&bytes).unwrap_err().to_string();
        assert!(
            err.contains("damaged") || err.contains("not a Bazaar checkpoint"),
            "byte {at}: {err}"
        );
    }
}

/// The run's tally at its end.
fn tally(sim: &mut Simulation) -> bazaar::records::Tally {
    while !sim.finished() {
        sim.step().unwrap_or_else(|e| panic!("{e}"));
    }
    sim.world.resource::<Tally>().clone()
}

#[test]
fn an_arm_forked_the_same_as_its_base_goes_on_exactly_as_the_base() {
    let systems = "WordOfMouth(rate: 0.03, min_loyalty: 0.6, max_per_day: 40)";
    let base = with_systems(3, "base", systems);
    let mut sim = build(&base, 2);
    sim.spawn_population();
    run_to(&mut sim, 5);
    let fork = sim.checkpoint(&base).unwrap();
    let expected = tally(&mut sim);
    // Another name (so another scenario), the same behaviour: not a byte of difference.
    let same = with_systems(3, "same", systems);
    let mut arm = build(&same, 1);
    arm.fork(&same, &fork).unwrap();
    assert_eq!(
        serde_json::to_string(&tally(&mut arm)).unwrap(),
        serde_json::to_string(&expected).unwrap()
    );
    // `restore` is for the same scenario only.
    let mut strict = build(&same, 1);
    assert!(strict.restore(&same, &fork).is_err());
}

#[test]
fn a_discount_switched_on_at_the_fork_sells_more_and_only_after_it() {
    let base = with_systems(8, "base", "");
    let mut sim = build(&base, 2);
    sim.spawn_population();
    run_to(&mut sim, 5);
    let fork = sim.checkpoint(&base).unwrap();
    let at_fork = sim.world.resource::<Tally>().overall();
    let control = tally(&mut sim).overall();
    // Sweets 20% off from the fork to the end, bought half as often again.
    let discount = with_systems(
        8,
        "discount",
        r#"Promotions(campaigns: [(name: "sweets", category: "sweets", discount: 0.2, from: "2026-11-06", to: "2026-11-12", lift: 1.5)])"#,
    );
    let mut arm = build(&discount, 2);
    arm.fork(&discount, &fork).unwrap();
    assert_eq!(
        arm.world.resource::<Tally>().overall(),
        at_fork,
        "the same up to the fork"
    );
    let treated = tally(&mut arm).overall();
    assert!(
        treated.units > control.units && treated.lines > control.lines,
        "units {} against {}, lines {} against {}",
        treated.units,
        control.units,
        treated.lines,
        control.lines
    );
    // An arm whose customers would mean something else is refused.
    let other = with_systems(9, "other", "");
    let mut arm = build(&other, 2);
    let err = arm.fork(&other, &fork).unwrap_err().to_string();
    assert!(err.contains("seed"), "{err}");
}

#[test]
fn a_fork_is_the_arm_run_whole_when_its_change_starts_at_the_fork() {
    let base = with_systems(4, "base", "");
    let discount = with_systems(
        4,
        "discount",
        r#"Promotions(campaigns: [(name: "sweets", category: "sweets", discount: 0.2, from: "2026-11-06", to: "2026-11-12", lift: 1.5)])"#,
    );
    let mut sim = build(&base, 2);
    sim.spawn_population();
    run_to(&mut sim, 5);
    let fork = sim.checkpoint(&base).unwrap();
    let mut arm = build(&discount, 2);
    arm.fork(&discount, &fork).unwrap();
    let forked = tally(&mut arm);
    // The same arm from the first day: its promotion idle until the fork, every draw the
    // same, so the same run.
    let mut whole = build(&discount, 2);
    whole.spawn_population();
    assert_eq!(
        serde_json::to_string(&tally(&mut whole)).unwrap(),
        serde_json::to_string(&forked).unwrap()
    );
}

#[test]
fn an_arm_that_cannot_continue_the_base_is_refused_and_one_that_can_is_sized_for_it() {
    let campaign = |name: &str, category: &str, from: &str| {
        format!(
            r#"(name: "{name}", category: "{category}", discount: 0.1, from: "{from}", to: "2026-11-12", lift: 1.2)"#
        )
    };
    let base = with_systems(
        6,
        "base",
        &format!(
            "Stores(count: 4, stock: 400, restock_every_days: 3, sold_out_penalty: 0.05), Promotions(campaigns: [{}])",
            campaign("early", "sweets", "2026-11-02")
        ),
    );
    let mut sim = build(&base, 2);
    sim.spawn_population();
    run_to(&mut sim, 5);
    let fork = sim.checkpoint(&base).unwrap();
    let metrics: std::collections::BTreeMap<String, f64> =
        sim.plugin_metrics().into_iter().collect();
    assert!(metrics["promotions.early.units"] > 0.0, "{metrics:?}");

    // Campaigns are taken up by name: a new one starts at zero, the base's goes on.
    let arm = with_systems(
        6,
        "arm",
        &format!(
            "Stores(count: 4, stock: 400, restock_every_days: 3, sold_out_penalty: 0.05), Promotions(campaigns: [{}, {}])",
            campaign("late", "snacks", "2026-11-06"),
            campaign("early", "sweets", "2026-11-02")
        ),
    );
    let mut forked = build(&arm, 2);
    forked.fork(&arm, &fork).unwrap();
    let after: std::collections::BTreeMap<String, f64> =
        forked.plugin_metrics().into_iter().collect();
    assert_eq!(after["promotions.late.units"], 0.0);
    assert_eq!(
        after["promotions.early.units"],
        metrics["promotions.early.units"]
    );

    // An arm that acquires fewer customers than the base did before the fork has no room
    // for them as built for a run of its own; sized from the checkpoint, it has.
    let slower = parse(
        &text_with(
            6,
            "slower",
            "Stores(count: 4, stock: 400, restock_every_days: 3, sold_out_penalty: 0.05)",
        )
        .replace("new_per_day: 2.5", "new_per_day: 0"),
    );
    let err = build(&slower, 2)
        .fork(&slower, &fork)
        .unwrap_err()
        .to_string();
    assert!(err.contains("do not fit"), "{err}");
    let mut sized = Simulation::builder(&slower)
        .threads(2)
        .grow_from(fork.header.customers)
        .add_plugin(AnalyticsPlugin)
        .build()
        .unwrap();
    sized.fork(&slower, &fork).unwrap();
    // The base's acquisitions so far, and the arm's own (its 0.4 a day) after.
    let acquired = tally(&mut sized).overall().acquired;
    let before = fork_acquired(&fork, &base);
    assert!(
        (before..=before + 4).contains(&acquired),
        "{acquired} against {before}"
    );

    // Another number of stores, or other starting customers: refused, with the reason.
    let stores = with_systems(
        6,
        "stores",
        "Stores(count: 5, stock: 400, restock_every_days: 3, sold_out_penalty: 0.05)",
    );
    let mut other = build(&stores, 2);
    let err = other.fork(&stores, &fork).unwrap_err().to_string();
    assert!(err.contains("homed in 4 stores, this run has 5"), "{err}");
}

/// Customers acquired by the end of the checkpoint's day: its customers less the starting
/// population.
fn fork_acquired(fork: &Snapshot, base: &Scenario) -> u64 {
    u64::from(fork.header.customers) - base.customers()
}
