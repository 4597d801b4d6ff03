//! The sandbox's file system, built in its own mount namespace before `pivot_root`.
//!
//! Every path inside the rootfs is resolved as if the rootfs were `/` (`openat2` with
//! `RESOLVE_IN_ROOT`): an absolute symlink in the rootfs (`/data -> /etc`) points into the
//! rootfs, `..` stops at its top, and magic links (`/proc/self/root`) are refused. Mount points
//! are created through the descriptor of their parent and mounted on through
//! `/proc/self/fd/<n>`, so nothing outside the rootfs is created or mounted on. The rootfs is
//! made read-only (recursively) once its mount points exist; read-only maps are read-only
//! recursively too (`mount_setattr` with `AT_RECURSIVE`), so a file system mounted below a
//! map's source on the host (a NAS under `share`) is read-only inside as well, and writable
//! maps are `noexec` all the way down.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::mount::{MsFlags, mount};
use nix::sys::stat::{Mode, mkdirat};

use super::init::{Step, step};
use super::{BASE_DEVICES, NativeSpec};
use crate::launch::checked_path::fd_path;

/// The rootfs, open; paths given to it are paths inside the sandbox (`/data`).
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

fn in_root(flags: OFlag) -> OpenHow {
    OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
}

impl Root {
    pub fn open(path: &Path) -> Step<Root> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(step(&format!("open the rootfs {}", path.display())))?;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
        })
    }

    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// `path` inside the root, as an `O_PATH` descriptor of whatever is mounted on top there.
    pub fn resolve(&self, path: &str) -> nix::Result<OwnedFd> {
        let relative = path.trim_start_matches('/');
        let relative = if relative.is_empty() { "." } else { relative };
        openat2(self.fd.as_fd(), relative, in_root(OFlag::O_PATH))
    }

    /// `path` inside the root, created when missing: directories, and the last component an
    /// empty file when `file`. Each missing component is made in the descriptor of its parent,
    /// by a name without a slash, so no symlink is followed while creating.
    pub fn ensure(&self, path: &str, file: bool) -> Step<OwnedFd> {
        let what = |e: Errno| format!("mount point {path} in {}: {e}", self.path.display());
        let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        for depth in 1..=components.len() {
            let prefix = components[..depth].join("/");
            match self.resolve(&prefix) {
                Ok(_) => continue,
                Err(Errno::ENOENT) => {}
                Err(e) => return Err(what(e)),
            }
            let parent = self
                .resolve(&components[..depth - 1].join("/"))
                .map_err(what)?;
            let name = components[depth - 1];
            if file && depth == components.len() {
                openat(
                    parent.as_fd(),
                    name,
                    OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o644),
                )
                .map_err(what)?;
            } else {
                // EEXIST here is a dangling symlink: refused rather than followed.
                mkdirat(parent.as_fd(), name, Mode::from_bits_truncate(0o755)).map_err(what)?;
            }
        }
        self.resolve(path).map_err(what)
    }
}

/// `struct mount_attr` of `mount_setattr(2)`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

pub const ATTR_RDONLY: u64 = 0x1;
pub const ATTR_NOSUID: u64 = 0x2;
pub const ATTR_NODEV: u64 = 0x4;
pub const ATTR_NOEXEC: u64 = 0x8;

/// Set `attrs` on the mount at `fd` and on every mount below it.
pub fn set_recursively(fd: &OwnedFd, attrs: u64, what: &str) -> Step<()> {
    let attr = MountAttr {
        attr_set: attrs,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let empty = CString::default();
    // SAFETY: a valid descriptor, an empty NUL-terminated path, and a mount_attr of the size
    // given.
    let rc = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            empty.as_ptr(),
            nix::libc::AT_EMPTY_PATH | nix::libc::AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc < 0 {
        return Err(format!("{what}: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Bind `source` (a host path) at `target` inside the root, with everything mounted below it,
/// then set `attrs` on all of those mounts.
pub fn bind(root: &Root, source: &Path, target: &str, file: bool, attrs: u64) -> Step<()> {
    let point = root.ensure(target, file)?;
    mount(
        Some(source),
        &fd_path(&point),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(step(&format!("bind {} at {target}", source.display())))?;
    if attrs != 0 {
        // Resolved again: `point` is the directory under the new mount, this is its top.
        let mounted = root.resolve(target).map_err(step(target))?;
        set_recursively(&mounted, attrs, &format!("set the attributes of {target}"))?;
    }
    Ok(())
}

/// Mount a fresh file system of type `fstype` at `target` inside the root.
pub fn mount_fs(
    root: &Root,
    fstype: &str,
    target: &str,
    flags: MsFlags,
    data: Option<&str>,
) -> Step<()> {
    let point = root.ensure(target, false)?;
    mount(Some(fstype), &fd_path(&point), Some(fstype), flags, data)
        .map_err(step(&format!("mount {fstype} at {target}")))
}

/// What Docker hides in `/proc` and `/sys` (moby's `oci/defaults.go`, as Docker 28 shows it in
/// `docker inspect`), and `/proc/kallsyms`: kernel addresses, keys, timers, firmware. Files are
/// covered by `/dev/null`, directories by an empty read-only tmpfs.
pub const MASKED: [&str; 13] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/kallsyms",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// What Docker makes read-only in `/proc`.
pub const READ_ONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Mask and protect the paths above (those this kernel has), plus each CPU's
/// `thermal_throttle` directory as Docker does.
pub fn mask_paths(root: &Root) -> Step<()> {
    let cpus = root.resolve("/sys/devices/system/cpu").ok().map(|dir| {
        std::fs::read_dir(fd_path(&dir))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| {
                n.strip_prefix("cpu")
                    .is_some_and(|d| d.parse::<u32>().is_ok())
            })
            .map(|n| format!("/sys/devices/system/cpu/{n}/thermal_throttle"))
            .collect::<Vec<_>>()
    });
    let masked = MASKED
        .iter()
        .map(|p| (*p).to_owned())
        .chain(cpus.into_iter().flatten());
    for path in masked {
        let Ok(fd) = root.resolve(&path) else {
            continue;
        };
        let is_dir = nix::sys::stat::fstat(fd.as_fd())
            .map(|s| s.st_mode & nix::libc::S_IFMT == nix::libc::S_IFDIR)
            .map_err(step(&path))?;
        let result = if is_dir {
            mount(
                Some("tmpfs"),
                &fd_path(&fd),
                Some("tmpfs"),
                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                Some("mode=555"),
            )
        } else {
            mount(
                Some("/dev/null"),
                &fd_path(&fd),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
        };
        result.map_err(step(&format!("mask {path}")))?;
    }
    for path in READ_ONLY {
        if let Ok(fd) = root.resolve(path) {
            bind(
                root,
                &fd_path(&fd),
                path,
                false,
                ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV | ATTR_NOEXEC,
            )?;
        }
    }
    Ok(())
}

fn nosuid_nodev_noexec() -> MsFlags {
    MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC
}

/// The sandbox's whole file system under the rootfs `root_path` (canonical), ready for
/// `pivot_root`. The caller has made every mount private.
pub fn build(spec: &NativeSpec, root_path: &Path) -> Step<()> {
    let self_bind = Path::new(root_path);
    mount(
        Some(self_bind),
        self_bind,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(step("bind the rootfs to itself"))?;
    let root = Root::open(root_path)?;
    // Every mount point while the rootfs can still be written to, then the rootfs read-only,
    // with whatever the host had mounted below it.
    for m in &spec.mounts {
        root.ensure(&m.target, m.file)?;
    }
    for dir in ["/proc", "/sys", "/dev", "/tmp"] {
        root.ensure(dir, false)?;
    }
    set_recursively(
        root.fd(),
        ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV,
        "make the rootfs read-only",
    )?;
    bind_plan_mounts(spec, &root)?;
    mount_proc_and_sys(spec, &root)?;
    mask_paths(&root)?;
    mount_dev(spec, &root)?;
    mount_fs(
        &root,
        "tmpfs",
        "/tmp",
        nosuid_nodev_noexec(),
        Some("mode=1777"),
    )
}

/// The plan's mounts at their targets: read-only ones `ro,nosuid,nodev`, writable ones
/// `nosuid,nodev,noexec`, each on every mount below the source as well.
fn bind_plan_mounts(spec: &NativeSpec, root: &Root) -> Step<()> {
    for m in &spec.mounts {
        let attrs = if m.read_only {
            ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV
        } else {
            // Writable is never executable (sockets aside: they are files, not code).
            ATTR_NOSUID | ATTR_NODEV | ATTR_NOEXEC
        };
        match &m.checked_from {
            Some(from) => {
                let checked = open_checked(from, &m.source)?;
                bind(root, &fd_path(&checked), &m.target, m.file, attrs)?;
            }
            None => bind(root, Path::new(&m.source), &m.target, m.file, attrs)?,
        }
    }
    Ok(())
}

/// `path` reached from `from` without following a link, in this (the sandbox's) mount
/// namespace: the launcher checked it the same way, and binding this descriptor binds exactly
/// what was checked now (a mount can only be bound from a descriptor of the caller's own
/// namespace, so the launcher's descriptor cannot be used directly).
fn open_checked(from: &str, path: &str) -> Step<OwnedFd> {
    crate::launch::checked_path::open_beneath(Path::new(from), Path::new(path))
        .map_err(|e| format!("mount source: {e}"))
}

/// `/proc`, and `/sys` read-only: a new sysfs with a network namespace of its own, else the
/// host's bound (with its submounts, all read-only).
fn mount_proc_and_sys(spec: &NativeSpec, root: &Root) -> Step<()> {
    mount_fs(root, "proc", "/proc", nosuid_nodev_noexec(), None)?;
    if spec.new_net {
        mount_fs(
            root,
            "sysfs",
            "/sys",
            nosuid_nodev_noexec() | MsFlags::MS_RDONLY,
            None,
        )
    } else {
        bind(
            root,
            Path::new("/sys"),
            "/sys",
            false,
            ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV | ATTR_NOEXEC,
        )
    }
}

/// A `/dev` tmpfs with only the base and granted nodes, the standard links, and `/dev/shm`.
fn mount_dev(spec: &NativeSpec, root: &Root) -> Step<()> {
    mount_fs(
        root,
        "tmpfs",
        "/dev",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("mode=755,size=65536k"),
    )?;
    for node in BASE_DEVICES {
        bind(root, Path::new(node), node, true, 0)?;
    }
    for node in &spec.devices {
        // Reached without following a link, as the launcher checked it; a device entry may be
        // a directory of nodes (`/dev/dvb/`).
        let checked = open_checked("/", node)?;
        let is_dir = nix::sys::stat::fstat(checked.as_fd())
            .is_ok_and(|st| st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFDIR);
        bind(root, &fd_path(&checked), node, !is_dir, 0)?;
    }
    let dev = root.resolve("/dev").map_err(step("/dev"))?;
    for (link, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        nix::unistd::symlinkat(to, dev.as_fd(), link).map_err(step("/dev links"))?;
    }
    mount_fs(
        root,
        "tmpfs",
        "/dev/shm",
        nosuid_nodev_noexec(),
        Some("mode=1777"),
    )
}
