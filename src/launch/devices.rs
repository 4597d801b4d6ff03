//! The launch-time device check, shared by both backends: each `devices` node of the plan is
//! looked at on the real host (links followed, with a bound, then its type and numbers) and
//! the start is refused if what the node is needs a right the plan does not give. A plan
//! made where the node was absent decided by the name; a name can say `ttyUSB0` of a disk.
//! Also reads the host's `/dev` into [`DeviceFacts`] for plans made on this host.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::plan::SandboxPlan;
use crate::policy::{self, DeviceFacts, NodeFact, NodeKind};

/// Links followed before a node counts as unresolvable (the kernel's own bound is 40).
const MAX_LINKS: usize = 16;
/// How deep and how many nodes a directory entry (`/dev/dvb`) or a scan of `/dev` reads.
const MAX_DEPTH: usize = 4;
const MAX_NODES: usize = 8192;

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error(
        "device {device} (on the host: {resolved}) is {class} (class {class_name}): the plan withholds it under strict protection; --grant {grant} allows it. Nothing was started"
    )]
    Withheld {
        device: String,
        resolved: String,
        class: &'static str,
        class_name: &'static str,
        grant: &'static str,
    },
    #[error("device {0}: more than {MAX_LINKS} links, or a link loop; nothing was started")]
    TooManyLinks(String),
    #[error(
        "device {0}: more than {MAX_NODES} nodes or deeper than {MAX_DEPTH} directories; nothing was started"
    )]
    TooLarge(String),
    #[error("device {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DeviceError + '_ {
    move |source| DeviceError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Refuse the plan if a node it passes is, on this host, of a class the plan withholds.
/// `dev_root` is where the plan's `/dev` is on this host (`/dev`; a test uses another
/// directory). A node that does not exist passes: nothing can be opened through it, and the
/// backend reports it missing.
pub fn check(plan: &SandboxPlan, dev_root: &Path) -> Result<(), DeviceError> {
    if plan.devices.is_empty() {
        return Ok(());
    }
    let drivers = char_drivers();
    for device in &plan.devices {
        let rel = device.path_on_host.trim_start_matches("/dev/");
        let path = dev_root.join(rel);
        let mut budget = MAX_NODES;
        for_each_node(&path, MAX_DEPTH, &mut budget, &mut |fact| {
            let class = policy::class_of_fact(fact, &drivers);
            match policy::device_withheld(plan, class) {
                None => Ok(()),
                Some(right) => Err(DeviceError::Withheld {
                    device: device.path_on_host.clone(),
                    resolved: fact.resolved.clone(),
                    class: describe(fact.kind),
                    class_name: class.name(),
                    grant: right.name(),
                }),
            }
        })?;
    }
    Ok(())
}

fn describe(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Char => "a character device",
        NodeKind::Block => "a block device",
        NodeKind::Directory => "a directory",
        NodeKind::Other => "not a device node",
    }
}

/// `f` for the node at `path` (links followed) or, for a directory, every node under it.
fn for_each_node(
    path: &Path,
    depth: usize,
    budget: &mut usize,
    f: &mut dyn FnMut(&NodeFact) -> Result<(), DeviceError>,
) -> Result<(), DeviceError> {
    let Some(fact) = node_fact(path)? else {
        return Ok(());
    };
    *budget = budget
        .checked_sub(1)
        .ok_or_else(|| DeviceError::TooLarge(path.display().to_string()))?;
    if fact.kind != NodeKind::Directory {
        return f(&fact);
    }
    if depth == 0 {
        return Err(DeviceError::TooLarge(path.display().to_string()));
    }
    let dir = PathBuf::from(&fact.resolved);
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(io(&dir))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io(&dir))?;
    entries.sort();
    for entry in entries {
        for_each_node(&entry, depth - 1, budget, f)?;
    }
    Ok(())
}

/// What the node at `path` is after following its links (None: it does not exist).
pub fn node_fact(path: &Path) -> Result<Option<NodeFact>, DeviceError> {
    let mut current = path.to_path_buf();
    for _ in 0..=MAX_LINKS {
        let meta = match std::fs::symlink_metadata(&current) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&current)(e)),
        };
        let ft = meta.file_type();
        if ft.is_symlink() {
            let target = std::fs::read_link(&current).map_err(io(&current))?;
            current = match current.parent() {
                Some(parent) => parent.join(target),
                None => target,
            };
            continue;
        }
        let kind = if ft.is_char_device() {
            NodeKind::Char
        } else if ft.is_block_device() {
            NodeKind::Block
        } else if ft.is_dir() {
            NodeKind::Directory
        } else {
            NodeKind::Other
        };
        let rdev = meta.rdev();
        return Ok(Some(NodeFact {
            kind,
            major: nix::sys::stat::major(rdev) as u32,
            minor: nix::sys::stat::minor(rdev) as u32,
            resolved: current.to_string_lossy().into_owned(),
        }));
    }
    Err(DeviceError::TooManyLinks(path.display().to_string()))
}

/// The host's character drivers by major; none readable leaves dynamic majors unknown (and
/// so withheld under strict protection).
fn char_drivers() -> BTreeMap<u32, String> {
    std::fs::read_to_string("/proc/devices")
        .map(|t| policy::parse_proc_devices(&t))
        .unwrap_or_default()
}

/// The nodes of the host's `/dev` (bounded; what cannot be read is left out and so decided
/// by name), for a plan made on this host.
pub fn host_facts() -> DeviceFacts {
    let mut nodes = BTreeMap::new();
    scan(Path::new("/dev"), MAX_DEPTH, &mut nodes);
    DeviceFacts {
        nodes,
        char_drivers: char_drivers(),
    }
}

fn scan(dir: &Path, depth: usize, nodes: &mut BTreeMap<String, NodeFact>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if nodes.len() >= MAX_NODES {
            return;
        }
        let path = entry.path();
        let Ok(Some(fact)) = node_fact(&path) else {
            continue;
        };
        // Only real subdirectories are descended into: a link to a directory is recorded as
        // one node, and its target is judged by name.
        let real_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        nodes.insert(path.to_string_lossy().into_owned(), fact);
        if real_dir && depth > 0 {
            scan(&path, depth - 1, nodes);
        }
    }
}
