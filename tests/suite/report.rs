//! The report: aggregates agree with the written outputs, charts are real images, insights
//! quote the aggregates, data-quality checks catch corrupted outputs, and the page renders
//! in a browser.

use crate::common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bazaar::analytics::insights::insights;
use bazaar::analytics::{Aggregates, basket_bin};
use common::{bazaar, text};

/// Runs the quick scenario (scaled up a little) once per test binary into a temp folder.
fn run_quick() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("quick");
    let o = bazaar(&[
        "scenarios/quick.ron",
        "--scale",
        "2",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    (dir, out)
}

fn paise(s: &str) -> i64 {
    let (w, f) = s.split_once('.').unwrap();
    w.parse::<i64>().unwrap() * 100 + f.parse::<i64>().unwrap()
}

fn aggregates(out: &Path) -> Aggregates {
    serde_json::from_slice(&std::fs::read(out.join("aggregates.json")).unwrap()).unwrap()
}

#[test]
fn aggregates_equal_what_the_outputs_say() {
    let (_d, out) = run_quick();
    let a = aggregates(&out);
    let persona_index: HashMap<&str, usize> = a
        .personas
        .iter()
        .enumerate()
        .map(|(i, p)| (p.as_str(), i))
        .collect();
    let category_index: HashMap<&str, usize> = a
        .categories
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();

    let mut by_day_persona: HashMap<(String, usize), (i64, u64, u64)> = HashMap::new();
    let mut hour_weekday = vec![vec![0u64; 24]; 7];
    let mut basket_hist = vec![vec![0u64; a.basket_histogram[0].len()]; a.personas.len()];
    let mut tx_persona: HashMap<String, usize> = HashMap::new();
    let mut r = csv::Reader::from_path(out.join("transactions.csv")).unwrap();
    for t in r.records() {
        let t = t.unwrap();
        let p = persona_index[t.get(3).unwrap()];
        let ts = t.get(1).unwrap();
        let date: chrono::NaiveDate = ts[..10].parse().unwrap();
        let hour: usize = ts[11..13].parse().unwrap();
        use chrono::Datelike;
        hour_weekday[date.weekday().num_days_from_monday() as usize][hour] += 1;
        let total = paise(t.get(4).unwrap());
        let e = by_day_persona.entry((ts[..10].to_owned(), p)).or_default();
        e.0 += total;
        e.1 += 1;
        e.2 += t.get(6).unwrap().parse::<u64>().unwrap();
        basket_hist[p][basket_bin(total)] += 1;
        tx_persona.insert(t.get(0).unwrap().to_owned(), p);
    }
    for d in &a.days {
        for (p, cell) in d.personas.iter().enumerate() {
            let e = by_day_persona
                .get(&(d.date.clone(), p))
                .copied()
                .unwrap_or_default();
            assert_eq!(
                (cell.revenue_paise, cell.transactions, cell.units),
                e,
                "{} {p}",
                d.date
            );
        }
    }
    for (w, hours) in a.hour_weekday.iter().enumerate() {
        for (h, cell) in hours.iter().enumerate() {
            assert_eq!(
                cell.transactions, hour_weekday[w][h],
                "weekday {w} hour {h}"
            );
        }
    }
    assert_eq!(a.basket_histogram, basket_hist);

    let mut category = vec![vec![0i64; a.categories.len()]; a.personas.len()];
    let mut r = csv::Reader::from_path(out.join("line_items.csv")).unwrap();
    for l in r.records() {
        let l = l.unwrap();
        let p = tx_persona[l.get(0).unwrap()];
        category[p][category_index[l.get(2).unwrap()]] += paise(l.get(5).unwrap());
    }
    for (p, row) in a.category_persona.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            assert_eq!(
                cell.revenue_paise, category[p][c],
                "persona {p} category {c}"
            );
        }
    }
    // Loyalty histograms count every active customer once a day.
    for d in &a.days {
        let counted: u64 = d.loyalty.iter().flatten().sum();
        assert_eq!(counted, d.active.iter().sum::<u64>(), "{}", d.date);
    }
}

#[test]
fn charts_are_real_images() {
    let (_d, out) = run_quick();
    let names = [
        "daily_revenue",
        "hour_weekday_heatmap",
        "persona_revenue_share",
        "basket_distribution",
        "category_mix",
        "festival_uplift",
        "loyalty_churn",
    ];
    for name in names {
        let png = std::fs::read(out.join(format!("charts/{name}.png"))).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{name}.png signature");
        assert!(
            png.len() > 10_000,
            "{name}.png is {} bytes: blank?",
            png.len()
        );
        let svg = std::fs::read_to_string(out.join(format!("charts/{name}.svg"))).unwrap();
        assert!(svg.contains("<svg"), "{name}.svg");
        assert!(svg.matches('<').count() > 50, "{name}.svg has little drawn");
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    for name in names {
        assert!(
            html.contains(&format!("<figure id=\"{name}\"><svg")),
            "{name} inlined"
        );
    }
    // The only URLs are SVG/XLink namespace names, which browsers never fetch.
    let without_namespaces = html.replace("http://www.w3.org/", "");
    assert!(!without_namespaces.contains("http:") && !without_namespaces.contains("https:"));
    assert!(
        !html.contains("<script") && !html.contains("src=\"http"),
        "self-contained"
    );
}

#[test]
fn insights_quote_the_aggregates() {
    let (_d, out) = run_quick();
    let a = aggregates(&out);
    let found = insights(&a);
    let md = std::fs::read_to_string(out.join("insights.md")).unwrap();
    assert!(found.len() >= 5, "{found:?}");
    for (i, insight) in found.iter().enumerate() {
        assert!(md.contains(&format!("{}. {}", i + 1, insight.text)), "{md}");
    }
    let share = found.iter().find(|i| i.kind == "persona_share").unwrap();
    let total: i64 = a
        .days
        .iter()
        .flat_map(|d| &d.personas)
        .map(|c| c.revenue_paise)
        .sum();
    let premium: i64 = a.days.iter().map(|d| d.personas[0].revenue_paise).sum();
    let revenue_share = share
        .figures
        .iter()
        .find(|f| f.0 == "revenue_share")
        .unwrap()
        .1;
    assert!((revenue_share - premium as f64 / total as f64).abs() < 1e-12);
    assert!(
        share
            .text
            .contains(&format!("{:.1}% of revenue", revenue_share * 100.0))
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["totals"]["revenue_paise"].as_i64().unwrap(), total);
}

/// Copies an output folder, applies `corrupt` to one file and runs `bazaar check` on it.
fn check_corrupted(out: &Path, file: &str, corrupt: impl FnOnce(String) -> String) -> String {
    let copy = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(out).unwrap() {
        let e = e.unwrap();
        if e.path().is_file() {
            std::fs::copy(e.path(), copy.path().join(e.file_name())).unwrap();
        }
    }
    let path = copy.path().join(file);
    let text_in = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, corrupt(text_in)).unwrap();
    let o = bazaar(&["check", copy.path().to_str().unwrap()]);
    let (stdout, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{stdout}{stderr}");
    stdout
}

/// Replaces field `col` of data row `row` (0-based, header excluded) of a CSV text.
fn set_field(csv_text: &str, row: usize, col: usize, value: &str) -> String {
    let mut lines: Vec<String> = csv_text.lines().map(str::to_owned).collect();
    let mut fields: Vec<&str> = lines[row + 1].split(',').collect();
    fields[col] = value;
    lines[row + 1] = fields.join(",");
    lines.join("\n") + "\n"
}

#[test]
fn data_quality_checks_catch_corruption() {
    let (_d, out) = run_quick();
    let ok = bazaar(&["check", out.to_str().unwrap()]);
    assert!(ok.status.success(), "{:?}", text(&ok));
    assert!(!text(&ok).0.contains("FAIL"));

    let fail_line = |stdout: &str, name: &str| {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("FAIL") && l.contains(name)),
            "expected `{name}` to fail:\n{stdout}"
        );
    };
    let s = check_corrupted(&out, "transactions.csv", |t| {
        t.replacen("transaction_id", "txn", 1)
    });
    fail_line(&s, "transactions.csv: columns");
    let s = check_corrupted(&out, "transactions.csv", |t| set_field(&t, 3, 2, ""));
    fail_line(&s, "no missing values");
    let s = check_corrupted(&out, "transactions.csv", |t| set_field(&t, 3, 4, "-5.00"));
    fail_line(&s, "amounts and quantities positive");
    let s = check_corrupted(&out, "transactions.csv", |t| {
        set_field(&t, 3, 4, "99999.99")
    });
    fail_line(&s, "line totals add up to basket totals");
    let s = check_corrupted(&out, "transactions.csv", |t| {
        set_field(&t, 3, 1, "2031-01-01T10:00:00")
    });
    fail_line(&s, "timestamps within");
    let s = check_corrupted(&out, "transactions.csv", |t| {
        let id = t
            .lines()
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .to_owned();
        set_field(&t, 1, 0, &id)
    });
    fail_line(&s, "ids unique");
    let s = check_corrupted(&out, "line_items.csv", |t| set_field(&t, 0, 3, "77"));
    fail_line(&s, "quantity x unit price");
    let s = check_corrupted(&out, "customers.csv", |t| set_field(&t, 5, 0, "0"));
    fail_line(&s, "customers: ids unique");
}

#[test]
fn report_rebuilds_from_the_folder_and_no_report_skips_it() {
    let (_d, out) = run_quick();
    let before = std::fs::read(out.join("report.html")).unwrap();
    std::fs::remove_file(out.join("report.html")).unwrap();
    let o = bazaar(&["report", out.to_str().unwrap()]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(
        std::fs::read(out.join("report.html")).unwrap(),
        before,
        "same inputs, same report"
    );
    let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    assert!(manifest.contains("report.html") && manifest.contains("charts/daily_revenue.png"));

    let dir = tempfile::tempdir().unwrap();
    let bare = dir.path().join("bare");
    let o = bazaar(&[
        "scenarios/quick.ron",
        "--quiet",
        "--no-report",
        "--out",
        bare.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    assert!(!bare.join("report.html").exists() && !bare.join("charts").exists());
    let o = bazaar(&["report", dir.path().to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "not an output folder: {:?}",
        text(&o)
    );
}

#[test]
fn a_plugins_chart_is_drawn_from_its_daily_column_and_again_by_bazaar_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("wom");
    let o = bazaar(&[
        "scenarios/examples/word_of_mouth.ron",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{:?}", text(&o));

    // The chart's data: each day's referrals by persona, as daily_metrics has them.
    let agg = aggregates(&out);
    assert_eq!(agg.columns, ["referrals"]);
    assert_eq!(agg.charts, ["referrals"]);
    let c = agg.column("referrals").unwrap();
    let mut from_csv: HashMap<(String, String), f64> = HashMap::new();
    let mut rows = csv::Reader::from_path(out.join("daily_metrics.csv")).unwrap();
    let headers = rows.headers().unwrap().clone();
    let col = headers.iter().position(|h| h == "referrals").unwrap();
    for r in rows.records() {
        let r = r.unwrap();
        from_csv.insert((r[0].to_owned(), r[1].to_owned()), r[col].parse().unwrap());
    }
    let mut total = 0.0;
    for day in &agg.days {
        for (p, name) in agg.personas.iter().enumerate() {
            assert_eq!(
                day.value(c, p),
                from_csv[&(day.date.clone(), name.clone())],
                "{} {name}",
                day.date
            );
            total += day.value(c, p);
        }
    }
    assert!(total > 100.0, "referrals joined: {total}");

    // The chart: drawn after the built-in ones, listed in the manifest and the page.
    let svg = std::fs::read_to_string(out.join("charts/referrals.svg")).unwrap();
    assert!(svg.contains("Referrals that joined, by persona"));
    assert!(!svg.contains("No data"));
    for label in &agg.labels {
        assert!(svg.contains(label.as_str()), "legend lacks {label}");
    }
    let png = std::fs::read(out.join("charts/referrals.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    assert!(manifest.contains("charts/referrals.png") && manifest.contains("charts/referrals.svg"));
    let page = std::fs::read_to_string(out.join("report.html")).unwrap();
    let at = |s: &str| page.find(s).unwrap_or_else(|| panic!("report lacks {s}"));
    assert!(at("Referrals that joined") > at("Loyalty and churn by persona"));

    // `bazaar report` draws it again, byte for byte, from the folder alone.
    std::fs::remove_file(out.join("charts/referrals.png")).unwrap();
    let o = bazaar(&["report", out.to_str().unwrap()]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(
        std::fs::read(out.join("charts/referrals.png")).unwrap(),
        png
    );
    assert_eq!(
        std::fs::read_to_string(out.join("charts/referrals.svg")).unwrap(),
        svg
    );

    // A chart no plugin of this program draws is an error that says so, not a gap.
    let json = std::fs::read_to_string(out.join("aggregates.json")).unwrap();
    std::fs::write(
        out.join("aggregates.json"),
        json.replace(
            r#""charts":["referrals"]"#,
            r#""charts":["referrals","footfall"]"#,
        ),
    )
    .unwrap();
    let o = bazaar(&["report", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));
    assert!(text(&o).1.contains("`footfall`"), "{:?}", text(&o));
}

#[test]
fn the_report_renders_in_headless_chromium() {
    let Some(chromium) = common::chromium() else {
        return;
    };
    let (_d, out) = run_quick();
    let profile = tempfile::tempdir().unwrap();
    let shot = profile.path().join("report.png");
    let o = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1200,4000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", out.join("report.html").display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let console: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught") || l.contains("Failed to load"))
        .collect();
    assert!(console.is_empty(), "console errors: {console:?}");
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.len() > 50_000,
        "a rendered page, not a blank one ({} bytes)",
        png.len()
    );
}
