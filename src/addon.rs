//! Add-on folders: finding them the way the Supervisor's store does, and reading one.

use std::path::{Path, PathBuf};

use crate::config::{self, AddonConfig};
use crate::diag::{self, Diagnostic, Severity, Sink};
use crate::source::{self, Format, Node, SourceText};

const CONFIG_NAMES: [&str; 3] = ["config.yaml", "config.yml", "config.json"];
pub const BUILD_NAMES: [&str; 3] = ["build.yaml", "build.yml", "build.json"];

/// One add-on folder, read and checked.
#[derive(Debug)]
pub struct Addon {
    pub dir: PathBuf,
    /// The config file used (None when the folder has none, or more than one valid one).
    pub config_file: Option<PathBuf>,
    pub config: Option<AddonConfig>,
    pub diagnostics: Vec<Diagnostic>,
    /// The folder ships an `apparmor.txt`.
    pub has_apparmor_txt: bool,
    /// The profile name in `apparmor.txt`, when the file is installable.
    pub apparmor_profile: Option<String>,
    /// The text of `apparmor.txt` as read and checked here, when it is installable and valid
    /// UTF-8: what a launch loads, so the file that was checked is the file that is loaded
    /// (reading it again at launch could load a file changed since, or fail differently).
    pub apparmor_text: Option<String>,
    /// The `slug` as written, when it is a string (reported even for invalid configs).
    pub raw_slug: Option<String>,
    /// What the add-on says of its own signing (the config's `codenotary`, the build file's
    /// `cosign.identity`), read from the trees parsed here: reported, never trusted.
    pub declared: crate::trust::Declared,
    /// The config file's tree (positions of every key, before migration) and text, kept only
    /// by [`load_with_source`] (`lint` points at keys and edits lines).
    pub source: Option<Box<ConfigSource>>,
}

/// A config file as read: the tree with positions, as written, and its text.
#[derive(Debug)]
pub struct ConfigSource {
    pub root: Node,
    pub text: SourceText,
}

impl Addon {
    /// Valid as the Supervisor means it: the config passes and the add-on can be installed.
    pub fn valid(&self) -> bool {
        self.config.is_some()
            && !self
                .diagnostics
                .iter()
                .any(|d| d.severity == Severity::Error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
    }

    /// The config slug when it could be read (even from an invalid config), for reports.
    pub fn slug(&self) -> Option<&str> {
        self.config
            .as_ref()
            .map(|c| c.slug.as_str())
            .or(self.raw_slug.as_deref())
    }
}

/// Read many add-on folders, on every core (see [`crate::parallel`]), in the order given.
pub fn load_all(dirs: &[PathBuf]) -> Vec<Addon> {
    crate::parallel::map(dirs, 0, |dir| load(dir))
}

/// An add-on folder before anything is read.
fn load_empty(dir: &Path) -> Addon {
    Addon {
        dir: dir.to_path_buf(),
        config_file: None,
        config: None,
        diagnostics: Vec::new(),
        has_apparmor_txt: false,
        apparmor_profile: None,
        apparmor_text: None,
        raw_slug: None,
        declared: crate::trust::Declared::default(),
        source: None,
    }
}

/// Read one add-on folder (a folder holding a config file directly).
pub fn load(dir: &Path) -> Addon {
    load_keeping(dir, false)
}

/// [`load`], keeping the config file's tree and text in [`Addon::source`].
pub fn load_with_source(dir: &Path) -> Addon {
    load_keeping(dir, true)
}

/// [`load_all`], keeping each config file's tree and text.
pub fn load_all_with_source(dirs: &[PathBuf]) -> Vec<Addon> {
    crate::parallel::map(dirs, 0, |dir| load_with_source(dir))
}

fn load_keeping(dir: &Path, keep: bool) -> Addon {
    let mut addon = load_empty(dir);
    let listing = Listing::of(dir);
    let configs: Vec<PathBuf> = CONFIG_NAMES
        .iter()
        .zip(listing.configs)
        .filter(|(_, here)| *here)
        .map(|(n, _)| dir.join(n))
        .collect();
    match configs.as_slice() {
        [] => {
            addon.diagnostics.push(diag::whole_file(
                Severity::Error,
                dir,
                "no config.yaml, config.yml or config.json in this folder",
            ));
            return addon;
        }
        [one] => {
            addon.config_file = Some(one.clone());
            read_config(&mut addon, one, keep);
        }
        several => read_several_configs(&mut addon, several, keep),
    }

    if let Some(build_path) = BUILD_NAMES
        .iter()
        .zip(listing.builds)
        .find(|(_, here)| *here)
        .map(|(n, _)| dir.join(n))
    {
        read_build(&mut addon, &build_path);
    }

    if listing.apparmor {
        read_apparmor(&mut addon, dir);
    }
    order_diagnostics(&mut addon.diagnostics);
    addon
}

/// One order for every command and format: file by file in the order they were read (config,
/// build, apparmor.txt), within a file by line and column; equal places keep the order the
/// checks found them in (the sort is stable).
fn order_diagnostics(diagnostics: &mut Vec<Diagnostic>) {
    if diagnostics.len() < 2 {
        return;
    }
    let mut files: Vec<String> = Vec::new();
    let mut keyed: Vec<((usize, u32, u32), Diagnostic)> = std::mem::take(diagnostics)
        .into_iter()
        .map(|d| {
            let file = files.iter().position(|f| *f == d.file).unwrap_or_else(|| {
                files.push(d.file.clone());
                files.len() - 1
            });
            ((file, d.line, d.column), d)
        })
        .collect();
    keyed.sort_by_key(|(key, _)| *key);
    diagnostics.extend(keyed.into_iter().map(|(_, d)| d));
}

/// A folder with more than one config file, as the Supervisor's store reads it: every
/// `config.*` its glob finds is read and validated on its own, an invalid one is skipped with
/// a log line, and each valid one is stored under its slug. So one valid file among invalid
/// ones is the add-on (the others are warned about here). Two valid files are refused: with
/// one slug the Supervisor keeps whichever its directory listing (`Path.glob`, unsorted, the
/// filesystem's order) yields last, and with two slugs it installs two add-ons from one folder.
fn read_several_configs(addon: &mut Addon, paths: &[PathBuf], keep: bool) {
    let read: Vec<Addon> = paths
        .iter()
        .map(|path| {
            let mut one = load_empty(&addon.dir);
            one.config_file = Some(path.clone());
            read_config(&mut one, path, keep);
            one
        })
        .collect();
    let (valid, invalid): (Vec<Addon>, Vec<Addon>) = read.into_iter().partition(Addon::valid);
    let name = |a: &Addon| {
        a.config_file
            .as_deref()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    match <[Addon; 1]>::try_from(valid) {
        Ok([chosen]) => {
            for other in &invalid {
                let why = other.errors().next().map(|d| d.message.clone());
                addon.diagnostics.push(diag::whole_file(
                    Severity::Warning,
                    &addon.dir,
                    format!(
                        "{} is also here but invalid ({}): the Supervisor skips it and installs the add-on from {}",
                        name(other),
                        why.unwrap_or_default(),
                        name(&chosen)
                    ),
                ));
            }
            addon.config_file = chosen.config_file;
            addon.config = chosen.config;
            addon.raw_slug = chosen.raw_slug;
            addon.declared.codenotary = chosen.declared.codenotary;
            addon.source = chosen.source;
            addon.diagnostics.extend(chosen.diagnostics);
        }
        Err(valid) if valid.is_empty() => {
            addon.config_file = invalid.first().and_then(|a| a.config_file.clone());
            addon.raw_slug = invalid.iter().find_map(|a| a.raw_slug.clone());
            addon
                .diagnostics
                .extend(invalid.into_iter().flat_map(|a| a.diagnostics));
        }
        Err(valid) => {
            let names: Vec<String> = valid.iter().map(name).collect();
            let slugs: Vec<&str> = valid.iter().filter_map(Addon::slug).collect();
            addon.raw_slug = slugs.first().map(|s| (*s).to_owned());
            addon.diagnostics.push(diag::whole_file(
                Severity::Error,
                &addon.dir,
                format!(
                    "more than one valid config file ({}, slugs {}): the Supervisor installs each as an add-on, and of equal slugs keeps whichever its directory listing yields last; keep one",
                    names.join(", "),
                    slugs.join(", ")
                ),
            ));
        }
    }
}

/// Parse and validate the config file: the config when valid, the raw slug, the diagnostics.
fn read_config(addon: &mut Addon, config_path: &Path, keep: bool) {
    let format = Format::from_path(config_path).unwrap_or(Format::Yaml);
    match source::load(config_path, format) {
        Ok((root, text)) => {
            let mut sink = Sink::new(config_path, Some(&text));
            addon.raw_slug = root.get("slug").and_then(|s| s.as_str()).map(str::to_owned);
            addon.declared.codenotary = crate::trust::declared::codenotary(&root);
            if keep {
                addon.config = config::validate::validate(&root, &mut sink);
                addon.diagnostics.append(&mut sink.diagnostics);
                drop(sink);
                addon.source = Some(Box::new(ConfigSource { root, text }));
                return;
            }
            addon.config = config::validate::validate_owned(root, &mut sink);
            addon.diagnostics.append(&mut sink.diagnostics);
        }
        Err((err, text)) => {
            let mut sink = Sink::new(config_path, text.as_ref());
            sink.error(err.pos().unwrap_or_default(), err.to_string());
            addon.diagnostics.append(&mut sink.diagnostics);
        }
    }
}

/// Parse and check the build file; one that cannot be read is a warning and is ignored.
fn read_build(addon: &mut Addon, build_path: &Path) {
    let format = Format::from_path(build_path).unwrap_or(Format::Yaml);
    match source::load(build_path, format) {
        Ok((root, text)) => {
            let mut sink = Sink::new(build_path, Some(&text));
            config::build::check(&root, &mut sink);
            addon.diagnostics.append(&mut sink.diagnostics);
            addon.declared.cosign_identity = crate::trust::declared::cosign_identity(&root);
        }
        Err((err, text)) => {
            let mut sink = Sink::new(build_path, text.as_ref());
            sink.warn(
                err.pos().unwrap_or_default(),
                format!("{err}; the build file is ignored"),
            );
            addon.diagnostics.append(&mut sink.diagnostics);
        }
    }
}

/// Read and check `apparmor.txt`: its profile name, and its text when it can be loaded.
fn read_apparmor(addon: &mut Addon, dir: &Path) {
    let apparmor_path = dir.join(APPARMOR_NAME);
    addon.has_apparmor_txt = true;
    match source::with_file(&apparmor_path, source::MAX_CONFIG_BYTES, |bytes| {
        // A stray byte does not stop the check (a lossy copy is checked), but only a file
        // that is UTF-8 as written is kept for loading. std's check first: several times
        // faster than the lossy decoder on the usual valid file.
        match std::str::from_utf8(bytes) {
            Ok(text) => (text.to_owned(), true),
            Err(_) => (String::from_utf8_lossy(bytes).into_owned(), false),
        }
    }) {
        Ok((text, utf8)) => {
            let source = source::SourceText::new(text);
            let mut sink = Sink::new(&apparmor_path, Some(&source));
            addon.apparmor_profile = config::apparmor_txt::check(&source.text, &mut sink);
            addon.diagnostics.append(&mut sink.diagnostics);
            drop(sink);
            if addon.apparmor_profile.is_some() && utf8 {
                addon.apparmor_text = Some(source.text);
            }
        }
        Err(err) => addon.diagnostics.push(diag::whole_file(
            Severity::Error,
            &apparmor_path,
            format!("cannot read file: {err}"),
        )),
    }
}

const APPARMOR_NAME: &str = "apparmor.txt";

/// Which of the files that make an add-on are in a folder, as regular files (a symbolic link
/// counts when it leads to one, as `Path::is_file` has it).
#[derive(Default)]
struct Listing {
    configs: [bool; 3],
    builds: [bool; 3],
    apparmor: bool,
}

impl Listing {
    /// One directory listing instead of a `stat` per candidate name: on a loaded host a system
    /// call is a good part of the cost of reading an add-on.
    fn of(dir: &Path) -> Listing {
        let mut listing = Listing::default();
        let Ok(entries) = std::fs::read_dir(dir) else {
            return listing;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let slot = if let Some(i) = CONFIG_NAMES.iter().position(|n| *n == name) {
                &mut listing.configs[i]
            } else if let Some(i) = BUILD_NAMES.iter().position(|n| *n == name) {
                &mut listing.builds[i]
            } else if name == APPARMOR_NAME {
                &mut listing.apparmor
            } else {
                continue;
            };
            *slot = match entry.file_type() {
                Ok(kind) if kind.is_file() => true,
                Ok(kind) if kind.is_symlink() => entry.path().is_file(),
                _ => false,
            };
        }
        listing
    }
}

/// The add-on folders under `root`, as the Supervisor's store finds them: every folder holding
/// a `config.yaml|yml|json`, at any depth, skipping hidden paths and `rootfs`. Symbolic links
/// to folders are not followed (a loop would never end). Sorted, for stable output.
pub fn discover(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    walk(root, &mut found);
    found.sort();
    found.dedup();
    found
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut subdirs = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if !name.starts_with('.') && name != "rootfs" {
                subdirs.push(entry.path());
            }
        } else if CONFIG_NAMES.contains(&name.as_ref()) && !found.iter().any(|f| f == dir) {
            found.push(dir.to_path_buf());
        }
    }
    for sub in subdirs {
        walk(&sub, found);
    }
}

/// Resolve command-line paths to add-on folders: a config file names its folder; a folder
/// with a config file is an add-on; any other folder is a repository to search.
pub fn resolve(path: &Path) -> Result<Vec<PathBuf>, Diagnostic> {
    if path.is_file() {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if CONFIG_NAMES.contains(&name.as_str()) {
            return Ok(vec![path.parent().unwrap_or(Path::new(".")).to_path_buf()]);
        }
        return Err(diag::whole_file(
            Severity::Error,
            path,
            "not an add-on folder or config file (expected config.yaml, config.yml or config.json)",
        ));
    }
    if !path.is_dir() {
        return Err(diag::whole_file(
            Severity::Error,
            path,
            "no such file or folder",
        ));
    }
    if CONFIG_NAMES.iter().any(|n| path.join(n).is_file()) {
        return Ok(vec![path.to_path_buf()]);
    }
    let found = discover(path);
    if found.is_empty() {
        return Err(diag::whole_file(
            Severity::Error,
            path,
            "no add-on here: no config.yaml, config.yml or config.json in this folder or below it",
        ));
    }
    Ok(found)
}
