//! Outputs: tables streamed to a temporary folder while the simulation runs, then finished
//! atomically — a manifest with row counts and checksums written last, and the folder renamed
//! into place. A failed run leaves nothing half-written where the results belong, and a
//! folder that Bazaar did not write is never replaced.

mod delta;
mod file;
pub mod format;
mod keyed;
pub mod parquet;
mod rowbuf;
pub mod sinks;
pub mod summary;
pub mod table;
mod worker;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The manifest's file name; its presence marks a folder as Bazaar's.
pub const MANIFEST: &str = "manifest.json";

/// Problems with the output folder.
#[derive(Debug, Error)]
pub enum OutputError {
    /// The target exists and is not a Bazaar output folder.
    #[error(
        "refusing to replace `{0}`: it exists and is not a Bazaar output folder (no {MANIFEST})\n  hint: choose another folder with --out, or move it away"
    )]
    Foreign(PathBuf),
    /// An I/O error on a path.
    #[error("cannot write `{path}`: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

/// Attaches a path to an I/O error.
pub fn io_at(path: &Path) -> impl FnOnce(io::Error) -> OutputError + '_ {
    move |source| OutputError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One file listed in the manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileEntry {
    /// File name inside the folder.
    pub name: String,
    /// Data rows (CSV header excluded; 0 for non-tables).
    pub rows: u64,
    /// Size in bytes.
    pub bytes: u64,
    /// BLAKE3 hash of the contents, hex.
    pub blake3: String,
}

/// The manifest: what the folder holds. Written last.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Bazaar version that wrote the folder.
    pub bazaar_version: String,
    /// Scenario name.
    pub scenario: String,
    /// Seed used.
    pub seed: u64,
    /// The files, in writing order.
    pub files: Vec<FileEntry>,
}

/// A folder being written: a temporary sibling of the target until [`OutputDir::finish`].
#[derive(Debug)]
pub struct OutputDir {
    target: PathBuf,
    tmp: PathBuf,
    files: Vec<FileEntry>,
    finished: bool,
}

impl OutputDir {
    /// Checks the target can be replaced and creates the temporary folder.
    pub fn create(target: &Path) -> Result<Self, OutputError> {
        check_replaceable(target)?;
        let name = target
            .file_name()
            .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
        let parent = target.parent().filter(|p| !p.as_os_str().is_empty());
        let parent = parent.unwrap_or(Path::new("."));
        fs::create_dir_all(parent).map_err(io_at(parent))?;
        let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(io_at(&tmp))?;
        }
        fs::create_dir(&tmp).map_err(io_at(&tmp))?;
        Ok(Self {
            target: target.to_path_buf(),
            tmp,
            files: Vec::new(),
            finished: false,
        })
    }

    /// Path of a file inside the temporary folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.join(name)
    }

    /// The final folder.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Records a finished file for the manifest.
    pub fn add(&mut self, entry: FileEntry) {
        self.files.push(entry);
    }

    /// Writes a small whole file (JSON) and records it.
    pub fn write_file(&mut self, name: &str, bytes: &[u8]) -> Result<(), OutputError> {
        let path = self.path(name);
        fs::write(&path, bytes).map_err(io_at(&path))?;
        self.add(FileEntry {
            name: name.to_owned(),
            rows: 0,
            bytes: bytes.len() as u64,
            blake3: blake3::hash(bytes).to_hex().to_string(),
        });
        Ok(())
    }

    /// Writes the manifest and moves the folder into place, replacing an earlier Bazaar
    /// output folder if there is one.
    pub fn finish(mut self, scenario: &str, seed: u64) -> Result<PathBuf, OutputError> {
        let manifest = Manifest {
            bazaar_version: env!("CARGO_PKG_VERSION").to_owned(),
            scenario: scenario.to_owned(),
            seed,
            files: self.files.clone(),
        };
        let json = serde_json::to_vec_pretty(&manifest).map_err(|e| OutputError::Io {
            path: self.path(MANIFEST),
            source: io::Error::other(e),
        })?;
        let path = self.path(MANIFEST);
        fs::write(&path, json).map_err(io_at(&path))?;
        check_replaceable(&self.target)?;
        if self.target.exists() {
            let old = self.tmp.with_extension("old");
            fs::rename(&self.target, &old).map_err(io_at(&self.target))?;
            fs::rename(&self.tmp, &self.target).map_err(io_at(&self.target))?;
            fs::remove_dir_all(&old).map_err(io_at(&old))?;
        } else {
            fs::rename(&self.tmp, &self.target).map_err(io_at(&self.target))?;
        }
        self.finished = true;
        Ok(self.target.clone())
    }
}

impl Drop for OutputDir {
    fn drop(&mut self) {
        if !self.finished {
            let _ = fs::remove_dir_all(&self.tmp);
        }
    }
}

/// A target can be replaced if it does not exist, is an empty folder, or holds a manifest.
pub fn check_replaceable(target: &Path) -> Result<(), OutputError> {
    if !target.exists() {
        return Ok(());
    }
    if !target.is_dir() {
        return Err(OutputError::Foreign(target.to_path_buf()));
    }
    let empty = fs::read_dir(target)
        .map_err(io_at(target))?
        .next()
        .is_none();
    if empty || target.join(MANIFEST).is_file() {
        Ok(())
    } else {
        Err(OutputError::Foreign(target.to_path_buf()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_folder_replaces_an_earlier_run_but_not_user_files() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("run");
        let mut out = OutputDir::create(&target).unwrap();
        out.write_file("a.json", b"{}").unwrap();
        assert!(!target.exists(), "nothing appears before finish");
        out.finish("s", 1).unwrap();
        assert!(target.join(MANIFEST).is_file());

        let mut again = OutputDir::create(&target).unwrap();
        again.write_file("b.json", b"[]").unwrap();
        again.finish("s", 1).unwrap();
        assert!(target.join("b.json").is_file() && !target.join("a.json").exists());

        let mine = dir.path().join("mine");
        fs::create_dir(&mine).unwrap();
        fs::write(mine.join("notes.txt"), "keep me").unwrap();
        assert!(matches!(
            OutputDir::create(&mine),
            Err(OutputError::Foreign(_))
        ));
        assert_eq!(
            fs::read_to_string(mine.join("notes.txt")).unwrap(),
            "keep me"
        );
    }

    #[test]
    fn an_abandoned_folder_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("run");
        let out = OutputDir::create(&target).unwrap();
        let tmp = out.path("");
        drop(out);
        assert!(!tmp.exists() && !target.exists());
    }
}
