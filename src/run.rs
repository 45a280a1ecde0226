//! Running a scenario end to end: output folder, world, the hourly loop with progress, and the
//! finished, atomically placed outputs.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use thiserror::Error;

use crate::analytics::collect::AnalyticsPlugin;
use crate::ml::export::{ExportOptions, FeatureExportPlugin};
use crate::ml::model::ModelError;
use crate::output::sinks::SinkPlugin;
use crate::output::summary::Summary;
use crate::output::{OutputDir, OutputError};
use crate::plugin::Reserve;
use crate::plugin::{Plugin, SimError};
use crate::report::ReportError;
use crate::scenario::Scenario;
use crate::sim::Simulation;
use crate::systems::churn_model::{ChurnModelPlugin, ChurnScorer};
use crate::systems::observe::Tally;

/// Errors of a run after the scenario was validated.
#[derive(Debug, Error)]
pub enum RunError {
    /// Writing outputs failed.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// Building the report failed.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// The churn model is unusable (checked before anything is written).
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A plugin failed to build or finish, or a system failed during an hour.
    #[error("{message}")]
    System {
        /// The plugin or system.
        origin: String,
        /// What went wrong (the plugin's or system's own error message).
        message: String,
        /// Whether the error was the input's fault (exit 2) rather than the run's.
        bad_input: bool,
    },
    /// The population would not fit in memory.
    #[error(
        "{at}: `population`: {customers} customers need about {needed_mib} MiB of memory, more than the {available_mib} MiB available\n  hint: lower --scale or the population counts (Bazaar needs about {per_customer} bytes per customer here)"
    )]
    Memory {
        /// Where the population is given.
        at: String,
        /// Customers, including those acquired during the run.
        customers: u64,
        /// Estimated need.
        needed_mib: u64,
        /// Available memory.
        available_mib: u64,
        /// Estimated bytes per customer.
        per_customer: u64,
    },
    /// A stop was requested (SIGINT, SIGTERM) and the run ended without writing anything.
    #[error(
        "stopped by {}: nothing was put in `{out}`{}",
        signal_name(*.signal),
        match .kept {
            Some(c) => format!("; the run's folder is kept with its last checkpoint\n  hint: `bazaar resume {}` goes on from it", c.display()),
            None => " and the temporary folder was removed".to_owned(),
        }
    )]
    Interrupted {
        /// The signal's number.
        signal: usize,
        /// The output folder the run would have written.
        out: PathBuf,
        /// The checkpoint kept, if the run wrote one.
        kept: Option<PathBuf>,
    },
    /// A sum of money grew past what the outputs can hold.
    #[error(
        "{what} reached {paise} minor units of the scenario's currency (paise, cents), more than the largest amount Bazaar's outputs hold ({max})\n  hint: lower prices, quantities, the population or the number of days",
        max = crate::limits::MAX_MONEY_PAISE
    )]
    Overflow {
        /// Which sum.
        what: &'static str,
        /// Its value (saturated), minor units.
        paise: i64,
    },
    /// More customers than agent ids.
    #[error("{0} customers is more than the {max} Bazaar supports in one run\n  hint: lower --scale", max = u32::MAX)]
    TooManyCustomers(u64),
    /// A stop was requested (SIGINT, SIGTERM): the run finished the day, wrote a checkpoint
    /// and kept its folder, to be resumed.
    #[error(
        "stopped by {} at the end of {date} (day {day} of {days}): the outputs so far and a checkpoint are kept in `{}`\n  hint: `{}bazaar resume {}` goes on from there",
        signal_name(*.signal),
        .work.display(),
        crate::cluster::launcher(*.ranks),
        .checkpoint.display()
    )]
    Stopped {
        /// The signal's number.
        signal: usize,
        /// The last day simulated.
        date: chrono::NaiveDate,
        /// Days completed.
        day: u32,
        /// Days of the run.
        days: u32,
        /// The temporary folder kept.
        work: PathBuf,
        /// The checkpoint in it.
        checkpoint: PathBuf,
        /// The processes the run was sharded over (1: one), which resuming needs again.
        ranks: usize,
    },
    /// A checkpoint that cannot be resumed: another version, scenario or set of plugins, or
    /// outputs changed since.
    #[error("cannot resume from `{path}`: {message}")]
    Resume {
        /// The checkpoint.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// Resident bytes per customer of the world: 51 of components, 56 of change ticks, 24 of
/// entity lists and 24 of per-entity records, so 155 (ARCHITECTURE.md, "Memory"), plus a
/// margin for the allocator's rounding. Runs print the figure they measure after spawning.
pub const BYTES_PER_CUSTOMER: u64 = 170;
/// Extra bytes per customer when a churn model scores them (feature rows, ordering, scores).
pub const SCORING_BYTES_PER_CUSTOMER: u64 = 190;
/// Memory kept for what does not grow with customers: output pipelines (row groups queued
/// and being encoded, write buffers), the report, and the system.
pub const MEMORY_HEADROOM: u64 = 640 << 20;

/// The memory a scenario needs, in bytes, and the per-customer figure used, with `extra`
/// reserved by plugins added from code (the scenario's `systems` are counted already).
pub fn memory_estimate(scenario: &Scenario, extra: Reserve) -> (u64, u64) {
    let per = (BYTES_PER_CUSTOMER
        + match &scenario.churn_model {
            // A spend model has its own feature rows and scores, and keeps a prediction
            // per customer.
            Some(m) if m.spend.is_some() => 2 * SCORING_BYTES_PER_CUSTOMER + 4,
            Some(_) => SCORING_BYTES_PER_CUSTOMER,
            None => 0,
        })
    .saturating_add(scenario.reserved().bytes_per_customer)
    .saturating_add(extra.bytes_per_customer);
    (
        scenario
            .max_customers()
            .saturating_add(extra.customers)
            .saturating_mul(per)
            .saturating_add(MEMORY_HEADROOM),
        per,
    )
}

/// Memory available to a new allocation, from `/proc/meminfo` (`None` where unknown).
pub fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// This process's resident memory, from `/proc/self/statm` (`None` where unknown).
pub fn resident_memory() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// This process's peak resident memory so far, from `/proc/self/status` (`None` where
/// unknown).
pub fn peak_resident_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Logs where the process's memory is (`RUST_LOG=bazaar=debug`): resident, the allocator's
/// heap in use and free, and the large blocks mapped on their own (the world's columns).
pub(crate) fn log_memory(phase: &str) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let mib = |b: u64| b >> 20;
    let heap = crate::alloc::HeapStats::current();
    tracing::debug!(
        resident_mib = resident_memory().map(mib),
        peak_mib = peak_resident_memory().map(mib),
        heap_in_use_mib = heap.map(|h| mib(h.in_use)),
        heap_free_mib = heap.map(|h| mib(h.free)),
        mapped_mib = heap.map(|h| mib(h.mapped)),
        "memory: {phase}"
    );
}

/// Refuses, before anything is allocated, a population that would not fit.
pub fn check_capacity(scenario: &Scenario, extra: Reserve) -> Result<(), RunError> {
    check_rank_capacity(scenario, extra, 1)
}

/// [`check_capacity`] for one of `ranks` processes sharing the run, each holding its
/// share of the customers (ranks on one machine each see all of its memory free).
pub fn check_rank_capacity(
    scenario: &Scenario,
    extra: Reserve,
    ranks: usize,
) -> Result<(), RunError> {
    let customers = scenario.max_customers().saturating_add(extra.customers);
    if customers > u64::from(u32::MAX) {
        return Err(RunError::TooManyCustomers(customers));
    }
    let (needed, per_customer) = memory_estimate(scenario, extra);
    let needed = (needed - MEMORY_HEADROOM) / ranks.max(1) as u64 + MEMORY_HEADROOM;
    if let Some(available) = available_memory()
        && needed > available
    {
        return Err(RunError::Memory {
            at: scenario.population_at.clone(),
            customers,
            needed_mib: needed >> 20,
            available_mib: available >> 20,
            per_customer,
        });
    }
    Ok(())
}

impl RunError {
    /// Whether every rank of a sharded run ends with this error at the same point (a stop
    /// agreed after an hour, and its checkpoint written by every rank, or a refusal before
    /// any collective), so none need end the others.
    pub fn alike_on_every_rank(&self) -> bool {
        match self {
            Self::Stopped { .. } => true,
            Self::System { origin, .. } => origin == UNSHARDABLE,
            _ => false,
        }
    }

    /// Whether the user's input (rather than the run) is at fault.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            RunError::Model(_)
                | RunError::Resume { .. }
                | RunError::Memory { .. }
                | RunError::TooManyCustomers(_)
                | RunError::Overflow { .. }
                | RunError::System {
                    bad_input: true,
                    ..
                }
        )
    }

    /// The process exit code for this error: 128 + the signal for a stop, as shells
    /// expect; 2 for bad input; 1 for a failed run.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Interrupted { signal, .. } | RunError::Stopped { signal, .. } => {
                128u8.saturating_add(*signal as u8)
            }
            e if e.is_bad_input() => 2,
            _ => 1,
        }
    }
}

impl From<SimError> for RunError {
    /// A failure inside the simulation, with the exit code of the error it carries: a
    /// [`RunError`] a system returned keeps its kind (an overflow is still an overflow), a
    /// bad model or input is exit 2, anything else a failed run.
    fn from(e: SimError) -> Self {
        if let Some(&RunError::Overflow { what, paise }) = e.error.downcast_ref::<RunError>() {
            return RunError::Overflow { what, paise };
        }
        let bad_input = e.error.downcast_ref::<ModelError>().is_some()
            || e.error
                .downcast_ref::<RunError>()
                .is_some_and(RunError::is_bad_input);
        // The errors Bazaar's own plugins return say what failed; another plugin's is
        // named, so a user knows whose it is.
        let known = bad_input
            || e.error.is::<RunError>()
            || e.error.is::<OutputError>()
            || e.error.is::<crate::systems::churn_model::ScoringError>();
        RunError::System {
            message: if known { e.message() } else { e.to_string() },
            origin: e.origin,
            bad_input,
        }
    }
}

/// A stop request shared with a signal handler: 0 while the run may go on, else the number
/// of the signal that asked it to stop.
pub type StopFlag = Arc<AtomicUsize>;

/// `SIGINT`, `SIGTERM`, or the number.
pub(crate) fn signal_name(signal: usize) -> String {
    match signal {
        2 => "SIGINT".into(),
        15 => "SIGTERM".into(),
        n => format!("signal {n}"),
    }
}

/// How to run.
pub struct RunOptions {
    /// Worker threads.
    pub threads: usize,
    /// Show progress: a bar on a terminal (after a second), else a line every ten seconds.
    pub progress: bool,
    /// Extra plugins (research code, tests).
    pub plugins: Vec<Box<dyn Plugin>>,
    /// Write a churn training table (`features.csv`).
    pub features: Option<ExportOptions>,
    /// ONNX Runtime library to use (else `ORT_DYLIB_PATH`, the cache, or a fetch).
    pub ort_lib: Option<PathBuf>,
    /// Build charts, insights, data quality and `report.html` at the end.
    pub report: bool,
    /// Checked every simulated hour and before the folder is put in place: once set, the
    /// run finishes the day, writes a checkpoint and ends with [`RunError::Stopped`],
    /// keeping its temporary folder; set after the last day, the run ends with
    /// [`RunError::Interrupted`].
    pub stop: Option<StopFlag>,
    /// When to write checkpoints.
    pub checkpoints: Checkpoints,
    /// Go on from a checkpoint instead of starting.
    pub resume: Option<Resume>,
    /// How the run was asked for, kept in its checkpoints for `bazaar resume`.
    pub invocation: Option<Invocation>,
    /// Told of progress and of each closed day as the run goes (`run --serve`).
    pub live: Option<crate::live::LiveSink>,
    /// Write where the run's time went to `timings.json` in the folder (`--timings`).
    pub timings: bool,
    /// The processes the run is sharded over ([`crate::cluster`]): this process alone
    /// unless started by `mpirun` with the `mpi` feature.
    pub cluster: crate::cluster::Cluster,
}

/// The days at whose end a run writes its checkpoint (`--checkpoint-every`,
/// `--checkpoint-at`), by days completed. The checkpoint replaces the one before; it is
/// kept in the run's temporary folder and removed when the run finishes.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checkpoints {
    /// Every this many days.
    pub every: Option<u32>,
    /// Before these days (days from the start: 3 is the end of the third day).
    pub at: Vec<u32>,
}

impl Checkpoints {
    /// Whether a checkpoint is due once `completed` of `days` days are done (none after the
    /// last day: the run finishes instead).
    pub fn due(&self, completed: u32, days: u32) -> bool {
        completed > 0
            && completed < days
            && (self
                .every
                .is_some_and(|n| n > 0 && completed.is_multiple_of(n))
                || self.at.contains(&completed))
    }
}

/// What `bazaar run` was given: written into every checkpoint, so `bazaar resume` rebuilds
/// the same run.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Invocation {
    /// The folder the run was started in: a resumed run goes on there, so relative paths
    /// (the scenario's, its includes', the output folder's) mean what they meant.
    pub cwd: PathBuf,
    /// The scenario file, as given.
    pub scenario: PathBuf,
    /// The overrides given on the command line.
    pub seed: Option<u64>,
    /// `--days`.
    pub days: Option<u32>,
    /// `--scale`.
    pub scale: Option<f64>,
    /// `--out`, as given.
    pub out: Option<PathBuf>,
    /// `--format`, by name.
    pub formats: Vec<String>,
    /// `--features`: days between snapshots, the churn label's horizon and the spend
    /// label's.
    pub features: Option<(u32, u32, u32)>,
    /// Whether the report is built.
    pub report: bool,
    /// When checkpoints are written.
    pub checkpoints: Checkpoints,
}

impl Invocation {
    /// The invocation a checkpoint of `bazaar run` holds.
    pub fn of(snapshot: &crate::checkpoint::Snapshot) -> Result<Self, String> {
        let bytes = snapshot
            .sections
            .get(INVOCATION_SECTION)
            .ok_or("it was not written by `bazaar run`")?;
        crate::checkpoint::State::from_bytes(bytes)
            .map_err(|e| e.to_string())?
            .get("invocation")
            .map_err(|e| e.to_string())
    }
}

/// Name of the checkpoint section holding the [`Invocation`].
pub const INVOCATION_SECTION: &str = "run";

/// A checkpoint to go on from, and the temporary folder it belongs to.
pub struct Resume {
    /// The checkpoint file.
    pub path: PathBuf,
    /// Its contents.
    pub snapshot: crate::checkpoint::Snapshot,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            threads: std::thread::available_parallelism().map_or(1, usize::from),
            progress: false,
            plugins: Vec::new(),
            features: None,
            ort_lib: None,
            report: true,
            stop: None,
            checkpoints: Checkpoints::default(),
            resume: None,
            invocation: None,
            live: None,
            timings: false,
            cluster: crate::cluster::Cluster::solo(),
        }
    }
}

/// The behaviours a run sharded over processes may enable: those that couple no customers
/// beyond what the run sums over its ranks (the day's tallies, rollups and aggregates) and
/// what every rank's allocation sees alike ([`crate::records::HourRecords::allocate`]).
pub const SHARDED_SYSTEMS: [&str; 3] = ["daily_log", "word_of_mouth", "stores"];

/// The origin of [`check_shardable`]'s refusal ([`RunError::alike_on_every_rank`]).
pub const UNSHARDABLE: &str = "mpi";

/// Refuses, before anything is written, what a run sharded over several processes cannot
/// do yet (docs/scale.md): every rank reaches the same answer, so every rank stops alike.
pub fn check_shardable(scenario: &Scenario, options: &RunOptions) -> Result<(), RunError> {
    let ranks = options.cluster.ranks();
    if ranks <= 1 {
        return Ok(());
    }
    let mut refused: Vec<String> = Vec::new();
    if scenario.churn_model.is_some() {
        refused.push("a churn model (`churn_model`: its top-k offers rank every customer)".into());
    }
    let plain = |n: &str| n.replace('_', "").to_ascii_lowercase();
    for s in &scenario.systems {
        let name = s.plugin.name();
        if !SHARDED_SYSTEMS.iter().any(|&ok| plain(ok) == plain(name)) {
            refused.push(format!("the `{name}` behaviour (in `systems`)"));
        }
    }
    if !options.plugins.is_empty() {
        refused.push("plugins added from code".into());
    }
    if options.features.is_some() {
        refused.push("`--features`".into());
    }
    if options.live.is_some() {
        refused.push("`--serve`".into());
    }
    if scenario.customers() < ranks as u64 {
        refused.push(format!(
            "fewer starting customers ({}) than ranks",
            scenario.customers()
        ));
    }
    if refused.is_empty() {
        return Ok(());
    }
    Err(RunError::System {
        origin: UNSHARDABLE.into(),
        message: format!(
            "a run sharded over {ranks} processes cannot have {} yet\n  hint: run it as one process (without mpirun), or leave these out (docs/scale.md lists what a sharded run supports)",
            refused.join(", ")
        ),
        bad_input: true,
    })
}

/// What a finished run reports.
#[derive(Debug)]
pub struct RunReport {
    /// Headline figures.
    pub summary: Summary,
    /// Where the outputs are.
    pub out_dir: PathBuf,
    /// Wall time of the whole run.
    pub wall: Duration,
    /// Wall time of the hourly loop alone.
    pub loop_wall: Duration,
    /// Customers times simulated hours.
    pub customer_hours: u64,
    /// Threads used.
    pub threads: usize,
    /// Time spent scoring churn, and rows scored (when a churn model ran).
    pub churn_scoring: Option<(Duration, u64)>,
    /// Time spent scoring spend and rows scored, when a spend model was used.
    pub spend_scoring: Option<(Duration, u64)>,
    /// Time spent measuring drift, scorings measured, and those that drifted.
    pub drift: Option<(Duration, u64, usize)>,
    /// Time spent building the report, and whether every data-quality check passed.
    pub report: Option<(Duration, bool)>,
    /// Resident bytes per customer of the spawned world (measured, not estimated).
    pub bytes_per_customer: Option<u64>,
    /// Peak resident memory of the process.
    pub peak_memory: Option<u64>,
}

/// Progress of a long run: a bar on a terminal, or a plain line every ten seconds when
/// stderr is a log. Shows the simulated date, customers simulated per second (customer-days
/// per wall second), transactions written and the time left.
struct Progress {
    enabled: bool,
    terminal: bool,
    started: Instant,
    bar: Option<ProgressBar>,
    last_line: Duration,
    customers: u64,
}

/// Wall time between progress events sent to a live watcher.
const TELL_EVERY: Duration = Duration::from_millis(250);

/// Tells a live watcher where the run is (at most every [`TELL_EVERY`], and at each day's
/// end) and, at a day's end, the day's figures by persona.
fn tell(
    live: &crate::live::LiveSink,
    sim: &Simulation,
    scenario: &Scenario,
    tick: u32,
    total: u32,
    told: &mut Duration,
    started: Instant,
) {
    use crate::live::{DayFigures, LiveEvent};
    let elapsed = started.elapsed();
    let day_end = tick % 24 == 23;
    if !day_end && elapsed < *told + TELL_EVERY {
        return;
    }
    *told = elapsed;
    let done = f64::from(tick + 1) / f64::from(total);
    let seconds = elapsed.as_secs_f64().max(1e-9);
    live(LiveEvent::Progress {
        date: sim.clock().date(),
        done,
        customers_per_s: scenario.customers() as f64 * f64::from(tick + 1) / 24.0 / seconds,
        eta_s: seconds * (1.0 - done) / done.max(1e-9),
        transactions: sim.world.resource::<Tally>().overall().transactions,
    });
    let closed = sim.world.resource::<crate::records::ClosedDay>();
    let (true, Some(date)) = (day_end, closed.date) else {
        return;
    };
    let personas = scenario
        .personas
        .iter()
        .zip(&closed.by_persona)
        .enumerate()
        .map(|(p, (persona, t))| DayFigures {
            persona: persona.name.clone(),
            transactions: t.transactions,
            revenue: scenario.money.major(t.revenue_paise),
            churned: t.churned,
            active: closed.active.get(p).copied().unwrap_or(0),
        })
        .collect();
    live(LiveEvent::Day {
        date,
        festival: closed.festival,
        weekend: closed.weekend,
        events: closed.events.clone(),
        personas,
    });
}

/// Wall time between progress lines in a log.
const LOG_EVERY: Duration = Duration::from_secs(10);

impl Progress {
    fn tick(&mut self, tick: u32, total: u32, date: chrono::NaiveDate, transactions: u64) {
        if !self.enabled {
            return;
        }
        let elapsed = self.started.elapsed();
        let done = f64::from(tick + 1) / f64::from(total);
        let customers_per_s =
            self.customers as f64 * f64::from(tick + 1) / 24.0 / elapsed.as_secs_f64().max(1e-9);
        let message = || {
            format!(
                "{date} | {} customers/s | {} transactions written",
                crate::money::group_indian(customers_per_s.round() as u64),
                crate::money::group_indian(transactions)
            )
        };
        if !self.terminal {
            if elapsed >= self.last_line + LOG_EVERY {
                self.last_line = elapsed;
                let left = elapsed.as_secs_f64() * (1.0 - done) / done.max(1e-9);
                eprintln!(
                    "bazaar: {:.0}% {} | {:.0} s left",
                    done * 100.0,
                    message(),
                    left
                );
            }
            return;
        }
        if self.bar.is_none() && elapsed > Duration::from_secs(1) {
            let bar = ProgressBar::new(u64::from(total));
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {percent}% ETA {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            self.bar = Some(bar);
        }
        if let Some(bar) = &self.bar {
            bar.set_position(u64::from(tick + 1));
            if tick % 24 == 23 {
                bar.set_message(message());
            }
        }
    }

    fn done(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The plugins a run adds after the built-in behaviours and the scenario's systems, in
/// build and finish order: the churn scorer (its model already loaded and checked), the
/// caller's own (behaviours, which may declare tables and daily columns), then the outputs:
/// the sinks, the feature export, the analytics.
fn run_plugins(
    churn: Option<ChurnModelPlugin>,
    features: Option<ExportOptions>,
    extra: Vec<Box<dyn Plugin>>,
) -> Vec<Box<dyn Plugin>> {
    let mut plugins: Vec<Box<dyn Plugin>> = Vec::new();
    if let Some(churn) = churn {
        plugins.push(Box::new(churn));
    }
    plugins.extend(extra);
    plugins.push(Box::new(crate::analytics::rollup::RollupPlugin));
    plugins.push(Box::new(SinkPlugin));
    if let Some(options) = features {
        plugins.push(Box::new(FeatureExportPlugin(options)));
    }
    plugins.push(Box::new(AnalyticsPlugin));
    plugins
}

/// Writes the simulation's checkpoint at the end of a day, with how the run was asked for:
/// every output table is put on disk first, so the checkpoint describes files that hold
/// at least what it says; it replaces the one before in one step.
///
/// Each rank of a sharded run writes its own ([`crate::checkpoint::rank_path`]); rank 0's,
/// at `path`, is written once every other rank's of the same day is on disk, and only then
/// do the other ranks remove their files of earlier days: whenever the run is killed, the
/// day rank 0's file names has every rank's file. The ranks agree on each step, so all of
/// them return the same outcome: the file this process wrote, or why one was not written.
fn write_checkpoint(
    sim: &mut Simulation,
    scenario: &Scenario,
    invocation: Option<&Invocation>,
    path: &std::path::Path,
) -> Result<PathBuf, RunError> {
    let cluster = sim
        .world
        .get_resource::<crate::cluster::Cluster>()
        .cloned()
        .unwrap_or_default();
    let mut snapshot = sim.checkpoint(scenario)?;
    if let Some(invocation) = invocation {
        let mut run = crate::checkpoint::State::default();
        run.put("invocation", invocation)
            .map_err(|e| SimError::new("checkpoint", e.to_string()))?;
        snapshot
            .sections
            .insert(INVOCATION_SECTION.to_owned(), run.to_bytes());
    }
    for (name, bytes) in &snapshot.sections {
        tracing::debug!(
            section = name.as_str(),
            bytes = bytes.len(),
            "checkpoint section"
        );
    }
    let write = |path: &std::path::Path| {
        snapshot.write(path).map_err(|e| OutputError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })
    };
    if !cluster.sharded() {
        write(path)?;
        return Ok(path.to_path_buf());
    }
    let day = snapshot.header.day;
    let mine = if cluster.is_root() {
        path.to_path_buf()
    } else {
        crate::checkpoint::rank_path(path, cluster.rank(), day)
    };
    // Every rank agrees on each step's outcome; one that failed says what failed.
    let agreed = |done: Result<(), OutputError>, step: &str| -> Result<(), RunError> {
        let failed = cluster.count(done.is_err());
        match done {
            Err(e) => Err(e.into()),
            Ok(()) if failed > 0 => Err(OutputError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::other(format!(
                    "{failed} other rank(s) could not write {step}"
                )),
            }
            .into()),
            Ok(()) => Ok(()),
        }
    };
    let others = if cluster.is_root() {
        Ok(())
    } else {
        write(&mine)
    };
    agreed(others, "their checkpoint")?;
    let root = if cluster.is_root() {
        write(path)
    } else {
        Ok(())
    };
    agreed(root, "the checkpoint")?;
    if !cluster.is_root() {
        // Rank 0's file names this day now: this rank's earlier ones are not needed.
        let own = format!(
            "{}{:05}.day-",
            crate::checkpoint::RANK_PREFIX,
            cluster.rank()
        );
        let folder = path.parent().unwrap_or(std::path::Path::new("."));
        for entry in std::fs::read_dir(folder).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(&own) && entry.path() != mine {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    Ok(mine)
}

/// The temporary folder of a sharded run: rank 0 makes it (locking the target), or takes
/// up the interrupted run's `resumed` folder, and tells the others where it is; they write
/// their parts into it.
fn shared_folder(
    target: &std::path::Path,
    cluster: &crate::cluster::Cluster,
    resumed: Option<&std::path::Path>,
) -> Result<OutputDir, OutputError> {
    if cluster.is_root() {
        let mut dir = match resumed {
            None => OutputDir::create(target)?,
            Some(work) => OutputDir::adopt(target, work)?,
        };
        dir.shard_root(cluster.ranks());
        // Absolute: the ranks need not share a working folder, only the file system.
        let tmp = std::path::absolute(dir.work_path()).map_err(crate::output::io_at(target))?;
        cluster.broadcast(tmp.as_os_str().as_encoded_bytes().to_vec());
        Ok(dir)
    } else {
        let tmp = cluster.broadcast(Vec::new());
        let tmp = String::from_utf8(tmp).map_err(|_| OutputError::Io {
            path: target.to_path_buf(),
            source: std::io::Error::other("rank 0's temporary folder is not named in UTF-8"),
        })?;
        OutputDir::join_shard(
            target,
            PathBuf::from(tmp),
            cluster.rank(),
            cluster.ranks(),
            resumed.is_some(),
        )
    }
}

/// Refuses to go on from a checkpoint of `header` with `scenario` (as loaded for resuming)
/// when another Bazaar version wrote it, or the scenario, its churn model or the run's
/// options changed since: what can be told before the folder is taken up.
pub fn check_resumable(
    scenario: &Scenario,
    header: &crate::checkpoint::Header,
) -> Result<(), String> {
    if header.version != env!("CARGO_PKG_VERSION") {
        return Err(format!(
            "it was written by Bazaar {}, this is Bazaar {}: resume it with the version that wrote it",
            header.version,
            env!("CARGO_PKG_VERSION")
        ));
    }
    if header.scenario != crate::checkpoint::fingerprint(scenario) {
        return Err("the scenario or its churn model changed since the checkpoint was written (or it is run with other options): resume with the ones it was written with".into());
    }
    Ok(())
}

/// Where `--timings` writes where the run's time went ([`crate::timings::Report`]).
pub const TIMINGS: &str = "timings.json";

/// Runs a validated scenario and writes its outputs.
pub fn run(scenario: &Scenario, options: RunOptions) -> Result<RunReport, RunError> {
    let started = Instant::now();
    let extra = options
        .plugins
        .iter()
        .map(|p| p.reserve(scenario))
        .fold(Reserve::default(), Reserve::and);
    check_rank_capacity(scenario, extra, options.cluster.ranks())?;
    let personas: Vec<String> = scenario.personas.iter().map(|p| p.name.clone()).collect();
    // The model is loaded and checked before anything is written.
    let churn = match &scenario.churn_model {
        Some(config) => Some(ChurnModelPlugin::load(
            config,
            &personas,
            options.ort_lib.as_deref(),
        )?),
        None => None,
    };
    check_shardable(scenario, &options)?;
    let mut resume = options.resume;
    let refused = |path: &std::path::Path, message: String| RunError::Resume {
        path: path.to_path_buf(),
        message,
    };
    let cluster = options.cluster.clone();
    let mut dir = match &resume {
        None if cluster.sharded() => shared_folder(&scenario.output.dir, &cluster, None)?,
        None => OutputDir::create(&scenario.output.dir)?,
        Some(r) => {
            // What can be checked before the folder is taken up is checked first.
            check_resumable(scenario, &r.snapshot.header).map_err(|e| refused(&r.path, e))?;
            let work = r.path.parent().unwrap_or(std::path::Path::new("."));
            let adopted = if cluster.sharded() {
                shared_folder(&scenario.output.dir, &cluster, Some(work))
            } else {
                OutputDir::adopt(&scenario.output.dir, work)
            };
            adopted.map_err(|e| match e {
                OutputError::Foreign { reason, .. } => refused(&r.path, reason),
                e => RunError::Output(e),
            })?
        }
    };
    dir.set_threads(options.threads);
    let timings = dir.timings();
    let mut sim = Simulation::builder(scenario)
        .threads(options.threads)
        .insert_resource(cluster.clone())
        .insert_resource(dir)
        .insert_resource(timings.clone())
        .add_plugins(run_plugins(churn, options.features, options.plugins))
        .build()?;
    let threads = sim
        .world
        .resource::<crate::sim::SimPool>()
        .0
        .current_num_threads();
    tracing::info!(
        customers = scenario.customers(),
        days = scenario.days,
        threads,
        "spawning"
    );
    let before_spawn = resident_memory();
    let mut phases = crate::timings::Phases::start(timings.clone());
    timings.phase("set-up", started.elapsed());
    let first_day = match &mut resume {
        None => {
            sim.spawn_population();
            0
        }
        Some(r) => {
            let restoring = Instant::now();
            // Named where the folder now is, taken up as this process's.
            let path = sim.world.resource::<OutputDir>().checkpoint_path();
            sim.restore(scenario, &r.snapshot)
                .map_err(|e| refused(&path, e.message()))?;
            sim.world
                .resource_mut::<OutputDir>()
                .taken_up()
                .map_err(|e| refused(&path, e.to_string()))?;
            // The simulation holds what it needs now; the checkpoint's bytes can go.
            r.snapshot.sections.clear();
            tracing::info!(
                day = r.snapshot.header.day,
                seconds = restoring.elapsed().as_secs_f64(),
                "resumed from {}",
                path.display()
            );
            r.snapshot.header.day
        }
    };
    let checkpoint_path = sim.world.resource::<OutputDir>().checkpoint_path();
    let bytes_per_customer = before_spawn
        .zip(resident_memory())
        .map(|(a, b)| b.saturating_sub(a) / scenario.customers().max(1));
    tracing::info!(bytes_per_customer, "spawned");
    log_memory("spawned");
    phases.end(if first_day == 0 { "spawn" } else { "resume" });

    let loop_started = Instant::now();
    let total = scenario.days * 24;
    let mut progress = Progress {
        enabled: options.progress && cluster.is_root(),
        terminal: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        started: loop_started,
        bar: None,
        last_line: Duration::ZERO,
        customers: scenario.customers(),
    };
    let stop = options.stop.clone();
    let signal = || stop.as_ref().map_or(0, |s| s.load(Ordering::Relaxed));
    let stopped = || -> Result<(), RunError> {
        // A sharded run's ranks agree on a stop each hour; one seen after the last hour
        // lets the run finish (a rank stopping alone would leave the others waiting).
        if cluster.sharded() {
            return Ok(());
        }
        match signal() {
            0 => Ok(()),
            signal => Err(RunError::Interrupted {
                signal,
                out: scenario.output.dir.clone(),
                kept: checkpoint_path.is_file().then(|| checkpoint_path.clone()),
            }),
        }
    };
    let mut noticed = false;
    let mut told = Duration::ZERO;
    for tick in first_day * 24..total {
        if let Err(e) = sim.step() {
            progress.done();
            return Err(e.into());
        }
        let mut asked = signal();
        if cluster.sharded() {
            // `mpirun` passes a stop on to every rank, but each sees it at its own hour: the
            // ranks agree on it each hour (SIGINT if every rank that saw a signal saw that,
            // else SIGTERM), so all finish the same day and write its checkpoint.
            let sigint = signal_hook::consts::SIGINT as usize;
            let mut stop = [i64::from(asked != 0), i64::from(asked == sigint)];
            cluster.sum(&mut stop);
            asked = match stop {
                [0, _] => 0,
                [saw, interrupted] if saw == interrupted => sigint,
                _ => signal_hook::consts::SIGTERM as usize,
            };
        }
        if asked != 0 && !noticed && tick % 24 != 23 {
            noticed = true;
            progress.done();
            if cluster.is_root() {
                eprintln!(
                    "bazaar: stopping at the end of {} to write a checkpoint (a second signal stops at once, losing the day)",
                    sim.clock().date()
                );
            }
        }
        if tick % 24 == 23 {
            log_memory("day");
            let completed = tick / 24 + 1;
            // A stop is honoured on the last day too: resuming then only finishes.
            if asked != 0 || options.checkpoints.due(completed, scenario.days) {
                let started = Instant::now();
                let written = write_checkpoint(
                    &mut sim,
                    scenario,
                    options.invocation.as_ref(),
                    &checkpoint_path,
                );
                let own = match written {
                    // A scheduled checkpoint that cannot be written (a full disk) costs the
                    // run nothing but the chance to resume from it: the one before stays.
                    Err(RunError::Output(e)) if asked == 0 => {
                        tracing::warn!("the checkpoint after day {completed} was not written: {e}");
                        continue;
                    }
                    other => other?,
                };
                tracing::info!(
                    day = completed,
                    seconds = started.elapsed().as_secs_f64(),
                    bytes = std::fs::metadata(&own).map_or(0, |m| m.len()),
                    "checkpoint written"
                );
                if asked != 0 {
                    progress.done();
                    let dir = sim
                        .world
                        .remove_resource::<OutputDir>()
                        .expect("the output folder is a resource until the finish");
                    return Err(RunError::Stopped {
                        signal: asked,
                        date: sim.clock().date(),
                        day: completed,
                        days: scenario.days,
                        work: dir.keep(),
                        checkpoint: checkpoint_path,
                        ranks: cluster.ranks(),
                    });
                }
            }
        }
        if progress.enabled {
            let clock = sim.clock();
            let tx = sim.world.resource::<Tally>().overall().transactions;
            progress.tick(tick, total, clock.date(), tx);
        }
        if let Some(live) = &options.live {
            tell(live, &sim, scenario, tick, total, &mut told, loop_started);
        }
    }
    progress.done();
    let loop_wall = loop_started.elapsed();
    stopped()?;

    tracing::info!(seconds = loop_wall.as_secs_f64(), "simulated");
    phases.end("simulate");
    // Each plugin's finish is a phase of its own (`Simulation::finish`).
    sim.finish()?;
    tracing::info!("tables finished");
    let mut phases = crate::timings::Phases::start(timings.clone());
    let mut dir = sim
        .world
        .remove_resource::<OutputDir>()
        .ok_or_else(|| RunError::System {
            origin: "run".into(),
            message: "a plugin removed the output folder".into(),
            bad_input: false,
        })?;
    let summary = Summary::new(scenario, sim.world.resource::<Tally>());
    if cluster.sharded() {
        // Every rank's parts, listed in rank 0's manifest; the gather also waits for every
        // rank to have closed its files before rank 0 moves the folder into place.
        let files = serde_json::to_vec(dir.files()).map_err(|e| OutputError::Io {
            path: dir.path(""),
            source: std::io::Error::other(e),
        })?;
        let gathered = cluster.gather(&files);
        tracing::info!(
            rank = cluster.rank(),
            bytes = cluster.bytes_sent(),
            "collectives: bytes sent"
        );
        let Some(all) = gathered else {
            return Ok(RunReport {
                summary,
                out_dir: scenario.output.dir.clone(),
                wall: started.elapsed(),
                loop_wall,
                customer_hours: scenario.customers() * u64::from(total),
                threads,
                churn_scoring: None,
                spend_scoring: None,
                drift: None,
                report: None,
                bytes_per_customer,
                peak_memory: peak_resident_memory(),
            });
        };
        for (rank, bytes) in all.iter().enumerate().skip(1) {
            let files: Vec<crate::output::FileEntry> =
                serde_json::from_slice(bytes).map_err(|e| OutputError::Io {
                    path: dir.path(""),
                    source: std::io::Error::other(format!("rank {rank}'s list of files: {e}")),
                })?;
            dir.add_written(files);
        }
    }
    let json = serde_json::to_vec_pretty(&summary).map_err(|e| OutputError::Io {
        path: dir.path("summary.json"),
        source: std::io::Error::other(e),
    })?;
    dir.write_file("summary.json", &json)?;
    stopped()?;
    let report = if options.report {
        let report_started = Instant::now();
        let charts = sim
            .world
            .get_resource::<crate::report::charts::PluginCharts>()
            .map(|c| c.0.clone())
            .unwrap_or_default();
        let built = crate::report::build(&dir.path(""), &charts)?;
        for f in built.files {
            dir.add(f);
        }
        Some((report_started.elapsed(), built.quality.passed))
    } else {
        None
    };
    phases.end("summary and report");
    stopped()?;
    if options.timings {
        let report = timings.report(started.elapsed(), threads);
        let json = serde_json::to_vec_pretty(&report).map_err(|e| OutputError::Io {
            path: dir.path(TIMINGS),
            source: std::io::Error::other(e),
        })?;
        dir.write_file(TIMINGS, &json)?;
    }
    let out_dir = dir.finish(&scenario.name, scenario.seed)?;
    let churn_scoring = sim
        .world
        .get_resource::<ChurnScorer>()
        .map(|s| (s.elapsed, s.rows_scored));
    let spend_scoring = sim
        .world
        .get_resource::<crate::systems::churn_model::SpendScorer>()
        .map(|s| (s.elapsed, s.rows_scored));
    let drift = sim
        .world
        .get_resource::<crate::systems::churn_model::DriftMonitor>()
        .map(|d| {
            // The scorings are checkpointed, the time is this process's own.
            let drifted = d.scorings.iter().filter(|s| s.drifted).count();
            (d.elapsed, d.scorings.len() as u64, drifted)
        });
    Ok(RunReport {
        summary,
        out_dir,
        wall: started.elapsed(),
        loop_wall,
        customer_hours: scenario.customers() * u64::from(total),
        threads,
        churn_scoring,
        spend_scoring,
        drift,
        report,
        bytes_per_customer,
        peak_memory: peak_resident_memory(),
    })
}
