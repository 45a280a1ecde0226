//! Churn scoring inside the schedule: once per scoring period, every active customer's
//! features are extracted in parallel, scored by the ONNX model in large batches, and the
//! scores act on the simulation.
//!
//! - `Drive`: the model's probability (churn within its label horizon) becomes the daily
//!   hazard `1 - (1 - p)^(1 / horizon)`, drawn per customer; the behaviour model's own
//!   attrition steps aside.
//! - `Retain`: the behaviour model keeps deciding churn; the model picks at-risk customers
//!   (top-k and/or above a threshold, outside a cooldown) for a retention offer that costs
//!   money and raises loyalty, so the campaign's effect on churn and revenue can be measured
//!   against a run without it, with the same seed.
//!
//! A spend model (`spend:` in `churn_model`) is scored the same way on its own cadence,
//! before churn on a day both score; each customer's latest predicted spend is kept, and a
//! retention campaign with `target: ValueLost` offers first to the highest churn probability
//! times predicted spend: the value a leaving customer takes away.
//!
//! Rows are put in customer-id order before scoring, so batches, scores and draws do not
//! depend on threads.

use std::time::{Duration, Instant};

use bevy_ecs::prelude::*;

use crate::calendar::Clock;
use crate::components::*;
use crate::ml::features::FeatureBatch;
use crate::ml::model::OnnxModel;
use crate::persona::ChurnCause;
use crate::rng::{Purpose, Stream};
use crate::scenario::{ChurnMode, ChurnModelConfig, SpendModelConfig, Target};
use crate::sim::{Model, Plugin, SimBuilder, SimSet};
use crate::systems::attrition::{ChurnBuffers, ChurnDriver, ChurnRecord, draw_attrition};
use crate::systems::observe::RetentionToday;

/// The churn model and its working buffers (reused between scorings).
#[derive(Resource)]
pub struct ChurnScorer {
    model: OnnxModel,
    config: ChurnModelConfig,
    batch: FeatureBatch<(Entity, u8)>,
    probabilities: Vec<f32>,
    /// Time spent in scoring (extraction, ONNX Runtime, effects).
    pub elapsed: Duration,
    /// Rows scored.
    pub rows_scored: u64,
}

impl ChurnScorer {
    /// Wraps a loaded model.
    pub fn new(model: OnnxModel, config: ChurnModelConfig) -> Self {
        Self {
            model,
            config,
            batch: FeatureBatch::default(),
            probabilities: Vec::new(),
            elapsed: Duration::ZERO,
            rows_scored: 0,
        }
    }
}

/// The spend model, its buffers, and each customer's latest predicted spend.
#[derive(Resource)]
pub struct SpendScorer {
    model: OnnxModel,
    config: SpendModelConfig,
    batch: FeatureBatch<()>,
    predictions: Vec<f32>,
    /// The latest predicted spend over the model's horizon, by customer id (0 for a
    /// customer not scored yet), in the scenario's currency.
    pub by_agent: Vec<f32>,
    /// Time spent in scoring.
    pub elapsed: Duration,
    /// Rows scored.
    pub rows_scored: u64,
}

/// Run condition: the end of a spend scoring day.
pub fn spend_scoring_due(clock: Res<Clock>, scorer: Res<SpendScorer>) -> bool {
    scores_today(&clock, scorer.config.every_days)
}

/// Whether a model scoring every `every_days` days scores at the end of this hour.
fn scores_today(clock: &Clock, every_days: u32) -> bool {
    clock.hour() == 23 && (clock.day() + 1).is_multiple_of(every_days)
}

/// Extracts every active customer's features in parallel into `batch`, in customer-id
/// order, each row keyed by `key(chunk's columns, row)`.
fn extract<'a, K: Send + Sync + Copy>(
    batch: &mut FeatureBatch<K>,
    features: &crate::ml::features::FeatureSpec,
    sim_model: &Model,
    day: u32,
    pool: &crate::sim::SimPool,
    chunks: impl Iterator<
        Item = (
            &'a [Entity],
            &'a [AgentId],
            crate::ml::features::Columns<'a>,
        ),
    >,
    key: impl Fn(&[Entity], &[Persona], usize) -> K + Sync,
) {
    let width = features.len();
    for (entities, ids, columns) in chunks {
        let shared = &*batch;
        pool.for_each_chunk(
            ids.len(),
            || shared.local(),
            |rows, r| {
                let (persona, budget, loyalty, ledger, engagement) = columns;
                let (entities, persona) = (&entities[r.clone()], &persona[r.clone()]);
                let columns = (
                    persona,
                    &budget[r.clone()],
                    &loyalty[r.clone()],
                    &ledger[r.clone()],
                    &engagement[r.clone()],
                );
                let key = |i: usize| key(entities, persona, i);
                rows.push_active(&ids[r], columns, key, features, sim_model, day);
            },
        );
    }
    batch.finish(width);
}

/// Drift monitoring of the models that keep a training reference: the thresholds, the
/// `drift` table, and the days each model's inputs or scores drifted.
#[derive(Resource)]
pub struct DriftMonitor {
    thresholds: crate::ml::drift::Thresholds,
    table: crate::tables::TableId,
    /// Every scoring's figures, for `drift.json` and the report.
    pub scorings: Vec<crate::ml::drift::Scoring>,
    /// Time spent measuring drift.
    pub elapsed: Duration,
    /// Each model's columns in `daily_metrics`.
    daily: Vec<DriftColumns>,
}

/// A model's drift columns in `daily_metrics`: its scores' PSI and its drifted features on
/// the days it scores.
struct DriftColumns {
    model: &'static str,
    psi: crate::tables::DailyColumn,
    drifted: crate::tables::DailyColumn,
}

/// At the end of a scoring day: each model's drift of the day into `daily_metrics` (the
/// same figures in every persona's row; the model scores all customers together).
pub fn report_drift(
    clock: Res<Clock>,
    monitor: Res<DriftMonitor>,
    mut report: ResMut<crate::tables::DailyReport>,
) {
    let today = clock.date();
    for s in monitor
        .scorings
        .iter()
        .rev()
        .take_while(|s| s.date == today)
    {
        let Some(c) = monitor.daily.iter().find(|c| c.model == s.model) else {
            continue;
        };
        let psi = s
            .figures
            .iter()
            .find(|(f, _, _)| f == "score")
            .map_or(0.0, |(_, d, _)| d.psi);
        let drifted = s
            .figures
            .iter()
            .filter(|(f, _, past)| *past && f != "score")
            .count();
        for p in 0..report.personas() {
            report.set(c.psi, p, psi);
            report.add_to(c.drifted, p, drifted as i64);
        }
    }
}

/// The `drift` table.
fn drift_table() -> crate::output::schema::Table {
    use crate::output::schema::{Column, Kind, Table};
    let col = Column::new;
    Table::new(
        "drift",
        "model, scoring day and feature (and the scores, as `score`)",
        &[
            col("date", Kind::Date, "The scoring day."),
            col("model", Kind::Name8, "The model: churn or spend."),
            col(
                "feature",
                Kind::Name16,
                "A feature of the model, or `score` for its scores.",
            ),
            col(
                "psi",
                Kind::Float,
                "Population stability index against the training reference.",
            ),
            col(
                "ks",
                Kind::Float,
                "Kolmogorov-Smirnov statistic against the training reference.",
            ),
            col(
                "js",
                Kind::Float,
                "Jensen-Shannon distance against the training reference.",
            ),
            col(
                "drifted",
                Kind::Bool,
                "Whether a figure crossed its threshold.",
            ),
        ],
    )
}

/// Measures today's drift of a model's features (the rows of `x`) and scores from its
/// training reference, one feature per worker, writes a row per feature to the `drift`
/// table, and logs the scoring as a drift event when the score drifted or the share of
/// drifted features reached the threshold's. Returns the time it took (scoring's own time
/// leaves it out).
#[expect(
    clippy::too_many_arguments,
    reason = "what was scored and where its drift goes"
)]
fn monitor(
    what: &str,
    model: &OnnxModel,
    x: &[f32],
    scores: &[f32],
    date: chrono::NaiveDate,
    pool: &crate::sim::SimPool,
    drift: Option<&mut DriftMonitor>,
    tables: Option<&mut crate::tables::PluginTables>,
) -> crate::plugin::Result<Duration> {
    use rayon::prelude::*;
    let (Some(reference), Some(monitor), Some(tables)) = (&model.spec.reference, drift, tables)
    else {
        return Ok(Duration::ZERO);
    };
    let n = scores.len();
    if n == 0 {
        return Ok(Duration::ZERO);
    }
    let started = Instant::now();
    let names = &model.spec.features;
    let width = names.len();
    let measured: Vec<crate::ml::drift::Drift> = pool.0.install(|| {
        (0..=width)
            .into_par_iter()
            .map(|j| {
                let (quantiles, today): (&[f64], Vec<f64>) = if j == width {
                    (
                        &reference.score,
                        scores.iter().map(|&v| f64::from(v)).collect(),
                    )
                } else {
                    let column = (0..n).map(|i| f64::from(x[i * width + j])).collect();
                    (&reference.features[&names[j]], column)
                };
                crate::ml::drift::drift(quantiles, &today)
            })
            .collect()
    });
    let t = monitor.thresholds;
    let mut drifted = Vec::new();
    let mut figures = Vec::with_capacity(measured.len());
    for (j, d) in measured.iter().enumerate() {
        let name = names.get(j).map_or("score", String::as_str);
        let flag = t.drifted(d);
        figures.push((name.to_owned(), *d, flag));
        if flag {
            drifted.push(name.to_owned());
        }
        use crate::tables::Value;
        tables.push(
            monitor.table,
            vec![
                Value::D(date),
                Value::S(what.to_owned()),
                Value::S(name.to_owned()),
                Value::F(d.psi),
                Value::F(d.ks),
                Value::F(d.js),
                Value::B(flag),
            ],
        )?;
    }
    let features = drifted.iter().filter(|f| *f != "score").count();
    let score = drifted.iter().any(|f| f == "score");
    let event = score || features as f64 >= t.share * width as f64;
    monitor.scorings.push(crate::ml::drift::Scoring {
        date,
        model: what.to_owned(),
        rows: n as u64,
        figures,
        drifted: event,
    });
    if event {
        // Info, not a warning: the run's summary and report say it too, and a scenario
        // whose world moved from its model's would print it at every scoring.
        tracing::info!(
            model = what,
            %date,
            drifted = drifted.join(","),
            "drift: {what} model's inputs or scores moved from its training data"
        );
    }
    let spent = started.elapsed();
    monitor.elapsed += spent;
    Ok(spent)
}

/// Scores every active customer's spend and keeps each one's prediction.
#[expect(
    clippy::too_many_arguments,
    reason = "a system's parameters list the resources it touches"
)]
pub fn score_spend(
    clock: Res<Clock>,
    sim_model: Res<Model>,
    population: Res<crate::population::Population>,
    mut scorer: ResMut<SpendScorer>,
    pool: Res<crate::sim::SimPool>,
    mut drift: Option<ResMut<DriftMonitor>>,
    mut tables: Option<ResMut<crate::tables::PluginTables>>,
    customers: Query<(
        Entity,
        &AgentId,
        &Persona,
        &Budget,
        &Loyalty,
        &Ledger,
        &Engagement,
    )>,
) -> crate::plugin::Result {
    let started = Instant::now();
    let scorer = &mut *scorer;
    let chunks = customers
        .contiguous_iter()
        .expect("customer components are table-stored")
        .map(|(e, ids, p, b, l, g, n)| (e, ids, (p, b, l, g, n)));
    extract(
        &mut scorer.batch,
        &scorer.model.features,
        &sim_model,
        clock.day(),
        &pool,
        chunks,
        |_, _, _| (),
    );
    scorer.predictions.clear();
    let n = scorer.batch.keys.len();
    scorer
        .model
        .score(&scorer.batch.x, n, &mut scorer.predictions)
        .map_err(|e| ScoringError {
            date: clock.date(),
            message: e.to_string(),
        })?;
    scorer.by_agent.resize(population.next_id as usize, 0.0);
    for (&(agent, ()), &v) in scorer.batch.keys.iter().zip(&scorer.predictions) {
        // Kept finite, so that probability times spend orders customers.
        scorer.by_agent[agent as usize] = v.min(f32::MAX);
    }
    let drifting = monitor(
        "spend",
        &scorer.model,
        &scorer.batch.x,
        &scorer.predictions,
        clock.date(),
        &pool,
        drift.as_deref_mut(),
        tables.as_deref_mut(),
    )?;
    scorer.rows_scored += n as u64;
    scorer.elapsed += started.elapsed() - drifting;
    Ok(())
}

/// Run condition: the end of a scoring day.
pub fn scoring_due(clock: Res<Clock>, scorer: Res<ChurnScorer>) -> bool {
    scores_today(&clock, scorer.config.every_days)
}

/// The daily hazard equivalent to a probability `p` of churning within `horizon` days.
#[inline]
pub fn daily_hazard(p: f32, horizon: u32) -> f32 {
    1.0 - (1.0 - p.clamp(0.0, 1.0)).powf(1.0 / horizon.max(1) as f32)
}

/// A scoring failed (ONNX Runtime's error, or scores that are not probabilities).
#[derive(Debug, thiserror::Error)]
#[error("churn scoring failed on {date}: {message}")]
pub struct ScoringError {
    /// The day.
    pub date: chrono::NaiveDate,
    /// What went wrong.
    pub message: String,
}

/// Scores every active customer and applies the mode's effect.
#[expect(
    clippy::too_many_arguments,
    reason = "a system's parameters list the resources it touches"
)]
pub fn score_churn(
    clock: Res<Clock>,
    sim_model: Res<Model>,
    mut scorer: ResMut<ChurnScorer>,
    spend: Option<Res<SpendScorer>>,
    (mut drift, mut tables): (
        Option<ResMut<DriftMonitor>>,
        Option<ResMut<crate::tables::PluginTables>>,
    ),
    buffers: Res<ChurnBuffers>,
    mut retention: ResMut<RetentionToday>,
    pool: Res<crate::sim::SimPool>,
    mut customers: Query<(
        Entity,
        &AgentId,
        &Persona,
        &Budget,
        &mut Loyalty,
        &Ledger,
        &mut Engagement,
    )>,
) -> crate::plugin::Result {
    let started = Instant::now();
    let day = clock.day();
    let scorer = &mut *scorer;
    let chunks = customers
        .contiguous_iter()
        .expect("customer components are table-stored")
        .map(|(e, ids, p, b, l, g, n)| (e, ids, (p, b, l, g, n)));
    extract(
        &mut scorer.batch,
        &scorer.model.features,
        &sim_model,
        day,
        &pool,
        chunks,
        |entities, persona, i| (entities[i], persona[i].0),
    );

    scorer.probabilities.clear();
    let n = scorer.batch.keys.len();
    scorer
        .model
        .score(&scorer.batch.x, n, &mut scorer.probabilities)
        .map_err(|e| ScoringError {
            date: clock.date(),
            message: e.to_string(),
        })?;
    scorer.rows_scored += n as u64;
    let drifting = monitor(
        "churn",
        &scorer.model,
        &scorer.batch.x,
        &scorer.probabilities,
        clock.date(),
        &pool,
        drift.as_deref_mut(),
        tables.as_deref_mut(),
    )?;

    match scorer.config.mode.clone() {
        ChurnMode::Drive => {
            let horizon = scorer.model.spec.label.horizon_days;
            let mut out = buffers.0.borrow_local_mut();
            for (&(agent, (entity, persona)), &p) in
                scorer.batch.keys.iter().zip(&scorer.probabilities)
            {
                let h = daily_hazard(p, horizon);
                let mut rng = Stream::for_agent(sim_model.seed, agent, clock.tick, Purpose::Churn);
                if !rng.chance(h) {
                    continue;
                }
                if let Ok((_, _, _, _, loyalty, _, mut engagement)) = customers.get_mut(entity) {
                    engagement.churned = crate::components::to_day(day);
                    out.push(ChurnRecord {
                        agent,
                        persona,
                        probability: h,
                        cause: ChurnCause::Model,
                        loyalty: loyalty.0,
                        days_since: engagement.days_since_purchase(day),
                    });
                }
            }
        }
        ChurnMode::Retain {
            top_k,
            threshold,
            cost_paise,
            loyalty_boost,
            cooldown_days,
            target,
        } => {
            // Candidates: above the threshold, the most to lose first (ties by customer
            // id): the churn probability, or that times the predicted spend.
            let worth: Vec<f32> = match (target, &spend) {
                (Target::ValueLost, Some(spend)) => scorer
                    .batch
                    .keys
                    .iter()
                    .zip(&scorer.probabilities)
                    .map(|(&(agent, _), &p)| {
                        p * spend.by_agent.get(agent as usize).copied().unwrap_or(0.0)
                    })
                    .collect(),
                _ => scorer.probabilities.clone(),
            };
            let mut candidates: Vec<usize> = (0..n)
                .filter(|&i| threshold.is_none_or(|t| scorer.probabilities[i] >= t))
                .collect();
            // Ties (customers the spend model has not scored yet are worth 0) go by risk,
            // then by customer id.
            let p = &scorer.probabilities;
            candidates.sort_by(|&a, &b| {
                worth[b]
                    .total_cmp(&worth[a])
                    .then(p[b].total_cmp(&p[a]))
                    .then(scorer.batch.keys[a].0.cmp(&scorer.batch.keys[b].0))
            });
            let limit = top_k.map_or(usize::MAX, |k| k as usize);
            let mut sent = 0;
            for i in candidates {
                if sent >= limit {
                    break;
                }
                let (_, (entity, persona)) = scorer.batch.keys[i];
                let Ok((_, _, _, _, mut loyalty, _, mut engagement)) = customers.get_mut(entity)
                else {
                    continue;
                };
                if engagement.last_offer != Engagement::NEVER_OFFERED
                    && i64::from(day) - i64::from(engagement.last_offer) < i64::from(cooldown_days)
                {
                    continue;
                }
                engagement.last_offer = crate::components::to_day(day);
                loyalty.0 += loyalty_boost * (1.0 - loyalty.0);
                retention.offers[usize::from(persona)] += 1;
                retention.cost_paise[usize::from(persona)] += cost_paise;
                sent += 1;
            }
        }
    }
    scorer.elapsed += started.elapsed() - drifting;
    Ok(())
}

/// The churn-model behaviour (`churn_model: ...` in a scenario): scores inside the
/// schedule. The model is loaded and checked when the plugin is made, so a bad model is
/// refused before an output folder exists.
pub struct ChurnModelPlugin {
    config: ChurnModelConfig,
    /// Moved into the [`ChurnScorer`] resource when built.
    model: std::sync::Mutex<Option<OnnxModel>>,
    /// Moved into the [`SpendScorer`] resource when built.
    spend: std::sync::Mutex<Option<OnnxModel>>,
}

impl ChurnModelPlugin {
    /// Loads and checks the scenario's model (`ort_lib`: the ONNX Runtime library to use,
    /// else `ORT_DYLIB_PATH`, the cache, or a fetch).
    pub fn load(
        config: &ChurnModelConfig,
        personas: &[String],
        ort_lib: Option<&std::path::Path>,
    ) -> Result<Self, crate::ml::model::ModelError> {
        use crate::ml::model::{Kind, ModelError};
        let load = |path: &std::path::Path, kind: Kind| {
            let model = OnnxModel::load(path, personas, ort_lib)?;
            if model.spec.kind != kind {
                return Err(ModelError::Spec {
                    path: path.to_path_buf(),
                    reason: format!("a {kind:?} model is wanted here, the card says {:?}", model.spec.kind),
                    hint: "churn_model's spec is a churn classifier (churn.json), its spend: a spend regressor (spend.json)".into(),
                });
            }
            Ok(model)
        };
        let spend = match &config.spend {
            Some(s) => Some(load(&s.spec, Kind::Regression)?),
            None => None,
        };
        Ok(Self {
            config: config.clone(),
            model: std::sync::Mutex::new(Some(load(&config.spec, Kind::Classification)?)),
            spend: std::sync::Mutex::new(spend),
        })
    }
}

impl Plugin for ChurnModelPlugin {
    fn name(&self) -> &str {
        "churn_model"
    }

    fn build(&self, sim: &mut SimBuilder) -> crate::plugin::Result {
        let model = self
            .model
            .lock()
            .map_err(|_| "the churn model's lock was poisoned")?
            .take()
            .ok_or("the churn model plugin was built twice")?;
        let churn_referenced = model.spec.reference.is_some();
        sim.world
            .insert_resource(ChurnScorer::new(model, self.config.clone()));
        if self.config.mode == ChurnMode::Drive {
            sim.world.insert_resource(ChurnDriver::Model);
        }
        let spend = self
            .spend
            .lock()
            .map_err(|_| "the spend model's lock was poisoned")?
            .take();
        let referenced =
            churn_referenced || spend.as_ref().is_some_and(|s| s.spec.reference.is_some());
        if referenced {
            use crate::output::schema::{Column, Kind};
            let table = sim.add_table(drift_table())?;
            let mut daily = Vec::new();
            let spend_referenced = spend.as_ref().is_some_and(|s| s.spec.reference.is_some());
            for (model, has) in [("churn", churn_referenced), ("spend", spend_referenced)] {
                if !has {
                    continue;
                }
                let psi = sim.daily_column(Column::new(
                    if model == "churn" { "churn_score_psi" } else { "spend_score_psi" },
                    Kind::Float,
                    "On a day the model scores: its scores' population stability index against its training reference (the same in every persona's row); 0 on other days.",
                ))?;
                let drifted = sim.daily_column(Column::new(
                    if model == "churn" { "churn_drifted_features" } else { "spend_drifted_features" },
                    Kind::U64,
                    "On a day the model scores: its features past a drift threshold (the same in every persona's row); 0 on other days.",
                ))?;
                daily.push(DriftColumns {
                    model,
                    psi,
                    drifted,
                });
            }
            sim.world.insert_resource(DriftMonitor {
                thresholds: self.config.drift,
                table,
                scorings: Vec::new(),
                elapsed: Duration::ZERO,
                daily,
            });
            sim.schedule.add_systems(
                report_drift
                    .run_if(|clock: Res<Clock>| clock.hour() == 23)
                    .in_set(SimSet::Churn)
                    .after(score_churn),
            );
        }
        if let (Some(model), Some(config)) = (spend, &self.config.spend) {
            sim.world.insert_resource(SpendScorer {
                model,
                config: config.clone(),
                batch: FeatureBatch::default(),
                predictions: Vec::new(),
                by_agent: Vec::new(),
                elapsed: Duration::ZERO,
                rows_scored: 0,
            });
            sim.schedule.add_systems(
                score_spend
                    .run_if(spend_scoring_due)
                    .in_set(SimSet::Churn)
                    .before(score_churn),
            );
        }
        sim.schedule.add_systems(
            score_churn
                .run_if(scoring_due)
                .in_set(SimSet::Churn)
                .before(draw_attrition),
        );
        Ok(())
    }

    fn save(
        &self,
        world: &mut World,
        state: &mut crate::checkpoint::State,
    ) -> crate::plugin::Result {
        if let Some(spend) = world.get_resource::<SpendScorer>() {
            state.put_column("spend", &spend.by_agent);
        }
        if let Some(drift) = world.get_resource::<DriftMonitor>() {
            state.put("drift", &drift.scorings)?;
        }
        Ok(())
    }

    /// Writes `drift.json`: the thresholds and every scoring's figures.
    fn finish(&self, world: &mut World) -> crate::plugin::Result {
        let Some(drift) = world.get_resource::<DriftMonitor>() else {
            return Ok(());
        };
        let json = serde_json::to_vec_pretty(&serde_json::json!({
            "thresholds": drift.thresholds,
            "scorings": drift.scorings,
        }))?;
        if let Some(mut dir) = world.get_resource_mut::<crate::output::OutputDir>() {
            dir.write_file(crate::ml::drift::DRIFT_FILE, &json)?;
        }
        Ok(())
    }

    fn restore(
        &self,
        world: &mut World,
        state: &crate::checkpoint::State,
    ) -> crate::plugin::Result {
        if let Some(mut spend) = world.get_resource_mut::<SpendScorer>() {
            spend.by_agent = state.get_column("spend")?;
        }
        if let Some(mut drift) = world.get_resource_mut::<DriftMonitor>() {
            drift.scorings = state.get("drift")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daily_hazard_compounds_back_to_the_horizon_probability() {
        for p in [0.0f32, 0.01, 0.2, 0.9] {
            let h = daily_hazard(p, 14);
            let back = 1.0 - (1.0 - h).powi(14);
            assert!((back - p).abs() < 1e-5, "{p} -> {h} -> {back}");
        }
        assert_eq!(daily_hazard(1.0, 14), 1.0);
    }
}
