//! Plan → Docker create body. Pure: the same plan, image, command and environment give the
//! same body. Every right in the body comes from the plan; nothing is read from the config.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, DeviceMapping, HostConfig, Mount, MountBindOptions,
    MountBindOptionsPropagationEnum, MountType, PortBinding, ResourcesUlimits,
};

use crate::plan::SandboxPlan;

/// Labels that mark a container as ours and say how it is confined.
pub const LABEL_SLUG: &str = "io.addon-sandbox.slug";
pub const LABEL_CONFINEMENT: &str = "io.addon-sandbox.confinement";
/// The state directory holding the container's token and record (set by the launcher, since
/// the body does not depend on where state is kept).
pub const LABEL_STATE: &str = "io.addon-sandbox.state";

/// How the container is confined by AppArmor, as the launcher decided it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppArmorMode {
    /// Loaded and enforced profile of this name.
    Profile(String),
    /// No profile: the plan is unconfined, or the operator allowed running unconfined on a host
    /// without AppArmor.
    Unconfined,
    /// Docker's own `docker-default` (supervisor policy without an `apparmor.txt`).
    DockerDefault,
}

impl AppArmorMode {
    pub fn label(&self) -> String {
        match self {
            AppArmorMode::Profile(name) => format!("apparmor:{name}"),
            AppArmorMode::Unconfined => "unconfined".into(),
            AppArmorMode::DockerDefault => "docker-default".into(),
        }
    }
}

/// What the launcher adds to a plan for one start.
#[derive(Clone, Debug)]
pub struct StartSpec {
    pub image: String,
    pub command: Option<Vec<String>>,
    /// The per-start token, given as `SUPERVISOR_TOKEN` and `HASSIO_TOKEN`.
    pub token: String,
    pub timezone: String,
    pub apparmor: AppArmorMode,
    /// The gateway's network to join instead of the plan's default one (never the host's).
    pub network: Option<String>,
    /// `name:address` entries for `/etc/hosts` (`supervisor`, `hassio`, `homeassistant`).
    pub extra_hosts: Vec<String>,
    /// The engine can make a read-only bind read-only all the way down (API 1.44, Docker 25):
    /// read-only maps then ask for it and fail rather than stay writable below their top.
    pub recursive_read_only: bool,
}

pub fn create_body(plan: &SandboxPlan, spec: &StartSpec) -> ContainerCreateBody {
    let env = environment(plan, spec);
    let (exposed, port_bindings) = ports(plan);
    let host_config = host_config(plan, spec, port_bindings);

    let labels = HashMap::from([
        (LABEL_SLUG.to_owned(), plan.full_slug.clone()),
        (LABEL_CONFINEMENT.to_owned(), spec.apparmor.label()),
    ]);

    ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: spec.command.clone(),
        env: Some(env),
        hostname: plan.hostname.clone(),
        open_stdin: Some(plan.stdin),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        labels: Some(labels),
        host_config: Some(host_config),
        ..Default::default()
    }
}

/// The plan's environment, then `TZ` and the token under both of its names.
fn environment(plan: &SandboxPlan, spec: &StartSpec) -> Vec<String> {
    let mut env: Vec<String> = plan
        .environment
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    env.push(format!("TZ={}", spec.timezone));
    env.push(format!("SUPERVISOR_TOKEN={}", spec.token));
    env.push(format!("HASSIO_TOKEN={}", spec.token));
    env
}

/// Every mount of the plan as a bind, with its propagation when it has one, and read-only
/// maps read-only recursively where the engine can do it.
fn mounts(plan: &SandboxPlan, spec: &StartSpec) -> Vec<Mount> {
    plan.mounts
        .iter()
        .map(|m| {
            let force_recursive = m.read_only && spec.recursive_read_only;
            let bind_options =
                (m.propagation.is_some() || force_recursive).then(|| MountBindOptions {
                    propagation: m.propagation.as_deref().map(|p| match p {
                        "rslave" => MountBindOptionsPropagationEnum::RSLAVE,
                        "slave" => MountBindOptionsPropagationEnum::SLAVE,
                        "rshared" => MountBindOptionsPropagationEnum::RSHARED,
                        "shared" => MountBindOptionsPropagationEnum::SHARED,
                        "rprivate" => MountBindOptionsPropagationEnum::RPRIVATE,
                        _ => MountBindOptionsPropagationEnum::PRIVATE,
                    }),
                    read_only_force_recursive: force_recursive.then_some(true),
                    ..Default::default()
                });
            Mount {
                typ: Some(MountType::BIND),
                source: Some(m.source.clone()),
                target: Some(m.target.clone()),
                read_only: Some(m.read_only),
                bind_options,
                ..Default::default()
            }
        })
        .collect()
}

/// The security options of the plan, with the AppArmor entry the launcher settled on.
fn security_options(plan: &SandboxPlan, spec: &StartSpec) -> Vec<String> {
    let mut security_opt: Vec<String> = plan
        .security_opt
        .iter()
        .filter(|o| !o.starts_with("apparmor="))
        .cloned()
        .collect();
    match &spec.apparmor {
        AppArmorMode::Profile(name) => security_opt.push(format!("apparmor={name}")),
        AppArmorMode::Unconfined => security_opt.push("apparmor=unconfined".into()),
        AppArmorMode::DockerDefault => {}
    }
    security_opt
}

type PortBindings = HashMap<String, Option<Vec<PortBinding>>>;

/// The exposed container ports, and the host port each is bound to (if any).
fn ports(plan: &SandboxPlan) -> (Vec<String>, PortBindings) {
    let mut port_bindings: PortBindings = HashMap::new();
    let mut exposed = Vec::new();
    for p in &plan.ports {
        exposed.push(p.container.clone());
        port_bindings.insert(
            p.container.clone(),
            p.host.map(|h| {
                vec![PortBinding {
                    host_ip: None,
                    host_port: Some(h.to_string()),
                }]
            }),
        );
    }
    (exposed, port_bindings)
}

/// The host side of the container: every right it has comes from the plan.
fn host_config(plan: &SandboxPlan, spec: &StartSpec, port_bindings: PortBindings) -> HostConfig {
    HostConfig {
        mounts: Some(mounts(plan, spec)),
        cap_add: Some(plan.cap_add.clone()),
        cap_drop: Some(plan.cap_drop.clone()),
        network_mode: Some(
            spec.network
                .clone()
                .unwrap_or_else(|| plan.network_mode.clone()),
        ),
        extra_hosts: (!spec.extra_hosts.is_empty()).then(|| spec.extra_hosts.clone()),
        pid_mode: plan.pid_mode.clone(),
        uts_mode: plan.uts_mode.clone(),
        ipc_mode: plan.ipc_mode.clone(),
        security_opt: Some(security_options(plan, spec)),
        device_cgroup_rules: Some(plan.device_cgroup_rules.clone()),
        devices: Some(
            plan.devices
                .iter()
                .map(|d| DeviceMapping {
                    path_on_host: Some(d.path_on_host.clone()),
                    path_in_container: Some(d.path_in_container.clone()),
                    cgroup_permissions: Some(d.cgroup_permissions.clone()),
                })
                .collect(),
        ),
        tmpfs: Some(plan.tmpfs.clone().into_iter().collect()),
        ulimits: Some(
            plan.ulimits
                .iter()
                .map(|u| ResourcesUlimits {
                    name: Some(u.name.clone()),
                    soft: Some(u.soft),
                    hard: Some(u.hard),
                })
                .collect(),
        ),
        port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
        init: Some(plan.init),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{PlanOptions, decide};

    #[test]
    fn read_only_maps_ask_for_recursive_read_only_where_the_engine_has_it() {
        let text = "name: T\nversion: \"1\"\nslug: t\ndescription: d\narch: [amd64]\nmap: [share, media:rw]\n";
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.yaml"), text).unwrap();
        let addon = crate::addon::load(dir.path());
        let plan = decide(
            addon.config.as_ref().unwrap(),
            false,
            &PlanOptions::default(),
        )
        .unwrap();
        for recursive in [false, true] {
            let spec = StartSpec {
                image: "i".into(),
                command: None,
                token: "t".into(),
                timezone: "UTC".into(),
                apparmor: AppArmorMode::Unconfined,
                recursive_read_only: recursive,
                network: None,
                extra_hosts: Vec::new(),
            };
            for m in mounts(&plan, &spec) {
                let forced = m
                    .bind_options
                    .as_ref()
                    .and_then(|o| o.read_only_force_recursive)
                    .unwrap_or(false);
                assert_eq!(forced, recursive && m.read_only == Some(true), "{m:?}");
            }
        }
    }
}
