//! Sweep files: `bazaar sweep sweep.ron` reads the base scenario, the parameters (each a
//! place in the base's text and the values it takes) and the design that combines them (a
//! grid of every combination, or a Latin hypercube of a given number of points) from one
//! file. Each point's scenario is the base's text with the parameters' values written in
//! their places, so a point reads and is checked exactly as a scenario file of its own.
//!
//! ```ron
//! Sweep(
//!     base: "../diwali.ron",
//!     replications: 3,
//!     design: Grid,
//!     metrics: ["churned", "retention_cost", "revenue"],
//!     parameters: [
//!         (name: "threshold", at: "churn_model.mode.threshold", values: [0.02, 0.05, 0.1]),
//!         (name: "cost", at: "churn_model.mode.cost", range: (50, 250), steps: 3),
//!     ],
//! )
//! ```

use std::path::Path;

use serde::Deserialize;

use super::{Kind, Parameter, Point, Sweep, SweepError, Value};
use crate::scenario::diag::{Step, find_span};
use crate::scenario::load::SourceMap;
use crate::scenario::validate::{OtherFile, parse_other};
use crate::scenario::{Overrides, Scenario};

#[derive(Debug, Deserialize)]
#[serde(rename = "Sweep", deny_unknown_fields)]
struct SweepFile {
    base: String,
    #[serde(default = "three")]
    replications: u32,
    #[serde(default = "ninety_five")]
    confidence: f64,
    #[serde(default)]
    scale: Option<f64>,
    #[serde(default)]
    design: DesignFile,
    #[serde(default)]
    metrics: Vec<String>,
    parameters: Vec<ParameterFile>,
}

fn three() -> u32 {
    3
}

fn ninety_five() -> f64 {
    0.95
}

#[derive(Debug, Default, Deserialize)]
enum DesignFile {
    #[default]
    Grid,
    LatinHypercube {
        points: u32,
    },
}

#[derive(Debug, Deserialize)]
#[serde(rename = "Parameter", deny_unknown_fields)]
struct ParameterFile {
    name: String,
    at: String,
    #[serde(default)]
    values: Option<Vec<Value>>,
    #[serde(default)]
    range: Option<(Value, Value)>,
    #[serde(default)]
    steps: Option<u32>,
    #[serde(default)]
    log: bool,
}

/// Most points one sweep runs (times its replications).
pub const MAX_POINTS: usize = 10_000;

/// Column names of the results table that a parameter cannot take.
const TAKEN: [&str; 3] = ["point", "replication", "seed"];

/// Reads `path`; `overrides` apply to every point (a scale from the command line wins over
/// the file's).
pub fn load(path: &Path, overrides: &Overrides) -> Result<Sweep, SweepError> {
    let bad = |e: &dyn std::fmt::Display| SweepError::Design(e.to_string());
    let map = SourceMap::load(path).map_err(|e| bad(&e))?;
    let file: SweepFile = parse_other(&map, path).map_err(|e| bad(&e))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let registry = crate::sim::registry();
    let mut overrides = overrides.clone();
    if overrides.scale.is_none() {
        overrides.scale = file.scale;
    }
    let (base_path, base_text) =
        crate::experiment::file::read_base(&map, dir, &file.base).map_err(|e| bad(&e))?;
    let base = Scenario::load(&base_path, &registry).map_err(|e| bad(&e))?;
    let mut other = OtherFile::new(&map, path, &base);
    let mut parameters = Vec::new();
    let mut places = Vec::new();
    for (i, p) in file.parameters.iter().enumerate() {
        let here = |f: &'static str| [Step::Field("parameters"), Step::Index(i), Step::Field(f)];
        if !crate::scenario::validate::is_folder_name(&p.name)
            || TAKEN.contains(&p.name.as_str())
            || parameters.iter().any(|q: &Parameter| q.name == p.name)
        {
            other.err(
                &here("name"),
                format!("`{}` cannot name a parameter", p.name),
                "letters, digits, '-', '_' and '.', each parameter its own; not point, replication or seed",
            );
            continue;
        }
        let place = match resolve(&base_text, &p.at) {
            Ok(place) => place,
            Err(why) => {
                other.err(&here("at"), format!("`{}`: {why}", p.at), AT_HINT);
                continue;
            }
        };
        let values = match (&p.values, &p.range) {
            (Some(v), None) if !v.is_empty() => {
                if p.steps.is_some() || p.log {
                    other.err(
                        &here("steps"),
                        "`steps` and `log` go with a `range`, not with `values`",
                        "leave them out, or give range: (low, high) instead of the values",
                    );
                }
                Levels::Values(v.clone())
            }
            (None, Some((lo, hi))) => match (lo.number(), hi.number()) {
                (Some(a), Some(b)) if a < b && (!p.log || a > 0.0) => Levels::Range {
                    low: a,
                    high: b,
                    integer: lo.is_integer() && hi.is_integer(),
                    log: p.log,
                    steps: p.steps,
                },
                _ => {
                    other.err(
                        &here("range"),
                        "a range is two numbers, the low one first (above 0 on a log scale)",
                        "e.g. range: (0.01, 0.2), or range: (50, 300) for whole numbers",
                    );
                    continue;
                }
            },
            _ => {
                other.err(
                    &here("at"),
                    format!("parameter `{}` needs `values` or a `range`, one of the two", p.name),
                    "give values: [0.02, 0.05, 0.1], or range: (0.01, 0.2) (with steps: N in a grid)",
                );
                continue;
            }
        };
        if let (DesignFile::Grid, Levels::Range { steps, .. }) = (&file.design, &values)
            && !steps.is_some_and(|s| s >= 2)
        {
            other.err(
                &here("range"),
                "a range in a grid needs `steps`, 2 or more: how many evenly spaced values",
                "add steps: 5, or give the values themselves",
            );
            continue;
        }
        places.push(place);
        parameters.push(Parameter {
            name: p.name.clone(),
            at: p.at.clone(),
            levels: values,
        });
    }
    if file.parameters.is_empty() {
        other.err(
            &[Step::Field("parameters")],
            "a sweep needs at least one parameter",
            "add (name: \"...\", at: \"field.path\", values: [...])",
        );
    }
    if file.replications == 0 || file.replications > 10_000 {
        other.err(
            &[Step::Field("replications")],
            "replications go from 1 to 10,000",
            "replication r runs every point with the base's seed plus r",
        );
    }
    if !(file.confidence > 0.0 && file.confidence < 1.0) {
        other.err(
            &[Step::Field("confidence")],
            format!("confidence {} is not between 0 and 1", file.confidence),
            "e.g. 0.95",
        );
    }
    let kind = match file.design {
        DesignFile::Grid => Kind::Grid,
        DesignFile::LatinHypercube { points } => {
            if points < 2 || points as usize > MAX_POINTS {
                other.err(
                    &[Step::Field("design")],
                    format!("{points} points: a Latin hypercube has 2 to {MAX_POINTS}"),
                    "e.g. design: LatinHypercube(points: 20)",
                );
            }
            Kind::LatinHypercube { points }
        }
    };
    let combinations = match kind {
        Kind::Grid => parameters
            .iter()
            .map(|p| p.levels.grid().len())
            .try_fold(1usize, usize::checked_mul),
        Kind::LatinHypercube { points } => Some(points as usize),
    };
    if combinations.is_none_or(|n| n.saturating_mul(file.replications as usize) > MAX_POINTS) {
        other.err(
            &[Step::Field("parameters")],
            format!(
                "the design has {} runs (points times replications), more than the {MAX_POINTS} a sweep runs",
                combinations.map_or("too many".into(), |n| (n as u128
                    * u128::from(file.replications))
                .to_string())
            ),
            "fewer values or steps, a Latin hypercube, or fewer replications",
        );
    }
    let scenarios = [&base];
    crate::experiment::file::check_metrics(&mut other, &file.metrics, &scenarios);
    other.finish().map_err(|e| bad(&e))?;

    let values = match kind {
        Kind::Grid => grid(&parameters),
        Kind::LatinHypercube { points } => hypercube(&parameters, points, base.seed),
    };
    let stem = base_path
        .file_name()
        .map_or("base".into(), |n| n.to_string_lossy());
    let mut points = Vec::with_capacity(values.len());
    for (k, values) in values.into_iter().enumerate() {
        let mut text = base_text.clone();
        for (place, value) in places.iter().zip(&values) {
            text = crate::scenario::tune::with_value(&text, &steps(place), &value.to_ron())
                .ok_or_else(|| bad(&"a parameter's place was lost writing the point"))?;
        }
        let shown = show_point(&parameters, &values);
        // The point reads as a file beside the base (its includes and model paths resolve
        // as the base's do), named for the point in any error.
        let name = base_path.with_file_name(format!("{stem}+point-{k}"));
        let mut s = Scenario::from_text_as(&name, &text, &registry)
            .map_err(|e| bad(&format!("point {k} ({shown}): {e}")))?;
        s.apply(overrides.clone())
            .map_err(|e| bad(&format!("point {k} ({shown}): {e}")))?;
        points.push(Point {
            values,
            scenario: s,
        });
    }
    Ok(Sweep {
        name: path
            .file_stem()
            .map_or("sweep".into(), |s| s.to_string_lossy().into_owned()),
        base: file.base,
        kind,
        parameters,
        points,
        replications: file.replications,
        confidence: file.confidence,
        metrics: file.metrics,
    })
}

const AT_HINT: &str = "name a value the base file writes, as fields and list positions: `churn_model.mode.threshold`, `population[1].count`; a list entry by its name: `systems.Promotions.campaigns[0].discount`, `population.family.count` (a field the struct leaves out is added)";

/// A parameter's values.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Levels {
    /// Given one by one.
    Values(Vec<Value>),
    /// From `low` to `high`: `steps` evenly spaced in a grid (geometrically with `log`),
    /// anywhere in a Latin hypercube; whole numbers when both ends are.
    Range {
        /// The low end.
        low: f64,
        /// The high end.
        high: f64,
        /// Whole numbers only.
        integer: bool,
        /// Spaced on a log scale.
        log: bool,
        /// Values in a grid.
        steps: Option<u32>,
    },
}

impl Levels {
    /// The values a grid takes.
    pub fn grid(&self) -> Vec<Value> {
        match self {
            Self::Values(v) => v.clone(),
            Self::Range { steps, .. } => {
                let n = steps.unwrap_or(2).max(2);
                let mut out: Vec<Value> = Vec::new();
                for i in 0..n {
                    let v = self.at(f64::from(i) / f64::from(n - 1));
                    if !out.contains(&v) {
                        out.push(v);
                    }
                }
                out
            }
        }
    }

    /// The value at `u` in [0, 1]: along the range, or the list's entry whose share of
    /// [0, 1] holds `u`.
    pub fn at(&self, u: f64) -> Value {
        let u = u.clamp(0.0, 1.0);
        match self {
            Self::Values(v) => {
                let k = ((u * v.len() as f64) as usize).min(v.len() - 1);
                v[k].clone()
            }
            &Self::Range {
                low,
                high,
                integer,
                log,
                ..
            } => {
                // The ends exactly, whatever the logarithms round to.
                let x = if u == 0.0 {
                    low
                } else if u == 1.0 {
                    high
                } else if log {
                    (low.ln() + u * (high.ln() - low.ln())).exp()
                } else {
                    low + u * (high - low)
                };
                let x = x.clamp(low, high);
                if integer {
                    Value::Int(x.round() as i64)
                } else {
                    Value::Float(x)
                }
            }
        }
    }
}

/// Every combination of the parameters' grid values, the last parameter varying fastest.
fn grid(parameters: &[Parameter]) -> Vec<Vec<Value>> {
    let mut out = vec![Vec::new()];
    for p in parameters {
        let levels = p.levels.grid();
        out = out
            .into_iter()
            .flat_map(|head| {
                levels.iter().map(move |v| {
                    let mut row = head.clone();
                    row.push(v.clone());
                    row
                })
            })
            .collect();
    }
    out
}

/// `points` points of an optimised Latin hypercube (maximin by enhanced stochastic
/// evolution) over the parameters, drawn from a stream seeded by `seed`: each parameter's
/// range is cut into `points` equal slices and each slice is used once.
fn hypercube(parameters: &[Parameter], points: u32, seed: u64) -> Vec<Vec<Value>> {
    use egobox_doe::{Lhs, SamplingMethod};
    use rand_xoshiro_06::rand_core::SeedableRng;
    let limits = ndarray::Array2::from_shape_fn((parameters.len(), 2), |(_, j)| j as f64);
    let rng = rand_xoshiro_06::Xoshiro256Plus::seed_from_u64(seed);
    let unit = Lhs::new_with_rng(&limits, rng).sample(points as usize);
    unit.rows()
        .into_iter()
        .map(|row| {
            parameters
                .iter()
                .zip(row.iter())
                .map(|(p, u)| p.levels.at(*u))
                .collect()
        })
        .collect()
}

/// `name=value, ...` of a point.
pub fn show_point(parameters: &[Parameter], values: &[Value]) -> String {
    parameters
        .iter()
        .zip(values)
        .map(|(p, v)| format!("{}={}", p.name, v.to_ron()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A place in the base's text, resolved: field names and list positions.
#[derive(Debug, Clone)]
pub(super) enum Place {
    Field(String),
    Index(usize),
}

/// The steps of a resolved place.
fn steps(places: &[Place]) -> Vec<Step<'_>> {
    places
        .iter()
        .map(|p| match p {
            Place::Field(f) => Step::Field(f),
            Place::Index(i) => Step::Index(*i),
        })
        .collect()
}

/// Resolves `at` (`churn_model.mode.threshold`, `population[1].count`,
/// `systems.Promotions.campaigns[0].discount`) in the base's `text`: a name on a list picks
/// the entry that is that variant (`Promotions(...)`) or has that `name` or `persona`.
/// Every step but the last must be written in the file itself (not in an included one); the
/// last may be a field its struct leaves out.
pub(super) fn resolve(text: &str, at: &str) -> Result<Vec<Place>, String> {
    let mut segments = Vec::new();
    for part in at.split('.') {
        let (name, mut rest) = part.split_once('[').map_or((part, ""), |(n, r)| (n, r));
        if !name.is_empty() {
            segments.push(Err(name.to_owned()));
        }
        while !rest.is_empty() {
            let (index, after) = rest
                .split_once(']')
                .ok_or_else(|| "a `[` without its `]`".to_owned())?;
            let i = index
                .parse::<usize>()
                .map_err(|_| format!("`[{index}]` is not a list position"))?;
            segments.push(Ok(i));
            rest = after.strip_prefix('[').unwrap_or(after);
            if !after.is_empty() && !after.starts_with('[') {
                return Err(format!("`{after}` after `]`: use `.` between fields"));
            }
        }
        if name.is_empty() && part.is_empty() {
            return Err("an empty step (two dots, or a dot at an end)".into());
        }
    }
    if segments.is_empty() {
        return Err("an empty place".into());
    }
    if matches!(segments.first(), Some(Err(f)) if f == "seed") {
        return Err("the seed is the replications' to vary".into());
    }
    let mut places: Vec<Place> = Vec::new();
    let last = segments.len() - 1;
    for (k, segment) in segments.into_iter().enumerate() {
        let here = steps(&places);
        let span = find_span(text, &here).map(|(a, b)| text[a..b].trim_start());
        if span.is_some_and(|s| s.starts_with("include")) {
            return Err("that part of the base is in an included file; sweep a field the base file writes itself".into());
        }
        match segment {
            Ok(i) => places.push(Place::Index(i)),
            Err(name) if span.is_some_and(|s| s.starts_with('[')) => {
                places.push(Place::Index(entry(text, &here, &name).ok_or_else(
                    || format!("the list before `{name}` has no entry of that name"),
                )?));
            }
            Err(name) => places.push(Place::Field(name)),
        }
        let found = find_span(text, &steps(&places)).is_some();
        if !found && k != last {
            return Err(format!(
                "the base does not write `{}`",
                crate::scenario::diag::path_string(&steps(&places))
            ));
        }
        if !found && matches!(places.last(), Some(Place::Index(_))) {
            return Err(format!(
                "the base's list has no entry `{}`",
                crate::scenario::diag::path_string(&steps(&places))
            ));
        }
    }
    Ok(places)
}

/// The position of the entry of the list at `list` that is the variant `name`
/// (`Promotions(...)`) or has that `name` or `persona` field.
fn entry(text: &str, list: &[Step<'_>], name: &str) -> Option<usize> {
    let quoted = format!("\"{name}\"");
    (0..)
        .map_while(|i| {
            let mut at = list.to_vec();
            at.push(Step::Index(i));
            let (a, b) = find_span(text, &at)?;
            let head: String = text[a..b]
                .trim_start()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let named = ["name", "persona"].iter().any(|f| {
                let mut field = at.clone();
                field.push(Step::Field(f));
                find_span(text, &field).is_some_and(|(a, b)| text[a..b].trim() == quoted)
            });
            Some((i, head == name || named))
        })
        .find_map(|(i, yes)| yes.then_some(i))
}

/// Whether `path` is a sweep file (its value is `Sweep(...)`).
pub fn is_sweep(path: &Path) -> bool {
    crate::experiment::file::starts_with_value(path, "Sweep")
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"Scenario(
    name: "b",
    population: [
        (persona: "premium", count: 10),
        (persona: "family", count: 20),
    ],
    personas: include("p.ron"),
    systems: [
        "daily_log",
        Promotions(campaigns: [(name: "x", discount: 0.1)]),
    ],
    churn_model: (spec: "m.json", mode: Retain(top_k: 5, threshold: 0.05)),
)"#;

    fn place(at: &str) -> Result<String, String> {
        resolve(BASE, at).map(|p| crate::scenario::diag::path_string(&steps(&p)))
    }

    #[test]
    fn places_resolve_by_field_position_and_name() {
        assert_eq!(
            place("churn_model.mode.threshold").unwrap(),
            "churn_model.mode.threshold"
        );
        assert_eq!(
            place("population.family.count").unwrap(),
            "population[1].count"
        );
        assert_eq!(
            place("systems.Promotions.campaigns.x.discount").unwrap(),
            "systems[1].campaigns[0].discount"
        );
        assert_eq!(place("population[0].count").unwrap(), "population[0].count");
        // A field the struct leaves out is a place (it is added).
        assert_eq!(
            place("churn_model.mode.cost").unwrap(),
            "churn_model.mode.cost"
        );
        let refused = |at: &str, why: &str| {
            let e = place(at).unwrap_err();
            assert!(e.contains(why), "{at}: {e}");
        };
        refused("personas.premium.budget", "included file");
        refused("population.senior.count", "no entry of that name");
        refused("population[7].count", "does not write `population[7]`");
        refused("nothing.here", "does not write `nothing`");
        refused("seed", "replications");
        refused("churn_model..mode", "empty step");
        refused("population[x]", "not a list position");
        // Writing a value in its place, or adding the field.
        let cost = resolve(BASE, "churn_model.mode.cost").unwrap();
        let text = crate::scenario::tune::with_value(BASE, &steps(&cost), "150").unwrap();
        assert!(
            text.contains("threshold: 0.05,\n            cost: 150,\n)"),
            "{text}"
        );
        let count = resolve(BASE, "population.family.count").unwrap();
        let text = crate::scenario::tune::with_value(BASE, &steps(&count), "99").unwrap();
        assert!(text.contains("(persona: \"family\", count: 99)"), "{text}");
    }

    #[test]
    fn grids_cover_every_combination_and_ranges_their_ends() {
        let p = |name: &str, levels| Parameter {
            name: name.into(),
            at: String::new(),
            levels,
        };
        let a = p(
            "a",
            Levels::Range {
                low: 50.0,
                high: 250.0,
                integer: true,
                log: false,
                steps: Some(3),
            },
        );
        let b = p(
            "b",
            Levels::Values(vec![Value::Text("x".into()), Value::Bool(true)]),
        );
        let g = grid(&[a.clone(), b.clone()]);
        assert_eq!(g.len(), 6);
        assert_eq!(g[0], vec![Value::Int(50), Value::Text("x".into())]);
        assert_eq!(g[3], vec![Value::Int(150), Value::Bool(true)]);
        assert_eq!(g[5], vec![Value::Int(250), Value::Bool(true)]);
        let log = Levels::Range {
            low: 0.01,
            high: 1.0,
            integer: false,
            log: true,
            steps: Some(3),
        };
        let v: Vec<f64> = log.grid().iter().filter_map(Value::number).collect();
        assert!(
            (v[1] - 0.1).abs() < 1e-12 && v[0] == 0.01 && v[2] == 1.0,
            "{v:?}"
        );
        // A Latin hypercube uses each of its slices of each range once, the same each time.
        let c = p(
            "c",
            Levels::Range {
                low: 50.0,
                high: 250.0,
                integer: false,
                log: false,
                steps: None,
            },
        );
        let h = hypercube(&[c.clone(), b.clone()], 8, 42);
        assert_eq!(h.len(), 8);
        let mut slices: Vec<i64> = h
            .iter()
            .map(|r| ((r[0].number().unwrap() - 50.0) / 25.0).floor().min(7.0) as i64)
            .collect();
        slices.sort_unstable();
        assert_eq!(slices, (0..8).collect::<Vec<_>>());
        assert_eq!(h, hypercube(&[c.clone(), b.clone()], 8, 42));
        assert_ne!(h, hypercube(&[c, b], 8, 43));
        assert!(grid(&[a]).iter().all(|r| matches!(r[0], Value::Int(_))));
        assert_eq!(
            h.iter().filter(|r| r[1] == Value::Bool(true)).count(),
            4,
            "half the points take each of two values"
        );
    }
}
