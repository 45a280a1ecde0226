//! How large baskets are: the distribution of basket value, per persona.

use super::kit::*;

pub(super) const CHART: ChartDef = ChartDef {
    name: "basket_distribution",
    title: "Basket value distribution by persona",
    size: ChartDef::standard,
    draw,
};

fn draw(cv: &Canvas, area: &Area, agg: &Aggregates) -> Result<(), String> {
    let names = persona_names(agg);
    let bins = BASKET_BINS;
    // (persona, share of its baskets per bin, %)
    let series: Vec<(usize, Vec<f64>)> = agg
        .basket_histogram
        .iter()
        .enumerate()
        .filter_map(|(p, h)| {
            let total: u64 = h.iter().take(bins).sum();
            (total > 0).then(|| {
                (
                    p,
                    h.iter()
                        .take(bins)
                        .map(|&c| 100.0 * c as f64 / total as f64)
                        .collect(),
                )
            })
        })
        .collect();
    if series.is_empty() {
        return no_data(cv, area, "no baskets were recorded");
    }
    let nonzero: Vec<usize> = series
        .iter()
        .flat_map(|(_, v)| {
            v.iter()
                .enumerate()
                .filter(|(_, x)| **x > 0.0)
                .map(|(i, _)| i)
        })
        .collect();
    let lo = nonzero.iter().copied().min().unwrap_or(0);
    let hi = nonzero.iter().copied().max().unwrap_or(bins - 1);
    let x0 = basket_bin_edge(lo).log10().floor();
    let x1 = basket_bin_edge(hi + 1).log10().ceil().max(x0 + 1.0);
    let ymax = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(0.0_f64, f64::max)
        * 1.1;

    let items: Vec<LegendItem> = series
        .iter()
        .map(|(p, _)| item(persona_name(&names, *p), persona_color(*p), Mark::Line))
        .collect();
    let body = legend(cv, area, &items)?;

    let decades: Vec<f64> = (x0 as i32..=x1 as i32).map(f64::from).collect();
    let minor: Vec<f64> = decades
        .iter()
        .flat_map(|d| (2..10).map(move |m| d + f64::from(m).log10()))
        .filter(|x| *x < x1)
        .collect();
    let x_axis = Keyed::new(x0, x1, decades).with_light(minor);
    let y_axis = Keyed::nice(0.0, ymax, 6);
    let money = &agg.currency;
    let per_major = money.per_major() as f64;
    let x_fmt = |x: f64| {
        format!(
            "{}{}",
            money.prefix(),
            money.axis(10f64.powf(x) * per_major)
        )
    };
    let y_fmt = |y: f64| format!("{}%", short_number(y));
    let tick_w = widest(y_axis.keys.iter().map(|&k| y_fmt(k)));
    let mut chart = framed(
        cv,
        &body,
        x_axis,
        y_axis,
        Room {
            left: tick_w,
            x_desc: true,
            y_desc: true,
            right: 36,
        },
        &Axes {
            x_fmt: &x_fmt,
            y_fmt: &y_fmt,
            x_desc: "Basket value (log scale)",
            y_desc: "Share of baskets (%)",
            x_grid: true,
            y_grid: true,
        },
    )?;
    for (p, shares) in &series {
        let pts: Vec<(f64, f64)> = shares
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let centre = (basket_bin_edge(i) * basket_bin_edge(i + 1)).sqrt();
                (centre.log10(), v)
            })
            .filter(|(x, _)| *x >= x0 && *x <= x1)
            .collect();
        chart
            .draw_series(LineSeries::new(pts, persona_color(*p).stroke_width(3)))
            .map_err(s)?;
    }
    Ok(())
}
