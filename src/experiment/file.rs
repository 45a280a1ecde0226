//! Experiment files: `bazaar ab experiment.ron` reads the base, the fork date, the
//! replications, the metrics to judge and the arms from one file. An arm is a scenario file
//! of its own, or the base with some of its fields changed (`change: (systems: [...])`): the
//! base's text with those fields' text put in their place, so an arm says only how it
//! differs and follows every later edit of the base.
//!
//! ```ron
//! Experiment(
//!     base: "../diwali.ron",
//!     fork_at: "2026-11-02",
//!     replications: 10,
//!     metrics: ["revenue", "units", "promotions.diwali_sweets.cost"],
//!     arms: [
//!         (name: "sweets", change: (systems: [Promotions(campaigns: [...])])),
//!         (name: "other", scenario: "other.ron"),
//!     ],
//! )
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Design, ExperimentError};
use crate::scenario::diag::Step;
use crate::scenario::load::SourceMap;
use crate::scenario::validate::{OtherFile, parse_other};
use crate::scenario::{Overrides, Scenario};

/// Fields an arm cannot change: its customers continue from the base's, so it shares what
/// their saved state means ([`crate::checkpoint::Shape`]).
const SHARED: [&str; 7] = [
    "seed",
    "start",
    "end",
    "days",
    "personas",
    "catalog",
    "population",
];

#[derive(Debug, Deserialize)]
#[serde(rename = "Experiment", deny_unknown_fields)]
struct ExperimentFile {
    base: String,
    fork_at: String,
    #[serde(default = "five")]
    replications: u32,
    #[serde(default = "ninety_five")]
    confidence: f64,
    #[serde(default = "one_percent")]
    precision: f64,
    #[serde(default)]
    scale: Option<f64>,
    #[serde(default)]
    metrics: Vec<String>,
    arms: Vec<ArmFile>,
}

fn five() -> u32 {
    5
}

fn ninety_five() -> f64 {
    0.95
}

fn one_percent() -> f64 {
    0.01
}

#[derive(Debug, Deserialize)]
#[serde(rename = "Arm", deny_unknown_fields)]
struct ArmFile {
    name: String,
    #[serde(default)]
    scenario: Option<String>,
    #[serde(default)]
    change: Option<ron::Value>,
}

/// An experiment read from its file: the design, and the metrics whose verdicts it asks for
/// (all when none are named).
pub struct Experiment {
    /// The design.
    pub design: Design,
    /// The metrics to judge.
    pub metrics: Vec<String>,
    /// Each arm's changes: the field and the text put in the base's place.
    pub changes: Vec<(String, Vec<(String, String)>)>,
}

/// Reads `path`; `overrides` apply to every scenario (a scale from the command line wins
/// over the file's).
pub fn load(path: &Path, overrides: &Overrides) -> Result<Experiment, ExperimentError> {
    let bad = |e: &dyn std::fmt::Display| ExperimentError::Design(e.to_string());
    let map = SourceMap::load(path).map_err(|e| bad(&e))?;
    let file: ExperimentFile = parse_other(&map, path).map_err(|e| bad(&e))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let registry = crate::sim::registry();
    let mut overrides = overrides.clone();
    if overrides.scale.is_none() {
        overrides.scale = file.scale;
    }
    let (base_path, base_text) = read_base(&map, dir, &file.base).map_err(|e| bad(&e))?;
    let with = |mut s: Scenario| -> Result<Scenario, ExperimentError> {
        s.apply(overrides.clone())
            .map_err(ExperimentError::Design)?;
        Ok(s)
    };
    let base = with(Scenario::load(&base_path, &registry).map_err(|e| bad(&e))?)?;
    let mut other = OtherFile::new(&map, path, &base);
    let fork = match chrono::NaiveDate::parse_from_str(&file.fork_at, "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) => {
            other.err(
                &[Step::Field("fork_at")],
                format!("`{}` is not a date", file.fork_at),
                "write it as \"YYYY-MM-DD\", the first day the arms differ",
            );
            None
        }
    };
    if file.arms.is_empty() {
        other.err(
            &[Step::Field("arms")],
            "an experiment needs at least one arm",
            "add (name: \"...\", change: (...)) or (name: \"...\", scenario: \"...\")",
        );
    }
    let mut arms = Vec::new();
    let mut changes = Vec::new();
    for (i, arm) in file.arms.iter().enumerate() {
        let here = [Step::Field("arms"), Step::Index(i)];
        if !crate::scenario::validate::is_folder_name(&arm.name) || arm.name == "base" {
            other.err(
                &[here[0], here[1], Step::Field("name")],
                format!("`{}` cannot name an arm", arm.name),
                "letters, digits, '-', '_' and '.'; not `base`",
            );
            continue;
        }
        match (&arm.scenario, &arm.change) {
            (Some(file), None) => {
                let s = Scenario::load(&dir.join(file), &registry).map_err(|e| bad(&e))?;
                arms.push((arm.name.clone(), with(s)?));
                changes.push((arm.name.clone(), Vec::new()));
            }
            (None, Some(change)) => {
                let ron::Value::Map(fields) = change else {
                    other.err(
                        &[here[0], here[1], Step::Field("change")],
                        "`change` is not a set of scenario fields",
                        "write it as (field: value, ...), e.g. change: (systems: [...])",
                    );
                    continue;
                };
                let mut text = base_text.clone();
                let mut changed = Vec::new();
                for (key, _) in fields.iter() {
                    let ron::Value::String(field) = key else {
                        continue;
                    };
                    let path = [here[0], here[1], Step::Field("change"), Step::Field(field)];
                    if SHARED.contains(&field.as_str()) {
                        other.err(
                            &path,
                            format!("an arm cannot change `{field}`"),
                            "its customers continue from the base's, so it shares the base's seed, dates, personas, catalog and population",
                        );
                        continue;
                    }
                    let value_at = [here[0], here[1], Step::Field("change"), Step::Field(field)];
                    let Some((from, to)) = crate::scenario::diag::find_span(&map.text, &value_at)
                    else {
                        continue;
                    };
                    let value = map.text[from..to].to_owned();
                    match crate::scenario::tune::with_field(&text, field, &value) {
                        Some(t) => text = t,
                        None => {
                            return Err(bad(&format!(
                                "{}: the base is not one Scenario(...) value",
                                base_path.display()
                            )));
                        }
                    }
                    changed.push((field.clone(), value));
                }
                // The arm reads as a file beside the base (its includes and model paths
                // resolve as the base's do), named for the arm in any error.
                let name = base_path.with_file_name(format!(
                    "{}+{}",
                    base_path
                        .file_name()
                        .map_or("base".into(), |n| n.to_string_lossy()),
                    arm.name
                ));
                let s = Scenario::from_text_as(&name, &text, &registry).map_err(|e| {
                    bad(&format!(
                        "arm `{}` (the base with {} from {}): {e}",
                        arm.name,
                        changed
                            .iter()
                            .map(|(f, _)| format!("`{f}`"))
                            .collect::<Vec<_>>()
                            .join(", "),
                        at(&map, &[here[0], here[1], Step::Field("change")])
                    ))
                })?;
                arms.push((arm.name.clone(), with(s)?));
                changes.push((arm.name.clone(), changed));
            }
            _ => other.err(
                &here,
                "an arm is a `scenario` file or the base's `change`, one of the two",
                "give scenario: \"arm.ron\", or change: (field: value, ...)",
            ),
        }
    }
    // The metrics judged: Bazaar's own (overall or per persona), or a behaviour's
    // (`promotions.NAME.cost`) that the base or an arm enables.
    let scenarios: Vec<&Scenario> = std::iter::once(&base)
        .chain(arms.iter().map(|(_, s)| s))
        .collect();
    check_metrics(&mut other, &file.metrics, &scenarios);
    other.finish().map_err(|e| bad(&e))?;
    let design = Design {
        base,
        arms,
        fork: fork.expect("a bad date is reported above"),
        replications: file.replications,
        confidence: file.confidence,
        precision: file.precision,
    };
    Ok(Experiment {
        design,
        metrics: file.metrics,
        changes,
    })
}

/// Reports each of `metrics` (at the field `metrics` of the file `other` reads) that is
/// neither Bazaar's own (overall, or for a persona of the first scenario: `revenue.premium`)
/// nor a behaviour's that one of `scenarios` enables (`promotions.NAME.cost`).
pub(crate) fn check_metrics(
    other: &mut OtherFile<'_>,
    metrics: &[String],
    scenarios: &[&Scenario],
) {
    let Some(base) = scenarios.first() else {
        return;
    };
    let systems: Vec<String> = scenarios
        .iter()
        .flat_map(|s| s.systems.iter().map(|e| snake(e.name)))
        .collect();
    for (i, metric) in metrics.iter().enumerate() {
        let (head, rest) = metric.split_once('.').unwrap_or((metric, ""));
        let builtin = super::METRICS.iter().any(|(m, _)| *m == head)
            && (rest.is_empty() || base.personas.iter().any(|p| p.name == rest));
        let costless = base.catalog.iter().any(|c| c.margin.is_none());
        if builtin && costless && super::COSTED.contains(&head) {
            other.err(
                &[Step::Field("metrics"), Step::Index(i)],
                format!("`{metric}` needs a cost of goods, and the base's catalog states no margins"),
                "give every catalog category a gross margin (e.g. (name: \"rice\", group: \"grocery\", margin: 0.1)), as catalogs/india.ron does",
            );
            continue;
        }
        let behaviours = !rest.is_empty() && systems.iter().any(|s| s == head);
        if !builtin && !behaviours {
            other.err(
                &[Step::Field("metrics"), Step::Index(i)],
                format!("`{metric}` is not a metric measured here"),
                format!(
                    "Bazaar's own are {} (or one of them for a persona, `revenue.{}`), and a behaviour's are named after it (`promotions.NAME.cost`)",
                    super::METRICS.map(|(m, _)| m).join(", "),
                    base.personas.first().map_or("premium", |p| p.name.as_str())
                ),
            );
        }
    }
}

/// A behaviour's registry name as its metrics are named: `WordOfMouth` is `word_of_mouth`.
fn snake(name: &str) -> String {
    let mut s = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            s.push('_');
        }
        s.extend(c.to_lowercase());
    }
    s
}

/// The path and text of the base scenario `base` that the file `map` (in `dir`) names in
/// its field `base`; a base that cannot be read is located at that field.
pub(crate) fn read_base(
    map: &SourceMap,
    dir: &Path,
    base: &str,
) -> Result<(PathBuf, String), String> {
    let path = dir.join(base);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "{}: `base`: cannot read `{}`: {e}",
            at(map, &[Step::Field("base")]),
            path.display()
        )
    })?;
    Ok((path, text))
}

/// `file:line:col` of `path` in `map`'s file.
pub(crate) fn at(map: &SourceMap, path: &[Step<'_>]) -> String {
    match crate::scenario::diag::find_span(&map.text, path) {
        Some((from, _)) => {
            let l = map.locate(from);
            format!("{}:{}:{}", map.path(l.file).display(), l.line, l.col)
        }
        None => map.path(0).display().to_string(),
    }
}

/// Whether `path` is an experiment file (its value is `Experiment(...)`) rather than a
/// scenario.
pub fn is_experiment(path: &Path) -> bool {
    starts_with_value(path, "Experiment")
}

/// Whether the file at `path` holds a RON value named `name` (`Experiment(...)`).
pub(crate) fn starts_with_value(path: &Path, name: &str) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| {
        let t = strip_comments(&t);
        t.trim_start()
            .strip_prefix(name)
            .is_some_and(|rest| rest.trim_start().starts_with('('))
    })
}

/// The text without `//` line comments and `/* */` block comments at its start.
fn strip_comments(text: &str) -> String {
    let mut rest = text.trim_start();
    loop {
        if let Some(r) = rest.strip_prefix("//") {
            rest = r.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else {
            return rest.to_owned();
        }
    }
}

/// The default output folder of an experiment file: `out/<file stem>`.
pub fn default_out(path: &Path) -> PathBuf {
    PathBuf::from("out").join(
        path.file_stem()
            .map_or("experiment".into(), |s| s.to_string_lossy().into_owned()),
    )
}
