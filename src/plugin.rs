//! The plugin API: how every behaviour, output and model joins a simulation, how a scenario
//! enables one by name with typed settings, and how a failure inside the schedule reaches
//! the run.
//!
//! A [`Plugin`] has a name, a [`Plugin::build`] that sees the checked scenario and adds
//! resources and systems, and a [`Plugin::finish`] called once after the last hour. The
//! built-in behaviours, the churn scorer, the sinks, the analytics and the feature export
//! are all plugins; `run.rs` only lists them.
//!
//! A [`Behaviour`] is a plugin a scenario can enable: its settings are the plugin's own
//! fields, deserialised from `systems: [Name(field: value, ...)]` with serde, checked by the
//! plugin against the scenario, and described (types, defaults, doc comments) by
//! `bazaar systems` from the same declaration through `schemars`. One line in the
//! `optional_behaviours!` list of `src/systems/mod.rs` declares its module and makes it known
//! to [`crate::sim::registry`].
//!
//! Systems may return a `Result` (bevy's `Result`, so `?` works on any error): the first
//! error of an hour stops the run, which gets it from [`crate::sim::Simulation::step`]. A
//! panic stays a panic.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use bevy_ecs::error::{BevyError, ErrorContext};
use bevy_ecs::prelude::*;
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::report::charts::ChartDef;
use crate::scenario::Scenario;
use crate::scenario::diag::Step;

/// The result of a plugin's `build` and `finish`, and of a fallible system: bevy's, so `?`
/// converts any error.
pub type Result<T = (), E = BevyError> = std::result::Result<T, E>;

/// What a plugin is given to register itself.
pub struct SimBuilder<'a> {
    /// The world: insert resources here.
    pub world: &'a mut World,
    /// The hourly schedule: add systems `.in_set(SimSet::...)`.
    pub schedule: &'a mut Schedule,
    /// The checked scenario: catalog, personas, calendar, population, settings.
    pub scenario: &'a Scenario,
}

impl SimBuilder<'_> {
    /// Gives every customer a `C` (its default value) from the moment it is spawned: the
    /// customer's row never moves, as inserting a component later would move it (see
    /// [`crate::population`]). Count its size in [`Plugin::reserve`].
    pub fn customer_component<C: Component + Default>(&mut self) -> Result {
        self.world
            .try_register_required_components::<crate::components::AgentId, C>()
            .map_err(|e| {
                format!(
                    "cannot give customers a {}: {e}",
                    std::any::type_name::<C>()
                )
                .into()
            })
    }

    /// Adds a hook into every visit, called at the `stages` it implements, after the hooks
    /// added before it (see [`crate::hooks`]).
    pub fn add_visit_hook(
        &mut self,
        hook: impl crate::hooks::VisitHook,
        stages: crate::hooks::Stages,
    ) {
        self.world
            .get_resource_or_init::<crate::hooks::VisitHooks>()
            .add(Arc::new(hook), stages);
    }

    /// The tally named `name` (`plugin.what`), for hooks and allocators to count in; the same
    /// name gives the same tally.
    pub fn tally(&mut self, name: &str) -> crate::hooks::Tally {
        self.world
            .get_resource_or_init::<crate::hooks::VisitHooks>()
            .tally(name)
    }

    /// Declares a table of the plugin's own, written in every configured format (see
    /// [`crate::tables`]); rows are pushed into [`crate::tables::PluginTables`].
    pub fn add_table(
        &mut self,
        table: crate::output::schema::Table,
    ) -> Result<crate::tables::TableId> {
        Ok(self
            .world
            .get_resource_or_init::<crate::tables::PluginTables>()
            .add(table)?)
    }

    /// Adds a per-persona column to `daily_metrics` (a `U64` count, `Money` or `Float`);
    /// its values go into [`crate::tables::DailyReport`] during the day.
    pub fn daily_column(
        &mut self,
        column: crate::output::schema::Column,
    ) -> Result<crate::tables::DailyColumn> {
        let personas = self.scenario.personas.len();
        Ok(self
            .world
            .get_resource_or_insert_with(|| crate::tables::DailyReport::new(personas))
            .add(column)?)
    }

    /// Adds an allocator: a system run once an hour, after every visitor has drawn a basket
    /// and before any visit is settled, that shares a scarce resource out over the hour's
    /// demand with [`crate::records::HourRecords::allocate`]. Allocators run one after
    /// another in the order added. Adding one makes shopping draw and settle in two passes.
    pub fn add_allocator<M>(
        &mut self,
        system: impl IntoScheduleConfigs<bevy_ecs::system::ScheduleSystem, M>,
    ) {
        let mut hooks = self
            .world
            .get_resource_or_init::<crate::hooks::VisitHooks>();
        let n = hooks.allocators;
        hooks.allocators += 1;
        let step = crate::hooks::AllocatorStep(n);
        self.schedule
            .configure_sets(step.in_set(crate::sim::SimSet::Allocate));
        if n > 0 {
            self.schedule
                .configure_sets(step.after(crate::hooks::AllocatorStep(n - 1)));
        }
        self.schedule.add_systems(system.in_set(step));
    }
}

/// A part of the simulation: resources and systems, added once, finished once.
///
/// ```
/// use bazaar::plugin::{Plugin, SimBuilder};
/// use bazaar::sim::SimSet;
/// use bevy_ecs::prelude::*;
///
/// /// Counts simulated hours.
/// #[derive(Resource, Default)]
/// struct Hours(u32);
///
/// fn count_hours(mut hours: ResMut<Hours>) {
///     hours.0 += 1;
/// }
///
/// struct HourCounter;
///
/// impl Plugin for HourCounter {
///     fn build(&self, sim: &mut SimBuilder) -> bazaar::plugin::Result {
///         sim.world.init_resource::<Hours>();
///         sim.schedule.add_systems(count_hours.in_set(SimSet::Update));
///         Ok(())
///     }
/// }
/// ```
pub trait Plugin: Send + Sync + 'static {
    /// The plugin's name, unique in a simulation (a second plugin of the same name is an
    /// error). Defaults to the type's path.
    fn name(&self) -> &str {
        std::any::type_name::<Self>()
    }

    /// Adds the plugin's resources and systems. Runs once, in registration order: the
    /// built-in behaviours, then the scenario's `systems`, then the caller's plugins.
    fn build(&self, sim: &mut SimBuilder) -> Result;

    /// Called once after the last simulated hour, in registration order: close files,
    /// write tables, hand results to the output folder.
    fn finish(&self, _world: &mut World) -> Result {
        Ok(())
    }

    /// What the plugin adds to the run's size: customers it will spawn and bytes it keeps
    /// per customer. Asked before anything is spawned or written, so the customer table
    /// is sized once and the memory guard counts it.
    fn reserve(&self, _scenario: &Scenario) -> Reserve {
        Reserve::default()
    }

    /// Charts the plugin adds to the run's report, after the built-in ones (see
    /// [`crate::report::charts`]). Each is drawn from `aggregates.json`, so `bazaar report`
    /// can draw it again; names must be unique in the report.
    fn charts(&self) -> &'static [ChartDef] {
        &[]
    }

    /// Saves the plugin's state at the end of a day into `state` for a checkpoint
    /// ([`crate::checkpoint`]): whatever its resources and components hold that a later
    /// day reads and a fresh build of the scenario does not give back (running totals,
    /// queues, per-customer side tables). A plugin whose resources are rebuilt from the
    /// scenario, or emptied every day, has nothing to save.
    fn save(&self, _world: &mut World, _state: &mut crate::checkpoint::State) -> Result {
        Ok(())
    }

    /// The plugin's own metrics for experiments (`bazaar ab`): running totals since the
    /// start of the run, by name (`promotions.diwali_sweets.cost`), money in the currency's
    /// major unit. An experiment takes each at the fork and at the end; the difference is
    /// the arm's figure, compared with the base's (0 where the base has no such metric).
    fn metrics(&self, _world: &World) -> Vec<(String, f64)> {
        Vec::new()
    }

    /// Puts back what [`Plugin::save`] saved, into a simulation freshly built from the
    /// same scenario whose customers are restored already.
    fn restore(&self, _world: &mut World, _state: &crate::checkpoint::State) -> Result {
        Ok(())
    }
}

/// Room a plugin asks for before the run ([`Plugin::reserve`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reserve {
    /// The most customers the plugin spawns over the run (through
    /// [`crate::population::spawn_customers`]); spawning more is an error.
    pub customers: u64,
    /// Bytes the plugin keeps per customer (its customer components and side tables),
    /// for the memory guard.
    pub bytes_per_customer: u64,
}

impl Reserve {
    /// The sum of two reservations (saturating: a sum past any memory is refused anyway).
    pub fn and(self, other: Reserve) -> Reserve {
        Reserve {
            customers: self.customers.saturating_add(other.customers),
            bytes_per_customer: self
                .bytes_per_customer
                .saturating_add(other.bytes_per_customer),
        }
    }
}

/// A plugin a scenario enables by name, its fields being its settings.
///
/// The settings are deserialised from the scenario with the plugin's own serde types
/// (`#[serde(default, deny_unknown_fields)]`: a field left out takes its default, a
/// misspelt one is an error with a did-you-mean), then [`Behaviour::check`]ed against the
/// rest of the scenario. Doc comments on the struct and its fields are what `bazaar
/// systems` prints (through `JsonSchema`), with each field's type and default.
pub trait Behaviour:
    Plugin + Default + Clone + fmt::Debug + Serialize + DeserializeOwned + JsonSchema
{
    /// The name scenarios use, in CamelCase: `WordOfMouth`. Its snake_case spelling
    /// (`word_of_mouth`) is accepted too.
    const NAME: &'static str;

    /// Checks the settings against the scenario (categories and personas named must exist,
    /// rates must be probabilities, ...). Each problem points at a field of the entry.
    fn check(&self, _scenario: &Scenario, _problems: &mut Problems) {}
}

/// Problems a [`Behaviour`] finds in its settings, each at a field path inside its entry.
#[derive(Debug, Default)]
pub struct Problems {
    found: Vec<SettingProblem>,
}

/// One problem in a behaviour's settings.
#[derive(Debug, Clone)]
pub struct SettingProblem {
    /// The field path inside the entry, e.g. `campaigns[1].discount`.
    pub path: Vec<PathStep>,
    /// What is wrong.
    pub message: String,
    /// How to fix it ("" for none).
    pub hint: String,
}

/// One owned step of a [`SettingProblem`]'s path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathStep {
    /// A struct field.
    Field(String),
    /// A list element.
    Index(usize),
    /// A map entry by its key.
    Key(String),
}

impl Problems {
    /// Reports a problem at `path` (e.g. `&[Step::Field("rate")]`).
    pub fn add(&mut self, path: &[Step<'_>], message: impl Into<String>, hint: impl Into<String>) {
        self.found.push(SettingProblem {
            path: path
                .iter()
                .map(|s| match *s {
                    Step::Field(f) => PathStep::Field(f.to_owned()),
                    Step::Index(i) => PathStep::Index(i),
                    Step::Key(k) => PathStep::Key(k.to_owned()),
                })
                .collect(),
            message: message.into(),
            hint: hint.into(),
        });
    }

    /// Reports a number outside `[lo, hi]` at field `field`.
    pub fn range(&mut self, field: &str, value: f64, lo: f64, hi: f64) {
        if !(lo..=hi).contains(&value) {
            self.add(
                &[Step::Field(field)],
                format!("`{field}` must be between {lo} and {hi}, got {value}"),
                format!("set `{field}` to a value from {lo} to {hi}; `bazaar systems` says what it means"),
            );
        }
    }

    /// The problems found, in order.
    pub fn into_vec(self) -> Vec<SettingProblem> {
        self.found
    }

    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }
}

/// A behaviour with its settings, as a scenario enables it (type-erased).
pub trait Configured: Plugin + fmt::Debug {
    /// Checks the settings against the scenario.
    fn check(&self, scenario: &Scenario, problems: &mut Problems);
    /// The settings as RON, `(field: value, ...)`.
    fn settings(&self) -> String;
}

impl<T: Behaviour> Configured for T {
    fn check(&self, scenario: &Scenario, problems: &mut Problems) {
        Behaviour::check(self, scenario, problems);
    }

    fn settings(&self) -> String {
        ron::ser::to_string(self).unwrap_or_default()
    }
}

/// A behaviour enabled by a scenario: its name and its configured plugin.
#[derive(Clone)]
pub struct Enabled {
    /// The registry name.
    pub name: &'static str,
    /// The plugin, with the scenario's settings.
    pub plugin: Arc<dyn Configured>,
}

impl fmt::Debug for Enabled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.name, self.plugin.settings())
    }
}

/// Parses a behaviour's settings from RON text (`(field: value, ...)`), or its defaults
/// when there is no text.
type Parse =
    fn(&str, &ron::Options) -> std::result::Result<Arc<dyn Configured>, ron::error::SpannedError>;

/// A behaviour a scenario can enable: name, settings parser, description.
#[derive(Clone)]
pub struct Registration {
    /// The CamelCase name used in scenario files.
    pub name: &'static str,
    /// The snake_case spelling, also accepted.
    pub alias: String,
    parse: Parse,
    describe: fn() -> Description,
    /// The charts the behaviour adds to the report ([`Plugin::charts`]).
    pub charts: &'static [ChartDef],
}

impl Registration {
    /// The registration of behaviour `T`.
    pub fn of<T: Behaviour>() -> Self {
        Self {
            name: T::NAME,
            alias: snake_case(T::NAME),
            parse: |text, options| {
                let settings: T = if text.trim().is_empty() {
                    T::default()
                } else {
                    options.from_str(text)?
                };
                Ok(Arc::new(settings))
            },
            describe: describe::<T>,
            charts: T::default().charts(),
        }
    }

    /// Whether `name` is this behaviour's name or its snake_case spelling.
    pub fn answers_to(&self, name: &str) -> bool {
        name == self.name || name == self.alias
    }

    /// Parses the settings text that follows the name (`(...)`, or empty for defaults).
    pub fn parse(
        &self,
        text: &str,
        options: &ron::Options,
    ) -> std::result::Result<Arc<dyn Configured>, ron::error::SpannedError> {
        (self.parse)(text, options)
    }

    /// What `bazaar systems` prints about the behaviour.
    pub fn describe(&self) -> Description {
        (self.describe)()
    }
}

/// The behaviours scenarios can enable, by name.
#[derive(Clone, Default)]
pub struct Registry {
    entries: Vec<Registration>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers behaviour `T`. Registering a name twice keeps the first.
    pub fn add<T: Behaviour>(mut self) -> Self {
        if self.get(T::NAME).is_none() {
            self.entries.push(Registration::of::<T>());
        }
        self
    }

    /// The behaviour answering to `name`.
    pub fn get(&self, name: &str) -> Option<&Registration> {
        self.entries.iter().find(|r| r.answers_to(name))
    }

    /// Every registered behaviour, in registration order.
    pub fn iter(&self) -> impl Iterator<Item = &Registration> {
        self.entries.iter()
    }

    /// The names, in registration order.
    pub fn names(&self) -> Vec<&'static str> {
        self.entries.iter().map(|r| r.name).collect()
    }

    /// Every chart the registered behaviours can add to a report, for `bazaar report` to
    /// draw a run's plugin charts again.
    pub fn charts(&self) -> Vec<ChartDef> {
        self.entries
            .iter()
            .flat_map(|r| r.charts)
            .copied()
            .collect()
    }
}

/// A behaviour's description, generated from its declaration.
#[derive(Debug, Clone, PartialEq)]
pub struct Description {
    /// The registry name.
    pub name: &'static str,
    /// The struct's doc comment.
    pub about: String,
    /// Its settings, in declaration order.
    pub settings: Vec<SettingDoc>,
}

impl fmt::Display for Description {
    /// The behaviour as `bazaar systems` prints it: name, doc, a table of settings and an
    /// example entry with every default spelled out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} (also `{}`)", self.name, snake_case(self.name))?;
        for line in self.about.lines() {
            writeln!(f, "  {line}")?;
        }
        if self.settings.is_empty() {
            writeln!(f, "  no settings: `systems: [{}]`", self.name)?;
            return Ok(());
        }
        let width = |get: fn(&SettingDoc) -> &str, title: &str| {
            self.settings
                .iter()
                .map(|s| get(s).chars().count())
                .chain([title.len()])
                .max()
                .unwrap_or(0)
        };
        let (wn, wk, wd) = (
            width(|s| &s.name, "setting"),
            width(|s| &s.kind, "type"),
            width(|s| &s.default, "default"),
        );
        writeln!(f)?;
        writeln!(
            f,
            "  {:wn$}  {:wk$}  {:wd$}  meaning",
            "setting", "type", "default"
        )?;
        for s in &self.settings {
            let doc = s.doc.split_whitespace().collect::<Vec<_>>().join(" ");
            writeln!(
                f,
                "  {:wn$}  {:wk$}  {:wd$}  {doc}",
                s.name, s.kind, s.default
            )?;
        }
        let fields: Vec<String> = self
            .settings
            .iter()
            .map(|s| format!("{}: {}", s.name, s.default))
            .collect();
        writeln!(f)?;
        writeln!(f, "  systems: [{}({})]", self.name, fields.join(", "))
    }
}

/// One setting of a behaviour.
#[derive(Debug, Clone, PartialEq)]
pub struct SettingDoc {
    /// Field name.
    pub name: String,
    /// Its type, as a scenario author writes it.
    pub kind: String,
    /// Its default, in RON.
    pub default: String,
    /// The field's doc comment.
    pub doc: String,
}

/// Describes behaviour `T`: the order and defaults of its settings come from serialising
/// `T::default()` to RON, their types and docs from its JSON schema.
fn describe<T: Behaviour>() -> Description {
    let schema = schemars::schema_for!(T);
    let text =
        |v: Option<&serde_json::Value>| v.and_then(|d| d.as_str()).unwrap_or("").trim().to_owned();
    let about = text(schema.get("description"));
    let props = schema.get("properties").and_then(|p| p.as_object());
    let defaults = ron::ser::to_string(&T::default()).unwrap_or_default();
    let settings = top_level_fields(&defaults)
        .into_iter()
        .map(|(name, default)| {
            let prop = props.and_then(|p| p.get(&name));
            SettingDoc {
                kind: prop.map_or_else(String::new, kind_of),
                doc: text(prop.and_then(|p| p.get("description"))),
                name,
                default,
            }
        })
        .collect();
    Description {
        name: T::NAME,
        about,
        settings,
    }
}

/// The `name: value` pairs of a RON struct `(a: 1, b: [2, 3])`, values as written.
fn top_level_fields(ron_text: &str) -> Vec<(String, String)> {
    use crate::scenario::load::{Tok, Tokens};
    let toks: Vec<Tok<'_>> = Tokens::new(ron_text).collect();
    let mut fields = Vec::new();
    let mut depth = 0i32;
    let mut current: Option<(String, usize)> = None;
    let mut close = |current: &mut Option<(String, usize)>, end: usize| {
        if let Some((name, start)) = current.take() {
            fields.push((name, ron_text[start..end].trim().to_owned()));
        }
    };
    for (i, t) in toks.iter().enumerate() {
        match *t {
            Tok::Punct(_, b'(' | b'[' | b'{') => depth += 1,
            Tok::Punct(o, b')' | b']' | b'}') => {
                if depth == 1 {
                    close(&mut current, o);
                }
                depth -= 1;
            }
            Tok::Punct(o, b',') if depth == 1 => close(&mut current, o),
            Tok::Ident(_, name) if depth == 1 && current.is_none() => {
                if let Some(Tok::Punct(o, b':')) = toks.get(i + 1) {
                    current = Some((name.to_owned(), o + 1));
                }
            }
            _ => {}
        }
    }
    fields
}

/// A JSON schema type, as a scenario author reads it: `number`, `integer`, `string`,
/// `[Campaign]`, `bool (optional)`.
fn kind_of(prop: &serde_json::Value) -> String {
    if let Some(r) = prop.get("$ref").and_then(|r| r.as_str()) {
        return r.rsplit('/').next().unwrap_or(r).to_owned();
    }
    let name = |t: &str| match t {
        "boolean" => "bool".to_owned(),
        "array" => format!(
            "[{}]",
            prop.get("items").map_or_else(|| "…".to_owned(), kind_of)
        ),
        other => other.to_owned(),
    };
    match prop.get("type") {
        Some(serde_json::Value::String(t)) => name(t),
        Some(serde_json::Value::Array(ts)) => {
            let kinds: Vec<String> = ts
                .iter()
                .filter_map(|t| t.as_str())
                .filter(|t| *t != "null")
                .map(name)
                .collect();
            let optional = ts.iter().any(|t| t == "null");
            format!(
                "{}{}",
                kinds.join(" or "),
                if optional { " (optional)" } else { "" }
            )
        }
        _ => match prop.get("anyOf").and_then(|a| a.as_array()) {
            Some(options) => {
                let kinds: Vec<String> = options
                    .iter()
                    .filter(|o| o.get("type").is_none_or(|t| t != "null"))
                    .map(kind_of)
                    .collect();
                let optional = options.len() > kinds.len();
                format!(
                    "{}{}",
                    kinds.join(" or "),
                    if optional { " (optional)" } else { "" }
                )
            }
            None => "value".to_owned(),
        },
    }
}

/// `WordOfMouth` -> `word_of_mouth`.
pub fn snake_case(name: &str) -> String {
    let mut s = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                s.push('_');
            }
            s.extend(c.to_lowercase());
        } else {
            s.push(c);
        }
    }
    s
}

/// A failure inside the simulation: which plugin or system, and the error.
#[derive(Debug)]
pub struct SimError {
    /// The plugin (at build or finish) or system (during an hour) that failed.
    pub origin: String,
    /// The error.
    pub error: BevyError,
}

impl SimError {
    /// A failure of `origin`.
    pub fn new(origin: impl Into<String>, error: impl Into<BevyError>) -> Self {
        Self {
            origin: origin.into(),
            error: error.into(),
        }
    }

    /// The error's own message, without bevy's decoration.
    pub fn message(&self) -> String {
        self.error.to_string().trim_end().to_owned()
    }
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.origin, self.message())
    }
}

impl std::error::Error for SimError {}

thread_local! {
    /// The first failure of the schedule run in progress on this thread. The schedule's
    /// executor is single-threaded and runs every system on the thread that called `run`,
    /// so each simulation sees only its own failures, however many share a process.
    static FAILURE: RefCell<Option<SimError>> = const { RefCell::new(None) };
}

/// The schedule's error handler: keeps the first error for [`take_failure`]; a panic is
/// resumed, not turned into an error.
pub(crate) fn record_failure(mut error: BevyError, ctx: ErrorContext) {
    if let Some(payload) = error.take_payload() {
        std::panic::resume_unwind(payload);
    }
    FAILURE.with_borrow_mut(|f| {
        if f.is_none() {
            *f = Some(SimError {
                origin: ctx.name().to_string(),
                error,
            });
        }
    });
}

/// Takes the failure recorded on this thread since the last call.
pub(crate) fn take_failure() -> Option<SimError> {
    FAILURE.with_borrow_mut(Option::take)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_have_a_snake_case_spelling() {
        assert_eq!(snake_case("WordOfMouth"), "word_of_mouth");
        assert_eq!(snake_case("Stores"), "stores");
        assert_eq!(snake_case("DailyLog"), "daily_log");
    }

    #[test]
    fn top_level_fields_keep_order_and_nested_values() {
        let f = top_level_fields("(rate:0.01,campaigns:[(a:1,b:(2,3))],name:\"x, y\",tier:None)");
        let names: Vec<&str> = f.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["rate", "campaigns", "name", "tier"]);
        assert_eq!(f[1].1, "[(a:1,b:(2,3))]");
        assert_eq!(f[2].1, "\"x, y\"");
        assert_eq!(f[3].1, "None");
    }
}
