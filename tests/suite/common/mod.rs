//! Helpers shared by the integration tests: run the `bazaar` binary, write scenarios.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `scenarios/quick.ron` (a week around Diwali, 2,000 customers) with its includes made
/// absolute and `systems` as given: a base or an arm of an experiment in a temporary folder.
pub fn quick_with(systems: &str) -> String {
    let dir = root().join("scenarios");
    std::fs::read_to_string(dir.join("quick.ron"))
        .unwrap()
        .replace("include(\"", &format!("include(\"{}/", dir.display()))
        .replace(
            "systems: [\"daily_log\"],",
            &format!("systems: [{systems}],"),
        )
}

/// Runs the bazaar binary with `args` from the project root.
pub fn bazaar(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bazaar"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_LOG")
        // A developer's tracking server is not the tests' to log to.
        .env_remove("MLFLOW_TRACKING_URI")
        .output()
        .expect("the bazaar binary runs")
}

/// Stdout and stderr as text.
pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The project root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A small valid scenario: one persona, three days. Tests break it on purpose.
pub const MINIMAL: &str = r#"Scenario(
    name: "minimal",
    seed: 1,
    start: "2026-11-01",
    days: 3,
    catalog: [(name: "rice", group: "grocery"), (name: "sweets")],
    personas: [
        Persona(
            name: "family",
            age: (30, 50),
            income: (60000, 120000),
            visits: (recency: [(days: 0, p: 0.3)]),
            hours: Slots([("10:00", "12:00")]),
            basket: [
                (category: "rice", p: 0.8, quantity: (1, 2), price: Uniform(800, 2000)),
            ],
        ),
    ],
    population: [(persona: "family", count: 50)],
)
"#;

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write scenario");
    path
}

/// Runs the scenario `text` (written to a temporary folder) with `extra` arguments, into
/// that folder's `out`; asserts it succeeds. The folder lives as long as the returned guard.
pub fn run_text(text: &str, extra: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = write(dir.path(), "scenario.ron", text);
    let out = dir.path().join("out");
    run_file(&path, &out, extra);
    (dir, out)
}

/// Runs the scenario file `path` into `out` with `extra` arguments; asserts it succeeds.
pub fn run_file(path: &Path, out: &Path, extra: &[&str]) {
    let mut args = vec![
        "run",
        path.to_str().expect("a UTF-8 path"),
        "--quiet",
        "--out",
        out.to_str().expect("a UTF-8 path"),
    ];
    args.extend_from_slice(extra);
    let o = bazaar(&args);
    assert!(o.status.success(), "{:?}", text(&o));
}

/// Every file of an output folder (and its subfolders) with its bytes, sorted by path.
pub fn read_dir_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("output folder exists") {
            let path = e.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path
                    .strip_prefix(dir)
                    .expect("inside the folder")
                    .to_string_lossy()
                    .into_owned();
                files.push((name, std::fs::read(&path).expect("read output")));
            }
        }
    }
    files.sort();
    files
}

/// Rupees with two decimals ("-12.30") as paise, exactly.
pub fn paise(s: &str) -> i64 {
    let (whole, frac) = s.split_once('.').unwrap_or((s, "0"));
    let v = whole
        .trim_start_matches('-')
        .parse::<i64>()
        .expect("rupees")
        * 100
        + format!("{frac:0<2}").parse::<i64>().expect("paise");
    if whole.starts_with('-') { -v } else { v }
}

/// Checks a finished CSV output folder's money against its run's summary: every basket is
/// positive, every line is quantity x unit price, the lines of each basket sum to its total,
/// and the summary's revenue and transaction count are the tables'.
pub fn money_conserved(
    out: &Path,
    summary: &bazaar::output::summary::Summary,
) -> Result<(), String> {
    use std::collections::HashMap;
    let read = |name: &str| std::fs::read_to_string(out.join(name)).map_err(|e| e.to_string());
    let mut totals = HashMap::new();
    let mut revenue = 0i64;
    for line in read("transactions.csv")?.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let total = paise(f[4]);
        if total <= 0 {
            return Err(format!("a basket that is not positive: {line}"));
        }
        revenue += total;
        totals.insert(f[0].to_owned(), total);
    }
    let mut sums: HashMap<String, i64> = HashMap::new();
    for line in read("line_items.csv")?.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let (qty, unit, total) = (f[3].parse::<i64>().unwrap(), paise(f[4]), paise(f[5]));
        if qty * unit != total {
            return Err(format!(
                "a line whose total is not quantity x unit price: {line}"
            ));
        }
        *sums.entry(f[0].to_owned()).or_default() += total;
    }
    if sums != totals {
        return Err("line totals do not sum to basket totals".into());
    }
    if summary.totals.revenue_paise != revenue || summary.totals.transactions != totals.len() as u64
    {
        return Err(format!(
            "the summary ({} paise, {} transactions) is not the tables ({revenue}, {})",
            summary.totals.revenue_paise,
            summary.totals.transactions,
            totals.len()
        ));
    }
    Ok(())
}

/// The JSON file at `path`.
pub fn json(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Makes `out` a folder holding a file of the user's, runs `command` with it as its output
/// folder, and asserts that the command refused it (exit code 2, "already exists and is
/// not empty") and left it as it was.
pub fn refuses_occupied(out: &Path, command: impl FnOnce() -> Output) {
    std::fs::create_dir(out).expect("the folder");
    std::fs::write(out.join("mine.txt"), "keep me").expect("the user's file");
    let res = command();
    let (_, err) = text(&res);
    assert_eq!(res.status.code(), Some(2), "{err}");
    assert!(err.contains("already exists and is not empty"), "{err}");
    assert_eq!(
        std::fs::read_to_string(out.join("mine.txt")).expect("the user's file"),
        "keep me"
    );
    assert_eq!(std::fs::read_dir(out).expect("the folder").count(), 1);
}

/// A Python with the packages pinned in `tests/python/envs/{venv}.txt`, in a virtual
/// environment `target/{venv}` made on first need (`ready` is the import that says it is
/// there); `None` (the caller says it skipped) only when PyPI cannot be reached. `.ci/run`
/// makes the same environments from the same files, under the same locks, while the tests
/// build.
pub fn python_with(venv: &str, ready: &str) -> Option<PathBuf> {
    let pins = root().join(format!("tests/python/envs/{venv}.txt"));
    let pins = std::fs::read_to_string(&pins).unwrap_or_else(|e| panic!("{}: {e}", pins.display()));
    let packages: Vec<&str> = pins
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let target = root().join("target");
    std::fs::create_dir_all(&target).expect("the target folder");
    // Tests run in parallel threads and several may want one environment: the first makes
    // it while the others wait on this lock, then find it ready.
    let lock = std::fs::File::create(target.join(format!("{venv}.lock"))).expect("a lock file");
    lock.lock().expect("the environment's lock");
    let venv = target.join(venv);
    let python = venv.join("bin/python");
    let is_ready = || {
        Command::new(&python)
            .args(["-c", ready])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if is_ready() {
        return Some(python);
    }
    let made = Command::new("python3")
        // `--clear`: an environment left half-made by an interrupted install starts afresh.
        .args(["-m", "venv", "--clear"])
        .arg(&venv)
        .status()
        .expect("python3 runs: the test needs Python 3 with venv and pip, as the README says");
    assert!(made.success(), "python3 -m venv failed");
    let pip = Command::new(&python)
        .args(["-m", "pip", "install", "--quiet"])
        .args(&packages)
        .output()
        .expect("pip runs");
    if !pip.status.success() {
        let err = String::from_utf8_lossy(&pip.stderr);
        let offline = [
            "Could not find a version",
            "No matching distribution",
            "connection",
            "Temporary failure",
            "Network is unreachable",
        ]
        .iter()
        .any(|m| err.contains(m));
        assert!(offline, "pip install failed: {err}");
        eprintln!("SKIPPED: PyPI is unreachable, so {packages:?} cannot be installed:\n{err}");
        return None;
    }
    assert!(is_ready(), "{packages:?} installed but `{ready}` fails");
    Some(python)
}

/// Debian's Chromium, for the tests that render in a real browser; `None` (and a line
/// saying the test skipped) on a machine without it.
pub fn chromium() -> Option<&'static str> {
    let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    if found.is_none() {
        println!("skipped: no Chromium on this machine (.ci/run installs Debian's `chromium`)");
    }
    found
}
