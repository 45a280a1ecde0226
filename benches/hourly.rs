#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented function"
)]
//! Benchmarks of the hot paths: the hourly schedule at 100k, 1M and 10M customers, the same
//! work on a plain struct-of-arrays loop (what the ECS costs), basket generation, output
//! encoding (CSV and Parquet rows per second) and churn scoring.
//!
//! `cargo bench --bench hourly` runs them on all cores; `BAZAAR_BENCH_THREADS=1 cargo bench
//! --bench hourly` on one (the thread pool is per process); `BAZAAR_BENCH_SIZES=100000,1000000`
//! limits the populations. Figures are kept in BENCHMARKS.md.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bazaar::calendar::{Clock, Today};
use bazaar::components::{AgentId, Budget, DayPlan, Engagement, Ledger, Loyalty, Persona};
use bazaar::hooks::VisitHooks;
use bazaar::output::OutputDir;
use bazaar::output::parquet::ParquetSink;
use bazaar::output::schema::daily_metrics;
use bazaar::output::sinks::{CsvSink, Sink, feed_hours};
use bazaar::records::{HourRecords, LineRecord};
use bazaar::rng::Stream;
use bazaar::scenario::Scenario;
use bazaar::sim::{Model, Simulation, registry, spawn_customer};
use bazaar::systems::attrition::{AttritionRows, ChurnRecord, attrition_rows};
use bazaar::systems::budget::{paid_tomorrow, refill_rows};
use bazaar::systems::loyalty::{decay_rows, overnight_keep};
use bazaar::systems::observe::Totals;
use bazaar::systems::planning::{PlanDay, PlanRows, Visitors, plan_rows};
use bazaar::systems::shopping::{PARALLEL_VISITS, ShopRows, VisitContext, draw_basket, shop_rows};
use bevy_utils::Parallel;

/// The binary's allocator, so the figures are the engine's.
#[global_allocator]
static ALLOC: bazaar::alloc::Alloc = bazaar::alloc::Alloc;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn threads() -> usize {
    std::env::var("BAZAAR_BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// The Diwali scenario with `customers` customers in its persona proportions and no
/// acquisition (so the ECS and the plain loop below do exactly the same work).
fn diwali(customers: u64) -> Scenario {
    let mut s = Scenario::load("scenarios/diwali.ron".as_ref(), &registry()).unwrap();
    let total = s.customers() as f64;
    s.scale(customers as f64 / total);
    s.new_per_day.iter_mut().for_each(|n| *n = 0.0);
    s
}

/// Population sizes of the hourly benchmarks.
fn sizes() -> Vec<u64> {
    std::env::var("BAZAAR_BENCH_SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![100_000, 1_000_000, 10_000_000])
}

/// One simulated day (24 schedule runs, planning included) without output sinks.
/// Days measured on each fresh population, after its week of warm-up. Every measured day is
/// one of days 8 to 14 of the scenario, however many iterations criterion asks for: a
/// population run on for hundreds of days would churn away and make later days cheaper, and
/// two runs measured over different stretches of days would not be comparable.
const MEASURED_DAYS: u64 = 7;

/// Times `iters` simulated days, `MEASURED_DAYS` at a time on fresh populations from `fresh`
/// (built and warmed up untimed); `day` simulates one day.
fn time_days<S>(iters: u64, fresh: impl Fn() -> S, day: impl Fn(&mut S)) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let mut state = fresh();
        let n = left.min(MEASURED_DAYS);
        let started = Instant::now();
        for _ in 0..n {
            day(&mut state);
        }
        total += started.elapsed();
        left -= n;
    }
    total
}

/// The scenario's world, spawned and run for a week, so recency and budgets are in a steady
/// state.
fn warmed_sim(s: &Scenario) -> Simulation {
    let mut sim = Simulation::new(s, threads(), Vec::new()).expect("the simulation builds");
    sim.spawn_population();
    for _ in 0..24 * 7 {
        sim.step().expect("an hour runs");
    }
    sim
}

fn sim_day(sim: &mut Simulation) {
    for _ in 0..24 {
        sim.step().expect("an hour runs");
    }
}

fn hourly_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("hourly_step");
    group.sample_size(10);
    for customers in sizes() {
        let s = diwali(customers);
        group.throughput(Throughput::Elements(customers * 24));
        group.bench_with_input(BenchmarkId::new("day", customers), &customers, |b, _| {
            b.iter_custom(|iters| time_days(iters, || warmed_sim(&s), sim_day));
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

/// An hour of 10,000 transactions with 4 lines each.
fn encoding_hour() -> (HourRecords, Vec<String>, Vec<String>) {
    let personas: Vec<String> = ["premium", "family", "young_professional"]
        .map(String::from)
        .to_vec();
    let categories: Vec<String> = (0..30).map(|i| format!("category_{i}")).collect();
    let mut records = HourRecords::default();
    let segment = &mut records.add_segments(1)[0];
    for agent in 0..10_000u32 {
        let lines = (0..4u16).map(|k| LineRecord {
            category: (agent as u16 + k) % 30,
            quantity: 1 + u32::from(k),
            unit_price: 12_345 + i64::from(agent),
        });
        segment.push_basket(agent, (agent % 3) as u8, (agent % 60) as u8, lines);
    }
    (records, personas, categories)
}

/// Writing 50 hours of 10,000 transactions (500k transaction rows, 2M line rows) to a new
/// folder, tables finished, in each format. Throughput counts rows of both tables.
fn output_encoding(c: &mut Criterion) {
    let (records, personas, categories) = encoding_hour();
    let date: chrono::NaiveDate = "2026-11-06".parse().unwrap();
    let mut group = c.benchmark_group("output_encoding");
    group.sample_size(10);
    group.throughput(Throughput::Elements(50 * records.len() as u64 * 5));
    for format in ["csv", "parquet"] {
        group.bench_function(format!("{format}_500k_transactions_2m_lines"), |b| {
            b.iter(|| {
                let dir = tempfile::tempdir().unwrap();
                let mut out = OutputDir::create(&dir.path().join("o")).unwrap();
                let mut sink: Box<dyn Sink> = if format == "csv" {
                    Box::new(
                        CsvSink::create(
                            &out,
                            true,
                            &personas,
                            &categories,
                            date,
                            &daily_metrics(),
                            2,
                        )
                        .unwrap(),
                    )
                } else {
                    Box::new(
                        ParquetSink::create(
                            &out,
                            true,
                            &personas,
                            &categories,
                            date,
                            &daily_metrics(),
                            2,
                        )
                        .unwrap(),
                    )
                };
                let hours = std::iter::repeat_n(&records, 50);
                feed_hours(sink.as_mut(), date, &personas, &categories, hours).unwrap();
                sink.finish(&mut out).unwrap();
            });
        });
    }
    group.finish();
}

/// The same customers in plain vectors, one per component: the struct-of-arrays baseline.
struct Soa {
    ids: Vec<AgentId>,
    persona: Vec<Persona>,
    budget: Vec<Budget>,
    loyalty: Vec<Loyalty>,
    plans: Vec<DayPlan>,
    ledger: Vec<Ledger>,
    engagement: Vec<Engagement>,
}

/// Rows per parallel task of the plain loop: the engine's chunk, which the visitor index
/// (`Visitors`) is built on.
const SOA_CHUNK: usize = bazaar::systems::CHUNK;

impl Soa {
    fn spawn(model: &Model, start: chrono::NaiveDate) -> Self {
        let mut soa = Soa {
            ids: Vec::new(),
            persona: Vec::new(),
            budget: Vec::new(),
            loyalty: Vec::new(),
            plans: Vec::new(),
            ledger: Vec::new(),
            engagement: Vec::new(),
        };
        let mut id = 0u32;
        for (p, &count) in model.population.iter().enumerate() {
            for _ in 0..count {
                let (a, pe, b, l, d, le, e) =
                    spawn_customer(model.seed, id, p as u8, &model.personas[p], start, 0);
                soa.ids.push(a);
                soa.persona.push(pe);
                soa.budget.push(b);
                soa.loyalty.push(l);
                soa.plans.push(d);
                soa.ledger.push(le);
                soa.engagement.push(e);
                id += 1;
            }
        }
        soa
    }
}

/// The hourly schedule's work on [`Soa`] with the same kernels and the same parallel pattern
/// (rayon over fixed chunks): clock and calendar, planning at midnight, shopping into one
/// record segment per chunk, the tally of the hour's records, and at the day's end budget
/// refills, loyalty decay and attrition.
struct PlainLoop {
    soa: Soa,
    model: Model,
    clock: Clock,
    today: Today,
    visitors: Visitors,
    churn: Parallel<Vec<ChurnRecord>>,
    records: HourRecords,
    hooks: VisitHooks,
    totals: Vec<Totals>,
    churned: Vec<ChurnRecord>,
}

impl PlainLoop {
    fn step(&mut self) {
        use rayon::prelude::*;
        self.clock.tick = self.clock.tick.wrapping_add(1);
        let (hour, day, tick) = (self.clock.hour(), self.clock.day(), self.clock.tick);
        if hour == 0 {
            self.today = self
                .model
                .calendar
                .day(self.clock.date(), self.model.categories);
            let d = PlanDay::new(&self.clock, &self.today, &self.model);
            let s = &mut self.soa;
            self.visitors.clear();
            self.visitors.plan_table(&mut s.plans, |r, plans, counts| {
                let rows = PlanRows {
                    ids: &s.ids[r.clone()],
                    persona: &s.persona[r.clone()],
                    loyalty: &s.loyalty[r.clone()],
                    budget: &s.budget[r.clone()],
                    engagement: &s.engagement[r],
                };
                plan_rows(&d, rows, plans, counts);
            });
        }
        self.records.clear();
        if self.visitors.in_hour(hour as u8) > 0 {
            let s = &mut self.soa;
            let cx = VisitContext::new(&self.model, &self.today, &self.clock, &self.hooks);
            let chunks = s.ids.len().div_ceil(SOA_CHUNK);
            let mut rows = ShopRows {
                ids: &s.ids,
                personas: &s.persona,
                plans: &s.plans,
                budget: &mut s.budget,
                loyalty: &mut s.loyalty,
                ledger: &mut s.ledger,
                engagement: &mut s.engagement,
            };
            let visitors = &self.visitors;
            if visitors.in_hour(hour as u8) < PARALLEL_VISITS {
                // A quiet hour on the calling thread, into one segment, as the ECS does.
                let buf = &mut self.records.add_segments(1)[0];
                for k in 0..chunks {
                    let v = visitors.hour(k, hour as u8);
                    shop_rows(v, k * SOA_CHUNK, &mut rows, &cx, buf);
                }
            } else {
                let segments = self.records.add_segments(chunks);
                rows.par_chunks(SOA_CHUNK)
                    .zip(segments.par_iter_mut())
                    .enumerate()
                    .for_each(|(k, (mut rows, buf))| {
                        let visitors = visitors.hour(k, hour as u8);
                        shop_rows(visitors, 0, &mut rows, &cx, buf);
                    });
            }
        }
        self.records.finish();
        for (t, _) in self.records.iter() {
            self.totals[usize::from(t.persona)].add_tx(t);
        }
        if hour == 23 {
            let s = &mut self.soa;
            let paid = paid_tomorrow(&self.clock, &self.model);
            if paid.contains(&true) {
                s.budget
                    .par_chunks_mut(SOA_CHUNK)
                    .zip(s.persona.par_chunks(SOA_CHUNK))
                    .for_each(|(b, p)| refill_rows(&paid, p, b));
            }
            let keep = overnight_keep(&self.model);
            s.loyalty
                .par_chunks_mut(SOA_CHUNK)
                .zip(s.persona.par_chunks(SOA_CHUNK))
                .for_each(|(l, p)| decay_rows(&keep, p, l));
            let (model, churn) = (&self.model, &self.churn);
            s.engagement
                .par_chunks_mut(SOA_CHUNK)
                .enumerate()
                .for_each(|(k, engagement)| {
                    let r = k * SOA_CHUNK..(k * SOA_CHUNK + engagement.len());
                    let rows = AttritionRows {
                        ids: &s.ids[r.clone()],
                        persona: &s.persona[r.clone()],
                        loyalty: &s.loyalty[r],
                        engagement,
                    };
                    attrition_rows(day, tick, model, rows, &mut churn.borrow_local_mut());
                });
            self.churned.clear();
            for c in self.churn.iter_mut() {
                self.churned.append(c);
            }
            self.churned.sort_unstable_by_key(|c| c.agent);
        }
    }
}

/// One simulated day of the ECS schedule against the same work in plain vectors: the ECS
/// should cost no more than 1.25x of the plain loop.
fn soa_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("ecs_vs_plain_loop");
    group.sample_size(10);
    for customers in sizes().into_iter().filter(|&n| n <= 1_000_000) {
        let s = diwali(customers);
        let warmed_plain = || {
            let sim = Simulation::new(&s, threads(), Vec::new()).expect("the simulation builds");
            let model = sim.world.resource::<Model>().clone();
            // The same visit hooks (loyalty's) as the ECS run.
            let hooks = sim.world.resource::<VisitHooks>().clone();
            let mut plain = PlainLoop {
                hooks,
                soa: Soa::spawn(&model, s.start),
                totals: vec![Totals::default(); model.personas.len()],
                model,
                clock: Clock::new(s.start, s.days),
                today: Today::neutral(s.start, s.catalog.len()),
                visitors: Visitors::default(),
                churn: Parallel::default(),
                records: HourRecords::default(),
                churned: Vec::new(),
            };
            for _ in 0..24 * 7 {
                plain.step();
            }
            plain
        };
        let plain_day = |plain: &mut PlainLoop| {
            for _ in 0..24 {
                plain.step();
            }
        };
        group.throughput(Throughput::Elements(customers * 24));
        group.bench_with_input(BenchmarkId::new("ecs", customers), &customers, |b, _| {
            b.iter_custom(|iters| time_days(iters, || warmed_sim(&s), sim_day));
        });
        group.bench_with_input(BenchmarkId::new("plain", customers), &customers, |b, _| {
            b.iter_custom(|iters| time_days(iters, warmed_plain, plain_day));
        });
    }
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
        bazaar::ml::model::OnnxModel::load("models/churn.json".as_ref(), &personas, None).unwrap();
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
    // The binary's allocator settings, so the figures are the engine's.
    config = {
        bazaar::alloc::Alloc::tune_system_allocator();
    bazaar::alloc::Prefault::enable();
        Criterion::default()
    };
    targets = hourly_step, soa_step, basket, output_encoding, churn_scoring
}
criterion_main!(benches);
