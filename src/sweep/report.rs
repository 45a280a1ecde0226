//! `sweep.html`: one self-contained page (inline SVG, no network) of a sweep: its design
//! and parameters, where each metric is highest and lowest, each point's figures, and a
//! chart of each metric over each parameter.

use std::fmt::Write as _;

use plotters::prelude::*;

use super::{Kind, Outcome, PointResult, Value};
use crate::experiment::report::show;
use crate::report::charts::{FAMILY, browser_fonts, ensure_fonts};
use crate::report::html::esc;

const MEAN: RGBColor = RGBColor(40, 60, 90);
const RUN: RGBColor = RGBColor(150, 175, 215);
const EFFECT: RGBColor = RGBColor(200, 60, 40);

/// The page.
pub fn html(o: &Outcome) -> Result<String, String> {
    let level = format!("{:.0}%", o.confidence * 100.0);
    let mut s = crate::calibrate::report::head(
        "Sweep",
        "td.n{text-align:right;font-variant-numeric:tabular-nums}svg{max-width:100%;height:auto}",
    );
    let design = match o.design {
        Kind::Grid => format!(
            "a grid: every combination of the values, {} points",
            o.points.len()
        ),
        Kind::LatinHypercube { points } => format!(
            "an optimised Latin hypercube of {points} points: each parameter's range cut into \
             {points} slices, each slice used once, the points spread as far apart as they go"
        ),
    };
    let seeds = o
        .rows
        .iter()
        .filter(|r| r.point == 0)
        .map(|r| r.seed.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let _ = write!(
        s,
        "<h1>Sweep: {name}</h1><h2>Design</h2><table>\
         <tr><th>base</th><td>{base}</td></tr>\
         <tr><th>points</th><td>{design}</td></tr>\
         <tr><th>replications</th><td>{r} of each point (seeds {seeds}, the same at every \
         point, so the points differ by their parameters alone)</td></tr>\
         <tr><th>intervals</th><td>{level} t intervals of each point's mean over its \
         replications</td></tr></table><h2>Parameters</h2><table><tr><th>name</th>\
         <th>place in the base</th><th>values</th></tr>",
        name = esc(&o.sweep),
        base = esc(&o.base),
        r = o.replications,
    );
    for (i, p) in o.parameters.iter().enumerate() {
        let mut taken: Vec<String> = Vec::new();
        for point in &o.points {
            let v = point.values[i].to_ron();
            if !taken.contains(&v) {
                taken.push(v);
            }
        }
        let values = if taken.len() > 12 {
            let (lo, hi) = span(o, i);
            format!("{} values from {lo} to {hi}", taken.len())
        } else {
            taken.join(", ")
        };
        let _ = write!(
            s,
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            esc(&p.name),
            esc(&p.at),
            esc(&values)
        );
    }
    s.push_str("</table><h2>Highest and lowest</h2><ul>");
    for m in &o.charted {
        let _ = write!(s, "<li>{}</li>", esc(&extremes(o, m, &level)));
    }
    s.push_str("</ul>");

    let _ = write!(
        s,
        "<h2>Points</h2><p>Each point's mean over its replications, ± half its {level} \
         interval. Every run's figures are in sweep.parquet.</p><table><tr><th>point</th>"
    );
    for p in &o.parameters {
        let _ = write!(s, "<th>{}</th>", esc(&p.name));
    }
    for m in &o.charted {
        let _ = write!(s, "<th>{}</th>", esc(m));
    }
    s.push_str("</tr>");
    for point in &o.points {
        let _ = write!(s, "<tr><td class=\"n\">{}</td>", point.point);
        for v in &point.values {
            let _ = write!(s, "<td class=\"n\">{}</td>", esc(&v.to_ron()));
        }
        for m in &o.charted {
            let cell = point.metrics.get(m).map_or("-".to_owned(), |x| {
                let half = x.interval.map_or(String::new(), |(lo, hi)| {
                    format!(" ± {}", show(&o.money, m, (hi - lo) / 2.0))
                });
                format!("{}{half}", show(&o.money, m, x.mean))
            });
            let _ = write!(s, "<td class=\"n\">{}</td>", esc(&cell));
        }
        s.push_str("</tr>");
    }
    s.push_str("</table><h2>Each metric over each parameter</h2>");
    let line = match (o.design, o.parameters.len()) {
        (Kind::Grid, 1) => "the line joins the points' means",
        (Kind::Grid, _) => {
            "the red line is the parameter's main effect: the mean over every run at each of \
             its values, the other parameters' values averaged over"
        }
        (Kind::LatinHypercube { .. }, _) => {
            "in a Latin hypercube every point has its own value of each parameter, so the \
             other parameters vary along each chart too"
        }
    };
    let _ = write!(
        s,
        "<p>Each light dot is one run; each dark dot a point's mean with its {level} \
         interval; {line}.</p>"
    );
    for m in &o.charted {
        let _ = write!(
            s,
            "<h3>{}</h3>{}",
            esc(m),
            chart(o, m).map_err(|e| format!("sweep.html chart {m}: {e}"))?
        );
    }
    s.push_str("</body></html>\n");
    Ok(s)
}

/// The smallest and largest value parameter `i` takes, as RON.
fn span(o: &Outcome, i: usize) -> (String, String) {
    let xs: Vec<f64> = o
        .points
        .iter()
        .filter_map(|p| p.values[i].number())
        .collect();
    let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (format!("{lo:.4}"), format!("{hi:.4}"))
}

/// Where `metric` is highest and lowest, and whether the two points' intervals part.
fn extremes(o: &Outcome, metric: &str, level: &str) -> String {
    let with: Vec<&PointResult> = o
        .points
        .iter()
        .filter(|p| p.metrics.contains_key(metric))
        .collect();
    let mean = |p: &PointResult| p.metrics[metric].mean;
    let (Some(hi), Some(lo)) = (
        with.iter()
            .copied()
            .max_by(|a, b| mean(a).total_cmp(&mean(b))),
        with.iter()
            .copied()
            .min_by(|a, b| mean(a).total_cmp(&mean(b))),
    ) else {
        return format!("{metric}: not measured");
    };
    let at = |p: &PointResult| super::file::show_point(&o.parameters, &p.values);
    let figure = |p: &PointResult| {
        let x = &p.metrics[metric];
        match x.interval {
            Some((a, b)) => format!(
                "{}, {level} interval {} to {}",
                show(&o.money, metric, x.mean),
                show(&o.money, metric, a),
                show(&o.money, metric, b)
            ),
            None => show(&o.money, metric, x.mean),
        }
    };
    if mean(hi) == mean(lo) {
        return format!(
            "{metric} is {} at every point",
            show(&o.money, metric, mean(hi))
        );
    }
    // The points share their seeds replication by replication (common random numbers), so
    // the two are compared pair by pair, as an experiment's arms are.
    let of = |p: &PointResult| -> Vec<f64> {
        o.rows
            .iter()
            .filter(|r| r.point == p.point)
            .map(|r| r.metrics.get(metric).copied().unwrap_or(0.0))
            .collect()
    };
    let pairs: Vec<(f64, f64)> = of(lo).into_iter().zip(of(hi)).collect();
    let d = crate::experiment::paired("", metric, &pairs, o.confidence, 0.01, 0);
    let apart = match d.interval {
        Some((a, b)) => format!(
            "; the difference, paired replication by replication, is {} ({level} interval {} to {}{})",
            show(&o.money, metric, d.difference),
            show(&o.money, metric, a),
            show(&o.money, metric, b),
            if a > 0.0 {
                ""
            } else {
                ", which includes no difference"
            }
        ),
        None => String::new(),
    };
    format!(
        "{metric} is highest at {} ({}) and lowest at {} ({}){apart}",
        at(hi),
        figure(hi),
        at(lo),
        figure(lo)
    )
}

/// The chart of `metric`: a panel per parameter, the metric over the parameter's values.
fn chart(o: &Outcome, metric: &str) -> Result<String, String> {
    ensure_fonts()?;
    let n = o.parameters.len();
    let columns = n.min(3);
    let rows = n.div_ceil(columns);
    let mut svg = String::new();
    {
        let width = if columns == 1 { 720 } else { 960 };
        let root =
            SVGBackend::with_string(&mut svg, (width, 300 * rows as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let panels = root.split_evenly((rows, columns));
        for (i, area) in panels.iter().enumerate().take(n) {
            panel(o, metric, i, area)?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(browser_fonts(&svg))
}

/// The x position of each point on parameter `i`, and the labels of a parameter whose
/// values are not numbers (their positions 0, 1, ...).
fn positions(o: &Outcome, i: usize) -> (Vec<f64>, Option<Vec<String>>) {
    if o.points.iter().all(|p| p.values[i].number().is_some()) {
        let xs = o
            .points
            .iter()
            .filter_map(|p| p.values[i].number())
            .collect();
        return (xs, None);
    }
    let mut labels: Vec<String> = Vec::new();
    let xs = o
        .points
        .iter()
        .map(|p| {
            let label = match &p.values[i] {
                Value::Text(s) => s.clone(),
                v => v.to_ron(),
            };
            let k = labels.iter().position(|l| *l == label).unwrap_or_else(|| {
                labels.push(label);
                labels.len() - 1
            });
            k as f64
        })
        .collect();
    (xs, Some(labels))
}

/// A point on a chart: its x, its mean and the mean's interval.
type Mean = (f64, f64, Option<(f64, f64)>);

fn panel<DB: DrawingBackend>(
    o: &Outcome,
    metric: &str,
    i: usize,
    area: &DrawingArea<DB, plotters::coord::Shift>,
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let (xs, labels) = positions(o, i);
    let runs: Vec<(f64, f64)> = o
        .rows
        .iter()
        .filter_map(|r| Some((xs[r.point as usize], *r.metrics.get(metric)?)))
        .collect();
    let means: Vec<Mean> = o
        .points
        .iter()
        .filter_map(|p| {
            let m = p.metrics.get(metric)?;
            Some((xs[p.point as usize], m.mean, m.interval))
        })
        .collect();
    let ys = runs.iter().map(|r| r.1).chain(means.iter().flat_map(|m| {
        let (a, b) = m.2.unwrap_or((m.1, m.1));
        [a, b]
    }));
    let (mut lo, mut hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
        (a.min(y), b.max(y))
    });
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if hi - lo < 1e-9 * hi.abs().max(1.0) {
        (lo, hi) = (lo - 1.0, hi + 1.0);
    }
    let pad = (hi - lo) * 0.08;
    let (x0, x1) = xs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
            (a.min(*x), b.max(*x))
        });
    let xpad = ((x1 - x0) * 0.06).max(if labels.is_some() { 0.5 } else { 1e-9 });
    let name = o.parameters[i].name.clone();
    let mut c = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d((x0 - xpad)..(x1 + xpad), (lo - pad)..(hi + pad))
        .map_err(|e| err(&e))?;
    let money = o.money.clone();
    let metric_name = metric.to_owned();
    let label_of = |x: &f64| match &labels {
        Some(l) => {
            let k = x.round();
            if (x - k).abs() < 1e-6 && k >= 0.0 {
                l.get(k as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        }
        None => format!("{}", (x * 1e6).round() / 1e6),
    };
    let y_label = |y: &f64| show(&money, &metric_name, *y);
    let mut mesh = c.configure_mesh();
    mesh.x_desc(name)
        .x_label_formatter(&label_of)
        .y_label_formatter(&y_label)
        .label_style((FAMILY, 12));
    if let Some(l) = &labels {
        mesh.x_labels(l.len() * 2 + 1);
    } else {
        mesh.x_labels(6);
    }
    mesh.draw().map_err(|e| err(&e))?;
    c.draw_series(
        runs.iter()
            .map(|&(x, y)| Circle::new((x, y), 2, RUN.mix(0.8).filled())),
    )
    .map_err(|e| err(&e))?;
    for &(x, _, interval) in &means {
        if let Some((a, b)) = interval {
            c.draw_series(std::iter::once(PathElement::new(
                vec![(x, a), (x, b)],
                MEAN.stroke_width(2),
            )))
            .map_err(|e| err(&e))?;
        }
    }
    c.draw_series(
        means
            .iter()
            .map(|&(x, y, _)| Circle::new((x, y), 4, MEAN.filled())),
    )
    .map_err(|e| err(&e))?;
    // The line: through the means of one parameter's points, or a grid's main effect.
    if o.design == Kind::Grid {
        let mut levels: Vec<f64> = xs.clone();
        levels.sort_by(f64::total_cmp);
        levels.dedup();
        let effect: Vec<(f64, f64)> = levels
            .iter()
            .filter_map(|&x| {
                let at: Vec<f64> = runs.iter().filter(|r| r.0 == x).map(|r| r.1).collect();
                (!at.is_empty()).then(|| (x, at.iter().sum::<f64>() / at.len() as f64))
            })
            .collect();
        let colour = if o.parameters.len() == 1 {
            MEAN
        } else {
            EFFECT
        };
        c.draw_series(LineSeries::new(effect, colour.stroke_width(2)))
            .map_err(|e| err(&e))?;
    }
    Ok(())
}
