//! Reports: charts and the self-contained HTML report, built from an output folder's
//! `summary.json` and `aggregates.json` — during a run, or later with `bazaar report <dir>`.

pub mod charts;
pub mod drift;
pub mod html;

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::analytics::Aggregates;
use crate::analytics::insights::{insights, markdown};
use crate::analytics::quality::{QualityReport, check_folder};
use crate::money::Currency;
use crate::output::{FileEntry, MANIFEST, Manifest};

/// Problems building a report.
#[derive(Debug, Error)]
pub enum ReportError {
    /// A file the report needs is missing or unreadable.
    #[error("cannot read `{path}`: {reason}\n  hint: {hint}")]
    Input {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
        /// How to fix it.
        hint: &'static str,
    },
    /// Writing failed.
    #[error("cannot write `{path}`: {reason}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A chart could not be drawn.
    #[error("chart: {0}")]
    Chart(String),
}

/// What `build` wrote.
pub struct Built {
    /// The files written, for the manifest (paths relative to the folder).
    pub files: Vec<FileEntry>,
    /// The data-quality result.
    pub quality: QualityReport,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ReportError> {
    let bytes = std::fs::read(path).map_err(|e| ReportError::Input {
        path: path.to_path_buf(),
        reason: e.to_string(),
        hint: "is this a Bazaar output folder? (it holds summary.json and aggregates.json)",
    })?;
    serde_json::from_slice(&bytes).map_err(|e| ReportError::Input {
        path: path.to_path_buf(),
        reason: e.to_string(),
        hint: "the file is damaged; re-run the scenario",
    })
}

/// Writes `bytes` to `dir/name` through a temporary name and returns its manifest entry.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<FileEntry, ReportError> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{}.tmp", name.replace('/', "_")));
    let err = |e: std::io::Error| ReportError::Write {
        path: path.clone(),
        reason: e.to_string(),
    };
    std::fs::write(&tmp, bytes).map_err(err)?;
    std::fs::rename(&tmp, &path).map_err(err)?;
    Ok(entry(name, bytes))
}

fn entry(name: &str, bytes: &[u8]) -> FileEntry {
    FileEntry {
        name: name.to_owned(),
        rows: 0,
        bytes: bytes.len() as u64,
        blake3: blake3::hash(bytes).to_hex().to_string(),
    }
}

/// The currency a folder's amounts are in: `summary.json`'s `currency`, or Indian rupees
/// where there is none (the default, and every folder written before it was a setting).
pub fn currency(summary: &serde_json::Value) -> Currency {
    serde_json::from_value(summary["currency"].clone()).unwrap_or_default()
}

/// The currency of an output folder's amounts ([`currency`] of its `summary.json`; Indian
/// rupees if it cannot be read).
pub fn folder_currency(dir: &Path) -> Currency {
    read_json::<serde_json::Value>(&dir.join("summary.json"))
        .map(|s| currency(&s))
        .unwrap_or_default()
}

/// Runs the data-quality checks on an output folder (reads only).
pub fn check(dir: &Path) -> Result<QualityReport, ReportError> {
    let summary: serde_json::Value = read_json(&dir.join("summary.json"))?;
    let aggregates: Option<Aggregates> = read_json(&dir.join("aggregates.json")).ok();
    let declared_file = dir.join(crate::output::schema::DECLARED_FILE);
    let declared: Vec<crate::output::schema::Declared> = if declared_file.exists() {
        read_json(&declared_file)?
    } else {
        Vec::new()
    };
    Ok(check_folder(
        dir,
        summary["start"].as_str().unwrap_or(""),
        summary["end"].as_str().unwrap_or(""),
        aggregates.as_ref(),
        &declared,
        currency(&summary).minor_units,
    ))
}

/// Runs the checks and writes `data_quality.json`.
fn check_and_write(dir: &Path) -> Result<(QualityReport, FileEntry), ReportError> {
    let quality = check(dir)?;
    let json = serde_json::to_vec_pretty(&quality).map_err(|e| ReportError::Write {
        path: dir.join("data_quality.json"),
        reason: e.to_string(),
    })?;
    let e = write_atomic(dir, "data_quality.json", &json)?;
    Ok((quality, e))
}

/// Builds everything from the folder's `summary.json` and `aggregates.json`: data-quality
/// checks, insights, charts (PNG + SVG) and `report.html`. The plugin charts the run drew
/// (named in `aggregates.json`) are looked up in `known`.
pub fn build(dir: &Path, known: &[charts::ChartDef]) -> Result<Built, ReportError> {
    let summary: serde_json::Value = read_json(&dir.join("summary.json"))?;
    let aggregates: Aggregates = read_json(&dir.join("aggregates.json"))?;
    let (quality, quality_entry) = check_and_write(dir)?;
    let mut files = vec![quality_entry];
    let found = insights(&aggregates);
    files.push(write_atomic(
        dir,
        "insights.md",
        markdown(&aggregates.scenario, &found).as_bytes(),
    )?);
    let charts_dir = dir.join("charts");
    std::fs::create_dir_all(&charts_dir).map_err(|e| ReportError::Write {
        path: charts_dir.clone(),
        reason: e.to_string(),
    })?;
    let defs = charts::resolve(&aggregates.charts, known).map_err(ReportError::Chart)?;
    let charts = charts::render_all(&aggregates, &charts_dir, &defs)
        .map_err(|e| ReportError::Chart(e.to_string()))?;
    for c in &charts {
        for ext in ["png", "svg"] {
            let name = format!("charts/{}.{ext}", c.name);
            let bytes = std::fs::read(dir.join(&name)).map_err(|e| ReportError::Write {
                path: dir.join(&name),
                reason: e.to_string(),
            })?;
            files.push(entry(&name, &bytes));
        }
    }
    let drift = drift::section(dir).map_err(ReportError::Chart)?;
    let page = html::render(
        &summary,
        &found,
        &aggregates.published,
        &quality,
        &charts,
        drift.as_deref(),
    );
    files.push(write_atomic(dir, "report.html", page.as_bytes())?);
    Ok(Built { files, quality })
}

/// Rebuilds the report of an existing output folder and updates its manifest; the run's
/// plugin charts are looked up in `known` (`bazaar report` passes every registered
/// behaviour's, [`crate::plugin::Registry::charts`]).
pub fn rebuild(dir: &Path, known: &[charts::ChartDef]) -> Result<Built, ReportError> {
    let manifest_path = dir.join(MANIFEST);
    // Only a Bazaar output folder is written into: the report replaces files by name.
    crate::output::place::marked(dir).map_err(|reason| ReportError::Input {
        path: dir.to_path_buf(),
        reason,
        hint: "`bazaar report` rebuilds the report of a folder a Bazaar run wrote, as it wrote it",
    })?;
    let mut manifest: Manifest = read_json(&manifest_path)?;
    let built = build(dir, known)?;
    for f in &built.files {
        manifest.files.retain(|e| e.name != f.name);
        manifest.files.push(f.clone());
    }
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| ReportError::Write {
        path: manifest_path.clone(),
        reason: e.to_string(),
    })?;
    write_atomic(dir, MANIFEST, &json)?;
    Ok(built)
}
