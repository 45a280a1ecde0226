//! One run sharded across MPI ranks (`mpirun -n N bazaar run ...`, the `mpi` feature) gives
//! the one-process run's answer: the same rows of every per-customer table (each rank
//! writes its part), byte-identical summary, aggregates and rolled-up tables, and
//! byte-identical parts for the same number of ranks. A rank that dies takes the run down
//! with nothing published.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common;

use common::{root, text};

/// A small season with acquisitions, referrals, churn and stores that sell out, so every
/// coupling is exercised: customers join mid-run (split among the ranks), refer friends
/// (counted over them, who then join), leave (counted over them), and buy from stores
/// whose stock every rank's customers share (first come, first served).
fn scenario(dir: &Path) -> PathBuf {
    let text = common::quick_with(
        "\"daily_log\", WordOfMouth(rate: 0.05, min_loyalty: 0.3), \
         Stores(count: 3, stock: 60, restock_every_days: 2)",
    )
    .replace("days: 7,", "days: 10,")
    .replace("count: 300),", "count: 300, new_per_day: 7.5),")
    .replace("count: 500),", "count: 500, new_per_day: 3),");
    assert!(
        text.contains("new_per_day"),
        "the scenario acquires customers"
    );
    common::write(dir, "season.ron", &text)
}

/// `mpirun` with what a container and a root user need, on loopback.
fn mpirun(ranks: usize, args: &[&str]) -> Output {
    mpirun_logging(ranks, args, None)
}

/// [`mpirun`] with `RUST_LOG` set to `log`, if given.
fn mpirun_logging(ranks: usize, args: &[&str], log: Option<&str>) -> Output {
    let mut command = Command::new("mpirun");
    match log {
        Some(log) => command.env("RUST_LOG", log),
        None => command.env_remove("RUST_LOG"),
    };
    command
        .args(["--allow-run-as-root", "--oversubscribe", "-n"])
        .arg(ranks.to_string())
        .arg(env!("CARGO_BIN_EXE_bazaar"))
        .args(args)
        .current_dir(root())
        .env_remove("MLFLOW_TRACKING_URI")
        // Shared memory between ranks without ptrace (refused in many containers).
        .env("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
        .output()
        .expect(
            "mpirun runs: the MPI tests need Open MPI (`apt-get install openmpi-bin libopenmpi-dev libclang-dev`)",
        )
}

/// Runs the scenario on `ranks` ranks (0: as one process, without mpirun) into `out`, two
/// threads each.
fn run(scenario: &Path, ranks: usize, out: &Path) -> Output {
    run_threads(scenario, ranks, "2", out, None)
}

/// [`run`] with `threads` threads a rank, logging at `log` (`RUST_LOG`) if given.
fn run_threads(
    scenario: &Path,
    ranks: usize,
    threads: &str,
    out: &Path,
    log: Option<&str>,
) -> Output {
    let args = [
        "run",
        scenario.to_str().unwrap(),
        "--quiet",
        "--threads",
        threads,
        "--format",
        "csv,parquet",
        "--out",
        out.to_str().unwrap(),
    ];
    let o = if ranks == 0 {
        common::bazaar(&args)
    } else {
        mpirun_logging(ranks, &args, log)
    };
    assert!(o.status.success(), "{ranks} ranks: {:?}", text(&o));
    o
}

/// A CSV table's data rows, sorted: of `stem.csv`, or of every part in `stem/`.
fn sorted_rows(out: &Path, stem: &str) -> (String, Vec<String>) {
    let mut files = Vec::new();
    let whole = out.join(format!("{stem}.csv"));
    if whole.is_file() {
        files.push(whole);
    } else {
        for e in std::fs::read_dir(out.join(stem)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "csv") {
                files.push(p);
            }
        }
    }
    assert!(!files.is_empty(), "{stem} in {}", out.display());
    let mut header = None;
    let mut rows = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let mut lines = text.lines();
        let h = lines.next().unwrap().to_owned();
        assert!(
            header.get_or_insert(h.clone()) == &h,
            "one header in every part"
        );
        rows.extend(lines.map(str::to_owned));
    }
    rows.sort();
    (header.unwrap(), rows)
}

#[test]
fn sharded_runs_give_the_one_process_answer_at_1_2_and_4_ranks() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = scenario(dir.path());
    let single = dir.path().join("single");
    run(&scenario, 0, &single);
    let (_, tx) = sorted_rows(&single, "transactions");
    assert!(
        tx.len() > 1_000,
        "a run that buys: {} transactions",
        tx.len()
    );
    let (_, churned) = sorted_rows(&single, "churn_events");
    assert!(!churned.is_empty(), "customers leave in this run");
    let (header, days) = sorted_rows(&single, "daily_metrics");
    let column = header.split(',').position(|c| c == "referrals").unwrap();
    let referred: u64 = days
        .iter()
        .map(|d| d.split(',').nth(column).unwrap().parse::<u64>().unwrap())
        .sum();
    assert!(referred > 0, "friends join in this run");
    // Stores sell out and refuse lines (which then differ with who came first), and sell.
    let (header, stores) = sorted_rows(&single, "stores");
    let at = |name: &str| header.split(',').position(|c| c == name).unwrap();
    let sum = |col: usize| -> u64 {
        stores
            .iter()
            .map(|r| r.split(',').nth(col).unwrap().parse::<u64>().unwrap())
            .sum()
    };
    assert!(
        sum(at("refused")) > 0 && sum(at("sold")) > 0,
        "stores sell and sell out: {stores:?}"
    );
    let summary: serde_json::Value = common::json(&single.join("summary.json"));
    assert!(
        summary.to_string().contains("acquired"),
        "the summary counts acquisitions"
    );

    for ranks in [1, 2, 4] {
        let out = dir.path().join(format!("ranks{ranks}"));
        run(&scenario, ranks, &out);
        for stem in ["transactions", "line_items", "customers", "churn_events"] {
            if ranks > 1 {
                assert!(
                    out.join(stem).join("part-00000.csv").is_file()
                        && out
                            .join(stem)
                            .join(format!("part-{:05}.parquet", ranks - 1))
                            .is_file(),
                    "{stem} is written as one part a rank"
                );
            }
            assert_eq!(
                sorted_rows(&single, stem),
                sorted_rows(&out, stem),
                "{stem}: the same rows at {ranks} ranks as in one process"
            );
        }
        for file in [
            "summary.json",
            "aggregates.json",
            "daily_metrics.csv",
            "daily_metrics.parquet",
            "sales.csv",
            "sales.parquet",
            "basket_values.csv",
            "basket_values.parquet",
            "stores.csv",
            "stores.parquet",
            "tables.json",
        ] {
            assert!(
                std::fs::read(single.join(file)).unwrap() == std::fs::read(out.join(file)).unwrap(),
                "{file} differs at {ranks} ranks"
            );
        }
        // The manifest lists every rank's parts, and `bazaar check` verifies them all.
        let check = common::bazaar(&["check", out.to_str().unwrap()]);
        assert!(check.status.success(), "{:?}", text(&check));
        let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
        if ranks > 1 {
            for r in 0..ranks {
                assert!(
                    manifest.contains(&format!("transactions/part-{r:05}.parquet")),
                    "rank {r}'s part is in the manifest"
                );
            }
        }
    }

    // The same number of ranks writes the same bytes, at any thread count; the day's log
    // line is rank 0's alone.
    let again = dir.path().join("ranks2-again");
    let o = run_threads(&scenario, 2, "1", &again, Some("bazaar=info"));
    let (_, err) = text(&o);
    assert_eq!(
        err.matches("day closed").count(),
        10,
        "one line a day: {err}"
    );
    let (a, b) = (
        common::read_dir_bytes(&dir.path().join("ranks2")),
        common::read_dir_bytes(&again),
    );
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.0, y.0);
        if x.0.contains("part-") {
            assert!(
                x.1 == y.1,
                "{} differs between 2 ranks of 2 threads and of 1",
                x.0
            );
        }
    }

    // The parts are one dataset to pyarrow, with the one-process file's rows.
    if let Some(python) = common::python_with("calibrate-venv", "import pyarrow") {
        let script = r#"
import glob, sys, pyarrow.dataset as ds, pyarrow.parquet as pq
single, sharded = sys.argv[1], sys.argv[2]
for stem in ["transactions", "line_items", "customers", "churn_events"]:
    a = pq.read_table(f"{single}/{stem}.parquet")
    # Both formats were written, so the folder holds CSV parts too: the Parquet ones.
    b = ds.dataset(sorted(glob.glob(f"{sharded}/{stem}/*.parquet")), format="parquet").to_table()
    assert a.num_rows == b.num_rows, (stem, a.num_rows, b.num_rows)
    rows = lambda t: sorted(repr(sorted(r.items())) for r in t.to_pylist())
    assert rows(a) == rows(b), stem
    print(stem, b.num_rows)
"#;
        let o = Command::new(python)
            .args(["-c", script])
            .arg(&single)
            .arg(dir.path().join("ranks4"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{:?}", text(&o));
    }
}

#[test]
fn what_a_sharded_run_cannot_do_yet_is_refused_once_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = mpirun(
        2,
        &[
            "run",
            "scenarios/diwali.ron",
            "--quiet",
            "--days",
            "2",
            "--scale",
            "0.01",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert_eq!(
        err.matches("cannot have a churn model").count(),
        1,
        "said once, by rank 0: {err}"
    );
    assert!(err.contains("hint:"), "{err}");
    assert!(!out.exists(), "nothing written");
}

/// The scenario of [`scenario`], longer and larger: a run on 2 ranks takes seconds.
fn long_scenario(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(scenario(dir))
        .unwrap()
        .replace("days: 10,", "days: 60,")
        .replace(
            "count: 500, new_per_day: 3)",
            "count: 300000, new_per_day: 3)",
        );
    assert!(text.contains("300000"), "the scenario grows");
    common::write(dir, "long.ron", &text)
}

/// The arguments of a run of `scenario` into `out` on one thread a rank, both formats.
fn long_args(scenario: &Path, out: &Path) -> Vec<String> {
    [
        "run",
        scenario.to_str().unwrap(),
        "--quiet",
        "--threads",
        "1",
        "--format",
        "csv,parquet",
        "--out",
        out.to_str().unwrap(),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// A long run on 2 ranks in `dir` (into `dir/out`), started; rank 1's PID once the run is
/// under way (rank 0 has made its folder).
#[expect(
    clippy::zombie_processes,
    reason = "the child is returned to the caller, which waits for it"
)]
fn start_long(dir: &Path, extra: &[&str]) -> (std::process::Child, u32) {
    let scenario = long_scenario(dir);
    let mut child = Command::new("mpirun")
        .args(["--allow-run-as-root", "--oversubscribe", "-n", "2"])
        .arg(env!("CARGO_BIN_EXE_bazaar"))
        .args(long_args(&scenario, &dir.join("out")))
        .args(extra)
        .current_dir(root())
        .env_remove("RUST_LOG")
        .env("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Rank 1 is found by its MPI rank in its environment.
    let started = std::time::Instant::now();
    loop {
        if started.elapsed() > std::time::Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rank 1 never started");
        }
        let work = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(".out.tmp-"));
        if let Some(pid) = rank_pid(1, &scenario).filter(|_| work) {
            return (child, pid);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The names `.out.*` beside `dir/out` (but its lock file, which stays).
fn left_beside(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".out.") && n != ".out.lock")
        .collect()
}

#[test]
fn a_stopped_run_resumes_on_as_many_ranks_as_if_it_had_never_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let (child, rank1) = start_long(dir.path(), &[]);
    // Every rank is past its set-up (signals handled) well before the run ends. Each rank
    // gets the signal itself (as from `mpirun`, without its grace period before SIGKILL).
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let rank0 = rank_pid(0, &dir.path().join("long.ron")).expect("rank 0 is running");
    signal("-TERM", rank1);
    signal("-TERM", rank0);
    let o = child.wait_with_output().unwrap();
    let (_, err) = text(&o);
    assert!(!o.status.success(), "the run stops: {err}");
    assert_eq!(
        err.matches("stopped by SIGTERM").count(),
        1,
        "rank 0 says so, once: {err}"
    );
    assert!(err.contains("mpirun -n 2 bazaar resume"), "{err}");
    let out = dir.path().join("out");
    assert!(!out.exists(), "nothing published: {err}");
    // Rank 0's checkpoint names the day; rank 1's file of that day is beside it, alone.
    let left = left_beside(dir.path());
    assert_eq!(
        left.len(),
        1,
        "the stopped run's folder is kept: {left:?}\n{err}"
    );
    let work = dir.path().join(&left[0]);
    assert_eq!(
        checkpoints(&work).len(),
        1,
        "one checkpoint a rank: {:?}",
        checkpoints(&work)
    );

    // Another number of ranks is refused, said once, and the folder stays resumable.
    let resume = ["resume", out.to_str().unwrap(), "--quiet"];
    let refused = mpirun(3, &resume);
    let (_, err) = text(&refused);
    assert!(!refused.status.success());
    assert_eq!(
        err.matches("written by a run on 2 MPI ranks").count(),
        1,
        "{err}"
    );
    assert!(work.join("checkpoint.bazaar").is_file());

    // On 2 ranks it goes on and writes what a run never stopped writes, byte for byte.
    resume_as_never_stopped(dir.path());
}

#[test]
fn a_run_killed_after_a_checkpoint_resumes_from_the_day_every_rank_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let (child, rank1) = start_long(dir.path(), &["--checkpoint-every", "2"]);
    // Killed once a checkpoint is written, perhaps while the next day's is.
    let started = std::time::Instant::now();
    let work = loop {
        let kept = left_beside(dir.path());
        if let Some(work) = kept.first().map(|w| dir.path().join(w))
            && !checkpoints(&work).is_empty()
        {
            break work;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "no checkpoint written"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    signal("-9", rank1);
    let o = child.wait_with_output().unwrap();
    assert!(!o.status.success(), "the run fails: {:?}", text(&o));
    assert!(!dir.path().join("out").exists(), "nothing published");
    // Rank 0's checkpoint names a day rank 1's files include.
    let root = bazaar::checkpoint::Snapshot::read(&work.join("checkpoint.bazaar")).unwrap();
    let day = root.header.day;
    assert!(
        checkpoints(&work).contains(&day),
        "rank 1 wrote day {day}: {:?}",
        checkpoints(&work)
    );
    resume_as_never_stopped(dir.path());
}

/// The days of rank 1's checkpoints in `work`, once rank 0's is there (none before).
fn checkpoints(work: &Path) -> Vec<u32> {
    if !work.join("checkpoint.bazaar").is_file() {
        return Vec::new();
    }
    let mut days: Vec<u32> = std::fs::read_dir(work)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let day = name.strip_prefix("checkpoint.rank-00001.day-")?;
            day.strip_suffix(".bazaar")?.parse().ok()
        })
        .collect();
    days.sort_unstable();
    days
}

/// Resumes the long run stopped in `dir` on 2 ranks, and checks it writes what a run of it
/// never stopped writes, byte for byte.
fn resume_as_never_stopped(dir: &Path) {
    let out = dir.join("out");
    let resumed = mpirun(
        2,
        &["resume", out.to_str().unwrap(), "--quiet", "--threads", "1"],
    );
    assert!(resumed.status.success(), "{:?}", text(&resumed));
    assert!(left_beside(dir).is_empty(), "the folder is published");
    let whole = dir.join("whole");
    let args = long_args(&dir.join("long.ron"), &whole);
    let o = mpirun(2, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{:?}", text(&o));
    let (a, b) = (common::read_dir_bytes(&whole), common::read_dir_bytes(&out));
    assert_eq!(
        a.iter().map(|f| &f.0).collect::<Vec<_>>(),
        b.iter().map(|f| &f.0).collect::<Vec<_>>(),
        "the same files, no checkpoint left"
    );
    for (x, y) in a.iter().zip(&b) {
        assert!(x.1 == y.1, "{} differs after the stop and resume", x.0);
    }
}

#[test]
fn a_rank_that_dies_takes_the_run_down_and_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (child, victim) = start_long(dir.path(), &[]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    signal("-9", victim);
    let o = child.wait_with_output().unwrap();
    let (_, err) = text(&o);
    assert!(!o.status.success(), "the run fails: {err}");
    assert!(err.contains("rank 1"), "the dead rank is named: {err}");
    assert!(!out.exists(), "nothing published");
    // The next run on the target clears the dead run's folder and succeeds.
    let quick = common::write(
        dir.path(),
        "quick.ron",
        &common::quick_with("\"daily_log\""),
    );
    run(&quick, 2, &out);
    assert!(out.join("manifest.json").is_file());
    let left = left_beside(dir.path());
    assert!(
        left.is_empty(),
        "the dead run's folder is cleared: {left:?}"
    );
}

/// Sends `signal` (`kill`'s spelling) to `pid`.
fn signal(signal: &str, pid: u32) {
    let sent = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status();
    assert!(sent.unwrap().success(), "kill {signal} {pid}");
}

/// The PID of the `bazaar` process of MPI rank `rank` running `scenario`, if there is one.
fn rank_pid(rank: usize, scenario: &Path) -> Option<u32> {
    let exe = std::fs::canonicalize(env!("CARGO_BIN_EXE_bazaar")).ok()?;
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if std::fs::read_link(e.path().join("exe")).ok().as_deref() != Some(exe.as_path()) {
            continue;
        }
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let ours = scenario.as_os_str().as_encoded_bytes();
        if !cmdline.split(|&b| b == 0).any(|a| a == ours) {
            continue;
        }
        let env = std::fs::read(e.path().join("environ")).unwrap_or_default();
        let wanted = format!("OMPI_COMM_WORLD_RANK={rank}");
        if env.split(|&b| b == 0).any(|v| v == wanted.as_bytes()) {
            return Some(pid);
        }
    }
    None
}
