//! Plan mounts → file rules: each kind of mount (directory, file, socket) read-only or
//! writable, W^X on writable maps, the legacy `/config` link beside `/homeassistant`, and the
//! Supervisor's shared folders refused where the config does not map them.

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
    unmapped_shared_folders(plan, out)?;
    legacy_config_link(plan, out)
}

/// The Supervisor's shared folders whose place no image fills: a container sees them only
/// through a map. (`/config`, `/homeassistant` and the add-on config folders are left out:
/// images do ship their own `/config`.)
const SHARED_FOLDERS: [&str; 4] = ["/ssl", "/share", "/media", "/backup"];

/// A shared folder the config does not map is refused, reading included. Without the map the
/// place holds the image's own (empty) folder, so the refusal costs the add-on nothing; it
/// makes the use of a folder the config forgot a recorded refusal (which `learn` reads as the
/// `map` entry to add) instead of a silent read of an empty folder, and it keeps a folder the
/// operator did not hand over out of reach should anything put it there.
fn unmapped_shared_folders(plan: &SandboxPlan, out: &mut Out) -> Result<(), ProfileError> {
    for folder in SHARED_FOLDERS {
        let inside = |t: &str| t == folder || t.starts_with(&[folder, "/"].concat());
        if plan.mounts.iter().any(|m| inside(&m.target)) {
            continue;
        }
        let path = AaPath::literal("shared folder", folder)
            .map_err(bad)?
            .with_pattern("{,/**}");
        out.deny(
            path,
            FilePerms::RW,
            format!(
                "base: {folder} is not mapped (add `map: {}` to use it)",
                &folder[1..]
            ),
        );
    }
    Ok(())
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
