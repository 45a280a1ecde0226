//! Behaviours, one per file, each a [`Plugin`] registering its systems in
//! one of the [`SimSet`](crate::sim::SimSet)s.
//!
//! Built-in behaviours are listed in [`builtin`]; optional ones are registered by name in
//! [`crate::sim::registry`].

pub mod acquisition;
pub mod attrition;
pub mod budget;
pub mod churn_model;
pub mod clock;
pub mod daily_log;
pub mod loyalty;
pub mod observe;
pub mod planning;
pub mod shopping;

use crate::sim::Plugin;

/// The behaviours every simulation has, in registration order.
pub fn builtin() -> Vec<Box<dyn Plugin>> {
    vec![
        Box::new(clock::ClockPlugin),
        Box::new(planning::PlanningPlugin),
        Box::new(shopping::ShoppingPlugin),
        Box::new(budget::BudgetPlugin),
        Box::new(loyalty::LoyaltyPlugin),
        Box::new(acquisition::AcquisitionPlugin),
        Box::new(attrition::AttritionPlugin),
        Box::new(observe::ObservePlugin),
    ]
}

/// Rows per parallel work item of the customer systems. Each system takes its table's
/// column slices from the ECS and splits them into chunks of this many rows over rayon's
/// pool: enough items for work stealing to even out the threads, few enough that handing
/// them out costs nothing next to the work.
pub const CHUNK: usize = 1 << 14;

/// The row range of chunk `k` holding `len` rows.
#[inline]
pub fn chunk_rows(k: usize, len: usize) -> std::ops::Range<usize> {
    k * CHUNK..k * CHUNK + len
}

/// Run condition: the first hour of a day.
pub fn start_of_day(clock: bevy_ecs::prelude::Res<crate::calendar::Clock>) -> bool {
    clock.hour() == 0
}

/// Run condition: the last hour of a day.
pub fn end_of_day(clock: bevy_ecs::prelude::Res<crate::calendar::Clock>) -> bool {
    clock.hour() == 23
}
