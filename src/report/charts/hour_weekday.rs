//! When customers shop: transactions by hour of day and weekday, as a heatmap.

use super::kit::*;

pub(super) const CHART: ChartDef = ChartDef {
    name: "hour_weekday_heatmap",
    title: "Transactions by hour and weekday",
    size: ChartDef::standard,
    draw,
};

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// White → deep blue.
fn heat(t: f64) -> RGBColor {
    const STOPS: [(f64, [f64; 3]); 4] = [
        (0.0, [255.0, 255.0, 255.0]),
        (0.2, [198.0, 219.0, 239.0]),
        (0.6, [66.0, 146.0, 198.0]),
        (1.0, [8.0, 48.0, 107.0]),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let mut c = STOPS[3].1;
    for pair in STOPS.windows(2) {
        let ((t0, c0), (t1, c1)) = (pair[0], pair[1]);
        if t <= t1 {
            let f = (t - t0) / (t1 - t0);
            c = [0, 1, 2].map(|k| c0[k] + (c1[k] - c0[k]) * f);
            break;
        }
    }
    RGBColor(c[0].round() as u8, c[1].round() as u8, c[2].round() as u8)
}

fn draw(cv: &Canvas, area: &Area, agg: &Aggregates) -> Result<(), String> {
    let grid: Vec<[u64; 24]> = (0..7)
        .map(|w| {
            let mut row = [0u64; 24];
            if let Some(cells) = agg.hour_weekday.get(w) {
                for (slot, c) in row.iter_mut().zip(cells) {
                    *slot = c.transactions;
                }
            }
            row
        })
        .collect();
    let max = grid.iter().flatten().copied().max().unwrap_or(0);
    let min = grid.iter().flatten().copied().min().unwrap_or(0);
    if max == 0 {
        return no_data(cv, area, "no transactions were recorded");
    }
    let (w, _) = area.dim_in_pixel();
    let (main, side) = area.split_horizontally(w.saturating_sub(150));

    let x_axis = Keyed::new(0.0, 24.0, (0..24).map(|h| f64::from(h) + 0.5).collect());
    let y_axis = row_axis(7);
    let mut chart = plot_on(
        &main,
        x_axis.clone(),
        y_axis.clone(),
        Room {
            left: widest(WEEKDAYS),
            x_desc: true,
            y_desc: false,
            right: 10,
        },
    )?;
    chart
        .draw_series(grid.iter().enumerate().flat_map(|(wd, row)| {
            let y = row_base(wd, 7);
            row.iter().enumerate().map(move |(hour, &v)| {
                let x = hour as f64;
                let color = heat(v as f64 / max as f64);
                Rectangle::new([(x, y), (x + 1.0, y + 1.0)], color.filled())
            })
        }))
        .map_err(s)?;
    decorate(
        cv,
        &main,
        &mut chart,
        &x_axis,
        &y_axis,
        &Axes {
            x_fmt: &|x| format!("{}", x.floor()),
            y_fmt: &|y| {
                row_at(y, 7)
                    .map(|r| WEEKDAYS[r].to_string())
                    .unwrap_or_default()
            },
            x_desc: "Hour of day",
            y_desc: "",
            x_grid: false,
            y_grid: false,
        },
    )?;
    // Thin white gutters between cells and a frame round the grid.
    let gutters = (1..24)
        .map(|x| vec![(f64::from(x), 0.0), (f64::from(x), 7.0)])
        .chain((1..7).map(|y| vec![(0.0, f64::from(y)), (24.0, f64::from(y))]));
    chart
        .draw_series(gutters.map(|pts| PathElement::new(pts, WHITE.stroke_width(2))))
        .map_err(s)?;
    chart
        .draw_series(std::iter::once(Rectangle::new(
            [(0.0, 0.0), (24.0, 7.0)],
            GRID.stroke_width(1),
        )))
        .map_err(s)?;

    // Colour scale.
    let (_, sh) = side.dim_in_pixel();
    let (x0, x1) = (20, 44);
    let (y0, y1) = (50, (sh as i32 - 120).max(130));
    cv.text_in(
        &side,
        "Transactions",
        &anchored(font(15.0), HPos::Left, VPos::Top),
        (8, 16),
    )?;
    let steps = 80;
    for i in 0..steps {
        let ya = y1 - ((y1 - y0) as f64 * f64::from(i + 1) / f64::from(steps)).round() as i32;
        let yb = y1 - ((y1 - y0) as f64 * f64::from(i) / f64::from(steps)).round() as i32;
        let t = (f64::from(i) + 0.5) / f64::from(steps);
        side.draw(&Rectangle::new([(x0, ya), (x1, yb)], heat(t).filled()))
            .map_err(s)?;
    }
    side.draw(&Rectangle::new([(x0, y0), (x1, y1)], MUTED.stroke_width(1)))
        .map_err(s)?;
    let tick = anchored(font(14.0), HPos::Left, VPos::Center);
    cv.text_in(&side, &agg.currency.group(max), &tick, (x1 + 6, y0))?;
    cv.text_in(&side, "0", &tick, (x1 + 6, y1))?;
    let note = anchored(font(14.0).color(&MUTED), HPos::Left, VPos::Top);
    for (label, v, dy) in [("min", min, 18), ("max", max, 38)] {
        let text = format!("{label} {}", agg.currency.group(v));
        cv.text_in(&side, &text, &note, (8, y1 + dy))?;
    }
    Ok(())
}
