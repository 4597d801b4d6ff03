//! Plan → Kubernetes manifests. Pure: the same plan, profile text and options give the same
//! objects. Every right in a manifest comes from the plan (or, for `--devices privileged`, from
//! the operator's explicit choice, reported); whatever Kubernetes cannot express is reported
//! as a [`Gap`], never dropped silently.
//!
//! `names`: the object names (content-addressed ConfigMap); `pod`: the Deployment and its pod
//! spec; `volumes`: mounts, tmpfs and devices; `loader`: the profile loader DaemonSet; `pss`:
//! the Pod Security level, by pod-security-admission's checks; `profile_label`: the node label
//! saying a profile's text is loaded, and the pod's node affinity on it; `node`: the loader's
//! own work on a node and `apiserver`: its node's labels through the Kubernetes API (the two
//! parts here that do I/O: `apparmor_parser`, and HTTPS to the API server).

pub mod apiserver;
mod loader;
mod names;
pub mod node;
mod pod;
pub mod profile_label;
pub mod pss;
pub mod spo;
mod volumes;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::ConfigMap;
use serde::Serialize;

use crate::plan::{PolicyMode, SandboxPlan};

pub use loader::{LOADER_NAME, LOADER_STATE_DIR, loader_daemonset, loader_rbac};
pub use names::{configmap_name, dns_name, profile_hash8, token_secret_name};

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error(
        "{slug}: {what} needs `privileged: true` on Kubernetes; the strict policy refuses that unless granted with --devices privileged"
    )]
    NeedsPrivileged { slug: String, what: String },
    #[error(
        "{slug}: the plan is confined by the AppArmor profile {name}, but no profile text was given"
    )]
    MissingProfile { slug: String, name: String },
    #[error("{slug}: the AppArmor profile name {name:?} is not a valid ConfigMap key")]
    BadProfileName { slug: String, name: String },
    #[error(
        "invalid device resource {0:?}: expected DEVICE=DOMAIN/NAME or CLASS=DOMAIN/NAME (e.g. /dev/ttyUSB0=squat.ai/zigbee, uart=squat.ai/serial)"
    )]
    BadDeviceResource(String),
    #[error("serialising the manifests: {0}")]
    Serialise(String),
    #[error(transparent)]
    Profile(#[from] crate::profile::ProfileError),
}

/// Where the plan's data folders (the mounts below the data root) come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Storage {
    /// The node's own folders, as `hostPath` volumes.
    HostPath,
    /// One `ReadWriteMany` claim holding the data root, each folder a `subPath` of it.
    Pvc { claim: String },
}

/// How the plan's devices reach the container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceMode {
    /// Each device a device-plugin resource (generic-device-plugin naming by default).
    Plugin,
    /// `privileged: true`: every device and every capability. Reported as a gap.
    Privileged,
}

#[derive(Clone, Debug)]
pub struct KubeOptions {
    pub namespace: String,
    pub storage: Storage,
    /// The plan's data root: mounts below it are the add-on's data, the rest host paths.
    pub data_root: String,
    pub devices: DeviceMode,
    /// Device path on the host or device class → extended resource name; the rest get
    /// `<device_domain>/<file name>` or `<device_domain>/<video|serial|usb|gpio>`
    /// (generic-device-plugin's naming).
    pub device_resources: BTreeMap<String, String>,
    pub device_domain: String,
    /// The gateway's address (`supervisor`, `hassio`); None: no host aliases (reported).
    pub gateway_ip: Option<String>,
    /// Home Assistant's address (`homeassistant`); None: the gateway's.
    pub homeassistant_ip: Option<String>,
    pub timezone: String,
    /// The pod waits for a node whose loader (`node load-profiles --label-node`) has loaded
    /// exactly its profile text (a required node affinity on the loader's label). Off where
    /// profiles are loaded by other means (the security-profiles-operator, a node image).
    pub wait_for_loader: bool,
}

impl Default for KubeOptions {
    fn default() -> Self {
        KubeOptions {
            namespace: "addon-sandbox".into(),
            storage: Storage::HostPath,
            data_root: "/var/lib/addon-sandbox".into(),
            devices: DeviceMode::Plugin,
            device_resources: BTreeMap::new(),
            device_domain: "squat.ai".into(),
            gateway_ip: None,
            homeassistant_ip: None,
            timezone: "UTC".into(),
            wait_for_loader: true,
        }
    }
}

impl KubeOptions {
    /// Parses one `DEVICE=DOMAIN/NAME` or `CLASS=DOMAIN/NAME` entry of the device table
    /// (classes: video, uart, usb, gpio).
    pub fn add_device_resource(&mut self, entry: &str) -> Result<(), KubeError> {
        let bad = || KubeError::BadDeviceResource(entry.to_owned());
        let (device, resource) = entry.split_once('=').ok_or_else(bad)?;
        let (domain, name) = resource.split_once('/').ok_or_else(bad)?;
        let class = matches!(device, "video" | "uart" | "usb" | "gpio");
        if !(device.starts_with("/dev/") || class)
            || !names::is_dns_subdomain(domain)
            || !names::is_qualified_name(name)
        {
            return Err(bad());
        }
        self.device_resources
            .insert(device.to_owned(), resource.to_owned());
        Ok(())
    }
}

/// Which way a gap errs: the pod gets less than the plan (fails closed) or more.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GapEffect {
    /// The pod has less than the plan gives (the add-on may not work).
    Lost,
    /// The pod has more than the plan gives.
    Added,
    /// Something the operator must provide on the cluster.
    Operator,
}

/// Something in the plan Kubernetes cannot express as the plan says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Gap {
    /// The plan field.
    pub field: String,
    pub effect: GapEffect,
    pub detail: String,
}

impl Gap {
    fn new(field: &str, effect: GapEffect, detail: impl Into<String>) -> Gap {
        Gap {
            field: field.to_owned(),
            effect,
            detail: detail.into(),
        }
    }
}

/// One add-on's manifests and what they could not say.
#[derive(Clone, Debug)]
pub struct AddonManifests {
    pub full_slug: String,
    /// `--spo`: the operator's lossy `AppArmorProfile`, and what it loses.
    pub spo: Option<(spo::SpoProfile, Vec<String>)>,
    /// The profile text under its content-addressed name (None: not confined by a profile of
    /// ours or the add-on's).
    pub profile: Option<ConfigMap>,
    pub deployment: Deployment,
    pub gaps: Vec<Gap>,
    pub level: pss::Assessment,
}

impl AddonManifests {
    /// The documents in apply order: the profile's ConfigMap, then the Deployment.
    pub fn documents(&self) -> Result<Vec<serde_json::Value>, KubeError> {
        let mut docs = Vec::new();
        if let Some(cm) = &self.profile {
            docs.push(to_value(cm)?);
        }
        if let Some((spo, _)) = &self.spo {
            docs.push(to_value(spo)?);
        }
        docs.push(to_value(&self.deployment)?);
        Ok(docs)
    }
}

fn to_value(object: &impl Serialize) -> Result<serde_json::Value, KubeError> {
    serde_json::to_value(object).map_err(|e| KubeError::Serialise(e.to_string()))
}

/// The manifests of one plan. `profile_text` is the exact text the plan is confined by (the
/// generated profile, or the add-on's own renamed), when it has one.
pub fn generate(
    plan: &SandboxPlan,
    profile_text: Option<&str>,
    options: &KubeOptions,
) -> Result<AddonManifests, KubeError> {
    let mut gaps = Vec::new();
    let volumes = volumes::volumes(plan, options, &mut gaps);
    let needs_privileged = volumes.needs_privileged.clone();
    if let Some(what) = &needs_privileged {
        match options.devices {
            DeviceMode::Privileged => gaps.push(Gap::new(
                "devices",
                GapEffect::Added,
                format!("--devices privileged: `privileged: true` for {what}: every host device, every capability, no seccomp or AppArmor restriction of mounts"),
            )),
            DeviceMode::Plugin if plan.policy == PolicyMode::Strict => {
                return Err(KubeError::NeedsPrivileged {
                    slug: plan.full_slug.clone(),
                    what: what.clone(),
                });
            }
            DeviceMode::Plugin => gaps.push(Gap::new(
                "device_cgroup_rules",
                GapEffect::Lost,
                format!("{what}: not expressible without `privileged: true` (give --devices privileged); the pod does without"),
            )),
        }
    }
    let profile = match (&plan.apparmor_profile, profile_text) {
        (Some(name), Some(text)) => Some(names::profile_configmap(plan, name, text, options)?),
        (Some(name), None) => {
            return Err(KubeError::MissingProfile {
                slug: plan.full_slug.clone(),
                name: name.clone(),
            });
        }
        (None, _) => None,
    };
    let privileged = needs_privileged.is_some() && options.devices == DeviceMode::Privileged;
    let mut deployment = pod::deployment(plan, options, volumes, privileged, &mut gaps);
    let waits = options.wait_for_loader;
    if let (Some(name), Some(text), Some(_), true) =
        (&plan.apparmor_profile, profile_text, &profile, waits)
    {
        // The pod waits for a node whose loader has loaded exactly this text.
        let template = deployment
            .spec
            .as_mut()
            .and_then(|s| s.template.spec.as_mut());
        if let Some(spec) = template {
            profile_label::require_on_node(spec, profile_label::profile_requirement(name, text));
        }
    }
    let spec = deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("a deployment always has a pod spec");
    let level = pss::assess(spec, None);
    Ok(AddonManifests {
        full_slug: plan.full_slug.clone(),
        spo: None,
        profile,
        deployment,
        gaps,
        level,
    })
}

/// Adds `--spo`'s `AppArmorProfile` to a generated plan's manifests (a plan confined by the
/// add-on's own profile or none has no typed rules to translate: nothing is added).
pub fn add_spo(
    m: &mut AddonManifests,
    plan: &SandboxPlan,
    options: &KubeOptions,
) -> Result<(), KubeError> {
    if plan.confinement != crate::plan::Confinement::Generated {
        return Ok(());
    }
    let profile =
        crate::profile::generate(plan).map_err(|e| KubeError::Serialise(e.to_string()))?;
    m.spo = Some(spo::spo_profile(plan, &profile, &options.namespace));
    Ok(())
}

/// The loader for every profile ConfigMap of `manifests`: its ServiceAccount, ClusterRole and
/// ClusterRoleBinding, then the DaemonSet, as documents in apply order.
pub fn loader_documents(
    manifests: &[AddonManifests],
    image: &str,
    options: &KubeOptions,
) -> Result<(DaemonSet, Vec<serde_json::Value>), KubeError> {
    let maps: Vec<&ConfigMap> = manifests
        .iter()
        .filter_map(|m| m.profile.as_ref())
        .collect();
    let ds = loader_daemonset(&maps, image, options);
    let (account, role, binding) = loader_rbac(options);
    let docs = vec![
        to_value(&account)?,
        to_value(&role)?,
        to_value(&binding)?,
        to_value(&ds)?,
    ];
    Ok((ds, docs))
}

/// Documents as one YAML stream (`---` between them).
pub fn to_yaml(documents: &[serde_json::Value]) -> Result<String, KubeError> {
    let mut out = String::new();
    for doc in documents {
        out.push_str("---\n");
        let text = serde_saphyr::to_string(doc).map_err(|e| KubeError::Serialise(e.to_string()))?;
        out.push_str(&text);
        if !text.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}
