//! The writer thread behind an output file: items are queued to it in order over a bounded
//! channel, so the simulation waits only when the writer falls that far behind, and a
//! writer's own error is the one reported. CSV tables and Parquet tables both use it.

use std::io;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

/// A thread that consumes `T`s in the order sent and ends with an `R` (or its error).
pub(crate) struct Worker<T, R> {
    /// What the thread writes, for error messages.
    name: String,
    queue: Option<SyncSender<T>>,
    thread: Option<JoinHandle<io::Result<R>>>,
    /// Where the time spent waiting for a full queue is recorded, under `name`.
    timings: crate::timings::Timings,
}

impl<T: Send + 'static, R: Send + 'static> Worker<T, R> {
    /// Starts thread `thread_name` running `work` over the items sent, at most `depth` of
    /// them waiting at a time. `name` is what it writes.
    pub(crate) fn start(
        name: &str,
        thread_name: String,
        depth: usize,
        timings: crate::timings::Timings,
        work: impl FnOnce(Receiver<T>) -> io::Result<R> + Send + 'static,
    ) -> io::Result<Self> {
        let (queue, items) = sync_channel(depth);
        let thread = std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || work(items))?;
        Ok(Self {
            name: name.to_owned(),
            queue: Some(queue),
            thread: Some(thread),
            timings,
        })
    }

    /// Queues `item`, waiting while the queue is full (a wait recorded in the timings). If
    /// the thread has stopped, returns the error that stopped it.
    pub(crate) fn send(&mut self, item: T) -> io::Result<()> {
        let sent = self.queue.as_ref().map(|q| match q.try_send(item) {
            Err(TrySendError::Full(item)) => {
                let at = std::time::Instant::now();
                let sent = q.send(item).map_err(|_| ());
                self.timings
                    .add(&self.name, crate::timings::WAITED, at.elapsed());
                sent
            }
            other => other.map_err(|_| ()),
        });
        match sent {
            Some(Ok(())) => Ok(()),
            _ => Err(self.join().err().unwrap_or_else(|| {
                io::Error::other(format!("the writer of {} stopped", self.name))
            })),
        }
    }

    /// Closes the queue and waits until every item sent has been handled.
    pub(crate) fn join(&mut self) -> io::Result<R> {
        self.queue = None;
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| io::Error::other(format!("the writer of {} panicked", self.name)))?,
            None => Err(io::Error::other(format!(
                "the writer of {} already stopped",
                self.name
            ))),
        }
    }
}

impl<T, R> Drop for Worker<T, R> {
    fn drop(&mut self) {
        // An abandoned file (a failed run): let the thread finish; the file goes with the
        // temporary folder.
        self.queue = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
