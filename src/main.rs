//! The `bazaar` binary: parses the command line, sets up logging, calls the library, and turns
//! every error into a message and an exit code (2: bad input, 1: failed run).

use std::process::ExitCode;

use clap::Parser;

use bazaar::cli::{Cli, Command, RunArgs};
use bazaar::ml::export::ExportOptions;
use bazaar::output::format::{group_indian, rupees_human};
use bazaar::run::{RunOptions, RunReport, run};
use bazaar::scenario::Scenario;
use bazaar::sim;

#[global_allocator]
static ALLOC: bazaar::alloc::Alloc = bazaar::alloc::Alloc;

/// Exit code for input the user must fix.
const EXIT_BAD_INPUT: u8 = 2;
/// Exit code for a run that failed.
const EXIT_FAILED: u8 = 1;

fn main() -> ExitCode {
    bazaar::alloc::Alloc::tune_system_allocator();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match (cli.command, cli.run) {
        (Some(Command::Run(args)), _) | (None, Some(args)) => run_command(args),
        (Some(Command::Validate { scenarios }), _) => validate_command(&scenarios),
        (Some(Command::Check { dir }), _) => check_command(&dir),
        (Some(Command::Report { dir }), _) => match bazaar::report::rebuild(&dir) {
            Ok(built) => {
                println!("{}", dir.join("report.html").display());
                if !built.quality.passed {
                    eprintln!("warning: some data-quality checks failed (see data_quality.json)");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(EXIT_BAD_INPUT)
            }
        },
        (Some(Command::Systems), _) => {
            for r in sim::registry() {
                println!("{:<16} {}", r.name, r.about);
            }
            ExitCode::SUCCESS
        }
        (None, None) => {
            eprintln!("error: no scenario given\n  hint: bazaar scenarios/diwali.ron (see --help)");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

fn check_command(dir: &std::path::Path) -> ExitCode {
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
            for o in &q.outliers {
                println!(
                    "outliers {}: {} of {} baskets above Rs {:.0}",
                    o.persona, o.outliers, o.baskets, o.fence_rs
                );
            }
            if q.passed {
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
    let known = sim::known_systems();
    let mut ok = true;
    for path in paths {
        match Scenario::load(path, &known) {
            Ok(s) => println!(
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
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_BAD_INPUT)
    }
}

fn run_command(args: RunArgs) -> ExitCode {
    let mut scenario = match Scenario::load(&args.scenario, &sim::known_systems()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    if let Some(seed) = args.seed {
        scenario.seed = seed;
    }
    if let Some(days) = args.days {
        if days == 0 {
            eprintln!("error: --days must be at least 1");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
        scenario.days = days;
    }
    if let Some(scale) = args.scale {
        scenario.scale(scale);
    }
    if let Some(out) = args.out {
        scenario.output.dir = out;
    }
    if !args.format.is_empty() {
        scenario.output.formats.clear();
        for &f in &args.format {
            if !scenario.output.formats.contains(&f.into()) {
                scenario.output.formats.push(f.into());
            }
        }
    }
    let options = RunOptions {
        threads: args.threads.map_or_else(
            || std::thread::available_parallelism().map_or(1, usize::from),
            usize::from,
        ),
        progress: !args.quiet,
        features: args.features.then_some(ExportOptions {
            every: args.snapshot_every,
            horizon: args.horizon,
        }),
        ort_lib: args.ort_lib,
        report: !args.no_report,
        ..RunOptions::default()
    };
    match run(&scenario, options) {
        Ok(report) => {
            if !args.quiet {
                print_report(&scenario, &report);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(if e.is_bad_input() {
                EXIT_BAD_INPUT
            } else {
                EXIT_FAILED
            })
        }
    }
}

fn print_report(scenario: &Scenario, r: &RunReport) {
    let s = &r.summary;
    println!(
        "{}: {} customers, {} days ({} to {}), seed {}",
        s.scenario,
        group_indian(s.customers),
        s.days,
        s.start,
        s.end,
        s.seed
    );
    println!(
        "  {} transactions, revenue {}, mean basket {}",
        group_indian(s.totals.transactions),
        rupees_human(s.totals.revenue_paise),
        rupees_human((s.mean_basket * 100.0).round() as i64)
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
            group_indian(p.customers),
            group_indian(p.totals.transactions),
            rupees_human(p.totals.revenue_paise),
            p.revenue_share * 100.0,
            format!("Rs {:.0}", p.mean_basket)
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
            "  weekend days: {} vs weekdays: {}; revenue/day x{:.2}, mean basket Rs {:.0} vs Rs {:.0}",
            w.days,
            w.other_days,
            w.revenue_uplift.unwrap_or(0.0),
            w.mean_basket,
            w.other_mean_basket
        );
    }
    if s.totals.churned > 0 || s.totals.acquired > 0 {
        println!(
            "  customers: {} at the start, {} acquired, {} churned, {} at the end",
            group_indian(s.customers),
            group_indian(s.totals.acquired),
            group_indian(s.totals.churned),
            group_indian(s.customers_at_end)
        );
    }
    if s.totals.offers > 0 {
        println!(
            "  retention offers: {} costing {}",
            group_indian(s.totals.offers),
            rupees_human(s.totals.offer_cost_paise)
        );
    }
    if let Some((t, rows)) = r.churn_scoring {
        println!(
            "  churn scoring: {} rows in {:.3} s ({:.1}M rows/s, {:.1}% of the run)",
            group_indian(rows),
            t.as_secs_f64(),
            rows as f64 / t.as_secs_f64().max(1e-9) / 1e6,
            100.0 * t.as_secs_f64() / r.wall.as_secs_f64()
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
