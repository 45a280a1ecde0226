//! Where a run's time goes: the main thread's phases, and for each output table the time
//! spent building, encoding and writing it and the time its feeder waited for it. A run
//! writes them to `timings.json` with `--timings` and logs them at debug level, so the
//! critical path (the simulation, or a table's writer) can be read off a run on any machine.
//!
//! Everything is wall-clock time on the thread that did the work. Stages of one table can
//! overlap (row groups are encoded concurrently), so a table's stages add up to its work,
//! not to its share of the run's wall time. The simulation's output hand-off is what the
//! output cost the run while the hours were simulated, and the phases after `simulate` are
//! what it cost after them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

/// A run's timings, shared by the threads that record them (cheap to clone).
#[derive(Clone, Default, Debug, bevy_ecs::prelude::Resource)]
pub struct Timings(Arc<Mutex<Recorded>>);

#[derive(Default, Debug)]
struct Recorded {
    /// The main thread's phases, in the order they ended.
    phases: Vec<(String, f64)>,
    /// Work by part (a file, or `simulation`) and stage.
    parts: BTreeMap<String, BTreeMap<&'static str, Stage>>,
}

/// Time spent in one stage of one part, and how many times it was entered.
#[derive(Default, Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Stage {
    /// Seconds, summed over every time.
    pub seconds: f64,
    /// Times the stage ran (row groups, blocks, hours).
    pub count: u64,
}

/// One phase of the main thread.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Phase {
    /// What the main thread did.
    pub name: String,
    /// How long it took.
    pub seconds: f64,
}

/// What `timings.json` holds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// Worker threads of the simulation and of the output's encoding pool.
    pub threads: usize,
    /// From the start of the run to the folder being put in place.
    pub wall_seconds: f64,
    /// The main thread's phases in order; they do not overlap.
    pub phases: Vec<Phase>,
    /// By file (and `simulation`), by stage.
    pub parts: BTreeMap<String, BTreeMap<&'static str, Stage>>,
}

impl Timings {
    fn recorded(&self) -> std::sync::MutexGuard<'_, Recorded> {
        // A panicking recorder leaves sums that are still sums.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that the main thread spent `took` on `name`.
    pub fn phase(&self, name: &str, took: Duration) {
        tracing::debug!(phase = name, seconds = took.as_secs_f64(), "timing");
        self.recorded()
            .phases
            .push((name.to_owned(), took.as_secs_f64()));
    }

    /// Adds `took` to `stage` of `part`.
    pub fn add(&self, part: &str, stage: &'static str, took: Duration) {
        let mut r = self.recorded();
        let s = r
            .parts
            .entry(part.to_owned())
            .or_default()
            .entry(stage)
            .or_default();
        s.seconds += took.as_secs_f64();
        s.count += 1;
    }

    /// Runs `f`, adding its time to `stage` of `part`.
    pub fn time<T>(&self, part: &str, stage: &'static str, f: impl FnOnce() -> T) -> T {
        let at = Instant::now();
        let out = f();
        self.add(part, stage, at.elapsed());
        out
    }

    /// What has been recorded, for a run of `wall` on `threads` threads.
    pub fn report(&self, wall: Duration, threads: usize) -> Report {
        let r = self.recorded();
        Report {
            threads,
            wall_seconds: wall.as_secs_f64(),
            phases: r
                .phases
                .iter()
                .map(|(name, seconds)| Phase {
                    name: name.clone(),
                    seconds: *seconds,
                })
                .collect(),
            parts: r.parts.clone(),
        }
    }
}

/// The stage under which a writer records the time whoever fed it (the simulation, or the
/// CSV encoder) waited for room in its queue: the writer was behind.
pub const WAITED: &str = "fed, waited for room";

/// The part and stage under which the simulation records handing each hour's and day's
/// records to the output (copies, and waits for room, included).
pub const HANDOFF: (&str, &str) = ("simulation", "output hand-off");

/// Times the main thread's phases one after the other: each [`Phases::end`] records the time
/// since the one before.
pub struct Phases {
    timings: Timings,
    at: Instant,
}

impl Phases {
    /// Starts timing the first phase now.
    pub fn start(timings: Timings) -> Self {
        Self {
            timings,
            at: Instant::now(),
        }
    }

    /// Ends the current phase as `name` and starts the next.
    pub fn end(&mut self, name: &str) {
        let now = Instant::now();
        self.timings.phase(name, now - self.at);
        self.at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_add_up_by_part_and_phases_keep_their_order() {
        let t = Timings::default();
        t.add("a.parquet", "encode", Duration::from_millis(30));
        t.add("a.parquet", "encode", Duration::from_millis(20));
        t.add("a.parquet", WAITED, Duration::from_millis(5));
        let mut phases = Phases::start(t.clone());
        phases.end("spawn");
        phases.end("simulate");
        let r = t.report(Duration::from_secs(2), 3);
        let encode = r.parts["a.parquet"]["encode"];
        assert_eq!(encode.count, 2);
        assert!((encode.seconds - 0.05).abs() < 1e-9);
        assert_eq!(r.parts["a.parquet"][WAITED].count, 1);
        let names: Vec<_> = r.phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["spawn", "simulate"]);
        assert_eq!((r.threads, r.wall_seconds), (3, 2.0));
    }
}
