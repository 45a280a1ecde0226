//! The simulation: a bevy_ecs `World` of customers, one `Schedule` run per simulated hour, and
//! the plugin mechanism through which every behaviour is added.
//!
//! The schedule's system sets run in a fixed, declared order each hour:
//! [`SimSet::Calendar`] → [`SimSet::Plan`] → [`SimSet::Shop`] → [`SimSet::Allocate`] →
//! [`SimSet::Settle`] → [`SimSet::Update`] → [`SimSet::Churn`] → [`SimSet::Observe`]. A behaviour is a [`Plugin`] that adds its resources and systems
//! `.in_set(...)` one of these (see [`crate::plugin`]); optional ones are enabled by name,
//! with their settings, from the scenario's `systems: [...]` list through [`registry`].

use std::sync::Arc;

use bevy_ecs::error::FallbackErrorHandler;
use bevy_ecs::prelude::*;
use bevy_ecs::schedule::{LogLevel, ScheduleBuildSettings, ScheduleLabel, SingleThreadedExecutor};
use chrono::NaiveDate;
use rayon::prelude::*;

use crate::calendar::{Calendar, Clock, PayPeriod, Today};
use crate::checkpoint::{ColumnReader, Header, Snapshot, State};
use crate::components::*;
use crate::money::round_minor;
use crate::plugin::{Registry, SimError, record_failure, take_failure};
use crate::population::Population;
use crate::rng::{Purpose, Stream};
use crate::scenario::Scenario;
use crate::systems;

/// The ordered phases of one simulated hour.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimSet {
    /// Advance the clock; recompute the day's multipliers at midnight.
    Calendar,
    /// At the start of a day, each customer decides whether and when to shop.
    Plan,
    /// Customers whose visit falls in this hour build a basket and pay (without allocators),
    /// or only build it (with them; see [`crate::hooks`]).
    Shop,
    /// Allocators share scarce resources out over the hour's demand, one after another.
    Allocate,
    /// With allocators: the hour's visits are paid for and their after-visit hooks run.
    Settle,
    /// Budgets, loyalty and other state that changes with time.
    Update,
    /// Once a day: who leaves (attrition, churn scoring and retention).
    Churn,
    /// Records reach the sinks in a deterministic order; aggregates are updated.
    Observe,
}

/// Points inside [`SimSet::Observe`] that other plugins (the sinks, the analytics) order
/// against, without naming the observing systems.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Observed {
    /// The hour's records are collected and tallied.
    Hour,
    /// The day is closed ([`crate::records::ClosedDay`] is ready at the last hour).
    Day,
}

/// The label of the hourly schedule.
#[derive(ScheduleLabel, Debug, Clone, PartialEq, Eq, Hash)]
pub struct Hour;

pub use crate::plugin::{Plugin, SimBuilder};

/// The scenario's parameters, shared read-only by every system.
#[derive(Resource, Debug, Clone)]
pub struct Model {
    /// Master seed.
    pub seed: u64,
    /// Personas by index.
    pub personas: Vec<crate::persona::Persona>,
    /// Number of catalog categories.
    pub categories: usize,
    /// The calendar.
    pub calendar: Calendar,
    /// Customers per persona at the start.
    pub population: Vec<u64>,
    /// New customers per day, per persona.
    pub new_per_day: Vec<f64>,
}

impl Model {
    /// A customer's age and income, drawn again from its spawn stream (they are not stored;
    /// see [`Demographics`]).
    pub fn demographics(&self, id: AgentId, persona: Persona) -> Demographics {
        let mut rng = Stream::for_agent(self.seed, id.0, 0, Purpose::Spawn);
        Demographics::draw(&mut rng, &self.personas[usize::from(persona.0)]).0
    }
}

/// The behaviours a scenario can enable in `systems: [...]`. Adding one is its file under
/// `src/systems/` plus one line in `optional_behaviours!` (`src/systems/mod.rs`).
pub fn registry() -> Registry {
    systems::optional(Registry::new())
}

/// The simulation's own rayon pool, one per [`Simulation`] with the thread count it was built
/// with, apart from the output folder's encoding pool ([`crate::output::OutputDir::pool`]),
/// so a writer's long encoding job never queues ahead of the hour's simulation work. The
/// customer systems split their rows over it (`pool.0.install(..)`), and so does the spawn.
#[derive(Resource, Clone)]
pub struct SimPool(pub Arc<rayon::ThreadPool>);

impl SimPool {
    /// Runs `f` over `len` rows in chunks of [`crate::systems::CHUNK`], in parallel on this
    /// pool, each worker with its own state from `init` (a thread-local buffer whose
    /// contents are merged in an order-independent way afterwards).
    pub fn for_each_chunk<T>(
        &self,
        len: usize,
        init: impl Fn() -> T + Sync + Send,
        f: impl Fn(&mut T, std::ops::Range<usize>) + Sync + Send,
    ) {
        use crate::systems::{CHUNK, chunk_rows};
        self.0.install(|| {
            (0..len.div_ceil(CHUNK))
                .into_par_iter()
                .for_each_init(init, |t, k| f(t, chunk_rows(k, CHUNK.min(len - k * CHUNK))));
        });
    }

    /// A pool of `n` threads (at least one), named `bazaar-sim-*`.
    pub fn new(n: usize) -> Result<Self, rayon::ThreadPoolBuildError> {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .thread_name(|i| format!("bazaar-sim-{i}"))
            .build()
            .map(|p| Self(Arc::new(p)))
    }
}

/// A world of customers and the schedule that advances it.
pub struct Simulation {
    /// The ECS world.
    pub world: World,
    /// The hourly schedule.
    pub schedule: Schedule,
    /// Every plugin, in build order; finished in the same order.
    plugins: Vec<Arc<dyn Plugin>>,
    /// Whether the plugins were finished.
    finished: bool,
    /// Whether the population's invariants are checked after every hour.
    checks: bool,
}

/// Assembles a [`Simulation`]: resources the plugins need, then plugins, then [`build`].
///
/// [`build`]: SimulationBuilder::build
pub struct SimulationBuilder<'s> {
    scenario: &'s Scenario,
    threads: usize,
    world: World,
    extra: Vec<Arc<dyn Plugin>>,
    checks: bool,
    burn_in: bool,
    grow_from: Option<u32>,
}

impl SimulationBuilder<'_> {
    /// Sizes the population for a simulation that will take up a checkpoint holding
    /// `customers` ([`Simulation::fork`]): room for them and for every customer the
    /// scenario and its plugins may add over a whole run, whatever the checkpoint's own
    /// scenario added before it.
    pub fn grow_from(mut self, customers: u32) -> Self {
        self.grow_from = Some(customers);
        self
    }

    /// Whether a warm start takes its customers' states from a burn-in ([`crate::warm`]);
    /// on unless turned off (the burn-in's own simulation turns it off).
    pub fn burn_in(mut self, on: bool) -> Self {
        self.burn_in = on;
        self
    }

    /// Worker threads of the simulation's pool (the first simulation of a process sets it).
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n;
        self
    }

    /// Whether to check the population's invariants after every hour
    /// ([`crate::population::check_invariants`]): on in debug builds, and in tests that
    /// ask for it; a breach ends the run with an error naming it.
    pub fn check_invariants(mut self, on: bool) -> Self {
        self.checks = on;
        self
    }

    /// Inserts a resource before any plugin is built (the output folder, for example).
    pub fn insert_resource<R: Resource>(mut self, resource: R) -> Self {
        self.world.insert_resource(resource);
        self
    }

    /// Adds a plugin after the built-in behaviours and the scenario's `systems`.
    pub fn add_plugin(mut self, plugin: impl Plugin) -> Self {
        self.extra.push(Arc::new(plugin));
        self
    }

    /// Adds plugins, in order, after those already added.
    pub fn add_plugins(mut self, plugins: impl IntoIterator<Item = Box<dyn Plugin>>) -> Self {
        self.extra.extend(plugins.into_iter().map(Arc::from));
        self
    }

    /// Builds every plugin in order: the built-in behaviours, the scenario's `systems`
    /// with their settings, then the added plugins. Two plugins with one name are an error,
    /// as is any plugin's own build error. Customers are not spawned yet.
    pub fn build(self) -> Result<Simulation, SimError> {
        let Self {
            scenario,
            threads,
            mut world,
            extra,
            checks,
            burn_in,
            grow_from,
        } = self;
        let pool = SimPool::new(threads).map_err(|e| {
            SimError::new(
                "threads",
                format!("cannot start the simulation's threads: {e}"),
            )
        })?;
        world.insert_resource(pool);
        let mut schedule = Schedule::new(Hour);
        schedule.set_build_settings(ScheduleBuildSettings {
            ambiguity_detection: LogLevel::Error,
            ..Default::default()
        });
        // Systems run one after another (the sets are chained, so there is little to overlap)
        // and each spreads its own work over the pool; this saves the multi-threaded
        // executor's per-system task overhead, paid 24 times a simulated day.
        schedule.set_executor(SingleThreadedExecutor::new());
        schedule.configure_sets(
            (
                SimSet::Calendar,
                SimSet::Plan,
                SimSet::Shop,
                SimSet::Allocate,
                SimSet::Settle,
                SimSet::Update,
                SimSet::Churn,
                SimSet::Observe,
            )
                .chain(),
        );
        // A system's error ends the run (`Simulation::step`), not the process.
        world.insert_resource(FallbackErrorHandler(record_failure));
        let mut personas = scenario.personas.clone();
        if burn_in && crate::warm::needed(scenario) {
            let states = crate::warm::burn_in(scenario, threads)?;
            for (p, s) in personas.iter_mut().zip(states) {
                p.warm_states = s;
            }
        }
        world.insert_resource(Model {
            seed: scenario.seed,
            personas,
            categories: scenario.catalog.len(),
            calendar: scenario.calendar.clone(),
            population: scenario.population.clone(),
            new_per_day: scenario.new_per_day.clone(),
        });
        world.insert_resource(Clock::new(scenario.start, scenario.days));
        world.insert_resource(Today::neutral(scenario.start, scenario.catalog.len()));
        // Room for the starting customers, the scenario's acquisitions and every plugin's
        // reservation (the scenario's `systems` are in `max_customers`).
        let capacity = extra
            .iter()
            .map(|p| p.reserve(scenario).customers)
            .fold(scenario.max_customers(), u64::saturating_add);
        let capacity = match grow_from {
            Some(n) => capacity
                .saturating_sub(scenario.customers())
                .saturating_add(u64::from(n)),
            None => capacity,
        };
        let capacity = u32::try_from(capacity).map_err(|_| {
            SimError::new(
                "population",
                format!("{capacity} customers over the run is more than 4,294,967,295 ids"),
            )
        })?;
        let cluster = world
            .get_resource_or_insert_with(crate::cluster::Cluster::solo)
            .clone();
        world.insert_resource(if cluster.sharded() {
            // This rank's share of each persona's starting customers, of the reservation,
            // and one more row for each group acquired (a group's split rounds up).
            let starting = u32::try_from(scenario.customers()).unwrap_or(u32::MAX);
            let block: u64 = cluster
                .starting_shares(&scenario.population)
                .iter()
                .map(|ids| ids.len() as u64)
                .sum();
            // Acquisition and word of mouth each spawn a group a persona a day.
            let groups = 2 * u64::from(scenario.days + 1) * scenario.personas.len() as u64;
            let spare = u64::from(capacity - starting).div_ceil(cluster.ranks() as u64);
            let rows = u32::try_from(block + spare + groups).unwrap_or(u32::MAX);
            Population::shared(
                scenario.personas.len(),
                capacity,
                rows,
                cluster.rank(),
                cluster.ranks(),
            )
        } else {
            Population::new(scenario.personas.len(), capacity)
        });

        let mut plugins: Vec<Arc<dyn Plugin>> =
            systems::builtin().into_iter().map(Arc::from).collect();
        plugins.extend(
            scenario
                .systems
                .iter()
                .map(|s| -> Arc<dyn Plugin> { s.plugin.clone() }),
        );
        plugins.extend(extra);
        let mut names = std::collections::HashSet::new();
        for p in &plugins {
            if !names.insert(p.name()) {
                return Err(SimError::new(
                    p.name(),
                    format!("the plugin `{}` is added twice", p.name()),
                ));
            }
        }
        let mut builder = SimBuilder {
            world: &mut world,
            schedule: &mut schedule,
            scenario,
        };
        let mut charts = crate::report::charts::PluginCharts::default();
        for p in &plugins {
            p.build(&mut builder).map_err(|error| SimError {
                origin: p.name().to_owned(),
                error,
            })?;
            for chart in p.charts() {
                charts.add(*chart).map_err(|e| SimError::new(p.name(), e))?;
            }
        }
        world.insert_resource(charts);
        // Built now so that two systems touching the same data with no declared order are
        // an error here, naming them, and not a panic in the first hour.
        schedule.initialize(&mut world).map_err(|e| {
            SimError::new(
                "schedule",
                format!(
                    "{}\nhint: order a plugin's system against the built-in systems of its \
                     set with `.before(..)` / `.after(..)` (ARCHITECTURE.md lists them)",
                    e.to_string(schedule.graph(), &world).trim_end()
                ),
            )
        })?;
        Ok(Simulation {
            world,
            schedule,
            plugins,
            finished: false,
            checks,
        })
    }
}

impl Simulation {
    /// Starts assembling a simulation of `scenario`.
    pub fn builder(scenario: &Scenario) -> SimulationBuilder<'_> {
        SimulationBuilder {
            scenario,
            threads: std::thread::available_parallelism().map_or(1, usize::from),
            world: World::new(),
            extra: Vec::new(),
            checks: cfg!(debug_assertions),
            burn_in: true,
            grow_from: None,
        }
    }

    /// Builds the world for a scenario: resources, the built-in behaviours, the optional ones
    /// the scenario enables, and `extra` plugins from the caller. Customers are not spawned
    /// yet. Shorthand for [`Simulation::builder`].
    pub fn new(
        scenario: &Scenario,
        threads: usize,
        extra: Vec<Box<dyn Plugin>>,
    ) -> Result<Self, SimError> {
        Self::builder(scenario)
            .threads(threads)
            .add_plugins(extra)
            .build()
    }

    /// Spawns every customer of the scenario, agent ids dense from 0 in persona order (in a
    /// sharded run, this process's share of each persona's ids, so every rank has the same
    /// mix of personas and about the same work).
    pub fn spawn_population(&mut self) {
        let model = self.world.resource::<Model>().clone();
        let clock = *self.world.resource::<Clock>();
        let total = model.population.iter().sum::<u64>() as u32;
        let population = self.world.resource::<Population>();
        let mine = population.starting_shares(&model.population);
        let held: usize = mine.iter().map(ExactSizeIterator::len).sum();
        // Room for every customer the run will acquire, so the columns are never regrown
        // (a regrowth copies every column of the world).
        let room = population.rows_capacity.saturating_sub(held as u32) as usize;
        let world = &mut self.world;
        let pool = world.resource::<SimPool>().0.clone();
        std::thread::scope(|scope| {
            let customers =
                InitialPopulation::draw(scope, &model, clock.start, &pool, mine.clone());
            spawn_rows(world, customers, held, room)
        });
        let mut population = self.world.resource_mut::<Population>();
        population.next_id = total;
        for ids in mine {
            population.hold(ids);
        }
    }

    /// The simulation's state at the end of the day just run (or before the first hour),
    /// for a checkpoint of `scenario`, the scenario it was built from
    /// ([`crate::checkpoint`]).
    pub fn checkpoint(&mut self, scenario: &Scenario) -> Result<Snapshot, SimError> {
        let clock = self.clock();
        let day = match clock.tick {
            u32::MAX => 0,
            t if t % 24 == 23 => t / 24 + 1,
            _ => {
                return Err(SimError::new(
                    "checkpoint",
                    format!(
                        "a checkpoint is taken at the end of a day, not at hour {} of day {}",
                        clock.hour(),
                        clock.day()
                    ),
                ));
            }
        };
        let population = self.world.resource::<Population>().clone();
        // Rows hold the ids this process holds in order (`Population::held`: 0..next_id
        // alone), so the columns are written as the query walks the table; anything else is
        // refused rather than sorted. A rank of a sharded run saves its own rows.
        let n = population.rows() as usize;
        let mut ids = population.rows_from(0).map(|(_, id)| id);
        let mut columns = Vec::with_capacity(n * CUSTOMER_BYTES);
        let mut found = 0usize;
        let mut in_order = true;
        for (id, p, b, l, ledger, e) in self
            .world
            .query::<(&AgentId, &Persona, &Budget, &Loyalty, &Ledger, &Engagement)>()
            .iter(&self.world)
        {
            in_order &= ids.next() == Some(id.0);
            found += 1;
            write_customer(&mut columns, (*p, *b, *l, *ledger, *e));
        }
        if found != n || !in_order {
            return Err(SimError::new(
                "checkpoint",
                format!(
                    "the customers' rows are not the {n} ids held, in order ({found} customers found)"
                ),
            ));
        }
        let mut sections = std::collections::BTreeMap::new();
        sections.insert("customers".to_owned(), columns);
        let mut core = State::default();
        let core_err = |e| SimError {
            origin: "checkpoint".into(),
            error: e,
        };
        core.put("tick", &clock.tick).map_err(core_err)?;
        core.put("acquired", &population.acquired)
            .map_err(core_err)?;
        core.put("churned", &population.churned).map_err(core_err)?;
        core.put("held", population.held()).map_err(core_err)?;
        sections.insert("core".to_owned(), core.to_bytes());
        for p in &self.plugins {
            let mut state = State::default();
            p.save(&mut self.world, &mut state)
                .map_err(|error| SimError {
                    origin: p.name().to_owned(),
                    error,
                })?;
            if !state.is_empty() {
                sections.insert(format!("plugin:{}", p.name()), state.to_bytes());
            }
        }
        Ok(Snapshot {
            header: self.header(scenario, day),
            sections,
        })
    }

    /// What a checkpoint of this simulation of `scenario` at the end of day `day` is of.
    pub fn header(&self, scenario: &Scenario, day: u32) -> Header {
        let cluster = self
            .world
            .get_resource::<crate::cluster::Cluster>()
            .cloned()
            .unwrap_or_default();
        Header {
            format: crate::checkpoint::FORMAT,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            scenario: crate::checkpoint::fingerprint(scenario),
            plugins: self
                .plugin_names()
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            day,
            customers: self.next_id(),
            ranks: cluster.ranks() as u32,
            rank: cluster.rank() as u32,
            shape: crate::checkpoint::Shape::of(scenario),
        }
    }

    /// Takes up `snapshot` in a simulation freshly built from the scenario it was taken of,
    /// in place of [`Simulation::spawn_population`]: its customers, clock, counters and
    /// every plugin's state. The next [`Simulation::step`] runs the first hour of the day
    /// after the snapshot's.
    pub fn restore(&mut self, scenario: &Scenario, snapshot: &Snapshot) -> Result<(), SimError> {
        snapshot
            .check(&self.header(scenario, snapshot.header.day))
            .map_err(|e| SimError::new("checkpoint", e.to_string()))?;
        self.take_up(snapshot)
    }

    /// Branches from `snapshot` into this simulation of `arm`, a scenario that may differ
    /// from the one the snapshot was taken of in all but its customers' shape
    /// ([`crate::checkpoint::Snapshot::fork_check`]): its customers, clock and counters are
    /// the snapshot's, a plugin both have takes up its saved state, and a plugin only the
    /// arm has starts as it would at the run's start. Every customer draws the same random
    /// streams in every arm (common random numbers), so an arm the same as the base goes on
    /// exactly as the base.
    pub fn fork(&mut self, arm: &Scenario, snapshot: &Snapshot) -> Result<(), SimError> {
        snapshot
            .fork_check(&self.header(arm, snapshot.header.day))
            .map_err(|e| SimError::new("checkpoint", e.to_string()))?;
        self.take_up(snapshot)
    }

    /// The shared part of [`Simulation::restore`] and [`Simulation::fork`].
    fn take_up(&mut self, snapshot: &Snapshot) -> Result<(), SimError> {
        let fail =
            |e: crate::checkpoint::CheckpointError| SimError::new("checkpoint", e.to_string());
        if self.next_id() != 0 {
            return Err(SimError::new(
                "checkpoint",
                "a checkpoint is restored into a simulation with no customers yet",
            ));
        }
        let section = |name: &str| {
            snapshot.sections.get(name).ok_or_else(|| {
                SimError::new(
                    "checkpoint",
                    format!("the checkpoint has no `{name}` section"),
                )
            })
        };
        let core = State::from_bytes(section("core")?).map_err(fail)?;
        let core_err = |e| SimError {
            origin: "checkpoint".into(),
            error: e,
        };
        let tick: u32 = core.get("tick").map_err(core_err)?;
        let acquired: Vec<u64> = core.get("acquired").map_err(core_err)?;
        let churned: Vec<u64> = core.get("churned").map_err(core_err)?;
        let bytes = section("customers")?;
        let next_id = snapshot.header.customers;
        // The runs of ids the rows hold: all of them in a run of one process, this rank's
        // share in a sharded one (what its own checkpoint saved).
        let held: Vec<(u32, u32)> = core.get("held").map_err(core_err)?;
        let total: usize = held.iter().map(|&(_, n)| n as usize).sum();
        let within = held
            .iter()
            .all(|&(first, n)| first.checked_add(n).is_some_and(|end| end <= next_id))
            && held.windows(2).all(|w| w[0].0 + w[0].1 <= w[1].0);
        let capacity = self.world.resource::<Population>().rows_capacity as usize;
        if bytes.len() != total * CUSTOMER_BYTES || total > capacity || !within {
            return Err(SimError::new(
                "checkpoint",
                format!(
                    "the checkpoint's customers do not fit: {total} customers in {} bytes, room for {capacity}",
                    bytes.len()
                ),
            ));
        }
        // Decoded as they are spawned; the length is checked above, so every record reads
        // (and a count below says so).
        let mut reader = ColumnReader::new(bytes);
        let customers = held
            .iter()
            .flat_map(|&(first, n)| first..first + n)
            .map_while(|id| read_customer(&mut reader, id).ok());
        let world = &mut self.world;
        let spawned = spawn_rows(world, customers, total, capacity - total);
        if spawned != total {
            return Err(SimError::new(
                "checkpoint",
                format!("the checkpoint's customers are damaged: {spawned} of {total} read"),
            ));
        }
        {
            let mut population = world.resource_mut::<Population>();
            population.next_id = next_id;
            for &(first, n) in &held {
                population.hold(first..first + n);
            }
            population.acquired = acquired;
            population.churned = churned;
        }
        world.resource_mut::<Clock>().tick = tick;
        // A plugin that saved nothing (or, in an arm, one the base did not have) keeps the
        // state its build gave it.
        for p in &self.plugins {
            let Some(bytes) = snapshot.sections.get(&format!("plugin:{}", p.name())) else {
                continue;
            };
            let state = State::from_bytes(bytes).map_err(fail)?;
            p.restore(&mut self.world, &state)
                .map_err(|error| SimError {
                    origin: p.name().to_owned(),
                    error,
                })?;
        }
        Ok(())
    }

    /// The number of agent ids handed out so far (initial and acquired customers).
    pub fn next_id(&self) -> u32 {
        self.world.resource::<Population>().next_id
    }

    /// Runs one simulated hour. A system's error (the first, if several fail) is returned
    /// once the hour's schedule has run.
    pub fn step(&mut self) -> Result<(), SimError> {
        take_failure();
        self.schedule.run(&mut self.world);
        if let Some(failure) = take_failure() {
            return Err(failure);
        }
        if self.checks {
            crate::population::check_invariants(&mut self.world)
                .map_err(|e| SimError::new("population invariants", e))?;
        }
        Ok(())
    }

    /// Finishes every plugin once, in build order (closing tables, writing results); the
    /// first error stops it. A second call does nothing.
    pub fn finish(&mut self) -> Result<(), SimError> {
        if std::mem::replace(&mut self.finished, true) {
            return Ok(());
        }
        let timings = self
            .world
            .get_resource::<crate::timings::Timings>()
            .cloned();
        let mut phases = timings.map(crate::timings::Phases::start);
        for p in &self.plugins {
            p.finish(&mut self.world).map_err(|error| SimError {
                origin: p.name().to_owned(),
                error,
            })?;
            if let Some(phases) = &mut phases {
                phases.end(&format!("finish: {}", p.name()));
            }
        }
        Ok(())
    }

    /// Every plugin's metrics ([`Plugin::metrics`]), in build order.
    pub fn plugin_metrics(&self) -> Vec<(String, f64)> {
        self.plugins
            .iter()
            .flat_map(|p| p.metrics(&self.world))
            .collect()
    }

    /// The names of the plugins, in build order.
    pub fn plugin_names(&self) -> Vec<&str> {
        self.plugins.iter().map(|p| p.name()).collect()
    }

    /// The clock.
    pub fn clock(&self) -> Clock {
        *self.world.resource::<Clock>()
    }

    /// Whether every hour of the scenario has run.
    pub fn finished(&self) -> bool {
        let c = self.clock();
        c.tick != u32::MAX && c.tick + 1 >= c.total_ticks()
    }
}

/// The starting population (of each persona, the ids given) as an exact-size iterator of
/// bundles, in id order. A producer thread draws the bundles a chunk at a time in parallel
/// (each customer's draws depend only on its id) while the ECS spawns the previous chunk, so
/// at most a few chunks exist at once.
struct InitialPopulation {
    /// Customers not yet handed out.
    left: usize,
    /// The current chunk, reversed (popped from the end).
    chunk: Vec<CustomerBundle>,
    /// Chunks from the producer.
    chunks: std::sync::mpsc::Receiver<Vec<CustomerBundle>>,
}

impl InitialPopulation {
    /// Customers drawn per parallel chunk.
    const CHUNK: u32 = 1 << 16;

    /// Starts drawing `model`'s starting population on a thread of `scope`.
    fn draw<'scope>(
        scope: &'scope std::thread::Scope<'scope, '_>,
        model: &'scope Model,
        start: NaiveDate,
        pool: &'scope rayon::ThreadPool,
        ids: Vec<std::ops::Range<u32>>,
    ) -> Self {
        let (send, chunks) = std::sync::mpsc::sync_channel(2);
        let total = ids.iter().map(ExactSizeIterator::len).sum();
        scope.spawn(move || {
            for (p, mine) in ids.into_iter().enumerate() {
                let persona = &model.personas[p];
                let share = persona
                    .budget
                    .as_ref()
                    .map(|b| PayPeriod::on(start, b.payday));
                // The ids of this persona this process holds.
                let (mut next, end) = (mine.start, mine.end);
                while next < end {
                    let ids = next..end.min(next + Self::CHUNK);
                    next = ids.end;
                    let chunk = pool.install(|| {
                        ids.into_par_iter()
                            .rev()
                            .map(|id| {
                                draw_customer(model.seed, id, p as u8, persona, share, 0, true)
                            })
                            .collect()
                    });
                    if send.send(chunk).is_err() {
                        return; // the spawner stopped early
                    }
                }
            }
        });
        Self {
            left: total,
            chunk: Vec::new(),
            chunks,
        }
    }
}

impl Iterator for InitialPopulation {
    type Item = CustomerBundle;

    fn next(&mut self) -> Option<CustomerBundle> {
        if self.chunk.is_empty() && self.left > 0 {
            self.chunk = self.chunks.recv().ok()?;
        }
        let bundle = self.chunk.pop()?;
        self.left -= 1;
        Some(bundle)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for InitialPopulation {}

/// Sizes the ECS's per-entity records (generation and location, 24 bytes an entity index)
/// for a batch of known size before it is spawned.
///
/// bevy_ecs grows that table by doubling as indices first appear and then fills it to its
/// capacity, so a batch just past a power of two would leave up to half of it unused: 16.8M
/// records for 10.24M entities, 150 MiB at 10M customers. Spawning an empty entity at the
/// index just past the batch grows the table once, to its exact size. The batch's indices
/// all fall below it; afterwards the allocator's fresh cursor has reached the keeper's index
/// and hands it out, which makes the keeper an ordinary allocated entity, despawned and freed
/// the usual way.
struct EntityRecords {
    /// An index taken from the allocator to learn where fresh indices start; freed after.
    probe: Entity,
    /// The empty entity at the index just past the batch.
    keeper: Entity,
}

impl EntityRecords {
    /// Grows the records for `n` more entities. `None` (nothing done) when the next index
    /// would come from the free list, where the fresh cursor is not known.
    fn presize(world: &mut World, n: usize) -> Option<Self> {
        let probe = world.entity_allocator().alloc();
        let fresh = probe.generation() == bevy_ecs::entity::EntityGeneration::FIRST
            && world.entities().get(probe).is_ok_and(|at| at.is_none());
        let keeper = u32::try_from(n)
            .ok()
            .and_then(|n| probe.index_u32().checked_add(n)?.checked_add(1))
            .and_then(Entity::from_raw_u32);
        match keeper {
            Some(keeper) if fresh && world.spawn_empty_at(keeper).is_ok() => {
                Some(Self { probe, keeper })
            }
            _ => {
                world.entity_allocator_mut().free(probe);
                None
            }
        }
    }

    /// After the batch: takes the keeper's index from the allocator (freeing any fresh index
    /// handed out below it), frees the probe and despawns the keeper.
    fn release(self, world: &mut World) {
        let mut below = Vec::new();
        loop {
            let e = world.entity_allocator().alloc();
            match e.index_u32().cmp(&self.keeper.index_u32()) {
                // Freed indices, or fresh ones the batch did not need (it reused freed ones).
                std::cmp::Ordering::Less => below.push(e),
                std::cmp::Ordering::Equal => break,
                // Not reachable (the batch's fresh indices all lie below the keeper's, and
                // fresh indices rise one by one); stops the loop all the same.
                std::cmp::Ordering::Greater => {
                    below.push(e);
                    break;
                }
            }
        }
        below.push(self.probe);
        world.entity_allocator_mut().free_many(&below);
        world.despawn(self.keeper);
    }
}

/// A customer's saved components: all but its id (its row) and its day plan (made afresh
/// every morning).
type CustomerRecord = (Persona, Budget, Loyalty, Ledger, Engagement);

/// Bytes of one customer in a checkpoint's `customers` section.
const CUSTOMER_BYTES: usize = 1 + 4 + 4 + 4 + 4 + 4 + 8 + 4 + 4 + 2 * 4;

/// A customer's saved components into a checkpoint's columns.
fn write_customer(columns: &mut Vec<u8>, (p, b, l, ledger, e): CustomerRecord) {
    columns.push(p.0);
    columns.extend_from_slice(&b.monthly.to_le_bytes());
    columns.extend_from_slice(&b.left.to_le_bytes());
    columns.extend_from_slice(&l.0.to_bits().to_le_bytes());
    columns.extend_from_slice(&ledger.visits.to_le_bytes());
    columns.extend_from_slice(&ledger.purchases.to_le_bytes());
    columns.extend_from_slice(&ledger.spent.to_le_bytes());
    columns.extend_from_slice(&e.unmet.to_bits().to_le_bytes());
    columns.extend_from_slice(&e.trims.to_bits().to_le_bytes());
    for d in [e.joined, e.churned, e.last_offer, e.last_purchase] {
        columns.extend_from_slice(&d.to_le_bytes());
    }
}

/// Customer `id` from a checkpoint's columns.
fn read_customer(
    r: &mut ColumnReader<'_>,
    id: u32,
) -> Result<CustomerBundle, crate::checkpoint::CheckpointError> {
    let persona = Persona(r.take::<1>()?[0]);
    let budget = Budget {
        monthly: i32::from_le_bytes(r.take()?),
        left: i32::from_le_bytes(r.take()?),
    };
    let loyalty = Loyalty(f32::from_bits(u32::from_le_bytes(r.take()?)));
    let ledger = Ledger {
        visits: u32::from_le_bytes(r.take()?),
        purchases: u32::from_le_bytes(r.take()?),
        spent: i64::from_le_bytes(r.take()?),
    };
    let unmet = f32::from_bits(u32::from_le_bytes(r.take()?));
    let trims = f32::from_bits(u32::from_le_bytes(r.take()?));
    let mut day =
        || -> Result<Day, crate::checkpoint::CheckpointError> { Ok(i16::from_le_bytes(r.take()?)) };
    let engagement = Engagement {
        unmet,
        trims,
        joined: day()?,
        churned: day()?,
        last_offer: day()?,
        last_purchase: day()?,
    };
    Ok((
        AgentId(id),
        persona,
        budget,
        loyalty,
        DayPlan::none(),
        ledger,
        engagement,
    ))
}

/// Spawns `customers` (`total` of them, in id order) and `room` rows more for the run's
/// acquisitions; returns how many customers the iterator gave.
///
/// One batch of known length: the ECS sizes its columns once, so each is a single block.
/// The ECS has no public way to reserve table rows, so the room is made by spawning
/// placeholders at the end of the batch and despawning them at once: the rows stay
/// allocated. The kernel zeroes the columns' new pages as they are first written; a helper
/// thread faults them in ahead of the spawn, on the core the spawn leaves idle.
fn spawn_rows(
    world: &mut World,
    customers: impl Iterator<Item = CustomerBundle>,
    total: usize,
    room: usize,
) -> usize {
    let prefault = crate::alloc::Prefault::start();
    let faulted = crate::alloc::Prefault::faulted_bytes();
    let records = EntityRecords::presize(world, total + room);
    let spare = std::iter::repeat_n(placeholder(), room);
    let placeholders: Vec<Entity> = world
        .spawn_batch(customers.chain(spare))
        .skip(total)
        .collect();
    drop(prefault);
    tracing::debug!(
        bytes = crate::alloc::Prefault::faulted_bytes() - faulted,
        "spawn: pages faulted in ahead of the writes"
    );
    if let Some(records) = records {
        records.release(world);
    }
    let spawned = total + room - placeholders.len();
    for e in placeholders.into_iter().rev() {
        world.despawn(e);
    }
    spawned
}

/// A row-reserving entity, despawned before the first hour (never seen by a system).
fn placeholder() -> CustomerBundle {
    (
        AgentId(u32::MAX),
        Persona(0),
        Budget::unlimited(),
        Loyalty(0.0),
        DayPlan::none(),
        Ledger::default(),
        Engagement::new(0),
    )
}

/// Everything a customer entity is spawned with.
pub type CustomerBundle = (
    AgentId,
    Persona,
    Budget,
    Loyalty,
    DayPlan,
    Ledger,
    Engagement,
);

/// The components of one new customer, drawn from its own spawn stream.
pub fn spawn_customer(
    seed: u64,
    id: u32,
    persona_index: u8,
    persona: &crate::persona::Persona,
    start: NaiveDate,
    day: u32,
) -> CustomerBundle {
    let share = persona
        .budget
        .as_ref()
        .map(|b| PayPeriod::on(start, b.payday));
    draw_customer(seed, id, persona_index, persona, share, day, false)
}

/// [`spawn_customer`] with the pay period of the join date already worked out (`share`, for
/// a persona with a budget). A customer of the starting population (`starting`) of a warm
/// start has bought before: its last purchase is drawn from the persona's steady state.
fn draw_customer(
    seed: u64,
    id: u32,
    persona_index: u8,
    persona: &crate::persona::Persona,
    share: Option<PayPeriod>,
    day: u32,
    starting: bool,
) -> CustomerBundle {
    let mut rng = Stream::for_agent(seed, id, 0, Purpose::Spawn);
    let (_, income) = Demographics::draw(&mut rng, persona);
    let mut loyalty = match &persona.loyalty {
        Some(l) => l.initial.0 + (l.initial.1 - l.initial.0) * rng.unit_f32(),
        None => 1.0,
    };
    let mut engagement = Engagement::new(crate::components::to_day(day));
    let mut age = None;
    let mut left_share = None;
    if starting && !persona.warm_ages.is_empty() {
        // The draw comes after every other of the stream, so a cold start's customers are
        // the same customers.
        let u = rng.unit_f32();
        let a = if let Some(n) = std::num::NonZeroUsize::new(persona.warm_states.len()) {
            // A burn-in's sampled customer, its state taken whole.
            let k = ((f64::from(u) * n.get() as f64) as usize).min(n.get() - 1);
            let s = persona.warm_states[k];
            if persona.loyalty.is_some() {
                loyalty = s.loyalty;
            }
            left_share = Some(s.left_share);
            usize::from(s.age).min(i16::MAX as usize)
        } else {
            persona
                .warm_ages
                .partition_point(|&c| c < u)
                .min(persona.warm_ages.len() - 1)
                + 1
        };
        engagement.last_purchase = -(a as i16);
        age = Some(a as u32);
    }
    let budget = match (&persona.budget, share) {
        (Some(b), Some(share)) => {
            // Validation keeps the largest budget under `MAX_MONTHLY`, so the clamp and the
            // casts are exact.
            let monthly = round_minor(income as f64 * b.income_share, persona.minor_per_major)
                .clamp(0, Budget::MAX_MONTHLY);
            let left = match (left_share, age) {
                (Some(r), _) => (monthly as f64 * f64::from(r)).round() as i64,
                // A paced customer holds the money for the rest of the period after today,
                // and the wants money of the days since its last purchase.
                (None, Some(a)) => share.after_purchase(monthly, a),
                (None, None) => share.of(monthly),
            };
            Budget {
                monthly: monthly as i32,
                left: left.clamp(0, Budget::cap(monthly)) as i32,
            }
        }
        _ => Budget::unlimited(),
    };
    (
        AgentId(id),
        Persona(persona_index),
        budget,
        Loyalty(loyalty),
        DayPlan::none(),
        Ledger::default(),
        engagement,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spawns `n` ids through [`EntityRecords`] as `spawn_population` does; returns them.
    fn spawn_presized(world: &mut World, n: usize) -> (Vec<Entity>, bool) {
        let records = EntityRecords::presize(world, n);
        let presized = records.is_some();
        let spawned: Vec<Entity> = world.spawn_batch((0..n as u32).map(AgentId)).collect();
        if let Some(records) = records {
            records.release(world);
        }
        (spawned, presized)
    }

    /// Every spawned handle is live, and no index is handed out twice, even by later spawns.
    fn assert_consistent(world: &mut World, spawned: &[Entity]) {
        assert!(spawned.iter().all(|&e| world.get_entity(e).is_ok()));
        let later: Vec<Entity> = (0..500).map(|_| world.spawn(AgentId(0)).id()).collect();
        assert!(later.iter().all(|&e| world.get_entity(e).is_ok()));
        let mut q = world.query::<Entity>();
        let mut indices: Vec<u32> = q.iter(world).map(|e| e.index_u32()).collect();
        let n = indices.len();
        indices.sort_unstable();
        indices.dedup();
        assert_eq!(indices.len(), n, "an index handed out twice");
    }

    #[test]
    fn entity_records_are_sized_once_for_the_batch() {
        let mut world = World::new();
        let before = world.entity_count(); // the next fresh index: nothing was despawned
        let (spawned, presized) = spawn_presized(&mut world, 70_000);
        assert!(presized);
        // The batch, the probe and the keeper: not the next power of two (131,072).
        assert_eq!(world.entities().len(), before + 70_000 + 2);
        assert_consistent(&mut world, &spawned);
    }

    #[test]
    fn entity_records_are_left_alone_when_indices_come_from_the_free_list() {
        let mut world = World::new();
        // Enough despawns that the allocator's local list spills into its shared free list,
        // from which the next index is then taken.
        let old: Vec<Entity> = (0..300).map(|_| world.spawn(AgentId(0)).id()).collect();
        for e in old {
            world.despawn(e);
        }
        let (spawned, presized) = spawn_presized(&mut world, 1_000);
        assert!(!presized, "the probe came from the free list");
        assert_eq!(spawned.len(), 1_000);
        assert_consistent(&mut world, &spawned);
    }
}
