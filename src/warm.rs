//! Warm start by burn-in: before a warm-started run spawns its customers, a sample of each
//! persona is simulated over ordinary days (the scenario's calendar without its events, no
//! optional behaviours, nothing written) up to the day before the start, and each starting
//! customer takes the state of one sampled customer still shopping at its end: days since
//! the last purchase, loyalty and what is left of the budget, jointly. So a run starts from
//! the steady state its own dynamics reach, whatever `initial` loyalty says, and day 1 looks
//! like the days after it.

use chrono::Duration;

use crate::components::{Budget, Engagement, Loyalty, Persona};
use crate::plugin::SimError;
use crate::scenario::Scenario;
use crate::sim::Simulation;

/// Customers of each persona the burn-in simulates (fewer if the scenario has fewer).
pub const SAMPLE: u64 = 1000;

/// Days the burn-in runs: loyalty settles over a few months (a daily decay of a few tenths
/// of a percent against a gain at each purchase), so a long burn-in; the sample is small.
pub const DAYS: u32 = 365;

/// One sampled customer's state at the end of the burn-in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WarmState {
    /// Days from its last purchase to the run's first day (1: the day before).
    pub age: u16,
    /// Loyalty.
    pub loyalty: f32,
    /// What is left of its budget over its monthly budget (0 without a budget).
    pub left_share: f32,
}

/// Whether a scenario's warm start needs a burn-in: some persona starts warm (it has a
/// steady state of purchases) and has loyalty or a budget, whose steady states only a
/// simulation gives.
pub fn needed(scenario: &Scenario) -> bool {
    scenario
        .personas
        .iter()
        .zip(&scenario.population)
        .any(|(p, &n)| {
            n > 0 && !p.warm_ages.is_empty() && (p.loyalty.is_some() || p.budget.is_some())
        })
}

/// Runs the burn-in of `scenario` on `threads` threads and returns, by persona, the states
/// of the sampled customers still shopping at its end, in id order.
pub fn burn_in(scenario: &Scenario, threads: usize) -> Result<Vec<Vec<WarmState>>, SimError> {
    let mut b = scenario.clone();
    b.name = format!("{} (burn-in)", scenario.name);
    b.start = scenario.start - Duration::days(i64::from(DAYS));
    b.days = DAYS;
    b.calendar.events.clear();
    b.systems.clear();
    b.churn_model = None;
    b.published.clear();
    b.population = scenario.population.iter().map(|&n| n.min(SAMPLE)).collect();
    b.new_per_day = vec![0.0; scenario.personas.len()];
    let mut sim = Simulation::builder(&b)
        .threads(threads)
        .burn_in(false)
        .build()?;
    sim.spawn_population();
    while !sim.finished() {
        sim.step()?;
    }
    let mut states = vec![Vec::new(); scenario.personas.len()];
    let mut q = sim.world.query::<(
        &crate::components::AgentId,
        &Persona,
        &Engagement,
        &Loyalty,
        &Budget,
    )>();
    let mut rows: Vec<_> = q.iter(&sim.world).collect();
    rows.sort_by_key(|r| r.0.0);
    let end = i32::try_from(DAYS).unwrap_or(i32::MAX);
    for (_, persona, engagement, loyalty, budget) in rows {
        if !engagement.is_active() || engagement.last_purchase == Engagement::NEVER_BOUGHT {
            continue;
        }
        let age = (end - i32::from(engagement.last_purchase)).clamp(1, i32::from(u16::MAX));
        let left_share = if budget.is_limited() && budget.monthly > 0 {
            budget.left as f32 / budget.monthly as f32
        } else {
            0.0
        };
        states[usize::from(persona.0)].push(WarmState {
            age: age as u16,
            loyalty: loyalty.0,
            left_share,
        });
    }
    Ok(states)
}
