//! What one hour of shopping produces: transaction and line records, first in per-thread
//! buffers, then merged in a deterministic order for the sinks.

use bevy_ecs::prelude::Resource;
use bevy_utils::Parallel;

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

/// One thread's output for the hour.
#[derive(Debug, Default)]
pub struct ShopBuffer {
    /// Transactions.
    pub txs: Vec<TxRecord>,
    /// Their lines.
    pub lines: Vec<LineRecord>,
    /// Visit counts.
    pub counts: VisitCounts,
}

/// Per-thread buffers the shopping system writes into.
#[derive(Resource, Default)]
pub struct ShopBuffers(pub Parallel<ShopBuffer>);

/// The hour's records, merged and sorted by customer id.
#[derive(Resource, Debug, Default)]
pub struct HourRecords {
    /// Transactions, sorted by agent id.
    pub txs: Vec<TxRecord>,
    /// Lines; each transaction's lines are `lines[line_start..line_start + lines]`.
    pub lines: Vec<LineRecord>,
    /// Visit counts.
    pub counts: VisitCounts,
}

impl HourRecords {
    /// Moves every thread's buffer into `self`, sorted by agent id. Capacity is kept on both
    /// sides, so after the first hours no allocation happens.
    pub fn merge_from(&mut self, buffers: &mut ShopBuffers) {
        self.txs.clear();
        self.lines.clear();
        self.counts.clear();
        for buf in buffers.0.iter_mut() {
            let base = self.lines.len() as u32;
            self.txs.extend(buf.txs.iter().map(|t| TxRecord {
                line_start: t.line_start + base,
                ..*t
            }));
            self.lines.extend_from_slice(&buf.lines);
            for (p, v) in buf.counts.visits.iter().enumerate() {
                if self.counts.visits.len() <= p {
                    self.counts.visits.resize(p + 1, 0);
                    self.counts.empty.resize(p + 1, 0);
                }
                self.counts.visits[p] += v;
                self.counts.empty[p] += buf.counts.empty[p];
            }
            buf.txs.clear();
            buf.lines.clear();
            buf.counts.clear();
        }
        self.txs.sort_unstable_by_key(|t| t.agent);
    }

    /// The lines of a transaction.
    #[inline]
    pub fn lines_of(&self, t: &TxRecord) -> &[LineRecord] {
        let s = t.line_start as usize;
        &self.lines[s..s + usize::from(t.lines)]
    }
}
