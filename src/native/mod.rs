//! The native backend: the same `SandboxPlan` as a confined process, without a container engine.
//!
//! `spec` translates the plan into a [`NativeSpec`] (pure). `start` hands the spec to a fresh
//! copy of this binary (`addon-sandbox __native-init`, see [`init`]), which is single-threaded
//! and so may fork and set up namespaces safely: it unshares, forks the sandbox's first process,
//! and reports either the pid (the exec succeeded) or the step that failed. The sandbox is then
//! a detached process whose pid and start time are recorded in the state directory; `ps`, `stop`
//! and `rm` find it there.
//!
//! Confinement: the plan's AppArmor profile when the host enforces AppArmor, otherwise a
//! Landlock ruleset derived from the same plan, otherwise refusal; `--confinement` chooses.

pub mod init;
pub mod landlock_rules;
pub mod mounts;
pub mod run;
pub mod seccomp;
mod seccomp_numbers;
pub mod seccomp_table;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::plan::{MountKind, SandboxPlan};

#[derive(Debug, thiserror::Error)]
pub enum NativeError {
    #[error("rootfs {0} is not a directory")]
    BadRootfs(PathBuf),
    #[error("mount source {0} does not exist")]
    MissingSource(String),
    #[error("the plan cannot run natively: {0}")]
    Unsupported(String),
    #[error("this host cannot confine the add-on as asked ({0})")]
    CannotConfine(String),
    #[error("sandbox setup failed: {0}")]
    Setup(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What `--confinement` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfinementChoice {
    Apparmor,
    Landlock,
    Any,
    None,
}

/// What the sandbox will run under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Confinement {
    /// The named AppArmor profile, applied on exec.
    Apparmor(String),
    Landlock,
    None,
}

impl Confinement {
    pub fn label(&self) -> String {
        match self {
            Confinement::Apparmor(name) => format!("apparmor:{name}"),
            Confinement::Landlock => "landlock".into(),
            Confinement::None => "unconfined".into(),
        }
    }
}

/// `any`: AppArmor if the host enforces it, else Landlock if the kernel has it, else refuse.
pub fn choose(
    choice: ConfinementChoice,
    profile: Option<&str>,
    apparmor_enforced: bool,
    landlock_abi: u32,
) -> Result<Confinement, NativeError> {
    let apparmor = || match (profile, apparmor_enforced) {
        (Some(name), true) => Ok(Confinement::Apparmor(name.to_owned())),
        (None, _) => Err(NativeError::CannotConfine(
            "the plan has no AppArmor profile".into(),
        )),
        (_, false) => Err(NativeError::CannotConfine(
            "the kernel does not enforce AppArmor".into(),
        )),
    };
    let landlock = || {
        if landlock_abi >= 1 {
            Ok(Confinement::Landlock)
        } else {
            Err(NativeError::CannotConfine(
                "the kernel has no Landlock".into(),
            ))
        }
    };
    match choice {
        ConfinementChoice::Apparmor => apparmor(),
        ConfinementChoice::Landlock => landlock(),
        ConfinementChoice::Any => apparmor().or_else(|_| landlock()).map_err(|_| {
            NativeError::CannotConfine("neither AppArmor is enforced nor Landlock present".into())
        }),
        ConfinementChoice::None => Ok(Confinement::None),
    }
}

/// The kernel's Landlock ABI version, 0 without Landlock.
pub fn landlock_abi() -> u32 {
    // landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)
    let version =
        unsafe { nix::libc::syscall(nix::libc::SYS_landlock_create_ruleset, 0usize, 0usize, 1u32) };
    u32::try_from(version).unwrap_or(0)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    pub source: String,
    pub target: String,
    pub read_only: bool,
    /// A single file (a socket, say) rather than a directory.
    pub file: bool,
    /// The folder the launcher reached `source` from without following a link: the sandbox's
    /// setup walks it again the same way, in its own mount namespace, and binds the descriptor
    /// it got, so what is bound is what was checked (a link planted after the launcher's check
    /// is refused, not followed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_from: Option<String>,
}

/// Everything the init helper needs, and nothing it has to decide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NativeSpec {
    pub rootfs: PathBuf,
    pub hostname: String,
    pub new_net: bool,
    pub new_pid: bool,
    pub new_ipc: bool,
    pub new_uts: bool,
    pub mounts: Vec<MountSpec>,
    /// Device nodes bound from the host at the same path.
    pub devices: Vec<String>,
    /// Capability names, e.g. `NET_ADMIN`: every set is reduced to exactly these.
    pub capabilities: Vec<String>,
    /// (name, soft, hard) as Docker's ulimits; negative is unlimited.
    #[serde(default)]
    pub ulimits: Vec<(String, i64, i64)>,
    pub env: Vec<(String, String)>,
    pub command: Vec<String>,
    pub confinement: Confinement,
    /// Standard output and error of the sandbox.
    pub log: PathBuf,
}

impl NativeSpec {
    /// Marks every mount whose source the launcher checked with the folder it was reached
    /// from: the setup walks it again the same way and binds the descriptor it gets.
    pub fn bind_checked(&mut self, sources: &crate::launch::CheckedSources) {
        for m in &mut self.mounts {
            m.checked_from = sources
                .mounts
                .iter()
                .find(|c| c.path == m.source)
                .map(|c| c.from.to_string_lossy().into_owned());
        }
    }
}

/// The nodes every sandbox gets in its own `/dev`, as a container runtime gives them.
pub const BASE_DEVICES: [&str; 6] = [
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
];

/// Plan → spec. Pure; refuses what this backend cannot deliver rather than delivering less.
#[allow(clippy::too_many_arguments)]
pub fn spec(
    plan: &SandboxPlan,
    rootfs: &Path,
    command: Vec<String>,
    token: &str,
    timezone: &str,
    confinement: Confinement,
    log: PathBuf,
) -> Result<NativeSpec, NativeError> {
    if plan.ipc_mode.as_deref() == Some("host") {
        return Err(NativeError::Unsupported(
            "the host IPC namespace is not offered natively".into(),
        ));
    }
    if plan.mounts.iter().any(|m| m.kind == MountKind::Devices) {
        return Err(NativeError::Unsupported(
            "the host's whole /dev (full device access) is not offered natively: grant single devices instead".into(),
        ));
    }
    let mounts = plan
        .mounts
        .iter()
        .map(|m| MountSpec {
            source: m.source.clone(),
            target: m.target.clone(),
            read_only: m.read_only,
            file: matches!(m.kind, MountKind::File | MountKind::Socket),
            checked_from: None,
        })
        .collect();
    let mut env: Vec<(String, String)> = plan.environment.clone();
    env.push((
        "PATH".into(),
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
    ));
    env.push(("TZ".into(), timezone.to_owned()));
    env.push(("SUPERVISOR_TOKEN".into(), token.to_owned()));
    env.push(("HASSIO_TOKEN".into(), token.to_owned()));
    if command.is_empty() {
        return Err(NativeError::Unsupported(
            "the native backend needs --command (a rootfs has no image configuration)".into(),
        ));
    }
    Ok(NativeSpec {
        rootfs: rootfs.to_path_buf(),
        hostname: plan
            .hostname
            .clone()
            .unwrap_or_else(|| plan.container_name.replace('_', "-")),
        new_net: plan.network_mode != "host",
        new_pid: plan.pid_mode.as_deref() != Some("host"),
        new_ipc: true,
        new_uts: plan.uts_mode.as_deref() != Some("host"),
        mounts,
        devices: plan
            .devices
            .iter()
            .map(|d| d.path_on_host.clone())
            .collect(),
        capabilities: plan.cap_add.clone(),
        ulimits: plan
            .ulimits
            .iter()
            .map(|u| (u.name.clone(), u.soft, u.hard))
            .collect(),
        env,
        command,
        confinement,
        log,
    })
}

/// Checks that need no privileges and change nothing, so most mistakes are reported before
/// anything is set up.
pub fn preflight(spec: &NativeSpec) -> Result<(), NativeError> {
    if !spec.rootfs.is_dir() {
        return Err(NativeError::BadRootfs(spec.rootfs.clone()));
    }
    for m in &spec.mounts {
        if std::fs::symlink_metadata(&m.source).is_err() {
            return Err(NativeError::MissingSource(m.source.clone()));
        }
    }
    for d in spec.devices.iter().map(String::as_str).chain(BASE_DEVICES) {
        if std::fs::metadata(d).is_err() {
            return Err(NativeError::MissingSource(d.to_owned()));
        }
    }
    Ok(())
}

/// What the init helper prints on its standard output: one JSON line.
#[derive(Debug, Serialize, Deserialize)]
pub struct InitReport {
    pub pid: Option<i32>,
    pub error: Option<String>,
}

fn single_threaded() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.split_whitespace().eq(["Threads:", "1"]))
    })
}

/// Start the sandbox; its pid once the command is executing. A single-threaded caller (the
/// command line) forks the setup directly; any other re-executes this binary as
/// `__native-init` first, because forking a threaded process is not safe.
pub fn start(spec: &NativeSpec) -> Result<i32, NativeError> {
    preflight(spec)?;
    if single_threaded() {
        start_forked(spec)
    } else {
        start_helper(spec)
    }
}

fn start_forked(spec: &NativeSpec) -> Result<i32, NativeError> {
    use nix::unistd::{ForkResult, fork};
    let (read_end, write_end) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)?;
    // SAFETY: checked above that this process has one thread.
    match unsafe { fork() }.map_err(std::io::Error::from)? {
        ForkResult::Child => {
            drop(read_end);
            let report = match init::parent(spec) {
                Ok(pid) => InitReport {
                    pid: Some(pid),
                    error: None,
                },
                Err(error) => InitReport {
                    pid: None,
                    error: Some(error),
                },
            };
            let mut pipe = std::fs::File::from(write_end);
            let _ = std::io::Write::write_all(
                &mut pipe,
                serde_json::to_string(&report)
                    .unwrap_or_default()
                    .as_bytes(),
            );
            drop(pipe);
            // SAFETY: leave without running the parent's destructors twice.
            unsafe { nix::libc::_exit(i32::from(report.error.is_some())) }
        }
        ForkResult::Parent { child } => {
            drop(write_end);
            let mut out = String::new();
            std::fs::File::from(read_end).read_to_string(&mut out)?;
            let _ = nix::sys::wait::waitpid(child, None);
            interpret(&out, "the setup process")
        }
    }
}

fn interpret(out: &str, who: &str) -> Result<i32, NativeError> {
    let report: InitReport = serde_json::from_str(out.trim())
        .map_err(|_| NativeError::Setup(format!("{who} said nothing useful")))?;
    match (report.pid, report.error) {
        (Some(pid), None) => Ok(pid),
        (_, Some(error)) => Err(NativeError::Setup(error)),
        _ => Err(NativeError::Setup(format!("{who} failed"))),
    }
}

fn start_helper(spec: &NativeSpec) -> Result<i32, NativeError> {
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .arg("__native-init")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let json = serde_json::to_vec(spec).map_err(std::io::Error::other)?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin.write_all(&json)?;
    }
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("piped stdout")
        .read_to_string(&mut out)?;
    child.wait()?;
    interpret(&out, "the init helper")
}

/// `/proc/<pid>/stat` field 22: when the process started, in clock ticks after boot. With the
/// pid it names one process for good (pids are reused, start times with them are not).
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// `native:<pid>:<start time>`: the record's container id for a native sandbox.
pub fn record_id(pid: i32) -> String {
    format!("native:{pid}:{}", start_time(pid).unwrap_or(0))
}

/// The live pid a record id names, if that very process still runs (and is not a zombie).
pub fn live_pid(record_id: &str) -> Option<i32> {
    let mut parts = record_id.strip_prefix("native:")?.split(':');
    let pid: i32 = parts.next()?.parse().ok()?;
    let started: u64 = parts.next()?.parse().ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let state = stat[stat.rfind(')')? + 2..].split(' ').next()?.to_owned();
    (start_time(pid) == Some(started) && state != "Z").then_some(pid)
}

/// How long a process may take to go after SIGKILL. One that outlives this is stuck in the
/// kernel (uninterruptible sleep on a dead file system, say): waiting longer would hang
/// `stop` and `rm` for ever.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// What [`stop`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Stopped {
    /// The record's process was not running.
    NotRunning,
    /// It ran and has ended.
    Ended,
    /// It still runs after SIGTERM, `grace`, SIGKILL and [`KILL_WAIT`]: pid given.
    StillRunning(i32),
}

/// SIGTERM, then SIGKILL after `grace`: the sandbox is PID 1 of its namespace, which ignores
/// signals it has no handler for, so the second is often needed. Its mounts go with it.
pub fn stop(record_id: &str, grace: Duration) -> Stopped {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let Some(pid) = live_pid(record_id) else {
        return Stopped::NotRunning;
    };
    let gone = || live_pid(record_id).is_none();
    let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    if wait_until(gone, grace, Duration::from_millis(20)) {
        return Stopped::Ended;
    }
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    if wait_until(gone, KILL_WAIT, Duration::from_millis(10)) {
        Stopped::Ended
    } else {
        Stopped::StillRunning(pid)
    }
}

/// Whether `done` became true within `limit`, asking every `every`.
fn wait_until(done: impl Fn() -> bool, limit: Duration, every: Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(every);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_for_a_process_is_bounded() {
        let start = std::time::Instant::now();
        assert!(!wait_until(
            || false,
            Duration::from_millis(50),
            Duration::from_millis(5)
        ));
        assert!(start.elapsed() >= Duration::from_millis(50));
        assert!(wait_until(|| true, Duration::ZERO, Duration::from_secs(60)));
        let calls = std::cell::Cell::new(0);
        let third = || {
            calls.set(calls.get() + 1);
            calls.get() == 3
        };
        assert!(wait_until(
            third,
            Duration::from_secs(5),
            Duration::from_millis(1)
        ));
        assert_eq!(calls.get(), 3);
    }

    #[test]
    fn stopping_a_record_whose_process_is_gone() {
        // A pid that cannot be ours with a start time it never had.
        assert_eq!(
            stop("native:999999999:1", Duration::ZERO),
            Stopped::NotRunning
        );
    }
}
