//! Finding and loading the ONNX Runtime library.
//!
//! Bazaar loads ONNX Runtime dynamically (the `ort` crate's `load-dynamic`), so nothing is
//! downloaded at build time. At run time the library is taken from, in order: the `--ort-lib`
//! flag, the `ORT_DYLIB_PATH` environment variable, Bazaar's cache, and — when none has it —
//! the `onnxruntime` wheel on PyPI, fetched once with pip into the cache (the wheel carries
//! the plain shared library; no Python is needed to use it afterwards).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use thiserror::Error;

/// The ONNX Runtime release Bazaar fetches when none is given.
pub const ORT_VERSION: &str = "1.32.0";

/// Why ONNX Runtime could not be made ready.
#[derive(Debug, Error, Clone)]
pub enum RuntimeError {
    /// A library path was given but does not load.
    #[error(
        "cannot load ONNX Runtime from `{path}` (given by {source_name}): {reason}\n  hint: point it at libonnxruntime.so.* of ONNX Runtime 1.22 or later"
    )]
    BadLibrary {
        /// The path.
        path: PathBuf,
        /// Where the path came from.
        source_name: String,
        /// The loader's message.
        reason: String,
    },
    /// Nothing given, nothing cached, and fetching failed.
    #[error(
        "ONNX Runtime is needed for churn scoring and could not be fetched: {reason}\n  hint: either `pip download --no-deps --only-binary=:all: onnxruntime=={ORT_VERSION}` and set ORT_DYLIB_PATH to the libonnxruntime.so.* inside the wheel's onnxruntime/capi/, or pass --ort-lib PATH"
    )]
    Fetch {
        /// What went wrong.
        reason: String,
    },
}

/// Bazaar's cache folder: `$BAZAAR_CACHE_DIR`, else `$XDG_CACHE_HOME/bazaar`, else
/// `~/.cache/bazaar`.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("BAZAAR_CACHE_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("bazaar");
    }
    std::env::var_os("HOME")
        .map_or_else(std::env::temp_dir, PathBuf::from)
        .join(".cache")
        .join("bazaar")
}

/// Where the fetched library is kept.
pub fn cached_library() -> PathBuf {
    cache_dir()
        .join(format!("onnxruntime-{ORT_VERSION}"))
        .join(library_file_name())
}

fn library_file_name() -> String {
    if cfg!(target_os = "windows") {
        "onnxruntime.dll".to_owned()
    } else if cfg!(target_os = "macos") {
        format!("libonnxruntime.{ORT_VERSION}.dylib")
    } else {
        format!("libonnxruntime.so.{ORT_VERSION}")
    }
}

/// Finds the library: flag, environment, cache, or a fresh fetch.
pub fn locate(flag: Option<&Path>) -> Result<(PathBuf, String), RuntimeError> {
    if let Some(p) = flag {
        return Ok((p.to_path_buf(), "--ort-lib".to_owned()));
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        return Ok((PathBuf::from(p), "ORT_DYLIB_PATH".to_owned()));
    }
    let cached = cached_library();
    if cached.is_file() {
        return Ok((cached, "Bazaar's cache".to_owned()));
    }
    fetch(&cached)?;
    Ok((cached, "Bazaar's cache".to_owned()))
}

/// Downloads the `onnxruntime` wheel with pip and extracts its shared library to `target`
/// (via a temporary name, so an interrupted fetch never leaves a broken library).
fn fetch(target: &Path) -> Result<(), RuntimeError> {
    let fail = |reason: String| RuntimeError::Fetch { reason };
    let dir = target.parent().unwrap_or(Path::new("."));
    eprintln!(
        "bazaar: ONNX Runtime {ORT_VERSION} is needed for churn scoring; fetching it once from PyPI with pip into {} ...",
        dir.display()
    );
    std::fs::create_dir_all(dir)
        .map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
    let download = dir.join(format!(".download-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&download);
    let python = std::env::var("BAZAAR_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let status = Command::new(&python)
        .args([
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
        ])
        .arg(format!("onnxruntime=={ORT_VERSION}"))
        .arg("-d")
        .arg(&download)
        .status()
        .map_err(|e| fail(format!("cannot run `{python} -m pip`: {e}")))?;
    if !status.success() {
        let _ = std::fs::remove_dir_all(&download);
        return Err(fail(format!(
            "`{python} -m pip download onnxruntime=={ORT_VERSION}` failed ({status})"
        )));
    }
    // Each process extracts to its own name: several processes (a test binary's threads run
    // many runs at once) may fetch together on a fresh machine, and a shared temporary name
    // let one truncate the file another was about to rename into place.
    let partial = dir.join(format!(".partial-{}", std::process::id()));
    let script = r#"
import sys, zipfile, glob, shutil
wheels = glob.glob(sys.argv[1] + "/onnxruntime-*.whl")
if not wheels:
    sys.exit("no onnxruntime wheel was downloaded")
with zipfile.ZipFile(wheels[0]) as z:
    names = [n for n in z.namelist() if "/capi/" in n and "providers" not in n
             and (n.split("/")[-1].startswith("libonnxruntime.so") or n.endswith("onnxruntime.dll")
                  or (n.split("/")[-1].startswith("libonnxruntime") and n.endswith(".dylib")))]
    if not names:
        sys.exit("the wheel holds no ONNX Runtime library")
    with z.open(sorted(names, key=len)[-1]) as src, open(sys.argv[2], "wb") as dst:
        shutil.copyfileobj(src, dst)
"#;
    let status = Command::new(&python)
        .args(["-c", script])
        .arg(&download)
        .arg(&partial)
        .status()
        .map_err(|e| fail(format!("cannot run {python}: {e}")))?;
    let _ = std::fs::remove_dir_all(&download);
    if !status.success() {
        let _ = std::fs::remove_file(&partial);
        return Err(fail(
            "extracting the library from the wheel failed".to_owned(),
        ));
    }
    std::fs::rename(&partial, target).map_err(|e| {
        let _ = std::fs::remove_file(&partial);
        fail(format!("cannot place the library: {e}"))
    })?;
    eprintln!("bazaar: ONNX Runtime ready at {}", target.display());
    Ok(())
}

static ENVIRONMENT: OnceLock<Result<ort::environment::Environment, RuntimeError>> = OnceLock::new();

/// Loads ONNX Runtime once per process and returns its environment.
pub fn environment(flag: Option<&Path>) -> Result<ort::environment::Environment, RuntimeError> {
    ENVIRONMENT
        .get_or_init(|| {
            let (path, source_name) = locate(flag)?;
            let bad = |reason: String| RuntimeError::BadLibrary {
                path: path.clone(),
                source_name: source_name.clone(),
                reason,
            };
            if !path.is_file() {
                return Err(bad("no such file".to_owned()));
            }
            ort::init_from(&path)
                .map_err(|e| bad(format!("{e:?}")))?
                .with_name("bazaar")
                .build()
                .map_err(|e| bad(e.to_string()))
        })
        .clone()
}
