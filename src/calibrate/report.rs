//! The fit report: `fit.json` (every score and estimate) and `fit.html`, a self-contained
//! page with each statistic's simulated data drawn against the real (empirical CDFs for
//! numbers, shares for categories).

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

use super::stats::{Sample, Score};
use super::{CalibrateError, Outcome};
use crate::report::charts::{FAMILY, browser_fonts, ensure_fonts};
use crate::report::html::esc;

/// Score at or above which a statistic counts as matched.
pub const GOOD: f64 = 0.90;

const REAL: RGBColor = RGBColor(40, 60, 90);
const SIM: RGBColor = RGBColor(230, 120, 30);

/// Writes `fit.json` and `fit.html` into `dir`.
pub fn write(dir: &Path, o: &Outcome) -> Result<(), CalibrateError> {
    let json = serde_json::to_string_pretty(o)
        .map_err(|e| CalibrateError::Io(format!("fit.json: {e}")))?;
    std::fs::write(dir.join("fit.json"), json + "\n")
        .map_err(|e| CalibrateError::Io(format!("fit.json: {e}")))?;
    std::fs::write(dir.join("fit.html"), html(o)?)
        .map_err(|e| CalibrateError::Io(format!("fit.html: {e}")))
}

fn table(scores: &[Score]) -> String {
    let mut s = String::from(
        "<table><tr><th>statistic</th><th>metric</th><th>score</th><th>real</th><th>simulated</th></tr>",
    );
    for sc in scores {
        let _ = write!(
            s,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{:.3}</td><td>{}</td><td>{}</td></tr>",
            if sc.score >= GOOD { "met" } else { "missed" },
            esc(&sc.title),
            sc.metric,
            sc.score,
            esc(&sc.real),
            esc(&sc.simulated)
        );
    }
    s + "</table>"
}

/// A page's head, its styles (common ones and `css`) and the opening of its body.
pub(crate) fn head(title: &str, css: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>\
         body{{font-family:'DejaVu Sans',Verdana,Arial,sans-serif;max-width:1040px;margin:2em auto;padding:0 1em;color:#223}}\
         table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccd;padding:.3em .6em;text-align:left}}\
         {css}</style></head><body>"
    )
}

fn html(o: &Outcome) -> Result<String, CalibrateError> {
    let mut s = String::new();
    let _ = write!(
        s,
        "{head}<h1>Calibration fit: {name}</h1>\
         <p>From <code>{path}</code>: {rows} rows, {customers} customers, {visits} shopping days \
         ({first} to {last}), {cats} categories. Fit on {fit} customers; {held} held out.</p>\
         <p>Scores as SDMetrics defines them: KS-complement (1 - the two-sample Kolmogorov-Smirnov \
         statistic) for numbers, TV-complement (1 - total variation distance) for categories; 1 is \
         a perfect match, {good:.2} or more is marked as met.</p>",
        head = head(
            &format!("Calibration fit: {}", esc(&o.name)),
            "tr.met td:nth-child(3){background:#dfd}tr.missed td:nth-child(3){background:#fdd}\
             svg{max-width:100%;height:auto}"
        ),
        name = esc(&o.name),
        path = esc(&o.log.path),
        rows = o.log.rows,
        customers = o.log.customers,
        visits = o.log.visits,
        first = o.log.first,
        last = o.log.last,
        cats = o.log.categories,
        fit = o.log.fit_customers,
        held = o.log.held_out_customers,
        good = GOOD,
    );
    if let Some(h) = &o.held_out {
        let _ = write!(
            s,
            "<h2>Held-out customers</h2><p>A simulation of the held-out customers' number against them.</p>{}",
            table(h)
        );
    }
    let _ = write!(
        s,
        "<h2>Customers of the fit</h2><p>A simulation of the fitted scenario against the customers it was fitted on.</p>{}",
        table(&o.in_sample)
    );
    s.push_str("<h2>Personas</h2><table><tr><th>persona</th><th>customers</th><th>shopping days per customer-day (real / simulated)</th><th>mean value (real / simulated)</th><th>visit scale</th><th>budget / monthly spend</th></tr>");
    for p in &o.personas {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{:.4} / {:.4}</td><td>{:.2} / {:.2}</td><td>{:.3}</td><td>{:.2}</td></tr>",
            esc(&p.name),
            p.customers,
            p.visit_rate.0,
            p.visit_rate.1,
            p.mean_value.0,
            p.mean_value.1,
            p.visit_scale,
            p.budget
        );
    }
    let _ = write!(
        s,
        "</table><p>Silhouettes by K: {}. Simulated moments: objective {:.4} to {:.4} in {} simulations ({} Nelder-Mead iterations).</p>",
        o.silhouettes
            .iter()
            .map(|(k, v)| format!("{k}: {v:.3}"))
            .collect::<Vec<_>>()
            .join(", "),
        o.moments.objective.0,
        o.moments.objective.1,
        o.moments.evaluations,
        o.moments.iterations
    );
    if !o.events.is_empty() {
        s.push_str("<h2>Calendar effects</h2><table><tr><th>event</th><th>days</th><th>visits / expected</th><th>traffic</th><th>purchase</th><th>eve</th></tr>");
        for e in &o.events {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{:.0} / {:.0}</td><td>{}</td><td>{:.3}</td><td>{}</td></tr>",
                esc(&e.name),
                e.days,
                e.visits.0,
                e.visits.1,
                if e.closed {
                    "closed".to_owned()
                } else {
                    format!("{:.3}", e.traffic)
                },
                e.purchase,
                e.eve.map_or(String::new(), |r| format!("{r:.3}"))
            );
        }
        s.push_str("</table>");
    }
    s.push_str("<h2>Simulated against real</h2>");
    let scores = o.held_out.as_ref().unwrap_or(&o.in_sample);
    for sc in scores {
        let _ = write!(
            s,
            "<h3>{} ({} {:.3})</h3>{}",
            esc(&sc.title),
            sc.metric,
            sc.score,
            chart(sc)
                .map_err(|e| CalibrateError::Io(format!("fit.html chart {}: {e}", sc.name)))?
        );
    }
    s.push_str("</body></html>\n");
    Ok(s)
}

/// An SVG chart of one statistic: empirical CDFs, or shares side by side.
fn chart(sc: &Score) -> Result<String, String> {
    ensure_fonts()?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 360)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let font = (FAMILY, 14);
        match &sc.samples {
            (Sample::Numeric { values: a }, Sample::Numeric { values: b }) => {
                let mut all: Vec<f64> = a.clone();
                all.sort_by(f64::total_cmp);
                let hi = all
                    .get(((all.len() as f64) * 0.99) as usize)
                    .copied()
                    .unwrap_or(1.0)
                    .max(1e-9);
                let lo = all.first().copied().unwrap_or(0.0).min(0.0);
                let mut c = ChartBuilder::on(&root)
                    .margin(10)
                    .x_label_area_size(30)
                    .y_label_area_size(50)
                    .build_cartesian_2d(lo..hi, 0.0..1.0)
                    .map_err(|e| e.to_string())?;
                c.configure_mesh()
                    .y_desc("share at or below")
                    .label_style(font)
                    .draw()
                    .map_err(|e| e.to_string())?;
                for (data, color, name) in [(a, REAL, "real"), (b, SIM, "simulated")] {
                    let mut v = data.clone();
                    v.sort_by(f64::total_cmp);
                    let n = v.len().max(1) as f64;
                    let step = (v.len() / 400).max(1);
                    let pts: Vec<(f64, f64)> = v
                        .iter()
                        .enumerate()
                        .step_by(step)
                        .filter(|(_, x)| **x <= hi)
                        .map(|(i, x)| (*x, (i + 1) as f64 / n))
                        .collect();
                    c.draw_series(LineSeries::new(pts, color.stroke_width(2)))
                        .map_err(|e| e.to_string())?
                        .label(name)
                        .legend(move |(x, y)| {
                            PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2))
                        });
                }
                c.configure_series_labels()
                    .position(SeriesLabelPosition::LowerRight)
                    .background_style(WHITE)
                    .border_style(BLACK)
                    .label_font(font)
                    .draw()
                    .map_err(|e| e.to_string())?;
            }
            (
                Sample::Categorical { labels, weights: a },
                Sample::Categorical { weights: b, .. },
            ) => {
                let (sa, sb) = (
                    a.iter().sum::<f64>().max(1e-9),
                    b.iter().sum::<f64>().max(1e-9),
                );
                let mut idx: Vec<usize> = (0..labels.len()).collect();
                if labels.len() > 24 && sc.name != "holiday_revenue" {
                    idx.sort_by(|&i, &j| a[j].total_cmp(&a[i]));
                    idx.truncate(24);
                }
                let top = idx
                    .iter()
                    .map(|&i| (a[i] / sa).max(b[i] / sb))
                    .fold(0.0, f64::max)
                    * 1.1;
                let n = idx.len();
                let mut c = ChartBuilder::on(&root)
                    .margin(10)
                    .x_label_area_size(if n > 12 { 80 } else { 30 })
                    .y_label_area_size(50)
                    .build_cartesian_2d(0.0..n as f64, 0.0..top.max(1e-9))
                    .map_err(|e| e.to_string())?;
                let names: Vec<String> = idx.iter().map(|&i| labels[i].trim().to_owned()).collect();
                c.configure_mesh()
                    .disable_x_mesh()
                    .x_labels(n.min(40))
                    .x_label_formatter(&|x| {
                        let i = x.floor() as usize;
                        names.get(i).cloned().unwrap_or_default()
                    })
                    .x_label_style(if n > 12 {
                        (FAMILY, 10).into_font().transform(FontTransform::Rotate90)
                    } else {
                        (FAMILY, 12).into_font()
                    })
                    .y_desc("share")
                    .label_style(font)
                    .draw()
                    .map_err(|e| e.to_string())?;
                for (k, (w, s, color, name)) in [(a, sa, REAL, "real"), (b, sb, SIM, "simulated")]
                    .into_iter()
                    .enumerate()
                {
                    let off = 0.1 + 0.4 * k as f64;
                    c.draw_series(idx.iter().enumerate().map(|(j, &i)| {
                        Rectangle::new(
                            [(j as f64 + off, 0.0), (j as f64 + off + 0.38, w[i] / s)],
                            color.filled(),
                        )
                    }))
                    .map_err(|e| e.to_string())?
                    .label(name)
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
                    });
                }
                c.configure_series_labels()
                    .position(SeriesLabelPosition::UpperRight)
                    .background_style(WHITE)
                    .border_style(BLACK)
                    .label_font(font)
                    .draw()
                    .map_err(|e| e.to_string())?;
            }
            _ => {}
        }
        root.present().map_err(|e| e.to_string())?;
    }
    // The browser draws SVG text: ask it for the font plotters measured with.
    Ok(browser_fonts(&svg))
}

/// `fit.html` of a calibration to market figures: each figure, met or missed and by how
/// much, the knobs the fit chose and the tuning block written.
pub fn market_html(o: &super::market::MarketOutcome) -> String {
    let (met, all) = o.met();
    let mut s = String::new();
    let _ = write!(
        s,
        "{head}<h1>Market fit: {name}</h1>\
         <p><code>{scenario}</code> tuned to the figures of <code>{market}</code>: <b>{met} of {all} met</b> \
         by the tuned scenario simulated at its full size ({full} customers at the start).</p>\
         <p>A value is met within its tolerance as a share of it, a share within its tolerance in \
         shares, an uplift as the report's published figures are (on the events' full-effect days \
         against ordinary days of the same weekday).</p>",
        head = head(
            &format!("Market fit: {}", esc(&o.name)),
            "tr.met td:last-child{background:#dfd}tr.missed td:last-child{background:#fdd}\
             pre{background:#f4f4f8;padding:1em;overflow:auto}"
        ),
        name = esc(&o.name),
        scenario = esc(&o.scenario),
        market = esc(&o.market),
        full = o.customers.1,
    );
    s.push_str(&rows_table(&o.targets));
    let _ = write!(
        s,
        "<h2>The fit</h2><p>{} knobs, {} proportional steps then {} Nelder-Mead iterations: \
         objective (the sum of squared misses, each in units of its tolerance) {:.3} to {:.3} in \
         {} simulations of {} customers ({} refused: factors past a scenario's limits). \
         At the best point, at that size:</p>{}",
        o.knobs.len(),
        o.steps,
        o.moments.iterations,
        o.moments.objective.0,
        o.moments.objective.1,
        o.moments.evaluations,
        o.customers.0,
        o.refused,
        rows_table(&o.fitted)
    );
    s.push_str("<h2>Knobs</h2><table><tr><th>knob</th><th>factor</th></tr>");
    for (k, f) in &o.knobs {
        let _ = write!(s, "<tr><td>{}</td><td>{f:.4}</td></tr>", esc(k));
    }
    let _ = writeln!(
        s,
        "</table><h2>Tuning written</h2><pre>tuning: {}</pre></body></html>",
        esc(&o.tuning.to_ron())
    );
    s
}

fn rows_table(rows: &[super::market::Row]) -> String {
    let mut s = String::from(
        "<table><tr><th>figure</th><th>source</th><th>target</th><th>met within</th><th>simulated</th><th>off</th><th>met</th></tr>",
    );
    let show = |kind: &str, x: f64| match kind {
        "share" => format!("{:.1}%", x * 100.0),
        "uplift" => format!("{:+.1}%", x * 100.0),
        _ => format!("{x:.2}"),
    };
    for r in rows {
        let off = r.off.map_or("-".to_owned(), |x| match r.kind {
            "share" => format!("{:+.1} points", x * 100.0),
            "uplift" => format!("{:+.1} points", x * 100.0),
            _ => format!("{:+.1}%", x * 100.0),
        });
        let _ = write!(
            s,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{} to {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if r.met { "met" } else { "missed" },
            esc(&r.target),
            esc(&r.source),
            show(r.kind, r.wanted),
            show(r.kind, r.band.0),
            r.band.1.map_or("no bound".to_owned(), |b| show(r.kind, b)),
            r.simulated.map_or("-".to_owned(), |x| show(r.kind, x)),
            off,
            if r.met { "met" } else { "missed" }
        );
    }
    s + "</table>"
}
