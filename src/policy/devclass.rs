//! What a device node is, decided without touching the host: by the name under `/dev` when
//! the node is not at hand (plan time on another host), by its type and major/minor number
//! when it is (facts a caller read from the real node: the plan's `HostFacts`, or the
//! launch-time check). Names lie (`/dev/vg0/root` is a disk, a udev link can be called
//! anything), so a name only ever decides until the node itself can be looked at.
//!
//! Major numbers are the kernel's `Documentation/admin-guide/devices.txt`; dynamic majors
//! (hidraw, gpiochip, NVMe generic, ...) are matched by the driver name `/proc/devices` gives.

use std::collections::BTreeMap;

use super::Right;

/// The class of a device node. Each class is either allowed wherever the `devices` list
/// names it, or withheld under strict protection until the right of [`NodeClass::right`] is
/// granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeClass {
    /// null, zero, full, random, urandom, tty (the opener's own terminal), ptmx.
    Standard,
    /// ttyS, ttyUSB, ttyACM, ttyAMA and the `/dev/serial` links.
    Serial,
    /// video4linux, framebuffers, DRM, media, CEC, DVB, the Raspberry Pi's VideoCore.
    Video,
    Sound,
    /// Input event nodes and hidraw.
    Input,
    Gpio,
    I2c,
    Spi,
    /// `/dev/bus/usb` nodes.
    Usb,
    /// `/dev/net/tun`: a network interface in the add-on's own namespace.
    NetTun,
    /// `/dev/fuse`: mounting still needs `SYS_ADMIN`, which is decided on its own.
    Fuse,
    /// Any block device: a whole disk or partition, raw.
    Block,
    /// Physical memory, kernel memory, I/O ports.
    Memory,
    /// SCSI generic (`sg`, `bsg`): raw commands to a disk.
    ScsiGeneric,
    /// NVMe controllers and generic namespaces (`nvme0`, `ng0n1`): raw commands to a disk.
    NvmeGeneric,
    /// Raw flash (MTD character devices).
    Mtd,
    /// CPU model-specific registers, CPUID, microcode loading.
    CpuRegisters,
    /// The host kernel's log: read it, write into it.
    Kmsg,
    /// The host's console and virtual terminals (`console`, `tty0`..`tty63`).
    Console,
    /// The host console's screen contents (`vcs*`, `vcsa*`, `vcsu*`).
    Vcs,
    /// The host's pseudo-terminals (`/dev/pts/*`): a host shell's terminal.
    Devpts,
    /// Anything else: a character device no class above knows, or not a device node.
    Unknown,
}

impl NodeClass {
    pub fn name(self) -> &'static str {
        match self {
            NodeClass::Standard => "standard",
            NodeClass::Serial => "serial",
            NodeClass::Video => "video",
            NodeClass::Sound => "sound",
            NodeClass::Input => "input",
            NodeClass::Gpio => "gpio",
            NodeClass::I2c => "i2c",
            NodeClass::Spi => "spi",
            NodeClass::Usb => "usb",
            NodeClass::NetTun => "net_tun",
            NodeClass::Fuse => "fuse",
            NodeClass::Block => "block",
            NodeClass::Memory => "memory",
            NodeClass::ScsiGeneric => "scsi_generic",
            NodeClass::NvmeGeneric => "nvme_generic",
            NodeClass::Mtd => "mtd",
            NodeClass::CpuRegisters => "cpu_registers",
            NodeClass::Kmsg => "kmsg",
            NodeClass::Console => "console",
            NodeClass::Vcs => "vcs",
            NodeClass::Devpts => "devpts",
            NodeClass::Unknown => "unknown",
        }
    }

    /// The right strict protection withholds this class behind; None: always allowed.
    pub fn right(self) -> Option<Right> {
        match self {
            NodeClass::Block
            | NodeClass::Memory
            | NodeClass::ScsiGeneric
            | NodeClass::NvmeGeneric
            | NodeClass::Mtd
            | NodeClass::CpuRegisters
            | NodeClass::Kmsg => Some(Right::RawDevices),
            NodeClass::Console | NodeClass::Vcs | NodeClass::Devpts => Some(Right::HostConsole),
            NodeClass::Unknown => Some(Right::UnknownDevices),
            _ => None,
        }
    }

    /// Why the class is withheld, for the plan and the launch-time refusal.
    pub fn reason(self) -> &'static str {
        match self.right() {
            Some(Right::RawDevices) => {
                "raw disks, memory, CPU registers or the kernel log: access past every file permission of the host"
            }
            Some(Right::HostConsole) => {
                "the host's console, terminals or screen: read and type into the host's sessions"
            }
            _ => "a device no known class covers: withheld until it is granted",
        }
    }
}

/// What a node is, as `stat` tells it after following its links.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    Char,
    Block,
    Directory,
    /// A regular file, socket, fifo, or a link that leads nowhere usable.
    Other,
}

/// One node of the host's `/dev`, read by the caller (the policy never looks at the host).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeFact {
    pub kind: NodeKind,
    pub major: u32,
    pub minor: u32,
    /// The path after following every link.
    pub resolved: String,
}

/// The host's device nodes by path (`/dev/...`, links included), and the character drivers
/// of `/proc/devices` by major number.
#[derive(Clone, Debug, Default)]
pub struct DeviceFacts {
    pub nodes: BTreeMap<String, NodeFact>,
    pub char_drivers: BTreeMap<u32, String>,
}

impl DeviceFacts {
    /// The class of a `devices` path: by what the node is when it is known, else by name.
    pub fn class_of(&self, path: &str) -> NodeClass {
        match self.nodes.get(path) {
            Some(fact) => class_of_fact(fact, &self.char_drivers),
            None => class_by_name(path),
        }
    }
}

/// The class of a node that was looked at; a directory (of nodes) goes by its resolved name.
pub fn class_of_fact(fact: &NodeFact, char_drivers: &BTreeMap<u32, String>) -> NodeClass {
    match fact.kind {
        NodeKind::Block => NodeClass::Block,
        NodeKind::Char => class_by_number(fact.major, fact.minor, char_drivers),
        NodeKind::Directory => class_by_name(&fact.resolved),
        NodeKind::Other => NodeClass::Unknown,
    }
}

/// The class of a character device by its major and minor number.
pub fn class_by_number(major: u32, minor: u32, char_drivers: &BTreeMap<u32, String>) -> NodeClass {
    use NodeClass::*;
    match (major, minor) {
        (1, 1 | 2 | 4) => Memory,
        (1, 3 | 5 | 7 | 8 | 9) => Standard,
        (1, 11) => Kmsg,
        (4, 0..=63) => Console,
        (4, _) => Serial,
        (5, 0 | 2) => Standard,
        (5, 1) => Console,
        (7, _) => Vcs,
        (10, 200) => NetTun,
        (10, 229) => Fuse,
        (10, 184) => CpuRegisters,
        // loop-control and device-mapper control make and reach disks.
        (10, 236 | 237) => Block,
        (13, _) => Input,
        (21, _) => ScsiGeneric,
        (29 | 81 | 212 | 226, _) => Video,
        (89, _) => I2c,
        (90, _) => Mtd,
        (116, _) => Sound,
        (136..=143, _) => Devpts,
        (153, _) => Spi,
        (166 | 188 | 204, _) => Serial,
        (180 | 189, _) => Usb,
        (202 | 203, _) => CpuRegisters,
        _ => char_drivers
            .get(&major)
            .map_or(Unknown, |name| class_by_driver(name)),
    }
}

/// Dynamic majors, by the driver name `/proc/devices` lists.
fn class_by_driver(name: &str) -> NodeClass {
    use NodeClass::*;
    match name {
        "hidraw" => Input,
        "gpiochip" | "gpiomem" => Gpio,
        "nvme" | "nvme-generic" => NvmeGeneric,
        "bsg" => ScsiGeneric,
        "ubi0" | "ubi_ctrl" => Mtd,
        "media" | "cec" | "vchiq" | "vcsm-cma" | "rpivid-hevcmem" => Video,
        "spi" => Spi,
        "i2c" => I2c,
        _ => Unknown,
    }
}

/// The character drivers of `/proc/devices` ("Character devices:" section), by major.
pub fn parse_proc_devices(text: &str) -> BTreeMap<u32, String> {
    text.lines()
        .skip_while(|l| !l.starts_with("Character devices"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty() && !l.starts_with("Block devices"))
        .filter_map(|l| {
            let (major, name) = l.trim().split_once(' ')?;
            Some((major.parse().ok()?, name.trim().to_owned()))
        })
        .collect()
}

/// `prefix` followed by one or more digits and nothing else.
fn numbered(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// `dir` itself or anything under it.
fn under(name: &str, dir: &str) -> bool {
    name.strip_prefix(dir)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The class the kernel's and udev's naming gives a path under `/dev`; a name nothing here
/// knows (an LVM link such as `/dev/vg0/root`, a custom udev alias) is `Unknown`.
pub fn class_by_name(path: &str) -> NodeClass {
    use NodeClass::*;
    let Some(name) = path.strip_prefix("/dev/") else {
        return Unknown;
    };
    let any = |prefixes: &[&str]| prefixes.iter().any(|p| numbered(name, p));
    let dir = |dirs: &[&str]| dirs.iter().any(|d| under(name, d));
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| name.starts_with(p));
    if matches!(
        name,
        "null" | "zero" | "full" | "random" | "urandom" | "tty" | "ptmx"
    ) {
        Standard
    } else if matches!(name, "mem" | "kmem" | "port") {
        Memory
    } else if name == "kmsg" {
        Kmsg
    } else if name == "console" || any(&["tty"]) {
        Console
    } else if any(&["ttyS", "ttyUSB", "ttyACM", "ttyAMA", "ttySAC"]) || dir(&["serial"]) {
        Serial
    } else if name == "vcs" || name == "vcsa" || name == "vcsu" || any(&["vcs", "vcsa", "vcsu"]) {
        Vcs
    } else if dir(&["pts"]) {
        Devpts
    } else if any(&["video", "fb", "media", "cec"])
        || dir(&["dri", "dvb"])
        || matches!(name, "vchiq" | "vcsm-cma")
        || name.starts_with("rpivid-")
    {
        Video
    } else if dir(&["snd"]) {
        Sound
    } else if dir(&["input"]) || any(&["hidraw"]) {
        Input
    } else if any(&["gpiochip"]) || name == "gpiomem" {
        Gpio
    } else if any(&["i2c-"]) {
        I2c
    } else if spidev(name) {
        Spi
    } else if dir(&["bus/usb"]) {
        Usb
    } else if name == "net/tun" {
        NetTun
    } else if name == "fuse" {
        Fuse
    } else if any(&["sg"]) || dir(&["bsg"]) {
        ScsiGeneric
    } else if any(&["nvme"]) || nvme_generic(name) {
        NvmeGeneric
    } else if starts(&["mtdblock"]) {
        Block
    } else if starts(&["mtd", "ubi"]) {
        Mtd
    } else if dir(&["cpu"]) {
        CpuRegisters
    } else if starts(&[
        "sd", "hd", "vd", "xvd", "nvme", "mmcblk", "dm-", "md", "loop", "sr", "nbd", "zram", "ram",
        "zd", "rbd", "pmem", "bcache", "nullb", "disk/", "mapper/",
    ]) {
        Block
    } else {
        Unknown
    }
}

/// `spidev<bus>.<chip>`.
fn spidev(name: &str) -> bool {
    name.strip_prefix("spidev")
        .and_then(|r| r.split_once('.'))
        .is_some_and(|(bus, chip)| numbered(bus, "") && numbered(chip, ""))
}

/// `ng<controller>n<namespace>`.
fn nvme_generic(name: &str) -> bool {
    name.strip_prefix("ng")
        .and_then(|r| r.split_once('n'))
        .is_some_and(|(c, n)| numbered(c, "") && numbered(n, ""))
}
