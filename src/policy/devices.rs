//! Device access: `full_access`, the device classes (video, uart, usb, gpio) as cgroup rules,
//! the `devices` list, the host's `/dev`, and the sysfs, udev and audio binds that go with
//! them. Raw devices (memory, I/O ports, disks) reach past every file permission of the host,
//! so strict protection withholds them by path unless granted.

use crate::plan::{Device, DeviceClass, Mount, MountKind, SandboxPlan};

use super::devclass::{NodeClass, class_by_name};
use super::{Decision, PolicyError, Right, check_device_path};

/// Whether a `devices` path is withheld under strict protection when judged by its name
/// alone (memory, disks, generic SCSI/NVMe, consoles, unknown names ...); see
/// [`class_by_name`] for the table.
pub fn raw_device(path: &str) -> bool {
    class_by_name(path).right().is_some()
}

/// The right a device node of `class` still needs under `plan`: None when the plan lets it
/// in. The launch-time check asks this of the class it finds on the real node.
pub fn device_withheld(plan: &SandboxPlan, class: NodeClass) -> Option<Right> {
    class
        .right()
        .filter(|r| !plan.device_grants.iter().any(|g| g == r.name()))
}

/// The rights that gate device nodes by class.
const DEVICE_RIGHTS: [Right; 3] = [Right::RawDevices, Right::HostConsole, Right::UnknownDevices];

/// The cgroup rules each device class stands for (by major number): video, uart, usb.
pub const CLASS_CGROUP_RULES: [(DeviceClass, &[&str]); 3] = [
    (
        DeviceClass::Video,
        &["c 226:* rwm", "c 29:* rwm", "c 81:* rwm"],
    ),
    (
        DeviceClass::Uart,
        &["c 166:* rwm", "c 188:* rwm", "c 204:* rwm"],
    ),
    (DeviceClass::Usb, &["c 180:* rwm", "c 189:* rwm"]),
];

impl Decision<'_> {
    pub(super) fn gpio_sysfs(&mut self) {
        if self.config.gpio && self.options.host.gpio_sysfs {
            for path in ["/sys/class/gpio", "/sys/devices/platform/soc"] {
                self.mount(path.into(), path, false, "gpio: true");
            }
        }
    }

    pub(super) fn devicetree(&mut self) {
        if self.config.devicetree {
            self.grant("devicetree");
            self.mount(
                "/sys/firmware/devicetree/base".into(),
                "/device-tree",
                true,
                "devicetree: true",
            );
        }
    }

    pub(super) fn udev(&mut self) {
        if self.config.udev {
            self.grant("udev");
            self.mount("/run/udev".into(), "/run/udev", true, "udev: true");
        }
    }

    pub(super) fn audio(&mut self) {
        if !self.config.audio {
            return;
        }
        self.grant("audio");
        let pulse = self.root(&["tmp/", &self.full_slug, "_pulse"].concat());
        self.mount_kind(
            pulse,
            "/etc/pulse/client.conf",
            MountKind::File,
            true,
            "audio: true",
        );
        self.mount_kind(
            self.root("audio/external"),
            "/run/audio",
            MountKind::SocketDirectory,
            true,
            "audio: true",
        );
        self.mount_kind(
            self.root("audio/asound"),
            "/etc/asound.conf",
            MountKind::File,
            true,
            "audio: true",
        );
    }

    /// `full_access` (every device), or else the declared classes and the `devices` list.
    pub(super) fn devices(&mut self) -> Result<(), PolicyError> {
        let full_access = self.config.full_access
            && if self.strict() {
                self.allow(Right::FullAccess, "every host device, disks included")
            } else {
                self.allow_unprotected(
                    Right::FullAccess,
                    "protection mode limits device access to the declared classes",
                )
            };
        if full_access {
            self.cgroup_rules.insert("a *:* rwm".into());
            self.device_classes.insert(DeviceClass::FullAccess);
            return Ok(());
        }
        self.class_rules();
        self.device_nodes()
    }

    /// The device classes, each a set of cgroup rules by major number ([`CLASS_CGROUP_RULES`]).
    fn class_rules(&mut self) {
        let config = self.config;
        let wanted = [config.video, config.uart, config.usb];
        let classes = wanted
            .into_iter()
            .zip(CLASS_CGROUP_RULES)
            .map(|(w, (class, rules))| (w, class, rules));
        for (wanted, class, rules) in classes {
            if wanted {
                self.grant(class.name());
                self.cgroup_rules
                    .extend(rules.iter().map(|r| r.to_string()));
                self.device_classes.insert(class);
            }
        }
        if config.gpio {
            // The gpio majors are dynamic (read from the host's udev database at launch).
            self.grant("gpio");
            self.device_classes.insert(DeviceClass::Gpio);
        }
    }

    /// The `devices` list: checked paths, each withheld under strict protection when its class
    /// (by what the host says the node is, else by its name) needs a right not granted.
    fn device_nodes(&mut self) -> Result<(), PolicyError> {
        let config = self.config;
        for path in &config.devices {
            if !self.strict() {
                self.granted.push(["device:", path].concat());
                continue;
            }
            // A trailing '/' names a directory of devices (`/dev/dvb/`): Docker passes every
            // node under it. One is dropped so the path is normalised.
            let path = path.strip_suffix('/').unwrap_or(path);
            check_device_path(path).map_err(|why| PolicyError::BadDevicePath {
                path: path.to_owned(),
                why,
            })?;
            let class = self.options.host.devices.class_of(path);
            if let Some(right) = class.right() {
                let reason = format!("{} (class {})", class.reason(), class.name());
                if !self.allow_entry(right, &["device:", path].concat(), &reason) {
                    continue;
                }
            }
            self.granted.push(["device:", path].concat());
            self.devices.push(Device {
                path_on_host: path.to_owned(),
                path_in_container: path.to_owned(),
                cgroup_permissions: "rwm".into(),
            });
        }
        self.note_device_grants();
        Ok(())
    }

    /// The device rights this plan lets in, for the launch-time check of the real nodes: all
    /// of them without strict protection, else those granted. A granted one counts as used
    /// while any node is passed, since the launch may find that node needs it.
    fn note_device_grants(&mut self) {
        let all = !self.strict() || !self.options.protected;
        for right in DEVICE_RIGHTS {
            if all || self.options.grants.contains(&right) {
                self.device_grants.push(right.name().to_owned());
                if !all && !self.devices.is_empty() {
                    self.used_grants.insert(right);
                }
            }
        }
    }

    /// /dev: the Supervisor always binds the host's /dev read-only and gates access with
    /// cgroup rules; strict mode binds it only for the device classes that need it.
    pub(super) fn dev_mount(&mut self) {
        let strict = self.strict();
        if !strict || !self.device_classes.is_empty() {
            self.mounts.insert(
                0,
                Mount {
                    source: "/dev".into(),
                    target: "/dev".into(),
                    read_only: true,
                    kind: MountKind::Devices,
                    propagation: None,
                    non_recursive: true,
                    exec: false,
                    origin: if strict {
                        "device access (video/uart/usb/gpio/full_access)".into()
                    } else {
                        "base (Supervisor): host /dev".into()
                    },
                },
            );
        }
    }
}
