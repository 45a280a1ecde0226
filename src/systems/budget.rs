//! Budgets: at the end of the day before a persona's payday, the month's money is added to
//! its customers' budgets, so it is there from the payday's first hour.
//!
//! Spending itself is taken off the budget where it happens, in the shopping system.

use bevy_ecs::prelude::*;
use chrono::{Datelike, Duration};

use crate::calendar::Clock;
use crate::components::{Budget, Persona};
use crate::sim::{Model, Plugin, SimBuilder, SimPool, SimSet};

/// Which personas are paid tomorrow, by persona index.
pub fn paid_tomorrow(clock: &Clock, model: &Model) -> Vec<bool> {
    let tomorrow = (clock.date() + Duration::days(1)).day();
    model
        .personas
        .iter()
        .map(|p| p.budget.as_ref().is_some_and(|b| b.payday == tomorrow))
        .collect()
}

/// Run condition: the last hour of a day before some persona's payday.
pub fn payday_eve(clock: Res<Clock>, model: Res<Model>) -> bool {
    clock.hour() == 23 && paid_tomorrow(&clock, &model).contains(&true)
}

/// Refills the budgets of a run of customers whose persona is paid tomorrow (`paid` from
/// [`paid_tomorrow`]).
#[inline]
pub fn refill_rows(paid: &[bool], personas: &[Persona], budgets: &mut [Budget]) {
    for (p, b) in personas.iter().zip(budgets.iter_mut()) {
        if paid[usize::from(p.0)] {
            b.refill();
        }
    }
}

/// Refills the budgets of the personas paid tomorrow.
pub fn refill_budgets(
    clock: Res<Clock>,
    model: Res<Model>,
    pool: Res<SimPool>,
    mut customers: Query<(&Persona, &mut Budget)>,
) {
    use rayon::prelude::*;
    let paid = paid_tomorrow(&clock, &model);
    for (personas, mut budgets) in customers
        .contiguous_iter_mut()
        .expect("customer components are table-stored")
    {
        let rows = budgets.bypass_change_detection();
        pool.0.install(|| {
            rows.par_chunks_mut(super::CHUNK)
                .zip(personas.par_chunks(super::CHUNK))
                .for_each(|(budgets, personas)| refill_rows(&paid, personas, budgets));
        });
    }
}

/// The budget behaviour.
pub struct BudgetPlugin;

impl Plugin for BudgetPlugin {
    fn name(&self) -> &str {
        "budget"
    }

    fn build(&self, sim: &mut SimBuilder) -> crate::plugin::Result {
        sim.schedule
            .add_systems(refill_budgets.run_if(payday_eve).in_set(SimSet::Update));
        Ok(())
    }
}
