//! Loyalty: rises after a good visit, falls after a trimmed basket or a price shock, and
//! decays a little every day. Low loyalty lowers the visit probability (see
//! [`crate::persona::LoyaltyParams::visit_factor`]), which is how churn can emerge.

use bevy_ecs::prelude::*;

use crate::components::{Loyalty, Persona};
pub use crate::hooks::VisitOutcome;
use crate::hooks::{CustomerState, Stages, Tallies, VisitHook, VisitInfo};
use crate::persona::LoyaltyParams;
use crate::records::LineRecord;
use crate::sim::{Model, Plugin, SimBuilder, SimPool, SimSet};

/// Applies one visit's outcome to a loyalty level.
#[inline]
pub fn after_visit(params: &LoyaltyParams, loyalty: &mut f32, outcome: VisitOutcome) {
    let mut l = *loyalty;
    if outcome.bought && !outcome.trimmed {
        l += params.gain * (1.0 - l);
    }
    if outcome.trimmed {
        l -= params.trim_penalty;
    }
    let excess = outcome.price_index - 1.0 - params.shock_threshold;
    if outcome.bought && excess > 0.0 {
        l -= params.shock_penalty * excess;
    }
    *loyalty = l.clamp(0.0, 1.0);
}

/// Loyalty's after-visit hook: each persona's visit effect, if it has one.
pub struct LoyaltyHook {
    params: Vec<Option<LoyaltyParams>>,
}

impl VisitHook for LoyaltyHook {
    #[inline]
    fn after_visit(
        &self,
        visit: &VisitInfo<'_>,
        outcome: &VisitOutcome,
        _: &[LineRecord],
        customer: &mut CustomerState<'_>,
        _: &mut Tallies,
    ) {
        if let Some(params) = &self.params[usize::from(visit.persona)] {
            after_visit(params, &mut customer.loyalty.0, *outcome);
        }
    }
}

/// Run condition: the end of a day, when some persona's loyalty decays.
pub fn decay_due(clock: Res<crate::calendar::Clock>, model: Res<Model>) -> bool {
    clock.hour() == 23
        && model
            .personas
            .iter()
            .any(|p| p.loyalty.is_some_and(|l| l.decay > 0.0))
}

/// The share of loyalty each persona keeps overnight.
pub fn overnight_keep(model: &Model) -> Vec<f32> {
    model
        .personas
        .iter()
        .map(|p| p.loyalty.map_or(1.0, |l| 1.0 - l.decay))
        .collect()
}

/// Applies one day's decay to a run of customers (`keep` from [`overnight_keep`]).
#[inline]
pub fn decay_rows(keep: &[f32], personas: &[Persona], loyalty: &mut [Loyalty]) {
    for (p, l) in personas.iter().zip(loyalty.iter_mut()) {
        l.0 *= keep[usize::from(p.0)];
    }
}

/// Applies one day's decay.
pub fn decay_loyalty(
    model: Res<Model>,
    pool: Res<SimPool>,
    mut customers: Query<(&Persona, &mut Loyalty)>,
) {
    use rayon::prelude::*;
    let keep = overnight_keep(&model);
    for (personas, mut loyalty) in customers
        .contiguous_iter_mut()
        .expect("customer components are table-stored")
    {
        let rows = loyalty.bypass_change_detection();
        pool.0.install(|| {
            rows.par_chunks_mut(super::CHUNK)
                .zip(personas.par_chunks(super::CHUNK))
                .for_each(|(loyalty, personas)| decay_rows(&keep, personas, loyalty));
        });
    }
}

/// The loyalty behaviour.
pub struct LoyaltyPlugin;

impl Plugin for LoyaltyPlugin {
    fn name(&self) -> &str {
        "loyalty"
    }

    fn build(&self, sim: &mut SimBuilder) -> crate::plugin::Result {
        let params: Vec<_> = sim.scenario.personas.iter().map(|p| p.loyalty).collect();
        if params.iter().any(Option::is_some) {
            sim.add_visit_hook(LoyaltyHook { params }, Stages::AFTER_VISIT);
        }
        sim.schedule
            .add_systems(decay_loyalty.run_if(decay_due).in_set(SimSet::Update));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> LoyaltyParams {
        LoyaltyParams {
            initial: (0.5, 0.5),
            visit_effect: 0.5,
            gain: 0.1,
            decay: 0.01,
            trim_penalty: 0.05,
            shock_threshold: 0.1,
            shock_penalty: 0.5,
        }
    }

    #[test]
    fn a_good_visit_raises_loyalty_toward_one() {
        let mut l = 0.5;
        after_visit(
            &params(),
            &mut l,
            VisitOutcome {
                bought: true,
                trimmed: false,
                price_index: 1.0,
                ..VisitOutcome::default()
            },
        );
        assert!((l - 0.55).abs() < 1e-6);
    }

    #[test]
    fn trims_and_price_shocks_lower_it() {
        let mut l = 0.5;
        after_visit(
            &params(),
            &mut l,
            VisitOutcome {
                bought: true,
                trimmed: true,
                price_index: 1.0,
                ..VisitOutcome::default()
            },
        );
        assert!((l - 0.45).abs() < 1e-6);
        let mut l = 0.5;
        // 30% above reference, 10% tolerated: 0.2 excess x 0.5 penalty = -0.1, +0.05 gain.
        after_visit(
            &params(),
            &mut l,
            VisitOutcome {
                bought: true,
                trimmed: false,
                price_index: 1.3,
                ..VisitOutcome::default()
            },
        );
        assert!((l - 0.45).abs() < 1e-5, "{l}");
        let mut l = 0.01;
        after_visit(
            &params(),
            &mut l,
            VisitOutcome {
                bought: false,
                trimmed: true,
                price_index: 1.0,
                ..VisitOutcome::default()
            },
        );
        assert_eq!(l, 0.0, "clamped at zero");
    }

    #[test]
    fn low_loyalty_lowers_visits() {
        let p = params();
        assert_eq!(p.visit_factor(1.0), 1.0);
        assert!((p.visit_factor(0.2) - 0.6).abs() < 1e-6);
    }
}
