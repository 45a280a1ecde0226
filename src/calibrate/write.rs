//! Writes a calibration as scenario text: `personas.ron`, `calendar.ron` and a ready
//! `scenario.ron` that includes them, in the same schema scenario authors write, with
//! comments saying where each number came from.

use std::fmt::Write as _;

use super::estimate::{EventFit, PersonaFit, event_dates, spec};
use crate::scenario::schema::{CalendarFile, EventFile, EventSpecFile};

/// What the simulated moments set on top of a persona's estimates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tuning {
    /// Multiplies the recency curve (loyalty and budget lower visits; this restores them).
    pub visits: f64,
    /// Monthly budget over the persona's median monthly spend.
    pub budget: f64,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            visits: 1.0,
            budget: 2.0,
        }
    }
}

/// Share of income the budget takes (income is only a scale for the budget here).
const INCOME_SHARE: f64 = 0.3;

/// A number with `d` decimals, trailing zeros trimmed (RON reads `1.0` and `1`).
fn num(x: f64, d: usize) -> String {
    let s = format!("{x:.d$}");
    if s.contains('.') {
        let t = s.trim_end_matches('0').trim_end_matches('.');
        if t.contains('.') {
            t.to_owned()
        } else {
            format!("{t}.0")
        }
    } else {
        s
    }
}

/// A probability with enough significant digits for small values.
fn prob(p: f64) -> String {
    let d = if p >= 0.01 { 4 } else { 6 };
    num(p, d)
}

/// `personas.ron`: one persona per segment, with `tuning` applied.
pub fn personas(
    fits: &[PersonaFit],
    tuning: &[Tuning],
    categories: &[String],
    source: &str,
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "// Personas calibrated by `bazaar calibrate` from {source}: one per customer segment\n\
         // (k-means on recency, frequency, value and timing). Recency, weekday, hour, basket and\n\
         // churn figures are estimated from each segment's shopping days; the recency scale and\n\
         // the budget come from the simulated moments (see fit.json). Prices are per unit, in\n\
         // the scenario's currency; a line's quantity is the log's rows of that category."
    );
    s.push_str("[\n");
    for (f, t) in fits.iter().zip(tuning) {
        let cat = |c: u16| format!("{:?}", categories[usize::from(c)]);
        let _ = writeln!(s, "    Persona(");
        let _ = writeln!(s, "        name: {:?}, label: {:?},", f.name, label(f));
        let _ = writeln!(
            s,
            "        // {} customers in the data ({} joined during it); {:.1} days between shopping days on average.",
            f.customers, f.acquired, f.mean_gap
        );
        let (lo, hi) = f.monthly_spend;
        let income = |x: f64| (x * t.budget / INCOME_SHARE).round().max(1.0) as u64;
        let _ = writeln!(
            s,
            "        age: (25, 75), income: ({}, {}),",
            income(lo.max(1.0)),
            income(hi.max(lo).max(1.0))
        );
        let steps: Vec<String> = f
            .recency
            .iter()
            .map(|&(d, p)| format!("(days: {d}, p: {})", prob((p * t.visits).min(0.95))))
            .collect();
        let _ = writeln!(
            s,
            "        visits: (\n            first_visit: {},\n            // Life-table hazard of a shopping day by days since the last, x {} (simulated moments).\n            recency: [{}],\n            weekday: [{}],\n            cap: 0.95,\n        ),",
            prob(f.first_visit),
            num(t.visits, 3),
            steps.join(", "),
            f.weekday
                .iter()
                .map(|w| num(*w, 3))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let total: f64 = f.hours.iter().sum::<f64>().max(1.0);
        let _ = writeln!(
            s,
            "        hours: Profile([{}]),",
            f.hours
                .iter()
                .map(|h| num(h / total * 24.0, 3))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let needs: Vec<String> = f.needs.iter().map(|&c| cat(c)).collect();
        let wants: Vec<String> = f
            .basket
            .iter()
            .filter(|i| !f.needs.contains(&i.category))
            .map(|i| cat(i.category))
            .collect();
        let _ = writeln!(
            s,
            "        // Budget: {} x the segment's monthly spend (its 25th to 75th percentile as the income range).\n        budget: (income_share: {INCOME_SHARE}, payday: 1, exhausted_visit_factor: 0.8, needs: [{}], priority: [{}]),",
            num(t.budget, 3),
            needs.join(", "),
            wants.join(", ")
        );
        let _ = writeln!(
            s,
            "        loyalty: (initial: (0.7, 0.95), visit_effect: 0.3, gain: 0.03, decay: 0.003, trim_penalty: 0.02),"
        );
        let _ = writeln!(
            s,
            "        // Churn: customers silent for four times the segment's 95th-percentile gap (60 days at least) before the log ends, over customer-days.\n        churn: (base: {}),",
            prob(f.churn.max(1e-6))
        );
        if !f.trips.is_empty() {
            let trips: Vec<String> = f
                .trips
                .iter()
                .map(|&(share, p)| format!("(share: {}, purchase: {})", num(share, 4), num(p, 3)))
                .collect();
            let _ = writeln!(
                s,
                "        // Kinds of trip: k-means on the categories of each shopping day.\n        trips: [{}],",
                trips.join(", ")
            );
        }
        let _ = writeln!(s, "        basket: [");
        for i in &f.basket {
            let (median, sigma, lo, hi) = i.price;
            let _ = writeln!(
                s,
                "            (category: {}, p: {}, quantity: ({}, {}), price: LogNormal(median: {}, sigma: {}, min: {}, max: {})),",
                cat(i.category),
                prob(i.p),
                i.quantity.0,
                i.quantity.1,
                num(median, 2),
                num(sigma, 3),
                num(lo, 2),
                num(hi.max(lo), 2)
            );
        }
        let _ = writeln!(s, "        ],\n    ),");
    }
    s.push_str("]\n");
    s
}

/// A reader's label of a persona.
fn label(f: &PersonaFit) -> String {
    format!(
        "Every {:.0} days, {:.0} a visit",
        f.mean_gap.max(1.0),
        f.mean_value
    )
}

/// A persona name from its rhythm and spend: `weekly_big`, `monthly_small`...
pub fn name(mean_gap: f64, value: f64, median_value: f64) -> String {
    let rhythm = match mean_gap {
        g if g < 2.5 => "daily",
        g if g < 5.0 => "twice_weekly",
        g if g < 10.0 => "weekly",
        g if g < 21.0 => "fortnightly",
        g if g < 45.0 => "monthly",
        _ => "occasional",
    };
    let size = if value > 1.5 * median_value {
        "big"
    } else if value < 0.67 * median_value {
        "small"
    } else {
        "mid"
    };
    format!("{rhythm}_{size}")
}

fn event(kind: &str, e: &EventSpecFile, traffic: f64, purchase: f64, note: &str) -> String {
    let mut s = format!("{kind}(name: {:?}, from: {:?}", e.name, e.from);
    if let Some(t) = &e.to {
        let _ = write!(s, ", to: {t:?}");
    }
    if let Some(d) = e.days {
        let _ = write!(s, ", days: {d}");
    }
    if kind != "Closed" {
        if e.lead_in > 0 {
            let _ = write!(s, ", lead_in: {}", e.lead_in);
        }
        if e.tail > 0 {
            let _ = write!(s, ", tail: {}", e.tail);
        }
        let _ = write!(s, ", traffic: {}", num(traffic, 3));
        if (purchase - 1.0).abs() > 1e-9 {
            let _ = write!(s, ", purchase: {}", num(purchase, 3));
        }
    }
    s.push(')');
    if !note.is_empty() {
        let _ = write!(s, ", // {note}");
    } else {
        s.push(',');
    }
    s
}

/// `calendar.ron`: the input calendar's events, every year, with the effects the data
/// shows for those it covers, eves it found, and closures as `Closed`.
pub fn calendar(
    input: &CalendarFile,
    fits: &[EventFit],
    source: &str,
    calendar_name: &str,
) -> String {
    let mut s = format!(
        "// Holiday calendar calibrated by `bazaar calibrate` from {source} on the dates of\n\
         // {calendar_name}: each event's traffic is its shopping days over those expected from\n\
         // ordinary days of the same weekday within five weeks, `purchase` its categories per\n\
         // visit over an ordinary visit's; an event the log does not cover keeps the input's\n\
         // figures; an event under 5% of its expected visits is a closure. Category effects of\n\
         // the input are left out (the catalog is the log's).\nCalendar(\n    events: [\n"
    );
    for e in &input.events {
        let sp = spec(e);
        let input_kind = match e {
            EventFile::Festival(_) => "Festival",
            EventFile::Dip(_) => "Dip",
            EventFile::Sale(_) => "Sale",
            EventFile::Closed(_) => "Closed",
        };
        let line = match fits.iter().find(|f| f.name == sp.name) {
            Some(f) if f.closed() => event(
                "Closed",
                sp,
                0.0,
                1.0,
                &format!("{:.0} visits against {:.0} expected", f.visits, f.expected),
            ),
            Some(f) => {
                let kind = match (input_kind, f.traffic < 1.0) {
                    ("Closed", true) => "Dip",
                    ("Closed", false) => "Festival",
                    (k, _) => k,
                };
                event(
                    kind,
                    sp,
                    f.traffic,
                    f.purchase,
                    &format!(
                        "{:.0} visits against {:.0} expected over {} day(s)",
                        f.visits, f.expected, f.days
                    ),
                )
            }
            None => event(
                input_kind,
                sp,
                sp.traffic,
                sp.purchase,
                "not in the log: as the input says",
            ),
        };
        let _ = writeln!(s, "        {line}");
        if let Some((v, ex)) = fits.iter().find(|f| f.name == sp.name).and_then(|f| f.eve)
            && let Some((_, _, start, _)) = event_dates(sp)
        {
            let eve = EventSpecFile {
                name: format!("{} eve", sp.name),
                from: (start - chrono::Duration::days(1))
                    .format("%Y-%m-%d")
                    .to_string(),
                to: None,
                days: None,
                lead_in: 0,
                tail: 0,
                traffic: 1.0,
                purchase: 1.0,
                quantity: 1.0,
                price: (1.0, 1.0),
                categories: Vec::new(),
            };
            let r = v / ex.max(1.0);
            let kind = if r < 1.0 { "Dip" } else { "Festival" };
            let _ = writeln!(
                s,
                "        {}",
                event(
                    kind,
                    &eve,
                    r,
                    1.0,
                    &format!("the eve: {v:.0} visits against {ex:.0} expected")
                )
            );
        }
    }
    s.push_str("    ],\n)\n");
    s
}

/// A population line of `scenario.ron`.
pub struct Population {
    /// Persona name.
    pub persona: String,
    /// Customers at the start.
    pub count: u64,
    /// Customers joining per day.
    pub new_per_day: f64,
}

/// `scenario.ron`, including `personas.ron` and `calendar.ron` beside it.
#[allow(clippy::too_many_arguments)]
pub fn scenario(
    name: &str,
    description: &str,
    seed: u64,
    start: &str,
    end: &str,
    currency: &str,
    categories: &[String],
    population: &[Population],
) -> String {
    let mut s = format!(
        "// {description}\nScenario(\n    name: {name:?},\n    description: {description:?},\n    seed: {seed},\n    start: {start:?},\n    end: {end:?},\n    money: Money(currency: {currency:?}),\n    catalog: [\n"
    );
    for c in categories {
        let _ = writeln!(s, "        (name: {c:?}),");
    }
    s.push_str("    ],\n    personas: include(\"personas.ron\"),\n    population: [\n");
    for p in population {
        let _ = writeln!(
            s,
            "        (persona: {:?}, count: {}, new_per_day: {}),",
            p.persona,
            p.count,
            num(p.new_per_day, 4)
        );
    }
    let _ = write!(
        s,
        "    ],\n    calendar: include(\"calendar.ron\"),\n    output: (dir: \"out/{name}\", formats: [Csv]),\n)\n"
    );
    s
}

/// A category name as a scenario identifier: lower case, runs of other characters as `_`.
pub fn identifier(raw: &str) -> String {
    let mut s = String::new();
    for c in raw.trim().chars() {
        if c.is_alphanumeric() {
            s.extend(c.to_lowercase());
        } else if !s.ends_with('_') && !s.is_empty() {
            s.push('_');
        }
    }
    let s = s.trim_end_matches('_').to_owned();
    if s.is_empty() { "other".into() } else { s }
}
