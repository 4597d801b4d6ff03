//! The config keys learn can suggest: each one a small change to a validated config, with the
//! YAML an author adds for it. Which ones a record could need is guessed broadly here; the
//! profile oracle then keeps only those whose profile really allows the access.

use serde::Serialize;

use super::access::Access;
use crate::config::{AddonConfig, Capability, MapEntry, MapType};

/// One config change.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "key", rename_all = "snake_case")]
pub enum Edit {
    /// A `map` entry (the folder's default path).
    Map { folder: MapType, read_only: bool },
    /// A `privileged` capability.
    Privileged { capability: Capability },
    /// A `devices` entry.
    Device { path: String },
    /// A boolean key set to true (`uart`, `usb`, `video`, `gpio`, `audio`, `host_network`...).
    Flag { name: &'static str },
}

/// The boolean keys learn suggests, narrowest first: the order breaks ties between keys that
/// cost the same rating.
const FLAGS: &[&str] = &[
    "uart",
    "usb",
    "video",
    "gpio",
    "audio",
    "devicetree",
    "host_dbus",
    "host_pid",
    "host_network",
    "kernel_modules",
];

impl Edit {
    /// How the key reads in a config, in one line: `map: share:rw`.
    pub fn key(&self) -> String {
        match self {
            Edit::Map { folder, read_only } => {
                format!(
                    "map: {}:{}",
                    folder.name(),
                    if *read_only { "ro" } else { "rw" }
                )
            }
            Edit::Privileged { capability } => format!("privileged: {}", capability.name()),
            Edit::Device { path } => format!("devices: {path}"),
            Edit::Flag { name } => format!("{name}: true"),
        }
    }

    /// The YAML to add to `config.yaml` (merged into the list when the key is there already).
    pub fn yaml(&self) -> String {
        match self {
            Edit::Map { folder, read_only } => format!(
                "map:\n  - type: {}\n    read_only: {read_only}\n",
                folder.name()
            ),
            Edit::Privileged { capability } => {
                format!("privileged:\n  - {}\n", capability.name())
            }
            Edit::Device { path } => format!("devices:\n  - {path}\n"),
            Edit::Flag { name } => format!("{name}: true\n"),
        }
    }

    /// Whether the config already has this key (an rw map also covers ro).
    pub fn present_in(&self, config: &AddonConfig) -> bool {
        match self {
            Edit::Map { folder, read_only } => config
                .map
                .iter()
                .any(|m| m.kind == *folder && (*read_only || !m.read_only)),
            Edit::Privileged { capability } => config.privileged.contains(capability),
            Edit::Device { path } => config.devices.iter().any(|d| d == path),
            Edit::Flag { name } => config.flag(name) == Some(true),
        }
    }

    /// The config with this key added.
    pub fn apply(&self, config: &AddonConfig) -> AddonConfig {
        let mut c = config.clone();
        match self {
            Edit::Map { folder, read_only } => {
                c.map.retain(|m| m.kind != *folder);
                c.map.push(MapEntry {
                    kind: *folder,
                    read_only: *read_only,
                    path: None,
                });
            }
            Edit::Privileged { capability } => {
                if !c.privileged.contains(capability) {
                    c.privileged.push(*capability);
                }
            }
            Edit::Device { path } => {
                if !c.devices.contains(path) {
                    c.devices.push(path.clone());
                }
            }
            Edit::Flag { name } => {
                if let Some(f) = c.flag_mut(name) {
                    *f = true;
                }
            }
        }
        c
    }

    /// Rank among edits that allow the same access: a folder, then a class of devices (the
    /// Supervisor's `uart`/`usb`/`video`/`gpio`/`audio`, which follow the device whatever node
    /// name the host gives it, as the add-on documentation advises), then one device node,
    /// then a capability, then a host right.
    pub fn rank(&self) -> usize {
        match self {
            Edit::Map { read_only, .. } => usize::from(!*read_only),
            Edit::Flag { name } if FLAGS[..5].contains(name) => 2,
            Edit::Device { .. } => 3,
            Edit::Privileged { .. } => 4,
            Edit::Flag { name } => 5 + FLAGS.iter().position(|f| f == name).unwrap_or(0),
        }
    }
}

/// The folders a `map` entry can add, by their current names (`data` is always there).
pub fn mappable_folders() -> impl Iterator<Item = MapType> {
    MapType::ALL
        .into_iter()
        .filter(|f| f.modern_name().is_none() && *f != MapType::Data)
}

/// Every edit that could plausibly allow `access` (the oracle decides which really do).
pub fn candidates(access: &Access) -> Vec<Edit> {
    match access {
        Access::File { path, perms } => {
            let write = perms.contains('w') || perms.contains('l') || perms.contains('k');
            let mut out: Vec<Edit> = mappable_folders()
                .flat_map(|folder| {
                    let rw = Edit::Map {
                        folder,
                        read_only: false,
                    };
                    let ro = Edit::Map {
                        folder,
                        read_only: true,
                    };
                    if write { vec![rw] } else { vec![ro, rw] }
                })
                .collect();
            if path.starts_with("/dev/") || path.starts_with("/sys/") || path.starts_with("/run/") {
                out.extend(FLAGS.iter().map(|name| Edit::Flag { name }));
            }
            if path.starts_with("/dev/") {
                out.push(Edit::Device { path: path.clone() });
            }
            out
        }
        Access::Capability { name } => Capability::parse(&name.to_ascii_uppercase())
            .map(|capability| vec![Edit::Privileged { capability }])
            .unwrap_or_default(),
        Access::Network { .. } => vec![
            Edit::Privileged {
                capability: Capability::NetRaw,
            },
            Edit::Privileged {
                capability: Capability::NetAdmin,
            },
            Edit::Flag {
                name: "host_network",
            },
        ],
        Access::Signal { .. } | Access::Ptrace { .. } => vec![
            Edit::Flag { name: "host_pid" },
            Edit::Privileged {
                capability: Capability::SysPtrace,
            },
        ],
        Access::Unix { .. } => vec![Edit::Flag { name: "host_dbus" }],
        Access::Mount { .. } | Access::Other { .. } => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_read_as_config_keys() {
        let share = Edit::Map {
            folder: MapType::Share,
            read_only: false,
        };
        assert_eq!(share.key(), "map: share:rw");
        assert_eq!(
            share.yaml(),
            "map:\n  - type: share\n    read_only: false\n"
        );
        let cap = Edit::Privileged {
            capability: Capability::NetAdmin,
        };
        assert_eq!(cap.key(), "privileged: NET_ADMIN");
        assert_eq!(Edit::Flag { name: "uart" }.yaml(), "uart: true\n");
        assert!(share.rank() < Edit::Flag { name: "uart" }.rank());
        let node = Edit::Device {
            path: "/dev/ttyUSB0".into(),
        };
        assert!(Edit::Flag { name: "uart" }.rank() < node.rank());
        assert!(
            Edit::Flag { name: "uart" }.rank()
                < Edit::Flag {
                    name: "host_network"
                }
                .rank()
        );
    }

    #[test]
    fn candidates_follow_the_access() {
        let write = Access::File {
            path: "/share/x".into(),
            perms: "w".into(),
        };
        let c = candidates(&write);
        assert!(c.contains(&Edit::Map {
            folder: MapType::Share,
            read_only: false
        }));
        assert!(!c.iter().any(|e| matches!(
            e,
            Edit::Map {
                read_only: true,
                ..
            }
        )));
        assert!(!c.iter().any(|e| matches!(e, Edit::Device { .. })));
        let dev = Access::File {
            path: "/dev/ttyUSB0".into(),
            perms: "rw".into(),
        };
        assert!(candidates(&dev).contains(&Edit::Device {
            path: "/dev/ttyUSB0".into()
        }));
        let cap = Access::Capability {
            name: "sys_time".into(),
        };
        assert_eq!(
            candidates(&cap),
            [Edit::Privileged {
                capability: Capability::SysTime
            }]
        );
        assert!(
            candidates(&Access::Capability {
                name: "mac_admin".into()
            })
            .is_empty()
        );
    }
}
