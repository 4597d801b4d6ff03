//! The Deployments `kube` emits for real corpus add-ons (mosquitto, samba; strict policy),
//! run by `podman kube play` (Debian's podman), proved from inside as the launcher's tests
//! prove a container: capabilities equal the plan, no_new_privs, seccomp, read-only maps
//! read-only, writable maps landing on the host, the token from the Secret, a network
//! namespace of its own.
//!
//! Only the image and the command are swapped (the add-ons' own images are not here: the
//! busybox test image runs a proof script); everything else is played as emitted. What this
//! host needs, and nothing in the manifests: podman 4.3 reads `secretKeyRef` from a podman
//! secret holding JSON `{"<key>": "<base64>"}`; this host's root has no CAP_SYS_RESOURCE, so
//! podman's default nofile/nproc limits (raised) are lowered through a `CONTAINERS_CONF`;
//! podman 4.3's Kubernetes types predate `securityContext.appArmorProfile` (1.30) and ignore
//! it, and this kernel has no AppArmor, so the container runs without a profile (asserted).
//! Needs podman and catatonit (`REQUIRE_PODMAN=1` fails instead of skipping); binds host
//! ports, so run it under the shared lock like the Docker tests.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use addon_sandbox::addon;
use addon_sandbox::kube::{self, KubeOptions};
use addon_sandbox::plan::SandboxPlan;
use addon_sandbox::policy::{self, PlanOptions};
use common::proof::{cap_mask, field};

const IMAGE: &str = "localhost/addon-sandbox-test/busybox:1";

fn podman_available() -> bool {
    let ok = Command::new("podman")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
        && addon_sandbox::apparmor::parser::find_program("catatonit").is_some();
    if !ok {
        if std::env::var("REQUIRE_PODMAN").as_deref() == Ok("1") {
            panic!(
                "REQUIRE_PODMAN=1 but podman or catatonit is missing (apt-get install podman catatonit)"
            );
        }
        eprintln!("skipped: podman or catatonit missing (set REQUIRE_PODMAN=1 to fail instead)");
    }
    ok
}

struct Podman {
    conf: PathBuf,
}

impl Podman {
    fn new(dir: &Path) -> Podman {
        let conf = dir.join("containers.conf");
        std::fs::write(
            &conf,
            "[containers]\ndefault_ulimits = [\"nofile=4096:4096\", \"nproc=4096:4096\"]\n",
        )
        .unwrap();
        let p = Podman { conf };
        let exists = p
            .cmd(&["image", "exists", IMAGE])
            .status()
            .unwrap()
            .success();
        if !exists {
            let mut child = p
                .cmd(&["import", "-", IMAGE])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(&common::busybox_image_tar())
                .unwrap();
            assert!(child.wait().unwrap().success(), "podman import");
        }
        p
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", &self.conf).args(args);
        c
    }

    /// `podman args`, ended after `secs` (a stuck podman must not hold the shared lock).
    fn bounded(&self, args: &[&str], secs: u64) -> std::process::Output {
        let mut child = self
            .cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > Duration::from_secs(secs) {
                let _ = child.kill();
                panic!("podman {args:?} took more than {secs} s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        child.wait_with_output().unwrap()
    }

    fn run(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().unwrap();
        assert!(
            out.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Writes the proof into /data/proof: status fields, namespaces, every map tried for writing.
fn proof_script(plan: &SandboxPlan) -> String {
    let mut s = String::from(
        "p=/data/proof.tmp\ngrep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status > $p\necho \"net=$(readlink /proc/self/ns/net)\" >> $p\necho \"token=$SUPERVISOR_TOKEN\" >> $p\n",
    );
    for m in plan.mounts.iter().filter(|m| m.target != "/data") {
        s.push_str(&format!(
            "if (echo hello > {t}/from-inside) 2>/tmp/err; then echo 'map{t}=written' >> $p; else echo \"map{t}=$(cat /tmp/err)\" >> $p; fi\n",
            t = m.target
        ));
    }
    s.push_str("echo END >> $p\nmv $p /data/proof\nexec sleep 600\n");
    s
}

fn play_and_prove(podman: &Podman, corpus: &Path, name: &str, tmp: &Path) {
    let data_root = tmp.join(format!("root-{name}"));
    let options = PlanOptions {
        data_root: data_root.to_string_lossy().into_owned(),
        ..PlanOptions::default()
    };
    let a = addon::load(&corpus.join("official").join(name));
    let plan = policy::decide(
        a.config.as_ref().unwrap(),
        a.apparmor_profile.is_some(),
        &options,
    )
    .unwrap();
    let text = addon_sandbox::profile::generate(&plan)
        .unwrap()
        .render(false)
        .unwrap();
    let opts = KubeOptions {
        data_root: options.data_root.clone(),
        ..KubeOptions::default()
    };
    let mut m = kube::generate(&plan, Some(&text), &opts).unwrap();
    let spec = m
        .deployment
        .spec
        .as_mut()
        .unwrap()
        .template
        .spec
        .as_mut()
        .unwrap();
    let c = &mut spec.containers[0];
    c.image = Some(IMAGE.into());
    c.command = Some(vec!["/bin/sh".into(), "-c".into(), proof_script(&plan)]);
    let file = tmp.join(format!("{name}.yaml"));
    std::fs::write(&file, kube::to_yaml(&m.documents().unwrap()).unwrap()).unwrap();

    // The token Secret, in the form podman 4.3 reads for secretKeyRef.
    let secret = kube::token_secret_name(&plan.full_slug);
    let _ = podman.cmd(&["secret", "rm", &secret]).output();
    use base64::Engine;
    let token = format!("token-of-{name}");
    let json = format!(
        "{{\"token\":\"{}\"}}",
        base64::engine::general_purpose::STANDARD.encode(&token)
    );
    let mut child = podman
        .cmd(&["secret", "create", &secret, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(json.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());

    let file_s = file.to_string_lossy().into_owned();
    podman.bounded(&["kube", "down", &file_s], 60);
    let started = Instant::now();
    let played = podman.bounded(&["kube", "play", &file_s], 120);
    let proof_file = data_root
        .join("apps/data")
        .join(&plan.full_slug)
        .join("proof");
    let mut proof = String::new();
    while played.status.success() && started.elapsed() < Duration::from_secs(30) {
        if let Ok(p) = std::fs::read_to_string(&proof_file) {
            proof = p;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let container = format!("{}-pod-0-addon", kube::dns_name(&plan.full_slug));
    let apparmor = podman
        .cmd(&["inspect", &container, "--format", "{{.AppArmorProfile}}"])
        .output()
        .unwrap();
    let _ = podman.cmd(&["kube", "down", &file_s]).output();
    let _ = podman.cmd(&["secret", "rm", &secret]).output();
    assert!(
        played.status.success(),
        "{name}: podman kube play: {}",
        String::from_utf8_lossy(&played.stderr)
    );
    assert!(
        proof.ends_with("END\n"),
        "{name}: no proof within 30 s: {proof:?}"
    );
    eprintln!("{name}: played and proved in {:?}", started.elapsed());

    let cap_eff = u64::from_str_radix(field(&proof, "CapEff"), 16).unwrap();
    assert_eq!(cap_eff, cap_mask(&plan.cap_add), "{name}: CapEff");
    assert!(plan.no_new_privileges);
    assert_eq!(field(&proof, "NoNewPrivs"), "1", "{name}");
    assert_eq!(field(&proof, "Seccomp"), "2", "{name}");
    assert_eq!(field(&proof, "token"), token, "{name}");
    let host_net = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_ne!(
        field(&proof, "net"),
        host_net.to_string_lossy(),
        "{name}: the host's network namespace"
    );
    for pm in plan.mounts.iter().filter(|m| m.target != "/data") {
        let got = field(&proof, &format!("map{}", pm.target));
        if pm.read_only {
            assert!(
                got.contains("Read-only file system"),
                "{name} {}: {got}",
                pm.target
            );
        } else {
            assert_eq!(got, "written", "{name} {}", pm.target);
            let on_host = Path::new(&pm.source).join("from-inside");
            assert_eq!(
                std::fs::read_to_string(&on_host).unwrap(),
                "hello\n",
                "{name}: {}",
                on_host.display()
            );
        }
    }
    // No AppArmor here: podman applied no profile (it does not read appArmorProfile either).
    assert_eq!(
        String::from_utf8_lossy(&apparmor.stdout).trim(),
        "",
        "{name}"
    );
}

#[test]
#[cfg_attr(
    not(corpus),
    ignore = "no corpus: set ADDON_SANDBOX_CORPUS (see docs/testing.md)"
)]
fn podman_plays_the_manifests_of_real_addons_and_they_hold_from_inside() {
    let Some(corpus) = common::corpus_dir() else {
        return;
    };
    if !podman_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let podman = Podman::new(tmp.path());
    // mosquitto: read-only maps (ssl, share with propagation), host ports; samba: seven
    // writable maps.
    for name in ["mosquitto", "samba"] {
        play_and_prove(&podman, &corpus, name, tmp.path());
    }
    let left = podman.run(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(
        !left.contains("local-mosquitto") && !left.contains("local-samba"),
        "{left}"
    );
}
