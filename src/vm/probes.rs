//! Which accesses to try under a plan's profile, and the files they need made before they
//! run.

use std::fmt::Write as _;
use std::path::Path;

use super::VmProbe;
use crate::plan::{MountKind, SandboxPlan};

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
pub(super) fn setup_script(probes: &[VmProbe]) -> String {
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
