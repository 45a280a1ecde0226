//! An example behaviour (`systems: [WordOfMouth(rate: 0.02, min_loyalty: 0.7)]`): a customer
//! who leaves a visit with a basket and loyalty at least `min_loyalty` tells a friend with
//! probability `rate`, and the friend joins the next morning as a new customer of the same
//! persona. Referrals that joined are the `referrals` column of `daily_metrics`, drawn as
//! the report's `referrals` chart.
//!
//! One file and one registration line, using the plugin API end to end: typed settings
//! checked against the scenario, an after-visit hook counting into tallies, its own random
//! stream, room reserved for the customers it may spawn, spawning through the population
//! API, a daily column and a chart.

use bevy_ecs::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::calendar::Clock;
use crate::hooks::{CustomerState, Stages, Tallies, Tally, VisitHook, VisitInfo, VisitOutcome};
use crate::output::schema::{Column, Kind};
use crate::plugin::{Behaviour, Plugin, Problems, Reserve, SimBuilder};
use crate::population::spawn_customers;
use crate::records::{HourRecords, LineRecord};
use crate::report::charts::kit::{
    Aggregates, Area, Canvas, ChartDef, no_data, persona_lines,
};
use crate::rng::{PluginPurpose, Streams};
use crate::scenario::Scenario;
use crate::sim::SimSet;
use crate::tables::{DailyColumn, DailyReport};

/// Customers who buy while loyal bring friends of their persona.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct WordOfMouth {
    /// Probability that a loyal customer's purchase brings a new customer.
    pub rate: f32,
    /// Loyalty (after the visit) from which a customer recommends the shop.
    pub min_loyalty: f32,
    /// Most referrals that join on one day, all personas together (the run reserves room
    /// for this many a day); the rest are lost.
    pub max_per_day: u32,
}

impl Default for WordOfMouth {
    fn default() -> Self {
        Self {
            rate: 0.01,
            min_loyalty: 0.7,
            max_per_day: 1_000,
        }
    }
}

/// The daily column of referrals that joined.
const COLUMN: &str = "referrals";

/// The report's chart of [`COLUMN`].
const CHART: ChartDef = ChartDef {
    name: "referrals",
    title: "Referrals that joined, by persona",
    size: ChartDef::standard,
    draw: draw_referrals,
};

fn draw_referrals(cv: &Canvas, area: &Area, agg: &Aggregates) -> Result<(), String> {
    let Some(column) = agg.column(COLUMN) else {
        return no_data(cv, area, "the run has no referrals column");
    };
    persona_lines(
        cv,
        area,
        agg,
        &|day, p| day.value(column, p),
        &|y| agg.currency.group(y.max(0.0).round() as u64),
        "no referral joined",
    )
}

/// The draw of "does this purchase bring a friend".
const REFERRAL: PluginPurpose = PluginPurpose::new("word_of_mouth.referral");

/// The after-visit hook: counts the referrals each purchase brings, by persona.
struct Referrer {
    seed: u64,
    rate: f32,
    min_loyalty: f32,
    /// One tally a persona.
    referred: Vec<Tally>,
}

impl Referrer {
    /// Whether a visit brings a friend: a purchase, loyalty high enough, and the customer's
    /// draw for this hour under the rate.
    fn refers(&self, visit: &VisitInfo<'_>, outcome: &VisitOutcome, loyalty: f32) -> bool {
        outcome.bought
            && loyalty >= self.min_loyalty
            && Streams::of(self.seed, visit.clock.tick, REFERRAL).first_unit_f32(visit.agent)
                < self.rate
    }
}

impl VisitHook for Referrer {
    fn after_visit(
        &self,
        visit: &VisitInfo<'_>,
        outcome: &VisitOutcome,
        _: &[LineRecord],
        customer: &mut CustomerState<'_>,
        tallies: &mut Tallies,
    ) {
        if self.refers(visit, outcome, customer.loyalty.0) {
            tallies.add(self.referred[usize::from(visit.persona)], 1);
        }
    }
}

/// Referrals waiting for the next morning, by persona, and the handles to count them.
#[derive(Resource)]
struct Referrals {
    waiting: Vec<u64>,
    referred: Vec<Tally>,
    column: DailyColumn,
    max_per_day: u32,
}

/// Adds the hour's referrals to those waiting.
fn count_referrals(records: Res<HourRecords>, mut referrals: ResMut<Referrals>) {
    let r = &mut *referrals;
    for (waiting, &t) in r.waiting.iter_mut().zip(&r.referred) {
        *waiting += records.tally(t) as u64;
    }
}

/// Run condition: the first hour of a day after the first.
fn morning(clock: Res<Clock>) -> bool {
    clock.hour() == 0 && clock.day() > 0
}

/// The waiting referrals join, persona by persona, up to the day's maximum.
fn welcome_referrals(world: &mut World) -> crate::plugin::Result {
    let (mut waiting, column, mut room) = {
        let mut r = world.resource_mut::<Referrals>();
        let personas = r.referred.len();
        let waiting = std::mem::replace(&mut r.waiting, vec![0; personas]);
        (waiting, r.column, u64::from(r.max_per_day))
    };
    // In a sharded run, yesterday's referrals over every rank: each rank then hands out the
    // same new ids and spawns its share of them.
    if let Some(cluster) = world.get_resource::<crate::cluster::Cluster>() {
        cluster.sum_u64(&mut waiting);
    }
    for (persona, n) in waiting.into_iter().enumerate() {
        let n = n.min(room);
        room -= n;
        if n > 0 {
            spawn_customers(world, persona, n as u32)?;
            world
                .resource_mut::<DailyReport>()
                .add_to(column, persona, n as i64);
        }
    }
    Ok(())
}

impl Plugin for WordOfMouth {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn save(&self, world: &mut World, state: &mut crate::checkpoint::State) -> crate::plugin::Result {
        state.put("waiting", &world.resource::<Referrals>().waiting)
    }

    fn restore(&self, world: &mut World, state: &crate::checkpoint::State) -> crate::plugin::Result {
        world.resource_mut::<Referrals>().waiting = state.get("waiting")?;
        Ok(())
    }

    fn charts(&self) -> &'static [ChartDef] {
        &[CHART]
    }

    fn reserve(&self, scenario: &Scenario) -> Reserve {
        Reserve {
            customers: u64::from(self.max_per_day) * u64::from(scenario.days.saturating_sub(1)),
            bytes_per_customer: 0,
        }
    }

    fn build(&self, sim: &mut SimBuilder) -> crate::plugin::Result {
        let personas: Vec<String> = sim.scenario.personas.iter().map(|p| p.name.clone()).collect();
        let referred: Vec<Tally> = personas
            .iter()
            .map(|p| sim.tally(&format!("word_of_mouth.referred.{p}")))
            .collect();
        sim.add_visit_hook(
            Referrer {
                seed: sim.scenario.seed,
                rate: self.rate,
                min_loyalty: self.min_loyalty,
                referred: referred.clone(),
            },
            Stages::AFTER_VISIT,
        );
        let column = sim.daily_column(Column::new(
            COLUMN,
            Kind::U64,
            "Customers who joined that day on a customer's recommendation.",
        ))?;
        sim.world.insert_resource(Referrals {
            waiting: vec![0; personas.len()],
            referred,
            column,
            max_per_day: self.max_per_day,
        });
        sim.schedule.add_systems((
            count_referrals
                .after(crate::systems::observe::collect_records)
                .in_set(SimSet::Observe),
            welcome_referrals
                .run_if(morning)
                .after(crate::systems::acquisition::acquire_customers)
                .before(crate::systems::planning::plan_visits)
                .in_set(SimSet::Plan),
        ));
        Ok(())
    }
}

impl Behaviour for WordOfMouth {
    const NAME: &'static str = "WordOfMouth";

    fn check(&self, _scenario: &Scenario, problems: &mut Problems) {
        problems.range("rate", f64::from(self.rate), 0.0, 1.0);
        problems.range("min_loyalty", f64::from(self.min_loyalty), 0.0, 1.0);
        problems.range("max_per_day", f64::from(self.max_per_day), 0.0, 1e7);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::Today;

    fn referrer(rate: f32) -> Referrer {
        Referrer {
            seed: 1,
            rate,
            min_loyalty: 0.7,
            referred: vec![Tally(0)],
        }
    }

    /// Referrals per purchase over `n` loyal buyers in one hour.
    fn share(r: &Referrer, loyalty: f32, bought: bool, n: u32) -> f64 {
        let date = "2026-11-02".parse().unwrap();
        let clock = Clock::new(date, 1);
        let today = Today::neutral(date, 1);
        let outcome = VisitOutcome {
            bought,
            ..VisitOutcome::default()
        };
        let hits = (0..n)
            .filter(|&agent| {
                let visit = VisitInfo {
                    agent,
                    persona: 0,
                    minute: 0,
                    loyalty,
                    clock: &clock,
                    today: &today,
                };
                r.refers(&visit, &outcome, loyalty)
            })
            .count();
        hits as f64 / f64::from(n)
    }

    #[test]
    fn loyal_buyers_refer_at_the_rate_and_no_one_else_does() {
        let r = referrer(0.05);
        let loyal = share(&r, 0.8, true, 100_000);
        assert!((loyal - 0.05).abs() < 0.003, "{loyal}");
        assert_eq!(share(&r, 0.69, true, 10_000), 0.0, "below min_loyalty");
        assert_eq!(share(&r, 0.9, false, 10_000), 0.0, "no purchase");
        assert_eq!(share(&referrer(0.0), 1.0, true, 10_000), 0.0);
    }

    /// A small loyal town, with word of mouth as `systems` says.
    fn town(systems: &str) -> Scenario {
        let text = format!(
            r#"Scenario(
            name: "t", seed: 1, start: "2026-11-01", days: 5,
            catalog: [(name: "rice")],
            personas: [Persona(
                name: "p", age: (30, 40), income: (1000, 2000),
                visits: (recency: [(days: 0, p: 0.5)]),
                hours: Slots([("10:00", "11:00")]),
                loyalty: (initial: (0.8, 0.9)),
                basket: [(category: "rice", p: 1.0, quantity: (1, 1), price: Fixed(10))],
            )],
            population: [(persona: "p", count: 2000)],
            systems: [{systems}],
        )"#
        );
        Scenario::from_text("t.ron", &text, &crate::sim::registry()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn referrals_join_the_next_morning_and_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = town("WordOfMouth(rate: 0.1, min_loyalty: 0.7, max_per_day: 30)");
        s.apply(crate::scenario::Overrides {
            out: Some(dir.path().join("out")),
            ..Default::default()
        })
        .unwrap();
        let options = crate::run::RunOptions {
            threads: 1,
            report: false,
            ..Default::default()
        };
        let report = crate::run::run(&s, options).unwrap_or_else(|e| panic!("{e}"));
        let mut r = csv::Reader::from_path(dir.path().join("out/daily_metrics.csv")).unwrap();
        let header = r.headers().unwrap().clone();
        let col = |name: &str| header.iter().position(|h| h == name).unwrap();
        let (referrals, acquired) = (col("referrals"), col("acquired"));
        let days: Vec<(u64, u64)> = r
            .records()
            .map(|row| {
                let row = row.unwrap();
                (row[referrals].parse().unwrap(), row[acquired].parse().unwrap())
            })
            .collect();
        // Nobody is referred before the first purchases; from then on, about 10% of the
        // loyal buyers' purchases (hundreds a day) bring a friend, capped at 30 a day.
        assert_eq!(days[0], (0, 0));
        for &(referred, joined) in &days[1..] {
            assert_eq!(referred, joined, "the only newcomers are referrals");
            assert_eq!(referred, 30, "{days:?}");
        }
        assert_eq!(report.summary.totals.acquired, 30 * 4);
    }

    #[test]
    fn room_is_reserved_for_the_most_that_can_join() {
        let s = town("");
        let w = WordOfMouth {
            max_per_day: 10,
            ..WordOfMouth::default()
        };
        // Referrals join from the second morning on.
        assert_eq!(w.reserve(&s).customers, 10 * u64::from(s.days - 1));
    }
}
