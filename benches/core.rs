//! Core pipeline speed over the corpus: read + check + rate + plan, against reading alone.
//!
//! Run with `scripts/bench-core`. Prints times per add-on measured in this one run; the
//! ratio to the read-only baseline is the number that matters across machines.

use std::path::{Path, PathBuf};
use std::time::Instant;

use addon_sandbox::addon;
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
            if entry.file_name().to_str().is_some_and(|n| NAMES.contains(&n)) {
                bytes += std::fs::read(entry.path()).map_or(0, |b| b.len());
            }
        }
    }
    bytes
}

fn pipeline(dirs: &[PathBuf], strict: &PlanOptions, supervisor: &PlanOptions) -> usize {
    let mut granted = 0;
    for dir in dirs {
        let a = addon::load(dir);
        let Some(config) = a.config.as_ref() else {
            continue;
        };
        let ships = a.apparmor_profile.is_some();
        let r = rating::rate(config, ApparmorMode::of(config, ships));
        for options in [strict, supervisor] {
            if let Ok(plan) = policy::decide(config, ships, options) {
                granted += plan.granted.len() + usize::from(r.rating);
            }
        }
    }
    granted
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
    let read = time(rounds, || read_only(&dirs)) / n * 1e6;
    let parse = time(rounds, || parse_only(&dirs)) / n * 1e6;
    let full = time(rounds, || pipeline(&dirs, &strict, &supervisor)) / n * 1e6;
    let parse_only = full - read;
    println!(
        "corpus: {} add-ons, {} KiB of config files",
        dirs.len(),
        bytes / 1024
    );
    println!("read files only:                      {read:8.1} us/add-on");
    println!("read + parse only:                    {parse:8.1} us/add-on");
    println!(
        "read + check + rate + plan (x2 modes): {full:8.1} us/add-on   ({:.2}x the read alone)",
        full / read
    );
    println!("  of which parse/check/rate/plan:      {parse_only:8.1} us/add-on");
    println!(
        "Supervisor read+validate (reference): {SUPERVISOR_US_PER_ADDON:8.1} us/add-on   -> this pipeline is {:.1}x faster",
        SUPERVISOR_US_PER_ADDON / full
    );
}
