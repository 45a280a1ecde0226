//! Time: advances the [`Clock`] each hour and recomputes [`Today`]'s multipliers at midnight.

use bevy_ecs::prelude::*;

use crate::calendar::{Clock, PayPeriod, Today};
use crate::sim::{Model, Plugin, SimBuilder, SimSet};

/// Advances simulated time by one hour.
pub fn advance_clock(mut clock: ResMut<Clock>) {
    clock.tick = clock.tick.wrapping_add(1);
}

/// Recomputes the day's calendar multipliers.
pub fn refresh_today(clock: Res<Clock>, model: Res<Model>, mut today: ResMut<Today>) {
    let date = clock.date();
    *today = model.calendar.day(date, model.categories);
    today.pay = model
        .personas
        .iter()
        .map(|p| {
            p.budget
                .as_ref()
                .map_or(PayPeriod::LAST_DAY, |b| PayPeriod::on(date, b.payday))
        })
        .collect();
}

/// The calendar behaviour.
pub struct ClockPlugin;

impl Plugin for ClockPlugin {
    fn name(&self) -> &str {
        "clock"
    }

    fn build(&self, sim: &mut SimBuilder) -> crate::plugin::Result {
        sim.schedule.add_systems(
            (advance_clock, refresh_today.run_if(super::start_of_day))
                .chain()
                .in_set(SimSet::Calendar),
        );
        Ok(())
    }
}
