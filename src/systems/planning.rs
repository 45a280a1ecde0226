//! Daily visit planning: at midnight each customer decides whether to shop today and when.
//!
//! Probability = recency curve × weekday factor × calendar traffic × loyalty factor × budget
//! factor, capped by the persona's cap; a customer who has never bought uses the persona's
//! first-visit probability as is. The decision is stored in [`DayPlan`] so the hourly
//! shopping system only has to compare one byte per customer.

use bevy_ecs::prelude::*;
use chrono::Datelike;

use crate::calendar::{Clock, Today};
use crate::components::*;
use crate::rng::{Purpose, Streams};
use crate::sim::{Model, Plugin, SimBuilder, SimSet, Threads};

/// How many customers plan to visit in each hour of today.
#[derive(Resource, Debug, Default, Clone)]
pub struct VisitsByHour(pub [u32; 24]);

/// The daily visit probability of one customer.
#[inline]
pub fn visit_probability(
    persona: &crate::persona::Persona,
    days_since: Option<u32>,
    weekday: usize,
    traffic: f32,
    loyalty: f32,
    budget: &Budget,
) -> f32 {
    let visits = &persona.visits;
    let Some(days) = days_since else {
        return visits.first_visit;
    };
    let mut p = visits.base(Some(days)) * visits.weekday[weekday] * traffic;
    if let Some(l) = &persona.loyalty {
        p *= l.visit_factor(loyalty);
    }
    if let Some(b) = &persona.budget {
        p *= b.visit_factor(budget.left.into(), budget.monthly.into());
    }
    p.min(visits.cap)
}

/// What planning needs to know about today, the same for every customer.
#[derive(Clone, Copy)]
pub struct PlanDay<'a> {
    /// Day index.
    pub day: u32,
    /// Monday = 0.
    pub weekday: usize,
    /// Today's calendar traffic multiplier.
    pub traffic: f32,
    /// The day's planning streams, one per customer (keyed on the day's first tick).
    pub streams: Streams,
    /// Persona parameters.
    pub personas: &'a [crate::persona::Persona],
}

impl<'a> PlanDay<'a> {
    /// Today's planning inputs.
    pub fn new(clock: &Clock, today: &Today, model: &'a Model) -> Self {
        Self {
            day: clock.day(),
            weekday: today.date.weekday().num_days_from_monday() as usize,
            traffic: today.traffic,
            streams: Streams::at(model.seed, clock.tick, Purpose::Plan),
            personas: &model.personas,
        }
    }
}

/// The component columns planning reads, for one run of customers.
pub struct PlanRows<'a> {
    /// Ids.
    pub ids: &'a [AgentId],
    /// Personas.
    pub persona: &'a [Persona],
    /// Loyalty.
    pub loyalty: &'a [Loyalty],
    /// Budgets.
    pub budget: &'a [Budget],
    /// Engagement.
    pub engagement: &'a [Engagement],
}

/// Plans the day of a run of customers into `plans` (same rows as `rows`), and counts the
/// visits planned in each hour into `counts`. The kernel of [`plan_visits`], callable on any
/// struct-of-arrays storage.
#[inline]
pub fn plan_rows(
    d: &PlanDay<'_>,
    rows: PlanRows<'_>,
    plans: &mut [DayPlan],
    counts: &mut [u32; 24],
) {
    for (i, plan) in plans.iter_mut().enumerate() {
        if !rows.engagement[i].is_active() {
            *plan = DayPlan::none();
            continue;
        }
        let persona_params = &d.personas[usize::from(rows.persona[i].0)];
        let p = visit_probability(
            persona_params,
            rows.engagement[i].days_since_purchase(d.day),
            d.weekday,
            d.traffic,
            rows.loyalty[i].0,
            &rows.budget[i],
        );
        let id = rows.ids[i].0;
        // Most customers stay home: their one draw is taken without opening the stream.
        *plan = if d.streams.first_unit_f32(id) < p {
            let mut rng = d.streams.stream(id);
            rng.next_u64(); // the draw above
            let minute = persona_params.hours.sample_minute(&mut rng);
            let hour = (minute / 60).min(23) as u8;
            counts[usize::from(hour)] += 1;
            DayPlan {
                hour,
                minute: (minute % 60) as u8,
            }
        } else {
            DayPlan::none()
        };
    }
}

/// Plans every customer's day.
pub fn plan_visits(
    clock: Res<Clock>,
    today: Res<Today>,
    model: Res<Model>,
    mut by_hour: ResMut<VisitsByHour>,
    mut customers: Query<(
        &AgentId,
        &Persona,
        &Loyalty,
        &Budget,
        &Engagement,
        &mut DayPlan,
    )>,
) {
    use rayon::prelude::*;
    let d = PlanDay::new(&clock, &today, &model);
    let mut total = [0u32; 24];
    for (ids, persona, loyalty, budget, engagement, mut plans) in customers
        .contiguous_iter_mut()
        .expect("customer components are table-stored")
    {
        let plans = plans.bypass_change_detection();
        let counts = Threads::pool().install(|| {
            plans
                .par_chunks_mut(super::CHUNK)
                .enumerate()
                .map(|(k, plans)| {
                    let r = super::chunk_rows(k, plans.len());
                    let rows = PlanRows {
                        ids: &ids[r.clone()],
                        persona: &persona[r.clone()],
                        loyalty: &loyalty[r.clone()],
                        budget: &budget[r.clone()],
                        engagement: &engagement[r],
                    };
                    let mut counts = [0u32; 24];
                    plan_rows(&d, rows, plans, &mut counts);
                    counts
                })
                .reduce(|| [0; 24], add_counts)
        });
        total = add_counts(total, counts);
    }
    by_hour.0 = total;
}

/// Adds hourly visit counts.
fn add_counts(mut a: [u32; 24], b: [u32; 24]) -> [u32; 24] {
    a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
    a
}

/// The planning behaviour.
pub struct PlanningPlugin;

impl Plugin for PlanningPlugin {
    fn build(&self, sim: &mut SimBuilder) {
        sim.world.init_resource::<VisitsByHour>();
        sim.schedule
            .add_systems(plan_visits.run_if(super::start_of_day).in_set(SimSet::Plan));
    }
}
