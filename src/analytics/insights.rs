//! Insights: numbered statements with their figures, each computed from the aggregates —
//! never canned text. A statement whose data is missing (no festival, no budgets, no churn)
//! is simply not made. Statements about days use the run's steady state only (all days
//! after a warm start; a cold start's first days, when every customer is new, are left out)
//! and compare like with like: event days against event-free days of the same weekday.

use serde::Serialize;

use super::{Aggregates, Cell};

/// One computed statement.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Insight {
    /// Short identifier of the kind of statement.
    pub kind: &'static str,
    /// The statement.
    pub text: String,
    /// The figures it rests on.
    pub figures: Vec<(String, f64)>,
}

const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

fn share(part: f64, whole: f64) -> f64 {
    if whole == 0.0 { 0.0 } else { part / whole }
}

fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

/// Revenue of a day over all personas, paise.
fn day_revenue(cells: &[Cell]) -> f64 {
    cells.iter().map(|c| c.revenue_paise as f64).sum()
}

/// The days of the run's steady state (all of them after a warm start).
fn settled(a: &Aggregates) -> &[super::Day] {
    &a.days[a.settled_from.min(a.days.len())..]
}

/// Distinct event names in day order.
pub fn event_names(a: &Aggregates) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for d in settled(a) {
        for e in d.events.split('+').filter(|e| !e.is_empty()) {
            if !names.iter().any(|n| n == e) {
                names.push(e.to_owned());
            }
        }
    }
    names
}

/// For an event: (days, mean value on its days, mean on event-free days of the same
/// weekdays), with `value` giving a day's figure. Falls back to all event-free days when no
/// event-free day shares a weekday.
pub fn event_uplift(
    a: &Aggregates,
    event: &str,
    value: impl Fn(&super::Day) -> f64,
) -> Option<(usize, f64, f64)> {
    let settled = settled(a);
    let on: Vec<&super::Day> = settled
        .iter()
        .filter(|d| d.events.split('+').any(|e| e == event))
        .collect();
    let free: Vec<&super::Day> = settled.iter().filter(|d| d.events.is_empty()).collect();
    let on_mean = mean(&on.iter().map(|d| value(d)).collect::<Vec<_>>())?;
    let same_weekday: Vec<f64> = free
        .iter()
        .filter(|d| on.iter().any(|o| o.weekday == d.weekday))
        .map(|d| value(d))
        .collect();
    let base =
        mean(&same_weekday).or_else(|| mean(&free.iter().map(|d| value(d)).collect::<Vec<_>>()))?;
    (base > 0.0).then_some((on.len(), on_mean, base))
}

/// Computes every insight the aggregates support.
pub fn insights(a: &Aggregates) -> Vec<Insight> {
    let mut out = Vec::new();
    let personas = a.personas.len();
    let mut persona_rev = vec![0f64; personas];
    let mut persona_tx = vec![0f64; personas];
    for d in &a.days {
        for (p, c) in d.personas.iter().enumerate() {
            persona_rev[p] += c.revenue_paise as f64;
            persona_tx[p] += c.transactions as f64;
        }
    }
    let total_rev: f64 = persona_rev.iter().sum();
    let total_customers: f64 = a.customers.iter().map(|&c| c as f64).sum();
    if total_rev <= 0.0 {
        return out;
    }

    // 1. The persona with the largest revenue share, against its share of customers.
    if let Some((p, _)) = persona_rev
        .iter()
        .enumerate()
        .max_by(|x, y| x.1.total_cmp(y.1))
    {
        let rev_share = share(persona_rev[p], total_rev);
        let cust_share = share(
            a.customers.get(p).copied().unwrap_or(0) as f64,
            total_customers,
        );
        out.push(Insight {
            kind: "persona_share",
            text: format!(
                "The {} persona is {:.1}% of customers and {:.1}% of revenue.",
                a.labels[p],
                cust_share * 100.0,
                rev_share * 100.0
            ),
            figures: vec![
                ("customer_share".into(), cust_share),
                ("revenue_share".into(), rev_share),
            ],
        });
    }

    // 2. Mean basket: largest against smallest.
    let baskets: Vec<(usize, f64)> = (0..personas)
        .filter(|&p| persona_tx[p] > 0.0)
        .map(|p| (p, persona_rev[p] / persona_tx[p]))
        .collect();
    if let (Some(hi), Some(lo)) = (
        baskets.iter().max_by(|x, y| x.1.total_cmp(&y.1)),
        baskets.iter().min_by(|x, y| x.1.total_cmp(&y.1)),
    ) && hi.0 != lo.0
    {
        out.push(Insight {
            kind: "basket_spread",
            text: format!(
                "{} baskets average {}, {:.1}x the {} average of {}.",
                a.labels[hi.0],
                a.currency.short(hi.1.round() as i64),
                hi.1 / lo.1,
                a.labels[lo.0],
                a.currency.short(lo.1.round() as i64)
            ),
            figures: vec![("high_paise".into(), hi.1), ("low_paise".into(), lo.1)],
        });
    }

    // 3. The event with the largest revenue uplift over ordinary days of the same weekday.
    let events = event_names(a);
    let mut best: Option<(String, usize, f64, f64)> = None;
    for e in &events {
        if let Some((n, on, base)) = event_uplift(a, e, |d| day_revenue(&d.personas))
            && best.as_ref().is_none_or(|b| on / base > b.2 / b.3)
        {
            best = Some((e.clone(), n, on, base));
        }
    }
    if let Some((e, n, on, base)) = best {
        out.push(Insight {
            kind: "event_uplift",
            text: format!(
                "{e} lifted daily revenue {:.2}x over ordinary days of the same weekday ({} a day against {}, {n} day{}).",
                on / base,
                a.currency.short(on.round() as i64),
                a.currency.short(base.round() as i64),
                if n == 1 { "" } else { "s" }
            ),
            figures: vec![("uplift".into(), on / base), ("days".into(), n as f64)],
        });
    }

    // 4. The strongest event-and-category uplift (e.g. Dhanteras on jewellery).
    let mut best_cat: Option<(String, usize, f64)> = None;
    for e in &events {
        for c in 0..a.categories.len() {
            if let Some((_, on, base)) = event_uplift(a, e, |d| d.category_revenue[c] as f64) {
                let ratio = on / base;
                if best_cat.as_ref().is_none_or(|b| ratio > b.2) {
                    best_cat = Some((e.clone(), c, ratio));
                }
            }
        }
    }
    if let Some((e, c, ratio)) = best_cat
        && ratio > 1.0
    {
        out.push(Insight {
            kind: "category_uplift",
            text: format!(
                "{e} lifted {} revenue {ratio:.1}x over ordinary days of the same weekday.",
                a.categories[c].replace('_', " ")
            ),
            figures: vec![("uplift".into(), ratio)],
        });
    }

    // 5. Weekend against weekday baskets.
    let (mut we, mut wd) = (Cell::default(), Cell::default());
    for d in settled(a) {
        let target = if d.weekend { &mut we } else { &mut wd };
        for c in &d.personas {
            target.add(c);
        }
    }
    if we.transactions > 0 && wd.transactions > 0 {
        let b_we = we.revenue_paise as f64 / we.transactions as f64;
        let b_wd = wd.revenue_paise as f64 / wd.transactions as f64;
        let diff = b_we / b_wd - 1.0;
        out.push(Insight {
            kind: "weekend_basket",
            text: format!(
                "Weekend baskets are {:.1}% {} than weekday baskets ({} against {}).",
                diff.abs() * 100.0,
                if diff >= 0.0 { "larger" } else { "smaller" },
                a.currency.short(b_we.round() as i64),
                a.currency.short(b_wd.round() as i64)
            ),
            figures: vec![
                ("weekend_basket_paise".into(), b_we),
                ("weekday_basket_paise".into(), b_wd),
            ],
        });
    }

    // 6. The busiest hour of the week.
    let mut busiest = (0usize, 0usize, 0u64);
    for (w, hours) in a.hour_weekday.iter().enumerate() {
        for (h, c) in hours.iter().enumerate() {
            if c.transactions > busiest.2 {
                busiest = (w, h, c.transactions);
            }
        }
    }
    if busiest.2 > 0 {
        let weeks = a
            .days
            .iter()
            .filter(|d| usize::from(d.weekday) == busiest.0)
            .count()
            .max(1);
        out.push(Insight {
            kind: "peak_hour",
            text: format!(
                "The busiest hour is {} {:02}:00-{:02}:00, with {:.0} transactions on an average {}.",
                WEEKDAYS[busiest.0],
                busiest.1,
                busiest.1 + 1,
                busiest.2 as f64 / weeks as f64,
                WEEKDAYS[busiest.0]
            ),
            figures: vec![("transactions_per_day".into(), busiest.2 as f64 / weeks as f64)],
        });
    }

    // 7. Budget pressure: the persona that used most of its budget.
    if let Some((p, u)) = a
        .budget
        .iter()
        .enumerate()
        .filter(|(_, u)| u.limited && u.available_paise > 0)
        .max_by(|x, y| {
            share(x.1.spent_paise as f64, x.1.available_paise as f64)
                .total_cmp(&share(y.1.spent_paise as f64, y.1.available_paise as f64))
        })
    {
        let used = share(u.spent_paise as f64, u.available_paise as f64);
        let trimmed = share(u.trimmed as f64, persona_tx[p]);
        out.push(Insight {
            kind: "budget_pressure",
            text: format!(
                "{} customers spent {:.0}% of the money their budgets held over the run; {:.1}% of their baskets were trimmed to it (money short, or wants paced).",
                a.labels[p],
                used * 100.0,
                trimmed * 100.0
            ),
            figures: vec![("budget_used".into(), used), ("trimmed_share".into(), trimmed)],
        });
    }

    // 8. Churn: overall and the persona that lost most.
    let churned: Vec<f64> = (0..personas)
        .map(|p| {
            a.days
                .iter()
                .map(|d| d.churned.get(p).copied().unwrap_or(0) as f64)
                .sum()
        })
        .collect();
    let total_churned: f64 = churned.iter().sum();
    if total_churned > 0.0 {
        let rates: Vec<f64> = (0..personas)
            .map(|p| share(churned[p], a.customers.get(p).copied().unwrap_or(0) as f64))
            .collect();
        if let Some((p, r)) = rates.iter().enumerate().max_by(|x, y| x.1.total_cmp(y.1)) {
            out.push(Insight {
                kind: "churn",
                text: format!(
                    "{:.0} customers churned ({:.1}% of the starting population); {} churned most, at {:.1}%.",
                    total_churned,
                    share(total_churned, total_customers) * 100.0,
                    a.labels[p],
                    r * 100.0
                ),
                figures: vec![("churned".into(), total_churned), ("worst_rate".into(), *r)],
            });
        }
    }
    out
}

/// The insights as Markdown, numbered.
pub fn markdown(scenario: &str, insights: &[Insight]) -> String {
    let mut s = format!("# Insights: {scenario}\n\n");
    for (i, insight) in insights.iter().enumerate() {
        s.push_str(&format!("{}. {}\n", i + 1, insight.text));
    }
    s
}
