//! Attrition, the ground truth of churn: at the end of each day every active customer's
//! daily hazard is computed from the behaviour model (lost loyalty, recent unmet visits and
//! budget trims, time since the last purchase) and drawn. A churned customer stops shopping.
//!
//! When a churn model drives churn (`ChurnDriver::Model`), this system steps aside and the
//! model's probabilities are used instead.

use bevy_ecs::prelude::*;
use bevy_utils::Parallel;

use crate::calendar::Clock;
use crate::components::*;
use crate::rng::{Purpose, Streams};
use crate::sim::{Model, Plugin, SimBuilder, SimPool, SimSet};

pub use crate::records::ChurnRecord;

/// Per-thread churn records of the day.
#[derive(Resource, Default)]
pub struct ChurnBuffers(pub Parallel<Vec<ChurnRecord>>);

/// Who decides churn.
#[derive(Resource, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChurnDriver {
    /// The behaviour model's hazard (this module).
    #[default]
    Behaviour,
    /// A churn model's probabilities.
    Model,
}

/// Run condition: end of day with the behaviour model in charge of churn.
pub fn attrition_due(clock: Res<Clock>, driver: Res<ChurnDriver>, model: Res<Model>) -> bool {
    clock.hour() == 23
        && *driver == ChurnDriver::Behaviour
        && model.personas.iter().any(|p| p.churn.is_some())
}

/// The component columns attrition reads and writes, for one run of customers.
pub struct AttritionRows<'a> {
    /// Ids.
    pub ids: &'a [AgentId],
    /// Personas.
    pub persona: &'a [Persona],
    /// Loyalty.
    pub loyalty: &'a [Loyalty],
    /// Engagement (decayed, and marked on churn).
    pub engagement: &'a mut [Engagement],
}

/// Draws the day's churn for a run of customers (day `day`, random streams keyed on `tick`),
/// pushing a record per customer lost. The kernel of [`draw_attrition`], callable on any
/// struct-of-arrays storage.
#[inline]
pub fn attrition_rows(
    day: u32,
    tick: u32,
    model: &Model,
    rows: AttritionRows<'_>,
    out: &mut Vec<ChurnRecord>,
) {
    let AttritionRows {
        ids,
        persona,
        loyalty,
        engagement,
    } = rows;
    let streams = Streams::at(model.seed, tick, Purpose::Churn);
    for i in 0..ids.len() {
        let e = &mut engagement[i];
        if !e.is_active() {
            continue;
        }
        let p = usize::from(persona[i].0);
        let Some(params) = &model.personas[p].churn else {
            continue;
        };
        let days_since = e.days_since_purchase(day);
        let (unmet, trims) = (e.unmet, e.trims);
        e.unmet *= 1.0 - params.memory_decay;
        e.trims *= 1.0 - params.memory_decay;
        let u = streams.first_unit_f32(ids[i].0);
        if let Some((h, cause)) = params.leaves(u, loyalty[i].0, unmet, trims, days_since) {
            e.churned = crate::components::to_day(day);
            out.push(ChurnRecord {
                agent: ids[i].0,
                persona: persona[i].0,
                probability: h,
                cause,
                loyalty: loyalty[i].0,
                days_since,
            });
        }
    }
}

/// Draws the day's churn from the behaviour model.
pub fn draw_attrition(
    clock: Res<Clock>,
    model: Res<Model>,
    buffers: Res<ChurnBuffers>,
    pool: Res<SimPool>,
    mut customers: Query<(&AgentId, &Persona, &Loyalty, &mut Engagement)>,
) {
    use rayon::prelude::*;
    let (day, tick, model) = (clock.day(), clock.tick, &*model);
    for (ids, persona, loyalty, mut engagement) in customers
        .contiguous_iter_mut()
        .expect("customer components are table-stored")
    {
        let engagement = engagement.bypass_change_detection();
        pool.0.install(|| {
            engagement
                .par_chunks_mut(super::CHUNK)
                .enumerate()
                .for_each(|(k, engagement)| {
                    let r = super::chunk_rows(k, engagement.len());
                    let rows = AttritionRows {
                        ids: &ids[r.clone()],
                        persona: &persona[r.clone()],
                        loyalty: &loyalty[r],
                        engagement,
                    };
                    attrition_rows(day, tick, model, rows, &mut buffers.0.borrow_local_mut());
                });
        });
    }
}

/// The attrition behaviour.
pub struct AttritionPlugin;

impl Plugin for AttritionPlugin {
    fn name(&self) -> &str {
        "attrition"
    }

    fn build(&self, sim: &mut SimBuilder) -> crate::plugin::Result {
        sim.world.init_resource::<ChurnBuffers>();
        sim.world.init_resource::<ChurnDriver>();
        sim.schedule
            .add_systems(draw_attrition.run_if(attrition_due).in_set(SimSet::Churn));
        Ok(())
    }
}
