//! The profile loader: a DaemonSet running `addon-sandbox node load-profiles` on every node,
//! with every profile ConfigMap projected into one folder. Kubernetes does not load AppArmor
//! profiles itself; a pod whose `Localhost` profile is not loaded does not start (its
//! container fails to create and is retried), so the loader is what lets the add-ons start.
//!
//! After each pass the loader labels its own node with what is loaded (`profile_label`), as
//! its service account: a ClusterRole allowing exactly `get` and `patch` on `nodes` (a Node is
//! cluster-scoped, so a Role cannot name it), bound to the loader's ServiceAccount alone. The
//! node's name comes from the downward API (`spec.nodeName` as `NODE_NAME`).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetSpec};
use k8s_openapi::api::core::v1::{
    AppArmorProfile, Capabilities, ConfigMap, ConfigMapProjection, Container, EnvVar, EnvVarSource,
    HostPathVolumeSource, ObjectFieldSelector, PodSpec, PodTemplateSpec, ProjectedVolumeSource,
    SeccompProfile, SecurityContext, ServiceAccount, Toleration, Volume, VolumeMount,
    VolumeProjection,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::KubeOptions;
use super::names::{LABEL_MANAGED_BY, LABEL_NAME, MANAGER};

pub const LOADER_NAME: &str = "addon-sandbox-profile-loader";
/// Where the loader keeps the texts it loaded, on the node (to replace and unload them).
pub const LOADER_STATE_DIR: &str = "/var/lib/addon-sandbox/kube-profiles";
const PROFILES_DIR: &str = "/profiles";
const SECURITYFS: &str = "/sys/kernel/security";

fn loader_labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_MANAGED_BY.to_owned(), MANAGER.to_owned()),
        (LABEL_NAME.to_owned(), LOADER_NAME.to_owned()),
    ])
}

/// The loader's ServiceAccount, the ClusterRole that lets it read and patch nodes (nothing
/// else), and their binding: the objects the DaemonSet needs before it.
pub fn loader_rbac(options: &KubeOptions) -> (ServiceAccount, ClusterRole, ClusterRoleBinding) {
    let meta = |namespace: Option<&str>| ObjectMeta {
        name: Some(LOADER_NAME.into()),
        namespace: namespace.map(Into::into),
        labels: Some(loader_labels()),
        ..Default::default()
    };
    let account = ServiceAccount {
        metadata: meta(Some(&options.namespace)),
        ..Default::default()
    };
    let role = ClusterRole {
        metadata: meta(None),
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["nodes".into()]),
            verbs: vec!["get".into(), "patch".into()],
            ..Default::default()
        }]),
        ..Default::default()
    };
    let binding = ClusterRoleBinding {
        metadata: meta(None),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: LOADER_NAME.into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: LOADER_NAME.into(),
            namespace: Some(options.namespace.clone()),
            api_group: None,
        }]),
    };
    (account, role, binding)
}

pub fn loader_daemonset(maps: &[&ConfigMap], image: &str, options: &KubeOptions) -> DaemonSet {
    let labels = loader_labels();
    let sources = maps
        .iter()
        .map(|cm| VolumeProjection {
            config_map: Some(ConfigMapProjection {
                name: cm.metadata.name.clone().unwrap_or_default(),
                optional: Some(false),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    DaemonSet {
        metadata: ObjectMeta {
            name: Some(LOADER_NAME.into()),
            namespace: Some(options.namespace.clone()),
            labels: Some(labels.clone()),
            ..Default::default()
        },
        spec: Some(DaemonSetSpec {
            selector: LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    LABEL_NAME.to_owned(),
                    LOADER_NAME.to_owned(),
                )])),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![loader_container(image)],
                    volumes: Some(vec![
                        Volume {
                            name: "profiles".into(),
                            projected: Some(ProjectedVolumeSource {
                                sources: Some(sources),
                                ..Default::default()
                            }),
                            ..Default::default()
                        },
                        host_path("securityfs", SECURITYFS, "Directory"),
                        host_path("state", LOADER_STATE_DIR, "DirectoryOrCreate"),
                    ]),
                    // The token labels the node; the account may do nothing else.
                    service_account_name: Some(LOADER_NAME.into()),
                    automount_service_account_token: Some(true),
                    enable_service_links: Some(false),
                    // Every node that may run an add-on needs the profiles.
                    tolerations: Some(vec![Toleration {
                        operator: Some("Exists".into()),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn host_path(name: &str, path: &str, type_: &str) -> Volume {
    Volume {
        name: name.into(),
        host_path: Some(HostPathVolumeSource {
            path: path.into(),
            type_: Some(type_.into()),
        }),
        ..Default::default()
    }
}

/// The loader needs CAP_MAC_ADMIN and an unconfined AppArmor label (a confined task may not
/// change policy), nothing else.
fn loader_container(image: &str) -> Container {
    let mount = |name: &str, path: &str, read_only: bool| VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: Some(read_only),
        ..Default::default()
    };
    Container {
        name: "load-profiles".into(),
        image: Some(image.into()),
        command: Some(vec![
            "addon-sandbox".into(),
            "node".into(),
            "load-profiles".into(),
            "--dir".into(),
            PROFILES_DIR.into(),
            "--state".into(),
            LOADER_STATE_DIR.into(),
            // In a cluster the node must be labelled, or no add-on pod is ever scheduled.
            "--label-node".into(),
        ]),
        env: Some(vec![EnvVar {
            name: "NODE_NAME".into(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    api_version: Some("v1".into()),
                    field_path: "spec.nodeName".into(),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }]),
        volume_mounts: Some(vec![
            mount("profiles", PROFILES_DIR, true),
            mount("securityfs", SECURITYFS, false),
            mount("state", LOADER_STATE_DIR, false),
        ]),
        security_context: Some(SecurityContext {
            capabilities: Some(Capabilities {
                add: Some(vec!["MAC_ADMIN".into()]),
                drop: Some(vec!["ALL".into()]),
            }),
            allow_privilege_escalation: Some(false),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                localhost_profile: None,
            }),
            app_armor_profile: Some(AppArmorProfile {
                type_: "Unconfined".into(),
                localhost_profile: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}
