//! Experiment tracking against a real MLflow tracking server: MLflow is installed from PyPI
//! into a virtual environment on first need, `mlflow server` started on a loopback port with
//! a SQLite store and a local artifact root, and what Bazaar logged is read back with
//! MLflow's own client. No mock server.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{bazaar, root, text};

/// MLflow's Python, or `None` when PyPI cannot be reached (the tests say they skipped).
fn mlflow_python() -> Option<PathBuf> {
    common::python_with("mlflow-venv", "import mlflow")
}

/// A tracking server on a free loopback port, its store and artifacts in `dir`; stopped
/// (its whole process group) when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(python: &Path, dir: &Path, port: Option<u16>) -> Self {
        use std::os::unix::process::CommandExt;
        let port = port.unwrap_or_else(|| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        });
        let log = std::fs::File::create(dir.join(format!("server-{port}.log"))).unwrap();
        let child = Command::new(python)
            .args([
                "-m",
                "mlflow",
                "server",
                "--host",
                "127.0.0.1",
                "--workers",
                "1",
            ])
            .args(["--port", &port.to_string()])
            .arg("--backend-store-uri")
            .arg(format!("sqlite:///{}", dir.join("mlflow.db").display()))
            .arg("--artifacts-destination")
            .arg(dir.join("artifacts"))
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("mlflow server starts");
        let server = Self { child, port };
        let started = Instant::now();
        while !server.healthy() {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "mlflow server did not come up: see {}",
                dir.display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        server
    }

    fn uri(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn healthy(&self) -> bool {
        self.answers("/health")
    }

    /// Whether `GET path` answers 200.
    fn answers(&self, path: &str) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let request = format!(
            "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n\r\n",
            self.port
        );
        let mut answer = String::new();
        s.write_all(request.as_bytes()).is_ok()
            && s.read_to_string(&mut answer).is_ok()
            && answer.starts_with("HTTP/1.1 200")
    }

    fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .args(["-s", "TERM", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Every run of `experiment` as MLflow's client sees it.
fn runs(python: &Path, uri: &str, experiment: &str) -> Vec<serde_json::Value> {
    let o = Command::new(python)
        .arg(root().join("tests/python/mlflow_read.py"))
        .args([uri, experiment])
        .output()
        .unwrap();
    assert!(o.status.success(), "{:?}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Each day's revenue of a run, in rupees, from its aggregates.
fn daily_revenue(out: &Path) -> Vec<f64> {
    let a: serde_json::Value = common::json(&out.join("aggregates.json"));
    a["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            d["personas"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["revenue_paise"].as_f64().unwrap() / 100.0)
                .sum()
        })
        .collect()
}

#[test]
fn a_run_is_logged_with_its_params_daily_metrics_and_report() {
    let Some(python) = mlflow_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&python, dir.path(), None);
    let out = dir.path().join("run");
    let o = bazaar(&[
        "scenarios/diwali.ron",
        "--scale",
        "0.05",
        "--quiet",
        "--mlflow",
        &server.uri(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let found = runs(&python, &server.uri(), "diwali");
    assert_eq!(found.len(), 1);
    let run = &found[0];
    assert_eq!(run["status"], "FINISHED");
    assert_eq!(run["name"], "diwali seed 42");
    let params = &run["params"];
    assert_eq!(params["seed"], "42");
    assert_eq!(params["days"], "30");
    assert_eq!(params["customers"], "5000");
    assert_eq!(params["scenario_hash"].as_str().unwrap().len(), 64);
    assert!(
        params["model.churn.hash"]
            .as_str()
            .unwrap()
            .starts_with("v1 ")
    );
    assert_eq!(run["tags"]["bazaar.version"], env!("CARGO_PKG_VERSION"));
    // Daily revenue, a step per day, equal to the run's own figures.
    let logged: Vec<(i64, f64)> = run["daily_revenue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_i64().unwrap(), p[1].as_f64().unwrap()))
        .collect();
    let expected = daily_revenue(&out);
    assert_eq!(logged.len(), 30);
    for (day, ((step, value), want)) in logged.iter().zip(&expected).enumerate() {
        assert_eq!(*step, day as i64);
        assert!(
            (value - want).abs() < 1e-6,
            "day {day}: {value} against {want}"
        );
    }
    let summary: serde_json::Value = common::json(&out.join("summary.json"));
    assert_eq!(
        run["metrics"]["transactions"].as_f64().unwrap(),
        summary["totals"]["transactions"].as_f64().unwrap()
    );
    assert!(run["metrics"]["margin"].as_f64().unwrap() > 0.0);
    assert!(run["metrics"].get("daily.churned.premium").is_some());
    let artifacts: Vec<&str> = run["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    for want in [
        "summary.json",
        "manifest.json",
        "report.html",
        "drift.json",
        "charts/daily_revenue.svg",
    ] {
        assert!(artifacts.contains(&want), "{want} in {artifacts:?}");
    }
    let stored = std::fs::read(
        walk(&dir.path().join("artifacts"))
            .into_iter()
            .find(|p| p.ends_with("summary.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(stored, std::fs::read(out.join("summary.json")).unwrap());
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn an_unreachable_server_stops_the_run_before_it_starts_unless_optional() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let uri = format!("http://127.0.0.1:{port}");
    let out = dir.path().join("run");
    let args = |extra: &[&str]| {
        let mut a = vec![
            "scenarios/quick.ron".to_owned(),
            "--quiet".to_owned(),
            "--mlflow".to_owned(),
            uri.clone(),
            "--out".to_owned(),
            out.display().to_string(),
        ];
        a.extend(extra.iter().map(|s| (*s).to_owned()));
        a
    };
    let run = |a: Vec<String>| bazaar(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let o = run(args(&[]));
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot be reached") && err.contains("--mlflow-optional"),
        "{err}"
    );
    assert!(!out.exists(), "nothing simulated, nothing written");
    let o = run(args(&["--mlflow-optional"]));
    let (_, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("warning:") && err.contains("untracked"),
        "{err}"
    );
    assert!(out.join("summary.json").is_file());
    let o = bazaar(&["scenarios/quick.ron", "--mlflow", "https://example.org"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("plain HTTP"), "{err}");
}

#[test]
fn a_server_lost_during_the_run_loses_nothing() {
    let Some(python) = mlflow_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(&python, dir.path(), None);
    let (port, uri) = (server.port, server.uri());
    let out = dir.path().join("run");
    let child = Command::new(env!("CARGO_BIN_EXE_bazaar"))
        .args([
            "scenarios/diwali.ron",
            "--scale",
            "2",
            "--quiet",
            "--no-report",
        ])
        .args(["--mlflow", &uri, "--out"])
        .arg(&out)
        .current_dir(root())
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The run exists on the server before the simulation starts (its experiment first);
    // then the server goes.
    let started = Instant::now();
    while !server.answers("/api/2.0/mlflow/experiments/get-by-name?experiment_name=diwali") {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no experiment was created"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    server.stop();
    let o = child.wait_with_output().unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(out.join("summary.json").is_file(), "the outputs are whole");
    let hint = err
        .lines()
        .find_map(|l| {
            l.split('`')
                .nth(1)
                .filter(|c| c.starts_with("bazaar track"))
        })
        .unwrap_or_else(|| panic!("no `bazaar track` in {err}"))
        .to_owned();
    // The server back, the command the message gave finishes the same run.
    let _server = Server::start(&python, dir.path(), Some(port));
    let words: Vec<&str> = hint.split_whitespace().skip(1).collect();
    let o = bazaar(&words);
    assert!(o.status.success(), "{:?}", text(&o));
    let found = runs(&python, &uri, "diwali");
    assert_eq!(found.len(), 1, "the same run, not a second");
    assert_eq!(found[0]["status"], "FINISHED");
    assert_eq!(found[0]["daily_revenue"].as_array().unwrap().len(), 30);
    assert!(found[0]["params"].get("scenario_hash").is_some());
}

#[test]
fn experiments_and_sweeps_log_a_parent_and_a_child_per_arm_or_point_and_replication() {
    let Some(python) = mlflow_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&python, dir.path(), None);
    let uri = server.uri();
    let ab = dir.path().join("ab");
    let o = bazaar(&[
        "ab",
        "scenarios/quick.ron",
        "--arm",
        "same=scenarios/quick.ron",
        "--fork-at",
        "2026-11-07",
        "--replications",
        "2",
        "--quiet",
        "--mlflow",
        &uri,
        "--out",
        ab.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let scenarios = root().join("scenarios");
    let base = std::fs::read_to_string(scenarios.join("quick.ron"))
        .unwrap()
        .replace("include(\"", &format!("include(\"{}/", scenarios.display()));
    common::write(dir.path(), "base.ron", &base);
    let sweep = common::write(
        dir.path(),
        "sweep.ron",
        r#"Sweep(base: "base.ron", replications: 1,
    parameters: [(name: "premium", at: "population.premium.count", values: [100, 200])])"#,
    );
    let o = bazaar(&[
        "sweep",
        sweep.to_str().unwrap(),
        "--quiet",
        "--mlflow",
        &uri,
        "--out",
        dir.path().join("sweep").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let found = runs(&python, &uri, "quick");
    let parent = |prefix: &str| {
        found
            .iter()
            .find(|r| r["name"].as_str().unwrap().starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} run in {found:?}"))
    };
    let children = |p: &serde_json::Value| -> Vec<&serde_json::Value> {
        found
            .iter()
            .filter(|r| r["tags"]["mlflow.parentRunId"] == p["run_id"])
            .collect()
    };
    let experiment = parent("ab ");
    assert_eq!(experiment["status"], "FINISHED");
    let arms = children(experiment);
    assert_eq!(arms.len(), 4, "base and same, two replications each");
    for arm in &arms {
        assert_eq!(arm["status"], "FINISHED");
        assert!(["base", "same"].contains(&arm["params"]["arm"].as_str().unwrap()));
        assert_eq!(arm["daily_revenue"].as_array().unwrap().len(), 7);
    }
    // An arm identical to the base differs by exactly nothing.
    assert_eq!(experiment["metrics"]["difference.same.revenue"], 0.0);
    let artifacts = experiment["artifacts"].as_array().unwrap();
    assert!(
        artifacts.iter().any(|a| a == "experiment.html"),
        "{artifacts:?}"
    );
    let sweep = parent("sweep ");
    let points = children(sweep);
    assert_eq!(points.len(), 2, "two points, one replication");
    let mut premium: Vec<&str> = points
        .iter()
        .map(|p| p["params"]["premium"].as_str().unwrap())
        .collect();
    premium.sort_unstable();
    assert_eq!(premium, ["100", "200"]);
    assert!(
        points
            .iter()
            .all(|p| p["metrics"]["revenue"].as_f64().unwrap() > 0.0)
    );
    let artifacts = sweep["artifacts"].as_array().unwrap();
    assert!(
        artifacts.iter().any(|a| a == "sweep.parquet"),
        "{artifacts:?}"
    );
}

/// The bazaar binary with `args`, the registry at `uri` and Bazaar's cache in `cache`.
fn with_registry(args: &[&str], uri: Option<&str>, cache: &Path) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bazaar"));
    c.args(args)
        .current_dir(root())
        .env_remove("RUST_LOG")
        .env("BAZAAR_CACHE_DIR", cache);
    match uri {
        Some(u) => c.env("MLFLOW_TRACKING_URI", u),
        None => c.env_remove("MLFLOW_TRACKING_URI"),
    };
    c.output().unwrap()
}

#[test]
fn models_are_registered_promoted_rolled_back_and_run_by_alias() {
    let Some(python) = mlflow_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let mut server = Server::start(&python, dir.path(), None);
    let uri = server.uri();
    let ok = |args: &[&str], uri: Option<&str>| {
        let o = with_registry(args, uri, &cache);
        assert!(o.status.success(), "{args:?}: {:?}", text(&o));
        text(&o).0
    };
    let said = ok(
        &["models", "register", "churn", "models/churn.json"],
        Some(&uri),
    );
    assert!(said.contains("version 1"), "{said}");
    let said = ok(
        &[
            "models",
            "register",
            "churn",
            "models/churn_challenger.json",
            "--description",
            "balanced",
        ],
        Some(&uri),
    );
    assert!(said.contains("version 2"), "{said}");
    ok(
        &["models", "promote", "churn", "1", "--reason", "the first"],
        Some(&uri),
    );
    ok(
        &[
            "models",
            "promote",
            "churn",
            "2",
            "--reason",
            "the challenger won",
        ],
        Some(&uri),
    );
    let shown = ok(&["models", "show", "churn"], Some(&uri));
    assert!(shown.contains("churn@champion: version 2"), "{shown}");
    assert!(
        shown.contains("promoted version 2: the challenger won"),
        "{shown}"
    );

    // A scenario naming the champion runs with what it points at, byte for byte the model
    // the card on disk describes.
    let scenarios = root().join("scenarios");
    let scenario = |spec: &str| {
        let text = std::fs::read_to_string(scenarios.join("quick.ron"))
            .unwrap()
            .replace("include(\"", &format!("include(\"{}/", scenarios.display()))
            .replace(
                "systems: [\"daily_log\"],",
                &format!(
                    "systems: [], churn_model: (spec: \"{spec}\", every_days: 1, mode: Retain(top_k: 40, cost: 100, loyalty_boost: 0.6)),"
                ),
            );
        let name = format!("s{}.ron", spec.len());
        common::write(dir.path(), &name, &text)
    };
    let offers = |spec: &str, uri: Option<&str>, out: &str| {
        let out = dir.path().join(out);
        let s = scenario(spec);
        ok(
            &[
                s.to_str().unwrap(),
                "--quiet",
                "--no-report",
                // The registry may be down: the run is then not tracked.
                "--mlflow-optional",
                "--out",
                out.to_str().unwrap(),
            ],
            uri,
        );
        std::fs::read_to_string(out.join("customers.csv")).unwrap()
    };
    let models = root().join("models");
    let champion = offers("models:/churn@champion", Some(&uri), "champion");
    let challenger = offers(
        &models.join("churn_challenger.json").display().to_string(),
        None,
        "local2",
    );
    let first = offers(
        &models.join("churn.json").display().to_string(),
        None,
        "local1",
    );
    assert_eq!(champion, challenger, "the champion is version 2");
    assert_ne!(
        first, challenger,
        "the two models offer to different customers"
    );
    let said = ok(
        &["models", "rollback", "churn", "--reason", "too many offers"],
        Some(&uri),
    );
    assert!(said.contains("back to version 1"), "{said}");
    assert_eq!(
        offers("models:/churn@champion", Some(&uri), "rolled"),
        first
    );
    let shown = ok(&["models", "show", "churn"], Some(&uri));
    assert!(
        shown.contains("rolled back version 1: too many offers"),
        "{shown}"
    );

    // A version number already fetched from a registry runs while that registry is down;
    // an alias needs it.
    offers("models:/churn/2", Some(&uri), "pinned");
    server.stop();
    assert_eq!(offers("models:/churn/2", Some(&uri), "offline"), challenger);
    let o = with_registry(
        &[
            scenario("models:/churn@champion").to_str().unwrap(),
            "--quiet",
        ],
        Some(&uri),
        &cache,
    );
    assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));
    assert!(text(&o).1.contains("cannot be reached"), "{:?}", text(&o));
    let s = scenario("models:/churn@champion");
    let o = with_registry(&[s.to_str().unwrap(), "--quiet"], None, &cache);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("MLFLOW_TRACKING_URI") && err.contains(".ron:"),
        "{err}"
    );
}

/// The parent's child runs, by name.
fn children<'a>(
    runs: &'a [serde_json::Value],
    parent: &str,
) -> std::collections::BTreeMap<String, &'a serde_json::Value> {
    runs.iter()
        .filter(|r| r["tags"]["mlflow.parentRunId"] == parent)
        .map(|r| (r["name"].as_str().unwrap_or_default().to_owned(), r))
        .collect()
}

#[test]
fn the_retraining_loop_catches_the_drift_and_promotes_only_a_proven_challenger() {
    let Some(python) = mlflow_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&python, dir.path(), None);
    let uri = server.uri();
    let out = dir.path().join("loop");
    // Bazaar makes its own training environment in its cache, kept between test runs here;
    // the models it fetches are kept apart by registry, so a new server's version 1 is never
    // an old server's.
    let cache = root().join("target/mlops-cache");
    let o = with_registry(
        &[
            "mlops",
            "scenarios/drift.ron",
            "--scale",
            "0.2",
            "--replications",
            "4",
            "--guard",
            "margin",
            "--mlflow",
            &uri,
            "--out",
            out.to_str().unwrap(),
        ],
        None,
        &cache,
    );
    let (said, err) = text(&o);
    if !o.status.success() && err.contains("installing scikit-learn") && err.contains("PyPI") {
        eprintln!("SKIPPED: the training packages cannot be installed: {err}");
        return;
    }
    assert!(o.status.success(), "{said}\n{err}");
    let record: serde_json::Value = common::json(&out.join("mlops.json"));

    // The scenario's model became the first champion; the drift is found after the price
    // shock (its lead-in starts on 16 November), not before.
    assert_eq!(record["champion"], "1", "{record}");
    let drift = &record["drift"];
    let found = drift["date"].as_str().unwrap();
    assert!(found >= "2026-11-16", "drift found on {found}: {record}");
    // The onset of the drift that lasts, read from the simulation's own drift.json.
    let scorings: serde_json::Value = common::json(&out.join("simulate/drift.json"));
    let churn: Vec<&serde_json::Value> = scorings["scorings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["model"] == "churn")
        .collect();
    let calm = churn.iter().rposition(|s| s["drifted"] == false);
    let onset = churn[calm.map_or(0, |i| i + 1)]["date"].as_str().unwrap();
    assert_eq!(found, onset);
    assert!(
        !drift["features"].as_array().unwrap().is_empty(),
        "{record}"
    );

    // The challenger learned from the snapshots since, and was registered as version 2.
    let card: serde_json::Value = common::json(&out.join("challenger/churn.json"));
    assert_eq!(card["training"]["since_day"], drift["day"], "{card}");
    let features = std::fs::read_to_string(out.join("simulate/features.csv")).unwrap();
    let since = drift["day"].as_u64().unwrap();
    let rows = features
        .lines()
        .skip(1)
        .filter(|l| l.split(',').nth(1).unwrap().parse::<u64>().unwrap() >= since)
        .count() as u64;
    assert_eq!(card["training"]["rows"].as_u64(), Some(rows));
    assert_eq!(record["challenger"]["version"], "2", "{record}");

    // Champion against challenger in fresh worlds, and a decision that follows the interval.
    let ab: serde_json::Value = common::json(&out.join("ab/experiment.json"));
    assert_eq!(ab["replications"], 4);
    let seeds: Vec<u64> = ab["measured"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seed"].as_u64().unwrap())
        .collect();
    assert!(
        !seeds.contains(&42),
        "the training seed is not reused: {seeds:?}"
    );
    let c = &record["comparison"];
    assert_eq!(c["metric"], "churned");
    let difference = |metric: &str| {
        ab["differences"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["arm"] == "challenger" && d["metric"] == metric)
            .unwrap()
            .clone()
    };
    let at = |v: &serde_json::Value, i: usize| v["interval"][i].as_f64().unwrap();
    // Fewer churned is better: the gain is the difference turned round, its interval too.
    let d = difference("churned");
    assert_eq!(c["gain"].as_f64(), d["difference"].as_f64().map(|x| -x));
    assert_eq!((at(c, 0), at(c, 1)), (-at(&d, 1), -at(&d, 0)));
    // More margin is better: the guard's gain is the difference itself.
    let m = difference("margin");
    assert_eq!(record["guards"][0]["gain"], m["difference"]);
    assert_eq!(
        (at(&record["guards"][0], 0), at(&record["guards"][0], 1)),
        (at(&m, 0), at(&m, 1))
    );
    let low = c["interval"][0].as_f64().unwrap();
    let guard = &record["guards"][0];
    assert_eq!(guard["metric"], "margin");
    let margin_worse = guard["interval"][1].as_f64().unwrap() < 0.0;
    let promoted = record["decision"]["decision"] == "promoted";
    assert_eq!(promoted, low > 0.0 && !margin_worse, "{record}");
    if !promoted {
        assert_eq!(record["decision"]["decision"], "kept", "{record}");
    }
    let shown = with_registry(&["models", "show", "churn"], Some(&uri), &cache);
    let (shown, _) = text(&shown);
    let champion = if promoted { "2" } else { "1" };
    assert!(
        shown.contains(&format!("churn@champion: version {champion}")),
        "{shown}"
    );
    assert!(shown.contains("the first champion"), "{shown}");

    // Every step is a run under one parent.
    let runs = runs(&python, &uri, "drift");
    let parent = runs
        .iter()
        .find(|r| r["name"] == "mlops drift")
        .expect("the loop's parent run");
    assert_eq!(parent["status"], "FINISHED");
    assert_eq!(
        parent["tags"]["bazaar.decision"],
        if promoted { "promoted" } else { "kept" }
    );
    assert!(
        parent["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "mlops.json")
    );
    let steps = children(&runs, parent["run_id"].as_str().unwrap());
    for step in [
        "simulate",
        "detect drift",
        "train challenger",
        "champion against challenger",
    ] {
        assert_eq!(
            steps[step]["status"],
            "FINISHED",
            "{step}: {:?}",
            steps.keys()
        );
    }
    assert!(
        steps["train challenger"]["metrics"]["held_out.auc"]
            .as_f64()
            .unwrap()
            > 0.5
    );
    let arms = children(
        &runs,
        steps["champion against challenger"]["run_id"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(
        arms.len(),
        8,
        "two arms by four replications: {:?}",
        arms.keys()
    );
}

#[test]
fn the_retraining_loop_needs_a_server_and_a_scenario_with_a_churn_model() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("loop");
    let o_ = out.to_str().unwrap();
    let nowhere = ["--mlflow", "http://127.0.0.1:9"];
    for (args, said) in [
        (vec!["scenarios/drift.ron"], "--mlflow"),
        (
            [&["scenarios/quick.ron"][..], &nowhere].concat(),
            "no churn model",
        ),
        (
            [&["scenarios/drift.ron"][..], &nowhere].concat(),
            "cannot be reached",
        ),
        (
            [&["scenarios/drift.ron", "--guard", "basket"][..], &nowhere].concat(),
            "not one an experiment measures",
        ),
    ] {
        let o = with_registry(
            &[&["mlops"][..], &args, &["--out", o_]].concat(),
            None,
            dir.path(),
        );
        assert_eq!(o.status.code(), Some(2), "{args:?}: {:?}", text(&o));
        assert!(text(&o).1.contains(said), "{args:?}: {:?}", text(&o));
    }
    assert!(!out.exists());
}
