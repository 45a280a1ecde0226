//! The `bazaar` binary: parses the command line, sets up logging, calls the library, and turns
//! every error into a message and an exit code (2: bad input, 1: failed run).

use std::process::ExitCode;

use clap::Parser;

use bazaar::cli::{Cli, Command, RunArgs};
use bazaar::ml::export::ExportOptions;
use bazaar::run::{Checkpoints, Invocation, Resume, RunOptions, RunReport, StopFlag, run};
use bazaar::scenario::{Overrides, Scenario};
use bazaar::sim;

#[global_allocator]
static ALLOC: bazaar::alloc::Alloc = bazaar::alloc::Alloc;

/// Exit code for input the user must fix.
const EXIT_BAD_INPUT: u8 = 2;
/// Exit code for a run that failed.
const EXIT_FAILED: u8 = 1;

/// The processes this one shares a run with (`mpirun`), or this process alone.
static CLUSTER: std::sync::OnceLock<bazaar::cluster::Cluster> = std::sync::OnceLock::new();

fn main() -> ExitCode {
    // Output piped into a reader that stops early (`bazaar systems | head`) ends the process
    // quietly, as for other command-line tools, instead of a panic on the failed write.
    #[cfg(unix)]
    // SAFETY: restores the default disposition of one signal before any thread starts; no
    // handler runs Rust code.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    bazaar::alloc::Alloc::tune_system_allocator();
    bazaar::alloc::Prefault::enable();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // Under `mpirun`, `bazaar run` (or `bazaar resume`) is one rank of a sharded run; MPI
    // stays initialised until `main` returns. Other commands (and processes a run starts)
    // never join.
    let running = matches!(
        (&cli.command, &cli.run),
        (Some(Command::Run(_) | Command::Resume(_)), _) | (None, Some(_))
    );
    let _mpi = if running {
        match bazaar::cluster::join() {
            Ok((cluster, guard)) => {
                if cluster.sharded() {
                    // A panic on one rank would leave the others waiting in a collective
                    // (MPI's finalize waits for them): it ends every rank instead.
                    let abort = cluster.clone();
                    let report = std::panic::take_hook();
                    std::panic::set_hook(Box::new(move |info| {
                        report(info);
                        eprintln!(
                            "error: rank {} of {} panicked; the sharded run is ended on every rank",
                            abort.rank(),
                            abort.ranks()
                        );
                        abort.abort(101)
                    }));
                }
                let _ = CLUSTER.set(cluster);
                Some(guard)
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_BAD_INPUT);
            }
        }
    } else {
        None
    };
    match (cli.command, cli.run) {
        (Some(Command::Run(args)), _) | (None, Some(args)) => run_command(args),
        (Some(Command::Validate { scenarios }), _) => validate_command(&scenarios),
        (Some(Command::Check { dir }), _) => check_command(&dir),
        (Some(Command::Models { action, mlflow }), _) => models_command(action, mlflow),
        (
            Some(Command::Track {
                dir,
                mlflow,
                run_id,
            }),
            _,
        ) => track_command(&dir, mlflow, run_id.as_deref()),
        (
            Some(Command::Report {
                dir,
                allow_failed_checks,
            }),
            _,
        ) => match bazaar::report::rebuild(&dir, &bazaar::sim::registry().charts()) {
            Ok(built) => {
                println!("{}", dir.join("report.html").display());
                if built.quality.passed {
                    ExitCode::SUCCESS
                } else if allow_failed_checks {
                    eprintln!("warning: some data-quality checks failed (see data_quality.json)");
                    ExitCode::SUCCESS
                } else {
                    eprintln!(
                        "error: some data-quality checks failed (see data_quality.json; `bazaar check {}` lists them)\n  hint: --allow-failed-checks builds the report anyway and exits 0",
                        dir.display()
                    );
                    ExitCode::from(EXIT_FAILED)
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(EXIT_BAD_INPUT)
            }
        },
        (Some(Command::Calibrate(args)), _) => calibrate_command(args),
        (Some(Command::Ab(args)), _) => ab_command(args),
        (Some(Command::Mlops(args)), _) => mlops_command(args),
        (Some(Command::Sweep(args)), _) => sweep_command(args),
        (Some(Command::Resume(args)), _) => resume_command(args),
        (Some(Command::Serve(args)), _) => serve_command(&args),
        (
            Some(Command::QueryWorker {
                dir,
                rows,
                memory,
                threads,
            }),
            _,
        ) => query_worker(&dir, rows, memory, threads),
        (Some(Command::Systems), _) => {
            for (i, r) in sim::registry().iter().enumerate() {
                if i > 0 {
                    println!();
                }
                print!("{}", r.describe());
            }
            ExitCode::SUCCESS
        }
        (Some(Command::Tables), _) => {
            print!("{}", bazaar::output::schema::reference());
            ExitCode::SUCCESS
        }
        (None, None) => {
            eprintln!("error: no scenario given\n  hint: bazaar scenarios/diwali.ron (see --help)");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

fn check_command(dir: &std::path::Path) -> ExitCode {
    let manifest_ok = match bazaar::output::place::verify(dir) {
        Ok(m) if m.problems.is_empty() => {
            println!(
                "pass manifest ({} files, {} bytes, sizes and BLAKE3 hashes match, none missing or extra)",
                m.files, m.bytes
            );
            true
        }
        Ok(m) => {
            println!(
                "FAIL manifest ({} problems): {}",
                m.problems.len(),
                m.problems.join("; ")
            );
            false
        }
        Err(e) => {
            println!("FAIL manifest: {e}");
            false
        }
    };
    // An experiment's folder (`bazaar ab`) holds figures, not tables: its manifest is all.
    let experiment = bazaar::output::Manifest::read(dir)
        .is_ok_and(|m| m.files.iter().any(|f| f.name == "experiment.json"));
    if experiment {
        return if manifest_ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_FAILED)
        };
    }
    match bazaar::report::check(dir) {
        Ok(q) => {
            for c in &q.checks {
                println!(
                    "{} {} ({} rows, {} failures){}",
                    if c.passed { "pass" } else { "FAIL" },
                    c.name,
                    c.rows,
                    c.failures,
                    if c.examples.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", c.examples.join("; "))
                    }
                );
            }
            let money = bazaar::report::folder_currency(dir);
            for o in &q.outliers {
                println!(
                    "outliers {}: {} of {} baskets above {}",
                    o.persona,
                    o.outliers,
                    o.baskets,
                    money.whole(o.fence_rs)
                );
            }
            if q.passed && manifest_ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_FAILED)
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

fn validate_command(paths: &[std::path::PathBuf]) -> ExitCode {
    let known = sim::registry();
    let mut ok = true;
    for path in paths {
        match Scenario::load(path, &known) {
            Ok(s) => match bazaar::run::check_capacity(&s, Default::default()) {
                Ok(()) => println!(
                    "{}: ok ({} personas, {} customers, {} days from {})",
                    path.display(),
                    s.personas.len(),
                    s.customers(),
                    s.days,
                    s.start
                ),
                Err(e) => {
                    eprintln!("error: {e}");
                    ok = false;
                }
            },
            Err(e) => {
                eprintln!("error: {e}");
                ok = false;
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_BAD_INPUT)
    }
}

fn sweep_command(args: bazaar::cli::SweepArgs) -> ExitCode {
    use_registry(args.tracking.mlflow.as_deref());
    use bazaar::experiment::file::default_out;
    use bazaar::sweep::{SweepError, file, run};
    let threads = threads_or_all(args.threads);
    let fail = |e: SweepError| {
        eprintln!("error: {e}");
        ExitCode::from(e.exit_code())
    };
    let overrides = bazaar::scenario::Overrides {
        scale: args.scale,
        ..Default::default()
    };
    let mut sweep = match file::load(&args.sweep, &overrides) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    // The command line wins over the file.
    sweep.replications = args.replications.unwrap_or(sweep.replications);
    let out = args.out.unwrap_or_else(|| default_out(&args.sweep));
    let stop = match stop_on_signals() {
        Ok(s) => s,
        Err(e) => {
            return fail(SweepError::Run(format!(
                "cannot handle SIGINT/SIGTERM: {e}"
            )));
        }
    };
    let tracking = match start_tracking(&args.tracking, |c| {
        let experiment = sweep
            .points
            .first()
            .map_or(sweep.name.as_str(), |p| p.scenario.name.as_str());
        let mut params = vec![
            ("sweep".to_owned(), sweep.name.clone()),
            ("base".to_owned(), sweep.base.clone()),
            ("design".to_owned(), format!("{:?}", sweep.kind)),
            ("points".to_owned(), sweep.points.len().to_string()),
            ("replications".to_owned(), sweep.replications.to_string()),
        ];
        for p in &sweep.parameters {
            params.push((format!("parameter.{}", p.name), p.at.clone()));
        }
        bazaar::mlflow::start_parent(c, experiment, &format!("sweep {}", sweep.name), &params)
    }) {
        Ok(t) => t,
        Err(e) => return fail(SweepError::Design(e.to_string())),
    };
    let clock = std::time::Instant::now();
    let outcome = match run(&sweep, &out, threads, !args.quiet, &stop) {
        Ok(o) => o,
        Err(e) => {
            fail_tracking(tracking.as_ref());
            return fail(e);
        }
    };
    if !args.quiet {
        println!(
            "{} points x {} replications in {:.1} s ({:.0}% intervals over the replications):",
            outcome.points.len(),
            outcome.replications,
            clock.elapsed().as_secs_f64(),
            outcome.confidence * 100.0
        );
        for point in &outcome.points {
            let figures: Vec<String> = outcome
                .charted
                .iter()
                .filter_map(|m| {
                    let x = point.metrics.get(m)?;
                    Some(format!("{m} {:.2}", x.mean))
                })
                .collect();
            println!(
                "  {:>4}  {:<40} {}",
                point.point,
                file::show_point(&outcome.parameters, &point.values),
                figures.join("  ")
            );
        }
        println!(
            "wrote {}, sweep.json and sweep.html",
            out.join("sweep.parquet").display()
        );
    }
    finish_logging(tracking.as_ref(), "sweep", &out, |t| {
        bazaar::mlflow::log_sweep(&t.client, &t.run, &outcome, &out)
    })
}

fn ab_command(args: bazaar::cli::AbArgs) -> ExitCode {
    use_registry(args.tracking.mlflow.as_deref());
    use bazaar::experiment::{Design, ExperimentError, load, run, write};
    let threads = threads_or_all(args.threads);
    let fail = |e: ExperimentError| {
        eprintln!("error: {e}");
        ExitCode::from(if e.is_bad_input() {
            EXIT_BAD_INPUT
        } else {
            EXIT_FAILED
        })
    };
    let overrides = bazaar::scenario::Overrides {
        scale: args.scale,
        ..Default::default()
    };
    let (mut design, metrics, default_out) = if bazaar::experiment::file::is_experiment(&args.base)
    {
        if !args.arms.is_empty() {
            return fail(ExperimentError::Design(format!(
                "{} is an experiment file, which names its arms: leave out --arm",
                args.base.display()
            )));
        }
        match bazaar::experiment::file::load(&args.base, &overrides) {
            Ok(e) => (
                e.design,
                e.metrics,
                bazaar::experiment::file::default_out(&args.base),
            ),
            Err(e) => return fail(e),
        }
    } else {
        let Some(fork) = args.fork_at else {
            return fail(ExperimentError::Design(
                "--fork-at is needed: the first day the arms differ (or give an experiment file)"
                    .into(),
            ));
        };
        if args.arms.is_empty() {
            return fail(ExperimentError::Design(
                "an experiment needs at least one --arm NAME=SCENARIO (or an experiment file)"
                    .into(),
            ));
        }
        let (base, arms) = match load(&args.base, &args.arms, &overrides) {
            Ok(x) => x,
            Err(e) => return fail(e),
        };
        let out = std::path::PathBuf::from(format!("out/{}-ab", base.name));
        let design = Design {
            base,
            arms,
            fork,
            replications: 5,
            confidence: 0.95,
            precision: 0.01,
        };
        (design, Vec::new(), out)
    };
    // The command line wins over the file.
    design.fork = args.fork_at.unwrap_or(design.fork);
    design.replications = args.replications.unwrap_or(design.replications);
    design.confidence = args.confidence.unwrap_or(design.confidence);
    design.precision = args.precision.unwrap_or(design.precision);
    let out = args.out.unwrap_or(default_out);
    if let Err(e) = bazaar::experiment::check_out(&out) {
        return fail(e);
    }
    let tracking = match start_tracking(&args.tracking, |c| {
        let arms: Vec<&str> = design.arms.iter().map(|(n, _)| n.as_str()).collect();
        let mut params = bazaar::mlflow::params(&design.base);
        params.extend([
            ("arms".to_owned(), arms.join(",")),
            ("fork".to_owned(), design.fork.to_string()),
            ("replications".to_owned(), design.replications.to_string()),
            ("confidence".to_owned(), design.confidence.to_string()),
        ]);
        let name = format!("ab {} against {}", design.base.name, arms.join(", "));
        bazaar::mlflow::start_parent(c, &design.base.name, &name, &params)
    }) {
        Ok(t) => t,
        Err(e) => return fail(ExperimentError::Design(e.to_string())),
    };
    let outcome = match run(&design, threads, !args.quiet)
        .and_then(|o| o.judged_on(&metrics, &design))
        .and_then(|o| write(&o, &out).map(|()| o))
    {
        Ok(o) => o,
        Err(e) => {
            fail_tracking(tracking.as_ref());
            return fail(e);
        }
    };
    if !args.quiet {
        println!(
            "{} replications, arms forked on {} ({:.0}% intervals, paired t):",
            outcome.replications,
            outcome.fork,
            outcome.confidence * 100.0
        );
        for d in outcome
            .differences
            .iter()
            .filter(|d| !bazaar::experiment::is_per_persona(&outcome.personas, &d.metric))
        {
            let mut interval = d
                .interval
                .map_or("-".to_owned(), |(lo, hi)| format!("{lo:.2} .. {hi:.2}"));
            if let (Some(s), Some((lo, hi))) = (d.skewness, d.bootstrap)
                && s.abs() > 1.0
            {
                interval += &format!("; skewed, bootstrap {lo:.2} .. {hi:.2}");
            }
            println!(
                "  {:<12} {:<28} base {:>14.2}  arm {:>14.2}  difference {:>12.2}  ({interval})",
                d.arm, d.metric, d.base, d.value, d.difference
            );
        }
        for v in &outcome.verdicts {
            println!("{v}.");
        }
        println!(
            "wrote {} and experiment.html",
            out.join("experiment.json").display()
        );
    }
    finish_logging(tracking.as_ref(), "experiment", &out, |t| {
        bazaar::mlflow::log_experiment(&t.client, &t.run, &outcome, &out)
    })
}

fn calibrate_command(args: bazaar::cli::CalibrateArgs) -> ExitCode {
    use bazaar::calibrate::{Options, calibrate, log::Mapping};
    let threads = threads_or_all(args.threads);
    let fail = |e: bazaar::calibrate::CalibrateError| {
        eprintln!("error: {e}");
        ExitCode::from(if e.is_bad_input() {
            EXIT_BAD_INPUT
        } else {
            EXIT_FAILED
        })
    };
    if let Some(targets) = args.targets {
        use bazaar::calibrate::market::{MarketOptions, calibrate_market};
        let options = MarketOptions {
            targets,
            out: args.out,
            threads,
            iterations: args.iterations,
            progress: !args.quiet,
        };
        return match calibrate_market(&options) {
            Ok(o) => {
                if !args.quiet {
                    let (met, all) = o.met();
                    println!("{met} of {all} figures met:");
                    for r in &o.targets {
                        println!(
                            "  {:<7} {}: {} against {}",
                            if r.met { "met" } else { "missed" },
                            r.target,
                            r.simulated.map_or("-".to_owned(), |x| format!("{x:.4}")),
                            r.wanted
                        );
                    }
                    let wall: f64 = o.timings.iter().map(|t| t.1).sum();
                    println!("wrote {} in {wall:.1} s", options.out.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        };
    }
    let Some(log) = args.log else {
        eprintln!("error: give a transaction log, or --targets with a market file");
        return ExitCode::from(EXIT_BAD_INPUT);
    };
    let mapping = match Mapping::parse(&args.map) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: --map: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let name = args.name.unwrap_or_else(|| {
        args.out
            .file_name()
            .map_or_else(|| "calibrated".into(), |n| n.to_string_lossy().into_owned())
    });
    let options = Options {
        log,
        mapping,
        utc_offset: args.utc_offset,
        calendar: args.calendar,
        currency: args.currency,
        personas: args.personas.map(usize::from),
        max_personas: usize::from(args.max_personas),
        holdout: args.holdout,
        seed: args.seed,
        out: args.out,
        name,
        threads,
        iterations: args.iterations.unwrap_or(40),
        progress: !args.quiet,
    };
    match calibrate(&options) {
        Ok(o) => {
            if !args.quiet {
                let scores = o.held_out.as_ref().unwrap_or(&o.in_sample);
                println!(
                    "{} personas; scores ({}):",
                    o.personas.len(),
                    if o.held_out.is_some() {
                        "held-out customers"
                    } else {
                        "customers of the fit"
                    }
                );
                for s in scores {
                    println!("  {:<24} {} {:.3}", s.name, s.metric, s.score);
                }
                let wall: f64 = o.timings.iter().map(|t| t.1).sum();
                println!("wrote {} in {wall:.1} s", options.out.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

fn run_command(args: RunArgs) -> ExitCode {
    use_registry(args.mlflow.as_deref());
    let mut scenario = match Scenario::load(&args.scenario, &sim::registry()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let formats: Vec<bazaar::scenario::Format> = args.format.iter().map(|&f| f.into()).collect();
    let overrides = Overrides {
        seed: args.seed,
        days: args.days,
        scale: args.scale,
        out: args.out.clone(),
        formats: formats.clone(),
    };
    let out = args.out.clone();
    if let Err(e) = scenario.apply(overrides) {
        eprintln!("error: {e}");
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    let mut checkpoints = Checkpoints {
        every: args.checkpoint_every,
        at: Vec::new(),
    };
    for date in &args.checkpoint_at {
        let day = (*date - scenario.start).num_days();
        if day <= 0 || day >= i64::from(scenario.days) {
            eprintln!(
                "error: --checkpoint-at {date} is not inside the run, which simulates {} to {}\n  hint: give a date after its first day and no later than its last",
                scenario.start,
                scenario.start + chrono::Days::new(u64::from(scenario.days.saturating_sub(1)))
            );
            return ExitCode::from(EXIT_BAD_INPUT);
        }
        checkpoints.at.push(day as u32);
    }
    let invocation = Invocation {
        cwd: std::env::current_dir().unwrap_or_default(),
        scenario: args.scenario.clone(),
        seed: args.seed,
        days: args.days,
        scale: args.scale,
        out: out.clone(),
        formats: formats.iter().map(|f| f.extension().to_owned()).collect(),
        features: args.features.then_some((
            args.snapshot_every,
            args.horizon,
            args.spend_horizon.unwrap_or(args.horizon),
        )),
        report: !args.no_report,
        checkpoints,
    };
    let track = bazaar::cli::TrackArgs {
        mlflow: args.mlflow.clone(),
        mlflow_optional: args.mlflow_optional,
    };
    let cluster = CLUSTER.get().cloned().unwrap_or_default();
    if cluster.sharded()
        && (track.mlflow.is_some() || std::env::var_os("MLFLOW_TRACKING_URI").is_some())
    {
        // Refused before any rank starts an MLflow run: every rank decides alike.
        if cluster.is_root() {
            eprintln!(
                "error: MLflow tracking (`--mlflow`, MLFLOW_TRACKING_URI) is not offered on a sharded run yet\n  hint: leave it unset and log the finished folder with `bazaar track`"
            );
        }
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    let tracking = match start_tracking(&track, |c| scenario_run(c, &scenario)) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let server = if args.serve {
        match start_live_server(&args, &scenario) {
            Ok(s) => Some(s),
            Err(code) => return code,
        }
    } else {
        None
    };
    let how = How {
        threads: args.threads,
        quiet: args.quiet,
        ort_lib: args.ort_lib,
        tracking,
        live: server.as_ref().map(LiveServer::sink),
        timings: args.timings,
    };
    let code = execute(&scenario, invocation, how, None);
    if let Some(server) = server {
        server.after(&scenario, code);
    }
    code
}

/// `run --serve`: the dashboard's server, told of the run as it goes.
#[cfg(feature = "serve")]
struct LiveServer(bazaar::serve::Running);

#[cfg(feature = "serve")]
impl LiveServer {
    fn sink(&self) -> bazaar::live::LiveSink {
        self.0.live.sink()
    }

    /// Tells the page how the run ended and serves on until Ctrl-C, if it finished.
    fn after(self, scenario: &Scenario, code: ExitCode) {
        use bazaar::live::LiveEvent;
        if code == ExitCode::SUCCESS {
            self.0.live.send(&LiveEvent::Finished {
                out: scenario.output.dir.clone(),
            });
            eprintln!(
                "bazaar: the run is served on http://{}/ until Ctrl-C",
                self.0.addr
            );
            match stop_on_signals() {
                Ok(stop) => self
                    .0
                    .serve_until(|| stop.load(std::sync::atomic::Ordering::Relaxed) != 0),
                Err(e) => eprintln!("error: cannot install signal handlers: {e}"),
            }
        } else {
            self.0.live.send(&LiveEvent::Failed {
                message: "the run ended without an output folder: see its error".into(),
            });
        }
    }
}

#[cfg(feature = "serve")]
fn start_live_server(args: &RunArgs, scenario: &Scenario) -> Result<LiveServer, ExitCode> {
    let options = bazaar::serve::ServeOptions {
        folders: Vec::new(),
        bind: args.bind,
        port: args.port,
        limits: bazaar::serve::query::Limits::default(),
    };
    bazaar::serve::start_live(&options, scenario.output.dir.clone(), scenario.name.clone())
        .map(LiveServer)
        .map_err(|e| {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_BAD_INPUT)
        })
}

#[cfg(not(feature = "serve"))]
struct LiveServer;

#[cfg(not(feature = "serve"))]
impl LiveServer {
    fn sink(&self) -> bazaar::live::LiveSink {
        std::sync::Arc::new(|_| {})
    }
    fn after(self, _: &Scenario, _: ExitCode) {}
}

#[cfg(not(feature = "serve"))]
fn start_live_server(_: &RunArgs, _: &Scenario) -> Result<LiveServer, ExitCode> {
    Err(not_built_with_serve())
}

#[cfg(not(feature = "serve"))]
fn not_built_with_serve() -> ExitCode {
    eprintln!(
        "error: this bazaar was built without the dashboard\n  hint: build it with the default features (`cargo build --release`), not --no-default-features"
    );
    ExitCode::from(EXIT_BAD_INPUT)
}

/// `bazaar serve`.
#[cfg(feature = "serve")]
fn serve_command(args: &bazaar::cli::ServeArgs) -> ExitCode {
    let options = bazaar::serve::ServeOptions {
        folders: args.folders.clone(),
        bind: args.bind,
        port: args.port,
        limits: bazaar::serve::query::Limits {
            timeout: std::time::Duration::from_secs(args.query_timeout),
            memory: usize::try_from(args.query_memory << 20).unwrap_or(usize::MAX),
            threads: threads_or_all(args.threads),
        },
    };
    match bazaar::serve::serve(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

#[cfg(not(feature = "serve"))]
fn serve_command(_: &bazaar::cli::ServeArgs) -> ExitCode {
    not_built_with_serve()
}

#[cfg(feature = "serve")]
fn query_worker(dir: &std::path::Path, rows: usize, memory: usize, threads: usize) -> ExitCode {
    let limits = bazaar::serve::query::Limits {
        // The server stops the worker at its own limit.
        timeout: std::time::Duration::from_secs(24 * 3600),
        memory,
        threads,
    };
    match bazaar::serve::query::worker(dir, limits, rows) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

#[cfg(not(feature = "serve"))]
fn query_worker(_: &std::path::Path, _: usize, _: usize, _: usize) -> ExitCode {
    not_built_with_serve()
}

/// `--mlflow`, when given, is also the registry a scenario's `models:/` URIs come from.
fn use_registry(uri: Option<&str>) {
    if let Some(uri) = uri {
        bazaar::mlflow::registry::set_server(uri);
    }
}

/// `bazaar mlops`: the retraining loop on a tracking server.
fn mlops_command(args: bazaar::cli::MlopsArgs) -> ExitCode {
    use bazaar::mlops::{Decision, MlopsError, Options, prepare, run};
    let fail = |e: MlopsError| {
        eprintln!("error: {e}");
        ExitCode::from(if e.is_bad_input() {
            EXIT_BAD_INPUT
        } else {
            EXIT_FAILED
        })
    };
    let Some(uri) = args.mlflow.clone().or_else(tracking_uri_from_env) else {
        return fail(MlopsError::Input(
            "the loop registers and promotes models on an MLflow tracking server: give --mlflow URI or set MLFLOW_TRACKING_URI\n  hint: `mlflow server --host 127.0.0.1 --port 5000` starts one (pip install mlflow)".into(),
        ));
    };
    use_registry(Some(&uri));
    let client = match bazaar::mlflow::Client::new(&uri) {
        Ok(c) => c,
        Err(e) => return fail(MlopsError::Input(e.to_string())),
    };
    let options = Options {
        scenario: args.scenario,
        scale: args.scale,
        out: args.out,
        model: args.model,
        metric: args.metric,
        guards: args.guards,
        replications: args.replications,
        confidence: args.confidence,
        threads: threads_or_all(args.threads),
        python: args.python,
        snapshot_every: args.snapshot_every,
        progress: !args.quiet,
    };
    let (scenario, out) = match prepare(&options) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    // The server must answer before anything runs.
    if let Err(e) = client.experiment(&scenario.name) {
        return fail(MlopsError::Input(e.to_string()));
    }
    match run(&options, scenario, &out, &client) {
        Ok(outcome) => {
            let what = match outcome.decision {
                Decision::NoDrift { .. } => "no drift",
                Decision::Promoted { .. } => "promoted",
                Decision::Kept { .. } => "kept the champion",
            };
            println!("{what}: {}", outcome.decision.reason());
            println!(
                "wrote {} (MLflow run {} on {})",
                out.join(bazaar::mlops::MLOPS_FILE).display(),
                outcome.mlflow_run,
                client.uri()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// A run on a tracking server, and whether losing the server is only a warning.
struct Tracking {
    client: bazaar::mlflow::Client,
    run: bazaar::mlflow::Run,
    optional: bool,
}

/// `--mlflow` (or `MLFLOW_TRACKING_URI`): a run on the tracking server made by `start`,
/// before anything is simulated. An unreachable server is an error, or with
/// `--mlflow-optional` a warning and no tracking.
fn start_tracking(
    args: &bazaar::cli::TrackArgs,
    start: impl FnOnce(
        &bazaar::mlflow::Client,
    ) -> Result<bazaar::mlflow::Run, bazaar::mlflow::MlflowError>,
) -> Result<Option<Tracking>, bazaar::mlflow::MlflowError> {
    let Some(uri) = args.mlflow.clone().or_else(tracking_uri_from_env) else {
        return Ok(None);
    };
    let started = bazaar::mlflow::Client::new(&uri).and_then(|client| {
        let run = start(&client)?;
        Ok(Tracking {
            client,
            run,
            optional: args.mlflow_optional,
        })
    });
    match started {
        Ok(t) => Ok(Some(t)),
        Err(e) if args.mlflow_optional => {
            eprintln!("warning: {e}\n  going on untracked (--mlflow-optional)");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// `MLFLOW_TRACKING_URI` when it names a server Bazaar can log to (`http://`); another
/// kind (`file:./mlruns`, `databricks`) is left alone with a warning.
fn tracking_uri_from_env() -> Option<String> {
    let uri = std::env::var("MLFLOW_TRACKING_URI").ok()?;
    if uri.starts_with("http://") {
        Some(uri)
    } else {
        eprintln!(
            "warning: MLFLOW_TRACKING_URI is `{uri}`; Bazaar logs only to http:// tracking servers, so this goes on untracked"
        );
        None
    }
}

/// A run's MLflow run: in the scenario's experiment, with its params.
fn scenario_run(
    client: &bazaar::mlflow::Client,
    scenario: &Scenario,
) -> Result<bazaar::mlflow::Run, bazaar::mlflow::MlflowError> {
    let name = format!("{} seed {}", scenario.name, scenario.seed);
    bazaar::mlflow::start_parent(
        client,
        &scenario.name,
        &name,
        &bazaar::mlflow::params(scenario),
    )
}

/// Logs a finished experiment or sweep (`what`, written to `out`) with `log`, if tracked;
/// the exit code.
fn finish_logging(
    tracking: Option<&Tracking>,
    what: &str,
    out: &std::path::Path,
    log: impl FnOnce(&Tracking) -> Result<(), bazaar::mlflow::MlflowError>,
) -> ExitCode {
    let Some(t) = tracking else {
        return ExitCode::SUCCESS;
    };
    match log(t) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Ended as failed, not left running (no `bazaar track` finishes an experiment's).
            fail_tracking(Some(t));
            tracking_failed(
                t,
                &e,
                &format!(
                    "the {what} is complete in {}; its MLflow run {} is not",
                    out.display(),
                    t.run.id
                ),
            )
        }
    }
}

/// Ends a tracked command's run as failed, if it is tracked (the server may be gone too).
fn fail_tracking(tracking: Option<&Tracking>) {
    if let Some(t) = tracking {
        let _ = t.client.end_run(&t.run, "FAILED");
    }
}

/// Says how a finished command's logging failed and how to redo it; the exit code.
fn tracking_failed(t: &Tracking, e: &bazaar::mlflow::MlflowError, redo: &str) -> ExitCode {
    let level = if t.optional { "warning" } else { "error" };
    eprintln!("{level}: {e}\n  {redo}");
    if t.optional {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    }
}

/// Logs a finished folder into its run; a failure leaves the folder and says how to log it.
fn finish_tracking(t: &Tracking, dir: &std::path::Path) -> ExitCode {
    match bazaar::mlflow::log_folder(&t.client, &t.run, dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => tracking_failed(
            t,
            &e,
            &format!(
                "the run is complete in {}; log it into MLflow run {} later with `bazaar track {} --mlflow {} --run-id {}`",
                dir.display(),
                t.run.id,
                dir.display(),
                t.client.uri(),
                t.run.id
            ),
        ),
    }
}

/// `bazaar models`: the registry's versions and champion.
fn models_command(action: bazaar::cli::ModelsCommand, uri: Option<String>) -> ExitCode {
    use bazaar::cli::ModelsCommand;
    use bazaar::mlflow::{Client, registry};
    let Some(uri) = uri.or_else(tracking_uri_from_env) else {
        eprintln!("error: no tracking server: give --mlflow URI or set MLFLOW_TRACKING_URI");
        return ExitCode::from(EXIT_BAD_INPUT);
    };
    let client = match Client::new(&uri) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let done = match action {
        ModelsCommand::Register {
            name,
            card,
            description,
        } => registry::register(&client, &name, &card, &description).map(|v| {
            println!(
                "registered {} as {name} version {} (promote it with `bazaar models promote {name} {} --reason ...`)",
                card.display(),
                v.version,
                v.version
            );
        }),
        ModelsCommand::Promote {
            name,
            version,
            reason,
        } => registry::promote(&client, &name, &version.to_string(), &reason).map(|()| {
            println!("{name}@{} is version {version}", registry::CHAMPION);
        }),
        ModelsCommand::Rollback { name, reason } => {
            registry::rollback(&client, &name, &reason).map(|v| {
                println!("{name}@{} is back to version {v}", registry::CHAMPION);
            })
        }
        ModelsCommand::Show { name } => registry::champion(&client, &name).and_then(|v| {
            println!("{name}@{}: version {} ({})", registry::CHAMPION, v.version, v.source);
            for e in registry::history(&client, &name)? {
                println!(
                    "  {} {} version {}: {}",
                    e["when"].as_str().unwrap_or(""),
                    e["what"].as_str().unwrap_or(""),
                    e["version"].as_str().unwrap_or(""),
                    e["why"].as_str().unwrap_or("")
                );
            }
            Ok(())
        }),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// `bazaar track`: logs a finished output folder into a run (a new one, or `run_id`).
fn track_command(dir: &std::path::Path, uri: Option<String>, run_id: Option<&str>) -> ExitCode {
    use bazaar::mlflow::{Client, tags};
    let fail = |e: String| {
        eprintln!("error: {e}");
        ExitCode::from(EXIT_BAD_INPUT)
    };
    let Some(uri) = uri.or_else(tracking_uri_from_env) else {
        return fail("no tracking server: give --mlflow URI or set MLFLOW_TRACKING_URI".into());
    };
    if let Err(e) = bazaar::output::place::marked(dir) {
        return fail(format!(
            "{} is not a finished Bazaar output folder: {e}",
            dir.display()
        ));
    }
    let summary: serde_json::Value = match std::fs::read(dir.join("summary.json"))
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => return fail(format!("{}: {e}", dir.join("summary.json").display())),
    };
    let track = || -> Result<String, bazaar::mlflow::MlflowError> {
        let client = Client::new(&uri)?;
        let run = match run_id {
            Some(id) => client.run(id)?,
            None => {
                let name = summary["scenario"].as_str().unwrap_or("bazaar");
                let experiment = client.experiment(name)?;
                let seed = summary["seed"].to_string();
                let run =
                    client.start_run(&experiment, &format!("{name} seed {seed}"), &tags(), None)?;
                let params: Vec<(String, String)> =
                    ["scenario", "seed", "start", "days", "customers"]
                        .iter()
                        .map(|k| {
                            let v = &summary[*k];
                            (
                                (*k).to_owned(),
                                v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                            )
                        })
                        .collect();
                client.log(&run, &params, &[])?;
                run
            }
        };
        bazaar::mlflow::log_folder(&client, &run, dir)?;
        Ok(run.id)
    };
    match track() {
        Ok(id) => {
            println!("logged {} to MLflow run {id} at {uri}", dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// What `run` and `resume` take from their command lines beyond the invocation.
struct How {
    threads: Option<u16>,
    quiet: bool,
    ort_lib: Option<std::path::PathBuf>,
    tracking: Option<Tracking>,
    live: Option<bazaar::live::LiveSink>,
    timings: bool,
}

/// `--threads`, or every core.
fn threads_or_all(threads: Option<u16>) -> usize {
    threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, usize::from),
        usize::from,
    )
}

/// Runs `invocation` (going on from `resume` when given) with SIGINT and SIGTERM handled,
/// printing the summary unless quiet.
fn execute(
    scenario: &Scenario,
    invocation: Invocation,
    how: How,
    resume: Option<Resume>,
) -> ExitCode {
    let quiet = how.quiet;
    let stop = match stop_on_signals() {
        Ok(stop) => stop,
        Err(e) => {
            eprintln!("error: cannot install signal handlers: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let options = RunOptions {
        threads: threads_or_all(how.threads),
        progress: !quiet,
        features: invocation
            .features
            .map(|(every, horizon, spend_horizon)| ExportOptions {
                every,
                horizon,
                spend_horizon,
            }),
        ort_lib: how.ort_lib,
        report: invocation.report,
        checkpoints: invocation.checkpoints.clone(),
        invocation: Some(invocation),
        resume,
        stop: Some(stop),
        live: how.live.clone(),
        timings: how.timings,
        cluster: CLUSTER.get().cloned().unwrap_or_default(),
        ..RunOptions::default()
    };
    let cluster = options.cluster.clone();
    match run(scenario, options) {
        Ok(_) if !cluster.is_root() => ExitCode::SUCCESS,
        // Every rank stopped after the same hour (they agree on a stop each hour), or
        // refused the run alike before any rank waited for another: said once.
        Err(e) if cluster.sharded() && e.alike_on_every_rank() => {
            if cluster.is_root() {
                eprintln!("error: {e}");
            }
            ExitCode::from(e.exit_code())
        }
        Err(e) if cluster.sharded() => {
            // The other ranks may be waiting on this one: the whole run ends, and rank 0's
            // unfinished folder is cleared by the next run on the target.
            eprintln!(
                "error: rank {} of {}: {e}\n  note: the sharded run is ended on every rank; nothing was published",
                cluster.rank(),
                cluster.ranks()
            );
            cluster.abort(i32::from(e.exit_code()))
        }
        Ok(report) => {
            if !quiet {
                print_report(scenario, &report);
            }
            match &how.tracking {
                Some(t) => finish_tracking(t, &report.out_dir),
                None => ExitCode::SUCCESS,
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            if let Some(t) = &how.tracking {
                let status = if e.exit_code() >= 128 {
                    "KILLED"
                } else {
                    "FAILED"
                };
                let _ = t
                    .client
                    .tag(&t.run, &[("bazaar.error".to_owned(), e.to_string())]);
                let _ = t.client.end_run(&t.run, status);
            }
            ExitCode::from(e.exit_code())
        }
    }
}

/// `bazaar resume`: finds the checkpoint, rebuilds the run it was written by, and goes on.
/// Under `mpirun` each rank goes on from its own checkpoint, and the ranks agree on every
/// step before the run, so all of them go on, or all stop together.
fn resume_command(args: bazaar::cli::ResumeArgs) -> ExitCode {
    let cluster = CLUSTER.get().cloned().unwrap_or_default();
    let (path, snapshot, invocation) = match agreed(&cluster, find_checkpoint(&cluster, &args)) {
        Ok(found) => found,
        Err(code) => return code,
    };
    let scenario = match agreed(&cluster, resumed_scenario(&path, &snapshot, &invocation)) {
        Ok(scenario) => scenario,
        Err(code) => return code,
    };
    if !args.quiet && cluster.is_root() {
        eprintln!(
            "bazaar: resuming {} from the end of day {} of {} ({})",
            scenario.name,
            snapshot.header.day,
            scenario.days,
            path.display()
        );
    }
    // A resumed run's finished folder is logged with `bazaar track`.
    let how = How {
        threads: args.threads,
        quiet: args.quiet,
        ort_lib: args.ort_lib,
        tracking: None,
        live: None,
        timings: args.timings,
    };
    execute(&scenario, invocation, how, Some(Resume { path, snapshot }))
}

/// `outcome` if every rank of the run got one (alone: if this process did); else the exit
/// code, the error said by rank 0 when every rank failed (alike), by each rank that failed
/// otherwise. An empty error is one another rank says.
fn agreed<T>(
    cluster: &bazaar::cluster::Cluster,
    outcome: Result<T, String>,
) -> Result<T, ExitCode> {
    let failed = cluster.count(outcome.is_err());
    match outcome {
        Err(e) => {
            if e.is_empty() {
                // Rank 0 says why.
            } else if !cluster.sharded() || cluster.is_root() {
                eprintln!("error: {e}");
            } else if failed < cluster.ranks() as i64 {
                eprintln!("error: rank {} of {}: {e}", cluster.rank(), cluster.ranks());
            }
            Err(ExitCode::from(EXIT_BAD_INPUT))
        }
        Ok(_) if failed > 0 => Err(ExitCode::from(EXIT_BAD_INPUT)),
        Ok(found) => Ok(found),
    }
}

/// A checkpoint to go on from: where it is, read, and the invocation it holds.
type Found = (std::path::PathBuf, bazaar::checkpoint::Snapshot, Invocation);

/// The checkpoint this process goes on from. Rank 0 (or a process alone) finds the one
/// `bazaar resume` names and checks that it was written by as many processes as this run
/// has; under `mpirun` it tells the others the folder and the day, and each reads its own
/// file of that day ([`bazaar::checkpoint::rank_path`]).
fn find_checkpoint(
    cluster: &bazaar::cluster::Cluster,
    args: &bazaar::cli::ResumeArgs,
) -> Result<Found, String> {
    let root = if cluster.is_root() {
        root_checkpoint(cluster, args)
    } else {
        Err(String::new())
    };
    if !cluster.sharded() {
        return root;
    }
    let told = match &root {
        Ok((path, snapshot, _)) => path
            .to_str()
            .map(|p| format!("{}\n{p}", snapshot.header.day).into_bytes())
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let told = cluster.broadcast(told);
    if cluster.is_root() {
        return match root {
            Ok(_) if told.is_empty() => Err(
                "the checkpoint's folder is not named in UTF-8, which the ranks of a sharded run need"
                    .into(),
            ),
            root => root,
        };
    }
    let told = String::from_utf8(told).unwrap_or_default();
    let Some((day, path)) = told.split_once('\n') else {
        return Err(String::new());
    };
    let day: u32 = day.parse().map_err(|_| String::new())?;
    let own = bazaar::checkpoint::rank_path(std::path::Path::new(path), cluster.rank(), day);
    let (snapshot, invocation) = read_checkpoint(&own)?;
    let h = &snapshot.header;
    if h.rank as usize != cluster.rank() || h.day != day || h.ranks as usize != cluster.ranks() {
        return Err(format!(
            "cannot resume from `{}`: it is not rank {}'s checkpoint of day {day}",
            own.display(),
            cluster.rank()
        ));
    }
    Ok((own, snapshot, invocation))
}

/// A checkpoint file, read, and the invocation it holds.
fn read_checkpoint(
    path: &std::path::Path,
) -> Result<(bazaar::checkpoint::Snapshot, Invocation), String> {
    let snapshot = bazaar::checkpoint::Snapshot::read(path)
        .map_err(|e| format!("cannot resume from `{}`: {e}", path.display()))?;
    let invocation = Invocation::of(&snapshot)
        .map_err(|e| format!("cannot resume from `{}`: {e}", path.display()))?;
    Ok((snapshot, invocation))
}

/// [`find_checkpoint`] on rank 0, or alone: the checkpoint named, which must be rank 0's
/// of a run on as many processes as this one.
fn root_checkpoint(
    cluster: &bazaar::cluster::Cluster,
    args: &bazaar::cli::ResumeArgs,
) -> Result<Found, String> {
    // Absolute: the run goes on in the folder it was started in.
    let path = bazaar::checkpoint::locate(&args.checkpoint)
        .and_then(|p| std::path::absolute(&p).map_err(|e| e.to_string()))?;
    let (snapshot, invocation) = read_checkpoint(&path)?;
    let h = &snapshot.header;
    if h.rank != 0 {
        return Err(format!(
            "cannot resume from `{}`: it is rank {}'s checkpoint\n  hint: name rank 0's (`checkpoint.bazaar` beside it) or the run's folder",
            path.display(),
            h.rank
        ));
    }
    let written = h.ranks as usize;
    if written.max(1) != cluster.ranks() {
        use bazaar::cluster::{described, launcher};
        return Err(format!(
            "cannot resume from `{}`: it was written by a run on {}, this one is on {}\n  hint: resume it on {} (`{}bazaar resume {}`)",
            path.display(),
            described(written),
            described(cluster.ranks()),
            described(written),
            launcher(written),
            path.display()
        ));
    }
    Ok((path, snapshot, invocation))
}

/// The scenario a checkpoint's run was started with, loaded again in the folder it was
/// started in with the same options, and checked against the checkpoint
/// ([`bazaar::run::check_resumable`]).
fn resumed_scenario(
    path: &std::path::Path,
    snapshot: &bazaar::checkpoint::Snapshot,
    invocation: &Invocation,
) -> Result<Scenario, String> {
    std::env::set_current_dir(&invocation.cwd).map_err(|e| {
        format!(
            "cannot resume from `{}`: the run was started in `{}`, which cannot be entered now: {e}",
            path.display(),
            invocation.cwd.display()
        )
    })?;
    let mut scenario = Scenario::load(&invocation.scenario, &sim::registry()).map_err(|e| {
        format!(
            "{e}\n  note: resuming `{}`, written by a run of that scenario",
            path.display()
        )
    })?;
    let mut formats = Vec::new();
    for name in &invocation.formats {
        let format = bazaar::scenario::Format::from_extension(name).ok_or_else(|| {
            format!(
                "cannot resume from `{}`: unknown format `{name}`",
                path.display()
            )
        })?;
        formats.push(format);
    }
    scenario.apply(Overrides {
        seed: invocation.seed,
        days: invocation.days,
        scale: invocation.scale,
        out: invocation.out.clone(),
        formats,
    })?;
    bazaar::run::check_resumable(&scenario, &snapshot.header)
        .map_err(|e| format!("cannot resume from `{}`: {e}", path.display()))?;
    Ok(scenario)
}

/// SIGINT and SIGTERM ask the run to stop: it finishes the simulated day, writes a
/// checkpoint, keeps its temporary folder and exits 130 or 143. A second signal ends the
/// process at once (the folder keeps its last checkpoint, if it has one; the next run on
/// that folder clears it otherwise).
fn stop_on_signals() -> std::io::Result<StopFlag> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize};
    let stop: StopFlag = Arc::new(AtomicUsize::new(0));
    let asked = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 128 + signal, Arc::clone(&asked))?;
        signal_hook::flag::register_usize(signal, Arc::clone(&stop), signal as usize)?;
        signal_hook::flag::register(signal, Arc::clone(&asked))?;
    }
    Ok(stop)
}

fn print_report(scenario: &Scenario, r: &RunReport) {
    let s = &r.summary;
    let money = &scenario.money;
    let group = |n: u64| money.group(n);
    println!(
        "{}: {} customers, {} days ({} to {}), seed {}",
        s.scenario,
        group(s.customers),
        s.days,
        s.start,
        s.end,
        s.seed
    );
    println!(
        "  {} transactions, revenue {}, mean basket {}",
        group(s.totals.transactions),
        money.human(s.totals.revenue_paise),
        money.human(money.to_minor(s.mean_basket))
    );
    println!();
    println!(
        "  {:<22} {:>10} {:>13} {:>30} {:>8} {:>12}",
        "persona", "customers", "transactions", "revenue", "share", "mean basket"
    );
    for p in &s.personas {
        println!(
            "  {:<22} {:>10} {:>13} {:>30} {:>7.1}% {:>12}",
            p.label,
            group(p.customers),
            group(p.totals.transactions),
            money.human(p.totals.revenue_paise),
            p.revenue_share * 100.0,
            money.whole(p.mean_basket)
        );
    }
    let f = &s.festival_vs_ordinary;
    if f.days > 0 && f.other_days > 0 {
        println!(
            "\n  festival days: {} ({:.0} tx/day) vs ordinary: {} ({:.0} tx/day); revenue/day x{:.2}",
            f.days,
            f.transactions_per_day,
            f.other_days,
            f.other_transactions_per_day,
            f.revenue_uplift.unwrap_or(0.0)
        );
    }
    let w = &s.weekend_vs_weekday;
    if w.days > 0 && w.other_days > 0 {
        println!(
            "  weekend days: {} vs weekdays: {}; revenue/day x{:.2}, mean basket {} vs {}",
            w.days,
            w.other_days,
            w.revenue_uplift.unwrap_or(0.0),
            money.whole(w.mean_basket),
            money.whole(w.other_mean_basket)
        );
    }
    if s.totals.churned > 0 || s.totals.acquired > 0 {
        println!(
            "  customers: {} at the start, {} acquired, {} churned, {} at the end",
            group(s.customers),
            group(s.totals.acquired),
            group(s.totals.churned),
            group(s.customers_at_end)
        );
    }
    if s.totals.offers > 0 {
        println!(
            "  retention offers: {} costing {}",
            group(s.totals.offers),
            money.human(s.totals.offer_cost_paise)
        );
    }
    if s.totals.cost_paise > 0 {
        let t = &s.totals;
        println!(
            "  gross margin after retention offers: {} ({:.1}% of revenue; goods cost {})",
            money.human(t.revenue_paise - t.cost_paise - t.offer_cost_paise),
            100.0 * (t.revenue_paise - t.cost_paise - t.offer_cost_paise) as f64
                / (t.revenue_paise.max(1)) as f64,
            money.human(t.cost_paise)
        );
    }
    for (what, scoring) in [("churn", r.churn_scoring), ("spend", r.spend_scoring)] {
        if let Some((t, rows)) = scoring {
            println!(
                "  {what} scoring: {} rows in {:.3} s ({:.1}M rows/s, {:.1}% of the run)",
                group(rows),
                t.as_secs_f64(),
                rows as f64 / t.as_secs_f64().max(1e-9) / 1e6,
                100.0 * t.as_secs_f64() / r.wall.as_secs_f64()
            );
        }
    }
    if let Some((t, measured, drifted)) = r.drift {
        println!(
            "  drift: {drifted} of {measured} scorings drifted from their model's training data (the drift table); measured in {:.3} s ({:.1} ms a scoring)",
            t.as_secs_f64(),
            1e3 * t.as_secs_f64() / measured.max(1) as f64
        );
    }
    if let Some((t, passed)) = r.report {
        println!(
            "  report: {} in {:.2} s; data quality: {}",
            r.out_dir.join("report.html").display(),
            t.as_secs_f64(),
            if passed {
                "all checks passed"
            } else {
                "SOME CHECKS FAILED (see data_quality.json)"
            }
        );
    }
    if let (Some(per), Some(peak)) = (r.bytes_per_customer, r.peak_memory) {
        println!(
            "  memory: {per} bytes per customer resident after spawning; peak {} MiB",
            peak >> 20
        );
    }
    let rate = r.customer_hours as f64 / r.loop_wall.as_secs_f64().max(1e-9);
    println!(
        "\n  {:.2} s ({:.2} s simulating, {:.1}M customer-hours/s, {} threads) -> {}",
        r.wall.as_secs_f64(),
        r.loop_wall.as_secs_f64(),
        rate / 1e6,
        r.threads,
        r.out_dir.display()
    );
    let _ = scenario;
}
