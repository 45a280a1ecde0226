//! `bazaar calibrate`: builds personas and a calendar from a real transaction log and shows
//! how well a simulation of them fits it.
//!
//! The steps, each its own module: read the log as shopping days ([`log`]); segment the
//! customers into personas by k-means ([`segment`]); estimate each persona's visit hazard,
//! weekday and hour profiles, basket and churn, and each holiday's effect ([`estimate`]);
//! refine what interacts in the simulation (a persona's visit scale, which loyalty and the
//! budget pull down, and its budget) by the method of simulated moments, with common random
//! numbers (the same seed each evaluation, so every customer draws the same streams and the
//! objective moves only with the parameters); write the scenario ([`write`]); simulate it
//! and score it statistic by statistic against the real data, and against customers held
//! out of the fit ([`stats`], [`report`]).

pub mod estimate;
pub mod log;
pub mod market;
pub mod report;
pub mod segment;
pub mod stats;
pub mod write;

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::Instant;

use argmin::core::{CostFunction, Executor, State};
use argmin::solver::neldermead::NelderMead;
use chrono::Duration;
use thiserror::Error;

use self::estimate::PersonaFit;
use self::log::{Log, Mapping};
use self::stats::Score;
use self::write::Tuning;
use crate::run::{RunOptions, run};
use crate::scenario::{Format, Overrides, Scenario};

/// Fewest held-out customers a held-out validation is run with.
const MIN_HELD_OUT: usize = 20;

/// What can go wrong.
#[derive(Debug, Error)]
pub enum CalibrateError {
    /// The log, the mapping or another input is unusable.
    #[error("{0}")]
    Input(String),
    /// A fitting step failed.
    #[error("calibration failed: {0}")]
    Fit(String),
    /// Writing the outputs failed.
    #[error("{0}")]
    Io(String),
}

impl CalibrateError {
    /// Whether the user's input is at fault (exit 2) rather than the machine (exit 1).
    pub fn is_bad_input(&self) -> bool {
        matches!(self, Self::Input(_))
    }
}

/// How to calibrate.
#[derive(Debug, Clone)]
pub struct Options {
    /// The transaction log (Parquet or CSV).
    pub log: PathBuf,
    /// Its columns.
    pub mapping: Mapping,
    /// Hours added to the log's times (a log kept in UTC).
    pub utc_offset: i32,
    /// A holiday calendar whose events' effects are estimated.
    pub calendar: Option<PathBuf>,
    /// ISO 4217 code of the log's money.
    pub currency: String,
    /// Number of personas; `None` chooses by silhouette.
    pub personas: Option<usize>,
    /// Largest K tried without `personas`.
    pub max_personas: usize,
    /// Share of customers held out of the fit and compared with a simulation of their size.
    pub holdout: f64,
    /// Seed of the split and the simulations.
    pub seed: u64,
    /// Output folder (must not exist, or be empty).
    pub out: PathBuf,
    /// Scenario name.
    pub name: String,
    /// Worker threads of the simulations.
    pub threads: usize,
    /// Most Nelder-Mead iterations of the simulated moments (0: no refinement).
    pub iterations: u64,
    /// Print progress to stderr.
    pub progress: bool,
}

/// A calibration's results, as `fit.json` holds them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    /// The scenario name.
    pub name: String,
    /// The log read.
    pub log: LogFacts,
    /// Silhouette of each K tried.
    pub silhouettes: Vec<(usize, f64)>,
    /// Personas: name, customers, and the simulated-moments targets against the fit.
    pub personas: Vec<PersonaFacts>,
    /// Calendar events found in the log.
    pub events: Vec<EventFacts>,
    /// The simulated moments' search.
    pub moments: Moments,
    /// Each statistic, simulated against the customers the fit used.
    pub in_sample: Vec<Score>,
    /// Each statistic, a simulation of the held-out customers' size against them.
    pub held_out: Option<Vec<Score>>,
    /// Wall time of each step, seconds.
    pub timings: Vec<(String, f64)>,
}

/// What the log held.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LogFacts {
    /// The file.
    pub path: String,
    /// Rows read.
    pub rows: u64,
    /// Customers.
    pub customers: usize,
    /// Shopping days (customer-days with purchases).
    pub visits: usize,
    /// Customer-days with no positive value, left out.
    pub dropped_visits: u64,
    /// Categories.
    pub categories: usize,
    /// Distinct stores, when mapped.
    pub stores: Option<usize>,
    /// First day.
    pub first: String,
    /// Last day.
    pub last: String,
    /// Customers the fit used.
    pub fit_customers: usize,
    /// Customers held out.
    pub held_out_customers: usize,
}

/// One persona's fit.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PersonaFacts {
    /// Name.
    pub name: String,
    /// Customers.
    pub customers: usize,
    /// Shopping days per customer-day: real, simulated.
    pub visit_rate: (f64, f64),
    /// Mean value of a shopping day: real, simulated.
    pub mean_value: (f64, f64),
    /// The tuning the moments chose.
    pub visit_scale: f64,
    /// Budget over monthly spend.
    pub budget: f64,
}

/// One calendar event's estimate.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EventFacts {
    /// Event name.
    pub name: String,
    /// Days seen.
    pub days: usize,
    /// Shopping days on them, against those expected.
    pub visits: (f64, f64),
    /// Traffic factor.
    pub traffic: f64,
    /// Purchase factor.
    pub purchase: f64,
    /// Closed.
    pub closed: bool,
    /// The eve's traffic, when the data shows one.
    pub eve: Option<f64>,
}

/// The simulated moments' search.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Moments {
    /// Simulations run.
    pub evaluations: usize,
    /// Objective before and after (sum of squared log ratios of the moments).
    pub objective: (f64, f64),
    /// Iterations of Nelder-Mead.
    pub iterations: u64,
}

/// Runs a calibration and writes its outputs into `options.out`.
pub fn calibrate(o: &Options) -> Result<Outcome, CalibrateError> {
    let mut clock = Steps::new(o.progress);
    check_out(&o.out)?;
    if !(0.0..0.9).contains(&o.holdout) {
        return Err(CalibrateError::Input(
            "--holdout is the share of customers held out: at least 0, under 0.9".into(),
        ));
    }
    if !crate::scenario::validate::is_folder_name(&o.name) {
        return Err(CalibrateError::Input(format!(
            "the scenario name `{}` cannot be used as a folder name\n  hint: give --name with letters, digits, '-', '_' and '.'",
            o.name
        )));
    }
    if crate::money::Currency::from_code(&o.currency).is_none() {
        return Err(CalibrateError::Input(format!(
            "`{}` is not an ISO 4217 currency code\n  hint: e.g. --currency USD, INR, EUR",
            o.currency
        )));
    }
    let (calendar, calendar_name) = match &o.calendar {
        Some(p) => (read_calendar(p)?, p.display().to_string()),
        None => (Default::default(), "no calendar".to_owned()),
    };
    let mut all = Log::read(&o.log, &o.mapping, o.utc_offset)?;
    rename_categories(&mut all);
    clock.say(format!(
        "{} rows, {} customers, {} shopping days, {} categories, {} to {}",
        all.rows,
        all.customers.len(),
        all.visits.len(),
        all.categories.len(),
        all.first,
        all.last
    ));
    clock.lap("read");
    let held = |key: &str| {
        let h = blake3::hash(format!("{}:{key}", o.seed).as_bytes());
        let x = u64::from_le_bytes(h.as_bytes()[..8].try_into().unwrap_or_default());
        (x as f64 / u64::MAX as f64) < o.holdout
    };
    let fit_log = all.subset(|k| !held(k));
    let hold_log = (o.holdout > 0.0).then(|| all.subset(held));
    let segments = segment::segment(&fit_log, o.personas, o.max_personas)?;
    clock.say(format!(
        "{} personas (silhouettes {:?})",
        segments.k, segments.silhouettes
    ));
    clock.lap("segment");

    let by = fit_log.by_customer();
    let mut members = vec![Vec::new(); segments.k];
    for (c, s) in segments.of.iter().enumerate() {
        if let Some(s) = s {
            members[*s].push(c);
        }
    }
    members.retain(|m| !m.is_empty());
    let mut fits: Vec<PersonaFit> = members
        .iter()
        .map(|m| estimate::persona(&fit_log, m, &by))
        .collect();
    fits.sort_by(|a, b| b.visit_rate.total_cmp(&a.visit_rate));
    let mut values: Vec<f64> = fits.iter().map(|f| f.mean_value).collect();
    values.sort_by(f64::total_cmp);
    let median_value = values.get(values.len() / 2).copied().unwrap_or(0.0);
    let names = unique(
        fits.iter()
            .map(|f| write::name(f.mean_gap, f.mean_value, median_value)),
    );
    for (f, name) in fits.iter_mut().zip(names) {
        f.name = name;
    }

    let events = estimate::calendar(&fit_log, &calendar);
    clock.lap("estimate");

    let guard = work_dir(&o.out)?;
    let work = guard.path().to_path_buf();
    // Named in comments and a description of the written files: one line, no quotes.
    let source: String = o
        .log
        .file_name()
        .map_or_else(
            || o.log.display().to_string(),
            |f| f.to_string_lossy().into_owned(),
        )
        .chars()
        .map(|c| if c.is_control() || c == '"' { ' ' } else { c })
        .collect();
    let population: Vec<write::Population> = fits
        .iter()
        .map(|f| write::Population {
            persona: f.name.clone(),
            count: (f.customers - f.acquired) as u64,
            new_per_day: f.acquired as f64 / f64::from(fit_log.days()),
        })
        .collect();
    let description = format!(
        "Calibrated by bazaar calibrate from {source}: {} customers, {} to {}",
        fit_log.customers.len(),
        fit_log.first,
        fit_log.last
    );
    let scenario_text = write::scenario(
        &o.name,
        &description,
        o.seed,
        &fit_log.first.to_string(),
        &fit_log.last.to_string(),
        &o.currency,
        &all.categories,
        &population,
    );
    write_file(&work.join("scenario.ron"), &scenario_text)?;
    write_file(
        &work.join("calendar.ron"),
        &write::calendar(&calendar, &events, &source, &calendar_name),
    )?;
    let ctx = Context {
        work: &work,
        fits: &fits,
        categories: &all.categories,
        source: &source,
        threads: o.threads,
        evaluations: Cell::new(0),
        end: fit_log.last,
    };
    // Simulated moments.
    let k = fits.len();
    let start = vec![Tuning::default(); k];
    let before = ctx.objective(&start)?;
    let mut tuning = start.clone();
    let mut after = before;
    let mut iterations = 0;
    if o.iterations > 0 {
        let x0: Vec<f64> = theta(&start);
        let mut simplex = vec![x0.clone()];
        for i in 0..x0.len() {
            let mut x = x0.clone();
            x[i] += if i < k { 0.2 } else { -0.4 };
            simplex.push(x);
        }
        let solver = NelderMead::new(simplex)
            .with_sd_tolerance(1e-3)
            .map_err(|e| CalibrateError::Fit(e.to_string()))?;
        let res = Executor::new(&ctx, solver)
            .configure(|s| s.max_iters(o.iterations))
            .run()
            .map_err(|e| CalibrateError::Fit(format!("simulated moments: {e}")))?;
        iterations = res.state().get_iter();
        if let Some(best) = res.state().get_best_param() {
            tuning = tunings(best, k);
            after = res.state().get_best_cost();
        }
    }
    let evaluations = ctx.evaluations.get();
    clock.say(format!(
        "simulated moments: objective {before:.4} -> {after:.4} in {evaluations} simulations"
    ));
    clock.lap("moments");

    // The calibrated scenario, simulated against the fit's customers.
    ctx.write_personas(&tuning)?;
    let (sim, per_persona) = ctx.simulate(None, "check")?;
    let windows = holiday_windows(&fit_log, &calendar);
    let in_sample = stats::score(
        stats::measure(&fit_log, &windows),
        stats::measure(&sim, &windows),
    );
    let held_out = match &hold_log {
        Some(h) if h.customers.len() < MIN_HELD_OUT => {
            clock.say(format!(
                "only {} customers held out: too few to validate on (at least {MIN_HELD_OUT})",
                h.customers.len()
            ));
            None
        }
        Some(h) => {
            let scale = h.customers.len() as f64 / fit_log.customers.len().max(1) as f64;
            let (sim, _) = ctx.simulate(Some(scale), "held-out")?;
            Some(stats::score(
                stats::measure(h, &windows),
                stats::measure(&sim, &windows),
            ))
        }
        _ => None,
    };
    clock.lap("validate");
    let mut outcome = Outcome {
        name: o.name.clone(),
        log: LogFacts {
            path: o.log.display().to_string(),
            rows: all.rows,
            customers: all.customers.len(),
            visits: all.visits.len(),
            dropped_visits: all.dropped_visits,
            categories: all.categories.len(),
            stores: all.stores,
            first: all.first.to_string(),
            last: all.last.to_string(),
            fit_customers: fit_log.customers.len(),
            held_out_customers: hold_log.as_ref().map_or(0, |h| h.customers.len()),
        },
        silhouettes: segments.silhouettes.clone(),
        personas: fits
            .iter()
            .zip(&tuning)
            .zip(&per_persona)
            .map(|((f, t), m)| PersonaFacts {
                name: f.name.clone(),
                customers: f.customers,
                visit_rate: (f.visit_rate, m.0),
                mean_value: (f.mean_value, m.1),
                visit_scale: t.visits,
                budget: t.budget,
            })
            .collect(),
        events: events
            .iter()
            .map(|e| EventFacts {
                name: e.name.clone(),
                days: e.days,
                visits: (e.visits, e.expected),
                traffic: e.traffic,
                purchase: e.purchase,
                closed: e.closed(),
                eve: e.eve.map(|(v, x)| v / x.max(1.0)),
            })
            .collect(),
        moments: Moments {
            evaluations,
            objective: (before, after),
            iterations,
        },
        in_sample,
        held_out,
        timings: clock.timings.clone(),
    };
    report::write(&work, &outcome)?;
    put_in_place(guard, &o.out)?;
    clock.lap("report");
    outcome.timings = clock.timings;
    Ok(outcome)
}

/// The moments' parameters: ln visit scales, then ln budgets.
fn theta(t: &[Tuning]) -> Vec<f64> {
    t.iter()
        .map(|t| t.visits.ln())
        .chain(t.iter().map(|t| t.budget.ln()))
        .collect()
}

fn tunings(x: &[f64], k: usize) -> Vec<Tuning> {
    (0..k)
        .map(|i| Tuning {
            visits: x[i].clamp(-3.0, 3.0).exp(),
            budget: x[k + i].clamp(-1.0, 3.0).exp(),
        })
        .collect()
}

/// What each simulation of the moments needs.
struct Context<'a> {
    work: &'a Path,
    fits: &'a [PersonaFit],
    categories: &'a [String],
    source: &'a str,
    threads: usize,
    evaluations: Cell<usize>,
    /// The log's last day: where exposure ends.
    end: chrono::NaiveDate,
}

impl Context<'_> {
    fn write_personas(&self, tuning: &[Tuning]) -> Result<(), CalibrateError> {
        write_file(
            &self.work.join("personas.ron"),
            &write::personas(self.fits, tuning, self.categories, self.source),
        )
    }

    /// Simulates the scenario in the work folder (scaled by `scale`), returning its visits
    /// and each persona's (shopping days per active customer-day, mean value).
    fn simulate(
        &self,
        scale: Option<f64>,
        tag: &str,
    ) -> Result<(Log, Vec<(f64, f64)>), CalibrateError> {
        self.evaluations.set(self.evaluations.get() + 1);
        let path = self.work.join("scenario.ron");
        let mut scenario = Scenario::load(&path, &crate::sim::registry()).map_err(|e| {
            CalibrateError::Input(format!(
                "the scenario calibrated from this log is not a valid scenario: {e}\n  hint: prices, quantities or spending beyond Bazaar's limits (docs/scenarios.md) come from the log's values; check the value and quantity columns"
            ))
        })?;
        let out = self.work.join(format!("sim-{tag}"));
        scenario
            .apply(Overrides {
                scale,
                out: Some(out.clone()),
                formats: vec![Format::Csv],
                ..Overrides::default()
            })
            .map_err(CalibrateError::Fit)?;
        run(
            &scenario,
            RunOptions {
                threads: self.threads,
                report: false,
                ..RunOptions::default()
            },
        )
        .map_err(|e| CalibrateError::Fit(format!("simulating the calibrated scenario: {e}")))?;
        let (log, personas) = Log::from_run(&out)?;
        let _ = std::fs::remove_dir_all(&out);
        let moments = persona_moments(&log, &personas, self.fits, self.end);
        Ok((log, moments))
    }

    fn objective(&self, tuning: &[Tuning]) -> Result<f64, CalibrateError> {
        self.write_personas(tuning)?;
        let (_, m) = self.simulate(None, "moments")?;
        Ok(self
            .fits
            .iter()
            .zip(&m)
            .map(|(f, &(rate, value))| {
                let r = (rate.max(1e-9) / f.visit_rate.max(1e-9)).ln();
                let v = (value.max(1e-9) / f.mean_value.max(1e-9)).ln();
                r * r + v * v
            })
            .sum())
    }
}

impl CostFunction for &Context<'_> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, x: &Self::Param) -> Result<f64, argmin::core::Error> {
        self.objective(&tunings(x, self.fits.len()))
            .map_err(|e| argmin::core::Error::msg(e.to_string()))
    }
}

/// Each persona's shopping days per customer-day observed (from each customer's first
/// visit to `end`) and mean value of a shopping day: the estimator the real data's moments
/// use ([`estimate::persona`]), applied to a simulation's visits.
fn persona_moments(
    log: &Log,
    personas: &[String],
    fits: &[PersonaFit],
    end: chrono::NaiveDate,
) -> Vec<(f64, f64)> {
    let mut sums = vec![(0.0, 0.0, 0.0); fits.len()];
    for (c, visits) in log.by_customer().into_iter().enumerate() {
        let Some(first) = visits.first() else {
            continue;
        };
        let Some(k) = fits.iter().position(|f| f.name == personas[c]) else {
            continue;
        };
        sums[k].0 += (end - first.date).num_days() as f64 + 1.0;
        sums[k].1 += visits.len() as f64;
        sums[k].2 += visits.iter().map(|v| v.value).sum::<f64>();
    }
    sums.into_iter()
        .map(|(exposure, n, value)| (n / exposure.max(1.0), value / n.max(1.0)))
        .collect()
}

/// The dates around each calendar event the log covers (three days either side of its
/// reach), merged, for the holiday revenue statistic.
fn holiday_windows(
    log: &Log,
    calendar: &crate::scenario::schema::CalendarFile,
) -> Vec<(String, chrono::NaiveDate, chrono::NaiveDate)> {
    let mut days = std::collections::BTreeSet::new();
    let three = Duration::days(3);
    for e in &calendar.events {
        if let Some((_, _, a, b)) = estimate::event_dates(estimate::spec(e)) {
            let a = a.checked_sub_signed(three).unwrap_or(a);
            let b = b.checked_add_signed(three).unwrap_or(b);
            // The log's first and last days may be partly observed.
            days.extend(estimate::within(a, b, log).filter(|d| *d > log.first && *d < log.last));
        }
    }
    days.into_iter().map(|d| (String::new(), d, d)).collect()
}

/// Category names as scenario identifiers, unique.
fn rename_categories(log: &mut Log) {
    log.categories = unique(log.categories.iter().map(|c| write::identifier(c)));
}

/// `names` with a repeated one numbered: `weekly_mid`, `weekly_mid_2`...
fn unique(names: impl Iterator<Item = String>) -> Vec<String> {
    let mut used: Vec<String> = Vec::new();
    for base in names {
        let mut name = base.clone();
        let mut i = 2;
        while used.contains(&name) {
            name = format!("{base}_{i}");
            i += 1;
        }
        used.push(name);
    }
    used
}

fn read_calendar(path: &Path) -> Result<crate::scenario::schema::CalendarFile, CalibrateError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        CalibrateError::Input(format!("cannot read the calendar {}: {e}", path.display()))
    })?;
    ron::Options::default()
        .with_default_extension(
            ron::extensions::Extensions::IMPLICIT_SOME
                | ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES,
        )
        .from_str::<crate::scenario::schema::CalendarFile>(&text)
        .map_err(|e| {
        CalibrateError::Input(format!(
            "{}:{}:{}: {}\n  hint: a calendar file is `Calendar(events: [...])`, as scenarios/calendars/us.ron",
            path.display(),
            e.span.start.line,
            e.span.start.col,
            e.code
        ))
    })
        .and_then(|cal| {
            for e in &cal.events {
                let s = estimate::spec(e);
                if estimate::event_dates(s).is_none() {
                    return Err(CalibrateError::Input(format!(
                        "{}: the event `{}` has dates that do not parse, run backwards or are out of range\n  hint: dates are \"YYYY-MM-DD\", `to` on or after `from`",
                        path.display(),
                        s.name
                    )));
                }
            }
            Ok(cal)
        })
}

/// The wall time of each step of a calibration, and its progress lines on stderr when
/// asked for.
struct Steps {
    progress: bool,
    at: Instant,
    timings: Vec<(String, f64)>,
}

impl Steps {
    fn new(progress: bool) -> Self {
        Self {
            progress,
            at: Instant::now(),
            timings: Vec::new(),
        }
    }

    /// Prints a progress line.
    fn say(&self, m: String) {
        if self.progress {
            eprintln!("calibrate: {m}");
        }
    }

    /// Ends step `what`: its wall time since the last.
    fn lap(&mut self, what: &str) {
        self.timings
            .push((what.to_owned(), self.at.elapsed().as_secs_f64()));
        self.at = Instant::now();
    }
}

/// The work folder beside the output, removed on any failure (when it drops), put in place
/// by [`put_in_place`] at the end.
pub(crate) fn work_dir(out: &Path) -> Result<tempfile::TempDir, CalibrateError> {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| io_err(&parent, e))?;
    tempfile::Builder::new()
        .prefix(".bazaar-work-")
        .tempdir_in(&parent)
        .map_err(|e| io_err(&parent, e))
}

/// Renames the finished work folder to `out`: an empty folder the user made is replaced,
/// anything else refused.
pub(crate) fn put_in_place(work: tempfile::TempDir, out: &Path) -> Result<(), CalibrateError> {
    check_out(out)?;
    if out.is_dir() {
        std::fs::remove_dir(out).map_err(|e| io_err(out, e))?;
    }
    if let Ok(d) = std::fs::File::open(work.path()) {
        let _ = d.sync_all();
    }
    std::fs::rename(work.path(), out).map_err(|e| io_err(out, e))?;
    // The folder is in place: nothing for the guard to remove.
    let _ = work.keep();
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(d) = std::fs::File::open(parent) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The output folder must be new or an empty folder: a calibration never replaces what is
/// there. Checked first and again just before the folder is put in place.
pub(crate) fn check_out(out: &Path) -> Result<(), CalibrateError> {
    let refuse = |what: &str| {
        Err(CalibrateError::Input(format!(
            "{} {what}\n  hint: name a new folder with --out; nothing there is replaced",
            out.display()
        )))
    };
    match std::fs::symlink_metadata(out) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(out, e)),
        Ok(m) if !m.is_dir() => refuse("already exists and is not a folder"),
        Ok(_) => match std::fs::read_dir(out) {
            Ok(mut entries) => {
                if entries.next().is_none() {
                    Ok(())
                } else {
                    refuse("already exists and is not empty")
                }
            }
            Err(e) => Err(io_err(out, e)),
        },
    }
}

pub(crate) fn write_file(path: &Path, text: &str) -> Result<(), CalibrateError> {
    use std::io::Write as _;
    // Synced, so the folder put in place after it never holds a file cut short.
    let mut f = std::fs::File::create(path).map_err(|e| io_err(path, e))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| io_err(path, e))
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> CalibrateError {
    CalibrateError::Io(format!("{}: {e}", path.display()))
}
