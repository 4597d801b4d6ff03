//! `node load-profiles`: on a node, make the kernel's profiles match a folder of profile texts
//! (the projected profile ConfigMaps). Each file is one profile, named by its file name; a new
//! one is loaded, a changed one replaced, one that disappeared unloaded. What was loaded is
//! kept in a state folder (the exact text), which is how a later run knows what to replace and
//! what to unload. I/O: reads the folders and runs `apparmor_parser`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::names::profile_hash8;
use crate::apparmor::{Parser, ParserError};
use crate::launch::host::{self, LoadError};

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{file}: the profile names in it are {names:?}; it must hold exactly the profile {expected} (and its children)"
    )]
    ForeignProfiles {
        file: PathBuf,
        expected: String,
        names: Vec<String>,
    },
    #[error("{0}: not a profile name")]
    BadName(String),
    #[error(transparent)]
    Parser(#[from] ParserError),
    #[error("{name}: {source}")]
    Load {
        name: String,
        #[source]
        source: LoadError,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> NodeError + '_ {
    move |source| NodeError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Where the profiles go.
pub trait Apply {
    /// Load or replace the profile in `file`.
    fn load(&mut self, name: &str, file: &Path) -> Result<(), NodeError>;
    /// Unload the profile in `file` (the text that was loaded).
    fn unload(&mut self, name: &str, file: &Path) -> Result<(), NodeError>;
}

/// The running kernel, through `apparmor_parser --replace` / `--remove` (with a cache).
pub struct Kernel {
    pub cache: PathBuf,
}

impl Apply for Kernel {
    fn load(&mut self, name: &str, file: &Path) -> Result<(), NodeError> {
        host::load_profile(file, &self.cache).map_err(|source| NodeError::Load {
            name: name.to_owned(),
            source,
        })
    }

    fn unload(&mut self, name: &str, file: &Path) -> Result<(), NodeError> {
        host::unload_profile(file).map_err(|source| NodeError::Load {
            name: name.to_owned(),
            source,
        })
    }
}

/// No kernel: each profile compiled by the parser (pinned features) into `<dir>/<name>.bin`,
/// removed on unload. For hosts without AppArmor and for checks.
pub struct CompileTo {
    pub dir: PathBuf,
    pub parser: Parser,
}

impl Apply for CompileTo {
    fn load(&mut self, name: &str, file: &Path) -> Result<(), NodeError> {
        let text = fs::read_to_string(file).map_err(io(file))?;
        let report = self.parser.check(&text)?;
        let out = self.dir.join(format!("{name}.bin"));
        crate::launch::state::write_atomically(&out, &report.binary, 0o644).map_err(io(&out))
    }

    fn unload(&mut self, name: &str, _file: &Path) -> Result<(), NodeError> {
        let out = self.dir.join(format!("{name}.bin"));
        fs::remove_file(&out).map_err(io(&out))
    }
}

/// What one pass did, by profile name.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct SyncReport {
    pub loaded: Vec<String>,
    pub replaced: Vec<String>,
    pub unchanged: Vec<String>,
    pub unloaded: Vec<String>,
    /// Profiles that could not be loaded or unloaded, with why (the others still were).
    pub failed: Vec<(String, String)>,
    /// Every profile loaded after the pass (loaded, replaced, unchanged) → the first 8 hex
    /// digits of its text's SHA-256: what the node's labels say.
    #[serde(skip)]
    pub hash8: BTreeMap<String, String>,
}

/// A profile name as a file name: `[A-Za-z0-9][A-Za-z0-9._-]*`.
fn valid_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// The profile files of a folder: every entry not starting with `.` (a mounted ConfigMap also
/// holds `..data` and its timestamped folder), read through the ConfigMap's links.
fn read_dir_texts(dir: &Path) -> Result<BTreeMap<String, String>, NodeError> {
    let mut out = BTreeMap::new();
    if !dir.exists() {
        return Ok(out);
    }
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        if !fs::metadata(&path).map_err(io(&path))?.is_file() {
            continue;
        }
        if !valid_name(&name) {
            return Err(NodeError::BadName(name));
        }
        out.insert(name, fs::read_to_string(&path).map_err(io(&path))?);
    }
    Ok(out)
}

/// The parser's own reading: the file holds `name` and only its children.
fn only_profile(parser: &Parser, file: &Path, name: &str, text: &str) -> Result<(), NodeError> {
    let names = parser.names(text)?;
    let child = format!("{name}//");
    if names.iter().any(|n| n == name) && names.iter().all(|n| n == name || n.starts_with(&child)) {
        return Ok(());
    }
    Err(NodeError::ForeignProfiles {
        file: file.to_owned(),
        expected: name.to_owned(),
        names,
    })
}

/// One pass: `dir` (wanted) against `state` (loaded). Profiles `force` names are loaded again
/// even when unchanged: all of them on the first pass after a start (a rebooted node's kernel
/// has none), later the ones that failed (the state still holding their text says nothing
/// about the kernel then).
pub fn sync(
    dir: &Path,
    state: &Path,
    parser: &Parser,
    apply: &mut dyn Apply,
    force: &dyn Fn(&str) -> bool,
) -> Result<SyncReport, NodeError> {
    fs::create_dir_all(state).map_err(io(state))?;
    let wanted = read_dir_texts(dir)?;
    let loaded = read_dir_texts(state)?;
    let mut report = SyncReport::default();
    for (name, text) in &wanted {
        let before = loaded.get(name);
        if before == Some(text) && !force(name) {
            report.unchanged.push(name.clone());
            report.hash8.insert(name.clone(), profile_hash8(text));
            continue;
        }
        let file = dir.join(name);
        let done = only_profile(parser, &file, name, text).and_then(|()| apply.load(name, &file));
        match done {
            Ok(()) => {
                let kept = state.join(name);
                crate::launch::state::write_atomically(&kept, text.as_bytes(), 0o600)
                    .map_err(io(&kept))?;
                report.hash8.insert(name.clone(), profile_hash8(text));
                match before {
                    None => report.loaded.push(name.clone()),
                    Some(old) if old == text => report.unchanged.push(name.clone()),
                    Some(_) => report.replaced.push(name.clone()),
                }
            }
            Err(e) => report.failed.push((name.clone(), e.to_string())),
        }
    }
    for name in loaded.keys().filter(|n| !wanted.contains_key(*n)) {
        let kept = state.join(name);
        match apply.unload(name, &kept) {
            Ok(()) => {
                fs::remove_file(&kept).map_err(io(&kept))?;
                report.unloaded.push(name.clone());
            }
            Err(e) => report.failed.push((name.clone(), e.to_string())),
        }
    }
    Ok(report)
}
