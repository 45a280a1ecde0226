//! `experiment.html`: one self-contained page (inline SVG, no network) of an experiment: its
//! design, each arm's figures, every difference from the base with its intervals, the daily
//! differences over the run with the fork marked, and the verdicts.

use std::fmt::Write as _;

use chrono::{Days, NaiveDate};
use plotters::prelude::*;

use super::{DailyDifference, Difference, Outcome, verdict};
use crate::money::Currency;
use crate::report::charts::{FAMILY, browser_fonts, ensure_fonts};
use crate::report::html::esc;

const LINE: RGBColor = RGBColor(40, 60, 90);
const BAND: RGBColor = RGBColor(150, 175, 215);
const FORK: RGBColor = RGBColor(200, 60, 40);

/// Whether a metric is money (shown in the currency).
pub(crate) fn is_money(metric: &str) -> bool {
    let overall = metric.split('.').next().unwrap_or(metric);
    ["revenue", "retention_cost", "cost_of_goods", "margin"].contains(&overall)
        || metric.ends_with(".revenue")
        || metric.ends_with(".cost")
}

/// A figure of `metric` as the page shows it.
pub(crate) fn show(money: &Currency, metric: &str, x: f64) -> String {
    let x = x + 0.0;
    if is_money(metric) {
        money.short((x * money.per_major() as f64).round() as i64)
    } else if x.fract() == 0.0 && x.abs() < 1e15 {
        crate::money::short_number(x)
    } else {
        format!("{x:.2}")
    }
}

/// Whether a metric is one persona's (`revenue.premium`).
fn per_persona(o: &Outcome, metric: &str) -> bool {
    super::is_per_persona(&o.personas, metric)
}

/// The page.
pub fn html(o: &Outcome) -> Result<String, String> {
    let money = &o.money;
    let level = format!("{:.0}%", o.confidence * 100.0);
    let days = o
        .measured
        .first()
        .and_then(|m| m.daily.values().next())
        .map_or(0, Vec::len);
    let end = o.start + Days::new(days.saturating_sub(1) as u64);
    let seeds = o
        .measured
        .iter()
        .filter(|m| m.arm == "base")
        .map(|m| m.seed)
        .collect::<Vec<_>>();
    let mut s = crate::calibrate::report::head(
        "Experiment",
        "td.n{text-align:right;font-variant-numeric:tabular-nums}tr.up td.d{background:#dfd}\
         tr.down td.d{background:#fdd}svg{max-width:100%;height:auto}details{margin:1em 0}",
    );
    let _ = write!(
        s,
        "<h1>Experiment: {arms}</h1>\
         <h2>Design</h2><table>\
         <tr><th>arms</th><td>base (the control), {others}</td></tr>\
         <tr><th>run</th><td>{start} to {end}, {days} days</td></tr>\
         <tr><th>fork</th><td>{fork}: every arm shares the base's days before it (its \
         checkpoint), and differs from it on; each customer draws the same random streams in \
         every arm</td></tr>\
         <tr><th>replications</th><td>{r} (seeds {seeds}), {concurrent} at a time</td></tr>\
         <tr><th>intervals</th><td>{level}: paired t over the replications, and a percentile \
         bootstrap ({boot} resamples)</td></tr></table>",
        arms = esc(&o.arms.join(" / ")),
        others = esc(&o.arms[1..].join(", ")),
        start = o.start,
        fork = o.fork,
        r = o.replications,
        seeds = seeds
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        concurrent = o.concurrent,
        boot = super::BOOTSTRAP,
    );
    s.push_str("<h2>Verdicts</h2><ul>");
    for v in &o.verdicts {
        let _ = write!(s, "<li>{}</li>", esc(v));
    }
    s.push_str("</ul>");

    // Each arm's mean figure of every overall metric.
    let _ = write!(
        s,
        "<h2>Figures from the fork on</h2><p>Means over the replications, {} to {end}.</p>\
         <table><tr><th>metric</th>",
        o.fork
    );
    for arm in &o.arms {
        let _ = write!(s, "<th>{}</th>", esc(arm));
    }
    s.push_str("</tr>");
    let metrics: Vec<&str> = o
        .differences
        .iter()
        .filter(|d| d.arm == o.arms.get(1).map_or("", String::as_str))
        .map(|d| d.metric.as_str())
        .filter(|m| !per_persona(o, m))
        .collect();
    for metric in &metrics {
        let _ = write!(s, "<tr><td>{}</td>", esc(metric));
        for arm in &o.arms {
            let values: Vec<f64> = o
                .measured
                .iter()
                .filter(|m| &m.arm == arm)
                .map(|m| m.metrics.get(*metric).copied().unwrap_or(0.0))
                .collect();
            let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
            let _ = write!(s, "<td class=\"n\">{}</td>", show(money, metric, mean));
        }
        s.push_str("</tr>");
    }
    s.push_str("</table>");

    if !o.between.is_empty() {
        let _ = write!(
            s,
            "<h2>Arms against each other</h2><p>Each arm against each arm listed before it, \
             paired replication by replication as against the base.</p>{}",
            table(money, &level, o.between.iter().collect::<Vec<_>>().iter())
        );
    }
    for arm in &o.arms[1..] {
        let of_arm: Vec<&Difference> = o.differences.iter().filter(|d| &d.arm == arm).collect();
        let _ = write!(
            s,
            "<h2>{arm} against the base</h2>{}",
            table(
                money,
                &level,
                of_arm.iter().filter(|d| !per_persona(o, &d.metric))
            ),
            arm = esc(arm)
        );
        let _ = write!(
            s,
            "<details><summary>By persona</summary>{}</details>",
            table(
                money,
                &level,
                of_arm.iter().filter(|d| per_persona(o, &d.metric))
            )
        );
        let _ = write!(
            s,
            "<h3>Day by day</h3><p>The mean difference of each day's figure, {arm} less the \
             base, with its {level} interval (shaded); the red line is the fork.</p>",
            arm = esc(arm)
        );
        for d in o.daily.iter().filter(|d| &d.arm == arm) {
            let _ = write!(
                s,
                "<h4>{}</h4>{}",
                esc(&d.metric),
                chart(d, o.start, o.fork, money)
                    .map_err(|e| format!("experiment.html chart {}: {e}", d.metric))?
            );
        }
    }
    s.push_str("</body></html>\n");
    Ok(s)
}

/// The differences table of one arm.
fn table<'a>(
    money: &Currency,
    level: &str,
    rows: impl Iterator<Item = &'a &'a Difference>,
) -> String {
    let mut s = format!(
        "<table><tr><th>metric</th><th>control</th><th>arm</th><th>difference</th>\
         <th>{level} interval (t)</th><th>bootstrap</th><th>effect size</th>\
         <th>replications for the precision asked</th>\
         <th>or customers at these replications</th><th>verdict</th></tr>"
    );
    let pair = |m: &str, i: Option<(f64, f64)>| {
        i.map_or("-".to_owned(), |(lo, hi)| {
            format!("{} to {}", show(money, m, lo), show(money, m, hi))
        })
    };
    for d in rows {
        let m = d.metric.as_str();
        let class = match d.interval {
            Some((lo, _)) if lo > 0.0 => "up",
            Some((_, hi)) if hi < 0.0 => "down",
            _ => "",
        };
        let confidence = level.trim_end_matches('%').parse::<f64>().unwrap_or(95.0) / 100.0;
        let _ = write!(
            s,
            "<tr class=\"{class}\"><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n d\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            esc(m),
            show(money, m, d.base),
            show(money, m, d.value),
            show(money, m, d.difference),
            pair(m, d.interval),
            pair(m, d.bootstrap),
            d.effect_size.map_or("-".to_owned(), |e| format!("{e:.2}")),
            d.replications_needed
                .map_or("-".to_owned(), |n| n.to_string()),
            d.customers_needed.map_or("-".to_owned(), |n| n.to_string()),
            esc(&verdict(d, money, confidence)),
        );
    }
    s + "</table>"
}

/// The daily difference of one metric: the mean as a line, its interval as a band, zero,
/// and the fork as a vertical line.
fn chart(
    d: &DailyDifference,
    start: NaiveDate,
    fork: NaiveDate,
    money: &Currency,
) -> Result<String, String> {
    ensure_fonts()?;
    let n = d.difference.len();
    let (mut lo, mut hi) = (0.0f64, 0.0f64);
    for (k, x) in d.difference.iter().enumerate() {
        let (a, b) = d.interval[k].unwrap_or((*x, *x));
        lo = lo.min(a.min(*x));
        hi = hi.max(b.max(*x));
    }
    if hi - lo < 1e-9 {
        (lo, hi) = (-1.0, 1.0);
    }
    let pad = (hi - lo) * 0.08;
    let fork_day = (fork - start).num_days() as f64;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 320)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let font = (FAMILY, 13);
        let mut c = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(80)
            .build_cartesian_2d(-0.5..(n as f64 - 0.5), (lo - pad)..(hi + pad))
            .map_err(|e| e.to_string())?;
        let metric = d.metric.clone();
        c.configure_mesh()
            .x_labels(n.min(12))
            .x_label_formatter(&|x| {
                let day = x.round().max(0.0) as u64;
                (start + Days::new(day)).format("%d %b").to_string()
            })
            .y_label_formatter(&|y| show(money, &metric, *y))
            .y_desc("arm less base")
            .label_style(font)
            .draw()
            .map_err(|e| e.to_string())?;
        let band: Vec<(f64, f64)> = d
            .interval
            .iter()
            .enumerate()
            .filter_map(|(k, i)| i.map(|(a, _)| (k as f64, a)))
            .chain(
                d.interval
                    .iter()
                    .enumerate()
                    .rev()
                    .filter_map(|(k, i)| i.map(|(_, b)| (k as f64, b))),
            )
            .collect();
        if !band.is_empty() {
            c.draw_series(std::iter::once(Polygon::new(band, BAND.mix(0.5).filled())))
                .map_err(|e| e.to_string())?;
        }
        c.draw_series(LineSeries::new(
            [(-0.5, 0.0), (n as f64 - 0.5, 0.0)],
            BLACK.stroke_width(1),
        ))
        .map_err(|e| e.to_string())?;
        c.draw_series(LineSeries::new(
            [(fork_day - 0.5, lo - pad), (fork_day - 0.5, hi + pad)],
            FORK.stroke_width(2),
        ))
        .map_err(|e| e.to_string())?;
        c.draw_series(LineSeries::new(
            d.difference.iter().enumerate().map(|(k, x)| (k as f64, *x)),
            LINE.stroke_width(2),
        ))
        .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(browser_fonts(&svg))
}
