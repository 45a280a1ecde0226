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
            Kind::CategoryMix => "Revenue by category group, per persona",
            Kind::FestivalUplift => "Revenue uplift on festival and event days",
            Kind::LoyaltyChurn => "Loyalty and churn by persona",
        }
    }

    /// Pixel size; charts with one row per persona or event grow taller with many rows.
    fn size(self, agg: &Aggregates) -> (u32, u32) {
        let rows = match self {
            Kind::CategoryMix | Kind::PersonaShare => persona_names(agg).len(),
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
        draw(kind, &Canvas::new(&root, false), agg).map_err(failed)?;
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
        draw(kind, &Canvas::new(&root, true), agg)
            .and_then(|()| root.present().map_err(|e| e.to_string()))
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
fn draw<DB: DrawingBackend>(kind: Kind, cv: &Canvas<DB>, agg: &Aggregates) -> Result<(), String> {
    let root = cv.root;
    root.fill(&WHITE).map_err(s)?;
    let (w, _) = root.dim_in_pixel();
    cv.text(
        kind.title(),
        &anchored(title_font(), HPos::Center, VPos::Top),
        (w as i32 / 2, 10),
    )?;
    let body = root.split_vertically(46).1.margin(0, 6, 8, 8);
    match kind {
        Kind::DailyRevenue => daily_revenue(cv, &body, agg),
        Kind::HourWeekday => hour_weekday(cv, &body, agg),
        Kind::PersonaShare => persona_share(cv, &body, agg),
        Kind::Basket => basket_distribution(cv, &body, agg),
        Kind::CategoryMix => category_mix(cv, &body, agg),
        Kind::FestivalUplift => festival_uplift(cv, &body, agg),
        Kind::LoyaltyChurn => loyalty_churn(cv, &body, agg),
    }
}

fn s<E: Display>(e: E) -> String {
    e.to_string()
}

// ---------------------------------------------------------------------------------------------
// Text

/// The root drawing area and how text reaches it.
///
/// plotters 0.3.7 rasterises `ab_glyph` text without each glyph's left side bearing, so in
/// bitmaps the letters of a word sit unevenly ("Shopp er"). For bitmaps, text is therefore
/// drawn one glyph at a time at its correct pen position plus bearing (read from the
/// embedded font's `hmtx` table). SVG text is left to the browser and drawn whole.
struct Canvas<'r, DB: DrawingBackend> {
    root: &'r DrawingArea<DB, Shift>,
    per_glyph: bool,
}

impl<'r, DB: DrawingBackend> Canvas<'r, DB> {
    fn new(root: &'r DrawingArea<DB, Shift>, per_glyph: bool) -> Self {
        Self { root, per_glyph }
    }

    /// Draws `text` at `pos` in root (absolute) pixels.
    fn text(&self, text: &str, style: &TextStyle, pos: (i32, i32)) -> Result<(), String> {
        if !self.per_glyph {
            return self.root.draw_text(text, style, pos).map_err(s);
        }
        let size = style.font.get_size();
        let face = match style.font.get_style() {
            FontStyle::Bold => faces().1.as_ref(),
            _ => faces().0.as_ref(),
        };
        let plain = style.font.transform(FontTransform::None);
        let fine = plain.resize(size * 64.0);
        let width = plain.box_size(text).map_or(0, |b| b.0 as i32);
        let dx = match style.pos.h_pos {
            HPos::Left => 0,
            HPos::Center => -width / 2,
            HPos::Right => -width,
        };
        let trans = style.font.get_transform();
        let glyph_style = style.pos(Pos::new(HPos::Left, style.pos.v_pos));
        let measure = |t: &str| fine.box_size(t).map_or(0.0, |b| f64::from(b.0) / 64.0);
        for (i, c) in text.char_indices() {
            if c.is_whitespace() {
                continue;
            }
            let end = i + c.len_utf8();
            // Pen position of this glyph, kerning with its predecessor included.
            let pen = measure(&text[..end]) - measure(&text[i..end]);
            let bearing = face.map_or(0, |f| f.bearing_px(c, size));
            let (ox, oy) = trans.transform(dx + pen.round() as i32 + bearing, 0);
            self.root
                .draw_text(&text[i..end], &glyph_style, (pos.0 + ox, pos.1 + oy))
                .map_err(s)?;
        }
        Ok(())
    }

    /// Draws `text` at `pos` relative to `area`.
    fn text_in(
        &self,
        area: &DrawingArea<DB, Shift>,
        text: &str,
        style: &TextStyle,
        pos: (i32, i32),
    ) -> Result<(), String> {
        let (bx, by) = area.get_base_pixel();
        self.text(text, style, (bx + pos.0, by + pos.1))
    }
}

/// Horizontal metrics of an embedded font, enough to place glyphs.
struct Face {
    data: &'static [u8],
    /// Offset of the Unicode BMP (format 4) `cmap` subtable.
    cmap: usize,
    hmtx: usize,
    long_metrics: usize,
    glyphs: usize,
    /// Ascent − descent, font units (what `ab_glyph` scales the pixel size by).
    height: f64,
}

fn be_u16(d: &[u8], at: usize) -> Option<u16> {
    d.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]))
}

fn be_i16(d: &[u8], at: usize) -> Option<i16> {
    d.get(at..at + 2).map(|b| i16::from_be_bytes([b[0], b[1]]))
}

fn be_u32(d: &[u8], at: usize) -> Option<u32> {
    d.get(at..at + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

impl Face {
    fn parse(data: &'static [u8]) -> Option<Face> {
        let tables = usize::from(be_u16(data, 4)?);
        let find = |tag: &[u8; 4]| -> Option<usize> {
            (0..tables).find_map(|i| {
                let rec = 12 + 16 * i;
                if data.get(rec..rec + 4)? == tag {
                    be_u32(data, rec + 8).map(|o| o as usize)
                } else {
                    None
                }
            })
        };
        let hhea = find(b"hhea")?;
        let hmtx = find(b"hmtx")?;
        let cmap = find(b"cmap")?;
        let maxp = find(b"maxp")?;
        let (mut ascent, mut descent) = (be_i16(data, hhea + 4)?, be_i16(data, hhea + 6)?);
        if let Some(os2) = find(b"OS/2")
            && be_u16(data, os2 + 62)? & (1 << 7) != 0
        {
            ascent = be_i16(data, os2 + 68)?;
            descent = be_i16(data, os2 + 70)?;
        }
        let subtables = usize::from(be_u16(data, cmap + 2)?);
        let bmp = (0..subtables).find_map(|i| {
            let rec = cmap + 4 + 8 * i;
            let (platform, encoding) = (be_u16(data, rec)?, be_u16(data, rec + 2)?);
            let at = cmap + be_u32(data, rec + 4)? as usize;
            let unicode = platform == 0 || (platform == 3 && encoding == 1);
            (unicode && be_u16(data, at)? == 4).then_some(at)
        })?;
        let height = f64::from(ascent) - f64::from(descent);
        (height > 0.0).then_some(Face {
            data,
            cmap: bmp,
            hmtx,
            long_metrics: usize::from(be_u16(data, hhea + 34)?),
            glyphs: usize::from(be_u16(data, maxp + 4)?),
            height,
        })
    }

    fn glyph(&self, c: char) -> Option<usize> {
        let c = u16::try_from(u32::from(c)).ok()?;
        let (d, t) = (self.data, self.cmap);
        let seg2 = usize::from(be_u16(d, t + 6)?);
        let ends = t + 14;
        let starts = ends + seg2 + 2;
        let deltas = starts + seg2;
        let ranges = deltas + seg2;
        for i in (0..seg2).step_by(2) {
            if be_u16(d, ends + i)? < c {
                continue;
            }
            let start = be_u16(d, starts + i)?;
            if start > c {
                return None;
            }
            let delta = be_u16(d, deltas + i)?;
            let range = usize::from(be_u16(d, ranges + i)?);
            let g = if range == 0 {
                c.wrapping_add(delta)
            } else {
                match be_u16(d, ranges + i + range + 2 * usize::from(c - start))? {
                    0 => return None,
                    g => g.wrapping_add(delta),
                }
            };
            return Some(usize::from(g));
        }
        None
    }

    /// Left side bearing, font units.
    fn lsb(&self, c: char) -> Option<i16> {
        let g = self.glyph(c)?;
        if g >= self.glyphs {
            return None;
        }
        let at = if g < self.long_metrics {
            self.hmtx + 4 * g + 2
        } else {
            self.hmtx + 4 * self.long_metrics + 2 * (g - self.long_metrics)
        };
        be_i16(self.data, at)
    }

    /// Left side bearing in whole pixels at plotters font size `size` (floored, as the
    /// rasteriser's pixel bounds are).
    fn bearing_px(&self, c: char, size: f64) -> i32 {
        self.lsb(c)
            .map_or(0, |l| (f64::from(l) * size / self.height).floor() as i32)
    }
}

/// Regular and bold metrics (None if a font cannot be parsed: glyphs then go unshifted).
fn faces() -> &'static (Option<Face>, Option<Face>) {
    static FACES: OnceLock<(Option<Face>, Option<Face>)> = OnceLock::new();
    FACES.get_or_init(|| (Face::parse(REGULAR_TTF), Face::parse(BOLD_TTF)))
}

// ---------------------------------------------------------------------------------------------
// Style

const INK: RGBColor = RGBColor(38, 38, 38);
const MUTED: RGBColor = RGBColor(105, 105, 105);
const GRID: RGBColor = RGBColor(228, 228, 228);
const MINOR_GRID: RGBColor = RGBColor(243, 243, 243);
const FESTIVAL_BAND: RGBColor = RGBColor(255, 222, 173);
const EVENT_BAND: RGBColor = RGBColor(255, 243, 224);
const WEEKEND_BAND: RGBColor = RGBColor(236, 236, 236);
const FESTIVAL_TEXT: RGBColor = RGBColor(150, 72, 0);

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

/// Width of `text` in pixels, laid out horizontally.
fn text_width(style: &TextStyle, text: &str) -> u32 {
    style
        .font
        .transform(FontTransform::None)
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
    cv: &Canvas<DB>,
    area: &DrawingArea<DB, Shift>,
    items: &[LegendItem],
) -> Result<DrawingArea<DB, Shift>, String> {
    const SWATCH: i32 = 24;
    const GAP: i32 = 6;
    const SPACING: i32 = 24;
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
                    let corners = [(x + 4, y - 8), (x + SWATCH - 4, y + 8)];
                    area.draw(&Rectangle::new(corners, it.color.filled()))
                        .map_err(s)?;
                    area.draw(&Rectangle::new(corners, MUTED.mix(0.5).stroke_width(1)))
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
            cv.text_in(area, &it.label, &label_style, (x + SWATCH + GAP, y))?;
            x += widths[i] + SPACING;
        }
    }
    let used = 10 + rows.len() as i32 * ROW;
    Ok(area.split_vertically(used).1)
}

/// "No data" in the middle of `area`, with the reason below.
fn no_data<DB: DrawingBackend>(
    cv: &Canvas<DB>,
    area: &DrawingArea<DB, Shift>,
    why: &str,
) -> Result<(), String> {
    let (w, h) = area.dim_in_pixel();
    let (cx, cy) = (w as i32 / 2, h as i32 / 2);
    cv.text_in(
        area,
        "No data",
        &anchored(font(24.0).color(&MUTED), HPos::Center, VPos::Center),
        (cx, cy - 16),
    )?;
    cv.text_in(
        area,
        why,
        &anchored(font(16.0).color(&MUTED), HPos::Center, VPos::Center),
        (cx, cy + 16),
    )
}

/// A caption centred at the top of `area`; returns the area below it.
fn caption<DB: DrawingBackend>(
    cv: &Canvas<DB>,
    area: &DrawingArea<DB, Shift>,
    text: &str,
) -> Result<DrawingArea<DB, Shift>, String> {
    let (w, _) = area.dim_in_pixel();
    cv.text_in(
        area,
        text,
        &anchored(font(17.0), HPos::Center, VPos::Top),
        (w as i32 / 2, 4),
    )?;
    Ok(area.split_vertically(30).1)
}

// ---------------------------------------------------------------------------------------------
// Axes

/// A linear f64 axis whose ticks are exactly the given points (plotters draws the grid and
/// tick marks; the labels are drawn by [`decorate`]).
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

    /// An axis from `lo` to `hi` with "nice" ticks (1, 2, 2.5 or 5 × 10^k apart).
    fn nice(lo: f64, hi: f64, max_ticks: usize) -> Self {
        Self::new(lo, hi, nice_ticks(lo, hi, max_ticks))
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

fn nice_ticks(lo: f64, hi: f64, max_ticks: usize) -> Vec<f64> {
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
fn fixed_decimals(keys: &[f64]) -> usize {
    (0..=4)
        .find(|&d| {
            let scale = 10f64.powi(d as i32);
            keys.iter()
                .all(|k| ((k * scale).round() - k * scale).abs() < 1e-6)
        })
        .unwrap_or(4)
}

type Plot<'a, DB> = ChartContext<'a, DB, Cartesian2d<Keyed, Keyed>>;

/// Space round a plot: label areas and margins, pixels.
struct Room {
    /// Width of the y tick labels.
    left: u32,
    /// Whether there is an x axis description below the tick labels.
    x_desc: bool,
    /// Whether there is a rotated y axis description left of the tick labels.
    y_desc: bool,
    right: u32,
}

fn plot_on<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    x: Keyed,
    y: Keyed,
    room: Room,
) -> Result<Plot<'a, DB>, String> {
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
struct Axes<'f> {
    x_fmt: &'f dyn Fn(f64) -> String,
    y_fmt: &'f dyn Fn(f64) -> String,
    x_desc: &'f str,
    y_desc: &'f str,
    x_grid: bool,
    y_grid: bool,
}

/// Grid, axis lines and tick marks (by plotters), then the tick labels and descriptions.
fn decorate<DB: DrawingBackend>(
    cv: &Canvas<DB>,
    area: &DrawingArea<DB, Shift>,
    chart: &mut Plot<DB>,
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
fn framed<'a, DB: DrawingBackend>(
    cv: &Canvas<DB>,
    area: &'a DrawingArea<DB, Shift>,
    x: Keyed,
    y: Keyed,
    room: Room,
    axes: &Axes,
) -> Result<Plot<'a, DB>, String> {
    let mut chart = plot_on(area, x.clone(), y.clone(), room)?;
    decorate(cv, area, &mut chart, &x, &y, axes)?;
    Ok(chart)
}

/// A horizontal-bar plot: one row per label (the first at the top) against `x`.
fn bar_plot<'a, DB: DrawingBackend>(
    cv: &Canvas<DB>,
    area: &'a DrawingArea<DB, Shift>,
    x: Keyed,
    labels: &[String],
    x_fmt: &dyn Fn(f64) -> String,
    x_desc: &str,
) -> Result<Plot<'a, DB>, String> {
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
fn value_bar<DB: DrawingBackend>(
    cv: &Canvas<DB>,
    chart: &mut Plot<DB>,
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
fn widest<S: AsRef<str>>(texts: impl IntoIterator<Item = S>) -> u32 {
    texts
        .into_iter()
        .map(|t| text_width(&tick_font(), t.as_ref()))
        .max()
        .unwrap_or(0)
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

/// The display name of persona `p`, or a numbered stand-in.
fn persona_name(names: &[String], p: usize) -> String {
    names
        .get(p)
        .cloned()
        .unwrap_or_else(|| format!("Persona {}", p + 1))
}

/// One legend box per persona, in persona colours.
fn persona_items(names: &[String]) -> Vec<LegendItem> {
    names
        .iter()
        .enumerate()
        .map(|(p, name)| item(name.clone(), persona_color(p), Mark::Box))
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

/// A day axis: one unit per day, days centred on whole numbers.
fn day_axis(n: usize, width: u32) -> Keyed {
    Keyed::new(-0.5, n as f64 - 0.5, day_keys(n, width))
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

/// A row axis of `n` rows, row 0 at the top, ticks at the row centres.
fn row_axis(n: usize) -> Keyed {
    Keyed::new(0.0, n as f64, (0..n).map(|i| i as f64 + 0.5).collect())
}

/// The row index (0 = top) at a y value on a row axis of `n` rows.
fn row_at(y: f64, n: usize) -> Option<usize> {
    let r = y.floor();
    if r < 0.0 || r >= n as f64 {
        return None;
    }
    Some(n - 1 - r as usize)
}

/// The bottom y of row `r` (0 = top) on a row axis of `n` rows.
fn row_base(r: usize, n: usize) -> f64 {
    (n - 1 - r) as f64
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

fn daily_revenue<DB: DrawingBackend>(
    cv: &Canvas<DB>,
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
    let tick_w = widest(y_axis.keys.iter().map(|&k| rupees_axis(k * 100.0)));
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
            y_fmt: &|y| rupees_axis(y * 100.0),
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
    cv: &Canvas<DB>,
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
    cv.text_in(&side, &group_indian(max), &tick, (x1 + 6, y0))?;
    cv.text_in(&side, "0", &tick, (x1 + 6, y1))?;
    let note = anchored(font(14.0).color(&MUTED), HPos::Left, VPos::Top);
    for (label, v, dy) in [("min", min, 18), ("max", max, 38)] {
        let text = format!("{label} {}", group_indian(v));
        cv.text_in(&side, &text, &note, (8, y1 + dy))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 3. Persona revenue share

fn persona_share<DB: DrawingBackend>(
    cv: &Canvas<DB>,
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
        return no_data(cv, area, "no revenue was recorded");
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
    let body = legend(cv, area, &items)?;

    let xmax_data = rev_share
        .iter()
        .chain(cust_share.iter().flatten())
        .fold(0.0_f64, |a, &b| a.max(b));
    let xmax = (xmax_data * 1.15).clamp(5.0, 115.0);
    let mut chart = bar_plot(
        cv,
        &body,
        Keyed::nice(0.0, xmax, 8),
        &names,
        &|x| format!("{}%", short_number(x)),
        "Share of total (%)",
    )?;

    for p in 0..np {
        let base = row_base(p, np);
        let color = persona_color(p);
        let bars = match &cust_share {
            Some(cs) => vec![
                (rev_share[p], color.mix(1.0), base + 0.52, base + 0.86),
                (cs[p], color.mix(0.38), base + 0.14, base + 0.48),
            ],
            None => vec![(rev_share[p], color.mix(1.0), base + 0.2, base + 0.8)],
        };
        for (v, c, y0, y1) in bars {
            value_bar(cv, &mut chart, (v, y0, y1), c.filled(), &format!("{v:.1}%"))?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 4. Basket value distribution

fn basket_distribution<DB: DrawingBackend>(
    cv: &Canvas<DB>,
    area: &DrawingArea<DB, Shift>,
    agg: &Aggregates,
) -> Result<(), String> {
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
    let x_fmt = |x: f64| format!("Rs {}", rupees_axis(10f64.powf(x) * 100.0));
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

// ---------------------------------------------------------------------------------------------
// 5. Category mix

/// The categories shown by name: the top `n` by their mean share of a persona's revenue
/// (so a small persona's staples are not drowned by a big persona's basket).
fn top_categories(share: &[Vec<f64>], nc: usize, n: usize) -> Vec<usize> {
    let mut mean: Vec<(usize, f64)> = (0..nc)
        .map(|c| {
            let sum: f64 = share
                .iter()
                .map(|row| row.get(c).copied().unwrap_or(0.0))
                .sum();
            (c, sum / share.len().max(1) as f64)
        })
        .filter(|(_, m)| *m > 0.0)
        .collect();
    mean.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    mean.into_iter().take(n).map(|(c, _)| c).collect()
}

fn category_mix<DB: DrawingBackend>(
    cv: &Canvas<DB>,
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
    // Each persona's share of its revenue by category, %.
    let share: Vec<Vec<f64>> = (0..np)
        .map(|p| {
            let total: f64 = (0..nc).map(|c| rev(p, c)).sum();
            (0..nc)
                .map(|c| {
                    if total > 0.0 {
                        100.0 * rev(p, c) / total
                    } else {
                        0.0
                    }
                })
                .collect()
        })
        .collect();
    let sold: Vec<&Vec<f64>> = share
        .iter()
        .filter(|row| row.iter().any(|&v| v > 0.0))
        .collect();
    if np == 0 || sold.is_empty() {
        return no_data(cv, area, "no category revenue was recorded");
    }
    let sold: Vec<Vec<f64>> = sold.into_iter().cloned().collect();
    // Bars are split by category group when every category has one (a catalog of dozens of
    // categories reads better as a dozen groups), else by category.
    let grouped = !agg.groups.is_empty()
        && agg.groups.len() == nc
        && agg.groups.iter().all(|g| !g.is_empty());
    let units: Vec<(String, Vec<usize>)> = if grouped {
        let mut units: Vec<(String, Vec<usize>)> = Vec::new();
        for (c, g) in agg.groups.iter().enumerate() {
            match units.iter_mut().find(|u| &u.0 == g) {
                Some(u) => u.1.push(c),
                None => units.push((g.clone(), vec![c])),
            }
        }
        units
    } else {
        (0..nc)
            .map(|c| {
                let name = agg
                    .categories
                    .get(c)
                    .cloned()
                    .unwrap_or_else(|| format!("category {}", c + 1));
                (name, vec![c])
            })
            .collect()
    };
    let unit_share: Vec<Vec<f64>> = sold
        .iter()
        .map(|row| {
            units
                .iter()
                .map(|u| {
                    u.1.iter()
                        .map(|&c| row.get(c).copied().unwrap_or(0.0))
                        .sum()
                })
                .collect()
        })
        .collect();
    let top = top_categories(&unit_share, units.len(), TOP);
    let rest: Vec<usize> = (0..units.len())
        .filter(|u| !top.contains(u))
        .flat_map(|u| units[u].1.clone())
        .collect();
    let has_other = rest
        .iter()
        .any(|&c| sold.iter().any(|row| row.get(c).is_some_and(|&v| v > 0.0)));
    // Segments: (label, colour, categories)
    let mut segments: Vec<(String, RGBColor, Vec<usize>)> = top
        .iter()
        .enumerate()
        .map(|(k, &u)| {
            (
                pretty(&units[u].0),
                CATEGORY_COLORS[k % CATEGORY_COLORS.len()],
                units[u].1.clone(),
            )
        })
        .collect();
    if has_other {
        let label = if grouped {
            "other groups"
        } else {
            "other categories"
        };
        segments.push((label.to_string(), OTHER_COLOR, rest));
    }
    let items: Vec<LegendItem> = segments
        .iter()
        .map(|(n, c, _)| item(n.clone(), *c, Mark::Box))
        .collect();
    let body = legend(cv, area, &items)?;

    let row_names: Vec<String> = (0..np).map(|p| persona_name(&names, p)).collect();
    let mut chart = bar_plot(
        cv,
        &body,
        Keyed::new(0.0, 100.0, (0..=10).map(|i| f64::from(i) * 10.0).collect()),
        &row_names,
        &|x| format!("{x:.0}%"),
        "Share of the persona's revenue (%)",
    )?;

    let px_per_pct = {
        let a = chart.backend_coord(&(0.0, 0.0)).0;
        let b = chart.backend_coord(&(100.0, 0.0)).0;
        f64::from(b - a) / 100.0
    };
    let muted = anchored(font(14.0).color(&MUTED), HPos::Left, VPos::Center);
    for (p, row) in share.iter().enumerate() {
        let base = row_base(p, np);
        let (y0, y1) = (base + 0.18, base + 0.82);
        if row.iter().all(|&v| v <= 0.0) {
            let (px, py) = chart.backend_coord(&(0.0, base + 0.5));
            cv.text("no sales", &muted, (px + 8, py))?;
            continue;
        }
        let mut x = 0.0;
        for (_, color, cats) in &segments {
            let part: f64 = cats
                .iter()
                .map(|&c| row.get(c).copied().unwrap_or(0.0))
                .sum();
            if part <= 0.0 {
                continue;
            }
            let (a, b) = (x, (x + part).min(100.0));
            let corners = [(a, y0), (b, y1)];
            chart
                .draw_series([
                    Rectangle::new(corners, color.filled()),
                    Rectangle::new(corners, WHITE.stroke_width(1)),
                ])
                .map_err(s)?;
            let text = format!("{part:.0}%");
            let style = font(13.0);
            if f64::from(text_width(&style, &text)) + 8.0 <= part * px_per_pct {
                let (r, g, bl) = (f64::from(color.0), f64::from(color.1), f64::from(color.2));
                let ink: &'static RGBColor = if 0.299 * r + 0.587 * g + 0.114 * bl < 150.0 {
                    &WHITE
                } else {
                    &INK
                };
                let pos = chart.backend_coord(&((a + b) / 2.0, base + 0.5));
                cv.text(
                    &text,
                    &anchored(style.color(ink), HPos::Center, VPos::Center),
                    pos,
                )?;
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
    cv: &Canvas<DB>,
    area: &DrawingArea<DB, Shift>,
    agg: &Aggregates,
) -> Result<(), String> {
    let rows = uplift(agg);
    if rows.is_empty() {
        return no_data(
            cv,
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
        cv,
        area,
        &[
            item("Above an ordinary day", up, Mark::Box),
            item("Below an ordinary day", down, Mark::Box),
            item("Ordinary day (1x)", INK, Mark::Line),
        ],
    )?;
    let xmax = rows.iter().map(|u| u.ratio).fold(1.0_f64, f64::max) * 1.15;
    let mut chart = bar_plot(
        cv,
        &body,
        Keyed::nice(0.0, xmax, 8),
        &labels,
        &|x| format!("{}x", short_number(x)),
        "Revenue relative to event-free days of the same weekday",
    )?;
    for (r, u) in rows.iter().enumerate() {
        let base = row_base(r, n);
        let color = if u.ratio >= 1.0 { up } else { down };
        let bar = (u.ratio, base + 0.2, base + 0.8);
        value_bar(
            cv,
            &mut chart,
            bar,
            color.filled(),
            &format!("{:.2}x", u.ratio),
        )?;
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

/// A panel of values by day on `area`: dates across, a y grid, `left` pixels of y labels.
fn day_panel<'a, DB: DrawingBackend>(
    cv: &Canvas<DB>,
    area: &'a DrawingArea<DB, Shift>,
    days: &[Day],
    y: Keyed,
    left: u32,
    y_fmt: &dyn Fn(f64) -> String,
) -> Result<Plot<'a, DB>, String> {
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

fn loyalty_churn<DB: DrawingBackend>(
    cv: &Canvas<DB>,
    area: &DrawingArea<DB, Shift>,
    agg: &Aggregates,
) -> Result<(), String> {
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
    let y_fmt = |y: f64| group_indian(y.max(0.0).round() as u64);
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
        let hump = |peak: u64| -> Vec<u64> {
            (0..BASKET_BINS as u64)
                .map(|i| {
                    if (10..35).contains(&i) {
                        50 - i.abs_diff(peak) * 3
                    } else {
                        0
                    }
                })
                .collect()
        };
        let hist = vec![hump(24), hump(18)];
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
        assert_eq!(rupees_axis(125_000_000.0), "12.5 L");
        assert_eq!(rupees_axis(1.2e9), "1.2 Cr");
        assert_eq!(rupees_axis(500_000.0), "5K");
        assert_eq!(rupees_axis(0.0), "0");
        assert_eq!(rupees_axis(25_000.0), "250");
        assert_eq!(rupees_axis(1e12), "1000 Cr");
        assert_eq!(rupees_axis(-15_000_000.0), "-1.5 L");
        assert_eq!(rupees_axis(f64::NAN), "");
    }

    #[test]
    fn font_metrics_match_the_glyf_table() {
        // Left side bearings equal each glyph's xMin in `glyf` (checked independently).
        let (regular, bold) = faces();
        let (regular, bold) = (regular.as_ref().unwrap(), bold.as_ref().unwrap());
        assert_eq!(regular.lsb('o'), Some(113));
        assert_eq!(regular.lsb('p'), Some(186));
        assert_eq!(regular.lsb('j'), Some(-37));
        assert_eq!(regular.lsb('₹'), Some(106));
        assert_eq!(bold.lsb('o'), Some(88));
        assert_eq!(bold.lsb('T'), Some(10));
        assert_eq!(regular.height, 2384.0);
        assert_eq!(regular.bearing_px('p', 15.0), 1);
        assert_eq!(regular.lsb('\u{10FFFF}'), None);
    }

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
