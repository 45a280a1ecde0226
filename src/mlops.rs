//! `bazaar mlops`: the retraining loop, so that a model's decay in a changing world is
//! caught, answered and proven. A scenario runs with the registry's champion and exports
//! its feature table; if the champion's inputs drifted from its training reference, a
//! challenger is trained on the snapshots taken since (scikit-learn, in a Python
//! environment Bazaar makes itself), registered, and run against the champion as an A/B
//! experiment with common random numbers in fresh worlds (other seeds); it becomes the
//! champion only if its gain's confidence interval excludes zero. Every step is a run on the
//! MLflow tracking server under one parent run, and `mlops.json` keeps the whole story.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde::Serialize;

use crate::experiment::{Design, Difference};
use crate::ml::drift::{DRIFT_FILE, DriftFile, Scoring};
use crate::ml::export::{ExportOptions, FEATURES_FILE};
use crate::mlflow::{Client, Metric, MlflowError, Run, registry};
use crate::run::RunOptions;
use crate::scenario::{Overrides, Scenario};

/// The file that records a loop.
pub const MLOPS_FILE: &str = "mlops.json";

/// The training script and the reference helper it imports, carried in the binary so the
/// loop runs wherever Bazaar does.
const TRAIN_SCRIPT: &str = include_str!("../models/train_churn.py");
const REFERENCE_SCRIPT: &str = include_str!("../models/reference.py");

/// The packages the training script needs, pinned to the versions the committed models
/// were made with, so a challenger is reproducible.
pub const PACKAGES: [&str; 6] = [
    "scikit-learn==1.9.1",
    "skl2onnx==1.20.0",
    "onnx==1.23.2",
    "onnxruntime==1.32.0",
    "numpy==2.4.6",
    "pandas==3.1.1",
];

/// The import that says an environment has them.
const READY: &str = "import sklearn, skl2onnx, onnx, onnxruntime, numpy, pandas";

/// Metrics where less is better; on every other metric more is.
const LOWER_IS_BETTER: [&str; 3] = ["churned", "retention_cost", "cost_of_goods"];

/// What the loop is asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// The scenario.
    pub scenario: PathBuf,
    /// Its scale, if changed.
    pub scale: Option<f64>,
    /// The output folder (`out/{scenario}-mlops` when not given).
    pub out: Option<PathBuf>,
    /// The registered model retrained.
    pub model: String,
    /// The experiment's metric judging champion against challenger.
    pub metric: String,
    /// Guardrail metrics: the challenger must not be significantly worse on any.
    pub guards: Vec<String>,
    /// Replications of the experiment.
    pub replications: u32,
    /// Confidence level of its interval.
    pub confidence: f64,
    /// Worker threads.
    pub threads: usize,
    /// A Python with [`PACKAGES`] to train with, instead of the environment Bazaar keeps.
    pub python: Option<PathBuf>,
    /// Days between feature snapshots.
    pub snapshot_every: u32,
    /// Print what each step does.
    pub progress: bool,
}

/// Why the loop stopped.
#[derive(Debug, thiserror::Error)]
pub enum MlopsError {
    /// The input is at fault (exit code 2).
    #[error("{0}")]
    Input(String),
    /// A step failed (exit code 1).
    #[error("{0}")]
    Failed(String),
}

impl MlopsError {
    /// Whether the input is at fault rather than a step.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, Self::Input(_))
    }
}

impl From<MlflowError> for MlopsError {
    fn from(e: MlflowError) -> Self {
        Self::Failed(e.to_string())
    }
}

/// The drift the loop found in the champion's scorings.
#[derive(Debug, Clone, Serialize)]
pub struct Detected {
    /// The first drifted scoring's date.
    pub date: chrono::NaiveDate,
    /// Its day of the run, from 0.
    pub day: u32,
    /// The features (and `score`) past a threshold at it.
    pub features: Vec<String>,
    /// Drifted scorings of the run, of all.
    pub drifted_scorings: usize,
    /// Scorings of the run.
    pub scorings: usize,
}

/// The challenger.
#[derive(Debug, Clone, Serialize)]
pub struct Challenger {
    /// Its registered version.
    pub version: String,
    /// Training rows (snapshots from the drift on).
    pub rows: u64,
    /// Held-out AUC.
    pub auc: Option<f64>,
    /// The champion's held-out AUC, on its own training data.
    pub champion_auc: Option<f64>,
}

/// Champion against challenger.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// The metric.
    pub metric: String,
    /// Whether less of it is better.
    pub lower_is_better: bool,
    /// The challenger's gain over the champion (positive: better), mean over replications.
    pub gain: f64,
    /// Its confidence interval.
    pub interval: Option<(f64, f64)>,
    /// The champion's mean.
    pub champion: f64,
    /// The challenger's mean.
    pub challenger: f64,
    /// Replications.
    pub replications: u32,
    /// The first day the arms differ.
    pub fork: chrono::NaiveDate,
}

/// What the loop decided.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// No drift: the champion stays, nothing was trained.
    NoDrift {
        /// Why.
        reason: String,
    },
    /// The challenger is the champion now.
    Promoted {
        /// Why.
        reason: String,
    },
    /// The champion stays.
    Kept {
        /// Why.
        reason: String,
    },
}

impl Decision {
    /// Its reason.
    pub fn reason(&self) -> &str {
        match self {
            Self::NoDrift { reason } | Self::Promoted { reason } | Self::Kept { reason } => reason,
        }
    }
}

/// A loop's record (`mlops.json`).
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The scenario's name.
    pub scenario: String,
    /// The registered model.
    pub model: String,
    /// The champion's version when the loop began.
    pub champion: String,
    /// The drift found, if any.
    pub drift: Option<Detected>,
    /// The challenger, if one was trained.
    pub challenger: Option<Challenger>,
    /// Champion against challenger, if they were compared.
    pub comparison: Option<Comparison>,
    /// The same on each guardrail metric.
    pub guards: Vec<Comparison>,
    /// What was decided.
    pub decision: Decision,
    /// The MLflow parent run.
    pub mlflow_run: String,
    /// Wall seconds of each step.
    pub timings: Vec<(String, f64)>,
}

/// Wall time per step.
struct Laps {
    at: Instant,
    timings: Vec<(String, f64)>,
    progress: bool,
}

impl Laps {
    fn lap(&mut self, what: &str) {
        let secs = self.at.elapsed().as_secs_f64();
        if self.progress {
            eprintln!("mlops: {what} done in {secs:.1} s");
        }
        self.timings.push((what.to_owned(), secs));
        self.at = Instant::now();
    }
}

/// The default output folder of a scenario's loop.
pub fn default_out(scenario: &Scenario) -> PathBuf {
    PathBuf::from(format!("out/{}-mlops", scenario.name))
}

/// Loads the scenario and checks it can go round the loop; its output folder.
pub fn prepare(options: &Options) -> Result<(Scenario, PathBuf), MlopsError> {
    let mut scenario = Scenario::load(&options.scenario, &crate::sim::registry())
        .map_err(|e| MlopsError::Input(e.to_string()))?;
    scenario
        .apply(Overrides {
            scale: options.scale,
            ..Default::default()
        })
        .map_err(MlopsError::Input)?;
    if scenario.churn_model.is_none() {
        return Err(MlopsError::Input(format!(
            "{}: the scenario scores no churn model, so there is nothing to retrain\n  hint: add churn_model: (spec: \"../models/churn.json\", every_days: 7, mode: Retain(...)) as scenarios/drift.ron does",
            options.scenario.display()
        )));
    }
    if options.model.is_empty() || options.model.contains(['/', '@']) {
        return Err(MlopsError::Input(format!(
            "--model `{}` is not a registered model's name (churn)",
            options.model
        )));
    }
    let costed = scenario.personas.iter().any(|p| !p.unit_cost.is_empty());
    for (flag, metric) in std::iter::once(("--metric", &options.metric))
        .chain(options.guards.iter().map(|g| ("--guard", g)))
    {
        if !crate::experiment::METRICS.iter().any(|(m, _)| m == metric) {
            let known: Vec<&str> = crate::experiment::METRICS.iter().map(|(m, _)| *m).collect();
            return Err(MlopsError::Input(format!(
                "{flag} `{metric}` is not one an experiment measures: {}",
                known.join(", ")
            )));
        }
        if !costed && crate::experiment::COSTED.contains(&metric.as_str()) {
            return Err(MlopsError::Input(format!(
                "{flag} `{metric}` needs a cost of goods, and the scenario's catalog states no margins\n  hint: give each category a `margin` (catalogs/india.ron has them), or judge on churned or revenue"
            )));
        }
    }
    if options.replications < 2 {
        return Err(MlopsError::Input(
            "--replications must be 2 or more: the decision needs a confidence interval".into(),
        ));
    }
    if !(options.confidence > 0.0 && options.confidence < 1.0) {
        return Err(MlopsError::Input(format!(
            "--confidence {} is not between 0 and 1",
            options.confidence
        )));
    }
    if options.snapshot_every == 0 {
        return Err(MlopsError::Input(
            "--snapshot-every must be 1 or more".into(),
        ));
    }
    let out = options
        .out
        .clone()
        .unwrap_or_else(|| default_out(&scenario));
    crate::calibrate::check_out(&out).map_err(|e| MlopsError::Input(e.to_string()))?;
    Ok((scenario, out))
}

/// Runs the loop on `client`'s server into `out` (new, or an empty folder; written beside it
/// and put in place at the end).
pub fn run(
    options: &Options,
    mut scenario: Scenario,
    out: &Path,
    client: &Client,
) -> Result<Outcome, MlopsError> {
    let at = Instant::now();
    let champion = champion(options, &mut scenario, client)?;
    let chosen = at.elapsed().as_secs_f64();
    // The params describe what runs: the scenario with the champion's card in it.
    let mut params = crate::mlflow::params(&scenario);
    params.extend([
        ("mlops.model".to_owned(), options.model.clone()),
        (
            "mlops.champion".to_owned(),
            champion.version.version.clone(),
        ),
        ("mlops.metric".to_owned(), options.metric.clone()),
        ("mlops.guards".to_owned(), options.guards.join(",")),
        (
            "mlops.replications".to_owned(),
            options.replications.to_string(),
        ),
        (
            "mlops.confidence".to_owned(),
            options.confidence.to_string(),
        ),
        (
            "mlops.snapshot_every".to_owned(),
            options.snapshot_every.to_string(),
        ),
    ]);
    let parent = crate::mlflow::start_parent(
        client,
        &scenario.name,
        &format!("mlops {}", scenario.name),
        &params,
    )?;
    let result =
        steps(options, &scenario, out, client, &parent, champion, chosen).and_then(|outcome| {
            finish_parent(client, &parent, &outcome, out)
                .map(|()| outcome)
                .map_err(|e| {
                    MlopsError::Failed(format!(
                        "the loop is complete in {} ({}), but logging it to MLflow failed: {e}",
                        out.display(),
                        out.join(MLOPS_FILE).display()
                    ))
                })
        });
    if let Err(e) = &result {
        fail_run(client, &parent, e);
    }
    result
}

/// Ends `run` as failed, saying why (as much as a tag holds); the server may be gone too.
fn fail_run(client: &Client, run: &Run, e: &MlopsError) {
    let why: String = e.to_string().chars().take(5000).collect();
    let _ = client.tag(run, &[("bazaar.error".to_owned(), why)]);
    let _ = client.end_run(run, "FAILED");
}

/// A child run of `parent`, filled by `fill` and ended finished, or failed when `fill`
/// fails.
fn child<T>(
    client: &Client,
    parent: &Run,
    name: &str,
    fill: impl FnOnce(&Run) -> Result<T, MlopsError>,
) -> Result<T, MlopsError> {
    let run = client.start_run(
        &parent.experiment,
        name,
        &crate::mlflow::tags(),
        Some(parent),
    )?;
    match fill(&run) {
        Ok(v) => {
            client.end_run(&run, "FINISHED")?;
            Ok(v)
        }
        Err(e) => {
            fail_run(client, &run, &e);
            Err(e)
        }
    }
}

/// The parent's decision, gains with their intervals, step times and `mlops.json`.
fn finish_parent(
    client: &Client,
    parent: &Run,
    outcome: &Outcome,
    out: &Path,
) -> Result<(), MlopsError> {
    let mut metrics: Vec<Metric> = outcome
        .timings
        .iter()
        .map(|(step, secs)| Metric::summary(format!("seconds.{}", metric_key(step)), *secs))
        .collect();
    let judged = outcome
        .comparison
        .iter()
        .map(|c| ("gain".to_owned(), c))
        .chain(
            outcome
                .guards
                .iter()
                .map(|g| (format!("guard.{}.gain", g.metric), g)),
        );
    for (key, c) in judged {
        metrics.extend(Metric::with_interval(&key, c.gain, c.interval));
    }
    let tags = [
        (
            "bazaar.decision".to_owned(),
            match outcome.decision {
                Decision::NoDrift { .. } => "no drift",
                Decision::Promoted { .. } => "promoted",
                Decision::Kept { .. } => "kept",
            }
            .to_owned(),
        ),
        (
            "mlflow.note.content".to_owned(),
            outcome.decision.reason().chars().take(5000).collect(),
        ),
    ];
    client.log(parent, &[], &metrics)?;
    client.tag(parent, &tags)?;
    let path = out.join(MLOPS_FILE);
    let bytes =
        std::fs::read(&path).map_err(|e| MlopsError::Failed(format!("{}: {e}", path.display())))?;
    client.upload(parent, MLOPS_FILE, &bytes)?;
    client.end_run(parent, "FINISHED")?;
    Ok(())
}

/// The champion the loop starts from.
struct Champion {
    /// Its registered version.
    version: registry::Version,
    /// Its label's horizon.
    horizon: u32,
}

/// The registry's champion (or the scenario's own model, registered and promoted as the
/// first), fetched and put in the scenario; it must keep a training reference for drift.
fn champion(
    options: &Options,
    scenario: &mut Scenario,
    client: &Client,
) -> Result<Champion, MlopsError> {
    let version = match registry::champion(client, &options.model) {
        Ok(v) => v,
        Err(MlflowError::Api {
            status: 404 | 400, ..
        }) => {
            let card = &scenario.churn_model.as_ref().expect("checked").spec;
            check_card(card, "the scenario's model")?;
            let v = registry::register(
                client,
                &options.model,
                card,
                &format!("the model {} scores", scenario.name),
            )?;
            registry::promote(
                client,
                &options.model,
                &v.version,
                &format!(
                    "the first champion: {} had none, and scenario {} scores this model",
                    options.model, scenario.name
                ),
            )?;
            if options.progress {
                eprintln!(
                    "mlops: {} had no champion: registered the scenario's model as version {}",
                    options.model, v.version
                );
            }
            v
        }
        Err(e) => return Err(e.into()),
    };
    let card = registry::fetch_from(
        client.uri(),
        &format!("models:/{}/{}", options.model, version.version),
    )
    .map_err(MlopsError::Failed)?;
    let horizon = check_card(
        &card,
        &format!("{} version {}", options.model, version.version),
    )?;
    scenario.churn_model.as_mut().expect("checked").spec = card;
    Ok(Champion { version, horizon })
}

/// A champion's card must state its label horizon (which the exported labels share) and
/// keep a training reference (without one its drift cannot be measured); the horizon.
fn check_card(card: &Path, what: &str) -> Result<u32, MlopsError> {
    let json = read_json(card)?;
    if json["reference"].is_null() {
        return Err(MlopsError::Input(format!(
            "{what} ({}) keeps no training reference, so its drift cannot be measured\n  hint: models/train_churn.py writes one; models/reference.py adds one to a card from its training table",
            card.display()
        )));
    }
    json["label"]["horizon_days"]
        .as_u64()
        .and_then(|h| u32::try_from(h).ok())
        .filter(|&h| h > 0 && h <= crate::limits::MAX_DAYS)
        .ok_or_else(|| {
            MlopsError::Input(format!(
                "{what} ({}): the card states no usable label.horizon_days, so the loop cannot label a challenger's training rows alike",
                card.display()
            ))
        })
}

/// The loop's steps, in a work folder put in place at the end.
fn steps(
    options: &Options,
    scenario: &Scenario,
    out: &Path,
    client: &Client,
    parent: &Run,
    champion: Champion,
    chosen: f64,
) -> Result<Outcome, MlopsError> {
    let failed = |e: crate::calibrate::CalibrateError| MlopsError::Failed(e.to_string());
    let work = crate::calibrate::work_dir(out).map_err(failed)?;
    let mut laps = Laps {
        at: Instant::now(),
        timings: vec![("champion".to_owned(), chosen)],
        progress: options.progress,
    };
    let say = |what: String| {
        if options.progress {
            eprintln!("mlops: {what}");
        }
    };

    let Champion {
        version: champion,
        horizon,
    } = champion;
    // The record of a loop that stopped before training.
    let untrained = |drift: Option<Detected>, decision: Decision, laps: Laps| Outcome {
        scenario: scenario.name.clone(),
        model: options.model.clone(),
        champion: champion.version.clone(),
        drift,
        challenger: None,
        comparison: None,
        guards: Vec::new(),
        decision,
        mlflow_run: parent.id.clone(),
        timings: laps.timings,
    };
    let scoring_every = scenario.churn_model.as_ref().expect("checked").every_days;
    let champion_card = scenario.churn_model.as_ref().expect("checked").spec.clone();
    let export = ExportOptions {
        every: options.snapshot_every,
        horizon,
        spend_horizon: horizon,
    };

    // Simulate with the champion, exporting the feature table.
    say(format!(
        "simulating {} with {} version {} (features every {} days)",
        scenario.name, options.model, champion.version, options.snapshot_every
    ));
    let simulated = work.path().join("simulate");
    let mut world = scenario.clone();
    world.output.dir = simulated.clone();
    let report = crate::run::run(
        &world,
        RunOptions {
            threads: options.threads,
            progress: options.progress,
            features: Some(export),
            report: true,
            ..RunOptions::default()
        },
    )
    .map_err(|e| {
        if e.is_bad_input() {
            MlopsError::Input(e.to_string())
        } else {
            MlopsError::Failed(e.to_string())
        }
    })?;
    child(client, parent, "simulate", |run| {
        client.log(
            run,
            &[("champion_version".to_owned(), champion.version.clone())],
            &[],
        )?;
        Ok(crate::mlflow::log_folder(client, run, &report.out_dir)?)
    })?;
    laps.lap("simulate");

    // Did the champion's world move?
    let scorings = read_drift(&simulated)?;
    let detected = detect(&scorings, scenario.start);
    let stamp = chrono::Utc::now().timestamp_millis();
    let churn_scorings: Vec<&Scoring> = scorings.iter().filter(|s| s.model == "churn").collect();
    if churn_scorings.is_empty() {
        return Err(MlopsError::Input(format!(
            "{} version {} never scored in the run ({} days, scoring every {scoring_every}), so there is no drift to judge\n  hint: lengthen the scenario or score more often (`every_days`)",
            options.model, champion.version, scenario.days
        )));
    }
    let mut series = Vec::new();
    for s in &churn_scorings {
        let day = (s.date - scenario.start).num_days();
        series.push(Metric {
            key: "drifted".into(),
            value: if s.drifted { 1.0 } else { 0.0 },
            step: day,
            timestamp: stamp,
        });
        for (feature, d, _) in &s.figures {
            series.push(Metric {
                key: format!("psi.{}", metric_key(feature)),
                value: d.psi,
                step: day,
                timestamp: stamp,
            });
        }
    }
    child(client, parent, "detect drift", |run| {
        Ok(client.log(run, &[], &series)?)
    })?;
    laps.lap("detect drift");

    let Some(detected) = detected else {
        let reason = format!(
            "no drift: none of {} version {}'s {} scorings drifted from its training reference; it stays the champion",
            options.model,
            champion.version,
            churn_scorings.len()
        );
        say(reason.clone());
        return finish(
            work,
            out,
            untrained(None, Decision::NoDrift { reason }, laps),
        );
    };
    say(format!(
        "drift on {} (day {}): {}",
        detected.date,
        detected.day,
        detected.features.join(", ")
    ));
    // The arms differ from the scoring after the drifted one; the challenger learns from
    // the snapshots since whose labels fit in the run.
    let fork = detected.date + chrono::Days::new(1);
    let labelled = export.last_snapshot(scenario.days);
    let too_late = if labelled.is_none_or(|last| detected.day > last) {
        Some(format!(
            "no snapshot since then has its {horizon}-day label inside the run{}",
            labelled.map_or(String::new(), |d| format!(" (the last is day {d})"))
        ))
    } else if fork > scenario.end() - chrono::Days::new(u64::from(scoring_every)) {
        Some(format!(
            "a challenger would score no more than once before the run ends ({})",
            scenario.end()
        ))
    } else {
        None
    };
    if let Some(why) = too_late {
        let reason = format!(
            "drift from {} (day {}), too late in the run to act on: {why}; {} version {} stays the champion\n  hint: lengthen the scenario (`end`), or snapshot and score more often",
            detected.date, detected.day, options.model, champion.version
        );
        say(reason.clone());
        return finish(
            work,
            out,
            untrained(Some(detected), Decision::Kept { reason }, laps),
        );
    }

    // Train a challenger on the snapshots since the drift.
    let python = python(options.python.as_deref(), options.progress)?;
    let trained = work.path().join("challenger");
    train(
        &python,
        &simulated.join(FEATURES_FILE),
        &trained,
        horizon,
        detected.day,
        &options.model,
        &format!(
            "bazaar mlops {}: snapshots from day {} ({}) on, after drift was detected",
            options.scenario.display(),
            detected.day,
            detected.date
        ),
        scenario.seed,
    )?;
    let challenger_card = trained.join(format!("{}.json", options.model));
    // Checked as a scenario's model is, before it is registered.
    let personas: Vec<String> = scenario.personas.iter().map(|p| p.name.clone()).collect();
    crate::ml::model::OnnxModel::load(&challenger_card, &personas, None)
        .map_err(|e| MlopsError::Failed(format!("the trained challenger: {e}")))?;
    let card: serde_json::Value = read_json(&challenger_card)?;
    let champion_json: serde_json::Value = read_json(&champion_card)?;
    let auc = card["metrics_held_out"]["auc"].as_f64();
    let held_out: Vec<Metric> = ["auc", "log_loss", "brier", "base_rate"]
        .iter()
        .filter_map(|k| {
            card["metrics_held_out"][k]
                .as_f64()
                .map(|value| Metric::summary(format!("held_out.{k}"), value))
        })
        .collect();
    let rows = card["training"]["rows"].as_u64().unwrap_or(0);
    child(client, parent, "train challenger", |run| {
        client.log(
            run,
            &[
                ("since_day".to_owned(), detected.day.to_string()),
                ("rows".to_owned(), rows.to_string()),
                (
                    "algorithm".to_owned(),
                    card["algorithm"].as_str().unwrap_or_default().to_owned(),
                ),
            ],
            &held_out,
        )?;
        let bytes =
            std::fs::read(&challenger_card).map_err(|e| MlopsError::Failed(e.to_string()))?;
        Ok(client.upload(run, &format!("{}.json", options.model), &bytes)?)
    })?;
    laps.lap("train challenger");

    // Register it.
    let version = registry::register(
        client,
        &options.model,
        &challenger_card,
        &format!(
            "challenger trained by bazaar mlops on {} after drift on {}",
            scenario.name, detected.date
        ),
    )?;
    say(format!(
        "registered the challenger as {} version {}",
        options.model, version.version
    ));
    let arm_card = registry::fetch_from(
        client.uri(),
        &format!("models:/{}/{}", options.model, version.version),
    )
    .map_err(MlopsError::Failed)?;
    laps.lap("register");

    // Champion against challenger, in fresh worlds: replication r runs seed + 1 + r, none
    // the seed the challenger was trained on.
    let mut base = scenario.clone();
    base.seed = scenario.seed.wrapping_add(1);
    let mut arm = base.clone();
    arm.churn_model.as_mut().expect("checked").spec = arm_card;
    let design = Design {
        base,
        arms: vec![("challenger".to_owned(), arm)],
        fork,
        replications: options.replications,
        confidence: options.confidence,
        precision: 0.01,
    };
    say(format!(
        "champion against challenger from {fork}: {} replications",
        options.replications
    ));
    let metrics: Vec<String> = std::iter::once(options.metric.clone())
        .chain(options.guards.iter().cloned())
        .collect();
    let experiment = crate::experiment::run(&design, options.threads, options.progress)
        .and_then(|o| o.judged_on(&metrics, &design))
        .map_err(|e| MlopsError::Failed(e.to_string()))?;
    let compared = work.path().join("ab");
    crate::experiment::write(&experiment, &compared)
        .map_err(|e| MlopsError::Failed(e.to_string()))?;
    child(client, parent, "champion against challenger", |run| {
        client.log(
            run,
            &[
                ("champion_version".to_owned(), champion.version.clone()),
                ("challenger_version".to_owned(), version.version.clone()),
                ("fork".to_owned(), fork.to_string()),
            ],
            &[],
        )?;
        Ok(crate::mlflow::log_experiment(
            client,
            run,
            &experiment,
            &compared,
        )?)
    })?;
    let judged = |metric: &str| {
        experiment
            .differences
            .iter()
            .find(|d| d.arm == "challenger" && d.metric == metric)
            .map(|d| compare(d, options.replications, fork))
            .ok_or_else(|| MlopsError::Failed(format!("the experiment did not measure `{metric}`")))
    };
    let comparison = judged(&options.metric)?;
    let guards = options
        .guards
        .iter()
        .map(|g| judged(g))
        .collect::<Result<Vec<_>, _>>()?;
    laps.lap("champion against challenger");

    // Promote only on a gain whose interval excludes zero.
    let decision = decide(
        &comparison,
        &guards,
        &options.model,
        &champion.version,
        &version.version,
        &detected,
        options.confidence,
        &scenario.money,
    );
    // The champion may have moved while the loop ran (a person, another loop): the
    // challenger was judged against the one it started from.
    let now = registry::champion(client, &options.model)?.version;
    let decision = match decision {
        Decision::Promoted { .. } if now != champion.version => Decision::Kept {
            reason: format!(
                "the challenger beat version {}, but the champion moved to version {now} while the loop ran, so nothing is promoted: {}",
                champion.version,
                decision.reason()
            ),
        },
        d => d,
    };
    match &decision {
        Decision::Promoted { reason } => {
            registry::promote(client, &options.model, &version.version, reason)?;
        }
        Decision::Kept { reason } | Decision::NoDrift { reason } => {
            registry::annotate(
                client,
                &options.model,
                &version.version,
                "bazaar.kept_champion",
                reason,
            )?;
        }
    }
    say(decision.reason().to_owned());
    laps.lap("decide");
    finish(
        work,
        out,
        Outcome {
            scenario: scenario.name.clone(),
            model: options.model.clone(),
            champion: champion.version,
            drift: Some(detected),
            challenger: Some(Challenger {
                version: version.version,
                rows,
                auc,
                champion_auc: champion_json["metrics_held_out"]["auc"].as_f64(),
            }),
            comparison: Some(comparison),
            guards,
            decision,
            mlflow_run: parent.id.clone(),
            timings: laps.timings,
        },
    )
}

/// Writes `mlops.json` and puts the work folder in place.
fn finish(work: tempfile::TempDir, out: &Path, outcome: Outcome) -> Result<Outcome, MlopsError> {
    let failed = |e: crate::calibrate::CalibrateError| MlopsError::Failed(e.to_string());
    let json = serde_json::to_string_pretty(&outcome)
        .map_err(|e| MlopsError::Failed(format!("{MLOPS_FILE}: {e}")))?;
    crate::calibrate::write_file(&work.path().join(MLOPS_FILE), &(json + "\n")).map_err(failed)?;
    crate::calibrate::put_in_place(work, out).map_err(failed)?;
    Ok(outcome)
}

fn read_json(path: &Path) -> Result<serde_json::Value, MlopsError> {
    let bytes =
        std::fs::read(path).map_err(|e| MlopsError::Failed(format!("{}: {e}", path.display())))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| MlopsError::Failed(format!("{}: {e}", path.display())))
}

fn read_drift(dir: &Path) -> Result<Vec<Scoring>, MlopsError> {
    match DriftFile::read(dir) {
        Ok(Some(file)) => Ok(file.scorings),
        Ok(None) => Err(MlopsError::Failed(format!(
            "{} has no {DRIFT_FILE}: the run measured no drift",
            dir.display()
        ))),
        Err(e) => Err(MlopsError::Failed(e)),
    }
}

/// The onset of the churn model's lasting drift: the first scoring from which every later
/// scoring drifted too, if the last did. Drift the world recovered from (the first week's
/// rates since joining, a festival's days) is counted in `drifted_scorings` but does not
/// call for a new model.
pub fn detect(scorings: &[Scoring], start: chrono::NaiveDate) -> Option<Detected> {
    let churn: Vec<&Scoring> = scorings.iter().filter(|s| s.model == "churn").collect();
    let lasting = churn.iter().rev().take_while(|s| s.drifted).count();
    let first = churn.get(churn.len().checked_sub(lasting.max(1))?)?;
    if !first.drifted {
        return None;
    }
    Some(Detected {
        date: first.date,
        day: u32::try_from((first.date - start).num_days()).unwrap_or(0),
        features: first
            .figures
            .iter()
            .filter(|(_, _, past)| *past)
            .map(|(f, _, _)| f.clone())
            .collect(),
        drifted_scorings: churn.iter().filter(|s| s.drifted).count(),
        scorings: churn.len(),
    })
}

/// The challenger's gain from its difference from the champion (the base arm), signed so
/// that positive is better.
pub fn compare(d: &Difference, replications: u32, fork: chrono::NaiveDate) -> Comparison {
    let lower_is_better = LOWER_IS_BETTER.contains(&d.metric.as_str());
    let sign = if lower_is_better { -1.0 } else { 1.0 };
    Comparison {
        metric: d.metric.clone(),
        lower_is_better,
        gain: sign * d.difference,
        interval: d.interval.map(|(lo, hi)| {
            let (a, b) = (sign * lo, sign * hi);
            (a.min(b), a.max(b))
        }),
        champion: d.base,
        challenger: d.value,
        replications,
        fork,
    }
}

/// Promote only when the gain's whole interval is above zero and no guardrail's is below
/// it (the challenger may not be significantly worse on any).
#[expect(
    clippy::too_many_arguments,
    reason = "what was compared, and how to say it"
)]
pub fn decide(
    c: &Comparison,
    guards: &[Comparison],
    model: &str,
    champion: &str,
    challenger: &str,
    drift: &Detected,
    confidence: f64,
    money: &crate::money::Currency,
) -> Decision {
    let show = |metric: &str, x: f64| crate::experiment::report::show(money, metric, x);
    let ci = |metric: &str, (lo, hi): (f64, f64)| {
        format!(
            "{:.0}% CI {} .. {}",
            confidence * 100.0,
            show(metric, lo),
            show(metric, hi)
        )
    };
    let better = |c: &Comparison| if c.lower_is_better { "less" } else { "more" };
    let what = format!(
        "after drift on {} ({}), challenger {model} v{challenger} against champion v{champion} on `{}` ({} is better), {} replications from {}: gain {}",
        drift.date,
        drift.features.join(", "),
        c.metric,
        better(c),
        c.replications,
        c.fork,
        show(&c.metric, c.gain)
    );
    let interval = match c.interval {
        Some(i) if i.0 > 0.0 => i,
        Some(i) => {
            return Decision::Kept {
                reason: format!(
                    "{what} ({}): the interval does not exclude no gain, so the champion stays",
                    ci(&c.metric, i)
                ),
            };
        }
        None => {
            return Decision::Kept {
                reason: format!("{what}: no interval, so the champion stays"),
            };
        }
    };
    let worse: Vec<String> = guards
        .iter()
        .filter_map(|g| {
            g.interval.filter(|i| i.1 < 0.0).map(|i| {
                format!(
                    "`{}` ({} is better) by {} ({})",
                    g.metric,
                    better(g),
                    show(&g.metric, -g.gain),
                    ci(&g.metric, i)
                )
            })
        })
        .collect();
    if worse.is_empty() {
        Decision::Promoted {
            reason: format!(
                "{what} ({}): the challenger is better{}; promoted",
                ci(&c.metric, interval),
                if guards.is_empty() {
                    String::new()
                } else {
                    ", and no worse on the guardrails".to_owned()
                }
            ),
        }
    } else {
        Decision::Kept {
            reason: format!(
                "{what} ({}), but significantly worse on {}: the champion stays",
                ci(&c.metric, interval),
                worse.join(", ")
            ),
        }
    }
}

/// A Python that has [`PACKAGES`]: the one given (checked), or the environment Bazaar keeps
/// in its cache, made on first need.
pub fn python(given: Option<&Path>, progress: bool) -> Result<PathBuf, MlopsError> {
    let ready = |python: &Path| {
        Command::new(python)
            .args(["-c", READY])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if let Some(p) = given {
        if ready(p) {
            return Ok(p.to_path_buf());
        }
        return Err(MlopsError::Input(format!(
            "--python {} cannot import the training packages\n  hint: `{} -m pip install {}`, or leave out --python and Bazaar makes its own environment",
            p.display(),
            p.display(),
            PACKAGES.join(" ")
        )));
    }
    // Keyed by the pins, so an environment made with other versions is never taken.
    let pins = blake3::hash(PACKAGES.join(" ").as_bytes()).to_hex();
    let env = crate::ml::runtime::cache_dir()
        .join("python")
        .join(format!("train-{}", &pins.as_str()[..12]));
    let python = env.join("bin").join("python");
    std::fs::create_dir_all(&env)
        .map_err(|e| MlopsError::Failed(format!("{}: {e}", env.display())))?;
    // Two loops at once must not build one environment together.
    let lock = std::fs::File::create(env.with_extension("lock"))
        .map_err(|e| MlopsError::Failed(e.to_string()))?;
    lock.lock().map_err(|e| MlopsError::Failed(e.to_string()))?;
    if ready(&python) {
        return Ok(python);
    }
    if progress {
        eprintln!(
            "mlops: making a Python environment for training in {} (once; {})",
            env.display(),
            PACKAGES.join(" ")
        );
    }
    let made = Command::new("python3")
        .args(["-m", "venv", "--clear"])
        .arg(&env)
        .output()
        .map_err(|e| {
            MlopsError::Input(format!(
                "cannot run python3 ({e}): training a challenger needs Python 3.10 or later with venv\n  hint: install it (`apt install python3 python3-venv`), or pass --python PATH to a Python with {}",
                PACKAGES.join(" ")
            ))
        })?;
    if !made.status.success() {
        return Err(MlopsError::Input(format!(
            "python3 -m venv {} failed: {}\n  hint: install venv (`apt install python3-venv`), or pass --python PATH to a Python with {}",
            env.display(),
            String::from_utf8_lossy(&made.stderr).trim(),
            PACKAGES.join(" ")
        )));
    }
    let pip = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(PACKAGES)
        .output()
        .map_err(|e| MlopsError::Failed(format!("pip: {e}")))?;
    if !pip.status.success() || !ready(&python) {
        return Err(MlopsError::Failed(format!(
            "installing {} into {} failed:\n{}\n  hint: check that PyPI can be reached (or a mirror set in pip.conf), or pass --python PATH to a Python with them",
            PACKAGES.join(" "),
            env.display(),
            tail(&String::from_utf8_lossy(&pip.stderr), 2000)
        )));
    }
    Ok(python)
}

/// `name` as an MLflow metric key, which allows letters, digits, `_-. /` only
/// (`persona=premium` becomes `persona_premium`).
fn metric_key(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_-. /".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The last `n` bytes of `s`, on a character boundary.
fn tail(s: &str, n: usize) -> &str {
    let mut from = s.len().saturating_sub(n);
    while !s.is_char_boundary(from) {
        from += 1;
    }
    &s[from..]
}

/// Runs the training script on `features` into `out`.
#[allow(clippy::too_many_arguments)]
fn train(
    python: &Path,
    features: &Path,
    out: &Path,
    horizon: u32,
    since_day: u32,
    name: &str,
    made_with: &str,
    seed: u64,
) -> Result<(), MlopsError> {
    let scripts = tempfile::Builder::new()
        .prefix("bazaar-train-")
        .tempdir()
        .map_err(|e| MlopsError::Failed(format!("a folder for the training script: {e}")))?;
    for (file, text) in [
        ("train_churn.py", TRAIN_SCRIPT),
        ("reference.py", REFERENCE_SCRIPT),
    ] {
        std::fs::write(scripts.path().join(file), text)
            .map_err(|e| MlopsError::Failed(format!("{file}: {e}")))?;
    }
    let output = Command::new(python)
        .arg(scripts.path().join("train_churn.py"))
        .arg(features)
        .args(["--horizon", &horizon.to_string()])
        .args(["--since-day", &since_day.to_string()])
        .args(["--scenario", made_with])
        .arg("--out")
        .arg(out)
        .args(["--name", name])
        .args(["--seed", &seed.to_string()])
        .output()
        .map_err(|e| MlopsError::Failed(format!("{}: {e}", python.display())))?;
    if !output.status.success() {
        return Err(MlopsError::Failed(format!(
            "training the challenger failed:\n{}",
            tail(&String::from_utf8_lossy(&output.stderr), 4000)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn difference(metric: &str, d: f64, interval: Option<(f64, f64)>) -> Difference {
        Difference {
            arm: "challenger".into(),
            against: "base".into(),
            metric: metric.into(),
            base: 100.0,
            value: 100.0 + d,
            difference: d,
            interval,
            bootstrap: None,
            skewness: None,
            sd: 1.0,
            effect_size: None,
            replications_needed: None,
            customers_needed: None,
        }
    }

    fn drift() -> Detected {
        Detected {
            date: chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
            day: 34,
            features: vec!["log_mean_basket".into()],
            drifted_scorings: 4,
            scorings: 8,
        }
    }

    fn rupees() -> crate::money::Currency {
        crate::money::Currency::default()
    }

    fn decision(metric: &str, d: f64, interval: Option<(f64, f64)>) -> Decision {
        let fork = chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        let c = compare(&difference(metric, d, interval), 10, fork);
        decide(&c, &[], "churn", "1", "2", &drift(), 0.95, &rupees())
    }

    #[test]
    fn fewer_churned_with_an_interval_below_zero_promotes() {
        assert!(matches!(
            decision("churned", -30.0, Some((-45.0, -15.0))),
            Decision::Promoted { .. }
        ));
        let c = compare(
            &difference("churned", -30.0, Some((-45.0, -15.0))),
            10,
            drift().date,
        );
        assert_eq!(c.gain, 30.0);
        assert_eq!(c.interval, Some((15.0, 45.0)));
    }

    #[test]
    fn an_interval_that_holds_zero_or_the_wrong_way_keeps_the_champion() {
        for (d, i) in [(-5.0, (-12.0, 2.0)), (10.0, (4.0, 16.0)), (0.0, (0.0, 0.0))] {
            assert!(
                matches!(decision("churned", d, Some(i)), Decision::Kept { .. }),
                "{d} {i:?}"
            );
        }
        assert!(matches!(
            decision("churned", -30.0, None),
            Decision::Kept { .. }
        ));
    }

    #[test]
    fn a_guardrail_significantly_worse_keeps_the_champion() {
        let fork = drift().date;
        let c = compare(
            &difference("churned", -30.0, Some((-45.0, -15.0))),
            10,
            fork,
        );
        let guard = |d: f64, i: (f64, f64)| compare(&difference("margin", d, Some(i)), 10, fork);
        let decided = |guards: &[Comparison]| {
            decide(&c, guards, "churn", "1", "2", &drift(), 0.95, &rupees())
        };
        // Margin down, with an interval wholly below zero: kept, and the reason says why.
        match decided(&[guard(-70_000.0, (-100_000.0, -40_000.0))]) {
            Decision::Kept { reason } => assert!(reason.contains("`margin`"), "{reason}"),
            d => panic!("{d:?}"),
        }
        // Margin perhaps down, perhaps not: promoted.
        assert!(matches!(
            decided(&[guard(-10_000.0, (-30_000.0, 10_000.0))]),
            Decision::Promoted { .. }
        ));
        // A guard on a metric where less is better: more churned is worse.
        let churn_guard = compare(&difference("churned", 20.0, Some((5.0, 35.0))), 10, fork);
        let m = compare(&difference("margin", 500.0, Some((100.0, 900.0))), 10, fork);
        assert!(matches!(
            decide(
                &m,
                &[churn_guard],
                "churn",
                "1",
                "2",
                &drift(),
                0.95,
                &rupees()
            ),
            Decision::Kept { .. }
        ));
    }

    #[test]
    fn the_last_labelled_snapshot() {
        let weekly = |horizon, spend_horizon| ExportOptions {
            every: 7,
            horizon,
            spend_horizon,
        };
        // drift.ron: 60 days, weekly snapshots, a 14-day label: days 6, 13, ..., 41.
        assert_eq!(weekly(14, 14).last_snapshot(60), Some(41));
        assert_eq!(weekly(14, 14).last_snapshot(61), Some(41));
        assert_eq!(weekly(14, 14).last_snapshot(63), Some(48));
        assert_eq!(weekly(14, 28).last_snapshot(63), Some(34));
        assert_eq!(weekly(14, 14).last_snapshot(14), None);
        assert_eq!(weekly(u32::MAX, 14).last_snapshot(60), None);
    }

    #[test]
    fn more_is_better_on_revenue_and_margin() {
        assert!(matches!(
            decision("margin", 500.0, Some((100.0, 900.0))),
            Decision::Promoted { .. }
        ));
        assert!(matches!(
            decision("revenue", -500.0, Some((-900.0, -100.0))),
            Decision::Kept { .. }
        ));
    }

    #[test]
    fn the_onset_of_the_drift_that_lasts_is_the_detection() {
        let day = |d: u32| {
            chrono::NaiveDate::from_ymd_opt(2026, 10, 20).unwrap() + chrono::Days::new(u64::from(d))
        };
        let scoring = |d: u32, model: &str, drifted: bool| Scoring {
            date: day(d),
            model: model.into(),
            rows: 10,
            figures: vec![(
                "loyalty".to_owned(),
                crate::ml::drift::Drift {
                    psi: 0.2,
                    ks: 0.1,
                    js: 0.1,
                },
                drifted,
            )],
            drifted,
        };
        let start = day(0);
        assert!(detect(&[], start).is_none());
        assert!(detect(&[scoring(6, "churn", false)], start).is_none());
        // A first week that drifted and recovered, then drift from day 20 to the end.
        let found = detect(
            &[
                scoring(6, "churn", true),
                scoring(13, "churn", false),
                scoring(13, "spend", true),
                scoring(20, "churn", true),
                scoring(27, "churn", true),
            ],
            start,
        )
        .expect("drift");
        assert_eq!(found.day, 20);
        assert_eq!(found.features, ["loyalty"]);
        assert_eq!((found.drifted_scorings, found.scorings), (3, 4));
        // Drift the world recovered from by the end calls for nothing.
        assert!(
            detect(
                &[scoring(6, "churn", true), scoring(13, "churn", false)],
                start
            )
            .is_none()
        );
    }
}
