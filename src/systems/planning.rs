//! Daily visit planning: at midnight each customer decides whether to shop today and when.
//!
//! Probability = recency curve × weekday factor × calendar traffic × loyalty factor × budget
//! factor, capped by the persona's cap; a customer who has never bought uses the persona's
//! first-visit probability as is. The decision is stored in [`DayPlan`], and the visitors of
//! each chunk of rows are indexed by hour ([`ChunkVisitors`]), so the hourly shopping system
//! goes straight to the hour's visitors.

use bevy_ecs::prelude::*;
use chrono::Datelike;

use crate::calendar::{Clock, Today};
use crate::components::*;
use crate::rng::{Purpose, Streams};
use crate::sim::{Model, Plugin, SimBuilder, SimSet, Threads};

/// How many customers plan to visit in each hour of today.
#[derive(Resource, Debug, Default, Clone)]
pub struct VisitsByHour(pub [u32; 24]);

/// One chunk's visitors of the day by hour: row offsets within the chunk, in row order within
/// each hour. Planning builds it beside the plans, so each hour's shopping goes straight to
/// its visitors instead of reading every customer's plan (24 reads of the plan column a day,
/// 4% of a large run's time).
#[derive(Debug, Default, Clone)]
pub struct ChunkVisitors {
    /// Hour `h`'s visitors are `rows[starts[h]..starts[h + 1]]`.
    starts: [u32; 25],
    rows: Vec<u16>,
}

// Row offsets within a chunk fit in 16 bits.
const _: () = assert!(super::CHUNK <= 1 << 16);

impl ChunkVisitors {
    /// The rows (offsets within the chunk) visiting in `hour`, in row order.
    #[inline]
    pub fn hour(&self, hour: u8) -> &[u16] {
        let h = usize::from(hour.min(23));
        &self.rows[self.starts[h] as usize..self.starts[h + 1] as usize]
    }

    /// Visitors in each hour.
    pub fn counts(&self) -> [u32; 24] {
        std::array::from_fn(|h| self.starts[h + 1] - self.starts[h])
    }

    /// Indexes a chunk's plans, whose visits per hour are `counts` (a counting sort: the
    /// buffer is reused from day to day).
    fn index(&mut self, plans: &[DayPlan], counts: &[u32; 24]) {
        let mut next = [0u32; 24];
        let mut total = 0;
        for h in 0..24 {
            self.starts[h] = total;
            next[h] = total;
            total += counts[h];
        }
        self.starts[24] = total;
        self.rows.clear();
        self.rows.resize(total as usize, 0);
        for (i, plan) in plans.iter().enumerate() {
            if let Some(at) = next.get_mut(usize::from(plan.hour)) {
                self.rows[*at as usize] = i as u16;
                *at += 1;
            }
        }
    }
}

/// Today's visitors: one [`ChunkVisitors`] per chunk of customer rows, tables in query order.
/// Rows do not move within a day (customers are only ever added, at midnight before
/// planning), so the index stays true until the next planning.
#[derive(Resource, Debug, Default)]
pub struct Visitors(pub Vec<ChunkVisitors>);

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

/// Plans the day of a run of customers (at most [`super::CHUNK`]) into `plans` (same rows as
/// `rows`), and indexes the visitors by hour into `visitors`. The kernel of [`plan_visits`],
/// callable on any struct-of-arrays storage.
#[inline]
pub fn plan_rows(
    d: &PlanDay<'_>,
    rows: PlanRows<'_>,
    plans: &mut [DayPlan],
    visitors: &mut ChunkVisitors,
) {
    let mut counts = [0u32; 24];
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
    visitors.index(plans, &counts);
}

/// Plans every customer's day.
pub fn plan_visits(
    clock: Res<Clock>,
    today: Res<Today>,
    model: Res<Model>,
    mut by_hour: ResMut<VisitsByHour>,
    mut visitors: ResMut<Visitors>,
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
    let mut first_chunk = 0;
    for (ids, persona, loyalty, budget, engagement, mut plans) in customers
        .contiguous_iter_mut()
        .expect("customer components are table-stored")
    {
        let plans = plans.bypass_change_detection();
        let chunks = plans.len().div_ceil(super::CHUNK);
        if visitors.0.len() < first_chunk + chunks {
            visitors
                .0
                .resize_with(first_chunk + chunks, ChunkVisitors::default);
        }
        let table_visitors = &mut visitors.0[first_chunk..first_chunk + chunks];
        first_chunk += chunks;
        let counts = Threads::pool().install(|| {
            plans
                .par_chunks_mut(super::CHUNK)
                .zip(table_visitors.par_iter_mut())
                .enumerate()
                .map(|(k, (plans, visitors))| {
                    let r = super::chunk_rows(k, plans.len());
                    let rows = PlanRows {
                        ids: &ids[r.clone()],
                        persona: &persona[r.clone()],
                        loyalty: &loyalty[r.clone()],
                        budget: &budget[r.clone()],
                        engagement: &engagement[r],
                    };
                    plan_rows(&d, rows, plans, visitors);
                    visitors.counts()
                })
                .reduce(|| [0; 24], add_counts)
        });
        total = add_counts(total, counts);
    }
    visitors.0.truncate(first_chunk);
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
        sim.world.init_resource::<Visitors>();
        sim.schedule
            .add_systems(plan_visits.run_if(super::start_of_day).in_set(SimSet::Plan));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_visitor_index_lists_each_hours_rows_in_row_order() {
        let hours = [
            7u8,
            DayPlan::NO_VISIT,
            23,
            7,
            0,
            DayPlan::NO_VISIT,
            7,
            23,
            0,
        ];
        let plans: Vec<DayPlan> = hours
            .iter()
            .map(|&hour| DayPlan { hour, minute: 5 })
            .collect();
        let mut counts = [0u32; 24];
        for &h in &hours {
            if let Some(c) = counts.get_mut(usize::from(h)) {
                *c += 1;
            }
        }
        // A buffer from a busier day is reused, not appended to.
        let mut v = ChunkVisitors::default();
        v.index(&[DayPlan { hour: 3, minute: 0 }; 40], &{
            let mut c = [0; 24];
            c[3] = 40;
            c
        });
        v.index(&plans, &counts);
        assert_eq!(v.hour(0), &[4, 8]);
        assert_eq!(v.hour(7), &[0, 3, 6]);
        assert_eq!(v.hour(23), &[2, 7]);
        assert!(v.hour(3).is_empty());
        assert_eq!(v.counts(), counts);
        assert_eq!(v.rows.len(), 7);
    }
}
