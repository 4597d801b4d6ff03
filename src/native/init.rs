//! `addon-sandbox __native-init`: reads a [`NativeSpec`] on standard input, builds the sandbox
//! and execs the command in it. It runs as a fresh single-threaded process so that `fork` after
//! `unshare` is safe.
//!
//! The parent half unshares the namespaces and forks; the child (PID 1 of a new PID namespace)
//! does the rest in this order, each step checked, any failure reported through a close-on-exec
//! pipe and fatal: mounts made private; the rootfs bound to itself; the plan's mounts bound at
//! their targets (read-only ones remounted read-only; writable ones `nosuid,nodev,noexec`);
//! `/proc`, `/sys` (read-only), a `/dev` tmpfs with only the base and granted nodes, `/dev/shm`
//! and `/tmp` as tmpfs; the rootfs remounted read-only; `pivot_root`; loopback up; hostname;
//! capabilities reduced to the plan's in every set; `no_new_privs`; the AppArmor exec label or
//! the Landlock ruleset; exec. A successful exec closes the pipe with nothing written: the
//! parent then prints the pid and exits, leaving the sandbox to run on its own. Everything the
//! child mounted lives in its own mount namespace and disappears with it.

use std::convert::Infallible;
use std::ffi::CString;
use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};
use nix::unistd::{ForkResult, chdir, dup2_stderr, dup2_stdin, dup2_stdout, fork, pivot_root};

use super::{BASE_DEVICES, Confinement, InitReport, NativeSpec, preflight};

type Step<T> = Result<T, String>;

fn step<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> String + '_ {
    move |e| format!("{what}: {e}")
}

fn report(r: &InitReport) {
    println!("{}", serde_json::to_string(r).unwrap_or_default());
    let _ = std::io::stdout().flush();
}

/// The helper's whole life; returns its exit status.
pub fn main() -> u8 {
    let mut input = String::new();
    let spec: NativeSpec = match std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| e.to_string())
        .and_then(|_| serde_json::from_str(&input).map_err(|e| e.to_string()))
    {
        Ok(spec) => spec,
        Err(e) => {
            report(&InitReport {
                pid: None,
                error: Some(format!("bad sandbox spec: {e}")),
            });
            return 1;
        }
    };
    match parent(&spec) {
        Ok(pid) => {
            report(&InitReport {
                pid: Some(pid),
                error: None,
            });
            0
        }
        Err(error) => {
            report(&InitReport {
                pid: None,
                error: Some(error),
            });
            1
        }
    }
}

/// Unshare, fork the sandbox, and wait until its exec succeeded (its pid) or a step failed.
/// The calling process must have a single thread.
pub fn parent(spec: &NativeSpec) -> Step<i32> {
    preflight(spec).map_err(|e| e.to_string())?;
    let mut flags = CloneFlags::CLONE_NEWNS;
    for (wanted, flag) in [
        (spec.new_net, CloneFlags::CLONE_NEWNET),
        (spec.new_pid, CloneFlags::CLONE_NEWPID),
        (spec.new_ipc, CloneFlags::CLONE_NEWIPC),
        (spec.new_uts, CloneFlags::CLONE_NEWUTS),
    ] {
        if wanted {
            flags |= flag;
        }
    }
    unshare(flags).map_err(step(
        "unshare the mount, network, PID, IPC and UTS namespaces",
    ))?;
    let (read_end, write_end) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(step("pipe"))?;
    // SAFETY: this process has one thread (a fresh exec of this binary that started none).
    match unsafe { fork() }.map_err(step("fork"))? {
        ForkResult::Child => {
            drop(read_end);
            let Err(error) = child(spec);
            let mut pipe = fs::File::from(write_end);
            let _ = pipe.write_all(error.as_bytes());
            drop(pipe);
            // SAFETY: leaving without running the parent's atexit handlers or destructors.
            unsafe { nix::libc::_exit(1) }
        }
        ForkResult::Parent { child } => {
            drop(write_end);
            let mut error = String::new();
            let _ = fs::File::from(read_end).read_to_string(&mut error);
            if error.is_empty() {
                Ok(child.as_raw())
            } else {
                let _ = nix::sys::wait::waitpid(child, None);
                Err(error)
            }
        }
    }
}

fn bind(source: &Path, target: &Path, flags: MsFlags) -> Step<()> {
    let what = format!("bind {} at {}", source.display(), target.display());
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(step(&what))?;
    if !flags.is_empty() {
        mount(
            None::<&str>,
            target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags,
            None::<&str>,
        )
        .map_err(step(&format!("remount {} ({flags:?})", target.display())))?;
    }
    Ok(())
}

fn mount_fs(fstype: &str, target: &Path, flags: MsFlags, data: Option<&str>) -> Step<()> {
    fs::create_dir_all(target).map_err(step(&format!("create {}", target.display())))?;
    mount(Some(fstype), target, Some(fstype), flags, data)
        .map_err(step(&format!("mount {fstype} at {}", target.display())))
}

/// Make sure `target` exists to mount on: a directory, or an empty file for a file mount.
fn mountpoint(target: &Path, file: bool) -> Step<()> {
    if file {
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(step(&format!("create {}", parent.display())))?;
        }
        if fs::symlink_metadata(target).is_err() {
            fs::File::create(target).map_err(step(&format!("create {}", target.display())))?;
        }
        Ok(())
    } else {
        fs::create_dir_all(target).map_err(step(&format!("create {}", target.display())))
    }
}

fn inside(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

fn child(spec: &NativeSpec) -> Result<Infallible, String> {
    detach_and_redirect(spec)?;
    make_mounts_private()?;
    let root = fs::canonicalize(&spec.rootfs).map_err(step("rootfs"))?;
    bind(&root, &root, MsFlags::empty())?;
    bind_plan_mounts(spec, &root)?;
    mount_proc_and_sys(spec, &root)?;
    mount_dev(spec, &root)?;
    mount_fs(
        "tmpfs",
        &inside(&root, "/tmp"),
        nosuid_nodev_noexec(),
        Some("mode=1777"),
    )?;
    remount_rootfs_read_only(&root)?;
    pivot_into(&root)?;

    if spec.new_net {
        loopback_up()?;
    }
    if spec.new_uts {
        nix::unistd::sethostname(&spec.hostname).map_err(step("sethostname"))?;
    }
    confine_and_exec(spec)
}

fn nosuid_nodev_noexec() -> MsFlags {
    MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC
}

/// A session of its own, standard input from `/dev/null`, output to the log.
fn detach_and_redirect(spec: &NativeSpec) -> Step<()> {
    nix::unistd::setsid().map_err(step("setsid"))?;
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&spec.log)
        .map_err(step("open the log"))?;
    let null = fs::File::open("/dev/null").map_err(step("open /dev/null"))?;
    dup2_stdin(&null).map_err(step("stdin"))?;
    dup2_stdout(&log).map_err(step("stdout"))?;
    dup2_stderr(&log).map_err(step("stderr"))?;
    Ok(())
}

/// Nothing mounted from here on may reach the host's mount table.
fn make_mounts_private() -> Step<()> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(step("make mounts private"))
}

/// The plan's mounts at their targets: read-only ones `ro,nosuid,nodev`, writable ones
/// `nosuid,nodev,noexec`.
fn bind_plan_mounts(spec: &NativeSpec, root: &Path) -> Step<()> {
    for m in &spec.mounts {
        let target = inside(root, &m.target);
        mountpoint(&target, m.file)?;
        let flags = if m.read_only {
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV
        } else {
            // Writable is never executable (sockets aside: they are files, not code).
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC
        };
        bind(Path::new(&m.source), &target, flags)?;
    }
    Ok(())
}

/// `/proc`, and `/sys` read-only: a new sysfs with a network namespace of its own, else the
/// host's bound.
fn mount_proc_and_sys(spec: &NativeSpec, root: &Path) -> Step<()> {
    let nosuid_nodev_noexec = nosuid_nodev_noexec();
    mount_fs("proc", &inside(root, "/proc"), nosuid_nodev_noexec, None)?;
    if spec.new_net {
        mount_fs(
            "sysfs",
            &inside(root, "/sys"),
            nosuid_nodev_noexec | MsFlags::MS_RDONLY,
            None,
        )?;
    } else {
        let sys = inside(root, "/sys");
        mountpoint(&sys, false)?;
        bind(
            Path::new("/sys"),
            &sys,
            nosuid_nodev_noexec | MsFlags::MS_RDONLY,
        )?;
    }
    Ok(())
}

/// A `/dev` tmpfs with only the base and granted nodes, the standard links, and `/dev/shm`.
fn mount_dev(spec: &NativeSpec, root: &Path) -> Step<()> {
    let dev = inside(root, "/dev");
    mount(
        Some("tmpfs"),
        &{
            fs::create_dir_all(&dev).map_err(step("create /dev"))?;
            dev.clone()
        },
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("mode=755,size=65536k"),
    )
    .map_err(step("mount tmpfs at /dev"))?;
    for node in BASE_DEVICES
        .iter()
        .copied()
        .chain(spec.devices.iter().map(String::as_str))
    {
        let target = inside(root, node);
        // A device entry may be a directory of nodes (`/dev/dvb/`).
        mountpoint(&target, !Path::new(node).is_dir())?;
        bind(Path::new(node), &target, MsFlags::empty())?;
    }
    for (link, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(to, dev.join(link)).map_err(step("/dev links"))?;
    }
    mount_fs(
        "tmpfs",
        &inside(root, "/dev/shm"),
        nosuid_nodev_noexec(),
        Some("mode=1777"),
    )
}

/// The rootfs is a directory on the host, shared by every run: read-only inside.
fn remount_rootfs_read_only(root: &Path) -> Step<()> {
    mount(
        None::<&str>,
        root,
        None::<&str>,
        MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV,
        None::<&str>,
    )
    .map_err(step("remount the rootfs read-only"))
}

/// The rootfs becomes `/`, and the old root is detached.
fn pivot_into(root: &Path) -> Step<()> {
    chdir(root).map_err(step("chdir to the rootfs"))?;
    pivot_root(".", ".").map_err(step("pivot_root"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(step("detach the old root"))?;
    chdir("/").map_err(step("chdir /"))?;
    Ok(())
}

/// The last steps, in this order: limits, capabilities, `no_new_privs`, the AppArmor exec label
/// or the Landlock ruleset, exec. Returns only on failure.
fn confine_and_exec(spec: &NativeSpec) -> Result<Infallible, String> {
    let (program, argv, envp) = exec_args(spec)?;
    let landlock = if spec.confinement == Confinement::Landlock {
        // Opened now, while every path can still be read; applied last.
        Some(super::landlock_rules::prepare(spec)?)
    } else {
        None
    };
    // Before the capabilities go: raising a hard limit needs CAP_SYS_RESOURCE.
    set_ulimits(&spec.ulimits)?;
    reduce_capabilities(&spec.capabilities)?;
    nix::sys::prctl::set_no_new_privs().map_err(step("no_new_privs"))?;
    if let Confinement::Apparmor(name) = &spec.confinement {
        apparmor_exec(name)?;
    }
    if let Some(ruleset) = landlock {
        super::landlock_rules::restrict(ruleset)?;
    }
    let Err(e) = nix::unistd::execve(&program, &argv, &envp);
    Err(format!("exec {}: {e}", program.to_string_lossy()))
}

fn cstring(s: &str) -> Step<CString> {
    CString::new(s).map_err(|_| format!("{s:?} contains a NUL byte"))
}

/// The program (searched in the spec's `PATH` when it has no `/`), its arguments, and the
/// environment.
fn exec_args(spec: &NativeSpec) -> Step<(CString, Vec<CString>, Vec<CString>)> {
    let name = &spec.command[0];
    let program = if name.contains('/') {
        PathBuf::from(name)
    } else {
        let path = spec
            .env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map_or("/bin", |(_, v)| v.as_str());
        path.split(':')
            .map(|dir| Path::new(dir).join(name))
            .find(|p| p.is_file())
            .ok_or_else(|| format!("{name} is not in the rootfs's PATH ({path})"))?
    };
    let argv = spec
        .command
        .iter()
        .map(|a| cstring(a))
        .collect::<Step<Vec<_>>>()?;
    let envp = spec
        .env
        .iter()
        .map(|(k, v)| cstring(&format!("{k}={v}")))
        .collect::<Step<Vec<_>>>()?;
    Ok((cstring(&program.to_string_lossy())?, argv, envp))
}

/// Docker's ulimit names, as `setrlimit` resources.
fn set_ulimits(ulimits: &[(String, i64, i64)]) -> Step<()> {
    use nix::sys::resource::{RLIM_INFINITY, Resource, setrlimit};
    for (name, soft, hard) in ulimits {
        let resource = match name.as_str() {
            "core" => Resource::RLIMIT_CORE,
            "cpu" => Resource::RLIMIT_CPU,
            "data" => Resource::RLIMIT_DATA,
            "fsize" => Resource::RLIMIT_FSIZE,
            "locks" => Resource::RLIMIT_LOCKS,
            "memlock" => Resource::RLIMIT_MEMLOCK,
            "msgqueue" => Resource::RLIMIT_MSGQUEUE,
            "nice" => Resource::RLIMIT_NICE,
            "nofile" => Resource::RLIMIT_NOFILE,
            "nproc" => Resource::RLIMIT_NPROC,
            "rss" => Resource::RLIMIT_RSS,
            "rtprio" => Resource::RLIMIT_RTPRIO,
            "rttime" => Resource::RLIMIT_RTTIME,
            "sigpending" => Resource::RLIMIT_SIGPENDING,
            "stack" => Resource::RLIMIT_STACK,
            "as" => Resource::RLIMIT_AS,
            other => return Err(format!("unknown ulimit {other}")),
        };
        let limit = |v: i64| u64::try_from(v).unwrap_or(RLIM_INFINITY);
        setrlimit(resource, limit(*soft), limit(*hard)).map_err(step(&format!("ulimit {name}")))?;
    }
    Ok(())
}

/// Bounding, inheritable, ambient, effective and permitted: each exactly the plan's set.
fn reduce_capabilities(names: &[String]) -> Step<()> {
    use caps::{CapSet, Capability};
    let mut keep = caps::CapsHashSet::new();
    for name in names {
        let cap: Capability = format!("CAP_{name}")
            .parse()
            .map_err(|_| format!("unknown capability {name}"))?;
        keep.insert(cap);
    }
    for cap in caps::all() {
        if !keep.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap).map_err(step("drop from the bounding set"))?;
        }
    }
    caps::set(None, CapSet::Inheritable, &keep).map_err(step("set inheritable"))?;
    caps::clear(None, CapSet::Ambient).map_err(step("clear ambient"))?;
    for cap in &keep {
        caps::raise(None, CapSet::Ambient, *cap).map_err(step("raise ambient"))?;
    }
    caps::set(None, CapSet::Effective, &keep).map_err(step("set effective"))?;
    caps::set(None, CapSet::Permitted, &keep).map_err(step("set permitted"))?;
    Ok(())
}

/// Ask AppArmor to confine the next exec: `exec <name>` in the LSM-specific file, or the
/// generic one on older kernels.
fn apparmor_exec(name: &str) -> Step<()> {
    let line = format!("exec {name}");
    let mut last = String::new();
    for file in ["/proc/self/attr/apparmor/exec", "/proc/self/attr/exec"] {
        match OpenOptions::new().write(true).open(file) {
            Ok(mut f) => match f.write_all(line.as_bytes()) {
                Ok(()) => return Ok(()),
                Err(e) => last = format!("{file}: {e}"),
            },
            Err(e) => last = format!("{file}: {e}"),
        }
    }
    Err(format!("set the AppArmor exec profile {name}: {last}"))
}

/// A new network namespace has only `lo`, and it is down.
fn loopback_up() -> Step<()> {
    use nix::libc;
    // SAFETY: plain ioctls on a socket we own, with a zeroed ifreq naming "lo".
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(format!("socket: {}", std::io::Error::last_os_error()));
        }
        let fd: OwnedFd = std::os::fd::FromRawFd::from_raw_fd(fd);
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo".iter().enumerate() {
            ifr.ifr_name[i] = *b as libc::c_char;
        }
        if libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) < 0 {
            return Err(format!("lo flags: {}", std::io::Error::last_os_error()));
        }
        ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(fd.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) < 0 {
            return Err(format!("lo up: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}
