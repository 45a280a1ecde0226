//! Daily visit planning: at midnight each customer decides whether to shop today and when.
//!
//! Probability = recency curve × weekday factor × calendar traffic × loyalty factor × budget
//! factor, capped by the persona's cap; a customer who has never bought uses the persona's
//! first-visit probability as is. The decision is stored in [`DayPlan`] so the hourly
//! shopping system only has to compare one byte per customer.

use bevy_ecs::prelude::*;
use bevy_utils::Parallel;
use chrono::Datelike;

use crate::calendar::{Clock, Today};
use crate::components::*;
use crate::rng::{Purpose, Stream};
use crate::sim::{Model, Plugin, SimBuilder, SimSet};

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
        p *= b.visit_factor(budget.left, budget.monthly);
    }
    p.min(visits.cap)
}

/// Plans every customer's day.
pub fn plan_visits(
    clock: Res<Clock>,
    today: Res<Today>,
    model: Res<Model>,
    mut by_hour: ResMut<VisitsByHour>,
    mut counts: Local<Parallel<[u32; 24]>>,
    mut customers: Query<(
        &AgentId,
        &Persona,
        &Loyalty,
        &Budget,
        &Recency,
        &Engagement,
        &mut DayPlan,
    )>,
) {
    let day = clock.day();
    let tick = clock.tick;
    let weekday = today.date.weekday().num_days_from_monday() as usize;
    let traffic = today.traffic;
    let seed = model.seed;
    let personas = &model.personas;
    customers
        .contiguous_par_iter_mut()
        .expect("customer components are table-stored")
        .for_each_init(
            || counts.borrow_local_mut(),
            |counts, (ids, persona, loyalty, budget, recency, engagement, mut plans)| {
                let plans = plans.bypass_change_detection();
                for i in 0..ids.len() {
                    if !engagement[i].is_active() {
                        plans[i] = DayPlan::none();
                        continue;
                    }
                    let persona_params = &personas[usize::from(persona[i].0)];
                    let p = visit_probability(
                        persona_params,
                        recency[i].days_since(day),
                        weekday,
                        traffic,
                        loyalty[i].0,
                        &budget[i],
                    );
                    let mut rng = Stream::for_agent(seed, ids[i].0, tick, Purpose::Plan);
                    plans[i] = if rng.chance(p) {
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
            },
        );
    by_hour.0 = [0; 24];
    for c in counts.iter_mut() {
        for (h, n) in c.iter_mut().enumerate() {
            by_hour.0[h] += *n;
            *n = 0;
        }
    }
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
