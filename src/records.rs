//! The data contract between the behaviours and the outputs: what one hour of shopping
//! produces (transaction and line records, written by the shopping system chunk by chunk into
//! segments that the sinks read in customer order), what a closed day publishes (totals by
//! persona, churn records), and the run's tallies. The sinks, the summary and the analytics
//! read these types and nothing of the systems that fill them.

use bevy_ecs::prelude::Resource;
use serde::{Deserialize, Serialize};

use crate::persona::ChurnCause;

use crate::hooks::{self, Tallies};

/// One basket paid for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxRecord {
    /// The customer.
    pub agent: u32,
    /// The customer's persona index.
    pub persona: u8,
    /// Minute within the hour.
    pub minute: u8,
    /// The basket was trimmed to fit the budget.
    pub trimmed: bool,
    /// Number of lines.
    pub lines: u16,
    /// First line's index in the buffer's `lines`.
    pub line_start: u32,
    /// Units bought.
    pub units: u32,
    /// Total paid, paise.
    pub total: i64,
    /// What the goods cost the retailer, paise (0 when the catalog states no margins).
    pub cost: i64,
}

impl TxRecord {
    /// This transaction's lines in `lines`, the lines of the buffer it was written to.
    #[inline]
    pub fn lines_in<'a>(&self, lines: &'a [LineRecord]) -> &'a [LineRecord] {
        let s = self.line_start as usize;
        &lines[s..s + usize::from(self.lines)]
    }
}

/// One category line of a basket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineRecord {
    /// Catalog index.
    pub category: u16,
    /// Units.
    pub quantity: u32,
    /// Unit price, paise.
    pub unit_price: i64,
}

impl LineRecord {
    /// Quantity times unit price, paise.
    #[inline]
    pub fn total(&self) -> i64 {
        i64::from(self.quantity) * self.unit_price
    }
}

/// Per-persona counts of the hour that are not transactions.
#[derive(Debug, Clone, Default)]
pub struct VisitCounts {
    /// Visits (with or without a purchase), by persona.
    pub visits: Vec<u32>,
    /// Visits that bought nothing, by persona.
    pub empty: Vec<u32>,
}

impl VisitCounts {
    fn clear(&mut self) {
        self.visits.fill(0);
        self.empty.fill(0);
    }

    /// Adds one visit of persona `p`.
    #[inline]
    pub fn visit(&mut self, p: usize, bought: bool) {
        if self.visits.len() <= p {
            self.visits.resize(p + 1, 0);
            self.empty.resize(p + 1, 0);
        }
        self.visits[p] += 1;
        if !bought {
            self.empty[p] += 1;
        }
    }
}

/// What a budget did to a basket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Nothing: the basket fitted.
    Kept,
    /// Wants were held back for later in the pay period; the money was there.
    Deferred,
    /// The basket cost more than everything left: the money ran short.
    Short,
}

/// A visit drawn but not yet settled: the hour's demand while allocators run
/// ([`crate::hooks`]). Its lines are `lines[line_start..line_start + lines]` of its buffer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PendingVisit {
    /// The customer.
    pub agent: u32,
    /// Row of the customer among the rows the buffer's visits were drawn from.
    pub row: u32,
    /// First line's index in the buffer's `lines`.
    pub line_start: u32,
    /// Number of lines drawn (after line hooks and the budget trim).
    pub lines: u16,
    /// Lines the line hooks dropped.
    pub dropped: u16,
    /// The customer's persona index.
    pub persona: u8,
    /// Minute within the hour.
    pub minute: u8,
    /// What the budget did to the basket.
    pub cut: Cut,
    /// Prices paid over reference prices, as drawn.
    pub price_index: f32,
}

/// One visit of the hour's demand, as an allocator sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Demand {
    /// The customer.
    pub agent: u32,
    /// The customer's persona index.
    pub persona: u8,
    /// Minute within the hour.
    pub minute: u8,
}

/// The records of one run of customers (a chunk of the table's rows) for the hour, in row
/// order.
#[derive(Debug, Default)]
pub struct ShopBuffer {
    /// Transactions.
    pub txs: Vec<TxRecord>,
    /// Their lines; each transaction's lines are `lines[line_start..line_start + lines]`.
    pub lines: Vec<LineRecord>,
    /// Visit counts.
    pub counts: VisitCounts,
    /// What the visit hooks and allocators counted ([`crate::hooks::Tallies`]).
    pub tallies: Tallies,
    /// Visits drawn and waiting for allocation, when allocators run.
    pub pending: Vec<PendingVisit>,
}

impl ShopBuffer {
    fn clear(&mut self) {
        self.txs.clear();
        self.lines.clear();
        self.counts.clear();
        self.tallies.clear();
        self.pending.clear();
    }

    /// The lines of one of this buffer's transactions.
    #[inline]
    pub fn lines_of(&self, t: &TxRecord) -> &[LineRecord] {
        t.lines_in(&self.lines)
    }

    /// Appends a paid, untrimmed basket of `lines` for `agent`, its units and total summed
    /// from the lines: records as the shopping system writes them, for the fixtures of
    /// tests and benchmarks.
    pub fn push_basket(
        &mut self,
        agent: u32,
        persona: u8,
        minute: u8,
        lines: impl IntoIterator<Item = LineRecord>,
    ) {
        let line_start = self.lines.len();
        self.lines.extend(lines);
        let basket = &self.lines[line_start..];
        self.txs.push(TxRecord {
            agent,
            persona,
            minute,
            trimmed: false,
            lines: u16::try_from(basket.len()).expect("a basket's lines fit in 16 bits"),
            line_start: u32::try_from(line_start).expect("an hour's lines fit in 32 bits"),
            units: basket.iter().map(|l| l.quantity).sum(),
            total: basket.iter().map(LineRecord::total).sum(),
            cost: 0,
        });
    }
}

/// The hour's records in customer order: one [`ShopBuffer`] per chunk of rows the shopping
/// system served, read in order. The shopping system writes each chunk's records straight
/// into its segment, so nothing is merged, copied or sorted, and the hour's records exist
/// once; segments keep their capacity from hour to hour.
///
/// "Customer order" is the order of the customer table's rows, which is id order: customers
/// are spawned and acquired in id order and never removed. Were customers ever split over
/// several tables (a behaviour adding a component to some of them), the order would be
/// table by table: still the same on every run and at any thread count.
#[derive(Resource, Debug, Default)]
pub struct HourRecords {
    segments: Vec<ShopBuffer>,
    used: usize,
    /// The hour's visit counts, summed over the segments by [`HourRecords::finish`].
    pub counts: VisitCounts,
    /// The hour's tallies, summed over the segments by [`HourRecords::finish`].
    pub tallies: Tallies,
    /// The hour's pending visits in allocation order: (minute, agent, segment, index).
    order: Vec<(u8, u32, u32, u32)>,
    ordered: bool,
    /// The processes the run is sharded over: an allocator sees every rank's demand.
    pub(crate) cluster: crate::cluster::Cluster,
}

impl HourRecords {
    /// Frees the buffers, sized for the busiest hour, for when no hour follows; what the
    /// records belong to (the cluster) stays.
    pub fn release(&mut self) {
        *self = Self {
            cluster: self.cluster.clone(),
            ..Self::default()
        };
    }

    /// Empties the records for a new hour.
    pub fn clear(&mut self) {
        for s in &mut self.segments[..self.used] {
            s.clear();
        }
        self.used = 0;
        self.counts.clear();
        self.tallies.clear();
        self.order.clear();
        self.ordered = false;
    }

    /// Appends `n` empty segments, for the next `n` chunks of rows in customer order.
    pub fn add_segments(&mut self, n: usize) -> &mut [ShopBuffer] {
        let (start, end) = (self.used, self.used + n);
        if self.segments.len() < end {
            self.segments.resize_with(end, ShopBuffer::default);
        }
        self.used = end;
        &mut self.segments[start..end]
    }

    /// Serves the hour's drawn demand to an allocator: `grant` sees each visit that drew a
    /// line, in the order of visit minute then customer id (whichever thread drew it, and
    /// however the rows were chunked), with its lines (set a line's `quantity` to the units
    /// granted; 0 refuses the line) and the tallies to count in.
    ///
    /// In a run sharded over processes ([`crate::cluster`]) `grant` sees every rank's
    /// visits, in the same order, on every rank: what it shares out (a store's stock) then
    /// evolves alike everywhere, and each rank keeps the grants of its own customers. What
    /// it is told of another rank's customer is the [`Demand`] and the lines alone, and what
    /// it counts for them is dropped (their own rank counts it); every rank calls each
    /// allocator once an hour, as the schedule does.
    pub fn allocate(&mut self, mut grant: impl FnMut(&Demand, &mut [LineRecord], &mut Tallies)) {
        if !self.ordered {
            self.order.clear();
            for (k, s) in self.segments[..self.used].iter().enumerate() {
                self.order.extend(
                    s.pending
                        .iter()
                        .enumerate()
                        .filter(|(_, v)| v.lines > 0)
                        .map(|(i, v)| (v.minute, v.agent, k as u32, i as u32)),
                );
            }
            // Keys are unique (one visit per customer an hour), so unstable is exact.
            self.order.sort_unstable();
            self.ordered = true;
        }
        if self.cluster.sharded() {
            return self.allocate_across_ranks(&mut grant);
        }
        for n in 0..self.order.len() {
            self.grant_own(n, &mut grant);
        }
    }

    /// Calls `grant` on this process's `n`-th pending visit in allocation order.
    #[inline]
    fn grant_own(
        &mut self,
        n: usize,
        grant: &mut impl FnMut(&Demand, &mut [LineRecord], &mut Tallies),
    ) {
        let (minute, agent, k, i) = self.order[n];
        let s = &mut self.segments[k as usize];
        let v = s.pending[i as usize];
        let at = v.line_start as usize;
        grant(
            &Demand {
                agent,
                persona: v.persona,
                minute,
            },
            &mut s.lines[at..at + usize::from(v.lines)],
            &mut s.tallies,
        );
    }

    /// [`HourRecords::allocate`] over every rank's demand: each rank sends its visits (in
    /// its allocation order) to every other, and all of them are granted in the order of
    /// visit minute then customer id, which is the one process's order (ids are unique
    /// across ranks).
    fn allocate_across_ranks(
        &mut self,
        grant: &mut impl FnMut(&Demand, &mut [LineRecord], &mut Tallies),
    ) {
        let mut mine = Vec::new();
        for &(minute, agent, k, i) in &self.order {
            let s = &self.segments[k as usize];
            let v = s.pending[i as usize];
            let at = v.line_start as usize;
            wire::put_visit(
                &mut mine,
                &Demand {
                    agent,
                    persona: v.persona,
                    minute,
                },
                &s.lines[at..at + usize::from(v.lines)],
            );
        }
        let all = self.cluster.all_gather(&mine);
        drop(mine);
        let me = self.cluster.rank();
        // (minute, agent, rank, where): `where` is the index in `order` for this rank's
        // visits, the byte offset in the rank's message for the others'.
        let mut merged: Vec<(u8, u32, u32, u32)> = Vec::new();
        for (rank, bytes) in all.iter().enumerate() {
            if rank == me {
                merged.extend(
                    (self.order.iter().enumerate())
                        .map(|(n, &(minute, agent, ..))| (minute, agent, me as u32, n as u32)),
                );
            } else {
                merged.extend(
                    wire::visits(bytes).map(|(at, d)| (d.minute, d.agent, rank as u32, at)),
                );
            }
        }
        merged.sort_unstable();
        let (mut lines, mut dropped) = (Vec::new(), Tallies::default());
        for (_, _, rank, at) in merged {
            if rank as usize == me {
                self.grant_own(at as usize, grant);
            } else {
                let demand = wire::visit(&all[rank as usize][at as usize..], &mut lines);
                grant(&demand, &mut lines, &mut dropped);
            }
        }
    }

    /// The segments written this hour, to settle.
    pub fn segments_mut(&mut self) -> &mut [ShopBuffer] {
        &mut self.segments[..self.used]
    }

    /// This hour's sum of `t` (after [`HourRecords::finish`]).
    pub fn tally(&self, t: hooks::Tally) -> i64 {
        self.tallies.get(t)
    }

    /// Sums the segments' visit counts and tallies into [`HourRecords::counts`] and
    /// [`HourRecords::tallies`]; called once the hour's shopping is done.
    pub fn finish(&mut self) {
        self.counts.clear();
        self.tallies.clear();
        for s in &self.segments[..self.used] {
            self.tallies.absorb(&s.tallies);
            for (p, (&v, &e)) in s.counts.visits.iter().zip(&s.counts.empty).enumerate() {
                if self.counts.visits.len() <= p {
                    self.counts.visits.resize(p + 1, 0);
                    self.counts.empty.resize(p + 1, 0);
                }
                self.counts.visits[p] += v;
                self.counts.empty[p] += e;
            }
        }
    }

    /// The segments written this hour, in customer order.
    pub fn segments(&self) -> &[ShopBuffer] {
        &self.segments[..self.used]
    }

    /// Transactions this hour.
    pub fn len(&self) -> usize {
        self.segments().iter().map(|s| s.txs.len()).sum()
    }

    /// Whether nobody bought anything this hour.
    pub fn is_empty(&self) -> bool {
        self.segments().iter().all(|s| s.txs.is_empty())
    }

    /// Every transaction with its lines, in customer order.
    pub fn iter(&self) -> impl Iterator<Item = (&TxRecord, &[LineRecord])> {
        self.segments()
            .iter()
            .flat_map(|s| s.txs.iter().map(move |t| (t, s.lines_of(t))))
    }
}

/// One customer leaving.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChurnRecord {
    /// The customer.
    pub agent: u32,
    /// Persona index.
    pub persona: u8,
    /// The daily churn probability that was drawn.
    pub probability: f32,
    /// Its main cause.
    pub cause: ChurnCause,
    /// Loyalty at the time.
    pub loyalty: f32,
    /// Days since the last purchase (`None`: never bought).
    pub days_since: Option<u32>,
}

/// Counts and sums over a set of visits and transactions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Visits, with or without a purchase.
    pub visits: u64,
    /// Visits that bought nothing.
    pub empty_visits: u64,
    /// Transactions.
    pub transactions: u64,
    /// Revenue, paise.
    pub revenue_paise: i64,
    /// Units sold.
    pub units: u64,
    /// Line items.
    pub lines: u64,
    /// Baskets trimmed to fit a budget.
    pub trimmed: u64,
    /// Customers who left.
    pub churned: u64,
    /// Customers who joined after the start.
    pub acquired: u64,
    /// Retention offers sent.
    pub offers: u64,
    /// Their cost, paise.
    pub offer_cost_paise: i64,
    /// What the goods sold cost the retailer, paise (0 when the catalog states no margins).
    #[serde(default)]
    pub cost_paise: i64,
}

impl Totals {
    /// Adds one transaction.
    #[inline]
    pub fn add_tx(&mut self, t: &TxRecord) {
        self.transactions += 1;
        // Saturating, so a sum past i64 stays visibly too large for `Tally::check_money`
        // instead of wrapping to a plausible number.
        self.revenue_paise = self.revenue_paise.saturating_add(t.total);
        self.cost_paise = self.cost_paise.saturating_add(t.cost);
        self.units += u64::from(t.units);
        self.lines += u64::from(t.lines);
        self.trimmed += u64::from(t.trimmed);
    }

    /// Adds another set of totals.
    pub fn add(&mut self, o: &Totals) {
        self.visits += o.visits;
        self.empty_visits += o.empty_visits;
        self.transactions += o.transactions;
        self.revenue_paise = self.revenue_paise.saturating_add(o.revenue_paise);
        self.units += o.units;
        self.lines += o.lines;
        self.trimmed += o.trimmed;
        self.churned += o.churned;
        self.acquired += o.acquired;
        self.offers += o.offers;
        self.offer_cost_paise = self.offer_cost_paise.saturating_add(o.offer_cost_paise);
        self.cost_paise = self.cost_paise.saturating_add(o.cost_paise);
    }

    /// Takes away earlier totals of the same counts (totals at the end of a run less those
    /// at a day within it: what happened in between).
    pub fn sub(&mut self, o: &Totals) {
        self.visits -= o.visits;
        self.empty_visits -= o.empty_visits;
        self.transactions -= o.transactions;
        self.revenue_paise -= o.revenue_paise;
        self.units -= o.units;
        self.lines -= o.lines;
        self.trimmed -= o.trimmed;
        self.churned -= o.churned;
        self.acquired -= o.acquired;
        self.offers -= o.offers;
        self.offer_cost_paise -= o.offer_cost_paise;
        self.cost_paise -= o.cost_paise;
    }

    /// Fields in [`Totals::words`].
    pub const WORDS: usize = 12;

    /// The totals as integers (counts by their bits), to be summed over the processes of
    /// a sharded run ([`crate::cluster::Cluster::sum`]) and read back by
    /// [`Totals::from_words`].
    pub fn words(&self) -> [i64; Self::WORDS] {
        [
            self.visits as i64,
            self.empty_visits as i64,
            self.transactions as i64,
            self.revenue_paise,
            self.units as i64,
            self.lines as i64,
            self.trimmed as i64,
            self.churned as i64,
            self.acquired as i64,
            self.offers as i64,
            self.offer_cost_paise,
            self.cost_paise,
        ]
    }

    /// Totals from [`Totals::words`].
    pub fn from_words(w: &[i64; Self::WORDS]) -> Self {
        Self {
            visits: w[0] as u64,
            empty_visits: w[1] as u64,
            transactions: w[2] as u64,
            revenue_paise: w[3],
            units: w[4] as u64,
            lines: w[5] as u64,
            trimmed: w[6] as u64,
            churned: w[7] as u64,
            acquired: w[8] as u64,
            offers: w[9] as u64,
            offer_cost_paise: w[10],
            cost_paise: w[11],
        }
    }

    /// Mean basket value in paise (0 without transactions).
    pub fn mean_basket_paise(&self) -> f64 {
        if self.transactions == 0 {
            0.0
        } else {
            self.revenue_paise as f64 / self.transactions as f64
        }
    }
}

/// Totals over a class of days, with the number of such days.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct DayClass {
    /// Days in the class.
    pub days: u32,
    /// Their totals.
    pub totals: Totals,
}

/// Running tallies of the whole run.
#[derive(Resource, Debug, Clone, Default, Serialize, Deserialize)]
pub struct Tally {
    /// Today so far, by persona.
    pub today: Vec<Totals>,
    /// Completed days, by persona.
    pub by_persona: Vec<Totals>,
    /// Days with a festival in force.
    pub festival: DayClass,
    /// Days without one.
    pub ordinary: DayClass,
    /// Saturdays and Sundays.
    pub weekend: DayClass,
    /// Monday to Friday.
    pub weekday: DayClass,
    /// Acquisitions already counted, by persona.
    pub(crate) acquired_seen: Vec<u64>,
}

impl Tally {
    /// Stops a run whose money sums outgrew what the outputs hold (Parquet's
    /// `decimal(18, 2)`, [`crate::limits::MAX_MONEY_PAISE`]). Every other sum of money is a
    /// part of these two (all amounts are positive), so it fits when they do.
    pub fn check_money(&self) -> Result<(), crate::run::RunError> {
        let mut t = self.overall();
        for p in &self.today {
            t.add(p);
        }
        for (what, paise) in [
            ("revenue", t.revenue_paise),
            ("the cost of retention offers", t.offer_cost_paise),
        ] {
            if paise > crate::limits::MAX_MONEY_PAISE {
                return Err(crate::run::RunError::Overflow { what, paise });
            }
        }
        Ok(())
    }

    /// Totals over every persona of the completed days.
    pub fn overall(&self) -> Totals {
        let mut t = Totals::default();
        for p in &self.by_persona {
            t.add(p);
        }
        t
    }
}

/// A completed day, published at its last hour for the sinks.
#[derive(Resource, Debug, Clone, Default)]
pub struct ClosedDay {
    /// Set only during the last hour of a day.
    pub ready: bool,
    /// The day's date.
    pub date: Option<chrono::NaiveDate>,
    /// Its totals by persona.
    pub by_persona: Vec<Totals>,
    /// A festival was in force.
    pub festival: bool,
    /// It was a weekend day.
    pub weekend: bool,
    /// Names of the events in force.
    pub events: String,
    /// Customers who left today, sorted by customer id.
    pub churn: Vec<ChurnRecord>,
    /// Active customers at the end of the day, by persona.
    pub active: Vec<u64>,
    /// The values of the columns plugins added to `daily_metrics`, by persona
    /// ([`crate::tables::DailyReport`]); empty without such columns.
    pub extra: Vec<Vec<crate::tables::Value>>,
}

/// How a rank's pending visits travel to the others ([`HourRecords::allocate`]): per visit
/// its minute, persona, customer id and line count, then per line its category, units and
/// unit price, little-endian.
mod wire {
    use super::{Demand, LineRecord};

    /// Bytes of a visit's header and of a line.
    const VISIT: usize = 1 + 1 + 4 + 2;
    const LINE: usize = 2 + 4 + 8;

    pub(super) fn put_visit(out: &mut Vec<u8>, d: &Demand, lines: &[LineRecord]) {
        out.push(d.minute);
        out.push(d.persona);
        out.extend_from_slice(&d.agent.to_le_bytes());
        let n = u16::try_from(lines.len()).expect("a basket's lines fit in 16 bits");
        out.extend_from_slice(&n.to_le_bytes());
        for l in lines {
            out.extend_from_slice(&l.category.to_le_bytes());
            out.extend_from_slice(&l.quantity.to_le_bytes());
            out.extend_from_slice(&l.unit_price.to_le_bytes());
        }
    }

    fn header(b: &[u8]) -> (Demand, usize) {
        let demand = Demand {
            minute: b[0],
            persona: b[1],
            agent: u32::from_le_bytes(b[2..6].try_into().expect("4 bytes")),
        };
        (demand, usize::from(u16::from_le_bytes([b[6], b[7]])))
    }

    /// Each visit of a rank's message, with its byte offset.
    pub(super) fn visits(bytes: &[u8]) -> impl Iterator<Item = (u32, Demand)> + '_ {
        let mut at = 0usize;
        std::iter::from_fn(move || {
            if at >= bytes.len() {
                debug_assert_eq!(at, bytes.len(), "a message ends with its last visit");
                return None;
            }
            let (demand, n) = header(&bytes[at..]);
            let here = u32::try_from(at).expect("a rank's hour of demand fits in 4 GiB");
            at += VISIT + n * LINE;
            Some((here, demand))
        })
    }

    /// The visit at the start of `b`, its lines into `lines`.
    pub(super) fn visit(b: &[u8], lines: &mut Vec<LineRecord>) -> Demand {
        let (demand, n) = header(b);
        lines.clear();
        lines.extend(
            b[VISIT..VISIT + n * LINE]
                .chunks_exact(LINE)
                .map(|l| LineRecord {
                    category: u16::from_le_bytes([l[0], l[1]]),
                    quantity: u32::from_le_bytes(l[2..6].try_into().expect("4 bytes")),
                    unit_price: i64::from_le_bytes(l[6..14].try_into().expect("8 bytes")),
                }),
        );
        demand
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(agent: u32, line_start: u32, lines: u16) -> TxRecord {
        TxRecord {
            agent,
            persona: (agent % 2) as u8,
            minute: 0,
            trimmed: false,
            lines,
            line_start,
            units: u32::from(lines),
            total: 100,
            cost: 0,
        }
    }

    fn line(category: u16) -> LineRecord {
        LineRecord {
            category,
            quantity: 1,
            unit_price: 100,
        }
    }

    #[test]
    fn visits_travel_between_ranks_unchanged() {
        let a = Demand {
            agent: 7,
            persona: 2,
            minute: 59,
        };
        let a_lines = [
            LineRecord {
                category: 3,
                quantity: 4,
                unit_price: -5,
            },
            LineRecord {
                category: u16::MAX,
                quantity: u32::MAX,
                unit_price: i64::MAX,
            },
        ];
        let b = Demand {
            agent: u32::MAX,
            persona: 0,
            minute: 0,
        };
        let mut bytes = Vec::new();
        wire::put_visit(&mut bytes, &a, &a_lines);
        wire::put_visit(&mut bytes, &b, &[line(9)]);
        let found: Vec<(u32, Demand)> = wire::visits(&bytes).collect();
        assert_eq!(found.iter().map(|f| f.1).collect::<Vec<_>>(), [a, b]);
        let mut lines = Vec::new();
        assert_eq!(wire::visit(&bytes[found[0].0 as usize..], &mut lines), a);
        assert_eq!(lines, a_lines);
        assert_eq!(wire::visit(&bytes[found[1].0 as usize..], &mut lines), b);
        assert_eq!(lines, [line(9)]);
    }

    #[test]
    fn segments_read_in_order_and_clear_for_the_next_hour() {
        let mut h = HourRecords::default();
        assert!(h.is_empty());
        let segs = h.add_segments(2);
        segs[0].txs.push(tx(1, 0, 2));
        segs[0].lines.extend([line(10), line(11)]);
        segs[0].counts.visit(1, true);
        segs[1].txs.push(tx(5, 0, 1));
        segs[1].lines.push(line(50));
        segs[1].counts.visit(1, true);
        segs[1].counts.visit(0, false);
        h.add_segments(1)[0].counts.visit(0, false); // a run with visits but no purchase
        h.finish();
        let read: Vec<(u32, Vec<u16>)> = h
            .iter()
            .map(|(t, ls)| (t.agent, ls.iter().map(|l| l.category).collect()))
            .collect();
        assert_eq!(read, vec![(1, vec![10, 11]), (5, vec![50])]);
        assert_eq!((h.len(), h.segments().len()), (2, 3));
        assert_eq!(
            (h.counts.visits.clone(), h.counts.empty.clone()),
            (vec![2, 2], vec![2, 0])
        );
        h.clear();
        assert!(h.is_empty() && h.segments().is_empty());
        assert_eq!(h.counts.visits, vec![0, 0]);
        // Segments come back empty, with their capacity.
        let again = h.add_segments(2);
        assert!(again.iter().all(|s| s.txs.is_empty() && s.lines.is_empty()));
        assert!(again[0].lines.capacity() >= 2);
    }

    #[test]
    fn allocation_serves_demand_by_minute_then_customer_across_segments() {
        let pending = |agent, minute, line_start, lines| PendingVisit {
            agent,
            row: agent,
            line_start,
            lines,
            dropped: 0,
            persona: 0,
            minute,
            cut: Cut::Kept,
            price_index: 1.0,
        };
        let mut h = HourRecords::default();
        let segs = h.add_segments(2);
        segs[0]
            .pending
            .extend([pending(1, 30, 0, 1), pending(2, 5, 1, 0)]);
        segs[0].lines.push(line(10));
        segs[1]
            .pending
            .extend([pending(7, 5, 0, 2), pending(9, 30, 2, 1)]);
        segs[1].lines.extend([line(70), line(71), line(90)]);
        let mut seen = Vec::new();
        let mut serve = |h: &mut HourRecords| {
            h.allocate(|d, lines, _| {
                seen.push((
                    d.minute,
                    d.agent,
                    lines.iter().map(|l| l.category).collect(),
                ));
                lines[0].quantity = 0;
            });
        };
        serve(&mut h);
        // Minute first, then customer; a visit that drew nothing is not demand.
        let expected: Vec<(u8, u32, Vec<u16>)> =
            vec![(5, 7, vec![70, 71]), (30, 1, vec![10]), (30, 9, vec![90])];
        assert_eq!(seen, expected);
        assert_eq!(h.segments()[1].lines[0].quantity, 0, "grants write through");
    }

    #[test]
    fn a_pushed_basket_finds_its_lines_and_sums_them() {
        let line = |category, quantity, unit_price| LineRecord {
            category,
            quantity,
            unit_price,
        };
        let mut b = ShopBuffer::default();
        b.push_basket(7, 1, 30, [line(0, 2, 150), line(3, 1, 99)]);
        b.push_basket(9, 0, 45, [line(2, 3, 10)]);
        let (first, second) = (b.txs[0], b.txs[1]);
        assert_eq!(b.lines_of(&first), &[line(0, 2, 150), line(3, 1, 99)]);
        assert_eq!(b.lines_of(&second), &[line(2, 3, 10)]);
        assert_eq!((first.agent, first.persona, first.minute), (7, 1, 30));
        assert_eq!((first.units, first.total, first.trimmed), (3, 399, false));
        assert_eq!((second.units, second.total), (3, 30));
    }
}
