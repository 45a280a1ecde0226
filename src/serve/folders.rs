//! The output folders a server was given: each under a short id, opened only through its
//! manifest, so a request names a folder and a table or file the manifest lists, never a path.

use std::path::{Path, PathBuf};

use crate::money::Currency;
use crate::output::Manifest;
use crate::output::schema::{self, Declared, Kind, Null};

/// A table of a folder: its name, the file it is read from and its columns.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableFile {
    /// The table's name in SQL (the file's stem).
    pub name: String,
    /// The file, relative to the folder.
    pub file: String,
    /// Rows, as the manifest says.
    pub rows: u64,
    /// Columns: name, kind, nullability.
    pub columns: Vec<(String, Kind, Null)>,
    /// Declared by a behaviour (`tables.json`) rather than built in.
    pub plugin: bool,
}

/// One folder the server serves.
#[derive(Debug, Clone)]
pub struct Folder {
    /// The id in URLs: the folder's name, made unique.
    pub id: String,
    /// The folder as given on the command line (for messages).
    pub given: PathBuf,
    /// The folder, canonical.
    pub root: PathBuf,
}

/// What a folder holds right now.
#[derive(Debug, Clone)]
pub enum Contents {
    /// A finished Bazaar output folder.
    Output(Box<Output>),
    /// Not (yet) one: why, for the page.
    Unavailable(String),
}

/// A finished output folder's manifest and tables.
#[derive(Debug, Clone)]
pub struct Output {
    /// The manifest.
    pub manifest: Manifest,
    /// Its tables, Parquet where written, else CSV.
    pub tables: Vec<TableFile>,
    /// The currency of its amounts.
    pub currency: Currency,
}

impl Output {
    /// The table named `name`.
    pub fn table(&self, name: &str) -> Option<&TableFile> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// Whether the manifest lists `name` (a file of the folder, `/`-separated below it).
    pub fn lists(&self, name: &str) -> bool {
        self.manifest.files.iter().any(|f| f.name == name)
    }
}

impl Folder {
    /// Reads what the folder holds now: a folder without a manifest is a run still going, a
    /// folder left by one that stopped, or not a Bazaar folder at all, and says which.
    pub fn contents(&self) -> Contents {
        match Manifest::read(&self.root) {
            Ok(m) if m.format == crate::output::FORMAT => {
                Contents::Output(Box::new(output(&self.root, m)))
            }
            Ok(_) => Contents::Unavailable(format!(
                "{} has a manifest.json that Bazaar did not write",
                self.given.display()
            )),
            Err(e) => Contents::Unavailable(self.without_manifest(&e)),
        }
    }

    fn without_manifest(&self, error: &str) -> String {
        let partial = self.root.join(crate::output::PARTIAL_MARKER).exists();
        let is_empty = std::fs::read_dir(&self.root).is_ok_and(|mut d| d.next().is_none());
        let given = self.given.display();
        if partial {
            format!(
                "{given} is still being written (a run is going on, or one stopped before \
                 finishing it): it is shown once its manifest is written"
            )
        } else if is_empty {
            format!("{given} is empty: a run writing there shows here once it finishes")
        } else if self.root.join("experiment.json").is_file() {
            format!(
                "{given} is an experiment's folder without a manifest, from an older Bazaar: \
                 run its `bazaar ab` again to open it here"
            )
        } else {
            format!(
                "{given} is not a finished Bazaar output folder ({error}): give a folder \
                 `bazaar run` wrote"
            )
        }
    }
}

/// The tables of a folder: the files its manifest lists that are tables, their columns
/// from the built-in declarations, the rollups' and `tables.json`.
fn output(root: &Path, manifest: Manifest) -> Output {
    let declared: Vec<Declared> = std::fs::read(root.join(schema::DECLARED_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let currency = std::fs::read(root.join("summary.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| serde_json::from_value(v.get("currency")?.clone()).ok())
        .unwrap_or_default();
    let mut known: Vec<(Declared, bool)> = schema::builtin()
        .iter()
        .chain(&[
            crate::analytics::rollup::sales_table(),
            crate::analytics::rollup::basket_values_table(),
        ])
        .map(|t| (t.declared(), false))
        .collect();
    for d in declared {
        match known.iter_mut().find(|(k, _)| k.stem == d.stem) {
            // daily_metrics with behaviours' columns.
            Some(k) => k.0 = d,
            None => known.push((d, true)),
        }
    }
    let mut tables = Vec::new();
    for (d, plugin) in known {
        let file = ["parquet", "csv"]
            .iter()
            .map(|ext| format!("{}.{ext}", d.stem))
            .find_map(|name| manifest.files.iter().find(|f| f.name == name));
        if let Some(f) = file {
            tables.push(TableFile {
                name: d.stem.clone(),
                file: f.name.clone(),
                rows: f.rows,
                columns: d.columns,
                plugin,
            });
        }
    }
    Output {
        manifest,
        tables,
        currency,
    }
}

/// A folder name as an id: only the characters a URL path keeps as they are.
fn open_id(name: &str) -> String {
    let base: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if base.is_empty() || base.starts_with('.') {
        format!("run{base}")
    } else {
        base
    }
}

/// Ids for folders: each folder's name, with `-2`, `-3` after a name already taken, and
/// only the characters a URL path keeps as they are.
pub fn open(given: &[PathBuf]) -> Result<Vec<Folder>, String> {
    let mut folders: Vec<Folder> = Vec::new();
    for g in given {
        let root = g.canonicalize().map_err(|e| {
            format!(
                "cannot serve {}: {e}\n  hint: give output folders `bazaar run` wrote (its --out)",
                g.display()
            )
        })?;
        if !root.is_dir() {
            return Err(format!(
                "cannot serve {}: it is not a folder\n  hint: give output folders `bazaar run` wrote (its --out)",
                g.display()
            ));
        }
        let base = open_id(
            &root
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        let mut id = base.clone();
        let mut n = 1;
        while folders.iter().any(|f| f.id == id) {
            n += 1;
            id = format!("{base}-{n}");
        }
        folders.push(Folder {
            id,
            given: g.clone(),
            root,
        });
    }
    Ok(folders)
}

/// The folder a live run is writing (`run --serve`): it need not exist yet, as a run puts
/// it in place only at its end.
pub fn open_live(out: &Path) -> Result<Folder, String> {
    let absolute =
        std::path::absolute(out).map_err(|e| format!("cannot serve {}: {e}", out.display()))?;
    let (Some(parent), Some(name)) = (absolute.parent(), absolute.file_name()) else {
        return Err(format!(
            "cannot serve {}: it names no folder",
            out.display()
        ));
    };
    let parent = parent
        .canonicalize()
        .map_err(|e| format!("cannot serve {}: {e}", out.display()))?;
    let mut folder = open(std::slice::from_ref(&parent))?.remove(0);
    folder.root = parent.join(name);
    folder.given = out.to_path_buf();
    folder.id = open_id(&name.to_string_lossy());
    Ok(folder)
}

/// The path of a file the manifest lists, checked to lie inside the folder once every link
/// is followed; `None` for anything else.
pub fn file_inside(folder: &Folder, output: &Output, name: &str) -> Option<PathBuf> {
    if !output.lists(name)
        || name
            .split('/')
            .any(|part| part.is_empty() || part == ".." || part == ".")
    {
        return None;
    }
    let path = folder.root.join(name).canonicalize().ok()?;
    (path.starts_with(&folder.root) && path.is_file()).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_url_safe() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a b");
        let b = dir.path().join("x").join("a b");
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let folders = open(&[a, b]).unwrap();
        assert_eq!(folders[0].id, "a-b");
        assert_eq!(folders[1].id, "a-b-2");
        assert!(open(&[dir.path().join("missing")]).is_err());
    }

    #[test]
    fn only_listed_files_inside_the_folder_are_served() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("run");
        std::fs::create_dir_all(root.join("charts")).unwrap();
        std::fs::write(root.join("report.html"), "r").unwrap();
        std::fs::write(root.join("charts/a.svg"), "s").unwrap();
        std::fs::write(dir.path().join("secret"), "s").unwrap();
        std::fs::write(root.join("unlisted.txt"), "u").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("link")).unwrap();
        let folder = open(std::slice::from_ref(&root)).unwrap().remove(0);
        let entry = |name: &str| crate::output::FileEntry {
            name: name.into(),
            rows: 0,
            bytes: 1,
            blake3: String::new(),
        };
        let output = Output {
            manifest: Manifest {
                format: crate::output::FORMAT.into(),
                format_version: 1,
                bazaar_version: String::new(),
                scenario: "s".into(),
                seed: 1,
                files: [
                    "report.html",
                    "charts/a.svg",
                    "link",
                    "../secret",
                    "charts/../report.html",
                ]
                .map(entry)
                .to_vec(),
            },
            tables: Vec::new(),
            currency: Currency::default(),
        };
        assert!(file_inside(&folder, &output, "report.html").is_some());
        assert!(file_inside(&folder, &output, "charts/a.svg").is_some());
        for refused in [
            "unlisted.txt",
            "../secret",
            "charts/../report.html",
            "/etc/passwd",
            "link",
            "",
        ] {
            assert!(
                file_inside(&folder, &output, refused).is_none(),
                "{refused}"
            );
        }
    }

    #[test]
    fn a_folder_without_a_manifest_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let folder = open(&[dir.path().to_path_buf()]).unwrap().remove(0);
        let Contents::Unavailable(why) = folder.contents() else {
            panic!("an empty folder is not an output")
        };
        assert!(why.contains("is empty"), "{why}");
        std::fs::write(dir.path().join(crate::output::PARTIAL_MARKER), "").unwrap();
        let Contents::Unavailable(why) = folder.contents() else {
            panic!("a partial folder is not an output")
        };
        assert!(why.contains("still being written"), "{why}");
        std::fs::remove_file(dir.path().join(crate::output::PARTIAL_MARKER)).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        let Contents::Unavailable(why) = folder.contents() else {
            panic!("a foreign folder is not an output")
        };
        assert!(why.contains("not a finished Bazaar output folder"), "{why}");
    }
}
