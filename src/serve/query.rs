//! The dashboard's SQL engine: DataFusion over one folder's written tables (Parquet where
//! the run wrote it, else CSV), read-only, with a time, row and memory limit, and no way to
//! reach a file the folder's manifest does not list.
//!
//! DataFusion rather than DuckDB: it reads the tables with the same Arrow and Parquet
//! crates the writer uses (one copy of each in the binary), builds with cargo alone, and
//! refuses everything but queries with one switch (`SQLOptions`); DuckDB would add a C++
//! build of several minutes, a second Arrow and tens of megabytes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{
    CsvReadOptions, ParquetReadOptions, SQLOptions, SessionConfig, SessionContext,
};
use futures::StreamExt;

use super::folders::{Folder, Output, TableFile};

/// What one query may use.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Wall time from planning to the last row.
    pub timeout: Duration,
    /// Memory for the query's joins, sorts and aggregations (no spilling to disk).
    pub memory: usize,
    /// Threads a query runs on.
    pub threads: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            memory: 2 << 30,
            threads: std::thread::available_parallelism().map_or(1, usize::from),
        }
    }
}

/// The longest SQL text accepted.
pub const MAX_SQL_BYTES: usize = 64 << 10;

/// Refuses SQL longer than [`MAX_SQL_BYTES`].
fn check_length(sql: &str) -> Result<(), QueryError> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(QueryError::Refused(format!(
            "the query is {} bytes long; at most {MAX_SQL_BYTES} are accepted",
            sql.len()
        )));
    }
    Ok(())
}

/// Why a query gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The SQL was refused or failed (a syntax error, an unknown table, a write).
    #[error("{0}")]
    Refused(String),
    /// It ran past its time.
    #[error(
        "the query ran past its limit of {0:?} and was stopped: narrow it (a WHERE on date, a LIMIT)"
    )]
    Timeout(Duration),
}

impl From<datafusion::error::DataFusionError> for QueryError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        let text = e.to_string();
        // DataFusion's own wording for what SQLOptions refuses, said in terms of the tool.
        if text.contains("not supported")
            && (text.contains("DDL") || text.contains("DML") || text.contains("Statement"))
        {
            return Self::Refused(format!(
                "only queries are allowed here: the tables are read-only ({text})"
            ));
        }
        Self::Refused(text)
    }
}

/// A query's answer: its schema, the first rows, and whether there were more.
#[derive(Debug)]
pub struct Answer {
    /// The columns.
    pub schema: SchemaRef,
    /// Up to the row limit asked for.
    pub batches: Vec<RecordBatch>,
    /// Rows in `batches`.
    pub rows: usize,
    /// Whether the query had rows past the limit (they were not read).
    pub truncated: bool,
    /// Wall time.
    pub elapsed: Duration,
}

/// The threads queries run on, apart from the server's: a query that keeps its threads
/// busy past its time is abandoned there while the server goes on answering.
pub struct Workers(Option<tokio::runtime::Runtime>);

impl Workers {
    /// `threads` worker threads for queries.
    pub fn new(threads: usize) -> std::io::Result<Self> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("bazaar-query")
            .enable_all()
            .build()
            .map(|rt| Self(Some(rt)))
    }

    fn handle(&self) -> tokio::runtime::Handle {
        self.0
            .as_ref()
            .expect("the query threads live as long as the server")
            .handle()
            .clone()
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        // Dropped from within the server's runtime: never wait there.
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// One folder's tables, registered for SQL.
pub struct Engine {
    ctx: SessionContext,
    workers: tokio::runtime::Handle,
    limits: Limits,
    /// The folder, for a query run in a worker process ([`Engine::query_isolated`]).
    root: std::path::PathBuf,
    /// The tables registered, in the folder's order.
    pub tables: Vec<TableFile>,
}

/// A file's address for DataFusion: a `file://` URL, so no character of the path (`*`,
/// `?`, `[`) is read as a glob.
fn file_url(path: &std::path::Path) -> Result<String, QueryError> {
    url::Url::from_file_path(path)
        .map(String::from)
        .map_err(|()| QueryError::Refused(format!("{} cannot be opened", path.display())))
}

/// The Arrow schema a CSV table is read with: its declared columns, names as plain text.
fn csv_schema(t: &TableFile, minor_units: u8) -> Schema {
    Schema::new(
        t.columns
            .iter()
            .map(|(name, kind, null)| {
                let ty = match kind.arrow(minor_units) {
                    DataType::Dictionary(_, v) => *v,
                    ty => ty,
                };
                // Empty text is a value, not a null, in every column that has it.
                Field::new(name, ty, *null != crate::output::schema::Null::Never)
            })
            .collect::<Vec<_>>(),
    )
}

impl Engine {
    /// Registers the folder's tables, each from the file its manifest lists.
    pub async fn open(
        folder: &Folder,
        output: &Output,
        limits: Limits,
        workers: &Workers,
    ) -> Result<Self, QueryError> {
        let config = SessionConfig::new()
            .with_target_partitions(limits.threads.max(1))
            .with_information_schema(true)
            .set_bool("datafusion.execution.parquet.pushdown_filters", true)
            .set_bool("datafusion.execution.parquet.reorder_filters", true);
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(limits.memory, 1.0)
            .with_disk_manager_builder(
                DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
            )
            .build_arc()?;
        // No URL tables: `SELECT * FROM '/etc/passwd'` is an unknown table, not a file read.
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        let mut tables = Vec::new();
        for t in &output.tables {
            let Some(path) = super::folders::file_inside(folder, output, &t.file) else {
                continue;
            };
            let url = file_url(&path)?;
            if t.file.ends_with(".parquet") {
                ctx.register_parquet(&t.name, &url, ParquetReadOptions::default())
                    .await?;
            } else {
                let schema = csv_schema(t, output.currency.minor_units);
                ctx.register_csv(
                    &t.name,
                    &url,
                    CsvReadOptions::new().has_header(true).schema(&schema),
                )
                .await?;
            }
            tables.push(t.clone());
        }
        Ok(Self {
            ctx,
            workers: workers.handle(),
            limits,
            root: folder.root.clone(),
            tables,
        })
    }

    /// Runs one read-only query, reading at most `max_rows` rows of its answer.
    pub async fn query(&self, sql: &str, max_rows: usize) -> Result<Answer, QueryError> {
        check_length(sql)?;
        let started = Instant::now();
        let ctx = self.ctx.clone();
        let sql = sql.to_owned();
        // On the query threads: the server's own stay free to answer, and to stop it.
        let mut task = self.workers.spawn(async move {
            let options = SQLOptions::new()
                .with_allow_ddl(false)
                .with_allow_dml(false)
                .with_allow_statements(false);
            let df = ctx.sql_with_options(&sql, options).await?;
            let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
            let mut stream = df.execute_stream().await?;
            let mut batches = Vec::new();
            let mut rows = 0;
            let mut truncated = false;
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                if rows + batch.num_rows() > max_rows {
                    let keep = max_rows - rows;
                    truncated = true;
                    if keep > 0 {
                        batches.push(batch.slice(0, keep));
                        rows += keep;
                    }
                    break;
                }
                rows += batch.num_rows();
                batches.push(batch);
            }
            Ok::<_, QueryError>((schema, batches, rows, truncated))
        });
        let (schema, batches, rows, truncated) =
            match tokio::time::timeout(self.limits.timeout, &mut task).await {
                Ok(Ok(answer)) => answer?,
                Ok(Err(e)) => return Err(QueryError::Refused(format!("the query failed: {e}"))),
                Err(_) => {
                    task.abort();
                    return Err(QueryError::Timeout(self.limits.timeout));
                }
            };
        Ok(Answer {
            schema,
            batches,
            rows,
            truncated,
            elapsed: started.elapsed(),
        })
    }
}

/// The schema metadata key a worker's answer says it was cut at the row limit with.
const TRUNCATED: &str = "bazaar.truncated";

impl Engine {
    /// Runs an analyst's query in a worker process (`bazaar serve` itself, in its hidden
    /// `query-worker` mode), killed at the time limit. A query's threads can only be stopped
    /// where it yields, and a join whose filter drops every row may not yield for hours:
    /// in a process of its own it is stopped at once and takes nothing of the server's with
    /// it. The views' own queries, bounded by design, run in process ([`Engine::query`]).
    pub async fn query_isolated(&self, sql: &str, max_rows: usize) -> Result<Answer, QueryError> {
        use std::io::{Read, Write};
        use std::process::Stdio;
        check_length(sql)?;
        let started = Instant::now();
        let failed =
            |e: std::io::Error| QueryError::Refused(format!("the query worker failed: {e}"));
        let exe = std::env::current_exe().map_err(failed)?;
        let mut child = std::process::Command::new(exe)
            .arg("query-worker")
            .arg(&self.root)
            .args(["--rows", &max_rows.to_string()])
            .args(["--memory", &self.limits.memory.to_string()])
            .args(["--threads", &self.limits.threads.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(failed)?;
        let (mut stdin, mut stdout, mut stderr) = (
            child.stdin.take().expect("piped"),
            child.stdout.take().expect("piped"),
            child.stderr.take().expect("piped"),
        );
        let child = Arc::new(std::sync::Mutex::new(child));
        let waited = child.clone();
        let sql = sql.to_owned();
        // Blocking pipes on their own threads; the child is only locked to wait or kill.
        let talk = tokio::task::spawn_blocking(move || {
            let err = std::thread::spawn(move || {
                let mut err = Vec::new();
                let _ = stderr.read_to_end(&mut err);
                err
            });
            let written = stdin.write_all(sql.as_bytes());
            drop(stdin);
            let mut out = Vec::new();
            let read = stdout.read_to_end(&mut out);
            let err = err.join().unwrap_or_default();
            let status = waited.lock().expect("worker lock").wait();
            written.and(read)?;
            Ok::<_, std::io::Error>((status?, out, err))
        });
        let (status, out, err) = match tokio::time::timeout(self.limits.timeout, talk).await {
            Ok(joined) => joined
                .map_err(|e| QueryError::Refused(format!("the query worker failed: {e}")))?
                .map_err(failed)?,
            Err(_) => {
                // Killed, its pipes close and the blocking thread above reaps it.
                let _ = child.lock().expect("worker lock").kill();
                return Err(QueryError::Timeout(self.limits.timeout));
            }
        };
        if !status.success() {
            let message = String::from_utf8_lossy(&err).trim().to_owned();
            return Err(QueryError::Refused(if message.is_empty() {
                format!("the query worker failed ({status})")
            } else {
                message
            }));
        }
        let unreadable = |e: datafusion::arrow::error::ArrowError| {
            QueryError::Refused(format!("the query worker's answer is unreadable: {e}"))
        };
        let reader =
            datafusion::arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(out), None)
                .map_err(unreadable)?;
        let schema = reader.schema();
        let truncated = schema
            .metadata()
            .get(TRUNCATED)
            .is_some_and(|v| v == "true");
        let batches = reader.collect::<Result<Vec<_>, _>>().map_err(unreadable)?;
        let rows = batches.iter().map(RecordBatch::num_rows).sum();
        let mut fields = (*schema).clone();
        fields.metadata.remove(TRUNCATED);
        let schema = Arc::new(fields);
        let batches = batches
            .into_iter()
            .map(|b| RecordBatch::try_new(schema.clone(), b.columns().to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(unreadable)?;
        Ok(Answer {
            schema,
            batches,
            rows,
            truncated,
            elapsed: started.elapsed(),
        })
    }
}

/// `bazaar query-worker DIR`: one query read from stdin over the folder's tables, its answer
/// written to stdout as an Arrow IPC stream (exit 0), or its error to stderr (exit 2).
pub fn worker(dir: &std::path::Path, limits: Limits, max_rows: usize) -> Result<(), String> {
    use std::io::Read;
    let mut sql = String::new();
    std::io::stdin()
        .take(MAX_SQL_BYTES as u64 + 1)
        .read_to_string(&mut sql)
        .map_err(|e| format!("cannot read the query: {e}"))?;
    let folder = super::folders::open(&[dir.to_path_buf()])?.remove(0);
    let super::folders::Contents::Output(output) = folder.contents() else {
        return Err(format!("{} is not a finished output folder", dir.display()));
    };
    let workers = Workers::new(limits.threads).map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let answer = rt.block_on(async {
        let engine = Engine::open(&folder, &output, limits, &workers).await?;
        engine.query(&sql, max_rows).await
    });
    let answer = answer.map_err(|e| e.to_string())?;
    let mut schema = (*answer.schema).clone();
    schema
        .metadata
        .insert(TRUNCATED.to_owned(), answer.truncated.to_string());
    let out = std::io::stdout().lock();
    let mut w = datafusion::arrow::ipc::writer::StreamWriter::try_new(out, &schema)
        .map_err(|e| e.to_string())?;
    for b in &answer.batches {
        let b = RecordBatch::try_new(Arc::new(schema.clone()), b.columns().to_vec())
            .map_err(|e| e.to_string())?;
        w.write(&b).map_err(|e| e.to_string())?;
    }
    w.finish().map_err(|e| e.to_string())?;
    Ok(())
}

impl Answer {
    /// The rows as JSON objects (money and other decimals as numbers).
    pub fn json_rows(&self) -> Result<Vec<serde_json::Value>, QueryError> {
        let mut buf = Vec::new();
        {
            let mut w = datafusion::arrow::json::ArrayWriter::new(&mut buf);
            for b in &self.batches {
                w.write(b).map_err(|e| QueryError::Refused(e.to_string()))?;
            }
            w.finish().map_err(|e| QueryError::Refused(e.to_string()))?;
        }
        if buf.is_empty() {
            return Ok(Vec::new());
        }
        serde_json::from_slice(&buf).map_err(|e| QueryError::Refused(e.to_string()))
    }

    /// The answer as CSV with a header.
    pub fn csv(&self) -> Result<Vec<u8>, QueryError> {
        let mut buf = Vec::new();
        {
            let mut w = datafusion::arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut buf);
            if self.batches.is_empty() {
                w.write(&RecordBatch::new_empty(self.schema.clone()))
                    .map_err(|e| QueryError::Refused(e.to_string()))?;
            }
            for b in &self.batches {
                w.write(b).map_err(|e| QueryError::Refused(e.to_string()))?;
            }
        }
        Ok(buf)
    }

    /// The answer as a Parquet file (zstd).
    pub fn parquet(&self) -> Result<Vec<u8>, QueryError> {
        let props = parquet::file::properties::WriterProperties::builder()
            .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
            .build();
        let mut buf = Vec::new();
        let mut w =
            parquet::arrow::ArrowWriter::try_new(&mut buf, self.schema.clone(), Some(props))
                .map_err(|e| QueryError::Refused(e.to_string()))?;
        for b in &self.batches {
            w.write(b).map_err(|e| QueryError::Refused(e.to_string()))?;
        }
        w.close().map_err(|e| QueryError::Refused(e.to_string()))?;
        Ok(buf)
    }
}

/// A string as an SQL literal.
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::schema::{Kind, Null};

    /// A folder with one CSV table `t` (`n`, `name`) of `rows` rows, listed in its manifest.
    fn folder(rows: usize) -> (tempfile::TempDir, Folder, Output) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("run");
        std::fs::create_dir(&root).unwrap();
        let mut csv = String::from("n,name\n");
        for i in 0..rows {
            csv.push_str(&format!("{i},x{}\n", i % 3));
        }
        std::fs::write(root.join("t.csv"), csv).unwrap();
        std::fs::write(dir.path().join("outside.csv"), "a\n1\n").unwrap();
        let folder = super::super::folders::open(std::slice::from_ref(&root))
            .unwrap()
            .remove(0);
        let output = Output {
            manifest: crate::output::Manifest {
                format: crate::output::FORMAT.into(),
                format_version: 1,
                bazaar_version: String::new(),
                scenario: "s".into(),
                seed: 1,
                files: vec![crate::output::FileEntry {
                    name: "t.csv".into(),
                    rows: rows as u64,
                    bytes: 0,
                    blake3: String::new(),
                }],
            },
            tables: vec![TableFile {
                name: "t".into(),
                file: "t.csv".into(),
                rows: rows as u64,
                columns: vec![
                    ("n".into(), Kind::U32, Null::Never),
                    ("name".into(), Kind::Name8, Null::Never),
                ],
                plugin: false,
            }],
            currency: crate::money::Currency::default(),
        };
        (dir, folder, output)
    }

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn answers_are_cut_at_the_row_limit_and_say_so() {
        let (_d, folder, output) = folder(2_500);
        let workers = Workers::new(1).unwrap();
        run(async {
            let e = Engine::open(&folder, &output, Limits::default(), &workers)
                .await
                .unwrap();
            let a = e.query("SELECT * FROM t", 1_000).await.unwrap();
            assert_eq!((a.rows, a.truncated), (1_000, true));
            assert_eq!(
                a.batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
                1_000
            );
            let a = e
                .query("SELECT name, COUNT(*) AS c FROM t GROUP BY name", 1_000)
                .await
                .unwrap();
            assert_eq!((a.rows, a.truncated), (3, false));
            let csv = String::from_utf8(a.csv().unwrap()).unwrap();
            assert_eq!(csv.lines().next(), Some("name,c"));
            assert!(!a.parquet().unwrap().is_empty());
        });
    }

    #[test]
    fn only_queries_over_the_registered_tables_run() {
        let (d, folder, output) = folder(10);
        let outside = d.path().join("outside.csv");
        let workers = Workers::new(1).unwrap();
        run(async {
            let e = Engine::open(&folder, &output, Limits::default(), &workers)
                .await
                .unwrap();
            for sql in [
                format!(
                    "CREATE EXTERNAL TABLE o STORED AS CSV LOCATION '{}'",
                    outside.display()
                ),
                format!("SELECT * FROM '{}'", outside.display()),
                format!("COPY t TO '{}/copy.csv'", d.path().display()),
                "INSERT INTO t VALUES (1, 'y')".to_owned(),
                "CREATE VIEW v AS SELECT 1".to_owned(),
                "SET datafusion.execution.batch_size = 1".to_owned(),
                "x".repeat(MAX_SQL_BYTES + 1),
            ] {
                assert!(
                    matches!(e.query(&sql, 10).await, Err(QueryError::Refused(_))),
                    "{}",
                    &sql[..sql.len().min(80)]
                );
            }
            assert!(!d.path().join("copy.csv").exists());
            assert_eq!(e.query("SELECT COUNT(*) FROM t", 10).await.unwrap().rows, 1);
        });
    }

    #[test]
    fn literals_are_quoted() {
        assert_eq!(literal("it's"), "'it''s'");
    }
}
