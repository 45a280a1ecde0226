//! Hooks inside a visit: how a behaviour changes what a customer is offered, drops or changes
//! basket lines, shares out a scarce resource, and reacts to how a visit went, without
//! editing the visit itself.
//!
//! A visit ([`crate::systems::shopping::visit`]) runs in this order, for each of the hour's
//! visitors in customer order:
//!
//! 1. **offer** — for each category of the persona's basket, every hook's
//!    [`VisitHook::offer`] may change the purchase probability, quantity factor and price
//!    multiplier ([`Offer`]) before the draw (a promotion);
//! 2. **line** — each drawn line passes every hook's [`VisitHook::line`], which may keep,
//!    change or drop it, naming a counted reason ([`LineVerdict`]);
//! 3. the basket is trimmed to the budget;
//! 4. **allocate** — only if some plugin added an allocator ([`crate::plugin::SimBuilder::add_allocator`]):
//!    once every visitor of the hour has drawn, allocators run one after another, each
//!    seeing the whole hour's demand in a fixed order — visit minute, then customer id
//!    ([`crate::records::HourRecords::allocate`]) — and granting or refusing units of a
//!    shared resource (a store's stock);
//! 5. **settle** — payment, budget, ledger and engagement, then every hook's
//!    [`VisitHook::after_visit`] with the [`VisitOutcome`] (loyalty's update is one).
//!
//! Steps 1-3 and 5 run in parallel over chunks of customers; a hook sees one visit at a time
//! through `&self`, so it keeps no mutable state of its own: what it counts goes to
//! [`Tallies`] (per-chunk integer sums, added up per hour in a fixed order, so they are the
//! same at any thread count), what it changes about a customer goes through
//! [`CustomerState`]. Step 4 is sequential, so its results cannot depend on the thread count
//! either. Without allocators, steps 1-5 run fused, visit by visit, as they always did.

use std::sync::Arc;

use bevy_ecs::prelude::*;

use crate::calendar::{Clock, Today};
use crate::components::{Budget, Engagement, Ledger, Loyalty};
use crate::records::LineRecord;

/// A counter hooks and allocators add to: a reason for dropping, changing or refusing lines,
/// or any integer a behaviour sums (revenue, cost). Obtained once at build from
/// [`crate::plugin::SimBuilder::tally`]; its hour's sum is
/// [`crate::records::HourRecords::tally`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tally(pub(crate) u16);

impl Tally {
    /// Its index among the simulation's tallies.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// One chunk's tallies for the hour: integer sums, so adding the chunks up in any grouping
/// gives the same totals.
#[derive(Debug, Clone, Default)]
pub struct Tallies(Vec<i64>);

impl Tallies {
    /// Adds `v` to `t`.
    #[inline]
    pub fn add(&mut self, t: Tally, v: i64) {
        let i = t.index();
        if self.0.len() <= i {
            self.0.resize(i + 1, 0);
        }
        self.0[i] += v;
    }

    /// The sum so far of `t`.
    pub fn get(&self, t: Tally) -> i64 {
        self.0.get(t.index()).copied().unwrap_or(0)
    }

    /// The sums, by tally index (shorter than the tally list if the last were never added to).
    pub fn values(&self) -> &[i64] {
        &self.0
    }

    /// Adds every tally of `other` into these.
    pub fn absorb(&mut self, other: &Tallies) {
        if self.0.len() < other.0.len() {
            self.0.resize(other.0.len(), 0);
        }
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a += b;
        }
    }

    /// Sets every tally to zero.
    pub fn clear(&mut self) {
        self.0.fill(0);
    }
}

/// Who is visiting, when, and the day's conditions: what a hook may read about a visit.
#[derive(Debug, Clone, Copy)]
pub struct VisitInfo<'a> {
    /// The customer's id.
    pub agent: u32,
    /// The customer's persona index.
    pub persona: u8,
    /// Minute of the hour.
    pub minute: u8,
    /// The customer's loyalty before the visit.
    pub loyalty: f32,
    /// The clock (date, day, hour).
    pub clock: &'a Clock,
    /// Today's calendar multipliers.
    pub today: &'a Today,
}

/// What a customer is offered in one category before the basket is drawn. Hooks multiply or
/// replace these; the purchase probability is capped at
/// [`crate::systems::shopping::PURCHASE_CAP`] afterwards.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Offer {
    /// Catalog index.
    pub category: u16,
    /// Probability of buying the category: the persona's, times today's factor.
    pub p: f32,
    /// Factor on the sampled quantity (today's; 1 = as the persona buys).
    pub quantity: f32,
    /// Factor on the unit price after the calendar's (1 = no discount, 0.8 = 20% off).
    pub price: f64,
}

/// What a line hook decided about a drawn basket line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineVerdict {
    /// Left as drawn.
    Keep,
    /// Changed in place (quantity or price); the reason's tally counts one line.
    Changed(Tally),
    /// Removed from the basket; the reason's tally counts one line.
    Dropped(Tally),
}

/// How a visit went, as the after-visit hooks see it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct VisitOutcome {
    /// Something was bought.
    pub bought: bool,
    /// The basket cost more than the budget had left, and was trimmed.
    pub trimmed: bool,
    /// Wants were held back for later in the pay period (the money was there).
    pub deferred: bool,
    /// Prices paid over reference prices (1 = usual prices).
    pub price_index: f32,
    /// Paid, paise.
    pub total: i64,
    /// Lines bought.
    pub lines: u16,
    /// Lines line hooks dropped.
    pub dropped: u16,
    /// Lines an allocator refused entirely (none of the units were granted).
    pub refused: u16,
}

/// The customer state an after-visit hook may change.
pub struct CustomerState<'a> {
    /// Budget (already charged for this visit).
    pub budget: &'a mut Budget,
    /// Loyalty.
    pub loyalty: &'a mut Loyalty,
    /// Visit state (recency, unmet needs).
    pub engagement: &'a mut Engagement,
    /// Visits, purchases and spend so far (this visit included).
    pub ledger: &'a Ledger,
}

/// A behaviour's hooks into each visit. Every method does nothing by default; a hook
/// implements those it needs and says which in [`Stages`] when it is added.
pub trait VisitHook: Send + Sync + 'static {
    /// Before a category is drawn: change what the customer is offered.
    fn offer(&self, _visit: &VisitInfo<'_>, _offer: &mut Offer, _tallies: &mut Tallies) {}

    /// After a line is drawn: keep it, change it in place, or drop it, naming the reason.
    fn line(
        &self,
        _visit: &VisitInfo<'_>,
        _line: &mut LineRecord,
        _tallies: &mut Tallies,
    ) -> LineVerdict {
        LineVerdict::Keep
    }

    /// After the visit is paid for (or came to nothing): react to how it went; `basket` is
    /// what was paid for, line by line.
    fn after_visit(
        &self,
        _visit: &VisitInfo<'_>,
        _outcome: &VisitOutcome,
        _basket: &[LineRecord],
        _customer: &mut CustomerState<'_>,
        _tallies: &mut Tallies,
    ) {
    }
}

/// Which of its methods a hook implements: only those are called, so a hook that only reacts
/// after a visit costs nothing per line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stages {
    /// [`VisitHook::offer`].
    pub offer: bool,
    /// [`VisitHook::line`].
    pub line: bool,
    /// [`VisitHook::after_visit`].
    pub after_visit: bool,
}

impl Stages {
    /// Only [`VisitHook::offer`].
    pub const OFFER: Stages = Stages {
        offer: true,
        line: false,
        after_visit: false,
    };
    /// Only [`VisitHook::line`].
    pub const LINE: Stages = Stages {
        offer: false,
        line: true,
        after_visit: false,
    };
    /// Only [`VisitHook::after_visit`].
    pub const AFTER_VISIT: Stages = Stages {
        offer: false,
        line: false,
        after_visit: true,
    };

    /// These stages and `other`'s.
    pub const fn and(self, other: Stages) -> Stages {
        Stages {
            offer: self.offer || other.offer,
            line: self.line || other.line,
            after_visit: self.after_visit || other.after_visit,
        }
    }
}

/// Every hook of the simulation, by stage, in the order the plugins added them; the names of
/// its tallies; whether an allocation step runs.
#[derive(Resource, Default, Clone)]
pub struct VisitHooks {
    pub(crate) offer: Vec<Arc<dyn VisitHook>>,
    pub(crate) line: Vec<Arc<dyn VisitHook>>,
    pub(crate) after_visit: Vec<Arc<dyn VisitHook>>,
    pub(crate) tallies: Vec<String>,
    pub(crate) allocators: usize,
}

impl VisitHooks {
    /// Adds `hook` to the stages it implements.
    pub fn add(&mut self, hook: Arc<dyn VisitHook>, stages: Stages) {
        if stages.offer {
            self.offer.push(Arc::clone(&hook));
        }
        if stages.line {
            self.line.push(Arc::clone(&hook));
        }
        if stages.after_visit {
            self.after_visit.push(hook);
        }
    }

    /// The tally named `name`, made on first use: plugins name theirs `plugin.what`.
    pub fn tally(&mut self, name: &str) -> Tally {
        if let Some(i) = self.tallies.iter().position(|t| t == name) {
            return Tally(i as u16);
        }
        let t = Tally(u16::try_from(self.tallies.len()).expect("fewer than 65,536 tallies"));
        self.tallies.push(name.to_owned());
        t
    }

    /// The names of the tallies, by index.
    pub fn tally_names(&self) -> &[String] {
        &self.tallies
    }

    /// Whether any hook changes the basket as it is drawn (offer or line stage).
    #[inline]
    pub fn shape_baskets(&self) -> bool {
        !self.offer.is_empty() || !self.line.is_empty()
    }

    /// Whether the hour's demand goes through allocators between drawing and settling.
    #[inline]
    pub fn allocating(&self) -> bool {
        self.allocators > 0
    }

    /// Applies the offer hooks to one category's offer.
    #[inline]
    pub fn offer(&self, visit: &VisitInfo<'_>, offer: &mut Offer, tallies: &mut Tallies) {
        for h in &self.offer {
            h.offer(visit, offer, tallies);
        }
    }

    /// Passes a drawn line through the line hooks; whether it stays in the basket. A dropped
    /// line is not shown to later hooks.
    #[inline]
    pub fn line(
        &self,
        visit: &VisitInfo<'_>,
        line: &mut LineRecord,
        tallies: &mut Tallies,
    ) -> bool {
        for h in &self.line {
            match h.line(visit, line, tallies) {
                LineVerdict::Keep => {}
                LineVerdict::Changed(t) => tallies.add(t, 1),
                LineVerdict::Dropped(t) => {
                    tallies.add(t, 1);
                    return false;
                }
            }
        }
        true
    }

    /// Runs the after-visit hooks.
    #[inline]
    pub fn after_visit(
        &self,
        visit: &VisitInfo<'_>,
        outcome: &VisitOutcome,
        basket: &[LineRecord],
        customer: &mut CustomerState<'_>,
        tallies: &mut Tallies,
    ) {
        for h in &self.after_visit {
            h.after_visit(visit, outcome, basket, customer, tallies);
        }
    }
}

/// The label of the `n`th allocator's system: allocators run one after another, in the order
/// they were added.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AllocatorStep(pub usize);

#[cfg(test)]
mod tests {
    use super::*;

    struct DropCategory(u16, Tally);

    impl VisitHook for DropCategory {
        fn line(&self, _: &VisitInfo<'_>, line: &mut LineRecord, _: &mut Tallies) -> LineVerdict {
            if line.category == self.0 {
                LineVerdict::Dropped(self.1)
            } else {
                LineVerdict::Keep
            }
        }
    }

    struct Halve(Tally);

    impl VisitHook for Halve {
        fn line(&self, _: &VisitInfo<'_>, line: &mut LineRecord, _: &mut Tallies) -> LineVerdict {
            line.unit_price /= 2;
            LineVerdict::Changed(self.0)
        }
    }

    #[test]
    fn line_hooks_run_in_order_and_count_their_reasons() {
        let mut hooks = VisitHooks::default();
        let dropped = hooks.tally("t.dropped");
        let halved = hooks.tally("t.halved");
        assert_eq!(hooks.tally("t.dropped"), dropped, "one tally per name");
        hooks.add(Arc::new(DropCategory(3, dropped)), Stages::LINE);
        hooks.add(Arc::new(Halve(halved)), Stages::LINE);
        assert!(hooks.shape_baskets() && !hooks.allocating());
        let clock = Clock::new("2026-01-01".parse().unwrap(), 1);
        let today = Today::neutral("2026-01-01".parse().unwrap(), 4);
        let visit = VisitInfo {
            agent: 1,
            persona: 0,
            minute: 0,
            loyalty: 0.5,
            clock: &clock,
            today: &today,
        };
        let mut tallies = Tallies::default();
        let mut kept = LineRecord {
            category: 1,
            quantity: 2,
            unit_price: 100,
        };
        assert!(hooks.line(&visit, &mut kept, &mut tallies));
        assert_eq!(kept.unit_price, 50);
        let mut gone = LineRecord {
            category: 3,
            quantity: 1,
            unit_price: 100,
        };
        assert!(!hooks.line(&visit, &mut gone, &mut tallies));
        assert_eq!(gone.unit_price, 100, "a dropped line reaches no later hook");
        assert_eq!((tallies.get(dropped), tallies.get(halved)), (1, 1));
        let mut sum = Tallies::default();
        sum.absorb(&tallies);
        sum.absorb(&tallies);
        assert_eq!(sum.get(halved), 2);
    }

    #[test]
    fn a_hook_is_called_only_for_its_stages() {
        let mut hooks = VisitHooks::default();
        let t = hooks.tally("x");
        hooks.add(Arc::new(Halve(t)), Stages::AFTER_VISIT);
        assert!(!hooks.shape_baskets());
        assert_eq!(hooks.after_visit.len(), 1);
        let both = Stages::OFFER.and(Stages::LINE);
        assert!(both.offer && both.line && !both.after_visit);
    }
}
