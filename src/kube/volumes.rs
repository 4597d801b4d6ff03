//! The plan's mounts, tmpfs and devices as volumes, volume mounts and device-plugin resources.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    EmptyDirVolumeSource, HostPathVolumeSource, PersistentVolumeClaimVolumeSource, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::{DeviceMode, Gap, GapEffect, KubeOptions, Storage};
use crate::plan::{DeviceClass, Mount, MountKind, SandboxPlan};
use crate::policy::CLASS_CGROUP_RULES;

/// What the container's volumes come to.
pub struct Volumes {
    pub volumes: Vec<Volume>,
    pub mounts: Vec<VolumeMount>,
    /// Device-plugin resources, one of each device.
    pub limits: BTreeMap<String, Quantity>,
    /// What only `privileged: true` could give (device cgroup rules), if anything.
    pub needs_privileged: Option<String>,
}

pub fn volumes(plan: &SandboxPlan, options: &KubeOptions, gaps: &mut Vec<Gap>) -> Volumes {
    let mut out = Volumes {
        volumes: Vec::new(),
        mounts: Vec::new(),
        limits: BTreeMap::new(),
        needs_privileged: None,
    };
    for (i, m) in plan.mounts.iter().enumerate() {
        let name = volume_name(i, &m.target);
        out.volumes.push(mount_volume(&name, m, options));
        let mut mount = volume_mount(&name, m, gaps);
        if matches!(options.storage, Storage::Pvc { .. }) {
            mount.sub_path = data_subpath(m, options).map(str::to_owned);
        }
        out.mounts.push(mount);
    }
    for (i, (target, opts)) in plan.tmpfs.iter().enumerate() {
        let name = volume_name(plan.mounts.len() + i, target);
        out.volumes.push(tmpfs_volume(&name, target, opts, gaps));
        out.mounts.push(VolumeMount {
            name,
            mount_path: target.clone(),
            ..Default::default()
        });
    }
    devices(plan, options, &mut out, gaps);
    out
}

/// `m<index>-<target as a DNS label>`, at most 63 characters.
fn volume_name(index: usize, target: &str) -> String {
    let base = super::dns_name(target);
    let mut name = format!("m{index}-{base}");
    name.truncate(63);
    while name.ends_with('-') {
        name.pop();
    }
    name
}

/// The folder below the data root a mount's source is, if it is one.
fn data_subpath<'a>(m: &'a Mount, options: &KubeOptions) -> Option<&'a str> {
    let root = options.data_root.trim_end_matches('/');
    m.source
        .strip_prefix(root)
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|rest| !rest.is_empty())
}

fn mount_volume(name: &str, m: &Mount, options: &KubeOptions) -> Volume {
    let data = data_subpath(m, options).is_some();
    if let (true, Storage::Pvc { claim }) = (data, &options.storage) {
        return Volume {
            name: name.to_owned(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim.clone(),
                read_only: Some(m.read_only),
            }),
            ..Default::default()
        };
    }
    let type_ = match m.kind {
        MountKind::Directory if data => "DirectoryOrCreate",
        MountKind::Directory | MountKind::SocketDirectory | MountKind::Devices => "Directory",
        MountKind::File => "File",
        MountKind::Socket => "Socket",
    };
    Volume {
        name: name.to_owned(),
        host_path: Some(HostPathVolumeSource {
            path: m.source.clone(),
            type_: Some(type_.to_owned()),
        }),
        ..Default::default()
    }
}

fn volume_mount(name: &str, m: &Mount, gaps: &mut Vec<Gap>) -> VolumeMount {
    let propagation = match m.propagation.as_deref() {
        None | Some("private" | "rprivate") => None,
        Some("slave" | "rslave") => Some("HostToContainer"),
        Some(other) => {
            gaps.push(Gap::new(
                "mounts",
                GapEffect::Lost,
                format!(
                    "{}: propagation {other} needs `Bidirectional`, which Kubernetes allows only to privileged containers; mounted without propagation",
                    m.target
                ),
            ));
            None
        }
    };
    if m.read_only && m.non_recursive {
        gaps.push(Gap::new(
            "mounts",
            GapEffect::Operator,
            format!("{}: read-only at its top only in the plan; Kubernetes' `readOnly` is the same (no `recursiveReadOnly`)", m.target),
        ));
    }
    let recursive =
        (m.read_only && !m.non_recursive && propagation.is_none()).then(|| "IfPossible".to_owned());
    VolumeMount {
        name: name.to_owned(),
        mount_path: m.target.clone(),
        read_only: Some(m.read_only),
        recursive_read_only: recursive,
        mount_propagation: propagation.map(str::to_owned),
        ..Default::default()
    }
}

/// A tmpfs as a memory `emptyDir` (its `size=` as the size limit); other mount options are
/// reported, since an `emptyDir` takes none.
fn tmpfs_volume(name: &str, target: &str, opts: &str, gaps: &mut Vec<Gap>) -> Volume {
    let mut size = None;
    let mut lost = Vec::new();
    for opt in opts.split(',').filter(|o| !o.is_empty()) {
        match opt.split_once('=') {
            Some(("size", value)) => size = Some(Quantity(kube_size(value))),
            _ if opt == "rw" => {}
            _ => lost.push(opt),
        }
    }
    if !lost.is_empty() {
        gaps.push(Gap::new(
            "tmpfs",
            GapEffect::Added,
            format!(
                "{target}: mount options {} not expressible (a memory emptyDir takes none); the kubelet's tmpfs is mounted without them",
                lost.join(",")
            ),
        ));
    }
    Volume {
        name: name.to_owned(),
        empty_dir: Some(EmptyDirVolumeSource {
            medium: Some("Memory".into()),
            size_limit: size,
        }),
        ..Default::default()
    }
}

/// Docker's tmpfs sizes (`64m`, `1g`, bytes) as a Kubernetes quantity.
fn kube_size(value: &str) -> String {
    let lower = value.to_ascii_lowercase();
    for (suffix, unit) in [("k", "Ki"), ("m", "Mi"), ("g", "Gi")] {
        if let Some(n) = lower.strip_suffix(suffix) {
            return format!("{n}{unit}");
        }
    }
    lower
}

/// The default resource name of each device class (generic-device-plugin's examples).
fn class_resource_name(class: DeviceClass) -> &'static str {
    match class {
        DeviceClass::Video => "video",
        DeviceClass::Uart => "serial",
        DeviceClass::Usb => "usb",
        DeviceClass::Gpio => "gpio",
        DeviceClass::FullAccess => "all",
    }
}

/// Each device class and each device a device-plugin resource; cgroup rules no class stands
/// for (`full_access`'s `a *:* rwm`) need `privileged`.
fn devices(plan: &SandboxPlan, options: &KubeOptions, out: &mut Volumes, gaps: &mut Vec<Gap>) {
    let covered: Vec<&str> = CLASS_CGROUP_RULES
        .iter()
        .filter(|(class, _)| plan.device_classes.contains(class))
        .flat_map(|(_, rules)| rules.iter().copied())
        .collect();
    let uncovered: Vec<&str> = plan
        .device_cgroup_rules
        .iter()
        .map(String::as_str)
        .filter(|r| !covered.contains(r))
        .collect();
    if !uncovered.is_empty() {
        out.needs_privileged = Some(format!("device cgroup rules {}", uncovered.join(", ")));
        if options.devices == DeviceMode::Privileged {
            return;
        }
    }
    for class in plan
        .device_classes
        .iter()
        .filter(|c| **c != DeviceClass::FullAccess)
    {
        let resource = options
            .device_resources
            .get(class.name())
            .cloned()
            .unwrap_or_else(|| {
                format!("{}/{}", options.device_domain, class_resource_name(*class))
            });
        let rules = CLASS_CGROUP_RULES
            .iter()
            .find(|(c, _)| c == class)
            .map_or("majors read from the host".to_owned(), |(_, r)| {
                r.join(", ")
            });
        out.limits.insert(resource.clone(), Quantity("1".into()));
        gaps.push(Gap::new(
            "device_classes",
            GapEffect::Operator,
            format!(
                "{} ({rules}): the resource {resource} must be advertised by a device plugin for those devices (generic-device-plugin: a group of their paths); the plugin decides the node",
                class.name()
            ),
        ));
    }
    for d in &plan.devices {
        let resource = options
            .device_resources
            .get(&d.path_on_host)
            .cloned()
            .unwrap_or_else(|| default_resource(&options.device_domain, &d.path_on_host));
        out.limits.insert(resource.clone(), Quantity("1".into()));
        let mut detail = format!(
            "{}: the device plugin resource {resource} must be advertised by the node (its plugin decides the node, the path and the permissions)",
            d.path_on_host
        );
        if d.path_in_container != d.path_on_host {
            detail.push_str(&format!("; the plan wants it at {}", d.path_in_container));
        }
        gaps.push(Gap::new("devices", GapEffect::Operator, detail));
    }
}

/// generic-device-plugin's naming: `<domain>/<device file name>` (characters outside a
/// qualified name as `-`).
fn default_resource(domain: &str, path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let name: String = file
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = name.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let name = if name.is_empty() { "device" } else { name };
    format!("{domain}/{}", &name[..name.len().min(63)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_names() {
        assert_eq!(kube_size("64m"), "64Mi");
        assert_eq!(kube_size("1048576"), "1048576");
        assert_eq!(volume_name(3, "/share"), "m3-share");
        assert_eq!(
            default_resource("squat.ai", "/dev/ttyUSB0"),
            "squat.ai/ttyUSB0"
        );
        assert_eq!(
            default_resource("squat.ai", "/dev/serial/by-id/usb-x:1"),
            "squat.ai/usb-x-1"
        );
        assert!(volume_name(1, &"/x".repeat(80)).len() <= 63);
    }
}
