//! Mean loyalty and customers lost, day by day, per persona.

use super::kit::*;

pub(super) const CHART: ChartDef = ChartDef {
    name: "loyalty_churn",
    title: "Loyalty and churn by persona",
    size: ChartDef::standard,
    draw,
};

fn draw(cv: &Canvas, area: &Area, agg: &Aggregates) -> Result<(), String> {
    let names = persona_names(agg);
    let days = &agg.days;
    let n = days.len();
    let np = names.len();
    if n == 0 || np == 0 {
        return no_data(cv, area, "no simulated days");
    }
    let body = legend(cv, area, &persona_items(&names))?;
    let panels = body.split_evenly((1, 2));
    let (left, right) = (&panels[0], &panels[1]);

    // Left: mean loyalty of active customers.
    let left = caption(cv, left, "Mean loyalty of active customers (0–1)")?;
    let series: Vec<(usize, Vec<(f64, f64)>)> = (0..np)
        .map(|p| {
            let pts = days
                .iter()
                .enumerate()
                .filter_map(|(d, day)| {
                    day.loyalty
                        .get(p)
                        .and_then(mean_loyalty)
                        .map(|m| (d as f64, m))
                })
                .collect();
            (p, pts)
        })
        .collect();
    let (lo, hi) = series
        .iter()
        .flat_map(|(_, pts)| pts.iter().map(|pt| pt.1))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if lo.is_finite() {
        let pad = ((hi - lo) * 0.15).max(0.02);
        let (y0, y1) = ((lo - pad).max(0.0), (hi + pad).min(1.0));
        let y_axis = Keyed::nice(y0, y1, 6);
        let decimals = fixed_decimals(&y_axis.keys);
        let y_fmt = |y: f64| format!("{y:.decimals$}");
        let left_w = text_width(&tick_font(), "0.00");
        let mut chart = day_panel(cv, &left, days, y_axis, left_w, &y_fmt)?;
        for (p, pts) in series {
            persona_line(&mut chart, p, pts)?;
        }
    } else {
        no_data(cv, &left, "no loyalty samples")?;
    }

    // Right: customers churned per day, stacked by persona.
    let right = caption(cv, right, "Customers churned per day")?;
    let churned = |d: &Day, p: usize| d.churned.get(p).copied().unwrap_or(0) as f64;
    let top = days
        .iter()
        .map(|d| (0..np).map(|p| churned(d, p)).sum::<f64>())
        .fold(0.0_f64, f64::max);
    if top <= 0.0 {
        return no_data(cv, &right, "no customers churned");
    }
    let y_axis = Keyed::nice(0.0, top * 1.08, 6);
    let y_fmt = |y: f64| agg.currency.group(y.max(0.0).round() as u64);
    let tick_w = widest(y_axis.keys.iter().map(|&k| y_fmt(k)));
    let mut chart = day_panel(cv, &right, days, y_axis, tick_w, &y_fmt)?;
    let half = if n > 60 { 0.5 } else { 0.38 };
    chart
        .draw_series(days.iter().enumerate().flat_map(|(d, day)| {
            let x = d as f64;
            let mut acc = 0.0;
            (0..np)
                .map(|p| {
                    let y0 = acc;
                    acc += churned(day, p);
                    Rectangle::new([(x - half, y0), (x + half, acc)], persona_color(p).filled())
                })
                .collect::<Vec<_>>()
        }))
        .map_err(s)?;
    Ok(())
}
