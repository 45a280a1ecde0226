//! Scenarios: RON files in, a checked [`Scenario`] out.
//!
//! Three steps, each with its own module: [`load`] reads the file and splices includes,
//! [`schema`] is the raw serde shape, [`validate`] checks every field and builds the typed
//! model. Every error names the file, line, column and field, with a hint.

pub mod diag;
pub mod load;
pub mod schema;
pub mod tune;
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
    /// Gross margin at regular prices, a share of the price; `None` throughout a catalog
    /// that states no margins (then there is no cost of goods and no margin metric).
    pub margin: Option<f64>,
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

    /// The format whose [`Format::extension`] is `name`.
    pub fn from_extension(name: &str) -> Option<Self> {
        [Format::Csv, Format::Parquet]
            .into_iter()
            .find(|f| f.extension() == name)
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
        /// Whom offers go to first.
        target: Target,
    },
}

/// Whom retention offers go to first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The highest churn probability.
    Risk,
    /// The highest expected value lost: churn probability times the spend model's
    /// predicted spend.
    ValueLost,
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
    /// A spend model scored alongside, on its own cadence, if any.
    pub spend: Option<SpendModelConfig>,
    /// When a model's inputs or scores count as drifted from its training reference.
    pub drift: crate::ml::drift::Thresholds,
}

/// Spend scoring settings.
#[derive(Debug, Clone)]
pub struct SpendModelConfig {
    /// `spend.json`.
    pub spec: PathBuf,
    /// Days between scorings.
    pub every_days: u32,
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
    /// Optional behaviours the scenario enables, with their settings, in the order listed.
    pub systems: Vec<crate::plugin::Enabled>,
    /// Churn scoring with a model, if configured.
    pub churn_model: Option<ChurnModelConfig>,
    /// Output settings.
    pub output: OutputSpec,
    /// The file the scenario came from.
    pub source: PathBuf,
    /// Where the population is given (`file:line:col`), for errors about its size found
    /// after validation (the memory guard).
    pub population_at: String,
    /// The currency amounts are in (`money:`), Indian rupees by default.
    pub money: crate::money::Currency,
    /// Published figures the run is compared with.
    pub published: Vec<crate::analytics::published::Figure>,
}

/// Command-line overrides of a scenario's settings, applied and checked together by
/// [`Scenario::apply`]: they are held to the same limits as the file's own values.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--seed`.
    pub seed: Option<u64>,
    /// `--days`.
    pub days: Option<u32>,
    /// `--scale`.
    pub scale: Option<f64>,
    /// `--out`.
    pub out: Option<PathBuf>,
    /// `--format`, replacing the scenario's formats (each once, in the order given).
    pub formats: Vec<Format>,
}

impl Scenario {
    /// Loads and validates a scenario file. `registry` holds the behaviours its `systems`
    /// can enable ([`crate::sim::registry`] for Bazaar's own).
    pub fn load(path: &Path, registry: &crate::plugin::Registry) -> Result<Self, ScenarioError> {
        let map = load::SourceMap::load(path)?;
        validate::parse_and_validate(&map, path, registry)
    }

    /// Parses and validates scenario bytes that did not come from a file (checked for
    /// UTF-8 and size as a file is).
    pub fn from_bytes(
        name: &str,
        bytes: Vec<u8>,
        registry: &crate::plugin::Registry,
    ) -> Result<Self, ScenarioError> {
        let map = load::SourceMap::from_bytes(name, bytes)?;
        validate::parse_and_validate(&map, Path::new(name), registry)
    }

    /// Parses and validates scenario text as if it were the file `name`: its includes and
    /// model paths are read relative to `name`'s folder, and errors name it (an experiment's
    /// arm: the base's text with fields changed).
    pub fn from_text_as(
        name: &Path,
        text: &str,
        registry: &crate::plugin::Registry,
    ) -> Result<Self, ScenarioError> {
        let dir = match name.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let shown = name.display().to_string();
        let map = load::SourceMap::from_bytes_in(&shown, text.as_bytes().to_vec(), dir)?;
        validate::parse_and_validate(&map, name, registry)
    }

    /// Parses and validates scenario text that did not come from a file.
    pub fn from_text(
        name: &str,
        text: &str,
        registry: &crate::plugin::Registry,
    ) -> Result<Self, ScenarioError> {
        let map = load::SourceMap::from_text(name, text)?;
        validate::parse_and_validate(&map, Path::new(name), registry)
    }

    /// Total customers at the start (validation keeps it within [`crate::limits::MAX_CUSTOMERS`];
    /// the sum saturates rather than wraps all the same).
    pub fn customers(&self) -> u64 {
        self.population
            .iter()
            .fold(0u64, |a, &n| a.saturating_add(n))
    }

    /// Customers at the end of the run at most: the start plus every acquisition.
    pub fn max_customers(&self) -> u64 {
        let acquired: f64 = self
            .new_per_day
            .iter()
            .map(|n| (n * f64::from(self.days)).ceil())
            .sum();
        // A float-to-integer cast saturates.
        self.customers()
            .saturating_add(acquired as u64)
            .saturating_add(self.reserved().customers)
    }

    /// What the enabled `systems` reserve: customers they spawn, bytes per customer.
    pub fn reserved(&self) -> crate::plugin::Reserve {
        self.systems.iter().map(|s| s.plugin.reserve(self)).fold(
            crate::plugin::Reserve::default(),
            crate::plugin::Reserve::and,
        )
    }

    /// Applies command-line overrides, refusing any that breaks a limit the scenario file
    /// is held to. The error names the flag.
    pub fn apply(&mut self, o: Overrides) -> Result<(), String> {
        use crate::limits::{MAX_CUSTOMERS, MAX_DAYS};
        if let Some(seed) = o.seed {
            self.seed = seed;
        }
        if let Some(days) = o.days {
            if !(1..=MAX_DAYS).contains(&days) {
                return Err(format!(
                    "--days {days}: a run lasts from 1 to {MAX_DAYS} days"
                ));
            }
            if crate::limits::last_day(self.start, days).is_none() {
                return Err(format!(
                    "--days {days}: a run from {} would end after the year 9999",
                    self.start
                ));
            }
            self.days = days;
        }
        if let Some(scale) = o.scale {
            if !(scale.is_finite() && scale > 0.0) {
                return Err(format!(
                    "--scale {scale}: give a number above 0, e.g. 0.5 or 10"
                ));
            }
            self.scale(scale);
        }
        if self.max_customers() > MAX_CUSTOMERS {
            return Err(format!(
                "{} customers (with acquisitions over {} days) is more than the {MAX_CUSTOMERS} one run supports\n  hint: lower --scale or --days",
                self.max_customers(),
                self.days
            ));
        }
        if let Some(out) = o.out {
            self.output.dir = out;
        }
        if !o.formats.is_empty() {
            self.output.formats.clear();
            for f in o.formats {
                if !self.output.formats.contains(&f) {
                    self.output.formats.push(f);
                }
            }
        }
        Ok(())
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
