//! The look shared by every chart: colours, fonts, legends, captions and the "No data"
//! panel.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::canvas::{Area, Canvas, FAMILY};
use super::s;

/// Text and data ink.
pub const INK: RGBColor = RGBColor(38, 38, 38);
/// Axes, secondary text.
pub const MUTED: RGBColor = RGBColor(105, 105, 105);
/// Major grid lines.
pub const GRID: RGBColor = RGBColor(228, 228, 228);
/// Minor grid lines.
pub const MINOR_GRID: RGBColor = RGBColor(243, 243, 243);
/// Background of a festival day.
pub const FESTIVAL_BAND: RGBColor = RGBColor(255, 222, 173);
/// Background of another event's day.
pub const EVENT_BAND: RGBColor = RGBColor(255, 243, 224);
/// Background of a weekend day.
pub const WEEKEND_BAND: RGBColor = RGBColor(236, 236, 236);
/// Festival labels.
pub const FESTIVAL_TEXT: RGBColor = RGBColor(150, 72, 0);

/// Persona colours (Tableau 10 without orange, which marks festivals).
pub const PERSONA_COLORS: [RGBColor; 8] = [
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
pub const CATEGORY_COLORS: [RGBColor; 9] = [
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
/// The colour of "other" (the categories not shown one by one).
pub const OTHER_COLOR: RGBColor = RGBColor(186, 176, 172);

/// Persona `p`'s colour, the same in every chart.
pub fn persona_color(p: usize) -> RGBColor {
    PERSONA_COLORS[p % PERSONA_COLORS.len()]
}

/// The embedded font at `size` points, in ink.
pub fn font(size: f64) -> TextStyle<'static> {
    FontDesc::new(FontFamily::Name(FAMILY), size, FontStyle::Normal).color(&INK)
}

/// A chart's title.
pub fn title_font() -> TextStyle<'static> {
    FontDesc::new(FontFamily::Name(FAMILY), 26.0, FontStyle::Bold).color(&INK)
}

/// Tick labels.
pub fn tick_font() -> TextStyle<'static> {
    font(15.0)
}

/// Axis descriptions.
pub fn desc_font() -> TextStyle<'static> {
    font(16.0)
}

/// Width of `text` in pixels, laid out horizontally.
pub fn text_width(style: &TextStyle, text: &str) -> u32 {
    style
        .font
        .transform(FontTransform::None)
        .box_size(text)
        .map(|(w, _)| w)
        .unwrap_or((text.len() as f64 * style.font.get_size() * 0.6) as u32)
}

/// `style`, anchored at `h` and `v` of the text's box.
pub fn anchored(style: TextStyle<'static>, h: HPos, v: VPos) -> TextStyle<'static> {
    style.pos(Pos::new(h, v))
}

#[derive(Clone, Copy)]
/// How a legend item is drawn.
pub enum Mark {
    /// A filled box (bars, areas).
    Box,
    /// A line (series).
    Line,
}

/// One entry of a [`legend`].
pub struct LegendItem {
    /// Its text.
    pub label: String,
    /// Its colour.
    pub color: RGBColor,
    /// Box or line.
    pub mark: Mark,
}

/// A [`LegendItem`].
pub fn item(label: impl Into<String>, color: RGBColor, mark: Mark) -> LegendItem {
    LegendItem {
        label: label.into(),
        color,
        mark,
    }
}

/// Draws a centred, wrapping legend strip at the top of `area`; returns the area below it.
pub fn legend<'b>(cv: &Canvas, area: &Area<'b>, items: &[LegendItem]) -> Result<Area<'b>, String> {
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
pub fn no_data(cv: &Canvas, area: &Area, why: &str) -> Result<(), String> {
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
pub fn caption<'b>(cv: &Canvas, area: &Area<'b>, text: &str) -> Result<Area<'b>, String> {
    let (w, _) = area.dim_in_pixel();
    cv.text_in(
        area,
        text,
        &anchored(font(17.0), HPos::Center, VPos::Top),
        (w as i32 / 2, 4),
    )?;
    Ok(area.split_vertically(30).1)
}
