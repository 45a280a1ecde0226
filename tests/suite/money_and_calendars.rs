//! Locale-neutral money and the US calendar: a scenario in dollars writes dollars with cents
//! and Western grouping everywhere (tables, summary, report, charts), one in yen writes whole
//! yen in CSV and `decimal(18, 0)` in Parquet, both pass `bazaar check`; the US calendar's
//! dates follow each holiday's rule, and a closed day has no visits.

use crate::common;

use std::collections::HashMap;
use std::path::Path;

use chrono::{Datelike, NaiveDate, Weekday};
use common::{bazaar, text, write};

/// A small grocer in `currency` (with the US calendar), around Thanksgiving and Christmas.
fn grocer(currency: &str, start: &str, days: u32) -> String {
    format!(
        r#"Scenario(
    name: "grocer",
    seed: 7,
    start: "{start}",
    days: {days},
    money: Money(currency: "{currency}"),
    catalog: [(name: "produce"), (name: "dairy"), (name: "turkey")],
    personas: [
        Persona(
            name: "household",
            age: (25, 70),
            income: (3000, 9000),
            visits: (recency: [(days: 0, p: 0.15), (days: 3, p: 0.35)]),
            hours: Slots([("08:00", "21:00")]),
            budget: (income_share: 0.2, payday: 1, exhausted_visit_factor: 0.5),
            basket: [
                (category: "produce", p: 0.8, quantity: (1, 4), price: Uniform(1.5, 6.0)),
                (category: "dairy", p: 0.6, quantity: (1, 3), price: Uniform(2.0, 5.5)),
                (category: "turkey", p: 0.05, quantity: (1, 1), price: Uniform(20, 45)),
            ],
        ),
    ],
    population: [(persona: "household", count: 6000)],
    calendar: include("{calendar}"),
    output: (formats: [Csv, Parquet]),
)
"#,
        calendar = common::root().join("scenarios/calendars/us.ron").display()
    )
}

fn run(dir: &Path, scenario: &str) -> std::path::PathBuf {
    let path = write(dir, "grocer.ron", scenario);
    let out = dir.join("out");
    let o = bazaar(&[
        "run",
        path.to_str().unwrap(),
        "--threads",
        "2",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let o = bazaar(&["check", out.to_str().unwrap()]);
    assert!(o.status.success(), "{:?}", text(&o));
    out
}

/// daily_metrics.csv as (date -> (visits, revenue field, events)).
fn days(out: &Path) -> HashMap<String, (u64, String, String)> {
    let mut r = csv::Reader::from_path(out.join("daily_metrics.csv")).unwrap();
    let h = r.headers().unwrap().clone();
    let at = |n: &str| h.iter().position(|c| c == n).unwrap();
    let (date, visits, revenue, events) = (at("date"), at("visits"), at("revenue"), at("events"));
    r.records()
        .map(|row| {
            let row = row.unwrap();
            (
                row[date].to_owned(),
                (
                    row[visits].parse().unwrap(),
                    row[revenue].to_owned(),
                    row[events].to_owned(),
                ),
            )
        })
        .collect()
}

#[test]
fn dollars_everywhere_and_christmas_day_closed() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &grocer("USD", "2026-11-20", 40));

    // Tables: cents, two decimals; the closure has no visits and names itself.
    let d = days(&out);
    let (visits, revenue, events) = &d["2026-12-25"];
    assert_eq!((*visits, revenue.as_str()), (0, "0.00"));
    assert_eq!(events, "Christmas Day");
    let rev = |date: &str| -> f64 { d[date].1.parse().unwrap() };
    assert!(
        d.values()
            .all(|(_, r, _)| r.split_once('.').unwrap().1.len() == 2)
    );
    // The grocer's busy days: the eve of Thanksgiving over the Wednesday a week before, and
    // 23 December over 9 December (both Wednesdays); Thanksgiving itself quiet.
    assert!(rev("2026-11-25") > 1.3 * rev("2026-12-02"), "{d:?}");
    assert!(rev("2026-12-23") > 1.6 * rev("2026-12-09"), "{d:?}");
    assert!(rev("2026-11-26") < 0.5 * rev("2026-12-03"), "{d:?}");

    // Summary and aggregates name the currency; amounts there are dollars.
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["currency"]["code"], "USD");
    assert_eq!(summary["currency"]["symbol"], "$");
    assert_eq!(summary["currency"]["grouping"], "Western");
    let paid: i64 = summary["totals"]["revenue_paise"].as_i64().unwrap();
    assert!((summary["revenue"].as_f64().unwrap() - paid as f64 / 100.0).abs() < 1e-6);
    let agg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("aggregates.json")).unwrap()).unwrap();
    assert_eq!(agg["currency"]["code"], "USD");

    // Readers see dollars grouped in threes, never rupees.
    let page = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(!page.contains("Rs ") && !page.contains(" lakh") && !page.contains(" crore"));
    let revenue_figure = bazaar::money::Currency::from_code("USD")
        .unwrap()
        .short(paid);
    assert!(revenue_figure.starts_with('$'), "{revenue_figure}");
    assert!(
        page.contains(&revenue_figure),
        "{revenue_figure} not in the page"
    );
    let chart = std::fs::read_to_string(out.join("charts/basket_distribution.svg")).unwrap();
    assert!(
        chart.contains("\n$") && !chart.contains("Rs "),
        "basket axis in dollars: {chart}"
    );
    let insights = std::fs::read_to_string(out.join("insights.md")).unwrap();
    assert!(
        !insights.contains("Rs ") && insights.contains('$'),
        "{insights}"
    );
}

#[test]
fn yen_have_no_decimals_in_csv_or_parquet() {
    use arrow_array::Decimal128Array;
    use arrow_schema::DataType;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let dir = tempfile::tempdir().unwrap();
    let scenario = grocer("JPY", "2026-12-01", 5)
        .replace("income: (3000, 9000)", "income: (300000, 900000)")
        .replace("Uniform(1.5, 6.0)", "Uniform(150, 600)")
        .replace("Uniform(2.0, 5.5)", "Uniform(200, 550)")
        .replace("Uniform(20, 45)", "Uniform(2000, 4500)")
        // A plugin's daily column makes `daily_metrics` a declared table, whose Parquet
        // types `bazaar check` compares at the folder's minor units.
        .replace(
            "    output:",
            "    systems: [WordOfMouth(rate: 0.01)],\n    output:",
        );
    let out = run(dir.path(), &scenario);

    let mut r = csv::Reader::from_path(out.join("transactions.csv")).unwrap();
    let total = r
        .headers()
        .unwrap()
        .iter()
        .position(|c| c == "total")
        .unwrap();
    let csv_totals: Vec<i64> = r
        .records()
        .map(|row| row.unwrap()[total].parse().expect("whole yen"))
        .collect();
    assert!(csv_totals.len() > 1_000);
    assert!(csv_totals.iter().all(|&t| (150..=100_000).contains(&t)));

    let file = std::fs::File::open(out.join("transactions.parquet")).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut parquet_totals = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let column = batch.column_by_name("total").unwrap();
        assert_eq!(column.data_type(), &DataType::Decimal128(18, 0));
        let a = column.as_any().downcast_ref::<Decimal128Array>().unwrap();
        parquet_totals.extend(a.values().iter().map(|&v| v as i64));
    }
    assert_eq!(parquet_totals, csv_totals);

    let summary = std::fs::read_to_string(out.join("summary.json")).unwrap();
    assert!(summary.contains("\"minor_units\": 0"), "{summary}");
    let page = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(page.contains('¥') && !page.contains("Rs "));
    let check = bazaar(&["check", out.to_str().unwrap()]);
    let said = text(&check).0;
    assert!(
        said.contains("baskets above ¥") && !said.contains("Rs "),
        "{said}"
    );
}

#[test]
fn an_unknown_currency_and_a_ramped_closure_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bad = grocer("USX", "2026-12-01", 5);
    let o = bazaar(&[
        "validate",
        write(dir.path(), "a.ron", &bad).to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o).1;
    assert!(
        err.contains("`USX` is not an ISO 4217 currency code") && err.contains("money.currency"),
        "{err}"
    );

    let ramped = grocer("USD", "2026-12-01", 5).replace(
        "    output:",
        "    events: [Closed(name: \"Stocktake\", from: \"2026-12-02\", lead_in: 2)],\n    output:",
    );
    let o = bazaar(&[
        "validate",
        write(dir.path(), "b.ron", &ramped).to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o).1;
    assert!(
        err.contains("closure `Stocktake`") && err.contains("events[0].lead_in"),
        "{err}"
    );
}

/// Each US holiday of the calendar file on the date its rule gives, every year 2016-2027.
#[test]
fn us_calendar_dates_follow_their_rules() {
    let scenario = grocer("USD", "2026-12-01", 5);
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "g.ron", &scenario);
    let s = bazaar::scenario::Scenario::load(&path, &bazaar::sim::registry()).unwrap();
    let mut by_name: HashMap<&str, Vec<NaiveDate>> = HashMap::new();
    for e in &s.calendar.events {
        by_name.entry(e.name.as_str()).or_default().push(e.from);
    }
    let nth =
        |y: i32, m: u32, wd: Weekday, n: u8| NaiveDate::from_weekday_of_month_opt(y, m, wd, n);
    let last_monday_of_may = |y: i32| {
        (25..=31)
            .rev()
            .map(|d| NaiveDate::from_ymd_opt(y, 5, d).unwrap())
            .find(|d| d.weekday() == Weekday::Mon)
            .unwrap()
    };
    // Easter Sunday, from published tables.
    let easter = [
        (2016, 3, 27),
        (2017, 4, 16),
        (2018, 4, 1),
        (2019, 4, 21),
        (2020, 4, 12),
        (2021, 4, 4),
        (2022, 4, 17),
        (2023, 4, 9),
        (2024, 3, 31),
        (2025, 4, 20),
        (2026, 4, 5),
        (2027, 3, 28),
    ];
    let ymd = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
    for y in 2016..=2027 {
        let thanksgiving = nth(y, 11, Weekday::Thu, 4).unwrap();
        let labor = nth(y, 9, Weekday::Mon, 1).unwrap();
        let (_, m, d) = easter[(y - 2016) as usize];
        let expect: [(&str, NaiveDate); 13] = [
            ("New Year's Day", ymd(y, 1, 1)),
            ("Easter Sunday", ymd(y, m, d)),
            ("Easter weekend", ymd(y, m, d).pred_opt().unwrap()),
            (
                "Memorial Day weekend",
                last_monday_of_may(y) - chrono::Days::new(2),
            ),
            ("Independence Day", ymd(y, 7, 4)),
            ("Labor Day weekend", labor - chrono::Days::new(2)),
            ("Thanksgiving", thanksgiving),
            ("Thanksgiving eve", thanksgiving.pred_opt().unwrap()),
            ("Black Friday", thanksgiving.succ_opt().unwrap()),
            ("Christmas shopping", ymd(y, 12, 23)),
            ("Christmas Eve", ymd(y, 12, 24)),
            ("Christmas Day", ymd(y, 12, 25)),
            ("New Year's Eve", ymd(y, 12, 31)),
        ];
        for (name, date) in expect {
            assert!(
                by_name[name].contains(&date),
                "{name} {y}: expected {date}, the file has {:?}",
                by_name[name]
            );
        }
        // Super Bowl Sunday: the first Sunday of February to 2021, the second since.
        let sb = nth(y, 2, Weekday::Sun, if y <= 2021 { 1 } else { 2 }).unwrap();
        assert!(by_name["Super Bowl Sunday"].contains(&sb), "Super Bowl {y}");
    }
    for (name, dates) in &by_name {
        assert_eq!(dates.len(), 12, "{name}: one a year, 2016-2027");
    }
    assert!(
        s.calendar
            .events
            .iter()
            .filter(|e| e.kind == bazaar::calendar::EventKind::Closed)
            .all(|e| e.name == "Christmas Day")
    );
}
