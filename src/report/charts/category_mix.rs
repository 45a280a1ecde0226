//! What each persona buys: revenue split by category group.

use super::kit::*;

pub(super) const CHART: ChartDef = ChartDef {
    name: "category_mix",
    title: "Revenue by category group, per persona",
    size: |agg| ChartDef::rows(persona_names(agg).len()),
    draw,
};

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

fn draw(cv: &Canvas, area: &Area, agg: &Aggregates) -> Result<(), String> {
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
