//! Shopping: customers whose planned visit falls in this hour build a basket, trim it to
//! their budget, and pay.
//!
//! Runs in parallel over contiguous component slices, skipping change detection; only the
//! hour's visitors, listed by planning ([`Visitors`]), are touched. Each chunk of rows writes its
//! records into its own segment of [`HourRecords`], so they are in customer order as
//! written, whichever thread served them.

use bevy_ecs::prelude::*;

use crate::calendar::{Clock, Today};
use crate::components::*;
use crate::hooks::{CustomerState, Offer, Tallies, VisitHooks, VisitInfo, VisitOutcome};
use crate::money::round_minor;
use crate::persona::{Persona as PersonaParams, sample_quantity};
use crate::records::{HourRecords, LineRecord, PendingVisit, ShopBuffer, TxRecord};
use crate::rng::{Purpose, Stream, Streams};
use crate::sim::{Model, Plugin, SimBuilder, SimPool, SimSet};
use crate::systems::planning::Visitors;

/// A category's purchase probability never exceeds this after calendar factors.
pub const PURCHASE_CAP: f32 = 0.95;

/// Draws a basket into `lines`: the visit's kind of trip first (only if the persona has
/// kinds), then for each category of the persona, bought with probability
/// `min(p × purchase factor × trip factor, PURCHASE_CAP)`, quantity and unit price from the persona's
/// ranges times today's factors. Returns the price index (paid over reference prices).
#[inline(always)]
pub fn draw_basket(
    persona: &PersonaParams,
    today: &Today,
    rng: &mut Stream,
    lines: &mut Vec<LineRecord>,
) -> f64 {
    draw_basket_with(persona, today, rng, lines, &mut AsDrawn)
}

/// What may change a basket as it is drawn: the visit hooks' offer and line stages.
pub trait ShapeBasket {
    /// Changes a category's offer before its draw.
    fn offer(&mut self, _offer: &mut Offer) {}
    /// Changes a drawn line, or drops it (false).
    fn keep(&mut self, _line: &mut LineRecord) -> bool {
        true
    }
}

/// Baskets as the persona and the calendar draw them.
pub struct AsDrawn;

impl ShapeBasket for AsDrawn {}

/// The visit hooks shaping one visitor's basket.
struct Hooked<'a, 'h> {
    info: VisitInfo<'a>,
    hooks: &'h VisitHooks,
    tallies: &'h mut Tallies,
    dropped: u16,
}

impl ShapeBasket for Hooked<'_, '_> {
    fn offer(&mut self, offer: &mut Offer) {
        self.hooks.offer(&self.info, offer, self.tallies);
    }

    fn keep(&mut self, line: &mut LineRecord) -> bool {
        let keep = self.hooks.line(&self.info, line, self.tallies);
        self.dropped += u16::from(!keep);
        keep
    }
}

/// [`draw_basket`] with each category's offer and each drawn line passed through `shape`.
/// The random draws are the same whatever `shape` does, so a hook changes only what it
/// touches. Dropped lines do not count in the price index.
#[inline(always)]
pub fn draw_basket_with(
    persona: &PersonaParams,
    today: &Today,
    rng: &mut Stream,
    lines: &mut Vec<LineRecord>,
    shape: &mut impl ShapeBasket,
) -> f64 {
    let mut paid = 0i64;
    let mut reference = 0f64;
    let trip = persona.trip(rng);
    for item in &persona.basket {
        let c = usize::from(item.category);
        let mut o = Offer {
            category: item.category,
            p: item.p * today.purchase[c] * trip,
            quantity: today.quantity[c],
            price: 1.0,
        };
        shape.offer(&mut o);
        if !rng.chance(o.p.min(PURCHASE_CAP)) {
            continue;
        }
        let quantity = sample_quantity(item.quantity, o.quantity, rng);
        let (lo, hi) = today.price[c];
        let factor = if lo == hi {
            f64::from(lo)
        } else {
            f64::from(lo) + f64::from(hi - lo) * rng.unit_f64()
        };
        let mut line = LineRecord {
            category: item.category,
            quantity,
            unit_price: round_minor(
                item.price.sample(rng) * factor * o.price,
                persona.minor_per_major,
            )
            .max(1),
        };
        if !shape.keep(&mut line) {
            continue;
        }
        paid += line.total();
        reference += f64::from(line.quantity) * item.price.reference() * persona.minor_per_major;
        lines.push(line);
    }
    if reference > 0.0 {
        paid as f64 / reference
    } else {
        1.0
    }
}

pub use crate::records::Cut;

/// Trims `lines[from..]` to what the budget pays for, by need. Needs (ranks below `needs`)
/// may use everything `left`; wants only `for_wants` (at most `left`: what pacing lets this
/// trip spend on them, [`crate::persona::BudgetParams::for_wants`]). Lines are taken most
/// needed first (`need[category]`, lowest first; ties in basket order), each kept whole,
/// cut to the units that fit, or dropped, and the kept lines stay in basket order. With no
/// ranks (`need` empty) every line is a want, taken in basket order.
///
/// A want cut by pacing keeps one unit more with probability (money left for wants over
/// the units kept) / unit price, drawn from `rng`, when the money is there: the units are
/// rounded at random, so wants spend at the pay period's pace on average and a want dearer
/// than a trip's share is still bought now and then. Allocates nothing for baskets of up
/// to 256 lines.
#[inline]
pub fn trim_by_need(
    lines: &mut Vec<LineRecord>,
    from: usize,
    left: i64,
    for_wants: i64,
    need: &[u16],
    needs: u16,
    rng: &mut Stream,
) -> Cut {
    let for_wants = for_wants.min(left);
    let total: i64 = lines[from..].iter().map(LineRecord::total).sum();
    if total <= for_wants {
        return Cut::Kept;
    }
    let cut = if need.is_empty() && for_wants == left {
        trim_to_budget(lines, from, left)
    } else {
        trim_ranked(lines, from, left, for_wants, need, needs, rng)
    };
    match (cut, total > left) {
        (false, _) => Cut::Kept,
        (true, true) => Cut::Short,
        (true, false) => Cut::Deferred,
    }
}

/// [`trim_by_need`] by rank: `left` for needs, `for_wants` for wants.
#[inline]
fn trim_ranked(
    lines: &mut Vec<LineRecord>,
    from: usize,
    left: i64,
    for_wants: i64,
    need: &[u16],
    needs: u16,
    rng: &mut Stream,
) -> bool {
    let basket = &mut lines[from..];
    let rank = |l: &LineRecord| {
        need.get(usize::from(l.category))
            .copied()
            .unwrap_or(u16::MAX)
    };
    let mut small = [0u16; 256];
    let mut large = Vec::new();
    let order: &mut [u16] = if basket.len() <= small.len() {
        &mut small[..basket.len()]
    } else {
        large.resize(basket.len(), 0u16);
        &mut large
    };
    for (k, o) in order.iter_mut().enumerate() {
        *o = k as u16;
    }
    order.sort_unstable_by_key(|&k| (rank(&basket[usize::from(k)]), k));
    let mut spent = 0i64;
    let mut trimmed = false;
    for &k in order.iter() {
        let line = &mut basket[usize::from(k)];
        let want = rank(line) >= needs;
        let cap = if want { for_wants } else { left };
        if line.total() > cap - spent {
            let drawn = line.quantity;
            let money = (cap - spent).max(0);
            let mut units = money / line.unit_price;
            let rest = (money - units * line.unit_price) as f64;
            if want
                && (units + 1) * line.unit_price <= left - spent
                && f64::from(rng.unit_f32()) * (line.unit_price as f64) < rest
            {
                units += 1;
            }
            line.quantity = units as u32;
            trimmed |= line.quantity < drawn;
        }
        spent += line.total();
    }
    let mut kept = from;
    for r in from..lines.len() {
        if lines[r].quantity > 0 {
            lines[kept] = lines[r];
            kept += 1;
        }
    }
    lines.truncate(kept);
    trimmed
}

/// Trims `lines[from..]` in order so their total fits in `left`: a line that does not fit
/// is cut to the units that do, or dropped. Works in place (no allocation). Returns whether
/// anything was cut.
#[inline]
pub fn trim_to_budget(lines: &mut Vec<LineRecord>, from: usize, mut left: i64) -> bool {
    let mut trimmed = false;
    let mut kept = from;
    for r in from..lines.len() {
        let mut line = lines[r];
        if line.total() > left {
            trimmed = true;
            let affordable = left.max(0) / line.unit_price;
            if affordable == 0 {
                continue;
            }
            line.quantity = affordable as u32;
        }
        left -= line.total();
        lines[kept] = line;
        kept += 1;
    }
    lines.truncate(kept);
    trimmed
}

/// Everything one visit needs to know and change about a customer.
pub struct Visitor<'a> {
    /// Customer id.
    pub agent: u32,
    /// Persona index.
    pub persona: u8,
    /// Minute of the hour.
    pub minute: u8,
    /// Budget.
    pub budget: &'a mut Budget,
    /// Loyalty.
    pub loyalty: &'a mut Loyalty,
    /// Ledger.
    pub ledger: &'a mut Ledger,
    /// Engagement.
    pub engagement: &'a mut Engagement,
}

/// What every visit of one hour shares.
#[derive(Clone, Copy)]
pub struct VisitContext<'a> {
    /// The scenario's parameters.
    pub model: &'a Model,
    /// Today's multipliers.
    pub today: &'a Today,
    /// The clock.
    pub clock: &'a Clock,
    /// The visit hooks.
    pub hooks: &'a VisitHooks,
    /// The hour's basket streams (`Streams::at(model.seed, clock.tick, Purpose::Basket)`).
    pub streams: Streams,
}

impl<'a> VisitContext<'a> {
    /// The context of the clock's current hour.
    pub fn new(
        model: &'a Model,
        today: &'a Today,
        clock: &'a Clock,
        hooks: &'a VisitHooks,
    ) -> Self {
        Self {
            model,
            today,
            clock,
            hooks,
            streams: Streams::at(model.seed, clock.tick, Purpose::Basket),
        }
    }

    fn info(&self, v: &Visitor<'_>) -> VisitInfo<'a> {
        VisitInfo {
            agent: v.agent,
            persona: v.persona,
            minute: v.minute,
            loyalty: v.loyalty.0,
            clock: self.clock,
            today: self.today,
        }
    }
}

/// A basket drawn and trimmed, not yet paid for: `lines` lines from `line_start` of the
/// buffer's lines.
#[derive(Debug, Clone, Copy)]
struct Drawn {
    line_start: usize,
    lines: usize,
    dropped: u16,
    cut: Cut,
    price_index: f64,
}

/// Draws a visitor's basket into the buffer (offer and line hooks included) and trims it to
/// the budget.
#[inline(always)]
fn draw_visit(v: &Visitor<'_>, cx: &VisitContext<'_>, buf: &mut ShopBuffer) -> Drawn {
    let persona = &cx.model.personas[usize::from(v.persona)];
    let mut rng = cx.streams.stream(v.agent);
    let line_start = buf.lines.len();
    let (price_index, dropped) = if cx.hooks.shape_baskets() {
        draw_hooked(v, persona, cx, &mut rng, buf)
    } else {
        (draw_basket(persona, cx.today, &mut rng, &mut buf.lines), 0)
    };
    let cut = match &persona.budget {
        Some(b) if v.budget.is_limited() => {
            let left = v.budget.left.into();
            let pay = cx.today.pay_period(v.persona);
            let days_since = v.engagement.days_since_purchase(cx.clock.day());
            trim_by_need(
                &mut buf.lines,
                line_start,
                left,
                b.for_wants(left, v.budget.monthly.into(), days_since, pay),
                &b.need,
                b.needs,
                &mut rng,
            )
        }
        _ => Cut::Kept,
    };
    Drawn {
        line_start,
        lines: buf.lines.len() - line_start,
        dropped,
        cut,
        price_index,
    }
}

/// The basket through the offer and line hooks; kept out of line so that the plain draw,
/// inlined into the visit loop, stays as small as it was before hooks existed.
#[inline(never)]
fn draw_hooked(
    v: &Visitor<'_>,
    persona: &PersonaParams,
    cx: &VisitContext<'_>,
    rng: &mut Stream,
    buf: &mut ShopBuffer,
) -> (f64, u16) {
    let mut hooked = Hooked {
        info: cx.info(v),
        hooks: cx.hooks,
        tallies: &mut buf.tallies,
        dropped: 0,
    };
    let index = draw_basket_with(persona, cx.today, rng, &mut buf.lines, &mut hooked);
    (index, hooked.dropped)
}

/// What a basket cost the retailer at `unit_cost` (by category; empty: no costs known).
#[inline(always)]
fn cost_of(unit_cost: &[i64], basket: &[LineRecord]) -> i64 {
    if unit_cost.is_empty() {
        return 0;
    }
    basket
        .iter()
        .map(|l| {
            i64::from(l.quantity) * unit_cost.get(usize::from(l.category)).copied().unwrap_or(0)
        })
        .sum()
}

/// Pays for a drawn basket and updates the customer: budget, ledger, engagement, then the
/// after-visit hooks. Its lines move down to `write_at` (with `COMPACT`, dropping those an
/// allocator refused); returns the index after its last kept line.
#[inline(always)]
fn settle_visit<const COMPACT: bool>(
    v: Visitor<'_>,
    d: Drawn,
    write_at: usize,
    cx: &VisitContext<'_>,
    buf: &mut ShopBuffer,
) -> usize {
    let info = cx.info(&v);
    let mut refused = 0u16;
    let end = if COMPACT {
        let mut w = write_at;
        for r in d.line_start..d.line_start + d.lines {
            let line = buf.lines[r];
            if line.quantity == 0 {
                refused += 1;
                continue;
            }
            buf.lines[w] = line;
            w += 1;
        }
        w
    } else {
        d.line_start + d.lines
    };
    let basket = &buf.lines[write_at..end];
    let total: i64 = basket.iter().map(LineRecord::total).sum();
    let units: u32 = basket.iter().map(|l| l.quantity).sum();
    let bought = !basket.is_empty();
    v.ledger.visits += 1;
    if bought {
        if v.budget.is_limited() {
            // The basket was trimmed to what is left and allocation only takes units away,
            // so 0 <= left - total <= left: exact.
            v.budget.left = (i64::from(v.budget.left) - total) as i32;
        }
        v.engagement.last_purchase = crate::components::to_day(cx.clock.day());
        v.ledger.purchases += 1;
        v.ledger.spent += total;
        buf.txs.push(TxRecord {
            agent: v.agent,
            persona: v.persona,
            minute: v.minute,
            trimmed: d.cut != Cut::Kept,
            lines: basket.len() as u16,
            line_start: write_at as u32,
            units,
            total,
            cost: cost_of(&cx.model.personas[usize::from(v.persona)].unit_cost, basket),
        });
    }
    let lines = basket.len() as u16;
    buf.counts.visit(usize::from(v.persona), bought);
    // Only money running short disappoints: wants held back for later were a choice.
    let short = d.cut == Cut::Short;
    if !bought || short {
        v.engagement.unmet += 1.0;
    }
    if short {
        v.engagement.trims += 1.0;
    }
    let outcome = VisitOutcome {
        bought,
        trimmed: short,
        deferred: d.cut == Cut::Deferred,
        price_index: d.price_index as f32,
        total,
        lines,
        dropped: d.dropped,
        refused,
    };
    cx.hooks.after_visit(
        &info,
        &outcome,
        &buf.lines[write_at..end],
        &mut CustomerState {
            budget: v.budget,
            loyalty: v.loyalty,
            engagement: v.engagement,
            ledger: v.ledger,
        },
        &mut buf.tallies,
    );
    end
}

/// One visit: basket (with the offer and line hooks), budget trim, payment, state updates,
/// the after-visit hooks and the record.
#[inline]
pub fn visit(v: Visitor<'_>, cx: &VisitContext<'_>, buf: &mut ShopBuffer) {
    let d = draw_visit(&v, cx, buf);
    settle_visit::<false>(v, d, d.line_start, cx, buf);
}

/// What the shopping system reads and writes of each customer.
pub type Shopper = (
    &'static AgentId,
    &'static Persona,
    &'static DayPlan,
    &'static mut Budget,
    &'static mut Loyalty,
    &'static mut Ledger,
    &'static mut Engagement,
);

/// Visitors whose rows are loaded together before they are served.
const GATHER: usize = 32;

/// The component columns shopping reads and writes, for one run of customers.
pub struct ShopRows<'a> {
    /// Ids.
    pub ids: &'a [AgentId],
    /// Personas.
    pub personas: &'a [Persona],
    /// Today's plans.
    pub plans: &'a [DayPlan],
    /// Budgets.
    pub budget: &'a mut [Budget],
    /// Loyalty.
    pub loyalty: &'a mut [Loyalty],
    /// Ledgers.
    pub ledger: &'a mut [Ledger],
    /// Engagement.
    pub engagement: &'a mut [Engagement],
}

impl<'a> ShopRows<'a> {
    /// Splits the rows into runs of `size` (the last may be shorter), in row order, for
    /// parallel iteration.
    pub fn par_chunks(
        self,
        size: usize,
    ) -> impl rayon::iter::IndexedParallelIterator<Item = ShopRows<'a>> {
        use rayon::prelude::*;
        let (ids, personas, plans) = (self.ids, self.personas, self.plans);
        (
            self.budget.par_chunks_mut(size),
            self.loyalty.par_chunks_mut(size),
            self.ledger.par_chunks_mut(size),
            self.engagement.par_chunks_mut(size),
        )
            .into_par_iter()
            .enumerate()
            .map(move |(k, (budget, loyalty, ledger, engagement))| {
                let r = k * size..k * size + budget.len();
                ShopRows {
                    ids: &ids[r.clone()],
                    personas: &personas[r.clone()],
                    plans: &plans[r],
                    budget,
                    loyalty,
                    ledger,
                    engagement,
                }
            })
    }
}

/// Serves the `visitors` of a run of rows: rows `first + v` of `rows` for each `v`, in row
/// order (this hour's visitors of the chunk that starts at row `first`, [`Visitors::hour`]).
/// The kernel of [`shop`], callable on any struct-of-arrays storage. With allocators
/// ([`VisitHooks::allocating`]) it only draws, leaving [`PendingVisit`]s for [`settle_rows`].
///
/// Visitors are served a group at a time: their rows are first read together, so the cache
/// misses of a sparse hour overlap instead of coming one visit at a time.
#[inline]
pub fn shop_rows(
    visitors: &[u16],
    first: usize,
    rows: &mut ShopRows<'_>,
    cx: &VisitContext<'_>,
    buf: &mut ShopBuffer,
) {
    let ShopRows {
        ids,
        personas,
        plans,
        budget,
        loyalty,
        ledger,
        engagement,
    } = rows;
    let pending = cx.hooks.allocating();
    // At most one transaction a visitor: room for exactly that many (the buffer is kept from
    // hour to hour, so this allocates only when an hour is the chunk's busiest yet).
    if pending {
        buf.pending.reserve_exact(visitors.len());
    } else {
        buf.txs.reserve_exact(visitors.len());
    }
    let mut serve = |group: &[u16], buf: &mut ShopBuffer| {
        let mut touched = 0u64;
        for &i in group {
            let i = first + usize::from(i);
            touched ^= budget[i].left as u64
                ^ u64::from(loyalty[i].0.to_bits())
                ^ u64::from(ledger[i].visits)
                ^ u64::from(engagement[i].unmet.to_bits())
                ^ u64::from(ids[i].0);
        }
        std::hint::black_box(touched);
        for &i in group {
            let i = first + usize::from(i);
            let v = Visitor {
                agent: ids[i].0,
                persona: personas[i].0,
                minute: plans[i].minute,
                budget: &mut budget[i],
                loyalty: &mut loyalty[i],
                ledger: &mut ledger[i],
                engagement: &mut engagement[i],
            };
            if pending {
                let d = draw_visit(&v, cx, buf);
                buf.pending.push(PendingVisit {
                    agent: v.agent,
                    row: i as u32,
                    line_start: d.line_start as u32,
                    lines: d.lines as u16,
                    dropped: d.dropped,
                    persona: v.persona,
                    minute: v.minute,
                    cut: d.cut,
                    price_index: d.price_index as f32,
                });
            } else {
                visit(v, cx, buf);
            }
        }
    };
    for group in visitors.chunks(GATHER) {
        serve(group, buf);
    }
}

/// Settles the visits [`shop_rows`] left pending in `buf` once the allocators have run:
/// each pays for what it was granted, in the order drawn, its lines compacted in place.
pub fn settle_rows(rows: &mut ShopRows<'_>, cx: &VisitContext<'_>, buf: &mut ShopBuffer) {
    let pending = std::mem::take(&mut buf.pending);
    buf.txs.reserve_exact(pending.len());
    let mut write_at = 0;
    for p in &pending {
        let i = p.row as usize;
        let v = Visitor {
            agent: p.agent,
            persona: p.persona,
            minute: p.minute,
            budget: &mut rows.budget[i],
            loyalty: &mut rows.loyalty[i],
            ledger: &mut rows.ledger[i],
            engagement: &mut rows.engagement[i],
        };
        let d = Drawn {
            line_start: p.line_start as usize,
            lines: usize::from(p.lines),
            dropped: p.dropped,
            cut: p.cut,
            price_index: f64::from(p.price_index),
        };
        write_at = settle_visit::<true>(v, d, write_at, cx, buf);
    }
    buf.lines.truncate(write_at);
    buf.pending = pending;
    buf.pending.clear();
}

/// Visitors in an hour below which it is served on the calling thread. A visit costs about
/// 0.1 µs, so such an hour takes under half a millisecond; waking the pool and waiting for it
/// costs tens of microseconds a pass, and the other core is seldom idle meanwhile: it encodes
/// the previous hour's output. Seed parity (median hour 1,440 visitors) ran 0.22 s instead of
/// 0.24 (median of 41 alternating runs) with hours up to 4,096 served here, not only up to 64.
pub const PARALLEL_VISITS: u32 = 4096;

/// Serves every customer whose visit is planned for this hour: today's [`Visitors`] index
/// names them, chunk by chunk. With allocators, only draws their baskets ([`settle`] pays).
#[expect(
    clippy::too_many_arguments,
    reason = "a system's parameters list the resources it touches"
)]
pub fn shop(
    clock: Res<Clock>,
    today: Res<Today>,
    model: Res<Model>,
    hooks: Res<VisitHooks>,
    pool: Res<SimPool>,
    visitors: Res<Visitors>,
    mut records: ResMut<HourRecords>,
    mut customers: Query<Shopper>,
) {
    use rayon::prelude::*;
    let hour = clock.hour() as u8;
    let cx = VisitContext::new(&model, &today, &clock, &hooks);
    let quiet = visitors.in_hour(hour) < PARALLEL_VISITS;
    let mut first_chunk = 0;
    for (ids, personas, plans, mut budget, mut loyalty, mut ledger, mut engagement) in customers
        .contiguous_iter_mut()
        .expect("customer components are table-stored")
    {
        let chunks = ids.len().div_ceil(super::CHUNK);
        let first = first_chunk;
        first_chunk += chunks;
        let mut rows = ShopRows {
            ids,
            personas,
            plans,
            budget: budget.bypass_change_detection(),
            loyalty: loyalty.bypass_change_detection(),
            ledger: ledger.bypass_change_detection(),
            engagement: engagement.bypass_change_detection(),
        };
        if quiet {
            let buf = &mut records.add_segments(1)[0];
            for k in 0..chunks {
                let visitors = visitors.hour(first + k, hour);
                let at = k * super::CHUNK;
                shop_rows(visitors, at, &mut rows, &cx, buf);
            }
        } else {
            // One segment per chunk: which thread serves a chunk never matters.
            let segments = records.add_segments(chunks);
            pool.0.install(|| {
                rows.par_chunks(super::CHUNK)
                    .zip(segments.par_iter_mut())
                    .enumerate()
                    .for_each(|(k, (mut rows, buf))| {
                        let visitors = visitors.hour(first + k, hour);
                        shop_rows(visitors, 0, &mut rows, &cx, buf);
                    });
            });
        }
    }
}

/// With allocators: pays for the hour's visits once they have run, segment by segment as
/// [`shop`] wrote them (on the calling thread for a quiet hour, over the pool otherwise).
#[expect(
    clippy::too_many_arguments,
    reason = "a system's parameters list the resources it touches"
)]
pub fn settle(
    clock: Res<Clock>,
    today: Res<Today>,
    model: Res<Model>,
    hooks: Res<VisitHooks>,
    pool: Res<SimPool>,
    visitors: Res<Visitors>,
    mut records: ResMut<HourRecords>,
    mut customers: Query<Shopper>,
) {
    use rayon::prelude::*;
    let cx = VisitContext::new(&model, &today, &clock, &hooks);
    let quiet = visitors.in_hour(clock.hour() as u8) < PARALLEL_VISITS;
    let mut segments = records.segments_mut();
    for (ids, personas, plans, mut budget, mut loyalty, mut ledger, mut engagement) in customers
        .contiguous_iter_mut()
        .expect("customer components are table-stored")
    {
        let chunks = ids.len().div_ceil(super::CHUNK);
        let mut rows = ShopRows {
            ids,
            personas,
            plans,
            budget: budget.bypass_change_detection(),
            loyalty: loyalty.bypass_change_detection(),
            ledger: ledger.bypass_change_detection(),
            engagement: engagement.bypass_change_detection(),
        };
        let n = if quiet { 1 } else { chunks };
        let (mine, rest) = std::mem::take(&mut segments).split_at_mut(n);
        segments = rest;
        if quiet {
            settle_rows(&mut rows, &cx, &mut mine[0]);
        } else {
            pool.0.install(|| {
                rows.par_chunks(super::CHUNK)
                    .zip(mine.par_iter_mut())
                    .for_each(|(mut rows, buf)| settle_rows(&mut rows, &cx, buf));
            });
        }
    }
}

/// Empties the hour's records before anyone shops (every hour, visitors or not).
pub fn clear_records(mut records: ResMut<HourRecords>) {
    records.clear();
}

/// Run condition: someone plans to visit this hour.
pub fn anyone_visiting(clock: Res<Clock>, visitors: Res<Visitors>) -> bool {
    visitors.in_hour(clock.hour() as u8) > 0
}

/// Run condition: allocators run, so visits are settled after them.
pub fn two_pass(hooks: Res<VisitHooks>) -> bool {
    hooks.allocating()
}

/// The shopping behaviour.
pub struct ShoppingPlugin;

impl Plugin for ShoppingPlugin {
    fn name(&self) -> &str {
        "shopping"
    }

    fn build(&self, sim: &mut SimBuilder) -> crate::plugin::Result {
        sim.world.init_resource::<HourRecords>();
        sim.world.init_resource::<VisitHooks>();
        sim.schedule.add_systems(
            (clear_records, shop.run_if(anyone_visiting))
                .chain()
                .in_set(SimSet::Shop),
        );
        sim.schedule.add_systems(
            settle
                .run_if(two_pass)
                .run_if(anyone_visiting)
                .in_set(SimSet::Settle),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(quantity: u32, unit_price: i64) -> LineRecord {
        LineRecord {
            category: 0,
            quantity,
            unit_price,
        }
    }

    #[test]
    fn parallel_chunks_keep_every_column_on_the_same_rows() {
        use rayon::prelude::*;
        let n = 40u32;
        let ids: Vec<AgentId> = (0..n).map(AgentId).collect();
        let personas = vec![Persona(0); n as usize];
        let plans = vec![DayPlan::none(); n as usize];
        let mut budget: Vec<Budget> = (0..n)
            .map(|i| Budget {
                monthly: 0,
                left: i as i32,
            })
            .collect();
        let mut loyalty: Vec<Loyalty> = (0..n).map(|i| Loyalty(i as f32)).collect();
        let mut ledger = vec![Ledger::default(); n as usize];
        let mut engagement: Vec<Engagement> = (0..n).map(|i| Engagement::new(i as i16)).collect();
        let rows = ShopRows {
            ids: &ids,
            personas: &personas,
            plans: &plans,
            budget: &mut budget,
            loyalty: &mut loyalty,
            ledger: &mut ledger,
            engagement: &mut engagement,
        };
        let chunks: Vec<Vec<u32>> = rows
            .par_chunks(16)
            .map(|c| {
                for (k, id) in c.ids.iter().enumerate() {
                    let i = i64::from(id.0);
                    assert_eq!(i64::from(c.budget[k].left), i);
                    assert_eq!(c.loyalty[k].0, i as f32);
                    assert_eq!(i64::from(c.engagement[k].joined), i);
                    assert_eq!(c.plans.len(), c.ids.len());
                    c.ledger[k].visits = id.0 + 1;
                }
                c.ids.iter().map(|a| a.0).collect()
            })
            .collect();
        let lens: Vec<usize> = chunks.iter().map(Vec::len).collect();
        assert_eq!(lens, vec![16, 16, 8]);
        assert_eq!(chunks.concat(), (0..n).collect::<Vec<_>>());
        assert!(
            ledger
                .iter()
                .enumerate()
                .all(|(i, l)| l.visits == i as u32 + 1)
        );
    }

    #[test]
    fn a_basket_that_fits_is_untouched() {
        let mut lines = vec![line(2, 100), line(1, 300)];
        assert!(!trim_to_budget(&mut lines, 0, 500));
        assert_eq!(lines, vec![line(2, 100), line(1, 300)]);
    }

    #[test]
    fn trimming_cuts_quantities_then_drops_lines() {
        let mut lines = vec![line(2, 100), line(3, 150), line(1, 1000)];
        assert!(trim_to_budget(&mut lines, 0, 520));
        // 200 fits; 3 x 150 = 450 does not fit in 320, 2 units do; 1000 is dropped.
        assert_eq!(lines, vec![line(2, 100), line(2, 150)]);
        let mut lines = vec![line(1, 100)];
        assert!(trim_to_budget(&mut lines, 0, 0));
        assert!(lines.is_empty());
    }

    #[test]
    fn paced_wants_spend_the_trip_share_on_average() {
        // A want of Rs 60 with Rs 25 for wants this trip (and Rs 100 left in all): bought
        // 25/60 of the time, so it costs the trip's share on average; a need is cut to what
        // is left, never rounded up; with everything left for wants nothing is rounded up
        // either.
        let (n, mut bought) = (20_000u32, 0u32);
        for agent in 0..n {
            let mut rng = Stream::for_agent(9, agent, 0, Purpose::Basket);
            let mut lines = vec![line(1, 6000)];
            let cut = trim_by_need(&mut lines, 0, 10_000, 2_500, &[1], 0, &mut rng);
            assert_eq!(
                cut,
                if lines.is_empty() {
                    Cut::Deferred
                } else {
                    Cut::Kept
                }
            );
            bought += lines.len() as u32;
        }
        let share = f64::from(bought) / f64::from(n);
        assert!((share - 25.0 / 60.0).abs() < 0.015, "bought {share}");
        let mut rng = Stream::for_agent(9, 0, 0, Purpose::Basket);
        let mut need = vec![line(3, 6000)];
        assert_eq!(
            trim_by_need(&mut need, 0, 15_000, 7_500, &[0], 1, &mut rng),
            Cut::Short
        );
        assert_eq!(need, vec![line(2, 6000)]);
        let mut lines = vec![line(3, 6000)];
        assert_eq!(
            trim_by_need(&mut lines, 0, 15_000, 15_000, &[1], 0, &mut rng),
            Cut::Short
        );
        assert_eq!(lines, vec![line(2, 6000)]);
    }
}

#[cfg(test)]
pub(crate) mod distribution_tests {
    use super::*;
    use crate::calendar::Today;
    use crate::persona::{BasketItem, HourModel, Persona, PriceDist, VisitModel};

    /// A persona that always visits at 10:00 and buys from a small basket.
    pub(crate) fn persona() -> Persona {
        Persona {
            name: "t".into(),
            label: "t".into(),
            age: (30, 30),
            income: (1, 1),
            visits: VisitModel {
                first_visit: 1.0,
                recency: vec![0.5],
                weekday: [1.0; 7],
                cap: 1.0,
            },
            hours: HourModel::Slots(vec![(600, 660)]),
            budget: None,
            loyalty: None,
            churn: None,
            trips: Vec::new(),
            minor_per_major: 100.0,
            unit_cost: Vec::new(),
            warm_ages: Vec::new(),
            warm_states: Vec::new(),
            basket: vec![
                BasketItem {
                    category: 0,
                    p: 0.3,
                    quantity: (1, 3),
                    price: PriceDist::Uniform(100.0, 200.0),
                },
                BasketItem {
                    category: 1,
                    p: 0.8,
                    quantity: (2, 2),
                    price: PriceDist::Fixed(50.0),
                },
            ],
        }
    }
    #[test]
    fn a_constant_hazard_gives_geometric_warm_ages() {
        // Visits with p 0.5 every day, and a visit buys unless both lines are passed over:
        // q = 0.5 x (1 - 0.7 x 0.2) = 0.43, so P(A <= a) = 1 - 0.57^a.
        let cdf = persona().warm_age_cdf();
        let q = 0.5 * (1.0 - 0.7 * 0.2);
        for (i, &c) in cdf.iter().enumerate().take(30) {
            let a = i as i32 + 1;
            let expected = 1.0 - (1.0f64 - q).powi(a);
            assert!(
                (f64::from(c) - expected).abs() < 1e-6,
                "age {a}: {c} against {expected}"
            );
        }
        assert!(cdf.windows(2).all(|w| w[0] <= w[1]));
        assert!((cdf.last().copied().unwrap() - 1.0).abs() < 1e-6);
    }

    /// Draws `n` baskets and returns, per category: purchase share, mean quantity, mean unit
    /// price in rupees.
    fn stats(today: &Today, n: u32) -> Vec<(f64, f64, f64)> {
        stats_of(&persona(), today, n)
    }

    /// [`stats`] for persona `p`.
    fn stats_of(p: &Persona, today: &Today, n: u32) -> Vec<(f64, f64, f64)> {
        let mut bought = [0u32; 2];
        let mut qty = [0u64; 2];
        let mut price = [0i64; 2];
        let mut lines = Vec::new();
        for agent in 0..n {
            lines.clear();
            let mut rng = Stream::new(11, u64::from(agent), 5, 3);
            draw_basket(p, today, &mut rng, &mut lines);
            for l in &lines {
                let c = usize::from(l.category);
                bought[c] += 1;
                qty[c] += u64::from(l.quantity);
                price[c] += l.unit_price;
            }
        }
        (0..2)
            .map(|c| {
                let b = f64::from(bought[c]);
                (
                    b / f64::from(n),
                    qty[c] as f64 / b,
                    price[c] as f64 / b / 100.0,
                )
            })
            .collect()
    }

    #[test]
    fn baskets_follow_the_persona_on_an_ordinary_day() {
        let today = Today::neutral("2026-03-03".parse().unwrap(), 2);
        let s = stats(&today, 40_000);
        assert!((s[0].0 - 0.3).abs() < 0.01, "{s:?}");
        assert!((s[0].1 - 2.0).abs() < 0.03, "{s:?}");
        assert!((s[0].2 - 150.0).abs() < 1.0, "{s:?}");
        assert!((s[1].0 - 0.8).abs() < 0.01, "{s:?}");
        assert_eq!((s[1].1, s[1].2), (2.0, 50.0));
    }

    #[test]
    fn calendar_multipliers_shift_the_basket() {
        let mut today = Today::neutral("2026-11-08".parse().unwrap(), 2);
        today.purchase = vec![2.0, 1.5];
        today.quantity = vec![1.3, 1.0];
        today.price = vec![(1.05, 1.15), (1.0, 1.0)];
        let s = stats(&today, 40_000);
        // 0.3 x 2 = 0.6; 0.8 x 1.5 = 1.2, capped at PURCHASE_CAP.
        assert!((s[0].0 - 0.6).abs() < 0.01, "{s:?}");
        assert!((s[1].0 - f64::from(PURCHASE_CAP)).abs() < 0.01, "{s:?}");
        // floor(1.3), floor(2.6), floor(3.9) = 1, 2, 3: the mean stays 2.
        assert!((s[0].1 - 2.0).abs() < 0.03, "{s:?}");
        // Uniform(100, 200) x Uniform(1.05, 1.15): mean 150 x 1.1 = 165.
        assert!((s[0].2 - 165.0).abs() < 1.0, "{s:?}");
    }

    #[test]
    fn kinds_of_trip_scale_every_category_under_the_cap() {
        // Half the visits top-ups (x 0.25), half big shops (x 1.75).
        let mut p = persona();
        p.trips = vec![(0.5, 0.25), (1.0, 1.75)];
        let today = Today::neutral("2026-03-03".parse().unwrap(), 2);
        let s = stats_of(&p, &today, 40_000);
        // 0.3: (0.075 + 0.525) / 2 = 0.3, the persona's own share.
        assert!((s[0].0 - 0.3).abs() < 0.01, "{s:?}");
        // 0.8: (0.2 + min(1.4, 0.95)) / 2 = 0.575: the cap takes the big shops' excess.
        assert!((s[1].0 - 0.575).abs() < 0.01, "{s:?}");
        // Quantities and prices are the persona's whatever the trip.
        assert!((s[0].1 - 2.0).abs() < 0.03, "{s:?}");
        assert_eq!((s[1].1, s[1].2), (2.0, 50.0));
    }
}
