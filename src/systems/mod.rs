//! Behaviours, one per file, each a [`Plugin`] registering its systems in
//! one of the [`SimSet`](crate::sim::SimSet)s.
//!
//! Built-in behaviours are listed in [`builtin`]; optional ones, which a scenario enables by
//! name, are one line each in the `optional_behaviours!` list below ([`optional`]).

pub mod acquisition;
pub mod attrition;
pub mod budget;
pub mod churn_model;
pub mod clock;
pub mod loyalty;
pub mod observe;
pub mod planning;
pub mod shopping;

use crate::sim::Plugin;

/// Declares each optional behaviour's module and registers its type, one line each.
macro_rules! optional_behaviours {
    ($($module:ident :: $behaviour:ident),* $(,)?) => {
        $(pub mod $module;)*

        /// Adds every optional behaviour to `registry`, in the order listed.
        pub fn optional(registry: crate::plugin::Registry) -> crate::plugin::Registry {
            registry$(.add::<$module::$behaviour>())*
        }
    };
}

// The behaviours a scenario enables by name in `systems: [...]`: a new one is its file in
// this folder and one line here.
optional_behaviours! {
    daily_log::DailyLog,
    word_of_mouth::WordOfMouth,
    promotions::Promotions,
    stores::Stores,
}

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
