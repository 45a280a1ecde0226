//! Checkpoints of whole runs: writing them changes no output byte; a run stopped (a signal,
//! or killed outright) goes on with `bazaar resume` to outputs byte-identical to a run that
//! never stopped, from any day and at any thread count; a checkpoint of another version or
//! scenario, or whose outputs changed since, is refused and kept.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bazaar::checkpoint::Snapshot;
use bazaar::run::{Resume, RunError, RunOptions, StopFlag, run};
use bazaar::scenario::{Overrides, Scenario};
use bazaar::sim::{Plugin, SimBuilder};
use bevy_ecs::prelude::*;
use common::{bazaar, read_dir_bytes, root, text};

/// Twelve days around Diwali with acquisitions, every optional behaviour that keeps state
/// across days or writes a table of its own, and retention offers by value lost (the spend
/// model's predictions, made every fourth day, outlive a checkpoint between scorings).
fn scenario_text(days: u32, scale: u32) -> String {
    let dir = root().join("scenarios");
    let at = |p: &str| dir.join(p).display().to_string();
    format!(
        r#"Scenario(
    name: "resume",
    seed: 11,
    start: "2026-11-01",
    days: {days},
    catalog: include("{catalog}"),
    personas: include("{personas}"),
    population: [
        (persona: "premium", count: {premium}, new_per_day: 2.5),
        (persona: "family", count: {family}),
        (persona: "young_professional", count: {young}, new_per_day: 0.4),
        (persona: "senior", count: {senior}),
        (persona: "budget", count: {budget}),
    ],
    calendar: include("{calendar}"),
    systems: [
        Stores(count: 4, stock: 400, restock_every_days: 3, sold_out_penalty: 0.05),
        WordOfMouth(rate: 0.03, min_loyalty: 0.6, max_per_day: 40),
        Promotions(campaigns: [
            (name: "sweets", category: "sweets", discount: 0.15, from: "2026-11-05", to: "2026-11-09", lift: 1.3),
        ]),
        DailyLog,
    ],
    churn_model: (
        spec: "{models}/churn.json", every_days: 3,
        mode: Retain(top_k: 30, cost: 100, loyalty_boost: 0.3, target: ValueLost),
        spend: (spec: "{models}/spend.json", every_days: 4),
    ),
    output: (formats: [Csv, Parquet]),
)"#,
        models = root().join("models").display(),
        catalog = at("catalogs/india.ron"),
        personas = at("personas/india.ron"),
        calendar = at("calendars/india.ron"),
        premium = 300 * scale,
        family = 700 * scale,
        young = 600 * scale,
        senior = 400 * scale,
        budget = 500 * scale,
    )
}

/// `bazaar run` of `scenario` into `out` with the options every run here shares.
fn run_args<'a>(scenario: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "run",
        scenario,
        "--quiet",
        "--features",
        "--snapshot-every",
        "2",
        "--horizon",
        "3",
        "--out",
        out,
    ];
    args.extend_from_slice(extra);
    args
}

fn s(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// A run's folder, every file, checked equal to `expected` byte for byte.
fn assert_same_outputs(expected: &[(String, Vec<u8>)], dir: &Path, what: &str) {
    let got = read_dir_bytes(dir);
    let names = |v: &[(String, Vec<u8>)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&got), names(expected), "{what}: the same files");
    for ((name, a), (_, b)) in got.iter().zip(expected) {
        assert!(a == b, "{what}: {name} differs");
    }
}

/// The temporary folders beside `out` holding a checkpoint.
fn kept_checkpoints(out: &Path) -> Vec<PathBuf> {
    let prefix = format!(".{}.tmp-", out.file_name().unwrap().to_string_lossy());
    let mut found: Vec<PathBuf> = std::fs::read_dir(out.parent().unwrap())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path().join(bazaar::output::CHECKPOINT))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found
}

/// Starts the binary with `args` in the project root, its output thrown away but stderr.
fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_bazaar"))
        .args(args)
        .current_dir(root())
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until a run into `out` has kept a checkpoint, checking that `child` has not ended.
fn wait_for_checkpoint(out: &Path, child: &mut Child) {
    let started = Instant::now();
    while kept_checkpoints(out).is_empty() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before its first checkpoint"
        );
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no checkpoint"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn writing_checkpoints_changes_no_output_byte() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = common::write(dir.path(), "s.ron", &scenario_text(12, 1));
    let (plain, daily) = (dir.path().join("plain"), dir.path().join("daily"));
    let o = bazaar(&run_args(s(&scenario), s(&plain), &[]));
    assert!(o.status.success(), "{:?}", text(&o));
    let o = bazaar(&run_args(
        s(&scenario),
        s(&daily),
        &["--checkpoint-every", "1d", "--checkpoint-at", "2026-11-04"],
    ));
    assert!(o.status.success(), "{:?}", text(&o));
    let expected = read_dir_bytes(&plain);
    for table in [
        "transactions",
        "line_items",
        "stores",
        "promotions",
        "daily_metrics",
    ] {
        assert!(
            expected
                .iter()
                .any(|(n, _)| n == &format!("{table}.parquet")),
            "{table}.parquet is written"
        );
    }
    // The finished folder holds no checkpoint, only what its manifest lists.
    assert_same_outputs(&expected, &daily, "checkpointed every day");
    assert!(kept_checkpoints(&daily).is_empty());
    let o = bazaar(&["check", s(&daily)]);
    assert!(o.status.success(), "{:?}", text(&o));
}

/// Sets the stop flag, as a signal would, in the middle of day `day` (0-based).
struct StopAt {
    day: u32,
    flag: StopFlag,
}

impl Plugin for StopAt {
    fn name(&self) -> &str {
        "stop_at"
    }

    fn build(&self, sim: &mut SimBuilder) -> bazaar::plugin::Result {
        let (day, flag) = (self.day, self.flag.clone());
        sim.schedule.add_systems(
            (move |clock: Res<bazaar::calendar::Clock>| {
                if clock.day() == day && clock.hour() == 12 {
                    flag.store(15, Ordering::Relaxed);
                }
            })
            .in_set(bazaar::sim::SimSet::Observe),
        );
        Ok(())
    }
}

fn load(text: &str, out: &Path) -> Scenario {
    let mut scenario = Scenario::from_text("resume.ron", text, &bazaar::sim::registry())
        .unwrap_or_else(|e| panic!("{e}"));
    scenario
        .apply(Overrides {
            out: Some(out.to_path_buf()),
            ..Default::default()
        })
        .unwrap();
    scenario
}

fn options(threads: usize, stop_day: u32, flag: &StopFlag) -> RunOptions {
    RunOptions {
        threads,
        report: false,
        stop: Some(flag.clone()),
        plugins: vec![Box::new(StopAt {
            day: stop_day,
            flag: flag.clone(),
        })],
        ..RunOptions::default()
    }
}

#[test]
fn a_run_stopped_on_any_day_resumes_to_the_same_outputs_at_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let text = scenario_text(12, 1);
    let plain = dir.path().join("plain");
    let never = Arc::new(AtomicUsize::new(0));
    run(&load(&text, &plain), options(2, u32::MAX, &never)).unwrap();
    let expected = read_dir_bytes(&plain);
    // Day 11 is the last: its checkpoint leaves only the finish to do.
    for (stop_day, threads, resumed_threads) in [(0, 2, 1), (4, 1, 2), (10, 2, 2), (11, 2, 1)] {
        let out = dir.path().join(format!("stopped-{stop_day}"));
        let scenario = load(&text, &out);
        let flag = Arc::new(AtomicUsize::new(0));
        let stopped = run(&scenario, options(threads, stop_day, &flag)).unwrap_err();
        let RunError::Stopped {
            day, checkpoint, ..
        } = &stopped
        else {
            panic!("stopped: {stopped}");
        };
        assert_eq!(*day, stop_day + 1, "the day is finished first");
        assert_eq!(stopped.exit_code(), 143);
        let message = stopped.to_string();
        assert!(
            message.contains("stopped by SIGTERM") && message.contains("bazaar resume"),
            "{message}"
        );
        assert!(!out.exists(), "nothing is put in place");
        assert_eq!(kept_checkpoints(&out), vec![checkpoint.clone()]);
        let snapshot = Snapshot::read(checkpoint).unwrap();
        assert_eq!(snapshot.header.day, stop_day + 1);
        let resume = Resume {
            path: checkpoint.clone(),
            snapshot,
        };
        let mut options = options(resumed_threads, u32::MAX, &never);
        options.resume = Some(resume);
        run(&scenario, options).unwrap();
        assert_same_outputs(
            &expected,
            &out,
            &format!(
                "stopped after day {stop_day} on {threads} threads, resumed on {resumed_threads}"
            ),
        );
        assert!(
            kept_checkpoints(&out).is_empty(),
            "the resumed folder is taken up"
        );
    }
}

#[test]
fn a_run_killed_outright_resumes_to_the_same_outputs() {
    let dir = tempfile::tempdir().unwrap();
    // Long enough that the kill comes well before the end.
    let scenario = common::write(dir.path(), "s.ron", &scenario_text(90, 6));
    let (plain, killed) = (dir.path().join("plain"), dir.path().join("killed"));
    let mut child = spawn(&run_args(
        s(&scenario),
        s(&killed),
        &["--checkpoint-every", "3d"],
    ));
    wait_for_checkpoint(&killed, &mut child);
    // Past the checkpoint, into days whose rows are written but not checkpointed.
    std::thread::sleep(Duration::from_millis(100));
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed before the end");
    assert!(!killed.exists());
    let checkpoint = kept_checkpoints(&killed);
    assert_eq!(checkpoint.len(), 1, "the killed run's folder is kept");
    let day = Snapshot::read(&checkpoint[0]).unwrap().header.day;
    assert!((3..90).contains(&day), "day {day}");

    let o = bazaar(&run_args(s(&scenario), s(&plain), &[]));
    assert!(o.status.success(), "{:?}", text(&o));
    // Resumed by naming the output folder, from another working folder.
    let o = Command::new(env!("CARGO_BIN_EXE_bazaar"))
        .args(["resume", s(&killed), "--quiet"])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(o.status.success(), "{:?}", text(&o));
    assert_same_outputs(
        &read_dir_bytes(&plain),
        &killed,
        &format!("killed after day {day}"),
    );
    assert!(kept_checkpoints(&killed).is_empty());
}

/// A run of `text` stopped by SIGTERM-like flag after day 3, its checkpoint kept; returns
/// the scenario file, the output folder and the checkpoint.
fn stopped_run(dir: &Path, text: &str) -> (PathBuf, PathBuf, PathBuf) {
    let scenario = common::write(dir, "s.ron", text);
    let out = dir.join("out");
    let mut child = spawn(&run_args(
        s(&scenario),
        s(&out),
        &["--checkpoint-at", "2026-11-04"],
    ));
    wait_for_checkpoint(&out, &mut child);
    child.kill().unwrap();
    child.wait().unwrap();
    let checkpoint = kept_checkpoints(&out).remove(0);
    (scenario, out, checkpoint)
}

fn refused(args: &[&str], says: &str) {
    let o = bazaar(args);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains(says), "{err}");
}

#[test]
fn checkpoints_of_something_else_are_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let text = scenario_text(40, 6);
    let (scenario, out, checkpoint) = stopped_run(dir.path(), &text);

    // The scenario changed since: refused, the folder kept for when it is put back.
    std::fs::write(&scenario, text.replace("seed: 11", "seed: 12")).unwrap();
    refused(
        &["resume", s(&out)],
        "the scenario or its churn model changed since",
    );
    std::fs::write(&scenario, &text).unwrap();
    let checkpoint = kept_checkpoints(&out).pop().unwrap_or(checkpoint);

    // Another version's checkpoint.
    let original = std::fs::read(&checkpoint).unwrap();
    let mut other = Snapshot::read(&checkpoint).unwrap();
    other.header.version = "0.0.1".into();
    other.write(&checkpoint).unwrap();
    refused(&["resume", s(&checkpoint)], "written by Bazaar 0.0.1");
    std::fs::write(&checkpoint, &original).unwrap();

    // Not a checkpoint.
    let junk = common::write(dir.path(), "junk.bazaar", "not a checkpoint");
    refused(&["resume", s(&junk)], "cannot resume");
    refused(
        &["resume", s(&dir.path().join("nothing"))],
        "no checkpoint found",
    );

    // A copy of the folder elsewhere is not the run's: refused, nothing moved.
    let copy = dir.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    for e in std::fs::read_dir(checkpoint.parent().unwrap()).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
    }
    refused(
        &["resume", s(&copy.join(bazaar::output::CHECKPOINT))],
        "not the temporary folder of a Bazaar run",
    );
    assert!(copy.join("transactions.csv").is_file());

    // An output cut short since the checkpoint.
    let work = checkpoint.parent().unwrap();
    let transactions = work.join("transactions.csv");
    let bytes = std::fs::read(&transactions).unwrap();
    std::fs::write(&transactions, &bytes[..bytes.len() / 2]).unwrap();
    refused(&["resume", s(&checkpoint)], "transactions.csv");
    assert!(!out.exists(), "nothing is put in place");
    assert_eq!(kept_checkpoints(&out).len(), 1, "the folder is still kept");
}

#[test]
fn a_run_with_the_churn_model_and_report_stopped_by_sigterm_resumes_to_the_same_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, stopped) = (dir.path().join("plain"), dir.path().join("stopped"));
    // Diwali with offers to the most value at risk: the spend model scores every third day,
    // so a checkpoint falls between scorings and must carry the predictions.
    let scenarios = root().join("scenarios");
    let diwali = std::fs::read_to_string(scenarios.join("diwali.ron")).unwrap();
    let retain = "mode: Retain(top_k: 2000, threshold: 0.05, cost: 150, loyalty_boost: 0.3, cooldown_days: 30),";
    assert!(diwali.contains(retain));
    let variant = diwali
        .replace("include(\"", &format!("include(\"{}/", scenarios.display()))
        .replace("\"../models/", &format!("\"{}/models/", root().display()))
        .replace(
            retain,
            "mode: Retain(top_k: 60, cost: 150, loyalty_boost: 0.3, cooldown_days: 30, target: ValueLost),\n\
             spend: (spec: \"MODELS/spend.json\", every_days: 3),",
        )
        .replace("MODELS", &root().join("models").display().to_string());
    let scenario = dir.path().join("diwali_value.ron");
    std::fs::write(&scenario, variant).unwrap();
    let args = |out: &Path| {
        vec![
            "run".to_owned(),
            s(&scenario).to_owned(),
            "--scale".to_owned(),
            "0.2".to_owned(),
            "--quiet".to_owned(),
            "--out".to_owned(),
            s(out).to_owned(),
        ]
    };
    let o = Command::new(env!("CARGO_BIN_EXE_bazaar"))
        .args(args(&plain))
        .current_dir(root())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(o.status.success(), "{:?}", text(&o));
    let mut run = args(&stopped);
    run.extend(["--checkpoint-every".to_owned(), "2d".to_owned()]);
    let mut child = spawn(&run.iter().map(String::as_str).collect::<Vec<_>>());
    wait_for_checkpoint(&stopped, &mut child);
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let o = child.wait_with_output().unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(143), "stopped mid-run: {err}");
    assert!(err.contains("bazaar resume"), "{err}");
    let o = bazaar(&["resume", s(&stopped), "--quiet", "--threads", "1"]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_same_outputs(&read_dir_bytes(&plain), &stopped, "the Diwali run");
}

#[test]
fn a_churn_model_changed_since_the_checkpoint_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["churn.json", "churn.onnx"] {
        std::fs::copy(root().join("models").join(f), dir.path().join(f)).unwrap();
    }
    let scenarios = root().join("scenarios");
    let diwali = std::fs::read_to_string(scenarios.join("diwali.ron"))
        .unwrap()
        .replace("include(\"", &format!("include(\"{}/", scenarios.display()))
        .replace("../models/churn.json", "churn.json");
    let scenario = common::write(dir.path(), "s.ron", &diwali);
    let out = dir.path().join("out");
    let mut child = spawn(&[
        "run",
        s(&scenario),
        "--scale",
        "0.2",
        "--quiet",
        "--checkpoint-every",
        "1d",
        "--out",
        s(&out),
    ]);
    wait_for_checkpoint(&out, &mut child);
    child.kill().unwrap();
    child.wait().unwrap();
    // The model's card rewritten in place (as a retraining does): the same path, other
    // bytes, still a valid model.
    let card = dir.path().join("churn.json");
    let bytes = std::fs::read(&card).unwrap();
    let mut changed = bytes.clone();
    changed.extend_from_slice(b"\n");
    std::fs::write(&card, &changed).unwrap();
    refused(&["resume", s(&out)], "its churn model changed since");
    assert_eq!(kept_checkpoints(&out).len(), 1, "the folder is kept");
    std::fs::write(&card, &bytes).unwrap();
    let o = bazaar(&["resume", s(&out), "--quiet"]);
    assert!(o.status.success(), "{:?}", text(&o));
}
