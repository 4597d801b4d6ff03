//! One boot that loads every profile and runs every probe confined to its profile, and the
//! reading of its console into a [`VmReport`].

use std::fmt::Write as _;
use std::path::Path;

use super::boot::boot;
use super::initramfs::{base_root, build_probe, compile_into};
use super::probes::setup_script;
use super::{VmError, VmProbe, VmReport, fail};

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

    let budget = super::budget(probes.len());
    let (console, boot_time) = boot(kernel, &root, work.path(), "/sbin/vminit", budget)?;
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
