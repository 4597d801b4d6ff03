//! A real AppArmor kernel for tests and previews: Debian's cloud kernel booted under
//! `qemu-system-x86_64 -accel tcg` from an initramfs holding busybox, `apparmor_parser` (with
//! its libraries and `/etc/apparmor.d`'s tunables and ABI files), the profiles, a static probe
//! program (`src/vm_probe.c`, built with `gcc -static`) and a list of probes. One boot loads every profile with
//! `apparmor_parser -r` and runs every probe confined to its profile (`exec <name>` written to
//! `/proc/self/attr/exec`, then exec of the probe), printing one result line per probe.
//!
//! The kernel is fetched and cached by `kernel`, the initramfs tree built by `initramfs`,
//! the probes chosen in `probes`, booted by `boot`, and the four kinds of run (probes under
//! profiles, the native backend, an image's own s6-overlay init under its profile, the
//! Kubernetes profile loader) are in `probing`, `native_run`, `image_run` and `node_load`.
//! `engine` boots a Debian root with Docker's engine from a disk (`scripts/build-vm-root`) for
//! the launcher's production path.

mod boot;
mod engine;
mod image_run;
mod initramfs;
mod kernel;
mod learn;
mod native_run;
mod node_load;
mod probes;
mod probing;

pub use engine::{DockerDisk, EngineReport, EngineRoot, EngineRun, empty_disk, run_engine};
pub use image_run::{ImageVmReport, run_image};
pub use kernel::{cache_dir, kernel};
pub use learn::{LearnVm, LearnVmReport, learn_in_vm};
pub use native_run::{NativeVmReport, run_native};
pub use node_load::{NodeVmReport, run_node_load};
pub use probes::standard_probes;
pub use probing::run;

use std::time::Duration;

/// The longest one probe may take: an access that neither succeeds nor fails by then (a read of
/// a terminal waiting for input) is reported as `BLOCKED` by the probe itself. Kept in step
/// with `PROBE_SECONDS` in `src/vm_probe.c` (a unit test checks).
pub const PROBE_SECONDS: u64 = 5;

/// Booting the kernel, loading the profiles and setting up, under software emulation on a
/// slow and loaded host: the part of a run that does not grow with the probes.
const BOOT_BUDGET: Duration = Duration::from_secs(300);

/// How long a run with `probes` probes may take at most: the boot, plus every probe blocked
/// for its whole bound and a second of its own. Every step inside is bounded, so a run that
/// outlives this is stuck and is stopped.
pub fn budget(probes: usize) -> Duration {
    BOOT_BUDGET + Duration::from_secs((PROBE_SECONDS + 1) * probes as u64)
}

/// One access attempted under one profile.
#[derive(Clone, Debug)]
pub struct VmProbe {
    pub profile: String,
    /// `read`, `write`, `create`, `exec`, `mmap`, `mount`, `connect`, `raw`.
    pub op: &'static str,
    pub path: String,
    pub expect_allowed: bool,
}

/// What the VM reported.
#[derive(Debug)]
pub struct VmReport {
    /// `OK`, or `ERR <errno>`, per probe, in order.
    pub outcomes: Vec<String>,
    /// Profiles `apparmor_parser -r` could not load, with its message.
    pub load_failures: Vec<String>,
    /// The kernel's `apparmor="DENIED"` audit lines seen during the run.
    pub denied_lines: usize,
    /// (profile, path) of every audited file denial: the kernel's own witness.
    pub denied_records: std::collections::BTreeSet<(String, String)>,
    /// Lines the init printed about the launcher's path (`ATTR ...`, `AA ...`).
    pub extra: Vec<String>,
    pub boot_time: Duration,
}

/// Why the VM cannot run here.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct VmError(pub String);

fn fail(e: impl std::fmt::Display) -> VmError {
    VmError(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_program_has_the_bound_the_budget_counts_on() {
        let source = include_str!("../vm_probe.c");
        assert!(source.contains(&format!("#define PROBE_SECONDS {PROBE_SECONDS}\n")));
        assert!(source.contains(&format!("no answer in {PROBE_SECONDS} s")));
        assert!(budget(10) > budget(0) + Duration::from_secs(10 * PROBE_SECONDS));
    }
}
