//! Observation: sums the hour's visit counts over its record segments and keeps the running
//! tallies (per day and persona, festival vs ordinary, weekend vs weekday) that the daily
//! metrics, the summary and the console report are made from.
//!
//! Money is summed in integer paise, so every tally is exact and independent of the order in
//! which threads produced the records.

use bevy_ecs::prelude::*;

use crate::calendar::{Clock, Today};
use crate::population::Population;
use crate::records::HourRecords;
use crate::sim::{Model, Observed, Plugin, SimBuilder, SimSet};
use crate::systems::attrition::ChurnBuffers;

pub use crate::records::{ClosedDay, DayClass, Tally, Totals};

/// Retention offers sent today, by persona (filled by a churn model in retain mode).
#[derive(Resource, Debug, Clone, Default)]
pub struct RetentionToday {
    /// Offers, by persona.
    pub offers: Vec<u64>,
    /// Their cost in paise, by persona.
    pub cost_paise: Vec<i64>,
}

/// Sums the hour's visit counts over the segments the shopping system wrote.
pub fn collect_records(mut hour: ResMut<HourRecords>) {
    hour.finish();
}

/// Adds the hour's records to today's tallies.
pub fn tally_hour(hour: Res<HourRecords>, mut tally: ResMut<Tally>) {
    let tally = &mut *tally;
    for (t, _) in hour.iter() {
        tally.today[usize::from(t.persona)].add_tx(t);
    }
    for (p, (v, e)) in hour
        .counts
        .visits
        .iter()
        .zip(&hour.counts.empty)
        .enumerate()
    {
        tally.today[p].visits += u64::from(*v);
        tally.today[p].empty_visits += u64::from(*e);
    }
}

/// At the last hour of a day: publishes the day and folds it into the run's tallies.
#[expect(
    clippy::too_many_arguments,
    reason = "a system's parameters list the resources it touches"
)]
pub fn close_day(
    clock: Res<Clock>,
    today: Res<Today>,
    model: Res<Model>,
    mut churn: ResMut<ChurnBuffers>,
    mut population: ResMut<Population>,
    mut retention: ResMut<RetentionToday>,
    mut tally: ResMut<Tally>,
    mut closed: ResMut<ClosedDay>,
    mut report: ResMut<crate::tables::DailyReport>,
    cluster: Res<crate::cluster::Cluster>,
) {
    closed.ready = clock.hour() == 23;
    if !closed.ready {
        return;
    }
    let tally = &mut *tally;
    let closed = &mut *closed;
    closed.churn.clear();
    for buf in churn.0.iter_mut() {
        closed.churn.append(buf);
    }
    closed.churn.sort_unstable_by_key(|c| c.agent);
    let mut left = vec![0i64; tally.today.len()];
    for c in &closed.churn {
        left[usize::from(c.persona)] += 1;
    }
    if cluster.sharded() {
        // The day over every rank's customers, before anything is derived from it: the
        // sums are integers, so they are the one process's exactly.
        let mut words: Vec<i64> = tally.today.iter().flat_map(Totals::words).collect();
        words.extend_from_slice(&left);
        cluster.sum(&mut words);
        for (t, w) in tally
            .today
            .iter_mut()
            .zip(words.chunks_exact(Totals::WORDS))
        {
            *t = Totals::from_words(w.try_into().expect("chunks of WORDS"));
        }
        let at = tally.today.len() * Totals::WORDS;
        left.copy_from_slice(&words[at..]);
    }
    for (p, n) in left.into_iter().enumerate() {
        tally.today[p].churned += n as u64;
        population.churned[p] += n as u64;
    }
    tally.acquired_seen.resize(population.acquired.len(), 0);
    for (p, (now, seen)) in population
        .acquired
        .iter()
        .zip(tally.acquired_seen.iter_mut())
        .enumerate()
    {
        tally.today[p].acquired += now - *seen;
        *seen = *now;
    }
    closed.active = population.active(&model.population);
    let retention = &mut *retention;
    for (p, (offers, cost)) in retention
        .offers
        .iter_mut()
        .zip(retention.cost_paise.iter_mut())
        .enumerate()
    {
        tally.today[p].offers += std::mem::take(offers);
        tally.today[p].offer_cost_paise = tally.today[p]
            .offer_cost_paise
            .saturating_add(std::mem::take(cost));
    }
    let mut day = Totals::default();
    for (p, t) in tally.today.iter().enumerate() {
        tally.by_persona[p].add(t);
        day.add(t);
    }
    for (class, applies) in [
        (&mut tally.festival, today.festival),
        (&mut tally.ordinary, !today.festival),
        (&mut tally.weekend, today.weekend),
        (&mut tally.weekday, !today.weekend),
    ] {
        if applies {
            class.days += 1;
            class.totals.add(&day);
        }
    }
    closed.date = Some(today.date);
    closed.by_persona.clone_from(&tally.today);
    closed.festival = today.festival;
    closed.weekend = today.weekend;
    closed.events.clone_from(&today.events);
    tally.today.fill(Totals::default());
    // The columns plugins added to `daily_metrics` join the day, and start again at zero.
    if !report.columns().is_empty() {
        closed.extra = (0..closed.by_persona.len())
            .map(|p| report.values(p))
            .collect();
        report.reset();
    }
}

/// At the end of a day: stops the run when a sum of money outgrew what the outputs hold
/// ([`Tally::check_money`]).
pub fn guard_money(tally: Res<Tally>) -> crate::plugin::Result {
    tally.check_money()?;
    Ok(())
}

/// The observe behaviour.
pub struct ObservePlugin;

impl Plugin for ObservePlugin {
    fn name(&self) -> &str {
        "observe"
    }

    fn save(
        &self,
        world: &mut World,
        state: &mut crate::checkpoint::State,
    ) -> crate::plugin::Result {
        state.put("tally", world.resource::<Tally>())
    }

    fn restore(
        &self,
        world: &mut World,
        state: &crate::checkpoint::State,
    ) -> crate::plugin::Result {
        *world.resource_mut::<Tally>() = state.get("tally")?;
        Ok(())
    }

    fn build(&self, sim: &mut SimBuilder) -> crate::plugin::Result {
        let personas = sim.world.resource::<Model>().personas.len();
        sim.world.init_resource::<crate::cluster::Cluster>();
        let cluster = sim.world.resource::<crate::cluster::Cluster>().clone();
        sim.world.get_resource_or_init::<HourRecords>().cluster = cluster;
        sim.world.insert_resource(Tally {
            today: vec![Totals::default(); personas],
            by_persona: vec![Totals::default(); personas],
            ..Tally::default()
        });
        sim.world.init_resource::<ClosedDay>();
        sim.world
            .insert_resource(crate::tables::DailyReport::new(personas));
        sim.world.insert_resource(RetentionToday {
            offers: vec![0; personas],
            cost_paise: vec![0; personas],
        });
        sim.schedule.add_systems(
            (
                collect_records,
                tally_hour.in_set(Observed::Hour),
                close_day.in_set(Observed::Day),
                guard_money.run_if(super::end_of_day),
            )
                .chain()
                .in_set(SimSet::Observe),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::TxRecord;

    #[test]
    fn money_sums_saturate_and_stop_the_run_past_what_outputs_hold() {
        let tx = TxRecord {
            agent: 0,
            persona: 0,
            minute: 0,
            trimmed: false,
            lines: 1,
            line_start: 0,
            units: 1,
            total: i64::MAX / 2 + 1,
            cost: 0,
        };
        let mut t = Totals::default();
        t.add_tx(&tx);
        t.add_tx(&tx);
        assert_eq!(t.revenue_paise, i64::MAX, "saturated, not wrapped");
        let mut tally = Tally {
            by_persona: vec![Totals::default()],
            today: vec![Totals::default()],
            ..Tally::default()
        };
        tally.by_persona[0].revenue_paise = crate::limits::MAX_MONEY_PAISE;
        assert!(tally.check_money().is_ok());
        tally.today[0].revenue_paise = 1;
        assert!(matches!(
            tally.check_money(),
            Err(crate::run::RunError::Overflow {
                what: "revenue",
                ..
            })
        ));
    }
}
