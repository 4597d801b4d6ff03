//! Running `apparmor_parser`. Nothing here loads a profile into a kernel: every call uses
//! `--skip-kernel-load` and the pinned feature file, so results are the same on a host with
//! or without AppArmor (this one has none).

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The feature set profiles are compiled against: ABI 3.0 as Debian's `apparmor` ships it.
/// Without `-M`, a parser on a kernel without AppArmor silently drops whole rule classes
/// (network, signal), so an unpinned compile proves little.
pub const DEFAULT_FEATURES: &str = "/etc/apparmor.d/abi/3.0";

#[derive(Debug, thiserror::Error)]
pub enum ParserError {
    #[error(
        "apparmor_parser not found (looked at $APPARMOR_PARSER, $PATH, /sbin, /usr/sbin); install the apparmor package"
    )]
    NotFound,
    #[error(
        "feature file {0} not found; install the apparmor package or set ADDON_SANDBOX_AA_FEATURES"
    )]
    NoFeatures(PathBuf),
    #[error("running {program}: {source}")]
    Spawn {
        program: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("temporary files for the parser: {0}")]
    Io(#[from] io::Error),
    #[error("apparmor_parser rejected {what}:\n{stderr}")]
    Rejected { what: String, stderr: String },
}

/// What the parser said about one profile.
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// Top-level and child profile names (`--names`).
    pub names: Vec<String>,
    /// Warnings of `--warn all`, without the notice that this host has no AppArmor cache.
    pub warnings: Vec<String>,
    /// The compiled policy.
    pub binary: Vec<u8>,
    /// Wall time of the compile (process start included).
    pub compile_time: Duration,
}

impl CheckReport {
    /// Rules the parser accepted but the target kernel would not enforce.
    pub fn not_enforced(&self) -> Vec<&String> {
        self.warnings
            .iter()
            .filter(|w| w.contains("not enforced"))
            .collect()
    }
}

#[derive(Debug, Clone)]
pub struct Parser {
    program: PathBuf,
    features: PathBuf,
}

impl Parser {
    /// `$APPARMOR_PARSER`, else `apparmor_parser` on `$PATH` or in `/sbin`, `/usr/sbin`; the
    /// feature file is `$ADDON_SANDBOX_AA_FEATURES` or [`DEFAULT_FEATURES`].
    pub fn find() -> Result<Parser, ParserError> {
        let program = parser_program().ok_or(ParserError::NotFound)?;
        let features = std::env::var_os("ADDON_SANDBOX_AA_FEATURES")
            .filter(|f| !f.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_FEATURES));
        if !features.exists() {
            return Err(ParserError::NoFeatures(features));
        }
        Ok(Parser { program, features })
    }

    pub fn program(&self) -> &Path {
        &self.program
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.program);
        c.arg("--skip-kernel-load")
            .arg("--skip-read-cache")
            .arg("--features-file")
            .arg(&self.features);
        c
    }

    fn run(&self, cmd: Command, what: &str) -> Result<String, ParserError> {
        let (stdout, stderr) = self.run_apart(cmd, what)?;
        Ok(stdout + &stderr)
    }

    /// Standard output and standard error of a successful run, apart.
    fn run_apart(&self, mut cmd: Command, what: &str) -> Result<(String, String), ParserError> {
        let output = cmd.output().map_err(|source| ParserError::Spawn {
            program: self.program.clone(),
            source,
        })?;
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        if !output.status.success() {
            return Err(ParserError::Rejected {
                what: what.to_owned(),
                stderr: clean(&stderr).join("\n"),
            });
        }
        Ok((String::from_utf8_lossy(&output.stdout).into_owned(), stderr))
    }

    /// Compile one profile with `--warn all` and list its names.
    pub fn check(&self, text: &str) -> Result<CheckReport, ParserError> {
        let dir = tempfile::tempdir()?;
        let src = dir.path().join("profile");
        let bin = dir.path().join("profile.bin");
        fs::write(&src, text)?;
        let mut cmd = self.command();
        cmd.arg("--skip-cache")
            .arg("--warn")
            .arg("all")
            .arg("-o")
            .arg(&bin)
            .arg(&src);
        let start = Instant::now();
        let output = self.run(cmd, "the profile")?;
        let compile_time = start.elapsed();
        let names = self.names_of(&src)?;
        Ok(CheckReport {
            names,
            warnings: clean(&output),
            binary: fs::read(&bin)?,
            compile_time,
        })
    }

    /// The names of every profile in `text` (`--names`: top-level ones and `parent//child`).
    pub fn names(&self, text: &str) -> Result<Vec<String>, ParserError> {
        let dir = tempfile::tempdir()?;
        let src = dir.path().join("profile");
        fs::write(&src, text)?;
        self.names_of(&src)
    }

    fn names_of(&self, src: &Path) -> Result<Vec<String>, ParserError> {
        let mut names_cmd = Command::new(&self.program);
        names_cmd.arg("--names").arg(src);
        // Standard output only: a warning on standard error (a node without
        // /etc/apparmor/parser.conf gets one) is not a name.
        Ok(self
            .run_apart(names_cmd, "the profile")?
            .0
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !is_cache_notice(l))
            .map(String::from)
            .collect())
    }

    /// Compile many profiles in one parser run (in parallel, through its cache writer) and
    /// return each compiled policy, in order. An error names the first text that failed.
    pub fn compile_many(&self, texts: &[String]) -> Result<Vec<Vec<u8>>, ParserError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let dir = tempfile::tempdir()?;
        let src = dir.path().join("src");
        let cache = dir.path().join("cache");
        fs::create_dir(&src)?;
        fs::create_dir(&cache)?;
        let mut files: Vec<OsString> = Vec::with_capacity(texts.len());
        for (i, text) in texts.iter().enumerate() {
            let path = src.join(format!("p{i}"));
            fs::write(&path, text)?;
            files.push(path.into_os_string());
        }
        // Large batches go in chunks so the command line stays short.
        for chunk in files.chunks(2000) {
            let mut cmd = self.command();
            cmd.arg("--write-cache")
                .arg("--cache-loc")
                .arg(&cache)
                .arg("--quiet")
                .args(chunk);
            self.run(cmd, &format!("one of {} profiles", texts.len()))?;
        }
        // The cache goes into one subdirectory named after the feature set.
        let mut sub = None;
        for entry in fs::read_dir(&cache)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                sub = Some(entry.path());
            }
        }
        let sub = sub.ok_or_else(|| ParserError::Rejected {
            what: "the batch".into(),
            stderr: "the parser wrote no cache".into(),
        })?;
        (0..texts.len())
            .map(|i| {
                fs::read(sub.join(format!("p{i}"))).map_err(|_| ParserError::Rejected {
                    what: format!("profile {i} of the batch"),
                    stderr: "no compiled output".into(),
                })
            })
            .collect()
    }
}

fn is_cache_notice(line: &str) -> bool {
    line.starts_with("Cache read/write disabled")
}

fn clean(output: &str) -> Vec<String> {
    output
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty() && !is_cache_notice(l))
        .map(String::from)
        .collect()
}

/// The parser to run: `$APPARMOR_PARSER`, else `apparmor_parser` found by [`find_program`].
pub fn parser_program() -> Option<PathBuf> {
    match std::env::var_os("APPARMOR_PARSER") {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => find_program("apparmor_parser"),
    }
}

/// A program on `$PATH`, or in the system directories root's `$PATH` has and a user's may not.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
