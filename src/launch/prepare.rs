//! The host-side preparation both backends share: the profile text that confines a plan,
//! the plan's data folders, and the per-start token.

use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use super::{LaunchError, checked_path};
use crate::plan::{Confinement, MountKind, SandboxPlan};
use crate::profile;

/// The text of the profile `name` that confines `plan`: the add-on's own `apparmor.txt`
/// renamed, or the generated one; in learn mode the complain-mode text the caller gives.
pub fn profile_text(
    plan: &SandboxPlan,
    name: &str,
    addon_profile: Option<&str>,
    learning: Option<&str>,
) -> Result<String, LaunchError> {
    match (plan.confinement, learning) {
        (Confinement::AddonProfile, Some(_)) => Err(LaunchError::LearningNeedsGenerated),
        (_, Some(text)) => Ok(text.to_owned()),
        (Confinement::AddonProfile, None) => {
            let text =
                rename_addon_profile(addon_profile.ok_or(LaunchError::AddonProfileMissing)?, name);
            only_profile(&text, name)?;
            Ok(text)
        }
        (_, None) => Ok(profile::generate(plan)?.render(false)?),
    }
}

/// The parser's own reading of the author's text: loading it with `--replace` replaces every
/// profile it holds, so a second one (`docker-default`, another add-on's, an indented one the
/// column-0 rename missed) would replace that profile in the kernel. Only `name` and its own
/// children (`name//hat`, confined to it by the kernel's naming) may be there.
fn only_profile(text: &str, name: &str) -> Result<(), LaunchError> {
    let parser = crate::apparmor::Parser::find()?;
    let names = parser.names(text)?;
    let child = format!("{name}//");
    let ours = |n: &String| n == name || n.starts_with(&child);
    if names.iter().any(|n| n == name) && names.iter().all(ours) {
        return Ok(());
    }
    Err(LaunchError::ForeignProfiles {
        expected: name.to_owned(),
        names,
    })
}

/// One host object a plan binds, opened and checked without following links (see
/// [`super::checked_path`]): the path the plan names and the descriptor of what was checked.
#[derive(Debug)]
pub struct CheckedSource {
    pub path: String,
    /// The folder `path` was reached from without following a link (the data root, or `/`).
    pub from: PathBuf,
    pub fd: OwnedFd,
}

/// What a plan binds from the host, checked: `mounts` in the order of `plan.mounts` (only the
/// sources under the data root, and `/run/udev`), `devices` in the order of `plan.devices`.
#[derive(Debug, Default)]
pub struct CheckedSources {
    pub mounts: Vec<CheckedSource>,
    pub devices: Vec<CheckedSource>,
}

impl CheckedSources {
    /// The checked descriptor of a mount source, if that source was checked.
    pub fn mount(&self, source: &str) -> Option<&OwnedFd> {
        self.mounts.iter().find(|c| c.path == source).map(|c| &c.fd)
    }
}

/// Sources outside the data root that are checked from `/` too: the rest (`/run/dbus`,
/// `/lib/modules`, which is a link on merged-/usr hosts) are the host's own system paths, where
/// an add-on cannot write.
const CHECKED_HOST_SOURCES: [&str; 1] = ["/run/udev"];

/// The plan's data folders under the data root, created 0755 as the Supervisor's `mkdir` makes
/// them (an add-on may run a service as a user of its own: vlc reads `/media` as `vlc`), below a
/// data root made 0750, which keeps the host's other users out of all of them,
/// and every source under it, `/run/udev` and every device path, opened without following a
/// link: a source that is or passes through a link is refused by name. Folders elsewhere are
/// never created.
pub fn check_sources(plan: &SandboxPlan, data_root: &Path) -> Result<CheckedSources, LaunchError> {
    let mut out = CheckedSources::default();
    create_data_root(plan, data_root)?;
    for m in &plan.mounts {
        let source = Path::new(&m.source);
        let (from, fd) = if source.starts_with(data_root) {
            let fd = if m.kind == MountKind::Directory {
                checked_path::create_dir_beneath(data_root, source, 0o755)?
            } else {
                checked_path::open_beneath(data_root, source)?
            };
            (data_root, fd)
        } else if CHECKED_HOST_SOURCES.contains(&m.source.as_str()) {
            (
                Path::new("/"),
                checked_path::open_beneath(Path::new("/"), source)?,
            )
        } else {
            continue;
        };
        out.mounts.push(CheckedSource {
            path: m.source.clone(),
            from: from.to_path_buf(),
            fd,
        });
    }
    for d in &plan.devices {
        let fd = checked_path::open_beneath(Path::new("/"), Path::new(&d.path_on_host))?;
        out.devices.push(CheckedSource {
            path: d.path_on_host.clone(),
            from: PathBuf::from("/"),
            fd,
        });
    }
    Ok(out)
}

/// The validated options as `options.json` in the add-on's data folder, written through the
/// descriptor [`check_sources`] opened (so a link swapped in since cannot redirect it); the
/// Supervisor writes it before every start.
pub fn write_options(
    plan: &SandboxPlan,
    sources: &CheckedSources,
    options: Option<&serde_json::Value>,
) -> Result<(), LaunchError> {
    use std::os::fd::AsRawFd;
    let Some(options) = options else {
        return Ok(());
    };
    let data = plan
        .mounts
        .iter()
        .find(|m| m.origin == crate::plan::DATA_MOUNT_ORIGIN)
        .and_then(|m| sources.mount(&m.source))
        .ok_or_else(|| std::io::Error::other("the plan has no checked data folder"))?;
    let dir = format!("/proc/self/fd/{}", data.as_raw_fd());
    crate::options::write::write_options(Path::new(&dir), options)?;
    Ok(())
}

/// The address written as the pulse client's `default-server` when none is configured: the
/// server's socket in `/run/audio`, which is `<data root>/audio/external` on the host (where
/// the Supervisor's audio plugin keeps its socket too).
pub const DEFAULT_AUDIO_SERVER: &str = "unix:/run/audio/pulse.sock";

/// The settings of the Supervisor's `pulse-client.tmpl` (`supervisor/data/`): the server's
/// address, and no autospawned server of the add-on's own.
fn pulse_client_conf(address: &str) -> String {
    [
        "# PulseAudio client configuration written by addon-sandbox for this add-on (the settings\n",
        "# of the Supervisor's pulse-client.tmpl). See pulse-client.conf(5).\n",
        "default-server = ",
        address,
        "\nautospawn = no\n",
    ]
    .concat()
}

/// What the Supervisor's audio plugin gives `/etc/asound.conf`: ALSA through PulseAudio.
const ASOUND_CONF: &str = "# ALSA through the PulseAudio server (written by addon-sandbox)\n\
pcm.!default {\n    type pulse\n}\n\nctl.!default {\n    type pulse\n}\n";

/// An audio server address as the operator gives it: a path is a unix socket; anything else
/// is PulseAudio's own address syntax (`unix:/path`, `tcp:host:port`). One line, printable,
/// so it cannot add a setting of its own to the file.
pub fn audio_server_address(given: &str) -> Result<String, LaunchError> {
    let given = given.trim();
    if given.is_empty() || given.len() > 512 || given.chars().any(char::is_control) {
        return Err(LaunchError::BadAudioServer(given.to_owned()));
    }
    Ok(if given.starts_with('/') {
        ["unix:", given].concat()
    } else {
        given.to_owned()
    })
}

/// The files the Supervisor writes before it creates an audio add-on's container, written as
/// the plan's mount sources say (under the data root, no link followed): the pulse client
/// file, the asound file, and the folder bound at `/run/audio`.
pub fn write_host_files(
    plan: &SandboxPlan,
    data_root: &Path,
    audio_server: Option<&str>,
) -> Result<(), LaunchError> {
    create_data_root(plan, data_root)?;
    for m in &plan.mounts {
        let source = Path::new(&m.source);
        if !source.starts_with(data_root) {
            continue;
        }
        match (m.kind, m.target.as_str()) {
            (MountKind::File, "/etc/pulse/client.conf") => {
                let address = match audio_server {
                    Some(a) => audio_server_address(a)?,
                    None => DEFAULT_AUDIO_SERVER.to_owned(),
                };
                let text = pulse_client_conf(&address);
                checked_path::write_file_beneath(data_root, source, text.as_bytes(), 0o644)?;
            }
            (MountKind::File, "/etc/asound.conf") => {
                checked_path::write_file_beneath(data_root, source, ASOUND_CONF.as_bytes(), 0o644)?;
            }
            (MountKind::SocketDirectory, _) => {
                checked_path::create_dir_beneath(data_root, source, 0o755)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// The plan as this host can deliver it, as the Supervisor does: a declared device absent
/// here is skipped and `/run/udev` is bound only where it exists, each said in a warning.
/// Nothing else changes: a right is only ever removed here, never added.
pub fn present_on_host(plan: &SandboxPlan, warnings: &mut Vec<String>) -> SandboxPlan {
    let mut plan = plan.clone();
    plan.devices.retain(|d| {
        // `exists` follows links: a dangling `/dev/serial/by-id/...` link is absent too.
        let here = Path::new(&d.path_on_host).exists();
        if !here {
            warnings.push(format!(
                "device {} does not exist on this host: skipped (the add-on starts without it)",
                d.path_on_host
            ));
        }
        here
    });
    plan.mounts.retain(|m| {
        let absent =
            CHECKED_HOST_SOURCES.contains(&m.source.as_str()) && !Path::new(&m.source).exists();
        if absent {
            warnings.push(format!(
                "{} does not exist on this host (no udev here): not bound at {}",
                m.source, m.target
            ));
        }
        !absent
    });
    plan
}

/// The data root, when the plan binds anything from it. It is the operator's: created as a
/// whole path (links followed), unlike everything below it.
fn create_data_root(plan: &SandboxPlan, data_root: &Path) -> Result<(), LaunchError> {
    if plan
        .mounts
        .iter()
        .any(|m| Path::new(&m.source).starts_with(data_root))
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(data_root)?;
    }
    Ok(())
}

/// 32 random bytes, hex: the add-on's token for one start.
pub fn new_token() -> Result<String, std::io::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The author's profile with its name replaced by ours, as the Supervisor installs it.
pub fn rename_addon_profile(text: &str, name: &str) -> String {
    let mut out = String::with_capacity(text.len() + name.len());
    let mut done = false;
    for line in text.split_inclusive('\n') {
        if !done && line.starts_with("profile ") {
            let rest = &line["profile ".len()..];
            let after = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
            out.push_str("profile ");
            out.push_str(name);
            out.push_str(&rest[after..]);
            done = true;
        } else {
            out.push_str(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{new_token, rename_addon_profile};

    #[test]
    fn the_authors_profile_gets_the_installed_name() {
        let text = "#include <tunables/global>\nprofile example flags=(attach_disconnected) {\n  profile child {\n  }\n}\n";
        let renamed = rename_addon_profile(text, "local_example");
        assert!(renamed.contains("\nprofile local_example flags=(attach_disconnected) {\n"));
        assert!(
            renamed.contains("  profile child {"),
            "children keep their names"
        );
    }

    /// Found in the AppArmor VM: a map folder made 0750 by an earlier add-on's start kept vlc's
    /// own user out of `/media`. Folders are 0755 under a 0750 data root.
    #[test]
    fn map_folders_are_readable_by_the_addons_own_users_and_the_root_keeps_the_host_out() {
        use std::os::unix::fs::PermissionsExt;
        let yaml =
            "name: T\nversion: \"1\"\nslug: t\ndescription: d\narch: [amd64]\nmap: [media:rw]\n";
        let root = crate::source::parse(yaml, crate::source::Format::Yaml).unwrap();
        let mut sink = crate::diag::Sink::new(std::path::Path::new("config.yaml"), None);
        let config = crate::config::validate::validate(&root, &mut sink).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let data_root = dir.path().join("data");
        let options = crate::policy::PlanOptions {
            data_root: data_root.to_string_lossy().into_owned(),
            ..Default::default()
        };
        let plan = crate::policy::decide(&config, false, &options).unwrap();
        super::check_sources(&plan, &data_root).unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data_root), 0o750);
        assert_eq!(mode(&data_root.join("media")), 0o755);
    }

    #[test]
    fn tokens_are_fresh_hex() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
