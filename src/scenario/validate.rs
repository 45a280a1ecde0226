//! Turns the raw [`ScenarioFile`] into a checked [`Scenario`], reporting every problem at
//! once, each with its file:line:col, field and a hint.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use ron::extensions::Extensions;

use super::diag::{
    Diagnostic, Location, ScenarioError, Step, did_you_mean, find_span, find_value, path_string,
};
use super::load::SourceMap;
use super::schema::*;
use super::{
    Category, ChurnMode, ChurnModelConfig, Format, OutputSpec, Scenario, SpendModelConfig, Target,
};
use crate::analytics::published::{Figure, Measure, Uplift};
use crate::calendar::{Calendar, CategoryEffect, Effect, Event, EventKind, Payday, Season};
use crate::limits::{
    MAX_BASKET_PAISE, MAX_CUSTOMERS, MAX_DAYS, MAX_FACTOR, MAX_INCOME, MAX_PRICE_FACTOR,
    MAX_PROBLEMS, MAX_QUANTITY, MAX_UNIT_PRICE, YEARS, last_day,
};
use crate::money::Currency;
use crate::persona::{
    BasketItem, BudgetParams, ChurnParams, HourModel, LoyaltyParams, Persona, PriceDist, VisitModel,
};
use crate::plugin::{Enabled, PathStep, Problems, Registry};

/// Whether `name` can name a scenario: its output folder is `out/<name>`, so letters,
/// digits, `-`, `_` and `.` only, and not empty.
pub fn is_folder_name(name: &str) -> bool {
    // `.` and `..` name folders that are not the scenario's own.
    !name.trim().is_empty()
        && !name.chars().all(|c| c == '.')
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || "-_.".contains(c))
}

/// Personas are stored in one byte per customer.
const MAX_PERSONAS: usize = 255;
/// Categories are stored in two bytes per line item.
const MAX_CATEGORIES: usize = u16::MAX as usize;

/// Parses the expanded text of `map` and validates it.
pub fn parse_and_validate(
    map: &SourceMap,
    root: &Path,
    registry: &Registry,
) -> Result<Scenario, ScenarioError> {
    let options = ron_options();
    let mut raw: ScenarioFile = options
        .from_str(&map.text)
        .map_err(|e| ScenarioError::resolve(map, vec![parse_diagnostic(map, &e)], root))?;
    let mut checker = Checker::new(map, Currency::india());
    // Tuning multiplies the raw figures, which are then checked as written ones are; a
    // tuning with problems is reported and left out, so the rest is still checked.
    let mut tuned = false;
    if let Some(tuning) = raw.tuning.take() {
        let problems = tuning.problems(&raw);
        if problems.is_empty() {
            tuning.apply(&mut raw);
            tuned = true;
        }
        for (path, message, hint) in problems {
            checker.err(&path, message, hint);
        }
    }
    let (mut scenario, entries) = checker.scenario(raw, root, registry);
    checker.check_systems(&scenario, &entries);
    if tuned && !checker.problems.is_empty() {
        checker.err(
            &[Step::Field("tuning")],
            "the figures reported here were checked after this block's factors multiplied them",
            "a figure out of range may be the tuned one: lower the factor that moved it",
        );
    }
    if checker.problems.is_empty() {
        let offset = find_value(&map.text, &[Step::Field("population")]);
        let at = map.locate(offset);
        scenario.population_at = format!("{}:{}:{}", map.path(at.file).display(), at.line, at.col);
        Ok(scenario)
    } else {
        if checker.suppressed > 0 {
            checker.problems.push(Diagnostic::new(
                format!("... and {} more problems", checker.suppressed),
                None,
            ));
        }
        Err(ScenarioError::resolve(map, checker.problems, root))
    }
}

/// The RON dialect of scenario files (and of the settings of their `systems`).
fn ron_options() -> ron::Options {
    ron::Options::default()
        .with_default_extension(Extensions::IMPLICIT_SOME | Extensions::UNWRAP_VARIANT_NEWTYPES)
}

/// Turns a RON parse error of the whole expanded text into a diagnostic with a hint.
fn parse_diagnostic(map: &SourceMap, e: &ron::error::SpannedError) -> Diagnostic {
    let offset = map.offset_of(e.span.start.line, e.span.start.col);
    diagnostic_at(map, e, offset)
}

/// The byte offset in `text` of a RON (line, column) position.
fn offset_in(text: &str, line: usize, col: usize) -> usize {
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            return offset
                + l.chars()
                    .take(col.saturating_sub(1))
                    .map(char::len_utf8)
                    .sum::<usize>();
        }
        offset += l.len();
    }
    text.len()
}

/// Turns a RON parse error found at byte `offset` of the expanded text into a diagnostic.
fn diagnostic_at(map: &SourceMap, e: &ron::error::SpannedError, offset: usize) -> Diagnostic {
    use ron::Error as E;
    // RON places a bad value's error where the parser stood, before the blanks that lead
    // to the value; point at the value itself.
    let rest = map.text.get(offset..).unwrap_or_default();
    let offset = offset + rest.len() - rest.trim_start().len();
    let at = Some(map.locate(offset));
    let in_outer = |outer: &Option<String>| {
        outer
            .as_ref()
            .map_or(String::new(), |o| format!(" in `{o}`"))
    };
    match &e.code {
        E::NoSuchStructField {
            expected,
            found,
            outer,
        } => {
            let hint = match did_you_mean(found, expected.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("expected one of: {}", expected.join(", ")),
            };
            Diagnostic::new(format!("unknown field `{found}`{}", in_outer(outer)), at)
                .with_hint(hint)
        }
        E::NoSuchEnumVariant {
            expected,
            found,
            outer,
        } => {
            let hint = match did_you_mean(found, expected.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("expected one of: {}", expected.join(", ")),
            };
            Diagnostic::new(format!("unknown variant `{found}`{}", in_outer(outer)), at)
                .with_hint(hint)
        }
        E::MissingStructField { field, outer } => Diagnostic::new(
            format!("missing field `{field}`{}", in_outer(outer)),
            at,
        )
        .with_hint(format!(
            "add `{field}: ...` (see docs/scenarios.md for what it takes)"
        )),
        E::DuplicateStructField { field, outer } => Diagnostic::new(
            format!("field `{field}` given twice{}", in_outer(outer)),
            at,
        )
        .with_hint("remove one of them"),
        E::InvalidValueForType { expected, found } => {
            Diagnostic::new(format!("wrong type: expected {expected}, found {found}"), at)
                .with_hint("check the value against docs/scenarios.md")
        }
        E::ExpectedDifferentStructName { expected, found } => Diagnostic::new(
            format!("expected `{expected}(...)`, found `{found}(...)`"),
            at,
        )
        .with_hint(format!(
            "write `{expected}(...)` or leave the name out: `(...)`"
        )),
        E::Eof => Diagnostic::new("the file ends too early", at)
            .with_hint("a bracket or parenthesis is probably not closed"),
        E::ExpectedComma
        | E::ExpectedArrayEnd
        | E::ExpectedStructLikeEnd
        | E::ExpectedMapEnd
        | E::ExpectedOptionEnd => {
            syntax_diagnostic(map, offset, at)
        }
        E::ExpectedIdentifier => Diagnostic::new(
            format!("expected a field name here, found {}", found_at(map, offset)),
            at,
        )
        .with_hint("two commas in a row, or a value without its `name:`?"),
        other => Diagnostic::new(other.to_string(), at)
            .with_hint("check the syntax near here: RON values look like `(field: value, ...)`, lists like `[a, b]`"),
    }
}

/// What the text at `offset` starts with, for a message: `` `word` `` or "the end".
fn found_at(map: &SourceMap, offset: usize) -> String {
    let rest = map.text.get(offset..).unwrap_or("").trim_start();
    match rest.chars().next() {
        None => "the end of the file".to_owned(),
        Some(c) if c.is_alphanumeric() || c == '_' => {
            let word: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .take(40)
                .collect();
            format!("`{word}`")
        }
        Some(c) => format!("`{c}`"),
    }
}

/// A syntax error where a `,` or a closing bracket was expected, told apart by what is
/// there: a bracket closing the wrong opening, a field or a value with no comma before it.
fn syntax_diagnostic(map: &SourceMap, offset: usize, at: Option<Location>) -> Diagnostic {
    use super::load::{Tok, Tokens};
    // The brackets open at the error, innermost last.
    let mut open: Vec<(u8, usize)> = Vec::new();
    let mut next = None;
    for tok in Tokens::new(&map.text) {
        if tok.offset() >= offset {
            next = Some(tok);
            break;
        }
        match tok {
            Tok::Punct(o, c @ (b'(' | b'[' | b'{')) => open.push((c, o)),
            Tok::Punct(_, b')' | b']' | b'}') => {
                open.pop();
            }
            _ => {}
        }
    }
    let closer = |c: u8| match c {
        b'(' => ')',
        b'[' => ']',
        _ => '}',
    };
    let opened = |o: usize| {
        let l = map.locate(o);
        format!("{}:{}:{}", map.path(l.file).display(), l.line, l.col)
    };
    match (next, open.last()) {
        (Some(Tok::Punct(_, c @ (b')' | b']' | b'}'))), Some(&(o, at_o))) => Diagnostic::new(
            format!(
                "`{}` does not close the `{}` opened at {}",
                c as char,
                o as char,
                opened(at_o)
            ),
            at,
        )
        .with_hint(format!(
            "close the `{}` with `{}` first, or remove the extra `{}`",
            o as char,
            closer(o),
            c as char
        )),
        (Some(Tok::Ident(o, name)), _)
            if map.text[o + name.len()..].trim_start().starts_with(':') =>
        {
            Diagnostic::new(format!("missing `,` before field `{name}`"), at)
                .with_hint("put a comma after the previous field's value")
        }
        (Some(_), Some(&(o, _))) => Diagnostic::new(
            format!(
                "expected `,` or `{}` here, found {}",
                closer(o),
                found_at(map, offset)
            ),
            at,
        )
        .with_hint("separate values with commas: `[a, b]`, `(x: 1, y: 2)`"),
        _ => Diagnostic::new(format!("unexpected {} here", found_at(map, offset)), at)
            .with_hint("the scenario is one value, `Scenario(...)`: is there text after its `)`?"),
    }
}

/// Reads a RON file that is not a scenario (a market file of `bazaar calibrate --targets`)
/// in the scenario dialect: a parse error is reported at its file, line and column.
pub fn parse_other<T: serde::de::DeserializeOwned>(
    map: &SourceMap,
    root: &Path,
) -> Result<T, ScenarioError> {
    ron_options()
        .from_str(&map.text)
        .map_err(|e| ScenarioError::resolve(map, vec![parse_diagnostic(map, &e)], root))
}

/// Checks the parts of another file that refer to a checked scenario (its events and
/// categories), reporting each problem at its place in that file as scenario problems are.
pub struct OtherFile<'m> {
    checker: Checker<'m>,
    root: PathBuf,
}

impl<'m> OtherFile<'m> {
    /// A checker of `map` (read from `root`) against `scenario`.
    pub fn new(map: &'m SourceMap, root: &Path, scenario: &Scenario) -> Self {
        let mut checker = Checker::new(map, scenario.money.clone());
        for (i, c) in scenario.catalog.iter().enumerate() {
            if let Ok(k) = u16::try_from(i) {
                checker.categories.entry(c.name.clone()).or_insert(k);
                if let Some(g) = &c.group {
                    checker.groups.entry(g.clone()).or_default().push(k);
                }
            }
        }
        Self {
            checker,
            root: root.to_path_buf(),
        }
    }

    /// A problem at `path` of the file.
    pub fn err(&mut self, path: &[Step<'_>], message: impl Into<String>, hint: impl Into<String>) {
        self.checker.err(path, message, hint);
    }

    /// A published figure at `path`, checked against the scenario.
    pub fn figure(&mut self, path: &[Step<'_>], f: &FigureFile, scenario: &Scenario) -> Figure {
        self.checker
            .figure(path, f, &scenario.calendar, &scenario.catalog)
    }

    /// The catalog categories a category or group name at `path` covers (none, and a
    /// problem, when it names neither).
    pub fn members(&mut self, path: &[Step<'_>], name: &str, scenario: &Scenario) -> Vec<u16> {
        self.checker.members(path, name, &scenario.catalog)
    }

    /// Every problem found, or none.
    pub fn finish(self) -> Result<(), ScenarioError> {
        if self.checker.problems.is_empty() {
            Ok(())
        } else {
            Err(ScenarioError::resolve(
                self.checker.map,
                self.checker.problems,
                &self.root,
            ))
        }
    }
}

/// Collects problems while building the scenario.
struct Checker<'m> {
    map: &'m SourceMap,
    problems: Vec<Diagnostic>,
    /// Problems past [`MAX_PROBLEMS`], counted but not located.
    suppressed: usize,
    /// Catalog category name -> index, so every lookup is constant time.
    categories: HashMap<String, u16>,
    /// Catalog group name -> its categories.
    groups: HashMap<String, Vec<u16>>,
    /// The scenario's currency (read before the personas, whose amounts are in it).
    money: Currency,
}

impl<'m> Checker<'m> {
    /// A checker of `map` with no problems yet and no catalog.
    fn new(map: &'m SourceMap, money: Currency) -> Self {
        Self {
            map,
            problems: Vec::new(),
            suppressed: 0,
            categories: HashMap::new(),
            groups: HashMap::new(),
            money,
        }
    }
}

impl Checker<'_> {
    fn err(&mut self, path: &[Step<'_>], message: impl Into<String>, hint: impl Into<String>) {
        if self.problems.len() >= MAX_PROBLEMS {
            self.suppressed += 1;
            return;
        }
        let offset = find_value(&self.map.text, path);
        let mut d = Diagnostic::new(message, Some(self.map.locate(offset)));
        d.field = Some(path_string(path));
        let hint = hint.into();
        if !hint.is_empty() {
            d.hint = Some(hint);
        }
        self.problems.push(d);
    }

    /// A "did you mean" hint, or `otherwise()`'s. Once the problem list is full no hint is
    /// shown, so an input with many unknown names costs no more than its length.
    fn suggest<'a>(
        &self,
        word: &str,
        candidates: impl IntoIterator<Item = &'a str>,
        otherwise: impl FnOnce() -> String,
    ) -> String {
        if self.problems.len() >= MAX_PROBLEMS {
            return String::new();
        }
        match did_you_mean(word, candidates) {
            Some(m) => format!("did you mean `{m}`?"),
            None => otherwise(),
        }
    }

    fn date(&mut self, path: &[Step<'_>], s: &str) -> Option<NaiveDate> {
        use chrono::Datelike;
        match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            Ok(d) if YEARS.contains(&d.year()) => Some(d),
            Ok(d) => {
                self.err(
                    path,
                    format!(
                        "{d} is outside the years {}..={}",
                        YEARS.start(),
                        YEARS.end()
                    ),
                    "dates are written \"YYYY-MM-DD\" with a four-digit year",
                );
                None
            }
            Err(e) => {
                self.err(
                    path,
                    format!("`{s}` is not a valid date ({e})"),
                    "dates are written \"YYYY-MM-DD\", e.g. \"2026-11-08\"",
                );
                None
            }
        }
    }

    fn probability(&mut self, path: &[Step<'_>], p: f64) -> f32 {
        if !(0.0..=1.0).contains(&p) {
            self.err(
                path,
                format!("probability {p} is outside 0..=1"),
                "probabilities are written as fractions: 0.25 for 25%",
            );
        }
        p as f32
    }

    fn factor(&mut self, path: &[Step<'_>], f: f64) -> f32 {
        if !f.is_finite() || !(0.0..=MAX_FACTOR).contains(&f) {
            self.err(
                path,
                format!("factor {f} must be a number from 0 to {MAX_FACTOR}"),
                "1.0 means no effect, 1.3 is +30%, 0.9 is -10%",
            );
        }
        f as f32
    }

    /// A `(low, high)` range of positive numbers up to `max`.
    fn range_f(&mut self, path: &[Step<'_>], (lo, hi): (f64, f64), what: &str, max: f64) {
        if !(lo.is_finite() && hi.is_finite()) || lo <= 0.0 || lo > hi || hi > max {
            self.err(
                path,
                format!(
                    "{what} range ({lo}, {hi}) must be positive, at most {max}, with low <= high"
                ),
                if max == MAX_UNIT_PRICE {
                    "prices are per unit in the scenario's currency (`money:`, rupees by default), at most 10,000,000, e.g. Uniform(800, 2000)"
                } else {
                    "write (low, high), e.g. (1.05, 1.15)"
                },
            );
        }
    }

    /// A name written to the outputs: not empty, no control characters.
    fn name(&mut self, path: &[Step<'_>], name: &str, what: &str) {
        const LONGEST: usize = 256;
        if name.trim().is_empty() || name.chars().any(char::is_control) {
            self.err(
                path,
                format!("{what} name {name:?} is empty or holds control characters"),
                "names appear in every output table: use e.g. \"premium\"",
            );
        } else if name.chars().count() > LONGEST {
            self.err(
                path,
                format!("{what} name is {} characters long", name.chars().count()),
                format!("names appear in every output table: at most {LONGEST} characters"),
            );
        }
    }

    /// A count of days: at most the longest run.
    fn days(&mut self, path: &[Step<'_>], days: u32, what: &str) {
        if days > MAX_DAYS {
            self.err(
                path,
                format!("{what} of {days} days is longer than the longest run, {MAX_DAYS} days"),
                "",
            );
        }
    }

    /// The scenario, and the entry index in `systems: [...]` of each system it enables.
    fn scenario(
        &mut self,
        raw: ScenarioFile,
        root: &Path,
        registry: &Registry,
    ) -> (Scenario, Vec<usize>) {
        use Step::Field as F;
        if !is_folder_name(&raw.name) {
            self.err(
                &[F("name")],
                format!("name `{}` cannot be used as a folder name", raw.name),
                "use letters, digits, '-', '_' and '.', e.g. \"diwali-2026\"",
            );
        }
        if let Some(m) = &raw.money {
            self.money = self.money(m);
        }
        let start = self.date(&[F("start")], &raw.start);
        let days = match (raw.days, &raw.end, start) {
            (Some(_), Some(_), _) => {
                self.err(
                    &[F("end")],
                    "both `days` and `end` are given",
                    "give one of them",
                );
                0
            }
            (None, None, _) => {
                self.err(
                    &[],
                    "the scenario needs `days` or `end`",
                    "add e.g. `days: 30,`",
                );
                0
            }
            (Some(d), None, _) => {
                if d == 0 || d > MAX_DAYS {
                    self.err(
                        &[F("days")],
                        format!("days must be between 1 and {MAX_DAYS}, got {d}"),
                        "",
                    );
                } else if let Some(start) = start
                    && last_day(start, d).is_none()
                {
                    self.err(
                        &[F("days")],
                        format!("a run of {d} days from {start} ends after the year 9999"),
                        "",
                    );
                }
                d
            }
            (None, Some(end), Some(start)) => match self.date(&[F("end")], end) {
                Some(end) if end < start => {
                    self.err(
                        &[F("end")],
                        format!("end {end} is before start {start}"),
                        "`end` is the last simulated day, inclusive",
                    );
                    0
                }
                Some(end) if (end - start).num_days() >= i64::from(MAX_DAYS) => {
                    self.err(
                        &[F("end")],
                        format!("the run from {start} to {end} is longer than {MAX_DAYS} days"),
                        "",
                    );
                    0
                }
                Some(end) => ((end - start).num_days() + 1) as u32,
                None => 0,
            },
            (None, Some(_), None) => 0,
        };

        let catalog = self.catalog(&raw.catalog);
        let names: Vec<&str> = raw.personas.iter().map(|p| p.name.as_str()).collect();
        self.named_list(
            "personas",
            &names,
            MAX_PERSONAS,
            "add at least one Persona(...)",
        );
        // Past the limit (already reported) personas are not built: each holds tables
        // whose size would then grow with the count.
        let mut personas: Vec<Persona> = raw
            .personas
            .iter()
            .take(MAX_PERSONAS)
            .enumerate()
            .map(|(i, p)| self.persona(i, p, &catalog))
            .collect();
        if raw.warm_start {
            for p in &mut personas {
                p.warm_ages = p.warm_age_cdf();
            }
        }
        let (population, new_per_day) = self.population(&raw.population, &personas, days);

        let mut calendar = self.calendar(&raw.calendar, &catalog);
        for (i, e) in raw.events.iter().enumerate() {
            if let Some(ev) = self.event(&[F("events"), Step::Index(i)], e, &catalog) {
                calendar.events.push(ev);
            }
        }

        let published = self.published(&raw.published, &calendar, &catalog);
        let (entries, systems) = self.systems(raw.systems.len(), registry);

        let churn_model = raw.churn_model.as_ref().map(|c| self.churn_model(c, root));
        if raw.output.formats.is_empty() {
            self.err(
                &[F("output"), F("formats")],
                "no output format".to_owned(),
                "list at least one: `formats: [Csv]`, `[Parquet]` or `[Csv, Parquet]`".to_owned(),
            );
        }

        let dir = raw
            .output
            .dir
            .clone()
            .map_or_else(|| PathBuf::from("out").join(&raw.name), PathBuf::from);
        // Each format once, in the order given.
        let mut formats: Vec<Format> = Vec::new();
        for f in &raw.output.formats {
            let f = match f {
                FormatFile::Csv => Format::Csv,
                FormatFile::Parquet => Format::Parquet,
            };
            if !formats.contains(&f) {
                formats.push(f);
            }
        }

        let scenario = Scenario {
            name: raw.name,
            description: raw.description,
            seed: raw.seed,
            start: start.unwrap_or_default(),
            days,
            catalog,
            personas,
            population,
            new_per_day,
            calendar,
            systems,
            churn_model,
            output: OutputSpec {
                dir,
                formats,
                line_items: raw.output.line_items,
            },
            source: root.to_path_buf(),
            population_at: String::new(),
            money: self.money.clone(),
            published,
        };
        (scenario, entries)
    }

    /// The published figures, their events and categories checked against the scenario.
    fn published(
        &mut self,
        raw: &[FigureFile],
        calendar: &Calendar,
        catalog: &[Category],
    ) -> Vec<Figure> {
        use Step::{Field as F, Index as I};
        raw.iter()
            .enumerate()
            .map(|(i, f)| self.figure(&[F("published"), I(i)], f, calendar, catalog))
            .collect()
    }

    /// One published figure at `path`, its events and categories checked.
    fn figure(
        &mut self,
        path: &[Step<'_>],
        f: &FigureFile,
        calendar: &Calendar,
        catalog: &[Category],
    ) -> Figure {
        use Step::{Field as F, Index as I};
        let at = |rest: &[Step<'static>]| {
            let mut p = path.to_vec();
            p.extend_from_slice(rest);
            p
        };
        if f.days.is_empty() {
            self.err(
                &at(&[F("days")]),
                "a figure needs the events whose days it covers",
                "e.g. days: [\"Diwali\", \"Dhanteras\"]",
            );
        }
        for (k, name) in f.days.iter().enumerate() {
            if !calendar.events.iter().any(|e| &e.name == name) {
                let hint = self.suggest(
                    name,
                    calendar.events.iter().map(|e| e.name.as_str()),
                    || "name an event of the calendar or of `events`".to_owned(),
                );
                self.err(
                    &at(&[F("days"), I(k)]),
                    format!("no calendar event is named `{name}`"),
                    hint,
                );
            }
        }
        let measure = match &f.measure {
            MeasureFile::Transactions => Measure::Transactions,
            MeasureFile::Revenue => Measure::Revenue,
            MeasureFile::Categories(names) => {
                let mut ids = Vec::new();
                for (k, name) in names.iter().enumerate() {
                    let path = at(&[F("measure"), I(k)]);
                    for m in self.members(&path, name, catalog) {
                        if !ids.contains(&m) {
                            ids.push(m);
                        }
                    }
                }
                Measure::Categories(names.clone(), ids)
            }
        };
        let uplift_ok = match f.uplift {
            Uplift::Exactly(u) | Uplift::AtLeast(u) => u.is_finite() && u > -1.0,
            Uplift::Between(a, b) => a.is_finite() && b.is_finite() && a.min(b) > -1.0,
        };
        if !uplift_ok {
            self.err(
                &at(&[F("uplift")]),
                format!("uplift {:?} is not a change above -100%", f.uplift),
                "uplifts are shares: +32% is Exactly(0.32), a 4-5% dip Between(-0.05, -0.04)",
            );
        }
        if !(0.0..=1.0).contains(&f.tolerance) {
            self.err(
                &at(&[F("tolerance")]),
                format!("tolerance {} is not a share 0..=1", f.tolerance),
                "0.1 counts a figure met within 10% of it",
            );
        }
        Figure {
            name: f.name.clone(),
            source: f.source.clone(),
            events: f.days.clone(),
            measure,
            uplift: f.uplift,
            tolerance: f.tolerance,
        }
    }

    /// The scenario's currency: an ISO 4217 code, with the symbol, minor units and grouping
    /// it implies unless the file gives them.
    fn money(&mut self, m: &MoneyFile) -> Currency {
        use Step::Field as F;
        let Some(mut c) = Currency::from_code(m.currency.trim()) else {
            self.err(
                &[F("money"), F("currency")],
                format!("`{}` is not an ISO 4217 currency code", m.currency),
                "use a three-letter code such as \"INR\", \"USD\", \"EUR\" or \"JPY\"",
            );
            return Currency::india();
        };
        if let Some(symbol) = &m.symbol {
            if symbol.trim().is_empty() || symbol.chars().count() > 8 {
                self.err(
                    &[F("money"), F("symbol")],
                    format!("symbol {symbol:?} must be 1 to 8 characters"),
                    "e.g. symbol: \"$\" or symbol: \"Rs\"",
                );
            } else {
                c.symbol = symbol.trim().to_string();
            }
        }
        if let Some(units) = m.minor_units {
            if units > crate::money::MAX_MINOR_UNITS {
                self.err(
                    &[F("money"), F("minor_units")],
                    format!(
                        "minor_units {units} is more than {}",
                        crate::money::MAX_MINOR_UNITS
                    ),
                    "decimal places of the currency's smallest unit: 2 for cents, 0 for yen",
                );
            } else {
                c.minor_units = units;
            }
        }
        if let Some(g) = m.grouping {
            c.grouping = g;
        }
        c
    }

    /// Reads each entry of `systems: [...]`: a registered name (`DailyLog`, or the
    /// snake_case `"daily_log"`), optionally followed by its settings `(field: value, ...)`,
    /// parsed with the behaviour's own types. Returns each enabled system's entry index and
    /// the systems, in the order listed.
    fn systems(&mut self, count: usize, registry: &Registry) -> (Vec<usize>, Vec<Enabled>) {
        use super::load::{Tok, Tokens};
        let mut entries = Vec::new();
        let mut enabled: Vec<Enabled> = Vec::new();
        let example = "e.g. `systems: [DailyLog]` or `systems: [DailyLog(every_days: 7)]`";
        for i in 0..count {
            let path = [Step::Field("systems"), Step::Index(i)];
            let Some((start, end)) = find_span(&self.map.text, &path) else {
                self.err(&path, "this system entry cannot be read", example);
                continue;
            };
            let text = &self.map.text[start..end];
            let (name, settings_at) = match Tokens::new(text).next() {
                Some(Tok::Ident(o, name)) => (name.to_owned(), o + name.len()),
                Some(Tok::Literal(o)) if text[o..].starts_with('"') => {
                    match ron::from_str::<String>(text) {
                        Ok(name) => (name, text.len()),
                        Err(_) => {
                            self.err(
                                &path,
                                "a system's name cannot have settings after it in quotes",
                                example,
                            );
                            continue;
                        }
                    }
                }
                _ => {
                    self.err(&path, "expected the name of a system", example);
                    continue;
                }
            };
            let Some(registration) = registry.get(&name) else {
                let names = registry.names();
                let candidates = registry.iter().flat_map(|r| [r.name, r.alias.as_str()]);
                let hint = match did_you_mean(&name, candidates) {
                    Some(m) => {
                        let m = registry.get(m).map_or(m, |r| r.name);
                        format!("did you mean `{m}`?")
                    }
                    None if names.is_empty() => "no systems are registered".to_owned(),
                    None => format!(
                        "known systems: {} (`bazaar systems` lists them with their settings)",
                        names.join(", ")
                    ),
                };
                self.err(&path, format!("unknown system `{name}`"), hint);
                continue;
            };
            if enabled.iter().any(|e| e.name == registration.name) {
                self.err(
                    &path,
                    format!("`{}` is enabled twice", registration.name),
                    "list each system once, with all its settings",
                );
                continue;
            }
            let settings = &text[settings_at..];
            match registration.parse(settings, &ron_options()) {
                Ok(plugin) => {
                    entries.push(i);
                    enabled.push(Enabled {
                        name: registration.name,
                        plugin,
                    });
                }
                Err(e) => {
                    if self.problems.len() >= MAX_PROBLEMS {
                        self.suppressed += 1;
                        continue;
                    }
                    let offset = start
                        + settings_at
                        + offset_in(settings, e.span.start.line, e.span.start.col);
                    let mut d = diagnostic_at(self.map, &e, offset);
                    d.field = Some(path_string(&path));
                    if d.hint
                        .as_deref()
                        .is_some_and(|h| h.contains("docs/scenarios.md"))
                    {
                        d.hint = Some(format!(
                            "`bazaar systems` lists the settings of `{}` with their types",
                            registration.name
                        ));
                    }
                    self.problems.push(d);
                }
            }
        }
        (entries, enabled)
    }

    /// Has each enabled system check its settings against the scenario; each problem is
    /// reported at its field inside the system's entry.
    fn check_systems(&mut self, scenario: &Scenario, entries: &[usize]) {
        for (system, &i) in scenario.systems.iter().zip(entries) {
            let mut problems = Problems::default();
            system.plugin.check(scenario, &mut problems);
            for p in problems.into_vec() {
                let mut path = vec![Step::Field("systems"), Step::Index(i)];
                path.extend(p.path.iter().map(|s| match s {
                    PathStep::Field(f) => Step::Field(f),
                    PathStep::Index(i) => Step::Index(*i),
                    PathStep::Key(k) => Step::Key(k),
                }));
                self.err(&path, p.message, p.hint);
            }
        }
    }

    /// Checks a list of named items: not empty, not too long, names unique.
    fn named_list(&mut self, field: &'static str, names: &[&str], max: usize, add_hint: &str) {
        use Step::{Field as F, Index as I};
        if names.is_empty() {
            self.err(&[F(field)], format!("`{field}` is empty"), add_hint);
        }
        if names.len() > max {
            self.err(
                &[F(field)],
                format!(
                    "`{field}` has {} entries; at most {max} are supported",
                    names.len()
                ),
                "",
            );
        }
        let mut seen = std::collections::HashSet::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            if !seen.insert(*name) {
                self.err(
                    &[F(field), I(i), F("name")],
                    format!("`{name}` is listed twice in `{field}`"),
                    "names must be unique",
                );
            }
        }
    }

    fn churn_model(&mut self, c: &ChurnModelFile, root: &Path) -> ChurnModelConfig {
        use Step::Field as F;
        let at = |f: &'static str| [F("churn_model"), F(f)];
        let spec = self.model_card(&at("spec"), &c.spec, root, "churn");
        self.days(&at("every_days"), c.every_days, "a scoring interval");
        if c.every_days == 0 {
            self.err(
                &at("every_days"),
                "every_days must be at least 1",
                "1 scores daily",
            );
        }
        let mode = match &c.mode {
            ChurnModeFile::Drive => ChurnMode::Drive,
            ChurnModeFile::Retain(r) => {
                let rp = |f: &'static str| [F("churn_model"), F("mode"), F(f)];
                if r.top_k.is_none() && r.threshold.is_none() {
                    self.err(
                        &[F("churn_model"), F("mode")],
                        "a retention campaign needs `top_k`, `threshold` or both",
                        "e.g. Retain(top_k: 500, cost: 150, loyalty_boost: 0.3)",
                    );
                }
                let threshold = r.threshold.map(|t| self.probability(&rp("threshold"), t));
                if !(r.cost.is_finite() && (0.0..=MAX_UNIT_PRICE).contains(&r.cost)) {
                    self.err(
                        &rp("cost"),
                        format!("cost {} must be from 0 to {MAX_UNIT_PRICE}", r.cost),
                        "the offer's cost in the scenario's currency (major units)",
                    );
                }
                self.days(&rp("cooldown_days"), r.cooldown_days, "a cooldown");
                let target = match r.target {
                    TargetFile::Risk => Target::Risk,
                    TargetFile::ValueLost => {
                        if c.spend.is_none() {
                            self.err(
                                &rp("target"),
                                "offers that target value lost need a spend model",
                                "add spend: (spec: \"../models/spend.json\", every_days: 7) to churn_model, or target: Risk",
                            );
                        }
                        Target::ValueLost
                    }
                };
                ChurnMode::Retain {
                    target,
                    top_k: r.top_k,
                    threshold,
                    cost_paise: self.money.to_minor(r.cost.max(0.0)),
                    loyalty_boost: self.probability(&rp("loyalty_boost"), r.loyalty_boost),
                    cooldown_days: r.cooldown_days.min(MAX_DAYS),
                }
            }
        };
        let spend = c.spend.as_ref().map(|m| {
            let at = |f: &'static str| [F("churn_model"), F("spend"), F(f)];
            let spec = self.model_card(&at("spec"), &m.spec, root, "spend");
            self.days(&at("every_days"), m.every_days, "a scoring interval");
            if m.every_days == 0 {
                self.err(
                    &at("every_days"),
                    "every_days must be at least 1",
                    "1 scores daily",
                );
            }
            SpendModelConfig {
                spec,
                every_days: m.every_days.clamp(1, MAX_DAYS),
            }
        });
        let d = &c.drift;
        for (field, v) in [
            ("psi", d.psi),
            ("ks", d.ks),
            ("js", d.js),
            ("share", d.share),
        ] {
            if !(v.is_finite() && v > 0.0) {
                self.err(
                    &[F("churn_model"), F("drift"), F(field)],
                    format!("drift threshold {field} {v} must be above 0"),
                    "Evidently's defaults are psi: 0.1, js: 0.1 and share: 0.5; Bazaar's ks: 0.1",
                );
            }
        }
        ChurnModelConfig {
            spec,
            every_days: c.every_days.clamp(1, MAX_DAYS),
            mode,
            spend,
            drift: crate::ml::drift::Thresholds {
                psi: d.psi,
                ks: d.ks,
                js: d.js,
                share: d.share,
            },
        }
    }

    /// A model's card: a path relative to the scenario file, or a registered model
    /// (`models:/churn@champion`) fetched from the registry into the cache.
    fn model_card(&mut self, at: &[Step<'_>], spec: &str, root: &Path, what: &str) -> PathBuf {
        if spec.starts_with("models:/") {
            return match crate::mlflow::registry::fetch(spec) {
                Ok(card) => card,
                Err(reason) => {
                    self.err(
                        at,
                        reason,
                        "set MLFLOW_TRACKING_URI to the tracking server holding the registry; `bazaar models show NAME` lists its champion",
                    );
                    PathBuf::from(spec)
                }
            };
        }
        let path = root.parent().unwrap_or(Path::new(".")).join(spec);
        if !path.is_file() {
            self.err(
                at,
                format!("no {what} model description at `{}`", path.display()),
                format!(
                    "the path is relative to the scenario file, e.g. \"../models/{what}.json\", or a registered model, models:/{what}@champion"
                ),
            );
        }
        path
    }

    fn catalog(&mut self, raw: &[CategoryFile]) -> Vec<Category> {
        let names: Vec<&str> = raw.iter().map(|c| c.name.as_str()).collect();
        self.named_list(
            "catalog",
            &names,
            MAX_CATEGORIES,
            "add categories, e.g. (name: \"rice\", group: \"grocery\")",
        );
        for (i, c) in raw.iter().enumerate() {
            use Step::{Field as F, Index as I};
            self.name(&[F("catalog"), I(i), F("name")], &c.name, "category");
            if let Ok(k) = u16::try_from(i) {
                self.categories.entry(c.name.clone()).or_insert(k);
                if let Some(g) = &c.group {
                    self.groups.entry(g.clone()).or_default().push(k);
                }
            }
        }
        let stated = raw.iter().filter(|c| c.margin.is_some()).count();
        for (i, c) in raw.iter().enumerate() {
            use Step::{Field as F, Index as I};
            match c.margin {
                Some(m) if !(0.0..1.0).contains(&m) => self.err(
                    &[F("catalog"), I(i), F("margin")],
                    format!("margin {m} is not a share from 0 up to (not including) 1"),
                    "a gross margin is a share of the regular price: 0.25 when a unit sold for 100 cost 75",
                ),
                None if stated > 0 => self.err(
                    &[F("catalog"), I(i)],
                    format!(
                        "category `{}` has no margin, but {stated} other categories of the catalog have one",
                        c.name
                    ),
                    "give every category a margin (e.g. margin: 0.2), or none: the cost of goods needs them all",
                ),
                _ => {}
            }
        }
        raw.iter()
            .map(|c| Category {
                name: c.name.clone(),
                group: c.group.clone(),
                margin: c.margin,
            })
            .collect()
    }

    fn category_index(
        &mut self,
        path: &[Step<'_>],
        name: &str,
        catalog: &[Category],
    ) -> Option<u16> {
        if let Some(&i) = self.categories.get(name) {
            return Some(i);
        }
        let hint = self.suggest(name, catalog.iter().map(|c| c.name.as_str()), || {
            "add it to `catalog` first".to_owned()
        });
        self.err(path, format!("unknown category `{name}`"), hint);
        None
    }

    fn persona(&mut self, i: usize, p: &PersonaFile, catalog: &[Category]) -> Persona {
        use Step::{Field as F, Index as I};
        let at = |rest: &[Step<'static>]| {
            let mut v = vec![F("personas"), I(i)];
            v.extend_from_slice(rest);
            v
        };
        if p.age.0 > p.age.1 || p.age.1 > 120 {
            self.err(
                &at(&[F("age")]),
                format!("age range {:?} is not (low, high) within 0..=120", p.age),
                "e.g. age: (25, 35)",
            );
        }
        self.name(&at(&[F("name")]), &p.name, "persona");
        if p.income.0 > p.income.1 || p.income.1 > MAX_INCOME {
            self.err(
                &at(&[F("income")]),
                format!(
                    "income range {:?} must have low <= high <= {MAX_INCOME}",
                    p.income
                ),
                "monthly income in the scenario's currency (`money:`, rupees by default), e.g. income: (40000, 80000)",
            );
        }

        let v = &p.visits;
        let first_visit = self.probability(&at(&[F("visits"), F("first_visit")]), v.first_visit);
        if v.recency.is_empty() {
            self.err(
                &at(&[F("visits"), F("recency")]),
                "the recency curve is empty",
                "e.g. recency: [(days: 0, p: 0.1), (days: 6, p: 0.7)]",
            );
        }
        let mut steps = Vec::new();
        for (k, s) in v.recency.iter().enumerate() {
            let p = self.probability(&at(&[F("visits"), F("recency"), I(k), F("p")]), s.p);
            self.days(
                &at(&[F("visits"), F("recency"), I(k), F("days")]),
                s.days,
                "a recency step",
            );
            if k > 0 && s.days <= v.recency[k - 1].days {
                self.err(
                    &at(&[F("visits"), F("recency"), I(k), F("days")]),
                    "recency steps must have strictly increasing `days`",
                    "list the steps from the shortest gap to the longest",
                );
            }
            steps.push((s.days, p));
        }
        let mut weekday = [1.0f32; 7];
        if v.weekday.len() == 7 {
            for (k, w) in v.weekday.iter().enumerate() {
                weekday[k] = self.factor(&at(&[F("visits"), F("weekday"), I(k)]), *w);
            }
        } else {
            self.err(
                &at(&[F("visits"), F("weekday")]),
                format!("weekday needs 7 factors, got {}", v.weekday.len()),
                "Monday first: [1.0, 1.0, 1.0, 1.0, 1.0, 1.2, 1.2]",
            );
        }
        let cap = self.probability(&at(&[F("visits"), F("cap")]), v.cap);

        let hours = match &p.hours {
            HoursFile::Slots(slots) => {
                if slots.is_empty() {
                    self.err(
                        &at(&[F("hours")]),
                        "no time slots",
                        "e.g. Slots([(\"18:00\", \"20:00\")])",
                    );
                }
                let mut out = Vec::new();
                for (k, (a, b)) in slots.iter().enumerate() {
                    let path = at(&[F("hours"), I(k)]);
                    match (parse_hhmm(a), parse_hhmm(b)) {
                        (Some(a), Some(b)) if a < b => out.push((a, b)),
                        (Some(_), Some(_)) => self.err(
                            &path,
                            format!("slot (\"{a}\", \"{b}\") ends before it starts"),
                            "slots cannot cross midnight: split them in two",
                        ),
                        _ => self.err(
                            &path,
                            format!("slot (\"{a}\", \"{b}\") is not two times of day"),
                            "times are \"HH:MM\" from \"00:00\" to \"24:00\"",
                        ),
                    }
                }
                if out.is_empty() {
                    out.push((0, 1440));
                }
                HourModel::Slots(out)
            }
            HoursFile::Profile(w) => {
                let total: f64 = w.iter().sum();
                if w.len() != 24
                    || w.iter().any(|x| !x.is_finite() || *x < 0.0)
                    || !(total.is_finite() && total > 0.0)
                {
                    self.err(
                        &at(&[F("hours")]),
                        "an hour profile needs 24 non-negative weights, not all zero",
                        "hour 0 (midnight) first",
                    );
                    HourModel::Slots(vec![(0, 1440)])
                } else {
                    let mut cum = [0f32; 24];
                    let mut acc = 0.0;
                    for (h, x) in w.iter().enumerate() {
                        acc += x / total;
                        cum[h] = acc as f32;
                    }
                    cum[23] = 1.0;
                    HourModel::Profile(cum)
                }
            }
        };

        let budget = p.budget.as_ref().map(|b| {
            if !(b.income_share > 0.0 && b.income_share <= 1.0) {
                self.err(
                    &at(&[F("budget"), F("income_share")]),
                    format!("income_share {} is outside (0, 1]", b.income_share),
                    "the share of monthly income spent here, e.g. 0.15",
                );
            }
            let per_major = self.money.per_major() as f64;
            let top = p.income.1 as f64 * b.income_share * per_major;
            if b.income_share > 0.0 && top > crate::components::Budget::MAX_MONTHLY as f64 {
                let symbol = self.money.prefix();
                self.err(
                    &at(&[F("budget"), F("income_share")]),
                    format!(
                        "a budget of up to {symbol}{:.0} a month (income {} x {}) is over the \
                         largest Bazaar keeps, {symbol}{}",
                        top / per_major,
                        p.income.1,
                        b.income_share,
                        crate::components::Budget::MAX_MONTHLY / self.money.per_major()
                    ),
                    "budgets are held in 32-bit minor units (paise, cents); lower the income \
                     range or the share, or leave `budget` out for customers without one",
                );
            }
            if !(1..=28).contains(&b.payday) {
                self.err(
                    &at(&[F("budget"), F("payday")]),
                    format!("payday {} is not a day 1..=28", b.payday),
                    "days after the 28th do not exist in every month",
                );
            }
            // Rank by need: the needs first (the first entry's categories rank 0, and so
            // on), then the priority list; the rest come after every listed one.
            let mut need = Vec::new();
            let needs = b.needs.len().min(usize::from(u16::MAX - 1));
            if !b.needs.is_empty() || !b.priority.is_empty() {
                need = vec![u16::MAX; catalog.len()];
                let lists = [
                    (F("needs"), &b.needs, 0),
                    (F("priority"), &b.priority, needs),
                ];
                for (field, list, first) in lists {
                    for (k, name) in list.iter().enumerate() {
                        let path = at(&[F("budget"), field, I(k)]);
                        let rank = (first + k).min(usize::from(u16::MAX - 1)) as u16;
                        for m in self.members(&path, name, catalog) {
                            let was = need[usize::from(m)];
                            if was < needs as u16 && rank >= needs as u16 {
                                self.err(
                                    &path,
                                    format!("`{name}` is both a need and a prioritised want"),
                                    "list a category in `needs` or in `priority`, not both",
                                );
                            }
                            need[usize::from(m)] = was.min(rank);
                        }
                    }
                }
            }
            BudgetParams {
                income_share: b.income_share,
                payday: b.payday,
                exhausted_visit_factor: self.probability(
                    &at(&[F("budget"), F("exhausted_visit_factor")]),
                    b.exhausted_visit_factor,
                ),
                need,
                needs: needs as u16,
            }
        });

        let loyalty = p.loyalty.as_ref().map(|l| {
            let lp = |c: &mut Self, f: &'static str, x: f64| {
                c.probability(&at(&[F("loyalty"), F(f)]), x)
            };
            if !(0.0..=1.0).contains(&l.initial.0)
                || !(0.0..=1.0).contains(&l.initial.1)
                || l.initial.0 > l.initial.1
            {
                self.err(
                    &at(&[F("loyalty"), F("initial")]),
                    format!(
                        "initial loyalty {:?} is not (low, high) within 0..=1",
                        l.initial
                    ),
                    "e.g. initial: (0.6, 0.9)",
                );
            }
            LoyaltyParams {
                initial: (l.initial.0 as f32, l.initial.1 as f32),
                visit_effect: lp(self, "visit_effect", l.visit_effect),
                gain: lp(self, "gain", l.gain),
                decay: lp(self, "decay", l.decay),
                trim_penalty: lp(self, "trim_penalty", l.trim_penalty),
                shock_threshold: self.factor(
                    &at(&[F("loyalty"), F("shock_threshold")]),
                    l.shock_threshold,
                ),
                shock_penalty: self
                    .factor(&at(&[F("loyalty"), F("shock_penalty")]), l.shock_penalty),
            }
        });

        let churn = p.churn.as_ref().map(|c| {
            let cp = |f: &'static str| at(&[F("churn"), F(f)]);
            ChurnParams {
                base: self.probability(&cp("base"), c.base),
                loyalty: self.factor(&cp("loyalty"), c.loyalty),
                unmet: self.factor(&cp("unmet"), c.unmet),
                trims: self.factor(&cp("trims"), c.trims),
                lapse: self.factor(&cp("lapse"), c.lapse),
                memory_decay: self.probability(&cp("memory_decay"), c.memory_decay),
            }
        });

        if p.basket.is_empty() {
            self.err(
                &at(&[F("basket")]),
                "the basket is empty",
                "add items, e.g. (category: \"rice\", p: 0.8, quantity: (1, 2), price: Uniform(800, 2000))",
            );
        }
        let mut basket = Vec::new();
        for (k, item) in p.basket.iter().enumerate() {
            let path = |f: &'static str| at(&[F("basket"), I(k), F(f)]);
            let category = self.category_index(&path("category"), &item.category, catalog);
            let prob = self.probability(&path("p"), item.p);
            if item.quantity.0 > item.quantity.1
                || item.quantity.0 == 0
                || item.quantity.1 > MAX_QUANTITY
            {
                self.err(
                    &path("quantity"),
                    format!(
                        "quantity range {:?} must be (low, high) with 1 <= low <= high <= {MAX_QUANTITY}",
                        item.quantity
                    ),
                    "e.g. quantity: (1, 3)",
                );
            }
            let price = match item.price {
                PriceFile::Uniform(lo, hi) => {
                    self.range_f(&path("price"), (lo, hi), "price", MAX_UNIT_PRICE);
                    PriceDist::Uniform(lo, hi)
                }
                PriceFile::Fixed(x) => {
                    self.range_f(&path("price"), (x, x), "price", MAX_UNIT_PRICE);
                    PriceDist::Fixed(x)
                }
                PriceFile::LogNormal {
                    median,
                    sigma,
                    min,
                    max,
                } => {
                    self.range_f(&path("price"), (min, max), "price clamp", MAX_UNIT_PRICE);
                    if !(median.is_finite() && median > 0.0 && (0.0..=10.0).contains(&sigma)) {
                        self.err(
                            &path("price"),
                            "log-normal needs a finite median > 0 and sigma in 0..=10",
                            "e.g. LogNormal(median: 1200, sigma: 0.6, min: 100, max: 50000)",
                        );
                    }
                    PriceDist::LogNormal {
                        mu: median.max(f64::MIN_POSITIVE).ln(),
                        sigma,
                        min,
                        max,
                    }
                }
            };
            if let Some(category) = category {
                basket.push(BasketItem {
                    category,
                    p: prob,
                    quantity: item.quantity,
                    price,
                });
            }
        }

        // The largest basket this persona can buy: every item at the top of its quantity
        // range times the largest quantity factor, at its highest price times the largest
        // combined price factor. Computed in floating point, so it cannot overflow itself.
        let per_major = self.money.per_major() as f64;
        let (worst_paise, worst_units) = basket.iter().fold((0f64, 0f64), |(paise, units), b| {
            let q = f64::from(b.quantity.1) * f64::from(crate::persona::MAX_QUANTITY_FACTOR);
            let top = match b.price {
                PriceDist::Uniform(_, hi) => hi,
                PriceDist::Fixed(x) => x,
                PriceDist::LogNormal { max, .. } => max,
            };
            (
                paise + q * top * per_major * f64::from(MAX_PRICE_FACTOR),
                units + q,
            )
        });
        if worst_paise > MAX_BASKET_PAISE as f64 || worst_units > f64::from(u32::MAX) {
            let symbol = self.money.prefix();
            self.err(
                &at(&[F("basket")]),
                format!(
                    "the largest possible basket ({symbol}{:.3e}, {worst_units} units, at the top \
                     quantities and prices with calendar factors of up to {MAX_PRICE_FACTOR}) \
                     is over Bazaar's limit of {symbol}{:.0e} and {} units",
                    worst_paise / per_major,
                    MAX_BASKET_PAISE as f64 / per_major,
                    u32::MAX
                ),
                "lower the highest prices or quantities of this persona's basket",
            );
        }

        let mut trips = Vec::with_capacity(p.trips.len());
        let total: f64 = p.trips.iter().map(|t| t.share).sum();
        for (k, t) in p.trips.iter().enumerate() {
            if !t.share.is_finite() || t.share <= 0.0 {
                self.err(
                    &at(&[F("trips"), I(k), F("share")]),
                    format!("a trip's share must be positive, not {}", t.share),
                    "shares are relative, e.g. trips: [(share: 0.6, purchase: 0.6), (share: 0.4, purchase: 1.6)]",
                );
            }
            let f = self.factor(&at(&[F("trips"), I(k), F("purchase")]), t.purchase);
            let below = trips.last().map_or(0.0, |t: &(f32, f32)| t.0);
            let cum = if k + 1 == p.trips.len() {
                1.0
            } else {
                (below + (t.share / total) as f32).min(1.0)
            };
            trips.push((cum, f));
        }
        let mut persona = Persona {
            name: p.name.clone(),
            label: p.label.clone().unwrap_or_else(|| p.name.clone()),
            age: p.age,
            income: p.income,
            visits: VisitModel {
                first_visit,
                recency: if steps.is_empty() {
                    vec![0.0]
                } else {
                    VisitModel::table_from_steps(&steps, MAX_DAYS)
                },
                weekday,
                cap,
            },
            hours,
            budget,
            loyalty,
            churn,
            basket,
            trips,
            minor_per_major: self.money.per_major() as f64,
            unit_cost: Vec::new(),
            warm_ages: Vec::new(),
            warm_states: Vec::new(),
        };
        let margins: Vec<Option<f64>> = catalog.iter().map(|c| c.margin).collect();
        persona.unit_cost = persona.unit_costs(&margins);
        persona
    }

    fn population(
        &mut self,
        raw: &[PopulationFile],
        personas: &[Persona],
        days: u32,
    ) -> (Vec<u64>, Vec<f64>) {
        use Step::{Field as F, Index as I};
        let mut counts = vec![0u64; personas.len()];
        let mut new_per_day = vec![0f64; personas.len()];
        let mut seen = vec![false; personas.len()];
        let mut index = HashMap::with_capacity(personas.len());
        for (i, p) in personas.iter().enumerate() {
            index.entry(p.name.as_str()).or_insert(i);
        }
        for (i, entry) in raw.iter().enumerate() {
            let Some(&p) = index.get(entry.persona.as_str()) else {
                let hint = self.suggest(
                    &entry.persona,
                    personas.iter().map(|p| p.name.as_str()),
                    || {
                        format!(
                            "defined personas: {}",
                            personas
                                .iter()
                                .take(20)
                                .map(|p| p.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    },
                );
                self.err(
                    &[F("population"), I(i), F("persona")],
                    format!("unknown persona `{}`", entry.persona),
                    hint,
                );
                continue;
            };
            if seen[p] {
                self.err(
                    &[F("population"), I(i), F("persona")],
                    format!(
                        "persona `{}` appears twice in the population",
                        entry.persona
                    ),
                    "give each persona one entry",
                );
            }
            seen[p] = true;
            if entry.count < 0 {
                self.err(
                    &[F("population"), I(i), F("count")],
                    format!("count {} is negative", entry.count),
                    "the number of customers of this persona, 0 or more",
                );
            } else {
                counts[p] = entry.count as u64;
            }
            if !(entry.new_per_day.is_finite()
                && (0.0..=MAX_CUSTOMERS as f64).contains(&entry.new_per_day))
            {
                self.err(
                    &[F("population"), I(i), F("new_per_day")],
                    format!(
                        "new_per_day {} must be a number from 0 to {MAX_CUSTOMERS}",
                        entry.new_per_day
                    ),
                    "expected new customers per day, e.g. 25 or 2.5",
                );
            } else {
                new_per_day[p] = entry.new_per_day;
            }
        }
        // Summed in floating point (exact far beyond the limit), so no sum can wrap.
        let start: f64 = counts.iter().map(|&n| n as f64).sum();
        let acquired: f64 = new_per_day
            .iter()
            .map(|n| (n * f64::from(days)).ceil())
            .sum();
        if start + acquired > MAX_CUSTOMERS as f64 {
            self.err(
                &[F("population")],
                format!(
                    "{start} customers at the start and up to {acquired} acquired is more than \
                     the {MAX_CUSTOMERS} one run supports"
                ),
                "lower the counts or new_per_day",
            );
        }
        (counts, new_per_day)
    }

    fn effect_file(&mut self, path: &[Step<'_>], e: &EffectFile, catalog: &[Category]) -> Effect {
        let sub = |f: &'static str| {
            let mut v = path.to_vec();
            v.push(Step::Field(f));
            v
        };
        self.range_f(&sub("price"), e.price, "price factor", MAX_FACTOR);
        let mut effect = Effect {
            traffic: self.factor(&sub("traffic"), e.traffic),
            purchase: self.factor(&sub("purchase"), e.purchase),
            quantity: self.factor(&sub("quantity"), e.quantity),
            price: (e.price.0 as f32, e.price.1 as f32),
            categories: Vec::new(),
        };
        for (k, c) in e.categories.iter().enumerate() {
            let mut cp = sub("categories");
            cp.push(Step::Index(k));
            let field = |f: &'static str| {
                let mut v = cp.clone();
                v.push(Step::Field(f));
                v
            };
            let ce = CategoryEffect {
                purchase: self.factor(&field("purchase"), c.purchase),
                quantity: self.factor(&field("quantity"), c.quantity),
                price: (c.price.0 as f32, c.price.1 as f32),
            };
            self.range_f(&field("price"), c.price, "price factor", MAX_FACTOR);
            let members = self.members(&field("category"), &c.category, catalog);
            effect
                .categories
                .extend(members.into_iter().map(|m| (m, ce)));
        }
        effect
    }

    /// The categories `name` targets: a category name that category alone, otherwise a
    /// group name every category of the group; none (and an error at `path`) otherwise.
    fn members(&mut self, path: &[Step<'_>], name: &str, catalog: &[Category]) -> Vec<u16> {
        let members: Vec<u16> = match self.categories.get(name) {
            Some(&i) => vec![i],
            None => self.groups.get(name).cloned().unwrap_or_default(),
        };
        if members.is_empty() {
            let names = catalog
                .iter()
                .map(|c| c.name.as_str())
                .chain(catalog.iter().filter_map(|c| c.group.as_deref()));
            let hint = self.suggest(name, names, || {
                "name a catalog category or group".to_owned()
            });
            self.err(
                path,
                format!("`{name}` is neither a category nor a group of the catalog"),
                hint,
            );
        }
        members
    }

    fn event(&mut self, path: &[Step<'_>], e: &EventFile, catalog: &[Category]) -> Option<Event> {
        let (kind, spec) = match e {
            EventFile::Festival(s) => (EventKind::Festival, s),
            EventFile::Dip(s) => (EventKind::Dip, s),
            EventFile::Sale(s) => (EventKind::Sale, s),
            EventFile::Closed(s) => (EventKind::Closed, s),
        };
        let sub = |f: &'static str| {
            let mut v = path.to_vec();
            v.push(Step::Field(f));
            v
        };
        let from = self.date(&sub("from"), &spec.from);
        let to = match (&spec.to, spec.days) {
            (Some(_), Some(_)) => {
                self.err(
                    &sub("days"),
                    "both `to` and `days` are given",
                    "give one of them",
                );
                None
            }
            (Some(to), None) => {
                let to = self.date(&sub("to"), to);
                if let (Some(f), Some(t)) = (from, to)
                    && t < f
                {
                    self.err(
                        &sub("to"),
                        format!("event `{}` ends ({t}) before it starts ({f})", spec.name),
                        "`to` is the last day of the event, inclusive",
                    );
                }
                to
            }
            (None, days) => {
                let days = days.unwrap_or(1);
                if days == 0 {
                    self.err(&sub("days"), "an event lasts at least 1 day", "");
                }
                self.days(&sub("days"), days, "an event");
                let to = from.and_then(|f| last_day(f, days.clamp(1, MAX_DAYS)));
                if from.is_some() && to.is_none() {
                    self.err(&sub("days"), "the event ends after the year 9999", "");
                }
                to
            }
        };
        self.days(&sub("lead_in"), spec.lead_in, "a lead-in");
        self.days(&sub("tail"), spec.tail, "a tail");
        if kind == EventKind::Closed {
            let effects = spec.traffic != 1.0
                || spec.purchase != 1.0
                || spec.quantity != 1.0
                || spec.price != (1.0, 1.0)
                || !spec.categories.is_empty();
            let field = if spec.lead_in > 0 || spec.tail > 0 {
                Some(if spec.lead_in > 0 { "lead_in" } else { "tail" })
            } else if effects {
                Some("name")
            } else {
                None
            };
            if let Some(field) = field {
                self.err(
                    &sub(field),
                    format!(
                        "the closure `{}` has a ramp or effect factors; a closed day has no visits to scale",
                        spec.name
                    ),
                    "give the run-up or the day after its own event, e.g. Sale(name: \"Christmas Eve\", from: ..., traffic: 1.3)",
                );
            }
        }
        let effect = self.effect_file(
            path,
            &EffectFile {
                traffic: spec.traffic,
                purchase: spec.purchase,
                quantity: spec.quantity,
                price: spec.price,
                categories: spec.categories.clone(),
            },
            catalog,
        );
        Some(Event {
            name: spec.name.clone(),
            kind,
            from: from?,
            to: to?,
            lead_in: spec.lead_in.min(MAX_DAYS),
            tail: spec.tail.min(MAX_DAYS),
            effect,
        })
    }

    fn calendar(&mut self, raw: &CalendarFile, catalog: &[Category]) -> Calendar {
        use Step::{Field as F, Index as I};
        let weekend = self.effect_file(&[F("calendar"), F("weekend")], &raw.weekend, catalog);
        let mut seasons = Vec::new();
        for (i, s) in raw.seasons.iter().enumerate() {
            let mut months = 0u16;
            for (k, m) in s.months.iter().enumerate() {
                if (1..=12).contains(m) {
                    months |= 1 << m;
                } else {
                    self.err(
                        &[F("calendar"), F("seasons"), I(i), F("months"), I(k)],
                        format!("month {m} is not 1..=12"),
                        "January is 1",
                    );
                }
            }
            let effect = self.effect_file(
                &[F("calendar"), F("seasons"), I(i), F("effect")],
                &s.effect,
                catalog,
            );
            seasons.push(Season {
                name: s.name.clone(),
                months,
                effect,
            });
        }
        let payday = raw.payday.as_ref().map(|p| {
            if !(1..=28).contains(&p.day) || p.days == 0 || p.days > 28 {
                self.err(
                    &[F("calendar"), F("payday")],
                    format!("payday day {} / days {} out of range", p.day, p.days),
                    "day is 1..=28 and days 1..=28",
                );
            }
            Payday {
                day: p.day,
                days: p.days,
                effect: self.effect_file(
                    &[F("calendar"), F("payday"), F("effect")],
                    &p.effect,
                    catalog,
                ),
            }
        });
        let mut events = Vec::new();
        for (i, e) in raw.events.iter().enumerate() {
            if let Some(ev) = self.event(&[F("calendar"), F("events"), I(i)], e, catalog) {
                events.push(ev);
            }
        }
        Calendar {
            weekend,
            seasons,
            payday,
            events,
        }
    }
}

/// Parses "HH:MM" into minutes since midnight (up to 24:00).
fn parse_hhmm(s: &str) -> Option<u16> {
    let (h, m) = s.trim().split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (m < 60 && h * 60 + m <= 1440).then_some(h * 60 + m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_of_day_parse() {
        assert_eq!(parse_hhmm("18:00"), Some(1080));
        assert_eq!(parse_hhmm("24:00"), Some(1440));
        assert_eq!(parse_hhmm("24:01"), None);
        assert_eq!(parse_hhmm("6pm"), None);
    }
}
