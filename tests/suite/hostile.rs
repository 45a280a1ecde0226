//! Hostile and careless input: output folders that are not Bazaar's, interrupted and
//! concurrent runs, numbers that would overflow, inputs of any size, broken models and
//! damaged output folders. Each test is named after the failure it guards against.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{MINIMAL, bazaar, root, text, write};

/// A process id no process has: above Linux's largest (`pid_max` is at most 2^22).
const DEAD_PID: u32 = 4_194_304 + 4321;

/// Runs MINIMAL (or `scenario`) into `out`, returning (exit code, stderr).
fn run_into(scenario: &Path, out: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let mut args = vec![
        "run",
        scenario.to_str().unwrap(),
        "--quiet",
        "--no-report",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = bazaar(&args);
    let (_, err) = text(&o);
    assert!(!err.contains("panicked"), "{err}");
    (o.status.code(), err)
}

fn minimal(dir: &Path) -> PathBuf {
    write(dir, "minimal.ron", MINIMAL)
}

/// The names in a folder, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The scenario's validation error (asserting exit 2 and no panic).
fn invalid(dir: &Path, text_: &str) -> String {
    let path = write(dir, "bad.ron", text_);
    let o = bazaar(&["validate", path.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

// ---------------------------------------------------------------------------------------
// 1. Ownership of output folders.

#[test]
fn a_users_folder_with_a_manifest_json_is_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web");
    std::fs::create_dir(&web).unwrap();
    std::fs::write(
        web.join("manifest.json"),
        r#"{"name": "my app", "icons": []}"#,
    )
    .unwrap();
    std::fs::write(web.join("index.html"), "<h1>mine</h1>").unwrap();
    let (code, err) = run_into(&minimal(dir.path()), &web, &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("refusing to replace"), "{err}");
    assert_eq!(names(&web), ["index.html", "manifest.json"]);
    assert_eq!(
        std::fs::read_to_string(web.join("index.html")).unwrap(),
        "<h1>mine</h1>"
    );
}

#[test]
fn a_manifest_without_bazaars_marker_is_not_ownership() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (code, err) = run_into(&minimal(dir.path()), &out, &[]);
    assert_eq!(code, Some(0), "{err}");
    // Strip the marker: the folder is then someone else's.
    let m = out.join("manifest.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&m).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("format");
    std::fs::write(&m, serde_json::to_vec(&v).unwrap()).unwrap();
    let (code, err) = run_into(&minimal(dir.path()), &out, &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("does not mark it as a Bazaar output"), "{err}");
}

#[test]
fn a_file_added_to_an_output_folder_is_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    assert_eq!(run_into(&minimal(dir.path()), &out, &[]).0, Some(0));
    std::fs::write(out.join("my_notes.txt"), "analysis in progress").unwrap();
    let (code, err) = run_into(&minimal(dir.path()), &out, &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("`my_notes.txt` is not one of the files"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("my_notes.txt")).unwrap(),
        "analysis in progress"
    );
}

#[test]
fn an_edited_output_file_is_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    assert_eq!(run_into(&minimal(dir.path()), &out, &[]).0, Some(0));
    let tx = out.join("transactions.csv");
    let mut t = std::fs::read_to_string(&tx).unwrap();
    t.push_str("# checked by hand\n");
    std::fs::write(&tx, &t).unwrap();
    let (code, err) = run_into(&minimal(dir.path()), &out, &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("`transactions.csv` has changed"), "{err}");
    assert_eq!(std::fs::read_to_string(&tx).unwrap(), t);
}

#[test]
fn an_earlier_output_is_replaced_in_one_step_leaving_nothing_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let scenario = minimal(dir.path());
    assert_eq!(run_into(&scenario, &out, &["--seed", "1"]).0, Some(0));
    let first = std::fs::read(out.join("manifest.json")).unwrap();
    let (code, err) = run_into(&scenario, &out, &["--seed", "2"]);
    assert_eq!(code, Some(0), "{err}");
    assert_ne!(std::fs::read(out.join("manifest.json")).unwrap(), first);
    // Only the output and its lock file remain: no temporary or old folder.
    assert_eq!(names(dir.path()), [".out.lock", "minimal.ron", "out"]);
    let o = bazaar(&["check", out.to_str().unwrap()]);
    assert!(o.status.success(), "{:?}", text(&o));
}

#[test]
fn a_crash_between_the_fallbacks_two_renames_is_recovered_by_the_next_run() {
    // The fallback (no RENAME_EXCHANGE) renames the old output aside, then the new one in.
    // A crash between the two leaves no target and `.out.old-PID`: the next run puts the
    // old output back, then replaces it as usual.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let scenario = minimal(dir.path());
    assert_eq!(run_into(&scenario, &out, &[]).0, Some(0));
    let old = dir.path().join(format!(".out.old-{DEAD_PID}"));
    std::fs::rename(&out, &old).unwrap();
    let (code, err) = run_into(&scenario, &out, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("restored"), "{err}");
    assert!(!old.exists());
    assert!(out.join("manifest.json").is_file());
}

#[test]
fn stale_temporary_folders_of_dead_runs_are_removed_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let scenario = minimal(dir.path());
    // An unfinished folder (its marker) and a swapped-out old output (a manifest).
    let unfinished = dir.path().join(format!(".out.tmp-{DEAD_PID}"));
    std::fs::create_dir(&unfinished).unwrap();
    std::fs::write(unfinished.join(".bazaar-partial"), "1").unwrap();
    std::fs::write(unfinished.join("transactions.csv"), vec![b'x'; 1 << 20]).unwrap();
    // An old output swapped out by RENAME_EXCHANGE whose run died before deleting it.
    let swapped = dir.path().join(format!(".out.tmp-{}", DEAD_PID + 1));
    assert_eq!(run_into(&scenario, &swapped, &[]).0, Some(0));
    let (code, err) = run_into(&scenario, &out, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("removed") && err.contains(&format!("left by process {DEAD_PID}")),
        "{err}"
    );
    assert!(!unfinished.exists() && !swapped.exists());
}

#[test]
fn a_folder_named_like_a_temporary_one_but_not_bazaars_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let lookalike = dir.path().join(format!(".out.tmp-{DEAD_PID}"));
    std::fs::create_dir(&lookalike).unwrap();
    std::fs::write(lookalike.join("thesis.tex"), "chapter 1").unwrap();
    let (code, err) = run_into(&minimal(dir.path()), &out, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("left") && err.contains("alone"), "{err}");
    assert_eq!(
        std::fs::read_to_string(lookalike.join("thesis.tex")).unwrap(),
        "chapter 1"
    );
}

#[test]
fn a_sigkilled_run_leaves_a_folder_the_next_run_removes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut child = long_run(dir.path(), &out);
    let tmp = wait_for_temporary_folder(dir.path(), child.id());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(tmp.exists(), "SIGKILL cannot clean up");
    let (code, err) = run_into(&minimal(dir.path()), &out, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("removed"), "{err}");
    assert!(!tmp.exists());
}

#[test]
fn two_runs_on_one_out_are_kept_apart_and_the_second_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut child = long_run(dir.path(), &out);
    wait_for_temporary_folder(dir.path(), child.id());
    let (code, err) = run_into(&minimal(dir.path()), &out, &[]);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("being written by another Bazaar run"), "{err}");
}

#[test]
fn a_symlinked_out_is_written_through_and_the_link_kept() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    let link = dir.path().join("link");
    let scenario = minimal(dir.path());
    assert_eq!(run_into(&scenario, &real, &["--seed", "1"]).0, Some(0));
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let (code, err) = run_into(&scenario, &link, &["--seed", "2"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(real.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["seed"], 2, "the folder behind the link holds the new run");
}

#[test]
fn a_dangling_symlinked_out_is_written_through_to_the_folder_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink("nowhere", &link).unwrap();
    let (code, err) = run_into(&minimal(dir.path()), &link, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(dir.path().join("nowhere/manifest.json").is_file());
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn a_crash_in_the_fallback_behind_a_symlinked_out_is_recovered() {
    // The folder behind the link was renamed aside and the run died: the link dangles.
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    let link = dir.path().join("link");
    let scenario = minimal(dir.path());
    assert_eq!(run_into(&scenario, &real, &[]).0, Some(0));
    std::os::unix::fs::symlink("real", &link).unwrap();
    std::fs::rename(&real, dir.path().join(format!(".real.old-{DEAD_PID}"))).unwrap();
    let (code, err) = run_into(&scenario, &link, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("restored"), "{err}");
    assert!(real.join("manifest.json").is_file());
}

#[test]
fn a_deletion_cut_short_is_finished_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let half = dir.path().join(format!(".out.del-{DEAD_PID}"));
    std::fs::create_dir_all(half.join("charts")).unwrap();
    std::fs::write(half.join("charts/a.png"), "x").unwrap();
    let (code, err) = run_into(&minimal(dir.path()), &dir.path().join("out"), &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("finished deleting"), "{err}");
    assert!(!half.exists());
}

#[test]
fn an_out_with_a_trailing_slash_or_dot_is_the_folder_itself() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = minimal(dir.path());
    for out in ["out/", "out/."] {
        let target = dir.path().join(out);
        let (code, err) = run_into(&scenario, &target, &[]);
        assert_eq!(code, Some(0), "{out}: {err}");
        assert!(dir.path().join("out/manifest.json").is_file());
    }
    let (code, err) = run_into(&scenario, &dir.path().join("out/.."), &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("names no folder of its own"), "{err}");
}

// ---------------------------------------------------------------------------------------
// 2. Signals.

/// A run long enough to be interrupted: the quick scenario over a year.
fn long_run(dir: &Path, out: &Path) -> std::process::Child {
    let _ = dir;
    Command::new(env!("CARGO_BIN_EXE_bazaar"))
        .args([
            "run",
            "scenarios/quick.ron",
            "--days",
            "2000",
            "--scale",
            "5",
            "--quiet",
            "--no-report",
            "--out",
        ])
        .arg(out)
        .current_dir(root())
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until process `pid` has created its temporary folder in `dir`.
fn wait_for_temporary_folder(dir: &Path, pid: u32) -> PathBuf {
    let tmp = dir.join(format!(".out.tmp-{pid}"));
    let started = Instant::now();
    while !tmp.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the run never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Well into the hourly loop.
    std::thread::sleep(Duration::from_millis(300));
    tmp
}

fn stopped_by(signal: &str, code: i32, name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let child = long_run(dir.path(), &out);
    let tmp = wait_for_temporary_folder(dir.path(), child.id());
    let ok = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "{err}");
    assert!(
        err.contains(&format!("stopped by {name} at the end of")),
        "{err}"
    );
    // The day is finished and a checkpoint written; the folder is kept to be resumed.
    let checkpoint = tmp.join(bazaar::output::CHECKPOINT);
    assert!(
        err.contains(&format!("bazaar resume {}", checkpoint.display())),
        "{err}"
    );
    assert!(checkpoint.is_file(), "a checkpoint is kept");
    assert!(!tmp.join("manifest.json").exists(), "unfinished");
    assert!(!out.exists(), "nothing is put in place");
    // The next run on the folder keeps it too.
    let o = Command::new(env!("CARGO_BIN_EXE_bazaar"))
        .args([
            "run",
            "scenarios/quick.ron",
            "--days",
            "1",
            "--quiet",
            "--no-report",
            "--out",
        ])
        .arg(&out)
        .current_dir(root())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("it holds a checkpoint"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(checkpoint.is_file() && out.join("manifest.json").is_file());
}

#[test]
fn a_second_signal_stops_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // Days long enough (400,000 customers) that the second signal comes within one.
    let child = Command::new(env!("CARGO_BIN_EXE_bazaar"))
        .args([
            "run",
            "scenarios/quick.ron",
            "--days",
            "200",
            "--scale",
            "200",
        ])
        .args(["--quiet", "--no-report", "--out"])
        .arg(&out)
        .current_dir(root())
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = child;
    wait_for_temporary_folder(dir.path(), child.id());
    // The second signal goes as soon as the run says it heard the first (not after a fixed
    // pause, which a loaded machine can stretch past the end of the day).
    let stderr = child.stderr.take().unwrap();
    let (heard, lines) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("a second signal stops at once") {
                let _ = heard.send(());
            }
            all += &line;
            all.push('\n');
        }
        all
    });
    let interrupt = || {
        let ok = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    };
    interrupt();
    lines
        .recv_timeout(Duration::from_secs(60))
        .expect("the run says it heard the first signal");
    interrupt();
    let status = child.wait().unwrap();
    let err = reader.join().unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(
        !err.contains("stopped by SIGINT"),
        "no checkpoint waited for: {err}"
    );
    assert!(!out.exists(), "nothing is put in place");
}

#[test]
fn sigint_stops_a_run_cleanly_with_exit_130() {
    stopped_by("-INT", 130, "SIGINT");
}

#[test]
fn sigterm_stops_a_run_cleanly_with_exit_143() {
    stopped_by("-TERM", 143, "SIGTERM");
}

// ---------------------------------------------------------------------------------------
// 3. Money, counts and dates cannot overflow.

/// The validation error of MINIMAL with one replacement made.
fn refused_edit(from: &str, to: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    invalid(dir.path(), &minimal_with(from, to))
}

/// MINIMAL with one replacement made.
fn minimal_with(from: &str, to: &str) -> String {
    assert!(MINIMAL.contains(from), "{from}");
    MINIMAL.replacen(from, to, 1)
}

#[test]
fn an_event_of_four_billion_days_is_a_located_error() {
    let err = refused_edit(
        "population:",
        "events: [Sale(name: \"forever\", from: \"2026-11-01\", days: 4294967295)],\n    population:",
    );
    assert!(
        err.contains("`events[0].days`") && err.contains("longer than the longest run"),
        "{err}"
    );
}

#[test]
fn new_per_day_of_1e19_or_1e308_is_refused() {
    for n in ["1e19", "1e308"] {
        let err = refused_edit("count: 50)", &format!("count: 50, new_per_day: {n})"));
        assert!(err.contains("`population[0].new_per_day`"), "{err}");
    }
}

#[test]
fn a_recency_step_of_4294967295_days_is_refused_without_allocating() {
    let err = refused_edit(
        "(days: 0, p: 0.3)",
        "(days: 0, p: 0.3), (days: 4294967295, p: 0.5)",
    );
    assert!(
        err.contains("`personas[0].visits.recency[1].days`") && err.contains("longest run"),
        "{err}"
    );
}

#[test]
fn prices_or_quantities_that_would_overflow_money_are_refused() {
    let err = refused_edit("Uniform(800, 2000)", "Uniform(1e300, 1e301)");
    assert!(err.contains("`personas[0].basket[0].price`"), "{err}");
    let err = refused_edit("quantity: (1, 2)", "quantity: (1, 4294967295)");
    assert!(err.contains("`personas[0].basket[0].quantity`"), "{err}");
    // Each value within its own limit, the basket they make over Bazaar's.
    let err = refused_edit(
        "quantity: (1, 2), price: Uniform(800, 2000)",
        "quantity: (1, 100000), price: Uniform(800, 9000000)",
    );
    assert!(
        err.contains("`personas[0].basket`") && err.contains("largest possible basket"),
        "{err}"
    );
}

#[test]
fn a_calendar_factor_past_the_limit_is_refused() {
    let err = refused_edit(
        "population:",
        "events: [Sale(name: \"x\", from: \"2026-11-01\", price: (1e30, 1e30))],\n    population:",
    );
    assert!(err.contains("`events[0].price`"), "{err}");
}

#[test]
fn population_counts_whose_sum_wraps_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let two = MINIMAL
        .replacen(
            "    personas: [\n",
            "    personas: [\n        Persona(name: \"twin\", age: (30, 50), income: (1, 2), visits: (recency: [(days: 0, p: 0.3)]), hours: Slots([(\"10:00\", \"12:00\")]), basket: [(category: \"rice\", p: 0.8, quantity: (1, 2), price: Fixed(10))]),\n",
            1,
        )
        .replacen(
            "population: [(persona: \"family\", count: 50)]",
            "population: [(persona: \"family\", count: 9223372036854775807), (persona: \"twin\", count: 9223372036854775807)]",
            1,
        );
    let err = invalid(dir.path(), &two);
    assert!(
        err.contains("`population`") && err.contains("more than the 4294967295"),
        "{err}"
    );
}

#[test]
fn days_and_scale_overrides_cannot_bypass_the_limits() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = minimal(dir.path());
    let out = dir.path().join("out");
    for (flag, value, says) in [
        ("--days", "100000", "a run lasts from 1 to"),
        ("--scale", "1e300", "more than the 4294967295"),
    ] {
        let (code, err) = run_into(&scenario, &out, &[flag, value]);
        assert_eq!(code, Some(2), "{flag} {value}: {err}");
        assert!(err.contains(says), "{err}");
        assert!(!out.exists());
    }
    let late = write(
        dir.path(),
        "late.ron",
        &minimal_with("2026-11-01", "9999-12-01"),
    );
    let (code, err) = run_into(&late, &out, &["--days", "100"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("after the year 9999"), "{err}");
}

#[test]
fn an_empty_persona_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = invalid(
        dir.path(),
        &MINIMAL
            .replacen("name: \"family\"", "name: \"\"", 1)
            .replacen("persona: \"family\"", "persona: \"\"", 1),
    );
    assert!(err.contains("`personas[0].name`"), "{err}");
}

#[test]
fn dates_before_year_1_or_after_9999_are_refused() {
    let err = refused_edit("2026-11-01", "0000-12-30");
    assert!(
        err.contains("`start`") && err.contains("outside the years"),
        "{err}"
    );
    let err = refused_edit(
        "start: \"2026-11-01\",\n    days: 3",
        "start: \"9999-12-30\",\n    days: 3",
    );
    assert!(
        err.contains("`days`") && err.contains("after the year 9999"),
        "{err}"
    );
}

#[test]
fn a_population_that_cannot_fit_in_memory_is_refused_by_validate_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "huge.ron",
        &minimal_with("count: 50", "count: 4000000000"),
    );
    let o = bazaar(&["validate", path.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("huge.ron:") && err.contains("`population`") && err.contains("MiB"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------
// 4. Inputs of any size.

#[test]
fn an_include_fan_out_is_capped_with_a_location() {
    let dir = tempfile::tempdir().unwrap();
    // Each level includes the next ten times: 10^7 copies of a 1 KB leaf.
    std::fs::write(
        dir.path().join("l7.ron"),
        format!("\"{}\"", "x".repeat(1000)),
    )
    .unwrap();
    for level in (0..7).rev() {
        let inner = vec![format!("include(\"l{}.ron\")", level + 1); 10].join(", ");
        std::fs::write(
            dir.path().join(format!("l{level}.ron")),
            format!("[{inner}]"),
        )
        .unwrap();
    }
    let err = invalid(
        dir.path(),
        &minimal_with(
            "name: \"minimal\",",
            "name: \"minimal\", description: include(\"l0.ron\"),",
        ),
    );
    assert!(err.contains("too large") && err.contains(".ron:"), "{err}");
}

#[test]
fn text_an_include_call_skips_still_counts_towards_the_cap() {
    // Each file adds nothing to the expansion (its bytes are inside its include call's
    // parentheses) but is read whole, every time it is included.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("e.ron"), "").unwrap();
    std::fs::write(
        dir.path().join("pad.ron"),
        format!("include({}\"e.ron\")", " ".repeat(1 << 20)),
    )
    .unwrap();
    let many = vec!["include(\"pad.ron\")"; 200].join(" ");
    let err = invalid(
        dir.path(),
        &minimal_with(
            "name: \"minimal\",",
            &format!("name: \"minimal\", description: \"x\" {many},"),
        ),
    );
    assert!(
        err.contains("too large") && err.contains("every time it is included"),
        "{err}"
    );
}

#[test]
fn an_include_of_a_device_is_refused() {
    let err = refused_edit(
        "name: \"minimal\",",
        "name: \"minimal\", description: include(\"/dev/zero\"),",
    );
    assert!(err.contains("not a regular file"), "{err}");
}

#[test]
fn a_catalog_of_600_thousand_categories_is_checked_in_linear_time() {
    // Quadratic checks (duplicate names, category look-ups) would take minutes here.
    let dir = tempfile::tempdir().unwrap();
    let catalog: Vec<String> = (0..600_000).map(|i| format!("(name: \"c{i}\")")).collect();
    let text_ = minimal_with(
        "catalog: [(name: \"rice\", group: \"grocery\"), (name: \"sweets\")]",
        &format!("catalog: [(name: \"rice\"), {}]", catalog.join(",")),
    );
    let err = invalid(dir.path(), &text_);
    assert!(err.contains("at most 65535 are supported"), "{err}");
}

#[test]
fn an_error_on_a_10_mb_line_prints_a_readable_snippet() {
    let dir = tempfile::tempdir().unwrap();
    let long = format!(
        "Scenario(name: \"x\", description: \"{}\", seed: 1, start: \"2026-13-01\", days: 1, catalog: [], personas: [], population: [])",
        "y".repeat(10 << 20)
    );
    let err = invalid(dir.path(), &long);
    assert!(err.len() < 4_000, "{} bytes of error", err.len());
    assert!(
        err.contains("`start`") && err.contains("2026-13-01"),
        "{err}"
    );
}

#[test]
fn invalid_utf8_gets_a_location_and_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = MINIMAL.as_bytes().to_vec();
    let at = MINIMAL.find("rice").unwrap();
    bytes[at] = 0xE9; // Latin-1 'é'
    let path = dir.path().join("latin1.ron");
    std::fs::write(&path, bytes).unwrap();
    let o = bazaar(&["validate", path.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("latin1.ron:6:") && err.contains("not valid UTF-8") && err.contains("hint:"),
        "{err}"
    );
}

#[test]
fn a_byte_order_mark_gets_a_location_and_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bom.ron");
    std::fs::write(
        &path,
        [&[0xEF, 0xBB, 0xBF][..], MINIMAL.as_bytes()].concat(),
    )
    .unwrap();
    let o = bazaar(&["validate", path.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bom.ron:1:1") && err.contains("byte-order mark") && err.contains("hint:"),
        "{err}"
    );
}

#[test]
fn different_syntax_errors_get_different_messages() {
    let cases = [
        ("seed: 1,", "seed: 1", "missing `,` before field `start`"),
        (
            "(name: \"sweets\")]",
            "(name: \"sweets\"]",
            "`]` does not close the `(`",
        ),
        (
            "(name: \"rice\", group: \"grocery\"), (name",
            "(name: \"rice\", group: \"grocery\") (name",
            "expected `,` or `]` here, found `(`",
        ),
        (
            "seed: 1,",
            "seed: 1,,",
            "expected a field name here, found `,`",
        ),
    ];
    for (from, to, says) in cases {
        let err = refused_edit(from, to);
        assert!(err.contains(says), "{to}: {err}");
        assert!(!err.contains("Expected comma"), "{err}");
    }
}

#[test]
fn a_raw_string_with_quotes_does_not_confuse_the_include_pre_pass() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "catalog.ron",
        "[(name: \"rice\"), (name: \"sweets\")]",
    );
    let text_ = minimal_with(
        "catalog: [(name: \"rice\", group: \"grocery\"), (name: \"sweets\")]",
        "description: r#\"a \"quoted word\"#,\n    catalog: include(\"catalog.ron\")",
    );
    let path = write(dir.path(), "raw.ron", &text_);
    let o = bazaar(&["validate", path.to_str().unwrap()]);
    assert!(o.status.success(), "{:?}", text(&o));
}

// ---------------------------------------------------------------------------------------
// 5. Models.

/// Protobuf encoding, enough for a small ONNX graph.
mod pb {
    pub fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    pub fn int(field: u32, v: u64, out: &mut Vec<u8>) {
        varint(u64::from(field) << 3, out);
        varint(v, out);
    }
    pub fn bytes(field: u32, b: &[u8], out: &mut Vec<u8>) {
        varint((u64::from(field) << 3) | 2, out);
        varint(b.len() as u64, out);
        out.extend_from_slice(b);
    }
    pub fn msg(field: u32, f: impl FnOnce(&mut Vec<u8>), out: &mut Vec<u8>) {
        let mut inner = Vec::new();
        f(&mut inner);
        bytes(field, &inner, out);
    }
}

/// An ONNX model (opset 13) taking `features` [N, width] float32 and giving `probabilities`
/// [N, width] through `nodes` (op, inputs, output); `constants` are float scalars.
fn onnx_model(width: u64, nodes: &[(&str, &[&str], &str)], constants: &[(&str, f32)]) -> Vec<u8> {
    use pb::*;
    let value_info = |name: &str, out: &mut Vec<u8>, field: u32| {
        msg(
            field,
            |v| {
                bytes(1, name.as_bytes(), v);
                msg(
                    2,
                    |t| {
                        msg(
                            1,
                            |tt| {
                                int(1, 1, tt); // FLOAT
                                msg(
                                    2,
                                    |shape| {
                                        msg(1, |d| bytes(2, b"N", d), shape);
                                        msg(1, |d| int(1, width, d), shape);
                                    },
                                    tt,
                                );
                            },
                            t,
                        )
                    },
                    v,
                );
            },
            out,
        )
    };
    let mut model = Vec::new();
    int(1, 8, &mut model); // ir_version
    bytes(2, b"bazaar-tests", &mut model);
    msg(
        7,
        |g| {
            for (op, inputs, output) in nodes {
                msg(
                    1,
                    |n| {
                        for i in *inputs {
                            bytes(1, i.as_bytes(), n);
                        }
                        bytes(2, output.as_bytes(), n);
                        bytes(4, op.as_bytes(), n);
                    },
                    g,
                );
            }
            bytes(2, b"g", g);
            for (name, value) in constants {
                msg(
                    5,
                    |t| {
                        int(2, 1, t); // FLOAT, a scalar (no dims)
                        bytes(8, name.as_bytes(), t);
                        bytes(9, &value.to_le_bytes(), t);
                    },
                    g,
                );
            }
            value_info("features", g, 11);
            value_info("probabilities", g, 12);
        },
        &mut model,
    );
    msg(8, |o| int(2, 13, o), &mut model); // opset_import { version: 13 }
    model
}

/// The shipped model description with `onnx` as its model, in `dir`.
fn churn_model(dir: &Path, onnx: &[u8]) -> PathBuf {
    std::fs::write(dir.join("m.onnx"), onnx).unwrap();
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root().join("models/churn.json")).unwrap()).unwrap();
    spec["model"] = "m.onnx".into();
    let path = dir.join("churn.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
    path
}

/// The quick scenario scored daily by the model at `spec`, driving churn.
fn scored_scenario(dir: &Path, spec: &Path) -> PathBuf {
    let text_ = std::fs::read_to_string(root().join("scenarios/quick.ron"))
        .unwrap()
        .replace(
            "include(\"",
            &format!("include(\"{}/scenarios/", root().display()),
        );
    let text_ = text_
        .trim_end()
        .trim_end_matches(')')
        .trim_end()
        .trim_end_matches(',')
        .to_owned()
        + &format!(
            ",\n    churn_model: (spec: \"{}\", every_days: 1, mode: Drive),\n)\n",
            spec.display()
        );
    write(dir, "scored.ron", &text_)
}

#[test]
fn a_churn_model_whose_outputs_are_not_probabilities_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    // Identity: the "probability" is the feature `days_since_purchase`, 10 or 100 at times.
    let spec = churn_model(
        dir.path(),
        &onnx_model(16, &[("Identity", &["features"], "probabilities")], &[]),
    );
    let scenario = scored_scenario(dir.path(), &spec);
    let out = dir.path().join("out");
    let (code, err) = run_into(&scenario, &out, &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("probe batch") && err.contains("not a probability in [0, 1]"),
        "{err}"
    );
    assert!(!out.exists());
    assert_eq!(names(dir.path()), ["churn.json", "m.onnx", "scored.ron"]);
}

#[test]
fn a_nan_churn_score_at_run_time_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    // 0 * 1/(x - 3): 0 for every probe value, NaN for a customer 3 days past a purchase.
    let spec = churn_model(
        dir.path(),
        &onnx_model(
            16,
            &[
                ("Sub", &["features", "three"], "d"),
                ("Div", &["one", "d"], "r"),
                ("Mul", &["r", "zero"], "probabilities"),
            ],
            &[("three", 3.0), ("one", 1.0), ("zero", 0.0)],
        ),
    );
    let scenario = scored_scenario(dir.path(), &spec);
    let out = dir.path().join("out");
    let (code, err) = run_into(&scenario, &out, &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("churn scoring failed") && err.contains("NaN"),
        "{err}"
    );
    assert!(!out.exists());
}

// ---------------------------------------------------------------------------------------
// 6. `bazaar check` and `bazaar report`.

/// A finished output folder of MINIMAL (with its report) in `dir/out`.
fn finished(dir: &Path, formats: &str) -> PathBuf {
    let out = dir.join("out");
    let o = bazaar(&[
        "run",
        minimal(dir).to_str().unwrap(),
        "--quiet",
        "--format",
        formats,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    out
}

fn check(out: &Path) -> (Option<i32>, String) {
    let o = bazaar(&["check", out.to_str().unwrap()]);
    let (stdout, err) = text(&o);
    assert!(!err.contains("panicked"), "{err}");
    (o.status.code(), stdout + &err)
}

#[test]
fn check_finds_a_file_corrupted_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let out = finished(dir.path(), "csv");
    assert_eq!(check(&out).0, Some(0));
    let path = out.join("customers.csv");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 2;
    bytes[last] = if bytes[last] == b'1' { b'2' } else { b'1' };
    std::fs::write(&path, bytes).unwrap();
    let (code, said) = check(&out);
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("FAIL manifest") && said.contains("customers.csv"),
        "{said}"
    );
}

#[test]
fn check_fails_a_manifest_that_is_not_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = finished(dir.path(), "csv");
    std::fs::write(out.join("manifest.json"), "not json at all").unwrap();
    let (code, said) = check(&out);
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("FAIL manifest") && said.contains("not a manifest"),
        "{said}"
    );
}

#[test]
fn check_does_not_hang_on_a_pipe_in_place_of_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = finished(dir.path(), "csv");
    for name in ["manifest.json", "transactions.csv"] {
        std::fs::remove_file(out.join(name)).unwrap();
        let ok = Command::new("mkfifo").arg(out.join(name)).status().unwrap();
        assert!(ok.success());
    }
    let (code, said) = check(&out);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("not a regular file"), "{said}");
}

#[test]
fn check_finds_a_missing_and_an_extra_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = finished(dir.path(), "csv");
    std::fs::remove_file(out.join("insights.md")).unwrap();
    std::fs::write(out.join("stray.csv"), "a,b\n").unwrap();
    let (code, said) = check(&out);
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("`insights.md`") && said.contains("`stray.csv` is not listed"),
        "{said}"
    );
}

#[test]
fn report_exits_non_zero_on_a_truncated_parquet_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = finished(dir.path(), "parquet");
    let path = out.join("transactions.parquet");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let o = bazaar(&["report", out.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("data-quality checks failed"), "{err}");
    let o = bazaar(&["report", out.to_str().unwrap(), "--allow-failed-checks"]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert!(out.join("report.html").is_file());
}

#[test]
fn report_exits_non_zero_on_a_missing_column() {
    let dir = tempfile::tempdir().unwrap();
    let out = finished(dir.path(), "csv");
    let path = out.join("transactions.csv");
    let t = std::fs::read_to_string(&path).unwrap();
    // Drop the last column (budget_trimmed) from every row.
    let cut: String = t
        .lines()
        .map(|l| format!("{}\n", &l[..l.rfind(',').unwrap()]))
        .collect();
    std::fs::write(&path, cut).unwrap();
    let o = bazaar(&["report", out.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
}

#[test]
fn report_refuses_a_folder_that_is_not_bazaars() {
    let dir = tempfile::tempdir().unwrap();
    let mine = dir.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("manifest.json"), "{\"name\": \"app\"}").unwrap();
    std::fs::write(mine.join("report.html"), "my report").unwrap();
    let o = bazaar(&["report", mine.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));
    assert_eq!(
        std::fs::read_to_string(mine.join("report.html")).unwrap(),
        "my report"
    );
}
