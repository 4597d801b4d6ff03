//! Booting: `root` packed into an initramfs and booted under `qemu-system-x86_64 -accel tcg`,
//! its console read until the VM powers itself off.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{VmError, fail};

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

    let start = Instant::now();
    let mut child = Command::new("qemu-system-x86_64")
        .args(["-accel", "tcg", "-m", "1024", "-smp", "1", "-nographic", "-no-reboot"])
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(&initrd)
        .arg("-append")
        // A large log buffer and audit backlog: every denial is kept as a witness.
        .arg(format!("console=ttyS0 rdinit={init} apparmor=1 security=apparmor panic=-1 quiet loglevel=3 log_buf_len=8M audit_backlog_limit=65536 printk.devkmsg=on"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(fail)?;
    // Read the console in a thread; the VM powers itself off at the end.
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| VmError("no console".into()))?;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    loop {
        if child.try_wait().map_err(fail)?.is_some() {
            break;
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            return Err(VmError(format!(
                "the VM did not finish in its budget of {} s (every probe is bounded: the VM itself is stuck)",
                deadline.as_secs()
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
