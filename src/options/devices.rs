//! The host's devices as the Supervisor's hardware manager knows them (from udev): each
//! device node with its subsystem, its udev links and its sysfs path. A `device` option
//! must name one of them (`HardwareManager.get_by_path`).

use std::path::{Component, Path, PathBuf};

/// One device node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    pub path: PathBuf,
    pub subsystem: String,
    pub links: Vec<PathBuf>,
    pub sysfs: PathBuf,
}

/// The devices a `device` option may name.
#[derive(Clone, Debug, Default)]
pub struct DeviceTable {
    pub devices: Vec<Device>,
}

/// The link folders udev fills (`/dev/serial/by-id`, `/dev/disk/by-uuid`, ...).
const LINK_DIRS: [&str; 4] = ["/dev/serial", "/dev/disk", "/dev/v4l", "/dev/input"];

/// Devices the Supervisor hides (`HwHelper.hide_virtual_device`): virtual ttys, block and
/// console devices.
const HIDDEN_SYSFS: [&str; 3] = [
    "/sys/devices/virtual/tty/",
    "/sys/devices/virtual/block/",
    "/sys/devices/virtual/vc/",
];

impl DeviceTable {
    /// The device `value` names, compared as `pathlib.Path`s are: `//` and `/./` collapse, a
    /// trailing `/` goes, `..` stays (so `/dev/../dev/ttyUSB0` names nothing).
    pub fn get_by_path(&self, value: &str) -> Option<&Device> {
        // pathlib keeps exactly two leading slashes (POSIX leaves their meaning open), so
        // `//dev/x` is another path than `/dev/x`.
        if value.starts_with("//") && !value.starts_with("///") {
            return None;
        }
        let wanted = normalise(value);
        self.devices
            .iter()
            .find(|d| d.path == wanted || d.sysfs == wanted || d.links.contains(&wanted))
    }

    /// This host's devices: every device of `/sys/class/*/*` with a node (its `DEVNAME`),
    /// less the hidden virtual ones, with the udev links under `/dev` that point at it.
    pub fn from_host() -> DeviceTable {
        Self::scan(Path::new("/sys/class"), Path::new("/dev"))
    }

    fn scan(class_root: &Path, dev: &Path) -> DeviceTable {
        let mut devices = Vec::new();
        for class in read_dir(class_root) {
            let Some(subsystem) = class.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            for entry in read_dir(&class) {
                if let Some(device) = device_of(&entry, subsystem, dev)
                    && !devices.iter().any(|d: &Device| d.path == device.path)
                {
                    devices.push(device);
                }
            }
        }
        let mut table = DeviceTable { devices };
        table.add_links();
        table
    }

    fn add_links(&mut self) {
        for root in LINK_DIRS {
            for kind in read_dir(Path::new(root)) {
                for link in read_dir(&kind) {
                    let Ok(target) = std::fs::canonicalize(&link) else {
                        continue;
                    };
                    if let Some(d) = self.devices.iter_mut().find(|d| d.path == target) {
                        d.links.push(link);
                    }
                }
            }
        }
    }
}

fn read_dir(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|it| it.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    out.sort();
    out
}

fn device_of(entry: &Path, subsystem: &str, dev: &Path) -> Option<Device> {
    let sysfs = std::fs::canonicalize(entry).ok()?;
    let shown = sysfs.to_string_lossy();
    if HIDDEN_SYSFS.iter().any(|h| shown.starts_with(h)) {
        return None;
    }
    let uevent = std::fs::read_to_string(sysfs.join("uevent")).ok()?;
    let name = uevent.lines().find_map(|l| l.strip_prefix("DEVNAME="))?;
    let path = dev.join(name);
    path.exists().then(|| Device {
        path,
        subsystem: subsystem.to_owned(),
        links: Vec::new(),
        sysfs,
    })
}

/// `pathlib.PurePosixPath` normalisation.
pub fn normalise(value: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for part in Path::new(value).components() {
        match part {
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_compare_like_pathlib() {
        let table = DeviceTable {
            devices: vec![Device {
                path: "/dev/ttyUSB0".into(),
                subsystem: "tty".into(),
                links: vec!["/dev/serial/by-id/usb-XYZ".into()],
                sysfs: "/sys/devices/usb1/ttyUSB0".into(),
            }],
        };
        for name in [
            "/dev/ttyUSB0",
            "///dev/ttyUSB0/",
            "/dev/./ttyUSB0",
            "/dev/serial/by-id/usb-XYZ",
            "/sys/devices/usb1/ttyUSB0",
        ] {
            assert!(table.get_by_path(name).is_some(), "{name}");
        }
        for name in [
            "//dev/ttyUSB0",
            "/dev/../dev/ttyUSB0",
            "dev/ttyUSB0",
            "/dev/ttyUSB1",
            "",
        ] {
            assert!(table.get_by_path(name).is_none(), "{name}");
        }
    }

    #[test]
    fn the_host_table_holds_real_nodes() {
        // Every container and host has /dev/null (mem subsystem) under /sys/class/mem.
        let table = DeviceTable::from_host();
        let null = table
            .get_by_path("/dev/null")
            .expect("/dev/null is a device here");
        assert_eq!(null.subsystem, "mem");
        assert!(null.sysfs.starts_with("/sys/devices"));
    }
}
