//! `kube`: the plan as Kubernetes manifests. The mapping of one add-on field by field and as a
//! reviewed snapshot, the invariants over every corpus add-on in both policies (the plan's
//! capabilities, no_new_privs never claimed with SYS_ADMIN or privileged, the exact profile
//! text, namespaces, mounts, every ulimit reported), the YAML read back by PyYAML, and the
//! manifests of the whole corpus validated offline against Kubernetes' OpenAPI schemas by
//! `kubernetes-validate` (PyPI; `REQUIRE_KUBE_VALIDATE=1` fails instead of skipping).

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use addon_sandbox::addon::{self, Addon};
use addon_sandbox::kube::{self, AddonManifests, DeviceMode, KubeError, KubeOptions, Storage};
use addon_sandbox::launch;
use addon_sandbox::plan::{PolicyMode, SandboxPlan};
use addon_sandbox::policy::{self, PlanOptions, Right};
use k8s_openapi::api::core::v1::{Container, PodSpec};

fn options(policy: PolicyMode, grants: &[&str]) -> PlanOptions {
    PlanOptions {
        policy,
        protected: true,
        grants: grants.iter().map(|g| Right::parse(g).unwrap()).collect(),
        ..PlanOptions::default()
    }
}

fn pod(m: &AddonManifests) -> &PodSpec {
    m.deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
}

fn container(m: &AddonManifests) -> &Container {
    &pod(m).containers[0]
}

fn manifests_of(
    a: &Addon,
    plan: &SandboxPlan,
    opts: &KubeOptions,
) -> Result<AddonManifests, KubeError> {
    let text = profile_text(a, plan).expect("profile text");
    kube::generate(plan, text.as_deref(), opts)
}

/// The text confining the plan, as `kube` takes it (an author's `apparmor.txt` renamed and
/// checked by the parser, which may reject it).
fn profile_text(a: &Addon, plan: &SandboxPlan) -> Result<Option<String>, launch::LaunchError> {
    plan.apparmor_profile
        .as_ref()
        .map(|name| launch::profile_text(plan, name, a.apparmor_text.as_deref(), None))
        .transpose()
}

const SMALL: &str = "map: [share:rw, ssl]\nports: {\"8080/tcp\": 8080, \"53/udp\": 5353}\nhost_network: true\nprivileged: [SYS_ADMIN, NET_ADMIN]\nulimits: {nofile: 4096}\nenvironment: {MODE: \"on\"}\ntmpfs: true\n";

fn small(grants: &[&str]) -> (Addon, SandboxPlan) {
    let dir = common::addon_dir(&common::minimal(SMALL));
    let a = addon::load(dir.path());
    assert!(a.valid(), "{:?}", a.errors().collect::<Vec<_>>());
    let plan = policy::decide(
        a.config.as_ref().unwrap(),
        false,
        &options(PolicyMode::Strict, grants),
    )
    .unwrap();
    (a, plan)
}

#[test]
fn one_addon_field_by_field() {
    let (a, plan) = small(&["host_network", "SYS_ADMIN", "NET_ADMIN"]);
    let opts = KubeOptions {
        gateway_ip: Some("10.0.0.2".into()),
        ..KubeOptions::default()
    };
    let m = manifests_of(&a, &plan, &opts).unwrap();
    let c = container(&m);
    let sc = c.security_context.as_ref().unwrap();
    let caps = sc.capabilities.as_ref().unwrap();
    assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_string()][..]));
    assert_eq!(caps.add.as_ref().unwrap(), &plan.cap_add);
    assert!(plan.cap_add.iter().any(|c| c == "SYS_ADMIN"));
    // SYS_ADMIN: Kubernetes refuses allowPrivilegeEscalation false; it is true, and reported.
    assert_eq!(sc.allow_privilege_escalation, Some(true));
    assert!(m.gaps.iter().any(|g| g.field == "no_new_privileges"));
    assert_eq!(sc.seccomp_profile.as_ref().unwrap().type_, "RuntimeDefault");
    let aa = sc.app_armor_profile.as_ref().unwrap();
    assert_eq!(aa.type_, "Localhost");
    assert_eq!(aa.localhost_profile, plan.apparmor_profile);
    assert_eq!(sc.privileged, None);
    let spec = pod(&m);
    assert_eq!(spec.host_network, Some(true));
    assert_eq!(spec.dns_policy.as_deref(), Some("ClusterFirstWithHostNet"));
    assert_eq!(spec.host_pid, None);
    assert_eq!(spec.automount_service_account_token, Some(false));
    let aliases = spec.host_aliases.as_ref().unwrap();
    assert_eq!(aliases[0].ip, "10.0.0.2");
    assert_eq!(
        aliases[0].hostnames.as_ref().unwrap(),
        &["supervisor", "hassio", "homeassistant"]
    );
    // With the host's network, nothing is published (as Docker).
    assert!(c.ports.is_none());
    // Mounts: share writable with HostToContainer, ssl read-only.
    let mounts = c.volume_mounts.as_ref().unwrap();
    let share = mounts.iter().find(|v| v.mount_path == "/share").unwrap();
    assert_eq!(share.read_only, Some(false));
    assert_eq!(share.mount_propagation.as_deref(), Some("HostToContainer"));
    let ssl = mounts.iter().find(|v| v.mount_path == "/ssl").unwrap();
    assert_eq!(ssl.read_only, Some(true));
    let tmp = mounts.iter().find(|v| v.mount_path == "/tmp").unwrap();
    let vol = spec
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find(|v| v.name == tmp.name)
        .unwrap();
    assert_eq!(
        vol.empty_dir.as_ref().unwrap().medium.as_deref(),
        Some("Memory")
    );
    // Env: the plan's, TZ, the token from the Secret (never a value).
    let env = c.env.as_ref().unwrap();
    assert!(
        env.iter()
            .any(|e| e.name == "MODE" && e.value.as_deref() == Some("on"))
    );
    for name in ["SUPERVISOR_TOKEN", "HASSIO_TOKEN"] {
        let e = env.iter().find(|e| e.name == name).unwrap();
        assert!(e.value.is_none());
        let secret = e
            .value_from
            .as_ref()
            .unwrap()
            .secret_key_ref
            .as_ref()
            .unwrap();
        assert_eq!(secret.name, "addon-sandbox.local-test.token");
    }
    // Ulimits are reported, host UTS added by hostNetwork is reported.
    assert!(
        m.gaps
            .iter()
            .any(|g| g.field == "ulimits" && g.detail.contains("nofile"))
    );
    assert!(m.gaps.iter().any(|g| g.field == "uts_mode"));
    // The profile ConfigMap: content-addressed, the exact text under the profile's name.
    let text = addon_sandbox::profile::generate(&plan)
        .unwrap()
        .render(false)
        .unwrap();
    let cm = m.profile.as_ref().unwrap();
    assert_eq!(
        cm.metadata.name.as_deref(),
        Some(kube::configmap_name("local_test", &text).as_str())
    );
    assert!(
        cm.metadata
            .name
            .as_ref()
            .unwrap()
            .starts_with("addon-sandbox.local-test.")
    );
    assert_eq!(cm.data.as_ref().unwrap()["local_test"], text);
    assert_eq!(m.level.level, kube::pss::Level::Privileged);
}

#[test]
fn without_grants_the_pod_gets_no_more_than_the_plan() {
    let (a, plan) = small(&[]);
    let m = manifests_of(&a, &plan, &KubeOptions::default()).unwrap();
    let sc = container(&m).security_context.as_ref().unwrap();
    assert!(!plan.cap_add.iter().any(|c| c == "SYS_ADMIN"));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(pod(&m).host_network, None);
    // Ports: the host port when published, the protocol.
    let ports = container(&m).ports.as_ref().unwrap();
    assert!(ports.iter().any(|p| p.container_port == 8080
        && p.host_port == Some(8080)
        && p.protocol.as_deref() == Some("TCP")));
    assert!(ports.iter().any(|p| p.container_port == 53
        && p.host_port == Some(5353)
        && p.protocol.as_deref() == Some("UDP")));
    assert!(
        m.gaps.iter().any(|g| g.field == "extra_hosts"),
        "no --gateway-ip is reported"
    );
}

#[test]
fn a_changed_profile_is_a_new_configmap_name() {
    let (a, plan) = small(&[]);
    let one = manifests_of(&a, &plan, &KubeOptions::default()).unwrap();
    let other = kube::generate(
        &plan,
        Some("profile local_test {}\n"),
        &KubeOptions::default(),
    )
    .unwrap();
    let name = |m: &AddonManifests| m.profile.as_ref().unwrap().metadata.name.clone().unwrap();
    assert_ne!(name(&one), name(&other));
    assert_eq!(
        name(&one),
        name(&manifests_of(&a, &plan, &KubeOptions::default()).unwrap())
    );
}

#[test]
fn pvc_storage_keeps_data_folders_as_subpaths() {
    let (a, plan) = small(&[]);
    let opts = KubeOptions {
        storage: Storage::Pvc {
            claim: "ha-data".into(),
        },
        ..KubeOptions::default()
    };
    let m = manifests_of(&a, &plan, &opts).unwrap();
    let vols = pod(&m).volumes.as_ref().unwrap();
    let share_mount = container(&m)
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .find(|v| v.mount_path == "/share")
        .unwrap();
    let share = vols.iter().find(|v| v.name == share_mount.name).unwrap();
    assert_eq!(
        share.persistent_volume_claim.as_ref().unwrap().claim_name,
        "ha-data"
    );
    assert_eq!(share_mount.sub_path.as_deref(), Some("share"));
    assert!(vols.iter().all(|v| v.host_path.is_none()));
}

fn device_addon(extra: &str, policy: PolicyMode, grants: &[&str]) -> SandboxPlan {
    let dir = common::addon_dir(&common::minimal(extra));
    let a = addon::load(dir.path());
    policy::decide(a.config.as_ref().unwrap(), false, &options(policy, grants)).unwrap()
}

#[test]
fn devices_are_resources_and_full_access_needs_privileged() {
    let plan = device_addon("uart: true\nusb: true\n", PolicyMode::Strict, &[]);
    let m = kube::generate(&plan, Some("x"), &KubeOptions::default()).unwrap();
    let limits = container(&m)
        .resources
        .as_ref()
        .unwrap()
        .limits
        .as_ref()
        .unwrap();
    let names: BTreeSet<&str> = limits.keys().map(String::as_str).collect();
    assert_eq!(names, BTreeSet::from(["squat.ai/serial", "squat.ai/usb"]));
    let mut opts = KubeOptions::default();
    opts.add_device_resource("uart=example.com/zigbee").unwrap();
    assert!(opts.add_device_resource("uart=bad").is_err());
    let m = kube::generate(&plan, Some("x"), &opts).unwrap();
    assert!(
        container(&m)
            .resources
            .as_ref()
            .unwrap()
            .limits
            .as_ref()
            .unwrap()
            .contains_key("example.com/zigbee")
    );

    let full = device_addon("full_access: true\n", PolicyMode::Strict, &["full_access"]);
    assert!(full.device_cgroup_rules.iter().any(|r| r == "a *:* rwm"));
    let err = kube::generate(&full, Some("x"), &KubeOptions::default()).unwrap_err();
    assert!(matches!(err, KubeError::NeedsPrivileged { .. }), "{err}");
    let opts = KubeOptions {
        devices: DeviceMode::Privileged,
        ..KubeOptions::default()
    };
    let m = kube::generate(&full, Some("x"), &opts).unwrap();
    let sc = container(&m).security_context.as_ref().unwrap();
    assert_eq!(sc.privileged, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(true));
    assert!(
        m.gaps
            .iter()
            .any(|g| g.field == "devices" && g.detail.contains("privileged"))
    );
    // The supervisor policy emits without the rules, and says so.
    let sup = device_addon("full_access: true\n", PolicyMode::Supervisor, &[]);
    if !sup.device_cgroup_rules.is_empty() {
        let m = kube::generate(&sup, Some("x"), &KubeOptions::default()).unwrap();
        assert!(m.gaps.iter().any(|g| g.field == "device_cgroup_rules"));
    }
}

/// Regenerate with `UPDATE_SNAPSHOTS=1 cargo test --test kube` and review the diff.
#[test]
fn the_small_addon_snapshot() {
    let (a, plan) = small(&["host_network"]);
    let opts = KubeOptions {
        gateway_ip: Some("10.0.0.2".into()),
        ..KubeOptions::default()
    };
    let m = manifests_of(&a, &plan, &opts).unwrap();
    let yaml = kube::to_yaml(&m.documents().unwrap()).unwrap();
    let snapshot = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/kube-small.yaml");
    if std::env::var("UPDATE_SNAPSHOTS").as_deref() == Ok("1") {
        std::fs::write(&snapshot, &yaml).unwrap();
    }
    let expected =
        std::fs::read_to_string(&snapshot).expect("snapshot exists (UPDATE_SNAPSHOTS=1 to create)");
    assert_eq!(
        yaml, expected,
        "kube output changed; review and UPDATE_SNAPSHOTS=1 if intended"
    );
}

/// Every valid corpus add-on under both policies (strict also with every grant), the
/// manifests and their plan.
fn corpus_manifests() -> Option<Vec<(String, SandboxPlan, AddonManifests)>> {
    static ALL: std::sync::OnceLock<Option<Vec<(String, SandboxPlan, AddonManifests)>>> =
        std::sync::OnceLock::new();
    ALL.get_or_init(make_corpus_manifests).clone()
}

fn make_corpus_manifests() -> Option<Vec<(String, SandboxPlan, AddonManifests)>> {
    let corpus = common::corpus_dir()?;
    common::parser()?;
    let addons: Vec<Addon> = common::corpus_addons(&corpus)
        .into_iter()
        .filter(|a| a.valid())
        .collect();
    let every = [
        "host_network",
        "host_pid",
        "host_ipc",
        "host_uts",
        "SYS_ADMIN",
        "full_access",
        "docker_api",
    ];
    let pvc = Storage::Pvc {
        claim: "addon-sandbox-data".into(),
    };
    let variants = [
        (
            "strict",
            options(PolicyMode::Strict, &[]),
            DeviceMode::Plugin,
            Storage::HostPath,
        ),
        (
            "strict-granted",
            options(PolicyMode::Strict, &every),
            DeviceMode::Privileged,
            Storage::HostPath,
        ),
        (
            "strict-pvc",
            options(PolicyMode::Strict, &[]),
            DeviceMode::Plugin,
            pvc,
        ),
        (
            "supervisor",
            options(PolicyMode::Supervisor, &[]),
            DeviceMode::Plugin,
            Storage::HostPath,
        ),
    ];
    let mut out = Vec::new();
    let mut rejected = 0;
    for (variant, plan_opts, devices, storage) in variants {
        let opts = KubeOptions {
            devices,
            storage,
            gateway_ip: Some("10.96.0.10".into()),
            ..KubeOptions::default()
        };
        for a in &addons {
            let Ok(plan) = policy::decide(
                a.config.as_ref().unwrap(),
                a.apparmor_profile.is_some(),
                &plan_opts,
            ) else {
                continue;
            };
            let Ok(text) = profile_text(a, &plan) else {
                // An author's apparmor.txt the parser rejects: `kube` reports it as an error.
                assert_eq!(
                    plan.confinement,
                    addon_sandbox::plan::Confinement::AddonProfile
                );
                rejected += 1;
                continue;
            };
            match kube::generate(&plan, text.as_deref(), &opts) {
                Ok(m) => out.push((variant.to_owned(), plan, m)),
                Err(KubeError::NeedsPrivileged { .. }) => {
                    assert!(devices == DeviceMode::Plugin && plan.policy == PolicyMode::Strict);
                    assert!(
                        plan.device_cgroup_rules.iter().any(|r| r.starts_with("a ")),
                        "{}",
                        plan.full_slug
                    );
                }
                Err(e) => panic!("{}: {e}", plan.full_slug),
            }
        }
    }
    assert!(out.len() > 800, "only {} manifests", out.len());
    assert!(rejected < 5, "{rejected} author profiles rejected");
    Some(out)
}

fn is_sys_admin(c: &str) -> bool {
    let u = c.to_ascii_uppercase();
    u.trim_start_matches("CAP_") == "SYS_ADMIN"
}

#[test]
#[cfg_attr(
    not(corpus),
    ignore = "no corpus: set ADDON_SANDBOX_CORPUS (see docs/testing.md)"
)]
fn corpus_manifests_keep_the_plan() {
    let Some(all) = corpus_manifests() else {
        return;
    };
    for (variant, plan, m) in &all {
        let who = format!("{variant} {}", plan.full_slug);
        let c = container(m);
        let sc = c.security_context.as_ref().unwrap();
        let caps = sc.capabilities.as_ref().unwrap();
        assert_eq!(caps.add.clone().unwrap_or_default(), plan.cap_add, "{who}");
        assert_eq!(
            caps.drop.clone().unwrap_or_default(),
            plan.cap_drop,
            "{who}"
        );
        let escalation_forbidden = sc.allow_privilege_escalation == Some(false);
        let dangerous = sc.privileged == Some(true) || plan.cap_add.iter().any(|c| is_sys_admin(c));
        assert!(
            !(escalation_forbidden && dangerous),
            "{who}: allowPrivilegeEscalation false with SYS_ADMIN/privileged"
        );
        assert_eq!(
            escalation_forbidden,
            plan.no_new_privileges && !dangerous,
            "{who}"
        );
        let seccomp = &sc.seccomp_profile.as_ref().unwrap().type_;
        assert_eq!(
            seccomp,
            if plan.seccomp_unconfined {
                "Unconfined"
            } else {
                "RuntimeDefault"
            },
            "{who}"
        );
        let aa = sc.app_armor_profile.as_ref().unwrap();
        match &plan.apparmor_profile {
            Some(name) => {
                assert_eq!(
                    (aa.type_.as_str(), aa.localhost_profile.as_ref()),
                    ("Localhost", Some(name)),
                    "{who}"
                );
                let cm = m.profile.as_ref().unwrap();
                let text = &cm.data.as_ref().unwrap()[name];
                assert_eq!(
                    cm.metadata.name.as_deref(),
                    Some(kube::configmap_name(&plan.full_slug, text).as_str())
                );
                if plan.confinement == addon_sandbox::plan::Confinement::Generated {
                    let expected = addon_sandbox::profile::generate(plan)
                        .unwrap()
                        .render(false)
                        .unwrap();
                    assert_eq!(
                        text, &expected,
                        "{who}: the profile text is not byte for byte"
                    );
                }
            }
            None => assert_ne!(aa.type_, "Localhost", "{who}"),
        }
        let spec = pod(m);
        assert_eq!(
            spec.host_network == Some(true),
            plan.network_mode == "host",
            "{who}"
        );
        assert_eq!(
            spec.host_pid == Some(true),
            plan.pid_mode.as_deref() == Some("host"),
            "{who}"
        );
        assert_eq!(
            spec.host_ipc == Some(true),
            plan.ipc_mode.as_deref() == Some("host"),
            "{who}"
        );
        let mounts = c.volume_mounts.clone().unwrap_or_default();
        assert_eq!(mounts.len(), plan.mounts.len() + plan.tmpfs.len(), "{who}");
        for pm in &plan.mounts {
            let vm = mounts
                .iter()
                .find(|v| v.mount_path == pm.target)
                .unwrap_or_else(|| panic!("{who}: {}", pm.target));
            assert_eq!(vm.read_only, Some(pm.read_only), "{who} {}", pm.target);
            let rslave = matches!(pm.propagation.as_deref(), Some("rslave" | "slave"));
            assert_eq!(
                vm.mount_propagation.as_deref() == Some("HostToContainer"),
                rslave,
                "{who}"
            );
        }
        let ulimit_gaps = m.gaps.iter().filter(|g| g.field == "ulimits").count();
        assert_eq!(ulimit_gaps, plan.ulimits.len(), "{who}");
        let host_uts_alone =
            plan.uts_mode.as_deref() == Some("host") && plan.network_mode != "host";
        assert_eq!(
            host_uts_alone,
            m.gaps
                .iter()
                .any(|g| g.field == "uts_mode" && g.detail.contains("alone")),
            "{who}"
        );
        assert_eq!(
            plan.docker_socket,
            m.gaps.iter().any(|g| g.field == "docker_api"),
            "{who}"
        );
        assert!(spec.init_containers.is_none() && spec.containers.len() == 1);
        // Host paths count against baseline (every add-on has /data); nothing here runs as
        // non-root, so nothing is restricted.
        if variant == "strict-pvc" {
            assert_ne!(m.level.level, kube::pss::Level::Restricted, "{who}");
        } else {
            assert_eq!(m.level.level, kube::pss::Level::Privileged, "{who}");
        }
        let text = serde_json::to_string(&m.deployment).unwrap();
        assert!(
            !text.contains("container.apparmor.security.beta.kubernetes.io"),
            "{who}: the deprecated annotation"
        );
    }
}

#[test]
#[cfg_attr(
    not(corpus),
    ignore = "no corpus: set ADDON_SANDBOX_CORPUS (see docs/testing.md)"
)]
fn corpus_manifests_validate_against_the_openapi_schemas() {
    let Some(validate) = common::kube_node::kubernetes_validate() else {
        return;
    };
    let Some(all) = corpus_manifests() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, (variant, _, m)) in all.iter().enumerate() {
        let docs = m.documents().unwrap();
        let file = dir.path().join(format!("{i:04}-{variant}.yaml"));
        std::fs::write(&file, kube::to_yaml(&docs).unwrap()).unwrap();
        files.push(file);
    }
    let manifests: Vec<AddonManifests> = all.into_iter().map(|(_, _, m)| m).collect();
    let (_, loader) =
        kube::loader_documents(&manifests, "addon-sandbox:test", &KubeOptions::default()).unwrap();
    let file = dir.path().join("loader.yaml");
    std::fs::write(&file, kube::to_yaml(&loader).unwrap()).unwrap();
    files.push(file);
    let started = std::time::Instant::now();
    let out = Command::new(&validate)
        .args(["--strict", "--quiet", "-k", "1.34.0"])
        .args(&files)
        .output()
        .expect("run kubernetes-validate");
    eprintln!(
        "kubernetes-validate: {} files in {:?}",
        files.len(),
        started.elapsed()
    );
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // It does judge: a wrong type is refused.
    let bad = dir.path().join("bad.yaml");
    let text = std::fs::read_to_string(&files[0]).unwrap().replace(
        "automountServiceAccountToken: false",
        "automountServiceAccountToken: \"no\"",
    );
    assert!(text.contains("\"no\""));
    std::fs::write(&bad, text).unwrap();
    let out = Command::new(&validate)
        .args(["--strict", "--quiet", "-k", "1.34.0"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success(), "a wrong type passed");
}

const PYYAML: &str = r#"
import json, sys, yaml
for path in sys.argv[1:]:
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    json.dump(docs, sys.stdout)
    sys.stdout.write("\n")
"#;

fn pyyaml() -> Option<&'static str> {
    for candidate in ["/usr/bin/python3", "python3"] {
        let ok = Command::new(candidate)
            .args(["-c", "import yaml"])
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(candidate);
        }
    }
    if std::env::var("REQUIRE_PYYAML").as_deref() == Ok("1") {
        panic!("REQUIRE_PYYAML=1 but no python3 with PyYAML");
    }
    eprintln!("skipped: no python3 with PyYAML (set REQUIRE_PYYAML=1 to fail instead)");
    None
}

/// PyYAML (a YAML 1.1 reader, as kubectl's is) reads the YAML back as exactly the objects:
/// strings like `on` or `1883` stay strings, the profile text is byte for byte.
#[test]
#[cfg_attr(
    not(corpus),
    ignore = "no corpus: set ADDON_SANDBOX_CORPUS (see docs/testing.md)"
)]
fn corpus_yaml_reads_back_as_the_objects() {
    let Some(python) = pyyaml() else {
        return;
    };
    let Some(all) = corpus_manifests() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let mut expected = Vec::new();
    let (a, plan) = small(&[]);
    let small_docs = manifests_of(&a, &plan, &KubeOptions::default())
        .unwrap()
        .documents()
        .unwrap();
    for (i, docs) in all
        .iter()
        .map(|(_, _, m)| m.documents().unwrap())
        .chain([small_docs])
        .enumerate()
    {
        let file = dir.path().join(format!("{i:04}.yaml"));
        std::fs::write(&file, kube::to_yaml(&docs).unwrap()).unwrap();
        files.push(file);
        expected.push(docs);
    }
    let out = Command::new(python)
        .args(["-c", PYYAML])
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: Vec<Vec<serde_json::Value>> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(read.len(), expected.len());
    for (i, (got, want)) in read.iter().zip(&expected).enumerate() {
        assert_eq!(got, want, "{}", files[i].display());
    }
}

fn cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_addon-sandbox"))
        .args(args)
        .output()
        .unwrap()
}

/// The command line: `-o DIR` writes one file per add-on, the loader and the report;
/// standard output is one YAML stream otherwise; a strict plan only `privileged` could express
/// is refused unless `--devices privileged`; bad input is a clear error.
#[test]
fn the_kube_command() {
    let dir = common::addon_dir(&common::minimal("map: [share:rw]\n"));
    let path = dir.path().to_str().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().to_str().unwrap();
    let o = cli(&[
        "kube",
        "--gateway-ip",
        "10.0.0.2",
        "--emit-loader",
        "-o",
        out,
        path,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = String::from_utf8_lossy(&o.stdout);
    assert!(
        report.contains("local_test: Pod Security level privileged"),
        "{report}"
    );
    assert!(report.contains("not baseline: hostPathVolumes"), "{report}");
    let yaml = std::fs::read_to_string(out_dir.path().join("local-test.yaml")).unwrap();
    assert!(yaml.contains("kind: ConfigMap") && yaml.contains("kind: Deployment"));
    assert!(yaml.contains("localhostProfile: local_test"));
    let loader = std::fs::read_to_string(out_dir.path().join("profile-loader.yaml")).unwrap();
    assert!(loader.contains("kind: DaemonSet") && loader.contains("addon-sandbox.local-test."));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(json[0]["full_slug"], "local_test");
    assert_eq!(json[0]["pod_security"]["level"], "privileged");

    let o = cli(&["kube", path]);
    assert!(o.status.success());
    let stream = String::from_utf8_lossy(&o.stdout);
    assert_eq!(stream.matches("\n---\n").count() + 1, 2, "{stream}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("--gateway-ip"));

    let full = common::addon_dir(&common::minimal("full_access: true\n"));
    let full = full.path().to_str().unwrap();
    let o = cli(&["kube", "--grant", "full_access", full]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--devices privileged"));
    let o = cli(&[
        "kube",
        "--grant",
        "full_access",
        "--devices",
        "privileged",
        full,
    ]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("privileged: true"));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--devices privileged: `privileged: true`")
    );

    let o = cli(&["kube", "--device-resource", "uart", path]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("invalid device resource"));
    let o = cli(&["kube", "--gateway-ip", "not-an-ip", path]);
    assert_eq!(o.status.code(), Some(2));
}

/// `--spo`: the operator's abstract profile for every generated corpus plan: its capabilities
/// are the plan's, every path passes the operator's own CRD pattern, and every deny rule of
/// the real profile is among what it reports lost.
#[test]
#[cfg_attr(
    not(corpus),
    ignore = "no corpus: set ADDON_SANDBOX_CORPUS (see docs/testing.md)"
)]
fn spo_profiles_keep_the_capabilities_and_report_the_rest() {
    let Some(all) = corpus_manifests() else {
        return;
    };
    // The pattern of security-profiles-operator's AppArmorProfile CRD for paths.
    let pattern =
        regex::Regex::new(r"^(?:/(?:[a-zA-Z0-9_./*?+@ -]|@\{[a-zA-Z0-9_]+\})*)$").unwrap();
    let mut checked = 0;
    for (variant, plan, m) in all.iter().filter(|(v, ..)| v == "strict") {
        let mut m = m.clone();
        kube::add_spo(&mut m, plan, &KubeOptions::default()).unwrap();
        let (spo, lost) = m.spo.as_ref().unwrap();
        let a = &spo.spec.abstract_;
        let caps: Vec<String> = plan
            .cap_add
            .iter()
            .map(|c| c.to_ascii_lowercase())
            .collect();
        assert_eq!(
            a.capability.allowed_capabilities, caps,
            "{variant} {}",
            plan.full_slug
        );
        let fs = &a.filesystem;
        for p in fs
            .read_only_paths
            .iter()
            .chain(&fs.read_write_paths)
            .chain(&fs.write_only_paths)
            .chain(&a.executable.allowed_executables)
            .chain(&a.executable.allowed_libraries)
        {
            assert!(pattern.is_match(p), "{}: {p}", plan.full_slug);
        }
        let profile = addon_sandbox::profile::generate(plan).unwrap();
        for rule in profile.rules() {
            if let addon_sandbox::profile::rule::Rule::File {
                deny: true, path, ..
            } = rule
            {
                assert!(
                    lost.contains(&format!("deny {}", path.display())),
                    "{}",
                    plan.full_slug
                );
            }
        }
        assert!(!a.network.allow_raw);
        assert!(
            m.documents()
                .unwrap()
                .iter()
                .any(|d| d["kind"] == "AppArmorProfile")
        );
        checked += 1;
    }
    assert!(checked > 200, "{checked}");
}
