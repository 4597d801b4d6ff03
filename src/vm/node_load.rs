//! `node load-profiles` booted in the VM: the loader (our binary) loads a profile text from a
//! folder laid out as a mounted ConfigMap into the real kernel, a process then runs confined by
//! it, and after the entry goes away a second pass unloads it.

use std::path::Path;

use super::boot::boot;
use super::initramfs::{base_root, copy_with_libs};
use super::{VmError, fail};

const NODE_INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t securityfs securityfs /sys/kernel/security
mount -t devtmpfs dev /dev
echo 0 > /proc/sys/kernel/printk_ratelimit
echo "KV AA $(cat /sys/module/apparmor/parameters/enabled)"
mkdir -p /share /tmp/state
echo "KV LOAD1 $(/bin/addon-sandbox node load-profiles --once --dir /cm --state /tmp/state 2>&1 | tr '\n' ' ')"
echo "KV KERNEL1 $(grep -c "^@NAME@ (enforce)" /sys/kernel/security/apparmor/profiles)"
echo "KV LABEL $(sh -c 'echo "exec @NAME@" > /proc/self/attr/exec && exec cat /proc/self/attr/current' 2>&1)"
echo "KV WRITE $(sh -c 'echo "exec @NAME@" > /proc/self/attr/exec && exec sh -c "echo x > /share/x && echo written"' 2>&1)"
echo "KV READ $(sh -c 'echo "exec @NAME@" > /proc/self/attr/exec && exec sh -c "cat /share/seed"' 2>&1)"
rm /cm/@NAME@
echo "KV LOAD2 $(/bin/addon-sandbox node load-profiles --once --dir /cm --state /tmp/state 2>&1 | tr '\n' ' ')"
echo "KV KERNEL2 $(grep -c "^@NAME@ " /sys/kernel/security/apparmor/profiles)"
echo END
poweroff -f
"#;

/// What the VM's init printed (`KV <key> <value>` lines), by key (`AA`, `LOAD1`, `KERNEL1`, `LABEL`, `WRITE`, `READ`,
/// `LOAD2`, `KERNEL2`).
#[derive(Debug, Default)]
pub struct NodeVmReport {
    pub lines: std::collections::BTreeMap<String, String>,
    /// The console's last lines, for a failure's message.
    pub console_tail: Vec<String>,
}

impl NodeVmReport {
    pub fn get(&self, key: &str) -> &str {
        self.lines.get(key).map_or("", String::as_str)
    }
}

/// Boot once: `binary`'s `node load-profiles` loads `profile` (name, text) from a ConfigMap-like
/// folder, a process runs under it, then it is unloaded.
pub fn run_node_load(
    kernel: &Path,
    binary: &Path,
    profile: (&str, &str),
) -> Result<NodeVmReport, VmError> {
    let (name, text) = profile;
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    {
        return Err(VmError(format!("{name:?}: not a plain profile name")));
    }
    let work = tempfile::tempdir().map_err(fail)?;
    let root = base_root(work.path())?;
    copy_with_libs(binary, &root, "/bin/addon-sandbox")?;
    let data = root.join("cm/..2026_11_30_00_00_00.1");
    std::fs::create_dir_all(&data).map_err(fail)?;
    std::fs::write(data.join(name), text).map_err(fail)?;
    std::os::unix::fs::symlink("..2026_11_30_00_00_00.1", root.join("cm/..data")).map_err(fail)?;
    std::os::unix::fs::symlink(format!("..data/{name}"), root.join("cm").join(name))
        .map_err(fail)?;
    std::fs::create_dir_all(root.join("share")).map_err(fail)?;
    std::fs::write(root.join("share/seed"), "seed\n").map_err(fail)?;
    let init = root.join("init");
    std::fs::write(&init, NODE_INIT.replace("@NAME@", name)).map_err(fail)?;
    std::fs::set_permissions(&init, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(fail)?;
    let (console, _) = boot(kernel, &root, work.path(), "/init", super::budget(0))?;
    let mut report = NodeVmReport::default();
    let all: Vec<&str> = console.lines().collect();
    report.console_tail = all[all.len().saturating_sub(40)..]
        .iter()
        .map(|l| l.to_string())
        .collect();
    // Each answer is a `KV <key> <value>` line (the console's escape codes may precede it).
    for line in console.lines() {
        if let Some(at) = line.find("KV ")
            && let Some((key, value)) = line[at + 3..].split_once(' ')
        {
            report.lines.insert(key.to_owned(), value.trim().to_owned());
        }
    }
    Ok(report)
}
