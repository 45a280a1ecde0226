//! Sinks: where each hour's records and each closed day go. A [`Sink`] is a small trait with a
//! do-nothing `()` impl; the CSV sink writes transactions, line items and daily metrics.
//! The observe phase calls every sink in a fixed order; the hour's records are in customer order.

use std::io;

use bevy_ecs::prelude::*;

use super::format::DayNames;
use super::table::{Table, escape};
use super::{OutputDir, OutputError};
use crate::calendar::{Clock, Today};
use crate::records::HourRecords;
use crate::sim::{Plugin, SimBuilder, SimSet};
use crate::systems::observe::{ClosedDay, close_day, tally_hour};

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
}

impl Sink for () {}

/// The sinks of a run, plus names they need and the first write error.
#[derive(Resource)]
pub struct Sinks {
    /// The sinks, called in order.
    pub sinks: Vec<Box<dyn Sink>>,
    /// Persona names.
    pub personas: Vec<String>,
    /// Category names.
    pub categories: Vec<String>,
    /// The first error; the run stops when it is set.
    pub error: Option<io::Error>,
}

/// Calls `f` on every sink in order with the hour's context, stopping at the first error,
/// which is kept in [`Sinks::error`].
fn each_sink(
    sinks: &mut Sinks,
    clock: &Clock,
    today: &Today,
    mut f: impl FnMut(&mut dyn Sink, &HourContext<'_>) -> io::Result<()>,
) {
    let ctx = HourContext {
        clock,
        today,
        personas: &sinks.personas,
        categories: &sinks.categories,
    };
    for s in &mut sinks.sinks {
        if let Err(e) = f(s.as_mut(), &ctx) {
            sinks.error = Some(e);
            return;
        }
    }
}

/// Hands the hour's records to every sink.
pub fn write_hour(
    clock: Res<Clock>,
    today: Res<Today>,
    records: Res<HourRecords>,
    mut sinks: ResMut<Sinks>,
) {
    if !records.is_empty() && sinks.error.is_none() {
        each_sink(&mut sinks, &clock, &today, |s, ctx| s.hour(ctx, &records));
    }
}

/// Hands a closed day to every sink.
pub fn write_day(
    clock: Res<Clock>,
    today: Res<Today>,
    closed: Res<ClosedDay>,
    mut sinks: ResMut<Sinks>,
) {
    if closed.ready && sinks.error.is_none() {
        each_sink(&mut sinks, &clock, &today, |s, ctx| s.day(ctx, &closed));
    }
}

/// Registers the sink systems; the [`Sinks`] resource is inserted by the caller.
pub struct SinkPlugin;

impl Plugin for SinkPlugin {
    fn build(&self, sim: &mut SimBuilder) {
        sim.schedule.add_systems(
            (write_hour.after(tally_hour), write_day.after(close_day))
                .chain()
                .in_set(SimSet::Observe),
        );
    }
}

/// Column names of `transactions.csv`.
pub const TRANSACTION_COLUMNS: [&str; 11] = [
    "transaction_id",
    "timestamp",
    "customer_id",
    "persona",
    "total",
    "lines",
    "units",
    "festival",
    "weekend",
    "events",
    "budget_trimmed",
];
/// Column names of `line_items.csv`.
pub const LINE_COLUMNS: [&str; 6] = [
    "transaction_id",
    "line",
    "category",
    "quantity",
    "unit_price",
    "line_total",
];
/// Column names of `churn_events.csv`.
pub const CHURN_COLUMNS: [&str; 7] = [
    "customer_id",
    "date",
    "persona",
    "probability",
    "cause",
    "loyalty",
    "days_since_last_purchase",
];
/// Column names of `daily_metrics.csv`.
pub const DAILY_COLUMNS: [&str; 17] = [
    "date",
    "persona",
    "active_customers",
    "acquired",
    "churned",
    "visits",
    "empty_visits",
    "transactions",
    "revenue",
    "units",
    "mean_basket",
    "budget_trimmed",
    "retention_offers",
    "retention_cost",
    "festival",
    "weekend",
    "events",
];

/// Writes transactions, line items and daily metrics as CSV.
pub struct CsvSink {
    transactions: Table,
    lines: Option<Table>,
    daily: Table,
    churn: Table,
    customers: Table,
    /// The customer table's dates.
    dates: DayNames,
    prefix: Vec<u8>,
    /// The hour's encoding chunks: a segment of the hour's records and a run of its
    /// transactions.
    pieces: Vec<(usize, std::ops::Range<usize>)>,
    scratch: Vec<EncodedChunk>,
    personas: Vec<Vec<u8>>,
    categories: Vec<Vec<u8>>,
}

impl CsvSink {
    /// Creates the tables in `dir`; `start` is the date of day 0.
    pub fn create(
        dir: &OutputDir,
        line_items: bool,
        personas: &[String],
        categories: &[String],
        start: chrono::NaiveDate,
    ) -> Result<Self, OutputError> {
        Ok(Self {
            customers: Table::create(dir, "customers.csv", &CUSTOMER_COLUMNS)?,
            dates: DayNames::new(start),
            transactions: Table::create(dir, "transactions.csv", &TRANSACTION_COLUMNS)?,
            lines: if line_items {
                Some(Table::create(dir, "line_items.csv", &LINE_COLUMNS)?)
            } else {
                None
            },
            daily: Table::create(dir, "daily_metrics.csv", &DAILY_COLUMNS)?,
            churn: Table::create(dir, "churn_events.csv", &CHURN_COLUMNS)?,
            prefix: Vec::new(),
            pieces: Vec::new(),
            scratch: Vec::new(),
            personas: personas.iter().map(|p| escape(p)).collect(),
            categories: categories.iter().map(|c| escape(c)).collect(),
        })
    }
}

/// Transactions per encoding chunk at most: big enough to amortise a task, small enough to
/// spread.
const ENCODE_CHUNK: usize = 2048;
/// Transactions per encoding chunk at least: a quiet hour is still split over the threads
/// (an hour of the seed-parity run has under a thousand).
const ENCODE_CHUNK_MIN: usize = 256;

/// Everything a chunk encoder reads, shared by the parallel tasks.
struct Encoding<'a> {
    personas: &'a [Vec<u8>],
    categories: &'a [Vec<u8>],
    prefix: &'a [u8],
    events: &'a [u8],
    day: u32,
    festival: bool,
    weekend: bool,
    line_items: bool,
}

/// Encodes transactions (and their lines) into two reusable row buffers.
fn encode_chunk(
    e: &Encoding<'_>,
    segment: &crate::records::ShopBuffer,
    txs: &[crate::records::TxRecord],
    out: &mut EncodedChunk,
) {
    out.txs.clear();
    out.lines.clear();
    out.tx_rows = 0;
    out.line_rows = 0;
    for t in txs {
        let id = transaction_id(e.day, t.agent);
        let stamp = [b'0' + t.minute / 10, b'0' + t.minute % 10, b':', b'0', b'0'];
        Table::encode_row(&mut out.txs, |r| {
            r.int(id).text(e.prefix);
            r.buf_extend(&stamp);
            r.int(t.agent)
                .text(&e.personas[usize::from(t.persona)])
                .rupees(t.total)
                .int(t.lines)
                .int(t.units)
                .flag(e.festival)
                .flag(e.weekend)
                .text(e.events)
                .flag(t.trimmed);
        });
        out.tx_rows += 1;
        if e.line_items {
            for (k, l) in segment.lines_of(t).iter().enumerate() {
                Table::encode_row(&mut out.lines, |r| {
                    r.int(id)
                        .int(k + 1)
                        .text(&e.categories[usize::from(l.category)])
                        .int(l.quantity)
                        .rupees(l.unit_price)
                        .rupees(l.total());
                });
                out.line_rows += 1;
            }
        }
    }
}

/// One chunk's encoded rows, kept between hours so encoding allocates nothing once warm.
#[derive(Default)]
struct EncodedChunk {
    txs: Vec<u8>,
    lines: Vec<u8>,
    tx_rows: u64,
    line_rows: u64,
}

impl Sink for CsvSink {
    fn hour(&mut self, ctx: &HourContext<'_>, records: &HourRecords) -> io::Result<()> {
        use rayon::prelude::*;
        use std::io::Write;
        self.prefix.clear();
        write!(
            self.prefix,
            "{}T{:02}:",
            ctx.today.date.format("%Y-%m-%d"),
            ctx.clock.hour()
        )?;
        let events = escape(&ctx.today.events);
        let encoding = Encoding {
            personas: &self.personas,
            categories: &self.categories,
            prefix: &self.prefix,
            events: &events,
            day: ctx.clock.day(),
            festival: ctx.today.festival,
            weekend: ctx.today.weekend,
            line_items: self.lines.is_some(),
        };
        // Chunks are encoded in parallel and appended in order, so the bytes are the same
        // whatever the thread count.
        let threads = rayon::current_num_threads();
        let size = records
            .len()
            .div_ceil(2 * threads)
            .clamp(ENCODE_CHUNK_MIN, ENCODE_CHUNK);
        self.pieces.clear();
        for (k, segment) in records.segments().iter().enumerate() {
            let n = segment.txs.len();
            self.pieces
                .extend((0..n).step_by(size).map(|at| (k, at..(at + size).min(n))));
        }
        let chunks = self.pieces.len();
        if self.scratch.len() < chunks {
            self.scratch.resize_with(chunks, EncodedChunk::default);
        }
        let segments = records.segments();
        let encode = |(k, run): &(usize, std::ops::Range<usize>), out: &mut EncodedChunk| {
            let segment = &segments[*k];
            encode_chunk(&encoding, segment, &segment.txs[run.clone()], out);
        };
        if chunks == 1 {
            // One chunk: handing it to another thread would only add the hand-off.
            encode(&self.pieces[0], &mut self.scratch[0]);
        } else {
            self.pieces
                .par_iter()
                .zip(self.scratch[..chunks].par_iter_mut())
                .for_each(|(piece, out)| encode(piece, out));
        }
        for chunk in &mut self.scratch[..chunks] {
            self.transactions
                .append_block(&mut chunk.txs, chunk.tx_rows)?;
            if let Some(lines) = &mut self.lines {
                lines.append_block(&mut chunk.lines, chunk.line_rows)?;
            }
        }
        Ok(())
    }

    fn day(&mut self, _ctx: &HourContext<'_>, closed: &ClosedDay) -> io::Result<()> {
        let date = closed
            .date
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default();
        let events = escape(&closed.events);
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
                    .rupees(t.revenue_paise)
                    .int(t.units)
                    .rupees(t.mean_basket_paise().round() as i64)
                    .int(t.trimmed)
                    .int(t.offers)
                    .rupees(t.offer_cost_paise)
                    .flag(closed.festival)
                    .flag(closed.weekend)
                    .text(&events);
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
        self.customers.row_with(|r| {
            r.int(c.id).text(persona).int(c.age).int(c.income);
            match c.budget {
                Some((monthly, left)) => r.rupees(monthly).rupees(left),
                None => r.empty().empty(),
            };
            r.float(f64::from(c.loyalty_rounded()))
                .int(c.visits)
                .int(c.purchases)
                .rupees(c.spent)
                .text(last.as_deref().unwrap_or("").as_bytes())
                .text(joined.as_bytes())
                .text(churned.as_deref().unwrap_or("").as_bytes());
        })
    }

    fn finish(self: Box<Self>, dir: &mut OutputDir) -> Result<(), OutputError> {
        let this = *self;
        this.transactions.finish(dir)?;
        if let Some(lines) = this.lines {
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

/// Column names of `customers.csv`.
pub const CUSTOMER_COLUMNS: [&str; 13] = [
    "customer_id",
    "persona",
    "age",
    "income",
    "monthly_budget",
    "budget_left",
    "loyalty",
    "visits",
    "purchases",
    "total_spent",
    "last_purchase",
    "joined_on",
    "churned_on",
];

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
            last_purchase: (engagement.last_purchase >= 0)
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
        for c in q.iter(world) {
            f(&row(c))?;
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
