//! Charts for the run report: turns the streamed [`Aggregates`] into seven publication-quality
//! figures, each written as PNG (for slides and documents) and SVG (inlined in the HTML
//! report). Text is drawn with an embedded DejaVu Sans font, so the charts look the same on
//! every machine and need no system font libraries.

use std::fmt::Display;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::prelude::*;
use plotters::style::register_font;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use thiserror::Error;

use crate::analytics::{Aggregates, BASKET_BINS, Day, LOYALTY_BINS, basket_bin_edge};
use crate::output::format::group_indian;

/// The family name the embedded font is registered under.
const FAMILY: &str = "bazaar-sans";
/// What the SVG text asks the browser for instead of [`FAMILY`] (which only plotters knows).
const SVG_FONTS: &str = "'DejaVu Sans', Verdana, Arial, sans-serif";
static REGULAR_TTF: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
static BOLD_TTF: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");

/// One rendered chart.
#[derive(Debug, Clone)]
pub struct Chart {
    /// File stem: the chart is written as `NAME.png` and `NAME.svg`.
    pub name: &'static str,
    /// Human title (also drawn at the top of the chart).
    pub title: String,
    /// The SVG document, for inlining in HTML.
    pub svg: String,
}

/// Why charts could not be rendered.
#[derive(Debug, Error)]
pub enum ChartError {
    /// An I/O error on a path.
    #[error("cannot write `{path}`: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Plotting failed.
    #[error("cannot draw chart `{chart}`: {message}")]
    Draw {
        /// The chart's name.
        chart: &'static str,
        /// The plotting library's message.
        message: String,
    },
    /// The embedded font was rejected by the font loader.
    #[error("cannot load the embedded chart font: {0}")]
    Font(String),
}

/// Renders every chart into `dir` as NAME.png and NAME.svg, returning them (SVG text for
/// inlining in HTML). `dir` is created if missing; each file is replaced atomically.
pub fn render_all(agg: &Aggregates, dir: &Path) -> Result<Vec<Chart>, ChartError> {
    ensure_fonts()?;
    fs::create_dir_all(dir).map_err(|source| ChartError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    KINDS
        .iter()
        .map(|&kind| render_one(kind, agg, dir))
        .collect()
}

/// A rupee amount in paise as a short axis label: `5K`, `12.5 L` (lakh), `1.2 Cr` (crore).
pub fn rupees_axis(paise: f64) -> String {
    if !paise.is_finite() {
        return String::new();
    }
    let rs = paise / 100.0;
    let sign = if rs < 0.0 { "-" } else { "" };
    let a = rs.abs();
    let (v, unit) = if a >= 1e7 {
        (a / 1e7, " Cr")
    } else if a >= 1e5 {
        (a / 1e5, " L")
    } else if a >= 1e3 {
        (a / 1e3, "K")
    } else {
        (a, "")
    };
    format!("{sign}{}{unit}", short_number(v))
}

/// At most three significant digits, trailing zeros dropped: `12.5`, `1.25`, `150`.
fn short_number(v: f64) -> String {
    let s = if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

// ---------------------------------------------------------------------------------------------
// Rendering

/// The charts, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    DailyRevenue,
    HourWeekday,
    PersonaShare,
    Basket,
    CategoryMix,
    FestivalUplift,
    LoyaltyChurn,
}

const KINDS: [Kind; 7] = [
    Kind::DailyRevenue,
    Kind::HourWeekday,
    Kind::PersonaShare,
    Kind::Basket,
    Kind::CategoryMix,
    Kind::FestivalUplift,
    Kind::LoyaltyChurn,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::DailyRevenue => "daily_revenue",
            Kind::HourWeekday => "hour_weekday_heatmap",
            Kind::PersonaShare => "persona_revenue_share",
            Kind::Basket => "basket_distribution",
            Kind::CategoryMix => "category_mix",
            Kind::FestivalUplift => "festival_uplift",
            Kind::LoyaltyChurn => "loyalty_churn",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Kind::DailyRevenue => "Daily revenue by persona",
            Kind::HourWeekday => "Transactions by hour and weekday",
            Kind::PersonaShare => "Share of revenue and customers by persona",
            Kind::Basket => "Basket value distribution by persona",
            Kind::CategoryMix => "Revenue by category, per persona",
            Kind::FestivalUplift => "Revenue uplift on festival and event days",
            Kind::LoyaltyChurn => "Loyalty and churn by persona",
        }
    }

    /// Pixel size; charts with one row per persona or event grow taller with many rows.
    fn size(self, agg: &Aggregates) -> (u32, u32) {
        let rows = match self {
            Kind::CategoryMix => persona_names(agg).len(),
            Kind::FestivalUplift => uplift(agg).len(),
            _ => 0,
        };
        let h = (220 + 46 * rows as u32).clamp(500, 1400);
        (1000, h)
    }
}

fn render_one(kind: Kind, agg: &Aggregates, dir: &Path) -> Result<Chart, ChartError> {
    let name = kind.name();
    let size = kind.size(agg);
    let failed = |message: String| ChartError::Draw {
        chart: name,
        message,
    };

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        draw(kind, &root, agg).map_err(failed)?;
        root.present().map_err(|e| failed(e.to_string()))?;
    }
    let svg = svg.replace(
        &format!("font-family=\"{FAMILY}\""),
        &format!("font-family=\"{SVG_FONTS}\""),
    );
    write_atomic(&dir.join(format!("{name}.svg")), svg.as_bytes())?;

    // The image encoder picks the format from the extension, so the temporary name ends in .png.
    let png = dir.join(format!("{name}.png"));
    let tmp = dir.join(format!(".{name}.partial.png"));
    let drawn = {
        let root = BitMapBackend::new(&tmp, size).into_drawing_area();
        draw(kind, &root, agg).and_then(|()| root.present().map_err(|e| e.to_string()))
    };
    if let Err(message) = drawn {
        let _ = fs::remove_file(&tmp);
        return Err(failed(message));
    }
    fs::rename(&tmp, &png).map_err(|source| ChartError::Io { path: png, source })?;

    Ok(Chart {
        name,
        title: kind.title().to_string(),
        svg,
    })
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ChartError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = PathBuf::from(tmp);
    fs::write(&tmp, bytes)
        .and_then(|()| fs::rename(&tmp, path))
        .map_err(|source| {
            let _ = fs::remove_file(&tmp);
            ChartError::Io {
                path: path.to_path_buf(),
                source,
            }
        })
}

/// Registers the embedded font with plotters, once per process.
fn ensure_fonts() -> Result<(), ChartError> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            register_font(FAMILY, FontStyle::Normal, REGULAR_TTF)
                .map_err(|_| "DejaVuSans.ttf is not a usable font".to_string())?;
            register_font(FAMILY, FontStyle::Bold, BOLD_TTF)
                .map_err(|_| "DejaVuSans-Bold.ttf is not a usable font".to_string())
        })
        .clone()
        .map_err(ChartError::Font)
}

/// Draws one chart on any backend: the same code makes the PNG and the SVG.
fn draw<DB: DrawingBackend>(
    kind: Kind,
    root: &DrawingArea<DB, Shift>,
    agg: &Aggregates,
) -> Result<(), String> {
    root.fill(&WHITE).map_err(s)?;
    let body = root.titled(kind.title(), title_font()).map_err(s)?;
    let body = body.margin(0, 6, 8, 8);
    match kind {
        Kind::DailyRevenue => daily_revenue(&body, agg),
        Kind::HourWeekday => hour_weekday(&body, agg),
        Kind::PersonaShare => persona_share(&body, agg),
        Kind::Basket => basket_distribution(&body, agg),
        Kind::CategoryMix => category_mix(&body, agg),
        Kind::FestivalUplift => festival_uplift(&body, agg),
        Kind::LoyaltyChurn => loyalty_churn(&body, agg),
    }
}

fn s<E: Display>(e: E) -> String {
    e.to_string()
}

// ---------------------------------------------------------------------------------------------
// Style

const INK: RGBColor = RGBColor(38, 38, 38);
const MUTED: RGBColor = RGBColor(105, 105, 105);
const GRID: RGBColor = RGBColor(228, 228, 228);
const FESTIVAL_BAND: RGBColor = RGBColor(255, 222, 173);
const EVENT_BAND: RGBColor = RGBColor(255, 243, 224);
const WEEKEND_BAND: RGBColor = RGBColor(238, 238, 238);
const FESTIVAL_TEXT: RGBColor = RGBColor(156, 76, 0);

/// Persona colours (Tableau 10 without orange, which marks festivals).
const PERSONA_COLORS: [RGBColor; 8] = [
    RGBColor(78, 121, 167),
    RGBColor(225, 87, 89),
    RGBColor(89, 161, 79),
    RGBColor(176, 122, 161),
    RGBColor(118, 183, 178),
    RGBColor(237, 201, 72),
    RGBColor(156, 117, 95),
    RGBColor(255, 157, 167),
];

/// Category colours (Tableau 10); grey is "other".
const CATEGORY_COLORS: [RGBColor; 9] = [
    RGBColor(78, 121, 167),
    RGBColor(242, 142, 43),
    RGBColor(225, 87, 89),
    RGBColor(118, 183, 178),
    RGBColor(89, 161, 79),
    RGBColor(237, 201, 72),
    RGBColor(176, 122, 161),
    RGBColor(255, 157, 167),
    RGBColor(156, 117, 95),
];
const OTHER_COLOR: RGBColor = RGBColor(186, 176, 172);

fn persona_color(p: usize) -> RGBColor {
    PERSONA_COLORS[p % PERSONA_COLORS.len()]
}

fn font(size: f64) -> TextStyle<'static> {
    FontDesc::new(FontFamily::Name(FAMILY), size, FontStyle::Normal).color(&INK)
}

fn title_font() -> TextStyle<'static> {
    FontDesc::new(FontFamily::Name(FAMILY), 26.0, FontStyle::Bold).color(&INK)
}

fn tick_font() -> TextStyle<'static> {
    font(15.0)
}

fn desc_font() -> TextStyle<'static> {
    font(16.0)
}

fn text_width(style: &TextStyle, text: &str) -> u32 {
    style
        .font
        .box_size(text)
        .map(|(w, _)| w)
        .unwrap_or((text.len() as f64 * style.font.get_size() * 0.6) as u32)
}

fn anchored(style: TextStyle<'static>, h: HPos, v: VPos) -> TextStyle<'static> {
    style.pos(Pos::new(h, v))
}

#[derive(Clone, Copy)]
enum Mark {
    Box,
    Line,
}

struct LegendItem {
    label: String,
    color: RGBColor,
    mark: Mark,
}

fn item(label: impl Into<String>, color: RGBColor, mark: Mark) -> LegendItem {
    LegendItem {
        label: label.into(),
        color,
        mark,
    }
}

/// Draws a centred, wrapping legend strip at the top of `area`; returns the area below it.
fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    items: &[LegendItem],
) -> Result<DrawingArea<DB, Shift>, String> {
    const SWATCH: i32 = 24;
    const GAP: i32 = 6;
    const SPACING: i32 = 22;
    const ROW: i32 = 24;
    if items.is_empty() {
        return Ok(area.clone());
    }
    let style = font(15.0);
    let (w, _) = area.dim_in_pixel();
    let usable = (w as i32 - 20).max(100);
    let widths: Vec<i32> = items
        .iter()
        .map(|it| SWATCH + GAP + text_width(&style, &it.label) as i32)
        .collect();
    let mut rows: Vec<Vec<usize>> = vec![Vec::new()];
    let mut row_w = 0;
    for (i, &iw) in widths.iter().enumerate() {
        let add = if row_w == 0 { iw } else { SPACING + iw };
        if row_w > 0 && row_w + add > usable {
            rows.push(vec![i]);
            row_w = iw;
        } else if let Some(r) = rows.last_mut() {
            r.push(i);
            row_w += add;
        }
    }
    let label_style = anchored(style, HPos::Left, VPos::Center);
    for (r, row) in rows.iter().enumerate() {
        let total: i32 =
            row.iter().map(|&i| widths[i]).sum::<i32>() + SPACING * (row.len() as i32 - 1);
        let mut x = (w as i32 - total) / 2;
        let y = 4 + r as i32 * ROW + ROW / 2;
        for &i in row {
            let it = &items[i];
            match it.mark {
                Mark::Box => {
                    let (x0, x1) = (x + 4, x + SWATCH - 4);
                    area.draw(&Rectangle::new(
                        [(x0, y - 8), (x1, y + 8)],
                        it.color.filled(),
                    ))
                    .map_err(s)?;
                    area.draw(&Rectangle::new(
                        [(x0, y - 8), (x1, y + 8)],
                        MUTED.mix(0.5).stroke_width(1),
                    ))
                    .map_err(s)?;
                }
                Mark::Line => {
                    area.draw(&PathElement::new(
                        vec![(x, y), (x + SWATCH, y)],
                        it.color.stroke_width(3),
                    ))
                    .map_err(s)?;
                }
            }
            area.draw_text(&it.label, &label_style, (x + SWATCH + GAP, y))
                .map_err(s)?;
            x += widths[i] + SPACING;
        }
    }
    let used = 8 + rows.len() as i32 * ROW;
    Ok(area.split_vertically(used).1)
}

/// "No data" in the middle of `area`, with the reason below.
fn no_data<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, why: &str) -> Result<(), String> {
    let (w, h) = area.dim_in_pixel();
    let (cx, cy) = (w as i32 / 2, h as i32 / 2);
    area.draw_text(
        "No data",
        &anchored(font(24.0).color(&MUTED), HPos::Center, VPos::Center),
        (cx, cy - 16),
    )
    .map_err(s)?;
    area.draw_text(
        why,
        &anchored(font(16.0).color(&MUTED), HPos::Center, VPos::Center),
        (cx, cy + 16),
    )
    .map_err(s)
}

// ---------------------------------------------------------------------------------------------
// Axes

/// A linear f64 axis whose ticks are exactly the given points (plotters' own `WithKeyPoints`
/// cannot take a custom label formatter over f64).
#[derive(Clone)]
struct Keyed {
    lo: f64,
    hi: f64,
    keys: Vec<f64>,
    light: Vec<f64>,
}

impl Keyed {
    fn new(lo: f64, hi: f64, keys: Vec<f64>) -> Self {
        Self {
            lo,
            hi,
            keys,
            light: Vec::new(),
        }
    }

    fn with_light(mut self, light: Vec<f64>) -> Self {
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

// ---------------------------------------------------------------------------------------------
// Data helpers

/// Display names of the personas (labels, else names).
fn persona_names(agg: &Aggregates) -> Vec<String> {
    let n = agg
        .labels
        .len()
        .max(agg.personas.len())
        .max(agg.days.first().map_or(0, |d| d.personas.len()));
    (0..n)
        .map(|i| {
            agg.labels
                .get(i)
                .filter(|l| !l.is_empty())
                .or_else(|| agg.personas.get(i).filter(|p| !p.is_empty()))
                .cloned()
                .unwrap_or_else(|| format!("Persona {}", i + 1))
        })
        .collect()
}

fn persona_revenue(day: &Day, p: usize) -> f64 {
    day.personas
        .get(p)
        .map_or(0.0, |c| c.revenue_paise as f64 / 100.0)
}

fn day_revenue(day: &Day) -> f64 {
    day.personas
        .iter()
        .map(|c| c.revenue_paise as f64 / 100.0)
        .sum()
}

/// `2026-10-20` → `20 Oct`.
fn short_date(date: &str) -> String {
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map(|d| d.format("%-d %b").to_string())
        .unwrap_or_else(|_| date.to_string())
}

/// Tick positions (day indexes) for a date axis `width` pixels wide: every 1, 2, 3, 7, 14
/// or 28·k days.
fn day_keys(n: usize, width: u32) -> Vec<f64> {
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

/// The date label at a day index (empty off the days).
fn day_label(days: &[Day], x: f64) -> String {
    let i = x.round();
    if (x - i).abs() > 0.01 || i < 0.0 {
        return String::new();
    }
    days.get(i as usize)
        .map(|d| short_date(&d.date))
        .unwrap_or_default()
}

/// Row key points (centres) for `n` category rows.
fn row_keys(n: usize) -> Vec<f64> {
    (0..n).map(|i| i as f64 + 0.5).collect()
}

/// The row index (0 = top) at a y value on a row axis of `n` rows.
fn row_at(y: f64, n: usize) -> Option<usize> {
    let r = y.floor();
    if r < 0.0 || r >= n as f64 {
        return None;
    }
    Some(n - 1 - r as usize)
}

fn mean_loyalty(h: &[u64; LOYALTY_BINS]) -> Option<f64> {
    let n: u64 = h.iter().sum();
    if n == 0 {
        return None;
    }
    let sum: f64 = h
        .iter()
        .enumerate()
        .map(|(b, &c)| c as f64 * (b as f64 + 0.5) / LOYALTY_BINS as f64)
        .sum();
    Some(sum / n as f64)
}

fn pretty(name: &str) -> String {
    name.replace('_', " ")
}

// ---------------------------------------------------------------------------------------------
// 1. Daily revenue

/// Runs of consecutive festival days with the same events: (centre day, label).
fn festival_runs(days: &[Day]) -> Vec<(f64, String)> {
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
        out.push(((i + j) as f64 / 2.0, label));
        i = j + 1;
    }
    out
}

fn daily_revenue<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    agg: &Aggregates,
) -> Result<(), String> {
    let names = persona_names(agg);
    let days = &agg.days;
    let n = days.len();
    let np = names.len();
    let cum: Vec<Vec<f64>> = days
        .iter()
        .map(|d| {
            let mut acc = 0.0;
            (0..np)
                .map(|p| {
                    acc += persona_revenue(d, p).max(0.0);
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
        return no_data(area, "no revenue was recorded");
    }

    let mut items: Vec<LegendItem> = names
        .iter()
        .enumerate()
        .map(|(p, name)| item(name.clone(), persona_color(p), Mark::Box))
        .collect();
    if days.iter().any(|d| d.festival) {
        items.push(item("Festival day", FESTIVAL_BAND, Mark::Box));
    }
    if days
        .iter()
        .any(|d| !d.festival && !d.events.trim().is_empty())
    {
        items.push(item("Event", EVENT_BAND, Mark::Box));
    }
    if days.iter().any(|d| d.weekend) {
        items.push(item("Weekend", WEEKEND_BAND, Mark::Box));
    }
    let body = legend(area, &items)?;
    let (w, h) = body.dim_in_pixel();

    // Leave headroom above the stack for the rotated festival labels.
    let labels = festival_runs(days);
    let label_style = anchored(font(13.0).color(&FESTIVAL_TEXT), HPos::Left, VPos::Center)
        .transform(FontTransform::Rotate90);
    let longest = labels
        .iter()
        .map(|(_, l)| text_width(&font(13.0), l))
        .max()
        .unwrap_or(0);
    let plot_h = (f64::from(h) - 70.0).max(60.0);
    let frac = if labels.is_empty() {
        0.06
    } else {
        ((f64::from(longest) + 14.0) / plot_h).clamp(0.08, 0.5)
    };
    let ymax = top / (1.0 - frac);

    let mut chart = ChartBuilder::on(&body)
        .margin(8)
        .margin_right(24)
        .x_label_area_size(40)
        .y_label_area_size(100)
        .build_cartesian_2d(
            Keyed::new(-0.5, n as f64 - 0.5, day_keys(n, w.saturating_sub(130))),
            0.0..ymax,
        )
        .map_err(s)?;

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

    let fmt_x = |x: &f64| day_label(days, *x);
    let fmt_y = |y: &f64| rupees_axis(*y * 100.0);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .axis_style(MUTED)
        .y_labels(7)
        .x_label_formatter(&fmt_x)
        .y_label_formatter(&fmt_y)
        .label_style(tick_font())
        .axis_desc_style(desc_font())
        .y_desc("Revenue (Rs)")
        .draw()
        .map_err(s)?;

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
            .draw_series(std::iter::once(Polygon::new(
                poly,
                color.mix(0.82).filled(),
            )))
            .map_err(s)?;
        chart
            .draw_series(LineSeries::new(upper, color.stroke_width(2)))
            .map_err(s)?;
    }

    // Festival labels at the top of their bands, skipping any that would overlap.
    let mut last_px = i32::MIN;
    let mut kept = Vec::new();
    for (x, label) in labels {
        let px = chart.backend_coord(&(x, 0.0)).0;
        if px - last_px >= 16 {
            last_px = px;
            kept.push((x, label));
        }
    }
    chart
        .draw_series(kept.into_iter().map(|(x, label)| {
            EmptyElement::at((x, ymax)) + Text::new(label, (0, 6), label_style.clone())
        }))
        .map_err(s)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 2. Hour x weekday heatmap

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

fn hour_weekday<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    agg: &Aggregates,
) -> Result<(), String> {
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
        return no_data(area, "no transactions were recorded");
    }
    let (w, _) = area.dim_in_pixel();
    let (main, side) = area.split_horizontally(w.saturating_sub(150));

    let mut chart = ChartBuilder::on(&main)
        .margin(8)
        .margin_top(14)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d(
            Keyed::new(0.0, 24.0, row_keys(24)),
            Keyed::new(0.0, 7.0, row_keys(7)),
        )
        .map_err(s)?;
    let fmt_x = |x: &f64| format!("{}", x.floor());
    let fmt_y = |y: &f64| {
        row_at(*y, 7)
            .map(|r| WEEKDAYS[r].to_string())
            .unwrap_or_default()
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .axis_style(MUTED)
        .x_label_formatter(&fmt_x)
        .y_label_formatter(&fmt_y)
        .label_style(tick_font())
        .axis_desc_style(desc_font())
        .x_desc("Hour of day")
        .draw()
        .map_err(s)?;
    chart
        .draw_series(grid.iter().enumerate().flat_map(|(wd, row)| {
            let y = (6 - wd) as f64;
            row.iter().enumerate().map(move |(hour, &v)| {
                let x = hour as f64;
                let color = heat(v as f64 / max as f64);
                Rectangle::new([(x, y), (x + 1.0, y + 1.0)], color.filled())
            })
        }))
        .map_err(s)?;
    // Thin white gutters between cells and a frame round the grid.
    let gutters = (1..24)
        .map(|x| vec![(x as f64, 0.0), (x as f64, 7.0)])
        .chain((1..7).map(|y| vec![(0.0, y as f64), (24.0, y as f64)]));
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
    let (y0, y1) = (46, (sh as i32 - 110).max(120));
    side.draw_text("Transactions", &font(15.0), (8, 14))
        .map_err(s)?;
    let steps = 80;
    for i in 0..steps {
        let t0 = i as f64 / steps as f64;
        let ya = y1 - ((y1 - y0) as f64 * (i + 1) as f64 / steps as f64).round() as i32;
        let yb = y1 - ((y1 - y0) as f64 * t0).round() as i32;
        side.draw(&Rectangle::new(
            [(x0, ya), (x1, yb)],
            heat(t0 + 0.5 / steps as f64).filled(),
        ))
        .map_err(s)?;
    }
    side.draw(&Rectangle::new([(x0, y0), (x1, y1)], MUTED.stroke_width(1)))
        .map_err(s)?;
    let tick = anchored(font(14.0), HPos::Left, VPos::Center);
    side.draw_text(&group_indian(max), &tick, (x1 + 6, y0))
        .map_err(s)?;
    side.draw_text("0", &tick, (x1 + 6, y1)).map_err(s)?;
    let note = font(14.0).color(&MUTED);
    side.draw_text(&format!("min {}", group_indian(min)), &note, (8, y1 + 26))
        .map_err(s)?;
    side.draw_text(&format!("max {}", group_indian(max)), &note, (8, y1 + 46))
        .map_err(s)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 3. Persona revenue share

fn persona_share<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    agg: &Aggregates,
) -> Result<(), String> {
    let names = persona_names(agg);
    let np = names.len();
    let revenue: Vec<f64> = (0..np)
        .map(|p| {
            agg.days
                .iter()
                .map(|d| persona_revenue(d, p).max(0.0))
                .sum()
        })
        .collect();
    let total: f64 = revenue.iter().sum();
    if np == 0 || total <= 0.0 {
        return no_data(area, "no revenue was recorded");
    }
    let rev_share: Vec<f64> = revenue.iter().map(|r| 100.0 * r / total).collect();
    let active: Vec<u64> = (0..np)
        .map(|p| {
            agg.days
                .last()
                .and_then(|d| d.active.get(p))
                .copied()
                .unwrap_or(0)
        })
        .collect();
    let start: Vec<u64> = (0..np)
        .map(|p| agg.customers.get(p).copied().unwrap_or(0))
        .collect();
    let (counts, which) = if active.iter().sum::<u64>() > 0 {
        (active, "Share of customers (active at the end)")
    } else {
        (start, "Share of customers (at the start)")
    };
    let counts_total: u64 = counts.iter().sum();
    let cust_share: Option<Vec<f64>> = (counts_total > 0).then(|| {
        counts
            .iter()
            .map(|&a| 100.0 * a as f64 / counts_total as f64)
            .collect()
    });

    let mut items = vec![item("Share of revenue", MUTED, Mark::Box)];
    if cust_share.is_some() {
        items.push(item(which, RGBColor(205, 205, 205), Mark::Box));
    }
    let body = legend(area, &items)?;

    let xmax_data = rev_share
        .iter()
        .chain(cust_share.iter().flatten())
        .fold(0.0_f64, |a, &b| a.max(b));
    let xmax = (xmax_data * 1.15).clamp(5.0, 115.0);
    let label_w = names
        .iter()
        .map(|n| text_width(&tick_font(), n))
        .max()
        .unwrap_or(0);
    let mut chart = ChartBuilder::on(&body)
        .margin(8)
        .margin_right(24)
        .x_label_area_size(46)
        .y_label_area_size(label_w + 20)
        .build_cartesian_2d(0.0..xmax, Keyed::new(0.0, np as f64, row_keys(np)))
        .map_err(s)?;
    let fmt_x = |x: &f64| format!("{x:.0}%");
    let fmt_y = |y: &f64| row_at(*y, np).map(|r| names[r].clone()).unwrap_or_default();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .axis_style(MUTED)
        .x_labels(8)
        .x_label_formatter(&fmt_x)
        .y_label_formatter(&fmt_y)
        .label_style(tick_font())
        .axis_desc_style(desc_font())
        .x_desc("Share of total (%)")
        .draw()
        .map_err(s)?;

    let value_style = anchored(font(14.0), HPos::Left, VPos::Center);
    for p in 0..np {
        let base = (np - 1 - p) as f64;
        let color = persona_color(p);
        let mut bars = vec![(rev_share[p], color.mix(1.0), base + 0.2, base + 0.8)];
        if let Some(cs) = &cust_share {
            bars = vec![
                (rev_share[p], color.mix(1.0), base + 0.52, base + 0.86),
                (cs[p], color.mix(0.38), base + 0.14, base + 0.48),
            ];
        }
        for (v, c, y0, y1) in bars {
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(0.0, y0), (v, y1)],
                    c.filled(),
                )))
                .map_err(s)?;
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at((v, (y0 + y1) / 2.0))
                        + Text::new(format!("{v:.1}%"), (6, 0), value_style.clone()),
                ))
                .map_err(s)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 4. Basket value distribution

fn basket_distribution<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    agg: &Aggregates,
) -> Result<(), String> {
    let names = persona_names(agg);
    let bins = BASKET_BINS;
    // (persona, shares per bin in %)
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
        return no_data(area, "no baskets were recorded");
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
        * 1.12;

    let items: Vec<LegendItem> = series
        .iter()
        .map(|(p, _)| {
            let name = names
                .get(*p)
                .cloned()
                .unwrap_or_else(|| format!("Persona {}", p + 1));
            item(name, persona_color(*p), Mark::Line)
        })
        .collect();
    let body = legend(area, &items)?;

    let decades: Vec<f64> = (x0 as i32..=x1 as i32).map(f64::from).collect();
    let minor: Vec<f64> = decades
        .iter()
        .flat_map(|d| (2..10).map(move |m| d + f64::from(m).log10()))
        .filter(|x| *x < x1)
        .collect();
    let mut chart = ChartBuilder::on(&body)
        .margin(8)
        .margin_right(30)
        .x_label_area_size(46)
        .y_label_area_size(70)
        .build_cartesian_2d(Keyed::new(x0, x1, decades).with_light(minor), 0.0..ymax)
        .map_err(s)?;
    let fmt_x = |x: &f64| format!("Rs {}", rupees_axis(10f64.powf(*x) * 100.0));
    let fmt_y = |y: &f64| format!("{}%", short_number(*y));
    chart
        .configure_mesh()
        .bold_line_style(GRID)
        .light_line_style(RGBColor(242, 242, 242))
        .axis_style(MUTED)
        .x_label_formatter(&fmt_x)
        .y_label_formatter(&fmt_y)
        .label_style(tick_font())
        .axis_desc_style(desc_font())
        .x_desc("Basket value (log scale)")
        .y_desc("Share of baskets (%)")
        .draw()
        .map_err(s)?;
    for (p, shares) in &series {
        let pts: Vec<(f64, f64)> = shares
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                (
                    (basket_bin_edge(i) * basket_bin_edge(i + 1)).sqrt().log10(),
                    v,
                )
            })
            .filter(|(x, _)| *x >= x0 && *x <= x1)
            .collect();
        chart
            .draw_series(LineSeries::new(pts, persona_color(*p).stroke_width(3)))
            .map_err(s)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 5. Category mix

fn category_mix<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    agg: &Aggregates,
) -> Result<(), String> {
    const TOP: usize = 8;
    let names = persona_names(agg);
    let np = names.len().max(agg.category_persona.len());
    let nc = agg
        .categories
        .len()
        .max(agg.category_persona.iter().map(Vec::len).max().unwrap_or(0));
    let rev = |p: usize, c: usize| -> f64 {
        agg.category_persona
            .get(p)
            .and_then(|row| row.get(c))
            .map_or(0.0, |cell| (cell.revenue_paise as f64).max(0.0))
    };
    let mut totals: Vec<(usize, f64)> = (0..nc)
        .map(|c| (c, (0..np).map(|p| rev(p, c)).sum()))
        .collect();
    totals.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let grand: f64 = totals.iter().map(|t| t.1).sum();
    if np == 0 || grand <= 0.0 {
        return no_data(area, "no category revenue was recorded");
    }
    let top: Vec<usize> = totals
        .iter()
        .filter(|t| t.1 > 0.0)
        .take(TOP)
        .map(|t| t.0)
        .collect();
    let has_other = totals.iter().skip(top.len()).any(|t| t.1 > 0.0);
    // Segments: (label, colour, categories)
    let mut segments: Vec<(String, RGBColor, Vec<usize>)> = top
        .iter()
        .enumerate()
        .map(|(k, &c)| {
            let name = agg
                .categories
                .get(c)
                .map_or_else(|| format!("category {c}"), |n| pretty(n));
            (name, CATEGORY_COLORS[k % CATEGORY_COLORS.len()], vec![c])
        })
        .collect();
    if has_other {
        let rest = (0..nc).filter(|c| !top.contains(c)).collect();
        segments.push(("other".to_string(), OTHER_COLOR, rest));
    }
    let items: Vec<LegendItem> = segments
        .iter()
        .map(|(n, c, _)| item(n.clone(), *c, Mark::Box))
        .collect();
    let body = legend(area, &items)?;

    let row_name = |p: usize| {
        names
            .get(p)
            .cloned()
            .unwrap_or_else(|| format!("Persona {}", p + 1))
    };
    let label_w = (0..np)
        .map(|p| text_width(&tick_font(), &row_name(p)))
        .max()
        .unwrap_or(0);
    let mut chart = ChartBuilder::on(&body)
        .margin(8)
        .margin_right(24)
        .x_label_area_size(46)
        .y_label_area_size(label_w + 20)
        .build_cartesian_2d(0.0..100.0, Keyed::new(0.0, np as f64, row_keys(np)))
        .map_err(s)?;
    let fmt_x = |x: &f64| format!("{x:.0}%");
    let fmt_y = |y: &f64| row_at(*y, np).map(&row_name).unwrap_or_default();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .axis_style(MUTED)
        .x_labels(11)
        .x_label_formatter(&fmt_x)
        .y_label_formatter(&fmt_y)
        .label_style(tick_font())
        .axis_desc_style(desc_font())
        .x_desc("Share of the persona's revenue (%)")
        .draw()
        .map_err(s)?;

    let px_per_pct = {
        let a = chart.backend_coord(&(0.0, 0.0)).0;
        let b = chart.backend_coord(&(100.0, 0.0)).0;
        f64::from(b - a) / 100.0
    };
    for p in 0..np {
        let base = (np - 1 - p) as f64;
        let (y0, y1) = (base + 0.18, base + 0.82);
        let persona_total: f64 = (0..nc).map(|c| rev(p, c)).sum();
        if persona_total <= 0.0 {
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at((0.0, base + 0.5))
                        + Text::new(
                            "no sales",
                            (8, 0),
                            anchored(font(14.0).color(&MUTED), HPos::Left, VPos::Center),
                        ),
                ))
                .map_err(s)?;
            continue;
        }
        let mut x = 0.0;
        for (_, color, cats) in &segments {
            let share = 100.0 * cats.iter().map(|&c| rev(p, c)).sum::<f64>() / persona_total;
            if share <= 0.0 {
                continue;
            }
            let (a, b) = (x, (x + share).min(100.0));
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(a, y0), (b, y1)],
                    color.filled(),
                )))
                .map_err(s)?;
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(a, y0), (b, y1)],
                    WHITE.stroke_width(1),
                )))
                .map_err(s)?;
            let text = format!("{share:.0}%");
            let style = font(13.0);
            if f64::from(text_width(&style, &text)) + 6.0 <= share * px_per_pct {
                let (r, g, bl) = (color.0 as f64, color.1 as f64, color.2 as f64);
                let ink: &'static RGBColor = if 0.299 * r + 0.587 * g + 0.114 * bl < 150.0 {
                    &WHITE
                } else {
                    &INK
                };
                chart
                    .draw_series(std::iter::once(Text::new(
                        text,
                        ((a + b) / 2.0, base + 0.5),
                        anchored(style.color(ink), HPos::Center, VPos::Center),
                    )))
                    .map_err(s)?;
            }
            x = b;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 6. Festival uplift

struct Uplift {
    event: String,
    ratio: f64,
    days: usize,
}

/// For each event, revenue on its days over the mean of event-free days of the same weekday
/// (or of all event-free days when that weekday has none).
fn uplift(agg: &Aggregates) -> Vec<Uplift> {
    let days = &agg.days;
    let revenue: Vec<f64> = days.iter().map(day_revenue).collect();
    let mut by_weekday = [(0.0, 0usize); 7];
    let (mut free_sum, mut free_n) = (0.0, 0usize);
    for (d, r) in days.iter().zip(&revenue) {
        if d.events.trim().is_empty() {
            let w = usize::from(d.weekday).min(6);
            by_weekday[w].0 += r;
            by_weekday[w].1 += 1;
            free_sum += r;
            free_n += 1;
        }
    }
    let baseline = |w: u8| -> Option<f64> {
        let (sum, n) = by_weekday[usize::from(w).min(6)];
        if n > 0 {
            Some(sum / n as f64)
        } else if free_n > 0 {
            Some(free_sum / free_n as f64)
        } else {
            None
        }
    };
    let mut events: Vec<String> = Vec::new();
    for d in days {
        for e in d.events.split('+').map(str::trim).filter(|e| !e.is_empty()) {
            if !events.iter().any(|x| x == e) {
                events.push(e.to_string());
            }
        }
    }
    events
        .into_iter()
        .filter_map(|event| {
            let (mut actual, mut expected, mut n) = (0.0, 0.0, 0usize);
            for (d, r) in days.iter().zip(&revenue) {
                if d.events.split('+').any(|e| e.trim() == event)
                    && let Some(b) = baseline(d.weekday)
                {
                    actual += r;
                    expected += b;
                    n += 1;
                }
            }
            (n > 0 && expected > 0.0).then(|| Uplift {
                event,
                ratio: actual / expected,
                days: n,
            })
        })
        .collect()
}

fn festival_uplift<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    agg: &Aggregates,
) -> Result<(), String> {
    let rows = uplift(agg);
    if rows.is_empty() {
        return no_data(
            area,
            "no event days with event-free days to compare against",
        );
    }
    let n = rows.len();
    let labels: Vec<String> = rows
        .iter()
        .map(|u| {
            let unit = if u.days == 1 { "day" } else { "days" };
            format!("{} ({} {unit})", u.event, u.days)
        })
        .collect();
    let up = RGBColor(242, 142, 43);
    let down = RGBColor(121, 151, 181);
    let body = legend(
        area,
        &[
            item("Above an ordinary day", up, Mark::Box),
            item("Below an ordinary day", down, Mark::Box),
        ],
    )?;
    let xmax = rows.iter().map(|u| u.ratio).fold(1.0_f64, f64::max) * 1.15;
    let label_w = labels
        .iter()
        .map(|l| text_width(&tick_font(), l))
        .max()
        .unwrap_or(0);
    let mut chart = ChartBuilder::on(&body)
        .margin(8)
        .margin_right(24)
        .x_label_area_size(46)
        .y_label_area_size(label_w + 20)
        .build_cartesian_2d(0.0..xmax, Keyed::new(0.0, n as f64, row_keys(n)))
        .map_err(s)?;
    let fmt_x = |x: &f64| format!("{}x", short_number(*x));
    let fmt_y = |y: &f64| row_at(*y, n).map(|r| labels[r].clone()).unwrap_or_default();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .axis_style(MUTED)
        .x_labels(8)
        .x_label_formatter(&fmt_x)
        .y_label_formatter(&fmt_y)
        .label_style(tick_font())
        .axis_desc_style(desc_font())
        .x_desc("Revenue relative to event-free days of the same weekday")
        .draw()
        .map_err(s)?;
    let value_style = anchored(font(14.0), HPos::Left, VPos::Center);
    for (r, u) in rows.iter().enumerate() {
        let base = (n - 1 - r) as f64;
        let color = if u.ratio >= 1.0 { up } else { down };
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(0.0, base + 0.2), (u.ratio, base + 0.8)],
                color.filled(),
            )))
            .map_err(s)?;
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((u.ratio, base + 0.5))
                    + Text::new(format!("{:.2}x", u.ratio), (6, 0), value_style.clone()),
            ))
            .map_err(s)?;
    }
    chart
        .draw_series(DashedLineSeries::new(
            vec![(1.0, 0.0), (1.0, n as f64)],
            6,
            4,
            INK.stroke_width(2),
        ))
        .map_err(s)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 7. Loyalty and churn

fn loyalty_churn<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    agg: &Aggregates,
) -> Result<(), String> {
    let names = persona_names(agg);
    let days = &agg.days;
    let n = days.len();
    let np = names.len();
    if n == 0 || np == 0 {
        return no_data(area, "no simulated days");
    }
    let items: Vec<LegendItem> = names
        .iter()
        .enumerate()
        .map(|(p, name)| item(name.clone(), persona_color(p), Mark::Box))
        .collect();
    let body = legend(area, &items)?;
    let panels = body.split_evenly((1, 2));
    let (left, right) = (&panels[0], &panels[1]);
    let fmt_x = |x: &f64| day_label(days, *x);
    let caption = font(17.0);

    // Left: mean loyalty of active customers.
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
        let (w, _) = left.dim_in_pixel();
        let mut chart = ChartBuilder::on(left)
            .caption("Mean loyalty of active customers", caption.clone())
            .margin(8)
            .margin_right(16)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(
                Keyed::new(-0.5, n as f64 - 0.5, day_keys(n, w.saturating_sub(80))),
                y0..y1,
            )
            .map_err(s)?;
        let fmt_y = |y: &f64| format!("{y:.2}");
        chart
            .configure_mesh()
            .disable_x_mesh()
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .axis_style(MUTED)
            .y_labels(6)
            .x_label_formatter(&fmt_x)
            .y_label_formatter(&fmt_y)
            .label_style(tick_font())
            .draw()
            .map_err(s)?;
        for (p, pts) in series {
            let color = persona_color(p);
            if pts.len() == 1 {
                chart
                    .draw_series(pts.iter().map(|&pt| Circle::new(pt, 4, color.filled())))
                    .map_err(s)?;
            }
            chart
                .draw_series(LineSeries::new(pts, color.stroke_width(3)))
                .map_err(s)?;
        }
    } else {
        no_data(left, "no loyalty samples")?;
    }

    // Right: customers churned per day, stacked by persona.
    let churned = |d: &Day, p: usize| d.churned.get(p).copied().unwrap_or(0) as f64;
    let top = days
        .iter()
        .map(|d| (0..np).map(|p| churned(d, p)).sum::<f64>())
        .fold(0.0_f64, f64::max);
    if top <= 0.0 {
        return no_data(right, "no customers churned");
    }
    let (w, _) = right.dim_in_pixel();
    let mut chart = ChartBuilder::on(right)
        .caption("Customers churned per day", caption)
        .margin(8)
        .margin_right(16)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(
            Keyed::new(-0.5, n as f64 - 0.5, day_keys(n, w.saturating_sub(80))),
            0.0..top * 1.1,
        )
        .map_err(s)?;
    let fmt_y = |y: &f64| group_indian(y.max(0.0).round() as u64);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .axis_style(MUTED)
        .y_labels(6)
        .x_label_formatter(&fmt_x)
        .y_label_formatter(&fmt_y)
        .label_style(tick_font())
        .draw()
        .map_err(s)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::Cell;

    fn cell(rs: i64, tx: u64) -> Cell {
        Cell {
            revenue_paise: rs * 100,
            transactions: tx,
            units: tx * 3,
        }
    }

    pub(super) fn sample_pub() -> Aggregates {
        sample()
    }

    /// 3 days, 2 personas, 3 categories, one festival day (Diwali).
    fn sample() -> Aggregates {
        let day = |date: &str, weekday: u8, festival: bool, events: &str, k: i64| Day {
            date: date.to_string(),
            weekday,
            festival,
            weekend: weekday >= 5,
            events: events.to_string(),
            personas: vec![
                cell(250_000 * k, 100 * k as u64),
                cell(90_000 * k, 80 * k as u64),
            ],
            category_revenue: vec![100_000 * k, 150_000 * k, 90_000 * k],
            churned: vec![k as u64, 2],
            active: vec![1_000, 3_000],
            loyalty: vec![
                [0, 0, 1, 5, 20, 40, 60, 30, 10, 2],
                [3, 8, 20, 40, 30, 12, 5, 1, 0, 0],
            ],
        };
        let mut hour_weekday = vec![vec![Cell::default(); 24]; 7];
        for (w, row) in hour_weekday.iter_mut().enumerate() {
            for (h, c) in row.iter_mut().enumerate().skip(8).take(14) {
                *c = cell(1_000, (w as u64 + 1) * (1 + (h as u64 % 7)));
            }
        }
        let mut hist = vec![vec![0u64; BASKET_BINS]; 2];
        for i in 10..35 {
            hist[0][i] = 50 - (i as u64).abs_diff(24) * 3;
            hist[1][i] = 50 - (i as u64).abs_diff(18) * 3;
        }
        Aggregates {
            scenario: "test".to_string(),
            personas: vec!["premium".to_string(), "budget".to_string()],
            labels: vec!["Premium Shopper".to_string(), "Budget Shopper".to_string()],
            customers: vec![1_000, 3_000],
            categories: vec![
                "sweets".to_string(),
                "dry_fruits".to_string(),
                "apparel".to_string(),
            ],
            groups: Vec::new(),
            days: vec![
                day("2026-11-07", 5, false, "", 2),
                day("2026-11-08", 6, true, "Diwali", 5),
                day("2026-11-09", 0, false, "", 1),
            ],
            hour_weekday,
            category_persona: vec![
                vec![cell(300_000, 10), cell(900_000, 20), cell(800_000, 5)],
                vec![cell(200_000, 30), cell(100_000, 5), cell(420_000, 9)],
            ],
            basket_histogram: hist,
            budget: Vec::new(),
        }
    }

    #[test]
    fn renders_all_charts() {
        let dir = tempfile::tempdir().unwrap();
        let charts = render_all(&sample(), dir.path()).unwrap();
        let names: Vec<&str> = charts.iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                "daily_revenue",
                "hour_weekday_heatmap",
                "persona_revenue_share",
                "basket_distribution",
                "category_mix",
                "festival_uplift",
                "loyalty_churn"
            ]
        );
        for c in &charts {
            let png = fs::read(dir.path().join(format!("{}.png", c.name))).unwrap();
            assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{} is not a PNG", c.name);
            assert!(
                png.len() > 8_000,
                "{} looks blank ({} bytes)",
                c.name,
                png.len()
            );
            let svg = fs::read_to_string(dir.path().join(format!("{}.svg", c.name))).unwrap();
            assert_eq!(svg, c.svg);
            assert!(svg.contains("<svg"), "{}", c.name);
            assert!(
                svg.matches('<').count() > 50,
                "{} has too few elements",
                c.name
            );
            assert!(!svg.contains("No data"), "{} drew no data", c.name);
            assert!(
                !svg.contains(FAMILY),
                "{} names the internal font family",
                c.name
            );
            if !matches!(c.name, "hour_weekday_heatmap" | "festival_uplift") {
                for label in ["Premium Shopper", "Budget Shopper"] {
                    assert!(svg.contains(label), "{} lacks {label}", c.name);
                }
            }
        }
        let uplift = &charts[5].svg;
        assert!(uplift.contains("Diwali (1 day)"));
        // Nothing left behind but the charts.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 14);
    }

    #[test]
    fn uplift_falls_back_to_all_event_free_days() {
        let u = uplift(&sample());
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].event, "Diwali");
        // Diwali (Sunday) = 5k; no event-free Sunday, so the baseline is the mean of 2k and 1k.
        assert!((u[0].ratio - 5.0 / 1.5).abs() < 1e-9, "{}", u[0].ratio);
    }

    #[test]
    fn empty_aggregates_draw_no_data() {
        let dir = tempfile::tempdir().unwrap();
        let charts = render_all(&Aggregates::default(), dir.path()).unwrap();
        assert_eq!(charts.len(), 7);
        for c in &charts {
            assert!(c.svg.contains("No data"), "{}", c.name);
            assert!(dir.path().join(format!("{}.png", c.name)).is_file());
        }
    }

    #[test]
    fn zero_revenue_days_draw_no_data() {
        let mut agg = sample();
        for d in &mut agg.days {
            for c in &mut d.personas {
                *c = Cell::default();
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let charts = render_all(&agg, dir.path()).unwrap();
        assert!(charts[0].svg.contains("No data"));
        assert!(charts[5].svg.contains("No data"));
    }

    #[test]
    fn rupee_axis_labels() {
        assert_eq!(rupees_axis(1_250_000_00.0), "12.5 L");
        assert_eq!(rupees_axis(1.2e9), "1.2 Cr");
        assert_eq!(rupees_axis(500_000.0), "5K");
        assert_eq!(rupees_axis(0.0), "0");
        assert_eq!(rupees_axis(25_000.0), "250");
        assert_eq!(rupees_axis(1e12), "1000 Cr");
        assert_eq!(rupees_axis(-150_000_00.0), "-1.5 L");
        assert_eq!(rupees_axis(f64::NAN), "");
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

#[cfg(test)]
mod review_tmp {
    use super::*;
    use crate::analytics::{Cell, basket_bin};
    use chrono::{Datelike, Timelike};
    use std::collections::HashMap;

    #[test]
    fn review_dump() {
        let out = Path::new("/tmp/bazaar_charts");
        render_all(&tests_sample(), &out.join("sample")).unwrap();
        render_all(&Aggregates::default(), &out.join("empty")).unwrap();
        let base = Path::new("/work/main/out/diwali");
        if !base.join("daily_metrics.csv").exists() {
            return;
        }
        let personas = [
            "premium",
            "family",
            "young_professional",
            "senior",
            "budget",
        ];
        let labels = [
            "Premium Shopper",
            "Family Shopper",
            "Young Professional",
            "Senior Citizen",
            "Budget Shopper",
        ];
        let pidx = |s: &str| personas.iter().position(|p| *p == s).unwrap();
        let mut days: Vec<Day> = Vec::new();
        let mut rd = csv::Reader::from_path(base.join("daily_metrics.csv")).unwrap();
        for r in rd.records() {
            let r = r.unwrap();
            let date = r[0].to_string();
            if days.last().map(|d| d.date != date).unwrap_or(true) {
                let nd = chrono::NaiveDate::parse_from_str(&date, "%Y-%m-%d").unwrap();
                days.push(Day {
                    date: date.clone(),
                    weekday: nd.weekday().num_days_from_monday() as u8,
                    festival: &r[14] == "true",
                    weekend: &r[15] == "true",
                    events: r[16].to_string(),
                    personas: vec![Cell::default(); 5],
                    category_revenue: vec![],
                    churned: vec![0; 5],
                    active: vec![0; 5],
                    loyalty: vec![[0; LOYALTY_BINS]; 5],
                });
            }
            let d = days.last_mut().unwrap();
            let p = pidx(&r[1]);
            d.personas[p].revenue_paise = (r[8].parse::<f64>().unwrap() * 100.0) as i64;
            d.personas[p].transactions = r[7].parse().unwrap();
            d.churned[p] = r[4].parse().unwrap();
            d.active[p] = r[2].parse().unwrap();
        }
        let mut hw = vec![vec![Cell::default(); 24]; 7];
        let mut hist = vec![vec![0u64; BASKET_BINS]; 5];
        let mut txp: HashMap<u64, usize> = HashMap::new();
        let mut rd = csv::Reader::from_path(base.join("transactions.csv")).unwrap();
        for r in rd.records() {
            let r = r.unwrap();
            let t = chrono::NaiveDateTime::parse_from_str(&r[1], "%Y-%m-%dT%H:%M:%S").unwrap();
            let p = pidx(&r[3]);
            let paise = (r[4].parse::<f64>().unwrap() * 100.0) as i64;
            hw[t.weekday().num_days_from_monday() as usize][t.hour() as usize].transactions += 1;
            hist[p][basket_bin(paise)] += 1;
            txp.insert(r[0].parse().unwrap(), p);
        }
        let mut cats: Vec<String> = Vec::new();
        let mut cp = vec![Vec::<Cell>::new(); 5];
        let mut rd = csv::Reader::from_path(base.join("line_items.csv")).unwrap();
        for r in rd.records() {
            let r = r.unwrap();
            let c = match cats.iter().position(|c| *c == r[2]) {
                Some(c) => c,
                None => {
                    cats.push(r[2].to_string());
                    cats.len() - 1
                }
            };
            let p = txp[&r[0].parse::<u64>().unwrap()];
            if cp[p].len() <= c {
                cp[p].resize(c + 1, Cell::default());
            }
            cp[p][c].revenue_paise += (r[5].parse::<f64>().unwrap() * 100.0) as i64;
        }
        let mut loy = vec![[0u64; LOYALTY_BINS]; 5];
        let mut rd = csv::Reader::from_path(base.join("customers.csv")).unwrap();
        for r in rd.records() {
            let r = r.unwrap();
            if !r[12].is_empty() {
                continue;
            }
            let l: f64 = r[6].parse().unwrap();
            loy[pidx(&r[1])][((l * 10.0) as usize).min(9)] += 1;
        }
        let n = days.len();
        for (i, d) in days.iter_mut().enumerate() {
            for p in 0..5 {
                let mut h = loy[p];
                let shift = (n - i) as u64 * 20;
                h[3] += shift;
                d.loyalty[p] = h;
            }
        }
        let agg = Aggregates {
            scenario: "diwali".into(),
            personas: personas.iter().map(|s| s.to_string()).collect(),
            labels: labels.iter().map(|s| s.to_string()).collect(),
            customers: vec![15000, 25000, 25000, 15000, 20000],
            categories: cats,
            groups: vec![],
            days,
            hour_weekday: hw,
            category_persona: cp,
            basket_histogram: hist,
            budget: vec![],
        };
        render_all(&agg, &out.join("diwali")).unwrap();
    }

    fn tests_sample() -> Aggregates {
        super::tests::sample_pub()
    }
}
