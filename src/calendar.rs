//! Simulated time and the calendar: which festivals, dips, weekends, seasons and paydays are
//! in force, and the demand multipliers they add up to for a day.
//!
//! The [`Clock`] resource says what hour it is; the [`Today`] resource holds the day's
//! multipliers, recomputed once at the first hour of each day so the hourly systems only read
//! a few numbers.

use bevy_ecs::prelude::Resource;
use chrono::{Datelike, Duration, NaiveDate, Weekday};

/// What a calendar entry does to demand. Factors multiply; 1 means no effect.
#[derive(Debug, Clone, PartialEq)]
pub struct Effect {
    /// Visit probability factor.
    pub traffic: f32,
    /// Category purchase-probability factor.
    pub purchase: f32,
    /// Quantity factor.
    pub quantity: f32,
    /// Unit price factor range.
    pub price: (f32, f32),
    /// Category-specific factors, by catalog index.
    pub categories: Vec<(u16, CategoryEffect)>,
}

impl Default for Effect {
    fn default() -> Self {
        Self {
            traffic: 1.0,
            purchase: 1.0,
            quantity: 1.0,
            price: (1.0, 1.0),
            categories: Vec::new(),
        }
    }
}

/// A category-specific part of an [`Effect`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CategoryEffect {
    /// Purchase-probability factor.
    pub purchase: f32,
    /// Quantity factor.
    pub quantity: f32,
    /// Unit price factor range.
    pub price: (f32, f32),
}

/// The kind of a dated event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A festival; its days are flagged festive.
    Festival,
    /// A spending dip.
    Dip,
    /// A promotion.
    Sale,
    /// The store is shut: nobody visits on its days.
    Closed,
}

/// A dated event with optional linear ramps before and after.
#[derive(Debug, Clone)]
pub struct Event {
    /// Name, e.g. "Diwali".
    pub name: String,
    /// Kind.
    pub kind: EventKind,
    /// First full-effect day.
    pub from: NaiveDate,
    /// Last full-effect day.
    pub to: NaiveDate,
    /// Ramp-up days before `from`.
    pub lead_in: u32,
    /// Ramp-down days after `to`.
    pub tail: u32,
    /// The full effect.
    pub effect: Effect,
}

impl Event {
    /// The weight of the event on `date`: 1 inside `[from, to]`, ramping linearly to 0 over
    /// the lead-in and tail, 0 elsewhere.
    pub fn weight(&self, date: NaiveDate) -> f32 {
        if date >= self.from && date <= self.to {
            return 1.0;
        }
        if date < self.from {
            let before = (self.from - date).num_days();
            if before <= i64::from(self.lead_in) {
                return 1.0 - before as f32 / (self.lead_in + 1) as f32;
            }
        } else {
            let after = (date - self.to).num_days();
            if after <= i64::from(self.tail) {
                return 1.0 - after as f32 / (self.tail + 1) as f32;
            }
        }
        0.0
    }
}

/// A season: an effect on some months.
#[derive(Debug, Clone)]
pub struct Season {
    /// Name.
    pub name: String,
    /// Bit `m` set for month `m` (1-12).
    pub months: u16,
    /// The effect.
    pub effect: Effect,
}

/// A monthly payday effect.
#[derive(Debug, Clone)]
pub struct Payday {
    /// Day of month the effect starts.
    pub day: u32,
    /// Days it lasts.
    pub days: u32,
    /// The effect.
    pub effect: Effect,
}

/// The whole calendar of a scenario.
#[derive(Debug, Clone, Default)]
pub struct Calendar {
    /// Saturday and Sunday effect.
    pub weekend: Effect,
    /// Seasons.
    pub seasons: Vec<Season>,
    /// Paydays.
    pub payday: Option<Payday>,
    /// Dated events.
    pub events: Vec<Event>,
}

/// Whether a date is a Saturday or Sunday.
pub fn is_weekend(date: NaiveDate) -> bool {
    matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

impl Calendar {
    /// The multipliers in force on `date` for a catalog of `categories` categories.
    pub fn day(&self, date: NaiveDate, categories: usize) -> Today {
        let mut today = Today::neutral(date, categories);
        if is_weekend(date) {
            today.weekend = true;
            today.apply(&self.weekend, 1.0);
        }
        for season in &self.seasons {
            if season.months & (1 << date.month()) != 0 {
                today.apply(&season.effect, 1.0);
            }
        }
        if let Some(p) = &self.payday
            && (p.day..p.day + p.days).contains(&date.day())
        {
            today.payday = true;
            today.apply(&p.effect, 1.0);
        }
        let mut closed = false;
        for event in &self.events {
            let w = event.weight(date);
            if w > 0.0 {
                // Only full-effect days count as festival days; ramps do not.
                if event.kind == EventKind::Festival && w >= 1.0 {
                    today.festival = true;
                }
                if !today.events.is_empty() {
                    today.events.push('+');
                }
                today.events.push_str(&event.name);
                today.apply(&event.effect, w);
                closed |= event.kind == EventKind::Closed;
            }
        }
        today.clamp();
        if closed {
            today.traffic = 0.0;
        }
        today
    }
}

/// Scales a factor's distance from 1 by a weight.
#[inline]
fn ramp(factor: f32, weight: f32) -> f32 {
    1.0 + (factor - 1.0) * weight
}

/// Where a date falls in its pay period: the days still to run, counting the date, of the
/// period's length (from one payday to the next, so 28 to 31 days).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayPeriod {
    /// Days from the date to the next payday, counting the date: `period` on a payday, 1
    /// on its eve.
    pub until: u16,
    /// Days from the last payday to the next.
    pub period: u16,
}

impl PayPeriod {
    /// The pay period around `date` with budgets refilled on day `payday` (1 to 28).
    pub fn on(date: NaiveDate, payday: u32) -> Self {
        let payday_in = |y: i32, m: u32| NaiveDate::from_ymd_opt(y, m, payday).unwrap_or(date);
        let (y, m) = (date.year(), date.month());
        let (prev_month, next_month) = if m == 1 {
            ((y - 1, 12), (y, 2))
        } else if m == 12 {
            ((y, 11), (y + 1, 1))
        } else {
            ((y, m - 1), (y, m + 1))
        };
        let (last, next) = if date.day() >= payday {
            (payday_in(y, m), payday_in(next_month.0, next_month.1))
        } else {
            (payday_in(prev_month.0, prev_month.1), payday_in(y, m))
        };
        let period = (next - last).num_days().clamp(1, 31);
        let until = (next - date).num_days().clamp(0, period);
        Self {
            until: until as u16,
            period: period as u16,
        }
    }

    /// A one-day period: the whole budget is today's.
    pub const LAST_DAY: Self = Self {
        until: 1,
        period: 1,
    };

    /// The share of `monthly` for the rest of the period, counting today.
    pub fn of(self, monthly: i64) -> i64 {
        (monthly as f64 * f64::from(self.until) / f64::from(self.period)).round() as i64
    }

    /// What a customer paced over the period holds today when it last bought `days` days
    /// ago: the money for the rest of the period after today, and the days since that
    /// purchase.
    pub fn after_purchase(self, monthly: i64, days: u32) -> i64 {
        let days = f64::from(self.until) - 1.0 + f64::from(days);
        (monthly as f64 * days / f64::from(self.period)).round() as i64
    }

    /// The share of the period still to run, counting today (0 to 1).
    #[inline]
    pub fn through(self) -> f32 {
        f32::from(self.until) / f32::from(self.period)
    }
}

/// The multipliers in force today: a resource recomputed once a day.
#[derive(Debug, Clone, Resource, PartialEq)]
pub struct Today {
    /// The date.
    pub date: NaiveDate,
    /// Visit probability factor.
    pub traffic: f32,
    /// Per category: purchase-probability factor.
    pub purchase: Vec<f32>,
    /// Per category: quantity factor.
    pub quantity: Vec<f32>,
    /// Per category: unit price factor range.
    pub price: Vec<(f32, f32)>,
    /// A festival is in force.
    pub festival: bool,
    /// It is Saturday or Sunday.
    pub weekend: bool,
    /// A payday effect is in force.
    pub payday: bool,
    /// Names of the events in force, joined by `+`.
    pub events: String,
    /// Per persona: where today falls in its pay period ([`PayPeriod::LAST_DAY`] for a
    /// persona without a budget). Empty until the day is refreshed: nothing is paced.
    pub pay: Vec<PayPeriod>,
}

impl Today {
    /// A day with no effects.
    pub fn neutral(date: NaiveDate, categories: usize) -> Self {
        Self {
            date,
            traffic: 1.0,
            purchase: vec![1.0; categories],
            quantity: vec![1.0; categories],
            price: vec![(1.0, 1.0); categories],
            festival: false,
            weekend: false,
            payday: false,
            events: String::new(),
            pay: Vec::new(),
        }
    }

    /// Where today falls in persona `persona`'s pay period.
    #[inline]
    pub fn pay_period(&self, persona: u8) -> PayPeriod {
        self.pay
            .get(usize::from(persona))
            .copied()
            .unwrap_or(PayPeriod::LAST_DAY)
    }

    /// Keeps the combined factors in range however many effects multiply together: the
    /// price factor at most [`crate::limits::MAX_PRICE_FACTOR`] (the bound validation's
    /// money limits assume), the others finite.
    fn clamp(&mut self) {
        const MAX: f32 = 1e6;
        self.traffic = self.traffic.min(MAX);
        for c in 0..self.purchase.len() {
            self.purchase[c] = self.purchase[c].min(MAX);
            self.quantity[c] = self.quantity[c].min(MAX);
            let (lo, hi) = &mut self.price[c];
            *lo = lo.min(crate::limits::MAX_PRICE_FACTOR);
            *hi = hi.min(crate::limits::MAX_PRICE_FACTOR);
        }
    }

    fn apply(&mut self, e: &Effect, w: f32) {
        self.traffic *= ramp(e.traffic, w);
        for c in 0..self.purchase.len() {
            self.purchase[c] *= ramp(e.purchase, w);
            self.quantity[c] *= ramp(e.quantity, w);
            self.price[c].0 *= ramp(e.price.0, w);
            self.price[c].1 *= ramp(e.price.1, w);
        }
        for (c, ce) in &e.categories {
            let c = usize::from(*c);
            self.purchase[c] *= ramp(ce.purchase, w);
            self.quantity[c] *= ramp(ce.quantity, w);
            self.price[c].0 *= ramp(ce.price.0, w);
            self.price[c].1 *= ramp(ce.price.1, w);
        }
    }
}

/// Simulated time: one tick is one hour.
#[derive(Debug, Clone, Copy, Resource)]
pub struct Clock {
    /// First simulated day.
    pub start: NaiveDate,
    /// Number of simulated days.
    pub days: u32,
    /// Hours since the start of the run; `u32::MAX` before the first tick.
    pub tick: u32,
}

impl Clock {
    /// A clock before its first tick.
    pub fn new(start: NaiveDate, days: u32) -> Self {
        Self {
            start,
            days,
            tick: u32::MAX,
        }
    }

    /// Day index since the start.
    #[inline]
    pub fn day(&self) -> u32 {
        self.tick / 24
    }

    /// Hour of the day, 0-23.
    #[inline]
    pub fn hour(&self) -> u32 {
        self.tick % 24
    }

    /// The current date.
    pub fn date(&self) -> NaiveDate {
        self.start + Duration::days(i64::from(self.day()))
    }

    /// Total ticks in the run.
    pub fn total_ticks(&self) -> u32 {
        self.days * 24
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prorating_follows_the_pay_period() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(PayPeriod::on(d("2026-10-01"), 1).of(3100), 3100);
        assert_eq!(PayPeriod::on(d("2026-10-16"), 1).of(3100), 1600);
        assert_eq!(PayPeriod::on(d("2026-10-20"), 25).of(3000), 500);
        assert_eq!(PayPeriod::on(d("2026-12-30"), 1).of(3000), 194);
        assert_eq!(PayPeriod::on(d("2026-01-10"), 15).of(2800), 452);
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn festival(from: &str, to: &str, lead_in: u32, tail: u32, traffic: f32) -> Event {
        Event {
            name: "F".into(),
            kind: EventKind::Festival,
            from: d(from),
            to: d(to),
            lead_in,
            tail,
            effect: Effect {
                traffic,
                ..Effect::default()
            },
        }
    }

    #[test]
    fn event_weight_ramps_in_and_out() {
        let e = festival("2026-11-08", "2026-11-08", 3, 1, 2.0);
        assert_eq!(e.weight(d("2026-11-04")), 0.0);
        assert_eq!(e.weight(d("2026-11-05")), 0.25);
        assert_eq!(e.weight(d("2026-11-07")), 0.75);
        assert_eq!(e.weight(d("2026-11-08")), 1.0);
        assert_eq!(e.weight(d("2026-11-09")), 0.5);
        assert_eq!(e.weight(d("2026-11-10")), 0.0);
    }

    #[test]
    fn effects_multiply_and_ramp() {
        let cal = Calendar {
            weekend: Effect {
                traffic: 1.2,
                purchase: 1.2,
                ..Effect::default()
            },
            events: vec![festival("2026-11-08", "2026-11-08", 1, 0, 1.5)],
            ..Calendar::default()
        };
        // 2026-11-07 is a Saturday and the festival's lead-in day (weight 0.5): its effect
        // applies but, being a ramp day, it is not flagged as a festival day.
        let t = cal.day(d("2026-11-07"), 2);
        assert!(t.weekend && !t.festival && t.events == "F");
        assert!(cal.day(d("2026-11-08"), 2).festival);
        assert!((t.traffic - 1.2 * 1.25).abs() < 1e-6, "{}", t.traffic);
        assert!((t.purchase[1] - 1.2).abs() < 1e-6);
        let t = cal.day(d("2026-11-09"), 2);
        assert!(!t.weekend && !t.festival && t.events.is_empty());
        assert_eq!(t.traffic, 1.0);
    }

    #[test]
    fn category_effects_touch_only_their_category() {
        let mut e = festival("2026-11-06", "2026-11-06", 0, 0, 1.0);
        e.effect.categories.push((
            1,
            CategoryEffect {
                purchase: 5.0,
                quantity: 1.0,
                price: (1.1, 1.2),
            },
        ));
        let cal = Calendar {
            events: vec![e],
            ..Calendar::default()
        };
        let t = cal.day(d("2026-11-06"), 3);
        assert_eq!(t.purchase, vec![1.0, 5.0, 1.0]);
        assert_eq!(t.price[1], (1.1, 1.2));
        assert_eq!(t.events, "F");
    }

    #[test]
    fn seasons_and_paydays() {
        let cal = Calendar {
            seasons: vec![Season {
                name: "Winter".into(),
                months: 1 << 12 | 1 << 1,
                effect: Effect {
                    traffic: 0.9,
                    ..Effect::default()
                },
            }],
            payday: Some(Payday {
                day: 1,
                days: 3,
                effect: Effect {
                    traffic: 1.1,
                    ..Effect::default()
                },
            }),
            ..Calendar::default()
        };
        let t = cal.day(d("2026-12-02"), 1);
        assert!(t.payday);
        assert!((t.traffic - 0.99).abs() < 1e-6);
        let t = cal.day(d("2026-11-04"), 1);
        assert!(!t.payday);
        assert_eq!(t.traffic, 1.0);
    }

    #[test]
    fn clock_counts_days_and_hours() {
        let mut c = Clock::new(d("2026-10-20"), 30);
        c.tick = 24 * 19 + 5;
        assert_eq!((c.day(), c.hour()), (19, 5));
        assert_eq!(c.date(), d("2026-11-08"));
        assert_eq!(c.total_ticks(), 720);
    }
}
