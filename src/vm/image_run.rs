//! An add-on image's own init (s6-overlay's `/init`) booted in the VM under a compiled profile:
//! the image's filesystem is the initramfs, with the VM's own files kept apart under `/vm/`.
//! The VM's init loads the profile, starts `/init` confined in a PID namespace of its own (as
//! Docker does; s6's shutdown then signals only its own processes), waits for the add-on's
//! ready file, reads the label of the image's PID 1, sends it SIGTERM (what `docker stop`
//! sends), and once it has exited prints the kernel's AppArmor denials.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use super::boot::boot;
use super::{VmError, fail};

/// The VM's PID 1. The image's environment is given to `/init` alone (`env -i`).
const INIT: &str = r#"#!/vm/busybox sh
/vm/busybox mount -t proc proc /proc
/vm/busybox --install -s /vm/bin
export PATH=/vm/bin
mount -t sysfs sys /sys
mount -t securityfs securityfs /sys/kernel/security
mount -t devtmpfs dev /dev
# Without auditd, audit records reach the kernel log through printk: no rate limit.
echo 0 > /proc/sys/kernel/printk_ratelimit
mkdir -p /data /tmp /run
echo "AA $(cat /sys/module/apparmor/parameters/enabled)"
# The policy compiled on the host, written in one write as apparmor_parser -B does (the
# image's own libraries stay untouched: no parser in the VM).
if dd if=/vm/profile.bin of=/sys/kernel/security/apparmor/.replace bs=64M 2>/dev/null; then
  echo "LOADED $(tr '\n' ' ' < /sys/kernel/security/apparmor/profiles)"
else
  echo "LOADFAIL"
fi
echo "T start $(cut -d' ' -f1 /proc/uptime)"
/vm/busybox sh /vm/start.sh &
u=$!
/vm/busybox sh /vm/watch.sh "$u" &
wait "$u"
echo "EXIT $?"
echo "T end $(cut -d' ' -f1 /proc/uptime)"
dmesg | grep 'apparmor="DENIED"' | sed 's/^/AUDIT /'
echo END
poweroff -f
"#;

/// The watcher, unconfined: waits for the ready file (at most `WITHIN` seconds), reports,
/// stops the image.
const WATCH: &str = r#"u=$1
for i in $(seq $((WITHIN * 5))); do [ -e "$READY" ] && break; sleep 0.2; done
p=$(cut -d' ' -f1 < /proc/$u/task/$u/children)
echo "T ready $(cut -d' ' -f1 /proc/uptime)"
if [ -e "$READY" ]; then echo "READY $(cat "$READY")"; else echo "NOTREADY"; fi
echo "ATTR $(cat /proc/$p/attr/current)"
echo "NSPID $(grep NSpid /proc/$p/status | tr -s '\t ' ' ')"
kill -TERM "$p"
# s6's own shutdown is bounded by its grace times; a stuck one is killed.
sleep 60
kill -KILL "$p" 2>/dev/null && echo "KILLED"
"#;

/// What the image's init did in the VM.
#[derive(Debug)]
pub struct ImageVmReport {
    /// The kernel's AppArmor state and the loaded profiles (`AA ...`, `LOADED ...`).
    pub setup: Vec<String>,
    /// The ready file's content, if it appeared.
    pub ready: Option<String>,
    /// The label of the image's PID 1 (`/proc/<pid>/attr/current`) when it was ready.
    pub attr: String,
    /// The exit status of the image's PID 1 after SIGTERM.
    pub exit: Option<i32>,
    /// (profile, full audit line) of every AppArmor denial the kernel logged.
    pub denied: BTreeSet<(String, String)>,
    /// The whole console, for a failure's message.
    pub console: String,
    pub boot_time: Duration,
}

/// Boot `root` (an image's exported filesystem; the VM's files are added under `/vm/`) and
/// run its `/init` with `env` under the compiled `profile` (name, text) until `ready` (a file,
/// and how long to wait for it) appears, then stop it with SIGTERM.
pub fn run_image(
    kernel: &Path,
    root: &Path,
    env: &[String],
    profile: (&str, &str),
    ready: (&str, Duration),
) -> Result<ImageVmReport, VmError> {
    // `docker export` leaves the engine's mount points in /dev (a regular file /dev/console
    // among them, which would take the console from the kernel's own node).
    let _ = std::fs::remove_dir_all(root.join("dev"));
    std::fs::create_dir_all(root.join("dev")).map_err(fail)?;
    let vm = root.join("vm");
    std::fs::create_dir_all(vm.join("bin")).map_err(fail)?;
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .ok_or_else(|| {
            VmError("busybox is not installed (Debian package busybox-static)".into())
        })?;
    std::fs::copy(busybox, vm.join("busybox")).map_err(fail)?;
    let parser = crate::apparmor::Parser::find().map_err(fail)?;
    let compiled = parser
        .check(profile.1)
        .map_err(|e| VmError(format!("{} does not compile: {e}", profile.0)))?;
    std::fs::write(vm.join("profile.bin"), compiled.binary).map_err(fail)?;
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let mut start = String::from("exec env -i");
    for var in env {
        let _ = write!(start, " {}", quote(var));
    }
    // The forked child is the namespace's PID 1: it asks for the profile on its next exec and
    // becomes the image's /init.
    let _ = write!(
        start,
        " /vm/busybox unshare -p -f --mount-proc /vm/busybox sh -c {}",
        quote(&format!(
            "printf 'exec %s' {} > /proc/self/attr/exec && exec /init",
            quote(profile.0)
        ))
    );
    std::fs::write(vm.join("start.sh"), start).map_err(fail)?;
    std::fs::write(
        vm.join("watch.sh"),
        format!(
            "READY={}\nWITHIN={}\n{WATCH}",
            quote(ready.0),
            ready.1.as_secs()
        ),
    )
    .map_err(fail)?;
    let init = vm.join("init");
    std::fs::write(&init, INIT).map_err(fail)?;
    std::fs::set_permissions(&init, std::fs::Permissions::from_mode(0o755)).map_err(fail)?;
    let work = tempfile::tempdir().map_err(fail)?;
    // The boot, the wait for the ready file, and s6's shutdown (bounded by the watcher).
    let budget = super::BOOT_BUDGET + ready.1 + Duration::from_secs(60);
    let (console, boot_time) = boot(kernel, root, work.path(), "/vm/init", budget)?;
    Ok(read_console(console, boot_time))
}

fn read_console(console: String, boot_time: Duration) -> ImageVmReport {
    let mut report = ImageVmReport {
        setup: Vec::new(),
        ready: None,
        attr: String::new(),
        exit: None,
        denied: BTreeSet::new(),
        console: String::new(),
        boot_time,
    };
    for line in console.lines() {
        // Kernel messages may share a line: keep from the marker on.
        let marked = |m: &str| {
            line.find(m)
                .map(|at| line[at + m.len()..].trim().to_owned())
        };
        if let Some(rest) = line.strip_prefix("AUDIT ") {
            let profile = rest
                .split_once("profile=\"")
                .and_then(|(_, r)| r.split_once('"'))
                .map_or("", |(p, _)| p);
            report.denied.insert((profile.to_owned(), rest.to_owned()));
        } else if let Some(r) = marked("READY ") {
            report.ready = Some(r);
        } else if let Some(a) = marked("ATTR ") {
            report.attr = a;
        } else if let Some(e) = marked("EXIT ") {
            report.exit = e.parse().ok();
        } else if let Some(at) = ["AA ", "LOADED ", "LOADFAIL", "NSPID ", "T ", "KILLED"]
            .iter()
            .filter_map(|m| line.find(m))
            .min()
        {
            report.setup.push(line[at..].trim_end().to_owned());
        }
    }
    report.console = console;
    report
}
