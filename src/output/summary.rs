//! `summary.json`: the run's headline figures — totals, per persona, festival against ordinary
//! days and weekend against weekday — all derived from the exact integer tallies.

use serde::Serialize;

use crate::money::Currency;
use crate::records::{DayClass, Tally, Totals};
use crate::scenario::Scenario;

/// Figures for one persona.
#[derive(Debug, Clone, Serialize)]
pub struct PersonaSummary {
    /// Persona name.
    pub persona: String,
    /// Human label.
    pub label: String,
    /// Customers at the start.
    pub customers: u64,
    /// Customers at the end (start + acquired - churned).
    pub customers_at_end: u64,
    /// Share of all customers at the start.
    pub customer_share: f64,
    /// Revenue in major units of the scenario's currency.
    pub revenue: f64,
    /// Share of all revenue.
    pub revenue_share: f64,
    /// Mean basket in major units of the scenario's currency.
    pub mean_basket: f64,
    /// The exact tallies.
    pub totals: Totals,
}

/// A class of days compared with its complement.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// Days in the class.
    pub days: u32,
    /// Days in the complement.
    pub other_days: u32,
    /// Revenue per day in the class, major units of the scenario's currency.
    pub revenue_per_day: f64,
    /// Revenue per day in the complement, major units of the scenario's currency.
    pub other_revenue_per_day: f64,
    /// Transactions per day in the class.
    pub transactions_per_day: f64,
    /// Transactions per day in the complement.
    pub other_transactions_per_day: f64,
    /// Mean basket in the class, major units of the scenario's currency.
    pub mean_basket: f64,
    /// Mean basket in the complement, major units of the scenario's currency.
    pub other_mean_basket: f64,
    /// Revenue per day, class over complement (null when either side has no days).
    pub revenue_uplift: Option<f64>,
}

/// The whole summary.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Scenario name.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// First day.
    pub start: String,
    /// Last day.
    pub end: String,
    /// Days simulated.
    pub days: u32,
    /// Customers at the start.
    pub customers: u64,
    /// Customers at the end (start + acquired - churned).
    pub customers_at_end: u64,
    /// Revenue in major units of the scenario's currency.
    pub revenue: f64,
    /// Mean basket in major units of the scenario's currency.
    pub mean_basket: f64,
    /// The exact tallies.
    pub totals: Totals,
    /// Per persona.
    pub personas: Vec<PersonaSummary>,
    /// Festival days against ordinary days.
    pub festival_vs_ordinary: Comparison,
    /// Weekend days against weekdays.
    pub weekend_vs_weekday: Comparison,
    /// The currency of every amount (left out for Indian rupees, the default).
    #[serde(skip_serializing_if = "Currency::is_default")]
    pub currency: Currency,
}

fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 { 0.0 } else { a / b }
}

/// Rounds to 4 decimals so the JSON stays readable.
fn r4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn compare(a: &DayClass, b: &DayClass, money: &Currency) -> Comparison {
    let per_day = |c: &DayClass| ratio(money.major(c.totals.revenue_paise), f64::from(c.days));
    let tx_day = |c: &DayClass| ratio(c.totals.transactions as f64, f64::from(c.days));
    Comparison {
        days: a.days,
        other_days: b.days,
        revenue_per_day: r4(per_day(a)),
        other_revenue_per_day: r4(per_day(b)),
        transactions_per_day: r4(tx_day(a)),
        other_transactions_per_day: r4(tx_day(b)),
        mean_basket: r4(a.totals.mean_basket_paise() / money.per_major() as f64),
        other_mean_basket: r4(b.totals.mean_basket_paise() / money.per_major() as f64),
        revenue_uplift: (a.days > 0 && b.days > 0 && per_day(b) > 0.0)
            .then(|| r4(per_day(a) / per_day(b))),
    }
}

impl Summary {
    /// Builds the summary of a finished run.
    pub fn new(scenario: &Scenario, tally: &Tally) -> Self {
        let totals = tally.overall();
        let customers = scenario.customers();
        let money = &scenario.money;
        let per_major = money.per_major() as f64;
        let personas = scenario
            .personas
            .iter()
            .zip(&tally.by_persona)
            .zip(&scenario.population)
            .map(|((p, t), n)| PersonaSummary {
                persona: p.name.clone(),
                label: p.label.clone(),
                customers: *n,
                customers_at_end: n + t.acquired - t.churned,
                customer_share: r4(ratio(*n as f64, customers as f64)),
                revenue: money.major(t.revenue_paise),
                revenue_share: r4(ratio(t.revenue_paise as f64, totals.revenue_paise as f64)),
                mean_basket: r4(t.mean_basket_paise() / per_major),
                totals: *t,
            })
            .collect();
        Self {
            scenario: scenario.name.clone(),
            seed: scenario.seed,
            start: scenario.start.to_string(),
            end: scenario.end().to_string(),
            days: scenario.days,
            customers,
            customers_at_end: customers + totals.acquired - totals.churned,
            revenue: money.major(totals.revenue_paise),
            mean_basket: r4(totals.mean_basket_paise() / per_major),
            totals,
            personas,
            festival_vs_ordinary: compare(&tally.festival, &tally.ordinary, money),
            weekend_vs_weekday: compare(&tally.weekend, &tally.weekday, money),
            currency: money.clone(),
        }
    }
}
