//! A real AppArmor kernel for tests and previews: Debian's cloud kernel booted under
//! `qemu-system-x86_64 -accel tcg` from an initramfs holding busybox, `apparmor_parser` (with
//! its libraries and `/etc/apparmor.d`'s tunables and ABI files), the profiles, a static probe
//! program (`src/vm_probe.c`, built with `gcc -static`) and a list of probes. One boot loads every profile with
//! `apparmor_parser -r` and runs every probe confined to its profile (`exec <name>` written to
//! `/proc/self/attr/exec`, then exec of the probe), printing one result line per probe.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::plan::{MountKind, SandboxPlan};

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

fn skip(why: String) -> Result<PathBuf, VmError> {
    Err(VmError(why))
}

/// `$ADDON_SANDBOX_VM_CACHE`, else `$XDG_CACHE_HOME/addon-sandbox/apparmor-vm`, else
/// `~/.cache/addon-sandbox/apparmor-vm`.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("ADDON_SANDBOX_VM_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("addon-sandbox/apparmor-vm")
}

/// The kernel image, downloaded once into [`cache_dir`] (Debian's `linux-image-cloud-amd64`,
/// AppArmor built in and on). An error saying why when qemu, gcc, cpio or the kernel package
/// cannot be had.
pub fn kernel() -> Result<PathBuf, VmError> {
    if Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_err()
    {
        return skip("qemu-system-x86_64 is not installed (Debian package qemu-system-x86)".into());
    }
    for tool in ["cpio", "gcc"] {
        if Command::new(tool).arg("--version").output().is_err() {
            return skip(format!("{tool} is not installed"));
        }
    }
    let dir = cache_dir();
    let kernel = dir.join("vmlinuz");
    if kernel.is_file() {
        return Ok(kernel);
    }
    std::fs::create_dir_all(&dir).map_err(|e| VmError(format!("{}: {e}", dir.display())))?;
    let deps = Command::new("apt-cache")
        .args(["depends", "linux-image-cloud-amd64"])
        .output();
    let Some(pkg) = deps.ok().and_then(|o| {
        String::from_utf8_lossy(&o.stdout).lines().find_map(|l| {
            l.trim()
                .strip_prefix("Depends: ")
                .filter(|p| p.starts_with("linux-image-") && p.contains("cloud"))
                .map(str::to_owned)
        })
    }) else {
        return skip("apt-cache knows no linux-image-cloud-amd64 (apt-get update?)".into());
    };
    let dl = Command::new("apt-get")
        .args(["download", &pkg])
        .current_dir(&dir)
        .output();
    if !dl.is_ok_and(|o| o.status.success()) {
        return skip(format!("apt-get download {pkg} failed"));
    }
    let deb = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .expect("downloaded .deb");
    let x = dir.join("x");
    let ok = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&x)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        return skip(format!("dpkg-deb -x {} failed", deb.display()));
    }
    let vmlinuz = std::fs::read_dir(x.join("boot"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("vmlinuz-")
        })
        .expect("vmlinuz in the package");
    std::fs::copy(&vmlinuz, &kernel).unwrap();
    let _ = std::fs::remove_dir_all(&x);
    let _ = std::fs::remove_file(&deb);
    Ok(kernel)
}

fn copy_with_libs(binary: &Path, root: &Path, dest: &str) -> Result<(), VmError> {
    let target = root.join(dest.trim_start_matches('/'));
    std::fs::create_dir_all(target.parent().unwrap_or(root)).map_err(fail)?;
    std::fs::copy(binary, &target).map_err(fail)?;
    let ldd = Command::new("ldd").arg(binary).output().map_err(fail)?;
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let lib = line
            .split("=>")
            .nth(1)
            .unwrap_or(line)
            .split_whitespace()
            .next()
            .unwrap_or("");
        if lib.starts_with('/') {
            let t = root.join(lib.trim_start_matches('/'));
            std::fs::create_dir_all(t.parent().unwrap_or(root)).map_err(fail)?;
            std::fs::copy(lib, &t).map_err(fail)?;
        }
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), VmError> {
    std::fs::create_dir_all(to).map_err(fail)?;
    for e in std::fs::read_dir(from).map_err(fail)?.flatten() {
        let p = e.path();
        let t = to.join(e.file_name());
        if p.is_dir() {
            copy_tree(&p, &t)?;
        } else if p.is_file() {
            std::fs::copy(&p, &t).map_err(fail)?;
        }
    }
    Ok(())
}

/// The probes of DESIGN §5 and the issue for one plan's profile: the attacks (expected denied)
/// and the needs (expected allowed). The Docker socket probe is only meaningful on kernels that
/// mediate unix sockets (see `UNIX` in the report).
pub fn standard_probes(plan: &SandboxPlan, profile_name: &str) -> Vec<VmProbe> {
    let mut out = Vec::new();
    let mut add = |op: &'static str, path: String, allowed: bool| {
        out.push(VmProbe {
            profile: profile_name.to_owned(),
            op,
            path,
            expect_allowed: allowed,
        })
    };
    let data = plan.data_target().to_owned();
    let mounted = |t: &str| plan.mounts.iter().any(|m| m.target == t);
    // Attacks.
    add("write", "/proc/sys/kernel/core_pattern".into(), false);
    add("write", "/proc/sysrq-trigger".into(), false);
    add("read", "/proc/kcore".into(), false);
    for dir in ["/usr/bin", "/bin", "/sbin", "/lib", "/opt", "/app"] {
        add("create", format!("{dir}/planted"), false);
    }
    add("exec", format!("{data}/evil"), false);
    add("exec", "/tmp/evil".into(), false);
    add("exec", "/etc/evil".into(), false);
    add("mount", "/mnt".into(), false);
    add("write", "/sys/kernel/security/apparmor/.load".into(), false);
    if !mounted("/run/docker.sock") {
        add("connect", "/run/docker.sock".into(), false);
    }
    if !plan.cap_add.iter().any(|c| c == "NET_RAW") {
        add("raw", "-".into(), false);
    }
    // Needs.
    add("read", format!("{data}/existing"), true);
    add("create", format!("{data}/new"), true);
    add("create", "/tmp/new".into(), true);
    add("create", "/etc/addon.conf".into(), true);
    add("exec", "/usr/bin/tool".into(), true);
    add("exec", "/init".into(), true);
    add("exec", "/command/s6-svscan".into(), true);
    add(
        "exec",
        "/package/admin/s6-overlay/libexec/stage0".into(),
        true,
    );
    add("exec", "/etc/cont-init.d/10-setup".into(), true);
    add("mmap", "/usr/lib/libtool.so".into(), true);
    for m in &plan.mounts {
        match (m.kind, m.read_only) {
            (MountKind::Directory, true) => {
                add("read", format!("{}/existing", m.target), true);
                add("create", format!("{}/planted", m.target), false);
            }
            (MountKind::Directory, false) if m.target != data => {
                add("read", format!("{}/existing", m.target), true);
                add("create", format!("{}/new", m.target), true);
            }
            (MountKind::File, true) => {
                add("read", m.target.clone(), true);
                add("write", m.target.clone(), false);
            }
            _ => {}
        }
    }
    for d in &plan.devices {
        add("device", d.path_in_container.clone(), true);
    }
    out
}

/// The files probes need, created (unconfined) before the probes run: the directories the
/// profiles' maps name, a file in each, device nodes, executables in writable places.
fn setup_script(probes: &[VmProbe]) -> String {
    let mut s = String::new();
    let mut dirs = std::collections::BTreeSet::new();
    for p in probes {
        let parent = Path::new(&p.path)
            .parent()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        dirs.insert(parent);
    }
    for d in &dirs {
        let _ = writeln!(s, "mkdir -p '{d}'");
    }
    for p in probes {
        match p.op {
            "read" | "write" | "mmap" | "device" => {
                if p.path.starts_with("/dev/") {
                    let _ = writeln!(s, "[ -e '{0}' ] || mknod '{0}' c 1 3", p.path);
                } else if !p.path.starts_with("/proc/") && !p.path.starts_with("/sys/") {
                    let _ = writeln!(s, "[ -e '{0}' ] || cp /bin/probe '{0}'", p.path);
                }
            }
            "exec" => {
                let _ = writeln!(
                    s,
                    "[ -e '{0}' ] || {{ printf '#!/bin/busybox sh\\necho OK\\n' > '{0}'; chmod 755 '{0}'; }}",
                    p.path
                );
            }
            "mount" => {
                let _ = writeln!(s, "mkdir -p '{}'", p.path);
            }
            _ => {}
        }
    }
    s
}

/// The static probe program: one access attempt, printing `OK` or `ERR <errno>`.
const PROBE_C: &str = include_str!("vm_probe.c");

const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t securityfs securityfs /sys/kernel/security
mount -t devtmpfs dev /dev
# Without auditd, audit records reach the kernel log through printk: no rate limit.
echo 0 > /proc/sys/kernel/printk_ratelimit
mkdir -p /tmp /run /data /etc /var/lib
echo "AA $(cat /sys/module/apparmor/parameters/enabled)"
# Compiled on the host against the pinned ABI (compiling under TCG emulation is slow);
# loaded here with apparmor_parser -r, as the launcher loads them.
for f in /profiles-bin/*; do
  out=$(/sbin/apparmor_parser -r -B "$f" 2>&1) || { echo "LOADFAIL $(basename "$f") $out" | tr '\n' ' '; echo; }
done
echo "T loaded $(cut -d' ' -f1 /proc/uptime)"
sh /setup.sh
/bin/probe listen /run/docker.sock > /dev/null 2>&1 &
sleep 0.2
# The launcher's path: --replace with a cache, a process started under the profile.
if [ -f /launcher-profile ]; then
  name=$(cat /launcher-profile)
  /sbin/apparmor_parser --replace --write-cache --cache-loc /tmp/aa-cache /profiles/"$name" > /dev/null 2>&1 && echo "REPLACED $name"
  sh -c 'printf "exec %s" "$1" > /proc/self/attr/exec && exec /bin/sleep 30' _ "$name" &
  sleep 0.5
  echo "ATTR $(cat /proc/$!/attr/current)"
  kill $! 2>/dev/null
fi
echo "UNIX $([ -e /sys/kernel/security/apparmor/features/network/af_unix ] && echo yes || echo no)"
# One shell per profile, confined to it, runs that profile's probes: each probe is a fresh
# exec of /bin/probe, which inherits the profile.
for s in /p/*.sh; do
  sh -c 'printf "exec %s" "$1" > /proc/self/attr/exec && exec /bin/sh "$2"' _ "$(basename "$s" .sh)" "$s"
done
echo "T probed $(cut -d' ' -f1 /proc/uptime)"
echo "DENIED $(dmesg | grep -c 'apparmor="DENIED"')"
dmesg | grep 'apparmor="DENIED"' | sed -n 's/.*profile="\([^"]*\)" name="\([^"]*\)".*/AUDIT \1 \2/p' 
echo END
poweroff -f
"#;

/// Boot once with these profiles and probes. `launcher_profile` names a profile to also load
/// the launcher's way and start a process under.
pub fn run(
    kernel: &Path,
    profiles: &[(String, String)],
    probes: &[VmProbe],
    launcher_profile: Option<&str>,
) -> Result<VmReport, VmError> {
    let work = tempfile::tempdir().map_err(fail)?;
    let root = base_root(work.path())?;
    build_probe(work.path(), &root.join("bin/probe"))?;
    let parser = crate::apparmor::Parser::find().map_err(fail)?;
    for (name, text) in profiles {
        std::fs::write(root.join("profiles").join(name), text).map_err(fail)?;
        compile_into(&root, &parser, name, text)?;
    }
    if let Some(name) = launcher_profile {
        std::fs::write(root.join("launcher-profile"), name).map_err(fail)?;
    }
    let mut scripts: std::collections::BTreeMap<&str, String> = Default::default();
    for (i, p) in probes.iter().enumerate() {
        let _ = writeln!(
            scripts.entry(p.profile.as_str()).or_default(),
            "echo \"R {i} $(/bin/probe {} '{}' 2>&1)\"",
            p.op,
            p.path
        );
    }
    std::fs::create_dir_all(root.join("p")).map_err(fail)?;
    for (profile, script) in scripts {
        std::fs::write(root.join("p").join(format!("{profile}.sh")), script).map_err(fail)?;
    }
    std::fs::write(root.join("setup.sh"), setup_script(probes)).map_err(fail)?;
    let init = root.join("sbin/vminit");
    std::fs::write(&init, INIT).map_err(fail)?;
    std::fs::set_permissions(&init, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(fail)?;

    let (console, boot_time) = boot(kernel, &root, work.path())?;
    let mut outcomes = vec![String::new(); probes.len()];
    let mut load_failures = Vec::new();
    let mut denied_lines = 0;
    let mut denied_records = std::collections::BTreeSet::new();
    let mut extra = Vec::new();
    for line in console.lines() {
        if let Some(rest) = line.strip_prefix("R ") {
            let (id, out) = rest.split_once(' ').unwrap_or((rest, ""));
            if let Ok(i) = id.parse::<usize>() {
                outcomes[i] = out.trim().to_owned();
            }
        } else if let Some(rest) = line.strip_prefix("LOADFAIL ") {
            load_failures.push(rest.to_owned());
        } else if let Some(rest) = line.strip_prefix("AUDIT ") {
            if let Some((profile, path)) = rest.split_once(' ') {
                denied_records.insert((profile.to_owned(), path.to_owned()));
            }
        } else if let Some(n) = line.strip_prefix("DENIED ") {
            denied_lines = n.trim().parse().unwrap_or(0);
        } else if ["ATTR ", "AA ", "REPLACED ", "T ", "UNIX "]
            .iter()
            .any(|p| line.contains(p))
        {
            // Kernel messages may share the line: keep from the marker on.
            let at = ["ATTR ", "AA ", "REPLACED ", "T ", "UNIX "]
                .iter()
                .filter_map(|p| line.find(p))
                .min()
                .unwrap_or(0);
            extra.push(line[at..].to_owned());
        }
    }
    Ok(VmReport {
        outcomes,
        load_failures,
        denied_lines,
        denied_records,
        extra,
        boot_time,
    })
}

/// The native backend inside the VM: the init copies itself into a tmpfs and `switch_root`s
/// (`pivot_root` cannot leave an initramfs), loads the profile, and runs `addon-sandbox
/// __native-init` with the spec; the sandboxed command's output comes back as `NLOG` lines.
const NATIVE_INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
if [ "$1" != stage2 ]; then
  mkdir -p /new && mount -t tmpfs -o size=512m tmpfs /new
  for d in bin sbin lib lib64 usr etc profiles-bin nroot vmdata native-spec.json; do
    [ -e "/$d" ] && cp -a "/$d" /new/
  done
  mkdir -p /new/proc /new/sys /new/dev /new/tmp /new/run
  exec switch_root /new /sbin/vminit stage2
fi
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t securityfs securityfs /sys/kernel/security
mount -t devtmpfs dev /dev
echo 0 > /proc/sys/kernel/printk_ratelimit
echo "AA $(cat /sys/module/apparmor/parameters/enabled)"
for f in /profiles-bin/*; do
  out=$(/sbin/apparmor_parser -r -B "$f" 2>&1) || { echo "LOADFAIL $(basename "$f") $out" | tr '\n' ' '; echo; }
done
echo "NATIVE $(/bin/addon-sandbox __native-init < /native-spec.json 2>&1 | tr '\n' ' ')"
for i in $(seq 100); do grep -q '^END' /tmp/native.log 2>/dev/null && break; sleep 0.2; done
sed 's/^/NLOG /' /tmp/native.log
dmesg | grep 'apparmor="DENIED"' | sed -n 's/.*profile="\([^"]*\)" name="\([^"]*\)".*/AUDIT \1 \2/p'
echo END
poweroff -f
"#;

/// What a native run in the VM reported.
#[derive(Debug)]
pub struct NativeVmReport {
    /// The init helper's JSON answer (`{"pid": ...}` or `{"error": ...}`).
    pub init: String,
    /// What the sandboxed command printed.
    pub log: Vec<String>,
    pub load_failures: Vec<String>,
    /// (profile, path) of every audited file denial.
    pub denied_records: std::collections::BTreeSet<(String, String)>,
}

/// Boot once and start `spec` (its `rootfs` is replaced by a busybox tree with the probe
/// program at `/bin/probe`, its log by the VM's, each mount source by an empty directory)
/// with the native backend of `binary`, under the compiled `profile`.
pub fn run_native(
    kernel: &Path,
    binary: &Path,
    profile: (&str, &str),
    spec: &crate::native::NativeSpec,
) -> Result<NativeVmReport, VmError> {
    let work = tempfile::tempdir().map_err(fail)?;
    let root = base_root(work.path())?;
    copy_with_libs(binary, &root, "/bin/addon-sandbox")?;
    let nroot = root.join("nroot");
    std::fs::create_dir_all(nroot.join("bin")).map_err(fail)?;
    std::fs::copy(root.join("bin/busybox"), nroot.join("bin/busybox")).map_err(fail)?;
    std::os::unix::fs::symlink("busybox", nroot.join("bin/sh")).map_err(fail)?;
    build_probe(work.path(), &nroot.join("bin/probe"))?;
    let mut spec = spec.clone();
    spec.rootfs = PathBuf::from("/nroot");
    spec.log = PathBuf::from("/tmp/native.log");
    for (i, m) in spec.mounts.iter_mut().enumerate() {
        let source = format!("/vmdata/{i}");
        if m.file {
            std::fs::create_dir_all(root.join("vmdata")).map_err(fail)?;
            std::fs::write(root.join(source.trim_start_matches('/')), "").map_err(fail)?;
        } else {
            std::fs::create_dir_all(root.join(source.trim_start_matches('/'))).map_err(fail)?;
        }
        m.source = source;
    }
    std::fs::write(
        root.join("native-spec.json"),
        serde_json::to_vec(&spec).map_err(fail)?,
    )
    .map_err(fail)?;
    let (name, text) = profile;
    compile_into(
        &root,
        &crate::apparmor::Parser::find().map_err(fail)?,
        name,
        text,
    )?;
    let init = root.join("sbin/vminit");
    std::fs::write(&init, NATIVE_INIT).map_err(fail)?;
    // busybox switch_root checks that the root it leaves is an initramfs by its /init.
    std::fs::write(root.join("init"), NATIVE_INIT).map_err(fail)?;
    std::fs::set_permissions(&init, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(fail)?;
    let (console, _) = boot(kernel, &root, work.path())?;
    let mut report = NativeVmReport {
        init: String::new(),
        log: Vec::new(),
        load_failures: Vec::new(),
        denied_records: Default::default(),
    };
    for line in console.lines() {
        if let Some(at) = line.find("NATIVE ") {
            report.init = line[at + 7..].trim().to_owned();
        } else if let Some(rest) = line.strip_prefix("NLOG ") {
            report.log.push(rest.to_owned());
        } else if let Some(rest) = line.strip_prefix("LOADFAIL ") {
            report.load_failures.push(rest.to_owned());
        } else if let Some(rest) = line.strip_prefix("AUDIT ")
            && let Some((profile, path)) = rest.split_once(' ')
        {
            report
                .denied_records
                .insert((profile.to_owned(), path.to_owned()));
        }
    }
    Ok(report)
}

/// The initramfs tree every boot shares: busybox, `apparmor_parser` with its libraries, and
/// the tunables and ABI files it reads.
fn base_root(work: &Path) -> Result<PathBuf, VmError> {
    let root = work.join("root");
    for d in [
        "bin",
        "sbin",
        "proc",
        "sys",
        "dev",
        "profiles",
        "etc/apparmor.d",
        "tmp",
        "run",
    ] {
        std::fs::create_dir_all(root.join(d)).map_err(fail)?;
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .ok_or_else(|| {
            VmError("busybox is not installed (Debian package busybox-static)".into())
        })?;
    std::fs::copy(busybox, root.join("bin/busybox")).map_err(fail)?;
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).map_err(fail)?;
    let parser = crate::apparmor::parser::find_program("apparmor_parser")
        .ok_or_else(|| VmError("apparmor_parser not found".into()))?;
    copy_with_libs(&parser, &root, "/sbin/apparmor_parser")?;
    for d in ["tunables", "abi"] {
        copy_tree(
            &Path::new("/etc/apparmor.d").join(d),
            &root.join("etc/apparmor.d").join(d),
        )?;
    }
    Ok(root)
}

/// Compile a profile on the host against the pinned ABI (compiling under TCG emulation is
/// slow) into `<root>/profiles-bin/<name>`, which the VM's init loads with `apparmor_parser -B`.
fn compile_into(
    root: &Path,
    parser: &crate::apparmor::Parser,
    name: &str,
    text: &str,
) -> Result<(), VmError> {
    let compiled = parser
        .check(text)
        .map_err(|e| VmError(format!("{name} does not compile: {e}")))?;
    std::fs::create_dir_all(root.join("profiles-bin")).map_err(fail)?;
    std::fs::write(root.join("profiles-bin").join(name), compiled.binary).map_err(fail)
}

/// The static probe program, built for `dest`.
fn build_probe(work: &Path, dest: &Path) -> Result<(), VmError> {
    let probe_src = work.join("probe.c");
    std::fs::write(&probe_src, PROBE_C).map_err(fail)?;
    let built = Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(dest)
        .arg(&probe_src)
        .status()
        .map_err(fail)?;
    if !built.success() {
        return Err(VmError(
            "gcc -static failed (is libc6-dev installed?)".into(),
        ));
    }
    Ok(())
}

/// Pack `root` into an initramfs, boot it (its `/sbin/vminit` runs as init) and return the
/// console once the VM powers off, with the time it took. The init must print `END` last.
fn boot(kernel: &Path, root: &Path, work: &Path) -> Result<(String, Duration), VmError> {
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
        .args([
            "-append",
            // A large log buffer and audit backlog: every denial is kept as a witness.
            "console=ttyS0 rdinit=/sbin/vminit apparmor=1 security=apparmor panic=-1 quiet loglevel=3 log_buf_len=8M audit_backlog_limit=65536 printk.devkmsg=on",
        ])
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
    let deadline = Duration::from_secs(600);
    loop {
        if child.try_wait().map_err(fail)?.is_some() {
            break;
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            return Err(VmError(format!(
                "the VM did not finish in {} s",
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

fn fail(e: impl std::fmt::Display) -> VmError {
    VmError(e.to_string())
}
