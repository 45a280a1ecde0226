//! Helpers shared by the integration tests: run the `bazaar` binary, write scenarios.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the bazaar binary with `args` from the project root.
pub fn bazaar(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bazaar"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_LOG")
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
