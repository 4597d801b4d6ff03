//! Booting: `root` packed into an initramfs and booted under `qemu-system-x86_64 -accel tcg`,
//! its console read until the VM powers itself off.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{VmError, fail};

/// The emulated machine: memory, processors and the disks beside the initramfs.
pub(super) struct Machine {
    pub memory_mb: u32,
    pub cpus: u32,
    /// Virtio disks in order (`/dev/vda`, `/dev/vdb`, ...), each raw, with whether its writes
    /// are kept apart from the file (qemu's `snapshot=on`: the file is left as it was).
    pub disks: Vec<(PathBuf, bool)>,
    /// Where the console is copied as it comes, for a run that is watched or fails.
    pub console_log: Option<PathBuf>,
}

impl Machine {
    /// The probe VMs' machine: one processor, 1 GiB, no disk.
    pub fn small() -> Machine {
        Machine {
            memory_mb: 1024,
            cpus: 1,
            disks: Vec::new(),
            console_log: None,
        }
    }
}

/// Pack `root` into an initramfs, boot it (its `init` runs as PID 1) and return the
/// console once the VM powers off, with the time it took. The init must print `END` last. A VM
/// still running after `deadline` is killed and reported.
pub(super) fn boot(
    kernel: &Path,
    root: &Path,
    work: &Path,
    init: &str,
    deadline: Duration,
) -> Result<(String, Duration), VmError> {
    boot_machine(kernel, root, work, init, deadline, &Machine::small())
}

/// [`boot`] on the given machine.
pub(super) fn boot_machine(
    kernel: &Path,
    root: &Path,
    work: &Path,
    init: &str,
    deadline: Duration,
    machine: &Machine,
) -> Result<(String, Duration), VmError> {
    let initrd = pack(root, work)?;
    let start = Instant::now();
    let mut child = qemu(kernel, &initrd, init, machine)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(fail)?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| VmError("no console".into()))?;
    let log = match &machine.console_log {
        Some(path) => Some(std::fs::File::create(path).map_err(fail)?),
        None => None,
    };
    // Read the console in a thread; the VM powers itself off at the end.
    let reader = std::thread::spawn(move || read_console(stdout, log));
    loop {
        if child.try_wait().map_err(fail)?.is_some() {
            break;
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let console = reader.join().unwrap_or_default();
            let tail: Vec<&str> = console.lines().rev().take(60).collect();
            return Err(VmError(format!(
                "the VM did not finish in its budget of {} s (every step is bounded: the VM itself is stuck); last lines:\n{}",
                deadline.as_secs(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let console = reader
        .join()
        .map_err(|_| VmError("console reader failed".into()))?
        .replace('\r', "");
    let boot_time = start.elapsed();
    if !console.contains("\nEND") {
        return Err(VmError(format!(
            "the VM did not finish its probes:\n{console}"
        )));
    }
    Ok((console, boot_time))
}

/// `root` packed into `<work>/initrd.cpio`.
fn pack(root: &Path, work: &Path) -> Result<PathBuf, VmError> {
    let initrd = work.join("initrd.cpio");
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cd '{}' && find . | cpio -o -H newc --quiet > '{}'",
            root.display(),
            initrd.display()
        ))
        .status()
        .map_err(fail)?;
    if !status.success() {
        return Err(VmError("cpio failed".into()));
    }
    Ok(initrd)
}

/// The qemu command line of `machine` booting `kernel` with `initrd`, `init` as PID 1.
fn qemu(kernel: &Path, initrd: &Path, init: &str, machine: &Machine) -> Command {
    let mut qemu = Command::new("qemu-system-x86_64");
    let accel = if machine.cpus > 1 {
        "tcg,thread=multi"
    } else {
        "tcg"
    };
    qemu.args(["-accel", accel, "-nographic", "-no-reboot"])
        .args(["-m", &machine.memory_mb.to_string()])
        .args(["-smp", &machine.cpus.to_string()]);
    for (disk, snapshot) in &machine.disks {
        let mut spec = format!("file={},format=raw,if=virtio", disk.display());
        if *snapshot {
            spec.push_str(",snapshot=on");
        }
        qemu.arg("-drive").arg(spec);
    }
    qemu.arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(initrd)
        .arg("-append")
        // A large log buffer and audit backlog: every denial is kept as a witness.
        .arg(format!("console=ttyS0 rdinit={init} apparmor=1 security=apparmor panic=-1 quiet loglevel=3 log_buf_len=8M audit_backlog_limit=65536 printk.devkmsg=on"));
    qemu
}

/// The whole console, copied to `log` as it comes.
fn read_console(mut stdout: impl std::io::Read, mut log: Option<std::fs::File>) -> String {
    let mut all = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n) = stdout.read(&mut buf) {
        if n == 0 {
            break;
        }
        all.extend_from_slice(&buf[..n]);
        if let Some(log) = log.as_mut() {
            let _ = log.write_all(&buf[..n]);
        }
    }
    String::from_utf8_lossy(&all).into_owned()
}
