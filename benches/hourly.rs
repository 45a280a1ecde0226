#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented function"
)]
//! Benchmarks of the hot paths: the hourly schedule at fixed population sizes, basket
//! generation, and CSV encoding.
//!
//! `cargo bench --bench hourly` runs them on all cores; `BAZAAR_BENCH_THREADS=1 cargo bench
//! --bench hourly` on one (the thread pool is per process). Figures are kept in BENCHMARKS.md.

use std::hint::black_box;

use bazaar::calendar::Today;
use bazaar::output::OutputDir;
use bazaar::output::sinks::{CsvSink, HourContext, Sink};
use bazaar::records::{HourRecords, LineRecord, TxRecord};
use bazaar::rng::Stream;
use bazaar::scenario::Scenario;
use bazaar::sim::{Simulation, known_systems};
use bazaar::systems::shopping::draw_basket;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn threads() -> usize {
    std::env::var("BAZAAR_BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// The Diwali scenario with `customers` customers in its persona proportions.
fn diwali(customers: u64) -> Scenario {
    let mut s = Scenario::load("scenarios/diwali.ron".as_ref(), &known_systems()).unwrap();
    let total = s.customers() as f64;
    s.scale(customers as f64 / total);
    s
}

/// One simulated day (24 schedule runs, planning included) without output sinks.
fn hourly_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("hourly_step");
    group.sample_size(10);
    for customers in [100_000u64, 1_000_000] {
        let s = diwali(customers);
        let mut sim = Simulation::new(&s, threads(), Vec::new());
        sim.spawn_population();
        // Warm up a week so recency and budgets are in a steady state.
        for _ in 0..24 * 7 {
            sim.step();
        }
        group.throughput(Throughput::Elements(customers * 24));
        group.bench_with_input(BenchmarkId::new("day", customers), &customers, |b, _| {
            b.iter(|| {
                for _ in 0..24 {
                    sim.step();
                }
            });
        });
    }
    group.finish();
}

fn basket(c: &mut Criterion) {
    let s = diwali(1_000);
    let today = s
        .calendar
        .day("2026-11-06".parse().unwrap(), s.catalog.len());
    let mut group = c.benchmark_group("basket");
    for p in &s.personas {
        let mut lines = Vec::with_capacity(64);
        let mut agent = 0u32;
        group.bench_function(&p.name, |b| {
            b.iter(|| {
                agent = agent.wrapping_add(1);
                lines.clear();
                let mut rng = Stream::new(1, u64::from(agent), 7, 3);
                black_box(draw_basket(p, &today, &mut rng, &mut lines));
            });
        });
    }
    group.finish();
}

fn csv_encoding(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let out = OutputDir::create(&dir.path().join("o")).unwrap();
    let personas: Vec<String> = ["premium", "family", "young_professional"]
        .map(String::from)
        .to_vec();
    let categories: Vec<String> = (0..30).map(|i| format!("category_{i}")).collect();
    let mut sink = CsvSink::create(
        &out,
        true,
        &personas,
        &categories,
        "2026-11-06".parse().unwrap(),
    )
    .unwrap();
    let mut records = HourRecords::default();
    for agent in 0..10_000u32 {
        let line_start = records.lines.len() as u32;
        for k in 0..4u16 {
            records.lines.push(LineRecord {
                category: (agent as u16 + k) % 30,
                quantity: 1 + u32::from(k),
                unit_price: 12_345 + i64::from(agent),
            });
        }
        records.txs.push(TxRecord {
            agent,
            persona: (agent % 3) as u8,
            minute: (agent % 60) as u8,
            trimmed: false,
            lines: 4,
            line_start,
            units: 10,
            total: 123_456,
        });
    }
    let mut clock = bazaar::calendar::Clock::new("2026-11-06".parse().unwrap(), 1);
    clock.tick = 10;
    let today = Today::neutral("2026-11-06".parse().unwrap(), categories.len());
    let ctx = HourContext {
        clock: &clock,
        today: &today,
        personas: &personas,
        categories: &categories,
    };
    let mut group = c.benchmark_group("csv_encoding");
    group.throughput(Throughput::Elements(records.txs.len() as u64 * 5));
    group.bench_function("10k_transactions_40k_lines", |b| {
        b.iter(|| sink.hour(&ctx, &records).unwrap());
    });
    group.finish();
}

/// One ONNX Runtime pass of the committed churn model over 100,000 customers' features.
fn churn_scoring(c: &mut Criterion) {
    let personas: Vec<String> = [
        "premium",
        "family",
        "young_professional",
        "senior",
        "budget",
    ]
    .map(String::from)
    .to_vec();
    let mut model =
        bazaar::ml::model::ChurnModel::load("models/churn.json".as_ref(), &personas, None).unwrap();
    let width = model.features.len();
    let rows = 100_000;
    let x: Vec<f32> = (0..rows * width)
        .map(|i| ((i * 2_654_435_761usize) % 1000) as f32 / 250.0)
        .collect();
    let mut out = Vec::with_capacity(rows);
    let mut group = c.benchmark_group("churn_scoring");
    group.throughput(Throughput::Elements(rows as u64));
    group.bench_function("onnx_100k_customers", |b| {
        b.iter(|| {
            out.clear();
            model.score(&x, rows, &mut out).unwrap();
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = hourly_step, basket, csv_encoding, churn_scoring
}
criterion_main!(benches);
