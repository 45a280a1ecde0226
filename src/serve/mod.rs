//! `bazaar serve`: a local web server over finished output folders (and `bazaar run --serve`
//! over the run under way) for exploring them in a browser: key figures, filtered charts,
//! a customer's history, read-only SQL, two folders side by side, live progress.
//!
//! It is read-only and local: it binds loopback unless told otherwise, answers only to a
//! loopback `Host` when bound there (a page elsewhere cannot reach it by DNS rebinding),
//! opens each folder through its manifest and serves no file the manifest does not list.
//! Queries go through [`query::Engine`] (DataFusion, read-only, limited); the page and its
//! chart library are compiled into the binary ([`assets`]), so nothing is fetched.

mod api;
pub mod assets;
pub mod experiment;
pub mod folders;
pub mod live;
pub mod query;
pub mod views;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use folders::{Contents, Folder};
use query::{Engine, Limits, Workers};
use views::Meta;

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Output folders, in the order the page lists them.
    pub folders: Vec<PathBuf>,
    /// The address to bind.
    pub bind: IpAddr,
    /// The port (0: any free one).
    pub port: u16,
    /// Each query's limits.
    pub limits: Limits,
}

/// A folder opened for queries, as its manifest was when opened.
pub(crate) struct Opened {
    /// The manifest's file hashes when opened: a folder written again is opened again.
    stamp: Vec<String>,
    pub(crate) engine: Engine,
    pub(crate) meta: Meta,
    pub(crate) output: folders::Output,
    /// An experiment's results, for a folder `bazaar ab` wrote.
    pub(crate) experiment: Option<Arc<crate::experiment::Outcome>>,
}

/// What every request shares.
pub(crate) struct State {
    pub(crate) folders: Vec<Folder>,
    opened: Mutex<HashMap<String, Arc<Opened>>>,
    pub(crate) limits: Limits,
    workers: Workers,
    pub(crate) live: Option<Arc<live::Hub>>,
    /// Bound to loopback: only loopback `Host`s are answered.
    pub(crate) loopback: bool,
}

impl State {
    /// The folder with this id.
    pub(crate) fn folder(&self, id: &str) -> Option<&Folder> {
        self.folders.iter().find(|f| f.id == id)
    }

    /// The folder opened for queries: from the cache while its manifest is unchanged.
    pub(crate) async fn open(&self, id: &str) -> Result<Arc<Opened>, api::ApiError> {
        let folder = self
            .folder(id)
            .ok_or_else(|| api::ApiError::not_found(format!("no folder `{id}` is served")))?;
        let output = match folder.contents() {
            Contents::Output(o) => o,
            Contents::Unavailable(why) => return Err(api::ApiError::unavailable(why)),
        };
        let stamp: Vec<String> = output
            .manifest
            .files
            .iter()
            .map(|f| f.blake3.clone())
            .collect();
        if let Some(o) = self.opened.lock().expect("cache lock").get(id)
            && o.stamp == stamp
        {
            return Ok(o.clone());
        }
        let engine = Engine::open(folder, &output, self.limits, &self.workers)
            .await
            .map_err(|e| {
                api::ApiError::unavailable(format!("cannot open {}: {e}", folder.given.display()))
            })?;
        let mut output = *output;
        let (meta, experiment) = if output.lists("experiment.json") {
            let mut outcome: crate::experiment::Outcome = read_json(
                folder,
                &output,
                "experiment.json",
                "has an experiment.json this Bazaar cannot read",
            )?;
            experiment::complete(&mut outcome);
            output.currency = outcome.money.clone();
            (Meta::from_experiment(&outcome), Some(Arc::new(outcome)))
        } else {
            let aggregates: crate::analytics::Aggregates = read_json(
                folder,
                &output,
                "aggregates.json",
                "has no readable aggregates.json",
            )?;
            (Meta::new(&aggregates, stores(&engine, &output).await), None)
        };
        let opened = Arc::new(Opened {
            stamp,
            engine,
            meta,
            output,
            experiment,
        });
        self.opened
            .lock()
            .expect("cache lock")
            .insert(id.to_owned(), opened.clone());
        Ok(opened)
    }
}

/// A JSON file the folder's manifest lists, parsed; `problem` says what is wrong if not.
fn read_json<T: serde::de::DeserializeOwned>(
    folder: &Folder,
    output: &folders::Output,
    name: &str,
    problem: &str,
) -> Result<T, api::ApiError> {
    folders::file_inside(folder, output, name)
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| api::ApiError::unavailable(format!("{} {problem}", folder.given.display())))
}

/// The store ids of the first table with a `store` column (the `stores` behaviour's).
async fn stores(engine: &Engine, output: &folders::Output) -> Vec<u64> {
    let mut stores = Vec::new();
    if let Some(t) = output
        .tables
        .iter()
        .find(|t| t.columns.iter().any(|c| c.0 == "store"))
    {
        let sql = format!(
            "SELECT DISTINCT CAST(store AS BIGINT) AS store FROM \"{}\" ORDER BY 1",
            t.name
        );
        if let Ok(a) = engine.query(&sql, 100_000).await {
            for row in a.json_rows().unwrap_or_default() {
                if let Some(s) = row.get("store").and_then(serde_json::Value::as_u64) {
                    stores.push(s);
                }
            }
        }
    }
    stores
}

/// A server started in the background (`run --serve`), stopped when dropped.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// What the run tells it.
    pub live: Arc<live::Hub>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Running {
    /// Keeps serving (the run has finished; its folder is served from now on) until
    /// `stopped` says to stop, asked a few times a second.
    pub fn serve_until(self, stopped: impl Fn() -> bool) {
        while !stopped() && self.thread.as_ref().is_some_and(|t| !t.is_finished()) {
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}

fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name("bazaar-serve")
        .enable_all()
        .build()
}

fn bind(options: &ServeOptions) -> Result<std::net::TcpListener, String> {
    let addr = SocketAddr::new(options.bind, options.port);
    let listener = std::net::TcpListener::bind(addr).map_err(|e| {
        format!(
            "cannot listen on {addr}: {e}\n  hint: another program may hold the port: give another with --port (0 picks a free one)"
        )
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    Ok(listener)
}

fn state(
    options: &ServeOptions,
    folders: Vec<Folder>,
    live: Option<Arc<live::Hub>>,
) -> Result<Arc<State>, String> {
    Ok(Arc::new(State {
        folders,
        opened: Mutex::new(HashMap::new()),
        limits: options.limits,
        workers: Workers::new(options.limits.threads)
            .map_err(|e| format!("cannot start the query threads: {e}"))?,
        live,
        loopback: options.bind.is_loopback(),
    }))
}

/// Threads that answer requests; queries run on their own ([`Workers`]).
const SERVER_THREADS: usize = 2;

/// Serves the folders until SIGINT or SIGTERM.
pub fn serve(options: &ServeOptions) -> Result<(), String> {
    let folders = folders::open(&options.folders)?;
    let listener = bind(options)?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let rt = runtime(SERVER_THREADS).map_err(|e| format!("cannot start the server: {e}"))?;
    let state = state(options, folders, None)?;
    for f in &state.folders {
        if let Contents::Unavailable(why) = f.contents() {
            eprintln!("bazaar: note: {why}");
        }
    }
    announce(addr, options.bind);
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?;
        axum::serve(listener, api::router(state))
            .with_graceful_shutdown(async {
                let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
                }
            })
            .await
            .map_err(|e| format!("the server stopped: {e}"))
    })
}

fn announce(addr: SocketAddr, bind: IpAddr) {
    eprintln!("bazaar: serving on http://{addr}/ (Ctrl-C stops)");
    if !bind.is_loopback() {
        eprintln!(
            "bazaar: warning: listening on {bind}, which other machines may reach: anyone who can reach it can read these folders"
        );
    }
}

/// Starts serving in the background for a run writing `out`: the page shows the run's
/// progress and days as they close, then the folder once it is in place.
pub fn start_live(
    options: &ServeOptions,
    out: PathBuf,
    scenario: String,
) -> Result<Running, String> {
    let folder = folders::open_live(&out)?;
    let listener = bind(options)?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let hub = Arc::new(live::Hub::new(folder.id.clone(), scenario));
    let state = state(options, vec![folder], Some(hub.clone()))?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let threads = SERVER_THREADS;
    announce(addr, options.bind);
    let thread = std::thread::Builder::new()
        .name("bazaar-serve".into())
        .spawn(move || {
            let rt = match runtime(threads) {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("bazaar: the live server could not start: {e}");
                    return;
                }
            };
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                let server =
                    axum::serve(listener, api::router(state)).with_graceful_shutdown(async {
                        let _ = stopped.await;
                    });
                if let Err(e) = server.await {
                    eprintln!("bazaar: the live server stopped: {e}");
                }
            });
        })
        .map_err(|e| format!("cannot start the server: {e}"))?;
    Ok(Running {
        addr,
        live: hub,
        stop: Some(stop),
        thread: Some(thread),
    })
}
