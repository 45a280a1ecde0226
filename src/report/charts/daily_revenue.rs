//! Daily revenue stacked by persona, with festival, event and weekend days banded.

use super::kit::*;

pub(super) const CHART: ChartDef = ChartDef {
    name: "daily_revenue",
    title: "Daily revenue by persona",
    size: ChartDef::standard,
    draw,
};

/// Runs of consecutive festival days with the same events: (first day, last day, label).
fn festival_runs(days: &[Day]) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < days.len() {
        if !days[i].festival {
            i += 1;
            continue;
        }
        let mut j = i;
        while j + 1 < days.len() && days[j + 1].festival && days[j + 1].events == days[i].events {
            j += 1;
        }
        let events = days[i].events.trim();
        let label = if events.is_empty() {
            "Festival".to_string()
        } else {
            events
                .split('+')
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" + ")
        };
        out.push((i, j, label));
        i = j + 1;
    }
    out
}

fn draw(cv: &Canvas, area: &Area, agg: &Aggregates) -> Result<(), String> {
    let names = persona_names(agg);
    let money = &agg.currency;
    let per_major = money.per_major() as f64;
    let days = &agg.days;
    let n = days.len();
    let np = names.len();
    let cum: Vec<Vec<f64>> = days
        .iter()
        .map(|d| {
            let mut acc = 0.0;
            (0..np)
                .map(|p| {
                    acc += persona_revenue(d, p, per_major).max(0.0);
                    acc
                })
                .collect()
        })
        .collect();
    let top = cum
        .iter()
        .filter_map(|c| c.last())
        .fold(0.0_f64, |a, &b| a.max(b));
    if n == 0 || np == 0 || top <= 0.0 {
        return no_data(cv, area, "no revenue was recorded");
    }

    let mut items = persona_items(&names);
    if days.iter().any(|d| d.festival) {
        items.push(item("Festival day", FESTIVAL_BAND, Mark::Box));
    }
    if days
        .iter()
        .any(|d| !d.festival && !d.events.trim().is_empty())
    {
        items.push(item("Other event day", EVENT_BAND, Mark::Box));
    }
    if days.iter().any(|d| d.weekend) {
        items.push(item("Weekend", WEEKEND_BAND, Mark::Box));
    }
    let body = legend(cv, area, &items)?;
    let (w, h) = body.dim_in_pixel();

    // Leave headroom above the stack for the rotated festival labels.
    let labels = festival_runs(days);
    let label_style = anchored(font(14.0).color(&FESTIVAL_TEXT), HPos::Left, VPos::Center)
        .transform(FontTransform::Rotate90);
    let plot_h = (f64::from(h) - 80.0).max(60.0);
    let ymax = labels
        .iter()
        .map(|(a, b, label)| {
            let under = cum[*a..=*b]
                .iter()
                .filter_map(|c| c.last())
                .fold(0.0_f64, |m, &v| m.max(v));
            let frac = ((f64::from(text_width(&label_style, label)) + 18.0) / plot_h).min(0.6);
            under / (1.0 - frac)
        })
        .fold(top * 1.06, f64::max);
    let y_axis = Keyed::nice(0.0, ymax, 6);
    let x_axis = day_axis(n, w.saturating_sub(140));
    let tick_w = widest(y_axis.keys.iter().map(|&k| money.axis(k * per_major)));
    let mut chart = plot_on(
        &body,
        x_axis.clone(),
        y_axis.clone(),
        Room {
            left: tick_w,
            x_desc: false,
            y_desc: true,
            right: 24,
        },
    )?;

    // Bands first, so grid and data sit on top.
    chart
        .draw_series(days.iter().enumerate().filter_map(|(d, day)| {
            let color = if day.festival {
                FESTIVAL_BAND
            } else if !day.events.trim().is_empty() {
                EVENT_BAND
            } else if day.weekend {
                WEEKEND_BAND
            } else {
                return None;
            };
            let x = d as f64;
            Some(Rectangle::new(
                [(x - 0.5, 0.0), (x + 0.5, ymax)],
                color.filled(),
            ))
        }))
        .map_err(s)?;
    decorate(
        cv,
        &body,
        &mut chart,
        &x_axis,
        &y_axis,
        &Axes {
            x_fmt: &|x| day_label(days, x),
            y_fmt: &|y| money.axis(y * per_major),
            x_desc: "",
            y_desc: "Revenue (Rs)",
            x_grid: false,
            y_grid: true,
        },
    )?;

    // Stacked layers; a single day is drawn as a short plateau so it stays visible.
    let xs: Vec<f64> = if n == 1 {
        vec![-0.3, 0.3]
    } else {
        (0..n).map(|d| d as f64).collect()
    };
    let day_at = |x: f64| if n == 1 { 0 } else { x as usize };
    for p in 0..np {
        let upper: Vec<(f64, f64)> = xs.iter().map(|&x| (x, cum[day_at(x)][p])).collect();
        let lower = xs.iter().rev().map(|&x| {
            let below = if p == 0 { 0.0 } else { cum[day_at(x)][p - 1] };
            (x, below)
        });
        let mut poly = upper.clone();
        poly.extend(lower);
        let color = persona_color(p);
        chart
            .draw_series(std::iter::once(Polygon::new(poly, color.mix(0.9).filled())))
            .map_err(s)?;
        chart
            .draw_series(LineSeries::new(upper, color.stroke_width(2)))
            .map_err(s)?;
    }

    // Festival labels at the top of their bands, skipping any that would overlap.
    let mut last_px: Option<i32> = None;
    for (a, b, label) in labels {
        let (px, py) = chart.backend_coord(&((a + b) as f64 / 2.0, ymax));
        if last_px.is_some_and(|l| px - l < 18) {
            continue;
        }
        last_px = Some(px);
        cv.text(&label, &label_style, (px, py + 6))?;
    }
    Ok(())
}
