//! Charts for the run report: turns the streamed [`Aggregates`] into publication-quality
//! figures, each written as PNG (for slides and documents) and SVG (inlined in the HTML
//! report). Text is drawn with an embedded DejaVu Sans font, so the charts look the same on
//! every machine and need no system font libraries.
//!
//! A chart is a [`ChartDef`]: a name, a title, a size and a plain drawing function over the
//! [`kit`] (canvas, styles, axes, legends). [`BUILT_IN`] lists the report's own charts, one
//! file each; a plugin adds one with [`crate::plugin::SimBuilder::add_chart`].

mod axes;
mod basket;
mod canvas;
mod category_mix;
mod daily_revenue;
mod data;
mod festival_uplift;
mod hour_weekday;
mod loyalty_churn;
mod persona_share;
mod style;

use std::fmt::Display;
use std::fs;
use std::path::{Path, PathBuf};

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};
use thiserror::Error;

use crate::analytics::Aggregates;
use canvas::{Backend, Kind};

/// Everything a chart's drawing function needs, in one import: `use
/// bazaar::report::charts::kit::*;`.
pub mod kit {
    pub use super::axes::*;
    pub use super::canvas::{Area, Canvas};
    pub use super::data::*;
    pub use super::style::*;
    pub use super::{ChartDef, s};
    pub use crate::analytics::{Aggregates, Day};
    pub use crate::analytics::{BASKET_BINS, LOYALTY_BINS, basket_bin_edge};
    pub use crate::money::{Currency, short_number};
    pub use plotters::coord::Shift;
    pub use plotters::prelude::*;
    pub use plotters::style::text_anchor::{HPos, Pos, VPos};
}

pub use canvas::{Area, Canvas};
pub(crate) use canvas::{FAMILY, browser_fonts, ensure_fonts};

/// One chart of the report: what it is called and how it is drawn.
#[derive(Clone, Copy)]
pub struct ChartDef {
    /// File stem: the chart is written as `charts/NAME.png` and `charts/NAME.svg`; unique
    /// in a report.
    pub name: &'static str,
    /// Human title, drawn at the top of the chart and used as its heading in the report.
    pub title: &'static str,
    /// Pixel size (width, height) for these aggregates: charts with a row per persona or
    /// event grow with them ([`ChartDef::rows`]).
    pub size: fn(&Aggregates) -> (u32, u32),
    /// Draws the chart below its title on `area`. The same function makes the PNG and the
    /// SVG; it returns the plotting library's message on failure ([`s`] converts one).
    pub draw: fn(&Canvas, &Area, &Aggregates) -> Result<(), String>,
}

impl ChartDef {
    /// The standard size, 1000 x 500 pixels.
    pub fn standard(_: &Aggregates) -> (u32, u32) {
        Self::rows(0)
    }

    /// 1000 pixels wide, tall enough for `rows` rows of bars (500 to 1400 pixels).
    pub fn rows(rows: usize) -> (u32, u32) {
        let h = (220 + 46 * rows as u32).clamp(500, 1400);
        (1000, h)
    }
}

impl std::fmt::Debug for ChartDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChartDef")
            .field("name", &self.name)
            .field("title", &self.title)
            .finish_non_exhaustive()
    }
}

/// The charts a run's plugins add to the report ([`crate::plugin::Plugin::charts`]), in
/// plugin order; their names are kept in `aggregates.json` so `bazaar report` draws them
/// again.
#[derive(bevy_ecs::resource::Resource, Debug, Clone, Default)]
pub struct PluginCharts(pub Vec<ChartDef>);

impl PluginCharts {
    /// Adds `chart`, refusing a name another chart (built-in or added) already has.
    pub fn add(&mut self, chart: ChartDef) -> Result<(), String> {
        if BUILT_IN.iter().chain(&self.0).any(|c| c.name == chart.name) {
            return Err(format!(
                "the report already has a chart named `{}`\n  hint: give the plugin's chart a name of its own",
                chart.name
            ));
        }
        self.0.push(chart);
        Ok(())
    }
}

/// The charts of a report: the built-in ones, then those named in `names` (from
/// `aggregates.json`), each looked up in `known`.
pub fn resolve(names: &[String], known: &[ChartDef]) -> Result<Vec<ChartDef>, String> {
    let mut charts = BUILT_IN.to_vec();
    for name in names {
        let def = known.iter().find(|c| c.name == name).ok_or_else(|| {
            format!(
                "the run drew a plugin chart `{name}` that this program does not know\n  \
                 hint: rebuild the report with the program (and plugins) that made the run"
            )
        })?;
        charts.push(*def);
    }
    Ok(charts)
}

/// The report's own charts, in report order.
pub const BUILT_IN: [ChartDef; 7] = [
    daily_revenue::CHART,
    hour_weekday::CHART,
    persona_share::CHART,
    basket::CHART,
    category_mix::CHART,
    festival_uplift::CHART,
    loyalty_churn::CHART,
];

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
    /// Two charts share a name (and so a file).
    #[error("two charts are named `{0}`\n  hint: give each chart a name of its own")]
    Duplicate(&'static str),
}

/// Renders each of `charts` into `dir` as NAME.png and NAME.svg, in order, returning them
/// (SVG text for inlining in HTML). `dir` is created if missing; each file is replaced
/// atomically.
pub fn render_all(
    agg: &Aggregates,
    dir: &Path,
    charts: &[ChartDef],
) -> Result<Vec<Chart>, ChartError> {
    canvas::ensure_fonts().map_err(ChartError::Font)?;
    for (i, c) in charts.iter().enumerate() {
        if charts[..i].iter().any(|o| o.name == c.name) {
            return Err(ChartError::Duplicate(c.name));
        }
    }
    fs::create_dir_all(dir).map_err(|source| ChartError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    charts.iter().map(|def| render_one(def, agg, dir)).collect()
}

/// A plotting error as the text a chart's drawing function returns.
pub fn s<E: Display>(e: E) -> String {
    e.to_string()
}

fn render_one(def: &ChartDef, agg: &Aggregates, dir: &Path) -> Result<Chart, ChartError> {
    let name = def.name;
    let size = (def.size)(agg);
    let failed = |message: String| ChartError::Draw {
        chart: name,
        message,
    };

    let mut svg = String::new();
    {
        let root = Backend::Svg(SVGBackend::with_string(&mut svg, size)).into_drawing_area();
        draw(def, &Canvas::new(&root, Kind::Svg), agg).map_err(failed)?;
        root.present().map_err(|e| failed(e.to_string()))?;
    }
    let svg = browser_fonts(&svg);
    write_atomic(&dir.join(format!("{name}.svg")), svg.as_bytes())?;

    // The image encoder picks the format from the extension, so the temporary name ends in .png.
    let png = dir.join(format!("{name}.png"));
    let tmp = dir.join(format!(".{name}.partial.png"));
    let drawn = {
        let root = Backend::Bitmap(BitMapBackend::new(&tmp, size)).into_drawing_area();
        draw(def, &Canvas::new(&root, Kind::Bitmap), agg)
            .and_then(|()| root.present().map_err(|e| e.to_string()))
    };
    if let Err(message) = drawn {
        let _ = fs::remove_file(&tmp);
        return Err(failed(message));
    }
    fs::rename(&tmp, &png).map_err(|source| ChartError::Io { path: png, source })?;

    Ok(Chart {
        name,
        title: def.title.to_string(),
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

/// Draws one chart on either backend: the title, then the chart's own body.
fn draw(def: &ChartDef, cv: &Canvas, agg: &Aggregates) -> Result<(), String> {
    let root = cv.root();
    root.fill(&WHITE).map_err(s)?;
    let (w, _) = root.dim_in_pixel();
    cv.text(
        def.title,
        &style::anchored(style::title_font(), HPos::Center, VPos::Top),
        (w as i32 / 2, 10),
    )?;
    let body = root.split_vertically(46).1.margin(0, 6, 8, 8);
    (def.draw)(cv, &body, agg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::{BASKET_BINS, Cell, Day};

    fn cell(rs: i64, tx: u64) -> Cell {
        Cell {
            revenue_paise: rs * 100,
            transactions: tx,
            units: tx * 3,
        }
    }

    /// 3 days, 2 personas, 3 categories, one festival day (Diwali).
    pub(super) fn sample() -> Aggregates {
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
            extra: Vec::new(),
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
            columns: Vec::new(),
            charts: Vec::new(),
            currency: crate::money::Currency::default(),
            settled_from: 0,
            published: Vec::new(),
        }
    }

    #[test]
    fn renders_all_charts() {
        let dir = tempfile::tempdir().unwrap();
        let charts = render_all(&sample(), dir.path(), &BUILT_IN).unwrap();
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
    fn empty_aggregates_draw_no_data() {
        let dir = tempfile::tempdir().unwrap();
        let charts = render_all(&Aggregates::default(), dir.path(), &BUILT_IN).unwrap();
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
        let charts = render_all(&agg, dir.path(), &BUILT_IN).unwrap();
        assert!(charts[0].svg.contains("No data"));
        assert!(charts[5].svg.contains("No data"));
    }

    /// A plugin's chart: referrals by day and persona from a daily column.
    fn referrals(cv: &Canvas, area: &Area, agg: &Aggregates) -> Result<(), String> {
        let c = agg.column("referrals").ok_or("no referrals column")?;
        kit::persona_lines(
            cv,
            area,
            agg,
            &|day, p| day.value(c, p),
            &|y| format!("{y}"),
            "no referral joined",
        )
    }

    const REFERRALS: ChartDef = ChartDef {
        name: "referrals",
        title: "Referrals",
        size: ChartDef::standard,
        draw: referrals,
    };

    #[test]
    fn a_plugin_chart_draws_its_daily_column_after_the_built_in_ones() {
        let mut agg = sample();
        agg.columns = vec!["referrals".to_string()];
        agg.charts = vec!["referrals".to_string()];
        for (d, day) in agg.days.iter_mut().enumerate() {
            day.extra = vec![vec![d as f64 * 10.0, 7.0]];
        }
        let defs = resolve(&agg.charts, &[REFERRALS]).unwrap();
        assert_eq!(defs.len(), 8);
        let dir = tempfile::tempdir().unwrap();
        let charts = render_all(&agg, dir.path(), &defs).unwrap();
        let svg = &charts[7].svg;
        assert_eq!(charts[7].name, "referrals");
        assert!(!svg.contains("No data"));
        assert!(svg.contains("Premium Shopper") && svg.contains("Budget Shopper"));
        // One line a persona through one point a day: rising for the first persona (0, 10,
        // 20), flat for the second (7).
        let lines: Vec<Vec<(i32, i32)>> = svg
            .split("points=\"")
            .skip(1)
            .map(|rest| {
                let pts = &rest[..rest.find('"').unwrap()];
                pts.split_whitespace()
                    .map(|xy| {
                        let (x, y) = xy.split_once(',').unwrap();
                        (x.parse().unwrap(), y.parse().unwrap())
                    })
                    .collect()
            })
            .filter(|pts: &Vec<(i32, i32)>| pts.len() == 3)
            .collect();
        assert_eq!(lines.len(), 2, "{svg}");
        assert!(lines[0][0].1 > lines[0][1].1 && lines[0][1].1 > lines[0][2].1);
        assert!(lines[1].iter().all(|pt| pt.1 == lines[1][0].1));

        // Without values it says so instead of drawing flat lines.
        for day in &mut agg.days {
            day.extra = vec![vec![0.0, 0.0]];
        }
        let charts = render_all(&agg, dir.path(), &defs).unwrap();
        assert!(charts[7].svg.contains("no referral joined"));
    }

    #[test]
    fn chart_names_are_unique_and_known() {
        let mut added = PluginCharts::default();
        added.add(REFERRALS).unwrap();
        let clash = added.add(REFERRALS).unwrap_err();
        assert!(clash.contains("`referrals`"), "{clash}");
        let built_in = added
            .add(ChartDef {
                name: "daily_revenue",
                ..REFERRALS
            })
            .unwrap_err();
        assert!(built_in.contains("`daily_revenue`"), "{built_in}");

        let unknown = resolve(&["footfall".to_string()], &[REFERRALS]).unwrap_err();
        assert!(
            unknown.contains("`footfall`") && unknown.contains("hint"),
            "{unknown}"
        );
        let dir = tempfile::tempdir().unwrap();
        let twice = render_all(&sample(), dir.path(), &[REFERRALS, REFERRALS]).unwrap_err();
        assert!(
            matches!(twice, ChartError::Duplicate("referrals")),
            "{twice}"
        );
    }
}
