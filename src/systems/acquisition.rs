//! Acquisition: new customers join at the start of each day, at each persona's
//! `new_per_day` rate, so long runs keep realistic populations while others churn.
//!
//! Fractional rates accumulate from day to day; new customers take the next agent ids, so
//! ids stay dense and in spawn order.

use bevy_ecs::prelude::*;

use crate::calendar::Clock;
use crate::population::spawn_customers;
use crate::sim::{Model, Plugin, SimBuilder, SimSet};

/// Fractional customers owed, by persona: rates below one a day accumulate.
#[derive(Resource, Debug, Clone, Default)]
struct Owed(Vec<f64>);

/// Run condition: the start of a day on which some persona acquires customers.
pub fn acquiring(clock: Res<Clock>, model: Res<Model>) -> bool {
    clock.hour() == 0 && clock.day() > 0 && model.new_per_day.iter().any(|&n| n > 0.0)
}

/// Spawns the day's new customers, persona by persona.
pub fn acquire_customers(world: &mut World) -> crate::plugin::Result {
    let rates = world.resource::<Model>().new_per_day.clone();
    for (p, rate) in rates.into_iter().enumerate() {
        let mut owed = world.resource_mut::<Owed>();
        owed.0[p] += rate;
        let n = owed.0[p].floor();
        owed.0[p] -= n;
        if n >= 1.0 {
            // The room reserved covers `ceil(rate x days)`, so `n` fits in u32.
            spawn_customers(world, p, n as u32)?;
        }
    }
    Ok(())
}

/// The acquisition behaviour.
pub struct AcquisitionPlugin;

impl Plugin for AcquisitionPlugin {
    fn name(&self) -> &str {
        "acquisition"
    }

    fn save(
        &self,
        world: &mut World,
        state: &mut crate::checkpoint::State,
    ) -> crate::plugin::Result {
        state.put("owed", &world.resource::<Owed>().0)
    }

    fn restore(
        &self,
        world: &mut World,
        state: &crate::checkpoint::State,
    ) -> crate::plugin::Result {
        world.resource_mut::<Owed>().0 = state.get("owed")?;
        Ok(())
    }

    fn build(&self, sim: &mut SimBuilder) -> crate::plugin::Result {
        let personas = sim.world.resource::<Model>().personas.len();
        sim.world.insert_resource(Owed(vec![0.0; personas]));
        sim.schedule.add_systems(
            acquire_customers
                .run_if(acquiring)
                .in_set(SimSet::Plan)
                .before(super::planning::plan_visits),
        );
        Ok(())
    }
}
