//! Collecting the [`Aggregates`] while the run streams: hour by hour from the hour's records,
//! day by day from the closed day, plus one parallel pass over customers at the end of each
//! day for the loyalty distribution. Nothing here holds per-transaction data.

use bevy_ecs::prelude::*;
use bevy_utils::Parallel;
use chrono::Datelike;

use super::{Aggregates, BASKET_BINS, BudgetUse, Cell, Day, LOYALTY_BINS, basket_bin};
use crate::calendar::{Clock, Today};
use crate::components::{Budget, Engagement, Ledger, Loyalty, Persona};
use crate::records::{ClosedDay, HourRecords};
use crate::scenario::Scenario;
use crate::sim::{Model, Observed, Plugin, SimBuilder, SimSet};

/// The aggregates being collected, and today's partial day.
#[derive(Resource)]
pub struct Analytics {
    /// What has been collected so far.
    pub aggregates: Aggregates,
    today: Day,
    loyalty: Parallel<Vec<[u64; LOYALTY_BINS]>>,
    /// The category × persona cells, one flat row per persona, added into
    /// [`Aggregates::category_persona`] by [`Analytics::finish`]: every line item of a run
    /// passes here, on the thread between hours.
    category_persona: Vec<Cell>,
    /// The scenario's published figures, compared with the run at the finish.
    figures: Vec<super::published::Figure>,
}

/// The first day of a run's steady state: 0 on a warm start (customers start there); on a
/// cold start, the day by which nine customers in ten of every persona would have bought
/// (the 90th percentile of its steady-state days since a purchase), at most half the run.
fn settled_from(scenario: &Scenario) -> usize {
    if scenario.personas.iter().any(|p| !p.warm_ages.is_empty()) {
        return 0;
    }
    let days = scenario
        .personas
        .iter()
        .map(|p| {
            let cdf = p.warm_age_cdf();
            cdf.partition_point(|&c| c < 0.9) + 1
        })
        .max()
        .unwrap_or(0);
    days.min(scenario.days as usize / 2)
}

impl Analytics {
    /// Empty aggregates shaped for a scenario.
    pub fn new(scenario: &Scenario) -> Self {
        let personas = scenario.personas.len();
        let categories = scenario.catalog.len();
        Self {
            aggregates: Aggregates {
                scenario: scenario.name.clone(),
                personas: scenario.personas.iter().map(|p| p.name.clone()).collect(),
                labels: scenario.personas.iter().map(|p| p.label.clone()).collect(),
                customers: scenario.population.clone(),
                categories: scenario.catalog.iter().map(|c| c.name.clone()).collect(),
                groups: scenario
                    .catalog
                    .iter()
                    .map(|c| c.group.clone().unwrap_or_default())
                    .collect(),
                days: Vec::new(),
                hour_weekday: vec![vec![Cell::default(); 24]; 7],
                category_persona: vec![vec![Cell::default(); categories]; personas],
                basket_histogram: vec![vec![0; BASKET_BINS]; personas],
                budget: vec![BudgetUse::default(); personas],
                columns: Vec::new(),
                charts: Vec::new(),
                currency: scenario.money.clone(),
                settled_from: settled_from(scenario),
                published: Vec::new(),
            },
            figures: scenario.published.clone(),
            today: Self::empty_day(personas, categories),
            loyalty: Parallel::default(),
            category_persona: vec![Cell::default(); personas * categories],
        }
    }

    fn empty_day(personas: usize, categories: usize) -> Day {
        Day {
            personas: vec![Cell::default(); personas],
            category_revenue: vec![0; categories],
            ..Day::default()
        }
    }

    /// Completes the aggregates at the end of a run of `days` days: the category cells
    /// gathered hour by hour, and budget use from the customers.
    pub fn finish(&mut self, world: &mut World) {
        let categories = self.aggregates.categories.len().max(1);
        for (p, row) in self.category_persona.chunks(categories).enumerate() {
            for (total, cell) in self.aggregates.category_persona[p].iter_mut().zip(row) {
                total.add(cell);
            }
        }
        self.category_persona.fill(Cell::default());
        let mut q = world.query::<(&Persona, &Budget, &Ledger)>();
        for (p, b, l) in q.iter(world) {
            let u = &mut self.aggregates.budget[usize::from(p.0)];
            if b.is_limited() {
                u.limited = true;
                u.spent_paise = u.spent_paise.saturating_add(l.spent);
                u.available_paise = u
                    .available_paise
                    .saturating_add(l.spent)
                    .saturating_add(i64::from(b.left));
            }
        }
    }
}

/// A basket's value in hundredths of a major unit, the scale of the basket bins: the
/// minor units themselves for paise and cents.
#[inline]
pub(crate) fn hundredths(minor: i64, per_major: i64) -> i64 {
    if per_major == 100 {
        minor
    } else {
        (i128::from(minor) * 100 / i128::from(per_major)) as i64
    }
}

/// Adds the hour's records.
pub fn collect_hour(
    clock: Res<Clock>,
    today: Res<Today>,
    records: Res<HourRecords>,
    mut a: ResMut<Analytics>,
) {
    let a = &mut *a;
    let weekday = today.date.weekday().num_days_from_monday() as usize;
    let hour = clock.hour() as usize;
    let categories = a.aggregates.categories.len();
    let per_major = a.aggregates.currency.per_major();
    for (t, lines) in records.iter() {
        let p = usize::from(t.persona);
        let cell = Cell {
            revenue_paise: t.total,
            transactions: 1,
            units: u64::from(t.units),
        };
        a.aggregates.hour_weekday[weekday][hour].add(&cell);
        a.today.personas[p].add(&cell);
        a.aggregates.basket_histogram[p][basket_bin(hundredths(t.total, per_major))] += 1;
        if t.trimmed {
            a.aggregates.budget[p].trimmed += 1;
        }
        let cells = &mut a.category_persona[p * categories..(p + 1) * categories];
        for l in lines {
            let c = usize::from(l.category);
            let revenue = l.total();
            cells[c].add(&Cell {
                revenue_paise: revenue,
                transactions: 1,
                units: u64::from(l.quantity),
            });
            let r = &mut a.today.category_revenue[c];
            *r = r.saturating_add(revenue);
        }
    }
}

/// Run condition: the last hour of a day.
fn end_of_day(clock: Res<Clock>) -> bool {
    clock.hour() == 23
}

/// Histograms the loyalty of active customers, by persona.
pub fn sample_loyalty(
    model: Res<Model>,
    a: Res<Analytics>,
    pool: Res<crate::sim::SimPool>,
    customers: Query<(&Persona, &Loyalty, &Engagement)>,
) {
    let personas = model.personas.len();
    for (persona, loyalty, engagement) in customers
        .contiguous_iter()
        .expect("customer components are table-stored")
    {
        pool.for_each_chunk(
            persona.len(),
            || a.loyalty.borrow_local_mut(),
            |hist, rows| {
                if hist.len() < personas {
                    hist.resize(personas, [0; LOYALTY_BINS]);
                }
                for i in rows {
                    if engagement[i].is_active() {
                        let bin =
                            ((loyalty[i].0 * LOYALTY_BINS as f32) as usize).min(LOYALTY_BINS - 1);
                        hist[usize::from(persona[i].0)][bin] += 1;
                    }
                }
            },
        );
    }
}

/// Closes the analytics day.
pub fn collect_day(closed: Res<ClosedDay>, model: Res<Model>, mut a: ResMut<Analytics>) {
    if !closed.ready {
        return;
    }
    let a = &mut *a;
    let personas = model.personas.len();
    let mut loyalty = vec![[0u64; LOYALTY_BINS]; personas];
    for hist in a.loyalty.iter_mut() {
        for (p, h) in hist.iter_mut().enumerate() {
            for (b, n) in h.iter_mut().enumerate() {
                loyalty[p][b] += std::mem::take(n);
            }
        }
    }
    let mut day = std::mem::replace(
        &mut a.today,
        Analytics::empty_day(personas, a.aggregates.categories.len()),
    );
    if let Some(date) = closed.date {
        day.date = date.to_string();
        day.weekday = date.weekday().num_days_from_monday() as u8;
    }
    day.festival = closed.festival;
    day.weekend = closed.weekend;
    day.events.clone_from(&closed.events);
    day.churned = closed.by_persona.iter().map(|t| t.churned).collect();
    day.active.clone_from(&closed.active);
    day.loyalty = loyalty;
    // `closed.extra` is by persona, then column; a day's `extra` is by column, then persona.
    let columns = closed.extra.first().map_or(0, Vec::len);
    day.extra = (0..columns)
        .map(|c| closed.extra.iter().map(|row| row[c].as_f64()).collect())
        .collect();
    a.aggregates.days.push(day);
}

/// Collects the aggregates during the run and writes `aggregates.json` to the
/// [`crate::output::OutputDir`] resource at the finish (when the world has one).
pub struct AnalyticsPlugin;

impl Plugin for AnalyticsPlugin {
    fn name(&self) -> &str {
        "analytics"
    }

    fn save(
        &self,
        world: &mut World,
        state: &mut crate::checkpoint::State,
    ) -> crate::plugin::Result {
        let a = world.resource::<Analytics>();
        state.put("aggregates", &a.aggregates)?;
        state.put("category_persona", &a.category_persona)
    }

    fn restore(
        &self,
        world: &mut World,
        state: &crate::checkpoint::State,
    ) -> crate::plugin::Result {
        let mut a = world.resource_mut::<Analytics>();
        a.aggregates = state.get("aggregates")?;
        a.category_persona = state.get("category_persona")?;
        Ok(())
    }

    fn build(&self, sim: &mut SimBuilder) -> crate::plugin::Result {
        sim.world.insert_resource(Analytics::new(sim.scenario));
        sim.schedule.add_systems(
            (
                collect_hour.after(Observed::Hour),
                sample_loyalty.run_if(end_of_day).after(Observed::Day),
                collect_day.after(Observed::Day),
            )
                .chain()
                .in_set(SimSet::Observe),
        );
        Ok(())
    }

    fn finish(&self, world: &mut World) -> crate::plugin::Result {
        let Some(mut analytics) = world.remove_resource::<Analytics>() else {
            return Ok(());
        };
        analytics.finish(world);
        let cluster = world
            .get_resource::<crate::cluster::Cluster>()
            .cloned()
            .unwrap_or_default();
        if cluster.sharded() {
            // Rank 0 adds up every rank's and writes them.
            let bytes = serde_json::to_vec(&analytics.aggregates)?;
            let Some(all) = cluster.gather(&bytes) else {
                return Ok(());
            };
            for other in all.iter().skip(1) {
                let other: super::Aggregates = serde_json::from_slice(other)?;
                analytics.aggregates.add_shard(&other);
            }
        }
        if !analytics.figures.is_empty() {
            let model = world.resource::<Model>();
            analytics.aggregates.published = super::published::evaluate(
                &analytics.figures,
                &model.calendar,
                model.categories,
                &analytics.aggregates.days,
            );
        }
        if let Some(report) = world.get_resource::<crate::tables::DailyReport>() {
            analytics.aggregates.columns = report
                .columns()
                .iter()
                .map(|c| c.name.to_string())
                .collect();
        }
        if let Some(charts) = world.get_resource::<crate::report::charts::PluginCharts>() {
            analytics.aggregates.charts = charts.0.iter().map(|c| c.name.to_string()).collect();
        }
        if let Some(mut dir) = world.get_resource_mut::<crate::output::OutputDir>() {
            let json = serde_json::to_vec(&analytics.aggregates)?;
            dir.write_file("aggregates.json", &json)?;
        }
        Ok(())
    }
}
