//! Sinks: where each hour's records and each closed day go. A [`Sink`] is a small trait with a
//! do-nothing `()` impl; the CSV sink writes transactions, line items and daily metrics.
//! The observe phase calls every sink in a fixed order; the hour's records are in customer order.

use std::io;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, Sender, channel};

use bevy_ecs::error::BevyError;
use bevy_ecs::prelude::*;

use super::format::DayNames;
use super::rowbuf::{Short, append_row};
use super::schema;
use super::table::{Table, escape, escape_into};
use super::worker::Worker;
use super::{OutputDir, OutputError, io_at};
use crate::calendar::{Clock, Today};
use crate::records::{ClosedDay, HourRecords, LineRecord, TxRecord};
use crate::scenario::Format;
use crate::sim::{Observed, Plugin, SimBuilder, SimSet};
use crate::timings::{HANDOFF, Timings};

/// Transaction ids are `day * TX_ID_DAY + customer id`: unique because a customer shops at
/// most once a day, and decodable by eye.
pub const TX_ID_DAY: u64 = 10_000_000_000;

/// The transaction id of customer `agent`'s purchase on day `day`.
#[inline]
pub fn transaction_id(day: u32, agent: u32) -> u64 {
    u64::from(day) * TX_ID_DAY + u64::from(agent)
}

/// What a sink knows about the hour being written.
pub struct HourContext<'a> {
    /// The clock.
    pub clock: &'a Clock,
    /// Today's calendar.
    pub today: &'a Today,
    /// Persona names by index.
    pub personas: &'a [String],
    /// Category names by index.
    pub categories: &'a [String],
}

/// A destination for simulation records.
pub trait Sink: Send + Sync + 'static {
    /// Receives one hour's records, in customer order ([`HourRecords`]).
    fn hour(&mut self, _ctx: &HourContext<'_>, _records: &HourRecords) -> io::Result<()> {
        Ok(())
    }
    /// Receives a completed day.
    fn day(&mut self, _ctx: &HourContext<'_>, _closed: &ClosedDay) -> io::Result<()> {
        Ok(())
    }
    /// Called once after the last hour and before the customer rows: the event tables
    /// (transactions, line items, daily metrics, churn events) are complete, so a sink can
    /// close them and free their buffers before the customer table is gathered.
    fn events_done(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// Receives one customer's final state, in customer id order, after the last hour.
    fn customer(&mut self, _row: &CustomerRow) -> io::Result<()> {
        Ok(())
    }
    /// Closes files and lists them in the output folder.
    fn finish(self: Box<Self>, _dir: &mut OutputDir) -> Result<(), OutputError> {
        Ok(())
    }
    /// Saves where the sink stands at the end of a day, for a checkpoint: every row it has
    /// received put on disk ([`Table::save`], [`crate::output::parquet::ParquetTable::save`])
    /// or kept in `state` (rows gathered for a row group not yet full), so that
    /// [`Sink::restore`] goes on writing exactly as this sink would have. Writing goes on
    /// after it as before. A sink that cannot do this refuses, and so does the checkpoint.
    fn save(&mut self, _state: &mut crate::checkpoint::State) -> crate::plugin::Result {
        Err("this output sink cannot be checkpointed".into())
    }
    /// Takes up what [`Sink::save`] saved, in a sink just built for the same scenario in
    /// the folder being resumed ([`OutputDir::adopt`]): its files are taken up where the
    /// checkpoint left them, cut back to that point.
    fn restore(
        &mut self,
        _dir: &OutputDir,
        _state: &crate::checkpoint::State,
    ) -> crate::plugin::Result {
        Err("this output sink cannot be resumed from a checkpoint".into())
    }
}

impl Sink for () {
    fn save(&mut self, _state: &mut crate::checkpoint::State) -> crate::plugin::Result {
        Ok(())
    }
    fn restore(
        &mut self,
        _dir: &OutputDir,
        _state: &crate::checkpoint::State,
    ) -> crate::plugin::Result {
        Ok(())
    }
}

/// The sinks of a run, in the order they are called, and the names they need.
///
/// [`SinkPlugin`] puts the scenario's format sinks first; another plugin can push its own
/// sink when built (`world.get_resource_or_init::<Sinks>().sinks.push(...)`).
#[derive(Resource, Default)]
pub struct Sinks {
    /// The sinks, called in order.
    pub sinks: Vec<Box<dyn Sink>>,
    /// Persona names.
    pub personas: Vec<String>,
    /// Category names.
    pub categories: Vec<String>,
    /// The output folder, named in write errors.
    pub target: std::path::PathBuf,
}

/// Calls `f` on every sink in order with the hour's context, stopping at the first error.
fn each_sink(
    sinks: &mut Sinks,
    clock: &Clock,
    today: &Today,
    mut f: impl FnMut(&mut dyn Sink, &HourContext<'_>) -> io::Result<()>,
) -> Result<(), OutputError> {
    let ctx = HourContext {
        clock,
        today,
        personas: &sinks.personas,
        categories: &sinks.categories,
    };
    for s in &mut sinks.sinks {
        f(s.as_mut(), &ctx).map_err(|source| OutputError::Io {
            path: sinks.target.clone(),
            source,
        })?;
    }
    Ok(())
}

/// Hands `hours` to `sink` as consecutive hours from midnight of `start`, each with an
/// ordinary day's calendar (no events, no festival): the hourly half of what the schedule
/// does, for benchmarks and tests that drive a sink without a world.
pub fn feed_hours<'a>(
    sink: &mut dyn Sink,
    start: chrono::NaiveDate,
    personas: &[String],
    categories: &[String],
    hours: impl ExactSizeIterator<Item = &'a HourRecords>,
) -> io::Result<()> {
    let today = Today::neutral(start, categories.len());
    let mut clock = Clock::new(start, hours.len().div_ceil(24).max(1) as u32);
    for (tick, records) in hours.enumerate() {
        clock.tick = tick as u32;
        let ctx = HourContext {
            clock: &clock,
            today: &today,
            personas,
            categories,
        };
        sink.hour(&ctx, records)?;
    }
    Ok(())
}

/// Runs `f`, recording its time as the simulation's output hand-off where there are timings.
fn handing_off<T>(timings: Option<Res<Timings>>, f: impl FnOnce() -> T) -> T {
    match timings {
        Some(t) => t.time(HANDOFF.0, HANDOFF.1, f),
        None => f(),
    }
}

/// Hands the hour's records to every sink.
pub fn write_hour(
    clock: Res<Clock>,
    today: Res<Today>,
    records: Res<HourRecords>,
    mut sinks: ResMut<Sinks>,
    timings: Option<Res<Timings>>,
) -> Result<(), BevyError> {
    if !records.is_empty() {
        handing_off(timings, || {
            each_sink(&mut sinks, &clock, &today, |s, ctx| s.hour(ctx, &records))
        })?;
    }
    Ok(())
}

/// Hands a closed day to every sink.
pub fn write_day(
    clock: Res<Clock>,
    today: Res<Today>,
    closed: Res<ClosedDay>,
    mut sinks: ResMut<Sinks>,
    timings: Option<Res<Timings>>,
) -> Result<(), BevyError> {
    if closed.ready {
        handing_off(timings, || {
            each_sink(&mut sinks, &clock, &today, |s, ctx| s.day(ctx, &closed))
        })?;
    }
    Ok(())
}

/// The scenario's output formats as sinks: creates their tables in the [`OutputDir`]
/// resource when built; at the finish closes the event tables, writes the customer tables
/// (every customer once, in id order, to every sink) and closes every sink.
pub struct SinkPlugin;

impl Plugin for SinkPlugin {
    fn name(&self) -> &str {
        "sinks"
    }

    fn build(&self, sim: &mut SimBuilder) -> crate::plugin::Result {
        let scenario = sim.scenario;
        let personas: Vec<String> = scenario.personas.iter().map(|p| p.name.clone()).collect();
        let categories: Vec<String> = scenario.catalog.iter().map(|c| c.name.clone()).collect();
        // Plugins declare their tables and daily columns before the sinks are built.
        let mut report = sim.world.resource_mut::<crate::tables::DailyReport>();
        report.closed = true;
        let mut daily = schema::daily_metrics();
        daily.columns.extend_from_slice(report.columns());
        let dir = sim
            .world
            .get_resource::<OutputDir>()
            .ok_or("the sinks need an output folder (an `OutputDir` resource)")?;
        let mut formats: Vec<Box<dyn Sink>> = Vec::new();
        for format in &scenario.output.formats {
            let (line_items, start) = (scenario.output.line_items, scenario.start);
            formats.push(match format {
                Format::Csv => Box::new(CsvSink::create(
                    dir,
                    line_items,
                    &personas,
                    &categories,
                    start,
                    &daily,
                    scenario.money.minor_units,
                )?),
                Format::Parquet => Box::new(crate::output::parquet::ParquetSink::create(
                    dir,
                    line_items,
                    &personas,
                    &categories,
                    start,
                    &daily,
                    scenario.money.minor_units,
                )?),
            });
        }
        let target = dir.target().to_path_buf();
        let timings = dir.timings();
        sim.world.insert_resource(timings);
        let mut sinks = sim.world.get_resource_or_init::<Sinks>();
        formats.append(&mut sinks.sinks);
        sinks.sinks = formats;
        sinks.personas = personas;
        sinks.categories = categories;
        sinks.target = target;
        sim.schedule.add_systems(
            (
                write_hour.after(Observed::Hour),
                write_day.after(Observed::Day),
            )
                .chain()
                .in_set(SimSet::Observe),
        );
        let mut declared = Vec::new();
        if daily.columns.len() > schema::daily_metrics().columns.len() {
            declared.push(daily.declared());
        }
        let tables = sim
            .world
            .get_resource_or_init::<crate::tables::PluginTables>();
        let tables: Vec<schema::Table> = tables.tables().to_vec();
        sim.world
            .resource_mut::<crate::tables::PluginTables>()
            .closed = true;
        if !tables.is_empty() || !declared.is_empty() {
            let dir = sim.world.resource::<OutputDir>();
            let mut writers = PluginTableWriters::default();
            for t in &tables {
                declared.push(t.declared());
                for format in &scenario.output.formats {
                    writers.writers.push(match format {
                        Format::Csv => DeclaredWriter::Csv(Table::of(dir, t)?),
                        Format::Parquet => DeclaredWriter::Parquet(
                            crate::output::parquet::ParquetTable::of(
                                dir,
                                t,
                                scenario.money.minor_units,
                            )?,
                            t.clone(),
                            Vec::new(),
                        ),
                    });
                }
            }
            writers.per_table = scenario.output.formats.len();
            writers.declared = declared;
            writers.minor_units = scenario.money.minor_units;
            sim.world.insert_resource(writers);
            sim.schedule
                .add_systems(write_plugin_tables.after(write_day).in_set(SimSet::Observe));
        }
        Ok(())
    }

    fn finish(&self, world: &mut World) -> crate::plugin::Result {
        let (mut sinks, target) = {
            let mut s = world.resource_mut::<Sinks>();
            (std::mem::take(&mut s.sinks), s.target.clone())
        };
        // The hour's buffers are sized for the busiest hour, and the event tables are
        // complete: both are freed before the customer table is gathered, the run's last
        // large allocation.
        if let Some(mut records) = world.get_resource_mut::<HourRecords>() {
            records.release();
        }
        let timings = world.get_resource::<Timings>().cloned().unwrap_or_default();
        timings
            .time("sinks' finish", "event tables written", || {
                sinks.iter_mut().try_for_each(|s| s.events_done())
            })
            .map_err(io_at(&target))?;
        timings
            .time("sinks' finish", "customer rows handed over", || {
                for_each_customer(world, |row| {
                    sinks.iter_mut().try_for_each(|s| s.customer(row))
                })
            })
            .map_err(io_at(&target.join("customers")))?;
        let closing = std::time::Instant::now();
        crate::run::log_memory("customer table");
        tracing::info!("customer tables written; finishing the tables");
        // What plugins pushed in the last hour, after the schedule's last write.
        let mut writers = world.remove_resource::<PluginTableWriters>();
        if let Some(writers) = &mut writers {
            let mut tables = world.resource_mut::<crate::tables::PluginTables>();
            writers.write(&mut tables).map_err(io_at(&target))?;
        }
        let mut dir = world.resource_mut::<OutputDir>();
        for s in sinks {
            s.finish(&mut dir)?;
        }
        if let Some(writers) = writers {
            writers.finish(&mut dir)?;
        }
        timings.add("sinks' finish", "tables closed", closing.elapsed());
        crate::run::log_memory("tables finished");
        Ok(())
    }

    fn save(
        &self,
        world: &mut World,
        state: &mut crate::checkpoint::State,
    ) -> crate::plugin::Result {
        let mut sinks = world.resource_mut::<Sinks>();
        state.put("sinks", &sinks.sinks.len())?;
        for (i, sink) in sinks.sinks.iter_mut().enumerate() {
            let mut own = crate::checkpoint::State::default();
            sink.save(&mut own)?;
            state.put_state(&format!("sink{i}"), &own);
        }
        if world.contains_resource::<PluginTableWriters>() {
            // Rows pushed after the day's last write go to the files first.
            world.resource_scope(|world, mut writers: Mut<PluginTableWriters>| {
                let mut tables = world.resource_mut::<crate::tables::PluginTables>();
                writers.write(&mut tables)
            })?;
            let mut writers = world.resource_mut::<PluginTableWriters>();
            state.put("tables", &writers.save()?)?;
        }
        Ok(())
    }

    fn restore(
        &self,
        world: &mut World,
        state: &crate::checkpoint::State,
    ) -> crate::plugin::Result {
        world.resource_scope(|world, dir: Mut<OutputDir>| -> crate::plugin::Result {
            let mut sinks = world.resource_mut::<Sinks>();
            let count: usize = state.get("sinks")?;
            if count != sinks.sinks.len() {
                return Err(format!(
                    "the checkpoint holds {count} output sinks where this run has {}",
                    sinks.sinks.len()
                )
                .into());
            }
            for (i, sink) in sinks.sinks.iter_mut().enumerate() {
                sink.restore(&dir, &state.get_state(&format!("sink{i}"))?)?;
            }
            if let Some(mut writers) = world.get_resource_mut::<PluginTableWriters>() {
                writers.restore(&dir, state.get("tables")?)?;
            }
            Ok(())
        })
    }
}

/// A plugin table's file as a checkpoint saw it.
#[derive(serde::Serialize, serde::Deserialize)]
enum SavedTable {
    Csv(super::table::TableMark),
    /// The file, and the rows waiting for a full row group.
    Parquet(
        crate::output::parquet::ParquetMark,
        Vec<Vec<crate::tables::Value>>,
    ),
}

/// The plugins' tables, each in every configured format, and the shapes `tables.json`
/// records for `bazaar check`.
#[derive(Resource, Default)]
pub struct PluginTableWriters {
    /// Table by table, format by format.
    writers: Vec<DeclaredWriter>,
    /// Formats per table.
    per_table: usize,
    declared: Vec<schema::Declared>,
    /// Decimal places of money.
    minor_units: u8,
}

/// One plugin table in one format.
enum DeclaredWriter {
    Csv(Table),
    /// The table and its rows waiting for a full row group.
    Parquet(
        crate::output::parquet::ParquetTable,
        schema::Table,
        Vec<Vec<crate::tables::Value>>,
    ),
}

impl DeclaredWriter {
    fn write(&mut self, rows: &[Vec<crate::tables::Value>], minor_units: u8) -> io::Result<()> {
        match self {
            DeclaredWriter::Csv(t) => {
                for row in rows {
                    t.row_with(|r| {
                        for v in row {
                            super::table::value(r, v, minor_units);
                        }
                    })?;
                }
                Ok(())
            }
            DeclaredWriter::Parquet(file, table, pending) => {
                pending.extend_from_slice(rows);
                if pending.len() >= crate::output::parquet::ROW_GROUP_ROWS {
                    flush_parquet(file, table, pending, minor_units)?;
                }
                Ok(())
            }
        }
    }
}

/// Queues a plugin table's waiting rows as one Parquet row group.
fn flush_parquet(
    file: &mut crate::output::parquet::ParquetTable,
    table: &schema::Table,
    pending: &mut Vec<Vec<crate::tables::Value>>,
    minor_units: u8,
) -> io::Result<()> {
    let rows = std::mem::take(pending);
    let columns = table.columns.clone();
    file.write(rows.len(), move || {
        columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                crate::output::parquet::declared_array(
                    c,
                    rows.iter().map(move |r| &r[i]),
                    minor_units,
                )
            })
            .collect()
    })
}

impl PluginTableWriters {
    /// Saves every table for a checkpoint ([`Sink::save`]).
    fn save(&mut self) -> io::Result<Vec<SavedTable>> {
        self.writers
            .iter_mut()
            .map(|w| match w {
                DeclaredWriter::Csv(t) => t.save().map(SavedTable::Csv),
                DeclaredWriter::Parquet(file, _, pending) => {
                    Ok(SavedTable::Parquet(file.save()?, pending.clone()))
                }
            })
            .collect()
    }

    /// Takes every table up where a checkpoint left it ([`Sink::restore`]).
    fn restore(&mut self, dir: &OutputDir, saved: Vec<SavedTable>) -> crate::plugin::Result {
        if saved.len() != self.writers.len() {
            return Err(format!(
                "the checkpoint holds {} plugin table files where this run writes {}",
                saved.len(),
                self.writers.len()
            )
            .into());
        }
        for (w, saved) in self.writers.iter_mut().zip(saved) {
            match (w, saved) {
                (DeclaredWriter::Csv(t), SavedTable::Csv(mark)) => *t = Table::resume(dir, &mark)?,
                (
                    DeclaredWriter::Parquet(file, table, pending),
                    SavedTable::Parquet(mark, rows),
                ) => {
                    *file = crate::output::parquet::ParquetTable::resume(
                        dir,
                        table,
                        self.minor_units,
                        &mark,
                    )?;
                    *pending = rows;
                }
                _ => return Err("the checkpoint's plugin tables are in other formats".into()),
            }
        }
        Ok(())
    }

    /// Writes the rows pushed since the last call, each table's to each of its formats.
    fn write(&mut self, tables: &mut crate::tables::PluginTables) -> io::Result<()> {
        let per_table = self.per_table.max(1);
        for (k, rows) in tables.take().into_iter().enumerate() {
            if rows.is_empty() {
                continue;
            }
            for w in &mut self.writers[k * per_table..(k + 1) * per_table] {
                w.write(&rows, self.minor_units)?;
            }
        }
        Ok(())
    }

    fn finish(self, dir: &mut OutputDir) -> Result<(), OutputError> {
        for w in self.writers {
            match w {
                DeclaredWriter::Csv(t) => t.finish(dir)?,
                DeclaredWriter::Parquet(mut file, table, mut pending) => {
                    let path = dir.path(&format!("{}.parquet", table.stem));
                    flush_parquet(&mut file, &table, &mut pending, self.minor_units)
                        .map_err(io_at(&path))?;
                    file.finish(dir)?;
                }
            }
        }
        let json = serde_json::to_vec_pretty(&self.declared).map_err(|e| OutputError::Io {
            path: dir.path(schema::DECLARED_FILE),
            source: io::Error::other(e),
        })?;
        dir.write_file(schema::DECLARED_FILE, &json)
    }
}

/// Writes the rows plugins pushed this hour to their tables.
pub fn write_plugin_tables(
    mut tables: ResMut<crate::tables::PluginTables>,
    mut writers: ResMut<PluginTableWriters>,
    sinks: Res<Sinks>,
) -> Result<(), BevyError> {
    writers.write(&mut tables).map_err(io_at(&sinks.target))?;
    Ok(())
}

/// Writes transactions, line items and daily metrics as CSV.
pub struct CsvSink {
    /// The transaction and line tables: with the encoder thread until the last hour.
    events: EventTables,
    /// Hour batches the encoder is done with (in a mutex only so the sink is `Sync`).
    returned: Mutex<Receiver<HourBatch>>,
    daily: Table,
    churn: Table,
    customers: Table,
    /// The customer table's dates.
    dates: DayNames,
    personas: Vec<Vec<u8>>,
    /// Decimal places of money.
    minor_units: u8,
}

/// Where the transactions table and the line items table (if written) are.
enum EventTables {
    /// With the thread encoding each hour's transactions and lines while the next hour is
    /// simulated; it hands the tables back when its queue is closed.
    Encoding(Worker<HourBatch, Encoder>),
    /// Back from it, every hour written (boxed: a table is large beside the thread's handle).
    Done(Box<Encoder>),
}

/// Starts the thread that encodes hours into the transaction and line tables.
fn start_encoder(mut encoder: Encoder) -> io::Result<Worker<HourBatch, Encoder>> {
    Worker::start(
        ENCODER,
        "csv:encode".to_owned(),
        QUEUED_HOURS,
        encoder.timings.clone(),
        move |hours: Receiver<HourBatch>| {
            for hour in hours {
                encoder.hour(hour)?;
            }
            Ok(encoder)
        },
    )
}

/// What the encoder thread writes, for errors and timings.
const ENCODER: &str = "transactions.csv and line_items.csv";

/// Hours queued for the encoder before the simulation waits for it.
const QUEUED_HOURS: usize = 2;

impl CsvSink {
    /// Creates the tables in `dir`; `start` is the date of day 0; `daily` is the
    /// `daily_metrics` table: the built-in columns ([`schema::daily_metrics`]) and those
    /// plugins added; money is written with `minor_units` decimal places.
    pub fn create(
        dir: &OutputDir,
        line_items: bool,
        personas: &[String],
        categories: &[String],
        start: chrono::NaiveDate,
        daily: &schema::Table,
        minor_units: u8,
    ) -> Result<Self, OutputError> {
        let personas: Vec<Vec<u8>> = personas.iter().map(|p| escape(p)).collect();
        let (give_back, returned) = channel();
        let encoder = Encoder {
            transactions: Table::of(dir, &schema::transactions())?,
            lines: if line_items {
                Some(Table::of(dir, &schema::line_items())?)
            } else {
                None
            },
            pieces: Vec::new(),
            scratch: Vec::new(),
            personas: personas.iter().map(|p| Short::new(p)).collect(),
            categories: categories.iter().map(|c| Short::new(&escape(c))).collect(),
            give_back,
            pool: dir.pool(),
            minor_units,
            timings: dir.timings(),
        };
        let path = dir.path("transactions.csv");
        let encoder = start_encoder(encoder).map_err(super::io_at(&path))?;
        Ok(Self {
            events: EventTables::Encoding(encoder),
            returned: Mutex::new(returned),
            customers: Table::of(dir, &schema::customers())?,
            dates: DayNames::new(start),
            daily: Table::of(dir, daily)?,
            churn: Table::of(dir, &schema::churn_events())?,
            personas,
            minor_units,
        })
    }

    /// Waits for the encoder to write every queued hour and takes its tables back.
    fn join_encoder(&mut self) -> io::Result<()> {
        if let EventTables::Encoding(encoder) = &mut self.events {
            self.events = EventTables::Done(Box::new(encoder.join()?));
        }
        Ok(())
    }
}

/// One hour's transactions and lines, copied out of [`HourRecords`] for the encoder thread
/// (the simulation refills those for the next hour), with what their rows say of the hour.
/// Batches go back and forth, so their buffers are reused.
#[derive(Default)]
struct HourBatch {
    /// The segments' transactions and lines, in order; the first `used` are this hour's.
    segments: Vec<(Vec<TxRecord>, Vec<LineRecord>)>,
    used: usize,
    /// `2026-11-06T09:`, the timestamp up to the minutes.
    prefix: Short,
    /// Today's events, escaped.
    events: Short,
    /// Where the two are formatted.
    scratch: Vec<u8>,
    day: u32,
    festival: bool,
    weekend: bool,
}

impl HourBatch {
    /// Copies the hour in.
    fn fill(&mut self, ctx: &HourContext<'_>, records: &HourRecords) -> io::Result<()> {
        use std::io::Write;
        self.scratch.clear();
        write!(
            self.scratch,
            "{}T{:02}:",
            ctx.today.date.format("%Y-%m-%d"),
            ctx.clock.hour()
        )?;
        self.prefix.set(&self.scratch);
        escape_into(&mut self.scratch, &ctx.today.events);
        self.events.set(&self.scratch);
        self.day = ctx.clock.day();
        self.festival = ctx.today.festival;
        self.weekend = ctx.today.weekend;
        self.used = 0;
        for segment in records.segments().iter().filter(|s| !s.txs.is_empty()) {
            if self.segments.len() == self.used {
                self.segments.push(Default::default());
            }
            let (txs, lines) = &mut self.segments[self.used];
            txs.clone_from(&segment.txs);
            lines.clone_from(&segment.lines);
            self.used += 1;
        }
        Ok(())
    }
}

/// The encoder thread's side of a [`CsvSink`]: the transaction and line tables, and the
/// buffers rows are encoded into.
struct Encoder {
    transactions: Table,
    lines: Option<Table>,
    /// The hour's encoding chunks: a segment of the hour's records and a run of its
    /// transactions.
    pieces: Vec<(usize, std::ops::Range<usize>)>,
    scratch: Vec<EncodedChunk>,
    personas: Vec<Short>,
    categories: Vec<Short>,
    /// Where written batches go back to the sink.
    give_back: Sender<HourBatch>,
    /// The output folder's encoding pool.
    pool: std::sync::Arc<rayon::ThreadPool>,
    /// Decimal places of money.
    minor_units: u8,
    /// Where the encoding's time is recorded.
    timings: crate::timings::Timings,
}

/// Transactions per encoding chunk at most: big enough to amortise a task, small enough to
/// spread.
const ENCODE_CHUNK: usize = 2048;
/// Transactions per encoding chunk at least: an hour with fewer is encoded in one piece on
/// the encoder thread, which costs less than handing it out when the simulation is using the
/// other core meanwhile (seed parity's hours: median 1,440 transactions).
const ENCODE_CHUNK_MIN: usize = 2048;

/// Everything a chunk encoder reads, shared by the parallel tasks.
struct Encoding<'a> {
    personas: &'a [Short],
    categories: &'a [Short],
    /// The timestamp up to the minutes.
    prefix: &'a Short,
    events: &'a Short,
    day: u32,
    festival: bool,
    weekend: bool,
    line_items: bool,
    /// Decimal places of money.
    minor_units: u8,
}

/// Encodes transactions (and their lines) into two reusable row buffers. Rows are written by
/// [`append_row`]; one too long for it (a long events text) is written field by field instead.
fn encode_chunk(e: &Encoding<'_>, lines: &[LineRecord], txs: &[TxRecord], out: &mut EncodedChunk) {
    out.txs.clear();
    out.lines.clear();
    out.tx_rows = 0;
    out.line_rows = 0;
    let id_field = &mut out.id;
    for t in txs {
        let id = transaction_id(e.day, t.agent);
        id_field.set(itoa::Buffer::new().format(id).as_bytes());
        let persona = &e.personas[usize::from(t.persona)];
        let built = append_row(&mut out.txs, |r| {
            r.text(id_field)
                .part(e.prefix)
                .minute_seconds(t.minute)
                .uint(t.agent.into())
                .text(persona)
                .money(t.total, e.minor_units)
                .uint(t.lines.into())
                .uint(t.units.into())
                .flag(e.festival)
                .flag(e.weekend)
                .text(e.events)
                .flag(t.trimmed);
        });
        if !built {
            tx_row_plain(&mut out.txs, e, t);
        }
        out.tx_rows += 1;
        if e.line_items {
            for (k, l) in t.lines_in(lines).iter().enumerate() {
                let category = &e.categories[usize::from(l.category)];
                let built = append_row(&mut out.lines, |r| {
                    r.text(id_field)
                        .uint(k as u64 + 1)
                        .text(category)
                        .uint(l.quantity.into())
                        .money(l.unit_price, e.minor_units)
                        .money(l.total(), e.minor_units);
                });
                if !built {
                    line_row_plain(&mut out.lines, e, id, k, l);
                }
                out.line_rows += 1;
            }
        }
    }
}

/// A transaction row written field by field: the way of rows too long for [`append_row`].
fn tx_row_plain(out: &mut Vec<u8>, e: &Encoding<'_>, t: &TxRecord) {
    let stamp = [b'0' + t.minute / 10, b'0' + t.minute % 10, b':', b'0', b'0'];
    Table::encode_row(out, |r| {
        r.int(transaction_id(e.day, t.agent)).text(e.prefix.text());
        r.buf_extend(&stamp);
        r.int(t.agent)
            .text(e.personas[usize::from(t.persona)].text())
            .money(t.total, e.minor_units)
            .int(t.lines)
            .int(t.units)
            .flag(e.festival)
            .flag(e.weekend)
            .text(e.events.text())
            .flag(t.trimmed);
    });
}

/// A line row written field by field (see [`tx_row_plain`]).
fn line_row_plain(out: &mut Vec<u8>, e: &Encoding<'_>, id: u64, k: usize, l: &LineRecord) {
    Table::encode_row(out, |r| {
        r.int(id)
            .int(k + 1)
            .text(e.categories[usize::from(l.category)].text())
            .int(l.quantity)
            .money(l.unit_price, e.minor_units)
            .money(l.total(), e.minor_units);
    });
}

/// One chunk's encoded rows, kept between hours so encoding allocates nothing once warm.
#[derive(Default)]
struct EncodedChunk {
    txs: Vec<u8>,
    lines: Vec<u8>,
    tx_rows: u64,
    line_rows: u64,
    /// The current transaction's id, the first field of its rows.
    id: Short,
}

impl Encoder {
    /// Encodes an hour's rows in chunks, in parallel, and appends them to the tables in
    /// order, so the bytes are the same whatever the thread count; then gives the batch back.
    fn hour(&mut self, batch: HourBatch) -> io::Result<()> {
        use rayon::prelude::*;
        let encoding = Encoding {
            personas: &self.personas,
            categories: &self.categories,
            prefix: &batch.prefix,
            events: &batch.events,
            day: batch.day,
            festival: batch.festival,
            weekend: batch.weekend,
            line_items: self.lines.is_some(),
            minor_units: self.minor_units,
        };
        let segments = &batch.segments[..batch.used];
        let threads = self.pool.current_num_threads();
        let total: usize = segments.iter().map(|(txs, _)| txs.len()).sum();
        let size = total
            .div_ceil(2 * threads)
            .clamp(ENCODE_CHUNK_MIN, ENCODE_CHUNK);
        self.pieces.clear();
        for (k, (txs, _)) in segments.iter().enumerate() {
            let n = txs.len();
            self.pieces
                .extend((0..n).step_by(size).map(|at| (k, at..(at + size).min(n))));
        }
        let chunks = self.pieces.len();
        if self.scratch.len() < chunks {
            self.scratch.resize_with(chunks, EncodedChunk::default);
        }
        let encode = |(k, run): &(usize, std::ops::Range<usize>), out: &mut EncodedChunk| {
            let (txs, lines) = &segments[*k];
            encode_chunk(&encoding, lines, &txs[run.clone()], out);
        };
        let at = std::time::Instant::now();
        if chunks == 1 {
            // One chunk: handing it to another thread would only add the hand-off.
            encode(&self.pieces[0], &mut self.scratch[0]);
        } else {
            let (pieces, scratch) = (&self.pieces, &mut self.scratch[..chunks]);
            self.pool.install(|| {
                pieces
                    .par_iter()
                    .zip(scratch.par_iter_mut())
                    .for_each(|(piece, out)| encode(piece, out));
            });
        }
        let encoded = std::time::Instant::now();
        self.timings.add(ENCODER, "encode", encoded - at);
        for chunk in &mut self.scratch[..chunks] {
            self.transactions
                .append_block(&mut chunk.txs, chunk.tx_rows)?;
            if let Some(lines) = &mut self.lines {
                lines.append_block(&mut chunk.lines, chunk.line_rows)?;
            }
        }
        self.timings.add(ENCODER, "append", encoded.elapsed());
        let _ = self.give_back.send(batch); // the sink may be finishing
        Ok(())
    }
}

impl Sink for CsvSink {
    fn hour(&mut self, ctx: &HourContext<'_>, records: &HourRecords) -> io::Result<()> {
        let returned = self.returned.get_mut().unwrap_or_else(|e| e.into_inner());
        let mut batch = returned.try_recv().unwrap_or_default();
        batch.fill(ctx, records)?;
        match &mut self.events {
            EventTables::Encoding(encoder) => encoder.send(batch),
            EventTables::Done(..) => Err(io::Error::other(
                "an hour came after the event tables closed",
            )),
        }
    }

    fn events_done(&mut self) -> io::Result<()> {
        self.join_encoder()
    }

    fn day(&mut self, _ctx: &HourContext<'_>, closed: &ClosedDay) -> io::Result<()> {
        let date = closed
            .date
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default();
        let events = escape(&closed.events);
        let units = self.minor_units;
        for (p, t) in closed.by_persona.iter().enumerate() {
            let persona = &self.personas[p];
            let active = closed.active.get(p).copied().unwrap_or(0);
            self.daily.row_with(|r| {
                r.text(date.as_bytes())
                    .text(persona)
                    .int(active)
                    .int(t.acquired)
                    .int(t.churned)
                    .int(t.visits)
                    .int(t.empty_visits)
                    .int(t.transactions)
                    .money(t.revenue_paise, units)
                    .int(t.units)
                    .money(t.mean_basket_paise().round() as i64, units)
                    .int(t.trimmed)
                    .int(t.offers)
                    .money(t.offer_cost_paise, units)
                    .flag(closed.festival)
                    .flag(closed.weekend)
                    .text(&events);
                for v in closed.extra.get(p).into_iter().flatten() {
                    super::table::value(r, v, units);
                }
            })?;
        }
        for c in &closed.churn {
            let persona = &self.personas[usize::from(c.persona)];
            self.churn.row_with(|r| {
                r.int(c.agent)
                    .text(date.as_bytes())
                    .text(persona)
                    .float(round4(c.probability))
                    .text(c.cause.as_str().as_bytes())
                    .float(round4(c.loyalty));
                match c.days_since {
                    Some(d) => r.int(d),
                    None => r.empty(),
                };
            })?;
        }
        Ok(())
    }

    fn customer(&mut self, c: &CustomerRow) -> io::Result<()> {
        let latest = c.joined.max(c.last_purchase.unwrap_or(0));
        self.dates.prepare(latest.max(c.churned.unwrap_or(0)));
        let dates = &self.dates;
        let last = c.last_purchase.map(|d| dates.get(d));
        let joined = dates.get(c.joined);
        let churned = c.churned.map(|d| dates.get(d));
        let persona = &self.personas[usize::from(c.persona)];
        let units = self.minor_units;
        self.customers.row_with(|r| {
            r.int(c.id).text(persona).int(c.age).int(c.income);
            match c.budget {
                Some((monthly, left)) => r.money(monthly, units).money(left, units),
                None => r.empty().empty(),
            };
            r.float(f64::from(c.loyalty_rounded()))
                .int(c.visits)
                .int(c.purchases)
                .money(c.spent, units)
                .text(last.as_deref().unwrap_or("").as_bytes())
                .text(joined.as_bytes())
                .text(churned.as_deref().unwrap_or("").as_bytes());
        })
    }

    fn save(&mut self, state: &mut crate::checkpoint::State) -> crate::plugin::Result {
        let EventTables::Encoding(worker) = &mut self.events else {
            return Err("a checkpoint after the event tables closed".into());
        };
        let mut encoder = worker.join()?;
        state.put("transactions", &encoder.transactions.save()?)?;
        let lines = encoder.lines.as_mut().map(Table::save).transpose()?;
        state.put("lines", &lines)?;
        self.events = EventTables::Encoding(start_encoder(encoder)?);
        state.put("daily", &self.daily.save()?)?;
        state.put("churn", &self.churn.save()?)?;
        state.put("customers", &self.customers.save()?)?;
        Ok(())
    }

    fn restore(
        &mut self,
        dir: &OutputDir,
        state: &crate::checkpoint::State,
    ) -> crate::plugin::Result {
        let EventTables::Encoding(worker) = &mut self.events else {
            return Err("a checkpoint taken up after the event tables closed".into());
        };
        let mut encoder = worker.join()?;
        encoder.transactions = Table::resume(dir, &state.get("transactions")?)?;
        let lines: Option<super::table::TableMark> = state.get("lines")?;
        encoder.lines = match (encoder.lines.is_some(), lines) {
            (true, Some(mark)) => Some(Table::resume(dir, &mark)?),
            (false, None) => None,
            _ => return Err("the checkpoint's run wrote line items where this one does not, or the other way round".into()),
        };
        self.events = EventTables::Encoding(start_encoder(encoder)?);
        self.daily = Table::resume(dir, &state.get("daily")?)?;
        self.churn = Table::resume(dir, &state.get("churn")?)?;
        self.customers = Table::resume(dir, &state.get("customers")?)?;
        Ok(())
    }

    fn finish(self: Box<Self>, dir: &mut OutputDir) -> Result<(), OutputError> {
        let this = *self;
        let encoder = match this.events {
            EventTables::Encoding(mut encoder) => encoder
                .join()
                .map_err(super::io_at(&dir.path("transactions.csv")))?,
            EventTables::Done(encoder) => *encoder,
        };
        let (transactions, lines) = (encoder.transactions, encoder.lines);
        transactions.finish(dir)?;
        if let Some(lines) = lines {
            lines.finish(dir)?;
        }
        this.daily.finish(dir)?;
        this.churn.finish(dir)?;
        this.customers.finish(dir)
    }
}

/// A probability or loyalty rounded to 4 decimals for output.
pub(crate) fn round4(x: f32) -> f64 {
    (f64::from(x) * 10_000.0).round() / 10_000.0
}

/// One customer's final state, as the customer tables show it.
#[derive(Debug, Clone, Copy)]
pub struct CustomerRow {
    /// Customer id.
    pub id: u32,
    /// Persona index.
    pub persona: u8,
    /// Age.
    pub age: u8,
    /// Monthly income, rupees.
    pub income: u32,
    /// Monthly budget and what is left of it, paise (`None`: no budget).
    pub budget: Option<(i64, i64)>,
    /// Loyalty.
    pub loyalty: f32,
    /// Visits made.
    pub visits: u32,
    /// Purchases made.
    pub purchases: u32,
    /// Total spent, paise.
    pub spent: i64,
    /// Day index of the last purchase.
    pub last_purchase: Option<i32>,
    /// Day index the customer joined.
    pub joined: i32,
    /// Day index the customer left.
    pub churned: Option<i32>,
}

impl CustomerRow {
    /// Loyalty rounded to 4 decimals, as written.
    pub fn loyalty_rounded(&self) -> f32 {
        (self.loyalty * 10_000.0).round() / 10_000.0
    }
}

/// Customers whose rows are made at once by [`for_each_customer`]: enough to spread over
/// the pool, few enough that the batch stays a few megabytes.
const ROW_BATCH: usize = 1 << 16;

/// Calls `f` with every customer's final state, in customer id order.
pub fn for_each_customer<E>(
    world: &mut World,
    mut f: impl FnMut(&CustomerRow) -> Result<(), E>,
) -> Result<(), E> {
    use crate::components::*;
    /// Everything the customer tables show of a customer.
    type Shown<'a> = (
        &'a AgentId,
        &'a Persona,
        &'a Budget,
        &'a Loyalty,
        &'a Ledger,
        &'a Engagement,
    );
    let mut q = world.query::<Shown<'_>>();
    let world: &World = world;
    let model = world.resource::<crate::sim::Model>();
    let row = |(id, persona, budget, loyalty, ledger, engagement): Shown<'_>| {
        let demo = model.demographics(*id, *persona);
        CustomerRow {
            id: id.0,
            persona: persona.0,
            age: demo.age,
            income: demo.income,
            budget: budget
                .is_limited()
                .then_some((budget.monthly.into(), budget.left.into())),
            loyalty: loyalty.0,
            visits: ledger.visits,
            purchases: ledger.purchases,
            spent: ledger.spent,
            last_purchase: (engagement.last_purchase
                != crate::components::Engagement::NEVER_BOUGHT)
                .then_some(engagement.last_purchase.into()),
            joined: engagement.joined.into(),
            churned: (!engagement.is_active()).then_some(engagement.churned.into()),
        }
    };
    // Customers are spawned in id order into one table, so iteration is in id order; check
    // it, and sort (at a memory cost) only if that ever stops being true.
    let in_order = q
        .iter(world)
        .map(|c| c.0.0)
        .try_fold(None::<u32>, |prev, id| match prev {
            Some(p) if p >= id => Err(()),
            _ => Ok(Some(id)),
        })
        .is_ok();
    if in_order {
        // Rows are made a batch at a time on the simulation's pool (each customer's
        // demographics are drawn again from its id), then handed to `f` in order.
        let pool = world
            .get_resource::<crate::sim::SimPool>()
            .map(|p| p.0.clone());
        let mut shown = q.iter(world);
        let mut batch: Vec<Shown<'_>> = Vec::with_capacity(ROW_BATCH);
        let mut rows: Vec<CustomerRow> = Vec::with_capacity(ROW_BATCH);
        loop {
            batch.clear();
            batch.extend(shown.by_ref().take(ROW_BATCH));
            if batch.is_empty() {
                break;
            }
            match &pool {
                Some(pool) => pool.install(|| {
                    use rayon::prelude::*;
                    batch
                        .par_iter()
                        .map(|c| row(*c))
                        .collect_into_vec(&mut rows);
                }),
                None => {
                    rows.clear();
                    rows.extend(batch.iter().map(|c| row(*c)));
                }
            }
            for r in &rows {
                f(r)?;
            }
        }
    } else {
        let mut rows: Vec<CustomerRow> = q.iter(world).map(row).collect();
        rows.sort_unstable_by_key(|c| c.id);
        for c in &rows {
            f(c)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An hour of `n` transactions of two lines each, customers from `first`.
    fn hour_of(first: u32, n: u32) -> HourRecords {
        let mut records = HourRecords::default();
        let segment = &mut records.add_segments(1)[0];
        for agent in first..first + n {
            let lines = (0..2u16).map(|k| LineRecord {
                category: k,
                quantity: 1,
                unit_price: 10_000 + i64::from(agent),
            });
            segment.push_basket(agent, 0, 5, lines);
        }
        records
    }

    fn names() -> (Vec<String>, Vec<String>) {
        (vec!["family".into()], vec!["rice".into(), "dal".into()])
    }

    /// Runs `hours` through a new CSV sink writing into `dir` and closes its event tables
    /// (`events_done`); returns the sink, or the first error.
    fn write_hours(dir: &OutputDir, hours: &[HourRecords]) -> io::Result<CsvSink> {
        let date: chrono::NaiveDate = "2026-11-06".parse().unwrap();
        let (personas, categories) = names();
        let mut sink = CsvSink::create(
            dir,
            true,
            &personas,
            &categories,
            date,
            &schema::daily_metrics(),
            2,
        )
        .unwrap();
        feed_hours(&mut sink, date, &personas, &categories, hours.iter())?;
        sink.events_done()?;
        Ok(sink)
    }

    #[test]
    fn hours_encoded_on_the_encoder_thread_land_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let mut dir = OutputDir::create(&tmp.path().join("o")).unwrap();
        let hours: Vec<HourRecords> = (0..30).map(|h| hour_of(h * 1000, 700)).collect();
        let sink = write_hours(&dir, &hours).unwrap();
        Box::new(sink).finish(&mut dir).unwrap();
        let text = std::fs::read_to_string(dir.path("transactions.csv")).unwrap();
        let customers: Vec<u32> = text
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
            .collect();
        let expected: Vec<u32> = (0..30).flat_map(|h| h * 1000..h * 1000 + 700).collect();
        assert_eq!(customers.len(), expected.len());
        assert!(customers == expected, "rows out of order");
        let lines = std::fs::read_to_string(dir.path("line_items.csv")).unwrap();
        assert_eq!(lines.lines().count(), 1 + 2 * expected.len());
    }

    /// Rows written in place and rows written field by field are the same bytes, for names
    /// around the width of a fixed copy and an events text too long for the in-place room.
    #[test]
    fn rows_in_place_match_rows_field_by_field() {
        let mut records = hour_of(9_999_990, 3);
        let segment = &mut records.add_segments(1)[0];
        segment.push_basket(
            u32::MAX,
            1,
            59,
            (0..5u16).map(|k| LineRecord {
                category: k,
                quantity: 999_999 + u32::from(k),
                unit_price: 100_000_000_007 - i64::from(k),
            }),
        );
        let short = |n: usize| Short::new(&escape(&"n".repeat(n)));
        let names: Vec<Short> = [1, 30, 31, 32, 40].map(short).into();
        for events in ["", "diwali, \"big\" sale", &"e".repeat(300)] {
            let (prefix, events) = (Short::new(b"2026-11-06T09:"), Short::new(&escape(events)));
            let e = Encoding {
                personas: &names,
                categories: &names,
                prefix: &prefix,
                events: &events,
                day: 29,
                festival: true,
                weekend: false,
                line_items: true,
                minor_units: 2,
            };
            let (mut txs, mut lines) = (Vec::new(), Vec::new());
            for segment in records.segments() {
                for t in &segment.txs {
                    tx_row_plain(&mut txs, &e, t);
                    let id = transaction_id(e.day, t.agent);
                    for (k, l) in t.lines_in(&segment.lines).iter().enumerate() {
                        line_row_plain(&mut lines, &e, id, k, l);
                    }
                }
            }
            let mut chunk = EncodedChunk::default();
            let (mut got_txs, mut got_lines) = (Vec::new(), Vec::new());
            for segment in records.segments() {
                encode_chunk(&e, &segment.lines, &segment.txs, &mut chunk);
                got_txs.extend_from_slice(&chunk.txs);
                got_lines.extend_from_slice(&chunk.lines);
            }
            assert_eq!(
                String::from_utf8(got_txs).unwrap(),
                String::from_utf8(txs).unwrap()
            );
            assert_eq!(
                String::from_utf8(got_lines).unwrap(),
                String::from_utf8(lines).unwrap()
            );
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_write_error_behind_the_encoder_reaches_the_sink() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = OutputDir::create(&tmp.path().join("o")).unwrap();
        // /dev/full fails every write with ENOSPC.
        std::os::unix::fs::symlink("/dev/full", dir.path("line_items.csv")).unwrap();
        let hours: Vec<HourRecords> = (0..40).map(|h| hour_of(h * 10_000, 5_000)).collect();
        // The error comes back from the hours or the closing of the event tables, before the
        // sink is finished.
        let error = write_hours(&dir, &hours).err().expect("the disk is full");
        assert_eq!(error.raw_os_error(), Some(libc::ENOSPC), "{error}");
    }
}
