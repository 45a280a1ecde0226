//! `bazaar sweep`: one row per point and replication, the same at any thread count, a
//! killed or stopped sweep going on without redoing finished runs, and located refusals.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{bazaar, root, text};

/// A base of a few hundred customers over ten days, with a promotion whose discount the
/// sweep moves; written beside the sweep file, its includes pointing into scenarios/.
fn base(dir: &Path) -> PathBuf {
    let scenarios = root().join("scenarios");
    let text = std::fs::read_to_string(scenarios.join("quick.ron"))
        .unwrap()
        .replace(
            "include(\"",
            &format!("include(\"{}/", scenarios.display()),
        )
        .replace("days: 7,", "days: 30,\n    warm_start: false,")
        .replace("count: 300)", "count: 60)")
        .replace("count: 500)", "count: 60)")
        .replace("count: 400)", "count: 60)")
        .replace(
            "systems: [\"daily_log\"],",
            r#"systems: [Promotions(campaigns: [(name: "sweets", category: "sweets", discount: 0.1, from: "2026-11-05", to: "2026-11-12", lift: 1.5, quantity: 1.2)])],"#,
        );
    common::write(dir, "base.ron", &text)
}

fn sweep_file(dir: &Path, replications: u32) -> PathBuf {
    base(dir);
    common::write(
        dir,
        "sweep.ron",
        &format!(
            r#"Sweep(
    base: "base.ron",
    replications: {replications},
    metrics: ["units", "promotions.sweets.cost"],
    parameters: [
        (name: "discount", at: "systems.Promotions.campaigns.sweets.discount", values: [0.0, 0.3]),
        (name: "premium", at: "population.premium.count", range: (40, 80), steps: 3),
    ],
)
"#
        ),
    )
}

fn run(file: &Path, out: &Path, threads: &str) -> std::process::Output {
    bazaar(&[
        "sweep",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--threads",
        threads,
    ])
}

fn files(out: &Path) -> Vec<(String, Vec<u8>)> {
    ["sweep.parquet", "sweep.json", "sweep.html"]
        .iter()
        .map(|f| ((*f).to_owned(), std::fs::read(out.join(f)).unwrap()))
        .collect()
}

#[test]
fn a_sweep_has_a_row_per_point_and_replication_the_same_at_any_thread_count() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let dir = tempfile::tempdir().unwrap();
    let file = sweep_file(dir.path(), 2);
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    let o = run(&file, &one, "1");
    assert!(o.status.success(), "{:?}", text(&o));
    let o = run(&file, &two, "2");
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(files(&one), files(&two));
    assert!(!one.join(bazaar::sweep::JOURNAL).exists());

    // 2 discounts x 3 premium counts x 2 replications.
    let reader =
        SerializedFileReader::new(std::fs::File::open(one.join("sweep.parquet")).unwrap()).unwrap();
    let rows: Vec<parquet::record::Row> = reader
        .get_row_iter(None)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 12);
    let get = |r: &parquet::record::Row, name: &str| -> String {
        r.get_column_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_string())
            .unwrap_or_else(|| panic!("no column {name}"))
    };
    let first = &rows[0];
    assert_eq!(
        (
            get(first, "point"),
            get(first, "replication"),
            get(first, "seed")
        ),
        ("0".into(), "0".into(), "7".into())
    );
    assert_eq!(
        get(&rows[1], "seed"),
        "8",
        "replication 1 has the base's seed plus 1"
    );
    let premiums: Vec<String> = rows.iter().map(|r| get(r, "premium")).collect();
    assert_eq!(&premiums[..6], ["40", "40", "60", "60", "80", "80"]);
    assert_eq!(get(&rows[6], "discount"), "0.3");

    // The parameters reach the runs: a 30% discount sells more units than none at every
    // premium count (common seeds), and costs what no discount does not.
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(one.join("sweep.json")).unwrap()).unwrap();
    let points = json["points"].as_array().unwrap();
    assert_eq!(points.len(), 6);
    let mean = |p: usize, m: &str| points[p]["metrics"][m]["mean"].as_f64().unwrap();
    for k in 0..3 {
        assert!(mean(3 + k, "units") > mean(k, "units"), "premium level {k}");
        assert_eq!(mean(k, "promotions.sweets.cost"), 0.0);
        assert!(mean(3 + k, "promotions.sweets.cost") > 0.0);
    }
    // More premium customers, more of everything.
    assert!(mean(2, "transactions") > mean(0, "transactions"));
    let page = String::from_utf8(std::fs::read(one.join("sweep.html")).unwrap()).unwrap();
    assert!(
        page.contains("units is highest at discount=0.3"),
        "highest and lowest"
    );
    assert_eq!(page.matches("<svg").count(), 2, "a chart per metric");
}

/// How many runs the journal holds.
fn journalled(out: &Path) -> usize {
    std::fs::read_to_string(out.join(bazaar::sweep::JOURNAL))
        .map_or(0, |t| t.lines().count().saturating_sub(1))
}

fn start(file: &Path, out: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_bazaar"))
        .args(["sweep", file.to_str().unwrap(), "--out"])
        .arg(out)
        .args(["--threads", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits until the journal holds `n` runs and the sweep is still going.
fn wait_for(child: &mut std::process::Child, out: &Path, n: usize) {
    while journalled(out) < n {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sweep ended before it could be stopped"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn a_killed_or_stopped_sweep_goes_on_without_redoing_finished_runs() {
    let dir = tempfile::tempdir().unwrap();
    let file = sweep_file(dir.path(), 4);
    let whole = dir.path().join("whole");
    let o = run(&file, &whole, "1");
    assert!(o.status.success(), "{:?}", text(&o));

    // Killed outright, mid-run.
    let out = dir.path().join("killed");
    let mut child = start(&file, &out);
    wait_for(&mut child, &out, 3);
    child.kill().unwrap();
    child.wait().unwrap();
    let kept = journalled(&out);
    assert!((3..24).contains(&kept), "{kept} runs journalled");
    assert!(
        !out.join("sweep.parquet").exists(),
        "nothing written before the end"
    );
    // A line cut short by the kill is dropped, not misread.
    let mut journal = std::fs::OpenOptions::new()
        .append(true)
        .open(out.join(bazaar::sweep::JOURNAL))
        .unwrap();
    std::io::Write::write_all(&mut journal, b"{\"run\":\"cut sh").unwrap();
    drop(journal);
    let o = run(&file, &out, "2");
    let (_, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "{kept} done already, going on with the other {}",
            24 - kept
        )),
        "{err}"
    );
    assert_eq!(
        err.matches(" done [").count(),
        24 - kept,
        "no finished run redone: {err}"
    );
    assert_eq!(files(&out), files(&whole));

    // Stopped by SIGINT: the runs under way are dropped, the finished kept, exit 130.
    let out = dir.path().join("stopped");
    let mut child = start(&file, &out);
    wait_for(&mut child, &out, 2);
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(journalled(&out) >= 2);
    let o = run(&file, &out, "1");
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(files(&out), files(&whole));
}

#[test]
fn sweeps_refuse_what_they_cannot_run_and_folders_they_would_replace() {
    let dir = tempfile::tempdir().unwrap();
    let file = sweep_file(dir.path(), 1);
    // A folder holding something else.
    let taken = dir.path().join("taken");
    std::fs::create_dir(&taken).unwrap();
    std::fs::write(taken.join("notes.txt"), "mine").unwrap();
    let o = run(&file, &taken, "1");
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("not empty"), "{:?}", text(&o));
    assert_eq!(
        std::fs::read_to_string(taken.join("notes.txt")).unwrap(),
        "mine"
    );
    // A journal from another Bazaar.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(
        other.join(bazaar::sweep::JOURNAL),
        "{\"bazaar\":\"0.0.1\",\"sweep\":\"sweep\"}\n",
    )
    .unwrap();
    let o = run(&file, &other, "1");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).1.contains("begun by Bazaar 0.0.1"),
        "{:?}",
        text(&o)
    );
    // A place the base does not write, located in the sweep file.
    let bad = std::fs::read_to_string(&file)
        .unwrap()
        .replace("population.premium.count", "population.nobody.count");
    let bad_file = common::write(dir.path(), "bad.ron", &bad);
    let o = run(&bad_file, &dir.path().join("bad"), "1");
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("bad.ron:7:"), "{err}");
    assert!(err.contains("no entry of that name"), "{err}");
    assert!(!dir.path().join("bad").exists());
    // A value the scenario refuses names the point.
    let bad = std::fs::read_to_string(&file)
        .unwrap()
        .replace("values: [0.0, 0.3]", "values: [0.0, 1.5]");
    let bad_file = common::write(dir.path(), "bad2.ron", &bad);
    let o = run(&bad_file, &dir.path().join("bad2"), "1");
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("(discount=1.5, premium=40)"), "{err}");
}

#[test]
fn the_shipped_retention_sweep_loads_every_point() {
    let sweep = bazaar::sweep::file::load(
        &root().join("scenarios/experiments/retention_sweep.ron"),
        &Default::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sweep.points.len(), 12);
    let base = format!("{:?}", sweep.points[0].scenario.churn_model);
    assert!(
        base.contains("threshold: Some(0.005)") && base.contains("top_k: Some(1000)"),
        "{base}"
    );
    let last = format!("{:?}", sweep.points[11].scenario.churn_model);
    assert!(
        last.contains("threshold: Some(0.05)") && last.contains("top_k: Some(4000)"),
        "{last}"
    );
}
