//! Outputs: tables streamed to a temporary folder while the simulation runs, then finished
//! atomically — a manifest with row counts and checksums written last, and the folder moved
//! into place in one step. A failed run leaves nothing half-written where the results
//! belong, and a folder that Bazaar did not write is never replaced ([`place`]).

mod delta;
pub(crate) mod file;
pub mod format;
mod keyed;
pub mod parquet;
pub mod place;
mod rowbuf;
pub mod schema;
pub mod sinks;
pub mod summary;
pub mod table;
mod worker;

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The manifest's file name. A folder is Bazaar's when its manifest carries [`FORMAT`] and
/// the folder holds exactly the files the manifest lists ([`place::ownership`]).
pub const MANIFEST: &str = "manifest.json";
/// The manifest's `format` marker.
pub const FORMAT: &str = "bazaar-output";
/// The manifest layout's version; a folder of a newer layout is not replaced.
pub const FORMAT_VERSION: u32 = 1;

/// Problems with the output folder.
#[derive(Debug, Error)]
pub enum OutputError {
    /// The target exists and is not a Bazaar output folder, or no longer holds what Bazaar
    /// wrote there.
    #[error(
        "refusing to replace `{path}`: {reason}\n  hint: choose another folder with --out, or move it away"
    )]
    Foreign {
        /// The target.
        path: PathBuf,
        /// Why it is not Bazaar's to replace.
        reason: String,
    },
    /// Another run is writing the same folder.
    #[error(
        "`{0}` is being written by another Bazaar run\n  hint: wait for it to finish, or choose another folder with --out"
    )]
    Busy(PathBuf),
    /// An I/O error on a path.
    #[error("cannot write `{path}`: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

impl OutputError {
    /// A refusal to replace `path`.
    pub fn foreign(path: &Path, reason: impl Into<String>) -> Self {
        Self::Foreign {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
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
    /// File name inside the folder (`/`-separated below it, e.g. `charts/x.png`).
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
    /// Always [`FORMAT`]: marks the folder as a Bazaar output.
    #[serde(default)]
    pub format: String,
    /// The manifest layout, [`FORMAT_VERSION`].
    #[serde(default)]
    pub format_version: u32,
    /// Bazaar version that wrote the folder.
    pub bazaar_version: String,
    /// Scenario name.
    pub scenario: String,
    /// Seed used.
    pub seed: u64,
    /// The files, in writing order.
    pub files: Vec<FileEntry>,
}

impl Manifest {
    /// The manifest of a folder of whole files made in memory (an experiment's), each with
    /// its bytes: what `bazaar check` and `bazaar serve` read, as for a run's folder.
    pub fn of_files(scenario: &str, seed: u64, files: &[(&str, &[u8])]) -> Self {
        Self {
            format: FORMAT.to_owned(),
            format_version: FORMAT_VERSION,
            bazaar_version: env!("CARGO_PKG_VERSION").to_owned(),
            scenario: scenario.to_owned(),
            seed,
            files: files
                .iter()
                .map(|(name, bytes)| FileEntry {
                    name: (*name).to_owned(),
                    rows: 0,
                    bytes: bytes.len() as u64,
                    blake3: blake3::hash(bytes).to_hex().to_string(),
                })
                .collect(),
        }
    }

    /// Reads and parses `dir/manifest.json`.
    pub fn read(dir: &Path) -> Result<Self, String> {
        use std::io::Read;
        /// Far past any real manifest; a larger file is not read whole.
        const LARGEST: u64 = 64 << 20;
        let path = dir.join(MANIFEST);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() && m.len() <= LARGEST => {}
            Ok(m) if m.is_file() => {
                return Err(format!("{MANIFEST} is too large to be a manifest"));
            }
            Ok(_) => return Err(format!("{MANIFEST} is not a regular file")),
            Err(e) => return Err(format!("cannot read {MANIFEST}: {e}")),
        }
        let mut bytes = Vec::new();
        fs::File::open(&path)
            .and_then(|f| f.take(LARGEST).read_to_end(&mut bytes))
            .map_err(|e| format!("cannot read {MANIFEST}: {e}"))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("{MANIFEST} is not a manifest ({e})"))
    }
}

/// Name of the marker file a folder holds while Bazaar is writing it; removed just after
/// the manifest is written, so a temporary folder always holds one or the other.
pub const PARTIAL_MARKER: &str = ".bazaar-partial";

/// The checkpoint a run keeps in its temporary folder (`--checkpoint-every`), removed when
/// the folder is finished.
pub const CHECKPOINT: &str = "checkpoint.bazaar";

/// A folder being written: a temporary sibling of the target until [`OutputDir::finish`].
/// Holds the target's lock ([`place::Lock`]) from creation to the end.
///
/// During a run it is a resource of the world, so plugins create their tables in it when
/// built and list them when finished.
#[derive(Debug, bevy_ecs::prelude::Resource)]
pub struct OutputDir {
    target: PathBuf,
    tmp: PathBuf,
    files: Vec<FileEntry>,
    finished: bool,
    /// Threads of the encoding pool ([`OutputDir::pool`]).
    threads: usize,
    pool: std::sync::OnceLock<std::sync::Arc<rayon::ThreadPool>>,
    /// Taking up a checkpoint's files: tables built meanwhile write to the null device
    /// ([`OutputDir::create_file`]) until [`OutputDir::taken_up`].
    resuming: bool,
    /// Files created while resuming and not yet taken up from the checkpoint.
    pending: std::sync::Mutex<Vec<String>>,
    /// Work files removed when the folder is finished (a table's partial file).
    scratch: Vec<String>,
    /// Where its tables' writers record their time.
    timings: crate::timings::Timings,
    /// In a run sharded over processes, this process's rank and their number: each rank
    /// writes its own part of the per-customer tables ([`PARTED`]); rank 0 owns the folder
    /// and writes everything else.
    shard: Option<(usize, usize)>,
    /// The target's lock, held by the process that owns the folder.
    _lock: Option<place::Lock>,
}

/// The tables a sharded run writes a part of on each rank, as `{stem}/part-{rank:05}.{ext}`
/// (one dataset to DuckDB, Polars or pyarrow): those with a row per customer or per visit.
pub const PARTED: [&str; 4] = ["transactions", "line_items", "customers", "churn_events"];

impl OutputDir {
    /// Locks the target, clears what dead runs left beside it, checks it can be replaced
    /// and creates the temporary folder. A symlinked target is written through: the folder
    /// it points to is the one replaced, and the link stays.
    pub fn create(target: &Path) -> Result<Self, OutputError> {
        let target = place::resolve(target)?;
        let parent = place::parent_of(&target);
        fs::create_dir_all(&parent).map_err(io_at(&parent))?;
        let lock = place::Lock::acquire(&target)?;
        place::recover(&target)?;
        place::ownership(&target)?;
        // `recover` has cleared every sibling but those kept for a checkpoint, one of which
        // may have this PID (left by an earlier process that had it).
        let tmp = place::free_sibling(&target, "tmp");
        fs::create_dir(&tmp).map_err(io_at(&tmp))?;
        Self::marked(target, tmp, lock, false)
    }

    /// The folder `tmp`, marked as this process's, writing for `target` under its `lock`.
    fn marked(
        target: PathBuf,
        tmp: PathBuf,
        lock: place::Lock,
        resuming: bool,
    ) -> Result<Self, OutputError> {
        let marker = tmp.join(PARTIAL_MARKER);
        fs::write(&marker, std::process::id().to_string()).map_err(io_at(&marker))?;
        Ok(Self::at(target, tmp, Some(lock), resuming))
    }

    /// The folder `tmp` for `target`, nothing written yet; owned (removed if given up
    /// unfinished) when it holds the target's `lock`.
    fn at(target: PathBuf, tmp: PathBuf, lock: Option<place::Lock>, resuming: bool) -> Self {
        Self {
            target,
            tmp,
            files: Vec::new(),
            finished: lock.is_none(),
            threads: std::thread::available_parallelism().map_or(1, usize::from),
            pool: std::sync::OnceLock::new(),
            resuming,
            pending: std::sync::Mutex::new(Vec::new()),
            scratch: Vec::new(),
            timings: crate::timings::Timings::default(),
            shard: None,
            _lock: lock,
        }
    }

    /// Makes this folder the one rank 0 of a run sharded over `ranks` processes owns.
    pub fn shard_root(&mut self, ranks: usize) {
        self.shard = Some((0, ranks));
    }

    /// The temporary folder `tmp` that rank 0 made (or took up, `resuming`) for `target`,
    /// joined by rank `rank` of `ranks` to write its parts of the per-customer tables. It
    /// holds no lock and never removes the folder: rank 0 owns it.
    pub fn join_shard(
        target: &Path,
        tmp: PathBuf,
        rank: usize,
        ranks: usize,
        resuming: bool,
    ) -> Result<Self, OutputError> {
        // Rank 0's marker is there only where the ranks share the file system.
        if !tmp.join(PARTIAL_MARKER).is_file() {
            return Err(OutputError::foreign(
                &tmp,
                "rank 0's temporary folder is not there on this rank's machine: the output \
                 folder must be on a file system every rank shares (NFS, a parallel file system)",
            ));
        }
        let mut dir = Self::at(target.to_path_buf(), tmp, None, resuming);
        dir.shard = Some((rank, ranks));
        Ok(dir)
    }

    /// The temporary folder being written.
    pub fn work_path(&self) -> &Path {
        &self.tmp
    }

    /// The files written and listed so far.
    pub fn files(&self) -> &[FileEntry] {
        &self.files
    }

    /// Where this process writes the file a table or plugin calls `name`: itself alone;
    /// in a sharded run, its part of a per-customer table ([`PARTED`]), or `None` for a
    /// file only rank 0 writes (on the other ranks, its bytes go nowhere).
    fn placed(&self, name: &str) -> Option<String> {
        let Some((rank, _)) = self.shard else {
            return Some(name.to_owned());
        };
        let parted = name
            .split_once('.')
            .filter(|(stem, ext)| PARTED.contains(stem) && !ext.contains('/'));
        match parted {
            Some((stem, ext)) => Some(format!("{stem}/part-{rank:05}.{ext}")),
            None if rank == 0 => Some(name.to_owned()),
            None => None,
        }
    }

    /// Takes up the temporary folder `work` of an interrupted run on `target`, to go on
    /// from its checkpoint: locks the target (so no other run is using the folder; the
    /// run that wrote it is gone), and renames the folder as this process's own. Tables
    /// built from then on write nowhere until their files are taken up and
    /// [`OutputDir::taken_up`] is called.
    pub fn adopt(target: &Path, work: &Path) -> Result<Self, OutputError> {
        let target = place::resolve(target)?;
        let lock = place::Lock::acquire(&target)?;
        let beside = |p: &Path| fs::canonicalize(place::parent_of(p)).ok();
        let named = work
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let prefix = format!(
            ".{}.tmp-",
            target.file_name().unwrap_or_default().to_string_lossy()
        );
        if !work.join(PARTIAL_MARKER).is_file()
            || beside(work) != beside(&target)
            || !named.starts_with(&prefix)
        {
            return Err(OutputError::foreign(
                work,
                format!(
                    "it is not the temporary folder of a Bazaar run on `{}` (`{prefix}*` beside it)",
                    target.display()
                ),
            ));
        }
        // Whatever is at the target must still be Bazaar's to replace, before anything moves.
        place::ownership(&target)?;
        let tmp = place::free_sibling(&target, "tmp");
        fs::rename(work, &tmp).map_err(io_at(work))?;
        sync_dir(&place::parent_of(&target))?;
        Self::marked(target, tmp, lock, true)
    }

    /// Every table has taken up its file: tables created from now on are new files. A
    /// table created while resuming whose file was not taken up would write nowhere: it is
    /// refused, named.
    pub fn taken_up(&mut self) -> Result<(), OutputError> {
        self.resuming = false;
        let left = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        match left.first() {
            None => Ok(()),
            Some(name) => Err(OutputError::Io {
                path: self.path(name),
                source: io::Error::other(
                    "the checkpoint does not take this file up (a plugin writes it and does not save where it stands)",
                ),
            }),
        }
    }

    /// Removes the work file `name` (not listed in the manifest) when the folder is
    /// finished, after the checkpoint that may still need it.
    pub fn remove_at_finish(&mut self, name: &str) {
        self.scratch.push(name.to_owned());
    }

    /// Creates (or empties) the file `name` for a table to stream into; while the folder is
    /// being taken up, a table built to be replaced by its checkpoint's writes nowhere.
    pub(crate) fn create_file(&self, name: &str) -> io::Result<file::Hashing> {
        if self.resuming {
            self.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(name.to_owned());
            file::Hashing::null()
        } else {
            match self.placed(name) {
                Some(placed) => {
                    let path = self.tmp.join(&placed);
                    if let Some(parent) = path.parent() {
                        fs::create_dir_all(parent)?;
                    }
                    file::Hashing::create(&path)
                }
                None => file::Hashing::null(),
            }
        }
    }

    /// Takes up the file `name` where a checkpoint left it ([`file::Hashing::resume`]).
    pub(crate) fn resume_file(&self, name: &str, mark: &file::Mark) -> io::Result<file::Hashing> {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|n| n != name);
        if self.placed(name).is_none() {
            // Rank 0's file, which this rank of a sharded run never wrote: nothing to take up.
            return file::Hashing::null_at(mark);
        }
        file::Hashing::resume(&self.path(name), mark).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot go on from the checkpoint: `{name}`: {e}"),
            )
        })
    }

    /// Where the run's checkpoint is kept: inside the temporary folder, beside the files it
    /// describes, until the folder is finished.
    pub fn checkpoint_path(&self) -> PathBuf {
        self.path(CHECKPOINT)
    }

    /// Sets the encoding pool's thread count (before any table is created; the run's
    /// `--threads`); the default is every core.
    pub fn set_threads(&mut self, n: usize) {
        self.threads = n.max(1);
    }

    /// Where this folder's tables record the time their writing takes.
    pub fn timings(&self) -> crate::timings::Timings {
        self.timings.clone()
    }

    /// The pool this folder's tables encode on (`bazaar-out-*`): its own, apart from the
    /// simulation's, so a writer's long encoding job never queues ahead of the hour's
    /// simulation work, and each run in a process keeps its thread count.
    pub fn pool(&self) -> std::sync::Arc<rayon::ThreadPool> {
        self.pool
            .get_or_init(|| {
                std::sync::Arc::new(
                    rayon::ThreadPoolBuilder::new()
                        .num_threads(self.threads)
                        .thread_name(|i| format!("bazaar-out-{i}"))
                        .build()
                        .expect("the output encoding pool starts"),
                )
            })
            .clone()
    }

    /// Path of a file inside the temporary folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.join(self.placed(name).as_deref().unwrap_or(name))
    }

    /// The final folder (a symlinked `--out` resolved).
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Records a finished file for the manifest.
    pub fn add(&mut self, mut entry: FileEntry) {
        if let Some(placed) = self.placed(&entry.name) {
            entry.name = placed;
            self.files.push(entry);
        }
    }

    /// Records files another rank of a sharded run wrote into this folder, as it named
    /// them.
    pub fn add_written(&mut self, entries: Vec<FileEntry>) {
        self.files.extend(entries);
    }

    /// Writes a small whole file (JSON), synced to disk, and records it (in a sharded
    /// run, on rank 0 only).
    pub fn write_file(&mut self, name: &str, bytes: &[u8]) -> Result<(), OutputError> {
        if self.placed(name).is_none() {
            return Ok(());
        }
        let path = self.path(name);
        write_synced(&path, bytes)?;
        self.add(FileEntry {
            name: name.to_owned(),
            rows: 0,
            bytes: bytes.len() as u64,
            blake3: blake3::hash(bytes).to_hex().to_string(),
        });
        Ok(())
    }

    /// Writes the manifest and moves the folder into place in one step, replacing an
    /// earlier Bazaar output folder if there is one ([`place::replace`]).
    pub fn finish(mut self, scenario: &str, seed: u64) -> Result<PathBuf, OutputError> {
        let manifest = Manifest {
            format: FORMAT.to_owned(),
            format_version: FORMAT_VERSION,
            bazaar_version: env!("CARGO_PKG_VERSION").to_owned(),
            scenario: scenario.to_owned(),
            seed,
            files: self.files.clone(),
        };
        let json = serde_json::to_vec_pretty(&manifest).map_err(|e| OutputError::Io {
            path: self.path(MANIFEST),
            source: io::Error::other(e),
        })?;
        // Checked before the checkpoint goes, so a target taken meanwhile keeps the run
        // resumable.
        place::ownership(&self.target)?;
        // The manifest first, then the marker goes: the folder always holds one or the other,
        // so a run that dies here leaves a folder the next run knows is Bazaar's (and one
        // that still holds its checkpoint, one it keeps).
        write_synced(&self.path(MANIFEST), &json)?;
        // Checkpoints and work files belong to the unfinished folder (a checkpoint being
        // written when the run was stopped leaves a `.checkpoint-*` file).
        for entry in fs::read_dir(&self.tmp).map_err(io_at(&self.tmp))?.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name == CHECKPOINT
                || name.starts_with(".checkpoint-")
                || name.starts_with(crate::checkpoint::RANK_PREFIX)
                || self.scratch.iter().any(|s| *s == name)
            {
                fs::remove_file(entry.path()).map_err(io_at(&entry.path()))?;
            }
        }
        let marker = self.path(PARTIAL_MARKER);
        fs::remove_file(&marker).map_err(io_at(&marker))?;
        sync_dir(&self.tmp)?;
        for dir in self.subfolders() {
            sync_dir(&dir)?;
        }
        place::ownership(&self.target)?;
        place::replace(&self.tmp, &self.target)?;
        self.finished = true;
        Ok(self.target.clone())
    }

    /// Folders below the temporary folder that hold listed files (e.g. `charts/`).
    fn subfolders(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self
            .files
            .iter()
            .filter_map(|f| Path::new(&f.name).parent())
            .filter(|p| !p.as_os_str().is_empty())
            .map(|p| self.tmp.join(p))
            .collect();
        dirs.sort();
        dirs.dedup();
        dirs
    }
}

impl OutputDir {
    /// Gives the temporary folder up unfinished, to be resumed from its checkpoint: it is
    /// kept where it is (and named in the message of the stop).
    pub fn keep(mut self) -> PathBuf {
        self.finished = true;
        self.tmp.clone()
    }
}

impl Drop for OutputDir {
    /// A folder given up unfinished is removed, unless it holds a checkpoint: then a failed
    /// run (a full disk, a killed writer) can be resumed once the cause is fixed.
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        if self.checkpoint_path().is_file() {
            tracing::warn!(
                "kept `{}`: it holds a checkpoint (`bazaar resume {}` goes on from it)",
                self.tmp.display(),
                self.checkpoint_path().display()
            );
            return;
        }
        let _ = place::discard(&self.tmp, &self.target);
    }
}

/// Writes a whole file and syncs it to disk.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    let mut f = fs::File::create(path).map_err(io_at(path))?;
    f.write_all(bytes).map_err(io_at(path))?;
    f.sync_all().map_err(io_at(path))
}

/// Syncs a folder's entries to disk (where the platform can; elsewhere a no-op).
pub(crate) fn sync_dir(dir: &Path) -> Result<(), OutputError> {
    #[cfg(unix)]
    {
        fs::File::open(dir)
            .and_then(|f| f.sync_all())
            .map_err(io_at(dir))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
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
            Err(OutputError::Foreign { .. })
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
