//! Where an output folder goes, and whose it is: the rules that keep a run from replacing
//! anything a user wrote, from colliding with another run, or from leaving a broken folder
//! behind when it dies.
//!
//! - **Ownership.** A folder is Bazaar's to replace only when its `manifest.json` carries the
//!   [`FORMAT`] marker and the folder holds exactly the files the manifest lists, at the
//!   sizes it lists ([`ownership`]). Anything else is refused and left untouched.
//! - **Locking.** A run holds an advisory lock on `.NAME.lock` beside the target from before
//!   it checks the target until the folder is in place ([`Lock`]); a second run on the same
//!   target is refused at once.
//! - **Replacement** is one step: the finished temporary folder and the old output are
//!   swapped with `renameat2(RENAME_EXCHANGE)` on Linux, then the old one (now under the
//!   temporary name) is deleted. Where the exchange is not available (another system, or a
//!   file system that refuses it) the old output is first renamed to `.NAME.old-PID` and the
//!   new one renamed into place ([`replace`]).
//! - **Recovery.** Under the lock, whatever a dead run left beside the target is cleared by
//!   the next run ([`recover`]): a temporary folder `.NAME.tmp-PID` (unfinished, or an old
//!   output swapped out but not yet deleted) is removed, unless it holds a checkpoint to
//!   resume from; an old output `.NAME.old-PID` is
//!   put back when the fallback died between its two renames. A crash at any point so leaves
//!   either the old output or the new one in place.
//! - **Symlinks.** A symlinked target is written through: the folder it points to is the one
//!   checked and replaced, the link itself is never touched ([`resolve`]).

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{FORMAT, FORMAT_VERSION, MANIFEST, Manifest, OutputError, PARTIAL_MARKER, io_at};

/// The folder a target lives in (`.` for a bare name).
pub fn parent_of(target: &Path) -> PathBuf {
    target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf()
}

/// `.NAME.` for a target `…/NAME`: the start of every name Bazaar keeps beside it (kept as
/// the OS's bytes, so two names that differ only in bytes that are not UTF-8 stay apart).
fn prefix(target: &Path) -> OsString {
    let mut p = OsString::from(".");
    p.push(target.file_name().unwrap_or(OsStr::new("out")));
    p.push(".");
    p
}

/// `.NAME.KIND-PID` beside the target: the temporary (`tmp`), swapped-out (`old`) or
/// being-deleted (`del`) folder of process `pid`.
pub fn sibling(target: &Path, kind: &str, pid: u32) -> PathBuf {
    let mut name = prefix(target);
    name.push(format!("{kind}-{pid}"));
    parent_of(target).join(name)
}

/// `.NAME.KIND-N` beside the target with a number no folder has: this process's PID, or,
/// where a folder kept for its checkpoint has that name (an earlier process had the PID),
/// the next free number after it. Call with the target's [`Lock`] held.
pub fn free_sibling(target: &Path, kind: &str) -> PathBuf {
    let pid = std::process::id();
    (0..u32::MAX)
        .map(|k| sibling(target, kind, pid.wrapping_add(k)))
        .find(|p| fs::symlink_metadata(p).is_err())
        .unwrap_or_else(|| sibling(target, kind, pid))
}

/// Deletes a folder of Bazaar's beside `target` by first renaming it `.NAME.del-PID`, so a
/// deletion cut short (a second Ctrl-C, a kill) leaves a name the next run recognises and
/// finishes, never a half-emptied folder under a name it must leave alone.
pub fn discard(dir: &Path, target: &Path) -> io::Result<()> {
    let doomed = sibling(target, "del", std::process::id());
    if fs::symlink_metadata(&doomed).is_ok() {
        fs::remove_dir_all(&doomed)?;
    }
    fs::rename(dir, &doomed)?;
    fs::remove_dir_all(&doomed)
}

/// Resolves the target a run writes: a symlink is followed to the folder it names (which
/// is then the folder replaced, the link staying as it is); a dangling link is refused.
pub fn resolve(target: &Path) -> Result<PathBuf, OutputError> {
    // `out/` and `out/.` are `out`: renames need the folder's own name.
    let normal: PathBuf = target.components().collect();
    if normal.file_name().is_none() {
        return Err(OutputError::foreign(
            target,
            "it names no folder of its own (`.`, `..` or a root)",
        ));
    }
    let Ok(meta) = fs::symlink_metadata(&normal) else {
        return Ok(normal);
    };
    if !meta.file_type().is_symlink() {
        return Ok(normal);
    }
    let real = match fs::canonicalize(&normal) {
        Ok(real) => real,
        // A link to a folder not there (yet, or any more: a run that died between the
        // fallback's two renames) leads to where that folder is to be.
        Err(_) => {
            let to = fs::read_link(&normal).map_err(io_at(&normal))?;
            let to: PathBuf = parent_of(&normal).join(to).components().collect();
            if fs::symlink_metadata(&to).is_ok_and(|m| m.file_type().is_symlink())
                || to.file_name().is_none()
            {
                return Err(OutputError::foreign(
                    target,
                    "it is a symbolic link to a link that leads nowhere",
                ));
            }
            to
        }
    };
    tracing::warn!(
        "`{}` is a symbolic link: writing through it to `{}`",
        target.display(),
        real.display()
    );
    Ok(real)
}

/// An advisory lock on a target, held for a run's whole life and released when dropped
/// (also when the process dies). The lock file `.NAME.lock` stays beside the target:
/// removing it would let two runs lock two different files.
#[derive(Debug)]
pub struct Lock {
    _file: fs::File,
}

impl Lock {
    /// Takes the target's lock, or refuses at once if another run holds it.
    pub fn acquire(target: &Path) -> Result<Self, OutputError> {
        let mut name = prefix(target);
        name.push("lock");
        let path = parent_of(target).join(name);
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_at(&path))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(fs::TryLockError::WouldBlock) => Err(OutputError::Busy(target.to_path_buf())),
            Err(fs::TryLockError::Error(e)) => Err(OutputError::Io { path, source: e }),
        }
    }
}

/// Whether `dir` is a folder Bazaar was writing (its marker) or finished (its manifest).
fn written_by_bazaar(dir: &Path) -> bool {
    dir.join(PARTIAL_MARKER).is_file() || ownership_of(dir).is_ok()
}

/// Clears what dead runs left beside `target`; call with the target's [`Lock`] held, which
/// proves that no live run is using these names (whatever process now has the PID in
/// them). Each action is reported on the log (`warn`), so a user sees what was removed.
pub fn recover(target: &Path) -> Result<(), OutputError> {
    let parent = parent_of(target);
    let prefix = prefix(target);
    let Ok(entries) = fs::read_dir(&parent) else {
        return Ok(());
    };
    let mut found: Vec<(PathBuf, &'static str, u32)> = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name
            .as_encoded_bytes()
            .strip_prefix(prefix.as_encoded_bytes())
        else {
            continue;
        };
        for kind in ["tmp", "old", "del"] {
            if let Some(pid) = rest
                .strip_prefix(kind.as_bytes())
                .and_then(|r| r.strip_prefix(b"-"))
                .and_then(|p| std::str::from_utf8(p).ok())
                .and_then(|p| p.parse::<u32>().ok())
            {
                found.push((entry.path(), kind, pid));
            }
        }
    }
    found.sort();
    for (path, kind, pid) in found {
        if kind == "del" {
            // Only ever made by `discard`, just before deleting.
            fs::remove_dir_all(&path).map_err(io_at(&path))?;
            tracing::warn!(
                "finished deleting `{}`, left half-deleted by process {pid}",
                path.display()
            );
            continue;
        }
        if !written_by_bazaar(&path) {
            tracing::warn!(
                "left `{}` alone: it is named like a Bazaar temporary folder but does not hold one",
                path.display()
            );
            continue;
        }
        if kind == "tmp" && path.join(super::CHECKPOINT).is_file() {
            tracing::warn!(
                "kept `{}`, left by process {pid}: it holds a checkpoint (`bazaar resume {}` goes on from it; remove the folder to drop it)",
                path.display(),
                path.join(super::CHECKPOINT).display()
            );
            continue;
        }
        if kind == "old" && fs::symlink_metadata(target).is_err() {
            fs::rename(&path, target).map_err(io_at(target))?;
            tracing::warn!(
                "restored `{}` from `{}`, left by process {pid} while it replaced the folder",
                target.display(),
                path.display()
            );
        } else {
            discard(&path, target).map_err(io_at(&path))?;
            tracing::warn!(
                "removed `{}`, left by process {pid}, which is gone",
                path.display()
            );
        }
    }
    Ok(())
}

/// Refuses a target that is not Bazaar's to replace: it may be missing, an empty folder, or
/// a Bazaar output folder ([`ownership_of`]); anything else is a user's.
pub fn ownership(target: &Path) -> Result<(), OutputError> {
    let Ok(meta) = fs::symlink_metadata(target) else {
        return Ok(());
    };
    if meta.is_dir()
        && fs::read_dir(target)
            .map_err(io_at(target))?
            .next()
            .is_none()
    {
        return Ok(());
    }
    ownership_of(target).map_err(|reason| OutputError::foreign(target, reason))
}

/// Whether `dir`'s manifest marks it as a Bazaar output folder (whatever has become of its
/// files since): enough for `bazaar report`, which writes only the report's own files.
pub fn marked(dir: &Path) -> Result<(), String> {
    marked_manifest(dir).map(drop)
}

/// `dir`'s manifest, if it marks the folder as a Bazaar output of a layout this Bazaar
/// knows.
fn marked_manifest(dir: &Path) -> Result<Manifest, String> {
    let manifest = Manifest::read(dir)?;
    if manifest.format != FORMAT {
        return Err(format!(
            "its {MANIFEST} does not mark it as a Bazaar output (no \"format\": \"{FORMAT}\"; \
             an output of an older Bazaar can be deleted by hand)"
        ));
    }
    if manifest.format_version > FORMAT_VERSION {
        return Err(format!(
            "it was written by a newer Bazaar (format version {})",
            manifest.format_version
        ));
    }
    Ok(manifest)
}

/// Why `dir` is not a Bazaar output folder, or `Ok` if it is: its manifest carries the
/// format marker, and the folder holds exactly the files listed, at their listed sizes (an
/// edited or added file is the user's). Hashes are not read here (`bazaar check` does).
pub fn ownership_of(dir: &Path) -> Result<(), String> {
    let meta = fs::symlink_metadata(dir).map_err(|e| e.to_string())?;
    if meta.file_type().is_symlink() {
        return Err("it is a symbolic link".into());
    }
    if !meta.is_dir() {
        return Err("it is not a folder".into());
    }
    if !dir.join(MANIFEST).is_file() {
        return Err(format!("it holds no {MANIFEST}"));
    }
    let manifest = marked_manifest(dir)?;
    let listed: HashMap<&str, u64> = manifest
        .files
        .iter()
        .map(|f| (f.name.as_str(), f.bytes))
        .collect();
    let mut seen = 0usize;
    walk(dir, "", &mut |name, meta| {
        if name == MANIFEST {
            return Ok(());
        }
        match listed.get(name) {
            None => Err(format!(
                "`{name}` is not one of the files Bazaar wrote there"
            )),
            Some(&bytes) if meta.is_file() && meta.len() == bytes => {
                seen += 1;
                Ok(())
            }
            Some(_) => Err(format!("`{name}` has changed since Bazaar wrote it")),
        }
    })?;
    if seen != listed.len() {
        let missing = manifest
            .files
            .iter()
            .find(|f| !dir.join(&f.name).is_file())
            .map_or("a listed file", |f| f.name.as_str());
        return Err(format!("`{missing}`, listed in its {MANIFEST}, is missing"));
    }
    Ok(())
}

/// Calls `visit` with every non-folder entry below `dir` (names `/`-separated, relative to
/// the root), stopping at the first error. Symbolic links are not followed.
fn walk(
    dir: &Path,
    prefix: &str,
    visit: &mut dyn FnMut(&str, &fs::Metadata) -> Result<(), String>,
) -> Result<(), String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("cannot list `{}`: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| e.to_string())?;
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        let meta = entry.metadata().map_err(|e| e.to_string())?;
        if meta.is_dir() {
            walk(&entry.path(), &format!("{name}/"), visit)?;
        } else {
            visit(&name, &meta)?;
        }
    }
    Ok(())
}

/// Moves the finished folder `tmp` to `target` in one step, replacing an earlier output
/// there (checked by the caller with [`ownership`]), and syncs the parent folder.
pub fn replace(tmp: &Path, target: &Path) -> Result<(), OutputError> {
    if fs::symlink_metadata(target).is_err() {
        fs::rename(tmp, target).map_err(io_at(target))?;
    } else if exchange(tmp, target).map_err(io_at(target))? {
        // `tmp` now holds the old output; a crash before it is gone leaves it for the next
        // run to remove. Checked once more: a file a user put there since the check before
        // the swap is not deleted with it.
        if let Err(reason) = ownership_of(tmp) {
            tracing::warn!(
                "the previous output, moved to `{}`, was kept: {reason}",
                tmp.display()
            );
        } else if let Err(e) = discard(tmp, target) {
            tracing::warn!(
                "the previous output, moved to `{}`, could not be removed ({e}); the next run will",
                tmp.display()
            );
        }
    } else {
        let old = sibling(target, "old", std::process::id());
        fs::rename(target, &old).map_err(io_at(target))?;
        if let Err(e) = fs::rename(tmp, target) {
            let _ = fs::rename(&old, target);
            return Err(OutputError::Io {
                path: target.to_path_buf(),
                source: e,
            });
        }
        discard(&old, target).map_err(io_at(&old))?;
    }
    super::sync_dir(&parent_of(target))
}

/// Swaps two paths atomically; `Ok(false)` where the system or file system cannot.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> io::Result<bool> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    use rustix::io::Errno;
    match renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE) {
        Ok(()) => Ok(true),
        Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Swaps two paths atomically; `Ok(false)` where the system or file system cannot.
#[cfg(not(target_os = "linux"))]
fn exchange(_a: &Path, _b: &Path) -> io::Result<bool> {
    Ok(false)
}

/// What `bazaar check` found comparing a folder with its manifest.
#[derive(Debug, Clone, Default)]
pub struct ManifestCheck {
    /// Files listed.
    pub files: usize,
    /// Bytes read and hashed.
    pub bytes: u64,
    /// Every mismatch: a file missing, extra, of another size or another hash.
    pub problems: Vec<String>,
}

/// Checks a folder against its manifest: the marker, every listed file's size and BLAKE3
/// hash, and no file missing or extra. `Err` when there is no readable manifest at all.
pub fn verify(dir: &Path) -> Result<ManifestCheck, String> {
    use rayon::prelude::*;
    let manifest = Manifest::read(dir)?;
    let mut check = ManifestCheck {
        files: manifest.files.len(),
        ..ManifestCheck::default()
    };
    if manifest.format != FORMAT {
        check
            .problems
            .push(format!("{MANIFEST} has no \"format\": \"{FORMAT}\" marker"));
    }
    let listed: HashMap<&str, u64> = manifest
        .files
        .iter()
        .map(|f| (f.name.as_str(), f.bytes))
        .collect();
    if listed.len() != manifest.files.len() {
        check
            .problems
            .push(format!("{MANIFEST} lists a file twice"));
    }
    let mut extra = Vec::new();
    walk(dir, "", &mut |name, _| {
        if name != MANIFEST && !listed.contains_key(name) {
            extra.push(format!("`{name}` is not listed in {MANIFEST}"));
        }
        Ok(())
    })?;
    let results: Vec<Result<u64, String>> = manifest
        .files
        .par_iter()
        .map(|f| {
            let path = dir.join(&f.name);
            if f.name.split('/').any(|c| c == ".." || c.is_empty()) {
                return Err(format!("`{}` is not a name inside the folder", f.name));
            }
            // A pipe or device in a file's place could block the open or never end.
            if !fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
                return Err(format!("`{}` is missing or not a regular file", f.name));
            }
            let file = fs::File::open(&path).map_err(|e| format!("`{}`: {e}", f.name))?;
            let n = file
                .metadata()
                .map_err(|e| format!("`{}`: {e}", f.name))?
                .len();
            if n != f.bytes {
                return Err(format!(
                    "`{}` is {n} bytes, the manifest says {}",
                    f.name, f.bytes
                ));
            }
            let mut hasher = blake3::Hasher::new();
            hasher
                .update_reader(file)
                .map_err(|e| format!("`{}`: {e}", f.name))?;
            let hash = hasher.finalize().to_hex();
            if hash.as_str() != f.blake3 {
                return Err(format!(
                    "`{}` does not match its BLAKE3 hash in the manifest (changed or damaged)",
                    f.name
                ));
            }
            Ok(n)
        })
        .collect();
    for r in results {
        match r {
            Ok(n) => check.bytes += n,
            Err(p) => check.problems.push(p),
        }
    }
    check.problems.extend(extra);
    Ok(check)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_folder_with_this_pid_is_passed_over() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        let mine = sibling(&target, "tmp", std::process::id());
        assert_eq!(free_sibling(&target, "tmp"), mine);
        fs::create_dir(&mine).unwrap();
        let next = free_sibling(&target, "tmp");
        assert_ne!(next, mine);
        assert!(next.to_string_lossy().contains(".out.tmp-"));
    }

    #[test]
    fn siblings_are_named_after_the_target() {
        let t = Path::new("out/diwali");
        assert_eq!(sibling(t, "tmp", 7), Path::new("out/.diwali.tmp-7"));
        assert_eq!(sibling(Path::new("x"), "old", 1), Path::new("./.x.old-1"));
    }
}
