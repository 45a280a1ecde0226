//! Checkpoint cost: size, and the time to take, write, read and restore one, after a day of
//! `scenarios/stress_10m.ron` scaled to each size of `BAZAAR_BENCH_SIZES` (default
//! 1,000,000). `cargo bench --bench checkpoint`; figures are kept in BENCHMARKS.md.

use std::time::Instant;

use bazaar::analytics::collect::AnalyticsPlugin;
use bazaar::checkpoint::Snapshot;
use bazaar::scenario::{Overrides, Scenario};
use bazaar::sim::{Simulation, registry};

/// The binary's allocator, so the figures are the engine's.
#[global_allocator]
static ALLOC: bazaar::alloc::Alloc = bazaar::alloc::Alloc;

fn main() {
    let sizes: Vec<u64> = std::env::var("BAZAAR_BENCH_SIZES")
        .unwrap_or_else(|_| "1000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let base = Scenario::load(
        std::path::Path::new("scenarios/stress_10m.ron"),
        &registry(),
    )
    .expect("scenarios/stress_10m.ron");
    let dir = tempfile::tempdir().expect("a temporary folder");
    println!("| customers | bytes | bytes/customer | take s | write s | read s | restore s |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for n in sizes {
        let mut s = base.clone();
        s.apply(Overrides {
            scale: Some(n as f64 / base.customers() as f64),
            ..Overrides::default()
        })
        .expect("a scale");
        let build = || {
            Simulation::builder(&s)
                .threads(threads)
                .check_invariants(false)
                .add_plugin(AnalyticsPlugin)
                .build()
                .expect("a simulation")
        };
        let mut sim = build();
        sim.spawn_population();
        for _ in 0..24 {
            sim.step().expect("an hour");
        }
        let t = Instant::now();
        let snap = sim.checkpoint(&s).expect("a checkpoint");
        let take = t.elapsed().as_secs_f64();
        drop(sim);
        let path = dir.path().join("day1.ckpt");
        let t = Instant::now();
        snap.write(&path).expect("written");
        let write = t.elapsed().as_secs_f64();
        let bytes = std::fs::metadata(&path).expect("its size").len();
        drop(snap);
        let t = Instant::now();
        let snap = Snapshot::read(&path).expect("read");
        let read = t.elapsed().as_secs_f64();
        let mut sim = build();
        let t = Instant::now();
        sim.restore(&s, &snap).expect("restored");
        let restore = t.elapsed().as_secs_f64();
        let customers = s.customers();
        println!(
            "| {customers} | {bytes} | {:.1} | {take:.2} | {write:.2} | {read:.2} | {restore:.2} |",
            bytes as f64 / customers as f64
        );
    }
}
