//! How much each festival or event lifts revenue over comparable ordinary days.

use super::kit::*;

pub(super) const CHART: ChartDef = ChartDef {
    name: "festival_uplift",
    title: "Revenue uplift on festival and event days",
    size: |agg| ChartDef::rows(uplift(agg).len()),
    draw,
};

struct Uplift {
    event: String,
    ratio: f64,
    days: usize,
}

/// For each event, revenue on its days over the mean of event-free days of the same weekday
/// (or of all event-free days when that weekday has none).
fn uplift(agg: &Aggregates) -> Vec<Uplift> {
    let days = &agg.days;
    let per_major = agg.currency.per_major() as f64;
    let revenue: Vec<f64> = days.iter().map(|d| day_revenue(d, per_major)).collect();
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

fn draw(cv: &Canvas, area: &Area, agg: &Aggregates) -> Result<(), String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uplift_falls_back_to_all_event_free_days() {
        let u = uplift(&crate::report::charts::tests::sample());
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].event, "Diwali");
        // Diwali (Sunday) = 5k; no event-free Sunday, so the baseline is the mean of 2k and 1k.
        assert!((u[0].ratio - 5.0 / 1.5).abs() < 1e-9, "{}", u[0].ratio);
    }
}
