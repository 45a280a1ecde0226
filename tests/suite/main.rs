//! Bazaar's integration tests, one module a subject, built as one test binary: the real
//! `bazaar` binary and the library driven as users drive them. One binary instead of one per
//! file keeps the suite's build and link to a single crate (`cargo test --release --test suite
//! determinism::` runs one module).

mod common;

mod bad_scenarios;
mod budgets;
mod calibrate;
mod checkpoint;
mod churn;
mod determinism;
mod drift;
mod examples;
mod experiments;
mod hooks;
mod hostile;
mod mlflow;
mod money_and_calendars;
#[cfg(feature = "mpi")]
mod mpi;
mod parquet;
mod plugins;
mod properties;
mod published;
mod report;
mod resume;
mod scenarios;
mod schema;
mod seed_parity;
#[cfg(feature = "serve")]
mod serve;
mod sweep;
mod sweeps;
mod systems;
mod tables;
mod warm_start;
