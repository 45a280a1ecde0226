//! Estimates each persona's parameters straight from its customers' visits, and the
//! calendar's effects from the days of a holiday calendar: what the data says before the
//! simulated moments refine what interacts.

use std::collections::HashMap;

use chrono::{Duration, NaiveDate};
use statrs::statistics::{Data, Distribution, OrderStatistics};

use super::log::{Log, Visit, weekday};
use crate::scenario::schema::{CalendarFile, EventFile, EventSpecFile};

/// Fewest customers at risk for a recency step of its own; later days share one step.
const AT_RISK: usize = 30;
/// Longest recency curve, days.
const MAX_STEPS: u32 = 56;
/// A category bought on fewer of a persona's visits is left out of its basket.
const MIN_SHARE: f64 = 0.002;
/// Fewest visits an event's days must be expected to have (from ordinary days nearby) for
/// an estimate.
const MIN_EXPECTED: f64 = 5.0;
/// A category on at least this share of a persona's visits is a need of its budget.
const NEED_SHARE: f64 = 0.25;

/// One basket entry of a persona.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Category (index into the log's categories).
    pub category: u16,
    /// Share of visits that buy it.
    pub p: f64,
    /// Quantity range, drawn uniformly (its mean is the data's mean units).
    pub quantity: (u32, u32),
    /// Log-normal unit price: median, sigma, and the 1st and 99th percentiles as bounds.
    pub price: (f64, f64, f64, f64),
}

/// A persona as estimated from its customers.
#[derive(Debug, Clone)]
pub struct PersonaFit {
    /// Identifier.
    pub name: String,
    /// Customers in the data.
    pub customers: usize,
    /// Of them, joined during the log (their first visit later than the persona's long gaps).
    pub acquired: usize,
    /// Recency curve: (days since the last visit, daily visit probability).
    pub recency: Vec<(u32, f64)>,
    /// Visit probability of a customer who has never bought.
    pub first_visit: f64,
    /// Weekday factors, Monday first, mean 1.
    pub weekday: [f64; 7],
    /// Visits by hour of day.
    pub hours: [f64; 24],
    /// Basket entries, most bought first.
    pub basket: Vec<Item>,
    /// Daily churn hazard.
    pub churn: f64,
    /// Monthly spend, 25th and 75th percentiles of the customers.
    pub monthly_spend: (f64, f64),
    /// Visits per customer-day observed (from each customer's first visit to the log's end).
    pub visit_rate: f64,
    /// Mean value of a visit.
    pub mean_value: f64,
    /// Days between visits, mean.
    pub mean_gap: f64,
    /// Categories bought on at least a quarter of visits: the budget's needs.
    pub needs: Vec<u16>,
    /// Kinds of trip: (share of visits, purchase factor).
    pub trips: Vec<(f64, f64)>,
}

fn quantile(x: &[f64], q: f64) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    Data::new(x.to_vec()).quantile(q)
}

/// Estimates the persona of `members` (customer indices) from `log`.
pub fn persona(log: &Log, members: &[usize], by: &[&[Visit]]) -> PersonaFit {
    let days = f64::from(log.days());
    let mut gaps: Vec<u32> = Vec::new();
    let mut censored: Vec<u32> = Vec::new();
    let mut wd = [0.0; 7];
    let mut hours = [0.0; 24];
    let mut monthly = Vec::new();
    let mut values = Vec::new();
    let mut sizes = Vec::new();
    let mut exposure = 0.0;
    let mut visits = 0usize;
    let mut lines: HashMap<u16, (usize, Vec<f64>, Vec<f64>)> = HashMap::new();
    for &c in members {
        let vs = by[c];
        let (Some(first), Some(last)) = (vs.first(), vs.last()) else {
            continue;
        };
        for w in vs.windows(2) {
            gaps.push((w[1].date - w[0].date).num_days() as u32);
        }
        censored.push((log.last - last.date).num_days() as u32);
        let span = (log.last - first.date).num_days() as f64 + 1.0;
        exposure += span;
        visits += vs.len();
        monthly.push(vs.iter().map(|v| v.value).sum::<f64>() / span * 30.44);
        for v in vs {
            wd[weekday(v.date)] += 1.0;
            hours[usize::from(v.hour)] += 1.0;
            values.push(v.value);
            sizes.push(v.lines.len() as f64);
            for l in &v.lines {
                let e = lines.entry(l.category).or_default();
                e.0 += 1;
                e.1.push(f64::from(l.units));
                e.2.push(l.value / f64::from(l.units.max(1)));
            }
        }
    }
    let n_visits = visits.max(1) as f64;
    // Weekday factors: visits on each weekday over the number of such days in the log.
    let mut count = [0.0f64; 7];
    for d in log.first.iter_days().take(log.days() as usize) {
        count[weekday(d)] += 1.0;
    }
    let rate: Vec<f64> = (0..7).map(|i| wd[i] / count[i].max(1.0)).collect();
    let mean_rate = rate.iter().sum::<f64>() / 7.0;
    let mut weekday_f = [1.0; 7];
    for i in 0..7 {
        if mean_rate > 0.0 {
            weekday_f[i] = rate[i] / mean_rate;
        }
    }
    let mean_gap = if gaps.is_empty() {
        days
    } else {
        gaps.iter().map(|&g| f64::from(g)).sum::<f64>() / gaps.len() as f64
    };
    // Churned: gone silent for far longer than the persona's gaps (four times the 95th
    // percentile, and at least 60 days) before the log ends. Their last spell is churn,
    // not a long wait to shop, so it stays out of the visit hazard.
    let gap_f: Vec<f64> = gaps.iter().map(|&g| f64::from(g)).collect();
    let long = quantile(&gap_f, 0.95).max(1.0);
    let silent = (4.0 * long).max(60.0);
    let churned = censored.iter().filter(|&&c| f64::from(c) > silent).count();
    censored.retain(|&c| f64::from(c) <= silent);
    let recency = hazard(&gaps, &censored);
    let churn = (churned as f64 / exposure.max(1.0)).min(0.05);
    // Joined during the log: a first visit later than the persona's long gaps allow.
    let acquired = members
        .iter()
        .filter(|&&c| {
            by[c]
                .first()
                .is_some_and(|f| ((f.date - log.first).num_days() as f64) > long.max(14.0))
        })
        .count();
    // The most bought category stays whatever its share, so no persona has an empty basket.
    let top = lines
        .iter()
        .max_by_key(|(c, (n, _, _))| (*n, std::cmp::Reverse(**c)))
        .map(|(c, _)| *c);
    let mut basket: Vec<Item> = lines
        .into_iter()
        .filter_map(|(category, (n, units, prices))| {
            let p = n as f64 / n_visits;
            if (p < MIN_SHARE || n < 3) && Some(category) != top {
                return None;
            }
            let mean_units = units.iter().sum::<f64>() / units.len() as f64;
            let hi = (2.0 * mean_units - 1.0).round().max(1.0) as u32;
            let logs: Vec<f64> = prices.iter().map(|x| x.max(0.01).ln()).collect();
            let sigma = Data::new(logs).std_dev().unwrap_or(0.0).clamp(0.01, 3.0);
            let median = quantile(&prices, 0.5).max(0.01);
            let lo = quantile(&prices, 0.01).max(0.01).min(median);
            let top = quantile(&prices, 0.99).max(median);
            Some(Item {
                category,
                p,
                quantity: (1, hi),
                price: (median, sigma, lo, top),
            })
        })
        .collect();
    basket.sort_by(|a, b| b.p.total_cmp(&a.p).then(a.category.cmp(&b.category)));
    let trips = trip_factors(
        &basket,
        super::segment::trips(&sizes),
        sizes.iter().sum::<f64>() / sizes.len().max(1) as f64,
    );
    let needs: Vec<u16> = basket
        .iter()
        .filter(|i| i.p >= NEED_SHARE)
        .map(|i| i.category)
        .collect();
    PersonaFit {
        name: String::new(),
        customers: members.len(),
        acquired,
        first_visit: (1.0 / mean_gap.max(1.0)).clamp(0.001, 1.0),
        recency,
        weekday: weekday_f,
        hours,
        basket,
        churn,
        monthly_spend: (quantile(&monthly, 0.25), quantile(&monthly, 0.75)),
        visit_rate: visits as f64 / exposure.max(1.0),
        mean_value: values.iter().sum::<f64>() / n_visits,
        mean_gap,
        trips,
        needs,
    }
}

/// Mean categories of a buying visit when every probability of `basket` is multiplied by `f`
/// and capped as shopping caps it.
fn lines_of_buying_visit(basket: &[Item], f: f64) -> f64 {
    let cap = f64::from(crate::systems::shopping::PURCHASE_CAP);
    let (mean, none) = basket.iter().fold((0.0, 1.0), |(m, n), i| {
        let p = (i.p * f).min(cap);
        (m + p, n * (1.0 - p))
    });
    if none < 1.0 { mean / (1.0 - none) } else { 1.0 }
}

/// The kinds of trip with purchase factors that give each kind's mean categories per buying
/// visit under the 0.95 cap (a staple near the cap gains less than the raw factor asks):
/// each solved by Brent's method (argmin) from the kind's share of the persona's mean. A kind
/// the cap cannot reach keeps its raw factor.
fn trip_factors(basket: &[Item], trips: Vec<(f64, f64)>, mean_lines: f64) -> Vec<(f64, f64)> {
    use argmin::core::{CostFunction, Executor};
    use argmin::solver::brent::BrentRoot;
    struct Gap<'a>(&'a [Item], f64);
    impl CostFunction for Gap<'_> {
        type Param = f64;
        type Output = f64;
        fn cost(&self, f: &f64) -> Result<f64, argmin::core::Error> {
            Ok(lines_of_buying_visit(self.0, *f) - self.1)
        }
    }
    trips
        .into_iter()
        .map(|(share, raw)| {
            let target = raw * mean_lines;
            let solved = Executor::new(Gap(basket, target), BrentRoot::new(1e-3, 50.0, 1e-6))
                .configure(|s| s.param(raw.clamp(1e-3, 50.0)).max_iters(100))
                .run()
                .ok()
                .and_then(|r| r.state().best_param);
            (share, solved.unwrap_or(raw))
        })
        .collect()
}

/// The daily visit hazard by days since the last visit (a life table: visits on day `d`
/// over customers still without a visit at `d`, gaps still open at the log's end
/// censored), as recency steps: one per day while enough customers are at risk, then one
/// pooled step for the rest.
pub fn hazard(gaps: &[u32], censored: &[u32]) -> Vec<(u32, f64)> {
    // Counts by length, lengths past the last own step pooled in one slot: memory and time
    // stay linear in the customers whatever the gaps.
    let cap = MAX_STEPS as usize + 1;
    let mut ended = vec![0usize; cap + 1];
    let mut open = vec![0usize; cap + 1];
    // Days at risk and events past the cap, for the pooled step.
    let (mut tail_events, mut tail_risk) = (0usize, 0usize);
    for &g in gaps {
        ended[(g as usize).min(cap)] += 1;
        if g as usize >= cap {
            tail_events += 1;
            tail_risk += g as usize - cap + 1;
        }
    }
    for &c in censored {
        open[(c as usize).min(cap)] += 1;
        if c as usize >= cap {
            tail_risk += c as usize - cap + 1;
        }
    }
    // at_risk[d] = spells of length >= d; events[d] = gaps of length d.
    let mut at_risk = vec![0usize; cap + 2];
    for d in (1..=cap).rev() {
        at_risk[d] = at_risk[d + 1] + ended[d] + open[d];
    }
    let mut steps = Vec::new();
    let mut d = 1;
    while d < cap && at_risk[d] >= AT_RISK {
        steps.push((d as u32, ended[d] as f64 / at_risk[d] as f64));
        d += 1;
    }
    // The pooled step: every day at risk from d on, and every visit ending there.
    let e = (d..cap).map(|i| ended[i]).sum::<usize>() + tail_events;
    let r = (d..cap).map(|i| at_risk[i]).sum::<usize>() + tail_risk;
    let tail = if r > 0 {
        e as f64 / r as f64
    } else {
        steps.last().map_or(0.01, |s| s.1)
    };
    steps.push((d as u32, tail));
    for s in &mut steps {
        s.1 = s.1.clamp(0.0005, 0.95);
    }
    steps
}

/// A calendar event's effect as the data shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFit {
    /// Event name (occurrences of one name share one estimate).
    pub name: String,
    /// Full-effect days seen in the log.
    pub days: usize,
    /// Visits on them.
    pub visits: f64,
    /// Visits expected on them from ordinary days of the same weekday nearby.
    pub expected: f64,
    /// Visits over expected visits.
    pub traffic: f64,
    /// Categories per visit over those of ordinary visits.
    pub purchase: f64,
    /// Categories bought on them.
    pub lines: f64,
    /// An eve found in the data: the day before, when it differs from an ordinary day by
    /// more than its noise.
    pub eve: Option<(f64, f64)>,
}

impl EventFit {
    /// Whether the days look closed: under 5% of the expected visits.
    pub fn closed(&self) -> bool {
        self.traffic < 0.05
    }
}

/// Dates of an event's full effect, and of its whole reach (lead-in and tail included);
/// `None` for dates that do not parse, run backwards or leave the calendar's range (a day
/// either side of the reach is also in range, as the estimates look at the day before).
pub fn event_dates(e: &EventSpecFile) -> Option<(NaiveDate, NaiveDate, NaiveDate, NaiveDate)> {
    let from = NaiveDate::parse_from_str(&e.from, "%Y-%m-%d").ok()?;
    let to = match (&e.to, e.days) {
        (Some(t), _) => NaiveDate::parse_from_str(t, "%Y-%m-%d").ok()?,
        (None, Some(n)) => from.checked_add_signed(Duration::days(i64::from(n.max(1)) - 1))?,
        (None, None) => from,
    };
    if to < from {
        return None;
    }
    Some((
        from,
        to,
        from.checked_sub_signed(Duration::days(i64::from(e.lead_in) + 1))?
            .succ_opt()?,
        to.checked_add_signed(Duration::days(i64::from(e.tail) + 1))?
            .pred_opt()?,
    ))
}

/// The days from `a` to `b` that the log covers.
pub fn within(a: NaiveDate, b: NaiveDate, log: &Log) -> impl Iterator<Item = NaiveDate> {
    a.max(log.first)
        .iter_days()
        .take_while(move |d| *d <= b.min(log.last))
}

/// The body of any event.
pub fn spec(e: &EventFile) -> &EventSpecFile {
    match e {
        EventFile::Festival(s) | EventFile::Dip(s) | EventFile::Sale(s) | EventFile::Closed(s) => s,
    }
}

/// Estimates the effect of each named event of `calendar` that falls in the log.
pub fn calendar(log: &Log, calendar: &CalendarFile) -> Vec<EventFit> {
    let n = log.days() as usize;
    let mut visits = vec![0.0; n];
    let mut lines = vec![0.0; n];
    for v in &log.visits {
        let i = (v.date - log.first).num_days() as usize;
        visits[i] += 1.0;
        lines[i] += v.lines.len() as f64;
    }
    let idx = |d: NaiveDate| {
        let i = (d - log.first).num_days();
        (0..n as i64).contains(&i).then_some(i as usize)
    };
    // Days some event reaches, and the day before each: not ordinary.
    let mut special = vec![false; n];
    for e in &calendar.events {
        if let Some((_, _, start, end)) = event_dates(spec(e)) {
            for d in within(start.pred_opt().unwrap_or(start), end, log) {
                if let Some(i) = idx(d) {
                    special[i] = true;
                }
            }
        }
    }
    // The log's first and last days may be partly observed.
    for i in [0, n - 1] {
        special[i] = true;
    }
    let ordinary_lines: f64 = (0..n)
        .filter(|&i| !special[i])
        .map(|i| lines[i])
        .sum::<f64>()
        / (0..n)
            .filter(|&i| !special[i])
            .map(|i| visits[i])
            .sum::<f64>()
            .max(1.0);
    let expected = |i: usize| -> f64 {
        let near: Vec<f64> = (1..=5)
            .flat_map(|w| [i as i64 - 7 * w, i as i64 + 7 * w])
            .filter(|&j| (0..n as i64).contains(&j) && !special[j as usize])
            .map(|j| visits[j as usize])
            .collect();
        quantile(&near, 0.5)
    };
    let mut by_name: Vec<EventFit> = Vec::new();
    for e in &calendar.events {
        let s = spec(e);
        let Some((from, to, start, _)) = event_dates(s) else {
            continue;
        };
        let mut fit = EventFit {
            name: s.name.clone(),
            days: 0,
            visits: 0.0,
            expected: 0.0,
            traffic: 1.0,
            purchase: 1.0,
            eve: None,
            lines: 0.0,
        };
        for d in within(from, to, log) {
            if let Some(i) = idx(d)
                && i > 0
                && i + 1 < n
            {
                fit.days += 1;
                fit.visits += visits[i];
                fit.expected += expected(i);
                fit.lines += lines[i];
            }
        }
        if fit.days == 0 {
            continue;
        }
        // The eve: only of an event without a lead-in of its own, on a day no other event
        // reaches.
        if s.lead_in == 0
            && let Some(eve) = start.pred_opt()
            && let Some(i) = idx(eve)
            && i > 0
            && i + 1 < n
        {
            let ex = expected(i);
            let r = visits[i] / ex.max(1.0);
            let covered = calendar
                .events
                .iter()
                .any(|o| event_dates(spec(o)).is_some_and(|(_, _, a, b)| (a..=b).contains(&eve)));
            if !covered && ex > 0.0 && (r - 1.0).abs() > (3.0 / ex.sqrt()).max(0.08) {
                fit.eve = Some((visits[i], ex));
            }
        }
        match by_name.iter_mut().find(|f| f.name == fit.name) {
            Some(f) => {
                f.days += fit.days;
                f.visits += fit.visits;
                f.expected += fit.expected;
                f.lines += fit.lines;
                if let (Some(a), Some(b)) = (f.eve, fit.eve) {
                    f.eve = Some((a.0 + b.0, a.1 + b.1));
                } else {
                    f.eve = f.eve.or(fit.eve);
                }
            }
            None => by_name.push(fit),
        }
    }
    // Without enough ordinary days nearby there is nothing to compare with: such an event
    // keeps the input's figures.
    by_name.retain(|f| f.expected >= MIN_EXPECTED);
    for f in &mut by_name {
        f.traffic = (f.visits / f.expected).clamp(0.0, crate::limits::MAX_FACTOR);
        f.purchase = if f.visits < 30.0 || ordinary_lines <= 0.0 {
            // Too few visits to say anything about the basket.
            1.0
        } else {
            (f.lines / f.visits / ordinary_lines).clamp(0.5, 2.0)
        };
    }
    by_name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(p: f64) -> Item {
        Item {
            category: 0,
            p,
            quantity: (1, 1),
            price: (1.0, 0.1, 0.5, 2.0),
        }
    }

    #[test]
    fn trip_factors_reach_their_lines_under_the_cap() {
        let basket = [item(0.9), item(0.5), item(0.2), item(0.1)];
        let mean = lines_of_buying_visit(&basket, 1.0);
        // A big trip asking for 1.8 times the mean: raw, the staple at 0.9 caps at 0.95
        // and the trip falls short; solved, it gets its lines.
        let trips = trip_factors(&basket, vec![(0.5, 0.6), (0.5, 1.8)], mean);
        assert!(lines_of_buying_visit(&basket, 1.8) < 1.8 * mean - 0.05);
        for (&(_, raw), &(share, f)) in [(0.5, 0.6), (0.5, 1.8)].iter().zip(&trips) {
            assert_eq!(share, 0.5);
            let got = lines_of_buying_visit(&basket, f);
            assert!(
                (got - raw * mean).abs() < 1e-4,
                "{got} against {}",
                raw * mean
            );
        }
        assert!(trips[1].1 > 1.8);
    }

    #[test]
    fn the_life_table_censors_open_gaps() {
        // Gaps of 1, 2 and 2 days, one spell still open after 1 day: on day 1, four at
        // risk and one visit; on day 2, two at risk (the open one has left) and two visits.
        let h = |g: &[u32], c: &[u32]| {
            // With AT_RISK customers at risk the first steps are their own.
            let mut gaps = Vec::new();
            let mut open = Vec::new();
            for _ in 0..AT_RISK {
                gaps.extend_from_slice(g);
                open.extend_from_slice(c);
            }
            hazard(&gaps, &open)
        };
        let steps = h(&[1, 2, 2], &[1]);
        assert!((steps[0].1 - 0.25).abs() < 1e-12, "{steps:?}");
        assert!((steps[1].1 - 1.0f64.min(0.95)).abs() < 1e-12, "{steps:?}");
    }
}
