//! Acquisition: new customers join at the start of each day, at each persona's
//! `new_per_day` rate, so long runs keep realistic populations while others churn.
//!
//! Fractional rates accumulate from day to day; new customers take the next agent ids, so
//! ids stay dense and in spawn order.

use bevy_ecs::prelude::*;

use crate::calendar::Clock;
use crate::sim::{Model, Plugin, SimBuilder, SimSet, spawn_customer};

/// Who is in the population: counts by persona, and the next free agent id.
#[derive(Resource, Debug, Clone, Default)]
pub struct Population {
    /// The id the next new customer gets.
    pub next_id: u32,
    /// Customers acquired so far, by persona.
    pub acquired: Vec<u64>,
    /// Customers who left so far, by persona.
    pub churned: Vec<u64>,
    /// Fractional customers owed, by persona.
    carry: Vec<f64>,
}

impl Population {
    /// Customers still active, by persona.
    pub fn active(&self, initial: &[u64]) -> Vec<u64> {
        initial
            .iter()
            .zip(&self.acquired)
            .zip(&self.churned)
            .map(|((i, a), c)| i + a - c)
            .collect()
    }
}

/// Run condition: the start of a day on which some persona acquires customers.
pub fn acquiring(clock: Res<Clock>, model: Res<Model>) -> bool {
    clock.hour() == 0 && clock.day() > 0 && model.new_per_day.iter().any(|&n| n > 0.0)
}

/// Spawns the day's new customers.
pub fn acquire_customers(world: &mut World) {
    let clock = *world.resource::<Clock>();
    let model = world.resource::<Model>().clone();
    let mut population = world.resource_mut::<Population>();
    let mut batches = Vec::new();
    for (p, &rate) in model.new_per_day.iter().enumerate() {
        population.carry[p] += rate;
        let n = population.carry[p].floor();
        population.carry[p] -= n;
        if n >= 1.0 {
            batches.push((p, population.next_id, n as u32));
            population.next_id += n as u32;
            population.acquired[p] += n as u64;
        }
    }
    let (date, day) = (clock.date(), clock.day());
    for (p, first, n) in batches {
        let persona = &model.personas[p];
        world.spawn_batch(
            (first..first + n)
                .map(|id| spawn_customer(model.seed, id, p as u8, persona, date, day)),
        );
    }
}

/// The acquisition behaviour.
pub struct AcquisitionPlugin;

impl Plugin for AcquisitionPlugin {
    fn build(&self, sim: &mut SimBuilder) {
        let personas = sim.world.resource::<Model>().personas.len();
        sim.world.insert_resource(Population {
            next_id: 0,
            acquired: vec![0; personas],
            churned: vec![0; personas],
            carry: vec![0.0; personas],
        });
        sim.schedule.add_systems(
            acquire_customers
                .run_if(acquiring)
                .in_set(SimSet::Plan)
                .before(super::planning::plan_visits),
        );
    }
}
