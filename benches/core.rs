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

/// The Supervisor's own reader, PyYAML's C `SafeLoader`, over the same files in a Python
/// process started now: the part of the Supervisor's 350 µs that is reading, on this machine.
/// `None` without python3 and PyYAML.
fn pyyaml_read_and_load(dirs: &[PathBuf], rounds: usize) -> Option<f64> {
    const SCRIPT: &str = r#"
import json, sys, time, yaml
dirs, rounds = json.load(sys.stdin)
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
names = ["config.yaml", "config.yml", "config.json", "build.yaml", "build.yml", "build.json"]
def once():
    for d in dirs:
        for n in names:
            try:
                with open(d + "/" + n, encoding="utf-8") as f:
                    text = f.read()
            except FileNotFoundError:
                continue
            json.loads(text) if n.endswith(".json") else yaml.load(text, Loader=Loader)
best = float("inf")
for _ in range(5):
    start = time.perf_counter()
    for _ in range(rounds):
        once()
    best = min(best, (time.perf_counter() - start) / rounds)
print(best / len(dirs) * 1e6)
"#;
    use std::io::Write;
    use std::process::{Command, Stdio};
    let python = ["/usr/bin/python3", "python3"].into_iter().find(|p| {
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
    let input = serde_json::to_vec(&(dirs, rounds)).ok()?;
    child.stdin.take()?.write_all(&input).ok()?;
    let output = child.wait_with_output().ok()?;
    String::from_utf8(output.stdout).ok()?.trim().parse().ok()
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

fn time<T>(rounds: usize, mut f: impl FnMut() -> T) -> f64 {
    // Best of five batches: the least disturbed by the rest of the machine.
    (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..rounds {
                std::hint::black_box(f());
            }
            start.elapsed().as_secs_f64() / rounds as f64
        })
        .fold(f64::INFINITY, f64::min)
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
    let rounds = 40;
    let bytes = read_only(&dirs);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let read = time(rounds, || read_only(&dirs)) / n * 1e6;
    let parse = time(rounds, || parse_only(&dirs)) / n * 1e6;
    let texts = yaml_texts(&dirs);
    let events = time(rounds, || parser_events_only(&texts)) / n * 1e6;
    let full = time(rounds, || pipeline(&dirs, &strict, &supervisor)) / n * 1e6;
    let full_cores = time(rounds, || pipeline_all_cores(&dirs, &strict, &supervisor)) / n * 1e6;
    let pyyaml = pyyaml_read_and_load(&dirs, 5);
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
    println!(
        "Supervisor read + validate, published: {SUPERVISOR_US_PER_ADDON:8.1} us/add-on on its authors' machine   -> {:.1}x ({:.1}x on all cores)",
        SUPERVISOR_US_PER_ADDON / full,
        SUPERVISOR_US_PER_ADDON / full_cores
    );
}
