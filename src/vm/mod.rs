//! A real AppArmor kernel for tests and previews: Debian's cloud kernel booted under
//! `qemu-system-x86_64 -accel tcg` from an initramfs holding busybox, `apparmor_parser` (with
//! its libraries and `/etc/apparmor.d`'s tunables and ABI files), the profiles, a static probe
//! program (`src/vm_probe.c`, built with `gcc -static`) and a list of probes. One boot loads every profile with
//! `apparmor_parser -r` and runs every probe confined to its profile (`exec <name>` written to
//! `/proc/self/attr/exec`, then exec of the probe), printing one result line per probe.
//!
//! The kernel is fetched and cached by `kernel`, the initramfs tree built by `initramfs`,
//! the probes chosen in `probes`, booted by `boot`, and the two kinds of run (probes under
//! profiles, the native backend) are in `probing` and `native_run`.

mod boot;
mod initramfs;
mod kernel;
mod native_run;
mod probes;
mod probing;

pub use kernel::{cache_dir, kernel};
pub use native_run::{NativeVmReport, run_native};
pub use probes::standard_probes;
pub use probing::run;

use std::time::Duration;

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
