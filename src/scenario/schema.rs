//! The raw scenario schema: plain serde structs that mirror what a scenario author writes.
//!
//! Nothing here is checked beyond its type. `validate` turns a [`ScenarioFile`] into a
//! checked [`crate::scenario::Scenario`]; every field documented here is described, with its
//! default, in `docs/scenarios.md`.

use serde::Deserialize;

/// A whole scenario file, after `include("...")` expansion.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Scenario")]
pub struct ScenarioFile {
    /// Scenario name; also the default output folder `out/<name>`.
    pub name: String,
    /// Free text shown in the report.
    #[serde(default)]
    pub description: String,
    /// Master seed: every random draw is a function of this seed, the customer and the hour.
    pub seed: u64,
    /// First simulated day, `"YYYY-MM-DD"`.
    pub start: String,
    /// Number of simulated days (give this or `end`).
    #[serde(default)]
    pub days: Option<u32>,
    /// Last simulated day, inclusive, `"YYYY-MM-DD"` (give this or `days`).
    #[serde(default)]
    pub end: Option<String>,
    /// Product categories that personas buy and calendar events can target.
    pub catalog: Vec<CategoryFile>,
    /// Shopper personas.
    pub personas: Vec<PersonaFile>,
    /// How many customers of each persona to simulate.
    pub population: Vec<PopulationFile>,
    /// The calendar: weekends, seasons, paydays and recurring events.
    #[serde(default)]
    pub calendar: CalendarFile,
    /// Extra events for this scenario only (added to the calendar's).
    #[serde(default)]
    pub events: Vec<EventFile>,
    /// Optional behaviours to enable: a registered name, optionally with settings,
    /// `DailyLog(every_days: 7)`. Read entry by entry from the text by validation, with each
    /// behaviour's own types; here only their shape is checked.
    #[serde(default)]
    pub systems: Vec<serde::de::IgnoredAny>,
    /// Churn scoring with a trained model, inside the schedule.
    #[serde(default)]
    pub churn_model: Option<ChurnModelFile>,
    /// Where and how to write results.
    #[serde(default)]
    pub output: OutputFile,
    /// The currency amounts are in and how readers see them; Indian rupees if absent.
    #[serde(default)]
    pub money: Option<MoneyFile>,
    /// Start from a steady state (each customer's last purchase drawn from its persona's
    /// stationary distribution) rather than with every customer never having bought.
    #[serde(default = "yes")]
    pub warm_start: bool,
    /// Published figures the run is compared with, in the report's "Against published
    /// figures" section.
    #[serde(default)]
    pub published: Vec<FigureFile>,
    /// Multipliers over the figures above (visits, prices, customers, categories, events),
    /// applied before validation: what `bazaar calibrate --targets` writes.
    #[serde(default)]
    pub tuning: Option<super::tune::TuningFile>,
}

/// A published figure: the uplift of a measure on an event's days over ordinary days.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Figure")]
pub struct FigureFile {
    /// What the figure is, in words.
    pub name: String,
    /// Where it was published.
    pub source: String,
    /// Events (by name) whose full-effect days the figure covers.
    pub days: Vec<String>,
    /// What is measured on those days.
    #[serde(default)]
    pub measure: MeasureFile,
    /// The published uplift.
    pub uplift: crate::analytics::published::Uplift,
    /// How far off still counts as met, as a share of the figure.
    #[serde(default = "tenth")]
    pub tolerance: f64,
}

/// What a published figure measures.
#[derive(Debug, Clone, Default, Deserialize)]
pub enum MeasureFile {
    /// Transactions.
    Transactions,
    /// Revenue.
    #[default]
    Revenue,
    /// Revenue of these categories or groups.
    Categories(Vec<String>),
}

fn tenth() -> f64 {
    0.1
}

/// The scenario's currency.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Money")]
pub struct MoneyFile {
    /// ISO 4217 code, e.g. `"USD"`: the symbol, minor units and grouping follow from it
    /// unless given below.
    pub currency: String,
    /// Written before amounts for readers, e.g. `"$"`, `"Rs"`.
    #[serde(default)]
    pub symbol: Option<String>,
    /// Decimal places of the minor unit (0 to 4).
    #[serde(default)]
    pub minor_units: Option<u8>,
    /// `Indian` (lakh, crore) or `Western` (thousands, millions).
    #[serde(default)]
    pub grouping: Option<crate::money::Grouping>,
}

/// A product category.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Category")]
pub struct CategoryFile {
    /// Identifier used by personas and events, e.g. `"jewellery"`.
    pub name: String,
    /// A coarser group (e.g. `"grocery"`) that events can target as a whole.
    #[serde(default)]
    pub group: Option<String>,
    /// Gross margin at regular prices, a share of the price (0.25: a unit that sells for
    /// Rs 100 cost the retailer Rs 75). Either every category of a catalog has one or none.
    #[serde(default)]
    pub margin: Option<f64>,
}

/// One shopper persona.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Persona")]
pub struct PersonaFile {
    /// Identifier used in `population` and in outputs, e.g. `"premium"`.
    pub name: String,
    /// Human label for reports, e.g. `"Premium Shopper"`.
    #[serde(default)]
    pub label: Option<String>,
    /// Age range in years, inclusive, drawn uniformly.
    pub age: (u32, u32),
    /// Monthly income range in rupees, inclusive, drawn uniformly.
    pub income: (u64, u64),
    /// How often the persona shops.
    pub visits: VisitsFile,
    /// When in the day the persona shops.
    pub hours: HoursFile,
    /// Monthly budget; absent means unlimited.
    #[serde(default)]
    pub budget: Option<BudgetFile>,
    /// Loyalty dynamics; absent means loyalty stays at 1 and has no effect.
    #[serde(default)]
    pub loyalty: Option<LoyaltyFile>,
    /// Attrition: the underlying daily propensity to leave; absent means customers never churn.
    #[serde(default)]
    pub churn: Option<ChurnFile>,
    /// What goes in the basket, one entry per category.
    pub basket: Vec<BasketItemFile>,
    /// Kinds of trip (a top-up, a big shop): each visit is one, drawn by share, and its
    /// `purchase` factor multiplies every category's probability. Empty: every visit alike.
    #[serde(default)]
    pub trips: Vec<TripFile>,
}

/// A kind of trip.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Trip")]
pub struct TripFile {
    /// Share of visits that are this kind (shares are normalised to sum to 1).
    pub share: f64,
    /// Factor on every category's purchase probability.
    pub purchase: f64,
}

/// Visit likelihood.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Visits")]
pub struct VisitsFile {
    /// Probability of a visit for a customer who has never bought; not scaled or capped.
    #[serde(default = "one")]
    pub first_visit: f64,
    /// Recency curve: `(days, p)` steps; the probability for `d` days since the last
    /// purchase is the `p` of the last step with `days <= d`.
    pub recency: Vec<RecencyStepFile>,
    /// Weekday factors, Monday first (7 values).
    #[serde(default = "week_of_ones")]
    pub weekday: Vec<f64>,
    /// Upper bound on the daily visit probability after all factors.
    #[serde(default = "default_cap")]
    pub cap: f64,
}

/// One step of a recency curve.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Step")]
pub struct RecencyStepFile {
    /// Days since the last purchase from which this step applies.
    pub days: u32,
    /// Daily visit probability.
    pub p: f64,
}

/// When a persona's visits happen.
#[derive(Debug, Clone, Deserialize)]
pub enum HoursFile {
    /// Time slots `("HH:MM", "HH:MM")`: one slot uniformly, then a uniform minute inside it.
    Slots(Vec<(String, String)>),
    /// 24 relative weights, hour 0 first; the minute is uniform inside the hour.
    Profile(Vec<f64>),
}

/// A persona's budget.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Budget")]
pub struct BudgetFile {
    /// Share of monthly income set aside for this retailer's categories.
    pub income_share: f64,
    /// Day of month (1-28) the budget is refilled.
    #[serde(default = "one_u32")]
    pub payday: u32,
    /// Visit factor when the budget is exhausted (1 = no effect).
    #[serde(default = "half")]
    pub exhausted_visit_factor: f64,
    /// Needs: categories or groups bought from everything left of the month's budget, most
    /// needed first. Every other category is a want, paced over the pay period.
    #[serde(default)]
    pub needs: Vec<String>,
    /// Wants by priority, most wanted first: a basket over budget keeps the needs, then these
    /// in this order; unlisted categories come last. Empty: basket order.
    #[serde(default)]
    pub priority: Vec<String>,
}

/// Loyalty dynamics.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Loyalty")]
pub struct LoyaltyFile {
    /// Initial loyalty range, drawn uniformly within 0..=1.
    pub initial: (f64, f64),
    /// How strongly low loyalty lowers visits: factor = 1 - effect * (1 - loyalty).
    #[serde(default)]
    pub visit_effect: f64,
    /// After a full (untrimmed) purchase: loyalty += gain * (1 - loyalty).
    #[serde(default)]
    pub gain: f64,
    /// Daily decay: loyalty -= decay * loyalty.
    #[serde(default)]
    pub decay: f64,
    /// Loss when a basket had to be trimmed to fit the budget.
    #[serde(default)]
    pub trim_penalty: f64,
    /// Price-index excess over 1 tolerated before a shock.
    #[serde(default = "default_shock_threshold")]
    pub shock_threshold: f64,
    /// Loss per unit of price-index excess beyond the threshold.
    #[serde(default)]
    pub shock_penalty: f64,
}

/// One category in a persona's basket.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Item")]
pub struct BasketItemFile {
    /// Catalog category name.
    pub category: String,
    /// Probability the category is bought on a visit.
    pub p: f64,
    /// Quantity range, inclusive, drawn uniformly.
    pub quantity: (u32, u32),
    /// Unit price distribution in rupees.
    pub price: PriceFile,
}

/// A unit price distribution, rupees.
#[derive(Debug, Clone, Deserialize)]
pub enum PriceFile {
    /// Uniform between two prices.
    Uniform(f64, f64),
    /// Log-normal with the given median and sigma, clamped to `(min, max)`.
    LogNormal {
        /// Median price.
        median: f64,
        /// Sigma of the underlying normal.
        sigma: f64,
        /// Lowest price.
        min: f64,
        /// Highest price.
        max: f64,
    },
    /// Always this price.
    Fixed(f64),
}

/// Customers of one persona.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Population")]
pub struct PopulationFile {
    /// Persona name.
    pub persona: String,
    /// Number of customers at the start.
    pub count: i64,
    /// New customers acquired per day (fractions accumulate from day to day).
    #[serde(default)]
    pub new_per_day: f64,
}

/// A persona's attrition: daily hazard = min(base x exp(loyalty x (1 - L) + unmet x U +
/// trims x T + lapse x min(D / 30, 3)), 1), with L the loyalty, U and T the recent
/// (decaying) counts of unmet visits and budget trims, D the days since the last purchase.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Churn")]
pub struct ChurnFile {
    /// Daily hazard of a fully loyal customer under no pressure.
    pub base: f64,
    /// Weight of lost loyalty.
    #[serde(default)]
    pub loyalty: f64,
    /// Weight of recent visits that bought nothing or were trimmed.
    #[serde(default)]
    pub unmet: f64,
    /// Weight of recent budget trims.
    #[serde(default)]
    pub trims: f64,
    /// Weight of time since the last purchase, in months (capped at 3).
    #[serde(default)]
    pub lapse: f64,
    /// Daily decay of the recent unmet and trim counts.
    #[serde(default = "default_memory_decay")]
    pub memory_decay: f64,
}

/// Multipliers an event, weekend, season or payday applies.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Effect")]
pub struct EffectFile {
    /// Visit probability factor.
    #[serde(default = "one")]
    pub traffic: f64,
    /// Category purchase-probability factor.
    #[serde(default = "one")]
    pub purchase: f64,
    /// Quantity factor (floored, capped at twice the range's maximum).
    #[serde(default = "one")]
    pub quantity: f64,
    /// Unit price factor range, drawn uniformly per line.
    #[serde(default = "unit_range")]
    pub price: (f64, f64),
    /// Per-category (or per-group) overrides, multiplied on top.
    #[serde(default)]
    pub categories: Vec<CategoryEffectFile>,
}

impl Default for EffectFile {
    fn default() -> Self {
        Self {
            traffic: 1.0,
            purchase: 1.0,
            quantity: 1.0,
            price: (1.0, 1.0),
            categories: Vec::new(),
        }
    }
}

/// A category-specific effect.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "CategoryEffect")]
pub struct CategoryEffectFile {
    /// A catalog category or group name.
    pub category: String,
    /// Purchase-probability factor.
    #[serde(default = "one")]
    pub purchase: f64,
    /// Quantity factor.
    #[serde(default = "one")]
    pub quantity: f64,
    /// Unit price factor range.
    #[serde(default = "unit_range")]
    pub price: (f64, f64),
}

/// The calendar.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename = "Calendar")]
pub struct CalendarFile {
    /// Applied on Saturdays and Sundays.
    #[serde(default)]
    pub weekend: EffectFile,
    /// Seasons by month.
    #[serde(default)]
    pub seasons: Vec<SeasonFile>,
    /// Recurring monthly payday effect.
    #[serde(default)]
    pub payday: Option<PaydayFile>,
    /// Dated events.
    #[serde(default)]
    pub events: Vec<EventFile>,
}

/// A season: an effect on some months.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Season")]
pub struct SeasonFile {
    /// Season name.
    pub name: String,
    /// Months 1-12.
    pub months: Vec<u32>,
    /// The effect.
    #[serde(default)]
    pub effect: EffectFile,
}

/// Paydays: an effect for some days from a day of the month.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Payday")]
pub struct PaydayFile {
    /// Day of month (1-28).
    pub day: u32,
    /// How many days the effect lasts.
    #[serde(default = "one_u32")]
    pub days: u32,
    /// The effect.
    #[serde(default)]
    pub effect: EffectFile,
}

/// A dated calendar event.
#[derive(Debug, Clone, Deserialize)]
pub enum EventFile {
    /// A festival: flags transactions as festive.
    Festival(EventSpecFile),
    /// A dip in spending (e.g. Pitru Paksha).
    Dip(EventSpecFile),
    /// A retailer's own promotion.
    Sale(EventSpecFile),
    /// The store is closed: no visits on its days (it takes no effect fields).
    Closed(EventSpecFile),
}

/// The body of a dated event.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Event")]
pub struct EventSpecFile {
    /// Event name, e.g. `"Diwali"`.
    pub name: String,
    /// First full-effect day.
    pub from: String,
    /// Last full-effect day; defaults to `from + days - 1`.
    #[serde(default)]
    pub to: Option<String>,
    /// Length in days when `to` is absent.
    #[serde(default)]
    pub days: Option<u32>,
    /// Days before `from` over which the effect ramps up linearly.
    #[serde(default)]
    pub lead_in: u32,
    /// Days after `to` over which the effect ramps down linearly.
    #[serde(default)]
    pub tail: u32,
    /// Visit probability factor.
    #[serde(default = "one")]
    pub traffic: f64,
    /// Category purchase-probability factor.
    #[serde(default = "one")]
    pub purchase: f64,
    /// Quantity factor.
    #[serde(default = "one")]
    pub quantity: f64,
    /// Unit price factor range.
    #[serde(default = "unit_range")]
    pub price: (f64, f64),
    /// Per-category (or per-group) overrides.
    #[serde(default)]
    pub categories: Vec<CategoryEffectFile>,
}

/// Churn scoring with a trained model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "ChurnModel")]
pub struct ChurnModelFile {
    /// The model description (`churn.json`), relative to the scenario file.
    pub spec: String,
    /// Score every this many days (at the end of the day).
    #[serde(default = "one_u32")]
    pub every_days: u32,
    /// What the scores do.
    pub mode: ChurnModeFile,
    /// A spend model scored alongside, for offers that target value lost.
    #[serde(default)]
    pub spend: Option<SpendModelFile>,
    /// Drift thresholds.
    #[serde(default)]
    pub drift: DriftFile,
}

/// When a model's inputs or scores count as drifted from its training reference.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Drift")]
pub struct DriftFile {
    /// PSI at or above this.
    #[serde(default = "tenth")]
    pub psi: f64,
    /// Kolmogorov-Smirnov statistic at or above this.
    #[serde(default = "tenth")]
    pub ks: f64,
    /// Jensen-Shannon distance at or above this.
    #[serde(default = "tenth")]
    pub js: f64,
    /// Share of features drifted for the model's inputs to count as drifted.
    #[serde(default = "half")]
    pub share: f64,
}

impl Default for DriftFile {
    fn default() -> Self {
        Self {
            psi: tenth(),
            ks: tenth(),
            js: tenth(),
            share: half(),
        }
    }
}

/// Spend scoring with a trained regression model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "SpendModel")]
pub struct SpendModelFile {
    /// The model description (`spend.json`), relative to the scenario file.
    pub spec: String,
    /// Score every this many days (at the end of the day, before churn scoring).
    #[serde(default = "one_u32")]
    pub every_days: u32,
}

/// Whom retention offers go to first.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub enum TargetFile {
    /// The highest churn probability.
    #[default]
    Risk,
    /// The highest churn probability times predicted spend.
    ValueLost,
}

/// What churn scores do.
#[derive(Debug, Clone, Deserialize)]
pub enum ChurnModeFile {
    /// The model's probability is the churn hazard (for models trained on real data).
    Drive,
    /// The model flags at-risk customers; they receive a retention offer.
    Retain(RetainFile),
}

/// A retention campaign.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Retain")]
pub struct RetainFile {
    /// Offer to at most this many highest-risk customers per scoring.
    #[serde(default)]
    pub top_k: Option<u64>,
    /// Offer to customers whose churn probability is at least this.
    #[serde(default)]
    pub threshold: Option<f64>,
    /// Cost of one offer, rupees.
    pub cost: f64,
    /// Loyalty gained from an offer, as a share of the distance to 1.
    pub loyalty_boost: f64,
    /// Days before the same customer can get another offer.
    #[serde(default = "default_cooldown")]
    pub cooldown_days: u32,
    /// Whom offers go to first: `Risk` (churn probability) or `ValueLost` (churn
    /// probability times the spend model's predicted spend).
    #[serde(default)]
    pub target: TargetFile,
}

/// Output settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Output")]
pub struct OutputFile {
    /// Output folder; defaults to `out/<scenario name>`.
    #[serde(default)]
    pub dir: Option<String>,
    /// File formats.
    #[serde(default = "default_formats")]
    pub formats: Vec<FormatFile>,
    /// Whether to write one row per line item.
    #[serde(default = "yes")]
    pub line_items: bool,
}

impl Default for OutputFile {
    fn default() -> Self {
        Self {
            dir: None,
            formats: default_formats(),
            line_items: true,
        }
    }
}

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum FormatFile {
    /// Comma-separated values.
    Csv,
    /// Apache Parquet, zstd-compressed.
    Parquet,
}

fn one() -> f64 {
    1.0
}
fn one_u32() -> u32 {
    1
}
fn half() -> f64 {
    0.5
}
fn yes() -> bool {
    true
}
pub(crate) fn unit_range() -> (f64, f64) {
    (1.0, 1.0)
}
fn week_of_ones() -> Vec<f64> {
    vec![1.0; 7]
}
fn default_cap() -> f64 {
    0.95
}
fn default_shock_threshold() -> f64 {
    0.1
}
fn default_cooldown() -> u32 {
    30
}
fn default_memory_decay() -> f64 {
    0.1
}
fn default_formats() -> Vec<FormatFile> {
    vec![FormatFile::Csv]
}
