//! `addon-sandbox __native-init`: reads a [`NativeSpec`] on standard input, builds the sandbox
//! and execs the command in it. It runs as a fresh single-threaded process so that `fork` after
//! `unshare` is safe.
//!
//! The parent half unshares the namespaces and forks; the child (PID 1 of a new PID namespace)
//! does the rest in this order, each step checked, any failure reported through a close-on-exec
//! pipe and fatal: mounts made private; the file system built as [`super::mounts`] describes
//! (every path resolved inside the rootfs, the rootfs and read-only maps read-only recursively,
//! Docker's masked and read-only `/proc` and `/sys` paths); `pivot_root`; loopback up; hostname;
//! capabilities reduced to the plan's in every set; `no_new_privs`; the AppArmor exec label or
//! the Landlock ruleset; inherited descriptors closed on exec; the seccomp filter
//! ([`super::seccomp`]); exec. A successful exec closes the pipe with nothing written: the
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

use super::{Confinement, InitReport, NativeSpec, preflight};

pub(super) type Step<T> = Result<T, String>;

pub(super) fn step<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> String + '_ {
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

fn child(spec: &NativeSpec) -> Result<Infallible, String> {
    detach_and_redirect(spec)?;
    make_mounts_private()?;
    let root = fs::canonicalize(&spec.rootfs).map_err(step("rootfs"))?;
    super::mounts::build(spec, &root)?;
    pivot_into(&root)?;

    if spec.new_net {
        loopback_up()?;
    }
    if spec.new_uts {
        nix::unistd::sethostname(&spec.hostname).map_err(step("sethostname"))?;
    }
    confine_and_exec(spec)
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

/// The rootfs becomes `/`, and the old root is detached.
fn pivot_into(root: &Path) -> Step<()> {
    chdir(root).map_err(step("chdir to the rootfs"))?;
    pivot_root(".", ".").map_err(step("pivot_root"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(step("detach the old root"))?;
    chdir("/").map_err(step("chdir /"))?;
    Ok(())
}

/// The last steps, in this order: limits, capabilities, `no_new_privs`, the AppArmor exec label
/// or the Landlock ruleset, every inherited descriptor marked close-on-exec, the seccomp
/// filters, exec. Returns only on failure.
fn confine_and_exec(spec: &NativeSpec) -> Result<Infallible, String> {
    let (program, argv, envp) = exec_args(spec)?;
    // Built before anything is restricted; installed last, so that no setup step needs a call
    // the sandbox may not make.
    let seccomp = super::seccomp::compile(
        &spec.capabilities,
        std::env::consts::ARCH,
        super::seccomp::kernel_version(),
    )
    .map_err(|e| e.to_string())?;
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
    close_inherited()?;
    super::seccomp::apply(&seccomp).map_err(|e| e.to_string())?;
    let Err(e) = nix::unistd::execve(&program, &argv, &envp);
    Err(format!("exec {}: {e}", program.to_string_lossy()))
}

/// Nothing the launching process had open reaches the command: every descriptor above the
/// standard three is closed by the exec (marked rather than closed now, because the error pipe
/// must stay open until the exec has succeeded).
fn close_inherited() -> Step<()> {
    // SAFETY: close_range only changes descriptor flags; no memory is involved.
    let rc = unsafe { nix::libc::close_range(3, u32::MAX, nix::libc::CLOSE_RANGE_CLOEXEC as i32) };
    if rc < 0 {
        return Err(format!(
            "mark inherited descriptors close-on-exec: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
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
