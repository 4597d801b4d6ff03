//! Core pipeline speed over the corpus: read + check + rate + plan, against reading alone.
//!
//! Run with `scripts/bench-core`. Prints times per add-on measured in this one run; the
//! ratio to the read-only baseline is the number that matters across machines.

use std::path::{Path, PathBuf};
use std::time::Instant;

use addon_sandbox::{addon, parallel};

/// The allocator of the `addon-sandbox` binary (see `src/main.rs`), so this measures what the
/// command does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use addon_sandbox::plan::PolicyMode;
use addon_sandbox::policy::{self, PlanOptions};
use addon_sandbox::rating::{self, ApparmorMode};

/// What the Supervisor itself spends per add-on (Python, C YAML loader) to read and validate
/// this corpus in process, measured by its authors' code on the corpus (see the issue).
const SUPERVISOR_US_PER_ADDON: f64 = 350.0;

fn corpus() -> PathBuf {
    std::env::var_os("ADDON_SANDBOX_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"))
}

/// The floor for getting the bytes: one listing of each folder, then each add-on file read.
fn read_only(dirs: &[PathBuf]) -> usize {
    const NAMES: [&str; 7] = [
        "config.yaml",
        "config.yml",
        "config.json",
        "build.yaml",
        "build.yml",
        "build.json",
        "apparmor.txt",
    ];
    let mut bytes = 0;
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry
                .file_name()
                .to_str()
                .is_some_and(|n| NAMES.contains(&n))
            {
                bytes += std::fs::read(entry.path()).map_or(0, |b| b.len());
            }
        }
    }
    bytes
}

/// The whole job for one add-on: read and check its files, rate it, plan it in both policies.
fn one_addon(dir: &Path, strict: &PlanOptions, supervisor: &PlanOptions) -> usize {
    let a = addon::load(dir);
    let Some(config) = a.config.as_ref() else {
        return 0;
    };
    let ships = a.apparmor_profile.is_some();
    let r = rating::rate(config, ApparmorMode::of(config, ships));
    let mut granted = 0;
    for options in [strict, supervisor] {
        if let Ok(plan) = policy::decide(config, ships, options) {
            granted += plan.granted.len() + usize::from(r.rating);
        }
    }
    granted
}

fn pipeline(dirs: &[PathBuf], strict: &PlanOptions, supervisor: &PlanOptions) -> usize {
    dirs.iter().map(|d| one_addon(d, strict, supervisor)).sum()
}

fn pipeline_all_cores(dirs: &[PathBuf], strict: &PlanOptions, supervisor: &PlanOptions) -> usize {
    parallel::map(dirs, 0, |d| one_addon(d, strict, supervisor))
        .into_iter()
        .sum()
}

/// The YAML files of the corpus, in memory.
fn yaml_texts(dirs: &[PathBuf]) -> Vec<String> {
    let mut texts = Vec::new();
    for dir in dirs {
        for name in ["config.yaml", "config.yml", "build.yaml", "build.yml"] {
            if let Ok(text) = std::fs::read_to_string(dir.join(name)) {
                texts.push(text);
            }
        }
    }
    texts
}

/// The floor the required parser sets: granit-parser (serde-saphyr's parser) producing its
/// events for every YAML file of an add-on, from memory, with nothing built from them.
fn parser_events_only(texts: &[String]) -> usize {
    let mut events = 0;
    for text in texts {
        for event in serde_saphyr::granit_parser::Parser::new_from_str(text) {
            events += usize::from(event.is_ok());
        }
    }
    events
}

/// The Supervisor's side, in a Python process that stays up for the whole run and times a
/// batch each time it is asked, so its numbers are sampled in the same moments as ours:
/// - `load`: its reader alone, PyYAML's C `SafeLoader` (or `json`) on each config and build file;
/// - `validate`: the same plus its own validation (`SCHEMA_ADDON_CONFIG`, `SCHEMA_BUILD_CONFIG`
///   from `supervisor/apps/validate.py`, `addons/` in older releases), when `SUPERVISOR_SRC`
///   names a Supervisor checkout whose Python requirements `SUPERVISOR_PYTHON` (default
///   `python3`) can import. That is the baseline the issue's 10x is about, measured here.
struct PythonBaseline {
    child: std::process::Child,
    stdout: std::io::BufReader<std::process::ChildStdout>,
    has_validate: bool,
}

impl PythonBaseline {
    /// `None` without a Python that has PyYAML (or when `SUPERVISOR_SRC` does not import).
    fn start(dirs: &[PathBuf]) -> Option<PythonBaseline> {
        const SCRIPT: &str = r#"
import json, sys, time, yaml
dirs, src = json.loads(sys.stdin.readline())
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
schemas = None
if src:
    sys.path.insert(0, src)
    try:
        from supervisor.apps.validate import SCHEMA_ADDON_CONFIG, SCHEMA_BUILD_CONFIG
    except ImportError:
        from supervisor.addons.validate import SCHEMA_ADDON_CONFIG, SCHEMA_BUILD_CONFIG
    import logging
    logging.disable(logging.CRITICAL)  # its warnings go to a log, not measured here
    schemas = {"config": SCHEMA_ADDON_CONFIG, "build": SCHEMA_BUILD_CONFIG}
files = []
for d in dirs:
    for stem in ("config", "build"):
        for ext in (".json", ".yaml", ".yml"):
            try:
                open(d + "/" + stem + ext).close()
            except OSError:
                continue
            files.append((d + "/" + stem + ext, stem))
            break
def once(validate):
    for path, stem in files:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
            data = (json.loads(text) if path.endswith(".json") else yaml.load(text, Loader=Loader)) or {}
            if validate:
                schemas[stem](data)
        except Exception:
            pass  # an invalid add-on costs what it costs until refused
print(json.dumps(schemas is not None), flush=True)
for line in sys.stdin:
    what, rounds = line.split()
    start = time.perf_counter()
    for _ in range(int(rounds)):
        once(what == "validate")
    print((time.perf_counter() - start) / int(rounds), flush=True)
"#;
        use std::io::{BufRead, Write};
        use std::process::{Command, Stdio};
        let src = std::env::var("SUPERVISOR_SRC").ok();
        let configured = std::env::var("SUPERVISOR_PYTHON").ok();
        let python = configured
            .iter()
            .map(String::as_str)
            .chain(["/usr/bin/python3", "python3"])
            .find(|p| {
                Command::new(p)
                    .args(["-c", "import yaml"])
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            })?;
        let mut child = Command::new(python)
            .args(["-c", SCRIPT])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .ok()?;
        let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        let mut input = serde_json::to_vec(&(dirs, src.as_deref())).ok()?;
        input.push(b'\n');
        child.stdin.as_mut()?.write_all(&input).ok()?;
        let mut stdout = std::io::BufReader::new(child.stdout.take()?);
        let mut ready = String::new();
        stdout.read_line(&mut ready).ok()?;
        let Ok(has_validate) = serde_json::from_str(ready.trim()) else {
            eprintln!(
                "python baseline failed (is SUPERVISOR_SRC a Supervisor checkout SUPERVISOR_PYTHON can import?)"
            );
            let _ = child.kill();
            return None;
        };
        Some(PythonBaseline {
            child,
            stdout,
            has_validate,
        })
    }

    /// Seconds per round of `what` ("load" or "validate") over `rounds` rounds.
    fn batch(&mut self, what: &str, rounds: usize) -> f64 {
        use std::io::{BufRead, Write};
        let stdin = self.child.stdin.as_mut().expect("piped");
        writeln!(stdin, "{what} {rounds}").expect("python baseline is running");
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("python baseline answers");
        line.trim().parse().expect("python baseline prints seconds")
    }
}

impl Drop for PythonBaseline {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

fn parse_only(dirs: &[PathBuf]) -> usize {
    let mut n = 0;
    for dir in dirs {
        for name in ["config.yaml", "config.yml", "config.json"] {
            let path = dir.join(name);
            if let Some(format) = addon_sandbox::source::Format::from_path(&path)
                && let Ok(text) = std::fs::read_to_string(&path)
                && let Ok(node) = addon_sandbox::source::parse(&text, format)
            {
                n += node.as_map().map_or(0, |m| m.len());
            }
        }
    }
    n
}

/// One measurement: a batch of rounds that takes about `BATCH_SECONDS`, timed again and again
/// in turn with every other measurement; the fastest batch is the one least disturbed by the
/// rest of the machine, and taking them in turn lets a slow moment of the machine hit every
/// measurement alike, so the ratios hold even when the absolute numbers move.
struct Measurement<'a> {
    name: &'static str,
    run: Box<dyn FnMut(usize) -> f64 + 'a>,
    rounds: usize,
    best: f64,
}

const BATCH_SECONDS: f64 = 0.25;
const TURNS: usize = 12;

impl<'a> Measurement<'a> {
    /// `f` does one round of the work.
    fn of<T>(name: &'static str, mut f: impl FnMut() -> T + 'a) -> Measurement<'a> {
        Measurement::batched(name, move |rounds| {
            let start = Instant::now();
            for _ in 0..rounds {
                std::hint::black_box(f());
            }
            start.elapsed().as_secs_f64() / rounds as f64
        })
    }

    /// `run(rounds)` does the rounds and returns the seconds per round.
    fn batched(name: &'static str, run: impl FnMut(usize) -> f64 + 'a) -> Measurement<'a> {
        Measurement {
            name,
            run: Box::new(run),
            rounds: 0,
            best: f64::INFINITY,
        }
    }

    fn turn(&mut self) {
        if self.rounds == 0 {
            let once = (self.run)(1);
            self.rounds = ((BATCH_SECONDS / once) as usize).max(1);
            self.best = once;
        }
        self.best = self.best.min((self.run)(self.rounds));
    }
}

fn main() {
    let root = corpus();
    let mut dirs = Vec::new();
    for part in ["official", "community"] {
        dirs.extend(addon::discover(&root.join(part)));
    }
    if dirs.is_empty() {
        eprintln!("no corpus at {}", root.display());
        std::process::exit(1);
    }
    let strict = PlanOptions::default();
    let supervisor = PlanOptions {
        policy: PolicyMode::Supervisor,
        ..PlanOptions::default()
    };
    let n = dirs.len() as f64;
    let bytes = read_only(&dirs);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let texts = yaml_texts(&dirs);
    let python = std::cell::RefCell::new(PythonBaseline::start(&dirs));
    let mut measurements = vec![
        Measurement::of("read", || read_only(&dirs)),
        Measurement::of("parse", || parse_only(&dirs)),
        Measurement::of("events", || parser_events_only(&texts)),
        Measurement::of("full", || pipeline(&dirs, &strict, &supervisor)),
        Measurement::of("full_cores", || {
            pipeline_all_cores(&dirs, &strict, &supervisor)
        }),
    ];
    let has_python = python.borrow().is_some();
    let has_validate = python.borrow().as_ref().is_some_and(|p| p.has_validate);
    if has_python {
        measurements.push(Measurement::batched("pyyaml", |rounds| {
            python
                .borrow_mut()
                .as_mut()
                .map_or(f64::NAN, |p| p.batch("load", rounds))
        }));
    }
    if has_validate {
        measurements.push(Measurement::batched("supervisor", |rounds| {
            python
                .borrow_mut()
                .as_mut()
                .map_or(f64::NAN, |p| p.batch("validate", rounds))
        }));
    }
    for _ in 0..TURNS {
        for m in &mut measurements {
            m.turn();
        }
    }
    let us = |name: &str| {
        measurements
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.best / n * 1e6)
    };
    let read = us("read").unwrap_or(f64::NAN);
    let parse = us("parse").unwrap_or(f64::NAN);
    let events = us("events").unwrap_or(f64::NAN);
    let full = us("full").unwrap_or(f64::NAN);
    let full_cores = us("full_cores").unwrap_or(f64::NAN);
    let pyyaml = us("pyyaml");
    let supervisor_here = us("supervisor");
    drop(measurements);
    println!(
        "corpus: {} add-ons, {} KiB of config files; {cores} cores",
        dirs.len(),
        bytes / 1024
    );
    println!("read files only:                          {read:8.1} us/add-on");
    println!("read + parse config only:                 {parse:8.1} us/add-on");
    println!(
        "  YAML parser events alone, from memory:  {events:8.1} us/add-on   (granit-parser, no tree)"
    );
    println!(
        "read + check + rate + plan (x2 policies): {full:8.1} us/add-on   ({:.2}x the read alone)",
        full / read
    );
    println!(
        "  the same on all {cores} cores:                {full_cores:8.1} us/add-on   ({:.2}x the read alone)",
        full_cores / read
    );
    match pyyaml {
        Some(py) => println!(
            "PyYAML CSafeLoader read + load, same files, this run: {py:8.1} us/add-on   -> pipeline {:.1}x faster ({:.1}x on all cores)",
            py / full,
            py / full_cores
        ),
        None => println!("PyYAML CSafeLoader: not measured (no python3 with PyYAML)"),
    }
    match supervisor_here {
        Some(sv) => println!(
            "Supervisor read + validate, its own code, this run: {sv:8.1} us/add-on   -> pipeline {:.1}x faster ({:.1}x on all cores)",
            sv / full,
            sv / full_cores
        ),
        None => println!(
            "Supervisor read + validate: not measured in this run (set SUPERVISOR_SRC to a Supervisor checkout)"
        ),
    }
    println!(
        "Supervisor read + validate, published: {SUPERVISOR_US_PER_ADDON:8.1} us/add-on on its authors' machine   -> {:.1}x ({:.1}x on all cores)",
        SUPERVISOR_US_PER_ADDON / full,
        SUPERVISOR_US_PER_ADDON / full_cores
    );
}
