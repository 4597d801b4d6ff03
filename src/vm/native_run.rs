//! The native backend booted in the VM: `addon-sandbox __native-init` run with a spec under a
//! compiled profile, and what the sandboxed command printed.

use std::path::{Path, PathBuf};

use super::boot::boot;
use super::initramfs::{base_root, build_probe, compile_into, copy_with_libs};
use super::{VmError, fail};

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
    let (console, _) = boot(kernel, &root, work.path(), "/sbin/vminit", super::budget(0))?;
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
