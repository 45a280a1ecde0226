//! Fuzzes `bazaar check`'s readers: a folder whose manifest and tables are arbitrary bytes
//! is verified and checked without a panic. The input is split on `\0` into the manifest,
//! the summary, and the CSV tables.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

const FILES: [&str; 7] = [
    "manifest.json",
    "summary.json",
    "transactions.csv",
    "line_items.csv",
    "customers.csv",
    "daily_metrics.csv",
    "churn_events.csv",
];

fn folder() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a temporary folder"))
        .path()
}

fuzz_target!(|data: &[u8]| {
    let dir = folder();
    let mut parts = data.split(|&b| b == 0);
    for name in FILES {
        let path = dir.join(name);
        match parts.next() {
            Some(bytes) => std::fs::write(&path, bytes).expect("write"),
            None => {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    let _ = bazaar::output::place::verify(dir);
    let _ = bazaar::output::place::ownership_of(dir);
    let _ = bazaar::report::check(dir);
});
