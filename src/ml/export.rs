//! The training table for churn models: every active customer's features at snapshot days,
//! with an honest forward-looking label — 1 if the customer churned within the next
//! `horizon` days, 0 otherwise.
//!
//! Features are computed at the end of the snapshot day from state at that moment (no
//! leakage); only snapshots whose whole horizon lies inside the run are written (no censored
//! labels). Rows stream to a partial file during the run; at the end the labels are joined in
//! from each customer's churn day, read back in one pass.

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

/// When to take snapshots and how far ahead the label looks.
#[derive(Debug, Clone, Copy)]
pub struct ExportOptions {
    /// A snapshot at the end of every `every`-th day.
    pub every: u32,
    /// Label: churned within this many days after the snapshot.
    pub horizon: u32,
}

/// The export in progress.
#[derive(Resource)]
pub struct FeatureExport {
    spec: FeatureSpec,
    options: ExportOptions,
    days: u32,
    partial: Option<Table>,
    batch: FeatureBatch<()>,
}

impl FeatureExport {
    /// Starts an export into `dir` for a run of `days` days.
    pub fn create(
        dir: &OutputDir,
        spec: FeatureSpec,
        options: ExportOptions,
        days: u32,
    ) -> Result<Self, OutputError> {
        let mut header = vec!["customer_id".to_owned(), "day".to_owned()];
        header.extend(spec.features().iter().map(|f| f.name()));
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        Ok(Self {
            spec,
            options,
            days,
            partial: Some(Table::create(dir, PARTIAL_FILE, &header)?),
            batch: FeatureBatch::default(),
        })
    }

    /// Whether `day` is a snapshot day with its whole label horizon inside the run.
    pub fn is_snapshot(&self, day: u32) -> bool {
        (day + 1).is_multiple_of(self.options.every.max(1))
            && day + self.options.horizon < self.days
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
                rows.push_active(&ids[r], columns, |_| (), spec, &model, day);
            },
        );
    }
    export.batch.finish(width);
    if let Some(table) = &mut export.partial {
        for (row, &(agent, ())) in export.batch.keys.iter().enumerate() {
            let values = &export.batch.x[row * width..(row + 1) * width];
            let written = table.row_with(|r| {
                r.int(agent).int(day);
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
    let reader = BufReader::new(std::fs::File::open(&partial_path).map_err(io_at(&partial_path))?);
    let mut lines = reader.lines();
    let header = lines
        .next()
        .transpose()
        .map_err(io_at(&partial_path))?
        .unwrap_or_default();
    let mut columns: Vec<String> = header.split(',').map(str::to_owned).collect();
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
        table
            .row_with(|r| {
                r.text(line.as_bytes()).int(u8::from(label));
            })
            .map_err(io_at(&out_path))?;
    }
    table.finish(dir)?;
    // Kept until the folder is finished: a checkpoint taken before still needs it.
    dir.remove_at_finish(PARTIAL_FILE);
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
        let export =
            FeatureExport::create(dir, FeatureSpec::all(&personas), self.0, sim.scenario.days)?;
        sim.world.insert_resource(export);
        sim.schedule.add_systems(
            snapshot_features
                .run_if(snapshot_due)
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
        state.put("partial", &partial.save()?)
    }

    fn restore(
        &self,
        world: &mut World,
        state: &crate::checkpoint::State,
    ) -> crate::plugin::Result {
        let mark = state.get("partial")?;
        let table = Table::resume(world.resource::<OutputDir>(), &mark)?;
        world.resource_mut::<FeatureExport>().partial = Some(table);
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
