//! `bazaar calibrate --targets market.ron`: tunes a scenario to aggregate market figures
//! (mean order value, orders per customer per month, customers' shares by monthly spend,
//! category mix, festival uplifts) when there is no transaction log to fit, and says which
//! figures the tuned scenario meets and by how much.
//!
//! The fit is the method of simulated moments, as for a log: each target is given a knob
//! of the scenario's [`tuning`](crate::scenario::tune) (orders per month moves visits, the
//! order value moves prices, spend bands move the personas' shares of customers, the
//! category mix each named category's purchase probability, an uplift its events' traffic,
//! purchase or category factors), and Nelder-Mead (argmin) searches the knobs' logarithms
//! to minimise the sum of squared misses, each in units of its tolerance. Every evaluation
//! simulates the scenario with its own seed: common random numbers, so the objective moves
//! only with the knobs. The tuned scenario is the input's text with one `tuning:` block.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use argmin::core::{CostFunction, Executor, State};
use argmin::solver::neldermead::NelderMead;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::{CalibrateError, Steps, check_out, io_err, put_in_place, work_dir, write_file};
use crate::analytics::Aggregates;
use crate::analytics::published::{self, Figure, Measure};
use crate::run::{RunOptions, run};
use crate::scenario::diag::{Step, find_span};
use crate::scenario::load::{SourceMap, Tok, Tokens};
use crate::scenario::schema::{FigureFile, ScenarioFile};
use crate::scenario::tune::{EventTuning, FACTORS, TuningFile};
use crate::scenario::validate::{OtherFile, parse_other};
use crate::scenario::{Format, Overrides, Scenario};

/// Customers simulated at the start of each evaluation unless the market file sets `scale`.
const FIT_CUSTOMERS: f64 = 20_000.0;

/// Most proportional steps before Nelder-Mead.
const PROPORTIONAL_STEPS: u64 = 12;

/// The largest move of one proportional step, in log units (a factor of 10).
const MAX_STEP: f64 = std::f64::consts::LN_10;

/// The objective of a point whose tuned scenario is refused.
const REFUSED: f64 = 1e12;

/// How to tune.
#[derive(Debug, Clone)]
pub struct MarketOptions {
    /// The market file.
    pub targets: PathBuf,
    /// Output folder (must not exist, or be empty).
    pub out: PathBuf,
    /// Worker threads of the simulations.
    pub threads: usize,
    /// Most Nelder-Mead iterations, overriding the file's.
    pub iterations: Option<u64>,
    /// Print progress to stderr.
    pub progress: bool,
}

/// A market file, `Market(...)`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Market")]
struct MarketFile {
    /// The scenario to tune, relative to the market file.
    scenario: String,
    /// Name of the tuned scenario [default: the scenario's, with `-market`].
    #[serde(default)]
    name: Option<String>,
    /// Share of the scenario's customers simulated by each evaluation of the fit.
    #[serde(default)]
    scale: Option<f64>,
    /// Default tolerance of values and uplifts, as a share of the figure.
    #[serde(default = "tenth")]
    tolerance: f64,
    /// Default tolerance of shares, in shares (0.02: two percentage points).
    #[serde(default = "two_points")]
    share_tolerance: f64,
    /// Most Nelder-Mead iterations.
    #[serde(default = "sixty")]
    iterations: u64,
    /// The figures to meet.
    targets: Vec<TargetFile>,
}

fn tenth() -> f64 {
    0.1
}
fn two_points() -> f64 {
    0.02
}
fn sixty() -> u64 {
    60
}

/// One market figure.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
enum TargetFile {
    /// Revenue over transactions, in the scenario's currency.
    MeanOrderValue {
        value: f64,
        #[serde(default)]
        source: String,
        #[serde(default)]
        tolerance: Option<f64>,
    },
    /// Transactions per active customer per 30 days.
    OrdersPerMonth {
        orders: f64,
        #[serde(default)]
        source: String,
        #[serde(default)]
        tolerance: Option<f64>,
    },
    /// Shares of customers by monthly spend: each band below an amount, the last the rest.
    SpendBands {
        bands: Vec<BandFile>,
        #[serde(default)]
        source: String,
        #[serde(default)]
        tolerance: Option<f64>,
    },
    /// Shares of revenue by category or group.
    CategoryMix {
        shares: BTreeMap<String, f64>,
        #[serde(default)]
        source: String,
        #[serde(default)]
        tolerance: Option<f64>,
    },
    /// A festival uplift, as a scenario's published figure.
    Uplift(FigureFile),
}

/// A spend band.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename = "Band")]
struct BandFile {
    /// Upper bound of monthly spend (exclusive); absent on the last band.
    #[serde(default)]
    below: Option<f64>,
    /// Share of customers in the band.
    share: f64,
}

/// A checked target.
#[derive(Debug, Clone)]
enum Target {
    MeanOrderValue(f64),
    OrdersPerMonth(f64),
    /// (upper bound, share); the last bound is infinite.
    SpendBands(Vec<(f64, f64)>),
    /// (name, catalog ids, share of revenue).
    CategoryMix(Vec<(String, Vec<u16>, f64)>),
    Uplift(Figure),
}

#[derive(Debug, Clone)]
struct Checked {
    target: Target,
    source: String,
    tolerance: f64,
}

/// What a knob multiplies.
#[derive(Debug, Clone, PartialEq, Serialize)]
enum Knob {
    Visits,
    Prices,
    Customers(String),
    Category(String),
    Traffic(Vec<String>),
    Purchase(Vec<String>),
    EventCategories(Vec<String>, Vec<String>),
}

impl Knob {
    /// The factor `tuning` applies through this knob over `start`'s.
    fn factor(&self, tuning: &TuningFile, start: &TuningFile) -> f64 {
        let event = |t: &TuningFile, e: &[String], f: &dyn Fn(&EventTuning) -> f64| {
            e.first().and_then(|name| t.events.get(name)).map_or(1.0, f)
        };
        let of = |t: &TuningFile| match self {
            Self::Visits => t.visits,
            Self::Prices => t.prices,
            Self::Customers(p) => t.personas.get(p).map_or(1.0, |x| x.customers),
            Self::Category(c) => t.categories.get(c).copied().unwrap_or(1.0),
            Self::Traffic(e) => event(t, e, &|x| x.traffic),
            Self::Purchase(e) => event(t, e, &|x| x.purchase),
            Self::EventCategories(e, c) => event(t, e, &|x| {
                c.first()
                    .and_then(|c| x.categories.get(c))
                    .copied()
                    .unwrap_or(1.0)
            }),
        };
        of(tuning) / of(start)
    }

    fn describe(&self) -> String {
        match self {
            Self::Visits => "visits".into(),
            Self::Prices => "prices".into(),
            Self::Customers(p) => format!("customers of {p}"),
            Self::Category(c) => format!("purchase of {c}"),
            Self::Traffic(e) => format!("traffic on {}", e.join(", ")),
            Self::Purchase(e) => format!("purchase on {}", e.join(", ")),
            Self::EventCategories(e, c) => format!("{} on {}", c.join(", "), e.join(", ")),
        }
    }
}

/// How the tuned scenario compares with one figure (a band or a category is one row).
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The figure, in words.
    pub target: String,
    /// Where it comes from.
    pub source: String,
    /// `value` (relative tolerance), `share` (absolute) or `uplift` (as published figures).
    pub kind: &'static str,
    /// The figure.
    pub wanted: f64,
    /// The range that counts as met (`null` above: no upper bound).
    pub band: (f64, Option<f64>),
    /// The simulated figure; `null` when the run has none (no transactions, no event days).
    pub simulated: Option<f64>,
    /// How far off: relative for values, in shares for shares, in uplift for uplifts.
    pub off: Option<f64>,
    /// Whether the simulated figure is in the band.
    pub met: bool,
    /// The miss in units of the tolerance (0 on the figure), as the objective counts it.
    #[serde(skip)]
    error: f64,
    /// The target (index into the targets) and the band or category of it.
    #[serde(skip)]
    key: (usize, usize),
    /// The log of the factor that would bring the simulated figure to the target, were it
    /// proportional to its knob (0 when met from above a lower bound, or unknown).
    #[serde(skip)]
    gap: f64,
}

/// A market calibration's results, as `fit.json` holds them.
#[derive(Debug, Clone, Serialize)]
pub struct MarketOutcome {
    /// The tuned scenario's name.
    pub name: String,
    /// The market file.
    pub market: String,
    /// The scenario tuned.
    pub scenario: String,
    /// Customers at the start of each evaluation of the fit, and of the check.
    pub customers: (u64, u64),
    /// Each figure, simulated by the written scenario at its full size.
    pub targets: Vec<Row>,
    /// Each figure at the best point of the fit (at the fit's size).
    pub fitted: Vec<Row>,
    /// Each knob and the factor the fit applied (on top of the scenario's own tuning).
    pub knobs: Vec<(String, f64)>,
    /// The tuning block written.
    pub tuning: TuningFile,
    /// Proportional steps before Nelder-Mead.
    pub steps: u64,
    /// Evaluations whose tuned scenario was refused (factors past a scenario's limits).
    pub refused: usize,
    /// The search: simulations, objective before and after, Nelder-Mead iterations.
    pub moments: super::Moments,
    /// Wall time of each step, seconds.
    pub timings: Vec<(String, f64)>,
}

impl MarketOutcome {
    /// Targets met, of all.
    pub fn met(&self) -> (usize, usize) {
        (
            self.targets.iter().filter(|r| r.met).count(),
            self.targets.len(),
        )
    }
}

fn bad(e: impl std::fmt::Display) -> CalibrateError {
    CalibrateError::Input(e.to_string())
}

/// Tunes the market file's scenario to its targets and writes `scenario.ron`, `fit.json` and
/// `fit.html` into `o.out`.
pub fn calibrate_market(o: &MarketOptions) -> Result<MarketOutcome, CalibrateError> {
    let mut clock = Steps::new(o.progress);
    check_out(&o.out)?;
    let market_map = SourceMap::load(&o.targets).map_err(bad)?;
    let market: MarketFile = parse_other(&market_map, &o.targets).map_err(bad)?;
    let base_path = o
        .targets
        .parent()
        .unwrap_or(Path::new("."))
        .join(&market.scenario);
    let registry = crate::sim::registry();
    let base = Scenario::load(&base_path, &registry).map_err(bad)?;
    let base_map = SourceMap::load(&base_path).map_err(bad)?;
    let raw: ScenarioFile = parse_other(&base_map, &base_path).map_err(bad)?;
    let start_tuning = raw.tuning.clone().unwrap_or_default();
    let targets = check(&market_map, &o.targets, &market, &base)?;
    let name = market
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-market", base.name));
    // A base scenario's own name is a folder name already, and so is it with `-market`.
    let scale = market
        .scale
        .unwrap_or_else(|| (FIT_CUSTOMERS / base.customers().max(1) as f64).min(1.0));
    let knobs = knobs(&targets, &base);
    let counts: BTreeMap<String, f64> = base
        .personas
        .iter()
        .zip(&base.population)
        .map(|(p, &n)| (p.name.clone(), n as f64))
        .collect();
    clock.say(format!(
        "{} targets, {} knobs, {} customers per evaluation",
        targets.len(),
        knobs.len(),
        (base.customers() as f64 * scale).round()
    ));
    clock.lap("read");

    let guard = work_dir(&o.out)?;
    let work = guard.path().to_path_buf();
    let ctx = Fit {
        text: &base_map.text,
        root: &base_path,
        work: &work,
        targets: &targets,
        knobs: &knobs,
        start: &start_tuning,
        counts: &counts,
        scale,
        threads: o.threads,
        evaluations: Cell::new(0),
        refused: Cell::new(0),
        failed: std::cell::RefCell::new(None),
    };
    let x0 = vec![0.0; knobs.len()];
    let first = ctx.evaluate(&x0)?;
    let before = first.cost;
    let max = o.iterations.unwrap_or(market.iterations);
    // Proportional steps first, halving the step when one makes things worse.
    let (mut best, mut last) = (x0, first);
    let mut damping = 1.0;
    let mut steps = 0;
    while max > 0 && steps < PROPORTIONAL_STEPS && damping > 0.1 && last.cost > 0.0 {
        let x = ctx.step(&best, &last, damping);
        let e = ctx.evaluate(&x)?;
        steps += 1;
        if e.cost < last.cost {
            best = x;
            last = e;
        } else {
            damping /= 2.0;
        }
    }
    clock.say(format!(
        "{steps} proportional steps: objective {before:.3} -> {:.3}",
        last.cost
    ));
    // Then Nelder-Mead around the best point.
    let mut after = last.cost;
    let mut fitted = last.rows;
    let mut iterations = 0;
    if max > 0 && !knobs.is_empty() && after > 0.0 {
        let mut simplex = vec![best.clone()];
        for i in 0..best.len() {
            let mut x = best.clone();
            x[i] += 0.1;
            simplex.push(x);
        }
        let solver = NelderMead::new(simplex)
            .with_sd_tolerance(1e-4)
            .map_err(|e| CalibrateError::Fit(e.to_string()))?;
        let res = Executor::new(&ctx, solver)
            .configure(|s| s.max_iters(max))
            .run()
            .map_err(|e| CalibrateError::Fit(format!("simulated moments: {e}")))?;
        if let Some(e) = ctx.failed.take() {
            return Err(e);
        }
        iterations = res.state().get_iter();
        if let Some(b) = res.state().get_best_param()
            && res.state().get_best_cost() < after
        {
            best = b.clone();
            let e = ctx.evaluate(&best)?;
            after = e.cost;
            fitted = e.rows;
        }
    }
    let evaluations = ctx.evaluations.get();
    clock.say(format!(
        "simulated moments: objective {before:.3} -> {after:.3} in {evaluations} simulations ({} refused)",
        ctx.refused.get()
    ));
    clock.lap("moments");

    // The tuned scenario: the input's text with the tuning block, named anew, its churn
    // model's path made relative to where it now lies; checked by running it at full size.
    let tuning = ctx.tuning(&best);
    let mut text =
        crate::scenario::tune::with_tuning(&base_map.text, &tuning).ok_or_else(|| {
            bad(format!(
                "{} is not one Scenario(...) value",
                base_path.display()
            ))
        })?;
    text = replace_string(&text, &[Step::Field("name")], &name).unwrap_or(text);
    let dir = format!("out/{name}");
    text =
        replace_string(&text, &[Step::Field("output"), Step::Field("dir")], &dir).unwrap_or(text);
    if let Some(model) = &base.churn_model {
        let from = std::path::absolute(&work).map_err(|e| io_err(&work, e))?;
        let relative = |spec: &Path| -> Result<String, CalibrateError> {
            let target = std::path::absolute(spec).map_err(|e| io_err(spec, e))?;
            let rel = pathdiff::diff_paths(&target, &from).unwrap_or(target);
            Ok(rel.to_string_lossy().replace('\\', "/"))
        };
        let rel = relative(&model.spec)?;
        text = replace_string(
            &text,
            &[Step::Field("churn_model"), Step::Field("spec")],
            &rel,
        )
        .unwrap_or(text);
        if let Some(spend) = &model.spend {
            let rel = relative(&spend.spec)?;
            text = replace_string(
                &text,
                &[
                    Step::Field("churn_model"),
                    Step::Field("spend"),
                    Step::Field("spec"),
                ],
                &rel,
            )
            .unwrap_or(text);
        }
    }
    let header = format!(
        "// Tuned by `bazaar calibrate --targets` from {} to the figures of {}: the\n\
         // `tuning` block at the end is what changed (see fit.json, fit.html).\n",
        base_path.display(),
        o.targets.display()
    );
    let written = work.join("scenario.ron");
    write_file(&written, &(header + &text))?;
    let tuned = Scenario::load(&written, &registry)
        .map_err(|e| CalibrateError::Fit(format!("the tuned scenario does not load: {e}")))?;
    // Never a tuned scenario that would write over the base's outputs.
    if tuned.name != name || tuned.output.dir != Path::new(&dir) {
        return Err(bad(format!(
            "{}: its `name` or `output.dir` is not a plain quoted string, so the tuned scenario \
             could not be given its own\n  hint: write them as `name: \"...\"`, `dir: \"...\"`",
            base_path.display()
        )));
    }
    let check_dir = work.join("sim-check");
    let observed = simulate(tuned.clone(), None, &check_dir, o.threads)?;
    let rows = measure(&targets, &observed, &tuned);
    let _ = std::fs::remove_dir_all(&check_dir);
    clock.lap("check");
    let outcome = MarketOutcome {
        name,
        market: o.targets.display().to_string(),
        scenario: base_path.display().to_string(),
        customers: (
            (base.customers() as f64 * scale).round() as u64,
            tuned.customers(),
        ),
        targets: rows,
        fitted,
        knobs: knobs
            .iter()
            .map(|(k, _)| (k.describe(), round(k.factor(&tuning, &start_tuning))))
            .collect(),
        tuning,
        steps,
        refused: ctx.refused.get(),
        moments: super::Moments {
            evaluations,
            objective: (before, after),
            iterations,
        },
        timings: clock.timings.clone(),
    };
    write_report(&work, &outcome)?;
    put_in_place(guard, &o.out)?;
    Ok(outcome)
}

/// Checks the market file's targets against the scenario, every problem at its place in
/// the file.
fn check(
    map: &SourceMap,
    path: &Path,
    m: &MarketFile,
    scenario: &Scenario,
) -> Result<Vec<Checked>, CalibrateError> {
    use Step::{Field as F, Index as I};
    let mut c = OtherFile::new(map, path, scenario);
    if let Some(name) = &m.name
        && !crate::scenario::validate::is_folder_name(name)
    {
        c.err(
            &[F("name")],
            format!("the name `{name}` cannot be used as a folder name"),
            "letters, digits, '-', '_' and '.' only",
        );
    }
    if !(m.tolerance > 0.0 && m.tolerance <= 1.0) {
        c.err(
            &[F("tolerance")],
            format!(
                "tolerance {} is not a share above 0 and at most 1",
                m.tolerance
            ),
            "0.1 counts a value met within 10% of it",
        );
    }
    if !(m.share_tolerance > 0.0 && m.share_tolerance <= 0.5) {
        c.err(
            &[F("share_tolerance")],
            format!(
                "share_tolerance {} is not above 0 and at most 0.5",
                m.share_tolerance
            ),
            "0.02 counts a share met within two percentage points",
        );
    }
    if let Some(s) = m.scale
        && !(s.is_finite() && s > 0.0 && s <= 1.0)
    {
        c.err(
            &[F("scale")],
            format!("scale {s} is not a share above 0 and at most 1"),
            "the share of the scenario's customers each evaluation simulates, e.g. 0.2",
        );
    }
    if m.targets.is_empty() {
        c.err(
            &[F("targets")],
            "no targets",
            "e.g. targets: [MeanOrderValue(value: 1200.0), OrdersPerMonth(orders: 3.0)]",
        );
    }
    let mut out = Vec::new();
    for (i, t) in m.targets.iter().enumerate() {
        let positive = |c: &mut OtherFile, field: &'static str, x: f64| {
            if !(x.is_finite() && x > 0.0) {
                c.err(
                    &at(i, &[F(field)]),
                    format!("{field} {x} is not a positive number"),
                    "",
                );
            }
        };
        let tol = |c: &mut OtherFile, t: Option<f64>, default: f64, most: f64| match t {
            Some(x) if !(x > 0.0 && x <= most) => {
                c.err(
                    &at(i, &[F("tolerance")]),
                    format!("tolerance {x} is not above 0 and at most {most}"),
                    "",
                );
                default
            }
            Some(x) => x,
            None => default,
        };
        let (target, source, tolerance) = match t {
            TargetFile::MeanOrderValue {
                value,
                source,
                tolerance,
            } => {
                positive(&mut c, "value", *value);
                (
                    Target::MeanOrderValue(*value),
                    source,
                    tol(&mut c, *tolerance, m.tolerance, 1.0),
                )
            }
            TargetFile::OrdersPerMonth {
                orders,
                source,
                tolerance,
            } => {
                positive(&mut c, "orders", *orders);
                (
                    Target::OrdersPerMonth(*orders),
                    source,
                    tol(&mut c, *tolerance, m.tolerance, 1.0),
                )
            }
            TargetFile::SpendBands {
                bands,
                source,
                tolerance,
            } => {
                let mut rows = Vec::new();
                let mut last = 0.0;
                for (k, b) in bands.iter().enumerate() {
                    let end = k + 1 == bands.len();
                    let bound = match (b.below, end) {
                        (Some(x), false) if x.is_finite() && x > last => x,
                        (None, true) => f64::INFINITY,
                        (Some(_), true) => {
                            c.err(
                                &at(i, &[F("bands"), I(k)]),
                                "the last band is the rest: it takes no `below`",
                                "e.g. bands: [(below: 2000, share: 0.4), (share: 0.6)]",
                            );
                            f64::INFINITY
                        }
                        _ => {
                            c.err(
                                &at(i, &[F("bands"), I(k)]),
                                "every band but the last needs a `below` above the one before",
                                "e.g. bands: [(below: 2000, share: 0.4), (below: 5000, share: 0.4), (share: 0.2)]",
                            );
                            f64::INFINITY
                        }
                    };
                    last = bound;
                    if !(0.0..=1.0).contains(&b.share) {
                        c.err(
                            &at(i, &[F("bands"), I(k), F("share")]),
                            format!("share {} is not 0..=1", b.share),
                            "",
                        );
                    }
                    rows.push((bound, b.share));
                }
                let sum: f64 = rows.iter().map(|r| r.1).sum();
                if bands.len() < 2 || (sum - 1.0).abs() > 0.01 {
                    c.err(
                        &at(i, &[F("bands")]),
                        format!("{} bands whose shares sum to {sum}", bands.len()),
                        "give two bands or more, their shares summing to 1",
                    );
                }
                (
                    Target::SpendBands(rows),
                    source,
                    tol(&mut c, *tolerance, m.share_tolerance, 0.5),
                )
            }
            TargetFile::CategoryMix {
                shares,
                source,
                tolerance,
            } => {
                let mut rows = Vec::new();
                for (name, &share) in shares {
                    let ids = c.members(&at(i, &[F("shares"), Step::Key(name)]), name, scenario);
                    if !(0.0..=1.0).contains(&share) {
                        c.err(
                            &at(i, &[F("shares"), Step::Key(name)]),
                            format!("the share of `{name}`, {share}, is not 0..=1"),
                            "",
                        );
                    }
                    rows.push((name.clone(), ids, share));
                }
                let sum: f64 = rows.iter().map(|r| r.2).sum();
                if rows.is_empty() || sum > 1.0 + 1e-9 {
                    c.err(
                        &at(i, &[F("shares")]),
                        format!("{} shares summing to {sum}", rows.len()),
                        "name one category or more, shares of revenue summing to 1 at most",
                    );
                }
                (
                    Target::CategoryMix(rows),
                    source,
                    tol(&mut c, *tolerance, m.share_tolerance, 0.5),
                )
            }
            TargetFile::Uplift(f) => {
                let figure = c.figure(&at(i, &[]), f, scenario);
                let tolerance = figure.tolerance;
                (Target::Uplift(figure), &f.source, tolerance)
            }
        };
        out.push(Checked {
            target,
            source: source.clone(),
            tolerance,
        });
    }
    c.finish().map_err(bad)?;
    Ok(out)
}

/// The path of target `i`'s field `rest` in a market file.
fn at<'a>(i: usize, rest: &[Step<'a>]) -> Vec<Step<'a>> {
    let mut p = vec![Step::Field("targets"), Step::Index(i)];
    p.extend_from_slice(rest);
    p
}

/// The knobs the targets call for, each once.
fn knobs(targets: &[Checked], scenario: &Scenario) -> Vec<(Knob, usize)> {
    let mut out: Vec<(Knob, usize)> = Vec::new();
    let mut add = |k: Knob, t: usize| {
        if !out.iter().any(|(o, _)| *o == k) {
            out.push((k, t));
        }
    };
    let transactions_on: Vec<Vec<String>> = targets
        .iter()
        .filter_map(|t| match &t.target {
            Target::Uplift(f) if f.measure == Measure::Transactions => Some(sorted(&f.events)),
            _ => None,
        })
        .collect();
    let has = |f: fn(&Target) -> bool| targets.iter().any(|t| f(&t.target));
    let order_value = has(|t| matches!(t, Target::MeanOrderValue(_)));
    let orders = has(|t| matches!(t, Target::OrdersPerMonth(_)));
    for (i, t) in targets.iter().enumerate() {
        match &t.target {
            Target::OrdersPerMonth(_) => add(Knob::Visits, i),
            Target::MeanOrderValue(_) => add(Knob::Prices, i),
            Target::SpendBands(_) => {
                // The level of spending: prices, or visits when the order value is a
                // target of its own; the personas' shares move the spread.
                if !order_value {
                    add(Knob::Prices, i);
                } else if !orders {
                    add(Knob::Visits, i);
                }
                let personas: Vec<&String> = scenario
                    .personas
                    .iter()
                    .zip(&scenario.population)
                    .filter(|(_, n)| **n > 0)
                    .map(|(p, _)| &p.name)
                    .collect();
                if personas.len() > 1 {
                    for p in personas {
                        add(Knob::Customers(p.clone()), i);
                    }
                }
            }
            Target::CategoryMix(rows) => {
                for (name, _, _) in rows {
                    add(Knob::Category(name.clone()), i);
                }
            }
            Target::Uplift(f) => {
                // A closure has no factor to tune: only the open events move.
                let open: Vec<String> = f
                    .events
                    .iter()
                    .filter(|name| {
                        scenario.calendar.events.iter().any(|e| {
                            e.name == **name && e.kind != crate::calendar::EventKind::Closed
                        })
                    })
                    .cloned()
                    .collect();
                if open.is_empty() {
                    continue;
                }
                let events = sorted(&open);
                match &f.measure {
                    Measure::Transactions => add(Knob::Traffic(events), i),
                    Measure::Revenue if transactions_on.contains(&events) => {
                        add(Knob::Purchase(events), i)
                    }
                    Measure::Revenue => add(Knob::Traffic(events), i),
                    Measure::Categories(names, _) => {
                        add(Knob::EventCategories(events, sorted(names)), i)
                    }
                }
            }
        }
    }
    out
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v.dedup();
    v
}

/// A factor as written: four decimals, within the tuning's range.
fn round(x: f64) -> f64 {
    ((x.clamp(FACTORS.0, FACTORS.1)) * 1e4).round() / 1e4
}

/// What each evaluation needs.
struct Fit<'a> {
    /// The scenario's expanded text.
    text: &'a str,
    /// Its file (relative paths in it are read from there).
    root: &'a Path,
    work: &'a Path,
    targets: &'a [Checked],
    /// Each knob and the target it answers to.
    knobs: &'a [(Knob, usize)],
    /// The scenario's own tuning, which the knobs multiply.
    start: &'a TuningFile,
    /// Customers at the start by persona.
    counts: &'a BTreeMap<String, f64>,
    scale: f64,
    threads: usize,
    evaluations: Cell<usize>,
    /// Evaluations whose tuned scenario was refused.
    refused: Cell<usize>,
    /// The first evaluation inside Nelder-Mead that failed.
    failed: std::cell::RefCell<Option<CalibrateError>>,
}

impl Fit<'_> {
    /// The tuning at knob logarithms `x`.
    fn tuning(&self, x: &[f64]) -> TuningFile {
        let mut t = self.start.clone();
        // Shares of customers move, their total does not.
        let weights: Vec<(String, f64)> = self
            .knobs
            .iter()
            .zip(x)
            .filter_map(|((k, _), &x)| match k {
                Knob::Customers(p) => Some((p.clone(), x.clamp(-4.6, 4.6).exp())),
                _ => None,
            })
            .collect();
        let total: f64 = weights
            .iter()
            .map(|(p, _)| self.counts.get(p).copied().unwrap_or(0.0))
            .sum::<f64>();
        let weighted: f64 = weights
            .iter()
            .map(|(p, w)| self.counts.get(p).copied().unwrap_or(0.0) * w)
            .sum();
        for ((k, _), &x) in self.knobs.iter().zip(x) {
            let f = x.clamp(-4.6, 4.6).exp();
            match k {
                Knob::Visits => t.visits = round(t.visits * f),
                Knob::Prices => t.prices = round(t.prices * f),
                Knob::Customers(p) => {
                    let e = t.personas.entry(p.clone()).or_default();
                    e.customers = round(e.customers * f * total / weighted.max(1e-9));
                }
                Knob::Category(c) => {
                    let e = t.categories.entry(c.clone()).or_insert(1.0);
                    *e = round(*e * f);
                }
                Knob::Traffic(events) | Knob::Purchase(events) => {
                    for name in events {
                        let e = t.events.entry(name.clone()).or_default();
                        if matches!(k, Knob::Traffic(_)) {
                            e.traffic = round(e.traffic * f);
                        } else {
                            e.purchase = round(e.purchase * f);
                        }
                    }
                }
                Knob::EventCategories(events, cats) => {
                    for name in events {
                        let e = t.events.entry(name.clone()).or_default();
                        for c in cats {
                            let v = e.categories.entry(c.clone()).or_insert(1.0);
                            *v = round(*v * f);
                        }
                    }
                }
            }
        }
        t
    }

    /// Simulates the scenario tuned at `x`: the objective and each row.
    fn evaluate(&self, x: &[f64]) -> Result<Eval, CalibrateError> {
        self.evaluations.set(self.evaluations.get() + 1);
        let tuning = self.tuning(x);
        let text = crate::scenario::tune::with_tuning(self.text, &tuning).ok_or_else(|| {
            bad(format!(
                "{} is not one Scenario(...) value",
                self.root.display()
            ))
        })?;
        let name = self.root.to_string_lossy();
        let Ok(scenario) = Scenario::from_text(&name, &text, &crate::sim::registry()) else {
            // Factors past what a scenario may hold (an event's factor over 100, a price
            // over the largest): a point the search must leave, not an error.
            self.refused.set(self.refused.get() + 1);
            return Ok(Eval {
                cost: REFUSED,
                rows: Vec::new(),
                monthly: Vec::new(),
            });
        };
        let out = self.work.join("sim-fit");
        let observed = simulate(scenario.clone(), Some(self.scale), &out, self.threads)?;
        let _ = std::fs::remove_dir_all(&out);
        let rows = measure(self.targets, &observed, &scenario);
        Ok(Eval {
            cost: rows.iter().map(|r| r.error * r.error).sum(),
            rows,
            monthly: observed.monthly,
        })
    }

    /// A proportional step from `x`: each knob moved by `damping` times the log of the
    /// factor that would close its own target's gap were that figure proportional to it (a
    /// persona's share of customers by the gaps of the spend bands its customers are in).
    /// The knobs are chosen so that each mainly moves its own figure, so a few such steps
    /// bring the search near the figures from far away, where Nelder-Mead alone would spend
    /// hundreds of simulations.
    fn step(&self, x: &[f64], e: &Eval, damping: f64) -> Vec<f64> {
        let row = |t: usize, k: usize| e.rows.iter().find(|r| r.key == (t, k));
        self.knobs
            .iter()
            .zip(x)
            .map(|((knob, t), &x)| {
                let gap = match (knob, &self.targets[*t].target) {
                    (Knob::Category(c), Target::CategoryMix(mix)) => mix
                        .iter()
                        .position(|(n, _, _)| n == c)
                        .and_then(|k| row(*t, k))
                        .map_or(0.0, |r| r.gap),
                    (Knob::Prices | Knob::Visits, Target::SpendBands(bands)) => {
                        // The factor that moves the spend at each band's cumulative share
                        // onto the band's bound, averaged over the bounds.
                        let mut spend: Vec<f64> = e.monthly.iter().map(|(_, m)| *m).collect();
                        spend.sort_by(f64::total_cmp);
                        let mut below = 0.0;
                        let gaps: Vec<f64> = bands
                            .iter()
                            .filter(|(upper, _)| upper.is_finite())
                            .filter_map(|&(upper, share)| {
                                below += share;
                                let k = (below * spend.len() as f64) as usize;
                                let at = *spend.get(k.min(spend.len().saturating_sub(1)))?;
                                // Nothing spent at that share: no level moves it.
                                (at > 0.0).then(|| (upper / at).ln())
                            })
                            .collect();
                        gaps.iter().sum::<f64>() / gaps.len().max(1) as f64
                    }
                    (Knob::Customers(p), Target::SpendBands(bands)) => {
                        let spend: Vec<f64> = e
                            .monthly
                            .iter()
                            .filter(|(q, _)| q == p)
                            .map(|(_, m)| *m)
                            .collect();
                        let mut lower = 0.0;
                        let mut gap = 0.0;
                        for (k, &(upper, _)) in bands.iter().enumerate() {
                            let inside = spend.iter().filter(|&&m| m >= lower && m < upper).count();
                            let share = inside as f64 / spend.len().max(1) as f64;
                            gap += share * row(*t, k).map_or(0.0, |r| r.gap);
                            lower = upper;
                        }
                        gap
                    }
                    _ => row(*t, 0).map_or(0.0, |r| r.gap),
                };
                (x + damping * gap.clamp(-MAX_STEP, MAX_STEP)).clamp(-4.6, 4.6)
            })
            .collect()
    }
}

/// One evaluation of the fit.
struct Eval {
    /// The objective.
    cost: f64,
    /// Each figure.
    rows: Vec<Row>,
    /// Each customer's persona and monthly spend.
    monthly: Vec<(String, f64)>,
}

impl CostFunction for &Fit<'_> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, x: &Self::Param) -> Result<f64, argmin::core::Error> {
        // Nelder-Mead's set-up takes a failed evaluation for a bug: the failure is kept
        // for after the search and the point given the cost of a refused one.
        match self.evaluate(x) {
            Ok(e) => Ok(e.cost),
            Err(e) => {
                self.failed.replace(Some(e));
                Ok(REFUSED)
            }
        }
    }
}

/// What a run shows of the market's figures.
struct Observed {
    aggregates: Aggregates,
    /// Each customer's persona and spend per 30 days present, of those present 30 days (or
    /// the whole run, when shorter).
    monthly: Vec<(String, f64)>,
}

/// Runs `scenario` (scaled) into `out`, CSV without line items, and reads what it shows.
fn simulate(
    mut scenario: Scenario,
    scale: Option<f64>,
    out: &Path,
    threads: usize,
) -> Result<Observed, CalibrateError> {
    scenario
        .apply(Overrides {
            scale,
            out: Some(out.to_path_buf()),
            formats: vec![Format::Csv],
            ..Overrides::default()
        })
        .map_err(CalibrateError::Fit)?;
    scenario.output.line_items = false;
    let end = scenario.end();
    let days = scenario.days;
    run(
        &scenario,
        RunOptions {
            threads,
            report: false,
            ..RunOptions::default()
        },
    )
    .map_err(|e| CalibrateError::Fit(format!("simulating the tuned scenario: {e}")))?;
    let fit = |what: &str, e: &dyn std::fmt::Display| {
        CalibrateError::Fit(format!("reading the simulation's {what}: {e}"))
    };
    let file =
        std::fs::File::open(out.join("aggregates.json")).map_err(|e| fit("aggregates.json", &e))?;
    let aggregates: Aggregates = serde_json::from_reader(std::io::BufReader::new(file))
        .map_err(|e| fit("aggregates.json", &e))?;
    let mut r =
        csv::Reader::from_path(out.join("customers.csv")).map_err(|e| fit("customers.csv", &e))?;
    let header: Vec<String> = r
        .headers()
        .map_err(|e| fit("customers.csv", &e))?
        .iter()
        .map(str::to_owned)
        .collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| fit("customers.csv", &format!("no column {name}")))
    };
    let (persona, spent, joined, churned) = (
        col("persona")?,
        col("total_spent")?,
        col("joined_on")?,
        col("churned_on")?,
    );
    let least = i64::from(days.min(30));
    let mut monthly = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| fit("customers.csv", &e))?;
        let date = |i: usize| rec.get(i).and_then(|s| s.parse::<NaiveDate>().ok());
        let Some(from) = date(joined) else { continue };
        let to = date(churned).unwrap_or(end);
        let present = (to - from).num_days() + 1;
        if present >= least {
            let value: f64 = rec.get(spent).and_then(|s| s.parse().ok()).unwrap_or(0.0);
            let p = rec.get(persona).unwrap_or_default().to_owned();
            monthly.push((p, value * 30.0 / present as f64));
        }
    }
    Ok(Observed {
        aggregates,
        monthly,
    })
}

/// Each target's row, as `scenario` (the run's scenario) shows it.
fn measure(targets: &[Checked], o: &Observed, scenario: &Scenario) -> Vec<Row> {
    let a = &o.aggregates;
    let days = &a.days[a.settled_from.min(a.days.len())..];
    let per_major = scenario.money.per_major() as f64;
    let (mut revenue, mut transactions, mut customer_days) = (0.0, 0.0, 0.0);
    let mut categories = vec![0.0; scenario.catalog.len()];
    for d in days {
        for c in &d.personas {
            revenue += c.revenue_paise as f64 / per_major;
            transactions += c.transactions as f64;
        }
        customer_days += d.active.iter().sum::<u64>() as f64;
        for (k, &v) in d.category_revenue.iter().enumerate() {
            if let Some(x) = categories.get_mut(k) {
                *x += v as f64;
            }
        }
    }
    let all_categories: f64 = categories.iter().sum();
    let value = |words: String, source: &str, wanted: f64, got: Option<f64>, tol: f64| {
        let off = got.map(|g| g / wanted - 1.0);
        Row {
            key: (0, 0),
            gap: got.map_or(0.0, |g| (wanted / g.max(1e-9)).ln()),
            target: words,
            source: source.to_owned(),
            kind: "value",
            wanted,
            band: (wanted * (1.0 - tol), Some(wanted * (1.0 + tol))),
            simulated: got,
            off,
            met: off.is_some_and(|x| x.abs() <= tol),
            error: off.map_or(10.0, |x| x / tol),
        }
    };
    let share = |words: String, source: &str, wanted: f64, got: f64, tol: f64| Row {
        key: (0, 0),
        gap: (wanted.max(1e-4) / got.max(1e-4)).ln(),
        target: words,
        source: source.to_owned(),
        kind: "share",
        wanted,
        band: ((wanted - tol).max(0.0), Some((wanted + tol).min(1.0))),
        simulated: Some(got),
        off: Some(got - wanted),
        met: (got - wanted).abs() <= tol,
        error: (got - wanted) / tol,
    };
    let money = |x: f64| scenario.money.whole(x);
    let mut rows = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        let tol = t.tolerance;
        let from = rows.len();
        match &t.target {
            Target::MeanOrderValue(v) => rows.push(value(
                "mean order value".into(),
                &t.source,
                *v,
                (transactions > 0.0).then(|| revenue / transactions),
                tol,
            )),
            Target::OrdersPerMonth(v) => rows.push(value(
                "orders per customer per month".into(),
                &t.source,
                *v,
                (customer_days > 0.0).then(|| transactions / customer_days * 30.0),
                tol,
            )),
            Target::SpendBands(bands) => {
                let n = o.monthly.len().max(1) as f64;
                let mut lower = 0.0;
                for &(upper, wanted) in bands {
                    let got = o
                        .monthly
                        .iter()
                        .filter(|(_, m)| *m >= lower && *m < upper)
                        .count() as f64
                        / n;
                    let words = if upper.is_finite() {
                        format!(
                            "customers spending {} to {} a month",
                            money(lower),
                            money(upper)
                        )
                    } else {
                        format!("customers spending {} or more a month", money(lower))
                    };
                    rows.push(share(words, &t.source, wanted, got, tol));
                    lower = upper;
                }
            }
            Target::CategoryMix(mix) => {
                for (name, ids, wanted) in mix {
                    let got: f64 = ids
                        .iter()
                        .filter_map(|&i| categories.get(usize::from(i)))
                        .sum::<f64>()
                        / all_categories.max(1.0);
                    rows.push(share(
                        format!("{name}'s share of revenue"),
                        &t.source,
                        *wanted,
                        got,
                        tol,
                    ));
                }
            }
            Target::Uplift(f) => {
                let outcome = published::evaluate(
                    std::slice::from_ref(f),
                    &scenario.calendar,
                    scenario.catalog.len(),
                    &a.days,
                );
                let Some(out) = outcome.into_iter().next() else {
                    continue;
                };
                let (wanted, error) = uplift_error(f, out.simulated);
                let aim = match f.uplift {
                    published::Uplift::AtLeast(u) => u,
                    _ => wanted,
                };
                rows.push(Row {
                    key: (0, 0),
                    gap: match out.simulated {
                        Some(s) if error != 0.0 => ((1.0 + aim) / (1.0 + s).max(1e-3)).ln(),
                        _ => 0.0,
                    },
                    target: format!("{} ({}, {})", out.name, out.measure, out.target),
                    source: t.source.clone(),
                    kind: "uplift",
                    wanted,
                    band: out.band,
                    simulated: out.simulated,
                    off: out.simulated.map(|s| s - wanted),
                    met: out.met,
                    error,
                });
            }
        }
        for (k, r) in rows[from..].iter_mut().enumerate() {
            r.key = (i, k);
        }
    }
    rows
}

/// An uplift figure's centre and the miss in units of its tolerance: from the figure for a
/// point, from the bound below for a lower bound, from the range for a range.
fn uplift_error(f: &Figure, simulated: Option<f64>) -> (f64, f64) {
    use published::Uplift as U;
    let wanted = match f.uplift {
        U::Exactly(u) | U::AtLeast(u) => u,
        U::Between(a, b) => (a + b) / 2.0,
    };
    let Some(s) = simulated else {
        return (wanted, 10.0);
    };
    let unit = |u: f64| (f.tolerance * u.abs()).max(0.01);
    let error = match f.uplift {
        U::Exactly(u) => (s - u) / unit(u),
        U::AtLeast(u) => (s - u).min(0.0) / unit(u),
        U::Between(a, b) => {
            let (lo, hi) = (a.min(b), a.max(b));
            let scale = unit(lo.abs().max(hi.abs()));
            if s < lo {
                (s - lo) / scale
            } else if s > hi {
                (s - hi) / scale
            } else {
                0.0
            }
        }
    };
    (wanted, error)
}

/// `text` with the string at `path` (or inside its `Some(...)`) replaced by `value`, the
/// comments after it kept. `None` when the value there is not a plain quoted string.
fn replace_string(text: &str, path: &[Step<'_>], value: &str) -> Option<String> {
    let (start, end) = find_span(text, path)?;
    let mut toks = Tokens::new(&text[start..end]);
    let mut first = toks.next()?;
    if matches!(first, Tok::Ident(_, "Some")) {
        let (Some(Tok::Punct(_, b'(')), Some(inner)) = (toks.next(), toks.next()) else {
            return None;
        };
        first = inner;
    }
    let at = start + first.offset();
    if !matches!(first, Tok::Literal(_)) || !text[at..].starts_with('"') {
        return None;
    }
    // The tokenizer has just read past the literal's closing quote.
    let close = start + toks.position();
    Some(format!("{}{value:?}{}", &text[..at], &text[close..]))
}

/// Writes `fit.json` and `fit.html`.
fn write_report(dir: &Path, o: &MarketOutcome) -> Result<(), CalibrateError> {
    let json = serde_json::to_string_pretty(o).map_err(|e| io_err(&dir.join("fit.json"), e))?;
    write_file(&dir.join("fit.json"), &(json + "\n"))?;
    write_file(&dir.join("fit.html"), &super::report::market_html(o))
}
