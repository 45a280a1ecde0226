//! The live run's events for the page: kept (every closed day, the latest progress, the
//! end) so a page opened mid-run draws the days so far, and passed on to every page
//! watching as server-sent events.

use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use crate::live::{LiveEvent, LiveSink};

/// Events a watcher that falls this far behind misses (it is told, and reloads).
const BACKLOG: usize = 1024;

/// What was said so far.
#[derive(Default)]
struct Past {
    days: Vec<Arc<str>>,
    progress: Option<Arc<str>>,
    end: Option<Arc<str>>,
}

/// The live run: its folder's id, its scenario, and its events.
pub struct Hub {
    /// The id the run's folder is served under.
    pub folder: String,
    /// The scenario's name.
    pub scenario: String,
    tx: broadcast::Sender<Arc<str>>,
    past: Mutex<Past>,
}

impl Hub {
    /// A hub for the run writing the folder served as `folder`.
    pub fn new(folder: String, scenario: String) -> Self {
        Self {
            folder,
            scenario,
            tx: broadcast::channel(BACKLOG).0,
            past: Mutex::new(Past::default()),
        }
    }

    /// Where the run sends its events.
    pub fn sink(self: &Arc<Self>) -> LiveSink {
        let hub = self.clone();
        Arc::new(move |e: LiveEvent| hub.send(&e))
    }

    /// Keeps an event and passes it on.
    pub fn send(&self, e: &LiveEvent) {
        let Ok(json) = serde_json::to_string(e) else {
            return;
        };
        let json: Arc<str> = json.into();
        let mut past = self.past.lock().expect("live lock");
        match e {
            LiveEvent::Progress { .. } => past.progress = Some(json.clone()),
            LiveEvent::Day { .. } => past.days.push(json.clone()),
            LiveEvent::Finished { .. } | LiveEvent::Failed { .. } => past.end = Some(json.clone()),
        }
        // No watcher is not an error.
        let _ = self.tx.send(json);
    }

    /// The events so far (days, then the latest progress, then the end if any) and the
    /// ones to come: taken together, so none falls between.
    pub fn subscribe(&self) -> (Vec<Arc<str>>, broadcast::Receiver<Arc<str>>) {
        let past = self.past.lock().expect("live lock");
        let mut so_far = past.days.clone();
        so_far.extend(past.progress.clone());
        so_far.extend(past.end.clone());
        (so_far, self.tx.subscribe())
    }
}
