//! `learn --vm`: learn mode on a host whose kernel does not enforce AppArmor. The engine VM
//! (Debian's kernel, AppArmor enforcing, Docker's engine) runs `addon-sandbox learn` itself
//! with the caller's arguments, on the image saved from this host's engine; it hands back the
//! kernel's AppArmor records of the run, which the caller judges here as from a saved log.
//! The add-on's folders are scratch folders inside the VM, and the exercises run there too
//! (the VM's root has curl, ssh, smbclient, dig and the MQTT and MariaDB clients).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::engine::{EngineRoot, EngineRun, run_engine};
use super::{VmError, fail};

/// What `learn` runs in the VM, after `serve`: the caller's arguments one per NUL-separated
/// entry in `/payload/args` (no shell quoting to get wrong), the add-on in `/payload/addon`.
const HARNESS: &str = r#"PATH=/payload/bin:$PATH
export PATH
S=/var/lib/addon-sandbox/state
mkdir -p "$S"
addon-sandbox serve --state-dir "$S" >/run/serve.out 2>/run/serve.log &
for i in $(seq 600); do grep -q listen /run/serve.out 2>/dev/null && break; sleep 0.5; done
grep -q listen /run/serve.out || sed 's/^/@@ E serve: /' /run/serve.log
xargs -0 -a /payload/args sh -c \
  'addon-sandbox learn --json --state-dir "$0" "$@" /payload/addon; echo $? >/run/learn.rc' "$S" \
  >/run/learn.json 2>/run/learn.err
printf '@@ LEARN rc=%s\n' "$(cat /run/learn.rc 2>/dev/null || echo none)"
printf '@@ J %s\n' "$(tr -d '\n' </run/learn.json)"
sed 's/^/@@ E /' /run/learn.err
dmesg | grep 'apparmor=' | sed 's/^/@@ R /'
"#;

/// One learning run in the VM.
pub struct LearnVm<'a> {
    pub root: &'a EngineRoot,
    /// The add-on's folder: its top-level files (config, build file, apparmor.txt) go in.
    pub addon_dir: &'a Path,
    /// The image as `docker save` writes it, loaded by the VM's engine at boot.
    pub image_tar: &'a Path,
    /// `learn`'s arguments in the VM besides `--json`, `--state-dir` and the folder.
    pub args: Vec<String>,
    pub deadline: Duration,
    pub console_log: Option<PathBuf>,
}

/// What the run in the VM gave back.
#[derive(Debug)]
pub struct LearnVmReport {
    /// `learn`'s exit status in the VM (None: it did not get to end).
    pub status: Option<i32>,
    /// Its reading (`--json`), which names the container and the exercises' statuses.
    pub reading: String,
    /// Its messages (standard error).
    pub messages: Vec<String>,
    /// The kernel's AppArmor records, as `dmesg` prints them.
    pub records: Vec<String>,
    pub elapsed: Duration,
}

pub fn learn_in_vm(run: &LearnVm) -> Result<LearnVmReport, VmError> {
    let payload = tempfile::tempdir().map_err(fail)?;
    let p = payload.path();
    for dir in ["bin", "addon", "images"] {
        std::fs::create_dir_all(p.join(dir)).map_err(fail)?;
    }
    let exe = std::env::current_exe().map_err(fail)?;
    std::fs::copy(&exe, p.join("bin/addon-sandbox")).map_err(fail)?;
    copy_addon_files(run.addon_dir, &p.join("addon"))?;
    // A hard link where the payload and the tarball share a file system, else a copy.
    let tar = p.join("images/image.tar");
    if std::fs::hard_link(run.image_tar, &tar).is_err() {
        std::fs::copy(run.image_tar, &tar).map_err(fail)?;
    }
    let mut args = Vec::new();
    for a in &run.args {
        if a.contains('\0') {
            return Err(VmError(format!("argument {a:?} holds a NUL byte")));
        }
        args.extend_from_slice(a.as_bytes());
        args.push(0);
    }
    std::fs::write(p.join("args"), args).map_err(fail)?;
    std::fs::write(p.join("harness.sh"), HARNESS).map_err(fail)?;
    let report = run_engine(&EngineRun {
        root: run.root,
        payload: p,
        docker: None,
        memory_mb: 4096,
        deadline: run.deadline,
        console_log: run.console_log.clone(),
    })?;
    Ok(read_lines(&report.lines, report.elapsed))
}

/// The report from the harness's `@@` lines.
fn read_lines(lines: &[String], elapsed: Duration) -> LearnVmReport {
    let tagged = |tag: &str| -> Vec<String> {
        lines
            .iter()
            .filter_map(|l| l.strip_prefix(tag).map(str::to_owned))
            .collect()
    };
    LearnVmReport {
        status: tagged("LEARN rc=")
            .first()
            .and_then(|s| s.trim().parse().ok()),
        reading: tagged("J ").into_iter().next().unwrap_or_default(),
        messages: tagged("E "),
        records: tagged("R "),
        elapsed,
    }
}

/// The folder's top-level regular files (no link followed: a link is skipped).
fn copy_addon_files(from: &Path, to: &Path) -> Result<(), VmError> {
    for e in std::fs::read_dir(from).map_err(fail)?.flatten() {
        let meta = std::fs::symlink_metadata(e.path()).map_err(fail)?;
        if meta.is_file() {
            let dest = to.join(e.file_name());
            std::fs::copy(e.path(), &dest).map_err(fail)?;
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o644))
                .map_err(fail)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_harness_lines_are_read_back() {
        let lines: Vec<String> = [
            "T dockerd 19.8",
            "LEARN rc=0",
            r#"J {"profile":"local_x","findings":[]}"#,
            "E learning: local_x started",
            "R [   40.1] audit: type=1400 audit(1.2:3): apparmor=\"ALLOWED\" operation=\"open\"",
            "K MARK x",
        ]
        .map(str::to_owned)
        .to_vec();
        let r = read_lines(&lines, Duration::from_secs(3));
        assert_eq!(r.status, Some(0));
        assert_eq!(r.reading, r#"{"profile":"local_x","findings":[]}"#);
        assert_eq!(r.messages, ["learning: local_x started"]);
        assert_eq!(r.records.len(), 1);
        assert!(r.records[0].contains("apparmor=\"ALLOWED\""));
        let none = read_lines(&[], Duration::ZERO);
        assert_eq!(none.status, None);
        assert!(none.records.is_empty());
    }
}
