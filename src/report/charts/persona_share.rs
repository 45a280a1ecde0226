//! Each persona's share of revenue beside its share of customers.

use super::kit::*;

pub(super) const CHART: ChartDef = ChartDef {
    name: "persona_revenue_share",
    title: "Share of revenue and customers by persona",
    size: |agg| ChartDef::rows(persona_names(agg).len()),
    draw,
};

fn draw(cv: &Canvas, area: &Area, agg: &Aggregates) -> Result<(), String> {
    let names = persona_names(agg);
    let np = names.len();
    let revenue: Vec<f64> = (0..np)
        .map(|p| {
            agg.days
                .iter()
                .map(|d| persona_revenue(d, p, agg.currency.per_major() as f64).max(0.0))
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
