//! An optional behaviour (`systems: ["daily_log"]`): one log line per simulated day with its
//! visits, transactions and revenue. Also the smallest example of a plugin that reads the
//! observation tallies.

use bevy_ecs::prelude::*;

use crate::output::format::rupees;
use crate::sim::{Plugin, SimBuilder, SimSet};
use crate::systems::observe::{ClosedDay, Totals, close_day};

/// Logs the day that just closed.
pub fn log_day(closed: Res<ClosedDay>) {
    if !closed.ready {
        return;
    }
    let mut day = Totals::default();
    for t in &closed.by_persona {
        day.add(t);
    }
    tracing::info!(
        date = %closed.date.map(|d| d.to_string()).unwrap_or_default(),
        visits = day.visits,
        transactions = day.transactions,
        revenue = %rupees(day.revenue_paise),
        events = %closed.events,
        "day closed"
    );
}

/// The daily log behaviour.
pub struct DailyLogPlugin;

impl Plugin for DailyLogPlugin {
    fn build(&self, sim: &mut SimBuilder) {
        sim.schedule
            .add_systems(log_day.after(close_day).in_set(SimSet::Observe));
    }
}
