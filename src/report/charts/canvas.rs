//! The drawing surface every chart is drawn on: one backend type for PNG and SVG (so a chart
//! is a plain function, and a table of them can list charts from plugins), the embedded font,
//! and text placed glyph by glyph where the rasteriser would misplace it.

use std::error::Error;
use std::fmt;
use std::sync::OnceLock;

use ab_glyph::{Font, FontRef};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::register_font;
use plotters::style::text_anchor::{HPos, Pos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
};

use super::s;

/// The family name the embedded font is registered under.
pub(crate) const FAMILY: &str = "bazaar-sans";
/// What the SVG text asks the browser for instead of [`FAMILY`] (which only plotters knows).
pub(crate) const SVG_FONTS: &str = "'DejaVu Sans', Verdana, Arial, sans-serif";

/// An SVG plotters drew, asking the browser for the font plotters measured with.
pub(crate) fn browser_fonts(svg: &str) -> String {
    svg.replace(
        &format!("font-family=\"{FAMILY}\""),
        &format!("font-family=\"{SVG_FONTS}\""),
    )
}
static REGULAR_TTF: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
static BOLD_TTF: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans-Bold.ttf");

/// Registers the embedded font with plotters, once per process.
pub(crate) fn ensure_fonts() -> Result<(), String> {
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
/// drawn one glyph at a time at its correct pen position plus bearing (from the
/// embedded font's metrics, read with `ab_glyph`). SVG text is left to the browser and drawn whole.
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
            let bearing = face.map_or(0, |f| bearing_px(f, c, size));
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

/// Left side bearing of `c` in whole pixels at plotters font size `size`, floored as the
/// rasteriser's pixel bounds are (plotters scales a font so that its ascent − descent is
/// `size` pixels). A character the font lacks gets none.
fn bearing_px(face: &FontRef<'_>, c: char, size: f64) -> i32 {
    let glyph = face.glyph_id(c);
    let height = f64::from(face.height_unscaled());
    if glyph.0 == 0 || height <= 0.0 {
        return 0;
    }
    (f64::from(face.h_side_bearing_unscaled(glyph)) * size / height).floor() as i32
}

/// The regular and bold faces (None if a font cannot be parsed: glyphs then go unshifted).
fn faces() -> &'static (Option<FontRef<'static>>, Option<FontRef<'static>>) {
    static FACES: OnceLock<(Option<FontRef<'static>>, Option<FontRef<'static>>)> = OnceLock::new();
    FACES.get_or_init(|| {
        (
            FontRef::try_from_slice(REGULAR_TTF).ok(),
            FontRef::try_from_slice(BOLD_TTF).ok(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn font_metrics_match_the_glyf_table() {
        // Left side bearings equal each glyph's xMin in `glyf` (checked independently).
        let (regular, bold) = faces();
        let (regular, bold) = (regular.as_ref().unwrap(), bold.as_ref().unwrap());
        let lsb = |f: &FontRef, c| f.h_side_bearing_unscaled(f.glyph_id(c));
        assert_eq!(lsb(regular, 'o'), 113.0);
        assert_eq!(lsb(regular, 'p'), 186.0);
        assert_eq!(lsb(regular, 'j'), -37.0);
        assert_eq!(lsb(regular, '₹'), 106.0);
        assert_eq!(lsb(bold, 'o'), 88.0);
        assert_eq!(lsb(bold, 'T'), 10.0);
        assert_eq!(regular.height_unscaled(), 2384.0);
        assert_eq!(bearing_px(regular, 'p', 15.0), 1);
        assert_eq!(bearing_px(regular, 'j', 15.0), -1);
        assert_eq!(bearing_px(regular, '\u{10FFFF}', 15.0), 0);
    }
}
