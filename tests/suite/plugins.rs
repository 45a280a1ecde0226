//! The plugin lifecycle: build in order with the checked scenario, unique names, errors
//! from build, systems and finish reaching the caller through one path, finish once.

use crate::common;

use std::sync::{Arc, Mutex};

use bazaar::plugin::{Plugin, SimBuilder};
use bazaar::scenario::Scenario;
use bazaar::sim::{SimSet, Simulation, registry};
use bevy_ecs::prelude::*;
use common::MINIMAL;

fn scenario(text: &str) -> Scenario {
    Scenario::from_text("t.ron", text, &registry()).unwrap_or_else(|e| panic!("{e}"))
}

/// Records its lifecycle calls in a shared journal.
struct Witness {
    name: &'static str,
    journal: Arc<Mutex<Vec<String>>>,
}

impl Witness {
    fn new(name: &'static str, journal: &Arc<Mutex<Vec<String>>>) -> Self {
        Self {
            name,
            journal: Arc::clone(journal),
        }
    }
}

impl Plugin for Witness {
    fn name(&self) -> &str {
        self.name
    }

    fn build(&self, sim: &mut SimBuilder) -> bazaar::plugin::Result {
        // The builder sees the checked scenario.
        let personas = sim.scenario.personas.len();
        let customers: u64 = sim.scenario.population.iter().sum();
        self.journal.lock().unwrap().push(format!(
            "build {} ({personas} persona, {customers} customers)",
            self.name
        ));
        Ok(())
    }

    fn finish(&self, _world: &mut World) -> bazaar::plugin::Result {
        self.journal
            .lock()
            .unwrap()
            .push(format!("finish {}", self.name));
        Ok(())
    }
}

#[test]
fn plugins_build_in_order_and_finish_once() {
    let s = scenario(MINIMAL);
    let journal = Arc::new(Mutex::new(Vec::new()));
    let mut sim = Simulation::builder(&s)
        .threads(2)
        .add_plugin(Witness::new("first", &journal))
        .add_plugin(Witness::new("second", &journal))
        .build()
        .expect("builds");
    let names = sim.plugin_names();
    // The built-in behaviours come first, the caller's plugins last, in the order added.
    assert_eq!(&names[names.len() - 2..], ["first", "second"]);
    assert!(names.contains(&"shopping"), "{names:?}");
    sim.spawn_population();
    sim.step().expect("an hour runs");
    sim.finish().expect("finishes");
    sim.finish().expect("a second finish does nothing");
    assert_eq!(
        *journal.lock().unwrap(),
        [
            "build first (1 persona, 50 customers)",
            "build second (1 persona, 50 customers)",
            "finish first",
            "finish second",
        ]
    );
}

#[test]
fn two_plugins_of_one_name_are_refused() {
    let s = scenario(MINIMAL);
    let journal = Arc::new(Mutex::new(Vec::new()));
    let err = Simulation::builder(&s)
        .add_plugin(Witness::new("twin", &journal))
        .add_plugin(Witness::new("twin", &journal))
        .build()
        .err()
        .expect("refused");
    assert!(err.to_string().contains("twin"), "{err}");
    assert!(err.to_string().contains("twice"), "{err}");
    // Nothing was built: the check comes first.
    assert!(journal.lock().unwrap().is_empty());
}

#[test]
fn a_name_taken_by_a_built_in_is_refused() {
    let s = scenario(MINIMAL);
    let journal = Arc::new(Mutex::new(Vec::new()));
    let err = Simulation::builder(&s)
        .add_plugin(Witness::new("shopping", &journal))
        .build()
        .err()
        .expect("refused");
    assert!(err.to_string().contains("shopping"), "{err}");
}

/// Adds one chart, named `chart`.
struct Charting(&'static str, &'static [bazaar::report::charts::ChartDef]);

impl Plugin for Charting {
    fn name(&self) -> &str {
        self.0
    }

    fn build(&self, _sim: &mut SimBuilder) -> bazaar::plugin::Result {
        Ok(())
    }

    fn charts(&self) -> &'static [bazaar::report::charts::ChartDef] {
        self.1
    }
}

const HEATMAP: [bazaar::report::charts::ChartDef; 1] = [bazaar::report::charts::ChartDef {
    name: "hour_weekday_heatmap",
    ..bazaar::report::charts::BUILT_IN[0]
}];
const FOOTFALL: [bazaar::report::charts::ChartDef; 1] = [bazaar::report::charts::ChartDef {
    name: "footfall",
    ..bazaar::report::charts::BUILT_IN[0]
}];

#[test]
fn plugin_charts_are_collected_in_order_and_a_name_in_use_is_refused() {
    let s = scenario(MINIMAL);
    let sim = Simulation::builder(&s)
        .add_plugin(Charting("footfall", &FOOTFALL))
        .build()
        .unwrap();
    let charts = sim.world.resource::<bazaar::report::charts::PluginCharts>();
    assert_eq!(charts.0.len(), 1);
    assert_eq!(charts.0[0].name, "footfall");

    for (second, defs) in [("again", &FOOTFALL), ("heatmap", &HEATMAP)] {
        let err = Simulation::builder(&s)
            .add_plugin(Charting("footfall", &FOOTFALL))
            .add_plugin(Charting(second, defs))
            .build()
            .err()
            .expect("refused");
        assert_eq!(err.origin, second);
        assert!(
            err.message().contains(&format!("`{}`", defs[0].name)),
            "{err}"
        );
    }
}

/// Fails at build.
struct BrokenBuild;

impl Plugin for BrokenBuild {
    fn name(&self) -> &str {
        "broken_build"
    }

    fn build(&self, _sim: &mut SimBuilder) -> bazaar::plugin::Result {
        Err("the stock file is missing".into())
    }
}

#[test]
fn an_ambiguous_schedule_is_a_build_error_naming_the_systems() {
    let s = scenario(MINIMAL);
    let err = Simulation::builder(&s)
        .add_plugin(Unordered)
        .build()
        .err()
        .expect("refused");
    assert_eq!(err.origin, "schedule");
    assert!(err.message().contains("decay_loyalty"), "{}", err.message());
    assert!(err.message().contains("touch_loyalty"), "{}", err.message());
}

fn touch_loyalty(_q: Query<&mut bazaar::components::Loyalty>) {}

/// Adds a system that writes loyalty beside `decay_loyalty`, with no order between them.
struct Unordered;

impl Plugin for Unordered {
    fn build(&self, sim: &mut SimBuilder) -> bazaar::plugin::Result {
        sim.schedule
            .add_systems(touch_loyalty.in_set(SimSet::Update));
        Ok(())
    }
}

#[test]
fn a_build_error_names_its_plugin() {
    let s = scenario(MINIMAL);
    let err = Simulation::builder(&s)
        .add_plugin(BrokenBuild)
        .build()
        .err()
        .expect("refused");
    assert_eq!(err.origin, "broken_build");
    assert_eq!(err.message(), "the stock file is missing");
}

#[derive(Resource)]
struct FailOnHour(u32);

/// Its system fails in a given hour.
fn fail_on_hour(mut hours: Local<u32>, fail: Res<FailOnHour>) -> bazaar::plugin::Result {
    *hours += 1;
    if *hours == fail.0 {
        return Err(format!("hour {} went wrong", *hours).into());
    }
    Ok(())
}

struct FailingSystem(u32);

impl Plugin for FailingSystem {
    fn name(&self) -> &str {
        "failing"
    }

    fn build(&self, sim: &mut SimBuilder) -> bazaar::plugin::Result {
        sim.world.insert_resource(FailOnHour(self.0));
        sim.schedule
            .add_systems(fail_on_hour.in_set(SimSet::Update));
        Ok(())
    }
}

#[test]
fn a_systems_error_ends_the_hour_with_it_and_is_not_seen_by_another_simulation() {
    let s = scenario(MINIMAL);
    let mut failing = Simulation::builder(&s)
        .add_plugin(FailingSystem(3))
        .build()
        .expect("builds");
    let mut healthy = Simulation::builder(&s).build().expect("builds");
    failing.spawn_population();
    healthy.spawn_population();
    failing.step().expect("hour 1");
    failing.step().expect("hour 2");
    let err = failing.step().expect_err("hour 3 fails");
    assert!(err.origin.contains("fail_on_hour"), "{}", err.origin);
    assert_eq!(err.message(), "hour 3 went wrong");
    // The same thread runs the other simulation: its hours are unaffected.
    for _ in 0..5 {
        healthy.step().expect("the healthy simulation runs");
    }
    // And the failing one reports each failure once: hour 4 is fine again.
    failing.step().expect("hour 4");
}

use bazaar::components::{AgentId, Engagement};
use bazaar::plugin::Reserve;
use bazaar::population::{Population, spawn_customers};

/// Spawns `per_day` customers of persona 0 each midnight from day 1, having reserved room for
/// `reserved` over the run.
struct Referrals {
    per_day: u32,
    reserved: u64,
}

#[derive(Resource)]
struct PerDay(u32);

fn refer(world: &mut World) -> bazaar::plugin::Result {
    let clock = *world.resource::<bazaar::calendar::Clock>();
    if clock.hour() != 0 || clock.day() == 0 {
        return Ok(());
    }
    let n = world.resource::<PerDay>().0;
    spawn_customers(world, 0, n)?;
    Ok(())
}

impl Plugin for Referrals {
    fn name(&self) -> &str {
        "referrals"
    }

    fn build(&self, sim: &mut SimBuilder) -> bazaar::plugin::Result {
        sim.world.insert_resource(PerDay(self.per_day));
        sim.schedule.add_systems(
            refer
                .in_set(SimSet::Plan)
                .after(bazaar::systems::acquisition::acquire_customers)
                .before(bazaar::systems::planning::plan_visits),
        );
        Ok(())
    }

    fn reserve(&self, _scenario: &Scenario) -> Reserve {
        Reserve {
            customers: self.reserved,
            bytes_per_customer: 0,
        }
    }
}

/// The rows the customer table has room for.
fn customer_table_capacity(sim: &Simulation) -> usize {
    let id = sim.world.components().component_id::<AgentId>().unwrap();
    let tables: Vec<usize> = sim
        .world
        .storages()
        .tables
        .iter()
        .filter(|t| t.has_column(id))
        .map(|t| t.capacity())
        .collect();
    assert_eq!(tables.len(), 1, "one customer table");
    tables[0]
}

fn ids(sim: &mut Simulation) -> Vec<u32> {
    let mut q = sim.world.query::<&AgentId>();
    q.iter(&sim.world).map(|a| a.0).collect()
}

#[test]
fn a_plugin_spawns_customers_mid_run_into_reserved_rows() {
    let s = scenario(MINIMAL);
    let mut sim = Simulation::builder(&s)
        .add_plugin(Referrals {
            per_day: 4,
            reserved: 12,
        })
        .check_invariants(true)
        .build()
        .expect("builds");
    sim.spawn_population();
    // The rows for the reservation were made with the starting population.
    let sized = customer_table_capacity(&sim);
    assert!(sized >= 62, "{sized}");
    for _ in 0..3 * 24 + 1 {
        sim.step().expect("an hour runs, invariants hold");
    }
    assert_eq!(
        ids(&mut sim),
        (0..62).collect::<Vec<_>>(),
        "dense, in row order"
    );
    let population = sim.world.resource::<Population>();
    assert_eq!(population.acquired, [12]);
    assert_eq!((population.next_id, population.room_left()), (62, 0));
    assert_eq!(
        customer_table_capacity(&sim),
        sized,
        "the table was not regrown"
    );
    // The referred customers joined on the day they were spawned.
    let mut q = sim.world.query::<(&AgentId, &Engagement)>();
    for (id, e) in q.iter(&sim.world) {
        let day = if id.0 < 50 { 0 } else { (id.0 - 50) / 4 + 1 };
        assert_eq!(i64::from(e.joined), i64::from(day), "customer {}", id.0);
    }
}

#[test]
fn spawning_past_the_reservation_is_an_error() {
    let s = scenario(MINIMAL);
    let mut sim = Simulation::builder(&s)
        .add_plugin(Referrals {
            per_day: 5,
            reserved: 8,
        })
        .build()
        .expect("builds");
    sim.spawn_population();
    for _ in 0..25 {
        sim.step().expect("day 1's midnight: 5 of 8");
    }
    let err = (0..24)
        .find_map(|_| sim.step().err())
        .expect("day 2 asks for 5 more than the 3 left");
    assert!(err.origin.contains("refer"), "{}", err.origin);
    assert!(
        err.message().contains("only 3 of the 58 rows"),
        "{}",
        err.message()
    );
}

#[test]
fn the_memory_guard_counts_what_plugins_reserve() {
    let s = scenario(MINIMAL);
    let plain = bazaar::run::memory_estimate(&s, Reserve::default());
    let reserved = bazaar::run::memory_estimate(
        &s,
        Reserve {
            customers: 1_000,
            bytes_per_customer: 64,
        },
    );
    assert_eq!(reserved.1, plain.1 + 64);
    assert_eq!(reserved.0 - plain.0, 1_050 * (plain.1 + 64) - 50 * plain.1);
    let err = bazaar::run::check_capacity(
        &s,
        Reserve {
            customers: u64::from(u32::MAX),
            bytes_per_customer: 0,
        },
    )
    .expect_err("more customers than ids");
    assert!(err.to_string().contains("4294967345"), "{err}");
}

#[derive(Component, Default, Clone, Copy, Debug, PartialEq)]
struct HomeStore(u16);

/// Gives every customer a `HomeStore` at spawn, then sets them by id.
struct Stores;

fn assign_stores(mut q: Query<(&AgentId, &mut HomeStore)>) {
    for (id, mut home) in &mut q {
        home.0 = (id.0 % 3) as u16;
    }
}

impl Plugin for Stores {
    fn build(&self, sim: &mut SimBuilder) -> bazaar::plugin::Result {
        sim.customer_component::<HomeStore>()?;
        sim.schedule
            .add_systems(assign_stores.in_set(SimSet::Update));
        Ok(())
    }
}

#[test]
fn a_customer_component_is_spawned_with_every_customer_and_rows_stay_put() {
    let s = scenario(MINIMAL);
    let mut sim = Simulation::builder(&s)
        .add_plugin(Stores)
        .check_invariants(true)
        .build()
        .expect("builds");
    sim.spawn_population();
    sim.step().expect("invariants hold");
    let mut q = sim.world.query::<(&AgentId, &HomeStore)>();
    let homes: Vec<(u32, u16)> = q.iter(&sim.world).map(|(a, h)| (a.0, h.0)).collect();
    assert_eq!(homes.len(), 50);
    assert!(homes.iter().all(|&(id, h)| h == (id % 3) as u16));
}

/// Breaks the rows-never-move rule: inserts a component into one customer.
struct Mover;

#[derive(Component)]
struct Marked;

fn mark_one(world: &mut World) {
    let mut q = world.query::<(Entity, &AgentId)>();
    let target = q.iter(world).find(|(_, a)| a.0 == 7).map(|(e, _)| e);
    if let Some(e) = target {
        world.entity_mut(e).insert(Marked);
    }
}

impl Plugin for Mover {
    fn build(&self, sim: &mut SimBuilder) -> bazaar::plugin::Result {
        sim.schedule.add_systems(
            mark_one
                .in_set(SimSet::Plan)
                .after(bazaar::systems::acquisition::acquire_customers)
                .before(bazaar::systems::planning::plan_visits),
        );
        Ok(())
    }
}

#[test]
fn moving_a_customers_row_fails_loudly_when_checked() {
    let s = scenario(MINIMAL);
    let mut sim = Simulation::builder(&s)
        .add_plugin(Mover)
        .check_invariants(true)
        .build()
        .expect("builds");
    sim.spawn_population();
    let err = sim
        .step()
        .expect_err("the breach is caught in the first hour");
    assert_eq!(err.origin, "population invariants");
    assert!(err.message().contains("rows moved"), "{}", err.message());
}

/// The largest rayon pool size a system saw inside the simulation's pool, hour by hour.
#[derive(Resource, Default)]
struct PoolSeen(Arc<Mutex<Vec<usize>>>);

fn see_pool(pool: Res<bazaar::sim::SimPool>, seen: Res<PoolSeen>) {
    let sizes = Mutex::new(Vec::new());
    pool.for_each_chunk(
        1 << 16,
        || (),
        |_, _| sizes.lock().unwrap().push(rayon::current_num_threads()),
    );
    let max = sizes.into_inner().unwrap().into_iter().max().unwrap_or(0);
    seen.0.lock().unwrap().push(max);
}

struct PoolWatcher(Arc<Mutex<Vec<usize>>>);

impl Plugin for PoolWatcher {
    fn name(&self) -> &str {
        "pool_watcher"
    }

    fn build(&self, sim: &mut SimBuilder) -> bazaar::plugin::Result {
        sim.world.insert_resource(PoolSeen(Arc::clone(&self.0)));
        sim.schedule.add_systems(see_pool.in_set(SimSet::Update));
        Ok(())
    }
}

#[test]
fn two_simulations_in_one_process_each_keep_their_thread_count() {
    let s = scenario(MINIMAL);
    let (one, three) = (Arc::default(), Arc::default());
    let mut a = Simulation::builder(&s)
        .threads(1)
        .add_plugin(PoolWatcher(Arc::clone(&one)))
        .build()
        .unwrap();
    let mut b = Simulation::builder(&s)
        .threads(3)
        .add_plugin(PoolWatcher(Arc::clone(&three)))
        .build()
        .unwrap();
    a.spawn_population();
    b.spawn_population();
    // Interleaved hours: neither simulation's pool is the other's or a process-wide one.
    for _ in 0..4 {
        a.step().unwrap();
        b.step().unwrap();
    }
    assert_eq!(*one.lock().unwrap(), [1; 4]);
    assert_eq!(*three.lock().unwrap(), [3; 4]);
}
