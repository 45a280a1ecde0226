//! `bazaar sweep`: how the metrics move over a range of a scenario's or a behaviour's
//! parameters. A sweep file names the base scenario, the parameters (places in its text and
//! their values) and a design (every combination, or a Latin hypercube); each point is run
//! `replications` times, replication `r` with the base's seed plus `r` at every point, so the
//! points are compared on common random numbers as an experiment's arms are. The runs go in
//! parallel within the thread budget; each finished run is journalled at once, so a sweep
//! stopped or killed goes on where it was when run again, without redoing a finished run.
//! At the end one Parquet table holds a row per point and replication, with `sweep.json`
//! (each point's means and intervals) and `sweep.html` (a chart of each metric over each
//! parameter).

pub mod file;
pub mod report;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};
use statrs::statistics::Statistics;

use crate::experiment::ExperimentError;
use crate::records::Tally;
use crate::scenario::{Overrides, Scenario};
pub use file::Levels;

/// A sweep: the points to run and how often.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// The sweep file's stem.
    pub name: String,
    /// The base scenario, as the file names it.
    pub base: String,
    /// How the points were chosen.
    pub kind: Kind,
    /// The parameters.
    pub parameters: Vec<Parameter>,
    /// The points: a value for each parameter and the scenario they make.
    pub points: Vec<Point>,
    /// Runs of each point: replication `r` has the base's seed plus `r`.
    pub replications: u32,
    /// Confidence level of each point's intervals.
    pub confidence: f64,
    /// The metrics charted (empty: every overall metric).
    pub metrics: Vec<String>,
}

/// How a sweep's points are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Every combination of the parameters' values.
    Grid,
    /// An optimised Latin hypercube of this many points.
    LatinHypercube {
        /// Points.
        points: u32,
    },
}

/// A parameter: a name, its place in the base scenario and its values.
#[derive(Debug, Clone, Serialize)]
pub struct Parameter {
    /// Its name, the results table's column.
    pub name: String,
    /// Its place in the base: `churn_model.mode.threshold`.
    pub at: String,
    /// Its values.
    pub levels: Levels,
}

/// One point of a sweep.
#[derive(Debug, Clone)]
pub struct Point {
    /// Each parameter's value.
    pub values: Vec<Value>,
    /// The base with those values.
    pub scenario: Scenario,
}

/// A parameter's value, as a sweep file writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// `true` or `false`.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A number.
    Float(f64),
    /// A string.
    Text(String),
}

impl Value {
    /// The value as RON text.
    pub fn to_ron(&self) -> String {
        match self {
            Self::Bool(b) => b.to_string(),
            Self::Int(i) => i.to_string(),
            // Debug keeps a decimal point (`1.0`), so the field reads as a float.
            Self::Float(x) => format!("{x:?}"),
            Self::Text(s) => ron::to_string(s).unwrap_or_default(),
        }
    }

    /// The value as a number, when it is one.
    pub fn number(&self) -> Option<f64> {
        match *self {
            Self::Int(i) => Some(i as f64),
            Self::Float(x) => Some(x),
            _ => None,
        }
    }

    /// Whether it is a whole number.
    pub fn is_integer(&self) -> bool {
        matches!(self, Self::Int(_))
    }
}

/// Why a sweep did not finish.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The sweep file or the output folder is wrong (exit code 2).
    #[error("{0}")]
    Design(String),
    /// A run or a write failed (exit code 1).
    #[error("{0}")]
    Run(String),
    /// SIGINT or SIGTERM stopped it; the finished runs are kept.
    #[error(
        "stopped by {}: {done} of {total} runs are done and kept in {}\n  hint: run the same command again to go on from there",
        crate::run::signal_name(*signal as usize),
        out.display()
    )]
    Stopped {
        /// The signal.
        signal: i32,
        /// Runs finished, this time and before.
        done: usize,
        /// Runs in the sweep.
        total: usize,
        /// The output folder.
        out: PathBuf,
    },
}

impl SweepError {
    /// The process's exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Design(_) => 2,
            Self::Run(_) => 1,
            Self::Stopped { signal, .. } => u8::try_from(128 + signal).unwrap_or(1),
        }
    }

    /// The error with `what` failed put before its message.
    fn with_context(self, what: &str) -> Self {
        match self {
            Self::Design(m) => Self::Design(format!("{what}: {m}")),
            Self::Run(m) => Self::Run(format!("{what}: {m}")),
            stopped @ Self::Stopped { .. } => stopped,
        }
    }
}

impl From<ExperimentError> for SweepError {
    fn from(e: ExperimentError) -> Self {
        if e.is_bad_input() {
            Self::Design(e.to_string())
        } else {
            Self::Run(e.to_string())
        }
    }
}

/// One run: a point in one replication, and every metric over the whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The point, from 0.
    pub point: u32,
    /// The replication, from 0.
    pub replication: u32,
    /// Its seed.
    pub seed: u64,
    /// Each metric over all personas, then `metric.persona`, then the behaviours'.
    pub metrics: BTreeMap<String, f64>,
}

/// A metric at one point over its replications.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The mean.
    pub mean: f64,
    /// The standard deviation over the replications.
    pub sd: f64,
    /// The confidence interval of the mean (t); `null` with one replication.
    pub interval: Option<(f64, f64)>,
}

/// One point's results.
#[derive(Debug, Clone, Serialize)]
pub struct PointResult {
    /// The point, from 0.
    pub point: u32,
    /// Each parameter's value.
    pub values: Vec<Value>,
    /// Each metric over the replications.
    pub metrics: BTreeMap<String, Summary>,
}

/// A finished sweep.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The sweep file's stem.
    pub sweep: String,
    /// The base scenario.
    pub base: String,
    /// How the points were chosen.
    pub design: Kind,
    /// The parameters.
    pub parameters: Vec<Parameter>,
    /// Replications of each point.
    pub replications: u32,
    /// Confidence level of the intervals.
    pub confidence: f64,
    /// The currency.
    pub money: crate::money::Currency,
    /// The personas, whose names end the per-persona metrics.
    pub personas: Vec<String>,
    /// The metrics charted.
    pub charted: Vec<String>,
    /// Each point's results.
    pub points: Vec<PointResult>,
    /// Every run (also `sweep.parquet`).
    #[serde(skip)]
    pub rows: Vec<Row>,
}

/// Every metric of one run.
type Metrics = BTreeMap<String, f64>;

/// The journal of finished runs in the output folder while a sweep is under way.
pub const JOURNAL: &str = "sweep.progress.jsonl";

/// The files a finished sweep writes.
pub const FILES: [&str; 3] = ["sweep.parquet", "sweep.json", "sweep.html"];

#[derive(Serialize, Deserialize)]
struct Header {
    bazaar: String,
    sweep: String,
}

/// A finished run in the journal: its scenario's fingerprint (seed included) and its
/// metrics as the bits of each figure, so a resumed sweep writes exactly what it measured.
#[derive(Serialize, Deserialize)]
struct Done {
    run: String,
    metrics: BTreeMap<String, u64>,
}

/// The journal, open for appending.
struct Journal {
    file: std::fs::File,
    path: PathBuf,
}

impl Journal {
    /// Opens the journal in `out`, or starts one in a new or empty folder; anything else in
    /// the way is refused. Returns the runs it holds.
    fn open(out: &Path, name: &str) -> Result<(Self, HashMap<String, Metrics>), SweepError> {
        let io = |p: &Path, e: std::io::Error| SweepError::Run(format!("{}: {e}", p.display()));
        let path = out.join(JOURNAL);
        let header = Header {
            bazaar: env!("CARGO_PKG_VERSION").to_owned(),
            sweep: name.to_owned(),
        };
        if !path.exists() {
            crate::calibrate::check_out(out).map_err(|e| {
                SweepError::Design(format!(
                    "{e}\n  (a sweep goes on only in a folder holding its {JOURNAL})"
                ))
            })?;
            std::fs::create_dir_all(out).map_err(|e| io(out, e))?;
            let line =
                serde_json::to_string(&header).map_err(|e| SweepError::Run(e.to_string()))?;
            let mut file = std::fs::OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(&path)
                .map_err(|e| io(&path, e))?;
            file.write_all(format!("{line}\n").as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| io(&path, e))?;
            return Ok((Self { file, path }, HashMap::new()));
        }
        let text = std::fs::read(&path).map_err(|e| io(&path, e))?;
        // Only whole lines count: a run being written when the process was killed is run
        // again, and the partial line is cut off before anything is appended.
        let whole = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let mut lines = text[..whole]
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty());
        let refuse = |why: &str| {
            SweepError::Design(format!(
                "{} holds {why}\n  hint: run that sweep with the Bazaar that began it, or name a new folder with --out",
                out.display()
            ))
        };
        match lines.next().map(serde_json::from_slice::<Header>) {
            Some(Ok(h)) if h.bazaar == header.bazaar => {}
            Some(Ok(h)) => {
                return Err(refuse(&format!(
                    "a sweep begun by Bazaar {} (this is {})",
                    h.bazaar, header.bazaar
                )));
            }
            _ => return Err(refuse(&format!("a damaged {JOURNAL}"))),
        }
        let mut done = HashMap::new();
        for line in lines {
            let Ok(d) = serde_json::from_slice::<Done>(line) else {
                return Err(refuse(&format!("a damaged {JOURNAL}")));
            };
            let metrics = d
                .metrics
                .into_iter()
                .map(|(k, bits)| (k, f64::from_bits(bits)))
                .collect();
            done.insert(d.run, metrics);
        }
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| io(&path, e))?;
        file.set_len(whole as u64).map_err(|e| io(&path, e))?;
        Ok((Self { file, path }, done))
    }

    /// Records a finished run, synced before it counts.
    fn append(&mut self, run: &str, metrics: &BTreeMap<String, f64>) -> Result<(), SweepError> {
        let done = Done {
            run: run.to_owned(),
            metrics: metrics
                .iter()
                .map(|(k, v)| (k.clone(), v.to_bits()))
                .collect(),
        };
        let line = serde_json::to_string(&done).map_err(|e| SweepError::Run(e.to_string()))?;
        self.file
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| self.file.sync_data())
            .map_err(|e| SweepError::Run(format!("{}: {e}", self.path.display())))
    }
}

/// A run to do: a point in a replication, its scenario reseeded and that scenario's
/// fingerprint, which names the run in the journal.
struct Job {
    point: u32,
    replication: u32,
    scenario: Scenario,
    key: String,
}

/// Runs the sweep into `out`: a new or empty folder, or one holding this sweep's journal,
/// whose finished runs are kept. Runs go side by side within `threads`; `stop` (a signal
/// number, 0 while none came) ends them at the next simulated hour, keeping what finished.
/// The results do not depend on how many ran at once or how often the sweep was stopped.
pub fn run(
    sweep: &Sweep,
    out: &Path,
    threads: usize,
    progress: bool,
    stop: &Arc<AtomicUsize>,
) -> Result<Outcome, SweepError> {
    let mut jobs = Vec::new();
    for (p, point) in sweep.points.iter().enumerate() {
        for r in 0..sweep.replications {
            let mut scenario = point.scenario.clone();
            scenario
                .apply(Overrides {
                    seed: Some(point.scenario.seed.wrapping_add(u64::from(r))),
                    ..Overrides::default()
                })
                .map_err(SweepError::Design)?;
            // Keyed by what the run simulates, not by the point's number (which names its
            // source), so a run is kept when the design around it changes.
            let mut keyed = scenario.clone();
            keyed.source = PathBuf::new();
            let key = crate::checkpoint::fingerprint(&keyed);
            jobs.push(Job {
                point: p as u32,
                replication: r,
                scenario,
                key,
            });
        }
    }
    // Every distinct scenario is built once before anything runs, so one that cannot be (a
    // churn model that does not load) is refused at once.
    for (p, point) in sweep.points.iter().enumerate() {
        crate::experiment::build(&point.scenario, 1, false, None).map_err(|e| {
            SweepError::from(e).with_context(&format!(
                "point {p} ({})",
                file::show_point(&sweep.parameters, &point.values)
            ))
        })?;
    }
    let (journal, done) = Journal::open(out, &sweep.name)?;
    let mut results: Vec<Option<BTreeMap<String, f64>>> =
        jobs.iter().map(|j| done.get(&j.key).cloned()).collect();
    let pending: Vec<usize> = (0..jobs.len()).filter(|&j| results[j].is_none()).collect();
    let total = jobs.len();
    if progress {
        eprintln!(
            "sweep: {} points x {} replications = {total} runs{}",
            sweep.points.len(),
            sweep.replications,
            if pending.len() < total {
                format!(
                    "; {} done already, going on with the other {}",
                    total - pending.len(),
                    pending.len()
                )
            } else {
                String::new()
            }
        );
    }
    let need = sweep
        .points
        .iter()
        .map(|p| crate::run::memory_estimate(&p.scenario, crate::plugin::Reserve::default()).0)
        .max()
        .unwrap_or(0);
    let (workers, per_worker) = crate::experiment::share_threads(need, pending.len(), threads);
    let journal = std::sync::Mutex::new(journal);
    let finished = AtomicUsize::new(total - pending.len());
    let at = |job: &Job| {
        format!(
            "point {} ({}), replication {}",
            job.point,
            file::show_point(&sweep.parameters, &sweep.points[job.point as usize].values),
            job.replication + 1
        )
    };
    let ran = crate::experiment::in_parallel(
        workers,
        pending.len(),
        || stop.load(Relaxed) == 0,
        |k| {
            let job = &jobs[pending[k]];
            let metrics = simulate(&job.scenario, per_worker, stop)?;
            if let Some(metrics) = &metrics {
                journal
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .append(&job.key, metrics)?;
                let n = finished.fetch_add(1, Relaxed) + 1;
                if progress {
                    eprintln!("sweep: {} done [{n} of {total}]", at(job));
                }
            }
            Ok(metrics)
        },
    );
    for (k, result) in ran.into_iter().enumerate() {
        // A run not run was stopped by a signal or an earlier run's failure.
        let Some(result) = result else { continue };
        let j = pending[k];
        results[j] = result.map_err(|e: SweepError| e.with_context(&at(&jobs[j])))?;
    }
    let signal = stop.load(Relaxed);
    if signal != 0 || results.iter().any(Option::is_none) {
        return Err(SweepError::Stopped {
            signal: i32::try_from(signal).unwrap_or(2),
            done: results.iter().filter(|r| r.is_some()).count(),
            total,
            out: out.to_path_buf(),
        });
    }
    let rows: Vec<Row> = jobs
        .iter()
        .zip(results)
        .map(|(job, metrics)| Row {
            point: job.point,
            replication: job.replication,
            seed: job.scenario.seed,
            metrics: metrics.unwrap_or_default(),
        })
        .collect();
    let outcome = summarise(sweep, rows);
    write(&outcome, out)?;
    Ok(outcome)
}

/// One run of `s` from its first day to its last, without outputs: every metric over the
/// whole run, or `None` when a stop was asked first.
fn simulate(
    s: &Scenario,
    threads: usize,
    stop: &AtomicUsize,
) -> Result<Option<BTreeMap<String, f64>>, SweepError> {
    let mut sim = crate::experiment::build(s, threads, true, None)?;
    sim.spawn_population();
    let from = sim.world.resource::<Tally>().clone();
    let plugins_from: BTreeMap<String, f64> = sim.plugin_metrics().into_iter().collect();
    while !sim.finished() {
        if stop.load(Relaxed) != 0 {
            return Ok(None);
        }
        sim.step().map_err(|e| SweepError::Run(e.to_string()))?;
    }
    let personas: Vec<String> = s.personas.iter().map(|p| p.name.clone()).collect();
    let per = s.money.per_major() as f64;
    Ok(Some(crate::experiment::metrics_since(
        &sim,
        &from,
        &plugins_from,
        &personas,
        per,
    )?))
}

/// Each point's mean, spread and interval of every metric, and the metrics to chart.
fn summarise(sweep: &Sweep, rows: Vec<Row>) -> Outcome {
    let base = &sweep.points[0].scenario;
    let personas: Vec<String> = base.personas.iter().map(|p| p.name.clone()).collect();
    let names: BTreeSet<&String> = rows.iter().flat_map(|r| r.metrics.keys()).collect();
    let t = (sweep.replications > 1)
        .then(|| StudentsT::new(0.0, 1.0, f64::from(sweep.replications - 1)).ok())
        .flatten()
        .map(|d| d.inverse_cdf(0.5 + sweep.confidence / 2.0));
    let points = sweep
        .points
        .iter()
        .enumerate()
        .map(|(p, point)| {
            let of: Vec<&Row> = rows.iter().filter(|r| r.point as usize == p).collect();
            let metrics = names
                .iter()
                .filter_map(|&m| {
                    let xs: Vec<f64> = of
                        .iter()
                        .filter_map(|r| r.metrics.get(m).copied())
                        .collect();
                    if xs.is_empty() {
                        return None;
                    }
                    let mean = xs.iter().mean();
                    let sd = if xs.len() > 1 {
                        xs.iter().std_dev()
                    } else {
                        0.0
                    };
                    let interval = t.map(|t| {
                        let half = t * sd / (xs.len() as f64).sqrt();
                        (mean - half, mean + half)
                    });
                    Some((m.clone(), Summary { mean, sd, interval }))
                })
                .collect();
            PointResult {
                point: p as u32,
                values: point.values.clone(),
                metrics,
            }
        })
        .collect();
    let charted = if sweep.metrics.is_empty() {
        names
            .iter()
            .filter(|m| !crate::experiment::is_per_persona(&personas, m))
            .map(|m| (*m).clone())
            .collect()
    } else {
        sweep.metrics.clone()
    };
    Outcome {
        sweep: sweep.name.clone(),
        base: sweep.base.clone(),
        design: sweep.kind,
        parameters: sweep.parameters.clone(),
        replications: sweep.replications,
        confidence: sweep.confidence,
        money: base.money.clone(),
        personas,
        charted,
        points,
        rows,
    }
}

/// Writes `sweep.parquet`, `sweep.json` and `sweep.html` into `out`, each finished beside
/// its name and moved into place, then ends the journal: the folder holds a finished sweep.
fn write(outcome: &Outcome, out: &Path) -> Result<(), SweepError> {
    let table = table(outcome)?;
    let json = serde_json::to_string_pretty(outcome)
        .map_err(|e| SweepError::Run(format!("sweep.json: {e}")))?
        + "\n";
    let page = report::html(outcome).map_err(SweepError::Run)?;
    for (name, bytes) in FILES
        .iter()
        .zip([table, json.into_bytes(), page.into_bytes()])
    {
        put(out, name, &bytes)?;
    }
    let journal = out.join(JOURNAL);
    std::fs::remove_file(&journal)
        .map_err(|e| SweepError::Run(format!("{}: {e}", journal.display())))?;
    if let Ok(d) = std::fs::File::open(out) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Writes `bytes` as `out/name`: to a hidden file beside it, synced, then renamed.
fn put(out: &Path, name: &str, bytes: &[u8]) -> Result<(), SweepError> {
    let path = out.join(name);
    let part = out.join(format!(".{name}.part"));
    let io = |e: std::io::Error| SweepError::Run(format!("{}: {e}", path.display()));
    let mut f = std::fs::File::create(&part).map_err(io)?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(io)?;
    std::fs::rename(&part, &path).map_err(io)
}

/// The results table: a row per point and replication; the point, the replication, the
/// seed, each parameter's value and each metric.
fn table(o: &Outcome) -> Result<Vec<u8>, SweepError> {
    use arrow_array::{
        ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray, UInt32Array,
        UInt64Array,
    };
    use arrow_schema::{DataType, Field, Schema};
    let mut fields = vec![
        Field::new("point", DataType::UInt32, false),
        Field::new("replication", DataType::UInt32, false),
        Field::new("seed", DataType::UInt64, false),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(UInt32Array::from_iter_values(
            o.rows.iter().map(|r| r.point),
        )),
        Arc::new(UInt32Array::from_iter_values(
            o.rows.iter().map(|r| r.replication),
        )),
        Arc::new(UInt64Array::from_iter_values(o.rows.iter().map(|r| r.seed))),
    ];
    let value = |r: &Row, i: usize| &o.points[r.point as usize].values[i];
    for (i, p) in o.parameters.iter().enumerate() {
        let all: Vec<&Value> = o.rows.iter().map(|r| value(r, i)).collect();
        let (kind, column): (DataType, ArrayRef) = if all.iter().all(|v| v.is_integer()) {
            let xs = all.iter().map(|v| v.number().map(|x| x as i64));
            (DataType::Int64, Arc::new(xs.collect::<Int64Array>()))
        } else if all.iter().all(|v| v.number().is_some()) {
            let xs = all.iter().map(|v| v.number());
            (DataType::Float64, Arc::new(xs.collect::<Float64Array>()))
        } else if all.iter().all(|v| matches!(v, Value::Bool(_))) {
            let xs = all.iter().map(|v| matches!(v, Value::Bool(true)));
            (
                DataType::Boolean,
                Arc::new(BooleanArray::from_iter(xs.map(Some))),
            )
        } else {
            let xs = all.iter().map(|v| match v {
                Value::Text(s) => s.clone(),
                other => other.to_ron(),
            });
            (DataType::Utf8, Arc::new(StringArray::from_iter_values(xs)))
        };
        fields.push(Field::new(&p.name, kind, false));
        columns.push(column);
    }
    let names: BTreeSet<&String> = o.rows.iter().flat_map(|r| r.metrics.keys()).collect();
    for m in names {
        if o.parameters.iter().any(|p| &p.name == m) {
            return Err(SweepError::Design(format!(
                "parameter `{m}` has the name of a metric; name it otherwise"
            )));
        }
        fields.push(Field::new(m, DataType::Float64, true));
        columns.push(Arc::new(
            o.rows
                .iter()
                .map(|r| r.metrics.get(m).copied())
                .collect::<Float64Array>(),
        ));
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns)
        .map_err(|e| SweepError::Run(format!("sweep.parquet: {e}")))?;
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
        .set_created_by(format!("bazaar {}", env!("CARGO_PKG_VERSION")))
        .build();
    let mut bytes = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut bytes, schema, Some(props))
        .map_err(|e| SweepError::Run(format!("sweep.parquet: {e}")))?;
    writer
        .write(&batch)
        .and_then(|()| writer.close().map(|_| ()))
        .map_err(|e| SweepError::Run(format!("sweep.parquet: {e}")))?;
    Ok(bytes)
}
