//! `bazaar ab`: A/B experiments. A base scenario warms up once per replication, then
//! branches at a date into arms that differ from it on (a promotion switched on, a price
//! changed), each arm forked from the base's checkpoint ([`Simulation::fork`]) so that every
//! customer draws the same random streams in every arm: common random numbers, which make an
//! arm identical to the base differ by exactly zero and a small effect visible in few
//! replications. Each arm is compared with the base replication by replication: the paired
//! difference of each metric from the fork on, with its confidence interval, effect size and
//! the replications a given precision needs.

pub mod file;
pub mod report;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};
use statrs::statistics::Statistics;

use crate::analytics::collect::AnalyticsPlugin;
use crate::records::{Tally, Totals};
use crate::scenario::{Overrides, Scenario};
use crate::sim::{Simulation, registry};
use crate::systems::churn_model::ChurnModelPlugin;

/// Reading figures back as serde_json writes them: one that was not a number (a behaviour's
/// metric of 0/0, a mean of nothing) is `null` in the file and NaN again here, so the file
/// still reads.
mod lenient {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer};

    fn nan(x: Option<f64>) -> f64 {
        x.unwrap_or(f64::NAN)
    }

    fn pair(p: Option<(Option<f64>, Option<f64>)>) -> Option<(f64, f64)> {
        p.map(|(a, b)| (nan(a), nan(b)))
    }

    pub fn number<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Option::deserialize(d).map(nan)
    }

    pub fn numbers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        Vec::<Option<f64>>::deserialize(d).map(|v| v.into_iter().map(nan).collect())
    }

    pub fn interval<'de, D: Deserializer<'de>>(d: D) -> Result<Option<(f64, f64)>, D::Error> {
        Option::deserialize(d).map(pair)
    }

    pub fn intervals<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Option<(f64, f64)>>, D::Error> {
        Vec::deserialize(d).map(|v| v.into_iter().map(pair).collect())
    }

    pub fn by_name<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, f64>, D::Error> {
        BTreeMap::<String, Option<f64>>::deserialize(d)
            .map(|m| m.into_iter().map(|(k, v)| (k, nan(v))).collect())
    }

    pub fn series_by_name<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, Vec<f64>>, D::Error> {
        BTreeMap::<String, Vec<Option<f64>>>::deserialize(d).map(|m| {
            m.into_iter()
                .map(|(k, v)| (k, v.into_iter().map(nan).collect()))
                .collect()
        })
    }
}

/// What an experiment compares.
#[derive(Debug, Clone)]
pub struct Design {
    /// The base scenario (the control arm, `base`).
    pub base: Scenario,
    /// The other arms: a name and a scenario each.
    pub arms: Vec<(String, Scenario)>,
    /// The first day the arms differ.
    pub fork: NaiveDate,
    /// Replications: replication `r` runs every arm with the base's seed plus `r`.
    pub replications: u32,
    /// The confidence level of the intervals (0.95).
    pub confidence: f64,
    /// The precision wanted, as a share of the base's figure: the replications needed for
    /// an interval that narrow are reported.
    pub precision: f64,
}

/// Why an experiment cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    /// The design is wrong (exit code 2).
    #[error("{0}")]
    Design(String),
    /// A simulation failed.
    #[error("{0}")]
    Run(String),
}

impl ExperimentError {
    /// Whether the input is at fault (exit code 2) rather than the run.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, Self::Design(_))
    }
}

/// The metrics of one arm in one replication, from the fork to the end.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Measured {
    /// The arm.
    pub arm: String,
    /// The replication, from 0.
    pub replication: u32,
    /// Its seed.
    pub seed: u64,
    /// Each metric over all personas, then `metric.persona` for each persona.
    #[serde(deserialize_with = "lenient::by_name")]
    pub metrics: BTreeMap<String, f64>,
    /// Each of [`DAILY`]'s metrics day by day over the whole run (the days before the fork
    /// are the shared warm-up's).
    #[serde(deserialize_with = "lenient::series_by_name")]
    pub daily: BTreeMap<String, Vec<f64>>,
}

/// An arm's difference from the base day by day on one metric.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DailyDifference {
    /// The arm.
    pub arm: String,
    /// The metric.
    pub metric: String,
    /// The mean paired difference, day by day from the run's first day.
    #[serde(deserialize_with = "lenient::numbers")]
    pub difference: Vec<f64>,
    /// Its confidence interval (paired t), day by day; `null` with one replication.
    #[serde(deserialize_with = "lenient::intervals")]
    pub interval: Vec<Option<(f64, f64)>>,
}

/// An arm against the base on one metric.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Difference {
    /// The arm.
    pub arm: String,
    /// What it is compared with: `base`, or another arm (`between`).
    pub against: String,
    /// The metric (`revenue`, or `revenue.premium` for one persona).
    pub metric: String,
    /// The base's mean over the replications.
    #[serde(deserialize_with = "lenient::number")]
    pub base: f64,
    /// The arm's mean.
    #[serde(deserialize_with = "lenient::number")]
    pub value: f64,
    /// The mean paired difference, arm less base.
    #[serde(deserialize_with = "lenient::number")]
    pub difference: f64,
    /// Its confidence interval (paired t); `null` with one replication.
    #[serde(deserialize_with = "lenient::interval")]
    pub interval: Option<(f64, f64)>,
    /// A percentile bootstrap interval of the mean difference (resampling replications,
    /// [`BOOTSTRAP`] times); `null` with one replication. Read it rather than the t
    /// interval when the differences are skewed.
    #[serde(deserialize_with = "lenient::interval")]
    pub bootstrap: Option<(f64, f64)>,
    /// The sample skewness of the differences; `null` when they do not vary. Beyond ±1 the
    /// t interval's assumption of a symmetric mean is doubtful at few replications.
    pub skewness: Option<f64>,
    /// The standard deviation of the paired differences.
    #[serde(deserialize_with = "lenient::number")]
    pub sd: f64,
    /// The mean difference over that standard deviation (Cohen's d of paired samples);
    /// `null` when every difference is the same.
    pub effect_size: Option<f64>,
    /// Replications for an interval of ± `precision` × the base's figure; `null` when the
    /// differences do not vary (any number will do) or the base's figure is 0.
    pub replications_needed: Option<u64>,
    /// Customers (the starting population, its persona mix kept) for an interval of
    /// ± `precision` × the base's figure at the replications run, taking the metric as a
    /// sum over independent customers (its spread grows with the square root of their
    /// number); `null` where `replications_needed` is, or where the population is unknown.
    pub customers_needed: Option<u64>,
}

/// A day of an experiment's calendar (the base's), for the dashboard's bands and event
/// filter.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Day {
    /// The date.
    pub date: NaiveDate,
    /// One of a festival's full-effect days.
    pub festival: bool,
    /// Saturday or Sunday.
    pub weekend: bool,
    /// The events in force, `+`-joined.
    pub events: String,
}

/// An experiment's results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outcome {
    /// The base scenario's name (absent from files written before it was kept).
    #[serde(default)]
    pub scenario: String,
    /// The base's seed (replication `r` ran with this plus `r`).
    #[serde(default)]
    pub seed: u64,
    /// The arms, base first.
    pub arms: Vec<String>,
    /// The personas, whose names end the per-persona metrics (`revenue.premium`).
    pub personas: Vec<String>,
    /// Their labels, in the same order.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Every day of the run with the base's calendar: the days of the daily series.
    #[serde(default)]
    pub days: Vec<Day>,
    /// The run's first day.
    pub start: NaiveDate,
    /// The fork date.
    pub fork: NaiveDate,
    /// Replications.
    pub replications: u32,
    /// Replications run at once.
    pub concurrent: usize,
    /// The currency, as the scenario has it.
    pub money: crate::money::Currency,
    /// Confidence level of the intervals.
    pub confidence: f64,
    /// Precision asked for, as a share of the base's figure.
    pub precision: f64,
    /// Every arm in every replication.
    pub measured: Vec<Measured>,
    /// Every arm but the base against the base, metric by metric.
    pub differences: Vec<Difference>,
    /// Every arm but the base against each arm listed before it, on the overall metrics.
    pub between: Vec<Difference>,
    /// Every arm but the base against the base, day by day.
    pub daily: Vec<DailyDifference>,
    /// Wall seconds of each replication's warm-up and of each arm after the fork.
    pub timings: Vec<(String, f64)>,
    /// One sentence per arm and overall metric (or per metric judged), from the
    /// differences.
    pub verdicts: Vec<String>,
    /// The metrics an experiment file asked to judge (empty: every overall metric).
    pub metrics: Vec<String>,
}

impl Outcome {
    /// The outcome with verdicts on `metrics` only (all when empty); a metric no arm has is
    /// refused, naming those there are.
    pub fn judged_on(
        mut self,
        metrics: &[String],
        design: &Design,
    ) -> Result<Self, ExperimentError> {
        if metrics.is_empty() {
            return Ok(self);
        }
        let known: std::collections::BTreeSet<&str> =
            self.differences.iter().map(|d| d.metric.as_str()).collect();
        if let Some(m) = metrics.iter().find(|m| !known.contains(m.as_str())) {
            return Err(ExperimentError::Design(format!(
                "metric `{m}` is not one the experiment measured: {}",
                known.iter().copied().collect::<Vec<_>>().join(", ")
            )));
        }
        self.verdicts = self
            .differences
            .iter()
            .chain(&self.between)
            .filter(|d| metrics.contains(&d.metric))
            .map(|d| verdict(d, &design.base.money, design.confidence))
            .collect();
        self.metrics = metrics.to_vec();
        Ok(self)
    }
}

/// Resamples of a bootstrap interval.
pub const BOOTSTRAP: usize = 2_000;

/// A metric from totals and the minor units of the currency's major one.
type Metric = fn(&Totals, f64) -> f64;

/// The metrics, each from the totals since the fork.
pub(crate) const METRICS: [(&str, Metric); 9] = [
    ("revenue", |t, per| t.revenue_paise as f64 / per),
    ("transactions", |t, _| t.transactions as f64),
    ("units", |t, _| t.units as f64),
    ("visits", |t, _| t.visits as f64),
    ("churned", |t, _| t.churned as f64),
    ("acquired", |t, _| t.acquired as f64),
    ("retention_cost", |t, per| t.offer_cost_paise as f64 / per),
    ("cost_of_goods", |t, per| t.cost_paise as f64 / per),
    // Gross margin after campaign cost: discounts are already out of revenue, retention
    // offers are paid on top.
    ("margin", |t, per| {
        (t.revenue_paise - t.cost_paise - t.offer_cost_paise) as f64 / per
    }),
];

/// The metrics that need the catalog's margins (a cost of goods).
pub(crate) const COSTED: [&str; 2] = ["cost_of_goods", "margin"];

/// The metrics a run has: all of [`METRICS`] when its catalog states margins, else those
/// that need no cost of goods.
fn metrics_of(sim: &Simulation) -> impl Iterator<Item = &'static (&'static str, Metric)> {
    let costed = sim
        .world
        .resource::<crate::sim::Model>()
        .personas
        .iter()
        .any(|p| !p.unit_cost.is_empty());
    METRICS
        .iter()
        .filter(move |(m, _)| costed || !COSTED.contains(m))
}

/// Whether `metric` is one persona's (`revenue.premium`) rather than an overall one.
pub fn is_per_persona(personas: &[String], metric: &str) -> bool {
    personas.iter().any(|p| {
        metric
            .strip_suffix(p.as_str())
            .is_some_and(|s| s.ends_with('.'))
    })
}

/// The metrics followed day by day (overall), for the charts of daily differences.
/// The metrics kept day by day.
pub const DAILY: [&str; 5] = ["revenue", "margin", "transactions", "units", "churned"];

/// Checks that the arms can branch from the base at `fork`.
pub fn check(design: &Design) -> Result<(), ExperimentError> {
    let bad = |m: String| Err(ExperimentError::Design(m));
    let base = &design.base;
    let last = base.end();
    if design.fork <= base.start || design.fork > last {
        return bad(format!(
            "--fork-at {} is not after the base's first day ({}) and within its run (to {last})",
            design.fork, base.start
        ));
    }
    if design.replications == 0 {
        return bad("--replications must be 1 or more".into());
    }
    if !(design.confidence > 0.0 && design.confidence < 1.0) {
        return bad(format!(
            "confidence {} is not between 0 and 1",
            design.confidence
        ));
    }
    if !(design.precision > 0.0 && design.precision.is_finite()) {
        return bad(format!("precision {} is not above 0", design.precision));
    }
    let shape = crate::checkpoint::Shape::of(base);
    let mut names = vec!["base"];
    for (name, arm) in &design.arms {
        if names.contains(&name.as_str()) {
            return bad(format!("two arms are named `{name}`"));
        }
        names.push(name);
        if let Some(what) = shape.differences(&crate::checkpoint::Shape::of(arm)) {
            return bad(format!(
                "arm `{name}` must share the base's {what}: its customers continue from the base's"
            ));
        }
    }
    Ok(())
}

/// Runs the experiment: per replication, the base to the fork, then the base and each arm
/// from its checkpoint to the end. Replications run side by side within `threads` (as many
/// at once as there are threads, replications and memory for), each on its share of the
/// threads; the results do not depend on how many ran at once.
pub fn run(design: &Design, threads: usize, progress: bool) -> Result<Outcome, ExperimentError> {
    check(design)?;
    let personas: Vec<String> = design
        .base
        .personas
        .iter()
        .map(|p| p.name.clone())
        .collect();
    // Every arm is built once before anything runs, so one that cannot be (a behaviour's
    // build, a churn model that does not load) is refused at once.
    for (name, arm) in &design.arms {
        build(arm, threads, false, None)
            .map_err(|e| ExperimentError::Design(format!("arm `{name}`: {e}")))?;
    }
    let (workers, per_worker) = sharing(design, threads);
    let replications = design.replications as usize;
    let done = in_parallel(
        workers,
        replications,
        || true,
        |r| replicate(design, r as u32, per_worker, &personas, progress),
    );
    let mut measured = Vec::new();
    let mut timings = Vec::new();
    for result in done {
        // A replication not run was stopped by an earlier one's failure, reported below.
        let Some(result) = result else { continue };
        let replication = result?;
        measured.extend(replication.measured);
        timings.extend(replication.timings);
    }
    let differences = compare(design, &measured);
    let between = between(design, &measured, &personas);
    let daily = daily_differences(design, &measured);
    let verdicts = differences
        .iter()
        .chain(&between)
        .filter(|d| !is_per_persona(&personas, &d.metric))
        .map(|d| verdict(d, &design.base.money, design.confidence))
        .collect();
    let mut arms = vec!["base".to_owned()];
    arms.extend(design.arms.iter().map(|(n, _)| n.clone()));
    let base = &design.base;
    let days = (0..base.days)
        .map(|d| {
            let date = base.start + chrono::Days::new(u64::from(d));
            let today = base.calendar.day(date, base.catalog.len());
            Day {
                date,
                festival: today.festival,
                weekend: today.weekend,
                events: today.events,
            }
        })
        .collect();
    Ok(Outcome {
        scenario: base.name.clone(),
        seed: base.seed,
        arms,
        labels: base.personas.iter().map(|p| p.label.clone()).collect(),
        days,
        personas,
        start: design.base.start,
        fork: design.fork,
        replications: design.replications,
        confidence: design.confidence,
        precision: design.precision,
        money: design.base.money.clone(),
        concurrent: workers,
        measured,
        differences,
        between,
        daily,
        timings,
        verdicts,
        metrics: Vec::new(),
    })
}

/// How many replications run at once, and on how many threads each: one per thread, up to
/// the replications, and no more than memory holds (a replication holds one simulation and
/// one checkpoint at a time).
fn sharing(design: &Design, threads: usize) -> (usize, usize) {
    let (need, _) = crate::run::memory_estimate(&design.base, crate::plugin::Reserve::default());
    share_threads(need, design.replications as usize, threads)
}

/// How many of `jobs` simulations run at once within `threads`, and on how many threads
/// each: one per thread, up to the jobs, and no more than memory holds when each needs
/// `need` bytes (and half as much again for its checkpoint).
pub(crate) fn share_threads(need: u64, jobs: usize, threads: usize) -> (usize, usize) {
    let threads = threads.max(1);
    let mut workers = threads.min(jobs).max(1);
    if let Some(available) = crate::run::available_memory() {
        let fits = (available / need.saturating_add(need / 2).max(1)).max(1);
        workers = workers.min(usize::try_from(fits).unwrap_or(usize::MAX));
    }
    (workers, (threads / workers).max(1))
}

/// Runs `job` for each of `0..jobs` on `workers` threads, each taking the next job until
/// they run out, one fails or `go_on` says no more; each job's result at its index (`None`
/// for a job not run). The results do not depend on how many workers ran them.
pub(crate) fn in_parallel<T: Send, E: Send>(
    workers: usize,
    jobs: usize,
    go_on: impl Fn() -> bool + Sync,
    job: impl Fn(usize) -> Result<T, E> + Sync,
) -> Vec<Option<Result<T, E>>> {
    use std::sync::atomic::Ordering::Relaxed;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let done = std::sync::Mutex::new((0..jobs).map(|_| None).collect::<Vec<_>>());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Relaxed);
                    if k >= jobs || failed.load(Relaxed) || !go_on() {
                        break;
                    }
                    let result = job(k);
                    failed.fetch_or(result.is_err(), Relaxed);
                    done.lock().unwrap_or_else(|e| e.into_inner())[k] = Some(result);
                }
            });
        }
    });
    done.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// What one replication gives: every arm's metrics and the phases' wall times.
struct Replication {
    measured: Vec<Measured>,
    timings: Vec<(String, f64)>,
}

/// The overall totals at the end of each day so far.
fn end_of_day(sim: &Simulation, days: &mut Vec<Totals>) {
    if sim.clock().tick % 24 == 23 {
        days.push(sim.world.resource::<Tally>().overall());
    }
}

/// Replication `r`: the base warms up to the fork and is checkpointed; the base and each
/// arm go on from the checkpoint to the end.
fn replicate(
    design: &Design,
    r: u32,
    threads: usize,
    personas: &[String],
    progress: bool,
) -> Result<Replication, ExperimentError> {
    let fail = |e: crate::plugin::SimError| ExperimentError::Run(e.to_string());
    let warm_days = (design.fork - design.base.start).num_days() as u32;
    let per = design.base.money.per_major() as f64;
    let clock = std::time::Instant::now();
    let seed = design.base.seed.wrapping_add(u64::from(r));
    let reseed = |s: &Scenario| -> Result<Scenario, ExperimentError> {
        let mut s = s.clone();
        s.apply(Overrides {
            seed: Some(seed),
            ..Overrides::default()
        })
        .map_err(ExperimentError::Design)?;
        Ok(s)
    };
    let mut measured = Vec::new();
    let mut timings = Vec::new();
    let base = reseed(&design.base)?;
    let mut sim = build(&base, threads, true, None)?;
    sim.spawn_population();
    // Each day's totals, the warm-up's shared by every arm.
    let mut warm = Vec::new();
    while sim.clock().tick.wrapping_add(1) < warm_days * 24 {
        sim.step().map_err(fail)?;
        end_of_day(&sim, &mut warm);
    }
    let snapshot = sim.checkpoint(&base).map_err(fail)?;
    let at_fork = sim.world.resource::<Tally>().clone();
    let plugins_at_fork: BTreeMap<String, f64> = sim.plugin_metrics().into_iter().collect();
    timings.push((format!("{r}: warm-up"), clock.elapsed().as_secs_f64()));
    if progress {
        eprintln!(
            "ab: replication {} of {}: warmed up to {}",
            r + 1,
            design.replications,
            design.fork
        );
    }
    let mut finish = |name: &str,
                      mut sim: Simulation,
                      clock: std::time::Instant|
     -> Result<(), ExperimentError> {
        let mut days = warm.clone();
        while !sim.finished() {
            sim.step().map_err(fail)?;
            end_of_day(&sim, &mut days);
        }
        let metrics = metrics_since(&sim, &at_fork, &plugins_at_fork, personas, per)?;
        // Each day's own figures: the change of the running totals over the day.
        let mut daily = BTreeMap::new();
        for (m, f) in metrics_of(&sim).filter(|(m, _)| DAILY.contains(m)) {
            let mut before = Totals::default();
            let series: Vec<f64> = days
                .iter()
                .map(|t| {
                    let mut d = *t;
                    d.sub(&before);
                    before = *t;
                    f(&d, per)
                })
                .collect();
            daily.insert((*m).to_owned(), series);
        }
        measured.push(Measured {
            arm: name.to_owned(),
            replication: r,
            seed,
            metrics,
            daily,
        });
        timings.push((format!("{r}: {name}"), clock.elapsed().as_secs_f64()));
        if progress {
            eprintln!("ab: replication {}: arm {name} done", r + 1);
        }
        Ok(())
    };
    finish("base", sim, std::time::Instant::now())?;
    for (name, arm) in &design.arms {
        let clock = std::time::Instant::now();
        let arm = reseed(arm)?;
        let mut sim = build(&arm, threads, false, Some(snapshot.header.customers))?;
        sim.fork(&arm, &snapshot)
            .map_err(|e| ExperimentError::Design(format!("arm `{name}`: {e}")))?;
        finish(name, sim, clock)?;
    }
    Ok(Replication { measured, timings })
}

/// Every metric of `sim` since the moment its tally was `from` and its behaviours' metrics
/// were `plugins_from`: each of [`METRICS`] over all personas and for each (`revenue.premium`),
/// and each behaviour's (one the simulation did not have then starts at zero).
pub(crate) fn metrics_since(
    sim: &Simulation,
    from: &Tally,
    plugins_from: &BTreeMap<String, f64>,
    personas: &[String],
    per: f64,
) -> Result<BTreeMap<String, f64>, ExperimentError> {
    let end = sim.world.resource::<Tally>();
    let mut metrics = BTreeMap::new();
    let mut all = Totals::default();
    for (p, persona) in personas.iter().enumerate() {
        let mut t = end.by_persona[p];
        t.sub(&from.by_persona[p]);
        all.add(&t);
        for (m, f) in metrics_of(sim) {
            metrics.insert(format!("{m}.{persona}"), f(&t, per));
        }
    }
    for (m, f) in metrics_of(sim) {
        metrics.insert((*m).to_owned(), f(&all, per));
    }
    for (m, x) in sim.plugin_metrics() {
        if metrics.contains_key(&m) {
            return Err(ExperimentError::Run(format!(
                "a behaviour reports a metric named `{m}`, which is Bazaar's own: a behaviour's metrics are named after it (`promotions.NAME.cost`)"
            )));
        }
        let before = plugins_from.get(&m).copied().unwrap_or(0.0);
        metrics.insert(m, x - before);
    }
    Ok(metrics)
}

/// Each arm's paired difference from the base day by day, for every metric of [`DAILY`]:
/// the days before the fork are the shared warm-up's (a difference of exactly 0).
fn daily_differences(design: &Design, measured: &[Measured]) -> Vec<DailyDifference> {
    let of = |arm: &str| -> Vec<&Measured> { measured.iter().filter(|m| m.arm == arm).collect() };
    let base = of("base");
    let mut out = Vec::new();
    for (name, _) in &design.arms {
        let arm = of(name);
        // A metric the runs lack (margin without the catalog's margins) has no chart.
        for metric in DAILY
            .into_iter()
            .filter(|m| base.first().is_some_and(|b| b.daily.contains_key(*m)))
        {
            let series = |m: &Measured| m.daily.get(metric).cloned().unwrap_or_default();
            let days = base.first().map_or(0, |b| series(b).len());
            let mut difference = Vec::with_capacity(days);
            let mut interval = Vec::with_capacity(days);
            for day in 0..days {
                let pairs: Vec<(f64, f64)> = base
                    .iter()
                    .zip(&arm)
                    .map(|(b, a)| {
                        let at = |m: &Measured| series(m).get(day).copied().unwrap_or(0.0);
                        (at(b), at(a))
                    })
                    .collect();
                let d = paired(name, metric, &pairs, design.confidence, design.precision, 0);
                difference.push(d.difference);
                interval.push(d.interval);
            }
            out.push(DailyDifference {
                arm: name.clone(),
                metric: metric.to_owned(),
                difference,
                interval,
            });
        }
    }
    out
}

/// A simulation of `s` for an experiment, with its churn model as a run has it; `burn_in`
/// off for an arm, whose customers come from the base's checkpoint (`fork`: how many).
pub(crate) fn build(
    s: &Scenario,
    threads: usize,
    burn_in: bool,
    fork: Option<u32>,
) -> Result<Simulation, ExperimentError> {
    let mut builder = Simulation::builder(s)
        .threads(threads)
        .burn_in(burn_in)
        .check_invariants(false);
    if let Some(n) = fork {
        builder = builder.grow_from(n);
    }
    if let Some(config) = &s.churn_model {
        let personas: Vec<String> = s.personas.iter().map(|p| p.name.clone()).collect();
        // As for a run, a model that cannot be loaded is the input's fault (exit code 2).
        let plugin = ChurnModelPlugin::load(config, &personas, None)
            .map_err(|e| ExperimentError::Design(format!("{}: {e}", s.name)))?;
        builder = builder.add_plugin(plugin);
    }
    builder
        .add_plugin(AnalyticsPlugin)
        .add_plugin(DropRows)
        .build()
        .map_err(|e| ExperimentError::Run(e.to_string()))
}

/// An experiment writes no tables: the rows behaviours push to theirs are dropped at the
/// start of each hour, so they do not pile up over a run.
struct DropRows;

impl crate::plugin::Plugin for DropRows {
    fn name(&self) -> &str {
        "drop_rows"
    }

    fn build(&self, sim: &mut crate::sim::SimBuilder) -> crate::plugin::Result {
        sim.schedule
            .add_systems(bevy_ecs::schedule::IntoScheduleConfigs::in_set(
                drop_rows,
                crate::sim::SimSet::Calendar,
            ));
        Ok(())
    }
}

fn drop_rows(tables: Option<bevy_ecs::prelude::ResMut<crate::tables::PluginTables>>) {
    if let Some(mut tables) = tables {
        tables.take();
    }
}

/// Every arm against the base, metric by metric, replication by replication.
fn compare(design: &Design, measured: &[Measured]) -> Vec<Difference> {
    design
        .arms
        .iter()
        .flat_map(|(name, _)| compare_pair(design, measured, "base", name))
        .collect()
}

/// Every arm against each arm listed before it, on the overall metrics: two arms' own
/// comparison (a challenger against a champion), paired replication by replication as each
/// is with the base.
fn between(design: &Design, measured: &[Measured], personas: &[String]) -> Vec<Difference> {
    let mut out = Vec::new();
    for (i, (first, _)) in design.arms.iter().enumerate() {
        for (second, _) in &design.arms[i + 1..] {
            out.extend(
                compare_pair(design, measured, first, second)
                    .into_iter()
                    .filter(|d| !is_per_persona(personas, &d.metric)),
            );
        }
    }
    out
}

/// `arm` against `control`, metric by metric, replication by replication.
fn compare_pair(
    design: &Design,
    measured: &[Measured],
    control: &str,
    arm: &str,
) -> Vec<Difference> {
    let of = |name: &str| -> Vec<&Measured> { measured.iter().filter(|m| m.arm == name).collect() };
    let (base, other) = (of(control), of(arm));
    // Every metric either side has: a plugin's metric the other arm lacks is 0 there.
    let metrics: std::collections::BTreeSet<&String> = base
        .iter()
        .chain(&other)
        .flat_map(|m| m.metrics.keys())
        .collect();
    let value = |m: &Measured, k: &str| m.metrics.get(k).copied().unwrap_or(0.0);
    metrics
        .into_iter()
        .map(|metric| {
            let pairs: Vec<(f64, f64)> = base
                .iter()
                .zip(&other)
                .map(|(b, a)| (value(b, metric), value(a, metric)))
                .collect();
            let mut d = paired(
                arm,
                metric,
                &pairs,
                design.confidence,
                design.precision,
                design.base.population.iter().sum(),
            );
            d.against = control.to_owned();
            d
        })
        .collect()
}

/// The paired comparison of (base, arm) figures of one metric, one pair a replication.
pub fn paired(
    arm: &str,
    metric: &str,
    pairs: &[(f64, f64)],
    confidence: f64,
    precision: f64,
    customers: u64,
) -> Difference {
    let n = pairs.len();
    let diffs: Vec<f64> = pairs.iter().map(|(b, a)| a - b).collect();
    let base = pairs.iter().map(|p| p.0).mean();
    let value = pairs.iter().map(|p| p.1).mean();
    let difference = diffs.iter().mean();
    let sd = if n > 1 { diffs.iter().std_dev() } else { 0.0 };
    // The t quantile of n - 1 degrees of freedom; with one replication there is none.
    let t = (n > 1)
        .then(|| StudentsT::new(0.0, 1.0, (n - 1) as f64).ok())
        .flatten()
        .map(|d| d.inverse_cdf(0.5 + confidence / 2.0));
    let interval = t.map(|t| {
        let half = t * sd / (n as f64).sqrt();
        (difference - half, difference + half)
    });
    let effect_size = (sd > 0.0).then(|| difference / sd);
    let skewness = (sd > 0.0).then(|| {
        let m2 = diffs.iter().map(|d| (d - difference).powi(2)).sum::<f64>() / n as f64;
        let m3 = diffs.iter().map(|d| (d - difference).powi(3)).sum::<f64>() / n as f64;
        m3 / m2.powf(1.5)
    });
    let bootstrap = (n > 1).then(|| bootstrap(arm, metric, &diffs, confidence));
    // Replications for the precision, unrounded: the interval's half-width shrinks with
    // the square root of the replications, and (a sum over customers having a spread that
    // grows with the root of their number and a figure that grows with the number) with
    // the square root of the customers.
    let needed = match t {
        Some(t) if sd > 0.0 && base != 0.0 => Some((t * sd / (precision * base.abs())).powi(2)),
        _ => None,
    };
    let replications_needed = needed.map(|r| r.ceil().max(2.0) as u64);
    let customers_needed = needed
        .filter(|_| customers > 0)
        .map(|r| (customers as f64 * r / n as f64).ceil() as u64);
    Difference {
        arm: arm.to_owned(),
        against: "base".to_owned(),
        metric: metric.to_owned(),
        base,
        value,
        difference,
        interval,
        bootstrap,
        skewness,
        sd,
        effect_size,
        replications_needed,
        customers_needed,
    }
}

/// Refuses an output folder that is there and not empty, before anything runs.
pub fn check_out(out: &Path) -> Result<(), ExperimentError> {
    crate::calibrate::check_out(out).map_err(|e| ExperimentError::Design(e.to_string()))
}

/// Writes `experiment.json` (the design, every arm's metrics in every replication, every
/// difference), `experiment.html` ([`report`]) and their manifest into the new folder
/// `out`: an existing folder must be empty, and the files are written beside it and moved
/// into place, so nothing a user wrote is replaced.
pub fn write(outcome: &Outcome, out: &Path) -> Result<(), ExperimentError> {
    let err = |e: crate::calibrate::CalibrateError| {
        if e.is_bad_input() {
            ExperimentError::Design(e.to_string())
        } else {
            ExperimentError::Run(e.to_string())
        }
    };
    crate::calibrate::check_out(out).map_err(err)?;
    let work = crate::calibrate::work_dir(out).map_err(err)?;
    let json = serde_json::to_string_pretty(outcome)
        .map_err(|e| ExperimentError::Run(format!("experiment.json: {e}")))?
        + "\n";
    crate::calibrate::write_file(&work.path().join("experiment.json"), &json).map_err(err)?;
    let page = report::html(outcome).map_err(ExperimentError::Run)?;
    crate::calibrate::write_file(&work.path().join("experiment.html"), &page).map_err(err)?;
    // Last, as a run's: `bazaar check` verifies the folder and `bazaar serve` opens it.
    let manifest = crate::output::Manifest::of_files(
        &outcome.scenario,
        outcome.seed,
        &[
            ("experiment.json", json.as_bytes()),
            ("experiment.html", page.as_bytes()),
        ],
    );
    let manifest = serde_json::to_string_pretty(&manifest)
        .map_err(|e| ExperimentError::Run(format!("manifest.json: {e}")))?;
    crate::calibrate::write_file(&work.path().join(crate::output::MANIFEST), &manifest)
        .map_err(err)?;
    crate::calibrate::put_in_place(work, out).map_err(err)
}

/// A difference in words: which way the arm moved the metric, by how much, and how sure
/// that is (the interval, and whether it excludes no change).
pub fn verdict(d: &Difference, money: &crate::money::Currency, confidence: f64) -> String {
    let is_money = report::is_money(&d.metric);
    let show = |x: f64| {
        // No "-0.0".
        let x = x + 0.0;
        if is_money {
            money.short((x * money.per_major() as f64).round() as i64)
        } else {
            format!("{x:.1}")
        }
    };
    let level = format!("{:.0}%", confidence * 100.0);
    let arm = if d.against == "base" {
        d.arm.clone()
    } else {
        format!("{} (against {})", d.arm, d.against)
    };
    let (arm, metric) = (&arm, &d.metric);
    if d.difference == 0.0 && d.sd == 0.0 {
        let control = if d.against == "base" {
            "the base".to_owned()
        } else {
            d.against.clone()
        };
        return format!("{arm} left {metric} exactly as {control} had it");
    }
    let interval = d
        .interval
        .map(|(lo, hi)| (show(lo), show(hi), lo > 0.0 || hi < 0.0));
    let way = if d.difference > 0.0 {
        "raised"
    } else {
        "lowered"
    };
    let by = show(d.difference.abs());
    match interval {
        Some((lo, hi, true)) => {
            format!("{arm} {way} {metric} by {by} ({level} interval {lo} to {hi})")
        }
        Some((lo, hi, false)) => format!(
            "{arm} did not move {metric} detectably: {by} {} on average, {level} interval {lo} to {hi}, which includes no change",
            if d.difference > 0.0 { "more" } else { "less" }
        ),
        None => format!("{arm} {way} {metric} by {by} in one replication (no interval)"),
    }
}

/// The percentile bootstrap interval of the mean of `diffs`: [`BOOTSTRAP`] resamples of the
/// replications with replacement, from a stream seeded by the arm and metric, so the same
/// experiment gives the same interval.
fn bootstrap(arm: &str, metric: &str, diffs: &[f64], confidence: f64) -> (f64, f64) {
    use rand_core::{RngCore, SeedableRng};
    use statrs::statistics::OrderStatistics;
    let key = blake3::hash(format!("{arm}\u{0}{metric}").as_bytes());
    let mut seed = [0u8; 8];
    seed.copy_from_slice(&key.as_bytes()[..8]);
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(u64::from_le_bytes(seed));
    let n = diffs.len();
    let means: Vec<f64> = (0..BOOTSTRAP)
        .map(|_| {
            (0..n)
                .map(|_| diffs[(rng.next_u64() % n as u64) as usize])
                .sum::<f64>()
                / n as f64
        })
        .collect();
    let mut data = statrs::statistics::Data::new(means);
    let tail = (1.0 - confidence) / 2.0;
    (data.quantile(tail), data.quantile(1.0 - tail))
}

/// Loads the base and the arms (`name=path`) for `bazaar ab`.
pub fn load(
    base: &Path,
    arms: &[String],
    overrides: &Overrides,
) -> Result<(Scenario, Vec<(String, Scenario)>), ExperimentError> {
    let load = |p: &Path| -> Result<Scenario, ExperimentError> {
        let mut s =
            Scenario::load(p, &registry()).map_err(|e| ExperimentError::Design(e.to_string()))?;
        s.apply(overrides.clone())
            .map_err(ExperimentError::Design)?;
        Ok(s)
    };
    let base = load(base)?;
    let mut out = Vec::new();
    for a in arms {
        let Some((name, path)) = a.split_once('=') else {
            return Err(ExperimentError::Design(format!(
                "--arm {a}: give it as NAME=SCENARIO, e.g. --arm discount=arms/discount.ron"
            )));
        };
        if !crate::scenario::validate::is_folder_name(name) || name == "base" {
            return Err(ExperimentError::Design(format!(
                "--arm {a}: `{name}` cannot name an arm (letters, digits, '-', '_' and '.'; not `base`)"
            )));
        }
        out.push((name.to_owned(), load(&PathBuf::from(path))?));
    }
    Ok((base, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_figure_that_was_not_a_number_reads_back_as_nan() {
        let m = Measured {
            arm: "x".into(),
            replication: 0,
            seed: 1,
            metrics: [("m".to_owned(), f64::NAN)].into(),
            daily: [("revenue".to_owned(), vec![1.0, f64::NAN])].into(),
        };
        let json = serde_json::to_string(&m).unwrap();
        assert!(json.contains("null"), "{json}");
        let back: Measured = serde_json::from_str(&json).unwrap();
        assert!(back.metrics["m"].is_nan());
        assert_eq!(back.daily["revenue"][0], 1.0);
        assert!(back.daily["revenue"][1].is_nan());
        let d = DailyDifference {
            arm: "x".into(),
            metric: "revenue".into(),
            difference: vec![f64::NAN],
            interval: vec![Some((f64::NAN, 1.0)), None],
        };
        let back: DailyDifference =
            serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        assert!(back.difference[0].is_nan());
        assert!(back.interval[0].unwrap().0.is_nan());
        assert_eq!(back.interval[1], None);
    }

    #[test]
    fn an_experiments_simulation_keeps_no_table_rows() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios");
        let text = std::fs::read_to_string(format!("{dir}/quick.ron"))
            .unwrap()
            .replace("include(\"", &format!("include(\"{dir}/"))
            .replace(
                "systems: [\"daily_log\"],",
                r#"systems: [Stores(count: 3, stock: 500, restock_every_days: 2)],"#,
            );
        let s = Scenario::from_text("q.ron", &text, &registry()).unwrap();
        let mut sim = build(&s, 1, false, None).unwrap();
        sim.spawn_population();
        let mut most = 0;
        while !sim.finished() {
            sim.step().unwrap();
            let tables = sim.world.resource::<crate::tables::PluginTables>();
            most = most.max(tables.pending.iter().map(Vec::len).sum::<usize>());
        }
        // The stores table gets a row per store a day; at most a day's stay at once.
        assert!((1..=3).contains(&most), "{most} rows held");
    }

    #[test]
    fn paired_intervals_are_the_t_intervals() {
        // Differences 1, 2, 3: mean 2, sd 1, t(0.975, 2) = 4.302653.
        let d = paired(
            "a",
            "m",
            &[(10.0, 11.0), (10.0, 12.0), (10.0, 13.0)],
            0.95,
            0.01,
            1000,
        );
        assert_eq!(d.difference, 2.0);
        assert!((d.sd - 1.0).abs() < 1e-12);
        let (lo, hi) = d.interval.unwrap();
        let half = 4.302_652_729_911_275 / 3f64.sqrt();
        assert!((lo - (2.0 - half)).abs() < 1e-9 && (hi - (2.0 + half)).abs() < 1e-9);
        assert_eq!(d.effect_size, Some(2.0));
        // ± 0.1 (1% of 10) needs (t sd / 0.1)^2 = 1851.3 replications.
        assert_eq!(d.replications_needed, Some(1852));
        // Or, at the 3 replications run, 1851.3 / 3 times the 1,000 customers.
        assert_eq!(d.customers_needed, Some(617_095));
        // Identical arms: exactly zero, nothing to estimate.
        let z = paired("a", "m", &[(5.0, 5.0), (7.0, 7.0)], 0.95, 0.01, 0);
        assert_eq!(
            (z.difference, z.sd, z.interval),
            (0.0, 0.0, Some((0.0, 0.0)))
        );
        assert_eq!((z.effect_size, z.replications_needed), (None, None));
        // One replication: no interval.
        let one = paired("a", "m", &[(1.0, 2.0)], 0.95, 0.01, 0);
        assert!(one.interval.is_none() && one.bootstrap.is_none());
        // The bootstrap interval lies within the differences' range, around their mean,
        // and is the same each time; a long right tail shows as skewness.
        let skewed: Vec<(f64, f64)> = [0.0, 0.1, 0.2, 0.1, 0.0, 0.3, 0.1, 5.0]
            .iter()
            .map(|&d| (1.0, 1.0 + d))
            .collect();
        let s = paired("a", "m", &skewed, 0.95, 0.01, 0);
        let (lo, hi) = s.bootstrap.unwrap();
        assert!(
            0.0 <= lo && lo < s.difference && s.difference < hi && hi <= 5.0,
            "{lo} {hi}"
        );
        assert_eq!(
            s.bootstrap,
            paired("a", "m", &skewed, 0.95, 0.01, 0).bootstrap
        );
        assert!(s.skewness.unwrap() > 2.0, "{:?}", s.skewness);
        assert!(z.skewness.is_none());
    }
}
