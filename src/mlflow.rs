//! Experiment tracking on an MLflow tracking server, over its REST API (`/api/2.0/mlflow`
//! and the server's artifact proxy, `/api/2.0/mlflow-artifacts`): a run of Bazaar becomes
//! an MLflow run of the experiment named after its scenario, with the scenario's settings as
//! params, its daily figures as step-indexed metrics, and its summary, report, charts and
//! manifest as artifacts.
//!
//! The server is reached before the simulation starts (its run is created then, with the
//! params), so an unreachable server is an error before anything is simulated; the metrics
//! and artifacts are read back from the finished output folder, so a server lost during the
//! run loses nothing: `bazaar track` logs the folder into the same run later.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use thiserror::Error;

/// MLflow's limits on one `runs/log-batch` request.
const MAX_METRICS: usize = 1000;
const MAX_PARAMS: usize = 100;
/// MLflow's longest param value.
const MAX_PARAM_VALUE: usize = 6000;

/// What can go wrong talking to a tracking server.
#[derive(Debug, Error)]
pub enum MlflowError {
    /// The URI is not one Bazaar can talk to.
    #[error("tracking URI `{uri}`: {reason}\n  hint: {hint}")]
    Uri {
        /// The URI.
        uri: String,
        /// What is wrong.
        reason: String,
        /// How to fix it.
        hint: &'static str,
    },
    /// No answer.
    #[error(
        "the MLflow tracking server at {uri} cannot be reached ({reason})\n  hint: start it (`mlflow server --host 127.0.0.1 --port 5000`), check --mlflow / MLFLOW_TRACKING_URI, or pass --mlflow-optional to run without tracking"
    )]
    Unreachable {
        /// The server.
        uri: String,
        /// The transport's error.
        reason: String,
    },
    /// The server refused a request.
    #[error("the MLflow tracking server refused {endpoint}: HTTP {status}: {message}")]
    Api {
        /// The endpoint.
        endpoint: String,
        /// The HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// A file to log cannot be read.
    #[error("cannot read `{path}` to log it: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// A tracking server.
pub struct Client {
    base: String,
    agent: ureq::Agent,
}

/// A run on the server.
#[derive(Debug, Clone)]
pub struct Run {
    /// Its id.
    pub id: String,
    /// Its experiment's id.
    pub experiment: String,
    /// Where its artifacts go (`mlflow-artifacts:/...` when the server proxies them).
    pub artifact_uri: String,
}

/// One value of a metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// Its name.
    pub key: String,
    /// The value.
    pub value: f64,
    /// The step (the day of the run, 0 for summary figures).
    pub step: i64,
    /// Milliseconds since the Unix epoch (the simulated day's midnight, UTC).
    pub timestamp: i64,
}

impl Client {
    /// A client of the server at `uri` (`http://host:port`); nothing is sent yet.
    pub fn new(uri: &str) -> Result<Self, MlflowError> {
        let base = uri.trim_end_matches('/').to_owned();
        let bad = |reason: &str, hint| MlflowError::Uri {
            uri: uri.to_owned(),
            reason: reason.to_owned(),
            hint,
        };
        if base.starts_with("https://") {
            return Err(bad(
                "Bazaar talks plain HTTP to tracking servers",
                "reach the server over http:// (on loopback or a trusted network, or through a local TLS-terminating proxy)",
            ));
        }
        if !base.starts_with("http://") || base.len() <= "http://".len() {
            return Err(bad(
                "not an http:// address",
                "give the server's address, e.g. --mlflow http://127.0.0.1:5000",
            ));
        }
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(60)))
            .http_status_as_error(false)
            .build()
            .into();
        Ok(Self { base, agent })
    }

    /// The server's address.
    pub fn uri(&self) -> &str {
        &self.base
    }

    fn answer(
        &self,
        endpoint: &str,
        sent: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Value, MlflowError> {
        let mut response = sent.map_err(|e| MlflowError::Unreachable {
            uri: self.base.clone(),
            reason: e.to_string(),
        })?;
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string().unwrap_or_default();
        if !(200..300).contains(&status) {
            let message = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_owned))
                .unwrap_or(body);
            return Err(MlflowError::Api {
                endpoint: endpoint.to_owned(),
                status,
                message,
            });
        }
        Ok(serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    fn post(&self, endpoint: &str, body: &Value) -> Result<Value, MlflowError> {
        let url = format!("{}/api/2.0/mlflow/{endpoint}", self.base);
        self.answer(endpoint, self.agent.post(&url).send_json(body))
    }

    /// The proxy's URL of `file` under an `mlflow-artifacts:` root (its part after the scheme).
    fn artifact_url(&self, root: &str, file: &str) -> String {
        format!(
            "{}/api/2.0/mlflow-artifacts/artifacts/{}/{file}",
            self.base,
            root.trim_start_matches('/')
        )
    }

    fn get(&self, endpoint: &str, query: &[(&str, &str)]) -> Result<Value, MlflowError> {
        let url = format!("{}/api/2.0/mlflow/{endpoint}", self.base);
        let mut request = self.agent.get(&url);
        for (k, v) in query {
            request = request.query(*k, *v);
        }
        self.answer(endpoint, request.call())
    }

    /// The id of the experiment named `name`, created if there is none.
    pub fn experiment(&self, name: &str) -> Result<String, MlflowError> {
        match self.get("experiments/get-by-name", &[("experiment_name", name)]) {
            Ok(v) => Ok(v["experiment"]["experiment_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()),
            Err(MlflowError::Api { status: 404, .. }) => {
                let v = self.post("experiments/create", &json!({ "name": name }))?;
                Ok(v["experiment_id"].as_str().unwrap_or_default().to_owned())
            }
            Err(e) => Err(e),
        }
    }

    /// Starts a run named `name` in `experiment`, a child of `parent` if given.
    pub fn start_run(
        &self,
        experiment: &str,
        name: &str,
        tags: &[(String, String)],
        parent: Option<&Run>,
    ) -> Result<Run, MlflowError> {
        let mut tags: Vec<Value> = tags
            .iter()
            .map(|(k, v)| json!({ "key": k, "value": v }))
            .collect();
        if let Some(p) = parent {
            tags.push(json!({ "key": "mlflow.parentRunId", "value": p.id }));
        }
        let v = self.post(
            "runs/create",
            &json!({
                "experiment_id": experiment,
                "run_name": name,
                "start_time": now_ms(),
                "tags": tags,
            }),
        )?;
        let info = &v["run"]["info"];
        Ok(Run {
            id: info["run_id"].as_str().unwrap_or_default().to_owned(),
            experiment: experiment.to_owned(),
            artifact_uri: info["artifact_uri"].as_str().unwrap_or_default().to_owned(),
        })
    }

    /// Logs params (values cut to MLflow's longest) and metrics, in as many requests as
    /// MLflow's limits need.
    pub fn log(
        &self,
        run: &Run,
        params: &[(String, String)],
        metrics: &[Metric],
    ) -> Result<(), MlflowError> {
        for chunk in params.chunks(MAX_PARAMS) {
            let params: Vec<Value> = chunk
                .iter()
                .map(|(k, v)| {
                    let v: String = v.chars().take(MAX_PARAM_VALUE).collect();
                    json!({ "key": k, "value": v })
                })
                .collect();
            self.post(
                "runs/log-batch",
                &json!({ "run_id": run.id, "params": params }),
            )?;
        }
        // JSON has no NaN or infinity, and one such value would fail its whole batch.
        let metrics: Vec<&Metric> = metrics.iter().filter(|m| m.value.is_finite()).collect();
        for chunk in metrics.chunks(MAX_METRICS) {
            let metrics: Vec<Value> = chunk
                .iter()
                .map(|m| {
                    json!({ "key": m.key, "value": m.value, "step": m.step, "timestamp": m.timestamp })
                })
                .collect();
            self.post(
                "runs/log-batch",
                &json!({ "run_id": run.id, "metrics": metrics }),
            )?;
        }
        Ok(())
    }

    /// Sets tags on a run.
    pub fn tag(&self, run: &Run, tags: &[(String, String)]) -> Result<(), MlflowError> {
        for (k, v) in tags {
            self.post(
                "runs/set-tag",
                &json!({ "run_id": run.id, "key": k, "value": v }),
            )?;
        }
        Ok(())
    }

    /// Uploads `bytes` as the run's artifact `path`, through the server's artifact proxy.
    pub fn upload(&self, run: &Run, path: &str, bytes: &[u8]) -> Result<(), MlflowError> {
        let Some(root) = run.artifact_uri.strip_prefix("mlflow-artifacts:") else {
            return Err(MlflowError::Uri {
                uri: run.artifact_uri.clone(),
                reason:
                    "the server keeps this run's artifacts where Bazaar cannot write through it"
                        .into(),
                hint: "start the server with artifacts served (`mlflow server` does by default; not --no-serve-artifacts)",
            });
        };
        let url = self.artifact_url(root, path);
        self.answer("mlflow-artifacts", self.agent.put(&url).send(bytes))
            .map(|_| ())
    }

    /// Ends a run: `FINISHED`, `FAILED` or `KILLED`.
    pub fn end_run(&self, run: &Run, status: &str) -> Result<(), MlflowError> {
        self.post(
            "runs/update",
            &json!({ "run_id": run.id, "status": status, "end_time": now_ms() }),
        )
        .map(|_| ())
    }

    /// The run with id `id`.
    pub fn run(&self, id: &str) -> Result<Run, MlflowError> {
        let v = self.get("runs/get", &[("run_id", id)])?;
        let info = &v["run"]["info"];
        Ok(Run {
            id: id.to_owned(),
            experiment: info["experiment_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            artifact_uri: info["artifact_uri"].as_str().unwrap_or_default().to_owned(),
        })
    }
}

impl Metric {
    /// A summary figure: step 0, stamped now.
    pub fn summary(key: impl Into<String>, value: f64) -> Self {
        Self {
            key: key.into(),
            value,
            step: 0,
            timestamp: now_ms(),
        }
    }

    /// A summary figure and, when there is one, its interval as `key.low` and `key.high`.
    pub fn with_interval(key: &str, value: f64, interval: Option<(f64, f64)>) -> Vec<Self> {
        let mut out = vec![Self::summary(key, value)];
        if let Some((lo, hi)) = interval {
            out.push(Self::summary(format!("{key}.low"), lo));
            out.push(Self::summary(format!("{key}.high"), hi));
        }
        out
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The tags every Bazaar run carries: its version, and the commit it was built from where
/// the build knew it.
pub fn tags() -> Vec<(String, String)> {
    let mut t = vec![
        (
            "bazaar.version".to_owned(),
            env!("CARGO_PKG_VERSION").to_owned(),
        ),
        ("mlflow.source.name".to_owned(), "bazaar".to_owned()),
        ("mlflow.source.type".to_owned(), "JOB".to_owned()),
    ];
    if let Some(commit) = option_env!("BAZAAR_GIT_COMMIT") {
        t.push(("mlflow.source.git.commit".to_owned(), commit.to_owned()));
    }
    t
}

/// A scenario's params: its fingerprint, seed, dates and size, every behaviour it enables
/// with its settings, and its models' cards and files.
pub fn params(scenario: &crate::scenario::Scenario) -> Vec<(String, String)> {
    let mut p = vec![
        ("scenario".to_owned(), scenario.name.clone()),
        (
            "scenario_hash".to_owned(),
            crate::checkpoint::fingerprint(scenario),
        ),
        ("seed".to_owned(), scenario.seed.to_string()),
        ("start".to_owned(), scenario.start.to_string()),
        ("days".to_owned(), scenario.days.to_string()),
        ("customers".to_owned(), scenario.customers().to_string()),
    ];
    for (persona, count) in scenario.personas.iter().zip(&scenario.population) {
        p.push((format!("customers.{}", persona.name), count.to_string()));
    }
    let systems: Vec<&str> = scenario.systems.iter().map(|e| e.name).collect();
    p.push(("systems".to_owned(), systems.join(",")));
    for e in &scenario.systems {
        p.push((format!("system.{}", e.name), e.plugin.settings()));
    }
    if let Some(m) = &scenario.churn_model {
        let mut model = |key: &str, spec: &Path| {
            p.push((format!("model.{key}"), spec.display().to_string()));
            p.push((format!("model.{key}.hash"), file_hash(spec)));
        };
        model("churn", &m.spec);
        if let Some(s) = &m.spend {
            model("spend", &s.spec);
        }
        p.push(("model.churn.mode".to_owned(), format!("{:?}", m.mode)));
    }
    p
}

/// A model card's version and the BLAKE3 hash of the card and the ONNX file it names (as
/// the checkpoint fingerprint hashes them).
fn file_hash(card: &Path) -> String {
    let version = std::fs::read(card)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v["version"].as_u64())
        .unwrap_or(0);
    let mut h = blake3::Hasher::new();
    crate::checkpoint::hash_model(&mut h, card);
    format!("v{version} {}", h.finalize().to_hex())
}

/// A finished output folder's metrics: each day's revenue, transactions, units, churned and
/// active customers, overall and per persona (`revenue.premium`), stepped by day; and the
/// summary's totals at step 0.
pub fn folder_metrics(dir: &Path) -> Result<Vec<Metric>, MlflowError> {
    let read = |name: &str| -> Result<Value, MlflowError> {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(|e| MlflowError::File {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| MlflowError::File {
            path,
            reason: e.to_string(),
        })
    };
    let summary = read("summary.json")?;
    let aggregates = read("aggregates.json")?;
    let per = crate::report::currency(&summary).per_major() as f64;
    let personas: Vec<String> = aggregates["personas"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect();
    let mut out = Vec::new();
    for (step, day) in aggregates["days"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let timestamp =
            chrono::NaiveDate::parse_from_str(day["date"].as_str().unwrap_or(""), "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map_or(0, |t| t.and_utc().timestamp_millis());
        let mut push = |key: String, value: f64| {
            out.push(Metric {
                key,
                value,
                step: step as i64,
                timestamp,
            });
        };
        let mut all = [0.0f64; 5];
        for (p, name) in personas.iter().enumerate() {
            let cell = &day["personas"][p];
            let figures = [
                (
                    "revenue",
                    cell["revenue_paise"].as_f64().unwrap_or(0.0) / per,
                ),
                ("transactions", cell["transactions"].as_f64().unwrap_or(0.0)),
                ("units", cell["units"].as_f64().unwrap_or(0.0)),
                ("churned", day["churned"][p].as_f64().unwrap_or(0.0)),
                ("active", day["active"][p].as_f64().unwrap_or(0.0)),
            ];
            for (k, (metric, v)) in figures.into_iter().enumerate() {
                all[k] += v;
                push(format!("daily.{metric}.{name}"), v);
            }
        }
        for (metric, v) in ["revenue", "transactions", "units", "churned", "active"]
            .into_iter()
            .zip(all)
        {
            push(format!("daily.{metric}"), v);
        }
    }
    let totals = &summary["totals"];
    let end = out.last().map_or(0, |m| m.timestamp);
    let money = |k: &str| totals[k].as_f64().unwrap_or(0.0) / per;
    let count = |k: &str| totals[k].as_f64().unwrap_or(0.0);
    let mut finals = vec![
        ("revenue", money("revenue_paise")),
        ("transactions", count("transactions")),
        ("units", count("units")),
        ("visits", count("visits")),
        ("churned", count("churned")),
        ("acquired", count("acquired")),
        ("retention_offers", count("offers")),
        ("retention_cost", money("offer_cost_paise")),
        (
            "mean_basket",
            summary["mean_basket"].as_f64().unwrap_or(0.0),
        ),
    ];
    if count("cost_paise") > 0.0 {
        finals.push((
            "margin",
            money("revenue_paise") - money("cost_paise") - money("offer_cost_paise"),
        ));
    }
    for (key, value) in finals {
        out.push(Metric {
            key: key.to_owned(),
            value,
            step: 0,
            timestamp: end,
        });
    }
    Ok(out)
}

/// The files of a finished output folder logged as artifacts: the summary, the report and
/// its charts, the manifest, and the drift figures where there are any.
pub fn folder_artifacts(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = [
        "summary.json",
        "manifest.json",
        "report.html",
        "insights.md",
        "data_quality.json",
        crate::ml::drift::DRIFT_FILE,
    ]
    .into_iter()
    .filter(|f| dir.join(f).is_file())
    .map(str::to_owned)
    .collect();
    if let Ok(entries) = std::fs::read_dir(dir.join("charts")) {
        let mut charts: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str().map(|n| format!("charts/{n}")))
            .collect();
        charts.sort();
        files.extend(charts);
    }
    files
}

/// Logs a finished output folder into `run` (metrics and artifacts) and ends it.
pub fn log_folder(client: &Client, run: &Run, dir: &Path) -> Result<(), MlflowError> {
    let files = folder_artifacts(dir);
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    finish_with(client, run, dir, &files, &folder_metrics(dir)?)
}

/// A parent run for an experiment or a sweep in the experiment named after its base
/// scenario, started before anything runs, with the design's params.
pub fn start_parent(
    client: &Client,
    experiment: &str,
    name: &str,
    params: &[(String, String)],
) -> Result<Run, MlflowError> {
    let id = client.experiment(experiment)?;
    let run = client.start_run(&id, name, &tags(), None)?;
    client.log(&run, params, &[])?;
    Ok(run)
}

/// A child run of `parent` for one arm or point in one replication: its params, every
/// metric at step 0 and its daily series stepped by day.
fn child(
    client: &Client,
    parent: &Run,
    name: &str,
    params: &[(String, String)],
    metrics: &std::collections::BTreeMap<String, f64>,
    daily: &std::collections::BTreeMap<String, Vec<f64>>,
) -> Result<(), MlflowError> {
    let run = client.start_run(&parent.experiment, name, &tags(), Some(parent))?;
    let stamp = now_ms();
    let mut values: Vec<Metric> = metrics
        .iter()
        .map(|(key, &value)| Metric {
            key: key.clone(),
            value,
            step: 0,
            timestamp: stamp,
        })
        .collect();
    for (key, series) in daily {
        values.extend(series.iter().enumerate().map(|(day, &value)| Metric {
            key: format!("daily.{key}"),
            value,
            step: day as i64,
            timestamp: stamp,
        }));
    }
    if let Err(e) = client.log(&run, params, &values) {
        let _ = client.end_run(&run, "FAILED");
        return Err(e);
    }
    client.end_run(&run, "FINISHED")
}

/// Logs `metrics` to `run`, uploads the named files of `dir`, then ends it.
fn finish_with(
    client: &Client,
    run: &Run,
    dir: &Path,
    files: &[&str],
    metrics: &[Metric],
) -> Result<(), MlflowError> {
    client.log(run, &[], metrics)?;
    for name in files {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(|e| MlflowError::File {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        client.upload(run, name, &bytes)?;
    }
    client.end_run(run, "FINISHED")
}

/// Logs a finished A/B experiment: a child run per arm and replication (params arm,
/// replication, seed; every metric, and the daily series), and on the parent each arm's
/// overall differences from the base with their interval, and experiment.json and .html.
pub fn log_experiment(
    client: &Client,
    parent: &Run,
    outcome: &crate::experiment::Outcome,
    dir: &Path,
) -> Result<(), MlflowError> {
    for m in &outcome.measured {
        let params = [
            ("arm".to_owned(), m.arm.clone()),
            ("replication".to_owned(), m.replication.to_string()),
            ("seed".to_owned(), m.seed.to_string()),
        ];
        let name = format!("{} r{}", m.arm, m.replication);
        child(client, parent, &name, &params, &m.metrics, &m.daily)?;
    }
    let metrics: Vec<Metric> = outcome
        .differences
        .iter()
        .filter(|d| !crate::experiment::is_per_persona(&outcome.personas, &d.metric))
        .flat_map(|d| {
            let key = format!("difference.{}.{}", d.arm, d.metric);
            Metric::with_interval(&key, d.difference, d.interval)
        })
        .collect();
    finish_with(
        client,
        parent,
        dir,
        &["experiment.json", "experiment.html"],
        &metrics,
    )
}

/// Logs a finished sweep: a child run per point and replication (params point,
/// replication, seed and the point's parameter values; every metric), and sweep.json,
/// sweep.html and sweep.parquet on the parent.
pub fn log_sweep(
    client: &Client,
    parent: &Run,
    outcome: &crate::sweep::Outcome,
    dir: &Path,
) -> Result<(), MlflowError> {
    for row in &outcome.rows {
        let mut params = vec![
            ("point".to_owned(), row.point.to_string()),
            ("replication".to_owned(), row.replication.to_string()),
            ("seed".to_owned(), row.seed.to_string()),
        ];
        if let Some(point) = outcome.points.get(row.point as usize) {
            for (p, v) in outcome.parameters.iter().zip(&point.values) {
                params.push((p.name.clone(), v.to_ron()));
            }
        }
        let name = format!("point {} r{}", row.point, row.replication);
        child(
            client,
            parent,
            &name,
            &params,
            &row.metrics,
            &Default::default(),
        )?;
    }
    finish_with(
        client,
        parent,
        dir,
        &["sweep.json", "sweep.html", "sweep.parquet"],
        &[],
    )
}

impl Client {
    /// GET an artifact through the server's proxy: `root` is an `mlflow-artifacts:` URI.
    fn download(&self, root: &str, file: &str) -> Result<Vec<u8>, MlflowError> {
        let rest = root.strip_prefix("mlflow-artifacts:").ok_or_else(|| MlflowError::Uri {
            uri: root.to_owned(),
            reason: "the model's files are where Bazaar cannot read them through the server".into(),
            hint: "register models with `bazaar models register`, which keeps them on the server",
        })?;
        let url = self.artifact_url(rest, file);
        let mut response = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| MlflowError::Unreachable {
                uri: self.base.clone(),
                reason: e.to_string(),
            })?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(MlflowError::Api {
                endpoint: format!("artifact {file}"),
                status,
                message: response.body_mut().read_to_string().unwrap_or_default(),
            });
        }
        response
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .map_err(|e| MlflowError::Unreachable {
                uri: self.base.clone(),
                reason: e.to_string(),
            })
    }
}

/// The model registry: Bazaar's models as MLflow registered models, their versions carrying
/// the model card, a `champion` alias that scenarios name as `models:/churn@champion`, and
/// promotions and rollbacks recorded with their reasons.
pub mod registry {
    use std::path::{Path, PathBuf};

    use serde_json::{Value, json};

    use super::{Client, MlflowError, tags};

    /// The alias scenarios run with.
    pub const CHAMPION: &str = "champion";
    /// The experiment that holds the runs registering models.
    const EXPERIMENT: &str = "bazaar-models";
    /// The registered model's tag keeping every promotion and rollback, newest last.
    const HISTORY: &str = "bazaar.champions";

    /// A registered version.
    #[derive(Debug, Clone)]
    pub struct Version {
        /// Its number.
        pub version: String,
        /// Where its files are.
        pub source: String,
        /// Its card's file name.
        pub card: String,
    }

    fn version_of(v: &Value) -> Version {
        let mv = &v["model_version"];
        let card = mv["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["key"] == "bazaar.card")
            .and_then(|t| t["value"].as_str())
            .unwrap_or("model.json")
            .to_owned();
        Version {
            version: mv["version"].as_str().unwrap_or_default().to_owned(),
            source: mv["source"].as_str().unwrap_or_default().to_owned(),
            card,
        }
    }

    /// Registers the model card at `card` (and the ONNX file and golden rows beside it) as
    /// a new version of `name`: the files go to a run of the `bazaar-models` experiment, the
    /// version points at them and carries the card's version and held-out metrics as tags.
    pub fn register(
        client: &Client,
        name: &str,
        card: &Path,
        description: &str,
    ) -> Result<Version, MlflowError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| MlflowError::File {
                path: p.to_path_buf(),
                reason: e.to_string(),
            })
        };
        let bytes = read(card)?;
        let spec: Value = serde_json::from_slice(&bytes).map_err(|e| MlflowError::File {
            path: card.to_path_buf(),
            reason: e.to_string(),
        })?;
        let dir = card.parent().unwrap_or(Path::new("."));
        let file_name = |p: &Path| {
            p.file_name()
                .map_or(String::new(), |n| n.to_string_lossy().into_owned())
        };
        let card_name = file_name(card);
        let onnx = spec["model"].as_str().unwrap_or_default().to_owned();
        let experiment = client.experiment(EXPERIMENT)?;
        let run = client.start_run(&experiment, &format!("register {name}"), &tags(), None)?;
        let uploaded = (|| {
            client.upload(&run, &format!("model/{card_name}"), &bytes)?;
            client.upload(&run, &format!("model/{onnx}"), &read(&dir.join(&onnx))?)?;
            let golden = format!("{}_golden.csv", card_name.trim_end_matches(".json"));
            if let Ok(g) = std::fs::read(dir.join(&golden)) {
                client.upload(&run, &format!("model/{golden}"), &g)?;
            }
            Ok(())
        })();
        if let Err(e) = uploaded {
            // Not left running: the version was never made.
            let _ = client.end_run(&run, "FAILED");
            return Err(e);
        }
        client.end_run(&run, "FINISHED")?;
        match client.post("registered-models/create", &json!({ "name": name })) {
            Ok(_) | Err(MlflowError::Api { status: 400, .. }) => {}
            Err(e) => return Err(e),
        }
        let mut version_tags = vec![
            json!({ "key": "bazaar.card", "value": card_name }),
            json!({ "key": "bazaar.card_version", "value": spec["version"].to_string() }),
        ];
        if let Some(m) = spec["metrics_held_out"].as_object() {
            for key in ["auc", "log_loss", "mae", "r2"] {
                if let Some(v) = m.get(key) {
                    version_tags
                        .push(json!({ "key": format!("held_out.{key}"), "value": v.to_string() }));
                }
            }
        }
        let v = client.post(
            "model-versions/create",
            &json!({
                "name": name,
                "source": format!("{}/model", run.artifact_uri),
                "run_id": run.id,
                "description": description,
                "tags": version_tags,
            }),
        )?;
        Ok(version_of(&v))
    }

    /// Every promotion and rollback of `name`'s champion: (version, when, what, why).
    pub fn history(client: &Client, name: &str) -> Result<Vec<Value>, MlflowError> {
        let v = client.get("registered-models/get", &[("name", name)])?;
        Ok(v["registered_model"]["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["key"] == HISTORY)
            .and_then(|t| t["value"].as_str())
            .and_then(|s| serde_json::from_str::<Vec<Value>>(s).ok())
            .unwrap_or_default())
    }

    /// MLflow's longest registry tag value.
    const MAX_TAG: usize = 5000;

    fn record(
        client: &Client,
        name: &str,
        version: &str,
        what: &str,
        why: &str,
    ) -> Result<(), MlflowError> {
        let why: String = why.chars().take(500).collect();
        let mut h = history(client, name)?;
        let when = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        h.push(json!({ "version": version, "when": when, "what": what, "why": why }));
        // The newest entries that fit one tag.
        let mut kept = Value::Array(h.clone()).to_string();
        while kept.len() > MAX_TAG && h.len() > 1 {
            h.remove(0);
            kept = Value::Array(h.clone()).to_string();
        }
        // The record first, the alias last: a failure leaves the champion where it was.
        client.post(
            "model-versions/set-tag",
            &json!({ "name": name, "version": version, "key": format!("bazaar.{what}"), "value": format!("{when}: {why}") }),
        )?;
        client.post(
            "registered-models/set-tag",
            &json!({ "name": name, "key": HISTORY, "value": kept }),
        )?;
        client.post(
            "registered-models/alias",
            &json!({ "name": name, "alias": CHAMPION, "version": version }),
        )?;
        Ok(())
    }

    /// Moves `name`'s champion alias to `version`, recording why.
    pub fn promote(
        client: &Client,
        name: &str,
        version: &str,
        why: &str,
    ) -> Result<(), MlflowError> {
        // The version must exist.
        client.get(
            "model-versions/get",
            &[("name", name), ("version", version)],
        )?;
        record(client, name, version, "promoted", why)
    }

    /// Moves `name`'s champion alias back to the version it had before its last change,
    /// recording why; the version it rolled back to.
    pub fn rollback(client: &Client, name: &str, why: &str) -> Result<String, MlflowError> {
        let h = history(client, name)?;
        let current = champion(client, name)?.version;
        // The champion before the current one: walk back past every entry naming it.
        let previous = h
            .iter()
            .rev()
            .filter_map(|e| e["version"].as_str())
            .find(|v| *v != current)
            .map(str::to_owned)
            .ok_or_else(|| MlflowError::Api {
                endpoint: "rollback".into(),
                status: 409,
                message: format!("{name}'s champion has no earlier version to go back to"),
            })?;
        record(client, name, &previous, "rolled back", why)?;
        Ok(previous)
    }

    /// The version `name`'s champion alias points at.
    pub fn champion(client: &Client, name: &str) -> Result<Version, MlflowError> {
        resolve(client, name, &format!("@{CHAMPION}"))
    }

    /// A version by `@alias` or number.
    fn resolve(client: &Client, name: &str, which: &str) -> Result<Version, MlflowError> {
        let v = match which.strip_prefix('@') {
            Some(alias) => client.get(
                "registered-models/alias",
                &[("name", name), ("alias", alias)],
            )?,
            None => client.get("model-versions/get", &[("name", name), ("version", which)])?,
        };
        Ok(version_of(&v))
    }

    /// Parses `models:/NAME@ALIAS` or `models:/NAME/VERSION` into the name and `@ALIAS` or
    /// the version number.
    pub fn parse(uri: &str) -> Option<(String, String)> {
        let rest = uri.strip_prefix("models:/")?;
        if let Some((name, alias)) = rest.split_once('@') {
            return (!name.is_empty() && !alias.is_empty())
                .then(|| (name.to_owned(), format!("@{alias}")));
        }
        let (name, version) = rest.split_once('/')?;
        (!name.is_empty() && version.parse::<u64>().is_ok())
            .then(|| (name.to_owned(), version.to_owned()))
    }

    /// The tracking server scenarios' `models:/` URIs are fetched from when the command
    /// line named one (`--mlflow`); else `MLFLOW_TRACKING_URI`.
    static SERVER: std::sync::OnceLock<String> = std::sync::OnceLock::new();

    /// Makes `uri` the registry `models:/` URIs are fetched from (the first call wins).
    pub fn set_server(uri: &str) {
        let _ = SERVER.set(uri.to_owned());
    }

    /// The local card of the model a `models:/` URI names, fetched from the registry (see
    /// [`set_server`]) into Bazaar's cache unless it is there.
    pub fn fetch(uri: &str) -> Result<PathBuf, String> {
        let tracking = match SERVER.get() {
            Some(s) => s.clone(),
            None => std::env::var("MLFLOW_TRACKING_URI").map_err(|_| {
                format!(
                    "`{uri}` names a registered model, and neither --mlflow nor MLFLOW_TRACKING_URI names a registry"
                )
            })?,
        };
        fetch_from(&tracking, uri)
    }

    /// The local card of the model a `models:/` URI names on the registry at `tracking`,
    /// cached in `models/SERVER/NAME/VERSION/` (SERVER a hash of its address): a cached
    /// version is used when the registry says it is the same (the run its files came from),
    /// and when the registry cannot be reached and the URI names the version by number.
    pub fn fetch_from(tracking: &str, uri: &str) -> Result<PathBuf, String> {
        let (name, which) = parse(uri).ok_or_else(|| {
            format!("`{uri}` is not a model URI: write models:/NAME@ALIAS or models:/NAME/VERSION")
        })?;
        let server = blake3::hash(tracking.trim_end_matches('/').as_bytes()).to_hex();
        let cache = crate::ml::runtime::cache_dir()
            .join("models")
            .join(&server.as_str()[..16])
            .join(&name);
        let client = Client::new(tracking).map_err(|e| e.to_string())?;
        let version = match resolve(&client, &name, &which) {
            Ok(v) => v,
            Err(e @ MlflowError::Unreachable { .. }) if !which.starts_with('@') => {
                return cached(&cache.join(&which))
                    .map(|(card, _)| card)
                    .ok_or_else(|| e.to_string());
            }
            Err(e) => return Err(e.to_string()),
        };
        let dir = cache.join(&version.version);
        if let Some((card, source)) = cached(&dir)
            && source == version.source
        {
            return Ok(card);
        }
        let card_bytes = client
            .download(&version.source, &version.card)
            .map_err(|e| e.to_string())?;
        let spec: Value =
            serde_json::from_slice(&card_bytes).map_err(|e| format!("{}: {e}", version.card))?;
        let onnx = spec["model"].as_str().unwrap_or_default();
        // Names from the server become paths in the cache: plain file names only.
        let plain = |f: &str| !f.is_empty() && !f.starts_with('.') && !f.contains(['/', '\\']);
        if !plain(onnx) || !plain(&version.card) {
            return Err(format!(
                "the registry names files `{}` and `{onnx}` for {uri}: not plain file names",
                version.card
            ));
        }
        let onnx_bytes = client
            .download(&version.source, onnx)
            .map_err(|e| e.to_string())?;
        // Written beside and renamed, the record of what is cached last: a cached card
        // always has its model, and names where it came from.
        let put = |file: &str, bytes: &[u8]| -> Result<(), String> {
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            let tmp = dir.join(format!(".{file}.{}", std::process::id()));
            std::fs::write(&tmp, bytes).map_err(|e| e.to_string())?;
            std::fs::rename(&tmp, dir.join(file)).map_err(|e| e.to_string())
        };
        put(onnx, &onnx_bytes)?;
        put(&version.card, &card_bytes)?;
        put(
            "card",
            serde_json::to_string(&json!({ "card": version.card, "source": version.source }))
                .map_err(|e| e.to_string())?
                .as_bytes(),
        )?;
        Ok(dir.join(&version.card))
    }

    /// Sets a tag on a version: what was decided about it and why (not a move of the
    /// champion, which [`promote`] records).
    pub fn annotate(
        client: &Client,
        name: &str,
        version: &str,
        key: &str,
        why: &str,
    ) -> Result<(), MlflowError> {
        let why: String = why.chars().take(MAX_TAG).collect();
        client.post(
            "model-versions/set-tag",
            &json!({ "name": name, "version": version, "key": key, "value": why }),
        )?;
        Ok(())
    }

    /// The card in a cached version's folder, if it is whole, and the source it came from.
    fn cached(dir: &Path) -> Option<(PathBuf, String)> {
        let record: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("card")).ok()?).ok()?;
        let card = dir.join(record["card"].as_str()?);
        let source = record["source"].as_str()?.to_owned();
        card.is_file().then_some((card, source))
    }
}
