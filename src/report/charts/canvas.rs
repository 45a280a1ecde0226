//! The drawing surface every chart is drawn on: one backend type for PNG and SVG (so a chart
//! is a plain function, and a table of them can list charts from plugins), the embedded font,
//! and text placed glyph by glyph where the rasteriser would misplace it.

use std::error::Error;
use std::fmt;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::register_font;
use plotters::style::text_anchor::{HPos, Pos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
};

use super::s;

/// The family name the embedded font is registered under.
pub(super) const FAMILY: &str = "bazaar-sans";
/// What the SVG text asks the browser for instead of [`FAMILY`] (which only plotters knows).
pub(super) const SVG_FONTS: &str = "'DejaVu Sans', Verdana, Arial, sans-serif";
static REGULAR_TTF: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
static BOLD_TTF: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans-Bold.ttf");

/// Registers the embedded font with plotters, once per process.
pub(super) fn ensure_fonts() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            register_font(FAMILY, FontStyle::Normal, REGULAR_TTF)
                .map_err(|_| "DejaVuSans.ttf is not a usable font".to_string())?;
            register_font(FAMILY, FontStyle::Bold, BOLD_TTF)
                .map_err(|_| "DejaVuSans-Bold.ttf is not a usable font".to_string())
        })
        .clone()
}

/// A chart's drawing area (on either backend).
pub type Area<'b> = DrawingArea<Backend<'b>, Shift>;

/// The backend a chart draws on: the SVG writer or the PNG raster. Charts are plain
/// functions over this one type, which forwards every call to the backend it holds, so a
/// chart draws exactly what it would on either backend directly.
pub enum Backend<'b> {
    /// SVG text for the HTML report.
    Svg(SVGBackend<'b>),
    /// A raster written as PNG.
    Bitmap(BitMapBackend<'b>),
}

/// Which backend an [`Area`] draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SVG.
    Svg,
    /// PNG.
    Bitmap,
}

/// A backend's error, as text.
#[derive(Debug)]
pub struct BackendError(String);

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error for BackendError {}

fn lift<E: Error + Send + Sync>(e: DrawingErrorKind<E>) -> DrawingErrorKind<BackendError> {
    match e {
        DrawingErrorKind::DrawingError(e) => {
            DrawingErrorKind::DrawingError(BackendError(e.to_string()))
        }
        DrawingErrorKind::FontError(e) => DrawingErrorKind::FontError(e),
    }
}

/// Calls `$call` on whichever backend `$b` holds, lifting its error.
macro_rules! forward {
    ($b:expr, $inner:ident => $call:expr) => {
        match $b {
            Backend::Svg($inner) => $call.map_err(lift),
            Backend::Bitmap($inner) => $call.map_err(lift),
        }
    };
}

impl DrawingBackend for Backend<'_> {
    type ErrorType = BackendError;

    fn get_size(&self) -> (u32, u32) {
        match self {
            Backend::Svg(b) => b.get_size(),
            Backend::Bitmap(b) => b.get_size(),
        }
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<BackendError>> {
        forward!(self, b => b.ensure_prepared())
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<BackendError>> {
        forward!(self, b => b.present())
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<BackendError>> {
        forward!(self, b => b.draw_pixel(point, color))
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<BackendError>> {
        forward!(self, b => b.draw_line(from, to, style))
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<BackendError>> {
        forward!(self, b => b.draw_rect(upper_left, bottom_right, style, fill))
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<BackendError>> {
        forward!(self, b => b.draw_path(path, style))
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<BackendError>> {
        forward!(self, b => b.draw_circle(center, radius, style, fill))
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<BackendError>> {
        forward!(self, b => b.fill_polygon(vert, style))
    }

    fn draw_text<T: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &T,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<BackendError>> {
        forward!(self, b => b.draw_text(text, style, pos))
    }

    fn estimate_text_size<T: BackendTextStyle>(
        &self,
        text: &str,
        style: &T,
    ) -> Result<(u32, u32), DrawingErrorKind<BackendError>> {
        forward!(self, b => b.estimate_text_size(text, style))
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<BackendError>> {
        forward!(self, b => b.blit_bitmap(pos, size, src))
    }
}

/// The root drawing area and how text reaches it.
///
/// plotters 0.3.7 rasterises `ab_glyph` text without each glyph's left side bearing, so in
/// bitmaps the letters of a word sit unevenly ("Shopp er"). For bitmaps, text is therefore
/// drawn one glyph at a time at its correct pen position plus bearing (read from the
/// embedded font's `hmtx` table). SVG text is left to the browser and drawn whole.
pub struct Canvas<'r, 'b> {
    root: &'r Area<'b>,
    per_glyph: bool,
}

impl<'r, 'b> Canvas<'r, 'b> {
    pub(super) fn new(root: &'r Area<'b>, kind: Kind) -> Self {
        Self {
            root,
            per_glyph: kind == Kind::Bitmap,
        }
    }

    /// The whole chart's drawing area.
    pub fn root(&self) -> &'r Area<'b> {
        self.root
    }

    /// Whether the chart is being drawn as a PNG (else as SVG).
    pub fn is_bitmap(&self) -> bool {
        self.per_glyph
    }

    /// Draws `text` at `pos` in root (absolute) pixels.
    pub fn text(&self, text: &str, style: &TextStyle, pos: (i32, i32)) -> Result<(), String> {
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
    pub fn text_in(
        &self,
        area: &Area,
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
