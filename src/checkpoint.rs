//! Checkpoints: a simulation's whole state at the end of a day, as bytes that a fresh
//! simulation of the same scenario takes up again, so a run can stop and go on (or branch
//! into arms) with the same results as one that never stopped.
//!
//! The state is what the next day reads and the scenario does not give back: every
//! customer's components, the clock, the population's counters, and each plugin's own
//! resources ([`crate::plugin::Plugin::save`]). Randomness has no state to save: every draw
//! is a function of the seed, the customer and the tick. What a fresh build recomputes (the
//! model, today's calendar factors, the hour's buffers) is not saved.
//!
//! A checkpoint is one file: an 8-byte magic, then a CBOR header (format, Bazaar version,
//! the scenario's fingerprint, the plugins, the day), then named sections, each a length
//! and its bytes, then the BLAKE3 hash of all before it. Customer columns are little-endian
//! arrays; plugin state is CBOR, whose floats read back bit for bit. A damaged checkpoint, or
//! one from another format or version, another scenario or another set of plugins, is
//! refused with the reason.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The layout of the file; a change of it is a new number.
pub const FORMAT: u32 = 4;

/// Bytes of the checksum that ends every checkpoint.
const CHECKSUM: usize = 32;

/// The first bytes of every checkpoint file.
const MAGIC: &[u8; 8] = b"BAZAARCK";

/// Most bytes one section may claim, so a damaged length is refused before it allocates.
const MAX_SECTION: u64 = 1 << 40;

/// Why a checkpoint cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Reading or writing the file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// Not a checkpoint, or a damaged one.
    #[error("{0}")]
    Damaged(String),
    /// A checkpoint of something else: another version, scenario or set of plugins.
    #[error("{0}")]
    Mismatch(String),
}

/// What a checkpoint is of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// [`FORMAT`] when written.
    pub format: u32,
    /// The Bazaar version that wrote it.
    pub version: String,
    /// The scenario's fingerprint ([`fingerprint`]).
    pub scenario: String,
    /// The plugins, in build order.
    pub plugins: Vec<String>,
    /// Days completed: the run goes on at the first hour of this day.
    pub day: u32,
    /// Agent ids handed out.
    pub customers: u32,
    /// The processes the run was sharded over (1: one process), and which of them wrote
    /// this checkpoint: a sharded run's ranks each write their own ([`rank_path`]). (A
    /// default, so that an older format's header still reads, to be refused by its format.)
    #[serde(default = "one")]
    pub ranks: u32,
    /// This checkpoint's rank, from 0.
    #[serde(default)]
    pub rank: u32,
    /// What an arm forked from the checkpoint must share with its scenario
    /// ([`Header::fork_check`]).
    pub shape: Shape,
}

/// One process: what a header without `ranks` says.
fn one() -> u32 {
    1
}

/// What the customers' saved state means: the seed of their streams, the calendar's first
/// day and length, the personas and categories by index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shape {
    /// The master seed.
    pub seed: u64,
    /// The first simulated day.
    pub start: String,
    /// Days simulated.
    pub days: u32,
    /// Persona names, by index.
    pub personas: Vec<String>,
    /// Category names, by index.
    pub categories: Vec<String>,
    /// Starting customers, by persona.
    pub population: Vec<u64>,
}

impl Shape {
    /// What of `other` differs from this shape, in words; `None` when nothing does.
    pub fn differences(&self, other: &Shape) -> Option<String> {
        let (s, t) = (self, other);
        let differs = [
            (s.seed != t.seed, "seed"),
            (s.start != t.start || s.days != t.days, "start and days"),
            (s.personas != t.personas, "personas (names, in order)"),
            (
                s.categories != t.categories,
                "catalog (category names, in order)",
            ),
            (
                s.population != t.population,
                "starting customers by persona",
            ),
        ];
        let what: Vec<&str> = differs.iter().filter(|d| d.0).map(|d| d.1).collect();
        (!what.is_empty()).then(|| what.join(", "))
    }

    /// The shape of `scenario`.
    pub fn of(scenario: &crate::scenario::Scenario) -> Self {
        Self {
            seed: scenario.seed,
            start: scenario.start.to_string(),
            days: scenario.days,
            personas: scenario.personas.iter().map(|p| p.name.clone()).collect(),
            categories: scenario.catalog.iter().map(|c| c.name.clone()).collect(),
            population: scenario.population.clone(),
        }
    }
}

/// A simulation's state at the end of a day.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// What it is of.
    pub header: Header,
    /// Named sections: `core`, `customers`, and one per plugin with state.
    pub sections: BTreeMap<String, Vec<u8>>,
}

/// The fingerprint of a checked scenario: a hash of everything Bazaar holds of it (the
/// overrides of the command line included) and of its models' files (each card and the
/// ONNX file the card names, which the scenario holds only by path), so that any change that
/// reaches the simulation makes a checkpoint refuse to resume.
pub fn fingerprint(scenario: &crate::scenario::Scenario) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(format!("{scenario:?}").as_bytes());
    if let Some(model) = &scenario.churn_model {
        hash_model(&mut hasher, &model.spec);
        if let Some(spend) = &model.spend {
            hash_model(&mut hasher, &spend.spec);
        }
    }
    hasher.finalize().to_hex().to_string()
}

/// Hashes a model card and the ONNX file it names.
pub(crate) fn hash_model(hasher: &mut blake3::Hasher, spec: &Path) {
    // A file that cannot be read hashes as its error; the run's own loading reports it.
    let mut file = |path: &Path| match std::fs::read(path) {
        Ok(bytes) => {
            hasher.update(&(bytes.len() as u64).to_le_bytes());
            hasher.update(&bytes);
            Some(bytes)
        }
        Err(e) => {
            hasher.update(e.to_string().as_bytes());
            None
        }
    };
    let card = file(spec);
    let onnx = card
        .and_then(|c| serde_json::from_slice::<serde_json::Value>(&c).ok())
        .and_then(|v| v.get("model")?.as_str().map(str::to_owned));
    if let Some(onnx) = onnx {
        let dir = spec.parent().unwrap_or(Path::new("."));
        file(&dir.join(onnx));
    }
}

impl Snapshot {
    /// The snapshot as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            64 + self
                .sections
                .iter()
                .map(|(k, v)| k.len() + v.len() + 16)
                .sum::<usize>(),
        );
        // Writing into a vector fails only when the header cannot be encoded as CBOR, which a
        // header of strings and integers always can.
        let _ = self.write_to(&mut out);
        let sum = blake3::hash(&out);
        out.extend_from_slice(sum.as_bytes());
        out
    }

    /// Writes the bytes [`Snapshot::to_bytes`] gives, but the checksum, to `out`, a section
    /// at a time (no copy of the whole is made).
    fn write_to(&self, out: &mut impl Write) -> std::io::Result<()> {
        let block = |out: &mut dyn Write, bytes: &[u8]| -> std::io::Result<()> {
            out.write_all(&(bytes.len() as u64).to_le_bytes())?;
            out.write_all(bytes)
        };
        out.write_all(MAGIC)?;
        let mut header = Vec::new();
        ciborium::into_writer(&self.header, &mut header).map_err(std::io::Error::other)?;
        block(out, &header)?;
        out.write_all(&(self.sections.len() as u64).to_le_bytes())?;
        for (name, bytes) in &self.sections {
            block(out, name.as_bytes())?;
            block(out, bytes)?;
        }
        Ok(())
    }

    /// Reads a snapshot written by [`Snapshot::to_bytes`], refusing another format.
    pub fn from_bytes(mut bytes: &[u8]) -> Result<Self, CheckpointError> {
        let whole = bytes;
        let damaged =
            |what: &str| CheckpointError::Damaged(format!("not a Bazaar checkpoint: {what}"));
        let mut magic = [0u8; 8];
        bytes
            .read_exact(&mut magic)
            .map_err(|_| damaged("too short"))?;
        if &magic != MAGIC {
            return Err(damaged("it does not start as one"));
        }
        let header: Header = ciborium::from_reader(take_block(&mut bytes)?)
            .map_err(|e| damaged(&format!("its header: {e}")))?;
        if header.format != FORMAT {
            return Err(CheckpointError::Mismatch(format!(
                "a checkpoint of format {} (Bazaar {}); this Bazaar ({}) reads format {FORMAT}",
                header.format,
                header.version,
                env!("CARGO_PKG_VERSION")
            )));
        }
        // The last bytes are the BLAKE3 hash of all before them: a file damaged anywhere is
        // refused here, before any of its state is read.
        let body = whole
            .len()
            .checked_sub(CHECKSUM)
            .filter(|&n| n >= whole.len() - bytes.len())
            .ok_or_else(|| damaged("too short"))?;
        if blake3::hash(&whole[..body]).as_bytes()[..] != whole[body..] {
            return Err(CheckpointError::Damaged(
                "the checkpoint is damaged: its checksum does not match its contents".into(),
            ));
        }
        bytes = &bytes[..bytes.len() - CHECKSUM];
        let n = take_u64(&mut bytes)?;
        let mut sections = BTreeMap::new();
        for _ in 0..n {
            let name = String::from_utf8(take_block(&mut bytes)?.to_vec())
                .map_err(|_| damaged("a section's name"))?;
            let body = take_block(&mut bytes)?.to_vec();
            sections.insert(name, body);
        }
        if !bytes.is_empty() {
            return Err(damaged("bytes after its last section"));
        }
        Ok(Self { header, sections })
    }

    /// Writes the snapshot to `path` atomically: a temporary file beside it, synced, then
    /// renamed over it, so the path holds the old checkpoint or the new one, never a part.
    pub fn write(&self, path: &Path) -> Result<(), CheckpointError> {
        let io = |source| CheckpointError::Io {
            path: path.display().to_string(),
            source,
        };
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let tmp = dir.join(format!(".checkpoint-{}-{name}", std::process::id()));
        // Straight to disk, as the output tables are: a checkpoint is as large as the
        // customers' state, and fresh page-cache pages are what the disk is slowest at.
        let written = (|| -> std::io::Result<()> {
            let mut file = crate::output::file::Hashing::create(&tmp)?;
            self.write_to(&mut file)?;
            // The file hashes what it writes: that hash is the checksum.
            let sum = file.hash();
            file.write_all(sum.as_bytes())?;
            file.sync()?;
            std::fs::rename(&tmp, path)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(io(e));
        }
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Reads the checkpoint at `path`.
    pub fn read(path: &Path) -> Result<Self, CheckpointError> {
        let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_bytes(&bytes)
    }

    /// Refuses a snapshot that an arm described by `arm` cannot branch from: another
    /// Bazaar version, or customers whose state means something else in the arm's scenario
    /// (another seed, calendar span, persona or category by index). Everything else may
    /// differ: prices, events, behaviours and their settings, the churn model.
    pub fn fork_check(&self, arm: &Header) -> Result<(), CheckpointError> {
        let (h, a) = (&self.header, arm);
        if h.version != a.version {
            return Err(CheckpointError::Mismatch(format!(
                "the checkpoint was written by Bazaar {}, this is Bazaar {}",
                h.version, a.version
            )));
        }
        match h.shape.differences(&a.shape) {
            None => Ok(()),
            Some(what) => Err(CheckpointError::Mismatch(format!(
                "an arm must share the base's {what}: its customers' state is read by them"
            ))),
        }
    }

    /// Refuses a snapshot taken of another scenario, set of plugins or Bazaar version than
    /// `expected` describes.
    pub fn check(&self, expected: &Header) -> Result<(), CheckpointError> {
        let h = &self.header;
        if h.version != expected.version {
            return Err(CheckpointError::Mismatch(format!(
                "the checkpoint was written by Bazaar {}, this is Bazaar {}: resume it with the \
                 version that wrote it",
                h.version, expected.version
            )));
        }
        if h.scenario != expected.scenario {
            return Err(CheckpointError::Mismatch(
                "the checkpoint is of another scenario (or the same one changed since, or run \
                 with other options): resume with the scenario and options it was written with"
                    .into(),
            ));
        }
        if h.ranks != expected.ranks {
            let (written, this) = (h.ranks as usize, expected.ranks as usize);
            return Err(CheckpointError::Mismatch(format!(
                "the checkpoint was written by a run on {}, this one is on {}: resume it on \
                 {} (`{}bazaar resume ...`)",
                crate::cluster::described(written),
                crate::cluster::described(this),
                crate::cluster::described(written),
                crate::cluster::launcher(written)
            )));
        }
        if h.rank != expected.rank {
            return Err(CheckpointError::Mismatch(format!(
                "the checkpoint is rank {}'s, this is rank {}",
                h.rank, expected.rank
            )));
        }
        if h.plugins != expected.plugins {
            return Err(CheckpointError::Mismatch(format!(
                "the checkpoint's plugins are {}, this run's are {}",
                h.plugins.join(", "),
                expected.plugins.join(", ")
            )));
        }
        Ok(())
    }
}

/// The checkpoint of rank `rank` (from 1) of a sharded run whose rank 0 wrote `root` (the
/// run's `checkpoint.bazaar`) at the end of day `day`: beside it, one file a rank and day.
/// Rank 0's file is written last, once every other rank's of the same day is on disk, so
/// whichever day it names, every rank's file of that day is there.
pub fn rank_path(root: &Path, rank: usize, day: u32) -> std::path::PathBuf {
    root.with_file_name(format!("{RANK_PREFIX}{rank:05}.day-{day:05}.bazaar"))
}

/// How the other ranks' checkpoint files are named ([`rank_path`]).
pub const RANK_PREFIX: &str = "checkpoint.rank-";

/// The checkpoint `path` names for `bazaar resume`: a checkpoint file, a run's temporary
/// folder holding one, or the output folder of an interrupted run (whose temporary folder,
/// `.NAME.tmp-PID` beside it, holds one).
pub fn locate(path: &Path) -> Result<std::path::PathBuf, String> {
    use crate::output::CHECKPOINT;
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    if path.join(CHECKPOINT).is_file() {
        return Ok(path.join(CHECKPOINT));
    }
    let normal: std::path::PathBuf = path.components().collect();
    let name = normal
        .file_name()
        .ok_or_else(|| format!("`{}` names no checkpoint or output folder", path.display()))?;
    let parent = crate::output::place::parent_of(&normal);
    let prefix = format!(".{}.tmp-", name.to_string_lossy());
    let mut found: Vec<std::path::PathBuf> = std::fs::read_dir(&parent)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .map(|e| e.path().join(CHECKPOINT))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(format!(
            "no checkpoint found for `{}`: neither a checkpoint file nor a folder holding one, and no interrupted run of it beside it\n  hint: runs write checkpoints with --checkpoint-every, or when stopped by Ctrl-C",
            path.display()
        )),
        _ => Err(format!(
            "`{}` has several interrupted runs with a checkpoint: {}\n  hint: name the checkpoint file to resume",
            path.display(),
            found
                .iter()
                .map(|p| format!("`{}`", p.display()))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

fn put_block(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn take_u64(bytes: &mut &[u8]) -> Result<u64, CheckpointError> {
    let mut n = [0u8; 8];
    bytes
        .read_exact(&mut n)
        .map_err(|_| CheckpointError::Damaged("a checkpoint cut short".into()))?;
    Ok(u64::from_le_bytes(n))
}

fn take_block<'a>(bytes: &mut &'a [u8]) -> Result<&'a [u8], CheckpointError> {
    let n = take_u64(bytes)?;
    if n > MAX_SECTION || n > bytes.len() as u64 {
        return Err(CheckpointError::Damaged("a checkpoint cut short".into()));
    }
    let (block, rest) = bytes.split_at(n as usize);
    *bytes = rest;
    Ok(block)
}

/// One plugin's state: named values, each CBOR ([`State::put`]) or, for large columns of
/// numbers, little-endian bytes ([`State::put_column`]), which are written and read as one
/// copy rather than a value at a time.
#[derive(Debug, Default)]
pub struct State {
    values: BTreeMap<String, Vec<u8>>,
}

/// A number a column of [`State::put_column`] holds, as little-endian bytes.
pub trait Scalar: Copy {
    /// Bytes per value.
    const SIZE: usize;
    /// Appends the value's bytes.
    fn put(self, out: &mut Vec<u8>);
    /// The value of `SIZE` bytes.
    fn take(bytes: &[u8]) -> Self;
}

macro_rules! scalar {
    ($($t:ty),*) => {$(
        impl Scalar for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            fn put(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn take(bytes: &[u8]) -> Self {
                let mut b = [0u8; std::mem::size_of::<$t>()];
                b.copy_from_slice(bytes);
                <$t>::from_le_bytes(b)
            }
        }
    )*};
}
scalar!(u8, u16, u32, u64, i16, i32, i64, f32, f64);

impl Scalar for bool {
    const SIZE: usize = 1;
    fn put(self, out: &mut Vec<u8>) {
        out.push(u8::from(self));
    }
    fn take(bytes: &[u8]) -> Self {
        bytes[0] != 0
    }
}

impl State {
    /// Saves `value` under `key`.
    pub fn put<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> crate::plugin::Result {
        let mut bytes = Vec::new();
        ciborium::into_writer(value, &mut bytes).map_err(|e| format!("saving `{key}`: {e}"))?;
        self.values.insert(key.to_owned(), bytes);
        Ok(())
    }

    /// The value saved under `key`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> crate::plugin::Result<T> {
        Ok(ciborium::from_reader(self.raw(key)?).map_err(|e| format!("reading `{key}`: {e}"))?)
    }

    /// Saves a column of numbers under `key`.
    pub fn put_column<T: Scalar>(&mut self, key: &str, values: &[T]) {
        let mut bytes = Vec::with_capacity(values.len() * T::SIZE);
        for &v in values {
            v.put(&mut bytes);
        }
        self.values.insert(key.to_owned(), bytes);
    }

    /// The column of numbers saved under `key`.
    pub fn get_column<T: Scalar>(&self, key: &str) -> crate::plugin::Result<Vec<T>> {
        let bytes = self.raw(key)?;
        if bytes.len() % T::SIZE != 0 {
            return Err(format!("reading `{key}`: not a whole number of values").into());
        }
        Ok(bytes.chunks_exact(T::SIZE).map(T::take).collect())
    }

    /// Saves another state (a part's own) under `key`.
    pub fn put_state(&mut self, key: &str, state: &State) {
        self.values.insert(key.to_owned(), state.to_bytes());
    }

    /// The state saved under `key` by [`State::put_state`].
    pub fn get_state(&self, key: &str) -> crate::plugin::Result<State> {
        Ok(State::from_bytes(self.raw(key)?)?)
    }

    fn raw(&self, key: &str) -> crate::plugin::Result<&[u8]> {
        Ok(self
            .values
            .get(key)
            .ok_or_else(|| format!("the checkpoint has no `{key}`"))?)
    }

    /// Whether nothing was saved.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Each key and value as a block (a length and its bytes), in key order.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.values.values().map(|v| v.len() + 32).sum());
        for (key, value) in &self.values {
            put_block(&mut out, key.as_bytes());
            put_block(&mut out, value);
        }
        out
    }

    pub(crate) fn from_bytes(mut bytes: &[u8]) -> Result<Self, CheckpointError> {
        let mut values = BTreeMap::new();
        while !bytes.is_empty() {
            let key = take_block(&mut bytes)?;
            let key = std::str::from_utf8(key).map_err(|_| {
                CheckpointError::Damaged("a plugin's state: a key is not text".into())
            })?;
            let value = take_block(&mut bytes)?;
            values.insert(key.to_owned(), value.to_vec());
        }
        Ok(Self { values })
    }
}

/// Reads the customers' little-endian fields back in the order they were written.
pub(crate) struct ColumnReader<'a> {
    bytes: &'a [u8],
}

impl<'a> ColumnReader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    pub(crate) fn take<const N: usize>(&mut self) -> Result<[u8; N], CheckpointError> {
        let (head, rest) = self.bytes.split_first_chunk::<N>().ok_or_else(|| {
            CheckpointError::Damaged("the customers' columns are cut short".into())
        })?;
        self.bytes = rest;
        Ok(*head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        let mut sections = BTreeMap::new();
        sections.insert("core".to_owned(), vec![1, 2, 3]);
        sections.insert("plugin:x".to_owned(), Vec::new());
        Snapshot {
            header: Header {
                format: FORMAT,
                version: "1.2.3".into(),
                scenario: "abc".into(),
                plugins: vec!["a".into(), "b".into()],
                day: 7,
                customers: 100,
                ranks: 1,
                rank: 0,
                shape: Shape {
                    seed: 1,
                    start: "2026-11-01".into(),
                    days: 30,
                    personas: vec!["p".into()],
                    categories: vec!["c".into(), "d".into()],
                    population: vec![10],
                },
            },
            sections,
        }
    }

    #[test]
    fn bytes_round_trip_and_damage_is_named() {
        let s = snapshot();
        let bytes = s.to_bytes();
        assert_eq!(Snapshot::from_bytes(&bytes).unwrap(), s);
        for cut in [0, 5, 8, 20, bytes.len() - 1] {
            let err = Snapshot::from_bytes(&bytes[..cut]).unwrap_err();
            assert!(matches!(err, CheckpointError::Damaged(_)), "{cut}: {err}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Snapshot::from_bytes(&longer).is_err());
        assert!(Snapshot::from_bytes(b"PAR1 and more bytes").is_err());
    }

    #[test]
    fn another_version_scenario_or_plugins_is_refused() {
        let s = snapshot();
        let mut want = s.header.clone();
        assert!(s.check(&want).is_ok());
        want.version = "1.2.4".into();
        assert!(
            s.check(&want)
                .unwrap_err()
                .to_string()
                .contains("Bazaar 1.2.3")
        );
        want = s.header.clone();
        want.scenario = "abd".into();
        assert!(
            s.check(&want)
                .unwrap_err()
                .to_string()
                .contains("another scenario")
        );
        want = s.header.clone();
        want.plugins.pop();
        assert!(s.check(&want).unwrap_err().to_string().contains("plugins"));
        // An arm may differ in all but the shape of its customers' state.
        want = s.header.clone();
        want.scenario = "other".into();
        want.plugins.push("promotions".into());
        assert!(s.fork_check(&want).is_ok());
        want.shape.categories.reverse();
        want.shape.seed = 2;
        let err = s.fork_check(&want).unwrap_err().to_string();
        assert!(err.contains("seed, catalog"), "{err}");
        let mut other = s.clone();
        other.header.format = FORMAT + 1;
        let err = Snapshot::from_bytes(&other.to_bytes()).unwrap_err();
        assert!(err.to_string().contains("format"), "{err}");
    }

    #[test]
    fn an_older_formats_header_is_refused_by_its_format() {
        // Format 3 had no `ranks` and `rank`: its header reads, and is refused as format 3.
        let mut header = ciborium::Value::serialized(&snapshot().header).unwrap();
        let ciborium::Value::Map(fields) = &mut header else {
            panic!("a header is a map");
        };
        fields.retain(|(k, _)| !matches!(k.as_text(), Some("ranks" | "rank")));
        for (k, v) in fields.iter_mut() {
            if k.as_text() == Some("format") {
                *v = ciborium::Value::Integer(3.into());
            }
        }
        let mut encoded = Vec::new();
        ciborium::into_writer(&header, &mut encoded).unwrap();
        let mut bytes = MAGIC.to_vec();
        put_block(&mut bytes, &encoded);
        bytes.extend_from_slice(&0u64.to_le_bytes());
        let sum = blake3::hash(&bytes);
        bytes.extend_from_slice(sum.as_bytes());
        let err = Snapshot::from_bytes(&bytes).unwrap_err().to_string();
        assert!(err.contains("a checkpoint of format 3"), "{err}");
    }

    #[test]
    fn state_floats_read_back_bit_for_bit() {
        let mut st = State::default();
        let xs = vec![0.1f64, f64::MIN_POSITIVE, 1.0 / 3.0, -0.0, f64::MAX];
        st.put("xs", &xs).unwrap();
        st.put("f", &0.7f32).unwrap();
        let back = State::from_bytes(&st.to_bytes()).unwrap();
        let ys: Vec<f64> = back.get("xs").unwrap();
        assert!(xs.iter().zip(&ys).all(|(a, b)| a.to_bits() == b.to_bits()));
        assert_eq!(back.get::<f32>("f").unwrap().to_bits(), 0.7f32.to_bits());
        assert!(back.get::<f32>("g").is_err());
    }
}
