//! Checked persona parameters and the pure sampling functions the systems use: visit
//! likelihood, visit time, basket contents and prices.
//!
//! Everything here is a plain function of its inputs and a random stream, so it can be tested
//! without a world and reused by any system.

use crate::calendar::PayPeriod;
use crate::rng::Stream;

/// A validated shopper persona. Index in [`crate::scenario::Scenario::personas`] is its id.
#[derive(Debug, Clone)]
pub struct Persona {
    /// Identifier used in scenario files and outputs.
    pub name: String,
    /// Human label for reports.
    pub label: String,
    /// Age range, inclusive.
    pub age: (u32, u32),
    /// Monthly income range in the scenario's currency (major units), inclusive.
    pub income: (u64, u64),
    /// Visit likelihood.
    pub visits: VisitModel,
    /// Visit time of day.
    pub hours: HourModel,
    /// Budget rules; `None` means unlimited.
    pub budget: Option<BudgetParams>,
    /// Loyalty rules; `None` means loyalty stays at 1.
    pub loyalty: Option<LoyaltyParams>,
    /// Attrition rules; `None` means the persona never churns on its own.
    pub churn: Option<ChurnParams>,
    /// Basket lines, one per category.
    pub basket: Vec<BasketItem>,
    /// Kinds of trip as (cumulative share, purchase factor), the last share 1; empty when
    /// every visit is alike (and then no trip is drawn, so the streams are as without).
    pub trips: Vec<(f32, f32)>,
    /// Minor units of the scenario's currency in one unit of this persona's prices and
    /// incomes (100: prices in rupees, amounts in paise).
    pub minor_per_major: f64,
    /// What a unit of each catalog category costs the retailer, minor units: the persona's
    /// reference price less the category's margin ([`Persona::unit_costs`]). Empty when
    /// the catalog states no margins.
    pub unit_cost: Vec<i64>,
    /// For a warm start, the CDF of the starting customers' days since their last purchase
    /// ([`Persona::warm_age_cdf`]); empty for a cold start (nobody has bought yet).
    pub warm_ages: Vec<f32>,
    /// For a warm start with loyalty or a budget, the states of the burn-in's sampled
    /// customers ([`crate::warm`]) that starting customers take; empty otherwise.
    pub warm_states: Vec<crate::warm::WarmState>,
}

/// The longest gap since the last purchase a warm start draws, days: past it the visit
/// model no longer changes, and a run's day indices stay far from their bounds.
pub const WARM_MAX_AGE: usize = 3650;

impl Persona {
    /// Each catalog category's cost of a unit to the retailer, minor units, for a catalog
    /// of `margins` (empty when it states none): the basket line's reference price (its
    /// distribution's mean) less the category's gross margin. Cost is fixed at regular
    /// prices, so sales, promotions and price factors move revenue and margin, not cost.
    pub fn unit_costs(&self, margins: &[Option<f64>]) -> Vec<i64> {
        if margins.iter().any(Option::is_none) || margins.is_empty() {
            return Vec::new();
        }
        let mut cost = vec![0; margins.len()];
        for b in &self.basket {
            let c = usize::from(b.category);
            let m = margins[c].unwrap_or(0.0);
            cost[c] = (b.price.reference() * self.minor_per_major * (1.0 - m)).round() as i64;
        }
        cost
    }

    /// The steady state of days since the last purchase, as a CDF over ages `1..=len` (an
    /// age of `a` is a last purchase `a` days before day 0), for a warm start.
    ///
    /// Purchases form a renewal process: at `d` days since the last one, a customer buys
    /// with hazard `q(d)` = the visit probability (recency curve at `d`, the mean weekday
    /// factor, loyalty's factor at the middle of the initial range, capped) times the chance
    /// a visit buys anything (`1 - Π(1 - p)` over the basket, each `p` capped as shopping
    /// caps it). In the long run the age of a customer's last purchase has
    /// `P(A = a) ∝ Π_{k<a} (1 - q(k))`: the chance of going `a - 1` days without buying.
    /// Calendar and budget effects are left out: the start is an ordinary day's steady state.
    pub fn warm_age_cdf(&self) -> Vec<f32> {
        let mass = self.survival();
        let total: f64 = mass.iter().sum();
        let mut acc = 0.0;
        mass.iter()
            .map(|m| {
                acc += m / total;
                acc as f32
            })
            .collect()
    }

    /// The chance a visit on an ordinary day buys anything: `1 - Π(1 - p)` over the basket,
    /// each `p` capped as shopping caps it, averaged over the kinds of trip.
    pub fn buys(&self) -> f64 {
        let buys = |f: f32| {
            1.0 - self.basket.iter().fold(1.0, |acc, b| {
                acc * (1.0 - f64::from((b.p * f).min(crate::systems::shopping::PURCHASE_CAP)))
            })
        };
        if self.trips.is_empty() {
            return buys(1.0);
        }
        let mut below = 0.0;
        self.trips
            .iter()
            .map(|&(cum, f)| {
                let share = f64::from(cum - below);
                below = cum;
                share * buys(f)
            })
            .sum()
    }

    /// The purchase factor of a visit's kind of trip (1 without kinds), drawn from `rng`
    /// only when the persona has kinds.
    #[inline]
    pub fn trip(&self, rng: &mut Stream) -> f32 {
        match self.trips.last() {
            None => 1.0,
            Some(&(_, last)) => {
                let u = rng.unit_f32();
                self.trips.iter().find(|t| u < t.0).map_or(last, |t| t.1)
            }
        }
    }

    /// `Π_{k<a} (1 − q(k))` for ages `a = 1, 2, …`, until it is negligible.
    fn survival(&self) -> Vec<f64> {
        let v = &self.visits;
        let weekday = v.weekday.iter().map(|&w| f64::from(w)).sum::<f64>() / 7.0;
        let loyalty = self.loyalty.as_ref().map_or(1.0, |l| {
            f64::from(l.visit_factor((l.initial.0 + l.initial.1) / 2.0))
        });
        let buys = self.buys();
        let mut survive = 1.0f64;
        let mut mass = Vec::with_capacity(64);
        for a in 1..=WARM_MAX_AGE {
            mass.push(survive);
            let visit =
                (f64::from(v.base(Some(a as u32))) * weekday * loyalty).min(f64::from(v.cap));
            survive *= 1.0 - (visit * buys).clamp(0.0, 1.0);
            if survive < 1e-9 {
                break;
            }
        }
        mass
    }
}

/// Daily visit likelihood.
#[derive(Debug, Clone)]
pub struct VisitModel {
    /// Probability for a customer who has never bought (not scaled, not capped).
    pub first_visit: f32,
    /// `table[d]` is the base probability at `d` days since the last purchase; the last
    /// entry holds for every longer gap.
    pub recency: Vec<f32>,
    /// Weekday factors, Monday first.
    pub weekday: [f32; 7],
    /// Upper bound after all factors.
    pub cap: f32,
}

impl VisitModel {
    /// Base probability from the recency curve. `days_since` is `None` for a customer who
    /// has never bought.
    #[inline]
    pub fn base(&self, days_since: Option<u32>) -> f32 {
        match days_since {
            None => self.first_visit,
            Some(d) => {
                let last = self.recency.len() - 1;
                self.recency[(d as usize).min(last)]
            }
        }
    }

    /// Builds the lookup table from `(days, p)` steps sorted by `days`.
    pub fn table_from_steps(steps: &[(u32, f32)], max_days: u32) -> Vec<f32> {
        // Steps past the longest run can never apply; the table stops there, so its size
        // never depends on the numbers a scenario writes.
        let max = steps.last().map_or(0, |s| s.0.min(max_days)) as usize;
        let mut table = vec![0.0; max + 1];
        let mut steps = steps.iter().peekable();
        let mut p = 0.0;
        for (d, slot) in table.iter_mut().enumerate() {
            while let Some(s) = steps.next_if(|s| s.0 as usize <= d) {
                p = s.1;
            }
            *slot = p;
        }
        table
    }
}

/// When in the day a visit happens.
#[derive(Debug, Clone)]
pub enum HourModel {
    /// `(start, end)` minute-of-day windows, end exclusive; one is chosen uniformly.
    Slots(Vec<(u16, u16)>),
    /// Cumulative hour weights, normalised so the last is 1.
    Profile([f32; 24]),
}

impl HourModel {
    /// Draws a minute of the day (0..1440).
    #[inline]
    pub fn sample_minute(&self, rng: &mut Stream) -> u16 {
        match self {
            HourModel::Slots(slots) => {
                let (start, end) = slots[rng.below(slots.len() as u64) as usize];
                start + rng.below(u64::from(end - start)) as u16
            }
            HourModel::Profile(cumulative) => {
                let u = rng.unit_f32();
                let hour = cumulative.iter().position(|&c| u < c).unwrap_or(23) as u16;
                hour * 60 + rng.below(60) as u16
            }
        }
    }
}

/// Monthly budget rules.
#[derive(Debug, Clone)]
pub struct BudgetParams {
    /// Share of monthly income for this retailer.
    pub income_share: f64,
    /// Day of month the budget is refilled.
    pub payday: u32,
    /// Visit factor when the budget is exhausted.
    pub exhausted_visit_factor: f32,
    /// Each category's rank by need (0 most needed, `u16::MAX` unlisted), by category id:
    /// what an over-budget basket keeps first. Empty: basket order.
    pub need: Vec<u16>,
    /// Ranks below this are needs, paid from everything left; the rest are wants, paced
    /// over the pay period.
    pub needs: u16,
}

impl BudgetParams {
    /// What a trip may spend on wants: the month's money for the days since the last
    /// purchase (`days_since`, at least 1; everything left for a customer who never
    /// bought), up to what is left. Spending on wants so keeps the month's pace across
    /// trips, and across paydays.
    #[inline]
    pub fn for_wants(
        &self,
        left: i64,
        monthly: i64,
        days_since: Option<u32>,
        pay: PayPeriod,
    ) -> i64 {
        match days_since {
            Some(d) => {
                let accrued = monthly as f64 * f64::from(d.max(1)) / f64::from(pay.period);
                left.min(accrued.round() as i64)
            }
            None => left,
        }
    }

    /// Visit factor given what is left of the monthly budget, `pay` the place of today in
    /// the pay period: 1 while at least the pro-rata share of the month for the rest of the
    /// period (counting today) is left, falling linearly to `exhausted_visit_factor` as
    /// what is left falls to 0.
    #[inline]
    pub fn visit_factor(&self, left: i64, monthly: i64, pay: PayPeriod) -> f32 {
        let due = monthly as f32 * pay.through();
        if due <= 0.0 {
            return 1.0;
        }
        let share = (left.max(0) as f32 / due).min(1.0);
        self.exhausted_visit_factor + (1.0 - self.exhausted_visit_factor) * share
    }
}

/// Loyalty dynamics.
#[derive(Debug, Clone, Copy)]
pub struct LoyaltyParams {
    /// Initial loyalty range.
    pub initial: (f32, f32),
    /// Visit factor = 1 - visit_effect * (1 - loyalty).
    pub visit_effect: f32,
    /// Gain after a full purchase, as a share of the distance to 1.
    pub gain: f32,
    /// Daily multiplicative decay.
    pub decay: f32,
    /// Loss when the budget forced a trim.
    pub trim_penalty: f32,
    /// Price-index excess tolerated before a shock.
    pub shock_threshold: f32,
    /// Loss per unit of excess beyond the threshold.
    pub shock_penalty: f32,
}

impl LoyaltyParams {
    /// Visit factor for a loyalty level.
    #[inline]
    pub fn visit_factor(&self, loyalty: f32) -> f32 {
        1.0 - self.visit_effect * (1.0 - loyalty)
    }
}

/// Why a customer left: the largest term of the hazard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ChurnCause {
    /// Only the base rate.
    Base,
    /// Lost loyalty.
    Loyalty,
    /// Visits that bought nothing or had to be trimmed.
    Unmet,
    /// Budget trims.
    Budget,
    /// Long since the last purchase.
    Lapse,
    /// Decided by a churn model (drive mode).
    Model,
}

impl ChurnCause {
    /// The name written to outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            ChurnCause::Base => "base",
            ChurnCause::Loyalty => "loyalty",
            ChurnCause::Unmet => "unmet_visits",
            ChurnCause::Budget => "budget",
            ChurnCause::Lapse => "lapse",
            ChurnCause::Model => "model",
        }
    }
}

/// Attrition parameters (see `ChurnFile` in the schema for the formula).
#[derive(Debug, Clone, Copy)]
pub struct ChurnParams {
    /// Base daily hazard.
    pub base: f32,
    /// Weight of lost loyalty.
    pub loyalty: f32,
    /// Weight of recent unmet visits.
    pub unmet: f32,
    /// Weight of recent budget trims.
    pub trims: f32,
    /// Weight of months since the last purchase (capped at 3).
    pub lapse: f32,
    /// Daily decay of the unmet and trim counts.
    pub memory_decay: f32,
}

/// Longest lapse, in months, that still raises the hazard.
pub const MAX_LAPSE_MONTHS: f32 = 3.0;

impl ChurnParams {
    /// The daily hazard and its main cause. `days_since` is `None` for a customer who has
    /// never bought (no lapse term).
    #[inline]
    pub fn hazard(
        &self,
        loyalty: f32,
        unmet: f32,
        trims: f32,
        days_since: Option<u32>,
    ) -> (f32, ChurnCause) {
        self.hazard_of(&self.terms(loyalty, unmet, trims, days_since))
    }

    /// Whether the customer leaves on a draw `u` on `[0, 1)`: the hazard and its cause if so.
    /// Equal to comparing `u` with [`ChurnParams::hazard`]; the pressures are weighed once,
    /// and most draws are decided by a bound, without the exponential.
    #[inline]
    pub fn leaves(
        &self,
        u: f32,
        loyalty: f32,
        unmet: f32,
        trims: f32,
        days_since: Option<u32>,
    ) -> Option<(f32, ChurnCause)> {
        let terms = self.terms(loyalty, unmet, trims, days_since);
        if self.stays_below(u, Self::sum(&terms)) {
            return None;
        }
        let (h, cause) = self.hazard_of(&terms);
        (u < h).then_some((h, cause))
    }

    /// The hazard and its main cause from the exponent's terms.
    #[inline]
    fn hazard_of(&self, terms: &[(f32, ChurnCause); 4]) -> (f32, ChurnCause) {
        let cause = terms
            .iter()
            .filter(|t| t.0 > 0.0)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map_or(ChurnCause::Base, |t| t.1);
        ((self.base * Self::sum(terms).exp()).min(1.0), cause)
    }

    #[inline]
    fn sum(terms: &[(f32, ChurnCause); 4]) -> f32 {
        terms.iter().map(|t| t.0).sum()
    }

    /// Whether a draw `u` on `[0, 1)` certainly does not fall under the hazard of exponent
    /// `sum`, decided without the exponential: `exp(x) <= 1 + x + x²` for every `x <= 1`, and
    /// the bound keeps a relative margin of 1e-4 over the rounding of either side. Most
    /// customers on most days are decided here; the others need the hazard itself. Gives the
    /// same decisions as comparing with the hazard.
    #[inline]
    fn stays_below(&self, u: f32, sum: f32) -> bool {
        sum <= 1.0 && u >= self.base * (1.0 + sum + sum * sum) * 1.0001
    }

    /// The terms of the hazard's exponent (the weighted pressures), each with its cause.
    #[inline]
    fn terms(
        &self,
        loyalty: f32,
        unmet: f32,
        trims: f32,
        days_since: Option<u32>,
    ) -> [(f32, ChurnCause); 4] {
        let lapse_months = days_since.map_or(0.0, |d| (d as f32 / 30.0).min(MAX_LAPSE_MONTHS));
        [
            (self.loyalty * (1.0 - loyalty), ChurnCause::Loyalty),
            (self.unmet * unmet, ChurnCause::Unmet),
            (self.trims * trims, ChurnCause::Budget),
            (self.lapse * lapse_months, ChurnCause::Lapse),
        ]
    }
}

/// One category line of a persona's basket.
#[derive(Debug, Clone)]
pub struct BasketItem {
    /// Catalog index.
    pub category: u16,
    /// Purchase probability per visit.
    pub p: f32,
    /// Quantity range, inclusive.
    pub quantity: (u32, u32),
    /// Unit price distribution, rupees.
    pub price: PriceDist,
}

/// A unit price distribution in the scenario's currency (major units).
#[derive(Debug, Clone, Copy)]
pub enum PriceDist {
    /// Uniform on `[lo, hi]`.
    Uniform(f64, f64),
    /// Log-normal: `exp(mu + sigma * z)` clamped to `[min, max]`.
    LogNormal {
        /// ln(median).
        mu: f64,
        /// Sigma of ln(price).
        sigma: f64,
        /// Lower clamp.
        min: f64,
        /// Upper clamp.
        max: f64,
    },
    /// A fixed price.
    Fixed(f64),
}

impl PriceDist {
    /// Draws a price in major units.
    #[inline(always)]
    pub fn sample(&self, rng: &mut Stream) -> f64 {
        match *self {
            PriceDist::Uniform(lo, hi) => lo + (hi - lo) * rng.unit_f64(),
            PriceDist::LogNormal {
                mu,
                sigma,
                min,
                max,
            } => (mu + sigma * rng.standard_normal()).exp().clamp(min, max),
            PriceDist::Fixed(p) => p,
        }
    }

    /// The reference price used for the price index (loyalty price shocks).
    pub fn reference(&self) -> f64 {
        match *self {
            PriceDist::Uniform(lo, hi) => (lo + hi) / 2.0,
            PriceDist::LogNormal {
                mu,
                sigma,
                min,
                max,
            } => (mu + sigma * sigma / 2.0).exp().clamp(min, max),
            PriceDist::Fixed(p) => p,
        }
    }
}

/// A quantity factor never raises a line above this multiple of its range's maximum.
pub const MAX_QUANTITY_FACTOR: u32 = 2;

/// Draws a quantity and applies a calendar quantity factor: `min(floor(q * f), 2 * max)`,
/// at least 1.
#[inline]
pub fn sample_quantity(range: (u32, u32), factor: f32, rng: &mut Stream) -> u32 {
    let q = range.0 + rng.below(u64::from(range.1 - range.0 + 1)) as u32;
    if factor == 1.0 {
        return q;
    }
    let scaled = (q as f32 * factor).floor() as u32;
    scaled.clamp(1, range.1 * MAX_QUANTITY_FACTOR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_units_cost_is_its_reference_price_less_the_margin_and_needs_every_margin() {
        let mut p = crate::systems::shopping::distribution_tests::persona();
        p.basket = vec![
            BasketItem {
                category: 1,
                p: 0.5,
                quantity: (1, 1),
                price: PriceDist::Uniform(80.0, 120.0),
            },
            BasketItem {
                category: 0,
                p: 0.5,
                quantity: (1, 1),
                price: PriceDist::Fixed(10.0),
            },
        ];
        // Rs 100 at 25% margin: 7,500 paise; Rs 10 at 10%: 900; category 2 is not bought.
        assert_eq!(
            p.unit_costs(&[Some(0.1), Some(0.25), Some(0.5)]),
            vec![900, 7_500, 0]
        );
        assert!(p.unit_costs(&[Some(0.1), None, Some(0.5)]).is_empty());
        assert!(p.unit_costs(&[]).is_empty());
    }

    #[test]
    fn recency_table_is_the_last_step_at_or_before_each_day_and_stops_at_the_limit() {
        let steps = [(2, 0.1), (3, 0.2), (9, 0.5), (40, 0.9)];
        let t = VisitModel::table_from_steps(&steps, 30);
        assert_eq!(t.len(), 31, "steps past the limit never apply");
        for (d, &p) in t.iter().enumerate() {
            let naive = steps
                .iter()
                .rev()
                .find(|s| s.0 as usize <= d)
                .map_or(0.0, |s| s.1);
            assert_eq!(p, naive, "day {d}");
        }
        assert_eq!(
            VisitModel::table_from_steps(&[(u32::MAX, 0.5)], 10).len(),
            11
        );
    }

    #[test]
    fn recency_table_follows_steps() {
        // Weekly shopper of the original system: 0.1 until day 6, then 0.7.
        let t = VisitModel::table_from_steps(&[(0, 0.1), (6, 0.7)], 100);
        let v = VisitModel {
            first_visit: 1.0,
            recency: t,
            weekday: [1.0; 7],
            cap: 0.95,
        };
        assert_eq!(v.base(None), 1.0);
        assert_eq!(v.base(Some(1)), 0.1);
        assert_eq!(v.base(Some(5)), 0.1);
        assert_eq!(v.base(Some(6)), 0.7);
        assert_eq!(v.base(Some(400)), 0.7);
    }

    #[test]
    fn the_shortcut_never_disagrees_with_the_hazard() {
        let mut rng = Stream::new(13, 0, 0, 0);
        let mut shortcuts = 0;
        for k in 0..400_000u32 {
            let c = ChurnParams {
                base: [0.0005, 0.002, 0.05, 0.4][k as usize % 4],
                loyalty: [0.0, 0.5, 3.0, -1.0][(k / 4) as usize % 4],
                unmet: 0.5,
                trims: 1.0,
                lapse: 1.0,
                memory_decay: 0.1,
            };
            let loyalty = rng.unit_f32();
            let unmet = rng.unit_f32() * [0.0, 0.5, 4.0][k as usize % 3];
            let trims = rng.unit_f32() * [0.0, 0.2, 2.0][k as usize % 3];
            let days = (k % 5 != 0).then(|| rng.below(200) as u32);
            // Draws near the hazard, where a loose bound would go wrong, and anywhere.
            let h = c.hazard(loyalty, unmet, trims, days).0;
            let u = if k % 2 == 0 {
                (h * (1.0 + (rng.unit_f32() - 0.5) * 1e-3)).min(0.999_999)
            } else {
                rng.unit_f32()
            };
            let sum = ChurnParams::sum(&c.terms(loyalty, unmet, trims, days));
            if c.stays_below(u, sum) {
                shortcuts += 1;
                assert!(u >= h, "u {u} under hazard {h}");
            }
            assert_eq!(c.leaves(u, loyalty, unmet, trims, days).is_some(), u < h);
        }
        assert!(
            shortcuts > 20_000,
            "the shortcut decides many draws: {shortcuts}"
        );
    }

    #[test]
    fn hazard_grows_with_each_pressure_and_names_the_largest() {
        let c = ChurnParams {
            base: 0.001,
            loyalty: 3.0,
            unmet: 0.5,
            trims: 1.0,
            lapse: 1.0,
            memory_decay: 0.1,
        };
        let (h0, cause) = c.hazard(1.0, 0.0, 0.0, Some(1));
        assert!((h0 - 0.001 * (1.0f32 / 30.0).exp()).abs() < 1e-7);
        assert_eq!(cause, ChurnCause::Lapse);
        assert_eq!(c.hazard(1.0, 0.0, 0.0, None), (0.001, ChurnCause::Base));
        let (h, cause) = c.hazard(0.2, 1.0, 0.0, None);
        assert!((h - 0.001 * (2.4f32 + 0.5).exp()).abs() < 1e-6);
        assert_eq!(cause, ChurnCause::Loyalty);
        let (h, cause) = c.hazard(1.0, 0.0, 9.0, Some(200));
        assert_eq!(cause, ChurnCause::Budget);
        assert_eq!(h, 1.0, "capped");
    }

    #[test]
    fn quantity_factor_floors_and_caps() {
        let mut rng = Stream::new(1, 2, 3, 4);
        for _ in 0..1000 {
            let q = sample_quantity((1, 3), 1.3, &mut rng);
            // floor(1*1.3)=1, floor(2*1.3)=2, floor(3*1.3)=3
            assert!((1..=3).contains(&q));
            let q = sample_quantity((5, 5), 3.0, &mut rng);
            assert_eq!(q, 10, "capped at twice the maximum");
        }
    }

    #[test]
    fn uniform_prices_stay_in_range_with_the_right_mean() {
        let mut rng = Stream::new(7, 0, 0, 0);
        let d = PriceDist::Uniform(200.0, 800.0);
        let n = 100_000;
        let mut sum = 0.0;
        for _ in 0..n {
            let p = d.sample(&mut rng);
            assert!((200.0..=800.0).contains(&p));
            sum += p;
        }
        let mean = sum / f64::from(n);
        assert!((mean - 500.0).abs() < 3.0, "mean {mean}");
    }

    #[test]
    fn lognormal_median_matches() {
        let mut rng = Stream::new(9, 0, 0, 0);
        let d = PriceDist::LogNormal {
            mu: 1000f64.ln(),
            sigma: 0.5,
            min: 1.0,
            max: 1e9,
        };
        let mut v: Vec<f64> = (0..20_001).map(|_| d.sample(&mut rng)).collect();
        v.sort_by(f64::total_cmp);
        let median = v[10_000];
        assert!((median / 1000.0 - 1.0).abs() < 0.03, "median {median}");
    }

    #[test]
    fn slots_give_minutes_inside_a_slot() {
        let h = HourModel::Slots(vec![(18 * 60, 20 * 60), (600, 720)]);
        let mut rng = Stream::new(3, 0, 0, 0);
        let mut seen = [0u32; 2];
        for _ in 0..10_000 {
            let m = h.sample_minute(&mut rng);
            if (1080..1200).contains(&m) {
                seen[0] += 1;
            } else {
                assert!((600..720).contains(&m), "minute {m}");
                seen[1] += 1;
            }
        }
        assert!(seen[0].abs_diff(seen[1]) < 400, "{seen:?}");
    }
}
