//! What a running simulation tells a watcher as it goes (`bazaar run --serve`): progress
//! through the simulated calendar and each closed day's figures by persona. The run only
//! calls a function; what listens (the dashboard's server-sent events) lives elsewhere.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::NaiveDate;
use serde::Serialize;

/// One thing a run reports.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LiveEvent {
    /// Where the run is: sent at most a few times a second, and at every day's end.
    Progress {
        /// The simulated date.
        date: NaiveDate,
        /// Share of the run's hours done, 0 to 1.
        done: f64,
        /// Customer-days simulated per wall second so far.
        customers_per_s: f64,
        /// Wall seconds left at the pace so far.
        eta_s: f64,
        /// Baskets so far.
        transactions: u64,
    },
    /// A day just closed, by persona.
    Day {
        /// The day.
        date: NaiveDate,
        /// Whether it was a festival day.
        festival: bool,
        /// Whether it was a weekend day.
        weekend: bool,
        /// Events active that day, `+`-joined.
        events: String,
        /// The day's figures, one per persona in the scenario's order.
        personas: Vec<DayFigures>,
    },
    /// The run finished and its folder is in place.
    Finished {
        /// The output folder.
        out: PathBuf,
    },
    /// The run ended without an output folder.
    Failed {
        /// Why.
        message: String,
    },
}

/// A persona's figures for one day.
#[derive(Debug, Clone, Serialize)]
pub struct DayFigures {
    /// Persona name.
    pub persona: String,
    /// Baskets.
    pub transactions: u64,
    /// Revenue in major units.
    pub revenue: f64,
    /// Customers who left.
    pub churned: u64,
    /// Customers active at the day's end.
    pub active: u64,
}

/// Where a run sends its events.
pub type LiveSink = Arc<dyn Fn(LiveEvent) + Send + Sync>;
