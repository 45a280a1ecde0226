//! Layout of a plot: axes with chosen ticks, label room, grids, bar rows and day axes.

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::canvas::{Area, Backend, Canvas};
use super::data::persona_names;
use super::s;
use super::style::{
    GRID, LegendItem, MINOR_GRID, MUTED, Mark, anchored, desc_font, font, item, legend, no_data,
    persona_color, text_width, tick_font,
};
use crate::analytics::{Aggregates, Day};

/// A linear f64 axis whose ticks are exactly the given points (plotters draws the grid and
/// tick marks; the labels are drawn by [`decorate`]).
#[derive(Clone)]
pub struct Keyed {
    /// The axis' low end.
    pub lo: f64,
    /// The axis' high end.
    pub hi: f64,
    /// Where the labelled ticks (and major grid lines) are.
    pub keys: Vec<f64>,
    /// Where the minor grid lines are.
    pub light: Vec<f64>,
}

impl Keyed {
    /// An axis from `lo` to `hi` with labelled ticks at `keys`.
    pub fn new(lo: f64, hi: f64, keys: Vec<f64>) -> Self {
        Self {
            lo,
            hi,
            keys,
            light: Vec::new(),
        }
    }

    /// An axis from `lo` to `hi` with "nice" ticks (1, 2, 2.5 or 5 × 10^k apart).
    pub fn nice(lo: f64, hi: f64, max_ticks: usize) -> Self {
        Self::new(lo, hi, nice_ticks(lo, hi, max_ticks))
    }

    /// Adds minor grid lines at `light`.
    pub fn with_light(mut self, light: Vec<f64>) -> Self {
        self.light = light;
        self
    }
}

impl Ranged for Keyed {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let span = self.hi - self.lo;
        if span == 0.0 || !v.is_finite() {
            return (limit.0 + limit.1) / 2;
        }
        let f = (v - self.lo) / span;
        limit.0 + (f64::from(limit.1 - limit.0) * f + 1e-3).floor() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.light.clone()
        } else {
            self.keys.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

/// "Nice" tick positions from `lo` to `hi`, at most about `max_ticks` of them.
pub fn nice_ticks(lo: f64, hi: f64, max_ticks: usize) -> Vec<f64> {
    let span = hi - lo;
    if !span.is_finite() || span <= 0.0 {
        return vec![lo];
    }
    let raw = span / max_ticks.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|&st| st >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * mag);
    let first = (lo / step - 1e-9).ceil() as i64;
    // Snap away float noise (0.6000000000000001 → 0.6).
    let snap = 1e9 / mag;
    (first..)
        .map(|i| (i as f64 * step * snap).round() / snap)
        .take_while(|&v| v <= hi + step * 1e-9)
        .collect()
}

/// Decimals that show every tick of an axis exactly (0.5 → 1, 0.25 → 2, 2 → 0).
pub fn fixed_decimals(keys: &[f64]) -> usize {
    (0..=4)
        .find(|&d| {
            let scale = 10f64.powi(d as i32);
            keys.iter()
                .all(|k| ((k * scale).round() - k * scale).abs() < 1e-6)
        })
        .unwrap_or(4)
}

/// A plot: a chart context over two [`Keyed`] axes.
pub type Plot<'a, 'b> = ChartContext<'a, Backend<'b>, Cartesian2d<Keyed, Keyed>>;

/// Space round a plot: label areas and margins, pixels.
pub struct Room {
    /// Width of the y tick labels.
    pub left: u32,
    /// Whether there is an x axis description below the tick labels.
    pub x_desc: bool,
    /// Whether there is a rotated y axis description left of the tick labels.
    pub y_desc: bool,
    /// Margin right of the plot.
    pub right: u32,
}

/// A plot of `x` against `y` on `area`, with `room` for its labels (not yet decorated).
pub fn plot_on<'a, 'b>(
    area: &'a Area<'b>,
    x: Keyed,
    y: Keyed,
    room: Room,
) -> Result<Plot<'a, 'b>, String> {
    let bottom = 34 + if room.x_desc { 26 } else { 0 };
    let left = room.left + 14 + if room.y_desc { 28 } else { 0 };
    ChartBuilder::on(area)
        .margin_top(10)
        .margin_right(room.right)
        .margin_left(4)
        .x_label_area_size(bottom)
        .y_label_area_size(left)
        .build_cartesian_2d(x, y)
        .map_err(s)
}

/// How to label a plot's axes.
pub struct Axes<'f> {
    /// Label of an x tick.
    pub x_fmt: &'f dyn Fn(f64) -> String,
    /// Label of a y tick.
    pub y_fmt: &'f dyn Fn(f64) -> String,
    /// What the x axis shows (empty: nothing).
    pub x_desc: &'f str,
    /// What the y axis shows, drawn rotated (empty: nothing).
    pub y_desc: &'f str,
    /// Vertical grid lines at the x ticks.
    pub x_grid: bool,
    /// Horizontal grid lines at the y ticks.
    pub y_grid: bool,
}

/// Grid, axis lines and tick marks (by plotters), then the tick labels and descriptions.
pub fn decorate(
    cv: &Canvas,
    area: &Area,
    chart: &mut Plot,
    x: &Keyed,
    y: &Keyed,
    axes: &Axes,
) -> Result<(), String> {
    let blank = |_: &f64| String::new();
    let mut mesh = chart.configure_mesh();
    mesh.bold_line_style(GRID)
        .light_line_style(if x.light.is_empty() && y.light.is_empty() {
            TRANSPARENT
        } else {
            MINOR_GRID.mix(1.0)
        })
        .axis_style(MUTED)
        .label_style(tick_font())
        .axis_desc_style(desc_font())
        .x_label_formatter(&blank)
        .y_label_formatter(&blank)
        .set_all_tick_mark_size(4);
    if !axes.x_grid {
        mesh.disable_x_mesh();
    }
    if !axes.y_grid {
        mesh.disable_y_mesh();
    }
    mesh.draw().map_err(s)?;

    let (xr, yr) = chart.plotting_area().get_pixel_range();
    let below = anchored(tick_font(), HPos::Center, VPos::Top);
    for &k in &x.keys {
        let px = chart.backend_coord(&(k, y.lo)).0;
        cv.text(&(axes.x_fmt)(k), &below, (px, yr.end + 8))?;
    }
    let beside = anchored(tick_font(), HPos::Right, VPos::Center);
    for &k in &y.keys {
        let py = chart.backend_coord(&(x.lo, k)).1;
        cv.text(&(axes.y_fmt)(k), &beside, (xr.start - 8, py))?;
    }
    if !axes.x_desc.is_empty() {
        let style = anchored(desc_font(), HPos::Center, VPos::Top);
        cv.text(axes.x_desc, &style, ((xr.start + xr.end) / 2, yr.end + 34))?;
    }
    if !axes.y_desc.is_empty() {
        let style =
            anchored(desc_font(), HPos::Center, VPos::Top).transform(FontTransform::Rotate270);
        let left = area.get_base_pixel().0 + 4;
        cv.text(axes.y_desc, &style, (left, (yr.start + yr.end) / 2))?;
    }
    Ok(())
}

/// A plot on `area` ([`plot_on`]), already [`decorate`]d.
pub fn framed<'a, 'b>(
    cv: &Canvas,
    area: &'a Area<'b>,
    x: Keyed,
    y: Keyed,
    room: Room,
    axes: &Axes,
) -> Result<Plot<'a, 'b>, String> {
    let mut chart = plot_on(area, x.clone(), y.clone(), room)?;
    decorate(cv, area, &mut chart, &x, &y, axes)?;
    Ok(chart)
}

/// A horizontal-bar plot: one row per label (the first at the top) against `x`.
pub fn bar_plot<'a, 'b>(
    cv: &Canvas,
    area: &'a Area<'b>,
    x: Keyed,
    labels: &[String],
    x_fmt: &dyn Fn(f64) -> String,
    x_desc: &str,
) -> Result<Plot<'a, 'b>, String> {
    let n = labels.len();
    framed(
        cv,
        area,
        x,
        row_axis(n),
        Room {
            left: widest(labels),
            x_desc: true,
            y_desc: false,
            right: 24,
        },
        &Axes {
            x_fmt,
            y_fmt: &|y| row_at(y, n).map(|r| labels[r].clone()).unwrap_or_default(),
            x_desc,
            y_desc: "",
            x_grid: true,
            y_grid: false,
        },
    )
}

/// A horizontal bar from 0 to `v` between `y0` and `y1`, with `text` just right of its end.
pub fn value_bar(
    cv: &Canvas,
    chart: &mut Plot,
    (v, y0, y1): (f64, f64, f64),
    style: ShapeStyle,
    text: &str,
) -> Result<(), String> {
    chart
        .draw_series(std::iter::once(Rectangle::new([(0.0, y0), (v, y1)], style)))
        .map_err(s)?;
    let (px, py) = chart.backend_coord(&(v, (y0 + y1) / 2.0));
    let style = anchored(font(14.0), HPos::Left, VPos::Center);
    cv.text(text, &style, (px + 6, py))
}

/// Width of the widest of `texts` in the tick font, pixels (0 if none).
pub fn widest<S: AsRef<str>>(texts: impl IntoIterator<Item = S>) -> u32 {
    texts
        .into_iter()
        .map(|t| text_width(&tick_font(), t.as_ref()))
        .max()
        .unwrap_or(0)
}

/// A panel of values by day on `area`: dates across, a y grid, `left` pixels of y labels.
pub fn day_panel<'a, 'b>(
    cv: &Canvas,
    area: &'a Area<'b>,
    days: &[Day],
    y: Keyed,
    left: u32,
    y_fmt: &dyn Fn(f64) -> String,
) -> Result<Plot<'a, 'b>, String> {
    let (w, _) = area.dim_in_pixel();
    framed(
        cv,
        area,
        day_axis(days.len(), w.saturating_sub(80)),
        y,
        Room {
            left,
            x_desc: false,
            y_desc: false,
            right: 16,
        },
        &Axes {
            x_fmt: &|x| day_label(days, x),
            y_fmt,
            x_desc: "",
            y_desc: "",
            x_grid: false,
            y_grid: true,
        },
    )
}

/// `2026-10-20` → `20 Oct`.
pub fn short_date(date: &str) -> String {
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map(|d| d.format("%-d %b").to_string())
        .unwrap_or_else(|_| date.to_string())
}

/// Tick positions (day indexes) for a date axis `width` pixels wide: every 1, 2, 3, 7, 14
/// or 28·k days.
pub fn day_keys(n: usize, width: u32) -> Vec<f64> {
    if n == 0 {
        return Vec::new();
    }
    let max_labels = (width as usize / 72).max(2);
    let need = n.div_ceil(max_labels).max(1);
    let step = [1, 2, 3, 7, 14]
        .into_iter()
        .find(|&c| c >= need)
        .unwrap_or_else(|| need.div_ceil(28) * 28);
    (0..n).step_by(step).map(|d| d as f64).collect()
}

/// A day axis: one unit per day, days centred on whole numbers.
pub fn day_axis(n: usize, width: u32) -> Keyed {
    Keyed::new(-0.5, n as f64 - 0.5, day_keys(n, width))
}

/// The date label at a day index (empty off the days).
pub fn day_label(days: &[Day], x: f64) -> String {
    let i = x.round();
    if (x - i).abs() > 0.01 || i < 0.0 {
        return String::new();
    }
    days.get(i as usize)
        .map(|d| short_date(&d.date))
        .unwrap_or_default()
}

/// A row axis of `n` rows, row 0 at the top, ticks at the row centres.
pub fn row_axis(n: usize) -> Keyed {
    Keyed::new(0.0, n as f64, (0..n).map(|i| i as f64 + 0.5).collect())
}

/// The row index (0 = top) at a y value on a row axis of `n` rows.
pub fn row_at(y: f64, n: usize) -> Option<usize> {
    let r = y.floor();
    if r < 0.0 || r >= n as f64 {
        return None;
    }
    Some(n - 1 - r as usize)
}

/// The bottom y of row `r` (0 = top) on a row axis of `n` rows.
pub fn row_base(r: usize, n: usize) -> f64 {
    (n - 1 - r) as f64
}

/// A chart body of one line per persona of `value(day, persona)` by day, under a persona
/// legend, with y labels from `y_fmt`; "No data" (saying `empty`) when every value is 0.
/// The usual chart of a plugin's daily column ([`crate::analytics::Day::value`]).
pub fn persona_lines(
    cv: &Canvas,
    area: &Area,
    agg: &Aggregates,
    value: &dyn Fn(&Day, usize) -> f64,
    y_fmt: &dyn Fn(f64) -> String,
    empty: &str,
) -> Result<(), String> {
    let names = persona_names(agg);
    let days = &agg.days;
    let top = days
        .iter()
        .flat_map(|d| (0..names.len()).map(move |p| value(d, p)))
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    if days.is_empty() || names.is_empty() || top <= 0.0 {
        return no_data(cv, area, empty);
    }
    let items: Vec<LegendItem> = names
        .iter()
        .enumerate()
        .map(|(p, name)| item(name.clone(), persona_color(p), Mark::Line))
        .collect();
    let body = legend(cv, area, &items)?;
    let y_axis = Keyed::nice(0.0, top * 1.08, 6);
    let tick_w = widest(y_axis.keys.iter().map(|&k| y_fmt(k)));
    let mut chart = day_panel(cv, &body, days, y_axis, tick_w, y_fmt)?;
    for p in 0..names.len() {
        let pts: Vec<(f64, f64)> = days
            .iter()
            .enumerate()
            .map(|(d, day)| (d as f64, value(day, p)))
            .collect();
        persona_line(&mut chart, p, pts)?;
    }
    Ok(())
}

/// Persona `p`'s line through `pts` in its colour (a dot where there is one point only).
pub fn persona_line(chart: &mut Plot, p: usize, pts: Vec<(f64, f64)>) -> Result<(), String> {
    let color = persona_color(p);
    if pts.len() == 1 {
        chart
            .draw_series(pts.iter().map(|&pt| Circle::new(pt, 4, color.filled())))
            .map_err(s)?;
    }
    chart
        .draw_series(LineSeries::new(pts, color.stroke_width(3)))
        .map_err(s)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_axis_ticks() {
        assert_eq!(
            nice_ticks(0.0, 10.0, 5),
            vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
        );
        assert_eq!(nice_ticks(0.53, 0.77, 6), vec![0.55, 0.6, 0.65, 0.7, 0.75]);
        assert_eq!(nice_ticks(0.0, 0.0, 5), vec![0.0]);
        assert_eq!(fixed_decimals(&[0.4, 0.5, 0.6]), 1);
        assert_eq!(fixed_decimals(&[0.55, 0.6]), 2);
        assert_eq!(fixed_decimals(&[0.0, 50.0]), 0);
    }

    #[test]
    fn date_ticks() {
        assert_eq!(short_date("2026-10-20"), "20 Oct");
        assert_eq!(
            day_keys(30, 880),
            (0..30).step_by(3).map(|d| d as f64).collect::<Vec<_>>()
        );
        assert_eq!(day_keys(0, 880), Vec::<f64>::new());
        assert_eq!(day_keys(365, 880).len(), 7);
    }
}
