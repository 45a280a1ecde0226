//! Sales rolled up by hour, persona and category (`sales`), and basket values by day
//! (`basket_values`): small tables written beside the transaction log, so a dashboard or an
//! analyst slices a 10M-customer run by date, hour, persona, category and event in
//! milliseconds instead of joining hundreds of millions of line items to their baskets.
//!
//! Both are grouping sets: a row with an empty `category` covers whole baskets (every
//! category), a row with one covers the baskets holding that category and only its lines.
//! Sum one kind of row or the other, never both.

use bevy_ecs::prelude::*;

use super::{BASKET_BINS, basket_bin, basket_bin_edge};
use crate::calendar::Clock;
use crate::output::schema::{Column, Kind, Table};
use crate::records::HourRecords;
use crate::sim::{Observed, Plugin, SimBuilder, SimSet};
use crate::tables::{PluginTables, TableId, Value};

/// The `sales` table: one row per hour, persona and category (and per hour and persona for
/// whole baskets) that sold anything.
pub fn sales_table() -> Table {
    let col = Column::new;
    Table::new(
        "sales",
        "hour, persona and category (empty: whole baskets) with sales",
        &[
            col("date", Kind::Date, "The day."),
            col("hour", Kind::U8, "The hour of the day, 0-23 (local time)."),
            col("persona", Kind::Name8, "The buyers' persona."),
            col(
                "category",
                Kind::Name8,
                "The category; empty for whole baskets (every category).",
            )
            .nullable(),
            col(
                "transactions",
                Kind::U64,
                "Baskets (with a category: baskets holding at least one line of it).",
            ),
            col("lines", Kind::U64, "Basket lines (of the category)."),
            col("units", Kind::U64, "Units (of the category)."),
            col("revenue", Kind::Money, "Revenue (of the category's lines)."),
        ],
    )
}

/// The `basket_values` table: how many baskets fell in each value bin, by day and persona
/// (and by category: the baskets holding it, by their whole value).
pub fn basket_values_table() -> Table {
    let col = Column::new;
    Table::new(
        "basket_values",
        "day, persona, category (empty: every basket) and basket-value bin with baskets",
        &[
            col("date", Kind::Date, "The day."),
            col("persona", Kind::Name8, "The buyers' persona."),
            col(
                "category",
                Kind::Name8,
                "Baskets holding this category; empty for every basket.",
            )
            .nullable(),
            col(
                "low",
                Kind::Money,
                "The bin's lowest basket value (bins are a tenth of a decade from 10 to 10 lakh, in major units).",
            ),
            col(
                "high",
                Kind::Money,
                "The next bin's lowest value; empty for the top bin.",
            )
            .nullable(),
            col("transactions", Kind::U64, "Baskets in the bin."),
        ],
    )
}

/// One hour's figures for a persona and category.
#[derive(Clone, Copy, Default)]
struct Cell {
    transactions: u64,
    lines: u64,
    units: u64,
    revenue: i64,
}

/// The rollup under way: this hour's cells and today's bins, by persona then category
/// (index 0 of a persona is whole baskets, `1 + c` category `c`).
#[derive(Resource)]
struct Rollup {
    sales: TableId,
    baskets: TableId,
    personas: Vec<String>,
    categories: Vec<String>,
    per_major: i64,
    hour: Vec<Cell>,
    bins: Vec<u64>,
    /// The basket that last counted each category (by its place in the hour, from 1).
    counted: Vec<u32>,
}

impl Rollup {
    fn width(&self) -> usize {
        1 + self.categories.len()
    }

    fn category(&self, slot: usize) -> Value {
        match slot {
            0 => Value::Null,
            c => Value::S(self.categories[c - 1].clone()),
        }
    }
}

/// Rolls the hour's baskets up, writes the hour's rows and, at the end of the day, the
/// day's basket bins.
fn roll_up(
    clock: Res<Clock>,
    records: Res<HourRecords>,
    mut rollup: ResMut<Rollup>,
    mut tables: ResMut<PluginTables>,
    cluster: Res<crate::cluster::Cluster>,
) -> crate::plugin::Result {
    let r = &mut *rollup;
    let width = r.width();
    for (n, (t, lines)) in records.iter().enumerate() {
        let stamp = n as u32 + 1;
        let row = usize::from(t.persona) * width;
        let bin = basket_bin(super::collect::hundredths(t.total, r.per_major));
        let all = &mut r.hour[row];
        all.transactions += 1;
        all.lines += lines.len() as u64;
        all.units += u64::from(t.units);
        all.revenue = all.revenue.saturating_add(t.total);
        r.bins[row * BASKET_BINS + bin] += 1;
        for l in lines {
            let c = usize::from(l.category);
            let cell = &mut r.hour[row + 1 + c];
            cell.lines += 1;
            cell.units += u64::from(l.quantity);
            cell.revenue = cell.revenue.saturating_add(l.total());
            if r.counted[c] != stamp {
                r.counted[c] = stamp;
                cell.transactions += 1;
                r.bins[(row + 1 + c) * BASKET_BINS + bin] += 1;
            }
        }
    }
    r.counted.fill(0);
    let end_of_day = clock.hour() == 23;
    if cluster.sharded() {
        // Summed over the ranks' customers; rank 0 writes the tables.
        let mut words: Vec<i64> = r
            .hour
            .iter()
            .flat_map(|c| {
                [
                    c.transactions as i64,
                    c.lines as i64,
                    c.units as i64,
                    c.revenue,
                ]
            })
            .collect();
        if end_of_day {
            words.extend(r.bins.iter().map(|&n| n as i64));
        }
        cluster.sum(&mut words);
        for (c, w) in r.hour.iter_mut().zip(words.chunks_exact(4)) {
            *c = Cell {
                transactions: w[0] as u64,
                lines: w[1] as u64,
                units: w[2] as u64,
                revenue: w[3],
            };
        }
        if end_of_day {
            let at = r.hour.len() * 4;
            for (n, w) in r.bins.iter_mut().zip(&words[at..]) {
                *n = *w as u64;
            }
        }
        if !cluster.is_root() {
            r.hour.fill(Cell::default());
            if end_of_day {
                r.bins.fill(0);
            }
            return Ok(());
        }
    }
    let date = clock.date();
    for slot in 0..r.hour.len() {
        let cell = std::mem::take(&mut r.hour[slot]);
        if cell.transactions == 0 {
            continue;
        }
        tables.push(
            r.sales,
            vec![
                Value::D(date),
                Value::U(u64::from(clock.hour())),
                Value::S(r.personas[slot / width].clone()),
                r.category(slot % width),
                Value::U(cell.transactions),
                Value::U(cell.lines),
                Value::U(cell.units),
                Value::Paise(cell.revenue),
            ],
        )?;
    }
    if !end_of_day {
        return Ok(());
    }
    let edge = |i: usize| (basket_bin_edge(i) * r.per_major as f64).ceil() as i64;
    for slot in 0..r.hour.len() {
        for b in 0..BASKET_BINS {
            let n = std::mem::take(&mut r.bins[slot * BASKET_BINS + b]);
            if n == 0 {
                continue;
            }
            tables.push(
                r.baskets,
                vec![
                    Value::D(date),
                    Value::S(r.personas[slot / width].clone()),
                    r.category(slot % width),
                    Value::Paise(if b == 0 { 0 } else { edge(b) }),
                    if b + 1 == BASKET_BINS {
                        Value::Null
                    } else {
                        Value::Paise(edge(b + 1))
                    },
                    Value::U(n),
                ],
            )?;
        }
    }
    Ok(())
}

/// Declares and fills `sales` and `basket_values`. Added to every run before the sinks;
/// holds nothing across a day's end, so a checkpoint needs none of its state.
pub struct RollupPlugin;

impl Plugin for RollupPlugin {
    fn name(&self) -> &str {
        "rollup"
    }

    fn build(&self, sim: &mut SimBuilder) -> crate::plugin::Result {
        let sales = sim.add_table(sales_table())?;
        let baskets = sim.add_table(basket_values_table())?;
        let personas: Vec<String> = sim
            .scenario
            .personas
            .iter()
            .map(|p| p.name.clone())
            .collect();
        let categories: Vec<String> = sim
            .scenario
            .catalog
            .iter()
            .map(|c| c.name.clone())
            .collect();
        let slots = personas.len() * (1 + categories.len());
        sim.world.init_resource::<crate::cluster::Cluster>();
        sim.world.insert_resource(Rollup {
            sales,
            baskets,
            per_major: sim.scenario.money.per_major(),
            hour: vec![Cell::default(); slots],
            bins: vec![0; slots * BASKET_BINS],
            counted: vec![0; categories.len()],
            personas,
            categories,
        });
        // Every run has it, so a behaviour's own table-writing system need not know of it:
        // it pushes only its own two tables' rows, which no other system's order can change.
        sim.schedule.add_systems(
            roll_up
                .after(Observed::Hour)
                // In a sharded run both sum over the ranks: one order on every rank.
                .after(Observed::Day)
                .before(crate::output::sinks::write_plugin_tables)
                .in_set(crate::tables::TableRows)
                .ambiguous_with_all()
                .in_set(SimSet::Observe),
        );
        Ok(())
    }
}
