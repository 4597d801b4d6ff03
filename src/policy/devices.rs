//! Device access: `full_access`, the device classes (video, uart, usb, gpio) as cgroup rules,
//! the `devices` list, the host's `/dev`, and the sysfs, udev and audio binds that go with
//! them. Raw devices (memory, I/O ports, disks) reach past every file permission of the host,
//! so strict protection withholds them by path unless granted.

use crate::plan::{Device, DeviceClass, Mount, MountKind, Withheld};

use super::{Decision, PolicyError, Right, check_device_path};

/// Device nodes that reach past every file permission of the host: physical memory and I/O
/// ports, and block devices (a whole disk or partition, raw). The Supervisor passes them like
/// any other device; strict protection withholds them.
pub fn raw_device(path: &str) -> bool {
    let Some(name) = path.strip_prefix("/dev/") else {
        return false;
    };
    matches!(name, "mem" | "kmem" | "port")
        || [
            "sd", "hd", "vd", "xvd", "nvme", "mmcblk", "dm-", "md", "loop", "sr", "nbd", "zram",
            "disk/", "mapper/",
        ]
        .iter()
        .any(|p| name.starts_with(p))
}

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

    /// The device classes, each a set of cgroup rules by major number.
    fn class_rules(&mut self) {
        let config = self.config;
        let classes: [(bool, DeviceClass, &[&str]); 3] = [
            (
                config.video,
                DeviceClass::Video,
                &["c 226:* rwm", "c 29:* rwm", "c 81:* rwm"],
            ),
            (
                config.uart,
                DeviceClass::Uart,
                &["c 166:* rwm", "c 188:* rwm", "c 204:* rwm"],
            ),
            (
                config.usb,
                DeviceClass::Usb,
                &["c 180:* rwm", "c 189:* rwm"],
            ),
        ];
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

    /// The `devices` list: checked paths, raw ones withheld under strict protection.
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
            if raw_device(path) && !self.allow_device(path) {
                continue;
            }
            self.granted.push(["device:", path].concat());
            self.devices.push(Device {
                path_on_host: path.to_owned(),
                path_in_container: path.to_owned(),
                cgroup_permissions: "rwm".into(),
            });
        }
        Ok(())
    }

    /// A raw device (memory, ports, disks) in strict mode: granted with protection off or by
    /// `--grant raw_devices`, otherwise withheld and reported by path.
    fn allow_device(&mut self, path: &str) -> bool {
        let right = Right::RawDevices;
        if self.options.grants.contains(&right) {
            self.used_grants.insert(right);
            return true;
        }
        if !self.options.protected {
            return true;
        }
        self.withheld.push(Withheld {
            right: ["device:", path].concat(),
            reason: "raw memory, I/O ports or a whole disk: access past every file permission of the host".into(),
            grant_with: ["--grant ", right.name()].concat(),
        });
        false
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
