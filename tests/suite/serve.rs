//! `bazaar serve` and `bazaar run --serve` as a user meets them: the real binary on loopback,
//! its JSON API checked against the run's own summary and raw tables, its refusals, its live
//! events, and the page itself in Debian's Chromium driven by playwright-core.

use crate::common;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::{bazaar, root, text};
use serde_json::Value;

/// A `bazaar` process serving on loopback, stopped when dropped.
struct Server {
    child: Child,
    base: String,
    stderr: std::sync::mpsc::Receiver<String>,
}

impl Server {
    /// Starts `bazaar ARGS` and waits for the address it serves on.
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_bazaar"))
            .args(args)
            .current_dir(root())
            .env_remove("RUST_LOG")
            .env_remove("MLFLOW_TRACKING_URI")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("bazaar starts");
        let (tx, rx) = std::sync::mpsc::channel();
        let err = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut seen = Vec::new();
        loop {
            let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(120)) else {
                let _ = child.kill();
                let _ = child.wait();
                panic!("no address announced; stderr: {seen:?}");
            };
            if let Some(rest) = line.split("serving on ").nth(1) {
                let base = rest
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .trim_end_matches('/')
                    .to_owned();
                return Self {
                    child,
                    base,
                    stderr: rx,
                };
            }
            seen.push(line);
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends SIGINT and returns the exit code.
    fn interrupt(mut self) -> Option<i32> {
        // SAFETY: signalling a child this test started and still owns.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGINT);
        }
        let status = self.child.wait().unwrap();
        status.code()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// GET `url`: status and JSON body.
fn get(url: &str) -> (u16, Value) {
    let mut r = agent().get(url).call().expect("the server answers");
    let status = r.status().as_u16();
    let body: Value = r.body_mut().read_json().unwrap_or(Value::Null);
    (status, body)
}

fn post_sql(s: &Server, id: &str, sql: &str) -> (u16, Value) {
    let mut r = agent()
        .post(&s.url(&format!("/api/f/{id}/sql")))
        .send_json(serde_json::json!({ "sql": sql }))
        .expect("the server answers");
    let status = r.status().as_u16();
    (status, r.body_mut().read_json().unwrap_or(Value::Null))
}

fn num(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap(),
        Value::String(s) => s.parse().unwrap(),
        Value::Null => 0.0,
        other => panic!("not a number: {other}"),
    }
}

/// The sum of `field` over a view query's rows.
fn total(view: &Value, query: &str, field: &str) -> f64 {
    view["queries"][query]["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("{query} in {view}"))
        .iter()
        .map(|r| num(&r[field]))
        .sum()
}

fn run(scenario: &str, out: &Path, extra: &[&str]) {
    let mut args = vec![
        scenario,
        "--out",
        out.to_str().unwrap(),
        "--quiet",
        "--no-report",
    ];
    args.extend_from_slice(extra);
    let o = bazaar(&args);
    assert!(o.status.success(), "{:?}", text(&o));
}

/// The quick scenario written as CSV into `dir/csv` and as Parquet into `dir/parquet`.
fn quick_runs(dir: &Path) -> (PathBuf, PathBuf) {
    let (csv, parquet) = (dir.join("csv"), dir.join("parquet"));
    run("scenarios/quick.ron", &csv, &["--format", "csv"]);
    run("scenarios/quick.ron", &parquet, &["--format", "parquet"]);
    (csv, parquet)
}

#[test]
fn views_answer_from_the_written_tables_whichever_format() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, parquet) = quick_runs(dir.path());
    let s = Server::start(&[
        "serve",
        "--port",
        "0",
        csv.to_str().unwrap(),
        parquet.to_str().unwrap(),
    ]);
    let (status, folders) = get(&s.url("/api/folders"));
    assert_eq!(status, 200);
    let ids: Vec<&str> = folders["folders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["csv", "parquet"]);
    let summary = common::json(&csv.join("summary.json"));
    let aggregates = common::json(&csv.join("aggregates.json"));
    let revenue = num(&summary["revenue"]);
    let transactions = num(&summary["totals"]["transactions"]);
    for id in ["csv", "parquet"] {
        let view = |name: &str, q: &str| {
            let (status, v) = get(&s.url(&format!("/api/f/{id}/view/{name}?{q}")));
            assert_eq!(status, 200, "{name}?{q}: {v}");
            v
        };
        // Unfiltered, every sales view adds up to the run's summary.
        assert!((total(&view("daily", ""), "daily", "revenue") - revenue).abs() < 0.01);
        assert_eq!(
            total(&view("heatmap", ""), "heatmap", "transactions"),
            transactions
        );
        assert_eq!(
            total(&view("baskets", ""), "baskets", "transactions"),
            transactions
        );
        assert_eq!(
            total(&view("overview", ""), "totals", "transactions"),
            transactions
        );
        // A persona: its own revenue.
        let p = &summary["personas"][1];
        let persona = p["persona"].as_str().unwrap();
        let v = view("daily", &format!("persona={persona}"));
        assert!(
            (total(&v, "daily", "revenue") - num(&p["revenue"])).abs() < 0.01,
            "{persona}"
        );
        // A category: its lines' revenue, as the aggregates have it.
        let c = 2;
        let category = aggregates["categories"][c].as_str().unwrap();
        let expected: f64 = aggregates["category_persona"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| num(&row[c]["revenue_paise"]) / 100.0)
            .sum();
        let v = view("mix", &format!("category={category}"));
        assert!(
            (total(&v, "mix", "revenue") - expected).abs() < 0.01,
            "{category}: {v}"
        );
        let v = view("daily", &format!("category={category}"));
        assert!((total(&v, "daily", "revenue") - expected).abs() < 0.01);
        // Dates and events narrow the days.
        let v = view("daily", "from=2026-11-06&to=2026-11-07");
        let days: Vec<&str> = v["queries"]["daily"]["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["date"].as_str().unwrap())
            .collect();
        assert!(
            days.iter()
                .all(|d| ("2026-11-06"..="2026-11-07").contains(d))
                && !days.is_empty()
        );
        // Exactly the days Diwali was in force, by the run's own daily aggregates.
        let v = view("daily", "event=Diwali");
        let mut days: Vec<&str> = v["queries"]["daily"]["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["date"].as_str().unwrap())
            .collect();
        days.dedup();
        let diwali: Vec<&str> = aggregates["days"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| {
                d["events"]
                    .as_str()
                    .unwrap()
                    .split('+')
                    .any(|e| e == "Diwali")
            })
            .map(|d| d["date"].as_str().unwrap())
            .collect();
        assert!(!diwali.is_empty() && diwali.len() < 7, "{diwali:?}");
        assert_eq!(days, diwali);
        // Customer views ignore the category, and say so.
        let v = view("customers", &format!("category={category}"));
        assert_eq!(v["ignored"], serde_json::json!(["category"]));
        assert_eq!(
            v["queries"]["daily"]["rows"].as_array().unwrap().len(),
            7 * 5
        );
        // A value the run does not hold is refused, quoted or not.
        for bad in [
            "persona=nobody",
            "persona=premium'%20OR%201=1--",
            "from=yesterday",
            "store=1",
        ] {
            let (status, e) = get(&s.url(&format!("/api/f/{id}/view/daily?{bad}")));
            assert_eq!(status, 400, "{bad}: {e}");
        }
    }
    // Both formats give the same figures.
    for name in ["daily", "mix", "heatmap", "baskets", "customers"] {
        let (_, a) = get(&s.url(&format!("/api/f/csv/view/{name}?persona=family")));
        let (_, b) = get(&s.url(&format!("/api/f/parquet/view/{name}?persona=family")));
        for (k, q) in a["queries"].as_object().unwrap() {
            let (ra, rb) = (&q["rows"], &b["queries"][k]["rows"]);
            let norm = |rows: &Value| -> Vec<Vec<String>> {
                rows.as_array()
                    .unwrap()
                    .iter()
                    .map(|r| {
                        r.as_object()
                            .unwrap()
                            .values()
                            .map(|v| match v {
                                Value::String(s) => {
                                    s.parse::<f64>().map_or(s.clone(), |f| format!("{f:.2}"))
                                }
                                Value::Number(n) => format!("{:.2}", n.as_f64().unwrap()),
                                other => other.to_string(),
                            })
                            .collect()
                    })
                    .collect()
            };
            assert_eq!(norm(ra), norm(rb), "{name}.{k}");
        }
    }
}

#[test]
fn the_rollups_agree_with_the_transaction_log() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("stores");
    run(
        "scenarios/examples/stores.ron",
        &out,
        &["--scale", "0.02", "--format", "parquet"],
    );
    let s = Server::start(&["serve", "--port", "0", out.to_str().unwrap()]);
    let id = "stores";
    let same = |rollup: &str, raw: &str| {
        let (sa, a) = post_sql(&s, id, rollup);
        let (sb, b) = post_sql(&s, id, raw);
        assert_eq!((sa, sb), (200, 200), "{a} {b}");
        assert_eq!(a["rows"], b["rows"], "{rollup}\n{raw}");
        assert!(!a["rows"].as_array().unwrap().is_empty());
    };
    // Whole baskets by hour and persona.
    same(
        "SELECT date, hour, persona, transactions, lines, units, revenue FROM sales WHERE category IS NULL ORDER BY date, hour, persona",
        "SELECT CAST(timestamp AS DATE) AS date, CAST(date_part('hour', timestamp) AS TINYINT UNSIGNED) AS hour, persona, \
         CAST(COUNT(*) AS BIGINT UNSIGNED) AS transactions, CAST(SUM(lines) AS BIGINT UNSIGNED) AS lines, CAST(SUM(units) AS BIGINT UNSIGNED) AS units, SUM(total) AS revenue \
         FROM transactions GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    );
    // Categories: baskets holding them, their lines, units and revenue.
    same(
        "SELECT date, persona, category, SUM(transactions) AS baskets, SUM(lines) AS lines, SUM(units) AS units, SUM(revenue) AS revenue \
         FROM sales WHERE category IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        "SELECT CAST(t.timestamp AS DATE) AS date, t.persona, l.category, CAST(COUNT(DISTINCT t.transaction_id) AS BIGINT UNSIGNED) AS baskets, \
         CAST(COUNT(*) AS BIGINT UNSIGNED) AS lines, CAST(SUM(l.quantity) AS BIGINT UNSIGNED) AS units, SUM(l.line_total) AS revenue \
         FROM line_items l JOIN transactions t ON l.transaction_id = t.transaction_id GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    );
    // Basket values: every basket in the bin that holds its total.
    same(
        "SELECT date, persona, low, SUM(transactions) AS n FROM basket_values WHERE category IS NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        "SELECT CAST(t.timestamp AS DATE) AS date, t.persona, b.low, CAST(COUNT(*) AS BIGINT UNSIGNED) AS n FROM transactions t \
         JOIN (SELECT DISTINCT low, high FROM basket_values) b ON t.total >= b.low AND (b.high IS NULL OR t.total < b.high) \
         GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    );
    // The behaviour's table is found, and the store filter reaches it.
    let (status, meta) = get(&s.url("/api/f/stores/meta"));
    assert_eq!(status, 200);
    assert_eq!(meta["meta"]["stores"].as_array().unwrap().len(), 40);
    let (status, v) = get(&s.url("/api/f/stores/view/table:stores?store=3"));
    assert_eq!(status, 200, "{v}");
    let rows = v["queries"]["rows"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 7);
    assert!(rows.iter().all(|r| num(&r["store"]) == 3.0));
}

#[test]
fn sql_is_read_only_limited_and_stays_inside_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    run("scenarios/quick.ron", &out, &["--format", "parquet"]);
    std::fs::write(dir.path().join("secret.csv"), "a\n1\n").unwrap();
    let s = Server::start(&[
        "serve",
        "--port",
        "0",
        "--query-timeout",
        "1",
        out.to_str().unwrap(),
    ]);
    let manifest = common::json(&out.join("manifest.json"));
    let rows = |name: &str| {
        manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap()["rows"]
            .as_u64()
            .unwrap()
    };
    let (status, a) = post_sql(&s, "run", "SELECT COUNT(*) AS n FROM transactions");
    assert_eq!(status, 200, "{a}");
    assert_eq!(num(&a["rows"][0]["n"]) as u64, rows("transactions.parquet"));
    // Writes, definitions, settings and files are refused.
    let secret = dir.path().join("secret.csv");
    let secret = secret.to_str().unwrap();
    for bad in [
        format!("CREATE EXTERNAL TABLE s STORED AS CSV LOCATION '{secret}'"),
        "CREATE TABLE t AS SELECT 1".to_owned(),
        "INSERT INTO transactions SELECT * FROM transactions".to_owned(),
        format!("COPY (SELECT 1) TO '{}/x.csv'", dir.path().display()),
        "DROP TABLE transactions".to_owned(),
        "SET datafusion.execution.target_partitions = 1".to_owned(),
        format!("SELECT * FROM '{secret}'"),
        "SELECT * FROM read_csv('/etc/passwd')".to_owned(),
    ] {
        let (status, e) = post_sql(&s, "run", &bad);
        assert_eq!(status, 400, "{bad}: {e}");
        assert!(
            e["error"].as_str().is_some_and(|m| !m.is_empty()),
            "{bad}: {e}"
        );
    }
    assert!(!dir.path().join("x.csv").exists());
    // A long query is stopped at its time limit.
    let (status, e) = post_sql(
        &s,
        "run",
        "SELECT COUNT(*) FROM line_items a, line_items b, line_items c WHERE a.quantity + b.quantity + c.quantity > 100",
    );
    assert_eq!(status, 408, "{e}");
    // The page shows 1,000 rows and says there were more; a download holds them all.
    let (_, a) = post_sql(&s, "run", "SELECT * FROM line_items");
    assert_eq!(a["rows"].as_array().unwrap().len(), 1000);
    assert_eq!(a["truncated"], true);
    let sql = "SELECT transaction_id, line, category FROM line_items";
    let mut r = agent()
        .get(&s.url("/api/f/run/download"))
        .query("format", "csv")
        .query("sql", sql)
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let csv = r
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_string()
        .unwrap();
    assert_eq!(csv.lines().next(), Some("transaction_id,line,category"));
    assert_eq!(csv.lines().count() as u64, rows("line_items.parquet") + 1);
    let mut r = agent()
        .get(&s.url("/api/f/run/download"))
        .query("format", "parquet")
        .query("sql", sql)
        .call()
        .unwrap();
    let bytes = r
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .unwrap();
    let reader =
        parquet::file::reader::SerializedFileReader::new(bytes::Bytes::from(bytes)).unwrap();
    use parquet::file::reader::FileReader;
    assert_eq!(
        reader.metadata().file_metadata().num_rows() as u64,
        rows("line_items.parquet")
    );
    // Files: those the manifest lists, nothing beside or above.
    let (status, _) = get(&s.url("/f/run/file/summary.json"));
    assert_eq!(status, 200);
    for bad in [
        "/f/run/file/..%2Fsecret.csv",
        "/f/run/file/%2E%2E/secret.csv",
        "/f/run/file/checkpoint.bazaar",
        "/f/nope/file/summary.json",
    ] {
        let (status, _) = get(&s.url(bad));
        assert_eq!(status, 404, "{bad}");
    }
    // Bound to loopback, it answers to loopback names only (no DNS rebinding).
    let r = agent()
        .get(&s.url("/api/folders"))
        .header("Host", "attacker.example:80")
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 421);
}

#[test]
fn folders_without_a_manifest_are_explained_and_bad_arguments_refused() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    let partial = dir.path().join("partial");
    let foreign = dir.path().join("foreign");
    for d in [&empty, &partial, &foreign] {
        std::fs::create_dir(d).unwrap();
    }
    std::fs::write(partial.join(".bazaar-partial"), "").unwrap();
    std::fs::write(foreign.join("notes.txt"), "mine").unwrap();
    let s = Server::start(&[
        "serve",
        "--port",
        "0",
        empty.to_str().unwrap(),
        partial.to_str().unwrap(),
        foreign.to_str().unwrap(),
    ]);
    let (_, folders) = get(&s.url("/api/folders"));
    let messages: Vec<&str> = folders["folders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert_eq!(f["ready"], false);
            f["message"].as_str().unwrap()
        })
        .collect();
    assert!(messages[0].contains("is empty"), "{messages:?}");
    assert!(messages[1].contains("still being written"), "{messages:?}");
    assert!(
        messages[2].contains("not a finished Bazaar output folder"),
        "{messages:?}"
    );
    let (status, e) = get(&s.url("/api/f/foreign/meta"));
    assert_eq!(status, 503, "{e}");
    assert_eq!(
        std::fs::read_to_string(foreign.join("notes.txt")).unwrap(),
        "mine"
    );
    drop(s);
    // A folder that does not exist, and a port that is taken.
    let o = bazaar(&[
        "serve",
        "--port",
        "0",
        dir.path().join("missing").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));
    assert!(text(&o).1.contains("cannot serve"), "{:?}", text(&o));
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let o = bazaar(&["serve", "--port", &port, empty.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));
    assert!(text(&o).1.contains("--port"), "{:?}", text(&o));
}

/// Reads server-sent events from `url` until `finished` (or `failed`): (kind, data) pairs.
fn events(url: &str) -> Vec<(String, Value)> {
    let r = agent().get(url).call().expect("the event stream");
    let (_, body) = r.into_parts();
    let reader = BufReader::new(body.into_reader());
    let mut out = Vec::new();
    let mut kind = String::new();
    for line in reader.lines() {
        let line = line.unwrap();
        if let Some(k) = line.strip_prefix("event: ") {
            kind = k.to_owned();
        } else if let Some(d) = line.strip_prefix("data: ") {
            out.push((kind.clone(), serde_json::from_str(d).unwrap()));
            if kind == "finished" || kind == "failed" {
                break;
            }
        }
    }
    out
}

#[test]
fn a_served_run_streams_its_progress_and_days_then_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("live");
    let s = Server::start(&[
        "run",
        "scenarios/quick.ron",
        "--scale",
        "20",
        "--serve",
        "--port",
        "0",
        "--out",
        out.to_str().unwrap(),
        "--no-report",
    ]);
    let seen = events(&s.url("/api/live"));
    let days: Vec<&Value> = seen
        .iter()
        .filter(|(k, _)| k == "day")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(days.len(), 7, "{seen:?}");
    assert!(seen.iter().any(|(k, _)| k == "progress"));
    assert_eq!(seen.last().unwrap().0, "finished");
    // The days' revenue is the finished run's.
    let summary = common::json(&out.join("summary.json"));
    let live_revenue: f64 = days
        .iter()
        .flat_map(|d| d["personas"].as_array().unwrap())
        .map(|p| num(&p["revenue"]))
        .sum();
    assert!(
        (live_revenue - num(&summary["revenue"])).abs() < 1.0,
        "{live_revenue}"
    );
    // The same server now serves the finished folder.
    let (_, folders) = get(&s.url("/api/folders"));
    assert_eq!(folders["folders"][0]["ready"], true, "{folders}");
    let (status, _) = get(&s.url("/api/f/live/view/daily"));
    assert_eq!(status, 200);
    let _ = s.stderr.try_iter().count();
    assert_eq!(s.interrupt(), Some(0));
}

/// `bazaar ab` on the quick scenario against a sweets discount from the fork (7 November)
/// and an arm the same as the base, three replications, written to `dir/ab`.
fn experiment_folder(dir: &Path) -> PathBuf {
    let base = common::write(dir, "base.ron", &common::quick_with(""));
    let arm = common::write(
        dir,
        "sweets.ron",
        &common::quick_with(
            r#"Promotions(campaigns: [(name: "sweets", category: "sweets", discount: 0.2, from: "2026-11-07", to: "2026-11-10", lift: 1.5)])"#,
        ),
    );
    let same = common::write(dir, "same.ron", &common::quick_with(""));
    let out = dir.join("ab");
    let o = bazaar(&[
        "ab",
        base.to_str().unwrap(),
        "--arm",
        &format!("sweets={}", arm.display()),
        "--arm",
        &format!("same={}", same.display()),
        "--fork-at",
        "2026-11-07",
        "--replications",
        "3",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    out
}

/// The paired difference `metric` of arm `arm` against the base in experiment.json.
fn difference<'a>(e: &'a Value, arm: &str, metric: &str) -> &'a Value {
    row(e, arm, "base", metric)
}

/// The paired difference `metric` of `arm` against `against` (the base or another arm).
fn row<'a>(e: &'a Value, arm: &str, against: &str, metric: &str) -> &'a Value {
    e["differences"]
        .as_array()
        .unwrap()
        .iter()
        .chain(e["between"].as_array().unwrap())
        .find(|d| d["arm"] == arm && d["against"] == against && d["metric"] == metric)
        .unwrap_or_else(|| panic!("no {arm} against {against} on {metric} in experiment.json"))
}

/// `arm`'s less `against`'s `metric` summed over the days from `from` on and among `days`
/// (all when empty), replication by replication, averaged: a paired difference over a window.
fn window(e: &Value, arm: &str, against: &str, metric: &str, from: &str, days: &[&str]) -> f64 {
    let dates: Vec<&str> = e["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["date"].as_str().unwrap())
        .collect();
    let sum = |who: &str, r: &Value| -> f64 {
        let m = e["measured"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["arm"] == who && m["replication"] == *r)
            .unwrap();
        dates
            .iter()
            .enumerate()
            .filter(|(_, d)| **d >= from && (days.is_empty() || days.contains(d)))
            .map(|(i, _)| num(&m["daily"][metric][i]))
            .sum()
    };
    let reps: Vec<&Value> = e["measured"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["arm"] == arm)
        .map(|m| &m["replication"])
        .collect();
    reps.iter()
        .map(|r| sum(arm, r) - sum(against, r))
        .sum::<f64>()
        / reps.len() as f64
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn an_experiment_folder_shows_each_arm_against_the_base_and_two_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let ab = experiment_folder(dir.path());
    // The folder has a manifest like a run's: `check` verifies it, serve opens it.
    let v = bazaar(&["check", ab.to_str().unwrap()]);
    assert!(v.status.success(), "{:?}", text(&v));
    assert!(
        text(&v).0.contains("pass manifest (2 files"),
        "{:?}",
        text(&v)
    );
    let e = common::json(&ab.join("experiment.json"));
    let run_dir = dir.path().join("run");
    run("scenarios/quick.ron", &run_dir, &[]);
    let s = Server::start(&[
        "serve",
        "--port",
        "0",
        ab.to_str().unwrap(),
        run_dir.to_str().unwrap(),
    ]);
    let (_, folders) = get(&s.url("/api/folders"));
    assert_eq!(folders["folders"][0]["experiment"], true);
    assert_eq!(folders["folders"][1]["experiment"], false);
    let (status, meta) = get(&s.url("/api/f/ab/meta"));
    assert_eq!(status, 200, "{meta}");
    assert_eq!(meta["experiment"], true);
    assert_eq!(
        meta["design"]["arms"],
        serde_json::json!(["base", "sweets", "same"])
    );
    assert_eq!(meta["design"]["fork"], "2026-11-07");
    // The base's calendar: a week of days, Diwali among them.
    assert_eq!(meta["meta"]["days"].as_array().unwrap().len(), 7);
    assert!(
        meta["meta"]["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x.as_str().unwrap().contains("Diwali")),
        "{}",
        meta["meta"]["events"]
    );

    // Against the base, unfiltered: the file's own differences and verdicts, and the arms
    // against each other.
    let (_, x) = get(&s.url("/api/f/ab/experiment"));
    assert_eq!(x["verdicts"], e["verdicts"]);
    for d in x["differences"].as_array().unwrap() {
        let (arm, against) = (d["arm"].as_str().unwrap(), d["against"].as_str().unwrap());
        assert_eq!(d, row(&e, arm, against, d["metric"].as_str().unwrap()));
    }
    let rows = x["differences"].as_array().unwrap();
    assert!(
        rows.iter()
            .any(|d| d["arm"] == "same" && d["against"] == "sweets")
    );
    assert!(rows.iter().filter(|d| d["arm"] == "sweets").count() >= 5);
    // Per persona.
    let persona = e["personas"][0].as_str().unwrap();
    let (_, x) = get(&s.url(&format!("/api/f/ab/experiment?persona={persona}")));
    let rows = x["differences"].as_array().unwrap();
    assert!(!rows.is_empty());
    for d in rows {
        let m = d["metric"].as_str().unwrap();
        assert!(m.ends_with(&format!(".{persona}")), "{m}");
        assert_eq!(d, difference(&e, d["arm"].as_str().unwrap(), m));
    }
    // Every day after the fork chosen: the same difference as from the fork to the end,
    // recomputed from the daily series.
    let (_, x) = get(&s.url("/api/f/ab/experiment?from=2026-11-07"));
    let units = x["differences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["metric"] == "units")
        .unwrap();
    assert!(close(
        num(&units["difference"]),
        num(&difference(&e, "sweets", "units")["difference"])
    ));
    // From the day after the fork: the replications' daily figures over those days alone.
    let (_, later) = get(&s.url("/api/f/ab/experiment?from=2026-11-08"));
    let revenue = later["differences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["arm"] == "sweets" && d["metric"] == "revenue")
        .unwrap();
    let want = window(&e, "sweets", "base", "revenue", "2026-11-08", &[]);
    assert!(close(num(&revenue["difference"]), want), "{revenue} {want}");
    assert!(!close(
        want,
        num(&difference(&e, "sweets", "revenue")["difference"])
    ));
    // Before the fork there is nothing to compare.
    let (_, early) = get(&s.url("/api/f/ab/experiment?to=2026-11-06"));
    assert!(early["differences"].as_array().unwrap().is_empty());
    assert!(early["verdicts"].as_array().unwrap().is_empty());
    let after_fork = meta["meta"]["days"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["date"].as_str().unwrap() >= "2026-11-07")
        .count();
    assert_eq!(x["dates"].as_array().unwrap().len(), after_fork);
    assert_eq!(x["window"].as_array().unwrap().len(), after_fork);

    // Two arms side by side: each arm's mean of the replications day by day.
    let (status, w) = get(&s.url("/api/f/ab/arms/base/sweets?metric=units"));
    assert_eq!(status, 200, "{w}");
    let mean = |arm: &str, day: usize| -> f64 {
        let runs: Vec<f64> = e["measured"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["arm"] == arm)
            .map(|m| num(&m["daily"]["units"][day]))
            .collect();
        runs.iter().sum::<f64>() / runs.len() as f64
    };
    for day in 0..7 {
        assert!(close(num(&w["mean_a"][day]), mean("base", day)));
        assert!(close(num(&w["mean_b"][day]), mean("sweets", day)));
        assert!(close(
            num(&w["difference"][day]),
            mean("sweets", day) - mean("base", day)
        ));
    }
    // Before the fork the arms are one.
    assert_eq!(num(&w["difference"][0]), 0.0);
    assert!(close(
        num(&w["overall"]["difference"]),
        num(&difference(&e, "sweets", "units")["difference"])
    ));
    for row in w["personas"].as_array().unwrap() {
        let p = row["persona"].as_str().unwrap();
        assert_eq!(
            row["difference"]["difference"],
            difference(&e, "sweets", &format!("units.{p}"))["difference"]
        );
    }
    assert_eq!(
        w["personas"].as_array().unwrap().len(),
        e["personas"].as_array().unwrap().len()
    );
    // The other way round, and Diwali's days alone.
    let (_, back) = get(&s.url("/api/f/ab/arms/sweets/base?metric=units&event=Diwali"));
    let diwali: Vec<&str> = back["dates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert!((1..7).contains(&diwali.len()), "{diwali:?}");
    let want = window(&e, "base", "sweets", "units", "2026-11-07", &diwali);
    assert!(close(num(&back["overall"]["difference"]), want), "{want}");
    assert!(!back["ignored"].as_array().unwrap().is_empty());

    // Refusals, each naming what there is.
    let (status, r) = get(&s.url("/api/f/ab/arms/base/nope"));
    assert_eq!(status, 404);
    assert!(
        r["error"].as_str().unwrap().contains("base, sweets, same"),
        "{r}"
    );
    let (status, r) = get(&s.url("/api/f/ab/arms/base/sweets?metric=nope"));
    assert_eq!(status, 400);
    assert!(r["error"].as_str().unwrap().contains("revenue"), "{r}");
    let (status, _) = get(&s.url("/api/f/ab/experiment?category=sweets"));
    assert_eq!(status, 400);
    let (status, r) = get(&s.url("/api/f/run/experiment"));
    assert_eq!(status, 404);
    assert!(r["error"].as_str().unwrap().contains("bazaar ab"), "{r}");
    let (status, r) = get(&s.url("/api/f/ab/view/daily"));
    assert_eq!(status, 404);
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("experiment and arms views"),
        "{r}"
    );
    // The experiment's own page is served, as the manifest lists it.
    let (status, _) = get(&s.url("/f/ab/file/experiment.html"));
    assert_eq!(status, 200);
}

/// npm's playwright-core, pinned in tests/browser/package-lock.json, installed once into
/// target/browser; `None` when the npm registry cannot be reached.
fn playwright() -> Option<PathBuf> {
    let target = root().join("target/browser");
    std::fs::create_dir_all(&target).unwrap();
    let lock = std::fs::File::create(root().join("target/browser.lock")).unwrap();
    lock.lock().unwrap();
    let module = target.join("node_modules/playwright-core");
    if module.join("package.json").exists() {
        return Some(module);
    }
    for f in ["package.json", "package-lock.json"] {
        std::fs::copy(root().join("tests/browser").join(f), target.join(f)).unwrap();
    }
    let o = Command::new("npm")
        .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund"])
        .current_dir(&target)
        .output()
        .expect("npm runs: the browser test needs Node.js and npm");
    if !o.status.success() {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            ["ENOTFOUND", "ECONNREFUSED", "EAI_AGAIN", "network"]
                .iter()
                .any(|m| err.contains(m)),
            "npm ci failed: {err}"
        );
        eprintln!("SKIPPED: the npm registry is unreachable: {err}");
        return None;
    }
    Some(module)
}

#[test]
fn the_dashboard_works_in_chromium() {
    let Some(chromium) = common::chromium() else {
        return;
    };
    let Some(module) = playwright() else { return };
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("stores");
    let b = dir.path().join("other");
    run(
        "scenarios/examples/stores.ron",
        &a,
        &["--scale", "0.02", "--format", "parquet"],
    );
    run(
        "scenarios/examples/stores.ron",
        &b,
        &["--scale", "0.02", "--format", "parquet", "--seed", "10"],
    );
    let ab = experiment_folder(dir.path());
    let e = common::json(&ab.join("experiment.json"));
    // `revenue.family` is a persona's, `promotions.sweets.cost` the behaviour's own.
    let per_persona = |m: &Value| {
        let m = m.as_str().unwrap();
        e["personas"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| m.ends_with(&format!(".{}", p.as_str().unwrap())))
    };
    let served = Server::start(&[
        "serve",
        "--port",
        "0",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        ab.to_str().unwrap(),
    ]);
    let live_out = dir.path().join("live");
    let live = Server::start(&[
        "run",
        "scenarios/quick.ron",
        "--scale",
        "300",
        "--serve",
        "--port",
        "0",
        "--out",
        live_out.to_str().unwrap(),
        "--no-report",
    ]);
    let summary = common::json(&a.join("summary.json"));
    let persona = &summary["personas"][0];
    // A customer with baskets, and how many.
    let (_, c) = post_sql(
        &served,
        "stores",
        "SELECT customer_id, COUNT(*) AS n FROM transactions GROUP BY customer_id ORDER BY n DESC, customer_id LIMIT 1",
    );
    let customer = &c["rows"][0];
    let expect = serde_json::json!({
        "folder": "stores",
        "other": "other",
        "views": ["overview", "daily", "heatmap", "mix", "baskets", "customers", "table:stores", "sql"],
        "persona": persona["persona"],
        "persona_revenue": persona["revenue"],
        "revenue": summary["revenue"],
        "personas": summary["personas"].as_array().unwrap().len(),
        "customer": customer["customer_id"],
        "customer_baskets": customer["n"],
        "transactions": summary["totals"]["transactions"],
        "refused_sql": ["CREATE TABLE x AS SELECT 1", "SELECT * FROM '/etc/passwd'"],
        "live_days": 7,
        "live_folder": "live",
        "experiment": "ab",
        "experiment_verdicts": e["verdicts"].as_array().unwrap().len(),
        "experiment_rows": e["differences"].as_array().unwrap().iter().filter(|d| !per_persona(&d["metric"])).count()
            + e["between"].as_array().unwrap().len(),
        "experiment_persona": e["personas"][0],
        "experiment_personas": e["personas"].as_array().unwrap().len(),
    });
    let shots = root().join("target/test-artifacts/dashboard");
    std::fs::create_dir_all(&shots).unwrap();
    let o = Command::new("node")
        .arg(root().join("tests/browser/dashboard.cjs"))
        .env("PLAYWRIGHT_CORE", &module)
        .env("CHROMIUM", chromium)
        .env("BASE", &served.base)
        .env("LIVE", &live.base)
        .env("SHOTS", &shots)
        .env("EXPECT", expect.to_string())
        .output()
        .expect("node runs");
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    let found: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(found["customer_baskets"], customer["n"]);
    for shot in [
        "view-overview.png",
        "view-daily.png",
        "customer.png",
        "sql.png",
        "compare.png",
        "experiment.png",
        "arms.png",
        "live.png",
        "phone-overview.png",
    ] {
        let mut f = std::fs::File::open(shots.join(shot)).unwrap();
        let mut head = [0u8; 8];
        f.read_exact(&mut head).unwrap();
        assert_eq!(&head[1..4], b"PNG", "{shot}");
    }
    assert_eq!(live.interrupt(), Some(0));
}
