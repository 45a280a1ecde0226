//! The components a customer entity carries. Small, plain, and laid out so the hot systems
//! read and write as few bytes as possible.

use bevy_ecs::prelude::Component;

/// A customer's stable identity: dense from 0, never reused. Outputs and random streams key
/// on it, never on `Entity` (which the ECS may recycle).
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AgentId(pub u32);

/// Index of the customer's persona in [`crate::scenario::Scenario::personas`].
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Persona(pub u8);

/// Age and income: drawn first from the customer's spawn stream and never changed, so a pure
/// function of the seed, the agent id and the persona. They are not a component: they are
/// drawn again where they are read ([`crate::sim::Model::demographics`]: churn features, the
/// customer table), which keeps 16 bytes a customer (8 of data, 8 of change ticks) out of the
/// world. A behaviour that changed them would make them a component again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Demographics {
    /// Age in years.
    pub age: u8,
    /// Monthly income in rupees.
    pub income: u32,
}

impl Demographics {
    /// The first two draws of a spawn stream: age and income, with the income also as drawn
    /// (before it is clamped to `u32`), which the budget is a share of.
    pub fn draw(rng: &mut crate::rng::Stream, persona: &crate::persona::Persona) -> (Self, u64) {
        let age = persona.age.0 + rng.below(u64::from(persona.age.1 - persona.age.0 + 1)) as u32;
        let income = persona.income.0 + rng.below(persona.income.1 - persona.income.0 + 1);
        let drawn = Self {
            age: age.min(255) as u8,
            income: income.min(u64::from(u32::MAX)) as u32,
        };
        (drawn, income)
    }
}

/// Money set aside for this retailer, in paise. `monthly == UNLIMITED` means no budget.
///
/// 32-bit paise (up to Rs 2.1 crore a month; scenario validation refuses a persona whose
/// budget could exceed it): every byte of a component is paid once per customer, ten
/// million times over in a large run.
#[derive(Component, Debug, Clone, Copy)]
pub struct Budget {
    /// Added on payday.
    pub monthly: i32,
    /// What is left to spend; never negative (baskets are trimmed to it) and at most
    /// [`Budget::cap`].
    pub left: i32,
}

impl Budget {
    /// The monthly amount of a customer without a budget.
    pub const UNLIMITED: i32 = i32::MAX;
    /// The largest monthly budget, in paise, that is not [`Budget::UNLIMITED`].
    pub const MAX_MONTHLY: i64 = i32::MAX as i64 - 1;

    /// A budget that never limits anything.
    pub fn unlimited() -> Self {
        Self {
            monthly: Self::UNLIMITED,
            left: Self::UNLIMITED,
        }
    }

    /// Whether this budget limits spending.
    #[inline]
    pub fn is_limited(&self) -> bool {
        self.monthly != Self::UNLIMITED
    }

    /// The most a budget holds: a month's money and up to a month saved.
    #[inline]
    pub fn cap(monthly: i64) -> i64 {
        (2 * monthly).min(Self::MAX_MONTHLY)
    }

    /// Payday: the month's money is added to what is left, up to [`Budget::cap`].
    #[inline]
    pub fn refill(&mut self) {
        if self.is_limited() {
            let monthly = i64::from(self.monthly);
            self.left = (i64::from(self.left) + monthly).min(Self::cap(monthly)) as i32;
        }
    }
}

/// Attachment to the retailer, 0..=1.
#[derive(Component, Debug, Clone, Copy)]
pub struct Loyalty(pub f32);

/// Today's plan, made once at the start of the day.
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayPlan {
    /// Hour of today's visit, or `NO_VISIT`.
    pub hour: u8,
    /// Minute within that hour.
    pub minute: u8,
}

impl DayPlan {
    /// The `hour` of a day without a visit.
    pub const NO_VISIT: u8 = u8::MAX;

    /// A plan with no visit.
    pub const fn none() -> Self {
        Self {
            hour: Self::NO_VISIT,
            minute: 0,
        }
    }
}

/// Running totals for the customer table.
#[derive(Component, Debug, Clone, Copy, Default)]
pub struct Ledger {
    /// Visits made (including those that bought nothing).
    pub visits: u32,
    /// Visits that ended in a transaction.
    pub purchases: u32,
    /// Total spent, paise.
    pub spent: i64,
}

/// How the relationship is going: when the customer last bought, recent disappointments, and
/// whether the customer has left. (One component rather than several, and days as 16-bit
/// day indices, which scenario validation bounds: each component costs 8 bytes of change
/// ticks per customer on top of its data, and every byte is paid ten million times over in
/// a large run.)
#[derive(Component, Debug, Clone, Copy)]
pub struct Engagement {
    /// Recent visits that bought nothing or had to be trimmed (decays daily).
    pub unmet: f32,
    /// Recent budget trims (decays daily).
    pub trims: f32,
    /// Day the customer joined (0 for the starting population).
    pub joined: Day,
    /// Day the customer left, or `ACTIVE`.
    pub churned: Day,
    /// Day of the last retention offer, or `NEVER_OFFERED`.
    pub last_offer: Day,
    /// Day of the last purchase (negative: before the run, from a warm start), or
    /// `NEVER_BOUGHT`.
    pub last_purchase: Day,
}

/// A day index of the run as a component stores it. Runs last at most [`Day::MAX`] + 1 days.
pub type Day = i16;

/// `day` (a day index of the run) as a [`Day`]; validation keeps every run's days in range.
#[inline]
pub fn to_day(day: u32) -> Day {
    day.min(Day::MAX as u32) as Day
}

impl Engagement {
    /// `churned` of a customer who has not left.
    pub const ACTIVE: Day = -1;
    /// `last_offer` of a customer who never had an offer (compared by value: no cooldown
    /// applies to it).
    pub const NEVER_OFFERED: Day = Day::MIN;
    /// `last_purchase` of a customer who has not bought yet (a warm start's purchases before
    /// the run are negative days, so "never" is the one day no run reaches).
    pub const NEVER_BOUGHT: Day = Day::MIN;

    /// A new customer joining on `day`.
    pub fn new(day: Day) -> Self {
        Self {
            unmet: 0.0,
            trims: 0.0,
            joined: day,
            churned: Self::ACTIVE,
            last_offer: Self::NEVER_OFFERED,
            last_purchase: Self::NEVER_BOUGHT,
        }
    }

    /// Days since the last purchase on day `today`, or `None` if the customer never bought.
    #[inline]
    pub fn days_since_purchase(&self, today: u32) -> Option<u32> {
        (self.last_purchase != Self::NEVER_BOUGHT)
            .then(|| (today as i32 - i32::from(self.last_purchase)).max(0) as u32)
    }

    /// Whether the customer still shops here.
    #[inline]
    pub fn is_active(&self) -> bool {
        self.churned == Self::ACTIVE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payday_tops_up_and_saves_at_most_a_month() {
        let mut b = Budget {
            monthly: 1_000,
            left: 300,
        };
        b.refill();
        assert_eq!(b.left, 1_300);
        b.refill();
        assert_eq!(b.left, 2_000, "capped at a month's money and a month saved");
        let mut big = Budget {
            monthly: Budget::MAX_MONTHLY as i32,
            left: 5,
        };
        big.refill();
        assert_eq!(
            i64::from(big.left),
            Budget::MAX_MONTHLY,
            "never past 32 bits"
        );
        let mut none = Budget::unlimited();
        none.refill();
        assert_eq!(none.left, Budget::UNLIMITED);
    }
}
