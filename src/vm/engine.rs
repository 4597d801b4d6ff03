//! Docker's engine in the AppArmor VM: the production path of `addon-sandbox run`, with the
//! kernel enforcing the profiles. The VM's root is a Debian disk made by
//! `scripts/build-vm-root` (docker.io, containerd, runc, apparmor, the clients, and the cloud
//! kernel with its modules), booted read-only for the cache (qemu's `snapshot=on`) from a tiny
//! initramfs that loads the virtio modules, mounts it and switches to it. A second disk, the
//! payload, holds what the run brings: image tarballs (`images/*.tar`, loaded with `docker
//! load`), the `addon-sandbox` binary, and the caller's `harness.sh`, run once the engine
//! answers. A third disk may hold Docker's data: loading the images under emulation takes
//! minutes, so a caller loads them once into a disk it keeps and boots later runs on a
//! snapshot of it. Every line the harness prints starting with `@@ ` is reported; at the end the
//! kernel's AppArmor denials and the `MARK` lines written to `/dev/kmsg` are reported too, in
//! the kernel log's order (`@@ K ...`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::boot::{Machine, boot_machine};
use super::{VmError, fail};

/// The initramfs's init: the virtio modules, the root disk, the payload disk, then the root's
/// own shell runs the engine's init from the payload.
const INITRD_INIT: &str = r#"#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /newroot
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t devtmpfs dev /dev
for m in $(/bin/busybox cat /modules/order); do /bin/busybox insmod /modules/$m; done
for i in $(/bin/busybox seq 100); do [ -b /dev/vdb ] && break; /bin/busybox sleep 0.1; done
/bin/busybox mount -t ext4 /dev/vda /newroot || echo "ROOT DISK NOT MOUNTED"
/bin/busybox mount -t ext4 /dev/vdb /newroot/payload || echo "PAYLOAD DISK NOT MOUNTED"
# The third disk, when there is one, is Docker's data (images loaded by an earlier boot).
if [ -b /dev/vdc ]; then
  /bin/busybox mount -t ext4 /dev/vdc /newroot/var/lib/docker || echo "DOCKER DISK NOT MOUNTED"
fi
/bin/busybox umount /proc
/bin/busybox mount --move /dev /newroot/dev
exec /bin/busybox switch_root /newroot /bin/sh /payload/.engine/init.sh
"#;

/// The engine's init in the Debian root: the kernel's file systems, the modules Docker needs,
/// dockerd (which starts its containerd), the images, the harness, the kernel's witness lines.
const ENGINE_INIT: &str = r#"export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
up() { cut -d' ' -f1 /proc/uptime; }
say() { echo "@@ $*"; }
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t securityfs securityfs /sys/kernel/security
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts devpts /dev/pts
mount -t tmpfs shm /dev/shm
mount -t mqueue mqueue /dev/mqueue
# The links udev makes on a host, which devtmpfs has not: an add-on given the host's /dev (a
# device class) finds them there (vlc's nginx logs to /dev/stdout).
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
# Without auditd, audit records reach the kernel log through printk: no rate limit.
echo 0 > /proc/sys/kernel/printk_ratelimit
hostname engine-vm
ip link set lo up
say "T root $(up)"
say "AA $(cat /sys/module/apparmor/parameters/enabled)"
for m in overlay bridge veth; do modprobe "$m" || say "MODPROBE FAILED $m"; done
dockerd >/run/dockerd.log 2>&1 &
for i in $(seq 600); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
if docker info >/dev/null 2>&1; then
  say "T dockerd $(up)"
  say "ENGINE $(docker info --format '{{.ServerVersion}} {{.Driver}} {{json .SecurityOptions}}')"
  for t in /payload/images/*.tar; do
    [ -e "$t" ] || continue
    docker load -q -i "$t" | sed 's/^/@@ LOAD /'
  done
  # A rebuilt image's tag moved: the image it replaced is of no use on a kept disk.
  if ls /payload/images/*.tar >/dev/null 2>&1; then docker image prune -f >/dev/null; fi
  say "T loaded $(up)"
  say "IMAGES $(docker images --format '{{.Repository}}:{{.Tag}}' | sort | tr '\n' ' ')"
  if [ -f /payload/harness.sh ]; then
    sh /payload/harness.sh 2>&1
    say "T harness $(up)"
  fi
  # A clean stop, so that a disk of loaded images is whole for the next boot.
  kill -TERM "$(cat /run/docker.pid)"
  for i in $(seq 120); do [ -e /run/docker.pid ] || break; sleep 0.5; done
  say "T dockerd-stopped $(up)"
else
  say "ENGINE DOWN"
  tail -40 /run/dockerd.log | sed 's/^/@@ DOCKERD /'
fi
dmesg | grep -E 'apparmor="DENIED"|MARK ' | sed 's/^/@@ K /'
sync
umount /var/lib/docker 2>/dev/null
echo END
busybox poweroff -f
"#;

/// The VM's root as `scripts/build-vm-root` leaves it in its folder.
#[derive(Clone, Debug)]
pub struct EngineRoot {
    pub disk: PathBuf,
    pub kernel: PathBuf,
    /// The initramfs's modules and their load order (`order`).
    pub modules: PathBuf,
}

impl EngineRoot {
    /// The root in `dir`, or why it is not there.
    pub fn at(dir: &Path) -> Result<EngineRoot, VmError> {
        let root = EngineRoot {
            disk: dir.join("root.img"),
            kernel: dir.join("vmlinuz"),
            modules: dir.join("initrd-modules"),
        };
        for f in [&root.disk, &root.kernel, &root.modules.join("order")] {
            if !f.is_file() {
                return Err(VmError(format!(
                    "{} is missing (scripts/build-vm-root makes it)",
                    f.display()
                )));
            }
        }
        Ok(root)
    }
}

/// What one engine run printed.
#[derive(Debug)]
pub struct EngineReport {
    /// The harness's and the engine init's `@@ ` lines, without the prefix, in order.
    pub lines: Vec<String>,
    /// The whole console, for a failure's message.
    pub console: String,
    pub elapsed: Duration,
}

/// Docker's data disk: empty and kept (the boot loads the payload's images into it), or booted
/// on a snapshot (the images an earlier boot loaded; the file is left as it was).
#[derive(Clone, Debug)]
pub enum DockerDisk {
    Load(PathBuf),
    Snapshot(PathBuf),
}

/// One boot of the engine VM.
pub struct EngineRun<'a> {
    pub root: &'a EngineRoot,
    /// A folder seen at `/payload`: `images/*.tar` (loaded with `docker load`), `harness.sh`
    /// (run once the engine answers) and whatever the harness uses.
    pub payload: &'a Path,
    /// Docker's data, or none (then on the root's snapshot, lost at power-off).
    pub docker: Option<DockerDisk>,
    pub memory_mb: u32,
    pub deadline: Duration,
    /// Where the console is copied as it comes.
    pub console_log: Option<PathBuf>,
}

/// Boot the engine VM on 2 processors, stopped after its deadline.
pub fn run_engine(run: &EngineRun) -> Result<EngineReport, VmError> {
    let engine = run.payload.join(".engine");
    std::fs::create_dir_all(&engine).map_err(fail)?;
    std::fs::write(engine.join("init.sh"), ENGINE_INIT).map_err(fail)?;
    let work = tempfile::tempdir().map_err(fail)?;
    let disk = work.path().join("payload.img");
    payload_disk(run.payload, &disk)?;
    let initrd = initrd_tree(run.root, work.path())?;
    let mut disks = vec![(run.root.disk.clone(), true), (disk, false)];
    match &run.docker {
        Some(DockerDisk::Load(d)) => disks.push((d.clone(), false)),
        Some(DockerDisk::Snapshot(d)) => disks.push((d.clone(), true)),
        None => {}
    }
    let machine = Machine {
        memory_mb: run.memory_mb,
        cpus: 2,
        disks,
        console_log: run.console_log.clone(),
    };
    let (console, elapsed) = boot_machine(
        &run.root.kernel,
        &initrd,
        work.path(),
        "/init",
        run.deadline,
        &machine,
    )?;
    let lines = console
        .lines()
        .filter_map(|l| l.find("@@ ").map(|at| l[at + 3..].trim_end().to_owned()))
        .collect();
    Ok(EngineReport {
        lines,
        console,
        elapsed,
    })
}

/// An empty ext4 disk of `size` (sparse), for Docker's data.
pub fn empty_disk(disk: &Path, size: &str) -> Result<(), VmError> {
    let _ = std::fs::remove_file(disk);
    let out = Command::new("mke2fs")
        .args(["-q", "-t", "ext4", "-L", "docker"])
        .arg(disk)
        .arg(size)
        .output()
        .map_err(fail)?;
    if !out.status.success() {
        return Err(VmError(format!(
            "mke2fs of {} failed: {}",
            disk.display(),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}

/// The payload folder as an ext4 disk, made without mounting (`mke2fs -d`), sized to it.
fn payload_disk(payload: &Path, disk: &Path) -> Result<(), VmError> {
    let du = Command::new("du")
        .args(["-sm"])
        .arg(payload)
        .output()
        .map_err(fail)?;
    let used: u64 = String::from_utf8_lossy(&du.stdout)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| VmError("du of the payload failed".into()))?;
    let out = Command::new("mke2fs")
        .args(["-q", "-t", "ext4", "-L", "payload", "-d"])
        .arg(payload)
        .arg(disk)
        .arg(format!("{}M", used + used / 5 + 64))
        .output()
        .map_err(fail)?;
    if !out.status.success() {
        return Err(VmError(format!(
            "mke2fs -d of the payload failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}

/// The initramfs tree: static busybox, the virtio modules and their order, the init.
fn initrd_tree(root: &EngineRoot, work: &Path) -> Result<PathBuf, VmError> {
    let tree = work.join("initrd");
    std::fs::create_dir_all(tree.join("bin")).map_err(fail)?;
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .ok_or_else(|| {
            VmError("busybox is not installed (Debian package busybox-static)".into())
        })?;
    std::fs::copy(busybox, tree.join("bin/busybox")).map_err(fail)?;
    std::os::unix::fs::symlink("busybox", tree.join("bin/sh")).map_err(fail)?;
    let modules = tree.join("modules");
    std::fs::create_dir_all(&modules).map_err(fail)?;
    for e in std::fs::read_dir(&root.modules).map_err(fail)?.flatten() {
        std::fs::copy(e.path(), modules.join(e.file_name())).map_err(fail)?;
    }
    let init = tree.join("init");
    std::fs::write(&init, INITRD_INIT).map_err(fail)?;
    std::fs::set_permissions(&init, std::fs::Permissions::from_mode(0o755)).map_err(fail)?;
    Ok(tree)
}
