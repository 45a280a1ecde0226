//! The dashboard's views as SQL over a folder's tables, all under the same filters (dates,
//! personas, categories, events, stores), which are checked against what the run holds
//! before they reach a query: a value the run does not have is refused, not quoted.
//!
//! Sales views read the rollups (`sales`, `basket_values`), so they answer in milliseconds
//! at any run size; customer views read `daily_metrics` and `churn_events`; a behaviour's
//! table is summed by day over its numeric columns.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;

use super::query::literal;
use crate::analytics::Aggregates;
use crate::output::schema::Kind;
use crate::serve::folders::TableFile;

/// What a folder's runs can be filtered by, read once from `aggregates.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Meta {
    /// Persona names, in the scenario's order.
    pub personas: Vec<String>,
    /// Their labels.
    pub labels: Vec<String>,
    /// Category names.
    pub categories: Vec<String>,
    /// Calendar events seen on any day.
    pub events: Vec<String>,
    /// Each day: date, festival, weekend, events (`+`-joined).
    pub days: Vec<DayInfo>,
    /// Stores, where a table has a `store` column (the `stores` behaviour).
    pub stores: Vec<u64>,
    /// Mean loyalty of active customers by day and persona (from the day's histogram, each
    /// bin at its middle).
    pub loyalty: Vec<LoyaltyPoint>,
}

/// A persona's mean loyalty on a day.
#[derive(Debug, Clone, Serialize)]
pub struct LoyaltyPoint {
    /// The day.
    pub date: NaiveDate,
    /// The persona.
    pub persona: String,
    /// Mean loyalty, 0 to 1.
    pub mean: f64,
}

/// A day of the run, for the bands on the charts and the event filter.
#[derive(Debug, Clone, Serialize)]
pub struct DayInfo {
    /// The date.
    pub date: NaiveDate,
    /// One of a festival's full-effect days.
    pub festival: bool,
    /// Saturday or Sunday.
    pub weekend: bool,
    /// Events active that day.
    pub events: Vec<String>,
}

impl DayInfo {
    /// A day from its `+`-joined events, adding those not yet seen to `seen`.
    fn new(
        date: NaiveDate,
        festival: bool,
        weekend: bool,
        joined: &str,
        seen: &mut Vec<String>,
    ) -> Self {
        let events: Vec<String> = joined
            .split('+')
            .filter(|e| !e.is_empty())
            .map(str::to_owned)
            .collect();
        for e in &events {
            if !seen.contains(e) {
                seen.push(e.clone());
            }
        }
        Self {
            date,
            festival,
            weekend,
            events,
        }
    }
}

impl Meta {
    /// From the folder's aggregates (and the store ids, read by the caller).
    pub fn new(a: &Aggregates, stores: Vec<u64>) -> Self {
        let mut events: Vec<String> = Vec::new();
        let days = a
            .days
            .iter()
            .filter_map(|d| {
                let date = d.date.parse().ok()?;
                Some(DayInfo::new(
                    date,
                    d.festival,
                    d.weekend,
                    &d.events,
                    &mut events,
                ))
            })
            .collect();
        let mut loyalty = Vec::new();
        for d in &a.days {
            let Ok(date) = d.date.parse() else { continue };
            for (persona, hist) in a.personas.iter().zip(&d.loyalty) {
                let n: u64 = hist.iter().sum();
                if n > 0 {
                    let bins = hist.len() as f64;
                    let sum: f64 = hist
                        .iter()
                        .enumerate()
                        .map(|(b, &k)| (b as f64 + 0.5) / bins * k as f64)
                        .sum();
                    loyalty.push(LoyaltyPoint {
                        date,
                        persona: persona.clone(),
                        mean: sum / n as f64,
                    });
                }
            }
        }
        Self {
            loyalty,
            personas: a.personas.clone(),
            labels: a.labels.clone(),
            categories: a.categories.clone(),
            events,
            days,
            stores,
        }
    }
}

impl Meta {
    /// From an experiment's file: its personas and the base's calendar (an experiment
    /// keeps no tables, so no categories, stores or loyalty).
    pub fn from_experiment(o: &crate::experiment::Outcome) -> Self {
        let mut events: Vec<String> = Vec::new();
        let days = o
            .days
            .iter()
            .map(|d| DayInfo::new(d.date, d.festival, d.weekend, &d.events, &mut events))
            .collect();
        let labels = if o.labels.len() == o.personas.len() {
            o.labels.clone()
        } else {
            o.personas.clone()
        };
        Self {
            personas: o.personas.clone(),
            labels,
            categories: Vec::new(),
            events,
            days,
            stores: Vec::new(),
            loyalty: Vec::new(),
        }
    }
}

/// The filters every view takes, as the URL carries them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Filters {
    /// First day shown.
    pub from: Option<NaiveDate>,
    /// Last day shown.
    pub to: Option<NaiveDate>,
    /// Personas (all when empty).
    pub personas: Vec<String>,
    /// Categories (whole baskets when empty).
    pub categories: Vec<String>,
    /// Events: days on which any of them was active.
    pub events: Vec<String>,
    /// Stores, for tables that have them.
    pub stores: Vec<u64>,
}

impl Filters {
    /// Reads the filters from a URL's query (`from`, `to`, `persona`, `category`, `event`,
    /// `store`; lists comma-separated), refusing any value the run does not hold.
    pub fn parse(query: &BTreeMap<String, String>, meta: &Meta) -> Result<Self, String> {
        let list = |key: &str| -> Vec<String> {
            query
                .get(key)
                .map(|v| {
                    v.split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let date = |key: &str| -> Result<Option<NaiveDate>, String> {
            match query.get(key).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(v) => v
                    .parse()
                    .map(Some)
                    .map_err(|_| format!("`{key}={v}` is not a date (YYYY-MM-DD)")),
            }
        };
        let known =
            |key: &str, values: Vec<String>, within: &[String]| -> Result<Vec<String>, String> {
                match values.iter().find(|v| !within.contains(v)) {
                    Some(v) => Err(format!(
                        "the run has no {key} `{v}`; it has: {}",
                        within.join(", ")
                    )),
                    None => Ok(values),
                }
            };
        let stores = list("store")
            .iter()
            .map(|s| match s.parse::<u64>() {
                Ok(n) if meta.stores.contains(&n) => Ok(n),
                _ => Err(format!("the run has no store `{s}`")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let f = Self {
            from: date("from")?,
            to: date("to")?,
            personas: known("persona", list("persona"), &meta.personas)?,
            categories: known("category", list("category"), &meta.categories)?,
            events: known("event", list("event"), &meta.events)?,
            stores,
        };
        if let (Some(a), Some(b)) = (f.from, f.to)
            && a > b
        {
            return Err(format!("`from={a}` is after `to={b}`"));
        }
        Ok(f)
    }

    /// The days the event filter keeps, `None` when there is no event filter.
    pub(crate) fn event_days(&self, meta: &Meta) -> Option<Vec<NaiveDate>> {
        (!self.events.is_empty()).then(|| {
            meta.days
                .iter()
                .filter(|d| d.events.iter().any(|e| self.events.contains(e)))
                .map(|d| d.date)
                .collect()
        })
    }

    /// The conditions on a table with the given columns, and the filters it cannot take.
    fn conditions(
        &self,
        meta: &Meta,
        has: &dyn Fn(&str) -> bool,
        category: Category,
    ) -> (Vec<String>, Vec<&'static str>) {
        let mut c = Vec::new();
        let mut ignored = Vec::new();
        let date = if has("date") {
            Some("date")
        } else if has("timestamp") {
            Some("CAST(timestamp AS DATE)")
        } else {
            None
        };
        match date {
            Some(d) => {
                if let Some(from) = self.from {
                    c.push(format!("{d} >= DATE {}", literal(&from.to_string())));
                }
                if let Some(to) = self.to {
                    c.push(format!("{d} <= DATE {}", literal(&to.to_string())));
                }
                if let Some(days) = self.event_days(meta) {
                    c.push(if days.is_empty() {
                        "FALSE".into()
                    } else {
                        in_list(
                            d,
                            days.iter()
                                .map(|d| format!("DATE {}", literal(&d.to_string()))),
                        )
                    });
                }
            }
            None => {
                if self.from.is_some() || self.to.is_some() {
                    ignored.push("dates");
                }
                if !self.events.is_empty() {
                    ignored.push("event");
                }
            }
        }
        if !self.personas.is_empty() {
            if has("persona") {
                c.push(in_list("persona", self.personas.iter().map(|p| literal(p))));
            } else {
                ignored.push("persona");
            }
        }
        let categories = || in_list("category", self.categories.iter().map(|p| literal(p)));
        let chosen = !self.categories.is_empty();
        match category {
            Category::Rollup if chosen => c.push(categories()),
            Category::Rollup => c.push("category IS NULL".into()),
            Category::Rows if chosen => c.push(categories()),
            Category::Rows => c.push("category IS NOT NULL".into()),
            Category::Column if chosen => c.push(categories()),
            Category::None if chosen => ignored.push("category"),
            Category::Column | Category::None => {}
        }
        if !self.stores.is_empty() {
            if has("store") {
                c.push(in_list("store", self.stores.iter().map(u64::to_string)));
            } else {
                ignored.push("store");
            }
        }
        (c, ignored)
    }
}

/// How a table's `category` column meets the category filter.
#[derive(Clone, Copy, PartialEq)]
enum Category {
    /// A rollup: whole baskets (empty category) without a filter, else the categories'.
    Rollup,
    /// A rollup's category rows only (the mix): all, or those filtered.
    Rows,
    /// An ordinary column, filtered when asked.
    Column,
    /// No category.
    None,
}

/// A view's queries, in the order the page draws them, and the filters it could not take.
#[derive(Debug, Serialize)]
pub struct Plan {
    /// Name and SQL of each query.
    pub queries: Vec<(String, String)>,
    /// Filters that do not apply to this view's tables.
    pub ignored: Vec<&'static str>,
}

/// `column IN (a, b, ...)` of values already written as SQL.
fn in_list(column: &str, values: impl Iterator<Item = String>) -> String {
    format!("{column} IN ({})", values.collect::<Vec<_>>().join(", "))
}

fn where_clause(c: &[String]) -> String {
    if c.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", c.join(" AND "))
    }
}

/// The views the page offers over a folder's tables.
pub const VIEWS: &[&str] = &[
    "overview",
    "daily",
    "heatmap",
    "mix",
    "baskets",
    "customers",
];

/// The tables view `name` reads (none for a behaviour's table or an unknown view).
pub fn needs(name: &str) -> &'static [&'static str] {
    match name {
        "overview" | "daily" | "heatmap" | "mix" => &["sales"],
        "baskets" => &["basket_values"],
        "customers" => &["daily_metrics"],
        _ => &[],
    }
}

/// The queries of view `name` under `filters`; `None` for a view the folder cannot show.
pub fn plan(name: &str, filters: &Filters, meta: &Meta, tables: &[TableFile]) -> Option<Plan> {
    let table = |n: &str| tables.iter().find(|t| t.name == n);
    let columns =
        |t: &TableFile| -> Vec<String> { t.columns.iter().map(|c| c.0.clone()).collect() };
    let mut ignored = Vec::new();
    let mut on = |t: &TableFile, category: Category| {
        let cols = columns(t);
        let (c, ig) = filters.conditions(meta, &|n| cols.iter().any(|c| c == n), category);
        for i in ig {
            if !ignored.contains(&i) {
                ignored.push(i);
            }
        }
        where_clause(&c)
    };
    let queries: Vec<(String, String)> = match name {
        "overview" | "daily" | "heatmap" | "mix" | "baskets" => {
            let (source, category, key, select, group) = match name {
                "overview" => (
                    "sales",
                    Category::Rollup,
                    "totals",
                    "persona, SUM(transactions) AS transactions, SUM(units) AS units, SUM(revenue) AS revenue",
                    "persona",
                ),
                "daily" => (
                    "sales",
                    Category::Rollup,
                    "daily",
                    "date, persona, SUM(transactions) AS transactions, SUM(revenue) AS revenue",
                    "date, persona",
                ),
                // ISO weekday, Monday 1.
                "heatmap" => (
                    "sales",
                    Category::Rollup,
                    "heatmap",
                    "CAST(date_part('isodow', date) AS INT) AS weekday, hour, SUM(transactions) AS transactions, SUM(revenue) AS revenue",
                    "1, 2",
                ),
                "mix" => (
                    "sales",
                    Category::Rows,
                    "mix",
                    "category, persona, SUM(transactions) AS transactions, SUM(units) AS units, SUM(revenue) AS revenue",
                    "category, persona",
                ),
                _ => (
                    "basket_values",
                    Category::Rollup,
                    "baskets",
                    "low, high, persona, SUM(transactions) AS transactions",
                    "low, high, persona",
                ),
            };
            let w = on(table(source)?, category);
            vec![(
                key.into(),
                format!("SELECT {select} FROM {source}{w} GROUP BY {group} ORDER BY {group}"),
            )]
        }
        "customers" => {
            let d = table("daily_metrics")?;
            let w = on(d, Category::None);
            let mut q = vec![(
                "daily".into(),
                format!(
                    "SELECT date, persona, active_customers, acquired, churned, retention_offers FROM daily_metrics{w} ORDER BY date, persona"
                ),
            )];
            if let Some(c) = table("churn_events") {
                let w = on(c, Category::None);
                q.push(("causes".into(), format!("SELECT date, cause, COUNT(*) AS customers FROM churn_events{w} GROUP BY date, cause ORDER BY date, cause")));
            }
            q
        }
        other => {
            let t = table(other.strip_prefix("table:")?)?;
            let w = on(t, Category::Column);
            let quoted = format!("\"{}\"", t.name);
            let mut q = Vec::new();
            let numeric: Vec<&str> = t
                .columns
                .iter()
                .filter(|(n, k, _)| {
                    matches!(
                        k,
                        Kind::U8 | Kind::U16 | Kind::U32 | Kind::U64 | Kind::Money | Kind::Float
                    ) && ![
                        "store",
                        "hour",
                        "customer_id",
                        "transaction_id",
                        "line",
                        "day",
                    ]
                    .contains(&n.as_str())
                })
                .map(|(n, _, _)| n.as_str())
                .collect();
            if t.columns.iter().any(|c| c.0 == "date") && !numeric.is_empty() {
                let sums: Vec<String> = numeric
                    .iter()
                    .map(|n| format!("SUM(\"{n}\") AS \"{n}\""))
                    .collect();
                q.push((
                    "by_day".into(),
                    format!(
                        "SELECT date, {} FROM {quoted}{w} GROUP BY date ORDER BY date",
                        sums.join(", ")
                    ),
                ));
            }
            q.push((
                "rows".into(),
                format!("SELECT * FROM {quoted}{w} LIMIT 200"),
            ));
            q
        }
    };
    Some(Plan { queries, ignored })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        Meta {
            personas: vec!["premium".into(), "budget".into()],
            labels: vec!["Premium".into(), "Budget".into()],
            categories: vec!["sweets".into(), "it's".into()],
            events: vec!["Diwali".into()],
            days: vec![
                DayInfo {
                    date: "2026-11-08".parse().unwrap(),
                    festival: true,
                    weekend: true,
                    events: vec!["Diwali".into()],
                },
                DayInfo {
                    date: "2026-11-09".parse().unwrap(),
                    festival: false,
                    weekend: false,
                    events: vec![],
                },
            ],
            stores: vec![0, 1],
            loyalty: Vec::new(),
        }
    }

    fn q(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn values_the_run_does_not_hold_are_refused_before_any_query() {
        let m = meta();
        for (k, v) in [
            ("persona", "premium' OR 1=1 --"),
            ("category", "nope"),
            ("event", "Holi"),
            ("store", "7"),
            ("store", "x"),
            ("from", "2026-13-01"),
        ] {
            assert!(Filters::parse(&q(&[(k, v)]), &m).is_err(), "{k}={v}");
        }
        assert!(Filters::parse(&q(&[("from", "2026-11-09"), ("to", "2026-11-08")]), &m).is_err());
        let f = Filters::parse(
            &q(&[
                ("persona", "premium,budget"),
                ("category", "it's"),
                ("store", "1"),
            ]),
            &m,
        )
        .unwrap();
        assert_eq!(f.personas, ["premium", "budget"]);
        assert_eq!(f.stores, [1]);
    }

    #[test]
    fn filters_become_conditions_and_quotes_are_escaped() {
        let m = meta();
        let f = Filters::parse(
            &q(&[
                ("from", "2026-11-08"),
                ("category", "it's"),
                ("event", "Diwali"),
                ("persona", "budget"),
            ]),
            &m,
        )
        .unwrap();
        let has = |n: &str| ["date", "persona", "category"].contains(&n);
        let (c, ignored) = f.conditions(&m, &has, Category::Rollup);
        assert!(ignored.is_empty());
        assert!(c.contains(&"date >= DATE '2026-11-08'".to_owned()), "{c:?}");
        assert!(
            c.contains(&"date IN (DATE '2026-11-08')".to_owned()),
            "{c:?}"
        );
        assert!(c.contains(&"persona IN ('budget')".to_owned()), "{c:?}");
        assert!(c.contains(&"category IN ('it''s')".to_owned()), "{c:?}");
        // Whole baskets without a category filter; a table without the columns says so.
        let (c, _) = Filters::default().conditions(&m, &has, Category::Rollup);
        assert_eq!(c, ["category IS NULL"]);
        let (_, ignored) = f.conditions(&m, &|n| n == "store", Category::None);
        assert_eq!(ignored, ["dates", "event", "persona", "category"]);
    }
}
