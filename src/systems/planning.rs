//! Daily visit planning: at midnight each customer decides whether to shop today and when.
//!
//! Probability = recency curve × weekday factor × calendar traffic × loyalty factor × budget
//! factor, capped by the persona's cap; a customer who has never bought uses the persona's
//! first-visit probability as is, except on a day with no traffic at all (a closure). The
//! decision is stored in [`DayPlan`], and the visitors of each chunk of rows are indexed by
//! hour ([`Visitors`]), so the hourly shopping system goes straight to the hour's visitors.

use bevy_ecs::prelude::*;
use chrono::Datelike;

use crate::calendar::{Clock, PayPeriod, Today};
use crate::components::*;
use crate::rng::{Purpose, Streams};
use crate::sim::{Model, Plugin, SimBuilder, SimPool, SimSet};

/// Today's visitors by hour, chunk by chunk: row offsets within each chunk of
/// [`super::CHUNK`] rows, in row order within each hour. Planning builds it beside the plans,
/// so each hour's shopping goes straight to its visitors instead of reading every customer's
/// plan (24 reads of the plan column a day were 4% of a large run's time). One buffer for the
/// whole day, reused from day to day.
///
/// Chunks are numbered across the customer tables in query order. The index holds until the
/// next planning because rows do not move within a day: customers are only added, at
/// midnight before planning, and never despawned during a run.
#[derive(Resource, Debug, Default)]
pub struct Visitors {
    /// For chunk `c`, hour `h`'s visitors are `rows[starts[c][h]..starts[c][h + 1]]`.
    starts: Vec<[u32; 25]>,
    rows: Vec<u16>,
    /// Visitors in each hour, over all chunks.
    in_hour: [u32; 24],
    /// Each chunk's planned visits by hour (a buffer for [`Visitors::plan_table`]).
    counts: Vec<[u32; 24]>,
}

// Row offsets within a chunk fit in 16 bits.
const _: () = assert!(super::CHUNK <= 1 << 16);

impl Visitors {
    /// The rows (offsets within chunk `chunk`) visiting in `hour`, in row order; none for a
    /// chunk planning has not seen.
    #[inline]
    pub fn hour(&self, chunk: usize, hour: u8) -> &[u16] {
        let h = usize::from(hour.min(23));
        self.starts
            .get(chunk)
            .map_or(&[], |s| &self.rows[s[h] as usize..s[h + 1] as usize])
    }

    /// How many customers visit in `hour`, over all chunks.
    #[inline]
    pub fn in_hour(&self, hour: u8) -> u32 {
        self.in_hour.get(usize::from(hour)).copied().unwrap_or(0)
    }

    /// Forgets the index (the start of a new day's planning).
    pub fn clear(&mut self) {
        self.starts.clear();
        self.rows.clear();
        self.in_hour = [0; 24];
    }

    /// Plans the next table's rows and indexes them: `plan(rows, plans, counts)` plans one
    /// chunk of [`super::CHUNK`] rows (`rows` is its range in the table, `plans` its plans)
    /// and counts its visits by hour, as [`plan_rows`] does. The chunks are planned in
    /// parallel on the current rayon pool.
    pub fn plan_table(
        &mut self,
        plans: &mut [DayPlan],
        plan: impl Fn(std::ops::Range<usize>, &mut [DayPlan], &mut [u32; 24]) + Sync,
    ) {
        use rayon::prelude::*;
        let mut counts = std::mem::take(&mut self.counts);
        plans
            .par_chunks_mut(super::CHUNK)
            .enumerate()
            .map(|(k, plans)| {
                let mut c = [0u32; 24];
                plan(super::chunk_rows(k, plans.len()), plans, &mut c);
                c
            })
            .collect_into_vec(&mut counts);
        self.add_table(plans, &counts);
        self.counts = counts;
    }

    /// Indexes the next table's chunks: `plans` are the table's, `counts` each of its
    /// chunks' visits by hour (as [`plan_rows`] counted them).
    fn add_table(&mut self, plans: &[DayPlan], counts: &[[u32; 24]]) {
        use rayon::prelude::*;
        let first = self.starts.len();
        let mut at = u32::try_from(self.rows.len()).expect("visitors fit in 32 bits");
        for c in counts {
            let mut s = [0u32; 25];
            for h in 0..24 {
                s[h] = at;
                at += c[h];
                self.in_hour[h] += c[h];
            }
            s[24] = at;
            self.starts.push(s);
        }
        let base = self.rows.len();
        // Exactly the day's size: growing by doubling would keep up to twice the busiest
        // day's index for the rest of the run.
        self.rows.reserve_exact(at as usize - base);
        self.rows.resize(at as usize, 0);
        // Each chunk's visitors are one stretch of the buffer: split it so the chunks fill
        // theirs in parallel.
        let mut stretches = Vec::with_capacity(counts.len());
        let mut rest = &mut self.rows[base..];
        for s in &self.starts[first..] {
            let (stretch, tail) = rest.split_at_mut((s[24] - s[0]) as usize);
            stretches.push(stretch);
            rest = tail;
        }
        plans
            .par_chunks(super::CHUNK)
            .zip(stretches)
            .zip(&self.starts[first..])
            .for_each(|((plans, out), starts)| index_chunk(plans, starts, out));
    }
}

/// Writes a chunk's visitors by hour into `out` (a counting sort; `starts` are the hours'
/// offsets, `out` begins at `starts[0]`).
fn index_chunk(plans: &[DayPlan], starts: &[u32; 25], out: &mut [u16]) {
    let mut next: [u32; 24] = std::array::from_fn(|h| starts[h] - starts[0]);
    for (i, plan) in plans.iter().enumerate() {
        if let Some(at) = next.get_mut(usize::from(plan.hour)) {
            out[*at as usize] = i as u16;
            *at += 1;
        }
    }
}

/// The daily visit probability of one customer.
#[inline]
pub fn visit_probability(
    persona: &crate::persona::Persona,
    days_since: Option<u32>,
    weekday: usize,
    traffic: f32,
    loyalty: f32,
    budget: &Budget,
    pay: PayPeriod,
) -> f32 {
    let visits = &persona.visits;
    let Some(days) = days_since else {
        // First-timers ignore the calendar's factors, but not a shut door: no traffic at all
        // (a `Closed` day) keeps them home too.
        return if traffic > 0.0 {
            visits.first_visit
        } else {
            0.0
        };
    };
    let mut p = visits.base(Some(days)) * visits.weekday[weekday] * traffic;
    if let Some(l) = &persona.loyalty {
        p *= l.visit_factor(loyalty);
    }
    if let Some(b) = &persona.budget {
        p *= b.visit_factor(budget.left.into(), budget.monthly.into(), pay);
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
    /// Today's multipliers and pay periods.
    pub today: &'a Today,
}

impl<'a> PlanDay<'a> {
    /// Today's planning inputs.
    pub fn new(clock: &Clock, today: &'a Today, model: &'a Model) -> Self {
        Self {
            day: clock.day(),
            weekday: today.date.weekday().num_days_from_monday() as usize,
            traffic: today.traffic,
            streams: Streams::at(model.seed, clock.tick, Purpose::Plan),
            personas: &model.personas,
            today,
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
            d.today.pay_period(rows.persona[i].0),
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
    pool: Res<SimPool>,
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
    let d = PlanDay::new(&clock, &today, &model);
    visitors.clear();
    for (ids, persona, loyalty, budget, engagement, mut plans) in customers
        .contiguous_iter_mut()
        .expect("customer components are table-stored")
    {
        let plans = plans.bypass_change_detection();
        pool.0.install(|| {
            visitors.plan_table(plans, |r, plans, counts| {
                let rows = PlanRows {
                    ids: &ids[r.clone()],
                    persona: &persona[r.clone()],
                    loyalty: &loyalty[r.clone()],
                    budget: &budget[r.clone()],
                    engagement: &engagement[r],
                };
                plan_rows(&d, rows, plans, counts);
            });
        });
    }
}

/// The planning behaviour.
pub struct PlanningPlugin;

impl Plugin for PlanningPlugin {
    fn name(&self) -> &str {
        "planning"
    }

    fn build(&self, sim: &mut SimBuilder) -> crate::plugin::Result {
        sim.world.init_resource::<Visitors>();
        sim.schedule
            .add_systems(plan_visits.run_if(super::start_of_day).in_set(SimSet::Plan));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_visitor_index_lists_each_hours_rows_in_row_order() {
        let plan = |hour| DayPlan { hour, minute: 5 };
        let counts_of = |plans: &[DayPlan]| {
            let mut c = [0u32; 24];
            for p in plans {
                if let Some(c) = c.get_mut(usize::from(p.hour)) {
                    *c += 1;
                }
            }
            c
        };
        // Two chunks: a full one and the start of the next.
        let mut plans = vec![DayPlan::none(); super::super::CHUNK + 5];
        for (i, h) in [(3, 7u8), (0, 7), (100, 23), (9, 0), (200, 7)] {
            plans[i] = plan(h);
        }
        let second = super::super::CHUNK;
        for (i, h) in [(second + 4, 7u8), (second, 0), (second + 1, 7)] {
            plans[i] = plan(h);
        }
        let counts: Vec<[u32; 24]> = plans.chunks(super::super::CHUNK).map(counts_of).collect();
        let mut v = Visitors::default();
        // A buffer from a busier day is reused, not appended to.
        v.add_table(&[plan(3); 40], &[counts_of(&[plan(3); 40])]);
        v.clear();
        v.add_table(&plans, &counts);
        assert_eq!(v.hour(0, 7), &[0, 3, 200]);
        assert_eq!(v.hour(0, 23), &[100]);
        assert_eq!(v.hour(0, 0), &[9]);
        assert_eq!(v.hour(1, 7), &[1, 4]);
        assert_eq!(v.hour(1, 0), &[0]);
        assert!(v.hour(0, 3).is_empty());
        assert!(v.hour(2, 7).is_empty(), "a chunk planning has not seen");
        assert_eq!(
            (v.in_hour(7), v.in_hour(0), v.in_hour(23), v.in_hour(3)),
            (5, 2, 1, 0)
        );
        assert_eq!(v.rows.len(), 8);
    }
}
