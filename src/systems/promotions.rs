//! An example behaviour (`systems: [Promotions(campaigns: [(name: "diwali_sweets", category:
//! "sweets", discount: 0.15, from: "2026-11-05", to: "2026-11-09", lift: 1.3)])]`): price
//! campaigns on a category for some days, for some personas or a loyalty tier, that change
//! the price, the purchase probability and the quantities of what is offered, and cost what
//! they take off the price. The `promotions` table has, per campaign and day it ran, the lines,
//! units and revenue it sold and its cost. This is what an A/B experiment compares.
//!
//! One file and one registration line: typed, checked settings; an offer hook (before the
//! draw) and an after-visit hook (on the basket as paid) counting into tallies; a table.

use bevy_ecs::prelude::*;
use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::calendar::Clock;
use crate::hooks::{
    CustomerState, Offer, Stages, Tallies, Tally, VisitHook, VisitInfo, VisitOutcome,
};
use crate::output::schema::{Column, Kind, Table};
use crate::plugin::{Behaviour, Plugin, Problems, SimBuilder};
use crate::records::{HourRecords, LineRecord};
use crate::scenario::Scenario;
use crate::scenario::diag::Step;
use crate::sim::SimSet;
use crate::tables::{PluginTables, TableId, Value};

/// Price campaigns: a discount on a category for some days and customers.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Promotions {
    /// The campaigns. Two on the same category may not overlap in time.
    pub campaigns: Vec<Campaign>,
}

/// One campaign.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Campaign {
    /// Name, as the `promotions` table shows it.
    pub name: String,
    /// The catalog category on promotion.
    pub category: String,
    /// Share taken off the price (0.15 = 15% off).
    pub discount: f32,
    /// First day, `YYYY-MM-DD`.
    pub from: String,
    /// Last day, `YYYY-MM-DD` (included).
    pub to: String,
    /// Personas offered it; empty: every persona.
    #[serde(default)]
    pub personas: Vec<String>,
    /// Loyalty from which a customer is offered it (a loyalty tier); 0: everyone.
    #[serde(default)]
    pub min_loyalty: f32,
    /// Factor on the category's purchase probability while offered.
    #[serde(default = "one")]
    pub lift: f32,
    /// Factor on the quantities bought while offered.
    #[serde(default = "one")]
    pub quantity: f32,
}

fn one() -> f32 {
    1.0
}

/// A campaign resolved against the scenario: indices instead of names.
#[derive(Debug, Clone)]
struct Running {
    category: u16,
    from: NaiveDate,
    to: NaiveDate,
    /// By persona index.
    personas: Vec<bool>,
    min_loyalty: f32,
    discount: f32,
    lift: f32,
    quantity: f32,
    /// Lines, units, revenue (paise), cost (paise).
    tallies: [Tally; 4],
}

impl Running {
    /// Whether this visit is offered the campaign on `category`.
    #[inline]
    fn offered(&self, visit: &VisitInfo<'_>, category: u16) -> bool {
        category == self.category
            && self.personas[usize::from(visit.persona)]
            && visit.loyalty >= self.min_loyalty
            && (self.from..=self.to).contains(&visit.clock.date())
    }
}

/// The campaigns' hook: changes offers before the draw, attributes what sold after.
struct Campaigns(Vec<Running>);

impl VisitHook for Campaigns {
    fn offer(&self, visit: &VisitInfo<'_>, offer: &mut Offer, _: &mut Tallies) {
        for c in self.0.iter().filter(|c| c.offered(visit, offer.category)) {
            offer.p *= c.lift;
            offer.quantity *= c.quantity;
            offer.price *= f64::from(1.0 - c.discount);
        }
    }

    fn after_visit(
        &self,
        visit: &VisitInfo<'_>,
        _: &VisitOutcome,
        basket: &[LineRecord],
        _: &mut CustomerState<'_>,
        tallies: &mut Tallies,
    ) {
        for line in basket {
            for c in self.0.iter().filter(|c| c.offered(visit, line.category)) {
                let [lines, units, revenue, cost] = c.tallies;
                let paid = line.total();
                tallies.add(lines, 1);
                tallies.add(units, i64::from(line.quantity));
                tallies.add(revenue, paid);
                tallies.add(cost, forgone(paid, c.discount));
            }
        }
    }
}

/// What a discount of `discount` took off a line that sold for `paid` paise: its value at
/// full price less what was paid, to the paisa.
fn forgone(paid: i64, discount: f32) -> i64 {
    let d = f64::from(discount);
    (paid as f64 * d / (1.0 - d)).round() as i64
}

/// The campaigns, their day's sums and the table they go to.
#[derive(Resource)]
struct Ledger {
    campaigns: Vec<(String, String, Running)>,
    today: Vec<[i64; 4]>,
    /// Every completed day's sums, by campaign: the experiments' metrics.
    total: Vec<[i64; 4]>,
    /// Minor units of the currency's major one.
    per_major: f64,
    table: TableId,
}

/// Adds the hour's tallies to the day's; at the end of the day writes a row for each campaign
/// that ran.
fn account(
    clock: Res<Clock>,
    records: Res<HourRecords>,
    mut ledger: ResMut<Ledger>,
    mut tables: ResMut<PluginTables>,
) -> crate::plugin::Result {
    let ledger = &mut *ledger;
    for ((_, _, c), sums) in ledger.campaigns.iter().zip(&mut ledger.today) {
        for (sum, t) in sums.iter_mut().zip(c.tallies) {
            *sum += records.tally(t);
        }
    }
    if clock.hour() != 23 {
        return Ok(());
    }
    let date = clock.date();
    for (total, today) in ledger.total.iter_mut().zip(&ledger.today) {
        for (t, x) in total.iter_mut().zip(today) {
            *t += x;
        }
    }
    for ((name, category, c), sums) in ledger.campaigns.iter().zip(&mut ledger.today) {
        if (c.from..=c.to).contains(&date) {
            let [lines, units, revenue, cost] = *sums;
            tables.push(
                ledger.table,
                vec![
                    Value::D(date),
                    Value::S(name.clone()),
                    Value::S(category.clone()),
                    Value::U(lines as u64),
                    Value::U(units as u64),
                    Value::Paise(revenue),
                    Value::Paise(cost),
                ],
            )?;
        }
        *sums = [0; 4];
    }
    Ok(())
}

/// The `promotions` table.
fn table() -> Table {
    let col = Column::new;
    Table::new(
        "promotions",
        "campaign and day it ran",
        &[
            col("date", Kind::Date, "The day."),
            col("campaign", Kind::Text, "The campaign's name."),
            col("category", Kind::Name16, "The category on promotion."),
            col("lines", Kind::U64, "Basket lines sold on promotion."),
            col("units", Kind::U64, "Units sold on promotion."),
            col("revenue", Kind::Money, "Paid for them."),
            col("cost", Kind::Money, "Taken off their price by the discount."),
        ],
    )
}

fn date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

impl Plugin for Promotions {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn save(&self, world: &mut World, state: &mut crate::checkpoint::State) -> crate::plugin::Result {
        let ledger = world.resource::<Ledger>();
        let totals: Vec<(&String, &[i64; 4])> = ledger
            .campaigns
            .iter()
            .map(|c| &c.0)
            .zip(&ledger.total)
            .collect();
        state.put("totals", &totals)
    }

    /// Totals by campaign name: an arm's campaigns may differ from its base's, and one the
    /// base did not run starts at zero.
    fn restore(&self, world: &mut World, state: &crate::checkpoint::State) -> crate::plugin::Result {
        let saved: Vec<(String, [i64; 4])> = state.get("totals")?;
        let mut ledger = world.resource_mut::<Ledger>();
        let ledger = &mut *ledger;
        for ((name, _, _), total) in ledger.campaigns.iter().zip(&mut ledger.total) {
            *total = saved
                .iter()
                .find(|(n, _)| n == name)
                .map_or([0; 4], |(_, t)| *t);
        }
        Ok(())
    }

    fn metrics(&self, world: &World) -> Vec<(String, f64)> {
        let ledger = world.resource::<Ledger>();
        let mut out = Vec::new();
        for ((name, _, _), [lines, units, revenue, cost]) in ledger.campaigns.iter().zip(&ledger.total) {
            let stem = format!("promotions.{name}");
            out.push((format!("{stem}.lines"), *lines as f64));
            out.push((format!("{stem}.units"), *units as f64));
            out.push((format!("{stem}.revenue"), *revenue as f64 / ledger.per_major));
            out.push((format!("{stem}.cost"), *cost as f64 / ledger.per_major));
        }
        out
    }

    fn build(&self, sim: &mut SimBuilder) -> crate::plugin::Result {
        let scenario = sim.scenario;
        let mut campaigns = Vec::new();
        for c in &self.campaigns {
            // `check` has refused what does not resolve.
            let category = scenario
                .catalog
                .iter()
                .position(|k| k.name == c.category)
                .ok_or("unknown category")?;
            let personas = scenario
                .personas
                .iter()
                .map(|p| c.personas.is_empty() || c.personas.contains(&p.name))
                .collect();
            let stem = format!("promotions.{}", c.name);
            let tallies = [
                sim.tally(&format!("{stem}.lines")),
                sim.tally(&format!("{stem}.units")),
                sim.tally(&format!("{stem}.revenue")),
                sim.tally(&format!("{stem}.cost")),
            ];
            let running = Running {
                category: category as u16,
                from: date(&c.from).ok_or("bad date")?,
                to: date(&c.to).ok_or("bad date")?,
                personas,
                min_loyalty: c.min_loyalty,
                discount: c.discount,
                lift: c.lift,
                quantity: c.quantity,
                tallies,
            };
            campaigns.push((c.name.clone(), c.category.clone(), running));
        }
        let hook = Campaigns(campaigns.iter().map(|c| c.2.clone()).collect());
        sim.add_visit_hook(hook, Stages::OFFER.and(Stages::AFTER_VISIT));
        let table = sim.add_table(table())?;
        sim.world.insert_resource(Ledger {
            today: vec![[0; 4]; campaigns.len()],
            total: vec![[0; 4]; campaigns.len()],
            per_major: scenario.money.per_major() as f64,
            campaigns,
            table,
        });
        sim.schedule.add_systems(
            account
                .after(crate::systems::observe::collect_records)
                .before(crate::output::sinks::write_plugin_tables)
                .in_set(crate::tables::TableRows)
                .ambiguous_with(crate::tables::TableRows)
                .in_set(SimSet::Observe),
        );
        Ok(())
    }
}

impl Behaviour for Promotions {
    const NAME: &'static str = "Promotions";

    fn check(&self, scenario: &Scenario, problems: &mut Problems) {
        let at = |i: usize, f: &'static str| [Step::Field("campaigns"), Step::Index(i), Step::Field(f)];
        for (i, c) in self.campaigns.iter().enumerate() {
            if !scenario.catalog.iter().any(|k| k.name == c.category) {
                problems.add(
                    &at(i, "category"),
                    format!("no category `{}` in the catalog", c.category),
                    "name a category of the scenario's catalog",
                );
            }
            for p in c.personas.iter().filter(|p| !scenario.personas.iter().any(|q| &q.name == *p)) {
                problems.add(
                    &at(i, "personas"),
                    format!("no persona `{p}`"),
                    "name personas of the scenario, or leave the list empty for all",
                );
            }
            let (from, to) = (date(&c.from), date(&c.to));
            for (field, value, parsed) in [("from", &c.from, from), ("to", &c.to, to)] {
                if parsed.is_none() {
                    problems.add(
                        &at(i, field),
                        format!("`{value}` is not a date"),
                        "write dates as YYYY-MM-DD",
                    );
                }
            }
            if let (Some(from), Some(to)) = (from, to)
                && from > to
            {
                problems.add(&at(i, "to"), "the campaign ends before it starts", "");
            }
            let mut range = |field: &'static str, v: f32, lo: f32, hi: f32| {
                if !(lo..=hi).contains(&v) {
                    problems.add(
                        &at(i, field),
                        format!("`{field}` must be between {lo} and {hi}, got {v}"),
                        "`bazaar systems` says what it means",
                    );
                }
            };
            range("discount", c.discount, 0.0, 0.95);
            range("min_loyalty", c.min_loyalty, 0.0, 1.0);
            range("lift", c.lift, 0.0, 20.0);
            range("quantity", c.quantity, 0.0, 10.0);
            let clash = self.campaigns[..i].iter().any(|o| {
                o.category == c.category
                    && matches!((date(&o.from), date(&o.to), from, to),
                        (Some(a), Some(b), Some(x), Some(y)) if a <= y && x <= b)
            });
            if clash {
                problems.add(
                    &at(i, "from"),
                    format!("another campaign on `{}` runs on some of these days", c.category),
                    "give each category one campaign at a time",
                );
            }
            if self.campaigns[..i].iter().any(|o| o.name == c.name) {
                problems.add(&at(i, "name"), format!("two campaigns are named `{}`", c.name), "");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::Today;

    fn running() -> Running {
        Running {
            category: 1,
            from: "2026-11-05".parse().unwrap(),
            to: "2026-11-06".parse().unwrap(),
            personas: vec![true, false],
            min_loyalty: 0.5,
            discount: 0.2,
            lift: 1.5,
            quantity: 2.0,
            tallies: [Tally(0), Tally(1), Tally(2), Tally(3)],
        }
    }

    #[test]
    fn the_offer_changes_only_for_those_offered() {
        let hook = Campaigns(vec![running()]);
        let on: NaiveDate = "2026-11-05".parse().unwrap();
        let off: NaiveDate = "2026-11-07".parse().unwrap();
        let today = Today::neutral(on, 2);
        let offer = |date: NaiveDate, persona: u8, loyalty: f32, category: u16| {
            let mut clock = Clock::new(date, 1);
            clock.tick = 0;
            let visit = VisitInfo {
                agent: 1,
                persona,
                minute: 0,
                loyalty,
                clock: &clock,
                today: &today,
            };
            let mut o = Offer {
                category,
                p: 0.4,
                quantity: 1.0,
                price: 1.0,
            };
            hook.offer(&visit, &mut o, &mut Tallies::default());
            o
        };
        let o = offer(on, 0, 0.6, 1);
        assert!((o.p - 0.6).abs() < 1e-6 && o.quantity == 2.0);
        assert!((o.price - 0.8).abs() < 1e-6);
        let plain = Offer {
            category: 1,
            p: 0.4,
            quantity: 1.0,
            price: 1.0,
        };
        assert_eq!(offer(off, 0, 0.6, 1), plain, "after the campaign");
        assert_eq!(offer(on, 1, 0.6, 1), plain, "another persona");
        assert_eq!(offer(on, 0, 0.4, 1), plain, "below the loyalty tier");
        assert_eq!(offer(on, 0, 0.6, 0).p, 0.4, "another category");
    }

    #[test]
    fn the_cost_is_what_the_discount_took_off() {
        // Paid 80.00 at 20% off: the full price was 100.00.
        assert_eq!(forgone(8_000, 0.2), 2_000);
        assert_eq!(forgone(8_000, 0.0), 0);
    }

    fn scenario(campaigns: &str) -> Result<Scenario, String> {
        let text = format!(
            r#"Scenario(
            name: "t", seed: 3, start: "2026-11-01", days: 10,
            catalog: [(name: "rice"), (name: "sweets")],
            personas: [Persona(
                name: "p", age: (30, 40), income: (50000, 60000),
                visits: (recency: [(days: 0, p: 0.6)]),
                hours: Slots([("10:00", "12:00")]),
                basket: [
                    (category: "rice", p: 0.8, quantity: (1, 3), price: Uniform(50, 80)),
                    (category: "sweets", p: 0.3, quantity: (1, 2), price: Uniform(200, 300)),
                ],
            )],
            population: [(persona: "p", count: 3000)],
            systems: [Promotions(campaigns: [{campaigns}])],
        )"#
        );
        Scenario::from_text("t.ron", &text, &crate::sim::registry()).map_err(|e| e.to_string())
    }

    #[test]
    fn bad_campaigns_are_located_scenario_errors() {
        let e = scenario(
            r#"(name: "a", category: "sweetz", discount: 1.5, from: "2026-11-05", to: "2026-11-04")"#,
        )
        .unwrap_err();
        assert!(e.contains("no category `sweetz`"), "{e}");
        assert!(e.contains("`discount` must be between 0 and 0.95"), "{e}");
        assert!(e.contains("ends before it starts"), "{e}");
        assert!(e.contains("campaigns[0]"), "{e}");
    }

    /// Sweets sold per day, and the promotions table's rows, of a run with `campaigns`.
    fn sweets(campaigns: &str) -> (Vec<u64>, Vec<csv::StringRecord>) {
        let dir = tempfile::tempdir().unwrap();
        let mut s = scenario(campaigns).unwrap_or_else(|e| panic!("{e}"));
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
        crate::run::run(&s, options).unwrap_or_else(|e| panic!("{e}"));
        let out = dir.path().join("out");
        let mut units = vec![0u64; 10];
        let ids: std::collections::HashMap<String, usize> =
            csv::Reader::from_path(out.join("transactions.csv"))
                .unwrap()
                .records()
                .map(|r| {
                    let r = r.unwrap();
                    (r[0].to_owned(), usize::from(r[1][8..10].parse::<u8>().unwrap()) - 1)
                })
                .collect();
        for r in csv::Reader::from_path(out.join("line_items.csv")).unwrap().records() {
            let r = r.unwrap();
            if &r[2] == "sweets" {
                units[ids[&r[0]]] += r[3].parse::<u64>().unwrap();
            }
        }
        let rows = match csv::Reader::from_path(out.join("promotions.csv")) {
            Ok(mut r) => r.records().map(Result::unwrap).collect(),
            Err(_) => Vec::new(),
        };
        (units, rows)
    }

    #[test]
    fn a_campaign_sells_more_on_its_days_only_and_accounts_for_it() {
        let (control, none) = sweets("");
        assert!(none.is_empty());
        let (promoted, rows) = sweets(
            r#"(name: "sweet_week", category: "sweets", discount: 0.2, from: "2026-11-05", to: "2026-11-07", lift: 2.0, quantity: 1.0)"#,
        );
        // Same seed: the days before the campaign are the same, its days sell about twice
        // the sweets (probability 0.3 -> 0.6).
        assert_eq!(control[..4], promoted[..4]);
        for day in 4..7 {
            let ratio = promoted[day] as f64 / control[day] as f64;
            assert!((1.7..2.3).contains(&ratio), "day {day}: {ratio}");
        }
        assert_eq!(rows.len(), 3, "one row a day it ran");
        for (row, day) in rows.iter().zip(4..) {
            assert_eq!(&row[0], format!("2026-11-{:02}", day + 1));
            assert_eq!((&row[1], &row[2]), ("sweet_week", "sweets"));
            assert_eq!(row[4].parse::<u64>().unwrap(), promoted[day]);
            let revenue: f64 = row[5].parse().unwrap();
            let cost: f64 = row[6].parse().unwrap();
            // 20% off: the cost is a quarter of what was paid.
            assert!((cost / revenue - 0.25).abs() < 0.001, "{revenue} {cost}");
        }
    }
}
