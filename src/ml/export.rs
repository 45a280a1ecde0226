//! The training table for churn and spend models: every active customer's features at
//! snapshot days, with two honest forward-looking labels — `label`, 1 if the customer
//! churned within the next `horizon` days, and `spend_next`, what the customer spent in the
//! next `spend_horizon` days (0 after churning).
//!
//! Features are computed at the end of the snapshot day from state at that moment (no
//! leakage); only snapshots whose whole horizons lie inside the run are written (no censored
//! labels). Rows stream to a partial file during the run, and each snapshot's spend labels
//! to a second one when its spend horizon closes (only the snapshot's customers and their
//! spending so far wait in memory until then); at the end the churn labels are joined in
//! from each customer's churn day and the spend labels line by line, in one pass.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};

use bevy_ecs::prelude::*;

use super::features::{FeatureBatch, FeatureSpec, Observed};
use crate::calendar::Clock;
use crate::components::*;
use crate::output::table::Table;
use crate::output::{OutputDir, OutputError, io_at};
use crate::sim::{Plugin, SimBuilder, SimSet};

/// File name of the training table.
pub const FEATURES_FILE: &str = "features.csv";
const PARTIAL_FILE: &str = "features.partial";
const SPEND_FILE: &str = "spend.partial";

/// When to take snapshots and how far ahead the label looks.
#[derive(Debug, Clone, Copy)]
pub struct ExportOptions {
    /// A snapshot at the end of every `every`-th day.
    pub every: u32,
    /// Label: churned within this many days after the snapshot.
    pub horizon: u32,
    /// `spend_next`: spent within this many days after the snapshot.
    pub spend_horizon: u32,
}

impl ExportOptions {
    /// Whether `day` of a `days`-day run is a snapshot day with both label horizons inside
    /// the run.
    pub fn is_snapshot(&self, day: u32, days: u32) -> bool {
        let horizon = self.horizon.max(self.spend_horizon);
        (day + 1).is_multiple_of(self.every.max(1)) && day.saturating_add(horizon) < days
    }

    /// The last snapshot day of a `days`-day run, if it has one.
    pub fn last_snapshot(&self, days: u32) -> Option<u32> {
        (0..days).rev().find(|&d| self.is_snapshot(d, days))
    }
}

/// A snapshot whose spend labels are still to come: its customers, in the order of its
/// rows, and what each had spent by the snapshot (minor units).
#[derive(serde::Serialize, serde::Deserialize)]
struct Pending {
    day: u32,
    agents: Vec<u32>,
    spent: Vec<i64>,
}

/// The export in progress.
#[derive(Resource)]
pub struct FeatureExport {
    spec: FeatureSpec,
    options: ExportOptions,
    days: u32,
    partial: Option<Table>,
    /// The spend labels, a line per row of `partial`, in its order.
    spend: Option<Table>,
    pending: VecDeque<Pending>,
    minor_units: u8,
    batch: FeatureBatch<i64>,
}

impl FeatureExport {
    /// Starts an export into `dir` for a run of `days` days.
    pub fn create(
        dir: &OutputDir,
        spec: FeatureSpec,
        options: ExportOptions,
        days: u32,
        minor_units: u8,
    ) -> Result<Self, OutputError> {
        let mut header = vec!["customer_id".to_owned(), "day".to_owned()];
        header.extend(spec.features().iter().map(|f| f.name()));
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        Ok(Self {
            spec,
            options,
            days,
            partial: Some(Table::create(dir, PARTIAL_FILE, &header)?),
            spend: Some(Table::create(dir, SPEND_FILE, &["spend_next"])?),
            pending: VecDeque::new(),
            minor_units,
            batch: FeatureBatch::default(),
        })
    }

    /// Whether `day` is a snapshot day with both label horizons inside the run.
    pub fn is_snapshot(&self, day: u32) -> bool {
        self.options.is_snapshot(day, self.days)
    }
}

/// Run condition: the end of a snapshot day.
pub fn snapshot_due(clock: Res<Clock>, export: Res<FeatureExport>) -> bool {
    clock.hour() == 23 && export.is_snapshot(clock.day())
}

/// Writes every active customer's features for today.
pub fn snapshot_features(
    clock: Res<Clock>,
    model: Res<crate::sim::Model>,
    mut export: ResMut<FeatureExport>,
    pool: Res<crate::sim::SimPool>,
    customers: Query<Observed>,
) {
    let day = clock.day();
    let export = &mut *export;
    let spec = &export.spec;
    let width = spec.len();
    let batch = &export.batch;
    for (ids, persona, budget, loyalty, ledger, engagement) in customers
        .contiguous_iter()
        .expect("customer components are table-stored")
    {
        pool.for_each_chunk(
            ids.len(),
            || batch.local(),
            |rows, r| {
                let columns = (
                    &persona[r.clone()],
                    &budget[r.clone()],
                    &loyalty[r.clone()],
                    &ledger[r.clone()],
                    &engagement[r.clone()],
                );
                let ledger = columns.3;
                rows.push_active(&ids[r], columns, |i| ledger[i].spent, spec, &model, day);
            },
        );
    }
    export.batch.finish(width);
    if let Some(table) = &mut export.partial {
        for (row, (agent, _)) in export.batch.keys.iter().enumerate() {
            let values = &export.batch.x[row * width..(row + 1) * width];
            let written = table.row_with(|r| {
                r.int(*agent).int(day);
                for v in values {
                    r.float32(*v);
                }
            });
            if written.is_err() {
                export.partial = None;
                break;
            }
        }
    }
    let (agents, spent) = export.batch.keys.iter().copied().unzip();
    export.pending.push_back(Pending { day, agents, spent });
}

/// Run condition: the end of a day that closes a snapshot's spend horizon.
pub fn spend_due(clock: Res<Clock>, export: Res<FeatureExport>) -> bool {
    clock.hour() == 23
        && export
            .pending
            .front()
            .is_some_and(|p| p.day + export.options.spend_horizon == clock.day())
}

/// Writes the spend labels of the snapshot whose horizon closes today: each of its
/// customers' spending now less their spending then.
pub fn label_spend(
    mut export: ResMut<FeatureExport>,
    population: Res<crate::population::Population>,
    customers: Query<(&AgentId, &Ledger)>,
) {
    let export = &mut *export;
    let Some(p) = export.pending.pop_front() else {
        return;
    };
    let mut now = vec![0i64; population.next_id as usize];
    for (id, ledger) in &customers {
        if let Some(s) = now.get_mut(id.0 as usize) {
            *s = ledger.spent;
        }
    }
    let Some(table) = &mut export.spend else {
        return;
    };
    for (agent, then) in p.agents.iter().zip(&p.spent) {
        let spent = now.get(*agent as usize).copied().unwrap_or(*then) - then;
        if table
            .row_with(|r| {
                r.money(spent, export.minor_units);
            })
            .is_err()
        {
            export.spend = None;
            break;
        }
    }
}

/// Finishes the table: joins each row's label from the customers' churn days (indexed by
/// agent id) and lists `features.csv` in the manifest.
pub fn finish_export(
    export: FeatureExport,
    churned: &[i32],
    dir: &mut OutputDir,
) -> Result<(), OutputError> {
    let partial_path = dir.path(PARTIAL_FILE);
    let Some(partial) = export.partial else {
        return Err(io_at(&partial_path)(std::io::Error::other(
            "writing the feature snapshots failed",
        )));
    };
    partial.finish_unlisted().map_err(io_at(&partial_path))?;
    let spend_path = dir.path(SPEND_FILE);
    let (Some(spend), true) = (export.spend, export.pending.is_empty()) else {
        return Err(io_at(&spend_path)(std::io::Error::other(
            "writing the spend labels failed",
        )));
    };
    spend.finish_unlisted().map_err(io_at(&spend_path))?;
    let reader = BufReader::new(std::fs::File::open(&partial_path).map_err(io_at(&partial_path))?);
    let mut lines = reader.lines();
    let mut spends =
        BufReader::new(std::fs::File::open(&spend_path).map_err(io_at(&spend_path))?).lines();
    // The spend file's header.
    spends.next().transpose().map_err(io_at(&spend_path))?;
    let header = lines
        .next()
        .transpose()
        .map_err(io_at(&partial_path))?
        .unwrap_or_default();
    let mut columns: Vec<String> = header.split(',').map(str::to_owned).collect();
    columns.push("spend_next".to_owned());
    columns.push("label".to_owned());
    let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
    let mut table = Table::create(dir, FEATURES_FILE, &columns)?;
    let out_path = dir.path(FEATURES_FILE);
    let horizon = export.options.horizon as i32;
    for line in lines {
        let line = line.map_err(io_at(&partial_path))?;
        let mut fields = line.splitn(3, ',');
        let agent: usize = fields
            .next()
            .and_then(|f| f.parse().ok())
            .unwrap_or(usize::MAX);
        let day: i32 = fields
            .next()
            .and_then(|f| f.parse().ok())
            .unwrap_or(i32::MAX);
        let active = i32::from(Engagement::ACTIVE);
        let churn_day = churned.get(agent).copied().unwrap_or(active);
        let label = churn_day != active && churn_day > day && churn_day <= day + horizon;
        let spend = spends
            .next()
            .transpose()
            .map_err(io_at(&spend_path))?
            .ok_or_else(|| {
                io_at(&spend_path)(std::io::Error::other(
                    "fewer spend labels than feature rows",
                ))
            })?;
        table
            .row_with(|r| {
                r.text(line.as_bytes())
                    .text(spend.as_bytes())
                    .int(u8::from(label));
            })
            .map_err(io_at(&out_path))?;
    }
    table.finish(dir)?;
    // Kept until the folder is finished: a checkpoint taken before still needs them.
    dir.remove_at_finish(PARTIAL_FILE);
    dir.remove_at_finish(SPEND_FILE);
    Ok(())
}

/// The churn training table (`--features`): snapshots during the run into the
/// [`OutputDir`] resource, labels joined at the finish.
pub struct FeatureExportPlugin(pub ExportOptions);

impl Plugin for FeatureExportPlugin {
    fn name(&self) -> &str {
        "feature_export"
    }

    fn build(&self, sim: &mut SimBuilder) -> crate::plugin::Result {
        let personas: Vec<String> = sim
            .scenario
            .personas
            .iter()
            .map(|p| p.name.clone())
            .collect();
        let dir = sim
            .world
            .get_resource::<OutputDir>()
            .ok_or("the feature export needs an output folder (an `OutputDir` resource)")?;
        let export = FeatureExport::create(
            dir,
            FeatureSpec::all(&personas),
            self.0,
            sim.scenario.days,
            sim.scenario.money.minor_units,
        )?;
        sim.world.insert_resource(export);
        sim.schedule.add_systems(
            (
                label_spend.run_if(spend_due),
                snapshot_features.run_if(snapshot_due),
            )
                .chain()
                .in_set(SimSet::Churn)
                .after(crate::systems::attrition::draw_attrition),
        );
        Ok(())
    }

    fn save(
        &self,
        world: &mut World,
        state: &mut crate::checkpoint::State,
    ) -> crate::plugin::Result {
        let mut export = world.resource_mut::<FeatureExport>();
        let partial = export
            .partial
            .as_mut()
            .ok_or("writing the feature snapshots failed")?;
        state.put("partial", &partial.save()?)?;
        let spend = export
            .spend
            .as_mut()
            .ok_or("writing the spend labels failed")?;
        state.put("spend", &spend.save()?)?;
        state.put("pending", &export.pending)
    }

    fn restore(
        &self,
        world: &mut World,
        state: &crate::checkpoint::State,
    ) -> crate::plugin::Result {
        let dir = world.resource::<OutputDir>();
        let table = Table::resume(dir, &state.get("partial")?)?;
        let spend = Table::resume(dir, &state.get("spend")?)?;
        let mut export = world.resource_mut::<FeatureExport>();
        export.partial = Some(table);
        export.spend = Some(spend);
        export.pending = state.get("pending")?;
        Ok(())
    }

    fn finish(&self, world: &mut World) -> crate::plugin::Result {
        let Some(export) = world.remove_resource::<FeatureExport>() else {
            return Ok(());
        };
        let ids = world.resource::<crate::population::Population>().next_id;
        let mut churned = vec![i32::from(Engagement::ACTIVE); ids as usize];
        let mut q = world.query::<(&AgentId, &Engagement)>();
        for (id, e) in q.iter(world) {
            churned[id.0 as usize] = e.churned.into();
        }
        let mut dir = world.resource_mut::<OutputDir>();
        finish_export(export, &churned, &mut dir)?;
        Ok(())
    }
}
