//! The bounds that keep a run's arithmetic in range: scenario validation checks every value
//! against them (with the value's location), so the hot path can use plain integer
//! arithmetic that provably cannot wrap, and the outputs can hold every amount.
//!
//! How they fit together: a unit price is at most [`MAX_UNIT_PRICE`] rupees before calendar
//! factors; the day's combined price factor is clamped to [`MAX_PRICE_FACTOR`]; a line's
//! quantity is at most twice its range's top ([`crate::persona::MAX_QUANTITY_FACTOR`]),
//! whose top is at most [`MAX_QUANTITY`]. From these, validation bounds each persona's
//! largest possible basket by [`MAX_BASKET_PAISE`]; so a customer's spending over the
//! longest run ([`MAX_DAYS`] visits at most, one a day) stays under [`MAX_MONEY_PAISE`].
//! Sums over many customers (daily revenue, the run's totals) are kept saturating and
//! checked against [`MAX_MONEY_PAISE`] at the end of every day, which stops the run.

/// The largest amount of money any output holds, in paise: Parquet's `decimal(18, 2)`.
pub const MAX_MONEY_PAISE: i64 = 999_999_999_999_999_999;

/// Longest run accepted, in days: customers keep day indices in 16 bits
/// ([`crate::components::Day`]).
pub const MAX_DAYS: u32 = crate::components::Day::MAX as u32;

/// Highest unit price a persona's price distribution may give, rupees (Rs 1 crore).
pub const MAX_UNIT_PRICE: f64 = 1e7;

/// Highest top of a basket item's quantity range.
pub const MAX_QUANTITY: u32 = 100_000;

/// Highest value of any single calendar factor (traffic, purchase, quantity, price).
pub const MAX_FACTOR: f64 = 100.0;

/// The day's combined unit-price factor (every event, season, weekend and payday in force
/// multiplied together) is clamped to this.
pub const MAX_PRICE_FACTOR: f32 = 100.0;

/// Largest possible basket of one persona, paise (Rs 10,000 crore): at most this times
/// [`MAX_DAYS`] is spent by one customer, which fits [`MAX_MONEY_PAISE`].
pub const MAX_BASKET_PAISE: i64 = 100_000_000_000 * 100;

/// Highest top of a persona's monthly income range, rupees (Rs 1,000 crore).
pub const MAX_INCOME: u64 = 10_000_000_000;

/// Most customers in one run, at the start and acquired together: agent ids are 32-bit.
pub const MAX_CUSTOMERS: u64 = u32::MAX as u64;

/// First and last years a date may have (`"YYYY-MM-DD"` with four digits).
pub const YEARS: std::ops::RangeInclusive<i32> = 1..=9999;

/// The last day of a span of `days` days (at least 1) from `start`, if it falls within
/// [`YEARS`]: the check for a run's end and an event's, from a file or the command line.
pub fn last_day(start: chrono::NaiveDate, days: u32) -> Option<chrono::NaiveDate> {
    use chrono::Datelike;
    start
        .checked_add_days(chrono::Days::new(u64::from(days.max(1)) - 1))
        .filter(|d| YEARS.contains(&d.year()))
}

/// Largest scenario text after includes are spliced in, bytes.
pub const MAX_EXPANDED_BYTES: usize = 16 << 20;

/// Deepest include nesting accepted.
pub const MAX_INCLUDE_DEPTH: usize = 16;

/// Most problems reported for one scenario; the rest are counted.
pub const MAX_PROBLEMS: usize = 50;

/// Widest source snippet shown under an error, characters.
pub const SNIPPET_WIDTH: usize = 100;

const _: () = assert!(MAX_BASKET_PAISE.checked_mul(MAX_DAYS as i64 + 1).is_some());
const _: () = assert!(MAX_BASKET_PAISE * (MAX_DAYS as i64 + 1) <= MAX_MONEY_PAISE);
