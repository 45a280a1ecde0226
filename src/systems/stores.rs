//! An example behaviour (`systems: [Stores(count: 20, stock: 400, restock_every_days: 2)]`):
//! stores are entities — a few heavy agents beside millions of light ones — each holding a
//! stock per category, restocked on a schedule. Every customer has a home store; the hour's
//! baskets are served from its stock first come (visit minute), first served (then
//! customer id), lines it cannot serve are refused, and a visit with refused lines costs the
//! customer loyalty. The `stores` table has, per store and day, the stock left, the units
//! sold, the lines refused and the revenue.
//!
//! One file and one registration line: typed settings; a customer component; store
//! entities; an allocator over the hour's demand (so results do not depend on threads); an
//! after-visit hook; a tally (lines refused); a table.

use bevy_ecs::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::calendar::Clock;
use crate::hooks::{CustomerState, Stages, Tallies, Tally, VisitHook, VisitInfo, VisitOutcome};
use crate::output::schema::{Column, Kind, Table};
use crate::plugin::{Behaviour, Plugin, Problems, Reserve, SimBuilder};
use crate::population::Population;
use crate::records::{HourRecords, LineRecord};
use crate::rng::{PluginPurpose, Streams};
use crate::scenario::Scenario;
use crate::sim::SimSet;
use crate::tables::{PluginTables, TableId, Value};

/// Stores with finite stock: sold-out lines are refused and hurt loyalty.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Stores {
    /// Number of stores; each customer is given one at random as its home store.
    pub count: u16,
    /// Units of each category a store holds after a restock.
    pub stock: u32,
    /// Restock every this many days (at midnight; the first day starts stocked).
    pub restock_every_days: u32,
    /// Loyalty a customer loses after a visit in which some line was refused.
    pub sold_out_penalty: f32,
}

impl Default for Stores {
    fn default() -> Self {
        Self {
            count: 10,
            stock: 1_000,
            restock_every_days: 1,
            sold_out_penalty: 0.05,
        }
    }
}

/// A customer's home store, for behaviours and queries that read it; the allocation draws
/// it from the id instead (the same draw), which every rank of a sharded run can.
#[derive(Component, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HomeStore(pub u16);

/// A store: its stock by category and the day's figures.
#[derive(Component, Debug, Clone)]
pub struct Store {
    /// Store number, from 0.
    pub id: u16,
    /// Units left, by category.
    pub stock: Vec<u32>,
    /// Units sold today.
    pub sold: u64,
    /// Lines refused today.
    pub refused: u64,
    /// Revenue today, paise.
    pub revenue: i64,
}

/// The draw of a customer's home store.
const HOME: PluginPurpose = PluginPurpose::new("stores.home");

/// What the stores' systems share.
#[derive(Resource)]
struct Chain {
    /// The streams home stores are drawn from.
    homes: Streams,
    count: u16,
    stock: u32,
    restock_every_days: u32,
    /// Customers given a home store so far (this process's rows below this; 0 after a
    /// restore, so every row is homed again: a home is a draw on the id).
    homed: u32,
    refused: Tally,
    table: TableId,
}

impl Chain {
    /// Customer `id`'s home store: a draw on the id alone, so the same customer has the
    /// same store at any thread count, after a checkpoint, and on every rank of a sharded
    /// run, which knows any customer's store without asking.
    fn home_of(&self, id: u32) -> HomeStore {
        let u = self.homes.first_unit_f32(id);
        HomeStore(((u * f32::from(self.count)) as u16).min(self.count - 1))
    }
}

/// Gives the customers who joined since the last call their home store.
fn assign_homes(mut chain: ResMut<Chain>, population: Res<Population>, mut homes: Query<&mut HomeStore>) {
    let chain = &mut *chain;
    let mut first = 0u32;
    for mut table in homes
        .contiguous_iter_mut()
        .expect("customer components are table-stored")
    {
        let rows = table.bypass_change_detection();
        let end = first + rows.len() as u32;
        for (row, id) in population
            .rows_from(chain.homed.max(first))
            .take_while(|&(row, _)| row < end)
        {
            rows[(row - first) as usize] = chain.home_of(id);
        }
        first = end;
    }
    chain.homed = population.rows();
}

/// Serves the hour's demand from the home stores' stock, restocking them first on a
/// restock day.
fn serve_from_stock(
    clock: Res<Clock>,
    chain: Res<Chain>,
    mut records: ResMut<HourRecords>,
    mut stores: Query<&mut Store>,
) {
    let mut stores: Vec<Mut<Store>> = stores.iter_mut().collect();
    stores.sort_by_key(|s| s.id);
    if clock.hour() == 0 && clock.day() > 0 && clock.day().is_multiple_of(chain.restock_every_days)
    {
        for s in &mut stores {
            s.stock.fill(chain.stock);
        }
    }
    // Each store's stock changes alike on every rank of a sharded run: the allocation sees
    // every rank's demand, and any customer's home store is known from the id.
    records.allocate(|demand, lines, tallies| {
        let store = &mut stores[usize::from(chain.home_of(demand.agent).0)];
        for line in lines {
            let left = &mut store.stock[usize::from(line.category)];
            let units = line.quantity.min(*left);
            *left -= units;
            line.quantity = units;
            if units == 0 {
                store.refused += 1;
                tallies.add(chain.refused, 1);
            } else {
                store.sold += u64::from(units);
                store.revenue += line.total();
            }
        }
    });
}

/// At the end of a day: a row per store, and its day's figures start again.
fn close_stores(
    clock: Res<Clock>,
    chain: Res<Chain>,
    mut stores: Query<&mut Store>,
    mut tables: ResMut<PluginTables>,
) -> crate::plugin::Result {
    if clock.hour() != 23 {
        return Ok(());
    }
    let mut stores: Vec<Mut<Store>> = stores.iter_mut().collect();
    stores.sort_by_key(|s| s.id);
    for s in &mut stores {
        tables.push(
            chain.table,
            vec![
                Value::D(clock.date()),
                Value::U(u64::from(s.id)),
                Value::U(s.stock.iter().map(|&u| u64::from(u)).sum()),
                Value::U(s.sold),
                Value::U(s.refused),
                Value::Paise(s.revenue),
            ],
        )?;
        (s.sold, s.refused, s.revenue) = (0, 0, 0);
    }
    Ok(())
}

/// A visit with refused lines costs loyalty.
struct Disappointed(f32);

impl VisitHook for Disappointed {
    fn after_visit(
        &self,
        _: &VisitInfo<'_>,
        outcome: &VisitOutcome,
        _: &[LineRecord],
        customer: &mut CustomerState<'_>,
        _: &mut Tallies,
    ) {
        if outcome.refused > 0 {
            customer.loyalty.0 = (customer.loyalty.0 - self.0).max(0.0);
        }
    }
}

/// The `stores` table.
fn table() -> Table {
    let col = Column::new;
    Table::new(
        "stores",
        "store and day",
        &[
            col("date", Kind::Date, "The day."),
            col("store", Kind::U16, "The store, from 0."),
            col("stock", Kind::U64, "Units left at the end of the day, all categories."),
            col("sold", Kind::U64, "Units sold."),
            col("refused", Kind::U64, "Basket lines refused: the category was sold out."),
            col("revenue", Kind::Money, "Paid at the store."),
        ],
    )
}

impl Plugin for Stores {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn save(&self, world: &mut World, state: &mut crate::checkpoint::State) -> crate::plugin::Result {
        // Home stores are not saved: each is a draw on the customer's id, made again for
        // every row in the first hour after a restore.
        state.put("count", &world.resource::<Chain>().count)?;
        let mut stock: Vec<(u16, Vec<u32>)> = world
            .try_query::<&Store>()
            .ok_or("there are no stores")?
            .iter(world)
            .map(|s| (s.id, s.stock.clone()))
            .collect();
        stock.sort_unstable();
        state.put("stock", &stock)
    }

    fn restore(&self, world: &mut World, state: &crate::checkpoint::State) -> crate::plugin::Result {
        let count: u16 = state.get("count")?;
        let ours = world.resource::<Chain>().count;
        if count != ours {
            return Err(format!(
                "the checkpoint's customers are homed in {count} stores, this run has {ours}: \
                 an arm keeps the base's store count"
            )
            .into());
        }
        let stock: Vec<(u16, Vec<u32>)> = state.get("stock")?;
        for mut s in world.query::<&mut Store>().iter_mut(world) {
            if let Some((_, saved)) = stock.iter().find(|(id, _)| *id == s.id) {
                s.stock.clone_from(saved);
            }
        }
        Ok(())
    }

    fn reserve(&self, _: &Scenario) -> Reserve {
        Reserve {
            customers: 0,
            bytes_per_customer: std::mem::size_of::<HomeStore>() as u64,
        }
    }

    fn build(&self, sim: &mut SimBuilder) -> crate::plugin::Result {
        sim.customer_component::<HomeStore>()?;
        let categories = sim.scenario.catalog.len();
        for id in 0..self.count {
            sim.world.spawn(Store {
                id,
                stock: vec![self.stock; categories],
                sold: 0,
                refused: 0,
                revenue: 0,
            });
        }
        let refused = sim.tally("stores.refused");
        let table = sim.add_table(table())?;
        sim.world.insert_resource(Chain {
            homes: Streams::of(sim.scenario.seed, 0, HOME),
            count: self.count,
            stock: self.stock,
            restock_every_days: self.restock_every_days,
            homed: 0,
            refused,
            table,
        });
        sim.add_visit_hook(Disappointed(self.sold_out_penalty), Stages::AFTER_VISIT);
        sim.add_allocator(serve_from_stock);
        sim.schedule.add_systems((
            // New customers (the starting ones, then each morning's) get their stores
            // before anyone shops.
            assign_homes
                .after(crate::systems::planning::plan_visits)
                .in_set(SimSet::Plan),
            close_stores
                .before(crate::output::sinks::write_plugin_tables)
                .in_set(crate::tables::TableRows)
                .ambiguous_with(crate::tables::TableRows)
                .in_set(SimSet::Observe),
        ));
        Ok(())
    }
}

impl Behaviour for Stores {
    const NAME: &'static str = "Stores";

    fn check(&self, scenario: &Scenario, problems: &mut Problems) {
        problems.range("count", f64::from(self.count), 1.0, 10_000.0);
        problems.range(
            "restock_every_days",
            f64::from(self.restock_every_days),
            1.0,
            f64::from(scenario.days.max(1)),
        );
        problems.range("sold_out_penalty", f64::from(self.sold_out_penalty), 0.0, 1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::AgentId;

    fn town(stores: &str) -> Scenario {
        let text = format!(
            r#"Scenario(
            name: "t", seed: 2, start: "2026-11-02", days: 4,
            catalog: [(name: "rice"), (name: "ghee")],
            personas: [Persona(
                name: "p", age: (30, 40), income: (50000, 60000),
                visits: (recency: [(days: 0, p: 0.5)]),
                hours: Slots([("10:00", "12:00")]),
                loyalty: (initial: (0.8, 0.8)),
                basket: [
                    (category: "rice", p: 0.9, quantity: (1, 3), price: Uniform(50, 80)),
                    (category: "ghee", p: 0.2, quantity: (1, 1), price: Uniform(400, 500)),
                ],
            )],
            population: [(persona: "p", count: 4000, new_per_day: 50)],
            systems: [{stores}],
        )"#
        );
        Scenario::from_text("t.ron", &text, &crate::sim::registry()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs `scenario` and returns the stores table's rows and the line items' rice units
    /// per day.
    fn run(scenario: &Scenario) -> (Vec<csv::StringRecord>, u64) {
        let dir = tempfile::tempdir().unwrap();
        let mut s = scenario.clone();
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
        let rows = match csv::Reader::from_path(out.join("stores.csv")) {
            Ok(mut r) => r.records().map(Result::unwrap).collect(),
            Err(_) => Vec::new(),
        };
        let units = csv::Reader::from_path(out.join("line_items.csv"))
            .unwrap()
            .records()
            .map(|r| r.unwrap()[3].parse::<u64>().unwrap())
            .sum();
        (rows, units)
    }

    #[test]
    fn stock_runs_out_lines_are_refused_and_sales_match_the_records() {
        // Four stores of 600 units a category for 4,000 customers who all visit on day 1.
        let s = town("Stores(count: 4, stock: 600, restock_every_days: 2)");
        let (rows, units) = run(&s);
        assert_eq!(rows.len(), 4 * 4, "a row per store per day");
        let field = |r: &csv::StringRecord, i: usize| r[i].parse::<u64>().unwrap();
        let sold: u64 = rows.iter().map(|r| field(r, 3)).sum();
        assert_eq!(sold, units, "what stores sold is what the records say was bought");
        for r in &rows {
            assert!(field(r, 2) <= 2 * 600, "{r:?}");
        }
        // Day 1: everyone visits; rice (0.9 x 2 units x ~1,000 customers a store) sells out.
        let day1: Vec<_> = rows.iter().filter(|r| &r[0] == "2026-11-02").collect();
        assert!(day1.iter().all(|r| field(r, 4) > 0), "{day1:?}");
        // Day 2 is not a restock day (every 2 days from the start): stock stays low.
        let day2_sold: u64 = rows
            .iter()
            .filter(|r| &r[0] == "2026-11-03")
            .map(|r| field(r, 3))
            .sum();
        assert!(day2_sold < 4 * 2 * 600, "{day2_sold}");
    }

    #[test]
    fn store_entities_leave_the_customer_table_as_plugins_expect() {
        let s = town("Stores(count: 2, stock: 100)");
        let mut sim = crate::sim::Simulation::builder(&s)
            .threads(1)
            .check_invariants(true)
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        sim.spawn_population();
        // Two days: the starting customers, then the second morning's newcomers.
        for _ in 0..48 {
            sim.step().unwrap_or_else(|e| panic!("{e}"));
        }
        let mut homes = sim.world.query::<(&AgentId, &HomeStore)>();
        let counts = homes.iter(&sim.world).fold([0u32; 2], |mut c, (_, h)| {
            c[usize::from(h.0)] += 1;
            c
        });
        assert_eq!(counts.iter().sum::<u32>(), 4050);
        assert!(counts.iter().all(|&c| c > 1800), "{counts:?}");
    }

    #[test]
    fn plenty_of_stock_changes_nothing() {
        let plain = run(&town(""));
        let (rows, units) = run(&town("Stores(count: 3, stock: 4000000)"));
        assert_eq!(units, plain.1, "the same baskets as without stores");
        assert!(rows.iter().all(|r| &r[4] == "0"));
    }
}
