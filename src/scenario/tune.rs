//! Tuning: multipliers over a scenario's own figures (visits, prices, customers, categories,
//! events), so that a calibration to market figures is one block written on top of the
//! scenario a person wrote, which reads as what changed and is undone by deleting it.
//!
//! The block is applied to the raw scenario before validation: everything it produces is
//! held to the limits the file's own values are, and the warm start is drawn from the tuned
//! personas.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::diag::{Step, find_span};
use super::load::{Tok, Tokens};
use super::schema::{
    CategoryEffectFile, EventFile, EventSpecFile, PriceFile, ScenarioFile, unit_range,
};

/// Smallest and largest factor a tuning may apply.
pub const FACTORS: (f64, f64) = (0.01, 100.0);

/// `tuning: Tuning(...)`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename = "Tuning")]
pub struct TuningFile {
    /// Multiplies every persona's recency curve (each daily visit probability, at most 1).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub visits: f64,
    /// Multiplies every unit price.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub prices: f64,
    /// Per persona, on top of the above.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub personas: BTreeMap<String, PersonaTuning>,
    /// Per category or group: multiplies every persona's purchase probability of it (at
    /// most 1).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub categories: BTreeMap<String, f64>,
    /// Per event name (every event of that name, the calendar's and the scenario's own).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub events: BTreeMap<String, EventTuning>,
}

impl Default for TuningFile {
    fn default() -> Self {
        Self {
            visits: 1.0,
            prices: 1.0,
            personas: BTreeMap::new(),
            categories: BTreeMap::new(),
            events: BTreeMap::new(),
        }
    }
}

/// One persona's multipliers.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename = "Persona")]
pub struct PersonaTuning {
    /// Multiplies the recency curve.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub visits: f64,
    /// Multiplies unit prices.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub prices: f64,
    /// Multiplies the starting count and the daily acquisitions.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub customers: f64,
}

impl Default for PersonaTuning {
    fn default() -> Self {
        Self {
            visits: 1.0,
            prices: 1.0,
            customers: 1.0,
        }
    }
}

/// One event's multipliers.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename = "Event")]
pub struct EventTuning {
    /// Multiplies the event's traffic.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub traffic: f64,
    /// Multiplies the event's purchase factor.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub purchase: f64,
    /// Per category or group: multiplies the event's purchase factor of it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub categories: BTreeMap<String, f64>,
}

impl Default for EventTuning {
    fn default() -> Self {
        Self {
            traffic: 1.0,
            purchase: 1.0,
            categories: BTreeMap::new(),
        }
    }
}

fn one() -> f64 {
    1.0
}

fn is_one(x: &f64) -> bool {
    *x == 1.0
}

/// A problem with a tuning block: where (a field path from the scenario's root), what, a
/// hint.
pub type Problem<'a> = (Vec<Step<'a>>, String, String);

impl TuningFile {
    /// Every factor with its path under `tuning` and its name, for the range check.
    fn factors(&self) -> Vec<(Vec<Step<'_>>, String, f64)> {
        use Step::{Field as F, Key as K};
        let mut f = vec![
            (vec![F("visits")], "visits".to_owned(), self.visits),
            (vec![F("prices")], "prices".to_owned(), self.prices),
        ];
        for (name, p) in &self.personas {
            for (what, x) in [
                ("visits", p.visits),
                ("prices", p.prices),
                ("customers", p.customers),
            ] {
                let path = vec![F("personas"), K(name), F(what)];
                f.push((path, format!("personas[{name:?}].{what}"), x));
            }
        }
        for (name, &x) in &self.categories {
            let path = vec![F("categories"), K(name)];
            f.push((path, format!("categories[{name:?}]"), x));
        }
        for (name, e) in &self.events {
            for (what, x) in [("traffic", e.traffic), ("purchase", e.purchase)] {
                let path = vec![F("events"), K(name), F(what)];
                f.push((path, format!("events[{name:?}].{what}"), x));
            }
            for (c, &x) in &e.categories {
                let path = vec![F("events"), K(name), F("categories"), K(c)];
                f.push((path, format!("events[{name:?}].categories[{c:?}]"), x));
            }
        }
        f
    }

    /// What is wrong with this tuning for `raw`: factors out of range, names it does not
    /// have.
    pub fn problems(&self, raw: &ScenarioFile) -> Vec<Problem<'_>> {
        use Step::{Field as F, Key as K};
        let mut out = Vec::new();
        let (lo, hi) = FACTORS;
        for (path, name, x) in self.factors() {
            if !(x.is_finite() && (lo..=hi).contains(&x)) {
                let mut at = vec![F("tuning")];
                at.extend(path);
                out.push((
                    at,
                    format!("tuning factor {name} is {x}: it must be between {lo} and {hi}"),
                    "a factor multiplies the scenario's own figure: 1 leaves it as it is".into(),
                ));
            }
        }
        let personas: Vec<&str> = raw.personas.iter().map(|p| p.name.as_str()).collect();
        let categories: Vec<&str> = raw
            .catalog
            .iter()
            .flat_map(|c| std::iter::once(c.name.as_str()).chain(c.group.as_deref()))
            .collect();
        let events: Vec<&EventFile> = raw.calendar.events.iter().chain(&raw.events).collect();
        let event_names: Vec<&str> = events.iter().map(|e| spec(e).name.as_str()).collect();
        let unknown = |what: &str, name: &str, known: &[&str]| {
            let hint = match crate::scenario::diag::did_you_mean(name, known.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("the scenario's {what}s are: {}", known.join(", ")),
            };
            (
                format!("tuning names the {what} `{name}`, which the scenario does not have"),
                hint,
            )
        };
        for name in self.personas.keys() {
            if !personas.contains(&name.as_str()) {
                let (m, h) = unknown("persona", name, &personas);
                out.push((vec![F("tuning"), F("personas"), K(name)], m, h));
            }
        }
        let cats = self
            .categories
            .keys()
            .map(|c| (vec![F("tuning"), F("categories"), K(c)], c))
            .chain(self.events.iter().flat_map(|(e, t)| {
                t.categories.keys().map(move |c| {
                    let path = vec![F("tuning"), F("events"), K(e), F("categories"), K(c)];
                    (path, c)
                })
            }));
        for (path, name) in cats {
            if !categories.contains(&name.as_str()) {
                let (m, h) = unknown("category or group", name, &categories);
                out.push((path, m, h));
            }
        }
        for name in self.events.keys() {
            let found: Vec<&&EventFile> = events.iter().filter(|e| spec(e).name == *name).collect();
            if found.is_empty() {
                let (m, h) = unknown("event", name, &event_names);
                out.push((vec![F("tuning"), F("events"), K(name)], m, h));
            } else if found.iter().all(|e| matches!(e, EventFile::Closed(_))) {
                out.push((
                    vec![F("tuning"), F("events"), K(name)],
                    format!("tuning names `{name}`, a closure: it has no effect to multiply"),
                    "tune the events that are open".into(),
                ));
            }
        }
        out
    }

    /// Applies the multipliers to `raw` (checked first with [`TuningFile::problems`]).
    pub fn apply(&self, raw: &mut ScenarioFile) {
        let groups: BTreeMap<String, Option<String>> = raw
            .catalog
            .iter()
            .map(|c| (c.name.clone(), c.group.clone()))
            .collect();
        let covers = |key: &str, category: &str| {
            key == category
                || groups
                    .get(category)
                    .is_some_and(|g| g.as_deref() == Some(key))
        };
        let none = PersonaTuning::default();
        for p in &mut raw.personas {
            let t = self.personas.get(&p.name).unwrap_or(&none);
            let visits = self.visits * t.visits;
            for step in &mut p.visits.recency {
                step.p = (step.p * visits).min(1.0);
            }
            let prices = self.prices * t.prices;
            for item in &mut p.basket {
                item.price = scale_price(&item.price, prices);
                for (key, &f) in &self.categories {
                    if covers(key, &item.category) {
                        item.p = (item.p * f).min(1.0);
                    }
                }
            }
        }
        for row in &mut raw.population {
            if let Some(t) = self.personas.get(&row.persona) {
                // A float-to-integer cast saturates; validation bounds the count.
                row.count = (row.count as f64 * t.customers).round() as i64;
                row.new_per_day *= t.customers;
            }
        }
        for e in raw.calendar.events.iter_mut().chain(raw.events.iter_mut()) {
            let spec = match e {
                EventFile::Closed(_) => continue,
                EventFile::Festival(s) | EventFile::Dip(s) | EventFile::Sale(s) => s,
            };
            let Some(t) = self.events.get(&spec.name) else {
                continue;
            };
            spec.traffic *= t.traffic;
            spec.purchase *= t.purchase;
            for (key, &f) in &t.categories {
                match spec.categories.iter_mut().find(|c| c.category == *key) {
                    Some(c) => c.purchase *= f,
                    None => spec.categories.push(CategoryEffectFile {
                        category: key.clone(),
                        purchase: f,
                        quantity: 1.0,
                        price: unit_range(),
                    }),
                }
            }
        }
    }

    /// The block as RON, `Tuning(...)`.
    pub fn to_ron(&self) -> String {
        let config = ron::ser::PrettyConfig::new()
            .struct_names(true)
            .indentor("    ".to_owned());
        // Serialising plain numbers and string-keyed maps cannot fail.
        ron::ser::to_string_pretty(self, config).unwrap_or_default()
    }
}

fn spec(e: &EventFile) -> &EventSpecFile {
    match e {
        EventFile::Festival(s) | EventFile::Dip(s) | EventFile::Sale(s) | EventFile::Closed(s) => s,
    }
}

fn scale_price(p: &PriceFile, f: f64) -> PriceFile {
    match *p {
        PriceFile::Uniform(a, b) => PriceFile::Uniform(a * f, b * f),
        PriceFile::LogNormal {
            median,
            sigma,
            min,
            max,
        } => PriceFile::LogNormal {
            median: median * f,
            sigma,
            min: min * f,
            max: max * f,
        },
        PriceFile::Fixed(x) => PriceFile::Fixed(x * f),
    }
}

/// Scenario text with `tuning` as its tuning block: the block the text has replaced, or one
/// added as the last field. `None` when the text is not one `Scenario(...)` value.
pub fn with_tuning(text: &str, tuning: &TuningFile) -> Option<String> {
    let block = tuning.to_ron().replace('\n', "\n    ");
    with_field(text, "tuning", &block)
}

/// Scenario text with its top-level field `field` set to the RON `value`: the value the text
/// has replaced, or the field added as the last one. `None` when the text is not one
/// `Scenario(...)` value.
pub fn with_field(text: &str, field: &str, value: &str) -> Option<String> {
    with_value(text, &[Step::Field(field)], value)
}

/// RON `text` with the value at `path` set to the RON `value`: the value the text has
/// replaced, or, when only the last step (a field) is missing, the field added as the last
/// one of the struct the rest of the path finds. `None` when neither is there.
pub fn with_value(text: &str, path: &[Step<'_>], value: &str) -> Option<String> {
    if let Some((start, end)) = find_span(text, path) {
        let mut s = String::with_capacity(text.len() + value.len());
        s.push_str(&text[..start]);
        s.push_str(value);
        s.push_str(&text[end..]);
        return Some(s);
    }
    let (Step::Field(field), parent) = path.split_last()? else {
        return None;
    };
    let (start, end) = find_span(text, parent)?;
    // Each token of the struct with the offset just past it: the last is the closing
    // parenthesis, the one before it ends the last field (a comma goes straight after it,
    // ahead of any comment).
    let mut tokens = Tokens::new(&text[..end]);
    let mut toks = Vec::new();
    while let Some(t) = tokens.next() {
        if t.offset() >= start {
            toks.push((t, tokens.position()));
        }
    }
    let &(close, _) = toks.last()?;
    if !matches!(close, Tok::Punct(_, b')')) {
        return None;
    }
    let (last, last_end) = *toks.get(toks.len().checked_sub(2)?)?;
    let comma = if matches!(last, Tok::Punct(_, b',' | b'(')) {
        ""
    } else {
        ","
    };
    let at = close.offset();
    let indent = "    ".repeat(path.len());
    Some(format!(
        "{}{comma}{}\n{indent}{field}: {value},\n{}",
        &text[..last_end],
        text[last_end..at].trim_end(),
        &text[at..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_added_as_the_last_field_or_replaces_the_one_there() {
        let t = TuningFile {
            visits: 1.25,
            ..TuningFile::default()
        };
        let added = with_tuning("Scenario(\n    name: \"a\" // no comma\n) // end\n", &t).unwrap();
        assert!(
            added.contains("\"a\", // no comma\n    tuning: Tuning("),
            "{added}"
        );
        assert!(added.ends_with(") // end\n"), "{added}");
        let again = with_tuning(&added, &TuningFile::default()).unwrap();
        assert!(!again.contains("1.25"), "{again}");
        assert_eq!(again.matches("tuning:").count(), 1, "{again}");
        assert!(with_tuning("[1, 2]", &t).is_none());
        let after_comma = with_tuning("Scenario(days: 3, /* c */)", &t).unwrap();
        assert!(
            after_comma.starts_with("Scenario(days: 3, /* c */\n    tuning: Tuning("),
            "{after_comma}"
        );
        assert!(
            with_tuning("Scenario()", &t)
                .unwrap()
                .starts_with("Scenario(\n    tuning:")
        );
    }
}
