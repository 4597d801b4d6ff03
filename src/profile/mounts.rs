//! Plan mounts → file rules: each kind of mount (directory, file, socket) read-only or
//! writable, W^X on writable maps, and the legacy `/config` link beside `/homeassistant`.

use crate::plan::{MountKind, SandboxPlan};
use crate::policy::exec_withheld;

use super::ProfileError;
use super::derive::{Out, bad};
use super::rule::{AaPath, FilePerms};

pub(super) fn mounts(plan: &SandboxPlan, out: &mut Out) -> Result<(), ProfileError> {
    for m in &plan.mounts {
        if m.kind == MountKind::Devices {
            continue;
        }
        let target = AaPath::literal("mount target", &m.target).map_err(bad)?;
        let why = if m.origin.is_empty() {
            format!("mount {}", m.target)
        } else {
            m.origin.clone()
        };
        let subtree = |p: &AaPath| p.clone().with_pattern("{,/**}");
        match (m.kind, m.read_only) {
            (MountKind::Directory, true) => {
                out.file(subtree(&target), FilePerms::R, format!("{why} (read-only)"));
                out.deny(
                    subtree(&target),
                    FilePerms::WL,
                    format!("{why} (read-only)"),
                );
            }
            (MountKind::Directory, false) if m.exec => {
                out.file(
                    subtree(&target),
                    FilePerms::RWLK,
                    format!("{why} (read-write)"),
                );
                out.file(
                    subtree(&target),
                    FilePerms::RMIX,
                    format!("{why}: writable and executable, granted by --grant map_exec"),
                );
            }
            (MountKind::Directory, false) => {
                out.file(
                    subtree(&target),
                    FilePerms::RWLK,
                    format!("{why} (read-write, not executable)"),
                );
                // W^X made explicit: no other rule (a code directory around a custom
                // target such as /usr/local, an abstraction) can make this tree executable.
                out.deny(
                    subtree(&target),
                    FilePerms::MX,
                    if exec_withheld(plan, &m.target) {
                        format!(
                            "{why}: writable, so never executable although inside a code directory (W^X; --grant map_exec lifts it)"
                        )
                    } else {
                        format!("{why}: writable, so never executable")
                    },
                );
            }
            (MountKind::File, true) => {
                out.file(target.clone(), FilePerms::R, format!("{why} (read-only)"));
                out.deny(target, FilePerms::WL, format!("{why} (read-only)"));
            }
            (MountKind::File, false) => {
                out.file(target, FilePerms::RWLK, format!("{why} (read-write)"));
            }
            (MountKind::Socket, _) => {
                out.file(
                    target,
                    FilePerms::RW,
                    format!("{why} (connect to the socket)"),
                );
            }
            (MountKind::SocketDirectory, _) => {
                out.file(
                    subtree(&target),
                    FilePerms::RW,
                    format!("{why} (connect to its sockets)"),
                );
            }
            (MountKind::Devices, _) => {}
        }
    }
    legacy_config_link(plan, out)
}

/// Home Assistant's folder is mapped at `/homeassistant`; before the `homeassistant_config`
/// map it was the `config` map at `/config`, and add-ons keep that path for their users by
/// making `/config` a link to it at start (ssh's cont-init: `ln -s /homeassistant /config`).
/// When nothing else is mounted at `/config`, the profile lets that one path be created (the
/// link itself; what is reached through it is the map's own rules).
fn legacy_config_link(plan: &SandboxPlan, out: &mut Out) -> Result<(), ProfileError> {
    let target = |t: &str| plan.mounts.iter().find(|m| m.target == t);
    let (Some(map), None) = (target("/homeassistant"), target("/config")) else {
        return Ok(());
    };
    let path = AaPath::literal("legacy link", "/config").map_err(bad)?;
    out.file(
        path,
        FilePerms::WRITE,
        format!(
            "{}: /config, the folder's old place, made a link to /homeassistant",
            map.origin
        ),
    );
    Ok(())
}
