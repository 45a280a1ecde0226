//! The dashboard's experiment views. An `ab` folder keeps each arm's figures, not its
//! tables, so these views read `experiment.json` rather than SQL: every arm against the
//! base (since the fork, or recomputed over the days the filters keep) and any two arms
//! side by side by day and by persona, under the same filters as a run's views.

use chrono::NaiveDate;
use serde::Serialize;
use serde_json::{Value, json};

use super::views::{Filters, Meta};
use crate::experiment::{DAILY, Day, Difference, Measured, Outcome, is_per_persona, paired};

/// Fills in what a file written before experiments kept their calendar lacks: the days,
/// from the first day and the length of the daily series (weekends known, events not).
pub fn complete(o: &mut Outcome) {
    if !o.days.is_empty() {
        return;
    }
    let len = o
        .measured
        .first()
        .and_then(|m| m.daily.values().next())
        .map_or(0, Vec::len);
    o.days = (0..len as u64)
        .map_while(|i| o.start.checked_add_days(chrono::Days::new(i)))
        .map(|date| Day {
            date,
            festival: false,
            weekend: crate::calendar::is_weekend(date),
            events: String::new(),
        })
        .collect();
}

/// The daily metrics the experiment kept (those needing a cost of goods only where the
/// catalog had margins).
fn daily_metrics(o: &Outcome) -> Vec<&'static str> {
    DAILY
        .iter()
        .copied()
        .filter(|m| o.measured.iter().all(|x| x.daily.contains_key(*m)))
        .collect()
}

/// The days the filters keep, as indexes into the daily series, and whether they narrow
/// the run at all.
fn kept(o: &Outcome, f: &Filters, meta: &Meta) -> (Vec<usize>, bool) {
    let events = f.event_days(meta);
    let days = o
        .days
        .iter()
        .enumerate()
        .filter(|(_, d)| {
            f.from.is_none_or(|a| d.date >= a)
                && f.to.is_none_or(|b| d.date <= b)
                && events.as_ref().is_none_or(|e| e.contains(&d.date))
        })
        .map(|(i, _)| i)
        .collect();
    let narrowed = f.from.is_some() || f.to.is_some() || !f.events.is_empty();
    (days, narrowed)
}

/// `a`'s and `b`'s figures replication by replication, where both have one.
fn pairs(
    o: &Outcome,
    a: &str,
    b: &str,
    value: impl Fn(&Measured) -> Option<f64>,
) -> Vec<(f64, f64)> {
    o.measured
        .iter()
        .filter(|m| m.arm == a)
        .filter_map(|ma| {
            let mb = o
                .measured
                .iter()
                .find(|m| m.arm == b && m.replication == ma.replication)?;
            Some((value(ma)?, value(mb)?))
        })
        .collect()
}

/// `b` against `a` on `metric`, paired by replication (common random numbers).
fn against(o: &Outcome, a: &str, b: &str, metric: &str, pairs: &[(f64, f64)]) -> Difference {
    let mut d = paired(b, metric, pairs, o.confidence, o.precision, 0);
    a.clone_into(&mut d.against);
    d
}

/// A daily metric summed over the kept days on or after the fork.
fn window_sum<'a>(
    o: &'a Outcome,
    days: &'a [usize],
    metric: &'a str,
) -> impl Fn(&Measured) -> Option<f64> + 'a {
    move |m| {
        let series = m.daily.get(metric)?;
        Some(
            days.iter()
                .filter(|&&i| o.days.get(i).is_some_and(|d| d.date >= o.fork))
                .filter_map(|&i| series.get(i))
                .sum(),
        )
    }
}

/// The days kept, on or after the fork.
fn after_fork(o: &Outcome, days: &[usize]) -> Vec<NaiveDate> {
    days.iter()
        .filter_map(|&i| o.days.get(i))
        .filter(|d| d.date >= o.fork)
        .map(|d| d.date)
        .collect()
}

/// A series' values on the kept days.
fn on(series: &[f64], days: &[usize]) -> Vec<f64> {
    days.iter()
        .map(|&i| series.get(i).copied().unwrap_or(0.0))
        .collect()
}

/// The design: the arms, the fork, the replications, the daily metrics.
pub fn design(o: &Outcome) -> Value {
    json!({
        "scenario": o.scenario,
        "arms": o.arms,
        "start": o.start,
        "fork": o.fork,
        "replications": o.replications,
        "confidence": o.confidence,
        "precision": o.precision,
        "money": o.money,
        "metrics": daily_metrics(o),
    })
}

/// An arm's daily difference from the base on the kept days, as the page draws it.
#[derive(Serialize)]
struct Series {
    arm: String,
    metric: String,
    difference: Vec<f64>,
    low: Vec<Option<f64>>,
    high: Vec<Option<f64>>,
}

/// Every arm against the base: the verdicts and the table of differences (since the fork,
/// per persona when personas are chosen; over the kept days after the fork when the dates
/// or events narrow the run), and each arm's daily difference with its interval.
pub fn summary(o: &Outcome, f: &Filters, meta: &Meta) -> Value {
    let (days, narrowed) = kept(o, f, meta);
    let mut ignored: Vec<String> = Vec::new();
    let window = after_fork(o, &days);
    let differences: Vec<Difference> = if narrowed {
        if !f.personas.is_empty() {
            ignored.push("persona (an experiment keeps daily figures for all personas together; clear the dates to see personas)".into());
        }
        ignored.push(format!(
            "dates and events on the metrics an experiment keeps only from the fork to the end, and on arms against each other (over chosen days: {} only)",
            daily_metrics(o).join(", ")
        ));
        if window.is_empty() {
            ignored.push("the chosen days hold none after the fork: no differences to show".into());
            Vec::new()
        } else {
            let days = &days;
            o.arms
                .iter()
                .skip(1)
                .flat_map(|arm| {
                    daily_metrics(o).into_iter().map(move |m| {
                        against(
                            o,
                            "base",
                            arm,
                            m,
                            &pairs(o, "base", arm, window_sum(o, days, m)),
                        )
                    })
                })
                .collect()
        }
    } else if f.personas.is_empty() {
        o.differences
            .iter()
            .filter(|d| !is_per_persona(&o.personas, &d.metric))
            .chain(&o.between)
            .cloned()
            .collect()
    } else {
        o.differences
            .iter()
            .filter(|d| {
                d.metric
                    .rsplit_once('.')
                    .is_some_and(|(_, p)| f.personas.iter().any(|x| x == p))
            })
            .cloned()
            .collect()
    };
    if !f.personas.is_empty() && !narrowed {
        ignored.push("persona on the daily chart (an experiment keeps daily figures for all personas together)".into());
    }
    // As the command gives them: on the metrics the experiment file judges, if it names any.
    let verdicts: Vec<String> = if !narrowed && f.personas.is_empty() {
        o.verdicts.clone()
    } else {
        differences
            .iter()
            .filter(|d| {
                let overall = match d.metric.rsplit_once('.') {
                    Some((m, p)) if o.personas.iter().any(|x| x == p) => m,
                    _ => d.metric.as_str(),
                };
                o.metrics.is_empty() || o.metrics.iter().any(|m| m == overall)
            })
            .map(|d| crate::experiment::verdict(d, &o.money, o.confidence))
            .collect()
    };
    let series: Vec<Series> = o
        .daily
        .iter()
        .map(|d| Series {
            arm: d.arm.clone(),
            metric: d.metric.clone(),
            difference: on(&d.difference, &days),
            low: days
                .iter()
                .map(|&i| d.interval.get(i).copied().flatten().map(|x| x.0))
                .collect(),
            high: days
                .iter()
                .map(|&i| d.interval.get(i).copied().flatten().map(|x| x.1))
                .collect(),
        })
        .collect();
    json!({
        "design": design(o),
        "dates": days.iter().filter_map(|&i| o.days.get(i)).map(|d| d.date).collect::<Vec<_>>(),
        "window": narrowed.then_some(window),
        "verdicts": verdicts,
        "differences": differences,
        "daily": series,
        "ignored": ignored,
    })
}

/// Why two arms cannot be set side by side.
#[derive(Debug, PartialEq)]
pub enum ArmsError {
    /// No such arm (404).
    NoArm(String),
    /// No such metric (400).
    NoMetric(String),
}

/// Arms `a` and `b` side by side on one daily metric: each one's mean over the
/// replications day by day with `b − a` and its paired interval; overall (since the fork,
/// or over the kept days after it); and by persona (since the fork).
pub fn arms(
    o: &Outcome,
    a: &str,
    b: &str,
    metric: &str,
    f: &Filters,
    meta: &Meta,
) -> Result<Value, ArmsError> {
    for arm in [a, b] {
        if !o.arms.iter().any(|x| x == arm) {
            return Err(ArmsError::NoArm(format!(
                "the experiment has no arm `{arm}`; it has: {}",
                o.arms.join(", ")
            )));
        }
    }
    let metrics = daily_metrics(o);
    if !metrics.contains(&metric) {
        return Err(ArmsError::NoMetric(format!(
            "the experiment keeps no daily `{metric}`; it keeps: {}",
            metrics.join(", ")
        )));
    }
    let (days, narrowed) = kept(o, f, meta);
    let mut ignored: Vec<String> = Vec::new();
    let mean = |arm: &str| -> Vec<f64> {
        let runs: Vec<&Vec<f64>> = o
            .measured
            .iter()
            .filter(|m| m.arm == arm)
            .filter_map(|m| m.daily.get(metric))
            .collect();
        days.iter()
            .map(|&i| {
                let day: Vec<f64> = runs.iter().filter_map(|s| s.get(i).copied()).collect();
                day.iter().sum::<f64>() / day.len().max(1) as f64
            })
            .collect()
    };
    let by_day: Vec<Difference> = days
        .iter()
        .map(|&i| {
            let p = pairs(o, a, b, |m| m.daily.get(metric)?.get(i).copied());
            against(o, a, b, metric, &p)
        })
        .collect();
    let overall = if narrowed {
        against(
            o,
            a,
            b,
            metric,
            &pairs(o, a, b, window_sum(o, &days, metric)),
        )
    } else {
        against(
            o,
            a,
            b,
            metric,
            &pairs(o, a, b, |m| m.metrics.get(metric).copied()),
        )
    };
    if narrowed {
        ignored.push("dates and events on the personas' table (an experiment keeps persona figures from the fork to the end)".into());
    }
    if !f.personas.is_empty() {
        ignored.push("persona on the daily chart (an experiment keeps daily figures for all personas together)".into());
    }
    let personas: Vec<Value> = o
        .personas
        .iter()
        .zip(&meta.labels)
        .filter(|(p, _)| f.personas.is_empty() || f.personas.contains(*p))
        .map(|(p, label)| {
            let key = format!("{metric}.{p}");
            let d = against(
                o,
                a,
                b,
                &key,
                &pairs(o, a, b, |m| m.metrics.get(&key).copied()),
            );
            json!({ "persona": p, "label": label, "difference": d })
        })
        .collect();
    Ok(json!({
        "design": design(o),
        "a": a,
        "b": b,
        "metric": metric,
        "dates": days.iter().filter_map(|&i| o.days.get(i)).map(|d| d.date).collect::<Vec<_>>(),
        "mean_a": mean(a),
        "mean_b": mean(b),
        "difference": by_day.iter().map(|d| d.difference).collect::<Vec<_>>(),
        "low": by_day.iter().map(|d| d.interval.map(|x| x.0)).collect::<Vec<_>>(),
        "high": by_day.iter().map(|d| d.interval.map(|x| x.1)).collect::<Vec<_>>(),
        "window": narrowed.then(|| after_fork(o, &days)),
        "overall": overall,
        "personas": personas,
        "ignored": ignored,
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    const START: &str = "2026-11-01";

    /// Arms `base` and `x`, two replications, four days forked on the third, personas `a`
    /// and `b`: `x` sells `lift` more each day after the fork in replication `r` (+ `r`).
    fn outcome() -> Outcome {
        let start: NaiveDate = START.parse().unwrap();
        let mut measured = Vec::new();
        for r in 0..2u32 {
            for (arm, lift) in [("base", 0.0), ("x", 10.0)] {
                let revenue: Vec<f64> = (0..4)
                    .map(|d| {
                        let after = d >= 2 && arm == "x";
                        100.0 + f64::from(d) + if after { lift + f64::from(r) } else { 0.0 }
                    })
                    .collect();
                let since: f64 = revenue[2..].iter().sum();
                let mut metrics = BTreeMap::new();
                metrics.insert("revenue".to_owned(), since);
                metrics.insert("revenue.a".to_owned(), since * 0.25);
                metrics.insert("revenue.b".to_owned(), since * 0.75);
                let mut daily = BTreeMap::new();
                daily.insert("revenue".to_owned(), revenue);
                measured.push(Measured {
                    arm: arm.into(),
                    replication: r,
                    seed: u64::from(r),
                    metrics,
                    daily,
                });
            }
        }
        let mut o = Outcome {
            scenario: "t".into(),
            seed: 0,
            arms: vec!["base".into(), "x".into()],
            personas: vec!["a".into(), "b".into()],
            labels: vec!["A".into(), "B".into()],
            days: Vec::new(),
            start,
            fork: start + chrono::Days::new(2),
            replications: 2,
            concurrent: 1,
            money: crate::money::Currency::default(),
            confidence: 0.95,
            precision: 0.01,
            measured,
            differences: Vec::new(),
            between: Vec::new(),
            daily: Vec::new(),
            timings: Vec::new(),
            verdicts: vec!["x raised revenue".into()],
            metrics: Vec::new(),
        };
        complete(&mut o);
        o.differences = ["revenue", "revenue.a", "revenue.b"]
            .iter()
            .map(|m| {
                let p = pairs(&o, "base", "x", |r| r.metrics.get(*m).copied());
                paired("x", m, &p, 0.95, 0.01, 0)
            })
            .collect();
        o
    }

    fn filters(q: &[(&str, &str)], meta: &Meta) -> Filters {
        let q = q
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Filters::parse(&q, meta).unwrap()
    }

    fn f64s(v: &Value) -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    }

    #[test]
    fn an_old_file_gets_its_days_from_the_series() {
        let o = outcome();
        assert_eq!(o.days.len(), 4);
        assert_eq!(o.days[0].date.to_string(), START);
        // 1 November 2026 is a Sunday.
        assert!(o.days[0].weekend && !o.days[1].weekend);
    }

    #[test]
    fn two_arms_side_by_side_are_means_and_paired_differences() {
        let o = outcome();
        let meta = Meta::from_experiment(&o);
        let v = arms(&o, "base", "x", "revenue", &filters(&[], &meta), &meta).unwrap();
        assert_eq!(f64s(&v["mean_a"]), [100.0, 101.0, 102.0, 103.0]);
        // Replications lift by 10 and 11 after the fork: 10.5 on average.
        assert_eq!(f64s(&v["mean_b"]), [100.0, 101.0, 112.5, 113.5]);
        assert_eq!(f64s(&v["difference"]), [0.0, 0.0, 10.5, 10.5]);
        assert!(v["low"][2].as_f64().unwrap() < 10.5 && v["high"][2].as_f64().unwrap() > 10.5);
        // Since the fork: two days of 10.5.
        assert_eq!(v["overall"]["difference"], 21.0);
        assert_eq!(v["overall"]["against"], "base");
        let rows = v["personas"].as_array().unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["label"], "A");
        assert_eq!(rows[0]["difference"]["difference"], 21.0 * 0.25);
        assert!(v["ignored"].as_array().unwrap().is_empty());
        // The other way round, the signs turn.
        let w = arms(&o, "x", "base", "revenue", &filters(&[], &meta), &meta).unwrap();
        assert_eq!(w["overall"]["difference"], -21.0);
    }

    #[test]
    fn dates_narrow_the_days_and_the_overall_difference() {
        let o = outcome();
        let meta = Meta::from_experiment(&o);
        let f = filters(
            &[
                ("from", "2026-11-02"),
                ("to", "2026-11-03"),
                ("persona", "b"),
            ],
            &meta,
        );
        let v = arms(&o, "base", "x", "revenue", &f, &meta).unwrap();
        assert_eq!(v["dates"].as_array().unwrap().len(), 2);
        assert_eq!(f64s(&v["difference"]), [0.0, 10.5]);
        // Only 3 November is after the fork.
        assert_eq!(v["overall"]["difference"], 10.5);
        assert_eq!(v["window"].as_array().unwrap().len(), 1);
        let rows = v["personas"].as_array().unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["persona"], "b");
        assert_eq!(v["ignored"].as_array().unwrap().len(), 2);
        // The summary recomputes each arm's difference over the window too.
        let s = summary(&o, &f, &meta);
        let d = &s["differences"][0];
        assert_eq!(
            (d["arm"].as_str(), d["metric"].as_str()),
            (Some("x"), Some("revenue"))
        );
        assert_eq!(d["difference"], 10.5);
        assert_eq!(s["verdicts"].as_array().unwrap().len(), 1);
        assert_ne!(s["verdicts"][0], "x raised revenue");
    }

    #[test]
    fn days_before_the_fork_alone_have_no_differences() {
        let o = outcome();
        let meta = Meta::from_experiment(&o);
        let s = summary(&o, &filters(&[("to", "2026-11-02")], &meta), &meta);
        assert!(s["differences"].as_array().unwrap().is_empty());
        assert!(s["verdicts"].as_array().unwrap().is_empty());
        assert_eq!(s["window"], serde_json::json!([]));
        assert!(
            s["ignored"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x.as_str().unwrap().contains("none after the fork"))
        );
    }

    #[test]
    fn the_summary_shows_overall_or_the_chosen_personas() {
        let o = outcome();
        let meta = Meta::from_experiment(&o);
        let s = summary(&o, &filters(&[], &meta), &meta);
        let metrics: Vec<&str> = s["differences"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["metric"].as_str().unwrap())
            .collect();
        assert_eq!(metrics, ["revenue"]);
        assert_eq!(s["verdicts"][0], "x raised revenue");
        assert!(s["window"].is_null());
        let s = summary(&o, &filters(&[("persona", "a")], &meta), &meta);
        assert_eq!(s["differences"][0]["metric"], "revenue.a");
        assert_eq!(s["differences"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn unknown_arms_and_metrics_are_named() {
        let o = outcome();
        let meta = Meta::from_experiment(&o);
        let f = filters(&[], &meta);
        assert_eq!(
            arms(&o, "base", "y", "revenue", &f, &meta).unwrap_err(),
            ArmsError::NoArm("the experiment has no arm `y`; it has: base, x".into())
        );
        assert_eq!(
            arms(&o, "base", "x", "margin", &f, &meta).unwrap_err(),
            ArmsError::NoMetric("the experiment keeps no daily `margin`; it keeps: revenue".into())
        );
    }
}
