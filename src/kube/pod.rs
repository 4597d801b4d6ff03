//! The Deployment and its pod spec: the plan's security context, namespaces, ports,
//! environment and host aliases.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    AppArmorProfile, Capabilities, Container, ContainerPort, EnvVar, EnvVarSource, HostAlias,
    PodSpec, PodTemplateSpec, ResourceRequirements, SeccompProfile, SecretKeySelector,
    SecurityContext,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::names::{self, dns_name, token_secret_name};
use super::volumes::Volumes;
use super::{Gap, GapEffect, KubeOptions};
use crate::plan::{Confinement, SandboxPlan};

/// The container's name in every pod.
pub const CONTAINER: &str = "addon";

pub fn deployment(
    plan: &SandboxPlan,
    options: &KubeOptions,
    volumes: Volumes,
    privileged: bool,
    gaps: &mut Vec<Gap>,
) -> Deployment {
    let labels = names::labels(plan);
    let selector = BTreeMap::from([(names::LABEL_NAME.to_owned(), dns_name(&plan.full_slug))]);
    Deployment {
        metadata: ObjectMeta {
            name: Some(dns_name(&plan.full_slug)),
            namespace: Some(options.namespace.clone()),
            labels: Some(labels.clone()),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            // One instance at a time: two would share the data folder and the host ports.
            strategy: Some(DeploymentStrategy {
                type_: Some("Recreate".into()),
                ..Default::default()
            }),
            selector: LabelSelector {
                match_labels: Some(selector),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: Some(pod_spec(plan, options, volumes, privileged, gaps)),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn pod_spec(
    plan: &SandboxPlan,
    options: &KubeOptions,
    volumes: Volumes,
    privileged: bool,
    gaps: &mut Vec<Gap>,
) -> PodSpec {
    let host_network = plan.network_mode == "host";
    namespace_gaps(plan, host_network, gaps);
    limits_gaps(plan, gaps);
    let container = Container {
        name: CONTAINER.into(),
        image: Some(plan.image.clone()),
        stdin: plan.stdin.then_some(true),
        env: Some(environment(plan, options)),
        ports: (!plan.ports.is_empty()).then(|| ports(plan, gaps)),
        volume_mounts: (!volumes.mounts.is_empty()).then_some(volumes.mounts),
        resources: (!volumes.limits.is_empty()).then(|| ResourceRequirements {
            limits: Some(volumes.limits),
            ..Default::default()
        }),
        security_context: Some(security_context(plan, privileged, gaps)),
        ..Default::default()
    };
    PodSpec {
        containers: vec![container],
        volumes: (!volumes.volumes.is_empty()).then_some(volumes.volumes),
        host_network: host_network.then_some(true),
        host_pid: (plan.pid_mode.as_deref() == Some("host")).then_some(true),
        host_ipc: (plan.ipc_mode.as_deref() == Some("host")).then_some(true),
        dns_policy: host_network.then(|| "ClusterFirstWithHostNet".into()),
        hostname: plan.hostname.clone().filter(|_| !host_network),
        host_aliases: host_aliases(options, gaps),
        // The add-on talks to the gateway with its own token, never to the cluster's API.
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        ..Default::default()
    }
}

/// Spelled any way (`SYS_ADMIN`, `CAP_SYS_ADMIN`, any case).
fn is_sys_admin(cap: &str) -> bool {
    let upper = cap.to_ascii_uppercase();
    upper.strip_prefix("CAP_").unwrap_or(&upper) == "SYS_ADMIN"
}

/// The container's security context: the plan's capabilities, seccomp and AppArmor, and
/// `allowPrivilegeEscalation: false` exactly when the plan sets no_new_privs and Kubernetes
/// allows it (never with SYS_ADMIN or privileged, which Kubernetes treats as escalation).
pub fn security_context(
    plan: &SandboxPlan,
    privileged: bool,
    gaps: &mut Vec<Gap>,
) -> SecurityContext {
    let sys_admin = plan.cap_add.iter().any(|c| is_sys_admin(c));
    let no_new_privs = plan.no_new_privileges && !sys_admin && !privileged;
    if plan.no_new_privileges && !no_new_privs {
        gaps.push(Gap::new(
            "no_new_privileges",
            GapEffect::Added,
            "Kubernetes refuses allowPrivilegeEscalation: false together with SYS_ADMIN or privileged: no_new_privs is not set",
        ));
    }
    let seccomp = if plan.seccomp_unconfined {
        "Unconfined"
    } else {
        "RuntimeDefault"
    };
    let apparmor = match (plan.confinement, &plan.apparmor_profile) {
        (Confinement::Generated | Confinement::AddonProfile, Some(name)) => AppArmorProfile {
            type_: "Localhost".into(),
            localhost_profile: Some(name.clone()),
        },
        (Confinement::DockerDefault, _) => AppArmorProfile {
            type_: "RuntimeDefault".into(),
            localhost_profile: None,
        },
        _ => AppArmorProfile {
            type_: "Unconfined".into(),
            localhost_profile: None,
        },
    };
    SecurityContext {
        capabilities: Some(Capabilities {
            add: (!plan.cap_add.is_empty()).then(|| plan.cap_add.clone()),
            drop: (!plan.cap_drop.is_empty()).then(|| plan.cap_drop.clone()),
        }),
        allow_privilege_escalation: Some(!no_new_privs),
        privileged: privileged.then_some(true),
        seccomp_profile: Some(SeccompProfile {
            type_: seccomp.into(),
            localhost_profile: None,
        }),
        app_armor_profile: Some(apparmor),
        ..Default::default()
    }
}

/// The plan's environment, `TZ`, and the token under both of its names from the Secret.
fn environment(plan: &SandboxPlan, options: &KubeOptions) -> Vec<EnvVar> {
    let mut env: Vec<EnvVar> = plan
        .environment
        .iter()
        .map(|(k, v)| EnvVar {
            name: k.clone(),
            value: Some(v.clone()),
            ..Default::default()
        })
        .collect();
    env.push(EnvVar {
        name: "TZ".into(),
        value: Some(options.timezone.clone()),
        ..Default::default()
    });
    for name in ["SUPERVISOR_TOKEN", "HASSIO_TOKEN"] {
        env.push(EnvVar {
            name: name.into(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: token_secret_name(&plan.full_slug),
                    key: "token".into(),
                    optional: Some(false),
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    env
}

fn ports(plan: &SandboxPlan, gaps: &mut Vec<Gap>) -> Vec<ContainerPort> {
    let mut out = Vec::new();
    for p in &plan.ports {
        let (number, protocol) = p.container.split_once('/').unwrap_or((&p.container, "tcp"));
        let Ok(number) = number.parse::<i32>() else {
            gaps.push(Gap::new(
                "ports",
                GapEffect::Lost,
                format!("{}: not a port number", p.container),
            ));
            continue;
        };
        out.push(ContainerPort {
            container_port: number,
            host_port: p.host.map(i32::from),
            protocol: Some(protocol.to_ascii_uppercase()),
            ..Default::default()
        });
    }
    out
}

fn host_aliases(options: &KubeOptions, gaps: &mut Vec<Gap>) -> Option<Vec<HostAlias>> {
    let Some(gateway) = &options.gateway_ip else {
        gaps.push(Gap::new(
            "extra_hosts",
            GapEffect::Operator,
            "supervisor, hassio and homeassistant resolve to nothing: give --gateway-ip (and --homeassistant-ip)",
        ));
        return None;
    };
    let ha = options.homeassistant_ip.as_ref().unwrap_or(gateway);
    let mut aliases = vec![HostAlias {
        ip: gateway.clone(),
        hostnames: Some(vec!["supervisor".into(), "hassio".into()]),
    }];
    if ha == gateway {
        aliases[0]
            .hostnames
            .get_or_insert_default()
            .push("homeassistant".into());
    } else {
        aliases.push(HostAlias {
            ip: ha.clone(),
            hostnames: Some(vec!["homeassistant".into()]),
        });
    }
    Some(aliases)
}

/// Host namespaces Kubernetes cannot give as the plan does.
fn namespace_gaps(plan: &SandboxPlan, host_network: bool, gaps: &mut Vec<Gap>) {
    let host_uts = plan.uts_mode.as_deref() == Some("host");
    if host_uts && !host_network {
        gaps.push(Gap::new(
            "uts_mode",
            GapEffect::Lost,
            "the host's UTS namespace alone: Kubernetes shares it only with hostNetwork; the pod keeps its own",
        ));
    }
    if host_network && !host_uts {
        gaps.push(Gap::new(
            "uts_mode",
            GapEffect::Added,
            "hostNetwork also shares the host's UTS namespace (its hostname), which the plan does not",
        ));
    }
    if plan
        .ipc_mode
        .as_deref()
        .is_some_and(|m| !matches!(m, "host" | "private" | "shareable"))
    {
        gaps.push(Gap::new(
            "ipc_mode",
            GapEffect::Lost,
            format!("{:?}: not expressible", plan.ipc_mode),
        ));
    }
}

/// Ulimits, init, the Docker socket and unknown security options.
fn limits_gaps(plan: &SandboxPlan, gaps: &mut Vec<Gap>) {
    for u in &plan.ulimits {
        gaps.push(Gap::new(
            "ulimits",
            GapEffect::Lost,
            format!(
                "{} soft {} hard {}: Kubernetes has no ulimits; the runtime's defaults apply",
                u.name, u.soft, u.hard
            ),
        ));
    }
    if plan.init {
        gaps.push(Gap::new(
            "init",
            GapEffect::Lost,
            "Docker's --init (tini as PID 1): Kubernetes has none; the image's entrypoint is PID 1",
        ));
    }
    if plan.docker_socket {
        gaps.push(Gap::new(
            "docker_api",
            GapEffect::Operator,
            "the node's Docker socket is mounted; Kubernetes nodes usually run containerd and have none",
        ));
    }
    for opt in &plan.security_opt {
        let known = opt.starts_with("apparmor=")
            || opt.starts_with("no-new-privileges")
            || opt == "seccomp=unconfined";
        if !known {
            gaps.push(Gap::new(
                "security_opt",
                GapEffect::Lost,
                format!("{opt}: not expressible"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_sys_admin;

    #[test]
    fn sys_admin_in_any_spelling() {
        for s in ["SYS_ADMIN", "CAP_SYS_ADMIN", "sys_admin", "cap_sys_admin"] {
            assert!(is_sys_admin(s), "{s}");
        }
        assert!(!is_sys_admin("SYS_ADMINX"));
        assert!(!is_sys_admin("NET_ADMIN"));
    }
}
