//! Bazaar: an Entity-Component-System agent-based simulation of retail customer shopping.
//!
//! Customers are `bevy_ecs` entities with persona, budget, loyalty and visit-state
//! components. One run of the hourly [`sim::Simulation`] schedule advances every customer one
//! simulated hour through ordered phases — calendar, plan, shop, update, observe — and the
//! records stream to CSV tables finished atomically in an output folder.
//!
//! A guide to the modules:
//! - [`scenario`]: RON scenario files → a checked [`scenario::Scenario`] (errors with
//!   file:line:col and a hint);
//! - [`calendar`]: the clock and the day's festival, weekend, season and payday multipliers;
//! - [`persona`]: persona parameters and the pure sampling functions;
//! - [`components`], [`sim`], [`systems`]: the ECS world, the schedule, the behaviours;
//! - [`plugin`]: the plugin API (build and finish, settings from scenarios, errors);
//! - [`hooks`]: hooks inside a visit (offer, line, allocation, after-visit);
//! - [`tables`]: a plugin's own tables and `daily_metrics` columns; [`tutorial`]: writing a
//!   behaviour, from zero to a scenario that uses it;
//! - [`records`], [`output`]: what an hour produces and where it goes;
//! - [`run`]: one scenario end to end;
//! - [`money`]: the scenario's currency: minor units, grouping, every money format;
//! - [`alloc`]: the allocator the binary and benchmarks use (large blocks faulted in ahead).
//!
//! ```no_run
//! use bazaar::{run, scenario::Scenario, sim};
//!
//! let scenario = Scenario::load("scenarios/quick.ron".as_ref(), &sim::registry())?;
//! let report = run::run(&scenario, run::RunOptions::default())?;
//! println!("{} transactions", report.summary.totals.transactions);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod alloc;
pub mod analytics;
pub mod calendar;
pub mod calibrate;
pub mod checkpoint;
pub mod cli;
pub mod cluster;
pub mod components;
pub mod experiment;
pub mod hooks;
pub mod limits;
pub mod live;
pub mod ml;
pub mod mlflow;
pub mod mlops;
pub mod money;
pub mod output;
pub mod persona;
pub mod plugin;
pub mod population;
pub mod records;
pub mod report;
pub mod rng;
pub mod run;
pub mod scenario;
#[cfg(feature = "serve")]
pub mod serve;
pub mod sim;
pub mod sweep;
pub mod systems;
pub mod tables;
pub mod timings;
pub mod warm;

#[doc = include_str!("../docs/plugins.md")]
pub mod tutorial {}
