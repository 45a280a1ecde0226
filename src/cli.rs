//! The command line: `bazaar <scenario.ron>` runs it; `run`, `validate`, `systems`, `tables`
//! subcommands; overrides for output folder, seed, length, scale and threads.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Bazaar: simulate how retail customers shop, hour by hour.
#[derive(Debug, Parser)]
#[command(
    name = "bazaar",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// A subcommand; without one, the scenario given is run.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Run options when no subcommand is given.
    #[command(flatten)]
    pub run: Option<RunArgs>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario (the default).
    Run(RunArgs),
    /// Check scenario files without running them: exit 0, or 2 with every problem listed.
    Validate {
        /// Scenario files.
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
    },
    /// List the optional systems a scenario can enable in `systems: [...]`.
    Systems,
    /// Print the output tables' column reference (Markdown; docs/outputs.md is this).
    Tables,
    /// Check an output folder: every file against the manifest (size and BLAKE3 hash, none
    /// missing or extra), then the data-quality checks; exit 0 if all pass, 1 if any fails.
    Check {
        /// The output folder.
        dir: PathBuf,
    },
    /// Build personas, a calendar and a ready scenario from a real transaction log, and
    /// report how well a simulation of them fits it (fit.json, fit.html).
    Calibrate(CalibrateArgs),
    /// An A/B experiment: the base scenario warms up once per replication, then branches at
    /// a date into arms (common random numbers), each compared with the base metric by
    /// metric (experiment.json, experiment.html).
    Ab(AbArgs),
    /// A sweep: a grid or Latin hypercube over scenario and behaviour parameters, each point
    /// run with replications in parallel (sweep.parquet, sweep.json, sweep.html); a sweep
    /// stopped or killed goes on where it was when the same command runs again.
    Sweep(SweepArgs),
    /// The retraining loop: simulate with the registry's champion, detect drift, train a
    /// challenger on the snapshots since, register it, run champion against challenger as an
    /// A/B experiment (common random numbers, fresh seeds) and promote it only if its gain's
    /// confidence interval excludes zero; every step logged to MLflow (mlops.json, and the
    /// simulation's and experiment's folders).
    Mlops(MlopsArgs),
    /// Explore output folders in the browser: key figures, charts under shared filters
    /// (dates, personas, categories, events, stores), a customer's history, read-only SQL
    /// with CSV/Parquet download, two folders side by side. Local and read-only.
    Serve(ServeArgs),
    /// `bazaar serve`'s worker for one analyst's query (SQL on stdin, Arrow IPC on stdout),
    /// run in a process of its own so its time limit can stop it.
    #[command(hide = true)]
    QueryWorker {
        /// The output folder.
        dir: PathBuf,
        /// Rows to return at most.
        #[arg(long)]
        rows: usize,
        /// Memory for the query, bytes.
        #[arg(long)]
        memory: usize,
        /// Threads.
        #[arg(long)]
        threads: usize,
    },
    /// Go on with a run that was stopped or killed, from its last checkpoint
    /// (`--checkpoint-every`, or the one a stop writes), into its output folder: the
    /// outputs are byte-identical to a run that never stopped.
    Resume(ResumeArgs),
    /// The model registry on an MLflow tracking server: register a model card as a new
    /// version, move the `champion` alias scenarios use (`models:/churn@champion`), go back.
    Models {
        /// What to do.
        #[command(subcommand)]
        action: ModelsCommand,
        /// The tracking server [default: $MLFLOW_TRACKING_URI].
        #[arg(long, value_name = "URI")]
        mlflow: Option<String>,
    },
    /// Log a finished output folder to an MLflow tracking server: its daily metrics and
    /// report into the run given (one `run --mlflow` started and could not finish), or a new
    /// run of the experiment named after its scenario.
    Track {
        /// The output folder.
        dir: PathBuf,
        /// The tracking server [default: $MLFLOW_TRACKING_URI].
        #[arg(long, value_name = "URI")]
        mlflow: Option<String>,
        /// The MLflow run to finish.
        #[arg(long)]
        run_id: Option<String>,
    },
    /// Rebuild charts, insights, data quality and report.html of an output folder; exit 1
    /// if a data-quality check fails.
    Report {
        /// The output folder.
        dir: PathBuf,
        /// Exit 0 even when data-quality checks fail (the report shows which).
        #[arg(long)]
        allow_failed_checks: bool,
    },
}

/// What `bazaar models` does.
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Register a model card (and the ONNX file and golden rows beside it) as a new version.
    Register {
        /// The registered model's name (`churn`, `spend`).
        name: String,
        /// The card (`models/churn.json`).
        card: PathBuf,
        /// What this version is.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Make a version the champion, recording why.
    Promote {
        /// The registered model.
        name: String,
        /// The version.
        version: u64,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Give the champion back to the version it had before its last change, recording why.
    Rollback {
        /// The registered model.
        name: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// The champion and every promotion and rollback.
    Show {
        /// The registered model.
        name: String,
    },
}

/// Logging to an MLflow tracking server.
#[derive(Debug, Clone, Args)]
pub struct TrackArgs {
    /// Log to this MLflow tracking server (`http://host:port`) [default:
    /// $MLFLOW_TRACKING_URI]: experiment = the (base) scenario's name; params, metrics and
    /// the reports as artifacts; an experiment or sweep as a parent run with a child per arm
    /// or point and replication. An unreachable server stops the command before anything
    /// runs.
    #[arg(long, value_name = "URI")]
    pub mlflow: Option<String>,
    /// With --mlflow: a tracking server that cannot be reached is a warning, and the command
    /// goes on untracked.
    #[arg(long)]
    pub mlflow_optional: bool,
}

/// Options of a run.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The scenario file (RON).
    pub scenario: PathBuf,
    /// Output folder (default: the scenario's `output.dir`, or `out/` and the scenario's name).
    #[arg(
        long,
        help = "Output folder [default: the scenario's `output.dir`, or out/<scenario name>]"
    )]
    pub out: Option<PathBuf>,
    /// Override the scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override the number of simulated days.
    #[arg(long)]
    pub days: Option<u32>,
    /// Multiply every persona's customer count by this factor.
    #[arg(long, value_parser = parse_scale)]
    pub scale: Option<f64>,
    /// Output formats, replacing the scenario's `output.formats` (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub format: Vec<FormatArg>,
    /// Worker threads [default: all cores].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
    /// No progress bar and no summary table; errors are still printed.
    #[arg(long, short)]
    pub quiet: bool,
    /// Skip charts, insights, data-quality checks and report.html.
    #[arg(long)]
    pub no_report: bool,
    /// Also write timings.json: where the run's time went (set-up, spawn, simulation,
    /// each table's build, encode and write, the finish), to find the critical path. It is
    /// listed in the manifest but, unlike every other output, differs from run to run.
    #[arg(long)]
    pub timings: bool,
    /// Also write features.csv: a training table for churn and spend models (features at
    /// snapshot days; label = churned within the next --horizon days, spend_next = spent in
    /// the next --spend-horizon days).
    #[arg(long)]
    pub features: bool,
    /// Days between feature snapshots (with --features).
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=i64::from(crate::limits::MAX_DAYS)))]
    pub snapshot_every: u32,
    /// ONNX Runtime library for churn scoring [default: $ORT_DYLIB_PATH, else Bazaar's cache,
    /// else fetched once from PyPI with pip].
    #[arg(long)]
    pub ort_lib: Option<PathBuf>,
    /// Label horizon in days (with --features).
    #[arg(long, default_value_t = 14, value_parser = clap::value_parser!(u32).range(1..=i64::from(crate::limits::MAX_DAYS)))]
    pub horizon: u32,
    /// Spend label horizon in days (with --features): `spend_next` is what the customer
    /// spends in the days after the snapshot [default: --horizon].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(crate::limits::MAX_DAYS)))]
    pub spend_horizon: Option<u32>,
    /// Log the run to this MLflow tracking server (`http://host:port`) [default:
    /// $MLFLOW_TRACKING_URI]: experiment = the scenario's name; params, daily metrics and
    /// the report as artifacts. An unreachable server stops the run before it starts.
    // Not a flattened `TrackArgs`: the default command's `Option<RunArgs>` would then not
    // count a bare scenario as given.
    #[arg(long, value_name = "URI")]
    pub mlflow: Option<String>,
    /// With --mlflow: a tracking server that cannot be reached is a warning, and the run
    /// goes on untracked.
    #[arg(long)]
    pub mlflow_optional: bool,
    /// Write a checkpoint every this many days (`7d` or `7`): the whole simulation state
    /// and the outputs' progress, kept in the run's temporary folder (each replaces the one
    /// before) until the run finishes. A run stopped or killed goes on from it with
    /// `bazaar resume`.
    #[arg(long, value_name = "DAYS", value_parser = parse_days)]
    pub checkpoint_every: Option<u32>,
    /// Write a checkpoint at the start of these dates (YYYY-MM-DD, comma-separated).
    #[arg(long, value_name = "DATE", value_delimiter = ',')]
    pub checkpoint_at: Vec<chrono::NaiveDate>,
    /// Serve the dashboard while the run simulates: progress and each closed day's figures
    /// reach the page as they happen, then the finished folder is shown; the server stays
    /// up until Ctrl-C.
    #[arg(long)]
    pub serve: bool,
    /// With --serve: the port (0 picks a free one).
    #[arg(long, default_value_t = 8765, requires = "serve")]
    pub port: u16,
    /// With --serve: the address to listen on. Anything but loopback lets other machines
    /// read the run.
    #[arg(long, default_value = "127.0.0.1", requires = "serve")]
    pub bind: std::net::IpAddr,
}

/// Options of `bazaar serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Output folders to serve (`bazaar run`'s --out, experiment arms, sweeps' runs).
    #[arg(required = true)]
    pub folders: Vec<PathBuf>,
    /// The port (0 picks a free one).
    #[arg(long, default_value_t = 8765)]
    pub port: u16,
    /// The address to listen on. Anything but loopback lets other machines read the
    /// folders.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: std::net::IpAddr,
    /// Stop a query after this many seconds.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub query_timeout: u64,
    /// Memory a query may use for joins, sorts and aggregations, in MiB (no spilling).
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u64).range(16..=1_048_576))]
    pub query_memory: u64,
    /// Threads a query runs on [default: all].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
}

/// Options of `bazaar resume`.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The checkpoint: its file (`checkpoint.bazaar`), the temporary folder holding it, or
    /// the run's output folder (whose interrupted run's checkpoint is found beside it).
    pub checkpoint: PathBuf,
    /// Worker threads [default: all cores]; outputs do not depend on it.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
    /// No progress bar and no summary table; errors are still printed.
    #[arg(long, short)]
    pub quiet: bool,
    /// Also write timings.json: where the run's time went (set-up, spawn, simulation,
    /// each table's build, encode and write, the finish), to find the critical path. It is
    /// listed in the manifest but, unlike every other output, differs from run to run.
    #[arg(long)]
    pub timings: bool,
    /// ONNX Runtime library for churn scoring (as for `run`).
    #[arg(long)]
    pub ort_lib: Option<PathBuf>,
}

/// Options of `bazaar ab`.
#[derive(Debug, Args)]
pub struct AbArgs {
    /// The base scenario (the control arm, and the warm-up every arm shares), or an
    /// experiment file (`Experiment(base: ..., fork_at: ..., arms: [...])`, docs/experiments.md)
    /// naming the base, the fork, the replications, the metrics and the arms.
    pub base: PathBuf,
    /// An arm, as NAME=SCENARIO (repeat for more): a scenario with the base's seed, dates,
    /// personas and catalog that differs from it from the fork on. Not with an experiment
    /// file, which names its arms.
    #[arg(long = "arm", value_name = "NAME=SCENARIO")]
    pub arms: Vec<String>,
    /// The first day the arms differ (YYYY-MM-DD), after the base's first day [an
    /// experiment file's `fork_at`].
    #[arg(long)]
    pub fork_at: Option<chrono::NaiveDate>,
    /// Replications: replication r runs every arm with the base's seed plus r [default: 5,
    /// or an experiment file's].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub replications: Option<u32>,
    /// Confidence level of the intervals [default: 0.95, or an experiment file's].
    #[arg(long)]
    pub confidence: Option<f64>,
    /// Precision wanted, as a share of the base's figure: the replications an interval that
    /// narrow needs are reported [default: 0.01, or an experiment file's].
    #[arg(long)]
    pub precision: Option<f64>,
    /// Scale every arm's population by this factor.
    #[arg(long)]
    pub scale: Option<f64>,
    /// Output folder for experiment.json and experiment.html [default: out/<base name>-ab]; it must not exist
    /// yet (or be empty).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Worker threads [default: all cores].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
    /// No progress on stderr and no table on stdout.
    #[arg(long)]
    pub quiet: bool,
    /// MLflow tracking.
    #[command(flatten)]
    pub tracking: TrackArgs,
}

/// Options of `bazaar mlops`.
#[derive(Debug, Args)]
pub struct MlopsArgs {
    /// The scenario (one with a churn model: scenarios/drift.ron).
    pub scenario: PathBuf,
    /// The tracking server holding the registry [default: $MLFLOW_TRACKING_URI].
    #[arg(long, value_name = "URI")]
    pub mlflow: Option<String>,
    /// The registered model retrained (made from the scenario's model if it has no champion).
    #[arg(long, default_value = "churn")]
    pub model: String,
    /// The metric judging champion against challenger (`churned`: fewer is better;
    /// `margin`, `revenue`: more is).
    #[arg(long, default_value = "churned")]
    pub metric: String,
    /// A guardrail metric (repeatable): the challenger is kept out if it is significantly
    /// worse on it, whatever its gain on --metric (`--guard margin`).
    #[arg(long = "guard", value_name = "METRIC")]
    pub guards: Vec<String>,
    /// Replications of the experiment.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(2..=10_000))]
    pub replications: u32,
    /// Confidence level of the gain's interval.
    #[arg(long, default_value_t = 0.95)]
    pub confidence: f64,
    /// Days between the feature snapshots the challenger learns from.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=366))]
    pub snapshot_every: u32,
    /// Scale the population by this factor.
    #[arg(long)]
    pub scale: Option<f64>,
    /// Output folder [default: out/<scenario>-mlops].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// A Python with the training packages, instead of the environment Bazaar makes in its
    /// cache on first need.
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,
    /// Worker threads [default: all cores].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
    /// Print only the decision.
    #[arg(long)]
    pub quiet: bool,
}

/// Options of `bazaar sweep`.
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// The sweep file (`Sweep(base: ..., parameters: [...])`, docs/experiments.md).
    pub sweep: PathBuf,
    /// Replications of each point [default: the file's, or 3].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub replications: Option<u32>,
    /// Scale every point's population by this factor [default: the file's `scale`].
    #[arg(long)]
    pub scale: Option<f64>,
    /// Output folder for sweep.parquet, sweep.json and sweep.html [default: out/<file
    /// stem>]: new, empty, or holding this sweep's unfinished runs, which it goes on from.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Worker threads [default: all cores].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
    /// No progress on stderr and no summary on stdout.
    #[arg(long)]
    pub quiet: bool,
    /// MLflow tracking.
    #[command(flatten)]
    pub tracking: TrackArgs,
}

/// Options of `bazaar calibrate`.
#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// The transaction log: Parquet (`.parquet`) or CSV, one row per purchase line or basket.
    #[arg(required_unless_present = "targets")]
    pub log: Option<PathBuf>,
    /// Tune a scenario to market figures instead of fitting a log: a market file naming the
    /// scenario and its targets (mean order value, orders per month, spend bands, category
    /// mix, festival uplifts); writes scenario.ron, fit.json and fit.html.
    #[arg(long, conflicts_with_all = ["log", "map", "utc_offset", "calendar", "personas", "holdout", "name", "currency", "max_personas", "seed"])]
    pub targets: Option<PathBuf>,
    /// Output folder for personas.ron, calendar.ron, scenario.ron, fit.json and fit.html;
    /// it must not exist yet (or be empty).
    #[arg(long)]
    pub out: PathBuf,
    /// Column mapping, `role=column` comma-separated; roles: customer, time, value
    /// (required; defaults customer_id, timestamp, total), basket, category, store, quantity.
    #[arg(long, default_value = "")]
    pub map: String,
    /// Hours to add to the log's times, for a log kept in UTC (e.g. -6 for US Central).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true, value_parser = clap::value_parser!(i32).range(-14..=14))]
    pub utc_offset: i32,
    /// A holiday calendar (e.g. scenarios/calendars/us.ron) whose events' effects are
    /// estimated from the log.
    #[arg(long)]
    pub calendar: Option<PathBuf>,
    /// ISO 4217 code of the log's money.
    #[arg(long, default_value = "USD")]
    pub currency: String,
    /// Number of personas [default: the K from 2 to --max-personas with the best mean
    /// silhouette].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub personas: Option<u16>,
    /// Largest number of personas tried when --personas is not given.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(2..=64))]
    pub max_personas: u16,
    /// Share of customers held out of the fit, then compared with a simulation of their
    /// number.
    #[arg(long, default_value_t = 0.3)]
    pub holdout: f64,
    /// Seed of the hold-out split and the simulations.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Scenario name [default: the output folder's name].
    #[arg(long)]
    pub name: Option<String>,
    /// Most Nelder-Mead iterations of the simulated moments (0: estimates only) [default:
    /// 40; with --targets, the market file's].
    #[arg(long)]
    pub iterations: Option<u64>,
    /// Worker threads of the simulations [default: all cores].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
    /// No progress messages.
    #[arg(long, short)]
    pub quiet: bool,
}

/// An output format on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// Comma-separated values.
    Csv,
    /// Apache Parquet, zstd-compressed.
    Parquet,
}

impl From<FormatArg> for crate::scenario::Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Csv => Self::Csv,
            FormatArg::Parquet => Self::Parquet,
        }
    }
}

/// `7d` or `7`: a positive number of days.
fn parse_days(s: &str) -> Result<u32, String> {
    let n = s.strip_suffix('d').unwrap_or(s);
    match n.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("`{s}` is not a number of days, e.g. 7d")),
    }
}

fn parse_scale(s: &str) -> Result<f64, String> {
    let x: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if x.is_finite() && x > 0.0 {
        Ok(x)
    } else {
        Err("the scale must be a positive number, e.g. 0.1 or 10".to_owned())
    }
}
