//! The Pod Security Standards level a pod spec meets, by the checks of Kubernetes'
//! pod-security-admission (policy version `latest`), each failure with its reason. Checked
//! against pod-security-admission's own fixtures (`tests/kube_pss.rs`).
//!
//! Baseline: hostNamespaces, privileged, capabilities_baseline, hostPathVolumes, hostPorts,
//! appArmorProfile, seLinuxOptions, procMount, seccompProfile_baseline, sysctls,
//! windowsHostProcess, hostProbesAndHostLifecycle. Restricted: restrictedVolumes,
//! allowPrivilegeEscalation, runAsNonRoot, runAsUser, seccompProfile_restricted,
//! capabilities_restricted.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, LifecycleHandler, PodSecurityContext, PodSpec, Probe, SecurityContext,
};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

/// A check the pod fails, and the level it keeps the pod from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Reason {
    pub check: &'static str,
    pub breaks: Level,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Assessment {
    pub level: Level,
    pub reasons: Vec<Reason>,
}

/// One container of any kind, with its path in the pod spec.
struct Any<'a> {
    kind: &'static str,
    name: &'a str,
    sc: Option<&'a SecurityContext>,
    ports: &'a [ContainerPort],
    probes: Vec<&'a Probe>,
    handlers: Vec<&'a LifecycleHandler>,
}

fn containers(spec: &PodSpec) -> Vec<Any<'_>> {
    let mut out: Vec<Any<'_>> = Vec::new();
    for c in spec.init_containers.iter().flatten() {
        out.push(any("initContainers", c));
    }
    for c in &spec.containers {
        out.push(any("containers", c));
    }
    for c in spec.ephemeral_containers.iter().flatten() {
        out.push(Any {
            kind: "ephemeralContainers",
            name: &c.name,
            sc: c.security_context.as_ref(),
            ports: c.ports.as_deref().unwrap_or_default(),
            probes: [&c.liveness_probe, &c.readiness_probe, &c.startup_probe]
                .into_iter()
                .flatten()
                .collect(),
            handlers: c
                .lifecycle
                .iter()
                .flat_map(|l| [&l.post_start, &l.pre_stop])
                .flatten()
                .collect(),
        });
    }
    out
}

fn any<'a>(kind: &'static str, c: &'a Container) -> Any<'a> {
    Any {
        kind,
        name: &c.name,
        sc: c.security_context.as_ref(),
        ports: c.ports.as_deref().unwrap_or_default(),
        probes: [&c.liveness_probe, &c.readiness_probe, &c.startup_probe]
            .into_iter()
            .flatten()
            .collect(),
        handlers: c
            .lifecycle
            .iter()
            .flat_map(|l| [&l.post_start, &l.pre_stop])
            .flatten()
            .collect(),
    }
}

struct Checker<'a> {
    spec: &'a PodSpec,
    psc: Option<&'a PodSecurityContext>,
    all: Vec<Any<'a>>,
    annotations: Option<&'a BTreeMap<String, String>>,
    reasons: Vec<Reason>,
}

impl Checker<'_> {
    fn fail(&mut self, check: &'static str, breaks: Level, detail: String) {
        self.reasons.push(Reason {
            check,
            breaks,
            detail,
        });
    }

    /// The containers (as `kind "name"`) for which `bad` holds.
    fn which(&self, bad: impl Fn(&Any<'_>) -> bool) -> Vec<String> {
        self.all
            .iter()
            .filter(|c| bad(c))
            .map(|c| format!("{} {:?}", c.kind, c.name))
            .collect()
    }

    fn fail_containers(
        &mut self,
        check: &'static str,
        breaks: Level,
        what: &str,
        bad: impl Fn(&Any<'_>) -> bool,
    ) {
        let names = self.which(bad);
        if !names.is_empty() {
            self.fail(check, breaks, format!("{}: {what}", names.join(", ")));
        }
    }
}

/// The level `spec` meets (with `annotations`, the pod's, for the AppArmor annotations).
pub fn assess(spec: &PodSpec, annotations: Option<&BTreeMap<String, String>>) -> Assessment {
    let mut c = Checker {
        spec,
        psc: spec.security_context.as_ref(),
        all: containers(spec),
        annotations,
        reasons: Vec::new(),
    };
    baseline(&mut c);
    restricted(&mut c);
    let level = if c.reasons.iter().any(|r| r.breaks == Level::Baseline) {
        Level::Privileged
    } else if c.reasons.is_empty() {
        Level::Restricted
    } else {
        Level::Baseline
    };
    Assessment {
        level,
        reasons: c.reasons,
    }
}

const BASELINE_CAPS: [&str; 13] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

const SAFE_SYSCTLS: [&str; 10] = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];

const SELINUX_TYPES: [&str; 5] = [
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

fn baseline(c: &mut Checker<'_>) {
    let b = Level::Baseline;
    let spec = c.spec;
    let host: Vec<&str> = [
        (spec.host_network, "hostNetwork=true"),
        (spec.host_pid, "hostPID=true"),
        (spec.host_ipc, "hostIPC=true"),
    ]
    .into_iter()
    .filter(|(v, _)| *v == Some(true))
    .map(|(_, s)| s)
    .collect();
    if !host.is_empty() {
        c.fail("hostNamespaces", b, host.join(", "));
    }
    c.fail_containers("privileged", b, "securityContext.privileged=true", |x| {
        x.sc.and_then(|s| s.privileged) == Some(true)
    });
    c.fail_containers(
        "capabilities_baseline",
        b,
        "adds capabilities beyond the baseline set",
        |x| {
            adds(x)
                .iter()
                .any(|cap| !BASELINE_CAPS.contains(&cap.as_str()))
        },
    );
    let host_paths: Vec<&str> = spec
        .volumes
        .iter()
        .flatten()
        .filter(|v| v.host_path.is_some())
        .map(|v| v.name.as_str())
        .collect();
    if !host_paths.is_empty() {
        c.fail(
            "hostPathVolumes",
            b,
            format!("hostPath volumes {}", host_paths.join(", ")),
        );
    }
    c.fail_containers("hostPorts", b, "hostPort set", |x| {
        x.ports.iter().any(|p| p.host_port.is_some_and(|h| h != 0))
    });
    apparmor(c);
    selinux(c);
    baseline_context(c);
    host_probes(c);
}

/// procMount, seccomp Unconfined, sysctls, Windows host processes.
fn baseline_context(c: &mut Checker<'_>) {
    let b = Level::Baseline;
    let spec = c.spec;
    c.fail_containers("procMount", b, "procMount other than Default", |x| {
        let pm = x.sc.and_then(|s| s.proc_mount.as_deref());
        pm.is_some_and(|p| p != "Default") && spec.host_users != Some(false)
    });
    let pod_seccomp = c
        .psc
        .and_then(|p| p.seccomp_profile.as_ref())
        .map(|s| s.type_.as_str());
    let pod_unconfined = pod_seccomp == Some("Unconfined");
    let names = c.which(|x| {
        x.sc.and_then(|s| s.seccomp_profile.as_ref())
            .is_some_and(|s| s.type_ == "Unconfined")
    });
    if pod_unconfined || !names.is_empty() {
        c.fail(
            "seccompProfile_baseline",
            b,
            "seccompProfile type Unconfined".into(),
        );
    }
    let unsafe_sysctls: Vec<String> = c
        .psc
        .and_then(|p| p.sysctls.as_ref())
        .into_iter()
        .flatten()
        .filter(|s| !SAFE_SYSCTLS.contains(&s.name.as_str()))
        .map(|s| s.name.clone())
        .collect();
    if !unsafe_sysctls.is_empty() {
        c.fail(
            "sysctls",
            b,
            format!("unsafe sysctls {}", unsafe_sysctls.join(", ")),
        );
    }
    let pod_hp = c
        .psc
        .and_then(|p| p.windows_options.as_ref())
        .and_then(|w| w.host_process)
        == Some(true);
    let names = c.which(|x| {
        x.sc.and_then(|s| s.windows_options.as_ref())
            .and_then(|w| w.host_process)
            == Some(true)
    });
    if pod_hp || !names.is_empty() {
        c.fail("windowsHostProcess", b, "hostProcess=true".into());
    }
}

/// Only the volume types that reach nothing of the node.
fn restricted_volumes(c: &mut Checker<'_>) {
    let r = Level::Restricted;
    const ALLOWED: [&str; 9] = [
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
        "image",
    ];
    let mut bad_volumes = Vec::new();
    for v in c.spec.volumes.iter().flatten() {
        let value = serde_json::to_value(v).unwrap_or_default();
        let kinds: Vec<String> = value
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k.clone())
            .filter(|k| k != "name")
            .collect();
        if kinds.iter().any(|k| !ALLOWED.contains(&k.as_str())) {
            bad_volumes.push(format!("{} ({})", v.name, kinds.join(",")));
        }
    }
    if !bad_volumes.is_empty() {
        c.fail(
            "restrictedVolumes",
            r,
            format!(
                "volume types outside the restricted set: {}",
                bad_volumes.join(", ")
            ),
        );
    }
}

/// Probes and lifecycle handlers must not name a host.
fn host_probes(c: &mut Checker<'_>) {
    let b = Level::Baseline;
    c.fail_containers(
        "hostProbesAndHostLifecycle",
        b,
        "probe or lifecycle handler with a host",
        |x| {
            x.probes.iter().any(|p| {
                p.http_get
                    .as_ref()
                    .is_some_and(|h| h.host.as_deref().is_some_and(|s| !s.is_empty()))
                    || p.tcp_socket
                        .as_ref()
                        .is_some_and(|t| t.host.as_deref().is_some_and(|s| !s.is_empty()))
            }) || x.handlers.iter().any(|h| {
                h.http_get
                    .as_ref()
                    .is_some_and(|g| g.host.as_deref().is_some_and(|s| !s.is_empty()))
                    || h.tcp_socket
                        .as_ref()
                        .is_some_and(|t| t.host.as_deref().is_some_and(|s| !s.is_empty()))
            })
        },
    );
}

fn adds(x: &Any<'_>) -> Vec<String> {
    x.sc.and_then(|s| s.capabilities.as_ref())
        .and_then(|c| c.add.clone())
        .unwrap_or_default()
}

fn apparmor(c: &mut Checker<'_>) {
    let allowed = |t: &str| t == "RuntimeDefault" || t == "Localhost";
    let mut bad = Vec::new();
    if let Some(p) = c.psc.and_then(|p| p.app_armor_profile.as_ref())
        && !allowed(&p.type_)
    {
        bad.push(format!("pod appArmorProfile {}", p.type_));
    }
    bad.extend(c.which(|x| {
        x.sc.and_then(|s| s.app_armor_profile.as_ref())
            .is_some_and(|p| !allowed(&p.type_))
    }));
    for (k, v) in c.annotations.into_iter().flatten() {
        if k.starts_with("container.apparmor.security.beta.kubernetes.io/")
            && v != "runtime/default"
            && !v.starts_with("localhost/")
        {
            bad.push(format!("annotation {k}={v}"));
        }
    }
    if !bad.is_empty() {
        c.fail(
            "appArmorProfile",
            Level::Baseline,
            format!("{}: neither RuntimeDefault nor Localhost", bad.join(", ")),
        );
    }
}

fn selinux(c: &mut Checker<'_>) {
    let bad_opts = |o: &k8s_openapi::api::core::v1::SELinuxOptions| {
        !SELINUX_TYPES.contains(&o.type_.as_deref().unwrap_or(""))
            || o.user.as_deref().is_some_and(|u| !u.is_empty())
            || o.role.as_deref().is_some_and(|r| !r.is_empty())
    };
    let pod = c
        .psc
        .and_then(|p| p.se_linux_options.as_ref())
        .is_some_and(bad_opts);
    let names = c.which(|x| {
        x.sc.and_then(|s| s.se_linux_options.as_ref())
            .is_some_and(bad_opts)
    });
    if pod || !names.is_empty() {
        c.fail(
            "seLinuxOptions",
            Level::Baseline,
            "forbidden SELinux type, user or role".into(),
        );
    }
}

fn restricted(c: &mut Checker<'_>) {
    let r = Level::Restricted;
    restricted_volumes(c);
    c.fail_containers(
        "allowPrivilegeEscalation",
        r,
        "allowPrivilegeEscalation is not false",
        |x| x.sc.and_then(|s| s.allow_privilege_escalation) != Some(false),
    );
    let pod_non_root = c.psc.and_then(|p| p.run_as_non_root);
    let set_false = pod_non_root == Some(false)
        || c.all
            .iter()
            .any(|x| x.sc.and_then(|s| s.run_as_non_root) == Some(false));
    let unset =
        c.which(|x| x.sc.and_then(|s| s.run_as_non_root).is_none() && pod_non_root != Some(true));
    if set_false || !unset.is_empty() {
        c.fail(
            "runAsNonRoot",
            r,
            "runAsNonRoot is not true for every container".into(),
        );
    }
    let pod_root = c.psc.and_then(|p| p.run_as_user) == Some(0);
    let names = c.which(|x| x.sc.and_then(|s| s.run_as_user) == Some(0));
    if pod_root || !names.is_empty() {
        c.fail("runAsUser", r, "runAsUser=0".into());
    }
    let pod_seccomp = c
        .psc
        .and_then(|p| p.seccomp_profile.as_ref())
        .map(|s| s.type_.clone());
    c.fail_containers(
        "seccompProfile_restricted",
        r,
        "seccompProfile is neither RuntimeDefault nor Localhost",
        |x| {
            let own =
                x.sc.and_then(|s| s.seccomp_profile.as_ref())
                    .map(|s| s.type_.clone());
            let effective = own.or_else(|| pod_seccomp.clone());
            !matches!(effective.as_deref(), Some("RuntimeDefault" | "Localhost"))
        },
    );
    c.fail_containers(
        "capabilities_restricted",
        r,
        "must drop ALL and add at most NET_BIND_SERVICE",
        |x| {
            let caps = x.sc.and_then(|s| s.capabilities.as_ref());
            let drops_all = caps
                .and_then(|c| c.drop.as_ref())
                .is_some_and(|d| d.iter().any(|s| s == "ALL"));
            !drops_all || adds(x).iter().any(|a| a != "NET_BIND_SERVICE")
        },
    );
}
