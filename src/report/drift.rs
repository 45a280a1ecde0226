//! The report's model drift section, from the run's `drift.json`: how far each model's
//! inputs and scores moved from its training data at every scoring, which scorings count as
//! drifted, and a chart of PSI over the scorings per model.

use std::fmt::Write as _;

use super::charts::{FAMILY, browser_fonts, ensure_fonts};
use super::html::esc;
use crate::ml::drift::{DriftFile, Scoring};
use plotters::prelude::*;

/// Series colours, cycled.
const COLOURS: [RGBColor; 8] = [
    RGBColor(91, 42, 134),
    RGBColor(214, 96, 77),
    RGBColor(67, 147, 195),
    RGBColor(27, 120, 55),
    RGBColor(230, 171, 2),
    RGBColor(118, 42, 131),
    RGBColor(140, 81, 10),
    RGBColor(1, 102, 94),
];

/// The section, or `None` when the run measured no drift (no `drift.json`).
pub fn section(dir: &std::path::Path) -> Result<Option<String>, String> {
    let Some(file) = DriftFile::read(dir)? else {
        return Ok(None);
    };
    let t = &file.thresholds;
    let mut h = String::new();
    let drifted = file.scorings.iter().filter(|s| s.drifted).count();
    let _ = write!(
        h,
        "<section id=\"drift\"><h2>Model drift</h2><p>{drifted} of {} scorings drifted from \
         their model's training data. A feature (or the scores) drifts when its PSI reaches \
         {}, its Kolmogorov-Smirnov statistic {} or its Jensen-Shannon distance {}; a scoring \
         when its scores drift or {:.0}% of its features do. Every figure is in \
         the <code>drift</code> table.</p>",
        file.scorings.len(),
        t.psi,
        t.ks,
        t.js,
        t.share * 100.0
    );
    h.push_str(
        "<table><tr><th>date</th><th>model</th><th class=\"num\">customers</th>\
         <th>drifted</th><th>what moved (PSI)</th></tr>",
    );
    for s in &file.scorings {
        let mut moved: Vec<&(String, crate::ml::drift::Drift, bool)> =
            s.figures.iter().filter(|f| f.2).collect();
        moved.sort_by(|a, b| b.1.psi.total_cmp(&a.1.psi));
        let what: Vec<String> = moved
            .iter()
            .map(|(name, d, _)| format!("{name} ({:.2})", d.psi))
            .collect();
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
            s.date,
            esc(&s.model),
            s.rows,
            if s.drifted { "yes" } else { "no" },
            esc(&what.join(", "))
        );
    }
    h.push_str("</table>");
    let mut models: Vec<&str> = file.scorings.iter().map(|s| s.model.as_str()).collect();
    models.dedup();
    models.sort_unstable();
    models.dedup();
    for model in models {
        let scorings: Vec<&Scoring> = file.scorings.iter().filter(|s| s.model == model).collect();
        let svg = chart(model, &scorings, t.psi)?;
        let _ = write!(
            h,
            "<figure>{svg}<figcaption>PSI of the {} model's features that crossed a threshold \
             at some scoring, and of its scores, against its training reference; the dashed \
             line is the PSI threshold.</figcaption></figure>",
            esc(model)
        );
    }
    h.push_str("</section>");
    Ok(Some(h))
}

/// PSI over the scorings of the features that ever drifted, and of the scores.
fn chart(model: &str, scorings: &[&Scoring], threshold: f64) -> Result<String, String> {
    ensure_fonts()?;
    let names: Vec<&str> = scorings
        .first()
        .map(|s| s.figures.iter().map(|f| f.0.as_str()).collect())
        .unwrap_or_default();
    let shown: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| {
            *n == "score"
                || scorings
                    .iter()
                    .any(|s| s.figures.iter().any(|f| f.0 == *n && f.2))
        })
        .collect();
    let psi = |s: &Scoring, name: &str| {
        s.figures
            .iter()
            .find(|f| f.0 == name)
            .map_or(0.0, |f| f.1.psi)
    };
    let top = scorings
        .iter()
        .flat_map(|s| shown.iter().map(|n| psi(s, n)))
        .fold(threshold * 1.5, f64::max)
        * 1.1;
    let n = scorings.len();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 360)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let font = (FAMILY, 13);
        let mut c = ChartBuilder::on(&root)
            .margin(10)
            .caption(format!("{model} model: PSI by scoring"), (FAMILY, 16))
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5..(n as f64 - 0.5), 0.0..top)
            .map_err(|e| e.to_string())?;
        c.configure_mesh()
            .x_labels(n.min(12))
            .x_label_formatter(&|x| {
                let k = x.round().max(0.0) as usize;
                scorings
                    .get(k)
                    .map_or(String::new(), |s| s.date.format("%d %b").to_string())
            })
            .y_desc("PSI")
            .label_style(font)
            .draw()
            .map_err(|e| e.to_string())?;
        c.draw_series(DashedLineSeries::new(
            [(-0.5, threshold), (n as f64 - 0.5, threshold)],
            6,
            4,
            BLACK.stroke_width(1),
        ))
        .map_err(|e| e.to_string())?;
        for (k, name) in shown.iter().enumerate() {
            let colour = COLOURS[k % COLOURS.len()];
            let width = if *name == "score" { 3 } else { 2 };
            c.draw_series(LineSeries::new(
                scorings
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (i as f64, psi(s, name))),
                colour.stroke_width(width),
            ))
            .map_err(|e| e.to_string())?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(width))
            });
        }
        c.configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(font)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(browser_fonts(&svg))
}
