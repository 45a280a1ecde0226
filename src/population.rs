//! Who is in the simulation, and the one way to add to it: customers are spawned through
//! [`spawn_customers`], which hands out the next ids, keeps the counts the outputs report,
//! and stays inside the room reserved before the run, so the customer table is never
//! regrown and the memory guard has counted every row.
//!
//! # Invariants a plugin relies on
//!
//! - **One table, rows in id order.** Every customer lives in one ECS table, and the customer
//!   with id `n` is at row `n` ([`row_of`]); in a run sharded over processes, a process's
//!   rows hold the ids of [`Population::held`], in increasing order. Column slices from `contiguous_iter` /
//!   `contiguous_iter_mut` are therefore indexed by id, and side tables a plugin keeps in a
//!   `Vec` indexed by id line up with them.
//! - **Rows never move.** Customers are never despawned (a churned customer stays, marked
//!   in its `Engagement`), and no component is inserted into or removed from a customer
//!   after it is spawned: that would move it to another table. A plugin that needs a
//!   per-customer component registers it at build with [`crate::plugin::SimBuilder::customer_component`],
//!   so every customer is spawned with it.
//! - **Spawning only here, only from an exclusive system** (`fn(&mut World)`), at any hour:
//!   new customers take the rows after the last one and join with no plan for the day.
//! - **Records are in customer order.** Each hour's transactions (`HourRecords`) are in
//!   increasing agent id, one visit per customer at most.
//!
//! [`check_invariants`] checks all of this; `Simulation` runs it after every hour in debug
//! builds and wherever `SimulationBuilder::check_invariants(true)` asks for it (the tests),
//! and a breach ends the run with an error naming it.

use std::ops::Range;

use bevy_ecs::prelude::*;

use crate::calendar::Clock;
use crate::components::AgentId;
use crate::records::HourRecords;
use crate::sim::{Model, spawn_customer};

/// Who is in the population: counts by persona, the next free id, and the room reserved.
///
/// In a run sharded over several processes ([`crate::cluster`]) the ids and counts are the
/// whole run's, the same on every rank; each rank holds only its share of the customers
/// ([`Population::held`]), in id order.
#[derive(Resource, Debug, Clone)]
pub struct Population {
    /// The id the next new customer gets (= customers spawned so far, on every rank).
    pub next_id: u32,
    /// Customers acquired after the start (by any plugin), by persona.
    pub acquired: Vec<u64>,
    /// Customers who left so far, by persona.
    pub churned: Vec<u64>,
    /// Ids reserved for the whole run: the starting customers plus every plugin's
    /// reservation ([`crate::plugin::Plugin::reserve`]).
    pub capacity: u32,
    /// Rows this process reserved: `capacity` alone, its share of it in a sharded run.
    pub rows_capacity: u32,
    /// The ids this process holds, as runs `(first id, count)` in row order.
    held: Vec<(u32, u32)>,
    /// This process's rank and how many share the run.
    shard: (usize, usize),
}

impl Default for Population {
    fn default() -> Self {
        Self::new(0, 0)
    }
}

impl Population {
    /// An empty population of `personas` personas with room for `capacity` customers.
    pub fn new(personas: usize, capacity: u32) -> Self {
        Self {
            next_id: 0,
            acquired: vec![0; personas],
            churned: vec![0; personas],
            capacity,
            rows_capacity: capacity,
            held: Vec::new(),
            shard: (0, 1),
        }
    }

    /// An empty population whose customers are shared among `ranks` processes, this one
    /// being `rank` and holding at most `rows` of the `capacity` ids.
    pub fn shared(personas: usize, capacity: u32, rows: u32, rank: usize, ranks: usize) -> Self {
        Self {
            rows_capacity: rows.min(capacity),
            shard: (rank, ranks.max(1)),
            ..Self::new(personas, capacity)
        }
    }

    /// Customers still active, by persona.
    pub fn active(&self, initial: &[u64]) -> Vec<u64> {
        initial
            .iter()
            .zip(&self.acquired)
            .zip(&self.churned)
            .map(|((i, a), c)| i + a - c)
            .collect()
    }

    /// Ids still free for customers spawned during the run.
    pub fn room_left(&self) -> u32 {
        self.capacity - self.next_id
    }

    /// The ids this process holds, as runs `(first id, count)` in row order: one run
    /// `(0, next_id)` in a run of one process.
    pub fn held(&self) -> &[(u32, u32)] {
        &self.held
    }

    /// This process's rows from `row` on, each with the id it holds: `(row, id)`.
    pub fn rows_from(&self, row: u32) -> impl Iterator<Item = (u32, u32)> + '_ {
        let mut run_row = 0u32;
        self.held.iter().flat_map(move |&(first, n)| {
            let at = run_row;
            run_row += n;
            (row.saturating_sub(at).min(n)..n).map(move |k| (at + k, first + k))
        })
    }

    /// Whether the customers are shared among several processes.
    pub fn sharded(&self) -> bool {
        self.shard.1 > 1
    }

    /// Customers this process holds (its rows).
    pub fn rows(&self) -> u32 {
        self.held.iter().map(|&(_, n)| n).sum()
    }

    /// This process's share of the ids `first..first + n` ([`crate::cluster::share`]).
    pub fn share(&self, first: u32, n: u32) -> Range<u32> {
        crate::cluster::share(first, n, self.shard.0, self.shard.1)
    }

    /// This process's share of each persona's starting ids
    /// ([`crate::cluster::starting_shares`]).
    pub fn starting_shares(&self, counts: &[u64]) -> Vec<Range<u32>> {
        crate::cluster::starting_shares(counts, self.shard.0, self.shard.1)
    }

    /// Records that this process now holds `ids`, the rows after its last.
    pub(crate) fn hold(&mut self, ids: Range<u32>) {
        if ids.is_empty() {
            return;
        }
        match self.held.last_mut() {
            Some((first, n)) if *first + *n == ids.start => *n += ids.len() as u32,
            _ => self.held.push((ids.start, ids.len() as u32)),
        }
    }
}

/// Spawns `n` new customers of persona `persona` who join today: they take the next ids,
/// are drawn from their own spawn streams (so the same ids get the same customers at any
/// thread count), and count as acquired in the daily metrics. Call it from an exclusive
/// system, with the same `n` on every rank of a sharded run: each rank spawns its share of
/// the ids ([`Population::share`]); the range returned is all of them. An error if the
/// persona does not exist or the run's reserved room is used up (reserve more in the
/// plugin's [`crate::plugin::Plugin::reserve`]).
pub fn spawn_customers(
    world: &mut World,
    persona: usize,
    n: u32,
) -> crate::plugin::Result<Range<u32>> {
    let model = world.resource::<Model>();
    let Some(p) = model.personas.get(persona) else {
        return Err(format!(
            "cannot spawn customers of persona {persona}: the scenario has {}",
            model.personas.len()
        )
        .into());
    };
    let p = p.clone();
    let seed = model.seed;
    let clock = *world.resource::<Clock>();
    let mut population = world.resource_mut::<Population>();
    if n > population.room_left() {
        return Err(format!(
            "cannot spawn {n} customers: only {} of the {} rows reserved for this run are \
             free (a plugin that spawns customers reserves room for them in `Plugin::reserve`)",
            population.room_left(),
            population.capacity
        )
        .into());
    }
    let first = population.next_id;
    let mine = population.share(first, n);
    if population.rows() + mine.len() as u32 > population.rows_capacity {
        return Err(format!(
            "cannot spawn {} customers on this process: its {} reserved rows are used up",
            mine.len(),
            population.rows_capacity
        )
        .into());
    }
    population.next_id += n;
    population.acquired[persona] += u64::from(n);
    population.hold(mine.clone());
    let (date, day) = (clock.date(), clock.day());
    world.spawn_batch(mine.map(|id| spawn_customer(seed, id, persona as u8, &p, date, day)));
    Ok(first..first + n)
}

/// The row of customer `id` in the customer table, and in any column slice of it, in a run
/// of one process (a sharded run's rows follow [`Population::held`]).
#[inline]
pub fn row_of(id: AgentId) -> usize {
    id.0 as usize
}

/// Checks the invariants listed in the module documentation: every customer in one table,
/// the customer at row `n` has id `n`, as many customers as ids handed out, and this hour's
/// records in increasing customer order. Costs a pass over the customers' ids.
pub fn check_invariants(world: &mut World) -> Result<(), String> {
    let population = world.resource::<Population>();
    let expected = population.rows() as usize;
    let mut ids_held = population
        .held()
        .to_vec()
        .into_iter()
        .flat_map(|(first, n)| first..first + n);
    let mut q = world.query::<&AgentId>();
    let mut rows = 0usize;
    let mut tables = 0usize;
    for ids in q
        .contiguous_iter(world)
        .map_err(|_| "customer ids are not table-stored".to_string())?
    {
        tables += usize::from(!ids.is_empty());
        for (row, id) in ids.iter().enumerate() {
            let row = rows + row;
            if ids_held.next() != Some(id.0) {
                return Err(format!(
                    "customer {} is at row {row} of the customer table: rows moved (a \
                     customer was despawned, or a component was inserted into or removed \
                     from one after it was spawned)",
                    id.0
                ));
            }
        }
        rows += ids.len();
    }
    if tables > 1 {
        return Err(format!(
            "customers are spread over {tables} tables: a component was inserted into or \
             removed from some customers after they were spawned (register it with \
             `SimBuilder::customer_component` instead)"
        ));
    }
    if rows != expected {
        return Err(format!(
            "{rows} customers exist but {expected} ids were handed out here: customers \
             were spawned or despawned outside `population::spawn_customers`"
        ));
    }
    if let Some(records) = world.get_resource::<HourRecords>() {
        let mut last: Option<u32> = None;
        for (t, _) in records.iter() {
            if last.is_some_and(|l| t.agent <= l) {
                return Err(format!(
                    "this hour's records are out of customer order: customer {} after {}",
                    t.agent,
                    last.unwrap_or_default()
                ));
            }
            last = Some(t.agent);
        }
    }
    Ok(())
}
