//! Scenarios: RON files in, a checked [`Scenario`] out.
//!
//! Three steps, each with its own module: [`load`] reads the file and splices includes,
//! [`schema`] is the raw serde shape, [`validate`] checks every field and builds the typed
//! model. Every error names the file, line, column and field, with a hint.

pub mod diag;
pub mod load;
pub mod schema;
pub mod validate;

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

pub use diag::ScenarioError;

use crate::calendar::Calendar;
use crate::persona::Persona;

/// A product category of the catalog.
#[derive(Debug, Clone)]
pub struct Category {
    /// Identifier.
    pub name: String,
    /// Group, if any.
    pub group: Option<String>,
}

/// Output file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated values.
    Csv,
    /// Apache Parquet, zstd-compressed.
    Parquet,
}

impl Format {
    /// The file extension of this format's tables.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Parquet => "parquet",
        }
    }
}

/// Where and how results are written.
#[derive(Debug, Clone)]
pub struct OutputSpec {
    /// Output folder.
    pub dir: PathBuf,
    /// Formats to write.
    pub formats: Vec<Format>,
    /// Whether to write line items.
    pub line_items: bool,
}

/// What churn model scores do.
#[derive(Debug, Clone, PartialEq)]
pub enum ChurnMode {
    /// The probability drives churn: daily hazard = 1 - (1 - p)^(1 / horizon).
    Drive,
    /// At-risk customers receive retention offers.
    Retain {
        /// At most this many offers per scoring (highest risk first).
        top_k: Option<u64>,
        /// Only customers at or above this probability.
        threshold: Option<f32>,
        /// Cost per offer, paise.
        cost_paise: i64,
        /// Loyalty gained, as a share of the distance to 1.
        loyalty_boost: f32,
        /// Days between offers to the same customer.
        cooldown_days: u32,
    },
}

/// Churn scoring settings.
#[derive(Debug, Clone)]
pub struct ChurnModelConfig {
    /// `churn.json`.
    pub spec: PathBuf,
    /// Days between scorings.
    pub every_days: u32,
    /// What scores do.
    pub mode: ChurnMode,
}

/// A checked scenario, ready to run.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Master seed.
    pub seed: u64,
    /// First day.
    pub start: NaiveDate,
    /// Number of days.
    pub days: u32,
    /// Product categories.
    pub catalog: Vec<Category>,
    /// Personas; the index is the persona id.
    pub personas: Vec<Persona>,
    /// Customers per persona at the start, by persona index.
    pub population: Vec<u64>,
    /// New customers per day, by persona index.
    pub new_per_day: Vec<f64>,
    /// The calendar, with the scenario's own events merged in.
    pub calendar: Calendar,
    /// Optional systems enabled by name.
    pub systems: Vec<String>,
    /// Churn scoring with a model, if configured.
    pub churn_model: Option<ChurnModelConfig>,
    /// Output settings.
    pub output: OutputSpec,
    /// The file the scenario came from.
    pub source: PathBuf,
}

impl Scenario {
    /// Loads and validates a scenario file. `known_systems` are the names of the optional
    /// behaviours the caller can enable.
    pub fn load(path: &Path, known_systems: &[&str]) -> Result<Self, ScenarioError> {
        let map = load::SourceMap::load(path)?;
        validate::parse_and_validate(&map, path, known_systems)
    }

    /// Parses and validates scenario text that did not come from a file.
    pub fn from_text(
        name: &str,
        text: &str,
        known_systems: &[&str],
    ) -> Result<Self, ScenarioError> {
        let map = load::SourceMap::from_text(name, text)?;
        validate::parse_and_validate(&map, Path::new(name), known_systems)
    }

    /// Total customers.
    pub fn customers(&self) -> u64 {
        self.population.iter().sum()
    }

    /// The last simulated day.
    pub fn end(&self) -> NaiveDate {
        self.start + chrono::Duration::days(i64::from(self.days) - 1)
    }

    /// Multiplies every persona's count by `factor`, rounding to the nearest customer.
    pub fn scale(&mut self, factor: f64) {
        for n in &mut self.population {
            *n = (*n as f64 * factor).round() as u64;
        }
        for n in &mut self.new_per_day {
            *n *= factor;
        }
    }
}
