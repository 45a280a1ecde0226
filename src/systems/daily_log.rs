//! An optional behaviour (`systems: [DailyLog]`): one log line per simulated day with its
//! visits, transactions and revenue. Also the smallest example of a plugin that reads the
//! observation tallies and takes a setting from the scenario.

use bevy_ecs::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::calendar::Clock;
use crate::plugin::{Behaviour, Plugin, Problems, SimBuilder};
use crate::scenario::Scenario;
use crate::sim::SimSet;
use crate::systems::observe::{ClosedDay, Totals, close_day};

/// Logs one line per simulated day (visits, transactions, revenue, events) at log level
/// info: run with `RUST_LOG=info`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DailyLog {
    /// Log every this many days (1 = every day).
    pub every_days: u32,
}

impl Default for DailyLog {
    fn default() -> Self {
        Self { every_days: 1 }
    }
}

/// How often to log, as a resource for [`log_day`].
#[derive(Resource, Debug, Clone)]
struct LogEvery(u32, crate::money::Currency);

/// Logs the day that just closed (once: in a sharded run the closed day is the whole run's
/// on every rank, and rank 0 logs it).
fn log_day(
    closed: Res<ClosedDay>,
    every: Res<LogEvery>,
    clock: Res<Clock>,
    cluster: Res<crate::cluster::Cluster>,
) {
    // The day's index, not a count kept here: a run taken up from a checkpoint logs the
    // same days.
    if !closed.ready || !clock.day().is_multiple_of(every.0) || !cluster.is_root() {
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
        revenue = %every.1.plain(day.revenue_paise),
        events = %closed.events,
        "day closed"
    );
}

impl Plugin for DailyLog {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn build(&self, sim: &mut SimBuilder) -> crate::plugin::Result {
        sim.world
            .insert_resource(LogEvery(self.every_days, sim.scenario.money.clone()));
        sim.schedule
            .add_systems(log_day.after(close_day).in_set(SimSet::Observe));
        Ok(())
    }
}

impl Behaviour for DailyLog {
    const NAME: &'static str = "DailyLog";

    fn check(&self, scenario: &Scenario, problems: &mut Problems) {
        problems.range(
            "every_days",
            f64::from(self.every_days),
            1.0,
            f64::from(scenario.days.max(1)),
        );
    }
}
