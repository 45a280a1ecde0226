//! The server's routes: the page and its assets, the folders' JSON API, SQL and its
//! downloads, manifest-listed files, and the live run's server-sent events.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State as Shared};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::folders::Contents;
use super::query::{Answer, QueryError};
use super::views::{self, Filters};
use super::{Opened, State};

/// Rows a view's query may return (views aggregate; more means a view is wrong).
const VIEW_ROWS: usize = 100_000;
/// Rows the SQL tab shows.
const SHOWN_ROWS: usize = 1_000;
/// Rows a download may hold.
const DOWNLOAD_ROWS: usize = 1_000_000;

/// An error as the API answers it: a status and a message, as JSON.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl ApiError {
    pub(crate) fn not_found(m: String) -> Self {
        Self(StatusCode::NOT_FOUND, m)
    }
    pub(crate) fn unavailable(m: String) -> Self {
        Self(StatusCode::SERVICE_UNAVAILABLE, m)
    }
    fn bad(m: String) -> Self {
        Self(StatusCode::BAD_REQUEST, m)
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Timeout(_) => Self(StatusCode::REQUEST_TIMEOUT, e.to_string()),
            QueryError::Refused(_) => Self::bad(e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(json!({ "error": self.1 }))).into_response()
    }
}

type Api = Result<axum::Json<Value>, ApiError>;

/// The server's routes over `state`.
pub(crate) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/assets/{name}", get(asset))
        .route("/api/folders", get(list))
        .route("/api/f/{id}/meta", get(meta))
        .route("/api/f/{id}/view/{view}", get(view))
        .route("/api/f/{id}/customer/{customer}", get(customer))
        .route("/api/f/{id}/sql", post(sql))
        .route("/api/f/{id}/download", get(download))
        .route("/api/f/{id}/experiment", get(experiment))
        .route("/api/f/{id}/arms/{a}/{b}", get(arms))
        .route("/api/compare/{a}/{b}/{view}", get(compare))
        .route("/api/live", get(live))
        .route("/f/{id}/file/{*name}", get(file))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// Refuses a request whose `Host` is not a loopback name while bound to loopback (DNS
/// rebinding), and marks every answer as not to be sniffed or framed elsewhere.
async fn guard(Shared(state): Shared<Arc<State>>, request: Request, next: Next) -> Response {
    if state.loopback {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let name = host
            .rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map_or(host, |(name, _)| name);
        if !["localhost", "127.0.0.1", "[::1]"].contains(&name) {
            return ApiError(
                StatusCode::MISDIRECTED_REQUEST,
                format!("this server answers to localhost only, not to `{host}`"),
            )
            .into_response();
        }
    }
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    response
}

async fn index() -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-cache")],
        Html(super::assets::INDEX),
    )
}

async fn asset(Path(name): Path<String>) -> Response {
    match super::assets::find(&name) {
        Some(a) => (
            [
                (header::CONTENT_TYPE, a.content_type),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            a.bytes,
        )
            .into_response(),
        None => ApiError::not_found(format!("no asset `{name}`")).into_response(),
    }
}

/// Every folder: what it is, or why it cannot be shown yet.
async fn list(Shared(state): Shared<Arc<State>>) -> Api {
    let folders: Vec<Value> = state
        .folders
        .iter()
        .map(|f| match f.contents() {
            Contents::Output(o) => json!({
                "id": f.id,
                "path": f.given.display().to_string(),
                "ready": true,
                "experiment": o.lists("experiment.json"),
                "scenario": o.manifest.scenario,
                "seed": o.manifest.seed,
                "tables": o.tables,
                "files": o.manifest.files.iter().map(|f| &f.name).collect::<Vec<_>>(),
            }),
            Contents::Unavailable(why) => json!({
                "id": f.id,
                "path": f.given.display().to_string(),
                "ready": false,
                "message": why,
            }),
        })
        .collect();
    let live = state
        .live
        .as_ref()
        .map(|h| json!({ "folder": h.folder, "scenario": h.scenario }));
    Ok(axum::Json(json!({ "folders": folders, "live": live })))
}

async fn meta(Shared(state): Shared<Arc<State>>, Path(id): Path<String>) -> Api {
    let o = state.open(&id).await?;
    let summary: Value = super::folders::file_inside(
        state.folder(&id).expect("opened folders exist"),
        &o.output,
        "summary.json",
    )
    .and_then(|p| std::fs::read(p).ok())
    .and_then(|b| serde_json::from_slice(&b).ok())
    .unwrap_or(Value::Null);
    Ok(axum::Json(json!({
        "id": id,
        "scenario": o.output.manifest.scenario,
        "seed": o.output.manifest.seed,
        "meta": o.meta,
        "tables": o.engine.tables,
        "summary": summary,
        "currency": o.output.currency,
        "views": views::VIEWS,
        "report": o.output.lists("report.html"),
        "experiment": o.experiment.is_some(),
        "design": o.experiment.as_deref().map(super::experiment::design),
    })))
}

/// The experiment an `ab` folder holds.
fn outcome(o: &Opened, id: &str) -> Result<Arc<crate::experiment::Outcome>, ApiError> {
    o.experiment.clone().ok_or_else(|| {
        ApiError::not_found(format!(
            "`{id}` is a run's folder, not an experiment's (`bazaar ab` writes those)"
        ))
    })
}

/// Every arm against the base, under the filters.
async fn experiment(
    Shared(state): Shared<Arc<State>>,
    Path(id): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Api {
    let o = state.open(&id).await?;
    let e = outcome(&o, &id)?;
    let filters = Filters::parse(&q, &o.meta).map_err(ApiError::bad)?;
    Ok(axum::Json(super::experiment::summary(
        &e, &filters, &o.meta,
    )))
}

/// Two arms of an experiment side by side on one daily metric (`metric`, revenue unless
/// given), under the filters.
async fn arms(
    Shared(state): Shared<Arc<State>>,
    Path((id, a, b)): Path<(String, String, String)>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Api {
    use super::experiment::ArmsError;
    let o = state.open(&id).await?;
    let e = outcome(&o, &id)?;
    let filters = Filters::parse(&q, &o.meta).map_err(ApiError::bad)?;
    let metric = q.get("metric").map_or("revenue", String::as_str);
    super::experiment::arms(&e, &a, &b, metric, &filters, &o.meta)
        .map(axum::Json)
        .map_err(|err| match err {
            ArmsError::NoArm(m) => ApiError::not_found(m),
            ArmsError::NoMetric(m) => ApiError::bad(m),
        })
}

fn answer_json(sql: &str, a: &Answer) -> Result<Value, ApiError> {
    Ok(json!({
        "sql": sql,
        "columns": a.schema.fields().iter().map(|f| json!({"name": f.name(), "type": f.data_type().to_string()})).collect::<Vec<_>>(),
        "rows": a.json_rows()?,
        "truncated": a.truncated,
        "ms": a.elapsed.as_secs_f64() * 1e3,
    }))
}

/// Runs a view's queries on an opened folder.
async fn run_view(o: &Opened, name: &str, filters: &Filters) -> Result<Value, ApiError> {
    let plan = views::plan(name, filters, &o.meta, &o.engine.tables).ok_or_else(|| {
        let needs = views::needs(name);
        ApiError::not_found(if o.experiment.is_some() {
            format!(
                "an experiment's folder keeps its arms' figures, not their tables: it has the experiment and arms views, not `{name}`"
            )
        } else if needs.is_empty() {
            format!("this folder has no view `{name}`")
        } else {
            format!(
                "the view `{name}` reads {}, which this folder lacks: a run by an older Bazaar? Run it again to get them",
                needs.join(" and ")
            )
        })
    })?;
    let mut answers = serde_json::Map::new();
    for (key, sql) in &plan.queries {
        let a = o.engine.query(sql, VIEW_ROWS).await?;
        answers.insert(key.clone(), answer_json(sql, &a)?);
    }
    Ok(json!({ "view": name, "queries": answers, "ignored": plan.ignored, "filters": filters }))
}

async fn view(
    Shared(state): Shared<Arc<State>>,
    Path((id, name)): Path<(String, String)>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Api {
    let o = state.open(&id).await?;
    let filters = Filters::parse(&q, &o.meta).map_err(ApiError::bad)?;
    Ok(axum::Json(run_view(&o, &name, &filters).await?))
}

async fn compare(
    Shared(state): Shared<Arc<State>>,
    Path((a, b, name)): Path<(String, String, String)>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Api {
    let (oa, ob) = (state.open(&a).await?, state.open(&b).await?);
    let fa = Filters::parse(&q, &oa.meta).map_err(|e| ApiError::bad(format!("{a}: {e}")))?;
    let fb = Filters::parse(&q, &ob.meta).map_err(|e| ApiError::bad(format!("{b}: {e}")))?;
    Ok(axum::Json(json!({
        "a": run_view(&oa, &name, &fa).await?,
        "b": run_view(&ob, &name, &fb).await?,
    })))
}

/// One customer: attributes, baskets with their lines, and churn events.
async fn customer(
    Shared(state): Shared<Arc<State>>,
    Path((id, customer)): Path<(String, String)>,
) -> Api {
    let o = state.open(&id).await?;
    let c: u32 = customer.parse().map_err(|_| {
        ApiError::bad(format!(
            "`{customer}` is not a customer id (a whole number)"
        ))
    })?;
    let has = |t: &str| o.engine.tables.iter().any(|x| x.name == t);
    let mut out = serde_json::Map::new();
    for (key, table, sql) in [
        (
            "customer",
            "customers",
            format!("SELECT * FROM customers WHERE customer_id = {c}"),
        ),
        (
            "transactions",
            "transactions",
            format!("SELECT * FROM transactions WHERE customer_id = {c} ORDER BY timestamp"),
        ),
        (
            "churn",
            "churn_events",
            format!("SELECT * FROM churn_events WHERE customer_id = {c} ORDER BY date"),
        ),
    ] {
        if has(table) {
            let a = o.engine.query(&sql, VIEW_ROWS).await?;
            out.insert(key.into(), answer_json(&sql, &a)?);
        }
    }
    // Lines by the baskets' ids: row groups whose id range misses them are not read.
    let ids: Vec<String> = out
        .get("transactions")
        .and_then(|t| t["rows"].as_array())
        .map(|rows| {
            rows.iter()
                .filter_map(|r| r.get("transaction_id").map(Value::to_string))
                .collect()
        })
        .unwrap_or_default();
    if has("line_items") && !ids.is_empty() {
        let sql = format!(
            "SELECT * FROM line_items WHERE transaction_id IN ({}) ORDER BY transaction_id, line",
            ids.join(", ")
        );
        let a = o.engine.query(&sql, VIEW_ROWS).await?;
        out.insert("lines".into(), answer_json(&sql, &a)?);
    }
    Ok(axum::Json(Value::Object(out)))
}

#[derive(serde::Deserialize)]
struct SqlBody {
    sql: String,
}

async fn sql(
    Shared(state): Shared<Arc<State>>,
    Path(id): Path<String>,
    axum::Json(body): axum::Json<SqlBody>,
) -> Api {
    let o = state.open(&id).await?;
    let a = o.engine.query_isolated(&body.sql, SHOWN_ROWS).await?;
    Ok(axum::Json(answer_json(&body.sql, &a)?))
}

async fn download(
    Shared(state): Shared<Arc<State>>,
    Path(id): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    let o = state.open(&id).await?;
    let sql = q
        .get("sql")
        .ok_or_else(|| ApiError::bad("give the query as `sql=`".into()))?;
    let format = q.get("format").map_or("csv", String::as_str);
    let a = o.engine.query_isolated(sql, DOWNLOAD_ROWS).await?;
    let (bytes, content_type, ext) = match format {
        "csv" => (a.csv()?, "text/csv; charset=utf-8", "csv"),
        "parquet" => (a.parquet()?, "application/vnd.apache.parquet", "parquet"),
        other => {
            return Err(ApiError::bad(format!(
                "`format={other}`: give csv or parquet"
            )));
        }
    };
    let mut r = Response::new(Body::from(bytes));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{id}-query.{ext}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert("x-bazaar-rows", HeaderValue::from(a.rows));
    h.insert(
        "x-bazaar-truncated",
        HeaderValue::from_static(if a.truncated { "true" } else { "false" }),
    );
    Ok(r)
}

/// A file the folder's manifest lists (the report, its charts, the JSON files).
async fn file(
    Shared(state): Shared<Arc<State>>,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let folder = state
        .folder(&id)
        .ok_or_else(|| ApiError::not_found(format!("no folder `{id}` is served")))?;
    let Contents::Output(o) = folder.contents() else {
        return Err(ApiError::unavailable(format!(
            "{} is not finished",
            folder.given.display()
        )));
    };
    let path = super::folders::file_inside(folder, &o, &name).ok_or_else(|| {
        ApiError::not_found(format!("`{name}` is not a file of this folder's manifest"))
    })?;
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|e| ApiError::unavailable(format!("cannot read {name}: {e}")))?;
    let ext = name.rsplit('.').next().unwrap_or("");
    let content_type = match ext {
        "html" => "text/html; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "json" => "application/json",
        "csv" => "text/csv; charset=utf-8",
        "md" => "text/markdown; charset=utf-8",
        _ => "application/octet-stream",
    };
    Ok(([(header::CONTENT_TYPE, content_type)], bytes).into_response())
}

/// The live run's events, as server-sent events named by their kind.
async fn live(Shared(state): Shared<Arc<State>>) -> Result<Response, ApiError> {
    let hub = state.live.clone().ok_or_else(|| {
        ApiError::not_found(
            "no run is going on here: live events come with `bazaar run --serve`".into(),
        )
    })?;
    let (past, rx) = hub.subscribe();
    let event = |json: &str| -> Result<Event, Infallible> {
        let kind = serde_json::from_str::<Value>(json)
            .ok()
            .and_then(|v| v.get("kind").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| "message".into());
        Ok(Event::default().event(kind).data(json))
    };
    let past = futures::stream::iter(past.into_iter().map(move |j| event(&j)));
    let coming = futures::stream::unfold(rx, move |mut rx| async move {
        match rx.recv().await {
            Ok(j) => Some((event(&j), rx)),
            // Events this watcher missed: told so, it reloads.
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                Some((Ok(Event::default().event("lagged").data("{}")), rx))
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => None,
        }
    });
    use futures::StreamExt;
    Ok(Sse::new(past.chain(coming))
        .keep_alive(KeepAlive::default())
        .into_response())
}
