//! The self-contained `report.html`: scenario summary, key figures, charts (inline SVG),
//! insights and the data-quality table. No scripts, no external resources.

use std::fmt::Write;

use serde_json::Value;

use super::charts::Chart;
use crate::analytics::insights::Insight;
use crate::analytics::published::Outcome;
use crate::analytics::quality::QualityReport;

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = r#"
body { font-family: "DejaVu Sans", Verdana, sans-serif; margin: 0; color: #1f2933; background: #f7f7f5; }
header { background: #5b2a86; color: white; padding: 24px 40px; }
header h1 { margin: 0 0 6px 0; font-size: 28px; }
header p { margin: 0; opacity: 0.9; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 40px 60px; }
section { background: white; border-radius: 8px; padding: 20px 24px; margin: 20px 0; box-shadow: 0 1px 3px rgba(0,0,0,0.08); }
h2 { font-size: 20px; margin: 0 0 12px 0; color: #5b2a86; }
.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(200px, 1fr)); gap: 12px; }
.figure { background: #f3eefa; border-radius: 6px; padding: 12px 16px; }
.figure .value { font-size: 22px; font-weight: bold; }
.figure .label { font-size: 13px; color: #52606d; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid #e4e7eb; }
td.num, th.num { text-align: right; }
.pass { color: #18794e; font-weight: bold; }
.fail { color: #c62828; font-weight: bold; }
figure { margin: 16px 0; }
figure svg { width: 100%; height: auto; }
figcaption { font-size: 13px; color: #52606d; }
ol li { margin: 6px 0; }
"#;

/// Builds the report from the run's summary (as JSON), insights, the comparison with
/// published figures, quality report and charts.
pub fn render(
    summary: &Value,
    insights: &[Insight],
    published: &[Outcome],
    quality: &QualityReport,
    charts: &[Chart],
    drift: Option<&str>,
) -> String {
    let mut h = String::new();
    let money = super::currency(summary);
    let group = |n: u64| money.group(n);
    let num = |v: &Value| v.as_f64().unwrap_or(0.0);
    let int = |v: &Value| v.as_u64().unwrap_or(0);
    let scenario = summary["scenario"].as_str().unwrap_or("");
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Bazaar report: {}</title><style>{STYLE}</style></head><body>",
        esc(scenario)
    );
    let _ = write!(
        h,
        "<header><h1>{}</h1><p>{} to {} · {} days · {} customers · seed {}</p></header><main>",
        esc(scenario),
        esc(summary["start"].as_str().unwrap_or("")),
        esc(summary["end"].as_str().unwrap_or("")),
        int(&summary["days"]),
        group(int(&summary["customers"])),
        int(&summary["seed"])
    );

    let totals = &summary["totals"];
    let revenue = totals["revenue_paise"].as_i64().unwrap_or(0);
    let figures = [
        (money.short(revenue), "revenue"),
        (group(int(&totals["transactions"])), "transactions"),
        (
            money.short(money.to_minor(num(&summary["mean_basket"]))),
            "mean basket",
        ),
        (group(int(&totals["units"])), "units sold"),
        (group(int(&totals["churned"])), "customers churned"),
        (group(int(&totals["acquired"])), "customers acquired"),
    ];
    h.push_str("<section><h2>Key figures</h2><div class=\"figures\">");
    for (value, label) in figures {
        let _ = write!(
            h,
            "<div class=\"figure\"><div class=\"value\">{}</div><div class=\"label\">{label}</div></div>",
            esc(&value)
        );
    }
    h.push_str("</div>");
    h.push_str(
        "<table><tr><th>persona</th><th class=\"num\">customers</th><th class=\"num\">transactions</th>\
         <th class=\"num\">revenue</th><th class=\"num\">share</th><th class=\"num\">mean basket</th>\
         <th class=\"num\">churned</th></tr>",
    );
    for p in summary["personas"].as_array().into_iter().flatten() {
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{:.1}%</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(p["label"].as_str().unwrap_or("")),
            group(int(&p["customers"])),
            group(int(&p["totals"]["transactions"])),
            esc(&money.human(p["totals"]["revenue_paise"].as_i64().unwrap_or(0))),
            num(&p["revenue_share"]) * 100.0,
            esc(&money.whole(num(&p["mean_basket"]))),
            group(int(&p["totals"]["churned"]))
        );
    }
    h.push_str("</table></section>");

    h.push_str("<section><h2>Insights</h2><ol>");
    for i in insights {
        let _ = write!(h, "<li>{}</li>", esc(&i.text));
    }
    h.push_str("</ol></section>");

    if !published.is_empty() {
        published_section(&mut h, published);
    }

    if let Some(drift) = drift {
        h.push_str(drift);
    }

    h.push_str("<section><h2>Charts</h2>");
    for c in charts {
        let _ = write!(
            h,
            "<figure id=\"{}\">{}<figcaption>{}</figcaption></figure>",
            c.name,
            strip_xml_declaration(&c.svg),
            esc(&c.title)
        );
    }
    h.push_str("</section>");

    let _ = write!(
        h,
        "<section><h2>Data quality: <span class=\"{}\">{}</span></h2><table>\
         <tr><th>check</th><th>result</th><th class=\"num\">rows</th><th class=\"num\">failures</th><th>examples</th></tr>",
        if quality.passed { "pass" } else { "fail" },
        if quality.passed {
            "all checks passed"
        } else {
            "some checks failed"
        }
    );
    for c in &quality.checks {
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"{}\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            esc(&c.name),
            if c.passed { "pass" } else { "fail" },
            if c.passed { "pass" } else { "FAIL" },
            group(c.rows),
            group(c.failures),
            esc(&c.examples.join("; "))
        );
    }
    h.push_str(
        "</table><h2 style=\"margin-top:20px\">Basket outliers</h2><table><tr><th>persona</th>\
        <th class=\"num\">baskets</th><th class=\"num\">median</th><th class=\"num\">fence</th>\
        <th class=\"num\">outliers</th><th class=\"num\">share</th></tr>",
    );
    for o in &quality.outliers {
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{:.2}%</td></tr>",
            esc(&o.persona),
            group(o.baskets),
            esc(&money.whole(o.quartiles_rs[1])),
            esc(&money.whole(o.fence_rs)),
            group(o.outliers),
            o.share * 100.0
        );
    }
    h.push_str("</table><p style=\"font-size:13px;color:#52606d\">Outliers: baskets above Q3 + 3 IQR of the log basket value, per persona (quartiles at histogram-bin precision).</p></section>");
    h.push_str("</main></body></html>\n");
    h
}

/// Drops an `<?xml ...?>` prologue so the SVG can be inlined.
fn strip_xml_declaration(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    }
}

/// "Against published figures": each figure, its source, what the run gave, met or missed.
fn published_section(h: &mut String, published: &[Outcome]) {
    let pct = |u: f64| format!("{:+.1}%", u * 100.0);
    let met = published.iter().filter(|o| o.met).count();
    let _ = write!(
        h,
        "<section><h2>Against published figures</h2><p>{met} of {} figures met. Each is the \
         change of a measure on the named days against ordinary days of the same weekday (no \
         event in force and no payday effect), met when within the band.</p>\
         <table><tr><th>figure</th><th>source</th><th>days</th><th class=\"num\">published</th>\
         <th class=\"num\">band</th><th class=\"num\">simulated</th><th>verdict</th></tr>",
        published.len()
    );
    for o in published {
        let band = match o.band.1 {
            Some(hi) => format!("{} to {}", pct(o.band.0), pct(hi)),
            None => format!("{} or more", pct(o.band.0)),
        };
        let _ = write!(
            h,
            "<tr><td>{} ({})</td><td>{}</td><td>{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            esc(&o.name),
            esc(&o.measure),
            esc(&o.source),
            esc(&o.days.join(", ")),
            esc(&o.target),
            esc(&band),
            o.simulated.map_or_else(|| "no such day".to_owned(), pct),
            if o.met { "met" } else { "missed" }
        );
    }
    h.push_str("</table></section>");
}
