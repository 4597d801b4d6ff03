//! The Landlock ruleset of a native sandbox, from the same plan as its AppArmor profile, for
//! hosts that do not enforce AppArmor:
//!
//! - everything may be read (the root holds only the image and the plan's mounts);
//! - code may run only from the image: every top-level entry of the root except the mount
//!   targets, `/proc`, `/sys`, `/dev` and `/tmp`;
//! - writable: the plan's writable mounts (with `/data`), `/tmp` and `/dev/shm`; `/dev`'s nodes
//!   may be written (`/dev/null`) but nothing created there.
//!
//! Landlock only adds rights, so "exec from the image but not from /data" is written as exec on
//! each image directory. A writable mount nested inside an image directory would inherit exec;
//! the native backend mounts writable maps `noexec` as well, which covers that case.

use std::collections::BTreeSet;

use landlock::{
    ABI, Access, AccessFs, BitFlags, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreated,
    RulesetCreatedAttr, RulesetStatus,
};

use super::NativeSpec;

/// The ABI whose rights are asked for (V3: truncate and cross-directory rename included).
const ABI_WANTED: ABI = ABI::V3;

fn top(path: &str) -> String {
    path.trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("")
        .to_owned()
}

/// Rights per path, inside the new root. Pure.
pub fn rules(
    spec: &NativeSpec,
    root_entries: &[(String, bool)],
) -> Vec<(String, BitFlags<AccessFs>)> {
    let read = AccessFs::ReadFile | AccessFs::ReadDir;
    let write = AccessFs::from_write(ABI_WANTED);
    let mut no_exec: BTreeSet<String> = ["proc", "sys", "dev", "tmp"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    no_exec.extend(spec.mounts.iter().map(|m| top(&m.target)));
    let mut out = vec![("/".to_owned(), read)];
    for (name, is_dir) in root_entries {
        if no_exec.contains(name) {
            continue;
        }
        let access = if *is_dir {
            read | AccessFs::Execute
        } else {
            AccessFs::ReadFile | AccessFs::Execute
        };
        out.push((format!("/{name}"), access));
    }
    for m in spec.mounts.iter().filter(|m| !m.read_only) {
        let access = if m.file {
            AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::Truncate
        } else {
            read | write
        };
        out.push((m.target.clone(), access));
    }
    for dir in ["/tmp", "/dev/shm"] {
        out.push((dir.to_owned(), read | write));
    }
    out.push((
        "/dev".to_owned(),
        read | AccessFs::WriteFile | AccessFs::Truncate,
    ));
    out
}

fn fail<E: std::fmt::Display>(e: E) -> String {
    format!("landlock: {e}")
}

/// Build the ruleset (opening every path) without applying it yet.
pub fn prepare(spec: &NativeSpec) -> Result<RulesetCreated, String> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir("/").map_err(fail)? {
        let entry = entry.map_err(fail)?;
        let is_dir = entry.file_type().map_err(fail)?.is_dir();
        entries.push((entry.file_name().to_string_lossy().into_owned(), is_dir));
    }
    entries.sort();
    let mut ruleset = Ruleset::default()
        .handle_access(AccessFs::from_all(ABI_WANTED))
        .map_err(fail)?
        .create()
        .map_err(fail)?;
    for (path, access) in rules(spec, &entries) {
        let fd = PathFd::new(&path).map_err(|e| format!("landlock: open {path}: {e}"))?;
        ruleset = ruleset
            .add_rule(PathBeneath::new(fd, access))
            .map_err(|e| format!("landlock: rule for {path}: {e}"))?;
    }
    Ok(ruleset)
}

/// Apply it to this process and what it execs; refuse unless the kernel enforces it.
pub fn restrict(ruleset: RulesetCreated) -> Result<(), String> {
    let status = ruleset.restrict_self().map_err(fail)?;
    match status.ruleset {
        RulesetStatus::FullyEnforced | RulesetStatus::PartiallyEnforced => Ok(()),
        RulesetStatus::NotEnforced => {
            Err("landlock: the kernel did not enforce the ruleset".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::{Confinement, MountSpec};

    #[test]
    fn exec_only_from_the_image_and_writes_only_where_the_plan_says() {
        let mount = |target: &str, read_only: bool| MountSpec {
            source: "/x".into(),
            target: target.into(),
            read_only,
            file: false,
            checked_from: None,
        };
        let spec = NativeSpec {
            rootfs: "/r".into(),
            hostname: "h".into(),
            new_net: true,
            new_pid: true,
            new_ipc: true,
            new_uts: true,
            mounts: vec![mount("/data", false), mount("/share", true)],
            devices: vec![],
            capabilities: vec![],
            ulimits: vec![],
            env: vec![],
            command: vec!["sh".into()],
            confinement: Confinement::Landlock,
            log: "/l".into(),
        };
        let entries: Vec<(String, bool)> =
            ["bin", "data", "dev", "etc", "proc", "share", "tmp", "usr"]
                .iter()
                .map(|n| (n.to_string(), true))
                .chain([("init".to_string(), false)])
                .collect();
        let rules = rules(&spec, &entries);
        let exec: Vec<&str> = rules
            .iter()
            .filter(|(_, a)| a.contains(AccessFs::Execute))
            .map(|(p, _)| p.as_str())
            .collect();
        assert_eq!(exec, ["/bin", "/etc", "/usr", "/init"]);
        let writable: Vec<&str> = rules
            .iter()
            .filter(|(_, a)| a.contains(AccessFs::MakeReg))
            .map(|(p, _)| p.as_str())
            .collect();
        assert_eq!(writable, ["/data", "/tmp", "/dev/shm"]);
    }
}
